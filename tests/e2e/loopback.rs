//! The terminal runtime over loopback TCP and TLS against the host simulator's server.

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::fault::{FaultKind, FaultPlan};
use smartpos_sim::net::{Server, ServerConfig, ServerHandle, TEST_CA_PEM, test_tls_config};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::journal::JournalKey;
use smartpos_terminal::link::{LinkConfig, TlsClientConfig};
use smartpos_terminal::{Terminal, TerminalConfig, TerminalError, TxnOutcome};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, TID, TempFile, swiped_card, temp_journal, test_card, test_tmk};
use smartpos_txn::engine::{OpError, Outcome};
use smartpos_txn::model::{TxnKind, TxnState};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

async fn host(
    dialect: &str,
    tls: bool,
    faults: FaultPlan,
    seed: u64,
) -> (ServerHandle, Arc<Acquirer>) {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: dialect.into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let server = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            tls: tls.then(test_tls_config),
            faults,
            seed,
            ..ServerConfig::default()
        },
        acquirer.clone(),
    )
    .await
    .unwrap()
    .spawn();
    (server, acquirer)
}

fn config(dialect: &str, addr: std::net::SocketAddr, tls: bool, timeout_ms: u64) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{}", addr.port()));
    if tls {
        link.tls = Some(TlsClientConfig::new(TEST_CA_PEM.to_vec(), "localhost"));
    }
    link.response_timeout = Duration::from_millis(timeout_ms);
    link.connect_timeout = Duration::from_secs(2);
    TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: dialect.into(),
        link,
        utc_offset_minutes: 480,
    }
}

fn open(cfg: TerminalConfig, path: &Path) -> Terminal {
    Terminal::open(cfg, path, test_tmk(), &JournalKey::new([3; 32])).unwrap()
}

fn journal_path(name: &str) -> TempFile {
    temp_journal(name)
}

async fn every_flow(dialect: &str, tls: bool) {
    let (server, acquirer) = host(dialect, tls, FaultPlan::none(), 1).await;
    let path = journal_path("flows");
    let mut t = open(config(dialect, server.local_addr(), tls, 2_000), &path);
    assert!(matches!(
        t.sale(100, test_card(), None, None).await,
        Err(TerminalError::Op(OpError::NotSignedIn))
    ));
    t.admin().sign_in("01").await.unwrap();
    t.admin().echo().await.unwrap();
    let s = t
        .sale(10_000, test_card(), Some("k1"), Some("01"))
        .await
        .unwrap();
    assert_eq!(s.record.state, TxnState::Approved);
    let swiped = t
        .sale(2_000, swiped_card(), None, Some("01"))
        .await
        .unwrap();
    assert_eq!(swiped.record.state, TxnState::Approved);
    let v = t
        .void(&swiped.record.reference, None, Some("01"))
        .await
        .unwrap();
    assert_eq!(v.record.state, TxnState::Approved);
    let r = t
        .refund(&s.record.reference, 2_500, None, Some("01"))
        .await
        .unwrap();
    assert_eq!(r.record.state, TxnState::Approved);
    // The public refund goes through the refund policy, which denies it (and names the
    // rule) before the engine's own check would.
    let over = t.refund(&s.record.reference, 7_501, None, Some("01")).await;
    assert!(
        matches!(&over, Err(TerminalError::RefundDenied { denials }) if denials.iter().any(|d| d.rule.code() == "policy.exceeds_remainder")),
        "{over:?}"
    );
    let pa = t.preauth(5_000, test_card(), None, None).await.unwrap();
    let c = t
        .complete(&pa.record.reference, 4_000, None, None)
        .await
        .unwrap();
    assert_eq!(c.record.state, TxnState::Approved);
    let pa2 = t.preauth(1_000, test_card(), None, None).await.unwrap();
    let cancel = t
        .cancel_preauth(&pa2.record.reference, None, None)
        .await
        .unwrap();
    assert_eq!(cancel.record.state, TxnState::Approved);
    let bal = t.balance(test_card(), None).await.unwrap();
    assert!(bal.reply.and_then(|r| r.balance).is_some());
    let declined = t.sale(1_051, test_card(), None, None).await.unwrap();
    assert_eq!(declined.record.state, TxnState::Declined);
    let batch = t.batch();
    match t.settle().await.unwrap() {
        Outcome::Settled { balanced, .. } => assert!(balanced),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.batch(), batch + 1);
    t.admin().sign_off().await.unwrap();
    let diffs = reconcile(&t.journal().all().unwrap(), &acquirer.ledger(), TID, false);
    assert!(diffs.is_empty(), "{dialect} tls={tls}: {diffs:?}");
    t.disconnect().await;
    server.shutdown().await;
}

