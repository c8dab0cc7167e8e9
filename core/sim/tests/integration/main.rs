//! Integration tests of `smartpos-sim`, one binary (see STYLE.md).
//!
//! - `server`: the TCP/TLS server with raw tokio clients: concurrency, framing, shutdown,
//!   bind and TLS configuration errors, fault determinism per seed.

// Test code may unwrap/panic freely: a panic is a test failure with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server;
