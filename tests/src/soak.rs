//! The fault soak: many mixed transactions from several terminals, concurrently, against one
//! in-process host simulator that injects every fault kind; then recovery against a clean
//! server and reconciliation of every journal with the host ledger.
//!
//! Shared by the `soak` binary (`scripts/soak.sh N`) and the CI test (`e2e/soak.rs`).
//!
//! What the figures mean:
//! - **lost**: a host approval (or void) that the terminal does not know, or knows in another
//!   state, after recovery. Must be 0.
//! - **phantom**: a terminal approval (or void) the host does not hold. Must be 0.
//! - **benign differences**: what `smartpos_sim::reconcile` reports where neither side moved
//!   money (the terminal reversed a request the host had declined). Reported only.
//! - **doubled**: more than one host approval for one terminal intent, or two intents of one
//!   terminal sharing a STAN and date (the host would take the second for a repeat). Must be 0.
//! - **in doubt**: after recovery, records still `sending` / `reversing` / `queued`, or pending
//!   reversals and advices left. Must be 0.
//!
//! The seed fixes each terminal's workload (kinds, amounts, order) and the fault stream. The
//! four terminals run concurrently, so which request draws which fault also depends on the
//! scheduling: a seed reproduces the workload exactly and the faults statistically.

use crate::TerminalCalls;
use crate::{MID, swiped_card, temp_dir, test_card, test_tmk};
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, HostStatus, Ledger};
use smartpos_sim::fault::{FaultKind, FaultPlan, SplitMix64};
use smartpos_sim::net::{ConnInfo, FrameHandler, Server, ServerConfig};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::journal::JournalKey;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{Terminal, TerminalConfig, TerminalError, TxnOutcome};
use smartpos_txn::engine::OpError;
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Soak settings.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Total transactions to attempt, spread over the terminals.
    pub transactions: usize,
    /// Number of terminals (distinct TIDs, each with its own journal), run concurrently.
    pub terminals: usize,
    /// Seed of the workload and of the host's fault stream.
    pub seed: u64,
    /// Combined fault rate over all kinds, in `[0, 1]`.
    pub fault_rate: f64,
    /// The terminals' response timeout; the `delay` fault waits 1.5 times as long.
    pub response_timeout: Duration,
    /// Host dialect (`cup` or `iso87b`).
    pub dialect: String,
    /// Where the journals go (a fresh temporary directory when `None`).
    pub dir: Option<PathBuf>,
}

impl SoakConfig {
    /// The CI defaults for `transactions` transactions: 4 terminals, 20% faults, 200 ms
    /// timeout, `cup`.
    pub fn new(transactions: usize, seed: u64) -> SoakConfig {
        SoakConfig {
            transactions,
            terminals: 4,
            seed,
            fault_rate: 0.2,
            response_timeout: Duration::from_millis(200),
            dialect: "cup".into(),
            dir: None,
        }
    }

    /// The fault plan: every kind, sharing `fault_rate` equally. Transport kinds are exclusive
    /// slices of one draw; `bad-mac` and `wrong-stan` are independent draws (see
    /// `smartpos_sim::fault`), so the combined rate is `fault_rate` to within a fraction of
    /// a percent.
    pub fn plan(&self) -> FaultPlan {
        let delay = self.response_timeout + self.response_timeout / 2;
        let kinds = [
            FaultKind::Drop,
            FaultKind::Delay(delay),
            FaultKind::Close,
            FaultKind::Garbage,
            FaultKind::Truncate,
            FaultKind::BadMac,
            FaultKind::WrongStan,
            FaultKind::Duplicate,
            FaultKind::Late,
        ];
        let share = self.fault_rate / kinds.len() as f64;
        FaultPlan {
            rules: kinds.into_iter().map(|k| (k, share)).collect(),
        }
    }
}

