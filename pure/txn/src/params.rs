//! EMV terminal parameters from the host: the model, its TLV codec and the download sequence.
//!
//! What a terminal needs before it can run an EMV kernel besides its own configuration: per
//! application (AID) the selection rule, version, terminal action codes, floor limit, random
//! selection values, default DDOL, and the contactless floor / transaction / CVM limits; and the
//! certification authority (CA) public keys that authenticate card data offline.
//!
//! UnionPay POS terminals download both from the host with network-management messages, the
//! 60.3 code naming the step and field 62 carrying the data (`docs/messages.md`, section
//! "EMV parameter download", lists the public sources):
//!
//! | step | MTI | 60.3 | field 62 sent | field 62 answered |
//! |---|---|---|---|---|
//! | CA key query | 0820 | 372 | `"1"` + count already listed (ASCII, `"100"` first) | status + (9F06, 9F22, DF05) per key |
//! | CA key download | 0800 | 370 | TLV 9F06 (RID) + 9F22 (index) | status + the key's TLVs |
//! | CA key download end | 0800 | 371 | — | — |
//! | AID query | 0820 | 382 | as for keys | status + 9F06 per AID |
//! | AID download | 0800 | 380 | TLV 9F06 (AID) | status + the AID's TLVs |
//! | AID download end | 0800 | 381 | — | — |
//!
//! The status is one ASCII digit before the TLVs: `0` the host has nothing, `1` (or `3`) this
//! answer ends the list, `2` more follow (query again with the new count).
//!
//! [`ParamDownload`] is the sequence as a sans-IO machine: [`ParamDownload::next_request`] says
//! what to send, [`ParamDownload::handle_reply`] takes field 39 and field 62 of the answer, until
//! it yields the complete [`TerminalParams`] or a [`ParamError`]. Host bytes are checked strictly
//! (lengths, BCD digits, dates, algorithms, the CA key checksum); nothing here panics on them.

use crate::proto::MsgType;
use serde::{Deserialize, Serialize};
use smartpos_emv::tlv::{self, Limits, Tag, Tlv, TlvError};
use smartpos_iso8583::ResponseCode;
use smartpos_types::hex;
use thiserror::Error;

/// Tags of the UnionPay parameter records (field 62 of the 0800 / 0820 answers).
pub mod tags {
    use smartpos_emv::tlv::Tag;

    /// AID (in an AID record) or RID (in a CA key record).
    pub const AID: Tag = Tag(0x9F06);
    /// CA public key index.
    pub const CAPK_INDEX: Tag = Tag(0x9F22);
    /// Application selection indicator: `00` partial match allowed, `01` exact match only.
    pub const ASI: Tag = Tag(0xDF01);
    /// CA public key modulus.
    pub const CAPK_MODULUS: Tag = Tag(0xDF02);
    /// CA public key checksum (SHA-1 over RID, index, modulus, exponent).
    pub const CAPK_CHECKSUM: Tag = Tag(0xDF03);
    /// CA public key exponent.
    pub const CAPK_EXPONENT: Tag = Tag(0xDF04);
    /// CA public key expiry date.
    pub const CAPK_EXPIRY: Tag = Tag(0xDF05);
    /// CA public key hash algorithm indicator (`01` SHA-1).
    pub const CAPK_HASH_ALG: Tag = Tag(0xDF06);
    /// CA public key algorithm indicator (`01` RSA).
    pub const CAPK_PK_ALG: Tag = Tag(0xDF07);
    /// Application version number (terminal). The UnionPay POS specification text names 9F09;
    /// hosts send 9F08 (see `docs/messages.md`). Both are read; 9F08 is written.
    pub const APP_VERSION: Tag = Tag(0x9F08);
    /// Application version number, the tag EMV gives the terminal's copy.
    pub const APP_VERSION_TERMINAL: Tag = Tag(0x9F09);
    /// Terminal action code — default.
    pub const TAC_DEFAULT: Tag = Tag(0xDF11);
    /// Terminal action code — online.
    pub const TAC_ONLINE: Tag = Tag(0xDF12);
    /// Terminal action code — denial.
    pub const TAC_DENIAL: Tag = Tag(0xDF13);
    /// Default DDOL.
    pub const DEFAULT_DDOL: Tag = Tag(0xDF14);
    /// Threshold value for biased random selection.
    pub const THRESHOLD: Tag = Tag(0xDF15);
    /// Maximum target percentage for biased random selection.
    pub const MAX_TARGET_PERCENT: Tag = Tag(0xDF16);
    /// Target percentage for random selection.
    pub const TARGET_PERCENT: Tag = Tag(0xDF17);
    /// Terminal online PIN capability (`01` supported).
    pub const ONLINE_PIN: Tag = Tag(0xDF18);
    /// Contactless offline floor limit.
    pub const CL_FLOOR_LIMIT: Tag = Tag(0xDF19);
    /// Contactless transaction limit.
    pub const CL_TXN_LIMIT: Tag = Tag(0xDF20);
    /// Contactless CVM required limit.
    pub const CL_CVM_LIMIT: Tag = Tag(0xDF21);
    /// Terminal floor limit.
    pub const FLOOR_LIMIT: Tag = Tag(0x9F1B);
    /// Electronic cash terminal transaction limit.
    pub const EC_LIMIT: Tag = Tag(0x9F7B);
    /// Default TDOL: no UnionPay tag found in public sources; EMV's TDOL tag carries it.
    pub const DEFAULT_TDOL: Tag = Tag(0x97);
}

/// Most entries a host may list of each kind; more is refused as hostile.
pub const MAX_ENTRIES: usize = 64;

/// Everything the terminal keeps of the host's EMV parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalParams {
    /// Application parameters, one per AID, in the host's order.
    pub aids: Vec<AidParams>,
    /// CA public keys, in the host's order.
    pub ca_keys: Vec<CaPublicKey>,
}

/// Parameters of one application (AID). Amounts are in minor units of the terminal currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AidParams {
    /// AID (9F06), 5 to 16 bytes; hex in JSON.
    #[serde(with = "hex_bytes")]
    pub aid: Vec<u8>,
    /// Application selection indicator (DF01): `0` partial match allowed, `1` exact match only.
    pub asi: u8,
    /// Application version number (9F08), 2 bytes; hex in JSON.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_version: Option<Vec<u8>>,
    /// Terminal action code — default (DF11), 5 bytes.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub tac_default: Option<Vec<u8>>,
    /// Terminal action code — denial (DF13), 5 bytes.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub tac_denial: Option<Vec<u8>>,
    /// Terminal action code — online (DF12), 5 bytes.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub tac_online: Option<Vec<u8>>,
    /// Terminal floor limit (9F1B, 4-byte binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_limit: Option<u64>,
    /// Threshold value for biased random selection (DF15, 4-byte binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// Maximum target percentage for biased random selection (DF16, n2), 0 to 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_target_percent: Option<u8>,
    /// Target percentage for random selection (DF17, n2), 0 to 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_percent: Option<u8>,
    /// Default DDOL (DF14).
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_ddol: Option<Vec<u8>>,
    /// Default TDOL (tag 97; see [`tags::DEFAULT_TDOL`]).
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_tdol: Option<Vec<u8>>,
    /// Terminal online PIN capability (DF18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_pin: Option<bool>,
    /// Electronic cash terminal transaction limit (9F7B, n12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec_limit: Option<u64>,
    /// Contactless offline floor limit (DF19, n12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactless_floor_limit: Option<u64>,
    /// Contactless transaction limit (DF20, n12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactless_txn_limit: Option<u64>,
    /// Contactless CVM required limit (DF21, n12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactless_cvm_limit: Option<u64>,
}

/// One certification authority public key (EMV Book 2 §5.2, Annex B2 / A2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaPublicKey {
    /// Registered application provider identifier (9F06), 5 bytes; hex in JSON.
    #[serde(with = "hex_bytes")]
    pub rid: Vec<u8>,
    /// Key index (9F22).
    pub index: u8,
    /// Expiry date `YYYYMMDD` (DF05).
    pub expiry: String,
    /// Hash algorithm indicator (DF06): `1` SHA-1, the only one accepted.
    pub hash_alg: u8,
    /// Public key algorithm indicator (DF07): `1` RSA, the only one accepted.
    pub pk_alg: u8,
    /// Modulus (DF02), at most 248 bytes; hex in JSON.
    #[serde(with = "hex_bytes")]
    pub modulus: Vec<u8>,
    /// Exponent (DF04): `03` or `010001`; hex in JSON.
    #[serde(with = "hex_bytes")]
    pub exponent: Vec<u8>,
    /// Checksum (DF03), SHA-1 over RID, index, modulus and exponent; verified when present.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum: Option<Vec<u8>>,
}

