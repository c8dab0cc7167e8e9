//! What a receipt says, as data: [`ReceiptData`] for a transaction slip, [`SettlementReport`] for
//! the batch summary, and the label table ([`Label`]) in Chinese and English.
//!
//! The renderers ([`super::text`], [`super::escpos`]) only lay these values out; every decision
//! about *what* is printed (sign of the amount, masking, scheme and entry-mode names) lives here.
//!
//! Amount sign: voids, refunds and pre-auth cancellations give money back to the cardholder, so
//! their amount is printed negative (`RMB -12.34`) on both copies, as UnionPay slips do.

use smartpos_txn::model::{BatchTotals, LocalDateTime, TxnKind, TxnRecord, TxnState};
use smartpos_types::Pan;
use smartpos_types::secret::mask_digits;
use std::fmt;

/// Language of the printed labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Chinese with English in brackets, the layout of a UnionPay POS slip (`cup` dialect).
    Zh,
    /// English only.
    En,
}

impl Lang {
    /// The language's code in settings: `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The language of a settings code (`zh`, `en`); `None` for anything else.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Which of the two copies is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptCopy {
    /// Kept by the merchant; carries the signature area.
    Merchant,
    /// Handed to the cardholder.
    Customer,
}

/// How the card was read, from the first two digits of field 22 (POS entry mode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryMode {
    /// `01`: PAN keyed in.
    Keyed,
    /// `02` or `90`: magnetic stripe.
    Swipe,
    /// `05`: contact chip.
    Chip,
    /// `07`: contactless chip (qUICS / qVSDC / M/Chip).
    ContactlessChip,
    /// `91`: contactless magnetic-stripe mode.
    ContactlessMagstripe,
    /// `80`: magnetic stripe read after the chip failed (fallback).
    Fallback,
    /// Any other two-digit code, kept as received.
    Other(String),
}

impl EntryMode {
    /// Reads the entry mode from field 22 (`"051"`, `"0710"`, ...): its first two digits.
    /// `None` when the field does not start with two digits.
    pub fn from_field22(field22: &str) -> Option<EntryMode> {
        let head = field22.get(..2)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(match head {
            "01" => EntryMode::Keyed,
            "02" | "90" => EntryMode::Swipe,
            "05" => EntryMode::Chip,
            "07" => EntryMode::ContactlessChip,
            "91" => EntryMode::ContactlessMagstripe,
            "80" => EntryMode::Fallback,
            other => EntryMode::Other(other.to_owned()),
        })
    }

    /// The printed name in `lang`.
    pub fn name(&self, lang: Lang) -> String {
        let (zh, en) = match self {
            EntryMode::Keyed => ("手输(KEYED)", "KEYED"),
            EntryMode::Swipe => ("刷卡(SWIPE)", "SWIPE"),
            EntryMode::Chip => ("插卡(CHIP)", "CHIP"),
            EntryMode::ContactlessChip => ("挥卡(CONTACTLESS)", "CONTACTLESS"),
            EntryMode::ContactlessMagstripe => ("挥卡(CONTACTLESS MSD)", "CONTACTLESS MSD"),
            EntryMode::Fallback => ("降级(FALLBACK)", "FALLBACK"),
            EntryMode::Other(code) => return code.clone(),
        };
        pick(lang, zh, en).to_owned()
    }
}

/// Card scheme (brand) printed on the slip.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardScheme {
    /// China UnionPay (IIN 62).
    UnionPay,
    /// Visa (IIN 4).
    Visa,
    /// Mastercard (IIN 51-55, 2221-2720).
    Mastercard,
    /// American Express (IIN 34, 37).
    Amex,
    /// JCB (IIN 3528-3589).
    Jcb,
    /// Another scheme, by the name the caller gives.
    Other(String),
}

impl CardScheme {
    /// Guesses the scheme from the leading digits of a PAN (a masked PAN's first six suffice).
    ///
    /// Ranges: ISO/IEC 7812 issuer identification numbers as published by each scheme
    /// (UnionPay 62; Visa 4; Mastercard 51-55 and 2221-2720; Amex 34/37; JCB 3528-3589).
    pub fn from_pan_prefix(pan: &str) -> Option<CardScheme> {
        let digits: String = pan
            .chars()
            .filter(|c| !c.is_whitespace())
            .take_while(char::is_ascii_digit)
            .take(6)
            .collect();
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        if prefix(2) == Some(62) {
            return Some(CardScheme::UnionPay);
        }
        if prefix(1) == Some(4) {
            return Some(CardScheme::Visa);
        }
        if prefix(2).is_some_and(|p| (51..=55).contains(&p))
            || prefix(4).is_some_and(|p| (2221..=2720).contains(&p))
        {
            return Some(CardScheme::Mastercard);
        }
        if matches!(prefix(2), Some(34 | 37)) {
            return Some(CardScheme::Amex);
        }
        if prefix(4).is_some_and(|p| (3528..=3589).contains(&p)) {
            return Some(CardScheme::Jcb);
        }
        None
    }

