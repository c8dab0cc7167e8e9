//! Integration tests of `smartpos-sim`, one binary (see STYLE.md).
//!
//! - `card`: the simulated contactless cards through the real kernel, ARQC/ARPC checks,
//!   pulled-away cards, limits, corrupted answers.
//! - `certified`: the simulated device kernel (`SimCertifiedKernel`) with every card and
//!   behaviour: ARQCs the host verifies, TC/AAC at completion, ARPC checks, issuer scripts and
//!   their results, swipes and fallback, hostile host answers; the host's issuer script for
//!   amounts ending in 72, TC upload (0320/203) and script result advice (0620/951).
//! - `reader`: the terminal's reader-link engine against the reader simulator through lossy
//!   chunk channels (loss, duplication, corruption, delay), reader commands, WTX, cancel.
//! - `server`: the TCP/TLS server with raw tokio clients: concurrency, framing, shutdown,
//!   bind and TLS configuration errors, fault determinism per seed.

// Test code may unwrap/panic freely: a panic is a test failure with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod card;
mod certified;
mod reader;
mod server;
