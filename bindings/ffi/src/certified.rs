//! The device's certified EMV kernel (Sunmi PayLib `EMVOptV2`, PAX, Newland) as the app's
//! [`CertifiedKernel`] foreign trait, its records, the one place where they are converted to
//! and from `smartpos_emv::certified`, and the sale and pre-authorisation through it.
//!
//! The trait is synchronous, like [`crate::ApduTransport`]: the core calls it on the
//! terminal's runtime worker thread (a thread of its own, allowed to block while the customer
//! inserts the card or types the PIN), while the command holds the terminal's lock. Every call
//! goes through `reentry::call_app`, so a terminal method called from inside it throws `Busy`
//! at once. A Kotlin exception the app did not declare becomes
//! [`CardKernelError::Kernel`] with [`UNDECLARED_EXCEPTION_CODE`], never a panic.
//!
//! Card data from the kernel crosses in objects, not records: [`CardNumber`] (PAN, track 2,
//! expiry) and [`PinBlock`] are made into the core's masked, zeroized newtypes when Kotlin
//! builds them, are never shown to Kotlin again, and Kotlin's generated `toString()` of a
//! [`KernelCard`] prints only their object handles.
//!
//! The acceptance rules (swiped chip card, fallback, keyed checks), the idempotency replay,
//! the events and the card's final decision are the core's (`Terminal::transact` with
//! `CardSource::Certified`); nothing here decides anything.

use crate::convert::TxnResult;
use crate::error::SmartPosError;
use crate::reentry::{self, Callback};
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::api::card::{self as core_card, CardSource};
use smartpos_terminal::api::emv as bridge;
use smartpos_terminal::api::emv::KernelBridgeError;
use smartpos_terminal::api::emv::{CryptogramType as CoreCryptogram, IccData};
use smartpos_types::{Pan, SecretBytes, Track2, hex};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The [`CardKernelError::Kernel`] code given to an exception the app's kernel threw without
/// declaring it (Kotlin: `Int.MIN_VALUE`); no vendor uses it.
pub const UNDECLARED_EXCEPTION_CODE: i32 = i32::MIN;

/// The [`CardKernelError::Kernel`] code when a Kotlin record handed to the test kit's kernel
/// cannot become the core's (an unpredictable number that is not 4 bytes, an AID that is not
/// hex): only a request the app changed on its way can fail so.
const NOT_CONVERTIBLE: i32 = -1;

// ---------------------------------------------------------------------------------------------
// Records and enums.

/// How the card was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum EntryMode {
    /// Inserted: contact chip (field 22 `05x`).
    Chip,
    /// Tapped: contactless chip (`07x`).
    Contactless,
    /// Swiped: magnetic stripe (`02x`).
    Swipe,
    /// Swiped after the chip of a chip card could not be read (`80x`).
    Fallback,
    /// Typed by the cashier (`01x`).
    Keyed,
}

/// Cryptogram type of a GENERATE AC answer (CID, 9F27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CryptogramType {
    /// Application Authentication Cryptogram: the card declines.
    Aac,
    /// Transaction Certificate: the card accepts.
    Tc,
    /// Authorisation Request Cryptogram: go online (never a final decision).
    Arqc,
}

/// What the SDK asks the kernel to read a card for: the terminal data the kernel puts into
/// its DOLs (EMV Book 3 Annex A).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KernelRequest {
    /// Transaction type (9C): `0x00` goods and services, `0x03` pre-authorisation, `0x31`
    /// balance inquiry.
    pub txn_type: u8,
    /// Amount, authorised (9F02), minor units.
    pub amount: u64,
    /// Amount, other (9F03), minor units.
    pub other_amount: u64,
    /// Transaction currency (5F2A), ISO 4217 numeric.
    pub currency: u16,
    /// Terminal country (9F1A), ISO 3166 numeric.
    pub country: u16,
    /// Transaction date (9A), `YYMMDD`, local time.
    pub date: String,
    /// Transaction time (9F21), `hhmmss`, local time.
    pub time: String,
    /// Unpredictable number (9F37), 4 bytes from the SDK's random source: give it to the
    /// kernel rather than letting it draw its own.
    pub unpredictable_number: Vec<u8>,
    /// How the card may be presented (empty: any way).
    pub allowed: Vec<EntryMode>,
    /// AIDs the terminal accepts, upper-case hex (empty: the kernel's own list).
    pub aids: Vec<String>,
}