    /// The printed name in `lang`.
    pub fn name(&self, lang: Lang) -> String {
        match self {
            CardScheme::UnionPay => pick(lang, "银联(UNIONPAY)", "UNIONPAY").to_owned(),
            CardScheme::Visa => "VISA".to_owned(),
            CardScheme::Mastercard => "MASTERCARD".to_owned(),
            CardScheme::Amex => "AMEX".to_owned(),
            CardScheme::Jcb => "JCB".to_owned(),
            CardScheme::Other(name) => name.clone(),
        }
    }
}

/// A PAN that is masked to first 6 / last 4 at most, whatever it was built from.
///
/// The constructor re-masks its input, so a full PAN handed in by mistake never reaches the
/// paper, a log or `Debug` output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MaskedPan(String);

impl MaskedPan {
    /// Masks `text` (a masked or clear PAN; spaces and dashes are dropped first): at most the
    /// first 6 and last 4 characters stay; strings shorter than 12 are masked entirely.
    pub fn new(text: &str) -> MaskedPan {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        MaskedPan(mask_digits(&compact))
    }

    /// Masks a [`Pan`].
    pub fn from_pan(pan: &Pan) -> MaskedPan {
        MaskedPan(pan.masked())
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedPan({})", self.0)
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which application cryptogram the card produced (EMV Book 3, 6.5.5: ARQC, TC or AAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptogramKind {
    /// Authorisation request cryptogram (online).
    Arqc,
    /// Transaction certificate (approved).
    Tc,
    /// Application authentication cryptogram (declined).
    Aac,
}

impl CryptogramKind {
    /// The printed name.
    pub fn name(self) -> &'static str {
        match self {
            CryptogramKind::Arqc => "ARQC",
            CryptogramKind::Tc => "TC",
            CryptogramKind::Aac => "AAC",
        }
    }
}

/// Chip data printed on EMV receipts (all hex text as read from the card/kernel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmvFields {
    /// Application identifier (tag 4F / 84).
    pub aid: String,
    /// Application label (tag 50) or preferred name.
    pub app_label: Option<String>,
    /// Terminal verification results (tag 95).
    pub tvr: String,
    /// Transaction status information (tag 9B).
    pub tsi: String,
    /// Kind of the cryptogram in `cryptogram`.
    pub cryptogram_kind: CryptogramKind,
    /// Application cryptogram (tag 9F26), hex.
    pub cryptogram: String,
    /// CVM results (tag 9F34), hex.
    pub cvm_result: Option<String>,
}

/// How the cardholder was verified; decides between a signature area and a "verified" line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cvm {
    /// Paper signature required: the merchant copy carries a signature area.
    Signature,
    /// Online or offline PIN verified.
    PinVerified,
    /// No CVM (small contactless amounts, 免签).
    NoCvm,
    /// Consumer device CVM (phone wallet).
    DeviceCvm,
}

/// The original transaction a void, refund, completion or pre-auth cancel refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRef {
    /// Journal reference `BBBBBBSSSSSS`.
    pub reference: String,
    /// Original retrieval reference number.
    pub rrn: Option<String>,
    /// Original local date `MMDD`.
    pub date: Option<String>,
    /// Original batch number.
    pub batch: u32,
    /// Original STAN (voucher number).
    pub stan: u32,
    /// Original authorisation code (pre-auth completion / cancel).
    pub auth_code: Option<String>,
}

impl OriginalRef {
    /// Builds the reference from a journal record.
    pub fn from_record(record: &TxnRecord) -> OriginalRef {
        OriginalRef {
            reference: record.reference.clone(),
            rrn: record.rrn.clone(),
            date: Some(record.local_date.to_string()),
            batch: record.batch,
            stan: record.stan,
            auth_code: record.auth_code.clone(),
        }
    }

    /// Builds a reference from its text form `BBBBBBSSSSSS` alone (when the original record is
    /// not at hand). `None` unless it is 12 digits.
    pub fn from_reference(reference: &str) -> Option<OriginalRef> {
        if reference.len() != 12 || !reference.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let batch = reference.get(..6)?.parse().ok()?;
        let stan = reference.get(6..)?.parse().ok()?;
        Some(OriginalRef {
            reference: reference.to_owned(),
            rrn: None,
            date: None,
            batch,
            stan,
            auth_code: None,
        })
    }
}

/// Who the merchant and terminal are (from the terminal configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantInfo {
    /// Merchant name as printed (often Chinese); empty: the slip prints no name line.
    pub name: String,
    /// Merchant identifier (field 42, 15 characters).
    pub merchant_id: String,
    /// Terminal identifier (field 41, 8 characters).
    pub terminal_id: String,
}

