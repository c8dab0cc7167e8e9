//! Unit tests of the engine's states on virtual time, against a small host written here from
//! the profile's own building blocks (the full simulated acquirer and the runtime are tested
//! end to end in `tests/e2e`). Each test names the state it checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::journal::JournalOp;
use crate::model::{LocalDateTime, TxnKind, TxnRecord};
use crate::profile::Profile;
use crate::proto::{CardData, Identity};
use smartpos_crypto::keys::TdesKey;
use smartpos_iso8583::Mti;
use smartpos_types::Pan;

const TIMEOUT_MS: u64 = 30_000;

fn tmk() -> TdesKey {
    TdesKey::from_double(&[
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0,
        0x01,
    ])
}

fn identity() -> Identity {
    Identity {
        tid: "10000001".into(),
        mid: "898100012340001".into(),
        currency: smartpos_types::Currency::CNY,
    }
}

fn at(mono_ms: u64) -> Now {
    Now {
        mono_ms,
        unix_ms: 1_800_000_000_000 + i64::try_from(mono_ms).unwrap(),
        local: LocalDateTime {
            year: 2026,
            month: 12,
            day: 7,
            hour: 10,
            minute: 0,
            second: 0,
        },
    }
}

fn card() -> CardData {
    CardData {
        pan: Pan::new("6222021234567890128").ok(),
        expiry: Some("3012".into()),
        entry_mode: "012".into(),
        ..CardData::default()
    }
}

fn sale(amount: u64, card: CardData) -> TxnRequest {
    TxnRequest {
        kind: TxnKind::Sale,
        amount,
        card: Some(card),
        original: None,
        original_used: 0,
        idempotency_key: None,
        operator: Some("01".into()),
    }
}

/// A host that answers whatever it is sent, with the code it is told, and keeps the MAC key
/// it hands out at sign-in.
struct Host {
    profile: Profile,
    mak: Option<TdesKey>,
}

impl Host {
    fn answer(&mut self, frame: &[u8], code: &str) -> Vec<u8> {
        let req = self.profile.dialect.unpack(frame).unwrap();
        let mut resp = Message::new(Mti(req.mti.0 + 10));
        for f in [2u8, 3, 4, 11, 12, 13, 25, 41, 42, 49, 60] {
            if let Some(v) = req.get(f) {
                resp.set(f, v.to_vec());
            }
        }
        resp.set(39, code.as_bytes().to_vec());
        resp.set(37, b"000000000001".to_vec());
        if code == "00" {
            resp.set(38, b"123456".to_vec());
        }
        let signing_in = req.mti == Mti(800) && self.mak.is_none();
        if signing_in {
            let keys: Vec<TdesKey> = (0..self.profile.keys.order.len())
                .map(|i| TdesKey::from_double(&[u8::try_from(i + 1).unwrap() * 0x10; 16]))
                .collect();
            let block = self.profile.keys.wrap(&tmk(), &keys);
            resp.set(
                self.profile.keys.field,
                self.profile.encode_key_block(&block),
            );
            let unwrapped = self.profile.keys.unwrap(&tmk(), &block).unwrap();
            self.mak = Some(unwrapped.mak);
        }
        let mac = !signing_in && req.get(self.profile.mac_field).is_some();
        proto::seal(&self.profile, self.mak.as_ref(), &resp, mac).unwrap()
    }
}

/// Drives the engine as the runtime does: applies every commit at once and collects what
/// else comes out.
fn drive(e: &mut Engine) -> Vec<Output> {
    let mut seen = Vec::new();
    while let Some(o) = e.poll() {
        if let Output::Commit(c) = &o {
            e.commit_done(c.id);
        }
        seen.push(o);
    }
    seen
}

