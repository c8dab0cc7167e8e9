//! The acquirer host: the other side of every message the terminal sends.
//!
//! It issues working keys at sign-in (encrypted under the shared TMK, with check values),
//! verifies request MACs, keeps a ledger, enforces the void / refund / completion rules,
//! settles, deduplicates repeats (same terminal, STAN, date and message class), and approves or
//! declines by the amount table below. Message-level faults (`bad-mac`, `wrong-stan`) are
//! applied here; transport faults are applied by [`crate::net`].
//!
//! # Amount table (the last two digits of the amount in minor units)
//! | ends in | response | meaning |
//! |---|---|---|
//! | 51 | `51` | insufficient funds |
//! | 05 | `05` | do not honour |
//! | 14 | `14` | invalid card number |
//! | 54 | `54` | expired card |
//! | 55 | `55` | incorrect PIN |
//! | 61 | `61` | exceeds withdrawal amount limit |
//! | 62 | `62` | restricted card |
//! | 96 | `96` | system malfunction |
//! | 72 | `00` | approved; a chip sale or pre-authorisation also gets an issuer script |
//! | anything else | `00` | approved |
//!
//! Amounts 990000..=990099 (9900.00 to 9900.99) answer the code in their last two digits
//! (`00` to `99`), so tests can make the host produce every numeric response code.
//!
//! Before the table: a sale, pre-authorisation or balance enquiry whose PIN block (field 52)
//! does not hold [`crate::keys::TEST_PIN`] (or the PIN of [`Acquirer::with_accepted_pin`])
//! under the terminal's PIN key (TDES or SM4 working keys, or the DUKPT key of its KSN) is
//! declined `55` (`99` if the block does not decode), a
//! chip request (field 55) whose ARQC does not verify under the test issuer
//! master key [`crate::card::TEST_IMK_AC`] is declined `05`, and an expired card (field 14 or
//! the track 2 expiry before this month) is declined `54`. Approved chip requests get field 55
//! with tag `91`: the ARPC (method 1) and the response code as ARC.
//!
//! # Issuer scripts
//! An approved chip sale or pre-authorisation whose amount ends in `72` (e.g. 1072, 10.72)
//! gets, after `91`, the issuer script [`ISSUER_SCRIPT_72`] in field 55: a `72` template (run
//! by the card after its final GENERATE AC) with script identifier `00000001` and one harmless
//! PUT DATA command.
//!
//! # Advices after a chip transaction (contact chip cards, after the card's final decision)
//! - TC upload: MTI 0320 with 60.3 = `203` and field 55 carrying the final chip data. The host
//!   records the final cryptogram (9F26, hex) as [`LedgerEntry::tc`] on the transaction with
//!   the same terminal and the RRN in field 37 (without 37: the original STAN in 61.2) and
//!   answers 0330 `00`.
//! - Script result advice: MTI 0620 with 60.3 = `951` and field 55 carrying the issuer script
//!   results (9F5B or DF31). The host records them (hex) as [`LedgerEntry::script_results`]
//!   on the transaction found the same way and answers 0630 `00`.
//!
//! Both are MACed like every message but network management, and answered with a MAC. The
//! answer is `25` when no transaction matches, `30` when field 55 lacks the tag, `12` for a
//! 0620 with another 60.3.
//!
//! # Settlement (0500) and batch upload (0320)
//! The host totals its approved sales and completions (debits) and refunds (credits) of the
//! terminal's batch (60.2) and compares them with field 48 in the profile's layout: `cup`'s 62
//! digits, domestic cards (UnionPay's `62` range, [`proto::CardClass`]) then foreign, or 31
//! digits (`[settlement] totals = "single"`). It answers with its own totals and a result
//! digit per class, `1` balanced or `2` not, and response code `00`; how it answers a batch it
//! does not agree with is [`SettlementAnswer`] (`smartpos host --settlement-answer`).
//! A batch upload (0320, 60.3 `201`) is recorded in [`Ledger::uploads`]: the records of field
//! 48 (count n2, then class n2, STAN n6, PAN n20, amount n12 each; a malformed field 48 is
//! answered `30`), or with `[settlement] upload = "per-transaction"` the one transaction of
//! the message (original STAN from 61.2, amount from 4). A record sent twice (a settlement
//! resumed after a crash) is kept once. The end of batch (60.3 `202`) is answered `00`.
//!
//! Response-code meanings follow ISO 8583:1987 field 39 and the UnionPay POS specification.

use crate::fault::FaultSet;
use crate::keys::{self, DukptVerdict, HostKeys};
use crate::net::{ConnInfo, FrameHandler};
use serde::{Deserialize, Serialize};
use smartpos_crypto::dukpt::{DukptBdk, DukptTxn};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::MacDirection;
use smartpos_crypto::sm4::Sm4Key;
use smartpos_iso8583::{Message, Mti};
use smartpos_txn::profile::KeyCipher;
use smartpos_txn::proto::{self, KeyRole, Profile};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// The TMK the simulator shares with terminals when none is given: a documented TEST key.
pub const TEST_TMK_HEX: &str = "0123456789ABCDEFFEDCBA9876543210";

/// What happened to a transaction at the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Approved (money moved or is held).
    Approved,
    /// Declined.
    Declined,
    /// Reversed by the terminal: no money moved.
    Reversed,
    /// Voided / cancelled by a later void or pre-auth cancel.
    Voided,
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Terminal id.
    pub tid: String,
    /// STAN of the request.
    pub stan: u32,
    /// Local date of the request (`MMDD`, field 13).
    pub date: String,
    /// `sale`, `void`, `refund`, `preauth`, `completion`, `preauth_cancel`.
    pub kind: String,
    /// Amount in minor units.
    pub amount: u64,
    /// Status.
    pub status: HostStatus,
    /// Response code given.
    pub response_code: String,
    /// RRN given.
    pub rrn: String,
    /// Authorisation code given (approvals).
    pub auth_code: String,
    /// Batch number the terminal sent (60.2).
    pub batch: u32,
    /// RRN of the original (void, refund, completion, cancel).
    pub original_rrn: Option<String>,
    /// The final application cryptogram (9F26, hex) of the terminal's TC upload (0320,
    /// 60.3 = `203`) for this transaction: a TC, or an AAC when the card declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc: Option<String>,
    /// The issuer script results (9F5B / DF31 value, hex) of the terminal's script result
    /// advice (0620, 60.3 = `951`) for this transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_results: Option<String>,
    /// The operator code the request carried in field 63 (its first three characters, trailing
    /// spaces removed: three spaces read as `""`); `None` when the request had no field 63.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Whether the card is foreign (outside UnionPay's `62` range, [`proto::CardClass`]): it
    /// counts in the foreign totals of a 62-digit settlement. From the request's PAN (field 2
    /// or 35), else the original's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub foreign: bool,
}

