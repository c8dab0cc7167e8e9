//! Host messages: which fields each transaction carries, and how responses are checked.
//!
//! The field layout of every message is a table (the built-in catalogue, [`builtin_templates`], or an acquirer profile's), one line per message type, and
//! one function ([`fill`]) knows how to compute each field from the request context. The same
//! templates serve the `cup` and `iso87b` profiles: both carry the batch and transaction type in
//! private field 60 (`60.1` type code, `60.2` batch, `60.3` network management code, as in the
//! UnionPay POS specification) and the original transaction in 61. What differs between
//! profiles is data in [`Profile`]: the dialect (codec table), the MAC algorithm, field and
//! range, the key block layout and the templates themselves (an acquirer profile loaded from
//! TOML by [`crate::profile`] may change any line and add constant fields).
//!
//! The message catalogue is documented in `docs/messages.md`; the host simulator implements the
//! host side of the same catalogue.

use crate::model::{LocalDateTime, ReversalReason, TxnKind, TxnRecord};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::mac;
use smartpos_crypto::module::{DukptKsn, KeyRef, MacDirection, MacMethod, SecurityModule};
use smartpos_iso8583::{BuiltInDialect, Message, Mti, ResponseCode};
use smartpos_types::{Pan, SecretBytes, Track2};
use std::fmt;
use thiserror::Error;

pub use crate::profile::{KeyLayout, KeyRole, MacAlgorithm, MacRange, Profile};

/// Message types the terminal sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MsgType {
    /// Sign-in with key download (0800, 60.3 = 003).
    SignIn,
    /// Sign-off (0820, 60.3 = 002).
    SignOff,
    /// Echo test (0820, 60.3 = 301).
    Echo,
    /// A financial request or advice of a transaction kind.
    Txn(TxnKind),
    /// Reversal of a financial request (0400 / 0401).
    Reversal,
    /// Settlement totals (0500, 60.3 = 201).
    Settlement,
    /// Batch upload of one record (0320, 60.3 = 201).
    BatchUpload,
    /// End of batch upload (0320, 60.3 = 202).
    EndOfBatch,
    /// TC upload of an approved chip transaction (0320, 60.3 = 203): the card's final chip
    /// data in field 55. A store-and-forward notice.
    TcUpload,
    /// Issuer script results of a chip transaction (0620, 60.3 = 951): field 55 carries the
    /// script results (DF31). A store-and-forward notice.
    ScriptAdvice,
    /// IC card CA public key query (0820, 60.3 = 372; see [`crate::params`]).
    CaKeyQuery,
    /// IC card CA public key download (0800, 60.3 = 370).
    CaKeyDownload,
    /// IC card CA public key download end (0800, 60.3 = 371).
    CaKeyDownloadEnd,
    /// IC card parameter (AID) query (0820, 60.3 = 382).
    AidQuery,
    /// IC card parameter (AID) download (0800, 60.3 = 380).
    AidDownload,
    /// IC card parameter (AID) download end (0800, 60.3 = 381).
    AidDownloadEnd,
}

/// A constant field value of a template (from an acquirer profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// Raw bytes (binary fields: hex or TLV in the profile).
    Bytes(Vec<u8>),
    /// Text with `{placeholder}`s filled from the request context (see [`Constant::render`]).
    Text(String),
}

/// Placeholders a text constant may use: `{stan}` (6 digits), `{batch}` (6 digits),
/// `{amount}` (12 digits), `{date}` (MMDD), `{time}` (hhmmss), `{tid}`, `{mid}`, `{currency}`,
/// `{operator}`. `{{` and `}}` are literal braces.
pub const PLACEHOLDERS: &[&str] = &[
    "stan", "batch", "amount", "date", "time", "tid", "mid", "currency", "operator",
];

impl Constant {
    /// The field value for a request; `None` when a placeholder has no value in this context
    /// (e.g. `{amount}` in a sign-in), so the field is left out.
    pub fn render(&self, id: &Identity, ctx: &Ctx<'_>) -> Option<Vec<u8>> {
        match self {
            Constant::Bytes(b) => Some(b.clone()),
            Constant::Text(t) => expand(t, |name| match name {
                "stan" => Some(digits(u64::from(ctx.stan), 6)),
                "batch" => Some(digits(u64::from(ctx.batch), 6)),
                "amount" => ctx.amount.map(|a| digits(a, 12)),
                "date" => ctx.local.map(|l| l.mmdd()),
                "time" => ctx.local.map(|l| l.hhmmss()),
                "tid" => Some(id.tid.clone()),
                "mid" => Some(id.mid.clone()),
                "currency" => Some(id.currency.to_string()),
                "operator" => ctx.operator.map(str::to_owned),
                _ => None,
            })
            .map(String::into_bytes),
        }
    }
}

/// Expands `{name}` placeholders with `value`; `None` if a name has no value or the braces
/// are unbalanced. `{{` / `}}` stand for literal braces.
pub(crate) fn expand(t: &str, value: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(rest.get(..i)?);
        let tail = rest.get(i..)?;
        if let Some(r) = tail.strip_prefix("{{") {
            out.push('{');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("}}") {
            out.push('}');
            rest = r;
        } else if let Some(r) = tail.strip_prefix('{') {
            let close = r.find('}')?;
            out.push_str(&value(r.get(..close)?)?);
            rest = r.get(close + 1..)?;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// How a profile's financial requests describe the card reading: field 22's PAN entry digits
/// for a fallback, and whether field 60 goes on with 60.4 / 60.5 (issue 20; sources in
/// `docs/messages.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosConventions {
    /// 60.4, the terminal's read capability, on financial requests (UnionPay: `0` unknown,
    /// `2` magnetic stripe only, `5` contact IC, `6` contactless IC), followed by 60.5, the IC
    /// card condition code (`0`, or `2` when the chip failed and the stripe was read). `None`:
    /// field 60 ends after 60.2 (60.3 on network management messages), the layout before
    /// issue 20.
    pub read_capability: Option<char>,
    /// The PAN entry digits of field 22 for a fallback (a chip card's stripe read after its chip
    /// failed): `02` for UnionPay, which signals the fallback in 60.5; `80` in the card
    /// schemes' ISO 8583 conventions.
    pub fallback_entry: String,
}

/// The settlement totals in field 48 of the 0500 (and the host's 0510).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalsLayout {
    /// UnionPay's 62 digits: domestic-card debit amount n12, debit count n3, credit amount
    /// n12, credit count n3, result n1, then the same five for foreign cards.
    DomesticForeign,
    /// One set of 31 digits: debit count n3, debit amount n12, credit count n3, credit amount
    /// n12, `0` (the layout before issue 20).
    Single,
}

/// How a settlement that does not balance uploads the batch (0320, 60.3 `201`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadLayout {
    /// UnionPay's: up to [`RECORDS_PER_UPLOAD`] records in field 48 of one 0320, `n2` count then
    /// per record card class n2, STAN n6, PAN n20 (right-aligned, zero-filled), amount n12.
    Records,
    /// One 0320 per transaction with its own fields 3, 4, 11-13, 37, 38, 61 (the layout before
    /// issue 20).
    PerTransaction,
}

/// A profile's settlement layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementConventions {
    /// Field 48 of the 0500.
    pub totals: TotalsLayout,
    /// The batch upload.
    pub upload: UploadLayout,
}

/// At most this many records go in one multi-record batch upload: `n2` + 8 × 40 digits = 322,
/// the `cup` field 48's maximum length.
pub const RECORDS_PER_UPLOAD: usize = 8;

