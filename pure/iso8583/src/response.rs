//! The response code table (field 39): one row per code with everything the terminal knows
//! about it — its English meaning, its class (approves, declines, try again later), whether it
//! ends a reversal, and the keys of its cashier diagnosis in `smartpos-diagnosis`. Every other
//! place that asks what a code means reads this table ([`ResponseCode::is_approved`],
//! [`ResponseCode::closes_reversal`], [`ResponseCode::is_temporary`],
//! [`ResponseCode::meaning`], the engine's unknown-code rule, the diagnosis lookup).
//!
//! Sources. Meanings: ISO 8583:1987 response code table (field 39 values 00-96 as commonly
//! published, e.g. the ISO 8583 annex reproduced by card schemes' host specifications) and the
//! China UnionPay POS terminal specification (中国银联 POS 终端规范, 应答码表) for 77, 97-99 and
//! A0. 45 and A1-A7: the UnionPay response code table, Q/CUP 006.6-2014 appendix A.2 (应答码),
//! whose "terminal action" column (终端操作) also gives the classes and the reversal column:
//! approvals include CUP's "approved with defects" A2, A4, A5, A6 (有缺陷的成功: the switch
//! stood in for an issuer that did not answer); "try again later" is [`ResponseClass::Temporary`].
//! 76, 78 (ISO private-use range, acquirer-specific) and 79 (CUP offline batch mismatch) have a
//! diagnosis but no published ISO meaning here; 17, 18, 23, 24, 26-29, 32, 37 and 42 have an
//! ISO meaning but no diagnosis, so the engine treats them as unknown (a sale answered with one
//! is reversed as a possible approval: `smartpos_txn::proto::reversed_as_possible_approval`).

use crate::wire::ResponseCode;

/// What a response code says about the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// The request was approved: money moved (for a financial request).
    Approved,
    /// The host refused the request.
    Declined,
    /// The host could not process the request now rather than refusing it ("try again later"
    /// in Q/CUP 006.6-2014 A.2). A store-and-forward advice answered with one is sent again.
    Temporary,
}

/// One row of the response code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRow {
    /// The code.
    pub code: ResponseCode,
    /// English meaning from the ISO 8583:1987 or CUP table (`None`: no published meaning).
    pub meaning: Option<&'static str>,
    /// Approves, declines or "try again later".
    pub class: ResponseClass,
    /// Whether an answer to a reversal (0410) with this code ends it: nothing is left charged
    /// (`00` reversed, `12` the original was never approved, `22` already reversed or cancelled,
    /// `25` no original matches). Any other code leaves the reversal pending.
    pub closes_reversal: bool,
    /// The key of the cashier diagnosis in `smartpos-diagnosis` (`None`: the terminal does not
    /// know the code, see [`ResponseCode::has_diagnosis`]).
    pub diagnosis: Option<&'static str>,
    /// The key of the refund-specific diagnosis, where a refund means something else than a
    /// sale (a refund is paid from the merchant's settlement account).
    pub refund_diagnosis: Option<&'static str>,
}

const fn row(
    code: [u8; 2],
    meaning: Option<&'static str>,
    class: ResponseClass,
    closes_reversal: bool,
    diagnosis: Option<&'static str>,
    refund_diagnosis: Option<&'static str>,
) -> ResponseRow {
    ResponseRow {
        code: ResponseCode(code),
        meaning,
        class,
        closes_reversal,
        diagnosis,
        refund_diagnosis,
    }
}

use ResponseClass::{Approved, Declined, Temporary};

