//! Integration tests of `smartpos-sim`, one binary (see STYLE.md).
//!
//! - `card`: the simulated contactless cards through the real kernel, ARQC/ARPC checks,
//!   pulled-away cards, limits, corrupted answers.
//! - `reader`: the terminal's reader-link engine against the reader simulator through lossy
//!   chunk channels (loss, duplication, corruption, delay), reader commands, WTX, cancel.
//! - `server`: the TCP/TLS server with raw tokio clients: concurrency, framing, shutdown,
//!   bind and TLS configuration errors, fault determinism per seed.

// Test code may unwrap/panic freely: a panic is a test failure with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod card;
mod reader;
mod server;