/// The conventions of a built-in profile: `cup` speaks UnionPay (13-digit 60 with read
/// capability `6`, fallback `02` + 60.5 `2`, 62-digit totals, multi-record upload); `iso87b`
/// and `iso87a` keep the layouts they had (8-digit 60, fallback `80`, 31-digit totals, one
/// upload per transaction).
pub fn builtin_conventions(base: BuiltInDialect) -> (PosConventions, SettlementConventions) {
    if base.is_unionpay() {
        (
            PosConventions {
                read_capability: Some('6'),
                fallback_entry: "02".into(),
            },
            SettlementConventions {
                totals: TotalsLayout::DomesticForeign,
                upload: UploadLayout::Records,
            },
        )
    } else {
        (
            PosConventions {
                read_capability: None,
                fallback_entry: "80".into(),
            },
            SettlementConventions {
                totals: TotalsLayout::Single,
                upload: UploadLayout::PerTransaction,
            },
        )
    }
}

/// One line of the message catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Message type.
    pub msg: MsgType,
    /// MTI of the first attempt.
    pub mti: Mti,
    /// Processing code (field 3), if carried.
    pub processing_code: Option<String>,
    /// Transaction type code (60.1).
    pub type_code: String,
    /// Network management information code (60.3), if carried.
    pub nmic: Option<String>,
    /// POS condition code (field 25), if carried.
    pub condition: Option<String>,
    /// Fields carried (besides MTI), in ascending order; each is computed by [`fill`] (or taken
    /// from [`Template::constants`]) and skipped when the context has no value for it (e.g. 35
    /// for a keyed card).
    pub fields: Vec<u8>,
    /// Whether the MAC field is carried.
    pub mac: bool,
    /// Constant values by field number; they take precedence over computed values.
    pub constants: Vec<(u8, Constant)>,
}

impl Template {
    /// The constant for a field, if the template has one.
    pub fn constant(&self, field: u8) -> Option<&Constant> {
        self.constants
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, c)| c)
    }
}

/// Fields [`fill`] computes from the request context, plus 62, which the EMV parameter
/// download sets itself (`engine/params_op.rs`); any other field of a template needs a constant.
pub const COMPUTED_FIELDS: &[u8] = &[
    2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 26, 35, 37, 38, 41, 42, 48, 49, 52, 53, 55, 60, 61, 62, 63,
];

/// A built-in catalogue line (static data; [`builtin_templates`] makes owned [`Template`]s).
struct Line {
    msg: MsgType,
    mti: Mti,
    processing_code: Option<&'static str>,
    type_code: &'static str,
    nmic: Option<&'static str>,
    condition: Option<&'static str>,
    fields: &'static [u8],
    mac: bool,
}

/// The built-in message catalogue (the `cup`, `iso87b` and `iso87a` profiles; acquirer profiles
/// start from it). Type codes (60.1) and network management codes (60.3) follow the
/// UnionPay POS terminal specification (中国银联 POS 终端规范, 交易类型码 / 网络管理信息码 tables):
/// 22 purchase, 23 void, 25 refund, 10 pre-auth, 11 pre-auth cancel, 20 completion,
/// 01 balance inquiry, 00 management; 001/003 sign-in, 002 sign-off, 301 echo,
/// 201 settlement / batch upload, 202 end of batch; for chip cards 203 TC upload (0320) and
/// 951 issuer script result advice (0620), as public UnionPay POS implementations use them
/// (the codes are not in a freely published specification; docs/messages.md says so).
const LINES: &[Line] = &[
    Line {
        msg: MsgType::SignIn,
        mti: Mti(800),
        processing_code: None,
        type_code: "00",
        nmic: Some("003"),
        condition: None,
        fields: &[11, 41, 42, 60, 63],
        mac: false,
    },
    Line {
        msg: MsgType::SignOff,
        mti: Mti(820),
        processing_code: None,
        type_code: "00",
        nmic: Some("002"),
        condition: None,
        fields: &[11, 41, 42, 60],
        mac: false,
    },
    Line {
        msg: MsgType::Echo,
        mti: Mti(820),
        processing_code: None,
        type_code: "00",
        nmic: Some("301"),
        condition: None,
        fields: &[11, 41, 42, 60],
        mac: false,
    },
    Line {
        msg: MsgType::Txn(TxnKind::Sale),
        mti: Mti(200),
        processing_code: Some("000000"),
        type_code: "22",
        nmic: None,
        condition: Some("00"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 26, 35, 41, 42, 49, 52, 53, 55, 60, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::Void),
        mti: Mti(200),
        processing_code: Some("200000"),
        type_code: "23",
        nmic: None,
        condition: Some("00"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 26, 35, 37, 38, 41, 42, 49, 52, 53, 60, 61, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::Refund),
        mti: Mti(220),
        processing_code: Some("200000"),
        type_code: "25",
        nmic: None,
        condition: Some("00"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 37, 41, 42, 49, 60, 61, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::PreAuth),
        mti: Mti(100),
        processing_code: Some("030000"),
        type_code: "10",
        nmic: None,
        condition: Some("06"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 26, 35, 41, 42, 49, 52, 53, 55, 60, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::Completion),
        mti: Mti(200),
        processing_code: Some("000000"),
        type_code: "20",
        nmic: None,
        condition: Some("06"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 35, 37, 38, 41, 42, 49, 60, 61, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::PreAuthCancel),
        mti: Mti(100),
        processing_code: Some("200000"),
        type_code: "11",
        nmic: None,
        condition: Some("06"),
        fields: &[
            2, 3, 4, 11, 12, 13, 14, 22, 23, 25, 35, 37, 38, 41, 42, 49, 60, 61, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Txn(TxnKind::Balance),
        mti: Mti(200),
        processing_code: Some("310000"),
        type_code: "01",
        nmic: None,
        condition: Some("00"),
        fields: &[
            2, 3, 11, 12, 13, 14, 22, 23, 25, 26, 35, 41, 42, 49, 52, 53, 55, 60, 63, 64,
        ],
        mac: true,
    },
    Line {
        msg: MsgType::Settlement,
        mti: Mti(500),
        processing_code: None,
        type_code: "00",
        nmic: Some("201"),
        condition: None,
        fields: &[11, 41, 42, 48, 49, 60, 63, 64],
        mac: true,
    },
    // One template for both upload layouts: a multi-record upload fills 48 (and has no
    // original, so 3, 4, 12, 13, 37, 38, 61 stay out); a per-transaction one fills those from
    // its record and leaves 48 out.
    Line {
        msg: MsgType::BatchUpload,
        mti: Mti(320),
        processing_code: None,
        type_code: "00",
        nmic: Some("201"),
        condition: None,
        fields: &[2, 3, 4, 11, 12, 13, 37, 38, 41, 42, 48, 49, 60, 61, 64],
        mac: true,
    },
    Line {
        msg: MsgType::EndOfBatch,
        mti: Mti(320),
        processing_code: None,
        type_code: "00",
        nmic: Some("202"),
        condition: None,
        fields: &[11, 41, 42, 48, 60, 64],
        mac: true,
    },
    Line {
        msg: MsgType::TcUpload,
        mti: Mti(320),
        processing_code: None,
        type_code: "00",
        nmic: Some("203"),
        condition: None,
        fields: &[2, 4, 11, 22, 23, 37, 38, 41, 42, 49, 55, 60, 61, 64],
        mac: true,
    },
    Line {
        msg: MsgType::ScriptAdvice,
        mti: Mti(620),
        processing_code: None,
        type_code: "00",
        nmic: Some("951"),
        condition: None,
        fields: &[2, 4, 11, 22, 23, 37, 38, 41, 42, 49, 55, 60, 61, 64],
        mac: true,
    },
];

/// The EMV parameter download messages (see [`crate::params`]): only the `cup` built-in
/// profile carries them (the 60.3 codes are UnionPay's); an acquirer profile on another base
/// may add them by naming them under `[messages]`. 60.3 codes after UnionPay POS terminal
/// practice: 372/370/371 CA public key query/download/end, 382/380/381 IC card parameter
/// query/download/end (sources in `docs/messages.md`).
const PARAM_LINES: &[Line] = &[
    Line {
        msg: MsgType::CaKeyQuery,
        mti: Mti(820),
        processing_code: None,
        type_code: "00",
        nmic: Some("372"),
        condition: None,
        fields: &[11, 41, 42, 60, 62],
        mac: false,
    },
    Line {
        msg: MsgType::CaKeyDownload,
        mti: Mti(800),
        processing_code: None,
        type_code: "00",
        nmic: Some("370"),
        condition: None,
        fields: &[11, 41, 42, 60, 62],
        mac: false,
    },
    Line {
        msg: MsgType::CaKeyDownloadEnd,
        mti: Mti(800),
        processing_code: None,
        type_code: "00",
        nmic: Some("371"),
        condition: None,
        fields: &[11, 41, 42, 60],
        mac: false,
    },
    Line {
        msg: MsgType::AidQuery,
        mti: Mti(820),
        processing_code: None,
        type_code: "00",
        nmic: Some("382"),
        condition: None,
        fields: &[11, 41, 42, 60, 62],
        mac: false,
    },
    Line {
        msg: MsgType::AidDownload,
        mti: Mti(800),
        processing_code: None,
        type_code: "00",
        nmic: Some("380"),
        condition: None,
        fields: &[11, 41, 42, 60, 62],
        mac: false,
    },
    Line {
        msg: MsgType::AidDownloadEnd,
        mti: Mti(800),
        processing_code: None,
        type_code: "00",
        nmic: Some("381"),
        condition: None,
        fields: &[11, 41, 42, 60],
        mac: false,
    },
];

/// The built-in message catalogue as owned templates (without the parameter download lines,
/// see [`param_templates`]).
pub fn builtin_templates() -> Vec<Template> {
    owned(LINES)
}

/// The EMV parameter download templates (part of the built-in `cup` profile).
pub fn param_templates() -> Vec<Template> {
    owned(PARAM_LINES)
}

fn owned(lines: &[Line]) -> Vec<Template> {
    lines
        .iter()
        .map(|l| Template {
            msg: l.msg,
            mti: l.mti,
            processing_code: l.processing_code.map(str::to_owned),
            type_code: l.type_code.to_owned(),
            nmic: l.nmic.map(str::to_owned),
            condition: l.condition.map(str::to_owned),
            fields: l.fields.to_vec(),
            mac: l.mac,
            constants: Vec::new(),
        })
        .collect()
}

/// Card data for a request. Masked in `Debug`.
#[derive(Clone, Default)]
pub struct CardData {
    /// PAN, when known (keyed entry, or from track 2 / tag 5A).
    pub pan: Option<Pan>,
    /// Track 2 (or tag 57 equivalent data).
    pub track2: Option<Track2>,
    /// Expiry `YYMM`, for keyed entry.
    pub expiry: Option<String>,
    /// POS entry mode (field 22), e.g. `012` keyed without PIN, `021` magstripe with PIN,
    /// `071` contactless chip.
    pub entry_mode: String,
    /// Card sequence number (field 23), for chip cards.
    pub card_seq: Option<String>,
    /// ICC data (field 55).
    pub icc: Option<SecretBytes>,
    /// Encrypted PIN block (field 52).
    pub pin_block: Option<SecretBytes>,
    /// The card makes the final decision after the host answers (a contact chip card still
    /// in the reader: second GENERATE AC). The engine then waits for
    /// [`crate::engine::Engine::handle_card_decision`] before an approval is final.
    pub card_decides: bool,
    /// DUKPT: the KSN the security module reserved for this card's PIN block; the request
    /// carrying the block goes out under it (its KSN field, its MAC). `None` otherwise.
    pub ksn: Option<DukptKsn>,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("pan", &self.pan)
            .field("track2", &self.track2)
            .field("entry_mode", &self.entry_mode)
            .field("icc", &self.icc)
            .field("pin_block", &self.pin_block)
            .field("card_decides", &self.card_decides)
            .field("ksn", &self.ksn)
            .finish()
    }
}

