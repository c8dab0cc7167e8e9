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

/// A one-shot TLS server with the sim's test identity and the given suites and groups; it
/// records what the client offered in its ClientHello, then tries to finish the handshake.
async fn record_client_hello(
    suites: Vec<rustls::SupportedCipherSuite>,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<(Vec<rustls::CipherSuite>, Vec<rustls::NamedGroup>)>,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: suites,
        kx_groups: groups,
        ..rustls::crypto::ring::default_provider()
    };
    let certs = CertificateDer::pem_slice_iter(TEST_SERVER_CERT_PEM)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(smartpos_sim::net::TEST_SERVER_KEY_PEM).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
        let start = acceptor.await.unwrap();
        let hello = start.client_hello();
        let offered = (
            hello.cipher_suites().to_vec(),
            hello.named_groups().map(<[_]>::to_vec).unwrap_or_default(),
        );
        // The handshake result is the client's to judge.
        let _ = start.into_stream(config).await;
        offered
    });
    (addr, task)
}

fn tls_to(addr: std::net::SocketAddr) -> LinkConfig {
    LinkConfig {
        connect_timeout: LONG,
        response_timeout: LONG,
        ..LinkConfig::tls(
            addr.to_string(),
            TlsClientConfig::new(TEST_CA_PEM.to_vec(), "localhost"),
        )
    }
}

#[tokio::test]
async fn terminal_offers_aes_gcm_on_nist_curves_only() {
    use rustls::crypto::ring::{ALL_CIPHER_SUITES, ALL_KX_GROUPS};
    let (addr, offered) =
        record_client_hello(ALL_CIPHER_SUITES.to_vec(), ALL_KX_GROUPS.to_vec()).await;
    let link = HostLink::connect(&tls_to(addr)).await.unwrap();
    link.close().await;
    let (suites, groups) = offered.await.unwrap();
    let suites: Vec<_> = suites
        .into_iter()
        .filter(|s| *s != rustls::CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
        .collect();
    let expected: Vec<_> = smartpos_terminal::link::TERMINAL_CIPHER_SUITES
        .iter()
        .map(|s| s.suite())
        .collect();
    assert_eq!(suites, expected);
    assert!(
        suites.iter().all(|s| format!("{s:?}").contains("_GCM_")),
        "{suites:?}"
    );
    assert_eq!(
        groups,
        vec![rustls::NamedGroup::secp256r1, rustls::NamedGroup::secp384r1]
    );
}

#[tokio::test]
async fn server_with_chacha20_or_x25519_only_is_refused() {
    use rustls::crypto::ring::{ALL_CIPHER_SUITES, ALL_KX_GROUPS, cipher_suite, kx_group};
    let chacha_only = vec![
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let cases = [
        (chacha_only, ALL_KX_GROUPS.to_vec()),
        (ALL_CIPHER_SUITES.to_vec(), vec![kx_group::X25519]),
    ];
    for (suites, groups) in cases {
        let (addr, offered) = record_client_hello(suites, groups).await;
        let err = HostLink::connect(&tls_to(addr)).await.unwrap_err();
        assert!(matches!(err, LinkError::Tls(_)), "{err:?}");
        assert!(!err.request_may_have_reached_host());
        offered.await.unwrap();
    }
}
