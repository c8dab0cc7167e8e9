//! The [`Terminal`] object: a few lines per method around `smartpos_terminal::Terminal`.
//!
//! Threads: each terminal owns a small tokio runtime (one worker thread named
//! `smartpos-terminal`). Every command is spawned onto it and awaited through its
//! `JoinHandle`; the core terminal sits in an `Arc<tokio::sync::Mutex<..>>`, so one command
//! runs at a time per terminal. If the Kotlin coroutine is cancelled while a command runs, only
//! the wait for the `JoinHandle` is dropped: the task keeps the lock, finishes and journals
//! the outcome, which the app then finds by idempotency key or in the journal. The wait for the
//! `CardReader`'s card, in contrast, stops when the caller's future is dropped, so cancelling
//! it sends nothing.
//!
//! [`Terminal::shutdown`] (and dropping the object, which Kotlin's `close()` does) waits for a
//! running command, closes the host connection and the journal, and stops the runtime's threads.
//!
//! Reentrancy: a method that needs the core lock (every synchronous query, every command)
//! fails at once with `SmartPosError::Busy` when called from inside one of the app's callbacks
//! (see `reentry.rs`), instead of waiting for a lock the callback's own thread may hold.
//! Closing from inside a callback does not wait either: see [`Terminal::shutdown`].

use crate::callbacks::{Listeners, SecureStore, StoreAdapter, TerminalListener};
use crate::card::CardReader;
use crate::convert::{
    self, AmountRequest, PendingItem, RecoverResult, ReferenceRequest, SaleRequest, SettleResult,
    TerminalConfig, TerminalEvent, TxnRecord, TxnResult,
};
use crate::error::SmartPosError;
use crate::printer::ReceiptPrinter;
use crate::reentry;
use crate::security::{ForeignModule, SecurityModule};
use crate::stats;
use smartpos_terminal::api::TxnIntent;
use smartpos_terminal::api::card::{self as core_card, CardSource};
use smartpos_terminal::api::model;
use smartpos_terminal::api::store::{load_journal_key, load_keys, load_module_for};
use smartpos_terminal::api::{self, TerminalError};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::OwnedMutexGuard;

type Core = smartpos_terminal::api::Terminal;

/// What [`reset_journal`] did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct JournalResetReport {
    /// Where the old journal file(s) were moved (`journal.db.lost-<unix-seconds>`, ...).
    pub moved: Vec<String>,
    /// The new journal's identity (hex).
    pub journal_id: String,
    /// The last STAN recorded in the new journal; the next message uses the one after it.
    pub stan: u32,
    /// The new journal's open batch.
    pub batch: u32,
    /// The new guard's generation (resets so far).
    pub generation: u32,
}

/// For support only: replaces the journal in `data_dir` that the journal guard refused
/// (missing, emptied, another terminal's or an old copy). The old file(s) are kept beside it
/// as `journal.db.lost-<unix-seconds>`; the new journal continues the STAN after the guard's
/// reservation and opens the next batch. Sign in again afterwards. Never call it from a
/// cashier's screen: the old journal may hold pending reversals and advices.
#[uniffi::export]
pub fn reset_journal(
    data_dir: String,
    store: Arc<dyn SecureStore>,
) -> Result<JournalResetReport, SmartPosError> {
    stats::call();
    let (_, journal_key) = load_keys(&StoreAdapter(Arc::clone(&store)))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let r = api::reset_journal(
        &PathBuf::from(data_dir).join("journal.db"),
        &journal_key,
        Arc::new(StoreAdapter(store)),
        now,
    )?;
    Ok(JournalResetReport {
        moved: r.moved.iter().map(|p| p.display().to_string()).collect(),
        journal_id: r.journal_id,
        stan: r.stan,
        batch: r.batch,
        generation: r.generation,
    })
}
type Guard = OwnedMutexGuard<Option<Core>>;

