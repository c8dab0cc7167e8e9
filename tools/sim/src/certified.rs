//! A simulated device kernel: [`SimCertifiedKernel`] plays the certified EMV level-2 kernel of
//! a smart POS (what the app wraps in [`CertifiedKernel`]) with the Visa, Mastercard and
//! UnionPay test cards of [`crate::card`] (same PANs, PAN sequence numbers, expiry, AIDs,
//! labels and ICC keys), inserted, tapped or swiped, and with the behaviours of
//! [`SimBehaviour`]. The host-side counterpart of its final cryptogram is
//! [`verify_final_cryptogram`].
//!
//! # What the simulated kernel answers
//! - Inserted ([`Presentation::Chip`]) or tapped ([`Presentation::Tap`]): a chip read with
//!   field 55 in [`FIELD55_TAGS`] order (every tag of that list except the UnionPay product
//!   id 9F63). The ARQC (9F26, CID 9F27 = `80`) is [`SimCard`]'s: the common session key from
//!   the ATC, which goes up by one per read, over the Book 2 Table 26 data 9F02 9F03 9F1A 95
//!   5F2A 9A 9C 9F37 82 9F36, so the host's [`crate::card::verify_arqc`] accepts it. The card
//!   also gives its PAN sequence number (5F34), track 2 equivalent data (57: `PAN D YYMM SSS
//!   1234567890`, service code `201` for Visa and Mastercard, `220` for UnionPay), expiry,
//!   AID and label. The TVR is zero except "online PIN entered" when the card asks for PIN.
//! - Swiped ([`Presentation::Swipe`]): track 2 with the same service codes: these are chip
//!   cards, so the SDK's rule ([`smartpos_emv::certified::accept`]) refuses a plain swipe. With
//!   [`SimBehaviour::chip_unreadable`] the kernel reports `chip_failed = true` (it tried the
//!   chip first), which makes the swipe a fallback. [`SimBehaviour::magstripe_only`] is a card
//!   without a chip: service code `101`, and inserting or tapping it fails.
//! - Cardholder verification: signature when inserted or swiped, no CVM when tapped; with
//!   [`SimBehaviour::pin_on_pin_pad`], online PIN *without a PIN block*
//!   (`Verification::OnlinePin { block: None }`, 9F34 `42 03 00`): the simulated PIN pad has no
//!   PIN key loaded (nothing in the simulator injects one), so it cannot encrypt a PIN block,
//!   and the SDK asks its own PIN entry, as a kernel without a secure PIN pad does.
//!
//! # The final decision ([`CertifiedKernel::complete`], inserted cards only)
//! 1. Issuer authentication: when the answer carries issuer authentication data (91), it must
//!    be method 1, `ARPC (8) || ARC (2)`, and the ARPC must be `TDES(session key)[ARQC XOR
//!    (ARC || 0..)]` with the ARQC's session key ([`crate::card::arpc`]); otherwise the TVR
//!    gets "issuer authentication failed" (byte 5 bit 7) and the card declines. Without 91
//!    the card does not insist on issuer authentication.
//! 2. Issuer scripts with tag 71 run (Book 3 §10.10); one that fails sets TVR byte 5 bit 6.
//! 3. The second GENERATE AC. The card approves (TC, CID `40`) when the host was reached,
//!    approved, issuer authentication did not fail, the application is not blocked and the
//!    card is not told to decline ([`SimBehaviour::decline_at_second_ac`]); otherwise it
//!    declines (AAC, CID `00`). **This simulator's convention** for the second cryptogram:
//!    the same MAC construction as the ARQC (common session key of the same ATC, ISO 9797-1
//!    MAC algorithm 3, method-2 padding) over the Table 26 data, with the TVR as it is now,
//!    followed by the authorisation response code (8A, 2 bytes: the host's response code, or
//!    `Z3` "unable to go online" when the host was not reached). Real cards follow their
//!    scheme's CVN rules instead; [`verify_final_cryptogram`] checks this convention.
//! 4. Issuer scripts with tag 72 (and anything that is not a 71 template) run.
//!
//! The final chip data is the read's field 55 with 9F26, 9F27 and 95 replaced and 8A
//! appended. Script results (9F5B / DF31 value) are, per script in the order received, one
//! result byte (high nibble `2` processed successfully, `1` failed; low nibble the sequence
//! number of the failing command, 0 when not specified) and the script identifier (9F18, 4
//! bytes) or zeros. At most [`MAX_SCRIPTS`] scripts are run; a script is not run when the host
//! was not reached.
//!
//! A script command (86) is accepted when it is a well-formed APDU with a secure-messaging
//! class (`04`, `0C`, `84`, `8C`) and one of the instructions Book 3 §6.5 lists for scripts:
//! PUT DATA (`DA`), UPDATE RECORD (`DC`), APPLICATION BLOCK (`1E`), APPLICATION UNBLOCK
//! (`18`), CARD BLOCK (`16`), PIN CHANGE/UNBLOCK (`24`). The secure-messaging MAC is not
//! checked. APPLICATION BLOCK and CARD BLOCK block the chip: later chip reads fail (the
//! magnetic stripe still swipes). Nothing a host sends can make the kernel panic.
//!
//! # Errors
//! `read` fails with [`KernelBridgeError::NotAccepted`] when the chip cannot be read
//! ([`SimBehaviour::chip_unreadable`], reason [`CHIP_UNREADABLE`]), the card has no chip, no
//! AID of the request matches, the card is blocked or its ATC is exhausted; with
//! [`KernelBridgeError::Kernel`] and [`ERR_BAD_REQUEST`] when the request's values cannot be
//! encoded. `complete` fails with [`ERR_NOT_FOR_ENTRY_MODE`] when the card was not inserted and
//! with [`ERR_NOTHING_TO_COMPLETE`] when no chip read awaits completion.

