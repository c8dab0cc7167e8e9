//! Every record and enum that crosses the FFI, and the one place where core types become them
//! (and Kotlin input becomes core types).
//!
//! The certified-kernel bridge's records (`KernelRequest`, `KernelCard`, ...) live with their
//! conversions in `certified.rs`.
//!
//! Records hold no clear card data: a PAN appears only masked (`pan_masked`), and pending
//! messages cross as metadata without their bytes.

use crate::card::CardInput;
use crate::certified::EntryMode;
use crate::error::SmartPosError;
use smartpos_diagnosis as diagnosis;
use smartpos_emv::certified::{self as core_certified, KernelBridgeError};
use smartpos_emv::kernel::CryptogramType as CoreCryptogram;
use smartpos_operators::policy::{self, Denial};
use smartpos_operators::{self as operators, Role, Session};
use smartpos_receipt as receipt;
use smartpos_terminal::card::CardError;
use smartpos_terminal::link::{LinkConfig, TlsClientConfig};
use smartpos_terminal::printing;
use smartpos_terminal::safety::denial_json;
use smartpos_terminal::{TerminalError, TxnOutcome};
use smartpos_txn::engine::{Event, OpError, Outcome};
use smartpos_txn::model::{self, PendingKind};
use smartpos_txn::proto::{MsgType, Reply};
use std::sync::Arc;
use std::time::Duration;

/// Terminal settings (no secrets: the TMK comes from the [`crate::SecureStore`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TerminalConfig {
    /// Terminal id (field 41), 8 characters.
    pub tid: String,
    /// Merchant id (field 42), 15 characters.
    pub mid: String,
    /// Host address `host:port`.
    pub host: String,
    /// Built-in host profile: `cup` or `iso87b`.
    #[uniffi(default = "cup")]
    pub dialect: String,
    /// ISO 4217 numeric currency, e.g. `156` (CNY).
    #[uniffi(default = "156")]
    pub currency: String,
    /// TLS settings; `None` is plain TCP.
    #[uniffi(default = None)]
    pub tls: Option<TlsConfig>,
    /// Limit for TCP connect plus TLS handshake, milliseconds.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
    /// How long to wait for an answer before reversing, milliseconds.
    #[uniffi(default = 30000)]
    pub response_timeout_ms: u64,
    /// Offset of the terminal's local time from UTC, minutes (fields 12/13).
    #[uniffi(default = 0)]
    pub utc_offset_minutes: i32,
    /// An acquirer profile (TOML text, `docs/profiles.md`) used instead of the built-in
    /// `dialect`: message layout, MAC, and the key options (working keys or DUKPT, SM4, PIN
    /// block format). `None`: the built-in profile named by `dialect`.
    #[uniffi(default = None)]
    pub profile_toml: Option<String>,
}

/// TLS settings of the host link.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct TlsConfig {
    /// PEM `CERTIFICATE` blocks of the roots to trust.
    pub ca_pem: String,
    /// Name the host certificate must carry (DNS name or IP literal).
    pub server_name: String,
    /// Optional pin: hex SHA-256 of the leaf certificate's DER (64 hex digits).
    #[uniffi(default = None)]
    pub pin_sha256_hex: Option<String>,
    /// Mutual TLS: the terminal's client certificate chain, PEM (leaf first) or one DER
    /// certificate, presented when the host asks for one. `None`: no client certificate.
    #[uniffi(default = None)]
    pub client_certificate: Option<Vec<u8>>,
    /// The client certificate's private key, PEM or DER (PKCS#8, SEC1 or PKCS#1; ECDSA
    /// P-256/P-384 or RSA). `None` with a `client_certificate`: read from the `SecureStore`
    /// as `tls_client_key` when the terminal opens. Kept zeroized inside Rust afterwards.
    #[uniffi(default = None)]
    pub client_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem_len", &self.ca_pem.len())
            .field("server_name", &self.server_name)
            .field("pin_sha256_hex", &self.pin_sha256_hex)
            .field(
                "client_certificate_len",
                &self.client_certificate.as_ref().map(Vec::len),
            )
            .field(
                "client_key",
                &self.client_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A sale, pre-authorisation or balance inquiry.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SaleRequest {
    /// Amount in minor units (fen / cents); ignored for a balance inquiry.
    pub amount: u64,
    /// The app's key for this payment (e.g. the order id): the same key returns the recorded
    /// outcome, never a second charge.
    #[uniffi(default = None)]
    pub idempotency_key: Option<String>,
    /// Operator code.
    #[uniffi(default = None)]
    pub operator: Option<String>,
    /// The card; `None` asks the terminal's `CardReader`.
    #[uniffi(default = None)]
    pub card: Option<Arc<CardInput>>,
}

/// A command on an earlier transaction (void, pre-auth cancel).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReferenceRequest {
    /// The original's reference.
    pub reference: String,
    /// The app's key for this command.
    #[uniffi(default = None)]
    pub idempotency_key: Option<String>,
    /// Operator code.
    #[uniffi(default = None)]
    pub operator: Option<String>,
}

/// A command with an amount on an earlier transaction (refund, pre-auth completion).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AmountRequest {
    /// The original's reference.
    pub reference: String,
    /// Amount in minor units.
    pub amount: u64,
    /// The app's key for this command.
    #[uniffi(default = None)]
    pub idempotency_key: Option<String>,
    /// Operator code.
    #[uniffi(default = None)]
    pub operator: Option<String>,
}

/// What kind of transaction a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TxnKind {
    /// Purchase.
    Sale,
    /// Void of a sale in the open batch.
    Void,
    /// Refund of an earlier sale (store-and-forward advice).
    Refund,
    /// Pre-authorisation.
    PreAuth,
    /// Pre-authorisation completion.
    Completion,
    /// Pre-authorisation cancellation.
    PreAuthCancel,
    /// Balance inquiry.
    Balance,
    /// A kind this version of the bindings does not know.
    Unknown,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TxnState {
    /// Intent recorded; the request may be on the wire.
    Sending,
    /// Approved by the host.
    Approved,
    /// Declined by the host.
    Declined,
    /// Outcome ambiguous; a reversal is pending until the host acknowledges it.
    Reversing,
    /// The host acknowledged the reversal: no money moved.
    Reversed,
    /// Voided or cancelled later.
    Voided,
    /// A refund recorded and queued for store-and-forward.
    Queued,
    /// Never left the terminal: nothing happened at the host.
    NotSent,
    /// A reversal the host kept refusing, ended by the supervisor after settling it with the
    /// acquirer by phone (`resolveReversal`): no money moved.
    ReversalResolved,
    /// A state this version of the bindings does not know.
    Unknown,
}

/// One journaled transaction.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxnRecord {
    /// `BBBBBBSSSSSS`: batch and STAN.
    pub reference: String,
    /// Kind.
    pub kind: TxnKind,
    /// State.
    pub state: TxnState,
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: String,
    /// STAN (field 11).
    pub stan: u32,
    /// Batch number.
    pub batch: u32,
    /// Local time sent (`hhmmss`).
    pub local_time: String,
    /// Local date sent (`MMDD`).
    pub local_date: String,
    /// RRN from the host.
    pub rrn: Option<String>,
    /// Authorisation code from the host.
    pub auth_code: Option<String>,
    /// Host response code.
    pub response_code: Option<String>,
    /// Reference of the original (void, refund, completion, cancel).
    pub original_ref: Option<String>,
    /// App-supplied idempotency key.
    pub idempotency_key: Option<String>,
    /// Operator.
    pub operator: Option<String>,
    /// PAN masked to first 6 / last 4.
    pub pan_masked: Option<String>,
    /// POS entry mode (field 22).
    pub entry_mode: Option<String>,
    /// Unix ms when the intent was recorded.
    pub created_at_ms: i64,
    /// Unix ms of the last state change.
    pub updated_at_ms: i64,
}

