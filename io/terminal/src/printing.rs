//! Receipt printing: the app's printer behind [`ReceiptPrinter`], jobs kept in the journal.
//!
//! A payment is finished when its outcome is journaled; printing comes after and can never
//! undo or block it. A print that fails (out of paper, cover open, ...) leaves its job pending
//! in the journal's `print_job` table; [`crate::Receipts::reprint`] and
//! [`crate::Receipts::reprint_last`] render the receipt again from the journal at any later
//! time, marked as a reprint.

use smartpos_receipt::{
    Cvm, EmvFields, EscPosOptions, Lang, MerchantInfo, ReceiptCopy, ReceiptData, Width,
    render_escpos, render_text, to_plain,
};
use smartpos_txn::{TxnKind, TxnRecord};

/// What the printer reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The printer is busy with another job.
    Busy,
}

impl PrinterStatus {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrinterStatus::Ok => "ok",
            PrinterStatus::OutOfPaper => "out_of_paper",
            PrinterStatus::Overheated => "overheated",
            PrinterStatus::CoverOpen => "cover_open",
            PrinterStatus::NoPrinter => "no_printer",
            PrinterStatus::Busy => "busy",
        }
    }
}

/// One receipt to print, in both forms: printers that speak ESC/POS take the bytes, others
/// (e.g. a vendor print service with its own text API) take the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    /// The transaction.
    pub reference: String,
    /// Merchant or customer copy.
    pub copy: ReceiptCopy,
    /// ESC/POS bytes (initialise, code page, styles, QR of the reference, cut).
    pub escpos: Vec<u8>,
    /// The same receipt as plain text lines of the configured width.
    pub lines: Vec<String>,
    /// Whether it is a reprint.
    pub reprint: bool,
}

/// The app's printer (Android adapters: Bluetooth SPP, USB, Sunmi built-in service).
pub trait ReceiptPrinter: Send {
    /// Prints a job and reports the printer's status. Must not block for long: a printer that
    /// cannot print reports why instead of waiting.
    fn print(&mut self, job: &PrintJob) -> PrinterStatus;
}

/// How receipts are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// Merchant name, ids.
    pub merchant: MerchantInfo,
    /// Paper width.
    pub width: Width,
    /// Label language (Chinese for the `cup` profile by default).
    pub lang: Lang,
}

/// Renders a record into a print job; `chip` adds the chip lines (AID, TVR, TSI, cryptogram)
/// and the cardholder verification of a chip or contactless transaction.
pub fn job_for(
    record: &TxnRecord,
    original: Option<&TxnRecord>,
    settings: &ReceiptSettings,
    copy: ReceiptCopy,
    reprint: bool,
    chip: Option<(EmvFields, Cvm)>,
) -> Result<PrintJob, smartpos_receipt::ReceiptError> {
    let mut data = ReceiptData::from_record(
        record,
        original,
        &settings.merchant,
        copy,
        settings.lang,
        reprint,
    );
    if let Some((emv, cvm)) = chip {
        data.emv = Some(emv);
        data.cvm = cvm;
    }
    let lines = render_text(&data, settings.width);
    let mut opts = EscPosOptions::for_lang(settings.lang, settings.width);
    if record.kind != TxnKind::Balance {
        opts.qr = Some(record.reference.clone());
    }
    let escpos = render_escpos(&lines, &opts)?;
    Ok(PrintJob {
        reference: record.reference.clone(),
        copy,
        escpos,
        lines: to_plain(&lines, settings.width)
            .lines()
            .map(str::to_owned)
            .collect(),
        reprint,
    })
}

/// Stable name of a copy for the journal.
pub fn copy_name(copy: ReceiptCopy) -> &'static str {
    match copy {
        ReceiptCopy::Merchant => "merchant",
        ReceiptCopy::Customer => "customer",
    }
}

/// Journal meta key of the receipt settings saved by [`crate::Terminal::save_receipt_settings`].
pub(crate) const RECEIPTS_META_KEY: &str = "receipts";

/// Receipt settings as kept in the journal (JSON in `meta`).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredReceipts {
    merchant_name: String,
    merchant_id: String,
    terminal_id: String,
    columns: usize,
    lang: String,
}

/// The audit trail's words for a settings change.
pub(crate) fn settings_summary(s: &ReceiptSettings) -> String {
    format!(
        "merchant {} / {} / {}, {} columns, {}",
        s.merchant.name,
        s.merchant.merchant_id,
        s.merchant.terminal_id,
        s.width.columns(),
        s.lang.code()
    )
}

/// The journal form of `s`.
pub(crate) fn stored_json(s: &ReceiptSettings) -> Result<String, crate::TerminalError> {
    serde_json::to_string(&StoredReceipts {
        merchant_name: s.merchant.name.clone(),
        merchant_id: s.merchant.merchant_id.clone(),
        terminal_id: s.merchant.terminal_id.clone(),
        columns: s.width.columns(),
        lang: s.lang.code().to_owned(),
    })
    .map_err(|e| crate::TerminalError::Config(format!("receipt settings: {e}")))
}

/// The receipt settings saved in `journal`, if any. A value that does not parse is a corrupt
/// journal, not a reason to print with other settings without a word.
pub(crate) fn stored_settings(
    journal: &crate::journal::Journal,
) -> Result<Option<ReceiptSettings>, crate::TerminalError> {
    let Some(json) = journal.meta(RECEIPTS_META_KEY)? else {
        return Ok(None);
    };
    let corrupt = || {
        crate::TerminalError::Journal(crate::journal::JournalError::Corrupt {
            what: "receipt settings",
        })
    };
    let s: StoredReceipts = serde_json::from_str(&json).map_err(|_| corrupt())?;
    let width = Width::from_columns(s.columns).ok_or_else(corrupt)?;
    let lang = Lang::from_code(&s.lang).ok_or_else(corrupt)?;
    Ok(Some(ReceiptSettings {
        merchant: MerchantInfo {
            name: s.merchant_name,
            merchant_id: s.merchant_id,
            terminal_id: s.terminal_id,
        },
        width,
        lang,
    }))
}
