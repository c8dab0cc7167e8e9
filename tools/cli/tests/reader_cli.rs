//! `smartpos terminal ... sale --card visa --via reader` against a `smartpos host` process: the
//! simulated card is read through the simulated mPOS Bluetooth reader and the terminal's
//! reader transport, and the host verifies its ARQC.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_host, term};

#[test]
fn tapped_visa_sale_through_the_simulated_bluetooth_reader_is_approved() {
    let dir = common::tmp("reader");
    let (_host, addr) = start_host(&dir.join("ledger.json"), &[]);
    let data = dir.join("t1");
    let (code, _, err) = term(
        &data,
        &[
            "init",
            "--host",
            &addr,
            "--dialect",
            "cup",
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--no-login",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = term(&data, &["signin"]);
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = term(
        &data,
        &[
            "sale", "--amount", "1200", "--card", "visa", "--via", "reader",
        ],
    );
    assert_eq!(code, 0, "{err} {v}");
    assert_eq!(v["via"], "reader", "{v}");
    assert_eq!(v["card"]["arpc_received"], true, "{v}");
    let cryptogram = v["card"]["cryptogram"].as_str().unwrap_or_default();
    assert!(cryptogram.starts_with("ARQC "), "{v}");
    let shown = v.to_string();
    assert!(
        !shown.contains("4761739001010010"),
        "no clear PAN in the output"
    );
    // The same card through the terminal's own NFC path gives the same AID.
    let (code, nfc, err) = term(&data, &["sale", "--amount", "1300", "--card", "visa"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(nfc["via"], "nfc");
    assert_eq!(nfc["card"]["aid"], v["card"]["aid"]);
}
