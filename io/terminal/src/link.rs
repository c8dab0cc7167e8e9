//! The host link: one TCP or TLS connection from the terminal to the acquirer host, carrying
//! 2-byte length-prefixed frames.
//!
//! Framing (`smartpos_iso8583::frame`): a big-endian `u16` body length, then the body; a body
//! is 1 to 65535 bytes (a zero length is refused in both directions).
//! [`HostLink::recv`] keeps partial frames buffered, so a timeout never loses or splits bytes
//! and the next call continues where the last one stopped.
//!
//! TLS uses rustls with the terminal's own `ring`-backed provider passed explicitly (no
//! process-wide default), restricted to what acquirer hosts use (see [`TERMINAL_CIPHER_SUITES`]):
//! AES-GCM suites on TLS 1.3 and 1.2, ECDHE on P-256 or P-384, server certificates signed with
//! ECDSA (P-256/P-384) or RSA (PKCS#1 v1.5 or PSS, 2048 to 8192 bits). ChaCha20-Poly1305,
//! X25519 and Ed25519 are not offered, so their code is not linked into the Android library
//! (issue 10). A client certificate is never sent.
//! Certificate verification is always on (webpki against the configured roots, server name
//! checked); an optional pin additionally requires the SHA-256 of the leaf certificate DER to
//! match, compared in constant time.
//!
//! Every [`LinkError`] says through [`LinkError::request_may_have_reached_host`] whether a
//! request sent before it may have reached the host: the engine keeps the pending reversal
//! whenever that is true. Frame bodies never appear in errors or logs.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::SupportedCipherSuite;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, SupportedKxGroup,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SigningKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use smartpos_iso8583::FrameError;
use smartpos_iso8583::frame;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroize;

/// Default for [`LinkConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`LinkConfig::response_timeout`].
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame body the 2-byte length prefix can carry.
pub const MAX_FRAME_BODY: usize = u16::MAX as usize;
/// How long [`HostLink::close`] waits for a TLS close_notify / FIN to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where and how to connect to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// `"host:port"`; a name is resolved and each address tried in turn.
    pub host: String,
    /// TLS settings; `None` is plain TCP.
    pub tls: Option<TlsClientConfig>,
    /// Limit for TCP connect plus TLS handshake together.
    pub connect_timeout: Duration,
    /// Default wait for an answer; also bounds how long [`HostLink::send`] may block.
    pub response_timeout: Duration,
}

impl LinkConfig {
    /// Plain TCP to `host` with the default timeouts.
    pub fn plain(host: impl Into<String>) -> LinkConfig {
        LinkConfig {
            host: host.into(),
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }

    /// TLS to `host` with the default timeouts.
    pub fn tls(host: impl Into<String>, tls: TlsClientConfig) -> LinkConfig {
        LinkConfig {
            tls: Some(tls),
            ..LinkConfig::plain(host)
        }
    }
}

/// TLS settings of the host link. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientConfig {
    /// PEM `CERTIFICATE` blocks of the roots to trust. Verification is always on.
    pub ca_pem: Vec<u8>,
    /// Name the server certificate must be valid for (DNS name or IP address literal).
    pub server_name: String,
    /// Optional pin: SHA-256 of the leaf certificate's DER. When set, the leaf must match it
    /// in addition to passing normal verification. See [`certificate_sha256`].
    pub pin_sha256: Option<[u8; 32]>,
}

impl TlsClientConfig {
    /// Trusts the roots in `ca_pem` for `server_name`, without a pin.
    pub fn new(ca_pem: impl Into<Vec<u8>>, server_name: impl Into<String>) -> TlsClientConfig {
        TlsClientConfig {
            ca_pem: ca_pem.into(),
            server_name: server_name.into(),
            pin_sha256: None,
        }
    }
}