/// The card number the kernel read: PAN, track 2 (or the chip's track 2 equivalent, 57) and
/// expiry. Converted into the core's masked, zeroized newtypes when it is built; nothing
/// reads it back to Kotlin except [`CardNumber::pan_masked`], and the SDK never stores it in
/// clear (the journal keeps the PAN masked).
#[derive(Debug, uniffi::Object)]
pub struct CardNumber {
    pan: Pan,
    track2: Option<Track2>,
    expiry: Option<String>,
}

fn rejected(reason: impl Into<String>) -> SmartPosError {
    SmartPosError::Rejected {
        reason: reason.into(),
        diagnosis: None,
    }
}

#[uniffi::export]
impl CardNumber {
    /// From the kernel's PAN (5A, 12 to 19 digits), track 2 (digits with a `D` or `=`
    /// separator) and expiry (`YYMM`, 5F24). Give the PAN, the track 2 or both; without a PAN
    /// the track 2's is used. Throws `Rejected` (without echoing the data) when malformed.
    #[uniffi::constructor(default(pan = None, track2 = None, expiry = None))]
    pub fn new(
        pan: Option<String>,
        track2: Option<String>,
        expiry: Option<String>,
    ) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let pan = pan.map(Zeroizing::new);
        let track2 = track2.map(Zeroizing::new);
        let track2 = match track2.as_deref() {
            Some(t) => Some(Track2::new(t).ok_or_else(|| rejected("track 2 data is malformed"))?),
            None => None,
        };
        let pan = match (pan.as_deref(), &track2) {
            (Some(p), _) => Pan::new(p).map_err(|e| rejected(format!("card number: {e}")))?,
            (None, Some(t)) => t
                .pan()
                .ok_or_else(|| rejected("track 2 holds no card number"))?,
            (None, None) => return Err(rejected("a card number needs a PAN or a track 2")),
        };
        if let Some(e) = &expiry
            && (e.len() != 4 || !e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(rejected("expiry must be YYMM"));
        }
        Ok(Arc::new(CardNumber {
            pan,
            track2,
            expiry,
        }))
    }

    /// The PAN masked to first 6 / last 4, for the screen.
    pub fn pan_masked(&self) -> String {
        stats::call();
        self.pan.masked()
    }
}

/// An ISO 9564 PIN block the device's secure PIN pad encrypted under the PIN key loaded into
/// it (8 bytes; 16 for format 4 and SM4 blocks). Hidden from `toString()`; zeroized when
/// dropped.
#[derive(Debug, uniffi::Object)]
pub struct PinBlock(SecretBytes);

#[uniffi::export]
impl PinBlock {
    /// The encrypted block (8 or 16 bytes); throws `Rejected` for another length.
    #[uniffi::constructor]
    pub fn new(block: Vec<u8>) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let block = SecretBytes::new(block);
        if block.len() != 8 && block.len() != 16 {
            return Err(rejected(format!(
                "a PIN block is 8 or 16 bytes, not {}",
                block.len()
            )));
        }
        Ok(Arc::new(PinBlock(block)))
    }
}

impl PinBlock {
    /// A block made inside Rust (the test kit's security module).
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn from_secret(block: SecretBytes) -> PinBlock {
        PinBlock(block)
    }

    /// The encrypted block, for the core.
    pub(crate) fn secret(&self) -> &SecretBytes {
        &self.0
    }
}

/// The cardholder verification the kernel settled on.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum Verification {
    /// Online PIN. `block`: the encrypted block from the device's PIN pad; `null`: the kernel
    /// has no PIN pad of its own, and the SDK asks the `PinEntry` given to the sale.
    OnlinePin {
        /// The PIN pad's encrypted block, if it made one.
        block: Option<Arc<PinBlock>>,
    },
    /// Signature on the receipt.
    Signature,
    /// No cardholder verification.
    NoCvm,
    /// Verified on the consumer's device (phone, watch).
    ConsumerDevice,
}

