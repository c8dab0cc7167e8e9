//! Track data encryption under the TDK, the UnionPay POS convention ("磁道加密",
//! `[keys] track_encryption = "cup-tdk"`).
//!
//! The track's characters are packed as BCD (`=` as nibble D, an odd count padded with a 0
//! nibble); the 8 bytes that end just before the last byte are TDES-ECB encrypted under the
//! TDK (or the DUKPT data key) and put back; the field then carries the packed bytes' nibbles
//! as upper-case hex, as many as the clear track had characters. A track of fewer than 9 packed
//! bytes (16 characters or fewer) has no such 8 bytes: it is refused
//! ([`TrackCryptError::TooShort`]), as the public implementations fail on it (they index before
//! the start). Sources and the field 53 flag: docs/messages.md, "Track data encryption".
//!
//! [`seal_track`] and [`open_track`] take the block cipher as a function, so the terminal
//! encrypts in its security module and the host simulator decrypts with its own keys;
//! [`seal_tracks`] and [`open_tracks`] apply them to fields 35 and 36 and field 53's flag.

use smartpos_iso8583::Message;

/// The track fields the convention encrypts: track 2 and track 3.
pub const TRACK_FIELDS: [u8; 2] = [35, 36];

/// The field that carries the security control flags (PIN format, algorithm, track flag).
pub const SECURITY_FIELD: u8 = 53;

/// One TDES-ECB block operation (encryption or decryption under the track data key); the
/// error is the cipher's text, never key or track material.
pub type BlockCipher<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// Length of the cipher block the convention encrypts (TDES).
const BLOCK: usize = 8;

/// Why a track could not be encrypted or decrypted. Never carries track characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackCryptError {
    /// Fewer than 9 packed bytes: no 8 bytes end before the last one.
    #[error("track data of {chars} characters is too short to encrypt (17 or more needed)")]
    TooShort {
        /// The track's character count.
        chars: usize,
    },
    /// A character that is not a BCD nibble (digits, `D`/`=`; hex digits in ciphertext).
    #[error("track data holds a character that is not a BCD digit")]
    BadCharacter,
    /// The cipher failed or returned something other than one 8-byte block.
    #[error("track data encryption failed: {0}")]
    Cipher(String),
    /// The decrypted track is not track data (wrong key or wrong ciphertext).
    #[error("decrypted track data is not track data (wrong key or ciphertext)")]
    NotTrackData,
    /// Field 53's track flag does not say what the message carries.
    #[error("field 53 track-encryption flag {got:?} where {want:?} was expected")]
    Flag {
        /// The flag received (`None`: no field 53).
        got: Option<char>,
        /// The flag the profile calls for.
        want: char,
    },
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'=' => Some(0xD),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The packed bytes of `text` and the range of the block the convention encrypts.
fn pack(text: &str) -> Result<(Vec<u8>, std::ops::Range<usize>), TrackCryptError> {
    let chars = text.len();
    let nibbles = text
        .bytes()
        .map(nibble)
        .collect::<Option<Vec<u8>>>()
        .ok_or(TrackCryptError::BadCharacter)?;
    let packed: Vec<u8> = nibbles
        .chunks(2)
        .map(|p| (p.first().copied().unwrap_or(0) << 4) | p.get(1).copied().unwrap_or(0))
        .collect();
    let n = packed.len();
    if n < BLOCK + 1 {
        return Err(TrackCryptError::TooShort { chars });
    }
    Ok((packed, n - BLOCK - 1..n - 1))
}

/// The packed bytes back as `chars` upper-case hex nibbles.
fn unpack(packed: &[u8], chars: usize) -> String {
    let mut s = smartpos_types::hex::encode(packed).to_ascii_uppercase();
    s.truncate(chars);
    s
}

fn apply(text: &str, cipher: &mut BlockCipher<'_>) -> Result<String, TrackCryptError> {
    let (mut packed, range) = pack(text)?;
    let block = packed.get(range.clone()).unwrap_or_default();
    let out = cipher(block).map_err(TrackCryptError::Cipher)?;
    if out.len() != BLOCK {
        return Err(TrackCryptError::Cipher(format!(
            "the cipher returned {} bytes for one {BLOCK}-byte block",
            out.len()
        )));
    }
    if let Some(dst) = packed.get_mut(range) {
        dst.copy_from_slice(&out);
    }
    Ok(unpack(&packed, text.len()))
}

