//! End-to-end tests of the SmartPOS SDK core: engine ↔ host pair tests on virtual time,
//! loopback TCP/TLS integration through the terminal runtime, the crash harness, the fault
//! soak and the secrets audit.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod badinput;
mod contactless;
mod crash;
mod diagnosis;
mod fields;
mod loopback;
mod pair;
mod params;
mod profiles;
mod reader;
mod secmod;
mod secrets;
mod security_recovery;
mod settlement;
mod signin_again;
mod sim_arqc;
mod soak;
