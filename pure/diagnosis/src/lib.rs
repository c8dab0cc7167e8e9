//! What went wrong, in plain words for the cashier (Chinese and English), and what happens to the
//! money.
//!
//! A [`Diagnosis`] is plain data: a stable machine id ([`Diagnosis::code`], e.g.
//! `host.insufficient_funds`, for logs, metrics and app logic), a [`Category`] (whose fault), a
//! [`MoneyState`] (did money move?), a [`Retry`] hint, and a title, an explanation and next steps,
//! each as a [`Text`] in both languages. Technical detail (response codes, key names) stays in the
//! code and in [`Diagnosis::host_code`]; the texts avoid jargon.
//!
//! Every diagnosis comes from a static table (one line per entry): host response codes
//! ([`for_response_code`]), engine errors ([`for_op_error`], [`for_reject`]), link failures
//! ([`for_link_error`]), journal outcomes ([`for_outcome`]), printers ([`for_printer`]) and cards
//! ([`for_card`]). [`catalogue`] lists them all (the tests check each one is complete and that ids
//! are unique across this module, `smartpos_operators::policy` and `smartpos_operators`).

use std::fmt;

use serde::{Deserialize, Serialize};

use smartpos_iso8583::{RESPONSE_CODES as RESPONSE_TABLE, ResponseCode};
#[cfg(test)]
use smartpos_iso8583::{ResponseClass, ResponseRow};
use smartpos_txn::engine::OpError;
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};

/// A display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Simplified Chinese.
    Zh,
    /// English.
    En,
}

/// A short text in Chinese and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Text {
    /// Simplified Chinese.
    pub zh: &'static str,
    /// English.
    pub en: &'static str,
}

impl Text {
    /// Builds a text (usable in `static` tables).
    pub const fn new(zh: &'static str, en: &'static str) -> Text {
        Text { zh, en }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

/// Whose fault, broadly: drives icons and grouping in the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Category {
    /// Terminal hardware: printer, card reader, battery.
    Hardware,
    /// Terminal software or configuration.
    Software,
    /// Network: no connection, timeouts.
    Network,
    /// Something the cashier or supervisor must do (sign in, log in, pick the original...).
    Operator,
    /// The account behind the card (or the merchant's settlement account): balance, frozen.
    Account,
    /// The original payment is disputed or under risk review.
    Dispute,
    /// A platform, acquirer or store limit: refund window, amount caps, daily limits, not enabled.
    PlatformLimit,
    /// The card itself: expired, lost, blocked, wrong PIN.
    Card,
    /// Security checks: message authentication, keys, server identity.
    Security,
}

impl Category {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Hardware => "hardware",
            Category::Software => "software",
            Category::Network => "network",
            Category::Operator => "operator",
            Category::Account => "account",
            Category::Dispute => "dispute",
            Category::PlatformLimit => "platform_limit",
            Category::Card => "card",
            Category::Security => "security",
        }
    }
}

/// What happened to the money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MoneyState {
    /// The customer was not charged: no money moved.
    NotCharged,
    /// The customer was charged (approved payment).
    Charged,
    /// The customer was refunded (approved refund).
    Refunded,
    /// A reversal is pending: the customer will not be charged once the host acknowledges it.
    ReversalPending,
    /// Not known yet; the terminal is resolving it (a queued refund, a transaction the bank is
    /// still processing). Check before doing anything that could move money twice.
    UnknownResolving,
}

impl MoneyState {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MoneyState::NotCharged => "not_charged",
            MoneyState::Charged => "charged",
            MoneyState::Refunded => "refunded",
            MoneyState::ReversalPending => "reversal_pending",
            MoneyState::UnknownResolving => "unknown_resolving",
        }
    }

    /// One line for the cashier.
    pub fn text(self) -> Text {
        match self {
            MoneyState::NotCharged => {
                Text::new("未扣款，资金没有变动", "Not charged: no money moved")
            }
            MoneyState::Charged => Text::new("已扣款", "Charged"),
            MoneyState::Refunded => Text::new("已退款", "Refunded"),
            MoneyState::ReversalPending => Text::new(
                "正在冲正；银行确认前款项可能被暂时冻结",
                "Being reversed; the money may be held until the bank confirms",
            ),
            MoneyState::UnknownResolving => Text::new(
                "结果未定，终端正在处理（如退款已登记待发送）；请先查询再操作",
                "Not settled yet; the terminal is resolving it (e.g. a recorded refund waiting to be sent). Check before trying again",
            ),
        }
    }
}

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Retry {
    /// Safe to try again (after the fix the next steps name, if any): nothing can be charged twice.
    SafeToRetry,
    /// Run recovery first (pending reversals and advices delivered, network back), then retry.
    RetryAfterRecovery,
    /// Trying again will not help (same card, same request).
    DoNotRetry,
    /// Only the acquirer can fix it (merchant setup, keys, limits on its side).
    ContactAcquirer,
}

impl Retry {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::SafeToRetry => "safe_to_retry",
            Retry::RetryAfterRecovery => "retry_after_recovery",
            Retry::DoNotRetry => "do_not_retry",
            Retry::ContactAcquirer => "contact_acquirer",
        }
    }

    /// One line for the cashier.
    pub fn text(self) -> Text {
        match self {
            Retry::SafeToRetry => Text::new("可以安全重试", "Safe to try again"),
            Retry::RetryAfterRecovery => Text::new(
                "先完成待处理项（冲正、退款上送），再重试",
                "Finish pending items first (reversals, refunds), then try again",
            ),
            Retry::DoNotRetry => Text::new("不要重试", "Do not try again"),
            Retry::ContactAcquirer => Text::new("请联系收单机构", "Contact the acquirer"),
        }
    }
}

/// What went wrong, for the cashier, with what happened to the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// Stable machine id, e.g. `host.insufficient_funds`. Never changes once published.
    pub code: &'static str,
    /// Whose fault, broadly.
    pub category: Category,
    /// What happened to the money.
    pub money: MoneyState,
    /// Whether trying again can help.
    pub retry: Retry,
    /// A few words.
    pub title: Text,
    /// One or two sentences.
    pub explanation: Text,
    /// What to do, in order.
    pub next_steps: &'static [Text],
    /// The host response code (field 39) this came from, shown to the cashier for the service
    /// desk. `None` for diagnoses that do not come from a host answer.
    pub host_code: Option<String>,
}

impl Diagnosis {
    /// Builds a table entry (usable in `static` tables).
    pub const fn new(
        code: &'static str,
        category: Category,
        money: MoneyState,
        retry: Retry,
        title: Text,
        explanation: Text,
        next_steps: &'static [Text],
    ) -> Diagnosis {
        Diagnosis {
            code,
            category,
            money,
            retry,
            title,
            explanation,
            next_steps,
            host_code: None,
        }
    }

    /// The same diagnosis, carrying the host response code it came from.
    pub fn with_host_code(mut self, code: &str) -> Diagnosis {
        self.host_code = Some(code.to_owned());
        self
    }

    /// The same diagnosis with another money state (when the caller knows more, e.g. a reversal
    /// is pending).
    pub fn with_money(mut self, money: MoneyState) -> Diagnosis {
        self.money = money;
        self
    }

    /// Renders the whole diagnosis as lines for a screen or a log:
    /// title, explanation, money, response code (if any), numbered next steps.
    pub fn render(&self, lang: Lang) -> String {
        let mut out = String::new();
        out.push_str(self.title.get(lang));
        out.push('\n');
        out.push_str(self.explanation.get(lang));
        out.push('\n');
        out.push_str(self.money.text().get(lang));
        if let Some(code) = &self.host_code {
            out.push('\n');
            out.push_str(match lang {
                Lang::Zh => "应答码：",
                Lang::En => "Response code: ",
            });
            out.push_str(code);
        }
        for (i, step) in self.next_steps.iter().enumerate() {
            out.push('\n');
            out.push_str(&format!("{}. {}", i + 1, step.get(lang)));
        }
        out
    }
}