/// A card the kernel read. Card data is inside [`CardNumber`] and [`Verification`]'s
/// [`PinBlock`]; the byte fields print as array handles in Kotlin.
#[derive(Clone, uniffi::Record)]
pub struct KernelCard {
    /// How the card was presented.
    pub entry_mode: EntryMode,
    /// PAN, track 2 (equivalent) and expiry.
    pub card: Arc<CardNumber>,
    /// Cardholder verification.
    pub verification: Verification,
    /// PAN sequence number (5F34), chip cards.
    #[uniffi(default = None)]
    pub pan_seq: Option<u8>,
    /// Service code (3 digits, 5F30); `null`: taken from the track 2.
    #[uniffi(default = None)]
    pub service_code: Option<String>,
    /// The selected application's AID (4F / 84), chip cards.
    #[uniffi(default)]
    pub aid: Vec<u8>,
    /// Application label (50), chip cards.
    #[uniffi(default = "")]
    pub app_label: String,
    /// The chip data for field 55 (TLV, with 9F26 ARQC and 9F27 of the first GENERATE AC),
    /// chip cards; empty for a swipe.
    #[uniffi(default)]
    pub icc_data: Vec<u8>,
    /// For a swipe: the kernel tried the chip first and could not read it (a fallback).
    #[uniffi(default = false)]
    pub chip_failed: bool,
}

impl std::fmt::Debug for KernelCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCard")
            .field("entry_mode", &self.entry_mode)
            .field("card", &self.card)
            .field("verification", &self.verification)
            .field("aid", &hex::encode(&self.aid))
            .field("icc_data", &self.icc_data.len())
            .field("chip_failed", &self.chip_failed)
            .finish_non_exhaustive()
    }
}

/// What the host answered, for the card's final decision (vendor APIs: Sunmi
/// `importOnlineProcStatus`, PAX "online result"): response code (field 39 → 8A),
/// authorisation code (38, field 38), issuer authentication data (91) and issuer scripts (71,
/// 72) from field 55 of the response.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HostAnswer {
    /// Whether the host was reached. `false`: no answer; the kernel runs "unable to go
    /// online" and the card normally declines.
    pub online: bool,
    /// Response code (field 39), two characters; empty when not online.
    pub response_code: String,
    /// Whether the SDK counts the response code as an approval.
    pub approved: bool,
    /// Authorisation code (field 38).
    pub auth_code: Option<String>,
    /// Issuer authentication data (91).
    pub issuer_auth_data: Option<Vec<u8>>,
    /// Issuer scripts, each a whole 71 or 72 template (TLV), in the order received.
    pub scripts: Vec<Vec<u8>>,
}

/// The card's final decision (second GENERATE AC).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct CardDecision {
    /// TC: the card accepts; AAC: it declines (the SDK reverses the approval). ARQC here is a
    /// kernel fault, treated as a decline.
    pub cryptogram_type: CryptogramType,
    /// The final application cryptogram (9F26).
    pub cryptogram: Vec<u8>,
    /// The final chip data (TLV: 9F26, 9F27, 95, 9B, 9F36, ...), for the TC upload.
    pub icc_data: Vec<u8>,
    /// Issuer script results (DF31 / 9F5B value: per script, one result byte and the
    /// 4-byte script id).
    #[uniffi(default)]
    pub script_results: Vec<u8>,
}

impl std::fmt::Debug for CardDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDecision")
            .field("cryptogram_type", &self.cryptogram_type)
            .field("icc_data", &self.icc_data.len())
            .field("script_results", &self.script_results.len())
            .finish_non_exhaustive()
    }
}