use crate::card::{self, ArqcError, CardProfile, SimCard, TEST_IMK_AC};
use smartpos_crypto::emv::{self, AcPadding};
use smartpos_emv::certified::{
    CardDecision, CertifiedKernel, EntryMode, HostAnswer, KernelBridgeError, KernelCard,
    KernelRequest, Verification,
};
use smartpos_emv::kernel::{CryptogramType, FIELD55_TAGS, IccData};
use smartpos_emv::tlv::{self, Tag, Tlv, TlvValue};
use smartpos_types::{Pan, Track2, hex};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// [`KernelBridgeError::Kernel`] code: the request holds a value the card data cannot carry
/// (amount over 12 digits, currency or country over 3 digits, date not `YYMMDD`).
pub const ERR_BAD_REQUEST: i32 = -1;
/// [`KernelBridgeError::Kernel`] code: a cryptographic computation failed.
pub const ERR_CRYPTO: i32 = -2;
/// [`KernelBridgeError::Kernel`] code: `complete` was called for a card that was not inserted
/// (a tapped card has left the field, a swiped card has no chip session).
pub const ERR_NOT_FOR_ENTRY_MODE: i32 = -3;
/// [`KernelBridgeError::Kernel`] code: `complete` without a chip read awaiting it (never read,
/// already completed, or aborted).
pub const ERR_NOTHING_TO_COMPLETE: i32 = -4;
/// The [`KernelBridgeError::NotAccepted`] reason when the chip cannot be read: the cashier
/// asks the customer to swipe (fallback).
pub const CHIP_UNREADABLE: &str = "chip unreadable";
/// The most issuer scripts one completion runs (the rest are ignored).
pub const MAX_SCRIPTS: usize = 10;

/// Which test card (the [`SimCard`] of the same scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimScheme {
    /// Visa, PAN 4761739001010010, PSN 01, AID A0000000031010, service code 201.
    Visa,
    /// Mastercard, PAN 5413330089010434, PSN 00, AID A0000000041010, service code 201.
    Mastercard,
    /// UnionPay, PAN 6228480402564890018, PSN 01, AID A000000333010101, service code 220.
    UnionPay,
}

impl SimScheme {
    /// Every scheme.
    pub const ALL: [SimScheme; 3] = [SimScheme::Visa, SimScheme::Mastercard, SimScheme::UnionPay];

    /// The name [`FromStr`] reads: `visa`, `mastercard`, `unionpay`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SimScheme::Visa => "visa",
            SimScheme::Mastercard => "mastercard",
            SimScheme::UnionPay => "unionpay",
        }
    }

    /// The service code of the chip card (track 2 and 57): `201` (international, IC card,
    /// normal authorisation, no restrictions) for Visa and Mastercard, `220` (international, IC
    /// card, issuer authorisation, no restrictions) for UnionPay.
    pub const fn service_code(self) -> &'static str {
        match self {
            SimScheme::UnionPay => "220",
            _ => "201",
        }
    }

    fn profile(self) -> CardProfile {
        match self {
            SimScheme::Visa => CardProfile::Visa,
            SimScheme::Mastercard => CardProfile::Mastercard,
            SimScheme::UnionPay => CardProfile::UnionPay,
        }
    }

    /// Issuer application data (9F10): filler of the scheme's shape, as [`SimCard`] gives.
    fn iad(self) -> &'static [u8] {
        match self {
            SimScheme::Visa => &[0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00],
            SimScheme::UnionPay => &[0x07, 0x01, 0x01, 0x03, 0xA0, 0x00, 0x00, 0x01, 0x0A, 0x01],
            SimScheme::Mastercard => &[
                0x01, 0x10, 0xA0, 0x00, 0x03, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0xFF,
            ],
        }
    }

    /// Application version number (9F09), terminal side.
    fn app_version(self) -> [u8; 2] {
        match self {
            SimScheme::Visa => [0x00, 0x96],
            SimScheme::Mastercard => [0x00, 0x02],
            SimScheme::UnionPay => [0x00, 0x30],
        }
    }
}