/// Why host parameter bytes (or a stored parameter set) are refused. No variant carries key
/// material or record bytes beyond identifiers (RID/index, AID).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The profile has no template for a step of the download.
    #[error("EMV parameter download is not supported by this dialect (profile {profile})")]
    NotSupported {
        /// The profile's name.
        profile: String,
    },
    /// The host answered a step with a response code other than `00`.
    #[error("host refused the parameter download with response code {code}")]
    HostRefused {
        /// Field 39.
        code: String,
    },
    /// An answer that should carry field 62 did not.
    #[error("field 62 missing from the answer")]
    MissingField62,
    /// The leading status digit of field 62 is not one of `0`, `1`, `2`, `3`.
    #[error("unknown field 62 status {status:#04X}")]
    UnknownStatus {
        /// The byte received.
        status: u8,
    },
    /// Field 62 is not valid BER-TLV.
    #[error("field 62 is not valid TLV: {0}")]
    Tlv(TlvError),
    /// A mandatory tag is absent from a record.
    #[error("tag {tag} missing")]
    Missing {
        /// The tag, as hex.
        tag: String,
    },
    /// A tag occurs twice in one record.
    #[error("tag {tag} given twice")]
    Duplicate {
        /// The tag, as hex.
        tag: String,
    },
    /// A value has the wrong length.
    #[error("tag {tag}: {got} bytes, expected {expected}")]
    BadLength {
        /// The tag, as hex.
        tag: String,
        /// Bytes received.
        got: usize,
        /// What is allowed.
        expected: &'static str,
    },
    /// A value is malformed (not BCD, not a date, out of range, constructed).
    #[error("tag {tag}: {reason}")]
    BadValue {
        /// The tag, as hex.
        tag: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An algorithm indicator the terminal cannot use.
    #[error("CA key {key}: unsupported {what} indicator {value:#04X}")]
    UnsupportedAlgorithm {
        /// RID and index, hex.
        key: String,
        /// `hash` or `public key`.
        what: &'static str,
        /// The indicator received.
        value: u8,
    },
    /// The CA key checksum (DF03) does not match its RID, index, modulus and exponent.
    #[error("CA key {key}: checksum mismatch")]
    ChecksumMismatch {
        /// RID and index, hex.
        key: String,
    },
    /// The same AID or CA key (RID, index) is listed twice.
    #[error("{what} {id} listed twice")]
    DuplicateEntry {
        /// `AID` or `CA key`.
        what: &'static str,
        /// The AID or RID+index, hex.
        id: String,
    },
    /// The host listed more entries than [`MAX_ENTRIES`].
    #[error("more than {max} {what} listed")]
    TooMany {
        /// `AIDs` or `CA keys`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The host said more entries follow but listed none: the query would never end.
    #[error("host said more {what} follow but listed none")]
    NoProgress {
        /// `AIDs` or `CA keys`.
        what: &'static str,
    },
    /// The host has no record for an entry it listed (status `0` to a download).
    #[error("host has no record for {what} {id}")]
    NoRecord {
        /// `AID` or `CA key`.
        what: &'static str,
        /// The AID or RID+index, hex.
        id: String,
    },
    /// The host answered a download with another entry than the one asked for.
    #[error("asked for {what} {asked}, got {got}")]
    WrongRecord {
        /// `AID` or `CA key`.
        what: &'static str,
        /// What was asked for, hex.
        asked: String,
        /// What came back, hex.
        got: String,
    },
    /// A reply arrived after the download had ended.
    #[error("the parameter download is already over")]
    Finished,
}

impl From<TlvError> for ParamError {
    fn from(e: TlvError) -> Self {
        ParamError::Tlv(e)
    }
}

fn tag_hex(t: Tag) -> String {
    format!("{:X}", t.0)
}

fn key_id(rid: &[u8], index: u8) -> String {
    format!("{}/{index:02X}", hex::encode(rid))
}

// ------------------------------------------------------------------ value codecs

/// The primitive values of a record, each tag at most once.
struct Record<'a> {
    items: Vec<(Tag, &'a [u8])>,
}

impl<'a> Record<'a> {
    fn new(tlvs: &'a [Tlv]) -> Result<Record<'a>, ParamError> {
        let mut items: Vec<(Tag, &'a [u8])> = Vec::with_capacity(tlvs.len());
        for t in tlvs {
            if items.iter().any(|(seen, _)| *seen == t.tag) {
                return Err(ParamError::Duplicate {
                    tag: tag_hex(t.tag),
                });
            }
            // Constructed objects are kept out: no parameter tag is constructed, and unknown
            // tags (a host's private extensions) are ignored.
            if let Some(b) = t.bytes() {
                items.push((t.tag, b));
            } else if is_known(t.tag) {
                return Err(ParamError::BadValue {
                    tag: tag_hex(t.tag),
                    reason: "constructed where a primitive value is expected",
                });
            }
        }
        Ok(Record { items })
    }

    fn get(&self, tag: Tag) -> Option<&'a [u8]> {
        self.items.iter().find(|(t, _)| *t == tag).map(|(_, b)| *b)
    }

    fn need(&self, tag: Tag) -> Result<&'a [u8], ParamError> {
        self.get(tag)
            .ok_or(ParamError::Missing { tag: tag_hex(tag) })
    }
}

fn is_known(t: Tag) -> bool {
    use tags::*;
    [
        AID,
        CAPK_INDEX,
        ASI,
        CAPK_MODULUS,
        CAPK_CHECKSUM,
        CAPK_EXPONENT,
        CAPK_EXPIRY,
        CAPK_HASH_ALG,
        CAPK_PK_ALG,
        APP_VERSION,
        APP_VERSION_TERMINAL,
        TAC_DEFAULT,
        TAC_ONLINE,
        TAC_DENIAL,
        DEFAULT_DDOL,
        THRESHOLD,
        MAX_TARGET_PERCENT,
        TARGET_PERCENT,
        ONLINE_PIN,
        CL_FLOOR_LIMIT,
        CL_TXN_LIMIT,
        CL_CVM_LIMIT,
        FLOOR_LIMIT,
        EC_LIMIT,
        DEFAULT_TDOL,
    ]
    .contains(&t)
}

fn len_in(
    tag: Tag,
    v: &[u8],
    min: usize,
    max: usize,
    expected: &'static str,
) -> Result<(), ParamError> {
    if v.len() < min || v.len() > max {
        return Err(ParamError::BadLength {
            tag: tag_hex(tag),
            got: v.len(),
            expected,
        });
    }
    Ok(())
}

fn one_byte(tag: Tag, v: &[u8]) -> Result<u8, ParamError> {
    match v {
        [b] => Ok(*b),
        _ => Err(ParamError::BadLength {
            tag: tag_hex(tag),
            got: v.len(),
            expected: "1",
        }),
    }
}

/// A 4-byte big-endian binary amount (9F1B, DF15).
fn binary_amount(tag: Tag, v: &[u8]) -> Result<u64, ParamError> {
    let arr: [u8; 4] = v.try_into().map_err(|_| ParamError::BadLength {
        tag: tag_hex(tag),
        got: v.len(),
        expected: "4",
    })?;
    Ok(u64::from(u32::from_be_bytes(arr)))
}

/// An n12 amount: 6 bytes of packed BCD (9F7B, DF19, DF20, DF21).
fn bcd_amount(tag: Tag, v: &[u8]) -> Result<u64, ParamError> {
    len_in(tag, v, 6, 6, "6")?;
    let mut n: u64 = 0;
    for b in v {
        for d in [b >> 4, b & 0x0F] {
            if d > 9 {
                return Err(ParamError::BadValue {
                    tag: tag_hex(tag),
                    reason: "not BCD digits",
                });
            }
            n = n * 10 + u64::from(d);
        }
    }
    Ok(n)
}

fn bcd_bytes(n: u64, len: usize) -> Vec<u8> {
    let digits = format!("{n:0w$}", w = len * 2);
    let d = digits.as_bytes();
    // More digits than fit: keep the lowest (callers validate ranges first).
    let start = d.len().saturating_sub(len * 2);
    d.get(start..)
        .unwrap_or_default()
        .chunks(2)
        .map(|p| match p {
            [h, l] => ((h - b'0') << 4) | (l - b'0'),
            _ => 0,
        })
        .collect()
}

/// Largest n12 amount.
const MAX_N12: u64 = 999_999_999_999;

/// DF16 / DF17: one byte of BCD (n2), as the host samples write them (`DF160199` is 99 %).
fn percent(tag: Tag, v: &[u8]) -> Result<u8, ParamError> {
    let b = one_byte(tag, v)?;
    let (hi, lo) = (b >> 4, b & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(ParamError::BadValue {
            tag: tag_hex(tag),
            reason: "percentage is not two BCD digits",
        });
    }
    Ok(hi * 10 + lo)
}

fn percent_byte(p: u8) -> u8 {
    let p = p.min(99);
    ((p / 10) << 4) | (p % 10)
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && (1..=31).contains(&d) && y >= 1900
}

/// DF05 as `YYYYMMDD`. UnionPay hosts send 8 ASCII digits; vendor SDKs write 4 bytes of BCD
/// (`20291231`) or 3 (`291231`). All three are read; ASCII is written.
fn expiry(v: &[u8]) -> Result<String, ParamError> {
    let tag = tags::CAPK_EXPIRY;
    let bad = || ParamError::BadValue {
        tag: tag_hex(tag),
        reason: "not a date YYYYMMDD",
    };
    let digits: String = match v.len() {
        8 if v.iter().all(u8::is_ascii_digit) => v.iter().map(|&b| char::from(b)).collect(),
        8 => return Err(bad()),
        3 | 4 => {
            let s = hex::encode(v);
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            if v.len() == 3 { format!("20{s}") } else { s }
        }
        n => {
            return Err(ParamError::BadLength {
                tag: tag_hex(tag),
                got: n,
                expected: "8 (ASCII), 4 or 3 (BCD)",
            });
        }
    };
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    match (num(0..4), num(4..6), num(6..8)) {
        (Some(y), Some(m), Some(d)) if valid_date(y, m, d) => Ok(digits),
        _ => Err(bad()),
    }
}

fn check_expiry_text(s: &str) -> Result<(), ParamError> {
    if s.len() != 8 {
        return Err(ParamError::BadValue {
            tag: tag_hex(tags::CAPK_EXPIRY),
            reason: "not a date YYYYMMDD",
        });
    }
    expiry(s.as_bytes()).map(|_| ())
}

// ------------------------------------------------------------------ records

impl AidParams {
    /// Decodes one AID record (the TLVs after the status digit of a 380 answer).
    pub fn from_tlv(bytes: &[u8]) -> Result<AidParams, ParamError> {
        let tlvs = parse(bytes)?;
        let r = Record::new(&tlvs)?;
        let opt = |tag: Tag| r.get(tag);
        let fixed = |tag: Tag, n: usize, e: &'static str| -> Result<Option<Vec<u8>>, ParamError> {
            opt(tag)
                .map(|v| len_in(tag, v, n, n, e).map(|()| v.to_vec()))
                .transpose()
        };
        let p = AidParams {
            aid: r.need(tags::AID)?.to_vec(),
            asi: opt(tags::ASI)
                .map(|v| one_byte(tags::ASI, v))
                .transpose()?
                .unwrap_or(0),
            app_version: match fixed(tags::APP_VERSION, 2, "2")? {
                Some(v) => Some(v),
                None => fixed(tags::APP_VERSION_TERMINAL, 2, "2")?,
            },
            tac_default: fixed(tags::TAC_DEFAULT, 5, "5")?,
            tac_denial: fixed(tags::TAC_DENIAL, 5, "5")?,
            tac_online: fixed(tags::TAC_ONLINE, 5, "5")?,
            floor_limit: opt(tags::FLOOR_LIMIT)
                .map(|v| binary_amount(tags::FLOOR_LIMIT, v))
                .transpose()?,
            threshold: opt(tags::THRESHOLD)
                .map(|v| binary_amount(tags::THRESHOLD, v))
                .transpose()?,
            max_target_percent: opt(tags::MAX_TARGET_PERCENT)
                .map(|v| percent(tags::MAX_TARGET_PERCENT, v))
                .transpose()?,
            target_percent: opt(tags::TARGET_PERCENT)
                .map(|v| percent(tags::TARGET_PERCENT, v))
                .transpose()?,
            default_ddol: opt(tags::DEFAULT_DDOL).map(<[u8]>::to_vec),
            default_tdol: opt(tags::DEFAULT_TDOL).map(<[u8]>::to_vec),
            online_pin: opt(tags::ONLINE_PIN)
                .map(|v| one_byte(tags::ONLINE_PIN, v).map(|b| b != 0))
                .transpose()?,
            ec_limit: opt(tags::EC_LIMIT)
                .map(|v| bcd_amount(tags::EC_LIMIT, v))
                .transpose()?,
            contactless_floor_limit: opt(tags::CL_FLOOR_LIMIT)
                .map(|v| bcd_amount(tags::CL_FLOOR_LIMIT, v))
                .transpose()?,
            contactless_txn_limit: opt(tags::CL_TXN_LIMIT)
                .map(|v| bcd_amount(tags::CL_TXN_LIMIT, v))
                .transpose()?,
            contactless_cvm_limit: opt(tags::CL_CVM_LIMIT)
                .map(|v| bcd_amount(tags::CL_CVM_LIMIT, v))
                .transpose()?,
        };
        p.validate()?;
        Ok(p)
    }

    /// The record as TLV bytes, tags in the order of the UnionPay host answers.
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out: Vec<Tlv> = vec![
            Tlv::primitive(tags::AID, self.aid.clone()),
            Tlv::primitive(tags::ASI, vec![self.asi]),
        ];
        let mut put = |tag: Tag, v: Option<Vec<u8>>| {
            if let Some(v) = v {
                out.push(Tlv::primitive(tag, v));
            }
        };
        let bin4 =
            |n: Option<u64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes().to_vec());
        let n12 = |n: Option<u64>| n.map(|n| bcd_bytes(n.min(MAX_N12), 6));
        put(tags::APP_VERSION, self.app_version.clone());
        put(tags::TAC_DEFAULT, self.tac_default.clone());
        put(tags::TAC_ONLINE, self.tac_online.clone());
        put(tags::TAC_DENIAL, self.tac_denial.clone());
        put(tags::FLOOR_LIMIT, bin4(self.floor_limit));
        put(tags::THRESHOLD, bin4(self.threshold));
        put(
            tags::MAX_TARGET_PERCENT,
            self.max_target_percent.map(|p| vec![percent_byte(p)]),
        );
        put(
            tags::TARGET_PERCENT,
            self.target_percent.map(|p| vec![percent_byte(p)]),
        );
        put(tags::DEFAULT_DDOL, self.default_ddol.clone());
        put(tags::DEFAULT_TDOL, self.default_tdol.clone());
        put(tags::ONLINE_PIN, self.online_pin.map(|b| vec![u8::from(b)]));
        put(tags::EC_LIMIT, n12(self.ec_limit));
        put(tags::CL_FLOOR_LIMIT, n12(self.contactless_floor_limit));
        put(tags::CL_TXN_LIMIT, n12(self.contactless_txn_limit));
        put(tags::CL_CVM_LIMIT, n12(self.contactless_cvm_limit));
        tlv::encode_all(&out)
    }

    /// Checks every value against its encoding's limits.
    pub fn validate(&self) -> Result<(), ParamError> {
        len_in(tags::AID, &self.aid, 5, 16, "5 to 16")?;
        if self.asi > 1 {
            return Err(ParamError::BadValue {
                tag: tag_hex(tags::ASI),
                reason: "selection indicator is neither 0 nor 1",
            });
        }
        let fixed = |tag: Tag, v: &Option<Vec<u8>>, n: usize, e: &'static str| match v {
            Some(v) => len_in(tag, v, n, n, e),
            None => Ok(()),
        };
        fixed(tags::APP_VERSION, &self.app_version, 2, "2")?;
        fixed(tags::TAC_DEFAULT, &self.tac_default, 5, "5")?;
        fixed(tags::TAC_DENIAL, &self.tac_denial, 5, "5")?;
        fixed(tags::TAC_ONLINE, &self.tac_online, 5, "5")?;
        for (tag, v) in [
            (tags::DEFAULT_DDOL, &self.default_ddol),
            (tags::DEFAULT_TDOL, &self.default_tdol),
        ] {
            if let Some(v) = v {
                len_in(tag, v, 1, 252, "1 to 252")?;
            }
        }
        for (tag, v) in [
            (tags::FLOOR_LIMIT, self.floor_limit),
            (tags::THRESHOLD, self.threshold),
        ] {
            if v.is_some_and(|n| n > u64::from(u32::MAX)) {
                return Err(ParamError::BadValue {
                    tag: tag_hex(tag),
                    reason: "amount does not fit 4 bytes",
                });
            }
        }
        for (tag, v) in [
            (tags::MAX_TARGET_PERCENT, self.max_target_percent),
            (tags::TARGET_PERCENT, self.target_percent),
        ] {
            if v.is_some_and(|p| p > 99) {
                return Err(ParamError::BadValue {
                    tag: tag_hex(tag),
                    reason: "percentage above 99",
                });
            }
        }
        if let (Some(t), Some(m)) = (self.target_percent, self.max_target_percent)
            && t > m
        {
            return Err(ParamError::BadValue {
                tag: tag_hex(tags::TARGET_PERCENT),
                reason: "target percentage above the maximum",
            });
        }
        for (tag, v) in [
            (tags::EC_LIMIT, self.ec_limit),
            (tags::CL_FLOOR_LIMIT, self.contactless_floor_limit),
            (tags::CL_TXN_LIMIT, self.contactless_txn_limit),
            (tags::CL_CVM_LIMIT, self.contactless_cvm_limit),
        ] {
            if v.is_some_and(|n| n > MAX_N12) {
                return Err(ParamError::BadValue {
                    tag: tag_hex(tag),
                    reason: "amount has more than 12 digits",
                });
            }
        }
        Ok(())
    }
}