/// The useful part of the host's answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HostReply {
    /// Field 39.
    pub response_code: String,
    /// Field 37.
    pub rrn: Option<String>,
    /// Field 38.
    pub auth_code: Option<String>,
    /// Field 54 (balances), as sent.
    pub balance: Option<String>,
    /// Field 44 (host message).
    pub additional: Option<String>,
}

/// The result of a financial command. A decline is a result, not an exception.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxnResult {
    /// The transaction as journaled.
    pub record: TxnRecord,
    /// The host's answer, when there was one in this call.
    pub reply: Option<HostReply>,
    /// A reversal for it still waits for the host: money may be held.
    pub reversal_pending: bool,
    /// Recorded earlier under the same idempotency key; nothing was sent.
    pub replayed: bool,
    /// What to tell the cashier when it was not approved (when the core can say).
    pub diagnosis: Option<Diagnosis>,
    /// How the card was presented (from the record's field 22 entry mode); `None` for a
    /// transaction without a card entry mode the SDK knows.
    pub entry_mode: Option<EntryMode>,
    /// The chip application's AID (hex) for a chip or contactless card; `None` otherwise and
    /// for a replayed outcome.
    pub aid: Option<String>,
    /// The TC (hex, 9F26) when an inserted card accepted at its final decision; `None`
    /// otherwise and for a replayed outcome.
    pub tc: Option<String>,
    /// An inserted card declined (AAC) after the host approved: the approval was reversed
    /// (`record.state` is `Reversed`, or `Reversing` while the reversal waits for the host).
    pub declined_by_card: bool,
}

/// Which acceptance rule refused a card (the core's `CardRefusal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CardRefusal {
    /// A chip card was swiped while its chip was not tried: insert it.
    ChipCardSwiped,
    /// The keyed card number fails its check digit: key it again.
    BadCheckDigit,
    /// The keyed expiry is not a valid `YYMM`.
    BadExpiry,
    /// The card was presented in a way this transaction does not allow.
    EntryNotAllowed,
    /// The kernel returned incomplete card data (a chip read without chip data, a swipe
    /// without track 2).
    Incomplete,
    /// A rule this version of the bindings does not name (see the reason).
    Other,
}

/// What the certified kernel reported when it gave no card (an abort is `Cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KernelFailure {
    /// The card was removed before the kernel finished.
    CardRemoved,
    /// No card was presented in time.
    Timeout,
    /// The card was not accepted (no matching application, blocked, chip unreadable).
    NotAccepted,
    /// The kernel failed (vendor error code in `kernel_code`), or threw an exception the app
    /// did not declare (`kernel_code` = `Int.MIN_VALUE`).
    Kernel,
}

/// A reversal or advice waiting for the host.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingItem {
    /// Delivery order.
    pub seq: u64,
    /// `reversal` or `advice`.
    pub kind: String,
    /// The transaction it belongs to.
    pub reference: String,
    /// Reversal reason code (`98`, `A0`, `96`, `06`).
    pub reason_code: Option<String>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Whether it will be sent before the next financial message.
    pub armed: bool,
}

/// Result of `recover()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RecoverResult {
    /// Items the host acknowledged.
    pub delivered: u32,
    /// Items still waiting (host unreachable).
    pub remaining: u32,
}

/// Result of `settle()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SettleResult {
    /// The settled batch.
    pub batch: u32,
    /// Whether the host's totals matched at once.
    pub balanced: bool,
    /// Records uploaded because the totals did not match.
    pub uploaded: u32,
    /// Sales and completions counted.
    pub debit_count: u32,
    /// Their amount.
    pub debit_amount: u64,
    /// Refunds counted.
    pub credit_count: u32,
    /// Their amount.
    pub credit_amount: u64,
}

/// Something that happened during a command, for the app's screens. Delivered on the
/// terminal's own threads (tokio workers named `smartpos-terminal`), not the caller's.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TerminalEvent {
    /// The terminal waits for the app's `CardReader` (show "present card").
    WaitingForCard {
        /// Amount in minor units.
        amount: u64,
    },
    /// The card was read.
    CardRead {
        /// PAN masked to first 6 / last 4, when known.
        pan_masked: Option<String>,
        /// POS entry mode.
        entry_mode: String,
    },
    /// A message is about to be sent (show "processing").
    Sending {
        /// What: `sign_in`, `sale`, `reversal`, `settlement`, ...
        message: String,
        /// Its MTI, e.g. `0200`.
        mti: String,
        /// The transaction it belongs to.
        reference: Option<String>,
    },
    /// A reversal was sent.
    ReversalSent {
        /// The reversed transaction.
        reference: String,
        /// Reason code (`98`, `A0`, `96`, `06`).
        reason_code: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A pending reversal or advice was acknowledged.
    PendingDelivered {
        /// The transaction.
        reference: String,
        /// `reversal` or `advice`.
        kind: String,
    },
    /// A frame that did not belong to the request in flight was ignored.
    Ignored {
        /// Why.
        why: String,
    },
    /// An event this version of the bindings does not know (masked description).
    Other {
        /// Masked description.
        description: String,
    },
}

/// What went wrong, for the cashier, in Chinese and English, with what happened to the money.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Diagnosis {
    /// Stable machine id, e.g. `host.insufficient_funds`.
    pub code: String,
    /// Whose fault: `network`, `card`, `host`, ...
    pub category: String,
    /// What happened to the money: `not_moved`, `moved`, `in_doubt_reversing`, ...
    pub money: String,
    /// Whether trying again helps: `yes`, `no`, `after_fix`, `later`.
    pub retry: String,
    /// A few words, Chinese.
    pub title_zh: String,
    /// A few words, English.
    pub title_en: String,
    /// One or two sentences, Chinese.
    pub explanation_zh: String,
    /// One or two sentences, English.
    pub explanation_en: String,
    /// What to do, in order, Chinese.
    pub next_steps_zh: Vec<String>,
    /// What to do, in order, English.
    pub next_steps_en: Vec<String>,
    /// Host response code it came from, if any.
    pub host_code: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Kotlin input → core.

impl TerminalConfig {
    /// The profile: [`TerminalConfig::profile_toml`] loaded and checked, or the built-in one
    /// of `dialect`.
    pub(crate) fn profile(&self) -> Result<smartpos_txn::proto::Profile, SmartPosError> {
        use smartpos_txn::proto::Profile;
        match &self.profile_toml {
            Some(text) => {
                Profile::from_toml(text).map_err(|e| SmartPosError::config(format!("profile: {e}")))
            }
            None => Profile::by_name(&self.dialect).ok_or_else(|| {
                SmartPosError::config(format!("unknown dialect {:?}", self.dialect))
            }),
        }
    }

