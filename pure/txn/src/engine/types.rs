//! The engine's vocabulary: its settings, the commands it runs, what it hands to the driver
//! ([`Output`], [`Event`]) and how a command ends ([`Outcome`], [`OpError`]).

use crate::journal::Commit;
use crate::journal::SettlementStep;
use crate::model::{BatchTotals, PendingKind, ReversalReason, TxnKind, TxnRecord};
use crate::proto::{CardData, Identity, MsgType, Profile, Reply};
use smartpos_iso8583::Mti;
use thiserror::Error;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Terminal identity (TID, MID, currency).
    pub identity: Identity,
    /// Host profile (dialect + MAC algorithm).
    pub profile: Profile,
    /// How long to wait for a response, in milliseconds (default 30 s).
    pub response_timeout_ms: u64,
    /// Immediate attempts for a reversal or advice before it is held with back-off (default 3).
    pub delivery_attempts: u32,
    /// First back-off after the immediate attempts failed (default 30 s); doubles up to `backoff_max_ms`.
    pub backoff_base_ms: i64,
    /// Longest back-off (default 1 h).
    pub backoff_max_ms: i64,
    /// Index of the master key (TMK) in the security module that sign-in keys are delivered
    /// under (default 0, where the software module holds it).
    pub master_key_index: u32,
}

impl EngineConfig {
    /// Defaults for a profile and identity.
    pub fn new(identity: Identity, profile: Profile) -> Self {
        EngineConfig {
            identity,
            profile,
            response_timeout_ms: 30_000,
            delivery_attempts: 3,
            backoff_base_ms: 30_000,
            backoff_max_ms: 3_600_000,
            master_key_index: 0,
        }
    }
}

/// What the engine hands to the driver.
#[derive(Debug)]
pub enum Output {
    /// Journal writes to apply atomically, then acknowledge with [`Engine::commit_done`].
    Commit(Commit),
    /// A frame body (no length prefix) to send to the host.
    Transmit(Vec<u8>),
    /// Something for the app.
    Event(Event),
    /// A contact chip card waits for the host's answer to make its final decision (second
    /// GENERATE AC). The approval and the armed-on-failure reversal are already durable; the
    /// driver hands the answer to the card and reports with [`Engine::handle_card_decision`].
    /// Nothing else happens until then.
    CompleteCard(CardCompletion),
}

/// What the card needs for its final decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCompletion {
    /// The transaction.
    pub reference: String,
    /// The host's answer (response code, authorisation code, field 55 with 91/71/72).
    pub reply: Reply,
}

/// What the card decided after the host approved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardVerdict {
    /// TC: the card accepts the approval.
    Accepted {
        /// The final chip data (field 55 of the TC upload).
        icc: Vec<u8>,
        /// Issuer script results (DF31), empty when no script ran.
        script_results: Vec<u8>,
    },
    /// AAC: the card declines although the host approved; the approval is reversed.
    Declined {
        /// Issuer script results (DF31), empty when no script ran.
        script_results: Vec<u8>,
    },
    /// No decision: the card was removed, the kernel failed, or the driver has no card to
    /// ask. The card may have been charged at the host: the approval is reversed.
    Failed,
}

/// Progress and results for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message is about to be sent (for "processing" screens and logs).
    Sending {
        /// What is being sent.
        msg: MsgType,
        /// Its MTI.
        mti: Mti,
        /// The transaction it belongs to.
        reference: Option<String>,
    },
    /// A reversal was sent.
    ReversalSent {
        /// The reversed transaction.
        reference: String,
        /// Why.
        reason: ReversalReason,
        /// Attempt number (1-based).
        attempt: u32,
    },
    /// A pending reversal or advice was acknowledged by the host.
    PendingDelivered {
        /// The transaction.
        reference: String,
        /// Reversal or advice.
        kind: PendingKind,
    },
    /// The answer to the request in flight failed its MAC check in the security module: it
    /// is not trusted (a reversible request is reversed with `A0`, a pending item stays
    /// pending). The working keys on the two sides probably differ: the runtime signs in
    /// again once.
    ResponseMacFailed {
        /// The answer's MTI.
        mti: Mti,
    },
    /// A frame that did not belong to the request in flight was ignored.
    Ignored {
        /// Why it was ignored.
        why: &'static str,
    },
    /// The command finished. Its result is durable in the journal.
    Finished(Finished),
    /// A card is about to be read (show "present card"). Emitted by the terminal runtime that
    /// drives the card reader, not by the engine; never for a retry of a known idempotency
    /// key, which is answered from the journal without a card.
    WaitingForCard {
        /// Amount in minor units.
        amount: u64,
    },
    /// The card was read and the reader is done with it: a contactless card may be taken
    /// away (EMV contactless: signal the end of the card read at once). A PIN prompt, if the
    /// card asks for one, comes after this. Emitted by the terminal runtime.
    CardRead {
        /// PAN masked to first 6 / last 4.
        pan_masked: String,
        /// POS entry mode (ISO 8583 field 22), e.g. `071` contactless chip.
        entry_mode: String,
    },
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Which command.
    pub command: Command,
    /// What happened.
    pub result: Result<Outcome, OpError>,
}

/// The commands of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Sign-in with key download.
    SignIn,
    /// Sign-off.
    SignOff,
    /// Echo test.
    Echo,
    /// A transaction of this kind.
    Txn(TxnKind),
    /// Deliver pending reversals and advices.
    Recover,
    /// Settlement.
    Settle,
    /// Reverse an approved transaction after a terminal-side failure (reason 96).
    Reverse,
    /// Download the EMV parameters (CA keys, AIDs) from the host.
    ParamDownload,
}

