//! The public error of the bindings. Kotlin sees it as the sealed class `SmartPosException`.
//!
//! One variant per thing an app does differently (application-services' "small public error"
//! rule); the detailed core errors are folded in by `convert/errors.rs`. Every variant carries a
//! message for logs that never holds card data, and, where the core can tell the cashier what
//! happened, a [`Diagnosis`]. A decline is not an error: it is a `TxnResult`.

use crate::diagnosis::Diagnosis;

/// Which acceptance rule refused a card (the core's `CardRefusal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CardRefusal {
    /// A chip card was swiped while its chip was not tried: insert it.
    ChipCardSwiped,
    /// The keyed card number fails its check digit: key it again.
    BadCheckDigit,
    /// The keyed expiry is not a valid `YYMM`.
    BadExpiry,
    /// The card was presented in a way this transaction does not allow.
    EntryNotAllowed,
    /// The kernel returned incomplete card data (a chip read without chip data, a swipe
    /// without track 2).
    Incomplete,
    /// A rule this version of the bindings does not name (see the reason).
    Other,
}

/// What the certified kernel reported when it gave no card (an abort is `Cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KernelFailure {
    /// The card was removed before the kernel finished.
    CardRemoved,
    /// No card was presented in time.
    Timeout,
    /// The card was not accepted (no matching application, blocked, chip unreadable).
    NotAccepted,
    /// The kernel failed (vendor error code in `kernel_code`), or threw an exception the app
    /// did not declare (`kernel_code` = `Int.MIN_VALUE`).
    Kernel,
}

