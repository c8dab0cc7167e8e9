//! Settlement: the totals (0500), and when the host does not balance (it answers `95`, or its
//! field 48 says `2`), the batch upload (0320, 60.3 `201`: up to eight records in field 48 with
//! the `cup` profile, one transaction per message with `[settlement] upload =
//! "per-transaction"`) and the end of batch (0320, 60.3 `202`). The step reached is journaled
//! before each request, so an interrupted settlement resumes where it stopped.

use super::types::Op;
use super::{Engine, OpError, Outcome, State};
use crate::journal::{JournalOp, SettlementProgress, SettlementStep};
use crate::model::{BatchTotals, Now, TxnKind, TxnRecord, TxnState};
use crate::proto::{self, Ctx, MsgType, Reply, SettlementResult, UploadLayout};
use smartpos_iso8583::ResponseCode;

impl Engine {
    /// Settles the open batch. `records` are the batch's transactions (the runtime's query);
    /// an interrupted settlement resumes at the step it reached.
    pub fn start_settle(&mut self, now: Now, records: Vec<TxnRecord>) {
        self.start_settle_by(now, records, None);
    }

    /// [`Engine::start_settle`] by an operator, whose code the 0500 carries in field 63 (as
    /// UnionPay POS terminals send it; docs/messages.md).
    pub fn start_settle_by(&mut self, now: Now, records: Vec<TxnRecord>, operator: Option<String>) {
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
                operator,
            },
        );
    }

    /// Sends the settlement's current step (totals, an upload, end of batch), journaled first.
    pub(super) fn settle_step(&mut self, now: Now) {
        let conventions = self.cfg.profile.settlement;
        let Some(Op::Settle {
            batch,
            records,
            step,
            operator,
            ..
        }) = self.op_mut()
        else {
            return;
        };
        let batch = *batch;
        let operator = operator.clone();
        let totals48 = proto::settlement_request_field48(conventions.totals, batch, records);
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
                    field48: Some(totals48),
                    operator: operator.as_deref(),
                    ..Ctx::default()
                };
                proto::build(profile, id, MsgType::Settlement, &ctx)
                    .map(|m| (m, MsgType::Settlement))
            }
            SettlementStep::Upload { next } if conventions.upload == UploadLayout::Records => {
                // The next records, up to eight, in field 48 of one 0320.
                let from = next as usize;
                let to = uploads.len().min(from + proto::RECORDS_PER_UPLOAD);
                let Some(chunk) = uploads.get(from..to) else {
                    self.finish(Err(OpError::Proto("upload index out of range".into())));
                    return;
                };
                let ctx = Ctx {
                    stan,
                    batch,
                    field48: Some(proto::upload_field48(chunk)),
                    ..Ctx::default()
                };
                proto::build(profile, id, MsgType::BatchUpload, &ctx)
                    .map(|m| (m, MsgType::BatchUpload))
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
                    m.set(12, rec.local_time.as_bytes().to_vec());
                    m.set(13, rec.local_date.as_bytes().to_vec());
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
                self.transmit(now, &m, true, label, None, |wait| State::ExpectResponse {
                    wait,
                });
            }
            Err(e) => self.finish(Err(OpError::Proto(e.to_string()))),
        }
    }

    /// The answer to the settlement's current step.
    pub(super) fn settle_reply(&mut self, now: Now, reply: Reply) {
        let conventions = self.cfg.profile.settlement;
        let Some(Op::Settle {
            batch,
            records,
            totals,
            step,
            balanced,
            uploaded,
            ..
        }) = self.op_mut()
        else {
            return;
        };
        match *step {
            SettlementStep::Totals => {
                let result = SettlementResult::of_reply(
                    conventions.totals,
                    &reply.response_code,
                    reply.field48.as_deref(),
                );
                match result {
                    None => {
                        let code = reply.response_code;
                        self.finish(Err(OpError::HostRefused {
                            code: code.to_string(),
                        }));
                    }
                    Some(SettlementResult::Balanced) => {
                        let (b, t) = (*batch, *totals);
                        self.close_batch(b, true, t, 0);
                    }
                    Some(SettlementResult::NotBalanced) => {
                        // 95, or a 2 in field 48: the host wants the details.
                        *balanced = false;
                        *step = SettlementStep::Upload { next: 0 };
                        self.settle_step(now);
                    }
                    Some(SettlementResult::Error) => {
                        self.finish(Err(OpError::HostRefused {
                            code: "settlement error".into(),
                        }));
                    }
                }
            }
            SettlementStep::Upload { next } => {
                if reply.response_code != ResponseCode::APPROVED {
                    // The host did not take these records: stop here; the next settlement
                    // resumes with the same records (the step is journaled).
                    let code = reply.response_code;
                    self.finish(Err(OpError::HostRefused {
                        code: code.to_string(),
                    }));
                    return;
                }
                let remaining = records
                    .iter()
                    .filter(|r| uploadable(r))
                    .count()
                    .saturating_sub(next as usize);
                let sent = match conventions.upload {
                    UploadLayout::Records => remaining.min(proto::RECORDS_PER_UPLOAD),
                    UploadLayout::PerTransaction => remaining.min(1),
                };
                let sent = u32::try_from(sent).unwrap_or(u32::MAX);
                *uploaded = uploaded.saturating_add(sent);
                *step = SettlementStep::Upload {
                    next: next.saturating_add(sent),
                };
                self.settle_step(now);
            }
            SettlementStep::EndOfBatch => {
                if reply.response_code != ResponseCode::APPROVED {
                    // The batch stays open: closing it would leave records the host never took.
                    let code = reply.response_code;
                    self.finish(Err(OpError::HostRefused {
                        code: code.to_string(),
                    }));
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
    pub(super) fn settlement_sees(&mut self, reference: &str, state: TxnState) {
        if let Some(Op::Settle {
            batch,
            records,
            totals,
            ..
        }) = self.op_mut()
            && let Some(r) = records.iter_mut().find(|r| r.reference == reference)
        {
            r.state = state;
            *totals = BatchTotals::of(*batch, records.iter());
        }
    }

    /// Advances the batch number and ends the settlement.
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
}

/// Settlement uploads approved money-moving records (sales, completions, refunds).
fn uploadable(r: &TxnRecord) -> bool {
    matches!(
        (r.kind, r.state),
        (TxnKind::Sale | TxnKind::Completion, TxnState::Approved)
            | (TxnKind::Refund, TxnState::Approved | TxnState::Queued)
    )
}
