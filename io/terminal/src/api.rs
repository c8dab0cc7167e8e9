//! The curated API of the runtime: everything a binding (the Kotlin FFI in `bindings/ffi`)
//! needs, and nothing of the engine's or the journal's internals.
//!
//! The FFI imports from here only (plus `smartpos-types`' value types), so a change inside the
//! engine (`smartpos_txn::engine`'s states), the journal's SQL or the journal guard does not
//! reach it; a test in `bindings/ffi` (`ffi_imports_only_the_curated_api`) keeps it that way.
//! The items are re-exports of the crates that define them, grouped by subject:
//!
//! - at the top: [`Terminal`] and its configuration, errors and outcomes, the engine's public
//!   values ([`Event`], [`Outcome`], [`OpError`]), the intent and the host profile, and the
//!   two guarded entry points [`open`] and [`reset_journal`] (the journal guard's STAN
//!   reservation stays inside);
//! - [`model`]: journal records and pending items as values;
//! - [`card`]: the app's card transports, readers and PIN entry;
//! - [`reader`]: the mPOS Bluetooth reader link;
//! - [`printing`] and [`receipt`]: print jobs, printer status, receipt settings and layout;
//! - [`operators`]: operators, sessions, the refund policy and quotes;
//! - [`diagnosis`]: what the cashier reads about an outcome or an error;
//! - [`security`]: the security module, PIN and key references;
//! - [`params`]: EMV terminal parameters;
//! - [`emv`]: the certified-kernel bridge (the device's own EMV kernel);
//! - [`store`]: the app's secure store and the keys kept in it.
//!
//! The `Terminal` methods are grouped in facets ([`Terminal::operators`],
//! [`Terminal::receipts`], [`Terminal::support`], [`Terminal::admin`]); money-moving calls stay
//! on `Terminal` itself.

use std::path::Path;
use std::sync::Arc;

pub use crate::facets::{Admin, Operators, Receipts, Support};
pub use crate::runtime::{ConfigSettings, Terminal, TerminalConfig, TerminalError, TxnOutcome};
pub use crate::safety::{Approval, SafetySettings};
pub use smartpos_txn::TxnIntent;
pub use smartpos_txn::engine::{Event, OpError, Outcome};
pub use smartpos_txn::proto::{CardData, MsgType, Profile, Reply};

pub use crate::guard::JournalReset;
pub use crate::journal::{JournalError, JournalKey};
pub use crate::link::{ClientIdentity, LinkConfig, TlsClientConfig};

/// Opens the terminal under the journal guard (see [`Terminal::open_guarded`]) with the
/// runtime's STAN reservation block: a missing, emptied, foreign or rolled-back journal is
/// refused.
pub fn open(
    cfg: TerminalConfig,
    profile: Option<Profile>,
    journal_path: &Path,
    module: Arc<dyn security::SecurityModule>,
    journal_key: &JournalKey,
    store: Arc<dyn store::SecureStore>,
) -> Result<Terminal, TerminalError> {
    Terminal::open_guarded(
        cfg,
        profile,
        journal_path,
        module,
        journal_key,
        store,
        crate::guard::STAN_BLOCK,
    )
}

/// Support's explicit reset of a journal the guard refused (see
/// [`crate::guard::reset_journal`]), with the runtime's STAN reservation block.
pub fn reset_journal(
    journal_path: &Path,
    journal_key: &JournalKey,
    store: Arc<dyn store::SecureStore>,
    now_unix_ms: i64,
) -> Result<JournalReset, TerminalError> {
    crate::guard::reset_journal(
        journal_path,
        journal_key,
        store,
        crate::guard::STAN_BLOCK,
        now_unix_ms,
    )
}

/// Makes `dir` (created if needed) readable by the app only (0700, narrowed when wider).
pub fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    crate::files::owner_only_dir(dir)
}

/// Journal records and pending items, as values.
pub mod model {
    pub use smartpos_txn::model::{
        PendingItem, PendingKind, ReversalReason, TxnKind, TxnRecord, TxnState,
    };
}

/// The app's card transports, card readers and PIN entry.
pub mod card {
    pub use crate::card::{
        ApduTransport, CardError, CardFuture, CardReader, CardSource, PinEntry, PinInput,
        TransportError,
    };
}

/// The mPOS Bluetooth card reader link.
pub mod reader {
    pub use crate::reader::{ChunkSender, LinkConfig, ReaderError, ReaderLink, ReaderTransport};
}

/// Print jobs, the printer's status and the receipt settings.
pub mod printing {
    pub use crate::printing::{PrintJob, PrinterStatus, ReceiptSettings};
}

/// Receipt layout values.
pub mod receipt {
    pub use smartpos_receipt::{Lang, MerchantInfo, ReceiptCopy, Width};
}

/// Operators, sessions, the refund policy and its quotes, supervisor unlock codes.
pub mod operators {
    pub use crate::safety::denial_json;
    pub use smartpos_operators::policy::{Denial, Fee, RefundPolicy, RefundQuote, Rule};
    pub use smartpos_operators::{
        LoginResult, OperatorConfig, OperatorError, Password, Role, Session, unlock_code,
    };
}

/// What the cashier reads about an outcome or an error (`smartpos-diagnosis`).
pub mod diagnosis {
    pub use crate::safety::outcome_diagnosis;
    pub use smartpos_diagnosis::{
        Category, Diagnosis, MoneyState, Retry, Text, for_op_error, for_response_code,
        software_fault,
    };
}

/// The security module, PINs and key references (`smartpos-crypto`).
pub mod security {
    pub use smartpos_crypto::keys::TdesKey;
    pub use smartpos_crypto::module::{
        DataMode, DukptKsn, KeyAlgorithm, KeyDelivery, KeyRef, KeyRole, MacDirection, MacMethod,
        ModuleError, ModuleKind, PinRequest, PinSource, WrappedKey,
    };
    pub use smartpos_crypto::{Pin, PinBlockFormat, SecurityModule, SoftwareModule};
}

/// EMV terminal parameters: AIDs, limits, CA public keys.
pub mod params {
    pub use smartpos_txn::params::{AidParams, CaPublicKey, TerminalParams};
}

/// The certified-kernel bridge: the device's own EMV kernel reads the card.
pub mod emv {
    pub use smartpos_emv::certified::{
        CardDecision, CardRefusal, CertifiedKernel, EntryMode, HostAnswer, KernelBridgeError,
        KernelCard, KernelRequest, Verification,
    };
    pub use smartpos_emv::kernel::{CryptogramType, IccData};
}

/// The app's secure store and the keys kept in it.
pub mod store {
    pub use crate::dukpt_store::load_initial_key;
    pub use crate::store::{
        SecureStore, TLS_CLIENT_KEY, load_journal_key, load_keys, load_module_for,
    };
}
