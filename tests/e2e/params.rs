//! EMV parameter download over loopback TCP: the terminal runtime against the host simulator's
//! TEST parameter set, stored in the journal and read back after a reopen.

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::emv_params::test_params;
use smartpos_sim::net::{Server, ServerConfig, ServerHandle};
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{TerminalConfig, TerminalError};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, TID, TempDir, reopen_terminal, test_card, test_tmk};
use smartpos_txn::engine::OpError;
use smartpos_txn::params::ParamError;
use std::sync::Arc;
use std::time::Duration;

async fn host(dialect: &str) -> (ServerHandle, Arc<Acquirer>, TerminalConfig) {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: dialect.into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let server = Server::bind(ServerConfig::default(), acquirer.clone())
        .await
        .unwrap()
        .spawn();
    let mut link = LinkConfig::plain(format!("127.0.0.1:{}", server.local_addr().port()));
    link.response_timeout = Duration::from_secs(2);
    let cfg = TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: dialect.into(),
        link,
        utc_offset_minutes: 480,
    };
    (server, acquirer, cfg)
}

#[tokio::test]
async fn emv_params_download_is_stored_and_survives_reopen() {
    let (server, acquirer, cfg) = host("cup").await;
    let dir = TempDir::new("params-download");
    {
        let mut t = reopen_terminal(cfg.clone(), &dir);
        assert_eq!(t.admin().terminal_params().unwrap(), None);
        let got = t.admin().download_params().await.unwrap();
        assert_eq!(got, test_params());
        assert_eq!(t.admin().terminal_params().unwrap(), Some(test_params()));
        t.disconnect().await;
    }
    let mut t = reopen_terminal(cfg, &dir);
    let stored = t
        .admin()
        .terminal_params()
        .unwrap()
        .expect("kept across the reopen");
    assert_eq!(stored, test_params());
    assert_eq!(
        stored.contactless_limits_for(&smartpos_types::hex::decode("A000000333010101").unwrap()),
        Some((0, 1_000_000, 100_000))
    );
    // The download's STANs were journaled: the terminal signs in and sells as before.
    t.admin().sign_in("01").await.unwrap();
    let sale = t.sale(1_234, test_card(), None, None).await.unwrap();
    assert_eq!(sale.record.state, smartpos_txn::model::TxnState::Approved);
    assert_eq!(acquirer.ledger().transactions.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn emv_params_download_is_refused_by_a_dialect_without_the_messages() {
    let (server, _acquirer, cfg) = host("iso87b").await;
    let dir = TempDir::new("params-iso87b");
    let mut t = reopen_terminal(cfg, &dir);
    let r = t.admin().download_params().await;
    assert!(
        matches!(
            r,
            Err(TerminalError::Op(OpError::Params(ParamError::NotSupported { ref profile }))) if profile == "iso87b"
        ),
        "{r:?}"
    );
    assert_eq!(t.admin().terminal_params().unwrap(), None);
    server.shutdown().await;
}

#[tokio::test]
async fn emv_params_set_by_the_app_are_validated_before_they_are_kept() {
    let (server, _acquirer, cfg) = host("cup").await;
    let dir = TempDir::new("params-set");
    let mut t = reopen_terminal(cfg, &dir);
    let mut bad = test_params();
    bad.ca_keys[0].modulus[10] ^= 0x01;
    assert!(matches!(
        t.admin().set_terminal_params(bad),
        Err(TerminalError::Op(OpError::Params(
            ParamError::ChecksumMismatch { .. }
        )))
    ));
    assert_eq!(t.admin().terminal_params().unwrap(), None);
    let mut mine = test_params();
    mine.aids.truncate(1);
    t.admin().set_terminal_params(mine.clone()).unwrap();
    assert_eq!(t.admin().terminal_params().unwrap(), Some(mine));
    server.shutdown().await;
}

#[tokio::test]
async fn downloaded_params_configure_both_kernels() {
    use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
    use smartpos_terminal::card::CardSource;
    use smartpos_txn::TxnIntent;
    let (server, _acquirer, cfg) = host("cup").await;
    let dir = TempDir::new("params-kernels");
    let unionpay = smartpos_types::hex::decode("A000000333010101").unwrap();
    {
        let mut t = reopen_terminal(cfg.clone(), &dir);
        let before = t.kernel_config().limits_for(&unionpay);
        assert_ne!(before.transaction_limit, Some(1_000_000));
        t.admin().download_params().await.unwrap();
        // Our own kernel takes the host's per-AID contactless limits at once...
        let after = t.kernel_config().limits_for(&unionpay);
        assert_eq!(
            (
                after.floor_limit,
                after.transaction_limit,
                after.cvm_required_limit
            ),
            (0, Some(1_000_000), 100_000)
        );
        t.disconnect().await;
    }
    // ... and again when the terminal is opened.
    let mut t = reopen_terminal(cfg, &dir);
    let k = t.kernel_config().limits_for(&unionpay);
    assert_eq!(k.transaction_limit, Some(1_000_000));
    // The device's kernel gets the records as the host delivered them.
    let mut kernel = SimCertifiedKernel::new(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    )
    .unwrap();
    t.admin().load_params_into(&mut kernel).unwrap();
    let (aids, keys) = kernel.loaded_parameters();
    assert_eq!((aids.len(), keys), (4, 2));
    assert!(aids.contains(&unionpay));
    t.admin().sign_in("01").await.unwrap();
    let sale = t
        .transact(
            TxnIntent::sale(1_234),
            CardSource::Certified {
                kernel: &mut kernel,
                pin: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(sale.record.state, smartpos_txn::model::TxnState::Approved);
    assert_eq!(kernel.completions(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_profiles_emv_params_are_kept_when_the_journal_has_none() {
    let (server, _acquirer, cfg) = host("cup").await;
    let dir = TempDir::new("params-profile");
    let text = r#"base = "cup"
name = "cup-with-emv"

[[emv.aid]]
aid = "A000000333010101"
asi = 0
contactless_floor_limit = 0
contactless_txn_limit = 500000
contactless_cvm_limit = 30000
"#;
    let profile = smartpos_txn::proto::Profile::from_toml(text).unwrap();
    let journal = dir.path().join("journal.db");
    let key = smartpos_terminal::journal::JournalKey::new([7; 32]);
    let unionpay = smartpos_types::hex::decode("A000000333010101").unwrap();
    {
        let mut t = smartpos_terminal::Terminal::open_with_profile(
            cfg.clone(),
            profile.clone(),
            &journal,
            test_tmk(),
            &key,
        )
        .unwrap();
        let kept = t
            .admin()
            .terminal_params()
            .unwrap()
            .expect("set from the profile");
        assert_eq!(kept.aids.len(), 1);
        assert_eq!(
            t.kernel_config().limits_for(&unionpay).cvm_required_limit,
            30_000
        );
    }
    // A host download replaces them, and the profile does not come back over it on open.
    {
        let mut t = smartpos_terminal::Terminal::open_with_profile(
            cfg.clone(),
            profile.clone(),
            &journal,
            test_tmk(),
            &key,
        )
        .unwrap();
        t.admin().download_params().await.unwrap();
    }
    let mut t =
        smartpos_terminal::Terminal::open_with_profile(cfg, profile, &journal, test_tmk(), &key)
            .unwrap();
    assert_eq!(t.admin().terminal_params().unwrap(), Some(test_params()));
    assert_eq!(
        t.kernel_config().limits_for(&unionpay).cvm_required_limit,
        100_000
    );
    server.shutdown().await;
}
