//! One suite, two security modules (issue 18): every test here runs once with the software
//! module (keys in memory, today's terminal) and once with [`PedDouble`], a double of a smart
//! POS's security processor (keys by slot index, never read back; PIN only from its own pad).
//! Sales, PIN sales, reversals, voids, refunds, settlement and a restart must behave the same
//! with both; what differs is only where the keys are.

use smartpos_crypto::module::{
    KeyRef, KeyRole, MacDirection, MacMethod, ModuleError, ModuleKind, PinRequest, PinSource,
    SecurityModule, SoftwareModule,
};
use smartpos_crypto::pinblock::{self, Pin, PinBlockFormat};
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
use smartpos_sim::fault::FaultKind;
use smartpos_sim::net::{Server, ServerConfig};
use smartpos_terminal::card::{CardSource, PinEntry, PinInput};
use smartpos_terminal::journal::JournalKey;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{Terminal, TerminalConfig};
use smartpos_tests::ped::{PadInput, PedDouble};
use smartpos_tests::{
    MID, ModuleSource, Pair, TID, TempDir, software_modules, test_card, test_tmk, transport,
};
use smartpos_txn::TxnIntent;
use smartpos_txn::engine::{Command, OpError, Outcome, TxnRequest};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};
use smartpos_txn::proto::{CardData, Profile};
use smartpos_types::{Pan, SecretBytes};
use std::sync::Arc;
use std::time::Duration;

/// The module under test and how a PIN block is made with it.
struct Kit {
    name: &'static str,
    source: ModuleSource,
    /// The PED, when the kit is the hardware double (for its counters and its pad).
    ped: Option<Arc<PedDouble>>,
}

fn software() -> Kit {
    Kit {
        name: "software",
        source: software_modules(),
        ped: None,
    }
}

/// One PED for the whole test: the same device across restarts, the TEST TMK injected in
/// slot 0.
fn hardware() -> Kit {
    let ped = Arc::new(PedDouble::new());
    ped.inject_master(0, test_tmk());
    let shared = ped.clone();
    Kit {
        name: "hardware double",
        source: Arc::new(move || shared.clone() as Arc<dyn SecurityModule>),
        ped: Some(ped),
    }
}

fn kits() -> [Kit; 2] {
    [software(), hardware()]
}

