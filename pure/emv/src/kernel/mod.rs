//! The contactless kernel flow, sans-IO: it emits C-APDUs and consumes R-APDUs; the app's
//! transport (NFC IsoDep, an mPOS reader link) only moves bytes.
//!
//! Files: `config.rs` (terminal configuration and transaction data), `apdu.rs` (commands,
//! status words, AFL), `cvm.rs` (cardholder verification decisions), `outcome.rs` (the
//! outcome, field 55, receipt fields, issuer response), `error.rs` (typed errors).
//!
//! # Call order
//! ```text
//! let mut k = Kernel::new(config, txn);          // when the card enters the field
//! while let Some(capdu) = k.poll_command() {      // at most one command outstanding
//!     match transport.transceive(&capdu) {
//!         Ok(rapdu) => k.handle_response(now_ms(), &rapdu),
//!         Err(e) => k.handle_transport_error(now_ms(), e),
//!     }
//! }
//! let outcome = k.poll_outcome();                 // Some(..) exactly once
//! ```
//!
//! # Flow (EMV Contactless Books A/B for pre-processing and selection, C-2 and C-3 for the
//! kernels; "per my reading" marks decisions made from memory of those books)
//! 1. Pre-processing (Book B §3.1), with the limits of each application
//!    ([`KernelConfig::limits_for`]): Book B runs it per AID and kernel combination, so the
//!    checks that need the application run once it is known.
//!    - Before any command: an amount ≥ the default transaction limit and ≥ every per-AID
//!      transaction limit ([`KernelConfig::aid_params`]) → [`KernelError::OverLimit`]: no
//!      application could take it.
//!    - After PPSE: a directory entry whose own transaction limit the amount reaches is left
//!      out of the candidate list (Book B v2.5 §3.1.1.5 sets "Contactless Application Not
//!      Allowed" for that combination, which combination selection then skips; as LibPAY's
//!      entry point implements it, github.com/emerald79/libpay `src/libemv/emv_ep.c`); none
//!      left for that reason → [`KernelError::OverLimit`] (§3.1.1.13's outcome is "Try
//!      Another Interface", which is what `OverLimit` asks the caller to do).
//!    - At the final SELECT, with the DF name (84) the card answered: the transaction limit
//!      again (next candidate, or [`KernelError::OverLimit`]), so an amount over the
//!      selected application's limit never reaches GPO; amount ≥ its CVM-required limit →
//!      TTQ byte 2 bit 7 "CVM required"; its floor limit → TVR byte 4 bit 8. TTQ byte 2
//!      bit 8 "online cryptogram required" is always set (this terminal is online-only).
//! 2. SELECT PPSE, candidate list from the directory entries (`61` in `BF0C`), filtered by
//!    the supported AIDs and ordered by Application Priority Indicator (`87`, Book B
//!    §3.3.2); final SELECT of the first; a candidate that refuses selection is dropped and
//!    the next one tried (Book B §3.3.3).
//! 3. GPO with the PDOL data (Book 3 §5.4 rules via [`crate::dol`]); `6985` → next candidate
//!    ("select next"), `6986` → try another interface.
//! 4. A format-2 GPO response holding a cryptogram (`9F26`) is the Visa qVSDC / UnionPay
//!    qPBOC path ([`KernelPath::Quick`]): read the AFL records, done. Anything else is the
//!    Mastercard M/Chip path ([`KernelPath::MChip`]): read the AFL records, set the TVR
//!    processing-restriction bits, decide the CVM, GENERATE AC (ARQC, no CDA) with CDOL1.
//! 5. Build the outcome: PAN/track 2/expiry, CVM, TVR/TSI, field 55, receipt fields. A card
//!    that answers with an AAC (at GPO or GENERATE AC) gives an outcome whose
//!    [`CardOutcome::declined_offline`] is true: a decline is an outcome, not an error.
//!
//! The kernel checks no cryptogram: the issuer verifies the ARQC, and on a contact card the
//! card would verify the ARPC. Offline data authentication (fDDA, CDA) is not performed.

mod apdu;
mod config;
mod cvm;
mod error;
mod outcome;

pub use apdu::{MAX_RECORDS, PPSE_NAME};
pub use config::{
    AID_MASTERCARD, AID_UNIONPAY_CREDIT, AID_UNIONPAY_DEBIT, AID_VISA, AidParams,
    ContactlessLimits, KernelConfig, KernelTxn, MAX_AMOUNT,
};
pub use error::{ApduTransport, KernelError, MalformedReason, Step, TransportError};
pub use outcome::{
    CardOutcome, CryptogramType, Cvm, FIELD55_TAGS, IccData, IssuerData, KernelPath, ReceiptFields,
    issuer_response,
};

