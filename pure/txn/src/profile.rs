//! Acquirer profiles: a codec dialect plus the conventions an acquirer layers on it (MAC
//! algorithm, field and range, sign-in key block layout, message templates and constants).
//!
//! The built-in dialects are built-in profiles ([`Profile::by_name`]: `cup`, `iso87b`,
//! `iso87a`). An acquirer profile is a TOML file that starts from one of them and overrides any
//! part ([`Profile::from_toml`]); the format is documented in `docs/profiles.md`. Loading
//! validates everything and reports every error with its line ([`ProfileErrors`]); a profile is
//! only returned when it is entirely valid. No I/O here: the caller reads the file.

use crate::engine::{OpError, WorkingKeys};
use crate::model::{LocalDateTime, TxnKind};
use crate::params::TerminalParams;
use crate::proto::{
    self, Constant, Ctx, Identity, MsgType, PosConventions, SettlementConventions, Template,
    TotalsLayout, UploadLayout,
};
use smartpos_crypto::dukpt::DukptScheme;
use smartpos_crypto::keys::{TdesKey, unwrap_working_key};
use smartpos_crypto::module::{KeyAlgorithm, KeyDelivery, WrappedKey};
use smartpos_crypto::pinblock::PinBlockFormat;
use smartpos_iso8583::{
    BuiltInDialect, Charset, Dialect, DialectError, FieldKind, FieldSpec, LengthType, Mask, Mti,
    MtiEncoding, Pad, PrefixEncoding, SubfieldFormat, SubfieldSpec, TlvLength, TlvSpec,
    ValueEncoding,
};
use smartpos_types::hex;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use thiserror::Error;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// MAC algorithms a profile can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacAlgorithm {
    /// UnionPay POS "ECB" MAC (CUP POS terminal specification). Profile name `cup-ecb`.
    CupEcb,
    /// ANSI X9.19 retail MAC, ISO 9797-1 padding method 1; double-length MAK. `x9.19`.
    X919,
    /// ANSI X9.9 single-DES CBC-MAC, padding method 1; single-length MAK. `x9.9`.
    X99,
    /// AES-CMAC, leftmost 8 bytes: AES DUKPT profiles only (`scheme = "dukpt-aes"`). `cmac`.
    Cmac,
}

/// What the MAC covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacRange {
    /// The packed message from the MTI to just before the MAC field (the MAC field last).
    Message,
    /// The wire bytes (length prefix and value) of these fields, in this order, when present.
    Fields(Vec<u8>),
}

/// A working key delivered at sign-in (the security module's key roles: PIK, MAK and the TDK,
/// which may be absent at the end of a block).
pub use smartpos_crypto::module::KeyRole;

/// One key of a block: its role, the key encrypted under the TMK, its check value.
type KeyEntry<'b> = (KeyRole, &'b [u8], &'b [u8]);

/// The cipher of the master key and of the working keys a sign-in delivers (`[keys]
/// algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyCipher {
    /// TDES (`tdes`, the default).
    Tdes,
    /// SM4, GB/T 32907 (`sm4`): UnionPay national-algorithm terminals; the TMK is an SM4 key,
    /// the MAC is the SM4 form of the UnionPay ECB MAC, the PIN block the 16-byte SM4 block.
    Sm4,
}

/// Where a DUKPT profile carries the KSN and what the derived keys protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DukptLayout {
    /// TDES (X9.24-1) or AES (X9.24-3).
    pub scheme: DukptScheme,
    /// The request field that carries the KSN (in every MACed request, and in every request
    /// with a PIN block).
    pub ksn_field: u8,
    /// Whether the KSN travels as upper-case hex text (a text field) or raw bytes.
    pub ksn_hex: bool,
    /// Whether messages are MACed under the derived keys (`dukpt_mac`, default true); when
    /// false the profile's messages carry no MAC at all.
    pub mac: bool,
}

/// Whether and how track data (fields 35 and 36) is encrypted (`[keys] track_encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrackEncryption {
    /// Tracks travel in the clear (`none`, the default).
    #[default]
    None,
    /// The UnionPay POS convention (`cup-tdk`): the 8 bytes of packed BCD that end before the
    /// last byte, TDES-ECB under the TDK (or the TDES DUKPT data key), field 53's third digit
    /// set to 1 ([`crate::track`]; docs/messages.md "Track data encryption").
    CupTdk,
}

/// Where a transaction's keys come from (`[keys] scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// Working keys delivered at sign-in under the master key (`tmk`, the default).
    Working,
    /// A key per transaction derived in the terminal (`dukpt-tdes`, `dukpt-aes`); no sign-in
    /// key delivery.
    Dukpt(DukptLayout),
}

/// How the sign-in response carries the working keys: each key encrypted under the TMK
/// (TDES-ECB, or SM4-ECB with `algorithm = "sm4"`) followed by its check value (the first bytes
/// of the key's encryption of zeros); and the key options around it: the key scheme (working
/// keys or DUKPT) and the PIN block format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// Field of the sign-in response that holds the block (62).
    pub field: u8,
    /// Key length in bytes: 8 (single DES) or 16 (double-length TDES).
    pub key_len: usize,
    /// Check value length in bytes: 3, 4 or 8.
    pub kcv_len: usize,
    /// Keys in block order; a trailing TDK may be absent from a block.
    pub order: Vec<KeyRole>,
    /// Whether the block travels as upper-case hex text (a text field) or raw bytes.
    pub hex: bool,
    /// Cipher of the master and working keys.
    pub cipher: KeyCipher,
    /// Working keys or DUKPT.
    pub scheme: KeyScheme,
    /// ISO 9564-1 PIN block format of field 52 (`pin_format`): 0 (default), 1 or 3 under a
    /// TDES key, 4 under an AES key (AES DUKPT); SM4 keys use the 16-byte SM4 block (format 0).
    pub pin_format: PinBlockFormat,
    /// Track data encryption (`track_encryption`): none (default) or the UnionPay TDK layout.
    pub track_encryption: TrackEncryption,
}

impl KeyLayout {
    /// The DUKPT layout, when the scheme is DUKPT.
    pub fn dukpt(&self) -> Option<&DukptLayout> {
        match &self.scheme {
            KeyScheme::Dukpt(d) => Some(d),
            KeyScheme::Working => None,
        }
    }

    /// The KSN as its field's content.
    pub fn encode_ksn(&self, ksn: &[u8]) -> Vec<u8> {
        match self.dukpt() {
            Some(d) if d.ksn_hex => hex::encode(ksn).into_bytes(),
            _ => ksn.to_vec(),
        }
    }

    /// The KSN from its field's content (`None` when malformed or of the wrong length).
    pub fn decode_ksn(&self, field: &[u8]) -> Option<Vec<u8>> {
        let d = self.dukpt()?;
        let ksn = if d.ksn_hex {
            hex::decode(std::str::from_utf8(field).ok()?).ok()?
        } else {
            field.to_vec()
        };
        (ksn.len() == d.scheme.ksn_len()).then_some(ksn)
    }

    /// The built-in layout: field 62, PIK MAK TDK, 16-byte keys, 4-byte check values.
    pub fn standard(hex: bool) -> KeyLayout {
        KeyLayout {
            field: 62,
            key_len: 16,
            kcv_len: 4,
            order: vec![KeyRole::Pik, KeyRole::Mak, KeyRole::Tdk],
            hex,
            cipher: KeyCipher::Tdes,
            scheme: KeyScheme::Working,
            pin_format: PinBlockFormat::Iso0,
            track_encryption: TrackEncryption::None,
        }
    }

    fn entry_len(&self) -> usize {
        self.key_len + self.kcv_len
    }

    /// The block's length checked against the layout: the entries present (a trailing TDK
    /// may be absent).
    fn entries<'b>(&self, block: &'b [u8]) -> Result<Vec<KeyEntry<'b>>, OpError> {
        let n = self.order.len();
        let full = n * self.entry_len();
        let short = if self.order.last() == Some(&KeyRole::Tdk) {
            full - self.entry_len()
        } else {
            full
        };
        if block.len() != full && block.len() != short {
            return Err(OpError::KeyBlock {
                reason: "key block length does not match the profile's key layout",
            });
        }
        let mut out = Vec::with_capacity(n);
        for (i, role) in self.order.iter().enumerate() {
            let start = i * self.entry_len();
            let Some(entry) = block.get(start..start + self.entry_len()) else {
                continue; // the optional trailing TDK
            };
            let (enc, cv) = entry.split_at(self.key_len);
            out.push((*role, enc, cv));
        }
        if !(out.iter().any(|e| e.0 == KeyRole::Pik) && out.iter().any(|e| e.0 == KeyRole::Mak)) {
            return Err(OpError::KeyBlock {
                reason: "key block lacks a PIN or MAC key",
            });
        }
        Ok(out)
    }

    /// Terminal side: the key block (as bytes, see [`KeyLayout::decode`]) as the keys a
    /// security module installs, each still encrypted under the master key at
    /// `master_index`, with its check value (the module decrypts and checks them).
    pub fn delivery(&self, block: &[u8], master_index: u32) -> Result<KeyDelivery, OpError> {
        let keys = self
            .entries(block)?
            .into_iter()
            .map(|(role, enc, cv)| WrappedKey {
                role,
                algorithm: match self.cipher {
                    KeyCipher::Tdes => KeyAlgorithm::Tdes,
                    KeyCipher::Sm4 => KeyAlgorithm::Sm4,
                },
                ciphertext: enc.to_vec(),
                check_value: cv.to_vec(),
            })
            .collect();
        Ok(KeyDelivery { master_index, keys })
    }

    /// Host side (the simulator, tests): unwraps a key block (as bytes, see
    /// [`KeyLayout::decode`]) under the TMK into clear keys, checking every check value in
    /// constant time. A terminal never does this: it hands [`KeyLayout::delivery`] to its
    /// security module.
    pub fn unwrap(&self, tmk: &TdesKey, block: &[u8]) -> Result<WorkingKeys, OpError> {
        let (mut pik, mut mak, mut tdk) = (None, None, None);
        for (role, enc, cv) in self.entries(block)? {
            let key = unwrap_working_key(tmk, enc, cv.get(..cv.len().min(4)).unwrap_or(cv))
                .map_err(|_| OpError::KeyCheck)?;
            if !smartpos_crypto::mac::verify(key.check_block().get(..cv.len()).unwrap_or(&[]), cv) {
                return Err(OpError::KeyCheck);
            }
            match role {
                KeyRole::Pik => pik = Some(key),
                KeyRole::Mak => mak = Some(key),
                KeyRole::Tdk => tdk = Some(key),
            }
        }
        match (pik, mak) {
            (Some(pik), Some(mak)) => Ok(WorkingKeys { pik, mak, tdk }),
            _ => Err(OpError::KeyBlock {
                reason: "key block lacks a PIN or MAC key",
            }),
        }
    }

    /// Host side: the block for these keys, given in [`KeyLayout::order`] (each of
    /// [`KeyLayout::key_len`] bytes), encrypted under the TMK with check values.
    pub fn wrap(&self, tmk: &TdesKey, keys: &[TdesKey]) -> Vec<u8> {
        let mut block = Vec::with_capacity(keys.len() * self.entry_len());
        for key in keys {
            let (enc, _) = smartpos_crypto::keys::wrap_working_key(tmk, key);
            block.extend_from_slice(&enc);
            let cv = key.check_block();
            block.extend_from_slice(cv.get(..self.kcv_len).unwrap_or(&cv));
        }
        block
    }

    /// Field content for a block.
    pub fn encode(&self, block: &[u8]) -> Vec<u8> {
        if self.hex {
            hex::encode(block).into_bytes()
        } else {
            block.to_vec()
        }
    }

    /// The block from field content (`None` if the hex form is malformed).
    pub fn decode(&self, field: &[u8]) -> Option<Vec<u8>> {
        if self.hex {
            std::str::from_utf8(field)
                .ok()
                .and_then(|t| hex::decode(t).ok())
        } else {
            Some(field.to_vec())
        }
    }
}

/// A host profile: the codec dialect plus the conventions layered on it. Cheap to clone (the
/// dialect and templates are shared).
#[derive(Debug, Clone)]
pub struct Profile {
    /// Codec table.
    pub dialect: Arc<Dialect>,
    /// MAC algorithm.
    pub mac: MacAlgorithm,
    /// The MAC field (64, or 128 with a secondary bitmap).
    pub mac_field: u8,
    /// What the MAC covers.
    pub mac_range: MacRange,
    /// Sign-in key block layout.
    pub keys: KeyLayout,
    /// Fields a reversal drops from its original (besides the MAC field).
    pub reversal_drop: Vec<u8>,
    /// Constant fields a reversal adds.
    pub reversal_constants: Vec<(u8, Constant)>,
    /// Field 22 for a fallback and 60.4 / 60.5 on financial requests (`[pos]`).
    pub pos: PosConventions,
    /// Settlement totals and batch upload layouts (`[settlement]`).
    pub settlement: SettlementConventions,
    name: Arc<str>,
    templates: Arc<[Template]>,
    /// EMV terminal parameters the profile sets (`[[emv.aid]]`, `[[emv.ca_key]]`), for a
    /// terminal whose journal has none yet (a host download replaces them).
    emv: Option<Arc<TerminalParams>>,
}

/// Fields a reversal never carries: PIN data and track data (see [`proto::reversal_of`]).
const REVERSAL_DROP: &[u8] = &[26, 35, 36, 52, 53];

impl Profile {
    /// The built-in profile of a dialect: `cup` (UnionPay ECB MAC, binary key block), `iso87b`
    /// and `iso87a` (X9.19 MAC, key block as hex text in the `ans` field 62).
    pub fn by_name(name: &str) -> Option<Profile> {
        let builtin = BuiltInDialect::by_name(name)?;
        let (mac, hex) = if builtin.is_unionpay() {
            (MacAlgorithm::CupEcb, false)
        } else {
            (MacAlgorithm::X919, true)
        };
        let dialect = builtin.dialect();
        let (pos, settlement) = proto::builtin_conventions(builtin);
        let mut templates = proto::builtin_templates();
        if builtin.is_unionpay() {
            templates.extend(proto::param_templates());
        }
        Some(Profile {
            dialect: Arc::new(dialect.clone()),
            mac,
            mac_field: 64,
            mac_range: MacRange::Message,
            keys: KeyLayout::standard(hex),
            reversal_drop: REVERSAL_DROP.to_vec(),
            reversal_constants: Vec::new(),
            pos,
            settlement,
            name: Arc::from(name),
            templates: templates.into(),
            emv: None,
        })
    }

    /// The EMV terminal parameters the profile sets, if any.
    pub fn emv_params(&self) -> Option<&TerminalParams> {
        self.emv.as_deref()
    }

    /// Loads an acquirer profile from TOML text (format: `docs/profiles.md`). Every problem is
    /// reported, each with its line; nothing is returned unless all is valid.
    pub fn from_toml(text: &str) -> Result<Profile, ProfileErrors> {
        Loader::new(text).load()
    }

    /// The profile's name (the dialect name for built-ins).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template of a message type.
    pub fn template(&self, msg: MsgType) -> Option<&Template> {
        self.templates.iter().find(|t| t.msg == msg)
    }

    /// All templates.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// Whether a reversal leaves out this field of its original.
    pub fn reversal_drops(&self, field: u8) -> bool {
        field == self.mac_field || self.reversal_drop.contains(&field)
    }

    /// Key block field content for a block.
    pub fn encode_key_block(&self, block: &[u8]) -> Vec<u8> {
        self.keys.encode(block)
    }

    /// The key block from field content (`None` if the hex form is malformed).
    pub fn decode_key_block(&self, field: &[u8]) -> Option<Vec<u8>> {
        self.keys.decode(field)
    }
}

