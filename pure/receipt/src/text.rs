//! Lays a receipt out as styled text lines for a 32- or 48-column printer.
//!
//! Columns are counted the way a thermal printer prints them: in Chinese mode an ideograph is
//! twice as wide as an ASCII character (24 dots against 12 with the standard fonts), so
//! [`char_width`] counts CJK and full-width forms as two columns. A double-width line counts
//! double. No line ever exceeds the width: long values wrap on character boundaries (at a space
//! when an ASCII word would be cut), and `label: value` pairs put the value on the right when it
//! fits, otherwise on the following line(s).
//!
//! Values are cleaned before layout: control characters (which would be printer commands)
//! become spaces and private-use characters (which no printer font has and GB18030 does not
//! always map) become `?`.

use super::model::{Cvm, Label, ReceiptCopy, ReceiptData, SettlementReport, format_amount};
use smartpos_txn::model::{TxnKind, TxnState};

/// Printable columns of the paper (standard font A, 12 dots per column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// 58 mm paper, 384 dots: 32 columns (Sunmi built-in printers, most handheld POS).
    W32,
    /// 80 mm paper, 576 dots: 48 columns (counter printers).
    W48,
}

impl Width {
    /// Number of single-width columns.
    pub fn columns(self) -> usize {
        match self {
            Width::W32 => 32,
            Width::W48 => 48,
        }
    }

    /// The width with `columns` columns (32 or 48); `None` for any other number.
    pub fn from_columns(columns: usize) -> Option<Width> {
        match columns {
            32 => Some(Width::W32),
            48 => Some(Width::W48),
            _ => None,
        }
    }
}

/// Horizontal placement of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Align {
    /// Flush left.
    #[default]
    Left,
    /// Centred.
    Center,
    /// Flush right.
    Right,
}

/// How a line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Style {
    /// Emphasised (bold).
    pub bold: bool,
    /// Characters twice as tall (does not change the column count).
    pub double_height: bool,
    /// Characters twice as wide: the line holds half as many columns.
    pub double_width: bool,
    /// Placement on the paper.
    pub align: Align,
}

const PLAIN: Style = Style {
    bold: false,
    double_height: false,
    double_width: false,
    align: Align::Left,
};
const BOLD: Style = Style {
    bold: true,
    ..PLAIN
};
const BOLD_CENTER: Style = Style {
    bold: true,
    align: Align::Center,
    ..PLAIN
};
const CENTER: Style = Style {
    align: Align::Center,
    ..PLAIN
};
const TITLE: Style = Style {
    bold: true,
    double_height: true,
    double_width: true,
    align: Align::Center,
};
const BIG: Style = Style {
    bold: true,
    double_height: true,
    double_width: true,
    align: Align::Left,
};

/// One printed line: its text (without alignment padding) and style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The characters printed; the renderer never puts control characters here.
    pub text: String,
    /// How the line is printed.
    pub style: Style,
}

impl Line {
    /// Columns the line takes on paper: its display width, doubled for double-width lines.
    pub fn columns(&self) -> usize {
        str_width(&self.text) * if self.style.double_width { 2 } else { 1 }
    }
}

