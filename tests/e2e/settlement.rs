//! Settlement against a host that does not balance (issue 20 item 4): a 95 answer to the 0500,
//! or a 0510 whose field 48 says "not balanced" (`2`), leads to the batch upload (0320, 60.3
//! `201`) and the end of batch (0320, 60.3 `202`), resumable after a crash. The `cup` default
//! is UnionPay's: 62-digit totals (domestic and foreign cards) and up to eight records per
//! upload in field 48; a profile's `[settlement]` keeps the layouts from before.

use smartpos_iso8583::{Dialect, Message};
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, SettlementAnswer};
use smartpos_tests::{HostAnswer, Pair, TempDir, test_card, test_tmk};
use smartpos_txn::engine::{Command, OpError, Outcome, TxnRequest};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};
use smartpos_txn::proto::{CardData, Profile};
use smartpos_types::Pan;
use std::sync::Arc;

fn signed_in(p: &mut Pair) {
    let now = p.now();
    p.engine.start_sign_in(now, "01");
    let f = p.run();
    assert_eq!(f.command, Command::SignIn);
    assert!(matches!(f.result, Ok(Outcome::SignedIn { .. })), "{f:?}");
}

/// A pair whose host answers the 0500 as `answer` says.
fn pair_answering(answer: SettlementAnswer) -> Pair {
    let host = Acquirer::new(AcquirerConfig {
        dialect: "cup".into(),
        tmk: test_tmk(),
        ledger_file: None,
    })
    .unwrap();
    host.set_settlement_answer(answer);
    let dir = TempDir::new("settle");
    let mut p = Pair::with_host("cup", Arc::new(host), &dir.join("journal.db"));
    p.keep_dir(dir);
    signed_in(&mut p);
    p
}

fn sale_with(p: &mut Pair, amount: u64, card: CardData) -> TxnRecord {
    let now = p.now();
    p.engine.start_txn(
        now,
        TxnRequest {
            kind: TxnKind::Sale,
            amount,
            card: Some(card),
            original: None,
            original_used: 0,
            idempotency_key: None,
            operator: Some("01".into()),
        },
    );
    match p.run().result {
        Ok(Outcome::Txn { record, .. }) => record,
        other => panic!("{other:?}"),
    }
}

fn sale(p: &mut Pair, amount: u64) -> TxnRecord {
    sale_with(p, amount, test_card())
}

/// A Visa test card (PAN outside UnionPay's 62 range: a foreign card).
fn visa() -> CardData {
    CardData {
        pan: Pan::new("4761739001010010").ok(),
        expiry: Some("3012".into()),
        entry_mode: "012".into(),
        ..CardData::default()
    }
}

fn settle(p: &mut Pair) -> Result<Outcome, OpError> {
    let records = p.records();
    let now = p.now();
    p.engine.start_settle(now, records);
    p.run().result
}

/// The settlement messages sent since `from`, decoded.
fn sent_since(p: &Pair, from: usize) -> Vec<Message> {
    let d = Dialect::cup();
    p.sent[from..]
        .iter()
        .map(|b| d.unpack(b).unwrap())
        .collect()
}