/// Date and time printed on the slip: a structured local time (with its offset from UTC when
/// known) or text as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptTime {
    /// Printed as `YYYY/MM/DD hh:mm:ss`.
    Local(LocalDateTime),
    /// Printed as `YYYY/MM/DD hh:mm:ss +08:00`: the local time and its offset from UTC.
    Zoned {
        /// Local date and time.
        time: LocalDateTime,
        /// Offset from UTC in minutes.
        utc_offset_minutes: i32,
    },
    /// Printed as given.
    Text(String),
}

impl ReceiptTime {
    /// The printed text.
    pub fn display(&self) -> String {
        let local = |t: &LocalDateTime| {
            format!(
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        };
        match self {
            ReceiptTime::Local(t) => local(t),
            ReceiptTime::Zoned {
                time,
                utc_offset_minutes,
            } => format!(
                "{} {}",
                local(time),
                smartpos_txn::model::utc_offset_text(*utc_offset_minutes)
            ),
            ReceiptTime::Text(s) => s.clone(),
        }
    }

    /// The local time of a journal record ([`TxnRecord::local_date_time`]: fields 13/12 as
    /// sent, the year and the offset from `created_at_ms`). Falls back to text
    /// `MM/DD hh:mm:ss` when the fields are not a date and time.
    pub fn of_record(record: &TxnRecord) -> ReceiptTime {
        let (date, time) = (&record.local_date, &record.local_time);
        match record.local_date_time() {
            Some((t, Some(utc_offset_minutes))) => ReceiptTime::Zoned {
                time: t,
                utc_offset_minutes,
            },
            Some((t, None)) => ReceiptTime::Local(t),
            None => ReceiptTime::Text(format!(
                "{}/{} {}:{}:{}",
                date.get(..2).unwrap_or(""),
                date.get(2..).unwrap_or(""),
                time.get(..2).unwrap_or(""),
                time.get(2..4).unwrap_or(""),
                time.get(4..).unwrap_or("")
            )),
        }
    }
}

/// Everything printed on one transaction slip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptData {
    /// Merchant name and ids.
    pub merchant: MerchantInfo,
    /// Operator number.
    pub operator: Option<String>,
    /// Transaction kind.
    pub kind: TxnKind,
    /// Transaction state; anything but approved/queued prints a status line.
    pub state: TxnState,
    /// Amount in minor units (always positive; the sign comes from `kind`).
    pub amount: u64,
    /// ISO 4217 currency, numeric (`"156"`) or alphabetic (`"CNY"`).
    pub currency: String,
    /// Batch number.
    pub batch: u32,
    /// STAN (trace number).
    pub stan: u32,
    /// Invoice (voucher) number; `None` means the STAN, as on UnionPay slips.
    pub invoice: Option<u32>,
    /// Retrieval reference number (field 37).
    pub rrn: Option<String>,
    /// Authorisation code (field 38).
    pub auth_code: Option<String>,
    /// Local date and time of the transaction.
    pub date_time: ReceiptTime,
    /// Masked PAN.
    pub pan: Option<MaskedPan>,
    /// How the card was read.
    pub entry_mode: Option<EntryMode>,
    /// Card scheme.
    pub card_scheme: Option<CardScheme>,
    /// Chip data, for chip and contactless chip transactions.
    pub emv: Option<EmvFields>,
    /// Cardholder verification.
    pub cvm: Cvm,
    /// The original transaction (void, refund, completion, pre-auth cancel).
    pub original: Option<OriginalRef>,
    /// Whether this is a reprint (marked 重打印凭证 / REPRINT).
    pub reprint: bool,
    /// Merchant or customer copy.
    pub copy: ReceiptCopy,
    /// Label language.
    pub lang: Lang,
    /// Fee in minor units (e.g. a refund fee), if any.
    pub fee: Option<u64>,
    /// Free text lines printed under the remarks label.
    pub notes: Vec<String>,
}

