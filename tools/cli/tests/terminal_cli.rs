//! `smartpos host`, `smartpos host-ledger` and `smartpos terminal ...` as separate processes,
//! the way a newcomer uses them.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{BIN, init_terminal, start_host, term, term_ok, tmp};
use serde_json::Value;
use std::process::Command;

#[test]
fn terminal_session_against_host_process_reconciles() {
    let dir = tmp("session");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    let (code, v, err) = term(
        data,
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
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["tid"], "12345678");
    let (code, v, err) = term(data, &["sale", "--amount", "100"]);
    assert_eq!(code, 1, "a sale without an operator is refused");
    assert_eq!(v["error"]["category"], "operator", "{v}");
    assert!(err.contains("operator"), "{err}");
    let (code, _, err) = term(data, &["login", "--operator", "00", "--password", "123456"]);
    assert_eq!(code, 2, "the default password must be changed first: {err}");
    let (code, v, _) = term(
        data,
        &[
            "login",
            "--operator",
            "00",
            "--password",
            "123456",
            "--new-password",
            "135790",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["role"], "supervisor");
    let (code, v, err) = term(data, &["sale", "--amount", "100"]);
    assert_eq!(code, 1, "a sale before sign-in is refused");
    assert!(err.contains("not signed in"), "{err}");
    assert_eq!(v["error"]["code"], "op.not_signed_in");
    assert_eq!(v["error"]["money_state"], "not_charged");
    assert_eq!(term(data, &["signin"]).0, 0);
    let (_, sale, _) = term(
        data,
        &["sale", "--amount", "1234", "--idempotency-key", "o-1"],
    );
    assert_eq!(sale["state"], "approved");
    let reference = sale["reference"].as_str().unwrap().to_owned();
    let (_, again, _) = term(
        data,
        &["sale", "--amount", "1234", "--idempotency-key", "o-1"],
    );
    assert_eq!(again["reference"], sale["reference"]);
    assert_eq!(again["replayed"], true);
    let (_, s2, _) = term(data, &["sale", "--amount", "5000"]);
    let (_, void, _) = term(data, &["void", "--ref", &reference]);
    assert_eq!(void["state"], "approved");
    let (_, refund, _) = term(
        data,
        &[
            "refund",
            "--ref",
            s2["reference"].as_str().unwrap(),
            "--amount",
            "2000",
        ],
    );
    assert_eq!(refund["state"], "approved");
    assert_eq!(refund["kind"], "refund");
    let (_, pa, _) = term(data, &["preauth", "--amount", "3000"]);
    let (_, comp, _) = term(
        data,
        &[
            "complete",
            "--ref",
            pa["reference"].as_str().unwrap(),
            "--amount",
            "2500",
        ],
    );
    assert_eq!(comp["state"], "approved");
    let (_, declined, _) = term(data, &["sale", "--amount", "351"]);
    assert_eq!(declined["state"], "declined");
    assert_eq!(declined["response_code"], "51");
    let (_, settle, _) = term(data, &["settle"]);
    assert_eq!(settle["balanced"], true);
    let (_, journal, _) = term(data, &["journal"]);
    let rows = journal.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| r["pending"] == false));
    assert!(
        rows.iter()
            .all(|r| r["pan"].as_str().is_none_or(|p| p.contains('*')))
    );
    // The host's ledger agrees.
    let out = Command::new(BIN)
        .args(["host-ledger", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    let l: Value = serde_json::from_slice(&out.stdout).unwrap();
    let txns = l["transactions"].as_array().unwrap();
    let approved = txns.iter().filter(|t| t["status"] == "approved").count();
    let voided = txns.iter().filter(|t| t["status"] == "voided").count();
    assert_eq!((approved, voided), (5, 1), "{l}");
}

#[test]
fn host_drop_fault_is_reversed_and_recover_reports_nothing_left() {
    let dir = tmp("drop");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &["--fault", "drop:1.0"]);
    let data = dir.join("t1");
    let data = data.as_path();
    let (code, _, err) = term(
        data,
        &[
            "init",
            "--host",
            &addr,
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--response-timeout",
            "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = term(data, &["signin"]);
    assert_ne!(code, 0);
    assert!(err.contains("no response"), "{err}");
    let (_, pending, _) = term(data, &["pending"]);
    assert_eq!(pending, Value::Array(vec![]));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tmp("bad");
    for args in [
        vec![
            "init",
            "--host",
            "127.0.0.1:1",
            "--tid",
            "123",
            "--mid",
            "123456789012345",
        ],
        vec!["sale", "--amount", "10"],
    ] {
        let (code, _, err) = term(&dir.join("x"), &args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let out = Command::new(BIN)
        .args(["host", "--listen", "127.0.0.1:0", "--fault", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn operators_lockout_refund_policy_and_support_bundle() {
    let dir = tmp("ops");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    let ok = |args: &[&str]| term_ok(data, args);
    init_terminal(data, &addr, &[]);
    ok(&[
        "login",
        "--operator",
        "00",
        "--password",
        "123456",
        "--new-password",
        "135790",
    ]);
    ok(&["operator", "add", "--id", "01"]);
    ok(&["signin"]);
    // A cashier: forced change, then five wrong passwords lock it.
    ok(&[
        "login",
        "--operator",
        "01",
        "--password",
        "0000",
        "--new-password",
        "2580",
    ]);
    for _ in 0..5 {
        let (code, v, _) = term(data, &["login", "--operator", "01", "--password", "9999"]);
        assert_eq!(code, 1);
        assert_eq!(v["error"]["category"], "operator");
    }
    let (code, v, _) = term(data, &["login", "--operator", "01", "--password", "2580"]);
    assert_eq!(code, 1, "locked even with the right password: {v}");
    // Only the supervisor unlocks.
    ok(&["login", "--operator", "00", "--password", "135790"]);
    ok(&["operator", "unlock", "--id", "01"]);
    ok(&["login", "--operator", "01", "--password", "2580"]);
    let (code, _, _) = term(data, &["operator", "unlock", "--id", "01"]);
    assert_eq!(code, 1, "a cashier cannot unlock");
    // Refund quote and policy: cumulative refunds never above the original.
    let sale = ok(&["sale", "--amount", "10000"]);
    let r = sale["reference"].as_str().unwrap().to_owned();
    let q = ok(&["refund-quote", "--ref", &r]);
    assert_eq!(q["refundable_remainder"], 10000);
    assert_eq!(q["denials"], Value::Array(vec![]));
    ok(&["refund", "--ref", &r, "--amount", "6000"]);
    let (code, v, _) = term(data, &["refund", "--ref", &r, "--amount", "4001"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        v["error"]["denials"][0]["rule"]["rule"], "exceeds_remainder",
        "{v}"
    );
    assert_eq!(v["error"]["money_state"], "not_charged");
    let before = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(
        before.matches("\"refund\"").count(),
        1,
        "the denied refund never reached the host"
    );
    // Unknown reference: clear error, nothing changes.
    let (code, v, _) = term(data, &["refund", "--ref", "999999999999", "--amount", "1"]);
    assert_eq!(code, 1);
    assert_eq!(v["error"]["code"], "reject.original_not_found");
    // Explain and the support bundle.
    let e = ok(&["explain", "--code", "51"]);
    assert_eq!(e["category"], "account");
    assert!(
        e["message_zh"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c > '\u{4e00}')
    );
    let bundle = dir.join("bundle.json");
    ok(&["support-bundle", "--out", bundle.to_str().unwrap()]);
    let text = std::fs::read_to_string(&bundle).unwrap();
    let b: Value = serde_json::from_str(&text).unwrap();
    assert!(
        b["trace"].as_array().unwrap().len() >= 4,
        "host exchanges are traced"
    );
    assert!(
        b["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "unlock")
    );
    assert!(
        !text.contains("6222021234567890128"),
        "no PAN in the bundle"
    );
    assert!(
        !text.contains("0123456789ABCDEFFEDCBA9876543210"),
        "no key in the bundle"
    );
}

#[test]
fn terminal_and_host_speak_an_acquirer_profile() {
    let dir = tmp("profile");
    let ledger = dir.join("ledger.json");
    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/unionpay-acquirer.toml"
    );
    let (_host, addr) = start_host(&ledger, &["--profile", profile]);
    let data = dir.join("t1");
    let data = data.as_path();
    let init = [
        "init",
        "--host",
        &addr,
        "--tid",
        "12345678",
        "--mid",
        "898100012340001",
        "--no-login",
        "--profile",
        profile,
    ];
    assert_eq!(term(data, &init).0, 0);
    assert_eq!(term(data, &["signin"]).0, 0);
    let (code, sale, err) = term(data, &["sale", "--amount", "1234"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sale["state"], "approved");
    let (code, _, err) = term(
        &dir.join("t2"),
        &[
            "init",
            "--host",
            &addr,
            "--tid",
            "12345678",
            "--mid",
            "898100012340001",
            "--profile",
            "/nonexistent.toml",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("profile"), "{err}");
}

#[test]
fn emptied_journal_is_refused_until_support_resets_it() {
    let dir = tmp("guard");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    init_terminal(data, &addr, &["--no-login"]);
    assert_eq!(term(data, &["signin"]).0, 0);
    let (code, sale, err) = term(data, &["sale", "--amount", "100"]);
    assert_eq!(code, 0, "{err}");
    let batch = sale["batch"].as_u64().unwrap();
    let journal = data.join("journal.db");
    std::fs::write(&journal, b"").unwrap();

    let (code, v, err) = term(data, &["journal"]);
    assert_eq!(code, 1, "{v} {err}");
    assert_eq!(v["error"]["code"], "terminal.journal_missing", "{v}");
    assert!(err.contains("do not reset without support"), "{err}");
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        0,
        "left as it was"
    );
    let (code, _, err) = term(data, &["journal-reset"]);
    assert_eq!(code, 2, "refused without --confirm");
    assert!(err.contains("--confirm"), "{err}");
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);

    let (code, v, err) = term(data, &["journal-reset", "--confirm"]);
    assert_eq!(code, 0, "{err}");
    let moved = v["moved"][0].as_str().unwrap();
    assert!(moved.contains("journal.db.lost-"), "{v}");
    assert!(std::path::Path::new(moved).exists());
    assert_eq!(v["batch"].as_u64(), Some(batch + 1), "{v}");
    assert_eq!(v["generation"], 1);
    assert_eq!(term(data, &["signin"]).0, 0);
    let (code, after, err) = term(data, &["sale", "--amount", "200"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        after["stan"].as_u64().unwrap() > 1000,
        "the STAN continues after the old reservation: {after}"
    );
}

#[test]
fn settings_change_is_a_supervisor_act_and_audited() {
    let dir = tmp("settings");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    let ok = |args: &[&str]| term_ok(data, args);
    init_terminal(data, &addr, &[]);
    let file = dir.join("policy.json");
    std::fs::write(
        &file,
        r#"{"require_login": true,
            "refund_policy": {"max_days_since_original": 7, "supervisor_approval_above": 1000}}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    // Login is required: nobody logged in, then a cashier, may not change the settings.
    let (code, v, _) = term(data, &["settings", "--file", file]);
    assert_eq!(code, 1, "{v}");
    ok(&[
        "login",
        "--operator",
        "00",
        "--password",
        "123456",
        "--new-password",
        "135790",
    ]);
    ok(&["operator", "add", "--id", "01"]);
    ok(&[
        "login",
        "--operator",
        "01",
        "--password",
        "0000",
        "--new-password",
        "2580",
    ]);
    let (code, v, _) = term(data, &["settings", "--file", file]);
    assert_eq!(code, 1, "a cashier cannot change the settings: {v}");
    assert_eq!(v["error"]["category"], "operator", "{v}");
    let shown = ok(&["settings"]);
    assert_eq!(
        shown["refund_policy"]["max_days_since_original"], 30,
        "unchanged: {shown}"
    );
    // The supervisor may.
    ok(&["login", "--operator", "00", "--password", "135790"]);
    let v = ok(&["settings", "--file", file]);
    assert_eq!(v["refund_policy"]["max_days_since_original"], 7, "{v}");
    assert_eq!(v["refund_policy"]["supervisor_approval_above"], 1000, "{v}");
    assert_eq!(
        ok(&["settings"])["refund_policy"]["max_days_since_original"],
        7
    );

    let bundle = dir.join("bundle.json");
    ok(&["support-bundle", "--out", bundle.to_str().unwrap()]);
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let audit = b["audit"].as_array().unwrap();
    let changed: Vec<&Value> = audit.iter().filter(|a| a["action"] == "settings").collect();
    // `init` stored the first settings (login not yet required), then the supervisor's change.
    let last = changed
        .iter()
        .find(|a| a["operator"] == "00")
        .expect("{audit:?}");
    let detail = last["detail"].as_str().unwrap();
    assert!(
        detail.contains("window=7d") && detail.contains("supervisor_above=1000"),
        "{detail}"
    );
    assert!(!detail.contains("135790"), "no password in the audit row");
    assert_eq!(
        audit
            .iter()
            .filter(|a| a["action"] == "settings_denied")
            .count(),
        2,
        "both refusals are audited: {audit:?}"
    );
}

#[test]
fn params_download_show_and_set_from_a_file() {
    let dir = tmp("params");
    let (_host, addr) = start_host(&dir.join("ledger.json"), &[]);
    let data = dir.join("t");
    let data = data.as_path();
    init_terminal(data, &addr, &["--no-login"]);
    let shown = term_ok(data, &["params", "show"]);
    assert_eq!(shown, serde_json::json!({"aids": [], "ca_keys": []}));

    let v = term_ok(data, &["params", "download"]);
    let aids: Vec<&str> = v["aids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["aid"].as_str().unwrap())
        .collect();
    assert_eq!(
        aids,
        [
            "A0000000031010",
            "A0000000041010",
            "A000000333010101",
            "A000000333010102"
        ]
    );
    assert_eq!(v["aids"][2]["contactless_cvm_limit"], 100_000);
    assert_eq!(v["ca_keys"][0]["rid"], "A000000003");
    assert_eq!(v["ca_keys"][0]["index"], "92");
    assert_eq!(v["ca_keys"][1]["modulus_bits"], 1984);

    // Kept in the journal: a new process shows the full set.
    let shown = term_ok(data, &["params", "show"]);
    assert_eq!(shown["aids"].as_array().unwrap().len(), 4);
    assert_eq!(
        shown["ca_keys"][0]["checksum"],
        "429C954A3859CEF91295F663C963E582ED6EB253"
    );

    // `set` takes what `show` prints; a wrong checksum is refused and changes nothing.
    let mut edited = shown.clone();
    edited["aids"].as_array_mut().unwrap().truncate(1);
    let file = dir.join("params.json");
    std::fs::write(&file, edited.to_string()).unwrap();
    term_ok(data, &["params", "set", "--file", file.to_str().unwrap()]);
    assert_eq!(term_ok(data, &["params", "show"]), edited);
    let mut bad = edited.clone();
    bad["ca_keys"][0]["checksum"] = "0000000000000000000000000000000000000000".into();
    std::fs::write(&file, bad.to_string()).unwrap();
    let (code, v, err) = term(data, &["params", "set", "--file", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{v}");
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(term_ok(data, &["params", "show"]), edited);
}

#[test]
fn chip_swipe_and_fallback_through_the_simulated_certified_kernel_reconcile() {
    let dir = tmp("chip");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    let init = [
        "init",
        "--host",
        &addr,
        "--tid",
        "12345678",
        "--mid",
        "123456789012345",
        "--no-login",
    ];
    assert_eq!(term(data, &init).0, 0);
    assert_eq!(term(data, &["signin"]).0, 0);
    let sale = |args: &[&str]| {
        let mut a = vec!["sale", "--amount", "1234"];
        a.extend_from_slice(args);
        term(data, &a)
    };
    // Inserted UnionPay card: the host verifies the ARQC, the card answers TC.
    let (code, chip, err) = sale(&[
        "--card",
        "unionpay",
        "--via",
        "chip",
        "--idempotency-key",
        "chip-1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(chip["state"], "approved", "{chip}");
    assert_eq!(chip["entry_mode"], "chip");
    assert_eq!(chip["aid"], "A000000333010101");
    assert_eq!(chip["tc"].as_str().map(str::len), Some(16), "{chip}");
    assert_eq!(chip["declined_by_card"], false);
    // A retry with the same key: the recorded outcome, with its AID and TC, and no card read.
    let (code, again, err) = sale(&[
        "--card",
        "unionpay",
        "--via",
        "chip",
        "--idempotency-key",
        "chip-1",
    ]);
    assert_eq!(code, 0, "{again} {err}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(
        again["pending"], false,
        "the TC upload waiting is no reversal: {again}"
    );
    assert_eq!(again["reference"], chip["reference"]);
    assert_eq!((&again["aid"], &again["tc"]), (&chip["aid"], &chip["tc"]));
    // The printed receipt carries the AID and the TC.
    let out = Command::new(BIN)
        .arg("terminal")
        .arg("--data")
        .arg(data)
        .args(["receipt", "--ref", chip["reference"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("A000000333010101"), "{text}");
    assert!(text.contains(chip["tc"].as_str().unwrap()), "{text}");
    // The card declines after the host approved: reversed.
    let (code, declined, err) = sale(&[
        "--card",
        "visa",
        "--via",
        "chip",
        "--card-decides",
        "decline",
    ]);
    assert_eq!(code, 3, "declined, no money moved: {err}");
    assert_eq!(declined["state"], "reversed", "{declined}");
    assert_eq!(declined["money_state"], "not_charged", "{declined}");
    assert_eq!(declined["declined_by_card"], true);
    assert!(declined.get("tc").is_none_or(Value::is_null), "{declined}");
    // A swiped chip card is refused: insert it.
    let (code, refused, _) = sale(&["--card", "visa", "--via", "swipe"]);
    assert_eq!(code, 1, "{refused}");
    // Its chip cannot be read: the swipe is a fallback.
    let (code, fallback, err) = sale(&["--card", "mastercard", "--via", "swipe", "--chip-fails"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fallback["state"], "approved", "{fallback}");
    assert_eq!(fallback["entry_mode"], "fallback");
    // The TC upload goes out before the next command; then nothing is pending.
    let (code, _, err) = term(data, &["recover"]);
    assert_eq!(code, 0, "{err}");
    let (_, pending, _) = term(data, &["pending"]);
    assert_eq!(pending, Value::Array(vec![]));
    // The host's ledger agrees: the chip sale with its TC, the declined one reversed, the
    // fallback approved, nothing for the refused swipe.
    let out = Command::new(BIN)
        .args(["host-ledger", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    let l: Value = serde_json::from_slice(&out.stdout).unwrap();
    let txns = l["transactions"].as_array().unwrap();
    let status: Vec<&str> = txns.iter().filter_map(|t| t["status"].as_str()).collect();
    assert_eq!(status, ["approved", "reversed", "approved"], "{l}");
    assert_eq!(txns[0]["tc"], chip["tc"], "{l}");
}

#[test]
fn balance_prints_field_54_decoded() {
    let dir = tmp("balance");
    let (_host, addr) = start_host(&dir.join("ledger.json"), &[]);
    let data = dir.join("t1");
    init_terminal(&data, &addr, &["--no-login"]);
    term_ok(&data, &["signin"]);
    let v = term_ok(&data, &["balance"]);
    // The simulator answers 1001156C000000100000: savings account (10), ledger balance (01),
    // CNY (156), credit (C), 1000.00.
    assert_eq!(
        v["balances"],
        serde_json::json!([{
            "account_type": "10",
            "type": "01",
            "type_name": "ledger balance",
            "currency": "156",
            "amount": 100000
        }]),
        "{v}"
    );
    assert_eq!(v["field54"], "1001156C000000100000", "{v}");
}

/// `smartpos host` on a fixed address (to restart it where the terminal expects it).
fn host_at(listen: &str, ledger: &std::path::Path, extra: &[&str]) -> common::Host {
    common::start_host_at(listen, ledger, extra).0
}

#[test]
fn host_restarted_with_its_ledger_still_knows_the_terminal() {
    let dir = tmp("host-restart");
    let ledger = dir.join("ledger.json");
    let listen = common::free_addr();
    let data = dir.join("t1");
    let host = host_at(&listen, &ledger, &[]);
    init_terminal(&data, &listen, &["--no-login", "--response-timeout", "1"]);
    term_ok(&data, &["signin"]);
    drop(host);
    let host = host_at(&listen, &ledger, &["--fault", "drop"]);
    let (code, v, _) = term(&data, &["sale", "--amount", "1000"]);
    assert_eq!(code, 4, "being reversed: {v}");
    assert_eq!(v["state"], "reversing", "{v}");
    drop(host);
    // Restarted with the same ledger file: the terminal's keys are still known.
    let _host = host_at(&listen, &ledger, &[]);
    let v = term_ok(&data, &["recover"]);
    assert_eq!(v["delivered"], 1, "{v}");
    assert_eq!(v["remaining"], 0, "{v}");
    assert_eq!(v["pending"], serde_json::json!([]), "{v}");
    // ... without signing in again: the only sign-in (0800) in the trace is the first one.
    let bundle = dir.join("bundle.json");
    term_ok(
        &data,
        &["support-bundle", "--out", bundle.to_str().unwrap()],
    );
    let bundle: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let sign_ins = bundle["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["direction"] == "send" && l["text"].as_str().unwrap().contains(" 0800 "))
        .count();
    assert_eq!(sign_ins, 1, "{bundle}");
}

#[test]
fn recover_says_why_an_item_stayed_pending() {
    let dir = tmp("recover-why");
    let ledger = dir.join("ledger.json");
    let listen = common::free_addr();
    let data = dir.join("t1");
    let host = host_at(&listen, &ledger, &[]);
    init_terminal(&data, &listen, &["--no-login", "--response-timeout", "1"]);
    term_ok(&data, &["signin"]);
    drop(host);
    let host = host_at(&listen, &ledger, &["--fault", "drop"]);
    assert_eq!(
        term(&data, &["sale", "--amount", "1000"]).0,
        4,
        "being reversed"
    );
    drop(host);
    // A host with another master key: it answers 97 (it never saw this terminal sign in), and
    // the terminal's own sign-in gets keys that do not check.
    let _host = host_at(
        &listen,
        &dir.join("other-ledger.json"),
        &["--tmk", "11111111111111111111111111111111"],
    );
    let (code, v, _) = term(&data, &["recover"]);
    assert_eq!(code, 4, "still pending: {v}");
    assert_eq!(v["remaining"], 1, "{v}");
    let item = &v["pending"][0];
    assert_eq!(item["kind"], "reversal", "{v}");
    assert_eq!(item["last_response_code"], "97", "{v}");
    assert_eq!(item["diagnosis"], "host.terminal_not_registered", "{v}");
    assert!(
        item["why"]
            .as_str()
            .unwrap_or_default()
            .contains("Sign in again"),
        "{v}"
    );
}

/// Unix seconds of a `YYYY-MM-DDThh:mm:ss±hh:mm` text (days from civil, the offset applied).
fn unix_of(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let sign = if &text[19..20] == "-" { -1 } else { 1 };
    let offset = sign * (n(20..22) * 3600 + n(23..25) * 60);
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19) - offset
}

#[test]
fn init_utc_offset_gives_local_time_on_the_wire_the_receipt_the_json_and_the_bundle() {
    let dir = tmp("utc-offset");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let v = init_terminal(&data, &addr, &["--no-login", "--utc-offset", "+08:00"]);
    assert_eq!(v["utc_offset"], "+08:00", "{v}");
    term_ok(&data, &["signin"]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sale = term_ok(&data, &["sale", "--amount", "1234"]);
    let local = sale["local_time"].as_str().unwrap_or_default().to_owned();
    assert!(local.ends_with("+08:00"), "{sale}");
    // The same instant as the machine's clock, written in UTC+8.
    assert!((unix_of(&local) - before).abs() <= 5, "{local} vs {before}");
    // Fields 12/13 are local: the host booked the local date (MMDD).
    let host = common::term_ok_ledger(&ledger);
    assert_eq!(
        host["transactions"][0]["date"].as_str().unwrap(),
        format!("{}{}", &local[5..7], &local[8..10]),
        "{host}"
    );
    // The receipt prints the local time with its offset, and no merchant name (none was given,
    // so the merchant id is not printed as one).
    let out = Command::new(BIN)
        .args(["terminal", "--data"])
        .arg(&data)
        .args([
            "receipt",
            "--ref",
            sale["reference"].as_str().unwrap(),
            "--lang",
            "en",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let shown = format!(
        "{} {} +08:00",
        local[..10].replace('-', "/"),
        &local[11..19]
    );
    assert!(text.contains(&shown), "{shown} in\n{text}");
    assert!(!text.contains("MERCHANT NAME"), "{text}");
    assert!(
        text.contains("123456789012345"),
        "the merchant id still prints: {text}"
    );
    // The support bundle says the offset and gives local times.
    let bundle = dir.join("bundle.json");
    term_ok(
        &data,
        &["support-bundle", "--out", bundle.to_str().unwrap()],
    );
    let b: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(b["terminal"]["utc_offset"], "+08:00", "{b}");
    assert_eq!(b["transactions"][0]["local_time"], local.as_str(), "{b}");
    assert!(
        b["trace"][0]["at"]
            .as_str()
            .unwrap_or_default()
            .ends_with("+08:00"),
        "{}",
        b["trace"][0]
    );
}

#[test]
fn init_takes_the_machines_utc_offset_by_default() {
    let dir = tmp("utc-default");
    let data = dir.join("t1");
    let v = init_terminal(&data, "127.0.0.1:9", &["--no-login"]);
    // What `date +%z` says, as +hh:mm.
    let z = Command::new("date").arg("+%z").output().unwrap();
    let z = String::from_utf8_lossy(&z.stdout).trim().to_owned();
    assert_eq!(v["utc_offset"], format!("{}:{}", &z[..3], &z[3..]), "{v}");
    let (code, _, err) = term(
        &data,
        &[
            "init",
            "--host",
            "h:1",
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--utc-offset",
            "+8",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--utc-offset"), "{err}");
}

/// Issue 20: a refund advice (0220) carried three spaces in field 63 while the sale, void and
/// completion carried the operator the command named. The host's ledger shows the operator
/// code each request carried.
#[test]
fn refund_advice_carries_the_named_operator_in_field_63() {
    let dir = tmp("op63");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    init_terminal(data, &addr, &["--no-login"]);
    term_ok(data, &["signin"]);
    let sale = term_ok(data, &["sale", "--amount", "5000", "--operator", "07"]);
    let r = sale["reference"].as_str().unwrap().to_owned();
    term_ok(
        data,
        &[
            "refund",
            "--ref",
            &r,
            "--amount",
            "1000",
            "--operator",
            "07",
        ],
    );
    let l = common::term_ok_ledger(&ledger);
    let txns = l["transactions"].as_array().unwrap();
    let operator_of = |kind: &str| {
        txns.iter()
            .find(|t| t["kind"] == kind)
            .map(|t| t["operator"].clone())
            .unwrap()
    };
    assert_eq!(operator_of("sale"), "07", "{l}");
    assert_eq!(
        operator_of("refund"),
        "07",
        "the refund advice's field 63: {l}"
    );
}

/// Issue 20: a host that answers 95 to the settlement gets the batch upload and the end of
/// batch, and the batch closes (before: the settlement failed with 95 and settling again only
/// sent the 0500 again).
#[test]
fn settle_against_a_host_that_answers_95_uploads_the_batch() {
    let dir = tmp("settle95");
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &["--settlement-answer", "always-95"]);
    let data = dir.join("t1");
    let data = data.as_path();
    init_terminal(data, &addr, &["--no-login"]);
    term_ok(data, &["signin"]);
    let a = term_ok(data, &["sale", "--amount", "1000"]);
    term_ok(data, &["sale", "--amount", "2500"]);
    let s = term_ok(data, &["settle"]);
    assert_eq!(s["balanced"], false, "{s}");
    assert_eq!(s["uploaded"], 2, "{s}");
    assert_eq!(s["debit_count"], 2, "{s}");
    let batch = s["settled_batch"].as_u64().unwrap();
    let l = common::term_ok_ledger(&ledger);
    let uploads = l["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 2, "{l}");
    assert!(
        uploads
            .iter()
            .all(|u| u["known"] == true && u["batch"] == batch),
        "{l}"
    );
    assert_eq!(uploads[0]["stan"], a["stan"], "{l}");
    assert_eq!(uploads[0]["pan_masked"], "622202*********0128", "{l}");
    assert!(
        !std::fs::read_to_string(&ledger)
            .unwrap()
            .contains("6222021234567890128")
    );
    // The batch moved on: the next settlement is of the next batch.
    term_ok(data, &["sale", "--amount", "300"]);
    let s = term_ok(data, &["settle"]);
    assert_eq!(s["settled_batch"].as_u64(), Some(batch + 1), "{s}");
    assert_eq!(s["uploaded"], 1, "{s}");
}

#[test]
fn resolve_reversal_ends_a_refused_reversal_with_the_supervisor_and_unblocks_sales() {
    let dir = tmp("resolve-reversal");
    let ledger = dir.join("ledger.json");
    let listen = common::free_addr();
    let data = dir.join("t1");
    let host = host_at(&listen, &ledger, &[]);
    init_terminal(&data, &listen, &["--no-login", "--response-timeout", "1"]);
    term_ok(&data, &["signin"]);
    term_ok(
        &data,
        &[
            "login",
            "--operator",
            "00",
            "--password",
            "123456",
            "--new-password",
            "135790",
        ],
    );
    term_ok(&data, &["logout"]);
    drop(host);
    let host = host_at(&listen, &ledger, &["--fault", "drop"]);
    let (code, sale, _) = term(&data, &["sale", "--amount", "1000"]);
    assert_eq!(code, 4, "being reversed: {sale}");
    let reference = sale["reference"].as_str().unwrap().to_owned();
    drop(host);
    let resolve = |password: &str| {
        term(
            &data,
            &[
                "resolve-reversal",
                "--ref",
                &reference,
                "--supervisor-password",
                password,
                "--acquirer-ref",
                "ACQ-PHONE-4711",
                "--note",
                "settled by phone",
            ],
        )
    };
    // A host that refuses every reversal (97: it never saw this terminal sign in).
    let other = host_at(
        &listen,
        &dir.join("other-ledger.json"),
        &["--tmk", "11111111111111111111111111111111"],
    );
    let (code, v, _) = term(&data, &["recover"]);
    assert_eq!(code, 4, "still pending: {v}");
    drop(other);
    // Wrong supervisor password: refused, still pending.
    let (code, v, _) = resolve("000000");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["category"], "operator", "{v}");
    assert_eq!(term_ok(&data, &["pending"]).as_array().unwrap().len(), 1);
    // A reference with no pending reversal: a clear error.
    let (code, v, err) = term(
        &data,
        &[
            "resolve-reversal",
            "--ref",
            "000000000000",
            "--supervisor-password",
            "135790",
            "--acquirer-ref",
            "X",
        ],
    );
    assert_eq!(code, 1, "{v}");
    assert!(
        err.contains("no pending reversal") || v.to_string().contains("no pending reversal"),
        "{v} {err}"
    );
    // The supervisor's resolution.
    let (code, v, _) = resolve("135790");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["state"], "reversal_resolved_by_supervisor", "{v}");
    assert_eq!(v["pending"], 0, "{v}");
    assert_eq!(term_ok(&data, &["pending"]), serde_json::json!([]));
    let journal = term_ok(&data, &["journal"]);
    let rec = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reference"] == reference.as_str())
        .unwrap()
        .clone();
    assert_eq!(rec["state"], "reversal_resolved_by_supervisor", "{rec}");
    let bundle = dir.join("bundle.json");
    term_ok(
        &data,
        &["support-bundle", "--out", bundle.to_str().unwrap()],
    );
    let b: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let audit = b["audit"].as_array().unwrap();
    assert!(
        audit.iter().any(|a| a["action"] == "reversal_resolved"
            && a["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("ACQ-PHONE-4711")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|a| a["action"] == "approve_failed"),
        "the wrong password is on record: {audit:?}"
    );
    // Sales go out again.
    let _host = host_at(&listen, &ledger, &[]);
    let (code, v, _) = term(&data, &["sale", "--amount", "700"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
}
