//! Bad input: malformed configuration, a damaged journal file, a journal from a newer schema
//! and a full disk. Each must give a clear error, never a panic, and lose nothing that was
//! committed (compared with the records read before the damage and with the host ledger).
//!
//! Journals are built by a real terminal against the host simulator on loopback, so the files
//! are what the SDK writes. The SQLite file format facts used below (100-byte header, page size
//! at offset 16, `user_version` at offset 60, b-tree page header layout) are from
//! <https://www.sqlite.org/fileformat2.html>.

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, HostStatus, TEST_TMK_HEX};
use smartpos_sim::net::{Server, ServerConfig, ServerHandle, TEST_CA_PEM};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::guard::{GUARD_NAME, JournalGuard, STAN_BLOCK, reset_journal};
use smartpos_terminal::journal::{Journal, JournalError, JournalKey};
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::store::{DataDir, FileSecureStore, SecureStore, StoredConfig, Zeroizing};
use smartpos_terminal::{Probe, Terminal, TerminalConfig, TerminalError};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, TID, TempDir, TempFile, temp_dir, temp_journal, test_card, test_tmk};
use smartpos_txn::model::{TxnRecord, TxnState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: [u8; 32] = [0x5A; 32];

async fn host() -> (ServerHandle, Arc<Acquirer>) {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    host_with(acquirer).await
}

fn config(addr: SocketAddr) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{}", addr.port()));
    link.response_timeout = Duration::from_secs(3);
    link.connect_timeout = Duration::from_secs(2);
    TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    }
}

fn open(addr: SocketAddr, path: &Path) -> Result<Terminal, TerminalError> {
    Terminal::open(config(addr), path, test_tmk(), &JournalKey::new(KEY))
}

/// Signs in and commits sales, a void and a refund; returns the journal's records.
async fn commit_some(t: &mut Terminal, first_amount: u64) -> Vec<TxnRecord> {
    t.admin().sign_in("01").await.unwrap();
    let mut refs = Vec::new();
    for i in 0..5 {
        let s = t
            .sale(first_amount + i, test_card(), None, None)
            .await
            .unwrap();
        assert_eq!(s.record.state, TxnState::Approved);
        refs.push(s.record.reference);
    }
    let v = t.void(&refs[0], None, None).await.unwrap();
    assert_eq!(v.record.state, TxnState::Approved);
    let r = t.refund(&refs[1], 1, None, None).await.unwrap();
    assert_eq!(r.record.state, TxnState::Approved);
    t.disconnect().await;
    t.journal().all().unwrap()
}

/// A journal file with committed transactions, closed (so the WAL is checkpointed into it).
async fn committed_journal(name: &str) -> (TempFile, Vec<TxnRecord>, Arc<Acquirer>) {
    let (server, acquirer) = host().await;
    let path = temp_journal(name);
    let mut t = open(server.local_addr(), &path).unwrap();
    let records = commit_some(&mut t, 1_000).await;
    assert!(records.len() >= 7);
    drop(t);
    server.shutdown().await;
    assert!(
        !wal_path(&path).exists(),
        "closing the last connection checkpoints and removes the WAL"
    );
    (path, records, acquirer)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A small deterministic generator (xorshift64*), so every damage is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = (self.next() >> 32) as u8;
        }
    }
}

fn expect_config_error(result: Result<Terminal, TerminalError>, needle: &str) -> String {
    match result {
        Err(TerminalError::Config(msg)) => {
            assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
            let shown = TerminalError::Config(msg.clone()).to_string();
            assert!(shown.starts_with("configuration: "), "{shown}");
            msg
        }
        Err(other) => panic!("expected a configuration error about {needle:?}, got {other:?}"),
        Ok(_) => panic!("a bad configuration ({needle}) opened a terminal"),
    }
}

// ---------------------------------------------------------------- configuration