impl ReceiptData {
    /// Builds a slip from a journal record.
    ///
    /// The record does not carry chip data or the CVM: `emv` is `None` and `cvm` is
    /// [`Cvm::Signature`] (the safe default: a signature can always be collected); set them
    /// afterwards when the kernel outcome is at hand. The original comes from `original` when
    /// given, else from the record's `original_ref` text.
    pub fn from_record(
        record: &TxnRecord,
        original: Option<&TxnRecord>,
        merchant: &MerchantInfo,
        copy: ReceiptCopy,
        lang: Lang,
        reprint: bool,
    ) -> ReceiptData {
        let pan = record.pan_masked.as_deref().map(MaskedPan::new);
        let original = original.map(OriginalRef::from_record).or_else(|| {
            record
                .original_ref
                .as_deref()
                .and_then(OriginalRef::from_reference)
        });
        ReceiptData {
            merchant: merchant.clone(),
            operator: record.operator.clone(),
            kind: record.kind,
            state: record.state,
            amount: record.amount,
            currency: record.currency.to_string(),
            batch: record.batch,
            stan: record.stan,
            invoice: None,
            rrn: record.rrn.clone(),
            auth_code: record.auth_code.clone(),
            date_time: ReceiptTime::of_record(record),
            card_scheme: record
                .pan_masked
                .as_deref()
                .and_then(CardScheme::from_pan_prefix),
            pan,
            entry_mode: record
                .entry_mode
                .as_deref()
                .and_then(EntryMode::from_field22),
            emv: None,
            cvm: Cvm::Signature,
            original,
            reprint,
            copy,
            lang,
            fee: None,
            notes: Vec::new(),
        }
    }

    /// The invoice (voucher) number printed: `invoice` or else the STAN.
    pub fn voucher(&self) -> u32 {
        self.invoice.unwrap_or(self.stan)
    }

    /// The amount as printed, signed by kind (see the module note).
    pub fn amount_text(&self) -> String {
        format_amount(self.amount, &self.currency, amount_is_negative(self.kind))
    }
}

/// Whether `kind` gives money back to the cardholder, so its amount prints negative.
pub fn amount_is_negative(kind: TxnKind) -> bool {
    matches!(
        kind,
        TxnKind::Void | TxnKind::Refund | TxnKind::PreAuthCancel
    )
}

/// The batch summary printed after settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementReport {
    /// Merchant name and ids.
    pub merchant: MerchantInfo,
    /// Operator who settled.
    pub operator: Option<String>,
    /// Batch number settled.
    pub batch: u32,
    /// Local date and time of the settlement.
    pub date_time: ReceiptTime,
    /// Totals as the terminal counted them.
    pub totals: BatchTotals,
    /// Currency of the totals (ISO 4217 numeric or alphabetic).
    pub currency: String,
    /// Whether the host agreed with the totals (0510 response).
    pub balanced: bool,
    /// Label language.
    pub lang: Lang,
}

/// One currency's print code and exponent (ISO 4217 minor unit).
struct CurrencyInfo {
    numeric: &'static str,
    alpha: &'static str,
    /// What the slip prints before the amount; China prints `RMB` for CNY.
    print: &'static str,
    exponent: u32,
}

/// ISO 4217 (numeric code, alphabetic code, minor-unit exponent) for the currencies a smart-POS
/// in this market meets; others print their code as given with two decimals.
const CURRENCIES: &[CurrencyInfo] = &[
    CurrencyInfo {
        numeric: "156",
        alpha: "CNY",
        print: "RMB",
        exponent: 2,
    },
    CurrencyInfo {
        numeric: "840",
        alpha: "USD",
        print: "USD",
        exponent: 2,
    },
    CurrencyInfo {
        numeric: "978",
        alpha: "EUR",
        print: "EUR",
        exponent: 2,
    },
    CurrencyInfo {
        numeric: "392",
        alpha: "JPY",
        print: "JPY",
        exponent: 0,
    },
    CurrencyInfo {
        numeric: "344",
        alpha: "HKD",
        print: "HKD",
        exponent: 2,
    },
];

/// Formats `minor` units of `currency` as printed: `RMB 12.34`, `RMB -12.34`, `JPY 1234`.
///
/// `currency` is an ISO 4217 numeric or alphabetic code. Unknown codes print as given (when
/// they are 3 ASCII alphanumerics, `???` otherwise) with two decimals, the most common
/// exponent.
pub fn format_amount(minor: u64, currency: &str, negative: bool) -> String {
    let known = CURRENCIES
        .iter()
        .find(|c| c.numeric == currency || c.alpha.eq_ignore_ascii_case(currency));
    let (code, exponent) = match known {
        Some(c) => (c.print.to_owned(), c.exponent),
        None if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (currency.to_ascii_uppercase(), 2)
        }
        None => ("???".to_owned(), 2),
    };
    let sign = if negative && minor > 0 { "-" } else { "" };
    if exponent == 0 {
        return format!("{code} {sign}{minor}");
    }
    let unit = 10u64.pow(exponent);
    let width = usize::try_from(exponent).unwrap_or(2);
    format!(
        "{code} {sign}{}.{:0width$}",
        minor / unit,
        minor % unit,
        width = width
    )
}

