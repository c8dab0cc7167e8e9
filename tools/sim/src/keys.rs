//! The host's side of a profile's key options: SM4 working keys at sign-in, DUKPT derived
//! from a BDK, and the TEST keys the simulator and `smartpos terminal init` share.
//!
//! - Working keys (`[keys] scheme = "tmk"`): TDES keys ([`HostKeys::Tdes`], kept from the
//!   block the host issued or reloaded with [`tdes_unwrap`]), or SM4 keys under the same
//!   16-byte TMK taken as an SM4 key ([`sm4_sign_in`], [`sm4_unwrap`]); the MAC is the
//!   profile's algorithm (the SM4 form of `cup-ecb` for SM4), and the PIN block is checked
//!   against [`TEST_PIN`] under the PIK, TDES in the profile's `pin_format` or the SM4 block
//!   ([`pin_verdict_for`]).
//! - DUKPT (`dukpt-tdes`, `dukpt-aes`): no sign-in keys. Every MACed request carries its KSN in
//!   the profile's KSN field; [`dukpt_request`] derives that transaction's keys from the BDK,
//!   checks the request MAC and the PIN block, and the response is MACed under the same KSN's
//!   response key ([`dukpt_mac`]).
//!
//! The TEST BDKs and initial keys are the published ANSI X9.24-1:2009 (Annex A) and
//! X9.24-3-2017 test values: anyone can derive every key from them. Never use them in
//! production.

use smartpos_crypto::CryptoError;
use smartpos_crypto::dukpt::{DukptBdk, DukptScheme, DukptTxn};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::{self, MacDirection};
use smartpos_crypto::sm4::{self, Sm4Key};
use smartpos_iso8583::Message;
use smartpos_txn::profile::TrackEncryption;
use smartpos_txn::proto::{self, KeyRole, Profile};
use smartpos_txn::track;
use smartpos_types::hex::decode;
use smartpos_types::{Pan, Track2};

/// The TEST TDES BDK (ANSI X9.24-1:2009 Annex A).
pub const TEST_TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The TEST TDES initial KSN (counter zero).
pub const TEST_TDES_KSN: &str = "FFFF9876543210E00000";
/// The TEST TDES IPEK, derived from [`TEST_TDES_BDK`] and [`TEST_TDES_KSN`].
pub const TEST_TDES_IPEK: &str = "6AC292FAA1315B4D858AB3A3D7D5933A";
/// The TEST AES BDK (ANSI X9.24-3-2017 test vectors).
pub const TEST_AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
/// The TEST AES initial KSN: initial key ID 1234567890123456, counter zero.
pub const TEST_AES_KSN: &str = "123456789012345600000000";
/// The TEST AES-128 initial key, derived from [`TEST_AES_BDK`] and the initial key ID.
pub const TEST_AES_INITIAL_KEY: &str = "1273671EA26AC29AFA4D1084127652A1";
/// The PIN the simulator accepts unless told another
/// ([`crate::acquirer::Acquirer::with_accepted_pin`]), under every key option: TDES and SM4
/// working keys, DUKPT. Any other PIN is answered `55`, a block that does not decode `99`.
pub const TEST_PIN: &str = "1234";

/// The TEST BDK of a scheme.
pub fn test_bdk(scheme: DukptScheme) -> Result<DukptBdk, CryptoError> {
    let hex = match scheme {
        DukptScheme::Tdes => TEST_TDES_BDK,
        DukptScheme::Aes => TEST_AES_BDK,
    };
    DukptBdk::new(scheme, &decode(hex).unwrap_or_default())
}

/// The TEST initial key and initial KSN (hex) a terminal of `scheme` is loaded with by default.
pub fn test_initial_key(scheme: DukptScheme) -> (&'static str, &'static str) {
    match scheme {
        DukptScheme::Tdes => (TEST_TDES_IPEK, TEST_TDES_KSN),
        DukptScheme::Aes => (TEST_AES_INITIAL_KEY, TEST_AES_KSN),
    }
}

/// A terminal's working keys as the host holds them after its sign-in.
#[derive(Debug)]
pub enum HostKeys {
    /// TDES: the PIK, the MAK and, when the block has one, the TDK.
    Tdes {
        /// PIN key (field 52 is decrypted with it in the profile's `pin_format`).
        pik: TdesKey,
        /// MAC key.
        mak: TdesKey,
        /// Track data key (`track_encryption = "cup-tdk"` decrypts fields 35 and 36 with it).
        tdk: Option<TdesKey>,
    },
    /// SM4: the MAK and the PIK (PIN blocks are checked).
    Sm4 {
        /// MAC key.
        mak: Sm4Key,
        /// PIN key.
        pik: Sm4Key,
    },
}