/// A name [`FromStr`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {got:?} (known: {known})")]
pub struct UnknownName {
    /// What was being named (`scheme`, `presentation`, `behaviour`).
    pub what: &'static str,
    /// The name given.
    pub got: String,
    /// The names accepted.
    pub known: &'static str,
}

impl FromStr for SimScheme {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SimScheme::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "scheme",
                got: s.to_owned(),
                known: "visa, mastercard, unionpay",
            })
    }
}

/// How the customer presents the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presentation {
    /// Inserted into the contact reader ([`EntryMode::ContactChip`]); stays in the reader
    /// until [`CertifiedKernel::complete`].
    Chip,
    /// Tapped on the contactless reader ([`EntryMode::ContactlessChip`]).
    Tap,
    /// Swiped through the magnetic stripe reader ([`EntryMode::Magstripe`]).
    Swipe,
}

impl Presentation {
    /// Every presentation.
    pub const ALL: [Presentation; 3] = [Presentation::Chip, Presentation::Tap, Presentation::Swipe];

    /// The name [`FromStr`] reads: `chip`, `tap`, `swipe`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Presentation::Chip => "chip",
            Presentation::Tap => "tap",
            Presentation::Swipe => "swipe",
        }
    }

    /// The entry mode the kernel reports.
    pub const fn entry_mode(self) -> EntryMode {
        match self {
            Presentation::Chip => EntryMode::ContactChip,
            Presentation::Tap => EntryMode::ContactlessChip,
            Presentation::Swipe => EntryMode::Magstripe,
        }
    }
}

impl FromStr for Presentation {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Presentation::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "presentation",
                got: s.to_owned(),
                known: "chip, tap, swipe",
            })
    }
}

/// How the simulated card and kernel behave. All `false` ([`SimBehaviour::APPROVE`]): the
/// card answers TC at the second GENERATE AC when the host approved (and AAC when it declined
/// or was not reached), runs the issuer scripts it is given successfully, and needs no PIN.
/// The flags combine; [`FromStr`] reads them comma-separated (`pin,decline`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SimBehaviour {
    /// `decline`: the card answers AAC at the second GENERATE AC even though the host
    /// approved (the SDK must reverse the approval).
    pub decline_at_second_ac: bool,
    /// `chip-error`: the chip does not answer. Inserted or tapped, `read` fails with
    /// [`KernelBridgeError::NotAccepted`] (reason [`CHIP_UNREADABLE`]); swiped, the kernel
    /// reports `chip_failed = true`, so the swipe is a fallback.
    pub chip_unreadable: bool,
    /// `script-fail`: every issuer script command fails (result `11`, TVR byte 5 bit 6 for a
    /// 71 script).
    pub failing_scripts: bool,
    /// `pin`: the card asks for online PIN; the kernel returns
    /// `Verification::OnlinePin { block: None }` because the simulated PIN pad has no PIN key
    /// loaded, so the SDK asks its own PIN entry.
    pub pin_on_pin_pad: bool,
    /// `magstripe-only`: a card without a chip (service code `101`): it swipes as an ordinary
    /// magnetic-stripe card; inserted or tapped, nothing answers.
    pub magstripe_only: bool,
}

impl SimBehaviour {
    /// The card approves when the host approves.
    pub const APPROVE: SimBehaviour = SimBehaviour {
        decline_at_second_ac: false,
        chip_unreadable: false,
        failing_scripts: false,
        pin_on_pin_pad: false,
        magstripe_only: false,
    };

    /// The names [`FromStr`] reads, one per flag, and `approve` (no flag).
    pub const NAMES: &'static str =
        "approve, decline, chip-error, script-fail, pin, magstripe-only";
}

impl FromStr for SimBehaviour {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = SimBehaviour::APPROVE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "approve" => {}
                "decline" => b.decline_at_second_ac = true,
                "chip-error" => b.chip_unreadable = true,
                "script-fail" => b.failing_scripts = true,
                "pin" => b.pin_on_pin_pad = true,
                "magstripe-only" => b.magstripe_only = true,
                _ => {
                    return Err(UnknownName {
                        what: "behaviour",
                        got: name.to_owned(),
                        known: SimBehaviour::NAMES,
                    });
                }
            }
        }
        Ok(b)
    }
}

/// Where the TVR sits in the Table 26 terminal data (after 9F02, 9F03, 9F1A).
const TVR_AT: usize = 14;
/// Bytes of Table 26 terminal data (9F02 .. 9F37).
const TERMINAL_LEN: usize = 29;

/// A chip read that awaits the host's answer.
struct Pending {
    /// The Table 26 terminal data the ARQC covered.
    terminal: [u8; TERMINAL_LEN],
    atc: [u8; 2],
    arqc: [u8; 8],
    /// Field 55 of the read, in order.
    icc: Vec<(u32, Vec<u8>)>,
}