/// The host's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every financial request the host processed, in arrival order.
    pub transactions: Vec<LedgerEntry>,
    /// Every record of a batch upload (0320, 60.3 `201`), once each, in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<UploadEntry>,
}

/// One uploaded record of a batch upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEntry {
    /// Terminal id.
    pub tid: String,
    /// The batch the upload was for (60.2).
    pub batch: u32,
    /// The transaction's STAN.
    pub stan: u32,
    /// Amount in minor units.
    pub amount: u64,
    /// The record's card class: `00` domestic, `01` foreign (`None` for a per-transaction
    /// upload, which names no class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The record's PAN, masked (first six, last four); `None` when it carried none (zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan_masked: Option<String>,
    /// Whether the host approved a transaction with this STAN and amount in that batch.
    pub known: bool,
}

/// How the host answers a settlement (0500).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SettlementAnswer {
    /// `00`, and in field 48 the host's totals with `2` for each class that does not
    /// balance (`1` for one that does). The default.
    #[default]
    InField48,
    /// `95` (reconcile error) when the totals do not balance, `00` as above when they do.
    Code95,
    /// `95` to every settlement, whatever the totals: a host that always wants the batch
    /// upload.
    Always95,
}

impl std::str::FromStr for SettlementAnswer {
    type Err = String;

    /// `field48`, `95` or `always-95`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "field48" => Ok(SettlementAnswer::InField48),
            "95" => Ok(SettlementAnswer::Code95),
            "always-95" => Ok(SettlementAnswer::Always95),
            other => Err(format!(
                "unknown settlement answer {other:?} (field48, 95, always-95)"
            )),
        }
    }
}

/// The ledger file (`smartpos host --ledger FILE`): the ledger, and each terminal's working keys
/// as its last sign-in delivered them (the key block, hex, every key encrypted under the TMK,
/// with its check value), so a host restarted with the file still knows every terminal that
/// signed in. Without them the terminals' next MACed requests would be answered `97` until they
/// sign in again. `smartpos host-ledger` and older files read the ledger part only.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    #[serde(flatten)]
    ledger: Ledger,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    terminal_keys: BTreeMap<String, String>,
}

/// [`LedgerFile`] for writing, without copying the ledger.
#[derive(Serialize)]
struct LedgerFileRef<'a> {
    #[serde(flatten)]
    ledger: &'a Ledger,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    terminal_keys: &'a BTreeMap<String, String>,
}

/// Host simulator settings.
#[derive(Debug)]
pub struct AcquirerConfig {
    /// Built-in profile name (`cup`, `iso87b`).
    pub dialect: String,
    /// The TMK shared with terminals.
    pub tmk: TdesKey,
    /// Where to write the ledger (JSON) after every change, if anywhere; the terminals' working
    /// keys (under the TMK) are kept in it too, and both are loaded from it at start.
    pub ledger_file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, HostKeys>,
    /// DUKPT profiles: each terminal's last good request's transaction keys (its response is
    /// MACed under the same KSN).
    dukpt_last: HashMap<String, DukptTxn>,
    /// DUKPT profiles: every KSN of a request that checked, in arrival order.
    ksns_seen: Vec<Vec<u8>>,
    /// Each terminal's last key block (hex, keys under the TMK), as kept in the ledger file.
    key_blocks: BTreeMap<String, String>,
    ledger: Ledger,
    /// Responses already given, by (tid, stan, date, message class), for repeats.
    answered: HashMap<(String, u32, String, u8), Message>,
    rrn_seq: u64,
    batch_seq: u32,
    settlement_answer: SettlementAnswer,
}

/// The acquirer host.
#[derive(Debug)]
pub struct Acquirer {
    profile: Profile,
    tmk: TdesKey,
    /// SM4 profiles: the TMK's bytes as an SM4 key.
    sm4_tmk: Option<Sm4Key>,
    /// DUKPT profiles: the BDK every request's keys are derived from.
    dukpt: Option<DukptBdk>,
    ledger_file: Option<PathBuf>,
    state: Mutex<State>,
    /// The EMV parameters served by the download (`emv_params.rs`).
    emv_params: smartpos_txn::params::TerminalParams,
    /// The PIN a PIN block must hold ([`keys::TEST_PIN`] unless [`Acquirer::with_accepted_pin`]).
    accepted_pin: smartpos_crypto::Pin,
}

