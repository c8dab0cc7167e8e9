//! The reentrancy guard: calls from Rust into the app's code, and what the terminal does when
//! that code calls the terminal back.
//!
//! Some of the app's callbacks run while the thread that calls them holds the terminal's core
//! lock: the PIN pad, the card transport, the certified kernel, the listeners and the secure store during a command
//! (on the terminal's worker thread), the log sink wherever the SDK logs. If such a callback
//! called a synchronous terminal method, that method would wait for the lock its own thread
//! holds, forever, and every later call (sales included) would wait behind it. An `async`
//! method awaited with `runBlocking` would wait for the worker thread the callback is blocking.
//!
//! So every call into the app's code goes through [`call_app`], which marks the thread as
//! "inside an app callback" (a thread-local, restored when the callback returns or unwinds).
//! While the mark is set, [`refuse_reentry`] turns any terminal method that would wait for the
//! core lock or the worker thread into [`SmartPosError::Busy`] at once: nothing is done, the
//! app sees a clear exception instead of a frozen terminal. Methods that do not touch the core
//! lock (`PinInput.digits`, `addListener`, `isClosed`, the mPOS reader, ...) stay allowed.
//!
//! The receipt printer is marked too, although `print` no longer holds the lock while the
//! printer runs (see `printer.rs`): one rule for every callback is easier to follow, and a
//! printer that needs terminal data reads it before `print` or after it returns.
//!
//! Not covered: the async [`crate::CardReader`] (a Kotlin `suspend fun` running on its own
//! coroutine while no lock is held, so calling the terminal from it cannot deadlock), and a
//! callback that hands work to another thread and waits for it (the mark is per thread):
//! the documentation of each callback says not to do that.

use crate::convert::Diagnosis;
use crate::error::SmartPosError;
use smartpos_terminal::api::OpError;
use smartpos_terminal::api::diagnosis;
use std::cell::Cell;

/// Which of the app's callbacks a thread is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callback {
    /// `ReceiptPrinter.print`.
    Printer,
    /// `PinEntry.requestPin`.
    PinEntry,
    /// `ApduTransport.transceive`.
    CardTransport,
    /// `CertifiedKernel.read` / `complete` / `abort`.
    CertifiedKernel,
    /// `ReaderLink.write`.
    ReaderLink,
    /// `SecureStore.get` / `put`.
    SecureStore,
    /// `SecurityModule` (key loading, MAC, PIN pad, data encryption, DUKPT).
    SecurityModule,
    /// `TerminalListener.onEvent`.
    Listener,
    /// `LogSink.log`.
    LogSink,
}

impl Callback {
    /// The Kotlin name of the callback, for the error message.
    fn name(self) -> &'static str {
        match self {
            Callback::Printer => "ReceiptPrinter.print",
            Callback::PinEntry => "PinEntry.requestPin",
            Callback::CardTransport => "ApduTransport.transceive",
            Callback::CertifiedKernel => "CertifiedKernel",
            Callback::ReaderLink => "ReaderLink.write",
            Callback::SecureStore => "SecureStore",
            Callback::SecurityModule => "SecurityModule",
            Callback::Listener => "TerminalListener.onEvent",
            Callback::LogSink => "LogSink.log",
        }
    }
}

thread_local! {
    /// The innermost app callback this thread is running, if any.
    static INSIDE: Cell<Option<Callback>> = const { Cell::new(None) };
}

/// Restores the previous mark when dropped, so the mark is cleared even if the callback
/// unwinds.
struct Mark {
    previous: Option<Callback>,
}

impl Mark {
    fn set(which: Callback) -> Self {
        let previous = INSIDE.try_with(|c| c.replace(Some(which))).unwrap_or(None);
        Mark { previous }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        // `try_with` fails only while the thread is being torn down: nothing to restore then.
        let _ = INSIDE.try_with(|c| c.set(self.previous));
    }
}