impl Kit {
    /// A PIN block for `pan` made by `module`: digits for the software module, the PIN pad
    /// for the device.
    fn pin_block(&self, module: &dyn SecurityModule, pan: &Pan, pin: &str) -> SecretBytes {
        let digits = Pin::new(pin).unwrap();
        let source = match &self.ped {
            None => PinSource::Digits(&digits),
            Some(ped) => {
                ped.type_on_pad(PadInput::Digits(pin.into()));
                PinSource::PinPad { amount: 1 }
            }
        };
        module
            .pin_block(&PinRequest {
                key: KeyRef::Working,
                format: PinBlockFormat::Iso0,
                pan: Some(pan),
                source,
            })
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

fn signed_in(kit: &Kit) -> Pair {
    let mut p = Pair::with_modules("cup", kit.source.clone());
    let now = p.now();
    p.engine.start_sign_in(now, "01");
    let f = p.run();
    assert_eq!(f.command, Command::SignIn);
    assert!(
        matches!(f.result, Ok(Outcome::SignedIn { .. })),
        "{}: {:?}",
        kit.name,
        f.result
    );
    assert!(p.engine.security_module().has_working_key(KeyRole::Mak));
    p
}

fn req(
    kind: TxnKind,
    amount: u64,
    card: Option<CardData>,
    original: Option<TxnRecord>,
) -> TxnRequest {
    TxnRequest {
        kind,
        amount,
        card,
        original,
        original_used: 0,
        idempotency_key: None,
        operator: Some("01".into()),
    }
}

fn txn(p: &mut Pair, r: TxnRequest) -> (TxnRecord, bool) {
    let now = p.now();
    p.engine.start_txn(now, r);
    match p.run().result {
        Ok(Outcome::Txn {
            record,
            reversal_pending,
            ..
        }) => (record, reversal_pending),
        other => panic!("unexpected {other:?}"),
    }
}

fn recover(p: &mut Pair) -> Result<Outcome, OpError> {
    let now = p.now();
    p.engine.start_recover(now);
    p.run().result
}

/// The PIN key the host delivered at the last sign-in, from the journal's key block and the
/// TEST TMK: the host's view, to check field 52 from outside the module.
fn host_pik(p: &Pair) -> smartpos_crypto::keys::TdesKey {
    let block = p.journal.restore().unwrap().wrapped_keys.unwrap();
    let profile = Profile::by_name("cup").unwrap();
    profile.keys.unwrap(&test_tmk(), &block).unwrap().pik
}

fn field(p: &Pair, frame: &[u8], n: u8) -> Option<Vec<u8>> {
    let _ = p;
    Profile::by_name("cup")
        .unwrap()
        .dialect
        .unpack(frame)
        .unwrap()
        .get(n)
        .map(<[u8]>::to_vec)
}

#[test]
fn sales_pin_sales_reversals_voids_refunds_and_settlement_with_either_module() {
    for kit in kits() {
        let name = kit.name;
        let mut p = signed_in(&kit);
        // A keyed sale, MACed by the module and checked by the host.
        let (sale, pending) = txn(&mut p, req(TxnKind::Sale, 1_234, Some(test_card()), None));
        assert_eq!(sale.state, TxnState::Approved, "{name}");
        assert!(!pending, "{name}");

        // A PIN sale: the block comes out of the module and decrypts, on the host's side,
        // to the PIN typed.
        let pan = Pan::new("6222021234567890128").unwrap();
        let block = kit.pin_block(p.engine.security_module().as_ref(), &pan, "1234");
        let card = CardData {
            pin_block: Some(block),
            entry_mode: "021".into(),
            ..test_card()
        };
        let (pin_sale, _) = txn(&mut p, req(TxnKind::Sale, 2_000, Some(card), None));
        assert_eq!(pin_sale.state, TxnState::Approved, "{name}");
        let f52 = field(&p, p.sent.last().unwrap(), 52).expect("field 52 sent");
        let pin =
            pinblock::decrypt_tdes(&host_pik(&p), PinBlockFormat::Iso0, &f52, Some(&pan)).unwrap();
        assert_eq!(pin.expose(), "1234", "{name}");

        // No answer: reversed (98), delivered by recovery.
        p.script.push_back(transport(FaultKind::Drop));
        p.script.push_back(transport(FaultKind::Drop));
        p.script.push_back(transport(FaultKind::Drop));
        p.script.push_back(transport(FaultKind::Drop));
        let (lost, pending) = txn(&mut p, req(TxnKind::Sale, 3_000, Some(test_card()), None));
        assert!(pending, "{name}: {lost:?}");
        assert!(matches!(
            recover(&mut p),
            Ok(Outcome::Recovered {
                delivered: 1,
                remaining: 0
            })
        ));
        assert_eq!(
            p.journal.txn(&lost.reference).unwrap().unwrap().state,
            TxnState::Reversed,
            "{name}"
        );

        // An answer whose MAC fails the module's check: reversed with A0.
        p.script.push_back(smartpos_sim::fault::FaultSet {
            bad_mac: true,
            ..Default::default()
        });
        let (forged, _) = txn(&mut p, req(TxnKind::Sale, 4_000, Some(test_card()), None));
        assert_eq!(forged.state, TxnState::Reversed, "{name}");

        // A void and a refund (an advice) of the first sale.
        let (void, _) = txn(&mut p, req(TxnKind::Void, 0, None, Some(pin_sale.clone())));
        assert_eq!(void.state, TxnState::Approved, "{name}");
        let (refund, _) = txn(&mut p, req(TxnKind::Refund, 500, None, Some(sale.clone())));
        assert_eq!(refund.state, TxnState::Approved, "{name}");

        // Settlement balances with the host.
        let batch = p.engine.counters().batch;
        let records = p.journal.batch(batch).unwrap();
        let now = p.now();
        p.engine.start_settle(now, records);
        match p.run().result {
            Ok(Outcome::Settled { balanced, .. }) => assert!(balanced, "{name}"),
            other => panic!("{name}: {other:?}"),
        }

        // A restart: the engine installs the kept key block into the module again; no
        // sign-in is needed for the next sale.
        let mut p = p.restart();
        assert!(p.engine.signed_in(), "{name}");
        let (after, _) = txn(&mut p, req(TxnKind::Sale, 5_000, Some(test_card()), None));
        assert_eq!(after.state, TxnState::Approved, "{name}");
        assert!(p.reconcile().is_empty(), "{name}: {:?}", p.reconcile());

        if let Some(ped) = &kit.ped {
            use std::sync::atomic::Ordering::SeqCst;
            // Everything keyed went through the device: one load at sign-in, one at restart,
            // a MAC for every MACed request and response, the PIN block from its pad.
            assert_eq!(ped.loads.load(SeqCst), 2);
            assert!(ped.macs.load(SeqCst) >= 14, "{}", ped.macs.load(SeqCst));
            assert_eq!(ped.pin_blocks.load(SeqCst), 1);
        }
    }
}

#[test]
fn keys_that_fail_their_check_value_are_refused_with_either_module() {
    for kit in kits() {
        let name = kit.name;
        // A host that delivers keys under another master key.
        let host = Arc::new(
            Acquirer::new(AcquirerConfig {
                dialect: "cup".into(),
                tmk: smartpos_crypto::keys::TdesKey::new(&[0x11; 16]).unwrap(),
                ledger_file: None,
            })
            .unwrap(),
        );
        let dir = TempDir::new("secmod-kcv");
        let mut p = Pair::with_host_profile_module(
            Profile::by_name("cup").unwrap(),
            host,
            &dir.join("journal.db"),
            kit.source.clone(),
        );
        let now = p.now();
        p.engine.start_sign_in(now, "01");
        assert_eq!(p.run().result, Err(OpError::KeyCheck), "{name}");
        assert!(!p.engine.signed_in());
        assert!(!p.engine.security_module().has_working_key(KeyRole::Pik));
        let now = p.now();
        p.engine
            .start_txn(now, req(TxnKind::Sale, 100, Some(test_card()), None));
        assert_eq!(p.run().result, Err(OpError::NotSignedIn), "{name}");
    }
}

#[test]
fn the_hardware_double_keeps_keys_to_itself_and_takes_no_pin_digits() {
    let kit = hardware();
    let p = signed_in(&kit);
    let module = p.engine.security_module();
    assert_eq!(module.kind(), ModuleKind::Device);
    let pan = Pan::new("6222021234567890128").unwrap();
    let pin = Pin::new("1234").unwrap();
    let refused = module.pin_block(&PinRequest {
        key: KeyRef::Working,
        format: PinBlockFormat::Iso0,
        pan: Some(&pan),
        source: PinSource::Digits(&pin),
    });
    assert!(
        matches!(refused, Err(ModuleError::Unsupported(_))),
        "{refused:?}"
    );
    // Cancel on the pad is a cancellation, an empty pad a timeout.
    let ped = kit.ped.as_ref().unwrap();
    ped.type_on_pad(PadInput::Cancel);
    let pad = PinRequest {
        key: KeyRef::Working,
        format: PinBlockFormat::Iso0,
        pan: Some(&pan),
        source: PinSource::PinPad { amount: 100 },
    };
    assert_eq!(module.pin_block(&pad), Err(ModuleError::PinCancelled));
    assert_eq!(module.pin_block(&pad), Err(ModuleError::PinTimeout));
    // Its Debug names slots, never keys; nothing in the trait returns a key.
    let shown = format!("{ped:?}");
    assert!(shown.contains("master_slots"), "{shown}");
    assert!(!shown.contains(&smartpos_types::hex::encode(test_tmk().expose())));
    // A MAC under the same key from the software module agrees: same contract.
    let soft = SoftwareModule::new(test_tmk());
    let block = p.journal.restore().unwrap().wrapped_keys.unwrap();
    let delivery = Profile::by_name("cup")
        .unwrap()
        .keys
        .delivery(&block, 0)
        .unwrap();
    soft.install_working_keys(&delivery).unwrap();
    let data = b"the same message";
    assert_eq!(
        module
            .mac(
                KeyRef::Working,
                MacDirection::Request,
                MacMethod::CupEcb,
                data
            )
            .unwrap(),
        soft.mac(
            KeyRef::Working,
            MacDirection::Request,
            MacMethod::CupEcb,
            data
        )
        .unwrap()
    );
    // A key block for a slot the PED does not have is refused.
    let mut elsewhere = delivery.clone();
    elsewhere.master_index = 3;
    assert_eq!(
        module.install_working_keys(&elsewhere),
        Err(ModuleError::NoMasterKey { index: 3 })
    );
}

/// A PIN pad that types fixed digits (what a software PIN entry screen hands the SDK).
struct Digits(&'static str);

impl PinEntry for Digits {
    fn pin(&mut self, _masked_pan: &str, _amount: u64) -> PinInput {
        PinInput::Digits(Pin::new(self.0).unwrap())
    }
}

#[tokio::test]
async fn a_chip_sale_with_online_pin_through_the_runtime_with_either_module() {
    for kit in kits() {
        let name = kit.name;
        let host = Arc::new(
            Acquirer::new(AcquirerConfig {
                dialect: "cup".into(),
                tmk: test_tmk(),
                ledger_file: None,
            })
            .unwrap(),
        );
        let server = Server::bind(ServerConfig::default(), host.clone())
            .await
            .unwrap()
            .spawn();
        let mut link = LinkConfig::plain(format!("127.0.0.1:{}", server.local_addr().port()));
        link.response_timeout = Duration::from_secs(2);
        let cfg = TerminalConfig {
            tid: TID.into(),
            mid: MID.into(),
            currency: "156".into(),
            dialect: "cup".into(),
            link,
            utc_offset_minutes: 480,
        };
        let dir = TempDir::new("secmod-runtime");
        let mut t = Terminal::open_with_module(
            cfg,
            None,
            &dir.join("j.db"),
            (kit.source)(),
            &JournalKey::new([3; 32]),
        )
        .unwrap();
        t.admin().sign_in("01").await.unwrap();
        // The device's kernel asks for an online PIN without a block of its own.
        let mut kernel = SimCertifiedKernel::new(
            SimScheme::UnionPay,
            Presentation::Chip,
            SimBehaviour {
                pin_on_pin_pad: true,
                ..SimBehaviour::APPROVE
            },
        )
        .unwrap();
        // The software module takes the app's digits; the device takes the PIN on its pad
        // and the app gives the SDK no PIN entry at all.
        let mut digits = Digits("1234");
        let pin: Option<&mut dyn PinEntry> = match &kit.ped {
            None => Some(&mut digits),
            Some(ped) => {
                ped.type_on_pad(PadInput::Digits("1234".into()));
                None
            }
        };
        let o = t
            .transact(
                TxnIntent::sale(1_500),
                CardSource::Certified {
                    kernel: &mut kernel,
                    pin,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(o.record.state, TxnState::Approved, "{name}: {o:?}");
        assert_eq!(o.record.entry_mode.as_deref(), Some("051"), "{name}");
        if let Some(ped) = &kit.ped {
            assert_eq!(ped.pin_blocks.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
        drop(t);
        server.shutdown().await;
    }
}

/// The shipped track-encryption profile, with track 2 added to the refund advice (the
/// built-in refund carries none) so that a store-and-forward send carries one.
fn track_profile() -> Profile {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../profiles/cup-track-encrypted.toml"
    ))
    .unwrap();
    Profile::from_toml(&format!("{text}\n[messages.refund]\nadd = [35]\n")).unwrap()
}

/// The working keys the host delivered at the last sign-in, from the journal's key block
/// and the TEST TMK (the host's view, from outside the module).
fn host_keys(p: &Pair, profile: &Profile) -> smartpos_txn::WorkingKeys {
    let block = p.journal.restore().unwrap().wrapped_keys.unwrap();
    profile.keys.unwrap(&test_tmk(), &block).unwrap()
}

#[test]
fn tracks_travel_encrypted_under_the_tdk_with_either_module_and_the_host_checks_them() {
    let profile = track_profile();
    for kit in kits() {
        let host = Arc::new(
            Acquirer::with_profile(
                AcquirerConfig {
                    dialect: profile.name().into(),
                    tmk: test_tmk(),
                    ledger_file: None,
                },
                profile.clone(),
            )
            .unwrap(),
        );
        let dir = TempDir::new("secmod-track");
        let mut p = Pair::with_host_profile_module(
            profile.clone(),
            host.clone(),
            &dir.join("journal.db"),
            kit.source.clone(),
        );
        let now = p.now();
        p.engine.start_sign_in(now, "01");
        assert!(matches!(p.run().result, Ok(Outcome::SignedIn { .. })));
        let card = smartpos_tests::swiped_card();
        let clear = card.track2.as_ref().unwrap().expose().to_owned();
        let (sale, pending) = txn(&mut p, req(TxnKind::Sale, 1_500, Some(card), None));
        assert_eq!(sale.state, TxnState::Approved, "{}", kit.name);
        assert!(!pending);
        let frame = p.sent.last().unwrap().clone();
        let msg = profile.dialect.unpack(&frame).unwrap();
        let f35 = msg.text(35).unwrap().to_owned();
        assert_ne!(f35, clear, "{}", kit.name);
        // Secrets: the clear track 2 (as packed BCD, as text) is nowhere in the frame sent.
        let packed = smartpos_types::hex::decode(&format!("{clear}F")).unwrap();
        assert!(!frame.windows(packed.len()).any(|w| w == packed.as_slice()));
        assert!(!frame.windows(clear.len()).any(|w| w == clear.as_bytes()));
        assert_eq!(msg.text(53).and_then(|f| f.get(2..3)), Some("1"));
        let keys = host_keys(&p, &profile);
        let tdk = keys.tdk.clone().unwrap();
        let opened = smartpos_txn::track::open_tracks(&msg, &mut |b| {
            tdk.decrypt_ecb(b).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(opened.text(35), Some(clear.as_str()), "{}", kit.name);
        // A ciphertext changed in one nibble (re-MACed, so only the track is wrong), and the
        // clear track without the flag, are format errors at the host. The change is one whose
        // decryption is not track data (about 1 in 400 decrypt to digits by chance: the
        // layout has no integrity check but the MAC), found with the host's TDK.
        let mut flipped = msg.clone();
        let changed = (20..36)
            .flat_map(|i| [(i, b'A'), (i, b'0')])
            .map(|(i, c)| {
                let mut t = f35.clone().into_bytes();
                t[i] = if t[i] == c { b'B' } else { c };
                String::from_utf8(t).unwrap()
            })
            .find(|t| {
                smartpos_txn::track::open_track(t, &mut |b| {
                    tdk.decrypt_ecb(b).map_err(|e| e.to_string())
                })
                .is_err()
            })
            .unwrap();
        flipped.set(35, changed.into_bytes());
        let mut clear_msg = opened.clone();
        clear_msg.set(53, b"0600000000000000".to_vec());
        for (what, bad) in [("changed ciphertext", flipped), ("clear track", clear_msg)] {
            let bytes = smartpos_txn::proto::seal(&profile, Some(&keys.mak), &bad, true).unwrap();
            let answer = host.handle_request(Default::default(), &bytes).unwrap();
            let resp = profile.dialect.unpack(&answer).unwrap();
            assert_eq!(resp.text(39), Some("30"), "{}: {what}", kit.name);
        }
        // A void of the sale (card on file, keyed: no track) still goes through.
        let (void, _) = txn(&mut p, req(TxnKind::Void, 1_500, None, Some(sale)));
        assert_eq!(void.state, TxnState::Approved, "{}", kit.name);
        // A refund with the card swiped again is an advice (0220) delivered by the pending
        // machinery from the journal's clear copy: encrypted at its send too (under working
        // keys, the same ciphertext as the sale's).
        let card = smartpos_tests::swiped_card();
        let (sale2, _) = txn(&mut p, req(TxnKind::Sale, 2_000, Some(card.clone()), None));
        let (refund, _) = txn(&mut p, req(TxnKind::Refund, 500, Some(card), Some(sale2)));
        let journal = p.journal.restore().unwrap();
        assert!(journal.pending.is_empty(), "the advice was acknowledged");
        assert_eq!(refund.state, TxnState::Approved, "{}", kit.name);
        let advice = profile.dialect.unpack(p.sent.last().unwrap()).unwrap();
        assert_eq!(advice.mti.0, 220);
        let sealed = advice.text(35).unwrap();
        assert_ne!(sealed, clear, "{}", kit.name);
        assert_eq!(sealed, f35, "{}: one TDK, one ciphertext", kit.name);
        assert_eq!(advice.text(53).and_then(|f| f.get(2..3)), Some("1"));
    }
}
