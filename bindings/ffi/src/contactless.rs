//! Contactless cards: the app's [`ApduTransport`] (NFC `IsoDep` or the mPOS reader) and
//! [`PinEntry`] (its PIN pad), and the contactless sale and pre-authorisation on the
//! [`Terminal`].
//!
//! Both traits are synchronous, like `IsoDep.transceive`: the core's card loop calls them on
//! the terminal's runtime worker thread (a thread of its own, allowed to block), never on the
//! caller's thread, while the command holds the terminal's lock. A Kotlin exception thrown in a
//! callback becomes a transport error or a cancelled PIN entry, never a panic. PIN digits go
//! into the core's zeroized `Pin` at once. A terminal method called from either callback
//! throws `Busy` at once (`reentry.rs`).

use crate::callbacks::CallbackError;
use crate::convert::TxnResult;
use crate::error::SmartPosError;
use crate::reentry::{self, Callback};
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::api::TxnIntent;
use smartpos_terminal::api::card::{self as core_card, TransportError};
use smartpos_terminal::api::security::Pin;
use smartpos_types::SecretBytes;
use std::sync::{Arc, Mutex};

/// Why the app's transport got no answer from the card (Kotlin: `CardTransportException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum CardTransportError {
    /// The card left the field (`TagLostException`).
    #[error("card removed: {reason}")]
    CardRemoved {
        /// For logs.
        reason: String,
    },
    /// No answer in time.
    #[error("card timeout: {reason}")]
    Timeout {
        /// For logs.
        reason: String,
    },
    /// Any other I/O fault of the link.
    #[error("card I/O: {reason}")]
    Io {
        /// For logs.
        reason: String,
    },
    /// The transport threw an exception uniffi did not expect.
    #[error("transport threw: {reason}")]
    Unexpected {
        /// The exception's text.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CardTransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CardTransportError::Unexpected { reason: e.reason }
    }
}

impl From<&CardTransportError> for TransportError {
    fn from(e: &CardTransportError) -> Self {
        match e {
            CardTransportError::CardRemoved { .. } => TransportError::CardRemoved,
            CardTransportError::Timeout { .. } => TransportError::Timeout,
            CardTransportError::Io { .. } | CardTransportError::Unexpected { .. } => {
                TransportError::Io
            }
        }
    }
}

/// The app's channel to a contactless card: on Android `IsoDep.transceive`, or the mPOS
/// reader. Called on the terminal's worker thread while the sale holds the terminal's lock;
/// may block until the card answers. Do not call the terminal from here: a synchronous method
/// throws `SmartPosException.Busy` at once.
#[uniffi::export(with_foreign)]
pub trait ApduTransport: Send + Sync {
    /// Sends a command APDU; returns the response APDU (data followed by SW1 SW2).
    fn transceive(&self, apdu: Vec<u8>) -> Result<Vec<u8>, CardTransportError>;
}

/// Adapts the app's transport to the core's.
pub(crate) struct TransportAdapter(pub(crate) Arc<dyn ApduTransport>);

impl core_card::ApduTransport for TransportAdapter {
    fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        stats::callback();
        let answer = reentry::call_app(Callback::CardTransport, || {
            self.0.transceive(capdu.to_vec())
        });
        answer.map_err(|e| {
            log::info!("card transport: {e}");
            TransportError::from(&e)
        })
    }
}

enum PinValue {
    Digits(Pin),
    Block(SecretBytes),
    Cancelled,
}

/// What the PIN pad returns: digits (made into an ISO format 0 block under the PIK inside
/// the SDK), an already encrypted block from a secure PIN pad, or a cancellation. An object,
/// not a record, so Kotlin's `toString()` can never print the PIN; it is used once.
#[derive(uniffi::Object)]
pub struct PinInput {
    value: Mutex<Option<PinValue>>,
}

impl std::fmt::Debug for PinInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinInput").finish_non_exhaustive()
    }
}

impl PinInput {
    fn of(value: PinValue) -> Arc<Self> {
        Arc::new(PinInput {
            value: Mutex::new(Some(value)),
        })
    }