/// How long closing waits for the runtime's threads after the last command finished.
const THREAD_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A payment terminal: journal, host link, keys. Open one per terminal id and data directory.
#[derive(uniffi::Object)]
pub struct Terminal {
    core: Arc<tokio::sync::Mutex<Option<Core>>>,
    runtime: Mutex<Option<Runtime>>,
    listeners: Arc<Listeners>,
    card_reader: Option<Arc<dyn CardReader>>,
    /// The app's printer. Kept here rather than in the core, so that `print` can call it
    /// without holding the core lock (`printer.rs`).
    pub(crate) printer: Mutex<Option<Arc<dyn ReceiptPrinter>>>,
    /// Held for the whole of a print, reprint or reprint-last: one job at a time reaches the
    /// app's printer, as when the core lock was held around it.
    pub(crate) printing: Mutex<()>,
    tid: String,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("tid", &self.tid)
            .finish_non_exhaustive()
    }
}

fn core_of(g: &mut Guard) -> Result<&mut Core, SmartPosError> {
    g.as_mut().ok_or(SmartPosError::Closed)
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

#[uniffi::export]
impl Terminal {
    /// Opens the terminal: settings from `config`, the journal in `data_dir` (created if
    /// needed), the TMK and the journal key from `store`. The journal guard in `store` refuses
    /// a journal that was deleted, emptied, replaced or rolled back
    /// ([`SmartPosError::JournalRefused`]); only support resets it ([`reset_journal`]). Anything left in flight by a crash is
    /// recovered: armed reversals are journaled before this returns and go out with the next
    /// command or [`Terminal::recover`]. `card_reader` is asked for a card when a request
    /// carries none.
    #[uniffi::constructor]
    pub fn open(
        config: TerminalConfig,
        data_dir: String,
        store: Arc<dyn SecureStore>,
        card_reader: Option<Arc<dyn CardReader>>,
    ) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let cfg = config.to_core_with(&StoreAdapter(Arc::clone(&store)))?;
        let dir = PathBuf::from(data_dir);
        // Readable by the app only (0700; narrowed when found wider); the journal's own files
        // are made 0600 by the core when it opens them.
        smartpos_terminal::api::owner_only_dir(&dir).map_err(|e| {
            SmartPosError::config(format!("cannot create the data directory: {}", e.kind()))
        })?;
        // The software module for the profile's keys: SM4 master, the stored DUKPT device.
        let profile = config.profile()?;
        let (module, journal_key) =
            load_module_for(Arc::new(StoreAdapter(Arc::clone(&store))), &profile)?;
        Terminal::open_guarded(
            cfg,
            Some(profile),
            dir,
            module,
            &journal_key,
            store,
            card_reader,
        )
    }

    /// Opens the terminal like [`Terminal::open`], with its keys in the app's
    /// `security_module` (the device's security processor, see `SecurityModule`) instead of
    /// the SDK's software module: `store` then holds only the journal key and the journal
    /// guard, no `tmk`. The sign-in's keys go into the module as ciphertext; MACs and PIN
    /// blocks come out of it; no clear key crosses.
    #[uniffi::constructor]
    pub fn open_with_security_module(
        config: TerminalConfig,
        data_dir: String,
        store: Arc<dyn SecureStore>,
        card_reader: Option<Arc<dyn CardReader>>,
        security_module: Arc<dyn SecurityModule>,
    ) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let cfg = config.to_core()?;
        let dir = PathBuf::from(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            SmartPosError::config(format!("cannot create the data directory: {}", e.kind()))
        })?;
        let journal_key = load_journal_key(&StoreAdapter(Arc::clone(&store)))?;
        let module = Arc::new(ForeignModule(security_module));
        let profile = config.profile()?;
        Terminal::open_guarded(
            cfg,
            Some(profile),
            dir,
            module,
            &journal_key,
            store,
            card_reader,
        )
    }
}