fn frames(outs: &[Output]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn finished(outs: &[Output]) -> Option<&Finished> {
    outs.iter().find_map(|o| match o {
        Output::Event(Event::Finished(f)) => Some(f),
        _ => None,
    })
}

fn mti_of(host: &Host, frame: &[u8]) -> Mti {
    host.profile.dialect.unpack(frame).unwrap().mti
}

/// A signed-in engine and its host.
fn signed_in() -> (Engine, Host) {
    let profile = Profile::by_name("cup").unwrap();
    let mut host = Host {
        profile: profile.clone(),
        mak: None,
    };
    let mut e = Engine::restore(
        EngineConfig::new(identity(), profile),
        std::sync::Arc::new(smartpos_crypto::SoftwareModule::new(tmk())),
        Restored::default(),
    );
    e.start_sign_in(at(0), "01");
    let out = drive(&mut e);
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    let answer = host.answer(&sent[0], "00");
    e.handle_host_frame(at(10), &answer);
    let out = drive(&mut e);
    assert!(matches!(
        finished(&out).unwrap().result,
        Ok(Outcome::SignedIn { .. })
    ));
    assert!(e.signed_in() && !e.busy());
    (e, host)
}

fn record(f: &Finished) -> &TxnRecord {
    match &f.result {
        Ok(Outcome::Txn { record, .. }) => record,
        other => panic!("not a transaction outcome: {other:?}"),
    }
}

#[test]
fn expect_response_approval_finishes_the_sale_and_drops_its_reversal() {
    let (mut e, mut host) = signed_in();
    e.start_txn(at(100), sale(1_000, card()));
    let out = drive(&mut e);
    // The intent (record + unarmed reversal) is committed before the request goes out.
    let first_commit = out.iter().position(|o| matches!(o, Output::Commit(_)));
    let first_send = out.iter().position(|o| matches!(o, Output::Transmit(_)));
    assert!(first_commit < first_send);
    assert_eq!(e.poll_timeout(), Some(100 + TIMEOUT_MS));
    assert_eq!(e.pending().len(), 1);
    assert!(!e.pending()[0].armed);
    let answer = host.answer(&frames(&out)[0], "00");
    e.handle_host_frame(at(200), &answer);
    let out = drive(&mut e);
    let rec = record(finished(&out).unwrap());
    assert_eq!(rec.state, TxnState::Approved);
    assert!(e.pending().is_empty());
    assert!(!e.busy() && e.poll_timeout().is_none());
}

#[test]
fn expect_response_timeout_arms_the_reversal_and_expect_reversal_ack_closes_it() {
    let (mut e, mut host) = signed_in();
    e.start_txn(at(100), sale(2_000, card()));
    drive(&mut e);
    e.handle_timeout(at(100 + TIMEOUT_MS - 1));
    assert!(
        drive(&mut e).is_empty(),
        "nothing happens before the deadline"
    );
    e.handle_timeout(at(100 + TIMEOUT_MS));
    let out = drive(&mut e);
    let armed = out.iter().any(|o| {
        matches!(o, Output::Commit(c) if c.ops.iter().any(|op| matches!(op, JournalOp::PutPending(p) if p.armed)))
    });
    assert!(armed, "the reversal is armed durably before it goes out");
    let sent = frames(&out);
    assert_eq!(mti_of(&host, &sent[0]), Mti(400));
    assert!(e.poll_timeout().is_some());
    let ack = host.answer(&sent[0], "00");
    e.handle_host_frame(at(100 + TIMEOUT_MS + 50), &ack);
    let out = drive(&mut e);
    assert_eq!(record(finished(&out).unwrap()).state, TxnState::Reversed);
    assert!(e.pending().is_empty());
}

#[test]
fn unacknowledged_reversal_stays_pending_and_goes_before_the_next_sale() {
    let (mut e, mut host) = signed_in();
    e.start_txn(at(100), sale(3_000, card()));
    drive(&mut e);
    let mut now = 100;
    let mut reversals = 0;
    loop {
        now += TIMEOUT_MS;
        e.handle_timeout(at(now));
        let out = drive(&mut e);
        reversals += frames(&out).len();
        if let Some(f) = finished(&out) {
            match &f.result {
                Ok(Outcome::Txn {
                    reversal_pending,
                    record,
                    ..
                }) => {
                    assert!(*reversal_pending);
                    assert_eq!(record.state, TxnState::Reversing);
                }
                other => panic!("{other:?}"),
            }
            break;
        }
    }
    assert_eq!(reversals, 3, "the configured delivery attempts");
    assert!(e.pending()[0].armed);
    // The next sale first delivers the reversal (ExpectPendingAck), then sends its own request.
    e.start_txn(at(now + 1), sale(4_000, card()));
    let out = drive(&mut e);
    let sent = frames(&out);
    assert_eq!(mti_of(&host, &sent[0]), Mti(400));
    let ack = host.answer(&sent[0], "00");
    e.handle_host_frame(at(now + 2), &ack);
    let out = drive(&mut e);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::PendingDelivered {
            kind: PendingKind::Reversal,
            ..
        })
    )));
    let sent = frames(&out);
    assert_eq!(mti_of(&host, &sent[0]), Mti(200));
    let answer = host.answer(&sent[0], "00");
    e.handle_host_frame(at(now + 3), &answer);
    let out = drive(&mut e);
    assert_eq!(record(finished(&out).unwrap()).amount, 4_000);
}