/// A clear track (digits, `D` or `=` as separator) as the field carries it encrypted:
/// `encrypt` is TDES-ECB under the TDK of one 8-byte block.
pub fn seal_track(clear: &str, encrypt: &mut BlockCipher<'_>) -> Result<String, TrackCryptError> {
    if !clear
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'D' || b == b'=')
    {
        return Err(TrackCryptError::BadCharacter);
    }
    apply(clear, encrypt)
}

/// The clear track (digits and `D`) of an encrypted field value: `decrypt` is TDES-ECB
/// decryption of one 8-byte block. A result that is not track data is refused.
pub fn open_track(sealed: &str, decrypt: &mut BlockCipher<'_>) -> Result<String, TrackCryptError> {
    let clear = apply(sealed, decrypt)?;
    if clear.bytes().all(|b| b.is_ascii_digit() || b == b'D') {
        Ok(clear)
    } else {
        Err(TrackCryptError::NotTrackData)
    }
}

/// Field 53 with its third digit (the track-encryption flag) set to 1: the message's own
/// (PIN format and algorithm digits kept), or, without one, `0` (no PIN block), the algorithm
/// digit (`6` double-length TDES, `0` single DES) and the flag.
fn flagged_53(current: Option<&[u8]>, key_len: usize) -> Vec<u8> {
    let mut f = match current {
        Some(v) if v.len() >= 3 => v.to_vec(),
        _ => {
            let alg = if key_len == 16 { b'6' } else { b'0' };
            let mut v = vec![b'0'; 16];
            v[1] = alg;
            v
        }
    };
    if let Some(flag) = f.get_mut(2) {
        *flag = b'1';
    }
    f
}

/// Whether [`seal_tracks`] can encrypt the tracks of `msg` (long enough, BCD characters),
/// checked before anything is journaled.
pub fn check_tracks(msg: &Message) -> Result<(), TrackCryptError> {
    for f in TRACK_FIELDS {
        let Some(value) = msg.get(f) else { continue };
        let text = std::str::from_utf8(value).map_err(|_| TrackCryptError::BadCharacter)?;
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'D' || b == b'=')
        {
            return Err(TrackCryptError::BadCharacter);
        }
        pack(text)?;
    }
    Ok(())
}

/// The request as it goes out under `track_encryption = "cup-tdk"`: fields 35 and 36, when
/// present, encrypted with `encrypt`, and field 53's track flag set. `key_len` is the working
/// key length (field 53's algorithm digit when the message has no field 53 yet). A message
/// without track data is returned unchanged.
pub fn seal_tracks(
    msg: &Message,
    key_len: usize,
    encrypt: &mut BlockCipher<'_>,
) -> Result<Message, TrackCryptError> {
    let mut m = msg.clone();
    let mut any = false;
    for f in TRACK_FIELDS {
        let Some(value) = msg.get(f) else { continue };
        let text = std::str::from_utf8(value).map_err(|_| TrackCryptError::BadCharacter)?;
        m.set(f, seal_track(text, encrypt)?.into_bytes());
        any = true;
    }
    if any {
        m.set(SECURITY_FIELD, flagged_53(msg.get(SECURITY_FIELD), key_len));
    }
    Ok(m)
}