#[tokio::test]
async fn every_flow_over_tcp_cup() {
    every_flow("cup", false).await;
}

#[tokio::test]
async fn every_flow_over_tls_cup() {
    every_flow("cup", true).await;
}

#[tokio::test]
async fn every_flow_over_tcp_iso87b() {
    every_flow("iso87b", false).await;
}

#[tokio::test]
async fn every_flow_over_tls_iso87b() {
    every_flow("iso87b", true).await;
}

#[tokio::test]
async fn idempotent_sale_survives_restart_and_never_reaches_the_host_twice() {
    let (server, acquirer) = host("cup", false, FaultPlan::none(), 1).await;
    let path = journal_path("idem");
    let cfg = config("cup", server.local_addr(), false, 2_000);
    let first = {
        let mut t = open(cfg.clone(), &path);
        t.admin().sign_in("01").await.unwrap();
        let o = t
            .sale(4_321, test_card(), Some("order-77"), None)
            .await
            .unwrap();
        t.disconnect().await;
        o
    };
    let mut t = open(cfg, &path);
    let again = t
        .sale(4_321, test_card(), Some("order-77"), None)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.record.reference, first.record.reference);
    assert_eq!(
        acquirer.ledger().transactions.len(),
        1,
        "the second call never reached the host"
    );
    let conflict = t.sale(1, test_card(), Some("order-77"), None).await;
    assert!(matches!(conflict, Err(TerminalError::IdempotencyConflict)));
    server.shutdown().await;
}