impl fmt::Display for Diagnosis {
    /// `code: English title`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.title.en)?;
        if let Some(c) = &self.host_code {
            write!(f, " (response code {c})")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Next steps shared by the tables.

const S_OTHER_PAYMENT: Text = Text::new(
    "请顾客换一张卡或改用其他方式付款",
    "Ask the customer for another card or another way to pay",
);
const S_CARD_BANK: Text = Text::new(
    "请持卡人联系发卡银行",
    "Ask the cardholder to call the bank that issued the card",
);
const S_RETRY: Text = Text::new("再试一次", "Try once more");
const S_RETRY_LATER: Text = Text::new("过几分钟再试", "Try again in a few minutes");
const S_RETRY_TOMORROW: Text = Text::new("明天再试", "Try again tomorrow");
const S_ACQUIRER: Text = Text::new(
    "联系收单机构客服（电话见商户协议或终端标签）",
    "Call the acquirer's service desk (number in the merchant agreement or on the terminal label)",
);
const S_SERVICE: Text = Text::new("联系终端服务商", "Call the terminal service provider");
const S_SIGN_IN: Text = Text::new(
    "在菜单中重新签到，然后再试",
    "Sign in to the bank again from the menu, then try again",
);
const S_ACQUIRER_IF_SIGN_IN_FAILS: Text = Text::new(
    "签到仍失败时，联系收单机构核对终端编号",
    "If signing in fails too, call the acquirer to check the terminal ID",
);
const S_NO_CHARGE_AGAIN: Text = Text::new("不要重复收款", "Do not charge the customer again");
const S_NO_REFUND_AGAIN: Text = Text::new("不要重复退款", "Do not refund again");
const S_CHECK_PENDING: Text =
    Text::new("在“待处理”中查看进度", "Check progress under Pending items");
const S_TERMINAL_FINISHES: Text = Text::new(
    "保持终端开机联网，终端会自动完成冲正",
    "Keep the terminal on and online; it finishes the reversal by itself",
);
const S_KEEP_CARD: Text = Text::new(
    "按银行要求留下此卡，不要交还顾客",
    "Keep the card as the bank asks; do not hand it back",
);
const S_PIN_AGAIN: Text = Text::new(
    "请持卡人重新输入密码",
    "Ask the cardholder to enter the PIN again",
);
const S_CHECK_AMOUNT: Text = Text::new("核对金额后重新输入", "Check the amount and enter it again");
const S_LOWER_AMOUNT: Text = Text::new("改用较小的金额", "Use a smaller amount");
const S_CHECK_NETWORK: Text = Text::new(
    "检查网络（Wi-Fi、移动数据或网线）",
    "Check the network (Wi-Fi, mobile data or cable)",
);
const S_QUERY_LAST: Text = Text::new(
    "先查看上一笔交易的结果，确认未成功后再重试",
    "Look up the last transaction first; retry only if it did not go through",
);
const S_CHECK_ORIGINAL: Text = Text::new(
    "核对原交易的参考号和日期",
    "Check the original transaction's reference and date",
);
const S_REFUND_LESS: Text = Text::new(
    "退款金额不要超过可退余额",
    "Refund no more than what is left to refund",
);
const S_REFUND_OTHER_WAY: Text = Text::new(
    "按店内规定用其他方式退款（如现金）并登记",
    "Refund another way by store rules (e.g. cash) and write it down",
);
const S_MERCHANT_FUNDS: Text = Text::new(
    "请商户确认结算账户有足够余额，或联系收单机构",
    "Ask the merchant to make sure the settlement account has enough money, or call the acquirer",
);
const S_SUPERVISOR: Text = Text::new("请主管处理", "Ask the supervisor");
const S_GIVE_SLIP: Text = Text::new("把小票交给顾客", "Give the customer the slip");
const S_CHECK_ID: Text = Text::new(
    "核对持卡人身份证件后再交付商品",
    "Check the cardholder's ID before handing over the goods",
);
const S_USE_CHIP: Text = Text::new(
    "请插卡或挥卡，不要刷磁条",
    "Insert or tap the card instead of swiping it",
);
const S_REPRINT: Text = Text::new(
    "处理好后从交易记录中重打小票",
    "Then reprint the slip from the transaction list",
);
const S_SETTLE_AGAIN: Text = Text::new(
    "重新结算（终端会上送明细）",
    "Settle again (the terminal uploads the details)",
);
const S_WAIT: Text = Text::new(
    "等当前操作结束后再试",
    "Wait for it to finish, then try again",
);
const S_DATE_TIME: Text = Text::new(
    "检查终端的日期和时间是否正确",
    "Check that the terminal's date and time are right",
);
const S_STOP: Text = Text::new(
    "暂停刷卡收款，不要继续交易",
    "Stop taking card payments for now",
);
const S_NEW_SALE: Text = Text::new(
    "如仍需收款，请重新发起交易",
    "Start a new sale if payment is still due",
);

use Category as C;
use MoneyState as M;
use Retry as R;

const fn t(zh: &'static str, en: &'static str) -> Text {
    Text::new(zh, en)
}

const fn d(
    code: &'static str,
    category: Category,
    money: MoneyState,
    retry: Retry,
    title: Text,
    explanation: Text,
    next_steps: &'static [Text],
) -> Diagnosis {
    Diagnosis::new(code, category, money, retry, title, explanation, next_steps)
}

// ---------------------------------------------------------------------------------------------
// Host response codes (field 39).
//
// Meanings: ISO 8583:1987 field 39 response code table (values 00-68, 75, 90-96; 76-89 are
// reserved for private use), and the China UnionPay POS terminal specification (中国银联 POS 终端
// 规范, 应答码表) for the CUP-specific meanings of 03, 05, 12, 21, 22, 77, 79, 97, 98, 99 and A0,
// and the UnionPay response code table Q/CUP 006.6-2014 appendix A.2 for 45 and A1-A7 (A2, A4,
// A5 and A6 are approvals "with defects", 有缺陷的成功).
// 76 and 78 fall in the private-use range and their meaning differs between acquirers, so they
// get a generic "acquirer-specific" wording. Which code gets which wording is a column of the
// one response code table, `smartpos_iso8583::RESPONSE_CODES` (its `diagnosis` and
// `refund_diagnosis` keys name the entries below by their `code`); that table also holds the
// English meanings and whether a code approves.

#[rustfmt::skip]
static RESPONSE_CODES: &[Diagnosis] = &[
    d("host.approved", C::Account, M::Charged, R::DoNotRetry, t("交易成功", "Approved"), t("银行已批准。", "The bank approved it."), &[S_GIVE_SLIP]),
    d("host.approved_with_id", C::Account, M::Charged, R::DoNotRetry, t("交易成功，请核对身份", "Approved: check ID"), t("银行已批准，并要求核对持卡人身份。", "The bank approved it and asks you to check the cardholder's identity."), &[S_CHECK_ID, S_GIVE_SLIP]),
    d("host.partial_approval", C::Account, M::Charged, R::SafeToRetry, t("部分批准", "Partly approved"), t("银行只批准了部分金额。", "The bank approved only part of the amount."), &[t("按小票上的金额收款，余款用其他方式支付", "Collect the amount on the slip; take the rest another way")]),
    d("host.approved_vip", C::Account, M::Charged, R::DoNotRetry, t("交易成功", "Approved"), t("银行已批准（重要客户）。", "The bank approved it (VIP customer)."), &[S_GIVE_SLIP]),
    d("host.approved_update_track3", C::Account, M::Charged, R::DoNotRetry, t("交易成功", "Approved"), t("银行已批准（并要求更新磁条第三磁道）。", "The bank approved it (and asks to update track 3)."), &[S_GIVE_SLIP]),
    d("host.refer_to_issuer", C::Card, M::NotCharged, R::DoNotRetry, t("请联系发卡银行", "Call the card's bank"), t("发卡银行拒绝了交易，要求持卡人与银行联系。", "The card's bank refused and asks the cardholder to contact it."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.refer_to_issuer_special", C::Card, M::NotCharged, R::DoNotRetry, t("请联系发卡银行", "Call the card's bank"), t("发卡银行因特殊情况拒绝了交易，要求持卡人与银行联系。", "The card's bank refused for a special reason and asks the cardholder to contact it."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.invalid_merchant", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("商户无效", "Merchant not accepted"), t("银行不接受本商户的交易（商户未登记、类别受限或已停用）。", "The bank does not accept this merchant (not registered, category restricted or suspended)."), &[S_ACQUIRER]),
    d("host.pick_up_card", C::Card, M::NotCharged, R::DoNotRetry, t("请留下此卡", "Keep the card"), t("发卡银行要求收回此卡，交易没有成功。", "The card's bank asks to keep this card; the payment did not go through."), &[S_KEEP_CARD, S_OTHER_PAYMENT]),
    d("host.do_not_honour", C::Card, M::NotCharged, R::DoNotRetry, t("发卡银行拒绝", "Declined by the card's bank"), t("发卡银行拒绝了交易，没有说明原因。", "The card's bank declined without giving a reason."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.error", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行处理出错", "Bank processing error"), t("银行系统处理出错，交易没有成功。", "The bank's system hit an error; the transaction did not go through."), &[S_RETRY_LATER, S_ACQUIRER]),
    d("host.pick_up_card_special", C::Card, M::NotCharged, R::ContactAcquirer, t("请留下此卡", "Keep the card"), t("发卡银行因特殊情况要求收回此卡，交易没有成功。", "The card's bank asks to keep this card for a special reason; the payment did not go through."), &[S_KEEP_CARD, S_ACQUIRER]),
    d("host.in_progress", C::Network, M::UnknownResolving, R::RetryAfterRecovery, t("交易处理中", "Still being processed"), t("银行仍在处理同一笔交易，结果还不确定。", "The bank is still processing this transaction; the result is not known yet."), &[S_NO_CHARGE_AGAIN, S_QUERY_LAST]),
    d("host.invalid_transaction", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("无效交易", "Transaction not valid"), t("银行不接受这类交易，或它与原交易对不上。", "The bank does not accept this kind of transaction, or it does not match the original."), &[S_CHECK_ORIGINAL, S_ACQUIRER]),
    d("host.invalid_amount", C::Operator, M::NotCharged, R::SafeToRetry, t("金额无效", "Amount not valid"), t("银行不接受这个金额。", "The bank does not accept this amount."), &[S_CHECK_AMOUNT]),
    d("host.invalid_card", C::Card, M::NotCharged, R::DoNotRetry, t("卡号无效", "Card number not valid"), t("银行不认识这个卡号。", "The bank does not recognise this card number."), &[S_OTHER_PAYMENT]),
    d("host.no_such_issuer", C::Card, M::NotCharged, R::DoNotRetry, t("无此发卡银行", "Card's bank unknown"), t("找不到这张卡的发卡银行，本终端无法受理。", "The card's bank cannot be found; this terminal cannot accept the card."), &[S_OTHER_PAYMENT]),
    d("host.reenter", C::Account, M::NotCharged, R::SafeToRetry, t("请重做交易", "Please try again"), t("银行要求重新发起这笔交易。", "The bank asks to run the transaction again."), &[S_RETRY]),
    d("host.invalid_response", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行应答无效", "Invalid bank answer"), t("银行网络返回了无效的应答。", "The bank network returned an invalid answer."), &[S_RETRY_LATER, S_ACQUIRER]),
    d("host.no_action", C::Account, M::NotCharged, R::DoNotRetry, t("银行未处理", "Not processed by the bank"), t("银行没有处理这笔交易（例如卡片尚未启用）。", "The bank took no action (for example the card is not activated)."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.suspected_malfunction", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行疑似故障", "Bank reports a fault"), t("银行怀疑处理故障或关联交易有误，交易没有成功。", "The bank suspects a fault or a wrong linked transaction; it did not go through."), &[S_QUERY_LAST, S_RETRY_LATER]),
    d("host.original_not_found", C::Account, M::NotCharged, R::ContactAcquirer, t("找不到原交易", "Original not found"), t("银行找不到对应的原交易记录。", "The bank cannot find the original transaction."), &[S_CHECK_ORIGINAL, S_ACQUIRER]),
    d("host.format_error", C::Software, M::NotCharged, R::SafeToRetry, t("数据格式错误", "Message format error"), t("银行读不懂终端发出的数据，多为终端参数或软件问题。", "The bank could not read the terminal's message; usually a terminal setting or software problem."), &[S_SERVICE]),
    d("host.bank_not_supported", C::Card, M::NotCharged, R::DoNotRetry, t("不支持该银行", "Card's bank not supported"), t("银行网络不受理这张卡的发卡银行。", "The network does not route to this card's bank."), &[S_OTHER_PAYMENT]),
    d("host.expired_pick_up", C::Card, M::NotCharged, R::DoNotRetry, t("卡已过期，请留下此卡", "Expired card, keep it"), t("卡已过期，银行要求收回此卡。", "The card has expired and the bank asks to keep it."), &[S_KEEP_CARD, S_OTHER_PAYMENT]),
    d("host.fraud_pick_up", C::Card, M::NotCharged, R::ContactAcquirer, t("疑似欺诈，请留下此卡", "Suspected fraud, keep the card"), t("银行怀疑此卡有欺诈风险，要求收回。", "The bank suspects fraud on this card and asks to keep it."), &[S_KEEP_CARD, S_ACQUIRER]),
    d("host.contact_acquirer_pick_up", C::Card, M::NotCharged, R::ContactAcquirer, t("请留下此卡并联系收单机构", "Keep the card, call the acquirer"), t("银行要求收回此卡并联系收单机构。", "The bank asks to keep the card and to call the acquirer."), &[S_KEEP_CARD, S_ACQUIRER]),
    d("host.restricted_pick_up", C::Card, M::NotCharged, R::DoNotRetry, t("受限卡，请留下此卡", "Restricted card, keep it"), t("此卡受限制，银行要求收回。", "This card is restricted and the bank asks to keep it."), &[S_KEEP_CARD, S_OTHER_PAYMENT]),
    d("host.pin_tries_pick_up", C::Card, M::NotCharged, R::DoNotRetry, t("密码错误次数过多", "Too many wrong PINs"), t("密码输错次数过多，银行要求收回此卡。", "Too many wrong PIN entries; the bank asks to keep the card."), &[S_KEEP_CARD, S_CARD_BANK]),
    d("host.no_credit_account", C::Account, M::NotCharged, R::DoNotRetry, t("无信用账户", "No credit account"), t("这张卡没有可用于此交易的信用账户。", "The card has no credit account for this transaction."), &[S_OTHER_PAYMENT]),
    d("host.function_not_supported", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("不支持此交易类型", "Transaction type not supported"), t("发卡银行不支持这类交易。", "The card's bank does not support this kind of transaction."), &[S_OTHER_PAYMENT, S_ACQUIRER]),
    d("host.lost_card", C::Card, M::NotCharged, R::ContactAcquirer, t("挂失卡", "Card reported lost"), t("此卡已挂失，交易没有成功。", "This card was reported lost; the payment did not go through."), &[S_KEEP_CARD, S_ACQUIRER]),
    d("host.stolen_card", C::Card, M::NotCharged, R::ContactAcquirer, t("被盗卡", "Card reported stolen"), t("此卡已报失窃，交易没有成功。", "This card was reported stolen; the payment did not go through."), &[S_KEEP_CARD, S_ACQUIRER]),
    d("host.no_investment_account", C::Account, M::NotCharged, R::DoNotRetry, t("无投资账户", "No investment account"), t("这张卡没有对应的投资账户。", "The card has no investment account for this transaction."), &[S_OTHER_PAYMENT]),
    d("host.fallback_not_allowed", C::Card, M::NotCharged, R::SafeToRetry, t("请使用芯片", "Use the chip"), t("发卡银行不允许这张卡刷磁条交易。", "The card's bank does not allow this card to be swiped."), &[S_USE_CHIP]),
    d("host.insufficient_funds", C::Account, M::NotCharged, R::DoNotRetry, t("余额不足", "Insufficient balance"), t("卡内可用余额不足。", "The card does not have enough available balance."), &[S_OTHER_PAYMENT]),
    d("host.no_cheque_account", C::Account, M::NotCharged, R::DoNotRetry, t("无支票账户", "No cheque account"), t("这张卡没有对应的支票账户。", "The card has no cheque account for this transaction."), &[S_OTHER_PAYMENT]),
    d("host.no_savings_account", C::Account, M::NotCharged, R::DoNotRetry, t("无储蓄账户", "No savings account"), t("这张卡没有对应的储蓄账户。", "The card has no savings account for this transaction."), &[S_OTHER_PAYMENT]),
    d("host.expired_card", C::Card, M::NotCharged, R::DoNotRetry, t("卡已过期", "Card expired"), t("这张卡已过有效期。", "This card has expired."), &[S_OTHER_PAYMENT]),
    d("host.incorrect_pin", C::Card, M::NotCharged, R::SafeToRetry, t("密码错误", "Wrong PIN"), t("持卡人输入的密码不正确。", "The cardholder entered a wrong PIN."), &[S_PIN_AGAIN]),
    d("host.no_card_record", C::Card, M::NotCharged, R::DoNotRetry, t("无此卡记录", "Card not on file"), t("银行没有这张卡的记录。", "The bank has no record of this card."), &[S_OTHER_PAYMENT, S_CARD_BANK]),
    d("host.not_permitted_cardholder", C::PlatformLimit, M::NotCharged, R::DoNotRetry, t("此卡不允许该交易", "Not allowed for this card"), t("发卡银行不允许这张卡做这类交易。", "The card's bank does not allow this card to do this transaction."), &[S_OTHER_PAYMENT, S_CARD_BANK]),
    d("host.not_permitted_terminal", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("本终端不允许该交易", "Not allowed on this terminal"), t("本商户或终端没有开通这类交易。", "This merchant or terminal is not enabled for this transaction."), &[S_ACQUIRER]),
    d("host.suspected_fraud", C::Card, M::NotCharged, R::DoNotRetry, t("风控拒绝", "Refused by risk control"), t("银行风控拒绝了这笔交易。", "The bank's risk control refused this transaction."), &[S_OTHER_PAYMENT, S_CARD_BANK]),
    d("host.contact_acquirer", C::Account, M::NotCharged, R::ContactAcquirer, t("请联系收单机构", "Call the acquirer"), t("银行要求商户联系收单机构。", "The bank asks the merchant to call the acquirer."), &[S_ACQUIRER]),
    d("host.amount_limit", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("超出金额限制", "Over the amount limit"), t("金额超过了这张卡或本商户的限额。", "The amount is over the card's or the merchant's limit."), &[S_LOWER_AMOUNT, S_OTHER_PAYMENT]),
    d("host.restricted_card", C::Account, M::NotCharged, R::DoNotRetry, t("卡片受限", "Restricted card"), t("这张卡的账户受限或已冻结。", "This card's account is restricted or frozen."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.security_violation", C::Security, M::NotCharged, R::SafeToRetry, t("安全检查未通过", "Security check failed"), t("银行的安全检查没有通过。", "The bank's security check did not pass."), &[S_SIGN_IN, S_SERVICE]),
    d("host.original_amount_mismatch", C::Operator, M::NotCharged, R::SafeToRetry, t("与原交易金额不符", "Does not match the original amount"), t("金额与原交易不一致。", "The amount does not match the original transaction."), &[S_CHECK_AMOUNT, S_CHECK_ORIGINAL]),
    d("host.frequency_limit", C::PlatformLimit, M::NotCharged, R::RetryAfterRecovery, t("超出次数限制", "Too many transactions"), t("这张卡或本商户的交易次数已达上限。", "The card or the merchant has reached its allowed number of transactions."), &[S_OTHER_PAYMENT, S_RETRY_TOMORROW]),
    d("host.call_acquirer_security", C::Security, M::NotCharged, R::ContactAcquirer, t("请联系收单机构安全部门", "Call the acquirer's security desk"), t("银行要求商户联系收单机构的安全部门。", "The bank asks the merchant to call the acquirer's security desk."), &[S_ACQUIRER]),
    d("host.hard_capture", C::Card, M::NotCharged, R::DoNotRetry, t("请留下此卡", "Keep the card"), t("银行要求收回此卡。", "The bank asks to keep this card."), &[S_KEEP_CARD, S_OTHER_PAYMENT]),
    d("host.response_too_late", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行应答太晚", "Bank answered too late"), t("银行的应答到得太晚，这笔交易已作废。", "The bank's answer came too late; the transaction was cancelled."), &[S_QUERY_LAST, S_RETRY_LATER]),
    d("host.pin_tries_exceeded", C::Card, M::NotCharged, R::DoNotRetry, t("密码错误次数过多", "Too many wrong PINs"), t("密码输错次数过多，这张卡暂时不能用密码交易。", "Too many wrong PIN entries; the card cannot be used with a PIN for now."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("host.acquirer_specific_76", C::Account, M::NotCharged, R::ContactAcquirer, t("收单机构拒绝", "Declined by the acquirer"), t("收单机构用自定义的应答码拒绝了交易。", "The acquirer declined with a code of its own."), &[S_ACQUIRER]),
    d("host.batch_mismatch", C::Software, M::NotCharged, R::SafeToRetry, t("请重新签到", "Sign in again"), t("终端的批次号与银行不一致。", "The terminal's batch number does not match the bank's."), &[S_SIGN_IN]),
    d("host.acquirer_specific_78", C::Account, M::NotCharged, R::ContactAcquirer, t("收单机构拒绝", "Declined by the acquirer"), t("收单机构用自定义的应答码拒绝了交易。", "The acquirer declined with a code of its own."), &[S_ACQUIRER]),
    d("host.offline_mismatch", C::Software, M::NotCharged, R::SafeToRetry, t("脱机交易对账不平", "Offline transactions do not match"), t("终端上送的脱机交易与银行记录不一致。", "The terminal's offline transactions do not match the bank's records."), &[S_SETTLE_AGAIN, S_SERVICE]),
    d("host.cutoff", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行日切中", "Bank day-end in progress"), t("银行正在切换营业日，暂时不能交易。", "The bank is switching to the next business day."), &[S_RETRY_LATER]),
    d("host.issuer_unavailable", C::Network, M::NotCharged, R::RetryAfterRecovery, t("发卡银行暂不可用", "Card's bank unavailable"), t("发卡银行或银行网络暂时无法处理。", "The card's bank or the bank network cannot process right now."), &[S_RETRY_LATER, S_OTHER_PAYMENT]),
    d("host.routing_failed", C::Network, M::NotCharged, R::RetryAfterRecovery, t("连不上发卡银行", "Cannot reach the card's bank"), t("银行网络找不到通往发卡银行的线路。", "The bank network cannot reach the card's bank."), &[S_RETRY_LATER, S_OTHER_PAYMENT]),
    d("host.violation_of_law", C::Account, M::NotCharged, R::ContactAcquirer, t("依法不能完成", "Not allowed by law"), t("这笔交易违反规定，不能完成。", "This transaction cannot be completed under the rules of law."), &[S_ACQUIRER]),
    d("host.duplicate", C::Account, M::UnknownResolving, R::DoNotRetry, t("重复交易", "Duplicate transaction"), t("银行认为这是重复提交；第一次可能已经成功。", "The bank sees this as a repeat; the first attempt may have gone through."), &[S_NO_CHARGE_AGAIN, S_QUERY_LAST]),
    d("host.reconcile_error", C::Software, M::NotCharged, R::SafeToRetry, t("对账不平", "Totals do not match"), t("终端与银行的结算总额不一致，需要上送明细。", "The terminal's totals differ from the bank's; the details must be uploaded."), &[S_SETTLE_AGAIN, S_SERVICE]),
    d("host.system_malfunction", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行系统故障", "Bank system fault"), t("银行或银行网络的系统出现异常。", "The bank or the bank network has a system fault."), &[S_QUERY_LAST, S_RETRY_LATER]),
    d("host.terminal_not_registered", C::Software, M::NotCharged, R::SafeToRetry, t("请重新签到", "Sign in again"), t("银行不认识本终端当前的签到（工作密钥）：多为银行系统重启或签到已失效。终端会自动重新签到一次；仍不行时，可能是终端编号未在银行登记。", "The bank does not know this terminal's sign-in (its working keys): usually the bank's system restarted or the sign-in expired. The terminal signs in again by itself once; if that fails too, the terminal ID may not be registered with the bank."), &[S_SIGN_IN, S_ACQUIRER_IF_SIGN_IN_FAILS]),
    d("host.issuer_timeout", C::Network, M::NotCharged, R::RetryAfterRecovery, t("发卡银行超时", "Card's bank timed out"), t("银行网络没有收到发卡银行的应答，交易没有完成。", "The bank network got no answer from the card's bank; the transaction did not complete."), &[S_QUERY_LAST, S_RETRY_LATER]),
    d("host.pin_format_error", C::Security, M::NotCharged, R::SafeToRetry, t("密码数据错误", "PIN data error"), t("银行读不出密码数据，多为终端密钥问题。", "The bank could not read the PIN data; usually a terminal key problem."), &[S_SIGN_IN, S_SERVICE]),
    d("host.mac_error", C::Security, M::NotCharged, R::SafeToRetry, t("校验失败，请重新签到", "Check failed, sign in again"), t("银行校验终端数据没有通过，需要更新密钥。", "The bank could not verify the terminal's message; the keys need refreshing."), &[S_SIGN_IN, S_SERVICE]),
    d("host.currency_mismatch", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("币种不一致", "Currencies differ"), t("交易的币种与账户的币种不一致。", "The transaction's currency does not match the account's."), &[S_ACQUIRER]),
    d("host.approved_with_defects_a2", C::Account, M::Charged, R::DoNotRetry, t("交易成功，请向银行确认", "Approved; the bank will confirm"), t("发卡银行没有及时应答，银联代为批准了交易；以银行入账为准。", "The card's bank did not answer in time and UnionPay approved on its behalf; the bank's posting confirms it."), &[S_GIVE_SLIP]),
    d("host.no_receiving_account", C::Account, M::NotCharged, R::DoNotRetry, t("收款账户不存在", "No such receiving account"), t("收款银行没有这个账户。", "The receiving bank has no such account."), &[S_CHECK_AMOUNT, S_ACQUIRER]),
    d("host.approved_with_defects_a4", C::Account, M::Charged, R::DoNotRetry, t("交易成功，请向银行确认", "Approved; the bank will confirm"), t("银联批准了交易，但原交易的信息不完整；以银行入账为准。", "UnionPay approved it without the full original on file; the bank's posting confirms it."), &[S_GIVE_SLIP]),
    d("host.approved_with_defects_a5", C::Account, M::Charged, R::DoNotRetry, t("交易成功，请向银行确认", "Approved; the bank will confirm"), t("银联批准了交易，但原交易曾被拒绝；以银行入账为准。", "UnionPay approved it although the original had been declined; the bank's posting confirms it."), &[S_GIVE_SLIP]),
    d("host.approved_with_defects_a6", C::Account, M::Charged, R::DoNotRetry, t("交易成功，请向银行确认", "Approved; the bank will confirm"), t("发卡银行没有及时应答，银联代为批准了交易；以银行入账为准。", "The card's bank did not answer in time and UnionPay approved on its behalf; the bank's posting confirms it."), &[S_GIVE_SLIP]),
    d("host.security_failure", C::Security, M::NotCharged, R::RetryAfterRecovery, t("安全处理失败", "Security check failed"), t("银行处理密码或校验数据时出错，交易没有成功。", "The bank failed while processing the PIN or check data; the transaction did not go through."), &[S_SIGN_IN, S_SERVICE]),
];

// Refund-specific wording for the codes where a refund means something else than a sale (the
// table's `refund_diagnosis` column). A refund credits the card and is paid from the merchant's
// settlement account.
#[rustfmt::skip]
static REFUND_CODES: &[Diagnosis] = &[
    d("host.refund_declined", C::Account, M::NotCharged, R::ContactAcquirer, t("退款被拒绝", "Refund declined"), t("银行拒绝了这笔退款，没有说明原因。", "The bank refused this refund without giving a reason."), &[S_ACQUIRER, S_REFUND_OTHER_WAY]),
    d("host.refund_invalid", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("这笔不能退款", "This refund is not accepted"), t("银行不接受对这笔原交易退款（原交易状态不允许，或未开通退款）。", "The bank does not accept a refund of this payment (its state does not allow it, or refunds are not enabled)."), &[S_CHECK_ORIGINAL, S_ACQUIRER]),
    d("host.refund_over_remainder", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("超出可退金额", "Over the refundable remainder"), t("退款金额超过了原交易剩余可退的金额。", "The refund is more than what is left to refund on the original payment."), &[S_REFUND_LESS, S_CHECK_ORIGINAL]),
    d("host.refund_original_not_found", C::Account, M::NotCharged, R::ContactAcquirer, t("找不到原交易", "Original payment not found"), t("银行找不到要退款的原交易：参考号或日期可能有误，或已超过银行的保存期限。", "The bank cannot find the payment to refund: the reference or date may be wrong, or it is older than the bank keeps."), &[S_CHECK_ORIGINAL, S_ACQUIRER]),
    d("host.refund_merchant_funds", C::Account, M::NotCharged, R::SafeToRetry, t("商户结算账户余额不足", "Merchant account short of money"), t("退款要从商户结算账户扣回，该账户余额不足。顾客的卡没有问题。", "A refund is paid from the merchant's settlement account, which does not have enough money. The customer's card is fine."), &[S_MERCHANT_FUNDS, S_REFUND_OTHER_WAY]),
    d("host.refund_not_permitted_card", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("此卡不能退款", "Refunds not allowed to this card"), t("卡组织或发卡银行的规定不允许退款到这张卡。", "Card scheme or bank rules do not allow a refund to this card."), &[S_REFUND_OTHER_WAY, S_ACQUIRER]),
    d("host.refund_not_permitted_terminal", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("本终端未开通退款", "Refunds not enabled here"), t("收单机构没有给本商户或终端开通退款。", "The acquirer has not enabled refunds for this merchant or terminal."), &[S_ACQUIRER, S_REFUND_OTHER_WAY]),
    d("host.refund_under_review", C::Dispute, M::NotCharged, R::RetryAfterRecovery, t("原交易审核或争议中", "Original payment under review"), t("原交易正在风控审核或争议处理中，暂时不能退款。", "The original payment is under risk review or dispute; it cannot be refunded for now."), &[S_SUPERVISOR, S_ACQUIRER]),
    d("host.refund_amount_limit", C::PlatformLimit, M::NotCharged, R::ContactAcquirer, t("超出退款限额", "Over the refund limit"), t("退款金额超过了商户或卡的退款限额。", "The refund is over the merchant's or the card's refund limit."), &[S_REFUND_LESS, S_ACQUIRER]),
    d("host.refund_card_restricted", C::Account, M::NotCharged, R::DoNotRetry, t("卡已冻结或受限", "Card frozen or restricted"), t("顾客的卡账户被冻结或受限，退款无法入账。", "The customer's card account is frozen or restricted, so the refund cannot be credited."), &[S_CARD_BANK, S_REFUND_OTHER_WAY]),
    d("host.refund_amount_mismatch", C::Operator, M::NotCharged, R::SafeToRetry, t("与原交易不符", "Does not match the original"), t("退款的金额或信息与原交易不一致。", "The refund's amount or details do not match the original payment."), &[S_CHECK_AMOUNT, S_CHECK_ORIGINAL]),
    d("host.refund_frequency_limit", C::PlatformLimit, M::NotCharged, R::RetryAfterRecovery, t("退款次数已达上限", "Too many refunds"), t("退款次数已达到允许的上限。", "The allowed number of refunds has been reached."), &[S_RETRY_TOMORROW, S_ACQUIRER]),
    d("host.refund_duplicate", C::Account, M::UnknownResolving, R::DoNotRetry, t("重复退款", "Duplicate refund"), t("银行已经收到过同一笔退款。", "The bank already has this refund."), &[S_NO_REFUND_AGAIN, S_QUERY_LAST]),
];

static UNKNOWN_CODE: Diagnosis = d(
    "host.unknown_code",
    C::Account,
    M::NotCharged,
    R::SafeToRetry,
    t("银行拒绝", "Declined by the bank"),
    t(
        "银行用本终端不认识的应答码拒绝了交易。",
        "The bank declined with a code this terminal does not know.",
    ),
    &[S_ACQUIRER],
);

/// A code in no table, answering a request that may move money (see
/// [`smartpos_txn::proto::reversed_as_possible_approval`], the engine's rule): reversed.
static UNKNOWN_CODE_REVERSED: Diagnosis = d(
    "host.unknown_code_reversed",
    C::Network,
    M::ReversalPending,
    R::RetryAfterRecovery,
    t(
        "未知应答，正在撤回交易",
        "Unknown bank answer: being reversed",
    ),
    t(
        "银行用本终端不认识的应答码回复。它可能是一种批准，所以终端按可能已扣款处理，自动撤回（冲正）这笔交易；银行确认冲正后顾客不会被扣款。",
        "The bank answered with a code this terminal does not know. It may be an approval, so the terminal treats the customer as possibly charged and reverses the transaction; once the bank confirms the reversal, the customer is not charged.",
    ),
    &[S_NO_CHARGE_AGAIN, S_TERMINAL_FINISHES, S_CHECK_PENDING],
);

/// Whether `code` is in the response code table: a code outside it may be an approval of the
/// host's own, so the engine reverses a transaction answered with one rather than calling it
/// declined.
pub fn is_known_response_code(code: &str) -> bool {
    smartpos_txn::proto::is_known_response_code(code)
}

/// The entry of `table` whose key (its `code`) is `key`.
fn by_key(table: &'static [Diagnosis], key: Option<&str>) -> Option<&'static Diagnosis> {
    let key = key?;
    table.iter().find(|d| d.code == key)
}

/// Diagnoses a host response code (field 39) for a transaction of `kind`.
///
/// Refunds get refund-specific wording where the meaning differs (e.g. 51: the merchant's
/// settlement account is short, not the card). A code in no table gives
/// `host.unknown_code_reversed` for the kinds the engine reverses on such a code (sale,
/// pre-authorisation, completion, void, cancel: it may be an approval) and `host.unknown_code`
/// (declined) for a refund or a balance inquiry. The code
/// itself is always carried in [`Diagnosis::host_code`]. Codes are matched case-insensitively
/// (`a0` = `A0`).
pub fn for_response_code(code: &str, kind: TxnKind) -> Diagnosis {
    // Hostile input: keep at most 8 printable ASCII characters for display.
    let upper: String = code
        .trim()
        .chars()
        .take(8)
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_ascii_uppercase()
            } else {
                '?'
            }
        })
        .collect();
    let row = ResponseCode::parse(&upper).and_then(|c| c.row());
    let refund = if kind == TxnKind::Refund {
        by_key(REFUND_CODES, row.and_then(|r| r.refund_diagnosis))
    } else {
        None
    };
    // A code in no table: what the engine does with it decides the words (one rule, the
    // engine's: a request that may move money is reversed as a possible approval).
    let unknown = if smartpos_txn::proto::reversed_as_possible_approval(kind, &upper) {
        &UNKNOWN_CODE_REVERSED
    } else {
        &UNKNOWN_CODE
    };
    let d = refund
        .or_else(|| by_key(RESPONSE_CODES, row.and_then(|r| r.diagnosis)))
        .unwrap_or(unknown)
        .clone()
        .with_host_code(&upper);
    // An approved refund moves money back to the customer.
    if kind == TxnKind::Refund && d.money == MoneyState::Charged {
        d.with_money(MoneyState::Refunded)
    } else {
        d
    }
}

// ---------------------------------------------------------------------------------------------
// Engine errors.

/// Why the engine refused a request before sending anything (structured, for
/// `OpError::Rejected`). Each reason has a stable log text ([`RejectReason::as_str`]) and a
/// cashier diagnosis ([`for_reject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    /// Void, refund, completion and cancel need the original transaction.
    NeedsOriginal,
    /// Sale, pre-auth and balance take no original.
    TakesNoOriginal,
    /// Card data is required for this kind.
    CardRequired,
    /// The amount is zero.
    ZeroAmount,
    /// The amount has more than 12 digits.
    AmountTooLarge,
    /// Only a sale or completion can be voided.
    NotVoidable,
    /// Only a sale or completion can be refunded.
    NotRefundable,
    /// The original is not approved (declined, or already voided / reversed).
    OriginalNotApproved,
    /// The original is not in the open batch (already settled): refund it instead of voiding.
    OriginalNotInOpenBatch,
    /// Refunds would exceed the original amount.
    RefundExceedsOriginal,
    /// Completion and cancel need an approved pre-authorisation as the original.
    OriginalNotPreAuth,
    /// The completion exceeds the pre-authorised amount.
    CompletionExceedsPreAuth,
    /// Only an approved, reversible transaction can be reversed after a terminal failure.
    NotReversible,
    /// No stored request to reverse.
    NothingToReverse,
    /// No transaction with that reference in the journal.
    OriginalNotFound,
    /// The idempotency key was already used for a different request.
    IdempotencyConflict,
}

impl RejectReason {
    /// Every reason (for tables and tests).
    pub const ALL: [RejectReason; 14] = [
        RejectReason::NeedsOriginal,
        RejectReason::TakesNoOriginal,
        RejectReason::CardRequired,
        RejectReason::ZeroAmount,
        RejectReason::AmountTooLarge,
        RejectReason::NotVoidable,
        RejectReason::NotRefundable,
        RejectReason::OriginalNotApproved,
        RejectReason::OriginalNotInOpenBatch,
        RejectReason::RefundExceedsOriginal,
        RejectReason::OriginalNotPreAuth,
        RejectReason::CompletionExceedsPreAuth,
        RejectReason::NotReversible,
        RejectReason::NothingToReverse,
    ];

    /// English text for logs (the same words the engine used before the reasons were structured).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NeedsOriginal => "this transaction needs the original",
            RejectReason::TakesNoOriginal => "this transaction takes no original",
            RejectReason::CardRequired => "card data required",
            RejectReason::ZeroAmount => "amount must be greater than zero",
            RejectReason::AmountTooLarge => "amount exceeds 12 digits",
            RejectReason::NotVoidable => "only a sale or completion can be voided",
            RejectReason::NotRefundable => "only a sale or completion can be refunded",
            RejectReason::OriginalNotApproved => {
                "the original is not approved (or was voided/reversed)"
            }
            RejectReason::OriginalNotInOpenBatch => {
                "the original is not in the open batch: refund it instead"
            }
            RejectReason::RefundExceedsOriginal => "refunds would exceed the original amount",
            RejectReason::OriginalNotPreAuth => {
                "the original must be an approved pre-authorisation"
            }
            RejectReason::CompletionExceedsPreAuth => {
                "completion exceeds the pre-authorised amount"
            }
            RejectReason::OriginalNotFound => "no transaction with that reference",
            RejectReason::IdempotencyConflict => {
                "idempotency key already used for a different request"
            }
            RejectReason::NotReversible => {
                "only an approved, reversible transaction can be reversed"
            }
            RejectReason::NothingToReverse => "no stored request to reverse",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[rustfmt::skip]
static REJECTS: &[(RejectReason, Diagnosis)] = &[
    (RejectReason::NeedsOriginal, d("reject.needs_original", C::Operator, M::NotCharged, R::SafeToRetry, t("请选择原交易", "Choose the original transaction"), t("撤销、退款和预授权完成都需要先选择原交易。", "Void, refund and completion need the original transaction first."), &[S_CHECK_ORIGINAL])),
    (RejectReason::TakesNoOriginal, d("reject.takes_no_original", C::Software, M::NotCharged, R::SafeToRetry, t("请求有误", "Request not valid"), t("这类交易不需要原交易，收银软件传错了参数。", "This kind of transaction takes no original; the cash register app sent a wrong request."), &[S_SERVICE])),
    (RejectReason::CardRequired, d("reject.card_required", C::Operator, M::NotCharged, R::SafeToRetry, t("请读卡", "Present the card"), t("这笔交易需要读取卡片。", "This transaction needs the card."), &[t("请顾客插卡、挥卡或刷卡", "Ask the customer to insert, tap or swipe the card")])),
    (RejectReason::ZeroAmount, d("reject.zero_amount", C::Operator, M::NotCharged, R::SafeToRetry, t("金额不能为零", "Amount cannot be zero"), t("输入的金额是零。", "The amount entered is zero."), &[S_CHECK_AMOUNT])),
    (RejectReason::AmountTooLarge, d("reject.amount_too_large", C::Operator, M::NotCharged, R::SafeToRetry, t("金额过大", "Amount too large"), t("金额超出了终端能处理的位数。", "The amount has more digits than the terminal can send."), &[S_CHECK_AMOUNT])),
    (RejectReason::NotVoidable, d("reject.not_voidable", C::Operator, M::NotCharged, R::DoNotRetry, t("这笔不能撤销", "This cannot be voided"), t("只有消费和预授权完成可以撤销。", "Only a sale or a completion can be voided."), &[S_CHECK_ORIGINAL])),
    (RejectReason::NotRefundable, d("reject.not_refundable", C::Operator, M::NotCharged, R::DoNotRetry, t("这笔不能退款", "This cannot be refunded"), t("只有消费和预授权完成可以退款。", "Only a sale or a completion can be refunded."), &[S_CHECK_ORIGINAL])),
    (RejectReason::OriginalNotApproved, d("reject.original_not_approved", C::Operator, M::NotCharged, R::DoNotRetry, t("原交易未成功", "Original did not go through"), t("原交易没有成功，或已撤销、已冲正：顾客没有被扣这笔钱。", "The original did not go through, or was voided or reversed: the customer was not charged for it."), &[S_CHECK_ORIGINAL])),
    (RejectReason::OriginalNotInOpenBatch, d("reject.original_settled", C::Operator, M::NotCharged, R::SafeToRetry, t("原交易已结算，请做退货", "Already settled: refund instead"), t("原交易已经结算，不能撤销，只能退货。", "The original is already settled; it cannot be voided, only refunded."), &[t("改用退货（退款）功能", "Use Refund instead")])),
    (RejectReason::RefundExceedsOriginal, d("reject.refund_exceeds_original", C::PlatformLimit, M::NotCharged, R::SafeToRetry, t("超出可退金额", "Over the refundable remainder"), t("累计退款会超过原交易金额。", "Refunds would add up to more than the original payment."), &[S_REFUND_LESS])),
    (RejectReason::OriginalNotPreAuth, d("reject.original_not_preauth", C::Operator, M::NotCharged, R::DoNotRetry, t("原交易不是有效的预授权", "Original is not a valid pre-authorisation"), t("预授权完成或撤销需要一笔已批准的预授权。", "Completion and cancellation need an approved pre-authorisation."), &[S_CHECK_ORIGINAL])),
    (RejectReason::CompletionExceedsPreAuth, d("reject.completion_exceeds_preauth", C::Operator, M::NotCharged, R::SafeToRetry, t("超出预授权金额", "Over the pre-authorised amount"), t("完成金额超过了预授权金额。", "The completion is more than the pre-authorised amount."), &[S_CHECK_AMOUNT])),
    (RejectReason::NotReversible, d("reject.not_reversible", C::Software, M::NotCharged, R::DoNotRetry, t("这笔不能冲正", "This cannot be reversed"), t("只有已批准且可冲正的交易才能冲正。", "Only an approved, reversible transaction can be reversed."), &[S_SERVICE])),
    (RejectReason::OriginalNotFound, d("reject.original_not_found", C::Operator, M::NotCharged, R::SafeToRetry, t("找不到原交易", "Original not found"), t("终端记录里没有这个参考号的交易，什么都没有发出。", "No transaction with that reference is in the terminal's records; nothing was sent."), &[S_CHECK_ORIGINAL])),
    (RejectReason::IdempotencyConflict, d("reject.idempotency_conflict", C::Software, M::NotCharged, R::DoNotRetry, t("订单号已用于另一笔交易", "Order key already used"), t("收银软件用同一个订单号发起了不同的交易；为避免重复收款，终端没有处理。", "The cash register app sent a different transaction under an order key already used; to avoid charging twice, the terminal did nothing."), &[S_QUERY_LAST, S_SERVICE])),
    (RejectReason::NothingToReverse, d("reject.nothing_to_reverse", C::Software, M::NotCharged, R::DoNotRetry, t("没有可冲正的交易", "Nothing to reverse"), t("终端没有保存可用于冲正的请求。", "The terminal has no stored request to reverse."), &[S_SERVICE])),
];

static GENERIC_REJECT: Diagnosis = d(
    "reject.other",
    C::Operator,
    M::NotCharged,
    R::SafeToRetry,
    t("请求不被允许", "Request not allowed"),
    t(
        "终端没有发出这笔交易，顾客没有被扣款。",
        "The terminal did not send this transaction; the customer was not charged.",
    ),
    &[S_SUPERVISOR],
);

/// Diagnoses a structured rejection.
pub fn for_reject(reason: RejectReason) -> Diagnosis {
    REJECTS
        .iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, d)| d)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

#[rustfmt::skip]
static OP_ERRORS: &[Diagnosis] = &[
    d("op.busy", C::Operator, M::NotCharged, R::RetryAfterRecovery, t("正在处理其他操作", "Busy with another operation"), t("终端还在处理另一个操作。", "The terminal is still working on another operation."), &[S_WAIT]),
    d("op.not_signed_in", C::Operator, M::NotCharged, R::SafeToRetry, t("未签到", "Not signed in"), t("终端还没有向银行签到，不能交易。", "The terminal has not signed in to the bank yet."), &[S_SIGN_IN]),
    d("op.pending_undelivered", C::Network, M::ReversalPending, R::RetryAfterRecovery, t("有未送达的冲正或退款", "Earlier items not delivered"), t("之前的冲正或退款还没送达银行，送达前不能做新交易；相关款项可能暂被冻结。", "Earlier reversals or refunds have not reached the bank; no new transaction until they do. The money involved may be held until then."), &[S_CHECK_NETWORK, S_CHECK_PENDING, S_NO_CHARGE_AGAIN]),
    d("op.no_response", C::Network, M::NotCharged, R::RetryAfterRecovery, t("银行没有应答", "No answer from the bank"), t("银行没有应答（这个操作不涉及资金）。", "The bank did not answer (this operation does not move money)."), &[S_CHECK_NETWORK, S_RETRY_LATER]),
    d("op.key_check", C::Security, M::NotCharged, R::SafeToRetry, t("密钥校验失败", "Key check failed"), t("银行下发的密钥没有通过校验。", "The keys sent by the bank failed their check."), &[S_SIGN_IN, S_SERVICE]),
    d("op.key_block", C::Security, M::NotCharged, R::SafeToRetry, t("密钥数据有误", "Key data damaged"), t("银行下发的密钥数据不完整或格式不对。", "The key data sent by the bank is incomplete or malformed."), &[S_SIGN_IN, S_SERVICE]),
    d("op.proto", C::Software, M::NotCharged, R::SafeToRetry, t("终端无法生成交易数据", "Terminal could not build the message"), t("终端软件或参数有误，交易没有发出。", "A terminal software or setting problem; nothing was sent."), &[S_SERVICE]),
    d("op.dukpt_exhausted", C::Security, M::NotCharged, R::ContactAcquirer, t("交易密钥已用完", "Transaction keys used up"), t("终端的交易密钥计数器（DUKPT）已用完，必须重新灌装初始密钥才能继续交易。这笔交易没有发出，顾客没有被扣款。", "The terminal's transaction key counter (DUKPT) is used up: a new initial key must be loaded before any more transactions. This one was not sent; the customer was not charged."), &[S_SERVICE]),
    d("op.not_sent", C::Network, M::NotCharged, R::SafeToRetry, t("未能连上银行", "Could not reach the bank"), t("交易没有发出，顾客没有被扣款。", "The transaction never left the terminal; the customer was not charged."), &[S_CHECK_NETWORK, S_RETRY]),
    d("op.security_module", C::Security, M::NotCharged, R::ContactAcquirer, t("安全模块故障", "Security module failed"), t("终端的安全模块（密码键盘）没有完成密钥操作，交易没有发出。", "The terminal's security module (PIN pad) could not complete a key operation; nothing was sent."), &[S_SERVICE]),
];

fn op(code: &str) -> Diagnosis {
    OP_ERRORS
        .iter()
        .find(|d| d.code == code)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

/// Diagnoses an engine error. `OpError::Rejected` still carries free text; until it carries a
/// [`RejectReason`] it maps to a generic "request not allowed" (use [`for_reject`] then).
pub fn for_op_error(err: &OpError) -> Diagnosis {
    #[allow(unreachable_patterns)] // OpError is non_exhaustive: new variants get a generic text.
    match err {
        OpError::Busy => op("op.busy"),
        OpError::NotSignedIn => op("op.not_signed_in"),
        OpError::PendingUndelivered { .. } => op("op.pending_undelivered"),
        OpError::NoResponse => op("op.no_response"),
        OpError::HostRefused { code } => {
            // A non-financial command (sign-in, echo, settlement) was refused: no money moved.
            for_response_code(code, TxnKind::Balance).with_money(MoneyState::NotCharged)
        }
        OpError::KeyCheck => op("op.key_check"),
        OpError::KeyBlock { .. } => op("op.key_block"),
        OpError::Rejected { .. } => GENERIC_REJECT.clone(),
        OpError::Proto(_) => op("op.proto"),
        OpError::NotSent => op("op.not_sent"),
        OpError::Params(_) => op("op.proto"),
        OpError::DukptExhausted => op("op.dukpt_exhausted"),
        OpError::SecurityModule { .. } => op("op.security_module"),
        _ => GENERIC_REJECT.clone(),
    }
}

/// How the terminal's own recovery from a security failure ended (a response that failed its
/// MAC check, or the host's `A0` / `97`: the working keys on the two sides no longer agree).
/// The terminal signs in again once by itself; this is what the cashier is told afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecurityRecovery {
    /// Signed in again: new working keys on both sides.
    KeysRenewed,
    /// Signed in again, and the host's answers still fail their MAC check.
    MacStillFailing,
    /// The sign-in was refused by the host or got no answer.
    SignInFailed,
    /// The sign-in's keys failed their check values: the terminal's master key is not the
    /// host's.
    SignInKeyCheck,
    /// The security module failed while installing the new keys.
    SignInModuleFailed,
}

const S_NEW_KEYS_RETRY: Text = Text::new(
    "密钥已更新，可以重新发起交易",
    "The keys are renewed: start the transaction again",
);
const S_MASTER_KEY: Text = Text::new(
    "联系终端服务商重新灌装主密钥",
    "Call the terminal service provider to load the master key again",
);

#[rustfmt::skip]
static SECURITY: &[(SecurityRecovery, Diagnosis)] = &[
    (SecurityRecovery::KeysRenewed, d("security.keys_renewed", C::Security, M::NotCharged, R::SafeToRetry, t("安全密钥已更新", "Security keys renewed"), t("银行的应答没有通过安全校验，这笔交易已撤回（冲正），顾客没有被扣款；终端已自动重新签到，换了新的工作密钥。", "The bank's answer failed its security check, so the transaction was undone (reversed) and the customer not charged; the terminal signed in again by itself and has new working keys."), &[S_NEW_KEYS_RETRY, S_NO_CHARGE_AGAIN])),
    (SecurityRecovery::MacStillFailing, d("security.mac_still_failing", C::Security, M::ReversalPending, R::ContactAcquirer, t("安全校验仍失败", "Security check still failing"), t("终端已自动重新签到并更新了密钥，但银行的应答仍没有通过安全校验，冲正无法完成；这不是网络问题。", "The terminal signed in again and renewed its keys, but the bank's answers still fail their security check, so the reversal cannot complete. This is not a network problem."), &[S_NO_CHARGE_AGAIN, S_SERVICE, S_ACQUIRER])),
    (SecurityRecovery::SignInFailed, d("security.sign_in_failed", C::Security, M::ReversalPending, R::RetryAfterRecovery, t("重新签到失败", "Signing in again failed"), t("银行的应答没有通过安全校验，终端自动重新签到以更新密钥，但签到没有成功（银行拒绝或没有应答）。", "The bank's answer failed its security check; the terminal tried to sign in again for new keys, but the bank refused or did not answer."), &[S_SIGN_IN, S_NO_CHARGE_AGAIN, S_ACQUIRER_IF_SIGN_IN_FAILS])),
    (SecurityRecovery::SignInKeyCheck, d("security.sign_in_key_check", C::Security, M::ReversalPending, R::ContactAcquirer, t("新密钥校验失败", "New keys failed their check"), t("终端自动重新签到，但银行下发的新密钥没有通过校验：终端的主密钥与银行的不一致。", "The terminal signed in again, but the new keys from the bank failed their check: the terminal's master key is not the bank's."), &[S_MASTER_KEY, S_NO_CHARGE_AGAIN])),
    (SecurityRecovery::SignInModuleFailed, d("security.module_failed", C::Security, M::ReversalPending, R::ContactAcquirer, t("安全模块故障", "Security module failed"), t("终端自动重新签到，但终端的安全模块没能装入新密钥。", "The terminal signed in again, but its security module could not load the new keys."), &[S_SERVICE, S_NO_CHARGE_AGAIN])),
];

/// Diagnoses how the terminal's recovery from a security failure ended; `money` is where the
/// transaction's money stands (not charged once its reversal is through, reversal pending
/// while it is not).
pub fn for_security(recovery: SecurityRecovery, money: MoneyState) -> Diagnosis {
    SECURITY
        .iter()
        .find(|(r, _)| *r == recovery)
        .map(|(_, d)| d)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
        .with_money(money)
}

// ---------------------------------------------------------------------------------------------
// Host link failures.

/// How the host link failed, as far as the cashier is concerned. The runtime maps
/// `smartpos_terminal::link::LinkError` onto this (this crate cannot depend on the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkFailure {
    /// TCP connect (or name resolution, or connect timeout) failed: nothing was sent.
    ConnectFailed,
    /// The TLS handshake failed: nothing was sent.
    TlsFailed,
    /// The server certificate does not match the pinned one: nothing was sent.
    PinMismatch,
    /// No answer within the timeout: the request may have reached the host.
    Timeout,
    /// The host closed the connection: the request may have reached the host.
    Closed,
    /// Read/write failed mid-exchange (reset, broken pipe, framing): the request may have
    /// reached the host.
    Io,
}

impl LinkFailure {
    /// Whether a request sent before this failure may have reached the host.
    pub fn request_may_have_reached_host(self) -> bool {
        matches!(
            self,
            LinkFailure::Timeout | LinkFailure::Closed | LinkFailure::Io
        )
    }
}

#[rustfmt::skip]
static LINK_FAILURES: &[(LinkFailure, Diagnosis)] = &[
    (LinkFailure::ConnectFailed, d("link.connect_failed", C::Network, M::NotCharged, R::RetryAfterRecovery, t("连不上银行", "Cannot connect to the bank"), t("终端连不上银行服务器，交易没有发出。", "The terminal cannot connect to the bank's server; nothing was sent."), &[S_CHECK_NETWORK, S_RETRY_LATER])),
    (LinkFailure::TlsFailed, d("link.tls_failed", C::Security, M::NotCharged, R::SafeToRetry, t("安全连接失败", "Secure connection failed"), t("与银行服务器的安全连接没有建立，交易没有发出。", "The secure connection to the bank's server could not be set up; nothing was sent."), &[S_DATE_TIME, S_SERVICE])),
    (LinkFailure::PinMismatch, d("link.pin_mismatch", C::Security, M::NotCharged, R::SafeToRetry, t("服务器身份不符", "Bank server not recognised"), t("连上的服务器不是预期的银行服务器，终端已中止，交易没有发出。", "The server is not the expected bank server; the terminal stopped and sent nothing."), &[S_STOP, S_SERVICE])),
    (LinkFailure::Timeout, d("link.timeout", C::Network, M::ReversalPending, R::RetryAfterRecovery, t("银行应答超时", "Bank did not answer in time"), t("银行没有及时应答。如果正在收款，终端会自动撤回这笔交易，银行确认前款项可能被暂时冻结。", "The bank did not answer in time. If a payment was being made, the terminal undoes it by itself; the money may be held until the bank confirms."), &[S_NO_CHARGE_AGAIN, S_TERMINAL_FINISHES, S_CHECK_PENDING])),
    (LinkFailure::Closed, d("link.closed", C::Network, M::ReversalPending, R::RetryAfterRecovery, t("银行断开了连接", "Bank closed the connection"), t("银行在应答前断开了连接。如果正在收款，终端会自动撤回这笔交易，银行确认前款项可能被暂时冻结。", "The bank hung up before answering. If a payment was being made, the terminal undoes it by itself; the money may be held until the bank confirms."), &[S_NO_CHARGE_AGAIN, S_TERMINAL_FINISHES, S_CHECK_PENDING])),
    (LinkFailure::Io, d("link.io", C::Network, M::ReversalPending, R::RetryAfterRecovery, t("网络中断", "Connection broke"), t("与银行的连接中途中断。如果正在收款，终端会自动撤回这笔交易，银行确认前款项可能被暂时冻结。", "The connection to the bank broke mid-way. If a payment was being made, the terminal undoes it by itself; the money may be held until the bank confirms."), &[S_NO_CHARGE_AGAIN, S_CHECK_NETWORK, S_CHECK_PENDING])),
];

/// Diagnoses a host link failure.
pub fn for_link_error(failure: LinkFailure) -> Diagnosis {
    LINK_FAILURES
        .iter()
        .find(|(f, _)| *f == failure)
        .map(|(_, d)| d)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Journal outcomes.

#[rustfmt::skip]
static OUTCOMES: &[Diagnosis] = &[
    d("txn.reversed", C::Network, M::NotCharged, R::SafeToRetry, t("交易未成功，未扣款", "Did not go through; no money moved"), t("这笔交易已被撤回（冲正），顾客没有被扣款。", "This transaction was undone (reversed); the customer was not charged."), &[S_NEW_SALE]),
    d("txn.reversal_resolved", C::Operator, M::NotCharged, R::SafeToRetry, t("冲正已由主管处理", "Reversal settled by the supervisor"), t("银行一直不接受这笔冲正；主管已与收单机构电话核实并结束了它，顾客没有被扣款。", "The bank kept refusing this reversal; the supervisor settled it with the acquirer by phone and ended it. The customer was not charged."), &[S_NEW_SALE]),
    d("txn.reversing", C::Network, M::ReversalPending, R::RetryAfterRecovery, t("正在撤回交易", "Being reversed"), t("结果不明确，终端正在撤回这笔交易；银行确认前顾客的款项可能被暂时冻结。", "The result was unclear, so the terminal is undoing the transaction; the customer's money may be held until the bank confirms."), &[S_NO_CHARGE_AGAIN, S_TERMINAL_FINISHES, S_CHECK_PENDING]),
    d("txn.in_flight", C::Network, M::UnknownResolving, R::RetryAfterRecovery, t("结果未知", "Result not known yet"), t("请求可能已到银行，但还没有收到结果。", "The request may have reached the bank, but no result has come back yet."), &[S_NO_CHARGE_AGAIN, S_CHECK_PENDING]),
    d("txn.refund_queued", C::Network, M::UnknownResolving, R::DoNotRetry, t("退款已登记，待发送", "Refund recorded, will be sent"), t("退款已保存在终端，联网后会自动发给银行；到账时间以发卡银行为准。", "The refund is saved on the terminal and sent to the bank automatically when online; when it reaches the card depends on the card's bank."), &[S_NO_REFUND_AGAIN, S_CHECK_PENDING]),
    d("txn.not_sent", C::Network, M::NotCharged, R::SafeToRetry, t("未能连上银行", "Could not reach the bank"), t("交易没有发出，顾客没有被扣款。", "The transaction never left the terminal; the customer was not charged."), &[S_CHECK_NETWORK, S_RETRY]),
    d("txn.declined_by_card", C::Card, M::NotCharged, R::DoNotRetry, t("卡片拒绝，交易已撤回", "Declined by the card; reversed"), t("银行批准后，卡片芯片拒绝了这笔交易；终端已撤回（冲正），顾客没有被扣款。", "The bank approved, but the card's chip declined; the terminal reversed the payment and the customer was not charged."), &[S_CARD_BANK, S_OTHER_PAYMENT]),
    d("txn.declined_by_card_reversing", C::Card, M::ReversalPending, R::RetryAfterRecovery, t("卡片拒绝，正在撤回", "Declined by the card; being reversed"), t("银行批准后，卡片芯片拒绝了这笔交易；终端正在撤回（冲正），银行确认前顾客的款项可能被暂时冻结。", "The bank approved, but the card's chip declined; the terminal is reversing the payment and the customer's money may be held until the bank confirms."), &[S_NO_CHARGE_AGAIN, S_TERMINAL_FINISHES, S_CHECK_PENDING]),
    d("txn.voided", C::Operator, M::NotCharged, R::DoNotRetry, t("已撤销", "Voided"), t("这笔交易已撤销，不会向顾客收款。", "This transaction was voided; the customer will not be charged for it."), &[S_NEW_SALE]),
];

fn outcome(code: &str) -> Diagnosis {
    OUTCOMES
        .iter()
        .find(|d| d.code == code)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

/// The diagnosis of a contact chip card that declined after the host approved (the approval
/// is reversed, or still being reversed).
pub fn declined_by_card(reversal_pending: bool) -> Diagnosis {
    outcome(if reversal_pending {
        "txn.declined_by_card_reversing"
    } else {
        "txn.declined_by_card"
    })
}

/// Diagnoses a journaled transaction for the cashier: `None` when approved (nothing to explain),
/// otherwise what happened to the money and what to do.
///
/// `reversal_pending` is `Outcome::Txn::reversal_pending`: a reversal for this record is stored
/// and not yet acknowledged by the host.
pub fn for_outcome(record: &TxnRecord, reversal_pending: bool) -> Option<Diagnosis> {
    #[allow(unreachable_patterns)] // TxnState is non_exhaustive.
    let d = match record.state {
        TxnState::Approved => return None,
        TxnState::Declined => match &record.response_code {
            Some(code) => for_response_code(code, record.kind),
            None => UNKNOWN_CODE.clone(),
        },
        TxnState::Reversed => outcome("txn.reversed"),
        TxnState::ReversalResolved => outcome("txn.reversal_resolved"),
        TxnState::Reversing => outcome("txn.reversing"),
        TxnState::Sending if reversal_pending => outcome("txn.reversing"),
        TxnState::Sending => outcome("txn.in_flight"),
        TxnState::Queued => outcome("txn.refund_queued"),
        TxnState::NotSent => outcome("txn.not_sent"),
        TxnState::Voided => outcome("txn.voided"),
        _ => outcome("txn.in_flight"),
    };
    Some(d)
}

// ---------------------------------------------------------------------------------------------
// Printer and card.

/// Why the receipt printer could not print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrinterStatus {
    /// No paper.
    OutOfPaper,
    /// The print head is too hot.
    Overheated,
    /// The paper cover is open.
    CoverOpen,
    /// The device has no printer (or it is not reachable).
    NoPrinter,
    /// The printer is busy with another job.
    Busy,
}

#[rustfmt::skip]
static PRINTER: &[(PrinterStatus, Diagnosis)] = &[
    (PrinterStatus::OutOfPaper, d("printer.out_of_paper", C::Hardware, M::Charged, R::SafeToRetry, t("打印机缺纸", "Printer out of paper"), t("小票没有打印出来；交易本身已经成功。", "The slip did not print; the payment itself succeeded."), &[t("装入新纸卷", "Load a new paper roll"), S_REPRINT])),
    (PrinterStatus::Overheated, d("printer.overheated", C::Hardware, M::Charged, R::RetryAfterRecovery, t("打印机过热", "Printer too hot"), t("打印机过热暂停；交易本身已经成功。", "The printer paused because it is too hot; the payment itself succeeded."), &[t("等几分钟让打印机冷却", "Wait a few minutes for the printer to cool"), S_REPRINT])),
    (PrinterStatus::CoverOpen, d("printer.cover_open", C::Hardware, M::Charged, R::SafeToRetry, t("打印机盖未合上", "Printer cover open"), t("打印机盖开着，小票没有打印；交易本身已经成功。", "The printer cover is open so the slip did not print; the payment itself succeeded."), &[t("合上打印机盖", "Close the printer cover"), S_REPRINT])),
    (PrinterStatus::NoPrinter, d("printer.none", C::Hardware, M::Charged, R::DoNotRetry, t("没有打印机", "No printer"), t("本机没有可用的打印机；交易本身已经成功。", "This device has no printer available; the payment itself succeeded."), &[t("向顾客出示交易记录或提供电子小票", "Show the customer the transaction list or offer an e-receipt")])),
    (PrinterStatus::Busy, d("printer.busy", C::Hardware, M::Charged, R::RetryAfterRecovery, t("打印机忙", "Printer busy"), t("打印机正在打印其他内容；交易本身已经成功。", "The printer is busy with another job; the payment itself succeeded."), &[t("稍等片刻", "Wait a moment"), S_REPRINT])),
];

/// Diagnoses a printer failure after a payment (the payment itself is not affected).
pub fn for_printer(status: PrinterStatus) -> Diagnosis {
    PRINTER
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, d)| d)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

/// Why the card could not be read or used (before anything was sent to the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CardError {
    /// The card was removed (or moved away) before reading finished.
    CardRemoved,
    /// No application on the card that this terminal accepts.
    NotSupported,
    /// The card (or its application) is blocked.
    CardBlocked,
    /// The card asks for another interface (e.g. insert instead of tap).
    TryAnotherInterface,
    /// The reader could not read the card.
    ReadFailed,
    /// The cardholder cancelled PIN entry (or no PIN pad was available).
    PinCancelled,
    /// A chip card was swiped while its chip was not tried: insert it.
    ChipCardSwiped,
    /// A keyed card number fails its check digit.
    BadCardNumber,
    /// A keyed expiry date is not a valid month.
    BadExpiry,
    /// The card was presented in a way this transaction does not allow.
    EntryNotAllowed,
    /// The card declined the transaction itself (AAC at its first GENERATE AC).
    DeclinedOffline,
    /// Card reading was cancelled, or no card was presented in time.
    Cancelled,
}

#[rustfmt::skip]
static CARD: &[(CardError, Diagnosis)] = &[
    (CardError::CardRemoved, d("card.removed", C::Card, M::NotCharged, R::SafeToRetry, t("卡片被移开", "Card removed too early"), t("读卡还没完成卡片就被移开了，交易没有完成。", "The card was taken away before reading finished; the payment did not complete."), &[t("请顾客重新插卡或挥卡，并保持到提示完成", "Present the card again and hold it until told to remove it")])),
    (CardError::NotSupported, d("card.not_supported", C::Card, M::NotCharged, R::DoNotRetry, t("不支持此卡", "Card not supported"), t("本终端不受理这种卡。", "This terminal does not accept this kind of card."), &[S_OTHER_PAYMENT])),
    (CardError::CardBlocked, d("card.blocked", C::Card, M::NotCharged, R::DoNotRetry, t("卡片已锁定", "Card blocked"), t("卡片芯片已被锁定，不能使用。", "The card's chip is blocked and cannot be used."), &[S_CARD_BANK, S_OTHER_PAYMENT])),
    (CardError::TryAnotherInterface, d("card.try_another_interface", C::Card, M::NotCharged, R::SafeToRetry, t("请换一种方式读卡", "Read the card another way"), t("这张卡需要换一种方式读取。", "This card must be read another way."), &[t("请改为插卡（芯片朝上插入）", "Insert the card into the chip slot instead")])),
    (CardError::PinCancelled, d("card.pin_cancelled", C::Card, M::NotCharged, R::SafeToRetry, t("未输入密码", "PIN not entered"), t("这张卡要求输入密码，但没有输入，交易没有发出。", "The card asks for a PIN and none was entered; nothing was sent."), &[S_PIN_AGAIN])),
    (CardError::ChipCardSwiped, d("card.chip_card_swiped", C::Operator, M::NotCharged, R::SafeToRetry, t("芯片卡请插卡", "Chip card: insert it"), t("这是芯片卡，不能刷磁条；交易没有发出。", "This is a chip card and must not be swiped; nothing was sent."), &[t("请顾客插卡（芯片朝上插入）或挥卡", "Ask the customer to insert the card (chip first) or tap it")])),
    (CardError::BadCardNumber, d("card.bad_number", C::Operator, M::NotCharged, R::SafeToRetry, t("卡号有误", "Card number is wrong"), t("输入的卡号校验位不对，可能输错了；交易没有发出。", "The card number's check digit is wrong, probably a typing error; nothing was sent."), &[t("核对卡号后重新输入", "Check the number on the card and type it again")])),
    (CardError::BadExpiry, d("card.bad_expiry", C::Operator, M::NotCharged, R::SafeToRetry, t("有效期有误", "Expiry date is wrong"), t("输入的有效期不是有效的年月（YYMM）；交易没有发出。", "The expiry typed is not a valid year and month (YYMM); nothing was sent."), &[t("按卡面上的有效期重新输入（年年月月）", "Type the expiry from the card again (YYMM)")])),
    (CardError::EntryNotAllowed, d("card.entry_not_allowed", C::Operator, M::NotCharged, R::SafeToRetry, t("不支持此读卡方式", "Card read the wrong way"), t("这笔交易不允许用这种方式读卡；交易没有发出。", "This transaction does not accept the card read this way; nothing was sent."), &[t("请顾客插卡或挥卡", "Ask the customer to insert or tap the card")])),
    (CardError::DeclinedOffline, d("card.declined_offline", C::Card, M::NotCharged, R::DoNotRetry, t("卡片拒绝交易", "Declined by the card"), t("卡片芯片自己拒绝了这笔交易，交易没有发给银行，顾客没有被扣款。", "The card's chip declined the payment itself; nothing was sent to the bank and the customer was not charged."), &[S_CARD_BANK, S_OTHER_PAYMENT])),
    (CardError::Cancelled, d("card.cancelled", C::Operator, M::NotCharged, R::SafeToRetry, t("已取消读卡", "Card reading cancelled"), t("读卡被取消或超时，交易没有发出，顾客没有被扣款。", "Card reading was cancelled or timed out; nothing was sent and the customer was not charged."), &[t("需要时重新发起收款", "Start the payment again when ready")])),
    (CardError::ReadFailed, d("card.read_failed", C::Hardware, M::NotCharged, R::SafeToRetry, t("读卡失败", "Card could not be read"), t("读卡器没能读出卡片。", "The reader could not read the card."), &[t("擦干净卡片后再试", "Wipe the card and try again"), S_OTHER_PAYMENT])),
];

/// A fault inside the terminal (journal, configuration): nothing more is known about money
/// than what the journal shows, so the cashier checks the last transaction before retrying.
pub fn software_fault() -> Diagnosis {
    SOFTWARE_FAULT.clone()
}

#[rustfmt::skip]
static SOFTWARE_FAULT: Diagnosis = d("terminal.software_fault", C::Software, M::UnknownResolving, R::RetryAfterRecovery, t("终端故障", "Terminal fault"), t("终端保存或配置出错；重启终端后会自动恢复未完成的交易。", "The terminal could not store or read its data; after a restart it recovers unfinished transactions by itself."), &[S_QUERY_LAST, S_SERVICE]);

/// What went wrong with the terminal's own storage (the journal), as far as the cashier and
/// support need to know. The runtime classifies its SQLite errors into these
/// (`smartpos_terminal::storage`); no SQLite wording reaches a diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageFault {
    /// The journal file is damaged (unreadable pages or values).
    Damaged,
    /// The data directory or the journal cannot be written (read-only, no permission).
    ReadOnly,
    /// The disk is full.
    Full,
    /// Any other storage failure (an I/O error of the device).
    Failed,
}

/// Diagnoses a storage failure of the journal.
pub fn for_storage(fault: StorageFault) -> Diagnosis {
    STORAGE
        .iter()
        .find(|(f, _)| *f == fault)
        .map(|(_, d)| d)
        .unwrap_or(&SOFTWARE_FAULT)
        .clone()
}

/// A journal record failed its authentication check (changed, deleted or reordered outside
/// the SDK): the terminal refuses money commands until support has looked at it.
pub fn journal_tampered() -> Diagnosis {
    JOURNAL_TAMPERED.clone()
}

const S_NO_MONEY_CMDS: Text = t(
    "在问题解决前不要在本终端收款或退款，改用其他终端或收款方式",
    "Take no payments or refunds on this terminal until this is solved; use another terminal or payment method",
);
const S_SUPPORT_BUNDLE: Text = t(
    "导出支持信息包，连同终端编号交给技术支持",
    "Export the support bundle and give it to support with the terminal ID",
);
const S_FREE_SPACE: Text = t(
    "删除设备上不需要的文件或应用，腾出存储空间后重启终端",
    "Free storage on the device (remove files or apps it does not need), then restart the terminal",
);
const S_CHECK_DIR: Text = t(
    "检查终端数据目录的权限和存储卡（不能是只读的），然后重启终端",
    "Check the terminal's data folder and storage (it must not be read-only), then restart the terminal",
);

#[rustfmt::skip]
static STORAGE: &[(StorageFault, Diagnosis)] = &[
    (StorageFault::Damaged, d("storage.journal_damaged", C::Software, M::UnknownResolving, R::DoNotRetry, t("交易流水文件损坏", "Transaction journal damaged"), t("终端的交易流水文件损坏，读不出来。终端停止收款和退款；已记录的交易和待冲正款项在文件中，不要删除它。", "The terminal's transaction journal file is damaged and cannot be read. The terminal stops taking payments and refunds; recorded payments and pending reversals are in that file, so do not delete it."), &[S_NO_MONEY_CMDS, S_SUPPORT_BUNDLE, S_SERVICE])),
    (StorageFault::ReadOnly, d("storage.read_only", C::Software, M::UnknownResolving, R::RetryAfterRecovery, t("数据目录不可写", "Data folder cannot be written"), t("终端无法写入它的数据目录（只读或没有权限）。没有写入记录的交易不会发出；正在进行的交易在恢复写入并重启后自动处理（需要时冲正）。", "The terminal cannot write to its data folder (read-only or no permission). Nothing is sent without being recorded first; a payment in progress is resolved (reversed if needed) once writing works again and the terminal restarts."), &[S_CHECK_DIR, S_QUERY_LAST, S_SERVICE])),
    (StorageFault::Full, d("storage.disk_full", C::Hardware, M::UnknownResolving, R::RetryAfterRecovery, t("存储空间已满", "Storage is full"), t("设备存储空间已满，终端无法记录交易。没有写入记录的交易不会发出；正在进行的交易在腾出空间并重启后自动处理（需要时冲正）。", "The device's storage is full and the terminal cannot record payments. Nothing is sent without being recorded first; a payment in progress is resolved (reversed if needed) once there is space and the terminal restarts."), &[S_FREE_SPACE, S_QUERY_LAST])),
    (StorageFault::Failed, d("storage.failed", C::Hardware, M::UnknownResolving, R::RetryAfterRecovery, t("存储读写失败", "Storage failure"), t("终端读写存储时出错。没有写入记录的交易不会发出；重启终端后，正在进行的交易会自动处理（需要时冲正）。", "The terminal could not read or write its storage. Nothing is sent without being recorded first; after a restart a payment in progress is resolved by itself (reversed if needed)."), &[S_QUERY_LAST, S_SERVICE])),
];

#[rustfmt::skip]
static JOURNAL_TAMPERED: Diagnosis = d("journal.tampered", C::Security, M::UnknownResolving, R::DoNotRetry, t("交易流水被改动", "Transaction journal was altered"), t("终端的交易流水中有记录在终端之外被修改、删除或调换，终端不再信任它来决定款项，停止收款、退款和撤销。查询和支持信息包仍可使用，其中写明了是哪条记录。", "A record in the terminal's transaction journal was changed, deleted or swapped outside the terminal. The terminal no longer trusts it to decide about money and stops payments, refunds and voids. Status and the support bundle still work and name the record."), &[S_NO_MONEY_CMDS, S_SUPPORT_BUNDLE, S_ACQUIRER]);

/// Diagnoses a card error (nothing was sent to the host).
pub fn for_card(err: CardError) -> Diagnosis {
    CARD.iter()
        .find(|(e, _)| *e == err)
        .map(|(_, d)| d)
        .unwrap_or(&GENERIC_REJECT)
        .clone()
}

/// Every diagnosis of this module (response codes, refund wording, rejections, engine errors,
/// link failures, outcomes, printer and card), for documentation, app-side tables and tests.
pub fn catalogue() -> Vec<Diagnosis> {
    let mut all: Vec<Diagnosis> = RESPONSE_CODES.iter().chain(REFUND_CODES).cloned().collect();
    all.push(UNKNOWN_CODE.clone());
    all.push(UNKNOWN_CODE_REVERSED.clone());
    all.push(GENERIC_REJECT.clone());
    all.extend(REJECTS.iter().map(|(_, d)| d.clone()));
    all.extend(OP_ERRORS.iter().cloned());
    all.extend(LINK_FAILURES.iter().map(|(_, d)| d.clone()));
    all.extend(OUTCOMES.iter().cloned());
    all.extend(PRINTER.iter().map(|(_, d)| d.clone()));
    all.extend(CARD.iter().map(|(_, d)| d.clone()));
    all.extend(SECURITY.iter().map(|(_, d)| d.clone()));
    all.extend(STORAGE.iter().map(|(_, d)| d.clone()));
    all.push(JOURNAL_TAMPERED.clone());
    all
}

/// Response codes with a dedicated entry (the rows of `smartpos_iso8583::RESPONSE_CODES` that
/// name a diagnosis; refund wording overrides some), in code order.
pub fn known_response_codes() -> impl Iterator<Item = &'static str> {
    RESPONSE_TABLE
        .iter()
        .filter(|r| r.diagnosis.is_some())
        .map(|r| std::str::from_utf8(&r.code.0).unwrap_or("??"))
}

/// Checks for tests of every crate that adds diagnoses (this one, `smartpos-operators`).
#[doc(hidden)]
pub mod tests_support {
    use super::Diagnosis;

    /// Checks one diagnosis: non-empty texts in both languages, at least one step, a dotted id.
    pub fn assert_complete(d: &Diagnosis) {
        let texts = std::iter::once(&d.title)
            .chain(std::iter::once(&d.explanation))
            .chain(d.next_steps.iter());
        for t in texts {
            assert!(!t.zh.trim().is_empty(), "{}: empty zh text", d.code);
            assert!(!t.en.trim().is_empty(), "{}: empty en text", d.code);
            assert!(
                t.zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{}: zh text has no Chinese: {}",
                d.code,
                t.zh
            );
            assert!(
                !t.en.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{}: en text has Chinese: {}",
                d.code,
                t.en
            );
            // Jargon stays in the code, not the words shown to the cashier.
            for word in ["MAC", "TLS", "ISO", "STAN", "TPDU"] {
                assert!(
                    !t.en.contains(word),
                    "{}: jargon {word} in {}",
                    d.code,
                    t.en
                );
            }
        }
        assert!(!d.next_steps.is_empty(), "{}: no next steps", d.code);
        assert!(d.code.contains('.'), "{}: id must be namespaced", d.code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_response_code_diagnosis_has_one_row_and_every_key_an_entry() {
        let keys = |t: &[Diagnosis]| -> BTreeSet<&str> { t.iter().map(|d| d.code).collect() };
        let general = keys(RESPONSE_CODES);
        let refund = keys(REFUND_CODES);
        assert_eq!(general.len(), RESPONSE_CODES.len(), "general keys unique");
        assert_eq!(refund.len(), REFUND_CODES.len(), "refund keys unique");
        let named = |col: fn(&ResponseRow) -> Option<&'static str>| -> Vec<&'static str> {
            RESPONSE_TABLE.iter().filter_map(col).collect()
        };
        let (rows, refund_rows) = (named(|r| r.diagnosis), named(|r| r.refund_diagnosis));
        // Each entry is named by exactly one row, and each row's key has an entry.
        assert_eq!(rows.iter().copied().collect::<BTreeSet<_>>(), general);
        assert_eq!(rows.len(), general.len());
        assert_eq!(refund_rows.iter().copied().collect::<BTreeSet<_>>(), refund);
        assert_eq!(refund_rows.len(), refund.len());
        // Every refund override refines a code the general table knows.
        for r in RESPONSE_TABLE {
            assert!(
                r.refund_diagnosis.is_none() || r.diagnosis.is_some(),
                "{}",
                r.code
            );
        }
    }

    #[test]
    fn a_row_approves_exactly_when_its_diagnosis_says_charged() {
        for r in RESPONSE_TABLE.iter().filter(|r| r.diagnosis.is_some()) {
            let code = r.code.to_string();
            let approves = r.class == ResponseClass::Approved;
            for kind in [TxnKind::Sale, TxnKind::PreAuth, TxnKind::Completion] {
                let d = for_response_code(&code, kind);
                assert_eq!(d.money == MoneyState::Charged, approves, "{code} {kind:?}");
                assert_eq!(d.host_code.as_deref(), Some(code.as_str()));
            }
            // An approved refund moved money back; a declined one moved nothing.
            let d = for_response_code(&code, TxnKind::Refund);
            assert_eq!(d.money == MoneyState::Refunded, approves, "{code} refund");
            if r.closes_reversal {
                // A code that ends a reversal is known: the engine never reverses on it.
                for kind in [TxnKind::Sale, TxnKind::Void, TxnKind::Refund] {
                    assert!(
                        !smartpos_txn::proto::reversed_as_possible_approval(kind, &code),
                        "{code} {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_engine_reverses_a_sale_exactly_on_the_codes_without_a_row_diagnosis() {
        for r in RESPONSE_TABLE {
            let code = r.code.to_string();
            assert_eq!(
                smartpos_txn::proto::reversed_as_possible_approval(TxnKind::Sale, &code),
                r.diagnosis.is_none() && r.class != ResponseClass::Approved,
                "{code}"
            );
            assert_eq!(
                is_known_response_code(&code),
                r.diagnosis.is_some(),
                "{code}"
            );
            let d = for_response_code(&code, TxnKind::Sale);
            let reversed = d.code == "host.unknown_code_reversed";
            assert_eq!(reversed, r.diagnosis.is_none(), "{code}: {}", d.code);
        }
    }

    #[test]
    fn table_keys_are_unique() {
        let rc: BTreeSet<_> = known_response_codes().collect();
        assert_eq!(rc.len(), known_response_codes().count());
        let refund: BTreeSet<_> = RESPONSE_TABLE
            .iter()
            .filter(|r| r.refund_diagnosis.is_some())
            .map(|r| r.code.to_string())
            .collect();
        assert_eq!(refund.len(), REFUND_CODES.len());
        // Every refund override refines a code the general table knows.
        assert!(refund.iter().all(|c| rc.contains(c.as_str())));
    }

    #[test]
    fn required_codes_are_covered() {
        let required = "00 01 02 03 04 05 06 07 09 12 13 14 15 19 20 21 22 25 30 31 33 34 35 36 \
            38 39 40 41 43 44 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 75 76 77 78 \
            79 90 91 92 93 94 95 96 97 98 99 A0";
        let known: BTreeSet<_> = known_response_codes().collect();
        for code in required.split_whitespace() {
            assert!(known.contains(code), "missing response code {code}");
            let d = for_response_code(code, TxnKind::Sale);
            assert_ne!(d.code, "host.unknown_code", "{code}");
            assert_eq!(d.host_code.as_deref(), Some(code));
        }
    }

    #[test]
    fn refund_wording_differs_where_it_matters() {
        let sale = for_response_code("51", TxnKind::Sale);
        let refund = for_response_code("51", TxnKind::Refund);
        assert_eq!(sale.code, "host.insufficient_funds");
        assert_eq!(refund.code, "host.refund_merchant_funds");
        assert!(refund.explanation.en.contains("settlement account"));
        assert!(refund.explanation.zh.contains("结算账户"));
        let cases = [
            ("25", "host.refund_original_not_found", Category::Account),
            ("13", "host.refund_over_remainder", Category::PlatformLimit),
            ("61", "host.refund_amount_limit", Category::PlatformLimit),
            ("65", "host.refund_frequency_limit", Category::PlatformLimit),
            (
                "57",
                "host.refund_not_permitted_card",
                Category::PlatformLimit,
            ),
            (
                "58",
                "host.refund_not_permitted_terminal",
                Category::PlatformLimit,
            ),
            ("62", "host.refund_card_restricted", Category::Account),
            ("12", "host.refund_invalid", Category::PlatformLimit),
            ("59", "host.refund_under_review", Category::Dispute),
        ];
        for (rc, id, cat) in cases {
            let d = for_response_code(rc, TxnKind::Refund);
            assert_eq!((d.code, d.category), (id, cat), "{rc}");
            assert_eq!(d.money, MoneyState::NotCharged);
        }
        // A void uses the general wording.
        assert_eq!(
            for_response_code("51", TxnKind::Void).code,
            "host.insufficient_funds"
        );
    }

    #[test]
    fn unknown_code_is_generic_and_shows_the_code() {
        // A sale answered with a code in no table is reversed by the engine (possible approval).
        let d = for_response_code("X7", TxnKind::Sale);
        assert_eq!(d.code, "host.unknown_code_reversed");
        assert_eq!(d.money, MoneyState::ReversalPending);
        assert_eq!(d.host_code.as_deref(), Some("X7"));
        // A balance inquiry moves no money: the engine records a decline.
        let d = for_response_code("X7", TxnKind::Balance);
        assert_eq!(d.code, "host.unknown_code");
        assert_eq!(d.category, Category::Account);
        assert_eq!(d.host_code.as_deref(), Some("X7"));
        assert!(d.render(Lang::En).contains("Response code: X7"));
        assert!(d.render(Lang::Zh).contains("应答码：X7"));
        // Hostile input: empty, long, non-ASCII: never panics, stays generic.
        for code in ["", "ＡＢ", "0000000000", "\u{0}\u{1}"] {
            let d = for_response_code(code, TxnKind::Refund);
            assert_eq!(d.code, "host.unknown_code");
            let shown = d.host_code.unwrap_or_default();
            assert!(
                shown.len() <= 8 && shown.chars().all(|c| c.is_ascii_graphic()),
                "{shown:?}"
            );
        }
        assert_eq!(
            for_response_code("a0", TxnKind::Sale).code,
            "host.mac_error"
        );
    }

    #[test]
    fn render_lists_steps_in_order() {
        let d = for_response_code("05", TxnKind::Sale);
        let en = d.render(Lang::En);
        let lines: Vec<&str> = en.lines().collect();
        assert_eq!(lines[0], "Declined by the card's bank");
        assert_eq!(lines[2], "Not charged: no money moved");
        assert_eq!(lines[3], "Response code: 05");
        assert!(lines[4].starts_with("1. "));
        assert!(lines[5].starts_with("2. "));
        assert_eq!(
            d.to_string(),
            "host.do_not_honour: Declined by the card's bank (response code 05)"
        );
    }

    fn record(kind: TxnKind, state: TxnState, rc: Option<&str>) -> TxnRecord {
        TxnRecord {
            reference: "000001000001".into(),
            kind,
            state,
            amount: 1000,
            currency: smartpos_txn::model::Currency::CNY,
            stan: 1,
            batch: 1,
            local_time: "120000".parse().unwrap(),
            local_date: "0101".parse().unwrap(),
            rrn: None,
            auth_code: None,
            response_code: rc.map(|c| c.parse().expect("a response code")),
            original_ref: None,
            idempotency_key: None,
            operator: Some("01".into()),
            pan_masked: None,
            entry_mode: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            card: None,
        }
    }

    #[test]
    fn outcomes() {
        let approved = record(TxnKind::Sale, TxnState::Approved, Some("00"));
        assert_eq!(for_outcome(&approved, false), None);
        let declined = record(TxnKind::Refund, TxnState::Declined, Some("51"));
        let d = for_outcome(&declined, false);
        assert_eq!(d.map(|d| d.code), Some("host.refund_merchant_funds"));
        let no_code = record(TxnKind::Sale, TxnState::Declined, None);
        assert_eq!(
            for_outcome(&no_code, false).map(|d| d.code),
            Some("host.unknown_code")
        );
        let cases = [
            (
                TxnKind::Sale,
                TxnState::Reversed,
                false,
                "txn.reversed",
                MoneyState::NotCharged,
            ),
            (
                TxnKind::Sale,
                TxnState::Reversing,
                true,
                "txn.reversing",
                MoneyState::ReversalPending,
            ),
            (
                TxnKind::Sale,
                TxnState::Sending,
                true,
                "txn.reversing",
                MoneyState::ReversalPending,
            ),
            (
                TxnKind::Refund,
                TxnState::Sending,
                false,
                "txn.in_flight",
                MoneyState::UnknownResolving,
            ),
            (
                TxnKind::Refund,
                TxnState::Queued,
                false,
                "txn.refund_queued",
                MoneyState::UnknownResolving,
            ),
            (
                TxnKind::Sale,
                TxnState::NotSent,
                false,
                "txn.not_sent",
                MoneyState::NotCharged,
            ),
            (
                TxnKind::Sale,
                TxnState::Voided,
                false,
                "txn.voided",
                MoneyState::NotCharged,
            ),
        ];
        for (kind, state, pending, id, money) in cases {
            let d = for_outcome(&record(kind, state, None), pending);
            assert_eq!(
                d.as_ref().map(|d| (d.code, d.money)),
                Some((id, money)),
                "{state}"
            );
        }
        let reversing = for_outcome(&record(TxnKind::Sale, TxnState::Reversing, None), true);
        let steps = reversing.map(|d| d.next_steps).unwrap_or(&[]);
        assert!(steps.contains(&S_NO_CHARGE_AGAIN));
        assert!(steps.contains(&S_TERMINAL_FINISHES));
        assert!(steps.contains(&S_CHECK_PENDING));
    }

    #[test]
    fn op_errors() {
        assert_eq!(
            for_op_error(&OpError::NotSignedIn).category,
            Category::Operator
        );
        let p = for_op_error(&OpError::PendingUndelivered { count: 2 });
        assert_eq!(
            (p.category, p.money),
            (Category::Network, MoneyState::ReversalPending)
        );
        let refused = for_op_error(&OpError::HostRefused { code: "A0".into() });
        assert_eq!(refused.code, "host.mac_error");
        assert_eq!(refused.money, MoneyState::NotCharged);
        let cases = [
            (OpError::Busy, "op.busy"),
            (OpError::NoResponse, "op.no_response"),
            (OpError::KeyCheck, "op.key_check"),
            (OpError::KeyBlock { reason: "x" }, "op.key_block"),
            (OpError::Proto("x".into()), "op.proto"),
            (OpError::NotSent, "op.not_sent"),
            (OpError::DukptExhausted, "op.dukpt_exhausted"),
            (OpError::Rejected { reason: "x".into() }, "reject.other"),
        ];
        for (e, id) in cases {
            assert_eq!(for_op_error(&e).code, id);
        }
    }

    #[test]
    fn every_reject_reason_has_its_own_entry() {
        let mut ids = BTreeSet::new();
        for r in RejectReason::ALL {
            let d = for_reject(r);
            assert_ne!(d.code, GENERIC_REJECT.code, "{r:?}");
            assert!(ids.insert(d.code));
            assert!(!r.to_string().is_empty());
        }
        assert_eq!(
            for_reject(RejectReason::OriginalNotInOpenBatch).code,
            "reject.original_settled"
        );
    }

    #[test]
    fn link_failures() {
        let all = [
            LinkFailure::ConnectFailed,
            LinkFailure::TlsFailed,
            LinkFailure::PinMismatch,
            LinkFailure::Timeout,
            LinkFailure::Closed,
            LinkFailure::Io,
        ];
        for f in all {
            let d = for_link_error(f);
            assert!(d.code.starts_with("link."));
            // In doubt exactly when the request may have reached the host.
            assert_eq!(
                d.money == MoneyState::ReversalPending,
                f.request_may_have_reached_host(),
                "{f:?}"
            );
        }
        assert_eq!(
            for_link_error(LinkFailure::PinMismatch).category,
            Category::Security
        );
    }

    #[test]
    fn printer_and_card() {
        for s in [
            PrinterStatus::OutOfPaper,
            PrinterStatus::Overheated,
            PrinterStatus::CoverOpen,
            PrinterStatus::NoPrinter,
            PrinterStatus::Busy,
        ] {
            let d = for_printer(s);
            assert_eq!(
                (d.category, d.money),
                (Category::Hardware, MoneyState::Charged)
            );
            assert!(d.explanation.en.contains("payment itself succeeded"));
        }
        for e in [
            CardError::CardRemoved,
            CardError::NotSupported,
            CardError::CardBlocked,
            CardError::TryAnotherInterface,
            CardError::ReadFailed,
            CardError::PinCancelled,
            CardError::ChipCardSwiped,
            CardError::BadCardNumber,
            CardError::BadExpiry,
            CardError::EntryNotAllowed,
            CardError::DeclinedOffline,
            CardError::Cancelled,
        ] {
            let d = for_card(e);
            // A chip card swiped, a number or expiry typed wrong, a read cancelled: the
            // cashier's to put right.
            assert!(matches!(
                d.category,
                Category::Card | Category::Hardware | Category::Operator
            ));
            assert_eq!(d.money, MoneyState::NotCharged);
            assert_ne!(d.code, GENERIC_REJECT.code);
        }
    }
}
