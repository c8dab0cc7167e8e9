//! `smartpos terminal ... sale --card visa --via reader` against a `smartpos host` process: the
//! simulated card is read through the simulated mPOS Bluetooth reader and the terminal's
//! reader transport, and the host verifies its ARQC.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_smartpos");

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_host(ledger: &Path) -> (Host, String) {
    let mut child = Command::new(BIN)
        .args(["host", "--listen", "127.0.0.1:0", "--ledger"])
        .arg(ledger)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn host");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    (Host(child), addr)
}

fn term(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(BIN)
        .arg("terminal")
        .arg("--data")
        .arg(dir)
        .args(args)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn tapped_visa_sale_through_the_simulated_bluetooth_reader_is_approved() {
    let dir = std::env::temp_dir().join(format!("smartpos-cli-reader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_host, addr) = start_host(&dir.join("ledger.json"));
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
