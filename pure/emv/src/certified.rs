//! The device's certified EMV kernel, seen from the SDK: what the SDK asks of it and what it
//! answers ([`CertifiedKernel`]), and the card-acceptance rules the SDK applies to its answers
//! (swipe of a chip card, fallback, keyed entry).
//!
//! On a smart POS (Sunmi PayLib `EMVOptV2`, PAX, Newland) or an mPOS reader that runs its own
//! level-2 kernel, the card is read by that certified kernel: contact chip, contactless chip,
//! magnetic stripe and the PIN pad. The app wraps it in a [`CertifiedKernel`]; the SDK calls
//! [`CertifiedKernel::read`] before the request, and, for a contact chip card, which is still
//! in the reader when the host answers, [`CertifiedKernel::complete`] with the host's answer:
//! the card then makes the final decision (TC or AAC at the second GENERATE AC, EMV Book 3
//! §9.3) and runs the issuer scripts (71 before, 72 after that GENERATE AC, Book 3 §10.10).
//!
//! Everything here is data and pure functions; the trait is synchronous like
//! `IsoDep.transceive` (the terminal runtime calls it on a thread that may block).

use crate::kernel::{CryptogramType, IccData};
use crate::tlv::{self, Tag};
use smartpos_types::{Pan, SecretBytes, Track2};
use std::fmt;
use thiserror::Error;

/// How the card was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryMode {
    /// Inserted: contact chip (ISO 8583 field 22 `05x`).
    ContactChip,
    /// Tapped: contactless chip (`07x`).
    ContactlessChip,
    /// Swiped: magnetic stripe (`02x`).
    Magstripe,
    /// Swiped after the chip of a chip card could not be read (`80x`).
    FallbackMagstripe,
    /// Typed by the cashier (`01x`).
    Keyed,
}

impl EntryMode {
    /// The name the CLI's JSON and the journal use: `chip`, `contactless`, `swipe`,
    /// `fallback`, `keyed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryMode::ContactChip => "chip",
            EntryMode::ContactlessChip => "contactless",
            EntryMode::Magstripe => "swipe",
            EntryMode::FallbackMagstripe => "fallback",
            EntryMode::Keyed => "keyed",
        }
    }

    /// The PAN entry mode, the first two digits of ISO 8583 field 22 (ISO 8583:1987 and the
    /// UnionPay POS field 22 table: 01 manual, 02 magnetic stripe, 05 IC card, 07 contactless
    /// IC; 80 is the fallback code the card schemes define for "chip card at a chip-capable
    /// terminal could not be read, magnetic stripe used", see docs/messages.md).
    pub const fn pan_entry_code(self) -> &'static str {
        match self {
            EntryMode::ContactChip => "05",
            EntryMode::ContactlessChip => "07",
            EntryMode::Magstripe => "02",
            EntryMode::FallbackMagstripe => "80",
            EntryMode::Keyed => "01",
        }
    }

    /// Field 22: the PAN entry code and the PIN digit (UnionPay POS: `1` a PIN is included,
    /// `2` no PIN).
    pub fn pos_entry_mode(self, pin_included: bool) -> String {
        format!(
            "{}{}",
            self.pan_entry_code(),
            if pin_included { '1' } else { '2' }
        )
    }

    /// The entry mode a field 22 value names (its first two digits), if any.
    pub fn from_pos_entry_mode(field22: &str) -> Option<EntryMode> {
        match field22.get(..2)? {
            "05" => Some(EntryMode::ContactChip),
            "07" => Some(EntryMode::ContactlessChip),
            "02" | "90" => Some(EntryMode::Magstripe),
            "80" => Some(EntryMode::FallbackMagstripe),
            "01" => Some(EntryMode::Keyed),
            _ => None,
        }
    }

    /// Whether the card answers from a chip (field 55 is present).
    pub const fn is_chip(self) -> bool {
        matches!(self, EntryMode::ContactChip | EntryMode::ContactlessChip)
    }

    /// Every entry mode.
    pub const ALL: [EntryMode; 5] = [
        EntryMode::ContactChip,
        EntryMode::ContactlessChip,
        EntryMode::Magstripe,
        EntryMode::FallbackMagstripe,
        EntryMode::Keyed,
    ];
}

/// What the SDK asks the kernel to read a card for (the terminal data of EMV Book 3 Annex A
/// that the kernel puts into its DOLs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRequest {
    /// Transaction type (9C): `0x00` goods and services, `0x03` pre-authorisation (UnionPay),
    /// `0x31` balance inquiry.
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
    /// Unpredictable number (9F37), from the SDK's random source.
    pub unpredictable_number: [u8; 4],
    /// How the card may be presented.
    pub allowed: Vec<EntryMode>,
    /// AIDs the terminal accepts (empty: the kernel's own list).
    pub aids: Vec<Vec<u8>>,
}

