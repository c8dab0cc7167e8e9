//! Refund safety at the till: operators and sessions, the refund policy, supervisor approval,
//! the diagnosis of every failure, and the support bundle.
//!
//! Operators (supervisor `00`, cashiers `01`-`99`) live in the journal's `operator` table; every
//! operator action is written to the `audit` table in the same SQLite transaction as the record
//! change. The current session is kept in the journal too, so that the CLI (one process per
//! command) and an app that restarts keep the cashier logged in until `logout`.
//!
//! The refund policy is evaluated before the card is asked for and before anything is sent: a
//! denied refund never reaches the host, and every rule that denies is reported.

use crate::facets::{Admin, Support};
use crate::journal::{Journal, JournalError};
use crate::runtime::{Terminal, TerminalError, TxnOutcome};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use smartpos_diagnosis::{self as diagnosis, Diagnosis, LinkFailure, MoneyState};
use smartpos_operators::policy::{self, Denial, RefundContext, RefundPolicy, RefundQuote};
use smartpos_operators::{
    Audited, Challenge, LoginResult, OperatorConfig, OperatorError, Operators, Password, Role,
    Session,
};
use smartpos_txn::OpError;
use smartpos_txn::model::{LocalDateTime, PendingKind, TxnKind, TxnRecord, TxnState};

const DAY_MS: i64 = 86_400_000;

/// The journal `meta` key of the supervisor unlock challenge in use (empty when none).
const UNLOCK_CHALLENGE_KEY: &str = "unlock_challenge";

/// Operator-related settings stored in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SafetySettings {
    /// Whether financial commands need a logged-in operator. On for terminals created by the
    /// CLI's `init`; apps that manage cashiers themselves may leave it off.
    pub require_login: bool,
    /// The refund policy.
    pub refund_policy: RefundPolicy,
    /// PBKDF2 and lockout settings.
    pub operators: OperatorConfig,
}

impl Default for SafetySettings {
    fn default() -> Self {
        SafetySettings {
            require_login: false,
            // Supervisor approval is a merchant decision: off unless configured.
            refund_policy: RefundPolicy {
                supervisor_approval_above: None,
                ..RefundPolicy::default()
            },
            operators: OperatorConfig::default(),
        }
    }
}

/// The operator state of an open terminal.
pub(crate) struct Safety {
    pub(crate) settings: SafetySettings,
    pub(crate) operators: Operators,
    pub(crate) session: Option<Session>,
    pub(crate) challenge: Option<Challenge>,
}

fn config_err(e: impl std::fmt::Display) -> TerminalError {
    TerminalError::Config(e.to_string())
}

impl Safety {
    /// Loads operators, settings and the session; creates the salt and the supervisor on first
    /// open.
    pub(crate) fn load(journal: &mut Journal, now_ms: i64) -> Result<Safety, TerminalError> {
        let settings: SafetySettings = match journal.meta("safety")? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| config_err(format!("safety settings: {e}")))?,
            None => SafetySettings::default(),
        };
        let salt = match journal.meta("operator_salt")? {
            Some(h) => smartpos_types::hex::decode(&h)
                .map_err(|_| config_err("operator salt unreadable"))?,
            None => {
                let mut salt = vec![0u8; 16];
                SystemRandom::new()
                    .fill(&mut salt)
                    .map_err(|_| config_err("no randomness for the operator salt"))?;
                journal.set_meta("operator_salt", &smartpos_types::hex::encode(&salt))?;
                salt
            }
        };
        let mut operators =
            Operators::from_records(&salt, settings.operators, journal.operators()?)
                .map_err(config_err)?;
        let created = operators.ensure_supervisor(now_ms);
        journal.apply_operators(&created.changes, &created.audit)?;
        let session = journal
            .meta("session")?
            .and_then(|j| serde_json::from_str::<Session>(&j).ok())
            .filter(|s| operators.require(Some(s), false).is_ok());
        Ok(Safety {
            settings,
            operators,
            session,
            challenge: None,
        })
    }
}

/// Applies an operator action's record changes and audit rows, then returns its result.
fn commit<T>(journal: &mut Journal, a: Audited<T>) -> Result<T, TerminalError> {
    journal.apply_operators(&a.changes, &a.audit)?;
    a.result.map_err(TerminalError::Operator)
}