/// The soak's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakReport {
    /// The seed used.
    pub seed: u64,
    /// Terminals run.
    pub terminals: usize,
    /// Transactions the app started (including those refused before sending).
    pub attempted: u64,
    /// Attempts by kind (`sale`, `void`, `refund`, `preauth`, `completion`).
    pub attempted_by_kind: BTreeMap<String, u64>,
    /// Settlements attempted / settled.
    pub settlements: (u64, u64),
    /// Final journal states after recovery, by state name (all terminals).
    pub final_states: BTreeMap<String, u64>,
    /// What each call returned, as `kind:state` (final at the time the call returned).
    pub outcomes: BTreeMap<String, u64>,
    /// Commands that returned an error, by error (no card data in these texts).
    pub errors: BTreeMap<String, u64>,
    /// Refunds that were still queued when their call returned.
    pub refunds_queued: u64,
    /// Of those, refunds the host acknowledged by the end.
    pub refunds_forwarded: u64,
    /// Requests the host received (all connections, both servers).
    pub host_requests: u64,
    /// Faults injected, by kind name.
    pub faults: BTreeMap<String, u64>,
    /// Host approvals unknown to or mismatched at the terminal after recovery (must be 0).
    pub lost: u64,
    /// Terminal approvals (or voids) the host does not hold in the same state (must be 0).
    pub phantom: u64,
    /// Reconciliation differences where neither side moved money (e.g. the terminal reversed
    /// a request the host had declined): reported, not failures.
    pub benign_diffs: u64,
    /// Requests the host received, by MTI (`0200`, `0400`, `0221`, ...).
    pub host_mtis: BTreeMap<String, u64>,
    /// Sales retried by the app with the same idempotency key.
    pub replays: u64,
    /// Host approvals in excess of one per terminal intent, STAN collisions, and idempotent
    /// retries that did not return the recorded outcome (must be 0).
    pub doubled: u64,
    /// Records or pending items still in doubt after recovery (must be 0).
    pub in_doubt: u64,
    /// The reconciliation differences (`smartpos_sim::reconcile`), for the report.
    pub diffs: Vec<String>,
    /// Wall time of the whole soak.
    pub elapsed: Duration,
}

impl SoakReport {
    /// Whether every must-be-zero figure is zero.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.phantom == 0 && self.doubled == 0 && self.in_doubt == 0
    }

    /// Faults injected, all kinds.
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let state = |s: &str| self.final_states.get(s).copied().unwrap_or(0);
        writeln!(
            f,
            "soak: seed {} terminals {} elapsed {:.1}s",
            self.seed,
            self.terminals,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  attempted     {} ({})",
            self.attempted,
            map(&self.attempted_by_kind)
        )?;
        writeln!(
            f,
            "  settlements   {} attempted, {} settled",
            self.settlements.0, self.settlements.1
        )?;
        writeln!(
            f,
            "  approved {}  declined {}  reversed {}  not_sent {}  voided {}",
            state("approved"),
            state("declined"),
            state("reversed"),
            state("not_sent"),
            state("voided")
        )?;
        writeln!(f, "  final states  {}", map(&self.final_states))?;
        writeln!(
            f,
            "  refunds       {} queued -> {} forwarded; idempotent replays {}",
            self.refunds_queued, self.refunds_forwarded, self.replays
        )?;
        writeln!(f, "  call outcomes {}", map(&self.outcomes))?;
        writeln!(f, "  errors        {}", map(&self.errors))?;
        let rate = if self.host_requests == 0 {
            0.0
        } else {
            self.faults_total() as f64 * 100.0 / self.host_requests as f64
        };
        writeln!(
            f,
            "  host requests {}  faults {} ({rate:.1}%): {}",
            self.host_requests,
            self.faults_total(),
            map(&self.faults)
        )?;
        writeln!(f, "  host MTIs     {}", map(&self.host_mtis))?;
        writeln!(
            f,
            "  lost {}  phantom {}  doubled {}  in_doubt {}  (benign diffs {})  => {}",
            self.lost,
            self.phantom,
            self.doubled,
            self.in_doubt,
            self.benign_diffs,
            if self.ok() { "PASS" } else { "FAIL" }
        )?;
        for d in &self.diffs {
            writeln!(f, "  diff: {d}")?;
        }
        Ok(())
    }
}

/// Wraps the acquirer to count the faults the server picks for each request.
struct CountingHost {
    acquirer: Arc<Acquirer>,
    dialect: &'static smartpos_iso8583::Dialect,
    mtis: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    faults: Mutex<BTreeMap<String, u64>>,
}

