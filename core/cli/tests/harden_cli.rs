//! Issue 19 (hardening) through the `smartpos` command, one process per command as a user runs
//! it: settings files that change only what they name, outcome JSON and exit codes, file modes
//! of the data directory, the supervisor's service-desk unlock, and mutual TLS.

// A test binary: helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{init_terminal, start_host, term, term_ok, tmp};
use serde_json::Value;
use std::path::Path;

/// Logs the supervisor in (first login: the forced change to `135790`).
fn supervisor_first_login(data: &Path) {
    term_ok(
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
}

/// The audit rows of the support bundle, newest first.
fn audit(data: &Path, dir: &Path) -> Vec<Value> {
    let bundle = dir.join("bundle.json");
    term_ok(data, &["support-bundle", "--out", bundle.to_str().unwrap()]);
    let b: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    b["audit"].as_array().unwrap().clone()
}

#[test]
fn settings_file_changes_only_what_it_names_and_names_what_is_wrong() {
    let dir = tmp("settings-partial");
    let (_host, addr) = start_host(&dir.join("ledger.json"), &[]);
    let data = dir.join("t1");
    let data = data.as_path();
    init_terminal(data, &addr, &[]);
    supervisor_first_login(data);
    term_ok(data, &["signin"]);
    let file = dir.join("s.json");
    let set = |json: &str| {
        std::fs::write(&file, json).unwrap();
        term(data, &["settings", "--file", file.to_str().unwrap()])
    };

    // A first change sets two refund rules.
    let (code, v, err) = set(
        r#"{"refund_policy": {"max_days_since_original": 7, "supervisor_approval_above": 1000}}"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["require_login"], true, "{v}");
    assert_eq!(v["refund_policy"]["max_days_since_original"], 7, "{v}");
    assert_eq!(
        v["changed"],
        serde_json::json!([
            "refund_policy.max_days_since_original",
            "refund_policy.supervisor_approval_above"
        ]),
        "{v}"
    );

    // `{}` names nothing and changes nothing: login stays required.
    let before = term_ok(data, &["policy", "show"]);
    let (code, v, err) = set("{}");
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["changed"], serde_json::json!([]), "{v}");
    assert_eq!(term_ok(data, &["policy", "show"]), before);
    // A file naming one rule keeps every other one.
    let (code, v, err) = set(r#"{"refund_policy": {"max_single_refund": 5000}}"#);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["refund_policy"]["max_days_since_original"], 7, "{v}");
    assert_eq!(v["refund_policy"]["supervisor_approval_above"], 1000, "{v}");
    assert_eq!(v["refund_policy"]["max_single_refund"], 5000, "{v}");
    assert_eq!(v["require_login"], true, "{v}");
    term_ok(data, &["logout"]);
    let (code, v, _) = term(
        data,
        &["sale", "--amount", "100", "--operator", "77"],
    );
    assert_eq!(code, 1, "nobody logged in: still refused: {v}");
    assert_eq!(v["error"]["code"], "operators.not_logged_in", "{v}");
    term_ok(data, &["login", "--operator", "00", "--password", "135790"]);

    // Unknown and malformed fields: an error naming the field, exit 2, nothing changes.
    let shown = term_ok(data, &["policy", "show"]);
    for (json, field) in [
        (r#"{"requre_login": false}"#, "requre_login"),
        (
            r#"{"refund_policy": {"max_day": 3}}"#,
            "refund_policy.max_day",
        ),
        (r#"{"require_login": "no"}"#, "require_login"),
        (
            r#"{"refund_policy": {"max_days_since_original": -1}}"#,
            "refund_policy.max_days_since_original",
        ),
        (r#"{"refund_policy": 7}"#, "refund_policy"),
        (
            r#"{"refund_policy": {"fee": {"percent": {"basis_points": 20000}}}}"#,
            "refund_policy.fee",
        ),
        (
            r#"{"operators": {"max_failed_attempts": 0}}"#,
            "operators.max_failed_attempts",
        ),
        // Validated as a whole: the good half of a file with one bad field is not applied.
        (
            r#"{"refund_policy": {"max_days_since_original": 3}, "operators": {"iterations": 5}}"#,
            "operators.iterations",
        ),
        ("[1, 2]", "settings"),
        ("{\"require_login\": tru", "s.json"),
    ] {
        let (code, v, err) = set(json);
        assert_eq!(code, 2, "{json}: {v} {err}");
        assert!(err.contains(field), "{json}: the error names {field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(term_ok(data, &["policy", "show"]), shown, "{json}");
    }

    // Turning login off is the supervisor's act, says so, and is audited.
    term_ok(
        data,
        &["operator", "add", "--id", "01"],
    );
    term_ok(
        data,
        &[
            "login",
            "--operator",
            "01",
            "--password",
            "0000",
            "--new-password",
            "2580",
        ],
    );
    let (code, v, _) = set(r#"{"require_login": false}"#);
    assert_eq!(code, 1, "a cashier cannot turn login off: {v}");
    assert_eq!(v["error"]["code"], "operators.supervisor_required", "{v}");
    assert_eq!(term_ok(data, &["policy", "show"])["require_login"], true);
    term_ok(data, &["login", "--operator", "00", "--password", "135790"]);
    let (code, v, err) = set(r#"{"require_login": false}"#);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["require_login"], false, "{v}");
    assert_eq!(v["changed"], serde_json::json!(["require_login"]), "{v}");
    assert!(
        v["warning"]["en"]
            .as_str()
            .unwrap_or_default()
            .contains("no longer need a logged-in operator"),
        "{v}"
    );
    assert!(!v["warning"]["zh"].as_str().unwrap_or_default().is_empty());
    let rows = audit(data, &dir);
    let off = rows
        .iter()
        .find(|a| a["action"] == "login_disabled")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(off["operator"], "00", "{off}");
    assert!(
        off["detail"]
            .as_str()
            .unwrap()
            .contains("require_login=false"),
        "{off}"
    );
}