#[test]
fn a_second_command_while_one_waits_is_refused_busy() {
    let (mut e, _host) = signed_in();
    e.start_txn(at(100), sale(1_000, card()));
    drive(&mut e);
    e.start_echo(at(101));
    let out = drive(&mut e);
    let f = finished(&out).unwrap();
    assert_eq!(f.command, Command::Echo);
    assert_eq!(f.result, Err(OpError::Busy));
    assert!(e.busy(), "the sale still waits for its answer");
}

#[test]
fn a_frame_while_idle_is_ignored() {
    let (mut e, _host) = signed_in();
    e.handle_host_frame(at(5), b"\x00\x01garbage");
    let out = drive(&mut e);
    assert!(matches!(
        out.as_slice(),
        [Output::Event(Event::Ignored {
            why: "no request in flight"
        })]
    ));
}

#[test]
fn expect_response_link_never_opened_marks_the_sale_not_sent() {
    let (mut e, _host) = signed_in();
    e.start_txn(at(100), sale(1_000, card()));
    drive(&mut e);
    e.handle_link_error(at(150), false);
    let out = drive(&mut e);
    assert_eq!(finished(&out).unwrap().result, Err(OpError::NotSent));
    assert!(
        e.pending().is_empty(),
        "nothing left the terminal: no reversal"
    );
}

#[test]
fn expect_card_decision_holds_the_approval_until_the_card_declines_then_reverses() {
    let (mut e, mut host) = signed_in();
    let chip = CardData {
        entry_mode: "051".into(),
        card_decides: true,
        ..card()
    };
    e.start_txn(at(100), sale(5_000, chip));
    let out = drive(&mut e);
    let answer = host.answer(&frames(&out)[0], "00");
    e.handle_host_frame(at(200), &answer);
    let out = drive(&mut e);
    assert!(
        out.iter().any(|o| matches!(o, Output::CompleteCard(_))),
        "{out:?}"
    );
    assert!(finished(&out).is_none());
    assert!(e.awaits_card());
    assert!(
        e.poll_timeout().is_none(),
        "no host timer while the card decides"
    );
    e.handle_card_decision(
        at(300),
        CardVerdict::Declined {
            script_results: Vec::new(),
        },
    );
    let out = drive(&mut e);
    let sent = frames(&out);
    assert_eq!(mti_of(&host, &sent[0]), Mti(400));
    let ack = host.answer(&sent[0], "00");
    e.handle_host_frame(at(400), &ack);
    let out = drive(&mut e);
    let f = finished(&out).unwrap();
    assert_eq!(record(f).state, TxnState::Reversed);
    match &f.result {
        Ok(Outcome::Txn { reply: Some(r), .. }) => assert_eq!(r.response_code, "00"),
        other => panic!("the outcome keeps the host's approval: {other:?}"),
    }
}

#[test]
fn expect_pending_ack_advice_answered_is_the_refund_outcome() {
    let (mut e, mut host) = signed_in();
    e.start_txn(at(100), sale(6_000, card()));
    let out = drive(&mut e);
    let answer = host.answer(&frames(&out)[0], "00");
    e.handle_host_frame(at(110), &answer);
    let out = drive(&mut e);
    let original = record(finished(&out).unwrap()).clone();
    e.start_txn(
        at(200),
        TxnRequest {
            kind: TxnKind::Refund,
            amount: 1_000,
            card: None,
            original: Some(original),
            original_used: 0,
            idempotency_key: None,
            operator: Some("01".into()),
        },
    );
    let out = drive(&mut e);
    let sent = frames(&out);
    assert_eq!(mti_of(&host, &sent[0]), Mti(220));
    let answer = host.answer(&sent[0], "00");
    e.handle_host_frame(at(210), &answer);
    let out = drive(&mut e);
    let rec = record(finished(&out).unwrap());
    assert_eq!((rec.kind, rec.state), (TxnKind::Refund, TxnState::Approved));
}

/// The shipped track-encryption profile (`track_encryption = "cup-tdk"`).
fn track_profile() -> Profile {
    Profile::from_toml(include_str!(
        "../../../../profiles/cup-track-encrypted.toml"
    ))
    .unwrap()
}