impl CardData {
    /// The PAN: explicit, or from track 2.
    pub fn effective_pan(&self) -> Option<Pan> {
        self.pan
            .clone()
            .or_else(|| self.track2.as_ref().and_then(Track2::pan))
    }

    /// The PAN entry digits the card front-end reported (the first two of
    /// [`CardData::entry_mode`]): `01` keyed, `02` stripe, `05` contact chip, `07` contactless,
    /// `80` a chip card's stripe after its chip failed. `None` when they are not two digits.
    pub fn pan_entry(&self) -> Option<&str> {
        self.entry_mode
            .get(..2)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether the chip of a chip card failed and its stripe was read instead.
    pub fn is_fallback(&self) -> bool {
        self.pan_entry() == Some("80")
    }

    /// The entry mode with the PIN digit this request earns: `1` when it carries a PIN block,
    /// `2` when it does not (UnionPay POS field 22; the ISO 8583 PIN entry capability digit
    /// read the same way). The card front-end's third digit is not trusted: our contactless
    /// kernel said `071` whether or not a PIN followed. Kept in the journal record.
    pub fn entry_mode_with_pin(&self) -> String {
        match self.pan_entry() {
            Some(d) => format!("{d}{}", if self.pin_block.is_some() { '1' } else { '2' }),
            None => self.entry_mode.clone(),
        }
    }
}

/// The card an original transaction keeps ([`TxnRecord::card`]) as the card data of a request
/// that refers to it without the card presented again: keyed (`012`), its PAN and expiry.
pub fn card_from_file(original: &TxnRecord) -> Option<CardData> {
    let c = original.card.as_ref()?;
    Some(CardData {
        pan: Some(c.pan.clone()),
        expiry: c.expiry.clone(),
        entry_mode: "012".into(),
        ..CardData::default()
    })
}

/// Field 22 on the wire from an entry mode with its PIN digit
/// ([`CardData::entry_mode_with_pin`]): the profile's fallback digits replace `80` (`cup`:
/// `02`, and 60.5 says fallback).
pub fn field22(profile: &Profile, entry_mode: &str) -> String {
    match entry_mode.strip_prefix("80") {
        Some(pin) => format!("{}{pin}", profile.pos.fallback_entry),
        None => entry_mode.to_owned(),
    }
}

/// Field 60 of a request: 60.1 type code, 60.2 batch, then for network management messages
/// 60.3; for financial requests of a profile with a read capability, 60.3 (`000` unless the
/// template names one), 60.4 the read capability and 60.5 the IC card condition code: `2` when
/// the chip failed and the stripe was read (`fallback`), else `0` (UnionPay POS field 60;
/// sources in docs/messages.md).
pub fn field60(profile: &Profile, t: &Template, batch: u32, fallback: bool) -> String {
    let mut s = format!("{}{batch:06}", t.type_code);
    match (t.msg, profile.pos.read_capability) {
        (MsgType::Txn(_), Some(capability)) => {
            s.push_str(t.nmic.as_deref().unwrap_or("000"));
            s.push(capability);
            s.push(if fallback { '2' } else { '0' });
        }
        _ => {
            if let Some(n) = &t.nmic {
                s.push_str(n);
            }
        }
    }
    s
}

/// Terminal identity carried in every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Terminal id (field 41, 8 characters).
    pub tid: String,
    /// Merchant id (field 42, 15 characters).
    pub mid: String,
    /// Currency (field 49, ISO 4217 numeric).
    pub currency: smartpos_types::Currency,
}

/// Everything [`fill`] may need to compute a field.
#[derive(Debug, Default)]
pub struct Ctx<'a> {
    /// STAN.
    pub stan: u32,
    /// Batch number.
    pub batch: u32,
    /// Amount in minor units.
    pub amount: Option<u64>,
    /// Local date/time.
    pub local: Option<LocalDateTime>,
    /// Card.
    pub card: Option<&'a CardData>,
    /// Original transaction (void, refund, completion, cancel, batch upload record).
    pub original: Option<&'a TxnRecord>,
    /// Operator code (field 63).
    pub operator: Option<&'a str>,
    /// Field 48 content (settlement totals, end-of-batch count).
    pub field48: Option<String>,
}

