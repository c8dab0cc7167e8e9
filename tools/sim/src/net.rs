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
//!
//! Limits ([`ConnLimits`]): a connection with no frame started within the idle timeout is
//! closed, a frame (or an answer being written) must complete within the frame timeout once
//! its first byte arrived, and at most `max_connections` are served at once: one more is
//! closed as soon as it is accepted. Mutual TLS ([`ServerConfig::client_ca_pem`]): only a
//! client presenting a certificate issued by that CA completes the handshake, so nothing
//! from any other client (a sign-in included) reaches the handler.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
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

/// TEST ONLY: the root CA of terminal (client) certificates, for mutual TLS (see
/// `testdata/tls/README.md`).
pub const TEST_CLIENT_CA_PEM: &[u8] = include_bytes!("../testdata/tls/client-ca.pem");
/// TEST ONLY: terminal 12345678's client certificate, issued by [`TEST_CLIENT_CA_PEM`].
pub const TEST_CLIENT_CERT_PEM: &[u8] = include_bytes!("../testdata/tls/client.pem");
/// TEST ONLY: the private key of [`TEST_CLIENT_CERT_PEM`] (PKCS#8, P-256); it is public.
pub const TEST_CLIENT_KEY_PEM: &[u8] = include_bytes!("../testdata/tls/client.key");
/// TEST ONLY: the same terminal with an RSA 2048 key, issued by [`TEST_CLIENT_CA_PEM`].
pub const TEST_CLIENT_RSA_CERT_PEM: &[u8] = include_bytes!("../testdata/tls/client-rsa.pem");
/// TEST ONLY: the private key of [`TEST_CLIENT_RSA_CERT_PEM`] (PKCS#1).
pub const TEST_CLIENT_RSA_KEY_PEM: &[u8] = include_bytes!("../testdata/tls/client-rsa.key");
/// TEST ONLY: a terminal certificate issued by a CA nobody trusts.
pub const TEST_ROGUE_CLIENT_CERT_PEM: &[u8] = include_bytes!("../testdata/tls/client-rogue.pem");
/// TEST ONLY: the private key of [`TEST_ROGUE_CLIENT_CERT_PEM`].
pub const TEST_ROGUE_CLIENT_KEY_PEM: &[u8] = include_bytes!("../testdata/tls/client-rogue.key");

