//! Contactless sales: simulated cards through the kernel over the terminal's `ApduTransport`,
//! ARQC verified by the host simulator, ARPC returned, receipts with chip data.

use smartpos_crypto::pinblock::Pin;
use smartpos_receipt::ReceiptCopy;
use smartpos_sim::acquirer::HostStatus;
use smartpos_sim::card::{CardProfile, SimCard};
use smartpos_terminal::card::{CardError, PinEntry, PinInput};
use smartpos_terminal::{Probe, TerminalError};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{loopback_terminal, loopback_terminal_in};
use smartpos_txn::engine::Event;
use smartpos_txn::model::TxnState;
use std::sync::{Arc, Mutex};

/// A simulated card in the NFC field (the card itself implements `ApduTransport`).
fn nfc(profile: CardProfile) -> SimCard {
    SimCard::new(profile).unwrap()
}

struct Pad(&'static str);

impl PinEntry for Pad {
    fn pin(&mut self, masked_pan: &str, _amount: u64) -> PinInput {
        assert!(
            masked_pan.contains('*'),
            "the PIN pad sees a masked PAN only"
        );
        PinInput::Digits(Pin::new(self.0).unwrap())
    }
}

#[tokio::test]
async fn each_card_is_approved_with_a_verified_arqc_and_an_arpc() {
    let (server, acquirer, mut t, _dir) = loopback_terminal("nfc").await;
    for (profile, label) in [
        (CardProfile::Visa, "VISA"),
        (CardProfile::Mastercard, "MASTERCARD"),
        (CardProfile::UnionPay, "UNIONPAY"),
    ] {
        let mut card = nfc(profile);
        let o = t
            .sale_contactless(1_200, &mut card, None, None, None)
            .await
            .unwrap();
        assert_eq!(o.record.state, TxnState::Approved, "{label}");
        // No online PIN: field 22 says `2` (issue 20; `071` before).
        assert_eq!(o.record.entry_mode.as_deref(), Some("072"));
        let chip = o.card.expect("chip summary");
        assert!(
            chip.arpc_received,
            "{label}: the host returned an ARPC over a verified ARQC"
        );
        assert_eq!(chip.info.cryptogram_type, "ARQC");
        assert!(
            chip.info.in_field_ms < 500,
            "{label}: card-in-field {} ms",
            chip.info.in_field_ms
        );
        let job = t
            .receipts()
            .receipt(&o.record.reference, ReceiptCopy::Merchant, false)
            .unwrap();
        let text = job.lines.join("\n");
        assert!(
            text.contains(&chip.info.aid),
            "{label}: receipt shows the AID\n{text}"
        );
        assert!(
            text.contains(&chip.info.cryptogram),
            "{label}: receipt shows the cryptogram"
        );
    }
    let approved = acquirer
        .ledger()
        .transactions
        .iter()
        .filter(|e| e.status == HostStatus::Approved)
        .count();
    assert_eq!(approved, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn pin_card_sends_an_encrypted_pin_block() {
    let (server, _, mut t, _dir) = loopback_terminal("nfc").await;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = sent.clone();
    t.set_probe(move |p| {
        if let Probe::BeforeSend(b) = p {
            s2.lock().unwrap().push(b.to_vec());
        }
    });
    let mut card = nfc(CardProfile::PinRequired);
    let missing = t
        .sale_contactless(30_000, &mut card, None, None, None)
        .await;
    assert!(matches!(
        missing,
        Err(TerminalError::Card(CardError::PinPadMissing))
    ));
    let mut card = nfc(CardProfile::PinRequired);
    let o = t
        .sale_contactless(
            30_000,
            &mut card,
            Some(&mut Pad(smartpos_sim::keys::TEST_PIN)),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Approved);
    let dialect = smartpos_iso8583::Dialect::cup();
    let m = dialect
        .unpack(sent.lock().unwrap().last().unwrap())
        .unwrap();
    assert_eq!(m.get(52).map(<[u8]>::len), Some(8), "PIN block in field 52");
    assert_eq!(m.text(22), Some("071"));
    assert!(m.has(55) && m.has(23));
    server.shutdown().await;
}

#[tokio::test]
async fn expired_card_is_declined_54_and_pulled_card_sends_nothing() {
    let (server, acquirer, mut t, _dir) = loopback_terminal("nfc").await;
    let mut card = nfc(CardProfile::Expired);
    let o = t
        .sale_contactless(500, &mut card, None, None, None)
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Declined);
    assert_eq!(o.record.response_code.as_deref(), Some("54"));
    let before = acquirer.ledger().transactions.len();
    let mut card = nfc(CardProfile::PulledAway { after_apdus: 2 });
    let r = t
        .sale_contactless(500, &mut card, None, Some("pulled"), None)
        .await;
    assert!(
        matches!(r, Err(TerminalError::Card(CardError::Kernel(_)))),
        "{r:?}"
    );
    assert_eq!(
        acquirer.ledger().transactions.len(),
        before,
        "nothing reached the host"
    );
    assert!(
        t.journal().by_idempotency_key("pulled").unwrap().is_none(),
        "nothing journaled"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn card_from_another_issuer_is_declined_by_the_host() {
    let (server, _, mut t, _dir) = loopback_terminal("nfc").await;
    let mut card = SimCard::with_imk(CardProfile::Visa, &[0x42; 16]).unwrap();
    let o = t
        .sale_contactless(800, &mut card, None, None, None)
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Declined);
    assert_eq!(o.record.response_code.as_deref(), Some("05"), "wrong ARQC");
    assert!(!o.card.unwrap().arpc_received);
    server.shutdown().await;
}

/// A PIN pad that notes how many events the terminal had emitted when it was asked.
struct NotingPad(Arc<Mutex<Vec<Event>>>, Arc<Mutex<Option<usize>>>);

impl PinEntry for NotingPad {
    fn pin(&mut self, _masked_pan: &str, _amount: u64) -> PinInput {
        *self.1.lock().unwrap() = Some(self.0.lock().unwrap().len());
        PinInput::Digits(Pin::new(smartpos_sim::keys::TEST_PIN).unwrap())
    }
}

#[tokio::test]
async fn card_events_frame_the_read_and_a_retry_asks_for_no_card() {
    let (server, _, mut t, _dir) = loopback_terminal("nfc-events").await;
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = events.clone();
    t.set_listener(move |e| sink.lock().unwrap().push(e.clone()));
    let prompted_at = Arc::new(Mutex::new(None));
    let mut pad = NotingPad(events.clone(), prompted_at.clone());
    let mut card = nfc(CardProfile::PinRequired);
    let o = t
        .sale_contactless(30_000, &mut card, Some(&mut pad), Some("tap-1"), None)
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Approved);
    let seen = events.lock().unwrap().clone();
    let pos = |f: &dyn Fn(&Event) -> bool| seen.iter().position(f).expect("event");
    let waiting = pos(&|e| matches!(e, Event::WaitingForCard { amount: 30_000 }));
    let read = pos(&|e| matches!(e, Event::CardRead { .. }));
    let sending = pos(&|e| matches!(e, Event::Sending { .. }));
    assert!(waiting < read && read < sending, "{seen:?}");
    // The card may leave the field before the cardholder types the PIN.
    assert_eq!(*prompted_at.lock().unwrap(), Some(read + 1));
    match &seen[read] {
        Event::CardRead {
            pan_masked,
            entry_mode,
        } => {
            assert_eq!(Some(pan_masked.as_str()), o.record.pan_masked.as_deref());
            assert!(pan_masked.contains('*'));
            assert_eq!(entry_mode, "071");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::WaitingForCard { .. } | Event::CardRead { .. }))
            .count(),
        2
    );

    // A retry of the same key is answered from the journal: no "present card", no card read.
    events.lock().unwrap().clear();
    let mut untouched = nfc(CardProfile::PinRequired);
    let again = t
        .sale_contactless(30_000, &mut untouched, None, Some("tap-1"), None)
        .await
        .unwrap();
    assert!(again.replayed);
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::WaitingForCard { .. } | Event::CardRead { .. })),
        "{:?}",
        events.lock().unwrap()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn saved_receipt_settings_survive_a_reopen_and_are_audited() {
    use smartpos_receipt::{Lang, MerchantInfo, Width};
    use smartpos_terminal::printing::ReceiptSettings;
    let dir = smartpos_tests::temp_dir("receipts-saved");
    let (server, _, mut t) = smartpos_tests::loopback_terminal_in(&dir).await;
    let mut card = nfc(CardProfile::Visa);
    let o = t
        .sale_contactless(1_200, &mut card, None, None, None)
        .await
        .unwrap();
    let wanted = ReceiptSettings {
        merchant: MerchantInfo {
            name: "Saved Shop".into(),
            merchant_id: t.config().mid.clone(),
            terminal_id: t.config().tid.clone(),
        },
        width: Width::W48,
        lang: Lang::En,
    };
    // For this open only: gone after a reopen.
    let mut session_only = wanted.clone();
    session_only.merchant.name = "Session Shop".into();
    t.receipts().set_receipt_settings(session_only);
    let cfg = t.config().clone();
    drop(t);
    let mut t = smartpos_tests::reopen_terminal(cfg.clone(), &dir);
    assert_ne!(
        t.receipts().receipt_settings().merchant.name,
        "Session Shop"
    );
    // Saved: kept in the journal, with an audit row.
    t.receipts().save_receipt_settings(wanted.clone()).unwrap();
    drop(t);
    let mut t = smartpos_tests::reopen_terminal(cfg, &dir);
    assert_eq!(t.receipts().receipt_settings(), &wanted);
    let job = t
        .receipts()
        .receipt(&o.record.reference, ReceiptCopy::Customer, false)
        .unwrap();
    assert!(
        job.lines.iter().any(|l| l.contains("Saved Shop")),
        "{:?}",
        job.lines
    );
    assert!(job.lines.iter().all(|l| l.chars().count() <= 48));
    // Another width for one rendering changes nothing.
    let narrow = ReceiptSettings {
        width: Width::W32,
        ..wanted.clone()
    };
    let on_screen = t
        .receipts()
        .receipt_with(&narrow, &o.record.reference, ReceiptCopy::Customer, false)
        .unwrap();
    assert!(on_screen.lines.iter().all(|l| l.chars().count() <= 32));
    assert_eq!(t.receipts().receipt_settings(), &wanted);
    let audit = t.journal().audit_log(10).unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, _, action, detail)| action == "receipt_settings"
                && detail.contains("Saved Shop")),
        "{audit:?}"
    );
    server.shutdown().await;
}

