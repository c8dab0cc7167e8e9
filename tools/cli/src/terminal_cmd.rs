//! `smartpos terminal --data DIR <command>`: each command opens the journal, works, exits.

use crate::tool::{CmdError, CmdOutcome, ToolError};

/// What a terminal command returns.
pub type CmdResult = Result<serde_json::Value, CmdError>;
use clap::{Args, Subcommand};
use smartpos_emv::certified::EntryMode;
use smartpos_terminal::card::CardSource;
use smartpos_terminal::store::{DataDir, StoredConfig};
use smartpos_terminal::{Terminal, TerminalError, TxnOutcome};
use smartpos_txn::TxnIntent;
use smartpos_txn::engine::Outcome;
use smartpos_txn::model::TxnRecord;
use smartpos_txn::proto::CardData;
use smartpos_types::Pan;
use std::path::PathBuf;

/// What `smartpos terminal --help` says about exit codes and the outcome JSON.
const EXIT_CODES: &str = "\
Every command prints one JSON document on stdout. A money command's JSON (sale, preauth, balance,
void, cancel, refund, complete) carries `result`, `money_state` (charged, refunded, not_charged,
reversal_pending, unknown_resolving) and `diagnosis` (zh/en, null when approved).

Exit codes:
  0: done: the money moved as asked (or the command moves no money and did its work)
  1: error: the command failed; {\"error\": {code, money_state, message_zh, ...}} on stdout
  2: bad input (arguments, settings file): one line on stderr, nothing changed
  3: declined: declined by the host or the card, reversed, or not sent; no money moved
  4: resolving: outcome not settled yet, a reversal in progress or a refund queued; do not
     charge again, `recover` delivers it (and exits 4 while something is still pending)";

/// `smartpos terminal` arguments.
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct TerminalArgs {
    /// Data directory (settings, journal, development key store).
    #[arg(long)]
    data: PathBuf,
    #[command(subcommand)]
    command: TerminalCmd,
}

/// Terminal commands.
#[derive(Subcommand, Debug)]
pub enum TerminalCmd {
    /// Writes the terminal's settings and master key.
    Init {
        /// Host address host:port.
        #[arg(long)]
        host: String,
        /// cup or iso87b.
        #[arg(long, default_value = "cup")]
        dialect: String,
        /// Terminal id (8 characters).
        #[arg(long)]
        tid: String,
        /// Merchant id (15 characters).
        #[arg(long)]
        mid: String,
        /// Terminal master key (hex, double or triple length). Defaults to the TEST key.
        #[arg(long)]
        tmk: Option<String>,
        /// CA certificate (PEM) to trust: connects with TLS.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// Name the host certificate must carry (default: the host part of --host).
        #[arg(long)]
        tls_server_name: Option<String>,
        /// Mutual TLS: the terminal's client certificate (PEM or DER file, chain leaf first),
        /// presented when the host asks for one. Needs --tls-ca and --tls-client-key.
        #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_client_key"])]
        tls_client_cert: Option<PathBuf>,
        /// The client certificate's private key (PEM or DER; ECDSA P-256/P-384 or RSA). Copied
        /// into the development store (`secrets/tls_client_key`, 0600); terminal.json keeps
        /// only the certificate's path.
        #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
        tls_client_key: Option<PathBuf>,
        /// Response timeout in seconds.
        #[arg(long, default_value_t = 30)]
        response_timeout: u64,
        /// Connect timeout in seconds.
        #[arg(long, default_value_t = 10)]
        connect_timeout: u64,
        /// ISO 4217 numeric currency.
        #[arg(long, default_value = "156")]
        currency: String,
        /// Merchant name printed on receipts (without it, receipts print no name).
        #[arg(long)]
        merchant_name: Option<String>,
        /// The terminal's offset from UTC, e.g. +08:00 (fields 12/13, receipts, JSON times, the
        /// support bundle). Default: the machine's, as `date +%z` reports it (+00:00 when that
        /// fails). Kept as given: re-run init after a daylight-saving change.
        #[arg(long, value_name = "+HH:MM", value_parser = parse_offset_arg)]
        utc_offset: Option<i32>,
        /// Do not require a logged-in operator for financial commands (scripts, tests).
        #[arg(long)]
        no_login: bool,
        /// Acquirer profile file (TOML, docs/profiles.md) instead of the built-in --dialect.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The unlock secret shared with the acquirer's service desk (hex), kept in the
        /// development store (`secrets/unlock_secret`): `operator supervisor-unlock` needs it
        /// to check the desk's code. Without it a locked supervisor cannot be unlocked here.
        #[arg(long, value_name = "HEX")]
        unlock_secret: Option<String>,
        /// DUKPT profiles: the initial key loaded into the terminal (hex; dukpt-tdes: the
        /// 16-byte IPEK, dukpt-aes: the AES-128 initial key). Defaults to the scheme's TEST
        /// initial key, derived from the TEST BDK `smartpos host` uses.
        #[arg(long)]
        ipek: Option<String>,
        /// DUKPT profiles: the initial KSN (hex, counter zero; dukpt-tdes 10 bytes, dukpt-aes
        /// 12 bytes or the 8-byte initial key ID). Defaults to the TEST KSN of the scheme.
        #[arg(long)]
        ksn: Option<String>,
    },
    /// Signs in and downloads working keys.
    Signin {
        /// Operator code.
        #[arg(long, default_value = "01")]
        operator: String,
    },
    /// Signs off.
    Signoff,
    /// Echo test.
    Echo,
    /// A sale.
    Sale(SaleArgs),
    /// A pre-authorisation.
    Preauth(SaleArgs),
    /// A balance inquiry: prints field 54 decoded (`balances`: account type, amount type,
    /// currency, signed amount in minor units) and as received (`field54`).
    Balance(CardArgs),
    /// Voids a sale of the open batch.
    Void(RefArgs),
    /// Refunds (part of) an earlier sale, after the refund policy.
    Refund {
        #[command(flatten)]
        args: RefAmountArgs,
        /// Supervisor id approving the refund (must be 00).
        #[arg(long)]
        supervisor: Option<String>,
        /// The supervisor's password.
        #[arg(long)]
        supervisor_password: Option<String>,
    },
    /// Completes a pre-authorisation.
    Complete(RefAmountArgs),
    /// Cancels a pre-authorisation.
    Cancel(RefArgs),
    /// Settles the open batch.
    Settle,
    /// Delivers pending reversals and advices (signing in again once if the host asks: 97/A0);
    /// prints what is still pending and why (the host's last answer, or none).
    Recover,
    /// Lists the journal.
    Journal,
    /// Lists pending reversals and advices.
    Pending,
    /// Ends a reversal the host keeps refusing, after the supervisor settled it with the
    /// acquirer by phone: the supervisor's password approves it (a wrong one counts toward the
    /// supervisor's lock), the acquirer's reference is audited, the transaction becomes
    /// `reversal_resolved_by_supervisor` and sales are no longer blocked. Only for a reversal
    /// sent at least once. None of the supported dialects has a transaction status inquiry, so
    /// the host is not asked first (docs/messages.md).
    ResolveReversal {
        /// Reference of the transaction whose reversal is pending.
        #[arg(long = "ref")]
        reference: String,
        /// The supervisor's password.
        #[arg(long)]
        supervisor_password: String,
        /// The acquirer's reference for the settlement by phone (1-40 characters).
        #[arg(long)]
        acquirer_ref: String,
        /// A note for the audit log (up to 80 characters).
        #[arg(long)]
        note: Option<String>,
    },
    /// Renders a transaction's receipt from the journal (plain text on stdout).
    Receipt(ReceiptArgs),
    /// Logs an operator in (supervisor 00, cashiers 01-99). A first login with the default
    /// password must set a new one: pass --new-password.
    Login {
        /// Operator id.
        #[arg(long)]
        operator: String,
        /// Password.
        #[arg(long)]
        password: String,
        /// New password, for the forced change at first use.
        #[arg(long)]
        new_password: Option<String>,
    },
    /// Logs the current operator out.
    Logout,
    /// Operator management (supervisor only, except passwd).
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// What may be refunded on a transaction, and every rule that would deny it.
    RefundQuote {
        /// Reference of the original.
        #[arg(long = "ref")]
        reference: String,
    },
    /// The diagnosis for a host response code (zh/en, category, money state, next steps).
    Explain {
        /// Response code, e.g. 51 or A0.
        #[arg(long)]
        code: String,
        /// Transaction kind the code answered (refund wording differs).
        #[arg(long, default_value = "sale")]
        kind: String,
    },
    /// Exports configuration (no secrets), pending items, recent transactions, the masked host
    /// trace and the audit log as one JSON file for the acquirer's help desk.
    SupportBundle {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Changes the refund policy and operator settings from a JSON file that names only what
    /// it changes (`{"refund_policy": {"max_single_refund": 5000}}` keeps everything else;
    /// `policy show` prints the whole document in the same shape). The file is checked as a
    /// whole first: an unknown or malformed field is an error naming it (exit 2) and nothing
    /// changes. While login is required only the supervisor may change settings; turning login
    /// off is audited (`login_disabled`) and the output says so (`warning`). Prints the
    /// settings in force plus `changed`, the fields whose value changed.
    Settings {
        /// A JSON file with any of `require_login`, `refund_policy`, `operators`; omit to print.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// The refund policy and operator settings in force (`policy show`).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// EMV parameters (AIDs, limits, CA public keys): download from the host, show, set.
    #[command(subcommand)]
    Params(crate::params_cmd::ParamsCmd),
    /// For support only: replaces a journal the guard refused (missing, emptied, foreign or an
    /// old copy). The old file(s) are kept as `journal.db.lost-<unix-seconds>`; the new journal
    /// continues the STAN after the guard's reservation and opens the next batch. Sign in
    /// again afterwards. Do not run it without support: the old journal may hold pending
    /// reversals and advices.
    JournalReset {
        /// Required: confirms that support asked for the reset.
        #[arg(long)]
        confirm: bool,
    },
}

/// The refund policy.
#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Prints the refund policy and operator settings in force, as the JSON document that
    /// `settings --file` takes (edit it and pass it back to change them).
    Show,
}

/// Operator management.
#[derive(Subcommand, Debug)]
pub enum OperatorCmd {
    /// Adds a cashier with the default password 0000 (changed at first login).
    Add {
        /// Cashier id 01-99.
        #[arg(long)]
        id: String,
    },
    /// Unlocks a locked cashier.
    Unlock {
        /// Cashier id.
        #[arg(long)]
        id: String,
    },
    /// Resets a cashier's password to the default.
    Reset {
        /// Cashier id.
        #[arg(long)]
        id: String,
    },
    /// Removes a cashier.
    Delete {
        /// Cashier id.
        #[arg(long)]
        id: String,
    },
    /// Changes an operator's password.
    Passwd {
        /// Operator id.
        #[arg(long)]
        id: String,
        /// Current password.
        #[arg(long)]
        old: String,
        /// New password.
        #[arg(long)]
        new: String,
    },
    /// Lists operators (no password data).
    List,
    /// Locked (or forgotten) supervisor, step 1: prints the terminal id and an 8-digit
    /// challenge to read to the acquirer's service desk (valid 10 minutes, one use; a new one
    /// replaces it). Anyone may ask: the supervisor is the one who cannot log in.
    SupervisorChallenge,
    /// Locked (or forgotten) supervisor, step 2: checks the service desk's code against the
    /// challenge with the unlock secret given at `init --unlock-secret`, unlocks 00 and resets
    /// its password to 123456 with a forced change. A wrong code uses the challenge up. Both
    /// are audited.
    SupervisorUnlock {
        /// The 8-digit code the service desk computed.
        #[arg(long)]
        code: String,
    },
}

/// Receipt options.
#[derive(Args, Debug)]
pub struct ReceiptArgs {
    /// Reference of the transaction.
    #[arg(long = "ref")]
    pub reference: String,
    /// merchant or customer copy.
    #[arg(long, default_value = "merchant", value_parser = ["merchant", "customer"])]
    copy: String,
    /// Paper width in columns: 32 (58 mm) or 48 (80 mm).
    #[arg(long, default_value = "32", value_parser = ["32", "48"])]
    width: String,
    /// Label language: zh or en (default: zh for cup, en otherwise).
    #[arg(long, value_parser = ["zh", "en"])]
    lang: Option<String>,
    /// Also write the ESC/POS bytes to FILE.
    #[arg(long)]
    escpos: Option<PathBuf>,
    /// Mark it as a reprint.
    #[arg(long)]
    reprint: bool,
}

/// Card options (keyed entry until the contactless path is wired).
#[derive(Args, Debug)]
pub struct CardArgs {
    /// Card number (keyed entry). Default: a UnionPay TEST card.
    #[arg(long, default_value = "6222021234567890128")]
    pan: String,
    /// Expiry YYMM.
    #[arg(long, default_value = "3012")]
    expiry: String,
}

/// Sale / pre-auth options.
#[derive(Args, Debug)]
pub struct SaleArgs {
    /// Amount in minor units (fen / cents).
    #[arg(long)]
    amount: u64,
    /// Idempotency key: the same key returns the recorded outcome and never charges twice.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Operator code.
    #[arg(long, default_value = "01")]
    operator: String,
    #[command(flatten)]
    card: CardArgs,
    /// Tap a simulated contactless card instead of keying one: visa, mastercard, unionpay,
    /// expired, pin (asks for a PIN), pulled (leaves the field mid-read).
    #[arg(long = "card", value_name = "NAME", value_parser = ["visa", "mastercard", "unionpay", "expired", "pin", "pulled"])]
    tap: Option<String>,
    /// How the simulated card is presented: `nfc` (tapped on the terminal's own contactless
    /// kernel), `reader` (tapped on an mPOS Bluetooth reader: a simulated reader over an
    /// in-memory link), `chip` (inserted) or `swipe` (swiped) through the simulated certified
    /// kernel of a smart POS (`--card visa|mastercard|unionpay`).
    #[arg(long, default_value = "nfc", value_parser = ["nfc", "reader", "chip", "swipe"])]
    via: String,
    /// `decline`: the inserted card declines at its second GENERATE AC although the host
    /// approves (the approval is reversed).
    #[arg(long, value_name = "DECISION", value_parser = ["decline"])]
    card_decides: Option<String>,
    /// The card's chip cannot be read: `--via swipe` becomes a fallback (field 22 `80x`),
    /// `--via chip` fails.
    #[arg(long)]
    chip_fails: bool,
    /// PIN digits typed on the (simulated) PIN pad when the card asks for one.
    #[arg(long)]
    pin: Option<String>,
}

/// `--utc-offset`: `+08:00` (also `+0800`, `Z`) as minutes.
fn parse_offset_arg(text: &str) -> Result<i32, String> {
    smartpos_txn::model::parse_utc_offset(text)
}

/// The machine's current offset from UTC, as `date +%z` prints it (`+0800`); `None` when
/// that fails. The CLI only: an app passes the device's offset in its configuration.
pub fn machine_utc_offset() -> Option<i32> {
    let out = std::process::Command::new("date")
        .arg("+%z")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    smartpos_txn::model::parse_utc_offset(text.trim()).ok()
}

/// A PIN pad that returns fixed digits (CLI and demo only).
struct FixedPin(Option<String>);

impl smartpos_terminal::card::PinEntry for FixedPin {
    fn pin(&mut self, _masked_pan: &str, _amount: u64) -> smartpos_terminal::card::PinInput {
        use smartpos_terminal::card::PinInput;
        match self
            .0
            .take()
            .map(|d| smartpos_crypto::pinblock::Pin::new(&d))
        {
            Some(Ok(p)) => PinInput::Digits(p),
            _ => PinInput::Cancelled,
        }
    }
}

/// Builds the simulated card for `--card`.
pub fn sim_card(name: &str) -> Result<smartpos_sim::card::SimCard, ToolError> {
    use smartpos_sim::card::{CardProfile, SimCard};
    let profile = match name {
        "visa" => CardProfile::Visa,
        "mastercard" => CardProfile::Mastercard,
        "unionpay" => CardProfile::UnionPay,
        "expired" => CardProfile::Expired,
        "pin" => CardProfile::PinRequired,
        _ => CardProfile::PulledAway { after_apdus: 2 },
    };
    SimCard::new(profile).map_err(|e| ToolError(format!("simulated card: {e}")))
}

/// The simulated mPOS reader for `--via reader`: a [`smartpos_sim::reader::SimReader`]
/// holding `card` on its own thread, joined to a
/// [`smartpos_terminal::reader::ReaderTransport`] by in-memory channels without faults. The
/// reader shows "PRESENT CARD", activates the card and beeps before the kernel starts.
fn sim_reader(
    card: smartpos_sim::card::SimCard,
) -> Result<smartpos_terminal::reader::ReaderTransport, ToolError> {
    use smartpos_sim::reader::{LossyChannel, SimReader, SimReaderConfig, spawn_reader};
    use smartpos_terminal::reader::{ChunkSender, LinkConfig, ReaderTransport};
    use std::sync::{Arc, Mutex};
    let slot: Arc<Mutex<Option<ChunkSender>>> = Arc::default();
    let notify = slot.clone();
    let (ble, _thread) = spawn_reader(
        SimReader::new(SimReaderConfig::default(), card),
        LossyChannel::perfect(1),
        LossyChannel::perfect(1),
        Box::new(move |chunk: &[u8]| {
            if let Ok(guard) = notify.lock()
                && let Some(sender) = guard.as_ref()
            {
                sender.push(chunk);
            }
        }),
    );
    let (mut transport, sender) = ReaderTransport::new(Box::new(ble), LinkConfig::default())
        .map_err(|e| ToolError(format!("card reader: {e}")))?;
    *slot
        .lock()
        .map_err(|_| ToolError("card reader: notification slot poisoned".into()))? = Some(sender);
    let reader_err =
        |e: smartpos_terminal::reader::ReaderError| ToolError(format!("card reader: {e}"));
    transport.display_text("PRESENT CARD").map_err(reader_err)?;
    if transport.poll_card().map_err(reader_err)?.is_none() {
        return Err(ToolError("card reader: no card in the field".into()));
    }
    transport.beep(100).map_err(reader_err)?;
    Ok(transport)
}

async fn card_sale(t: &mut Terminal, kind: &str, a: &SaleArgs, tap: &str) -> CmdResult {
    if a.via == "chip" || a.via == "swipe" {
        return certified_sale(t, kind, a, tap).await;
    }
    if a.card_decides.is_some() || a.chip_fails {
        return Err(ToolError(
            "--card-decides and --chip-fails need --via chip or --via swipe".into(),
        )
        .into());
    }
    let card = sim_card(tap)?;
    let mut pad = FixedPin(a.pin.clone());
    let mut nfc_card;
    let mut reader;
    let card: &mut dyn smartpos_terminal::card::ApduTransport = if a.via == "reader" {
        reader = sim_reader(card)?;
        &mut reader
    } else {
        nfc_card = card;
        &mut nfc_card
    };
    let source = CardSource::OwnKernel {
        transport: card,
        pin: Some(&mut pad),
    };
    let o = t
        .transact(sale_intent(kind, a)?, source)
        .await
        .map_err(err)?;
    card_outcome_json(&o, a)
}

/// The intent of `sale` / `preauth`.
fn sale_intent(kind: &str, a: &SaleArgs) -> Result<TxnIntent, ToolError> {
    let base = if kind == "preauth" {
        TxnIntent::preauth(a.amount)
    } else {
        TxnIntent::sale(a.amount)
    };
    base.key_text(a.idempotency_key.as_deref())
        .and_then(|i| i.operator_text(Some(&a.operator)))
        .map_err(|e| ToolError(e.to_string()))
}

/// A sale or pre-authorisation through the simulated certified kernel of a smart POS.
async fn certified_sale(t: &mut Terminal, kind: &str, a: &SaleArgs, name: &str) -> CmdResult {
    use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
    let scheme: SimScheme = name.parse().map_err(|_| {
        ToolError(format!(
            "--via {} takes --card visa, mastercard or unionpay",
            a.via
        ))
    })?;
    let via = if a.via == "chip" {
        Presentation::Chip
    } else {
        Presentation::Swipe
    };
    let behaviour = SimBehaviour {
        decline_at_second_ac: a.card_decides.is_some(),
        chip_unreadable: a.chip_fails,
        pin_on_pin_pad: a.pin.is_some(),
        ..SimBehaviour::default()
    };
    let mut kernel = SimCertifiedKernel::new(scheme, via, behaviour)
        .map_err(|e| ToolError(format!("simulated card: {e}")))?;
    let mut pad = FixedPin(a.pin.clone());
    let source = CardSource::Certified {
        kernel: &mut kernel,
        pin: Some(&mut pad),
    };
    let o = t
        .transact(sale_intent(kind, a)?, source)
        .await
        .map_err(err)?;
    card_outcome_json(&o, a)
}

/// The outcome of a card sale, with how the card was read and what it did.
fn card_outcome_json(o: &TxnOutcome, a: &SaleArgs) -> CmdResult {
    let mut v = outcome_json(o);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("via".into(), serde_json::json!(a.via));
    }
    if let (Some(obj), Some(c)) = (v.as_object_mut(), o.card.as_ref()) {
        obj.insert("declined_by_card".into(), c.declined_by_card.into());
        obj.insert(
            "card".into(),
            serde_json::json!({
                "aid": c.info.aid,
                "label": c.info.label,
                "tvr": c.info.tvr,
                "tsi": c.info.tsi,
                "cryptogram": format!("{} {}", c.info.cryptogram_type, c.info.cryptogram),
                "cvm": c.info.cvm,
                "card_in_field_ms": c.info.in_field_ms,
                "arpc_received": c.arpc_received,
            }),
        );
    }
    Ok(v)
}

/// Options of commands on an earlier transaction.
#[derive(Args, Debug)]
pub struct RefArgs {
    /// Reference of the original transaction.
    #[arg(long = "ref")]
    reference: String,
    /// Idempotency key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Operator code.
    #[arg(long, default_value = "01")]
    operator: String,
}

/// Options of refund and completion.
#[derive(Args, Debug)]
pub struct RefAmountArgs {
    /// Reference of the original transaction.
    #[arg(long = "ref")]
    reference: String,
    /// Amount in minor units.
    #[arg(long)]
    amount: u64,
    /// Idempotency key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Operator code.
    #[arg(long, default_value = "01")]
    operator: String,
}

fn card(args: &CardArgs) -> Result<CardData, ToolError> {
    let pan = Pan::new(&args.pan).map_err(|e| ToolError(format!("--pan: {e}")))?;
    if args.expiry.len() != 4 || !args.expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ToolError("--expiry must be YYMM".into()));
    }
    Ok(CardData {
        pan: Some(pan),
        expiry: Some(args.expiry.clone()),
        entry_mode: "012".into(),
        ..CardData::default()
    })
}