/// How long a TLS client may take to complete its handshake before the server drops it.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server tolerates from a client before it closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A connection on which no frame starts for this long is closed (the terminal connects
    /// again for its next message).
    pub idle_timeout: Duration,
    /// Once the first byte of a frame arrived, the whole frame must arrive within this time;
    /// writing an answer is bounded by it too (a client that stops reading).
    pub frame_timeout: Duration,
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    /// 60 s idle, 10 s per frame, 256 connections.
    fn default() -> Self {
        ConnLimits {
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

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
    /// Idle and slow clients, and how many connections at once.
    pub limits: ConnLimits,
    /// Mutual TLS: PEM `CERTIFICATE` blocks of the CA(s) whose client certificates are
    /// accepted; a client without one is refused at the handshake. Needs `tls`.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl Default for ServerConfig {
    /// Plain TCP on a free loopback port, no faults, seed 0, the default limits.
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:0".to_owned(),
            tls: None,
            faults: FaultPlan::none(),
            seed: 0,
            limits: ConnLimits::default(),
            client_ca_pem: None,
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
    limits: ConnLimits,
    /// One permit per connection served.
    slots: Arc<Semaphore>,
    /// Connections being served now.
    open: AtomicUsize,
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
        let acceptor = match (&cfg.tls, &cfg.client_ca_pem) {
            (Some(tls), client_ca) => Some(build_acceptor(tls, client_ca.as_deref())?),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(SimNetError::Tls {
                    reason: "client certificates need TLS (a server identity)".to_owned(),
                });
            }
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
            "sim: listening on {local_addr} ({}), faults [{}], seed {}, idle {:?}, frame {:?}, max {} connections",
            match (&acceptor, &cfg.client_ca_pem) {
                (None, _) => "TCP",
                (Some(_), None) => "TLS",
                (Some(_), Some(_)) => "TLS, client certificates required",
            },
            cfg.faults,
            cfg.seed,
            cfg.limits.idle_timeout,
            cfg.limits.frame_timeout,
            cfg.limits.max_connections,
        );
        Ok(Server {
            listener,
            acceptor,
            shared: Arc::new(Shared {
                handler,
                picker: Mutex::new(FaultPicker::new(&cfg.faults, cfg.seed)),
                next_conn: AtomicU64::new(0),
                limits: cfg.limits,
                slots: Arc::new(Semaphore::new(cfg.limits.max_connections)),
                open: AtomicUsize::new(0),
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
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(self.serve(stop_rx));
        ServerHandle {
            local_addr,
            stop: stop_tx,
            task: Some(task),
            shared,
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
                        let Ok(slot) = Arc::clone(&self.shared.slots).try_acquire_owned() else {
                            // Over the limit: closed at once (dropping the stream), so a flood
                            // of idle connections costs one accept each, not a task.
                            log::info!(
                                "sim: conn {conn_id} from {peer} refused: {} connections open",
                                self.shared.limits.max_connections
                            );
                            continue;
                        };
                        self.shared.open.fetch_add(1, Ordering::SeqCst);
                        let shared = Arc::clone(&self.shared);
                        let acceptor = self.acceptor.clone();
                        conns.spawn(async move {
                            handle_connection(&shared, acceptor, stream, peer, conn_id).await;
                            shared.open.fetch_sub(1, Ordering::SeqCst);
                            drop(slot);
                        });
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
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("open_connections", &self.open_connections())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections being served now (at most [`ConnLimits::max_connections`]).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
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

fn build_acceptor(
    tls: &TlsServerConfig,
    client_ca_pem: Option<&[u8]>,
) -> Result<TlsAcceptor, SimNetError> {
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
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| bad(format!("client CA PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("client CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("no CERTIFICATE block in the client CA PEM".to_owned()));
            }
            // Required, not optional: a client without a certificate fails the handshake.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn handle_connection(
    shared: &Shared,
    acceptor: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
    conn_id: u64,
) {
    // Frames are small and latency matters more than throughput.
    let _ = stream.set_nodelay(true);
    log::debug!("sim: conn {conn_id} from {peer}");
    match acceptor {
        None => serve_connection(shared, stream, peer, conn_id, false).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(shared, tls, peer, conn_id, true).await,
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
    /// No frame started within the idle timeout.
    Idle,
    /// A frame started but did not complete within the frame timeout.
    Slow,
}

/// Reads one frame: its first byte within `limits.idle_timeout`, the rest within
/// `limits.frame_timeout` of that byte.
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S, limits: &ConnLimits) -> ReadOutcome {
    let mut header = [0u8; 2];
    match tokio::time::timeout(limits.idle_timeout, stream.read(&mut header[..1])).await {
        Err(_) => return ReadOutcome::Idle,
        Ok(Ok(0) | Err(_)) => return ReadOutcome::Gone,
        Ok(Ok(_)) => {}
    }
    let mut body = Vec::new();
    let rest = async {
        stream.read_exact(&mut header[1..]).await?;
        let len = usize::from(u16::from_be_bytes(header));
        if len == 0 {
            return Ok(false);
        }
        body.resize(len, 0);
        stream.read_exact(&mut body).await.map(|_| true)
    };
    match tokio::time::timeout(limits.frame_timeout, rest).await {
        Ok(Ok(true)) => ReadOutcome::Frame(body),
        Ok(Ok(false)) => ReadOutcome::Empty,
        Ok(Err(_)) => {
            body.zeroize();
            ReadOutcome::Gone
        }
        Err(_) => {
            body.zeroize();
            ReadOutcome::Slow
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
    let limits = shared.limits;
    loop {
        let mut request = match read_frame(&mut stream, &limits).await {
            ReadOutcome::Frame(body) => body,
            ReadOutcome::Gone => break,
            ReadOutcome::Empty => {
                log::info!("sim: conn {conn_id}: zero-length frame, closing");
                break;
            }
            ReadOutcome::Idle => {
                log::info!(
                    "sim: conn {conn_id}: idle for {:?}, closing",
                    limits.idle_timeout
                );
                break;
            }
            ReadOutcome::Slow => {
                log::info!(
                    "sim: conn {conn_id}: frame not complete within {:?}, closing",
                    limits.frame_timeout
                );
                break;
            }
        };
        if !held.is_empty() {
            let late = std::mem::take(&mut held);
            if !write_bounded(&mut stream, &late, &limits).await {
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
            None => write_bounded(&mut stream, &answers, &limits).await,
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

/// Writes answers within the frame timeout (a client that stops reading cannot hold the task
/// forever); whether the connection can go on.
async fn write_bounded<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bodies: &[Vec<u8>],
    limits: &ConnLimits,
) -> bool {
    matches!(
        tokio::time::timeout(limits.frame_timeout, write_all_frames(stream, bodies)).await,
        Ok(Ok(()))
    )
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
        assert!(
            matches!(read_frame(&mut b, &ConnLimits::default()).await, ReadOutcome::Frame(f) if f == b"hello")
        );
        assert!(
            matches!(read_frame(&mut b, &ConnLimits::default()).await, ReadOutcome::Frame(f) if f == [7u8; 300])
        );
        assert!(matches!(
            read_frame(&mut b, &ConnLimits::default()).await,
            ReadOutcome::Gone
        ));
    }

    #[tokio::test]
    async fn zero_length_and_short_frames_are_rejected() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, &ConnLimits::default()).await,
            ReadOutcome::Empty
        ));
        a.write_all(&[0, 5, 1, 2]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, &ConnLimits::default()).await,
            ReadOutcome::Gone
        ));
    }

    #[test]
    fn builtin_test_identity_loads() {
        assert!(build_acceptor(&test_tls_config(), None).is_ok());
    }

    #[test]
    fn bad_tls_material_is_an_error_without_key_text() {
        let no_cert = TlsServerConfig {
            cert_chain_pem: b"not pem".to_vec(),
            key_pem: TEST_SERVER_KEY_PEM.to_vec(),
        };
        assert!(matches!(
            build_acceptor(&no_cert, None),
            Err(SimNetError::Tls { .. })
        ));
        let no_key = TlsServerConfig {
            cert_chain_pem: TEST_SERVER_CERT_PEM.to_vec(),
            key_pem: b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n".to_vec(),
        };
        let err = build_acceptor(&no_key, None).err().unwrap();
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
            build_acceptor(&mismatched, None),
            Err(SimNetError::Tls { .. })
        ));
    }
}