/// The cardholder verification the kernel settled on.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Online PIN. `block`: the ISO 9564 block the device's secure PIN pad encrypted under
    /// the PIN key loaded into it; `None`: the kernel has no PIN pad of its own and the SDK
    /// asks the app's PIN entry, as for its own kernel.
    OnlinePin {
        /// The encrypted PIN block, if the PIN pad made one.
        block: Option<SecretBytes>,
    },
    /// Signature on the receipt.
    Signature,
    /// No cardholder verification.
    NoCvm,
    /// Verified on the consumer's device (phone, watch).
    ConsumerDevice,
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::OnlinePin { block } => f
                .debug_struct("OnlinePin")
                .field("block", &block.as_ref().map(|_| "<hidden>"))
                .finish(),
            Verification::Signature => f.write_str("Signature"),
            Verification::NoCvm => f.write_str("NoCvm"),
            Verification::ConsumerDevice => f.write_str("ConsumerDevice"),
        }
    }
}

impl Verification {
    /// The name the journal and receipts use: `online_pin`, `signature`, `no_cvm`,
    /// `consumer_device`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Verification::OnlinePin { .. } => "online_pin",
            Verification::Signature => "signature",
            Verification::NoCvm => "no_cvm",
            Verification::ConsumerDevice => "consumer_device",
        }
    }
}

/// A card the kernel read. `Debug` masks the PAN and track 2 and shows field 55 as a length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCard {
    /// How the card was presented.
    pub entry_mode: EntryMode,
    /// The PAN.
    pub pan: Pan,
    /// PAN sequence number (5F34), chip cards.
    pub pan_seq: Option<u8>,
    /// Expiry `YYMM`.
    pub expiry: Option<String>,
    /// Track 2 (magnetic stripe) or track 2 equivalent data (57, chip).
    pub track2: Option<Track2>,
    /// Service code (3 digits), from track 2 or 5F30.
    pub service_code: Option<String>,
    /// The selected application's AID (chip cards).
    pub aid: Vec<u8>,
    /// Application label (chip cards), printable.
    pub app_label: String,
    /// The chip data the dialect's field 55 carries (chip cards; empty otherwise).
    pub icc_data: IccData,
    /// Cardholder verification.
    pub verification: Verification,
    /// For a swiped card: the kernel tried the chip first and could not read it (the
    /// condition for a fallback).
    pub chip_failed: bool,
}

impl KernelCard {
    /// The first-GENERATE-AC cryptogram type in field 55 (9F27), for chip cards.
    pub fn cryptogram_type(&self) -> Option<CryptogramType> {
        let cid = icc_tag(&self.icc_data, 0x9F27)?;
        CryptogramType::from_cid(*cid.first()?)
    }
}

/// What the host answered, handed to the card for its final decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAnswer {
    /// Whether the host was reached. `false`: no answer (the kernel runs "unable to go
    /// online", Book 3 §9.3, and the card normally declines).
    pub online: bool,
    /// Response code (field 39), two characters; empty when not online.
    pub response_code: String,
    /// Whether the SDK counts the response code as an approval.
    pub approved: bool,
    /// Authorisation code (field 38).
    pub auth_code: Option<String>,
    /// Issuer authentication data (91), from field 55 of the response.
    pub issuer_auth_data: Option<Vec<u8>>,
    /// Issuer scripts, each a whole 71 or 72 template, in the order received.
    pub scripts: Vec<Vec<u8>>,
}

/// The card's final decision.
#[derive(Clone, PartialEq, Eq)]
pub struct CardDecision {
    /// TC: the card accepts; AAC: the card declines. An ARQC here is a kernel fault.
    pub cryptogram_type: CryptogramType,
    /// The final application cryptogram (9F26 of the second GENERATE AC).
    pub cryptogram: Vec<u8>,
    /// The final chip data (9F26, 9F27, 95, 9B, 9F36, ... after completion), for the TC upload.
    pub icc_data: IccData,
    /// Issuer script results (DF31 / 9F5B: per script, one result byte and the script id).
    pub script_results: Vec<u8>,
}

impl fmt::Debug for CardDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDecision")
            .field("cryptogram_type", &self.cryptogram_type)
            .field("icc_data", &self.icc_data)
            .field("script_results", &self.script_results.len())
            .finish_non_exhaustive()
    }
}

/// Why the kernel gave no card or no decision. None of them moved money by themselves: a
/// failure of [`CertifiedKernel::complete`] after an approval leaves the reversal armed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KernelBridgeError {
    /// The cashier or the customer cancelled.
    #[error("card reading cancelled")]
    Aborted,
    /// The card was removed before the kernel finished.
    #[error("card removed")]
    CardRemoved,
    /// No card was presented in time.
    #[error("no card presented in time")]
    Timeout,
    /// The card has no application the terminal accepts, or is blocked.
    #[error("card not accepted: {reason}")]
    NotAccepted {
        /// For logs (no card data).
        reason: String,
    },
    /// The kernel failed (error code of the vendor's API and its text).
    #[error("kernel error {code}: {reason}")]
    Kernel {
        /// The vendor's error code.
        code: i32,
        /// For logs (no card data).
        reason: String,
    },
}

