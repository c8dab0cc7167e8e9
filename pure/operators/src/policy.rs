//! Refund policy, evaluated before the card is asked for.
//!
//! A [`RefundPolicy`] is store/acquirer configuration (serde, every field defaulted). The runtime
//! gathers a [`RefundContext`] (the original from the journal, what was refunded so far, today's
//! totals, who is at the till) and asks [`quote`] what may be refunded, or [`check`] whether a
//! given amount may. Both report **every** rule that denies, each with a [`Diagnosis`] for the
//! cashier, so the screen can say everything that is wrong at once.
//!
//! Pure functions: no clock (time comes in as `now_unix_ms`), no I/O. "Today" is the caller's
//! business: it passes today's totals in. The card is never stored: [`card_token`] turns a PAN into
//! a per-terminal HMAC token that the journal can keep to check "same card" later.

use ring::hmac;
use serde::{Deserialize, Serialize};

use smartpos_diagnosis::{Category, Diagnosis, MoneyState, Retry, Text};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};

/// Milliseconds per day, for the refund window.
pub const DAY_MS: i64 = 86_400_000;

/// A non-refundable fee withheld from a refund, shown in the quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fee {
    /// A fixed amount in minor units.
    Fixed(u64),
    /// A share of the original amount in basis points (1/100 of a percent; 150 = 1.5 %),
    /// rounded half up to the minor unit.
    Percent {
        /// Basis points.
        basis_points: u32,
    },
}

impl Fee {
    /// The fee on an original of `original_amount`, never more than the original.
    ///
    /// Percent fees round half up: `(amount × bp + 5000) / 10000` (e.g. 0.5 fen → 1 fen,
    /// 0.4999 fen → 0 fen), computed in 128 bits so it cannot overflow.
    pub fn on(self, original_amount: u64) -> u64 {
        let fee = match self {
            Fee::Fixed(f) => f,
            Fee::Percent { basis_points } => {
                let scaled = u128::from(original_amount) * u128::from(basis_points) + 5_000;
                u64::try_from(scaled / 10_000).unwrap_or(u64::MAX)
            }
        };
        fee.min(original_amount)
    }
}

/// Refund rules of a store / acquirer. Amounts are in minor units; `None` means "no limit".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefundPolicy {
    /// The refund window: an original more than this many whole days old (see [`days_between`])
    /// cannot be refunded. Default 30.
    pub max_days_since_original: u32,
    /// Largest single refund. Default none.
    pub max_single_refund: Option<u64>,
    /// Largest total refunded per terminal per day (the caller defines the day). Default none.
    pub daily_total_per_terminal: Option<u64>,
    /// Largest total refunded per operator per day. Default none.
    pub daily_total_per_operator: Option<u64>,
    /// Refunds above this amount need a supervisor (or a supervisor's approval). `Some(0)` means
    /// every refund does, which is how Chinese smart-POS terminals ship (退货需主管密码), so it is
    /// the default; `None` never asks.
    pub supervisor_approval_above: Option<u64>,
    /// The refund must go to the card that paid (checked with [`card_token`]). Default false.
    pub same_card_required: bool,
    /// A non-refundable fee withheld once per original. Default none.
    pub fee: Option<Fee>,
}

impl Default for RefundPolicy {
    fn default() -> Self {
        RefundPolicy {
            max_days_since_original: 30,
            max_single_refund: None,
            daily_total_per_terminal: None,
            daily_total_per_operator: None,
            supervisor_approval_above: Some(0),
            same_card_required: false,
            fee: None,
        }
    }
}

impl RefundPolicy {
    /// The fee withheld on `original_amount` (0 without a fee).
    pub fn fee_on(&self, original_amount: u64) -> u64 {
        self.fee.map_or(0, |f| f.on(original_amount))
    }

    /// Whether a refund of `amount` needs a supervisor under this policy.
    pub fn requires_supervisor(&self, amount: u64) -> bool {
        matches!(self.supervisor_approval_above, Some(limit) if amount > limit)
    }
}

