//! Message authentication codes: ANSI X9.9, ANSI X9.19 (ISO 9797-1 MAC algorithm 3), AES-CMAC,
//! the China UnionPay POS "ECB" MAC and its SM4 form ([`cup_sm4`]), and constant-time
//! [`verify`].
//!
//! Every comparison of a received MAC against a computed one must go through [`verify`]: a
//! byte-by-byte `==` leaks how many leading bytes matched through timing.

use crate::CryptoError;
use crate::keys::{AesKey, TdesKey, to_block, xor_in_place};
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;

/// ISO/IEC 9797-1 padding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Method 1: append zero bytes up to a block boundary (none if already aligned; one zero
    /// block for empty data).
    Method1,
    /// Method 2: append 0x80, then zero bytes up to a block boundary (always adds 1..=8 bytes).
    Method2,
}

impl Padding {
    /// Padding from its ISO 9797-1 method number (1 or 2).
    pub fn from_method(method: u8) -> Result<Self, CryptoError> {
        match method {
            1 => Ok(Padding::Method1),
            2 => Ok(Padding::Method2),
            _ => Err(CryptoError::OutOfRange {
                what: "ISO 9797-1 padding method (1 or 2)",
            }),
        }
    }
}

/// Pads `data` to a multiple of `block` bytes with the given ISO 9797-1 method.
pub fn pad(data: &[u8], block: usize, padding: Padding) -> Vec<u8> {
    let mut out = data.to_vec();
    if padding == Padding::Method2 {
        out.push(0x80);
    }
    let block = block.max(1);
    if out.is_empty() {
        out.resize(block, 0);
    }
    while !out.len().is_multiple_of(block) {
        out.push(0);
    }
    out
}

/// CBC-MAC chain (zero IV) under `key` over already padded data.
fn cbc_chain(key: &TdesKey, padded: &[u8]) -> [u8; 8] {
    key.cbc_mac_chain(padded)
}

/// ANSI X9.9 (ISO 9797-1 MAC algorithm 1 with single DES): DES CBC-MAC with a zero IV over the
/// data padded with zeros (method 1). The key must be single length (8 bytes).
pub fn x9_9(key: &TdesKey, data: &[u8]) -> Result<[u8; 8], CryptoError> {
    if key.len() != 8 {
        return Err(CryptoError::KeyLength {
            algorithm: "ANSI X9.9 MAC",
            expected: "8",
            got: key.len(),
        });
    }
    Ok(cbc_chain(key, &pad(data, 8, Padding::Method1)))
}

/// ANSI X9.19 retail MAC = ISO 9797-1 MAC algorithm 3 with DES: single-DES CBC-MAC under the
/// left half K1, then the last block is decrypted under K2 and encrypted under K1. The key must
/// be double length (16 bytes). EMV application cryptograms use this with [`Padding::Method2`].
pub fn x9_19(key: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8], CryptoError> {
    if key.len() != 16 {
        return Err(CryptoError::KeyLength {
            algorithm: "ANSI X9.19 MAC",
            expected: "16",
            got: key.len(),
        });
    }
    let k1 = key.left();
    let k2 = key.right();
    let mut mac = cbc_chain(&k1, &pad(data, 8, padding));
    k2.decrypt_block(&mut mac);
    k1.encrypt_block(&mut mac);
    Ok(mac)
}

/// AES-CMAC (NIST SP 800-38B, RFC 4493) under a 128, 192 or 256-bit key; the full 16 bytes.
/// Truncate as the protocol says (X9.24-3 hosts often keep the leftmost 8 bytes).
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; 16] {
    macro_rules! run {
        ($cipher:ty) => {{
            let mut out = [0u8; 16];
            // The key length was checked when the AesKey was built; a mismatch cannot occur.
            if let Ok(mut m) = <Cmac<$cipher> as Mac>::new_from_slice(key.expose()) {
                m.update(data);
                let tag = m.finalize().into_bytes();
                for (o, t) in out.iter_mut().zip(tag.iter()) {
                    *o = *t;
                }
            }
            out
        }};
    }
    match key.len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        _ => run!(aes::Aes256),
    }
}

/// The China UnionPay POS terminal MAC, "ECB algorithm" (China UnionPay POS terminal
/// specification, MAC calculation (ECB algorithm); public description in e.g.
/// <https://blog.51cto.com/xiaohaiwa/5379715>). The MAC element block is usually MTI..field 63.
///
/// Steps, exactly as implemented:
/// 1. Pad the data with 0x00 to a multiple of 8 bytes (nothing if aligned) and XOR all 8-byte
///    blocks together into an 8-byte result R (empty data gives R = zeros).
/// 2. Expand R to 16 upper-case ASCII hex characters H.
/// 3. E1 = encrypt(MAK, H\[0..8\]) — single DES for an 8-byte MAK, TDES for 16/24 bytes.
/// 4. T = E1 XOR H\[8..16\].
/// 5. E2 = encrypt(MAK, T).
/// 6. Expand E2 to 16 upper-case ASCII hex characters; the MAC is the first 8 characters, as
///    8 ASCII bytes (what goes into field 64).
pub fn cup_ecb(key: &TdesKey, data: &[u8]) -> [u8; 8] {
    let mut r = [0u8; 8];
    for chunk in data.chunks(8) {
        xor_in_place(&mut r, &to_block::<8>(chunk));
    }
    let h = smartpos_types::hex::encode(&r).into_bytes();
    let mut e = to_block::<8>(&h);
    key.encrypt_block(&mut e);
    xor_in_place(&mut e, h.get(8..).unwrap_or_default());
    key.encrypt_block(&mut e);
    to_block::<8>(smartpos_types::hex::encode(&e).as_bytes())
}

