//! ISO 9564-1 PIN blocks: formats 0, 1 and 3 (8-byte blocks for TDES) and 4 (16-byte AES).
//!
//! Layout (one nibble per character):
//! - format 0: `0 L P..P F..F` XOR `0000 + 12 rightmost PAN digits excluding the check digit`
//! - format 1: `1 L P..P R..R` (R = random nibbles 0-F; no PAN)
//! - format 3: `3 L P..P R..R` (R = random nibbles A-F) XOR the format 0 PAN field
//! - format 4: PIN field `4 L P..P A..A` (16 nibbles) + 8 random bytes; PAN field
//!   `M + PAN digits + 0 padding` (M = PAN length − 12; shorter PANs are left-padded with zeros
//!   to 12 digits and M = 0, ISO 9564-1:2017); enciphered as
//!   `AES(K, AES(K, PIN field) XOR PAN field)`.
//!
//! For format 4 the "clear block" of this module is the plain PIN field. Random fill comes from
//! a caller-supplied `FnMut(&mut [u8])` (tests fix it) or [`system_random`] (ring); a caller may
//! also give the literal fill with [`encode_with_fill`].
//!
//! UnionPay national-algorithm terminals use a 16-byte widening of format 0 under an SM4 PIK
//! ([`encode_sm4`], [`encrypt_sm4`]).

use crate::CryptoError;
use crate::keys::{AesKey, TdesKey, to_block, xor_in_place};
use crate::sm4::Sm4Key;
use ring::rand::{SecureRandom, SystemRandom};
use smartpos_types::{Pan, SecretBytes};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A PIN: 4 to 12 decimal digits. Zeroized on drop; `Debug`/`Display` show nothing of it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl Pin {
    /// Parses a PIN of 4 to 12 ASCII digits.
    pub fn new(digits: &str) -> Result<Self, CryptoError> {
        if !(4..=12).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::BadPin { len: digits.len() });
        }
        Ok(Pin(digits.to_owned()))
    }

    /// The clear PIN digits.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a PIN has at least 4 digits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// An ISO 9564-1 PIN block format this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinBlockFormat {
    /// Format 0 (ANSI X9.8): PIN XOR PAN, fill F.
    Iso0,
    /// Format 1: PIN and random transaction fill, no PAN.
    Iso1,
    /// Format 3: like format 0 with random fill A-F.
    Iso3,
    /// Format 4: AES, 16-byte blocks, PAN bound through double encipherment.
    Iso4,
}

impl PinBlockFormat {
    /// The format for its ISO number (0, 1, 3 or 4).
    pub fn from_number(n: u8) -> Result<Self, CryptoError> {
        match n {
            0 => Ok(PinBlockFormat::Iso0),
            1 => Ok(PinBlockFormat::Iso1),
            3 => Ok(PinBlockFormat::Iso3),
            4 => Ok(PinBlockFormat::Iso4),
            format => Err(CryptoError::UnsupportedPinBlockFormat { format }),
        }
    }

    /// The ISO number, which is also the control nibble.
    pub fn number(self) -> u8 {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso1 => 1,
            PinBlockFormat::Iso3 => 3,
            PinBlockFormat::Iso4 => 4,
        }
    }

    /// Block size in bytes: 8, or 16 for format 4.
    pub fn block_len(self) -> usize {
        if self == PinBlockFormat::Iso4 { 16 } else { 8 }
    }

    /// Whether the format binds the PAN.
    pub fn needs_pan(self) -> bool {
        self != PinBlockFormat::Iso1
    }

    /// How many fill values [`encode_with_fill`] needs for a PIN of `pin_len` digits:
    /// format 0: none; formats 1 and 3: one per fill nibble (14 − PIN length); format 4: 8 bytes.
    pub fn fill_len(self, pin_len: usize) -> usize {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso1 | PinBlockFormat::Iso3 => 14usize.saturating_sub(pin_len),
            PinBlockFormat::Iso4 => 8,
        }
    }
}

/// A random source backed by ring's `SystemRandom` (the OS CSPRNG), for production fill.
pub fn system_random() -> impl FnMut(&mut [u8]) -> Result<(), CryptoError> {
    let rng = SystemRandom::new();
    move |buf: &mut [u8]| rng.fill(buf).map_err(|_| CryptoError::Random)
}

