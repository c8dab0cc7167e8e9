//! Every record and enum that crosses the FFI, and the one place where core types become them
//! (and Kotlin input becomes core types).
//!
//! The certified-kernel bridge's records (`KernelRequest`, `KernelCard`, ...) live with their
//! conversions in `certified.rs`.
//!
//! Records hold no clear card data: a PAN appears only masked (`pan_masked`), and pending
//! messages cross as metadata without their bytes.
//!
//! Files, by subject (each `use super::*` for the imports below):
//! - `config.rs`: [`TerminalConfig`], [`TlsConfig`] and how they become the core's config;
//! - `outcome.rs`: requests, [`TxnRecord`], [`TxnResult`], [`PendingItem`], [`SettleResult`],
//!   [`TerminalEvent`] and their conversions from the engine's values;
//! - `operators.rs`: roles, sessions, login results, refund quotes and denials;
//! - `receipts.rs`: receipt copies, widths, printer status, print jobs;
//! - `settings.rs`: the operator, refund and receipt settings documents;
//! - `errors.rs`: core errors folded into [`SmartPosError`].
//!
//! [`crate::diagnosis::Diagnosis`] and the error payload records ([`crate::error::CardRefusal`],
//! [`crate::error::KernelFailure`], [`crate::error::RefundDenial`]) live outside, so that
//! `error.rs` does not import this module.

mod config;
mod errors;
mod operators;
mod outcome;
mod receipts;
mod settings;
#[cfg(test)]
mod tests;

pub use config::{TerminalConfig, TlsConfig};
pub(crate) use errors::card_read_failed;
pub use operators::{LoginResult, OperatorRole, OperatorSession, RefundQuote};
pub use outcome::{
    AmountRequest, HostReply, PendingItem, RecoverResult, ReferenceRequest, SaleRequest,
    SettleResult, TerminalEvent, TxnKind, TxnRecord, TxnResult, TxnState,
};
pub(crate) use outcome::{core_kind, settle_result};
pub use receipts::{PendingPrint, PrintJob, PrinterStatus, ReceiptCopy, ReceiptWidth};
pub(crate) use settings::safety_settings_in;
pub use settings::{
    MERCHANT_NAME_MAX_CHARS, OperatorSettings, ReceiptSettings, RefundFee, RefundPolicy,
    SafetySettings,
};
// Moved out of this module; kept at their old paths for the crate's users.
pub use crate::diagnosis::{Diagnosis, diagnose_response_code};
use crate::diagnosis::{diagnose_op, diagnose_outcome};
pub use crate::error::{CardRefusal, KernelFailure, RefundDenial};

use crate::card::CardInput;
use crate::certified::EntryMode;
use crate::error::SmartPosError;
use smartpos_terminal::api::TlsClientConfig;
use smartpos_terminal::api::card::CardError;
use smartpos_terminal::api::emv::CryptogramType as CoreCryptogram;
use smartpos_terminal::api::emv::{self as core_certified, KernelBridgeError};
use smartpos_terminal::api::model::{self, PendingKind};
use smartpos_terminal::api::operators::denial_json;
use smartpos_terminal::api::operators::{self as core_ops, Denial, Role, Session};
use smartpos_terminal::api::printing;
use smartpos_terminal::api::receipt;
use smartpos_terminal::api::{Event, OpError, Outcome};
use smartpos_terminal::api::{MsgType, Reply};
use smartpos_terminal::api::{TerminalError, TxnOutcome};
use std::sync::Arc;