/// Why the kernel gave no card or no decision (Kotlin: `CardKernelException`). Mirrors the
/// core's `KernelBridgeError`; none of them moved money by itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum CardKernelError {
    /// The cashier or the customer cancelled (the sale throws `SmartPosException.Cancelled`).
    #[error("card reading cancelled")]
    Aborted,
    /// The card was removed before the kernel finished.
    #[error("card removed")]
    CardRemoved,
    /// No card was presented in time.
    #[error("no card presented in time")]
    Timeout,
    /// The card has no application the terminal accepts, is blocked, or its chip cannot be
    /// read (then ask for a swipe: the kernel reports `chip_failed` and the swipe is a
    /// fallback).
    #[error("card not accepted: {reason}")]
    NotAccepted {
        /// For logs (no card data).
        reason: String,
    },
    /// The kernel failed: the vendor API's error code and text. An exception the app did not
    /// declare arrives here with [`UNDECLARED_EXCEPTION_CODE`].
    #[error("kernel error {code}: {reason}")]
    Kernel {
        /// The vendor's error code.
        code: i32,
        /// For logs (no card data).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CardKernelError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CardKernelError::Kernel {
            code: UNDECLARED_EXCEPTION_CODE,
            reason: format!("the kernel threw: {}", e.reason),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The foreign trait and its adapter.

/// The app's bridge to the device's certified EMV kernel (see `bindings/kotlin/README.md`,
/// "Certified kernel bridge"). Called on the terminal's worker thread, which may block, while
/// the sale holds the terminal's lock: do not call the terminal from here (a synchronous
/// method throws `SmartPosException.Busy` at once).
#[uniffi::export(with_foreign)]
pub trait CertifiedKernel: Send + Sync {
    /// Waits for the card and runs the kernel up to its online request: application
    /// selection, read records, offline data authentication, cardholder verification (the
    /// device PIN pad), first GENERATE AC (chip); or reads the stripe. Returns the card.
    fn read(&self, request: KernelRequest) -> Result<KernelCard, CardKernelError>;

    /// After the host answered (or could not be reached): gives the answer to the card and
    /// returns its final decision (second GENERATE AC, issuer scripts). Called only for an
    /// inserted card, which is still in the reader.
    fn complete(&self, answer: HostAnswer) -> Result<CardDecision, CardKernelError>;

    /// Ends the kernel's transaction without completion (a refused or declined card, a
    /// failure, a card that made no final decision). A failure here is only logged.
    fn abort(&self) -> Result<(), CardKernelError>;
}

/// Adapts the app's kernel to the core's trait.
pub(crate) struct KernelAdapter(pub(crate) Arc<dyn CertifiedKernel>);

impl bridge::CertifiedKernel for KernelAdapter {
    fn read(
        &mut self,
        request: &bridge::KernelRequest,
    ) -> Result<bridge::KernelCard, KernelBridgeError> {
        stats::callback();
        let request = KernelRequest::from(request);
        let answer = reentry::call_app(Callback::CertifiedKernel, || self.0.read(request));
        answer.map(bridge::KernelCard::from).map_err(|e| {
            log::info!("certified kernel read: {e}");
            KernelBridgeError::from(e)
        })
    }

    fn complete(
        &mut self,
        answer: &bridge::HostAnswer,
    ) -> Result<bridge::CardDecision, KernelBridgeError> {
        stats::callback();
        let answer = HostAnswer::from(answer);
        let decision = reentry::call_app(Callback::CertifiedKernel, || self.0.complete(answer));
        decision.map(bridge::CardDecision::from).map_err(|e| {
            log::warn!("certified kernel completion: {e}");
            KernelBridgeError::from(e)
        })
    }

    fn abort(&mut self) {
        stats::callback();
        if let Err(e) = reentry::call_app(Callback::CertifiedKernel, || self.0.abort()) {
            log::warn!("certified kernel abort: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions (both ways: the test kit's simulated kernel answers the core's types).

impl EntryMode {
    /// The FFI entry mode of the core's (`None` for a mode this build does not know).
    pub(crate) fn of(m: bridge::EntryMode) -> Option<EntryMode> {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match m {
            bridge::EntryMode::ContactChip => Some(EntryMode::Chip),
            bridge::EntryMode::ContactlessChip => Some(EntryMode::Contactless),
            bridge::EntryMode::Magstripe => Some(EntryMode::Swipe),
            bridge::EntryMode::FallbackMagstripe => Some(EntryMode::Fallback),
            bridge::EntryMode::Keyed => Some(EntryMode::Keyed),
            _ => None,
        }
    }

    /// The entry mode a field 22 value names (the core's reading of it).
    pub(crate) fn of_field22(field22: Option<&str>) -> Option<EntryMode> {
        field22
            .and_then(bridge::EntryMode::from_pos_entry_mode)
            .and_then(EntryMode::of)
    }
}

impl From<EntryMode> for bridge::EntryMode {
    fn from(m: EntryMode) -> Self {
        match m {
            EntryMode::Chip => bridge::EntryMode::ContactChip,
            EntryMode::Contactless => bridge::EntryMode::ContactlessChip,
            EntryMode::Swipe => bridge::EntryMode::Magstripe,
            EntryMode::Fallback => bridge::EntryMode::FallbackMagstripe,
            EntryMode::Keyed => bridge::EntryMode::Keyed,
        }
    }
}

impl From<CoreCryptogram> for CryptogramType {
    /// A type this build does not know is not an acceptance: AAC.
    fn from(c: CoreCryptogram) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match c {
            CoreCryptogram::Aac => CryptogramType::Aac,
            CoreCryptogram::Tc => CryptogramType::Tc,
            CoreCryptogram::Arqc => CryptogramType::Arqc,
            _ => CryptogramType::Aac,
        }
    }
}

impl From<CryptogramType> for CoreCryptogram {
    fn from(c: CryptogramType) -> Self {
        match c {
            CryptogramType::Aac => CoreCryptogram::Aac,
            CryptogramType::Tc => CoreCryptogram::Tc,
            CryptogramType::Arqc => CoreCryptogram::Arqc,
        }
    }
}

impl From<&bridge::KernelRequest> for KernelRequest {
    fn from(r: &bridge::KernelRequest) -> Self {
        KernelRequest {
            txn_type: r.txn_type,
            amount: r.amount,
            other_amount: r.other_amount,
            currency: r.currency,
            country: r.country,
            date: r.date.clone(),
            time: r.time.clone(),
            unpredictable_number: r.unpredictable_number.to_vec(),
            allowed: r
                .allowed
                .iter()
                .copied()
                .filter_map(EntryMode::of)
                .collect(),
            aids: r.aids.iter().map(|a| hex::encode(a)).collect(),
        }
    }
}

impl TryFrom<&KernelRequest> for bridge::KernelRequest {
    type Error = CardKernelError;

    /// For the test kit's kernel, which reads the core's request.
    fn try_from(r: &KernelRequest) -> Result<Self, Self::Error> {
        let bad = |reason: &str| CardKernelError::Kernel {
            code: NOT_CONVERTIBLE,
            reason: reason.to_owned(),
        };
        let unpredictable_number: [u8; 4] = r
            .unpredictable_number
            .as_slice()
            .try_into()
            .map_err(|_| bad("the unpredictable number is 4 bytes"))?;
        let aids = r
            .aids
            .iter()
            .map(|a| hex::decode(a).map_err(|_| bad("an AID is not hex")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(bridge::KernelRequest {
            txn_type: r.txn_type,
            amount: r.amount,
            other_amount: r.other_amount,
            currency: r.currency,
            country: r.country,
            date: r.date.clone(),
            time: r.time.clone(),
            unpredictable_number,
            allowed: r
                .allowed
                .iter()
                .copied()
                .map(bridge::EntryMode::from)
                .collect(),
            aids,
        })
    }
}

impl From<&Verification> for bridge::Verification {
    fn from(v: &Verification) -> Self {
        match v {
            Verification::OnlinePin { block } => bridge::Verification::OnlinePin {
                block: block.as_ref().map(|b| b.0.clone()),
            },
            Verification::Signature => bridge::Verification::Signature,
            Verification::NoCvm => bridge::Verification::NoCvm,
            Verification::ConsumerDevice => bridge::Verification::ConsumerDevice,
        }
    }
}

impl From<&bridge::Verification> for Verification {
    fn from(v: &bridge::Verification) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match v {
            bridge::Verification::OnlinePin { block } => Verification::OnlinePin {
                block: block.as_ref().map(|b| Arc::new(PinBlock(b.clone()))),
            },
            bridge::Verification::Signature => Verification::Signature,
            bridge::Verification::ConsumerDevice => Verification::ConsumerDevice,
            _ => Verification::NoCvm,
        }
    }
}

impl From<KernelCard> for bridge::KernelCard {
    fn from(c: KernelCard) -> Self {
        bridge::KernelCard {
            entry_mode: c.entry_mode.into(),
            pan: c.card.pan.clone(),
            pan_seq: c.pan_seq,
            expiry: c.card.expiry.clone(),
            track2: c.card.track2.clone(),
            service_code: c.service_code,
            aid: c.aid,
            app_label: c.app_label,
            icc_data: IccData(c.icc_data),
            verification: bridge::Verification::from(&c.verification),
            chip_failed: c.chip_failed,
        }
    }
}

impl TryFrom<bridge::KernelCard> for KernelCard {
    type Error = CardKernelError;

    /// For the test kit's kernel; fails only for an entry mode this build does not know.
    fn try_from(c: bridge::KernelCard) -> Result<Self, Self::Error> {
        let entry_mode = EntryMode::of(c.entry_mode).ok_or(CardKernelError::Kernel {
            code: NOT_CONVERTIBLE,
            reason: "unknown entry mode".into(),
        })?;
        Ok(KernelCard {
            entry_mode,
            card: Arc::new(CardNumber {
                pan: c.pan,
                track2: c.track2,
                expiry: c.expiry,
            }),
            verification: Verification::from(&c.verification),
            pan_seq: c.pan_seq,
            service_code: c.service_code,
            aid: c.aid,
            app_label: c.app_label,
            icc_data: c.icc_data.0,
            chip_failed: c.chip_failed,
        })
    }
}

impl From<&bridge::HostAnswer> for HostAnswer {
    fn from(a: &bridge::HostAnswer) -> Self {
        HostAnswer {
            online: a.online,
            response_code: a.response_code.clone(),
            approved: a.approved,
            auth_code: a.auth_code.clone(),
            issuer_auth_data: a.issuer_auth_data.clone(),
            scripts: a.scripts.clone(),
        }
    }
}

impl From<&HostAnswer> for bridge::HostAnswer {
    fn from(a: &HostAnswer) -> Self {
        bridge::HostAnswer {
            online: a.online,
            response_code: a.response_code.clone(),
            approved: a.approved,
            auth_code: a.auth_code.clone(),
            issuer_auth_data: a.issuer_auth_data.clone(),
            scripts: a.scripts.clone(),
        }
    }
}

impl From<CardDecision> for bridge::CardDecision {
    fn from(d: CardDecision) -> Self {
        bridge::CardDecision {
            cryptogram_type: d.cryptogram_type.into(),
            cryptogram: d.cryptogram,
            icc_data: IccData(d.icc_data),
            script_results: d.script_results,
        }
    }
}

impl From<bridge::CardDecision> for CardDecision {
    fn from(d: bridge::CardDecision) -> Self {
        CardDecision {
            cryptogram_type: d.cryptogram_type.into(),
            cryptogram: d.cryptogram,
            icc_data: d.icc_data.0,
            script_results: d.script_results,
        }
    }
}

impl From<CardKernelError> for KernelBridgeError {
    fn from(e: CardKernelError) -> Self {
        match e {
            CardKernelError::Aborted => KernelBridgeError::Aborted,
            CardKernelError::CardRemoved => KernelBridgeError::CardRemoved,
            CardKernelError::Timeout => KernelBridgeError::Timeout,
            CardKernelError::NotAccepted { reason } => KernelBridgeError::NotAccepted { reason },
            CardKernelError::Kernel { code, reason } => KernelBridgeError::Kernel { code, reason },
        }
    }
}

impl From<KernelBridgeError> for CardKernelError {
    fn from(e: KernelBridgeError) -> Self {
        #[allow(unreachable_patterns)] // the core enum is non_exhaustive
        match e {
            KernelBridgeError::Aborted => CardKernelError::Aborted,
            KernelBridgeError::CardRemoved => CardKernelError::CardRemoved,
            KernelBridgeError::Timeout => CardKernelError::Timeout,
            KernelBridgeError::NotAccepted { reason } => CardKernelError::NotAccepted { reason },
            KernelBridgeError::Kernel { code, reason } => CardKernelError::Kernel { code, reason },
            other => CardKernelError::Kernel {
                code: UNDECLARED_EXCEPTION_CODE,
                reason: other.to_string(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sale and pre-authorisation.

#[uniffi::export]
impl Terminal {
    /// A sale with the card read by the device's certified kernel (insert, tap or swipe).
    /// `pin_entry` is asked only when the kernel reports online PIN without a PIN block of its
    /// own. A retry with the same idempotency key returns the recorded outcome without calling
    /// the kernel. For an inserted card the SDK calls `kernel.complete` with the host's answer:
    /// TC makes the approval final, AAC reverses it (`TxnResult.declinedByCard`). Throws
    /// `CardRefused` (a swiped chip card: insert it), `CardDeclinedOffline`,
    /// `CardKernelFailed`, `Cancelled` (kernel aborted, PIN cancelled); nothing was sent then.
    #[uniffi::method(default(pin_entry = None, idempotency_key = None, operator = None))]
    pub async fn sale_with_kernel(
        &self,
        amount: u64,
        kernel: Arc<dyn CertifiedKernel>,
        pin_entry: Option<Arc<dyn crate::PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        let k = crate::contactless::CardKind::Sale;
        stats::counted(self.kernel_txn(k, amount, kernel, pin_entry, idempotency_key, operator))
            .await
    }

    /// A pre-authorisation with the card read by the certified kernel (as `sale_with_kernel`).
    #[uniffi::method(default(pin_entry = None, idempotency_key = None, operator = None))]
    pub async fn preauth_with_kernel(
        &self,
        amount: u64,
        kernel: Arc<dyn CertifiedKernel>,
        pin_entry: Option<Arc<dyn crate::PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        let k = crate::contactless::CardKind::PreAuth;
        stats::counted(self.kernel_txn(k, amount, kernel, pin_entry, idempotency_key, operator))
            .await
    }
}

impl Terminal {
    async fn kernel_txn(
        &self,
        kind: crate::contactless::CardKind,
        amount: u64,
        kernel: Arc<dyn CertifiedKernel>,
        pin_entry: Option<Arc<dyn crate::PinEntry>>,
        idempotency_key: Option<String>,
        operator: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        // The core replays a known idempotency key before it calls the kernel, and emits
        // WaitingForCard and CardRead itself.
        self.run(move |mut g| async move {
            let t = g.as_mut().ok_or(SmartPosError::Closed)?;
            let intent = crate::contactless::card_intent(kind, amount, idempotency_key, operator)?;
            let mut kernel = KernelAdapter(kernel);
            let mut pin = pin_entry.map(crate::contactless::PinAdapter);
            let source = CardSource::Certified {
                kernel: &mut kernel,
                pin: pin.as_mut().map(|p| p as &mut dyn core_card::PinEntry),
            };
            let o = t.transact(intent, source).await?;
            Ok(TxnResult::from(o))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> bridge::KernelRequest {
        bridge::KernelRequest {
            txn_type: 0,
            amount: 1234,
            other_amount: 0,
            currency: 156,
            country: 156,
            date: "250101".into(),
            time: "101010".into(),
            unpredictable_number: [1, 2, 3, 4],
            allowed: bridge::EntryMode::ALL.to_vec(),
            aids: vec![vec![0xA0, 0, 0, 3, 0x33, 1, 1, 1]],
        }
    }

    #[test]
    fn requests_round_trip_with_hex_aids() {
        let r = request();
        let ffi = KernelRequest::from(&r);
        assert_eq!(ffi.aids, ["A000000333010101"]);
        assert_eq!(ffi.allowed.len(), 5);
        assert_eq!(bridge::KernelRequest::try_from(&ffi), Ok(r));
        let mut bad = ffi.clone();
        bad.unpredictable_number = vec![1];
        assert!(bridge::KernelRequest::try_from(&bad).is_err());
    }

    #[test]
    fn card_numbers_are_checked_and_masked() {
        let c = CardNumber::new(
            Some("6228480402564890018".into()),
            None,
            Some("3012".into()),
        )
        .expect("card");
        assert_eq!(c.pan_masked(), "622848*********0018");
        assert!(!format!("{c:?}").contains("0402564890"));
        let t = CardNumber::new(None, Some("6228480402564890018D30122200000".into()), None)
            .expect("track 2");
        assert_eq!(t.pan_masked(), "622848*********0018");
        let e = CardNumber::new(Some("62284804025648x".into()), None, None).expect_err("bad");
        assert!(!e.to_string().contains("62284804025648x"));
        assert!(CardNumber::new(None, None, None).is_err());
        assert!(
            CardNumber::new(
                Some("6228480402564890018".into()),
                None,
                Some("30-2".into())
            )
            .is_err()
        );
        assert!(PinBlock::new(vec![0; 7]).is_err());
        let card = KernelCard {
            entry_mode: EntryMode::Chip,
            card: c,
            verification: Verification::OnlinePin {
                block: Some(PinBlock::new(vec![0x5A; 8]).expect("block")),
            },
            pan_seq: Some(1),
            service_code: None,
            aid: vec![0xA0],
            app_label: String::new(),
            icc_data: vec![1, 2, 3],
            chip_failed: false,
        };
        let shown = format!("{card:?}");
        assert!(
            !shown.contains("0402564890") && !shown.contains("90, 90"),
            "{shown}"
        );
        let core = bridge::KernelCard::from(card);
        assert_eq!(core.entry_mode, bridge::EntryMode::ContactChip);
        assert!(matches!(
            core.verification,
            bridge::Verification::OnlinePin { block: Some(ref b) } if b.expose() == [0x5A; 8]
        ));
    }

    #[test]
    fn kernel_errors_mirror_the_core_s() {
        for e in [
            KernelBridgeError::Aborted,
            KernelBridgeError::CardRemoved,
            KernelBridgeError::Timeout,
            KernelBridgeError::NotAccepted { reason: "x".into() },
            KernelBridgeError::Kernel {
                code: -4001,
                reason: "x".into(),
            },
        ] {
            assert_eq!(KernelBridgeError::from(CardKernelError::from(e.clone())), e);
        }
        let thrown = CardKernelError::from(uniffi::UnexpectedUniFFICallbackError {
            reason: "java.lang.IllegalStateException: boom".into(),
        });
        assert!(matches!(
            thrown,
            CardKernelError::Kernel { code: UNDECLARED_EXCEPTION_CODE, ref reason } if reason.contains("boom")
        ));
    }

    struct Throwing;
    impl CertifiedKernel for Throwing {
        fn read(&self, _: KernelRequest) -> Result<KernelCard, CardKernelError> {
            assert_eq!(reentry::inside(), Some(Callback::CertifiedKernel));
            Err(CardKernelError::Timeout)
        }
        fn complete(&self, _: HostAnswer) -> Result<CardDecision, CardKernelError> {
            Err(CardKernelError::CardRemoved)
        }
        fn abort(&self) -> Result<(), CardKernelError> {
            Err(CardKernelError::Aborted)
        }
    }

    #[test]
    fn the_adapter_marks_the_callback_and_maps_its_errors() {
        use bridge::CertifiedKernel as _;
        let mut a = KernelAdapter(Arc::new(Throwing));
        assert_eq!(a.read(&request()), Err(KernelBridgeError::Timeout));
        let answer = bridge::HostAnswer {
            online: true,
            response_code: "00".into(),
            approved: true,
            auth_code: None,
            issuer_auth_data: None,
            scripts: Vec::new(),
        };
        assert_eq!(a.complete(&answer), Err(KernelBridgeError::CardRemoved));
        a.abort(); // only logged
        assert_eq!(reentry::inside(), None);
    }
}
