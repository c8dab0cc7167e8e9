//! Requests, transaction records, results, pending items, settlement and events: the
//! outcome of a payment as Kotlin sees it.

use super::*;

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
            currency: r.currency.to_string(),
            stan: r.stan,
            batch: r.batch,
            // The FFI edge: the typed wire values as their wire text (the Kotlin record keeps
            // `String`s).
            local_time: r.local_time.to_string(),
            local_date: r.local_date.to_string(),
            rrn: r.rrn,
            auth_code: r.auth_code,
            response_code: r.response_code.map(|c| c.to_string()),
            original_ref: r.original_ref,
            idempotency_key: r.idempotency_key,
            operator: r.operator,
            pan_masked: r.pan_masked,
            entry_mode: r.entry_mode.map(|e| e.to_string()),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

impl From<Reply> for HostReply {
    fn from(r: Reply) -> Self {
        HostReply {
            response_code: r.response_code.to_string(),
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

pub(crate) fn core_kind(k: TxnKind) -> model::TxnKind {
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