/// The app's bridge to the device's certified EMV kernel.
pub trait CertifiedKernel: Send {
    /// Reads a card for `request`: waits for it, runs the kernel up to the first GENERATE AC
    /// (chip), the PIN pad if the card asks for online PIN, and returns the card.
    fn read(&mut self, request: &KernelRequest) -> Result<KernelCard, KernelBridgeError>;

    /// After the host answered (or could not be reached): the card's final decision. Called
    /// only for contact chip cards, which are still in the reader.
    fn complete(&mut self, answer: &HostAnswer) -> Result<CardDecision, KernelBridgeError>;

    /// Stops whatever the kernel is doing (the transaction ended without completion).
    fn abort(&mut self);

    /// Loads the acquirer's EMV parameters into the kernel: each AID and each CA public key as
    /// the BER-TLV record the host's parameter download delivered (UnionPay POS: 9F06, DF01,
    /// 9F08, DF11-DF21, ... for an AID; 9F06, 9F22, DF05, DF06, DF07, DF02, DF04, DF03 for a
    /// key; docs/messages.md). Sunmi `EMVOptV2.addAid` / `addCapk` and PAX's equivalents take
    /// these records. The default keeps the kernel's own parameters (a kernel provisioned by
    /// the vendor's terminal management system).
    fn load_parameters(
        &mut self,
        aids: &[Vec<u8>],
        ca_keys: &[Vec<u8>],
    ) -> Result<(), KernelBridgeError> {
        let _ = (aids, ca_keys);
        Ok(())
    }
}

/// Why the SDK refuses a card the kernel read (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardRefusal {
    /// A chip card was swiped while its chip was not tried: insert it.
    #[error("chip card swiped: insert the card")]
    ChipCardSwiped,
    /// The PAN fails its Luhn check digit.
    #[error("card number check digit is wrong")]
    BadCheckDigit,
    /// The expiry is not `YYMM` with a month 01-12.
    #[error("expiry date is not a valid YYMM")]
    BadExpiry,
    /// The card is presented in a way the transaction does not allow.
    #[error("this way of presenting the card is not allowed here")]
    EntryNotAllowed,
    /// A chip read without chip data (field 55), or a swipe without track 2.
    #[error("the kernel returned incomplete card data")]
    Incomplete,
}

/// Whether a service code names a chip card (first digit 2 or 6: ISO/IEC 7813, service code
/// position 1 "international/national interchange, integrated circuit card").
pub fn service_code_says_chip(service_code: &str) -> bool {
    matches!(service_code.as_bytes().first(), Some(b'2' | b'6'))
}

/// Whether `yymm` is four digits with a month 01 to 12.
pub fn valid_expiry(yymm: &str) -> bool {
    yymm.len() == 4
        && yymm.bytes().all(|b| b.is_ascii_digit())
        && matches!(
            yymm.get(2..4).and_then(|m| m.parse::<u8>().ok()),
            Some(1..=12)
        )
}

/// The SDK's acceptance rules for a card the kernel read; returns the entry mode the request
/// carries. A swiped chip card (service code 2xx or 6xx) is refused unless the kernel reports
/// that the chip could not be read, in which case it is a fallback (`80x`). A keyed card needs
/// a good Luhn digit and a valid expiry month.
pub fn accept(card: &KernelCard, allowed: &[EntryMode]) -> Result<EntryMode, CardRefusal> {
    let service_code = card.service_code.clone().or_else(|| {
        card.track2
            .as_ref()
            .and_then(|t| t.service_code().map(str::to_owned))
    });
    let mode = match card.entry_mode {
        EntryMode::Magstripe | EntryMode::FallbackMagstripe => {
            if card.track2.is_none() {
                return Err(CardRefusal::Incomplete);
            }
            let chip = service_code.as_deref().is_some_and(service_code_says_chip);
            if !chip {
                // A card without a chip swipes, whatever the kernel called it.
                EntryMode::Magstripe
            } else if card.chip_failed || card.entry_mode == EntryMode::FallbackMagstripe {
                EntryMode::FallbackMagstripe
            } else {
                return Err(CardRefusal::ChipCardSwiped);
            }
        }
        EntryMode::Keyed => {
            if !card.pan.luhn_ok() {
                return Err(CardRefusal::BadCheckDigit);
            }
            if !card.expiry.as_deref().is_some_and(valid_expiry) {
                return Err(CardRefusal::BadExpiry);
            }
            EntryMode::Keyed
        }
        EntryMode::ContactChip | EntryMode::ContactlessChip => {
            if card.icc_data.as_bytes().is_empty() {
                return Err(CardRefusal::Incomplete);
            }
            card.entry_mode
        }
    };
    // A fallback is a swipe: allowed where swiping is.
    let needed = match mode {
        EntryMode::FallbackMagstripe => EntryMode::Magstripe,
        m => m,
    };
    if !allowed.is_empty() && !allowed.contains(&needed) && !allowed.contains(&mode) {
        return Err(CardRefusal::EntryNotAllowed);
    }
    Ok(mode)
}

