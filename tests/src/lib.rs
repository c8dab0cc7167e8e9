//! Cross-crate test support for the SmartPOS SDK.
//!
//! - [`Pair`]: the sans-IO engine of `smartpos-txn` wired to the acquirer of `smartpos-sim`
//!   on virtual time, with the real SQLite journal of `smartpos-terminal` (in a temporary
//!   file, so a "crash" is dropping the engine and restoring from the journal). Faults are
//!   scripted per request with the same [`FaultSet`] the TCP server uses.
//! - [`test_card`] and friends: test card data (test PANs only).
//! - [`MutableHost`]: the simulator's acquirer behind a server, with a switch that swallows
//!   its answers (the lost-answer / reversal paths of the crash and secrets tests).
//! - [`ped::PedDouble`]: a test double of a hardware security module (keys by slot index, PIN
//!   only from its own pad), for the suite that runs against both kinds of module
//!   (`e2e/secmod.rs`); [`ModuleSource`] gives a [`Pair`] its module.
//!
//! The tests themselves are in `e2e/` (one binary).

// Test support: a setup failure is a test failure, so panicking with a message is the point.
#![allow(clippy::panic, clippy::expect_used)]

pub mod ped;
pub mod soak;

use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::{SecurityModule, SoftwareModule};
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, TEST_TMK_HEX};
use smartpos_sim::fault::{FaultKind, FaultSet};
use smartpos_sim::net::{ConnInfo, FrameHandler};
use smartpos_terminal::card::{ApduTransport, CardSource, PinEntry};
use smartpos_terminal::journal::{Journal, JournalKey};
use smartpos_terminal::{Terminal, TerminalError, TxnOutcome};
use smartpos_txn::engine::{CardCompletion, CardVerdict, Event, Finished, Output};
use smartpos_txn::model::{LocalDateTime, Now, TxnRecord};
use smartpos_txn::proto::{CardData, Identity, Profile};
use smartpos_txn::{Engine, EngineConfig, TxnIntent};
use smartpos_types::{Pan, Track2};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Terminal id used by tests.
pub const TID: &str = "12345678";
/// Merchant id used by tests.
pub const MID: &str = "123456789012345";

/// An acquirer that can be told to swallow its answers: the request is still booked (the
/// host saw it), the terminal gets nothing back.
pub struct MutableHost {
    /// The simulated acquirer (its ledger is the truth the journal is reconciled with).
    pub acquirer: Arc<Acquirer>,
    /// While true, answers are dropped.
    pub mute: AtomicBool,
}

impl MutableHost {
    /// A host in front of `acquirer`, answering.
    pub fn new(acquirer: Arc<Acquirer>) -> Self {
        MutableHost {
            acquirer,
            mute: AtomicBool::new(false),
        }
    }

    /// Starts or stops swallowing answers.
    pub fn set_mute(&self, mute: bool) {
        self.mute.store(mute, Ordering::SeqCst);
    }
}

impl FrameHandler for MutableHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let a = self.acquirer.handle_request(conn.faults, request);
        if self.mute.load(Ordering::SeqCst) {
            Vec::new()
        } else {
            a.into_iter().collect()
        }
    }
}

/// The test TMK shared by the simulator and test terminals.
pub fn test_tmk() -> TdesKey {
    let bytes = smartpos_types::hex::decode(TEST_TMK_HEX).expect("test TMK hex");
    TdesKey::new(&bytes).expect("test TMK")
}

/// A keyed test card (UnionPay test PAN range).
pub fn test_card() -> CardData {
    CardData {
        pan: Pan::new("6222021234567890128").ok(),
        expiry: Some("3012".into()),
        entry_mode: "012".into(),
        ..CardData::default()
    }
}

/// A magnetic-stripe test card.
pub fn swiped_card() -> CardData {
    CardData {
        // Service code 101: a magnetic-stripe-only card (a chip card's 2xx would be refused
        // when swiped, `smartpos_emv::certified::accept`).
        track2: Track2::new("6222021234567890128D30121011234567890"),
        entry_mode: "022".into(),
        ..CardData::default()
    }
}