    /// The core's input; a second use of the same object is a cancellation.
    fn take(&self) -> core_card::PinInput {
        let taken = self.value.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(PinValue::Digits(pin)) => core_card::PinInput::Digits(pin),
            Some(PinValue::Block(b)) => core_card::PinInput::EncryptedBlock(b),
            Some(PinValue::Cancelled) => core_card::PinInput::Cancelled,
            None => {
                log::warn!("a PinInput was used twice: treated as cancelled");
                core_card::PinInput::Cancelled
            }
        }
    }
}

#[uniffi::export]
impl PinInput {
    /// PIN digits (4 to 12); the SDK builds and encrypts the block and zeroizes the digits.
    #[uniffi::constructor]
    pub fn digits(digits: String) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let digits = zeroize::Zeroizing::new(digits);
        let pin = Pin::new(&digits).map_err(|_| SmartPosError::Rejected {
            reason: "a PIN is 4 to 12 digits".into(),
            diagnosis: None,
        })?;
        Ok(Self::of(PinValue::Digits(pin)))
    }

    /// An ISO 9564 block already encrypted under the PIK by a secure PIN pad (8 bytes).
    #[uniffi::constructor]
    pub fn encrypted_block(block: Vec<u8>) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        if block.len() != 8 {
            return Err(SmartPosError::Rejected {
                reason: format!("a PIN block is 8 bytes, not {}", block.len()),
                diagnosis: None,
            });
        }
        Ok(Self::of(PinValue::Block(SecretBytes::new(block))))
    }

    /// The cardholder cancelled PIN entry: nothing is sent.
    #[uniffi::constructor]
    pub fn cancelled() -> Arc<Self> {
        stats::call();
        Self::of(PinValue::Cancelled)
    }
}

/// The app's PIN pad, asked when a card wants an online PIN. Called on the terminal's worker
/// thread; may block while the cardholder types.
///
/// Threads: the sale that asks holds the terminal's lock until it is journaled, so do not call
/// the terminal from `requestPin`. A synchronous method (`session()`, `isSignedIn()`,
/// `receiptText()`, ...) called from it throws `SmartPosException.Busy` at once and does
/// nothing, and so does a `suspend` one run with `runBlocking`. Showing the PIN pad on the UI
/// thread and waiting for it is fine, but while it waits the UI thread must not call a
/// synchronous terminal method either: that one waits for the sale, which waits for the PIN.
/// Building the answer (`PinInput.digits`, ...) is always allowed.
#[uniffi::export(with_foreign)]
pub trait PinEntry: Send + Sync {
    /// Asks for the PIN of the card `masked_pan` for `amount` minor units.
    fn request_pin(&self, masked_pan: String, amount: u64) -> Result<Arc<PinInput>, CallbackError>;
}

/// Adapts the app's PIN pad to the core's; an exception is a cancellation.
pub(crate) struct PinAdapter(pub(crate) Arc<dyn PinEntry>);

impl core_card::PinEntry for PinAdapter {
    fn pin(&mut self, masked_pan: &str, amount: u64) -> core_card::PinInput {
        stats::callback();
        let answer = reentry::call_app(Callback::PinEntry, || {
            self.0.request_pin(masked_pan.to_owned(), amount)
        });
        match answer {
            Ok(input) => input.take(),
            Err(e) => {
                log::warn!("PIN entry failed, treated as cancelled: {e}");
                core_card::PinInput::Cancelled
            }
        }
    }
}

/// A sale or pre-authorisation (contactless here, certified kernel in certified.rs, card data
/// or `CardReader` in terminal.rs).
#[derive(Clone, Copy)]
pub(crate) enum CardKind {
    Sale,
    PreAuth,
}

#[uniffi::export]
impl Terminal {
    /// A contactless sale: reads the card through `transport`, asks `pin_entry` when the card
    /// wants an online PIN, then runs the sale. The card is read on the terminal's worker
    /// thread. A retry with the same idempotency key returns the recorded outcome without
    /// touching the card. Card failures throw `CardReadFailed` (PIN cancelled: `Cancelled`);
    /// nothing was sent then.
    #[uniffi::method(default(pin_entry = None, idempotency_key = None, operator = None))]
    pub async fn sale_contactless(
        &self,
        amount: u64,
        transport: Arc<dyn ApduTransport>,
        pin_entry: Option<Arc<dyn PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        let k = CardKind::Sale;
        stats::counted(self.card_txn(k, amount, transport, pin_entry, idempotency_key, operator))
            .await
    }

