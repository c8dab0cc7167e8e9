//! The security module as a foreign trait: the app's bridge to the device's security processor
//! (Sunmi `SecurityOptV2`, PAX `IPed`, Newland), or a software module of its own (the Android
//! sample's Android Keystore module), for `Terminal.openWithSecurityModule`.
//!
//! What crosses (issue 18 item 1, "keys never cross the FFI in clear"):
//! - to the app: the sign-in's keys as the host sent them ([`KeyDelivery`]: ciphertext under
//!   the master key and check values, which the module verifies), MAC input (message bytes,
//!   no secret), the PAN and amount for the PIN pad, data to encrypt, and key roles and KSNs;
//! - from the app: MACs, encrypted PIN blocks (as the masked [`PinBlock`] object), ciphertext,
//!   KSNs.
//!
//! No clear key and no PIN digit crosses in either direction: the trait has no method that
//! takes or returns one. A device module takes the PIN on its own PIN pad
//! ([`SecurityModule::pin_block`]); the app's PIN digits (`PinEntry` returning digits) are for
//! the software module inside Rust and are refused for a foreign module.
//!
//! Every call goes through `reentry::call_app` (a terminal method called from inside throws
//! `Busy`); an exception the app did not declare becomes [`SecurityModuleError::Device`].

use crate::certified::PinBlock;
use crate::reentry::{self, Callback};
use crate::stats;
use smartpos_terminal::api::security as core;
use smartpos_types::SecretBytes;
use std::sync::Arc;

/// What a working key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum KeyRole {
    /// PIN encryption key.
    Pik,
    /// MAC key.
    Mak,
    /// Track / data encryption key.
    Tdk,
}

/// A key's block cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum KeyAlgorithm {
    /// TDES.
    Tdes,
    /// AES.
    Aes,
    /// SM4 (GB/T 32907).
    Sm4,
}

/// One working key as the host delivered it: encrypted under the master key, with the check
/// value the module verifies after decrypting it.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct WrappedKey {
    /// What the key is for.
    pub role: KeyRole,
    /// Its cipher.
    pub algorithm: KeyAlgorithm,
    /// The key encrypted under the master key (ECB), as delivered.
    pub ciphertext: Vec<u8>,
    /// The delivered check value (3 to 8 bytes).
    pub check_value: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("role", &self.role)
            .field("algorithm", &self.algorithm)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The working keys of one sign-in, all under the master key at `master_index`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeyDelivery {
    /// The terminal's index for its master key (0 unless the app configures another); a
    /// device module maps it to its key slot.
    pub master_index: u32,
    /// The keys, at most one per role.
    pub keys: Vec<WrappedKey>,
}

/// Which key an operation uses.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum KeyRef {
    /// The working key of the last sign-in.
    Working,
    /// The DUKPT key derived for this KSN (10 or 12 bytes), reserved by `dukptNext`.
    Dukpt {
        /// The KSN.
        ksn: Vec<u8>,
    },
}

/// How a MAC is computed (the cipher is the MAC key's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MacMethod {
    /// ANSI X9.9 (single DES CBC-MAC).
    X99,
    /// ANSI X9.19 retail MAC.
    X919,
    /// China UnionPay POS "ECB" MAC.
    CupEcb,
    /// CMAC.
    Cmac,
}

/// Which way a MAC goes (DUKPT derives different keys for requests and responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MacDirection {
    /// A request the terminal sends.
    Request,
    /// A response the terminal checks.
    Response,
}

/// Block mode for `encryptData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DataMode {
    /// ECB.
    Ecb,
    /// CBC with a zero IV.
    CbcZeroIv,
}

/// ISO 9564-1 PIN block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PinFormat {
    /// Format 0 (ANSI X9.8): PIN XOR PAN.
    Iso0,
    /// Format 1: PIN with random fill, no PAN.
    Iso1,
    /// Format 3: format 0 with random fill.
    Iso3,
    /// Format 4: AES.
    Iso4,
}

