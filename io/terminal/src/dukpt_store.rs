//! The terminal's DUKPT state in the app's secure store: the durable transaction counter.
//!
//! A DUKPT terminal keeps no initial key once loaded: `init` builds the device (its future-key
//! registers, `smartpos_crypto::dukpt::DukptDevice`) from the initial key and KSN and stores
//! its byte form under [`DUKPT_STATE`]. The software security module is given the device and a
//! [`SecureDukptStore`]; every reservation (`SecurityModule::dukpt_next`) rewrites the state
//! with the counter already advanced *before* the KSN is handed out, so a KSN that went out is
//! never handed out again, whatever crashes after (the crash matrix checks it:
//! `tests/e2e/crash.rs`, point `ksn_reserved`). `FileSecureStore::put` writes to a temporary
//! file, syncs and renames, so the state on disk is the old one or the new one.

use crate::runtime::TerminalError;
use crate::store::SecureStore;
use smartpos_crypto::dukpt::{DukptDevice, DukptScheme};
use smartpos_crypto::module::DukptStore;
use std::sync::Arc;

/// The secure store entry that holds the DUKPT state.
pub const DUKPT_STATE: &str = "dukpt_state";

/// The software module's DUKPT store over the app's [`SecureStore`].
#[derive(Clone)]
pub struct SecureDukptStore {
    store: Arc<dyn SecureStore>,
}

impl std::fmt::Debug for SecureDukptStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecureDukptStore")
    }
}

impl SecureDukptStore {
    /// A DUKPT store writing [`DUKPT_STATE`] into `store`.
    pub fn new(store: Arc<dyn SecureStore>) -> Self {
        SecureDukptStore { store }
    }
}

impl DukptStore for SecureDukptStore {
    fn save(&self, state: &[u8]) -> Result<(), String> {
        self.store.put(DUKPT_STATE, state)
    }
}

/// Loads an initial key into a new DUKPT device and stores its state (the initial key itself
/// is not stored). Replaces any earlier state: the counter starts again at 1 under the new
/// initial key's KSN.
pub fn load_initial_key(
    store: &dyn SecureStore,
    scheme: DukptScheme,
    initial_key: &[u8],
    ksn: &[u8],
) -> Result<(), TerminalError> {
    let device = DukptDevice::load(scheme, initial_key, ksn)
        .map_err(|e| TerminalError::Config(format!("DUKPT initial key: {e}")))?;
    store
        .put(DUKPT_STATE, device.to_bytes().expose())
        .map_err(TerminalError::Config)
}

/// The stored DUKPT device, if `init` loaded one; refused when it is of another scheme than
/// the profile's or unreadable.
pub fn load_device(
    store: &dyn SecureStore,
    scheme: DukptScheme,
) -> Result<Option<DukptDevice>, TerminalError> {
    let Some(bytes) = store.get(DUKPT_STATE).map_err(TerminalError::Config)? else {
        return Ok(None);
    };
    let device = DukptDevice::from_bytes(&bytes)
        .map_err(|e| TerminalError::Config(format!("stored DUKPT state unusable: {e}")))?;
    if device.scheme() != scheme {
        return Err(TerminalError::Config(format!(
            "the stored DUKPT key is {} but the profile says {}: run init again",
            device.scheme().name(),
            scheme.name()
        )));
    }
    Ok(Some(device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileSecureStore;
    use smartpos_crypto::TdesKey;
    use smartpos_crypto::module::{SecurityModule, SoftwareModule};
    use smartpos_types::hex::{decode, encode};

    #[test]
    fn a_reserved_ksn_is_never_handed_out_again_after_a_reopen() {
        let dir = std::env::temp_dir().join(format!("dukpt-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn SecureStore> = Arc::new(FileSecureStore::new(&dir));
        load_initial_key(
            store.as_ref(),
            DukptScheme::Tdes,
            &decode("6AC292FAA1315B4D858AB3A3D7D5933A").unwrap(),
            &decode("FFFF9876543210E00000").unwrap(),
        )
        .unwrap();
        let open = || {
            let dev = load_device(store.as_ref(), DukptScheme::Tdes)
                .unwrap()
                .unwrap();
            SoftwareModule::new(TdesKey::new(&[1; 16]).unwrap())
                .with_dukpt(dev, Box::new(SecureDukptStore::new(store.clone())))
        };
        let first = open();
        let a = first.dukpt_next().unwrap();
        let b = first.dukpt_next().unwrap();
        // The process "dies" here; a new one opens the stored state.
        drop(first);
        let c = open().dukpt_next().unwrap();
        let seen: Vec<String> = [a, b, c].iter().map(|k| encode(k.bytes())).collect();
        assert_eq!(
            seen,
            [
                "FFFF9876543210E00001",
                "FFFF9876543210E00002",
                "FFFF9876543210E00003"
            ]
        );
        // Of the other scheme: refused by name.
        assert!(matches!(
            load_device(store.as_ref(), DukptScheme::Aes),
            Err(TerminalError::Config(m)) if m.contains("dukpt-tdes")
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