/// A balance inquiry's field 54, decoded (`smartpos_txn::balance`, ISO 8583:1987 additional
/// amounts): `balances` (one entry per 20-character set: account type, amount type and its name,
/// currency, signed amount in minor units) and `field54` as received. A field that does not
/// decode gives `balances: null` and `balances_error`.
fn balances_json(f54: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    match smartpos_txn::balance::parse_additional_amounts(f54) {
        Ok(sets) => {
            let list = sets
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "account_type": a.account_type,
                        "type": a.amount_type,
                        "type_name": a.amount_type_name(),
                        "currency": format!("{:03}", a.currency),
                        "amount": a.amount,
                    })
                })
                .collect();
            out.insert("balances".into(), serde_json::Value::Array(list));
        }
        Err(e) => {
            out.insert("balances".into(), serde_json::Value::Null);
            out.insert("balances_error".into(), e.to_string().into());
        }
    }
    out.insert("field54".into(), f54.into());
    out
}

/// The JSON form of a journal record.
pub fn record_json(r: &TxnRecord, pending: bool) -> serde_json::Value {
    serde_json::json!({
        "reference": r.reference,
        "kind": r.kind.as_str(),
        "amount": r.amount,
        "state": r.state.as_str(),
        "stan": r.stan,
        "batch": r.batch,
        "rrn": r.rrn,
        "auth_code": r.auth_code,
        "response_code": r.response_code.as_deref(),
        "original": r.original_ref,
        "pan": r.pan_masked,
        "pending": pending,
        "local_time": r.local_time_text(),
    })
}

