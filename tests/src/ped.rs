//! [`PedDouble`]: a test double of a smart POS's security processor (PED), the hardware
//! counterpart of the software module for the shared test suite (`e2e/secmod.rs`).
//!
//! It behaves as the device does where the difference matters to the SDK:
//! - keys are addressed by index only: the master key is injected into a numbered slot ("at
//!   the factory", [`PedDouble::inject_master`]) and the working keys of a sign-in go into the
//!   slots of that master key; nothing reads a key back (the type has no such method, and its
//!   `Debug` names slots, not keys);
//! - the PIN never comes from the app: digits are refused; the PIN is typed on its own pad
//!   ([`PedDouble::type_on_pad`]) and leaves only as an encrypted block;
//! - it counts what it was asked to do, so a test can show that MACs and PIN blocks came from
//!   it and not from keys somewhere else.
//!
//! Its crypto is the `smartpos-crypto` primitives called directly, not the software module:
//! the two implementations share the contract, not the code.

use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::mac;
use smartpos_crypto::module::{
    DataMode, DukptKsn, KeyAlgorithm, KeyDelivery, KeyRef, KeyRole, MacDirection, MacMethod,
    ModuleError, ModuleKind, PinRequest, PinSource, SecurityModule,
};
use smartpos_crypto::pinblock::{self, Pin, PinBlockFormat};
use smartpos_types::SecretBytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What the cardholder does on the double's PIN pad.
#[derive(Debug, Clone)]
pub enum PadInput {
    /// Types these digits and presses OK.
    Digits(String),
    /// Presses Cancel.
    Cancel,
}

#[derive(Default)]
struct Slots {
    /// Master keys by slot index.
    masters: HashMap<u32, TdesKey>,
    /// Working keys by (master slot, role): the slots the last sign-in filled.
    working: HashMap<KeyRole, (u32, TdesKey)>,
}

/// A PED test double (see the module documentation).
#[derive(Default)]
pub struct PedDouble {
    slots: Mutex<Slots>,
    pad: Mutex<VecDeque<PadInput>>,
    /// Key loads that succeeded.
    pub loads: AtomicU32,
    /// MACs computed.
    pub macs: AtomicU32,
    /// PIN blocks produced.
    pub pin_blocks: AtomicU32,
    /// Requests refused (digits from the app, unknown slots, failed checks).
    pub refusals: AtomicU32,
}

impl std::fmt::Debug for PedDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.lock();
        let mut masters: Vec<u32> = slots.masters.keys().copied().collect();
        masters.sort_unstable();
        f.debug_struct("PedDouble")
            .field("master_slots", &masters)
            .field("working", &slots.working.len())
            .finish()
    }
}

impl PedDouble {
    /// An empty PED.
    pub fn new() -> PedDouble {
        PedDouble::default()
    }

    /// Injects a master key into slot `index` (done once, in a key-injection facility).
    pub fn inject_master(&self, index: u32, key: TdesKey) {
        self.lock().masters.insert(index, key);
    }

    /// Queues what the cardholder does at the next PIN prompts.
    pub fn type_on_pad(&self, input: PadInput) {
        self.pad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(input);
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, e: ModuleError) -> ModuleError {
        self.refusals.fetch_add(1, Ordering::SeqCst);
        e
    }

    fn working(&self, key: KeyRef, role: KeyRole) -> Result<TdesKey, ModuleError> {
        match key {
            KeyRef::Working => self
                .lock()
                .working
                .get(&role)
                .map(|(_, k)| k.clone())
                .ok_or_else(|| self.refuse(ModuleError::NoKey { role })),
            KeyRef::Dukpt(_) => Err(self.refuse(ModuleError::NoDukptKey)),
        }
    }
}