/// A simulated certified kernel with one test card. See the module documentation for what it
/// answers. `Debug` masks the PAN and hides the keys.
pub struct SimCertifiedKernel {
    scheme: SimScheme,
    via: Presentation,
    behaviour: SimBehaviour,
    card: SimCard,
    pending: Option<Pending>,
    blocked: bool,
    reads: usize,
    completions: usize,
    aborts: usize,
    script_commands: usize,
    last_decision: Option<CryptogramType>,
    /// AIDs of the parameters loaded ([`CertifiedKernel::load_parameters`]); empty: none.
    loaded_aids: Vec<Vec<u8>>,
    loaded_keys: usize,
}

impl fmt::Debug for SimCertifiedKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCertifiedKernel")
            .field("scheme", &self.scheme)
            .field("via", &self.via)
            .field("behaviour", &self.behaviour)
            .field("card", &self.card)
            .field("awaiting_completion", &self.pending.is_some())
            .field("blocked", &self.blocked)
            .field("reads", &self.reads)
            .field("completions", &self.completions)
            .field("aborts", &self.aborts)
            .finish_non_exhaustive()
    }
}

fn bad_request(reason: impl Into<String>) -> KernelBridgeError {
    KernelBridgeError::Kernel {
        code: ERR_BAD_REQUEST,
        reason: reason.into(),
    }
}

fn crypto_failed() -> KernelBridgeError {
    KernelBridgeError::Kernel {
        code: ERR_CRYPTO,
        reason: "cryptogram computation failed".into(),
    }
}

fn not_accepted(reason: &str) -> KernelBridgeError {
    KernelBridgeError::NotAccepted {
        reason: reason.to_owned(),
    }
}

/// `value` as `digits` BCD digits (`digits` even), if it fits.
fn bcd(value: u64, digits: usize) -> Option<Vec<u8>> {
    let text = format!("{value:0digits$}");
    if text.len() != digits {
        return None;
    }
    hex::decode(&text).ok()
}

impl SimCertifiedKernel {
    /// A kernel with the `scheme`'s test card, presented `via`, behaving as `behaviour`; the
    /// card's keys derive from [`TEST_IMK_AC`], which the host simulator uses. Fails only if
    /// the key derivation fails, which it does not for the built-in cards.
    pub fn new(
        scheme: SimScheme,
        via: Presentation,
        behaviour: SimBehaviour,
    ) -> Result<SimCertifiedKernel, ArqcError> {
        SimCertifiedKernel::with_imk(scheme, via, behaviour, &TEST_IMK_AC)
    }

    /// As [`SimCertifiedKernel::new`], with keys derived from another issuer master key (a
    /// card the host simulator's issuer does not know: its ARQC is declined).
    pub fn with_imk(
        scheme: SimScheme,
        via: Presentation,
        behaviour: SimBehaviour,
        imk: &[u8; 16],
    ) -> Result<SimCertifiedKernel, ArqcError> {
        Ok(SimCertifiedKernel {
            scheme,
            via,
            behaviour,
            card: SimCard::with_imk(scheme.profile(), imk)?,
            pending: None,
            blocked: false,
            reads: 0,
            completions: 0,
            aborts: 0,
            script_commands: 0,
            last_decision: None,
            loaded_aids: Vec::new(),
            loaded_keys: 0,
        })
    }

    /// The customer presents the card another way from the next read on (e.g. swipes it after
    /// the chip could not be read). A chip read awaiting completion is dropped.
    pub fn present(&mut self, via: Presentation) {
        self.via = via;
        self.pending = None;
    }

    /// The scheme of the card.
    pub fn scheme(&self) -> SimScheme {
        self.scheme
    }

    /// How the card is presented.
    pub fn presentation(&self) -> Presentation {
        self.via
    }

    /// The behaviour.
    pub fn behaviour(&self) -> SimBehaviour {
        self.behaviour
    }

    /// The card's PAN.
    pub fn pan(&self) -> &Pan {
        self.card.pan()
    }

    /// The card's PAN sequence number (5F34).
    pub fn psn(&self) -> u8 {
        self.card.psn()
    }

    /// The card's current ATC (the value of the last read's cryptogram).
    pub fn atc(&self) -> u16 {
        self.card.atc()
    }

    /// How many times `read` was called.
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// How many completions ran (calls of `complete` that reached the card).
    pub fn completions(&self) -> usize {
        self.completions
    }

    /// How many times `abort` was called.
    pub fn aborts(&self) -> usize {
        self.aborts
    }

    /// The AIDs and the number of CA keys last loaded with
    /// [`CertifiedKernel::load_parameters`].
    pub fn loaded_parameters(&self) -> (&[Vec<u8>], usize) {
        (&self.loaded_aids, self.loaded_keys)
    }

    /// Whether `abort` was ever called.
    pub fn aborted(&self) -> bool {
        self.aborts > 0
    }