/// Where the money stands for a transaction outcome, and what to tell the cashier.
pub fn outcome_diagnosis(o: &TxnOutcome) -> Option<Diagnosis> {
    if o.card.as_ref().is_some_and(|c| c.declined_by_card) {
        return Some(diagnosis::declined_by_card(o.reversal_pending));
    }
    // A transaction reversed (or being reversed) while the terminal had to sign in again: the
    // keys were the trouble, not the network.
    if let Some(recovery) = o.security
        && matches!(o.record.state, TxnState::Reversed | TxnState::Reversing)
    {
        return Some(diagnosis::for_security(
            recovery,
            money_of(o.reversal_pending),
        ));
    }
    diagnosis::for_outcome(&o.record, o.reversal_pending)
}

/// Where the money stands after a transaction outcome: the diagnosis' money state when there is
/// one (declined, reversed, being reversed, queued, ...), otherwise that of an approval of its
/// kind: a sale, pre-authorisation or completion charged the customer, a refund refunded, a
/// void, a cancellation or a balance inquiry left the customer not charged.
pub fn outcome_money_state(o: &TxnOutcome) -> MoneyState {
    if let Some(d) = outcome_diagnosis(o) {
        return d.money;
    }
    if o.reversal_pending {
        return MoneyState::ReversalPending;
    }
    match o.record.kind {
        TxnKind::Refund => MoneyState::Refunded,
        TxnKind::Void | TxnKind::PreAuthCancel | TxnKind::Balance => MoneyState::NotCharged,
        TxnKind::Sale | TxnKind::PreAuth | TxnKind::Completion => MoneyState::Charged,
    }
}

fn money_of(reversal_pending: bool) -> diagnosis::MoneyState {
    if reversal_pending {
        diagnosis::MoneyState::ReversalPending
    } else {
        diagnosis::MoneyState::NotCharged
    }
}

impl TerminalError {
    /// The cashier-facing diagnosis of this error (category, money state, retry, zh/en text).
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            TerminalError::Op(e) => diagnosis::for_op_error(e),
            TerminalError::Security { recovery, cause } => diagnosis::for_security(
                *recovery,
                money_of(matches!(cause, OpError::PendingUndelivered { .. })),
            ),
            TerminalError::Operator(e) => e.diagnosis(),
            TerminalError::RefundDenied { denials } => denials
                .first()
                .map(|d| d.diagnosis.clone())
                .unwrap_or_else(|| diagnosis::for_op_error(&smartpos_txn::OpError::NotSent)),
            TerminalError::Card(c) => card_diagnosis(c),
            TerminalError::NotFound { .. } => {
                diagnosis::for_reject(diagnosis::RejectReason::OriginalNotFound)
            }
            TerminalError::IdempotencyConflict => {
                diagnosis::for_reject(diagnosis::RejectReason::IdempotencyConflict)
            }
            TerminalError::JournalMissing { .. }
            | TerminalError::JournalMismatch { .. }
            | TerminalError::JournalRolledBack { .. }
            | TerminalError::GuardStore { .. } => {
                crate::guard::diagnosis(self).unwrap_or_else(diagnosis::software_fault)
            }
            TerminalError::HostLink(e) => diagnosis::for_link_error(link_failure(e)),
            TerminalError::Journal(e) => crate::storage::diagnosis(e),
            TerminalError::Poisoned | TerminalError::Config(_) => diagnosis::software_fault(),
        }
    }
}