/// Why a request was refused before any ledger change.
struct Refusal(&'static str);

impl Acquirer {
    /// A host for a built-in profile. Loads the ledger file if it exists.
    pub fn new(cfg: AcquirerConfig) -> Result<Acquirer, String> {
        let profile = Profile::by_name(&cfg.dialect)
            .ok_or_else(|| format!("unknown dialect {:?}", cfg.dialect))?;
        Acquirer::with_profile(cfg, profile)
    }

    /// A host for an acquirer profile (built-in or loaded from TOML); `cfg.dialect` is ignored.
    /// Loads the ledger file if it exists.
    pub fn with_profile(cfg: AcquirerConfig, profile: Profile) -> Result<Acquirer, String> {
        let mut state = State {
            rrn_seq: 100_000,
            batch_seq: 1,
            ..State::default()
        };
        if let Some(path) = &cfg.ledger_file
            && let Ok(text) = std::fs::read_to_string(path)
        {
            let file: LedgerFile = serde_json::from_str(&text)
                .map_err(|e| format!("ledger file {} unreadable: {e}", path.display()))?;
            state.ledger = file.ledger;
            state.rrn_seq += u64::try_from(state.ledger.transactions.len()).unwrap_or(0);
            for (tid, hex) in file.terminal_keys {
                // The same unwrap and check values as the terminal's: a block that does not
                // check under this TMK (the host was started with another) is dropped, and
                // that terminal gets 97 until it signs in again.
                let keys = smartpos_types::hex::decode(&hex)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        if profile.keys.cipher == KeyCipher::Sm4 {
                            let tmk = keys::sm4_tmk(&cfg.tmk).map_err(|e| e.to_string())?;
                            return keys::sm4_unwrap(&profile, &tmk, &b).map_err(|e| e.to_string());
                        }
                        keys::tdes_unwrap(&profile, &cfg.tmk, &b)
                    });
                match keys {
                    Ok(k) => {
                        state.keys.insert(tid.clone(), k);
                        state.key_blocks.insert(tid, hex);
                    }
                    Err(e) => log::warn!(
                        "ledger file: the kept keys of terminal {tid} are not usable ({e}); it must sign in again"
                    ),
                }
            }
        }
        let sm4_tmk = match profile.keys.cipher {
            KeyCipher::Sm4 => {
                Some(keys::sm4_tmk(&cfg.tmk).map_err(|e| format!("the TMK as an SM4 key: {e}"))?)
            }
            _ => None,
        };
        // A DUKPT profile is served with the scheme's TEST BDK until `with_dukpt_bdk`.
        let dukpt = match profile.keys.dukpt() {
            Some(d) => Some(keys::test_bdk(d.scheme).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Acquirer {
            profile,
            tmk: cfg.tmk,
            sm4_tmk,
            dukpt,
            ledger_file: cfg.ledger_file,
            state: Mutex::new(state),
            emv_params: crate::emv_params::test_params(),
            accepted_pin: smartpos_crypto::Pin::new(keys::TEST_PIN).map_err(|e| e.to_string())?,
        })
    }

    /// The host deriving a DUKPT profile's keys from `bdk` instead of the scheme's TEST BDK
    /// ([`keys::TEST_TDES_BDK`], [`keys::TEST_AES_BDK`]). Refused for a profile without DUKPT
    /// or a BDK of the other scheme.
    pub fn with_dukpt_bdk(mut self, bdk: DukptBdk) -> Result<Acquirer, String> {
        match self.profile.keys.dukpt() {
            Some(d) if d.scheme == bdk.scheme() => {
                self.dukpt = Some(bdk);
                Ok(self)
            }
            Some(d) => Err(format!("the profile's scheme is {}", d.scheme.name())),
            None => Err("the profile has no DUKPT scheme".into()),
        }
    }

    /// The host accepting `pin` in PIN blocks instead of [`keys::TEST_PIN`] (any other PIN is
    /// declined `55`): for tests that need a PIN whose digits cannot turn up by chance.
    pub fn with_accepted_pin(mut self, pin: smartpos_crypto::Pin) -> Acquirer {
        self.accepted_pin = pin;
        self
    }

    /// The host serving `params` to the EMV parameter download instead of the built-in TEST set.
    pub fn with_emv_params(mut self, params: smartpos_txn::params::TerminalParams) -> Acquirer {
        self.emv_params = params;
        self
    }

    /// DUKPT profiles: the KSN of every request that checked (MAC and KSN good), in arrival
    /// order: a repeat means a terminal used a counter twice.
    pub fn dukpt_ksns_seen(&self) -> Vec<Vec<u8>> {
        self.lock().ksns_seen.clone()
    }

    /// The profile the host serves.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A copy of the ledger.
    pub fn ledger(&self) -> Ledger {
        self.lock().ledger.clone()
    }

    /// Sets how the host answers settlements from now on.
    pub fn set_settlement_answer(&self, answer: SettlementAnswer) {
        self.lock().settlement_answer = answer;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the ledger half-written in a way that
        // matters more than stopping the simulator, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the ledger (which holds every terminal's working keys) readable by its owner
    /// only, through a temporary file renamed over the old one.
    fn save(&self, st: &State) {
        let Some(path) = &self.ledger_file else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let file = LedgerFileRef {
            ledger: &st.ledger,
            terminal_keys: &st.key_blocks,
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(|e| e.to_string())
            .and_then(|b| write_owner_only(&tmp, &b).map_err(|e| e.to_string()))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
        if let Err(e) = written {
            log::error!("cannot write ledger {}: {e}", path.display());
        }
    }

    /// Handles one request body; returns the response bodies (none = no answer).
    pub fn handle_request(&self, faults: FaultSet, request: &[u8]) -> Option<Vec<u8>> {
        let msg = match self.profile.dialect.unpack(request) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("host: undecodable request ({e})");
                return None;
            }
        };
        let mut st = self.lock();
        let mut resp = self.process(&mut st, &msg, request)?;
        if faults.wrong_stan {
            let stan = msg
                .text(11)
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0);
            resp.set(11, format!("{:06}", (stan + 1) % 1_000_000).into_bytes());
        }
        let tid = msg.text(41).unwrap_or_default().to_owned();
        let mac = needs_mac(msg.mti);
        let mut bytes = self.seal_locked(&st, &resp, &tid)?;
        if faults.bad_mac
            && mac
            && let Some(last) = bytes.last_mut()
        {
            *last ^= 0x55;
        }
        Some(bytes)
    }

    /// An answer with response code `code` to a request that the host does not process: the
    /// ledger is left as it is (a host that is down behind its front end, or refuses). The
    /// answer has the shape of a real one (echoed fields, MAC), so the terminal takes it as the
    /// host's word. `None` when the request does not decode or has no response type.
    pub fn refuse(&self, request: &[u8], code: &str) -> Option<Vec<u8>> {
        let msg = self.profile.dialect.unpack(request).ok()?;
        let mut resp = response_skeleton(&msg, msg.mti.response()?);
        resp.set(39, code.as_bytes().to_vec());
        self.seal_for_terminal(&resp, msg.text(41)?)
    }

    /// Handles `request` as usual, then replaces the response code of its answer with `code`
    /// (MAC recomputed): the host did the work but says something else.
    pub fn handle_and_answer(&self, request: &[u8], code: &str) -> Option<Vec<u8>> {
        let answer = self.handle_request(FaultSet::none(), request)?;
        let mut msg = self.profile.dialect.unpack(&answer).ok()?;
        msg.set(39, code.as_bytes().to_vec());
        self.seal_for_terminal(&msg, msg.text(41)?)
    }

    /// Packs a host message for terminal `tid`, with a MAC under its MAK when the message type
    /// carries one. Public so tests can forge well-MACed but inconsistent answers.
    pub fn seal_for_terminal(&self, msg: &Message, tid: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        self.seal_locked(&st, msg, tid)
    }

    fn seal_locked(&self, st: &State, msg: &Message, tid: &str) -> Option<Vec<u8>> {
        let p = &self.profile;
        let want = needs_mac(msg.mti);
        let sealed = match (p.keys.dukpt(), st.keys.get(tid)) {
            // DUKPT: the response MAC is under the response key of the request's KSN.
            (Some(d), _) => match st.dukpt_last.get(tid) {
                Some(txn) if want && d.mac => proto::seal_by_fn(p, msg, &mut |input| {
                    keys::dukpt_mac(p, txn, MacDirection::Response, input)
                }),
                _ => proto::seal(p, None, msg, false),
            },
            (None, Some(HostKeys::Tdes { mak, .. })) => proto::seal(p, Some(mak), msg, want),
            (None, Some(k @ HostKeys::Sm4 { .. })) if want => {
                proto::seal_by_fn(p, msg, &mut |input| k.mac(p, input))
            }
            (None, _) => proto::seal(p, None, msg, false),
        };
        match sealed {
            Ok(b) => Some(b),
            Err(e) => {
                log::error!("host: cannot encode response: {e}");
                None
            }
        }
    }

    fn process(&self, st: &mut State, msg: &Message, raw: &[u8]) -> Option<Message> {
        let tid = msg.text(41)?.to_owned();
        let stan: u32 = msg.text(11)?.parse().ok()?;
        let resp_mti = msg.mti.response()?;
        let mut resp = response_skeleton(msg, resp_mti);
        let f60 = msg.text(60).unwrap_or_default().to_owned();
        let type_code = f60.get(0..2).unwrap_or("").to_owned();
        let batch: u32 = f60.get(2..8).and_then(|b| b.parse().ok()).unwrap_or(0);
        let nmic = f60.get(8..11).unwrap_or("").to_owned();

        // Network management: no MAC.
        if msg.mti == Mti::NETWORK || msg.mti == Mti::NETWORK_ADVICE {
            if msg.mti == Mti::NETWORK && nmic.starts_with("00") {
                return Some(self.sign_in(st, &tid, msg, resp));
            }
            // EMV parameter queries and downloads (372/370, 382/380) answer in field 62.
            if let Some(f62) = crate::emv_params::answer(&self.emv_params, &nmic, msg.get(62)) {
                resp.set(62, f62);
            }
            resp.set(39, b"00".to_vec());
            return Some(resp);
        }

        // Everything else must carry a good MAC under the terminal's MAK, or (DUKPT) under
        // the key derived for its KSN; a PIN block must hold the accepted PIN (checked below
        // for working keys, once the tracks are clear).
        let dukpt_pin = if let Some(bdk) = &self.dukpt {
            match keys::dukpt_request(&self.profile, bdk, msg, raw, &self.accepted_pin) {
                DukptVerdict::Good(txn, pin) => {
                    st.ksns_seen.push(txn.ksn());
                    st.dukpt_last.insert(tid.clone(), txn);
                    Some(pin)
                }
                DukptVerdict::Refused(code) => {
                    // No key to MAC the answer with: it goes without one.
                    st.dukpt_last.remove(&tid);
                    resp.set(39, code.as_bytes().to_vec());
                    return Some(resp);
                }
            }
        } else {
            let Some(keys) = st.keys.get(&tid) else {
                resp.set(39, b"97".to_vec()); // terminal not signed in
                return Some(resp);
            };
            let p = &self.profile;
            if !proto::verify_mac_by_fn(p, raw, msg, &mut |input| keys.mac(p, input)) {
                log::warn!("host: request MAC did not verify for terminal {tid}");
                resp.set(39, b"A0".to_vec());
                return Some(resp);
            }
            None
        };
        // Track data (`track_encryption = "cup-tdk"`): field 53's flag must say what the
        // profile does, and the tracks are decrypted under the terminal's TDK (DUKPT: the data
        // key of the request's KSN); the rest of the checks read the clear tracks. A flag that
        // does not match or a ciphertext that does not decrypt to track data is a format
        // error (30).
        let data_key = if self.dukpt.is_some() {
            match st.dukpt_last.get(&tid) {
                Some(DukptTxn::Tdes(t)) => Some(t.data_request_key()),
                _ => None,
            }
        } else {
            match st.keys.get(&tid) {
                Some(HostKeys::Tdes { tdk, .. }) => tdk.clone(),
                _ => None,
            }
        };
        let clear = match keys::open_request_tracks(&self.profile, msg, data_key.as_ref()) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("host: track data of terminal {tid} refused: {e}");
                resp.set(39, b"30".to_vec());
                return Some(resp);
            }
        };
        let msg = &clear;
        // The PIN block under the terminal's PIK (TDES or SM4); its PAN may be in track 2.
        let pin_code = match dukpt_pin {
            Some(pin) => pin,
            None => st
                .keys
                .get(&tid)
                .and_then(|k| keys::pin_verdict_for(&self.profile, k, msg, &self.accepted_pin)),
        };

        let date = msg.text(13).unwrap_or("0000").to_owned();
        let class = msg.mti.0 / 100 % 10; // 1 auth, 2 financial, 3 file, 4 reversal, 5 reconciliation
        let key = (
            tid.clone(),
            stan,
            date.clone(),
            u8::try_from(class).unwrap_or(0),
        );
        if let Some(prev) = st.answered.get(&key) {
            log::info!("host: repeat of {tid}/{stan:06} answered from memory");
            return Some(prev.clone());
        }
        let pc = msg.text(3).unwrap_or("").to_owned();
        let amount: u64 = msg.text(4).and_then(|a| a.parse().ok()).unwrap_or(0);

        let answer = match msg.mti.0 {
            400 | 401 => self.reverse(st, &tid, stan, &date, resp),
            500 => self.settle(st, &tid, batch, msg, resp),
            320 => {
                let code = match nmic.as_str() {
                    "201" => self.record_upload(st, &tid, batch, msg),
                    "202" => {
                        st.batch_seq += 1;
                        "00"
                    }
                    "203" => {
                        if let Some(rrn) = msg.get(37) {
                            resp.set(37, rrn.to_vec());
                        }
                        Self::record_advice(st, &tid, msg, Advice::Tc)
                    }
                    _ => "00",
                };
                resp.set(39, code.as_bytes().to_vec());
                resp
            }
            620 => {
                let code = if nmic == "951" {
                    Self::record_advice(st, &tid, msg, Advice::ScriptResults)
                } else {
                    "12"
                };
                if let Some(rrn) = msg.get(37) {
                    resp.set(37, rrn.to_vec());
                }
                resp.set(39, code.as_bytes().to_vec());
                resp
            }
            _ => {
                let kind = match (msg.mti.0, pc.as_str(), type_code.as_str()) {
                    (200, "000000", "22") => "sale",
                    (200, "200000", "23") => "void",
                    (220 | 221, "200000", "25") => "refund",
                    (100, "030000", "10") => "preauth",
                    (100, "200000", "11") => "preauth_cancel",
                    (200, "000000", "20") => "completion",
                    (200, "310000", "01") => "balance",
                    _ => "",
                };
                let chip = chip_check(msg);
                if let Some(ChipCheck { code: Some(c), .. }) = &chip {
                    log::info!("host: chip check declines with {c}");
                }
                let result = match kind {
                    "sale" | "preauth" => Ok(pin_code
                        .or_else(|| chip.as_ref().and_then(|c| c.code))
                        .or_else(|| expired(msg).then_some("54"))
                        .unwrap_or_else(|| decide(amount))),
                    "balance" => match pin_code {
                        Some(c) => Ok(c),
                        None => {
                            resp.set(54, b"1001156C000000100000".to_vec());
                            Ok("00")
                        }
                    },
                    "void" | "preauth_cancel" => self.cancel(st, &tid, msg, amount, batch, kind),
                    "refund" => self.refund(st, &tid, msg, amount),
                    "completion" => self.completion(st, &tid, msg, amount),
                    _ => Err(Refusal("12")),
                };
                let code = match result {
                    Ok(c) => c,
                    Err(Refusal(c)) => c,
                };
                st.rrn_seq += 1;
                let rrn = format!("{:012}", st.rrn_seq);
                let approved = proto::is_approval(code);
                let auth = if approved {
                    format!("{:06}", st.rrn_seq % 1_000_000)
                } else {
                    String::new()
                };
                resp.set(37, rrn.clone().into_bytes());
                if !auth.is_empty() {
                    resp.set(38, auth.clone().into_bytes());
                }
                resp.set(39, code.as_bytes().to_vec());
                if let Some(ChipCheck {
                    arpc_for: Some(f), ..
                }) = &chip
                {
                    let arc = [code.as_bytes()[0], code.as_bytes()[1]];
                    if let Some(mut f55) = f(arc) {
                        if approved && matches!(kind, "sale" | "preauth") && amount % 100 == 72 {
                            f55.extend_from_slice(ISSUER_SCRIPT_72);
                        }
                        resp.set(55, f55);
                    }
                }
                if kind != "balance" && !kind.is_empty() {
                    let foreign = match request_pan(msg) {
                        Some(pan) => {
                            proto::CardClass::of(Some(pan.expose())) == proto::CardClass::Foreign
                        }
                        None => Self::find_original(st, &tid, msg).is_some_and(|o| o.foreign),
                    };
                    st.ledger.transactions.push(LedgerEntry {
                        tid: tid.clone(),
                        stan,
                        date: date.clone(),
                        kind: kind.to_owned(),
                        amount,
                        status: if approved {
                            HostStatus::Approved
                        } else {
                            HostStatus::Declined
                        },
                        response_code: code.to_owned(),
                        rrn,
                        auth_code: auth,
                        batch,
                        original_rrn: msg.text(37).map(str::to_owned),
                        tc: None,
                        script_results: None,
                        operator: msg
                            .text(63)
                            .map(|o| o.get(..3).unwrap_or(o).trim_end().to_owned()),
                        foreign,
                    });
                }
                resp
            }
        };
        st.answered.insert(key, answer.clone());
        self.save(st);
        Some(answer)
    }

    fn sign_in(&self, st: &mut State, tid: &str, msg: &Message, mut resp: Message) -> Message {
        let layout = &self.profile.keys;
        let f60 = msg.text(60).unwrap_or("00000000003");
        let nmic = f60.get(8..11).unwrap_or("003");
        resp.set(60, format!("00{:06}{nmic}", st.batch_seq).into_bytes());
        // DUKPT: no keys to deliver; the sign-in opens the terminal's batch as usual.
        if layout.dukpt().is_some() {
            resp.set(39, b"00".to_vec());
            return resp;
        }
        if let Some(tmk) = &self.sm4_tmk {
            match keys::sm4_sign_in(&self.profile, tmk) {
                Ok((block, k)) => {
                    st.keys.insert(tid.to_owned(), k);
                    st.key_blocks
                        .insert(tid.to_owned(), smartpos_types::hex::encode(&block));
                    self.save(st);
                    resp.set(layout.field, self.profile.encode_key_block(&block));
                    resp.set(39, b"00".to_vec());
                }
                Err(e) => {
                    log::error!("host: SM4 key generation failed: {e}");
                    resp.set(39, b"96".to_vec());
                }
            }
            return resp;
        }
        // Keys in the profile's block order and length (built-ins: PIK MAK TDK, 16 bytes).
        let mut keys = Vec::with_capacity(layout.order.len());
        for _ in &layout.order {
            match TdesKey::generate(layout.key_len) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    log::error!("host: key generation failed: {e}");
                    resp.set(39, b"96".to_vec());
                    return resp;
                }
            }
        }
        let block = layout.wrap(&self.tmk, &keys);
        // The host keeps the PIK too: it checks the PIN blocks.
        let pik_at = layout.order.iter().position(|r| *r == KeyRole::Pik);
        let mak_at = layout.order.iter().position(|r| *r == KeyRole::Mak);
        let tdk_at = layout.order.iter().position(|r| *r == KeyRole::Tdk);
        if let (Some(pik), Some(mak)) = (
            pik_at.and_then(|i| keys.get(i)),
            mak_at.and_then(|i| keys.get(i)),
        ) {
            let (pik, mak) = (pik.clone(), mak.clone());
            let tdk = tdk_at.and_then(|i| keys.get(i)).cloned();
            st.keys
                .insert(tid.to_owned(), HostKeys::Tdes { pik, mak, tdk });
            st.key_blocks
                .insert(tid.to_owned(), smartpos_types::hex::encode(&block));
            self.save(st);
        }
        resp.set(layout.field, self.profile.encode_key_block(&block));
        resp.set(39, b"00".to_vec());
        resp
    }

    /// Records a TC upload or a script result advice on its transaction; the response code.
    fn record_advice(st: &mut State, tid: &str, msg: &Message, advice: Advice) -> &'static str {
        let tags: &[u32] = match advice {
            Advice::Tc => &[0x9F26],
            Advice::ScriptResults => &[0x9F5B, 0xDF31],
        };
        let value = msg.get(55).and_then(|f55| {
            let tlvs = smartpos_emv::tlv::parse(f55).ok()?;
            tags.iter()
                .find_map(|t| smartpos_emv::tlv::find_bytes(&tlvs, smartpos_emv::tlv::Tag(*t)))
                .filter(|v| !v.is_empty())
                .map(smartpos_types::hex::encode)
        });
        let Some(value) = value else {
            return "30";
        };
        let rrn = msg.text(37).map(str::trim).filter(|r| !r.is_empty());
        let original_stan: Option<u32> = msg
            .text(61)
            .and_then(|f| f.get(6..12))
            .and_then(|s| s.parse().ok());
        let entry = st.ledger.transactions.iter_mut().rev().find(|e| {
            e.tid == tid
                && match (rrn, original_stan) {
                    (Some(rrn), _) => e.rrn == rrn,
                    (None, Some(stan)) => e.stan == stan,
                    (None, None) => false,
                }
        });
        let Some(entry) = entry else {
            return "25";
        };
        match advice {
            Advice::Tc => entry.tc = Some(value),
            Advice::ScriptResults => entry.script_results = Some(value),
        }
        "00"
    }

    fn find_original<'a>(
        st: &'a mut State,
        tid: &str,
        msg: &Message,
    ) -> Option<&'a mut LedgerEntry> {
        let rrn = msg.text(37)?.trim().to_owned();
        st.ledger
            .transactions
            .iter_mut()
            .find(|e| e.tid == tid && e.rrn == rrn && e.status == HostStatus::Approved)
    }

    fn cancel(
        &self,
        st: &mut State,
        tid: &str,
        msg: &Message,
        amount: u64,
        batch: u32,
        kind: &str,
    ) -> Result<&'static str, Refusal> {
        let want = if kind == "void" {
            ["sale", "completion"]
        } else {
            ["preauth", "preauth"]
        };
        let orig = Self::find_original(st, tid, msg).ok_or(Refusal("25"))?;
        if !want.contains(&orig.kind.as_str()) {
            return Err(Refusal("12"));
        }
        if kind == "void" && orig.batch != batch {
            return Err(Refusal("12")); // void only within the open batch
        }
        if orig.amount != amount {
            return Err(Refusal("13"));
        }
        orig.status = HostStatus::Voided;
        Ok("00")
    }

    fn refund(
        &self,
        st: &mut State,
        tid: &str,
        msg: &Message,
        amount: u64,
    ) -> Result<&'static str, Refusal> {
        let rrn = msg.text(37).ok_or(Refusal("25"))?.trim().to_owned();
        let orig = st
            .ledger
            .transactions
            .iter()
            .find(|e| {
                e.tid == tid
                    && e.rrn == rrn
                    && matches!(e.kind.as_str(), "sale" | "completion")
                    && e.status == HostStatus::Approved
            })
            .ok_or(Refusal("25"))?;
        let refunded: u64 = st
            .ledger
            .transactions
            .iter()
            .filter(|e| {
                e.kind == "refund"
                    && e.status == HostStatus::Approved
                    && e.original_rrn.as_deref() == Some(rrn.as_str())
            })
            .map(|e| e.amount)
            .sum();
        if refunded.saturating_add(amount) > orig.amount {
            return Err(Refusal("13")); // invalid amount: over the original
        }
        Ok("00")
    }

    fn completion(
        &self,
        st: &mut State,
        tid: &str,
        msg: &Message,
        amount: u64,
    ) -> Result<&'static str, Refusal> {
        let orig = Self::find_original(st, tid, msg).ok_or(Refusal("25"))?;
        if orig.kind != "preauth" {
            return Err(Refusal("12"));
        }
        if amount > orig.amount {
            return Err(Refusal("13"));
        }
        Ok("00")
    }

    fn reverse(
        &self,
        st: &mut State,
        tid: &str,
        stan: u32,
        date: &str,
        mut resp: Message,
    ) -> Message {
        let found = st
            .ledger
            .transactions
            .iter()
            .rposition(|e| e.tid == tid && e.stan == stan && e.date == date);
        match found {
            Some(i) => {
                let Some(e) = st.ledger.transactions.get_mut(i) else {
                    return resp;
                };
                let (kind, status, original) = (e.kind.clone(), e.status, e.original_rrn.clone());
                if status == HostStatus::Approved {
                    e.status = HostStatus::Reversed;
                    // Reversing a void or cancel reinstates what it cancelled.
                    if matches!(kind.as_str(), "void" | "preauth_cancel")
                        && let Some(o) = original
                        && let Some(e) =
                            st.ledger.transactions.iter_mut().find(|e| {
                                e.tid == tid && e.rrn == o && e.status == HostStatus::Voided
                            })
                    {
                        e.status = HostStatus::Approved;
                    }
                }
                resp.set(39, b"00".to_vec());
            }
            // Nothing to reverse: acknowledge so the terminal stops repeating.
            None => {
                resp.set(39, b"25".to_vec());
            }
        }
        resp
    }

    /// Answers a 0500: the host's totals of the terminal's batch against field 48, in the
    /// profile's layout, answered as [`SettlementAnswer`] says.
    fn settle(
        &self,
        st: &mut State,
        tid: &str,
        batch: u32,
        msg: &Message,
        mut resp: Message,
    ) -> Message {
        // (debit count, debit amount, credit count, credit amount) per class.
        let totals = |foreign: Option<bool>| {
            let mut t = smartpos_txn::model::BatchTotals::default();
            for e in st.ledger.transactions.iter().filter(|e| {
                e.tid == tid
                    && e.batch == batch
                    && e.status == HostStatus::Approved
                    && foreign.is_none_or(|f| e.foreign == f)
            }) {
                match e.kind.as_str() {
                    "sale" | "completion" => {
                        t.debit_count += 1;
                        t.debit_amount += e.amount;
                    }
                    "refund" => {
                        t.credit_count += 1;
                        t.credit_amount += e.amount;
                    }
                    _ => {}
                }
            }
            t
        };
        let theirs = msg.text(48).unwrap_or_default();
        let digit = |ok: bool| if ok { '1' } else { '2' };
        let (answer, balanced) = match self.profile.settlement.totals {
            proto::TotalsLayout::DomesticForeign => {
                let dom = proto::class_totals_digits(&totals(Some(false)));
                let fgn = proto::class_totals_digits(&totals(Some(true)));
                let dom_ok = theirs.get(0..30) == Some(dom.as_str());
                let fgn_ok = theirs.get(31..61) == Some(fgn.as_str());
                (
                    format!("{dom}{}{fgn}{}", digit(dom_ok), digit(fgn_ok)),
                    dom_ok && fgn_ok,
                )
            }
            proto::TotalsLayout::Single => {
                let ours = proto::settlement_field48(&totals(None));
                let ours = ours.get(..30).unwrap_or_default().to_owned();
                let ok = theirs.get(0..30) == Some(ours.as_str());
                (format!("{ours}{}", digit(ok)), ok)
            }
        };
        resp.set(48, answer.into_bytes());
        let code = match (st.settlement_answer, balanced) {
            (SettlementAnswer::Always95, _) | (SettlementAnswer::Code95, false) => "95",
            _ => "00",
        };
        resp.set(39, code.as_bytes().to_vec());
        resp
    }

    /// Records the transactions of a batch upload (0320, 60.3 `201`); the response code.
    fn record_upload(&self, st: &mut State, tid: &str, batch: u32, msg: &Message) -> &'static str {
        let records: Vec<(u32, u64, Option<String>, Option<String>)> = match msg.text(48) {
            Some(f48) => match proto::parse_upload_field48(f48) {
                Some(rs) => rs
                    .into_iter()
                    .map(|r| {
                        let pan = smartpos_types::Pan::new(&r.pan).ok().map(|p| p.masked());
                        (r.stan, r.amount, Some(r.class), pan)
                    })
                    .collect(),
                None => {
                    log::warn!("host: malformed batch upload record field 48");
                    return "30";
                }
            },
            // Per transaction: the original's STAN in 61.2, its amount in 4.
            None => {
                let stan = msg
                    .text(61)
                    .and_then(|f| f.get(6..12))
                    .and_then(|s| s.parse().ok());
                let amount = msg.text(4).and_then(|a| a.parse().ok());
                match (stan, amount) {
                    (Some(s), Some(a)) => vec![(s, a, None, None)],
                    _ => return "30",
                }
            }
        };
        for (stan, amount, class, pan_masked) in records {
            if st
                .ledger
                .uploads
                .iter()
                .any(|u| u.tid == tid && u.batch == batch && u.stan == stan)
            {
                continue;
            }
            let known = st.ledger.transactions.iter().any(|e| {
                e.tid == tid
                    && e.batch == batch
                    && e.stan == stan
                    && e.amount == amount
                    && e.status == HostStatus::Approved
            });
            st.ledger.uploads.push(UploadEntry {
                tid: tid.to_owned(),
                batch,
                stan,
                amount,
                class,
                pan_masked,
                known,
            });
        }
        "00"
    }
}