/// Every response code the terminal has a fact about, in code order.
#[rustfmt::skip]
pub static RESPONSE_CODES: &[ResponseRow] = &[
    row(*b"00", Some("Approved or completed successfully"), Approved, true, Some("host.approved"), None),
    row(*b"01", Some("Refer to card issuer"), Declined, false, Some("host.refer_to_issuer"), None),
    row(*b"02", Some("Refer to card issuer, special condition"), Declined, false, Some("host.refer_to_issuer_special"), None),
    row(*b"03", Some("Invalid merchant"), Declined, false, Some("host.invalid_merchant"), None),
    row(*b"04", Some("Pick up card"), Declined, false, Some("host.pick_up_card"), None),
    row(*b"05", Some("Do not honour"), Declined, false, Some("host.do_not_honour"), Some("host.refund_declined")),
    row(*b"06", Some("Error"), Declined, false, Some("host.error"), None),
    row(*b"07", Some("Pick up card, special condition"), Declined, false, Some("host.pick_up_card_special"), None),
    row(*b"08", Some("Honour with identification"), Approved, false, Some("host.approved_with_id"), None),
    row(*b"09", Some("Request in progress"), Temporary, false, Some("host.in_progress"), None),
    row(*b"10", Some("Approved for partial amount"), Approved, false, Some("host.partial_approval"), None),
    row(*b"11", Some("Approved (VIP)"), Approved, false, Some("host.approved_vip"), None),
    row(*b"12", Some("Invalid transaction"), Declined, true, Some("host.invalid_transaction"), Some("host.refund_invalid")),
    row(*b"13", Some("Invalid amount"), Declined, false, Some("host.invalid_amount"), Some("host.refund_over_remainder")),
    row(*b"14", Some("Invalid card number (no such number)"), Declined, false, Some("host.invalid_card"), None),
    row(*b"15", Some("No such issuer"), Declined, false, Some("host.no_such_issuer"), None),
    row(*b"16", Some("Approved, update track 3"), Approved, false, Some("host.approved_update_track3"), None),
    row(*b"17", Some("Customer cancellation"), Declined, false, None, None),
    row(*b"18", Some("Customer dispute"), Declined, false, None, None),
    row(*b"19", Some("Re-enter transaction"), Declined, false, Some("host.reenter"), None),
    row(*b"20", Some("Invalid response"), Declined, false, Some("host.invalid_response"), None),
    row(*b"21", Some("No action taken"), Declined, false, Some("host.no_action"), None),
    row(*b"22", Some("Suspected malfunction"), Declined, true, Some("host.suspected_malfunction"), None),
    row(*b"23", Some("Unacceptable transaction fee"), Declined, false, None, None),
    row(*b"24", Some("File update not supported by receiver"), Declined, false, None, None),
    row(*b"25", Some("Unable to locate record on file"), Declined, true, Some("host.original_not_found"), Some("host.refund_original_not_found")),
    row(*b"26", Some("Duplicate file update record, old record replaced"), Declined, false, None, None),
    row(*b"27", Some("File update field edit error"), Declined, false, None, None),
    row(*b"28", Some("File update file locked out"), Declined, false, None, None),
    row(*b"29", Some("File update not successful, contact acquirer"), Declined, false, None, None),
    row(*b"30", Some("Format error"), Declined, false, Some("host.format_error"), None),
    row(*b"31", Some("Bank not supported by switch"), Declined, false, Some("host.bank_not_supported"), None),
    row(*b"32", Some("Completed partially"), Declined, false, None, None),
    row(*b"33", Some("Expired card, pick up"), Declined, false, Some("host.expired_pick_up"), None),
    row(*b"34", Some("Suspected fraud, pick up"), Declined, false, Some("host.fraud_pick_up"), None),
    row(*b"35", Some("Card acceptor contact acquirer, pick up"), Declined, false, Some("host.contact_acquirer_pick_up"), None),
    row(*b"36", Some("Restricted card, pick up"), Declined, false, Some("host.restricted_pick_up"), None),
    row(*b"37", Some("Card acceptor call acquirer security, pick up"), Declined, false, None, None),
    row(*b"38", Some("Allowable PIN tries exceeded, pick up"), Declined, false, Some("host.pin_tries_pick_up"), None),
    row(*b"39", Some("No credit account"), Declined, false, Some("host.no_credit_account"), None),
    row(*b"40", Some("Requested function not supported"), Declined, false, Some("host.function_not_supported"), None),
    row(*b"41", Some("Lost card, pick up"), Declined, false, Some("host.lost_card"), None),
    row(*b"42", Some("No universal account"), Declined, false, None, None),
    row(*b"43", Some("Stolen card, pick up"), Declined, false, Some("host.stolen_card"), None),
    row(*b"44", Some("No investment account"), Declined, false, Some("host.no_investment_account"), None),
    row(*b"45", Some("Fallback to magnetic stripe not allowed, use the chip (CUP)"), Declined, false, Some("host.fallback_not_allowed"), None),
    row(*b"51", Some("Not sufficient funds"), Declined, false, Some("host.insufficient_funds"), Some("host.refund_merchant_funds")),
    row(*b"52", Some("No cheque account"), Declined, false, Some("host.no_cheque_account"), None),
    row(*b"53", Some("No savings account"), Declined, false, Some("host.no_savings_account"), None),
    row(*b"54", Some("Expired card"), Declined, false, Some("host.expired_card"), None),
    row(*b"55", Some("Incorrect PIN"), Declined, false, Some("host.incorrect_pin"), None),
    row(*b"56", Some("No card record"), Declined, false, Some("host.no_card_record"), None),
    row(*b"57", Some("Transaction not permitted to cardholder"), Declined, false, Some("host.not_permitted_cardholder"), Some("host.refund_not_permitted_card")),
    row(*b"58", Some("Transaction not permitted to terminal"), Declined, false, Some("host.not_permitted_terminal"), Some("host.refund_not_permitted_terminal")),
    row(*b"59", Some("Suspected fraud"), Declined, false, Some("host.suspected_fraud"), Some("host.refund_under_review")),
    row(*b"60", Some("Card acceptor contact acquirer"), Declined, false, Some("host.contact_acquirer"), None),
    row(*b"61", Some("Exceeds withdrawal amount limit"), Declined, false, Some("host.amount_limit"), Some("host.refund_amount_limit")),
    row(*b"62", Some("Restricted card"), Declined, false, Some("host.restricted_card"), Some("host.refund_card_restricted")),
    row(*b"63", Some("Security violation"), Declined, false, Some("host.security_violation"), None),
    row(*b"64", Some("Original amount incorrect"), Declined, false, Some("host.original_amount_mismatch"), Some("host.refund_amount_mismatch")),
    row(*b"65", Some("Exceeds withdrawal frequency limit"), Declined, false, Some("host.frequency_limit"), Some("host.refund_frequency_limit")),
    row(*b"66", Some("Card acceptor call acquirer's security department"), Declined, false, Some("host.call_acquirer_security"), None),
    row(*b"67", Some("Hard capture, pick up card at ATM"), Declined, false, Some("host.hard_capture"), None),
    row(*b"68", Some("Response received too late"), Temporary, false, Some("host.response_too_late"), None),
    row(*b"75", Some("Allowable number of PIN tries exceeded"), Declined, false, Some("host.pin_tries_exceeded"), None),
    row(*b"76", None, Declined, false, Some("host.acquirer_specific_76"), None),
    row(*b"77", Some("Batch number mismatch, sign in again (CUP)"), Declined, false, Some("host.batch_mismatch"), None),
    row(*b"78", None, Declined, false, Some("host.acquirer_specific_78"), None),
    row(*b"79", None, Declined, false, Some("host.offline_mismatch"), None),
    row(*b"90", Some("Cutoff in process"), Temporary, false, Some("host.cutoff"), None),
    row(*b"91", Some("Issuer or switch inoperative"), Temporary, false, Some("host.issuer_unavailable"), None),
    row(*b"92", Some("Institution or network cannot be found for routing"), Temporary, false, Some("host.routing_failed"), None),
    row(*b"93", Some("Transaction cannot be completed, violation of law"), Declined, false, Some("host.violation_of_law"), None),
    row(*b"94", Some("Duplicate transmission"), Temporary, false, Some("host.duplicate"), Some("host.refund_duplicate")),
    row(*b"95", Some("Reconcile error"), Declined, false, Some("host.reconcile_error"), None),
    row(*b"96", Some("System malfunction"), Temporary, false, Some("host.system_malfunction"), None),
    row(*b"97", Some("Terminal not registered (CUP)"), Declined, false, Some("host.terminal_not_registered"), None),
    row(*b"98", Some("No response from issuer, timeout (CUP)"), Temporary, false, Some("host.issuer_timeout"), None),
    row(*b"99", Some("PIN format error (CUP)"), Declined, false, Some("host.pin_format_error"), None),
    row(*b"A0", Some("MAC verification failed, sign in again (CUP)"), Temporary, false, Some("host.mac_error"), None),
    row(*b"A1", Some("Transfer currencies differ (CUP)"), Declined, false, Some("host.currency_mismatch"), None),
    row(*b"A2", Some("Approved with defects: confirm with the receiving bank (CUP)"), Approved, false, Some("host.approved_with_defects_a2"), None),
    row(*b"A3", Some("No such account at the receiving bank (CUP)"), Declined, false, Some("host.no_receiving_account"), None),
    row(*b"A4", Some("Approved with defects: confirm with the receiving bank (CUP)"), Approved, false, Some("host.approved_with_defects_a4"), None),
    row(*b"A5", Some("Approved with defects: confirm with the receiving bank (CUP)"), Approved, false, Some("host.approved_with_defects_a5"), None),
    row(*b"A6", Some("Approved with defects: confirm with the receiving bank (CUP)"), Approved, false, Some("host.approved_with_defects_a6"), None),
    row(*b"A7", Some("Security processing failed (CUP)"), Temporary, false, Some("host.security_failure"), None),
];