impl FrameHandler for CountingHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mti = match self.dialect.unpack(request) {
            Ok(m) => format!("{:04}", m.mti.0),
            Err(_) => "undecodable".to_owned(),
        };
        *self
            .mtis
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(mti)
            .or_default() += 1;
        let f = conn.faults;
        if !f.is_empty() {
            let mut m = self
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(k) = f.transport {
                *m.entry(k.name().to_owned()).or_default() += 1;
            }
            if f.bad_mac {
                *m.entry("bad-mac".into()).or_default() += 1;
            }
            if f.wrong_stan {
                *m.entry("wrong-stan".into()).or_default() += 1;
            }
        }
        self.acquirer
            .handle_request(f, request)
            .into_iter()
            .collect()
    }
}

/// What one terminal's task observed.
#[derive(Debug, Default)]
struct TerminalRun {
    attempted: BTreeMap<String, u64>,
    settlements: (u64, u64),
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    replays: u64,
    replay_mismatches: u64,
    /// Idempotency keys of refunds still queued when the call returned.
    queued_refunds: Vec<String>,
}

fn tid_of(i: usize) -> String {
    format!("{:08}", 87_650_000 + i)
}

fn terminal_config(dialect: &str, tid: &str, port: u16, timeout: Duration) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{port}"));
    link.response_timeout = timeout;
    link.connect_timeout = Duration::from_secs(2);
    TerminalConfig {
        tid: tid.to_owned(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: dialect.to_owned(),
        link,
        utc_offset_minutes: 0,
    }
}

fn journal_key() -> JournalKey {
    JournalKey::new([0x5A; 32])
}

fn open_terminal(cfg: TerminalConfig, path: &Path) -> Result<Terminal, String> {
    Terminal::open(cfg, path, test_tmk(), &journal_key()).map_err(|e| format!("open: {e}"))
}

fn error_name(e: &TerminalError) -> String {
    match e {
        TerminalError::Op(OpError::Rejected { .. }) => "rejected".into(),
        TerminalError::Op(OpError::PendingUndelivered { .. }) => "pending_undelivered".into(),
        TerminalError::Op(OpError::NotSent) => "not_sent".into(),
        TerminalError::Op(OpError::NoResponse) => "no_response".into(),
        TerminalError::Op(OpError::HostRefused { code }) => format!("host_refused_{code}"),
        TerminalError::Op(other) => format!("op: {other}"),
        TerminalError::NotFound { .. } => "not_found".into(),
        TerminalError::IdempotencyConflict => "idempotency_conflict".into(),
        other => format!("{other}"),
    }
}

/// A random amount in minor units; the host's amount table declines some endings.
fn amount(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    lo + rng.next_u64() % (hi - lo + 1)
}