/// An advice that reports on a chip transaction after the card's final decision.
#[derive(Debug, Clone, Copy)]
enum Advice {
    /// TC upload (0320, 60.3 = `203`): 9F26.
    Tc,
    /// Script result advice (0620, 60.3 = `951`): 9F5B or DF31.
    ScriptResults,
}

/// The issuer script the host adds to field 55 of an approved chip sale or pre-authorisation
/// whose amount ends in `72`: a `72` template with script identifier (9F18) `00000001` and
/// one command (86), PUT DATA (`04 DA`) of the lower consecutive offline limit (9F58) = 3,
/// followed by 4 filler bytes where the secure-messaging MAC goes (the simulated cards do not
/// check it).
pub const ISSUER_SCRIPT_72: &[u8] = &[
    0x72, 0x13, 0x9F, 0x18, 0x04, 0x00, 0x00, 0x00, 0x01, 0x86, 0x0A, 0x04, 0xDA, 0x9F, 0x58, 0x05,
    0x03, 0x11, 0x22, 0x33, 0x44,
];

/// The result of checking a chip request's ARQC.
struct ChipCheck {
    /// A decline code when the ARQC does not verify (`05`), `None` when it does.
    code: Option<&'static str>,
    /// Builds the response's field 55 (`91` ARPC || ARC) for a response code.
    #[allow(clippy::type_complexity)]
    arpc_for: Option<Box<dyn Fn([u8; 2]) -> Option<Vec<u8>>>>,
}

