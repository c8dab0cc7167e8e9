//! Integration tests of `smartpos-terminal`, one binary (see STYLE.md).
//!
//! - `support`: starting the simulator's server and building link configs for loopback.
//! - `link_tcp`: the host link over plain TCP: round trips, framing, timeouts, closes.
//! - `link_tls`: TLS: trust, server name, pinning.
//! - `link_expired`: TLS certificate dates: expired and not-yet-valid leaves are rejected.
//! - `link_faults`: every simulator transport fault as the link sees it.

// Test code may unwrap/panic freely: a panic is a test failure with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod link_expired;
mod link_faults;
mod link_tcp;
mod link_tls;
mod support;
