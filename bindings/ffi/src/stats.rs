//! Counters of FFI crossings, read by the benchmark in `bindings/kotlin`.
//!
//! Three counts: exported calls (Kotlin → Rust entry points, sync or async), polls of async
//! calls (each poll is one more Kotlin → Rust crossing, and each wake-up one Rust → Kotlin
//! continuation callback), and foreign callbacks (Rust → Kotlin: listener, card reader, secure
//! store, log sink). The uniffi protocol adds fixed crossings per async call (create, complete,
//! free) that are not counted here; the benchmark report adds them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

static CALLS: AtomicU64 = AtomicU64::new(0);
static POLLS: AtomicU64 = AtomicU64::new(0);
static CALLBACKS: AtomicU64 = AtomicU64::new(0);

/// FFI crossing counts since the last [`reset_ffi_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct FfiStats {
    /// Kotlin → Rust calls of exported functions and methods.
    pub calls: u64,
    /// Polls of async calls by the Kotlin executor.
    pub polls: u64,
    /// Rust → Kotlin calls of foreign traits.
    pub callbacks: u64,
}

/// The counters.
#[uniffi::export]
pub fn ffi_stats() -> FfiStats {
    FfiStats {
        calls: CALLS.load(Ordering::Relaxed),
        polls: POLLS.load(Ordering::Relaxed),
        callbacks: CALLBACKS.load(Ordering::Relaxed),
    }
}

/// Sets the counters to zero.
#[uniffi::export]
pub fn reset_ffi_stats() {
    CALLS.store(0, Ordering::Relaxed);
    POLLS.store(0, Ordering::Relaxed);
    CALLBACKS.store(0, Ordering::Relaxed);
}

/// Counts one exported call.
pub(crate) fn call() {
    CALLS.fetch_add(1, Ordering::Relaxed);
}

/// Counts one foreign callback.
pub(crate) fn callback() {
    CALLBACKS.fetch_add(1, Ordering::Relaxed);
}

/// Counts one exported async call and every poll of it.
pub(crate) fn counted<F: Future>(fut: F) -> Counted<F> {
    call();
    Counted { fut: Box::pin(fut) }
}

/// A future that counts its polls (see [`counted`]).
pub(crate) struct Counted<F> {
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLS.fetch_add(1, Ordering::Relaxed);
        self.fut.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_polls_of_a_pending_future() {
        // Counters are global; other tests may run in parallel, so assert on differences only.
        let before = ffi_stats();
        let mut yielded = false;
        let fut = counted(std::future::poll_fn(move |cx| {
            if yielded {
                Poll::Ready(7)
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }));
        let got = futures_lite_block_on(fut);
        let after = ffi_stats();
        assert_eq!(got, 7);
        assert!(after.calls > before.calls);
        assert!(after.polls >= before.polls + 2);
    }

    /// Drives a future on a current-thread tokio runtime (tokio is already a dependency).
    fn futures_lite_block_on<F: Future>(fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(fut)
    }
}
