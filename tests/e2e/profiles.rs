//! Acquirer profiles end to end: each example profile in `profiles/` runs a full session
//! (sign-in, sale, void, refund, a reversal after a dropped answer, settlement) between the
//! engine and the simulated host built from the same profile, and the books reconcile.

use smartpos_sim::fault::FaultKind;
use smartpos_tests::{Pair, test_card, transport};
use smartpos_txn::engine::{Outcome, TxnRequest};
use smartpos_txn::model::{TxnKind, TxnRecord, TxnState};
use smartpos_txn::proto::Profile;

fn load(file: &str) -> Profile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    Profile::from_toml(&text).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()))
}

fn req(kind: TxnKind, amount: u64, original: Option<TxnRecord>) -> TxnRequest {
    TxnRequest {
        kind,
        amount,
        card: original.is_none().then(test_card),
        original,
        original_used: 0,
        idempotency_key: None,
        operator: Some("01".into()),
    }
}

fn txn(p: &mut Pair, r: TxnRequest) -> TxnRecord {
    let now = p.now();
    p.engine.start_txn(now, r);
    match p.run().result {
        Ok(Outcome::Txn { record, .. }) => record,
        other => panic!("unexpected {other:?}"),
    }
}

/// The whole session; returns the pair for profile-specific wire checks.
fn full_session(profile: &Profile) -> Pair {
    let name = profile.name().to_owned();
    let mut p = Pair::with_profile(profile.clone());
    let now = p.now();
    p.engine.start_sign_in(now, "01");
    let f = p.run();
    assert!(
        matches!(f.result, Ok(Outcome::SignedIn { .. })),
        "{name}: {f:?}"
    );

    let s1 = txn(&mut p, req(TxnKind::Sale, 10_000, None));
    assert_eq!(s1.state, TxnState::Approved, "{name} sale");
    let s2 = txn(&mut p, req(TxnKind::Sale, 2_000, None));
    let v = txn(&mut p, req(TxnKind::Void, 0, Some(s2.clone())));
    assert_eq!(v.state, TxnState::Approved, "{name} void");
    assert_eq!(
        p.journal.txn(&s2.reference).unwrap().unwrap().state,
        TxnState::Voided
    );
    let r = txn(&mut p, req(TxnKind::Refund, 3_000, Some(s1.clone())));
    assert_eq!(r.state, TxnState::Approved, "{name} refund");

    // The answer to this sale is dropped: the engine reverses it (98) and the host agrees.
    p.script.push_back(transport(FaultKind::Drop));
    let lost = txn(&mut p, req(TxnKind::Sale, 700, None));
    assert_eq!(lost.state, TxnState::Reversed, "{name} reversal");
    let ledger = p.host.ledger();
    let entry = ledger
        .transactions
        .iter()
        .find(|e| e.stan == lost.stan)
        .unwrap();
    assert_eq!(entry.status, smartpos_sim::acquirer::HostStatus::Reversed);

    let batch = p.engine.counters().batch;
    let now = p.now();
    let records = p.records();
    p.engine.start_settle(now, records);
    match p.run().result {
        Ok(Outcome::Settled {
            batch: b, balanced, ..
        }) => {
            assert_eq!(b, batch);
            assert!(balanced, "{name}: totals agree");
        }
        other => panic!("{name}: {other:?}"),
    }
    assert!(p.reconcile().is_empty(), "{name}: {:?}", p.reconcile());
    p
}

#[test]
fn unionpay_acquirer_profile_full_session() {
    let profile = load("unionpay-acquirer.toml");
    let p = full_session(&profile);
    // The first sale on the wire carries the acquirer's private fields and header.
    let d = &profile.dialect;
    let sale = p
        .sent
        .iter()
        .filter_map(|b| d.unpack(b).ok())
        .find(|m| m.mti.0 == 200 && m.text(3) == Some("000000"))
        .unwrap();
    assert_eq!(sale.text(43), Some("银联测试商户（上海）"));
    assert!(sale.has(46) && sale.has(56) && sale.has(59) && sale.has(64));
    assert_eq!(
        sale.header,
        smartpos_types::hex::decode("6000120000603100311000").unwrap()
    );
    // The plain cup dialect cannot read it.
    let raw = p
        .sent
        .iter()
        .find(|b| d.unpack(b).is_ok_and(|m| m.has(43) && m.mti.0 == 200))
        .unwrap();
    assert!(matches!(
        smartpos_iso8583::Dialect::cup().unpack(raw),
        Err(smartpos_iso8583::DecodeError::Invalid {
            field: Some(43),
            ..
        })
    ));
}

#[test]
fn iso87b_private_profile_full_session() {
    let profile = load("iso87b-private.toml");
    let p = full_session(&profile);
    let d = &profile.dialect;
    let msgs: Vec<_> = p.sent.iter().filter_map(|b| d.unpack(b).ok()).collect();
    assert_eq!(
        msgs.len(),
        p.sent.len(),
        "every frame decodes under the profile"
    );
    let sale = msgs.iter().find(|m| m.mti.0 == 200 && m.has(127)).unwrap();
    assert!(sale.has(120) && sale.has(121) && sale.has(128) && !sale.has(64));
    let reversal = msgs.iter().find(|m| m.mti.0 == 400).unwrap();
    assert!(!reversal.has(127), "the profile drops 127 from reversals");
    assert!(reversal.has(128), "reversals are MACed in 128");
    let settlement = msgs.iter().find(|m| m.mti.0 == 500).unwrap();
    assert!(settlement.has(121));
}
