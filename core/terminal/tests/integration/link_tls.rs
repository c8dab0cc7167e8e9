//! The host link over TLS against the simulator's TEST-ONLY identity (sim testdata/tls).

use std::time::{Duration, Instant};

use smartpos_sim::net::{TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_UNRELATED_CA_PEM};
use smartpos_terminal::link::{
    HostLink, LinkConfig, LinkError, TlsClientConfig, leaf_pin_from_pem,
};
use tokio::net::TcpListener;

use crate::support::{LONG, SHORT, start_echo, tls};

#[tokio::test]
async fn tls_round_trip_by_name_and_by_ip() {
    let server = start_echo(true, "").await;
    for name in ["localhost", "127.0.0.1"] {
        let mut link = HostLink::connect(&tls(&server, TEST_CA_PEM, name, None))
            .await
            .unwrap();
        for i in 0..20u8 {
            let body = vec![i; 1 + usize::from(i) * 100];
            link.send(&body).await.unwrap();
            assert_eq!(link.recv(LONG).await.unwrap(), body);
        }
        let big = vec![0xA5; 65_535];
        link.send(&big).await.unwrap();
        assert_eq!(link.recv(LONG).await.unwrap(), big);
        link.close().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_wrong_ca_fails() {
    let server = start_echo(true, "").await;
    let err = HostLink::connect(&tls(&server, TEST_UNRELATED_CA_PEM, "localhost", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::Tls(m) if m.contains("UnknownIssuer")),
        "{err:?}"
    );
    assert!(!err.request_may_have_reached_host());
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_wrong_server_name_fails() {
    let server = start_echo(true, "").await;
    for name in ["example.com", "127.0.0.2"] {
        let err = HostLink::connect(&tls(&server, TEST_CA_PEM, name, None))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LinkError::Tls(m) if m.contains("not valid for name")),
            "{name}: {err:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_matching_pin_works() {
    let server = start_echo(true, "").await;
    let pin = leaf_pin_from_pem(TEST_SERVER_CERT_PEM).unwrap();
    let mut link = HostLink::connect(&tls(&server, TEST_CA_PEM, "localhost", Some(pin)))
        .await
        .unwrap();
    link.send(b"pinned").await.unwrap();
    assert_eq!(link.recv(LONG).await.unwrap(), b"pinned");
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_other_pin_fails() {
    let server = start_echo(true, "").await;
    // The CA's own certificate is a realistic wrong pin (pinning the root instead of the leaf).
    let ca_pin = leaf_pin_from_pem(TEST_CA_PEM).unwrap();
    for pin in [[0u8; 32], ca_pin] {
        let err = HostLink::connect(&tls(&server, TEST_CA_PEM, "localhost", Some(pin)))
            .await
            .unwrap_err();
        assert_eq!(err, LinkError::PinMismatch);
        assert!(!err.request_may_have_reached_host());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn matching_pin_does_not_replace_ca_verification() {
    let server = start_echo(true, "").await;
    let pin = leaf_pin_from_pem(TEST_SERVER_CERT_PEM).unwrap();
    let err = HostLink::connect(&tls(&server, TEST_UNRELATED_CA_PEM, "localhost", Some(pin)))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Tls(_)), "{err:?}");
    let err = HostLink::connect(&tls(&server, TEST_CA_PEM, "example.com", Some(pin)))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Tls(_)), "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_that_never_completes_is_a_connect_timeout() {
    // Accepts TCP, then says nothing: the TLS handshake cannot finish.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    });
    let cfg = LinkConfig {
        connect_timeout: SHORT,
        ..LinkConfig::tls(
            addr.to_string(),
            TlsClientConfig::new(TEST_CA_PEM, "localhost"),
        )
    };
    let started = Instant::now();
    assert_eq!(
        HostLink::connect(&cfg).await.unwrap_err(),
        LinkError::ConnectTimeout
    );
    assert!(started.elapsed() >= SHORT && started.elapsed() < LONG);
    peer.abort();
}

#[tokio::test]
async fn tls_client_against_plain_server_fails_cleanly() {
    // A plain-TCP sim reads the ClientHello as a (long) frame and waits for the rest, so
    // the handshake times out; it must not hang or panic.
    let server = start_echo(false, "").await;
    let cfg = LinkConfig {
        connect_timeout: SHORT,
        ..tls(&server, TEST_CA_PEM, "localhost", None)
    };
    let err = HostLink::connect(&cfg).await.unwrap_err();
    assert!(
        matches!(err, LinkError::ConnectTimeout | LinkError::Tls(_)),
        "{err:?}"
    );
    server.shutdown().await;
}