impl CaPublicKey {
    /// Decodes one CA key record (the TLVs after the status digit of a 370 answer). The
    /// checksum is verified when present.
    pub fn from_tlv(bytes: &[u8]) -> Result<CaPublicKey, ParamError> {
        let tlvs = parse(bytes)?;
        let r = Record::new(&tlvs)?;
        let k = CaPublicKey {
            rid: r.need(tags::AID)?.to_vec(),
            index: one_byte(tags::CAPK_INDEX, r.need(tags::CAPK_INDEX)?)?,
            expiry: expiry(r.need(tags::CAPK_EXPIRY)?)?,
            // Absent indicators mean the EMV defaults: SHA-1 and RSA.
            hash_alg: r
                .get(tags::CAPK_HASH_ALG)
                .map(|v| one_byte(tags::CAPK_HASH_ALG, v))
                .transpose()?
                .unwrap_or(1),
            pk_alg: r
                .get(tags::CAPK_PK_ALG)
                .map(|v| one_byte(tags::CAPK_PK_ALG, v))
                .transpose()?
                .unwrap_or(1),
            modulus: r.need(tags::CAPK_MODULUS)?.to_vec(),
            exponent: r.need(tags::CAPK_EXPONENT)?.to_vec(),
            checksum: r.get(tags::CAPK_CHECKSUM).map(<[u8]>::to_vec),
        };
        k.validate()?;
        Ok(k)
    }

