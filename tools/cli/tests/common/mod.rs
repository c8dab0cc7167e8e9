//! Helpers shared by the CLI process tests: the host simulator as a child process, one
//! `smartpos terminal` invocation, a fresh temporary directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_smartpos");

/// The `smartpos host` child process; killed on drop.
pub struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `smartpos host` with a ledger file; returns it and its address.
pub fn start_host(ledger: &Path, extra: &[&str]) -> (Host, String) {
    start_host_at("127.0.0.1:0", ledger, extra)
}

/// A loopback address whose port was free a moment ago (to restart a host where a terminal
/// expects it).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// [`start_host`] listening on `listen`.
pub fn start_host_at(listen: &str, ledger: &Path, extra: &[&str]) -> (Host, String) {
    let mut child = Command::new(BIN)
        .args(["host", "--listen", listen, "--ledger"])
        .arg(ledger)
        .args(extra)
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

/// Runs `smartpos terminal --data DIR ARGS`: (exit code, stdout JSON, stderr).
pub fn term(dir: &Path, args: &[&str]) -> (i32, Value, String) {
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

/// [`term`] that must succeed: its stdout JSON.
pub fn term_ok(dir: &Path, args: &[&str]) -> Value {
    let (code, v, err) = term(dir, args);
    assert_eq!(code, 0, "{args:?}: {v} {err}");
    v
}

/// `init` for the test terminal (TID 12345678, MID 123456789012345) against `addr`, plus
/// `extra` flags; must succeed.
pub fn init_terminal(dir: &Path, addr: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "init",
        "--host",
        addr,
        "--tid",
        "12345678",
        "--mid",
        "123456789012345",
    ];
    args.extend_from_slice(extra);
    term_ok(dir, &args)
}

/// A fresh directory under the system temp dir, removed when the value is dropped (kept when
/// the test fails).
pub fn tmp(name: &str) -> smartpos_tests::TempDir {
    smartpos_tests::TempDir::new(&format!("cli-{name}"))
}

/// `smartpos host-ledger --ledger FILE`, which must succeed: its JSON.
pub fn term_ok_ledger(ledger: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["host-ledger", "--ledger"])
        .arg(ledger)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ledger JSON")
}