/// Looks at the journal file `db` from a second, read-only connection right after each of the
/// terminal's commits; returns what `look` saw each time.
fn after_each_commit<T: Send + 'static>(
    t: &mut smartpos_terminal::Terminal,
    db: std::path::PathBuf,
    look: impl Fn(&rusqlite::Connection) -> T + Send + 'static,
) -> Arc<Mutex<Vec<T>>> {
    let seen: Arc<Mutex<Vec<T>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    t.set_probe(move |p| {
        if let Probe::AfterCommit { .. } = p {
            let c = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            sink.lock().unwrap().push(look(&c));
        }
    });
    seen
}

#[tokio::test]
async fn chip_data_is_committed_with_the_record_it_belongs_to() {
    let dir = smartpos_tests::temp_dir("nfc-chip-commit");
    let (server, _, mut t) = loopback_terminal_in(&dir).await;
    let seen = after_each_commit(&mut t, dir.join("j.db"), |c| {
        let count = |table: &str| -> i64 {
            c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("txn"), count("card_info"))
    });
    // The host is gone: the sale ends after its intent commit, with a reversal pending.
    server.shutdown().await;
    let mut card = nfc(CardProfile::UnionPay);
    let r = t
        .sale_contactless(1_200, &mut card, None, Some("gone"), None)
        .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.first(),
        Some(&(1, 1)),
        "the intent commit holds the record and its chip data: {seen:?}"
    );
    let rec = t
        .journal()
        .by_idempotency_key("gone")
        .unwrap()
        .expect("the sale's record");
    assert_ne!(rec.state, TxnState::Approved, "{r:?}");
    let info = t
        .journal()
        .card_info(&rec.reference)
        .unwrap()
        .expect("chip data stored with the record");
    assert_eq!(info.cryptogram_type, "ARQC");
    assert_eq!(info.aid, "A000000333010101");
    if let Ok(o) = &r {
        assert_eq!(o.card.as_ref().map(|c| &c.info), Some(&info));
    }
}

#[tokio::test]
async fn the_result_line_of_the_support_trace_is_committed_with_the_outcome() {
    let dir = smartpos_tests::temp_dir("nfc-result-line");
    let (server, _, mut t) = loopback_terminal_in(&dir).await;
    let seen = after_each_commit(&mut t, dir.join("j.db"), |c| {
        c.query_row("SELECT text FROM trace ORDER BY id DESC LIMIT 1", [], |r| {
            r.get::<_, String>(0)
        })
        .ok()
    });
    let mut card = nfc(CardProfile::Visa);
    let o = t
        .sale_contactless(1_200, &mut card, None, None, None)
        .await
        .unwrap();
    assert_eq!(o.record.state, TxnState::Approved);
    let lines = t.journal().trace_lines().unwrap();
    let last = lines.last().map(|l| l.2.clone()).unwrap();
    assert!(last.starts_with("Txn(Sale): "), "{last}");
    assert!(last.contains(&o.record.reference), "{last}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "intent and outcome: {seen:?}");
    assert_eq!(
        seen.last(),
        Some(&Some(last)),
        "the outcome commit already held the result line"
    );
    server.shutdown().await;
}