    /// The record as TLV bytes, tags in the order of the UnionPay host answers (expiry as 8
    /// ASCII digits).
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = vec![
            Tlv::primitive(tags::AID, self.rid.clone()),
            Tlv::primitive(tags::CAPK_INDEX, vec![self.index]),
            Tlv::primitive(tags::CAPK_EXPIRY, self.expiry.as_bytes().to_vec()),
            Tlv::primitive(tags::CAPK_HASH_ALG, vec![self.hash_alg]),
            Tlv::primitive(tags::CAPK_PK_ALG, vec![self.pk_alg]),
            Tlv::primitive(tags::CAPK_MODULUS, self.modulus.clone()),
            Tlv::primitive(tags::CAPK_EXPONENT, self.exponent.clone()),
        ];
        if let Some(c) = &self.checksum {
            out.push(Tlv::primitive(tags::CAPK_CHECKSUM, c.clone()));
        }
        tlv::encode_all(&out)
    }

    /// The key's identity as text: RID hex `/` index hex (for logs and errors).
    pub fn id(&self) -> String {
        key_id(&self.rid, self.index)
    }

    /// SHA-1 over RID || index || modulus || exponent: the DF03 checksum (EMV Book 2 §5.2 and
    /// Annex B2.1: the "Certification Authority Public Key Check Sum").
    pub fn compute_checksum(&self) -> [u8; 20] {
        let mut data = Vec::with_capacity(6 + self.modulus.len() + self.exponent.len());
        data.extend_from_slice(&self.rid);
        data.push(self.index);
        data.extend_from_slice(&self.modulus);
        data.extend_from_slice(&self.exponent);
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &data);
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref().get(..20).unwrap_or(&[0u8; 20]));
        out
    }

    /// Checks lengths, algorithms, the expiry date and (when present) the checksum.
    pub fn validate(&self) -> Result<(), ParamError> {
        len_in(tags::AID, &self.rid, 5, 5, "5")?;
        check_expiry_text(&self.expiry)?;
        if self.hash_alg != 1 {
            return Err(ParamError::UnsupportedAlgorithm {
                key: self.id(),
                what: "hash",
                value: self.hash_alg,
            });
        }
        if self.pk_alg != 1 {
            return Err(ParamError::UnsupportedAlgorithm {
                key: self.id(),
                what: "public key",
                value: self.pk_alg,
            });
        }
        len_in(tags::CAPK_MODULUS, &self.modulus, 64, 248, "64 to 248")?;
        if self.modulus.first() == Some(&0) {
            return Err(ParamError::BadValue {
                tag: tag_hex(tags::CAPK_MODULUS),
                reason: "modulus has a leading zero byte",
            });
        }
        if !matches!(self.exponent.as_slice(), [3] | [1, 0, 1]) {
            return Err(ParamError::BadValue {
                tag: tag_hex(tags::CAPK_EXPONENT),
                reason: "exponent is neither 3 nor 65537",
            });
        }
        if let Some(c) = &self.checksum {
            len_in(tags::CAPK_CHECKSUM, c, 20, 20, "20")?;
            if c.as_slice() != self.compute_checksum() {
                return Err(ParamError::ChecksumMismatch { key: self.id() });
            }
        }
        Ok(())
    }
}

impl TerminalParams {
    /// Checks every record and that no AID or CA key (RID, index) is listed twice.
    pub fn validate(&self) -> Result<(), ParamError> {
        for (i, a) in self.aids.iter().enumerate() {
            a.validate()?;
            if self.aids.iter().take(i).any(|b| b.aid == a.aid) {
                return Err(ParamError::DuplicateEntry {
                    what: "AID",
                    id: hex::encode(&a.aid),
                });
            }
        }
        for (i, k) in self.ca_keys.iter().enumerate() {
            k.validate()?;
            if self
                .ca_keys
                .iter()
                .take(i)
                .any(|o| o.rid == k.rid && o.index == k.index)
            {
                return Err(ParamError::DuplicateEntry {
                    what: "CA key",
                    id: k.id(),
                });
            }
        }
        if self.aids.len() > MAX_ENTRIES {
            return Err(ParamError::TooMany {
                what: "AIDs",
                max: MAX_ENTRIES,
            });
        }
        if self.ca_keys.len() > MAX_ENTRIES {
            return Err(ParamError::TooMany {
                what: "CA keys",
                max: MAX_ENTRIES,
            });
        }
        Ok(())
    }