use crate::dol::{build_dol_data, parse_dol};
use crate::tlv::{self, Tag, Tlv, TlvValue};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// A directory entry the terminal supports.
#[derive(Clone)]
struct Candidate {
    aid: Vec<u8>,
    label: Vec<u8>,
    /// 1 (highest) to 15; entries without priority sort as 16.
    rank: u8,
}

/// What the kernel waits for (rustls-style: each state names its expectation).
enum State {
    ExpectPpse,
    ExpectFinalSelect {
        current: Candidate,
        rest: VecDeque<Candidate>,
    },
    ExpectGpo {
        rest: VecDeque<Candidate>,
    },
    ExpectRecord {
        path: KernelPath,
        queue: VecDeque<(u8, u8)>,
    },
    ExpectGenerateAc,
    Done,
}

impl State {
    fn step(&self) -> Step {
        match self {
            State::ExpectPpse => Step::SelectPpse,
            State::ExpectFinalSelect { .. } => Step::SelectAid,
            State::ExpectGpo { .. } => Step::Gpo,
            State::ExpectRecord { .. } => Step::ReadRecord,
            State::ExpectGenerateAc => Step::GenerateAc,
            State::Done => Step::Completion,
        }
    }
}

/// TVR byte 2 bit 7: expired application (Book 3 Annex C5).
const TVR_EXPIRED: u8 = 0x40;
/// TVR byte 2 bit 6: application not yet effective.
const TVR_NOT_EFFECTIVE: u8 = 0x20;
/// TVR byte 4 bit 8: transaction exceeds floor limit.
const TVR_OVER_FLOOR: u8 = 0x80;
/// TTQ byte 2 bit 8: online cryptogram required (Book C-3 Annex A).
const TTQ_ONLINE_CRYPTOGRAM: u8 = 0x80;
/// TTQ byte 2 bit 7: CVM required.
const TTQ_CVM_REQUIRED: u8 = 0x40;
/// CTQ byte 1 bit 3: switch interface for cash (Book C-3 Annex A, per my reading).
const CTQ_TAI_CASH: u8 = 0x04;
/// CTQ byte 1 bit 2: switch interface for cashback.
const CTQ_TAI_CASHBACK: u8 = 0x02;

/// The contactless kernel for one card read. See the module documentation for the call order.
///
/// `Debug` shows the step only: the kernel holds card data.
pub struct Kernel {
    config: KernelConfig,
    state: State,
    /// The next command, not yet handed out.
    pending: Option<Vec<u8>>,
    /// A command was handed out and its answer has not arrived.
    awaiting: bool,
    outcome: Option<Result<CardOutcome, KernelError>>,
    /// Terminal data for DOLs and field 55 (9F66, 9F02, 95, ...).
    term: BTreeMap<Tag, Vec<u8>>,
    /// Card data read so far (first occurrence wins, except the GENERATE AC response).
    card: BTreeMap<Tag, Vec<u8>>,
    aid: Vec<u8>,
    label: String,
    /// Amount, authorised (9F02), for the per-application limit checks.
    amount: u64,
    ttq: [u8; 4],
    cvm_required: bool,
    cvm: Option<Cvm>,
    txn_type: u8,
    date: [u8; 3],
    start_ms: u64,
    last_ms: u64,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("step", &self.state.step())
            .field("awaiting", &self.awaiting)
            .field("finished", &matches!(self.state, State::Done))
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Starts a card read: pre-processing, then SELECT PPSE is ready in
    /// [`Kernel::poll_command`]. Invalid transaction data, or an amount over the transaction
    /// limit of every application (the default limit and each per-AID one), make
    /// [`Kernel::poll_outcome`] return the error at once, with no command sent. An amount over
    /// the limit of some applications only is refused once the card's are known, before GPO.
    pub fn new(config: KernelConfig, txn: KernelTxn) -> Kernel {
        let mut k = Kernel {
            state: State::ExpectPpse,
            pending: None,
            awaiting: false,
            outcome: None,
            term: BTreeMap::new(),
            card: BTreeMap::new(),
            aid: Vec::new(),
            label: String::new(),
            amount: txn.amount,
            ttq: config.ttq,
            cvm_required: false,
            cvm: None,
            txn_type: txn.txn_type,
            date: [0; 3],
            start_ms: txn.now_ms,
            last_ms: txn.now_ms,
            config,
        };
        match k.pre_process(&txn) {
            Ok(()) => k.pending = Some(apdu::select(PPSE_NAME)),
            Err(e) => k.finish(Err(e)),
        }
        k
    }