#[tokio::test]
async fn malformed_configuration_is_a_config_error_and_changes_nothing() {
    let (server, acquirer) = host().await;
    let tmp = temp_dir("badcfg");
    let dir = DataDir::new(tmp.to_path_buf());
    let stored = StoredConfig {
        host: server.local_addr().to_string(),
        dialect: "cup".into(),
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        tls_ca: None,
        tls_server_name: None,
        tls_pin_sha256: None,
        tls_client_cert: None,
        connect_timeout_ms: 2_000,
        response_timeout_ms: 3_000,
        utc_offset_minutes: 480,
        merchant_name: None,
        profile: None,
    };
    let tmk = smartpos_types::hex::decode(TEST_TMK_HEX).unwrap();
    dir.init(&stored, &tmk).unwrap();
    let mut t = dir.open().unwrap();
    let committed = commit_some(&mut t, 2_000).await;
    drop(t);
    let json_path = dir.path().join("terminal.json");
    let good = std::fs::read_to_string(&json_path).unwrap();
    assert!(good.contains(&format!("\"tid\": \"{TID}\"")), "{good}");
    assert!(good.contains("\"tls_ca\": null"), "{good}");
    let ca_dir = temp_dir("badcfg-ca");
    let ca_file = ca_dir.join("ca.pem");
    std::fs::write(&ca_file, TEST_CA_PEM).unwrap();
    let before = files(dir.path());
    let a_directory = temp_dir("badcfg-ca-dir");

    let with_ca = |ca: &str| good.replace("\"tls_ca\": null", &format!("\"tls_ca\": {ca:?}"));
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "{ this is not json".into(), "terminal.json: "),
        ("empty file", String::new(), "terminal.json: EOF"),
        (
            "missing field",
            good.replace(&format!("\"tid\": \"{TID}\","), ""),
            "missing field `tid`",
        ),
        (
            "wrong type",
            good.replace(
                "\"connect_timeout_ms\": 2000",
                "\"connect_timeout_ms\": \"soon\"",
            ),
            "terminal.json: invalid type",
        ),
        (
            "TID of 4 characters",
            good.replace(&format!("\"tid\": \"{TID}\""), "\"tid\": \"1234\""),
            "terminal id must be 8 characters",
        ),
        (
            "MID of 16 characters",
            good.replace(
                &format!("\"mid\": \"{MID}\""),
                "\"mid\": \"1234567890123456\"",
            ),
            "merchant id 15",
        ),
        (
            "unknown dialect",
            good.replace("\"dialect\": \"cup\"", "\"dialect\": \"martian\""),
            "unknown dialect \"martian\"",
        ),
        (
            "missing CA file",
            with_ca("/nonexistent/smartpos/ca.pem"),
            "cannot read CA file /nonexistent/smartpos/ca.pem: entity not found",
        ),
        (
            "CA path is a directory",
            with_ca(&a_directory.display().to_string()),
            "cannot read CA file",
        ),
        (
            "malformed pin",
            with_ca(&ca_file.display().to_string())
                .replace("\"tls_pin_sha256\": null", "\"tls_pin_sha256\": \"XYZ\""),
            "pin must be 64 hex digits",
        ),
        (
            "missing profile file",
            good.replace(
                "\"profile\": null",
                "\"profile\": \"/nonexistent/acq.toml\"",
            ),
            "cannot read profile /nonexistent/acq.toml",
        ),
    ];
    for (what, json, needle) in &cases {
        assert_ne!(json, &good, "{what}: the case must change the file");
        std::fs::write(&json_path, json).unwrap();
        let msg = expect_config_error(dir.open(), needle);
        assert!(!msg.contains(&tmk_hex_fragment()), "{what}: {msg}");
        let mut after = files(dir.path());
        after.insert(json_path.clone(), good.clone().into_bytes());
        assert!(after == before, "{what}: the data directory changed");
    }
    std::fs::remove_file(&json_path).unwrap();
    expect_config_error(dir.open(), "run `init` first");

    // The good file back: every committed transaction is there and the terminal works.
    std::fs::write(&json_path, &good).unwrap();
    let mut t = dir.open().unwrap();
    assert_eq!(t.journal().all().unwrap(), committed);
    t.admin().sign_in("01").await.unwrap();
    let s = t.sale(2_100, test_card(), None, None).await.unwrap();
    assert_eq!(s.record.state, TxnState::Approved);
    let diffs = reconcile(&t.journal().all().unwrap(), &acquirer.ledger(), TID, false);
    assert!(diffs.is_empty(), "{diffs:?}");
    t.disconnect().await;
    server.shutdown().await;
}

fn tmk_hex_fragment() -> String {
    TEST_TMK_HEX[..16].to_owned()
}

#[tokio::test]
async fn bad_settings_on_a_fresh_terminal_create_no_journal() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let path = temp_journal("badcfg-fresh");
    let mut short_tid = config(addr);
    short_tid.tid = "1234567".into();
    let mut long_mid = config(addr);
    long_mid.mid.push('0');
    let mut dialect = config(addr);
    dialect.dialect = String::new();
    for (cfg, needle) in [
        (short_tid, "terminal id must be 8 characters"),
        (long_mid, "merchant id 15"),
        (dialect, "unknown dialect \"\""),
    ] {
        expect_config_error(
            Terminal::open(cfg, &path, test_tmk(), &JournalKey::new(KEY)),
            needle,
        );
        assert!(!path.exists(), "{needle}: a journal was created");
        assert!(!wal_path(&path).exists());
    }
}

// ---------------------------------------------------------------- newer schema

