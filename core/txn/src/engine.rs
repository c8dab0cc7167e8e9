//! The terminal engine: a sans-IO state machine for every host exchange.
//!
//! # How to drive it
//! Input goes in through `start_*` commands, [`Engine::handle_host_frame`],
//! [`Engine::handle_timeout`] and [`Engine::handle_link_error`]; output comes out, in order,
//! through [`Engine::poll`] (or the typed `poll_commit` / `poll_transmit` / `poll_event`).
//! After each input, the driver loops:
//!
//! 1. [`Output::Commit`]: apply the journal writes atomically, then call
//!    [`Engine::commit_done`]. Until then `poll` returns nothing more, so nothing is sent and no
//!    outcome is reported before it is durable.
//! 2. [`Output::Transmit`]: send the frame body to the host (connecting first if needed). If the
//!    link fails, call [`Engine::handle_link_error`].
//! 3. [`Output::Event`]: hand the event to the app.
//!
//! When `poll` returns `None`, arm a timer for [`Engine::poll_timeout`] and wait for a frame or
//! the timer. Time is always passed in ([`Now`]); the engine has no clock, socket or RNG.
//!
//! # What it guarantees
//! - A reversible request (sale, void, pre-auth, completion, cancel) is sent only after the
//!   commit holding its intent and its (unarmed) pending reversal.
//! - Any ambiguous outcome (timeout, link lost after sending, bad MAC, inconsistent response)
//!   arms the reversal durably, then sends it up to `reversal_attempts` times; an
//!   unacknowledged reversal stays pending, with back-off, and goes out before the next
//!   financial message. While one stays undelivered, new financial messages are refused.
//! - Refunds are advices: recorded and queued before the first send, repeated as 0221 until
//!   the host acknowledges them.
//! - Frames that do not match the request in flight (late answers, duplicates, other STANs)
//!   are logged and ignored.

use crate::journal::{
    Commit, JournalOp, Restored, SettlementProgress, SettlementStep, StateUpdate,
};
use crate::model::{
    BatchTotals, Counters, Now, PendingItem, PendingKind, ReversalReason, TxnKind, TxnRecord,
    TxnState, reference,
};
use crate::proto::{
    self, CardData, Ctx, Expectation, Identity, Match, MsgType, Profile, Reply, SettlementResult,
};
use smartpos_crypto::keys::TdesKey;
use smartpos_iso8583::{Message, Mti};
use std::collections::VecDeque;
use thiserror::Error;

mod params_op;

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
        }
    }
}

/// The working keys delivered at sign-in. Zeroized on drop (by [`TdesKey`]).
#[derive(Debug)]
pub struct WorkingKeys {
    /// PIN encryption key.
    pub pik: TdesKey,
    /// MAC key.
    pub mak: TdesKey,
    /// Track/data encryption key, when delivered.
    pub tdk: Option<TdesKey>,
}

/// Parses and unwraps a sign-in key block (field 62): PIK(16) CV(4) MAK(16) CV(4) [TDK(16) CV(4)],
/// each key encrypted under the TMK and checked against its check value.
pub fn unwrap_key_block(tmk: &TdesKey, block: &[u8]) -> Result<WorkingKeys, OpError> {
    if block.len() != 40 && block.len() != 60 {
        return Err(OpError::KeyBlock {
            reason: "key block must be 40 or 60 bytes",
        });
    }
    let part = |i: usize| -> Result<TdesKey, OpError> {
        let start = i * 20;
        let enc = block.get(start..start + 16).ok_or(OpError::KeyBlock {
            reason: "key block truncated",
        })?;
        let cv = block.get(start + 16..start + 20).ok_or(OpError::KeyBlock {
            reason: "key block truncated",
        })?;
        smartpos_crypto::keys::unwrap_working_key(tmk, enc, cv).map_err(|_| OpError::KeyCheck)
    };
    Ok(WorkingKeys {
        pik: part(0)?,
        mak: part(1)?,
        tdk: if block.len() == 60 {
            Some(part(2)?)
        } else {
            None
        },
    })
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

#[derive(Debug)]
enum Phase {
    /// Deliver armed pending items first; `then` is what follows.
    Drain { tries: u32 },
    /// The command's own request.
    Main,
    /// Reversal attempts of the command's own request.
    ReverseMain,
}

#[derive(Debug)]
enum Op {
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
    },
    Reverse {
        record: TxnRecord,
        seq: u64,
    },
    Params(Box<crate::params::ParamDownload>),
}

impl Op {
    fn command(&self) -> Command {
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

    fn needs_drain(&self) -> bool {
        !matches!(
            self,
            Op::SignIn { .. } | Op::SignOff | Op::Echo | Op::Params(_)
        )
    }
}

/// What the request in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Pending { seq: u64 },
    Main,
    ReverseMain,
}

#[derive(Debug)]
struct Wait {
    purpose: Purpose,
    expect: Expectation,
    deadline: u64,
}