/// Writes nibbles (each < 16) into `out` starting at nibble index `start`.
fn put_nibbles(out: &mut [u8], start: usize, nibbles: &[u8]) {
    for (i, n) in nibbles.iter().enumerate() {
        let pos = start + i;
        if let Some(b) = out.get_mut(pos / 2) {
            if pos.is_multiple_of(2) {
                *b = (*b & 0x0F) | (n << 4);
            } else {
                *b = (*b & 0xF0) | (n & 0x0F);
            }
        }
    }
}

fn nibble_at(bytes: &[u8], pos: usize) -> u8 {
    match bytes.get(pos / 2) {
        Some(b) if pos.is_multiple_of(2) => b >> 4,
        Some(b) => b & 0x0F,
        None => 0,
    }
}

fn digits_of(s: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.bytes().map(|b| b.wrapping_sub(b'0')).collect())
}

fn require_pan(format: PinBlockFormat, pan: Option<&Pan>) -> Result<&Pan, CryptoError> {
    pan.ok_or(CryptoError::PanRequired {
        format: format.number(),
    })
}

/// The PAN field of formats 0 and 3: `0000` + the 12 rightmost PAN digits excluding the check
/// digit (left-padded with zeros when the PAN is shorter than 13 digits).
pub fn pan_field_iso0(pan: &Pan) -> [u8; 8] {
    let digits = digits_of(pan.expose());
    let body = &digits[..digits.len().saturating_sub(1)];
    let take = &body[body.len().saturating_sub(12)..];
    let mut out = [0u8; 8];
    put_nibbles(&mut out, 16 - take.len(), take);
    out
}

/// The PAN field of format 4 (ISO 9564-1:2017): nibble M = PAN length − 12 (0 for PANs of 12
/// digits or fewer, which are left-padded with zeros to 12), the PAN digits, then zeros.
pub fn pan_field_iso4(pan: &Pan) -> [u8; 16] {
    pan_field_iso4_digits(pan.expose())
}

fn pan_field_iso4_digits(pan: &str) -> [u8; 16] {
    let digits = digits_of(pan);
    let mut out = [0u8; 16];
    let m = digits.len().saturating_sub(12).min(7) as u8;
    put_nibbles(&mut out, 0, &[m]);
    let pad = 12usize.saturating_sub(digits.len());
    let take = &digits[..digits.len().min(19)];
    put_nibbles(&mut out, 1 + pad, take);
    out
}

/// Encodes a clear PIN block (format 4: the plain PIN field) with a literal fill:
/// formats 1/3 take one value per fill nibble (format 1: 0x0..=0xF, format 3: 0xA..=0xF), at
/// least [`PinBlockFormat::fill_len`] of them (extra values are ignored); format 4 takes 8
/// bytes; format 0 takes none (`fill` is ignored).
pub fn encode_with_fill(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let pin_digits = digits_of(pin.expose());
    let len = pin_digits.len();
    let need = format.fill_len(len);
    let fill = fill.get(..need).ok_or(CryptoError::BadFill {
        format: format.number(),
        expected: match format {
            PinBlockFormat::Iso4 => "8 bytes",
            _ => "one nibble per fill position (14 minus the PIN length)",
        },
    })?;
    let mut block = Zeroizing::new(vec![0u8; format.block_len()]);
    put_nibbles(&mut block, 0, &[format.number(), len as u8]);
    put_nibbles(&mut block, 2, &pin_digits);
    match format {
        PinBlockFormat::Iso0 => {
            let f = [0x0Fu8; 14];
            put_nibbles(&mut block, 2 + len, &f[..14 - len]);
        }
        PinBlockFormat::Iso1 | PinBlockFormat::Iso3 => {
            let ok = fill.iter().all(|&n| match format {
                PinBlockFormat::Iso3 => (0x0A..=0x0F).contains(&n),
                _ => n <= 0x0F,
            });
            if !ok {
                return Err(CryptoError::BadFill {
                    format: format.number(),
                    expected: if format == PinBlockFormat::Iso3 {
                        "nibbles A-F"
                    } else {
                        "nibbles 0-F"
                    },
                });
            }
            put_nibbles(&mut block, 2 + len, fill);
        }
        PinBlockFormat::Iso4 => {
            let a = [0x0Au8; 14];
            put_nibbles(&mut block, 2 + len, &a[..14 - len]);
            block[8..16].copy_from_slice(fill);
        }
    }
    if matches!(format, PinBlockFormat::Iso0 | PinBlockFormat::Iso3) {
        let pan = require_pan(format, pan)?;
        xor_in_place(&mut block, &pan_field_iso0(pan));
    }
    Ok(SecretBytes::new(block.to_vec()))
}

