//! Mutual TLS (issue 19): the terminal presents its client certificate; a host that requires
//! one refuses a terminal without it (or with another CA's), and the link says that the
//! request never reached the host, so nothing is reversed for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use smartpos_sim::net::{
    ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle, TEST_CA_PEM, TEST_CLIENT_CA_PEM,
    TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM, TEST_CLIENT_RSA_CERT_PEM, TEST_CLIENT_RSA_KEY_PEM,
    TEST_ROGUE_CLIENT_CERT_PEM, TEST_ROGUE_CLIENT_KEY_PEM, test_tls_config,
};
use smartpos_terminal::link::{ClientIdentity, HostLink, LinkError};

use crate::support::{LONG, tls};

/// A TLS echo host that requires a client certificate from the TEST terminal CA, and the
/// number of requests that reached it.
async fn start_mtls() -> (ServerHandle, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    let handler = move |_: ConnInfo, request: &[u8]| {
        count.fetch_add(1, Ordering::SeqCst);
        vec![request.to_vec()]
    };
    let handler: Arc<dyn FrameHandler> = Arc::new(handler);
    let cfg = ServerConfig {
        tls: Some(test_tls_config()),
        client_ca_pem: Some(TEST_CLIENT_CA_PEM.to_vec()),
        ..ServerConfig::default()
    };
    (Server::bind(cfg, handler).await.unwrap().spawn(), seen)
}

/// One request over a fresh link with `identity`: the answer, or the first error.
async fn round_trip(
    server: &ServerHandle,
    identity: Option<ClientIdentity>,
) -> Result<Vec<u8>, LinkError> {
    let mut cfg = tls(server, TEST_CA_PEM, "localhost", None);
    if let Some(t) = cfg.tls.as_mut() {
        t.client_identity = identity;
    }
    let mut link = HostLink::connect(&cfg).await?;
    link.send(b"0800 sign-in").await?;
    link.recv(LONG).await
}

/// The DER bytes of the first PEM block of `pem`.
fn der_of(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64_decode(&b64)
}

/// A small standard base64 decoder (test only; the crate has no base64 dependency).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap();
        acc = (acc << 6) | u32::try_from(v).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xFF).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn a_terminal_presenting_its_certificate_is_served() {
    let (server, seen) = start_mtls().await;
    let ecdsa = ClientIdentity::new(TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM).unwrap();
    assert_eq!(
        round_trip(&server, Some(ecdsa)).await.unwrap(),
        b"0800 sign-in"
    );
    let rsa = ClientIdentity::new(TEST_CLIENT_RSA_CERT_PEM, TEST_CLIENT_RSA_KEY_PEM).unwrap();
    assert_eq!(
        round_trip(&server, Some(rsa)).await.unwrap(),
        b"0800 sign-in"
    );
    // DER works as well as PEM (what an app holding the key in the Keystore has).
    let der =
        ClientIdentity::new(&der_of(TEST_CLIENT_CERT_PEM), &der_of(TEST_CLIENT_KEY_PEM)).unwrap();
    assert_eq!(
        round_trip(&server, Some(der)).await.unwrap(),
        b"0800 sign-in"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn without_an_accepted_certificate_the_host_refuses_and_nothing_reached_it() {
    let (server, seen) = start_mtls().await;
    let rogue = ClientIdentity::new(TEST_ROGUE_CLIENT_CERT_PEM, TEST_ROGUE_CLIENT_KEY_PEM).unwrap();
    for identity in [None, Some(rogue)] {
        let err = round_trip(&server, identity.clone()).await.unwrap_err();
        assert!(
            matches!(err, LinkError::ClientCertificateRefused { .. }),
            "{identity:?}: {err:?}"
        );
        assert!(
            !err.request_may_have_reached_host(),
            "refused at the handshake: not reached, nothing to reverse"
        );
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "no request reached the host"
    );
    server.shutdown().await;
}

#[test]
fn a_client_identity_is_checked_when_it_is_made_and_never_shows_its_key() {
    // The key of another certificate.
    let err = ClientIdentity::new(TEST_CLIENT_CERT_PEM, TEST_ROGUE_CLIENT_KEY_PEM).unwrap_err();
    assert!(format!("{err}").contains("does not match"), "{err}");
    assert!(ClientIdentity::new(b"garbage", TEST_CLIENT_KEY_PEM).is_err());
    assert!(ClientIdentity::new(TEST_CLIENT_CERT_PEM, b"garbage").is_err());
    assert!(ClientIdentity::new(b"", b"").is_err());
    let id = ClientIdentity::new(TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM).unwrap();
    let shown = format!("{id:?}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let key_der = der_of(TEST_CLIENT_KEY_PEM);
    let hex: String = key_der.iter().map(|b| format!("{b:02X}")).collect();
    assert!(!shown.contains(&hex[..16]), "{shown}");
}
