//! The simulated host's network side: a TCP or TLS server speaking 2-byte length-prefixed
//! frames, with transport fault injection.
//!
//! One tokio task per connection; each connection is served strictly in order (read one
//! request, answer it, read the next), as POS terminals do. Every request goes to the
//! [`FrameHandler`] — even when a fault then swallows the answer, because a real host that
//! never answered may still have processed (approved!) the request, which is exactly the case
//! reversals exist for. The faults picked for the request are passed to the handler in
//! [`ConnInfo::faults`] so it can apply message-level ones (`bad-mac`, `wrong-stan`).
//!
//! Framing (`smartpos_iso8583::frame`): a big-endian `u16` body length, then the body;
//! length 0 is invalid and closes the connection. Bodies are never logged.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroize;

use smartpos_iso8583::frame;

use crate::fault::{FaultKind, FaultPicker, FaultPlan, FaultSet, SplitMix64};

/// TEST ONLY: the root CA that issued [`TEST_SERVER_CERT_PEM`] (see `testdata/tls/README.md`).
pub const TEST_CA_PEM: &[u8] = include_bytes!("../testdata/tls/ca.pem");
/// TEST ONLY: the simulator's certificate for `localhost` / `127.0.0.1`.
pub const TEST_SERVER_CERT_PEM: &[u8] = include_bytes!("../testdata/tls/server.pem");
/// TEST ONLY: the private key of [`TEST_SERVER_CERT_PEM`]; it is public, never use it for real.
pub const TEST_SERVER_KEY_PEM: &[u8] = include_bytes!("../testdata/tls/server.key");
/// TEST ONLY: a root CA unrelated to the server certificate, for "wrong CA" tests.
pub const TEST_UNRELATED_CA_PEM: &[u8] = include_bytes!("../testdata/tls/other-ca.pem");

/// How long a TLS client may take to complete its handshake before the server drops it.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest frame body the 2-byte length prefix can carry.
pub const MAX_FRAME_BODY: usize = u16::MAX as usize;

/// The TEST-ONLY TLS identity embedded in the binary, so the CLI demo can serve TLS without
/// files. Clients trust it with [`TEST_CA_PEM`] and server name `localhost` or `127.0.0.1`.
pub fn test_tls_config() -> TlsServerConfig {
    TlsServerConfig {
        cert_chain_pem: TEST_SERVER_CERT_PEM.to_vec(),
        key_pem: TEST_SERVER_KEY_PEM.to_vec(),
    }
}

/// Where a request came from and what to do to its answer, passed to [`FrameHandler::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Connection number, counted from 0 in accept order since the server was bound.
    pub conn_id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// Index of this request on its connection, from 0.
    pub request_seq: u64,
    /// The faults picked for this request. Transport faults are applied by the server; the
    /// handler applies the message-level ones (`bad_mac`, `wrong_stan`) to its answer.
    pub faults: FaultSet,
}

/// The simulated host's logic: one request body in, zero or more answer bodies out.
///
/// Called from a tokio worker thread, so it should not block for long. Empty bodies or bodies
/// over 65535 bytes cannot be framed and are skipped (with a warning).
pub trait FrameHandler: Send + Sync + 'static {
    /// Handles one request; returns the answers to send, in order (none = no answer).
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>>;
}

impl<F> FrameHandler for F
where
    F: Fn(ConnInfo, &[u8]) -> Vec<Vec<u8>> + Send + Sync + 'static,
{
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        self(conn, request)
    }
}

/// A handler that answers every request with a copy of itself (tests, link checks).
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoHandler;

impl FrameHandler for EchoHandler {
    fn handle(&self, _conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        vec![request.to_vec()]
    }
}

/// The server's certificate chain and private key, PEM encoded.
#[derive(Clone)]
pub struct TlsServerConfig {
    /// Leaf certificate first, then intermediates (PEM `CERTIFICATE` blocks).
    pub cert_chain_pem: Vec<u8>,
    /// The leaf's private key (PKCS#8, SEC1 or PKCS#1 PEM). Zeroized on drop.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Drop for TlsServerConfig {
    fn drop(&mut self) {
        self.key_pem.zeroize();
    }
}