fn nmic(m: &Message) -> String {
    m.text(60)
        .and_then(|s| s.get(8..11))
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_95_answer_to_the_totals_leads_to_the_batch_upload_and_the_end_of_batch() {
    let mut p = pair_answering(SettlementAnswer::InField48);
    let a = sale(&mut p, 1_000);
    let b = sale(&mut p, 2_000);
    let batch = p.engine.counters().batch;
    let from = p.sent.len();
    // The host processes the 0500 (its totals agree) but answers 95.
    p.answers.push_back(HostAnswer::Processed("95"));
    match settle(&mut p) {
        Ok(Outcome::Settled {
            batch: b2,
            balanced,
            uploaded,
            ..
        }) => {
            assert_eq!(b2, batch);
            assert!(!balanced, "95: the host does not agree");
            assert_eq!(uploaded, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.engine.counters().batch, batch + 1);
    let msgs = sent_since(&p, from);
    let kinds: Vec<(u16, String)> = msgs.iter().map(|m| (m.mti.0, nmic(m))).collect();
    assert_eq!(
        kinds,
        vec![
            (500, "201".into()),
            (320, "201".into()),
            (320, "202".into())
        ]
    );
    // One upload with both records: n2 count, then class, STAN, PAN n20, amount n12 each.
    let upload = msgs[1].text(48).unwrap().to_owned();
    assert_eq!(
        upload,
        format!(
            "02\
             00{:06}06222021234567890128000000001000\
             00{:06}06222021234567890128000000002000",
            a.stan, b.stan
        )
    );
    assert_eq!(
        msgs[2].text(48),
        Some("0002"),
        "end of batch: records uploaded"
    );
    let uploads = p.host.ledger().uploads;
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    assert!(uploads.iter().all(|u| u.known), "{uploads:?}");
}

#[test]
fn the_totals_are_62_digits_domestic_then_foreign() {
    let mut p = pair_answering(SettlementAnswer::InField48);
    sale(&mut p, 1_000);
    sale(&mut p, 2_500);
    sale_with(&mut p, 700, visa());
    let from = p.sent.len();
    match settle(&mut p) {
        Ok(Outcome::Settled { balanced, .. }) => assert!(balanced),
        other => panic!("{other:?}"),
    }
    let totals = sent_since(&p, from)[0].text(48).unwrap().to_owned();
    assert_eq!(
        totals, "00000000350000200000000000000000000000007000010000000000000000",
        "domestic: debit 35.00 in 2, no credits, result 0; foreign: debit 7.00 in 1"
    );
    assert_eq!(totals.len(), 62);
}

#[test]
fn a_0510_saying_not_balanced_uploads_in_records_of_eight() {
    let mut p = pair_answering(SettlementAnswer::InField48);
    let mut records = Vec::new();
    for i in 0..10 {
        records.push(sale(&mut p, 2_000 + 100 * i));
    }
    // The host approved a sale the terminal recorded as declined: the totals differ.
    p.answers.push_back(HostAnswer::Processed("05"));
    let declined = sale(&mut p, 3_000);
    assert_eq!(declined.state, TxnState::Declined);
    let from = p.sent.len();
    match settle(&mut p) {
        Ok(Outcome::Settled {
            balanced, uploaded, ..
        }) => {
            assert!(!balanced);
            assert_eq!(uploaded, 10);
        }
        other => panic!("{other:?}"),
    }
    let msgs = sent_since(&p, from);
    let ledger = p.host.ledger();
    let kinds: Vec<(u16, String)> = msgs.iter().map(|m| (m.mti.0, nmic(m))).collect();
    assert_eq!(
        kinds,
        vec![
            (500, "201".into()),
            (320, "201".into()),
            (320, "201".into()),
            (320, "202".into())
        ]
    );
    assert!(msgs[1].text(48).unwrap().starts_with("08"));
    assert_eq!(msgs[1].text(48).unwrap().len(), 2 + 8 * 40);
    assert!(msgs[2].text(48).unwrap().starts_with("02"));
    assert_eq!(msgs[3].text(48), Some("0010"));
    assert_eq!(ledger.uploads.len(), 10);
}

#[test]
fn a_host_that_always_answers_95_settles_after_the_upload() {
    let mut p = pair_answering(SettlementAnswer::Always95);
    sale(&mut p, 1_000);
    let batch = p.engine.counters().batch;
    assert!(matches!(
        settle(&mut p),
        Ok(Outcome::Settled {
            balanced: false,
            uploaded: 1,
            ..
        })
    ));
    assert_eq!(p.engine.counters().batch, batch + 1);
}

#[test]
fn an_interrupted_95_settlement_resumes_where_it_stopped() {
    // Crash after each request of the flow (0500, two uploads, end of batch): settling again
    // finishes it, the host holds each record once, the batch advances once.
    for sent in 1..=4 {
        let mut p = pair_answering(SettlementAnswer::Always95);
        for i in 0..9 {
            sale(&mut p, 2_000 + 100 * i);
        }
        let batch = p.engine.counters().batch;
        let records = p.records();
        let now = p.now();
        p.engine.start_settle(now, records);
        p.run_until_sent(sent);
        let mut p = p.restart();
        assert_eq!(
            p.engine.counters().batch,
            batch,
            "crash after request {sent}"
        );
        match settle(&mut p) {
            Ok(Outcome::Settled { balanced, .. }) => assert!(!balanced),
            other => panic!("after request {sent}: {other:?}"),
        }
        assert_eq!(p.engine.counters().batch, batch + 1);
        let uploads = p.host.ledger().uploads;
        assert_eq!(uploads.len(), 9, "after request {sent}: {uploads:?}");
        let d = Dialect::cup();
        // The restarted terminal ends the batch itself.
        let ends = p
            .sent
            .iter()
            .filter(|b| {
                let m = d.unpack(b).unwrap();
                m.mti.0 == 320 && nmic(&m) == "202"
            })
            .count();
        assert!(ends >= 1, "after request {sent}");
    }
}

#[test]
fn a_profile_keeps_the_31_digit_totals_and_one_upload_per_transaction() {
    let profile = Profile::from_toml(
        "base = \"cup\"\n[settlement]\ntotals = \"single\"\nupload = \"per-transaction\"\n",
    )
    .unwrap();
    let mut p = Pair::with_profile(profile);
    signed_in(&mut p);
    sale(&mut p, 1_000);
    p.answers.push_back(HostAnswer::Processed("05"));
    sale(&mut p, 2_000);
    sale(&mut p, 3_000);
    let from = p.sent.len();
    match settle(&mut p) {
        Ok(Outcome::Settled {
            balanced, uploaded, ..
        }) => {
            assert!(!balanced);
            assert_eq!(uploaded, 2);
        }
        other => panic!("{other:?}"),
    }
    let msgs = sent_since(&p, from);
    assert_eq!(
        msgs[0].text(48),
        Some("0020000000040000000000000000000"),
        "31 digits: debit count n3, amount n12, credit count n3, amount n12, 0"
    );
    let mtis: Vec<u16> = msgs.iter().map(|m| m.mti.0).collect();
    assert_eq!(mtis, vec![500, 320, 320, 320]);
    assert!(
        msgs[1].has(61) && !msgs[1].has(48),
        "one transaction per upload"
    );
}

/// Through the terminal runtime over TCP: a batch the host agrees with closes without upload
/// (00, result `1` for both classes), and with the host answering 95 the next batch is
/// uploaded, each record once with its class and the card number from the sealed card on
/// file, and closed.
#[tokio::test]
async fn the_terminal_settles_with_a_host_answering_95_over_tcp() {
    use smartpos_tests::{TerminalCalls, loopback_terminal};
    let (server, acquirer, mut t, _dir) = loopback_terminal("settle95-tcp").await;
    acquirer.set_settlement_answer(SettlementAnswer::Code95);
    let a = t.sale(1_000, test_card(), None, Some("01")).await.unwrap();
    let b = t.sale(2_000, visa(), None, Some("01")).await.unwrap();
    assert_eq!(b.record.state, TxnState::Approved);
    let batch = t.batch();
    // Balanced: the host answers 00 with 1 for both classes.
    match t.settle().await.unwrap() {
        Outcome::Settled {
            balanced, uploaded, ..
        } => {
            assert!(balanced);
            assert_eq!(uploaded, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.batch(), batch + 1);
    // Next batch: the host always answers 95 now.
    acquirer.set_settlement_answer(SettlementAnswer::Always95);
    let c = t.sale(3_000, test_card(), None, Some("01")).await.unwrap();
    let d = t.sale(4_000, visa(), None, Some("01")).await.unwrap();
    match t.settle().await.unwrap() {
        Outcome::Settled {
            batch: b2,
            balanced,
            uploaded,
            totals,
        } => {
            assert_eq!(b2, batch + 1);
            assert!(!balanced);
            assert_eq!(uploaded, 2);
            assert_eq!(totals.debit_amount, 7_000);
        }
        other => panic!("{other:?}"),
    }
    let uploads = acquirer.ledger().uploads;
    let got: Vec<(u32, u64, Option<&str>, Option<&str>)> = uploads
        .iter()
        .map(|u| {
            (
                u.stan,
                u.amount,
                u.class.as_deref(),
                u.pan_masked.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                c.record.stan,
                3_000,
                Some("00"),
                Some("622202*********0128")
            ),
            (d.record.stan, 4_000, Some("01"), Some("476173******0010")),
        ]
    );
    assert!(uploads.iter().all(|u| u.known));
    assert!(a.record.stan < c.record.stan);
    server.shutdown().await;
}

#[test]
fn the_totals_name_the_operator_who_settles() {
    let mut p = pair_answering(SettlementAnswer::InField48);
    sale(&mut p, 1_000);
    let from = p.sent.len();
    let records = p.records();
    let now = p.now();
    p.engine.start_settle_by(now, records, Some("07".into()));
    assert!(matches!(p.run().result, Ok(Outcome::Settled { .. })));
    assert_eq!(sent_since(&p, from)[0].text(63), Some("07 "));
    // Nobody named: no field 63.
    sale(&mut p, 1_000);
    let from = p.sent.len();
    assert!(matches!(settle(&mut p), Ok(Outcome::Settled { .. })));
    assert!(!sent_since(&p, from)[0].has(63));
}