/// The JSON form of a transaction outcome.
pub fn outcome_json(o: &TxnOutcome) -> serde_json::Value {
    let mut v = record_json(&o.record, o.reversal_pending);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("replayed".into(), o.replayed.into());
        let entry = o
            .record
            .entry_mode
            .as_deref()
            .and_then(EntryMode::from_pos_entry_mode);
        obj.insert("entry_mode".into(), entry.map(EntryMode::as_str).into());
        if let Some(c) = &o.card {
            obj.insert("aid".into(), c.info.aid.clone().into());
            if c.info.cryptogram_type == "TC" {
                obj.insert("tc".into(), c.info.cryptogram.clone().into());
            }
        }
        if let Some(code) = &o.record.response_code {
            let meaning = smartpos_iso8583::ResponseCode::parse(code).and_then(|c| c.meaning());
            obj.insert("response_meaning".into(), meaning.into());
        }
        let diagnosis = smartpos_terminal::safety::outcome_diagnosis(o);
        let money = smartpos_terminal::safety::outcome_money_state(o);
        obj.insert("money_state".into(), money.as_str().into());
        obj.insert(
            "diagnosis".into(),
            diagnosis.as_ref().map_or(
                serde_json::Value::Null,
                smartpos_terminal::safety::diagnosis_json,
            ),
        );
        obj.insert(
            "result".into(),
            outcome_class(diagnosis.is_none(), money).as_str().into(),
        );
    }
    v
}