    /// The core configuration, with the client certificate's key taken from `store` when the
    /// record names a certificate without its key.
    pub(crate) fn to_core_with(
        &self,
        store: &dyn smartpos_terminal::store::SecureStore,
    ) -> Result<smartpos_terminal::TerminalConfig, SmartPosError> {
        let mut cfg = self.to_core()?;
        let Some(t) = &self.tls else {
            return Ok(cfg);
        };
        let Some(chain) = &t.client_certificate else {
            if t.client_key.is_some() {
                return Err(SmartPosError::config(
                    "tls.client_key without tls.client_certificate",
                ));
            }
            return Ok(cfg);
        };
        let key = match &t.client_key {
            Some(k) => zeroize::Zeroizing::new(k.clone()),
            None => store
                .get(smartpos_terminal::store::TLS_CLIENT_KEY)
                .map_err(SmartPosError::config)?
                .ok_or_else(|| {
                    SmartPosError::config(format!(
                        "tls.client_certificate without tls.client_key, and no {} in the SecureStore",
                        smartpos_terminal::store::TLS_CLIENT_KEY
                    ))
                })?,
        };
        let identity = smartpos_terminal::link::ClientIdentity::new(chain, &key)
            .map_err(|e| SmartPosError::config(format!("tls: {e}")))?;
        if let Some(tls) = cfg.link.tls.as_mut() {
            tls.client_identity = Some(identity);
        }
        Ok(cfg)
    }

    /// The core configuration (without a client certificate: see [`TerminalConfig::to_core_with`]).
    pub(crate) fn to_core(&self) -> Result<smartpos_terminal::TerminalConfig, SmartPosError> {
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                let mut c = TlsClientConfig::new(t.ca_pem.as_bytes(), t.server_name.clone());
                if let Some(pin) = &t.pin_sha256_hex {
                    c.pin_sha256 = Some(
                        smartpos_types::hex::decode_array(pin)
                            .map_err(|_| SmartPosError::config("pin must be 64 hex digits"))?,
                    );
                }
                Some(c)
            }
        };
        Ok(smartpos_terminal::TerminalConfig {
            tid: self.tid.clone(),
            mid: self.mid.clone(),
            currency: self.currency.clone(),
            dialect: self.dialect.clone(),
            link: LinkConfig {
                host: self.host.clone(),
                tls,
                connect_timeout: Duration::from_millis(self.connect_timeout_ms),
                response_timeout: Duration::from_millis(self.response_timeout_ms),
            },
            utc_offset_minutes: self.utc_offset_minutes,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Core → Kotlin.

impl From<model::TxnKind> for TxnKind {
    fn from(k: model::TxnKind) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match k {
            model::TxnKind::Sale => TxnKind::Sale,
            model::TxnKind::Void => TxnKind::Void,
            model::TxnKind::Refund => TxnKind::Refund,
            model::TxnKind::PreAuth => TxnKind::PreAuth,
            model::TxnKind::Completion => TxnKind::Completion,
            model::TxnKind::PreAuthCancel => TxnKind::PreAuthCancel,
            model::TxnKind::Balance => TxnKind::Balance,
            _ => TxnKind::Unknown,
        }
    }
}

impl From<model::TxnState> for TxnState {
    fn from(s: model::TxnState) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match s {
            model::TxnState::Sending => TxnState::Sending,
            model::TxnState::Approved => TxnState::Approved,
            model::TxnState::Declined => TxnState::Declined,
            model::TxnState::Reversing => TxnState::Reversing,
            model::TxnState::Reversed => TxnState::Reversed,
            model::TxnState::Voided => TxnState::Voided,
            model::TxnState::Queued => TxnState::Queued,
            model::TxnState::NotSent => TxnState::NotSent,
            model::TxnState::ReversalResolved => TxnState::ReversalResolved,
            _ => TxnState::Unknown,
        }
    }
}