/// Why a message could not be built, sealed or checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// No template for this message type.
    #[error("no message template for {0:?}")]
    NoTemplate(MsgType),
    /// The codec refused the message.
    #[error("encode failed: {0}")]
    Encode(String),
    /// The bytes are not a message of this dialect.
    #[error("decode failed: {0}")]
    Decode(String),
    /// A MAC key is needed but the terminal is not signed in.
    #[error("no MAC key: sign in first")]
    NoMacKey,
    /// The security module could not compute the MAC (the text is the module's; no key
    /// material).
    #[error("security module: {0}")]
    Module(String),
}

fn digits(n: u64, width: usize) -> String {
    format!("{n:0width$}")
}

/// Builds a request of type `msg` from the profile's template and the context. The MAC field
/// is left out: see [`seal`].
pub fn build(
    profile: &Profile,
    id: &Identity,
    msg: MsgType,
    ctx: &Ctx<'_>,
) -> Result<Message, ProtoError> {
    let t = profile.template(msg).ok_or(ProtoError::NoTemplate(msg))?;
    let mut m = Message::new(t.mti);
    for &f in &t.fields {
        if f == profile.mac_field {
            continue;
        }
        let value = match t.constant(f) {
            Some(c) => c.render(id, ctx),
            None => fill(profile, id, t, f, ctx),
        };
        if let Some(v) = value {
            m.set(f, v);
        }
    }
    Ok(m)
}

/// Computes one field of a request; `None` leaves it out.
fn fill(
    profile: &Profile,
    id: &Identity,
    t: &Template,
    field: u8,
    ctx: &Ctx<'_>,
) -> Option<Vec<u8>> {
    let card = ctx.card;
    let orig = ctx.original;
    let text = |s: String| Some(s.into_bytes());
    match field {
        // Field 2 only when there is no track 2 (keyed entry), as the UnionPay spec asks.
        // Batch uploads carry no card data: the journal keeps no clear PAN for them.
        2 => {
            let c = card?;
            if c.track2.is_some() {
                return None;
            }
            c.pan.as_ref().map(|p| p.expose().as_bytes().to_vec())
        }
        3 => t.processing_code.clone().map(String::into_bytes),
        4 => ctx.amount.and_then(|a| text(digits(a, 12))),
        11 => text(digits(u64::from(ctx.stan), 6)),
        12 => ctx.local.and_then(|l| text(l.hhmmss())),
        13 => ctx.local.and_then(|l| text(l.mmdd())),
        14 => card.and_then(|c| {
            if c.track2.is_some() {
                None
            } else {
                c.expiry.clone().map(String::into_bytes)
            }
        }),
        22 => card.map(|c| field22(profile, &c.entry_mode_with_pin()).into_bytes()),
        23 => card.and_then(|c| c.card_seq.clone().map(String::into_bytes)),
        25 => t.condition.clone().map(String::into_bytes),
        26 => card.and_then(|c| c.pin_block.as_ref().map(|_| b"12".to_vec())),
        35 => card.and_then(|c| c.track2.as_ref().map(|t2| t2.expose().as_bytes().to_vec())),
        37 => orig.and_then(|o| o.rrn.clone().map(String::into_bytes)),
        38 => orig.and_then(|o| o.auth_code.clone().map(String::into_bytes)),
        41 => Some(id.tid.clone().into_bytes()),
        42 => Some(id.mid.clone().into_bytes()),
        48 => ctx.field48.clone().map(String::into_bytes),
        49 => Some(id.currency.to_string().into_bytes()),
        52 => card.and_then(|c| c.pin_block.as_ref().map(|b| b.expose().to_vec())),
        // 53: security control: 2 = ISO format 0 with PAN, 6 = double-length TDES, no magnetic
        // stripe encryption (UnionPay spec field 53 layout).
        53 => card.and_then(|c| c.pin_block.as_ref().map(|_| b"2600000000000000".to_vec())),
        55 => card.and_then(|c| c.icc.as_ref().map(|b| b.expose().to_vec())),
        60 => text(field60(
            profile,
            t,
            ctx.batch,
            card.is_some_and(CardData::is_fallback),
        )),
        61 => orig.map(|o| format!("{:06}{:06}{}", o.batch, o.stan, o.local_date).into_bytes()),
        // 63.1: the operator code, left-aligned in three characters; no operator, no field
        // (three blanks would name an operator nobody is).
        63 => ctx
            .operator
            .filter(|o| !o.trim().is_empty())
            .map(|o| format!("{o:<3}").into_bytes()),
        _ => None,
    }
}

/// Turns a financial request into its reversal: same STAN and fields, MTI 0400, field 39 the
/// reason; PIN data and track data are dropped (a reversal needs neither, and they must not be
/// kept), the PAN is kept in field 2 so the host can find the original. The profile's
/// reversal rule may drop more fields and add constants; the MAC field is always dropped.
pub fn reversal_of(profile: &Profile, request: &Message, reason: ReversalReason) -> Message {
    let mut r = Message::new(Mti(400));
    r.header = request.header.clone();
    for (f, v) in request.fields() {
        if !profile.reversal_drops(f) {
            r.set(f, v.to_vec());
        }
    }
    for (f, c) in &profile.reversal_constants {
        // Reversal constants are plain bytes: the reversal is rebuilt from the stored request,
        // which has no context to fill placeholders from.
        if let Constant::Bytes(b) = c {
            r.set(*f, b.clone());
        }
    }
    if !request.has(2)
        && let Some(pan) = request.text(35).and_then(Track2::new).and_then(|t| t.pan())
    {
        r.set(2, pan.expose().as_bytes().to_vec());
    }
    r.set(39, reason.code().as_bytes().to_vec());
    r
}

/// Builds a reversal from a journal record alone (no stored request): the host finds the
/// original by terminal, STAN, date and amount. Used for reason 96 after the stored request
/// was discarded with the approval.
pub fn reversal_from_record(
    profile: &Profile,
    id: &Identity,
    record: &TxnRecord,
) -> Result<Message, ProtoError> {
    let msg = MsgType::Txn(record.kind);
    let t = profile.template(msg).ok_or(ProtoError::NoTemplate(msg))?;
    let mut r = Message::new(Mti::REVERSAL);
    if let Some(pc) = &t.processing_code {
        r.set(3, pc.as_bytes().to_vec());
    }
    r.set(4, digits(record.amount, 12).into_bytes());
    r.set(11, digits(u64::from(record.stan), 6).into_bytes());
    r.set(12, record.local_time.as_bytes().to_vec());
    r.set(13, record.local_date.as_bytes().to_vec());
    if let Some(em) = &record.entry_mode {
        r.set(22, field22(profile, em).into_bytes());
    }
    if let Some(c) = &t.condition {
        r.set(25, c.as_bytes().to_vec());
    }
    if let Some(a) = &record.auth_code {
        r.set(38, a.clone().into_bytes());
    }
    r.set(
        39,
        ReversalReason::TerminalFailure.code().as_bytes().to_vec(),
    );
    r.set(41, id.tid.clone().into_bytes());
    r.set(42, id.mid.clone().into_bytes());
    r.set(49, id.currency.to_string().into_bytes());
    let fallback = record.entry_mode.is_some_and(|e| e.pan_entry() == "80");
    r.set(60, field60(profile, t, record.batch, fallback).into_bytes());
    Ok(r)
}

/// Replaces the reason of a stored reversal.
pub fn set_reversal_reason(reversal: &mut Message, reason: ReversalReason) {
    reversal.set(39, reason.code().as_bytes().to_vec());
}

/// Computes a MAC over `data` with the profile's algorithm (`None` if the key does not suit it).
pub fn compute_mac(profile: &Profile, mak: &TdesKey, data: &[u8]) -> Option<[u8; 8]> {
    match profile.mac {
        MacAlgorithm::CupEcb => Some(mac::cup_ecb(mak, data)),
        MacAlgorithm::X919 => mac::x9_19(mak, data, mac::Padding::Method1).ok(),
        MacAlgorithm::X99 => mac::x9_9(mak, data).ok(),
        // CMAC needs an AES key: AES DUKPT profiles MAC through the security module.
        MacAlgorithm::Cmac => None,
    }
}

