//! Keys and block-cipher modes: [`TdesKey`], [`AesKey`], ECB/CBC, check values, and the
//! TMK → working-key hierarchy ([`wrap_working_key`], [`unwrap_working_key`]).
//!
//! Keys keep their bytes in a fixed array that is zeroized on drop; `Debug` shows the length and
//! the check value only (a KCV identifies a key without revealing it, which is what a log needs).
//! The cipher key schedules of the `des`/`aes` crates live on the stack for one call.

use crate::CryptoError;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// DES/TDES block size in bytes.
pub const DES_BLOCK: usize = 8;
/// AES block size in bytes.
pub const AES_BLOCK: usize = 16;

/// A DES key: single (8 bytes, plain DES), double (16 bytes, K1 K2 K1) or triple length
/// (24 bytes, K1 K2 K3), used as TDEA EDE. Zeroized on drop; `Debug` shows length and KCV.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TdesKey {
    bytes: [u8; 24],
    len: u8,
}

/// Key length of a [`TdesKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TdesLength {
    /// 8 bytes: single DES.
    Single,
    /// 16 bytes: two-key TDEA.
    Double,
    /// 24 bytes: three-key TDEA.
    Triple,
}

enum DesCipher {
    Single(des::Des),
    Double(des::TdesEde2),
    Triple(des::TdesEde3),
}

impl BlockCipher<8> for DesCipher {
    fn encrypt(&self, block: &mut [u8; 8]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            DesCipher::Single(c) => c.encrypt_block(b),
            DesCipher::Double(c) => c.encrypt_block(b),
            DesCipher::Triple(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; 8]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            DesCipher::Single(c) => c.decrypt_block(b),
            DesCipher::Double(c) => c.decrypt_block(b),
            DesCipher::Triple(c) => c.decrypt_block(b),
        }
    }
}

