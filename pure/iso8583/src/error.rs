//! Codec errors. None of them carries a field value: only field numbers, lengths and offsets,
//! so an error can be logged without leaking card data.

use thiserror::Error;

/// Why a message could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A variable field is longer than the dialect allows.
    #[error("field {field} too long: max {max}, got {got}")]
    FieldTooLong {
        /// Field number.
        field: u8,
        /// Maximum logical length.
        max: usize,
        /// Logical length given.
        got: usize,
    },
    /// A fixed field has the wrong length.
    #[error("field {field} has wrong length: expected {expected}, got {got}")]
    WrongLength {
        /// Field number.
        field: u8,
        /// Required logical length.
        expected: usize,
        /// Logical length given.
        got: usize,
    },
    /// A character outside the field's character class.
    #[error("field {field} has an invalid character at position {position}")]
    BadCharacter {
        /// Field number.
        field: u8,
        /// Zero-based position in the logical value.
        position: usize,
    },
    /// The dialect does not define this field.
    #[error("field {field} is not defined by the dialect")]
    UnknownField {
        /// Field number.
        field: u8,
    },
    /// Field 1 (secondary bitmap) is set by the codec, never by the caller.
    #[error("field {field} is reserved for the codec (bitmap)")]
    ReservedField {
        /// Field number.
        field: u8,
    },
    /// The message header has the wrong length for the dialect.
    #[error("header length: expected {expected}, got {got}")]
    HeaderLength {
        /// Header length of the dialect.
        expected: usize,
        /// Header length given.
        got: usize,
    },
    /// The MTI is not a 4-digit number.
    #[error("MTI {mti} is not 4 decimal digits")]
    BadMti {
        /// The MTI number given.
        mti: u16,
    },
    /// A value given as text (tool input) is not valid hex for a binary field.
    #[error("field {field}: binary value is not valid hex")]
    BadHex {
        /// Field number.
        field: u8,
    },
}

/// What exactly is wrong in bytes that could not be unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The MTI is not 4 decimal digits.
    BadMti,
    /// A hex-ASCII bitmap holds a non-hex character.
    BadBitmap,
    /// The bitmap names a field the dialect does not define.
    UnknownField,
    /// A length prefix holds a non-digit.
    BadLengthPrefix,
    /// A length prefix is over the field's maximum.
    TooLong {
        /// Maximum logical length.
        max: usize,
        /// Logical length announced by the prefix.
        got: usize,
    },
    /// A hex-ASCII length prefix announces an odd number of characters.
    OddHexLength,
    /// A character or BCD nibble outside the field's character class.
    BadCharacter,
    /// The filler nibble of an odd BCD value is not the dialect's filler.
    BadPadding,
    /// Bytes are left after the last field.
    TrailingBytes,
    /// The message carries no MAC field (64 or 128).
    MissingMac,
    /// The MAC field is not the last field of the message.
    MacNotLast,
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidReason::BadMti => f.write_str("MTI is not 4 decimal digits"),
            InvalidReason::BadBitmap => f.write_str("bitmap is not hex"),
            InvalidReason::UnknownField => f.write_str("field not defined by the dialect"),
            InvalidReason::BadLengthPrefix => f.write_str("length prefix is not a number"),
            InvalidReason::TooLong { max, got } => write!(f, "length {got} over maximum {max}"),
            InvalidReason::OddHexLength => f.write_str("odd hex length"),
            InvalidReason::BadCharacter => f.write_str("character outside the field's class"),
            InvalidReason::BadPadding => f.write_str("unexpected BCD filler nibble"),
            InvalidReason::TrailingBytes => f.write_str("bytes after the last field"),
            InvalidReason::MissingMac => f.write_str("no MAC field (64/128)"),
            InvalidReason::MacNotLast => f.write_str("MAC field is not the last field"),
        }
    }
}

/// Why bytes could not be unpacked. "Not enough bytes yet" is distinct from "invalid".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the message does.
    #[error("incomplete message{}: {needed} more byte(s) needed", fmt_field(*.field))]
    Incomplete {
        /// Field being read (None: header, MTI or bitmap).
        field: Option<u8>,
        /// Minimum number of further bytes needed.
        needed: usize,
    },
    /// The input is not a valid message for the dialect.
    #[error("invalid message{} at byte {offset}: {reason}", fmt_field(*.field))]
    Invalid {
        /// Field being read (None: header, MTI, bitmap or framing).
        field: Option<u8>,
        /// Byte offset in the input.
        offset: usize,
        /// What is wrong.
        reason: InvalidReason,
    },
}

fn fmt_field(field: Option<u8>) -> String {
    field.map(|f| format!(" in field {f}")).unwrap_or_default()
}

/// Why a frame could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The body does not fit a 2-byte length prefix.
    #[error("frame body too long: {len} bytes, max 65535")]
    TooLong {
        /// Body length.
        len: usize,
    },
}

/// Why a dialect table is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DialectError {
    /// Field numbers must be 2..=128 and appear once.
    #[error("field {field}: number out of range or defined twice")]
    BadNumber {
        /// Field number.
        field: u8,
    },
    /// The value encoding does not fit the character class (BCD for text, binary for digits...).
    #[error("field {field}: encoding does not fit its kind")]
    EncodingMismatch {
        /// Field number.
        field: u8,
    },
    /// The maximum length cannot be written in the length prefix.
    #[error("field {field}: maximum length does not fit the length prefix")]
    PrefixTooSmall {
        /// Field number.
        field: u8,
    },
    /// A GBK/GB18030 charset on a field that is not `an`/`ans`/`ns` text with ASCII encoding.
    #[error("field {field}: a charset needs an an/ans/ns field with ascii encoding")]
    CharsetMismatch {
        /// Field number.
        field: u8,
    },
    /// The BCD filler is not a nibble.
    #[error("field {field}: filler is not a nibble")]
    BadFiller {
        /// Field number.
        field: u8,
    },
}