/// The security module's MAC method for a profile's MAC algorithm.
pub fn mac_method(alg: MacAlgorithm) -> MacMethod {
    match alg {
        MacAlgorithm::CupEcb => MacMethod::CupEcb,
        MacAlgorithm::X919 => MacMethod::X919,
        MacAlgorithm::X99 => MacMethod::X99,
        MacAlgorithm::Cmac => MacMethod::Cmac,
    }
}

/// What computes a message's MAC: a clear MAC key (the host simulator, tools, tests) or the
/// terminal's security module, which keeps its keys to itself.
#[derive(Clone, Copy)]
pub enum MacKey<'a> {
    /// A clear key in this process (host side).
    Clear(&'a TdesKey),
    /// The terminal's security module and the key it is to use.
    Module(&'a dyn SecurityModule, KeyRef),
}

impl fmt::Debug for MacKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MacKey::Clear(k) => write!(f, "MacKey::Clear({k:?})"),
            MacKey::Module(m, r) => write!(f, "MacKey::Module({:?}, {r:?})", m.kind()),
        }
    }
}

impl MacKey<'_> {
    /// The 8-byte MAC of `data` (field 64) under the profile's algorithm, for a message going
    /// `direction`.
    pub fn mac(
        &self,
        profile: &Profile,
        direction: MacDirection,
        data: &[u8],
    ) -> Result<[u8; 8], ProtoError> {
        match self {
            MacKey::Clear(k) => compute_mac(profile, k, data).ok_or(ProtoError::NoMacKey),
            MacKey::Module(module, key) => {
                let m = module
                    .mac(*key, direction, mac_method(profile.mac), data)
                    .map_err(|e| ProtoError::Module(e.to_string()))?;
                // The leftmost 8 bytes: field 64 holds 8, and a CMAC gives 16.
                m.get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .ok_or_else(|| ProtoError::Module("the MAC is shorter than 8 bytes".into()))
            }
        }
    }
}

/// The bytes a packed message's MAC covers under the profile's MAC range: from the MTI to just
/// before the MAC field (which must be the message's last field), or the wire bytes of the
/// listed fields that are present, in the listed order.
pub fn mac_input(profile: &Profile, packed: &[u8], msg: &Message) -> Result<Vec<u8>, ProtoError> {
    let d = &profile.dialect;
    match &profile.mac_range {
        MacRange::Message => {
            let mac_field = profile.mac_field;
            let value = msg.get(mac_field).ok_or(ProtoError::Decode(format!(
                "no MAC field {mac_field} in the message"
            )))?;
            if msg.fields().last().map(|(n, _)| n) != Some(mac_field) {
                return Err(ProtoError::Decode(format!(
                    "MAC field {mac_field} is not the last field"
                )));
            }
            let wire = d
                .encode_field_value(mac_field, value)
                .map_err(|e| ProtoError::Encode(e.to_string()))?
                .len();
            let end = packed.len().saturating_sub(wire);
            packed
                .get(d.header_len()..end)
                .map(<[u8]>::to_vec)
                .ok_or(ProtoError::Decode("message shorter than its header".into()))
        }
        MacRange::Fields(list) => {
            let mut out = Vec::new();
            for &f in list {
                if let Some(v) = msg.get(f) {
                    let wire = d
                        .encode_field_value(f, v)
                        .map_err(|e| ProtoError::Encode(e.to_string()))?;
                    out.extend_from_slice(&wire);
                }
            }
            Ok(out)
        }
    }
}

/// Packs `msg` for sending. With `with_mac`, the profile's MAC field is computed with `mak`
/// over the profile's MAC input (packed once with a zero placeholder, then again with the MAC:
/// the bitmap and every other byte stay the same).
pub fn seal(
    profile: &Profile,
    mak: Option<&TdesKey>,
    msg: &Message,
    with_mac: bool,
) -> Result<Vec<u8>, ProtoError> {
    seal_with(profile, mak.map(MacKey::Clear), msg, with_mac)
}

/// [`seal`] with the MAC from a [`MacKey`] (the terminal's security module).
pub fn seal_with(
    profile: &Profile,
    mak: Option<MacKey<'_>>,
    msg: &Message,
    with_mac: bool,
) -> Result<Vec<u8>, ProtoError> {
    let pack = |m: &Message| {
        profile
            .dialect
            .pack(m)
            .map_err(|e| ProtoError::Encode(e.to_string()))
    };
    let mut m = msg.clone();
    if !with_mac {
        m.remove(profile.mac_field);
        return pack(&m);
    }
    let mak = mak.ok_or(ProtoError::NoMacKey)?;
    m.set(profile.mac_field, vec![0u8; 8]);
    let packed = pack(&m)?;
    let input = mac_input(profile, &packed, &m)?;
    let mac = mak.mac(profile, MacDirection::Request, &input)?;
    m.set(profile.mac_field, mac.to_vec());
    pack(&m)
}

/// Whether a packed message carries the right MAC under `mak` in the profile's MAC field
/// (constant-time compare).
pub fn verify_mac(profile: &Profile, mak: &TdesKey, packed: &[u8], msg: &Message) -> bool {
    verify_mac_with(profile, MacKey::Clear(mak), packed, msg)
}

/// [`verify_mac`] with a [`MacKey`] (the terminal's security module checks a response). A
/// module that fails counts as a MAC that does not verify: the answer is not trusted.
pub fn verify_mac_with(profile: &Profile, mak: MacKey<'_>, packed: &[u8], msg: &Message) -> bool {
    let Some(got) = msg.get(profile.mac_field) else {
        return false;
    };
    let Ok(input) = mac_input(profile, packed, msg) else {
        return false;
    };
    match mak.mac(profile, MacDirection::Response, &input) {
        Ok(want) => mac::verify(&want, got),
        Err(e) => {
            log::warn!("response MAC could not be computed: {e}");
            false
        }
    }
}

/// Whether a response code approves a financial request: `00`, and the other ISO 8583:1987
/// approvals `08` (honour with identification), `10` (partial: its amount differs, so the
/// amount check reverses it), `11` (approved, VIP) and `16` (approved, update track 3), and
/// CUP's approvals with defects `A2`/`A4`/`A5`/`A6`. Treating any of them as a decline would
/// leave the customer charged while the terminal says declined.
pub fn is_approval(code: &str) -> bool {
    smartpos_iso8583::ResponseCode::parse(code).is_some_and(|c| c.is_approved())
}

/// Whether `code` is one the terminal knows: its row in the response code table
/// ([`smartpos_iso8583::RESPONSE_CODES`]) names a cashier diagnosis.
pub fn is_known_response_code(code: &str) -> bool {
    smartpos_iso8583::ResponseCode::parse(code).is_some_and(|c| c.has_diagnosis())
}

/// Whether the engine reverses a request of `kind` answered `code` as a possible approval: a
/// code in no table ([`is_known_response_code`]) on a request that may move money
/// ([`TxnKind::needs_reversal`]) might be an approval of the host's own, so the customer may be
/// charged. The engine applies this rule to every answer, and `explain`
/// (`smartpos_diagnosis::for_response_code`) words an unknown code from it: one rule, one place.
pub fn reversed_as_possible_approval(kind: TxnKind, code: &str) -> bool {
    match ResponseCode::from_field(code) {
        Some(c) => reverses_as_possible_approval(kind, c),
        None => kind.needs_reversal(),
    }
}

/// [`reversed_as_possible_approval`] of a typed code, the engine's form: the code's row in
/// [`smartpos_iso8583::RESPONSE_CODES`] approves, or names a diagnosis, or the request is
/// reversed.
pub fn reverses_as_possible_approval(kind: TxnKind, code: ResponseCode) -> bool {
    kind.needs_reversal() && !code.is_approved() && !code.has_diagnosis()
}