/// One problem in a profile file, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The text is not valid TOML.
    #[error("line {line}: TOML syntax: {message}")]
    Syntax {
        /// Line.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// `base` is not a built-in profile.
    #[error("line {line}: unknown base {base:?} (expected cup, iso87b or iso87a)")]
    UnknownBase {
        /// Line.
        line: usize,
        /// The name given.
        base: String,
    },
    /// Two `[[field]]` entries for the same number.
    #[error("line {line}: field {field} is defined twice (first at line {first})")]
    DuplicateField {
        /// Line of the second definition.
        line: usize,
        /// Field number.
        field: u8,
        /// Line of the first definition.
        first: usize,
    },
    /// A length that cannot work (max < 1, fixed > max, a prefix too small for the maximum).
    #[error("line {line}: field {field}: impossible length: {reason}")]
    ImpossibleLength {
        /// Line.
        line: usize,
        /// Field number.
        field: u8,
        /// What is wrong.
        reason: String,
    },
    /// A charset name that is not `ascii`, `gbk` or `gb18030`.
    #[error("line {line}: field {field}: unknown charset {charset:?} (ascii, gbk, gb18030)")]
    BadCharset {
        /// Line.
        line: usize,
        /// Field number.
        field: u8,
        /// The name given.
        charset: String,
    },
    /// The `[emv]` section does not give valid EMV parameters.
    #[error("line {line}: emv: {reason}")]
    Emv {
        /// Line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A `[messages.X]` name that is not a message type.
    #[error("line {line}: unknown message type {name:?}")]
    UnknownMessage {
        /// Line.
        line: usize,
        /// The name given.
        name: String,
    },
    /// A field used (template, constant, subfields, MAC list, keys) but not defined.
    #[error("line {line}: {context}: field {field} is not defined by the profile")]
    UndefinedField {
        /// Line.
        line: usize,
        /// Where it is used.
        context: String,
        /// Field number.
        field: u8,
    },
    /// The MAC field is not defined as an 8-byte binary field.
    #[error("line {line}: MAC field {field} is not defined as an 8-byte binary field (b8)")]
    MacFieldMissing {
        /// Line.
        line: usize,
        /// Field number.
        field: u8,
    },
    /// A field definition the codec cannot use (kind and encoding do not fit, bad filler...).
    #[error("line {line}: field {field}: {reason}")]
    BadField {
        /// Line.
        line: usize,
        /// Field number.
        field: u8,
        /// What is wrong.
        reason: String,
    },
    /// A value of the wrong type or out of range.
    #[error("line {line}: {key}: {reason}")]
    BadValue {
        /// Line.
        line: usize,
        /// Key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A key the format does not know (a typo).
    #[error("line {line}: unknown key {key:?}")]
    UnknownKey {
        /// Line.
        line: usize,
        /// Key.
        key: String,
    },
    /// A required key is missing.
    #[error("line {line}: {key} is required")]
    Missing {
        /// Line of the table that lacks it.
        line: usize,
        /// Key.
        key: String,
    },
}

impl ProfileError {
    /// The 1-based line the problem is on.
    pub fn line(&self) -> usize {
        match self {
            ProfileError::Syntax { line, .. }
            | ProfileError::UnknownBase { line, .. }
            | ProfileError::DuplicateField { line, .. }
            | ProfileError::ImpossibleLength { line, .. }
            | ProfileError::BadCharset { line, .. }
            | ProfileError::UnknownMessage { line, .. }
            | ProfileError::Emv { line, .. }
            | ProfileError::UndefinedField { line, .. }
            | ProfileError::MacFieldMissing { line, .. }
            | ProfileError::BadField { line, .. }
            | ProfileError::BadValue { line, .. }
            | ProfileError::UnknownKey { line, .. }
            | ProfileError::Missing { line, .. } => *line,
        }
    }
}

/// Every problem found in a profile, sorted by line. Displays one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", render_errors(.0))]
pub struct ProfileErrors(pub Vec<ProfileError>);

fn render_errors(errors: &[ProfileError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

type Val<'i> = Spanned<DeValue<'i>>;

/// Message names of `[messages.X]` (dashes or underscores).
fn message_type(name: &str) -> Option<MsgType> {
    Some(match name.replace('_', "-").as_str() {
        "sign-in" => MsgType::SignIn,
        "sign-off" => MsgType::SignOff,
        "echo" => MsgType::Echo,
        "sale" => MsgType::Txn(TxnKind::Sale),
        "void" => MsgType::Txn(TxnKind::Void),
        "refund" => MsgType::Txn(TxnKind::Refund),
        "preauth" => MsgType::Txn(TxnKind::PreAuth),
        "completion" => MsgType::Txn(TxnKind::Completion),
        "preauth-cancel" => MsgType::Txn(TxnKind::PreAuthCancel),
        "balance" => MsgType::Txn(TxnKind::Balance),
        "reversal" => MsgType::Reversal,
        "settlement" => MsgType::Settlement,
        "batch-upload" => MsgType::BatchUpload,
        "end-of-batch" => MsgType::EndOfBatch,
        "tc-upload" => MsgType::TcUpload,
        "script-advice" => MsgType::ScriptAdvice,
        "capk-query" => MsgType::CaKeyQuery,
        "capk-download" => MsgType::CaKeyDownload,
        "capk-download-end" => MsgType::CaKeyDownloadEnd,
        "aid-query" => MsgType::AidQuery,
        "aid-download" => MsgType::AidDownload,
        "aid-download-end" => MsgType::AidDownloadEnd,
        _ => return None,
    })
}

/// A constant as written in the profile, kept with its line for the final checks.
struct ConstDef {
    line: usize,
    field: u8,
    value: Constant,
}

/// Top-level keys of a profile, one per section.
const ROOT_KEYS: &[&str] = &[
    "name",
    "base",
    "codec",
    "header",
    "field",
    "subfields",
    "mac",
    "keys",
    "constants",
    "messages",
    "emv",
    "pos",
    "settlement",
];

/// Keys of a `[[field]]` table.
const FIELD_KEYS: &[&str] = &[
    "number", "name", "kind", "length", "max", "len", "prefix", "encoding", "align", "pad",
    "charset", "mask", "remove",
];

/// The value of `key` in a table.
fn entry<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a Val<'i>> {
    t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
}

/// Whether field `n` is in the table being built.
fn defined(n: u8, fields: &[Option<FieldSpec>]) -> bool {
    fields.get(usize::from(n)).is_some_and(Option::is_some)
}

/// What `[mac]` settles, with the lines later checks report on.
struct MacSection {
    algorithm: MacAlgorithm,
    field: u8,
    range: MacRange,
    /// Line of `[mac]` (or of its `field` key); 1 when the section is absent.
    line: usize,
    /// Line of `algorithm`, when given.
    algorithm_line: Option<usize>,
    /// Whether the MAC field is an 8-byte binary field of the table.
    ok: bool,
}

/// What `[messages.*]` settles.
struct Messages {
    templates: Vec<Template>,
    reversal_drop: Vec<u8>,
    reversal_constants: Vec<ConstDef>,
    /// Line of each template's `[messages.NAME]` table, by template index.
    lines: HashMap<usize, usize>,
    /// The constants each `[messages.NAME]` table gives, by template index.
    local: HashMap<usize, Vec<ConstDef>>,
}

/// One `[[field]]` table being read: its keys, its line, and the base line it overrides.
struct FieldEntry<'a, 'i> {
    t: &'a DeTable<'i>,
    line: usize,
    number: u8,
    base: Option<FieldSpec>,
    ascii_dialect: bool,
}

impl<'a, 'i> FieldEntry<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Val<'i>> {
        entry(self.t, key)
    }
}

/// Writes `s` as a JSON string.
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a TOML value as JSON (strings escaped, integers in any radix as decimal). Dates and
/// non-finite floats have no JSON form and no place in `[emv]`.
fn json_value(v: &DeValue<'_>, out: &mut String) -> Result<(), String> {
    match v {
        DeValue::String(s) => json_str(s, out),
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| format!("integer `{}` out of range", i.as_str()))?;
            out.push_str(&n.to_string());
        }
        DeValue::Float(f) => {
            let x: f64 = f
                .as_str()
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| format!("number `{}` is not a finite number", f.as_str()))?;
            out.push_str(&x.to_string());
        }
        DeValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        DeValue::Datetime(_) => return Err("a date or time has no meaning here".to_owned()),
        DeValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item.get_ref(), out)?;
            }
            out.push(']');
        }
        DeValue::Table(t) => {
            out.push('{');
            for (i, (k, item)) in t.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k.get_ref(), out);
                out.push(':');
                json_value(item.get_ref(), out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

struct Loader<'t> {
    text: &'t str,
    errors: Vec<ProfileError>,
}