#[tokio::test]
async fn the_journal_limits_what_can_follow_a_refund_or_a_completion() {
    let (server, acquirer) = host("cup", false, FaultPlan::none(), 1).await;
    let path = journal_path("used");
    let mut t = open(config("cup", server.local_addr(), false, 2_000), &path);
    t.admin().sign_in("01").await.unwrap();
    let rejected = |r: Result<TxnOutcome, TerminalError>| {
        assert!(
            matches!(r, Err(TerminalError::Op(OpError::Rejected { .. }))),
            "{r:?}"
        );
    };
    let a = t
        .sale(10_000, test_card(), None, None)
        .await
        .unwrap()
        .record;
    let b = t.sale(4_000, test_card(), None, None).await.unwrap().record;
    let refund = t
        .refund(&a.reference, 4_000, Some("ret-1"), None)
        .await
        .unwrap();
    assert_eq!(refund.record.state, TxnState::Approved);
    // Voiding or reversing the refunded sale would pay the customer back twice.
    rejected(t.void(&a.reference, None, None).await);
    rejected(t.reverse_after_failure(&a.reference).await);
    // The refund's key on another sale is the app's mistake, not a replay.
    assert!(matches!(
        t.refund(&b.reference, 4_000, Some("ret-1"), None).await,
        Err(TerminalError::IdempotencyConflict)
    ));
    // The same refund again is a replay.
    let again = t
        .refund(&a.reference, 4_000, Some("ret-1"), None)
        .await
        .unwrap();
    assert!(again.replayed);
    // A pre-authorisation completes once; then it cannot be cancelled.
    let pa = t
        .preauth(5_000, test_card(), None, None)
        .await
        .unwrap()
        .record;
    let done = t.complete(&pa.reference, 4_500, None, None).await.unwrap();
    assert_eq!(done.record.state, TxnState::Approved);
    rejected(t.complete(&pa.reference, 500, None, None).await);
    rejected(t.cancel_preauth(&pa.reference, None, None).await);
    // Once the completion is voided, the pre-authorisation is free again.
    t.void(&done.record.reference, None, None).await.unwrap();
    let again = t.complete(&pa.reference, 5_000, None, None).await.unwrap();
    assert_eq!(again.record.state, TxnState::Approved);
    let records = t.journal().all().unwrap();
    assert!(
        reconcile(&records, &acquirer.ledger(), TID, true).is_empty(),
        "{:?}",
        reconcile(&records, &acquirer.ledger(), TID, true)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn host_down_means_not_sent_and_nothing_pending() {
    // A port with nothing listening: bind, learn the port, close.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let (server, _) = host("cup", false, FaultPlan::none(), 1).await;
    let path = journal_path("down");
    {
        let mut t = open(config("cup", server.local_addr(), false, 1_000), &path);
        t.admin().sign_in("01").await.unwrap();
        t.disconnect().await;
    }
    let mut t = open(config("cup", addr, false, 1_000), &path);
    let r = t.sale(500, test_card(), Some("down-1"), None).await;
    assert!(
        matches!(r, Err(TerminalError::Op(OpError::NotSent))),
        "{r:?}"
    );
    assert!(
        t.pending().is_empty(),
        "a request that never left needs no reversal"
    );
    let rec = t.journal().by_idempotency_key("down-1").unwrap().unwrap();
    assert_eq!(rec.state, TxnState::NotSent);
    server.shutdown().await;
}

/// Mixed transactions through a host that injects one fault kind at 30%; afterwards recovery
/// on a clean host, then journal and ledger must reconcile with nothing in doubt.
async fn mixed_with_fault(kind: FaultKind) {
    let (server, acquirer) = host(
        "cup",
        false,
        FaultPlan {
            rules: vec![(kind, 0.3)],
        },
        7,
    )
    .await;
    let path = journal_path("faults");
    let mut t = open(config("cup", server.local_addr(), false, 300), &path);
    let mut signed = false;
    for _ in 0..10 {
        if t.admin().sign_in("01").await.is_ok() {
            signed = true;
            break;
        }
    }
    assert!(signed, "{kind}: sign-in never succeeded");
    let mut approved = Vec::new();
    for i in 0..12u64 {
        let amount = 1_000 + i * 100;
        match t.sale(amount, test_card(), None, None).await {
            Ok(o) if o.record.state == TxnState::Approved => approved.push(o.record),
            _ => {}
        }
        if i % 4 == 3
            && let Some(orig) = approved.pop()
        {
            let _ = t.refund(&orig.reference, 300, None, None).await;
        }
        if i % 5 == 4
            && let Some(orig) = approved.pop()
        {
            let _ = t.void(&orig.reference, None, None).await;
        }
    }
    let pa = t.preauth(2_000, test_card(), None, None).await;
    if let Ok(pa) = pa
        && pa.record.state == TxnState::Approved
    {
        let _ = t.complete(&pa.record.reference, 1_500, None, None).await;
    }
    t.disconnect().await;
    // Recovery against a clean host with the same ledger.
    server.shutdown().await;
    let clean = Server::bind(ServerConfig::default(), acquirer.clone())
        .await
        .unwrap()
        .spawn();
    drop(t);
    let mut t = open(config("cup", clean.local_addr(), false, 1_000), &path);
    let (_, remaining) = t.recover().await.unwrap();
    assert_eq!(remaining, 0, "{kind}");
    let records = t.journal().all().unwrap();
    assert!(
        records.iter().all(|r| !matches!(
            r.state,
            TxnState::Reversing | TxnState::Sending | TxnState::Queued
        )),
        "{kind}"
    );
    let diffs = reconcile(&records, &acquirer.ledger(), TID, false);
    assert!(diffs.is_empty(), "{kind}: {diffs:?}");
    let sales = records.iter().filter(|r| r.kind == TxnKind::Sale).count();
    assert!(sales >= 12, "{kind}");
    // The fault really happened: every kind but `duplicate` loses some answers, which the
    // terminal must have reversed.
    let reversed = records
        .iter()
        .filter(|r| r.state == TxnState::Reversed)
        .count();
    if kind == FaultKind::Duplicate {
        assert_eq!(reversed, 0, "duplicates are ignored, nothing to reverse");
    } else {
        assert!(
            reversed > 0,
            "{kind}: no reversal, so the fault was never exercised"
        );
    }
    clean.shutdown().await;
}

#[tokio::test]
async fn fault_drop_reconciles() {
    mixed_with_fault(FaultKind::Drop).await;
}
#[tokio::test]
async fn fault_delay_reconciles() {
    mixed_with_fault(FaultKind::Delay(Duration::from_millis(500))).await;
}
#[tokio::test]
async fn fault_close_reconciles() {
    mixed_with_fault(FaultKind::Close).await;
}
#[tokio::test]
async fn fault_garbage_reconciles() {
    mixed_with_fault(FaultKind::Garbage).await;
}
#[tokio::test]
async fn fault_truncate_reconciles() {
    mixed_with_fault(FaultKind::Truncate).await;
}
#[tokio::test]
async fn fault_bad_mac_reconciles() {
    mixed_with_fault(FaultKind::BadMac).await;
}
#[tokio::test]
async fn fault_wrong_stan_reconciles() {
    mixed_with_fault(FaultKind::WrongStan).await;
}
#[tokio::test]
async fn fault_duplicate_reconciles() {
    mixed_with_fault(FaultKind::Duplicate).await;
}
#[tokio::test]
async fn fault_late_reconciles() {
    mixed_with_fault(FaultKind::Late).await;
}

#[tokio::test]
async fn undelivered_reversal_is_held_with_back_off() {
    let (server, acquirer) = host("cup", false, FaultPlan::none(), 1).await;
    let path = journal_path("backoff");
    let addr = server.local_addr();
    {
        let mut t = open(config("cup", addr, false, 300), &path);
        t.admin().sign_in("01").await.unwrap();
        t.disconnect().await;
    }
    server.shutdown().await;
    // A host that swallows every answer: the sale and its three reversal attempts go unanswered.
    let mute = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            tls: None,
            faults: FaultPlan::always(FaultKind::Drop),
            seed: 1,
            ..ServerConfig::default()
        },
        acquirer.clone(),
    )
    .await
    .unwrap()
    .spawn();
    let mut t = open(config("cup", mute.local_addr(), false, 300), &path);
    let o = t.sale(2_000, test_card(), None, None).await.unwrap();
    assert!(o.reversal_pending);
    assert_eq!(o.record.state, TxnState::Reversing);
    let at = t.next_retry_at().expect("a retry is scheduled");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        at > now + 20_000,
        "back-off of about 30 s after three attempts"
    );
    assert_eq!(
        t.recover_if_due().await.unwrap(),
        None,
        "not due yet: the host is not hammered"
    );
    // The operator's explicit recovery ignores the back-off.
    let (delivered, remaining) = t.recover().await.unwrap();
    assert_eq!((delivered, remaining), (0, 1));
    mute.shutdown().await;
}