/// Everything [`Server::bind`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on, `"host:port"`; port 0 picks a free port.
    pub listen: String,
    /// TLS identity; `None` serves plain TCP.
    pub tls: Option<TlsServerConfig>,
    /// Transport faults to inject.
    pub faults: FaultPlan,
    /// Seed of the fault PRNG: the same seed and request sequence give the same faults.
    pub seed: u64,
}

impl Default for ServerConfig {
    /// Plain TCP on a free loopback port, no faults, seed 0.
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:0".to_owned(),
            tls: None,
            faults: FaultPlan::none(),
            seed: 0,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimNetError {
    /// The listen address could not be bound (in use, bad address, ...).
    #[error("cannot listen on {addr}: {kind}")]
    Bind {
        /// The address from the configuration.
        addr: String,
        /// What the OS said.
        kind: io::ErrorKind,
    },
    /// The TLS certificate chain or key is unusable.
    #[error("bad TLS server configuration: {reason}")]
    Tls {
        /// What is wrong (no key material in the text).
        reason: String,
    },
}

/// State shared by the accept loop and all connection tasks.
struct Shared {
    handler: Arc<dyn FrameHandler>,
    picker: Mutex<FaultPicker>,
    next_conn: AtomicU64,
}

/// A bound, not yet running server. Start it with [`Server::spawn`] or [`Server::run`].
pub struct Server {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listening socket and prepares TLS; nothing is accepted until
    /// [`Server::spawn`] or [`Server::run`].
    pub async fn bind(
        cfg: ServerConfig,
        handler: Arc<dyn FrameHandler>,
    ) -> Result<Server, SimNetError> {
        let acceptor = match &cfg.tls {
            Some(tls) => Some(build_acceptor(tls)?),
            None => None,
        };
        let bind_err = |e: io::Error| SimNetError::Bind {
            addr: cfg.listen.clone(),
            kind: e.kind(),
        };
        let listener = TcpListener::bind(cfg.listen.as_str())
            .await
            .map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        log::info!(
            "sim: listening on {local_addr} ({}), faults [{}], seed {}",
            if acceptor.is_some() { "TLS" } else { "TCP" },
            cfg.faults,
            cfg.seed
        );
        Ok(Server {
            listener,
            acceptor,
            shared: Arc::new(Shared {
                handler,
                picker: Mutex::new(FaultPicker::new(&cfg.faults, cfg.seed)),
                next_conn: AtomicU64::new(0),
            }),
            local_addr,
        })
    }

    /// The address actually bound (with the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves in the current task until the task is dropped or the process ends.
    pub async fn run(self) {
        let (_keep_open, stop) = watch::channel(false);
        self.serve(stop).await;
    }

    /// Serves on a background task; the handle stops it (and closes every connection) on
    /// [`ServerHandle::shutdown`] or when dropped.
    pub fn spawn(self) -> ServerHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let local_addr = self.local_addr;
        let task = tokio::spawn(self.serve(stop_rx));
        ServerHandle {
            local_addr,
            stop: stop_tx,
            task: Some(task),
        }
    }

    async fn serve(self, mut stop: watch::Receiver<bool>) {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let conn_id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
                        conns.spawn(handle_connection(
                            Arc::clone(&self.shared),
                            self.acceptor.clone(),
                            stream,
                            peer,
                            conn_id,
                        ));
                    }
                    Err(e) => {
                        // Usually EMFILE or a connection reset before accept: keep serving.
                        log::warn!("sim: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done
                        && e.is_panic() {
                            log::error!("sim: a connection task panicked (handler bug)");
                        }
                }
            }
        }
        conns.shutdown().await;
        log::info!("sim: server on {} stopped", self.local_addr);
    }
}

/// A running server started by [`Server::spawn`]. Dropping it aborts the server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every open connection and waits until all tasks are gone.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn build_acceptor(tls: &TlsServerConfig) -> Result<TlsAcceptor, SimNetError> {
    let bad = |reason: String| SimNetError::Tls { reason };
    let certs = CertificateDer::pem_slice_iter(&tls.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("certificate chain PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block in the chain PEM".to_owned()));
    }
    // The PEM error type carries no key bytes, only what kind of problem it met.
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| bad(format!("private key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn handle_connection(
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
    conn_id: u64,
) {
    // Frames are small and latency matters more than throughput.
    let _ = stream.set_nodelay(true);
    log::debug!("sim: conn {conn_id} from {peer}");
    match acceptor {
        None => serve_connection(&shared, stream, peer, conn_id, false).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(&shared, tls, peer, conn_id, true).await,
                Ok(Err(e)) => log::info!("sim: conn {conn_id}: TLS handshake failed: {e}"),
                Err(_) => log::info!("sim: conn {conn_id}: TLS handshake timed out"),
            }
        }
    }
    log::debug!("sim: conn {conn_id} done");
}

