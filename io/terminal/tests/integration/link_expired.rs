//! TLS certificate validity dates: an expired (or not yet valid) server certificate is
//! rejected by `HostLink::connect` before anything is sent, even when it is pinned.
//!
//! The certificates are the TEST-ONLY `dated-*` set of `tools/sim/testdata/tls` (see its
//! README and `gen-dated.sh`): one CA, one key, one request signed three times with different
//! dates. The valid control proves that the dates, and nothing else, cause the rejections.

use std::sync::Arc;

use smartpos_sim::fault::FaultPlan;
use smartpos_sim::net::{EchoHandler, Server, ServerConfig, ServerHandle, TlsServerConfig};
use smartpos_terminal::link::{HostLink, LinkError, leaf_pin_from_pem};

use crate::support::{LONG, tls};

const DATED_CA_PEM: &[u8] = include_bytes!("../../../../tools/sim/testdata/tls/dated-ca.pem");
const DATED_KEY_PEM: &[u8] = include_bytes!("../../../../tools/sim/testdata/tls/dated.key");
const VALID_PEM: &[u8] = include_bytes!("../../../../tools/sim/testdata/tls/dated-valid.pem");
const EXPIRED_PEM: &[u8] = include_bytes!("../../../../tools/sim/testdata/tls/dated-expired.pem");
const FUTURE_PEM: &[u8] = include_bytes!("../../../../tools/sim/testdata/tls/dated-future.pem");

/// An echo simulator on loopback that presents `leaf_pem` (issued by `dated-ca.pem`).
async fn start_dated(leaf_pem: &[u8]) -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".to_owned(),
        tls: Some(TlsServerConfig {
            cert_chain_pem: leaf_pem.to_vec(),
            key_pem: DATED_KEY_PEM.to_vec(),
        }),
        faults: FaultPlan::parse("").expect("empty fault plan"),
        seed: 1,
    };
    Server::bind(cfg, Arc::new(EchoHandler))
        .await
        .expect("bind sim")
        .spawn()
}

#[tokio::test]
async fn control_certificate_with_valid_dates_is_accepted() {
    let server = start_dated(VALID_PEM).await;
    let mut link = HostLink::connect(&tls(&server, DATED_CA_PEM, "localhost", None))
        .await
        .unwrap();
    link.send(b"in date").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"in date");
    link.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn expired_certificate_is_rejected_with_a_clear_message() {
    let server = start_dated(EXPIRED_PEM).await;
    for name in ["localhost", "127.0.0.1"] {
        let err = HostLink::connect(&tls(&server, DATED_CA_PEM, name, None))
            .await
            .unwrap_err();
        let LinkError::Tls(message) = &err else {
            panic!("{name}: expected LinkError::Tls, got {err:?}");
        };
        assert!(message.contains("certificate expired"), "{name}: {message}");
        // Not-after of dated-expired.pem, 2021-01-01T00:00:00Z, as UNIX seconds: the message
        // says which limit was crossed, which is what an operator needs to act on.
        assert!(message.contains("1609459200"), "{name}: {message}");
        assert!(
            err.to_string().starts_with("TLS failure: "),
            "{name}: {err}"
        );
        assert!(!err.request_may_have_reached_host());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn not_yet_valid_certificate_is_rejected() {
    let server = start_dated(FUTURE_PEM).await;
    let err = HostLink::connect(&tls(&server, DATED_CA_PEM, "localhost", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::Tls(m) if m.contains("not valid yet")),
        "{err:?}"
    );
    assert!(!err.request_may_have_reached_host());
    server.shutdown().await;
}

#[tokio::test]
async fn pinning_an_expired_certificate_does_not_make_it_acceptable() {
    // A pin narrows trust and never replaces verification: the exact expired leaf, pinned,
    // is still refused for its dates (not reported as a pin mismatch).
    let server = start_dated(EXPIRED_PEM).await;
    let pin = leaf_pin_from_pem(EXPIRED_PEM).unwrap();
    let err = HostLink::connect(&tls(&server, DATED_CA_PEM, "localhost", Some(pin)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::Tls(m) if m.contains("certificate expired")),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pinned_valid_control_is_accepted() {
    // Same server key and names as the expired leaf: pinning itself is not what fails above.
    let server = start_dated(VALID_PEM).await;
    let pin = leaf_pin_from_pem(VALID_PEM).unwrap();
    let mut link = HostLink::connect(&tls(&server, DATED_CA_PEM, "localhost", Some(pin)))
        .await
        .unwrap();
    link.send(b"pinned").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"pinned");
    server.shutdown().await;
}