/// Everything the policy looks at, gathered by the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RefundContext<'a> {
    /// The original transaction, from the journal.
    pub original: &'a TxnRecord,
    /// Refunds of this original so far (queued and approved), minor units.
    pub refunds_so_far: u64,
    /// Now, Unix milliseconds.
    pub now_unix_ms: i64,
    /// Refunded today on this terminal (queued and approved), before this refund.
    pub terminal_refunded_today: u64,
    /// Refunded today by this operator, before this refund.
    pub operator_refunded_today: u64,
    /// The operator at the till.
    pub operator: &'a str,
    /// Whether that operator is the supervisor.
    pub is_supervisor: bool,
    /// Whether a supervisor approved this refund (password checked by the caller).
    pub supervisor_approved: bool,
    /// Whether the presented card's token matches the original's: `None` before the card is
    /// read. With `same_card_required`, `None` passes (the quote comes before the card) and the
    /// runtime must call [`check`] again with `Some(..)` once the card is read.
    pub card_token_matches: Option<bool>,
    /// The refund's currency (ISO 4217 numeric); must equal the original's.
    pub currency: &'a str,
}

/// A policy rule that denies, with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
#[non_exhaustive]
pub enum Rule {
    /// The original did not go through (declined, never sent, unresolved).
    OriginalNotApproved,
    /// The original was voided.
    OriginalVoided,
    /// The original was reversed (or is being reversed).
    OriginalReversed,
    /// The original is older than the refund window.
    TooOld {
        /// Whole days since the original.
        days: u32,
        /// The window.
        max: u32,
    },
    /// The amount is more than what is left to refund.
    ExceedsRemainder {
        /// What is left (after earlier refunds and the fee).
        remainder: u64,
    },
    /// The amount is over the single-refund limit.
    ExceedsSingleLimit {
        /// The limit.
        max: u64,
    },
    /// The terminal's daily total would be exceeded.
    TerminalDailyLimit {
        /// Refunded today before this one.
        used: u64,
        /// The limit.
        max: u64,
    },
    /// The operator's daily total would be exceeded.
    OperatorDailyLimit {
        /// Refunded today before this one.
        used: u64,
        /// The limit.
        max: u64,
    },
    /// A supervisor must approve.
    SupervisorRequired,
    /// The refund's currency is not the original's.
    CurrencyMismatch,
    /// The presented card is not the one that paid.
    DifferentCard,
    /// The original is not a sale or completion.
    NotRefundableKind,
    /// The amount is zero.
    ZeroAmount,
}

impl Rule {
    /// Stable machine id of the rule's diagnosis (`policy.*`).
    pub fn code(&self) -> &'static str {
        match self {
            Rule::OriginalNotApproved => "policy.original_not_approved",
            Rule::OriginalVoided => "policy.original_voided",
            Rule::OriginalReversed => "policy.original_reversed",
            Rule::TooOld { .. } => "policy.too_old",
            Rule::ExceedsRemainder { .. } => "policy.exceeds_remainder",
            Rule::ExceedsSingleLimit { .. } => "policy.exceeds_single_limit",
            Rule::TerminalDailyLimit { .. } => "policy.terminal_daily_limit",
            Rule::OperatorDailyLimit { .. } => "policy.operator_daily_limit",
            Rule::SupervisorRequired => "policy.supervisor_required",
            Rule::CurrencyMismatch => "policy.currency_mismatch",
            Rule::DifferentCard => "policy.different_card",
            Rule::NotRefundableKind => "policy.not_refundable_kind",
            Rule::ZeroAmount => "policy.zero_amount",
        }
    }

    /// The diagnosis shown to the cashier.
    pub fn diagnosis(&self) -> Diagnosis {
        let code = self.code();
        DENIALS
            .iter()
            .find(|d| d.code == code)
            .unwrap_or(&FALLBACK)
            .clone()
    }
}

/// One denying rule and what to tell the cashier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The rule, with its numbers.
    pub rule: Rule,
    /// Plain-words explanation (zh/en).
    pub diagnosis: Diagnosis,
}

impl Denial {
    fn new(rule: Rule) -> Denial {
        Denial {
            diagnosis: rule.diagnosis(),
            rule,
        }
    }
}

/// What may be refunded on an original, and what stands in the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundQuote {
    /// Original − fee − refunds so far, never negative.
    pub refundable_remainder: u64,
    /// The non-refundable fee withheld on this original.
    pub fee: u64,
    /// Every rule that denies refunding the whole remainder (empty: it may be refunded).
    pub denials: Vec<Denial>,
    /// Whether a supervisor must approve refunding the whole remainder (and the operator is not
    /// the supervisor), whether or not the approval is already given.
    pub needs_supervisor: bool,
    /// The largest amount that passes the amount limits right now (remainder, single and daily
    /// limits); 0 when a rule that does not depend on the amount denies.
    pub max_amount_now: u64,
    /// The card must be read and its token compared before the refund (`same_card_required`).
    pub needs_same_card: bool,
}

