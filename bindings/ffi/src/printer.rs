//! Receipts: the app's [`ReceiptPrinter`] and the print, reprint and receipt-text methods of
//! the [`Terminal`].
//!
//! A payment is finished when it is journaled: a printer that fails (out of paper, ...) leaves
//! the job pending in the journal and never touches the transaction; `reprint` renders it
//! again later, marked as a reprint. The printer is called on the caller's thread during
//! `print`, `reprint` and `reprintLast` (call them from `Dispatchers.IO`).

use crate::callbacks::CallbackError;
use crate::convert::{PendingPrint, PrintJob, PrinterStatus, ReceiptCopy, ReceiptWidth};
use crate::error::SmartPosError;
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::printing;
use std::sync::Arc;

/// The app's printer (Bluetooth SPP, USB, a vendor's built-in print service).
#[uniffi::export(with_foreign)]
pub trait ReceiptPrinter: Send + Sync {
    /// Prints one receipt and reports the printer's status. Must not block for long: a
    /// printer that cannot print reports why.
    fn print(&self, job: PrintJob) -> Result<PrinterStatus, CallbackError>;
}

/// Adapts the app's printer to the core's; an exception counts as `NoPrinter`.
struct PrinterAdapter(Arc<dyn ReceiptPrinter>);

impl printing::ReceiptPrinter for PrinterAdapter {
    fn print(&mut self, job: &printing::PrintJob) -> printing::PrinterStatus {
        stats::callback();
        match self.0.print(PrintJob::from(job)) {
            Ok(s) => s.into(),
            Err(e) => {
                log::warn!("printer failed: {e}");
                printing::PrinterStatus::NoPrinter
            }
        }
    }
}

#[uniffi::export]
impl Terminal {
    /// Installs the app's printer (replacing an earlier one).
    pub fn set_printer(&self, printer: Arc<dyn ReceiptPrinter>) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| {
            t.set_printer(PrinterAdapter(printer));
            Ok(())
        })
    }

    /// Prints a transaction's receipt; the status is recorded, a failure leaves it pending.
    pub fn print(
        &self,
        reference: String,
        copy: ReceiptCopy,
    ) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.print(&reference, copy.into())?.into()))
    }

    /// Prints a transaction's receipt again, marked as a reprint.
    pub fn reprint(
        &self,
        reference: String,
        copy: ReceiptCopy,
    ) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.reprint(&reference, copy.into())?.into()))
    }

    /// Reprints the most recent transaction's receipt.
    pub fn reprint_last(&self, copy: ReceiptCopy) -> Result<PrinterStatus, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.reprint_last(copy.into())?.into()))
    }

    /// Receipts whose printing failed and that wait for a reprint.
    pub fn pending_prints(&self) -> Result<Vec<PendingPrint>, SmartPosError> {
        stats::call();
        self.with_core(|t| {
            Ok(t.pending_prints()?
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
            let mut settings = t.receipt_settings().clone();
            settings.width = width.into();
            Ok(t.receipt_with(&settings, &reference, copy.into(), false)?
                .lines
                .join("\n"))
        })
    }
}