/// A fresh temporary directory, removed with everything in it when the value is dropped.
///
/// A test that fails keeps its directory for a look: when the drop happens during a panic the
/// directory stays and its path goes to stderr. Names are unique per process and call, so
/// tests running in parallel never share one.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `smartpos-test-<name>-<pid>-<n>` under the system temp dir.
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("smartpos-test-{name}-{}-{n}", std::process::id()));
        // A directory left by an earlier process with the same pid is stale.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("temporary directory {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file named `file` in the directory, which lives as long as the returned value.
    pub fn into_file(self, file: &str) -> TempFile {
        let path = self.path.join(file);
        TempFile { _dir: self, path }
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// A path to a file in its own [`TempDir`]; the directory goes when this is dropped.
#[derive(Debug)]
pub struct TempFile {
    _dir: TempDir,
    path: PathBuf,
}

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A fresh temporary directory: [`TempDir::new`]. Keep the value while the directory is used.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(name)
}

/// `journal.db` in a fresh temporary directory. Keep the value while the journal is used.
pub fn temp_journal(name: &str) -> TempFile {
    TempDir::new(name).into_file("journal.db")
}

/// How the host of a [`Pair`] answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAnswer {
    /// Processes it and answers as it decides.
    AsUsual,
    /// Processes it, then answers with this response code instead of its own.
    Processed(&'static str),
    /// Leaves its ledger alone and answers with this response code.
    NotProcessed(&'static str),
}

/// Engine + host + journal on virtual time.
pub struct Pair {
    /// The terminal engine.
    pub engine: Engine,
    /// The terminal journal.
    pub journal: Journal,
    journal_path: PathBuf,
    /// The temporary directory of a journal the pair made itself (removed with the pair).
    dir: Option<TempDir>,
    /// The host.
    pub host: Arc<Acquirer>,
    /// Virtual monotonic time (ms).
    pub now_ms: u64,
    /// Faults to apply to the next requests, one per request (then none).
    pub script: VecDeque<FaultSet>,
    /// How the host answers the next requests, one per request (then as usual). Popped
    /// together with `script`, whose faults apply only to an `AsUsual` answer.
    pub answers: VecDeque<HostAnswer>,
    inbox: VecDeque<Vec<u8>>,
    held: Vec<Vec<u8>>,
    link_down: bool,
    /// Every event the engine emitted, in order.
    pub events: Vec<Event>,
    /// Every frame body the terminal sent.
    pub sent: Vec<Vec<u8>>,
    /// What a contact chip card decides when the engine asks ([`Output::CompleteCard`]), one
    /// per request; `None` in the queue: the card does not answer (the pair stops there, as a
    /// crash before the decision would); an empty queue: the card accepts.
    pub card_verdicts: VecDeque<Option<CardVerdict>>,
    /// Every completion the engine asked a card for.
    pub completions: Vec<CardCompletion>,
    profile: Profile,
    /// Gives the engine its security module, at start and at each restart.
    module: ModuleSource,
}

/// Gives a [`Pair`]'s engine its security module when it starts and restarts: a fresh
/// software module each time (a new process holds no keys in memory), or the same device
/// (a PED keeps its keys across an app restart).
pub type ModuleSource = Arc<dyn Fn() -> Arc<dyn SecurityModule> + Send + Sync>;

/// The software module over the TEST TMK, new at every start: today's terminal.
pub fn software_modules() -> ModuleSource {
    Arc::new(|| Arc::new(SoftwareModule::new(test_tmk())) as Arc<dyn SecurityModule>)
}

/// A fault set with one transport fault.
pub fn transport(kind: FaultKind) -> FaultSet {
    FaultSet {
        transport: Some(kind),
        ..FaultSet::default()
    }
}

fn engine_config(profile: Profile) -> EngineConfig {
    let mut cfg = EngineConfig::new(
        Identity {
            tid: TID.into(),
            mid: MID.into(),
            currency: smartpos_types::Currency::CNY,
        },
        profile,
    );
    cfg.response_timeout_ms = 30_000;
    cfg
}

impl Pair {
    /// A new pair for a dialect (`cup`, `iso87b`), with a fresh journal and a fresh host.
    pub fn new(dialect: &str) -> Pair {
        Pair::with_modules(dialect, software_modules())
    }

    /// [`Pair::new`] with the engine's security module from `module`.
    pub fn with_modules(dialect: &str, module: ModuleSource) -> Pair {
        let host = Arc::new(
            Acquirer::new(AcquirerConfig {
                dialect: dialect.into(),
                tmk: test_tmk(),
                ledger_file: None,
            })
            .unwrap_or_else(|e| panic!("host: {e}")),
        );
        let dir = TempDir::new("pair");
        let profile = Profile::by_name(dialect).expect("built-in dialect");
        let mut p = Pair::with_host_profile_module(profile, host, &dir.join("journal.db"), module);
        p.dir = Some(dir);
        p
    }

    /// A pair for an acquirer profile: the engine and a fresh host both run `profile`.
    pub fn with_profile(profile: Profile) -> Pair {
        let host = Arc::new(
            Acquirer::with_profile(
                AcquirerConfig {
                    dialect: profile.name().into(),
                    tmk: test_tmk(),
                    ledger_file: None,
                },
                profile.clone(),
            )
            .unwrap_or_else(|e| panic!("host: {e}")),
        );
        let dir = TempDir::new("pair");
        let mut p = Pair::with_host_profile(profile, host, &dir.join("journal.db"));
        p.dir = Some(dir);
        p
    }

    /// A pair over an existing host and journal file.
    pub fn with_host(dialect: &str, host: Arc<Acquirer>, journal_path: &Path) -> Pair {
        let profile = Profile::by_name(dialect).expect("built-in dialect");
        Pair::with_host_profile(profile, host, journal_path)
    }

    /// A pair over an existing host and journal file, for a profile.
    pub fn with_host_profile(profile: Profile, host: Arc<Acquirer>, journal_path: &Path) -> Pair {
        Pair::with_host_profile_module(profile, host, journal_path, software_modules())
    }

    /// A pair over an existing host and journal file, for a profile, with the engine's
    /// security module from `module`.
    pub fn with_host_profile_module(
        profile: Profile,
        host: Arc<Acquirer>,
        journal_path: &Path,
        module: ModuleSource,
    ) -> Pair {
        let journal = Journal::open(journal_path, &JournalKey::new([9; 32]))
            .unwrap_or_else(|e| panic!("journal: {e}"));
        let restored = journal.restore().unwrap_or_else(|e| panic!("restore: {e}"));
        let engine = Engine::restore(engine_config(profile.clone()), module(), restored);
        let mut p = Pair {
            engine,
            journal,
            journal_path: journal_path.to_owned(),
            dir: None,
            host,
            now_ms: 1_000,
            script: VecDeque::new(),
            answers: VecDeque::new(),
            inbox: VecDeque::new(),
            held: Vec::new(),
            link_down: false,
            events: Vec::new(),
            sent: Vec::new(),
            card_verdicts: VecDeque::new(),
            completions: Vec::new(),
            profile,
            module,
        };
        p.flush();
        p
    }

    /// Simulates a crash and restart: the engine is dropped with whatever it held in memory,
    /// and a new one is restored from the journal file. The host keeps its ledger.
    pub fn restart(self) -> Pair {
        let Pair {
            engine,
            journal,
            host,
            journal_path,
            dir,
            profile,
            now_ms,
            module,
            ..
        } = self;
        // The old journal closes (and gives up its lock) before the new one opens.
        drop(engine);
        drop(journal);
        let mut p = Pair::with_host_profile_module(profile, host, &journal_path, module);
        p.now_ms = now_ms;
        p.dir = dir;
        p
    }

    /// Keeps `dir` (the directory of the pair's journal) as long as the pair lives.
    pub fn keep_dir(&mut self, dir: TempDir) {
        self.dir = Some(dir);
    }

    /// The current virtual time.
    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.now_ms,
            unix_ms: 1_795_315_266_000 + i64::try_from(self.now_ms).unwrap_or(0),
            local: LocalDateTime::from_unix_ms_utc(1_795_315_266_000),
        }
    }

    /// Applies pending commits and collects events without waiting; returns a finished result.
    fn flush(&mut self) -> Option<Finished> {
        let mut done = None;
        while let Some(o) = self.engine.poll() {
            match o {
                Output::Commit(c) => {
                    self.journal
                        .apply(&c)
                        .unwrap_or_else(|e| panic!("journal apply: {e}"));
                    self.engine.commit_done(c.id);
                }
                Output::Transmit(bytes) => self.deliver(bytes),
                Output::CompleteCard(c) => {
                    self.completions.push(c);
                    let verdict =
                        self.card_verdicts
                            .pop_front()
                            .unwrap_or(Some(CardVerdict::Accepted {
                                icc: vec![0x9F, 0x27, 0x01, 0x40],
                                script_results: Vec::new(),
                            }));
                    match verdict {
                        Some(v) => {
                            let now = self.now();
                            self.engine.handle_card_decision(now, v);
                        }
                        None => return None,
                    }
                }
                Output::Event(Event::Finished(f)) => done = Some(f),
                Output::Event(e) => self.events.push(e),
            }
        }
        done
    }

    fn deliver(&mut self, bytes: Vec<u8>) {
        self.sent.push(bytes.clone());
        if self.link_down {
            // A previous close: this send reconnects.
            self.link_down = false;
        }
        let faults = self.script.pop_front().unwrap_or_default();
        // Late answers held from the previous request arrive first.
        self.inbox.extend(self.held.drain(..));
        let answer = match self.answers.pop_front().unwrap_or(HostAnswer::AsUsual) {
            HostAnswer::AsUsual => self.host.handle_request(faults, &bytes),
            HostAnswer::Processed(code) => self.host.handle_and_answer(&bytes, code),
            HostAnswer::NotProcessed(code) => self.host.refuse(&bytes, code),
        };
        let timeout = self.engine.config().response_timeout_ms;
        match (faults.transport, answer) {
            (_, None) => {}
            (None, Some(a)) => self.inbox.push_back(a),
            (Some(FaultKind::Drop), Some(_)) => {}
            (Some(FaultKind::Close | FaultKind::Truncate), Some(_)) => self.link_down = true,
            (Some(FaultKind::Garbage), Some(a)) => {
                self.inbox.push_back(a.iter().map(|b| b ^ 0xA5).collect());
            }
            (Some(FaultKind::Duplicate), Some(a)) => {
                self.inbox.push_back(a.clone());
                self.inbox.push_back(a);
            }
            (Some(FaultKind::Late), Some(a)) => self.held.push(a),
            (Some(FaultKind::Delay(d)), Some(a)) => {
                if u64::try_from(d.as_millis()).unwrap_or(u64::MAX) >= timeout {
                    self.held.push(a);
                } else {
                    self.inbox.push_back(a);
                }
            }
            (Some(_), Some(a)) => self.inbox.push_back(a),
        }
    }

    /// Runs until the current command finishes, advancing virtual time to each deadline.
    pub fn run(&mut self) -> Finished {
        match self.run_to(false) {
            Some(f) => f,
            None => panic!("the engine waits for a card that does not answer"),
        }
    }

    /// Runs until the engine waits for a card that does not answer (a `None` verdict queued
    /// in [`Pair::card_verdicts`]): the state a crash during the card's decision leaves.
    pub fn run_to_card(&mut self) {
        if let Some(f) = self.run_to(true) {
            panic!("finished before the card decided: {f:?}");
        }
    }

    fn run_to(&mut self, stop_at_card: bool) -> Option<Finished> {
        for _ in 0..10_000 {
            if let Some(f) = self.flush() {
                return Some(f);
            }
            if self.engine.awaits_card() {
                if stop_at_card {
                    return None;
                }
                panic!("the engine waits for a card that does not answer");
            }
            if self.link_down {
                self.link_down = false;
                let now = self.now();
                self.engine.handle_link_error(now, true);
                continue;
            }
            if let Some(frame) = self.inbox.pop_front() {
                let now = self.now();
                self.engine.handle_host_frame(now, &frame);
                continue;
            }
            match self.engine.poll_timeout() {
                Some(deadline) => {
                    self.now_ms = self.now_ms.max(deadline);
                    let now = self.now();
                    self.engine.handle_timeout(now);
                }
                None => panic!("engine idle without a result"),
            }
        }
        panic!("command did not finish in 10000 steps");
    }

    /// Runs the engine until it has emitted `n` transmits and stops there without answering
    /// the last one (to emulate a crash right after a send): the host's answers to the earlier
    /// ones are handed to the engine. Returns after the n-th frame was handed out.
    pub fn run_until_sent(&mut self, n: usize) {
        let target = self.sent.len() + n;
        while self.sent.len() < target {
            match self.engine.poll() {
                Some(Output::Commit(c)) => {
                    self.journal
                        .apply(&c)
                        .unwrap_or_else(|e| panic!("journal apply: {e}"));
                    self.engine.commit_done(c.id);
                }
                Some(Output::Transmit(bytes)) => self.deliver(bytes),
                Some(Output::Event(e)) => self.events.push(e),
                Some(Output::CompleteCard(c)) => self.completions.push(c),
                None => match self.inbox.pop_front() {
                    Some(frame) => {
                        let now = self.now();
                        self.engine.handle_host_frame(now, &frame);
                    }
                    None => panic!("engine stopped before sending"),
                },
            }
        }
    }

    /// The journal's records.
    pub fn records(&self) -> Vec<TxnRecord> {
        self.journal.all().unwrap_or_default()
    }

    /// Reconciles journal and ledger.
    pub fn reconcile(&self) -> Vec<String> {
        smartpos_sim::reconcile::reconcile(&self.records(), &self.host.ledger(), TID, true)
    }
}

