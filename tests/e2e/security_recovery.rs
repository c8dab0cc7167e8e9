//! Security failures recover by themselves (issue 18 item 5): when a response fails its MAC
//! check, or the host answers `A0` (it could not check ours), the working keys on the two
//! sides no longer agree. The terminal signs in again once (new working keys on both sides),
//! then delivers the reversal the failure left pending; the cashier reads that the security
//! keys were renewed, or that the sign-in failed and why, never "check the network".

use smartpos_diagnosis::{Diagnosis, Lang, MoneyState};
use smartpos_iso8583::Mti;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::fault::FaultSet;
use smartpos_sim::net::{ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::safety::outcome_diagnosis;
use smartpos_terminal::{Terminal, TerminalConfig};
use smartpos_tests::{MID, TID, TempDir, TerminalCalls, reopen_terminal, test_card, test_tmk};
use smartpos_txn::model::TxnState;
use smartpos_txn::proto::Profile;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A host whose answers can fail their MAC check: while `corrupt` is above zero, each MACed
/// answer leaves with a damaged MAC (and the count goes down). It counts sign-ins.
struct FlakyMacHost {
    acquirer: Arc<Acquirer>,
    corrupt: AtomicU32,
    sign_ins: AtomicU32,
    /// Where sign-ins go instead of `acquirer`, when set.
    sign_in_to: Mutex<Option<Arc<Acquirer>>>,
}

impl FrameHandler for FlakyMacHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let profile = Profile::by_name("cup").unwrap();
        let mti = profile.dialect.unpack(request).map(|m| m.mti).ok();
        if mti == Some(Mti::NETWORK) {
            self.sign_ins.fetch_add(1, Ordering::SeqCst);
            if let Some(other) = self.sign_in_to.lock().unwrap().clone() {
                return other
                    .handle_request(conn.faults, request)
                    .into_iter()
                    .collect();
            }
        }
        let mut faults = conn.faults;
        if mti != Some(Mti::NETWORK)
            && self
                .corrupt
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            faults = FaultSet {
                bad_mac: true,
                ..faults
            };
        }
        self.acquirer
            .handle_request(faults, request)
            .into_iter()
            .collect()
    }
}

fn terminal_config(port: u16) -> TerminalConfig {
    let mut link = LinkConfig::plain(format!("127.0.0.1:{port}"));
    link.response_timeout = Duration::from_millis(500);
    TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    }
}

async fn setup(name: &str) -> (ServerHandle, Arc<FlakyMacHost>, Terminal, TempDir) {
    let dir = TempDir::new(name);
    let host = Arc::new(FlakyMacHost {
        acquirer: Arc::new(
            Acquirer::new(AcquirerConfig {
                dialect: "cup".into(),
                tmk: test_tmk(),
                ledger_file: None,
            })
            .unwrap(),
        ),
        corrupt: AtomicU32::new(0),
        sign_ins: AtomicU32::new(0),
        sign_in_to: Mutex::new(None),
    });
    let server = Server::bind(ServerConfig::default(), host.clone())
        .await
        .unwrap()
        .spawn();
    let mut t = reopen_terminal(terminal_config(server.local_addr().port()), &dir);
    t.admin().sign_in("01").await.unwrap();
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), 1);
    (server, host, t, dir)
}

/// Whether a next step sends the cashier to the network settings.
fn tells_to_check_the_network(d: &Diagnosis) -> bool {
    d.next_steps.iter().any(|s| s.en.contains("network"))
}

fn reconciled(t: &Terminal, host: &FlakyMacHost) -> Vec<String> {
    reconcile(
        &t.journal().all().unwrap(),
        &host.acquirer.ledger(),
        TID,
        false,
    )
}

