//! Hex encoding (upper case) and strict decoding.
//!
//! Decoding accepts upper or lower case, rejects odd lengths and any non-hex character
//! (including whitespace), and says where the first bad character is.

use thiserror::Error;

const DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Why a hex string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string has an odd number of characters.
    #[error("hex string has odd length {len}")]
    OddLength {
        /// Number of characters in the input.
        len: usize,
    },
    /// A character that is not a hex digit.
    #[error("invalid hex character at position {position}")]
    InvalidChar {
        /// Zero-based character position of the first bad character.
        position: usize,
    },
}

/// Encodes bytes as upper-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes a hex string (either case) into bytes.
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    let raw = s.as_bytes();
    if !raw.len().is_multiple_of(2) {
        return Err(HexError::OddLength { len: raw.len() });
    }
    let mut out = Vec::with_capacity(raw.len() / 2);
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(HexError::InvalidChar { position: i * 2 })?;
        let lo = nibble(pair[1]).ok_or(HexError::InvalidChar {
            position: i * 2 + 1,
        })?;
        out.push((hi << 4) | lo);
    }
    Ok(out)
}

/// Decodes a hex string into a fixed-size array; the length must match exactly.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let v = decode(s)?;
    let len = s.len();
    v.try_into().map_err(|_| HexError::OddLength { len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_upper_case() {
        assert_eq!(encode(&[0x00, 0xAB, 0x7f]), "00AB7F");
    }

    #[test]
    fn rejects_odd_and_bad_chars() {
        assert_eq!(decode("ABC"), Err(HexError::OddLength { len: 3 }));
        assert_eq!(decode("A G0"), Err(HexError::InvalidChar { position: 1 }));
        assert_eq!(decode("0g"), Err(HexError::InvalidChar { position: 1 }));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&encode(&bytes)).unwrap(), bytes.clone());
            prop_assert_eq!(decode(&encode(&bytes).to_lowercase()).unwrap(), bytes);
        }
    }
}
