//! The journal model: what a transaction, a pending item and the counters are.
//!
//! These records are what the runtime stores (SQLite in `smartpos-terminal`) and what the engine
//! asks it to write through [`crate::journal::JournalOp`]. Clear card data is in two places
//! only, both encrypted at rest by the runtime: the message needed to reverse or forward a
//! transaction, kept as packed bytes in [`PendingItem::message`], and the card number a
//! transaction keeps for its voids, refunds, completions and the batch upload
//! ([`TxnRecord::card`], a [`CardOnFile`] that JSON and Debug never show).

use serde::{Deserialize, Serialize};
pub use smartpos_iso8583::{PosEntryMode, ResponseCode};
pub use smartpos_types::{Currency, LocalDate, LocalTime};
use smartpos_types::{Pan, Track2};
use std::fmt;

/// Wall-clock and monotonic time, passed in by the driver (the engine has no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any origin); used for timeouts.
    pub mono_ms: u64,
    /// Unix time in milliseconds; recorded in the journal.
    pub unix_ms: i64,
    /// Terminal local date and time, used for message fields 12/13.
    pub local: LocalDateTime,
}

/// A local date and time as the terminal displays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalDateTime {
    /// Four-digit year.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl LocalDateTime {
    /// `hhmmss` (field 12).
    pub fn hhmmss(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }

    /// `MMDD` (field 13).
    pub fn mmdd(&self) -> String {
        format!("{:02}{:02}", self.month, self.day)
    }

    /// Converts Unix milliseconds to UTC date and time (days-from-civil, proleptic Gregorian).
    pub fn from_unix_ms_utc(unix_ms: i64) -> Self {
        let secs = unix_ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days algorithm (public domain description).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        LocalDateTime {
            year: u16::try_from(y).unwrap_or(0),
            month: u8::try_from(m).unwrap_or(1),
            day: u8::try_from(d).unwrap_or(1),
            hour: u8::try_from(rem / 3600).unwrap_or(0),
            minute: u8::try_from(rem % 3600 / 60).unwrap_or(0),
            second: u8::try_from(rem % 60).unwrap_or(0),
        }
    }
}

impl LocalDateTime {
    /// The Unix milliseconds of this date and time read as UTC (days from civil, the inverse
    /// of [`LocalDateTime::from_unix_ms_utc`]). With a local time, subtract the offset.
    pub fn as_utc_unix_ms(&self) -> i64 {
        // Howard Hinnant's days_from_civil algorithm (public domain description).
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs =
            i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second);
        (days * 86_400 + secs) * 1000
    }

    /// ISO 8601 with the offset: `2026-05-01T12:34:56+08:00`.
    pub fn iso8601(&self, utc_offset_minutes: i32) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            utc_offset_text(utc_offset_minutes)
        )
    }
}

/// Largest offset from UTC a terminal may have, in minutes (UTC+14:00, Kiribati; the most
/// negative is UTC-12:00).
const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

/// An offset from UTC in minutes as `+08:00` / `-03:30`.
pub fn utc_offset_text(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Parses an offset from UTC written `+08:00`, `-03:30`, `+0800` or `Z`: minutes, between
/// -12:00 and +14:00.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    let bad = || format!("{text:?} is not an offset like +08:00 (from -12:00 to +14:00)");
    if text == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let colon_ok = rest.len() == 4 || rest.as_bytes().get(2) == Some(&b':');
    if digits.len() != 4 || !colon_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad())?;
    let total = sign * (hours * 60 + minutes);
    if minutes >= 60 || !(-12 * 60..=MAX_UTC_OFFSET_MINUTES).contains(&total) {
        return Err(bad());
    }
    Ok(total)
}

/// What kind of transaction a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
// Exhaustive on purpose: receipts, diagnoses, the journal and the FFI (other crates) match
// every kind, so a new one is a compile error wherever it must be handled.
pub enum TxnKind {
    /// Purchase (0200).
    Sale,
    /// Void of a sale in the open batch (0200, processing code 20).
    Void,
    /// Refund of an earlier sale (0220 advice, store-and-forward).
    Refund,
    /// Pre-authorisation (0100).
    PreAuth,
    /// Pre-authorisation completion (0200 referencing the pre-auth).
    Completion,
    /// Pre-authorisation cancellation (0100, processing code 20).
    PreAuthCancel,
    /// Balance inquiry (0200, processing code 31); moves no money.
    Balance,
}