/// Packs `msg` with a MAC from `mac` (given the bytes the profile's MAC range covers; the
/// leftmost 8 bytes of what it returns go into the MAC field; `None`: no key, no message).
/// For MACs not made from a TDES MAK: DUKPT derived keys, SM4 keys, a security module.
pub fn seal_by_fn(
    profile: &Profile,
    msg: &Message,
    mac: &mut dyn FnMut(&[u8]) -> Option<[u8; 8]>,
) -> Result<Vec<u8>, ProtoError> {
    let pack = |m: &Message| {
        profile
            .dialect
            .pack(m)
            .map_err(|e| ProtoError::Encode(e.to_string()))
    };
    let mut m = msg.clone();
    m.set(profile.mac_field, vec![0u8; 8]);
    let packed = pack(&m)?;
    let input = mac_input(profile, &packed, &m)?;
    let value = mac(&input).ok_or(ProtoError::NoMacKey)?;
    m.set(profile.mac_field, value.to_vec());
    pack(&m)
}

/// Whether a packed message carries the MAC `mac` computes over the profile's MAC range
/// (constant-time compare); see [`seal_by_fn`].
pub fn verify_mac_by_fn(
    profile: &Profile,
    packed: &[u8],
    msg: &Message,
    mac: &mut dyn FnMut(&[u8]) -> Option<[u8; 8]>,
) -> bool {
    let Some(got) = msg.get(profile.mac_field) else {
        return false;
    };
    let Ok(input) = mac_input(profile, packed, msg) else {
        return false;
    };
    match mac(&input) {
        Some(want) => smartpos_crypto::mac::verify(&want, got),
        None => false,
    }
}

/// Whether the host's answer to a reversal ends it (`00`, `12`, `22`, `25`): see
/// [`smartpos_iso8583::ResponseCode::closes_reversal`]. Anything else leaves it pending.
pub fn closes_reversal(code: &str) -> bool {
    smartpos_iso8583::ResponseCode::parse(code).is_some_and(|c| c.closes_reversal())
}

/// Whether the code means "not processed now, try again" (`96`, `91`, `A0`, ...): see
/// [`smartpos_iso8583::ResponseCode::is_temporary`].
pub fn is_temporary(code: &str) -> bool {
    smartpos_iso8583::ResponseCode::parse(code).is_some_and(|c| c.is_temporary())
}

/// What a request expects of its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The response MTI.
    pub mti: Mti,
    /// STAN (field 11).
    pub stan: u32,
    /// Amount (field 4), when the request carried one.
    pub amount: Option<u64>,
    /// Whether the response must carry a valid MAC.
    pub mac: bool,
}

impl Expectation {
    /// The expectation for a request message.
    pub fn of(request: &Message, mac: bool) -> Option<Expectation> {
        Some(Expectation {
            mti: request.mti.response()?,
            stan: request.text(11)?.parse().ok()?,
            amount: request.text(4).and_then(|a| a.parse().ok()),
            mac,
        })
    }
}

/// How a received frame relates to the request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The response to our request, MAC verified.
    Ok(Reply),
    /// Not ours (different MTI or STAN, or another terminal): a late or stray message; ignore.
    NotOurs,
    /// Ours (MTI, STAN, TID and MID match) but the MAC is missing or wrong: reverse with `A0`.
    BadMac,
    /// Ours but inconsistent (amount differs, required fields missing or malformed): reverse with `06`.
    Inconsistent(&'static str),
    /// The bytes do not decode.
    Garbage,
}

/// The useful content of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Response code (field 39); what it means is its row in
    /// [`smartpos_iso8583::RESPONSE_CODES`].
    pub response_code: ResponseCode,
    /// RRN (37).
    pub rrn: Option<String>,
    /// Authorisation code (38).
    pub auth_code: Option<String>,
    /// Field 48 (settlement result).
    pub field48: Option<String>,
    /// Field 54 (balances).
    pub balance: Option<String>,
    /// Field 60 (batch number at sign-in in 60.2).
    pub field60: Option<String>,
    /// The sign-in key block field: 62, or the field the profile's `[keys]` names.
    pub field62: Option<Vec<u8>>,
    /// Field 44 (additional response data, e.g. a host message).
    pub additional: Option<String>,
    /// Field 55 of the response (issuer authentication data 91, scripts 71/72).
    pub icc: Option<Vec<u8>>,
    /// Field 62 as received, whichever field the key layout names (EMV parameter downloads
    /// answer in it).
    pub private62: Option<Vec<u8>>,
}

/// Decodes a frame and checks it against what we wait for.
pub fn check_response(
    profile: &Profile,
    id: &Identity,
    mak: Option<&TdesKey>,
    frame: &[u8],
    expect: &Expectation,
) -> Match {
    check_response_with(profile, id, mak.map(MacKey::Clear), frame, expect)
}

/// [`check_response`] with the MAC checked through a [`MacKey`] (the terminal's security
/// module).
pub fn check_response_with(
    profile: &Profile,
    id: &Identity,
    mak: Option<MacKey<'_>>,
    frame: &[u8],
    expect: &Expectation,
) -> Match {
    // Read in place: a frame that is not ours costs no allocation, and nothing is copied
    // before it has matched and its MAC has verified.
    let Ok(v) = profile.dialect.view(frame) else {
        return Match::Garbage;
    };
    let text = |n: u8| v.field(n).and_then(|f| f.text());
    let stan_ok = v.field(11).and_then(|f| f.to_u64()) == Some(u64::from(expect.stan));
    let id_ok = |n: u8, want: &str| text(n).is_some_and(|t| t.trim_end() == want.trim_end());
    if v.mti() != expect.mti || !stan_ok || !id_ok(41, &id.tid) || !id_ok(42, &id.mid) {
        return Match::NotOurs;
    }
    if expect.mac {
        match mak {
            Some(k) if verify_mac_view_with(profile, k, &v) => {}
            _ => return Match::BadMac,
        }
    }
    let Some(rc) = text(39) else {
        return Match::Inconsistent("response code missing");
    };
    // Field 39 is `an2` in every built-in dialect, so the codec has already refused anything
    // else; only a profile that redefines field 39 can get here with another length.
    let Some(rc) = ResponseCode::from_field(&rc) else {
        return Match::Inconsistent("response code is not 2 letters, digits or spaces");
    };
    if let Some(want) = expect.amount {
        // An approval must echo the amount; a decline may omit it.
        match v.field(4).map(|f| f.to_u64()) {
            Some(Some(a)) if a == want => {}
            None if !rc.is_approved() => {}
            _ => return Match::Inconsistent("amount differs from the request"),
        }
    }
    let owned = |n: u8| text(n).map(|t| t.into_owned());
    let bytes = |n: u8| v.field(n).map(|f| f.to_vec());
    Match::Ok(Reply {
        response_code: rc,
        rrn: text(37).map(|s| s.trim().to_owned()),
        auth_code: text(38).map(|s| s.trim().to_owned()),
        field48: owned(48),
        balance: owned(54),
        field60: owned(60),
        field62: bytes(profile.keys.field),
        additional: owned(44),
        icc: bytes(55),
        private62: bytes(62),
    })
}

/// Whether a card counts as domestic (内卡) or foreign (外卡) in UnionPay's settlement totals
/// and batch upload records.
///
/// UnionPay terminals take the class from the card organisation the host names in 63.1 of its
/// answers (`CUP` domestic, `VIS`, `MCC`, `JCB`, ... foreign); the terminal keeps no such answer
/// and has no BIN table, so it decides by the issuer identification number: UnionPay's `62`
/// range (ISO/IEC 7812, registered to China UnionPay) is domestic, every other range foreign,
/// and a transaction without a card number domestic. A host that classifies a card otherwise
/// (a Visa card issued in China) answers "not balanced" for both classes and receives the batch
/// upload, whose records carry the class the terminal used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardClass {
    /// 内卡: UnionPay range.
    Domestic,
    /// 外卡: any other range.
    Foreign,
}