impl Terminal {
    /// The rest of opening: the core terminal under the journal guard (see
    /// `smartpos_terminal::guard`: a missing, emptied, foreign or rolled-back journal is
    /// refused with `SmartPosError::JournalRefused`), its listener and its runtime.
    fn open_guarded(
        cfg: smartpos_terminal::api::TerminalConfig,
        profile: Option<smartpos_terminal::api::Profile>,
        dir: PathBuf,
        module: Arc<dyn smartpos_terminal::api::security::SecurityModule>,
        journal_key: &smartpos_terminal::api::JournalKey,
        store: Arc<dyn SecureStore>,
        card_reader: Option<Arc<dyn CardReader>>,
    ) -> Result<Arc<Self>, SmartPosError> {
        let tid = cfg.tid.clone();
        let mut core = api::open(
            cfg,
            profile,
            &dir.join("journal.db"),
            module,
            journal_key,
            Arc::new(StoreAdapter(store)),
        )?;
        let listeners = Arc::new(Listeners::default());
        let l = Arc::clone(&listeners);
        core.set_listener(move |e| l.emit(&TerminalEvent::from(e)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smartpos-terminal")
            .enable_all()
            .build()
            .map_err(|e| SmartPosError::internal(format!("cannot start the runtime: {e}")))?;
        Ok(Arc::new(Terminal {
            core: Arc::new(tokio::sync::Mutex::new(Some(core))),
            runtime: Mutex::new(Some(runtime)),
            listeners,
            card_reader,
            printer: Mutex::new(None),
            printing: Mutex::new(()),
            tid,
        }))
    }
}

#[uniffi::export]
impl Terminal {
    /// Adds a listener for progress events; returns an id for [`Terminal::remove_listener`].
    pub fn add_listener(&self, listener: Arc<dyn TerminalListener>) -> u64 {
        stats::call();
        self.listeners.add(listener)
    }

    /// Removes a listener; whether it was registered.
    pub fn remove_listener(&self, id: u64) -> bool {
        stats::call();
        self.listeners.remove(id)
    }

    /// Signs in (0800), installs the working keys; returns the open batch number.
    pub async fn sign_in(&self, operator: String) -> Result<u32, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            Ok(core_of(&mut g)?.admin().sign_in(&operator).await?)
        }))
        .await
    }

    /// Signs off (0820); the working keys are forgotten.
    pub async fn sign_off(&self) -> Result<(), SmartPosError> {
        stats::counted(
            self.run(|mut g| async move { Ok(core_of(&mut g)?.admin().sign_off().await?) }),
        )
        .await
    }

    /// Echo test (0820).
    pub async fn echo(&self) -> Result<(), SmartPosError> {
        stats::counted(self.run(|mut g| async move { Ok(core_of(&mut g)?.admin().echo().await?) }))
            .await
    }

    /// Delivers pending reversals and advices.
    pub async fn recover(&self) -> Result<RecoverResult, SmartPosError> {
        stats::counted(self.run(|mut g| async move {
            let (delivered, remaining) = core_of(&mut g)?.recover().await?;
            Ok(RecoverResult {
                delivered,
                remaining,
            })
        }))
        .await
    }

    /// Settles the open batch (store-and-forward first, batch upload on mismatch).
    pub async fn settle(&self) -> Result<SettleResult, SmartPosError> {
        stats::counted(
            self.run(
                |mut g| async move { convert::settle_result(core_of(&mut g)?.settle().await?) },
            ),
        )
        .await
    }

    /// A sale. Without `request.card` the terminal's `CardReader` is asked (cancellable).
    pub async fn sale(&self, request: SaleRequest) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.card_present_txn(TxnIntent::sale(request.amount), request)).await
    }

    /// A pre-authorisation. Without `request.card` the `CardReader` is asked (cancellable).
    pub async fn preauth(&self, request: SaleRequest) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.card_present_txn(TxnIntent::preauth(request.amount), request)).await
    }

    /// A balance inquiry (`request.amount` is ignored). Moves no money.
    pub async fn balance(&self, request: SaleRequest) -> Result<TxnResult, SmartPosError> {
        stats::counted(async move {
            let request = SaleRequest {
                amount: 0,
                idempotency_key: None,
                ..request
            };
            self.card_present_txn(TxnIntent::balance(), request).await
        })
        .await
    }

    /// Voids a sale of the open batch.
    pub async fn void(&self, request: ReferenceRequest) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            let o = core_of(&mut g)?
                .void(
                    &request.reference,
                    opt(&request.idempotency_key),
                    opt(&request.operator),
                )
                .await?;
            Ok(TxnResult::from(o))
        }))
        .await
    }

    /// Completes a pre-authorisation.
    pub async fn complete(&self, request: AmountRequest) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            let o = core_of(&mut g)?
                .complete(
                    &request.reference,
                    request.amount,
                    opt(&request.idempotency_key),
                    opt(&request.operator),
                )
                .await?;
            Ok(TxnResult::from(o))
        }))
        .await
    }

    /// Cancels a pre-authorisation.
    pub async fn cancel_preauth(
        &self,
        request: ReferenceRequest,
    ) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            let o = core_of(&mut g)?
                .cancel_preauth(
                    &request.reference,
                    opt(&request.idempotency_key),
                    opt(&request.operator),
                )
                .await?;
            Ok(TxnResult::from(o))
        }))
        .await
    }

    /// Reverses an approved transaction the terminal could not complete (reason 96).
    pub async fn reverse_after_failure(
        &self,
        reference: String,
    ) -> Result<TxnResult, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            let o = core_of(&mut g)?.reverse_after_failure(&reference).await?;
            Ok(TxnResult::from(o))
        }))
        .await
    }

    /// Closes the host connection (the journal stays open).
    pub async fn disconnect(&self) -> Result<(), SmartPosError> {
        stats::counted(self.run(|mut g| async move {
            core_of(&mut g)?.disconnect().await;
            Ok(())
        }))
        .await
    }

    /// Whether working keys are installed. Waits for a running command.
    pub fn is_signed_in(&self) -> Result<bool, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.signed_in()))
    }

    /// The open batch number. Waits for a running command.
    pub fn batch(&self) -> Result<u32, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.batch()))
    }

    /// Every journaled transaction, oldest first.
    pub fn journal_all(&self) -> Result<Vec<TxnRecord>, SmartPosError> {
        stats::call();
        self.with_core(|t| records(t.journal().all()))
    }

    /// The last `limit` transactions.
    pub fn journal_recent(&self, limit: u32) -> Result<Vec<TxnRecord>, SmartPosError> {
        stats::call();
        self.with_core(|t| records(t.journal().recent(limit)))
    }

    /// The transactions of batch `batch`.
    pub fn journal_batch(&self, batch: u32) -> Result<Vec<TxnRecord>, SmartPosError> {
        stats::call();
        self.with_core(|t| records(t.journal().batch(batch)))
    }

    /// One transaction by reference.
    pub fn transaction(&self, reference: String) -> Result<Option<TxnRecord>, SmartPosError> {
        stats::call();
        self.with_core(|t| record(t.journal().txn(&reference)))
    }

    /// The transaction recorded under an idempotency key.
    pub fn transaction_by_key(
        &self,
        idempotency_key: String,
    ) -> Result<Option<TxnRecord>, SmartPosError> {
        stats::call();
        self.with_core(|t| record(t.journal().by_idempotency_key(&idempotency_key)))
    }

    /// Reversals and advices waiting for the host, in delivery order.
    pub fn pending(&self) -> Result<Vec<PendingItem>, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.pending().iter().map(PendingItem::from).collect()))
    }

    /// Whether a transaction still has money in doubt (a reversal not yet acknowledged).
    pub fn in_doubt(&self, reference: String) -> Result<bool, SmartPosError> {
        stats::call();
        self.with_core(|t| {
            let rec = t
                .journal()
                .txn(&reference)
                .map_err(TerminalError::from)?
                .ok_or(SmartPosError::NotFound { reference })?;
            Ok(t.support().in_doubt(&rec))
        })
    }

    /// Whether [`Terminal::shutdown`] ran.
    pub fn is_closed(&self) -> bool {
        stats::call();
        self.lock_runtime().is_none()
    }

    /// Releases everything: waits for a running command to finish and journal, closes the host
    /// connection and the journal, stops the runtime's threads. Later calls fail with
    /// `Closed`. Kotlin's `close()` (and `use {}`) does the same when it drops the object.
    ///
    /// Called from inside one of the app's callbacks (a listener, the PIN pad, the printer,
    /// ...), it cannot wait: the terminal refuses new calls with `Closed` at once, and a thread
    /// of its own (`smartpos-close`) lets the running command finish and journal, then closes
    /// the connection and the journal and stops the threads.
    pub fn shutdown(&self) {
        stats::call();
        self.release();
    }
}