impl From<model::TxnRecord> for TxnRecord {
    fn from(r: model::TxnRecord) -> Self {
        TxnRecord {
            reference: r.reference,
            kind: r.kind.into(),
            state: r.state.into(),
            amount: r.amount,
            currency: r.currency,
            stan: r.stan,
            batch: r.batch,
            local_time: r.local_time,
            local_date: r.local_date,
            rrn: r.rrn,
            auth_code: r.auth_code,
            response_code: r.response_code,
            original_ref: r.original_ref,
            idempotency_key: r.idempotency_key,
            operator: r.operator,
            pan_masked: r.pan_masked,
            entry_mode: r.entry_mode,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

impl From<Reply> for HostReply {
    fn from(r: Reply) -> Self {
        HostReply {
            response_code: r.response_code,
            rrn: r.rrn,
            auth_code: r.auth_code,
            balance: r.balance,
            additional: r.additional,
        }
    }
}

impl From<TxnOutcome> for TxnResult {
    fn from(o: TxnOutcome) -> Self {
        let diagnosis = diagnose_outcome(&o);
        let entry_mode = EntryMode::of_field22(o.record.entry_mode.as_deref());
        let card = o.card.as_ref();
        let aid = card.map(|c| c.info.aid.clone()).filter(|a| !a.is_empty());
        let tc = card
            .filter(|c| c.info.cryptogram_type == CoreCryptogram::Tc.as_str())
            .map(|c| c.info.cryptogram.clone());
        TxnResult {
            record: o.record.into(),
            reply: o.reply.map(HostReply::from),
            reversal_pending: o.reversal_pending,
            replayed: o.replayed,
            diagnosis,
            entry_mode,
            aid,
            tc,
            declined_by_card: card.is_some_and(|c| c.declined_by_card),
        }
    }
}

impl From<&model::PendingItem> for PendingItem {
    fn from(p: &model::PendingItem) -> Self {
        PendingItem {
            seq: p.seq,
            kind: pending_kind(p.kind).to_owned(),
            reference: p.reference.clone(),
            reason_code: p.reason.map(|r| r.code().to_owned()),
            attempts: p.attempts,
            armed: p.armed,
        }
    }
}

fn pending_kind(k: PendingKind) -> &'static str {
    k.as_str()
}

/// The settlement result, or an error when the core answered something else.
pub(crate) fn settle_result(o: Outcome) -> Result<SettleResult, SmartPosError> {
    match o {
        Outcome::Settled {
            batch,
            balanced,
            totals,
            uploaded,
        } => Ok(SettleResult {
            batch,
            balanced,
            uploaded,
            debit_count: totals.debit_count,
            debit_amount: totals.debit_amount,
            credit_count: totals.credit_count,
            credit_amount: totals.credit_amount,
        }),
        other => Err(SmartPosError::internal(format!(
            "settlement ended with {}",
            outcome_name(&other)
        ))),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    #[allow(unreachable_patterns)] // Outcome is non_exhaustive
    match o {
        Outcome::Txn { .. } => "a transaction outcome",
        Outcome::SignedIn { .. } => "a sign-in",
        Outcome::Acknowledged => "an acknowledgement",
        Outcome::Recovered { .. } => "a recovery",
        Outcome::Settled { .. } => "a settlement",
        _ => "another outcome",
    }
}

fn msg_name(m: MsgType) -> String {
    #[allow(unreachable_patterns)] // MsgType is non_exhaustive
    match m {
        MsgType::SignIn => "sign_in".into(),
        MsgType::SignOff => "sign_off".into(),
        MsgType::Echo => "echo".into(),
        MsgType::Txn(k) => k.as_str().into(),
        MsgType::Reversal => "reversal".into(),
        MsgType::Settlement => "settlement".into(),
        MsgType::BatchUpload => "batch_upload".into(),
        MsgType::EndOfBatch => "end_of_batch".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl From<&Event> for TerminalEvent {
    fn from(e: &Event) -> Self {
        #[allow(unreachable_patterns)] // Event is non_exhaustive
        match e {
            Event::Sending {
                msg,
                mti,
                reference,
            } => TerminalEvent::Sending {
                message: msg_name(*msg),
                mti: mti.to_string(),
                reference: reference.clone(),
            },
            Event::ReversalSent {
                reference,
                reason,
                attempt,
            } => TerminalEvent::ReversalSent {
                reference: reference.clone(),
                reason_code: reason.code().to_owned(),
                attempt: *attempt,
            },
            Event::PendingDelivered { reference, kind } => TerminalEvent::PendingDelivered {
                reference: reference.clone(),
                kind: pending_kind(*kind).to_owned(),
            },
            Event::Ignored { why } => TerminalEvent::Ignored {
                why: (*why).to_owned(),
            },
            Event::WaitingForCard { amount } => TerminalEvent::WaitingForCard { amount: *amount },
            Event::CardRead {
                pan_masked,
                entry_mode,
            } => TerminalEvent::CardRead {
                pan_masked: Some(pan_masked.clone()),
                entry_mode: entry_mode.clone(),
            },
            // Debug output of core events is masked (no card data).
            other => TerminalEvent::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnosis (from `smartpos_diagnosis`: static tables in the core, copied out here).

impl From<diagnosis::Diagnosis> for Diagnosis {
    fn from(d: diagnosis::Diagnosis) -> Self {
        Diagnosis {
            code: d.code.to_owned(),
            category: d.category.as_str().to_owned(),
            money: d.money.as_str().to_owned(),
            retry: d.retry.as_str().to_owned(),
            title_zh: d.title.zh.to_owned(),
            title_en: d.title.en.to_owned(),
            explanation_zh: d.explanation.zh.to_owned(),
            explanation_en: d.explanation.en.to_owned(),
            next_steps_zh: d.next_steps.iter().map(|t| t.zh.to_owned()).collect(),
            next_steps_en: d.next_steps.iter().map(|t| t.en.to_owned()).collect(),
            host_code: d.host_code,
        }
    }
}

/// What to tell the cashier about a not-approved outcome: the core's diagnosis of the whole
/// outcome (a card that declined after the host approved has its own, not the plain
/// "reversed").
pub(crate) fn diagnose_outcome(o: &TxnOutcome) -> Option<Diagnosis> {
    smartpos_terminal::safety::outcome_diagnosis(o).map(Diagnosis::from)
}

/// What to tell the cashier about an engine error.
pub(crate) fn diagnose_op(err: &OpError) -> Option<Diagnosis> {
    Some(diagnosis::for_op_error(err).into())
}

fn core_kind(k: TxnKind) -> model::TxnKind {
    match k {
        TxnKind::Sale | TxnKind::Unknown => model::TxnKind::Sale,
        TxnKind::Void => model::TxnKind::Void,
        TxnKind::Refund => model::TxnKind::Refund,
        TxnKind::PreAuth => model::TxnKind::PreAuth,
        TxnKind::Completion => model::TxnKind::Completion,
        TxnKind::PreAuthCancel => model::TxnKind::PreAuthCancel,
        TxnKind::Balance => model::TxnKind::Balance,
    }
}

/// The diagnosis of a host response code (field 39) for a transaction kind, e.g. to explain a
/// code shown on an old receipt. Unknown codes give `host.unknown_code_reversed` (the kinds the
/// engine reverses on them) or `host.unknown_code`.
#[uniffi::export]
pub fn diagnose_response_code(code: String, kind: TxnKind) -> Diagnosis {
    crate::stats::call();
    diagnosis::for_response_code(&code, core_kind(kind)).into()
}

// ---------------------------------------------------------------------------------------------
// Operators and refund safety.

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OperatorRole {
    /// Supervisor (`00`): manages cashiers, approves refunds.
    Supervisor,
    /// Cashier (`01`-`99`).
    Cashier,
}

/// The logged-in operator.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OperatorSession {
    /// Operator id, `00`-`99`.
    pub operator: String,
    /// Role.
    pub role: OperatorRole,
    /// Unix ms of the login.
    pub since_ms: i64,
}

/// What a correct password leads to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LoginResult {
    /// Logged in.
    LoggedIn {
        /// The session.
        session: OperatorSession,
    },
    /// The password is right but is the default one: call `changePassword`, which logs in.
    MustChangePassword {
        /// Operator id.
        operator: String,
    },
}

/// One refund-policy rule that denies a refund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundDenial {
    /// Stable rule code, e.g. `policy.exceeds_remainder`.
    pub rule: String,
    /// The rule with its numbers, as JSON (e.g. `{"exceeds_remainder":{"remainder":1000}}`).
    pub detail_json: String,
    /// What to tell the cashier.
    pub diagnosis: Diagnosis,
}

/// What may be refunded on an original right now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundQuote {
    /// Original minus fee minus refunds so far.
    pub refundable_remainder: u64,
    /// Non-refundable fee withheld on this original.
    pub fee: u64,
    /// Every rule that denies refunding the whole remainder (empty: it may be refunded).
    pub denials: Vec<RefundDenial>,
    /// Whether a supervisor must approve refunding the whole remainder.
    pub needs_supervisor: bool,
    /// The largest amount that passes the amount limits now (0 when another rule denies).
    pub max_amount_now: u64,
    /// The card must be read and compared before the refund.
    pub needs_same_card: bool,
}

impl From<Role> for OperatorRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Supervisor => OperatorRole::Supervisor,
            Role::Cashier => OperatorRole::Cashier,
        }
    }
}

impl From<Session> for OperatorSession {
    fn from(s: Session) -> Self {
        OperatorSession {
            operator: s.operator,
            role: s.role.into(),
            since_ms: s.since_ms,
        }
    }
}

impl From<operators::LoginResult> for LoginResult {
    fn from(r: operators::LoginResult) -> Self {
        match r {
            operators::LoginResult::LoggedIn(s) => LoginResult::LoggedIn { session: s.into() },
            operators::LoginResult::MustChangePassword { operator } => {
                LoginResult::MustChangePassword { operator }
            }
        }
    }
}

impl From<&Denial> for RefundDenial {
    fn from(d: &Denial) -> Self {
        RefundDenial {
            rule: d.rule.code().to_owned(),
            detail_json: denial_json(d)["rule"].to_string(),
            diagnosis: d.diagnosis.clone().into(),
        }
    }
}

impl From<policy::RefundQuote> for RefundQuote {
    fn from(q: policy::RefundQuote) -> Self {
        RefundQuote {
            refundable_remainder: q.refundable_remainder,
            fee: q.fee,
            denials: q.denials.iter().map(RefundDenial::from).collect(),
            needs_supervisor: q.needs_supervisor,
            max_amount_now: q.max_amount_now,
            needs_same_card: q.needs_same_card,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts.

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

// ---------------------------------------------------------------------------------------------
// Settings: operator and refund safety, receipt layout.

/// A non-refundable fee withheld once per original (mirrors `smartpos_operators::policy::Fee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RefundFee {
    /// A fixed amount in minor units (never more than the original).
    Fixed {
        /// Minor units.
        amount: u64,
    },
    /// A share of the original in basis points (150 = 1.5 %), rounded half up; at most 10 000.
    Percent {
        /// Basis points, 0-10 000.
        basis_points: u32,
    },
}

/// The refund policy of a store (mirrors `smartpos_operators::policy::RefundPolicy`). Amounts are
/// in minor units; `null` means "no limit".
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundPolicy {
    /// An original older than this many whole days cannot be refunded.
    #[uniffi(default = 30)]
    pub max_days_since_original: u32,
    /// Largest single refund.
    #[uniffi(default = None)]
    pub max_single_refund: Option<u64>,
    /// Largest total refunded per terminal per (local) day.
    #[uniffi(default = None)]
    pub daily_total_per_terminal: Option<u64>,
    /// Largest total refunded per operator per (local) day.
    #[uniffi(default = None)]
    pub daily_total_per_operator: Option<u64>,
    /// Refunds above this amount need the supervisor (logged in, or the supervisor password
    /// passed to `refund`); `0` means every refund does, `null` never asks.
    #[uniffi(default = None)]
    pub supervisor_approval_above: Option<u64>,
    /// The refund must go to the card that paid.
    #[uniffi(default = false)]
    pub same_card_required: bool,
    /// A non-refundable fee withheld once per original.
    #[uniffi(default = None)]
    pub fee: Option<RefundFee>,
}

/// Password hashing and lockout settings. Read-only through the bindings: `setSafetySettings`
/// refuses a record whose values differ from the terminal's (the iteration count is bound to
/// every stored password hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct OperatorSettings {
    /// PBKDF2-HMAC-SHA256 iterations of the stored password hashes.
    pub pbkdf2_iterations: u32,
    /// Wrong passwords in a row before an operator is locked.
    pub max_failed_attempts: u32,
    /// How long a supervisor unlock challenge stays valid, milliseconds.
    pub unlock_challenge_ttl_ms: i64,
}

/// Operator and refund settings of a terminal (mirrors `smartpos_terminal::SafetySettings`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetySettings {
    /// Whether financial commands need a logged-in operator. While it is on, only the
    /// supervisor may change these settings.
    pub require_login: bool,
    /// The refund policy.
    pub refund_policy: RefundPolicy,
    /// Hashing and lockout (read-only, see [`OperatorSettings`]).
    pub operators: OperatorSettings,
}

impl From<policy::Fee> for RefundFee {
    fn from(f: policy::Fee) -> Self {
        match f {
            policy::Fee::Fixed(amount) => RefundFee::Fixed { amount },
            policy::Fee::Percent { basis_points } => RefundFee::Percent { basis_points },
        }
    }
}

impl TryFrom<RefundFee> for policy::Fee {
    type Error = SmartPosError;