/// Whole days from `from_ms` to `to_ms` (floor of 86 400 000 ms units; 0 if `to` is earlier, e.g.
/// after a clock correction).
pub fn days_between(from_ms: i64, to_ms: i64) -> u32 {
    let diff = to_ms.saturating_sub(from_ms).max(0);
    u32::try_from(diff / DAY_MS).unwrap_or(u32::MAX)
}

fn remainder(policy: &RefundPolicy, ctx: &RefundContext<'_>) -> (u64, u64) {
    let fee = policy.fee_on(ctx.original.amount);
    let left = ctx
        .original
        .amount
        .saturating_sub(fee)
        .saturating_sub(ctx.refunds_so_far);
    (left, fee)
}

/// Rules that do not depend on the amount.
fn fixed_rules(policy: &RefundPolicy, ctx: &RefundContext<'_>, out: &mut Vec<Denial>) {
    let o = ctx.original;
    if !matches!(o.kind, TxnKind::Sale | TxnKind::Completion) {
        out.push(Denial::new(Rule::NotRefundableKind));
    }
    #[allow(unreachable_patterns)] // TxnState is non_exhaustive.
    match o.state {
        TxnState::Approved => {}
        TxnState::Voided => out.push(Denial::new(Rule::OriginalVoided)),
        TxnState::Reversed | TxnState::Reversing => out.push(Denial::new(Rule::OriginalReversed)),
        _ => out.push(Denial::new(Rule::OriginalNotApproved)),
    }
    let days = days_between(o.created_at_ms, ctx.now_unix_ms);
    if days > policy.max_days_since_original {
        out.push(Denial::new(Rule::TooOld {
            days,
            max: policy.max_days_since_original,
        }));
    }
    if smartpos_types::Currency::parse(ctx.currency) != Ok(o.currency) {
        out.push(Denial::new(Rule::CurrencyMismatch));
    }
    if policy.same_card_required && ctx.card_token_matches == Some(false) {
        out.push(Denial::new(Rule::DifferentCard));
    }
}

/// Rules on the amount.
fn amount_rules(
    policy: &RefundPolicy,
    ctx: &RefundContext<'_>,
    amount: u64,
    left: u64,
    out: &mut Vec<Denial>,
) {
    if amount == 0 {
        out.push(Denial::new(Rule::ZeroAmount));
    }
    if amount > left {
        out.push(Denial::new(Rule::ExceedsRemainder { remainder: left }));
    }
    if let Some(max) = policy.max_single_refund
        && amount > max
    {
        out.push(Denial::new(Rule::ExceedsSingleLimit { max }));
    }
    if let Some(max) = policy.daily_total_per_terminal {
        let used = ctx.terminal_refunded_today;
        if used.saturating_add(amount) > max {
            out.push(Denial::new(Rule::TerminalDailyLimit { used, max }));
        }
    }
    if let Some(max) = policy.daily_total_per_operator {
        let used = ctx.operator_refunded_today;
        if used.saturating_add(amount) > max {
            out.push(Denial::new(Rule::OperatorDailyLimit { used, max }));
        }
    }
    if policy.requires_supervisor(amount) && !ctx.is_supervisor && !ctx.supervisor_approved {
        out.push(Denial::new(Rule::SupervisorRequired));
    }
}

/// Checks a refund of `amount` against every rule; `Err` lists **all** rules that deny.
pub fn check(
    policy: &RefundPolicy,
    ctx: &RefundContext<'_>,
    amount: u64,
) -> Result<(), Vec<Denial>> {
    let (left, _) = remainder(policy, ctx);
    let mut denials = Vec::new();
    fixed_rules(policy, ctx, &mut denials);
    amount_rules(policy, ctx, amount, left, &mut denials);
    if denials.is_empty() {
        Ok(())
    } else {
        Err(denials)
    }
}

