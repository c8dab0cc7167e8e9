//! Receipt copies, widths, printer status, print jobs and pending prints.

use super::*;

/// Which copy of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptCopy {
    /// Kept by the merchant (signature area).
    Merchant,
    /// Handed to the cardholder.
    Customer,
}

/// Paper width of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptWidth {
    /// 58 mm paper: 32 columns.
    W32,
    /// 80 mm paper: 48 columns.
    W48,
}

/// What the printer reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PrinterStatus {
    /// Printed.
    Ok,
    /// Out of paper.
    OutOfPaper,
    /// The print head is too hot.
    Overheated,
    /// The paper cover is open.
    CoverOpen,
    /// No printer is connected or available.
    NoPrinter,
    /// Busy with another job.
    Busy,
}

/// One receipt to print: ESC/POS bytes for printers that speak it, plain lines for the others.
/// Receipts carry the PAN masked only.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrintJob {
    /// The transaction's reference.
    pub reference: String,
    /// Merchant or customer copy.
    pub copy: ReceiptCopy,
    /// ESC/POS bytes (initialise, code page, styles, QR of the reference, cut).
    pub escpos: Vec<u8>,
    /// The same receipt as plain text lines.
    pub lines: Vec<String>,
    /// Whether it is a reprint.
    pub reprint: bool,
}

/// A receipt whose printing failed and is still pending.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingPrint {
    /// The transaction's reference.
    pub reference: String,
    /// `merchant` or `customer`.
    pub copy: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Last printer status, e.g. `out_of_paper`.
    pub last_status: String,
}

impl From<ReceiptCopy> for receipt::ReceiptCopy {
    fn from(c: ReceiptCopy) -> Self {
        match c {
            ReceiptCopy::Merchant => receipt::ReceiptCopy::Merchant,
            ReceiptCopy::Customer => receipt::ReceiptCopy::Customer,
        }
    }
}

impl From<receipt::ReceiptCopy> for ReceiptCopy {
    fn from(c: receipt::ReceiptCopy) -> Self {
        match c {
            receipt::ReceiptCopy::Merchant => ReceiptCopy::Merchant,
            receipt::ReceiptCopy::Customer => ReceiptCopy::Customer,
        }
    }
}

impl From<ReceiptWidth> for receipt::Width {
    fn from(w: ReceiptWidth) -> Self {
        match w {
            ReceiptWidth::W32 => receipt::Width::W32,
            ReceiptWidth::W48 => receipt::Width::W48,
        }
    }
}

impl From<printing::PrinterStatus> for PrinterStatus {
    fn from(s: printing::PrinterStatus) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match s {
            printing::PrinterStatus::Ok => PrinterStatus::Ok,
            printing::PrinterStatus::OutOfPaper => PrinterStatus::OutOfPaper,
            printing::PrinterStatus::Overheated => PrinterStatus::Overheated,
            printing::PrinterStatus::CoverOpen => PrinterStatus::CoverOpen,
            printing::PrinterStatus::Busy => PrinterStatus::Busy,
            _ => PrinterStatus::NoPrinter,
        }
    }
}

impl From<PrinterStatus> for printing::PrinterStatus {
    fn from(s: PrinterStatus) -> Self {
        match s {
            PrinterStatus::Ok => printing::PrinterStatus::Ok,
            PrinterStatus::OutOfPaper => printing::PrinterStatus::OutOfPaper,
            PrinterStatus::Overheated => printing::PrinterStatus::Overheated,
            PrinterStatus::CoverOpen => printing::PrinterStatus::CoverOpen,
            PrinterStatus::NoPrinter => printing::PrinterStatus::NoPrinter,
            PrinterStatus::Busy => printing::PrinterStatus::Busy,
        }
    }
}

impl From<&printing::PrintJob> for PrintJob {
    fn from(j: &printing::PrintJob) -> Self {
        PrintJob {
            reference: j.reference.clone(),
            copy: j.copy.into(),
            escpos: j.escpos.clone(),
            lines: j.lines.clone(),
            reprint: j.reprint,
        }
    }
}

impl From<(String, String, u32, String)> for PendingPrint {
    fn from((reference, copy, attempts, last_status): (String, String, u32, String)) -> Self {
        PendingPrint {
            reference,
            copy,
            attempts,
            last_status,
        }
    }
}
