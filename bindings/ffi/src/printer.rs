//! Receipts: the app's [`ReceiptPrinter`] and the print, reprint and receipt-text methods of
//! the [`Terminal`].
//!
//! A payment is finished when it is journaled: a printer that fails (out of paper, ...) leaves
//! the job pending in the journal and never touches the transaction; `reprint` renders it
//! again later, marked as a reprint. The printer is called on the caller's thread during
//! `print`, `reprint` and `reprintLast` (call them from `Dispatchers.IO`).
//!
//! A print takes three steps, so that the app's printer never runs under the core lock: the
//! job is rendered under the lock; the lock is released and the app's printer prints it; the
//! lock is taken again and the core records the status (`record_print`, what its own `print`
//! does after printing). Other calls may run between the steps; prints themselves stay one at
//! a time (`Terminal::printing`).

use crate::callbacks::CallbackError;
use crate::convert::{PendingPrint, PrintJob, PrinterStatus, ReceiptCopy, ReceiptWidth};
use crate::error::SmartPosError;
use crate::reentry::{self, Callback};
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::api::printing;
use smartpos_terminal::api::receipt;
use std::sync::Arc;

/// The app's printer (Bluetooth SPP, USB, a vendor's built-in print service).
///
/// Threads: called on the thread that called `print`, `reprint` or `reprintLast`, one job at a
/// time per terminal, without the terminal's lock held. Do not call the terminal
/// synchronously from `print` (`session()`, `receiptText()`, `isSignedIn()`, ...): such a
/// call throws `SmartPosException.Busy` at once and does nothing. Read what the receipt needs
/// before printing, or launch a coroutine that calls the terminal after `print` returns. Do
/// not wait in `print` for another thread that calls the terminal either.
#[uniffi::export(with_foreign)]
pub trait ReceiptPrinter: Send + Sync {
    /// Prints one receipt and reports the printer's status. Must not block for long: a
    /// printer that cannot print reports why.
    fn print(&self, job: PrintJob) -> Result<PrinterStatus, CallbackError>;
}

/// Asks the app's printer, marked as an app callback; an exception counts as `NoPrinter`.
fn print_on(printer: &dyn ReceiptPrinter, job: PrintJob) -> printing::PrinterStatus {
    stats::callback();
    match reentry::call_app(Callback::Printer, || printer.print(job)) {
        Ok(s) => s.into(),
        Err(e) => {
            log::warn!("printer failed: {e}");
            printing::PrinterStatus::NoPrinter
        }
    }
}

/// Which receipt a print is for.
enum Target {
    /// A transaction's receipt (`print`, or `reprint` when `reprint`).
    One {
        /// The transaction.
        reference: String,
        /// Marked as a reprint.
        reprint: bool,
    },
    /// The most recent transaction's, as a reprint.
    Last,
}

#[uniffi::export]
impl Terminal {
    /// Installs the app's printer (replacing an earlier one; a print already started finishes
    /// on the old one).
    pub fn set_printer(&self, printer: Arc<dyn ReceiptPrinter>) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|_| {
            *self.printer.lock().unwrap_or_else(|p| p.into_inner()) = Some(printer);
            Ok(())
        })
    }

    /// Prints a transaction's receipt; the status is recorded, a failure leaves it pending.
    /// The printer runs on this thread without the terminal's lock (see [`ReceiptPrinter`]).
    pub fn print(
        &self,
        reference: String,
        copy: ReceiptCopy,
    ) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        let target = Target::One {
            reference,
            reprint: false,
        };
        self.print_job(target, copy.into())
    }

    /// Prints a transaction's receipt again, marked as a reprint.
    pub fn reprint(
        &self,
        reference: String,
        copy: ReceiptCopy,
    ) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        let target = Target::One {
            reference,
            reprint: true,
        };
        self.print_job(target, copy.into())
    }

    /// Reprints the most recent transaction's receipt.
    pub fn reprint_last(&self, copy: ReceiptCopy) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        self.print_job(Target::Last, copy.into())
    }

    /// Receipts whose printing failed and that wait for a reprint.
    pub fn pending_prints(&self) -> Result<Vec<PendingPrint>, SmartPosError> {
        stats::call();
        self.with_core(|t| {
            Ok(t.receipts()
                .pending_prints()?
                .into_iter()
                .map(PendingPrint::from)
                .collect())
        })
    }

    /// A transaction's receipt as plain text (lines joined by `\n`) for `width` paper, e.g.
    /// to show on screen or send by message. Prints nothing and records nothing.
    pub fn receipt_text(
        &self,
        reference: String,
        copy: ReceiptCopy,
        width: ReceiptWidth,
    ) -> Result<String, SmartPosError> {
        stats::call();
        self.with_core(|t| {
            // The app's settings (merchant, language) at the width asked for.
            let mut settings = t.receipts().receipt_settings().clone();
            settings.width = width.into();
            Ok(t.receipts()
                .receipt_with(&settings, &reference, copy.into(), false)?
                .lines
                .join("\n"))
        })
    }
}

impl Terminal {
    /// Renders under the core lock, prints without it, records under it again (module docs).
    fn print_job(
        &self,
        target: Target,
        copy: receipt::ReceiptCopy,
    ) -> Result<PrinterStatus, SmartPosError> {
        // Refused before anything else, so that a printer printing again fails at once
        // instead of waiting for the print it runs in.
        reentry::refuse_reentry()?;
        let _one_at_a_time = self.printing.lock().unwrap_or_else(|p| p.into_inner());
        // 1. Render (under the lock), as the core's print does.
        let (reference, job) = self.with_core(|t| {
            let (reference, reprint) = match target {
                Target::One { reference, reprint } => (reference, reprint),
                Target::Last => (t.receipts().last_reference()?, true),
            };
            let job = t.receipts().receipt(&reference, copy, reprint)?;
            Ok((reference, job))
        })?;
        // 2. Print (without the lock).
        let printer = self
            .printer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let status = match printer {
            Some(p) => print_on(p.as_ref(), PrintJob::from(&job)),
            None => printing::PrinterStatus::NoPrinter,
        };
        // 3. Record (under the lock), as the core's print does.
        self.with_core(|t| {
            t.receipts().record_print(&reference, copy, status)?;
            Ok(status.into())
        })
    }
}
