//! Reading a card: the app's transport to the card, the contactless kernel loop, and PIN entry.
//!
//! The app implements [`ApduTransport`] (defined with the kernel in `smartpos-emv`) over NFC (`IsoDep.transceive`) or over the mPOS reader
//! link, and [`PinEntry`] over its PIN pad. [`read_contactless`] drives the sans-IO kernel of
//! `smartpos-emv` with a real clock and the transport, and [`card_data`] turns the kernel's
//! outcome into what the engine sends (entry mode 07, field 55, PIN block under the PIK).

use crate::journal::CardInfo;
use ring::rand::{SecureRandom, SystemRandom};
use smartpos_crypto::module::{KeyRef, ModuleError, PinRequest, PinSource, SecurityModule};
use smartpos_crypto::pinblock::{Pin, PinBlockFormat};
use smartpos_emv::certified::{
    CardDecision, CardRefusal, CertifiedKernel, EntryMode, HostAnswer, KernelBridgeError,
    KernelCard, KernelRequest, Verification, accept,
};
pub use smartpos_emv::kernel::{ApduTransport, TransportError};
use smartpos_emv::kernel::{CardOutcome, Cvm, Kernel, KernelConfig, KernelError, KernelTxn};
use smartpos_emv::kernel::{CryptogramType, IccData};
use smartpos_txn::engine::CardVerdict;
use smartpos_txn::model::{LocalDateTime, TxnKind};
use smartpos_txn::proto::CardData;
use smartpos_types::SecretBytes;
use std::time::Instant;
use thiserror::Error;

/// What the PIN pad returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum PinInput {
    /// A secure PIN pad (PED) already encrypted an ISO 9564 block under the PIK.
    EncryptedBlock(SecretBytes),
    /// Digits in a protected buffer: the security module builds the PIN block under its PIN
    /// key (the software module does; a device module refuses digits) and the digits are
    /// zeroized.
    Digits(Pin),
    /// The cardholder cancelled PIN entry.
    Cancelled,
}

/// How PIN blocks are made: by the terminal's security module, under which key and in which
/// ISO 9564 format.
#[derive(Clone, Copy)]
pub struct PinBlocks<'a> {
    /// The module that holds the PIN key.
    pub module: &'a dyn SecurityModule,
    /// The PIN key: the working PIK of the sign-in.
    pub key: KeyRef,
    /// ISO 9564-1 format.
    pub format: PinBlockFormat,
}

impl std::fmt::Debug for PinBlocks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinBlocks")
            .field("module", &self.module.kind())
            .field("key", &self.key)
            .field("format", &self.format)
            .finish()
    }
}

/// The app's PIN pad.
pub trait PinEntry: Send {
    /// Asks for the PIN of the card whose masked PAN is given, for `amount` minor units.
    fn pin(&mut self, masked_pan: &str, amount: u64) -> PinInput;
}

/// Card reading failures. None of them moved money: nothing was sent to the host.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardError {
    /// The kernel stopped (card removed, not supported, blocked, malformed answer, ...).
    #[error("card: {0}")]
    Kernel(#[from] KernelError),
    /// The system random generator failed (no unpredictable number).
    #[error("no randomness for the unpredictable number")]
    NoRandomness,
    /// The kernel neither finished nor asked for a command (an SDK bug, reported, not hidden).
    #[error("card kernel stopped without a result")]
    KernelStalled,
    /// The card asks for an online PIN and no PIN pad is available.
    #[error("the card requires a PIN and no PIN pad is available")]
    PinPadMissing,
    /// The cardholder cancelled PIN entry.
    #[error("PIN entry cancelled")]
    PinCancelled,
    /// The PIN block could not be built (not signed in, bad digits).
    #[error("PIN block could not be built: {0}")]
    PinBlock(String),
    /// The device's certified kernel gave no card.
    #[error("card kernel: {0}")]
    Bridge(KernelBridgeError),
    /// The card was read but the SDK's acceptance rules refuse it (a swiped chip card, a
    /// keyed number with a wrong check digit, ...).
    #[error("card refused: {0}")]
    Refused(CardRefusal),
    /// The app's card reader gave no card (cancelled, failed); the text is for logs.
    #[error("card reader: {0}")]
    Reader(String),
    /// The card declined at its first GENERATE AC (AAC): declined offline, nothing sent.
    #[error("the card declined the transaction offline")]
    DeclinedOffline,
}

/// A card read, with what the receipt needs.
#[derive(Debug)]
pub struct CardRead {
    /// The kernel's outcome.
    pub outcome: CardOutcome,
    /// Card-in-field time (first SELECT to last response), milliseconds.
    pub card_in_field_ms: u64,
}

