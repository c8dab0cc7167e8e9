//! Reconciliation of a terminal journal against the host ledger.
//!
//! The check behind "never loses or doubles money": every record's state must agree with what
//! the host holds for the same terminal, STAN and date, and the host must hold no approval the
//! terminal does not know.

use crate::acquirer::{HostStatus, Ledger};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};

/// Compares `records` of terminal `tid` with the ledger; returns one line per difference.
///
/// With `allow_in_doubt`, records still `reversing` are accepted whatever the host holds (their
/// reversal is pending); without it they count as differences (use after recovery).
pub fn reconcile(
    records: &[TxnRecord],
    ledger: &Ledger,
    tid: &str,
    allow_in_doubt: bool,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for r in records.iter().filter(|r| r.kind != TxnKind::Balance) {
        let host = ledger
            .transactions
            .iter()
            .rfind(|h| h.tid == tid && h.stan == r.stan && h.date == r.local_date)
            .map(|h| h.status);
        let ok = match (r.state, host) {
            (TxnState::Approved, Some(HostStatus::Approved))
            | (TxnState::Voided, Some(HostStatus::Voided))
            | (TxnState::Declined, Some(HostStatus::Declined) | None)
            // A decline whose answer was lost is reversed by the terminal; the host keeps it
            // declined. No money moved on either side.
            | (TxnState::Reversed, Some(HostStatus::Reversed | HostStatus::Declined) | None)
            | (TxnState::NotSent | TxnState::Queued, None) => true,
            (TxnState::Reversing | TxnState::Sending, _) => allow_in_doubt,
            _ => false,
        };
        if !ok {
            diffs.push(format!(
                "{} {} {}: terminal {} vs host {host:?}",
                r.reference, r.kind, r.amount, r.state
            ));
        }
    }
    for h in ledger.transactions.iter().filter(|h| h.tid == tid) {
        let known = records
            .iter()
            .any(|r| r.stan == h.stan && r.local_date == h.date);
        if !known && matches!(h.status, HostStatus::Approved | HostStatus::Voided) {
            diffs.push(format!(
                "host stan {:06} {} {} is {:?}, unknown to the terminal",
                h.stan, h.kind, h.amount, h.status
            ));
        }
    }
    diffs
}