impl<'t> Loader<'t> {
    fn new(text: &'t str) -> Self {
        Loader {
            text,
            errors: Vec::new(),
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        let upto = self.text.as_bytes().get(..span.start).unwrap_or_default();
        upto.iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn bad(&mut self, v: &Val<'_>, key: &str, reason: impl Into<String>) {
        let line = self.line(v.span());
        self.errors.push(ProfileError::BadValue {
            line,
            key: key.to_owned(),
            reason: reason.into(),
        });
    }

    /// Reports keys not in `allowed`.
    fn known_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], prefix: &str) {
        for (k, _) in table.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let line = self.line(k.span());
                self.errors.push(ProfileError::UnknownKey {
                    line,
                    key: format!("{prefix}{}", k.get_ref()),
                });
            }
        }
    }

    fn str<'a>(&mut self, v: &'a Val<'_>, key: &str) -> Option<&'a str> {
        let s = v.get_ref().as_str();
        if s.is_none() {
            self.bad(v, key, "expected a string");
        }
        s
    }

    fn int(&mut self, v: &Val<'_>, key: &str, range: Range<i64>) -> Option<i64> {
        let n = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok());
        match n {
            Some(n) if range.contains(&n) => Some(n),
            Some(n) => {
                self.bad(
                    v,
                    key,
                    format!("{n} is out of range {}..={}", range.start, range.end - 1),
                );
                None
            }
            None => {
                self.bad(v, key, "expected an integer");
                None
            }
        }
    }

    fn field_no(&mut self, v: &Val<'_>, key: &str) -> Option<u8> {
        self.int(v, key, 2..129).and_then(|n| u8::try_from(n).ok())
    }

    /// A field number written as a table key (`[constants] 43 = ...`).
    fn key_field_no(&mut self, k: &Spanned<std::borrow::Cow<'_, str>>, ctx: &str) -> Option<u8> {
        match k.get_ref().parse::<u8>() {
            Ok(n) if (2..=128).contains(&n) => Some(n),
            _ => {
                let line = self.line(k.span());
                self.errors.push(ProfileError::BadValue {
                    line,
                    key: format!("{ctx}.{}", k.get_ref()),
                    reason: "expected a field number 2..=128".into(),
                });
                None
            }
        }
    }

    fn fields_list(&mut self, v: &Val<'_>, key: &str) -> Option<Vec<(u8, usize)>> {
        let Some(arr) = v.get_ref().as_array() else {
            self.bad(v, key, "expected an array of field numbers");
            return None;
        };
        let mut out = Vec::new();
        for item in arr.iter() {
            if let Some(n) = self.field_no(item, key) {
                out.push((n, self.line(item.span())));
            }
        }
        Some(out)
    }

    /// `[[emv.aid]]` and `[[emv.ca_key]]`: the fields of [`crate::params::AidParams`] and
    /// [`crate::params::CaPublicKey`] (bytes as hex text), validated like a host download.
    fn emv(&mut self, v: &Val<'_>) -> Option<TerminalParams> {
        // The section goes through the same JSON reader as the parameters the journal keeps
        // (`serde_json::from_str::<TerminalParams>`), not through the TOML crate's serde
        // deserializer: that one alone was about 65 KB of the Android library (issue 21's size
        // ratchet). One array element per JSON line, so an error's JSON line names the element.
        let line = self.line(v.span());
        let Some(table) = v.get_ref().as_table() else {
            self.errors.push(ProfileError::Emv {
                line,
                reason: "expected a table".to_owned(),
            });
            return None;
        };
        for (k, _) in table.iter() {
            if !["aid", "ca_key"].contains(&k.get_ref().as_ref()) {
                self.errors.push(ProfileError::Emv {
                    line: self.line(k.span()),
                    reason: format!("unknown key `{}` (expected `aid` or `ca_key`)", k.get_ref()),
                });
                return None;
            }
        }
        let mut json = String::from("{");
        // TOML line of JSON line n + 1 (JSON line 1 is the opening brace).
        let mut lines = vec![line];
        for (n, (key, json_key)) in [("aid", "aids"), ("ca_key", "ca_keys")]
            .into_iter()
            .enumerate()
        {
            if n > 0 {
                json.push(',');
            }
            json.push_str(&format!("\"{json_key}\":["));
            let Some(list) = entry(table, key) else {
                json.push(']');
                continue;
            };
            let Some(items) = list.get_ref().as_array() else {
                self.errors.push(ProfileError::Emv {
                    line: self.line(list.span()),
                    reason: format!("`emv.{key}` must be an array of tables ([[emv.{key}]])"),
                });
                return None;
            };
            for (i, item) in items.iter().enumerate() {
                json.push_str(if i == 0 { "\n" } else { ",\n" });
                lines.push(self.line(item.span()));
                if let Err(reason) = json_value(item.get_ref(), &mut json) {
                    self.errors.push(ProfileError::Emv {
                        line: self.line(item.span()),
                        reason,
                    });
                    return None;
                }
            }
            json.push(']');
        }
        json.push('}');
        let params: TerminalParams = match serde_json::from_str(&json) {
            Ok(p) => p,
            Err(e) => {
                let at = lines
                    .get(e.line().saturating_sub(1))
                    .copied()
                    .unwrap_or(line);
                let full = e.to_string();
                // serde_json appends the JSON position, which means nothing to the author.
                let reason = full
                    .rsplit_once(" at line ")
                    .map_or(full.as_str(), |(r, _)| r)
                    .to_owned();
                self.errors.push(ProfileError::Emv { line: at, reason });
                return None;
            }
        };
        if let Err(e) = params.validate() {
            self.errors.push(ProfileError::Emv {
                line,
                reason: e.to_string(),
            });
            return None;
        }
        Some(params)
    }

    /// Reads a profile: one function per TOML section, in the order the sections depend on each
    /// other (base, header, fields, subfields, MAC, keys, constants, messages, EMV), then the
    /// checks that span sections (templates, constants packed into their fields).
    fn load(mut self) -> Result<Profile, ProfileErrors> {
        let (doc, syntax) = DeTable::parse_recoverable(self.text);
        for e in syntax {
            let line = e.span().map_or(1, |s| self.line(s));
            self.errors.push(ProfileError::Syntax {
                line,
                message: e.message().to_owned(),
            });
        }
        if !self.errors.is_empty() {
            return Err(self.finish());
        }
        let root = doc.get_ref();
        self.known_keys(root, ROOT_KEYS, "");
        let get = |key: &str| entry(root, key);

        let base = self.base_section(get("base"));
        let name = match get("name") {
            Some(v) => self.str(v, "name").map(str::to_owned),
            None => None,
        };
        // Without a base nothing else can be checked meaningfully.
        let Some(base) = base else {
            return Err(self.finish());
        };
        let bd = self.codec_section(get("codec"), &base);
        let name = name.unwrap_or_else(|| format!("{}-profile", base.name()));
        let header = match get("header") {
            Some(v) => self.header(
                v,
                bd.default_header(),
                BuiltInDialect::by_name(base.name()).is_some_and(BuiltInDialect::is_unionpay),
            ),
            None => bd.default_header().to_vec(),
        };
        let fields = self.field_section(get("field"), &bd);
        let mut subfields: Vec<(u8, Vec<SubfieldSpec>)> = bd.subfield_layouts().to_vec();
        if let Some(v) = get("subfields") {
            self.subfields(v, &fields, &mut subfields);
        }
        let mac = self.mac_section(get("mac"), &base, &fields);
        let keys = self.keys_section(get("keys"), &base, &fields, &mac);
        let global = match get("constants") {
            Some(v) => self.constants(v, "constants", &fields),
            None => Vec::new(),
        };
        let mut messages = self.messages_section(get("messages"), &base, &fields, mac.field);
        let local = self.check_templates(&mut messages, &global, &mac, &fields);
        self.apply_track_encryption(&keys, &mut messages.templates);
        self.apply_key_scheme(&keys, &mut messages.templates, &mac);

        // Build the dialect; per-field problems were reported with their lines already.
        let specs: Vec<FieldSpec> = fields.into_iter().flatten().collect();
        let dialect = match Dialect::new(
            name.clone(),
            header,
            bd.mti_encoding(),
            bd.bitmap_encoding(),
            specs,
        ) {
            Ok(d) => Some(d.with_subfields(subfields)),
            Err(e) => {
                if self.errors.is_empty() {
                    self.errors.push(ProfileError::BadField {
                        line: 1,
                        field: 0,
                        reason: e.to_string(),
                    });
                }
                None
            }
        };
        if let Some(d) = &dialect {
            self.check_constants(d, &global);
            self.check_constants(d, &local);
            self.check_constants(d, &messages.reversal_constants);
        }
        let emv = get("emv").and_then(|v| self.emv(v));
        let pos = self.pos_section(get("pos"), &base);
        let settlement = self.settlement_section(get("settlement"), &base);
        // Multi-record uploads travel in field 48 of the batch upload.
        if settlement.upload == UploadLayout::Records
            && let Some(t) = messages
                .templates
                .iter()
                .find(|t| t.msg == MsgType::BatchUpload)
            && !t.fields.contains(&48)
        {
            let line = get("settlement").map_or(1, |v| self.line(v.span()));
            self.errors.push(ProfileError::BadValue {
                line,
                key: "settlement.upload".into(),
                reason: "\"records\" needs field 48 in messages.batch-upload".into(),
            });
        }
        match dialect {
            Some(d) if self.errors.is_empty() => Ok(Profile {
                dialect: Arc::new(d),
                mac: mac.algorithm,
                mac_field: mac.field,
                mac_range: mac.range,
                keys,
                reversal_drop: messages.reversal_drop,
                reversal_constants: messages
                    .reversal_constants
                    .into_iter()
                    .map(|c| (c.field, c.value))
                    .collect(),
                pos,
                settlement,
                name: Arc::from(name.as_str()),
                templates: messages.templates.into(),
                emv: emv.map(Arc::new),
            }),
            _ => Err(self.finish()),
        }
    }

    /// `[pos]`: `read_capability` (60.4 on financial requests: one digit, or `""` for no
    /// 60.4 / 60.5) and `fallback_entry` (field 22's two PAN entry digits for a fallback).
    fn pos_section(&mut self, v: Option<&Val<'_>>, base: &Profile) -> PosConventions {
        let mut pos = base.pos.clone();
        let Some(v) = v else { return pos };
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "pos", "expected a table");
            return pos;
        };
        self.known_keys(t, &["read_capability", "fallback_entry"], "pos.");
        for (k, val) in t.iter() {
            match k.get_ref().as_ref() {
                "read_capability" => match self.str(val, "pos.read_capability") {
                    Some("") => pos.read_capability = None,
                    Some(d) if d.len() == 1 && d.bytes().all(|b| b.is_ascii_digit()) => {
                        pos.read_capability = d.chars().next();
                    }
                    Some(_) => self.bad(
                        val,
                        "pos.read_capability",
                        "expected one digit (60.4), or \"\" for none",
                    ),
                    None => {}
                },
                "fallback_entry" => match self.str(val, "pos.fallback_entry") {
                    Some(d) if d.len() == 2 && d.bytes().all(|b| b.is_ascii_digit()) => {
                        pos.fallback_entry = d.to_owned();
                    }
                    Some(_) => self.bad(
                        val,
                        "pos.fallback_entry",
                        "expected two digits (field 22's PAN entry mode)",
                    ),
                    None => {}
                },
                _ => {}
            }
        }
        pos
    }

    /// `[settlement]`: `totals` (`domestic-foreign` | `single`) and `upload` (`records` |
    /// `per-transaction`).
    fn settlement_section(&mut self, v: Option<&Val<'_>>, base: &Profile) -> SettlementConventions {
        let mut set = base.settlement;
        let Some(v) = v else { return set };
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "settlement", "expected a table");
            return set;
        };
        self.known_keys(t, &["totals", "upload"], "settlement.");
        for (k, val) in t.iter() {
            match k.get_ref().as_ref() {
                "totals" => match self.str(val, "settlement.totals") {
                    Some("domestic-foreign") => set.totals = TotalsLayout::DomesticForeign,
                    Some("single") => set.totals = TotalsLayout::Single,
                    Some(other) => self.bad(
                        val,
                        "settlement.totals",
                        format!("unknown {other:?} (domestic-foreign, single)"),
                    ),
                    None => {}
                },
                "upload" => match self.str(val, "settlement.upload") {
                    Some("records") => set.upload = UploadLayout::Records,
                    Some("per-transaction") => set.upload = UploadLayout::PerTransaction,
                    Some(other) => self.bad(
                        val,
                        "settlement.upload",
                        format!("unknown {other:?} (records, per-transaction)"),
                    ),
                    None => {}
                },
                _ => {}
            }
        }
        set
    }

    /// `base = "cup" | "iso87b" | "iso87a"`: the built-in profile everything else overrides.
    fn base_section(&mut self, v: Option<&Val<'_>>) -> Option<Profile> {
        let Some(v) = v else {
            self.errors.push(ProfileError::Missing {
                line: 1,
                key: "base".into(),
            });
            return None;
        };
        let name = self.str(v, "base")?.to_owned();
        let line = self.line(v.span());
        let base = Profile::by_name(&name);
        if base.is_none() {
            self.errors
                .push(ProfileError::UnknownBase { line, base: name });
        }
        base
    }

    /// `[codec]`: `convention`, a named set of encoding conventions of the base dialect
    /// (`iso87b`: `jpos`, the default, or `smartpos-0.1`); the base's table with its lines.
    fn codec_section(&mut self, v: Option<&Val<'_>>, base: &Profile) -> Arc<Dialect> {
        let bd = base.dialect.clone();
        let Some(v) = v else {
            return bd;
        };
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "codec", "expected a table");
            return bd;
        };
        self.known_keys(t, &["convention"], "codec.");
        let Some(cv) = entry(t, "convention") else {
            return bd;
        };
        let Some(name) = self.str(cv, "codec.convention") else {
            return bd;
        };
        match bd.with_convention(base.name(), name) {
            Some(d) => Arc::new(d),
            None => {
                let known = Dialect::conventions(base.name());
                let reason = if known.is_empty() {
                    format!("base {:?} has one convention only", base.name())
                } else {
                    format!("unknown {name:?} ({})", known.join(", "))
                };
                self.bad(cv, "codec.convention", reason);
                bd
            }
        }
    }

    /// `[[field]]`: the base dialect's table with each entry applied ([`Loader::field`]).
    fn field_section(&mut self, v: Option<&Val<'_>>, bd: &Dialect) -> Vec<Option<FieldSpec>> {
        let mut fields: Vec<Option<FieldSpec>> = vec![None; 129];
        for f in bd.field_specs() {
            if let Some(slot) = fields.get_mut(usize::from(f.number)) {
                *slot = Some(f.clone());
            }
        }
        let mut lines: HashMap<u8, usize> = HashMap::new();
        if let Some(v) = v {
            match v.get_ref().as_array() {
                Some(arr) => {
                    for item in arr.iter() {
                        self.field(item, bd, &mut fields, &mut lines);
                    }
                }
                None => self.bad(v, "field", "expected [[field]] tables"),
            }
        }
        fields
    }

    /// `[mac]`: algorithm, field and range (`message`, or `fields` with a list), then whether
    /// the MAC field is an 8-byte binary field of the table.
    fn mac_section(
        &mut self,
        v: Option<&Val<'_>>,
        base: &Profile,
        fields: &[Option<FieldSpec>],
    ) -> MacSection {
        let mut mac = MacSection {
            algorithm: base.mac,
            field: base.mac_field,
            range: base.mac_range.clone(),
            line: 1,
            algorithm_line: None,
            ok: false,
        };
        if let Some(v) = v {
            mac.line = self.line(v.span());
            match v.get_ref().as_table() {
                Some(t) => self.mac_table(t, fields, &mut mac),
                None => self.bad(v, "mac", "expected a table"),
            }
        }
        mac.ok = fields
            .get(usize::from(mac.field))
            .and_then(Option::as_ref)
            .is_some_and(|s| s.kind == FieldKind::B && s.length == LengthType::Fixed(8));
        if !mac.ok {
            self.errors.push(ProfileError::MacFieldMissing {
                line: mac.line,
                field: mac.field,
            });
        }
        mac
    }

    fn mac_table(&mut self, t: &DeTable<'_>, fields: &[Option<FieldSpec>], mac: &mut MacSection) {
        self.known_keys(t, &["algorithm", "field", "range", "fields"], "mac.");
        for (k, val) in t.iter() {
            match k.get_ref().as_ref() {
                "algorithm" => {
                    mac.algorithm_line = Some(self.line(val.span()));
                    match self.str(val, "mac.algorithm") {
                        Some("cup-ecb") => mac.algorithm = MacAlgorithm::CupEcb,
                        Some("x9.19") => mac.algorithm = MacAlgorithm::X919,
                        Some("x9.9") => mac.algorithm = MacAlgorithm::X99,
                        // Checked against the key scheme in `keys_section`.
                        Some("cmac") => mac.algorithm = MacAlgorithm::Cmac,
                        Some(other) => self.bad(
                            val,
                            "mac.algorithm",
                            format!("unknown {other:?} (cup-ecb, x9.19, x9.9, cmac)"),
                        ),
                        None => {}
                    }
                }
                "field" => {
                    if let Some(n) = self.field_no(val, "mac.field") {
                        mac.field = n;
                        mac.line = self.line(val.span());
                    }
                }
                "range" => match self.str(val, "mac.range") {
                    Some("message") => mac.range = MacRange::Message,
                    Some("fields") => mac.range = MacRange::Fields(Vec::new()),
                    Some(other) => self.bad(
                        val,
                        "mac.range",
                        format!("unknown {other:?} (message, fields)"),
                    ),
                    None => {}
                },
                _ => {}
            }
        }
        let MacRange::Fields(list) = &mut mac.range else {
            return;
        };
        let Some(val) = entry(t, "fields") else {
            self.errors.push(ProfileError::Missing {
                line: mac.line,
                key: "mac.fields (with range = \"fields\")".into(),
            });
            return;
        };
        for (n, line) in self.fields_list(val, "mac.fields").unwrap_or_default() {
            if !defined(n, fields) {
                self.errors.push(ProfileError::UndefinedField {
                    line,
                    context: "mac.fields".into(),
                    field: n,
                });
            }
            list.push(n);
        }
        if list.is_empty() {
            self.bad(val, "mac.fields", "empty: the MAC would cover nothing");
        }
    }

    /// `[keys]` ([`Loader::keys`]), then whether the block fits its field and the MAC
    /// algorithm suits the key length.
    fn keys_section(
        &mut self,
        v: Option<&Val<'_>>,
        base: &Profile,
        fields: &[Option<FieldSpec>],
        mac: &MacSection,
    ) -> KeyLayout {
        let mut keys = base.keys.clone();
        let mut keys_line = 1;
        if let Some(v) = v {
            keys_line = self.line(v.span());
            self.keys(v, &mut keys);
            self.dukpt_options(v, &mut keys, fields);
        }
        self.check_key_options(&keys, mac, keys_line);
        self.check_track_encryption(&keys, fields, keys_line);
        // Field 52 must hold the PIN block the options make: 16 bytes for format 4 and SM4.
        let block = if keys.pin_format == PinBlockFormat::Iso4 || keys.cipher == KeyCipher::Sm4 {
            16
        } else {
            8
        };
        if let Some(spec) = fields.get(52).and_then(Option::as_ref)
            && spec.length != LengthType::Fixed(block)
        {
            self.errors.push(ProfileError::BadValue {
                line: keys_line,
                key: "keys.pin_format".into(),
                reason: format!(
                    "the PIN block is {block} bytes: define field 52 as fixed, len = {block}"
                ),
            });
        }
        match fields.get(usize::from(keys.field)).and_then(Option::as_ref) {
            None => self.errors.push(ProfileError::UndefinedField {
                line: keys_line,
                context: "keys.field".into(),
                field: keys.field,
            }),
            Some(spec) => {
                let block = keys.order.len() * keys.entry_len() * if keys.hex { 2 } else { 1 };
                if spec.is_text() != keys.hex {
                    self.errors.push(ProfileError::BadValue {
                        line: keys_line,
                        key: "keys.encoding".into(),
                        reason: format!(
                            "field {} is a {} field: use encoding = \"{}\"",
                            keys.field,
                            if spec.is_text() { "text" } else { "binary" },
                            if spec.is_text() { "hex" } else { "binary" }
                        ),
                    });
                } else if block > spec.length.max() {
                    self.errors.push(ProfileError::BadValue {
                        line: keys_line,
                        key: "keys".into(),
                        reason: format!(
                            "a {block}-unit key block does not fit field {} (max {})",
                            keys.field,
                            spec.length.max()
                        ),
                    });
                }
            }
        }
        let alg_line = mac.algorithm_line.unwrap_or(mac.line);
        match (mac.algorithm, keys.key_len) {
            (MacAlgorithm::X919, 8) => self.errors.push(ProfileError::BadValue {
                line: alg_line,
                key: "mac.algorithm".into(),
                reason: "x9.19 needs 16-byte keys (keys.key_length = 16)".into(),
            }),
            (MacAlgorithm::X99, 16) => self.errors.push(ProfileError::BadValue {
                line: alg_line,
                key: "mac.algorithm".into(),
                reason: "x9.9 needs 8-byte keys (keys.key_length = 8)".into(),
            }),
            _ => {}
        }
        keys
    }

    /// `ksn_field` and `dukpt_mac`, which only a DUKPT scheme takes: the KSN field must be
    /// defined and hold a KSN (10 bytes for TDES, 12 for AES; twice that in a text field, where
    /// it travels as hex).
    fn dukpt_options(&mut self, v: &Val<'_>, keys: &mut KeyLayout, fields: &[Option<FieldSpec>]) {
        let Some(t) = v.get_ref().as_table() else {
            return;
        };
        let line = self.line(v.span());
        let get = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v);
        let KeyScheme::Dukpt(d) = &mut keys.scheme else {
            for key in ["ksn_field", "dukpt_mac"] {
                if let Some(val) = get(key) {
                    self.bad(
                        val,
                        &format!("keys.{key}"),
                        "only with scheme = \"dukpt-tdes\" or \"dukpt-aes\"",
                    );
                }
            }
            return;
        };
        if let Some(val) = get("dukpt_mac") {
            match val.get_ref().as_bool() {
                Some(b) => d.mac = b,
                None => self.bad(val, "keys.dukpt_mac", "expected true or false"),
            }
        }
        let Some(val) = get("ksn_field") else {
            self.errors.push(ProfileError::Missing {
                line,
                key: "keys.ksn_field (a DUKPT scheme sends the KSN in a field)".into(),
            });
            return;
        };
        let Some(n) = self.field_no(val, "keys.ksn_field") else {
            return;
        };
        d.ksn_field = n;
        let Some(spec) = fields.get(usize::from(n)).and_then(Option::as_ref) else {
            self.errors.push(ProfileError::UndefinedField {
                line: self.line(val.span()),
                context: "keys.ksn_field".into(),
                field: n,
            });
            return;
        };
        d.ksn_hex = spec.is_text();
        let need = d.scheme.ksn_len() * if d.ksn_hex { 2 } else { 1 };
        let fits = match spec.length {
            LengthType::Fixed(len) => len == need,
            other => other.max() >= need,
        };
        if !fits {
            self.bad(
                val,
                "keys.ksn_field",
                format!(
                    "field {n} cannot hold a {}-unit KSN ({} as {})",
                    need,
                    d.scheme.name(),
                    if d.ksn_hex { "hex text" } else { "bytes" }
                ),
            );
        }
    }

    /// The key options against each other and the MAC algorithm: SM4 keys take the UnionPay
    /// MAC and PIN block; PIN block format 4 and CMAC need AES keys (AES DUKPT); TDES DUKPT
    /// MACs with X9.19 or the UnionPay ECB MAC.
    fn check_key_options(&mut self, keys: &KeyLayout, mac: &MacSection, line: usize) {
        let alg_line = mac.algorithm_line.unwrap_or(mac.line);
        let bad = |this: &mut Self, line: usize, key: &str, reason: &str| {
            this.errors.push(ProfileError::BadValue {
                line,
                key: key.into(),
                reason: reason.into(),
            });
        };
        let dukpt = keys.dukpt().copied();
        let aes = matches!(dukpt, Some(d) if d.scheme == DukptScheme::Aes);
        if keys.cipher == KeyCipher::Sm4 {
            if dukpt.is_some() {
                bad(
                    self,
                    line,
                    "keys.algorithm",
                    "sm4 working keys come at sign-in: use scheme = \"tmk\"",
                );
            }
            if keys.key_len != 16 {
                bad(self, line, "keys.key_length", "an SM4 key is 16 bytes");
            }
            if mac.algorithm != MacAlgorithm::CupEcb {
                bad(
                    self,
                    alg_line,
                    "mac.algorithm",
                    "SM4 keys take cup-ecb (its SM4 form)",
                );
            }
            if keys.pin_format != PinBlockFormat::Iso0 {
                bad(
                    self,
                    line,
                    "keys.pin_format",
                    "SM4 keys take the 16-byte SM4 PIN block (pin_format = 0)",
                );
            }
            return;
        }
        match (keys.pin_format, aes) {
            (PinBlockFormat::Iso4, false) => bad(
                self,
                line,
                "keys.pin_format",
                "format 4 needs an AES PIN key: scheme = \"dukpt-aes\"",
            ),
            (f, true) if f != PinBlockFormat::Iso4 => bad(
                self,
                line,
                "keys.pin_format",
                "AES DUKPT PIN blocks are format 4",
            ),
            _ => {}
        }
        let mac_on = dukpt.is_none_or(|d| d.mac);
        match (mac.algorithm, aes) {
            (MacAlgorithm::Cmac, false) if mac_on => bad(
                self,
                alg_line,
                "mac.algorithm",
                "cmac needs AES keys: scheme = \"dukpt-aes\"",
            ),
            (other, true) if mac_on && other != MacAlgorithm::Cmac => {
                bad(self, alg_line, "mac.algorithm", "AES DUKPT MACs are cmac")
            }
            (MacAlgorithm::X99, false) if dukpt.is_some() && mac_on => bad(
                self,
                alg_line,
                "mac.algorithm",
                "TDES DUKPT MAC keys are double length: x9.19 or cup-ecb",
            ),
            _ => {}
        }
    }

    /// `track_encryption = "cup-tdk"` against the keys and the fields: the key that encrypts
    /// must exist (a TDK in the sign-in block, or a TDES DUKPT data key), the cipher must be
    /// TDES (the layout with 16-byte blocks, SM4 or AES, is not publicly documented: refused),
    /// fields 35 and 36 must be able to carry the ciphertext's hex digits, and field 53 must
    /// carry the flag (16 digits).
    fn check_track_encryption(
        &mut self,
        keys: &KeyLayout,
        fields: &[Option<FieldSpec>],
        line: usize,
    ) {
        if keys.track_encryption != TrackEncryption::CupTdk {
            return;
        }
        let mut bad = |reason: String| {
            self.errors.push(ProfileError::BadValue {
                line,
                key: "keys.track_encryption".into(),
                reason,
            })
        };
        if keys.cipher == KeyCipher::Sm4 {
            bad(
                "cup-tdk is TDES: the SM4 track layout (16-byte blocks) is not publicly \
                 documented, so SM4 keys cannot encrypt tracks (docs/messages.md)"
                    .into(),
            );
        }
        match keys.dukpt() {
            Some(d) if d.scheme == DukptScheme::Aes => bad(
                "cup-tdk is TDES: the AES DUKPT track layout (16-byte blocks) is not publicly \
                 documented (docs/messages.md)"
                    .into(),
            ),
            Some(_) => {}
            None if !keys.order.contains(&KeyRole::Tdk) => {
                bad("cup-tdk encrypts under the TDK: add \"tdk\" to keys.order".into())
            }
            None => {}
        }
        for f in crate::track::TRACK_FIELDS {
            if let Some(spec) = fields.get(usize::from(f)).and_then(Option::as_ref)
                && !matches!(spec.kind, FieldKind::Z | FieldKind::An | FieldKind::Ans)
            {
                bad(format!(
                    "field {f} cannot carry encrypted track data (hex digits A-F): declare it \
                     type = \"z\""
                ));
            }
        }
        match fields
            .get(usize::from(crate::track::SECURITY_FIELD))
            .and_then(Option::as_ref)
        {
            Some(spec) if spec.length == LengthType::Fixed(16) && spec.kind == FieldKind::N => {}
            _ => bad(
                "the track flag travels in field 53: define it as type = \"n\", len = 16".into(),
            ),
        }
    }

    /// With track encryption, field 53 (the flag) joins every template that carries a track
    /// field (the engine fills it when it seals a request with track data).
    fn apply_track_encryption(&mut self, keys: &KeyLayout, templates: &mut [Template]) {
        if keys.track_encryption != TrackEncryption::CupTdk {
            return;
        }
        let sec = crate::track::SECURITY_FIELD;
        for t in templates.iter_mut() {
            if crate::track::TRACK_FIELDS
                .iter()
                .any(|f| t.fields.contains(f))
                && !t.fields.contains(&sec)
            {
                t.fields.push(sec);
                t.fields.sort_unstable();
            }
        }
    }

    /// A DUKPT profile's templates: the KSN field joins every request that carries a MAC or a
    /// PIN block, or track data to encrypt (the engine fills it when it seals); with
    /// `dukpt_mac = false` no message carries a MAC.
    fn apply_key_scheme(&mut self, keys: &KeyLayout, templates: &mut [Template], mac: &MacSection) {
        let Some(d) = keys.dukpt().copied() else {
            return;
        };
        if d.ksn_field == 0 {
            return; // Reported as missing already.
        }
        let tracks = keys.track_encryption == TrackEncryption::CupTdk;
        for t in templates.iter_mut() {
            let carries_track = crate::track::TRACK_FIELDS
                .iter()
                .any(|f| t.fields.contains(f));
            if !(t.mac || t.fields.contains(&52) || (tracks && carries_track)) {
                continue;
            }
            if !d.mac {
                t.mac = false;
                t.fields.retain(|&f| f != mac.field);
            }
            if t.fields.contains(&d.ksn_field) {
                self.errors.push(ProfileError::BadValue {
                    line: 1,
                    key: "keys.ksn_field".into(),
                    reason: format!(
                        "field {} already carries something else in messages.{}",
                        d.ksn_field,
                        msg_name(t.msg)
                    ),
                });
                continue;
            }
            t.fields.push(d.ksn_field);
            t.fields.sort_unstable();
            if t.mac && mac.range == MacRange::Message && d.ksn_field > mac.field {
                self.errors.push(ProfileError::BadValue {
                    line: 1,
                    key: "keys.ksn_field".into(),
                    reason: format!(
                        "field {} would follow the MAC field {} in {}",
                        d.ksn_field,
                        mac.field,
                        msg_name(t.msg)
                    ),
                });
            }
        }
    }

    /// `[messages.NAME]`: the base's templates (the MAC field renamed when `[mac] field` moves
    /// it) with each table applied; `[messages.reversal]` sets what reversals drop and add.
    fn messages_section(
        &mut self,
        v: Option<&Val<'_>>,
        base: &Profile,
        fields: &[Option<FieldSpec>],
        mac_field: u8,
    ) -> Messages {
        let mut templates = base.templates().to_vec();
        if mac_field != 64 {
            for t in &mut templates {
                for f in &mut t.fields {
                    if *f == 64 {
                        *f = mac_field;
                    }
                }
            }
        }
        let mut out = Messages {
            templates,
            reversal_drop: base.reversal_drop.clone(),
            reversal_constants: Vec::new(),
            lines: HashMap::new(),
            local: HashMap::new(),
        };
        let Some(v) = v else {
            return out;
        };
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "messages", "expected [messages.NAME] tables");
            return out;
        };
        for (k, mv) in t.iter() {
            let line = self.line(k.span());
            let Some(msg) = message_type(k.get_ref()) else {
                self.errors.push(ProfileError::UnknownMessage {
                    line,
                    name: k.get_ref().to_string(),
                });
                continue;
            };
            let ctx = format!("messages.{}", k.get_ref());
            let Some(mt) = mv.get_ref().as_table() else {
                self.bad(mv, &ctx, "expected a table");
                continue;
            };
            if msg == MsgType::Reversal {
                self.reversal_table(mt, &ctx, fields, &mut out);
                continue;
            }
            let idx = match out.templates.iter().position(|t| t.msg == msg) {
                Some(i) => i,
                // A parameter download message the base lacks: named, so added.
                None => match proto::param_templates().into_iter().find(|t| t.msg == msg) {
                    Some(t) => {
                        out.templates.push(t);
                        out.templates.len() - 1
                    }
                    None => continue,
                },
            };
            out.lines.insert(idx, line);
            if let Some(t) = out.templates.get_mut(idx) {
                let consts = self.template(mt, &ctx, t, fields);
                out.local.insert(idx, consts);
            }
        }
        out
    }

    /// `[messages.reversal]`: `drop`, `constants` and `tlv` (no placeholders).
    fn reversal_table(
        &mut self,
        mt: &DeTable<'_>,
        ctx: &str,
        fields: &[Option<FieldSpec>],
        out: &mut Messages,
    ) {
        self.known_keys(mt, &["drop", "constants", "tlv"], &format!("{ctx}."));
        if let Some(d) = entry(mt, "drop") {
            out.reversal_drop = self
                .fields_list(d, &format!("{ctx}.drop"))
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
        }
        out.reversal_constants = self.template_constants(mt, ctx, fields);
        if let Some(c) = out
            .reversal_constants
            .iter()
            .find(|c| matches!(c.value, Constant::Text(ref s) if s.contains('{')))
        {
            self.errors.push(ProfileError::BadValue {
                line: c.line,
                key: format!("{ctx}.constants.{}", c.field),
                reason: "reversal constants cannot use placeholders".into(),
            });
        }
    }

    /// Gives every template its constants (the `[constants]` table's, then its own) and checks
    /// that each of its fields is defined, has a value, and sits before a message-range MAC
    /// field. Returns the templates' own constants, for [`Loader::check_constants`].
    fn check_templates(
        &mut self,
        messages: &mut Messages,
        global: &[ConstDef],
        mac: &MacSection,
        fields: &[Option<FieldSpec>],
    ) -> Vec<ConstDef> {
        let mut all_local: Vec<ConstDef> = Vec::new();
        for (idx, t) in messages.templates.iter_mut().enumerate() {
            let line = messages.lines.get(&idx).copied().unwrap_or(1);
            let locals = messages.local.remove(&idx).unwrap_or_default();
            let mut consts: Vec<(u8, Constant)> = Vec::new();
            for c in global.iter().filter(|c| t.fields.contains(&c.field)) {
                consts.push((c.field, c.value.clone()));
            }
            for c in locals {
                consts.retain(|(n, _)| *n != c.field);
                if !t.fields.contains(&c.field) {
                    t.fields.push(c.field);
                }
                consts.push((c.field, c.value.clone()));
                all_local.push(c);
            }
            t.fields.sort_unstable();
            t.fields.dedup();
            t.constants = consts;
            let name = msg_name(t.msg);
            for &f in &t.fields {
                // An undefined MAC field is reported once, as MacFieldMissing.
                if f == mac.field && !mac.ok {
                    continue;
                }
                if !defined(f, fields) {
                    self.errors.push(ProfileError::UndefinedField {
                        line,
                        context: format!("messages.{name}"),
                        field: f,
                    });
                } else if f != mac.field
                    && !proto::COMPUTED_FIELDS.contains(&f)
                    && t.constant(f).is_none()
                {
                    self.errors.push(ProfileError::BadValue {
                        line,
                        key: format!("messages.{name}"),
                        reason: format!("field {f} has no value: give it a constant"),
                    });
                }
                if t.mac && mac.range == MacRange::Message && f > mac.field {
                    self.errors.push(ProfileError::BadValue {
                        line,
                        key: format!("messages.{name}"),
                        reason: format!("field {f} would follow the MAC field {}", mac.field),
                    });
                }
            }
        }
        all_local
    }

    fn finish(mut self) -> ProfileErrors {
        self.errors.sort_by_key(ProfileError::line);
        self.errors.dedup();
        ProfileErrors(self.errors)
    }

    fn hex_bytes(&mut self, v: &Val<'_>, key: &str) -> Option<Vec<u8>> {
        let s = self.str(v, key)?;
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        match hex::decode(&clean) {
            Ok(b) => Some(b),
            Err(_) => {
                self.bad(v, key, "expected hex digits");
                None
            }
        }
    }

    fn header(&mut self, v: &Val<'_>, base: &[u8], split_cup: bool) -> Vec<u8> {
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "header", "expected a table");
            return base.to_vec();
        };
        self.known_keys(t, &["hex", "tpdu", "header"], "header.");
        // CUP: 5-byte TPDU then the 6-byte header; ISO 8583:1987 dialects have neither.
        let cut = if split_cup { 5.min(base.len()) } else { 0 };
        let (mut tpdu, mut rest) = (
            base.get(..cut).unwrap_or_default().to_vec(),
            base.get(cut..).unwrap_or_default().to_vec(),
        );
        let mut full = None;
        for (k, val) in t.iter() {
            let key = format!("header.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "hex" => full = self.hex_bytes(val, &key),
                "tpdu" => {
                    if let Some(b) = self.hex_bytes(val, &key) {
                        tpdu = b;
                    }
                }
                "header" => {
                    if let Some(b) = self.hex_bytes(val, &key) {
                        rest = b;
                    }
                }
                _ => {}
            }
        }
        full.unwrap_or_else(|| [tpdu, rest].concat())
    }

    /// One `[[field]]` table: a new field, or a base field with some keys overridden (`remove =
    /// true` takes it out). One function per key group, each reporting its own errors; the
    /// first group that cannot give a value ends the entry.
    fn field(
        &mut self,
        item: &Val<'_>,
        bd: &Dialect,
        fields: &mut [Option<FieldSpec>],
        lines: &mut HashMap<u8, usize>,
    ) {
        let line = self.line(item.span());
        let Some(t) = item.get_ref().as_table() else {
            self.bad(item, "field", "expected a table");
            return;
        };
        self.known_keys(t, FIELD_KEYS, "field.");
        let Some(number) = self.field_number(t, line, lines) else {
            return;
        };
        let Some(slot) = fields.get_mut(usize::from(number)) else {
            return;
        };
        if let Some(r) = entry(t, "remove") {
            match r.get_ref().as_bool() {
                Some(true) => {
                    *slot = None;
                    return;
                }
                Some(false) => {}
                None => self.bad(r, "field.remove", "expected true or false"),
            }
        }
        let f = FieldEntry {
            t,
            line,
            number,
            base: slot.clone(),
            ascii_dialect: bd.mti_encoding() == MtiEncoding::Ascii,
        };
        let Some(kind) = self.field_kind(&f) else {
            return;
        };
        let Some((length, size_line)) = self.field_length(&f) else {
            return;
        };
        let Some(prefix) = self.field_prefix(&f) else {
            return;
        };
        let Some(encoding) = self.field_encoding(&f, kind) else {
            return;
        };
        if !self.field_capacity(&f, length, prefix, encoding, size_line) {
            return;
        }
        let Some(charset) = self.field_charset(&f) else {
            return;
        };
        let Some(mask) = self.field_mask(&f) else {
            return;
        };
        let name = match entry(t, "name") {
            Some(v) => self.str(v, "field.name").map(str::to_owned),
            None => None,
        }
        .or_else(|| f.base.as_ref().map(|b| b.name.to_string()))
        .unwrap_or_else(|| format!("Private field {number}"));
        let spec = FieldSpec {
            number,
            name: name.into(),
            kind,
            length,
            prefix,
            encoding,
            mask,
            charset,
        };
        // The codec's own table checks, on this one line, so the error carries its line.
        if let Err(e) = Dialect::new(
            "check",
            Vec::new(),
            bd.mti_encoding(),
            bd.bitmap_encoding(),
            vec![spec.clone()],
        ) {
            let reason = match e {
                DialectError::CharsetMismatch { .. } => {
                    "a gbk/gb18030 charset needs an an/ans/ns field with ascii encoding".to_owned()
                }
                other => other.to_string(),
            };
            self.errors.push(ProfileError::BadField {
                line,
                field: number,
                reason,
            });
            return;
        }
        *slot = Some(spec);
    }

    /// `number`: required, 2..=128, once per profile.
    fn field_number(
        &mut self,
        t: &DeTable<'_>,
        line: usize,
        lines: &mut HashMap<u8, usize>,
    ) -> Option<u8> {
        let Some(nv) = entry(t, "number") else {
            self.errors.push(ProfileError::Missing {
                line,
                key: "field.number".into(),
            });
            return None;
        };
        let number = self.field_no(nv, "field.number")?;
        if let Some(&first) = lines.get(&number) {
            self.errors.push(ProfileError::DuplicateField {
                line: self.line(nv.span()),
                field: number,
                first,
            });
            return None;
        }
        lines.insert(number, self.line(nv.span()));
        Some(number)
    }

    /// `kind`: the character class; the base field's when absent (required for a new field).
    fn field_kind(&mut self, f: &FieldEntry<'_, '_>) -> Option<FieldKind> {
        let Some(v) = f.get("kind") else {
            let kind = f.base.as_ref().map(|b| b.kind);
            if kind.is_none() {
                self.errors.push(ProfileError::Missing {
                    line: f.line,
                    key: format!("field.kind (field {} is new)", f.number),
                });
            }
            return kind;
        };
        match self.str(v, "field.kind")? {
            "n" => Some(FieldKind::N),
            "an" => Some(FieldKind::An),
            "ans" => Some(FieldKind::Ans),
            "ns" => Some(FieldKind::Ns),
            "x+n" => Some(FieldKind::Xn),
            "z" => Some(FieldKind::Z),
            "b" => Some(FieldKind::B),
            other => {
                self.bad(
                    v,
                    "field.kind",
                    format!("unknown {other:?} (n an ans ns x+n z b)"),
                );
                None
            }
        }
    }

    /// `length` = fixed | llvar | lllvar, with `len` (fixed) or `max` (variable); the base
    /// field's rule and size fill what is absent. Returns the rule and the line of its size.
    fn field_length(&mut self, f: &FieldEntry<'_, '_>) -> Option<(LengthType, usize)> {
        let number = f.number;
        let length_kind = match f.get("length") {
            Some(v) => match self.str(v, "field.length")? {
                "fixed" => Some(0),
                "llvar" => Some(2),
                "lllvar" => Some(3),
                other => {
                    self.bad(
                        v,
                        "field.length",
                        format!("unknown {other:?} (fixed, llvar, lllvar)"),
                    );
                    return None;
                }
            },
            None => f.base.as_ref().map(|b| b.length.prefix_digits()),
        };
        let max = self.field_int(f, "max");
        let len = self.field_int(f, "len");
        let Some(length_kind) = length_kind else {
            self.errors.push(ProfileError::Missing {
                line: f.line,
                key: format!("field.length (field {number} is new)"),
            });
            return None;
        };
        let size = match (length_kind, len, max) {
            (0, Some((l, ll)), Some((m, _))) if l > m => {
                self.errors.push(ProfileError::ImpossibleLength {
                    line: ll,
                    field: number,
                    reason: format!("fixed length {l} is over max {m}"),
                });
                return None;
            }
            (0, Some(l), _) | (_, None, Some(l)) => Some(l),
            (_, Some((_, ll)), _) => {
                self.errors.push(ProfileError::BadValue {
                    line: ll,
                    key: "field.len".into(),
                    reason: "len is for fixed fields; variable fields take max".into(),
                });
                return None;
            }
            (_, None, None) => None,
        };
        let (size, size_line) = match size {
            Some((n, l)) => (n, l),
            None => match &f.base {
                Some(b) if b.length.prefix_digits() == length_kind => {
                    (i64::try_from(b.length.max()).unwrap_or(0), f.line)
                }
                _ => {
                    self.errors.push(ProfileError::Missing {
                        line: f.line,
                        key: format!("field.max (field {number})"),
                    });
                    return None;
                }
            },
        };
        if size < 1 {
            self.errors.push(ProfileError::ImpossibleLength {
                line: size_line,
                field: number,
                reason: format!("max {size} is under 1"),
            });
            return None;
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let length = match length_kind {
            0 => LengthType::Fixed(size),
            2 => LengthType::LlVar(size),
            _ => LengthType::LllVar(size),
        };
        Some((length, size_line))
    }

    /// An integer key of a `[[field]]` table, with its line.
    fn field_int(&mut self, f: &FieldEntry<'_, '_>, key: &str) -> Option<(i64, usize)> {
        let v = f.get(key)?;
        let n = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok());
        match n {
            Some(n) => Some((n, self.line(v.span()))),
            None => {
                self.bad(v, &format!("field.{key}"), "expected an integer");
                None
            }
        }
    }

    /// `prefix` = bcd | ascii | binary; the base field's, else the dialect's usual one.
    fn field_prefix(&mut self, f: &FieldEntry<'_, '_>) -> Option<PrefixEncoding> {
        let Some(v) = f.get("prefix") else {
            return Some(f.base.as_ref().map_or(
                if f.ascii_dialect {
                    PrefixEncoding::Ascii
                } else {
                    PrefixEncoding::Bcd
                },
                |b| b.prefix,
            ));
        };
        match self.str(v, "field.prefix")? {
            "bcd" => Some(PrefixEncoding::Bcd),
            "ascii" => Some(PrefixEncoding::Ascii),
            "binary" => Some(PrefixEncoding::Binary),
            other => {
                self.bad(
                    v,
                    "field.prefix",
                    format!("unknown {other:?} (bcd, ascii, binary)"),
                );
                None
            }
        }
    }

    /// `encoding` = bcd | ascii | binary | hex, and for BCD `align` and `pad`; absent, the base
    /// field's (same kind) or the dialect's usual encoding for the kind.
    fn field_encoding(&mut self, f: &FieldEntry<'_, '_>, kind: FieldKind) -> Option<ValueEncoding> {
        let base_bcd = f.base.as_ref().and_then(|b| match b.encoding {
            ValueEncoding::Bcd {
                pad,
                filler,
                checked,
            } => Some((pad, filler, checked)),
            _ => None,
        });
        let mut encoding = match f.get("encoding") {
            Some(v) => match self.str(v, "field.encoding")? {
                "bcd" => ValueEncoding::Bcd {
                    pad: base_bcd.map_or(Pad::Left, |b| b.0),
                    filler: base_bcd.map_or(0, |b| b.1),
                    checked: base_bcd.is_none_or(|b| b.2),
                },
                "ascii" => ValueEncoding::Ascii,
                "binary" => ValueEncoding::Binary,
                "hex" => ValueEncoding::HexAscii,
                other => {
                    self.bad(
                        v,
                        "field.encoding",
                        format!("unknown {other:?} (bcd, ascii, binary, hex)"),
                    );
                    return None;
                }
            },
            None => match (&f.base, kind, f.ascii_dialect) {
                (Some(b), _, _) if b.kind == kind => b.encoding,
                (_, FieldKind::B, true) => ValueEncoding::HexAscii,
                (_, FieldKind::B, false) => ValueEncoding::Binary,
                (_, FieldKind::N | FieldKind::Z, false) => ValueEncoding::Bcd {
                    pad: Pad::Left,
                    filler: if kind == FieldKind::Z { 0xF } else { 0 },
                    checked: true,
                },
                _ => ValueEncoding::Ascii,
            },
        };
        for key in ["align", "pad"] {
            let Some(v) = f.get(key) else { continue };
            let ValueEncoding::Bcd { pad, filler, .. } = &mut encoding else {
                self.bad(
                    v,
                    &format!("field.{key}"),
                    "only BCD fields have alignment and padding",
                );
                continue;
            };
            match (key, self.str(v, &format!("field.{key}"))) {
                // Left-aligned (CUP "左靠") puts the filler last; right-aligned puts it first.
                ("align", Some("left")) => *pad = Pad::Right,
                ("align", Some("right")) => *pad = Pad::Left,
                ("pad", Some(p)) if p.len() == 1 && p.chars().all(|c| c.is_ascii_hexdigit()) => {
                    *filler = u8::from_str_radix(p, 16).unwrap_or(0);
                }
                (_, Some(other)) => self.bad(
                    v,
                    &format!("field.{key}"),
                    format!("unknown {other:?} (align: left/right, pad: one hex digit)"),
                ),
                (_, None) => {}
            }
        }
        Some(encoding)
    }

    /// Whether the length prefix can hold the maximum: decimal LL up to 99, LLL up to 999;
    /// binary 255 / 65535; hex text counts two characters per byte.
    fn field_capacity(
        &mut self,
        f: &FieldEntry<'_, '_>,
        length: LengthType,
        prefix: PrefixEncoding,
        encoding: ValueEncoding,
        size_line: usize,
    ) -> bool {
        let size = length.max();
        let digits = length.prefix_digits();
        let units = if encoding == ValueEncoding::HexAscii {
            size.saturating_mul(2)
        } else {
            size
        };
        let (limit, what) = match (prefix, digits) {
            (_, 0) => (999, "a fixed length"),
            (PrefixEncoding::Binary, 2) => (255, "a binary LL prefix"),
            (PrefixEncoding::Binary, _) => (65535, "a binary LLL prefix"),
            (_, 2) => (99, "LLVAR"),
            _ => (999, "LLLVAR"),
        };
        if units > limit {
            self.errors.push(ProfileError::ImpossibleLength {
                line: size_line,
                field: f.number,
                reason: format!("{what} holds at most {limit}, max is {units}"),
            });
            return false;
        }
        true
    }

    /// `charset` = ascii | gbk | gb18030; the base field's, else ASCII.
    fn field_charset(&mut self, f: &FieldEntry<'_, '_>) -> Option<Charset> {
        let Some(v) = f.get("charset") else {
            return Some(f.base.as_ref().map_or(Charset::Ascii, |b| b.charset));
        };
        let c = self.str(v, "field.charset")?;
        let cs = Charset::by_name(c);
        if cs.is_none() {
            self.errors.push(ProfileError::BadCharset {
                line: self.line(v.span()),
                field: f.number,
                charset: c.to_owned(),
            });
        }
        cs
    }

    /// `mask` = clear | pan | track | hidden | length; the base field's, else the ISO role's.
    fn field_mask(&mut self, f: &FieldEntry<'_, '_>) -> Option<Mask> {
        let Some(v) = f.get("mask") else {
            return Some(
                f.base
                    .as_ref()
                    .map_or(smartpos_iso8583::mask::default_mask(f.number), |b| b.mask),
            );
        };
        match self.str(v, "field.mask")? {
            "clear" => Some(Mask::Clear),
            "pan" => Some(Mask::Pan),
            "track" => Some(Mask::Track),
            "hidden" => Some(Mask::Hidden),
            "length" => Some(Mask::Length),
            other => {
                self.bad(
                    v,
                    "field.mask",
                    format!("unknown {other:?} (clear, pan, track, hidden, length)"),
                );
                None
            }
        }
    }

    fn subfields(
        &mut self,
        v: &Val<'_>,
        fields: &[Option<FieldSpec>],
        out: &mut Vec<(u8, Vec<SubfieldSpec>)>,
    ) {
        let Some(t) = v.get_ref().as_table() else {
            self.bad(
                v,
                "subfields",
                "expected a table of field number = [ { name, len } ]",
            );
            return;
        };
        for (k, val) in t.iter() {
            let Some(n) = self.key_field_no(k, "subfields") else {
                continue;
            };
            if !fields.get(usize::from(n)).is_some_and(Option::is_some) {
                let line = self.line(k.span());
                self.errors.push(ProfileError::UndefinedField {
                    line,
                    context: "subfields".into(),
                    field: n,
                });
                continue;
            }
            let key = format!("subfields.{n}");
            let Some(arr) = val.get_ref().as_array() else {
                self.bad(val, &key, "expected an array of { name, len }");
                continue;
            };
            let binary_field = fields
                .get(usize::from(n))
                .and_then(Option::as_ref)
                .is_some_and(|f| !f.is_text());
            let mut layout: Vec<SubfieldSpec> = Vec::new();
            for item in arr.iter() {
                let Some(it) = item.get_ref().as_table() else {
                    self.bad(item, &key, "expected { name = \"..\", len = N }");
                    continue;
                };
                if layout
                    .last()
                    .is_some_and(|l| matches!(l.format, SubfieldFormat::Tlv(_)))
                {
                    self.bad(
                        item,
                        &key,
                        "a tlv part takes the rest of the field: it must be the last",
                    );
                }
                if let Some(sub) = self.subfield_item(it, item, &key, binary_field) {
                    layout.push(sub);
                }
            }
            out.retain(|(f, _)| *f != n);
            if !layout.is_empty() {
                out.push((n, layout));
            }
        }
    }

    /// One `{ name, len, format, ... }` of a `[subfields]` list.
    fn subfield_item(
        &mut self,
        it: &DeTable<'_>,
        item: &Val<'_>,
        key: &str,
        binary_field: bool,
    ) -> Option<SubfieldSpec> {
        self.known_keys(
            it,
            &[
                "name",
                "len",
                "format",
                "tag",
                "tag_format",
                "length",
                "value",
            ],
            &format!("{key}."),
        );
        let format = match entry(it, "format") {
            None => SubfieldFormat::Text(Charset::Ascii),
            Some(fv) => {
                let name = self.str(fv, &format!("{key}.format"))?;
                match name {
                    "tlv" => SubfieldFormat::Tlv(self.tlv_layout(it, item, key)?),
                    other => match subfield_format(other) {
                        Some(f) => f,
                        None => {
                            self.bad(
                                fv,
                                &format!("{key}.format"),
                                format!("unknown {other:?} (text, gbk, gb18030, binary, tlv)"),
                            );
                            return None;
                        }
                    },
                }
            }
        };
        if format != SubfieldFormat::Text(Charset::Ascii) && !binary_field {
            self.bad(
                item,
                key,
                "gbk, gb18030, binary and tlv parts need a b field (kind = \"b\"), whose bytes \
                 the codec passes as they are",
            );
            return None;
        }
        let len = match (entry(it, "len"), &format) {
            (_, SubfieldFormat::Tlv(_)) => Some(0),
            (Some(lv), _) => self.int(lv, &format!("{key}.len"), 1..1000),
            (None, _) => None,
        };
        let name = entry(it, "name").and_then(|nv| self.str(nv, &format!("{key}.name")));
        match (name, len) {
            (Some(name), Some(len)) => Some(SubfieldSpec {
                name: name.to_owned().into(),
                len: usize::try_from(len).unwrap_or(1),
                format,
            }),
            _ => {
                if entry(it, "name").is_none() || entry(it, "len").is_none() {
                    let line = self.line(item.span());
                    self.errors.push(ProfileError::Missing {
                        line,
                        key: format!("{key}: name and len"),
                    });
                }
                None
            }
        }
    }

    /// The keys of a `format = "tlv"` part: `tag` (bytes, 1..=4), `tag_format` (text or
    /// binary), `length` (binary1 binary2 bcd1 bcd2 ascii1..ascii4) and `value` (text, gbk,
    /// gb18030 or binary).
    fn tlv_layout(&mut self, it: &DeTable<'_>, item: &Val<'_>, key: &str) -> Option<TlvSpec> {
        let (Some(tv), Some(lv)) = (entry(it, "tag"), entry(it, "length")) else {
            let line = self.line(item.span());
            self.errors.push(ProfileError::Missing {
                line,
                key: format!("{key}: tag and length (format = \"tlv\")"),
            });
            return None;
        };
        let tag_len = usize::try_from(self.int(tv, &format!("{key}.tag"), 1..5)?).ok()?;
        let tag_text = match entry(it, "tag_format") {
            None => true,
            Some(v) => match self.str(v, &format!("{key}.tag_format"))? {
                "text" => true,
                "binary" => false,
                other => {
                    self.bad(
                        v,
                        &format!("{key}.tag_format"),
                        format!("unknown {other:?} (text, binary)"),
                    );
                    return None;
                }
            },
        };
        let length_name = self.str(lv, &format!("{key}.length"))?;
        let length = match length_name {
            "binary1" => TlvLength::Binary(1),
            "binary2" => TlvLength::Binary(2),
            "bcd1" => TlvLength::Bcd(1),
            "bcd2" => TlvLength::Bcd(2),
            "ascii1" => TlvLength::Ascii(1),
            "ascii2" => TlvLength::Ascii(2),
            "ascii3" => TlvLength::Ascii(3),
            "ascii4" => TlvLength::Ascii(4),
            other => {
                self.bad(
                    lv,
                    &format!("{key}.length"),
                    format!("unknown {other:?} (binary1, binary2, bcd1, bcd2, ascii1..ascii4)"),
                );
                return None;
            }
        };
        let value = match entry(it, "value") {
            None => SubfieldFormat::Binary,
            Some(v) => {
                let name = self.str(v, &format!("{key}.value"))?;
                match subfield_format(name) {
                    Some(f) => f,
                    None => {
                        self.bad(
                            v,
                            &format!("{key}.value"),
                            format!("unknown {name:?} (text, gbk, gb18030, binary)"),
                        );
                        return None;
                    }
                }
            }
        };
        Some(TlvSpec {
            tag_len,
            tag_text,
            length,
            value: Box::new(value),
        })
    }

    fn keys(&mut self, v: &Val<'_>, keys: &mut KeyLayout) {
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, "keys", "expected a table");
            return;
        };
        self.known_keys(
            t,
            &[
                "field",
                "encoding",
                "key_length",
                "check_value_length",
                "order",
                "algorithm",
                "scheme",
                "pin_format",
                "ksn_field",
                "dukpt_mac",
                "track_encryption",
            ],
            "keys.",
        );
        for (k, val) in t.iter() {
            match k.get_ref().as_ref() {
                "field" => {
                    if let Some(n) = self.field_no(val, "keys.field") {
                        keys.field = n;
                    }
                }
                "encoding" => match self.str(val, "keys.encoding") {
                    Some("hex") => keys.hex = true,
                    Some("binary") => keys.hex = false,
                    Some(other) => {
                        self.bad(
                            val,
                            "keys.encoding",
                            format!("unknown {other:?} (hex, binary)"),
                        );
                    }
                    None => {}
                },
                "key_length" => match self.int(val, "keys.key_length", 8..17) {
                    Some(n @ (8 | 16)) => keys.key_len = usize::try_from(n).unwrap_or(16),
                    Some(n) => self.bad(val, "keys.key_length", format!("{n}: use 8 or 16")),
                    None => {}
                },
                "check_value_length" => match self.int(val, "keys.check_value_length", 3..9) {
                    Some(n @ (3 | 4 | 8)) => keys.kcv_len = usize::try_from(n).unwrap_or(4),
                    Some(n) => {
                        self.bad(
                            val,
                            "keys.check_value_length",
                            format!("{n}: use 3, 4 or 8"),
                        );
                    }
                    None => {}
                },
                "order" => {
                    let Some(arr) = val.get_ref().as_array() else {
                        self.bad(
                            val,
                            "keys.order",
                            "expected an array such as [\"pik\", \"mak\"]",
                        );
                        continue;
                    };
                    let mut order = Vec::new();
                    for item in arr.iter() {
                        let role = match self.str(item, "keys.order") {
                            Some("pik") => KeyRole::Pik,
                            Some("mak") => KeyRole::Mak,
                            Some("tdk") => KeyRole::Tdk,
                            Some(other) => {
                                self.bad(item, "keys.order", format!("unknown key {other:?}"));
                                continue;
                            }
                            None => continue,
                        };
                        if order.contains(&role) {
                            self.bad(item, "keys.order", "a key is listed twice");
                        }
                        order.push(role);
                    }
                    if !(order.contains(&KeyRole::Pik) && order.contains(&KeyRole::Mak)) {
                        self.bad(val, "keys.order", "must list pik and mak");
                    }
                    keys.order = order;
                }
                "algorithm" => match self.str(val, "keys.algorithm") {
                    Some("tdes") => keys.cipher = KeyCipher::Tdes,
                    Some("sm4") => keys.cipher = KeyCipher::Sm4,
                    Some(other) => self.bad(
                        val,
                        "keys.algorithm",
                        format!("unknown {other:?} (tdes, sm4)"),
                    ),
                    None => {}
                },
                "scheme" => match self.str(val, "keys.scheme") {
                    Some("tmk") => keys.scheme = KeyScheme::Working,
                    Some(name @ ("dukpt-tdes" | "dukpt-aes")) => {
                        keys.scheme = KeyScheme::Dukpt(DukptLayout {
                            scheme: if name == "dukpt-aes" {
                                DukptScheme::Aes
                            } else {
                                DukptScheme::Tdes
                            },
                            // Settled in `dukpt_options` (ksn_field is required).
                            ksn_field: 0,
                            ksn_hex: false,
                            mac: true,
                        });
                        if name == "dukpt-aes"
                            && !t.iter().any(|(k, _)| k.get_ref() == "pin_format")
                        {
                            keys.pin_format = PinBlockFormat::Iso4;
                        }
                    }
                    Some(other) => self.bad(
                        val,
                        "keys.scheme",
                        format!("unknown {other:?} (tmk, dukpt-tdes, dukpt-aes)"),
                    ),
                    None => {}
                },
                "track_encryption" => match self.str(val, "keys.track_encryption") {
                    Some("none") => keys.track_encryption = TrackEncryption::None,
                    Some("cup-tdk") => keys.track_encryption = TrackEncryption::CupTdk,
                    Some(other) => self.bad(
                        val,
                        "keys.track_encryption",
                        format!("unknown {other:?} (none, cup-tdk)"),
                    ),
                    None => {}
                },
                "pin_format" => {
                    if let Some(n) = self.int(val, "keys.pin_format", 0..5) {
                        match PinBlockFormat::from_number(n as u8) {
                            Ok(f) => keys.pin_format = f,
                            Err(_) => {
                                self.bad(val, "keys.pin_format", format!("{n}: use 0, 1, 3 or 4"))
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `[constants]`-style table: field number = "text" (binary fields: hex).
    fn constants(&mut self, v: &Val<'_>, ctx: &str, fields: &[Option<FieldSpec>]) -> Vec<ConstDef> {
        let mut out = Vec::new();
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, ctx, "expected a table of field number = value");
            return out;
        };
        for (k, val) in t.iter() {
            let Some(n) = self.key_field_no(k, ctx) else {
                continue;
            };
            let line = self.line(k.span());
            let Some(spec) = fields.get(usize::from(n)).and_then(Option::as_ref) else {
                self.errors.push(ProfileError::UndefinedField {
                    line,
                    context: ctx.to_owned(),
                    field: n,
                });
                continue;
            };
            let key = format!("{ctx}.{n}");
            let value = if spec.is_text() {
                let Some(s) = self.str(val, &key) else {
                    continue;
                };
                if proto::expand(s, |p| proto::PLACEHOLDERS.contains(&p).then(String::new))
                    .is_none()
                {
                    self.bad(
                        val,
                        &key,
                        format!(
                            "unknown placeholder or unbalanced braces (known: {})",
                            proto::PLACEHOLDERS.join(", ")
                        ),
                    );
                    continue;
                }
                Constant::Text(s.to_owned())
            } else {
                let Some(b) = self.hex_bytes(val, &key) else {
                    continue;
                };
                Constant::Bytes(b)
            };
            out.push(ConstDef {
                line,
                field: n,
                value,
            });
        }
        out
    }

    /// `tlv.N` tables: tag (hex) = value (hex), encoded as BER-TLV in key order.
    fn tlv(&mut self, v: &Val<'_>, ctx: &str, fields: &[Option<FieldSpec>]) -> Vec<ConstDef> {
        let mut out = Vec::new();
        let Some(t) = v.get_ref().as_table() else {
            self.bad(v, ctx, "expected [..tlv.N] tables of tag = value (hex)");
            return out;
        };
        for (k, val) in t.iter() {
            let Some(n) = self.key_field_no(k, ctx) else {
                continue;
            };
            let line = self.line(k.span());
            match fields.get(usize::from(n)).and_then(Option::as_ref) {
                Some(spec) if !spec.is_text() => {}
                Some(_) => {
                    self.bad(
                        val,
                        &format!("{ctx}.{n}"),
                        "TLV constants need a binary (b) field",
                    );
                    continue;
                }
                None => {
                    self.errors.push(ProfileError::UndefinedField {
                        line,
                        context: ctx.to_owned(),
                        field: n,
                    });
                    continue;
                }
            }
            let Some(tags) = val.get_ref().as_table() else {
                self.bad(
                    val,
                    &format!("{ctx}.{n}"),
                    "expected a table of tag = value",
                );
                continue;
            };
            let mut bytes = Vec::new();
            for (tag, tv) in tags.iter() {
                let key = format!("{ctx}.{n}.{}", tag.get_ref());
                let tag_bytes = hex::decode(tag.get_ref()).ok().filter(|b| valid_tag(b));
                let Some(tag_bytes) = tag_bytes else {
                    let line = self.line(tag.span());
                    self.errors.push(ProfileError::BadValue {
                        line,
                        key,
                        reason: "not a BER-TLV tag in hex (e.g. DF01, 9F1E)".into(),
                    });
                    continue;
                };
                let Some(value) = self.hex_bytes(tv, &key) else {
                    continue;
                };
                bytes.extend_from_slice(&tag_bytes);
                let len = value.len();
                if len < 0x80 {
                    bytes.push(u8::try_from(len).unwrap_or(0));
                } else if let Ok(l) = u8::try_from(len) {
                    bytes.extend_from_slice(&[0x81, l]);
                } else {
                    let l = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
                    bytes.extend_from_slice(&[0x82, l[0], l[1]]);
                }
                bytes.extend_from_slice(&value);
            }
            out.push(ConstDef {
                line,
                field: n,
                value: Constant::Bytes(bytes),
            });
        }
        out
    }

    fn template_constants(
        &mut self,
        mt: &DeTable<'_>,
        ctx: &str,
        fields: &[Option<FieldSpec>],
    ) -> Vec<ConstDef> {
        let mut out = Vec::new();
        for (k, v) in mt.iter() {
            match k.get_ref().as_ref() {
                "constants" => out.extend(self.constants(v, &format!("{ctx}.constants"), fields)),
                "tlv" => out.extend(self.tlv(v, &format!("{ctx}.tlv"), fields)),
                _ => {}
            }
        }
        let mut seen: HashMap<u8, usize> = HashMap::new();
        for c in &out {
            if let Some(first) = seen.insert(c.field, c.line) {
                self.errors.push(ProfileError::BadValue {
                    line: c.line,
                    key: format!("{ctx}: field {}", c.field),
                    reason: format!("given twice (first at line {first})"),
                });
            }
        }
        out
    }

    fn template(
        &mut self,
        mt: &DeTable<'_>,
        ctx: &str,
        t: &mut Template,
        fields: &[Option<FieldSpec>],
    ) -> Vec<ConstDef> {
        self.known_keys(
            mt,
            &[
                "mti",
                "processing_code",
                "type_code",
                "nmic",
                "condition",
                "fields",
                "add",
                "remove",
                "constants",
                "tlv",
            ],
            &format!("{ctx}."),
        );
        let digits_of = |this: &mut Self, v: &Val<'_>, key: &str, n: usize| -> Option<String> {
            let s = this.str(v, key)?;
            if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
                Some(s.to_owned())
            } else {
                this.bad(v, key, format!("expected {n} digits"));
                None
            }
        };
        for (k, v) in mt.iter() {
            let key = format!("{ctx}.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "mti" => {
                    if let Some(m) = digits_of(self, v, &key, 4).and_then(|s| Mti::parse(&s)) {
                        if m.response().is_none() {
                            self.bad(v, &key, "not a request MTI the host answers");
                        } else {
                            t.mti = m;
                        }
                    }
                }
                "processing_code" => {
                    if let Some(s) = digits_of(self, v, &key, 6) {
                        t.processing_code = Some(s);
                    }
                }
                "type_code" => {
                    if let Some(s) = digits_of(self, v, &key, 2) {
                        t.type_code = s;
                    }
                }
                "nmic" => {
                    if let Some(s) = digits_of(self, v, &key, 3) {
                        t.nmic = Some(s);
                    }
                }
                "condition" => {
                    if let Some(s) = digits_of(self, v, &key, 2) {
                        t.condition = Some(s);
                    }
                }
                "fields" => {
                    if let Some(list) = self.fields_list(v, &key) {
                        t.fields = list.into_iter().map(|(n, _)| n).collect();
                    }
                }
                _ => {}
            }
        }
        // `add` / `remove` apply after a `fields` replacement, whatever the key order.
        for (k, v) in mt.iter() {
            let key = format!("{ctx}.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "add" => {
                    for (n, _) in self.fields_list(v, &key).unwrap_or_default() {
                        if !t.fields.contains(&n) {
                            t.fields.push(n);
                        }
                    }
                }
                "remove" => {
                    let drop: Vec<u8> = self
                        .fields_list(v, &key)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect();
                    t.fields.retain(|f| !drop.contains(f));
                }
                _ => {}
            }
        }
        self.template_constants(mt, ctx, fields)
    }

    /// Packs each constant (placeholders filled with sample values) into its field, so a
    /// constant that cannot be sent is reported now, with its line.
    fn check_constants(&mut self, d: &Dialect, consts: &[ConstDef]) {
        let id = Identity {
            tid: "00000000".into(),
            mid: "000000000000000".into(),
            currency: smartpos_types::Currency::CNY,
        };
        let local = LocalDateTime {
            year: 2026,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        let sample = Ctx {
            amount: Some(0),
            local: Some(local),
            operator: Some("01"),
            ..Ctx::default()
        };
        for c in consts {
            let Some(value) = c.value.render(&id, &sample) else {
                continue;
            };
            if let Err(e) = d.encode_field_value(c.field, &value) {
                self.errors.push(ProfileError::BadValue {
                    line: c.line,
                    key: format!("constant for field {}", c.field),
                    reason: e.to_string(),
                });
            }
        }
    }
}

