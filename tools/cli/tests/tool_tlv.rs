//! `smartpos tool tlv` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::process::{Command, Output};

fn smartpos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartpos"))
        .args(args)
        .output()
        .expect("run smartpos")
}

fn ok_json(args: &[&str]) -> Value {
    let out = smartpos(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn fails_with_one_line(args: &[&str]) -> String {
    let out = smartpos(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

const PPSE: &str = "6F34840E325041592E5359532E4444463031A522BF0C1F611D4F07A0000000031010500B\
                    56495341204352454449548701019F2A0103";

#[test]
fn decode_ppse_tree() {
    let v = ok_json(&["tool", "tlv", "decode", PPSE]);
    let app = &v[0]["children"][1]["children"][0]["children"][0];
    assert_eq!(v[0]["tag"], "6F");
    assert_eq!(v[0]["name"], "File Control Information (FCI) Template");
    assert_eq!(
        v[0]["children"][0],
        json!({"tag": "84", "name": "Dedicated File (DF) Name", "length": 14,
               "value": "325041592E5359532E4444463031"})
    );
    assert_eq!(app["tag"], "61");
    assert_eq!(
        app["children"][0],
        json!({"tag": "4F", "name": "Application Identifier (AID) - card", "length": 7,
               "value": "A0000000031010"})
    );
    assert_eq!(app["children"][1]["text"], "VISA CREDIT");
    assert_eq!(app["children"][3]["tag"], "9F2A");
}

#[test]
fn sensitive_values_masked_unless_asked() {
    // 70 { 5A PAN, 5F20 "MTIP/TEST CARD" }, spaced as pasted from a trace.
    let hex = "70 1B 5A 08 5413330089010434 5F20 0E 4D5449502F544553542043415244";
    let v = ok_json(&["tool", "tlv", "decode", hex]);
    let pan = &v[0]["children"][0];
    assert_eq!(pan["value"], "541333******0434");
    assert_eq!(pan["masked"], true);
    let name = &v[0]["children"][1];
    assert_eq!(name["value"], "****");
    assert!(name.get("text").is_none());
    assert!(!v.to_string().contains("5413330089010434"));

    let clear = ok_json(&["tool", "tlv", "decode", "--unmasked", hex]);
    assert_eq!(clear[0]["children"][0]["value"], "5413330089010434");
    assert_eq!(clear[0]["children"][1]["text"], "MTIP/TEST CARD");
    assert!(clear[0]["children"][0].get("masked").is_none());
}

#[test]
fn unknown_tag_has_null_name() {
    let v = ok_json(&["tool", "tlv", "decode", "DF7F0101"]);
    assert_eq!(
        v,
        json!([{"tag": "DF7F", "name": null, "length": 1, "value": "01"}])
    );
}

#[test]
fn dol_entries() {
    let v = ok_json(&["tool", "tlv", "dol", "9F66049F02069F37045F2A02"]);
    assert_eq!(v.as_array().unwrap().len(), 4);
    assert_eq!(
        v[1],
        json!({"tag": "9F02", "name": "Amount, Authorised (Numeric)", "length": 6})
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    assert!(fails_with_one_line(&["tool", "tlv", "decode", "6F0"]).contains("odd length"));
    assert!(fails_with_one_line(&["tool", "tlv", "decode", "ZZ"]).contains("hex"));
    let e = fails_with_one_line(&["tool", "tlv", "decode", "9F020600"]);
    assert!(e.contains("incomplete"), "{e}");
    let e = fails_with_one_line(&["tool", "tlv", "decode", "508001"]);
    assert!(e.contains("indefinite"), "{e}");
    // The PAN in a broken object never reaches the error text.
    let e = fails_with_one_line(&["tool", "tlv", "decode", "5A0A5413330089010434"]);
    assert!(!e.contains("5413330089010434"), "{e}");
    let e = fails_with_one_line(&["tool", "tlv", "dol", "9F02069F03"]);
    assert!(e.contains("dol: incomplete"), "{e}");
}
