//! The terminal: the public Rust API that drives the sans-IO engine with a real clock, the
//! SQLite journal and the host link.
//!
//! One command runs at a time (`&mut self`): a POS terminal serves one customer at a time, and
//! the journal's ordering guarantees rest on it. Each command loops the engine's outputs: apply
//! commits to the journal (durable before anything else happens), send frames, collect events,
//! and wait for a frame or the engine's deadline.

use crate::card::{
    ApduTransport, CardError, CardRead, CardSource, PinBlocks, card_data, complete_certified,
    kernel_request, read_certified, read_contactless,
};
use crate::facets::{Admin, Receipts, Support};
use crate::guard::{GuardWriter, JournalGuard};
use crate::journal::{CardInfo, TraceLine};
use crate::journal::{Journal, JournalError, JournalKey};
use crate::link::{HostLink, LinkConfig, LinkError};
use crate::printing::{
    PrintJob, PrinterStatus, ReceiptPrinter, ReceiptSettings, copy_name, job_for,
};
use crate::safety::Safety;
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::{DukptKsn, KeyRef, ModuleError, SecurityModule, SoftwareModule};
use smartpos_emv::certified::{CardDecision, CertifiedKernel, EntryMode};
use smartpos_emv::kernel::{CryptogramType, Cvm, KernelConfig, issuer_response};
use smartpos_iso8583::BuiltInDialect;
use smartpos_receipt::{CryptogramKind, EmvFields, Lang, MerchantInfo, ReceiptCopy, Width};
use smartpos_txn::engine::{CardVerdict, Command, Event, OpError, Outcome, Output, TxnRequest};
use smartpos_txn::journal::JournalOp;
use smartpos_txn::model::{LocalDateTime, Now, PendingItem, TxnKind, TxnRecord, TxnState};
use smartpos_txn::proto::{CardData, Identity, Profile, Reply};
use smartpos_txn::{Engine, EngineConfig};
use smartpos_txn::{IdempotencyKey, OperatorId, TxnIntent};
use smartpos_types::Currency;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Terminal settings.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// Terminal id (field 41, 8 characters).
    pub tid: String,
    /// Merchant id (field 42, 15 characters).
    pub mid: String,
    /// ISO 4217 numeric currency, e.g. `156` (CNY).
    pub currency: String,
    /// Built-in profile name: `cup` or `iso87b`.
    pub dialect: String,
    /// Host link settings (address, TLS, connect and response timeouts).
    pub link: LinkConfig,
    /// Offset of the terminal's local time from UTC, in minutes (fields 12/13).
    pub utc_offset_minutes: i32,
}

/// Terminal failures. A decline is not an error: it is a [`TxnOutcome`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TerminalError {
    /// The journal failed. The terminal must be reopened (recovery runs on open).
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The engine refused or could not complete the command.
    #[error("{0}")]
    Op(#[from] OpError),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// No transaction with that reference.
    #[error("no transaction with reference {reference}")]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// The idempotency key was used for a different kind of transaction or amount.
    #[error("idempotency key already used for a different request")]
    IdempotencyConflict,
    /// An operator rule refused the command (not logged in, locked, wrong password, ...).
    #[error("operator: {0}")]
    Operator(smartpos_operators::OperatorError),
    /// The refund policy denied the refund; every rule that denies is listed. Nothing was sent.
    #[error("refund denied by policy: {}", denials.iter().map(|d| d.rule.code()).collect::<Vec<_>>().join(", "))]
    RefundDenied {
        /// Every denying rule, each with its diagnosis.
        denials: Vec<smartpos_operators::policy::Denial>,
    },
    /// The card could not be read, or PIN entry failed. Nothing was sent to the host.
    #[error("{0}")]
    Card(#[from] CardError),
    /// A previous journal failure left the engine and the journal out of step.
    #[error("terminal must be reopened after a journal failure")]
    Poisoned,
    /// The host's TLS layer refused the terminal (its certificate is not trusted here, the
    /// pin does not match, or the host requires a client certificate the terminal did not
    /// present or that it refused): nothing reached the host.
    #[error("{0}")]
    HostLink(crate::link::LinkError),
    /// The journal guard in the secure store names a journal, but the journal file is missing,
    /// empty or has no identity (deleted, emptied, or replaced by a new file). Nothing was
    /// created or changed. Only support may reset the journal (`guard::reset_journal`).
    #[error(
        "journal {path} is missing or empty, but this terminal had journal {expected}: refusing to start a new one (the lost journal may hold pending reversals and advices; do not reset without support)"
    )]
    JournalMissing {
        /// The journal file.
        path: String,
        /// The identity the guard expects.
        expected: String,
    },
    /// The journal file is another journal than the one the guard names (another terminal's,
    /// or a restored foreign copy).
    #[error(
        "journal {found} is not this terminal's journal {expected}: refusing to use it (do not reset without support)"
    )]
    JournalMismatch {
        /// The identity the guard expects.
        expected: String,
        /// The identity found in the file (`none` for a journal without one).
        found: String,
    },
    /// The journal is older than the guard: its STAN is behind the guard's reservation base or
    /// its batch behind the guard's batch (an old copy was restored). Detected per reservation
    /// block, not per transaction (see `guard.rs`).
    #[error(
        "journal is an old copy: STAN {stan:06} batch {batch:06}, but this terminal already reached STAN {guard_stan:06} batch {guard_batch:06} (do not reset without support)"
    )]
    JournalRolledBack {
        /// STAN in the journal.
        stan: u32,
        /// Batch in the journal.
        batch: u32,
        /// The guard's reservation base.
        guard_stan: u32,
        /// The guard's batch.
        guard_batch: u32,
    },
    /// The journal guard could not be read or written in the secure store. When it happens
    /// during a command, nothing with the new STAN was sent; reopen the terminal.
    #[error("secure store: {reason}")]
    GuardStore {
        /// What failed.
        reason: String,
    },
    /// The command failed after a security failure (a response that failed its MAC check, or
    /// the host's `A0` / `97`) that signing in again once did not cure: the keys still
    /// disagree, or the sign-in failed (`recovery` says which). `cause` is the command's own
    /// error (often `PendingUndelivered`: a reversal the host's answers keep failing).
    #[error("{cause} (security keys: {})", recovery_text(*recovery))]
    Security {
        /// How the terminal's own recovery ended.
        recovery: smartpos_diagnosis::SecurityRecovery,
        /// The command's error.
        cause: OpError,
    },
}

fn recovery_text(r: smartpos_diagnosis::SecurityRecovery) -> &'static str {
    use smartpos_diagnosis::SecurityRecovery as R;
    match r {
        R::KeysRenewed => "renewed",
        R::MacStillFailing => "renewed, and the host's answers still fail their MAC check",
        R::SignInFailed => "signing in again failed",
        R::SignInKeyCheck => "the new keys failed their check values",
        R::SignInModuleFailed => "the security module could not load the new keys",
        _ => "not renewed",
    }
}

/// The result of a financial command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutcome {
    /// The transaction as journaled.
    pub record: TxnRecord,
    /// The host's reply, when there was one in this call.
    pub reply: Option<Reply>,
    /// Whether a reversal for it is still waiting to be acknowledged by the host.
    pub reversal_pending: bool,
    /// Whether this outcome was recorded earlier under the same idempotency key (nothing was sent).
    pub replayed: bool,
    /// For chip and contactless cards: what the card did.
    pub card: Option<CardSummary>,
    /// When this call had to sign in again by itself (a response failed its MAC check, or the
    /// host answered `A0` / `97`): how that ended. The diagnosis of a reversed transaction
    /// then says the keys were renewed, or why they could not be.
    pub security: Option<smartpos_diagnosis::SecurityRecovery>,
}