impl HostKeys {
    /// The MAC over `input` under the MAK with the profile's algorithm.
    pub fn mac(&self, profile: &Profile, input: &[u8]) -> Option<[u8; 8]> {
        match self {
            HostKeys::Tdes { mak, .. } => proto::compute_mac(profile, mak, input),
            HostKeys::Sm4 { mak, .. } => Some(smartpos_crypto::mac::cup_sm4(mak, input)),
        }
    }
}

/// The TMK's 16 bytes as an SM4 master key (SM4 profiles).
pub fn sm4_tmk(tmk: &TdesKey) -> Result<Sm4Key, CryptoError> {
    Sm4Key::new(tmk.expose())
}

/// An SM4 sign-in: fresh SM4 keys in the profile's block order, each SM4-ECB under the TMK and
/// followed by its check value; the block and the keys the host keeps.
pub fn sm4_sign_in(profile: &Profile, tmk: &Sm4Key) -> Result<(Vec<u8>, HostKeys), CryptoError> {
    let layout = &profile.keys;
    let mut block = Vec::new();
    let (mut pik, mut mak) = (None, None);
    for role in &layout.order {
        let key = Sm4Key::generate()?;
        let (enc, _) = sm4::wrap_working_key(tmk, &key);
        block.extend_from_slice(&enc);
        let cv = key.check_block();
        block.extend_from_slice(cv.get(..layout.kcv_len).unwrap_or(&cv));
        match role {
            KeyRole::Pik => pik = Some(key),
            KeyRole::Mak => mak = Some(key),
            KeyRole::Tdk => {}
        }
    }
    match (pik, mak) {
        (Some(pik), Some(mak)) => Ok((block, HostKeys::Sm4 { mak, pik })),
        _ => Err(CryptoError::OutOfRange {
            what: "key order without PIK and MAK",
        }),
    }
}

/// The SM4 keys of a kept sign-in block (a restarted host's ledger file), check values
/// verified.
pub fn sm4_unwrap(profile: &Profile, tmk: &Sm4Key, block: &[u8]) -> Result<HostKeys, CryptoError> {
    let layout = &profile.keys;
    let entry = layout.key_len + layout.kcv_len;
    let (mut pik, mut mak) = (None, None);
    for (i, role) in layout.order.iter().enumerate() {
        let Some(e) = block.get(i * entry..(i + 1) * entry) else {
            continue;
        };
        let (enc, cv) = e.split_at(layout.key_len);
        let key = sm4::unwrap_working_key(tmk, enc, cv)?;
        match role {
            KeyRole::Pik => pik = Some(key),
            KeyRole::Mak => mak = Some(key),
            KeyRole::Tdk => {}
        }
    }
    match (pik, mak) {
        (Some(pik), Some(mak)) => Ok(HostKeys::Sm4 { mak, pik }),
        _ => Err(CryptoError::KcvMismatch),
    }
}

/// The TDES keys of a kept sign-in block (a restarted host's ledger file), check values
/// verified: the same unwrap as the block the host issued ([`KeyLayout::unwrap`]).
///
/// [`KeyLayout::unwrap`]: smartpos_txn::profile::KeyLayout::unwrap
pub fn tdes_unwrap(profile: &Profile, tmk: &TdesKey, block: &[u8]) -> Result<HostKeys, String> {
    let k = profile.keys.unwrap(tmk, block).map_err(|e| e.to_string())?;
    Ok(HostKeys::Tdes {
        pik: k.pik,
        mak: k.mak,
        tdk: k.tdk,
    })
}

/// The PAN of a request: field 2, or the PAN of track 2 (field 35).
fn request_pan(msg: &Message) -> Option<Pan> {
    if let Some(p) = msg.text(2).and_then(|p| Pan::new(p).ok()) {
        return Some(p);
    }
    msg.text(35).and_then(Track2::new).and_then(|t| t.pan())
}

