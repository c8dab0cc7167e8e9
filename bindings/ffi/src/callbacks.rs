//! The foreign traits the app implements, and their Rust adapters.
//!
//! Every method returns `Result<_, CallbackError>`: uniffi turns a Kotlin exception thrown
//! inside a callback into [`CallbackError::Unexpected`] (through
//! `From<UnexpectedUniFFICallbackError>`), so a failing callback is an error value here —
//! logged or reported — and never a panic across the FFI.
//!
//! Every call into the app's code goes through `reentry::call_app`: a terminal method that the
//! callback calls synchronously fails at once with `SmartPosException.Busy` instead of waiting
//! for a lock the callback's thread may hold (`reentry.rs`).

use crate::reentry::{self, Callback};
use crate::stats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, RwLock};
use zeroize::Zeroizing;

/// A callback failed on the app side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The app reported a failure.
    #[error("callback failed: {reason}")]
    Failed {
        /// For logs (the app must not put secrets here).
        reason: String,
    },
    /// The app threw an exception uniffi did not expect (any Kotlin exception).
    #[error("callback threw: {reason}")]
    Unexpected {
        /// The exception's text.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Unexpected { reason: e.reason }
    }
}

// ---------------------------------------------------------------------------------------------
// Secure store.

/// Storage for the terminal's secrets (the TMK under `tmk`, the journal key under
/// `journal_key`, and for mutual TLS the client certificate's key under `tls_client_key` when
/// `TlsConfig.clientKey` is not given), implemented by the app, e.g. with values wrapped by an
/// Android Keystore key.
///
/// The SDK reads both once when a terminal opens and keeps them inside Rust (zeroized on drop);
/// it writes `journal_key` once, when it creates it. Nothing else crosses. The journal guard
/// may also read and write its own entries while a command runs, on the terminal's worker
/// thread: do not call the terminal from here (it throws `SmartPosException.Busy`).
#[uniffi::export(with_foreign)]
pub trait SecureStore: Send + Sync {
    /// The secret called `name`, or `None` when absent.
    fn get(&self, name: String) -> Result<Option<Vec<u8>>, CallbackError>;
    /// Stores the secret `name`.
    fn put(&self, name: String, value: Vec<u8>) -> Result<(), CallbackError>;
}

/// Adapts the app's store to the core's `SecureStore`.
pub(crate) struct StoreAdapter(pub(crate) Arc<dyn SecureStore>);

impl smartpos_terminal::api::store::SecureStore for StoreAdapter {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        stats::callback();
        reentry::call_app(Callback::SecureStore, || self.0.get(name.to_owned()))
            .map(|v| v.map(Zeroizing::new))
            .map_err(|e| e.to_string())
    }

    fn put(&self, name: &str, value: &[u8]) -> Result<(), String> {
        stats::callback();
        reentry::call_app(Callback::SecureStore, || {
            self.0.put(name.to_owned(), value.to_vec())
        })
        .map_err(|e| e.to_string())
    }
}

/// An in-memory store; used by the test kit (with the simulator's TEST TMK) and the tests.
#[cfg(any(test, feature = "testkit"))]
#[derive(Default)]
pub(crate) struct MemoryStore {
    values: Mutex<Vec<(String, Zeroizing<Vec<u8>>)>>,
}

#[cfg(any(test, feature = "testkit"))]
impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Zeroizing<Vec<u8>>)>> {
        // Only whole values are ever written under the lock: a poisoned lock holds no torn data.
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(any(test, feature = "testkit"))]
impl SecureStore for MemoryStore {
    fn get(&self, name: String) -> Result<Option<Vec<u8>>, CallbackError> {
        Ok(self
            .lock()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_vec()))
    }

    fn put(&self, name: String, value: Vec<u8>) -> Result<(), CallbackError> {
        let mut values = self.lock();
        values.retain(|(n, _)| *n != name);
        values.push((name, Zeroizing::new(value)));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Listener.

/// Receives [`crate::convert::TerminalEvent`]s. Called on the terminal's tokio threads while a
/// command runs (and on the caller's thread around the `CardReader`): return quickly, and do
/// not call the terminal from here (it is busy with the command that produced the event). A
/// synchronous terminal method called from `onEvent`, or a `suspend` one run with
/// `runBlocking`, throws `SmartPosException.Busy` at once and does nothing; `close()` from here
/// does not wait (the command finishes and journals, then the terminal closes in the
/// background). To react to an event, hand it to a coroutine, as `Terminal.events()` does.
#[uniffi::export(with_foreign)]
pub trait TerminalListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: crate::convert::TerminalEvent) -> Result<(), CallbackError>;
}

