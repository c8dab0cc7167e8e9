//! Simulated contactless cards with real EMV cryptograms, and the issuer-side helpers the host
//! simulator uses to check them ([`verify_arqc`], [`arpc`]).
//!
//! Each [`SimCard`] has a PAN, a PAN sequence number, an expiry date, an application
//! transaction counter (ATC) and an ICC master key derived from an issuer master key (IMK,
//! [`TEST_IMK_AC`] unless given) with EMV Book 2 A1.4 (option A; option B for PANs longer than
//! 16 digits, as A1.4 prescribes). Its cryptogram is the EMV common-session-key ARQC (Book 2
//! A1.3 session key from the ATC; ISO 9797-1 MAC algorithm 3 with method-2 padding) over the
//! Book 2 §8.1.1 Table 26 data set, in this order: amount authorised (9F02), amount other
//! (9F03), terminal country (9F1A), TVR (95), currency (5F2A), date (9A), type (9C),
//! unpredictable number (9F37), AIP (82), ATC (9F36): the order of the crypto test vectors.
//! The issuer application data (9F10) the cards return is filler of the scheme's shape: the
//! cryptogram is not computed by any scheme's CVN rules, only by the data set above, and the
//! host simulator checks it the same way.
//!
//! Profiles:
//! - `Visa`: qVSDC, cryptogram in the GPO response, one record (SFI 2) with 5A/5F24.
//! - `UnionPay`: qPBOC, the same flow, AID `A000000333010101`, a 19-digit PAN.
//! - `Mastercard`: M/Chip, GPO format 1 (AIP + AFL), two records with CDOL1 and a CVM list,
//!   cryptogram from GENERATE AC.
//! - `Expired`: the Visa card with expiry 2020-01-31. The card still answers with an ARQC;
//!   the kernel reports `expired: true` and the engine goes online; the host simulator
//!   declines an expired card with `54` when it checks the expiry (field 14 / 5F24).
//! - `PinRequired`: the Visa card whose CTQ (9F6C) asks for online PIN.
//! - `DeclinesOffline`: the Visa card that answers every GPO with an AAC (CID `00`, the IAD's
//!   CVR saying AAC too), computed like the ARQC: the kernel reports it as an outcome whose
//!   `declined_offline()` is true.
//! - `MastercardCdcvm`: the Mastercard with AIP `1B 80`, byte 1 bit 2 "on device cardholder
//!   verification supported" (a phone or watch wallet); its CVM list still offers online PIN.
//! - `PulledAway { after_apdus }`: the Visa card that leaves the field after answering
//!   `after_apdus` commands: every later command fails with [`CardRemoved`].

use smartpos_crypto::TdesKey;
use smartpos_crypto::emv::{self, AcPadding};
use smartpos_emv::tlv::{self, Tag, Tlv};
use smartpos_types::Pan;
use std::fmt;
use thiserror::Error;

/// The issuer master key for application cryptograms that every simulated card derives from.
/// A published TEST key: never use it for real cards.
pub const TEST_IMK_AC: [u8; 16] = [
    0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x76, 0x54, 0x32, 0x10, 0xFE, 0xDC, 0xBA, 0x98,
];

/// Which simulated card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardProfile {
    /// A Visa-like qVSDC card.
    Visa,
    /// A Mastercard-like M/Chip card.
    Mastercard,
    /// A UnionPay-like qPBOC card.
    UnionPay,
    /// A Visa-like card whose application expired in 2020.
    Expired,
    /// A Visa-like card that asks for online PIN.
    PinRequired,
    /// A Visa-like card that always declines offline: its GPO answer carries an AAC.
    DeclinesOffline,
    /// A Mastercard-like M/Chip application on a phone or watch: its AIP says "on device
    /// cardholder verification supported" (EMV Contactless Book C-2).
    MastercardCdcvm,
    /// A Visa-like card that leaves the field after `after_apdus` answers.
    PulledAway {
        /// How many commands it answers before it is gone.
        after_apdus: usize,
    },
}