    /// How many issuer script commands the card executed successfully.
    pub fn script_commands(&self) -> usize {
        self.script_commands
    }

    /// Whether a script blocked the chip (APPLICATION BLOCK or CARD BLOCK).
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// Whether an inserted card's read awaits `complete`.
    pub fn awaiting_completion(&self) -> bool {
        self.pending.is_some()
    }

    /// The cryptogram type of the last completion's decision.
    pub fn last_decision(&self) -> Option<CryptogramType> {
        self.last_decision
    }

    fn service_code(&self) -> &'static str {
        if self.behaviour.magstripe_only {
            "101"
        } else {
            self.scheme.service_code()
        }
    }

    fn expiry_yymm(&self) -> String {
        hex::encode(self.card.expiry.get(..2).unwrap_or_default())
    }

    fn track2(&self) -> Result<Track2, KernelBridgeError> {
        let mut text = format!(
            "{}D{}{}",
            self.card.pan().expose(),
            self.expiry_yymm(),
            self.service_code()
        );
        // Discretionary data, as much as fits in track 2's 37 characters.
        for d in "1234567890".chars() {
            if text.len() >= 37 {
                break;
            }
            text.push(d);
        }
        Track2::new(&text).ok_or_else(|| KernelBridgeError::Kernel {
            code: ERR_BAD_REQUEST,
            reason: "track 2 could not be built".into(),
        })
    }

    fn app_label(&self) -> String {
        String::from_utf8_lossy(self.card.label()).into_owned()
    }

    fn swiped(&self) -> Result<KernelCard, KernelBridgeError> {
        let track2 = self.track2()?;
        Ok(KernelCard {
            entry_mode: EntryMode::Magstripe,
            pan: self.card.pan().clone(),
            pan_seq: None,
            expiry: Some(self.expiry_yymm()),
            service_code: Some(self.service_code().to_owned()),
            track2: Some(track2),
            aid: Vec::new(),
            app_label: String::new(),
            icc_data: IccData::default(),
            verification: if self.behaviour.pin_on_pin_pad {
                Verification::OnlinePin { block: None }
            } else {
                Verification::Signature
            },
            chip_failed: self.behaviour.chip_unreadable && !self.behaviour.magstripe_only,
        })
    }

    /// The Table 26 terminal data (9F02 9F03 9F1A 95 5F2A 9A 9C 9F37) for `request`.
    fn terminal_data(
        request: &KernelRequest,
        tvr: [u8; 5],
    ) -> Result<[u8; TERMINAL_LEN], KernelBridgeError> {
        let amount = bcd(request.amount, 12).ok_or_else(|| bad_request("amount over 12 digits"))?;
        let other = bcd(request.other_amount, 12)
            .ok_or_else(|| bad_request("other amount over 12 digits"))?;
        let country = bcd(u64::from(request.country), 4)
            .filter(|_| request.country <= 999)
            .ok_or_else(|| bad_request("country code over 3 digits"))?;
        let currency = bcd(u64::from(request.currency), 4)
            .filter(|_| request.currency <= 999)
            .ok_or_else(|| bad_request("currency code over 3 digits"))?;
        let date = Some(request.date.as_str())
            .filter(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| hex::decode(d).ok())
            .ok_or_else(|| bad_request("date is not YYMMDD"))?;
        let mut data = Vec::with_capacity(TERMINAL_LEN);
        data.extend_from_slice(&amount);
        data.extend_from_slice(&other);
        data.extend_from_slice(&country);
        data.extend_from_slice(&tvr);
        data.extend_from_slice(&currency);
        data.extend_from_slice(&date);
        data.push(request.txn_type);
        data.extend_from_slice(&request.unpredictable_number);
        data.try_into()
            .map_err(|_| bad_request("terminal data has the wrong length"))
    }

    fn chip_read(&mut self, request: &KernelRequest) -> Result<KernelCard, KernelBridgeError> {
        let aid = self.card.aid();
        // Partial selection (Book 1 §12.3.1): a terminal AID that begins the card's AID.
        if !request.aids.is_empty()
            && !request
                .aids
                .iter()
                .any(|a| a.len() >= 5 && aid.starts_with(a))
        {
            return Err(not_accepted("no application the terminal accepts"));
        }
        // With the acquirer's parameters loaded, only their applications are accepted.
        if !self.loaded_aids.is_empty()
            && !self
                .loaded_aids
                .iter()
                .any(|a| a.len() >= 5 && aid.starts_with(a))
        {
            return Err(not_accepted("no parameters for this application"));
        }
        let pin = self.behaviour.pin_on_pin_pad;
        let mut tvr = [0u8; 5];
        if pin {
            tvr[2] |= 0x04; // online PIN entered
        }
        let terminal = Self::terminal_data(request, tvr)?;
        let atc = self
            .card
            .next_atc()
            .ok_or_else(|| not_accepted("application transaction counter exhausted"))?;
        let arqc = self
            .card
            .cryptogram(&terminal, atc)
            .ok_or_else(crypto_failed)?;
        let (verification, cvm_results) = match (pin, self.via) {
            (true, _) => (Verification::OnlinePin { block: None }, [0x42, 0x03, 0x00]),
            (false, Presentation::Tap) => (Verification::NoCvm, [0x1F, 0x03, 0x02]),
            (false, _) => (Verification::Signature, [0x1E, 0x03, 0x00]),
        };
        let get = |r: std::ops::Range<usize>| terminal.get(r).unwrap_or_default().to_vec();
        let sequence = bcd(u64::try_from(self.reads).unwrap_or(0) % 100_000_000, 8)
            .unwrap_or_else(|| vec![0; 4]);
        let values: Vec<(u32, Vec<u8>)> = vec![
            (0x9F26, arqc.to_vec()),
            (0x9F27, vec![0x80]),
            (0x9F10, self.scheme.iad().to_vec()),
            (0x9F37, get(25..29)),
            (0x9F36, atc.to_vec()),
            (0x95, get(14..19)),
            (0x9A, get(21..24)),
            (0x9C, get(24..25)),
            (0x9F02, get(0..6)),
            (0x5F2A, get(19..21)),
            (0x82, self.card.aip().to_vec()),
            (0x9F1A, get(12..14)),
            (0x9F03, get(6..12)),
            // Terminal capabilities: manual entry, magstripe, IC; plaintext and enciphered
            // PIN, signature, no CVM; SDA, DDA, CDA.
            (0x9F33, vec![0xE0, 0xF8, 0xC8]),
            (0x9F34, cvm_results.to_vec()),
            // Terminal type 22: attended, merchant, offline with online capability.
            (0x9F35, vec![0x22]),
            (0x9F1E, b"SIMPOS01".to_vec()),
            (0x84, aid.to_vec()),
            (0x9F09, self.scheme.app_version().to_vec()),
            (0x9F41, sequence),
        ];
        // In FIELD55_TAGS order.
        let icc: Vec<(u32, Vec<u8>)> = FIELD55_TAGS
            .iter()
            .filter_map(|t| values.iter().find(|(tag, _)| tag == t).cloned())
            .collect();
        let icc_data = encode_icc(&icc);
        if self.via == Presentation::Chip {
            self.pending = Some(Pending {
                terminal,
                atc,
                arqc,
                icc,
            });
        }
        Ok(KernelCard {
            entry_mode: self.via.entry_mode(),
            pan: self.card.pan().clone(),
            pan_seq: Some(self.card.psn()),
            expiry: Some(self.expiry_yymm()),
            track2: Some(self.track2()?),
            service_code: Some(self.service_code().to_owned()),
            aid: aid.to_vec(),
            app_label: self.app_label(),
            icc_data,
            verification,
            chip_failed: false,
        })
    }

    /// Whether 91 (`ARPC || ARC`, method 1) authenticates the issuer for this ARQC.
    fn issuer_authentic(&self, p: &Pending, issuer_auth_data: &[u8]) -> bool {
        let (Some(got), Some(arc)) = (issuer_auth_data.get(..8), issuer_auth_data.get(8..)) else {
            return false;
        };
        if arc.len() != 2 {
            return false;
        }
        let Ok(sk) = emv::common_session_key(&self.card.icc_mk, p.atc) else {
            return false;
        };
        match emv::arpc_method1(&sk, &p.arqc, arc) {
            Ok(want) => smartpos_crypto::mac::verify(&want, got),
            Err(_) => false,
        }
    }

    /// Runs one issuer script (a whole 71 or 72 template): its result byte and identifier.
    fn run_script(&mut self, script: &[u8]) -> [u8; 5] {
        const FAILED: u8 = 0x10;
        const DONE: u8 = 0x20;
        let mut result = [FAILED, 0, 0, 0, 0];
        let children = match tlv::parse_one(script) {
            Ok((
                Tlv {
                    tag: Tag(0x71 | 0x72),
                    value: TlvValue::Constructed(children),
                    ..
                },
                used,
            )) if used == script.len() => children,
            _ => return result,
        };
        // The script identifier first, so that even a failed script names itself.
        for c in &children {
            if c.tag == Tag(0x9F18) {
                match c.bytes().and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                    Some(id) => result[1..].copy_from_slice(&id),
                    None => return result,
                }
            }
        }
        let mut seq: u8 = 0;
        for c in &children {
            match (c.tag, c.bytes()) {
                (Tag(0x9F18), _) => {}
                (Tag(0x86), Some(apdu)) => {
                    seq = seq.saturating_add(1);
                    if !self.run_command(apdu) {
                        result[0] = FAILED | seq.min(15);
                        return result;
                    }
                }
                // Anything else in a script template: the script is not understood.
                _ => return result,
            }
        }
        result[0] = DONE;
        result
    }

    /// Executes one issuer script command (86); whether the card answered `90 00`.
    fn run_command(&mut self, apdu: &[u8]) -> bool {
        let Some(&[cla, ins, _, _]) = apdu.get(..4) else {
            return false;
        };
        let well_formed = match apdu.get(4..) {
            // Case 1, or case 2 (Le only).
            None | Some([]) | Some([_]) => true,
            // Case 3 or 4: Lc, data, optional Le.
            Some([lc, rest @ ..]) => {
                let lc = usize::from(*lc);
                lc > 0 && (rest.len() == lc || rest.len() == lc + 1)
            }
        };
        if !well_formed || !matches!(cla, 0x04 | 0x0C | 0x84 | 0x8C) {
            return false;
        }
        if !matches!(ins, 0xDA | 0xDC | 0x1E | 0x18 | 0x16 | 0x24) {
            return false;
        }
        if self.behaviour.failing_scripts {
            return false;
        }
        match ins {
            0x1E | 0x16 => self.blocked = true,
            0x18 => self.blocked = false,
            _ => {}
        }
        self.script_commands = self.script_commands.saturating_add(1);
        true
    }
}

