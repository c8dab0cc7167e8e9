//! Integration tests of `smartpos-emv`, one binary:
//! - `vectors`: hand-assembled card responses from `testdata/` (see its README);
//! - `props`: property tests (round trip, never panic, depth limit, incomplete prefixes);
//! - `dol_rules`: DOL building per EMV Book 3 §5.4 with real-shaped DOLs;
//! - `kernel`: the contactless kernel against scripted cards built from the vectors;

// Test helpers outside #[test] functions may unwrap: a bad vector should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dol_rules;
mod kernel;
mod props;
mod vectors;

/// Decodes a test vector file (one line of hex).
pub fn vector(text: &str) -> Vec<u8> {
    smartpos_types::hex::decode(text.trim()).expect("test vector is hex")
}