/// Every text printed that is not a value: one line per label, Chinese (as printed on a
/// UnionPay slip: Chinese with the English in brackets) and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Label {
    /// POS签购单 / POS RECEIPT
    Title,
    /// 重打印凭证(REPRINT) / *** REPRINT ***
    Reprint,
    /// 商户存根(MERCHANT COPY) / MERCHANT COPY
    MerchantCopy,
    /// 持卡人存根(CARDHOLDER COPY) / CUSTOMER COPY
    CustomerCopy,
    /// 商户名称(MERCHANT NAME) / MERCHANT NAME
    MerchantName,
    /// 商户编号(MERCHANT NO.) / MERCHANT NO.
    MerchantNo,
    /// 终端编号(TERMINAL NO.) / TERMINAL NO.
    TerminalNo,
    /// 操作员号(OPERATOR NO.) / OPERATOR NO.
    OperatorNo,
    /// 卡号(CARD NO.) / CARD NO.
    CardNo,
    /// 卡组织(CARD TYPE) / CARD TYPE
    CardScheme,
    /// 输入方式(ENTRY MODE) / ENTRY MODE
    EntryMode,
    /// 交易类型(TRANS TYPE) / TRANS TYPE
    TransType,
    /// 批次号(BATCH NO.) / BATCH NO.
    BatchNo,
    /// 凭证号(VOUCHER NO.) / VOUCHER NO.
    VoucherNo,
    /// 流水号(TRACE NO.) / TRACE NO.
    TraceNo,
    /// 授权码(AUTH NO.) / AUTH NO.
    AuthCode,
    /// 参考号(REF NO.) / REF NO.
    RefNo,
    /// 日期/时间(DATE/TIME) / DATE/TIME
    DateTime,
    /// 金额(AMOUNT) / AMOUNT
    Amount,
    /// 余额(BALANCE) / BALANCE
    Balance,
    /// 手续费(FEE) / FEE
    Fee,
    /// 原凭证号(ORIG VOUCHER) / ORIG VOUCHER NO.
    OrigVoucher,
    /// 原批次号(ORIG BATCH) / ORIG BATCH NO.
    OrigBatch,
    /// 原参考号(ORIG REF NO.) / ORIG REF NO.
    OrigRefNo,
    /// 原交易日期(ORIG DATE) / ORIG DATE
    OrigDate,
    /// 原授权码(ORIG AUTH NO.) / ORIG AUTH NO.
    OrigAuthCode,
    /// 备注(REFERENCE) / REFERENCE
    Remarks,
    /// AID / AID
    Aid,
    /// 应用标签(APP LABEL) / APP LABEL
    AppLabel,
    /// TVR / TVR
    Tvr,
    /// TSI / TSI
    Tsi,
    /// CVMR / CVMR
    Cvmr,
    /// 持卡人签名(SIGNATURE) / CARDHOLDER SIGNATURE
    Signature,
    /// 本人确认以上交易，同意将其记入本卡账户 / I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES
    Acknowledge,
    /// 密码验证(PIN VERIFIED) / PIN VERIFIED
    PinVerified,
    /// 免签(NO SIGNATURE REQUIRED) / NO SIGNATURE REQUIRED
    NoSignature,
    /// 设备验证(VERIFIED ON DEVICE) / VERIFIED ON DEVICE
    DeviceVerified,
    /// 交易失败(DECLINED) / DECLINED
    Declined,
    /// 交易未完成(NOT COMPLETED) / NOT COMPLETED
    NotCompleted,
    /// 已撤销(VOIDED) / VOIDED
    Voided,
    /// 消费(SALE) / SALE
    KindSale,
    /// 撤销(VOID) / VOID
    KindVoid,
    /// 退货(REFUND) / REFUND
    KindRefund,
    /// 预授权(AUTH) / PRE-AUTH
    KindPreAuth,
    /// 预授权完成(AUTH COMPLETE) / AUTH COMPLETION
    KindCompletion,
    /// 预授权撤销(AUTH CANCEL) / AUTH CANCEL
    KindPreAuthCancel,
    /// 余额查询(BALANCE INQUIRY) / BALANCE INQUIRY
    KindBalance,
    /// 结算总计单 / SETTLEMENT
    SettleTitle,
    /// 借记笔数(DEBIT COUNT) / DEBIT COUNT
    DebitCount,
    /// 借记金额(DEBIT AMOUNT) / DEBIT AMOUNT
    DebitAmount,
    /// 贷记笔数(CREDIT COUNT) / CREDIT COUNT
    CreditCount,
    /// 贷记金额(CREDIT AMOUNT) / CREDIT AMOUNT
    CreditAmount,
    /// 净额(NET AMOUNT) / NET AMOUNT
    NetAmount,
    /// 对账平(BALANCED) / BALANCED
    Balanced,
    /// 对账不平(NOT BALANCED) / NOT BALANCED
    NotBalanced,
}