/// One refund-policy rule that denies a refund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundDenial {
    /// Stable rule code, e.g. `policy.exceeds_remainder`.
    pub rule: String,
    /// The rule with its numbers, as JSON (e.g. `{"exceeds_remainder":{"remainder":1000}}`).
    pub detail_json: String,
    /// What to tell the cashier.
    pub diagnosis: Diagnosis,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum SmartPosError {
    /// No working keys: sign in first.
    #[error("not signed in")]
    NotSignedIn {
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// Earlier reversals or advices could not be delivered (host unreachable): money may be in
    /// doubt, no new financial message goes out until `recover()` succeeds.
    #[error("{count} pending item(s) undelivered")]
    PendingUndelivered {
        /// How many items wait for the host.
        count: u32,
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The request was refused by the terminal before anything was sent (bad amount, wrong
    /// original, refund over the original amount, ...).
    #[error("rejected: {reason}")]
    Rejected {
        /// Why, for logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The host refused a non-financial command (sign-in, echo, settlement).
    #[error("host refused with response code {response_code}")]
    HostRefused {
        /// Field 39.
        response_code: String,
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The host could not be reached or did not answer a non-financial command. Nothing
    /// happened at the host; trying again later is safe.
    #[error("host unreachable: {reason}")]
    HostUnreachable {
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// Keys from the host or the secure store failed their checks; re-inject the TMK.
    #[error("key error: {reason}")]
    Security {
        /// For logs (no key material).
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// No transaction with that reference.
    #[error("no transaction with reference {reference}")]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// The idempotency key was used before for a different kind of transaction or amount.
    #[error("idempotency key already used for a different request")]
    IdempotencyConflict {
        /// For logs.
        reason: String,
    },
    /// The configuration or the secure store is unusable.
    #[error("configuration: {reason}")]
    Config {
        /// For logs.
        reason: String,
    },
    /// The journal failed; close and reopen the terminal (recovery runs on open). A money
    /// command that fails this way may have reached the host: its outcome is settled by the
    /// recovery on the next open, which the diagnosis tells the cashier.
    #[error("journal: {reason}")]
    Journal {
        /// For logs.
        reason: String,
        /// For the cashier ("terminal fault: do not charge again before checking").
        diagnosis: Option<Diagnosis>,
    },
    /// The journal guard refused the journal: it is missing or emptied, another terminal's, or
    /// an old copy. Nothing was created or changed. Do not clear the app's data or reset
    /// without support: the journal holds pending money movements (`reset_journal` is for
    /// support).
    #[error("journal refused: {reason}")]
    JournalRefused {
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The card could not be read (the app's `CardReader` or transport failed, our own
    /// contactless kernel stopped, no PIN pad for a PIN card); nothing was sent.
    #[error("card read failed: {reason}")]
    CardReadFailed {
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The card was read but the SDK's acceptance rules refuse it; nothing was sent. A swiped
    /// chip card ([`CardRefusal::ChipCardSwiped`]): ask the customer to insert it.
    #[error("card refused: {reason}")]
    CardRefused {
        /// Which rule.
        refusal: CardRefusal,
        /// For logs (no card data).
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The card declined at its first GENERATE AC (AAC): declined offline, nothing was sent.
    /// Trying the same card again gives the same answer; ask for another payment.
    #[error("card declined offline: {reason}")]
    CardDeclinedOffline {
        /// For logs.
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The device's certified kernel gave no card (card removed, timeout, card not accepted,
    /// kernel error); nothing was sent. A kernel that aborted throws [`SmartPosError::Cancelled`].
    #[error("card kernel: {reason}")]
    CardKernelFailed {
        /// What the kernel reported.
        failure: KernelFailure,
        /// The vendor's error code, for [`KernelFailure::Kernel`].
        kernel_code: Option<i32>,
        /// For logs (the kernel's text).
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The operation was cancelled before anything was sent.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// For logs.
        reason: String,
    },
    /// An operator rule refused the command: nobody logged in, wrong password (the diagnosis
    /// says how many attempts are left), operator locked, not a supervisor, ...
    #[error("operator: {reason}")]
    OperatorRefused {
        /// For logs (never a password).
        reason: String,
        /// For the cashier.
        diagnosis: Option<Diagnosis>,
    },
    /// The refund policy denied the refund; nothing was sent. Every denying rule is listed,
    /// each with its diagnosis.
    #[error("refund denied: {reason}")]
    RefundDenied {
        /// The rule codes, for logs.
        reason: String,
        /// Every rule that denies, in the policy's order.
        denials: Vec<RefundDenial>,
    },
    /// The terminal was called synchronously from inside one of the app's own callbacks
    /// (receipt printer, PIN pad, card transport, listener, log sink, secure store) while it
    /// waits for that callback. Nothing was done; waiting would have frozen the terminal. Call
    /// it after the callback returns, e.g. from a coroutine the callback launches.
    #[error("busy: {reason}")]
    Busy {
        /// For logs: which callback, and what to do instead.
        reason: String,
        /// For the cashier ("Busy with another operation").
        diagnosis: Option<Diagnosis>,
    },
    /// The terminal was closed.
    #[error("terminal is closed")]
    Closed,
    /// A bug or an unexpected failure (a panic in a task, a malformed message). Like
    /// [`SmartPosError::Journal`], a money command may have reached the host before it.
    #[error("internal error: {reason}")]
    Internal {
        /// For logs.
        reason: String,
        /// For the cashier ("terminal fault: do not charge again before checking").
        diagnosis: Option<Diagnosis>,
    },
}

impl SmartPosError {
    /// An [`SmartPosError::Internal`] with `reason`.
    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        SmartPosError::Internal {
            reason: reason.into(),
            diagnosis: Some(smartpos_terminal::api::diagnosis::software_fault().into()),
        }
    }

    /// A [`SmartPosError::Journal`] with `reason` and the terminal-fault diagnosis.
    pub(crate) fn journal(reason: impl Into<String>) -> Self {
        SmartPosError::Journal {
            reason: reason.into(),
            diagnosis: Some(smartpos_terminal::api::diagnosis::software_fault().into()),
        }
    }

    /// A [`SmartPosError::Config`] with `reason`.
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        SmartPosError::Config {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = SmartPosError::PendingUndelivered {
            count: 2,
            reason: "x".into(),
            diagnosis: None,
        };
        assert_eq!(e.to_string(), "2 pending item(s) undelivered");
        assert_eq!(SmartPosError::Closed.to_string(), "terminal is closed");
        match SmartPosError::internal("boom") {
            SmartPosError::Internal {
                reason,
                diagnosis: Some(d),
            } => {
                assert_eq!(reason, "boom");
                assert_eq!(d.code, "terminal.software_fault");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Issue 19 items 3 and 5: a journal error reaches Kotlin with its own diagnosis (full
    /// disk, read-only, damaged, tampered), not the generic terminal fault.
    #[test]
    fn journal_errors_carry_their_storage_or_tamper_diagnosis() {
        use smartpos_terminal::TerminalError;
        use smartpos_terminal::journal::{JournalError, TamperedRecord};
        // (SQLite's codes are sorted in `smartpos_terminal::storage`, tested there and in
        // tests/e2e/badinput.rs; here the conversion keeps whatever diagnosis it gives.)
        let cases = [
            (
                TerminalError::Journal(JournalError::Corrupt { what: "txn" }),
                "storage.journal_damaged",
            ),
            (
                TerminalError::Journal(JournalError::Tampered(TamperedRecord {
                    table: "txn",
                    key: "000001000001".into(),
                })),
                "journal.tampered",
            ),
        ];
        for (e, code) in cases {
            match SmartPosError::from(e) {
                SmartPosError::Journal {
                    reason,
                    diagnosis: Some(d),
                } => {
                    assert_eq!(d.code, code);
                    assert!(!reason.contains("sqlite"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