#[test]
fn sealing_encrypts_track_2_under_the_tdk_before_the_mac_and_the_journal_keeps_it_clear() {
    let profile = track_profile();
    let mut host = Host {
        profile: profile.clone(),
        mak: None,
    };
    let mut e = Engine::restore(
        EngineConfig::new(identity(), profile.clone()),
        std::sync::Arc::new(smartpos_crypto::SoftwareModule::new(tmk())),
        Restored::default(),
    );
    e.start_sign_in(at(0), "01");
    let out = drive(&mut e);
    let answer = host.answer(&frames(&out)[0], "00");
    e.handle_host_frame(at(10), &answer);
    drive(&mut e);
    assert!(e.signed_in());
    // The host's keys: key i of the block is (i + 1) * 0x10 repeated; the TDK is the third.
    let tdk = TdesKey::from_double(&[0x30; 16]);
    let mak = host.mak.clone().unwrap();

    let clear = "6222021234567890128D30121011234567890";
    let swiped = CardData {
        track2: smartpos_types::Track2::new(clear),
        entry_mode: "022".into(),
        ..CardData::default()
    };
    e.start_txn(at(100), sale(1_500, swiped));
    let out = drive(&mut e);
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    let frame = &sent[0];
    let req = profile.dialect.unpack(frame).unwrap();
    let f35 = req.text(35).unwrap();
    assert_eq!(f35.len(), clear.len());
    assert_ne!(f35, clear, "field 35 travels encrypted");
    assert_eq!(req.text(53), Some("0610000000000000"), "field 53 flags it");
    // The clear track's packed BCD appears nowhere in the frame.
    let packed_clear = smartpos_types::hex::decode(&format!("{clear}F")).unwrap();
    assert!(!frame.windows(packed_clear.len()).any(|w| w == packed_clear));
    // The host decrypts it under the TDK to the clear track.
    let opened =
        crate::track::open_tracks(&req, &mut |b| tdk.decrypt_ecb(b).map_err(|e| e.to_string()))
            .unwrap();
    assert_eq!(opened.text(35), Some(clear));
    // The MAC is over the ciphertext: it verifies on the frame as sent, not on the same
    // request with the clear track put back.
    let mut by_mak = |input: &[u8]| proto::compute_mac(&profile, &mak, input);
    assert!(proto::verify_mac_by_fn(&profile, frame, &req, &mut by_mak));
    let clear_frame = profile.dialect.pack(&opened).unwrap();
    assert!(!proto::verify_mac_by_fn(
        &profile,
        &clear_frame,
        &opened,
        &mut by_mak
    ));
    // The journal holds no ciphertext: the record's card on file is the clear card, and the
    // reversal it keeps carries no track (reversals drop 35, 36 and 53).
    for o in &out {
        if let Output::Commit(c) = o {
            for op in &c.ops {
                match op {
                    JournalOp::PutTxn(r) => {
                        let cof = r.card.as_ref().unwrap();
                        assert_eq!(cof.pan.expose(), "6222021234567890128");
                    }
                    JournalOp::PutPending(p) => {
                        let rev = profile.dialect.unpack(&p.message).unwrap();
                        assert!(!rev.has(35) && !rev.has(53));
                    }
                    _ => {}
                }
            }
        }
    }
    let answer = host.answer(frame, "00");
    e.handle_host_frame(at(200), &answer);
    let out = drive(&mut e);
    assert_eq!(record(finished(&out).unwrap()).state, TxnState::Approved);
}

#[test]
fn a_track_too_short_to_encrypt_is_refused_before_anything_is_journaled() {
    let profile = track_profile();
    let mut host = Host {
        profile: profile.clone(),
        mak: None,
    };
    let mut e = Engine::restore(
        EngineConfig::new(identity(), profile),
        std::sync::Arc::new(smartpos_crypto::SoftwareModule::new(tmk())),
        Restored::default(),
    );
    e.start_sign_in(at(0), "01");
    let out = drive(&mut e);
    let answer = host.answer(&frames(&out)[0], "00");
    e.handle_host_frame(at(10), &answer);
    drive(&mut e);
    let t2 = smartpos_types::Track2::new("6222021234D3012");
    assert!(t2.is_some());
    let short = CardData {
        track2: t2,
        entry_mode: "022".into(),
        ..CardData::default()
    };
    e.start_txn(at(100), sale(1_500, short));
    let out = drive(&mut e);
    assert!(frames(&out).is_empty());
    assert!(!out.iter().any(|o| matches!(o, Output::Commit(_))));
    assert!(matches!(
        finished(&out).unwrap().result,
        Err(OpError::Proto(_))
    ));
}

