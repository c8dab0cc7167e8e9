//! AES DUKPT, ANSI X9.24-3-2017.
//!
//! Every key is derived by AES-ECB-encrypting 16-byte derivation data blocks under the parent
//! key (X9.24-3 section 6.3 "key derivation function", one block per 128 bits of output):
//!
//! | bytes | field                | values                                            |
//! |-------|----------------------|---------------------------------------------------|
//! | 0     | version              | 0x01                                              |
//! | 1     | key block counter    | 0x01, 0x02 for the second block of a 192/256-bit key |
//! | 2-3   | key usage indicator  | [`KeyUsage`]                                      |
//! | 4-5   | algorithm indicator  | [`KeyType`]: 0 2TDEA, 1 3TDEA, 2 AES-128, 3 AES-192, 4 AES-256 |
//! | 6-7   | length in bits       | 0x0080, 0x00C0, 0x0100                            |
//! | 8-15  | context              | initial key: the 8-byte initial key ID; otherwise the derivation ID (rightmost 4 bytes of the initial key ID) and the 32-bit counter |
//!
//! Initial key = derive(BDK, usage 0x8001); intermediate keys walk the counter's one-bits from
//! the left with usage 0x8000; working keys = derive(transaction key, usage, type).

use crate::CryptoError;
use crate::keys::AesKey;
use smartpos_types::SecretBytes;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// X9.24-3 allows counters with at most 16 one-bits.
pub const MAX_ONE_BITS: u32 = 16;

/// The key usage indicator of the derivation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUsage {
    /// 0x0002: key encryption key.
    KeyEncryption,
    /// 0x1000: PIN encryption.
    PinEncryption,
    /// 0x2000: MAC generation.
    MacGeneration,
    /// 0x2001: MAC verification.
    MacVerification,
    /// 0x2002: MAC both ways.
    MacBoth,
    /// 0x3000: data encryption, encrypt.
    DataEncrypt,
    /// 0x3001: data encryption, decrypt.
    DataDecrypt,
    /// 0x3002: data encryption, both ways.
    DataBoth,
    /// 0x8000: key derivation (intermediate derivation keys).
    KeyDerivation,
    /// 0x8001: initial key derivation.
    KeyDerivationInitial,
}

impl KeyUsage {
    /// The 16-bit indicator.
    pub fn code(self) -> u16 {
        match self {
            KeyUsage::KeyEncryption => 0x0002,
            KeyUsage::PinEncryption => 0x1000,
            KeyUsage::MacGeneration => 0x2000,
            KeyUsage::MacVerification => 0x2001,
            KeyUsage::MacBoth => 0x2002,
            KeyUsage::DataEncrypt => 0x3000,
            KeyUsage::DataDecrypt => 0x3001,
            KeyUsage::DataBoth => 0x3002,
            KeyUsage::KeyDerivation => 0x8000,
            KeyUsage::KeyDerivationInitial => 0x8001,
        }
    }
}

/// The type (algorithm and length) of a derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Two-key TDEA (128 bits).
    Tdes2,
    /// Three-key TDEA (192 bits).
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl KeyType {
    /// Algorithm indicator of the derivation data.
    pub fn algorithm(self) -> u16 {
        match self {
            KeyType::Tdes2 => 0,
            KeyType::Tdes3 => 1,
            KeyType::Aes128 => 2,
            KeyType::Aes192 => 3,
            KeyType::Aes256 => 4,
        }
    }

    /// Key length in bits.
    pub fn bits(self) -> u16 {
        match self {
            KeyType::Tdes2 | KeyType::Aes128 => 128,
            KeyType::Tdes3 | KeyType::Aes192 => 192,
            KeyType::Aes256 => 256,
        }
    }

    /// Effective strength in bits, for the "never derive a stronger key" rule (TDEA keys
    /// count as weaker than any AES key).
    fn strength(self) -> u16 {
        match self {
            KeyType::Tdes2 | KeyType::Tdes3 => 112,
            other => other.bits(),
        }
    }

    /// The AES type of a derivation key of `len` bytes.
    fn of_aes_key(key: &AesKey) -> KeyType {
        match key.len() {
            16 => KeyType::Aes128,
            24 => KeyType::Aes192,
            _ => KeyType::Aes256,
        }
    }
}

/// The 8-byte initial key ID (BDK ID + derivation ID). Not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitialKeyId([u8; 8]);

impl InitialKeyId {
    /// Wraps 8 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| CryptoError::InputLength {
            what: "initial key ID",
            expected: "8",
            got: bytes.len(),
        })?;
        Ok(InitialKeyId(arr))
    }

    /// The 8 bytes.
    pub fn bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The derivation ID (rightmost 4 bytes).
    pub fn derivation_id(&self) -> [u8; 4] {
        [self.0[4], self.0[5], self.0[6], self.0[7]]
    }

    fn context(&self, counter: u32) -> [u8; 8] {
        let d = self.derivation_id();
        let c = counter.to_be_bytes();
        [d[0], d[1], d[2], d[3], c[0], c[1], c[2], c[3]]
    }
}