    /// A contactless pre-authorisation (same card handling as `sale_contactless`).
    #[uniffi::method(default(pin_entry = None, idempotency_key = None, operator = None))]
    pub async fn preauth_contactless(
        &self,
        amount: u64,
        transport: Arc<dyn ApduTransport>,
        pin_entry: Option<Arc<dyn PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        let k = CardKind::PreAuth;
        stats::counted(self.card_txn(k, amount, transport, pin_entry, idempotency_key, operator))
            .await
    }
}

/// The core's intent for a card sale or pre-authorisation; a malformed key or operator is
/// `Rejected`.
pub(crate) fn card_intent(
    kind: CardKind,
    amount: u64,
    idempotency_key: Option<String>,
    operator: Option<String>,
) -> Result<TxnIntent, SmartPosError> {
    let base = match kind {
        CardKind::Sale => TxnIntent::sale(amount),
        CardKind::PreAuth => TxnIntent::preauth(amount),
    };
    base.key_text(idempotency_key.as_deref())
        .and_then(|i| i.operator_text(operator.as_deref()))
        .map_err(|e| SmartPosError::Rejected {
            reason: e.to_string(),
            diagnosis: None,
        })
}

impl Terminal {
    async fn card_txn(
        &self,
        kind: CardKind,
        amount: u64,
        transport: Arc<dyn ApduTransport>,
        pin_entry: Option<Arc<dyn PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        // The core emits WaitingForCard and CardRead around the card read, after its own
        // idempotency check: a retry of a known key never asks for the card again.
        self.run(move |mut g| async move {
            let t = g.as_mut().ok_or(SmartPosError::Closed)?;
            let mut transport = TransportAdapter(transport);
            let mut pin = pin_entry.map(PinAdapter);
            let pin = pin.as_mut().map(|p| p as &mut dyn core_card::PinEntry);
            let intent = card_intent(kind, amount, idempotency_key, operator)?;
            let source = core_card::CardSource::OwnKernel {
                transport: &mut transport,
                pin,
            };
            let o = t.transact(intent, source).await?;
            Ok(TxnResult::from(o))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_map_to_the_kernel_s() {
        let r = |reason: &str| reason.to_owned();
        assert_eq!(
            TransportError::from(&CardTransportError::CardRemoved { reason: r("x") }),
            TransportError::CardRemoved
        );
        assert_eq!(
            TransportError::from(&CardTransportError::Timeout { reason: r("x") }),
            TransportError::Timeout
        );
        assert_eq!(
            TransportError::from(&CardTransportError::Unexpected { reason: r("x") }),
            TransportError::Io
        );
    }

    #[test]
    fn pin_input_is_checked_masked_and_used_once() {
        assert!(PinInput::digits("12a4".into()).is_err());
        assert!(PinInput::encrypted_block(vec![0; 7]).is_err());
        let p = PinInput::digits("1234".into()).expect("pin");
        assert!(!format!("{p:?}").contains("1234"));
        assert!(matches!(p.take(), core_card::PinInput::Digits(_)));
        assert!(matches!(p.take(), core_card::PinInput::Cancelled));
        let b = PinInput::encrypted_block(vec![0x11; 8]).expect("block");
        assert!(matches!(b.take(), core_card::PinInput::EncryptedBlock(_)));
    }

    struct Failing;
    impl PinEntry for Failing {
        fn request_pin(&self, _: String, _: u64) -> Result<Arc<PinInput>, CallbackError> {
            Err(CallbackError::Unexpected {
                reason: "pad gone".into(),
            })
        }
    }

    #[test]
    fn a_failing_pin_pad_cancels() {
        let mut a = PinAdapter(Arc::new(Failing));
        let got = core_card::PinEntry::pin(&mut a, "622202******0128", 100);
        assert!(matches!(got, core_card::PinInput::Cancelled));
    }
}