impl TxnKind {
    /// The stable lower-case name used in the journal, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Sale => "sale",
            TxnKind::Void => "void",
            TxnKind::Refund => "refund",
            TxnKind::PreAuth => "preauth",
            TxnKind::Completion => "completion",
            TxnKind::PreAuthCancel => "preauth_cancel",
            TxnKind::Balance => "balance",
        }
    }

    /// Parses [`TxnKind::as_str`] output.
    pub fn parse(s: &str) -> Option<TxnKind> {
        Some(match s {
            "sale" => TxnKind::Sale,
            "void" => TxnKind::Void,
            "refund" => TxnKind::Refund,
            "preauth" => TxnKind::PreAuth,
            "completion" => TxnKind::Completion,
            "preauth_cancel" => TxnKind::PreAuthCancel,
            "balance" => TxnKind::Balance,
            _ => return None,
        })
    }

    /// Whether an unanswered request of this kind must be reversed (it may have moved money).
    pub fn needs_reversal(self) -> bool {
        !matches!(self, TxnKind::Refund | TxnKind::Balance)
    }

    /// Whether this kind is sent as a store-and-forward advice rather than an online request.
    pub fn is_advice(self) -> bool {
        matches!(self, TxnKind::Refund)
    }
}

impl fmt::Display for TxnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a transaction stands. Every state change is journaled before it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
// Exhaustive on purpose, as `TxnKind`.
pub enum TxnState {
    /// Intent recorded; the request may be on the wire. A reversal is pending for reversible kinds.
    Sending,
    /// The host approved.
    Approved,
    /// The host declined (response code other than approval).
    Declined,
    /// The outcome was ambiguous; a reversal is pending until the host acknowledges it.
    Reversing,
    /// The host acknowledged the reversal: no money moved.
    Reversed,
    /// An approved sale or pre-auth later voided / cancelled.
    Voided,
    /// An advice (refund) recorded and queued for store-and-forward, not yet acknowledged.
    Queued,
    /// The request never left the terminal (the connection could not be opened): nothing
    /// happened at the host.
    NotSent,
    /// A reversal the host kept refusing, ended by the supervisor after settling it with the
    /// acquirer by phone (`Terminal::resolve_reversal`): no money moved, as for `Reversed`; the
    /// acquirer's reference is in the operator audit log.
    ReversalResolved,
}

impl TxnState {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Sending => "sending",
            TxnState::Approved => "approved",
            TxnState::Declined => "declined",
            TxnState::Reversing => "reversing",
            TxnState::Reversed => "reversed",
            TxnState::Voided => "voided",
            TxnState::Queued => "queued",
            TxnState::NotSent => "not_sent",
            TxnState::ReversalResolved => "reversal_resolved_by_supervisor",
        }
    }

    /// Parses [`TxnState::as_str`] output.
    pub fn parse(s: &str) -> Option<TxnState> {
        Some(match s {
            "sending" => TxnState::Sending,
            "approved" => TxnState::Approved,
            "declined" => TxnState::Declined,
            "reversing" => TxnState::Reversing,
            "reversed" => TxnState::Reversed,
            "voided" => TxnState::Voided,
            "queued" => TxnState::Queued,
            "not_sent" => TxnState::NotSent,
            "reversal_resolved_by_supervisor" => TxnState::ReversalResolved,
            _ => return None,
        })
    }

    /// Whether the state is final (nothing more will happen to it on its own).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TxnState::Sending | TxnState::Reversing | TxnState::Queued
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transaction in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// Unique reference: `BBBBBBSSSSSS` (batch number and STAN, six digits each).
    pub reference: String,
    /// Kind.
    pub kind: TxnKind,
    /// State.
    pub state: TxnState,
    /// Amount in minor units (fen / cents).
    pub amount: u64,
    /// ISO 4217 numeric currency code, e.g. `156` (JSON: the three digits as text).
    #[serde(with = "as_text")]
    pub currency: Currency,
    /// System trace audit number (field 11).
    pub stan: u32,
    /// Batch number (field 60.2 for `cup`).
    pub batch: u32,
    /// Local time sent in field 12 (`hhmmss`; JSON: the six digits as text).
    #[serde(with = "as_text")]
    pub local_time: LocalTime,
    /// Local date sent in field 13 (`MMDD`; JSON: the four digits as text).
    #[serde(with = "as_text")]
    pub local_date: LocalDate,
    /// Retrieval reference number from the host (field 37).
    pub rrn: Option<String>,
    /// Authorisation code from the host (field 38).
    pub auth_code: Option<String>,
    /// Host response code (field 39; JSON: the two characters as text, or null).
    #[serde(default, with = "opt_text")]
    pub response_code: Option<ResponseCode>,
    /// The reference of the original for void, refund, completion and pre-auth cancel.
    pub original_ref: Option<String>,
    /// App-supplied idempotency key.
    pub idempotency_key: Option<String>,
    /// Operator who ran it.
    pub operator: Option<String>,
    /// PAN masked to first 6 / last 4.
    pub pan_masked: Option<String>,
    /// POS entry mode (field 22) with the PIN digit the request earned
    /// ([`crate::proto::CardData::entry_mode_with_pin`]; JSON: the three digits as text, or
    /// null).
    #[serde(default, with = "opt_text")]
    pub entry_mode: Option<PosEntryMode>,
    /// Unix milliseconds when the intent was recorded.
    pub created_at_ms: i64,
    /// Unix milliseconds of the last state change.
    pub updated_at_ms: i64,
    /// The card number (and expiry) of the transaction, for what refers to it later without the
    /// card: a void, refund or completion sends it as a keyed card (field 22 `012`), and the
    /// settlement's batch upload names each record's card. Never serialized (JSON, FFI) and
    /// masked in Debug; the runtime's journal keeps it encrypted (docs/adr/0007-card-on-file.md).
    #[serde(skip)]
    pub card: Option<CardOnFile>,
}

