//! Secrets audit: a representative run of the terminal over loopback TCP, with every log line
//! captured (global logger, level trace) and every error, outcome, record and event formatted
//! with `Display` and `Debug`; none of it may hold a full PAN, track 2, clear PIN, PIN block
//! (clear or enciphered), the TMK, a working key (clear or under the TMK) or the journal key.
//! The journal files on disk must not hold the PAN or track 2 in clear either.
//!
//! The secrets are learnt from the run itself: the key block is taken from the sign-in
//! answer seen by a probe, unwrapped with the test TMK, and the PIN block is enciphered under
//! the delivered PIK.

use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::pinblock::{self, Pin, PinBlockFormat};
use smartpos_iso8583::Dialect;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, TEST_TMK_HEX};
use smartpos_sim::net::{Server, ServerConfig};
use smartpos_terminal::journal::{Journal, JournalKey};
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{Probe, Terminal, TerminalConfig, TerminalError, TxnOutcome};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, MutableHost, TID, swiped_card, temp_dir, test_tmk};
use smartpos_txn::engine::unwrap_key_block;
use smartpos_txn::model::TxnState;
use smartpos_txn::proto::{CardData, Profile};
use smartpos_types::hex;
use smartpos_types::{Pan, SecretBytes};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const PAN: &str = "6222021234567890128";
const TRACK2: &str = "6222021234567890128D30121011234567890";
/// A 12-digit PIN: long enough that finding its digits by chance in a log line is negligible.
const PIN: &str = "739146285017";
const JOURNAL_KEY: [u8; 32] = [
    0xC3, 0x1F, 0x7A, 0x92, 0x4E, 0xD5, 0x08, 0xB6, 0x3C, 0xE1, 0x57, 0x9A, 0x20, 0xFD, 0x64, 0x8B,
    0x11, 0xAE, 0x73, 0xC9, 0x05, 0x5D, 0xB2, 0x4F, 0xE8, 0x36, 0x9C, 0x71, 0x2A, 0xD0, 0x6F, 0x84,
];

/// Every log record, formatted as `LEVEL target: message`.
struct Capture {
    lines: Mutex<Vec<String>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        // The only logger of this test binary; other tests running at the same time are
        // captured too, which only widens the audit.
        log::set_logger(c).expect("no other logger in the e2e binary");
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

/// A frame seen by the probe: (sent by the terminal, body).
type Frame = (bool, Vec<u8>);

/// The secrets to look for: (what, text). Each is looked for as written, upper- and
/// lower-case.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        let text = text.into();
        assert!(
            text.len() >= 12,
            "a secret this short would match by chance"
        );
        self.0.push((what.into(), text));
    }

    fn add_bytes(&mut self, what: &str, bytes: &[u8]) {
        self.add(what, hex::encode(bytes));
    }

    /// The secrets found in `text`.
    fn found_in(&self, text: &str) -> Vec<&str> {
        let upper = text.to_ascii_uppercase();
        self.0
            .iter()
            .filter(|(_, s)| upper.contains(&s.to_ascii_uppercase()))
            .map(|(w, _)| w.as_str())
            .collect()
    }
}

/// Formatted values (Display and Debug of everything the run produced).
#[derive(Default)]
struct Texts(Vec<String>);

impl Texts {
    fn both<T: std::fmt::Display + std::fmt::Debug>(&mut self, v: &T) {
        self.0.push(format!("{v}"));
        self.0.push(format!("{v:?}"));
        self.0.push(format!("{v:#?}"));
    }
    fn debug<T: std::fmt::Debug>(&mut self, v: &T) {
        self.0.push(format!("{v:?}"));
        self.0.push(format!("{v:#?}"));
    }
    fn result(&mut self, r: &Result<TxnOutcome, TerminalError>) {
        match r {
            Ok(o) => self.debug(o),
            Err(e) => self.both(e),
        }
    }
}

fn config(port: u16, timeout_ms: u64) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{port}"));
    link.response_timeout = Duration::from_millis(timeout_ms);
    link.connect_timeout = Duration::from_secs(2);
    TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    }
}

fn keyed_card() -> CardData {
    CardData {
        pan: Pan::new(PAN).ok(),
        expiry: Some("3012".into()),
        entry_mode: "012".into(),
        ..CardData::default()
    }
}