fn card_diagnosis(c: &crate::card::CardError) -> Diagnosis {
    use crate::card::CardError;
    use smartpos_diagnosis::CardError as P;
    use smartpos_emv::certified::{CardRefusal, KernelBridgeError};
    use smartpos_emv::kernel::KernelError;
    let p = match c {
        CardError::Kernel(KernelError::CardRemoved { .. }) => P::CardRemoved,
        CardError::Kernel(KernelError::NotSupported { .. }) => P::NotSupported,
        CardError::Kernel(KernelError::CardBlocked { .. } | KernelError::AppBlocked { .. }) => {
            P::CardBlocked
        }
        CardError::Kernel(KernelError::TryAnotherInterface { .. }) => P::TryAnotherInterface,
        CardError::PinCancelled | CardError::PinPadMissing => P::PinCancelled,
        CardError::DeclinedOffline => P::DeclinedOffline,
        CardError::Refused(r) => match r {
            CardRefusal::ChipCardSwiped => P::ChipCardSwiped,
            CardRefusal::BadCheckDigit => P::BadCardNumber,
            CardRefusal::BadExpiry => P::BadExpiry,
            CardRefusal::EntryNotAllowed => P::EntryNotAllowed,
            _ => P::ReadFailed,
        },
        CardError::Bridge(b) => match b {
            KernelBridgeError::Aborted | KernelBridgeError::Timeout => P::Cancelled,
            KernelBridgeError::CardRemoved => P::CardRemoved,
            KernelBridgeError::NotAccepted { .. } => P::NotSupported,
            _ => P::ReadFailed,
        },
        CardError::Reader(_) => P::Cancelled,
        _ => P::ReadFailed,
    };
    diagnosis::for_card(p)
}

/// Maps a link failure for diagnosis.
pub fn link_failure(e: &crate::link::LinkError) -> LinkFailure {
    use crate::link::LinkError;
    match e {
        LinkError::ConnectTimeout | LinkError::Connect { .. } => LinkFailure::ConnectFailed,
        LinkError::Tls(_) | LinkError::ClientCertificateRefused { .. } => LinkFailure::TlsFailed,
        LinkError::PinMismatch => LinkFailure::PinMismatch,
        LinkError::Timeout => LinkFailure::Timeout,
        LinkError::Closed => LinkFailure::Closed,
        _ => LinkFailure::Io,
    }
}

/// A supervisor's approval for one refund (password typed at the till).
#[derive(Debug)]
pub struct Approval {
    /// The supervisor's password.
    pub password: Password,
}

/// The longest acquirer reference [`Admin::resolve_reversal`] takes (characters).
pub const ACQUIRER_REF_MAX: usize = 40;

impl Terminal {
    /// Whether the settings may be changed now: while login is required, only by the
    /// supervisor's session (a refusal is audited as `settings_denied`).
    pub(crate) fn may_change_settings(&mut self) -> Result<(), TerminalError> {
        if self.safety.settings.require_login
            && let Err(e) = self.supervisor_session()
        {
            self.audit("settings_denied", format!("{e}"));
            return Err(e);
        }
        Ok(())
    }

    fn save_session(&mut self) -> Result<(), JournalError> {
        let json = match &self.safety.session {
            Some(s) => serde_json::to_string(s).unwrap_or_default(),
            None => String::new(),
        };
        self.journal.set_meta("session", &json)
    }

    fn supervisor_session(&self) -> Result<Session, TerminalError> {
        self.safety
            .operators
            .require(self.safety.session.as_ref(), true)
            .map_err(TerminalError::Operator)?;
        self.safety
            .session
            .clone()
            .ok_or(TerminalError::Operator(OperatorError::NotLoggedIn))
    }

    /// The operator for a financial command: the session's when logged in; an error when
    /// login is required and nobody is logged in.
    pub(crate) fn acting_operator(
        &self,
        given: Option<&str>,
    ) -> Result<Option<String>, TerminalError> {
        if let Some(s) = &self.safety.session
            && self.safety.operators.require(Some(s), false).is_ok()
        {
            return Ok(Some(s.operator.clone()));
        }
        if self.safety.settings.require_login {
            self.safety
                .operators
                .require(self.safety.session.as_ref(), false)
                .map_err(TerminalError::Operator)?;
        }
        Ok(given.map(str::to_owned))
    }

    fn refund_context_numbers(&self, operator: &str) -> Result<(u64, u64), TerminalError> {
        let now = self.now_local_ms();
        let day_start_local = now - now.rem_euclid(DAY_MS);
        let offset = i64::from(self.cfg.utc_offset_minutes) * 60_000;
        let from = day_start_local - offset;
        let to = from + DAY_MS;
        Ok((
            self.journal.refunded_between(from, to, None)?,
            self.journal.refunded_between(from, to, Some(operator))?,
        ))
    }