impl CardClass {
    /// The class of a PAN or masked PAN (only its first two digits are read).
    pub fn of(pan: Option<&str>) -> CardClass {
        match pan.and_then(|p| p.get(..2)) {
            Some(iin) if iin != "62" => CardClass::Foreign,
            _ => CardClass::Domestic,
        }
    }

    /// The class of a journal record (its masked PAN).
    pub fn of_record(r: &TxnRecord) -> CardClass {
        CardClass::of(r.pan_masked.as_deref())
    }

    /// Its code in a batch upload record: `00` domestic, `01` foreign.
    pub fn code(self) -> &'static str {
        match self {
            CardClass::Domestic => "00",
            CardClass::Foreign => "01",
        }
    }
}

/// A batch's totals by card class (UnionPay's 62-digit settlement totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassTotals {
    /// Domestic cards.
    pub domestic: crate::model::BatchTotals,
    /// Foreign cards.
    pub foreign: crate::model::BatchTotals,
}

impl ClassTotals {
    /// The totals of `batch` from its records, split by [`CardClass::of_record`].
    pub fn of(batch: u32, records: &[TxnRecord]) -> ClassTotals {
        let of_class = |c: CardClass| {
            crate::model::BatchTotals::of(
                batch,
                records.iter().filter(|r| CardClass::of_record(r) == c),
            )
        };
        ClassTotals {
            domestic: of_class(CardClass::Domestic),
            foreign: of_class(CardClass::Foreign),
        }
    }
}

/// One class's 30 digits of UnionPay's settlement totals: debit amount n12, debit count n3,
/// credit amount n12, credit count n3 (amounts modulo 10^12 and counts modulo 1000, as wide as
/// the wire allows; the host compares the same way).
pub fn class_totals_digits(t: &crate::model::BatchTotals) -> String {
    format!(
        "{:012}{:03}{:012}{:03}",
        t.debit_amount % 1_000_000_000_000,
        t.debit_count % 1000,
        t.credit_amount % 1_000_000_000_000,
        t.credit_count % 1000
    )
}

/// Field 48 of a settlement request (0500) in the profile's layout: UnionPay's 62 digits
/// (domestic then foreign, [`class_totals_digits`] each followed by a result digit `0`, which
/// the host's answer replaces) or the 31 digits of [`settlement_field48`].
pub fn settlement_request_field48(
    layout: TotalsLayout,
    batch: u32,
    records: &[TxnRecord],
) -> String {
    match layout {
        TotalsLayout::DomesticForeign => {
            let t = ClassTotals::of(batch, records);
            format!(
                "{}0{}0",
                class_totals_digits(&t.domestic),
                class_totals_digits(&t.foreign)
            )
        }
        TotalsLayout::Single => settlement_field48(&crate::model::BatchTotals::of(batch, records)),
    }
}

/// One record of a multi-record batch upload: card class n2, the transaction's STAN n6, its PAN
/// n20 (right-aligned, zero-filled; 20 zeros when the terminal keeps no card for it, e.g. a
/// transaction from before issue 20) and amount n12. After public UnionPay POS code: the
/// Basewin terminal's `formatField48` and the bestpay host's `M_BatchSendChecker`
/// (docs/messages.md).
pub fn upload_record(r: &TxnRecord) -> String {
    let pan = r.card.as_ref().map_or("", |c| c.pan.expose());
    format!(
        "{}{:06}{:0>20}{:012}",
        CardClass::of_record(r).code(),
        r.stan % 1_000_000,
        pan,
        r.amount % 1_000_000_000_000
    )
}

/// Field 48 of a multi-record batch upload: the record count n2, then the records
/// ([`upload_record`]); at most [`RECORDS_PER_UPLOAD`] per message.
pub fn upload_field48(records: &[TxnRecord]) -> String {
    let mut s = format!("{:02}", records.len());
    for r in records {
        s.push_str(&upload_record(r));
    }
    s
}

/// A record of a multi-record batch upload as the host reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadedRecord {
    /// `00` domestic, `01` foreign.
    pub class: String,
    /// The transaction's STAN.
    pub stan: u32,
    /// The PAN (zero-filled to 20 digits on the wire; the filler is removed here).
    pub pan: String,
    /// Amount in minor units.
    pub amount: u64,
}

impl fmt::Debug for UploadedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pan = Pan::new(&self.pan).map_or_else(|_| "?".to_owned(), |p| p.masked());
        f.debug_struct("UploadedRecord")
            .field("class", &self.class)
            .field("stan", &self.stan)
            .field("pan", &pan)
            .field("amount", &self.amount)
            .finish()
    }
}

/// Reads field 48 of a multi-record batch upload (host side); `None` when the count is not
/// 1 to [`RECORDS_PER_UPLOAD`], the length is not the count's, or a record is not digits.
pub fn parse_upload_field48(f: &str) -> Option<Vec<UploadedRecord>> {
    let count: usize = f.get(..2)?.parse().ok()?;
    let body = f.get(2..)?;
    if !(1..=RECORDS_PER_UPLOAD).contains(&count)
        || body.len() != count * 40
        || !body.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    (0..count)
        .map(|i| {
            let r = body.get(i * 40..(i + 1) * 40)?;
            let pan = r.get(8..28)?.trim_start_matches('0').to_owned();
            Some(UploadedRecord {
                class: r.get(..2)?.to_owned(),
                stan: r.get(2..8)?.parse().ok()?,
                pan,
                amount: r.get(28..40)?.parse().ok()?,
            })
        })
        .collect()
}

/// [`verify_mac`] on a message read in place: the MAC input is a slice of the frame (message
/// range) or the listed fields' wire bytes as received.
pub fn verify_mac_view(
    profile: &Profile,
    mak: &TdesKey,
    v: &smartpos_iso8583::MessageView<'_>,
) -> bool {
    verify_mac_view_with(profile, MacKey::Clear(mak), v)
}

/// [`verify_mac_view`] with a [`MacKey`] (the terminal's security module checks a response).
/// A module that fails counts as a MAC that does not verify: the answer is not trusted.
pub fn verify_mac_view_with(
    profile: &Profile,
    mak: MacKey<'_>,
    v: &smartpos_iso8583::MessageView<'_>,
) -> bool {
    let Some(got) = v.field(profile.mac_field).and_then(|f| f.as_bytes()) else {
        return false;
    };
    let computed = match &profile.mac_range {
        MacRange::Message => match v.mac_input(profile.mac_field) {
            Some(input) => mak.mac(profile, MacDirection::Response, input),
            None => return false,
        },
        MacRange::Fields(list) => {
            let mut input = Vec::new();
            for &f in list {
                if let Some(r) = v.field(f) {
                    input.extend_from_slice(r.wire_with_prefix());
                }
            }
            mak.mac(profile, MacDirection::Response, &input)
        }
    };
    match computed {
        Ok(want) => mac::verify(&want, got),
        Err(e) => {
            log::warn!("response MAC could not be computed: {e}");
            false
        }
    }
}

/// Field 48 of a settlement request: debit count (n3), debit amount (n12), credit count (n3),
/// credit amount (n12), then `0` (totals in the terminal's currency). The counts are three
/// digits wide on the wire, so they are sent modulo 1000; the host compares them modulo 1000
/// and compares the amounts in full. The `single` layout of `[settlement] totals`.
pub fn settlement_field48(t: &crate::model::BatchTotals) -> String {
    format!(
        "{:03}{:012}{:03}{:012}0",
        t.debit_count % 1000,
        t.debit_amount % 1_000_000_000_000,
        t.credit_count % 1000,
        t.credit_amount % 1_000_000_000_000
    )
}

/// The reconciliation result in a 0510's field 48: the last character `1` balanced,
/// `2` not balanced, `3` error (UnionPay convention). Anything else counts as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementResult {
    /// Host and terminal totals agree.
    Balanced,
    /// They differ: upload the batch.
    NotBalanced,
    /// The host reported an error.
    Error,
}