impl ResponseCode {
    /// The code's row in [`RESPONSE_CODES`], if it has one.
    pub fn row(&self) -> Option<&'static ResponseRow> {
        RESPONSE_CODES.iter().find(|r| r.code == *self)
    }

    /// Whether the terminal knows the code: it has a cashier diagnosis. A code without one may
    /// be an approval of the host's own, so a request that may move money answered with it is
    /// reversed rather than called declined.
    pub fn has_diagnosis(&self) -> bool {
        self.row().is_some_and(|r| r.diagnosis.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn one_row_per_code_in_code_order() {
        let codes: Vec<[u8; 2]> = RESPONSE_CODES.iter().map(|r| r.code.0).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted, "rows are unique and sorted by code");
    }

    #[test]
    fn every_row_is_consistent() {
        let mut keys = BTreeSet::new();
        for r in RESPONSE_CODES {
            let c = r.code;
            assert!(
                r.meaning.is_some() || r.diagnosis.is_some(),
                "{c}: a row says something"
            );
            assert!(
                !(r.closes_reversal && r.class == Temporary),
                "{c}: closes a reversal and temporary"
            );
            if r.refund_diagnosis.is_some() {
                assert!(
                    r.diagnosis.is_some(),
                    "{c}: refund wording refines a diagnosis"
                );
            }
            for k in [r.diagnosis, r.refund_diagnosis].into_iter().flatten() {
                assert!(k.starts_with("host."), "{c}: diagnosis key {k}");
                assert!(keys.insert(k), "{c}: diagnosis key {k} used twice");
            }
            // The methods read the row.
            assert_eq!(c.is_approved(), r.class == Approved, "{c}");
            assert_eq!(c.is_temporary(), r.class == Temporary, "{c}");
            assert_eq!(c.closes_reversal(), r.closes_reversal, "{c}");
            assert_eq!(c.meaning(), r.meaning, "{c}");
        }
        // Codes outside the table: no class, no meaning.
        for c in [*b"Z9", *b"47", *b"a0"] {
            let c = ResponseCode(c);
            assert!(c.row().is_none() && !c.is_approved() && !c.is_temporary());
            assert!(!c.closes_reversal() && !c.has_diagnosis() && c.meaning().is_none());
        }
    }

    #[test]
    fn an_approval_has_a_diagnosis_and_only_00_both_approves_and_closes_a_reversal() {
        for r in RESPONSE_CODES.iter().filter(|r| r.class == Approved) {
            assert!(r.diagnosis.is_some(), "{}: approvals are known", r.code);
            assert_eq!(
                r.closes_reversal,
                r.code == ResponseCode::APPROVED,
                "{}",
                r.code
            );
        }
        let approvals: Vec<String> = RESPONSE_CODES
            .iter()
            .filter(|r| r.class == Approved)
            .map(|r| r.code.to_string())
            .collect();
        assert_eq!(
            approvals,
            ["00", "08", "10", "11", "16", "A2", "A4", "A5", "A6"]
        );
    }
}
