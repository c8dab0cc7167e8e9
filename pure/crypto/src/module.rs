//! The security module: the one place a terminal's keys are used.
//!
//! On a smart POS the master key and the working keys live in the device's security processor
//! (PED): the app loads the working keys received at sign-in into it, the PIN is typed on its
//! PIN pad and leaves it only as an encrypted PIN block, and MACs are computed inside it.
//! [`SecurityModule`] is that interface. The SDK never asks a module for a key: every call
//! names a key by what it is for ([`KeyRef`], [`KeyRole`]) and gets back a result (a MAC, an
//! encrypted PIN block, ciphertext, a KSN).
//!
//! Two kinds of module exist (see `docs/adr/0005-security-module.md`):
//! - [`SoftwareModule`] (this file): keys in this process's memory, zeroized on drop, the
//!   master key given by the caller (the terminal runtime reads it from the app's secure
//!   store). For mPOS, the CLI, the simulator and JVM tests: today's behaviour.
//! - a device module: the app's bridge to the PED (Kotlin, through the FFI). Keys stay in the
//!   security processor; the bridge sees ciphertext, check values, MAC inputs and results.
//!
//! Every method takes `&self` (a module is shared by the engine and the runtime and may be
//! called from Kotlin's threads) and is synchronous: a PED call is local and short, except PIN
//! entry on the PIN pad, which the runtime makes before the engine runs (like a card read).
//!
//! The module never sees ISO 8583: the engine decides what the MAC covers, the profile decides
//! where keys and KSNs travel. Errors never carry key bytes, PINs, PANs or blocks.

use crate::CryptoError;
use crate::dukpt::{DukptDevice, DukptScheme, DukptTxn};
use crate::keys::{AesKey, TdesKey};
use crate::pinblock::{self, Pin, PinBlockFormat};
use crate::sm4::Sm4Key;
use smartpos_types::{Pan, SecretBytes};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

/// What a working key is for. A sign-in delivers one of each (the TDK only where the acquirer
/// uses one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// PIN encryption key.
    Pik,
    /// MAC key.
    Mak,
    /// Track / data encryption key.
    Tdk,
}

impl KeyRole {
    /// A short name for errors and logs (`PIK`, `MAK`, `TDK`).
    pub fn name(self) -> &'static str {
        match self {
            KeyRole::Pik => "PIK",
            KeyRole::Mak => "MAK",
            KeyRole::Tdk => "TDK",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The block cipher of a key (a working key, or the master key it is delivered under).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// TDES (8, 16 or 24 bytes; 8-byte blocks).
    Tdes,
    /// AES (16, 24 or 32 bytes; 16-byte blocks).
    Aes,
    /// SM4 (GB/T 32907; 16 bytes, 16-byte blocks), China's national algorithm.
    Sm4,
}

impl KeyAlgorithm {
    /// A short name for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Tdes => "TDES",
            KeyAlgorithm::Aes => "AES",
            KeyAlgorithm::Sm4 => "SM4",
        }
    }
}

/// One working key as the host delivers it: ciphertext under the master key and the check
/// value the module verifies after it decrypts the key (the first bytes of the key's
/// encryption of a zero block).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// What the key is for.
    pub role: KeyRole,
    /// The key's cipher.
    pub algorithm: KeyAlgorithm,
    /// The key encrypted under the master key (ECB, as delivered).
    pub ciphertext: Vec<u8>,
    /// The delivered check value (3 to 8 bytes).
    pub check_value: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    // Ciphertext under the master key is not a secret in itself, but there is no reason to
    // print it; the check value identifies the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("role", &self.role)
            .field("algorithm", &self.algorithm)
            .field("ciphertext_len", &self.ciphertext.len())
            .field(
                "check_value",
                &smartpos_types::hex::encode(&self.check_value),
            )
            .finish()
    }
}

/// The working keys of one sign-in, all delivered under the master key at `master_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDelivery {
    /// Index of the master key (TMK) in the module the keys are encrypted under (the
    /// software module holds the TMK at index 0).
    pub master_index: u32,
    /// The keys, in any order; at most one per role.
    pub keys: Vec<WrappedKey>,
}

/// A key serial number for DUKPT: 10 bytes (TDES DUKPT, ANSI X9.24-1) or 12 bytes (AES DUKPT,
/// X9.24-3: 8-byte initial key id + 4-byte counter). Not secret: it travels in the clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DukptKsn {
    bytes: [u8; 12],
    len: u8,
}

impl DukptKsn {
    /// A KSN from its 10 or 12 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 10 && bytes.len() != 12 {
            return Err(CryptoError::InputLength {
                what: "KSN",
                expected: "10 or 12",
                got: bytes.len(),
            });
        }
        let mut k = DukptKsn {
            bytes: [0; 12],
            len: bytes.len() as u8,
        };
        k.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(k)
    }

    /// The KSN bytes as they go on the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether this is an AES DUKPT KSN (12 bytes).
    pub fn is_aes(&self) -> bool {
        self.len == 12
    }
}

impl fmt::Debug for DukptKsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DukptKsn({})", smartpos_types::hex::encode(self.bytes()))
    }
}

/// Which key an operation uses. The operation decides the role: a PIN block uses the PIN key,
/// a MAC the MAC key, data encryption the data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// The working key delivered at the last sign-in.
    Working,
    /// The key derived for this KSN, which [`SecurityModule::dukpt_next`] reserved.
    Dukpt(DukptKsn),
}

/// How a MAC is computed. The cipher is the MAC key's: [`MacMethod::CupEcb`] under an SM4 key
/// is the national-algorithm variant of the same construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacMethod {
    /// ANSI X9.9: single-DES CBC-MAC, zero padding (8-byte key).
    X99,
    /// ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3), zero padding (16-byte key).
    X919,
    /// China UnionPay POS "ECB" MAC (XOR of the blocks, hex expansion, two encryptions).
    CupEcb,
    /// CMAC (NIST SP 800-38B) under an AES (or SM4) key.
    Cmac,
}

