//! The shipped key-option profiles end to end through the `smartpos` command (issue 18): for
//! TDES DUKPT, AES DUKPT and SM4 working keys, `smartpos host --profile P` and `smartpos
//! terminal init --profile P` with their TEST keys, then a keyed sale and a PIN sale
//! (`--card pin --pin 1234`) go through; a wrong PIN is declined by the host, which can only
//! decrypt the block under the right key; the DUKPT counter survives processes. TDES working
//! keys (the default `cup` profile and the TDES profiles) are checked the same way: the host
//! keeps the PIK of the block it issued, also across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    free_addr, init_terminal, start_host, start_host_at, term, term_ok, term_ok_ledger, tmp,
};

fn profile(name: &str) -> String {
    format!("{}/../../profiles/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// Host and terminal on `name`, signed in: (host, data dir holder, ledger path, init JSON).
fn set_up(
    name: &str,
) -> (
    common::Host,
    smartpos_tests::TempDir,
    std::path::PathBuf,
    serde_json::Value,
) {
    let dir = tmp(&format!("keys-{name}"));
    let ledger = dir.join("ledger.json");
    let p = profile(name);
    let (host, addr) = start_host(&ledger, &["--profile", &p]);
    let data = dir.join("t1");
    let init = term_ok(
        &data,
        &[
            "init",
            "--host",
            &addr,
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--no-login",
            "--profile",
            &p,
        ],
    );
    term_ok(&data, &["signin"]);
    (host, dir, ledger, init)
}

fn sales_go_through(name: &str) -> (smartpos_tests::TempDir, std::path::PathBuf) {
    let (_host, dir, ledger, _) = set_up(name);
    let data = dir.join("t1");
    let keyed = term_ok(&data, &["sale", "--amount", "1234"]);
    assert_eq!(keyed["state"], "approved", "{name} keyed: {keyed}");
    let pin = term_ok(
        &data,
        &["sale", "--amount", "2000", "--card", "pin", "--pin", "1234"],
    );
    assert_eq!(pin["state"], "approved", "{name} PIN: {pin}");
    // The host decrypted the block: another PIN is refused with 55.
    let (_, wrong, _) = term(
        &data,
        &["sale", "--amount", "3000", "--card", "pin", "--pin", "4321"],
    );
    assert_eq!(wrong["state"], "declined", "{name} wrong PIN: {wrong}");
    assert_eq!(wrong["response_code"], "55", "{name} wrong PIN: {wrong}");
    let l = term_ok_ledger(&ledger);
    let approved = l["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "approved")
        .count();
    assert_eq!(approved, 2, "{name}: {l}");
    (dir, data)
}

#[test]
fn tdes_dukpt_profile_sells_with_its_test_keys() {
    let (_dir, data) = sales_go_through("dukpt-tdes");
    // Only the DUKPT registers are stored, never the initial key.
    let state = std::fs::read(data.join("secrets/dukpt_state")).unwrap();
    let ipek = smartpos_types::hex::decode("6AC292FAA1315B4D858AB3A3D7D5933A").unwrap();
    assert!(!state.windows(ipek.len()).any(|w| w == ipek.as_slice()));
}

#[test]
fn aes_dukpt_profile_sells_with_its_test_keys() {
    sales_go_through("dukpt-aes");
}

#[test]
fn sm4_profile_sells_with_national_algorithm_keys() {
    sales_go_through("unionpay-sm4");
}

#[test]
fn dukpt_init_says_what_it_loaded_and_overrides_need_a_dukpt_profile() {
    let (_host, dir, _, init) = set_up("dukpt-tdes");
    assert_eq!(init["dukpt"]["scheme"], "dukpt-tdes");
    assert_eq!(init["dukpt"]["initial_ksn"], "FFFF9876543210E00000");
    assert_eq!(init["dukpt"]["initial_key_from"], "TEST initial key");
    assert!(!init.to_string().contains("6AC292FA"), "{init}");
    // --ipek on a profile without DUKPT is refused.
    let (code, _, err) = term(
        &dir.join("t2"),
        &[
            "init",
            "--host",
            "127.0.0.1:9",
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--ipek",
            "6AC292FAA1315B4D858AB3A3D7D5933A",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--ipek"), "{err}");
}

#[test]
fn a_terminal_loaded_with_another_initial_key_is_refused_by_the_host() {
    // The host derives from the TEST BDK; an initial key from another BDK gives MACs it
    // cannot verify: it answers A0 without a MAC (it has no key to MAC with), which the
    // terminal cannot trust either: the sale is not approved and its reversal is pending.
    let dir = tmp("keys-other-ipek");
    let ledger = dir.join("ledger.json");
    let p = profile("dukpt-tdes");
    let (_host, addr) = start_host(&ledger, &["--profile", &p]);
    let data = dir.join("t1");
    term_ok(
        &data,
        &[
            "init",
            "--host",
            &addr,
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--no-login",
            "--profile",
            &p,
            "--ipek",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    term_ok(&data, &["signin"]);
    let (_, v, _) = term(&data, &["sale", "--amount", "1234"]);
    assert_ne!(v["state"], "approved", "{v}");
    assert_eq!(v["pending"], true, "{v}");
    // The host recorded nothing (no ledger change, so no ledger file).
    assert!(!ledger.exists());
}

#[test]
fn a_used_up_dukpt_counter_stops_the_terminal_with_a_clear_error() {
    let (_host, dir, ledger, _) = set_up("dukpt-tdes");
    let data = dir.join("t1");
    // Move the stored device past its last counter (0x1FF800): the byte form's counter is
    // bytes 13..17, and a device past the end keeps 0x200000 there.
    let path = data.join("secrets/dukpt_state");
    let mut state = std::fs::read(&path).unwrap();
    state[13..17].copy_from_slice(&0x20_0000u32.to_be_bytes());
    std::fs::write(&path, &state).unwrap();
    let (code, v, err) = term(&data, &["sale", "--amount", "1234"]);
    assert_ne!(code, 0, "{v}");
    let d = &v["error"];
    assert_eq!(d["code"], "op.dukpt_exhausted", "{v} {err}");
    assert_eq!(d["money_state"], "not_charged", "{v}");
    assert!(
        d["message_zh"].as_str().unwrap().contains("初始密钥"),
        "{v}"
    );
    assert!(
        d["message_en"].as_str().unwrap().contains("initial key"),
        "{v}"
    );
    // Nothing was journaled or sent.
    assert!(!ledger.exists() || term_ok_ledger(&ledger)["transactions"] == serde_json::json!([]));
    let journal = term_ok(&data, &["journal"]);
    assert!(
        !journal.to_string().contains("\"amount\":1234"),
        "{journal}"
    );
}

#[test]
fn pin_formats_1_and_3_go_through_under_tdes_dukpt() {
    // The host decrypts the block in the profile's format under the derived PIN key: the
    // right PIN is approved, another one declined 55.
    for format in ["1", "3"] {
        let dir = tmp(&format!("keys-format-{format}"));
        let p = dir.join("profile.toml");
        std::fs::write(
            &p,
            format!(
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 62\npin_format = {format}\n"
            ),
        )
        .unwrap();
        let p = p.display().to_string();
        let ledger = dir.join("ledger.json");
        let (_host, addr) = start_host(&ledger, &["--profile", &p]);
        let data = dir.join("t1");
        term_ok(
            &data,
            &[
                "init",
                "--host",
                &addr,
                "--tid",
                "12345678",
                "--mid",
                "123456789012345",
                "--no-login",
                "--profile",
                &p,
            ],
        );
        let ok = term_ok(
            &data,
            &["sale", "--amount", "2000", "--card", "pin", "--pin", "1234"],
        );
        assert_eq!(ok["state"], "approved", "format {format}: {ok}");
        let (_, wrong, _) = term(
            &data,
            &["sale", "--amount", "3000", "--card", "pin", "--pin", "4321"],
        );
        assert_eq!(wrong["response_code"], "55", "format {format}: {wrong}");
    }
}

/// A swiped and an inserted sale (track 2 in field 35) and a keyed one on a signed-in terminal:
/// all approved by a host that decrypts the tracks (it answers 30 to a track that does not
/// decrypt or lacks field 53's flag).
fn track_sales_go_through(data: &std::path::Path, ledger: &std::path::Path, what: &str) {
    // A chip card is swiped only when its chip cannot be read (a fallback).
    for via in [
        &["--via", "swipe", "--chip-fails"][..],
        &["--via", "chip"][..],
    ] {
        let mut args = vec!["sale", "--amount", "1500", "--card", "unionpay"];
        args.extend_from_slice(via);
        let v = term_ok(data, &args);
        assert_eq!(v["state"], "approved", "{what} {via:?}: {v}");
    }
    let keyed = term_ok(data, &["sale", "--amount", "1234"]);
    assert_eq!(keyed["state"], "approved", "{what} keyed: {keyed}");
    let l = term_ok_ledger(ledger);
    let approved = l["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "approved")
        .count();
    assert_eq!(approved, 3, "{what}: {l}");
}

#[test]
fn track_encrypted_profile_swipes_and_inserts_end_to_end() {
    let (_host, dir, ledger, _) = set_up("cup-track-encrypted");
    track_sales_go_through(&dir.join("t1"), &ledger, "cup-track-encrypted");
}

#[test]
fn track_encryption_under_the_tdes_dukpt_data_key_end_to_end() {
    let dir = tmp("keys-track-dukpt");
    let p = dir.join("profile.toml");
    std::fs::write(
        &p,
        "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 62\ntrack_encryption = \"cup-tdk\"\n",
    )
    .unwrap();
    let p = p.display().to_string();
    let ledger = dir.join("ledger.json");
    let (_host, addr) = start_host(&ledger, &["--profile", &p]);
    let data = dir.join("t1");
    term_ok(
        &data,
        &[
            "init",
            "--host",
            &addr,
            "--tid",
            "12345678",
            "--mid",
            "123456789012345",
            "--no-login",
            "--profile",
            &p,
        ],
    );
    track_sales_go_through(&data, &ledger, "dukpt-tdes + cup-tdk");
}

/// A wrong PIN on a TDES working-key terminal: declined 55 with the wrong-PIN diagnosis (no
/// money moved, safe to try again), and the cashier's retry with the right PIN is approved.
fn wrong_pin_then_retry(data: &std::path::Path, amount: &str, what: &str) {
    let (code, wrong, err) = term(
        data,
        &["sale", "--amount", amount, "--card", "pin", "--pin", "4321"],
    );
    assert_eq!(code, 3, "{what}: {wrong} {err}");
    assert_eq!(wrong["state"], "declined", "{what}: {wrong}");
    assert_eq!(wrong["response_code"], "55", "{what}: {wrong}");
    assert_eq!(wrong["money_state"], "not_charged", "{what}: {wrong}");
    let d = &wrong["diagnosis"];
    assert_eq!(d["code"], "host.incorrect_pin", "{what}: {wrong}");
    assert_eq!(d["host_code"], "55", "{what}: {wrong}");
    assert_eq!(d["retry"], "safe_to_retry", "{what}: {wrong}");
    let again = term_ok(
        data,
        &["sale", "--amount", amount, "--card", "pin", "--pin", "1234"],
    );
    assert_eq!(again["state"], "approved", "{what} retry: {again}");
}

#[test]
fn tdes_working_keys_host_declines_a_wrong_pin_also_after_a_restart() {
    // The built-in `cup` profile (no --profile): TDES PIK/MAK/TDK at sign-in.
    let dir = tmp("keys-tdes-pin");
    let ledger = dir.join("ledger.json");
    let listen = free_addr();
    let (host, _) = start_host_at(&listen, &ledger, &[]);
    let data = dir.join("t1");
    init_terminal(&data, &listen, &["--no-login"]);
    term_ok(&data, &["signin"]);
    let ok = term_ok(
        &data,
        &["sale", "--amount", "2000", "--card", "pin", "--pin", "1234"],
    );
    assert_eq!(ok["state"], "approved", "{ok}");
    wrong_pin_then_retry(&data, "3000", "cup");
    // A restarted host reloads the kept key block from its ledger file, PIK included.
    drop(host);
    let (_host, _) = start_host_at(&listen, &ledger, &[]);
    wrong_pin_then_retry(&data, "4000", "cup, host restarted");
    let l = term_ok_ledger(&ledger);
    let approved: Vec<_> = l["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "approved")
        .map(|t| t["amount"].clone())
        .collect();
    assert_eq!(approved.len(), 3, "{l}");
}

#[test]
fn tdes_working_key_profiles_check_the_pin() {
    // Track data under the TDK: the host reads the PAN for the PIN block from the opened track.
    for name in ["unionpay-acquirer", "iso87b-private", "cup-track-encrypted"] {
        sales_go_through(name);
    }
}

#[test]
fn pin_formats_1_and_3_are_checked_under_tdes_working_keys() {
    for format in ["1", "3"] {
        let dir = tmp(&format!("keys-tdes-format-{format}"));
        let p = dir.join("profile.toml");
        std::fs::write(
            &p,
            format!("base = \"cup\"\n[keys]\npin_format = {format}\n"),
        )
        .unwrap();
        let p = p.display().to_string();
        let ledger = dir.join("ledger.json");
        let (_host, addr) = start_host(&ledger, &["--profile", &p]);
        let data = dir.join("t1");
        init_terminal(&data, &addr, &["--no-login", "--profile", &p]);
        term_ok(&data, &["signin"]);
        wrong_pin_then_retry(&data, "3000", &format!("format {format}"));
    }
}
