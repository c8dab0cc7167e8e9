//! Settings documents: operator and refund safety, receipt layout.

use super::*;

/// A non-refundable fee withheld once per original (mirrors `smartpos_operators::policy::Fee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RefundFee {
    /// A fixed amount in minor units (never more than the original).
    Fixed {
        /// Minor units.
        amount: u64,
    },
    /// A share of the original in basis points (150 = 1.5 %), rounded half up; at most 10 000.
    Percent {
        /// Basis points, 0-10 000.
        basis_points: u32,
    },
}

/// The refund policy of a store (mirrors `smartpos_operators::policy::RefundPolicy`). Amounts are
/// in minor units; `null` means "no limit".
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundPolicy {
    /// An original older than this many whole days cannot be refunded.
    #[uniffi(default = 30)]
    pub max_days_since_original: u32,
    /// Largest single refund.
    #[uniffi(default = None)]
    pub max_single_refund: Option<u64>,
    /// Largest total refunded per terminal per (local) day.
    #[uniffi(default = None)]
    pub daily_total_per_terminal: Option<u64>,
    /// Largest total refunded per operator per (local) day.
    #[uniffi(default = None)]
    pub daily_total_per_operator: Option<u64>,
    /// Refunds above this amount need the supervisor (logged in, or the supervisor password
    /// passed to `refund`); `0` means every refund does, `null` never asks.
    #[uniffi(default = None)]
    pub supervisor_approval_above: Option<u64>,
    /// The refund must go to the card that paid.
    #[uniffi(default = false)]
    pub same_card_required: bool,
    /// A non-refundable fee withheld once per original.
    #[uniffi(default = None)]
    pub fee: Option<RefundFee>,
}

/// Password hashing and lockout settings. Read-only through the bindings: `setSafetySettings`
/// refuses a record whose values differ from the terminal's (the iteration count is bound to
/// every stored password hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct OperatorSettings {
    /// PBKDF2-HMAC-SHA256 iterations of the stored password hashes.
    pub pbkdf2_iterations: u32,
    /// Wrong passwords in a row before an operator is locked.
    pub max_failed_attempts: u32,
    /// How long a supervisor unlock challenge stays valid, milliseconds.
    pub unlock_challenge_ttl_ms: i64,
}

/// Operator and refund settings of a terminal (mirrors `smartpos_terminal::SafetySettings`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetySettings {
    /// Whether financial commands need a logged-in operator. While it is on, only the
    /// supervisor may change these settings.
    pub require_login: bool,
    /// The refund policy.
    pub refund_policy: RefundPolicy,
    /// Hashing and lockout (read-only, see [`OperatorSettings`]).
    pub operators: OperatorSettings,
}

impl From<core_ops::Fee> for RefundFee {
    fn from(f: core_ops::Fee) -> Self {
        match f {
            core_ops::Fee::Fixed(amount) => RefundFee::Fixed { amount },
            core_ops::Fee::Percent { basis_points } => RefundFee::Percent { basis_points },
        }
    }
}

impl TryFrom<RefundFee> for core_ops::Fee {
    type Error = SmartPosError;

    fn try_from(f: RefundFee) -> Result<Self, SmartPosError> {
        Ok(match f {
            RefundFee::Fixed { amount } => core_ops::Fee::Fixed(amount),
            RefundFee::Percent { basis_points } if basis_points <= 10_000 => {
                core_ops::Fee::Percent { basis_points }
            }
            RefundFee::Percent { basis_points } => {
                return Err(SmartPosError::config(format!(
                    "refund_policy.fee.basis_points: {basis_points} is above 10000 (100 %)"
                )));
            }
        })
    }
}

impl From<&core_ops::RefundPolicy> for RefundPolicy {
    fn from(p: &core_ops::RefundPolicy) -> Self {
        RefundPolicy {
            max_days_since_original: p.max_days_since_original,
            max_single_refund: p.max_single_refund,
            daily_total_per_terminal: p.daily_total_per_terminal,
            daily_total_per_operator: p.daily_total_per_operator,
            supervisor_approval_above: p.supervisor_approval_above,
            same_card_required: p.same_card_required,
            fee: p.fee.map(RefundFee::from),
        }
    }
}

impl TryFrom<RefundPolicy> for core_ops::RefundPolicy {
    type Error = SmartPosError;

    fn try_from(p: RefundPolicy) -> Result<Self, SmartPosError> {
        Ok(core_ops::RefundPolicy {
            max_days_since_original: p.max_days_since_original,
            max_single_refund: p.max_single_refund,
            daily_total_per_terminal: p.daily_total_per_terminal,
            daily_total_per_operator: p.daily_total_per_operator,
            supervisor_approval_above: p.supervisor_approval_above,
            same_card_required: p.same_card_required,
            fee: p.fee.map(core_ops::Fee::try_from).transpose()?,
        })
    }
}