/// A successful command result (a decline is a successful result: the host answered).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A transaction reached a recorded state.
    Txn {
        /// The record as journaled.
        record: TxnRecord,
        /// The host's reply, when there was one.
        reply: Option<Reply>,
        /// Whether money may still be held pending a reversal the host has not acknowledged.
        reversal_pending: bool,
    },
    /// Sign-in succeeded; working keys installed.
    SignedIn {
        /// The batch number now open.
        batch: u32,
    },
    /// Sign-off or echo acknowledged.
    Acknowledged,
    /// Pending items were delivered.
    Recovered {
        /// How many were delivered.
        delivered: u32,
        /// How many remain (host unreachable).
        remaining: u32,
    },
    /// The batch was settled and the batch number advanced.
    Settled {
        /// The settled batch.
        batch: u32,
        /// Whether the host's totals matched at once (no upload needed).
        balanced: bool,
        /// Totals sent.
        totals: BatchTotals,
        /// Records uploaded (when not balanced).
        uploaded: u32,
    },
    /// The EMV parameters were downloaded (not yet stored: the runtime keeps them).
    ParamsDownloaded(crate::params::TerminalParams),
}

/// Why a command failed. None of these moved money; where money might be held, the outcome is
/// an [`Outcome::Txn`] with `reversal_pending`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpError {
    /// Another command is running.
    #[error("another command is in progress")]
    Busy,
    /// No working keys: sign in first.
    #[error("not signed in")]
    NotSignedIn,
    /// Earlier reversals or advices could not be delivered, so no new financial message may go out.
    #[error("{count} pending item(s) could not be delivered to the host")]
    PendingUndelivered {
        /// How many remain.
        count: u32,
    },
    /// The host did not answer (non-financial commands).
    #[error("no response from the host")]
    NoResponse,
    /// The host answered with a refusal (non-financial commands).
    #[error("host refused with response code {code}")]
    HostRefused {
        /// Response code.
        code: String,
    },
    /// A delivered working key failed its check value.
    #[error("working key check value mismatch")]
    KeyCheck,
    /// The key block is malformed.
    #[error("malformed key block: {reason}")]
    KeyBlock {
        /// Why.
        reason: &'static str,
    },
    /// The request is not allowed (bad amount, wrong original, ...). Nothing was sent.
    #[error("rejected: {reason}")]
    Rejected {
        /// Why, in words for logs (no card data).
        reason: String,
    },
    /// The message could not be built.
    #[error("message could not be built: {0}")]
    Proto(String),
    /// The request never reached the host (the link failed before it left): nothing happened.
    #[error("the request could not be sent to the host")]
    NotSent,
    /// The EMV parameter download failed (bad host data, unsupported dialect). Nothing was kept.
    #[error("parameter download: {0}")]
    Params(crate::params::ParamError),
    /// The security module refused or failed (a device fault, a master key it does not hold,
    /// an algorithm it does not do). The text is the module's, never key material.
    #[error("security module: {reason}")]
    SecurityModule {
        /// Why, for logs.
        reason: String,
    },
    /// The DUKPT transaction counter is used up: no KSN can be reserved, nothing was sent. The
    /// terminal needs a new initial key.
    #[error("the DUKPT transaction counter is exhausted: load a new initial key")]
    DukptExhausted,
}

/// A financial request from the app.
#[derive(Debug, Clone)]
pub struct TxnRequest {
    /// Kind: sale, pre-auth, balance use no original; void, refund, completion and cancel do.
    pub kind: TxnKind,
    /// Amount in minor units (ignored for balance; for void and cancel the original's amount is used).
    pub amount: u64,
    /// Card data (optional for void, cancel, refund and completion, which find the original by reference).
    pub card: Option<CardData>,
    /// The original, for void/refund/completion/cancel.
    pub original: Option<TxnRecord>,
    /// How much of the original later transactions already took (the runtime's journal
    /// query): approved or queued refunds of a sale or completion; approved (or still
    /// reversing) completions of a pre-authorisation. A void, a second completion and a
    /// cancel are refused when it is not zero; a refund may not take more than the rest.
    pub original_used: u64,
    /// App-supplied idempotency key (the runtime checks it before calling the engine).
    pub idempotency_key: Option<String>,
    /// Operator code.
    pub operator: Option<String>,
}

/// A command in progress, with what it has gathered so far.
#[derive(Debug)]
pub(super) enum Op {
    SignIn {
        operator: String,
    },
    SignOff,
    Echo,
    Txn {
        req: Box<TxnRequest>,
        record: Option<TxnRecord>,
        reversal_seq: Option<u64>,
    },
    Recover {
        delivered: u32,
    },
    Settle {
        batch: u32,
        records: Vec<TxnRecord>,
        totals: BatchTotals,
        step: SettlementStep,
        balanced: bool,
        uploaded: u32,
        /// The operator who settles (field 63 of the 0500), if any.
        operator: Option<String>,
    },
    Reverse {
        record: TxnRecord,
        seq: u64,
    },
    Params(Box<crate::params::ParamDownload>),
}

impl Op {
    pub(super) fn command(&self) -> Command {
        match self {
            Op::SignIn { .. } => Command::SignIn,
            Op::SignOff => Command::SignOff,
            Op::Echo => Command::Echo,
            Op::Txn { req, .. } => Command::Txn(req.kind),
            Op::Recover { .. } => Command::Recover,
            Op::Settle { .. } => Command::Settle,
            Op::Reverse { .. } => Command::Reverse,
            Op::Params(_) => Command::ParamDownload,
        }
    }

    pub(super) fn needs_drain(&self) -> bool {
        !matches!(
            self,
            Op::SignIn { .. } | Op::SignOff | Op::Echo | Op::Params(_)
        )
    }
}