/// Sets odd parity on every byte (the least significant bit of each byte is the parity bit).
pub fn set_odd_parity(bytes: &mut [u8]) {
    for b in bytes {
        let ones = (*b & 0xFE).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// Whether every byte has odd parity.
pub fn has_odd_parity(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b.count_ones() % 2 == 1)
}

pub(crate) fn xor_in_place(acc: &mut [u8], other: &[u8]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

impl TdesKey {
    /// Wraps 8, 16 or 24 key bytes (parity bits are ignored by DES, as usual).
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        let len = match bytes.len() {
            8 | 16 | 24 => bytes.len(),
            got => {
                return Err(CryptoError::KeyLength {
                    algorithm: "TDES",
                    expected: "8, 16 or 24",
                    got,
                });
            }
        };
        let mut key = TdesKey {
            bytes: [0; 24],
            len: len as u8,
        };
        key.bytes[..len].copy_from_slice(bytes);
        Ok(key)
    }

    /// A single-length key from exactly 8 bytes (infallible).
    pub fn from_single(bytes: &[u8; 8]) -> Self {
        let mut key = TdesKey {
            bytes: [0; 24],
            len: 8,
        };
        key.bytes[..8].copy_from_slice(bytes);
        key
    }

    /// A double-length key from exactly 16 bytes (infallible).
    pub fn from_double(bytes: &[u8; 16]) -> Self {
        let mut key = TdesKey {
            bytes: [0; 24],
            len: 16,
        };
        key.bytes[..16].copy_from_slice(bytes);
        key
    }

    /// A fresh random key of `len` bytes (8, 16 or 24) from the operating system's CSPRNG
    /// (ring `SystemRandom`), with odd parity set.
    pub fn generate(len: usize) -> Result<Self, CryptoError> {
        let mut buf = [0u8; 24];
        let slot = buf.get_mut(..len).ok_or(CryptoError::KeyLength {
            algorithm: "TDES",
            expected: "8, 16 or 24",
            got: len,
        })?;
        SystemRandom::new()
            .fill(slot)
            .map_err(|_| CryptoError::Random)?;
        set_odd_parity(slot);
        let key = TdesKey::new(slot);
        buf.zeroize();
        key
    }

    /// Number of key bytes (8, 16 or 24).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a key has at least 8 bytes (present for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Single, double or triple length.
    pub fn length(&self) -> TdesLength {
        match self.len {
            8 => TdesLength::Single,
            16 => TdesLength::Double,
            _ => TdesLength::Triple,
        }
    }

    /// The clear key bytes. Every call site is a place where key material leaves the type.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// A copy with odd parity set on every byte.
    pub fn with_odd_parity(&self) -> TdesKey {
        let mut k = self.clone();
        let n = k.len();
        set_odd_parity(&mut k.bytes[..n]);
        k
    }

    /// Whether every key byte has odd parity.
    pub fn has_odd_parity(&self) -> bool {
        has_odd_parity(self.expose())
    }

    /// A copy XORed with `mask` (variants: DUKPT PIN/MAC/data keys, X9.17 variants). The mask
    /// is repeated over the key if shorter.
    pub fn xor_variant(&self, mask: &[u8]) -> TdesKey {
        let mut k = self.clone();
        if !mask.is_empty() {
            let n = k.len();
            for (i, b) in k.bytes[..n].iter_mut().enumerate() {
                *b ^= mask[i % mask.len()];
            }
        }
        k
    }

    /// Left 8 bytes as a single-length key (K1).
    pub fn left(&self) -> TdesKey {
        let mut k = TdesKey {
            bytes: [0; 24],
            len: 8,
        };
        k.bytes[..8].copy_from_slice(&self.bytes[..8]);
        k
    }

    /// Second 8 bytes as a single-length key (K2; for a single-length key, the key itself).
    pub fn right(&self) -> TdesKey {
        if self.len == 8 {
            return self.clone();
        }
        let mut k = TdesKey {
            bytes: [0; 24],
            len: 8,
        };
        k.bytes[..8].copy_from_slice(&self.bytes[8..16]);
        k
    }

    fn cipher(&self) -> DesCipher {
        match self.len {
            8 => {
                let k: [u8; 8] = to_block::<8>(&self.bytes[..8]);
                DesCipher::Single(des::Des::new(&k.into()))
            }
            16 => {
                let mut k = [0u8; 16];
                k.copy_from_slice(&self.bytes[..16]);
                let c = DesCipher::Double(des::TdesEde2::new(&k.into()));
                k.zeroize();
                c
            }
            _ => {
                let mut k = self.bytes;
                let c = DesCipher::Triple(des::TdesEde3::new(&k.into()));
                k.zeroize();
                c
            }
        }
    }

    /// CBC-MAC chain with a zero IV over whole 8-byte blocks (`padded` is already padded; a
    /// trailing partial block is ignored). One key schedule serves every block.
    pub(crate) fn cbc_mac_chain(&self, padded: &[u8]) -> [u8; 8] {
        let cipher = self.cipher();
        let mut chain = [0u8; 8];
        for chunk in padded.chunks_exact(8) {
            xor_in_place(&mut chain, chunk);
            cipher.encrypt(&mut chain);
        }
        chain
    }

    /// Encrypts one 8-byte block in place (TDEA EDE; plain DES for a single-length key).
    pub fn encrypt_block(&self, block: &mut [u8; 8]) {
        self.cipher().encrypt(block);
    }

    /// Decrypts one 8-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 8]) {
        self.cipher().decrypt(block);
    }

    /// ECB encryption; `data` must be whole 8-byte blocks.
    pub fn encrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(data, true)
    }

    /// ECB decryption; `data` must be whole 8-byte blocks.
    pub fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(data, false)
    }

    fn ecb(&self, data: &[u8], encrypt: bool) -> Result<Vec<u8>, CryptoError> {
        ecb(&self.cipher(), data, encrypt)
    }

    /// CBC encryption with an 8-byte IV; `data` must be whole blocks (pad first).
    pub fn encrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_encrypt(&self.cipher(), iv, data)
    }

    /// CBC decryption with an 8-byte IV; `data` must be whole blocks.
    pub fn decrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_decrypt(&self.cipher(), iv, data)
    }

    /// The full 8-byte check block: TDES-encrypt(8 zero bytes) under this key.
    pub fn check_block(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        self.encrypt_block(&mut b);
        b
    }

    /// Key check value: the first 3 bytes of TDES-encrypt(8 zero bytes) (X9.24-1 / common
    /// practice; hosts that send 4 bytes use a longer prefix of the same block).
    pub fn kcv(&self) -> [u8; 3] {
        let b = self.check_block();
        [b[0], b[1], b[2]]
    }
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TdesKey(<{} bytes>, kcv {})",
            self.len,
            smartpos_types::hex::encode(&self.kcv())
        )
    }
}

/// One block cipher with an `N`-byte block (DES/TDEA: 8, AES: 16), so ECB and CBC are written
/// once for both.
pub(crate) trait BlockCipher<const N: usize> {
    fn encrypt(&self, block: &mut [u8; N]);
    fn decrypt(&self, block: &mut [u8; N]);
}

/// The first `N` bytes of `bytes` as a block (zero-filled if shorter; callers pass whole blocks).
pub(crate) fn to_block<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