/// A printer whose paper runs out until it is refilled.
struct Printer {
    paper: Arc<std::sync::atomic::AtomicBool>,
    printed: Arc<std::sync::Mutex<Vec<smartpos_terminal::printing::PrintJob>>>,
}

impl smartpos_terminal::printing::ReceiptPrinter for Printer {
    fn print(
        &mut self,
        job: &smartpos_terminal::printing::PrintJob,
    ) -> smartpos_terminal::printing::PrinterStatus {
        use smartpos_terminal::printing::PrinterStatus;
        if !self.paper.load(std::sync::atomic::Ordering::SeqCst) {
            return PrinterStatus::OutOfPaper;
        }
        self.printed.lock().unwrap().push(job.clone());
        PrinterStatus::Ok
    }
}

#[tokio::test]
async fn out_of_paper_leaves_sale_approved_and_reprint_works_later() {
    use smartpos_receipt::ReceiptCopy;
    use smartpos_terminal::printing::PrinterStatus;
    let (server, _) = host("cup", false, FaultPlan::none(), 1).await;
    let path = journal_path("printer");
    let paper = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let printed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut t = open(config("cup", server.local_addr(), false, 2_000), &path);
    t.receipts().set_printer(Printer {
        paper: paper.clone(),
        printed: printed.clone(),
    });
    t.admin().sign_in("01").await.unwrap();
    let sale = t.sale(8_800, test_card(), None, None).await.unwrap();
    assert_eq!(
        t.receipts()
            .print(&sale.record.reference, ReceiptCopy::Merchant)
            .unwrap(),
        PrinterStatus::OutOfPaper
    );
    assert_eq!(
        t.journal()
            .txn(&sale.record.reference)
            .unwrap()
            .unwrap()
            .state,
        TxnState::Approved
    );
    let pending = t.receipts().pending_prints().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].3, "out_of_paper");
    paper.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(t);
    // Later, after a restart: reprint from the journal.
    let mut t = open(config("cup", server.local_addr(), false, 2_000), &path);
    t.receipts().set_printer(Printer {
        paper: paper.clone(),
        printed: printed.clone(),
    });
    assert_eq!(
        t.receipts().reprint_last(ReceiptCopy::Merchant).unwrap(),
        PrinterStatus::Ok
    );
    assert!(t.receipts().pending_prints().unwrap().is_empty());
    let job = printed.lock().unwrap()[0].clone();
    assert!(job.reprint);
    let text = job.lines.join("\n");
    assert!(text.contains("88.00"), "{text}");
    assert!(
        !text.contains("6222021234567890128"),
        "no full PAN on a receipt"
    );
    assert!(!job.escpos.windows(19).any(|w| w == b"6222021234567890128"));
    server.shutdown().await;
}