/// Columns a character takes: 2 for East Asian wide and full-width characters, 1 otherwise.
///
/// Ranges (Unicode blocks, East Asian Width W/F per UAX #11): Hangul Jamo 1100-115F;
/// CJK radicals, Kangxi, ideographic description 2E80-2FFF; CJK symbols and punctuation
/// 3000-303F; Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK strokes,
/// enclosed CJK, CJK compatibility 3040-33FF; CJK Ext A 3400-4DBF; CJK Unified Ideographs
/// 4E00-9FFF; Yi A000-A4CF; Hangul Jamo Ext A A960-A97F; Hangul syllables AC00-D7A3; CJK
/// compatibility ideographs F900-FAFF; vertical forms FE10-FE19; CJK compatibility forms and
/// small form variants FE30-FE6F; full-width forms FF00-FF60 and FFE0-FFE6; emoji and
/// pictographs 1F300-1F64F, 1F900-1F9FF; CJK Ext B and beyond 20000-3FFFD. Everything else
/// counts 1 (combining marks too: over-counting is safe, under-counting would overflow).
pub fn char_width(c: char) -> usize {
    let wide = matches!(u32::from(c),
        0x1100..=0x115F
        | 0x2E80..=0x2FFF
        | 0x3000..=0x303F
        | 0x3040..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE10..=0xFE19
        | 0xFE30..=0xFE6F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

/// Columns a string takes (sum of [`char_width`]).
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Makes text safe to print: control characters become spaces, private-use characters `?`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if matches!(u32::from(c), 0xE000..=0xF8FF | 0xF0000..=0x10FFFF) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Splits `s` into lines of at most `max` columns, never inside a character. An ASCII word
/// that would be cut moves to the next line when the current line has a space to break at.
/// Continuation lines lose their leading spaces; every line loses its trailing spaces.
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for c in s.chars() {
        let w = char_width(c);
        if cur_w + w > max && !cur.is_empty() {
            let mut carry = String::new();
            if w == 1
                && c != ' '
                && !cur.ends_with(' ')
                && let Some(pos) = cur.rfind(' ')
            {
                let tail = cur.get(pos + 1..).unwrap_or("");
                if pos > 0 && tail.chars().all(|t| char_width(t) == 1) {
                    carry = tail.to_owned();
                    cur.truncate(pos);
                }
            }
            out.push(cur.trim_end().to_owned());
            cur = carry;
            cur_w = str_width(&cur);
        }
        if c == ' ' && cur.is_empty() && !out.is_empty() {
            continue;
        }
        cur.push(c);
        cur_w += w;
    }
    let last = cur.trim_end();
    if !last.is_empty() || out.is_empty() {
        out.push(last.to_owned());
    }
    out
}

/// Accumulates lines for one width.
struct Layout {
    cols: usize,
    lines: Vec<Line>,
}

impl Layout {
    fn new(width: Width) -> Self {
        Layout {
            cols: width.columns(),
            lines: Vec::new(),
        }
    }

    fn room(&self, style: Style) -> usize {
        if style.double_width {
            self.cols / 2
        } else {
            self.cols
        }
    }

    /// Wrapped text in one style.
    fn text(&mut self, s: &str, style: Style) {
        let room = self.room(style);
        for part in wrap(&sanitize(s), room) {
            self.lines.push(Line { text: part, style });
        }
    }

    fn blank(&mut self) {
        self.lines.push(Line {
            text: String::new(),
            style: PLAIN,
        });
    }

    fn rule(&mut self) {
        self.lines.push(Line {
            text: "-".repeat(self.cols),
            style: PLAIN,
        });
    }

    fn pair(&mut self, label: &str, value: &str) {
        self.pair_styled(label, value, PLAIN);
    }

    /// `label:` and a value: on one line with the value flush right when both fit, otherwise
    /// the label (wrapped) and then the value, flush right when it fits a line, else wrapped.
    fn pair_styled(&mut self, label: &str, value: &str, value_style: Style) {
        let label = format!("{}:", sanitize(label).trim());
        let value = sanitize(value).trim().to_owned();
        let (lw, vw) = (str_width(&label), str_width(&value));
        if !value_style.double_width && lw + 1 + vw <= self.cols {
            let pad = self.cols - lw - vw;
            self.lines.push(Line {
                text: format!("{label}{}{value}", " ".repeat(pad)),
                style: Style {
                    align: Align::Left,
                    ..value_style
                },
            });
            return;
        }
        self.text(&label, PLAIN);
        let room = self.room(value_style);
        if vw <= room {
            self.lines.push(Line {
                text: value,
                style: Style {
                    align: Align::Right,
                    ..value_style
                },
            });
        } else {
            self.text(
                &value,
                Style {
                    align: Align::Left,
                    ..value_style
                },
            );
        }
    }
}

fn status_label(state: TxnState) -> Option<Label> {
    match state {
        TxnState::Approved | TxnState::Queued => None,
        TxnState::Declined => Some(Label::Declined),
        TxnState::Voided => Some(Label::Voided),
        TxnState::Sending
        | TxnState::Reversing
        | TxnState::Reversed
        | TxnState::NotSent
        | TxnState::ReversalResolved => Some(Label::NotCompleted),
    }
}

/// `MMDD` as `MM/DD`; anything else as given.
fn month_day(date: &str) -> String {
    match (date.get(..2), date.get(2..)) {
        (Some(m), Some(d)) if date.len() == 4 && date.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{m}/{d}")
        }
        _ => date.to_owned(),
    }
}