/// The value of a primitive tag in field 55 bytes (first occurrence, depth-first).
pub fn icc_tag(icc: &IccData, tag: u32) -> Option<Vec<u8>> {
    let tlvs = tlv::parse(icc.as_bytes()).ok()?;
    tlv::find_bytes(&tlvs, Tag(tag)).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swiped(track2: &str, chip_failed: bool) -> KernelCard {
        let t2 = Track2::new(track2).expect("test track 2");
        KernelCard {
            entry_mode: EntryMode::Magstripe,
            pan: t2.pan().expect("pan"),
            pan_seq: None,
            expiry: t2.expiry().map(str::to_owned),
            service_code: None,
            track2: Some(t2),
            aid: Vec::new(),
            app_label: String::new(),
            icc_data: IccData::default(),
            verification: Verification::Signature,
            chip_failed,
        }
    }

    fn keyed(pan: &str, expiry: &str) -> KernelCard {
        KernelCard {
            entry_mode: EntryMode::Keyed,
            pan: Pan::new(pan).expect("pan"),
            pan_seq: None,
            expiry: Some(expiry.into()),
            service_code: None,
            track2: None,
            aid: Vec::new(),
            app_label: String::new(),
            icc_data: IccData::default(),
            verification: Verification::NoCvm,
            chip_failed: false,
        }
    }

    #[test]
    fn a_swiped_chip_card_is_refused_unless_its_chip_failed() {
        for sc in ["201", "220", "601", "620"] {
            let t2 = format!("6228480402564890018D3012{sc}0000000000");
            assert_eq!(
                accept(&swiped(&t2, false), &[]),
                Err(CardRefusal::ChipCardSwiped),
                "service code {sc}"
            );
            assert_eq!(
                accept(&swiped(&t2, true), &[]),
                Ok(EntryMode::FallbackMagstripe),
                "service code {sc}"
            );
        }
    }

    #[test]
    fn a_magstripe_only_card_swipes() {
        let c = swiped("4761739001010010D30121010000000000", false);
        assert_eq!(accept(&c, &[]), Ok(EntryMode::Magstripe));
        // Reported as a fallback, but the card has no chip: an ordinary swipe.
        let mut f = c.clone();
        f.entry_mode = EntryMode::FallbackMagstripe;
        assert_eq!(accept(&f, &[]), Ok(EntryMode::Magstripe));
    }

    #[test]
    fn keyed_entry_checks_luhn_and_month() {
        assert_eq!(
            accept(&keyed("4761739001010010", "3012"), &[]),
            Ok(EntryMode::Keyed)
        );
        assert_eq!(
            accept(&keyed("4761739001010011", "3012"), &[]),
            Err(CardRefusal::BadCheckDigit)
        );
        for bad in ["3013", "3000", "30", "30a1", "301201"] {
            assert_eq!(
                accept(&keyed("4761739001010010", bad), &[]),
                Err(CardRefusal::BadExpiry),
                "{bad}"
            );
        }
    }

    #[test]
    fn entry_modes_outside_the_allowed_set_are_refused() {
        let c = swiped("4761739001010010D30121010000000000", false);
        assert_eq!(
            accept(&c, &[EntryMode::ContactChip]),
            Err(CardRefusal::EntryNotAllowed)
        );
        let f = swiped("6228480402564890018D30122010000000000", true);
        assert_eq!(
            accept(&f, &[EntryMode::Magstripe]),
            Ok(EntryMode::FallbackMagstripe)
        );
    }

    #[test]
    fn field_22_carries_entry_and_pin() {
        assert_eq!(EntryMode::ContactChip.pos_entry_mode(true), "051");
        assert_eq!(EntryMode::FallbackMagstripe.pos_entry_mode(false), "802");
        for m in EntryMode::ALL {
            assert_eq!(
                EntryMode::from_pos_entry_mode(&m.pos_entry_mode(true)),
                Some(m)
            );
        }
    }

    #[test]
    fn debug_hides_the_pin_block() {
        let v = Verification::OnlinePin {
            block: Some(SecretBytes::new(vec![0x12; 8])),
        };
        assert!(!format!("{v:?}").contains("12"));
    }
}
