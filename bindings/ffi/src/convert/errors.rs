//! Core errors (engine, runtime, card) folded into [`SmartPosError`].

use super::*;

impl From<OpError> for SmartPosError {
    fn from(e: OpError) -> Self {
        let diagnosis = diagnose_op(&e);
        let reason = e.to_string();
        #[allow(unreachable_patterns)] // OpError is non_exhaustive
        match e {
            OpError::NotSignedIn => SmartPosError::NotSignedIn { reason, diagnosis },
            OpError::PendingUndelivered { count } => SmartPosError::PendingUndelivered {
                count,
                reason,
                diagnosis,
            },
            OpError::Rejected { .. } => SmartPosError::Rejected { reason, diagnosis },
            OpError::HostRefused { code } => SmartPosError::HostRefused {
                response_code: code,
                reason,
                diagnosis,
            },
            OpError::NoResponse | OpError::NotSent => {
                SmartPosError::HostUnreachable { reason, diagnosis }
            }
            OpError::KeyCheck | OpError::KeyBlock { .. } | OpError::SecurityModule { .. } => {
                SmartPosError::Security { reason, diagnosis }
            }
            // Busy cannot happen (one command at a time per terminal); Proto is a bug.
            _ => SmartPosError::internal(reason),
        }
    }
}

impl From<TerminalError> for SmartPosError {
    fn from(e: TerminalError) -> Self {
        #[allow(unreachable_patterns)] // TerminalError is non_exhaustive
        match e {
            TerminalError::Op(op) => op.into(),
            TerminalError::Security { ref cause, .. } => {
                // The command's own kind of error, with the diagnosis of why the terminal's
                // sign-in did not cure the keys (not "check the network").
                let diagnosis = Some(Diagnosis::from(e.diagnosis()));
                let reason = e.to_string();
                match cause {
                    OpError::PendingUndelivered { count } => SmartPosError::PendingUndelivered {
                        count: *count,
                        reason,
                        diagnosis,
                    },
                    _ => SmartPosError::Security { reason, diagnosis },
                }
            }
            TerminalError::Journal(_) => SmartPosError::Journal {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::Poisoned => SmartPosError::journal(e.to_string()),
            TerminalError::Config(reason) => SmartPosError::Config { reason },
            TerminalError::JournalMissing { .. }
            | TerminalError::JournalMismatch { .. }
            | TerminalError::JournalRolledBack { .. } => SmartPosError::JournalRefused {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::GuardStore { .. } => SmartPosError::Journal {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::NotFound { reference } => SmartPosError::NotFound { reference },
            TerminalError::IdempotencyConflict => SmartPosError::IdempotencyConflict {
                reason: e.to_string(),
            },
            TerminalError::Operator(_) => SmartPosError::OperatorRefused {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::RefundDenied { ref denials } => SmartPosError::RefundDenied {
                reason: e.to_string(),
                denials: denials.iter().map(RefundDenial::from).collect(),
            },
            TerminalError::Card(ref c) => card_error(&e, c),
            TerminalError::HostLink(_) => SmartPosError::HostUnreachable {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            other => SmartPosError::internal(other.to_string()),
        }
    }
}

/// A card failure (nothing was sent), with the core's diagnosis of it.
fn card_error(e: &TerminalError, c: &CardError) -> SmartPosError {
    let reason = e.to_string();
    let diagnosis = Some(Diagnosis::from(e.diagnosis()));
    #[allow(unreachable_patterns)] // the core enums are non_exhaustive
    match c {
        CardError::PinCancelled | CardError::Bridge(KernelBridgeError::Aborted) => {
            SmartPosError::Cancelled { reason }
        }
        CardError::Refused(r) => SmartPosError::CardRefused {
            refusal: CardRefusal::from(*r),
            reason,
            diagnosis,
        },
        CardError::DeclinedOffline => SmartPosError::CardDeclinedOffline { reason, diagnosis },
        CardError::Bridge(b) => {
            let (failure, kernel_code) = match b {
                KernelBridgeError::CardRemoved => (KernelFailure::CardRemoved, None),
                KernelBridgeError::Timeout => (KernelFailure::Timeout, None),
                KernelBridgeError::NotAccepted { .. } => (KernelFailure::NotAccepted, None),
                KernelBridgeError::Kernel { code, .. } => (KernelFailure::Kernel, Some(*code)),
                _ => (KernelFailure::Kernel, None),
            };
            SmartPosError::CardKernelFailed {
                failure,
                kernel_code,
                reason,
                diagnosis,
            }
        }
        _ => SmartPosError::CardReadFailed { reason, diagnosis },
    }
}

/// `CardReadFailed` for a card reader or transport failure outside the core (the app's
/// `CardReader`, the mPOS reader), with the core's diagnosis of a reader failure.
pub(crate) fn card_read_failed(reason: String) -> SmartPosError {
    let e = TerminalError::Card(CardError::Reader(reason.clone()));
    SmartPosError::CardReadFailed {
        reason,
        diagnosis: Some(e.diagnosis().into()),
    }
}

impl From<core_certified::CardRefusal> for CardRefusal {
    fn from(r: core_certified::CardRefusal) -> Self {
        use core_certified::CardRefusal as R;
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match r {
            R::ChipCardSwiped => CardRefusal::ChipCardSwiped,
            R::BadCheckDigit => CardRefusal::BadCheckDigit,
            R::BadExpiry => CardRefusal::BadExpiry,
            R::EntryNotAllowed => CardRefusal::EntryNotAllowed,
            R::Incomplete => CardRefusal::Incomplete,
            _ => CardRefusal::Other,
        }
    }
}