/// Quotes refunding the whole remainder of the original: the remainder, the fee, every rule that
/// denies it, whether a supervisor must approve, and the largest amount allowed right now.
///
/// When nothing is left (fully refunded), the denial is `ExceedsRemainder { remainder: 0 }`
/// rather than `ZeroAmount`.
pub fn quote(policy: &RefundPolicy, ctx: &RefundContext<'_>) -> RefundQuote {
    let (left, fee) = remainder(policy, ctx);
    let mut denials = Vec::new();
    fixed_rules(policy, ctx, &mut denials);
    let fixed_denied = !denials.is_empty();
    if left == 0 {
        denials.push(Denial::new(Rule::ExceedsRemainder { remainder: 0 }));
    } else {
        amount_rules(policy, ctx, left, left, &mut denials);
    }
    let max_amount_now = if fixed_denied {
        0
    } else {
        let mut max = left;
        if let Some(m) = policy.max_single_refund {
            max = max.min(m);
        }
        if let Some(m) = policy.daily_total_per_terminal {
            max = max.min(m.saturating_sub(ctx.terminal_refunded_today));
        }
        if let Some(m) = policy.daily_total_per_operator {
            max = max.min(m.saturating_sub(ctx.operator_refunded_today));
        }
        max
    };
    RefundQuote {
        refundable_remainder: left,
        fee,
        denials,
        needs_supervisor: policy.requires_supervisor(left) && !ctx.is_supervisor,
        max_amount_now,
        needs_same_card: policy.same_card_required,
    }
}

/// The card token kept in the journal instead of the PAN: HMAC-SHA256 keyed with a per-terminal
/// secret (from the app's secure store) over the PAN's digits (spaces and other separators are
/// ignored). It links a refund to the paying card without storing the card number; without the
/// key it cannot be reversed by trying all PANs of a BIN.
pub fn card_token(key: &[u8], pan: &str) -> [u8; 32] {
    let digits: Vec<u8> = pan.bytes().filter(u8::is_ascii_digit).collect();
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &digits);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Whether `token` is the card token of `pan` under `key`, compared in constant time.
pub fn verify_card_token(key: &[u8], pan: &str, token: &[u8]) -> bool {
    let digits: Vec<u8> = pan.bytes().filter(u8::is_ascii_digit).collect();
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), &digits, token).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Denial diagnoses.

const fn t(zh: &'static str, en: &'static str) -> Text {
    Text::new(zh, en)
}

const S_CHECK_ORIGINAL: Text = t(
    "核对所选的原交易",
    "Check that the right original payment is selected",
);
const S_SUPERVISOR: Text = t("请主管处理", "Ask the supervisor");
const S_REFUND_LESS: Text = t(
    "退款金额不要超过可退余额",
    "Refund no more than what is left to refund",
);
const S_OTHER_WAY: Text = t(
    "按店内规定用其他方式处理（如现金退款）并登记",
    "Handle it another way by store rules (e.g. cash refund) and write it down",
);
const S_NO_REFUND: Text = t(
    "不要退款：顾客没有为这笔付钱",
    "Do not refund: the customer did not pay for this",
);

use Category as C;
use MoneyState as M;
use Retry as R;