/// What a chip card did during a transaction (no card data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    /// Receipt data (AID, label, TVR, TSI, cryptogram, CVM).
    pub info: CardInfo,
    /// Whether the host's answer carried an ARPC (tag 91 in field 55).
    pub arpc_received: bool,
    /// Whether a contact chip card declined (AAC at the second GENERATE AC) after the host
    /// approved: the approval was reversed.
    pub declined_by_card: bool,
}

/// A contact chip card's final decision in the transaction being run.
#[derive(Debug, Clone)]
struct CardFinal {
    cryptogram: CryptogramType,
    /// The receipt's chip data with the final cryptogram (`None`: no decision was made).
    info: Option<CardInfo>,
}

/// Something that happened during a command, for the app's screens and logs.
pub type TerminalEvent = Event;

/// The durability points of a command, reported to a probe in the order they happen. Used by
/// the crash harness (which kills the process at each point) and by the demo (which prints the
/// masked messages). Frames are raw bodies: a probe must mask before it prints.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Probe<'a> {
    /// A journal commit is about to be applied.
    BeforeCommit {
        /// Commit id.
        id: u64,
    },
    /// A journal commit is durable.
    AfterCommit {
        /// Commit id.
        id: u64,
    },
    /// A frame is about to be written to the host.
    BeforeSend(&'a [u8]),
    /// A frame was written to the host.
    AfterSend(&'a [u8]),
    /// A frame was read from the host (before the engine sees it).
    Received(&'a [u8]),
}

type ProbeFn = Box<dyn FnMut(Probe<'_>) + Send>;
type ListenerFn = Box<dyn FnMut(&TerminalEvent) + Send>;

/// The terminal runtime.
pub struct Terminal {
    pub(crate) cfg: TerminalConfig,
    pub(crate) engine: Engine,
    pub(crate) journal: Journal,
    link: Option<HostLink>,
    started: Instant,
    poisoned: bool,
    listener: Option<ListenerFn>,
    probe: Option<ProbeFn>,
    printer: Option<Box<dyn ReceiptPrinter>>,
    receipts: ReceiptSettings,
    pub(crate) kernel: KernelConfig,
    last_frame: Option<Vec<u8>>,
    /// Chip data of the card transaction being run, until the commit that creates its record
    /// stores it.
    card_info: Option<CardInfo>,
    /// The record `card_info` belongs to, when the engine no longer names it (the commit of a
    /// card's final decision comes after the command finished).
    card_info_ref: Option<String>,
    /// The final decision of the contact chip card of the transaction being run.
    card_final: Option<CardFinal>,
    /// How the certified kernel may take cards.
    entry_modes: Vec<EntryMode>,
    pub(crate) safety: Safety,
    trace: Vec<TraceLine>,
    guard: Option<GuardWriter>,
    /// The host's answers in this session, and whether it asked for a sign-in.
    pub(crate) answers: crate::host_answers::HostAnswers,
    /// The host's TLS layer refused the terminal during the current command (certificate
    /// not trusted, pin, client certificate): said instead of "no response".
    tls_refusal: Option<LinkError>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("tid", &self.cfg.tid)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The settings a [`TerminalConfig`] is made of, as the app (the FFI's `TerminalConfig`
/// record) and the CLI (`terminal.json`, [`crate::store::StoredConfig`]) both hold them: text
/// and milliseconds. [`TerminalConfig::from_settings`] is the one place that turns them into a
/// configuration, so the two cannot drift; named fields, so two strings cannot be swapped.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSettings<'a> {
    /// Terminal id (field 41, 8 characters).
    pub tid: &'a str,
    /// Merchant id (field 42, 15 characters).
    pub mid: &'a str,
    /// ISO 4217 numeric currency, e.g. `156`.
    pub currency: &'a str,
    /// Built-in profile name: `cup`, `iso87b` or `iso87a`.
    pub dialect: &'a str,
    /// Host address `host:port`.
    pub host: &'a str,
    /// Limit for TCP connect plus TLS handshake, milliseconds.
    pub connect_timeout_ms: u64,
    /// How long to wait for an answer, milliseconds.
    pub response_timeout_ms: u64,
    /// Offset of local time from UTC, minutes.
    pub utc_offset_minutes: i32,
}

impl TerminalConfig {
    /// The configuration of `settings` with `tls` (`None`: plain TCP). Checks nothing:
    /// [`TerminalConfig::validate`] and opening do.
    pub fn from_settings(
        settings: ConfigSettings<'_>,
        tls: Option<crate::link::TlsClientConfig>,
    ) -> TerminalConfig {
        TerminalConfig {
            tid: settings.tid.to_owned(),
            mid: settings.mid.to_owned(),
            currency: settings.currency.to_owned(),
            dialect: settings.dialect.to_owned(),
            link: LinkConfig {
                host: settings.host.to_owned(),
                tls,
                connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
                response_timeout: Duration::from_millis(settings.response_timeout_ms),
            },
            utc_offset_minutes: settings.utc_offset_minutes,
        }
    }

    /// Checks what can be checked without opening anything: TID and MID lengths, currency.
    pub fn validate(&self) -> Result<(), TerminalError> {
        if self.tid.len() != 8 || self.mid.len() != 15 {
            return Err(TerminalError::Config(
                "terminal id must be 8 characters and merchant id 15".into(),
            ));
        }
        // The message is `CurrencyError`'s: "currency must be an ISO 4217 numeric code (3 digits)".
        Currency::parse(&self.currency).map_err(|e| TerminalError::Config(e.to_string()))?;
        Ok(())
    }

    /// The built-in dialect [`TerminalConfig::dialect`] names, typed (`None`: not a built-in
    /// name).
    pub fn builtin_dialect(&self) -> Option<BuiltInDialect> {
        BuiltInDialect::by_name(&self.dialect)
    }
}

fn profile_of(cfg: &TerminalConfig) -> Result<Profile, TerminalError> {
    Profile::by_name(&cfg.dialect)
        .ok_or_else(|| TerminalError::Config(format!("unknown dialect {:?}", cfg.dialect)))
}

impl Terminal {
    /// Opens the terminal: the journal at `journal_path`, recovery of anything left in flight
    /// (armed reversals are journaled before this returns; they are sent by the next command or
    /// [`Terminal::recover`]). The keys are used through a [`SoftwareModule`] holding `tmk`.
    /// Without a secure store there is no journal guard: a missing or emptied journal opens as
    /// a new one, as before. Apps use [`Terminal::open_guarded`] (`DataDir::open` and the FFI
    /// do).
    pub fn open(
        cfg: TerminalConfig,
        journal_path: &Path,
        tmk: TdesKey,
        journal_key: &JournalKey,
    ) -> Result<Terminal, TerminalError> {
        let profile = profile_of(&cfg)?;
        Terminal::open_with_profile(cfg, profile, journal_path, tmk, journal_key)
    }

    /// Opens the terminal with an acquirer profile (e.g. loaded with
    /// `smartpos_txn::profile::Profile::from_toml`) instead of the built-in one named by
    /// `cfg.dialect`.
    pub fn open_with_profile(
        cfg: TerminalConfig,
        profile: Profile,
        journal_path: &Path,
        tmk: TdesKey,
        journal_key: &JournalKey,
    ) -> Result<Terminal, TerminalError> {
        let module: Arc<dyn SecurityModule> = Arc::new(SoftwareModule::new(tmk));
        Terminal::open_with_module(cfg, Some(profile), journal_path, module, journal_key)
    }

    /// Opens the terminal (no journal guard, like [`Terminal::open`]) with its keys in
    /// `module`: a device's security processor, or a test double of one. `profile` overrides
    /// the built-in profile named by `cfg.dialect`.
    pub fn open_with_module(
        cfg: TerminalConfig,
        profile: Option<Profile>,
        journal_path: &Path,
        module: Arc<dyn SecurityModule>,
        journal_key: &JournalKey,
    ) -> Result<Terminal, TerminalError> {
        cfg.validate()?;
        let profile = match profile {
            Some(p) => p,
            None => profile_of(&cfg)?,
        };
        let journal = Journal::open(journal_path, journal_key)?;
        Terminal::start(cfg, profile, journal, module, None)
    }

    /// Opens the terminal under the journal guard kept in `store` (see `guard.rs`): a journal
    /// that is missing, emptied, another terminal's or an old copy is refused
    /// ([`TerminalError::JournalMissing`], [`TerminalError::JournalMismatch`],
    /// [`TerminalError::JournalRolledBack`]) before anything is created, and the STAN
    /// reservation is rewritten in `store` whenever a commit passes it, before the message
    /// goes out. `profile` overrides the built-in profile named by `cfg.dialect`;
    /// `stan_block` is the reservation size ([`crate::guard::STAN_BLOCK`] outside tests).
    /// The keys are used through `module` (the software module from
    /// [`crate::store::load_module`], or the device's).
    /// [`Terminal::open`] (keys given directly, no store) has no guard.
    pub fn open_guarded(
        cfg: TerminalConfig,
        profile: Option<Profile>,
        journal_path: &Path,
        module: Arc<dyn SecurityModule>,
        journal_key: &JournalKey,
        store: Arc<dyn crate::store::SecureStore>,
        stan_block: u32,
    ) -> Result<Terminal, TerminalError> {
        cfg.validate()?;
        let profile = match profile {
            Some(p) => p,
            None => profile_of(&cfg)?,
        };
        let (journal, guard) =
            crate::guard::open_journal(journal_path, journal_key, store, stan_block)?;
        Terminal::start(cfg, profile, journal, module, Some(guard))
    }

    fn start(
        cfg: TerminalConfig,
        profile: Profile,
        journal: Journal,
        module: Arc<dyn SecurityModule>,
        guard: Option<GuardWriter>,
    ) -> Result<Terminal, TerminalError> {
        let restored = journal.restore()?;
        let mut ecfg = EngineConfig::new(
            Identity {
                tid: cfg.tid.clone(),
                mid: cfg.mid.clone(),
                currency: Currency::parse(&cfg.currency)
                    .map_err(|e| TerminalError::Config(e.to_string()))?,
            },
            profile,
        );
        ecfg.response_timeout_ms =
            u64::try_from(cfg.link.response_timeout.as_millis()).unwrap_or(u64::MAX);
        let engine = Engine::restore(ecfg, module, restored);
        let mut journal = journal;
        let safety = Safety::load(&mut journal, unix_now_ms())?;
        let defaults = ReceiptSettings {
            merchant: MerchantInfo {
                // No name until the app sets one: the slip prints none (not the merchant id).
                name: String::new(),
                merchant_id: cfg.mid.clone(),
                terminal_id: cfg.tid.clone(),
            },
            width: Width::W32,
            lang: if cfg
                .builtin_dialect()
                .is_some_and(BuiltInDialect::is_unionpay)
            {
                Lang::Zh
            } else {
                Lang::En
            },
        };
        let receipts = crate::printing::stored_settings(&journal)?.unwrap_or(defaults);
        let mut t = Terminal {
            cfg,
            engine,
            journal,
            link: None,
            started: Instant::now(),
            poisoned: false,
            listener: None,
            probe: None,
            printer: None,
            receipts,
            kernel: default_kernel_config(),
            last_frame: None,
            card_info: None,
            card_info_ref: None,
            card_final: None,
            entry_modes: EntryMode::ALL.to_vec(),
            safety,
            trace: Vec::new(),
            guard,
            answers: Default::default(),
            tls_refusal: None,
        };
        // The host's EMV parameters, if kept, configure our own kernel; a profile's parameters
        // are kept when the journal has none yet.
        match t.admin().terminal_params()? {
            Some(params) => t.kernel = crate::params::kernel_config(&t.kernel, &params),
            None => {
                let from_profile = t.engine.config().profile.emv_params().cloned();
                if let Some(params) = from_profile {
                    t.store_params(&params, "emv_params_profile")?;
                }
            }
        }
        // Apply the recovery commit (if any) now, so it is durable before the app does anything.
        // Not on a journal that failed its authentication check: it takes no money commit,
        // and the engine's view of it is for reading only (money commands are refused). The
        // whole-journal check may still be running (it does not hold up open); the rows the
        // recovery is built from were checked as they were read.
        while t.journal.tampered_so_far().is_none()
            && let Some(o) = t.engine.poll()
        {
            match o {
                Output::Commit(c) => {
                    t.journal.apply(&c)?;
                    if let Some(g) = t.guard.as_mut() {
                        g.after_commit(&c)?;
                    }
                    t.engine.commit_done(c.id);
                }
                Output::Event(e) => log::info!("recovery: {e:?}"),
                Output::Transmit(_) | Output::CompleteCard(_) => {
                    log::error!("engine asked to transmit during open; deferred");
                }
            }
        }
        Ok(t)
    }

    /// How this terminal's PIN blocks are made: by its security module, under the working PIK,
    /// ISO 9564 format 0.
    fn pin_blocks(&self, ksn: Option<DukptKsn>) -> PinBlocks<'_> {
        PinBlocks {
            module: self.engine.security_module().as_ref(),
            key: ksn.map_or(KeyRef::Working, KeyRef::Dukpt),
            format: self.engine.config().profile.keys.pin_format,
        }
    }

    /// DUKPT profiles: the KSN a card's PIN block is made under, reserved in the security
    /// module (which stores the advanced counter before it returns) before the card is read;
    /// the request then goes out under the same KSN. `None` for other profiles.
    fn reserve_pin_ksn(&self) -> Result<Option<DukptKsn>, TerminalError> {
        if self.engine.config().profile.keys.dukpt().is_none() {
            return Ok(None);
        }
        match self.engine.security_module().dukpt_next() {
            Ok(k) => Ok(Some(k)),
            Err(ModuleError::DukptExhausted) => Err(TerminalError::Op(OpError::DukptExhausted)),
            Err(e) => Err(TerminalError::Op(OpError::SecurityModule {
                reason: e.to_string(),
            })),
        }
    }

    /// The security module that holds this terminal's keys.
    pub fn security_module(&self) -> &Arc<dyn SecurityModule> {
        self.engine.security_module()
    }

    /// Logs an event and hands it to the listener.
    fn emit(&mut self, e: &TerminalEvent) {
        log::info!("{e:?}");
        if let Some(l) = self.listener.as_mut() {
            l(e);
        }
    }

    /// Registers a listener for progress events (present card, processing, reversal sent, ...).
    pub fn set_listener(&mut self, f: impl FnMut(&TerminalEvent) + Send + 'static) {
        self.listener = Some(Box::new(f));
    }

    /// Registers a probe called at every durability point (see [`Probe`]).
    pub fn set_probe(&mut self, f: impl FnMut(Probe<'_>) + Send + 'static) {
        self.probe = Some(Box::new(f));
    }

    fn probe(&mut self, p: Probe<'_>) {
        if let Some(f) = self.probe.as_mut() {
            f(p);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TerminalConfig {
        &self.cfg
    }

    /// Whether working keys are installed.
    pub fn signed_in(&self) -> bool {
        self.engine.signed_in()
    }

    /// The open batch number.
    pub fn batch(&self) -> u32 {
        self.engine.counters().batch
    }

    /// The journal guard as last written, when the terminal was opened through a store.
    pub fn journal_guard(&self) -> Option<&JournalGuard> {
        self.guard.as_ref().map(GuardWriter::guard)
    }

    /// The journal, for queries.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Mutable journal access (meta, audit).
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Pending reversals and advices, in delivery order.
    pub fn pending(&self) -> &[PendingItem] {
        self.engine.pending()
    }

    pub(crate) fn unix_ms(&self) -> i64 {
        unix_now_ms()
    }

    pub(crate) fn now(&self) -> Now {
        let unix_ms = unix_now_ms();
        let local_ms = unix_ms + i64::from(self.cfg.utc_offset_minutes) * 60_000;
        Now {
            mono_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            unix_ms,
            local: LocalDateTime::from_unix_ms_utc(local_ms),
        }
    }

    /// Writes the commits an idle engine queued outside a command (a supervisor's resolution
    /// of a pending reversal), as [`Terminal::drive`] does: journal, then guard, then done.
    pub(crate) fn apply_engine_commits(&mut self) -> Result<(), TerminalError> {
        if self.poisoned {
            return Err(TerminalError::Poisoned);
        }
        while let Some(c) = self.engine.poll_commit() {
            self.probe(Probe::BeforeCommit { id: c.id });
            if let Err(e) = self.journal.apply_traced(&c, &mut self.trace, None) {
                self.poisoned = true;
                return Err(e.into());
            }
            if let Some(Err(e)) = self.guard.as_mut().map(|g| g.after_commit(&c)) {
                self.poisoned = true;
                return Err(e);
            }
            self.probe(Probe::AfterCommit { id: c.id });
            self.engine.commit_done(c.id);
        }
        Ok(())
    }

    /// Runs the engine until the current command finishes.
    async fn drive(&mut self) -> Result<(Command, Result<Outcome, OpError>), TerminalError> {
        self.drive_card(None).await
    }

    /// [`Terminal::drive`] with the certified kernel of a contact chip card, which decides
    /// after the host's answer ([`Output::CompleteCard`]).
    pub(crate) async fn drive_card(
        &mut self,
        mut card: Option<&mut (dyn CertifiedKernel + '_)>,
    ) -> Result<(Command, Result<Outcome, OpError>), TerminalError> {
        if self.poisoned {
            return Err(TerminalError::Poisoned);
        }
        self.refuse_if_tampered()?;
        let mut finished = None;
        // The support-trace line of the result goes with the commit of the outcome when the
        // result is already queued behind it, instead of a write of its own afterwards.
        let mut result_traced = false;
        loop {
            while let Some(o) = self.engine.poll() {
                match o {
                    Output::Commit(c) => {
                        self.probe(Probe::BeforeCommit { id: c.id });
                        if !result_traced && let Some(f) = self.engine.queued_finish() {
                            let line = result_line(f.command, &f.result);
                            self.trace_line("event", line);
                            result_traced = true;
                        }
                        // A card transaction's chip data goes with the commit that creates
                        // its record.
                        let card = self.card_info.as_ref().and_then(|info| {
                            let reference = self
                                .card_info_ref
                                .as_deref()
                                .or(self.engine.txn_reference())?;
                            c.ops
                                .iter()
                                .any(|op| matches!(op, JournalOp::PutTxn(r) if r.reference == reference))
                                .then_some((reference, info))
                        });
                        let card_stored = card.is_some();
                        if let Err(e) = self.journal.apply_traced(&c, &mut self.trace, card) {
                            self.poisoned = true;
                            return Err(e.into());
                        }
                        if card_stored {
                            self.card_info = None;
                            self.card_info_ref = None;
                        }
                        // The STAN reservation covers this commit before the engine may send
                        // anything it allows (commits gate transmits, ADR 1).
                        if let Some(Err(e)) = self.guard.as_mut().map(|g| g.after_commit(&c)) {
                            self.poisoned = true;
                            return Err(e);
                        }
                        self.probe(Probe::AfterCommit { id: c.id });
                        self.engine.commit_done(c.id);
                    }
                    Output::Transmit(bytes) => self.send(&bytes).await,
                    Output::CompleteCard(c) => {
                        let (verdict, decision) = match card.as_deref_mut() {
                            Some(k) => complete_certified(k, &c.reply),
                            None => {
                                log::error!("a card must decide but no kernel is attached");
                                (CardVerdict::Failed, None)
                            }
                        };
                        self.card_decided(decision);
                        let now = self.now();
                        self.engine.handle_card_decision(now, verdict);
                    }
                    Output::Event(Event::Finished(f)) => finished = Some((f.command, f.result)),
                    Output::Event(e) => {
                        if matches!(e, Event::ResponseMacFailed { .. }) {
                            self.answers.mac_failed();
                        }
                        self.emit(&e);
                    }
                }
            }
            if let Some(f) = finished.take() {
                if !result_traced {
                    self.trace_line("event", result_line(f.0, &f.1));
                }
                // Lines not written with a commit (none after a sale or a refund).
                if let Err(e) = self.journal.flush_trace(&mut self.trace) {
                    log::warn!("support trace not written: {e}");
                }
                return Ok(f);
            }
            let Some(deadline) = self.engine.poll_timeout() else {
                // Nothing awaited and nothing finished: the engine has nothing more to do.
                return Err(TerminalError::Op(OpError::Proto(
                    "engine stopped without a result".into(),
                )));
            };
            let now = self.now();
            let wait = Duration::from_millis(deadline.saturating_sub(now.mono_ms));
            match self.link.as_mut() {
                None => self.engine.handle_link_error(now, true),
                Some(link) => match link.recv(wait).await {
                    Ok(frame) => {
                        self.probe(Probe::Received(&frame));
                        self.trace_frame("recv", &frame);
                        self.last_frame = Some(frame.clone());
                        let now = self.now();
                        self.engine.handle_host_frame(now, &frame);
                    }
                    Err(LinkError::Timeout) => {
                        let now = self.now();
                        self.engine.handle_timeout(now);
                    }
                    Err(e) => {
                        log::warn!("host link failed while waiting: {e}");
                        self.note_tls_refusal(&e);
                        let reached = e.request_may_have_reached_host();
                        self.drop_link().await;
                        let now = self.now();
                        self.engine.handle_link_error(now, reached);
                    }
                },
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // A host closes connections left idle: a request written on one it already left would
        // be lost (and reversed). Such a connection is replaced before anything is written.
        if let Some(link) = self.link.as_mut()
            && link.closed_by_host().await
        {
            log::debug!("link: the host closed the idle connection; connecting again");
            self.drop_link().await;
        }
        if self.link.is_none() {
            match HostLink::connect(&self.cfg.link).await {
                Ok(l) => self.link = Some(l),
                Err(e) => {
                    log::warn!("cannot connect to host: {e}");
                    self.note_tls_refusal(&e);
                    let now = self.now();
                    self.engine
                        .handle_link_error(now, e.request_may_have_reached_host());
                    return;
                }
            }
        }
        self.probe(Probe::BeforeSend(bytes));
        self.trace_frame("send", bytes);
        let Some(link) = self.link.as_mut() else {
            return;
        };
        match link.send(bytes).await {
            Ok(()) => self.probe(Probe::AfterSend(bytes)),
            Err(e) => {
                log::warn!("send failed: {e}");
                self.note_tls_refusal(&e);
                let reached = e.request_may_have_reached_host();
                self.drop_link().await;
                let now = self.now();
                self.engine.handle_link_error(now, reached);
            }
        }
    }

    fn trace_line(&mut self, direction: &'static str, text: String) {
        self.trace.push((self.unix_ms(), direction, text));
    }

    /// Adds a masked dump of a frame to the support trace (never the raw bytes).
    fn trace_frame(&mut self, direction: &'static str, frame: &[u8]) {
        let text = {
            let dialect = &self.engine.config().profile.dialect;
            match dialect.unpack(frame) {
                Ok(m) => {
                    self.answers.observe(direction, &m, &self.cfg.tid);
                    dialect.dump(&m)
                }
                Err(e) => format!("{} bytes, not decodable: {e}", frame.len()),
            }
        };
        self.trace_line(direction, text);
    }

    async fn drop_link(&mut self) {
        if let Some(l) = self.link.take() {
            l.close().await;
        }
    }

    /// Closes the host connection (the journal stays open).
    pub async fn disconnect(&mut self) {
        self.drop_link().await;
    }

    pub(crate) async fn run_admin(&mut self) -> Result<Outcome, TerminalError> {
        self.tls_refusal = None;
        let (_, result) = self.drive().await?;
        self.tls_refused(result)
    }

    /// A command's engine result, where "not sent" or "no response" caused by the host's TLS
    /// layer refusing the terminal (a host requiring a client certificate, a wrong CA or pin)
    /// becomes [`TerminalError::HostLink`], which says so. Clears the remembered refusal; the
    /// caller cleared it before the command started.
    pub(crate) fn tls_refused<T>(
        &mut self,
        result: Result<T, OpError>,
    ) -> Result<T, TerminalError> {
        match (result, self.tls_refusal.take()) {
            (Err(OpError::NoResponse | OpError::NotSent), Some(refusal)) => {
                Err(TerminalError::HostLink(refusal))
            }
            (result, _) => Ok(result?),
        }
    }

    /// Forgets a TLS refusal of an earlier command (see [`Terminal::tls_refused`]).
    pub(crate) fn clear_tls_refusal(&mut self) {
        self.tls_refusal = None;
    }

    /// Remembers a link failure in which the host's TLS layer refused the terminal.
    fn note_tls_refusal(&mut self, e: &LinkError) {
        if matches!(
            e,
            LinkError::Tls(_) | LinkError::PinMismatch | LinkError::ClientCertificateRefused { .. }
        ) {
            self.tls_refusal = Some(e.clone());
        }
    }

    /// Delivers pending reversals and advices; returns (delivered, remaining). The public
    /// `recover` (host_answers.rs) signs in once more when the host asks for it.
    pub(crate) async fn recover_once(&mut self) -> Result<(u32, u32), TerminalError> {
        let now = self.now();
        self.engine.start_recover(now);
        match self.run_admin().await? {
            Outcome::Recovered {
                delivered,
                remaining,
            } => Ok((delivered, remaining)),
            other => Err(unexpected(other)),
        }
    }

    /// When background recovery should next run (Unix ms): the earliest back-off deadline of
    /// an armed reversal or advice. Apps schedule [`Terminal::recover_if_due`] for that time.
    pub fn next_retry_at(&self) -> Option<i64> {
        self.engine.next_retry_unix_ms()
    }

    /// Runs [`Terminal::recover`] if an armed item's back-off has expired; `None` otherwise.
    /// This is the call for a periodic background job: it does not hammer an unreachable host.
    pub async fn recover_if_due(&mut self) -> Result<Option<(u32, u32)>, TerminalError> {
        match self.next_retry_at() {
            Some(at) if at <= self.now().unix_ms => self.recover().await.map(Some),
            _ => Ok(None),
        }
    }

    /// Settles the open batch (drains store-and-forward first; uploads the batch on mismatch).
    pub async fn settle(&mut self) -> Result<Outcome, TerminalError> {
        // The logged-in operator settles: the 0500 names them in field 63.
        let operator = self.acting_operator(None)?;
        let records = self.journal.batch(self.engine.counters().batch)?;
        let out = self.drive_settle(records, operator).await;
        if let Ok(Outcome::Settled {
            batch, balanced, ..
        }) = &out
        {
            self.audit(
                "settlement",
                format!("batch {batch:06} balanced {balanced}"),
            );
        }
        out
    }

    /// Refuses a money command while the journal holds a record that failed its
    /// authentication check ([`Journal::tampered`]): nothing is read from it to decide on
    /// money, and nothing is sent. Read-only commands keep working.
    pub fn refuse_if_tampered(&self) -> Result<(), TerminalError> {
        match self.journal.tampered() {
            Some(t) => Err(TerminalError::Journal(JournalError::Tampered(t.clone()))),
            None => Ok(()),
        }
    }

    fn replay(
        &self,
        key: Option<&str>,
        kind: TxnKind,
        amount: Option<u64>,
        original_ref: Option<&str>,
    ) -> Result<Option<TxnOutcome>, TerminalError> {
        self.refuse_if_tampered()?;
        let Some(key) = key else { return Ok(None) };
        let Some(rec) = self.journal.by_idempotency_key(key)? else {
            return Ok(None);
        };
        // The same key for another command (another kind, amount or original transaction)
        // is a mistake of the app: returning the first outcome would say "done" for a refund
        // of sale B that was a refund of sale A.
        if rec.kind != kind
            || amount.is_some_and(|a| a != rec.amount)
            || rec.original_ref.as_deref() != original_ref
        {
            return Err(TerminalError::IdempotencyConflict);
        }
        // Only a reversal: a chip sale's TC upload notice waiting for delivery leaves the
        // approval as it is.
        let reversal_pending = self.engine.pending().iter().any(|p| {
            p.reference == rec.reference
                && p.armed
                && p.kind == smartpos_txn::model::PendingKind::Reversal
        });
        // A chip transaction's card data as journaled (AID, final cryptogram), for the same
        // outcome fields as the first answer; the ARPC is not kept.
        let card = self
            .journal
            .card_info(&rec.reference)?
            .map(|info| CardSummary {
                declined_by_card: info.cryptogram_type == "AAC" && rec.state != TxnState::Approved,
                info,
                arpc_received: false,
            });
        Ok(Some(TxnOutcome {
            record: rec,
            reply: None,
            reversal_pending,
            replayed: true,
            card,
            security: None,
        }))
    }

    async fn run_txn(&mut self, req: TxnRequest) -> Result<TxnOutcome, TerminalError> {
        let amount = match req.kind {
            TxnKind::Void | TxnKind::PreAuthCancel | TxnKind::Balance => None,
            _ => Some(req.amount),
        };
        let original_ref = req.original.as_ref().map(|o| o.reference.as_str());
        if let Some(done) = self.replay(
            req.idempotency_key.as_deref(),
            req.kind,
            amount,
            original_ref,
        )? {
            log::info!("idempotency key seen before: returning the recorded outcome");
            return Ok(done);
        }
        self.run_new_txn(req).await
    }

    /// Runs a transaction whose idempotency key (if any) the caller has just looked up.
    async fn run_new_txn(&mut self, req: TxnRequest) -> Result<TxnOutcome, TerminalError> {
        let mut req = req;
        req.operator = self.acting_operator(req.operator.as_deref())?;
        let kind = req.kind;
        let result = self.drive_txn(req, None).await;
        if let Ok(o) = &result
            && matches!(kind, TxnKind::Void | TxnKind::PreAuthCancel)
        {
            self.audit(
                kind.as_str(),
                format!(
                    "{} {} {}",
                    o.record.reference, o.record.amount, o.record.state
                ),
            );
        }
        result
    }

    pub(crate) fn original(&self, reference: &str) -> Result<TxnRecord, TerminalError> {
        self.journal
            .txn(reference)?
            .ok_or_else(|| TerminalError::NotFound {
                reference: reference.to_owned(),
            })
    }

    /// Sets the contactless kernel configuration (AIDs, TTQ, limits, country).
    pub fn set_kernel_config(&mut self, config: KernelConfig) {
        self.kernel = config;
    }

    /// The contactless kernel configuration.
    pub fn kernel_config(&self) -> &KernelConfig {
        &self.kernel
    }

    /// Reads a contactless card without running a transaction (e.g. to show the card).
    pub fn read_card(
        &mut self,
        amount: u64,
        transport: &mut dyn ApduTransport,
    ) -> Result<CardRead, TerminalError> {
        let currency = self.currency_code()?;
        let local = self.now().local;
        Ok(read_contactless(
            &self.kernel,
            transport,
            amount,
            currency,
            local,
        )?)
    }

    fn currency_code(&self) -> Result<u16, TerminalError> {
        Currency::parse(&self.cfg.currency)
            .map(Currency::code)
            .map_err(|_| TerminalError::Config("currency must be 3 digits".into()))
    }

    /// The one entry point of a card-present transaction (sale, pre-authorisation, balance):
    /// a retry with a known idempotency key returns the recorded outcome before any card is
    /// asked for; otherwise the card comes from `source` (card data the app read itself, our
    /// own contactless kernel over NFC or the mPOS reader, or the device's certified kernel),
    /// the request goes to the host, and a contact chip card makes the final decision. Emits
    /// [`Event::WaitingForCard`] and [`Event::CardRead`].
    pub async fn transact(
        &mut self,
        intent: TxnIntent,
        source: CardSource<'_>,
    ) -> Result<TxnOutcome, TerminalError> {
        if !intent.takes_card() {
            return Err(TerminalError::Op(OpError::Rejected {
                reason: "only a sale, pre-authorisation or balance inquiry takes a card".into(),
            }));
        }
        let kind = intent.kind;
        let key = intent.idempotency_key.as_ref().map(IdempotencyKey::as_str);
        let amount = (kind != TxnKind::Balance).then_some(intent.amount);
        if let Some(done) = self.replay(key, kind, amount, None)? {
            log::info!("idempotency key seen before: returning the recorded outcome");
            return Ok(done);
        }
        let operator = intent.operator.as_ref().map(OperatorId::as_str);
        self.acting_operator(operator)?;
        if !self.engine.signed_in() {
            return Err(TerminalError::Op(OpError::NotSignedIn));
        }
        let req = |card: CardData| {
            let mut r = request(kind, intent.amount, Some(card), None, key, operator);
            if kind == TxnKind::Balance {
                r.amount = 0;
            }
            r
        };
        match source {
            CardSource::Given(_) | CardSource::Reader(_) => {
                let card = match source {
                    CardSource::Reader(r) => {
                        self.emit(&Event::WaitingForCard {
                            amount: intent.amount,
                        });
                        r.read_card(intent.amount).await?
                    }
                    CardSource::Given(c) => c,
                    _ => return Err(CardError::KernelStalled.into()),
                };
                crate::card::check_given(&card)?;
                self.emit(&Event::CardRead {
                    pan_masked: card.effective_pan().map(|p| p.masked()).unwrap_or_default(),
                    entry_mode: card.entry_mode.clone(),
                });
                self.run_new_txn(req(card)).await
            }
            CardSource::OwnKernel { transport, pin } => {
                self.emit(&Event::WaitingForCard {
                    amount: intent.amount,
                });
                let read = self.read_card(intent.amount, transport)?;
                self.emit(&Event::CardRead {
                    pan_masked: read.outcome.pan.masked(),
                    entry_mode: crate::card::contactless_entry_mode(
                        read.outcome.cvm == Cvm::OnlinePin,
                    ),
                });
                let ksn = self.reserve_pin_ksn()?;
                let mut card = card_data(&read, intent.amount, pin, self.pin_blocks(ksn))?;
                card.ksn = ksn;
                let info = contactless_info(&read);
                self.run_card_txn(req(card), info, None).await
            }
            CardSource::Certified { kernel, pin } => {
                self.emit(&Event::WaitingForCard {
                    amount: intent.amount,
                });
                let local = self.now().local;
                // The AIDs of the host's parameters (our kernel's list follows them).
                let request = kernel_request(
                    kind,
                    intent.amount,
                    self.currency_code()?,
                    self.kernel.country,
                    local,
                    self.kernel.supported_aids.clone(),
                    self.entry_modes.clone(),
                )?;
                let decides = kind != TxnKind::Balance;
                let ksn = self.reserve_pin_ksn()?;
                let mut read =
                    read_certified(kernel, &request, pin, self.pin_blocks(ksn), decides)?;
                read.card.ksn = ksn;
                self.emit(&Event::CardRead {
                    pan_masked: read
                        .card
                        .effective_pan()
                        .map(|p| p.masked())
                        .unwrap_or_default(),
                    entry_mode: read.card.entry_mode.clone(),
                });
                let card_decides = read.card.card_decides;
                let chip = read.entry_mode == EntryMode::ContactChip;
                let out = self
                    .run_card_txn(req(read.card), read.info, Some(&mut *kernel))
                    .await;
                if chip && (!card_decides || self.card_final.is_none()) {
                    // The card made no final decision in this run (a balance inquiry, a
                    // decline, no answer): the kernel ends its transaction.
                    kernel.abort();
                }
                self.card_final = None;
                out
            }
        }
    }

    /// How the certified kernel may take cards (default: every way).
    pub fn set_entry_modes(&mut self, modes: Vec<EntryMode>) {
        self.entry_modes = modes;
    }

    /// Runs a card transaction whose chip data (`info`) is stored with its record.
    async fn run_card_txn(
        &mut self,
        req: TxnRequest,
        info: Option<CardInfo>,
        kernel: Option<&mut (dyn CertifiedKernel + '_)>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.last_frame = None;
        self.card_final = None;
        // Stored with the transaction's first commit (the run loop), in the same SQLite
        // transaction as its record.
        self.card_info = info.clone();
        let mut req = req;
        req.operator = self.acting_operator(req.operator.as_deref())?;
        let out = self.drive_txn(req, kernel).await;
        self.card_info_ref = None;
        if let Some(unstored) = self.card_info.take()
            && let Ok(o) = &out
        {
            // The record came from somewhere else than this run's commits (not expected);
            // receipt data is not money: store it on its own, log a failure.
            if let Err(e) = self.journal.put_card_info(&o.record.reference, &unstored) {
                log::warn!("card info for the receipt not stored: {e}");
            }
        }
        let mut out = out?;
        let Some(info) = info else { return Ok(out) };
        let arpc_received = self
            .last_frame
            .take()
            .and_then(|f| self.engine.config().profile.dialect.unpack(&f).ok())
            .and_then(|m| m.get(55).map(<[u8]>::to_vec))
            .and_then(|f55| issuer_response(&f55).ok())
            .is_some_and(|d| d.arpc.is_some());
        let info = match &self.card_final {
            Some(f) => f.info.clone().unwrap_or(info),
            None => info,
        };
        out.card = Some(CardSummary {
            info,
            arpc_received,
            declined_by_card: self
                .card_final
                .as_ref()
                .is_some_and(|f| f.cryptogram == CryptogramType::Aac),
        });
        Ok(out)
    }

    /// Records a contact chip card's final decision: the receipt's chip data takes the final
    /// cryptogram, stored with the decision's commit.
    fn card_decided(&mut self, decision: Option<CardDecision>) {
        let Some(d) = decision else {
            self.card_final = Some(CardFinal {
                cryptogram: CryptogramType::Aac,
                info: None,
            });
            return;
        };
        let reference = self.engine.txn_reference().map(str::to_owned);
        let stored = match reference {
            Some(r) => self.journal.card_info(&r).ok().flatten(),
            None => None,
        };
        let info = stored.map(|mut i| {
            i.cryptogram_type = d.cryptogram_type.as_str().to_owned();
            i.cryptogram = smartpos_types::hex::encode(&d.cryptogram);
            if let Some(tvr) = smartpos_emv::certified::icc_tag(&d.icc_data, 0x95) {
                i.tvr = smartpos_types::hex::encode(&tvr);
            }
            if let Some(tsi) = smartpos_emv::certified::icc_tag(&d.icc_data, 0x9B) {
                i.tsi = smartpos_types::hex::encode(&tsi);
            }
            i
        });
        // Stored with the commit of the decision (it writes the record again).
        self.card_info_ref = self.engine.txn_reference().map(str::to_owned);
        self.card_info = info.clone();
        self.card_final = Some(CardFinal {
            cryptogram: d.cryptogram_type,
            info,
        });
    }

    /// Runs a command on an earlier transaction; `amount` defaults to the original's.
    async fn on_original(
        &mut self,
        kind: TxnKind,
        reference: &str,
        amount: Option<u64>,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        let original = self.original(reference)?;
        let amount = amount.unwrap_or(original.amount);
        let mut req = request(
            kind,
            amount,
            None,
            Some(original),
            idempotency_key,
            operator,
        );
        req.original_used = self.journal.original_used(reference)?;
        self.run_txn(req).await
    }

    /// Voids a sale of the open batch.
    pub async fn void(
        &mut self,
        reference: &str,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.on_original(TxnKind::Void, reference, None, idempotency_key, operator)
            .await
    }

    /// Refunds (part of) an earlier sale, without the refund policy: the public refund is
    /// [`Terminal::refund_checked`]. Sent as a store-and-forward advice.
    pub(crate) async fn refund_unchecked(
        &mut self,
        reference: &str,
        amount: u64,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.on_original(
            TxnKind::Refund,
            reference,
            Some(amount),
            idempotency_key,
            operator,
        )
        .await
    }

    /// Completes a pre-authorisation.
    pub async fn complete(
        &mut self,
        reference: &str,
        amount: u64,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.on_original(
            TxnKind::Completion,
            reference,
            Some(amount),
            idempotency_key,
            operator,
        )
        .await
    }

    /// Cancels a pre-authorisation.
    pub async fn cancel_preauth(
        &mut self,
        reference: &str,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.on_original(
            TxnKind::PreAuthCancel,
            reference,
            None,
            idempotency_key,
            operator,
        )
        .await
    }

    /// Reverses an approved transaction the terminal could not complete (reason 96).
    pub async fn reverse_after_failure(
        &mut self,
        reference: &str,
    ) -> Result<TxnOutcome, TerminalError> {
        let original = self.original(reference)?;
        let used = self.journal.original_used(reference)?;
        let now = self.now();
        self.engine.start_reverse_after_failure(now, original, used);
        txn_outcome(self.run_admin().await?)
    }

    fn print_job(
        &mut self,
        reference: &str,
        copy: ReceiptCopy,
        reprint: bool,
    ) -> Result<PrinterStatus, TerminalError> {
        let job = self.receipts().receipt(reference, copy, reprint)?;
        let status = match self.printer.as_mut() {
            Some(p) => p.print(&job),
            None => PrinterStatus::NoPrinter,
        };
        self.receipts().record_print(reference, copy, status)?;
        Ok(status)
    }
}

fn request(
    kind: TxnKind,
    amount: u64,
    card: Option<CardData>,
    original: Option<TxnRecord>,
    idempotency_key: Option<&str>,
    operator: Option<&str>,
) -> TxnRequest {
    TxnRequest {
        kind,
        amount,
        card,
        original,
        original_used: 0,
        idempotency_key: idempotency_key.map(str::to_owned),
        operator: operator.map(str::to_owned),
    }
}

/// The kernel configuration a terminal starts with: the default AIDs and TTQ, and a CVM-required
/// limit of 1,000.00 in the terminal currency (UnionPay QuickPass "免密免签" limit for most
/// merchants in China); no transaction limit. Apps change it with
/// [`Terminal::set_kernel_config`].
pub fn default_kernel_config() -> KernelConfig {
    let mut k = KernelConfig::default();
    k.limits.cvm_required_limit = 100_000;
    k
}

/// The receipt's chip data of a contactless read of our own kernel.
fn contactless_info(read: &CardRead) -> Option<CardInfo> {
    let o = &read.outcome;
    Some(CardInfo {
        aid: smartpos_types::hex::encode(&o.aid),
        label: o.app_label.clone(),
        tvr: smartpos_types::hex::encode(&o.tvr),
        tsi: smartpos_types::hex::encode(&o.tsi),
        cryptogram_type: o.cryptogram_type.as_str().to_owned(),
        cryptogram: smartpos_types::hex::encode(&o.cryptogram),
        cvm: match o.cvm {
            Cvm::OnlinePin => "online_pin",
            Cvm::Signature => "signature",
            Cvm::NoCvm => "no_cvm",
            _ => "consumer_device",
        }
        .to_owned(),
        cvm_result: smartpos_types::hex::encode(&o.cvm.results()),
        in_field_ms: read.card_in_field_ms,
    })
}

fn emv_fields(c: &CardInfo) -> (EmvFields, smartpos_receipt::Cvm) {
    let kind = match c.cryptogram_type.as_str() {
        "TC" => CryptogramKind::Tc,
        "AAC" => CryptogramKind::Aac,
        _ => CryptogramKind::Arqc,
    };
    let cvm = match c.cvm.as_str() {
        "online_pin" => smartpos_receipt::Cvm::PinVerified,
        "no_cvm" => smartpos_receipt::Cvm::NoCvm,
        "consumer_device" => smartpos_receipt::Cvm::DeviceCvm,
        _ => smartpos_receipt::Cvm::Signature,
    };
    (
        EmvFields {
            aid: c.aid.clone(),
            app_label: (!c.label.is_empty()).then(|| c.label.clone()),
            tvr: c.tvr.clone(),
            tsi: c.tsi.clone(),
            cryptogram_kind: kind,
            cryptogram: c.cryptogram.clone(),
            cvm_result: Some(c.cvm_result.clone()),
        },
        cvm,
    )
}

/// The support-trace line of a command's result.
fn result_line(command: Command, result: &Result<Outcome, OpError>) -> String {
    let summary = match result {
        Ok(o) => outcome_summary(o),
        Err(e) => format!("error: {e}"),
    };
    format!("{command:?}: {summary}")
}

fn outcome_summary(o: &Outcome) -> String {
    match o {
        Outcome::Txn {
            record,
            reversal_pending,
            ..
        } => format!(
            "{} {} {} state {} rc {}{}",
            record.reference,
            record.kind,
            record.amount,
            record.state,
            record.response_code.as_deref().unwrap_or("-"),
            if *reversal_pending {
                " (reversal pending)"
            } else {
                ""
            }
        ),
        other => format!("{other:?}"),
    }
}

fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn txn_outcome(o: Outcome) -> Result<TxnOutcome, TerminalError> {
    match o {
        Outcome::Txn {
            record,
            reply,
            reversal_pending,
        } => Ok(TxnOutcome {
            record,
            reply,
            reversal_pending,
            replayed: false,
            card: None,
            security: None,
        }),
        other => Err(unexpected(other)),
    }
}

fn unexpected(o: Outcome) -> TerminalError {
    TerminalError::Op(OpError::Proto(format!("unexpected outcome {o:?}")))
}

impl<'a> Receipts<'a> {
    /// Installs the app's printer.
    pub fn set_printer(self, printer: impl ReceiptPrinter + 'static) {
        self.t.printer = Some(Box::new(printer));
    }

    /// How receipts are laid out.
    pub fn receipt_settings(self) -> &'a ReceiptSettings {
        let t = self.t;
        &t.receipts
    }

    /// Changes how receipts are laid out (merchant name, width, language) for this open
    /// terminal only; [`Receipts::save_receipt_settings`] also keeps them in the journal.
    pub fn set_receipt_settings(self, settings: ReceiptSettings) {
        self.t.receipts = settings;
    }

    /// Changes how receipts are laid out and keeps the settings in the journal, with an audit
    /// row naming the logged-in operator, in one transaction: the next open of this journal
    /// prints with them.
    pub fn save_receipt_settings(self, settings: ReceiptSettings) -> Result<(), TerminalError> {
        let entry = self.t.audit_entry(
            "receipt_settings",
            crate::printing::settings_summary(&settings),
        );
        let json = crate::printing::stored_json(&settings)?;
        self.t
            .journal
            .set_meta_audited(crate::printing::RECEIPTS_META_KEY, &json, &entry)?;
        self.t.receipts = settings;
        Ok(())
    }

    /// Renders the receipt of a journaled transaction (a reprint if it was printed before).
    pub fn receipt(
        self,
        reference: &str,
        copy: ReceiptCopy,
        reprint: bool,
    ) -> Result<PrintJob, TerminalError> {
        let settings = self.t.receipts.clone();
        self.t
            .receipts()
            .receipt_with(&settings, reference, copy, reprint)
    }

    /// [`Receipts::receipt`] laid out with `settings` instead of the terminal's (an on-screen
    /// copy at another width, ...); changes nothing.
    pub fn receipt_with(
        self,
        settings: &ReceiptSettings,
        reference: &str,
        copy: ReceiptCopy,
        reprint: bool,
    ) -> Result<PrintJob, TerminalError> {
        let record = self.t.original(reference)?;
        let original = match &record.original_ref {
            Some(o) => self.t.journal.txn(o)?,
            None => None,
        };
        let reprint = reprint || self.t.journal.printed_before(reference, copy_name(copy))?;
        let chip = self.t.journal.card_info(reference)?;
        job_for(
            &record,
            original.as_ref(),
            settings,
            copy,
            reprint,
            chip.as_ref().map(emv_fields),
        )
        .map_err(|e| TerminalError::Config(format!("receipt: {e}")))
    }

    /// Prints a transaction's receipt on the app's printer and records the attempt. A failure
    /// (out of paper, ...) leaves the job pending and never touches the transaction itself.
    pub fn print(self, reference: &str, copy: ReceiptCopy) -> Result<PrinterStatus, TerminalError> {
        self.t.print_job(reference, copy, false)
    }

    /// Prints a transaction's receipt again, marked as a reprint, from the journal.
    pub fn reprint(
        self,
        reference: &str,
        copy: ReceiptCopy,
    ) -> Result<PrinterStatus, TerminalError> {
        self.t.print_job(reference, copy, true)
    }

    /// Reprints the most recent transaction's receipt.
    pub fn reprint_last(self, copy: ReceiptCopy) -> Result<PrinterStatus, TerminalError> {
        let last = self.t.receipts().last_reference()?;
        self.t.print_job(&last, copy, true)
    }

    /// The reference of the most recent transaction (`NotFound` "last" when there is none).
    pub fn last_reference(self) -> Result<String, TerminalError> {
        self.t
            .journal
            .recent(1)?
            .pop()
            .map(|r| r.reference)
            .ok_or_else(|| TerminalError::NotFound {
                reference: "last".into(),
            })
    }

    /// Receipts whose printing failed: (reference, copy, attempts, last printer status).
    pub fn pending_prints(self) -> Result<Vec<(String, String, u32, String)>, TerminalError> {
        Ok(self.t.journal.pending_prints()?)
    }

    /// Records what a printer answered for a receipt of `reference` ([`Receipts::receipt`]):
    /// anything but `Ok` leaves the job pending for a reprint. For a caller that runs the
    /// printer itself (the Kotlin bindings print without holding the terminal).
    pub fn record_print(
        self,
        reference: &str,
        copy: ReceiptCopy,
        status: PrinterStatus,
    ) -> Result<(), TerminalError> {
        let at = self.t.now().unix_ms;
        self.t
            .journal
            .record_print(reference, copy_name(copy), status.as_str(), at)?;
        if status != PrinterStatus::Ok {
            log::warn!("receipt of {reference} not printed: {}", status.as_str());
        }
        Ok(())
    }
}

impl<'a> Support<'a> {
    /// Whether a transaction still has money in doubt (a reversal not yet acknowledged).
    pub fn in_doubt(self, record: &TxnRecord) -> bool {
        record.state == TxnState::Reversing
            || self
                .t
                .engine
                .pending()
                .iter()
                .any(|p| p.reference == record.reference && p.armed)
    }
}

impl<'a> Admin<'a> {
    /// Signs in (0800) and installs the working keys; returns the open batch number.
    pub async fn sign_in(self, operator: &str) -> Result<u32, TerminalError> {
        let now = self.t.now();
        self.t.engine.start_sign_in(now, operator);
        match self.t.run_admin().await? {
            Outcome::SignedIn { batch } => Ok(batch),
            other => Err(unexpected(other)),
        }
    }

    /// Signs off (0820); the working keys are forgotten.
    pub async fn sign_off(self) -> Result<(), TerminalError> {
        let now = self.t.now();
        self.t.engine.start_sign_off(now);
        self.t.run_admin().await.map(|_| ())
    }

    /// Echo test (0820).
    pub async fn echo(self) -> Result<(), TerminalError> {
        let now = self.t.now();
        self.t.engine.start_echo(now);
        self.t.run_admin().await.map(|_| ())
    }
}