/// The [`CmdOutcome`] of a money command: done when nothing needs explaining and no money is
/// in doubt; resolving while a reversal waits or the outcome is not settled; declined
/// otherwise (declined, reversed, not sent: no money moved).
fn outcome_class(approved: bool, money: smartpos_diagnosis::MoneyState) -> CmdOutcome {
    use smartpos_diagnosis::MoneyState;
    match money {
        MoneyState::ReversalPending | MoneyState::UnknownResolving => CmdOutcome::Resolving,
        _ if approved => CmdOutcome::Done,
        _ => CmdOutcome::Declined,
    }
}

pub(crate) fn err(e: TerminalError) -> CmdError {
    if let TerminalError::Config(m) = &e {
        return CmdError::Input(ToolError(m.clone()));
    }
    let mut error = smartpos_terminal::safety::diagnosis_json(&e.diagnosis());
    if let (Some(obj), TerminalError::RefundDenied { denials }) = (error.as_object_mut(), &e) {
        obj.insert(
            "denials".into(),
            denials
                .iter()
                .map(smartpos_terminal::safety::denial_json)
                .collect(),
        );
    }
    if let Some(obj) = error.as_object_mut() {
        obj.insert("message".into(), e.to_string().into());
    }
    CmdError::Failed {
        message: e.to_string(),
        error,
    }
}