#[tokio::test]
async fn journal_from_a_newer_schema_is_refused_and_left_untouched() {
    let (path, committed, _) = committed_journal("newer").await;
    let mut bytes = std::fs::read(&path).unwrap();
    // user_version: 4-byte big-endian integer at offset 60 of the database header.
    assert_eq!(
        bytes[60..64],
        3i32.to_be_bytes(),
        "this SDK writes schema 3 (tagged money rows, ADR 0008)"
    );
    bytes[60..64].copy_from_slice(&99i32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let dir = path.parent().unwrap().to_path_buf();
    let before = files(&dir);

    match Journal::open(&path, &JournalKey::new(KEY)) {
        Err(e @ JournalError::NewerSchema { .. }) => {
            assert!(matches!(
                e,
                JournalError::NewerSchema {
                    found: 99,
                    supported: 3
                }
            ));
            assert_eq!(
                e.to_string(),
                "journal schema version 99 is newer than this SDK supports (3)"
            );
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    match open(addr, &path) {
        Err(TerminalError::Journal(JournalError::NewerSchema { found: 99, .. })) => {}
        other => panic!("expected Journal(NewerSchema), got {other:?}"),
    }
    assert!(files(&dir) == before, "the newer journal was modified");

    // Back to schema 3 (a downgrade would be the newer SDK's job): nothing was lost.
    bytes[60..64].copy_from_slice(&3i32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let j = Journal::open(&path, &JournalKey::new(KEY)).unwrap();
    assert_eq!(j.all().unwrap(), committed);
}

// ---------------------------------------------------------------- damaged journal

/// The page size of a database file (header offset 16, big-endian; 1 means 65536).
fn page_size(bytes: &[u8]) -> usize {
    match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    }
}

/// The unallocated gap of each b-tree page: between the cell pointer array and the cell
/// content area. SQLite never reads it, so it may hold anything.
fn free_gaps(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let ps = page_size(bytes);
    let mut gaps = Vec::new();
    for (i, page) in bytes.chunks_exact(ps).enumerate() {
        let h = if i == 0 { 100 } else { 0 };
        let header_len = match page[h] {
            0x0A | 0x0D => 8,
            0x02 | 0x05 => 12,
            _ => continue, // overflow, free-list or unused page
        };
        let cells = usize::from(u16::from_be_bytes([page[h + 3], page[h + 4]]));
        let content = match u16::from_be_bytes([page[h + 5], page[h + 6]]) {
            0 => 65_536,
            n => usize::from(n),
        };
        let start = h + header_len + 2 * cells;
        if content > start {
            gaps.push(i * ps + start..i * ps + content);
        }
    }
    gaps
}

/// Opens a damaged journal like the app would and reads everything a terminal relies on.
fn open_and_read(path: &Path) -> Result<(Vec<TxnRecord>, usize), TerminalError> {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let t = open(addr, path)?;
    let all = t.journal().all()?;
    Ok((all, t.pending().len()))
}

#[tokio::test]
async fn random_bytes_in_free_space_lose_nothing() {
    let (path, committed, _) = committed_journal("freespace").await;
    let mut bytes = std::fs::read(&path).unwrap();
    let gaps = free_gaps(&bytes);
    let damaged: usize = gaps.iter().map(|g| g.len()).sum();
    assert!(
        damaged > 4_000,
        "too little free space to test: {damaged} bytes"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for g in gaps {
        rng.fill(&mut bytes[g]);
    }
    std::fs::write(&path, &bytes).unwrap();
    let (all, pending) = open_and_read(&path).unwrap();
    assert_eq!(all, committed);
    assert_eq!(pending, 0);
    let j = Journal::open(&path, &JournalKey::new(KEY)).unwrap();
    j.quick_check().unwrap();
}

#[tokio::test]
async fn damaged_database_header_is_refused_on_open_or_read() {
    let (path, _, _) = committed_journal("header").await;
    let mut bytes = std::fs::read(&path).unwrap();
    Rng(7).fill(&mut bytes[..16]); // "SQLite format 3\0"
    std::fs::write(&path, &bytes).unwrap();
    let err = open_and_read(&path).unwrap_err();
    assert!(
        matches!(err, TerminalError::Journal(JournalError::Sql(_))),
        "{err:?}"
    );
    // Issue 19 item 5: the message says what happened, not SQLite's wording ("file is not a
    // database" is in the inner error, for logs).
    assert_eq!(
        err.to_string(),
        "journal: journal storage error: the journal file is damaged"
    );
    assert_eq!(err.diagnosis().code, "storage.journal_damaged");
}

/// Outcome of opening a journal with one page overwritten.
#[derive(Debug, Default)]
struct Tally {
    refused_on_open_or_read: usize,
    found_by_quick_check: usize,
    /// Of those, how many still read every transaction record unchanged (the damage hit the
    /// support trace, the audit log or an index).
    found_by_quick_check_records_intact: usize,
    opened_intact: usize,
    opened_changed: usize,
}

#[tokio::test]
async fn random_bytes_over_a_whole_page_are_an_error_or_lose_nothing() {
    let (path, committed, _) = committed_journal("pages").await;
    let good = std::fs::read(&path).unwrap();
    let ps = page_size(&good);
    let pages = good.len() / ps;
    assert!(pages >= 4, "{pages} pages");
    let mut tally = Tally::default();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    // Every page but the first (the header page is covered above), overwritten entirely.
    for page in 1..pages {
        let mut bytes = good.clone();
        rng.fill(&mut bytes[page * ps..(page + 1) * ps]);
        std::fs::write(&path, &bytes).unwrap();
        match open_and_read(&path) {
            Err(TerminalError::Journal(JournalError::Sql(e))) => {
                let text = e.to_string();
                assert!(text.contains("malformed"), "page {page}: {text}");
                tally.refused_on_open_or_read += 1;
            }
            Err(other) => panic!("page {page}: unexpected error {other:?}"),
            Ok((all, _)) => {
                let j = Journal::open(&path, &JournalKey::new(KEY)).unwrap();
                if j.quick_check().is_err() {
                    tally.found_by_quick_check += 1;
                    if all == committed {
                        tally.found_by_quick_check_records_intact += 1;
                    }
                } else if all == committed {
                    tally.opened_intact += 1;
                } else {
                    tally.opened_changed += 1;
                }
            }
        }
    }
    println!("whole-page damage over {} pages: {tally:?}", pages - 1);
    // A page of random bytes never passes for a valid b-tree page: it is reported on open
    // or by quick_check, never silently read as different data.
    assert_eq!(tally.opened_changed, 0, "{tally:?}");
    // Where the journal still opened and read its records, they were all there unchanged.
    assert_eq!(
        tally.found_by_quick_check_records_intact, tally.found_by_quick_check,
        "{tally:?}"
    );
    assert!(tally.refused_on_open_or_read > 0, "{tally:?}");
}

#[tokio::test]
async fn journal_truncated_past_its_first_page_is_detected() {
    let (path, _, _) = committed_journal("truncated").await;
    let good = std::fs::read(&path).unwrap();
    let ps = page_size(&good);
    let pages = good.len() / ps;
    // Cut at every page boundary and in the middle of every page after the first.
    let mut lengths: Vec<usize> = (1..pages).map(|p| p * ps).collect();
    lengths.extend((1..pages).map(|p| p * ps + ps / 2));
    let (mut on_open, mut by_check) = (0, 0);
    for len in lengths {
        std::fs::write(&path, &good[..len]).unwrap();
        match open_and_read(&path) {
            Err(TerminalError::Journal(JournalError::Sql(e))) => {
                assert!(e.to_string().contains("malformed"), "{len} bytes: {e}");
                on_open += 1;
            }
            Err(other) => panic!("{len} bytes: unexpected error {other:?}"),
            Ok(_) => {
                // The pages read on open survived; the structural check finds the rest missing.
                let j = Journal::open(&path, &JournalKey::new(KEY)).unwrap();
                assert!(
                    j.quick_check().is_err(),
                    "{len} bytes: truncation not detected"
                );
                by_check += 1;
            }
        }
    }
    println!("truncation past page 1: {on_open} refused on open, {by_check} found by quick_check");
    assert!(on_open > 0);
}

#[tokio::test]
async fn journal_cut_inside_its_first_page_is_refused_on_open_or_read() {
    let (path, _, _) = committed_journal("cut").await;
    let good = std::fs::read(&path).unwrap();
    let ps = page_size(&good);
    for len in [2, 15, 16, 17, 24, 28, 99, 100, 101, ps / 2, ps - 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        let err = open_and_read(&path).unwrap_err();
        let text = match &err {
            TerminalError::Journal(JournalError::Sql(e)) => e.to_string(),
            _ => String::new(),
        };
        assert!(
            matches!(err, TerminalError::Journal(JournalError::Sql(_)))
                && (text.ends_with("file is not a database")
                    || text.ends_with("database disk image is malformed")),
            "{len} bytes: {err:?}"
        );
        assert_eq!(
            err.diagnosis().code,
            "storage.journal_damaged",
            "{len} bytes"
        );
    }
}

/// SQLite takes a file of 0 or 1 bytes for an empty database (and a missing file for a new
/// one). Under the journal guard (a terminal opened through its secure store) such a journal is
/// refused with `JournalMissing`, and the file is left exactly as it was: nothing is created.
#[tokio::test]
async fn journal_emptied_to_zero_bytes_is_refused_under_the_guard() {
    let (server, _) = host().await;
    let store = GuardTestStore::new("emptied");
    let path = temp_journal("emptied");
    let mut t = open_guarded(server.local_addr(), &path, &store, STAN_BLOCK).unwrap();
    let committed = commit_some(&mut t, 1_000).await;
    let id = t.journal().id().unwrap().unwrap();
    drop(t);
    server.shutdown().await;
    assert!(!wal_path(&path).exists());
    let good = std::fs::read(&path).unwrap();
    for len in [0, 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        let e = open_guarded(addr9(), &path, &store, STAN_BLOCK).unwrap_err();
        match &e {
            TerminalError::JournalMissing { expected, .. } => assert_eq!(expected, &id),
            other => panic!("{len} bytes: expected JournalMissing, got {other:?}"),
        }
        assert!(
            e.to_string().contains("do not reset without support"),
            "{e}"
        );
        assert_eq!(e.diagnosis().code, "terminal.journal_missing");
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            len,
            "the file was touched"
        );
        assert!(!wal_path(&path).exists());
    }
    // The good file back: everything is there.
    std::fs::write(&path, &good).unwrap();
    let t = open_guarded(addr9(), &path, &store, STAN_BLOCK).unwrap();
    assert_eq!(t.journal().all().unwrap(), committed);
}

/// Was KNOWN GAP 4 (see docs/RELIABILITY.md): SQLite keeps no page checksums, so a changed
/// byte inside a stored value that leaves the record well-formed is read back as if it were
/// true, and `quick_check` finds nothing. Here every copy of one approval's RRN gets one digit
/// changed. Since the journal tags its money rows (issue 19 item 3, ADR 0008) the record
/// fails its check on open and is named; SQLite itself still sees nothing.
#[tokio::test]
async fn a_changed_digit_inside_a_value_is_found_by_its_tag() {
    let (path, committed, _) = committed_journal("digit").await;
    let victim = committed
        .iter()
        .find_map(|r| r.rrn.clone().filter(|rrn| rrn.len() == 12))
        .unwrap();
    let mut forged = victim.clone().into_bytes();
    forged[11] = if forged[11] == b'9' {
        b'0'
    } else {
        forged[11] + 1
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let mut copies = 0;
    let mut at = 0;
    while let Some(pos) = bytes[at..]
        .windows(victim.len())
        .position(|w| w == victim.as_bytes())
    {
        let start = at + pos;
        bytes[start..start + forged.len()].copy_from_slice(&forged);
        copies += 1;
        at = start + forged.len();
    }
    assert!(copies >= 1);
    std::fs::write(&path, &bytes).unwrap();
    let (all, _) = open_and_read(&path).unwrap();
    let forged = String::from_utf8(forged).unwrap();
    assert!(
        all.iter()
            .any(|r| r.rrn.as_deref() == Some(forged.as_str()))
    );
    assert_ne!(all, committed);
    Journal::open(&path, &JournalKey::new(KEY))
        .unwrap()
        .quick_check()
        .unwrap();
    // Found by the record's tag, which names it.
    let j = Journal::open(&path, &JournalKey::new(KEY)).unwrap();
    let found = j.tampered().cloned().expect("the changed record is found");
    assert_eq!(found.table, "txn");
    assert!(
        committed
            .iter()
            .any(|r| r.reference == found.key && r.rrn.as_deref() == Some(victim.as_str())),
        "{found:?}"
    );
}

// ---------------------------------------------------------------- storage diagnoses

/// Issue 19 item 5: a read-only data directory gave only "unable to open database file".
/// Now its diagnosis says what happened to the money and what to do, without SQLite's words.
/// As root `chmod` does not stop writes, so the journal is then made read-only through its
/// test seam (`Journal::set_query_only`), which fails writes with the same SQLite code.
#[tokio::test]
async fn a_read_only_data_directory_has_its_own_diagnosis() {
    let (server, acquirer) = host().await;
    let tmp = temp_dir("readonly");
    let dir: &Path = &tmp;
    let path = dir.join("journal.db");
    let mut t = open(server.local_addr(), &path).unwrap();
    commit_some(&mut t, 4_000).await;
    t.admin().sign_in("01").await.unwrap();
    drop(t);
    use std::os::unix::fs::PermissionsExt;
    let set_mode = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(&path, 0o400);
    set_mode(dir, 0o500);
    // Does the directory refuse a new file for us (not root)?
    let probe = dir.join("probe");
    let chmod_works = std::fs::write(&probe, b"x").is_err();
    let _ = std::fs::remove_file(&probe);
    let err = if chmod_works {
        let err = open(server.local_addr(), &path).unwrap_err();
        set_mode(dir, 0o700);
        set_mode(&path, 0o600);
        err
    } else {
        println!(
            "running as root: chmod does not stop writes; the journal's query_only seam is used"
        );
        set_mode(dir, 0o700);
        set_mode(&path, 0o600);
        let mut t = open(server.local_addr(), &path).unwrap();
        t.admin().sign_in("01").await.unwrap();
        t.journal_mut().set_query_only(true).unwrap();
        let seen = acquirer.ledger().transactions.len();
        let err = t.sale(4_321, test_card(), None, None).await.unwrap_err();
        assert!(
            !acquirer
                .ledger()
                .transactions
                .iter()
                .skip(seen)
                .any(|x| x.amount == 4_321),
            "nothing is sent that is not journaled"
        );
        err
    };
    let d = err.diagnosis();
    assert_eq!(d.code, "storage.read_only", "{err:?}");
    let text = err.to_string();
    assert!(text.contains("read-only"), "{text}");
    for internal in ["unable to open", "sqlite", "SQLITE", "attempt to write"] {
        assert!(!text.contains(internal), "{text}");
        assert!(!d.explanation.en.contains(internal));
    }
    server.shutdown().await;
}

/// Issue 19 item 5: damaged journals (byte flips in its pages) reported SQLite's
/// `malformed database schema (...)` or `Conversion error from type Text ...`. Each damage
/// that is refused now carries the damaged-journal diagnosis (or, where the values still
/// parse, the tampered-record one) and a message without SQLite's words.
#[tokio::test]
async fn byte_flips_in_the_journal_get_the_damaged_journal_diagnosis() {
    let (path, _, _) = committed_journal("flips").await;
    let good = std::fs::read(&path).unwrap();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let (mut damaged, mut tampered) = (0, 0);
    for _ in 0..60 {
        let mut bytes = good.clone();
        // Past the 100-byte database header (its damage is covered above; a flipped schema
        // version is "written by a newer SDK", not damage).
        for _ in 0..8 {
            let span = u64::try_from(good.len() - 100).unwrap();
            let at = 100 + usize::try_from(rng.next() % span).unwrap();
            bytes[at] ^= 0xFF;
        }
        std::fs::write(&path, &bytes).unwrap();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let result = open(addr, &path).and_then(|t| {
            t.refuse_if_tampered()?;
            t.journal().all()?;
            Ok(())
        });
        let Err(err) = result else { continue };
        let text = err.to_string();
        for internal in [
            "malformed",
            "Conversion error",
            "sqlite_",
            "index:",
            "disk image",
        ] {
            assert!(!text.contains(internal), "{text}");
        }
        match err.diagnosis().code {
            "storage.journal_damaged" => damaged += 1,
            "journal.tampered" => tampered += 1,
            other => panic!("{other}: {err:?}"),
        }
    }
    println!("byte flips: {damaged} damaged, {tampered} tampered");
    assert!(damaged + tampered > 0);
}

// ---------------------------------------------------------------- full disk

#[tokio::test]
async fn full_disk_fails_the_sale_before_sending_and_loses_nothing() {
    let (server, acquirer) = host().await;
    let path = temp_journal("fulldisk");
    let mut t = open(server.local_addr(), &path).unwrap();
    let committed = commit_some(&mut t, 3_000).await;

    // The "disk" is full: no page beyond the current size, and the free space inside the
    // current pages used up by filler rows until SQLite itself says so.
    // SQLite never lowers the cap below the current size, so asking for 1 page caps it there.
    let cap = t.journal_mut().set_max_page_count(1).unwrap();
    assert!(cap > 1, "cap {cap}");
    let mut fillers = 0;
    let full = loop {
        match t
            .journal_mut()
            .set_meta(&format!("filler.{fillers}"), &"x".repeat(600))
        {
            Ok(()) => fillers += 1,
            Err(e) => break e,
        }
        assert!(fillers < 10_000, "cap {cap} never reached");
    };
    assert!(full.to_string().contains("full"), "{full}");

    let probes = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = probes.clone();
    t.set_probe(move |p| {
        let line = match p {
            Probe::BeforeCommit { id } => format!("before_commit {id}"),
            Probe::AfterCommit { id } => format!("after_commit {id}"),
            Probe::BeforeSend(_) => "before_send".into(),
            Probe::AfterSend(_) => "after_send".into(),
            Probe::Received(_) => "received".into(),
            _ => "other".into(),
        };
        seen.lock().unwrap().push(line);
    });
    // An order key longer than a page forces new (overflow) pages for the intent row, so the
    // intent commit is certain to need space the disk does not have.
    let long_key = "K".repeat(5_000);
    let ledger_before = acquirer.ledger().transactions.len();
    let err = t
        .sale(3_777, test_card(), Some(&long_key), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TerminalError::Journal(JournalError::Sql(_))),
        "{err:?}"
    );
    // Issue 19 item 5: plain words and the disk-full diagnosis, not SQLite's wording.
    assert_eq!(
        err.to_string(),
        "journal: journal storage error: the disk is full"
    );
    assert_eq!(err.diagnosis().code, "storage.disk_full");
    let probes = probes.lock().unwrap().clone();
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(probes[0].starts_with("before_commit"), "{probes:?}");
    // Nothing left the terminal, the host saw nothing.
    assert_eq!(acquirer.ledger().transactions.len(), ledger_before);
    assert!(
        !acquirer
            .ledger()
            .transactions
            .iter()
            .any(|e| e.amount == 3_777)
    );
    // The terminal refuses to continue out of step with its journal.
    let again = t.sale(3_778, test_card(), None, None).await.unwrap_err();
    assert!(matches!(again, TerminalError::Poisoned), "{again:?}");
    drop(t);

    // Space again (reopening lifts the cap): everything committed is there, the failed sale
    // is not, nothing is pending, and the terminal works.
    let mut t = open(server.local_addr(), &path).unwrap();
    assert_eq!(t.journal().all().unwrap(), committed);
    assert!(t.pending().is_empty());
    assert!(t.journal().by_idempotency_key(&long_key).unwrap().is_none());
    t.admin().sign_in("01").await.unwrap();
    let s = t
        .sale(3_777, test_card(), Some(&long_key), None)
        .await
        .unwrap();
    assert_eq!(s.record.state, TxnState::Approved);
    let ledger = acquirer.ledger();
    let hits: Vec<_> = ledger
        .transactions
        .iter()
        .filter(|e| e.amount == 3_777)
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].status, HostStatus::Approved);
    let diffs = reconcile(&t.journal().all().unwrap(), &ledger, TID, false);
    assert!(diffs.is_empty(), "{diffs:?}");
    t.disconnect().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------- journal guard

/// A secure store in memory that can refuse writes and logs each guard it writes (base,
/// ceiling) into a shared event list, next to the STANs the probe sees going out.
struct GuardTestStore {
    inner: FileSecureStore,
    _dir: TempDir,
    fail_puts: Mutex<bool>,
    events: Arc<Mutex<Vec<GuardEvent>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuardEvent {
    Guard { base: u32, ceiling: u32 },
    Send { stan: u32 },
}

impl GuardTestStore {
    fn new(name: &str) -> Arc<GuardTestStore> {
        let dir = temp_dir(&format!("{name}-store"));
        Arc::new(GuardTestStore {
            inner: FileSecureStore::new(dir.to_path_buf()),
            _dir: dir,
            fail_puts: Mutex::new(false),
            events: Arc::new(Mutex::new(Vec::new())),
        })
    }
    fn guard(&self) -> JournalGuard {
        JournalGuard::load(self).unwrap().unwrap()
    }
    fn guard_writes(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, GuardEvent::Guard { .. }))
            .count()
    }
}

impl SecureStore for GuardTestStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        self.inner.get(name)
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), String> {
        if *self.fail_puts.lock().unwrap() {
            return Err("keystore unavailable".into());
        }
        self.inner.put(name, value)?;
        if name == GUARD_NAME {
            let g = JournalGuard::load(&self.inner).unwrap().unwrap();
            self.events.lock().unwrap().push(GuardEvent::Guard {
                base: g.stan_base,
                ceiling: g.stan_ceiling,
            });
        }
        Ok(())
    }
}