fn check_blocks(len: usize, block: usize) -> Result<(), CryptoError> {
    if !len.is_multiple_of(block) {
        return Err(CryptoError::DataLength { len, block });
    }
    Ok(())
}

fn iv_block<const N: usize>(iv: &[u8]) -> Result<[u8; N], CryptoError> {
    if iv.len() != N {
        return Err(CryptoError::InputLength {
            what: "IV",
            expected: if N == DES_BLOCK { "8" } else { "16" },
            got: iv.len(),
        });
    }
    Ok(to_block(iv))
}

pub(crate) fn ecb<const N: usize>(
    c: &impl BlockCipher<N>,
    data: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, CryptoError> {
    check_blocks(data.len(), N)?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(N) {
        let mut b = to_block::<N>(chunk);
        if encrypt {
            c.encrypt(&mut b);
        } else {
            c.decrypt(&mut b);
        }
        out.extend_from_slice(&b);
    }
    Ok(out)
}

pub(crate) fn cbc_encrypt<const N: usize>(
    c: &impl BlockCipher<N>,
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_blocks(data.len(), N)?;
    let mut chain = iv_block::<N>(iv)?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(N) {
        xor_in_place(&mut chain, chunk);
        c.encrypt(&mut chain);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

pub(crate) fn cbc_decrypt<const N: usize>(
    c: &impl BlockCipher<N>,
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_blocks(data.len(), N)?;
    let mut chain = iv_block::<N>(iv)?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(N) {
        let mut b = to_block::<N>(chunk);
        c.decrypt(&mut b);
        xor_in_place(&mut b, &chain);
        out.extend_from_slice(&b);
        chain = to_block::<N>(chunk);
    }
    Ok(out)
}

/// An AES key of 16, 24 or 32 bytes. Zeroized on drop; `Debug` shows length and KCV.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AesKey {
    bytes: [u8; 32],
    len: u8,
}

enum AesCipher {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl BlockCipher<16> for AesCipher {
    fn encrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            AesCipher::A128(c) => c.encrypt_block(b),
            AesCipher::A192(c) => c.encrypt_block(b),
            AesCipher::A256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            AesCipher::A128(c) => c.decrypt_block(b),
            AesCipher::A192(c) => c.decrypt_block(b),
            AesCipher::A256(c) => c.decrypt_block(b),
        }
    }
}

impl AesKey {
    /// Wraps 16, 24 or 32 key bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        let len = match bytes.len() {
            16 | 24 | 32 => bytes.len(),
            got => {
                return Err(CryptoError::KeyLength {
                    algorithm: "AES",
                    expected: "16, 24 or 32",
                    got,
                });
            }
        };
        let mut key = AesKey {
            bytes: [0; 32],
            len: len as u8,
        };
        key.bytes[..len].copy_from_slice(bytes);
        Ok(key)
    }

    /// A fresh random key of `len` bytes (16, 24 or 32) from ring `SystemRandom`.
    pub fn generate(len: usize) -> Result<Self, CryptoError> {
        let mut buf = [0u8; 32];
        let slot = buf.get_mut(..len).ok_or(CryptoError::KeyLength {
            algorithm: "AES",
            expected: "16, 24 or 32",
            got: len,
        })?;
        SystemRandom::new()
            .fill(slot)
            .map_err(|_| CryptoError::Random)?;
        let key = AesKey::new(slot);
        buf.zeroize();
        key
    }

    /// Number of key bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false (API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Key strength in bits (128, 192 or 256).
    pub fn bits(&self) -> u16 {
        u16::from(self.len) * 8
    }

    /// The clear key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    fn cipher(&self) -> AesCipher {
        match self.len {
            16 => {
                let mut k = to_block::<16>(&self.bytes[..16]);
                let c = AesCipher::A128(aes::Aes128::new(&k.into()));
                k.zeroize();
                c
            }
            24 => {
                let mut k = [0u8; 24];
                k.copy_from_slice(&self.bytes[..24]);
                let c = AesCipher::A192(aes::Aes192::new(&k.into()));
                k.zeroize();
                c
            }
            _ => {
                let mut k = self.bytes;
                let c = AesCipher::A256(aes::Aes256::new(&k.into()));
                k.zeroize();
                c
            }
        }
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
        self.ecb(data, true)
    }

    /// ECB decryption; `data` must be whole 16-byte blocks.
    pub fn decrypt_ecb(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ecb(data, false)
    }

    fn ecb(&self, data: &[u8], encrypt: bool) -> Result<Vec<u8>, CryptoError> {
        ecb(&self.cipher(), data, encrypt)
    }

    /// CBC encryption with a 16-byte IV; `data` must be whole blocks.
    pub fn encrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_encrypt(&self.cipher(), iv, data)
    }

    /// CBC decryption with a 16-byte IV; `data` must be whole blocks.
    pub fn decrypt_cbc(&self, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        cbc_decrypt(&self.cipher(), iv, data)
    }

    /// Legacy-style KCV: the first 3 bytes of AES-encrypt(16 zero bytes). Many HSMs and hosts
    /// still print this one.
    pub fn kcv(&self) -> [u8; 3] {
        let mut b = [0u8; 16];
        self.encrypt_block(&mut b);
        [b[0], b[1], b[2]]
    }

    /// The CMAC-based KCV that X9.24-3-2017 recommends for AES keys: the leftmost 5 bytes of
    /// AES-CMAC(key, 16 zero bytes). Prefer it for new AES keys; [`AesKey::kcv`] exists for
    /// hosts that still print the ECB style.
    pub fn kcv_cmac(&self) -> [u8; 5] {
        let m = crate::mac::aes_cmac(self, &[0u8; 16]);
        [m[0], m[1], m[2], m[3], m[4]]
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AesKey(<{} bytes>, kcv {})",
            self.len,
            smartpos_types::hex::encode(&self.kcv())
        )
    }
}

