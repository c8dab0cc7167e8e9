//! Card data from the app, and the app's card reader.
//!
//! Today the core takes keyed or track-2 card data; the EMV contactless kernel and the mPOS
//! reader link will come through their own foreign traits. [`CardInput`] is an object, not a
//! record, so Kotlin's generated `toString()` can never print the PAN; its `Debug` is masked.

use crate::error::SmartPosError;
use crate::stats;
use smartpos_terminal::api::CardData;
use smartpos_types::{Pan, Track2};
use std::sync::Arc;

/// Card data for one transaction: keyed entry or track 2. Holds the PAN in a masked newtype;
/// nothing reads it back to Kotlin except [`CardInput::pan_masked`].
#[derive(Debug, uniffi::Object)]
pub struct CardInput {
    card: CardData,
}

#[uniffi::export]
impl CardInput {
    /// Keyed entry (POS entry mode `012`): PAN (12 to 19 digits) and expiry `YYMM`.
    #[uniffi::constructor]
    pub fn keyed(pan: String, expiry: String) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let pan = Pan::new(&pan).map_err(|e| SmartPosError::Rejected {
            reason: format!("card number: {e}"),
            diagnosis: None,
        })?;
        if expiry.len() != 4 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SmartPosError::Rejected {
                reason: "expiry must be YYMM".into(),
                diagnosis: None,
            });
        }
        Ok(Arc::new(CardInput {
            card: CardData {
                pan: Some(pan),
                expiry: Some(expiry),
                entry_mode: "012".into(),
                ..CardData::default()
            },
        }))
    }

    /// Track-2 data (digits with a `D` or `=` separator) and its POS entry mode, e.g. `021`
    /// for a swiped card.
    #[uniffi::constructor]
    pub fn track2(track2: String, entry_mode: String) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let t2 = Track2::new(&track2).ok_or_else(|| SmartPosError::Rejected {
            reason: "track 2 data is malformed".into(),
            diagnosis: None,
        })?;
        if entry_mode.len() != 3 || !entry_mode.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SmartPosError::Rejected {
                reason: "entry mode must be 3 digits".into(),
                diagnosis: None,
            });
        }
        Ok(Arc::new(CardInput {
            card: CardData {
                pan: t2.pan(),
                track2: Some(t2),
                entry_mode,
                ..CardData::default()
            },
        }))
    }

    /// The PAN masked to first 6 / last 4, for the screen.
    pub fn pan_masked(&self) -> Option<String> {
        stats::call();
        self.card.effective_pan().map(|p| p.masked())
    }

    /// The POS entry mode.
    pub fn entry_mode(&self) -> String {
        stats::call();
        self.card.entry_mode.clone()
    }
}

impl CardInput {
    /// The core card data.
    pub(crate) fn card_data(&self) -> CardData {
        self.card.clone()
    }
}

/// Why the app's card reader returned no card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum CardReaderError {
    /// The customer or cashier cancelled (nothing is sent).
    #[error("card reading cancelled: {reason}")]
    Cancelled {
        /// For logs.
        reason: String,
    },
    /// The card could not be read.
    #[error("card could not be read: {reason}")]
    Failed {
        /// For logs (no card data).
        reason: String,
    },
    /// The reader threw an unexpected exception.
    #[error("card reader threw: {reason}")]
    Unexpected {
        /// The exception's text.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CardReaderError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CardReaderError::Unexpected { reason: e.reason }
    }
}

impl From<CardReaderError> for SmartPosError {
    fn from(e: CardReaderError) -> Self {
        match e {
            CardReaderError::Cancelled { reason } => SmartPosError::Cancelled { reason },
            CardReaderError::Failed { reason } | CardReaderError::Unexpected { reason } => {
                crate::convert::card_read_failed(reason)
            }
        }
    }
}

/// The app's card reader: asked for a card when a sale, pre-auth or balance request carries
/// none. A Kotlin `suspend fun`: cancelling the coroutine that waits for `sale()` cancels this
/// call too, and nothing is sent.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait CardReader: Send + Sync {
    /// Waits for a card for a transaction of `amount` minor units (0 for a balance inquiry).
    async fn read_card(&self, amount: u64) -> Result<Arc<CardInput>, CardReaderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_card_is_masked_everywhere() {
        let c = CardInput::keyed("6222021234567890128".into(), "3012".into()).expect("card");
        assert_eq!(c.pan_masked().as_deref(), Some("622202*********0128"));
        assert!(!format!("{c:?}").contains("1234567890"));
        assert_eq!(c.entry_mode(), "012");
    }

    #[test]
    fn bad_card_input_is_rejected_without_echoing_it() {
        let e = CardInput::keyed("12ab".into(), "3012".into()).expect_err("bad pan");
        assert!(matches!(e, SmartPosError::Rejected { .. }));
        assert!(!e.to_string().contains("12ab"));
        assert!(CardInput::keyed("6222021234567890128".into(), "30-2".into()).is_err());
        assert!(CardInput::track2("62220212345678901?8".into(), "021".into()).is_err());
        assert!(CardInput::track2("6222021234567890128D30121010000".into(), "21".into()).is_err());
    }

    #[test]
    fn track2_card_gives_its_pan() {
        let c = CardInput::track2("6222021234567890128D30121010000".into(), "021".into())
            .expect("card");
        assert_eq!(c.pan_masked().as_deref(), Some("622202*********0128"));
        assert_eq!(c.card_data().entry_mode, "021");
    }

    #[test]
    fn reader_errors_map_to_cancelled_or_failed() {
        assert!(matches!(
            SmartPosError::from(CardReaderError::Cancelled { reason: "x".into() }),
            SmartPosError::Cancelled { .. }
        ));
        assert!(matches!(
            SmartPosError::from(CardReaderError::Unexpected { reason: "x".into() }),
            SmartPosError::CardReadFailed { .. }
        ));
    }
}