#[test]
fn a_clock_reading_that_is_no_date_is_refused_before_anything_is_journaled() {
    // Fields 12/13 are typed in the record (`LocalDate`, `LocalTime`): a driver whose clock
    // gives month 13 gets a refusal, not a journal row it could not read back.
    let (mut e, _host) = signed_in();
    let mut now = at(100);
    now.local.month = 13;
    e.start_txn(now, sale(1_000, card()));
    let out = drive(&mut e);
    assert!(frames(&out).is_empty());
    assert!(!out.iter().any(|o| matches!(o, Output::Commit(_))));
    assert!(matches!(
        finished(&out).unwrap().result,
        Err(OpError::Rejected { .. })
    ));
    // The STAN was not used: the next sale, at a real time, goes out and is recorded typed.
    let mut now = at(200);
    now.local.second = 60;
    e.start_txn(now, sale(1_000, card()));
    assert!(frames(&drive(&mut e)).is_empty());
    e.start_txn(at(300), sale(1_000, card()));
    let out = drive(&mut e);
    assert_eq!(frames(&out).len(), 1);
    let put = out.iter().find_map(|o| match o {
        Output::Commit(c) => c.ops.iter().find_map(|op| match op {
            JournalOp::PutTxn(r) => Some(r.clone()),
            _ => None,
        }),
        _ => None,
    });
    let r = put.expect("the sale's intent is journaled");
    assert_eq!(r.stan, 2, "sign-in used 1; the refused sales none");
    assert_eq!((&*r.local_date, &*r.local_time), ("1207", "100000"));
    assert_eq!(r.entry_mode.as_deref(), Some("012"));
}

#[test]
fn the_engine_decides_on_the_response_codes_row() {
    // One sale per class of row: approvals (ISO and CUP's approved-with-defects), a decline
    // with a diagnosis, a temporary code: each finishes the sale with the code recorded.
    for (code, state) in [
        ("00", TxnState::Approved),
        ("A2", TxnState::Approved),
        ("51", TxnState::Declined),
        ("96", TxnState::Declined),
    ] {
        let (mut e, mut host) = signed_in();
        e.start_txn(at(100), sale(1_000, card()));
        let out = drive(&mut e);
        let answer = host.answer(&frames(&out)[0], code);
        e.handle_host_frame(at(200), &answer);
        let out = drive(&mut e);
        let f = finished(&out).unwrap_or_else(|| panic!("{code:?}: {out:?}"));
        let rec = record(f);
        assert_eq!(rec.state, state, "{code:?}");
        assert_eq!(rec.response_code.as_deref(), Some(code), "{code:?}");
        let Ok(Outcome::Txn {
            reply,
            reversal_pending,
            ..
        }) = &f.result
        else {
            panic!("{code:?}: {:?}", f.result);
        };
        assert!(!reversal_pending, "{code:?}");
        assert_eq!(reply.as_ref().map(|r| r.response_code), rec.response_code);
        assert!(e.pending().is_empty(), "{code:?}");
    }
    // A code the table does not know, and a space-padded one as a host may send it (kept as
    // it came): reversed as a possible approval, the code recorded, the reversal sent.
    for code in ["Z9", "0 "] {
        let (mut e, mut host) = signed_in();
        e.start_txn(at(100), sale(1_000, card()));
        let out = drive(&mut e);
        let answer = host.answer(&frames(&out)[0], code);
        e.handle_host_frame(at(200), &answer);
        let out = drive(&mut e);
        let put = out.iter().find_map(|o| match o {
            Output::Commit(c) => c.ops.iter().find_map(|op| match op {
                JournalOp::PutTxn(r) => Some(r.clone()),
                _ => None,
            }),
            _ => None,
        });
        let rec = put.unwrap_or_else(|| panic!("{code:?}: {out:?}"));
        assert_eq!(rec.state, TxnState::Reversing, "{code:?}");
        assert_eq!(rec.response_code.as_deref(), Some(code), "{code:?}");
        let sent = frames(&out);
        assert_eq!(sent.len(), 1, "{code:?}");
        assert_eq!(mti_of(&host, &sent[0]), Mti::REVERSAL, "{code:?}");
        assert!(e.pending().iter().any(|p| p.armed), "{code:?}");
    }
}