/// Why the link failed. Each variant's doc says whether a request sent before the error may
/// have reached the host; [`LinkError::request_may_have_reached_host`] answers the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// TCP connect plus TLS handshake did not finish within the connect timeout.
    /// Nothing was sent on this connection: the request has not reached the host.
    #[error("connection to the host timed out")]
    ConnectTimeout,
    /// The TCP connection (or the name resolution) failed.
    /// Nothing was sent on this connection: the request has not reached the host.
    #[error("cannot connect to the host: {kind}")]
    Connect {
        /// What the OS said.
        kind: io::ErrorKind,
    },
    /// The TLS handshake failed, or the configuration was unusable (bad CA PEM, bad server
    /// name, certificate not trusted, wrong name, ...). Only returned by
    /// [`HostLink::connect`]: nothing was sent, the request has not reached the host.
    #[error("TLS failure: {0}")]
    Tls(String),
    /// The server certificate verified but does not match the configured pin.
    /// Only returned by [`HostLink::connect`]: the request has not reached the host.
    #[error("server certificate does not match the pin")]
    PinMismatch,
    /// No complete answer within the timeout (or a send blocked past the response timeout).
    /// The request may have reached the host (and been approved): reverse.
    #[error("no answer from the host within the timeout")]
    Timeout,
    /// The host closed the connection. The request may have reached the host: reverse.
    #[error("the host closed the connection")]
    Closed,
    /// Reading or writing failed (reset, broken pipe, TLS record error, ...). Part or all of
    /// the request may have reached the host: reverse.
    #[error("I/O error on the host link: {kind}")]
    Io {
        /// What the OS (or TLS layer) said.
        kind: io::ErrorKind,
    },
    /// [`HostLink::send`] was given a body over 65535 bytes; nothing was written, so this
    /// request has not reached the host.
    #[error("frame body of {len} bytes exceeds 65535")]
    FrameTooLong {
        /// The body length.
        len: usize,
    },
    /// [`HostLink::send`] was given an empty body; nothing was written, so this request has
    /// not reached the host.
    #[error("empty frame body")]
    EmptyFrame,
    /// [`HostLink::recv`] read a zero-length frame header: the host broke the framing. The
    /// connection is unusable afterwards; the request did reach the host: reverse.
    #[error("the host sent a zero-length frame")]
    ReceivedEmptyFrame,
}

impl LinkError {
    /// Whether a request sent before this error may have reached the host, so that its
    /// outcome is unknown and a money-moving request must be reversed. `false` only when it
    /// certainly did not (connection never established, or the frame was refused before any
    /// byte was written).
    pub fn request_may_have_reached_host(&self) -> bool {
        match self {
            LinkError::ConnectTimeout
            | LinkError::Connect { .. }
            | LinkError::Tls(_)
            | LinkError::PinMismatch
            | LinkError::FrameTooLong { .. }
            | LinkError::EmptyFrame => false,
            LinkError::Timeout
            | LinkError::Closed
            | LinkError::Io { .. }
            | LinkError::ReceivedEmptyFrame => true,
        }
    }
}

/// SHA-256 of a certificate's DER encoding: the value to put in
/// [`TlsClientConfig::pin_sha256`].
pub fn certificate_sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The pin of the first certificate in a PEM file (the leaf, in a chain file).
pub fn leaf_pin_from_pem(pem: &[u8]) -> Result<[u8; 32], LinkError> {
    let leaf = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| LinkError::Tls("no CERTIFICATE block in PEM".to_owned()))?
        .map_err(|e| LinkError::Tls(format!("certificate PEM: {e}")))?;
    Ok(certificate_sha256(leaf.as_ref()))
}