/// `init` of a DUKPT profile: loads the initial key (`--ipek`, `--ksn`, or the scheme's TEST
/// values) into the secure store. Returns what was loaded for the JSON answer (scheme, KSN and
/// where they came from; never the key), `null` for profiles without DUKPT.
fn init_dukpt(
    dir: &DataDir,
    profile: Option<&std::path::Path>,
    ipek: Option<&str>,
    ksn: Option<&str>,
) -> CmdResult {
    let scheme = match profile {
        Some(p) => crate::host_cmd::load_profile(p)?
            .keys
            .dukpt()
            .map(|d| d.scheme),
        None => None,
    };
    let Some(scheme) = scheme else {
        if ipek.is_some() || ksn.is_some() {
            return Err(ToolError("--ipek/--ksn: the profile has no DUKPT scheme".into()).into());
        }
        return Ok(serde_json::Value::Null);
    };
    let (test_key, test_ksn) = smartpos_sim::keys::test_initial_key(scheme);
    let key_hex = ipek.unwrap_or(test_key);
    let ksn_hex = ksn.unwrap_or(test_ksn);
    let key = smartpos_terminal::store::Zeroizing::new(
        smartpos_types::hex::decode(key_hex).map_err(|e| ToolError(format!("--ipek: {e}")))?,
    );
    let ksn_bytes =
        smartpos_types::hex::decode(ksn_hex).map_err(|e| ToolError(format!("--ksn: {e}")))?;
    smartpos_terminal::dukpt_store::load_initial_key(&dir.store(), scheme, &key, &ksn_bytes)
        .map_err(err)?;
    Ok(serde_json::json!({
        "scheme": scheme.name(),
        "initial_ksn": smartpos_types::hex::encode(&ksn_bytes),
        "initial_key_from": if ipek.is_some() { "--ipek" } else { "TEST initial key" },
    }))
}

/// Runs one terminal command.
pub fn run(args: TerminalArgs) -> CmdResult {
    let dir = DataDir::new(&args.data);
    if let TerminalCmd::Init {
        host,
        dialect,
        tid,
        mid,
        tmk,
        tls_ca,
        tls_server_name,
        tls_client_cert,
        tls_client_key,
        response_timeout,
        connect_timeout,
        currency,
        merchant_name,
        no_login,
        profile,
        utc_offset,
        unlock_secret,
        ipek,
        ksn,
    } = &args.command
    {
        let (utc_offset_minutes, utc_offset_from) = match utc_offset {
            Some(m) => (*m, "--utc-offset"),
            None => match machine_utc_offset() {
                Some(m) => (m, "machine (date +%z)"),
                None => (0, "default (the machine's offset is unknown)"),
            },
        };
        let cfg = StoredConfig {
            host: host.clone(),
            dialect: dialect.clone(),
            tid: tid.clone(),
            mid: mid.clone(),
            currency: currency.clone(),
            tls_ca: tls_ca.clone(),
            tls_server_name: tls_server_name.clone(),
            tls_pin_sha256: None,
            tls_client_cert: tls_client_cert.clone(),
            connect_timeout_ms: connect_timeout.saturating_mul(1000),
            response_timeout_ms: response_timeout.saturating_mul(1000),
            utc_offset_minutes,
            merchant_name: merchant_name.clone(),
            profile: profile.clone(),
        };
        let tmk = crate::host_cmd::tmk_arg(tmk.as_deref())?;
        let unlock_secret = unlock_secret
            .as_deref()
            .map(|h| {
                smartpos_types::hex::decode(h)
                    .ok()
                    .filter(|b| !b.is_empty())
                    .map(smartpos_terminal::store::Zeroizing::new)
                    .ok_or_else(|| ToolError("--unlock-secret: must be hex digits".into()))
            })
            .transpose()?;
        // The client key is read and checked against the certificate before anything is
        // written; it goes into the store, terminal.json names only the certificate.
        let client_key = match (tls_client_cert, tls_client_key) {
            (Some(cert), Some(key)) => {
                let key = std::fs::read(key)
                    .map(smartpos_terminal::store::Zeroizing::new)
                    .map_err(|e| {
                        ToolError(format!(
                            "--tls-client-key: cannot read {}: {}",
                            key.display(),
                            e.kind()
                        ))
                    })?;
                let chain = std::fs::read(cert).map_err(|e| {
                    ToolError(format!(
                        "--tls-client-cert: cannot read {}: {}",
                        cert.display(),
                        e.kind()
                    ))
                })?;
                smartpos_terminal::link::ClientIdentity::new(&chain, &key)
                    .map_err(|e| ToolError(format!("--tls-client-cert/--tls-client-key: {e}")))?;
                Some(key)
            }
            _ => None,
        };
        dir.init(&cfg, tmk.expose()).map_err(err)?;
        if let Some(key) = &client_key {
            use smartpos_terminal::store::SecureStore;
            dir.store()
                .put(smartpos_terminal::store::TLS_CLIENT_KEY, key)
                .map_err(|e| ToolError(format!("--tls-client-key: {e}")))?;
        }
        if let Some(secret) = &unlock_secret {
            use smartpos_terminal::store::SecureStore;
            dir.store()
                .put(UNLOCK_SECRET, secret)
                .map_err(|e| ToolError(format!("--unlock-secret: {e}")))?;
        }
        let dukpt = init_dukpt(&dir, profile.as_deref(), ipek.as_deref(), ksn.as_deref())?;
        // Open once so the journal exists and the settings are proven usable.
        let mut t = dir.open().map_err(err)?;
        let mut settings = t.admin().safety_settings().clone();
        settings.require_login = !no_login;
        t.admin().set_safety_settings(settings).map_err(err)?;
        return Ok(serde_json::json!({
            "initialised": args.data.display().to_string(),
            "tid": cfg.tid,
            "dialect": cfg.dialect,
            "batch": t.batch(),
            "require_login": !no_login,
            "utc_offset": smartpos_txn::model::utc_offset_text(utc_offset_minutes),
            "utc_offset_from": utc_offset_from,
            "dukpt": dukpt,
        }));
    }
    if let TerminalCmd::JournalReset { confirm } = &args.command {
        if !confirm {
            return Err(ToolError(
                "journal-reset replaces the journal (the old one may hold pending reversals and advices): run it only when support asks, with --confirm".into(),
            )
            .into());
        }
        let r = dir.reset_journal().map_err(err)?;
        return Ok(serde_json::json!({
            "journal_reset": true,
            "journal_id": r.journal_id,
            "moved": r.moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "stan": r.stan,
            "batch": r.batch,
            "generation": r.generation,
        }));
    }
    let mut t = dir.open().map_err(err)?;
    if let TerminalCmd::Operator(OperatorCmd::SupervisorUnlock { code }) = &args.command {
        return supervisor_unlock(&mut t, &dir, code);
    }
    let merchant_name = dir.config().map_err(err)?.merchant_name;
    if let TerminalCmd::Receipt(r) = &args.command {
        return receipt(&mut t, merchant_name, r);
    }
    let rt = crate::runtime()?;
    rt.block_on(async move { run_open(&mut t, args.command).await })
}

