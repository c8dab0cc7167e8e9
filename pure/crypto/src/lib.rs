//! Payment cryptography for SmartPOS: keys, PIN blocks, MACs, DUKPT and EMV cryptograms.
//!
//! Files:
//! - `error.rs`: [`CryptoError`], the one error type (no secret in any message).
//! - `keys.rs`: [`TdesKey`] / [`AesKey`] (zeroized, `Debug` = length + KCV), ECB/CBC, KCVs,
//!   and the TMK → working-key hierarchy ([`unwrap_working_key`], [`wrap_working_key`]).
//! - `pinblock.rs`: ISO 9564-1 PIN blocks, formats 0, 1, 3 (TDES) and 4 (AES), and the masked
//!   [`Pin`] type; the 16-byte SM4 PIN block of UnionPay national-algorithm terminals.
//! - `mac.rs`: ANSI X9.9, ANSI X9.19 (ISO 9797-1 MAC algorithm 3), AES-CMAC, the UnionPay POS
//!   ECB MAC and its SM4 form, constant-time [`mac::verify`].
//! - `dukpt/tdes.rs`: TDES DUKPT (X9.24-1:2009), host derivation and the terminal's
//!   future-key registers; `dukpt/aes.rs`: AES DUKPT (X9.24-3-2017).
//! - `sm4.rs`: [`sm4::Sm4Key`] (GB/T 32907 SM4, zeroized), ECB/CBC, check values, and SM4
//!   working keys under an SM4 master key (UnionPay national-algorithm terminals).
//! - `emv.rs`: ICC master keys (options A and B), common session key, ARQC, ARPC.
//! - `module.rs`: [`SecurityModule`], the interface for everything that touches a terminal's
//!   keys (working-key storage, MAC, PIN block, data encryption, DUKPT), and
//!   [`SoftwareModule`], its implementation with keys in memory.
//!
//! No I/O, clocks or threads. Randomness comes from ring's `SystemRandom` (key generation,
//! default PIN fill) or from a caller-supplied source.

pub mod dukpt;
pub mod emv;
mod error;
pub mod keys;
pub mod mac;
pub mod module;
pub mod pinblock;
pub mod sm4;

pub use error::CryptoError;
pub use keys::{AesKey, TdesKey, unwrap_working_key, wrap_working_key};
pub use module::{ModuleError, SecurityModule, SoftwareModule};
pub use pinblock::{Pin, PinBlockFormat};