/// A card number the terminal keeps with a transaction (PCI DSS 3.4: stored unreadable, here
/// AES-256-GCM under the journal key). Track data, card security codes and PIN blocks are
/// never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct CardOnFile {
    /// The PAN.
    pub pan: Pan,
    /// Expiry `YYMM`, when the card gave one.
    pub expiry: Option<String>,
}

impl fmt::Debug for CardOnFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardOnFile")
            .field("pan", &self.pan)
            .field("expiry", &self.expiry.as_ref().map(|_| "****"))
            .finish()
    }
}

impl CardOnFile {
    /// The card of a card read: its PAN (keyed, or from track 2) and expiry.
    pub fn of(pan: Option<Pan>, expiry: Option<&str>, track2: Option<&Track2>) -> Option<Self> {
        let pan = pan.or_else(|| track2.and_then(Track2::pan))?;
        let expiry = expiry
            .map(str::to_owned)
            .or_else(|| track2.and_then(|t| t.expiry().map(str::to_owned)))
            .filter(|e| e.len() == 4 && e.bytes().all(|b| b.is_ascii_digit()));
        Some(CardOnFile { pan, expiry })
    }

    /// The stored form, `PAN` or `PAN=YYMM` (the runtime encrypts it).
    pub fn to_text(&self) -> String {
        match &self.expiry {
            Some(e) => format!("{}={e}", self.pan.expose()),
            None => self.pan.expose().to_owned(),
        }
    }

    /// Reads [`CardOnFile::to_text`]; `None` if it is not a PAN with an optional 4-digit expiry.
    pub fn from_text(text: &str) -> Option<Self> {
        let (pan, expiry) = match text.split_once('=') {
            Some((p, e)) if e.len() == 4 && e.bytes().all(|b| b.is_ascii_digit()) => {
                (p, Some(e.to_owned()))
            }
            Some(_) => return None,
            None => (text, None),
        };
        Some(CardOnFile {
            pan: Pan::new(pan).ok()?,
            expiry,
        })
    }
}

