//! EMV issuer-side key derivation and cryptograms (EMV 4.x Book 2, Annex A1).
//!
//! - ICC master key: option A (A1.4.1: 16 rightmost digits of PAN || PSN) and option B
//!   (A1.4.2: SHA-1 of PAN || PSN, decimalised; for PANs over 16 digits).
//! - Common session key (A1.3): `R = ATC || 00 00 00 00 00 00`; left half = TDES(MK)[R with
//!   byte 2 = F0], right half = TDES(MK)[R with byte 2 = 0F]; odd parity set.
//! - ARQC/AAC/TC: ISO 9797-1 MAC algorithm 3 over the CDOL data, padding method 2 (EMV) or
//!   zero padding (Visa CVN 10/18 style).
//! - ARPC method 1 (A1.2.1) and method 2 (A1.2.2).

use crate::CryptoError;
use crate::keys::TdesKey;
use crate::mac::{self, Padding};
use smartpos_types::Pan;
use zeroize::Zeroize;

fn double(key: &TdesKey, what: &'static str) -> Result<(), CryptoError> {
    if key.len() != 16 {
        return Err(CryptoError::KeyLength {
            algorithm: what,
            expected: "16",
            got: key.len(),
        });
    }
    Ok(())
}

fn psn_digits(psn: u8) -> Result<String, CryptoError> {
    if psn > 99 {
        return Err(CryptoError::OutOfRange {
            what: "PAN sequence number (00-99)",
        });
    }
    Ok(format!("{psn:02}"))
}

/// Z = TDES(IMK)[Y] || TDES(IMK)[Y XOR FF..FF], odd parity.
fn mk_from_y(imk: &TdesKey, y: &[u8; 8]) -> TdesKey {
    let mut left = *y;
    imk.encrypt_block(&mut left);
    let mut right = y.map(|b| !b);
    imk.encrypt_block(&mut right);
    let mut z = [0u8; 16];
    z[..8].copy_from_slice(&left);
    z[8..].copy_from_slice(&right);
    let k = TdesKey::from_double(&z).with_odd_parity();
    z.zeroize();
    left.zeroize();
    right.zeroize();
    k
}

fn pack_digits(digits: &[u8]) -> [u8; 8] {
    let mut y = [0u8; 8];
    for (i, pair) in digits.chunks(2).take(8).enumerate() {
        let hi = pair.first().copied().unwrap_or(0);
        let lo = pair.get(1).copied().unwrap_or(0);
        y[i] = (hi << 4) | (lo & 0x0F);
    }
    y
}

/// ICC master key, option A: Y = the 16 rightmost digits of PAN || PSN (left-padded with zeros
/// if shorter), then [`mk_from_y`]. The IMK must be double length.
pub fn icc_master_key_option_a(imk: &TdesKey, pan: &Pan, psn: u8) -> Result<TdesKey, CryptoError> {
    double(imk, "EMV issuer master key")?;
    let mut s = String::with_capacity(21);
    s.push_str(pan.expose());
    s.push_str(&psn_digits(psn)?);
    let mut digits: Vec<u8> = s.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    s.zeroize();
    let tail = &digits[digits.len().saturating_sub(16)..];
    let mut padded = [0u8; 16];
    padded[16 - tail.len()..].copy_from_slice(tail);
    digits.zeroize();
    let y = pack_digits(&padded);
    Ok(mk_from_y(imk, &y))
}