/// The response code for a request's PIN block (field 52), if it has one: `None` when the PIN
/// is `accepted` (by default [`TEST_PIN`]) or there is no block, `55` for another PIN, `99`
/// for a block that does not decode or a request without a PAN. `decrypt` turns the block
/// into the PIN.
fn pin_verdict(
    msg: &Message,
    accepted: &smartpos_crypto::Pin,
    decrypt: impl FnOnce(&[u8], &Pan) -> Result<smartpos_crypto::Pin, CryptoError>,
) -> Option<&'static str> {
    let block = msg.get(52)?;
    let Some(pan) = request_pan(msg) else {
        return Some("99");
    };
    match decrypt(block, &pan) {
        Ok(pin) if pin == *accepted => None,
        Ok(_) => Some("55"),
        Err(e) => {
            log::warn!("host: PIN block does not decode ({e})");
            Some("99")
        }
    }
}

/// The PIN verdict of a working-key terminal's request (see [`pin_verdict`]): under a TDES
/// PIK the block is decrypted in the profile's `pin_format` (0, 1 or 3), under an SM4 PIK as
/// the SM4 block. `msg` must carry clear tracks (see [`open_request_tracks`]): the PAN may
/// come from track 2.
pub fn pin_verdict_for(
    profile: &Profile,
    keys: &HostKeys,
    msg: &Message,
    accepted: &smartpos_crypto::Pin,
) -> Option<&'static str> {
    match keys {
        HostKeys::Tdes { pik, .. } => pin_verdict(msg, accepted, |b, pan| {
            smartpos_crypto::pinblock::decrypt_tdes(pik, profile.keys.pin_format, b, Some(pan))
        }),
        HostKeys::Sm4 { pik, .. } => pin_verdict(msg, accepted, |b, pan| {
            smartpos_crypto::pinblock::decrypt_sm4(pik, b, pan)
        }),
    }
}

/// What the host found in a DUKPT request.
#[derive(Debug)]
pub enum DukptVerdict {
    /// The request checks: its transaction's keys (for the response MAC) and the PIN verdict.
    Good(DukptTxn, Option<&'static str>),
    /// Refused with this response code (`A0`: no KSN, a KSN no device uses, a bad MAC).
    Refused(&'static str),
}

/// Checks a DUKPT request: derives its transaction's keys from the BDK and the KSN in the
/// profile's KSN field, verifies the request MAC (when the profile MACs) and decrypts the PIN
/// block (see [`pin_verdict_for`] for `accepted`).
pub fn dukpt_request(
    profile: &Profile,
    bdk: &DukptBdk,
    msg: &Message,
    raw: &[u8],
    accepted: &smartpos_crypto::Pin,
) -> DukptVerdict {
    let Some(d) = profile.keys.dukpt() else {
        return DukptVerdict::Refused("A0");
    };
    let Some(ksn) = msg
        .get(d.ksn_field)
        .and_then(|f| profile.keys.decode_ksn(f))
    else {
        log::warn!(
            "host: DUKPT request without a usable KSN in field {}",
            d.ksn_field
        );
        return DukptVerdict::Refused("A0");
    };
    let txn = match DukptTxn::from_bdk(bdk, &ksn) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("host: DUKPT KSN refused ({e})");
            return DukptVerdict::Refused("A0");
        }
    };
    if d.mac {
        let good = proto::verify_mac_by_fn(profile, raw, msg, &mut |input| {
            dukpt_mac(profile, &txn, MacDirection::Request, input)
        });
        if !good {
            log::warn!("host: DUKPT request MAC did not verify");
            return DukptVerdict::Refused("A0");
        }
    }
    let format = profile.keys.pin_format;
    // The PAN may come from an encrypted track 2: read it clear (a track that does not open
    // is answered 30 by the caller, which checks the tracks again).
    let data_key = match &txn {
        DukptTxn::Tdes(t) => Some(t.data_request_key()),
        DukptTxn::Aes(_) => None,
    };
    let clear = open_request_tracks(profile, msg, data_key.as_ref());
    let msg = clear.as_ref().unwrap_or(msg);
    let pin = pin_verdict(msg, accepted, |b, pan| txn.decrypt_pin(format, b, pan));
    DukptVerdict::Good(txn, pin)
}

/// A request with its track data decrypted (`track_encryption = "cup-tdk"`): field 53's flag
/// checked and fields 35 and 36 opened under `tdk` (the terminal's TDK, or the TDES DUKPT data
/// request key of its KSN). Other profiles: the request as it came. The error never holds
/// track characters.
pub fn open_request_tracks(
    profile: &Profile,
    msg: &Message,
    tdk: Option<&TdesKey>,
) -> Result<Message, String> {
    if profile.keys.track_encryption != TrackEncryption::CupTdk {
        return Ok(msg.clone());
    }
    let mut decrypt = |b: &[u8]| match tdk {
        Some(k) => k.decrypt_ecb(b).map_err(|e| e.to_string()),
        None => Err("no track data key for this terminal".to_owned()),
    };
    track::open_tracks(msg, &mut decrypt).map_err(|e| e.to_string())
}