    /// Unix milliseconds `at_ms` as the terminal's local time, ISO 8601 with the offset.
    fn local_text(&self, at_ms: i64) -> String {
        let offset = self.cfg.utc_offset_minutes;
        LocalDateTime::from_unix_ms_utc(at_ms + i64::from(offset) * 60_000).iso8601(offset)
    }

    fn now_local_ms(&self) -> i64 {
        self.unix_ms() + i64::from(self.cfg.utc_offset_minutes) * 60_000
    }

    /// A refund checked against the refund policy first (all denials reported, nothing sent
    /// when denied), with an optional supervisor approval. The operator is the logged-in one,
    /// else `operator` (as for sales and voids); the refund advice carries it in field 63.
    pub async fn refund_checked(
        &mut self,
        reference: &str,
        amount: u64,
        idempotency_key: Option<&str>,
        operator: Option<&str>,
        approval: Option<Approval>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.refuse_if_tampered()?;
        let operator = self.acting_operator(operator)?.unwrap_or_default();
        // No operator at all: the advice names none (no field 63), not three blanks.
        let named = Some(operator.as_str()).filter(|o| !o.is_empty());
        if let Some(key) = idempotency_key
            && let Some(done) = self.journal.by_idempotency_key(key)?
            && done.kind == TxnKind::Refund
            && done.amount == amount
        {
            return self
                .refund_unchecked(reference, amount, idempotency_key, named)
                .await;
        }
        let original = self.original(reference)?;
        let mut approved = false;
        if let Some(a) = approval {
            let now = self.unix_ms();
            let r = self.safety.operators.approve_as_supervisor(
                &a.password,
                &format!("refund of {amount} on {reference}"),
                &operator,
                now,
            );
            commit(&mut self.journal, r)?;
            approved = true;
        }
        let (term_today, op_today) = self.refund_context_numbers(&operator)?;
        let ctx = RefundContext {
            original: &original,
            refunds_so_far: self.journal.refunded_total(reference)?,
            now_unix_ms: self.unix_ms(),
            terminal_refunded_today: term_today,
            operator_refunded_today: op_today,
            operator: &operator,
            is_supervisor: self
                .operators()
                .session()
                .is_some_and(|s| s.role == Role::Supervisor),
            supervisor_approved: approved,
            card_token_matches: None,
            currency: &self.cfg.currency,
        };
        if let Err(denials) = policy::check(&self.safety.settings.refund_policy, &ctx, amount) {
            let detail = denials
                .iter()
                .map(|d| d.rule.code())
                .collect::<Vec<_>>()
                .join(",");
            let entry = smartpos_operators::AuditEntry {
                at_ms: self.unix_ms(),
                operator: operator.clone(),
                action: "refund_denied",
                detail: format!("{reference}: {detail}"),
            };
            self.journal.apply_operators(&[], &[entry])?;
            return Err(TerminalError::RefundDenied { denials });
        }
        let out = self
            .refund_unchecked(reference, amount, idempotency_key, named)
            .await?;
        let entry = smartpos_operators::AuditEntry {
            at_ms: self.unix_ms(),
            operator,
            action: "refund",
            detail: format!(
                "{} of {amount} on {reference}: {}",
                out.record.reference, out.record.state
            ),
        };
        self.journal.apply_operators(&[], &[entry])?;
        Ok(out)
    }

    /// An audit row for an action of the logged-in operator (empty when nobody is), now.
    pub(crate) fn audit_entry(
        &self,
        action: &'static str,
        detail: String,
    ) -> smartpos_operators::AuditEntry {
        smartpos_operators::AuditEntry {
            at_ms: self.unix_ms(),
            operator: self
                .safety
                .session
                .as_ref()
                .map(|s| s.operator.clone())
                .unwrap_or_default(),
            action,
            detail,
        }
    }

    /// Records an operator action in the audit table (void, settlement, ...).
    pub(crate) fn audit(&mut self, action: &'static str, detail: String) {
        let entry = self.audit_entry(action, detail);
        if let Err(e) = self.journal.apply_operators(&[], &[entry]) {
            log::warn!("audit row not written: {e}");
        }
    }
}