    /// Book B §3.1 pre-processing and the terminal data.
    fn pre_process(&mut self, txn: &KernelTxn) -> Result<(), KernelError> {
        let invalid = |field| KernelError::InvalidTransaction { field };
        let amount = config::bcd(txn.amount, 6).ok_or(invalid("amount"))?;
        let other = config::bcd(txn.other_amount, 6).ok_or(invalid("other_amount"))?;
        // n3 codes: three digits in two bytes, so 1000 would fit the bytes but is no code.
        let n3 = |v: u16, field| {
            (v <= 999)
                .then(|| config::bcd(u64::from(v), 2))
                .flatten()
                .ok_or(invalid(field))
        };
        let currency = n3(txn.currency, "currency")?;
        let country = n3(txn.country, "country")?;
        self.date = config::date_bcd(&txn.date).ok_or(invalid("date"))?;
        // Over the default limit and over every per-AID limit: no application can take it.
        if let Some(limit) = over_limit(&self.config.limits, txn.amount)
            && self
                .config
                .aid_params
                .iter()
                .all(|p| over_limit(&p.limits, txn.amount).is_some())
        {
            return Err(KernelError::OverLimit {
                amount: txn.amount,
                limit,
            });
        }
        let t = &mut self.term;
        t.insert(Tag(0x9F02), amount);
        t.insert(Tag(0x9F03), other);
        t.insert(Tag(0x9F1A), country);
        t.insert(Tag(0x5F2A), currency);
        t.insert(Tag(0x9A), self.date.to_vec());
        t.insert(Tag(0x9C), vec![txn.txn_type]);
        t.insert(Tag(0x9F37), txn.unpredictable_number.to_vec());
        t.insert(Tag(0x9F33), self.config.terminal_capabilities.to_vec());
        t.insert(Tag(0x9F35), vec![self.config.terminal_type]);
        Ok(())
    }

    /// The per-application part of pre-processing (Book B §3.1.1), once the application is
    /// selected: its transaction limit, then the TTQ (9F66) and TVR (95) from its CVM-required
    /// and floor limits. Starts from the configured TTQ each time, as a candidate may follow
    /// another one (GPO `6985`).
    fn apply_limits(&mut self, aid: &[u8]) -> Result<(), KernelError> {
        let limits = self.config.limits_for(aid);
        if let Some(limit) = over_limit(&limits, self.amount) {
            return Err(KernelError::OverLimit {
                amount: self.amount,
                limit,
            });
        }
        self.cvm_required = self.amount >= limits.cvm_required_limit;
        self.ttq = self.config.ttq;
        self.ttq[1] |= TTQ_ONLINE_CRYPTOGRAM;
        if self.cvm_required {
            self.ttq[1] |= TTQ_CVM_REQUIRED;
        }
        let mut tvr = [0u8; 5];
        if self.amount > limits.floor_limit {
            tvr[3] |= TVR_OVER_FLOOR;
        }
        self.term.insert(Tag(0x9F66), self.ttq.to_vec());
        self.term.insert(Tag(0x95), tvr.to_vec());
        Ok(())
    }

    /// The next C-APDU to send, if any. At most one command is outstanding: after this returns
    /// `Some`, it returns `None` until the answer (or a transport error) is handled.
    pub fn poll_command(&mut self) -> Option<Vec<u8>> {
        let c = self.pending.take()?;
        self.awaiting = true;
        Some(c)
    }

    /// Feeds the card's answer (data and SW1 SW2) to the outstanding command, at `now_ms`.
    /// Any bytes are accepted: malformed answers end the read with a typed error. Calls after
    /// the read has finished are ignored.
    pub fn handle_response(&mut self, now_ms: u64, rapdu: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.last_ms = self.last_ms.max(now_ms);
        if !self.awaiting {
            self.finish(Err(KernelError::UnexpectedResponse));
            return;
        }
        self.awaiting = false;
        let state = std::mem::replace(&mut self.state, State::Done);
        if let Err(e) = self.on_response(state, rapdu) {
            self.finish(Err(e));
        }
    }