/// Which way a MAC goes. With working keys both use the MAK; DUKPT derives a different key for
/// requests and for responses (X9.24-1 MAC request / response variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDirection {
    /// A request the terminal sends.
    Request,
    /// A response the terminal checks.
    Response,
}

/// Block mode for [`SecurityModule::encrypt_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataMode {
    /// ECB, block by block (UnionPay track encryption).
    Ecb,
    /// CBC with a zero IV.
    CbcZeroIv,
}

/// Where the PIN comes from.
#[derive(Debug, Clone, Copy)]
pub enum PinSource<'a> {
    /// Digits the app collected (the software module only: a device module refuses them,
    /// since its PIN never leaves the PIN pad in the clear).
    Digits(&'a Pin),
    /// The module's own PIN pad: it prompts the cardholder for `amount` minor units and
    /// returns the encrypted block; the SDK never sees the digits.
    PinPad {
        /// Amount shown on the PIN pad, minor units.
        amount: u64,
    },
}

/// What [`SecurityModule::pin_block`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct PinRequest<'a> {
    /// The PIN key to encrypt under.
    pub key: KeyRef,
    /// ISO 9564-1 format (4 needs an AES PIN key).
    pub format: PinBlockFormat,
    /// The card's PAN (every format but 1 binds it).
    pub pan: Option<&'a Pan>,
    /// Digits, or the module's PIN pad.
    pub source: PinSource<'a>,
}

/// Which kind of module this is (for the support bundle and status lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// Keys in the app's memory ([`SoftwareModule`]).
    Software,
    /// The device's security processor, through the app's bridge.
    Device,
}

/// Why a security module refused or failed an operation. No variant carries key bytes, PIN
/// digits, PANs or PIN blocks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// The key is not loaded (no sign-in yet, or the last one failed).
    #[error("no {role} loaded in the security module: sign in first")]
    NoKey {
        /// The key asked for.
        role: KeyRole,
    },
    /// No master key at that index.
    #[error("no master key at index {index} in the security module")]
    NoMasterKey {
        /// The index asked for.
        index: u32,
    },
    /// A delivered key's check value does not match the key the module decrypted. No key of
    /// the delivery was installed.
    #[error("the {role} delivered at sign-in fails its check value")]
    KeyCheck {
        /// The key whose check failed.
        role: KeyRole,
    },
    /// A delivered key is malformed (wrong length for its cipher, check value too short).
    #[error("the {role} delivered at sign-in is malformed: {reason}")]
    BadDelivery {
        /// The key.
        role: KeyRole,
        /// Why, for humans.
        reason: &'static str,
    },
    /// The module does not do this (an algorithm, a format, a PIN source); the text names it.
    #[error("the security module does not support {0}")]
    Unsupported(String),
    /// No DUKPT key is loaded in the module.
    #[error("no DUKPT key loaded in the security module")]
    NoDukptKey,
    /// The KSN is not the one the module reserved last (its keys are gone).
    #[error("KSN {ksn} is not the current DUKPT transaction of the security module")]
    StaleKsn {
        /// The KSN, hex (not secret).
        ksn: String,
    },
    /// The DUKPT counter is used up: the terminal needs a new initial key.
    #[error("the DUKPT transaction counter is exhausted: load a new initial key")]
    DukptExhausted,
    /// The module could not make a value durable (the DUKPT counter reservation).
    #[error("security module storage: {0}")]
    Storage(String),
    /// The cardholder cancelled PIN entry on the PIN pad.
    #[error("PIN entry cancelled")]
    PinCancelled,
    /// The PIN pad timed out.
    #[error("PIN entry timed out")]
    PinTimeout,
    /// A cryptographic input was refused (lengths, PIN digits, format and key type).
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The device failed; the text is the device's (never key material).
    #[error("security device: {0}")]
    Device(String),
}

/// Everything that touches a key. See the module documentation.
///
/// Contract, for every implementation (the shared test suite in `tests/` checks both the
/// software module and a hardware double against it):
/// - [`install_working_keys`](SecurityModule::install_working_keys) is all or nothing: each
///   key is decrypted under the master key and its check value verified inside the module; if
///   any fails, none of the delivery is installed and the keys of the previous sign-in stay as
///   they were (as a PED keeps a slot whose load failed).
/// - No method returns or logs a clear key, and no error carries one.
/// - [`dukpt_next`](SecurityModule::dukpt_next) makes the reservation durable before it
///   returns: a KSN it returned is never returned again, even after a crash.
pub trait SecurityModule: Send + Sync {
    /// Which kind of module this is.
    fn kind(&self) -> ModuleKind;

    /// Stores the working keys of a sign-in (ciphertext under the master key), each verified
    /// against its check value inside the module; replaces the previous ones.
    fn install_working_keys(&self, delivery: &KeyDelivery) -> Result<(), ModuleError>;

    /// Whether a working key for `role` is loaded.
    fn has_working_key(&self, role: KeyRole) -> bool;