fn encode_icc(icc: &[(u32, Vec<u8>)]) -> IccData {
    let tlvs: Vec<Tlv> = icc
        .iter()
        .map(|(t, v)| Tlv::primitive(Tag(*t), v.clone()))
        .collect();
    IccData(tlv::encode_all(&tlvs))
}

fn set(icc: &mut Vec<(u32, Vec<u8>)>, tag: u32, value: Vec<u8>) {
    match icc.iter_mut().find(|(t, _)| *t == tag) {
        Some(entry) => entry.1 = value,
        None => icc.push((tag, value)),
    }
}

impl CertifiedKernel for SimCertifiedKernel {
    fn read(&mut self, request: &KernelRequest) -> Result<KernelCard, KernelBridgeError> {
        self.reads = self.reads.saturating_add(1);
        self.pending = None;
        match self.via {
            Presentation::Swipe => self.swiped(),
            Presentation::Chip | Presentation::Tap => {
                if self.behaviour.magstripe_only {
                    return Err(not_accepted("the card has no chip"));
                }
                if self.behaviour.chip_unreadable {
                    return Err(not_accepted(CHIP_UNREADABLE));
                }
                if self.blocked {
                    return Err(not_accepted("application blocked"));
                }
                self.chip_read(request)
            }
        }
    }

