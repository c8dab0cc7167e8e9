//! Issue 19 through the terminal runtime over loopback: a host that closes idle connections
//! (the simulator's idle timeout) costs the next sale nothing, and mutual TLS end to end (a
//! terminal with its client certificate signs in and sells; without it the sign-in is refused
//! and nothing reached the host).

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::net::{
    ConnLimits, Server, ServerConfig, ServerHandle, TEST_CA_PEM, TEST_CLIENT_CA_PEM,
    TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM, test_tls_config,
};
use smartpos_terminal::journal::{JournalError, JournalKey};
use smartpos_terminal::link::{ClientIdentity, LinkConfig, LinkError, TlsClientConfig};
use smartpos_terminal::{Terminal, TerminalConfig, TerminalError};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, TID, temp_journal, test_card, test_tmk};
use smartpos_txn::model::TxnState;
use std::sync::Arc;
use std::time::Duration;

async fn host(cfg: ServerConfig) -> (ServerHandle, Arc<Acquirer>) {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let server = Server::bind(cfg, acquirer.clone()).await.unwrap().spawn();
    (server, acquirer)
}

fn config(addr: std::net::SocketAddr, tls: Option<TlsClientConfig>) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{}", addr.port()));
    link.tls = tls;
    link.response_timeout = Duration::from_secs(3);
    link.connect_timeout = Duration::from_secs(3);
    TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    }
}