/// Whether `counter` is one a conforming device uses (non-zero, at most 16 one-bits).
pub fn is_valid_counter(counter: u32) -> bool {
    counter != 0 && counter.count_ones() <= MAX_ONE_BITS
}

/// One 16-byte derivation data block (see the module table).
pub fn derivation_data(
    usage: KeyUsage,
    key_type: KeyType,
    block_counter: u8,
    context: &[u8; 8],
) -> [u8; 16] {
    let u = usage.code().to_be_bytes();
    let a = key_type.algorithm().to_be_bytes();
    let l = key_type.bits().to_be_bytes();
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&[1, block_counter, u[0], u[1], a[0], a[1], l[0], l[1]]);
    d[8..].copy_from_slice(context);
    d
}

/// The X9.24-3 key derivation function: `ceil(bits / 128)` blocks of
/// AES-ECB(derivation key, derivation data), truncated to the key length.
pub fn derive_key(
    derivation_key: &AesKey,
    usage: KeyUsage,
    key_type: KeyType,
    context: &[u8; 8],
) -> Result<SecretBytes, CryptoError> {
    if key_type.strength() > derivation_key.bits() {
        return Err(CryptoError::KeyTooStrong {
            wanted_bits: key_type.bits(),
            have_bits: derivation_key.bits(),
        });
    }
    let len = usize::from(key_type.bits() / 8);
    let mut out = Vec::with_capacity(32);
    for counter in 1..=len.div_ceil(16) as u8 {
        let mut block = derivation_data(usage, key_type, counter, context);
        derivation_key.encrypt_block(&mut block);
        out.extend_from_slice(&block);
        block.zeroize();
    }
    out.truncate(len);
    Ok(SecretBytes::new(out))
}

fn derive_aes(
    parent: &AesKey,
    usage: KeyUsage,
    key_type: KeyType,
    context: &[u8; 8],
) -> Result<AesKey, CryptoError> {
    let bytes = derive_key(parent, usage, key_type, context)?;
    AesKey::new(bytes.expose())
}

/// The initial DUKPT key loaded into a device: derived from the BDK and the initial key ID
/// (usage 0x8001, same AES type as the BDK).
pub fn initial_key(bdk: &AesKey, ikid: &InitialKeyId) -> Result<AesKey, CryptoError> {
    derive_aes(
        bdk,
        KeyUsage::KeyDerivationInitial,
        KeyType::of_aes_key(bdk),
        ikid.bytes(),
    )
}

/// The transaction (intermediate derivation) key for `counter`, from the initial key: for each
/// one-bit of the counter from the left, derive with usage 0x8000 and the counter bits so far.
/// Any 32-bit counter is computed (use [`is_valid_counter`] to police device counters);
/// counter 0 returns the initial key.
pub fn transaction_key(
    initial_key: &AesKey,
    ikid: &InitialKeyId,
    counter: u32,
) -> Result<AesKey, CryptoError> {
    let key_type = KeyType::of_aes_key(initial_key);
    let mut key = initial_key.clone();
    let mut so_far = 0u32;
    for bit in (0..32).rev() {
        let b = 1u32 << bit;
        if counter & b != 0 {
            so_far |= b;
            key = derive_aes(
                &key,
                KeyUsage::KeyDerivation,
                key_type,
                &ikid.context(so_far),
            )?;
        }
    }
    Ok(key)
}

/// A working key of `usage` and `key_type` from the transaction key for `counter`.
pub fn working_key(
    transaction_key: &AesKey,
    ikid: &InitialKeyId,
    counter: u32,
    usage: KeyUsage,
    key_type: KeyType,
) -> Result<SecretBytes, CryptoError> {
    derive_key(transaction_key, usage, key_type, &ikid.context(counter))
}

/// Host side in one call: the AES-128 working key for `usage` from BDK, initial key ID and
/// counter.
pub fn derive_working_key(
    bdk: &AesKey,
    ikid: &InitialKeyId,
    counter: u32,
    usage: KeyUsage,
) -> Result<AesKey, CryptoError> {
    let ik = initial_key(bdk, ikid)?;
    let tk = transaction_key(&ik, ikid, counter)?;
    AesKey::new(working_key(&tk, ikid, counter, usage, KeyType::Aes128)?.expose())
}