/// Which kind of module this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ModuleKind {
    /// Keys in the app's memory or keystore.
    Software,
    /// Keys in the device's security processor.
    Device,
}

/// The card's PAN for the PIN pad (formats 0, 3 and 4 bind it into the block). An object, so
/// that the generated `toString()` of a [`PinPadRequest`] prints a handle, not the number:
/// [`PinPadPan::digits`] hands it to the PED, and nowhere else (never log it).
#[derive(uniffi::Object)]
pub struct PinPadPan(smartpos_types::Pan);

impl std::fmt::Debug for PinPadPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinPadPan({})", self.0.masked())
    }
}

impl PartialEq for PinPadPan {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for PinPadPan {}

#[uniffi::export]
impl PinPadPan {
    /// The PAN's digits, for the PED's PIN block call.
    pub fn digits(&self) -> String {
        stats::call();
        self.0.expose().to_owned()
    }

    /// First 6 / last 4, for the pad's screen.
    pub fn masked(&self) -> String {
        stats::call();
        self.0.masked()
    }
}

/// A PIN prompt on the module's own PIN pad.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct PinPadRequest {
    /// The PIN key.
    pub key: KeyRef,
    /// The block format.
    pub format: PinFormat,
    /// The card's PAN, which formats 0, 3 and 4 bind into the block. `null` for format 1.
    pub pan: Option<Arc<PinPadPan>>,
    /// The PAN masked to first 6 / last 4, for the pad's screen.
    pub pan_masked: String,
    /// The amount to show, minor units.
    pub amount: u64,
}

impl std::fmt::Debug for PinPadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinPadRequest")
            .field("key", &self.key)
            .field("format", &self.format)
            .field("pan", &self.pan_masked)
            .field("amount", &self.amount)
            .finish()
    }
}

/// Why the app's security module refused or failed. Never put key material, PINs or PANs in
/// a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum SecurityModuleError {
    /// The key is not loaded.
    #[error("no {role:?} loaded")]
    NoKey {
        /// The key asked for.
        role: KeyRole,
    },
    /// No master key at that index.
    #[error("no master key at index {index}")]
    NoMasterKey {
        /// The index.
        index: u32,
    },
    /// A delivered key failed its check value; nothing of the delivery was loaded.
    #[error("the {role:?} fails its check value")]
    KeyCheck {
        /// The key.
        role: KeyRole,
    },
    /// The module does not do this.
    #[error("not supported: {what}")]
    Unsupported {
        /// What, for logs.
        what: String,
    },
    /// The cardholder cancelled on the PIN pad.
    #[error("PIN entry cancelled")]
    PinCancelled,
    /// The PIN pad timed out.
    #[error("PIN entry timed out")]
    PinTimeout,
    /// No DUKPT key is loaded.
    #[error("no DUKPT key loaded")]
    NoDukptKey,
    /// The DUKPT counter is used up.
    #[error("DUKPT counter exhausted")]
    DukptExhausted,
    /// The device failed (the vendor's error, without key material).
    #[error("security device: {reason}")]
    Device {
        /// For logs.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SecurityModuleError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SecurityModuleError::Device { reason: e.reason }
    }
}