/// The card left the field: the transport gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("card removed from the field")]
pub struct CardRemoved;

/// Why an ARQC could not be checked, or did not match.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ArqcError {
    /// Field 55 is not valid BER-TLV.
    #[error("field 55 is not valid TLV")]
    Malformed,
    /// A tag the cryptogram covers is missing from field 55.
    #[error("field 55 lacks tag {tag:X}")]
    MissingTag {
        /// The tag.
        tag: u32,
    },
    /// A tag has the wrong length.
    #[error("tag {tag:X} has length {got}, expected {expected}")]
    BadLength {
        /// The tag.
        tag: u32,
        /// Expected length.
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// Key derivation or MAC failed (bad PSN, ...).
    #[error("key derivation failed: {0}")]
    Crypto(#[from] smartpos_crypto::CryptoError),
    /// The cryptogram does not match the data: wrong key, wrong card, or tampered data.
    #[error("ARQC does not match")]
    Mismatch,
}

/// The Table 26 data set, in order, with lengths.
pub(crate) const CSK_TAGS: &[(u32, usize)] = &[
    (0x9F02, 6),
    (0x9F03, 6),
    (0x9F1A, 2),
    (0x95, 5),
    (0x5F2A, 2),
    (0x9A, 3),
    (0x9C, 1),
    (0x9F37, 4),
    (0x82, 2),
    (0x9F36, 2),
];

pub(crate) fn session_key(
    imk: &[u8; 16],
    pan: &Pan,
    psn: u8,
    atc: [u8; 2],
) -> Result<TdesKey, ArqcError> {
    let imk = TdesKey::from_double(imk);
    let mk = emv::icc_master_key_option_b(&imk, pan, psn)?;
    Ok(emv::common_session_key(&mk, atc)?)
}

/// The value of `tag` in parsed field 55, which must be exactly `len` bytes long.
pub(crate) fn fixed_tag(tlvs: &[Tlv], tag: u32, len: usize) -> Result<&[u8], ArqcError> {
    let v = tlv::find_bytes(tlvs, Tag(tag)).ok_or(ArqcError::MissingTag { tag })?;
    if v.len() == len {
        Ok(v)
    } else {
        Err(ArqcError::BadLength {
            tag,
            expected: len,
            got: v.len(),
        })
    }
}

/// Host side: checks the ARQC (9F26) in `icc_data` (field 55) against the data it covers,
/// with the card's keys derived from `imk`, and returns it (for the ARPC). The comparison is
/// constant-time.
pub fn verify_arqc(
    imk: &[u8; 16],
    pan: &Pan,
    psn: u8,
    icc_data: &[u8],
) -> Result<[u8; 8], ArqcError> {
    let tlvs = tlv::parse(icc_data).map_err(|_| ArqcError::Malformed)?;
    let get = |tag: u32, len: usize| fixed_tag(&tlvs, tag, len);
    let mut data = Vec::with_capacity(37);
    for &(tag, len) in CSK_TAGS {
        data.extend_from_slice(get(tag, len)?);
    }
    let arqc: [u8; 8] = get(0x9F26, 8)?
        .try_into()
        .map_err(|_| ArqcError::Malformed)?;
    let atc: [u8; 2] = get(0x9F36, 2)?
        .try_into()
        .map_err(|_| ArqcError::Malformed)?;
    let sk = session_key(imk, pan, psn, atc)?;
    if emv::verify_ac(&sk, &data, AcPadding::Emv, &arqc)? {
        Ok(arqc)
    } else {
        Err(ArqcError::Mismatch)
    }
}

/// Host side: the ARPC, method 1 (Book 2 A1.2.1): TDES(session key)[ARQC XOR (ARC || 0..)],
/// with the same session key as the ARQC. Field 55 of the response carries
/// `91 0A ARPC || ARC`.
pub fn arpc(
    imk: &[u8; 16],
    pan: &Pan,
    psn: u8,
    atc: [u8; 2],
    arqc: [u8; 8],
    arc: [u8; 2],
) -> Result<[u8; 8], ArqcError> {
    let sk = session_key(imk, pan, psn, atc)?;
    Ok(emv::arpc_method1(&sk, &arqc, &arc)?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Visa,
    Mastercard,
    UnionPay,
}

/// Where the card is in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Selected,
    /// GPO done: records (and GENERATE AC for M/Chip) are allowed.
    Processing,
}

/// A simulated contactless card. `Debug` masks the PAN and hides the key.
pub struct SimCard {
    profile: CardProfile,
    scheme: Scheme,
    pan: Pan,
    psn: u8,
    /// YYMMDD, BCD.
    pub(crate) expiry: [u8; 3],
    atc: u16,
    pub(crate) icc_mk: TdesKey,
    answered: usize,
    phase: Phase,
}

impl fmt::Debug for SimCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCard")
            .field("profile", &self.profile)
            .field("pan", &self.pan)
            .field("psn", &self.psn)
            .field("atc", &self.atc)
            .finish_non_exhaustive()
    }
}