impl TxnRecord {
    /// The local date and time the transaction was sent with (fields 13 and 12), and its offset
    /// from UTC in minutes. The year comes from `created_at_ms` (corrected when the local date
    /// and UTC straddle a new year), and the offset is the difference between the two, to the
    /// nearest quarter hour: both were taken from the same clock reading when the intent was
    /// recorded, so this is the offset the terminal had then. The offset is `None` when the
    /// difference is no real offset. Always `Some` since 12/13 are typed ([`LocalDate`],
    /// [`LocalTime`]: a malformed stored value is refused when the journal is read); the
    /// `Option` stays so callers written against the text fields keep working.
    pub fn local_date_time(&self) -> Option<(LocalDateTime, Option<i32>)> {
        let (date, time) = (self.local_date, self.local_time);
        let (month, day) = (date.month(), date.day());
        let (hour, minute, second) = (time.hour(), time.minute(), time.second());
        let utc = LocalDateTime::from_unix_ms_utc(self.created_at_ms);
        let year = match (utc.month, month) {
            (12, 1) => utc.year.saturating_add(1),
            (1, 12) => utc.year.saturating_sub(1),
            _ => utc.year,
        };
        let local = LocalDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        const QUARTER_MS: i64 = 15 * 60_000;
        let diff = local.as_utc_unix_ms() - self.created_at_ms;
        let minutes = (diff + QUARTER_MS / 2).div_euclid(QUARTER_MS) * 15;
        let offset = i32::try_from(minutes)
            .ok()
            .filter(|m| (-12 * 60..=MAX_UTC_OFFSET_MINUTES).contains(m));
        Some((local, offset))
    }

    /// [`TxnRecord::local_date_time`] as ISO 8601 (`2026-05-01T12:34:56+08:00`; without the
    /// offset when it is not known).
    pub fn local_time_text(&self) -> Option<String> {
        let (t, offset) = self.local_date_time()?;
        Some(match offset {
            Some(o) => t.iso8601(o),
            None => t.iso8601(0).trim_end_matches("+00:00").to_owned(),
        })
    }
}

/// What a pending item is waiting to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// A reversal (0400/0401) of an ambiguous or failed financial request.
    Reversal,
    /// A store-and-forward advice (0220/0221), e.g. a refund.
    Advice,
    /// A store-and-forward notice about a chip transaction that changes no money: the TC
    /// upload (0320) or the issuer script results (0620). Its answer changes no record.
    Notice,
}

impl PendingKind {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Reversal => "reversal",
            PendingKind::Advice => "advice",
            PendingKind::Notice => "notice",
        }
    }
}

/// Why a reversal is sent (field 39 of the 0400, CUP convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReversalReason {
    /// `98`: no response from the host (timeout, connection lost, crash before the answer).
    NoResponse,
    /// `A0`: the response's MAC did not verify.
    BadMac,
    /// `96`: the terminal failed after the host approved (e.g. the card declined the second AC).
    TerminalFailure,
    /// `06`: another error (response did not match the request, malformed response).
    Other,
}

impl ReversalReason {
    /// The two-character code carried in field 39.
    pub fn code(self) -> &'static str {
        match self {
            ReversalReason::NoResponse => "98",
            ReversalReason::BadMac => "A0",
            ReversalReason::TerminalFailure => "96",
            ReversalReason::Other => "06",
        }
    }

    /// Parses [`ReversalReason::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "98" => ReversalReason::NoResponse,
            "A0" => ReversalReason::BadMac,
            "96" => ReversalReason::TerminalFailure,
            "06" => ReversalReason::Other,
            _ => return None,
        })
    }
}

/// A message that must reach the host: a reversal or a store-and-forward advice.
///
/// Written durably before the original request leaves (reversals) or before the advice is first
/// sent, and removed only when the host acknowledges it.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingItem {
    /// Order of delivery (ascending); assigned by the engine from a counter.
    pub seq: u64,
    /// Reversal or advice.
    pub kind: PendingKind,
    /// The transaction it belongs to.
    pub reference: String,
    /// Reversal reason (reversals only). Starts as `NoResponse` and is refined when known.
    pub reason: Option<ReversalReason>,
    /// The packed message body without MAC (the MAC is computed at each send with the current key).
    pub message: Vec<u8>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Whether the item is armed. A reversal written with the intent is not armed while the
    /// original request is still waiting for its answer: only an ambiguous outcome arms it.
    pub armed: bool,
    /// Monotonic time before which the item is not retried by background recovery (back-off).
    pub not_before_unix_ms: i64,
}

impl fmt::Debug for PendingItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message holds card data: show its length only.
        f.debug_struct("PendingItem")
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .field("reference", &self.reference)
            .field("reason", &self.reason)
            .field("message", &format_args!("<{} bytes>", self.message.len()))
            .field("attempts", &self.attempts)
            .field("armed", &self.armed)
            .finish()
    }
}