/// The audit summary of a settings change: login, the refund window and limits, the
/// supervisor threshold, the fee and the lockout (numbers only, no secrets).
fn settings_summary(s: &SafetySettings) -> String {
    let p = &s.refund_policy;
    let opt = |v: Option<u64>| v.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let fee = match p.fee {
        None => "none".to_owned(),
        Some(policy::Fee::Fixed(f)) => f.to_string(),
        Some(policy::Fee::Percent { basis_points }) => format!("{basis_points}bp"),
    };
    format!(
        "require_login={} window={}d supervisor_above={} max_single={} daily_terminal={} \
         daily_operator={} same_card={} fee={fee} max_failed_attempts={}",
        s.require_login,
        p.max_days_since_original,
        opt(p.supervisor_approval_above),
        opt(p.max_single_refund),
        opt(p.daily_total_per_terminal),
        opt(p.daily_total_per_operator),
        p.same_card_required,
        s.operators.max_failed_attempts,
    )
}

/// A denial of a refund: the rule and its diagnosis.
pub fn denial_json(d: &Denial) -> serde_json::Value {
    serde_json::json!({ "rule": d.rule, "diagnosis": diagnosis_json(&d.diagnosis) })
}

/// A diagnosis as JSON with the field names of the public contract: `code`, `category`,
/// `money_state`, `retry`, `message_zh`, `message_en`, `next_steps` (each `{zh, en}`), and
/// `host_code` when it came from a host response code.
pub fn diagnosis_json(d: &Diagnosis) -> serde_json::Value {
    use smartpos_diagnosis::Lang;
    let msg = |lang: Lang| {
        let sep = if lang == Lang::Zh { "：" } else { ": " };
        format!("{}{sep}{}", d.title.get(lang), d.explanation.get(lang))
    };
    serde_json::json!({
        "code": d.code,
        "category": d.category.as_str(),
        "money_state": d.money.as_str(),
        "retry": d.retry.as_str(),
        "message_zh": msg(Lang::Zh),
        "message_en": msg(Lang::En),
        "next_steps": d.next_steps.iter().map(|s| serde_json::json!({"zh": s.zh, "en": s.en})).collect::<Vec<_>>(),
        "host_code": d.host_code,
    })
}

