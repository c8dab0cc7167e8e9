//! [`Diagnosis`]: what the cashier reads about an outcome or an error, copied out of the
//! core's static tables (`smartpos_terminal::api::diagnosis`). Both the records of `convert/`
//! and [`crate::SmartPosError`] carry it; it lives here so that neither imports the other.

use crate::convert::TxnKind;
use smartpos_terminal::api::diagnosis;
use smartpos_terminal::api::{OpError, TxnOutcome};

/// What went wrong, for the cashier, in Chinese and English, with what happened to the money.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Diagnosis {
    /// Stable machine id, e.g. `host.insufficient_funds`.
    pub code: String,
    /// Whose fault: `network`, `card`, `host`, ...
    pub category: String,
    /// What happened to the money: `not_moved`, `moved`, `in_doubt_reversing`, ...
    pub money: String,
    /// Whether trying again helps: `yes`, `no`, `after_fix`, `later`.
    pub retry: String,
    /// A few words, Chinese.
    pub title_zh: String,
    /// A few words, English.
    pub title_en: String,
    /// One or two sentences, Chinese.
    pub explanation_zh: String,
    /// One or two sentences, English.
    pub explanation_en: String,
    /// What to do, in order, Chinese.
    pub next_steps_zh: Vec<String>,
    /// What to do, in order, English.
    pub next_steps_en: Vec<String>,
    /// Host response code it came from, if any.
    pub host_code: Option<String>,
}

impl From<diagnosis::Diagnosis> for Diagnosis {
    fn from(d: diagnosis::Diagnosis) -> Self {
        Diagnosis {
            code: d.code.to_owned(),
            category: d.category.as_str().to_owned(),
            money: d.money.as_str().to_owned(),
            retry: d.retry.as_str().to_owned(),
            title_zh: d.title.zh.to_owned(),
            title_en: d.title.en.to_owned(),
            explanation_zh: d.explanation.zh.to_owned(),
            explanation_en: d.explanation.en.to_owned(),
            next_steps_zh: d.next_steps.iter().map(|t| t.zh.to_owned()).collect(),
            next_steps_en: d.next_steps.iter().map(|t| t.en.to_owned()).collect(),
            host_code: d.host_code,
        }
    }
}

/// What to tell the cashier about a not-approved outcome: the core's diagnosis of the whole
/// outcome (a card that declined after the host approved has its own, not the plain
/// "reversed").
pub(crate) fn diagnose_outcome(o: &TxnOutcome) -> Option<Diagnosis> {
    smartpos_terminal::api::diagnosis::outcome_diagnosis(o).map(Diagnosis::from)
}

/// What to tell the cashier about an engine error.
pub(crate) fn diagnose_op(err: &OpError) -> Option<Diagnosis> {
    Some(diagnosis::for_op_error(err).into())
}

/// The diagnosis of a host response code (field 39) for a transaction kind, e.g. to explain a
/// code shown on an old receipt. Unknown codes give `host.unknown_code_reversed` (the kinds the
/// engine reverses on them) or `host.unknown_code`.
#[uniffi::export]
pub fn diagnose_response_code(code: String, kind: TxnKind) -> Diagnosis {
    crate::stats::call();
    diagnosis::for_response_code(&code, crate::convert::core_kind(kind)).into()
}