/// One terminal's workload against the faulty server.
async fn run_terminal(
    cfg: TerminalConfig,
    path: PathBuf,
    count: usize,
    seed: u64,
) -> Result<TerminalRun, String> {
    let tid = cfg.tid.clone();
    let mut t = open_terminal(cfg, &path)?;
    let mut run = TerminalRun::default();
    let mut rng = SplitMix64::new(seed);
    let mut signed = false;
    for _ in 0..50 {
        if t.admin().sign_in("01").await.is_ok() {
            signed = true;
            break;
        }
    }
    if !signed {
        return Err(format!("{tid}: sign-in never succeeded"));
    }
    // Candidates for follow-up transactions (references of approved originals in the open
    // batch), kept by the app as a POS app would.
    let mut sales: Vec<(String, u64)> = Vec::new();
    let mut preauths: Vec<String> = Vec::new();
    let mut done = 0usize;
    let mut step = 0u64;
    while done < count {
        step += 1;
        let key = format!("{tid}-{step}");
        let roll = rng.next_u64() % 100;
        let (kind, result): (&str, Option<Result<TxnOutcome, TerminalError>>) = match roll {
            0..=39 => {
                let card = if rng.next_u64().is_multiple_of(3) {
                    swiped_card()
                } else {
                    test_card()
                };
                let a = amount(&mut rng, 100, 99_999);
                let first = t.sale(a, card.clone(), Some(&key), Some("01")).await;
                if rng.next_u64().is_multiple_of(10) {
                    // The app retries with the same key (it lost our answer): the recorded
                    // outcome must come back and nothing may reach the host again.
                    run.replays += 1;
                    let again = t.sale(a, card, Some(&key), Some("01")).await;
                    let same = match (&first, &again) {
                        (Ok(x), Ok(y)) => y.replayed && x.record.reference == y.record.reference,
                        // A request refused before any record was written is simply retried.
                        (Err(_), _) => true,
                        _ => false,
                    };
                    if !same {
                        run.replay_mismatches += 1;
                    }
                }
                ("sale", Some(first))
            }
            40..=49 => match pick(&mut rng, &mut sales) {
                Some((r, _)) => ("void", Some(t.void(&r, Some(&key), Some("01")).await)),
                None => ("void", None),
            },
            50..=64 => match sales.len() {
                0 => ("refund", None),
                n => {
                    let i = usize::try_from(rng.next_u64() % n as u64).unwrap_or(0);
                    let (r, a) = sales[i].clone();
                    // Partial: at most a third of the original, so most refunds are allowed.
                    let part = amount(&mut rng, 1, (a / 3).max(1));
                    (
                        "refund",
                        Some(t.refund(&r, part, Some(&key), Some("01")).await),
                    )
                }
            },
            65..=79 => {
                let a = amount(&mut rng, 1_000, 99_999);
                (
                    "preauth",
                    Some(t.preauth(a, test_card(), Some(&key), None).await),
                )
            }
            80..=97 => match pick(&mut rng, &mut preauths) {
                Some(r) => {
                    let a = amount(&mut rng, 100, 999);
                    (
                        "completion",
                        Some(t.complete(&r, a, Some(&key), None).await),
                    )
                }
                None => ("completion", None),
            },
            _ => {
                run.settlements.0 += 1;
                match t.settle().await {
                    Ok(_) => {
                        run.settlements.1 += 1;
                        // A new batch: the old originals can no longer be voided.
                        sales.clear();
                        preauths.clear();
                    }
                    Err(e) => {
                        *run.errors
                            .entry(format!("settle {}", error_name(&e)))
                            .or_default() += 1
                    }
                }
                continue;
            }
        };
        let Some(result) = result else { continue };
        done += 1;
        *run.attempted.entry(kind.to_owned()).or_default() += 1;
        match result {
            Ok(o) => {
                *run.outcomes
                    .entry(format!("{kind}:{}", o.record.state))
                    .or_default() += 1;
                let approved = o.record.state == TxnState::Approved;
                match kind {
                    "sale" if approved => sales.push((o.record.reference.clone(), o.record.amount)),
                    "preauth" if approved => preauths.push(o.record.reference.clone()),
                    "refund" if o.record.state == TxnState::Queued => {
                        run.queued_refunds.push(key.clone());
                    }
                    _ => {}
                }
            }
            Err(e) => {
                *run.errors.entry(error_name(&e)).or_default() += 1;
                if matches!(e, TerminalError::Op(OpError::PendingUndelivered { .. })) {
                    // What an app does: deliver what is pending, then carry on.
                    let _ = t.recover().await;
                }
                if matches!(e, TerminalError::Op(OpError::NotSignedIn)) {
                    let _ = t.admin().sign_in("01").await;
                }
                if kind == "refund"
                    && let Ok(Some(rec)) = t.journal().by_idempotency_key(&key)
                    && rec.state == TxnState::Queued
                {
                    run.queued_refunds.push(key.clone());
                }
            }
        }
    }
    t.disconnect().await;
    Ok(run)
}

/// Removes and returns a random element.
fn pick<T>(rng: &mut SplitMix64, v: &mut Vec<T>) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    let i = usize::try_from(rng.next_u64() % v.len() as u64).unwrap_or(0);
    Some(v.swap_remove(i))
}