/// A signed-in terminal (`cup`, journal in a fresh temporary directory, 2 s response timeout)
/// talking over loopback TCP to a fresh host simulator. Returns the server (shut it down at the
/// end), the host (for its ledger), the terminal and its directory (removed when dropped: keep
/// it as long as the terminal).
pub async fn loopback_terminal(
    name: &str,
) -> (
    smartpos_sim::net::ServerHandle,
    Arc<Acquirer>,
    smartpos_terminal::Terminal,
    TempDir,
) {
    let dir = TempDir::new(name);
    let (server, host, t) = loopback_terminal_in(&dir).await;
    (server, host, t, dir)
}

/// [`loopback_terminal`] with its journal at `dir/j.db` (reopen it with [`reopen_terminal`]).
pub async fn loopback_terminal_in(
    dir: &std::path::Path,
) -> (
    smartpos_sim::net::ServerHandle,
    Arc<Acquirer>,
    smartpos_terminal::Terminal,
) {
    use smartpos_sim::net::{Server, ServerConfig};
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .expect("host"),
    );
    let server = Server::bind(ServerConfig::default(), acquirer.clone())
        .await
        .expect("bind")
        .spawn();
    let mut link = smartpos_terminal::link::LinkConfig::plain(format!(
        "127.0.0.1:{}",
        server.local_addr().port()
    ));
    link.response_timeout = std::time::Duration::from_secs(2);
    let cfg = smartpos_terminal::TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    };
    let mut t = reopen_terminal(cfg, dir);
    t.admin().sign_in("01").await.expect("sign in");
    (server, acquirer, t)
}