/// What ended a connection's read loop.
enum ReadOutcome {
    Frame(Vec<u8>),
    /// Clean or unclean end of stream, or an I/O error: nothing more to read.
    Gone,
    /// A zero-length frame header: framing is broken, the connection is dropped.
    Empty,
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> ReadOutcome {
    let mut header = [0u8; 2];
    if stream.read_exact(&mut header).await.is_err() {
        return ReadOutcome::Gone;
    }
    let len = usize::from(u16::from_be_bytes(header));
    if len == 0 {
        return ReadOutcome::Empty;
    }
    let mut body = vec![0u8; len];
    match stream.read_exact(&mut body).await {
        Ok(_) => ReadOutcome::Frame(body),
        Err(_) => {
            body.zeroize();
            ReadOutcome::Gone
        }
    }
}

/// Writes one frame (header and body in one buffer, so one segment on a fresh socket).
async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, body: &[u8]) -> io::Result<()> {
    if body.is_empty() || body.len() > MAX_FRAME_BODY {
        log::warn!(
            "sim: skipping an answer of {} bytes (must be 1..=65535)",
            body.len()
        );
        return Ok(());
    }
    let Ok(mut wire) = frame::encode(body) else {
        log::warn!("sim: skipping an answer the frame codec refused");
        return Ok(());
    };
    let result = stream.write_all(&wire).await;
    wire.zeroize();
    result?;
    stream.flush().await
}