/// POS entry mode of a contactless chip read (ISO 8583 field 22): `07` contactless chip, then
/// `1` when the request carries a PIN block (the card asked for an online PIN), `2` when not.
pub fn contactless_entry_mode(online_pin: bool) -> String {
    EntryMode::ContactlessChip.pos_entry_mode(online_pin)
}

/// Drives the contactless kernel over `transport` for `amount` (currency and country ISO
/// numeric codes), with the unpredictable number drawn from the system RNG.
pub fn read_contactless(
    config: &KernelConfig,
    transport: &mut dyn ApduTransport,
    amount: u64,
    currency: u16,
    local: LocalDateTime,
) -> Result<CardRead, CardError> {
    let mut un = [0u8; 4];
    SystemRandom::new()
        .fill(&mut un)
        .map_err(|_| CardError::NoRandomness)?;
    let start = Instant::now();
    let ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut kernel = Kernel::new(
        config.clone(),
        KernelTxn {
            amount,
            other_amount: 0,
            currency,
            country: config.country,
            txn_type: 0x00,
            date: format!("{:02}{:02}{:02}", local.year % 100, local.month, local.day),
            unpredictable_number: un,
            now_ms: 0,
        },
    );
    loop {
        if let Some(result) = kernel.poll_outcome() {
            let outcome = result?;
            let card_in_field_ms = outcome.card_in_field_ms;
            return Ok(CardRead {
                outcome,
                card_in_field_ms,
            });
        }
        let Some(capdu) = kernel.poll_command() else {
            return Err(CardError::KernelStalled);
        };
        match transport.transceive(&capdu) {
            Ok(rapdu) => kernel.handle_response(ms(), &rapdu),
            Err(e) => kernel.handle_transport_error(ms(), e),
        }
    }
}

/// Builds the engine's card data from a kernel outcome, asking for a PIN when the card wants
/// an online PIN.
pub fn card_data(
    read: &CardRead,
    amount: u64,
    pin_entry: Option<&mut dyn PinEntry>,
    pins: PinBlocks<'_>,
) -> Result<CardData, CardError> {
    let o = &read.outcome;
    if o.cryptogram_type == CryptogramType::Aac {
        // The card declined at its first GENERATE AC: nothing goes online.
        return Err(CardError::DeclinedOffline);
    }
    let pin_block = if o.cvm == Cvm::OnlinePin {
        Some(pin_block(&o.pan, amount, pin_entry, pins)?)
    } else {
        None
    };
    Ok(CardData {
        pan: Some(o.pan.clone()),
        track2: o.track2.clone(),
        expiry: Some(o.expiry.clone()),
        entry_mode: contactless_entry_mode(pin_block.is_some()),
        card_seq: o.pan_seq.map(|s| format!("{s:03}")),
        icc: Some(SecretBytes::new(o.icc_data.as_bytes().to_vec())),
        pin_block,
        card_decides: false,
        ksn: None,
    })
}

/// Where the card of a card-present transaction comes from (one entry point:
/// [`crate::Terminal::transact`]).
#[non_exhaustive]
pub enum CardSource<'a> {
    /// Card data the app read itself: keyed (`012`) or a swiped track 2 (`02x`, or `80x` for a
    /// fallback). Checked like a certified kernel's card: Luhn and expiry month for keyed
    /// entry; a swiped chip card is refused unless its entry mode says fallback.
    Given(CardData),
    /// Our own contactless kernel over the app's transport: phone NFC (`IsoDep`), or the mPOS
    /// Bluetooth reader ([`crate::reader::ReaderTransport`]); `pin` asks for an online PIN.
    OwnKernel {
        /// The channel to the card.
        transport: &'a mut dyn ApduTransport,
        /// The PIN pad, for cards that want an online PIN.
        pin: Option<&'a mut dyn PinEntry>,
    },
    /// The app's own card reader, asked (asynchronously) for card data once the core knows
    /// the request needs a card; the data is checked like [`CardSource::Given`].
    Reader(&'a mut dyn CardReader),
    /// The device's certified EMV kernel (insert, tap, swipe; its own PIN pad); `pin` is
    /// asked only when the kernel reports online PIN without a PIN block of its own.
    Certified {
        /// The app's bridge to the kernel.
        kernel: &'a mut dyn CertifiedKernel,
        /// The app's PIN entry, for a kernel without a PIN pad.
        pin: Option<&'a mut dyn PinEntry>,
    },
}

impl std::fmt::Debug for CardSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardSource::Given(c) => f.debug_tuple("Given").field(c).finish(),
            CardSource::OwnKernel { .. } => f.write_str("OwnKernel"),
            CardSource::Reader(_) => f.write_str("Reader"),
            CardSource::Certified { .. } => f.write_str("Certified"),
        }
    }
}