/// ICC master key, option B (PANs longer than 16 digits; shorter PANs use option A, as EMV
/// prescribes): X = PAN || PSN (a leading 0 nibble if the digit count is odd), Y = the first
/// 16 decimal digits of the hex SHA-1(X), completed if needed with the hex letters a-f mapped
/// to 0-5 in order of appearance.
pub fn icc_master_key_option_b(imk: &TdesKey, pan: &Pan, psn: u8) -> Result<TdesKey, CryptoError> {
    if pan.expose().len() <= 16 {
        return icc_master_key_option_a(imk, pan, psn);
    }
    double(imk, "EMV issuer master key")?;
    let mut s = String::with_capacity(22);
    if pan.expose().len() % 2 == 1 {
        s.push('0');
    }
    s.push_str(pan.expose());
    s.push_str(&psn_digits(psn)?);
    let digits: Vec<u8> = s.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    s.zeroize();
    let mut x: Vec<u8> = digits
        .chunks(2)
        .map(|p| {
            let hi = p.first().copied().unwrap_or(0);
            let lo = p.get(1).copied().unwrap_or(0);
            (hi << 4) | (lo & 0x0F)
        })
        .collect();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &x);
    x.zeroize();
    let nibbles: Vec<u8> = digest
        .as_ref()
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .collect();
    let mut y_digits: Vec<u8> = nibbles
        .iter()
        .copied()
        .filter(|n| *n < 10)
        .take(16)
        .collect();
    let more = 16 - y_digits.len();
    y_digits.extend(
        nibbles
            .iter()
            .filter(|n| **n >= 10)
            .map(|n| n - 10)
            .take(more),
    );
    let y = pack_digits(&y_digits);
    Ok(mk_from_y(imk, &y))
}

/// Common session key (EMV Book 2 A1.3) from the ICC master key and a diversification value R
/// (8 bytes; byte 2 is overwritten with F0 / 0F). Odd parity set.
pub fn session_key_from_r(icc_mk: &TdesKey, r: &[u8; 8]) -> Result<TdesKey, CryptoError> {
    double(icc_mk, "EMV ICC master key")?;
    let mut left = *r;
    left[2] = 0xF0;
    icc_mk.encrypt_block(&mut left);
    let mut right = *r;
    right[2] = 0x0F;
    icc_mk.encrypt_block(&mut right);
    let mut z = [0u8; 16];
    z[..8].copy_from_slice(&left);
    z[8..].copy_from_slice(&right);
    let k = TdesKey::from_double(&z).with_odd_parity();
    z.zeroize();
    Ok(k)
}

/// Common session key for application cryptograms: R = ATC || 00 00 00 00 00 00.
pub fn common_session_key(icc_mk: &TdesKey, atc: [u8; 2]) -> Result<TdesKey, CryptoError> {
    session_key_from_r(icc_mk, &[atc[0], atc[1], 0, 0, 0, 0, 0, 0])
}

/// How the cryptogram input is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcPadding {
    /// EMV: ISO 9797-1 method 2 (0x80 then zeros).
    Emv,
    /// Visa (CVN 10/18): zeros only, none if aligned (ISO 9797-1 method 1).
    VisaZero,
}

/// Generates an application cryptogram (ARQC, TC, AAC) over the concatenated CDOL data.
pub fn generate_ac(
    session_key: &TdesKey,
    data: &[u8],
    padding: AcPadding,
) -> Result<[u8; 8], CryptoError> {
    let p = match padding {
        AcPadding::Emv => Padding::Method2,
        AcPadding::VisaZero => Padding::Method1,
    };
    mac::x9_19(session_key, data, p)
}

/// Verifies a received cryptogram in constant time.
pub fn verify_ac(
    session_key: &TdesKey,
    data: &[u8],
    padding: AcPadding,
    cryptogram: &[u8],
) -> Result<bool, CryptoError> {
    Ok(mac::verify(
        &generate_ac(session_key, data, padding)?,
        cryptogram,
    ))
}

/// ARPC method 1: TDES(SK)[ARQC XOR (ARC || 00 00 00 00 00 00)].
pub fn arpc_method1(
    session_key: &TdesKey,
    arqc: &[u8],
    arc: &[u8],
) -> Result<[u8; 8], CryptoError> {
    double(session_key, "EMV session key")?;
    let arqc = fixed::<8>(arqc, "ARQC", "8")?;
    let arc = fixed::<2>(arc, "ARC", "2")?;
    let mut y = arqc;
    y[0] ^= arc[0];
    y[1] ^= arc[1];
    session_key.encrypt_block(&mut y);
    Ok(y)
}