    /// The MAC of `data` under the MAC key (`key`: the working MAK or the DUKPT MAC key of a
    /// KSN for `direction`). Returns the whole MAC the method produces (8 bytes, 16 for CMAC);
    /// the caller takes the leftmost bytes its field holds.
    fn mac(
        &self,
        key: KeyRef,
        direction: MacDirection,
        method: MacMethod,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError>;

    /// An encrypted PIN block under the PIN key, from digits or from the module's PIN pad.
    fn pin_block(&self, request: &PinRequest<'_>) -> Result<SecretBytes, ModuleError>;

    /// `data` (whole blocks of the key's cipher; the caller pads) encrypted under the data key
    /// (the working TDK, or the DUKPT data key of a KSN): track data where the acquirer wants
    /// it encrypted.
    fn encrypt_data(
        &self,
        key: KeyRef,
        mode: DataMode,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError>;

    /// Reserves the next DUKPT transaction: advances the counter durably (never reused, even
    /// after a crash), derives the keys for the new KSN inside the module and returns the KSN.
    /// The keys are then used through [`KeyRef::Dukpt`] with this KSN until the next call.
    fn dukpt_next(&self) -> Result<DukptKsn, ModuleError>;
}

/// Where the software module keeps its DUKPT state durably (the terminal runtime writes it to
/// the app's secure store). `save` must not return before the state is durable: the module
/// hands out a KSN only after it returned.
pub trait DukptStore: Send + Sync {
    /// Replaces the stored state (secret bytes: the device's key registers).
    fn save(&self, state: &[u8]) -> Result<(), String>;
}

/// A key held by the software module.
#[derive(Clone)]
enum HeldKey {
    Tdes(TdesKey),
    Aes(AesKey),
    Sm4(Sm4Key),
}

impl HeldKey {
    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            HeldKey::Tdes(_) => KeyAlgorithm::Tdes,
            HeldKey::Aes(_) => KeyAlgorithm::Aes,
            HeldKey::Sm4(_) => KeyAlgorithm::Sm4,
        }
    }

    /// Decrypts a delivered key (ECB) under this master key.
    fn unwrap(&self, w: &WrappedKey) -> Result<HeldKey, ModuleError> {
        let bad = |reason| ModuleError::BadDelivery {
            role: w.role,
            reason,
        };
        let clear = Zeroizing::new(match self {
            HeldKey::Tdes(k) => k
                .decrypt_ecb(&w.ciphertext)
                .map_err(|_| bad("not whole blocks of the master key's cipher"))?,
            HeldKey::Aes(k) => k
                .decrypt_ecb(&w.ciphertext)
                .map_err(|_| bad("not whole blocks of the master key's cipher"))?,
            HeldKey::Sm4(k) => k
                .decrypt_ecb(&w.ciphertext)
                .map_err(|_| bad("not whole blocks of the master key's cipher"))?,
        });
        // National-algorithm keys travel under a national-algorithm master only (UnionPay's
        // SM4 terminals have an SM4 TMK); a TDES or AES master never unwraps an SM4 key.
        if (w.algorithm == KeyAlgorithm::Sm4) != matches!(self, HeldKey::Sm4(_)) {
            return Err(ModuleError::Unsupported(format!(
                "{} working keys under a {} master key",
                w.algorithm.name(),
                self.algorithm().name()
            )));
        }
        match w.algorithm {
            KeyAlgorithm::Tdes => TdesKey::new(&clear)
                .map(HeldKey::Tdes)
                .map_err(|_| bad("a TDES key is 8, 16 or 24 bytes")),
            KeyAlgorithm::Aes => AesKey::new(&clear)
                .map(HeldKey::Aes)
                .map_err(|_| bad("an AES key is 16, 24 or 32 bytes")),
            KeyAlgorithm::Sm4 => Sm4Key::new(&clear)
                .map(HeldKey::Sm4)
                .map_err(|_| bad("an SM4 key is 16 bytes")),
        }
    }

    /// The full check block: the key's encryption of one zero block.
    fn check_block(&self) -> Vec<u8> {
        match self {
            HeldKey::Tdes(k) => k.check_block().to_vec(),
            HeldKey::Aes(k) => {
                let mut b = [0u8; 16];
                k.encrypt_block(&mut b);
                b.to_vec()
            }
            HeldKey::Sm4(k) => k.check_block().to_vec(),
        }
    }
}

/// The software module's DUKPT device, its store, and the transaction it reserved last.
struct HeldDukpt {
    device: DukptDevice,
    store: Box<dyn DukptStore>,
    current: Option<DukptTxn>,
}

/// The software module's state.
#[derive(Default)]
struct Held {
    masters: Vec<(u32, HeldKey)>,
    working: Vec<(KeyRole, HeldKey)>,
    dukpt: Option<HeldDukpt>,
}

impl Held {
    /// The keys of the DUKPT transaction reserved last, if `ksn` is its KSN.
    fn dukpt(&self, ksn: &DukptKsn) -> Result<&DukptTxn, ModuleError> {
        let d = self.dukpt.as_ref().ok_or(ModuleError::NoDukptKey)?;
        match &d.current {
            Some(t) if t.ksn() == ksn.bytes() => Ok(t),
            _ => Err(ModuleError::StaleKsn {
                ksn: smartpos_types::hex::encode(ksn.bytes()),
            }),
        }
    }

    fn working(&self, role: KeyRole) -> Result<&HeldKey, ModuleError> {
        self.working
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, k)| k)
            .ok_or(ModuleError::NoKey { role })
    }
}

/// The software security module: keys in this process's memory, zeroized when replaced or
/// dropped, never returned by any method. The master key is given by the caller (the terminal
/// runtime reads it from the app's secure store, `store.rs`). For mPOS, the CLI, the simulator
/// and JVM tests; a smart POS uses its PED through a device module.
pub struct SoftwareModule {
    held: Mutex<Held>,
}

impl fmt::Debug for SoftwareModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.lock();
        let roles: Vec<&str> = held.working.iter().map(|(r, _)| r.name()).collect();
        f.debug_struct("SoftwareModule")
            .field("masters", &held.masters.len())
            .field("working", &roles)
            .finish()
    }
}

impl SoftwareModule {
    /// A module holding `tmk` as the master key at index 0.
    pub fn new(tmk: TdesKey) -> Self {
        SoftwareModule {
            held: Mutex::new(Held {
                masters: vec![(0, HeldKey::Tdes(tmk))],
                working: Vec::new(),
                dukpt: None,
            }),
        }
    }

    /// Adds (or replaces) a TDES master key at `index`.
    pub fn with_tdes_master(self, index: u32, key: TdesKey) -> Self {
        self.put_master(index, HeldKey::Tdes(key));
        self
    }

    /// Adds (or replaces) an AES master key at `index` (AES working keys are delivered under
    /// it).
    pub fn with_aes_master(self, index: u32, key: AesKey) -> Self {
        self.put_master(index, HeldKey::Aes(key));
        self
    }

