//! The simulator's defences against idle and slow clients (issue 19): an idle timeout, a
//! deadline for a frame once it started, and a connection limit; and mutual TLS, where a
//! client without a certificate from the terminal CA gets nothing through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smartpos_sim::net::{
    ConnInfo, ConnLimits, EchoHandler, FrameHandler, Server, ServerConfig, ServerHandle,
    SimNetError, TEST_CA_PEM, TEST_CLIENT_CA_PEM, TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM,
    TEST_ROGUE_CLIENT_CERT_PEM, TEST_ROGUE_CLIENT_KEY_PEM, test_tls_config,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const LONG: Duration = Duration::from_secs(5);

async fn start_limited(limits: ConnLimits, handler: Arc<dyn FrameHandler>) -> ServerHandle {
    let cfg = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    Server::bind(cfg, handler).await.unwrap().spawn()
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, body: &[u8]) {
    let mut wire = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    s.write_all(&wire).await.unwrap();
    s.flush().await.unwrap();
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 2];
    s.read_exact(&mut header).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(header))];
    s.read_exact(&mut body).await?;
    Ok(body)
}

/// Waits until the server closes `s` (EOF or reset); returns how long that took. Fails the
/// test when it stays open for `LONG`.
async fn closed_after<S: AsyncRead + Unpin>(s: &mut S) -> Duration {
    let start = Instant::now();
    let mut sink = Vec::new();
    let r = tokio::time::timeout(LONG, s.read_to_end(&mut sink)).await;
    assert!(r.is_ok(), "the server kept the connection open");
    start.elapsed()
}

/// A handler that counts the requests it sees and echoes them.
fn counting() -> (Arc<AtomicUsize>, Arc<dyn FrameHandler>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    let handler = move |_: ConnInfo, request: &[u8]| {
        count.fetch_add(1, Ordering::SeqCst);
        vec![request.to_vec()]
    };
    (seen, Arc::new(handler))
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let limits = ConnLimits {
        idle_timeout: Duration::from_millis(300),
        ..ConnLimits::default()
    };
    let server = start_limited(limits, Arc::new(EchoHandler)).await;
    // Never a byte.
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let waited = closed_after(&mut silent).await;
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    // One exchange, then idle: closed after the timeout too.
    let mut once = TcpStream::connect(server.local_addr()).await.unwrap();
    write_frame(&mut once, b"ping").await;
    assert_eq!(read_frame(&mut once).await.unwrap(), b"ping");
    closed_after(&mut once).await;
    assert_eq!(server.open_connections(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_sending_one_byte_at_a_time_is_closed_at_the_frame_deadline() {
    let limits = ConnLimits {
        idle_timeout: Duration::from_secs(30),
        frame_timeout: Duration::from_millis(500),
        ..ConnLimits::default()
    };
    let (seen, handler) = counting();
    let server = start_limited(limits, handler).await;
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    // A 40-byte frame, one byte every 100 ms: 4.2 s if the server waited for it all.
    let mut wire = vec![0u8, 40];
    wire.extend_from_slice(&[0x41; 40]);
    let start = Instant::now();
    let mut closed = false;
    for b in wire {
        if slow.write_all(&[b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "the slow client was never cut off");
    assert!(
        took < Duration::from_millis(1500),
        "cut off after {took:?}, the frame deadline is 500 ms"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "no request reached the host"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_hold_at_most_the_connection_limit() {
    // The default limits, as `smartpos host` runs them.
    let limits = ConnLimits::default();
    let max = limits.max_connections;
    let server = start_limited(limits, Arc::new(EchoHandler)).await;
    let mut conns = Vec::new();
    for _ in 0..1000 {
        conns.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    // Every connection over the limit is closed at once; the others stay until idle.
    let mut refused = 0;
    for c in &mut conns {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), c.read(&mut b)).await
        {
            refused += 1;
        }
    }
    let open = server.open_connections();
    println!("1000 idle connections: {open} kept (limit {max}), {refused} closed at once");
    assert_eq!(open, max, "the server holds exactly its limit");
    assert_eq!(refused, 1000 - max);
    // A connection freed is a connection served.
    drop(conns);
    tokio::time::timeout(LONG, async {
        while server.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let mut fresh = TcpStream::connect(server.local_addr()).await.unwrap();
    write_frame(&mut fresh, b"after").await;
    assert_eq!(read_frame(&mut fresh).await.unwrap(), b"after");
    server.shutdown().await;
}

#[tokio::test]
async fn client_certificates_need_tls() {
    let cfg = ServerConfig {
        client_ca_pem: Some(TEST_CLIENT_CA_PEM.to_vec()),
        ..ServerConfig::default()
    };
    assert!(matches!(
        Server::bind(cfg, Arc::new(EchoHandler)).await,
        Err(SimNetError::Tls { .. })
    ));
    let cfg = ServerConfig {
        tls: Some(test_tls_config()),
        client_ca_pem: Some(b"not a certificate".to_vec()),
        ..ServerConfig::default()
    };
    assert!(matches!(
        Server::bind(cfg, Arc::new(EchoHandler)).await,
        Err(SimNetError::Tls { .. })
    ));
}

/// A rustls client trusting the TEST server CA, with an optional client certificate and key.
fn tls_client(identity: Option<(&[u8], &[u8])>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(TEST_CA_PEM) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert)
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key).unwrap(),
            )
            .unwrap(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects with `identity`, sends one frame and returns the answer, or the error that ended
/// the exchange (handshake, or the first read after it: with TLS 1.3 the server refuses the
/// client's certificate after the client finished its side of the handshake).
async fn exchange(
    server: &ServerHandle,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tls_client(identity)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    write_frame(&mut tls, b"0800 sign-in").await;
    tokio::time::timeout(LONG, read_frame(&mut tls))
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| format!("read: {e}"))
}

#[tokio::test]
async fn with_client_certificates_required_only_a_trusted_terminal_gets_through() {
    let (seen, handler) = counting();
    let cfg = ServerConfig {
        tls: Some(test_tls_config()),
        client_ca_pem: Some(TEST_CLIENT_CA_PEM.to_vec()),
        ..ServerConfig::default()
    };
    let server = Server::bind(cfg, handler).await.unwrap().spawn();
    let answer = exchange(&server, Some((TEST_CLIENT_CERT_PEM, TEST_CLIENT_KEY_PEM))).await;
    assert_eq!(answer, Ok(b"0800 sign-in".to_vec()));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    let none = exchange(&server, None).await;
    assert!(none.is_err(), "no certificate: {none:?}");
    let rogue = exchange(
        &server,
        Some((TEST_ROGUE_CLIENT_CERT_PEM, TEST_ROGUE_CLIENT_KEY_PEM)),
    )
    .await;
    assert!(rogue.is_err(), "an untrusted CA's certificate: {rogue:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "neither reached the host");
    server.shutdown().await;
}