    /// The parameters of the application `aid` (a card's ADF name): the entry with exactly that
    /// AID, else the longest entry that is a prefix of it and allows partial matching (ASI 0).
    pub fn aid(&self, aid: &[u8]) -> Option<&AidParams> {
        self.aids.iter().find(|a| a.aid == aid).or_else(|| {
            self.aids
                .iter()
                .filter(|a| a.asi == 0 && aid.starts_with(&a.aid))
                .max_by_key(|a| a.aid.len())
        })
    }

    /// The contactless (floor, transaction, CVM) limits for application `aid`, matched as in
    /// [`TerminalParams::aid`]; `None` when the AID is unknown or any of the three is absent.
    pub fn contactless_limits_for(&self, aid: &[u8]) -> Option<(u64, u64, u64)> {
        let a = self.aid(aid)?;
        Some((
            a.contactless_floor_limit?,
            a.contactless_txn_limit?,
            a.contactless_cvm_limit?,
        ))
    }

    /// The CA key `index` of `rid`.
    pub fn ca_key(&self, rid: &[u8], index: u8) -> Option<&CaPublicKey> {
        self.ca_keys
            .iter()
            .find(|k| k.rid == rid && k.index == index)
    }
}

fn parse(bytes: &[u8]) -> Result<Vec<Tlv>, ParamError> {
    // Field 62 is at most 999 bytes in any dialect; the default depth is plenty (all primitive).
    Ok(tlv::parse_with(
        bytes,
        Limits::default().with_max_len(4096),
    )?)
}

// ------------------------------------------------------------------ the download sequence

/// The six messages of the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamMessage {
    /// CA public key query (0820, 60.3 = 372).
    CaKeyQuery,
    /// CA public key download (0800, 60.3 = 370).
    CaKeyDownload,
    /// CA public key download end (0800, 60.3 = 371).
    CaKeyDownloadEnd,
    /// IC card parameter (AID) query (0820, 60.3 = 382).
    AidQuery,
    /// IC card parameter (AID) download (0800, 60.3 = 380).
    AidDownload,
    /// IC card parameter (AID) download end (0800, 60.3 = 381).
    AidDownloadEnd,
}

impl ParamMessage {
    /// The catalogue message type.
    pub fn msg_type(self) -> MsgType {
        match self {
            ParamMessage::CaKeyQuery => MsgType::CaKeyQuery,
            ParamMessage::CaKeyDownload => MsgType::CaKeyDownload,
            ParamMessage::CaKeyDownloadEnd => MsgType::CaKeyDownloadEnd,
            ParamMessage::AidQuery => MsgType::AidQuery,
            ParamMessage::AidDownload => MsgType::AidDownload,
            ParamMessage::AidDownloadEnd => MsgType::AidDownloadEnd,
        }
    }

    /// The 60.3 network management information code.
    pub fn nmic(self) -> &'static str {
        match self {
            ParamMessage::CaKeyQuery => "372",
            ParamMessage::CaKeyDownload => "370",
            ParamMessage::CaKeyDownloadEnd => "371",
            ParamMessage::AidQuery => "382",
            ParamMessage::AidDownload => "380",
            ParamMessage::AidDownloadEnd => "381",
        }
    }

    /// Every message of the download, in the order above.
    pub const ALL: [ParamMessage; 6] = [
        ParamMessage::CaKeyQuery,
        ParamMessage::CaKeyDownload,
        ParamMessage::CaKeyDownloadEnd,
        ParamMessage::AidQuery,
        ParamMessage::AidDownload,
        ParamMessage::AidDownloadEnd,
    ];
}

/// The next request of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRequest {
    /// Which message.
    pub message: ParamMessage,
    /// Field 62 content, if the message carries it.
    pub field62: Option<Vec<u8>>,
}

/// What [`ParamDownload::handle_reply`] leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Send [`ParamDownload::next_request`] next.
    Continue,
    /// The download is complete.
    Done(TerminalParams),
}

/// The leading status digit of a query or download answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    /// `0`: the host has nothing (no entries; no such record).
    None,
    /// `1` or `3`: this answer ends the list (or carries the record).
    Last,
    /// `2`: more entries follow; query again.
    More,
}

impl ListStatus {
    /// The status of a field 62, and the bytes after it.
    pub fn split(field62: &[u8]) -> Result<(ListStatus, &[u8]), ParamError> {
        let (&first, rest) = field62.split_first().ok_or(ParamError::MissingField62)?;
        let s = match first {
            b'0' => ListStatus::None,
            b'1' | b'3' => ListStatus::Last,
            b'2' => ListStatus::More,
            status => return Err(ParamError::UnknownStatus { status }),
        };
        Ok((s, rest))
    }

    /// The byte the host writes (`0`, `1`, `2`).
    pub fn byte(self) -> u8 {
        match self {
            ListStatus::None => b'0',
            ListStatus::Last => b'1',
            ListStatus::More => b'2',
        }
    }
}

/// Field 62 of a query: `1` and the number of entries already listed, at least two digits.
pub fn query_field62(already: usize) -> Vec<u8> {
    format!("1{already:02}").into_bytes()
}

/// The count in a query's field 62 (the host side of [`query_field62`]); `None` if malformed.
pub fn parse_query_field62(f: &[u8]) -> Option<usize> {
    let digits = f.strip_prefix(b"1")?;
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One CA key as a query lists it: RID, index and, when the host gives it, the expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    /// RID.
    pub rid: Vec<u8>,
    /// Index.
    pub index: u8,
    /// Expiry, `YYYYMMDD`, if listed.
    pub expiry: Option<String>,
}

impl ListedKey {
    /// The TLVs a query answer lists for this key (9F06, 9F22, DF05).
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut v = vec![
            Tlv::primitive(tags::AID, self.rid.clone()),
            Tlv::primitive(tags::CAPK_INDEX, vec![self.index]),
        ];
        if let Some(e) = &self.expiry {
            v.push(Tlv::primitive(tags::CAPK_EXPIRY, e.as_bytes().to_vec()));
        }
        tlv::encode_all(&v)
    }

    /// The TLVs of the download request for this key (9F06, 9F22).
    pub fn request_tlv(&self) -> Vec<u8> {
        tlv::encode_all(&[
            Tlv::primitive(tags::AID, self.rid.clone()),
            Tlv::primitive(tags::CAPK_INDEX, vec![self.index]),
        ])
    }
}

/// The keys a query answer lists: a new entry starts at each 9F06.
pub fn parse_key_list(bytes: &[u8]) -> Result<Vec<ListedKey>, ParamError> {
    let tlvs = parse(bytes)?;
    let mut groups: Vec<Vec<Tlv>> = Vec::new();
    for t in tlvs {
        if t.tag == tags::AID || groups.is_empty() {
            groups.push(Vec::new());
        }
        if let Some(g) = groups.last_mut() {
            g.push(t);
        }
    }
    groups
        .iter()
        .map(|g| {
            let r = Record::new(g)?;
            let rid = r.need(tags::AID)?;
            len_in(tags::AID, rid, 5, 5, "5")?;
            Ok(ListedKey {
                rid: rid.to_vec(),
                index: one_byte(tags::CAPK_INDEX, r.need(tags::CAPK_INDEX)?)?,
                expiry: r.get(tags::CAPK_EXPIRY).map(expiry).transpose()?,
            })
        })
        .collect()
}

/// The AIDs a query answer lists (9F06 each; other tags are ignored).
pub fn parse_aid_list(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ParamError> {
    let tlvs = parse(bytes)?;
    let mut out = Vec::new();
    for t in &tlvs {
        if t.tag != tags::AID {
            continue;
        }
        let v = t.bytes().ok_or(ParamError::BadValue {
            tag: tag_hex(tags::AID),
            reason: "constructed where a primitive value is expected",
        })?;
        len_in(tags::AID, v, 5, 16, "5 to 16")?;
        out.push(v.to_vec());
    }
    Ok(out)
}

/// The TLVs of the download request for an AID (9F06).
pub fn aid_request_tlv(aid: &[u8]) -> Vec<u8> {
    tlv::encode_all(&[Tlv::primitive(tags::AID, aid.to_vec())])
}

/// Where the download is (named after what each state waits for).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    ExpectKeyList,
    ExpectKey { next: usize },
    ExpectKeyEndAck,
    ExpectAidList,
    ExpectAid { next: usize },
    ExpectAidEndAck,
    Over,
}