/// Calls the app's code `f` (the callback `which`) with this thread marked as inside it.
pub(crate) fn call_app<T>(which: Callback, f: impl FnOnce() -> T) -> T {
    let _mark = Mark::set(which);
    f()
}

/// The app callback this thread is inside, if any.
pub(crate) fn inside() -> Option<Callback> {
    INSIDE.try_with(Cell::get).unwrap_or(None)
}

/// `Err(SmartPosError::Busy)` when this thread is inside one of the app's callbacks: the
/// terminal method that asks must not wait for the core lock or the worker thread here.
pub(crate) fn refuse_reentry() -> Result<(), SmartPosError> {
    match inside() {
        Some(which) => Err(busy(which)),
        None => Ok(()),
    }
}

/// The error for a terminal method called from inside the callback `which`.
pub(crate) fn busy(which: Callback) -> SmartPosError {
    SmartPosError::Busy {
        reason: format!(
            "the terminal was called from inside the app's {} callback, which the terminal is \
             waiting for; nothing was done: call it after the callback returns (e.g. from a \
             coroutine the callback launches)",
            which.name()
        ),
        // "Busy with another operation" / "正在处理其他操作": the core's own table.
        diagnosis: Some(Diagnosis::from(diagnosis::for_op_error(&OpError::Busy))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_set_inside_and_restored_after() {
        assert_eq!(inside(), None);
        assert!(refuse_reentry().is_ok());
        let seen = call_app(Callback::Printer, || {
            let outer = inside();
            let nested = call_app(Callback::LogSink, inside);
            (outer, nested, inside())
        });
        assert_eq!(
            seen,
            (
                Some(Callback::Printer),
                Some(Callback::LogSink),
                Some(Callback::Printer)
            )
        );
        assert_eq!(inside(), None);
        assert!(refuse_reentry().is_ok());
    }

    #[test]
    fn the_mark_is_per_thread() {
        call_app(Callback::PinEntry, || {
            let other = std::thread::spawn(inside).join().expect("thread");
            assert_eq!(other, None);
            assert_eq!(inside(), Some(Callback::PinEntry));
        });
    }

    #[test]
    fn the_mark_is_cleared_when_the_callback_unwinds() {
        let r = std::panic::catch_unwind(|| {
            call_app(Callback::Listener, || {
                panic!("a callback that panics");
            })
        });
        assert!(r.is_err());
        assert_eq!(inside(), None);
    }

    #[test]
    fn inside_a_callback_the_error_is_busy_with_a_diagnosis_for_the_cashier() {
        let e = call_app(Callback::Printer, refuse_reentry).expect_err("refused");
        match &e {
            SmartPosError::Busy { reason, diagnosis } => {
                assert!(reason.contains("ReceiptPrinter.print"), "{reason}");
                let d = diagnosis.as_ref().expect("diagnosis");
                assert_eq!(d.code, "op.busy");
                assert!(!d.title_zh.is_empty() && !d.title_en.is_empty());
            }
            other => panic!("not Busy: {other:?}"),
        }
        assert!(e.to_string().starts_with("busy: "), "{e}");
    }

    // -----------------------------------------------------------------------------------------
    // A terminal against the simulator, with app callbacks that call it back.

    use crate::callbacks::{CallbackError, TerminalListener};
    use crate::card::CardInput;
    use crate::convert::{
        PrintJob, PrinterStatus, ReceiptCopy, ReceiptWidth, SaleRequest, TerminalConfig,
        TerminalEvent, TxnState,
    };
    use crate::printer::ReceiptPrinter;
    use crate::terminal::Terminal;
    use crate::testkit::{HostSimulator, test_secure_store};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
    use std::time::Duration;

    /// Longer than any of these calls takes; a call still running then is a deadlock.
    const DEADLOCK: Duration = Duration::from_secs(10);

    /// A signed-in terminal on a simulator and a temporary data directory (removed on drop).
    struct Fixture {
        sim: Arc<HostSimulator>,
        dir: PathBuf,
        config: TerminalConfig,
        terminal: Arc<Terminal>,
    }

    impl Fixture {
        fn new(name: &str) -> Self {
            let sim = HostSimulator::new().expect("simulator");
            let host = sim.start("cup".into(), false, None).expect("start");
            let dir = std::env::temp_dir().join(format!(
                "smartpos-ffi-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let config = TerminalConfig {
                tid: "10000001".into(),
                mid: "898100012340001".into(),
                host,
                dialect: "cup".into(),
                currency: "156".into(),
                tls: None,
                connect_timeout_ms: 2_000,
                response_timeout_ms: 5_000,
                utc_offset_minutes: 480,
                profile_toml: None,
            };
            let terminal = Self::open_in(&config, &dir);
            block_on(terminal.sign_in("01".into())).expect("sign in");
            Fixture {
                sim,
                dir,
                config,
                terminal,
            }
        }

        fn open_in(config: &TerminalConfig, dir: &std::path::Path) -> Arc<Terminal> {
            let store = test_secure_store();
            Terminal::open(config.clone(), dir.display().to_string(), store, None).expect("open")
        }

        /// An approved keyed sale; its reference.
        fn sale(&self, amount: u64) -> String {
            let r = block_on(self.terminal.sale(sale_of(amount))).expect("sale");
            assert_eq!(r.record.state, TxnState::Approved);
            r.record.reference
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.terminal.shutdown();
            self.sim.shutdown();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn sale_of(amount: u64) -> SaleRequest {
        let card = CardInput::keyed("6222021234567890128".into(), "3012".into()).expect("card");
        SaleRequest {
            amount,
            idempotency_key: None,
            operator: None,
            card: Some(card),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// Polls `f` once, as the first poll of Kotlin's `runBlocking` would (a tokio runtime cannot
    /// be started on the worker thread a listener runs on); a refused command is ready at once.
    fn poll_once<T>(
        f: impl std::future::Future<Output = Result<T, SmartPosError>>,
    ) -> Result<T, SmartPosError> {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Err(SmartPosError::internal("would have waited")),
        }
    }

    /// Runs `f` on a thread of its own; `None` when it has not returned within [`DEADLOCK`].
    fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(DEADLOCK).ok()
    }

    /// What a callback got from the terminal methods it called.
    type Nested = Mutex<Vec<(&'static str, Result<(), SmartPosError>)>>;

    /// Calls synchronous terminal methods (and a print) from inside the callback.
    fn call_back(t: &Terminal, reference: &str, nested: &Nested) {
        let r = |e: Result<(), SmartPosError>, what| (what, e);
        let got = vec![
            r(t.session().map(drop), "session"),
            r(t.is_signed_in().map(drop), "isSignedIn"),
            r(
                t.receipt_text(reference.into(), ReceiptCopy::Customer, ReceiptWidth::W32)
                    .map(drop),
                "receiptText",
            ),
            r(
                t.reprint(reference.into(), ReceiptCopy::Merchant).map(drop),
                "reprint",
            ),
            r(poll_once(t.echo()), "echo (runBlocking)"),
        ];
        nested.lock().unwrap_or_else(|p| p.into_inner()).extend(got);
    }

    fn assert_all_busy(nested: &Nested, callback: &str) {
        let nested = nested.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(nested.len(), 5, "{nested:?}");
        for (what, r) in nested.iter() {
            match r {
                Err(SmartPosError::Busy { reason, .. }) => {
                    assert!(reason.contains(callback), "{what}: {reason}");
                }
                other => panic!("{what} from {callback}: {other:?}"),
            }
        }
    }

    /// A printer that calls the terminal back, then reports `status`.
    struct CallingPrinter {
        terminal: OnceLock<Weak<Terminal>>,
        status: PrinterStatus,
        nested: Nested,
        jobs: Mutex<Vec<PrintJob>>,
    }

    impl ReceiptPrinter for CallingPrinter {
        fn print(&self, job: PrintJob) -> Result<PrinterStatus, CallbackError> {
            if let Some(t) = self.terminal.get().and_then(Weak::upgrade) {
                call_back(&t, &job.reference, &self.nested);
            }
            self.jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(job);
            Ok(self.status)
        }
    }

    fn calling_printer(t: &Arc<Terminal>, status: PrinterStatus) -> Arc<CallingPrinter> {
        let p = Arc::new(CallingPrinter {
            terminal: OnceLock::new(),
            status,
            nested: Mutex::default(),
            jobs: Mutex::default(),
        });
        let _ = p.terminal.set(Arc::downgrade(t));
        t.set_printer(p.clone()).expect("set printer");
        p
    }

    #[test]
    fn a_printer_that_calls_the_terminal_gets_busy_and_the_print_completes() {
        let f = Fixture::new("printer-reentry");
        let reference = f.sale(1_000);
        let printer = calling_printer(&f.terminal, PrinterStatus::Ok);
        let t = Arc::clone(&f.terminal);
        let r = reference.clone();
        let status = within_deadline(move || t.print(r, ReceiptCopy::Customer))
            .expect("print deadlocked: the printer's call waited for the core lock");
        assert_eq!(status, Ok(PrinterStatus::Ok));
        assert_all_busy(&printer.nested, "ReceiptPrinter.print");
        // The nested reprint printed nothing; the terminal still answers, and the print is
        // recorded as printed.
        assert_eq!(printer.jobs.lock().map(|j| j.len()).unwrap_or(0), 1);
        assert_eq!(f.terminal.is_signed_in(), Ok(true));
        assert_eq!(f.terminal.pending_prints(), Ok(Vec::new()));
        let again = f.terminal.reprint_last(ReceiptCopy::Customer);
        assert_eq!(again, Ok(PrinterStatus::Ok));
        let jobs = printer.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        assert!(
            jobs.last()
                .is_some_and(|j| j.reprint && j.reference == reference)
        );
        // A sale after it goes through.
        f.sale(1_100);
    }

    #[test]
    fn a_failed_print_is_still_recorded_as_pending_and_reprintable() {
        let f = Fixture::new("printer-pending");
        let reference = f.sale(2_300);
        let printer = calling_printer(&f.terminal, PrinterStatus::OutOfPaper);
        let status = f.terminal.print(reference.clone(), ReceiptCopy::Customer);
        assert_eq!(status, Ok(PrinterStatus::OutOfPaper));
        let pending = f.terminal.pending_prints().expect("pending");
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].reference, reference);
        assert_eq!(pending[0].copy, "customer");
        assert_eq!(pending[0].attempts, 1);
        assert_eq!(pending[0].last_status, "out_of_paper");
        assert!(!printer.jobs.lock().map(|j| j[0].reprint).unwrap_or(true));

        // Still out of paper on the reprint: one more attempt, still pending.
        let again = f.terminal.reprint(reference.clone(), ReceiptCopy::Customer);
        assert_eq!(again, Ok(PrinterStatus::OutOfPaper));
        let pending = f.terminal.pending_prints().expect("pending");
        assert_eq!((pending.len(), pending[0].attempts), (1, 2), "{pending:?}");

        // Paper back: the reprint prints and the job is no longer pending.
        let ok = calling_printer(&f.terminal, PrinterStatus::Ok);
        let printed = f.terminal.reprint(reference.clone(), ReceiptCopy::Customer);
        assert_eq!(printed, Ok(PrinterStatus::Ok));
        assert_eq!(f.terminal.pending_prints(), Ok(Vec::new()));
        assert!(ok.jobs.lock().map(|j| j[0].reprint).unwrap_or(false));

        // No printer at all: recorded as pending with `no_printer`, as before.
        let other = f.sale(1_200);
        *f.terminal.printer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let none = f.terminal.print(other.clone(), ReceiptCopy::Merchant);
        assert_eq!(none, Ok(PrinterStatus::NoPrinter));
        let pending = f.terminal.pending_prints().expect("pending");
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(
            (
                pending[0].reference.as_str(),
                pending[0].last_status.as_str()
            ),
            (other.as_str(), "no_printer")
        );
        // An unknown reference fails before the printer is asked, as before.
        let missing = f.terminal.print("nope".into(), ReceiptCopy::Merchant);
        assert!(
            matches!(missing, Err(SmartPosError::NotFound { .. })),
            "{missing:?}"
        );
    }

    /// A listener that calls the terminal back on `Sending` of a sale, or shuts it down.
    struct CallingListener {
        terminal: OnceLock<Weak<Terminal>>,
        shut_down: bool,
        nested: Nested,
    }

    impl TerminalListener for CallingListener {
        fn on_event(&self, event: TerminalEvent) -> Result<(), CallbackError> {
            let TerminalEvent::Sending { message, .. } = &event else {
                return Ok(());
            };
            if message != "sale" {
                return Ok(());
            }
            if let Some(t) = self.terminal.get().and_then(Weak::upgrade) {
                if self.shut_down {
                    t.shutdown();
                } else {
                    call_back(&t, "none", &self.nested);
                }
            }
            Ok(())
        }
    }

    fn calling_listener(t: &Arc<Terminal>, shut_down: bool) -> Arc<CallingListener> {
        let l = Arc::new(CallingListener {
            terminal: OnceLock::new(),
            shut_down,
            nested: Mutex::default(),
        });
        let _ = l.terminal.set(Arc::downgrade(t));
        t.add_listener(l.clone());
        l
    }

    #[test]
    fn a_listener_that_calls_the_terminal_gets_busy_and_the_sale_completes() {
        let f = Fixture::new("listener-reentry");
        let listener = calling_listener(&f.terminal, false);
        let t = Arc::clone(&f.terminal);
        let sale =
            within_deadline(move || block_on(t.sale(sale_of(1_000)))).expect("sale deadlocked");
        assert_eq!(sale.map(|r| r.record.state), Ok(TxnState::Approved));
        assert_all_busy(&listener.nested, "TerminalListener.onEvent");
        assert_eq!(f.terminal.is_signed_in(), Ok(true));
    }

    #[test]
    fn shutdown_from_a_listener_lets_the_running_sale_finish_and_journal() {
        let f = Fixture::new("listener-shutdown");
        let _listener = calling_listener(&f.terminal, true);
        let t = Arc::clone(&f.terminal);
        let sale = within_deadline(move || block_on(t.sale(sale_of(1_000))))
            .expect("sale deadlocked")
            .expect("the running sale finishes");
        assert_eq!(sale.record.state, TxnState::Approved);
        assert!(f.terminal.is_closed());
        assert_eq!(f.terminal.session(), Err(SmartPosError::Closed));
        let later = block_on(f.terminal.sale(sale_of(1_000)));
        assert!(matches!(later, Err(SmartPosError::Closed)), "{later:?}");
        // The journal closes in the background (reopening may be refused until it has);
        // reopened, it has the sale, approved, and nothing waits for the host.
        let (config, dir) = (f.config.clone(), f.dir.clone());
        let records = within_deadline(move || {
            let end = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let store = test_secure_store();
                let reopened =
                    Terminal::open(config.clone(), dir.display().to_string(), store, None);
                match reopened.and_then(|t| t.journal_all()) {
                    Ok(r) => return Ok(r),
                    Err(e) if std::time::Instant::now() > end => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .expect("reopen deadlocked")
        .expect("reopen");
        let this = records
            .iter()
            .find(|r| r.reference == sale.record.reference);
        assert_eq!(
            this.map(|r| r.state),
            Some(TxnState::Approved),
            "{records:?}"
        );
        let ledger = f.sim.ledger();
        assert_eq!(
            ledger.iter().filter(|l| l.status == "approved").count(),
            1,
            "{ledger:?}"
        );
    }
}