fn addr9() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

fn open_guarded(
    addr: SocketAddr,
    path: &Path,
    store: &Arc<GuardTestStore>,
    block: u32,
) -> Result<Terminal, TerminalError> {
    Terminal::open_guarded(
        config(addr),
        None,
        path,
        Arc::new(smartpos_crypto::SoftwareModule::new(test_tmk())),
        &JournalKey::new(KEY),
        store.clone(),
        block,
    )
}

/// Records every STAN that goes out (field 11 of each frame, before it is written).
fn record_sends(t: &mut Terminal, events: Arc<Mutex<Vec<GuardEvent>>>) {
    let profile = smartpos_txn::proto::Profile::by_name("cup").unwrap();
    t.set_probe(move |p| {
        if let Probe::BeforeSend(frame) = p {
            let m = profile.dialect.unpack(frame).unwrap();
            let stan = m.text(11).unwrap().parse().unwrap();
            events.lock().unwrap().push(GuardEvent::Send { stan });
        }
    });
}

fn max_stan(records: &[TxnRecord]) -> u32 {
    records.iter().map(|r| r.stan).max().unwrap()
}

#[tokio::test]
async fn deleted_journal_is_refused_and_not_recreated() {
    let store = GuardTestStore::new("guard-deleted");
    let path = temp_journal("guard-deleted");
    let t = open_guarded(addr9(), &path, &store, STAN_BLOCK).unwrap();
    let id = t.journal().id().unwrap().unwrap();
    assert_eq!(store.guard().journal_id, id);
    assert_eq!(id.len(), 32, "hex of 16 random bytes");
    drop(t);
    std::fs::remove_file(&path).unwrap();
    let e = open_guarded(addr9(), &path, &store, STAN_BLOCK).unwrap_err();
    assert!(
        matches!(&e, TerminalError::JournalMissing { expected, .. } if *expected == id),
        "{e:?}"
    );
    assert!(!path.exists(), "no new journal was created");
    assert!(!wal_path(&path).exists());
}