#[rustfmt::skip]
static DENIALS: &[Diagnosis] = &[
    Diagnosis::new("policy.original_not_approved", C::Operator, M::NotCharged, R::DoNotRetry, t("原交易未成功", "Original did not go through"), t("原交易没有成功，顾客没有被扣款，无需退款。", "The original payment did not go through; the customer was not charged, so there is nothing to refund."), &[S_NO_REFUND, S_CHECK_ORIGINAL]),
    Diagnosis::new("policy.original_voided", C::Operator, M::NotCharged, R::DoNotRetry, t("原交易已撤销", "Original already voided"), t("原交易已撤销，款项不会被收取，不能再退款。", "The original was voided, so the customer is not charged; it cannot be refunded as well."), &[S_NO_REFUND, S_CHECK_ORIGINAL]),
    Diagnosis::new("policy.original_reversed", C::Operator, M::NotCharged, R::DoNotRetry, t("原交易已冲正", "Original reversed"), t("原交易已被撤回或正在撤回，银行会把款项还给顾客，不能再退款。", "The original was undone or is being undone; the bank gives the money back, so it must not be refunded too."), &[S_NO_REFUND, S_CHECK_ORIGINAL]),
    Diagnosis::new("policy.too_old", C::PlatformLimit, M::NotCharged, R::DoNotRetry, t("超过退款期限", "Past the refund window"), t("原交易距今已超过允许退款的天数。", "The original payment is older than the refund window allows."), &[S_SUPERVISOR, S_OTHER_WAY]),
    Diagnosis::new("policy.exceeds_remainder", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("超出可退金额", "Over the refundable remainder"), t("金额超过原交易剩余可退的部分（已扣除之前的退款和手续费）。", "The amount is more than what is left to refund (after earlier refunds and the fee)."), &[S_REFUND_LESS]),
    Diagnosis::new("policy.exceeds_single_limit", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("超出单笔退款限额", "Over the single-refund limit"), t("金额超过了单笔退款的上限。", "The amount is over the limit for one refund."), &[S_SUPERVISOR, S_OTHER_WAY]),
    Diagnosis::new("policy.terminal_daily_limit", C::PlatformLimit, M::NotCharged, R::RetryAfterRecovery, t("本机今日退款已达上限", "Terminal's daily refund limit reached"), t("这台终端今天的退款总额会超过上限。", "This refund would take the terminal over today's refund limit."), &[t("明天再退", "Refund tomorrow"), S_SUPERVISOR]),
    Diagnosis::new("policy.operator_daily_limit", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("您今日的退款已达上限", "Your daily refund limit reached"), t("您今天的退款总额会超过上限。", "This refund would take you over your refund limit for today."), &[S_SUPERVISOR]),
    Diagnosis::new("policy.supervisor_required", C::Operator, M::NotCharged, R::SafeToRetry, t("需要主管授权", "Supervisor approval needed"), t("这笔退款需要主管授权。", "This refund needs a supervisor's approval."), &[t("请主管输入密码授权", "Ask the supervisor to approve with their password")]),
    Diagnosis::new("policy.currency_mismatch", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("币种不符", "Currency does not match"), t("退款必须使用原交易的币种。", "A refund must be in the original payment's currency."), &[S_CHECK_ORIGINAL]),
    Diagnosis::new("policy.different_card", C::Dispute, M::NotCharged, R::SafeToRetry, t("不是原付款卡", "Not the card that paid"), t("退款只能退回原来付款的那张卡。", "A refund can only go back to the card that paid."), &[t("请顾客出示原付款卡", "Ask for the card used for the original payment"), S_SUPERVISOR]),
    Diagnosis::new("policy.not_refundable_kind", C::Operator, M::NotCharged, R::DoNotRetry, t("这类交易不能退款", "This kind cannot be refunded"), t("只有消费和预授权完成可以退款。", "Only a sale or a completion can be refunded."), &[S_CHECK_ORIGINAL]),
    Diagnosis::new("policy.zero_amount", C::Operator, M::NotCharged, R::SafeToRetry, t("金额不能为零", "Amount cannot be zero"), t("退款金额是零。", "The refund amount is zero."), &[t("输入要退的金额", "Enter the amount to refund")]),
];

static FALLBACK: Diagnosis = Diagnosis::new(
    "policy.denied",
    C::PlatformLimit,
    M::NotCharged,
    R::DoNotRetry,
    t("退款不被允许", "Refund not allowed"),
    t(
        "店内退款规定不允许这笔退款。",
        "The store's refund rules do not allow this refund.",
    ),
    &[S_SUPERVISOR],
);

