//! What the engine asks the runtime to make durable.
//!
//! The engine never writes anything itself. It emits a [`Commit`]: a list of [`JournalOp`]s the
//! runtime must apply atomically (one SQLite transaction) and acknowledge with
//! [`crate::Engine::commit_done`] before the engine releases the next transmit or event. That
//! ordering is how the durability rules of DESIGN.md are enforced by construction: a request can
//! only be polled for sending after the commit that records its intent and its pending reversal
//! has been acknowledged, and an outcome only after the commit that records it.

use crate::model::{Counters, PendingItem, TxnRecord, TxnState};

/// One durable write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalOp {
    /// Insert or replace a transaction record (keyed by reference).
    PutTxn(TxnRecord),
    /// Change the state (and host answer) of a transaction the engine does not hold in full,
    /// e.g. when a pending reversal or advice of an earlier transaction is acknowledged.
    UpdateState(StateUpdate),
    /// Insert or replace a pending item (keyed by `seq`).
    PutPending(PendingItem),
    /// Delete a pending item: the host acknowledged it.
    RemovePending {
        /// The item's sequence number.
        seq: u64,
    },
    /// Replace the counters.
    PutCounters(Counters),
    /// Store the working keys as delivered at sign-in (still encrypted under the TMK).
    PutWrappedKeys {
        /// The key block from the sign-in response (field 62), encrypted under the TMK.
        block: Vec<u8>,
    },
    /// Record settlement progress, so an interrupted settlement resumes where it stopped.
    PutSettlement(SettlementProgress),
    /// The settlement finished; forget its progress record.
    ClearSettlement,
}

/// A state change of an existing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUpdate {
    /// The transaction.
    pub reference: String,
    /// Its new state.
    pub state: TxnState,
    /// Host response code, when the host answered.
    pub response_code: Option<smartpos_iso8583::ResponseCode>,
    /// RRN, when the host gave one.
    pub rrn: Option<String>,
    /// Authorisation code, when the host gave one.
    pub auth_code: Option<String>,
    /// Unix milliseconds of the change.
    pub at_ms: i64,
}

/// Where an interrupted settlement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementProgress {
    /// The batch being settled.
    pub batch: u32,
    /// The step reached.
    pub step: SettlementStep,
}

/// Steps of a settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettlementStep {
    /// Store-and-forward drained; the 0500 totals are about to be (or were) sent.
    Totals,
    /// The host reported a mismatch; uploading records (the index of the next one to send).
    Upload {
        /// Index in the batch's record list (ordered by reference).
        next: u32,
    },
    /// All records uploaded; the end-of-batch message is next.
    EndOfBatch,
}

impl SettlementStep {
    /// A stable text form for storage: `totals`, `upload:N`, `end`.
    pub fn encode(self) -> String {
        match self {
            SettlementStep::Totals => "totals".into(),
            SettlementStep::Upload { next } => format!("upload:{next}"),
            SettlementStep::EndOfBatch => "end".into(),
        }
    }

    /// Parses [`SettlementStep::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        match s {
            "totals" => Some(SettlementStep::Totals),
            "end" => Some(SettlementStep::EndOfBatch),
            _ => s
                .strip_prefix("upload:")
                .and_then(|n| n.parse().ok())
                .map(|next| SettlementStep::Upload { next }),
        }
    }
}

/// A group of writes that must be applied atomically, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Identifies the commit in [`crate::Engine::commit_done`].
    pub id: u64,
    /// The writes.
    pub ops: Vec<JournalOp>,
}

/// What the runtime loads from its journal when it opens, to start the engine where it stopped.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Counters.
    pub counters: Counters,
    /// Pending items in delivery order.
    pub pending: Vec<PendingItem>,
    /// Transactions still in `Sending`: their answer was never recorded.
    pub in_flight: Vec<TxnRecord>,
    /// The key block from the last sign-in, if any.
    pub wrapped_keys: Option<Vec<u8>>,
    /// An interrupted settlement, if any.
    pub settlement: Option<SettlementProgress>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_step_text_round_trip() {
        for s in [
            SettlementStep::Totals,
            SettlementStep::Upload { next: 17 },
            SettlementStep::EndOfBatch,
        ] {
            assert_eq!(SettlementStep::decode(&s.encode()), Some(s));
        }
        assert_eq!(SettlementStep::decode("upload:x"), None);
    }
}