#[tokio::test]
async fn another_terminals_journal_is_refused() {
    let (store_a, store_b) = (
        GuardTestStore::new("guard-foreign-a"),
        GuardTestStore::new("guard-foreign-b"),
    );
    let path_a = temp_journal("guard-foreign-a");
    let path_b = temp_journal("guard-foreign-b");
    let id_a = open_guarded(addr9(), &path_a, &store_a, STAN_BLOCK)
        .unwrap()
        .journal()
        .id()
        .unwrap()
        .unwrap();
    let id_b = open_guarded(addr9(), &path_b, &store_b, STAN_BLOCK)
        .unwrap()
        .journal()
        .id()
        .unwrap()
        .unwrap();
    assert_ne!(id_a, id_b);
    let foreign = std::fs::read(&path_b).unwrap();
    std::fs::write(&path_a, &foreign).unwrap();
    let e = open_guarded(addr9(), &path_a, &store_a, STAN_BLOCK).unwrap_err();
    match &e {
        TerminalError::JournalMismatch { expected, found } => {
            assert_eq!((expected, found), (&id_a, &id_b));
        }
        other => panic!("expected JournalMismatch, got {other:?}"),
    }
    assert_eq!(e.diagnosis().code, "terminal.journal_mismatch");
    assert!(std::fs::read(&path_a).unwrap() == foreign, "left untouched");
}

