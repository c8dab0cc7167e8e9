//! ISO 8583 message codec with host dialects as data. No I/O, no clocks, no randomness.
//!
//! - `wire.rs`: open wire enums [`Mti`], [`ProcessingCode`], [`ResponseCode`], [`PosEntryMode`].
//! - `response.rs`: [`RESPONSE_CODES`], the response code table: one row per code (meaning,
//!   class, closes a reversal, diagnosis keys); the [`ResponseCode`] methods read it.
//! - `message.rs`: [`Message`], an MTI, a header and field values as logical bytes (masked `Debug`).
//! - `spec.rs`: how a field is described ([`FieldSpec`]: kind × length × prefix × encoding ×
//!   charset × mask).
//! - `tables.rs`: the built-in tables `cup`, `iso87b`, `iso87a`, one line per field, with sources.
//! - `dialect.rs`: [`Dialect`]: table-driven `pack`, `unpack`, `view`, `mac_input`, `dump`;
//!   [`BuiltInDialect`] names the built-in ones, typed.
//! - `view.rs`: [`MessageView`]: a message read in place, values borrowed from the input and
//!   typed on access ([`FieldRef`]); `unpack` is a view turned into a [`Message`].
//! - `codec.rs`: field-level encode/decode (BCD, ASCII, hex, length prefixes), bounds-checked.
//! - `subfield.rs`: [`Subfield`]: structured private fields read by their layout (text, GBK
//!   text, bytes, tag-length-value lists), typed on access.
//! - `mask.rs`: masking rules shared by dumps, tool output and `Debug`.
//! - `frame.rs`: [`frame`]: the 2-byte big-endian length framing of TCP links.
//! - `error.rs`: [`EncodeError`], [`DecodeError`] (`Incomplete` vs `Invalid`), [`FrameError`],
//!   [`DialectError`]; none of them carries a field value.
//! - `reference.rs`: [`mod@reference`]: documented reference sale messages (test data only).

mod codec;
mod dialect;
mod error;
pub mod frame;
pub mod mask;
mod message;
pub mod reference;
mod response;
mod spec;
mod subfield;
mod tables;
mod view;
mod wire;

pub use dialect::{BuiltInDialect, Dialect, length_bounds};
pub use error::{DecodeError, DialectError, EncodeError, FrameError, InvalidReason};
pub use message::Message;
pub use response::{RESPONSE_CODES, ResponseClass, ResponseRow};
pub use spec::{
    BitmapEncoding, Charset, FieldKind, FieldSpec, LengthType, Mask, MtiEncoding, Pad,
    PrefixEncoding, SubfieldFormat, SubfieldSpec, TlvLength, TlvSpec, ValueEncoding,
};
pub use subfield::{SubValue, Subfield};
pub use view::{FieldRef, MessageView};
pub use wire::{Mti, PosEntryMode, ProcessingCode, ResponseCode, WireValueError};