/// Lays out a transaction slip, in the order of a UnionPay POS slip: title, copy, merchant and
/// terminal, card, transaction, original transaction, amount, remarks (chip data, notes),
/// cardholder verification and, on the merchant copy, the acknowledgement.
pub fn render_text(d: &ReceiptData, width: Width) -> Vec<Line> {
    let lang = d.lang;
    let t = |l: Label| l.text(lang);
    let mut o = Layout::new(width);

    o.text(t(Label::Title), TITLE);
    if d.reprint {
        o.text(t(Label::Reprint), BOLD_CENTER);
    }
    let copy = match d.copy {
        ReceiptCopy::Merchant => Label::MerchantCopy,
        ReceiptCopy::Customer => Label::CustomerCopy,
    };
    o.text(t(copy), CENTER);
    if let Some(status) = status_label(d.state) {
        o.text(t(status), BOLD_CENTER);
    }
    o.rule();

    // No name configured: the slip prints none rather than repeating the merchant id.
    if !d.merchant.name.trim().is_empty() {
        o.pair(t(Label::MerchantName), &d.merchant.name);
    }
    o.pair(t(Label::MerchantNo), &d.merchant.merchant_id);
    o.pair(t(Label::TerminalNo), &d.merchant.terminal_id);
    if let Some(op) = &d.operator {
        o.pair(t(Label::OperatorNo), op);
    }
    o.rule();

    if let Some(pan) = &d.pan {
        o.pair_styled(t(Label::CardNo), pan.as_str(), BOLD);
    }
    if let Some(scheme) = &d.card_scheme {
        o.pair(t(Label::CardScheme), &scheme.name(lang));
    }
    if let Some(mode) = &d.entry_mode {
        o.pair(t(Label::EntryMode), &mode.name(lang));
    }
    o.pair_styled(t(Label::TransType), t(Label::of_kind(d.kind)), BOLD);
    o.pair(t(Label::BatchNo), &format!("{:06}", d.batch));
    o.pair(t(Label::VoucherNo), &format!("{:06}", d.voucher()));
    if d.voucher() != d.stan {
        o.pair(t(Label::TraceNo), &format!("{:06}", d.stan));
    }
    if let Some(auth) = &d.auth_code {
        o.pair(t(Label::AuthCode), auth);
    }
    if let Some(rrn) = &d.rrn {
        o.pair(t(Label::RefNo), rrn);
    }
    o.pair(t(Label::DateTime), &d.date_time.display());

    if let Some(orig) = &d.original {
        o.pair(t(Label::OrigVoucher), &format!("{:06}", orig.stan));
        o.pair(t(Label::OrigBatch), &format!("{:06}", orig.batch));
        if let Some(rrn) = &orig.rrn {
            o.pair(t(Label::OrigRefNo), rrn);
        }
        if let Some(date) = &orig.date {
            o.pair(t(Label::OrigDate), &month_day(date));
        }
        if let Some(auth) = &orig.auth_code {
            o.pair(t(Label::OrigAuthCode), auth);
        }
    }
    o.rule();

    let amount_label = if d.kind == TxnKind::Balance {
        Label::Balance
    } else {
        Label::Amount
    };
    o.pair_styled(t(amount_label), &d.amount_text(), BIG);
    if let Some(fee) = d.fee {
        o.pair(t(Label::Fee), &format_amount(fee, &d.currency, false));
    }

    if d.emv.is_some() || !d.notes.is_empty() {
        o.rule();
        o.text(&format!("{}:", t(Label::Remarks)), PLAIN);
        if let Some(emv) = &d.emv {
            o.pair(t(Label::Aid), &emv.aid);
            if let Some(app) = &emv.app_label {
                o.pair(t(Label::AppLabel), app);
            }
            o.pair(t(Label::Tvr), &emv.tvr);
            o.pair(t(Label::Tsi), &emv.tsi);
            o.pair(emv.cryptogram_kind.name(), &emv.cryptogram);
            if let Some(cvmr) = &emv.cvm_result {
                o.pair(t(Label::Cvmr), cvmr);
            }
        }
        for note in &d.notes {
            o.text(note, PLAIN);
        }
    }
    o.rule();

    let moves_money = d.kind != TxnKind::Balance;
    match (d.cvm, d.copy) {
        (Cvm::Signature, ReceiptCopy::Merchant) if moves_money => {
            o.text(&format!("{}:", t(Label::Signature)), PLAIN);
            o.blank();
            o.blank();
            o.blank();
            o.rule();
        }
        (Cvm::Signature, _) => {}
        (Cvm::PinVerified, _) => o.text(t(Label::PinVerified), PLAIN),
        (Cvm::NoCvm, _) => o.text(t(Label::NoSignature), PLAIN),
        (Cvm::DeviceCvm, _) => o.text(t(Label::DeviceVerified), PLAIN),
    }
    if d.copy == ReceiptCopy::Merchant && moves_money {
        o.text(t(Label::Acknowledge), PLAIN);
    }
    o.lines
}

