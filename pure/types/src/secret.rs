//! Card data and secrets that mask themselves.
//!
//! `Debug` and `Display` of these types never show the full value: a [`Pan`] shows at most its
//! first 6 and last 4 digits (PCI DSS 3.4 display rule), a [`Track2`] shows only the masked PAN,
//! and [`SecretBytes`] shows only its length. The clear value is reachable only through methods
//! whose names say so (`expose_*`), so a reviewer can grep for every place it leaves.

use std::fmt;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why a string is not a PAN.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PanError {
    /// A PAN is 12 to 19 digits (ISO/IEC 7812-1).
    #[error("PAN must be 12 to 19 digits, got {len}")]
    BadLength {
        /// Number of characters given.
        len: usize,
    },
    /// A PAN holds decimal digits only.
    #[error("PAN must hold digits only")]
    NotDigits,
}

/// A primary account number. Masked in `Debug`/`Display`; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan(String);

impl Pan {
    /// Parses a PAN: 12 to 19 decimal digits.
    pub fn new(digits: &str) -> Result<Self, PanError> {
        if !(12..=19).contains(&digits.len()) {
            return Err(PanError::BadLength { len: digits.len() });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PanError::NotDigits);
        }
        Ok(Pan(digits.to_owned()))
    }

    /// The clear PAN. Every call site is a place where card data leaves the mask.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 6 and last 4 digits with the middle replaced by `*`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }

    /// Whether the last digit is a valid Luhn check digit (ISO/IEC 7812-1 Annex B).
    pub fn luhn_ok(&self) -> bool {
        let mut sum = 0u32;
        for (i, b) in self.0.bytes().rev().enumerate() {
            let mut d = u32::from(b - b'0');
            if i % 2 == 1 {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
        }
        sum.is_multiple_of(10)
    }
}

/// Masks a digit string to first 6 / last 4; shorter strings are masked entirely.
pub fn mask_digits(s: &str) -> String {
    let n = s.chars().count();
    if n < 12 {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < 6 || i >= n - 4 { c } else { '*' })
        .collect()
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Track 2 equivalent data as text (`PAN D YYMM SVC discretionary`, separator `D` or `=`).
/// Masked in `Debug`/`Display`; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Track2(String);

impl Track2 {
    /// Wraps track-2 text. Accepts digits and one separator (`D`, `d` or `=`); max 37 characters.
    pub fn new(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 37 {
            return None;
        }
        let seps = text
            .bytes()
            .filter(|b| matches!(b, b'D' | b'd' | b'='))
            .count();
        let ok = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'D' | b'd' | b'='));
        (ok && seps == 1).then(|| Track2(text.to_ascii_uppercase()))
    }

    /// The clear track 2 text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The PAN part (before the separator), if it is a valid PAN.
    pub fn pan(&self) -> Option<Pan> {
        let end = self.0.find(['D', '='])?;
        Pan::new(&self.0[..end]).ok()
    }

    /// Expiry date `YYMM` (the four digits after the separator).
    pub fn expiry(&self) -> Option<&str> {
        let sep = self.0.find(['D', '='])?;
        self.0.get(sep + 1..sep + 5)
    }

    /// Service code (three digits after the expiry).
    pub fn service_code(&self) -> Option<&str> {
        let sep = self.0.find(['D', '='])?;
        self.0.get(sep + 5..sep + 8)
    }
}

impl fmt::Debug for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pan() {
            Some(p) => write!(f, "Track2({}D****)", p.masked()),
            None => f.write_str("Track2(****)"),
        }
    }
}

impl fmt::Display for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Secret bytes (PIN blocks, key material, cryptographic state). Shows only its length;
/// zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The clear bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_is_masked_in_debug_and_display() {
        let pan = Pan::new("6222021234567890123").unwrap();
        assert_eq!(format!("{pan:?}"), "Pan(622202*********0123)");
        assert_eq!(pan.to_string(), "622202*********0123");
        assert!(!format!("{pan:?}").contains("1234567890"));
    }

    #[test]
    fn pan_rejects_bad_input() {
        assert_eq!(Pan::new("12345"), Err(PanError::BadLength { len: 5 }));
        assert_eq!(Pan::new("12345678901A"), Err(PanError::NotDigits));
    }

    #[test]
    fn luhn() {
        assert!(Pan::new("4111111111111111").unwrap().luhn_ok());
        assert!(!Pan::new("4111111111111112").unwrap().luhn_ok());
    }

    #[test]
    fn track2_parts_and_mask() {
        let t = Track2::new("4761739001010010=221220111438044000001").is_none();
        assert!(t, "38 chars is over the 37 maximum");
        let t = Track2::new("4761739001010010D2212201114380440").unwrap();
        assert_eq!(t.expiry(), Some("2212"));
        assert_eq!(t.service_code(), Some("201"));
        let shown = format!("{t:?}");
        assert_eq!(shown, "Track2(476173******0010D****)");
        assert!(Track2::new("47617390D0101D0010").is_none());
    }

    #[test]
    fn secret_bytes_show_length_only() {
        let s = SecretBytes::new(vec![0x12, 0x34]);
        assert_eq!(format!("{s:?}"), "SecretBytes(<2 bytes>)");
    }
}