impl SecurityModule for PedDouble {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Device
    }

    fn install_working_keys(&self, delivery: &KeyDelivery) -> Result<(), ModuleError> {
        let mut slots = self.lock();
        // A failed load leaves the slots as they were.
        let Some(master) = slots.masters.get(&delivery.master_index).cloned() else {
            return Err(self.refuse(ModuleError::NoMasterKey {
                index: delivery.master_index,
            }));
        };
        let mut loaded = HashMap::new();
        for w in &delivery.keys {
            if w.algorithm != KeyAlgorithm::Tdes {
                return Err(self.refuse(ModuleError::Unsupported(format!(
                    "{} working keys",
                    w.algorithm.name()
                ))));
            }
            let bad = |reason| ModuleError::BadDelivery {
                role: w.role,
                reason,
            };
            let clear = Zeroizing::new(
                master
                    .decrypt_ecb(&w.ciphertext)
                    .map_err(|_| self.refuse(bad("not whole 8-byte blocks")))?,
            );
            let key = TdesKey::new(&clear).map_err(|_| self.refuse(bad("not a TDES key")))?;
            let check = key.check_block();
            let ok = w.check_value.len() >= 3
                && check
                    .get(..w.check_value.len())
                    .is_some_and(|c| bool::from(c.ct_eq(&w.check_value)));
            if !ok {
                return Err(self.refuse(ModuleError::KeyCheck { role: w.role }));
            }
            loaded.insert(w.role, (delivery.master_index, key));
        }
        slots.working = loaded;
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn has_working_key(&self, role: KeyRole) -> bool {
        self.lock().working.contains_key(&role)
    }

    fn mac(
        &self,
        key: KeyRef,
        _direction: MacDirection,
        method: MacMethod,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError> {
        let mak = self.working(key, KeyRole::Mak)?;
        let out = match method {
            MacMethod::CupEcb => mac::cup_ecb(&mak, data).to_vec(),
            MacMethod::X919 => mac::x9_19(&mak, data, mac::Padding::Method1)?.to_vec(),
            MacMethod::X99 => mac::x9_9(&mak, data)?.to_vec(),
            other => {
                return Err(self.refuse(ModuleError::Unsupported(format!("{other:?} MACs"))));
            }
        };
        self.macs.fetch_add(1, Ordering::SeqCst);
        Ok(out)
    }

    fn pin_block(&self, request: &PinRequest<'_>) -> Result<SecretBytes, ModuleError> {
        let amount = match request.source {
            PinSource::Digits(_) => {
                return Err(self.refuse(ModuleError::Unsupported(
                    "PIN digits from the app (the PIN is typed on the PIN pad)".into(),
                )));
            }
            PinSource::PinPad { amount } => amount,
        };
        let _ = amount; // shown on the pad's screen
        if request.format == PinBlockFormat::Iso4 {
            return Err(self.refuse(ModuleError::Unsupported("ISO format 4".into())));
        }
        let pik = self.working(request.key, KeyRole::Pik)?;
        let typed = self
            .pad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        let pin = match typed {
            Some(PadInput::Digits(d)) => Pin::new(&d)?,
            Some(PadInput::Cancel) => return Err(ModuleError::PinCancelled),
            None => return Err(ModuleError::PinTimeout),
        };
        let block = pinblock::encrypt_tdes(
            &pik,
            request.format,
            &pin,
            request.pan,
            &mut pinblock::system_random(),
        )?;
        self.pin_blocks.fetch_add(1, Ordering::SeqCst);
        Ok(block)
    }

    fn encrypt_data(
        &self,
        key: KeyRef,
        mode: DataMode,
        data: &[u8],
    ) -> Result<Vec<u8>, ModuleError> {
        let tdk = self.working(key, KeyRole::Tdk)?;
        Ok(match mode {
            DataMode::Ecb => tdk.encrypt_ecb(data)?,
            _ => tdk.encrypt_cbc(&[0; 8], data)?,
        })
    }

    fn dukpt_next(&self) -> Result<DukptKsn, ModuleError> {
        Err(self.refuse(ModuleError::NoDukptKey))
    }
}