impl Terminal {
    /// The terminal id (for the test kit's reconciliation).
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn tid(&self) -> &str {
        &self.tid
    }

    /// The journal as core records (for the test kit's reconciliation).
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    pub(crate) fn core_records(&self) -> Result<Vec<model::TxnRecord>, SmartPosError> {
        self.with_core(|t| Ok(t.journal().all().map_err(TerminalError::from)?))
    }

    fn lock_runtime(&self) -> std::sync::MutexGuard<'_, Option<Runtime>> {
        // Only `take` happens under this lock: a poisoned lock holds a valid Option.
        self.runtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A sale, pre-authorisation or balance with the request's card, or one from the
    /// `CardReader`. The core answers a known idempotency key before it asks the reader, and
    /// emits `WaitingForCard` / `CardRead` itself.
    async fn card_present_txn(
        &self,
        base: TxnIntent,
        request: SaleRequest,
    ) -> Result<TxnResult, SmartPosError> {
        reentry::refuse_reentry()?;
        let reader = self.card_reader.clone();
        // The wait for a card happens inside the spawned task (the core asks the reader after
        // its idempotency check), which outlives this future. Dropping this future (the Kotlin
        // coroutine was cancelled) drops `_caller`, which stops the wait: the reader's future
        // is dropped (uniffi cancels its coroutine) and nothing is sent. Once the card is read,
        // the task finishes and journals as any other.
        let (_caller, gone) = tokio::sync::oneshot::channel::<()>();
        self.run(move |mut g| async move {
            let t = core_of(&mut g)?;
            let intent = base
                .key_text(opt(&request.idempotency_key))
                .and_then(|i| i.operator_text(opt(&request.operator)))
                .map_err(|e| SmartPosError::Rejected {
                    reason: e.to_string(),
                    diagnosis: None,
                })?;
            let mut adapter = ReaderAdapter {
                reader,
                failure: None,
                caller_gone: gone,
            };
            let source = match &request.card {
                Some(c) => CardSource::Given(c.card_data()),
                None => CardSource::Reader(&mut adapter),
            };
            match t.transact(intent, source).await {
                Ok(o) => Ok(TxnResult::from(o)),
                Err(e) => Err(adapter.failure.take().unwrap_or_else(|| e.into())),
            }
        })
        .await
    }