async fn write_all_frames<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bodies: &[Vec<u8>],
) -> io::Result<()> {
    for body in bodies {
        write_frame(stream, body).await?;
    }
    Ok(())
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    mut stream: S,
    peer: SocketAddr,
    conn_id: u64,
    tls: bool,
) {
    // Answers held back by a `late` fault, delivered when the next request arrives.
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut request_seq = 0u64;
    loop {
        let mut request = match read_frame(&mut stream).await {
            ReadOutcome::Frame(body) => body,
            ReadOutcome::Gone => break,
            ReadOutcome::Empty => {
                log::info!("sim: conn {conn_id}: zero-length frame, closing");
                break;
            }
        };
        if !held.is_empty() {
            let late = std::mem::take(&mut held);
            if write_all_frames(&mut stream, &late).await.is_err() {
                break;
            }
        }
        let (faults, noise_seed) = {
            // A poisoned lock only means another connection's task panicked mid-pick; the
            // picker's state is still a valid PRNG state.
            let mut picker = shared
                .picker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (picker.pick(), picker.next_u64())
        };
        let info = ConnInfo {
            conn_id,
            peer,
            tls,
            request_seq,
            faults,
        };
        let answers = shared.handler.handle(info, &request);
        request.zeroize();
        if faults.bad_mac || faults.wrong_stan {
            log::info!(
                "sim: conn {conn_id} request {request_seq}: message-level faults for the handler: bad_mac={} wrong_stan={}",
                faults.bad_mac,
                faults.wrong_stan
            );
        }
        request_seq += 1;
        let keep_going = match faults.transport {
            None => write_all_frames(&mut stream, &answers).await.is_ok(),
            Some(kind) => {
                log::info!(
                    "sim: conn {conn_id} request {}: injecting fault {kind}",
                    request_seq - 1
                );
                apply_transport_fault(&mut stream, kind, answers, &mut held, noise_seed).await
            }
        };
        if !keep_going {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

/// Applies one transport fault to a request's answers. Returns whether the connection stays
/// open.
async fn apply_transport_fault<S: AsyncWrite + Unpin>(
    stream: &mut S,
    kind: FaultKind,
    answers: Vec<Vec<u8>>,
    held: &mut Vec<Vec<u8>>,
    noise_seed: u64,
) -> bool {
    let mut noise = SplitMix64::new(noise_seed);
    match kind {
        FaultKind::Drop => true,
        FaultKind::Delay(delay) => {
            tokio::time::sleep(delay).await;
            write_all_frames(stream, &answers).await.is_ok()
        }
        FaultKind::Close => false,
        FaultKind::Garbage => {
            // Same lengths as the real answers (so a length check alone cannot spot it); if
            // the handler had nothing to say, one 16-byte frame.
            let mut lengths: Vec<usize> = answers
                .iter()
                .map(|a| a.len().clamp(1, MAX_FRAME_BODY))
                .collect();
            if lengths.is_empty() {
                lengths.push(16);
            }
            for len in lengths {
                let mut junk = vec![0u8; len];
                noise.fill_bytes(&mut junk);
                if write_frame(stream, &junk).await.is_err() {
                    return false;
                }
            }
            true
        }
        FaultKind::Truncate => {
            let mut body = answers
                .into_iter()
                .find(|a| !a.is_empty())
                .unwrap_or_else(|| {
                    let mut junk = vec![0u8; 16];
                    noise.fill_bytes(&mut junk);
                    junk
                });
            body.truncate(MAX_FRAME_BODY);
            let promised = body.len() as u16;
            let mut wire = promised.to_be_bytes().to_vec();
            wire.extend_from_slice(&body[..body.len() / 2]);
            let _ = stream.write_all(&wire).await;
            let _ = stream.flush().await;
            wire.zeroize();
            body.zeroize();
            false
        }
        FaultKind::Duplicate => {
            for answer in &answers {
                if write_frame(stream, answer).await.is_err()
                    || write_frame(stream, answer).await.is_err()
                {
                    return false;
                }
            }
            true
        }
        FaultKind::Late => {
            held.extend(answers);
            true
        }
        // Message-level kinds never come out of the picker as transport faults; answering
        // normally is the only sensible reading if one ever does.
        _ => write_all_frames(stream, &answers).await.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_through_a_duplex_pipe() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, b"hello").await.unwrap();
        write_frame(&mut a, &[]).await.unwrap(); // skipped: cannot be framed
        write_frame(&mut a, &[7u8; 300]).await.unwrap();
        drop(a);
        assert!(matches!(read_frame(&mut b).await, ReadOutcome::Frame(f) if f == b"hello"));
        assert!(matches!(read_frame(&mut b).await, ReadOutcome::Frame(f) if f == [7u8; 300]));
        assert!(matches!(read_frame(&mut b).await, ReadOutcome::Gone));
    }

    #[tokio::test]
    async fn zero_length_and_short_frames_are_rejected() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0]).await.unwrap();
        assert!(matches!(read_frame(&mut b).await, ReadOutcome::Empty));
        a.write_all(&[0, 5, 1, 2]).await.unwrap();
        drop(a);
        assert!(matches!(read_frame(&mut b).await, ReadOutcome::Gone));
    }

    #[test]
    fn builtin_test_identity_loads() {
        assert!(build_acceptor(&test_tls_config()).is_ok());
    }

    #[test]
    fn bad_tls_material_is_an_error_without_key_text() {
        let no_cert = TlsServerConfig {
            cert_chain_pem: b"not pem".to_vec(),
            key_pem: TEST_SERVER_KEY_PEM.to_vec(),
        };
        assert!(matches!(
            build_acceptor(&no_cert),
            Err(SimNetError::Tls { .. })
        ));
        let no_key = TlsServerConfig {
            cert_chain_pem: TEST_SERVER_CERT_PEM.to_vec(),
            key_pem: b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n".to_vec(),
        };
        let err = build_acceptor(&no_key).err().unwrap();
        assert!(matches!(err, SimNetError::Tls { .. }));
        let text = format!("{:?}", test_tls_config());
        assert!(text.contains("<redacted>") && !text.contains("PRIVATE KEY"));
    }

    #[test]
    fn wrong_key_for_certificate_is_rejected() {
        // The CA certificate does not belong to the server key: rustls checks the pair.
        let mismatched = TlsServerConfig {
            cert_chain_pem: TEST_CA_PEM.to_vec(),
            key_pem: TEST_SERVER_KEY_PEM.to_vec(),
        };
        assert!(matches!(
            build_acceptor(&mismatched),
            Err(SimNetError::Tls { .. })
        ));
    }
}