    /// Adds (or replaces) an SM4 master key at `index` (SM4 working keys are delivered under
    /// it: UnionPay national-algorithm terminals).
    pub fn with_sm4_master(self, index: u32, key: Sm4Key) -> Self {
        self.put_master(index, HeldKey::Sm4(key));
        self
    }

    /// Gives the module a DUKPT device (loaded from an initial key, or restored from the state
    /// `store` keeps) and the store each reservation is saved to.
    pub fn with_dukpt(self, device: DukptDevice, store: Box<dyn DukptStore>) -> Self {
        self.lock().dukpt = Some(HeldDukpt {
            device,
            store,
            current: None,
        });
        self
    }

    /// The DUKPT scheme and the counter the next reservation will use, if a device is loaded
    /// (for status lines; the counter is not secret, it travels in every KSN).
    pub fn dukpt_status(&self) -> Option<(DukptScheme, u32, bool)> {
        self.lock().dukpt.as_ref().map(|d| {
            (
                d.device.scheme(),
                d.device.counter(),
                d.device.is_exhausted(),
            )
        })
    }

    fn put_master(&self, index: u32, key: HeldKey) {
        let mut held = self.lock();
        held.masters.retain(|(i, _)| *i != index);
        held.masters.push((index, key));
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // A panic while the lock was held cannot leave a half-written key list behind (every
        // update is one assignment), so a poisoned lock is still usable.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The MAC of one DUKPT transaction, as the module computes it for the terminal and the host
/// simulator for the host (one table for both): TDES takes X9.19 (or the UnionPay ECB MAC)
/// under the X9.24-1 MAC request or response variant; AES takes CMAC under the X9.24-3 MAC
/// generation (0x2000, requests) or verification (0x2001, responses) key, all 16 bytes.
pub fn dukpt_mac(
    txn: &DukptTxn,
    direction: MacDirection,
    method: MacMethod,
    data: &[u8],
) -> Result<Vec<u8>, ModuleError> {
    use crate::dukpt::aes::KeyUsage;
    match (txn, method) {
        (DukptTxn::Tdes(t), MacMethod::X919 | MacMethod::CupEcb) => {
            let k = match direction {
                MacDirection::Request => t.mac_request_key(),
                MacDirection::Response => t.mac_response_key(),
            };
            Ok(match method {
                MacMethod::CupEcb => crate::mac::cup_ecb(&k, data).to_vec(),
                _ => crate::mac::x9_19(&k, data, crate::mac::Padding::Method1)?.to_vec(),
            })
        }
        (DukptTxn::Aes(a), MacMethod::Cmac) => {
            let usage = match direction {
                MacDirection::Request => KeyUsage::MacGeneration,
                MacDirection::Response => KeyUsage::MacVerification,
            };
            Ok(crate::mac::aes_cmac(&a.working_key(usage)?, data).to_vec())
        }
        (t, m) => Err(ModuleError::Unsupported(format!(
            "{m:?} MACs under {} keys",
            t.scheme().name()
        ))),
    }
}

/// Data encryption under a DUKPT transaction's data key: TDES the X9.24-1 data request key,
/// AES the X9.24-3 data encryption (0x3000) key.
pub fn dukpt_encrypt_data(
    txn: &DukptTxn,
    mode: DataMode,
    data: &[u8],
) -> Result<Vec<u8>, ModuleError> {
    Ok(match (txn, mode) {
        (DukptTxn::Tdes(t), DataMode::Ecb) => t.data_request_key().encrypt_ecb(data)?,
        (DukptTxn::Tdes(t), DataMode::CbcZeroIv) => {
            t.data_request_key().encrypt_cbc(&[0; 8], data)?
        }
        (DukptTxn::Aes(a), m) => {
            let k = a.working_key(crate::dukpt::aes::KeyUsage::DataEncrypt)?;
            match m {
                DataMode::Ecb => k.encrypt_ecb(data)?,
                DataMode::CbcZeroIv => k.encrypt_cbc(&[0; 16], data)?,
            }
        }
    })
}

fn check_value_ok(key: &HeldKey, cv: &[u8]) -> bool {
    let full = key.check_block();
    match full.get(..cv.len()) {
        Some(prefix) => prefix.ct_eq(cv).into(),
        None => false,
    }
}

impl SecurityModule for SoftwareModule {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Software
    }

    fn install_working_keys(&self, delivery: &KeyDelivery) -> Result<(), ModuleError> {
        let mut held = self.lock();
        // All or nothing: the new keys replace the old ones only when every one of them
        // checks.
        let master = held
            .masters
            .iter()
            .find(|(i, _)| *i == delivery.master_index)
            .map(|(_, k)| k.clone())
            .ok_or(ModuleError::NoMasterKey {
                index: delivery.master_index,
            })?;
        let mut new = Vec::with_capacity(delivery.keys.len());
        for w in &delivery.keys {
            if new.iter().any(|(r, _)| *r == w.role) {
                return Err(ModuleError::BadDelivery {
                    role: w.role,
                    reason: "delivered twice",
                });
            }
            if !(3..=8).contains(&w.check_value.len()) {
                return Err(ModuleError::BadDelivery {
                    role: w.role,
                    reason: "a check value is 3 to 8 bytes",
                });
            }
            let key = master.unwrap(w)?;
            if !check_value_ok(&key, &w.check_value) {
                return Err(ModuleError::KeyCheck { role: w.role });
            }
            new.push((w.role, key));
        }
        held.working = new;
        Ok(())
    }

    fn has_working_key(&self, role: KeyRole) -> bool {
        self.lock().working(role).is_ok()
    }

    fn mac(
        &self,
        key: KeyRef,
        direction: MacDirection,
        method: MacMethod,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError> {
        let held = self.lock();
        let mak = match key {
            KeyRef::Working => held.working(KeyRole::Mak)?,
            KeyRef::Dukpt(ksn) => return dukpt_mac(held.dukpt(&ksn)?, direction, method, data),
        };
        let unsupported = |m: MacMethod, k: &HeldKey| {
            ModuleError::Unsupported(format!("{m:?} MACs under {} keys", k.algorithm().name()))
        };
        match (method, mak) {
            (MacMethod::X99, HeldKey::Tdes(k)) => Ok(crate::mac::x9_9(k, data)?.to_vec()),
            (MacMethod::X919, HeldKey::Tdes(k)) => {
                Ok(crate::mac::x9_19(k, data, crate::mac::Padding::Method1)?.to_vec())
            }
            (MacMethod::CupEcb, HeldKey::Tdes(k)) => Ok(crate::mac::cup_ecb(k, data).to_vec()),
            (MacMethod::Cmac, HeldKey::Aes(k)) => Ok(crate::mac::aes_cmac(k, data).to_vec()),
            (MacMethod::CupEcb, HeldKey::Sm4(k)) => Ok(crate::mac::cup_sm4(k, data).to_vec()),
            (m, k) => Err(unsupported(m, k)),
        }
    }

    fn pin_block(&self, request: &PinRequest<'_>) -> Result<SecretBytes, ModuleError> {
        let pin = match request.source {
            PinSource::Digits(pin) => pin,
            PinSource::PinPad { .. } => {
                return Err(ModuleError::Unsupported(
                    "a PIN pad (the software module takes the app's digits)".into(),
                ));
            }
        };
        let held = self.lock();
        let mut rng = pinblock::system_random();
        let pik = match request.key {
            KeyRef::Working => held.working(KeyRole::Pik)?,
            KeyRef::Dukpt(ksn) => {
                let pan = request.pan.ok_or(CryptoError::PanRequired {
                    format: request.format.number(),
                })?;
                return Ok(held
                    .dukpt(&ksn)?
                    .pin_block(request.format, pin, pan, &mut rng)?);
            }
        };
        match (request.format, pik) {
            (PinBlockFormat::Iso4, HeldKey::Aes(k)) => {
                let pan = request.pan.ok_or(CryptoError::PanRequired { format: 4 })?;
                Ok(pinblock::encrypt_aes(k, pin, pan, &mut rng)?)
            }
            (format, HeldKey::Tdes(k)) => Ok(pinblock::encrypt_tdes(
                k,
                format,
                pin,
                request.pan,
                &mut rng,
            )?),
            (format, HeldKey::Aes(_)) => Err(CryptoError::PinBlockKeyType {
                format: format.number(),
                expected: "TDES",
            }
            .into()),
            // The national-algorithm block is format 0 widened to the SM4 block.
            (PinBlockFormat::Iso0, HeldKey::Sm4(k)) => {
                let pan = request.pan.ok_or(CryptoError::PanRequired { format: 0 })?;
                Ok(pinblock::encrypt_sm4(k, pin, pan))
            }
            (format, HeldKey::Sm4(_)) => Err(ModuleError::Unsupported(format!(
                "PIN block format {} under an SM4 PIN key (UnionPay's SM4 block is format 0)",
                format.number()
            ))),
        }
    }

    fn encrypt_data(
        &self,
        key: KeyRef,
        mode: DataMode,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError> {
        let held = self.lock();
        let tdk = match key {
            KeyRef::Working => held.working(KeyRole::Tdk)?,
            KeyRef::Dukpt(ksn) => return dukpt_encrypt_data(held.dukpt(&ksn)?, mode, data),
        };
        Ok(match (tdk, mode) {
            (HeldKey::Tdes(k), DataMode::Ecb) => k.encrypt_ecb(data)?,
            (HeldKey::Tdes(k), DataMode::CbcZeroIv) => k.encrypt_cbc(&[0; 8], data)?,
            (HeldKey::Aes(k), DataMode::Ecb) => k.encrypt_ecb(data)?,
            (HeldKey::Aes(k), DataMode::CbcZeroIv) => k.encrypt_cbc(&[0; 16], data)?,
            (HeldKey::Sm4(k), DataMode::Ecb) => k.encrypt_ecb(data)?,
            (HeldKey::Sm4(k), DataMode::CbcZeroIv) => k.encrypt_cbc(&[0; 16], data)?,
        })
    }

    fn dukpt_next(&self) -> Result<DukptKsn, ModuleError> {
        let mut held = self.lock();
        let d = held.dukpt.as_mut().ok_or(ModuleError::NoDukptKey)?;
        // The keys of the last reservation go first: whatever happens below, they are used no
        // more.
        d.current = None;
        let txn = d.device.next_transaction().map_err(|e| match e {
            CryptoError::DukptExhausted => ModuleError::DukptExhausted,
            other => ModuleError::Crypto(other),
        })?;
        // Durable before the KSN is handed out: a crash after this point skips the counter,
        // never repeats it. If the save fails the KSN is not handed out (and, never sent, may
        // be taken again after a restart, which is harmless).
        d.store
            .save(d.device.to_bytes().expose())
            .map_err(ModuleError::Storage)?;
        let ksn = DukptKsn::new(&txn.ksn())?;
        d.current = Some(txn);
        Ok(ksn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::wrap_working_key;
    use smartpos_types::hex::decode;

    fn tk(h: &str) -> TdesKey {
        TdesKey::new(&decode(h).unwrap()).unwrap()
    }

    const TMK: &str = "0123456789ABCDEFFEDCBA9876543210";

    fn wrapped(role: KeyRole, tmk: &TdesKey, key: &TdesKey) -> WrappedKey {
        let (ciphertext, cv) = wrap_working_key(tmk, key);
        WrappedKey {
            role,
            algorithm: KeyAlgorithm::Tdes,
            ciphertext,
            check_value: cv.to_vec(),
        }
    }

    fn delivery(tmk: &TdesKey, pik: &TdesKey, mak: &TdesKey) -> KeyDelivery {
        KeyDelivery {
            master_index: 0,
            keys: vec![
                wrapped(KeyRole::Pik, tmk, pik),
                wrapped(KeyRole::Mak, tmk, mak),
            ],
        }
    }

    #[test]
    fn installed_keys_mac_and_encrypt_pins_like_the_primitives() {
        let tmk = tk(TMK);
        let pik = tk("11111111111111112222222222222222");
        let mak = tk("33333333333333334444444444444444");
        let m = SoftwareModule::new(tmk.clone());
        assert!(!m.has_working_key(KeyRole::Mak));
        m.install_working_keys(&delivery(&tmk, &pik, &mak)).unwrap();
        assert!(m.has_working_key(KeyRole::Pik) && m.has_working_key(KeyRole::Mak));
        assert!(!m.has_working_key(KeyRole::Tdk));
        let data = b"0200 some message bytes";
        let got = m
            .mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::CupEcb,
                data,
            )
            .unwrap();
        assert_eq!(got, crate::mac::cup_ecb(&mak, data).to_vec());
        let got = m
            .mac(
                KeyRef::Working,
                MacDirection::Response,
                MacMethod::X919,
                data,
            )
            .unwrap();
        assert_eq!(
            got,
            crate::mac::x9_19(&mak, data, crate::mac::Padding::Method1)
                .unwrap()
                .to_vec()
        );
        let pan = Pan::new("4761739001010010").unwrap();
        let pin = Pin::new("1234").unwrap();
        let block = m
            .pin_block(&PinRequest {
                key: KeyRef::Working,
                format: PinBlockFormat::Iso0,
                pan: Some(&pan),
                source: PinSource::Digits(&pin),
            })
            .unwrap();
        let back =
            pinblock::decrypt_tdes(&pik, PinBlockFormat::Iso0, block.expose(), Some(&pan)).unwrap();
        assert_eq!(back, pin);
    }

    #[test]
    fn a_bad_check_value_installs_nothing_and_keeps_the_old_keys() {
        let tmk = tk(TMK);
        let pik = tk("11111111111111112222222222222222");
        let mak = tk("33333333333333334444444444444444");
        let m = SoftwareModule::new(tmk.clone());
        m.install_working_keys(&delivery(&tmk, &pik, &mak)).unwrap();
        let mut bad = delivery(&tmk, &pik, &tk("55555555555555556666666666666666"));
        bad.keys[1].check_value[0] ^= 1;
        assert_eq!(
            m.install_working_keys(&bad),
            Err(ModuleError::KeyCheck { role: KeyRole::Mak })
        );
        let mac = |m: &SoftwareModule| {
            m.mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::CupEcb,
                b"x",
            )
        };
        assert_eq!(
            mac(&m),
            Ok(crate::mac::cup_ecb(&mak, b"x").to_vec()),
            "the previous MAK is still the one in use"
        );
        let fresh = SoftwareModule::new(tmk.clone());
        assert!(fresh.install_working_keys(&bad).is_err());
        assert!(!fresh.has_working_key(KeyRole::Pik));
        assert_eq!(mac(&fresh), Err(ModuleError::NoKey { role: KeyRole::Mak }));
    }

    #[test]
    fn keys_under_another_master_fail_their_check() {
        let tmk = tk(TMK);
        let other = tk("00112233445566778899AABBCCDDEEFF");
        let m = SoftwareModule::new(tmk);
        let pik = tk("11111111111111112222222222222222");
        let mak = tk("33333333333333334444444444444444");
        assert!(matches!(
            m.install_working_keys(&delivery(&other, &pik, &mak)),
            Err(ModuleError::KeyCheck { .. })
        ));
        let mut d = delivery(&other, &pik, &mak);
        d.master_index = 7;
        assert_eq!(
            m.install_working_keys(&d),
            Err(ModuleError::NoMasterKey { index: 7 })
        );
        let m = m.with_tdes_master(7, other.clone());
        m.install_working_keys(&d).unwrap();
    }

    #[test]
    fn malformed_deliveries_are_refused_by_name() {
        let tmk = tk(TMK);
        let m = SoftwareModule::new(tmk.clone());
        let pik = tk("11111111111111112222222222222222");
        let mut d = delivery(&tmk, &pik, &pik);
        d.keys[1].role = KeyRole::Pik;
        assert!(matches!(
            m.install_working_keys(&d),
            Err(ModuleError::BadDelivery {
                reason: "delivered twice",
                ..
            })
        ));
        let mut d = delivery(&tmk, &pik, &pik);
        d.keys[0].check_value.truncate(2);
        assert!(matches!(
            m.install_working_keys(&d),
            Err(ModuleError::BadDelivery { .. })
        ));
        let mut d = delivery(&tmk, &pik, &pik);
        d.keys[0].ciphertext.truncate(12);
        assert!(matches!(
            m.install_working_keys(&d),
            Err(ModuleError::BadDelivery { .. })
        ));
        let mut d = delivery(&tmk, &pik, &pik);
        d.keys[0].algorithm = KeyAlgorithm::Sm4;
        assert!(matches!(
            m.install_working_keys(&d),
            Err(ModuleError::Unsupported(_))
        ));
    }

    #[test]
    fn track_data_under_the_tdk() {
        let tmk = tk(TMK);
        let pik = tk("11111111111111112222222222222222");
        let tdk = tk("55555555555555556666666666666666");
        let m = SoftwareModule::new(tmk.clone());
        let mut d = delivery(&tmk, &pik, &pik);
        d.keys[1].role = KeyRole::Mak;
        d.keys.push(wrapped(KeyRole::Tdk, &tmk, &tdk));
        m.install_working_keys(&d).unwrap();
        let data = [0x37u8; 16];
        assert_eq!(
            m.encrypt_data(KeyRef::Working, DataMode::Ecb, &data)
                .unwrap(),
            tdk.encrypt_ecb(&data).unwrap()
        );
        assert_eq!(
            m.encrypt_data(KeyRef::Working, DataMode::CbcZeroIv, &data)
                .unwrap(),
            tdk.encrypt_cbc(&[0; 8], &data).unwrap()
        );
        assert!(matches!(
            m.encrypt_data(KeyRef::Working, DataMode::Ecb, &data[..5]),
            Err(ModuleError::Crypto(CryptoError::DataLength { .. }))
        ));
    }

    #[test]
    fn aes_working_keys_under_an_aes_master_give_cmac_and_format_4() {
        let tmk = tk(TMK);
        let kek = AesKey::new(&[0x42; 16]).unwrap();
        let pik = AesKey::new(&[0x24; 16]).unwrap();
        let mak = AesKey::new(&[0x81; 16]).unwrap();
        let wrap = |role, k: &AesKey| {
            let mut cv = [0u8; 16];
            k.encrypt_block(&mut cv);
            WrappedKey {
                role,
                algorithm: KeyAlgorithm::Aes,
                ciphertext: kek.encrypt_ecb(k.expose()).unwrap(),
                check_value: cv[..5].to_vec(),
            }
        };
        let m = SoftwareModule::new(tmk).with_aes_master(2, kek.clone());
        m.install_working_keys(&KeyDelivery {
            master_index: 2,
            keys: vec![wrap(KeyRole::Pik, &pik), wrap(KeyRole::Mak, &mak)],
        })
        .unwrap();
        assert_eq!(
            m.mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::Cmac,
                b"abc"
            )
            .unwrap(),
            crate::mac::aes_cmac(&mak, b"abc").to_vec()
        );
        assert!(matches!(
            m.mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::X919,
                b"abc"
            ),
            Err(ModuleError::Unsupported(_))
        ));
        let pan = Pan::new("4761739001010010").unwrap();
        let pin = Pin::new("987654").unwrap();
        let mut req = PinRequest {
            key: KeyRef::Working,
            format: PinBlockFormat::Iso4,
            pan: Some(&pan),
            source: PinSource::Digits(&pin),
        };
        let block = m.pin_block(&req).unwrap();
        assert_eq!(
            pinblock::decrypt_aes(&pik, block.expose(), &pan).unwrap(),
            pin
        );
        req.format = PinBlockFormat::Iso0;
        assert!(matches!(
            m.pin_block(&req),
            Err(ModuleError::Crypto(CryptoError::PinBlockKeyType { .. }))
        ));
    }

    #[test]
    fn the_software_module_has_no_pin_pad_and_no_dukpt_key_until_one_is_loaded() {
        let m = SoftwareModule::new(tk(TMK));
        let pan = Pan::new("4761739001010010").unwrap();
        assert!(matches!(
            m.pin_block(&PinRequest {
                key: KeyRef::Working,
                format: PinBlockFormat::Iso0,
                pan: Some(&pan),
                source: PinSource::PinPad { amount: 100 },
            }),
            Err(ModuleError::Unsupported(_))
        ));
        assert_eq!(m.dukpt_next(), Err(ModuleError::NoDukptKey));
    }

    #[test]
    fn sm4_working_keys_under_an_sm4_master_give_the_unionpay_mac_and_pin_block() {
        let tmk = Sm4Key::new(&decode("1234567890ABCDEFABCDEF0987654321").unwrap()).unwrap();
        let pik = Sm4Key::new(&[0x24; 16]).unwrap();
        let mak = Sm4Key::new(&[0x81; 16]).unwrap();
        let tdk = Sm4Key::new(&[0x42; 16]).unwrap();
        let wrap = |role, k: &Sm4Key| {
            let (ciphertext, cv) = crate::sm4::wrap_working_key(&tmk, k);
            WrappedKey {
                role,
                algorithm: KeyAlgorithm::Sm4,
                ciphertext: ciphertext.to_vec(),
                check_value: cv.to_vec(),
            }
        };
        let m = SoftwareModule::new(tk(TMK)).with_sm4_master(3, tmk.clone());
        let delivery = KeyDelivery {
            master_index: 3,
            keys: vec![
                wrap(KeyRole::Pik, &pik),
                wrap(KeyRole::Mak, &mak),
                wrap(KeyRole::Tdk, &tdk),
            ],
        };
        // Under the TDES master at index 0 the SM4 keys are refused by name.
        let mut at0 = delivery.clone();
        at0.master_index = 0;
        assert!(matches!(
            m.install_working_keys(&at0),
            Err(ModuleError::Unsupported(_))
        ));
        m.install_working_keys(&delivery).unwrap();
        let data = b"0200 a national-algorithm message";
        assert_eq!(
            m.mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::CupEcb,
                data
            )
            .unwrap(),
            crate::mac::cup_sm4(&mak, data).to_vec()
        );
        assert!(matches!(
            m.mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::X919,
                data
            ),
            Err(ModuleError::Unsupported(_))
        ));
        let pan = Pan::new("6230606601007726888").unwrap();
        let pin = Pin::new("123654").unwrap();
        let mut req = PinRequest {
            key: KeyRef::Working,
            format: PinBlockFormat::Iso0,
            pan: Some(&pan),
            source: PinSource::Digits(&pin),
        };
        let block = m.pin_block(&req).unwrap();
        assert_eq!(block.len(), 16);
        assert_eq!(
            pinblock::decrypt_sm4(&pik, block.expose(), &pan).unwrap(),
            pin
        );
        req.format = PinBlockFormat::Iso3;
        assert!(matches!(
            m.pin_block(&req),
            Err(ModuleError::Unsupported(_))
        ));
        let track = [0x37u8; 16];
        assert_eq!(
            m.encrypt_data(KeyRef::Working, DataMode::Ecb, &track)
                .unwrap(),
            tdk.encrypt_ecb(&track).unwrap()
        );
        let mut bad = delivery.clone();
        bad.keys[0].check_value[0] ^= 1;
        assert_eq!(
            m.install_working_keys(&bad),
            Err(ModuleError::KeyCheck { role: KeyRole::Pik })
        );
    }

    /// A store that keeps what it was given, and can be made to fail.
    #[derive(Clone, Default)]
    struct MemStore {
        saved: std::sync::Arc<Mutex<Vec<Vec<u8>>>>,
        fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl DukptStore for MemStore {
        fn save(&self, state: &[u8]) -> Result<(), String> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("disk full".into());
            }
            self.saved.lock().unwrap().push(state.to_vec());
            Ok(())
        }
    }

    fn tdes_dukpt_module(store: &MemStore) -> SoftwareModule {
        let bdk = crate::dukpt::DukptBdk::new(
            DukptScheme::Tdes,
            &decode("0123456789ABCDEFFEDCBA9876543210").unwrap(),
        )
        .unwrap();
        let ksn = decode("FFFF9876543210E00000").unwrap();
        let ipek = bdk.initial_key(&ksn).unwrap();
        let dev = DukptDevice::load(DukptScheme::Tdes, ipek.expose(), &ksn).unwrap();
        SoftwareModule::new(tk(TMK)).with_dukpt(dev, Box::new(store.clone()))
    }

    #[test]
    fn dukpt_next_saves_before_it_hands_out_a_ksn_and_the_keys_follow_the_ksn() {
        let store = MemStore::default();
        let m = tdes_dukpt_module(&store);
        let k1 = m.dukpt_next().unwrap();
        assert_eq!(
            smartpos_types::hex::encode(k1.bytes()),
            "FFFF9876543210E00001"
        );
        assert_eq!(store.saved.lock().unwrap().len(), 1);
        // The saved state continues after counter 1.
        let saved = store.saved.lock().unwrap()[0].clone();
        let mut restored = DukptDevice::from_bytes(&saved).unwrap();
        assert_eq!(restored.next_transaction().unwrap().counter(), 2);
        // X9.24-1 A.4 counter 1 values through the module.
        let pan = Pan::new("4012345678909").unwrap();
        let pin = Pin::new("1234").unwrap();
        let block = m
            .pin_block(&PinRequest {
                key: KeyRef::Dukpt(k1),
                format: PinBlockFormat::Iso0,
                pan: Some(&pan),
                source: PinSource::Digits(&pin),
            })
            .unwrap();
        assert_eq!(
            smartpos_types::hex::encode(block.expose()),
            "1B9C1845EB993A7A"
        );
        let mac = m
            .mac(
                KeyRef::Dukpt(k1),
                MacDirection::Request,
                MacMethod::X919,
                b"4012345678909D987",
            )
            .unwrap();
        assert_eq!(smartpos_types::hex::encode(&mac), "9CCC78173FC4FB64");
        let mac = m
            .mac(
                KeyRef::Dukpt(k1),
                MacDirection::Response,
                MacMethod::X919,
                b"4012345678909D987",
            )
            .unwrap();
        assert_eq!(smartpos_types::hex::encode(&mac), "20364223C1FF00FA");
        // The next reservation makes the old KSN stale.
        let k2 = m.dukpt_next().unwrap();
        assert_ne!(k1, k2);
        assert!(matches!(
            m.mac(
                KeyRef::Dukpt(k1),
                MacDirection::Request,
                MacMethod::X919,
                b"x"
            ),
            Err(ModuleError::StaleKsn { .. })
        ));
        assert!(matches!(
            m.mac(
                KeyRef::Dukpt(k2),
                MacDirection::Request,
                MacMethod::Cmac,
                b"x"
            ),
            Err(ModuleError::Unsupported(_))
        ));
        // A failed save hands out no KSN and leaves no usable keys.
        store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(m.dukpt_next(), Err(ModuleError::Storage(_))));
        assert!(matches!(
            m.mac(
                KeyRef::Dukpt(k2),
                MacDirection::Request,
                MacMethod::X919,
                b"x"
            ),
            Err(ModuleError::StaleKsn { .. })
        ));
        assert_eq!(m.dukpt_status().map(|s| s.0), Some(DukptScheme::Tdes));
    }

    #[test]
    fn an_exhausted_dukpt_device_says_so() {
        let store = MemStore::default();
        let dev = {
            let m = tdes_dukpt_module(&store);
            m.dukpt_next().unwrap();
            let mut s = store.saved.lock().unwrap()[0].clone();
            // Move the stored device to its last counter (register of bit 11 present).
            s[13..17].copy_from_slice(&0x1F_F800u32.to_be_bytes());
            s[17..21].copy_from_slice(&(1u32 << 11).to_be_bytes());
            DukptDevice::from_bytes(&s).unwrap()
        };
        let m = SoftwareModule::new(tk(TMK)).with_dukpt(dev, Box::new(store.clone()));
        m.dukpt_next().unwrap();
        assert_eq!(m.dukpt_next(), Err(ModuleError::DukptExhausted));
        assert_eq!(m.dukpt_status().map(|s| s.2), Some(true));
        let text = ModuleError::DukptExhausted.to_string();
        assert!(text.contains("exhausted"), "{text}");
    }

    #[test]
    fn debug_and_errors_show_no_key_material() {
        let tmk = tk(TMK);
        let pik = tk("11111111111111112222222222222222");
        let m = SoftwareModule::new(tmk.clone());
        let d = delivery(&tmk, &pik, &pik);
        m.install_working_keys(&d).unwrap();
        let text = format!("{m:?} {d:?}");
        for secret in [TMK, "1111111111111111", "2222222222222222"] {
            assert!(!text.contains(secret), "{text}");
        }
        let ct = smartpos_types::hex::encode(&d.keys[0].ciphertext);
        assert!(!text.contains(&ct), "{text}");
        assert_eq!(
            format!(
                "{:?}",
                DukptKsn::new(&[0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0, 1]).unwrap()
            ),
            "DukptKsn(FFFF9876543210E00001)"
        );
        assert!(DukptKsn::new(&[0; 11]).is_err());
        assert!(DukptKsn::new(&[0; 12]).unwrap().is_aes());
    }
}