/// A DUKPT transaction's MAC over `input` (leftmost 8 bytes) with the profile's algorithm.
pub fn dukpt_mac(
    profile: &Profile,
    txn: &DukptTxn,
    direction: MacDirection,
    input: &[u8],
) -> Option<[u8; 8]> {
    let m = module::dukpt_mac(txn, direction, proto::mac_method(profile.mac), input).ok()?;
    m.get(..8)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_crypto::pinblock::PinBlockFormat;
    use smartpos_types::hex::encode;

    /// A request with a PIN block for `pin` under `pik` in `format`, PAN in field 2.
    fn pin_request(pik: &TdesKey, format: PinBlockFormat, pin: &str) -> Message {
        let pan = Pan::new("6222021234567890123").unwrap();
        let mut rng = smartpos_crypto::pinblock::system_random();
        let block = smartpos_crypto::pinblock::encrypt_tdes(
            pik,
            format,
            &smartpos_crypto::Pin::new(pin).unwrap(),
            Some(&pan),
            &mut rng,
        )
        .unwrap();
        let mut msg = Message::new(smartpos_iso8583::Mti(200));
        msg.set(2, pan.expose().as_bytes().to_vec());
        msg.set(52, block.expose().to_vec());
        msg
    }

    fn test_pin() -> smartpos_crypto::Pin {
        smartpos_crypto::Pin::new(TEST_PIN).unwrap()
    }

    fn tdes_keys() -> HostKeys {
        HostKeys::Tdes {
            pik: TdesKey::generate(16).unwrap(),
            mak: TdesKey::generate(16).unwrap(),
            tdk: None,
        }
    }

    #[test]
    fn tdes_pik_checks_the_pin_in_the_profiles_format() {
        for format in [
            PinBlockFormat::Iso0,
            PinBlockFormat::Iso1,
            PinBlockFormat::Iso3,
        ] {
            let mut profile = Profile::by_name("cup").unwrap();
            profile.keys.pin_format = format;
            let keys = tdes_keys();
            let HostKeys::Tdes { pik, .. } = &keys else {
                unreachable!()
            };
            let right = pin_request(pik, format, TEST_PIN);
            assert_eq!(
                pin_verdict_for(&profile, &keys, &right, &test_pin()),
                None,
                "{format:?}"
            );
            let wrong = pin_request(pik, format, "4321");
            assert_eq!(
                pin_verdict_for(&profile, &keys, &wrong, &test_pin()),
                Some("55"),
                "{format:?}"
            );
            // Under another PIK the block does not decode to a PIN, or decodes to another one.
            let other = TdesKey::generate(16).unwrap();
            let foreign = pin_request(&other, format, TEST_PIN);
            assert_ne!(
                pin_verdict_for(&profile, &keys, &foreign, &test_pin()),
                None,
                "{format:?}"
            );
        }
    }

    #[test]
    fn tdes_pin_block_that_does_not_decode_is_99_and_no_block_is_no_verdict() {
        let profile = Profile::by_name("cup").unwrap();
        let keys = tdes_keys();
        let HostKeys::Tdes { pik, .. } = &keys else {
            unreachable!()
        };
        let mut short = pin_request(pik, PinBlockFormat::Iso0, TEST_PIN);
        short.set(52, vec![0u8; 7]);
        assert_eq!(
            pin_verdict_for(&profile, &keys, &short, &test_pin()),
            Some("99")
        );
        // No PAN to decode a format 0 block with.
        let mut no_pan = pin_request(pik, PinBlockFormat::Iso0, TEST_PIN);
        no_pan.remove(2);
        assert_eq!(
            pin_verdict_for(&profile, &keys, &no_pan, &test_pin()),
            Some("99")
        );
        let mut none = pin_request(pik, PinBlockFormat::Iso0, TEST_PIN);
        none.remove(52);
        assert_eq!(pin_verdict_for(&profile, &keys, &none, &test_pin()), None);
    }

    #[test]
    fn test_initial_keys_are_the_bdks_initial_keys() {
        for scheme in [DukptScheme::Tdes, DukptScheme::Aes] {
            let (ik, ksn) = test_initial_key(scheme);
            let got = test_bdk(scheme)
                .unwrap()
                .initial_key(&decode(ksn).unwrap())
                .unwrap();
            assert_eq!(encode(got.expose()), ik);
        }
    }
}
