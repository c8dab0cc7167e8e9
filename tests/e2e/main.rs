//! End-to-end tests of the SmartPOS SDK core: engine ↔ host pair tests on virtual time,
//! loopback TCP/TLS integration through the terminal runtime, and the crash harness.

mod pair;
mod loopback;
mod crash;
