//! What the terminal puts in fields 22, 60 and 63 (issue 20 item 3), seen on the wire: the
//! requests as the runtime hands them to the link, decoded with the `cup` dialect.
//!
//! Field 22: the PAN entry digits and a PIN digit, `1` a PIN block is included, `2` none.
//! Field 60 of a financial request (`cup`): 60.1 type code, 60.2 batch, 60.3 `000`, 60.4 the
//! terminal's read capability (`6`: contactless, contact and magnetic stripe), 60.5 the IC
//! card condition code (`2` when the chip failed and the stripe was read, else `0`).
//! Void, refund and completion carry 22 and the original's card number (field 2, keyed `01`
//! from the terminal's card on file) when no card is presented again.

use smartpos_crypto::pinblock::Pin;
use smartpos_iso8583::{Dialect, Message};
use smartpos_sim::card::{CardProfile, SimCard};
use smartpos_terminal::Probe;
use smartpos_terminal::card::{PinEntry, PinInput};
use smartpos_tests::{TerminalCalls, loopback_terminal, swiped_card, test_card};
use smartpos_txn::model::TxnState;
use smartpos_txn::proto::CardData;
use smartpos_types::Track2;
use std::sync::{Arc, Mutex};

struct Pad;

impl PinEntry for Pad {
    fn pin(&mut self, _masked_pan: &str, _amount: u64) -> PinInput {
        PinInput::Digits(Pin::new("2468").unwrap())
    }
}

/// Every request the terminal sends, decoded.
fn record_requests(t: &mut smartpos_terminal::Terminal) -> Arc<Mutex<Vec<Message>>> {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = sent.clone();
    let d = Dialect::cup();
    t.set_probe(move |p| {
        if let Probe::BeforeSend(b) = p
            && let Ok(m) = d.unpack(b)
        {
            s2.lock().unwrap().push(m);
        }
    });
    sent
}

fn last(sent: &Arc<Mutex<Vec<Message>>>) -> Message {
    sent.lock().unwrap().last().cloned().unwrap()
}

#[tokio::test]
async fn contactless_sale_says_in_field_22_whether_a_pin_is_included() {
    let (server, _, mut t, _dir) = loopback_terminal("f22").await;
    let sent = record_requests(&mut t);
    let mut card = SimCard::new(CardProfile::Visa).unwrap();
    let o = t
        .sale_contactless(1_200, &mut card, None, None, None)
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Approved);
    let m = last(&sent);
    assert!(!m.has(52));
    assert_eq!(m.text(22), Some("072"), "contactless, no PIN");
    assert_eq!(o.record.entry_mode.as_deref(), Some("072"));
    let mut card = SimCard::new(CardProfile::PinRequired).unwrap();
    t.sale_contactless(30_000, &mut card, Some(&mut Pad), None, None)
        .await
        .unwrap();
    let m = last(&sent);
    assert!(m.has(52));
    assert_eq!(m.text(22), Some("071"), "contactless with a PIN block");
    server.shutdown().await;
}

#[tokio::test]
async fn financial_requests_carry_the_13_digit_field_60() {
    let (server, _, mut t, _dir) = loopback_terminal("f60").await;
    let sent = record_requests(&mut t);
    let batch = t.batch();
    let s = t.sale(1_000, test_card(), None, Some("01")).await.unwrap();
    let m = last(&sent);
    assert_eq!(
        m.text(60).map(str::to_owned),
        Some(format!("22{batch:06}00060")),
        "60.1 22, 60.2 batch, 60.3 000, 60.4 6, 60.5 0"
    );
    t.void(&s.record.reference, None, Some("01")).await.unwrap();
    assert_eq!(
        last(&sent).text(60).map(str::to_owned),
        Some(format!("23{batch:06}00060"))
    );
    // A chip card whose chip could not be read, swiped: 60.5 = 2, field 22 the stripe's `02`
    // (UnionPay signals the fallback in 60.5, not with the card schemes' 80).
    let fallback = CardData {
        track2: Track2::new("6222021234567890128D30122011234567890"),
        entry_mode: "802".into(),
        ..CardData::default()
    };
    t.sale(1_100, fallback, None, Some("01")).await.unwrap();
    let m = last(&sent);
    assert_eq!(
        m.text(60).map(str::to_owned),
        Some(format!("22{batch:06}00062"))
    );
    assert_eq!(m.text(22), Some("022"));
    // Network management and settlement messages keep 60.1-60.3.
    t.admin().echo().await.unwrap();
    assert_eq!(
        last(&sent).text(60).map(str::to_owned),
        Some(format!("00{batch:06}301"))
    );
    server.shutdown().await;
}
#[tokio::test]
async fn void_refund_and_completion_carry_field_22_and_the_card_number() {
    let (server, _, mut t, _dir) = loopback_terminal("fvoid").await;
    let sent = record_requests(&mut t);
    let swiped = t
        .sale(2_000, swiped_card(), None, Some("01"))
        .await
        .unwrap();
    t.void(&swiped.record.reference, None, Some("01"))
        .await
        .unwrap();
    let v = last(&sent);
    assert_eq!(v.text(3), Some("200000"));
    assert_eq!(
        v.text(22),
        Some("012"),
        "card number from the terminal's records"
    );
    assert_eq!(v.text(2), Some("6222021234567890128"));
    assert_eq!(v.text(14), Some("3012"));
    assert!(!v.has(35) && !v.has(52), "no track or PIN data kept");
    assert_eq!(v.text(63), Some("01 "));

    let s = t.sale(5_000, test_card(), None, Some("01")).await.unwrap();
    t.refund(&s.record.reference, 1_000, None, Some("01"))
        .await
        .unwrap();
    let r = last(&sent);
    assert_eq!(r.mti.0, 220);
    assert_eq!(r.text(22), Some("012"));
    assert_eq!(r.text(2), Some("6222021234567890128"));
    assert_eq!(r.text(63), Some("01 "));

    let pa = t
        .preauth(5_000, test_card(), None, Some("01"))
        .await
        .unwrap();
    let c = t
        .complete(&pa.record.reference, 4_000, None, Some("01"))
        .await
        .unwrap();
    assert_eq!(c.record.state, TxnState::Approved);
    let m = last(&sent);
    assert_eq!(m.text(22), Some("012"));
    assert_eq!(m.text(2), Some("6222021234567890128"));
    assert_eq!(m.text(63), Some("01 "));
    server.shutdown().await;
}