/// The UnionPay national-algorithm POS MAC: the [`cup_ecb`] construction on 16-byte blocks
/// with an SM4 MAK. UnionPay's specification itself is not public; the steps below are the ones
/// public write-ups of it give (e.g. <https://blog.csdn.net/qq_31143595/article/details/97785248>,
/// <https://blog.csdn.net/weixin_39142884/article/details/139765880>), and they mirror the DES
/// algorithm step for step:
/// 1. Pad the data with 0x00 to a multiple of 16 bytes and XOR all 16-byte blocks into R.
/// 2. Expand R to 32 upper-case ASCII hex characters H.
/// 3. E1 = SM4(MAK, H\[0..16\]); T = E1 XOR H\[16..32\]; E2 = SM4(MAK, T).
/// 4. Expand E2 to 32 upper-case ASCII hex characters; the MAC is the first 8 of them, as 8
///    ASCII bytes (field 64 is 8 bytes, as with DES).
pub fn cup_sm4(key: &crate::sm4::Sm4Key, data: &[u8]) -> [u8; 8] {
    let mut r = [0u8; 16];
    for chunk in data.chunks(16) {
        xor_in_place(&mut r, &to_block::<16>(chunk));
    }
    let h = smartpos_types::hex::encode(&r).into_bytes();
    let mut e = to_block::<16>(&h);
    key.encrypt_block(&mut e);
    xor_in_place(&mut e, h.get(16..).unwrap_or_default());
    key.encrypt_block(&mut e);
    to_block::<8>(smartpos_types::hex::encode(&e).as_bytes())
}

/// Constant-time comparison of a computed and a received MAC (or check value, cryptogram).
/// Different lengths compare unequal; the time taken depends only on the lengths.
pub fn verify(expected: &[u8], got: &[u8]) -> bool {
    expected.ct_eq(got).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::decode;

    fn tk(h: &str) -> TdesKey {
        TdesKey::new(&decode(h).unwrap()).unwrap()
    }

    #[test]
    fn padding_methods() {
        assert_eq!(
            pad(&[1, 2], 8, Padding::Method1),
            vec![1, 2, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(pad(&[0; 8], 8, Padding::Method1).len(), 8);
        assert_eq!(pad(&[], 8, Padding::Method1), vec![0; 8]);
        assert_eq!(pad(&[0; 8], 8, Padding::Method2).len(), 16);
        assert_eq!(
            pad(&[], 8, Padding::Method2),
            vec![0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Padding::from_method(2), Ok(Padding::Method2));
        assert!(Padding::from_method(3).is_err());
    }

    #[test]
    fn x9_9_is_cbc_mac_over_zero_padded_data() {
        // FIPS 113 / ANSI X9.9 example: key 0123456789ABCDEF, "7654321 Now is the time for "
        // MAC (CBC residue) F1D30F68 — here full block checked against our own CBC encryption.
        let k = tk("0123456789ABCDEF");
        let data = b"7654321 Now is the time for ";
        let mac = x9_9(&k, data).unwrap();
        let cbc = k
            .encrypt_cbc(&[0; 8], &pad(data, 8, Padding::Method1))
            .unwrap();
        assert_eq!(mac.to_vec(), cbc[cbc.len() - 8..].to_vec());
        assert_eq!(&mac[..4], &decode("F1D30F68").unwrap()[..]);
        assert!(x9_9(&tk("0123456789ABCDEFFEDCBA9876543210"), data).is_err());
    }

    #[test]
    fn x9_19_with_equal_halves_is_x9_9() {
        let k = tk("0123456789ABCDEF0123456789ABCDEF");
        let data = b"any data at all, 27 bytes..";
        assert_eq!(
            x9_19(&k, data, Padding::Method1).unwrap(),
            x9_9(&tk("0123456789ABCDEF"), data).unwrap()
        );
        assert!(x9_19(&tk("0123456789ABCDEF"), data, Padding::Method1).is_err());
    }

    #[test]
    fn cmac_rfc4493_example_1_empty() {
        let k = AesKey::new(&decode("2B7E151628AED2A6ABF7158809CF4F3C").unwrap()).unwrap();
        assert_eq!(
            aes_cmac(&k, &[]).to_vec(),
            decode("BB1D6929E95937287FA37D129B756746").unwrap()
        );
    }

    #[test]
    fn cup_ecb_follows_the_documented_steps() {
        let k = tk("0123456789ABCDEF");
        let data = b"0200 message body for the MAC!";
        // Recompute the steps by hand with the block primitives.
        let mut r = [0u8; 8];
        for c in pad(data, 8, Padding::Method1).chunks(8) {
            xor_in_place(&mut r, c);
        }
        let h = smartpos_types::hex::encode(&r);
        let mut e = to_block::<8>(&h.as_bytes()[..8]);
        k.encrypt_block(&mut e);
        xor_in_place(&mut e, &h.as_bytes()[8..]);
        k.encrypt_block(&mut e);
        let want = smartpos_types::hex::encode(&e);
        assert_eq!(cup_ecb(&k, data).to_vec(), want.as_bytes()[..8].to_vec());
        // Output is always 8 upper-case hex characters.
        assert!(cup_ecb(&k, &[]).iter().all(|b| b.is_ascii_hexdigit()));
        // Aligned data gets no extra block: appending a zero block changes nothing.
        let mut d16 = [0x31u8; 16].to_vec();
        let m = cup_ecb(&k, &d16);
        d16.extend_from_slice(&[0; 8]);
        assert_eq!(cup_ecb(&k, &d16), m);
    }

    #[test]
    fn verify_is_exact() {
        assert!(verify(&[1, 2, 3], &[1, 2, 3]));
        assert!(!verify(&[1, 2, 3], &[1, 2, 4]));
        assert!(!verify(&[1, 2, 3], &[1, 2]));
    }
}