impl Label {
    /// `(zh, en)` texts. Chinese labels follow the usual UnionPay POS slip wording.
    pub fn texts(self) -> (&'static str, &'static str) {
        match self {
            Label::Title => ("POS签购单", "POS RECEIPT"),
            Label::Reprint => ("重打印凭证(REPRINT)", "*** REPRINT ***"),
            Label::MerchantCopy => ("商户存根(MERCHANT COPY)", "MERCHANT COPY"),
            Label::CustomerCopy => ("持卡人存根(CARDHOLDER COPY)", "CUSTOMER COPY"),
            Label::MerchantName => ("商户名称(MERCHANT NAME)", "MERCHANT NAME"),
            Label::MerchantNo => ("商户编号(MERCHANT NO.)", "MERCHANT NO."),
            Label::TerminalNo => ("终端编号(TERMINAL NO.)", "TERMINAL NO."),
            Label::OperatorNo => ("操作员号(OPERATOR NO.)", "OPERATOR NO."),
            Label::CardNo => ("卡号(CARD NO.)", "CARD NO."),
            Label::CardScheme => ("卡组织(CARD TYPE)", "CARD TYPE"),
            Label::EntryMode => ("输入方式(ENTRY MODE)", "ENTRY MODE"),
            Label::TransType => ("交易类型(TRANS TYPE)", "TRANS TYPE"),
            Label::BatchNo => ("批次号(BATCH NO.)", "BATCH NO."),
            Label::VoucherNo => ("凭证号(VOUCHER NO.)", "VOUCHER NO."),
            Label::TraceNo => ("流水号(TRACE NO.)", "TRACE NO."),
            Label::AuthCode => ("授权码(AUTH NO.)", "AUTH NO."),
            Label::RefNo => ("参考号(REF NO.)", "REF NO."),
            Label::DateTime => ("日期/时间(DATE/TIME)", "DATE/TIME"),
            Label::Amount => ("金额(AMOUNT)", "AMOUNT"),
            Label::Balance => ("余额(BALANCE)", "BALANCE"),
            Label::Fee => ("手续费(FEE)", "FEE"),
            Label::OrigVoucher => ("原凭证号(ORIG VOUCHER)", "ORIG VOUCHER NO."),
            Label::OrigBatch => ("原批次号(ORIG BATCH)", "ORIG BATCH NO."),
            Label::OrigRefNo => ("原参考号(ORIG REF NO.)", "ORIG REF NO."),
            Label::OrigDate => ("原交易日期(ORIG DATE)", "ORIG DATE"),
            Label::OrigAuthCode => ("原授权码(ORIG AUTH NO.)", "ORIG AUTH NO."),
            Label::Remarks => ("备注(REFERENCE)", "REFERENCE"),
            Label::Aid => ("AID", "AID"),
            Label::AppLabel => ("应用标签(APP LABEL)", "APP LABEL"),
            Label::Tvr => ("TVR", "TVR"),
            Label::Tsi => ("TSI", "TSI"),
            Label::Cvmr => ("CVMR", "CVMR"),
            Label::Signature => ("持卡人签名(SIGNATURE)", "CARDHOLDER SIGNATURE"),
            Label::Acknowledge => (
                "本人确认以上交易，同意将其记入本卡账户",
                "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES",
            ),
            Label::PinVerified => ("密码验证(PIN VERIFIED)", "PIN VERIFIED"),
            Label::NoSignature => ("免签(NO SIGNATURE REQUIRED)", "NO SIGNATURE REQUIRED"),
            Label::DeviceVerified => ("设备验证(VERIFIED ON DEVICE)", "VERIFIED ON DEVICE"),
            Label::Declined => ("交易失败(DECLINED)", "DECLINED"),
            Label::NotCompleted => ("交易未完成(NOT COMPLETED)", "NOT COMPLETED"),
            Label::Voided => ("已撤销(VOIDED)", "VOIDED"),
            Label::KindSale => ("消费(SALE)", "SALE"),
            Label::KindVoid => ("撤销(VOID)", "VOID"),
            Label::KindRefund => ("退货(REFUND)", "REFUND"),
            Label::KindPreAuth => ("预授权(AUTH)", "PRE-AUTH"),
            Label::KindCompletion => ("预授权完成(AUTH COMPLETE)", "AUTH COMPLETION"),
            Label::KindPreAuthCancel => ("预授权撤销(AUTH CANCEL)", "AUTH CANCEL"),
            Label::KindBalance => ("余额查询(BALANCE INQUIRY)", "BALANCE INQUIRY"),
            Label::SettleTitle => ("结算总计单", "SETTLEMENT"),
            Label::DebitCount => ("借记笔数(DEBIT COUNT)", "DEBIT COUNT"),
            Label::DebitAmount => ("借记金额(DEBIT AMOUNT)", "DEBIT AMOUNT"),
            Label::CreditCount => ("贷记笔数(CREDIT COUNT)", "CREDIT COUNT"),
            Label::CreditAmount => ("贷记金额(CREDIT AMOUNT)", "CREDIT AMOUNT"),
            Label::NetAmount => ("净额(NET AMOUNT)", "NET AMOUNT"),
            Label::Balanced => ("对账平(BALANCED)", "BALANCED"),
            Label::NotBalanced => ("对账不平(NOT BALANCED)", "NOT BALANCED"),
        }
    }

    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (zh, en) = self.texts();
        pick(lang, zh, en)
    }

    /// The label naming a transaction kind.
    pub fn of_kind(kind: TxnKind) -> Label {
        match kind {
            TxnKind::Sale => Label::KindSale,
            TxnKind::Void => Label::KindVoid,
            TxnKind::Refund => Label::KindRefund,
            TxnKind::PreAuth => Label::KindPreAuth,
            TxnKind::Completion => Label::KindCompletion,
            TxnKind::PreAuthCancel => Label::KindPreAuthCancel,
            TxnKind::Balance => Label::KindBalance,
        }
    }
}