impl SettlementResult {
    /// Reads the result from a response's field 48 (its last character).
    pub fn from_field48(f: Option<&str>) -> SettlementResult {
        match f.and_then(|s| s.chars().last()) {
            Some('1') => SettlementResult::Balanced,
            Some('2') => SettlementResult::NotBalanced,
            _ => SettlementResult::Error,
        }
    }

    /// The result of a 0510: `95` (reconcile error, ISO 8583:1987 field 39) is "not
    /// balanced"; with `00`, field 48 says, in the profile's layout. UnionPay's 62 digits carry
    /// one result per card class (characters 31 and 62): `2` in either is "not balanced", and
    /// each must otherwise be `1` (balanced) or `0` (nothing of that class to reconcile); a
    /// 31-digit answer is read by its last character. `None`: the host refused (another code).
    pub fn of_reply(
        layout: TotalsLayout,
        response_code: &str,
        field48: Option<&str>,
    ) -> Option<SettlementResult> {
        match ResponseCode::from_field(response_code) {
            Some(ResponseCode::RECONCILE_ERROR) => return Some(SettlementResult::NotBalanced),
            Some(ResponseCode::APPROVED) => {}
            _ => return None,
        }
        let f = field48.unwrap_or_default();
        if layout == TotalsLayout::Single || f.len() < 62 {
            return Some(SettlementResult::from_field48(field48));
        }
        let results = [f.as_bytes().get(30), f.as_bytes().get(61)];
        Some(if results.contains(&Some(&b'2')) {
            SettlementResult::NotBalanced
        } else if results.iter().all(|r| matches!(r, Some(b'0' | b'1'))) {
            SettlementResult::Balanced
        } else {
            SettlementResult::Error
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CardOnFile, TxnState};

    fn record(stan: u32, amount: u64, pan: Option<&str>) -> TxnRecord {
        TxnRecord {
            reference: format!("000001{stan:06}"),
            kind: TxnKind::Sale,
            state: TxnState::Approved,
            amount,
            currency: smartpos_types::Currency::CNY,
            stan,
            batch: 1,
            local_time: "101010".parse().unwrap(),
            local_date: "1122".parse().unwrap(),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: None,
            idempotency_key: None,
            operator: None,
            pan_masked: pan.and_then(|p| Pan::new(p).ok()).map(|p| p.masked()),
            entry_mode: Some("072".parse().unwrap()),
            created_at_ms: 0,
            updated_at_ms: 0,
            card: pan.and_then(CardOnFile::from_text),
        }
    }

    #[test]
    fn a_field_39_that_is_no_response_code_is_an_inconsistent_answer() {
        // Only a profile that redefines field 39 lets the codec pass such a value (every
        // built-in dialect has it `an2`); the reply's code is typed, so it is refused here.
        let profile = Profile::from_toml(
            "base = \"iso87a\"\n\n[[field]]\nnumber = 39\nkind = \"ans\"\nlength = \"fixed\"\nlen = 2\n",
        )
        .expect("profile");
        let id = Identity {
            tid: "10000001".into(),
            mid: "898100012340001".into(),
            currency: smartpos_types::Currency::CNY,
        };
        let expect = Expectation {
            mti: Mti::FINANCIAL_RESPONSE,
            stan: 7,
            amount: None,
            mac: false,
        };
        let answer = |code: &str| {
            let mut m = Message::new(Mti::FINANCIAL_RESPONSE);
            m.set(11, b"000007".to_vec());
            m.set(39, code.as_bytes().to_vec());
            m.set(41, id.tid.clone().into_bytes());
            m.set(42, id.mid.clone().into_bytes());
            profile.dialect.pack(&m).expect("packs")
        };
        for code in ["0-", "5!"] {
            assert!(
                matches!(
                    check_response(&profile, &id, None, &answer(code), &expect),
                    Match::Inconsistent(_)
                ),
                "{code:?}"
            );
        }
        for code in ["51", "0 "] {
            match check_response(&profile, &id, None, &answer(code), &expect) {
                Match::Ok(reply) => assert_eq!(reply.response_code, code),
                other => panic!("{code:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn settlement_answers_are_read_in_the_profiles_layout() {
        use SettlementResult::{Balanced, Error, NotBalanced};
        let dom = "000000003500002000000000000000";
        let fgn = "000000000700001000000000000000";
        let of = |layout, rc, f: &str| SettlementResult::of_reply(layout, rc, Some(f));
        let df = TotalsLayout::DomesticForeign;
        assert_eq!(of(df, "00", &format!("{dom}1{fgn}1")), Some(Balanced));
        assert_eq!(of(df, "00", &format!("{dom}1{fgn}0")), Some(Balanced));
        assert_eq!(of(df, "00", &format!("{dom}2{fgn}1")), Some(NotBalanced));
        assert_eq!(of(df, "00", &format!("{dom}1{fgn}2")), Some(NotBalanced));
        assert_eq!(of(df, "00", &format!("{dom}3{fgn}1")), Some(Error));
        assert_eq!(
            of(df, "00", &format!("{dom}1")),
            Some(Balanced),
            "31 digits"
        );
        assert_eq!(of(df, "95", ""), Some(NotBalanced));
        assert_eq!(of(df, "96", &format!("{dom}1{fgn}1")), None);
        let single = TotalsLayout::Single;
        assert_eq!(
            of(single, "00", "0020000000040000000000000000001"),
            Some(Balanced)
        );
        assert_eq!(
            of(single, "00", "0020000000040000000000000000002"),
            Some(NotBalanced)
        );
        assert_eq!(of(single, "95", ""), Some(NotBalanced));
        assert_eq!(SettlementResult::of_reply(df, "00", None), Some(Error));
    }

    #[test]
    fn upload_records_round_trip_and_bad_ones_are_refused() {
        let recs = [
            record(12, 1_000, Some("6222021234567890128")),
            record(13, 250, Some("4761739001010010")),
            record(14, 99, None),
        ];
        let f48 = upload_field48(&recs);
        assert_eq!(f48.len(), 2 + 3 * 40);
        assert_eq!(
            f48.get(..42),
            Some("030000001206222021234567890128000000001000"),
        );
        let back = parse_upload_field48(&f48).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!((back[1].class.as_str(), back[1].stan), ("01", 13));
        assert_eq!(back[1].pan, "4761739001010010");
        assert_eq!(back[2].pan, "", "no card on file: 20 zeros");
        assert_eq!(back[2].amount, 99);
        let debug = format!("{:?}", back[0]);
        assert!(!debug.contains("6222021234567890128"), "{debug}");
        for bad in [
            "",
            "0",
            "00",
            "09",
            "01x",
            &f48[..f48.len() - 1],
            "010000001206222021234567890128000000001a00",
        ] {
            assert_eq!(parse_upload_field48(bad), None, "{bad:?}");
        }
        let nine: Vec<TxnRecord> = (1..=9).map(|i| record(i, 1, None)).collect();
        assert_eq!(
            parse_upload_field48(&upload_field48(&nine)),
            None,
            "at most 8"
        );
    }

    #[test]
    fn totals_split_domestic_and_foreign_by_iin() {
        let recs = [
            record(1, 1_000, Some("6222021234567890128")),
            record(2, 2_500, Some("6222021234567890128")),
            record(3, 700, Some("4761739001010010")),
            record(4, 5, None),
        ];
        assert_eq!(
            settlement_request_field48(TotalsLayout::DomesticForeign, 1, &recs),
            "00000000350500300000000000000000000000007000010000000000000000"
        );
        assert_eq!(
            settlement_request_field48(TotalsLayout::Single, 1, &recs),
            "0040000000042050000000000000000"
        );
        assert_eq!(CardClass::of(Some("5413330089010434")), CardClass::Foreign);
        assert_eq!(CardClass::of(Some("622202******0128")), CardClass::Domestic);
        assert_eq!(CardClass::of(None), CardClass::Domestic);
    }
}