/// The host side of [`seal_tracks`] for a profile that encrypts tracks: when the message
/// carries track data, field 53's flag must be 1, and the message comes back with its tracks
/// decrypted by `decrypt`. (A profile without track encryption does not call this: its field
/// 53, when an acquirer's profile redefines it, need not follow the UnionPay layout.)
pub fn open_tracks(
    msg: &Message,
    decrypt: &mut BlockCipher<'_>,
) -> Result<Message, TrackCryptError> {
    if !TRACK_FIELDS.iter().any(|&f| msg.has(f)) {
        return Ok(msg.clone());
    }
    let flag = msg
        .get(SECURITY_FIELD)
        .and_then(|v| v.get(2))
        .map(|&b| char::from(b));
    if flag != Some('1') {
        return Err(TrackCryptError::Flag {
            got: flag,
            want: '1',
        });
    }
    let mut m = msg.clone();
    for f in TRACK_FIELDS {
        let Some(value) = msg.get(f) else { continue };
        let text = std::str::from_utf8(value).map_err(|_| TrackCryptError::BadCharacter)?;
        m.set(f, open_track(text, decrypt)?.into_bytes());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_crypto::TdesKey;
    use smartpos_iso8583::Mti;

    fn key(h: &str) -> TdesKey {
        TdesKey::new(&smartpos_types::hex::decode(h).unwrap()).unwrap()
    }

    fn tdk() -> TdesKey {
        key("0123456789ABCDEFFEDCBA9876543210")
    }

    fn enc(k: &TdesKey) -> impl FnMut(&[u8]) -> Result<Vec<u8>, String> + '_ {
        |b| k.encrypt_ecb(b).map_err(|e| e.to_string())
    }

    fn dec(k: &TdesKey) -> impl FnMut(&[u8]) -> Result<Vec<u8>, String> + '_ {
        |b| k.decrypt_ecb(b).map_err(|e| e.to_string())
    }

    /// The vectors of testdata/track-encryption.txt, computed with `openssl enc -des-ede-ecb`
    /// by testdata/track-encryption.sh (derivation in the file), not by this code.
    fn vectors() -> Vec<(String, String, String)> {
        let text = include_str!("../testdata/track-encryption.txt");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut it = l.split_whitespace();
                let k_hex = it.next().unwrap().to_owned();
                let clear = it.next().unwrap().to_owned();
                let sealed = it.next().unwrap().to_owned();
                (k_hex, clear, sealed)
            })
            .collect()
    }

    #[test]
    fn track_layout_matches_independently_computed_vectors() {
        let v = vectors();
        assert!(v.len() >= 3);
        for (k_hex, clear, sealed) in v {
            let k = key(&k_hex);
            assert_eq!(seal_track(&clear, &mut enc(&k)).unwrap(), sealed, "{clear}");
            let back = open_track(&sealed, &mut dec(&k)).unwrap();
            assert_eq!(back, clear.replace('=', "D"));
        }
    }

    #[test]
    fn only_the_eight_bytes_before_the_last_byte_change() {
        let k = tdk();
        let clear = "6222021234567890123D25122010000012345";
        let sealed = seal_track(clear, &mut enc(&k)).unwrap();
        assert_eq!(sealed.len(), clear.len());
        assert_ne!(sealed, clear);
        // 37 characters: 19 bytes; bytes 10..18 encrypted, so characters 0..20 and 36.. clear.
        assert_eq!(&sealed[..20], &clear[..20]);
        assert_eq!(&sealed[36..], &clear[36..]);
        assert_ne!(&sealed[20..36], &clear[20..36]);
    }

    #[test]
    fn short_tracks_are_refused_and_seventeen_characters_are_enough() {
        let k = tdk();
        assert_eq!(
            seal_track("6222021234567890", &mut enc(&k)),
            Err(TrackCryptError::TooShort { chars: 16 })
        );
        assert!(seal_track("62220212345678901", &mut enc(&k)).is_ok());
        assert_eq!(
            seal_track("6222A21234567890123D2512", &mut enc(&k)),
            Err(TrackCryptError::BadCharacter)
        );
    }

    #[test]
    fn wrong_key_is_not_track_data() {
        let k = tdk();
        let other = key("11111111111111112222222222222222");
        let sealed = seal_track("6222021234567890123D2512201", &mut enc(&k)).unwrap();
        assert_eq!(
            open_track(&sealed, &mut dec(&other)),
            Err(TrackCryptError::NotTrackData)
        );
    }

    #[test]
    fn messages_carry_the_flag_and_open_back() {
        let k = tdk();
        let mut m = Message::new(Mti(200));
        m.set(35, b"6222021234567890123D2512201".to_vec());
        m.set(53, b"2600000000000000".to_vec());
        let sealed = seal_tracks(&m, 16, &mut enc(&k)).unwrap();
        assert_eq!(sealed.get(53), Some(&b"2610000000000000"[..]));
        assert_ne!(sealed.get(35), m.get(35));
        let open = open_tracks(&sealed, &mut dec(&k)).unwrap();
        assert_eq!(open.get(35), m.get(35));
        // No PIN block: field 53 is made with the flag alone.
        let mut m2 = Message::new(Mti(200));
        m2.set(35, b"6222021234567890123D2512201".to_vec());
        let s2 = seal_tracks(&m2, 16, &mut enc(&k)).unwrap();
        assert_eq!(s2.get(53), Some(&b"0610000000000000"[..]));
        // A clear track, or a ciphertext without the flag, is refused.
        assert_eq!(
            open_tracks(&m, &mut dec(&k)).unwrap_err(),
            TrackCryptError::Flag {
                got: Some('0'),
                want: '1'
            }
        );
        assert_eq!(
            open_tracks(&m2, &mut dec(&k)).unwrap_err(),
            TrackCryptError::Flag {
                got: None,
                want: '1'
            }
        );
        // Without track data nothing is checked or changed.
        let none = Message::new(Mti(200));
        assert_eq!(seal_tracks(&none, 16, &mut enc(&k)).unwrap().len(), 0);
    }
}