/// The download sequence, sans-IO: CA keys first (query pages, one download per key, end),
/// then AIDs the same way.
///
/// Call order: [`ParamDownload::next_request`], send it, feed the answer's field 39 and field
/// 62 to [`ParamDownload::handle_reply`]; repeat while it returns [`Progress::Continue`]. An
/// error ends the download (nothing is kept of it).
#[derive(Debug, Clone)]
pub struct ParamDownload {
    state: State,
    keys: Vec<ListedKey>,
    aids: Vec<Vec<u8>>,
    params: TerminalParams,
}

impl Default for ParamDownload {
    fn default() -> Self {
        Self::new()
    }
}

impl ParamDownload {
    /// A download at its first step (the CA key query).
    pub fn new() -> Self {
        ParamDownload {
            state: State::ExpectKeyList,
            keys: Vec::new(),
            aids: Vec::new(),
            params: TerminalParams::default(),
        }
    }

    /// What to send next; `None` once the download is over.
    pub fn next_request(&self) -> Option<ParamRequest> {
        let (message, field62) = match &self.state {
            State::ExpectKeyList => (
                ParamMessage::CaKeyQuery,
                Some(query_field62(self.keys.len())),
            ),
            State::ExpectKey { next } => (
                ParamMessage::CaKeyDownload,
                Some(self.keys.get(*next)?.request_tlv()),
            ),
            State::ExpectKeyEndAck => (ParamMessage::CaKeyDownloadEnd, None),
            State::ExpectAidList => (ParamMessage::AidQuery, Some(query_field62(self.aids.len()))),
            State::ExpectAid { next } => (
                ParamMessage::AidDownload,
                Some(aid_request_tlv(self.aids.get(*next)?)),
            ),
            State::ExpectAidEndAck => (ParamMessage::AidDownloadEnd, None),
            State::Over => return None,
        };
        Some(ParamRequest { message, field62 })
    }

    /// Takes the answer to the request from [`ParamDownload::next_request`]: its response code
    /// (field 39) and field 62.
    pub fn handle_reply(
        &mut self,
        response_code: &str,
        field62: Option<&[u8]>,
    ) -> Result<Progress, ParamError> {
        if self.state == State::Over {
            return Err(ParamError::Finished);
        }
        let r = self.step(response_code, field62);
        if r.is_err() {
            self.state = State::Over;
        }
        r
    }

    fn step(
        &mut self,
        response_code: &str,
        field62: Option<&[u8]>,
    ) -> Result<Progress, ParamError> {
        if ResponseCode::from_field(response_code) != Some(ResponseCode::APPROVED) {
            return Err(ParamError::HostRefused {
                code: response_code.to_owned(),
            });
        }
        let f62 = || field62.ok_or(ParamError::MissingField62);
        match self.state.clone() {
            State::ExpectKeyList => {
                let (status, rest) = ListStatus::split(f62()?)?;
                let listed = match status {
                    ListStatus::None => Vec::new(),
                    _ => parse_key_list(rest)?,
                };
                for k in &listed {
                    if self
                        .keys
                        .iter()
                        .any(|o| o.rid == k.rid && o.index == k.index)
                    {
                        return Err(ParamError::DuplicateEntry {
                            what: "CA key",
                            id: key_id(&k.rid, k.index),
                        });
                    }
                }
                let got = listed.len();
                self.keys.extend(listed);
                if self.keys.len() > MAX_ENTRIES {
                    return Err(ParamError::TooMany {
                        what: "CA keys",
                        max: MAX_ENTRIES,
                    });
                }
                self.state = match status {
                    ListStatus::More if got == 0 => {
                        return Err(ParamError::NoProgress { what: "CA keys" });
                    }
                    ListStatus::More => State::ExpectKeyList,
                    _ if self.keys.is_empty() => State::ExpectKeyEndAck,
                    _ => State::ExpectKey { next: 0 },
                };
            }
            State::ExpectKey { next } => {
                let (status, rest) = ListStatus::split(f62()?)?;
                let asked = self.keys.get(next).ok_or(ParamError::Finished)?;
                let id = key_id(&asked.rid, asked.index);
                if status == ListStatus::None {
                    return Err(ParamError::NoRecord { what: "CA key", id });
                }
                let key = CaPublicKey::from_tlv(rest)?;
                if key.rid != asked.rid || key.index != asked.index {
                    return Err(ParamError::WrongRecord {
                        what: "CA key",
                        asked: id,
                        got: key.id(),
                    });
                }
                self.params.ca_keys.push(key);
                self.state = if next + 1 < self.keys.len() {
                    State::ExpectKey { next: next + 1 }
                } else {
                    State::ExpectKeyEndAck
                };
            }
            State::ExpectKeyEndAck => self.state = State::ExpectAidList,
            State::ExpectAidList => {
                let (status, rest) = ListStatus::split(f62()?)?;
                let listed = match status {
                    ListStatus::None => Vec::new(),
                    _ => parse_aid_list(rest)?,
                };
                for a in &listed {
                    if self.aids.contains(a) {
                        return Err(ParamError::DuplicateEntry {
                            what: "AID",
                            id: hex::encode(a),
                        });
                    }
                }
                let got = listed.len();
                self.aids.extend(listed);
                if self.aids.len() > MAX_ENTRIES {
                    return Err(ParamError::TooMany {
                        what: "AIDs",
                        max: MAX_ENTRIES,
                    });
                }
                self.state = match status {
                    ListStatus::More if got == 0 => {
                        return Err(ParamError::NoProgress { what: "AIDs" });
                    }
                    ListStatus::More => State::ExpectAidList,
                    _ if self.aids.is_empty() => State::ExpectAidEndAck,
                    _ => State::ExpectAid { next: 0 },
                };
            }
            State::ExpectAid { next } => {
                let (status, rest) = ListStatus::split(f62()?)?;
                let asked = self.aids.get(next).ok_or(ParamError::Finished)?;
                if status == ListStatus::None {
                    return Err(ParamError::NoRecord {
                        what: "AID",
                        id: hex::encode(asked),
                    });
                }
                let p = AidParams::from_tlv(rest)?;
                if &p.aid != asked {
                    return Err(ParamError::WrongRecord {
                        what: "AID",
                        asked: hex::encode(asked),
                        got: hex::encode(&p.aid),
                    });
                }
                self.params.aids.push(p);
                self.state = if next + 1 < self.aids.len() {
                    State::ExpectAid { next: next + 1 }
                } else {
                    State::ExpectAidEndAck
                };
            }
            State::ExpectAidEndAck => {
                self.state = State::Over;
                let params = std::mem::take(&mut self.params);
                params.validate()?;
                return Ok(Progress::Done(params));
            }
            State::Over => return Err(ParamError::Finished),
        }
        Ok(Progress::Continue)
    }
}