/// Draws the fill for `format` from `rng` and maps it to literal fill values. Format 3 uses
/// rejection sampling (byte < 252, then mod 6) so the nibbles A-F are uniform; a source that
/// keeps returning bytes ≥ 252 gives [`CryptoError::Random`].
pub fn draw_fill(
    format: PinBlockFormat,
    pin_len: usize,
    rng: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let need = format.fill_len(pin_len);
    let mut out = Zeroizing::new(Vec::with_capacity(need));
    match format {
        PinBlockFormat::Iso0 => {}
        PinBlockFormat::Iso1 | PinBlockFormat::Iso4 => {
            let mut buf = Zeroizing::new(vec![0u8; need]);
            rng(&mut buf)?;
            if format == PinBlockFormat::Iso1 {
                out.extend(buf.iter().map(|b| b & 0x0F));
            } else {
                out.extend_from_slice(&buf);
            }
        }
        PinBlockFormat::Iso3 => {
            let mut buf = Zeroizing::new(vec![0u8; need * 2]);
            for _ in 0..16 {
                rng(&mut buf)?;
                for &b in buf.iter().filter(|&&b| b < 252) {
                    if out.len() < need {
                        out.push(0x0A + b % 6);
                    }
                }
                if out.len() == need {
                    return Ok(out);
                }
            }
            return Err(CryptoError::Random);
        }
    }
    Ok(out)
}

