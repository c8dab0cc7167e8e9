//! Every response code the simulator can return comes back to the app with its diagnosis, and
//! timeouts during a sale and during a refund say what happened to the money.

use smartpos_diagnosis::{self as diagnosis, Category, MoneyState};
use smartpos_sim::fault::FaultKind;
use smartpos_tests::{Pair, test_card, transport};
use smartpos_txn::engine::{OpError, Outcome, TxnRequest};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};

fn signed_in() -> Pair {
    let mut p = Pair::new("cup");
    let now = p.now();
    p.engine.start_sign_in(now, "01");
    assert!(matches!(p.run().result, Ok(Outcome::SignedIn { .. })));
    p
}

fn run(
    p: &mut Pair,
    kind: TxnKind,
    amount: u64,
    original: Option<TxnRecord>,
) -> Result<(TxnRecord, bool), OpError> {
    let now = p.now();
    p.engine.start_txn(
        now,
        TxnRequest {
            kind,
            amount,
            card: original.is_none().then(test_card),
            original,
            original_used: 0,
            idempotency_key: None,
            operator: None,
        },
    );
    match p.run().result {
        Ok(Outcome::Txn {
            record,
            reversal_pending,
            ..
        }) => Ok((record, reversal_pending)),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

#[test]
fn every_numeric_response_code_round_trips_to_its_diagnosis() {
    let mut p = signed_in();
    let mut seen = 0;
    let mut reversed = 0;
    for code in 0..100u64 {
        let (rec, _) = run(&mut p, TxnKind::Sale, 990_000 + code, None).unwrap();
        let rc = format!("{code:02}");
        assert_eq!(
            rec.response_code.as_deref(),
            Some(rc.as_str()),
            "the host produced {rc}"
        );
        let table = diagnosis::for_response_code(&rc, TxnKind::Sale);
        if !diagnosis::is_known_response_code(&rc) {
            // Not in the table: it might be an approval, so the sale was reversed.
            assert_eq!(rec.state, TxnState::Reversed, "{rc}");
            let d = diagnosis::for_outcome(&rec, false).expect("diagnosis");
            assert_eq!(d.code, "txn.reversed", "{rc}");
            assert_eq!(d.money, MoneyState::NotCharged, "{rc}");
            // `explain` of the code says what the engine just did (issue 22: it said
            // "declined, not charged, safe to retry").
            assert_eq!(table.code, "host.unknown_code_reversed", "{rc}");
            assert_eq!(table.money, MoneyState::ReversalPending, "{rc}");
            assert_eq!(table.host_code.as_deref(), Some(rc.as_str()));
            reversed += 1;
            seen += 1;
            continue;
        }
        match diagnosis::for_outcome(&rec, false) {
            None => {
                assert_eq!(rec.state, TxnState::Approved, "{rc}");
                assert_eq!(
                    table.money,
                    MoneyState::Charged,
                    "{rc}: approvals are charged"
                );
            }
            Some(d) => {
                assert_eq!(rec.state, TxnState::Declined, "{rc}");
                assert_eq!(d.code, table.code, "{rc}");
                assert_eq!(d.category, table.category, "{rc}");
                assert_eq!(d.money, table.money, "{rc}");
                assert_eq!(d.host_code.as_deref(), Some(rc.as_str()));
                assert!(!d.title.zh.is_empty() && !d.title.en.is_empty());
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 100);
    // Codes without a diagnosis: ISO's reserved ranges 46-50, 69-74, 80-89 and the file-update
    // and other codes a POS sale never gets (17, 18, 23, 24, 26-29, 32, 37, 42).
    assert_eq!(reversed, 32);
    // The money state follows the code: insufficient funds is an account problem, no charge.
    let d = diagnosis::for_response_code("51", TxnKind::Sale);
    assert_eq!(
        (d.category, d.money),
        (Category::Account, MoneyState::NotCharged)
    );
    assert!(p.reconcile().is_empty(), "{:?}", p.reconcile());
}

#[test]
fn timeout_during_a_sale_and_during_a_refund_say_where_the_money_is() {
    let mut p = signed_in();
    // Sale: no answer, and the reversals go unanswered too: reversal pending.
    for _ in 0..4 {
        p.script.push_back(transport(FaultKind::Drop));
    }
    let (rec, pending) = run(&mut p, TxnKind::Sale, 1_500, None).unwrap();
    let d = diagnosis::for_outcome(&rec, pending).unwrap();
    assert_eq!(d.money, MoneyState::ReversalPending, "{d:?}");
    assert_eq!(d.category, Category::Network);
    // Once the reversal is acknowledged: not charged.
    let now = p.now();
    p.engine.start_recover(now);
    assert!(matches!(
        p.run().result,
        Ok(Outcome::Recovered { remaining: 0, .. })
    ));
    let rec = p.journal.txn(&rec.reference).unwrap().unwrap();
    assert_eq!(
        diagnosis::for_outcome(&rec, false).unwrap().money,
        MoneyState::NotCharged
    );
    // Refund: the advice goes unanswered: recorded, queued, resolving.
    let (sale, _) = run(&mut p, TxnKind::Sale, 9_000, None).unwrap();
    for _ in 0..3 {
        p.script.push_back(transport(FaultKind::Drop));
    }
    let (refund, _) = run(&mut p, TxnKind::Refund, 2_000, Some(sale)).unwrap();
    assert_eq!(refund.state, TxnState::Queued);
    let d = diagnosis::for_outcome(&refund, false).unwrap();
    assert_eq!(d.money, MoneyState::UnknownResolving, "{d:?}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut p = signed_in();
    let (sale, _) = run(&mut p, TxnKind::Sale, 1_000, None).unwrap();
    let before = p.records();
    let pending_before = p.engine.pending().len();
    for (kind, amount, original) in [
        (TxnKind::Sale, 0, None),
        (TxnKind::Sale, 1_000_000_000_000, None),
        (TxnKind::Refund, 0, Some(sale.clone())),
        (TxnKind::Refund, 1_001, Some(sale.clone())),
        (TxnKind::Completion, 10, Some(sale.clone())),
    ] {
        let r = run(&mut p, kind, amount, original);
        assert!(
            matches!(r, Err(OpError::Rejected { .. })),
            "{kind} {amount}: {r:?}"
        );
    }
    assert_eq!(p.records(), before, "nothing journaled");
    assert_eq!(p.engine.pending().len(), pending_before);
}

#[test]
fn host_answers_a0_to_a_request_with_a_bad_mac_and_the_app_learns_why() {
    use smartpos_sim::fault::FaultSet;
    let mut p = signed_in();
    let now = p.now();
    p.engine.start_txn(
        now,
        TxnRequest {
            kind: TxnKind::Sale,
            amount: 2_000,
            card: Some(test_card()),
            original: None,
            original_used: 0,
            idempotency_key: None,
            operator: None,
        },
    );
    // The sale leaves the terminal and is damaged on the way: its MAC no longer matches.
    let mut sent = loop {
        match p.engine.poll() {
            Some(smartpos_txn::engine::Output::Commit(c)) => {
                p.journal.apply(&c).unwrap();
                p.engine.commit_done(c.id);
            }
            Some(smartpos_txn::engine::Output::Transmit(bytes)) => break bytes,
            Some(_) => {}
            None => panic!("nothing sent"),
        }
    };
    let n = sent.len();
    sent[n - 1] ^= 0x01;
    let answer = p
        .host
        .handle_request(FaultSet::default(), &sent)
        .expect("the host answers");
    let m = smartpos_iso8583::Dialect::cup().unpack(&answer).unwrap();
    assert_eq!(
        m.text(39),
        Some("A0"),
        "the host refuses a request whose MAC fails"
    );
    let now = p.now();
    p.engine.handle_host_frame(now, &answer);
    let f = p.run();
    let Ok(Outcome::Txn { record, .. }) = f.result else {
        panic!("{f:?}")
    };
    assert_eq!(record.state, TxnState::Declined);
    assert_eq!(record.response_code.as_deref(), Some("A0"));
    let d = diagnosis::for_outcome(&record, false).unwrap();
    let table = diagnosis::for_response_code("A0", TxnKind::Sale);
    assert_eq!(
        (d.code, d.category, d.money),
        (table.code, Category::Security, MoneyState::NotCharged)
    );
    assert!(p.reconcile().is_empty(), "{:?}", p.reconcile());
}