/// Recovers one terminal against the clean server until nothing is pending (or 20 tries);
/// returns its records and how many pending items are left.
async fn recover_terminal(
    cfg: TerminalConfig,
    path: &Path,
) -> Result<(Vec<TxnRecord>, u64), String> {
    let tid = cfg.tid.clone();
    let mut t = open_terminal(cfg, path)?;
    for _ in 0..20 {
        match t.recover().await {
            Ok((_, 0)) if t.pending().is_empty() => break,
            Ok(_) => {}
            Err(e) => log::warn!("{tid}: recovery failed: {e}"),
        }
    }
    let records = t.journal().all().map_err(|e| format!("{tid}: {e}"))?;
    let pending = t.pending().len() as u64;
    t.disconnect().await;
    Ok((records, pending))
}

/// Counts host approvals in excess of one per terminal intent, and STAN/date collisions.
fn doubled(records: &[TxnRecord], ledger: &Ledger, tid: &str) -> u64 {
    let mut extra = 0u64;
    let mut seen: HashMap<(u32, &str), u32> = HashMap::new();
    for r in records.iter().filter(|r| r.kind != TxnKind::Balance) {
        let n = seen.entry((r.stan, r.local_date.as_str())).or_default();
        *n += 1;
        if *n > 1 {
            extra += 1;
        }
        let approvals = ledger
            .transactions
            .iter()
            .filter(|h| {
                h.tid == tid
                    && h.stan == r.stan
                    && h.date == r.local_date
                    && matches!(h.status, HostStatus::Approved | HostStatus::Voided)
            })
            .count() as u64;
        extra += approvals.saturating_sub(1);
    }
    extra
}

/// Money disagreements between one terminal's journal and the ledger.
struct Money {
    lost: u64,
    phantom: u64,
}

/// Whether money moved on each side, per record and per host entry: the host holds an approval
/// (or void) the terminal does not hold in the same state (lost), or the terminal holds one the
/// host does not (phantom).
fn money_check(records: &[TxnRecord], ledger: &Ledger, tid: &str) -> Money {
    let same = |r: &TxnRecord, h: HostStatus| {
        matches!(
            (r.state, h),
            (TxnState::Approved, HostStatus::Approved) | (TxnState::Voided, HostStatus::Voided)
        )
    };
    let mut m = Money {
        lost: 0,
        phantom: 0,
    };
    for h in ledger.transactions.iter().filter(|h| h.tid == tid) {
        if !matches!(h.status, HostStatus::Approved | HostStatus::Voided) {
            continue;
        }
        let known = records
            .iter()
            .any(|r| r.stan == h.stan && r.local_date == h.date && same(r, h.status));
        if !known {
            m.lost += 1;
        }
    }
    for r in records.iter().filter(|r| r.kind != TxnKind::Balance) {
        if !matches!(r.state, TxnState::Approved | TxnState::Voided) {
            continue;
        }
        let host = ledger
            .transactions
            .iter()
            .rfind(|h| h.tid == tid && h.stan == r.stan && h.date == r.local_date);
        if !host.is_some_and(|h| same(r, h.status)) {
            m.phantom += 1;
        }
    }
    m
}

fn in_doubt(records: &[TxnRecord]) -> u64 {
    records
        .iter()
        .filter(|r| {
            matches!(
                r.state,
                TxnState::Sending | TxnState::Reversing | TxnState::Queued
            )
        })
        .count() as u64
}

