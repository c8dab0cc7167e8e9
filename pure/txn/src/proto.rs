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
use smartpos_iso8583::{Message, Mti};
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
                "currency" => Some(id.currency.clone()),
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
    Line {
        msg: MsgType::BatchUpload,
        mti: Mti(320),
        processing_code: None,
        type_code: "00",
        nmic: Some("201"),
        condition: None,
        fields: &[2, 3, 4, 11, 12, 13, 37, 38, 41, 42, 49, 60, 61, 64],
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
}

/// Terminal identity carried in every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Terminal id (field 41, 8 characters).
    pub tid: String,
    /// Merchant id (field 42, 15 characters).
    pub mid: String,
    /// Currency (field 49, ISO 4217 numeric).
    pub currency: String,
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
            None => fill(id, t, f, ctx),
        };
        if let Some(v) = value {
            m.set(f, v);
        }
    }
    Ok(m)
}

/// Computes one field of a request; `None` leaves it out.
fn fill(id: &Identity, t: &Template, field: u8, ctx: &Ctx<'_>) -> Option<Vec<u8>> {
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
        22 => card.map(|c| c.entry_mode.clone().into_bytes()),
        23 => card.and_then(|c| c.card_seq.clone().map(String::into_bytes)),
        25 => t.condition.clone().map(String::into_bytes),
        26 => card.and_then(|c| c.pin_block.as_ref().map(|_| b"12".to_vec())),
        35 => card.and_then(|c| c.track2.as_ref().map(|t2| t2.expose().as_bytes().to_vec())),
        37 => orig.and_then(|o| o.rrn.clone().map(String::into_bytes)),
        38 => orig.and_then(|o| o.auth_code.clone().map(String::into_bytes)),
        41 => Some(id.tid.clone().into_bytes()),
        42 => Some(id.mid.clone().into_bytes()),
        48 => ctx.field48.clone().map(String::into_bytes),
        49 => Some(id.currency.clone().into_bytes()),
        52 => card.and_then(|c| c.pin_block.as_ref().map(|b| b.expose().to_vec())),
        // 53: security control: 2 = ISO format 0 with PAN, 6 = double-length TDES, no magnetic
        // stripe encryption (UnionPay spec field 53 layout).
        53 => card.and_then(|c| c.pin_block.as_ref().map(|_| b"2600000000000000".to_vec())),
        55 => card.and_then(|c| c.icc.as_ref().map(|b| b.expose().to_vec())),
        60 => {
            let mut s = format!("{}{:06}", t.type_code, ctx.batch);
            if let Some(n) = &t.nmic {
                s.push_str(n);
            }
            text(s)
        }
        61 => orig.map(|o| format!("{:06}{:06}{}", o.batch, o.stan, o.local_date).into_bytes()),
        63 => ctx.operator.map(|o| format!("{o:<3}").into_bytes()),
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
    r.set(12, record.local_time.clone().into_bytes());
    r.set(13, record.local_date.clone().into_bytes());
    if let Some(em) = &record.entry_mode {
        r.set(22, em.clone().into_bytes());
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
    r.set(49, id.currency.clone().into_bytes());
    r.set(
        60,
        format!("{}{:06}", t.type_code, record.batch).into_bytes(),
    );
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

/// The response codes the terminal knows: each has its own cashier diagnosis in
/// `smartpos-diagnosis`, whose tests check that its table has exactly these codes.
pub const KNOWN_RESPONSE_CODES: &[&str] = &[
    "00", "08", "10", "11", "16", "01", "02", "03", "04", "05", "06", "07", "09", "12", "13", "14",
    "15", "19", "20", "21", "22", "25", "30", "31", "33", "34", "35", "36", "38", "39", "40", "41",
    "43", "44", "45", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63",
    "64", "65", "66", "67", "68", "75", "76", "77", "78", "79", "90", "91", "92", "93", "94", "95",
    "96", "97", "98", "99", "A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7",
];

/// Whether `code` is one the terminal knows ([`KNOWN_RESPONSE_CODES`]).
pub fn is_known_response_code(code: &str) -> bool {
    KNOWN_RESPONSE_CODES.contains(&code)
}

/// Whether the engine reverses a request of `kind` answered `code` as a possible approval: a
/// code in no table ([`is_known_response_code`]) on a request that may move money
/// ([`TxnKind::needs_reversal`]) might be an approval of the host's own, so the customer may be
/// charged. The engine applies this rule to every answer, and `explain`
/// (`smartpos_diagnosis::for_response_code`) words an unknown code from it: one rule, one place.
pub fn reversed_as_possible_approval(kind: TxnKind, code: &str) -> bool {
    kind.needs_reversal() && !is_approval(code) && !is_known_response_code(code)
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Response code (field 39).
    pub response_code: String,
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
    let Ok(m) = profile.dialect.unpack(frame) else {
        return Match::Garbage;
    };
    let stan_ok = m.text(11).and_then(|s| s.parse::<u32>().ok()) == Some(expect.stan);
    let tid_ok = m.text(41).map(str::trim_end) == Some(id.tid.trim_end());
    let mid_ok = m.text(42).map(str::trim_end) == Some(id.mid.trim_end());
    if m.mti != expect.mti || !stan_ok || !tid_ok || !mid_ok {
        return Match::NotOurs;
    }
    if expect.mac {
        match mak {
            Some(k) if verify_mac_with(profile, k, frame, &m) => {}
            _ => return Match::BadMac,
        }
    }
    let Some(rc) = m.text(39) else {
        return Match::Inconsistent("response code missing");
    };
    if let Some(want) = expect.amount {
        // An approval must echo the amount; a decline may omit it.
        match m.text(4).map(str::parse::<u64>) {
            Some(Ok(a)) if a == want => {}
            None if !is_approval(rc) => {}
            _ => return Match::Inconsistent("amount differs from the request"),
        }
    }
    Match::Ok(Reply {
        response_code: rc.to_owned(),
        rrn: m.text(37).map(|s| s.trim().to_owned()),
        auth_code: m.text(38).map(|s| s.trim().to_owned()),
        field48: m.text(48).map(str::to_owned),
        balance: m.text(54).map(str::to_owned),
        field60: m.text(60).map(str::to_owned),
        field62: m.get(profile.keys.field).map(<[u8]>::to_vec),
        additional: m.text(44).map(str::to_owned),
        icc: m.get(55).map(<[u8]>::to_vec),
        private62: m.get(62).map(<[u8]>::to_vec),
    })
}

/// Field 48 of a settlement request: debit count (n3), debit amount (n12), credit count (n3),
/// credit amount (n12), then `0` (totals in the terminal's currency). The counts are three
/// digits wide on the wire, so they are sent modulo 1000; the host compares them modulo 1000
/// and compares the amounts in full.
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
    /// Reads the result from a response's field 48.
    pub fn from_field48(f: Option<&str>) -> SettlementResult {
        match f.and_then(|s| s.chars().last()) {
            Some('1') => SettlementResult::Balanced,
            Some('2') => SettlementResult::NotBalanced,
            _ => SettlementResult::Error,
        }
    }
}