impl<'a> crate::facets::Operators<'a> {
    /// Current operator session, if any.
    pub fn session(self) -> Option<&'a Session> {
        let t = self.t;
        t.safety.session.as_ref()
    }

    /// The operators (password hashes stay inside; `Debug` redacts them).
    pub fn list(self) -> impl Iterator<Item = &'a smartpos_operators::OperatorRecord> {
        let t = self.t;
        t.safety.operators.records()
    }

    /// Logs an operator in. A first login with the default password returns
    /// `MustChangePassword`; [`Operators::change_password`] then opens the session.
    pub fn login(self, id: &str, password: &str) -> Result<LoginResult, TerminalError> {
        let now = self.t.unix_ms();
        let a = self
            .t
            .safety
            .operators
            .login(id, &Password::new(password), now);
        let r = commit(&mut self.t.journal, a)?;
        if let LoginResult::LoggedIn(s) = &r {
            self.t.safety.session = Some(s.clone());
            self.t.save_session()?;
        }
        Ok(r)
    }

    /// Changes an operator's password (the forced first change, or later) and logs it in.
    pub fn change_password(self, id: &str, old: &str, new: &str) -> Result<Session, TerminalError> {
        let now = self.t.unix_ms();
        let a = self.t.safety.operators.change_password(
            id,
            &Password::new(old),
            &Password::new(new),
            now,
        );
        let s = commit(&mut self.t.journal, a)?;
        self.t.safety.session = Some(s.clone());
        self.t.save_session()?;
        Ok(s)
    }

    /// Logs the current operator out.
    pub fn logout(self) -> Result<(), TerminalError> {
        if let Some(s) = self.t.safety.session.take() {
            let e = self.t.safety.operators.logout(&s, self.t.unix_ms());
            self.t.journal.apply_operators(&[], &[e])?;
            self.t.save_session()?;
        }
        Ok(())
    }

    /// Adds a cashier (supervisor only); the new cashier has the default password.
    pub fn add_cashier(self, id: &str) -> Result<(), TerminalError> {
        let by = self.t.supervisor_session()?;
        let a = self
            .t
            .safety
            .operators
            .create_cashier(&by, id, self.t.unix_ms());
        commit(&mut self.t.journal, a)
    }

    /// Removes a cashier (supervisor only).
    pub fn delete_cashier(self, id: &str) -> Result<(), TerminalError> {
        let by = self.t.supervisor_session()?;
        let a = self.t.safety.operators.delete(&by, id, self.t.unix_ms());
        commit(&mut self.t.journal, a)
    }

    /// Unlocks a locked cashier (supervisor only).
    pub fn unlock_cashier(self, id: &str) -> Result<(), TerminalError> {
        let by = self.t.supervisor_session()?;
        let a = self.t.safety.operators.unlock(&by, id, self.t.unix_ms());
        commit(&mut self.t.journal, a)
    }

    /// Resets a cashier's password to the default, with a forced change (supervisor only).
    pub fn reset_cashier_password(self, id: &str) -> Result<(), TerminalError> {
        let by = self.t.supervisor_session()?;
        let a = self
            .t
            .safety
            .operators
            .reset_password(&by, id, self.t.unix_ms());
        commit(&mut self.t.journal, a)
    }

    /// Starts the locked-supervisor flow: an 8-digit challenge the merchant reads to the
    /// acquirer's service desk (see the README). The challenge is kept in the journal until it
    /// is used or replaced, so the code may be typed in another process (the CLI) or after a
    /// restart; issuing one is audited (`unlock_challenge`).
    pub fn supervisor_unlock_challenge(self) -> Result<String, TerminalError> {
        let mut n = [0u8; 8];
        SystemRandom::new()
            .fill(&mut n)
            .map_err(|_| config_err("no randomness for the challenge"))?;
        let c = smartpos_operators::unlock_challenge(
            &self.t.cfg.tid,
            u64::from_be_bytes(n),
            self.t.unix_ms(),
        );
        let digits = c.digits.clone();
        let json = serde_json::to_string(&c).map_err(config_err)?;
        let entry = self.t.audit_entry(
            "unlock_challenge",
            format!(
                "supervisor unlock challenge issued for terminal {}",
                c.terminal_id
            ),
        );
        self.t
            .journal
            .set_meta_audited(UNLOCK_CHALLENGE_KEY, &json, &entry)?;
        self.t.safety.challenge = Some(c);
        Ok(digits)
    }

    /// Completes the locked-supervisor flow with the service desk's code; `secret` is the
    /// unlock secret shared with the service desk (from the secure store). The challenge is
    /// used up either way (a wrong code needs a new challenge); no challenge is a `Config`
    /// error.
    pub fn unlock_supervisor(self, code: &str, secret: &[u8]) -> Result<(), TerminalError> {
        let stored = match self.t.safety.challenge.take() {
            Some(c) => Some(c),
            None => self
                .t
                .journal
                .meta(UNLOCK_CHALLENGE_KEY)?
                .and_then(|j| serde_json::from_str(&j).ok()),
        };
        let c = stored.ok_or_else(|| {
            config_err("no unlock challenge in use (a wrong code uses it up): ask for a new one")
        })?;
        self.t.journal.set_meta(UNLOCK_CHALLENGE_KEY, "")?;
        let a = self
            .t
            .safety
            .operators
            .unlock_supervisor(&c, code, secret, self.t.unix_ms());
        commit(&mut self.t.journal, a)
    }

    /// What may be refunded on `reference` right now, and every rule that would deny it.
    pub fn refund_quote(self, reference: &str) -> Result<RefundQuote, TerminalError> {
        let original = self.t.original(reference)?;
        let operator = self
            .t
            .safety
            .session
            .as_ref()
            .map(|s| s.operator.clone())
            .unwrap_or_default();
        let (term_today, op_today) = self.t.refund_context_numbers(&operator)?;
        let ctx = RefundContext {
            original: &original,
            refunds_so_far: self.t.journal.refunded_total(reference)?,
            now_unix_ms: self.t.unix_ms(),
            terminal_refunded_today: term_today,
            operator_refunded_today: op_today,
            operator: &operator,
            is_supervisor: self
                .t
                .operators()
                .session()
                .is_some_and(|s| s.role == Role::Supervisor),
            supervisor_approved: false,
            card_token_matches: None,
            currency: &self.t.cfg.currency,
        };
        Ok(policy::quote(&self.t.safety.settings.refund_policy, &ctx))
    }
}

