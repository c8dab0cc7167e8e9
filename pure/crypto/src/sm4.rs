//! SM4 (GB/T 32907-2016), the Chinese national block cipher: 128-bit key, 128-bit block.
//!
//! [`Sm4Key`] wraps the RustCrypto `sm4` crate the way [`crate::keys`] wraps `des`/`aes`: the
//! key bytes sit in a fixed array zeroized on drop, the crate's round keys live for one call
//! (and are zeroized by its `zeroize` feature), and `Debug` shows the check value only.
//!
//! UnionPay's national-algorithm (国密) POS terminals use SM4 working keys the way the DES
//! terminals use TDES ones: each working key (PIK, MAK, TDK) travels at sign-in SM4-ECB
//! encrypted under the terminal master key, followed by a check value, the leading bytes of the
//! key's SM4 encryption of 16 zero bytes ([`unwrap_working_key`], [`wrap_working_key`]). The
//! MAC is [`crate::mac::cup_sm4`] and the PIN block [`crate::pinblock::encrypt_sm4`].

use crate::CryptoError;
use crate::keys::{BlockCipher, cbc_decrypt, cbc_encrypt, ecb, to_block};
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SM4 block size in bytes.
pub const SM4_BLOCK: usize = 16;

/// A 16-byte SM4 key. Zeroized on drop; `Debug` shows the check value only.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Sm4Key {
    bytes: [u8; 16],
}

struct Sm4Cipher(sm4::Sm4);

impl BlockCipher<16> for Sm4Cipher {
    fn encrypt(&self, block: &mut [u8; 16]) {
        self.0.encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        self.0.decrypt_block(GenericArray::from_mut_slice(block));
    }
}

impl Sm4Key {
    /// Wraps 16 key bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            algorithm: "SM4",
            expected: "16",
            got: bytes.len(),
        })?;
        Ok(Sm4Key { bytes: arr })
    }

    /// A fresh random key from ring's `SystemRandom`.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut buf = [0u8; 16];
        SystemRandom::new()
            .fill(&mut buf)
            .map_err(|_| CryptoError::Random)?;
        let key = Sm4Key { bytes: buf };
        buf.zeroize();
        Ok(key)
    }

    /// The clear key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of key bytes (always 16).
    pub fn len(&self) -> usize {
        16
    }

    /// Always false (API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn cipher(&self) -> Sm4Cipher {
        let mut k = self.bytes;
        let c = Sm4Cipher(sm4::Sm4::new(GenericArray::from_slice(&k)));
        k.zeroize();
        c
    }

    /// Encrypts one 16-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher().encrypt(block);
    }

    /// Decrypts one 16-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher().decrypt(block);
    }

    /// ECB encryption; `data` must be whole 16-byte blocks.
    pub fn encrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        ecb(&self.cipher(), data, true)
    }

    /// ECB decryption; `data` must be whole 16-byte blocks.
    pub fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        ecb(&self.cipher(), data, false)
    }

    /// CBC encryption with a 16-byte IV; `data` must be whole blocks.
    pub fn encrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_encrypt(&self.cipher(), iv, data)
    }

    /// CBC decryption with a 16-byte IV; `data` must be whole blocks.
    pub fn decrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_decrypt(&self.cipher(), iv, data)
    }

    /// The key's encryption of 16 zero bytes; check values are its leading bytes.
    pub fn check_block(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.encrypt_block(&mut b);
        b
    }

    /// The 4-byte check value UnionPay key blocks carry.
    pub fn kcv(&self) -> [u8; 4] {
        let b = self.check_block();
        [b[0], b[1], b[2], b[3]]
    }
}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sm4Key(<16 bytes>, kcv {})",
            smartpos_types::hex::encode(&self.kcv())
        )
    }
}