    /// Runs `f` with the core terminal on the terminal's runtime and waits for it. Dropping the
    /// returned future does not stop the task. `Busy` from inside an app callback: the task
    /// would wait for the lock or the worker thread that the callback holds.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, SmartPosError>
    where
        F: FnOnce(Guard) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, SmartPosError>> + Send + 'static,
        T: Send + 'static,
    {
        reentry::refuse_reentry()?;
        let handle = {
            let rt = self.lock_runtime();
            rt.as_ref().ok_or(SmartPosError::Closed)?.handle().clone()
        };
        let core = Arc::clone(&self.core);
        let task = handle.spawn(async move {
            let guard = core.lock_owned().await;
            f(guard).await
        });
        match task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(SmartPosError::internal("the command panicked")),
            Err(_) => Err(SmartPosError::Closed),
        }
    }

    /// Runs a quick synchronous query; waits for a running command. `Busy` from inside an app
    /// callback, whose thread may hold the lock this would wait for (`reentry.rs`).
    pub(crate) fn with_core<T>(
        &self,
        f: impl FnOnce(&mut Core) -> Result<T, SmartPosError>,
    ) -> Result<T, SmartPosError> {
        reentry::refuse_reentry()?;
        if self.lock_runtime().is_none() {
            // Shut down: the journal may still be closing on the `smartpos-close` thread.
            return Err(SmartPosError::Closed);
        }
        if Handle::try_current().is_ok() {
            // `blocking_lock` would panic on an async thread; Kotlin never calls from one.
            return Err(SmartPosError::internal(
                "synchronous terminal query called from an async Rust context",
            ));
        }
        let mut g = self.core.blocking_lock();
        f(g.as_mut().ok_or(SmartPosError::Closed)?)
    }

    fn release(&self) {
        let Some(rt) = self.lock_runtime().take() else {
            return;
        };
        self.listeners.clear();
        let core = Arc::clone(&self.core);
        let close = async move {
            // Waits for a running command: its outcome is journaled before the journal closes.
            let mut g = core.lock_owned().await;
            if let Some(t) = g.as_mut() {
                t.disconnect().await;
            }
            *g = None;
        };
        if reentry::inside().is_none() && Handle::try_current().is_err() {
            rt.block_on(close);
            rt.shutdown_timeout(THREAD_STOP_TIMEOUT);
        } else {
            // Inside an app callback (its thread may hold the core lock, or be the worker
            // thread the running command needs) or on an async thread, where blocking is not
            // allowed: waiting here could never end. New calls already fail with `Closed` (the
            // runtime is gone); the close itself waits on a thread of its own.
            close_in_background(rt, close);
        }
    }
}