/// Verifies the ARQC in field 55 with the simulator's issuer master key
/// ([`crate::card::TEST_IMK_AC`]); `None` when the request carries no chip data.
fn chip_check(msg: &Message) -> Option<ChipCheck> {
    let icc = msg.get(55)?.to_vec();
    let pan = msg
        .text(2)
        .and_then(|p| smartpos_types::Pan::new(p).ok())
        .or_else(|| {
            msg.text(35)
                .and_then(smartpos_types::Track2::new)
                .and_then(|t| t.pan())
        });
    let psn: Option<u8> = msg.text(23).and_then(|p| p.parse().ok());
    let (Some(pan), Some(psn)) = (pan, psn) else {
        return Some(ChipCheck {
            code: Some("05"),
            arpc_for: None,
        });
    };
    let imk = crate::card::TEST_IMK_AC;
    match crate::card::verify_arqc(&imk, &pan, psn, &icc) {
        Ok(arqc) => {
            let atc = smartpos_emv::tlv::parse(&icc)
                .ok()
                .and_then(|t| {
                    smartpos_emv::tlv::find_bytes(&t, smartpos_emv::tlv::Tag(0x9F36))
                        .map(<[u8]>::to_vec)
                })
                .and_then(|a| <[u8; 2]>::try_from(a.as_slice()).ok());
            let arpc_for = atc.map(|atc| {
                Box::new(move |arc: [u8; 2]| {
                    let a = crate::card::arpc(&imk, &pan, psn, atc, arqc, arc).ok()?;
                    let mut f = vec![0x91, 0x0A];
                    f.extend_from_slice(&a);
                    f.extend_from_slice(&arc);
                    Some(f)
                }) as Box<dyn Fn([u8; 2]) -> Option<Vec<u8>>>
            });
            Some(ChipCheck {
                code: None,
                arpc_for,
            })
        }
        Err(e) => {
            log::warn!("host: ARQC rejected: {e}");
            Some(ChipCheck {
                code: Some("05"),
                arpc_for: None,
            })
        }
    }
}

