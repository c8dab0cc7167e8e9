//! Store-and-forward: pending reversals, refund advices and chip notices (TC uploads, script
//! results) go out, oldest first, before a command's own request (the `Draining` state), with
//! back-off once the immediate attempts failed; `start_recover` delivers them on demand.

use super::types::Op;
use super::{Engine, EngineConfig, Event, OpError, Outcome, State};
use crate::journal::{JournalOp, StateUpdate};
use crate::model::{Now, PendingItem, PendingKind, ReversalReason, TxnKind, TxnRecord, TxnState};
use crate::proto::{self, MsgType, Reply};
use smartpos_iso8583::{Mti, ResponseCode};

/// The wait before the next background attempt after `attempts` failed ones.
fn backoff(cfg: &EngineConfig, attempts: u32) -> i64 {
    let over = attempts.saturating_sub(cfg.delivery_attempts).min(20);
    cfg.backoff_base_ms
        .saturating_mul(1i64 << over)
        .min(cfg.backoff_max_ms)
}

impl Engine {
    /// Delivers every armed pending item (reversals, advices), ignoring back-off.
    pub fn start_recover(&mut self, now: Now) {
        self.begin(now, Op::Recover { delivered: 0 });
    }

    /// Recovery drained everything it could: reports what was delivered and what remains.
    pub(super) fn recover_done(&mut self) {
        let Some(Op::Recover { delivered }) = self.op() else {
            return;
        };
        let delivered = *delivered;
        let remaining =
            u32::try_from(self.pending.iter().filter(|p| p.armed).count()).unwrap_or(u32::MAX);
        self.finish(Ok(Outcome::Recovered {
            delivered,
            remaining,
        }));
    }

    /// Sends one pending item; `tries` is the drain's count of failed deliveries in a row.
    pub(super) fn send_pending(&mut self, now: Now, item: &PendingItem, tries: u32) {
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
        let seq = item.seq;
        self.transmit(
            now,
            &msg,
            true,
            label,
            Some(item.reference.clone()),
            |wait| State::ExpectPendingAck { seq, tries, wait },
        );
    }

    /// Ends the pending reversal of `reference` without the host: the supervisor settled it
    /// with the acquirer by phone (the caller checks and audits the supervisor). One commit
    /// removes the pending item and sets the transaction to [`TxnState::ReversalResolved`], so a
    /// crash leaves the reversal either pending or resolved. Refused while a command runs, for
    /// a reference with no pending reversal, and for a reversal never tried yet (`attempts`
    /// is 0: the host has not refused it, so `recover` is the way).
    pub fn resolve_reversal(&mut self, now: Now, reference: &str) -> Result<u64, OpError> {
        if self.busy() {
            return Err(OpError::Busy);
        }
        let Some(item) = self
            .pending
            .iter()
            .find(|p| p.kind == PendingKind::Reversal && p.reference == reference)
            .cloned()
        else {
            return Err(OpError::Rejected {
                reason: format!("no pending reversal for {reference}"),
            });
        };
        if item.attempts == 0 {
            return Err(OpError::Rejected {
                reason: format!(
                    "the reversal for {reference} was never sent; deliver it first (recover)"
                ),
            });
        }
        self.pending.retain(|p| p.seq != item.seq);
        self.commit(vec![
            JournalOp::RemovePending { seq: item.seq },
            JournalOp::UpdateState(StateUpdate {
                reference: item.reference.clone(),
                state: TxnState::ReversalResolved,
                response_code: None,
                rrn: None,
                auth_code: None,
                at_ms: now.unix_ms,
            }),
        ]);
        Ok(item.seq)
    }

    pub(super) fn upsert_pending(&mut self, item: PendingItem) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == item.seq) {
            *p = item;
        } else {
            self.pending.push(item);
            self.pending.sort_by_key(|p| p.seq);
        }
    }

    /// Records that the host acknowledged reversal `seq`; returns the updated transaction.
    pub(super) fn reversal_acked(&mut self, now: Now, seq: u64) -> Option<TxnRecord> {
        let item = self.pending.iter().find(|p| p.seq == seq).cloned()?;
        self.pending.retain(|p| p.seq != seq);
        let mut ops = vec![JournalOp::RemovePending { seq }];
        let rec = match self.op_mut() {
            Some(Op::Txn {
                record: Some(r), ..
            })
            | Some(Op::Reverse { record: r, .. })
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

    /// The host answered pending item `seq`.
    pub(super) fn pending_acknowledged(&mut self, now: Now, seq: u64, reply: Reply) {
        let Some(item) = self.pending.iter().find(|p| p.seq == seq).cloned() else {
            return;
        };
        let kept = match item.kind {
            PendingKind::Reversal => !reply.response_code.closes_reversal(),
            PendingKind::Advice | PendingKind::Notice => reply.response_code.is_temporary(),
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
                if reply.response_code != ResponseCode::APPROVED {
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
                if let Some(Op::Reverse { seq: s, .. }) = self.op()
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
                let state = if reply.response_code.is_approved() {
                    TxnState::Approved
                } else {
                    TxnState::Declined
                };
                let mine =
                    matches!(self.op(), Some(Op::Txn { reversal_seq: Some(s), .. }) if *s == seq);
                let mut ops = vec![JournalOp::RemovePending { seq }];
                let mut finished = None;
                if mine {
                    if let Some(Op::Txn {
                        record: Some(r), ..
                    }) = self.op_mut()
                    {
                        r.state = state;
                        r.rrn = reply.rrn.clone();
                        r.auth_code = reply.auth_code.clone();
                        r.response_code = Some(reply.response_code);
                        r.updated_at_ms = now.unix_ms;
                        ops.push(JournalOp::PutTxn(r.clone()));
                        finished = Some(r.clone());
                    }
                } else {
                    self.settlement_sees(&item.reference, state);
                    ops.push(JournalOp::UpdateState(StateUpdate {
                        reference: item.reference.clone(),
                        state,
                        response_code: Some(reply.response_code),
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
        if let Some(Op::Recover { delivered }) = self.op_mut() {
            *delivered += 1;
        }
        if let Some(run) = &mut self.run
            && let State::Draining { tries } = &mut run.state
        {
            *tries = 0;
        }
        self.step(now);
    }

    /// Counts a failed delivery attempt durably; returns the attempt count.
    pub(super) fn bump_attempts(&mut self, now: Now, seq: u64) -> u32 {
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

    /// A pending item was not delivered: tries again, or stops the drain.
    pub(super) fn pending_failed(&mut self, now: Now, seq: u64) {
        self.bump_attempts(now, seq);
        let limit = self.cfg.delivery_attempts;
        let tries = match self.run.as_mut().map(|r| &mut r.state) {
            Some(State::Draining { tries }) => {
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
        match self.op() {
            Some(Op::Recover { delivered }) => {
                let delivered = *delivered;
                self.finish(Ok(Outcome::Recovered {
                    delivered,
                    remaining,
                }));
            }
            Some(Op::Txn {
                record: Some(rec),
                reversal_seq: Some(_),
                ..
            }) if rec.kind.is_advice() => {
                // The refund is recorded and queued; it will be forwarded later.
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
