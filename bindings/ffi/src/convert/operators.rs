//! Operators, sessions, login results and refund quotes.

use super::*;

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OperatorRole {
    /// Supervisor (`00`): manages cashiers, approves refunds.
    Supervisor,
    /// Cashier (`01`-`99`).
    Cashier,
}

/// The logged-in operator.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OperatorSession {
    /// Operator id, `00`-`99`.
    pub operator: String,
    /// Role.
    pub role: OperatorRole,
    /// Unix ms of the login.
    pub since_ms: i64,
}

/// What a correct password leads to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LoginResult {
    /// Logged in.
    LoggedIn {
        /// The session.
        session: OperatorSession,
    },
    /// The password is right but is the default one: call `changePassword`, which logs in.
    MustChangePassword {
        /// Operator id.
        operator: String,
    },
}

/// What may be refunded on an original right now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundQuote {
    /// Original minus fee minus refunds so far.
    pub refundable_remainder: u64,
    /// Non-refundable fee withheld on this original.
    pub fee: u64,
    /// Every rule that denies refunding the whole remainder (empty: it may be refunded).
    pub denials: Vec<RefundDenial>,
    /// Whether a supervisor must approve refunding the whole remainder.
    pub needs_supervisor: bool,
    /// The largest amount that passes the amount limits now (0 when another rule denies).
    pub max_amount_now: u64,
    /// The card must be read and compared before the refund.
    pub needs_same_card: bool,
}

impl From<Role> for OperatorRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Supervisor => OperatorRole::Supervisor,
            Role::Cashier => OperatorRole::Cashier,
        }
    }
}

impl From<Session> for OperatorSession {
    fn from(s: Session) -> Self {
        OperatorSession {
            operator: s.operator,
            role: s.role.into(),
            since_ms: s.since_ms,
        }
    }
}

impl From<core_ops::LoginResult> for LoginResult {
    fn from(r: core_ops::LoginResult) -> Self {
        match r {
            core_ops::LoginResult::LoggedIn(s) => LoginResult::LoggedIn { session: s.into() },
            core_ops::LoginResult::MustChangePassword { operator } => {
                LoginResult::MustChangePassword { operator }
            }
        }
    }
}

impl From<&Denial> for RefundDenial {
    fn from(d: &Denial) -> Self {
        RefundDenial {
            rule: d.rule.code().to_owned(),
            detail_json: denial_json(d)["rule"].to_string(),
            diagnosis: d.diagnosis.clone().into(),
        }
    }
}

impl From<core_ops::RefundQuote> for RefundQuote {
    fn from(q: core_ops::RefundQuote) -> Self {
        RefundQuote {
            refundable_remainder: q.refundable_remainder,
            fee: q.fee,
            denials: q.denials.iter().map(RefundDenial::from).collect(),
            needs_supervisor: q.needs_supervisor,
            max_amount_now: q.max_amount_now,
            needs_same_card: q.needs_same_card,
        }
    }
}