#[tokio::test]
async fn a_rolled_back_copy_of_the_journal_is_refused() {
    let (server, _) = host().await;
    let store = GuardTestStore::new("guard-rollback");
    let path = temp_journal("guard-rollback");
    let mut t = open_guarded(server.local_addr(), &path, &store, 3).unwrap();
    t.admin().sign_in("01").await.unwrap();
    t.sale(100, test_card(), None, None).await.unwrap();
    t.disconnect().await;
    drop(t);
    let old = std::fs::read(&path).unwrap();
    let mut t = open_guarded(server.local_addr(), &path, &store, 3).unwrap();
    for i in 0..6 {
        t.sale(200 + i, test_card(), None, None).await.unwrap();
    }
    t.disconnect().await;
    let records = t.journal().all().unwrap();
    drop(t);
    let current = std::fs::read(&path).unwrap();
    std::fs::write(&path, &old).unwrap();
    let e = open_guarded(server.local_addr(), &path, &store, 3).unwrap_err();
    match &e {
        TerminalError::JournalRolledBack {
            stan, guard_stan, ..
        } => assert!(stan < guard_stan, "{e}"),
        other => panic!("expected JournalRolledBack, got {other:?}"),
    }
    assert!(e.to_string().contains("old copy"), "{e}");
    assert_eq!(e.diagnosis().code, "terminal.journal_rolled_back");
    assert!(std::fs::read(&path).unwrap() == old, "left untouched");
    std::fs::write(&path, &current).unwrap();
    let t = open_guarded(server.local_addr(), &path, &store, 3).unwrap();
    assert_eq!(t.journal().all().unwrap(), records);
    server.shutdown().await;
}