    fn try_from(f: RefundFee) -> Result<Self, SmartPosError> {
        Ok(match f {
            RefundFee::Fixed { amount } => policy::Fee::Fixed(amount),
            RefundFee::Percent { basis_points } if basis_points <= 10_000 => {
                policy::Fee::Percent { basis_points }
            }
            RefundFee::Percent { basis_points } => {
                return Err(SmartPosError::config(format!(
                    "refund_policy.fee.basis_points: {basis_points} is above 10000 (100 %)"
                )));
            }
        })
    }
}

impl From<&policy::RefundPolicy> for RefundPolicy {
    fn from(p: &policy::RefundPolicy) -> Self {
        RefundPolicy {
            max_days_since_original: p.max_days_since_original,
            max_single_refund: p.max_single_refund,
            daily_total_per_terminal: p.daily_total_per_terminal,
            daily_total_per_operator: p.daily_total_per_operator,
            supervisor_approval_above: p.supervisor_approval_above,
            same_card_required: p.same_card_required,
            fee: p.fee.map(RefundFee::from),
        }
    }
}

impl TryFrom<RefundPolicy> for policy::RefundPolicy {
    type Error = SmartPosError;

    fn try_from(p: RefundPolicy) -> Result<Self, SmartPosError> {
        Ok(policy::RefundPolicy {
            max_days_since_original: p.max_days_since_original,
            max_single_refund: p.max_single_refund,
            daily_total_per_terminal: p.daily_total_per_terminal,
            daily_total_per_operator: p.daily_total_per_operator,
            supervisor_approval_above: p.supervisor_approval_above,
            same_card_required: p.same_card_required,
            fee: p.fee.map(policy::Fee::try_from).transpose()?,
        })
    }
}

impl From<&operators::OperatorConfig> for OperatorSettings {
    fn from(c: &operators::OperatorConfig) -> Self {
        OperatorSettings {
            pbkdf2_iterations: c.iterations,
            max_failed_attempts: c.max_failed_attempts,
            unlock_challenge_ttl_ms: c.unlock_challenge_ttl_ms,
        }
    }
}

impl From<&smartpos_terminal::safety::SafetySettings> for SafetySettings {
    fn from(s: &smartpos_terminal::safety::SafetySettings) -> Self {
        SafetySettings {
            require_login: s.require_login,
            refund_policy: (&s.refund_policy).into(),
            operators: (&s.operators).into(),
        }
    }
}

/// The core settings for `new`, checked against the terminal's `current` ones: the refund
/// policy is validated and the read-only operator settings must be unchanged.
pub(crate) fn safety_settings_in(
    new: SafetySettings,
    current: &smartpos_terminal::safety::SafetySettings,
) -> Result<smartpos_terminal::safety::SafetySettings, SmartPosError> {
    let now = OperatorSettings::from(&current.operators);
    let read_only = [
        (
            "pbkdf2_iterations",
            new.operators.pbkdf2_iterations != now.pbkdf2_iterations,
        ),
        (
            "max_failed_attempts",
            new.operators.max_failed_attempts != now.max_failed_attempts,
        ),
        (
            "unlock_challenge_ttl_ms",
            new.operators.unlock_challenge_ttl_ms != now.unlock_challenge_ttl_ms,
        ),
    ];
    if let Some((field, _)) = read_only.iter().find(|(_, changed)| *changed) {
        return Err(SmartPosError::config(format!(
            "operators.{field} is read-only through the bindings (pass the value from safetySettings())"
        )));
    }
    Ok(smartpos_terminal::safety::SafetySettings {
        require_login: new.require_login,
        refund_policy: new.refund_policy.try_into()?,
        operators: current.operators,
    })
}

/// Longest merchant name accepted for receipts, in characters.
pub const MERCHANT_NAME_MAX_CHARS: usize = 40;

/// How receipts are laid out: who the merchant is, the paper and the label language.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptSettings {
    /// Merchant name as printed (often Chinese), up to 40 characters, no control characters;
    /// empty (the default): the receipt prints no name line.
    pub merchant_name: String,
    /// Merchant id as printed (field 42): 15 printable ASCII characters.
    pub merchant_id: String,
    /// Terminal id as printed (field 41): 8 printable ASCII characters.
    pub terminal_id: String,
    /// Paper width (32 or 48 columns).
    pub width: ReceiptWidth,
    /// Label language: `zh` (Chinese with English in brackets) or `en`.
    pub language: String,
}

impl From<receipt::Width> for ReceiptWidth {
    fn from(w: receipt::Width) -> Self {
        match w {
            receipt::Width::W32 => ReceiptWidth::W32,
            receipt::Width::W48 => ReceiptWidth::W48,
        }
    }
}

impl From<&printing::ReceiptSettings> for ReceiptSettings {
    fn from(s: &printing::ReceiptSettings) -> Self {
        ReceiptSettings {
            merchant_name: s.merchant.name.clone(),
            merchant_id: s.merchant.merchant_id.clone(),
            terminal_id: s.merchant.terminal_id.clone(),
            width: s.width.into(),
            language: s.lang.code().to_owned(),
        }
    }
}

/// Checks an id printed on the receipt: exactly `len` printable ASCII characters.
fn printed_id(field: &str, value: String, len: usize) -> Result<String, SmartPosError> {
    if value.len() == len && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Ok(value)
    } else {
        Err(SmartPosError::config(format!(
            "receipt.{field}: must be {len} printable ASCII characters"
        )))
    }
}

impl TryFrom<ReceiptSettings> for printing::ReceiptSettings {
    type Error = SmartPosError;