impl From<&core_ops::OperatorConfig> for OperatorSettings {
    fn from(c: &core_ops::OperatorConfig) -> Self {
        OperatorSettings {
            pbkdf2_iterations: c.iterations,
            max_failed_attempts: c.max_failed_attempts,
            unlock_challenge_ttl_ms: c.unlock_challenge_ttl_ms,
        }
    }
}

impl From<&smartpos_terminal::api::SafetySettings> for SafetySettings {
    fn from(s: &smartpos_terminal::api::SafetySettings) -> Self {
        SafetySettings {
            require_login: s.require_login,
            refund_policy: (&s.refund_policy).into(),
            operators: (&s.operators).into(),
        }
    }
}

/// The core settings for `new`, checked against the terminal's `current` ones: the refund
/// policy is validated and the read-only operator settings must be unchanged.
pub(crate) fn safety_settings_in(
    new: SafetySettings,
    current: &smartpos_terminal::api::SafetySettings,
) -> Result<smartpos_terminal::api::SafetySettings, SmartPosError> {
    let now = OperatorSettings::from(&current.operators);
    let read_only = [
        (
            "pbkdf2_iterations",
            new.operators.pbkdf2_iterations != now.pbkdf2_iterations,
        ),
        (
            "max_failed_attempts",
            new.operators.max_failed_attempts != now.max_failed_attempts,
        ),
        (
            "unlock_challenge_ttl_ms",
            new.operators.unlock_challenge_ttl_ms != now.unlock_challenge_ttl_ms,
        ),
    ];
    if let Some((field, _)) = read_only.iter().find(|(_, changed)| *changed) {
        return Err(SmartPosError::config(format!(
            "operators.{field} is read-only through the bindings (pass the value from safetySettings())"
        )));
    }
    Ok(smartpos_terminal::api::SafetySettings {
        require_login: new.require_login,
        refund_policy: new.refund_policy.try_into()?,
        operators: current.operators,
    })
}

/// Longest merchant name accepted for receipts, in characters.
pub const MERCHANT_NAME_MAX_CHARS: usize = 40;

/// How receipts are laid out: who the merchant is, the paper and the label language.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptSettings {
    /// Merchant name as printed (often Chinese), up to 40 characters, no control characters;
    /// empty (the default): the receipt prints no name line.
    pub merchant_name: String,
    /// Merchant id as printed (field 42): 15 printable ASCII characters.
    pub merchant_id: String,
    /// Terminal id as printed (field 41): 8 printable ASCII characters.
    pub terminal_id: String,
    /// Paper width (32 or 48 columns).
    pub width: ReceiptWidth,
    /// Label language: `zh` (Chinese with English in brackets) or `en`.
    pub language: String,
}

impl From<receipt::Width> for ReceiptWidth {
    fn from(w: receipt::Width) -> Self {
        match w {
            receipt::Width::W32 => ReceiptWidth::W32,
            receipt::Width::W48 => ReceiptWidth::W48,
        }
    }
}

impl From<&printing::ReceiptSettings> for ReceiptSettings {
    fn from(s: &printing::ReceiptSettings) -> Self {
        ReceiptSettings {
            merchant_name: s.merchant.name.clone(),
            merchant_id: s.merchant.merchant_id.clone(),
            terminal_id: s.merchant.terminal_id.clone(),
            width: s.width.into(),
            language: s.lang.code().to_owned(),
        }
    }
}

/// Checks an id printed on the receipt: exactly `len` printable ASCII characters.
fn printed_id(field: &str, value: String, len: usize) -> Result<String, SmartPosError> {
    if value.len() == len && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Ok(value)
    } else {
        Err(SmartPosError::config(format!(
            "receipt.{field}: must be {len} printable ASCII characters"
        )))
    }
}

impl TryFrom<ReceiptSettings> for printing::ReceiptSettings {
    type Error = SmartPosError;

    fn try_from(s: ReceiptSettings) -> Result<Self, SmartPosError> {
        let chars = s.merchant_name.chars().count();
        // Empty: no name line (the default until the app sets one); blank text is a mistake.
        if chars > MERCHANT_NAME_MAX_CHARS || (chars > 0 && s.merchant_name.trim().is_empty()) {
            return Err(SmartPosError::config(format!(
                "receipt.merchant_name: empty or 1-{MERCHANT_NAME_MAX_CHARS} characters, not blank"
            )));
        }
        if s.merchant_name.chars().any(char::is_control) {
            return Err(SmartPosError::config(
                "receipt.merchant_name: control characters are not allowed",
            ));
        }
        let lang = receipt::Lang::from_code(&s.language)
            .ok_or_else(|| SmartPosError::config("receipt.language: must be \"zh\" or \"en\""))?;
        Ok(printing::ReceiptSettings {
            merchant: receipt::MerchantInfo {
                name: s.merchant_name,
                merchant_id: printed_id("merchant_id", s.merchant_id, 15)?,
                terminal_id: printed_id("terminal_id", s.terminal_id, 8)?,
            },
            width: s.width.into(),
            lang,
        })
    }
}