#[tokio::test]
async fn a_response_that_fails_its_mac_signs_in_again_and_delivers_the_reversal() {
    let (server, host, mut t, _dir) = setup("secrec-badmac-once").await;
    // The sale's answer fails its MAC: the terminal cannot trust it and reverses the sale.
    host.corrupt.store(1, Ordering::SeqCst);
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    assert_eq!(
        host.sign_ins.load(Ordering::SeqCst),
        2,
        "signed in again once"
    );
    assert_eq!(o.record.state, TxnState::Reversed, "{o:?}");
    assert!(!o.reversal_pending && t.pending().is_empty(), "{o:?}");
    let d = outcome_diagnosis(&o).unwrap();
    assert_eq!(d.code, "security.keys_renewed", "{d:?}");
    assert!(!tells_to_check_the_network(&d), "{d:?}");
    assert!(reconciled(&t, &host).is_empty());
    // The new keys work: the next sale is approved without another sign-in.
    let o = t.sale(2_000, test_card(), None, None).await.unwrap();
    assert_eq!(o.record.state, TxnState::Approved, "{o:?}");
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reversal_answer_that_fails_its_mac_signs_in_again_during_recover() {
    let (server, host, mut t, _dir) = setup("secrec-badmac-recover").await;
    // The sale's answer and every reversal attempt's answer fail their MAC.
    host.corrupt.store(4, Ordering::SeqCst);
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    // Then the host's MACs are fine again: the sign-in the failure triggered comes first.
    assert_eq!(host.corrupt.load(Ordering::SeqCst), 0);
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), 2, "{o:?}");
    assert!(t.pending().is_empty(), "{:?}", t.pending());
    assert!(reconciled(&t, &host).is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn macs_that_keep_failing_after_the_sign_in_say_so_not_check_the_network() {
    let (server, host, mut t, _dir) = setup("secrec-badmac-always").await;
    host.corrupt.store(u32::MAX, Ordering::SeqCst);
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    assert_eq!(
        host.sign_ins.load(Ordering::SeqCst),
        2,
        "one sign-in, no loop"
    );
    assert!(o.reversal_pending, "{o:?}");
    let d = outcome_diagnosis(&o).unwrap();
    assert_eq!(d.code, "security.mac_still_failing", "{d:?}");
    // The next sale is blocked by the undelivered reversal; the cashier is told why.
    let e = t.sale(2_000, test_card(), None, None).await.unwrap_err();
    let d = e.diagnosis();
    assert_eq!(d.code, "security.mac_still_failing", "{e:?} {d:?}");
    assert_eq!(d.money, MoneyState::ReversalPending, "{d:?}");
    assert!(!tells_to_check_the_network(&d), "{d:?}");
    // At most one sign-in per command.
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_sign_in_after_a_mac_failure_says_why() {
    let (server, host, mut t, _dir) = setup("secrec-signin-fails").await;
    host.corrupt.store(1, Ordering::SeqCst);
    // The sign-in goes to a host with another master key: the keys it delivers fail their
    // check values in the terminal.
    *host.sign_in_to.lock().unwrap() = Some(Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: smartpos_crypto::keys::TdesKey::new(&[0x11; 16]).unwrap(),
            ledger_file: None,
        })
        .unwrap(),
    ));
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), 2);
    let d = outcome_diagnosis(&o).unwrap();
    assert_eq!(d.code, "security.sign_in_key_check", "{d:?}");
    assert!(d.render(Lang::En).contains("master key"), "{d:?}");
    assert!(!tells_to_check_the_network(&d), "{d:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_a0_answer_signs_in_again_and_says_the_keys_were_renewed() {
    let (server, host, mut t, _dir) = setup("secrec-a0").await;
    // Another terminal with the same id signs in: the host now holds other keys for it, so
    // it answers this terminal's next request A0 (its MAC fails on the host's side).
    let other_dir = TempDir::new("secrec-a0-other");
    let mut other = reopen_terminal(terminal_config(server.local_addr().port()), &other_dir);
    other.admin().sign_in("01").await.unwrap();
    drop(other);
    let before = host.sign_ins.load(Ordering::SeqCst);
    let o = t.sale(1_000, test_card(), None, None).await.unwrap();
    assert_eq!(host.sign_ins.load(Ordering::SeqCst), before + 1, "{o:?}");
    assert_eq!(o.record.state, TxnState::Reversed, "{o:?}");
    assert!(t.pending().is_empty(), "{:?}", t.pending());
    let d = outcome_diagnosis(&o).unwrap();
    assert_eq!(d.code, "security.keys_renewed", "{d:?}");
    let o = t.sale(2_000, test_card(), None, None).await.unwrap();
    assert_eq!(o.record.state, TxnState::Approved, "{o:?}");
    server.shutdown().await;
}