    fn try_from(s: ReceiptSettings) -> Result<Self, SmartPosError> {
        let chars = s.merchant_name.chars().count();
        // Empty: no name line (the default until the app sets one); blank text is a mistake.
        if chars > MERCHANT_NAME_MAX_CHARS || (chars > 0 && s.merchant_name.trim().is_empty()) {
            return Err(SmartPosError::config(format!(
                "receipt.merchant_name: empty or 1-{MERCHANT_NAME_MAX_CHARS} characters, not blank"
            )));
        }
        if s.merchant_name.chars().any(char::is_control) {
            return Err(SmartPosError::config(
                "receipt.merchant_name: control characters are not allowed",
            ));
        }
        let lang = receipt::Lang::from_code(&s.language)
            .ok_or_else(|| SmartPosError::config("receipt.language: must be \"zh\" or \"en\""))?;
        Ok(printing::ReceiptSettings {
            merchant: receipt::MerchantInfo {
                name: s.merchant_name,
                merchant_id: printed_id("merchant_id", s.merchant_id, 15)?,
                terminal_id: printed_id("terminal_id", s.terminal_id, 8)?,
            },
            width: s.width.into(),
            lang,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

impl From<OpError> for SmartPosError {
    fn from(e: OpError) -> Self {
        let diagnosis = diagnose_op(&e);
        let reason = e.to_string();
        #[allow(unreachable_patterns)] // OpError is non_exhaustive
        match e {
            OpError::NotSignedIn => SmartPosError::NotSignedIn { reason, diagnosis },
            OpError::PendingUndelivered { count } => SmartPosError::PendingUndelivered {
                count,
                reason,
                diagnosis,
            },
            OpError::Rejected { .. } => SmartPosError::Rejected { reason, diagnosis },
            OpError::HostRefused { code } => SmartPosError::HostRefused {
                response_code: code,
                reason,
                diagnosis,
            },
            OpError::NoResponse | OpError::NotSent => {
                SmartPosError::HostUnreachable { reason, diagnosis }
            }
            OpError::KeyCheck | OpError::KeyBlock { .. } | OpError::SecurityModule { .. } => {
                SmartPosError::Security { reason, diagnosis }
            }
            // Busy cannot happen (one command at a time per terminal); Proto is a bug.
            _ => SmartPosError::internal(reason),
        }
    }
}

impl From<TerminalError> for SmartPosError {
    fn from(e: TerminalError) -> Self {
        #[allow(unreachable_patterns)] // TerminalError is non_exhaustive
        match e {
            TerminalError::Op(op) => op.into(),
            TerminalError::Security { ref cause, .. } => {
                // The command's own kind of error, with the diagnosis of why the terminal's
                // sign-in did not cure the keys (not "check the network").
                let diagnosis = Some(Diagnosis::from(e.diagnosis()));
                let reason = e.to_string();
                match cause {
                    OpError::PendingUndelivered { count } => SmartPosError::PendingUndelivered {
                        count: *count,
                        reason,
                        diagnosis,
                    },
                    _ => SmartPosError::Security { reason, diagnosis },
                }
            }
            TerminalError::Journal(_) => SmartPosError::Journal {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::Poisoned => SmartPosError::journal(e.to_string()),
            TerminalError::Config(reason) => SmartPosError::Config { reason },
            TerminalError::JournalMissing { .. }
            | TerminalError::JournalMismatch { .. }
            | TerminalError::JournalRolledBack { .. } => SmartPosError::JournalRefused {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::GuardStore { .. } => SmartPosError::Journal {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::NotFound { reference } => SmartPosError::NotFound { reference },
            TerminalError::IdempotencyConflict => SmartPosError::IdempotencyConflict {
                reason: e.to_string(),
            },
            TerminalError::Operator(_) => SmartPosError::OperatorRefused {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            TerminalError::RefundDenied { ref denials } => SmartPosError::RefundDenied {
                reason: e.to_string(),
                denials: denials.iter().map(RefundDenial::from).collect(),
            },
            TerminalError::Card(ref c) => card_error(&e, c),
            TerminalError::HostLink(_) => SmartPosError::HostUnreachable {
                reason: e.to_string(),
                diagnosis: Some(e.diagnosis().into()),
            },
            other => SmartPosError::internal(other.to_string()),
        }
    }
}

/// A card failure (nothing was sent), with the core's diagnosis of it.
fn card_error(e: &TerminalError, c: &CardError) -> SmartPosError {
    let reason = e.to_string();
    let diagnosis = Some(Diagnosis::from(e.diagnosis()));
    #[allow(unreachable_patterns)] // the core enums are non_exhaustive
    match c {
        CardError::PinCancelled | CardError::Bridge(KernelBridgeError::Aborted) => {
            SmartPosError::Cancelled { reason }
        }
        CardError::Refused(r) => SmartPosError::CardRefused {
            refusal: CardRefusal::from(*r),
            reason,
            diagnosis,
        },
        CardError::DeclinedOffline => SmartPosError::CardDeclinedOffline { reason, diagnosis },
        CardError::Bridge(b) => {
            let (failure, kernel_code) = match b {
                KernelBridgeError::CardRemoved => (KernelFailure::CardRemoved, None),
                KernelBridgeError::Timeout => (KernelFailure::Timeout, None),
                KernelBridgeError::NotAccepted { .. } => (KernelFailure::NotAccepted, None),
                KernelBridgeError::Kernel { code, .. } => (KernelFailure::Kernel, Some(*code)),
                _ => (KernelFailure::Kernel, None),
            };
            SmartPosError::CardKernelFailed {
                failure,
                kernel_code,
                reason,
                diagnosis,
            }
        }
        _ => SmartPosError::CardReadFailed { reason, diagnosis },
    }
}

/// `CardReadFailed` for a card reader or transport failure outside the core (the app's
/// `CardReader`, the mPOS reader), with the core's diagnosis of a reader failure.
pub(crate) fn card_read_failed(reason: String) -> SmartPosError {
    let e = TerminalError::Card(CardError::Reader(reason.clone()));
    SmartPosError::CardReadFailed {
        reason,
        diagnosis: Some(e.diagnosis().into()),
    }
}

impl From<core_certified::CardRefusal> for CardRefusal {
    fn from(r: core_certified::CardRefusal) -> Self {
        use core_certified::CardRefusal as R;
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match r {
            R::ChipCardSwiped => CardRefusal::ChipCardSwiped,
            R::BadCheckDigit => CardRefusal::BadCheckDigit,
            R::BadExpiry => CardRefusal::BadExpiry,
            R::EntryNotAllowed => CardRefusal::EntryNotAllowed,
            R::Incomplete => CardRefusal::Incomplete,
            _ => CardRefusal::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_txn::model::{PendingKind, ReversalReason};

    fn record() -> model::TxnRecord {
        model::TxnRecord {
            reference: "000001000007".into(),
            kind: model::TxnKind::Sale,
            state: model::TxnState::Reversing,
            amount: 1234,
            currency: "156".into(),
            stan: 7,
            batch: 1,
            local_time: "101010".into(),
            local_date: "0101".into(),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: None,
            idempotency_key: Some("order-1".into()),
            operator: Some("01".into()),
            pan_masked: Some("622202******0128".into()),
            entry_mode: Some("012".into()),
            created_at_ms: 1,
            updated_at_ms: 2,
            card: None,
        }
    }

    #[test]
    fn record_converts_field_by_field() {
        let r = TxnRecord::from(record());
        assert_eq!(r.kind, TxnKind::Sale);
        assert_eq!(r.state, TxnState::Reversing);
        assert_eq!(r.reference, "000001000007");
        assert_eq!(r.pan_masked.as_deref(), Some("622202******0128"));
        assert_eq!((r.stan, r.batch, r.amount), (7, 1, 1234));
        assert_eq!(r.idempotency_key.as_deref(), Some("order-1"));
    }

    #[test]
    fn all_kinds_and_states_are_known() {
        for k in [
            "sale",
            "void",
            "refund",
            "preauth",
            "completion",
            "preauth_cancel",
            "balance",
        ] {
            let core = model::TxnKind::parse(k).expect("kind");
            assert_ne!(TxnKind::from(core), TxnKind::Unknown, "{k}");
        }
        for s in [
            "sending",
            "approved",
            "declined",
            "reversing",
            "reversed",
            "voided",
            "queued",
            "not_sent",
        ] {
            let core = model::TxnState::parse(s).expect("state");
            assert_ne!(TxnState::from(core), TxnState::Unknown, "{s}");
        }
    }

    #[test]
    fn pending_item_carries_no_message_bytes() {
        let p = model::PendingItem {
            seq: 3,
            kind: PendingKind::Reversal,
            reference: "000001000007".into(),
            reason: Some(ReversalReason::NoResponse),
            message: vec![0x62; 40],
            attempts: 2,
            armed: true,
            not_before_unix_ms: 0,
        };
        let d = PendingItem::from(&p);
        assert_eq!(d.kind, "reversal");
        assert_eq!(d.reason_code.as_deref(), Some("98"));
        assert_eq!((d.seq, d.attempts, d.armed), (3, 2, true));
    }

    #[test]
    fn errors_map_to_what_the_app_does() {
        assert!(matches!(
            SmartPosError::from(TerminalError::Op(OpError::NotSignedIn)),
            SmartPosError::NotSignedIn { .. }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Op(OpError::PendingUndelivered { count: 2 })),
            SmartPosError::PendingUndelivered { count: 2, .. }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Op(OpError::NotSent)),
            SmartPosError::HostUnreachable { .. }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Op(OpError::HostRefused { code: "96".into() })),
            SmartPosError::HostRefused { ref response_code, .. } if response_code == "96"
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::IdempotencyConflict),
            SmartPosError::IdempotencyConflict { .. }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Poisoned),
            SmartPosError::Journal { .. }
        ));
        match SmartPosError::from(TerminalError::JournalMissing {
            path: "/d/journal.db".into(),
            expected: "AB".into(),
        }) {
            SmartPosError::JournalRefused {
                reason,
                diagnosis: Some(d),
            } => {
                assert!(reason.contains("do not reset without support"), "{reason}");
                assert_eq!(d.code, "terminal.journal_missing");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            SmartPosError::from(TerminalError::GuardStore { reason: "x".into() }),
            SmartPosError::Journal { .. }
        ));
        assert_eq!(
            SmartPosError::from(TerminalError::NotFound {
                reference: "x".into()
            }),
            SmartPosError::NotFound {
                reference: "x".into()
            }
        );
    }

    #[test]
    fn diagnoses_cross_in_both_languages() {
        let d = diagnose_response_code("51".into(), TxnKind::Sale);
        assert_eq!(d.host_code.as_deref(), Some("51"));
        assert!(!d.title_zh.is_empty() && !d.title_en.is_empty());
        assert_eq!(d.next_steps_zh.len(), d.next_steps_en.len());
        let mut declined = record();
        declined.state = model::TxnState::Declined;
        declined.response_code = Some("51".into());
        let outcome = |record| TxnOutcome {
            record,
            reply: None,
            reversal_pending: false,
            replayed: false,
            card: None,
            security: None,
        };
        assert_eq!(
            diagnose_outcome(&outcome(declined)).map(|d| d.code),
            Some(d.code)
        );
        let mut approved = record();
        approved.state = model::TxnState::Approved;
        assert_eq!(diagnose_outcome(&outcome(approved)), None);
        match SmartPosError::from(OpError::NotSignedIn) {
            SmartPosError::NotSignedIn { diagnosis, .. } => assert!(diagnosis.is_some()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn config_rejects_a_bad_pin() {
        let cfg = TerminalConfig {
            tid: "10000001".into(),
            mid: "898100012340001".into(),
            host: "127.0.0.1:1".into(),
            dialect: "cup".into(),
            currency: "156".into(),
            tls: Some(TlsConfig {
                ca_pem: String::new(),
                server_name: "localhost".into(),
                pin_sha256_hex: Some("zz".into()),
                client_certificate: None,
                client_key: None,
            }),
            connect_timeout_ms: 1000,
            response_timeout_ms: 1000,
            utc_offset_minutes: 0,
            profile_toml: None,
        };
        assert!(matches!(cfg.to_core(), Err(SmartPosError::Config { .. })));
        let plain = TerminalConfig { tls: None, ..cfg };
        let core = plain.to_core().expect("config");
        assert_eq!(core.link.response_timeout, Duration::from_secs(1));
        assert!(core.link.tls.is_none());
    }

    /// A store holding only what the test puts in it.
    struct OneKey(Option<Vec<u8>>);

    impl smartpos_terminal::store::SecureStore for OneKey {
        fn get(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, String> {
            Ok((name == smartpos_terminal::store::TLS_CLIENT_KEY)
                .then(|| self.0.clone().map(zeroize::Zeroizing::new))
                .flatten())
        }
        fn put(&self, _: &str, _: &[u8]) -> Result<(), String> {
            Err("read-only".into())
        }
    }

    #[test]
    fn a_client_certificate_takes_its_key_from_the_record_or_the_store() {
        use smartpos_sim::net::{TEST_CA_PEM, TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM};
        let tls = TlsConfig {
            ca_pem: String::from_utf8_lossy(TEST_CA_PEM).into_owned(),
            server_name: "localhost".into(),
            pin_sha256_hex: None,
            client_certificate: Some(TEST_CLIENT_CERT_PEM.to_vec()),
            client_key: Some(TEST_CLIENT_KEY_PEM.to_vec()),
        };
        let cfg = TerminalConfig {
            tid: "12345678".into(),
            mid: "898100012340001".into(),
            host: "127.0.0.1:1".into(),
            dialect: "cup".into(),
            profile_toml: None,
            currency: "156".into(),
            tls: Some(tls.clone()),
            connect_timeout_ms: 1000,
            response_timeout_ms: 1000,
            utc_offset_minutes: 0,
        };
        let identity = |c: &TerminalConfig, store: &OneKey| {
            c.to_core_with(store)
                .map(|core| core.link.tls.and_then(|t| t.client_identity).is_some())
        };
        assert_eq!(identity(&cfg, &OneKey(None)), Ok(true));
        let from_store = TerminalConfig {
            tls: Some(TlsConfig {
                client_key: None,
                ..tls.clone()
            }),
            ..cfg.clone()
        };
        assert_eq!(
            identity(&from_store, &OneKey(Some(TEST_CLIENT_KEY_PEM.to_vec()))),
            Ok(true)
        );
        let reason = config_reason(identity(&from_store, &OneKey(None)).unwrap_err());
        assert!(reason.contains("tls_client_key"), "{reason}");
        let wrong = TerminalConfig {
            tls: Some(TlsConfig {
                client_key: Some(
                    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
                ),
                ..tls.clone()
            }),
            ..cfg.clone()
        };
        assert!(matches!(
            identity(&wrong, &OneKey(None)),
            Err(SmartPosError::Config { .. })
        ));
        // Debug never shows the key.
        let shown = format!("{tls:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
    }

    #[test]
    fn safety_errors_carry_rules_and_diagnoses() {
        let rule = policy::Rule::ExceedsRemainder { remainder: 1000 };
        let denial = Denial {
            diagnosis: rule.diagnosis(),
            rule,
        };
        match SmartPosError::from(TerminalError::RefundDenied {
            denials: vec![denial],
        }) {
            SmartPosError::RefundDenied { reason, denials } => {
                assert!(reason.contains("policy.exceeds_remainder"), "{reason}");
                assert_eq!(denials.len(), 1);
                assert_eq!(denials[0].rule, "policy.exceeds_remainder");
                assert!(
                    denials[0].detail_json.contains("1000"),
                    "{}",
                    denials[0].detail_json
                );
                assert!(!denials[0].diagnosis.title_en.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        let wrong = TerminalError::Operator(operators::OperatorError::WrongPassword {
            remaining_attempts: 2,
        });
        assert!(matches!(
            SmartPosError::from(wrong),
            SmartPosError::OperatorRefused {
                diagnosis: Some(_),
                ..
            }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Card(CardError::PinCancelled)),
            SmartPosError::Cancelled { .. }
        ));
        assert!(matches!(
            SmartPosError::from(TerminalError::Card(CardError::PinPadMissing)),
            SmartPosError::CardReadFailed {
                diagnosis: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn card_errors_are_typed_and_carry_the_core_s_diagnosis() {
        use smartpos_emv::certified::CardRefusal as R;
        let card = |c: CardError| SmartPosError::from(TerminalError::Card(c));
        let core_code = |c: CardError| TerminalError::Card(c).diagnosis().code.to_owned();
        match card(CardError::Refused(R::ChipCardSwiped)) {
            SmartPosError::CardRefused {
                refusal,
                diagnosis: Some(d),
                ..
            } => {
                assert_eq!(refusal, CardRefusal::ChipCardSwiped);
                assert_eq!(d.code, core_code(CardError::Refused(R::ChipCardSwiped)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            card(CardError::DeclinedOffline),
            SmartPosError::CardDeclinedOffline {
                diagnosis: Some(_),
                ..
            }
        ));
        match card(CardError::Bridge(KernelBridgeError::Kernel {
            code: -4001,
            reason: "x".into(),
        })) {
            SmartPosError::CardKernelFailed {
                failure,
                kernel_code,
                diagnosis: Some(_),
                ..
            } => assert_eq!((failure, kernel_code), (KernelFailure::Kernel, Some(-4001))),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            card(CardError::Bridge(KernelBridgeError::NotAccepted {
                reason: "chip unreadable".into()
            })),
            SmartPosError::CardKernelFailed {
                failure: KernelFailure::NotAccepted,
                kernel_code: None,
                ..
            }
        ));
        assert!(matches!(
            card(CardError::Bridge(KernelBridgeError::Aborted)),
            SmartPosError::Cancelled { .. }
        ));
        assert!(matches!(
            card(CardError::Reader("gone".into())),
            SmartPosError::CardReadFailed {
                diagnosis: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn receipts_and_sessions_convert_both_ways() {
        for s in [
            PrinterStatus::Ok,
            PrinterStatus::OutOfPaper,
            PrinterStatus::Overheated,
            PrinterStatus::CoverOpen,
            PrinterStatus::NoPrinter,
            PrinterStatus::Busy,
        ] {
            assert_eq!(PrinterStatus::from(printing::PrinterStatus::from(s)), s);
        }
        for c in [ReceiptCopy::Merchant, ReceiptCopy::Customer] {
            assert_eq!(ReceiptCopy::from(receipt::ReceiptCopy::from(c)), c);
        }
        let s = Session {
            operator: "02".into(),
            role: Role::Cashier,
            since_ms: 5,
        };
        assert_eq!(
            LoginResult::from(operators::LoginResult::LoggedIn(s)),
            LoginResult::LoggedIn {
                session: OperatorSession {
                    operator: "02".into(),
                    role: OperatorRole::Cashier,
                    since_ms: 5
                }
            }
        );
        let p = PendingPrint::from(("r".to_owned(), "customer".to_owned(), 2, "busy".to_owned()));
        assert_eq!((p.attempts, p.last_status.as_str()), (2, "busy"));
    }

    fn config_reason(e: SmartPosError) -> String {
        match e {
            SmartPosError::Config { reason } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn safety_settings_round_trip_and_validate_at_the_boundary() {
        let core = smartpos_terminal::safety::SafetySettings {
            require_login: true,
            refund_policy: policy::RefundPolicy {
                max_days_since_original: 7,
                max_single_refund: Some(50_000),
                daily_total_per_terminal: None,
                daily_total_per_operator: Some(90_000),
                supervisor_approval_above: Some(1_000),
                same_card_required: true,
                fee: Some(policy::Fee::Percent { basis_points: 150 }),
            },
            operators: operators::OperatorConfig::default(),
        };
        let ffi = SafetySettings::from(&core);
        assert_eq!(ffi.operators.pbkdf2_iterations, 100_000);
        assert_eq!(
            ffi.refund_policy.fee,
            Some(RefundFee::Percent { basis_points: 150 })
        );
        assert_eq!(safety_settings_in(ffi.clone(), &core), Ok(core.clone()));

        let mut fixed = ffi.clone();
        fixed.refund_policy.fee = Some(RefundFee::Fixed { amount: 200 });
        fixed.require_login = false;
        let back = safety_settings_in(fixed, &core).unwrap();
        assert_eq!(back.refund_policy.fee, Some(policy::Fee::Fixed(200)));
        assert!(!back.require_login);

        let mut too_much = ffi.clone();
        too_much.refund_policy.fee = Some(RefundFee::Percent {
            basis_points: 10_001,
        });
        let reason = config_reason(safety_settings_in(too_much, &core).unwrap_err());
        assert!(
            reason.contains("refund_policy.fee.basis_points"),
            "{reason}"
        );

        let mut weaker = ffi.clone();
        weaker.operators.pbkdf2_iterations = 1;
        let reason = config_reason(safety_settings_in(weaker, &core).unwrap_err());
        assert!(reason.contains("operators.pbkdf2_iterations"), "{reason}");
        let mut lockout = ffi;
        lockout.operators.max_failed_attempts = 9;
        let reason = config_reason(safety_settings_in(lockout, &core).unwrap_err());
        assert!(reason.contains("operators.max_failed_attempts"), "{reason}");
    }

    #[test]
    fn receipt_settings_round_trip_and_reject_bad_fields() {
        let good = ReceiptSettings {
            merchant_name: "测试商户 Test Shop".into(),
            merchant_id: "898100012340001".into(),
            terminal_id: "10000001".into(),
            width: ReceiptWidth::W48,
            language: "en".into(),
        };
        let core = printing::ReceiptSettings::try_from(good.clone()).unwrap();
        assert_eq!(core.width, receipt::Width::W48);
        assert_eq!(core.lang, receipt::Lang::En);
        assert_eq!(ReceiptSettings::from(&core), good);

        let bad = |f: &dyn Fn(&mut ReceiptSettings), field: &str| {
            let mut s = good.clone();
            f(&mut s);
            let reason = config_reason(printing::ReceiptSettings::try_from(s).unwrap_err());
            assert!(reason.contains(field), "{field}: {reason}");
        };
        bad(&|s| s.language = "fr".into(), "receipt.language");
        bad(&|s| s.language = "EN".into(), "receipt.language");
        bad(&|s| s.merchant_name = "  ".into(), "receipt.merchant_name");
        bad(
            &|s| s.merchant_name = "x".repeat(41),
            "receipt.merchant_name",
        );
        bad(
            &|s| s.merchant_name = "Shop\u{1b}@".into(),
            "receipt.merchant_name",
        );
        bad(
            &|s| s.merchant_id = "89810001234000".into(),
            "receipt.merchant_id",
        );
        bad(
            &|s| s.terminal_id = "1000000\n".into(),
            "receipt.terminal_id",
        );
        bad(
            &|s| s.terminal_id = "终端0001".into(),
            "receipt.terminal_id",
        );
    }
}