    /// Reports that the transport failed for the outstanding command: the read ends with
    /// [`KernelError::CardRemoved`] or [`KernelError::Communication`].
    pub fn handle_transport_error(&mut self, now_ms: u64, error: TransportError) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.last_ms = self.last_ms.max(now_ms);
        let step = self.state.step();
        let e = match error {
            TransportError::CardRemoved => KernelError::CardRemoved { step },
            kind => KernelError::Communication { step, kind },
        };
        self.finish(Err(e));
    }

    /// The result of the read, once: `Some` after the last response (or the first error), then
    /// `None`.
    pub fn poll_outcome(&mut self) -> Option<Result<CardOutcome, KernelError>> {
        self.outcome.take()
    }

    /// Whether the read has ended (the outcome may already have been taken).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The command whose answer the kernel waits for ([`Step::Completion`] once finished).
    pub fn step(&self) -> Step {
        self.state.step()
    }

    fn finish(&mut self, result: Result<CardOutcome, KernelError>) {
        self.state = State::Done;
        self.pending = None;
        self.awaiting = false;
        self.outcome = Some(result);
    }

    fn on_response(&mut self, state: State, rapdu: &[u8]) -> Result<(), KernelError> {
        let step = state.step();
        let (data, sw) = apdu::split(rapdu, step)?;
        match state {
            State::ExpectPpse => {
                if sw != 0x9000 {
                    return Err(apdu::sw_error(step, sw));
                }
                let fci = parse_template(data, Tag(0x6F), step)?;
                let (candidates, over) = self.candidates(&fci);
                let none_left = match over {
                    Some(limit) => KernelError::OverLimit {
                        amount: self.amount,
                        limit,
                    },
                    None => KernelError::NotSupported { step, sw },
                };
                self.select_next(candidates, none_left)
            }
            State::ExpectFinalSelect { current, rest } => {
                if sw != 0x9000 {
                    return self.select_next(rest, apdu::sw_error(step, sw));
                }
                self.on_final_select(data, current, rest)
            }
            State::ExpectGpo { rest } => match sw {
                0x9000 => self.on_gpo(data),
                0x6985 if !rest.is_empty() => self.select_next(rest, apdu::sw_error(step, sw)),
                _ => Err(apdu::sw_error(step, sw)),
            },
            State::ExpectRecord { path, queue } => {
                if sw != 0x9000 {
                    return Err(apdu::sw_error(step, sw));
                }
                // Book 3 §6.5.11.4: a record of an SFI 1-10 file is template 70.
                let rec = parse_template(data, Tag(0x70), step)?;
                store(&mut self.card, &rec, false);
                self.next_record(path, queue)
            }
            State::ExpectGenerateAc => {
                if sw != 0x9000 {
                    return Err(apdu::sw_error(step, sw));
                }
                self.on_generate_ac(data)?;
                self.complete(KernelPath::MChip)
            }
            State::Done => Err(KernelError::UnexpectedResponse),
        }
    }

    /// The directory entries of a PPSE FCI that the terminal supports and whose transaction
    /// limit the amount is under, by priority; and the limit of a supported entry left out
    /// for its limit, if any.
    fn candidates(&self, fci: &Tlv) -> (VecDeque<Candidate>, Option<u64>) {
        let mut out: Vec<Candidate> = Vec::new();
        let mut over = None;
        let Some(dir) = fci.find(Tag(0xBF0C)) else {
            return (VecDeque::new(), None);
        };
        for entry in dir.children().iter().filter(|t| t.tag == Tag(0x61)) {
            let kids = entry.children();
            // Book B §3.3.2: an entry without a valid ADF name (5 to 16 bytes) is ignored.
            let Some(aid) =
                tlv::find_bytes(kids, Tag(0x4F)).filter(|a| (5..=16).contains(&a.len()))
            else {
                continue;
            };
            let supported = self
                .config
                .supported_aids
                .iter()
                .any(|s| !s.is_empty() && aid.starts_with(s));
            if !supported {
                continue;
            }
            // Book B v2.5 §3.1.1.5: at or over its transaction limit, the combination is
            // "contactless application not allowed", so it is no candidate.
            if let Some(limit) = over_limit(&self.config.limits_for(aid), self.amount) {
                over = Some(limit);
                continue;
            }
            let prio = tlv::find_bytes(kids, Tag(0x87))
                .and_then(|p| p.first())
                .map_or(0, |p| p & 0x0F);
            out.push(Candidate {
                aid: aid.to_vec(),
                label: tlv::find_bytes(kids, Tag(0x50))
                    .unwrap_or_default()
                    .to_vec(),
                rank: if prio == 0 { 16 } else { prio },
            });
        }
        // Stable: equal priorities keep the directory order.
        out.sort_by_key(|c| c.rank);
        (out.into(), over)
    }

    /// Final SELECT of the next candidate, or `none_left` if there is none.
    fn select_next(
        &mut self,
        mut candidates: VecDeque<Candidate>,
        none_left: KernelError,
    ) -> Result<(), KernelError> {
        let Some(current) = candidates.pop_front() else {
            return Err(none_left);
        };
        self.card.clear();
        self.pending = Some(apdu::select(&current.aid));
        self.state = State::ExpectFinalSelect {
            current,
            rest: candidates,
        };
        Ok(())
    }

    fn on_final_select(
        &mut self,
        data: &[u8],
        current: Candidate,
        rest: VecDeque<Candidate>,
    ) -> Result<(), KernelError> {
        let step = Step::SelectAid;
        let fci = parse_template(data, Tag(0x6F), step)?;
        let df_name = fci
            .children()
            .iter()
            .find(|t| t.tag == Tag(0x84))
            .and_then(Tlv::bytes)
            .ok_or(malformed(step, MalformedReason::MissingTag(Tag(0x84))))?;
        if !(5..=16).contains(&df_name.len()) {
            return Err(malformed(step, MalformedReason::BadValue(Tag(0x84))));
        }
        // The DF name may be longer than the directory's ADF name (partial selection): the
        // limits are those of the application the card selected.
        if let Err(e) = self.apply_limits(df_name) {
            return self.select_next(rest, e);
        }
        let a5 = fci.children().iter().find(|t| t.tag == Tag(0xA5));
        let a5_kids = a5.map(Tlv::children).unwrap_or_default();
        let label = tlv::find_bytes(a5_kids, Tag(0x50)).unwrap_or(&current.label);
        self.aid = df_name.to_vec();
        self.label = outcome::printable(label);
        self.card.insert(Tag(0x84), df_name.to_vec());
        let pdol = match tlv::find_bytes(a5_kids, Tag(0x9F38)) {
            Some(p) => parse_dol(p).map_err(|e| malformed(step, MalformedReason::Tlv(e)))?,
            None => Vec::new(),
        };
        let source = (&self.term, &self.config.extra_tags);
        let pdol_data = build_dol_data(&pdol, &source);
        self.pending = Some(apdu::gpo(&pdol_data, step)?);
        self.state = State::ExpectGpo { rest };
        Ok(())
    }

    fn on_gpo(&mut self, data: &[u8]) -> Result<(), KernelError> {
        let step = Step::Gpo;
        let tlvs = tlv::parse(data).map_err(|e| malformed(step, MalformedReason::Tlv(e)))?;
        let [resp] = tlvs.as_slice() else {
            return Err(malformed(step, unexpected(0x77)));
        };
        // Book 3 §6.5.8.4: format 1 (80: AIP || AFL) or format 2 (77: TLV objects).
        match (&resp.tag, &resp.value) {
            (Tag(0x80), TlvValue::Primitive(v)) => {
                if v.len() < 2 || (v.len() - 2) % 4 != 0 {
                    return Err(malformed(step, MalformedReason::BadValue(Tag(0x80))));
                }
                let (aip, afl) = v.split_at(2);
                self.card.insert(Tag(0x82), aip.to_vec());
                self.card.insert(Tag(0x94), afl.to_vec());
            }
            (Tag(0x77), TlvValue::Constructed(_)) => store(&mut self.card, resp, false),
            _ => return Err(malformed(step, unexpected(0x77))),
        }
        if self.card.get(&Tag(0x82)).map(Vec::len) != Some(2) {
            return Err(malformed(step, MalformedReason::MissingTag(Tag(0x82))));
        }
        let path = if self.card.contains_key(&Tag(0x9F26)) {
            KernelPath::Quick
        } else {
            KernelPath::MChip
        };
        if path == KernelPath::Quick
            && let Some(&b1) = self.card.get(&Tag(0x9F6C)).and_then(|c| c.first())
        {
            // Book C-3 CTQ: the card refuses cash / cashback over contactless.
            let tai = (self.txn_type == 0x01 && b1 & CTQ_TAI_CASH != 0)
                || (self.txn_type == 0x09 && b1 & CTQ_TAI_CASHBACK != 0);
            if tai {
                return Err(KernelError::TryAnotherInterface { step });
            }
        }
        let afl = match (self.card.get(&Tag(0x94)), path) {
            (Some(afl), _) => apdu::parse_afl(afl, step)?,
            // C-3: the AFL is optional when GPO returned everything.
            (None, KernelPath::Quick) => Vec::new(),
            (None, KernelPath::MChip) => {
                return Err(malformed(step, MalformedReason::MissingTag(Tag(0x94))));
            }
        };
        self.next_record(path, afl.into())
    }

    fn next_record(
        &mut self,
        path: KernelPath,
        mut queue: VecDeque<(u8, u8)>,
    ) -> Result<(), KernelError> {
        if let Some((sfi, rec)) = queue.pop_front() {
            self.pending = Some(apdu::read_record(sfi, rec));
            self.state = State::ExpectRecord { path, queue };
            return Ok(());
        }
        match path {
            KernelPath::Quick => self.complete(KernelPath::Quick),
            KernelPath::MChip => self.generate_ac(),
        }
    }

    /// M/Chip: processing restrictions into the TVR, CVM, then GENERATE AC with CDOL1.
    fn generate_ac(&mut self) -> Result<(), KernelError> {
        let step = Step::GenerateAc;
        let (expired, not_effective) = self.date_checks(step)?;
        if let Some(tvr) = self.term.get_mut(&Tag(0x95))
            && let Some(b2) = tvr.get_mut(1)
        {
            // Book 3 §10.4.3.
            if expired {
                *b2 |= TVR_EXPIRED;
            }
            if not_effective {
                *b2 |= TVR_NOT_EFFECTIVE;
            }
        }
        let cvm = cvm::mchip(
            self.card.get(&Tag(0x82)).map(Vec::as_slice),
            self.card.get(&Tag(0x8E)).map(Vec::as_slice),
            &self.ttq,
            self.cvm_required,
        );
        self.cvm = Some(cvm);
        self.term.insert(Tag(0x9F34), cvm.results().to_vec());
        let cdol1 = self
            .card
            .get(&Tag(0x8C))
            .ok_or(malformed(step, MalformedReason::MissingTag(Tag(0x8C))))?;
        let cdol1 = parse_dol(cdol1).map_err(|e| malformed(step, MalformedReason::Tlv(e)))?;
        let source = (&self.term, &(&self.config.extra_tags, &self.card));
        let data = build_dol_data(&cdol1, &source);
        self.pending = Some(apdu::generate_ac_arqc(&data, step)?);
        self.state = State::ExpectGenerateAc;
        Ok(())
    }

    fn on_generate_ac(&mut self, data: &[u8]) -> Result<(), KernelError> {
        let step = Step::GenerateAc;
        let tlvs = tlv::parse(data).map_err(|e| malformed(step, MalformedReason::Tlv(e)))?;
        let [resp] = tlvs.as_slice() else {
            return Err(malformed(step, unexpected(0x77)));
        };
        // Book 3 §6.5.5.4: format 1 (80: CID || ATC || AC || IAD) or format 2 (77).
        match (&resp.tag, &resp.value) {
            (Tag(0x80), TlvValue::Primitive(v)) => {
                if !(11..=43).contains(&v.len()) {
                    return Err(malformed(step, MalformedReason::BadValue(Tag(0x80))));
                }
                let (cid, rest) = v.split_at(1);
                let (atc, rest) = rest.split_at(2);
                let (ac, iad) = rest.split_at(8);
                self.card.insert(Tag(0x9F27), cid.to_vec());
                self.card.insert(Tag(0x9F36), atc.to_vec());
                self.card.insert(Tag(0x9F26), ac.to_vec());
                if !iad.is_empty() {
                    self.card.insert(Tag(0x9F10), iad.to_vec());
                }
            }
            (Tag(0x77), TlvValue::Constructed(_)) => store(&mut self.card, resp, true),
            _ => return Err(malformed(step, unexpected(0x77))),
        }
        if !self.card.contains_key(&Tag(0x9F27)) {
            return Err(malformed(step, MalformedReason::MissingTag(Tag(0x9F27))));
        }
        Ok(())
    }

    /// (expired, not yet effective) from 5F24 / 5F25 (or the track 2 expiry) and the date.
    fn date_checks(&self, step: Step) -> Result<(bool, bool), KernelError> {
        let today = ordinal(&self.date).unwrap_or(0);
        let expiry = match self.card.get(&Tag(0x5F24)) {
            Some(v) => Some(
                <[u8; 3]>::try_from(v.as_slice())
                    .ok()
                    .and_then(|d| ordinal(&d))
                    .ok_or(malformed(step, MalformedReason::BadValue(Tag(0x5F24))))?,
            ),
            None => None,
        };
        let effective = self
            .card
            .get(&Tag(0x5F25))
            .and_then(|v| <[u8; 3]>::try_from(v.as_slice()).ok())
            .and_then(|d| ordinal(&d));
        Ok((
            expiry.is_some_and(|e| today > e),
            effective.is_some_and(|e| today < e),
        ))
    }

    fn complete(&mut self, path: KernelPath) -> Result<(), KernelError> {
        let step = Step::Completion;
        let bad = |t: u32| malformed(step, MalformedReason::BadValue(Tag(t)));
        let missing = |t: u32| malformed(step, MalformedReason::MissingTag(Tag(t)));
        let cryptogram: [u8; 8] = self
            .card
            .get(&Tag(0x9F26))
            .ok_or(missing(0x9F26))?
            .as_slice()
            .try_into()
            .map_err(|_| bad(0x9F26))?;
        let atc: [u8; 2] = self
            .card
            .get(&Tag(0x9F36))
            .ok_or(missing(0x9F36))?
            .as_slice()
            .try_into()
            .map_err(|_| bad(0x9F36))?;
        // The CID is optional in a qVSDC GPO response. EMV Contactless Book C-3 §5.4.3.1 (as
        // the open-source DC EMV kernel 3 implements it, github.com/vicente-da-silva/dcemv,
        // Kernel3/States/State_3_4_CommonProcessing.cs): without 9F27, bits 6-5 of byte 5
        // of the IAD (9F10; the CVR's "cryptogram type returned in the first GENERATE AC",
        // Visa formats 0/1/3 and UnionPay) are the CID's bits 8-7. Without either, the type
        // is unknown: an error, never a guessed ARQC, so an AAC cannot go online unnoticed.
        // The M/Chip path has required the CID already.
        let cid = match self.card.get(&Tag(0x9F27)).map(Vec::as_slice) {
            Some([cid]) => *cid,
            Some(_) => return Err(bad(0x9F27)),
            None => self
                .card
                .get(&Tag(0x9F10))
                .and_then(|iad| iad.get(4))
                .map(|b| (b & 0x30) << 2)
                .ok_or(missing(0x9F27))?,
        };
        let cryptogram_type = CryptogramType::from_cid(cid)
            .ok_or(malformed(step, MalformedReason::BadCryptogramType))?;
        let iad_ok = self.card.get(&Tag(0x9F10)).is_none_or(|v| v.len() <= 32);
        if !iad_ok {
            return Err(bad(0x9F10));
        }

        let track2 = match self.card.get(&Tag(0x57)) {
            Some(v) => Some(outcome::decode_track2(v).ok_or(bad(0x57))?),
            None => None,
        };
        let pan_5a = match self.card.get(&Tag(0x5A)) {
            Some(v) => Some(outcome::decode_pan(v).ok_or(bad(0x5A))?),
            None => None,
        };
        let pan_57 = match &track2 {
            Some(t) => Some(t.pan().ok_or(bad(0x57))?),
            None => None,
        };
        let pan = match (pan_5a, pan_57) {
            (Some(a), Some(b)) if a != b => {
                return Err(malformed(step, MalformedReason::PanMismatch));
            }
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => return Err(missing(0x5A)),
        };
        let expiry = match self.card.get(&Tag(0x5F24)) {
            Some(v) => outcome::bcd_digits(v)
                .filter(|d| d.len() == 6)
                .and_then(|d| d.get(..4).map(str::to_owned))
                .ok_or(bad(0x5F24))?,
            None => track2
                .as_ref()
                .and_then(|t| t.expiry())
                .map(str::to_owned)
                .ok_or(missing(0x5F24))?,
        };
        let month = expiry
            .get(2..4)
            .and_then(|m| m.parse::<u8>().ok())
            .unwrap_or(0);
        if !(1..=12).contains(&month) {
            return Err(bad(0x5F24));
        }
        let (mut expired, _) = self.date_checks(step)?;
        if !self.card.contains_key(&Tag(0x5F24)) {
            // Track 2 only has YYMM: expired after the end of that month.
            let today = ordinal(&self.date).unwrap_or(0) / 100;
            let exp = expiry.parse::<u32>().map(yymm_ordinal).unwrap_or(u32::MAX);
            expired = today > exp;
        }
        let pan_seq = match self.card.get(&Tag(0x5F34)).map(Vec::as_slice) {
            Some([b]) => Some(
                outcome::bcd_digits(&[*b])
                    .and_then(|d| d.parse::<u8>().ok())
                    .ok_or(bad(0x5F34))?,
            ),
            Some(_) => return Err(bad(0x5F34)),
            None => None,
        };
        let cvm = match (path, self.cvm) {
            (KernelPath::MChip, Some(c)) => c,
            _ => cvm::quick(
                self.card.get(&Tag(0x9F6C)).map(Vec::as_slice),
                &self.ttq,
                self.cvm_required,
            ),
        };
        self.term.insert(Tag(0x9F34), cvm.results().to_vec());
        let tvr: [u8; 5] = self
            .term
            .get(&Tag(0x95))
            .and_then(|v| v.as_slice().try_into().ok())
            .unwrap_or_default();
        // TSI (Book 3 Annex C6): cardholder verification performed (b7), card risk management
        // performed (b6: the card did it in GPO / GENERATE AC), terminal risk management
        // performed (b4: the floor-limit check).
        let mut tsi = [0x28, 0x00];
        if cvm != Cvm::NoCvm {
            tsi[0] |= 0x40;
        }
        let icc_data = outcome::build_field55(|t| {
            self.term
                .get(&t)
                .or_else(|| self.card.get(&t))
                .or_else(|| self.config.extra_tags.get(&t))
                .cloned()
        });
        let receipt = outcome::receipt(
            &self.aid,
            &self.label,
            &tvr,
            &tsi,
            cryptogram_type,
            &cryptogram,
            cvm,
        );
        let out = CardOutcome {
            path,
            aid: self.aid.clone(),
            app_label: self.label.clone(),
            pan,
            track2,
            expiry,
            expired,
            pan_seq,
            cvm,
            icc_data,
            tvr,
            tsi,
            cryptogram_type,
            cryptogram,
            atc,
            receipt,
            card_in_field_ms: self.last_ms.saturating_sub(self.start_ms),
        };
        self.finish(Ok(out));
        Ok(())
    }
}

