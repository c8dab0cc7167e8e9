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
//!
//! # Files
//! One state enum, [`State`], says what the running command waits for (its `Expect*` values,
//! named as rustls names its handshake states); each input is handed to the state that waits
//! for it. The operations live in their own files:
//! - `types.rs`: the vocabulary (settings, commands, outputs, events, outcomes, errors).
//! - `admin.rs`: sign-in (working keys), sign-off, echo.
//! - `transaction.rs`: financial requests, the card's final decision, the command's own reversal.
//! - `pending.rs`: store-and-forward: pending reversals, advices and notices, recovery.
//! - `settlement.rs`: totals, batch upload, end of batch.
//! - `params_op.rs`: the EMV parameter download.

use crate::journal::{Commit, JournalOp, Restored, SettlementProgress};
use crate::model::{Counters, Now, PendingItem, PendingKind, ReversalReason, TxnState};
use crate::profile::TrackEncryption;
use crate::proto::MacKey;
use crate::proto::{self, Expectation, Match, MsgType, Reply};
use crate::track::{self, TrackCryptError};
use smartpos_crypto::module::{DataMode, DukptKsn, KeyRef, ModuleError, SecurityModule};
use smartpos_iso8583::Message;
use std::collections::VecDeque;
use std::sync::Arc;

mod admin;
mod params_op;
mod pending;
mod settlement;
mod transaction;
mod types;

#[cfg(test)]
mod tests;

use admin::install_keys;
pub use admin::{WorkingKeys, unwrap_key_block};
pub use types::{
    CardCompletion, CardVerdict, Command, EngineConfig, Event, Finished, OpError, Outcome, Output,
    TxnRequest,
};

use types::Op;

/// A request in flight: what its answer must match and when the engine stops waiting.
#[derive(Debug)]
struct Wait {
    expect: Expectation,
    deadline: u64,
}

/// What the running command is doing. Between two inputs it is always in one of the
/// `Expect*` states (or the engine is idle); `Draining` and `Working` last only while the
/// engine steps through an input.
#[derive(Debug)]
enum State {
    /// Sending the armed pending items that must go before the command's own request;
    /// `tries` counts failed deliveries in a row.
    Draining { tries: u32 },
    /// Working on the command's own messages: building the next request or handling an answer.
    Working,
    /// A pending reversal, advice or notice (`seq`) is out, ahead of the command.
    ExpectPendingAck { seq: u64, tries: u32, wait: Wait },
    /// The command's own request is out.
    ExpectResponse { wait: Wait },
    /// The host approved; a contact chip card makes its final decision
    /// ([`Output::CompleteCard`]).
    ExpectCardDecision { reply: Reply },
    /// The command's request failed ambiguously; its reversal is out.
    ExpectReversalAck { wait: Wait },
}

impl State {
    fn wait(&self) -> Option<&Wait> {
        match self {
            State::ExpectPendingAck { wait, .. }
            | State::ExpectResponse { wait }
            | State::ExpectReversalAck { wait } => Some(wait),
            State::Draining { .. } | State::Working | State::ExpectCardDecision { .. } => None,
        }
    }
}

/// The command being run and what it waits for.
#[derive(Debug)]
struct Run {
    op: Op,
    state: State,
}

/// What came of a request in flight.
enum Heard {
    /// A matching answer.
    Reply(Reply),
    /// No usable answer: it may have reached the host (timeout, link lost, bad MAC, an
    /// answer that contradicts the request).
    Failed(ReversalReason),
    /// The request certainly never left (the connection could not be opened).
    NotSent,
}