/// Terminal counters. STAN and invoice wrap at 999999 (skipping 0); the batch number only grows
/// (it wraps at 999999 too, which at one batch a day takes 2,700 years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Last STAN used.
    pub stan: u32,
    /// Current (open) batch number.
    pub batch: u32,
    /// Next pending-item sequence number.
    pub pending_seq: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            stan: 0,
            batch: 1,
            pending_seq: 1,
        }
    }
}

impl Counters {
    /// Advances and returns the next STAN (1..=999999).
    pub fn next_stan(&mut self) -> u32 {
        self.stan = if self.stan >= 999_999 {
            1
        } else {
            self.stan + 1
        };
        self.stan
    }

    /// Advances and returns the next pending sequence number.
    pub fn next_seq(&mut self) -> u64 {
        let s = self.pending_seq;
        self.pending_seq += 1;
        s
    }
}

/// Totals of one batch as the terminal counts them (for the 0500 reconciliation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTotals {
    /// Approved sales and completions (not voided).
    pub debit_count: u32,
    /// Their amount.
    pub debit_amount: u64,
    /// Refunds recorded (queued or acknowledged).
    pub credit_count: u32,
    /// Their amount.
    pub credit_amount: u64,
}

impl BatchTotals {
    /// Computes the totals of `batch` from its records.
    pub fn of<'a>(batch: u32, records: impl IntoIterator<Item = &'a TxnRecord>) -> Self {
        let mut t = BatchTotals::default();
        for r in records.into_iter().filter(|r| r.batch == batch) {
            match (r.kind, r.state) {
                (TxnKind::Sale | TxnKind::Completion, TxnState::Approved) => {
                    t.debit_count += 1;
                    t.debit_amount += r.amount;
                }
                (TxnKind::Refund, TxnState::Approved | TxnState::Queued) => {
                    t.credit_count += 1;
                    t.credit_amount += r.amount;
                }
                _ => {}
            }
        }
        t
    }
}

/// Builds a transaction reference from batch and STAN.
pub fn reference(batch: u32, stan: u32) -> String {
    format!("{batch:06}{stan:06}")
}

/// `Option<T>` as its text or null (serde `with`), for the typed wire values of a record.
mod opt_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::fmt::Display;
    use std::str::FromStr;

    pub(super) fn serialize<T: Display, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?
            .map(|t| t.parse().map_err(D::Error::custom))
            .transpose()
    }
}

