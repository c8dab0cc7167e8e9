//! Kernel errors: a card that cannot be read. A declined or offline-declined card (AAC) is an
//! outcome, not an error.
//!
//! No variant carries card data: status words, steps, tags and lengths only.

use crate::tlv::{Tag, TlvError};
use thiserror::Error;

/// The command the kernel was waiting on when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Before any command: checking the transaction against the configuration.
    PreProcessing,
    /// SELECT `2PAY.SYS.DDF01`.
    SelectPpse,
    /// Final SELECT of the chosen AID.
    SelectAid,
    /// GET PROCESSING OPTIONS.
    Gpo,
    /// READ RECORD.
    ReadRecord,
    /// GENERATE AC (M/Chip path).
    GenerateAc,
    /// Building the outcome from the data read.
    Completion,
}

/// How the app's transport failed (reported through `Kernel::handle_transport_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportError {
    /// The card left the field (NFC tag lost, reader reports card removed).
    CardRemoved,
    /// No answer in time.
    Timeout,
    /// Any other I/O fault of the link.
    Io,
}

/// The app's channel to the card: NFC (`IsoDep.transceive` on Android) or the mPOS reader link.
/// The kernel itself never calls it (it is sans-IO); the runtime's card loop does.
pub trait ApduTransport: Send {
    /// Sends a command APDU and returns the response APDU (data followed by SW1 SW2).
    fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// Why a card response is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedReason {
    /// Fewer than two bytes: no status word.
    NoStatusWord,
    /// The data is not valid BER-TLV.
    Tlv(TlvError),
    /// The response is not in the template the command calls for.
    UnexpectedTemplate {
        /// The template expected (for example `77`).
        expected: Tag,
    },
    /// A mandatory data object is missing.
    MissingTag(Tag),
    /// A data object has an impossible length or value.
    BadValue(Tag),
    /// The Application File Locator is malformed (Book 3 §10.2).
    BadAfl,
    /// The PDOL or CDOL asks for more data than fits in one short APDU.
    DolTooLong,
    /// The PAN in `5A` differs from the one in track 2 (`57`).
    PanMismatch,
    /// The cryptogram information data says "RFU" (bits 8-7 = `11`).
    BadCryptogramType,
}

/// Why the kernel could not produce a [`super::CardOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The transaction data is invalid (amount too long, bad date, ...): a caller bug.
    #[error("invalid transaction data: {field}")]
    InvalidTransaction {
        /// Which field.
        field: &'static str,
    },
    /// The amount is at or above the contactless transaction limit: use another interface.
    #[error("amount {amount} is over the contactless limit {limit}")]
    OverLimit {
        /// The amount, minor units.
        amount: u64,
        /// The configured limit.
        limit: u64,
    },
    /// No supported contactless application: PPSE missing (`6A82`), no matching directory
    /// entry, or every candidate refused selection.
    #[error("no supported contactless application ({step:?}, SW {sw:04X})")]
    NotSupported {
        /// Where it was found out.
        step: Step,
        /// The last status word (`9000` when the card answered but offered nothing usable).
        sw: u16,
    },
    /// The card refused in this state (`6985`).
    #[error("conditions of use not satisfied ({step:?}, SW {sw:04X})")]
    ConditionsNotSatisfied {
        /// The command refused.
        step: Step,
        /// The status word.
        sw: u16,
    },
    /// The card is blocked (`6A81` to SELECT).
    #[error("card blocked (SW {sw:04X})")]
    CardBlocked {
        /// The status word.
        sw: u16,
    },
    /// The application is blocked (`6283` to the final SELECT, `6984`).
    #[error("application blocked ({step:?}, SW {sw:04X})")]
    AppBlocked {
        /// Where.
        step: Step,
        /// The status word.
        sw: u16,
    },
    /// The card asks for another interface (contact chip or magstripe).
    #[error("try another interface ({step:?})")]
    TryAnotherInterface {
        /// Where the card said so.
        step: Step,
    },
    /// Any other status word.
    #[error("card error ({step:?}, SW {sw:04X})")]
    CardError {
        /// The command.
        step: Step,
        /// The status word.
        sw: u16,
    },
    /// The response cannot be understood.
    #[error("malformed card response ({step:?}): {reason:?}")]
    Malformed {
        /// The command answered.
        step: Step,
        /// What is wrong.
        reason: MalformedReason,
    },
    /// The card left the field during the read.
    #[error("card removed ({step:?})")]
    CardRemoved {
        /// The command in flight.
        step: Step,
    },
    /// The transport timed out or failed.
    #[error("communication error ({step:?}): {kind:?}")]
    Communication {
        /// The command in flight.
        step: Step,
        /// What the transport reported.
        kind: TransportError,
    },
    /// `handle_response` was called with no command outstanding (a driver bug).
    #[error("response without an outstanding command")]
    UnexpectedResponse,
}