/// ARPC method 2: the leftmost 4 bytes of MAC algorithm 3 (method 2 padding) over
/// ARQC || CSU (4 bytes) || proprietary authentication data (0 to 8 bytes).
pub fn arpc_method2(
    session_key: &TdesKey,
    arqc: &[u8],
    csu: &[u8],
    proprietary: &[u8],
) -> Result<[u8; 4], CryptoError> {
    let arqc = fixed::<8>(arqc, "ARQC", "8")?;
    let csu = fixed::<4>(csu, "CSU", "4")?;
    if proprietary.len() > 8 {
        return Err(CryptoError::InputLength {
            what: "proprietary authentication data",
            expected: "0 to 8",
            got: proprietary.len(),
        });
    }
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&arqc);
    data.extend_from_slice(&csu);
    data.extend_from_slice(proprietary);
    let m = mac::x9_19(session_key, &data, Padding::Method2)?;
    Ok([m[0], m[1], m[2], m[3]])
}

fn fixed<const N: usize>(
    b: &[u8],
    what: &'static str,
    expected: &'static str,
) -> Result<[u8; N], CryptoError> {
    b.try_into().map_err(|_| CryptoError::InputLength {
        what,
        expected,
        got: b.len(),
    })
}

/// Masks the DES parity bits (bit 0 of each byte) so keys can be compared regardless of parity.
pub fn without_parity(key: &[u8]) -> Vec<u8> {
    key.iter().map(|b| b & 0xFE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::{decode, encode};

    fn tk(h: &str) -> TdesKey {
        TdesKey::new(&decode(h).unwrap()).unwrap()
    }

    #[test]
    fn option_a_published() {
        let imk = tk("0123456789ABCDEFFEDCBA9876543210");
        let pan = Pan::new("12345678901234567").unwrap();
        let mk = icc_master_key_option_a(&imk, &pan, 1).unwrap();
        assert_eq!(encode(mk.expose()), "73AD54688CEF2934B0979857E3C719F1");
        assert!(mk.has_odd_parity());
    }

    #[test]
    fn option_b_short_pan_is_option_a_and_long_pan_differs() {
        let imk = tk("0123456789ABCDEFFEDCBA9876543210");
        let short = Pan::new("1234567890123456").unwrap();
        assert_eq!(
            icc_master_key_option_b(&imk, &short, 0).unwrap().expose(),
            icc_master_key_option_a(&imk, &short, 0).unwrap().expose()
        );
        let long = Pan::new("1234567890123456789").unwrap();
        let b = icc_master_key_option_b(&imk, &long, 0).unwrap();
        assert_ne!(
            b.expose(),
            icc_master_key_option_a(&imk, &long, 0).unwrap().expose()
        );
        assert!(b.has_odd_parity());
        // Expected values computed with pyemv 1.5.0 `kd.derive_icc_mk_b` (an independent
        // implementation): PAN || PSN of 21 digits (zero-prefixed) and of 19 digits.
        assert_eq!(encode(b.expose()), "2F9275316B4FCB2A52A1CB1610DCAEF1");
        let odd = Pan::new("12345678901234567").unwrap();
        let b = icc_master_key_option_b(&imk, &odd, 1).unwrap();
        assert_eq!(encode(b.expose()), "AD406D7F6D7570916D75E5DCAB8CF737");
    }

    #[test]
    fn session_key_published() {
        let mk = tk("0123456789ABCDEFFEDCBA9876543210");
        let sk = common_session_key(&mk, [0x00, 0x1C]).unwrap();
        assert_eq!(
            without_parity(sk.expose()),
            without_parity(&decode("E9FB384AF807B940FEDCEA613461B0C4").unwrap())
        );
    }

    #[test]
    fn arpc_published_and_lengths() {
        let sk = tk("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB");
        let a = arpc_method1(&sk, &decode("1234567890ABCDEF").unwrap(), &[0, 0]).unwrap();
        assert_eq!(encode(&a), "F5E6F44147E2F1B0");
        assert!(arpc_method1(&sk, &[0; 7], &[0, 0]).is_err());
        assert!(arpc_method2(&sk, &[0; 8], &[0; 4], &[0; 9]).is_err());
        assert_eq!(arpc_method2(&sk, &[0; 8], &[0; 4], &[]).unwrap().len(), 4);
    }

    #[test]
    fn psn_range() {
        let imk = tk("0123456789ABCDEFFEDCBA9876543210");
        let pan = Pan::new("1234567890123456").unwrap();
        assert!(icc_master_key_option_a(&imk, &pan, 100).is_err());
        assert!(icc_master_key_option_a(&tk("0123456789ABCDEF"), &pan, 1).is_err());
    }
}
