//! Shared building blocks for every SmartPOS crate.
//!
//! - [`hex`]: upper-case hex encoding and strict decoding (the format every payment tool speaks).
//! - [`secret`]: newtypes for card data that must never reach a log, an error or `Debug` output:
//!   [`Pan`] (masked to first 6 / last 4), [`Track2`] and [`SecretBytes`] (fully masked,
//!   zeroized on drop).
//!
//! This crate has no I/O and no dependencies beyond `thiserror` and `zeroize`, so that every
//! other crate (codec, crypto, card kernel, engine) can share one definition of "masked".

pub mod hex;
pub mod secret;

pub use secret::{Pan, PanError, SecretBytes, Track2};