/// A subfield format by its profile name (not `tlv`, which takes more keys).
fn subfield_format(name: &str) -> Option<SubfieldFormat> {
    match name {
        "text" => Some(SubfieldFormat::Text(Charset::Ascii)),
        "gbk" => Some(SubfieldFormat::Text(Charset::Gbk)),
        "gb18030" => Some(SubfieldFormat::Text(Charset::Gb18030)),
        "binary" => Some(SubfieldFormat::Binary),
        _ => None,
    }
}

/// Whether bytes form one BER-TLV tag: a first byte, then (when its low 5 bits are all set)
/// subsequent bytes with bit 8 set except the last (ISO/IEC 8825-1 8.1.2).
fn valid_tag(b: &[u8]) -> bool {
    match b.split_first() {
        Some((first, rest)) if first & 0x1F == 0x1F => match rest.split_last() {
            Some((last, middle)) => last & 0x80 == 0 && middle.iter().all(|x| x & 0x80 != 0),
            None => false,
        },
        Some((_, rest)) => rest.is_empty(),
        None => false,
    }
}

fn msg_name(m: MsgType) -> &'static str {
    match m {
        MsgType::SignIn => "sign-in",
        MsgType::SignOff => "sign-off",
        MsgType::Echo => "echo",
        MsgType::Txn(TxnKind::Sale) => "sale",
        MsgType::Txn(TxnKind::Void) => "void",
        MsgType::Txn(TxnKind::Refund) => "refund",
        MsgType::Txn(TxnKind::PreAuth) => "preauth",
        MsgType::Txn(TxnKind::Completion) => "completion",
        MsgType::Txn(TxnKind::PreAuthCancel) => "preauth-cancel",
        MsgType::Txn(TxnKind::Balance) => "balance",
        MsgType::Reversal => "reversal",
        MsgType::Settlement => "settlement",
        MsgType::BatchUpload => "batch-upload",
        MsgType::EndOfBatch => "end-of-batch",
        MsgType::TcUpload => "tc-upload",
        MsgType::ScriptAdvice => "script-advice",
        MsgType::CaKeyQuery => "capk-query",
        MsgType::CaKeyDownload => "capk-download",
        MsgType::CaKeyDownloadEnd => "capk-download-end",
        MsgType::AidQuery => "aid-query",
        MsgType::AidDownload => "aid-download",
        MsgType::AidDownloadEnd => "aid-download-end",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CardData, Ctx, Identity};
    use smartpos_iso8583::{DecodeError, InvalidReason};
    use smartpos_types::Pan;

    const UNIONPAY: &str = include_str!("../../../profiles/unionpay-acquirer.toml");
    const ISO87B_PRIVATE: &str = include_str!("../../../profiles/iso87b-private.toml");
    const NATIONAL: &str = include_str!("../../../profiles/unionpay-national.toml");
    /// Built by pyiso8583 (profiles/testdata/unionpay_national_0210.md).
    const NATIONAL_0210: &str =
        include_str!("../../../profiles/testdata/unionpay_national_0210.hex");
    const DUKPT_TDES: &str = include_str!("../../../profiles/dukpt-tdes.toml");
    const DUKPT_AES: &str = include_str!("../../../profiles/dukpt-aes.toml");
    const UNIONPAY_SM4: &str = include_str!("../../../profiles/unionpay-sm4.toml");

    fn reasons(text: &str) -> Vec<String> {
        match Profile::from_toml(text) {
            Ok(_) => vec!["(loaded)".into()],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn shipped_key_scheme_profiles_load_with_their_options() {
        let p = Profile::from_toml(DUKPT_TDES).unwrap();
        let d = *p.keys.dukpt().unwrap();
        assert_eq!(d.scheme, DukptScheme::Tdes);
        assert_eq!((d.ksn_field, d.ksn_hex, d.mac), (62, true, true));
        assert_eq!(p.keys.pin_format, PinBlockFormat::Iso0);
        assert_eq!(p.mac, MacAlgorithm::X919);
        // Every MACed request carries the KSN field, before the MAC field.
        let sale = p.template(MsgType::Txn(TxnKind::Sale)).unwrap();
        assert!(sale.mac && sale.fields.contains(&62), "{:?}", sale.fields);
        let ksn = [0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0, 1];
        assert_eq!(p.keys.encode_ksn(&ksn), b"FFFF9876543210E00001".to_vec());
        assert_eq!(
            p.keys.decode_ksn(b"FFFF9876543210E00001"),
            Some(ksn.to_vec())
        );
        assert_eq!(p.keys.decode_ksn(b"FFFF9876543210E000"), None);

        let p = Profile::from_toml(DUKPT_AES).unwrap();
        let d = *p.keys.dukpt().unwrap();
        assert_eq!(d.scheme, DukptScheme::Aes);
        assert_eq!(p.keys.pin_format, PinBlockFormat::Iso4);
        assert_eq!(p.mac, MacAlgorithm::Cmac);
        assert_eq!(
            p.keys.decode_ksn(&p.keys.encode_ksn(&[7; 12])),
            Some(vec![7; 12])
        );

        let p = Profile::from_toml(UNIONPAY_SM4).unwrap();
        assert_eq!(p.keys.cipher, KeyCipher::Sm4);
        assert_eq!(p.keys.scheme, KeyScheme::Working);
        assert_eq!(p.mac, MacAlgorithm::CupEcb);
        assert!(p.keys.dukpt().is_none());
        // Built-in profiles keep today's keys: TDES working keys, format 0.
        let cup = Profile::by_name("cup").unwrap();
        assert_eq!(
            (cup.keys.cipher, cup.keys.scheme, cup.keys.pin_format),
            (KeyCipher::Tdes, KeyScheme::Working, PinBlockFormat::Iso0)
        );
    }

    #[test]
    fn pin_format_and_dukpt_mac_options() {
        let p = Profile::from_toml("base = \"iso87b\"\n[keys]\npin_format = 3\n").unwrap();
        assert_eq!(p.keys.pin_format, PinBlockFormat::Iso3);
        let p = Profile::from_toml("base = \"iso87b\"\n[keys]\npin_format = 1\n").unwrap();
        assert_eq!(p.keys.pin_format, PinBlockFormat::Iso1);
        // dukpt_mac = false: the KSN still travels with PIN blocks, no message carries a MAC.
        let p = Profile::from_toml(
            "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 62\ndukpt_mac = false\n",
        )
        .unwrap();
        assert!(!p.keys.dukpt().unwrap().mac);
        assert!(
            p.templates()
                .iter()
                .all(|t| !t.mac && !t.fields.contains(&64))
        );
        let sale = p.template(MsgType::Txn(TxnKind::Sale)).unwrap();
        assert!(sale.fields.contains(&62));
    }

    #[test]
    fn key_options_that_cannot_work_are_refused_with_their_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "base = \"iso87b\"\n[keys]\npin_format = 4\n",
                "format 4 needs an AES PIN key",
            ),
            (
                "base = \"iso87b\"\n[keys]\npin_format = 2\n",
                "2: use 0, 1, 3 or 4",
            ),
            (
                "base = \"iso87b\"\n[mac]\nalgorithm = \"cmac\"\n",
                "cmac needs AES keys",
            ),
            (
                "base = \"iso87b\"\n[keys]\nalgorithm = \"sm4\"\n",
                "SM4 keys take cup-ecb",
            ),
            (
                "base = \"cup\"\n[keys]\nalgorithm = \"sm4\"\npin_format = 3\n",
                "pin_format = 0",
            ),
            (
                "base = \"cup\"\n[keys]\nalgorithm = \"des\"\n",
                "unknown \"des\"",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\n",
                "keys.ksn_field (a DUKPT scheme",
            ),
            (
                "base = \"iso87b\"\n[keys]\nksn_field = 62\n",
                "only with scheme",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 63\n",
                "field 63 already carries",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 11\n",
                "cannot hold a 20-unit KSN",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-aes\"\nksn_field = 62\n",
                "AES DUKPT MACs are cmac",
            ),
            (
                "base = \"iso87b\"\n[mac]\nalgorithm = \"cmac\"\n[keys]\nscheme = \"dukpt-aes\"\nksn_field = 62\npin_format = 0\n",
                "AES DUKPT PIN blocks are format 4",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 62\npin_format = 4\n",
                "format 4 needs an AES PIN key",
            ),
            (
                "base = \"cup\"\n[keys]\nalgorithm = \"sm4\"\nscheme = \"dukpt-tdes\"\nksn_field = 62\n",
                "use scheme = \"tmk\"",
            ),
            (
                "base = \"iso87b\"\n[keys]\nscheme = \"dukpt\"\n",
                "unknown \"dukpt\"",
            ),
        ];
        for (text, want) in cases {
            let got = reasons(text);
            assert!(
                got.iter().any(|r| r.contains(want)),
                "{text}: {got:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn track_encryption_loads_where_a_key_can_encrypt_and_53_joins_the_track_messages() {
        let p =
            Profile::from_toml(include_str!("../../../profiles/cup-track-encrypted.toml")).unwrap();
        assert_eq!(p.keys.track_encryption, TrackEncryption::CupTdk);
        let mut with_track = 0;
        for t in p.templates() {
            if t.fields.contains(&35) {
                with_track += 1;
                assert!(t.fields.contains(&53), "{:?}", t.msg);
            }
        }
        assert!(with_track >= 3);
        // The void template of cup has no 53 of its own: the option adds it.
        let cup = Profile::by_name("cup").unwrap();
        assert_eq!(cup.keys.track_encryption, TrackEncryption::None);
        let void = MsgType::Txn(TxnKind::Void);
        let cup_void = cup.template(void).unwrap();
        if !cup_void.fields.contains(&53) {
            assert!(p.template(void).unwrap().fields.contains(&53));
        }
        // TDES DUKPT: the data key encrypts; every track request carries the KSN.
        let d = Profile::from_toml(
            "base = \"iso87b\"\n[keys]\nscheme = \"dukpt-tdes\"\nksn_field = 62\ndukpt_mac = false\ntrack_encryption = \"cup-tdk\"\n",
        )
        .unwrap();
        for t in d.templates() {
            if t.fields.contains(&35) {
                assert!(t.fields.contains(&62), "{:?}", t.msg);
            }
        }
        let none =
            Profile::from_toml("base = \"cup\"\n[keys]\ntrack_encryption = \"none\"\n").unwrap();
        assert_eq!(none.keys.track_encryption, TrackEncryption::None);
    }

    #[test]
    fn track_encryption_that_cannot_work_is_refused_with_its_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "base = \"cup\"\n[keys]\norder = [\"pik\", \"mak\"]\ntrack_encryption = \"cup-tdk\"\n",
                "add \"tdk\" to keys.order",
            ),
            (
                "base = \"cup\"\n[keys]\nalgorithm = \"sm4\"\ntrack_encryption = \"cup-tdk\"\n",
                "SM4 track layout",
            ),
            (
                "base = \"iso87b\"\n[mac]\nalgorithm = \"cmac\"\n[keys]\nscheme = \"dukpt-aes\"\nksn_field = 62\ntrack_encryption = \"cup-tdk\"\n",
                "AES DUKPT track layout",
            ),
            (
                "base = \"cup\"\n[keys]\ntrack_encryption = \"cup-tdk\"\n[[field]]\nnumber = 35\nkind = \"n\"\n",
                "field 35 cannot carry encrypted track data",
            ),
            (
                "base = \"cup\"\n[keys]\ntrack_encryption = \"cup-tdk\"\n[[field]]\nnumber = 53\nkind = \"n\"\nlength = \"fixed\"\nlen = 8\n",
                "the track flag travels in field 53",
            ),
            (
                "base = \"cup\"\n[keys]\ntrack_encryption = \"tdk\"\n",
                "unknown \"tdk\" (none, cup-tdk)",
            ),
        ];
        for (text, want) in cases {
            let got = reasons(text);
            assert!(
                got.iter().any(|r| r.contains(want)),
                "{text}: {got:?} lacks {want:?}"
            );
        }
    }

    fn id() -> Identity {
        Identity {
            tid: "12345678".into(),
            mid: "123456789012345".into(),
            currency: smartpos_types::Currency::CNY,
        }
    }

    fn mak() -> TdesKey {
        TdesKey::new(&[0x11; 16]).unwrap()
    }

    fn sale(profile: &Profile) -> (Message, Vec<u8>) {
        let card = CardData {
            pan: Pan::new("6222021234567890128").ok(),
            expiry: Some("3012".into()),
            entry_mode: "012".into(),
            ..CardData::default()
        };
        let ctx = Ctx {
            stan: 42,
            batch: 7,
            amount: Some(1234),
            local: Some(LocalDateTime {
                year: 2026,
                month: 3,
                day: 4,
                hour: 10,
                minute: 11,
                second: 12,
            }),
            card: Some(&card),
            operator: Some("01"),
            ..Ctx::default()
        };
        let m = proto::build(profile, &id(), MsgType::Txn(TxnKind::Sale), &ctx).unwrap();
        let packed = proto::seal(profile, Some(&mak()), &m, true).unwrap();
        (m, packed)
    }

    use smartpos_iso8583::Message;

    fn errors(text: &str) -> Vec<ProfileError> {
        match Profile::from_toml(text) {
            Ok(_) => panic!("profile unexpectedly valid"),
            Err(ProfileErrors(e)) => e,
        }
    }

    #[test]
    fn builtin_profiles() {
        for name in ["cup", "iso87b", "iso87a"] {
            let p = Profile::by_name(name).unwrap();
            assert_eq!(p.name(), name);
            assert_eq!(p.mac_field, 64);
            assert!(p.template(MsgType::Txn(TxnKind::Sale)).is_some());
        }
        assert!(Profile::by_name("visa").is_none());
        assert!(!Profile::by_name("cup").unwrap().keys.hex);
    }

    #[test]
    fn unionpay_example_round_trips_byte_exactly_and_cup_refuses_it() {
        let p = Profile::from_toml(UNIONPAY).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.name(), "unionpay-acquirer");
        assert_eq!(
            p.dialect.default_header(),
            hex::decode("6000120000603100311000").unwrap()
        );
        let (m, packed) = sale(&p);
        assert_eq!(m.text(43), Some("银联测试商户（上海）"));
        assert_eq!(m.text(46), Some("ORDER-000007-000042"));
        assert_eq!(m.text(56), Some("收银台01号"));
        assert_eq!(
            m.get(59).unwrap(),
            hex::decode("DF0108534D415254504F53DF02083030303132333435DF03020100").unwrap()
        );
        let back = p.dialect.unpack(&packed).unwrap();
        assert_eq!(back.text(43), m.text(43));
        assert_eq!(p.dialect.pack(&back).unwrap(), packed, "byte-exact");
        assert!(proto::verify_mac(&p, &mak(), &packed, &back));
        // GBK on the wire: 43 is 20 bytes for 10 characters (its LL prefix says 20).
        let name_at = packed.windows(2).position(|w| w == [0xD2, 0xF8]).unwrap();
        assert_eq!(packed[name_at - 1], 0x20);
        // The plain cup dialect does not know 43.
        assert!(matches!(
            Dialect::cup().unpack(&packed),
            Err(DecodeError::Invalid {
                field: Some(43),
                reason: InvalidReason::UnknownField,
                ..
            })
        ));
    }

    #[test]
    fn iso87b_private_example_round_trips_and_iso87b_refuses_it() {
        let p = Profile::from_toml(ISO87B_PRIVATE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.mac_field, 128);
        assert_eq!(p.keys.order, vec![KeyRole::Mak, KeyRole::Pik]);
        let (m, packed) = sale(&p);
        assert_eq!(m.text(121), Some("000007"));
        assert_eq!(m.text(127), Some("POS/1.0;操作员=01"));
        assert!(m.has(120) && !m.has(64));
        let back = p.dialect.unpack(&packed).unwrap();
        assert!(back.has(128), "MAC in 128");
        assert_eq!(p.dialect.pack(&back).unwrap(), packed, "byte-exact");
        assert!(proto::verify_mac(&p, &mak(), &packed, &back));
        let mut tampered = back.clone();
        tampered.set_text(4, "000000009999");
        let forged = p.dialect.pack(&tampered).unwrap();
        assert!(!proto::verify_mac(&p, &mak(), &forged, &tampered));
        // iso87b reads 120's 2-byte binary prefix (0x00 0x16) as BCD: invalid, in field 120.
        assert!(matches!(
            Dialect::iso87b().unpack(&packed),
            Err(DecodeError::Invalid {
                field: Some(120),
                ..
            })
        ));
        // Reversals drop 127 as the profile says, and the MAC field.
        let r = proto::reversal_of(&p, &back, crate::model::ReversalReason::NoResponse);
        assert!(!r.has(127) && !r.has(128) && r.has(120));
    }

    #[test]
    fn key_layout_round_trip_with_eight_byte_check_values() {
        let p = Profile::from_toml(ISO87B_PRIVATE).unwrap();
        let tmk = TdesKey::new(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
        let keys = [
            TdesKey::new(&[0x23; 16]).unwrap(),
            TdesKey::new(&[0x45; 16]).unwrap(),
        ];
        let block = p.keys.wrap(&tmk, &keys);
        assert_eq!(block.len(), 48);
        let field = p.encode_key_block(&block);
        assert_eq!(field.len(), 96, "hex text");
        let got = p
            .keys
            .unwrap(&tmk, &p.decode_key_block(&field).unwrap())
            .unwrap();
        assert_eq!(got.mak.expose(), keys[0].expose());
        assert_eq!(got.pik.expose(), keys[1].expose());
        assert!(got.tdk.is_none());
        let mut bad = block.clone();
        bad[23] ^= 1; // last byte of the MAK's 8-byte check value
        assert_eq!(p.keys.unwrap(&tmk, &bad).err(), Some(OpError::KeyCheck));
        assert!(matches!(
            p.keys.unwrap(&tmk, &block[..40]),
            Err(OpError::KeyBlock { .. })
        ));
    }

    #[test]
    fn unknown_base_is_reported_with_its_line() {
        let e = errors("name = \"x\"\n\nbase = \"visa\"\n");
        assert_eq!(
            e,
            vec![ProfileError::UnknownBase {
                line: 3,
                base: "visa".into()
            }]
        );
        let e = errors("name = \"x\"\n");
        assert_eq!(e[0].line(), 1);
        assert!(matches!(&e[0], ProfileError::Missing { key, .. } if key == "base"));
    }

    #[test]
    fn a_profile_sets_emv_parameters_checked_like_a_download() {
        let text = r#"base = "cup"
name = "with-emv"

[[emv.aid]]
aid = "A000000333010101"
asi = 0
contactless_floor_limit = 0
contactless_txn_limit = 1000000
contactless_cvm_limit = 100000
"#;
        let p = Profile::from_toml(text).unwrap_or_else(|e| panic!("{e}"));
        let emv = p.emv_params().expect("emv parameters");
        assert_eq!(emv.aids.len(), 1);
        assert_eq!(
            emv.contactless_limits_for(&hex::decode("A000000333010101").unwrap()),
            Some((0, 1_000_000, 100_000))
        );
        assert!(Profile::by_name("cup").unwrap().emv_params().is_none());
        // Bad hex, an unknown key and a duplicate AID are errors naming the section.
        for bad in [
            "[[emv.aid]]\naid = \"A0000003330101ZZ\"\nasi = 0\n",
            "[[emv.aid]]\naid = \"A000000333010101\"\nasi = 0\nfloor = 1\n",
            "[emv]\ncolour = 1\n",
            "[[emv.aid]]\naid = \"A000000333010101\"\nasi = 0\n[[emv.aid]]\naid = \"A000000333010101\"\nasi = 0\n",
        ] {
            let e = errors(&format!("base = \"cup\"\n{bad}"));
            assert!(
                e.iter()
                    .any(|e| matches!(e, ProfileError::Emv { line, .. } if *line > 1)),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn emv_errors_name_the_entry_line_and_strings_stay_strings() {
        // The third line of the section's second AID is where its bad hex is.
        let text = "base = \"cup\"\n\n[[emv.aid]]\naid = \"A000000333010101\"\nasi = 0\n\n\
                    [[emv.aid]]\naid = \"A00000033301ZZ\"\nasi = 0\n";
        let e = errors(text);
        assert!(
            e.iter()
                .any(|e| matches!(e, ProfileError::Emv { line: 7, .. })),
            "{e:?}"
        );
        // A quote or a backslash in a value is data, not JSON syntax.
        for bad in [r#"aid = "A0\"}]}""#, r#"aid = 'A0\'"#] {
            let e = errors(&format!("base = \"cup\"\n[[emv.aid]]\n{bad}\nasi = 0\n"));
            assert!(
                e.iter().any(
                    |e| matches!(e, ProfileError::Emv { line: 2, reason } if reason.contains("hex"))
                ),
                "{bad}: {e:?}"
            );
        }
        // Integers in any TOML radix; a date is refused.
        let p = Profile::from_toml(
            "base = \"cup\"\n[[emv.aid]]\naid = \"A000000333010101\"\nasi = 0\n\
             contactless_txn_limit = 0x0F_4240\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.emv_params().unwrap().aids[0].contactless_txn_limit,
            Some(1_000_000)
        );
        let e =
            errors("base = \"cup\"\n[[emv.aid]]\naid = \"A000000333010101\"\nasi = 1979-05-27\n");
        assert!(
            e.iter()
                .any(|e| matches!(e, ProfileError::Emv { line: 2, .. })),
            "{e:?}"
        );
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = r#"base = "cup"

[[field]]
number = 43
kind = "ans"
length = "llvar"
max = 40

[[field]]
number = 43
kind = "ans"
length = "llvar"
max = 20

[[field]]
number = 44
kind = "an"
length = "llvar"
max = 0

[[field]]
number = 45
kind = "ans"
length = "fixed"
len = 12
max = 8

[[field]]
number = 46
kind = "ans"
length = "llvar"
max = 100

[[field]]
number = 47
kind = "ans"
length = "lllvar"
max = 1000

[[field]]
number = 56
kind = "ans"
length = "lllvar"
max = 100
charset = "big5"

[[field]]
number = 64
remove = true

[messages.sale]
add = [57]

[messages.refnud]
add = [43]
"#;
        let e = errors(text);
        let got: Vec<(usize, &str)> = e
            .iter()
            .map(|e| {
                let kind = match e {
                    ProfileError::DuplicateField { .. } => "duplicate",
                    ProfileError::ImpossibleLength { .. } => "length",
                    ProfileError::BadCharset { .. } => "charset",
                    ProfileError::UnknownMessage { .. } => "message",
                    ProfileError::UndefinedField { .. } => "undefined",
                    ProfileError::MacFieldMissing { .. } => "mac",
                    _ => "other",
                };
                (e.line(), kind)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "mac"),
                (10, "duplicate"),
                (19, "length"),
                (25, "length"),
                (32, "length"),
                (38, "length"),
                (45, "charset"),
                (51, "undefined"),
                (54, "message"),
            ],
            "{e:#?}"
        );
        assert_eq!(
            e[1],
            ProfileError::DuplicateField {
                line: 10,
                field: 43,
                first: 4
            }
        );
        assert_eq!(
            e[6],
            ProfileError::BadCharset {
                line: 45,
                field: 56,
                charset: "big5".into()
            }
        );
        // One line per problem in the message.
        assert_eq!(ProfileErrors(e).to_string().lines().count(), 9);
    }

    #[test]
    fn pos_and_settlement_sections_set_the_issue_20_layouts() {
        let cup = Profile::by_name("cup").unwrap();
        assert_eq!(cup.pos.read_capability, Some('6'));
        assert_eq!(cup.pos.fallback_entry, "02");
        assert_eq!(cup.settlement.totals, TotalsLayout::DomesticForeign);
        assert_eq!(cup.settlement.upload, UploadLayout::Records);
        let iso = Profile::by_name("iso87b").unwrap();
        assert_eq!(iso.pos.read_capability, None);
        assert_eq!(iso.pos.fallback_entry, "80");
        assert_eq!(iso.settlement.totals, TotalsLayout::Single);
        // Today's layouts on cup by profile, and the reverse on iso87b.
        let p = Profile::from_toml(
            "base = \"cup\"\n[pos]\nread_capability = \"\"\nfallback_entry = \"80\"\n\
             [settlement]\ntotals = \"single\"\nupload = \"per-transaction\"\n",
        )
        .unwrap();
        assert_eq!(p.pos.read_capability, None);
        assert_eq!(p.pos.fallback_entry, "80");
        assert_eq!(p.settlement.totals, TotalsLayout::Single);
        assert_eq!(p.settlement.upload, UploadLayout::PerTransaction);
        let (m, _) = sale(&p);
        assert_eq!(m.text(60), Some("22000007"), "8-digit field 60");
        let (m, _) = sale(&cup);
        assert_eq!(m.text(60), Some("2200000700060"));
        let p = Profile::from_toml(
            "base = \"iso87b\"\n[pos]\nread_capability = \"5\"\n\
             [settlement]\ntotals = \"domestic-foreign\"\nupload = \"records\"\n",
        )
        .unwrap();
        assert_eq!(p.pos.read_capability, Some('5'));
        assert_eq!(p.settlement.upload, UploadLayout::Records);
        let e = errors(
            "base = \"cup\"\n[pos]\nread_capability = \"66\"\nfallback_entry = \"8\"\n\
             reader = 1\n[settlement]\ntotals = \"double\"\nupload = 3\n",
        );
        let lines: Vec<usize> = e.iter().map(ProfileError::line).collect();
        assert_eq!(lines, vec![3, 4, 5, 7, 8], "{e:?}");
        assert!(
            e.iter()
                .any(|x| x.to_string().contains("domestic-foreign, single")),
            "{e:?}"
        );
        let e = errors("base = \"cup\"\n[messages.batch-upload]\nremove = [48]\n");
        assert!(e[0].to_string().contains("needs field 48"), "{e:?}");
        assert!(
            Profile::from_toml(
                "base = \"cup\"\n[settlement]\nupload = \"per-transaction\"\n\
                 [messages.batch-upload]\nremove = [48]\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_their_line() {
        let e = errors("base = \"cup\"\n[mac]\nalgorithm = \n");
        assert!(
            matches!(e[0], ProfileError::Syntax { line: 3, .. }),
            "{e:?}"
        );
        let e = errors("base = \"cup\"\n[mac]\nalgoritm = \"x9.19\"\n");
        assert_eq!(
            e,
            vec![ProfileError::UnknownKey {
                line: 3,
                key: "mac.algoritm".into()
            }]
        );
    }

    #[test]
    fn semantic_checks() {
        // A charset on a numeric field, a MAC algorithm that does not suit the key length, a
        // template field without a value source and placed after the MAC field, a constant
        // that does not fit its field.
        let text = r#"base = "iso87b"
[[field]]
number = 121
kind = "n"
length = "fixed"
len = 6
charset = "gbk"
[mac]
algorithm = "x9.9"
[messages.sale]
add = [122]
[messages.sale.constants]
11 = "12AB56"
"#;
        let e = errors(text);
        let lines: Vec<usize> = e.iter().map(ProfileError::line).collect();
        assert_eq!(lines, vec![2, 9, 10, 10, 13], "{e:#?}");
        assert!(matches!(&e[0], ProfileError::BadField { field: 121, .. }));
        assert!(matches!(&e[2], ProfileError::BadValue { reason, .. } if reason.contains("122")));
        assert!(
            matches!(&e[3], ProfileError::BadValue { reason, .. } if reason.contains("follow"))
        );
        assert!(
            matches!(&e[4], ProfileError::BadValue { reason, .. } if reason.contains("field 11")),
            "{e:#?}"
        );
    }

    #[test]
    fn the_codec_convention_is_a_profile_option() {
        let old = Profile::from_toml("base = \"iso87b\"\n[codec]\nconvention = \"smartpos-0.1\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let jpos = Profile::from_toml("base = \"iso87b\"\n[codec]\nconvention = \"jpos\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut m = Message::new(smartpos_iso8583::Mti::FINANCIAL_REQUEST);
        m.set_text(2, "6222021234567890128");
        let pan = |p: &Profile| hex::encode(&p.dialect.pack(&m).unwrap()[10..]);
        assert_eq!(pan(&old), "1906222021234567890128");
        assert_eq!(pan(&jpos), "1962220212345678901280");
        assert_eq!(pan(&Profile::by_name("iso87b").unwrap()), pan(&jpos));
        let e = errors("base = \"iso87b\"\n[codec]\nconvention = \"x\"\n");
        assert!(
            matches!(&e[..], [ProfileError::BadValue { line: 3, reason, .. }] if reason.contains("smartpos-0.1")),
            "{e:?}"
        );
        let e = errors("base = \"cup\"\n[codec]\nconvention = \"jpos\"\nfoo = 1\n");
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn shipped_unionpay_profiles_read_national_algorithm_data_and_gbk_text() {
        let bytes = hex::decode(NATIONAL_0210.trim()).unwrap();
        for text in [NATIONAL, UNIONPAY] {
            let p = Profile::from_toml(text).unwrap_or_else(|e| panic!("{e}"));
            let m = p
                .dialect
                .unpack(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
            assert_eq!(m.text(43), Some("银联测试商户（上海）"), "{}", p.name());
            assert_eq!(m.text(56), Some("谢谢惠顾，欢迎再来"), "{}", p.name());
            let parts: Vec<(String, String)> = p
                .dialect
                .subfield_values(63, m.get(63).unwrap())
                .iter()
                .map(|s| (s.name.to_string(), s.value.show()))
                .collect();
            assert_eq!(
                parts,
                [
                    ("63.1 operator / card organisation", "CUP"),
                    (
                        "63.2 national-algorithm data SM",
                        "101112131415161718191A1B1C1D1E1F"
                    ),
                    (
                        "63.2 national-algorithm data S3",
                        "66C7F0F462EEEDD9D1F2D46BDC10E4E2"
                    ),
                ]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
            );
            // Byte-exact both ways; logs show 63's length only (its items may be key
            // material), without its subfields.
            assert_eq!(p.dialect.pack(&m).unwrap(), bytes);
            let dump = p.dialect.dump(&m);
            assert!(dump.contains("<41 bytes>"), "{dump}");
            assert!(
                !dump.contains("1011121314") && !dump.contains("63.2"),
                "{dump}"
            );
        }
        // The built-in cup table knows neither 43 nor binary 63.
        assert!(Dialect::cup().unpack(&bytes).is_err());
        // Requests still carry the operator code in 63, as text bytes.
        let p = Profile::from_toml(NATIONAL).unwrap();
        let (m, packed) = sale(&p);
        assert_eq!(m.get(63), Some(&b"01 "[..]));
        assert_eq!(p.dialect.unpack(&packed).unwrap().text(63), Some("01 "));
    }

    #[test]
    fn subfield_formats_are_checked_with_their_lines() {
        let text = r#"base = "cup"
[[field]]
number = 59
kind = "b"
length = "lllvar"
max = 100
[subfields]
63 = [ { name = "x", len = 3, format = "gbk" } ]
59 = [
  { name = "t", format = "tlv", tag = 2, length = "binary2" },
  { name = "u", format = "tlv", tag = 9, length = "bcd1" },
  { name = "v", len = 2, format = "hex" },
]
62 = [ { name = "w", format = "tlv", length = "bcd1" }, { name = "z", format = "tlv", tag = 1, length = "binary3" } ]
"#;
        let e = errors(text);
        let got: Vec<(usize, String)> = e.iter().map(|e| (e.line(), e.to_string())).collect();
        let has =
            |line: usize, words: &str| got.iter().any(|(l, m)| *l == line && m.contains(words));
        assert!(has(8, "need a b field"), "{got:#?}");
        assert!(
            has(11, "must be the last") && has(11, "out of range"),
            "{got:#?}"
        );
        assert!(
            has(12, "must be the last") && has(12, "unknown \"hex\""),
            "{got:#?}"
        );
        assert!(has(14, "tag and length") && has(14, "binary3"), "{got:#?}");
        assert_eq!(got.len(), 7, "{got:#?}");
    }

    #[test]
    fn placeholders() {
        let ctx = Ctx {
            stan: 5,
            batch: 9,
            ..Ctx::default()
        };
        let c = Constant::Text("{{B{batch}}}-{stan}".into());
        assert_eq!(c.render(&id(), &ctx), Some(b"{B000009}-000005".to_vec()));
        assert_eq!(Constant::Text("{amount}".into()).render(&id(), &ctx), None);
        assert_eq!(proto::expand("{nope", |_| Some(String::new())), None);
        assert_eq!(proto::expand("a}b", |_| Some(String::new())), None);
        assert!(valid_tag(&[0x9F, 0x1E]) && valid_tag(&[0x5A]));
        assert!(!valid_tag(&[0x9F]) && !valid_tag(&[0x5A, 0x01]) && !valid_tag(&[]));
    }
}
