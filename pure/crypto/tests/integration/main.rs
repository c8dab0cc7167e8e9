//! Integration tests of smartpos-crypto, one binary:
//! - `vectors`: every value of `testdata/payment-crypto.json`;
//! - `sm4`: every value of `testdata/sm4.json`;
//! - `secrets`: no secret reaches `Debug` or error text;
//! - `scenarios`: key hierarchy and DUKPT flows across modules.

// Helpers outside `#[test]` functions are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod scenarios;
mod secrets;
mod sm4;
mod vectors;