/// The name of the service desk's unlock secret in the development store.
const UNLOCK_SECRET: &str = "unlock_secret";

/// `operator supervisor-unlock`: the desk's code checked with the secret from the store.
fn supervisor_unlock(t: &mut Terminal, dir: &DataDir, code: &str) -> CmdResult {
    use smartpos_terminal::store::SecureStore;
    let secret = dir
        .store()
        .get(UNLOCK_SECRET)
        .map_err(ToolError)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ToolError(format!(
                "no unlock secret in {}: the service desk shares one when the terminal is set up (init --unlock-secret HEX)",
                dir.store_path().display()
            ))
        })?;
    t.operators()
        .unlock_supervisor(code, &secret)
        .map_err(|e| match e {
            TerminalError::Config(m) => {
                ToolError(format!("{m}: operator supervisor-challenge")).into()
            }
            e => err(e),
        })?;
    Ok(serde_json::json!({
        "unlocked": smartpos_operators::SUPERVISOR_ID,
        "password": "default",
        "must_change_password": true,
    }))
}

fn receipt(t: &mut Terminal, merchant_name: Option<String>, r: &ReceiptArgs) -> CmdResult {
    use smartpos_receipt::{Lang, MerchantInfo, ReceiptCopy, Width};
    use smartpos_terminal::printing::ReceiptSettings;
    let cfg = t.config().clone();
    t.receipts().set_receipt_settings(ReceiptSettings {
        merchant: MerchantInfo {
            // None configured: the slip prints no name (not the merchant id).
            name: merchant_name.unwrap_or_default(),
            merchant_id: cfg.mid.clone(),
            terminal_id: cfg.tid.clone(),
        },
        width: if r.width == "48" {
            Width::W48
        } else {
            Width::W32
        },
        lang: match r.lang.as_deref() {
            Some("zh") => Lang::Zh,
            Some(_) => Lang::En,
            None if cfg
                .builtin_dialect()
                .is_some_and(smartpos_iso8583::BuiltInDialect::is_unionpay) =>
            {
                Lang::Zh
            }
            None => Lang::En,
        },
    });
    let copy = if r.copy == "customer" {
        ReceiptCopy::Customer
    } else {
        ReceiptCopy::Merchant
    };
    let job = t
        .receipts()
        .receipt(&r.reference, copy, r.reprint)
        .map_err(err)?;
    if let Some(path) = &r.escpos {
        std::fs::write(path, &job.escpos)
            .map_err(|e| ToolError(format!("cannot write {}: {}", path.display(), e.kind())))?;
    }
    for line in &job.lines {
        println!("{line}");
    }
    Ok(serde_json::Value::Null)
}