/// Encodes a clear PIN block (format 4: the plain PIN field), fill drawn from `rng`.
pub fn encode(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<SecretBytes, CryptoError> {
    let fill = draw_fill(format, pin.len(), rng)?;
    encode_with_fill(format, pin, pan, &fill)
}

/// Decodes and validates a clear PIN block (format 4: the plain PIN field): control nibble,
/// PIN length 4..=12, decimal PIN digits, fill F (format 0), A-F (format 3) or A (format 4,
/// first half).
pub fn decode(format: PinBlockFormat, clear: &[u8], pan: Option<&Pan>) -> Result<Pin, CryptoError> {
    if clear.len() != format.block_len() {
        return Err(CryptoError::InputLength {
            what: "PIN block",
            expected: if format == PinBlockFormat::Iso4 {
                "16"
            } else {
                "8"
            },
            got: clear.len(),
        });
    }
    let mut block = Zeroizing::new(clear.to_vec());
    if matches!(format, PinBlockFormat::Iso0 | PinBlockFormat::Iso3) {
        let pan = require_pan(format, pan)?;
        xor_in_place(&mut block, &pan_field_iso0(pan));
    }
    let control = nibble_at(&block, 0);
    if control != format.number() {
        return Err(CryptoError::PinBlockControl {
            expected: format.number(),
            got: control,
        });
    }
    let len = nibble_at(&block, 1);
    if !(4..=12).contains(&len) {
        return Err(CryptoError::PinBlockPinLength { len });
    }
    let len = usize::from(len);
    let mut pin = Zeroizing::new(String::with_capacity(len));
    for pos in 2..2 + len {
        let d = nibble_at(&block, pos);
        if d > 9 {
            return Err(CryptoError::PinBlockDigit);
        }
        pin.push(char::from(b'0' + d));
    }
    let fill_ok = (2 + len..16).all(|pos| {
        let n = nibble_at(&block, pos);
        match format {
            PinBlockFormat::Iso0 => n == 0x0F,
            PinBlockFormat::Iso1 => true,
            PinBlockFormat::Iso3 => n >= 0x0A,
            PinBlockFormat::Iso4 => n == 0x0A,
        }
    });
    if !fill_ok {
        return Err(CryptoError::PinBlockFill {
            format: format.number(),
        });
    }
    Pin::new(&pin)
}

fn tdes_format(format: PinBlockFormat) -> Result<(), CryptoError> {
    if format == PinBlockFormat::Iso4 {
        return Err(CryptoError::PinBlockKeyType {
            format: 4,
            expected: "AES",
        });
    }
    Ok(())
}

/// Encodes and TDES-ECB encrypts a format 0, 1 or 3 PIN block.
pub fn encrypt_tdes(
    key: &TdesKey,
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<SecretBytes, CryptoError> {
    tdes_format(format)?;
    let clear = encode(format, pin, pan, rng)?;
    encipher_tdes(key, &clear)
}

/// TDES-ECB encrypts a clear 8-byte PIN block.
pub fn encipher_tdes(key: &TdesKey, clear: &SecretBytes) -> Result<SecretBytes, CryptoError> {
    if clear.len() != 8 {
        return Err(CryptoError::InputLength {
            what: "PIN block",
            expected: "8",
            got: clear.len(),
        });
    }
    let mut b = to_block::<8>(clear.expose());
    key.encrypt_block(&mut b);
    Ok(SecretBytes::new(b.to_vec()))
}

/// Decrypts (TDES-ECB) and decodes a format 0, 1 or 3 PIN block.
pub fn decrypt_tdes(
    key: &TdesKey,
    format: PinBlockFormat,
    block: &[u8],
    pan: Option<&Pan>,
) -> Result<Pin, CryptoError> {
    tdes_format(format)?;
    if block.len() != 8 {
        return Err(CryptoError::InputLength {
            what: "PIN block",
            expected: "8",
            got: block.len(),
        });
    }
    let mut b = Zeroizing::new(to_block::<8>(block));
    key.decrypt_block(&mut b);
    decode(format, &b[..], pan)
}

/// Format 4 encipherment of a plain PIN field: `AES(K, AES(K, pin_field) XOR pan_field)`.
pub fn encipher_iso4(
    key: &AesKey,
    pin_field: &SecretBytes,
    pan: &Pan,
) -> Result<SecretBytes, CryptoError> {
    if pin_field.len() != 16 {
        return Err(CryptoError::InputLength {
            what: "PIN field",
            expected: "16",
            got: pin_field.len(),
        });
    }
    let mut b = Zeroizing::new(to_block::<16>(pin_field.expose()));
    key.encrypt_block(&mut b);
    xor_in_place(&mut b[..], &pan_field_iso4(pan));
    key.encrypt_block(&mut b);
    Ok(SecretBytes::new(b.to_vec()))
}

/// Format 4 decipherment: returns the plain PIN field (undecoded).
pub fn decipher_iso4(key: &AesKey, block: &[u8], pan: &Pan) -> Result<SecretBytes, CryptoError> {
    if block.len() != 16 {
        return Err(CryptoError::InputLength {
            what: "PIN block",
            expected: "16",
            got: block.len(),
        });
    }
    let mut b = Zeroizing::new(to_block::<16>(block));
    key.decrypt_block(&mut b);
    xor_in_place(&mut b[..], &pan_field_iso4(pan));
    key.decrypt_block(&mut b);
    Ok(SecretBytes::new(b.to_vec()))
}

/// Encodes and enciphers a format 4 PIN block under an AES key.
pub fn encrypt_aes(
    key: &AesKey,
    pin: &Pin,
    pan: &Pan,
    rng: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<SecretBytes, CryptoError> {
    let field = encode(PinBlockFormat::Iso4, pin, Some(pan), rng)?;
    encipher_iso4(key, &field, pan)
}

/// Deciphers and decodes a format 4 PIN block.
pub fn decrypt_aes(key: &AesKey, block: &[u8], pan: &Pan) -> Result<Pin, CryptoError> {
    let field = decipher_iso4(key, block, pan)?;
    decode(PinBlockFormat::Iso4, field.expose(), Some(pan))
}

/// The 16-byte PIN block of UnionPay national-algorithm (SM4) terminals: ISO format 0 widened
/// to the SM4 block. PIN field `0 L P..P F..F` (32 nibbles), PAN field 20 zero nibbles then the
/// 12 rightmost PAN digits excluding the check digit; the clear block is their XOR. As with
/// [`crate::mac::cup_sm4`], UnionPay's own specification is not public; this is the layout
/// public write-ups give (e.g. <https://blog.csdn.net/M_Kerry/article/details/104625499>,
/// "SM4 ECB + ANSI X9.8 with PAN": PIN 123654, PAN 6230606601007726888 give
/// `06123654FFFFFFFFFFFF99FEFF88D977`).
pub fn encode_sm4(pin: &Pin, pan: &Pan) -> SecretBytes {
    let pin_digits = digits_of(pin.expose());
    let len = pin_digits.len();
    let mut block = Zeroizing::new(vec![0xFFu8; 16]);
    put_nibbles(&mut block, 0, &[0, len as u8]);
    put_nibbles(&mut block, 2, &pin_digits);
    xor_in_place(&mut block[8..], &pan_field_iso0(pan));
    SecretBytes::new(block.to_vec())
}

/// Decodes a clear 16-byte SM4 PIN block (see [`encode_sm4`]): control nibble 0, PIN length
/// 4..=12, decimal digits, fill F.
pub fn decode_sm4(clear: &[u8], pan: &Pan) -> Result<Pin, CryptoError> {
    if clear.len() != 16 {
        return Err(CryptoError::InputLength {
            what: "SM4 PIN block",
            expected: "16",
            got: clear.len(),
        });
    }
    let mut block = Zeroizing::new(clear.to_vec());
    xor_in_place(&mut block[8..], &pan_field_iso0(pan));
    let control = nibble_at(&block, 0);
    if control != 0 {
        return Err(CryptoError::PinBlockControl {
            expected: 0,
            got: control,
        });
    }
    let len = nibble_at(&block, 1);
    if !(4..=12).contains(&len) {
        return Err(CryptoError::PinBlockPinLength { len });
    }
    let len = usize::from(len);
    let mut pin = Zeroizing::new(String::with_capacity(len));
    for pos in 2..2 + len {
        let d = nibble_at(&block, pos);
        if d > 9 {
            return Err(CryptoError::PinBlockDigit);
        }
        pin.push(char::from(b'0' + d));
    }
    if !(2 + len..32).all(|pos| nibble_at(&block, pos) == 0x0F) {
        return Err(CryptoError::PinBlockFill { format: 0 });
    }
    Pin::new(&pin)
}

/// Encodes and SM4-ECB encrypts the 16-byte national-algorithm PIN block under an SM4 PIK.
pub fn encrypt_sm4(key: &Sm4Key, pin: &Pin, pan: &Pan) -> SecretBytes {
    let clear = encode_sm4(pin, pan);
    let mut b = Zeroizing::new(to_block::<16>(clear.expose()));
    key.encrypt_block(&mut b);
    SecretBytes::new(b.to_vec())
}

/// Decrypts (SM4-ECB) and decodes a 16-byte national-algorithm PIN block.
pub fn decrypt_sm4(key: &Sm4Key, block: &[u8], pan: &Pan) -> Result<Pin, CryptoError> {
    if block.len() != 16 {
        return Err(CryptoError::InputLength {
            what: "SM4 PIN block",
            expected: "16",
            got: block.len(),
        });
    }
    let mut b = Zeroizing::new(to_block::<16>(block));
    key.decrypt_block(&mut b);
    decode_sm4(&b[..], pan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use smartpos_types::hex::{decode as hx, encode as he};

    fn pan(s: &str) -> Pan {
        Pan::new(s).unwrap()
    }

    fn fixed(byte: u8) -> impl FnMut(&mut [u8]) -> Result<(), CryptoError> {
        move |b: &mut [u8]| {
            b.fill(byte);
            Ok(())
        }
    }

    #[test]
    fn format0_published_example() {
        let b = encode(
            PinBlockFormat::Iso0,
            &Pin::new("1234").unwrap(),
            Some(&pan("4012345678909")),
            &mut fixed(0),
        )
        .unwrap();
        assert_eq!(he(b.expose()), "041274EDCBA9876F");
        let p = decode(
            PinBlockFormat::Iso0,
            b.expose(),
            Some(&pan("4012345678909")),
        )
        .unwrap();
        assert_eq!(p.expose(), "1234");
    }

    #[test]
    fn format1_and_3_with_fixed_fill() {
        let pin = Pin::new("1234").unwrap();
        let b1 = encode_with_fill(PinBlockFormat::Iso1, &pin, None, &[0x1; 10]).unwrap();
        assert_eq!(he(b1.expose()), "1412341111111111");
        let p = pan("4012345678909");
        let b3 = encode_with_fill(PinBlockFormat::Iso3, &pin, Some(&p), &[0xA; 10]).unwrap();
        // 341234AAAAAAAAAA XOR 0000401234567890
        assert_eq!(he(b3.expose()), "341274B89EFCD23A");
        assert_eq!(
            decode(PinBlockFormat::Iso3, b3.expose(), Some(&p)).unwrap(),
            pin
        );
        assert!(matches!(
            encode_with_fill(PinBlockFormat::Iso3, &pin, Some(&p), &[0x9; 10]),
            Err(CryptoError::BadFill { format: 3, .. })
        ));
        assert!(matches!(
            encode_with_fill(PinBlockFormat::Iso3, &pin, Some(&p), &[0xA; 9]),
            Err(CryptoError::BadFill { format: 3, .. })
        ));
    }

    #[test]
    fn format4_pan_field_and_pin_field() {
        assert_eq!(
            he(&pan_field_iso4(&pan("1122334455667788990"))),
            "71122334455667788990000000000000"
        );
        assert_eq!(
            he(&pan_field_iso4(&pan("112233445566"))),
            "01122334455660000000000000000000"
        );
        assert_eq!(
            he(&pan_field_iso4_digits("12345")),
            "00000000123450000000000000000000"
        );
        let f = encode_with_fill(
            PinBlockFormat::Iso4,
            &Pin::new("1234").unwrap(),
            None,
            &hx("0011223344556677").unwrap(),
        )
        .unwrap();
        assert_eq!(he(f.expose()), "441234AAAAAAAAAA0011223344556677");
    }

    #[test]
    fn format4_published_decrypt() {
        let key = AesKey::new(&hx("00112233445566778899AABBCCDDEEFF").unwrap()).unwrap();
        let block = hx("E4BE5B623AF7E006AC319E5B93544564").unwrap();
        let p = decrypt_aes(&key, &block, &pan("1234567890123456")).unwrap();
        assert_eq!(p.expose(), "1234");
    }

    #[test]
    fn decode_rejects_bad_blocks() {
        let p = pan("4012345678909");
        let pf = pan_field_iso0(&p);
        let mk = |h: &str| {
            let mut b = hx(h).unwrap();
            xor_in_place(&mut b, &pf);
            b
        };
        assert_eq!(
            decode(PinBlockFormat::Iso0, &mk("141234FFFFFFFFFF"), Some(&p)),
            Err(CryptoError::PinBlockControl {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            decode(PinBlockFormat::Iso0, &mk("031234FFFFFFFFFF"), Some(&p)),
            Err(CryptoError::PinBlockPinLength { len: 3 })
        );
        assert_eq!(
            decode(PinBlockFormat::Iso0, &mk("0D1234FFFFFFFFFF"), Some(&p)),
            Err(CryptoError::PinBlockPinLength { len: 13 })
        );
        assert_eq!(
            decode(PinBlockFormat::Iso0, &mk("04123AFFFFFFFFFF"), Some(&p)),
            Err(CryptoError::PinBlockDigit)
        );
        assert_eq!(
            decode(PinBlockFormat::Iso0, &mk("041234FFFFFFFFFE"), Some(&p)),
            Err(CryptoError::PinBlockFill { format: 0 })
        );
        assert_eq!(
            decode(PinBlockFormat::Iso3, &mk("3412349AAAAAAAAA"), Some(&p)),
            Err(CryptoError::PinBlockFill { format: 3 })
        );
        assert_eq!(
            decode(
                PinBlockFormat::Iso4,
                &hx("441234AAAAAAAAAB0011223344556677").unwrap(),
                None
            ),
            Err(CryptoError::PinBlockFill { format: 4 })
        );
        assert!(matches!(
            decode(PinBlockFormat::Iso0, &[0; 7], Some(&p)),
            Err(CryptoError::InputLength { got: 7, .. })
        ));
        assert_eq!(
            decode(PinBlockFormat::Iso0, &[0; 8], None),
            Err(CryptoError::PanRequired { format: 0 })
        );
    }

    #[test]
    fn sm4_pin_block_public_example_and_round_trip() {
        let p = pan("6230606601007726888");
        let pin = Pin::new("123654").unwrap();
        let clear = encode_sm4(&pin, &p);
        assert_eq!(he(clear.expose()), "06123654FFFFFFFFFFFF99FEFF88D977");
        assert_eq!(decode_sm4(clear.expose(), &p).unwrap(), pin);
        let k = Sm4Key::new(&[0x42; 16]).unwrap();
        let enc = encrypt_sm4(&k, &pin, &p);
        assert_eq!(enc.len(), 16);
        assert_ne!(enc.expose(), clear.expose());
        assert_eq!(decrypt_sm4(&k, enc.expose(), &p).unwrap(), pin);
        // Another PAN gives another block and fails to decode (fill no longer F).
        assert!(decrypt_sm4(&k, enc.expose(), &pan("6230606601007726896")).is_err());
        assert!(matches!(
            decrypt_sm4(&k, &enc.expose()[..8], &p),
            Err(CryptoError::InputLength { got: 8, .. })
        ));
        let mut bad = hx("06123654FFFFFFFFFFFF99FEFF88D977").unwrap();
        bad[4] ^= 0x01;
        assert_eq!(
            decode_sm4(&bad, &p),
            Err(CryptoError::PinBlockFill { format: 0 })
        );
    }

    #[test]
    fn pin_type_is_masked_and_validated() {
        let p = Pin::new("123456").unwrap();
        assert_eq!(format!("{p:?}"), "Pin(****)");
        assert_eq!(p.to_string(), "****");
        assert_eq!(Pin::new("123"), Err(CryptoError::BadPin { len: 3 }));
        assert_eq!(
            Pin::new("1234567890123"),
            Err(CryptoError::BadPin { len: 13 })
        );
        assert_eq!(Pin::new("12a4"), Err(CryptoError::BadPin { len: 4 }));
        assert!(PinBlockFormat::from_number(2).is_err());
    }

    #[test]
    fn format3_rejection_sampling_and_stuck_source() {
        let mut n = 0u8;
        let mut counting = move |b: &mut [u8]| {
            for x in b.iter_mut() {
                *x = n;
                n = n.wrapping_add(1);
            }
            Ok(())
        };
        let f = draw_fill(PinBlockFormat::Iso3, 4, &mut counting).unwrap();
        assert_eq!(
            f.to_vec(),
            vec![0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0xA, 0xB, 0xC, 0xD]
        );
        assert_eq!(
            draw_fill(PinBlockFormat::Iso3, 4, &mut fixed(0xFF)).unwrap_err(),
            CryptoError::Random
        );
    }

    #[test]
    fn random_fill_differs_between_calls() {
        let key = AesKey::new(&[7; 16]).unwrap();
        let pin = Pin::new("0000").unwrap();
        let p = pan("1234567890123456");
        let mut rng = system_random();
        let a = encrypt_aes(&key, &pin, &p, &mut rng).unwrap();
        let b = encrypt_aes(&key, &pin, &p, &mut rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(decrypt_aes(&key, a.expose(), &p).unwrap(), pin);
    }

    fn fmt_strategy() -> impl Strategy<Value = PinBlockFormat> {
        prop_oneof![
            Just(PinBlockFormat::Iso0),
            Just(PinBlockFormat::Iso1),
            Just(PinBlockFormat::Iso3),
            Just(PinBlockFormat::Iso4),
        ]
    }

    proptest! {
        #[test]
        fn clear_round_trip(format in fmt_strategy(), pin in "[0-9]{4,12}", pan_s in "[0-9]{12,19}", seed in any::<u8>()) {
            let pin = Pin::new(&pin).unwrap();
            let p = pan(&pan_s);
            let mut s = seed;
            let mut rng = move |b: &mut [u8]| { for x in b.iter_mut() { s = s.wrapping_mul(31).wrapping_add(7); *x = s; } Ok(()) };
            let clear = encode(format, &pin, Some(&p), &mut rng).unwrap();
            prop_assert_eq!(clear.len(), format.block_len());
            prop_assert_eq!(decode(format, clear.expose(), Some(&p)).unwrap(), pin);
        }

        #[test]
        fn encrypted_round_trip(format in fmt_strategy(), pin in "[0-9]{4,12}", pan_s in "[0-9]{12,19}", key in proptest::collection::vec(any::<u8>(), 16)) {
            let pin = Pin::new(&pin).unwrap();
            let p = pan(&pan_s);
            let mut rng = system_random();
            if format == PinBlockFormat::Iso4 {
                let k = AesKey::new(&key).unwrap();
                let b = encrypt_aes(&k, &pin, &p, &mut rng).unwrap();
                prop_assert_eq!(decrypt_aes(&k, b.expose(), &p).unwrap(), pin);
            } else {
                let k = TdesKey::new(&key).unwrap();
                let b = encrypt_tdes(&k, format, &pin, Some(&p), &mut rng).unwrap();
                prop_assert_eq!(decrypt_tdes(&k, format, b.expose(), Some(&p)).unwrap(), pin);
            }
        }

        #[test]
        fn decode_never_panics(format in fmt_strategy(), block in proptest::collection::vec(any::<u8>(), 0..20)) {
            let p = pan("4012345678909");
            let _ = decode(format, &block, Some(&p));
        }
    }
}