/// The transaction limit of `limits` if `amount` reaches it (Book B §3.1.1: "greater than or
/// equal to", per my reading).
fn over_limit(limits: &ContactlessLimits, amount: u64) -> Option<u64> {
    limits.transaction_limit.filter(|&limit| amount >= limit)
}

fn malformed(step: Step, reason: MalformedReason) -> KernelError {
    KernelError::Malformed { step, reason }
}

fn unexpected(expected: u32) -> MalformedReason {
    MalformedReason::UnexpectedTemplate {
        expected: Tag(expected),
    }
}

/// Parses `data` as exactly one constructed object with `tag`.
fn parse_template(data: &[u8], tag: Tag, step: Step) -> Result<Tlv, KernelError> {
    let mut tlvs = tlv::parse(data).map_err(|e| malformed(step, MalformedReason::Tlv(e)))?;
    match (tlvs.pop(), tlvs.is_empty()) {
        (Some(t), true) if t.tag == tag && matches!(t.value, TlvValue::Constructed(_)) => Ok(t),
        _ => Err(malformed(
            step,
            MalformedReason::UnexpectedTemplate { expected: tag },
        )),
    }
}

/// Stores every primitive under `t`; `overwrite` lets later values replace earlier ones.
fn store(map: &mut BTreeMap<Tag, Vec<u8>>, t: &Tlv, overwrite: bool) {
    for (tag, v) in t.primitives() {
        if overwrite {
            map.insert(tag, v.to_vec());
        } else {
            map.entry(tag).or_insert_with(|| v.to_vec());
        }
    }
}

/// YYMMDD (BCD) as a comparable number, years 00-49 → 20xx, 50-99 → 19xx (Book 3 §6.7.3
/// on date years, per my reading).
fn ordinal(d: &[u8; 3]) -> Option<u32> {
    let s = outcome::bcd_digits(d)?;
    let n: u32 = s.parse().ok()?;
    let yy = n / 10_000;
    let month = (n / 100) % 100;
    let day = n % 100;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if yy < 50 { 2000 + yy } else { 1900 + yy };
    Some(year * 10_000 + month * 100 + day)
}

/// YYMM as a comparable number on the same scale as `ordinal(..) / 100`.
fn yymm_ordinal(yymm: u32) -> u32 {
    let yy = yymm / 100;
    let year = if yy < 50 { 2000 + yy } else { 1900 + yy };
    year * 100 + yymm % 100
}