/// Opens the journal of [`loopback_terminal_in`] at `dir` again, with the same keys.
pub fn reopen_terminal(
    cfg: smartpos_terminal::TerminalConfig,
    dir: &std::path::Path,
) -> smartpos_terminal::Terminal {
    smartpos_terminal::Terminal::open(
        cfg,
        &dir.join("j.db"),
        test_tmk(),
        &JournalKey::new([1; 32]),
    )
    .expect("open")
}

/// Shorthands the tests use for the terminal's card-present calls, written over the one entry
/// point [`Terminal::transact`], and the refund over the policy-checked
/// [`Terminal::refund_checked`] (the operator comes from the session when one is logged in).
#[allow(async_fn_in_trait)]
pub trait TerminalCalls {
    /// A sale with the given card data.
    async fn sale(
        &mut self,
        amount: u64,
        card: CardData,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
    /// A pre-authorisation with the given card data.
    async fn preauth(
        &mut self,
        amount: u64,
        card: CardData,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
    /// A balance inquiry.
    async fn balance(
        &mut self,
        card: CardData,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
    /// A sale through our own contactless kernel.
    async fn sale_contactless(
        &mut self,
        amount: u64,
        transport: &mut dyn ApduTransport,
        pin: Option<&mut dyn PinEntry>,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
    /// A pre-authorisation through our own contactless kernel.
    async fn preauth_contactless(
        &mut self,
        amount: u64,
        transport: &mut dyn ApduTransport,
        pin: Option<&mut dyn PinEntry>,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
    /// A refund through the refund policy.
    async fn refund(
        &mut self,
        reference: &str,
        amount: u64,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError>;
}

/// The intent of a test call.
pub fn intent(
    base: TxnIntent,
    key: Option<&str>,
    operator: Option<&str>,
) -> Result<TxnIntent, TerminalError> {
    base.key_text(key)
        .and_then(|i| i.operator_text(operator))
        .map_err(|e| TerminalError::Config(e.to_string()))
}

async fn given(
    t: &mut Terminal,
    base: TxnIntent,
    card: CardData,
    key: Option<&str>,
    operator: Option<&str>,
) -> Result<TxnOutcome, TerminalError> {
    let i = intent(base, key, operator)?;
    t.transact(i, CardSource::Given(card)).await
}

async fn tapped(
    t: &mut Terminal,
    i: TxnIntent,
    transport: &mut dyn ApduTransport,
    pin: Option<&mut dyn PinEntry>,
) -> Result<TxnOutcome, TerminalError> {
    // Shortens the PIN pad's object lifetime to the transport's (a coercion).
    let pin = pin.map(|p| -> &mut dyn PinEntry { p });
    t.transact(i, CardSource::OwnKernel { transport, pin })
        .await
}

impl TerminalCalls for Terminal {
    async fn sale(
        &mut self,
        amount: u64,
        card: CardData,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        given(self, TxnIntent::sale(amount), card, key, operator).await
    }

    async fn preauth(
        &mut self,
        amount: u64,
        card: CardData,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        given(self, TxnIntent::preauth(amount), card, key, operator).await
    }

    async fn balance(
        &mut self,
        card: CardData,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        given(self, TxnIntent::balance(), card, None, operator).await
    }

    async fn sale_contactless(
        &mut self,
        amount: u64,
        transport: &mut dyn ApduTransport,
        pin: Option<&mut dyn PinEntry>,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        let i = intent(TxnIntent::sale(amount), key, operator)?;
        tapped(self, i, transport, pin).await
    }

    async fn preauth_contactless(
        &mut self,
        amount: u64,
        transport: &mut dyn ApduTransport,
        pin: Option<&mut dyn PinEntry>,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        let i = intent(TxnIntent::preauth(amount), key, operator)?;
        tapped(self, i, transport, pin).await
    }

    async fn refund(
        &mut self,
        reference: &str,
        amount: u64,
        key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.refund_checked(reference, amount, key, operator, None)
            .await
    }
}

/// Runs `sql` on the journal file at `path` behind the SDK's back, as someone holding the file
/// would (tamper tests of the CLI and the runtime; issue 19 item 3).
pub fn edit_journal_file(path: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("open the journal file");
    conn.execute_batch(sql).expect("edit the journal file");
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn a_temporary_directory_goes_when_dropped_and_stays_when_its_test_fails() {
        let dir = TempDir::new("tempdir-drop");
        std::fs::write(dir.join("f"), b"x").expect("write");
        let path = dir.to_path_buf();
        let file = TempDir::new("tempdir-file").into_file("journal.db");
        let file_dir = file.parent().expect("parent").to_path_buf();
        assert!(path.is_dir() && file_dir.is_dir());
        drop(dir);
        drop(file);
        assert!(!path.exists(), "{}", path.display());
        assert!(!file_dir.exists(), "{}", file_dir.display());

        let kept = std::thread::spawn(|| {
            let dir = TempDir::new("tempdir-panic");
            let path = dir.to_path_buf();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _dir = dir;
                panic!("a failing test");
            }));
            assert!(r.is_err());
            path
        })
        .join()
        .expect("thread");
        assert!(kept.is_dir(), "a failed test keeps its files");
        std::fs::remove_dir_all(&kept).expect("clean up");
    }
}