/// The app's security module (see the module documentation and `bindings/kotlin/README.md`,
/// "Security module"). Called on the terminal's worker thread while a command holds the
/// terminal's lock (`pinBlock` may block while the cardholder types): do not call the
/// terminal from here.
#[uniffi::export(with_foreign)]
pub trait SecurityModule: Send + Sync {
    /// Which kind of module this is.
    fn kind(&self) -> ModuleKind;
    /// Loads the working keys of a sign-in: decrypt each under the master key, verify its
    /// check value, and load all of them or none (a failed load keeps the previous keys).
    fn install_working_keys(&self, delivery: KeyDelivery) -> Result<(), SecurityModuleError>;
    /// Whether a working key for `role` is loaded.
    fn has_working_key(&self, role: KeyRole) -> bool;
    /// The MAC of `data` (8 bytes; 16 for CMAC) under the MAC key.
    fn mac(
        &self,
        key: KeyRef,
        direction: MacDirection,
        method: MacMethod,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, SecurityModuleError>;
    /// Prompts for the PIN on the module's PIN pad; returns the encrypted block.
    fn pin_block(&self, request: PinPadRequest) -> Result<Arc<PinBlock>, SecurityModuleError>;
    /// `data` (whole blocks) encrypted under the data key.
    fn encrypt_data(
        &self,
        key: KeyRef,
        mode: DataMode,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, SecurityModuleError>;
    /// Reserves the next DUKPT KSN durably (never returned twice, even after a crash) and
    /// derives its keys inside the module; returns the KSN.
    fn dukpt_next(&self) -> Result<Vec<u8>, SecurityModuleError>;
}

// ---------------------------------------------------------------------------------------------
// Conversions.

impl From<core::KeyRole> for KeyRole {
    fn from(r: core::KeyRole) -> Self {
        match r {
            core::KeyRole::Pik => KeyRole::Pik,
            core::KeyRole::Mak => KeyRole::Mak,
            core::KeyRole::Tdk => KeyRole::Tdk,
        }
    }
}

impl From<KeyRole> for core::KeyRole {
    fn from(r: KeyRole) -> Self {
        match r {
            KeyRole::Pik => core::KeyRole::Pik,
            KeyRole::Mak => core::KeyRole::Mak,
            KeyRole::Tdk => core::KeyRole::Tdk,
        }
    }
}

fn algorithm(a: core::KeyAlgorithm) -> Option<KeyAlgorithm> {
    #[allow(unreachable_patterns)] // non_exhaustive
    match a {
        core::KeyAlgorithm::Tdes => Some(KeyAlgorithm::Tdes),
        core::KeyAlgorithm::Aes => Some(KeyAlgorithm::Aes),
        core::KeyAlgorithm::Sm4 => Some(KeyAlgorithm::Sm4),
        _ => None,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_algorithm(a: KeyAlgorithm) -> core::KeyAlgorithm {
    match a {
        KeyAlgorithm::Tdes => core::KeyAlgorithm::Tdes,
        KeyAlgorithm::Aes => core::KeyAlgorithm::Aes,
        KeyAlgorithm::Sm4 => core::KeyAlgorithm::Sm4,
    }
}

fn key_ref(k: core::KeyRef) -> KeyRef {
    match k {
        core::KeyRef::Working => KeyRef::Working,
        core::KeyRef::Dukpt(ksn) => KeyRef::Dukpt {
            ksn: ksn.bytes().to_vec(),
        },
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_key_ref(k: &KeyRef) -> Result<core::KeyRef, core::ModuleError> {
    Ok(match k {
        KeyRef::Working => core::KeyRef::Working,
        KeyRef::Dukpt { ksn } => core::KeyRef::Dukpt(core::DukptKsn::new(ksn)?),
    })
}

fn mac_method(m: core::MacMethod) -> Option<MacMethod> {
    #[allow(unreachable_patterns)] // non_exhaustive
    match m {
        core::MacMethod::X99 => Some(MacMethod::X99),
        core::MacMethod::X919 => Some(MacMethod::X919),
        core::MacMethod::CupEcb => Some(MacMethod::CupEcb),
        core::MacMethod::Cmac => Some(MacMethod::Cmac),
        _ => None,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_mac_method(m: MacMethod) -> core::MacMethod {
    match m {
        MacMethod::X99 => core::MacMethod::X99,
        MacMethod::X919 => core::MacMethod::X919,
        MacMethod::CupEcb => core::MacMethod::CupEcb,
        MacMethod::Cmac => core::MacMethod::Cmac,
    }
}

fn direction(d: core::MacDirection) -> MacDirection {
    match d {
        core::MacDirection::Request => MacDirection::Request,
        core::MacDirection::Response => MacDirection::Response,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_direction(d: MacDirection) -> core::MacDirection {
    match d {
        MacDirection::Request => core::MacDirection::Request,
        MacDirection::Response => core::MacDirection::Response,
    }
}

fn data_mode(m: core::DataMode) -> Option<DataMode> {
    #[allow(unreachable_patterns)] // non_exhaustive
    match m {
        core::DataMode::Ecb => Some(DataMode::Ecb),
        core::DataMode::CbcZeroIv => Some(DataMode::CbcZeroIv),
        _ => None,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_data_mode(m: DataMode) -> core::DataMode {
    match m {
        DataMode::Ecb => core::DataMode::Ecb,
        DataMode::CbcZeroIv => core::DataMode::CbcZeroIv,
    }
}

fn pin_format(f: smartpos_terminal::api::security::PinBlockFormat) -> PinFormat {
    use smartpos_terminal::api::security::PinBlockFormat as F;
    match f {
        F::Iso0 => PinFormat::Iso0,
        F::Iso1 => PinFormat::Iso1,
        F::Iso3 => PinFormat::Iso3,
        F::Iso4 => PinFormat::Iso4,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn core_pin_format(f: PinFormat) -> smartpos_terminal::api::security::PinBlockFormat {
    use smartpos_terminal::api::security::PinBlockFormat as F;
    match f {
        PinFormat::Iso0 => F::Iso0,
        PinFormat::Iso1 => F::Iso1,
        PinFormat::Iso3 => F::Iso3,
        PinFormat::Iso4 => F::Iso4,
    }
}

impl From<SecurityModuleError> for core::ModuleError {
    fn from(e: SecurityModuleError) -> Self {
        match e {
            SecurityModuleError::NoKey { role } => core::ModuleError::NoKey { role: role.into() },
            SecurityModuleError::NoMasterKey { index } => core::ModuleError::NoMasterKey { index },
            SecurityModuleError::KeyCheck { role } => {
                core::ModuleError::KeyCheck { role: role.into() }
            }
            SecurityModuleError::Unsupported { what } => core::ModuleError::Unsupported(what),
            SecurityModuleError::PinCancelled => core::ModuleError::PinCancelled,
            SecurityModuleError::PinTimeout => core::ModuleError::PinTimeout,
            SecurityModuleError::NoDukptKey => core::ModuleError::NoDukptKey,
            SecurityModuleError::DukptExhausted => core::ModuleError::DukptExhausted,
            SecurityModuleError::Device { reason } => core::ModuleError::Device(reason),
        }
    }
}

#[cfg(any(test, feature = "testkit"))]
impl From<&core::ModuleError> for SecurityModuleError {
    fn from(e: &core::ModuleError) -> Self {
        #[allow(unreachable_patterns)] // non_exhaustive
        match e {
            core::ModuleError::NoKey { role } => SecurityModuleError::NoKey {
                role: (*role).into(),
            },
            core::ModuleError::NoMasterKey { index } => {
                SecurityModuleError::NoMasterKey { index: *index }
            }
            core::ModuleError::KeyCheck { role } => SecurityModuleError::KeyCheck {
                role: (*role).into(),
            },
            core::ModuleError::Unsupported(what) => {
                SecurityModuleError::Unsupported { what: what.clone() }
            }
            core::ModuleError::PinCancelled => SecurityModuleError::PinCancelled,
            core::ModuleError::PinTimeout => SecurityModuleError::PinTimeout,
            core::ModuleError::NoDukptKey => SecurityModuleError::NoDukptKey,
            core::ModuleError::DukptExhausted => SecurityModuleError::DukptExhausted,
            other => SecurityModuleError::Device {
                reason: other.to_string(),
            },
        }
    }
}

fn unsupported(what: &str) -> core::ModuleError {
    core::ModuleError::Unsupported(what.to_owned())
}

// ---------------------------------------------------------------------------------------------
// The adapter: the app's module as the core's.

/// Adapts the app's module to the core's `SecurityModule` (the engine and the runtime call
/// it through an `Arc<dyn smartpos_crypto::SecurityModule>`).
pub(crate) struct ForeignModule(pub(crate) Arc<dyn SecurityModule>);

impl ForeignModule {
    fn call<T>(
        &self,
        f: impl FnOnce(&dyn SecurityModule) -> Result<T, SecurityModuleError>,
    ) -> Result<T, core::ModuleError> {
        stats::callback();
        reentry::call_app(Callback::SecurityModule, || f(self.0.as_ref())).map_err(|e| {
            log::warn!("security module: {e}");
            core::ModuleError::from(e)
        })
    }
}

impl core::SecurityModule for ForeignModule {
    fn kind(&self) -> core::ModuleKind {
        stats::callback();
        match reentry::call_app(Callback::SecurityModule, || self.0.kind()) {
            ModuleKind::Software => core::ModuleKind::Software,
            ModuleKind::Device => core::ModuleKind::Device,
        }
    }

    fn install_working_keys(&self, delivery: &core::KeyDelivery) -> Result<(), core::ModuleError> {
        let mut keys = Vec::with_capacity(delivery.keys.len());
        for k in &delivery.keys {
            keys.push(WrappedKey {
                role: k.role.into(),
                algorithm: algorithm(k.algorithm)
                    .ok_or_else(|| unsupported("this key algorithm over the FFI"))?,
                ciphertext: k.ciphertext.clone(),
                check_value: k.check_value.clone(),
            });
        }
        let delivery = KeyDelivery {
            master_index: delivery.master_index,
            keys,
        };
        self.call(|m| m.install_working_keys(delivery))
    }

    fn has_working_key(&self, role: core::KeyRole) -> bool {
        stats::callback();
        reentry::call_app(Callback::SecurityModule, || {
            self.0.has_working_key(role.into())
        })
    }

    fn mac(
        &self,
        key: core::KeyRef,
        dir: core::MacDirection,
        method: core::MacMethod,
        data: &[u8],
    ) -> Result<Vec<u8>, core::ModuleError> {
        let method = mac_method(method).ok_or_else(|| unsupported("this MAC method"))?;
        self.call(|m| m.mac(key_ref(key), direction(dir), method, data.to_vec()))
    }

    fn pin_block(&self, request: &core::PinRequest<'_>) -> Result<SecretBytes, core::ModuleError> {
        let amount = match request.source {
            // The digits stay in Rust: a foreign module takes the PIN on its own pad.
            core::PinSource::Digits(_) => {
                return Err(unsupported(
                    "PIN digits from the app (the app's security module takes the PIN on its pad)",
                ));
            }
            core::PinSource::PinPad { amount } => amount,
        };
        let request = PinPadRequest {
            key: key_ref(request.key),
            format: pin_format(request.format),
            pan: request.pan.map(|p| Arc::new(PinPadPan(p.clone()))),
            pan_masked: request.pan.map(|p| p.masked()).unwrap_or_default(),
            amount,
        };
        self.call(|m| m.pin_block(request))
            .map(|b| b.secret().clone())
    }

    fn encrypt_data(
        &self,
        key: core::KeyRef,
        mode: core::DataMode,
        data: &[u8],
    ) -> Result<Vec<u8>, core::ModuleError> {
        let mode = data_mode(mode).ok_or_else(|| unsupported("this data mode"))?;
        self.call(|m| m.encrypt_data(key_ref(key), mode, data.to_vec()))
    }

    fn dukpt_next(&self) -> Result<core::DukptKsn, core::ModuleError> {
        let ksn = self.call(|m| m.dukpt_next())?;
        Ok(core::DukptKsn::new(&ksn)?)
    }
}

// ---------------------------------------------------------------------------------------------
// The core's module as the app's (the test kit's software module, and a Kotlin module that
// delegates to one).

/// A core module behind the foreign trait; with a PIN pad of digits typed in Rust (the test
/// kit's), since the trait takes no digits from Kotlin.
#[cfg(any(test, feature = "testkit"))]
pub(crate) struct CoreModule {
    pub(crate) inner: Arc<dyn core::SecurityModule>,
    /// The digits the next PIN prompts "type" (test kit only).
    pub(crate) pad:
        std::sync::Mutex<std::collections::VecDeque<smartpos_terminal::api::security::Pin>>,
}

#[cfg(any(test, feature = "testkit"))]
impl SecurityModule for CoreModule {
    fn kind(&self) -> ModuleKind {
        match self.inner.kind() {
            core::ModuleKind::Software => ModuleKind::Software,
            core::ModuleKind::Device => ModuleKind::Device,
        }
    }

    fn install_working_keys(&self, delivery: KeyDelivery) -> Result<(), SecurityModuleError> {
        let delivery = core::KeyDelivery {
            master_index: delivery.master_index,
            keys: delivery
                .keys
                .into_iter()
                .map(|k| core::WrappedKey {
                    role: k.role.into(),
                    algorithm: core_algorithm(k.algorithm),
                    ciphertext: k.ciphertext,
                    check_value: k.check_value,
                })
                .collect(),
        };
        self.inner
            .install_working_keys(&delivery)
            .map_err(|e| SecurityModuleError::from(&e))
    }

    fn has_working_key(&self, role: KeyRole) -> bool {
        self.inner.has_working_key(role.into())
    }

    fn mac(
        &self,
        key: KeyRef,
        dir: MacDirection,
        method: MacMethod,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, SecurityModuleError> {
        let key = core_key_ref(&key).map_err(|e| SecurityModuleError::from(&e))?;
        self.inner
            .mac(key, core_direction(dir), core_mac_method(method), &data)
            .map_err(|e| SecurityModuleError::from(&e))
    }

    fn pin_block(&self, request: PinPadRequest) -> Result<Arc<PinBlock>, SecurityModuleError> {
        let pin = self
            .pad
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
            .ok_or(SecurityModuleError::PinTimeout)?;
        let key = core_key_ref(&request.key).map_err(|e| SecurityModuleError::from(&e))?;
        let pan = request.pan.as_ref().map(|p| p.0.clone());
        let block = self
            .inner
            .pin_block(&core::PinRequest {
                key,
                format: core_pin_format(request.format),
                pan: pan.as_ref(),
                source: core::PinSource::Digits(&pin),
            })
            .map_err(|e| SecurityModuleError::from(&e))?;
        Ok(Arc::new(PinBlock::from_secret(block)))
    }

    fn encrypt_data(
        &self,
        key: KeyRef,
        mode: DataMode,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, SecurityModuleError> {
        let key = core_key_ref(&key).map_err(|e| SecurityModuleError::from(&e))?;
        self.inner
            .encrypt_data(key, core_data_mode(mode), &data)
            .map_err(|e| SecurityModuleError::from(&e))
    }

    fn dukpt_next(&self) -> Result<Vec<u8>, SecurityModuleError> {
        self.inner
            .dukpt_next()
            .map(|k| k.bytes().to_vec())
            .map_err(|e| SecurityModuleError::from(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_crypto::keys::{TdesKey, wrap_working_key};
    use smartpos_crypto::module::SecurityModule as _;

    fn tmk() -> TdesKey {
        TdesKey::from_double(&[0x23; 16])
    }

    /// A Kotlin-side module as the app would write it, recording what it was handed.
    struct Recording {
        inner: CoreModule,
        seen: std::sync::Mutex<Vec<String>>,
    }

    impl SecurityModule for Recording {
        fn kind(&self) -> ModuleKind {
            ModuleKind::Device
        }
        fn install_working_keys(&self, d: KeyDelivery) -> Result<(), SecurityModuleError> {
            self.seen.lock().unwrap().push(format!("{d:?}"));
            for k in &d.keys {
                self.seen
                    .lock()
                    .unwrap()
                    .push(smartpos_types::hex::encode(&k.ciphertext));
            }
            self.inner.install_working_keys(d)
        }
        fn has_working_key(&self, role: KeyRole) -> bool {
            self.inner.has_working_key(role)
        }
        fn mac(
            &self,
            key: KeyRef,
            dir: MacDirection,
            method: MacMethod,
            data: Vec<u8>,
        ) -> Result<Vec<u8>, SecurityModuleError> {
            self.inner.mac(key, dir, method, data)
        }
        fn pin_block(&self, r: PinPadRequest) -> Result<Arc<PinBlock>, SecurityModuleError> {
            self.seen.lock().unwrap().push(format!("{r:?}"));
            self.inner.pin_block(r)
        }
        fn encrypt_data(
            &self,
            key: KeyRef,
            mode: DataMode,
            data: Vec<u8>,
        ) -> Result<Vec<u8>, SecurityModuleError> {
            self.inner.encrypt_data(key, mode, data)
        }
        fn dukpt_next(&self) -> Result<Vec<u8>, SecurityModuleError> {
            self.inner.dukpt_next()
        }
    }

    #[test]
    fn only_ciphertext_crosses_and_the_app_s_digits_never_do() {
        let pik = TdesKey::from_double(&[0x45; 16]);
        let mak = TdesKey::from_double(&[0x67; 16]);
        let app = Arc::new(Recording {
            inner: CoreModule {
                inner: Arc::new(core::SoftwareModule::new(tmk())),
                pad: Default::default(),
            },
            seen: Default::default(),
        });
        let module = ForeignModule(app.clone());
        let wrap = |role, k: &TdesKey| {
            let (ciphertext, cv) = wrap_working_key(&tmk(), k);
            core::WrappedKey {
                role,
                algorithm: core::KeyAlgorithm::Tdes,
                ciphertext,
                check_value: cv.to_vec(),
            }
        };
        module
            .install_working_keys(&core::KeyDelivery {
                master_index: 0,
                keys: vec![
                    wrap(core::KeyRole::Pik, &pik),
                    wrap(core::KeyRole::Mak, &mak),
                ],
            })
            .unwrap();
        let mac = module
            .mac(
                core::KeyRef::Working,
                core::MacDirection::Request,
                core::MacMethod::CupEcb,
                b"data",
            )
            .unwrap();
        assert_eq!(mac, smartpos_crypto::mac::cup_ecb(&mak, b"data").to_vec());
        let seen = app.seen.lock().unwrap().join(" ");
        for clear in [pik.expose(), mak.expose(), tmk().expose()] {
            assert!(
                !seen.contains(&smartpos_types::hex::encode(clear)),
                "{seen}"
            );
        }
        // The app's digits stay in Rust.
        let pan = smartpos_types::Pan::new("6222021234567890128").unwrap();
        let pin = smartpos_crypto::Pin::new("1234").unwrap();
        let digits = core::PinRequest {
            key: core::KeyRef::Working,
            format: smartpos_crypto::PinBlockFormat::Iso0,
            pan: Some(&pan),
            source: core::PinSource::Digits(&pin),
        };
        assert!(matches!(
            module.pin_block(&digits),
            Err(core::ModuleError::Unsupported(_))
        ));
        // The PIN pad path: the request shows the masked PAN in Debug, the block comes back.
        app.inner.pad.lock().unwrap().push_back(pin.clone());
        let block = module
            .pin_block(&core::PinRequest {
                source: core::PinSource::PinPad { amount: 100 },
                ..digits
            })
            .unwrap();
        let back = smartpos_crypto::pinblock::decrypt_tdes(
            &pik,
            smartpos_crypto::PinBlockFormat::Iso0,
            block.expose(),
            Some(&pan),
        )
        .unwrap();
        assert_eq!(back.expose(), "1234");
        let seen = app.seen.lock().unwrap().join(" ");
        assert!(seen.contains("622202*********0128"), "{seen}");
        assert!(!seen.contains("6222021234567890128"), "{seen}");
        // Errors come back as the core's.
        app.inner.pad.lock().unwrap().clear();
        assert_eq!(
            module.pin_block(&core::PinRequest {
                source: core::PinSource::PinPad { amount: 1 },
                ..digits
            }),
            Err(core::ModuleError::PinTimeout)
        );
    }
}