    fn complete(&mut self, answer: &HostAnswer) -> Result<CardDecision, KernelBridgeError> {
        if self.via != Presentation::Chip {
            return Err(KernelBridgeError::Kernel {
                code: ERR_NOT_FOR_ENTRY_MODE,
                reason: format!(
                    "completion is not for this entry mode ({})",
                    self.via.entry_mode().as_str()
                ),
            });
        }
        let Some(mut p) = self.pending.take() else {
            return Err(KernelBridgeError::Kernel {
                code: ERR_NOTHING_TO_COMPLETE,
                reason: "no chip read awaits completion".into(),
            });
        };
        self.completions = self.completions.saturating_add(1);
        let rc = answer.response_code.as_bytes();
        let arc: Option<[u8; 2]> = if answer.online {
            <[u8; 2]>::try_from(rc)
                .ok()
                .filter(|a| a.iter().all(u8::is_ascii_alphanumeric))
        } else {
            None
        };
        let mut tvr = [0u8; 5];
        tvr.copy_from_slice(p.terminal.get(TVR_AT..TVR_AT + 5).unwrap_or(&[0; 5]));
        let authentic = match &answer.issuer_auth_data {
            None => true,
            Some(d) => answer.online && self.issuer_authentic(&p, d),
        };
        if !authentic {
            tvr[4] |= 0x40; // issuer authentication failed
        }
        let scripts: &[Vec<u8>] = if answer.online {
            answer
                .scripts
                .get(..answer.scripts.len().min(MAX_SCRIPTS))
                .unwrap_or_default()
        } else {
            &[]
        };
        let mut results: Vec<Option<[u8; 5]>> = vec![None; scripts.len()];
        for (i, s) in scripts.iter().enumerate() {
            if s.first() == Some(&0x71) {
                let r = self.run_script(s);
                if r[0] & 0xF0 != 0x20 {
                    tvr[4] |= 0x20; // script processing failed before final GENERATE AC
                }
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            }
        }
        let approve = answer.online
            && answer.approved
            && arc.is_some()
            && authentic
            && !self.blocked
            && !self.behaviour.decline_at_second_ac;
        let arc = arc.unwrap_or(*b"Z3");
        if let Some(t) = p.terminal.get_mut(TVR_AT..TVR_AT + 5) {
            t.copy_from_slice(&tvr);
        }
        let mut data = p.terminal.to_vec();
        data.extend_from_slice(&self.card.aip());
        data.extend_from_slice(&p.atc);
        data.extend_from_slice(&arc);
        let sk = emv::common_session_key(&self.card.icc_mk, p.atc).map_err(|_| crypto_failed())?;
        let ac = emv::generate_ac(&sk, &data, AcPadding::Emv).map_err(|_| crypto_failed())?;
        for (i, s) in scripts.iter().enumerate() {
            if s.first() != Some(&0x71) {
                let r = self.run_script(s);
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            }
        }
        let (cryptogram_type, cid) = if approve {
            (CryptogramType::Tc, 0x40)
        } else {
            (CryptogramType::Aac, 0x00)
        };
        set(&mut p.icc, 0x9F26, ac.to_vec());
        set(&mut p.icc, 0x9F27, vec![cid]);
        set(&mut p.icc, 0x95, tvr.to_vec());
        set(&mut p.icc, 0x8A, arc.to_vec());
        self.last_decision = Some(cryptogram_type);
        Ok(CardDecision {
            cryptogram_type,
            cryptogram: ac.to_vec(),
            icc_data: encode_icc(&p.icc),
            script_results: results.into_iter().flatten().flatten().collect(),
        })
    }

