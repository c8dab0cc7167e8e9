//! Reading a card: the app's transport to the card, the contactless kernel loop, and PIN entry.
//!
//! The app implements [`ApduTransport`] (defined with the kernel in `smartpos-emv`) over NFC (`IsoDep.transceive`) or over the mPOS reader
//! link, and [`PinEntry`] over its PIN pad. [`read_contactless`] drives the sans-IO kernel of
//! `smartpos-emv` with a real clock and the transport, and [`card_data`] turns the kernel's
//! outcome into what the engine sends (entry mode 07, field 55, PIN block under the PIK).

use ring::rand::{SecureRandom, SystemRandom};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::pinblock::{self, Pin, PinBlockFormat};
pub use smartpos_emv::kernel::{ApduTransport, TransportError};
use smartpos_emv::kernel::{CardOutcome, Cvm, Kernel, KernelConfig, KernelError, KernelTxn};
use smartpos_txn::model::LocalDateTime;
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
    /// Digits in a protected buffer: the SDK builds an ISO format 0 block, encrypts it under
    /// the PIK and zeroizes the digits.
    Digits(Pin),
    /// The cardholder cancelled PIN entry.
    Cancelled,
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
}

/// A card read, with what the receipt needs.
#[derive(Debug)]
pub struct CardRead {
    /// The kernel's outcome.
    pub outcome: CardOutcome,
    /// Card-in-field time (first SELECT to last response), milliseconds.
    pub card_in_field_ms: u64,
}

/// POS entry mode of a contactless chip read (ISO 8583 field 22): 07 contactless chip, 1 the
/// terminal can accept a PIN.
pub const CONTACTLESS_ENTRY_MODE: &str = "071";

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
            country: currency,
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
    pik: Option<&TdesKey>,
) -> Result<CardData, CardError> {
    let o = &read.outcome;
    let pin_block = if o.cvm == Cvm::OnlinePin {
        let entry = pin_entry.ok_or(CardError::PinPadMissing)?;
        match entry.pin(&o.pan.masked(), amount) {
            PinInput::Cancelled => return Err(CardError::PinCancelled),
            PinInput::EncryptedBlock(b) => Some(b),
            PinInput::Digits(pin) => {
                let pik = pik.ok_or_else(|| CardError::PinBlock("not signed in".into()))?;
                // Format 0 has no random fill; the generator is never asked for bytes.
                let block = pinblock::encrypt_tdes(
                    pik,
                    PinBlockFormat::Iso0,
                    &pin,
                    Some(&o.pan),
                    &mut pinblock::system_random(),
                )
                .map_err(|e| CardError::PinBlock(e.to_string()))?;
                Some(block)
            }
        }
    } else {
        None
    };
    Ok(CardData {
        pan: Some(o.pan.clone()),
        track2: o.track2.clone(),
        expiry: Some(o.expiry.clone()),
        entry_mode: CONTACTLESS_ENTRY_MODE.into(),
        card_seq: o.pan_seq.map(|s| format!("{s:03}")),
        icc: Some(SecretBytes::new(o.icc_data.as_bytes().to_vec())),
        pin_block,
    })
}