/// The PAN of a request: field 2, or from the track 2 in 35.
fn request_pan(msg: &Message) -> Option<smartpos_types::Pan> {
    msg.text(2)
        .and_then(|p| smartpos_types::Pan::new(p).ok())
        .or_else(|| {
            msg.text(35)
                .and_then(smartpos_types::Track2::new)
                .and_then(|t| t.pan())
        })
}

/// Whether the card's expiry (field 14, or the track 2 in 35) is before this month.
fn expired(msg: &Message) -> bool {
    let yymm = msg.text(14).map(str::to_owned).or_else(|| {
        msg.text(35)
            .and_then(smartpos_types::Track2::new)
            .and_then(|t| t.expiry().map(str::to_owned))
    });
    let Some(yymm) = yymm.and_then(|e| e.parse::<u32>().ok()) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let t = smartpos_txn::model::LocalDateTime::from_unix_ms_utc(now);
    let current = u32::from(t.year % 100) * 100 + u32::from(t.month);
    yymm < current
}

fn needs_mac(mti: Mti) -> bool {
    !(mti == Mti::NETWORK || mti == Mti::NETWORK_ADVICE)
}

/// All two-digit codes, so that [`decide`] can hand out any of them as `&'static str`.
const TWO_DIGITS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// The response code for an amount, per the table in the module documentation. Amounts from
/// 9900.00 to 9900.99 (990000 to 990099 minor units) answer the code in their last two digits,
/// so that a test can make the host produce any numeric response code. Amounts ending in `72`
/// approve (`00`); the caller adds the issuer script [`ISSUER_SCRIPT_72`] to a chip answer.
pub fn decide(amount: u64) -> &'static str {
    if (990_000..=990_099).contains(&amount) {
        let i = usize::try_from(amount - 990_000).unwrap_or(0) * 2;
        return TWO_DIGITS.get(i..i + 2).unwrap_or("96");
    }
    match amount % 100 {
        51 => "51",
        5 => "05",
        14 => "14",
        54 => "54",
        55 => "55",
        61 => "61",
        62 => "62",
        96 => "96",
        _ => "00",
    }
}

fn response_skeleton(req: &Message, mti: Mti) -> Message {
    let mut r = Message::new(mti);
    r.header = req.header.clone();
    for f in [3u8, 4, 11, 12, 13, 25, 41, 42, 49, 60, 61] {
        if let Some(v) = req.get(f) {
            r.set(f, v.to_vec());
        }
    }
    r
}

impl FrameHandler for Acquirer {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        self.handle_request(conn.faults, request)
            .into_iter()
            .collect()
    }
}

/// Writes `bytes` to `path` as a file readable by its owner only (0600 on Unix; a file that
/// exists keeps its contents replaced and its mode narrowed).
fn write_owner_only(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let mut f = o.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = o.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_table() {
        assert_eq!(decide(1234), "00");
        assert_eq!(decide(10051), "51");
        assert_eq!(decide(305), "05");
        assert_eq!(decide(196), "96");
        assert_eq!(decide(990_000), "00");
        assert_eq!(decide(990_057), "57");
        assert_eq!(decide(990_099), "99");
    }
}