/// Lays out the settlement (batch total) report.
pub fn render_settlement(r: &SettlementReport, width: Width) -> Vec<Line> {
    let t = |l: Label| l.text(r.lang);
    let mut o = Layout::new(width);
    o.text(t(Label::SettleTitle), TITLE);
    o.rule();
    if !r.merchant.name.trim().is_empty() {
        o.pair(t(Label::MerchantName), &r.merchant.name);
    }
    o.pair(t(Label::MerchantNo), &r.merchant.merchant_id);
    o.pair(t(Label::TerminalNo), &r.merchant.terminal_id);
    if let Some(op) = &r.operator {
        o.pair(t(Label::OperatorNo), op);
    }
    o.pair(t(Label::BatchNo), &format!("{:06}", r.batch));
    o.pair(t(Label::DateTime), &r.date_time.display());
    o.rule();
    let totals = &r.totals;
    o.pair(t(Label::DebitCount), &totals.debit_count.to_string());
    o.pair(
        t(Label::DebitAmount),
        &format_amount(totals.debit_amount, &r.currency, false),
    );
    o.pair(t(Label::CreditCount), &totals.credit_count.to_string());
    o.pair(
        t(Label::CreditAmount),
        &format_amount(totals.credit_amount, &r.currency, false),
    );
    let negative = totals.credit_amount > totals.debit_amount;
    let net = totals.debit_amount.abs_diff(totals.credit_amount);
    o.pair_styled(
        t(Label::NetAmount),
        &format_amount(net, &r.currency, negative),
        BOLD,
    );
    o.rule();
    let verdict = if r.balanced {
        Label::Balanced
    } else {
        Label::NotBalanced
    };
    o.text(t(verdict), BOLD_CENTER);
    o.lines
}

