//! Receipts: what a slip says, laid out as text lines, encoded as ESC/POS printer bytes.
//!
//! - `model.rs`: [`ReceiptData`] (one transaction slip, built from data or from a journal
//!   record with [`ReceiptData::from_record`]), [`SettlementReport`], the label table
//!   ([`Label`], Chinese and English) and amount formatting.
//! - `text.rs`: [`render_text`] / [`render_settlement`] lay a slip out for a 32- or 48-column
//!   printer as styled [`Line`]s, counting CJK characters as two columns ([`str_width`]), and
//!   [`to_plain`] turns them into a plain-text preview.
//! - `escpos.rs`: [`render_escpos`] turns lines into ESC/POS bytes (GB18030 in Chinese mode,
//!   or code page 437), with an optional printer-rendered QR code and a paper cut.
//!
//! Nothing here performs I/O or reads a clock: the date and time come from the record or are
//! passed in, and the bytes go to the app's printer driver.

pub mod escpos;
pub mod model;
pub mod text;

pub use escpos::{Codepage, EscPosOptions, QR_MAX_BYTES, render_escpos};
pub use model::{
    CardScheme, CryptogramKind, Cvm, EmvFields, EntryMode, Label, Lang, MaskedPan, MerchantInfo,
    OriginalRef, ReceiptCopy, ReceiptData, ReceiptTime, SettlementReport, format_amount,
};
pub use text::{
    Align, Line, Style, Width, char_width, render_settlement, render_text, str_width, to_plain,
};

use thiserror::Error;

/// Why a receipt could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The QR payload is longer than a QR code (model 2, version 40, level M, byte mode) holds.
    #[error("QR data is {got} bytes, at most {max} fit")]
    QrTooLong {
        /// Maximum accepted.
        max: usize,
        /// Bytes given.
        got: usize,
    },
    /// The QR payload is empty (the printer needs at least one byte).
    #[error("QR data is empty")]
    QrEmpty,
}