async fn run_open(t: &mut Terminal, cmd: TerminalCmd) -> CmdResult {
    let out = match cmd {
        TerminalCmd::Init { .. } | TerminalCmd::Receipt(_) | TerminalCmd::JournalReset { .. } => {
            return Err(ToolError("already handled".into()).into());
        }
        TerminalCmd::Params(p) => return crate::params_cmd::run(t, p).await,
        TerminalCmd::Signin { operator } => {
            let batch = t.admin().sign_in(&operator).await.map_err(err)?;
            serde_json::json!({ "signed_in": true, "batch": batch })
        }
        TerminalCmd::Signoff => {
            t.admin().sign_off().await.map_err(err)?;
            serde_json::json!({ "signed_off": true })
        }
        TerminalCmd::Echo => {
            t.admin().echo().await.map_err(err)?;
            serde_json::json!({ "echo": "ok" })
        }
        TerminalCmd::Sale(a) if a.tap.is_some() => {
            let tap = a.tap.clone().unwrap_or_default();
            card_sale(t, "sale", &a, &tap).await?
        }
        TerminalCmd::Preauth(a) if a.tap.is_some() => {
            let tap = a.tap.clone().unwrap_or_default();
            card_sale(t, "preauth", &a, &tap).await?
        }
        TerminalCmd::Sale(a) | TerminalCmd::Preauth(a)
            if a.via == "chip" || a.via == "swipe" || a.card_decides.is_some() || a.chip_fails =>
        {
            return Err(ToolError(
                "--via chip/swipe, --card-decides and --chip-fails take --card visa, mastercard or unionpay"
                    .into(),
            )
            .into());
        }
        TerminalCmd::Sale(a) => {
            let c = card(&a.card)?;
            let i = sale_intent("sale", &a)?;
            outcome_json(&t.transact(i, CardSource::Given(c)).await.map_err(err)?)
        }
        TerminalCmd::Preauth(a) => {
            let c = card(&a.card)?;
            let i = sale_intent("preauth", &a)?;
            outcome_json(&t.transact(i, CardSource::Given(c)).await.map_err(err)?)
        }
        TerminalCmd::Balance(c) => {
            let c = card(&c)?;
            let o = t
                .transact(TxnIntent::balance(), CardSource::Given(c))
                .await
                .map_err(err)?;
            let mut v = outcome_json(&o);
            if let (Some(obj), Some(f54)) = (
                v.as_object_mut(),
                o.reply.as_ref().and_then(|r| r.balance.as_deref()),
            ) {
                obj.extend(balances_json(f54));
            }
            v
        }
        TerminalCmd::Void(a) => outcome_json(
            &t.void(
                &a.reference,
                a.idempotency_key.as_deref(),
                Some(&a.operator),
            )
            .await
            .map_err(err)?,
        ),
        TerminalCmd::Cancel(a) => outcome_json(
            &t.cancel_preauth(
                &a.reference,
                a.idempotency_key.as_deref(),
                Some(&a.operator),
            )
            .await
            .map_err(err)?,
        ),
        TerminalCmd::Refund {
            args: a,
            supervisor,
            supervisor_password,
        } => {
            if supervisor.as_deref().is_some_and(|s| s != "00") {
                return Err(ToolError("--supervisor must be 00".into()).into());
            }
            let approval = supervisor_password.map(|p| smartpos_terminal::safety::Approval {
                password: smartpos_operators::Password::new(p),
            });
            outcome_json(
                &t.refund_checked(
                    &a.reference,
                    a.amount,
                    a.idempotency_key.as_deref(),
                    Some(&a.operator),
                    approval,
                )
                .await
                .map_err(err)?,
            )
        }
        TerminalCmd::Login { .. }
        | TerminalCmd::Logout
        | TerminalCmd::Operator(_)
        | TerminalCmd::RefundQuote { .. }
        | TerminalCmd::Explain { .. }
        | TerminalCmd::SupportBundle { .. }
        | TerminalCmd::Policy(_)
        | TerminalCmd::Settings { .. }
        | TerminalCmd::ResolveReversal { .. } => return local(t, cmd),
        TerminalCmd::Complete(a) => outcome_json(
            &t.complete(
                &a.reference,
                a.amount,
                a.idempotency_key.as_deref(),
                Some(&a.operator),
            )
            .await
            .map_err(err)?,
        ),
        TerminalCmd::Settle => match t.settle().await.map_err(err)? {
            Outcome::Settled {
                batch,
                balanced,
                totals,
                uploaded,
            } => serde_json::json!({
                "settled_batch": batch,
                "balanced": balanced,
                "uploaded": uploaded,
                "debit_count": totals.debit_count,
                "debit_amount": totals.debit_amount,
                "credit_count": totals.credit_count,
                "credit_amount": totals.credit_amount,
                "next_batch": t.batch(),
            }),
            other => serde_json::json!({ "outcome": format!("{other:?}") }),
        },
        TerminalCmd::Recover => {
            let (delivered, remaining) = t.recover().await.map_err(err)?;
            let still: Vec<serde_json::Value> = t
                .pending()
                .iter()
                .filter(|p| p.armed)
                .map(|p| pending_reason_json(t, p))
                .collect();
            let result = if remaining == 0 {
                CmdOutcome::Done
            } else {
                CmdOutcome::Resolving
            };
            serde_json::json!({ "delivered": delivered, "remaining": remaining, "pending": still,
                "result": result.as_str() })
        }
        TerminalCmd::Journal => {
            let recs = t.journal().all().map_err(|e| ToolError(e.to_string()))?;
            let arr: Vec<serde_json::Value> = recs
                .iter()
                .map(|r| record_json(r, t.support().in_doubt(r) || pending_for(t, r)))
                .collect();
            serde_json::Value::Array(arr)
        }
        TerminalCmd::Pending => {
            let arr: Vec<serde_json::Value> = t
                .pending()
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "seq": p.seq,
                        "kind": p.kind.as_str(),
                        "reference": p.reference,
                        "reason": p.reason.map(|r| r.code()),
                        "attempts": p.attempts,
                        "armed": p.armed,
                    })
                })
                .collect();
            serde_json::Value::Array(arr)
        }
    };
    t.disconnect().await;
    Ok(out)
}