/// Wraps the webpki verifier and additionally requires the leaf to match a SHA-256 pin.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pin: [u8; 32],
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Normal verification first: a pin narrows trust, it never replaces it.
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let actual = certificate_sha256(end_entity.as_ref());
        if bool::from(actual.ct_eq(&self.pin)) {
            Ok(verified)
        } else {
            // The webpki verifier never reports this error, so `connect` can tell a pin
            // mismatch apart from every other certificate problem.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The cipher suites the terminal offers, most preferred first: AES-GCM only (TLS 1.3, then
/// TLS 1.2 with ECDHE and an ECDSA or RSA certificate). Payment hosts negotiate AES-GCM
/// (PCI DSS strong cryptography); ChaCha20-Poly1305 is left out to keep its code out of the
/// library.
pub const TERMINAL_CIPHER_SUITES: [SupportedCipherSuite; 6] = [
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

/// Key exchange groups offered: the NIST curves every TLS 1.2 server supports. A TLS 1.3 server
/// that prefers X25519 still picks P-256 from the key share the terminal sends.
const TERMINAL_KX_GROUPS: [&dyn SupportedKxGroup; 2] = [kx_group::SECP256R1, kx_group::SECP384R1];

/// Signature algorithms accepted in server certificates and handshake signatures.
/// `mapping` ties each TLS SignatureScheme (RFC 8446 section 4.2.3) to the webpki algorithms
/// that verify it; for TLS 1.2 an ECDSA scheme does not fix the curve, so both curves are
/// listed.
static TERMINAL_SIG_ALGS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[
                webpki::ring::ECDSA_P384_SHA384,
                webpki::ring::ECDSA_P256_SHA384,
            ],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[
                webpki::ring::ECDSA_P256_SHA256,
                webpki::ring::ECDSA_P384_SHA256,
            ],
        ),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// TLS randomness from the OS, through ring.
#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
            .map_err(|_| GetRandomFailed)
    }
}

/// The terminal never authenticates with a client certificate (the host authenticates the
/// terminal by its MAC keys), so no private key format is accepted.
#[derive(Debug)]
struct NoClientKeys;

impl KeyProvider for NoClientKeys {
    fn load_private_key(
        &self,
        _key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "the terminal does not use client certificates".to_owned(),
        ))
    }
}

/// The crypto provider of the host link (see the module docs for what it offers).
pub fn terminal_crypto_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: TERMINAL_CIPHER_SUITES.to_vec(),
        kx_groups: TERMINAL_KX_GROUPS.to_vec(),
        signature_verification_algorithms: TERMINAL_SIG_ALGS,
        secure_random: &OsRandom,
        key_provider: &NoClientKeys,
    }
}

/// Builds the rustls client side from our config (roots, server name, optional pin).
fn tls_connector(tls: &TlsClientConfig) -> Result<(TlsConnector, ServerName<'static>), LinkError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&tls.ca_pem) {
        let cert = cert.map_err(|e| LinkError::Tls(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| LinkError::Tls(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(LinkError::Tls("no CA certificate in ca_pem".to_owned()));
    }
    let server_name = ServerName::try_from(tls.server_name.clone())
        .map_err(|_| LinkError::Tls(format!("invalid server name `{}`", tls.server_name)))?;
    let provider = Arc::new(terminal_crypto_provider());
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| LinkError::Tls(format!("verifier: {e}")))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let config = match tls.pin_sha256 {
        None => builder.with_webpki_verifier(webpki).with_no_client_auth(),
        Some(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier { inner: webpki, pin }))
            .with_no_client_auth(),
    };
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

/// Maps a failed TLS handshake to `PinMismatch` or `Tls(reason)`.
fn handshake_error(err: io::Error) -> LinkError {
    let tls_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        )) => LinkError::PinMismatch,
        Some(e) => LinkError::Tls(e.to_string()),
        None => match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                LinkError::Tls("the host closed the connection during the handshake".to_owned())
            }
            kind => LinkError::Tls(format!("handshake I/O error: {kind}")),
        },
    }
}

/// The byte stream under the link.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    async fn read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all_flush(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        }
    }
}

/// One connection to the host. Frame bodies pass through it unchanged; the bytes it buffers
/// are zeroized on drop (answers may carry card data).
pub struct HostLink {
    stream: Stream,
    /// Received bytes not yet returned as a frame (at most one partial frame plus whatever
    /// followed it).
    rbuf: Vec<u8>,
    response_timeout: Duration,
}

