//! The mPOS reader link: a block protocol in the style of ISO/IEC 7816-3 T=1 between the
//! terminal (phone or smart POS) and a Bluetooth card reader, sans-IO.
//!
//! Layers, bottom up:
//! - `transport.rs` ([`transport`]): BLE GATT chunking ([`Chunker`], ATT MTU − 3 bytes per
//!   write/notification) and frame reassembly from arbitrary chunks with resynchronisation on
//!   garbage ([`Reassembler`]).
//! - `frame.rs` ([`frame`]): `NAD PCB LEN INF EDC` frames, LRC or CRC-16 ([`Edc`]).
//! - `block.rs` ([`block`]): I-, R- and S-blocks and their PCB coding ([`Block`]).
//! - `engine.rs` ([`engine`]): [`LinkEngine`], the terminal-side state machine (chaining,
//!   retransmission, RESYNCH, IFS, WTX, abort) with `handle_chunk`/`handle_timeout` in and
//!   `poll_transmit`/`poll_event`/`poll_timeout` out.
//! - `command.rs` ([`command`]): the reader command set carried in I-blocks (APDU, poll,
//!   deactivate, firmware, battery, display, beep, cancel) and the [`ReaderEvent`]s.
//!
//! The reader side lives in `smartpos-sim` (`SimReader`), built on the same frame, block and
//! transport types. No clocks, threads or I/O here: time is passed in as milliseconds.

pub mod block;
pub mod command;
pub mod engine;
pub mod frame;
pub mod transport;

pub use block::{Block, BlockError, RError, SBlock, Seq, Tag};
pub use command::{
    ActivatedCard, CommandClass, MESSAGE_CRC_LEN, ReaderCommand, ReaderEvent, ReaderStatus,
    encode_response, response_event, split_request, split_response,
};
pub use engine::{DEFAULT_IFS, LinkConfig, LinkEngine, LinkStats};
pub use frame::{Edc, Frame, FrameError, MAX_INF, NAD_TO_READER, NAD_TO_TERMINAL, crc32};
pub use transport::{Chunker, Reassembled, Reassembler};

use thiserror::Error;

/// What the app implements to move chunks to the reader: on Android a GATT write (without
/// response) to the reader's RX characteristic, or a write on the SPP socket. Notifications
/// from the reader's TX characteristic go the other way, into [`LinkEngine::handle_chunk`].
///
/// A write that fails is simply lost: the protocol retransmits. A lost connection is the
/// app's to report (it stops feeding the engine and drops it).
pub trait ReaderLink {
    /// Writes one chunk (at most ATT MTU − 3 bytes on BLE).
    fn write(&self, chunk: &[u8]);
}

/// Why a reader command failed. No variant carries payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The reader stayed silent (no valid block through the whole recovery), or a command
    /// exceeded its overall time (WTX included).
    #[error("reader did not answer in time")]
    Timeout,
    /// Retransmissions and RESYNCH did not get the command through.
    #[error("too many retransmissions")]
    TooManyRetries,
    /// The command was cancelled or the reader aborted it.
    #[error("operation aborted")]
    Aborted,
    /// The reader broke the protocol or the command profile.
    #[error("reader protocol violation: {what}")]
    ProtocolViolation {
        /// What was wrong.
        what: &'static str,
    },
    /// The reader answered with an error status (see [`ReaderStatus`]).
    #[error("reader reported error status {code:#04X}")]
    ReaderError {
        /// The status byte.
        code: u8,
    },
    /// The command breaks its own limits (display text too long, APDU too short).
    #[error("invalid reader command: {what}")]
    InvalidCommand {
        /// What was wrong.
        what: &'static str,
    },
    /// The request message exceeds `max_message_len`.
    #[error("reader message too long: {got} bytes, at most {max}")]
    MessageTooLong {
        /// Configured maximum.
        max: usize,
        /// Length of the message.
        got: usize,
    },
    /// The link configuration is unusable.
    #[error("invalid link configuration: {what}")]
    InvalidConfig {
        /// What was wrong.
        what: &'static str,
    },
}