/// The terminal engine. See the module documentation for the driving loop.
pub struct Engine {
    cfg: EngineConfig,
    tmk: TdesKey,
    keys: Option<WorkingKeys>,
    counters: Counters,
    pending: Vec<PendingItem>,
    settlement: Option<SettlementProgress>,
    out: VecDeque<Output>,
    commit_in_flight: Option<u64>,
    next_commit: u64,
    op: Option<(Op, Phase)>,
    wait: Option<Wait>,
    /// The host's answer while a contact chip card decides ([`Output::CompleteCard`]).
    card_wait: Option<Reply>,
    /// The host's approval of a transaction whose card declined, for its outcome.
    card_declined_reply: Option<Reply>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("signed_in", &self.keys.is_some())
            .field("counters", &self.counters)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn backoff(cfg: &EngineConfig, attempts: u32) -> i64 {
    let over = attempts.saturating_sub(cfg.delivery_attempts).min(20);
    cfg.backoff_base_ms
        .saturating_mul(1i64 << over)
        .min(cfg.backoff_max_ms)
}

impl Engine {
    /// Starts an engine from what the journal holds. Transactions found in `Sending` had no
    /// recorded answer: their reversals are armed (reason 98) in a first commit that the driver
    /// must apply before anything else.
    pub fn restore(cfg: EngineConfig, tmk: TdesKey, restored: Restored) -> Self {
        let keys =
            restored
                .wrapped_keys
                .as_deref()
                .and_then(|b| match cfg.profile.keys.unwrap(&tmk, b) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        log::warn!("stored working keys unusable ({e}); sign in again");
                        None
                    }
                });
        let mut pending = restored.pending;
        pending.sort_by_key(|p| p.seq);
        let mut e = Engine {
            cfg,
            tmk,
            keys,
            counters: restored.counters,
            pending,
            settlement: restored.settlement,
            out: VecDeque::new(),
            commit_in_flight: None,
            next_commit: 1,
            op: None,
            wait: None,
            card_wait: None,
            card_declined_reply: None,
        };
        let mut ops = Vec::new();
        for mut rec in restored.in_flight {
            if let Some(item) = e
                .pending
                .iter_mut()
                .find(|p| p.reference == rec.reference && p.kind == PendingKind::Reversal)
            {
                item.armed = true;
                // A host approval is recorded but the card had not decided (a contact chip
                // card, second GENERATE AC): the terminal failed after an approval.
                item.reason = Some(
                    if rec.response_code.as_deref().is_some_and(proto::is_approval) {
                        ReversalReason::TerminalFailure
                    } else {
                        ReversalReason::NoResponse
                    },
                );
                ops.push(JournalOp::PutPending(item.clone()));
                rec.state = TxnState::Reversing;
            } else {
                // Nothing to reverse (a balance inquiry): its answer is simply lost.
                rec.state = TxnState::Declined;
            }
            log::warn!(
                "recovery: {} {} had no recorded answer, now {}",
                rec.kind,
                rec.reference,
                rec.state
            );
            ops.push(JournalOp::PutTxn(rec));
        }
        if !ops.is_empty() {
            e.commit(ops);
        }
        e
    }

    /// The result of the command that finished, while it still waits in the output queue
    /// behind other outputs (the commit of its outcome comes first).
    pub fn queued_finish(&self) -> Option<&Finished> {
        self.out.iter().find_map(|o| match o {
            Output::Event(Event::Finished(f)) => Some(f),
            _ => None,
        })
    }

    /// The reference of the transaction being run, from its first commit (the intent, which
    /// creates its record) until it finishes.
    pub fn txn_reference(&self) -> Option<&str> {
        match &self.op {
            Some((
                Op::Txn {
                    record: Some(r), ..
                },
                _,
            )) => Some(&r.reference),
            _ => None,
        }
    }

    /// Whether working keys are installed.
    pub fn signed_in(&self) -> bool {
        self.keys.is_some()
    }

    /// The PIN key, for building PIN blocks (stays inside Rust).
    pub fn pin_key(&self) -> Option<&TdesKey> {
        self.keys.as_ref().map(|k| &k.pik)
    }

    /// Current counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Pending items, in delivery order.
    pub fn pending(&self) -> &[PendingItem] {
        &self.pending
    }

    /// When the earliest armed pending item may be retried by background recovery (Unix ms):
    /// its back-off after the immediate attempts failed. `None` when nothing is armed.
    pub fn next_retry_unix_ms(&self) -> Option<i64> {
        self.pending
            .iter()
            .filter(|p| p.armed)
            .map(|p| p.not_before_unix_ms)
            .min()
    }

    /// Whether a command is running.
    pub fn busy(&self) -> bool {
        self.op.is_some()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    // ---------------------------------------------------------------- output

    fn commit(&mut self, ops: Vec<JournalOp>) {
        let id = self.next_commit;
        self.next_commit += 1;
        self.out.push_back(Output::Commit(Commit { id, ops }));
    }

    fn emit(&mut self, ev: Event) {
        self.out.push_back(Output::Event(ev));
    }

    /// The next output, in order. Returns `None` while a commit is unacknowledged.
    pub fn poll(&mut self) -> Option<Output> {
        if self.commit_in_flight.is_some() {
            return None;
        }
        let o = self.out.pop_front()?;
        if let Output::Commit(c) = &o {
            self.commit_in_flight = Some(c.id);
        }
        Some(o)
    }

    /// The next output if it is a commit.
    pub fn poll_commit(&mut self) -> Option<Commit> {
        match self.out.front() {
            Some(Output::Commit(_)) if self.commit_in_flight.is_none() => match self.poll() {
                Some(Output::Commit(c)) => Some(c),
                _ => None,
            },
            _ => None,
        }
    }

    /// The next output if it is a frame to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match self.out.front() {
            Some(Output::Transmit(_)) if self.commit_in_flight.is_none() => match self.poll() {
                Some(Output::Transmit(t)) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// The next output if it is an event.
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.out.front() {
            Some(Output::Event(_)) if self.commit_in_flight.is_none() => match self.poll() {
                Some(Output::Event(e)) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }

    /// Acknowledges that a commit is durable.
    pub fn commit_done(&mut self, id: u64) {
        if self.commit_in_flight == Some(id) {
            self.commit_in_flight = None;
        } else {
            log::error!("commit_done({id}) does not match the commit in flight");
        }
    }

    /// When [`Engine::handle_timeout`] should be called (monotonic ms), if a response is awaited.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.wait.as_ref().map(|w| w.deadline)
    }

    // ---------------------------------------------------------------- commands

    fn begin(&mut self, now: Now, op: Op) {
        if self.op.is_some() {
            let command = op.command();
            self.emit(Event::Finished(Finished {
                command,
                result: Err(OpError::Busy),
            }));
            return;
        }
        let phase = if op.needs_drain() {
            Phase::Drain { tries: 0 }
        } else {
            Phase::Main
        };
        self.op = Some((op, phase));
        self.step(now);
    }

    fn finish(&mut self, result: Result<Outcome, OpError>) {
        self.wait = None;
        // A card that declined after the host approved: the outcome keeps the host's answer
        // (its code and authorisation), not only the reversal's.
        let result = match (result, self.card_declined_reply.take()) {
            (
                Ok(Outcome::Txn {
                    record,
                    reply: None,
                    reversal_pending,
                }),
                Some(reply),
            ) => Ok(Outcome::Txn {
                record,
                reply: Some(reply),
                reversal_pending,
            }),
            (r, _) => r,
        };
        if let Some((op, _)) = self.op.take() {
            self.emit(Event::Finished(Finished {
                command: op.command(),
                result,
            }));
        }
    }

    /// Signs in and downloads working keys.
    pub fn start_sign_in(&mut self, now: Now, operator: &str) {
        self.begin(
            now,
            Op::SignIn {
                operator: operator.to_owned(),
            },
        );
    }

    /// Signs off.
    pub fn start_sign_off(&mut self, now: Now) {
        self.begin(now, Op::SignOff);
    }

    /// Sends an echo test.
    pub fn start_echo(&mut self, now: Now) {
        self.begin(now, Op::Echo);
    }

    /// Starts a financial transaction (sale, void, refund, pre-auth, completion, cancel, balance).
    pub fn start_txn(&mut self, now: Now, req: TxnRequest) {
        if self.op.is_none()
            && let Err(e) = self.validate(&req)
        {
            self.emit(Event::Finished(Finished {
                command: Command::Txn(req.kind),
                result: Err(e),
            }));
            return;
        }
        self.begin(
            now,
            Op::Txn {
                req: Box::new(req),
                record: None,
                reversal_seq: None,
            },
        );
    }

    /// Delivers every armed pending item (reversals, advices), ignoring back-off.
    pub fn start_recover(&mut self, now: Now) {
        self.begin(now, Op::Recover { delivered: 0 });
    }

    /// Settles the open batch. `records` are the batch's transactions (the runtime's query);
    /// an interrupted settlement resumes at the step it reached.
    pub fn start_settle(&mut self, now: Now, records: Vec<TxnRecord>) {
        let batch = self.counters.batch;
        let mut records: Vec<TxnRecord> =
            records.into_iter().filter(|r| r.batch == batch).collect();
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        let totals = BatchTotals::of(batch, &records);
        let step = match &self.settlement {
            Some(p) if p.batch == batch => p.step,
            _ => SettlementStep::Totals,
        };
        // Uploads and end-of-batch follow only a "not balanced" totals answer, so a settlement
        // resumed past the totals was not balanced.
        let balanced = step == SettlementStep::Totals;
        self.begin(
            now,
            Op::Settle {
                batch,
                records,
                totals,
                step,
                balanced,
                uploaded: 0,
            },
        );
    }

    /// Reverses an approved transaction because the terminal could not complete it (reason 96),
    /// e.g. the card refused the host's approval. The reversal is durable before it is sent.
    ///
    /// Only a sale, pre-authorisation or completion of the open batch that nothing was taken
    /// from (`original_used`, as for [`TxnRequest::original_used`]) can be reversed: reversing
    /// a sale with refunds would pay the refunds twice, and reversing a void or a cancel would
    /// bring back at the host what the journal keeps as voided.
    pub fn start_reverse_after_failure(&mut self, now: Now, record: TxnRecord, original_used: u64) {
        if self.op.is_some() {
            self.begin(now, Op::Reverse { record, seq: 0 });
            return;
        }
        let refused = if record.state != TxnState::Approved
            || !matches!(
                record.kind,
                TxnKind::Sale | TxnKind::PreAuth | TxnKind::Completion
            ) {
            Some("only an approved sale, pre-authorisation or completion can be reversed")
        } else if record.batch != self.counters.batch {
            Some("the transaction is not in the open batch: refund it instead")
        } else if original_used > 0 {
            Some("the transaction has refunds or a completion: it cannot be reversed")
        } else {
            None
        };
        if let Some(reason) = refused {
            self.emit(Event::Finished(Finished {
                command: Command::Reverse,
                result: Err(OpError::Rejected {
                    reason: reason.into(),
                }),
            }));
            return;
        }
        self.begin(now, Op::Reverse { record, seq: 0 });
    }

    fn validate(&self, req: &TxnRequest) -> Result<(), OpError> {
        let reject = |r: &str| {
            Err(OpError::Rejected {
                reason: r.to_owned(),
            })
        };
        if self.keys.is_none() {
            return Err(OpError::NotSignedIn);
        }
        let needs_original = matches!(
            req.kind,
            TxnKind::Void | TxnKind::Refund | TxnKind::Completion | TxnKind::PreAuthCancel
        );
        if needs_original != req.original.is_some() {
            return reject(if needs_original {
                "this transaction needs the original"
            } else {
                "this transaction takes no original"
            });
        }
        if !needs_original && req.card.is_none() {
            return reject("card data required");
        }
        if req.kind != TxnKind::Balance
            && !matches!(req.kind, TxnKind::Void | TxnKind::PreAuthCancel)
            && req.amount == 0
        {
            return reject("amount must be greater than zero");
        }
        if req.amount > 999_999_999_999 {
            return reject("amount exceeds 12 digits");
        }
        if let Some(o) = &req.original {
            match req.kind {
                TxnKind::Void => {
                    if !matches!(o.kind, TxnKind::Sale | TxnKind::Completion) {
                        return reject("only a sale or completion can be voided");
                    }
                    if o.state != TxnState::Approved {
                        return reject("the original is not approved (or already voided/reversed)");
                    }
                    if o.batch != self.counters.batch {
                        return reject("the original is not in the open batch: refund it instead");
                    }
                    if req.original_used > 0 {
                        // Voiding returns the whole amount: on top of a refund, the customer
                        // would get more back than was paid.
                        return reject("the original has refunds: refund the rest instead");
                    }
                }
                TxnKind::Refund => {
                    if !matches!(o.kind, TxnKind::Sale | TxnKind::Completion) {
                        return reject("only a sale or completion can be refunded");
                    }
                    if o.state != TxnState::Approved {
                        return reject("the original is not approved (or was voided/reversed)");
                    }
                    if req.original_used.saturating_add(req.amount) > o.amount {
                        return reject("refunds would exceed the original amount");
                    }
                }
                TxnKind::Completion | TxnKind::PreAuthCancel => {
                    if o.kind != TxnKind::PreAuth || o.state != TxnState::Approved {
                        return reject("the original must be an approved pre-authorisation");
                    }
                    if req.original_used > 0 {
                        // One completion per pre-authorisation (a second one is refused by
                        // the host too: Q/CUP 006.6-2014 A.2, code 22), and a completed one
                        // can no longer be cancelled: void the completion instead.
                        return reject("the pre-authorisation is already completed");
                    }
                    if req.kind == TxnKind::Completion && req.amount > o.amount {
                        return reject("completion exceeds the pre-authorised amount");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- stepping

    fn armed_pending(&self) -> Option<&PendingItem> {
        self.pending.iter().find(|p| p.armed)
    }

    /// Advances the current command as far as it goes without waiting.
    fn step(&mut self, now: Now) {
        let Some((_, phase)) = &self.op else { return };
        match phase {
            Phase::Drain { .. } => {
                if let Some(item) = self.armed_pending().cloned() {
                    self.send_pending(now, &item);
                } else {
                    if let Some((_, p)) = &mut self.op {
                        *p = Phase::Main;
                    }
                    self.step(now);
                }
            }
            Phase::Main => self.run_main(now),
            Phase::ReverseMain => self.send_main_reversal(now),
        }
    }

    fn mak(&self) -> Option<&TdesKey> {
        self.keys.as_ref().map(|k| &k.mak)
    }

    fn transmit(
        &mut self,
        now: Now,
        purpose: Purpose,
        msg: &Message,
        mac: bool,
        label: MsgType,
        reference: Option<String>,
    ) -> bool {
        let sealed = proto::seal(&self.cfg.profile, self.mak(), msg, mac);
        match (sealed, Expectation::of(msg, mac)) {
            (Ok(bytes), Some(expect)) => {
                self.emit(Event::Sending {
                    msg: label,
                    mti: msg.mti,
                    reference,
                });
                self.out.push_back(Output::Transmit(bytes));
                self.wait = Some(Wait {
                    purpose,
                    expect,
                    deadline: now.mono_ms.saturating_add(self.cfg.response_timeout_ms),
                });
                true
            }
            (Err(e), _) => {
                self.finish(Err(OpError::Proto(e.to_string())));
                false
            }
            (_, None) => {
                self.finish(Err(OpError::Proto(
                    "request has no STAN or response MTI".into(),
                )));
                false
            }
        }
    }

    fn send_pending(&mut self, now: Now, item: &PendingItem) {
        let Ok(mut msg) = self.cfg.profile.dialect.unpack(&item.message) else {
            // A stored message that no longer decodes cannot be delivered; keep it for support.
            log::error!(
                "pending {} for {} does not decode; held",
                item.kind.as_str(),
                item.reference
            );
            if let Some(p) = self.pending.iter_mut().find(|p| p.seq == item.seq) {
                p.armed = false;
                let p = p.clone();
                self.commit(vec![JournalOp::PutPending(p)]);
            }
            self.step(now);
            return;
        };
        let label = match item.kind {
            PendingKind::Reversal => {
                if let Some(r) = item.reason {
                    proto::set_reversal_reason(&mut msg, r);
                }
                self.emit(Event::ReversalSent {
                    reference: item.reference.clone(),
                    reason: item.reason.unwrap_or(ReversalReason::NoResponse),
                    attempt: item.attempts + 1,
                });
                MsgType::Reversal
            }
            PendingKind::Advice => {
                if item.attempts > 0 {
                    msg.mti = Mti::ADVICE_REPEAT;
                }
                MsgType::Txn(TxnKind::Refund)
            }
            PendingKind::Notice => {
                if msg.mti == Mti(620) {
                    MsgType::ScriptAdvice
                } else {
                    MsgType::TcUpload
                }
            }
        };
        self.transmit(
            now,
            Purpose::Pending { seq: item.seq },
            &msg,
            true,
            label,
            Some(item.reference.clone()),
        );
    }

    fn run_main(&mut self, now: Now) {
        let Some((op, _)) = self.op.take() else {
            return;
        };
        match op {
            Op::SignIn { operator } => {
                self.op = Some((
                    Op::SignIn {
                        operator: operator.clone(),
                    },
                    Phase::Main,
                ));
                let stan = self.counters.next_stan();
                let ctx = Ctx {
                    stan,
                    batch: self.counters.batch,
                    operator: Some(&operator),
                    ..Ctx::default()
                };
                self.admin(now, MsgType::SignIn, &ctx);
            }
            Op::SignOff => {
                self.op = Some((Op::SignOff, Phase::Main));
                let stan = self.counters.next_stan();
                let ctx = Ctx {
                    stan,
                    batch: self.counters.batch,
                    ..Ctx::default()
                };
                self.admin(now, MsgType::SignOff, &ctx);
            }
            Op::Echo => {
                self.op = Some((Op::Echo, Phase::Main));
                let stan = self.counters.next_stan();
                let ctx = Ctx {
                    stan,
                    batch: self.counters.batch,
                    ..Ctx::default()
                };
                self.admin(now, MsgType::Echo, &ctx);
            }
            Op::Recover { delivered } => {
                self.op = Some((Op::Recover { delivered }, Phase::Main));
                let remaining = u32::try_from(self.pending.iter().filter(|p| p.armed).count())
                    .unwrap_or(u32::MAX);
                self.finish(Ok(Outcome::Recovered {
                    delivered,
                    remaining,
                }));
            }
            Op::Txn { req, .. } => self.start_main_txn(now, *req),
            Op::Settle {
                batch,
                records,
                totals,
                step,
                balanced,
                uploaded,
            } => {
                self.op = Some((
                    Op::Settle {
                        batch,
                        records,
                        totals,
                        step,
                        balanced,
                        uploaded,
                    },
                    Phase::Main,
                ));
                self.settle_step(now);
            }
            Op::Reverse { record, .. } => self.start_reverse(now, record),
            Op::Params(d) => self.params_send(now, d),
        }
    }

    fn admin(&mut self, now: Now, msg: MsgType, ctx: &Ctx<'_>) {
        let counters = self.counters;
        self.commit(vec![JournalOp::PutCounters(counters)]);
        match proto::build(&self.cfg.profile, &self.cfg.identity, msg, ctx) {
            Ok(m) => {
                self.transmit(now, Purpose::Main, &m, false, msg, None);
            }
            Err(e) => self.finish(Err(OpError::Proto(e.to_string()))),
        }
    }

    fn start_main_txn(&mut self, now: Now, req: TxnRequest) {
        let saved = self.counters;
        let stan = self.counters.next_stan();
        let batch = self.counters.batch;
        let amount = match req.kind {
            TxnKind::Void | TxnKind::PreAuthCancel => {
                req.original.as_ref().map_or(req.amount, |o| o.amount)
            }
            _ => req.amount,
        };
        let ctx = Ctx {
            stan,
            batch,
            amount: (req.kind != TxnKind::Balance).then_some(amount),
            local: Some(now.local),
            card: req.card.as_ref(),
            original: req.original.as_ref(),
            operator: req.operator.as_deref(),
            field48: None,
        };
        // Build and pack once now so that bad input fails before anything is journaled.
        let profile = &self.cfg.profile;
        let built = proto::build(profile, &self.cfg.identity, MsgType::Txn(req.kind), &ctx)
            .and_then(|m| {
                let plain = self
                    .cfg
                    .profile
                    .dialect
                    .pack(&m)
                    .map_err(|e| proto::ProtoError::Encode(e.to_string()))?;
                let reversal = if req.kind.needs_reversal() {
                    let r = proto::reversal_of(profile, &m, ReversalReason::NoResponse);
                    Some(
                        self.cfg
                            .profile
                            .dialect
                            .pack(&r)
                            .map_err(|e| proto::ProtoError::Encode(e.to_string()))?,
                    )
                } else {
                    None
                };
                Ok((m, plain, reversal))
            });
        let (msg, packed_plain, reversal_bytes) = match built {
            Ok(b) => b,
            Err(e) => {
                self.counters = saved;
                self.op = Some((
                    Op::Txn {
                        req: Box::new(req),
                        record: None,
                        reversal_seq: None,
                    },
                    Phase::Main,
                ));
                self.finish(Err(OpError::Proto(e.to_string())));
                return;
            }
        };
        let record = TxnRecord {
            reference: reference(batch, stan),
            kind: req.kind,
            state: if req.kind.is_advice() {
                TxnState::Queued
            } else {
                TxnState::Sending
            },
            amount,
            currency: self.cfg.identity.currency.clone(),
            stan,
            batch,
            local_time: now.local.hhmmss(),
            local_date: now.local.mmdd(),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: req.original.as_ref().map(|o| o.reference.clone()),
            idempotency_key: req.idempotency_key.clone(),
            operator: req.operator.clone(),
            pan_masked: req
                .card
                .as_ref()
                .and_then(CardData::effective_pan)
                .map(|p| p.masked()),
            entry_mode: req.card.as_ref().map(|c| c.entry_mode.clone()),
            created_at_ms: now.unix_ms,
            updated_at_ms: now.unix_ms,
        };
        // An advice is delivered by the pending machinery; a reversible request gets an unarmed
        // reversal that only an ambiguous outcome arms.
        let item = if req.kind.is_advice() {
            Some(PendingItem {
                seq: self.counters.next_seq(),
                kind: PendingKind::Advice,
                reference: record.reference.clone(),
                reason: None,
                message: packed_plain,
                attempts: 0,
                armed: true,
                not_before_unix_ms: 0,
            })
        } else {
            reversal_bytes.map(|message| PendingItem {
                seq: self.counters.next_seq(),
                kind: PendingKind::Reversal,
                reference: record.reference.clone(),
                reason: Some(ReversalReason::NoResponse),
                message,
                attempts: 0,
                armed: false,
                not_before_unix_ms: 0,
            })
        };
        let mut ops = vec![
            JournalOp::PutCounters(self.counters),
            JournalOp::PutTxn(record.clone()),
        ];
        let seq = item.as_ref().map(|i| i.seq);
        if let Some(item) = item {
            ops.push(JournalOp::PutPending(item.clone()));
            self.pending.push(item);
        }
        self.commit(ops);
        let advice = req.kind.is_advice();
        let label = MsgType::Txn(req.kind);
        let reference = Some(record.reference.clone());
        let phase = if advice {
            Phase::Drain { tries: 0 }
        } else {
            Phase::Main
        };
        self.op = Some((
            Op::Txn {
                req: Box::new(req),
                record: Some(record),
                reversal_seq: seq,
            },
            phase,
        ));
        if advice {
            self.step(now);
        } else {
            self.transmit(now, Purpose::Main, &msg, true, label, reference);
        }
    }

    fn start_reverse(&mut self, now: Now, record: TxnRecord) {
        let Some(item) = self
            .pending
            .iter()
            .find(|p| p.reference == record.reference && p.kind == PendingKind::Reversal)
            .cloned()
            .or_else(|| self.reversal_from_record(&record))
        else {
            self.op = Some((Op::Reverse { record, seq: 0 }, Phase::Main));
            self.finish(Err(OpError::Rejected {
                reason: "no stored request to reverse".into(),
            }));
            return;
        };
        let mut item = item;
        item.armed = true;
        item.reason = Some(ReversalReason::TerminalFailure);
        let mut rec = record;
        rec.state = TxnState::Reversing;
        let seq = item.seq;
        self.upsert_pending(item.clone());
        self.commit(vec![
            JournalOp::PutCounters(self.counters),
            JournalOp::PutPending(item),
            JournalOp::PutTxn(rec.clone()),
        ]);
        self.op = Some((Op::Reverse { record: rec, seq }, Phase::Drain { tries: 0 }));
        self.step(now);
    }

    /// Rebuilds a reversal for a transaction whose request is no longer stored: the host finds
    /// the original by terminal, STAN, date and amount; no card data is needed.
    fn reversal_from_record(&mut self, record: &TxnRecord) -> Option<PendingItem> {
        let msg =
            proto::reversal_from_record(&self.cfg.profile, &self.cfg.identity, record).ok()?;
        let bytes = self.cfg.profile.dialect.pack(&msg).ok()?;
        let seq = self.counters.next_seq();
        Some(PendingItem {
            seq,
            kind: PendingKind::Reversal,
            reference: record.reference.clone(),
            reason: Some(ReversalReason::TerminalFailure),
            message: bytes,
            attempts: 0,
            armed: true,
            not_before_unix_ms: 0,
        })
    }

    fn upsert_pending(&mut self, item: PendingItem) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == item.seq) {
            *p = item;
        } else {
            self.pending.push(item);
            self.pending.sort_by_key(|p| p.seq);
        }
    }

    fn send_main_reversal(&mut self, now: Now) {
        let Some((
            Op::Txn {
                reversal_seq: Some(seq),
                ..
            },
            Phase::ReverseMain,
        )) = &self.op
        else {
            return;
        };
        let seq = *seq;
        if let Some(item) = self.pending.iter().find(|p| p.seq == seq).cloned() {
            let Ok(mut msg) = self.cfg.profile.dialect.unpack(&item.message) else {
                self.finish(Err(OpError::Proto(
                    "stored reversal does not decode".into(),
                )));
                return;
            };
            let reason = item.reason.unwrap_or(ReversalReason::NoResponse);
            proto::set_reversal_reason(&mut msg, reason);
            self.emit(Event::ReversalSent {
                reference: item.reference.clone(),
                reason,
                attempt: item.attempts + 1,
            });
            self.transmit(
                now,
                Purpose::ReverseMain,
                &msg,
                true,
                MsgType::Reversal,
                Some(item.reference.clone()),
            );
        }
    }

    // ---------------------------------------------------------------- settlement

    fn settle_step(&mut self, now: Now) {
        let Some((
            Op::Settle {
                batch,
                records,
                totals,
                step,
                ..
            },
            _,
        )) = &mut self.op
        else {
            return;
        };
        let (batch, totals) = (*batch, *totals);
        let uploads: Vec<TxnRecord> = records.iter().filter(|r| uploadable(r)).cloned().collect();
        // Past the last record, the upload step becomes end-of-batch.
        if let SettlementStep::Upload { next } = *step
            && next as usize >= uploads.len()
        {
            *step = SettlementStep::EndOfBatch;
        }
        let step = *step;
        let stan = self.counters.next_stan();
        let mut ops = vec![JournalOp::PutCounters(self.counters)];
        let progress = SettlementProgress { batch, step };
        if self.settlement.as_ref() != Some(&progress) {
            self.settlement = Some(progress.clone());
            ops.push(JournalOp::PutSettlement(progress));
        }
        self.commit(ops);
        let id = &self.cfg.identity;
        let profile = &self.cfg.profile;
        let built = match step {
            SettlementStep::Totals => {
                let ctx = Ctx {
                    stan,
                    batch,
                    field48: Some(proto::settlement_field48(&totals)),
                    ..Ctx::default()
                };
                proto::build(profile, id, MsgType::Settlement, &ctx)
                    .map(|m| (m, MsgType::Settlement))
            }
            SettlementStep::Upload { next } => {
                let Some(rec) = uploads.get(next as usize) else {
                    self.finish(Err(OpError::Proto("upload index out of range".into())));
                    return;
                };
                let ctx = Ctx {
                    stan,
                    batch,
                    amount: Some(rec.amount),
                    original: Some(rec),
                    ..Ctx::default()
                };
                proto::build(profile, id, MsgType::BatchUpload, &ctx).map(|mut m| {
                    // Upload records carry the original's processing code and date/time.
                    if let Some(pc) = profile
                        .template(MsgType::Txn(rec.kind))
                        .and_then(|t| t.processing_code.clone())
                    {
                        m.set(3, pc.as_bytes().to_vec());
                    }
                    m.set(12, rec.local_time.clone().into_bytes());
                    m.set(13, rec.local_date.clone().into_bytes());
                    (m, MsgType::BatchUpload)
                })
            }
            SettlementStep::EndOfBatch => {
                let ctx = Ctx {
                    stan,
                    batch,
                    field48: Some(format!("{:04}", uploads.len())),
                    ..Ctx::default()
                };
                proto::build(profile, id, MsgType::EndOfBatch, &ctx)
                    .map(|m| (m, MsgType::EndOfBatch))
            }
        };
        match built {
            Ok((m, label)) => {
                self.transmit(now, Purpose::Main, &m, true, label, None);
            }
            Err(e) => self.finish(Err(OpError::Proto(e.to_string()))),
        }
    }

    fn settle_reply(&mut self, now: Now, reply: Reply) {
        let Some((
            Op::Settle {
                batch,
                totals,
                step,
                balanced,
                uploaded,
                ..
            },
            _,
        )) = &mut self.op
        else {
            return;
        };
        match *step {
            SettlementStep::Totals => {
                if reply.response_code != "00" {
                    let code = reply.response_code;
                    self.finish(Err(OpError::HostRefused { code }));
                    return;
                }
                match SettlementResult::from_field48(reply.field48.as_deref()) {
                    SettlementResult::Balanced => {
                        let (b, t) = (*batch, *totals);
                        self.close_batch(b, true, t, 0);
                    }
                    SettlementResult::NotBalanced => {
                        *balanced = false;
                        *step = SettlementStep::Upload { next: 0 };
                        self.settle_step(now);
                    }
                    SettlementResult::Error => {
                        self.finish(Err(OpError::HostRefused {
                            code: "settlement error".into(),
                        }));
                    }
                }
            }
            SettlementStep::Upload { next } => {
                if reply.response_code != "00" {
                    // The host did not take this record: stop here; the next settlement
                    // resumes with the same record (the step is journaled).
                    let code = reply.response_code;
                    self.finish(Err(OpError::HostRefused { code }));
                    return;
                }
                *uploaded += 1;
                *step = SettlementStep::Upload { next: next + 1 };
                self.settle_step(now);
            }
            SettlementStep::EndOfBatch => {
                if reply.response_code != "00" {
                    // The batch stays open: closing it would leave records the host never took.
                    let code = reply.response_code;
                    self.finish(Err(OpError::HostRefused { code }));
                    return;
                }
                let (b, bal, t, u) = (*batch, *balanced, *totals, *uploaded);
                self.close_batch(b, bal, t, u);
            }
        }
    }

    /// A pending item of a settlement's batch was delivered before the totals went out: the
    /// settlement counts and uploads the record in its final state (a refund the host declined
    /// is neither a credit nor uploaded).
    fn settlement_sees(&mut self, reference: &str, state: TxnState) {
        if let Some((
            Op::Settle {
                batch,
                records,
                totals,
                ..
            },
            _,
        )) = &mut self.op
            && let Some(r) = records.iter_mut().find(|r| r.reference == reference)
        {
            r.state = state;
            *totals = BatchTotals::of(*batch, records.iter());
        }
    }

    fn close_batch(&mut self, batch: u32, balanced: bool, totals: BatchTotals, uploaded: u32) {
        self.counters.batch = if batch >= 999_999 { 1 } else { batch + 1 };
        self.settlement = None;
        self.commit(vec![
            JournalOp::PutCounters(self.counters),
            JournalOp::ClearSettlement,
        ]);
        self.finish(Ok(Outcome::Settled {
            batch,
            balanced,
            totals,
            uploaded,
        }));
    }

    // ---------------------------------------------------------------- input

    /// Handles one frame body received from the host.
    pub fn handle_host_frame(&mut self, now: Now, frame: &[u8]) {
        let Some(wait) = &self.wait else {
            log::info!(
                "frame received while nothing is awaited: ignored ({} bytes)",
                frame.len()
            );
            self.emit(Event::Ignored {
                why: "no request in flight",
            });
            return;
        };
        let m = proto::check_response(
            &self.cfg.profile,
            &self.cfg.identity,
            self.mak(),
            frame,
            &wait.expect,
        );
        let purpose = wait.purpose;
        match m {
            Match::Ok(reply) => {
                self.wait = None;
                self.on_reply(now, purpose, reply);
            }
            Match::NotOurs => {
                log::info!("late, duplicate or foreign response ignored");
                self.emit(Event::Ignored {
                    why: "response does not match the request in flight",
                });
            }
            Match::Garbage => {
                log::warn!(
                    "undecodable frame from host ignored ({} bytes)",
                    frame.len()
                );
                self.emit(Event::Ignored {
                    why: "frame does not decode",
                });
            }
            Match::BadMac => {
                self.wait = None;
                log::warn!("response MAC did not verify");
                self.on_failure(now, purpose, ReversalReason::BadMac);
            }
            Match::Inconsistent(why) => {
                self.wait = None;
                log::warn!("response inconsistent with the request: {why}");
                self.on_failure(now, purpose, ReversalReason::Other);
            }
        }
    }

    /// Whether the engine waits for a contact chip card's final decision
    /// ([`Output::CompleteCard`]).
    pub fn awaits_card(&self) -> bool {
        self.card_wait.is_some()
    }

    /// The card's final decision after [`Output::CompleteCard`]. `Accepted` makes the approval
    /// final and queues the TC upload (and the script results) as notices; `Declined` and
    /// `Failed` arm the reversal (reason 96, the terminal could not complete an approved
    /// transaction) and send it.
    pub fn handle_card_decision(&mut self, now: Now, verdict: CardVerdict) {
        let Some(reply) = self.card_wait.take() else {
            log::warn!("card decision while no card decides: ignored");
            return;
        };
        let scripts = match &verdict {
            CardVerdict::Accepted { script_results, .. }
            | CardVerdict::Declined { script_results } => script_results.clone(),
            CardVerdict::Failed => Vec::new(),
        };
        let Some((
            Op::Txn {
                record: Some(rec),
                req,
                reversal_seq,
            },
            _,
        )) = &mut self.op
        else {
            return;
        };
        let card = req.card.clone().unwrap_or_default();
        let mut notices = Vec::new();
        if !scripts.is_empty() {
            notices.push((MsgType::ScriptAdvice, scripts));
        }
        match verdict {
            CardVerdict::Accepted { icc, .. } => {
                rec.state = TxnState::Approved;
                rec.updated_at_ms = now.unix_ms;
                let record = rec.clone();
                let mut ops = vec![JournalOp::PutTxn(record.clone())];
                if let Some(seq) = reversal_seq.take() {
                    self.pending.retain(|p| p.seq != seq);
                    ops.push(JournalOp::RemovePending { seq });
                }
                notices.insert(0, (MsgType::TcUpload, icc));
                for (msg, icc) in notices {
                    if let Some(item) = self.notice(msg, &record, &card, icc) {
                        ops.push(JournalOp::PutPending(item.clone()));
                        self.pending.push(item);
                    }
                }
                ops.push(JournalOp::PutCounters(self.counters));
                self.commit(ops);
                self.finish(Ok(Outcome::Txn {
                    record,
                    reply: Some(reply),
                    reversal_pending: false,
                }));
            }
            CardVerdict::Declined { .. } | CardVerdict::Failed => {
                let record = rec.clone();
                self.card_declined_reply = Some(reply);
                let mut ops = Vec::new();
                for (msg, icc) in notices {
                    if let Some(item) = self.notice(msg, &record, &card, icc) {
                        ops.push(JournalOp::PutPending(item.clone()));
                        self.pending.push(item);
                    }
                }
                if !ops.is_empty() {
                    ops.push(JournalOp::PutCounters(self.counters));
                    self.commit(ops);
                }
                self.on_failure(now, Purpose::Main, ReversalReason::TerminalFailure);
            }
        }
    }

    /// A TC upload or script-result notice about `record`, carrying `icc` in field 55; `None`
    /// (logged) when the profile cannot build it.
    fn notice(
        &mut self,
        msg: MsgType,
        record: &TxnRecord,
        card: &CardData,
        icc: Vec<u8>,
    ) -> Option<PendingItem> {
        let saved = self.counters;
        let stan = self.counters.next_stan();
        let card = CardData {
            icc: Some(smartpos_types::SecretBytes::new(icc)),
            pin_block: None,
            ..card.clone()
        };
        let ctx = Ctx {
            stan,
            batch: record.batch,
            amount: Some(record.amount),
            local: None,
            card: Some(&card),
            original: Some(record),
            operator: None,
            field48: None,
        };
        let built = proto::build(&self.cfg.profile, &self.cfg.identity, msg, &ctx)
            .map_err(|e| e.to_string())
            .and_then(|m| self.cfg.profile.dialect.pack(&m).map_err(|e| e.to_string()));
        match built {
            Ok(message) => Some(PendingItem {
                seq: self.counters.next_seq(),
                kind: PendingKind::Notice,
                reference: record.reference.clone(),
                reason: None,
                message,
                attempts: 0,
                armed: true,
                not_before_unix_ms: 0,
            }),
            Err(e) => {
                self.counters = saved;
                log::warn!("{msg:?} for {} not built: {e}", record.reference);
                None
            }
        }
    }

    /// Handles the response timer.
    pub fn handle_timeout(&mut self, now: Now) {
        let Some(wait) = &self.wait else { return };
        if now.mono_ms < wait.deadline {
            return;
        }
        let purpose = wait.purpose;
        self.wait = None;
        log::warn!("no response within {} ms", self.cfg.response_timeout_ms);
        self.on_failure(now, purpose, ReversalReason::NoResponse);
    }

    /// Handles a link failure. `request_may_have_reached_host` is false only when the request
    /// in flight certainly never left (the connection could not be opened).
    pub fn handle_link_error(&mut self, now: Now, request_may_have_reached_host: bool) {
        let Some(wait) = &self.wait else { return };
        let purpose = wait.purpose;
        self.wait = None;
        if !request_may_have_reached_host && purpose == Purpose::Main {
            self.on_not_sent(now);
            return;
        }
        self.on_failure(now, purpose, ReversalReason::NoResponse);
    }

    fn on_not_sent(&mut self, _now: Now) {
        let Some((op, _)) = &mut self.op else { return };
        match op {
            Op::Txn {
                record: Some(rec),
                reversal_seq,
                ..
            } if !rec.kind.is_advice() => {
                rec.state = TxnState::NotSent;
                rec.response_code = None;
                let mut ops = vec![JournalOp::PutTxn(rec.clone())];
                if let Some(seq) = reversal_seq.take() {
                    self.pending.retain(|p| p.seq != seq);
                    ops.push(JournalOp::RemovePending { seq });
                }
                self.commit(ops);
                self.finish(Err(OpError::NotSent));
            }
            Op::Settle { .. } | Op::SignIn { .. } | Op::SignOff | Op::Echo => {
                self.finish(Err(OpError::NotSent))
            }
            _ => self.finish(Err(OpError::NotSent)),
        }
    }

    fn on_reply(&mut self, now: Now, purpose: Purpose, reply: Reply) {
        match purpose {
            Purpose::Pending { seq } => self.pending_acknowledged(now, seq, reply),
            Purpose::ReverseMain => {
                let seq = match &self.op {
                    Some((
                        Op::Txn {
                            reversal_seq: Some(s),
                            ..
                        },
                        _,
                    )) => *s,
                    _ => return,
                };
                if !proto::closes_reversal(&reply.response_code) {
                    // Answered but not done (96, 91, A0, ...): still charged. Sent again.
                    log::warn!(
                        "reversal answered {}: not processed, kept",
                        reply.response_code
                    );
                    self.on_failure(now, Purpose::ReverseMain, ReversalReason::NoResponse);
                    return;
                }
                let rec = self.reversal_acked(now, seq);
                let reply_for_app = None;
                match rec {
                    Some(record) => self.finish(Ok(Outcome::Txn {
                        record,
                        reply: reply_for_app,
                        reversal_pending: false,
                    })),
                    None => self.finish(Err(OpError::Proto(
                        "reversal acknowledged for unknown record".into(),
                    ))),
                }
            }
            Purpose::Main => self.main_reply(now, reply),
        }
    }

    /// Records that the host acknowledged reversal `seq`; returns the updated transaction.
    fn reversal_acked(&mut self, now: Now, seq: u64) -> Option<TxnRecord> {
        let item = self.pending.iter().find(|p| p.seq == seq).cloned()?;
        self.pending.retain(|p| p.seq != seq);
        let mut ops = vec![JournalOp::RemovePending { seq }];
        let rec = match &mut self.op {
            Some((
                Op::Txn {
                    record: Some(r), ..
                },
                _,
            ))
            | Some((Op::Reverse { record: r, .. }, _))
                if r.reference == item.reference =>
            {
                r.state = TxnState::Reversed;
                r.updated_at_ms = now.unix_ms;
                Some(r.clone())
            }
            _ => None,
        };
        match &rec {
            Some(r) => ops.push(JournalOp::PutTxn(r.clone())),
            None => {
                ops.push(JournalOp::UpdateState(StateUpdate {
                    reference: item.reference.clone(),
                    state: TxnState::Reversed,
                    response_code: None,
                    rrn: None,
                    auth_code: None,
                    at_ms: now.unix_ms,
                }));
                self.settlement_sees(&item.reference, TxnState::Reversed);
            }
        }
        self.commit(ops);
        self.emit(Event::PendingDelivered {
            reference: item.reference,
            kind: PendingKind::Reversal,
        });
        rec
    }

    fn pending_acknowledged(&mut self, now: Now, seq: u64, reply: Reply) {
        let Some(item) = self.pending.iter().find(|p| p.seq == seq).cloned() else {
            return;
        };
        let kept = match item.kind {
            PendingKind::Reversal => !proto::closes_reversal(&reply.response_code),
            PendingKind::Advice | PendingKind::Notice => proto::is_temporary(&reply.response_code),
        };
        if kept {
            // The host did not process it (96, 91, A0, ...): a failed attempt, with back-off.
            log::warn!(
                "{} for {} answered {}: not processed, kept",
                item.kind.as_str(),
                item.reference,
                reply.response_code
            );
            self.pending_failed(now, seq);
            return;
        }
        match item.kind {
            PendingKind::Notice => {
                // A TC upload or script result changes no money and no record.
                if reply.response_code != "00" {
                    log::warn!(
                        "notice for {} answered {}: dropped",
                        item.reference,
                        reply.response_code
                    );
                }
                self.pending.retain(|p| p.seq != seq);
                self.commit(vec![JournalOp::RemovePending { seq }]);
                self.emit(Event::PendingDelivered {
                    reference: item.reference.clone(),
                    kind: PendingKind::Notice,
                });
            }
            PendingKind::Reversal => {
                let rec = self.reversal_acked(now, seq);
                if let Some((Op::Reverse { seq: s, .. }, _)) = &self.op
                    && *s == seq
                    && let Some(record) = rec
                {
                    self.finish(Ok(Outcome::Txn {
                        record,
                        reply: Some(reply),
                        reversal_pending: false,
                    }));
                    return;
                }
            }
            PendingKind::Advice => {
                self.pending.retain(|p| p.seq != seq);
                let state = if proto::is_approval(&reply.response_code) {
                    TxnState::Approved
                } else {
                    TxnState::Declined
                };
                let mine = matches!(&self.op, Some((Op::Txn { reversal_seq: Some(s), .. }, _)) if *s == seq);
                let mut ops = vec![JournalOp::RemovePending { seq }];
                let mut finished = None;
                if mine {
                    if let Some((
                        Op::Txn {
                            record: Some(r), ..
                        },
                        _,
                    )) = &mut self.op
                    {
                        r.state = state;
                        r.rrn = reply.rrn.clone();
                        r.auth_code = reply.auth_code.clone();
                        r.response_code = Some(reply.response_code.clone());
                        r.updated_at_ms = now.unix_ms;
                        ops.push(JournalOp::PutTxn(r.clone()));
                        finished = Some(r.clone());
                    }
                } else {
                    self.settlement_sees(&item.reference, state);
                    ops.push(JournalOp::UpdateState(StateUpdate {
                        reference: item.reference.clone(),
                        state,
                        response_code: Some(reply.response_code.clone()),
                        rrn: reply.rrn.clone(),
                        auth_code: reply.auth_code.clone(),
                        at_ms: now.unix_ms,
                    }));
                }
                self.commit(ops);
                self.emit(Event::PendingDelivered {
                    reference: item.reference.clone(),
                    kind: PendingKind::Advice,
                });
                if let Some(record) = finished {
                    self.finish(Ok(Outcome::Txn {
                        record,
                        reply: Some(reply),
                        reversal_pending: false,
                    }));
                    return;
                }
            }
        }
        if let Some((Op::Recover { delivered }, _)) = &mut self.op {
            *delivered += 1;
        }
        if let Some((_, Phase::Drain { tries })) = &mut self.op {
            *tries = 0;
        }
        self.step(now);
    }

    fn main_reply(&mut self, now: Now, reply: Reply) {
        let Some((op, _)) = &mut self.op else { return };
        match op {
            Op::SignIn { .. } => {
                if reply.response_code != "00" {
                    self.finish(Err(OpError::HostRefused {
                        code: reply.response_code,
                    }));
                    return;
                }
                let Some(block) = reply
                    .field62
                    .as_deref()
                    .and_then(|f| self.cfg.profile.decode_key_block(f))
                else {
                    self.finish(Err(OpError::KeyBlock {
                        reason: "no key block in the response",
                    }));
                    return;
                };
                match self.cfg.profile.keys.unwrap(&self.tmk, &block) {
                    Ok(keys) => {
                        let host_batch = reply
                            .field60
                            .as_deref()
                            .and_then(|f| f.get(2..8))
                            .and_then(|b| b.parse::<u32>().ok());
                        if let Some(hb) = host_batch {
                            // Batch numbers never repeat: adopt the host's only if it is ahead.
                            if hb > self.counters.batch && self.settlement.is_none() {
                                self.counters.batch = hb;
                            }
                        }
                        self.keys = Some(keys);
                        self.commit(vec![
                            JournalOp::PutWrappedKeys { block },
                            JournalOp::PutCounters(self.counters),
                        ]);
                        let batch = self.counters.batch;
                        self.finish(Ok(Outcome::SignedIn { batch }));
                    }
                    Err(e) => self.finish(Err(e)),
                }
            }
            Op::SignOff | Op::Echo => {
                if reply.response_code == "00" {
                    if matches!(op, Op::SignOff) {
                        self.keys = None;
                    }
                    self.finish(Ok(Outcome::Acknowledged));
                } else {
                    self.finish(Err(OpError::HostRefused {
                        code: reply.response_code,
                    }));
                }
            }
            Op::Settle { .. } => self.settle_reply(now, reply),
            Op::Params(_) => self.params_reply(now, reply),
            Op::Txn {
                record: Some(rec),
                reversal_seq,
                req,
                ..
            } => {
                let approved = proto::is_approval(&reply.response_code);
                if reversal_seq.is_some()
                    && proto::reversed_as_possible_approval(req.kind, &reply.response_code)
                {
                    // A code outside the table might be an approval of the host's own: the
                    // customer may be charged, so it is reversed like a malformed answer.
                    log::warn!("unknown response code {}: reversed", reply.response_code);
                    rec.response_code = Some(reply.response_code.clone());
                    self.on_failure(now, Purpose::Main, ReversalReason::Other);
                    return;
                }
                rec.state = if approved {
                    TxnState::Approved
                } else {
                    TxnState::Declined
                };
                rec.rrn = reply.rrn.clone();
                rec.auth_code = reply.auth_code.clone();
                rec.response_code = Some(reply.response_code.clone());
                rec.updated_at_ms = now.unix_ms;
                if approved
                    && reversal_seq.is_some()
                    && req.card.as_ref().is_some_and(|c| c.card_decides)
                {
                    // A contact chip card decides last: the approval is recorded with the
                    // request still "sending" and its reversal in place, so that a crash or a
                    // card that declines leaves the reversal to be armed.
                    rec.state = TxnState::Sending;
                    let reference = rec.reference.clone();
                    let ops = vec![JournalOp::PutTxn(rec.clone())];
                    self.commit(ops);
                    self.card_wait = Some(reply.clone());
                    self.out
                        .push_back(Output::CompleteCard(CardCompletion { reference, reply }));
                    return;
                }
                let mut ops = vec![JournalOp::PutTxn(rec.clone())];
                if let Some(seq) = reversal_seq.take() {
                    self.pending.retain(|p| p.seq != seq);
                    ops.push(JournalOp::RemovePending { seq });
                }
                if approved
                    && matches!(req.kind, TxnKind::Void | TxnKind::PreAuthCancel)
                    && let Some(mut orig) = req.original.clone()
                {
                    orig.state = TxnState::Voided;
                    orig.updated_at_ms = now.unix_ms;
                    ops.push(JournalOp::PutTxn(orig));
                }
                let record = rec.clone();
                self.commit(ops);
                self.finish(Ok(Outcome::Txn {
                    record,
                    reply: Some(reply),
                    reversal_pending: false,
                }));
            }
            Op::Txn { record: None, .. } | Op::Recover { .. } | Op::Reverse { .. } => {}
        }
    }

    fn on_failure(&mut self, now: Now, purpose: Purpose, reason: ReversalReason) {
        match purpose {
            Purpose::Pending { seq } => self.pending_failed(now, seq),
            Purpose::ReverseMain => {
                let seq = match &self.op {
                    Some((
                        Op::Txn {
                            reversal_seq: Some(s),
                            ..
                        },
                        _,
                    )) => *s,
                    _ => return,
                };
                let attempts = self.bump_attempts(now, seq);
                if attempts < self.cfg.delivery_attempts {
                    if let Some((_, p)) = &mut self.op {
                        *p = Phase::ReverseMain;
                    }
                    self.send_main_reversal(now);
                } else if let Some((
                    Op::Txn {
                        record: Some(r), ..
                    },
                    _,
                )) = &self.op
                {
                    let record = r.clone();
                    self.finish(Ok(Outcome::Txn {
                        record,
                        reply: None,
                        reversal_pending: true,
                    }));
                }
            }
            Purpose::Main => match &mut self.op {
                Some((
                    Op::Txn {
                        record: Some(rec),
                        reversal_seq: Some(seq),
                        ..
                    },
                    phase,
                )) => {
                    let seq = *seq;
                    rec.state = TxnState::Reversing;
                    rec.updated_at_ms = now.unix_ms;
                    let rec = rec.clone();
                    *phase = Phase::ReverseMain;
                    let mut ops = vec![JournalOp::PutTxn(rec)];
                    if let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) {
                        p.armed = true;
                        p.reason = Some(reason);
                        ops.push(JournalOp::PutPending(p.clone()));
                    }
                    self.commit(ops);
                    self.send_main_reversal(now);
                }
                Some((
                    Op::Txn {
                        record: Some(rec), ..
                    },
                    _,
                )) => {
                    // Balance inquiry: nothing to reverse.
                    rec.state = TxnState::Declined;
                    rec.updated_at_ms = now.unix_ms;
                    let rec = rec.clone();
                    self.commit(vec![JournalOp::PutTxn(rec)]);
                    self.finish(Err(OpError::NoResponse));
                }
                _ => self.finish(Err(OpError::NoResponse)),
            },
        }
    }

    /// Counts a failed delivery attempt durably; returns the attempt count.
    fn bump_attempts(&mut self, now: Now, seq: u64) -> u32 {
        let cfg = self.cfg.clone();
        let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) else {
            return u32::MAX;
        };
        p.attempts = p.attempts.saturating_add(1);
        p.not_before_unix_ms = now.unix_ms.saturating_add(backoff(&cfg, p.attempts));
        let item = p.clone();
        self.commit(vec![JournalOp::PutPending(item.clone())]);
        item.attempts
    }

    fn pending_failed(&mut self, now: Now, seq: u64) {
        self.bump_attempts(now, seq);
        let limit = self.cfg.delivery_attempts;
        let tries = match &mut self.op {
            Some((_, Phase::Drain { tries })) => {
                *tries += 1;
                *tries
            }
            _ => return,
        };
        if tries < limit {
            self.step(now);
            return;
        }
        // The host cannot be reached: stop here. Nothing new goes out behind an undelivered item.
        let remaining =
            u32::try_from(self.pending.iter().filter(|p| p.armed).count()).unwrap_or(u32::MAX);
        match self.op.as_ref().map(|(o, _)| o) {
            Some(Op::Recover { delivered }) => {
                let delivered = *delivered;
                self.finish(Ok(Outcome::Recovered {
                    delivered,
                    remaining,
                }));
            }
            Some(Op::Txn {
                record: Some(rec),
                reversal_seq: Some(s),
                ..
            }) if rec.kind.is_advice() => {
                // The refund is recorded and queued; it will be forwarded later.
                let _ = s;
                let record = rec.clone();
                self.finish(Ok(Outcome::Txn {
                    record,
                    reply: None,
                    reversal_pending: false,
                }));
            }
            Some(Op::Reverse { record, .. }) => {
                let record = record.clone();
                self.finish(Ok(Outcome::Txn {
                    record,
                    reply: None,
                    reversal_pending: true,
                }));
            }
            _ => self.finish(Err(OpError::PendingUndelivered { count: remaining })),
        }
    }
}

/// Settlement uploads approved money-moving records (sales, completions, refunds).
fn uploadable(r: &TxnRecord) -> bool {
    matches!(
        (r.kind, r.state),
        (TxnKind::Sale | TxnKind::Completion, TxnState::Approved)
            | (TxnKind::Refund, TxnState::Approved | TxnState::Queued)
    )
}