/// The counter a device uses after `counter` (X9.24-3 "update state"): +1 while the counter has
/// fewer than 16 one-bits, otherwise + its rightmost one-bit. `None` past the 32-bit range.
pub fn next_counter(counter: u32) -> Option<u32> {
    if counter.count_ones() < MAX_ONE_BITS {
        counter.checked_add(1)
    } else {
        counter.checked_add(counter & counter.wrapping_neg())
    }
}

/// One AES DUKPT transaction: the counter, the initial key ID and the transaction
/// (intermediate derivation) key, from which the working keys come.
#[derive(Clone, Debug)]
pub struct AesTransaction {
    ikid: InitialKeyId,
    counter: u32,
    key: AesKey,
}

impl AesTransaction {
    /// Host side: the transaction for `counter` from the BDK.
    pub fn from_bdk(bdk: &AesKey, ikid: &InitialKeyId, counter: u32) -> Result<Self, CryptoError> {
        if !is_valid_counter(counter) {
            return Err(CryptoError::DukptCounter {
                counter,
                reason: "not a counter a device uses",
            });
        }
        let ik = initial_key(bdk, ikid)?;
        Ok(AesTransaction {
            ikid: *ikid,
            counter,
            key: transaction_key(&ik, ikid, counter)?,
        })
    }

    /// The 12-byte KSN: initial key ID then the 32-bit counter.
    pub fn ksn(&self) -> [u8; 12] {
        let mut k = [0u8; 12];
        k[..8].copy_from_slice(&self.ikid.0);
        k[8..].copy_from_slice(&self.counter.to_be_bytes());
        k
    }

    /// The transaction counter.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The AES-128 working key for `usage`.
    pub fn working_key(&self, usage: KeyUsage) -> Result<AesKey, CryptoError> {
        let k = working_key(&self.key, &self.ikid, self.counter, usage, KeyType::Aes128)?;
        AesKey::new(k.expose())
    }
}

/// Byte form of [`DukptAesTerminal`] for the secure store: `D`, `A`, version 1, initial key
/// ID (8), next counter (4), exhausted flag (1), register presence bits (4), 32 registers of 16
/// bytes.
pub const STATE_LEN: usize = 3 + 8 + 4 + 1 + 4 + 32 * 16;

/// The terminal's AES DUKPT state (AES-128 initial key): 32 intermediate derivation key
/// registers, one per counter bit, used like the TDES future-key registers (X9.24-3 terminal
/// algorithm). Holds no initial key once built; registers are erased as they are used.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DukptAesTerminal {
    #[zeroize(skip)]
    ikid: InitialKeyId,
    counter: u32,
    exhausted: bool,
    /// Register i holds the intermediate key for the counter `prefix | 1 << i`.
    registers: [[u8; 16]; 32],
    present: u32,
}

impl std::fmt::Debug for DukptAesTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DukptAesTerminal")
            .field("ikid", &self.ikid)
            .field("counter", &self.counter)
            .field("exhausted", &self.exhausted)
            .field("registers_in_use", &self.present.count_ones())
            .finish()
    }
}

impl DukptAesTerminal {
    /// Loads an AES-128 initial key for an initial key ID: fills the 32 registers. The caller
    /// drops the initial key.
    pub fn new(initial_key: &AesKey, ikid: &InitialKeyId) -> Result<Self, CryptoError> {
        if initial_key.len() != 16 {
            return Err(CryptoError::KeyLength {
                algorithm: "AES DUKPT initial",
                expected: "16",
                got: initial_key.len(),
            });
        }
        let mut t = DukptAesTerminal {
            ikid: *ikid,
            counter: 1,
            exhausted: false,
            registers: [[0; 16]; 32],
            present: 0,
        };
        t.fill_below(initial_key, 0, 32)?;
        Ok(t)
    }

    fn fill_below(&mut self, key: &AesKey, counter: u32, top: u32) -> Result<(), CryptoError> {
        for bit in (0..top).rev() {
            let c = counter | 1 << bit;
            let k = derive_key(
                key,
                KeyUsage::KeyDerivation,
                KeyType::Aes128,
                &self.ikid.context(c),
            )?;
            self.registers[bit as usize].copy_from_slice(k.expose());
            self.present |= 1 << bit;
        }
        Ok(())
    }

    /// The counter the next transaction will use.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The initial key ID.
    pub fn ikid(&self) -> &InitialKeyId {
        &self.ikid
    }