/// Terminal side: decrypts a 16-byte working key delivered SM4-ECB under the master key and
/// checks its check value (3 to 16 bytes, compared in constant time with the prefix of the
/// key's encryption of zeros).
pub fn unwrap_working_key(
    tmk: &Sm4Key,
    encrypted: &[u8],
    check_value: &[u8],
) -> Result<Sm4Key, CryptoError> {
    if encrypted.len() != SM4_BLOCK {
        return Err(CryptoError::KeyLength {
            algorithm: "encrypted SM4 working",
            expected: "16",
            got: encrypted.len(),
        });
    }
    if !(3..=16).contains(&check_value.len()) {
        return Err(CryptoError::InputLength {
            what: "check value",
            expected: "3 to 16",
            got: check_value.len(),
        });
    }
    let mut b = to_block::<16>(encrypted);
    tmk.decrypt_block(&mut b);
    let key = Sm4Key { bytes: b };
    b.zeroize();
    let full = key.check_block();
    let ok: bool = full[..check_value.len()].ct_eq(check_value).into();
    if !ok {
        return Err(CryptoError::KcvMismatch);
    }
    Ok(key)
}

/// Host side: the working key SM4-ECB encrypted under the master key, and its 4-byte check
/// value.
pub fn wrap_working_key(tmk: &Sm4Key, key: &Sm4Key) -> ([u8; 16], [u8; 4]) {
    let mut b = key.bytes;
    tmk.encrypt_block(&mut b);
    (b, key.kcv())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::{decode, encode};

    fn key(h: &str) -> Sm4Key {
        Sm4Key::new(&decode(h).unwrap()).unwrap()
    }

    #[test]
    fn gbt_32907_example_1() {
        // GB/T 32907-2016 Appendix A, example 1 (testdata/sm4.json).
        let k = key("0123456789ABCDEFFEDCBA9876543210");
        let mut b = to_block::<16>(&decode("0123456789ABCDEFFEDCBA9876543210").unwrap());
        k.encrypt_block(&mut b);
        assert_eq!(encode(&b), "681EDF34D206965E86B3E94F536E4246");
        k.decrypt_block(&mut b);
        assert_eq!(encode(&b), "0123456789ABCDEFFEDCBA9876543210");
    }

    #[test]
    fn ecb_cbc_round_trip_and_lengths() {
        let k = key("00112233445566778899AABBCCDDEEFF");
        let data = [0x5Au8; 48];
        let c = k.encrypt_cbc(&[3; 16], &data).unwrap();
        assert_ne!(c[..16], c[16..32], "CBC must chain");
        assert_eq!(k.decrypt_cbc(&[3; 16], &c).unwrap(), data.to_vec());
        let e = k.encrypt_ecb(&data).unwrap();
        assert_eq!(e[..16], e[16..32]);
        assert_eq!(k.decrypt_ecb(&e).unwrap(), data.to_vec());
        assert_eq!(
            k.encrypt_ecb(&data[..15]),
            Err(CryptoError::DataLength { len: 15, block: 16 })
        );
        assert!(matches!(
            Sm4Key::new(&[0; 15]),
            Err(CryptoError::KeyLength { got: 15, .. })
        ));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = key("11111111111111111111111111111111");
        let s = format!("{k:?}");
        assert!(s.starts_with("Sm4Key(<16 bytes>, kcv "), "{s}");
        assert!(!s.contains("1111"), "{s}");
        assert_ne!(Sm4Key::generate().unwrap(), Sm4Key::generate().unwrap());
    }

    #[test]
    fn working_key_wrap_unwrap() {
        let tmk = key("0123456789ABCDEFFEDCBA9876543210");
        let pik = Sm4Key::generate().unwrap();
        let (enc, cv) = wrap_working_key(&tmk, &pik);
        assert_eq!(unwrap_working_key(&tmk, &enc, &cv).unwrap(), pik);
        assert_eq!(unwrap_working_key(&tmk, &enc, &cv[..3]).unwrap(), pik);
        let mut bad = cv;
        bad[0] ^= 1;
        assert_eq!(
            unwrap_working_key(&tmk, &enc, &bad),
            Err(CryptoError::KcvMismatch)
        );
        assert!(matches!(
            unwrap_working_key(&tmk, &enc[..8], &cv),
            Err(CryptoError::KeyLength { got: 8, .. })
        ));
        assert!(matches!(
            unwrap_working_key(&tmk, &enc, &cv[..2]),
            Err(CryptoError::InputLength { got: 2, .. })
        ));
    }
}