/// Every diagnosis of this module (for documentation and tests).
pub fn catalogue() -> Vec<Diagnosis> {
    DENIALS
        .iter()
        .chain(std::iter::once(&FALLBACK))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_315_266_000;

    fn original(amount: u64) -> TxnRecord {
        TxnRecord {
            reference: "000001000007".into(),
            kind: TxnKind::Sale,
            state: TxnState::Approved,
            amount,
            currency: smartpos_types::Currency::CNY,
            stan: 7,
            batch: 1,
            local_time: "101010".parse().unwrap(),
            local_date: "1120".parse().unwrap(),
            rrn: Some("123456789012".into()),
            auth_code: Some("A1B2C3".into()),
            response_code: Some("00".parse().unwrap()),
            original_ref: None,
            idempotency_key: None,
            operator: Some("01".into()),
            pan_masked: Some("622202******1234".into()),
            entry_mode: Some("071".parse().unwrap()),
            created_at_ms: NOW - 2 * DAY_MS,
            updated_at_ms: NOW - 2 * DAY_MS,
            card: None,
        }
    }

    fn ctx(o: &TxnRecord) -> RefundContext<'_> {
        RefundContext {
            original: o,
            refunds_so_far: 0,
            now_unix_ms: NOW,
            terminal_refunded_today: 0,
            operator_refunded_today: 0,
            operator: "01",
            is_supervisor: false,
            supervisor_approved: true,
            card_token_matches: None,
            currency: "156",
        }
    }

    fn rules(r: Result<(), Vec<Denial>>) -> Vec<Rule> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.rule)
            .collect()
    }

    fn open() -> RefundPolicy {
        RefundPolicy::default()
    }

    #[test]
    fn defaults() {
        let p = RefundPolicy::default();
        assert_eq!(p.max_days_since_original, 30);
        assert_eq!(p.supervisor_approval_above, Some(0));
        assert!(p.requires_supervisor(1));
        assert!(
            !RefundPolicy {
                supervisor_approval_above: None,
                ..p.clone()
            }
            .requires_supervisor(u64::MAX)
        );
        assert!(
            !RefundPolicy {
                supervisor_approval_above: Some(500),
                ..p
            }
            .requires_supervisor(500)
        );
    }

    #[test]
    fn plain_refund_passes() {
        let o = original(10_000);
        assert_eq!(check(&open(), &ctx(&o), 10_000), Ok(()));
        assert_eq!(check(&open(), &ctx(&o), 1), Ok(()));
        let q = quote(&open(), &ctx(&o));
        assert_eq!(
            (q.refundable_remainder, q.fee, q.max_amount_now),
            (10_000, 0, 10_000)
        );
        assert!(q.denials.is_empty());
        assert!(q.needs_supervisor);
        assert!(!q.needs_same_card);
    }

    #[test]
    fn each_rule_denies_alone() {
        let p = open();
        let base = original(10_000);

        let mut o = base.clone();
        o.state = TxnState::Declined;
        assert_eq!(
            rules(check(&p, &ctx(&o), 100)),
            vec![Rule::OriginalNotApproved]
        );
        o.state = TxnState::Voided;
        assert_eq!(rules(check(&p, &ctx(&o), 100)), vec![Rule::OriginalVoided]);
        o.state = TxnState::Reversed;
        assert_eq!(
            rules(check(&p, &ctx(&o), 100)),
            vec![Rule::OriginalReversed]
        );
        o.state = TxnState::Reversing;
        assert_eq!(
            rules(check(&p, &ctx(&o), 100)),
            vec![Rule::OriginalReversed]
        );

        let mut o = base.clone();
        o.created_at_ms = NOW - 31 * DAY_MS;
        assert_eq!(
            rules(check(&p, &ctx(&o), 100)),
            vec![Rule::TooOld { days: 31, max: 30 }]
        );
        o.created_at_ms = NOW - 31 * DAY_MS + 1; // 30 days and change: still inside
        assert_eq!(check(&p, &ctx(&o), 100), Ok(()));

        let mut c = ctx(&base);
        c.refunds_so_far = 9_000;
        assert_eq!(
            rules(check(&p, &c, 1_001)),
            vec![Rule::ExceedsRemainder { remainder: 1_000 }]
        );
        assert_eq!(check(&p, &c, 1_000), Ok(()));

        let p2 = RefundPolicy {
            max_single_refund: Some(5_000),
            ..open()
        };
        assert_eq!(
            rules(check(&p2, &ctx(&base), 5_001)),
            vec![Rule::ExceedsSingleLimit { max: 5_000 }]
        );
        assert_eq!(check(&p2, &ctx(&base), 5_000), Ok(()));

        let p3 = RefundPolicy {
            daily_total_per_terminal: Some(20_000),
            ..open()
        };
        let mut c = ctx(&base);
        c.terminal_refunded_today = 15_000;
        assert_eq!(
            rules(check(&p3, &c, 5_001)),
            vec![Rule::TerminalDailyLimit {
                used: 15_000,
                max: 20_000
            }]
        );
        assert_eq!(check(&p3, &c, 5_000), Ok(()));

        let p4 = RefundPolicy {
            daily_total_per_operator: Some(3_000),
            ..open()
        };
        let mut c = ctx(&base);
        c.operator_refunded_today = 2_000;
        assert_eq!(
            rules(check(&p4, &c, 1_001)),
            vec![Rule::OperatorDailyLimit {
                used: 2_000,
                max: 3_000
            }]
        );

        let mut c = ctx(&base);
        c.supervisor_approved = false;
        assert_eq!(rules(check(&p, &c, 100)), vec![Rule::SupervisorRequired]);
        c.is_supervisor = true;
        assert_eq!(check(&p, &c, 100), Ok(()));
        let p5 = RefundPolicy {
            supervisor_approval_above: Some(500),
            ..open()
        };
        let mut c = ctx(&base);
        c.supervisor_approved = false;
        assert_eq!(check(&p5, &c, 500), Ok(()));
        assert_eq!(rules(check(&p5, &c, 501)), vec![Rule::SupervisorRequired]);

        let mut c = ctx(&base);
        c.currency = "840";
        assert_eq!(rules(check(&p, &c, 100)), vec![Rule::CurrencyMismatch]);

        let p6 = RefundPolicy {
            same_card_required: true,
            ..open()
        };
        let mut c = ctx(&base);
        assert_eq!(check(&p6, &c, 100), Ok(()), "card not read yet");
        c.card_token_matches = Some(false);
        assert_eq!(rules(check(&p6, &c, 100)), vec![Rule::DifferentCard]);
        c.card_token_matches = Some(true);
        assert_eq!(check(&p6, &c, 100), Ok(()));
        c.card_token_matches = Some(false);
        assert_eq!(check(&open(), &c, 100), Ok(()), "rule off");

        let mut o = base.clone();
        o.kind = TxnKind::PreAuth;
        assert_eq!(
            rules(check(&p, &ctx(&o), 100)),
            vec![Rule::NotRefundableKind]
        );

        assert_eq!(rules(check(&p, &ctx(&base), 0)), vec![Rule::ZeroAmount]);
    }

    #[test]
    fn several_rules_deny_together_and_all_are_reported() {
        let p = RefundPolicy {
            max_single_refund: Some(1_000),
            daily_total_per_terminal: Some(1_500),
            daily_total_per_operator: Some(800),
            same_card_required: true,
            ..open()
        };
        let mut o = original(10_000);
        o.state = TxnState::Voided;
        o.created_at_ms = NOW - 45 * DAY_MS;
        let mut c = ctx(&o);
        c.refunds_so_far = 9_500;
        c.terminal_refunded_today = 1_000;
        c.supervisor_approved = false;
        c.card_token_matches = Some(false);
        c.currency = "344";
        let got = check(&p, &c, 2_000).err().unwrap_or_default();
        let got_rules: Vec<Rule> = got.iter().map(|d| d.rule).collect();
        assert_eq!(
            got_rules,
            vec![
                Rule::OriginalVoided,
                Rule::TooOld { days: 45, max: 30 },
                Rule::CurrencyMismatch,
                Rule::DifferentCard,
                Rule::ExceedsRemainder { remainder: 500 },
                Rule::ExceedsSingleLimit { max: 1_000 },
                Rule::TerminalDailyLimit {
                    used: 1_000,
                    max: 1_500
                },
                Rule::OperatorDailyLimit { used: 0, max: 800 },
                Rule::SupervisorRequired,
            ]
        );
        for d in &got {
            assert_eq!(d.diagnosis.code, d.rule.code());
            assert_eq!(d.diagnosis.money, MoneyState::NotCharged);
        }
        let q = quote(&p, &c);
        assert_eq!(q.max_amount_now, 0);
        assert!(q.denials.len() >= 4);
    }

    #[test]
    fn fee_math_rounds_half_up() {
        // 1.5 % of 333 = 4.995 → 5; 1.5 % of 300 = 4.5 → 5; 1.5 % of 299 = 4.485 → 4.
        let f = Fee::Percent { basis_points: 150 };
        assert_eq!(f.on(333), 5);
        assert_eq!(f.on(300), 5);
        assert_eq!(f.on(299), 4);
        assert_eq!(f.on(0), 0);
        // 0.5 bp of 10 000 = 0.5 → 1 (half up); of 9 999 = 0.49995 → 0.
        let half = Fee::Percent { basis_points: 5 };
        assert_eq!(half.on(10_000), 5);
        assert_eq!(Fee::Percent { basis_points: 1 }.on(5_000), 1);
        assert_eq!(Fee::Percent { basis_points: 1 }.on(4_999), 0);
        // No overflow, never more than the original.
        assert_eq!(
            Fee::Percent {
                basis_points: u32::MAX
            }
            .on(u64::MAX),
            u64::MAX
        );
        assert_eq!(
            Fee::Percent {
                basis_points: 20_000
            }
            .on(100),
            100
        );
        assert_eq!(Fee::Fixed(500).on(300), 300);
        assert_eq!(Fee::Fixed(200).on(10_000), 200);
    }

    #[test]
    fn quote_withholds_fee_and_never_goes_negative() {
        let p = RefundPolicy {
            fee: Some(Fee::Percent { basis_points: 100 }),
            ..open()
        };
        let o = original(10_000);
        let mut c = ctx(&o);
        let q = quote(&p, &c);
        assert_eq!((q.fee, q.refundable_remainder), (100, 9_900));
        assert_eq!(
            rules(check(&p, &c, 9_901)),
            vec![Rule::ExceedsRemainder { remainder: 9_900 }]
        );
        c.refunds_so_far = 9_950; // refunded before the fee was configured
        let q = quote(&p, &c);
        assert_eq!(q.refundable_remainder, 0);
        assert_eq!(q.max_amount_now, 0);
        assert_eq!(
            q.denials.iter().map(|d| d.rule).collect::<Vec<_>>(),
            vec![Rule::ExceedsRemainder { remainder: 0 }]
        );
        c.refunds_so_far = u64::MAX;
        assert_eq!(quote(&p, &c).refundable_remainder, 0);
        let fixed = RefundPolicy {
            fee: Some(Fee::Fixed(u64::MAX)),
            ..open()
        };
        assert_eq!(quote(&fixed, &ctx(&o)).refundable_remainder, 0);
    }

    #[test]
    fn quote_caps_by_limits() {
        let p = RefundPolicy {
            max_single_refund: Some(6_000),
            daily_total_per_terminal: Some(10_000),
            daily_total_per_operator: Some(20_000),
            supervisor_approval_above: Some(5_000),
            ..open()
        };
        let o = original(10_000);
        let mut c = ctx(&o);
        c.terminal_refunded_today = 7_000;
        c.supervisor_approved = false;
        let q = quote(&p, &c);
        assert_eq!(q.max_amount_now, 3_000);
        assert!(q.needs_supervisor);
        let got: Vec<Rule> = q.denials.iter().map(|d| d.rule).collect();
        assert_eq!(
            got,
            vec![
                Rule::ExceedsSingleLimit { max: 6_000 },
                Rule::TerminalDailyLimit {
                    used: 7_000,
                    max: 10_000
                },
                Rule::SupervisorRequired,
            ]
        );
        assert_eq!(check(&p, &c, 3_000), Ok(()));
        c.is_supervisor = true;
        assert!(!quote(&p, &c).needs_supervisor);
    }

    #[test]
    fn days_floor_and_clock_skew() {
        assert_eq!(days_between(0, DAY_MS - 1), 0);
        assert_eq!(days_between(0, DAY_MS), 1);
        assert_eq!(days_between(DAY_MS, 0), 0);
        assert_eq!(days_between(i64::MIN, i64::MAX), u32::MAX);
    }

    #[test]
    fn card_token_is_keyed_and_ignores_separators() {
        let key = b"terminal-secret-key-0123456789ab";
        let a = card_token(key, "6222020200112233445");
        assert_eq!(a, card_token(key, "6222 0202 0011 2233 445"));
        assert_ne!(
            a,
            card_token(b"another-terminal-key-0123456789a", "6222020200112233445")
        );
        assert_ne!(a, card_token(key, "6222020200112233446"));
        assert!(verify_card_token(key, "6222020200112233445", &a));
        assert!(!verify_card_token(key, "6222020200112233446", &a));
        assert!(!verify_card_token(key, "6222020200112233445", &a[..31]));
        // RFC 4231 test case 2 (HMAC-SHA256, key "Jefe") checks the construction: the input here
        // has no digits, so the token is the HMAC of the empty message under that key.
        let empty = card_token(b"Jefe", "what do ya want for nothing?");
        let direct = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"Jefe"), b"");
        assert_eq!(&empty[..], direct.as_ref());
    }

    #[test]
    fn policy_deserializes_with_partial_fields() {
        // Every field defaults; unknown fields are refused (typos in a profile). No JSON/TOML
        // backend in this crate: exercise serde through its in-memory map deserializer.
        use serde::de::value::{Error as DeError, MapDeserializer};
        let fields = vec![("max_days_since_original", 7u64)];
        let de: MapDeserializer<'_, _, DeError> = MapDeserializer::new(fields.into_iter());
        assert_eq!(
            RefundPolicy::deserialize(de).ok(),
            Some(RefundPolicy {
                max_days_since_original: 7,
                ..RefundPolicy::default()
            })
        );
        let bad = vec![("max_dayz", 7u64)];
        let de: MapDeserializer<'_, _, DeError> = MapDeserializer::new(bad.into_iter());
        assert!(RefundPolicy::deserialize(de).is_err());
    }

    #[test]
    fn denial_diagnoses_are_complete() {
        for d in catalogue() {
            smartpos_diagnosis::tests_support::assert_complete(&d);
        }
        assert_eq!(
            Rule::TooOld { days: 1, max: 0 }.diagnosis().category,
            Category::PlatformLimit
        );
        assert_eq!(
            Rule::SupervisorRequired.diagnosis().category,
            Category::Operator
        );
        assert_eq!(Rule::DifferentCard.diagnosis().category, Category::Dispute);
    }
}
