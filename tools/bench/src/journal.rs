//! Item 4: journal scaling. For each size, a journal file is filled with that many transaction
//! rows (bulk, see [`fill`]), then the harness times opening it (the journal alone, its restore,
//! and the whole [`Terminal::open`]) and a series of contactless sales on it against the loopback
//! host.
//!
//! Open must not grow with the row count (it reads counters, pending items and in-flight rows
//! through indexes), and the per-sale cost must stay flat (B-tree inserts grow with log n only).
//! Each sale is also reported without its two journal commits (`sale_without_commits`): the disk
//! syncs vary by milliseconds from one sale to the next, and hide whatever grows with the rows.
//! [`query_plans`] reports SQLite's plan for every query that runs at open, so a slow open can be
//! traced to the query that scans.

use crate::BenchError;
use crate::sale::{attach_probe, one_sale};
use crate::setup::{
    TID, journal_key, run_dir, signed_in_terminal, start_host, terminal_config, test_tmk,
};
use crate::stats::{Samples, round3};
use rusqlite::Connection;
use smartpos_terminal::Terminal;
use smartpos_terminal::journal::Journal;
use smartpos_txn::model::{
    LocalDate, LocalTime, PosEntryMode, ResponseCode, TxnKind, TxnRecord, TxnState,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of the journal-scaling run.
#[derive(Debug, Clone)]
pub struct JournalBench {
    /// Row counts to measure, e.g. `[1_000, 100_000, 1_000_000]`.
    pub sizes: Vec<u64>,
    /// Timed sales per size.
    pub sales: usize,
    /// Timed opens per size.
    pub opens: usize,
    /// Directory for the journal files (default: the system temp dir); removed afterwards.
    pub dir: Option<PathBuf>,
}

impl Default for JournalBench {
    fn default() -> Self {
        JournalBench {
            sizes: vec![1_000, 100_000, 1_000_000],
            sales: 50,
            opens: 5,
            dir: None,
        }
    }
}

/// A past transaction as the bulk fill writes it: approved sales (every 20th declined), in
/// batches of 1,000 numbered from 900000 so they never collide with the live batch.
pub fn bulk_record(i: u64, now_ms: i64, total: u64) -> TxnRecord {
    let batch = 900_000 + u32::try_from(i / 1_000).unwrap_or(0) % 100_000;
    let stan = u32::try_from(i % 1_000).unwrap_or(0) + 1;
    let age_s = i64::try_from(total - i.min(total)).unwrap_or(0);
    let at = now_ms - age_s * 1_000;
    let declined = i % 20 == 19;
    TxnRecord {
        reference: format!("{batch:06}{stan:06}"),
        kind: TxnKind::Sale,
        state: if declined {
            TxnState::Declined
        } else {
            TxnState::Approved
        },
        amount: 100 + i % 50_000,
        currency: smartpos_types::Currency::CNY,
        stan,
        batch,
        local_time: LocalTime::NOON,
        local_date: LocalDate::JANUARY_1,
        rrn: Some(format!("{:012}", i)),
        auth_code: (!declined).then(|| format!("{:06}", i % 1_000_000)),
        response_code: Some(if declined {
            ResponseCode::INSUFFICIENT_FUNDS
        } else {
            ResponseCode::APPROVED
        }),
        original_ref: None,
        idempotency_key: Some(format!("bulk-{i}")),
        operator: Some("01".into()),
        pan_masked: Some("622202******0128".into()),
        entry_mode: Some(PosEntryMode::CONTACTLESS_CHIP),
        created_at_ms: at,
        updated_at_ms: at,
        card: None,
    }
}

/// Fills the journal at `path` with `rows` past transactions; returns the rows written.
///
/// The rows go in through the journal's own API ([`Journal::import_txns`]: one SQLite
/// transaction, each row tagged as a commit tags it, issue 21 item 5), so the file is one the
/// terminal trusts on open; the WAL is then checkpointed into the database, so the measured
/// opens start from a settled file.
pub fn fill(path: &Path, rows: u64) -> Result<u64, BenchError> {
    let mut journal =
        Journal::open(path, &journal_key()).map_err(|e| BenchError::setup("journal", e))?;
    let now_ms = unix_ms();
    let written = journal
        .import_txns((0..rows).map(|i| bulk_record(i, now_ms, rows)))
        .map_err(|e| BenchError::setup("bulk fill", e))?;
    drop(journal);
    let conn = Connection::open(path).map_err(|e| BenchError::setup("bulk fill", e))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| BenchError::setup("bulk fill", e))?;
    Ok(written)
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Untimed sales on each journal before the timed ones (caches, connection, allocator).
const WARMUP_SALES: usize = 20;

/// The queries that run when a terminal opens, for [`query_plans`].
const OPEN_QUERIES: &[&str] = &[
    "SELECT stan, batch, pending_seq FROM counters WHERE id = 1",
    "SELECT * FROM txn WHERE state = 'sending' ORDER BY created_at_ms",
    "SELECT value FROM meta WHERE key = 'wrapped_keys'",
    "SELECT batch, step FROM settlement WHERE id = 1",
    "SELECT * FROM pending ORDER BY seq",
    "SELECT record FROM operator ORDER BY id",
];

/// SQLite's query plan (`EXPLAIN QUERY PLAN`) for each query run at open, one string each.
pub fn query_plans(path: &Path) -> Result<Vec<String>, BenchError> {
    let conn = Connection::open(path).map_err(|e| BenchError::run("query plan", e))?;
    let mut out = Vec::new();
    for q in OPEN_QUERIES {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {q}"))
            .map_err(|e| BenchError::run("query plan", e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .map_err(|e| BenchError::run("query plan", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BenchError::run("query plan", e))?;
        out.push(format!("{q} => {}", rows.join("; ")));
    }
    Ok(out)
}

/// Runs the journal-scaling measurement; returns the JSON report (one object).
pub async fn run(cfg: &JournalBench) -> Result<serde_json::Value, BenchError> {
    let dir = run_dir(cfg.dir.as_deref(), "journal")?;
    let result = run_in(cfg, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(cfg: &JournalBench, dir: &Path) -> Result<serde_json::Value, BenchError> {
    let host = start_host().await?;
    let mut sizes = Vec::new();
    for &rows in &cfg.sizes {
        let path = dir.join(format!("journal-{rows}.db"));
        let started = Instant::now();
        fill(&path, rows)?;
        let fill_s = started.elapsed().as_secs_f64();

        // The first open after the fill writes what a new journal gets once (operator salt,
        // supervisor record); it is reported on its own, the steady state is what is sampled.
        let start = Instant::now();
        drop(
            Terminal::open(
                terminal_config(TID, &host.address()),
                &path,
                test_tmk()?,
                &journal_key(),
            )
            .map_err(|e| BenchError::run("terminal open", e))?,
        );
        let first_open_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut journal_open = Samples::new();
        let mut whole_check = Samples::new();
        let mut restore = Samples::new();
        let mut terminal_open = Samples::new();
        for _ in 0..cfg.opens.max(1) {
            let start = Instant::now();
            let j = Journal::open(&path, &journal_key()).map_err(|e| BenchError::run("open", e))?;
            journal_open.push(start.elapsed());
            // The whole-journal check that open starts on its own connection (ADR 0008):
            // money commands wait for its verdict, open does not.
            let start = Instant::now();
            if let Some(t) = j.tampered() {
                return Err(BenchError::run("journal check", t));
            }
            whole_check.push(start.elapsed());
            let start = Instant::now();
            j.restore().map_err(|e| BenchError::run("restore", e))?;
            restore.push(start.elapsed());
            drop(j);
            let start = Instant::now();
            let t = Terminal::open(
                terminal_config(TID, &host.address()),
                &path,
                test_tmk()?,
                &journal_key(),
            )
            .map_err(|e| BenchError::run("terminal open", e))?;
            terminal_open.push(start.elapsed());
            drop(t);
        }

        let mut t = signed_in_terminal(&path, &host).await?;
        let log = attach_probe(&mut t);
        let mut sale = Samples::new();
        let mut unsynced = Samples::new();
        for i in 0..cfg.sales + WARMUP_SALES {
            let (took, _, b) = one_sale(&mut t, &log, i).await?;
            if i >= WARMUP_SALES {
                sale.push(took);
                unsynced.push(took.saturating_sub(b.commit_time));
            }
        }
        drop(t);
        let plans = query_plans(&path)?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
        sizes.push(serde_json::json!({
            "rows": rows,
            "file_bytes": bytes,
            "fill_s": round3(fill_s),
            "first_open_ms": round3(first_open_ms),
            "journal_open": journal_open.summary(),
            "whole_journal_check": whole_check.summary(),
            "restore": restore.summary(),
            "terminal_open": terminal_open.summary(),
            "sale": sale.summary(),
            "sale_without_commits": unsynced.summary(),
            "open_query_plans": plans,
        }));
    }
    host.server.shutdown().await;
    Ok(serde_json::json!({
        "bench": "journal_scaling",
        "sales_per_size": cfg.sales,
        "sizes": sizes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_records_have_unique_references_and_keys() {
        let mut refs = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for i in 0..5_000 {
            let r = bulk_record(i, 1_800_000_000_000, 5_000);
            assert_eq!(r.reference.len(), 12);
            assert!(refs.insert(r.reference));
            assert!(keys.insert(r.idempotency_key));
        }
    }

    #[test]
    fn fill_writes_the_rows_and_the_journal_restores() {
        let dir = run_dir(None, "fill-test").unwrap();
        let path = dir.join("j.db");
        assert_eq!(fill(&path, 2_500).unwrap(), 2_500);
        let j = Journal::open(&path, &journal_key()).unwrap();
        assert_eq!(j.all().unwrap().len(), 2_500);
        assert!(j.restore().unwrap().in_flight.is_empty());
        let plans = query_plans(&path).unwrap();
        assert_eq!(plans.len(), OPEN_QUERIES.len());
        assert!(plans.iter().any(|p| p.contains("txn_state")), "{plans:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