/// A plain-text preview: each line padded for its alignment within `width` (half the columns
/// for double-width lines, whose characters the printer doubles), trailing spaces removed,
/// one `\n` after each line.
pub fn to_plain(lines: &[Line], width: Width) -> String {
    let mut out = String::new();
    for line in lines {
        let room = if line.style.double_width {
            width.columns() / 2
        } else {
            width.columns()
        };
        let free = room.saturating_sub(str_width(&line.text));
        let pad = match line.style.align {
            Align::Left => 0,
            Align::Center => free / 2,
            Align::Right => free,
        };
        let padded = format!("{}{}", " ".repeat(pad), line.text);
        out.push_str(padded.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{
        CardScheme, CryptogramKind, EmvFields, EntryMode, Lang, MaskedPan, MerchantInfo,
        OriginalRef, ReceiptTime,
    };
    use proptest::prelude::*;
    use smartpos_txn::model::BatchTotals;
    use smartpos_txn::model::LocalDateTime;

    /// A chip sale, merchant copy, Chinese: the base every test varies.
    pub(crate) fn zh_sale() -> ReceiptData {
        ReceiptData {
            merchant: MerchantInfo {
                name: "深圳市福田区示例便利店".into(),
                merchant_id: "898440358120001".into(),
                terminal_id: "12345678".into(),
            },
            operator: Some("01".into()),
            kind: TxnKind::Sale,
            state: TxnState::Approved,
            amount: 1234,
            currency: "156".into(),
            batch: 1,
            stan: 123,
            invoice: None,
            rrn: Some("600501123456".into()),
            auth_code: Some("123456".into()),
            date_time: ReceiptTime::Local(LocalDateTime {
                year: 2026,
                month: 5,
                day: 1,
                hour: 12,
                minute: 34,
                second: 56,
            }),
            pan: Some(MaskedPan::new("6222021234567890123")),
            entry_mode: Some(EntryMode::Chip),
            card_scheme: Some(CardScheme::UnionPay),
            emv: Some(EmvFields {
                aid: "A000000333010101".into(),
                app_label: Some("PBOC DEBIT".into()),
                tvr: "0080048000".into(),
                tsi: "E800".into(),
                cryptogram_kind: CryptogramKind::Arqc,
                cryptogram: "1A2B3C4D5E6F7081".into(),
                cvm_result: Some("420300".into()),
            }),
            cvm: Cvm::Signature,
            original: None,
            reprint: false,
            copy: ReceiptCopy::Merchant,
            lang: Lang::Zh,
            fee: None,
            notes: Vec::new(),
        }
    }

    /// A contactless refund, customer copy, English.
    pub(crate) fn en_refund() -> ReceiptData {
        ReceiptData {
            merchant: MerchantInfo {
                name: "Harbour View Coffee & Bakery, Central".into(),
                merchant_id: "898440358120002".into(),
                terminal_id: "87654321".into(),
            },
            operator: Some("02".into()),
            kind: TxnKind::Refund,
            state: TxnState::Queued,
            amount: 500,
            currency: "840".into(),
            batch: 7,
            stan: 88,
            invoice: Some(1088),
            rrn: None,
            auth_code: None,
            date_time: ReceiptTime::Text("2026/05/02 09:15:00".into()),
            pan: Some(MaskedPan::new("4761739001010010")),
            entry_mode: Some(EntryMode::ContactlessChip),
            card_scheme: Some(CardScheme::Visa),
            emv: None,
            cvm: Cvm::NoCvm,
            original: Some(OriginalRef {
                reference: "000007000061".into(),
                rrn: Some("600430987654".into()),
                date: Some("0430".into()),
                batch: 7,
                stan: 61,
                auth_code: Some("654321".into()),
            }),
            reprint: false,
            copy: ReceiptCopy::Customer,
            lang: Lang::En,
            fee: Some(50),
            notes: vec!["Refund of order 2026-0430-17; allow 3-10 working days.".into()],
        }
    }

    fn plain(d: &ReceiptData, w: Width) -> String {
        to_plain(&render_text(d, w), w)
    }

    fn assert_fits(lines: &[Line], w: Width) {
        for line in lines {
            assert!(
                line.columns() <= w.columns(),
                "line {:?} takes {} columns, more than {}",
                line.text,
                line.columns(),
                w.columns()
            );
            assert!(!line.text.chars().any(char::is_control), "{:?}", line.text);
        }
    }

    #[test]
    fn widths_of_scripts() {
        for (c, w) in [
            ('a', 1),
            ('é', 1),
            ('中', 2),
            ('，', 2),
            ('。', 2),
            ('ア', 2),
            ('あ', 2),
            ('한', 2),
            ('Ａ', 2),
            ('￥', 2),
            ('\u{3400}', 2),
            ('\u{20000}', 2),
            ('\u{FF61}', 1), // half-width katakana punctuation
        ] {
            assert_eq!(char_width(c), w, "{c:?}");
        }
        assert_eq!(str_width("RMB 12.34"), 9);
        assert_eq!(str_width("商户名称(MERCHANT NAME)"), 23);
    }

    #[test]
    fn wrap_keeps_characters_whole_and_breaks_words_at_spaces() {
        assert_eq!(wrap("中文中文中", 5), vec!["中文", "中文", "中"]);
        assert_eq!(
            wrap("I ACKNOWLEDGE SATISFACTORY RECEIPT", 16),
            vec!["I ACKNOWLEDGE", "SATISFACTORY", "RECEIPT"]
        );
        assert_eq!(wrap("ABCDEFGHIJ", 4), vec!["ABCD", "EFGH", "IJ"]);
        assert_eq!(wrap("", 4), vec![""]);
        assert_eq!(wrap("ab中", 3), vec!["ab", "中"]);
    }

    #[test]
    fn pairs_right_align_or_wrap_the_value() {
        let mut o = Layout::new(Width::W32);
        o.pair("终端编号(TERMINAL NO.)", "12345678");
        o.pair("商户编号(MERCHANT NO.)", "898440358120001");
        let texts: Vec<_> = o
            .lines
            .iter()
            .map(|l| (l.text.as_str(), l.style.align))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("终端编号(TERMINAL NO.): 12345678", Align::Left),
                ("商户编号(MERCHANT NO.):", Align::Left),
                ("898440358120001", Align::Right),
            ]
        );
        assert_eq!(o.lines[0].columns(), 32);
    }

    #[test]
    fn sale_merchant_copy_has_signature_and_acknowledgement() {
        let text = plain(&zh_sale(), Width::W32);
        assert!(text.contains("消费(SALE)"), "{text}");
        assert!(text.contains("商户存根(MERCHANT COPY)"));
        assert!(text.contains("持卡人签名(SIGNATURE):"));
        assert!(text.contains("本人确认以上交易"));
        assert!(text.contains("RMB 12.34"));
        assert!(!text.contains("-12.34"));
        assert!(!text.contains("重打印"));
        assert!(!text.contains("原凭证号"));
    }

    #[test]
    fn chip_receipt_shows_aid_tvr_tsi_and_cryptogram() {
        let text = plain(&zh_sale(), Width::W48);
        for want in [
            "AID:",
            "A000000333010101",
            "TVR:",
            "0080048000",
            "TSI:",
            "E800",
            "ARQC:",
            "1A2B3C4D5E6F7081",
            "CVMR:",
            "PBOC DEBIT",
            "插卡(CHIP)",
            "银联(UNIONPAY)",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        let mut d = zh_sale();
        d.emv = None;
        let text = plain(&d, Width::W48);
        assert!(!text.contains("TVR") && !text.contains("备注"));
    }

    #[test]
    fn void_and_refund_show_original_and_negative_amount() {
        let mut d = zh_sale();
        d.kind = TxnKind::Void;
        d.stan = 124;
        d.original = Some(OriginalRef {
            reference: "000001000123".into(),
            rrn: Some("600501123456".into()),
            date: Some("0501".into()),
            batch: 1,
            stan: 123,
            auth_code: None,
        });
        let text = plain(&d, Width::W32);
        assert!(text.contains("撤销(VOID)"), "{text}");
        assert!(text.contains("原凭证号(ORIG VOUCHER):   000123"), "{text}");
        assert!(text.contains("原参考号(ORIG REF NO.):"));
        assert!(text.contains("原交易日期(ORIG DATE):     05/01"), "{text}");
        assert!(text.contains("RMB -12.34"));

        let text = plain(&en_refund(), Width::W48);
        assert!(text.contains("REFUND"), "{text}");
        assert!(text.contains("ORIG VOUCHER NO."));
        assert!(text.contains("000061"));
        assert!(text.contains("600430987654"));
        assert!(text.contains("USD -5.00"));
        assert!(text.contains("FEE:"));
        assert!(text.contains("USD 0.50"));
        assert!(text.contains("VOUCHER NO.") && text.contains("001088"));
        assert!(text.contains("TRACE NO.") && text.contains("000088"));
    }

    #[test]
    fn preauth_completion_cancel_and_balance_labels() {
        let mut d = zh_sale();
        d.kind = TxnKind::PreAuth;
        assert!(plain(&d, Width::W32).contains("预授权(AUTH)"));
        d.kind = TxnKind::Completion;
        d.original = Some(OriginalRef {
            reference: "000001000100".into(),
            rrn: None,
            date: None,
            batch: 1,
            stan: 100,
            auth_code: Some("AB12CD".into()),
        });
        let text = plain(&d, Width::W32);
        assert!(text.contains("预授权完成(AUTH COMPLETE)"), "{text}");
        assert!(text.contains("原授权码(ORIG AUTH NO.):"));
        assert!(text.contains("AB12CD"));
        assert!(text.contains("RMB 12.34") && !text.contains("-12.34"));
        d.kind = TxnKind::PreAuthCancel;
        let text = plain(&d, Width::W32);
        assert!(text.contains("预授权撤销(AUTH CANCEL)"));
        assert!(text.contains("RMB -12.34"));
        d.kind = TxnKind::Balance;
        d.original = None;
        let text = plain(&d, Width::W32);
        assert!(text.contains("余额查询(BALANCE INQUIRY)"));
        assert!(text.contains("余额(BALANCE):"));
        assert!(!text.contains("持卡人签名"), "no signature for an inquiry");
        assert!(!text.contains("本人确认"));
    }

    #[test]
    fn without_a_merchant_name_no_name_line_is_printed() {
        let mut d = en_refund();
        d.merchant.name = String::new();
        let text = plain(&d, Width::W32);
        assert!(!text.contains("MERCHANT NAME"), "{text}");
        assert!(text.contains(&d.merchant.merchant_id), "{text}");
    }

    #[test]
    fn reprint_is_marked() {
        let mut d = zh_sale();
        d.reprint = true;
        let lines = render_text(&d, Width::W32);
        assert_eq!(lines[1].text, "重打印凭证(REPRINT)");
        assert!(lines[1].style.bold);
        let mut d = en_refund();
        d.reprint = true;
        assert!(plain(&d, Width::W32).contains("*** REPRINT ***"));
    }

    #[test]
    fn verification_lines_follow_the_cvm() {
        let mut d = zh_sale();
        d.cvm = Cvm::PinVerified;
        let text = plain(&d, Width::W32);
        assert!(text.contains("密码验证(PIN VERIFIED)"));
        assert!(!text.contains("持卡人签名"));
        d.cvm = Cvm::NoCvm;
        let text = plain(&d, Width::W32);
        assert!(text.contains("免签(NO SIGNATURE REQUIRED)"));
        assert!(!text.contains("持卡人签名"));
        d.cvm = Cvm::DeviceCvm;
        assert!(plain(&d, Width::W32).contains("设备验证"));
        d.cvm = Cvm::Signature;
        d.copy = ReceiptCopy::Customer;
        let text = plain(&d, Width::W32);
        assert!(text.contains("持卡人存根(CARDHOLDER COPY)"));
        assert!(
            !text.contains("持卡人签名"),
            "the customer copy has no signature area"
        );
        assert!(!text.contains("本人确认"));
        let text = plain(&en_refund(), Width::W32);
        assert!(text.contains("NO SIGNATURE REQUIRED"));
        assert!(text.contains("CUSTOMER COPY"));
    }

    #[test]
    fn status_line_for_unfinished_or_declined() {
        let mut d = zh_sale();
        d.state = TxnState::Declined;
        assert!(plain(&d, Width::W32).contains("交易失败(DECLINED)"));
        d.state = TxnState::Reversed;
        assert!(plain(&d, Width::W32).contains("交易未完成"));
        d.state = TxnState::Voided;
        assert!(plain(&d, Width::W32).contains("已撤销(VOIDED)"));
    }

    #[test]
    fn full_pan_never_prints_beyond_first_six_last_four() {
        let mut d = zh_sale();
        d.pan = Some(MaskedPan::new("6222021234567890123"));
        for w in [Width::W32, Width::W48] {
            let text = plain(&d, w);
            assert!(text.contains("622202*********0123"), "{text}");
            assert!(!text.contains("6222021"));
            assert!(!text.contains("1234567890"));
            assert!(!format!("{d:?}").contains("6222021234"));
        }
    }

    #[test]
    fn hostile_values_cannot_inject_printer_commands() {
        let mut d = zh_sale();
        d.merchant.name = "A\u{1b}@\u{1d}V\u{0}B\nC\u{e5e5}".into();
        let lines = render_text(&d, Width::W32);
        assert_fits(&lines, Width::W32);
        assert!(
            lines.iter().any(|l| l.text.ends_with("A @ V B C?")),
            "{lines:?}"
        );
    }

    #[test]
    fn settlement_report_totals_and_verdict() {
        let r = SettlementReport {
            merchant: zh_sale().merchant,
            operator: Some("01".into()),
            batch: 12,
            date_time: ReceiptTime::Text("2026/05/01 23:00:00".into()),
            totals: BatchTotals {
                debit_count: 3,
                debit_amount: 3600,
                credit_count: 1,
                credit_amount: 500,
            },
            currency: "156".into(),
            balanced: true,
            lang: Lang::Zh,
        };
        let lines = render_settlement(&r, Width::W32);
        assert_fits(&lines, Width::W32);
        let text = to_plain(&lines, Width::W32);
        assert!(text.contains("结算总计单"));
        assert!(text.contains("批次号(BATCH NO.):        000012"), "{text}");
        assert!(text.contains("借记笔数(DEBIT COUNT):         3"), "{text}");
        assert!(text.contains("RMB 36.00"));
        assert!(text.contains("RMB 5.00"));
        assert!(text.contains("净额(NET AMOUNT):      RMB 31.00"), "{text}");
        assert!(text.contains("对账平(BALANCED)"));
        let mut r = r;
        r.balanced = false;
        r.lang = Lang::En;
        r.totals.credit_amount = 4000;
        let text = to_plain(&render_settlement(&r, Width::W48), Width::W48);
        assert!(text.contains("NOT BALANCED"));
        assert!(text.contains("RMB -4.00"), "{text}");
    }

    #[test]
    fn plain_preview_pads_by_alignment() {
        let lines = vec![
            Line {
                text: "AB".into(),
                style: CENTER,
            },
            Line {
                text: "AB".into(),
                style: Style {
                    align: Align::Right,
                    ..PLAIN
                },
            },
            Line {
                text: "AB".into(),
                style: TITLE,
            },
        ];
        let text = to_plain(&lines, Width::W32);
        let rows: Vec<_> = text.lines().collect();
        assert_eq!(rows[0], format!("{}AB", " ".repeat(15)));
        assert_eq!(rows[1], format!("{}AB", " ".repeat(30)));
        assert_eq!(rows[2], format!("{}AB", " ".repeat(7)));
    }

    pub(crate) fn any_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range(' ', '~'),
                3 => proptest::char::range('\u{4e00}', '\u{9fff}'),
                1 => proptest::char::range('\u{ff01}', '\u{ff60}'),
                1 => proptest::char::range('\u{3000}', '\u{303f}'),
                1 => proptest::char::range('\u{0}', '\u{1f}'),
                1 => Just(' '),
                1 => any::<char>(),
            ],
            0..70,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    const KINDS: [TxnKind; 7] = [
        TxnKind::Sale,
        TxnKind::Void,
        TxnKind::Refund,
        TxnKind::PreAuth,
        TxnKind::Completion,
        TxnKind::PreAuthCancel,
        TxnKind::Balance,
    ];
    const STATES: [TxnState; 8] = [
        TxnState::Sending,
        TxnState::Approved,
        TxnState::Declined,
        TxnState::Reversing,
        TxnState::Reversed,
        TxnState::Voided,
        TxnState::Queued,
        TxnState::NotSent,
    ];
    const CVMS: [Cvm; 4] = [Cvm::Signature, Cvm::PinVerified, Cvm::NoCvm, Cvm::DeviceCvm];

    /// Receipts with random text in every text field.
    pub(crate) fn any_receipt() -> impl Strategy<Value = ReceiptData> {
        (
            proptest::collection::vec(any_text(), 22),
            proptest::collection::vec(any_text(), 0..4),
            (0usize..7, 0usize..8, 0usize..4),
            (
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                any::<Option<u32>>(),
            ),
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
            any::<Option<u64>>(),
        )
            .prop_map(
                |(s, notes, (k, st, cvm), (amount, batch, stan, invoice), flags, fee)| {
                    let (reprint, zh, customer, with_emv) = flags;
                    ReceiptData {
                        merchant: MerchantInfo {
                            name: s[0].clone(),
                            merchant_id: s[1].clone(),
                            terminal_id: s[2].clone(),
                        },
                        operator: Some(s[3].clone()),
                        kind: KINDS[k],
                        state: STATES[st],
                        amount,
                        currency: s[4].clone(),
                        batch,
                        stan,
                        invoice,
                        rrn: Some(s[5].clone()),
                        auth_code: Some(s[6].clone()),
                        date_time: ReceiptTime::Text(s[7].clone()),
                        pan: Some(MaskedPan::new(&s[8])),
                        entry_mode: Some(EntryMode::Other(s[9].clone())),
                        card_scheme: Some(CardScheme::Other(s[10].clone())),
                        emv: with_emv.then(|| EmvFields {
                            aid: s[11].clone(),
                            app_label: Some(s[12].clone()),
                            tvr: s[13].clone(),
                            tsi: s[14].clone(),
                            cryptogram_kind: CryptogramKind::Tc,
                            cryptogram: s[15].clone(),
                            cvm_result: Some(s[16].clone()),
                        }),
                        cvm: CVMS[cvm],
                        original: Some(OriginalRef {
                            reference: s[17].clone(),
                            rrn: Some(s[18].clone()),
                            date: Some(s[19].clone()),
                            batch,
                            stan,
                            auth_code: Some(s[20].clone()),
                        }),
                        reprint,
                        copy: if customer {
                            ReceiptCopy::Customer
                        } else {
                            ReceiptCopy::Merchant
                        },
                        lang: if zh { Lang::Zh } else { Lang::En },
                        fee,
                        notes: notes.into_iter().chain([s[21].clone()]).collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn no_line_exceeds_the_width(d in any_receipt()) {
            for w in [Width::W32, Width::W48] {
                let lines = render_text(&d, w);
                for line in &lines {
                    prop_assert!(line.columns() <= w.columns(),
                        "{:?} takes {} > {}", line.text, line.columns(), w.columns());
                    prop_assert!(!line.text.chars().any(char::is_control));
                }
                for row in to_plain(&lines, w).lines() {
                    prop_assert!(str_width(row) <= w.columns(), "{row:?}");
                }
            }
        }

        #[test]
        fn settlement_never_exceeds_the_width(
            s in proptest::collection::vec(any_text(), 5),
            counts in any::<(u32, u64, u32, u64)>(),
            batch in any::<u32>(),
            flags in any::<(bool, bool)>(),
        ) {
            let r = SettlementReport {
                merchant: MerchantInfo {
                    name: s[0].clone(),
                    merchant_id: s[1].clone(),
                    terminal_id: s[2].clone(),
                },
                operator: Some(s[3].clone()),
                batch,
                date_time: ReceiptTime::Text(s[4].clone()),
                totals: BatchTotals {
                    debit_count: counts.0,
                    debit_amount: counts.1,
                    credit_count: counts.2,
                    credit_amount: counts.3,
                },
                currency: "156".into(),
                balanced: flags.0,
                lang: if flags.1 { Lang::Zh } else { Lang::En },
            };
            for w in [Width::W32, Width::W48] {
                for line in render_settlement(&r, w) {
                    prop_assert!(line.columns() <= w.columns(), "{:?}", line.text);
                }
            }
        }
    }
}