/// Runs `close` and stops `rt` on a thread of its own: the running command finishes and
/// journals first (`close` waits for the core lock). If no thread can be started, the runtime
/// stops without waiting, and a command cut short is recovered from the journal on the next
/// open, like after a power cut.
fn close_in_background<F>(rt: Runtime, close: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Shared with the thread, so that a failed spawn does not drop the runtime here (dropping
    // a runtime on an async thread panics).
    let job = Arc::new(Mutex::new(Some((rt, close))));
    let theirs = Arc::clone(&job);
    let take = |j: &Mutex<Option<(Runtime, F)>>| j.lock().unwrap_or_else(|p| p.into_inner()).take();
    let spawned = std::thread::Builder::new()
        .name("smartpos-close".into())
        .spawn(move || {
            if let Some((rt, close)) = take(&theirs) {
                rt.block_on(close);
                rt.shutdown_timeout(THREAD_STOP_TIMEOUT);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the closing thread: {e}");
        if let Some((rt, close)) = take(&job) {
            drop(close);
            rt.shutdown_background();
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.release();
    }
}

fn records(
    r: Result<Vec<model::TxnRecord>, smartpos_terminal::api::JournalError>,
) -> Result<Vec<TxnRecord>, SmartPosError> {
    Ok(r.map_err(TerminalError::from)?
        .into_iter()
        .map(TxnRecord::from)
        .collect())
}

fn record(
    r: Result<Option<model::TxnRecord>, smartpos_terminal::api::JournalError>,
) -> Result<Option<TxnRecord>, SmartPosError> {
    Ok(r.map_err(TerminalError::from)?.map(TxnRecord::from))
}

/// The app's `CardReader` as the core's card source; keeps the app's own error, which the
/// sale then throws as it is. Stops waiting for the card when the caller's future is dropped
/// (`caller_gone` resolves).
struct ReaderAdapter {
    reader: Option<Arc<dyn CardReader>>,
    failure: Option<SmartPosError>,
    caller_gone: tokio::sync::oneshot::Receiver<()>,
}

impl core_card::CardReader for ReaderAdapter {
    fn read_card(&mut self, amount: u64) -> core_card::CardFuture<'_> {
        Box::pin(async move {
            let Some(reader) = self.reader.clone() else {
                self.failure = Some(SmartPosError::config(
                    "the request has no card and the terminal has no CardReader",
                ));
                return Err(core_card::CardError::Reader("no card reader".into()));
            };
            stats::callback();
            let read = tokio::select! {
                read = reader.read_card(amount) => read,
                _ = &mut self.caller_gone => {
                    log::info!("the caller stopped waiting for the card: nothing is sent");
                    self.failure = Some(SmartPosError::Cancelled {
                        reason: "the caller stopped waiting for the card".into(),
                    });
                    return Err(core_card::CardError::Reader("caller gone".into()));
                }
            };
            match read {
                Ok(card) => Ok(card.card_data()),
                Err(e) => {
                    let text = e.to_string();
                    self.failure = Some(e.into());
                    Err(core_card::CardError::Reader(text))
                }
            }
        })
    }
}