    fn abort(&mut self) {
        self.aborts = self.aborts.saturating_add(1);
        self.pending = None;
    }

    /// Keeps the AIDs (9F06 of each record) and counts the CA keys; a record without 9F06 is
    /// refused, as a device kernel refuses a malformed parameter.
    fn load_parameters(
        &mut self,
        aids: &[Vec<u8>],
        ca_keys: &[Vec<u8>],
    ) -> Result<(), KernelBridgeError> {
        let mut loaded = Vec::with_capacity(aids.len());
        for record in aids {
            let aid = smartpos_emv::tlv::parse(record)
                .ok()
                .and_then(|t| {
                    smartpos_emv::tlv::find_bytes(&t, smartpos_emv::tlv::Tag(0x9F06))
                        .map(<[u8]>::to_vec)
                })
                .ok_or(KernelBridgeError::Kernel {
                    code: ERR_BAD_REQUEST,
                    reason: "AID record without 9F06".into(),
                })?;
            loaded.push(aid);
        }
        self.loaded_aids = loaded;
        self.loaded_keys = ca_keys.len();
        Ok(())
    }
}

/// Host side: checks the final cryptogram (9F26 after completion, a TC or an AAC) in the final
/// chip data by this simulator's convention (module documentation): the ARQC's MAC over the
/// Table 26 data (95 as in the final data) followed by 8A. Returns its type (from 9F27) and
/// the cryptogram. The comparison is constant-time.
pub fn verify_final_cryptogram(
    imk: &[u8; 16],
    pan: &Pan,
    psn: u8,
    icc_data: &[u8],
) -> Result<(CryptogramType, [u8; 8]), ArqcError> {
    let tlvs = tlv::parse(icc_data).map_err(|_| ArqcError::Malformed)?;
    let get = |tag: u32, len: usize| card::fixed_tag(&tlvs, tag, len);
    let mut data = Vec::with_capacity(39);
    for &(tag, len) in card::CSK_TAGS {
        data.extend_from_slice(get(tag, len)?);
    }
    data.extend_from_slice(get(0x8A, 2)?);
    let ac: [u8; 8] = get(0x9F26, 8)?
        .try_into()
        .map_err(|_| ArqcError::Malformed)?;
    let atc: [u8; 2] = get(0x9F36, 2)?
        .try_into()
        .map_err(|_| ArqcError::Malformed)?;
    let kind = get(0x9F27, 1)?
        .first()
        .and_then(|c| CryptogramType::from_cid(*c))
        .ok_or(ArqcError::Malformed)?;
    let sk = card::session_key(imk, pan, psn, atc)?;
    if emv::verify_ac(&sk, &data, AcPadding::Emv, &ac)? {
        Ok((kind, ac))
    } else {
        Err(ArqcError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("unionpay".parse::<SimScheme>(), Ok(SimScheme::UnionPay));
        assert_eq!("tap".parse::<Presentation>(), Ok(Presentation::Tap));
        let b: SimBehaviour = "pin, decline".parse().unwrap();
        assert!(b.pin_on_pin_pad && b.decline_at_second_ac && !b.chip_unreadable);
        assert_eq!("approve".parse::<SimBehaviour>(), Ok(SimBehaviour::APPROVE));
        assert!("nonsense".parse::<SimBehaviour>().is_err());
        assert!("amex".parse::<SimScheme>().is_err());
    }

    #[test]
    fn bcd_refuses_what_does_not_fit() {
        assert_eq!(bcd(1234, 4), Some(vec![0x12, 0x34]));
        assert_eq!(bcd(12345, 4), None);
    }

    #[test]
    fn debug_masks_the_pan() {
        let k = SimCertifiedKernel::new(SimScheme::Visa, Presentation::Chip, SimBehaviour::APPROVE)
            .unwrap();
        let d = format!("{k:?}");
        assert!(!d.contains("4761739001010010"), "{d}");
    }
}
