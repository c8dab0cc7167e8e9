//! A host that forgot the terminal's working keys (restarted without them) answers `97`
//! (terminal not registered) without a MAC, since it has no key to compute one. The terminal
//! signs in again by itself once, then delivers what is pending and runs the command again
//! (issue 22). A host restarted with its ledger file keeps the keys, so no sign-in is needed.

use smartpos_diagnosis::SecurityRecovery;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::net::{ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{Terminal, TerminalConfig, TerminalError};
use smartpos_tests::{MID, TID, TempDir, TerminalCalls, reopen_terminal, test_card, test_tmk};
use smartpos_txn::engine::OpError;
use smartpos_txn::model::TxnState;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A host that can be restarted in place: the listening socket stays, the acquirer behind it is
/// replaced by a new one (its memory gone; the ledger file, if any, reloaded).
struct RestartableHost {
    acquirer: Mutex<Arc<Acquirer>>,
    ledger_file: Option<PathBuf>,
    mute: AtomicBool,
}

impl RestartableHost {
    fn new(ledger_file: Option<PathBuf>) -> Arc<RestartableHost> {
        Arc::new(RestartableHost {
            acquirer: Mutex::new(Arc::new(Self::acquirer(ledger_file.clone()))),
            ledger_file,
            mute: AtomicBool::new(false),
        })
    }

    fn acquirer(ledger_file: Option<PathBuf>) -> Acquirer {
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file,
        })
        .unwrap()
    }

    /// The host process restarts: a new acquirer, from the ledger file when there is one.
    fn restart(&self) {
        *self.acquirer.lock().unwrap() = Arc::new(Self::acquirer(self.ledger_file.clone()));
    }

    fn current(&self) -> Arc<Acquirer> {
        self.acquirer.lock().unwrap().clone()
    }
}

impl FrameHandler for RestartableHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let answer = self.current().handle_request(conn.faults, request);
        if self.mute.load(Ordering::SeqCst) {
            Vec::new()
        } else {
            answer.into_iter().collect()
        }
    }
}

async fn setup(
    name: &str,
    ledger: bool,
) -> (ServerHandle, Arc<RestartableHost>, Terminal, TempDir) {
    let dir = TempDir::new(name);
    let host = RestartableHost::new(ledger.then(|| dir.join("ledger.json")));
    let server = Server::bind(ServerConfig::default(), host.clone())
        .await
        .unwrap()
        .spawn();
    let mut link = LinkConfig::plain(format!("127.0.0.1:{}", server.local_addr().port()));
    link.response_timeout = Duration::from_millis(300);
    let cfg = TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    };
    let mut t = reopen_terminal(cfg, &dir);
    t.admin().sign_in("01").await.unwrap();
    (server, host, t, dir)
}

/// A sale whose answer is lost: the host booked it, the terminal keeps its reversal pending.
async fn sale_left_reversing(t: &mut Terminal, host: &RestartableHost) -> String {
    host.mute.store(true, Ordering::SeqCst);
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    host.mute.store(false, Ordering::SeqCst);
    assert!(o.reversal_pending, "{o:?}");
    assert_eq!(t.pending().len(), 1);
    o.record.reference
}

#[tokio::test]
async fn host_restarted_without_keys_the_next_sale_signs_in_delivers_the_reversal_and_goes_through()
{
    let (server, host, mut t, _dir) = setup("signin-again-sale", false).await;
    let lost = sale_left_reversing(&mut t, &host).await;
    host.restart();
    // Today: the reversal is answered 97 three times and the sale is refused.
    let o = t.sale(2_000, test_card(), None, None).await.unwrap();
    assert_eq!(o.record.state, TxnState::Approved, "{o:?}");
    assert!(t.pending().is_empty(), "{:?}", t.pending());
    let rec = t.journal().txn(&lost).unwrap().unwrap();
    assert_eq!(rec.state, TxnState::Reversed);
    assert!(
        reconcile(
            &t.journal().all().unwrap(),
            &host.current().ledger(),
            TID,
            false
        )
        .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn host_restarted_without_keys_recover_signs_in_once_and_delivers() {
    let (server, host, mut t, _dir) = setup("signin-again-recover", false).await;
    sale_left_reversing(&mut t, &host).await;
    host.restart();
    assert_eq!(t.recover().await.unwrap(), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn host_restarted_without_keys_a_sale_answered_97_is_reversed_after_sign_in() {
    let (server, host, mut t, _dir) = setup("signin-again-main", false).await;
    host.restart();
    // The sale's own answer is an unauthenticated 97: the terminal cannot trust it, so the
    // sale is reversed; after the sign-in the reversal goes through at once.
    let o = t.sale(3_000, test_card(), None, None).await.unwrap();
    assert!(!o.reversal_pending, "{o:?}");
    assert_eq!(o.record.state, TxnState::Reversed, "{o:?}");
    assert!(t.pending().is_empty());
    // Signed in again: the next sale is approved.
    let o = t.sale(4_000, test_card(), None, None).await.unwrap();
    assert_eq!(o.record.state, TxnState::Approved, "{o:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn host_restarted_with_its_ledger_keeps_the_keys() {
    let (server, host, mut t, _dir) = setup("signin-kept", true).await;
    sale_left_reversing(&mut t, &host).await;
    host.restart();
    // The first MACed request after the restart is accepted: no 97, no sign-in needed.
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    t.set_listener(move |e| seen.lock().unwrap().push(format!("{e:?}")));
    assert_eq!(t.recover().await.unwrap(), (1, 0));
    let events = events.lock().unwrap().clone();
    assert!(
        !events.iter().any(|e| e.contains("SignIn")),
        "no sign-in: {events:?}"
    );
    assert!(
        reconcile(
            &t.journal().all().unwrap(),
            &host.current().ledger(),
            TID,
            false
        )
        .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_host_that_refuses_the_sign_in_leaves_the_item_pending_with_its_answer() {
    let (server, host, mut t, _dir) = setup("signin-refused", false).await;
    sale_left_reversing(&mut t, &host).await;
    // The restarted host has another master key: the sign-in's keys do not check.
    *host.acquirer.lock().unwrap() = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: smartpos_crypto::keys::TdesKey::new(&[0x11; 16]).unwrap(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let (delivered, remaining) = t.recover().await.unwrap();
    assert_eq!((delivered, remaining), (0, 1));
    let item = t.pending()[0].clone();
    assert_eq!(t.support().last_host_answer(&item).as_deref(), Some("97"));
    // The sign-in this sale made by itself failed too: the error says why (issue 18 item 5).
    assert!(matches!(
        t.sale(5_000, test_card(), None, None).await,
        Err(TerminalError::Security {
            recovery: SecurityRecovery::SignInKeyCheck,
            cause: OpError::PendingUndelivered { count: 1 }
        })
    ));
    server.shutdown().await;
}