#[tokio::test]
async fn a_connection_the_host_closed_while_idle_costs_the_next_sale_nothing() {
    for tls in [false, true] {
        let (server, acquirer) = host(ServerConfig {
            tls: tls.then(test_tls_config),
            limits: ConnLimits {
                idle_timeout: Duration::from_millis(200),
                ..ConnLimits::default()
            },
            ..ServerConfig::default()
        })
        .await;
        let path = temp_journal("idle-closed");
        let tls_cfg = tls.then(|| TlsClientConfig::new(TEST_CA_PEM.to_vec(), "localhost"));
        let mut t = Terminal::open(
            config(server.local_addr(), tls_cfg),
            &path,
            test_tmk(),
            &JournalKey::new([3; 32]),
        )
        .unwrap();
        t.admin().sign_in("01").await.unwrap();
        for n in 0..3u64 {
            // The terminal keeps its connection between commands; the host drops it.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let o = t.sale(1000 + n, test_card(), None, None).await.unwrap();
            assert_eq!(
                o.record.state,
                TxnState::Approved,
                "tls {tls}, sale {n}: {o:?}"
            );
            assert!(!o.reversal_pending, "tls {tls}, sale {n}");
        }
        assert!(t.pending().is_empty(), "tls {tls}: nothing left to reverse");
        let approved = acquirer
            .ledger()
            .transactions
            .iter()
            .filter(|x| x.status == smartpos_sim::acquirer::HostStatus::Approved)
            .count();
        assert_eq!(approved, 3, "tls {tls}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn mutual_tls_signs_in_with_the_client_certificate_and_refuses_without_it() {
    let (server, acquirer) = host(ServerConfig {
        tls: Some(test_tls_config()),
        client_ca_pem: Some(TEST_CLIENT_CA_PEM.to_vec()),
        ..ServerConfig::default()
    })
    .await;
    // Without a client certificate: the sign-in is refused and never reached the host.
    let path = temp_journal("mtls-none");
    let plain_tls = TlsClientConfig::new(TEST_CA_PEM.to_vec(), "localhost");
    let mut t = Terminal::open(
        config(server.local_addr(), Some(plain_tls.clone())),
        &path,
        test_tmk(),
        &JournalKey::new([3; 32]),
    )
    .unwrap();
    let err = t.admin().sign_in("01").await.unwrap_err();
    assert!(
        matches!(
            err,
            TerminalError::HostLink(LinkError::ClientCertificateRefused { .. })
        ),
        "{err:?}"
    );
    let d = err.diagnosis();
    assert_eq!(d.code, "link.tls_failed", "{d:?}");
    assert_eq!(d.money.as_str(), "not_charged", "{d:?}");
    assert!(acquirer.ledger().transactions.is_empty());
    drop(t);
    // With it: signed in, a sale approved.
    let path = temp_journal("mtls-cert");
    let mut with_cert = plain_tls;
    with_cert.client_identity =
        Some(ClientIdentity::new(TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM).unwrap());
    let mut t = Terminal::open(
        config(server.local_addr(), Some(with_cert)),
        &path,
        test_tmk(),
        &JournalKey::new([3; 32]),
    )
    .unwrap();
    t.admin().sign_in("01").await.unwrap();
    let o = t.sale(1234, test_card(), None, None).await.unwrap();
    assert_eq!(o.record.state, TxnState::Approved);
    drop(t);
    // The same signed-in terminal without its certificate: the sale is refused at the
    // handshake, recorded as not sent, and nothing is reversed.
    let mut t = Terminal::open(
        config(
            server.local_addr(),
            Some(TlsClientConfig::new(TEST_CA_PEM.to_vec(), "localhost")),
        ),
        &path,
        test_tmk(),
        &JournalKey::new([3; 32]),
    )
    .unwrap();
    let err = t.sale(2000, test_card(), None, None).await.unwrap_err();
    assert!(matches!(err, TerminalError::HostLink(_)), "{err:?}");
    assert_eq!(err.diagnosis().money.as_str(), "not_charged");
    let last = t
        .journal()
        .all()
        .unwrap()
        .into_iter()
        .max_by_key(|r| r.stan)
        .unwrap();
    assert_eq!(
        (last.amount, last.state),
        (2000, TxnState::NotSent),
        "{last:?}"
    );
    assert!(t.pending().is_empty(), "nothing to reverse");
    assert_eq!(acquirer.ledger().transactions.len(), 1);
    server.shutdown().await;
}

/// A sale on a fresh terminal against `server`; returns the terminal's journal path and the
/// sale's reference, the terminal closed.
async fn sold(
    server: &ServerHandle,
    name: &str,
    key: Option<&str>,
) -> (smartpos_tests::TempFile, String) {
    let path = temp_journal(name);
    let mut t = Terminal::open(
        config(server.local_addr(), None),
        &path,
        test_tmk(),
        &JournalKey::new([3; 32]),
    )
    .unwrap();
    t.admin().sign_in("01").await.unwrap();
    let sale = t.sale(1_000, test_card(), key, None).await.unwrap();
    assert_eq!(sale.record.state, TxnState::Approved);
    t.disconnect().await;
    (path, sale.record.reference)
}

fn reopen(server: &ServerHandle, path: &std::path::Path) -> Terminal {
    Terminal::open(
        config(server.local_addr(), None),
        path,
        test_tmk(),
        &JournalKey::new([3; 32]),
    )
    .unwrap()
}

/// Asserts `e` is the tampered-journal refusal naming `txn <reference>`.
fn assert_tampered(e: &TerminalError, reference: &str) {
    assert!(
        matches!(e, TerminalError::Journal(JournalError::Tampered(r)) if r.table == "txn" && r.key == reference),
        "{e:?}"
    );
    assert_eq!(e.diagnosis().code, "journal.tampered");
}

/// Issue 19 item 3: a sale's amount raised on disk let the terminal accept a refund larger
/// than the sale (the host had to decline it). Now the journal fails its check on open and
/// the terminal refuses money commands before anything reaches the host; read-only commands
/// work and the support bundle names the record.
#[tokio::test]
async fn an_amount_raised_on_disk_no_longer_lets_a_larger_refund_through() {
    let (server, acquirer) = host(ServerConfig::default()).await;
    let (path, reference) = sold(&server, "tamper-amount", None).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE txn SET amount = 100000 WHERE reference = ?1",
            [&reference],
        )
        .unwrap();
    let mut t = reopen(&server, &path);
    let seen = acquirer.ledger().transactions.len();
    let e = t.refund(&reference, 5_000, None, None).await.unwrap_err();
    assert_tampered(&e, &reference);
    let e = t.sale(500, test_card(), None, None).await.unwrap_err();
    assert_tampered(&e, &reference);
    let e = t.settle().await.unwrap_err();
    assert_tampered(&e, &reference);
    assert_eq!(
        acquirer.ledger().transactions.len(),
        seen,
        "nothing reached the host"
    );
    // Read-only: pending items, the records, the support bundle (which names the record).
    assert!(t.pending().is_empty());
    assert_eq!(
        t.journal().txn(&reference).unwrap().unwrap().amount,
        100_000
    );
    let bundle = t.support().support_bundle().unwrap();
    assert_eq!(bundle["journal"]["tampered"]["table"], "txn");
    assert_eq!(bundle["journal"]["tampered"]["key"], reference.as_str());
    assert_eq!(
        bundle["journal"]["tampered"]["diagnosis"],
        "journal.tampered"
    );
    server.shutdown().await;
}

/// Issue 19 item 3: an approval turned into a decline on disk went unnoticed, and the same
/// order key replayed "declined" (the cashier would charge again). Now refused, nothing sent.
#[tokio::test]
async fn approved_turned_into_declined_on_disk_is_found_and_not_replayed() {
    let (server, acquirer) = host(ServerConfig::default()).await;
    let (path, reference) = sold(&server, "tamper-state", Some("order-19-3")).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE txn SET state = 'declined', response_code = '51' WHERE reference = ?1",
            [&reference],
        )
        .unwrap();
    let mut t = reopen(&server, &path);
    assert_eq!(
        t.journal().tampered().map(|r| (r.table, r.key.clone())),
        Some(("txn", reference.clone()))
    );
    let seen = acquirer.ledger().transactions.len();
    let e = t
        .sale(1_000, test_card(), Some("order-19-3"), None)
        .await
        .unwrap_err();
    assert_tampered(&e, &reference);
    assert_eq!(acquirer.ledger().transactions.len(), seen);
    server.shutdown().await;
}