fn pick<'a>(lang: Lang, zh: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TxnRecord {
        TxnRecord {
            reference: "000002000045".into(),
            kind: TxnKind::Void,
            state: TxnState::Approved,
            amount: 1234,
            currency: smartpos_types::Currency::CNY,
            stan: 45,
            batch: 2,
            local_time: "123456".parse().unwrap(),
            local_date: "0102".parse().unwrap(),
            rrn: Some("600012345678".into()),
            auth_code: Some("A1B2C3".into()),
            response_code: Some("00".parse().unwrap()),
            original_ref: Some("000002000044".into()),
            idempotency_key: None,
            operator: Some("01".into()),
            pan_masked: Some("6222021234567890123".into()),
            entry_mode: Some("071".parse().unwrap()),
            // 2026-12-31 20:00:00 UTC: local date 01-02 is next year (UTC+8 straddles).
            created_at_ms: 1_798_747_200_000,
            updated_at_ms: 1_798_747_200_000,
            card: None,
        }
    }

    #[test]
    fn entry_modes_from_field_22() {
        assert_eq!(EntryMode::from_field22("011"), Some(EntryMode::Keyed));
        assert_eq!(EntryMode::from_field22("021"), Some(EntryMode::Swipe));
        assert_eq!(EntryMode::from_field22("902"), Some(EntryMode::Swipe));
        assert_eq!(EntryMode::from_field22("051"), Some(EntryMode::Chip));
        assert_eq!(
            EntryMode::from_field22("0710"),
            Some(EntryMode::ContactlessChip)
        );
        assert_eq!(
            EntryMode::from_field22("911"),
            Some(EntryMode::ContactlessMagstripe)
        );
        assert_eq!(EntryMode::from_field22("801"), Some(EntryMode::Fallback));
        assert_eq!(
            EntryMode::from_field22("121"),
            Some(EntryMode::Other("12".into()))
        );
        assert_eq!(EntryMode::from_field22("5"), None);
        assert_eq!(EntryMode::from_field22("A1"), None);
        assert_eq!(EntryMode::from_field22("é1"), None);
    }

    #[test]
    fn schemes_from_prefix() {
        let cases = [
            ("6222021234567890123", Some(CardScheme::UnionPay)),
            ("476173******0010", Some(CardScheme::Visa)),
            ("510000******0000", Some(CardScheme::Mastercard)),
            ("550000******0000", Some(CardScheme::Mastercard)),
            ("222100******0000", Some(CardScheme::Mastercard)),
            ("272099******0000", Some(CardScheme::Mastercard)),
            ("272100******0000", None),
            ("222000******0000", None),
            ("340000*****0000", Some(CardScheme::Amex)),
            ("370000*****0000", Some(CardScheme::Amex)),
            ("352800******0000", Some(CardScheme::Jcb)),
            ("358999******0000", Some(CardScheme::Jcb)),
            ("359000******0000", None),
            ("", None),
            ("6", None),
            ("****", None),
        ];
        for (pan, want) in cases {
            assert_eq!(CardScheme::from_pan_prefix(pan), want, "{pan}");
        }
    }

    #[test]
    fn masked_pan_never_keeps_more_than_6_and_4() {
        assert_eq!(
            MaskedPan::new("6222021234567890123").as_str(),
            "622202*********0123"
        );
        assert_eq!(
            MaskedPan::new("6222 0212 3456 7890").as_str(),
            "622202******7890"
        );
        assert_eq!(
            MaskedPan::new("622202******7890").as_str(),
            "622202******7890"
        );
        assert_eq!(MaskedPan::new("12345678901").as_str(), "***********");
        let pan = Pan::new("4761739001010010").unwrap();
        assert_eq!(MaskedPan::from_pan(&pan).as_str(), "476173******0010");
        assert_eq!(
            format!("{:?}", MaskedPan::new("4761739001010010")),
            "MaskedPan(476173******0010)"
        );
    }

    #[test]
    fn amounts_by_currency() {
        assert_eq!(format_amount(1234, "156", false), "RMB 12.34");
        assert_eq!(format_amount(1234, "CNY", true), "RMB -12.34");
        assert_eq!(format_amount(5, "840", false), "USD 0.05");
        assert_eq!(format_amount(100_000, "978", false), "EUR 1000.00");
        assert_eq!(format_amount(1234, "392", false), "JPY 1234");
        assert_eq!(format_amount(1234, "344", true), "HKD -12.34");
        assert_eq!(format_amount(0, "156", true), "RMB 0.00");
        assert_eq!(format_amount(1234, "764", false), "764 12.34");
        assert_eq!(format_amount(1234, "\u{1b}x", false), "??? 12.34");
        assert_eq!(
            format_amount(u64::MAX, "156", true),
            "RMB -184467440737095516.15"
        );
    }

    #[test]
    fn from_record_takes_every_field() {
        let merchant = MerchantInfo {
            name: "测试商户".into(),
            merchant_id: "898440358120001".into(),
            terminal_id: "12345678".into(),
        };
        let r = record();
        let d =
            ReceiptData::from_record(&r, None, &merchant, ReceiptCopy::Customer, Lang::Zh, true);
        assert_eq!(d.kind, TxnKind::Void);
        assert_eq!(
            d.pan.as_ref().map(MaskedPan::as_str),
            Some("622202*********0123")
        );
        assert_eq!(d.card_scheme, Some(CardScheme::UnionPay));
        assert_eq!(d.entry_mode, Some(EntryMode::ContactlessChip));
        assert_eq!(d.voucher(), 45);
        assert!(d.reprint);
        assert_eq!(d.date_time.display(), "2027/01/02 12:34:56");
        assert_eq!(d.amount_text(), "RMB -12.34");
        let orig = d.original.expect("original from reference text");
        assert_eq!((orig.batch, orig.stan, orig.rrn), (2, 44, None));

        let mut sale = record();
        sale.kind = TxnKind::Sale;
        sale.reference = "000002000044".into();
        sale.stan = 44;
        sale.rrn = Some("600012345600".into());
        let d = ReceiptData::from_record(
            &r,
            Some(&sale),
            &merchant,
            ReceiptCopy::Merchant,
            Lang::En,
            false,
        );
        let orig = d.original.expect("original record");
        assert_eq!(orig.rrn.as_deref(), Some("600012345600"));
        assert_eq!(orig.date.as_deref(), Some("0102"));
        assert_eq!(orig.auth_code.as_deref(), Some("A1B2C3"));
    }

    #[test]
    fn record_time_carries_the_year_and_the_offset() {
        // Renamed from `record_time_falls_back_to_text`: its malformed-date half ("13x1" /
        // "99" shown as text) moved to the journal's SQL edge, which now refuses such a row
        // (smartpos-terminal `a_malformed_local_date_or_time_column_is_refused_naming_the_column`).
        let mut r = record();
        r.local_date = "1231".parse().unwrap();
        r.local_time = "235959".parse().unwrap();
        r.created_at_ms = 1_767_225_600_000; // 2026-01-01 00:00:00 UTC, local still 12-31
        assert_eq!(
            ReceiptTime::of_record(&r).display(),
            "2025/12/31 23:59:59 +00:00"
        );
        // The offset the record was sent with: 2026-01-01 07:59:59 in UTC+8.
        r.local_date = "0101".parse().unwrap();
        r.local_time = "075959".parse().unwrap();
        assert_eq!(
            ReceiptTime::of_record(&r).display(),
            "2026/01/01 07:59:59 +08:00"
        );
    }

    #[test]
    fn original_reference_text_must_be_12_digits() {
        assert!(OriginalRef::from_reference("00000200004").is_none());
        assert!(OriginalRef::from_reference("00000200004X").is_none());
        assert!(OriginalRef::from_reference("二00000200004").is_none());
        let o = OriginalRef::from_reference("000123999999").expect("valid");
        assert_eq!((o.batch, o.stan), (123, 999_999));
    }

    #[test]
    fn every_label_has_both_texts() {
        for kind in [
            TxnKind::Sale,
            TxnKind::Void,
            TxnKind::Refund,
            TxnKind::PreAuth,
            TxnKind::Completion,
            TxnKind::PreAuthCancel,
            TxnKind::Balance,
        ] {
            let (zh, en) = Label::of_kind(kind).texts();
            assert!(!zh.is_empty() && !en.is_empty());
            assert!(en.is_ascii(), "English labels print on CP437 printers");
        }
        assert_eq!(Label::Signature.text(Lang::Zh), "持卡人签名(SIGNATURE)");
        assert_eq!(Label::Signature.text(Lang::En), "CARDHOLDER SIGNATURE");
    }
}