/// The listeners of one terminal.
#[derive(Default)]
pub(crate) struct Listeners {
    next: AtomicU64,
    list: Mutex<Vec<(u64, Arc<dyn TerminalListener>)>>,
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<dyn TerminalListener>)>> {
        // Pushes and retains only: a poisoned lock holds a consistent list.
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a listener; returns its id.
    pub(crate) fn add(&self, l: Arc<dyn TerminalListener>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().push((id, l));
        id
    }

    /// Removes a listener; whether it was there.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        list.len() != before
    }

    /// Removes every listener (on close).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Delivers an event to every listener; a failing listener is logged and skipped.
    pub(crate) fn emit(&self, event: &crate::convert::TerminalEvent) {
        // Called outside the lock, so a listener may add or remove listeners.
        let list: Vec<_> = self.lock().iter().map(|(_, l)| Arc::clone(l)).collect();
        for l in list {
            stats::callback();
            if let Err(e) = reentry::call_app(Callback::Listener, || l.on_event(event.clone())) {
                log::warn!("terminal listener failed: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Logs.

/// Severity of a [`LogRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information (one line per message sent, reversal, recovery).
    Info,
    /// Debugging.
    Debug,
    /// Everything.
    Trace,
}

/// One log line from the SDK. Log lines never hold clear card data or keys.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that logged it, e.g. `smartpos_terminal::runtime`.
    pub target: String,
    /// The text.
    pub message: String,
}

/// Receives the SDK's log lines (e.g. forwards them to Timber or SLF4J). Called on whatever
/// thread logged, possibly while that thread holds the terminal's lock; return quickly and do
/// not call the terminal from here (it throws `SmartPosException.Busy`).
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One line.
    fn log(&self, record: LogRecord) -> Result<(), CallbackError>;
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while a record is being handed to the sink, so a log line produced on the way
    /// (e.g. by uniffi itself) does not recurse into the sink.
    static IN_SINK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct Forwarder {
    #[cfg(target_os = "android")]
    logcat: android_logger::AndroidLogger,
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        #[cfg(target_os = "android")]
        self.logcat.log(record);
        let sink = match SINK.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(sink) = sink else { return };
        if IN_SINK.with(|f| f.replace(true)) {
            return;
        }
        stats::callback();
        // A failing sink cannot be reported through the log it failed to write: drop the line.
        let line = LogRecord {
            level: level_of(record.level()),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        };
        let _ = reentry::call_app(Callback::LogSink, || sink.log(line));
        IN_SINK.with(|f| f.set(false));
    }

    fn flush(&self) {}
}

fn level_of(l: log::Level) -> LogLevel {
    match l {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::Trace,
    }
}

fn filter_of(l: LogLevel) -> log::LevelFilter {
    match l {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

/// Sends the SDK's log lines at `level` and above to `sink` (`None` stops forwarding). On
/// Android the lines also go to logcat (tag `smartpos`), with or without a sink.
///
/// The SDK installs its logger the first time this is called; if the process already has a
/// `log` logger, that one keeps receiving the lines and the sink receives none.
#[uniffi::export]
pub fn set_log_sink(sink: Option<Arc<dyn LogSink>>, level: LogLevel) {
    stats::call();
    match SINK.write() {
        Ok(mut s) => *s = sink,
        Err(p) => *p.into_inner() = sink,
    }
    INSTALL.call_once(|| {
        let forwarder = Forwarder {
            #[cfg(target_os = "android")]
            logcat: android_logger::AndroidLogger::new(
                android_logger::Config::default()
                    .with_max_level(log::LevelFilter::Trace)
                    .with_tag("smartpos"),
            ),
        };
        // Installed once for the life of the process, as `log` requires: leaking it is the point.
        if log::set_logger(Box::leak(Box::new(forwarder))).is_err() {
            // Another logger was installed first (e.g. by a test harness): keep it.
        }
    });
    log::set_max_level(filter_of(level));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::TerminalEvent;

    struct Failing;
    impl TerminalListener for Failing {
        fn on_event(&self, _e: TerminalEvent) -> Result<(), CallbackError> {
            Err(CallbackError::Unexpected {
                reason: "kotlin threw".into(),
            })
        }
    }

    #[derive(Default)]
    struct Recording(Mutex<Vec<TerminalEvent>>);
    impl TerminalListener for Recording {
        fn on_event(&self, e: TerminalEvent) -> Result<(), CallbackError> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(e);
            Ok(())
        }
    }

    #[test]
    fn failing_listener_does_not_stop_the_others() {
        let ls = Listeners::default();
        let rec = Arc::new(Recording::default());
        let failing = ls.add(Arc::new(Failing));
        let id = ls.add(rec.clone());
        ls.emit(&TerminalEvent::Ignored { why: "x".into() });
        assert_eq!(rec.0.lock().map(|v| v.len()).unwrap_or(0), 1);
        assert!(ls.remove(failing));
        assert!(!ls.remove(failing));
        assert!(ls.remove(id));
        ls.emit(&TerminalEvent::Ignored { why: "y".into() });
        assert_eq!(rec.0.lock().map(|v| v.len()).unwrap_or(0), 1);
    }

    #[test]
    fn unexpected_callback_error_is_a_value() {
        let e = CallbackError::from(uniffi::UnexpectedUniFFICallbackError {
            reason: "java.lang.IllegalStateException".into(),
        });
        assert!(matches!(e, CallbackError::Unexpected { .. }));
    }

    #[test]
    fn memory_store_round_trips_and_adapter_reports_absence() {
        use smartpos_terminal::api::store::SecureStore as Core;
        let store = Arc::new(MemoryStore::default());
        let a = StoreAdapter(store.clone());
        assert_eq!(a.get("tmk"), Ok(None));
        a.put("tmk", &[1, 2, 3]).expect("put");
        a.put("tmk", &[4]).expect("put");
        assert_eq!(
            a.get("tmk").expect("get").map(|v| v.to_vec()),
            Some(vec![4])
        );
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<LogRecord>>);
    impl LogSink for Lines {
        fn log(&self, r: LogRecord) -> Result<(), CallbackError> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            Ok(())
        }
    }

    #[test]
    fn log_lines_reach_the_sink_at_the_chosen_level() {
        let sink = Arc::new(Lines::default());
        set_log_sink(Some(sink.clone()), LogLevel::Info);
        log::info!(target: "smartpos_ffi::test", "hello {}", 1);
        log::debug!(target: "smartpos_ffi::test", "not shown");
        set_log_sink(None, LogLevel::Info);
        log::info!(target: "smartpos_ffi::test", "after removal");
        let lines = sink.0.lock().map(|v| v.clone()).unwrap_or_default();
        let ours: Vec<_> = lines
            .iter()
            .filter(|r| r.target == "smartpos_ffi::test")
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].message, "hello 1");
        assert_eq!(ours[0].level, LogLevel::Info);
    }
}