impl<'a> Support<'a> {
    /// A support bundle for the acquirer's help desk: configuration (no secrets), counters,
    /// pending items, recent transactions (masked), the masked host trace, pending prints and
    /// the recent audit log, as one JSON document.
    pub fn support_bundle(self) -> Result<serde_json::Value, TerminalError> {
        let recent = self.t.journal.recent(100)?;
        let pending: Vec<serde_json::Value> = self
            .t
            .pending()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "seq": p.seq, "kind": p.kind.as_str(), "reference": p.reference,
                    "reason": p.reason.map(|r| r.code()), "attempts": p.attempts, "armed": p.armed,
                })
            })
            .collect();
        let txns: Vec<serde_json::Value> = recent
            .iter()
            .map(|r| {
                serde_json::json!({
                    "reference": r.reference, "kind": r.kind.as_str(), "state": r.state.as_str(),
                    "amount": r.amount, "stan": r.stan, "batch": r.batch, "rrn": r.rrn,
                    "response_code": r.response_code.as_deref(), "pan": r.pan_masked,
                    "local_time": r.local_time_text(),
                    "diagnosis": diagnosis::for_outcome(r, self.t.support().in_doubt(r)).map(|d| d.code),
                })
            })
            .collect();
        let trace: Vec<serde_json::Value> = self.t
            .journal
            .trace_lines()?
            .into_iter()
            .map(|(at, dir, text)| serde_json::json!({"at_ms": at, "at": self.t.local_text(at), "direction": dir, "text": text}))
            .collect();
        let audit: Vec<serde_json::Value> = self.t
            .journal
            .audit_log(200)?
            .into_iter()
            .map(|(at, op, action, detail)| serde_json::json!({"at_ms": at, "at": self.t.local_text(at), "operator": op, "action": action, "detail": detail}))
            .collect();
        Ok(serde_json::json!({
            "terminal": {
                "tid": self.t.cfg.tid, "mid": self.t.cfg.mid, "dialect": self.t.cfg.dialect,
                "currency": self.t.cfg.currency, "host": self.t.cfg.link.host,
                "tls": self.t.cfg.link.tls.is_some(),
                "response_timeout_ms": u64::try_from(self.t.cfg.link.response_timeout.as_millis()).unwrap_or(u64::MAX),
                "signed_in": self.t.signed_in(), "batch": self.t.batch(),
                "utc_offset": smartpos_txn::model::utc_offset_text(self.t.cfg.utc_offset_minutes),
                "sdk_version": env!("CARGO_PKG_VERSION"),
            },
            // The record that failed its authentication check, if any (table and key only).
            "journal": {
                "tampered": self.t.journal.tampered().map(|t| serde_json::json!({
                    "table": t.table, "key": t.key,
                    "diagnosis": diagnosis::journal_tampered().code,
                })),
            },
            "pending": pending,
            "transactions": txns,
            "trace": trace,
            "pending_prints": self.t.journal.pending_prints()?.into_iter().map(|(r, c, n, s)| serde_json::json!({"reference": r, "copy": c, "attempts": n, "last_status": s})).collect::<Vec<_>>(),
            "audit": audit,
        }))
    }
}