    /// Whether the device can still produce a key.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Takes the key for the next transaction, derives the registers below it, erases its
    /// register and advances the counter.
    pub fn next_transaction(&mut self) -> Result<AesTransaction, CryptoError> {
        if self.exhausted {
            return Err(CryptoError::DukptExhausted);
        }
        let c = self.counter;
        let bit = c.trailing_zeros();
        if bit >= 32 || self.present & (1 << bit) == 0 {
            return Err(CryptoError::DukptRegisterEmpty {
                register: (32 - bit.min(31)) as u8,
            });
        }
        let key = AesKey::new(&self.registers[bit as usize])?;
        if c.count_ones() < MAX_ONE_BITS {
            self.fill_below(&key, c, bit)?;
        }
        self.registers[bit as usize].zeroize();
        self.present &= !(1 << bit);
        match next_counter(c) {
            Some(n) => self.counter = n,
            None => self.exhausted = true,
        }
        Ok(AesTransaction {
            ikid: self.ikid,
            counter: c,
            key,
        })
    }

    /// The state as bytes (secret); see [`STATE_LEN`].
    pub fn to_bytes(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(STATE_LEN);
        out.extend_from_slice(b"DA\x01");
        out.extend_from_slice(&self.ikid.0);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.push(u8::from(self.exhausted));
        out.extend_from_slice(&self.present.to_be_bytes());
        for r in &self.registers {
            out.extend_from_slice(r);
        }
        SecretBytes::new(out)
    }

    /// The state back from [`DukptAesTerminal::to_bytes`]; refuses anything malformed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != STATE_LEN || bytes.get(..3) != Some(b"DA\x01".as_slice()) {
            return Err(CryptoError::InputLength {
                what: "AES DUKPT state",
                expected: "a state written by this version",
                got: bytes.len(),
            });
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(w)
        };
        let ikid = InitialKeyId::new(&bytes[3..11])?;
        let counter = word(11);
        let exhausted = match bytes[15] {
            0 => false,
            1 => true,
            _ => {
                return Err(CryptoError::OutOfRange {
                    what: "AES DUKPT state flag",
                });
            }
        };
        let mut t = DukptAesTerminal {
            ikid,
            counter,
            exhausted,
            registers: [[0; 16]; 32],
            present: word(16),
        };
        for (i, r) in t.registers.iter_mut().enumerate() {
            r.copy_from_slice(&bytes[20 + i * 16..20 + (i + 1) * 16]);
        }
        if !exhausted {
            if !is_valid_counter(counter) {
                return Err(CryptoError::DukptCounter {
                    counter,
                    reason: "not a counter a device uses",
                });
            }
            let bit = counter.trailing_zeros();
            if t.present & (1 << bit) == 0 {
                return Err(CryptoError::DukptRegisterEmpty {
                    register: (32 - bit) as u8,
                });
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::{decode, encode};

    fn setup() -> (AesKey, InitialKeyId) {
        (
            AesKey::new(&decode("FEDCBA9876543210F1F1F1F1F1F1F1F1").unwrap()).unwrap(),
            InitialKeyId::new(&decode("1234567890123456").unwrap()).unwrap(),
        )
    }

    #[test]
    fn derivation_data_layout() {
        let d = derivation_data(
            KeyUsage::KeyDerivationInitial,
            KeyType::Aes128,
            1,
            &[0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56],
        );
        assert_eq!(encode(&d), "01018001000200801234567890123456");
        let d = derivation_data(KeyUsage::PinEncryption, KeyType::Aes256, 2, &[0; 8]);
        assert_eq!(encode(&d[..8]), "0102100000040100");
    }

    #[test]
    fn initial_and_first_transaction_key() {
        let (bdk, id) = setup();
        let ik = initial_key(&bdk, &id).unwrap();
        assert_eq!(encode(ik.expose()), "1273671EA26AC29AFA4D1084127652A1");
        let tk = transaction_key(&ik, &id, 1).unwrap();
        assert_eq!(encode(tk.expose()), "4F21B565BAD9835E112B6465635EAE44");
        assert_eq!(transaction_key(&ik, &id, 0).unwrap().expose(), ik.expose());
    }

    #[test]
    fn strength_rule_and_lengths() {
        let (bdk, id) = setup();
        assert_eq!(
            derive_key(
                &bdk,
                KeyUsage::PinEncryption,
                KeyType::Aes256,
                &id.context(1)
            ),
            Err(CryptoError::KeyTooStrong {
                wanted_bits: 256,
                have_bits: 128
            })
        );
        let t = derive_key(
            &bdk,
            KeyUsage::PinEncryption,
            KeyType::Tdes3,
            &id.context(1),
        )
        .unwrap();
        assert_eq!(t.len(), 24);
        let big = AesKey::new(&[9; 32]).unwrap();
        let k = derive_key(&big, KeyUsage::MacBoth, KeyType::Aes256, &id.context(1)).unwrap();
        assert_eq!(k.len(), 32);
        assert!(InitialKeyId::new(&[0; 7]).is_err());
    }

    #[test]
    fn counter_validity() {
        assert!(!is_valid_counter(0));
        assert!(is_valid_counter(0xFFFF0000));
        assert!(!is_valid_counter(0xFFFF8000));
    }
}