const SW_OK: [u8; 2] = [0x90, 0x00];

fn t(tag: u32, v: &[u8]) -> Tlv {
    Tlv::primitive(Tag(tag), v.to_vec())
}

fn c(tag: u32, children: Vec<Tlv>) -> Tlv {
    Tlv::constructed(Tag(tag), children)
}

fn ok(body: &Tlv) -> Vec<u8> {
    let mut out = body.encode();
    out.extend_from_slice(&SW_OK);
    out
}

fn sw(v: u16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// PDOL of the qVSDC / qPBOC cards: TTQ then the Table 26 terminal data (the usual Visa
/// PDOL, as in `pure/emv/testdata/visa_pdol.hex`).
const QUICK_PDOL: &[u8] = &[
    0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A,
    0x02, 0x9A, 0x03, 0x9C, 0x01, 0x9F, 0x37, 0x04,
];
const QUICK_PDOL_DATA_LEN: usize = 33;
/// CDOL1 of the M/Chip card: the Table 26 terminal data, terminal type, CVM results.
const MCHIP_CDOL1: &[u8] = &[
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04, 0x9F, 0x35, 0x01, 0x9F, 0x34, 0x03,
];
const MCHIP_CDOL1_DATA_LEN: usize = 33;
/// Bytes of terminal data the cryptogram covers (9F02 .. 9F37), at the start of the CDOL1
/// data and right after the TTQ in the PDOL data.
const CSK_TERMINAL_LEN: usize = 29;

impl SimCard {
    /// A card of `profile` whose keys derive from [`TEST_IMK_AC`].
    pub fn new(profile: CardProfile) -> Result<SimCard, ArqcError> {
        SimCard::with_imk(profile, &TEST_IMK_AC)
    }

    /// A card of `profile` whose keys derive from `imk`.
    pub fn with_imk(profile: CardProfile, imk: &[u8; 16]) -> Result<SimCard, ArqcError> {
        let scheme = match profile {
            CardProfile::Mastercard | CardProfile::MastercardCdcvm => Scheme::Mastercard,
            CardProfile::UnionPay => Scheme::UnionPay,
            _ => Scheme::Visa,
        };
        // Luhn-valid test numbers (Visa: the workspace's test PAN; Mastercard: the
        // `smartpos-emv` test vector; UnionPay: a 19-digit 62 number built for these tests).
        let (pan, psn) = match scheme {
            Scheme::Visa => ("4761739001010010", 1),
            Scheme::Mastercard => ("5413330089010434", 0),
            Scheme::UnionPay => ("6228480402564890018", 1),
        };
        let pan = Pan::new(pan).map_err(|_| ArqcError::Malformed)?;
        let expiry = match profile {
            CardProfile::Expired => [0x20, 0x01, 0x31],
            _ => [0x30, 0x12, 0x31],
        };
        let icc_mk = emv::icc_master_key_option_b(&TdesKey::from_double(imk), &pan, psn)?;
        Ok(SimCard {
            profile,
            scheme,
            pan,
            psn,
            expiry,
            atc: 0x0010,
            icc_mk,
            answered: 0,
            phase: Phase::Idle,
        })
    }

    /// The card's PAN.
    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// The PAN sequence number.
    pub fn psn(&self) -> u8 {
        self.psn
    }

    /// The current ATC (the value of the last cryptogram).
    pub fn atc(&self) -> u16 {
        self.atc
    }

    /// The profile.
    pub fn profile(&self) -> CardProfile {
        self.profile
    }

    /// The AID of the card's only application.
    pub fn aid(&self) -> &'static [u8] {
        match self.scheme {
            Scheme::Visa => &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
            Scheme::Mastercard => &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
            Scheme::UnionPay => &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01],
        }
    }

    pub(crate) fn label(&self) -> &'static [u8] {
        match self.scheme {
            Scheme::Visa => b"VISA CREDIT",
            Scheme::Mastercard => b"MASTERCARD",
            Scheme::UnionPay => b"UNIONPAY DEBIT",
        }
    }

    /// Sends one C-APDU and returns the R-APDU (data and SW1 SW2). Never panics: malformed
    /// commands get ISO/IEC 7816-4 error status words.
    pub fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardRemoved> {
        if let CardProfile::PulledAway { after_apdus } = self.profile
            && self.answered >= after_apdus
        {
            return Err(CardRemoved);
        }
        self.answered = self.answered.saturating_add(1);
        Ok(self.answer(capdu))
    }

    fn answer(&mut self, capdu: &[u8]) -> Vec<u8> {
        let Some(&[cla, ins, p1, p2]) = capdu.get(..4) else {
            return sw(0x6700);
        };
        // Case 2 (header + Le) has no data; case 3/4 carry Lc and data, Le optional.
        let data: &[u8] = match capdu.get(4..) {
            None | Some([]) | Some([_]) => &[],
            Some([lc, rest @ ..]) => {
                let lc = usize::from(*lc);
                match rest.get(..lc) {
                    Some(d) if rest.len() == lc || rest.len() == lc + 1 => d,
                    _ => return sw(0x6700),
                }
            }
        };
        match (cla, ins) {
            (0x00, 0xA4) if p1 == 0x04 && p2 == 0x00 => self.select(data),
            (0x80, 0xA8) if p1 == 0x00 && p2 == 0x00 => self.gpo(data),
            (0x00, 0xB2) => self.read_record(p1, p2),
            (0x80, 0xAE) if p2 == 0x00 => self.generate_ac(p1, data),
            (0x00 | 0x80, 0xA4 | 0xA8 | 0xAE) => sw(0x6A86),
            (0x00 | 0x80, _) => sw(0x6D00),
            _ => sw(0x6E00),
        }
    }

    fn select(&mut self, name: &[u8]) -> Vec<u8> {
        self.phase = Phase::Idle;
        if name == smartpos_emv::kernel::PPSE_NAME {
            let entry = c(
                0x61,
                vec![t(0x4F, self.aid()), t(0x50, self.label()), t(0x87, &[0x01])],
            );
            return ok(&c(
                0x6F,
                vec![t(0x84, name), c(0xA5, vec![c(0xBF0C, vec![entry])])],
            ));
        }
        // Partial selection (Book 1 §12.3.1): a name that begins the AID selects it.
        if name.len() >= 5 && self.aid().starts_with(name) {
            self.phase = Phase::Selected;
            let mut a5 = vec![t(0x50, self.label()), t(0x87, &[0x01])];
            if self.scheme != Scheme::Mastercard {
                a5.push(t(0x9F38, QUICK_PDOL));
            }
            a5.push(t(0x5F2D, b"enzh"));
            return ok(&c(0x6F, vec![t(0x84, self.aid()), c(0xA5, a5)]));
        }
        sw(0x6A82)
    }

    pub(crate) fn aip(&self) -> [u8; 2] {
        match (self.scheme, self.profile) {
            // Byte 1 bit 2 (02): on device cardholder verification supported (Book C-2).
            (Scheme::Mastercard, CardProfile::MastercardCdcvm) => [0x1B, 0x80],
            (Scheme::Mastercard, _) => [0x19, 0x80],
            _ => [0x20, 0x00],
        }
    }

    pub(crate) fn next_atc(&mut self) -> Option<[u8; 2]> {
        self.atc = self.atc.checked_add(1)?;
        Some(self.atc.to_be_bytes())
    }

    /// The ARQC over the terminal data (9F02..9F37, 29 bytes), the AIP and the ATC.
    pub(crate) fn cryptogram(&self, terminal: &[u8], atc: [u8; 2]) -> Option<[u8; 8]> {
        let mut data = terminal.to_vec();
        data.extend_from_slice(&self.aip());
        data.extend_from_slice(&atc);
        let sk = emv::common_session_key(&self.icc_mk, atc).ok()?;
        emv::generate_ac(&sk, &data, AcPadding::Emv).ok()
    }

    fn track2(&self) -> Vec<u8> {
        let mut digits = String::from(self.pan.expose());
        digits.push('D');
        digits.push_str(&smartpos_types::hex::encode(&self.expiry[..2]));
        digits.push_str("2011234567890");
        if digits.len() % 2 == 1 {
            digits.push('F');
        }
        smartpos_types::hex::decode(&digits).unwrap_or_default()
    }

    fn pan_cn(&self) -> Vec<u8> {
        let mut digits = String::from(self.pan.expose());
        if digits.len() % 2 == 1 {
            digits.push('F');
        }
        smartpos_types::hex::decode(&digits).unwrap_or_default()
    }

    fn gpo(&mut self, data: &[u8]) -> Vec<u8> {
        if self.phase != Phase::Selected {
            return sw(0x6985);
        }
        let Ok((cmd, used)) = tlv::parse_one(data) else {
            return sw(0x6700);
        };
        let pdol_data = match (cmd.tag, cmd.bytes()) {
            (Tag(0x83), Some(d)) if used == data.len() => d,
            _ => return sw(0x6700),
        };
        let aip = self.aip();
        if self.scheme == Scheme::Mastercard {
            if !pdol_data.is_empty() {
                return sw(0x6700);
            }
            self.phase = Phase::Processing;
            // Format 1: AIP || AFL (SFI 1 record 1, SFI 2 record 1).
            let mut v = aip.to_vec();
            v.extend_from_slice(&[0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x01, 0x00]);
            return ok(&t(0x80, &v));
        }
        if pdol_data.len() != QUICK_PDOL_DATA_LEN {
            return sw(0x6700);
        }
        let Some(terminal) = pdol_data.get(4..4 + CSK_TERMINAL_LEN) else {
            return sw(0x6700);
        };
        let Some(atc) = self.next_atc() else {
            return sw(0x6985);
        };
        let Some(ac) = self.cryptogram(terminal, atc) else {
            return sw(0x6F00);
        };
        self.phase = Phase::Processing;
        let ctq: [u8; 2] = match self.profile {
            CardProfile::PinRequired => [0x80, 0x00],
            _ => [0x00, 0x00],
        };
        // The CVR (IAD byte 5) bits 6-5 repeat the cryptogram type: 10 ARQC, 00 AAC (bits
        // 8-7 10: no second GENERATE AC).
        let declines = self.profile == CardProfile::DeclinesOffline;
        let (cid, cvr) = if declines { (0x00, 0x80) } else { (0x80, 0xA0) };
        let iad: &[u8] = match self.scheme {
            Scheme::UnionPay => &[0x07, 0x01, 0x01, 0x03, cvr, 0x00, 0x00, 0x01, 0x0A, 0x01],
            _ => &[0x06, 0x01, 0x0A, 0x03, cvr, 0x00, 0x00],
        };
        ok(&c(
            0x77,
            vec![
                t(0x82, &aip),
                t(0x94, &[0x10, 0x01, 0x01, 0x00]),
                t(0x57, &self.track2()),
                t(0x5F34, &[self.psn]),
                t(0x9F10, iad),
                t(0x9F26, &ac),
                t(0x9F27, &[cid]),
                t(0x9F36, &atc),
                t(0x9F6C, &ctq),
                t(0x9F6E, &[0x20, 0x70, 0x00, 0x00]),
            ],
        ))
    }

    fn read_record(&self, record: u8, p2: u8) -> Vec<u8> {
        if p2 & 0x07 != 0x04 {
            return sw(0x6A86);
        }
        if self.phase != Phase::Processing {
            return sw(0x6985);
        }
        let sfi = p2 >> 3;
        let body = match (self.scheme, sfi, record) {
            (Scheme::Mastercard, 1, 1) => c(
                0x70,
                vec![t(0x57, &self.track2()), t(0x5F20, b"SIM/MASTERCARD")],
            ),
            (Scheme::Mastercard, 2, 1) => c(
                0x70,
                vec![
                    t(0x5A, &self.pan_cn()),
                    t(0x5F24, &self.expiry),
                    t(0x5F25, &[0x20, 0x01, 0x01]),
                    t(0x5F34, &[self.psn]),
                    t(0x8C, MCHIP_CDOL1),
                    t(
                        0x8D,
                        &[0x91, 0x0A, 0x8A, 0x02, 0x95, 0x05, 0x9F, 0x37, 0x04],
                    ),
                    // CVM list (Book 3 Annex C3): X = Y = 0; online PIN if supported (42 03),
                    // signature (1E 03), no CVM (1F 03).
                    t(
                        0x8E,
                        &[0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x03],
                    ),
                ],
            ),
            (Scheme::Visa | Scheme::UnionPay, 2, 1) => c(
                0x70,
                vec![
                    t(0x5A, &self.pan_cn()),
                    t(0x5F24, &self.expiry),
                    t(0x5F28, &[0x01, 0x56]),
                ],
            ),
            _ => return sw(0x6A83),
        };
        ok(&body)
    }

    fn generate_ac(&mut self, p1: u8, data: &[u8]) -> Vec<u8> {
        if self.scheme != Scheme::Mastercard {
            return sw(0x6D00);
        }
        if self.phase != Phase::Processing {
            return sw(0x6985);
        }
        if data.len() != MCHIP_CDOL1_DATA_LEN {
            return sw(0x6700);
        }
        let Some(terminal) = data.get(..CSK_TERMINAL_LEN) else {
            return sw(0x6700);
        };
        let Some(atc) = self.next_atc() else {
            return sw(0x6985);
        };
        let Some(ac) = self.cryptogram(terminal, atc) else {
            return sw(0x6F00);
        };
        // One GENERATE AC per transaction. The card declines (AAC) when asked for an AAC and
        // otherwise goes online (ARQC), as online-only cards do when asked for a TC.
        self.phase = Phase::Idle;
        let cid = if p1 & 0xC0 == 0x00 { 0x00 } else { 0x80 };
        ok(&c(
            0x77,
            vec![
                t(0x9F27, &[cid]),
                t(0x9F36, &atc),
                t(0x9F26, &ac),
                t(
                    0x9F10,
                    &[
                        0x01, 0x10, 0xA0, 0x00, 0x03, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0xFF,
                    ],
                ),
            ],
        ))
    }
}