/// Serde for a typed value kept as its text (`Display` / `FromStr`), so that JSON keeps the
/// wire form (`"currency": "156"`) while the model keeps the type.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::fmt::Display;
    use std::str::FromStr;

    pub(super) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stan_wraps_and_skips_zero() {
        let mut c = Counters {
            stan: 999_998,
            ..Counters::default()
        };
        assert_eq!(c.next_stan(), 999_999);
        assert_eq!(c.next_stan(), 1);
    }

    #[test]
    fn utc_conversion() {
        // 2026-11-22 02:41:06 UTC
        let t = LocalDateTime::from_unix_ms_utc(1_795_315_266_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2026, 11, 22, 2, 41, 6)
        );
        assert_eq!(t.mmdd(), "1122");
        assert_eq!(t.hhmmss(), "024106");
        let epoch = LocalDateTime::from_unix_ms_utc(0);
        assert_eq!((epoch.year, epoch.month, epoch.day), (1970, 1, 1));
        let leap = LocalDateTime::from_unix_ms_utc(951_782_400_000); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn local_time_round_trips_through_unix_ms() {
        for ms in [0, 951_782_400_000, 1_795_315_266_000, 1_767_225_599_000] {
            assert_eq!(LocalDateTime::from_unix_ms_utc(ms).as_utc_unix_ms(), ms);
        }
    }

    #[test]
    fn utc_offsets_parse_and_print() {
        assert_eq!(parse_utc_offset("+08:00"), Ok(480));
        assert_eq!(parse_utc_offset("+0800"), Ok(480));
        assert_eq!(parse_utc_offset("-03:30"), Ok(-210));
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        for bad in [
            "8", "+8", "+08", "+08:60", "+15:00", "-12:30", "+08:0a", "", "+08-00",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
        assert_eq!(utc_offset_text(480), "+08:00");
        assert_eq!(utc_offset_text(-210), "-03:30");
        assert_eq!(utc_offset_text(0), "+00:00");
    }

    fn record_at(created_at_ms: i64, local_date: &str, local_time: &str) -> TxnRecord {
        TxnRecord {
            reference: "000001000001".into(),
            kind: TxnKind::Sale,
            state: TxnState::Approved,
            amount: 1,
            currency: smartpos_types::Currency::CNY,
            stan: 1,
            batch: 1,
            local_time: local_time.parse().expect("hhmmss"),
            local_date: local_date.parse().expect("MMDD"),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: None,
            idempotency_key: None,
            operator: None,
            pan_masked: None,
            entry_mode: None,
            created_at_ms,
            updated_at_ms: created_at_ms,
            card: None,
        }
    }

    #[test]
    fn a_records_currency_is_typed_and_its_json_keeps_the_three_digits() {
        let r = record_at(1, "0101", "101010");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["currency"], "156");
        let back: TxnRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.currency, Currency::CNY);
        let mut bad = json;
        bad["currency"] = "15".into();
        assert!(serde_json::from_value::<TxnRecord>(bad).is_err());
    }

    #[test]
    fn a_records_typed_wire_values_keep_their_json_text() {
        let mut r = record_at(1, "0102", "123456");
        r.response_code = Some(ResponseCode::INSUFFICIENT_FUNDS);
        r.entry_mode = Some(PosEntryMode::CONTACTLESS_CHIP_NO_PIN);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["local_date"], "0102");
        assert_eq!(json["local_time"], "123456");
        assert_eq!(json["response_code"], "51");
        assert_eq!(json["entry_mode"], "072");
        let back: TxnRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, r);
        let none = serde_json::to_value(record_at(1, "0102", "123456")).unwrap();
        assert!(none["response_code"].is_null() && none["entry_mode"].is_null());
        assert_eq!(
            serde_json::from_value::<TxnRecord>(none)
                .unwrap()
                .response_code,
            None
        );
        for (key, bad) in [
            ("local_date", "13x1"),
            ("local_time", "99"),
            ("response_code", "5"),
            ("entry_mode", "07"),
        ] {
            let mut j = json.clone();
            j[key] = bad.into();
            assert!(serde_json::from_value::<TxnRecord>(j).is_err(), "{key}");
        }
    }

    #[test]
    fn a_records_local_time_carries_the_offset_it_was_sent_with() {
        // 2026-11-22 23:54:10.600 UTC, sent as 11-23 07:54:10 in UTC+8.
        let r = record_at(1_795_391_650_600, "1123", "075410");
        assert_eq!(
            r.local_time_text().as_deref(),
            Some("2026-11-23T07:54:10+08:00")
        );
        // New Year: 2026-12-31 20:00 UTC is 2027-01-01 04:00 in UTC+8.
        let r = record_at(1_798_747_200_000, "0101", "040000");
        assert_eq!(
            r.local_time_text().as_deref(),
            Some("2027-01-01T04:00:00+08:00")
        );
        // West of UTC, across the date line the other way.
        let r = record_at(1_795_315_266_000, "1121", "234106");
        assert_eq!(
            r.local_time_text().as_deref(),
            Some("2026-11-21T23:41:06-03:00")
        );
        // A malformed stored date or time (`"13x1"`, `"99"`) no longer reaches a record: the
        // journal refuses the row, naming the column (smartpos-terminal's journal tests,
        // `a_malformed_local_date_or_time_column_is_refused_naming_the_column`).
    }

    #[test]
    fn names_round_trip() {
        for k in [
            TxnKind::Sale,
            TxnKind::Void,
            TxnKind::Refund,
            TxnKind::PreAuth,
            TxnKind::Completion,
            TxnKind::PreAuthCancel,
            TxnKind::Balance,
        ] {
            assert_eq!(TxnKind::parse(k.as_str()), Some(k));
        }
        for r in [
            ReversalReason::NoResponse,
            ReversalReason::BadMac,
            ReversalReason::TerminalFailure,
            ReversalReason::Other,
        ] {
            assert_eq!(ReversalReason::from_code(r.code()), Some(r));
        }
    }
}