/// The future of [`CardReader::read_card`].
pub type CardFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<CardData, CardError>> + Send + 'a>>;

/// An app's asynchronous card reader (keyed entry screen, magnetic stripe reader): the Kotlin
/// bindings' `CardReader`.
pub trait CardReader: Send {
    /// Waits for a card for a transaction of `amount` minor units (0 for a balance inquiry).
    fn read_card(&mut self, amount: u64) -> CardFuture<'_>;
}

/// Checks card data the app gave itself with the rules a kernel's card goes through
/// ([`smartpos_emv::certified::accept`]).
pub fn check_given(card: &CardData) -> Result<(), CardError> {
    let Some(mode) = EntryMode::from_pos_entry_mode(&card.entry_mode) else {
        // Another entry mode of the app's own (e.g. an acquirer's private code): its business.
        return Ok(());
    };
    let pan = card
        .effective_pan()
        .ok_or(CardError::Refused(CardRefusal::Incomplete))?;
    let kc = KernelCard {
        entry_mode: mode,
        pan,
        pan_seq: None,
        expiry: card.expiry.clone().or_else(|| {
            card.track2
                .as_ref()
                .and_then(|t| t.expiry().map(str::to_owned))
        }),
        track2: card.track2.clone(),
        service_code: None,
        aid: Vec::new(),
        app_label: String::new(),
        icc_data: IccData(
            card.icc
                .as_ref()
                .map(|b| b.expose().to_vec())
                .unwrap_or_default(),
        ),
        verification: Verification::NoCvm,
        // An app that says fallback (80x) tried the chip.
        chip_failed: mode == EntryMode::FallbackMagstripe,
    };
    accept(&kc, &[]).map(|_| ()).map_err(CardError::Refused)
}

/// What a certified kernel's card becomes for the engine, with the receipt's chip data.
pub struct CertifiedRead {
    /// The request's card data.
    pub card: CardData,
    /// How the card was presented (after the acceptance rules: a swipe may become a fallback).
    pub entry_mode: EntryMode,
    /// Chip data for the receipt and the journal (chip cards).
    pub info: Option<CardInfo>,
    /// The first GENERATE AC's cryptogram type (chip cards).
    pub cryptogram: Option<CryptogramType>,
}

/// The kernel request for a transaction kind, amount, currency, country and local time.
pub fn kernel_request(
    kind: TxnKind,
    amount: u64,
    currency: u16,
    country: u16,
    local: LocalDateTime,
    aids: Vec<Vec<u8>>,
    allowed: Vec<EntryMode>,
) -> Result<KernelRequest, CardError> {
    let mut un = [0u8; 4];
    SystemRandom::new()
        .fill(&mut un)
        .map_err(|_| CardError::NoRandomness)?;
    Ok(KernelRequest {
        txn_type: match kind {
            TxnKind::PreAuth => 0x03,
            TxnKind::Balance => 0x31,
            _ => 0x00,
        },
        amount,
        other_amount: 0,
        currency,
        country,
        date: format!("{:02}{:02}{:02}", local.year % 100, local.month, local.day),
        time: local.hhmmss(),
        unpredictable_number: un,
        allowed,
        aids,
    })
}

