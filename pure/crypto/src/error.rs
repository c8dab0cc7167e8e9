//! The one error type of this crate.
//!
//! Variants carry lengths, positions and names, never key bytes, PINs, PANs or block contents:
//! an error message may end up in a log line or a host diagnostic.

use thiserror::Error;

/// Why a cryptographic operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key of the wrong length for the algorithm.
    #[error("{algorithm} key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Algorithm or role the key was meant for.
        algorithm: &'static str,
        /// Accepted lengths, for humans (`"8, 16 or 24"`).
        expected: &'static str,
        /// Length given.
        got: usize,
    },
    /// Data that must be whole cipher blocks is not.
    #[error("data length {len} is not a multiple of the {block}-byte block")]
    DataLength {
        /// Length given.
        len: usize,
        /// Block size of the cipher.
        block: usize,
    },
    /// A fixed-size input (IV, KSN, ARQC, check value, ...) of the wrong size.
    #[error("{what} must be {expected} bytes, got {got}")]
    InputLength {
        /// Which input.
        what: &'static str,
        /// Accepted lengths, for humans.
        expected: &'static str,
        /// Length given.
        got: usize,
    },
    /// A delivered key's check value does not match the key it came with.
    #[error("key check value does not match")]
    KcvMismatch,
    /// A PIN is 4 to 12 decimal digits (ISO 9564-1).
    #[error("PIN must be 4 to 12 decimal digits (got {len} characters)")]
    BadPin {
        /// Number of characters given (not the characters).
        len: usize,
    },
    /// A PIN block format this crate does not implement.
    #[error("PIN block format {format} is not supported (0, 1, 3 and 4 are)")]
    UnsupportedPinBlockFormat {
        /// Format number asked for.
        format: u8,
    },
    /// The format needs a PAN and none was given.
    #[error("PIN block format {format} needs a PAN")]
    PanRequired {
        /// PIN block format number.
        format: u8,
    },
    /// The PIN block format is used with the other cipher's key (format 4 is AES only,
    /// formats 0, 1 and 3 are TDES only).
    #[error("PIN block format {format} needs a {expected} key")]
    PinBlockKeyType {
        /// PIN block format number.
        format: u8,
        /// Cipher the format needs.
        expected: &'static str,
    },
    /// The control nibble of a clear PIN block is not the format's.
    #[error("PIN block control field is {got:X}, expected {expected:X}")]
    PinBlockControl {
        /// Control nibble of the format.
        expected: u8,
        /// Control nibble found.
        got: u8,
    },
    /// The PIN length nibble is outside 4..=12.
    #[error("PIN block PIN length {len} is outside 4..=12")]
    PinBlockPinLength {
        /// Length nibble found.
        len: u8,
    },
    /// A PIN nibble is not a decimal digit.
    #[error("PIN block holds a non-decimal PIN digit")]
    PinBlockDigit,
    /// Fill nibbles are not what the format prescribes.
    #[error("PIN block fill is invalid for format {format}")]
    PinBlockFill {
        /// PIN block format number.
        format: u8,
    },
    /// A fill given by the caller does not suit the format.
    #[error("fill for PIN block format {format} must be {expected}")]
    BadFill {
        /// PIN block format number.
        format: u8,
        /// What was expected, for humans.
        expected: &'static str,
    },
    /// The random source failed or never produced usable bytes.
    #[error("random source failed")]
    Random,
    /// A DUKPT counter outside the allowed range.
    #[error("DUKPT counter {counter:#X} is invalid: {reason}")]
    DukptCounter {
        /// The counter value (not secret: it travels in the clear in the KSN).
        counter: u32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The DUKPT device has used its last key (X9.24-1: counter overflow).
    #[error("DUKPT key registers are exhausted")]
    DukptExhausted,
    /// A DUKPT future key register that should hold a key is empty (state corrupted).
    #[error("DUKPT future key register {register} is empty")]
    DukptRegisterEmpty {
        /// Register number, 1 (leftmost counter bit) to 21.
        register: u8,
    },
    /// A derived key would be stronger than the key it is derived from (X9.24-3 forbids it).
    #[error("cannot derive a {wanted_bits}-bit key from a {have_bits}-bit key")]
    KeyTooStrong {
        /// Strength of the requested key in bits.
        wanted_bits: u16,
        /// Strength of the derivation key in bits.
        have_bits: u16,
    },
    /// A numeric field (PSN, ARC, ...) outside its range.
    #[error("{what} is out of range")]
    OutOfRange {
        /// Which field.
        what: &'static str,
    },
}