impl std::fmt::Debug for HostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLink")
            .field("tls", &matches!(self.stream, Stream::Tls(_)))
            .field("buffered", &self.rbuf.len())
            .finish()
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        self.rbuf.zeroize();
    }
}

impl HostLink {
    /// Connects (and, with TLS, completes the handshake) within `cfg.connect_timeout`.
    pub async fn connect(cfg: &LinkConfig) -> Result<HostLink, LinkError> {
        // Build the TLS side first: a bad configuration is reported without touching the net.
        let tls = match &cfg.tls {
            Some(tls) => Some(tls_connector(tls)?),
            None => None,
        };
        let stream = tokio::time::timeout(cfg.connect_timeout, async {
            let tcp = TcpStream::connect(cfg.host.as_str())
                .await
                .map_err(|e| LinkError::Connect { kind: e.kind() })?;
            // Frames are small and each is flushed at once: do not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            match tls {
                None => Ok(Stream::Plain(tcp)),
                Some((connector, name)) => connector
                    .connect(name, tcp)
                    .await
                    .map(|s| Stream::Tls(Box::new(s)))
                    .map_err(handshake_error),
            }
        })
        .await
        .map_err(|_| LinkError::ConnectTimeout)??;
        log::debug!(
            "link: connected to {} ({})",
            cfg.host,
            if cfg.tls.is_some() { "TLS" } else { "TCP" }
        );
        Ok(HostLink {
            stream,
            rbuf: Vec::new(),
            response_timeout: cfg.response_timeout,
        })
    }

    /// Writes one frame (length prefix and body together) and flushes it. Bounded by the
    /// configured response timeout, in case the host stops reading.
    pub async fn send(&mut self, body: &[u8]) -> Result<(), LinkError> {
        if body.is_empty() {
            return Err(LinkError::EmptyFrame);
        }
        let mut wire = frame::encode(body).map_err(|e| match e {
            FrameError::TooLong { len } => LinkError::FrameTooLong { len },
            // Any other refusal also happens before a byte is written.
            _ => LinkError::FrameTooLong { len: body.len() },
        })?;
        let result =
            tokio::time::timeout(self.response_timeout, self.stream.write_all_flush(&wire)).await;
        wire.zeroize();
        match result {
            Err(_) => Err(LinkError::Timeout),
            Ok(Err(e)) => Err(io_error(&e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads exactly one frame, waiting at most `timeout` for it to be complete. Bytes of a
    /// frame that is still incomplete at the timeout stay buffered for the next call.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        if let Some(frame) = take_frame(&mut self.rbuf)? {
            return Ok(frame);
        }
        let Self { stream, rbuf, .. } = self;
        // Cancel-safe: the only state is `rbuf`, which grows only by completed reads.
        tokio::time::timeout(timeout, async {
            loop {
                rbuf.reserve(4096);
                match stream.read_buf(rbuf).await {
                    Ok(0) => return Err(LinkError::Closed),
                    Ok(_) => {
                        if let Some(frame) = take_frame(rbuf)? {
                            return Ok(frame);
                        }
                    }
                    Err(e) => return Err(io_error(&e)),
                }
            }
        })
        .await
        .map_err(|_| LinkError::Timeout)?
    }

    /// [`HostLink::recv`] with the configured response timeout.
    pub async fn recv_default(&mut self) -> Result<Vec<u8>, LinkError> {
        let timeout = self.response_timeout;
        self.recv(timeout).await
    }

    /// Closes the connection politely (TLS close_notify, TCP FIN), waiting at most a second.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.shutdown()).await;
    }
}

/// Maps a read/write error; an EOF in the middle of TLS records or a reset is still "the
/// host went away" for the caller, but kept distinct from a clean close.
fn io_error(e: &io::Error) -> LinkError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => LinkError::Closed,
        kind => LinkError::Io { kind },
    }
}