/// Reads a card through the device's certified kernel and applies the acceptance rules; a
/// refused card makes the kernel stop ([`CertifiedKernel::abort`]). `decides`: whether a
/// contact chip card makes the final decision after the host (sales and pre-authorisations).
pub fn read_certified(
    kernel: &mut dyn CertifiedKernel,
    request: &KernelRequest,
    pin: Option<&mut dyn PinEntry>,
    pins: PinBlocks<'_>,
    decides: bool,
) -> Result<CertifiedRead, CardError> {
    let card = kernel.read(request).map_err(CardError::Bridge)?;
    let checked = accept(&card, &request.allowed).and_then(|mode| {
        let cryptogram = if mode.is_chip() {
            Some(card.cryptogram_type().ok_or(CardRefusal::Incomplete)?)
        } else {
            None
        };
        Ok((mode, cryptogram))
    });
    let (mode, cryptogram) = match checked {
        Ok(c) => c,
        Err(r) => {
            kernel.abort();
            return Err(CardError::Refused(r));
        }
    };
    if cryptogram == Some(CryptogramType::Aac) {
        kernel.abort();
        return Err(CardError::DeclinedOffline);
    }
    let pin_block = match &card.verification {
        Verification::OnlinePin { block: Some(b) } => Some(b.clone()),
        Verification::OnlinePin { block: None } => {
            match pin_block(&card.pan, request.amount, pin, pins) {
                Ok(b) => Some(b),
                Err(e) => {
                    kernel.abort();
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let info = mode.is_chip().then(|| {
        let tag = |t: u32| {
            smartpos_emv::certified::icc_tag(&card.icc_data, t)
                .map(|v| smartpos_types::hex::encode(&v))
                .unwrap_or_default()
        };
        CardInfo {
            aid: smartpos_types::hex::encode(&card.aid),
            label: card.app_label.clone(),
            tvr: tag(0x95),
            tsi: tag(0x9B),
            cryptogram_type: cryptogram.map_or("ARQC", CryptogramType::as_str).to_owned(),
            cryptogram: tag(0x9F26),
            cvm: card.verification.as_str().to_owned(),
            cvm_result: tag(0x9F34),
            in_field_ms: 0,
        }
    });
    let data = CardData {
        pan: Some(card.pan.clone()),
        track2: card.track2.clone(),
        expiry: card.expiry.clone(),
        entry_mode: mode.pos_entry_mode(pin_block.is_some()),
        card_seq: card.pan_seq.map(|s| format!("{s:03}")),
        icc: mode
            .is_chip()
            .then(|| SecretBytes::new(card.icc_data.as_bytes().to_vec())),
        pin_block,
        card_decides: decides && mode == EntryMode::ContactChip,
        ksn: None,
    };
    Ok(CertifiedRead {
        card: data,
        entry_mode: mode,
        info,
        cryptogram,
    })
}

/// A PIN block for `pan`: from the app's PIN entry (the pad's own encrypted block, or digits
/// the security module makes into a block under its PIN key), or, when the app gives no PIN
/// entry, from the security module's own PIN pad (a device module prompts the cardholder; the
/// SDK never sees the digits).
fn pin_block(
    pan: &smartpos_types::Pan,
    amount: u64,
    pin_entry: Option<&mut dyn PinEntry>,
    pins: PinBlocks<'_>,
) -> Result<SecretBytes, CardError> {
    let request = |source| PinRequest {
        key: pins.key,
        format: pins.format,
        pan: Some(pan),
        source,
    };
    match pin_entry {
        Some(entry) => match entry.pin(&pan.masked(), amount) {
            PinInput::Cancelled => Err(CardError::PinCancelled),
            PinInput::EncryptedBlock(b) => Ok(b),
            PinInput::Digits(pin) => pins
                .module
                .pin_block(&request(PinSource::Digits(&pin)))
                .map_err(pin_error),
        },
        None => pins
            .module
            .pin_block(&request(PinSource::PinPad { amount }))
            .map_err(|e| match e {
                // The software module has no PIN pad of its own.
                ModuleError::Unsupported(_) => CardError::PinPadMissing,
                other => pin_error(other),
            }),
    }
}

fn pin_error(e: ModuleError) -> CardError {
    match e {
        ModuleError::PinCancelled | ModuleError::PinTimeout => CardError::PinCancelled,
        ModuleError::NoKey { .. } => CardError::PinBlock("not signed in".into()),
        other => CardError::PinBlock(other.to_string()),
    }
}

/// The card's answer to [`CertifiedKernel::complete`], for the engine and the receipt.
pub fn complete_certified(
    kernel: &mut dyn CertifiedKernel,
    reply: &smartpos_txn::proto::Reply,
) -> (CardVerdict, Option<CardDecision>) {
    let issuer = reply
        .icc
        .as_deref()
        .and_then(|f| smartpos_emv::kernel::issuer_response(f).ok())
        .unwrap_or_default();
    let answer = HostAnswer {
        online: true,
        // The kernel bridge (smartpos-emv, the app's certified kernel) takes the code as text.
        response_code: reply.response_code.to_string(),
        approved: reply.response_code.is_approved(),
        auth_code: reply.auth_code.clone(),
        issuer_auth_data: issuer.arpc.clone(),
        scripts: issuer
            .scripts_71
            .iter()
            .chain(issuer.scripts_72.iter())
            .cloned()
            .collect(),
    };
    match kernel.complete(&answer) {
        Ok(d) => {
            let verdict = match d.cryptogram_type {
                CryptogramType::Tc => CardVerdict::Accepted {
                    icc: d.icc_data.as_bytes().to_vec(),
                    script_results: d.script_results.clone(),
                },
                CryptogramType::Aac => CardVerdict::Declined {
                    script_results: d.script_results.clone(),
                },
                // An ARQC is no final decision: a kernel fault.
                _ => {
                    log::warn!("card kernel completed with {:?}", d.cryptogram_type);
                    CardVerdict::Failed
                }
            };
            (verdict, Some(d))
        }
        Err(e) => {
            log::warn!("card kernel completion failed: {e}");
            (CardVerdict::Failed, None)
        }
    }
}