/// Commands that need no host: operators, quotes, explanations, support bundle, settings,
/// policy.
fn local(t: &mut Terminal, cmd: TerminalCmd) -> CmdResult {
    use smartpos_operators::LoginResult;
    Ok(match cmd {
        TerminalCmd::Login {
            operator,
            password,
            new_password,
        } => match t.operators().login(&operator, &password).map_err(err)? {
            LoginResult::LoggedIn(s) => {
                serde_json::json!({"logged_in": s.operator, "role": s.role})
            }
            LoginResult::MustChangePassword { operator } => match new_password {
                Some(new) => {
                    let s = t
                        .operators()
                        .change_password(&operator, &password, &new)
                        .map_err(err)?;
                    serde_json::json!({"logged_in": s.operator, "role": s.role, "password_changed": true})
                }
                None => {
                    return Err(ToolError(format!(
                        "operator {operator} must change the default password: add --new-password"
                    ))
                    .into());
                }
            },
        },
        TerminalCmd::ResolveReversal {
            reference,
            supervisor_password,
            acquirer_ref,
            note,
        } => {
            let approval = smartpos_terminal::safety::Approval {
                password: smartpos_operators::Password::new(supervisor_password),
            };
            let r = t
                .admin()
                .resolve_reversal(&reference, &approval, &acquirer_ref, note.as_deref())
                .map_err(err)?;
            serde_json::json!({
                "reference": r.reference,
                "state": r.state.as_str(),
                "acquirer_ref": acquirer_ref.trim(),
                "pending": t.pending().len(),
            })
        }
        TerminalCmd::Logout => {
            t.operators().logout().map_err(err)?;
            serde_json::json!({"logged_out": true})
        }
        TerminalCmd::Operator(op) => match op {
            OperatorCmd::Add { id } => {
                t.operators().add_cashier(&id).map_err(err)?;
                serde_json::json!({"added": id})
            }
            OperatorCmd::Unlock { id } => {
                t.operators().unlock_cashier(&id).map_err(err)?;
                serde_json::json!({"unlocked": id})
            }
            OperatorCmd::Reset { id } => {
                t.operators().reset_cashier_password(&id).map_err(err)?;
                serde_json::json!({"reset": id})
            }
            OperatorCmd::Delete { id } => {
                t.operators().delete_cashier(&id).map_err(err)?;
                serde_json::json!({"deleted": id})
            }
            OperatorCmd::Passwd { id, old, new } => {
                t.operators()
                    .change_password(&id, &old, &new)
                    .map_err(err)?;
                serde_json::json!({"password_changed": id})
            }
            OperatorCmd::SupervisorChallenge => {
                let challenge = t.operators().supervisor_unlock_challenge().map_err(err)?;
                let ttl = t
                    .admin()
                    .safety_settings()
                    .operators
                    .unlock_challenge_ttl_ms;
                serde_json::json!({
                    "terminal_id": t.config().tid,
                    "challenge": challenge,
                    "valid_for_s": ttl / 1000,
                })
            }
            OperatorCmd::SupervisorUnlock { .. } => {
                return Err(ToolError("already handled".into()).into());
            }
            OperatorCmd::List => serde_json::Value::Array(
                t.operators()
                    .list()
                    .map(|r| {
                        serde_json::json!({"id": r.id, "role": r.role, "locked": r.locked,
                            "must_change": r.must_change, "failed_attempts": r.failed_attempts})
                    })
                    .collect(),
            ),
        },
        TerminalCmd::RefundQuote { reference } => {
            let q = t.operators().refund_quote(&reference).map_err(err)?;
            serde_json::json!({
                "reference": reference,
                "refundable_remainder": q.refundable_remainder,
                "fee": q.fee,
                "max_amount_now": q.max_amount_now,
                "needs_supervisor": q.needs_supervisor,
                "denials": q.denials.iter().map(smartpos_terminal::safety::denial_json).collect::<Vec<_>>(),
            })
        }
        TerminalCmd::Explain { code, kind } => {
            let kind = smartpos_txn::TxnKind::parse(&kind)
                .ok_or_else(|| ToolError(format!("unknown kind {kind:?}")))?;
            smartpos_terminal::safety::diagnosis_json(&smartpos_diagnosis::for_response_code(
                &code, kind,
            ))
        }
        TerminalCmd::SupportBundle { out } => {
            let bundle = t.support().support_bundle().map_err(err)?;
            let text = serde_json::to_vec_pretty(&bundle).map_err(|e| ToolError(e.to_string()))?;
            std::fs::write(&out, text)
                .map_err(|e| ToolError(format!("cannot write {}: {}", out.display(), e.kind())))?;
            serde_json::json!({"written": out.display().to_string()})
        }
        TerminalCmd::Settings { file } => {
            let Some(f) = file else {
                return serde_json::to_value(t.admin().safety_settings())
                    .map_err(|e| ToolError(e.to_string()).into());
            };
            let text = std::fs::read_to_string(&f)
                .map_err(|e| ToolError(format!("cannot read {}: {}", f.display(), e.kind())))?;
            let patch: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ToolError(format!("{}: {e}", f.display())))?;
            let update = t.admin().apply_settings(&patch).map_err(err)?;
            let mut v = serde_json::to_value(t.admin().safety_settings())
                .map_err(|e| ToolError(e.to_string()))?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("changed".into(), update.changed.into());
                if update.login_disabled {
                    obj.insert(
                        "warning".into(),
                        serde_json::json!({
                            "zh": "已关闭登录要求：此后交易无需操作员登录即可进行（已记入审计日志）",
                            "en": "Login turned off: financial commands no longer need a logged-in operator (recorded in the audit log)",
                        }),
                    );
                }
            }
            v
        }
        TerminalCmd::Policy(PolicyCmd::Show) => serde_json::to_value(t.admin().safety_settings())
            .map_err(|e| ToolError(e.to_string()))?,
        _ => return Err(ToolError("not a local command".into()).into()),
    })
}

/// Why a pending item is still pending after `recover`: the host's last answer in this run
/// (`last_response_code`, with its diagnosis), no answer, or not tried (items go in order).
fn pending_reason_json(t: &Terminal, p: &smartpos_txn::model::PendingItem) -> serde_json::Value {
    use smartpos_terminal::host_answers::LastAttempt;
    let (code, why, diagnosis) = match t.support().last_attempt(p) {
        LastAttempt::Answered(code) => {
            let kind = t
                .journal()
                .txn(&p.reference)
                .ok()
                .flatten()
                .map_or(smartpos_txn::TxnKind::Sale, |r| r.kind);
            let d = smartpos_diagnosis::for_response_code(&code, kind);
            let why = format!(
                "the host answered {code}: {}: {}",
                d.title.en, d.explanation.en
            );
            (Some(code), why, Some(d.code))
        }
        LastAttempt::MacFailed(code) => {
            let d = smartpos_diagnosis::for_security(
                smartpos_diagnosis::SecurityRecovery::MacStillFailing,
                smartpos_diagnosis::MoneyState::ReversalPending,
            );
            let why = format!(
                "the host answered {code}, but the answer failed its MAC check (the keys differ): {}",
                d.explanation.en
            );
            (Some(code), why, Some(d.code))
        }
        LastAttempt::NoAnswer => (
            None,
            "no answer from the host (timeout or connection failure); it is sent again later"
                .to_owned(),
            None,
        ),
        _ => (
            None,
            "not sent in this run: items go out in order and an earlier one is still pending"
                .to_owned(),
            None,
        ),
    };
    serde_json::json!({
        "reference": p.reference,
        "kind": p.kind.as_str(),
        "reason": p.reason.map(|r| r.code()),
        "attempts": p.attempts,
        "last_response_code": code,
        "diagnosis": diagnosis,
        "why": why,
    })
}

fn pending_for(t: &Terminal, r: &TxnRecord) -> bool {
    t.pending()
        .iter()
        .any(|p| p.reference == r.reference && p.armed)
}