#[tokio::test]
async fn an_old_journal_without_an_id_is_adopted() {
    let (path, committed, acquirer) = committed_journal("guard-adopt").await;
    assert_eq!(
        Journal::open(&path, &JournalKey::new(KEY))
            .unwrap()
            .id()
            .unwrap(),
        None,
        "journals opened without a store have no identity"
    );
    let (server, _) = host_with(acquirer.clone()).await;
    let store = GuardTestStore::new("guard-adopt");
    let mut t = open_guarded(server.local_addr(), &path, &store, STAN_BLOCK).unwrap();
    assert_eq!(t.journal().all().unwrap(), committed);
    let id = t.journal().id().unwrap().unwrap();
    let g = store.guard();
    assert_eq!(g.journal_id, id);
    assert_eq!(g.stan_base, max_stan(&committed));
    assert_eq!(g.generation, 0);
    t.admin().sign_in("01").await.unwrap();
    let s = t.sale(3_000, test_card(), None, None).await.unwrap();
    assert_eq!(s.record.state, TxnState::Approved);
    assert!(s.record.stan > max_stan(&committed));
    t.disconnect().await;
    server.shutdown().await;
}

/// The simulator's server in front of an existing acquirer (its ledger kept).
async fn host_with(acquirer: Arc<Acquirer>) -> (ServerHandle, Arc<Acquirer>) {
    let server = Server::bind(ServerConfig::default(), acquirer.clone())
        .await
        .unwrap()
        .spawn();
    (server, acquirer)
}

#[tokio::test]
async fn journal_reset_continues_the_stan_and_opens_the_next_batch() {
    let (server, _) = host().await;
    let store = GuardTestStore::new("guard-reset");
    let path = temp_journal("guard-reset");
    let mut t = open_guarded(server.local_addr(), &path, &store, 5).unwrap();
    let committed = commit_some(&mut t, 4_000).await;
    let old_batch = t.batch();
    let old_id = t.journal().id().unwrap().unwrap();
    // While it is open, a second terminal on the same journal is refused, and so is a reset.
    assert!(matches!(
        open_guarded(server.local_addr(), &path, &store, 5),
        Err(TerminalError::Journal(JournalError::InUse))
    ));
    assert!(matches!(
        reset_journal(
            &path,
            &JournalKey::new(KEY),
            store.clone(),
            5,
            1_900_000_000_000
        ),
        Err(TerminalError::Journal(JournalError::InUse))
    ));
    assert!(path.exists(), "nothing moved");
    drop(t);
    let old = std::fs::read(&path).unwrap();
    let before = store.guard();
    assert!(before.stan_ceiling > max_stan(&committed));
    // Emptied: refused; support resets.
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        open_guarded(server.local_addr(), &path, &store, 5),
        Err(TerminalError::JournalMissing { .. })
    ));
    std::fs::write(&path, &old).unwrap();
    let r = reset_journal(
        &path,
        &JournalKey::new(KEY),
        store.clone(),
        5,
        1_900_000_000_123,
    )
    .unwrap();
    let lost = path.with_file_name("journal.db.lost-1900000000");
    assert_eq!(r.moved.first(), Some(&lost));
    assert!(
        std::fs::read(&lost).unwrap() == old,
        "the old journal is kept"
    );
    assert_eq!(r.stan, before.stan_ceiling);
    assert_eq!(r.batch, old_batch + 1);
    assert_eq!(r.generation, 1);
    assert_ne!(r.journal_id, old_id);
    let g = store.guard();
    assert_eq!(
        (g.journal_id.as_str(), g.generation),
        (r.journal_id.as_str(), 1)
    );

    let mut t = open_guarded(server.local_addr(), &path, &store, 5).unwrap();
    assert!(t.journal().all().unwrap().is_empty());
    assert_eq!(t.batch(), old_batch + 1);
    let audit = t.journal().audit_log(10).unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, _, action, detail)| action == "journal_reset" && detail.contains(&old_id)),
        "{audit:?}"
    );
    t.admin().sign_in("01").await.unwrap();
    let s = t.sale(4_100, test_card(), None, None).await.unwrap();
    assert_eq!(s.record.state, TxnState::Approved);
    assert!(
        s.record.stan > before.stan_ceiling,
        "STAN {} continues above the old reservation {}",
        s.record.stan,
        before.stan_ceiling
    );
    assert!(s.record.batch > old_batch);
    t.disconnect().await;
    drop(t);
    // A second reset in the same second does not overwrite the kept copy.
    assert!(matches!(
        reset_journal(
            &path,
            &JournalKey::new(KEY),
            store.clone(),
            5,
            1_900_000_000_999
        ),
        Err(TerminalError::Config(_))
    ));
    assert!(std::fs::read(&lost).unwrap() == old);
    server.shutdown().await;
}