/// Runs the soak and returns its figures. `Err` only for setup failures (a server that does
/// not bind, a journal that does not open, a terminal that cannot sign in or recover); the
/// money checks are in the report.
pub async fn run(cfg: SoakConfig) -> Result<SoakReport, String> {
    let started = Instant::now();
    let acquirer = Arc::new(Acquirer::new(AcquirerConfig {
        dialect: cfg.dialect.clone(),
        tmk: test_tmk(),
        ledger_file: None,
    })?);
    let host = Arc::new(CountingHost {
        acquirer: acquirer.clone(),
        dialect: smartpos_iso8583::Dialect::by_name(&cfg.dialect)
            .ok_or_else(|| format!("unknown dialect {}", cfg.dialect))?,
        mtis: Mutex::new(BTreeMap::new()),
        requests: AtomicU64::new(0),
        faults: Mutex::new(BTreeMap::new()),
    });
    let faulty = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            tls: None,
            faults: cfg.plan(),
            seed: cfg.seed,
            ..ServerConfig::default()
        },
        host.clone(),
    )
    .await
    .map_err(|e| e.to_string())?
    .spawn();
    // Without a directory of the caller's, the journals go with this run (and stay if it
    // panics: see `TempDir`).
    let scratch;
    let dir: &std::path::Path = match &cfg.dir {
        Some(d) => d,
        None => {
            scratch = temp_dir("soak");
            &scratch
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let terminals = cfg.terminals.max(1);
    let mut tasks = Vec::new();
    let mut seeds = SplitMix64::new(cfg.seed ^ 0x50AC_50AC);
    for i in 0..terminals {
        let tid = tid_of(i);
        let path = dir.join(format!("journal-{tid}.db"));
        let _ = std::fs::remove_file(&path);
        let count = cfg.transactions / terminals + usize::from(i < cfg.transactions % terminals);
        let tcfg = terminal_config(
            &cfg.dialect,
            &tid,
            faulty.local_addr().port(),
            cfg.response_timeout,
        );
        let seed = seeds.next_u64();
        tasks.push((
            tid,
            path.clone(),
            tokio::spawn(run_terminal(tcfg, path, count, seed)),
        ));
    }
    let mut report = SoakReport {
        seed: cfg.seed,
        terminals,
        ..SoakReport::default()
    };
    let mut runs = Vec::new();
    for (tid, path, task) in tasks {
        let r = task
            .await
            .map_err(|e| format!("{tid}: terminal task failed: {e}"))??;
        runs.push((tid, path, r));
    }
    faulty.shutdown().await;

    // Recovery against a clean server with the same host state.
    let clean = Server::bind(ServerConfig::default(), host.clone())
        .await
        .map_err(|e| e.to_string())?
        .spawn();
    let mut journals = Vec::new();
    for (tid, path, run) in &runs {
        let tcfg = terminal_config(
            &cfg.dialect,
            tid,
            clean.local_addr().port(),
            Duration::from_secs(2),
        );
        let (records, pending) = recover_terminal(tcfg, path).await?;
        report.in_doubt += pending;
        journals.push(records);
        for (k, v) in &run.attempted {
            *report.attempted_by_kind.entry(k.clone()).or_default() += v;
            report.attempted += v;
        }
        for (k, v) in &run.outcomes {
            *report.outcomes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &run.errors {
            *report.errors.entry(k.clone()).or_default() += v;
        }
        report.replays += run.replays;
        report.doubled += run.replay_mismatches;
        report.settlements.0 += run.settlements.0;
        report.settlements.1 += run.settlements.1;
    }
    clean.shutdown().await;

    let ledger = acquirer.ledger();
    for ((tid, _, run), records) in runs.iter().zip(&journals) {
        let diffs = reconcile(records, &ledger, tid, false);
        let money = money_check(records, &ledger, tid);
        report.lost += money.lost;
        report.phantom += money.phantom;
        report.benign_diffs += (diffs.len() as u64).saturating_sub(money.lost + money.phantom);
        report
            .diffs
            .extend(diffs.into_iter().map(|d| format!("{tid}: {d}")));
        report.doubled += doubled(records, &ledger, tid);
        report.in_doubt += in_doubt(records);
        for r in records {
            *report.final_states.entry(r.state.to_string()).or_default() += 1;
        }
        report.refunds_queued += run.queued_refunds.len() as u64;
        report.refunds_forwarded += run
            .queued_refunds
            .iter()
            .filter(|k| {
                records.iter().any(|r| {
                    r.idempotency_key.as_deref() == Some(k.as_str())
                        && r.state == TxnState::Approved
                })
            })
            .count() as u64;
    }
    // Host approvals for TIDs the soak never used would be a routing bug: count them too.
    let tids: Vec<&str> = runs.iter().map(|(t, _, _)| t.as_str()).collect();
    report.lost += ledger
        .transactions
        .iter()
        .filter(|h| !tids.contains(&h.tid.as_str()))
        .count() as u64;
    report.host_requests = host.requests.load(Ordering::Relaxed);
    report.faults = host
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report.host_mtis = host
        .mtis
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report.elapsed = started.elapsed();
    Ok(report)
}