/// Terminal side of the key hierarchy: decrypts a working key (PIK, MAK, TDK) delivered under
/// the TMK (TDES-ECB) and checks the delivered check value (3 or 4 bytes, compared in constant
/// time with the prefix of TDES-encrypt(zeros) under the decrypted key).
pub fn unwrap_working_key(
    tmk: &TdesKey,
    encrypted: &[u8],
    check_value: &[u8],
) -> Result<TdesKey, CryptoError> {
    if !matches!(encrypted.len(), 8 | 16 | 24) {
        return Err(CryptoError::KeyLength {
            algorithm: "encrypted working",
            expected: "8, 16 or 24",
            got: encrypted.len(),
        });
    }
    if !matches!(check_value.len(), 3 | 4) {
        return Err(CryptoError::InputLength {
            what: "check value",
            expected: "3 or 4",
            got: check_value.len(),
        });
    }
    let mut clear = tmk.decrypt_ecb(encrypted)?;
    let key = TdesKey::new(&clear);
    clear.zeroize();
    let key = key?;
    let full = key.check_block();
    let ok: bool = full[..check_value.len()].ct_eq(check_value).into();
    if !ok {
        return Err(CryptoError::KcvMismatch);
    }
    Ok(key)
}

/// Host side of the key hierarchy: the working key encrypted under the TMK (TDES-ECB) and its
/// 4-byte check value (TDES-encrypt(zeros) under the working key).
pub fn wrap_working_key(tmk: &TdesKey, key: &TdesKey) -> (Vec<u8>, [u8; 4]) {
    let mut encrypted = Vec::with_capacity(key.len());
    for chunk in key.expose().chunks(DES_BLOCK) {
        let mut b = to_block::<8>(chunk);
        tmk.encrypt_block(&mut b);
        encrypted.extend_from_slice(&b);
    }
    let b = key.check_block();
    (encrypted, [b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::decode;

    fn tk(h: &str) -> TdesKey {
        TdesKey::new(&decode(h).unwrap()).unwrap()
    }

    #[test]
    fn kcv_of_published_key() {
        let k = tk("0123456789ABCDEFFEDCBA9876543210");
        assert_eq!(k.kcv(), [0x08, 0xD7, 0xB4]);
    }

    #[test]
    fn des_known_answer() {
        // FIPS 81 / classic DES example: key 133457799BBCDFF1, plain 0123456789ABCDEF.
        let k = tk("133457799BBCDFF1");
        let mut b = to_block::<8>(&decode("0123456789ABCDEF").unwrap());
        k.encrypt_block(&mut b);
        assert_eq!(b.to_vec(), decode("85E813540F0AB405").unwrap());
        k.decrypt_block(&mut b);
        assert_eq!(b.to_vec(), decode("0123456789ABCDEF").unwrap());
    }

    #[test]
    fn double_and_triple_agree_when_k3_is_k1() {
        let d = tk("0123456789ABCDEFFEDCBA9876543210");
        let t = tk("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF");
        assert_eq!(d.check_block(), t.check_block());
        let s = tk("0123456789ABCDEF");
        let s3 = tk("0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
        assert_eq!(s.check_block(), s3.check_block());
    }

    #[test]
    fn cbc_round_trip_and_chaining() {
        let k = tk("0123456789ABCDEFFEDCBA9876543210");
        let data = b"sixteen byte msgsixteen byte msg";
        let iv = [7u8; 8];
        let c = k.encrypt_cbc(&iv, data).unwrap();
        assert_ne!(c[..16], c[16..], "CBC must chain");
        assert_eq!(k.decrypt_cbc(&iv, &c).unwrap(), data.to_vec());
        assert_eq!(
            k.encrypt_cbc(&iv, &data[..5]),
            Err(CryptoError::DataLength { len: 5, block: 8 })
        );
        assert!(matches!(
            k.encrypt_cbc(&[0; 7], &data[..8]),
            Err(CryptoError::InputLength { got: 7, .. })
        ));
    }

    #[test]
    fn aes_fips197_and_cbc() {
        // FIPS-197 Appendix C.1.
        let k = AesKey::new(&decode("000102030405060708090A0B0C0D0E0F").unwrap()).unwrap();
        let mut b = to_block::<16>(&decode("00112233445566778899AABBCCDDEEFF").unwrap());
        k.encrypt_block(&mut b);
        assert_eq!(
            b.to_vec(),
            decode("69C4E0D86A7B0430D8CDB78070B4C55A").unwrap()
        );
        let data = [0x5Au8; 48];
        let c = k.encrypt_cbc(&[1; 16], &data).unwrap();
        assert_eq!(k.decrypt_cbc(&[1; 16], &c).unwrap(), data.to_vec());
        assert_eq!(k.decrypt_ecb(&k.encrypt_ecb(&data).unwrap()).unwrap(), data);
    }

    #[test]
    fn key_lengths_are_checked() {
        assert!(matches!(
            TdesKey::new(&[0; 15]),
            Err(CryptoError::KeyLength { got: 15, .. })
        ));
        assert!(matches!(
            AesKey::new(&[0; 8]),
            Err(CryptoError::KeyLength { got: 8, .. })
        ));
        assert!(TdesKey::generate(12).is_err());
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = tk("0123456789ABCDEFFEDCBA9876543210");
        let s = format!("{k:?}");
        assert_eq!(s, "TdesKey(<16 bytes>, kcv 08D7B4)");
        let a = AesKey::new(&[0x11; 16]).unwrap();
        assert!(!format!("{a:?}").contains("1111"));
    }

    #[test]
    fn generated_keys_have_odd_parity_and_differ() {
        let a = TdesKey::generate(16).unwrap();
        let b = TdesKey::generate(16).unwrap();
        assert!(a.has_odd_parity());
        assert_eq!(a.len(), 16);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(AesKey::generate(32).unwrap().bits(), 256);
    }

    #[test]
    fn parity_helpers() {
        let mut b = [0x00, 0x01, 0xFE, 0xFF];
        set_odd_parity(&mut b);
        assert_eq!(b, [0x01, 0x01, 0xFE, 0xFE]);
        assert!(has_odd_parity(&b));
    }

    #[test]
    fn working_key_wrap_unwrap() {
        let tmk = tk("0123456789ABCDEFFEDCBA9876543210");
        let mak = TdesKey::generate(16).unwrap();
        let (enc, cv) = wrap_working_key(&tmk, &mak);
        let got = unwrap_working_key(&tmk, &enc, &cv).unwrap();
        assert_eq!(got.expose(), mak.expose());
        let got3 = unwrap_working_key(&tmk, &enc, &cv[..3]).unwrap();
        assert_eq!(got3.expose(), mak.expose());
        let mut bad = cv;
        bad[3] ^= 1;
        assert_eq!(
            unwrap_working_key(&tmk, &enc, &bad).unwrap_err(),
            CryptoError::KcvMismatch
        );
        assert!(matches!(
            unwrap_working_key(&tmk, &enc, &cv[..2]),
            Err(CryptoError::InputLength { got: 2, .. })
        ));
        assert!(matches!(
            unwrap_working_key(&tmk, &enc[..12], &cv),
            Err(CryptoError::KeyLength { got: 12, .. })
        ));
    }

    #[test]
    fn variants_and_halves() {
        let k = tk("0123456789ABCDEFFEDCBA9876543210");
        let v = k.xor_variant(&[0, 0, 0, 0, 0, 0, 0, 0xFF]);
        assert_eq!(v.expose()[7], 0x10);
        assert_eq!(v.expose()[15], 0xEF);
        assert_eq!(k.left().expose(), &decode("0123456789ABCDEF").unwrap()[..]);
        assert_eq!(k.right().expose(), &decode("FEDCBA9876543210").unwrap()[..]);
    }
}