/// The terminal engine. See the module documentation for the driving loop.
pub struct Engine {
    cfg: EngineConfig,
    /// Where the keys are: every MAC is computed and checked by it, sign-in installs into it.
    module: Arc<dyn SecurityModule>,
    /// The module holds the working keys of a sign-in that succeeded (and no sign-off since).
    signed_in: bool,
    counters: Counters,
    pending: Vec<PendingItem>,
    settlement: Option<SettlementProgress>,
    out: VecDeque<Output>,
    commit_in_flight: Option<u64>,
    next_commit: u64,
    run: Option<Run>,
    /// The host's approval of a transaction whose card declined, for its outcome.
    card_declined_reply: Option<Reply>,
    /// DUKPT: the KSN reserved for the transaction being started, with its STAN: the request
    /// with that STAN goes out under it (a card's PIN block was made under it).
    reserved_ksn: Option<(u32, DukptKsn)>,
    /// DUKPT: the KSN of the request in flight (its response is checked under the same KSN).
    ksn_in_flight: Option<DukptKsn>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("signed_in", &self.signed_in)
            .field("module", &self.module.kind())
            .field("counters", &self.counters)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts an engine from what the journal holds. Transactions found in `Sending` had no
    /// recorded answer: their reversals are armed (reason 98) in a first commit that the driver
    /// must apply before anything else.
    ///
    /// The working keys of the last sign-in, kept in the journal as the host delivered them
    /// (encrypted under the master key), are installed into `module` again: the software
    /// module starts empty, and a device module may have lost or replaced them.
    pub fn restore(cfg: EngineConfig, module: Arc<dyn SecurityModule>, restored: Restored) -> Self {
        // A DUKPT terminal has no working keys: its keys are derived per transaction from the
        // DUKPT key in the module, so it is ready without a sign-in.
        let dukpt = cfg.profile.keys.dukpt().is_some();
        let signed_in = match restored.wrapped_keys.as_deref() {
            _ if dukpt => true,
            None => false,
            Some(block) => match install_keys(&cfg, module.as_ref(), block) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("stored working keys unusable ({e}); sign in again");
                    false
                }
            },
        };
        let mut pending = restored.pending;
        pending.sort_by_key(|p| p.seq);
        let mut e = Engine {
            cfg,
            module,
            signed_in,
            counters: restored.counters,
            pending,
            settlement: restored.settlement,
            out: VecDeque::new(),
            commit_in_flight: None,
            next_commit: 1,
            run: None,
            card_declined_reply: None,
            reserved_ksn: None,
            ksn_in_flight: None,
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
                item.reason = Some(if rec.response_code.is_some_and(|c| c.is_approved()) {
                    ReversalReason::TerminalFailure
                } else {
                    ReversalReason::NoResponse
                });
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
        match self.run.as_ref().map(|r| &r.op) {
            Some(Op::Txn {
                record: Some(r), ..
            }) => Some(&r.reference),
            _ => None,
        }
    }

    /// Whether working keys are installed.
    pub fn signed_in(&self) -> bool {
        self.signed_in
    }

    /// The security module the engine uses (the runtime makes PIN blocks with it).
    pub fn security_module(&self) -> &Arc<dyn SecurityModule> {
        &self.module
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
        self.run.is_some()
    }

    /// Whether the engine waits for a contact chip card's final decision
    /// ([`Output::CompleteCard`]).
    pub fn awaits_card(&self) -> bool {
        matches!(
            self.run.as_ref().map(|r| &r.state),
            Some(State::ExpectCardDecision { .. })
        )
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
        self.run
            .as_ref()
            .and_then(|r| r.state.wait())
            .map(|w| w.deadline)
    }

    // ---------------------------------------------------------------- commands

    fn begin(&mut self, now: Now, op: Op) {
        if self.run.is_some() {
            let command = op.command();
            self.emit(Event::Finished(Finished {
                command,
                result: Err(OpError::Busy),
            }));
            return;
        }
        let state = if op.needs_drain() {
            State::Draining { tries: 0 }
        } else {
            State::Working
        };
        self.run = Some(Run { op, state });
        self.step(now);
    }

    fn finish(&mut self, result: Result<Outcome, OpError>) {
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
        if let Some(run) = self.run.take() {
            self.emit(Event::Finished(Finished {
                command: run.op.command(),
                result,
            }));
        }
    }

    /// The running command's operation.
    fn op(&self) -> Option<&Op> {
        self.run.as_ref().map(|r| &r.op)
    }

    /// The running command's operation, to update it.
    fn op_mut(&mut self) -> Option<&mut Op> {
        self.run.as_mut().map(|r| &mut r.op)
    }

    fn set_state(&mut self, state: State) {
        if let Some(run) = &mut self.run {
            run.state = state;
        }
    }

    // ---------------------------------------------------------------- stepping

    /// Advances the current command as far as it goes without waiting.
    fn step(&mut self, now: Now) {
        match self.run.as_ref().map(|r| &r.state) {
            Some(State::Draining { tries }) => {
                let tries = *tries;
                if let Some(item) = self.pending.iter().find(|p| p.armed).cloned() {
                    self.send_pending(now, &item, tries);
                } else {
                    self.set_state(State::Working);
                    self.run_main(now);
                }
            }
            Some(State::Working) => self.run_main(now),
            _ => {}
        }
    }

    /// Sends the command's own request (or its next one).
    fn run_main(&mut self, now: Now) {
        match self.op() {
            Some(Op::SignIn { .. } | Op::SignOff | Op::Echo) => self.admin_send(now),
            Some(Op::Recover { .. }) => self.recover_done(),
            Some(Op::Txn { .. }) => self.start_main_txn(now),
            Some(Op::Settle { .. }) => self.settle_step(now),
            Some(Op::Reverse { .. }) => self.start_reverse(now),
            Some(Op::Params(_)) => self.params_send(now),
            None => {}
        }
    }

    /// The host answered the command's own request.
    fn main_reply(&mut self, now: Now, reply: Reply) {
        match self.op() {
            Some(Op::SignIn { .. }) => self.sign_in_reply(reply),
            Some(Op::SignOff | Op::Echo) => self.ack_reply(reply),
            Some(Op::Settle { .. }) => self.settle_reply(now, reply),
            Some(Op::Params(_)) => self.params_reply(now, reply),
            Some(Op::Txn { .. }) => self.txn_reply(now, reply),
            // They send their own request through the pending machinery.
            Some(Op::Recover { .. } | Op::Reverse { .. }) | None => {}
        }
    }

    /// The MAC key of the current sign-in, in the security module; with DUKPT, the key derived
    /// for the KSN of the request in flight.
    fn mak(&self) -> Option<MacKey<'_>> {
        if self.cfg.profile.keys.dukpt().is_some() {
            return self
                .ksn_in_flight
                .map(|k| MacKey::Module(self.module.as_ref(), KeyRef::Dukpt(k)));
        }
        self.signed_in
            .then(|| MacKey::Module(self.module.as_ref(), KeyRef::Working))
    }

    /// The next DUKPT KSN from the module, reserved durably there before it returns.
    fn next_ksn(&self) -> Result<DukptKsn, OpError> {
        self.module.dukpt_next().map_err(|e| match e {
            ModuleError::DukptExhausted => OpError::DukptExhausted,
            other => OpError::SecurityModule {
                reason: other.to_string(),
            },
        })
    }

    /// DUKPT: reserves the KSN of a transaction about to be journaled (the card's, when the
    /// runtime reserved one for its PIN block), so a used-up counter stops it before anything
    /// is recorded or sent. Nothing to do for other profiles.
    pub(super) fn reserve_txn_ksn(
        &mut self,
        stan: u32,
        card_ksn: Option<DukptKsn>,
    ) -> Result<(), OpError> {
        self.reserved_ksn = None;
        if self.cfg.profile.keys.dukpt().is_none() {
            return Ok(());
        }
        let ksn = match card_ksn {
            Some(k) => k,
            None => self.next_ksn()?,
        };
        self.reserved_ksn = Some((stan, ksn));
        Ok(())
    }

    /// DUKPT: the request as it goes out: every request that carries a MAC or a PIN block
    /// takes a KSN (the one reserved for its STAN, else the next one), in the profile's KSN
    /// field; its MAC is under that KSN's keys (none with `dukpt_mac = false`). Other profiles:
    /// the request unchanged.
    fn with_ksn(&mut self, msg: &Message, mac: bool) -> Result<(Message, bool), OpError> {
        self.ksn_in_flight = None;
        let Some(d) = self.cfg.profile.keys.dukpt().copied() else {
            return Ok((msg.clone(), mac));
        };
        if !(mac || msg.has(52) || self.encrypts_tracks_of(msg)) {
            return Ok((msg.clone(), mac));
        }
        let stan = msg.text(11).and_then(|s| s.parse::<u32>().ok());
        let ksn = match self.reserved_ksn {
            Some((s, k)) if Some(s) == stan => {
                self.reserved_ksn = None;
                k
            }
            _ => self.next_ksn()?,
        };
        let mut m = msg.clone();
        m.set(d.ksn_field, self.cfg.profile.keys.encode_ksn(ksn.bytes()));
        self.ksn_in_flight = Some(ksn);
        Ok((m, mac && d.mac))
    }

    /// Whether `msg` carries track data the profile encrypts (`track_encryption = "cup-tdk"`).
    fn encrypts_tracks_of(&self, msg: &Message) -> bool {
        self.cfg.profile.keys.track_encryption == TrackEncryption::CupTdk
            && track::TRACK_FIELDS.iter().any(|&f| msg.has(f))
    }

    /// Track encryption: fields 35 and 36 of the request as it goes out, encrypted in the
    /// security module under the TDK (DUKPT: the data key of the KSN in flight), and field
    /// 53's flag set ([`track`]). Done at every send, after the KSN is chosen and before the
    /// MAC, so the MAC covers the ciphertext; the journal keeps the request as built (clear
    /// track, as before), so a repeat (an advice sent again, a reversal that keeps the track)
    /// is encrypted again under the key of its own send. Other requests: unchanged.
    fn with_tracks(&self, msg: Message) -> Result<Message, OpError> {
        if !self.encrypts_tracks_of(&msg) {
            return Ok(msg);
        }
        let key = if self.cfg.profile.keys.dukpt().is_some() {
            match self.ksn_in_flight {
                Some(k) => KeyRef::Dukpt(k),
                None => {
                    return Err(OpError::SecurityModule {
                        reason: "no DUKPT KSN to encrypt the track data under".into(),
                    });
                }
            }
        } else {
            KeyRef::Working
        };
        let module = self.module.as_ref();
        let key_len = self.cfg.profile.keys.key_len;
        track::seal_tracks(&msg, key_len, &mut |block| {
            module
                .encrypt_data(key, DataMode::Ecb, block)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| match e {
            TrackCryptError::Cipher(reason) => OpError::SecurityModule { reason },
            other => OpError::Proto(other.to_string()),
        })
    }

    /// Seals and queues `msg`; the command then waits in the state `next` makes of the request's
    /// [`Wait`]. A message that cannot be sealed ends the command.
    fn transmit(
        &mut self,
        now: Now,
        msg: &Message,
        mac: bool,
        label: MsgType,
        reference: Option<String>,
        next: impl FnOnce(Wait) -> State,
    ) -> bool {
        let (msg, mac) = match self
            .with_ksn(msg, mac)
            .and_then(|(m, mac)| Ok((self.with_tracks(m)?, mac)))
        {
            Ok(m) => m,
            Err(e) => {
                self.finish(Err(e));
                return false;
            }
        };
        let msg = &msg;
        let sealed = proto::seal_with(&self.cfg.profile, self.mak(), msg, mac);
        match (sealed, Expectation::of(msg, mac)) {
            (Ok(bytes), Some(expect)) => {
                self.emit(Event::Sending {
                    msg: label,
                    mti: msg.mti,
                    reference,
                });
                self.out.push_back(Output::Transmit(bytes));
                let deadline = now.mono_ms.saturating_add(self.cfg.response_timeout_ms);
                self.set_state(next(Wait { expect, deadline }));
                true
            }
            (Err(proto::ProtoError::Module(reason)), _) => {
                self.finish(Err(OpError::SecurityModule { reason }));
                false
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

    // ---------------------------------------------------------------- input

    /// Handles one frame body received from the host.
    pub fn handle_host_frame(&mut self, now: Now, frame: &[u8]) {
        let Some(wait) = self.run.as_ref().and_then(|r| r.state.wait()) else {
            log::info!(
                "frame received while nothing is awaited: ignored ({} bytes)",
                frame.len()
            );
            self.emit(Event::Ignored {
                why: "no request in flight",
            });
            return;
        };
        let m = proto::check_response_with(
            &self.cfg.profile,
            &self.cfg.identity,
            self.mak(),
            frame,
            &wait.expect,
        );
        match m {
            Match::Ok(reply) => self.heard(now, Heard::Reply(reply)),
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
                log::warn!("response MAC did not verify");
                self.emit(Event::ResponseMacFailed {
                    mti: wait.expect.mti,
                });
                self.heard(now, Heard::Failed(ReversalReason::BadMac));
            }
            Match::Inconsistent(why) => {
                log::warn!("response inconsistent with the request: {why}");
                self.heard(now, Heard::Failed(ReversalReason::Other));
            }
        }
    }

    /// Handles the response timer.
    pub fn handle_timeout(&mut self, now: Now) {
        let Some(wait) = self.run.as_ref().and_then(|r| r.state.wait()) else {
            return;
        };
        if now.mono_ms < wait.deadline {
            return;
        }
        log::warn!("no response within {} ms", self.cfg.response_timeout_ms);
        self.heard(now, Heard::Failed(ReversalReason::NoResponse));
    }

    /// Handles a link failure. `request_may_have_reached_host` is false only when the request
    /// in flight certainly never left (the connection could not be opened).
    pub fn handle_link_error(&mut self, now: Now, request_may_have_reached_host: bool) {
        if self.poll_timeout().is_none() {
            return;
        }
        let heard = if request_may_have_reached_host {
            Heard::Failed(ReversalReason::NoResponse)
        } else {
            Heard::NotSent
        };
        self.heard(now, heard);
    }

    /// Hands what came of the request in flight to the state that waits for it.
    fn heard(&mut self, now: Now, heard: Heard) {
        let Some(run) = &mut self.run else { return };
        let waited = std::mem::replace(&mut run.state, State::Working);
        match (waited, heard) {
            (State::ExpectPendingAck { seq, tries, .. }, heard) => {
                self.set_state(State::Draining { tries });
                match heard {
                    Heard::Reply(reply) => self.pending_acknowledged(now, seq, reply),
                    Heard::Failed(_) | Heard::NotSent => self.pending_failed(now, seq),
                }
            }
            (State::ExpectResponse { .. }, Heard::Reply(reply)) => self.main_reply(now, reply),
            (State::ExpectResponse { .. }, Heard::Failed(reason)) => self.main_failed(now, reason),
            (State::ExpectResponse { .. }, Heard::NotSent) => self.main_not_sent(),
            (State::ExpectReversalAck { .. }, Heard::Reply(reply)) => {
                self.reversal_reply(now, reply)
            }
            (State::ExpectReversalAck { .. }, Heard::Failed(_) | Heard::NotSent) => {
                self.reversal_failed(now)
            }
            (other, _) => self.set_state(other),
        }
    }
}