/// Takes one complete frame off the front of `buf`, if there is one (framing rules from
/// `smartpos_iso8583::frame`; a zero-length frame is refused here, as the link never sends one).
fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, LinkError> {
    // The frame decoder cannot fail on any 2-byte prefix today; should it learn to (a dialect
    // size rule), the host broke the framing just like with an empty frame.
    let decoded = frame::decode(buf).map_err(|_| LinkError::ReceivedEmptyFrame)?;
    let Some((body, used)) = decoded else {
        return Ok(None);
    };
    let body = (!body.is_empty()).then(|| body.to_vec());
    buf.drain(..used);
    body.map(Some).ok_or(LinkError::ReceivedEmptyFrame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_frame_waits_for_complete_frames() {
        let mut buf = vec![0x00];
        assert_eq!(take_frame(&mut buf), Ok(None));
        buf.extend_from_slice(&[0x03, b'a', b'b']);
        assert_eq!(take_frame(&mut buf), Ok(None));
        buf.extend_from_slice(&[b'c', 0x00, 0x01, b'z', 0x00]);
        assert_eq!(take_frame(&mut buf), Ok(Some(b"abc".to_vec())));
        assert_eq!(take_frame(&mut buf), Ok(Some(b"z".to_vec())));
        assert_eq!(take_frame(&mut buf), Ok(None));
        assert_eq!(buf, vec![0x00]);
    }

    #[test]
    fn take_frame_rejects_zero_length() {
        let mut buf = vec![0x00, 0x00, 0x00, 0x01, 0x42];
        assert_eq!(take_frame(&mut buf), Err(LinkError::ReceivedEmptyFrame));
        assert_eq!(take_frame(&mut buf), Ok(Some(vec![0x42])));
    }

    #[test]
    fn take_frame_handles_max_length() {
        let mut buf = vec![0xFF, 0xFF];
        buf.resize(2 + MAX_FRAME_BODY - 1, 7);
        assert_eq!(take_frame(&mut buf), Ok(None));
        buf.push(7);
        let frame = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(frame.len(), MAX_FRAME_BODY);
        assert!(buf.is_empty());
    }

    #[test]
    fn reached_host_classification() {
        for e in [
            LinkError::ConnectTimeout,
            LinkError::Connect {
                kind: io::ErrorKind::ConnectionRefused,
            },
            LinkError::Tls("x".into()),
            LinkError::PinMismatch,
            LinkError::FrameTooLong { len: 70_000 },
            LinkError::EmptyFrame,
        ] {
            assert!(!e.request_may_have_reached_host(), "{e:?}");
        }
        for e in [
            LinkError::Timeout,
            LinkError::Closed,
            LinkError::Io {
                kind: io::ErrorKind::ConnectionReset,
            },
            LinkError::ReceivedEmptyFrame,
        ] {
            assert!(e.request_may_have_reached_host(), "{e:?}");
        }
    }

    #[test]
    fn certificate_sha256_is_sha256() {
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        let expected = smartpos_types::hex::decode(
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        )
        .unwrap();
        assert_eq!(certificate_sha256(b"abc").to_vec(), expected);
    }

    #[test]
    fn bad_tls_configs_are_rejected_before_connecting() {
        let no_ca = TlsClientConfig::new(b"garbage".to_vec(), "localhost");
        assert!(matches!(tls_connector(&no_ca), Err(LinkError::Tls(_))));
        assert!(matches!(
            leaf_pin_from_pem(b"nothing"),
            Err(LinkError::Tls(_))
        ));
    }

    #[test]
    fn handshake_error_maps_pin_failures() {
        let pin = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure),
        );
        assert_eq!(handshake_error(pin), LinkError::PinMismatch);
        let other = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(matches!(handshake_error(other), LinkError::Tls(_)));
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(matches!(handshake_error(eof), LinkError::Tls(_)));
    }
}