// ------------------------------------------------------------------ serde helpers

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use smartpos_types::hex;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(D::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use smartpos_types::hex;

    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| hex::decode(&s).map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(&s.replace(' ', "")).unwrap()
    }

    /// Visa test CA public key 92 (RID A000000003, 1408 bits, exponent 3), as published with the
    /// Visa VSDC test keys and republished in many public terminal SDK samples; its checksum
    /// is verified below, so a single wrong digit fails the test.
    pub(crate) const VISA_92_MODULUS: &str = "996AF56F569187D09293C14810450ED8EE3357397B18A2458EFAA92DA3B6DF6514EC060195318FD43BE9B8F0CC669E3F844057CBDDF8BDA191BB64473BC8DC9A730DB8F6B4EDE3924186FFD9B8C7735789C23A36BA0B8AF65372EB57EA5D89E7D14E9C7B6B557460F10885DA16AC923F15AF3758F0F03EBD3C5C2C949CBA306DB44E6A2C076C5F67E281D7EF56785DC4D75945E491F01918800A9E2DC66F60080566CE0DAF8D17EAD46AD8E30A247C9F";
    const VISA_92_CHECKSUM: &str = "429C954A3859CEF91295F663C963E582ED6EB253";

    fn visa92() -> CaPublicKey {
        CaPublicKey {
            rid: h("A000000003"),
            index: 0x92,
            expiry: "20291231".into(),
            hash_alg: 1,
            pk_alg: 1,
            modulus: h(VISA_92_MODULUS),
            exponent: vec![3],
            checksum: Some(h(VISA_92_CHECKSUM)),
        }
    }

    /// The UnionPay debit AID record, built by hand from the layout in `docs/messages.md`.
    const UNIONPAY_DEBIT_RECORD: &str = concat!(
        "9F0608A000000333010101", // AID
        "DF010100",               // ASI: partial match
        "9F08020030",             // application version 0030
        "DF1105D84000A800",       // TAC default
        "DF1205D84004F800",       // TAC online
        "DF13050010000000",       // TAC denial
        "9F1B0400000000",         // floor limit 0 (binary)
        "DF150400000000",         // threshold 0
        "DF160199",               // max target 99 %
        "DF170199",               // target 99 %
        "DF14039F3704",           // default DDOL: unpredictable number
        "DF180101",               // online PIN supported
        "9F7B06000000100000",     // EC limit 1000.00
        "DF1906000000000000",     // contactless floor 0
        "DF2006000000500000",     // contactless transaction limit 5000.00
        "DF2106000000100000",     // contactless CVM limit 1000.00
    );

    fn unionpay_debit() -> AidParams {
        AidParams {
            aid: h("A000000333010101"),
            asi: 0,
            app_version: Some(h("0030")),
            tac_default: Some(h("D84000A800")),
            tac_denial: Some(h("0010000000")),
            tac_online: Some(h("D84004F800")),
            floor_limit: Some(0),
            threshold: Some(0),
            max_target_percent: Some(99),
            target_percent: Some(99),
            default_ddol: Some(h("9F3704")),
            default_tdol: None,
            online_pin: Some(true),
            ec_limit: Some(100_000),
            contactless_floor_limit: Some(0),
            contactless_txn_limit: Some(500_000),
            contactless_cvm_limit: Some(100_000),
        }
    }

    #[test]
    fn aid_record_golden_decodes_and_encodes_back() {
        let bytes = h(UNIONPAY_DEBIT_RECORD);
        assert_eq!(AidParams::from_tlv(&bytes), Ok(unionpay_debit()));
        assert_eq!(unionpay_debit().to_tlv(), bytes);
    }

    #[test]
    fn ca_key_checksum_is_sha1_of_rid_index_modulus_exponent() {
        let k = visa92();
        assert_eq!(k.compute_checksum().to_vec(), h(VISA_92_CHECKSUM));
        assert_eq!(k.validate(), Ok(()));
        let bytes = k.to_tlv();
        assert_eq!(CaPublicKey::from_tlv(&bytes), Ok(k));
    }

    #[test]
    fn ca_key_record_golden_with_bcd_expiry() {
        // The layout vendor SDK samples write: DF05 as 4 BCD bytes, checksum last.
        let bytes = h(&format!(
            "9F0605A000000003 9F220192 DF050420291231 DF060101 DF070101 DF0281B0{VISA_92_MODULUS} DF040103 DF0314{VISA_92_CHECKSUM}"
        ));
        assert_eq!(CaPublicKey::from_tlv(&bytes), Ok(visa92()));
    }

    #[test]
    fn ca_key_checksum_mismatch_is_refused() {
        let mut k = visa92();
        if let Some(m) = k.modulus.last_mut() {
            *m ^= 1;
        }
        assert_eq!(
            CaPublicKey::from_tlv(&k.to_tlv()),
            Err(ParamError::ChecksumMismatch {
                key: "A000000003/92".into()
            })
        );
        // Without a checksum the key is taken as it is.
        k.checksum = None;
        assert_eq!(CaPublicKey::from_tlv(&k.to_tlv()), Ok(k));
    }

    #[test]
    fn hostile_records_give_typed_errors() {
        let rec = h(UNIONPAY_DEBIT_RECORD);
        // Truncated: the last object is cut short.
        let cut = rec.get(..rec.len() - 2).unwrap();
        assert!(matches!(
            AidParams::from_tlv(cut),
            Err(ParamError::Tlv(TlvError::Incomplete { .. }))
        ));
        // A length byte pointing past the end.
        assert!(matches!(
            AidParams::from_tlv(&h("9F06FF")),
            Err(ParamError::Tlv(_))
        ));
        // Contactless limit of 5 bytes.
        assert_eq!(
            AidParams::from_tlv(&h("9F0607A0000000031010 DF20050000050000")),
            Err(ParamError::BadLength {
                tag: "DF20".into(),
                got: 5,
                expected: "6"
            })
        );
        // Not BCD.
        assert_eq!(
            AidParams::from_tlv(&h("9F0607A0000000031010 DF21060000001A0000")),
            Err(ParamError::BadValue {
                tag: "DF21".into(),
                reason: "not BCD digits"
            })
        );
        // AID missing, AID too short, tag twice, percentage out of range.
        assert_eq!(
            AidParams::from_tlv(&h("DF010100")),
            Err(ParamError::Missing { tag: "9F06".into() })
        );
        assert!(matches!(
            AidParams::from_tlv(&h("9F0602A000")),
            Err(ParamError::BadLength { .. })
        ));
        assert_eq!(
            AidParams::from_tlv(&h("9F0607A0000000031010 9F0607A0000000031010")),
            Err(ParamError::Duplicate { tag: "9F06".into() })
        );
        assert!(matches!(
            AidParams::from_tlv(&h("9F0607A0000000031010 DF1601FF")),
            Err(ParamError::BadValue { .. })
        ));
        // CA key: bad date, SM2 algorithm, bad exponent.
        let mut k = visa92();
        k.expiry = "20291331".into();
        assert!(matches!(
            CaPublicKey::from_tlv(&k.to_tlv()),
            Err(ParamError::BadValue { .. })
        ));
        let mut k = visa92();
        k.pk_alg = 4;
        assert!(matches!(
            CaPublicKey::from_tlv(&k.to_tlv()),
            Err(ParamError::UnsupportedAlgorithm { value: 4, .. })
        ));
        let mut k = visa92();
        k.exponent = vec![5];
        k.checksum = None;
        assert!(matches!(
            CaPublicKey::from_tlv(&k.to_tlv()),
            Err(ParamError::BadValue { .. })
        ));
        // Unknown tags of the host are ignored.
        let mut with_extra = rec.clone();
        with_extra.extend(h("DF250101"));
        assert_eq!(AidParams::from_tlv(&with_extra), Ok(unionpay_debit()));
    }

    #[test]
    fn expiry_reads_ascii_and_bcd() {
        assert_eq!(expiry(b"20301231").as_deref(), Ok("20301231"));
        assert_eq!(expiry(&h("20301231")).as_deref(), Ok("20301231"));
        assert_eq!(expiry(&h("301231")).as_deref(), Ok("20301231"));
        assert!(expiry(b"2030123X").is_err());
        assert!(expiry(&h("2030")).is_err());
    }

    #[test]
    fn status_digit_and_query_field() {
        assert_eq!(ListStatus::split(b"0"), Ok((ListStatus::None, &b""[..])));
        assert_eq!(ListStatus::split(b"3ab").map(|s| s.0), Ok(ListStatus::Last));
        assert_eq!(
            ListStatus::split(b"9"),
            Err(ParamError::UnknownStatus { status: b'9' })
        );
        assert_eq!(ListStatus::split(b""), Err(ParamError::MissingField62));
        assert_eq!(query_field62(0), b"100");
        assert_eq!(query_field62(12), b"112");
        assert_eq!(parse_query_field62(b"100"), Some(0));
        assert_eq!(parse_query_field62(b"15"), Some(5));
        assert_eq!(parse_query_field62(b"2"), None);
        assert_eq!(parse_query_field62(b"1x"), None);
    }

    /// A host in the test: answers every request of a download from `params`, `page` entries
    /// per query answer.
    fn host(params: &TerminalParams, page: usize, req: &ParamRequest) -> (String, Option<Vec<u8>>) {
        let f62 = req.field62.clone().unwrap_or_default();
        let list = |entries: Vec<Vec<u8>>| {
            let from = parse_query_field62(&f62).unwrap();
            let rest: Vec<_> = entries.into_iter().skip(from).collect();
            let status = if rest.is_empty() {
                ListStatus::None
            } else if rest.len() > page {
                ListStatus::More
            } else {
                ListStatus::Last
            };
            let mut out = vec![status.byte()];
            for e in rest.iter().take(page) {
                out.extend(e);
            }
            out
        };
        let answer = match req.message {
            ParamMessage::CaKeyQuery => Some(list(
                params
                    .ca_keys
                    .iter()
                    .map(|k| {
                        ListedKey {
                            rid: k.rid.clone(),
                            index: k.index,
                            expiry: Some(k.expiry.clone()),
                        }
                        .to_tlv()
                    })
                    .collect(),
            )),
            ParamMessage::AidQuery => Some(list(
                params
                    .aids
                    .iter()
                    .map(|a| aid_request_tlv(&a.aid))
                    .collect(),
            )),
            ParamMessage::CaKeyDownload => {
                let asked = parse_key_list(&f62).unwrap();
                let k = params.ca_key(&asked[0].rid, asked[0].index).unwrap();
                Some([b"1".to_vec(), k.to_tlv()].concat())
            }
            ParamMessage::AidDownload => {
                let asked = parse_aid_list(&f62).unwrap();
                let a = params.aids.iter().find(|a| a.aid == asked[0]).unwrap();
                Some([b"1".to_vec(), a.to_tlv()].concat())
            }
            _ => None,
        };
        ("00".into(), answer)
    }

    fn sample() -> TerminalParams {
        let mut visa = unionpay_debit();
        visa.aid = h("A0000000031010");
        let mut mc = unionpay_debit();
        mc.aid = h("A0000000041010");
        let mut credit = unionpay_debit();
        credit.aid = h("A000000333010102");
        let mut k2 = visa92();
        k2.index = 0x99;
        k2.checksum = Some(k2.compute_checksum().to_vec());
        TerminalParams {
            aids: vec![visa, mc, unionpay_debit(), credit],
            ca_keys: vec![visa92(), k2],
        }
    }

    fn run(
        params: &TerminalParams,
        page: usize,
    ) -> (Vec<ParamMessage>, Result<TerminalParams, ParamError>) {
        let mut d = ParamDownload::new();
        let mut sent = Vec::new();
        while let Some(req) = d.next_request() {
            sent.push(req.message);
            let (rc, f62) = host(params, page, &req);
            match d.handle_reply(&rc, f62.as_deref()) {
                Ok(Progress::Continue) => {}
                Ok(Progress::Done(p)) => return (sent, Ok(p)),
                Err(e) => return (sent, Err(e)),
            }
            assert!(sent.len() < 100, "download does not end");
        }
        (sent, Err(ParamError::Finished))
    }

    #[test]
    fn download_pages_queries_then_downloads_each_entry() {
        use ParamMessage::*;
        let p = sample();
        let (sent, got) = run(&p, 3);
        assert_eq!(got, Ok(p.clone()));
        assert_eq!(
            sent,
            vec![
                CaKeyQuery,
                CaKeyDownload,
                CaKeyDownload,
                CaKeyDownloadEnd,
                AidQuery,
                AidQuery, // 4 AIDs, 3 per page
                AidDownload,
                AidDownload,
                AidDownload,
                AidDownload,
                AidDownloadEnd
            ]
        );
        // A host with nothing: both queries answered `0`, both ends still sent.
        let (sent, got) = run(&TerminalParams::default(), 3);
        assert_eq!(got, Ok(TerminalParams::default()));
        assert_eq!(
            sent,
            vec![CaKeyQuery, CaKeyDownloadEnd, AidQuery, AidDownloadEnd]
        );
    }

    #[test]
    fn first_requests_carry_the_documented_field62() {
        let d = ParamDownload::new();
        assert_eq!(
            d.next_request(),
            Some(ParamRequest {
                message: ParamMessage::CaKeyQuery,
                field62: Some(b"100".to_vec())
            })
        );
        let mut d = ParamDownload::new();
        let listed = [
            b"1".to_vec(),
            h("9F0605A000000003 9F220192 DF05083230323931323331"),
        ]
        .concat();
        assert_eq!(d.handle_reply("00", Some(&listed)), Ok(Progress::Continue));
        assert_eq!(
            d.next_request(),
            Some(ParamRequest {
                message: ParamMessage::CaKeyDownload,
                field62: Some(h("9F0605A000000003 9F220192"))
            })
        );
    }

    #[test]
    fn hostile_sequences_end_the_download() {
        // "More follow" with nothing listed.
        let mut d = ParamDownload::new();
        assert_eq!(
            d.handle_reply("00", Some(b"2")),
            Err(ParamError::NoProgress { what: "CA keys" })
        );
        assert_eq!(d.next_request(), None);
        assert_eq!(d.handle_reply("00", Some(b"1")), Err(ParamError::Finished));
        // Unknown status, refusal, missing field 62.
        assert_eq!(
            ParamDownload::new().handle_reply("00", Some(b"7")),
            Err(ParamError::UnknownStatus { status: b'7' })
        );
        assert_eq!(
            ParamDownload::new().handle_reply("96", None),
            Err(ParamError::HostRefused { code: "96".into() })
        );
        assert_eq!(
            ParamDownload::new().handle_reply("00", None),
            Err(ParamError::MissingField62)
        );
        // The host lists key 92 and answers with key 99.
        let mut d = ParamDownload::new();
        let listed = [b"1".to_vec(), h("9F0605A000000003 9F220192")].concat();
        assert_eq!(d.handle_reply("00", Some(&listed)), Ok(Progress::Continue));
        let mut other = visa92();
        other.index = 0x99;
        other.checksum = None;
        assert_eq!(
            d.handle_reply("00", Some(&[b"1".to_vec(), other.to_tlv()].concat())),
            Err(ParamError::WrongRecord {
                what: "CA key",
                asked: "A000000003/92".into(),
                got: "A000000003/99".into()
            })
        );
        // A download answered "no such record".
        let mut d = ParamDownload::new();
        assert_eq!(d.handle_reply("00", Some(&listed)), Ok(Progress::Continue));
        assert!(matches!(
            d.handle_reply("00", Some(b"0")),
            Err(ParamError::NoRecord { .. })
        ));
        // The same key listed twice across pages.
        let mut d = ParamDownload::new();
        let more = [b"2".to_vec(), h("9F0605A000000003 9F220192")].concat();
        assert_eq!(d.handle_reply("00", Some(&more)), Ok(Progress::Continue));
        assert!(matches!(
            d.handle_reply("00", Some(&listed)),
            Err(ParamError::DuplicateEntry { .. })
        ));
    }

    #[test]
    fn json_form_is_snake_case_with_hex_bytes() {
        let p = sample();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["aids"][2]["aid"], "A000000333010101");
        assert_eq!(json["aids"][2]["contactless_cvm_limit"], 100_000);
        assert_eq!(json["ca_keys"][0]["rid"], "A000000003");
        assert_eq!(json["ca_keys"][0]["checksum"], VISA_92_CHECKSUM);
        let back: TerminalParams = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        assert!(
            serde_json::from_str::<TerminalParams>(
                r#"{"aids":[{"aid":"XYZ","asi":0}],"ca_keys":[]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn contactless_limits_match_exactly_then_by_prefix() {
        let mut p = sample();
        assert_eq!(
            p.contactless_limits_for(&h("A000000333010101")),
            Some((0, 500_000, 100_000))
        );
        // A card AID longer than the terminal's: partial match (ASI 0).
        assert_eq!(
            p.contactless_limits_for(&h("A00000033301010101")),
            Some((0, 500_000, 100_000))
        );
        assert_eq!(p.contactless_limits_for(&h("A0000000651010")), None);
        p.aids[2].asi = 1;
        p.aids[3].asi = 1;
        assert_eq!(p.contactless_limits_for(&h("A00000033301010101")), None);
        p.aids[0].contactless_cvm_limit = None;
        assert_eq!(p.contactless_limits_for(&h("A0000000031010")), None);
    }

    #[test]
    fn set_validation_refuses_duplicates() {
        let mut p = sample();
        p.ca_keys.push(visa92());
        assert_eq!(
            p.validate(),
            Err(ParamError::DuplicateEntry {
                what: "CA key",
                id: "A000000003/92".into()
            })
        );
    }
}