#[tokio::test]
async fn guard_write_failure_leaves_the_sale_unsent() {
    let (server, acquirer) = host().await;
    let store = GuardTestStore::new("guard-fail");
    let path = temp_journal("guard-fail");
    let mut t = open_guarded(server.local_addr(), &path, &store, 2).unwrap();
    record_sends(&mut t, store.events.clone());
    t.admin().sign_in("01").await.unwrap();
    *store.fail_puts.lock().unwrap() = true;
    let mut failed = None;
    for i in 0..4 {
        let sends_before = store.events.lock().unwrap().len();
        match t.sale(500 + i, test_card(), None, None).await {
            Ok(s) => assert_eq!(s.record.state, TxnState::Approved),
            Err(e) => {
                assert!(matches!(e, TerminalError::GuardStore { .. }), "{e:?}");
                assert_eq!(e.diagnosis().code, "terminal.guard_store_failed");
                assert_eq!(
                    store.events.lock().unwrap().len(),
                    sends_before,
                    "nothing was sent after the failed guard write"
                );
                failed = Some(500 + i);
                break;
            }
        }
    }
    let failed = failed.expect("a sale crossed the 2-STAN reservation");
    assert!(matches!(
        t.sale(900, test_card(), None, None).await,
        Err(TerminalError::Poisoned)
    ));
    assert!(
        !acquirer
            .ledger()
            .transactions
            .iter()
            .any(|e| e.amount == failed),
        "the host never saw it"
    );
    t.disconnect().await;
    drop(t);
    // The store back: the terminal reopens, reserves past the journal, and reconciles.
    *store.fail_puts.lock().unwrap() = false;
    let mut t = open_guarded(server.local_addr(), &path, &store, 2).unwrap();
    let stan = t.journal().restore().unwrap().counters.stan;
    assert!(
        store
            .guard()
            .covers(t.journal().restore().unwrap().counters),
        "stan {stan}"
    );
    t.recover().await.unwrap();
    let diffs = reconcile(&t.journal().all().unwrap(), &acquirer.ledger(), TID, false);
    assert!(diffs.is_empty(), "{diffs:?}");
    t.disconnect().await;
    server.shutdown().await;
}

#[tokio::test]
async fn reservation_is_written_before_a_stan_past_the_ceiling_goes_out() {
    let (server, _) = host().await;
    for block in [2, STAN_BLOCK] {
        let store = GuardTestStore::new(&format!("guard-order-{block}"));
        let path = temp_journal(&format!("guard-order-{block}"));
        let mut t = open_guarded(server.local_addr(), &path, &store, block).unwrap();
        record_sends(&mut t, store.events.clone());
        t.admin().sign_in("01").await.unwrap();
        let started = std::time::Instant::now();
        for i in 0..20 {
            t.sale(700 + i, test_card(), None, None).await.unwrap();
        }
        let elapsed = started.elapsed();
        t.disconnect().await;
        let events = store.events.lock().unwrap().clone();
        let mut reserved = None;
        let mut sends = 0;
        for e in &events {
            match *e {
                GuardEvent::Guard { base, ceiling } => reserved = Some((base, ceiling)),
                GuardEvent::Send { stan } => {
                    sends += 1;
                    let (base, ceiling) = reserved.expect("a guard before the first send");
                    assert!(
                        base <= stan && stan <= ceiling,
                        "STAN {stan} sent outside the reservation {base}..={ceiling}: {events:?}"
                    );
                }
            }
        }
        assert!(sends >= 21);
        let writes = store.guard_writes();
        if block == 2 {
            // One reservation per 3 STANs (base, base + 1, base + 2), plus the one at open.
            assert!(
                writes * 3 >= sends,
                "{writes} guard writes for {sends} messages"
            );
        } else {
            assert!(writes <= 2, "{writes} guard writes for {sends} messages");
        }
        println!(
            "journal guard: block {block}: {writes} guard writes for {sends} messages, 20 sales in {elapsed:?}"
        );
    }
    server.shutdown().await;
}

/// Issue 19 item 3 (ADR 0008): under the journal guard, a journal rewritten to look like an
/// untagged version 2 journal (tag columns and chain head dropped, version set back) is
/// refused with `journal.tampered` instead of being tagged again as a migration. A guard
/// written before tags existed is marked on the next open.
#[tokio::test]
async fn a_journal_rewritten_to_an_untagged_schema_is_refused_under_the_guard() {
    let (path, _, acquirer) = committed_journal("guard-downgrade").await;
    let (server, _) = host_with(acquirer.clone()).await;
    let store = GuardTestStore::new("guard-downgrade");
    drop(open_guarded(server.local_addr(), &path, &store, STAN_BLOCK).unwrap());
    let g = store.guard();
    assert!(g.authenticated);
    // The same guard as an SDK before tags wrote it (no `authenticated`).
    let old = format!(
        r#"{{"version":{},"journal_id":"{}","stan_base":{},"stan_ceiling":{},"batch":{},"generation":{}}}"#,
        g.version, g.journal_id, g.stan_base, g.stan_ceiling, g.batch, g.generation
    );
    store.inner.put(GUARD_NAME, old.as_bytes()).unwrap();
    assert!(!store.guard().authenticated);
    drop(open_guarded(server.local_addr(), &path, &store, STAN_BLOCK).unwrap());
    assert!(store.guard().authenticated, "marked on open");

    smartpos_tests::edit_journal_file(
        &path,
        "ALTER TABLE txn DROP COLUMN tag; ALTER TABLE pending DROP COLUMN tag;
         ALTER TABLE counters DROP COLUMN tag; ALTER TABLE settlement DROP COLUMN tag;
         ALTER TABLE card_on_file DROP COLUMN tag; DROP TABLE chain_head;
         PRAGMA user_version = 2;",
    );
    let dir = path.parent().unwrap().to_path_buf();
    let before = files(&dir);
    let e = open_guarded(server.local_addr(), &path, &store, STAN_BLOCK).unwrap_err();
    assert!(
        matches!(&e, TerminalError::Journal(JournalError::Tampered(r)) if r.table == "chain_head" && r.key == "schema 2"),
        "{e:?}"
    );
    assert_eq!(e.diagnosis().code, "journal.tampered");
    assert!(files(&dir) == before, "the refused journal was modified");
    server.shutdown().await;
}