impl<'a> Admin<'a> {
    /// Ends a reversal the host keeps refusing: the supervisor settled it with the acquirer
    /// by phone and types the acquirer's reference. None of the supported dialects defines a
    /// transaction status inquiry (docs/messages.md), so nothing is asked of the host first.
    ///
    /// Only a pending reversal that has been sent at least once (the host refused it or did
    /// not answer) can be ended; a wrong supervisor password is refused and counted like any
    /// supervisor approval. The approval is audited (`approve`, naming the reference and the
    /// acquirer reference) before one journal commit removes the pending reversal and sets the
    /// transaction to `reversal_resolved_by_supervisor`; a `reversal_resolved` audit row
    /// follows. Sales are no longer blocked by it.
    pub fn resolve_reversal(
        self,
        reference: &str,
        approval: &Approval,
        acquirer_ref: &str,
        note: Option<&str>,
    ) -> Result<TxnRecord, TerminalError> {
        self.t.refuse_if_tampered()?;
        let acquirer_ref = acquirer_ref.trim();
        if acquirer_ref.is_empty()
            || acquirer_ref.chars().count() > ACQUIRER_REF_MAX
            || acquirer_ref.chars().any(char::is_control)
        {
            return Err(TerminalError::Op(OpError::Rejected {
                reason: format!(
                    "the acquirer reference must be 1 to {ACQUIRER_REF_MAX} printable characters"
                ),
            }));
        }
        let note: String = note
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let Some(item) = self
            .t
            .engine
            .pending()
            .iter()
            .find(|p| p.kind == PendingKind::Reversal && p.reference == reference)
        else {
            return Err(TerminalError::Op(OpError::Rejected {
                reason: format!("no pending reversal for {reference}"),
            }));
        };
        if item.attempts == 0 {
            return Err(TerminalError::Op(OpError::Rejected {
                reason: format!(
                    "the reversal for {reference} was never sent; deliver it first (recover)"
                ),
            }));
        }
        let at_till = self
            .t
            .safety
            .session
            .as_ref()
            .map(|s| s.operator.clone())
            .unwrap_or_default();
        let now = self.t.now();
        let r = self.t.safety.operators.approve_as_supervisor(
            &approval.password,
            &format!("resolve reversal {reference} acquirer ref {acquirer_ref}"),
            &at_till,
            now.unix_ms,
        );
        commit(&mut self.t.journal, r)?;
        self.t.engine.resolve_reversal(now, reference)?;
        self.t.apply_engine_commits()?;
        let entry = smartpos_operators::AuditEntry {
            at_ms: now.unix_ms,
            operator: "00".to_owned(),
            action: "reversal_resolved",
            detail: if note.is_empty() {
                format!("{reference} acquirer ref {acquirer_ref}")
            } else {
                format!("{reference} acquirer ref {acquirer_ref}: {note}")
            },
        };
        if let Err(e) = self.t.journal.apply_operators(&[], &[entry]) {
            log::warn!("audit row not written: {e}");
        }
        self.t.original(reference)
    }

    /// Operator and refund settings.
    pub fn safety_settings(self) -> &'a SafetySettings {
        let t = self.t;
        &t.safety.settings
    }

    /// Changes and stores operator and refund settings (all of them; a document that names
    /// only some is [`Admin::apply_settings`]).
    ///
    /// A supervisor act: when the *current* settings require login, only the supervisor's
    /// session may change them (`Operator(SupervisorRequired)` otherwise, itself audited as
    /// `settings_denied`). When login is not required (apps that manage cashiers themselves)
    /// the change is allowed. Every change writes an audit row summarising the new values (no
    /// secrets): `settings`, or `login_disabled` when it turns a required login off. The new
    /// settings are checked against the current ones first ([`SafetySettings::validate`]:
    /// the PBKDF2 iteration count cannot change once operators exist, it would invalidate
    /// every stored password hash); lockout and challenge settings take effect when the
    /// terminal is next opened.
    pub fn set_safety_settings(self, settings: SafetySettings) -> Result<(), TerminalError> {
        self.t.may_change_settings()?;
        settings.validate(&self.t.safety.settings)?;
        let json = serde_json::to_string(&settings).map_err(config_err)?;
        let entry = if self.t.safety.settings.require_login && !settings.require_login {
            self.t.audit_entry(
                "login_disabled",
                format!(
                    "login turned off: financial commands no longer need a logged-in operator; {}",
                    settings_summary(&settings)
                ),
            )
        } else {
            self.t.audit_entry("settings", settings_summary(&settings))
        };
        // One transaction: a change is never stored without its audit row.
        self.t.journal.set_meta_audited("safety", &json, &entry)?;
        self.t.safety.settings = settings;
        Ok(())
    }
}
