//! Financial transactions: sale, void, refund (an advice), pre-authorisation, completion,
//! cancel and balance; a contact chip card's final decision after the host's approval; the
//! reversal of the command's own request when its answer is lost or unusable, and the
//! reversal of an approved transaction the terminal could not complete (reason 96).

use super::types::Op;
use super::{
    CardCompletion, CardVerdict, Command, Engine, Event, Finished, OpError, Outcome, Output, Run,
    State, TxnRequest,
};
use crate::journal::JournalOp;
use crate::model::{
    CardOnFile, LocalDate, LocalTime, Now, PendingItem, PendingKind, PosEntryMode, ReversalReason,
    TxnKind, TxnRecord, TxnState, reference,
};
use crate::proto::{self, CardData, Ctx, MsgType, Reply};

impl Engine {
    /// Starts a financial transaction (sale, void, refund, pre-auth, completion, cancel, balance).
    pub fn start_txn(&mut self, now: Now, req: TxnRequest) {
        if self.run.is_none()
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

    /// Reverses an approved transaction because the terminal could not complete it (reason 96),
    /// e.g. the card refused the host's approval. The reversal is durable before it is sent.
    ///
    /// Only a sale, pre-authorisation or completion of the open batch that nothing was taken
    /// from (`original_used`, as for [`TxnRequest::original_used`]) can be reversed: reversing
    /// a sale with refunds would pay the refunds twice, and reversing a void or a cancel would
    /// bring back at the host what the journal keeps as voided.
    pub fn start_reverse_after_failure(&mut self, now: Now, record: TxnRecord, original_used: u64) {
        if self.run.is_some() {
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

    /// Checks a request before anything is journaled or sent.
    fn validate(&self, req: &TxnRequest) -> Result<(), OpError> {
        let reject = |r: &str| {
            Err(OpError::Rejected {
                reason: r.to_owned(),
            })
        };
        if !self.signed_in {
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

    /// Journals the transaction's intent (its record and unarmed reversal, or its queued advice)
    /// and sends its request.
    pub(super) fn start_main_txn(&mut self, now: Now) {
        let Some(Op::Txn { req, .. }) = self.op() else {
            return;
        };
        let req: TxnRequest = (**req).clone();
        let saved = self.counters;
        let stan = self.counters.next_stan();
        let batch = self.counters.batch;
        let amount = match req.kind {
            TxnKind::Void | TxnKind::PreAuthCancel => {
                req.original.as_ref().map_or(req.amount, |o| o.amount)
            }
            _ => req.amount,
        };
        // A void, refund, completion or cancel without the card presented again sends the card
        // its original keeps, as keyed (`012`): field 22 and the card number, as UnionPay POS
        // terminals do when the card need not be swiped again (docs/messages.md).
        let card: Option<CardData> = req
            .card
            .clone()
            .or_else(|| req.original.as_ref().and_then(proto::card_from_file));
        let ctx = Ctx {
            stan,
            batch,
            amount: (req.kind != TxnKind::Balance).then_some(amount),
            local: Some(now.local),
            card: card.as_ref(),
            original: req.original.as_ref(),
            operator: req.operator.as_deref(),
            field48: None,
        };
        // Build and pack once now so that bad input fails before anything is journaled.
        let profile = &self.cfg.profile;
        let tracks = profile.keys.track_encryption == crate::profile::TrackEncryption::CupTdk;
        let built = proto::build(profile, &self.cfg.identity, MsgType::Txn(req.kind), &ctx)
            .and_then(|m| {
                // Track data the profile encrypts at send time must be encryptable.
                if tracks {
                    crate::track::check_tracks(&m)
                        .map_err(|e| proto::ProtoError::Encode(e.to_string()))?;
                }
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
                self.finish(Err(OpError::Proto(e.to_string())));
                return;
            }
        };
        // Fields 12/13 as the record keeps them, typed: a driver's clock reading that is no
        // date and time (a month 13) is refused before anything is reserved or journaled.
        let (Some(local_date), Some(local_time)) = (
            LocalDate::new(now.local.month, now.local.day),
            LocalTime::new(now.local.hour, now.local.minute, now.local.second),
        ) else {
            self.counters = saved;
            self.finish(Err(OpError::Rejected {
                reason: "the terminal's local date and time are not a valid date and time".into(),
            }));
            return;
        };
        // DUKPT: the transaction's KSN is reserved before anything is journaled (a used-up
        // counter stops it here: nothing recorded, nothing sent).
        let card_ksn = req.card.as_ref().and_then(|c| c.ksn);
        if let Err(e) = self.reserve_txn_ksn(stan, card_ksn) {
            self.counters = saved;
            self.finish(Err(e));
            return;
        }
        let record = TxnRecord {
            reference: reference(batch, stan),
            kind: req.kind,
            state: if req.kind.is_advice() {
                TxnState::Queued
            } else {
                TxnState::Sending
            },
            amount,
            currency: self.cfg.identity.currency,
            stan,
            batch,
            local_time,
            local_date,
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: req.original.as_ref().map(|o| o.reference.clone()),
            idempotency_key: req.idempotency_key.clone(),
            operator: req.operator.clone(),
            pan_masked: card
                .as_ref()
                .and_then(CardData::effective_pan)
                .map(|p| p.masked()),
            // Every card front-end gives two PAN entry digits, so this is three digits; an
            // entry mode that is not (the raw text of a front-end that gave no PAN entry
            // digits) is sent as it is but not recorded.
            entry_mode: card
                .as_ref()
                .and_then(|c| PosEntryMode::parse(&c.entry_mode_with_pin())),
            created_at_ms: now.unix_ms,
            updated_at_ms: now.unix_ms,
            card: card.as_ref().and_then(|c| {
                CardOnFile::of(c.pan.clone(), c.expiry.as_deref(), c.track2.as_ref())
            }),
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
        if let Some(Op::Txn {
            record: r,
            reversal_seq,
            ..
        }) = self.op_mut()
        {
            *r = Some(record);
            *reversal_seq = seq;
        }
        if advice {
            self.set_state(State::Draining { tries: 0 });
            self.step(now);
        } else {
            self.transmit(now, &msg, true, label, reference, |wait| {
                State::ExpectResponse { wait }
            });
        }
    }

    /// Arms the reversal of an approved transaction (reason 96) and sends it.
    pub(super) fn start_reverse(&mut self, now: Now) {
        let Some(Op::Reverse { record, .. }) = self.op() else {
            return;
        };
        let record = record.clone();
        let Some(item) = self
            .pending
            .iter()
            .find(|p| p.reference == record.reference && p.kind == PendingKind::Reversal)
            .cloned()
            .or_else(|| self.reversal_from_record(&record))
        else {
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
        self.run = Some(Run {
            op: Op::Reverse { record: rec, seq },
            state: State::Draining { tries: 0 },
        });
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

    /// The card's final decision after [`Output::CompleteCard`]. `Accepted` makes the approval
    /// final and queues the TC upload (and the script results) as notices; `Declined` and
    /// `Failed` arm the reversal (reason 96, the terminal could not complete an approved
    /// transaction) and send it.
    pub fn handle_card_decision(&mut self, now: Now, verdict: CardVerdict) {
        let reply = match self
            .run
            .as_mut()
            .map(|r| std::mem::replace(&mut r.state, State::Working))
        {
            Some(State::ExpectCardDecision { reply }) => reply,
            other => {
                if let Some(state) = other {
                    self.set_state(state);
                }
                log::warn!("card decision while no card decides: ignored");
                return;
            }
        };
        let scripts = match &verdict {
            CardVerdict::Accepted { script_results, .. }
            | CardVerdict::Declined { script_results } => script_results.clone(),
            CardVerdict::Failed => Vec::new(),
        };
        let Some(Run {
            op:
                Op::Txn {
                    record: Some(rec),
                    req,
                    reversal_seq,
                },
            ..
        }) = &mut self.run
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
                self.main_failed(now, ReversalReason::TerminalFailure);
            }
        }
    }

    /// A TC upload or script-result notice about `record`, carrying `icc` in field 55; `None`
    /// (logged) when the profile cannot build it.
    pub(super) fn notice(
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

    /// Sends (again) the reversal of the command's own request.
    fn send_main_reversal(&mut self, now: Now) {
        let Some(Op::Txn {
            reversal_seq: Some(seq),
            ..
        }) = self.op()
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
                &msg,
                true,
                MsgType::Reversal,
                Some(item.reference.clone()),
                |wait| State::ExpectReversalAck { wait },
            );
        }
    }

    /// The host answered the transaction's request.
    pub(super) fn txn_reply(&mut self, now: Now, reply: Reply) {
        let Some(Run {
            op:
                Op::Txn {
                    record: Some(rec),
                    reversal_seq,
                    req,
                },
            ..
        }) = &mut self.run
        else {
            return;
        };
        let approved = reply.response_code.is_approved();
        if reversal_seq.is_some()
            && proto::reverses_as_possible_approval(req.kind, reply.response_code)
        {
            // A code outside the table might be an approval of the host's own: the
            // customer may be charged, so it is reversed like a malformed answer.
            log::warn!("unknown response code {}: reversed", reply.response_code);
            rec.response_code = Some(reply.response_code);
            self.main_failed(now, ReversalReason::Other);
            return;
        }
        rec.state = if approved {
            TxnState::Approved
        } else {
            TxnState::Declined
        };
        rec.rrn = reply.rrn.clone();
        rec.auth_code = reply.auth_code.clone();
        rec.response_code = Some(reply.response_code);
        rec.updated_at_ms = now.unix_ms;
        if approved && reversal_seq.is_some() && req.card.as_ref().is_some_and(|c| c.card_decides) {
            // A contact chip card decides last: the approval is recorded with the
            // request still "sending" and its reversal in place, so that a crash or a
            // card that declines leaves the reversal to be armed.
            rec.state = TxnState::Sending;
            let reference = rec.reference.clone();
            let ops = vec![JournalOp::PutTxn(rec.clone())];
            self.commit(ops);
            self.set_state(State::ExpectCardDecision {
                reply: reply.clone(),
            });
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

    /// The command's own request got no usable answer (timeout, link lost after sending, bad
    /// MAC, an inconsistent answer) or the card refused the host's approval: a reversible
    /// transaction arms its reversal and sends it; anything else ends without an answer.
    pub(super) fn main_failed(&mut self, now: Now, reason: ReversalReason) {
        match &mut self.run {
            Some(Run {
                op:
                    Op::Txn {
                        record: Some(rec),
                        reversal_seq: Some(seq),
                        ..
                    },
                state,
            }) => {
                let seq = *seq;
                rec.state = TxnState::Reversing;
                rec.updated_at_ms = now.unix_ms;
                let rec = rec.clone();
                *state = State::Working;
                let mut ops = vec![JournalOp::PutTxn(rec)];
                if let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) {
                    p.armed = true;
                    p.reason = Some(reason);
                    ops.push(JournalOp::PutPending(p.clone()));
                }
                self.commit(ops);
                self.send_main_reversal(now);
            }
            Some(Run {
                op: Op::Txn {
                    record: Some(rec), ..
                },
                ..
            }) => {
                // Balance inquiry: nothing to reverse.
                rec.state = TxnState::Declined;
                rec.updated_at_ms = now.unix_ms;
                let rec = rec.clone();
                self.commit(vec![JournalOp::PutTxn(rec)]);
                self.finish(Err(OpError::NoResponse));
            }
            _ => self.finish(Err(OpError::NoResponse)),
        }
    }

    /// The command's own request certainly never left: nothing happened at the host.
    pub(super) fn main_not_sent(&mut self) {
        if let Some(Run {
            op:
                Op::Txn {
                    record: Some(rec),
                    reversal_seq,
                    ..
                },
            ..
        }) = &mut self.run
            && !rec.kind.is_advice()
        {
            rec.state = TxnState::NotSent;
            rec.response_code = None;
            let mut ops = vec![JournalOp::PutTxn(rec.clone())];
            if let Some(seq) = reversal_seq.take() {
                self.pending.retain(|p| p.seq != seq);
                ops.push(JournalOp::RemovePending { seq });
            }
            self.commit(ops);
        }
        self.finish(Err(OpError::NotSent));
    }

    /// The host answered the reversal of the command's own request.
    pub(super) fn reversal_reply(&mut self, now: Now, reply: Reply) {
        let Some(Op::Txn {
            reversal_seq: Some(seq),
            ..
        }) = self.op()
        else {
            return;
        };
        let seq = *seq;
        if !reply.response_code.closes_reversal() {
            // Answered but not done (96, 91, A0, ...): still charged. Sent again.
            log::warn!(
                "reversal answered {}: not processed, kept",
                reply.response_code
            );
            self.reversal_failed(now);
            return;
        }
        match self.reversal_acked(now, seq) {
            Some(record) => self.finish(Ok(Outcome::Txn {
                record,
                reply: None,
                reversal_pending: false,
            })),
            None => self.finish(Err(OpError::Proto(
                "reversal acknowledged for unknown record".into(),
            ))),
        }
    }

    /// The reversal of the command's own request was not acknowledged: sent again up to the
    /// delivery attempts, then left pending (armed, with back-off) and the command ends.
    pub(super) fn reversal_failed(&mut self, now: Now) {
        let Some(Op::Txn {
            reversal_seq: Some(seq),
            ..
        }) = self.op()
        else {
            return;
        };
        let seq = *seq;
        let attempts = self.bump_attempts(now, seq);
        if attempts < self.cfg.delivery_attempts {
            self.send_main_reversal(now);
        } else if let Some(Op::Txn {
            record: Some(r), ..
        }) = self.op()
        {
            let record = r.clone();
            self.finish(Ok(Outcome::Txn {
                record,
                reply: None,
                reversal_pending: true,
            }));
        }
    }
}