/// Every file of the journal (database, WAL, shared memory), concatenated.
fn journal_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if let Ok(b) = std::fs::read(e.path()) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The PAN and track 2 in the forms a file could hold them: ASCII, and packed BCD (left and
/// right aligned).
fn card_data_forms() -> Vec<(&'static str, Vec<u8>)> {
    let bcd = |digits: &str| hex::decode(digits).unwrap();
    vec![
        ("pan ascii", PAN.as_bytes().to_vec()),
        ("pan bcd", bcd(&format!("{PAN}F"))),
        ("pan bcd", bcd(&format!("0{PAN}"))),
        ("track2 ascii", TRACK2.as_bytes().to_vec()),
        ("track2 ascii =", TRACK2.replace('D', "=").into_bytes()),
        ("track2 bcd", bcd(&format!("{TRACK2}F"))),
        ("track2 bcd", bcd(&format!("0{TRACK2}"))),
    ]
}

fn assert_journal_clean(dir: &Path, when: &str) {
    let bytes = journal_bytes(dir);
    assert!(!bytes.is_empty(), "{when}: no journal files");
    for (what, form) in card_data_forms() {
        assert!(!contains(&bytes, &form), "{when}: journal holds the {what}");
    }
    // The masked PAN is there (the check above looked at real journal contents).
    let masked = Pan::new(PAN).unwrap().masked();
    assert!(
        contains(&bytes, masked.as_bytes()),
        "{when}: masked PAN {masked} missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_outcomes_or_journal() {
    let cap = capture();
    // The host checks the PIN under the TDES PIK: it accepts this test's 12-digit PIN.
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap()
        .with_accepted_pin(Pin::new(PIN).unwrap()),
    );
    let host = Arc::new(MutableHost::new(acquirer.clone()));
    let server = Server::bind(ServerConfig::default(), host.clone())
        .await
        .unwrap()
        .spawn();
    let port = server.local_addr().port();
    let dir = temp_dir("secrets");
    let path = dir.join("journal.db");
    let jkey = || JournalKey::new(JOURNAL_KEY);
    let mut texts = Texts::default();

    let mut t = Terminal::open(config(port, 300), &path, test_tmk(), &jkey()).unwrap();
    let frames: Arc<Mutex<Vec<Frame>>> = Arc::default();
    let f2 = frames.clone();
    t.set_probe(move |p| match p {
        Probe::BeforeSend(b) => f2.lock().unwrap().push((true, b.to_vec())),
        Probe::Received(b) => f2.lock().unwrap().push((false, b.to_vec())),
        _ => {}
    });
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let e2 = events.clone();
    t.set_listener(move |e| e2.lock().unwrap().push(format!("{e:?}")));

    // Error path: not signed in.
    let r = t.sale(1_000, keyed_card(), Some("s-0"), None).await;
    assert!(r.is_err(), "{r:?}");
    texts.result(&r);

    // Sign-in; learn the key block from the answer.
    t.admin().sign_in("01").await.unwrap();
    let cup = Dialect::cup();
    let block = frames
        .lock()
        .unwrap()
        .iter()
        .filter(|(sent, _)| !sent)
        .filter_map(|(_, f)| cup.unpack(f).ok())
        .find_map(|m| m.get(62).map(<[u8]>::to_vec))
        .expect("sign-in answer with a key block");
    let profile = Profile::by_name("cup").unwrap();
    let block = profile.decode_key_block(&block).expect("key block");
    let keys = unwrap_key_block(&test_tmk(), &block).expect("key block unwraps");

    let mut secrets = Secrets::default();
    secrets.add("pan", PAN);
    secrets.add("track2", TRACK2);
    secrets.add("track2 =", TRACK2.replace('D', "="));
    secrets.add("pin", PIN);
    secrets.add("tmk", TEST_TMK_HEX);
    secrets.add_bytes("journal key", &JOURNAL_KEY);
    secrets.add_bytes("key block", &block);
    for (i, part) in block.chunks(20).enumerate() {
        secrets.add_bytes(&format!("working key {i} under tmk"), &part[..16]);
    }
    secrets.add_bytes("pik", keys.pik.expose());
    secrets.add_bytes("mak", keys.mak.expose());
    if let Some(tdk) = &keys.tdk {
        secrets.add_bytes("tdk", tdk.expose());
    }
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new(PIN).unwrap();
    let clear_block = pinblock::encode_with_fill(PinBlockFormat::Iso0, &pin, Some(&pan), &[])
        .expect("ISO 0 PIN block");
    let enc_block = pinblock::encipher_tdes(&keys.pik, &clear_block).unwrap();
    secrets.add_bytes("clear pin block", clear_block.expose());
    secrets.add_bytes("pin block", enc_block.expose());
    // The checker itself works.
    assert_eq!(
        secrets.found_in(&format!("x {} y", PAN.to_lowercase())),
        vec!["pan"]
    );
    assert!(
        secrets
            .found_in(&hex::encode(enc_block.expose()).to_lowercase())
            .contains(&"pin block")
    );

    // Keyed sale, swiped sale with PIN, void, partial refund, a declined sale.
    let keyed = t
        .sale(10_000, keyed_card(), Some("s-1"), Some("01"))
        .await
        .unwrap();
    assert_eq!(keyed.record.state, TxnState::Approved);
    texts.debug(&keyed);
    let mut swiped_pin = swiped_card();
    swiped_pin.entry_mode = "021".into();
    swiped_pin.pin_block = Some(SecretBytes::new(enc_block.expose().to_vec()));
    texts.debug(&swiped_pin);
    let swiped = t
        .sale(2_000, swiped_pin, Some("s-2"), Some("01"))
        .await
        .unwrap();
    assert_eq!(swiped.record.state, TxnState::Approved);
    texts.debug(&swiped);
    let r = t
        .void(&swiped.record.reference, Some("v-1"), Some("01"))
        .await;
    texts.result(&r);
    let r = t
        .refund(&keyed.record.reference, 2_500, Some("r-1"), Some("01"))
        .await;
    texts.result(&r);
    let r = t.sale(1_051, keyed_card(), None, None).await;
    texts.result(&r);

    // Error paths: idempotency conflict, unknown reference, refund over the original.
    let r = t.sale(1, keyed_card(), Some("s-1"), None).await;
    assert!(
        matches!(r, Err(TerminalError::IdempotencyConflict)),
        "{r:?}"
    );
    texts.result(&r);
    let r = t.void("999999999999", None, None).await;
    assert!(matches!(r, Err(TerminalError::NotFound { .. })), "{r:?}");
    texts.result(&r);
    let r = t.refund(&keyed.record.reference, 9_999, None, None).await;
    assert!(r.is_err(), "{r:?}");
    texts.result(&r);

    // A timeout: the host processes but never answers; the reversal is pending (sealed in the
    // journal) until the next command delivers it.
    host.set_mute(true);
    let r = t.sale(3_300, keyed_card(), Some("s-3"), None).await;
    texts.result(&r);
    let timed_out = r.unwrap();
    assert!(timed_out.reversal_pending, "{timed_out:?}");
    texts.debug(&t.pending());
    // A refund while the host is mute stays queued (store-and-forward, sealed).
    let r = t
        .refund(&keyed.record.reference, 500, Some("r-2"), None)
        .await;
    texts.result(&r);
    assert_journal_clean(&dir, "with a pending reversal");
    host.set_mute(false);
    let rec = t.recover().await;
    texts.debug(&rec);
    assert!(t.pending().is_empty(), "{:?}", t.pending());

    // Pre-auth and completion, echo, settlement.
    let pa = t.preauth(5_000, keyed_card(), None, None).await.unwrap();
    texts.debug(&pa);
    let r = t.complete(&pa.record.reference, 4_000, None, None).await;
    texts.result(&r);
    let b = t.balance(keyed_card(), None).await;
    texts.result(&b);
    t.admin().echo().await.unwrap();
    let s = t.settle().await;
    texts.debug(&s);
    texts.debug(&t);
    for r in t.journal().all().unwrap() {
        texts.debug(&r);
    }

    // The codec's errors on every truncation of a request that carries the PAN and the PIN
    // block, and the dialect's dump (which masks).
    let sent: Vec<Vec<u8>> = frames
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s)
        .map(|(_, f)| f.clone())
        .collect();
    let with_pan = sent
        .iter()
        .filter(|f| {
            let h = hex::encode(f);
            h.contains(PAN) || h.contains(&hex::encode(enc_block.expose()))
        })
        .count();
    assert!(with_pan >= 2, "the wire carried the card data ({with_pan})");
    for f in &sent {
        if let Ok(m) = cup.unpack(f) {
            texts.0.push(cup.dump(&m));
            texts.debug(&m);
        }
        for n in 0..f.len() {
            if let Err(e) = cup.unpack(&f[..n]) {
                texts.both(&e);
            }
        }
    }
    t.disconnect().await;
    drop(t);

    // Host down: the request never leaves.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().port();
    drop(l);
    let mut t = Terminal::open(config(dead, 300), &path, test_tmk(), &jkey()).unwrap();
    let r = t.sale(700, keyed_card(), Some("down-1"), None).await;
    assert!(r.is_err(), "{r:?}");
    texts.result(&r);
    drop(t);

    // The journal with the wrong key, and a corrupted journal file.
    match Journal::open(&path, &JournalKey::new([1; 32])).and_then(|j| j.restore().map(|_| ())) {
        Ok(()) => {}
        Err(e) => texts.both(&e),
    }
    let junk = dir.join("junk.db");
    std::fs::write(&junk, [0x42u8; 4096]).unwrap();
    if let Err(e) = Journal::open(&junk, &jkey()) {
        texts.both(&e);
    }
    let _ = std::fs::remove_file(&junk);
    if let Err(e) = TdesKey::new(&[1, 2, 3]) {
        texts.both(&e);
    }
    texts.0.extend(events.lock().unwrap().iter().cloned());
    assert_journal_clean(&dir, "at the end");
    server.shutdown().await;

    // The audit.
    let lines = cap
        .lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut leaks = Vec::new();
    for (source, items) in [("log", &lines), ("formatted", &texts.0)] {
        for s in items {
            let found = secrets.found_in(s);
            if !found.is_empty() {
                leaks.push(format!("{source}: {found:?} in {s:.200}"));
            }
        }
    }
    println!(
        "secrets audit: {} log lines, {} formatted values, {} secrets, {} leaks",
        lines.len(),
        texts.0.len(),
        secrets.0.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    // Not vacuous: the run logged and formatted card-related values (masked).
    assert!(lines.len() >= 10, "only {} log lines", lines.len());
    let masked = Pan::new(PAN).unwrap().masked();
    assert!(
        texts.0.iter().any(|s| s.contains(&masked)),
        "no masked PAN {masked} in any formatted value"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host whose next `corrupt` MACed answers leave with a damaged MAC (item 5's recovery path).
struct CorruptingHost {
    acquirer: Arc<Acquirer>,
    corrupt: std::sync::atomic::AtomicU32,
}

impl smartpos_sim::net::FrameHandler for CorruptingHost {
    fn handle(&self, conn: smartpos_sim::net::ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        use std::sync::atomic::Ordering;
        let sign_in = Dialect::cup()
            .unpack(request)
            .is_ok_and(|m| m.mti == smartpos_iso8583::Mti::NETWORK);
        let mut faults = conn.faults;
        if !sign_in
            && self
                .corrupt
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            faults.bad_mac = true;
        }
        self.acquirer
            .handle_request(faults, request)
            .into_iter()
            .collect()
    }
}

/// A PIN pad that hands the SDK the audit's digits.
struct AuditPad;

impl smartpos_terminal::card::PinEntry for AuditPad {
    fn pin(&mut self, _masked_pan: &str, _amount: u64) -> smartpos_terminal::card::PinInput {
        smartpos_terminal::card::PinInput::Digits(Pin::new(PIN).unwrap())
    }
}

/// A chip sale of 20.00 whose card asks for an online PIN: from the app's PIN pad (the audit's
/// digits), or, on a device, from the security module's own pad (no PinEntry).
async fn chip_pin_sale(t: &mut Terminal, device: bool) -> Result<TxnOutcome, TerminalError> {
    use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
    let mut kernel = SimCertifiedKernel::new(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour {
            pin_on_pin_pad: true,
            ..SimBehaviour::APPROVE
        },
    )
    .unwrap();
    let mut pad = AuditPad;
    let pin: Option<&mut dyn smartpos_terminal::card::PinEntry> =
        if device { None } else { Some(&mut pad) };
    t.transact(
        smartpos_txn::TxnIntent::sale(2_000),
        smartpos_terminal::card::CardSource::Certified {
            kernel: &mut kernel,
            pin,
        },
    )
    .await
}

/// The security module paths (issue 18): with the software module (the app's PIN digits) and
/// with the hardware double (the PIN on its pad), sign-ins, a chip sale with online PIN, a
/// response that fails its MAC (the terminal signs in again: a second key block), module
/// errors, the support bundle and the journal: no PIN digits, no clear or enciphered PIN block,
/// no working key (clear or under the TMK) and no TMK anywhere but in the journal's key block,
/// which the journal keeps under the TMK by design.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pin_digits_pin_block_or_key_through_the_security_modules() {
    use smartpos_crypto::module::{
        KeyRef, ModuleError, PinRequest, PinSource, SecurityModule, SoftwareModule,
    };
    use smartpos_tests::ped::{PadInput, PedDouble};
    let cap = capture();
    const CHIP_PAN: &str = "6228480402564890018";
    for device in [false, true] {
        // The host checks the PIN under the TDES PIK: it accepts this test's 12-digit PIN.
        let acquirer = Arc::new(
            Acquirer::new(AcquirerConfig {
                dialect: "cup".into(),
                tmk: test_tmk(),
                ledger_file: None,
            })
            .unwrap()
            .with_accepted_pin(Pin::new(PIN).unwrap()),
        );
        let host = Arc::new(CorruptingHost {
            acquirer,
            corrupt: Default::default(),
        });
        let server = Server::bind(ServerConfig::default(), host.clone())
            .await
            .unwrap()
            .spawn();
        let dir = temp_dir("secrets-modules");
        let ped = Arc::new(PedDouble::new());
        ped.inject_master(0, test_tmk());
        let module: Arc<dyn SecurityModule> = if device {
            ped.clone()
        } else {
            Arc::new(SoftwareModule::new(test_tmk()))
        };
        let mut t = Terminal::open_with_module(
            config(server.local_addr().port(), 500),
            None,
            &dir.join("journal.db"),
            module.clone(),
            &JournalKey::new(JOURNAL_KEY),
        )
        .unwrap();
        let frames: Arc<Mutex<Vec<Frame>>> = Arc::default();
        let f2 = frames.clone();
        t.set_probe(move |p| match p {
            Probe::BeforeSend(b) => f2.lock().unwrap().push((true, b.to_vec())),
            Probe::Received(b) => f2.lock().unwrap().push((false, b.to_vec())),
            _ => {}
        });
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let e2 = events.clone();
        t.set_listener(move |e| e2.lock().unwrap().push(format!("{e:?}")));
        let mut texts = Texts::default();

        t.admin().sign_in("01").await.unwrap();
        // A chip sale with online PIN: the app's digits (software) or the device's pad.
        if device {
            ped.type_on_pad(PadInput::Digits(PIN.into()));
        }
        let r = chip_pin_sale(&mut t, device).await;
        assert_eq!(r.as_ref().unwrap().record.state, TxnState::Approved);
        texts.result(&r);
        // The answer fails its MAC: reversed, signed in again (new keys), delivered.
        host.corrupt.store(1, std::sync::atomic::Ordering::SeqCst);
        if device {
            ped.type_on_pad(PadInput::Digits(PIN.into()));
        }
        let r = chip_pin_sale(&mut t, device).await;
        assert!(r.as_ref().unwrap().security.is_some(), "{r:?}");
        texts.result(&r);
        // The cardholder cancels (device) / a module error (software: no pad of its own).
        let pan = Pan::new(CHIP_PAN).unwrap();
        let digits = Pin::new(PIN).unwrap();
        for source in [PinSource::Digits(&digits), PinSource::PinPad { amount: 9 }] {
            let e = module
                .pin_block(&PinRequest {
                    key: KeyRef::Working,
                    format: PinBlockFormat::Iso0,
                    pan: Some(&pan),
                    source,
                })
                .map(|b| format!("{b:?}"));
            texts.0.push(format!("{e:?}"));
            if let Err(e) = e {
                texts.both(&e);
            }
        }
        texts.both(&ModuleError::KeyCheck {
            role: smartpos_crypto::module::KeyRole::Mak,
        });
        texts.0.push(format!("{module:?}", module = ped));
        texts
            .0
            .push(t.support().support_bundle().unwrap().to_string());
        texts.debug(&t.pending());
        texts.0.extend(events.lock().unwrap().iter().cloned());
        for r in t.journal().all().unwrap() {
            texts.debug(&r);
        }
        for (_, f) in frames.lock().unwrap().iter() {
            if let Ok(m) = Dialect::cup().unpack(f) {
                texts.0.push(Dialect::cup().dump(&m));
            }
        }
        drop(t);
        server.shutdown().await;

        // The secrets, from the run: every key block the host sent (two sign-ins).
        let profile = Profile::by_name("cup").unwrap();
        let blocks: Vec<Vec<u8>> = frames
            .lock()
            .unwrap()
            .iter()
            .filter(|(sent, _)| !sent)
            .filter_map(|(_, f)| Dialect::cup().unpack(f).ok())
            .filter_map(|m| m.get(62).and_then(|b| profile.decode_key_block(b)))
            .collect();
        assert_eq!(blocks.len(), 2, "two sign-ins, two key blocks");
        let mut secrets = Secrets::default();
        secrets.add("pin", PIN);
        secrets.add("chip pan", CHIP_PAN);
        secrets.add("tmk", TEST_TMK_HEX);
        let mut journal_secrets = Secrets::default();
        journal_secrets.add("pin", PIN);
        for block in &blocks {
            let keys = unwrap_key_block(&test_tmk(), block).unwrap();
            secrets.add_bytes("key block", block);
            for (i, part) in block.chunks(20).enumerate() {
                secrets.add_bytes(&format!("working key {i} under tmk"), &part[..16]);
            }
            for (what, k) in [("pik", &keys.pik), ("mak", &keys.mak)] {
                secrets.add_bytes(what, k.expose());
                journal_secrets.add_bytes(what, k.expose());
            }
            let clear =
                pinblock::encode_with_fill(PinBlockFormat::Iso0, &digits, Some(&pan), &[]).unwrap();
            let enc = pinblock::encipher_tdes(&keys.pik, &clear).unwrap();
            secrets.add_bytes("clear pin block", clear.expose());
            secrets.add_bytes("pin block", enc.expose());
            journal_secrets.add_bytes("clear pin block", clear.expose());
            journal_secrets.add_bytes("pin block", enc.expose());
        }
        // The journal: none of the clear secrets, in hex or raw.
        let bytes = journal_bytes(&dir);
        for (what, text) in &journal_secrets.0 {
            let raw = hex::decode(text).unwrap_or_else(|_| text.clone().into_bytes());
            assert!(
                !contains(&bytes, &raw) && !contains(&bytes, text.as_bytes()),
                "device {device}: the journal holds the {what}"
            );
        }
        let lines = cap
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut leaks = Vec::new();
        for (source, items) in [("log", &lines), ("formatted", &texts.0)] {
            for s in items {
                let found = secrets.found_in(s);
                if !found.is_empty() {
                    leaks.push(format!("{source}: {found:?} in {s:.200}"));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "device {device}: secrets leaked:\n{}",
            leaks.join("\n")
        );
        // Not vacuous: the bundle and the dumps were there, with the masked PAN.
        let masked = pan.masked();
        assert!(
            texts.0.iter().any(|s| s.contains(&masked)),
            "device {device}"
        );
        if device {
            use std::sync::atomic::Ordering::SeqCst;
            assert_eq!(ped.pin_blocks.load(SeqCst), 2);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A PIN pad typing [`PIN`] (the simulator's TEST PIN is 1234, so the host declines `55`:
/// the audit only needs the block made and sent).
struct LongPin;

impl smartpos_terminal::card::PinEntry for LongPin {
    fn pin(&mut self, _: &str, _: u64) -> smartpos_terminal::card::PinInput {
        smartpos_terminal::card::PinInput::Digits(Pin::new(PIN).unwrap())
    }
}

/// In-memory secure store (the DUKPT state and nothing else).
#[derive(Default)]
struct MemStore(Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl smartpos_terminal::store::SecureStore for MemStore {
    fn get(
        &self,
        name: &str,
    ) -> Result<Option<smartpos_terminal::store::Zeroizing<Vec<u8>>>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .map(smartpos_terminal::store::Zeroizing::new))
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_vec());
        Ok(())
    }
}

/// The key options (issue 18): a TDES DUKPT terminal and an SM4 terminal sell (keyed, and a
/// PIN card through the app's PIN pad); no log line, error, outcome, event, journal file or
/// support bundle holds the PIN, a PIN block, the BDK, the initial key, a DUKPT register or
/// derived key, the DUKPT state, or an SM4 working key (clear or under the TMK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dukpt_or_sm4_secret_in_logs_errors_outcomes_journal_or_bundle() {
    use smartpos_crypto::dukpt::{DukptScheme, DukptTxn};
    use smartpos_crypto::module::{SecurityModule, SoftwareModule};
    use smartpos_terminal::dukpt_store::{self, SecureDukptStore};
    let cap = capture();
    let mut secrets = Secrets::default();
    let mut texts = Texts::default();
    secrets.add("pin", PIN);
    secrets.add("tmk", TEST_TMK_HEX);
    secrets.add("tdes bdk", smartpos_sim::keys::TEST_TDES_BDK);
    secrets.add("tdes ipek", smartpos_sim::keys::TEST_TDES_IPEK);
    secrets.add_bytes("journal key", &JOURNAL_KEY);
    let dir = temp_dir("secrets-keys");
    for name in ["dukpt-tdes", "unionpay-sm4"] {
        let text = std::fs::read_to_string(format!(
            "{}/../profiles/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let profile = Profile::from_toml(&text).unwrap();
        let acquirer = Arc::new(
            Acquirer::with_profile(
                AcquirerConfig {
                    dialect: String::new(),
                    tmk: test_tmk(),
                    ledger_file: None,
                },
                profile.clone(),
            )
            .unwrap(),
        );
        let host = Arc::new(MutableHost::new(acquirer.clone()));
        let server = Server::bind(ServerConfig::default(), host.clone())
            .await
            .unwrap()
            .spawn();
        let store: Arc<dyn smartpos_terminal::store::SecureStore> = Arc::new(MemStore::default());
        let mut module = SoftwareModule::new(test_tmk());
        if profile.keys.dukpt().is_some() {
            let (ipek, ksn) = smartpos_sim::keys::test_initial_key(DukptScheme::Tdes);
            dukpt_store::load_initial_key(
                store.as_ref(),
                DukptScheme::Tdes,
                &hex::decode(ipek).unwrap(),
                &hex::decode(ksn).unwrap(),
            )
            .unwrap();
            let dev = dukpt_store::load_device(store.as_ref(), DukptScheme::Tdes)
                .unwrap()
                .unwrap();
            module = module.with_dukpt(dev, Box::new(SecureDukptStore::new(store.clone())));
        } else {
            let sm4 = smartpos_crypto::sm4::Sm4Key::new(test_tmk().expose()).unwrap();
            module = module.with_sm4_master(0, sm4);
        }
        let module: Arc<dyn SecurityModule> = Arc::new(module);
        let mut cfg = config(server.local_addr().port(), 2_000);
        cfg.dialect = profile.dialect.name().to_owned();
        let path = dir.join(format!("{name}.db"));
        let mut t = Terminal::open_with_module(
            cfg,
            Some(profile.clone()),
            &path,
            module,
            &JournalKey::new(JOURNAL_KEY),
        )
        .unwrap();
        let frames: Arc<Mutex<Vec<Frame>>> = Arc::default();
        let f2 = frames.clone();
        t.set_probe(move |p| match p {
            Probe::BeforeSend(b) => f2.lock().unwrap().push((true, b.to_vec())),
            Probe::Received(b) => f2.lock().unwrap().push((false, b.to_vec())),
            _ => {}
        });
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let e2 = events.clone();
        t.set_listener(move |e| e2.lock().unwrap().push(format!("{e:?}")));
        t.admin().sign_in("01").await.unwrap();
        let keyed = t.sale(10_000, keyed_card(), Some("k-1"), None).await;
        assert_eq!(
            keyed.as_ref().unwrap().record.state,
            TxnState::Approved,
            "{name}"
        );
        texts.result(&keyed);
        let mut card =
            smartpos_sim::card::SimCard::new(smartpos_sim::card::CardProfile::PinRequired).unwrap();
        let intent =
            smartpos_tests::intent(smartpos_txn::TxnIntent::sale(2_000), Some("k-2"), None)
                .unwrap();
        let mut pad = LongPin;
        let r = t
            .transact(
                intent,
                smartpos_terminal::card::CardSource::OwnKernel {
                    transport: &mut card,
                    pin: Some(&mut pad),
                },
            )
            .await;
        let declined = r.as_ref().ok().and_then(|o| o.record.response_code);
        assert_eq!(declined.as_deref(), Some("55"), "{name}: {r:?}");
        texts.result(&r);
        texts.debug(&t.support().support_bundle());
        texts.0.extend(events.lock().unwrap().iter().cloned());
        // The secrets of this run: PIN blocks as sent, the keys behind them.
        let sent: Vec<smartpos_iso8583::Message> = frames
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, f)| profile.dialect.unpack(f).ok())
            .collect();
        let blocks: Vec<Vec<u8>> = sent
            .iter()
            .filter_map(|m| m.get(52).map(<[u8]>::to_vec))
            .collect();
        assert!(!blocks.is_empty(), "{name}: no PIN block was sent");
        for b in &blocks {
            secrets.add_bytes(&format!("{name} pin block"), b);
        }
        if profile.keys.dukpt().is_some() {
            let bdk = smartpos_sim::keys::test_bdk(DukptScheme::Tdes).unwrap();
            let seen = acquirer.dukpt_ksns_seen();
            assert!(seen.len() >= 2, "{seen:?}");
            for ksn in seen {
                let DukptTxn::Tdes(k) = DukptTxn::from_bdk(&bdk, &ksn).unwrap() else {
                    unreachable!()
                };
                secrets.add_bytes("dukpt transaction key", k.transaction_key().expose());
                secrets.add_bytes("dukpt pin key", k.pin_key().expose());
                secrets.add_bytes("dukpt mac key", k.mac_request_key().expose());
                secrets.add_bytes("dukpt response mac key", k.mac_response_key().expose());
            }
            let state = store.get(dukpt_store::DUKPT_STATE).unwrap().unwrap();
            for (i, reg) in state[21..].chunks(16).enumerate() {
                if reg.iter().any(|&b| b != 0) {
                    secrets.add_bytes(&format!("dukpt register {i}"), reg);
                }
            }
        } else {
            let block = sent
                .iter()
                .find_map(|m| {
                    (m.mti.0 == 810)
                        .then(|| m.get(62).map(<[u8]>::to_vec))
                        .flatten()
                })
                .expect("SM4 sign-in answer");
            let tmk = smartpos_sim::keys::sm4_tmk(&test_tmk()).unwrap();
            for (i, entry) in block.chunks(20).enumerate() {
                secrets.add_bytes(&format!("sm4 key {i} under tmk"), &entry[..16]);
                let key =
                    smartpos_crypto::sm4::unwrap_working_key(&tmk, &entry[..16], &entry[16..])
                        .unwrap();
                secrets.add_bytes(&format!("sm4 working key {i}"), key.expose());
            }
        }
        drop(t);
        server.shutdown().await;
        // The journal files hold none of it either (as bytes or hex), except the sign-in's
        // key block under the TMK, which the journal keeps by design (ADR 4: reinstalled into
        // the module on open), as for TDES working keys.
        let bytes = journal_bytes(&dir);
        for (what, s) in secrets.0.iter().filter(|(w, _)| !w.ends_with("under tmk")) {
            let raw = hex::decode(s).unwrap_or_default();
            assert!(
                !contains(&bytes, s.as_bytes()) && (raw.len() < 8 || !contains(&bytes, &raw)),
                "{name}: journal holds the {what}"
            );
        }
    }
    let lines = cap
        .lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut leaks = Vec::new();
    for (source, items) in [("log", &lines), ("formatted", &texts.0)] {
        for s in items {
            let found = secrets.found_in(s);
            if !found.is_empty() {
                leaks.push(format!("{source}: {found:?} in {s:.200}"));
            }
        }
    }
    println!(
        "key options secrets audit: {} log lines, {} formatted values, {} secrets, {} leaks",
        lines.len(),
        texts.0.len(),
        secrets.0.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