impl smartpos_emv::kernel::ApduTransport for SimCard {
    fn transceive(
        &mut self,
        capdu: &[u8],
    ) -> Result<Vec<u8>, smartpos_emv::kernel::TransportError> {
        SimCard::transceive(self, capdu)
            .map_err(|CardRemoved| smartpos_emv::kernel::TransportError::CardRemoved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::{decode, encode};

    #[test]
    fn ppse_lists_the_application() {
        let mut card = SimCard::new(CardProfile::Visa).unwrap();
        let r = card
            .transceive(&decode("00A404000E325041592E5359532E444446303100").unwrap())
            .unwrap();
        assert!(encode(&r).ends_with("9000"));
        assert!(encode(&r).contains("4F07A0000000031010"));
    }

    #[test]
    fn unknown_aid_and_commands_get_status_words() {
        let mut card = SimCard::new(CardProfile::Mastercard).unwrap();
        assert_eq!(
            card.transceive(&decode("00A4040007A000000003101000").unwrap())
                .unwrap(),
            vec![0x6A, 0x82]
        );
        assert_eq!(card.transceive(&[0x00]).unwrap(), vec![0x67, 0x00]);
        assert_eq!(
            card.transceive(&[0x00, 0xCA, 0x9F, 0x36, 0x00]).unwrap(),
            vec![0x6D, 0x00]
        );
        assert_eq!(
            card.transceive(&[0x84, 0xCA, 0x9F, 0x36]).unwrap(),
            vec![0x6E, 0x00]
        );
        // GPO before SELECT.
        assert_eq!(
            card.transceive(&decode("80A8000002830000").unwrap())
                .unwrap(),
            vec![0x69, 0x85]
        );
        // Lc longer than the data.
        assert_eq!(
            card.transceive(&[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0])
                .unwrap(),
            vec![0x67, 0x00]
        );
    }

    #[test]
    fn pulled_away_card_stops_answering() {
        let mut card = SimCard::new(CardProfile::PulledAway { after_apdus: 2 }).unwrap();
        assert!(card.transceive(&[0x00, 0xB2, 0x01, 0x14, 0x00]).is_ok());
        assert!(card.transceive(&[0x00, 0xB2, 0x01, 0x14, 0x00]).is_ok());
        assert_eq!(
            card.transceive(&[0x00, 0xB2, 0x01, 0x14, 0x00]),
            Err(CardRemoved)
        );
        assert_eq!(card.transceive(&[0x00]), Err(CardRemoved));
    }

    #[test]
    fn arpc_is_method_1_under_the_arqc_session_key() {
        let pan = Pan::new("4761739001010010").unwrap();
        let a = arpc(&TEST_IMK_AC, &pan, 1, [0, 0x11], [1; 8], *b"00").unwrap();
        let b = arpc(&TEST_IMK_AC, &pan, 1, [0, 0x12], [1; 8], *b"00").unwrap();
        let c = arpc(&TEST_IMK_AC, &pan, 1, [0, 0x11], [1; 8], *b"05").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        // Same computation by hand.
        let mk =
            emv::icc_master_key_option_a(&TdesKey::from_double(&TEST_IMK_AC), &pan, 1).unwrap();
        let sk = emv::common_session_key(&mk, [0, 0x11]).unwrap();
        assert_eq!(a, emv::arpc_method1(&sk, &[1; 8], b"00").unwrap());
        assert!(matches!(
            arpc(&TEST_IMK_AC, &pan, 100, [0, 1], [0; 8], *b"00"),
            Err(ArqcError::Crypto(_))
        ));
    }

    #[test]
    fn debug_masks_the_pan() {
        let card = SimCard::new(CardProfile::UnionPay).unwrap();
        let d = format!("{card:?}");
        assert!(d.contains("622848*********0018"), "{d}");
        assert!(!d.contains("6228480402564890018"));
    }
}
