//! The test kit (feature `testkit`, on in the JVM build): the acquirer host simulator of
//! `smartpos-sim`, in process, so an app's JVM tests run against the real core over loopback.
//!
//! [`SimulatedKernel`] plays a smart POS's certified EMV kernel (the core's
//! `SimCertifiedKernel`) with the TEST cards inserted, tapped or swiped.
//!
//! The simulator keeps its ledger across [`HostSimulator::set_fault_plan`] restarts (same
//! port, same acquirer), so a test can make the host unreachable or mute and then heal it.

use crate::callbacks::{MemoryStore, SecureStore};
use crate::certified::{
    CardDecision, CardKernelError, CertifiedKernel, CryptogramType, HostAnswer, KernelCard,
    KernelRequest,
};
use crate::convert::TlsConfig;
use crate::error::SmartPosError;
use crate::stats;
use crate::terminal::Terminal;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, HostStatus, TEST_TMK_HEX};
use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
use smartpos_sim::fault::FaultPlan;
use smartpos_sim::net::{
    ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle, TEST_CA_PEM, test_tls_config,
};
use smartpos_terminal::api::emv::CertifiedKernel as CoreKernel;
use smartpos_terminal::api::security::TdesKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The simulator's TEST TMK (a documented test key; it stays in Rust all the same).
fn tmk_bytes() -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(smartpos_types::hex::decode(TEST_TMK_HEX).unwrap_or_default())
}

/// One line of the host's ledger.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LedgerEntry {
    /// Terminal id.
    pub tid: String,
    /// STAN of the request.
    pub stan: u32,
    /// Local date of the request (`MMDD`).
    pub date: String,
    /// `sale`, `void`, `refund`, `preauth`, `completion`, `preauth_cancel`.
    pub kind: String,
    /// Amount in minor units.
    pub amount: u64,
    /// `approved`, `declined`, `reversed` or `voided`.
    pub status: String,
    /// Response code given.
    pub response_code: String,
    /// RRN given.
    pub rrn: String,
    /// Batch number the terminal sent.
    pub batch: u32,
    /// The TC (hex) of a chip sale, from the TC upload (0320) the terminal sent after the
    /// card accepted.
    pub tc: Option<String>,
    /// Issuer script results (hex), from the terminal's script advice (0620).
    pub script_results: Option<String>,
}

/// The acquirer behind the server, with a switch that swallows the next answers (the host
/// processes the request, the answer never arrives: what a timeout looks like).
struct SimHost {
    acquirer: Arc<Acquirer>,
    drop_next: AtomicU32,
}

impl FrameHandler for SimHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let answer = self.acquirer.handle_request(conn.faults, request);
        let swallow = self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if swallow {
            return Vec::new();
        }
        answer.into_iter().collect()
    }
}

struct Running {
    server: ServerHandle,
    host: Arc<SimHost>,
    addr: SocketAddr,
    tls: bool,
}

/// The in-process host simulator: an acquirer on a loopback port (TCP or TLS with the TEST
/// certificate), with transport faults. Approves or declines by the last two digits of the
/// amount (51 insufficient funds, 05 do not honour, 54 expired, 55 wrong PIN, 96 malfunction,
/// ...; see `smartpos-sim`). Owns one runtime thread named `smartpos-sim`.
#[derive(uniffi::Object)]
pub struct HostSimulator {
    runtime: Mutex<Option<Runtime>>,
    running: Mutex<Option<Running>>,
    /// Mutual TLS: require a client certificate from the TEST terminal CA.
    client_certificates: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for HostSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSimulator").finish_non_exhaustive()
    }
}

fn plan(spec: Option<&str>) -> Result<FaultPlan, SmartPosError> {
    FaultPlan::parse(spec.unwrap_or(""))
        .map_err(|e| SmartPosError::config(format!("fault plan: {e}")))
}

fn status_name(s: HostStatus) -> &'static str {
    match s {
        HostStatus::Approved => "approved",
        HostStatus::Declined => "declined",
        HostStatus::Reversed => "reversed",
        HostStatus::Voided => "voided",
    }
}

#[uniffi::export]
impl HostSimulator {
    /// A stopped simulator.
    #[uniffi::constructor]
    pub fn new() -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smartpos-sim")
            .enable_all()
            .build()
            .map_err(|e| SmartPosError::internal(format!("cannot start the runtime: {e}")))?;
        Ok(Arc::new(HostSimulator {
            runtime: Mutex::new(Some(runtime)),
            running: Mutex::new(None),
            client_certificates: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Mutual TLS from the next `start` (or `set_fault_plan`) on: a TLS host then requires
    /// every terminal to present a client certificate issued by the TEST terminal CA
    /// (`testClientCertificatePem()` is one); without one the handshake is refused and nothing
    /// reaches the host.
    pub fn require_client_certificates(&self, required: bool) {
        stats::call();
        self.client_certificates.store(required, Ordering::SeqCst);
    }

    /// Starts the host for `dialect` (`cup`, `iso87b`) on a free loopback port, over TLS with
    /// the TEST certificate when `tls`, injecting `fault_plan` (e.g. `drop`, `delay:2s:0.5`,
    /// `close:0.1`); returns the address `127.0.0.1:port`.
    pub fn start(
        &self,
        dialect: String,
        tls: bool,
        fault_plan: Option<String>,
    ) -> Result<String, SmartPosError> {
        stats::call();
        let faults = plan(fault_plan.as_deref())?;
        let tmk = TdesKey::new(&tmk_bytes())
            .map_err(|e| SmartPosError::internal(format!("TEST TMK: {e}")))?;
        let acquirer = Acquirer::new(AcquirerConfig {
            dialect,
            tmk,
            ledger_file: None,
        })
        .map_err(SmartPosError::config)?;
        self.start_acquirer(acquirer, tls, faults)
    }

    /// Starts the host for an acquirer profile (TOML text, `docs/profiles.md`) like
    /// [`HostSimulator::start`]: a DUKPT profile is served with its scheme's TEST BDK, an SM4
    /// profile with the TEST TMK as its SM4 master key.
    pub fn start_with_profile(
        &self,
        profile_toml: String,
        tls: bool,
        fault_plan: Option<String>,
    ) -> Result<String, SmartPosError> {
        stats::call();
        let faults = plan(fault_plan.as_deref())?;
        let profile = smartpos_terminal::api::Profile::from_toml(&profile_toml)
            .map_err(|e| SmartPosError::config(format!("profile: {e}")))?;
        let tmk = TdesKey::new(&tmk_bytes())
            .map_err(|e| SmartPosError::internal(format!("TEST TMK: {e}")))?;
        let acquirer = Acquirer::with_profile(
            AcquirerConfig {
                dialect: String::new(),
                tmk,
                ledger_file: None,
            },
            profile,
        )
        .map_err(SmartPosError::config)?;
        self.start_acquirer(acquirer, tls, faults)
    }
}

impl HostSimulator {
    /// Serves `acquirer` on a free loopback port (the common end of the `start*` methods).
    fn start_acquirer(
        &self,
        acquirer: Acquirer,
        tls: bool,
        faults: FaultPlan,
    ) -> Result<String, SmartPosError> {
        let host = Arc::new(SimHost {
            acquirer: Arc::new(acquirer),
            drop_next: AtomicU32::new(0),
        });
        self.stop();
        let running = self.serve(host, "127.0.0.1:0".into(), tls, faults)?;
        let addr = running.addr.to_string();
        *self.lock_running() = Some(running);
        Ok(addr)
    }
}

#[uniffi::export]
impl HostSimulator {
    /// Restarts the server on the same port with another fault plan (`None`: no faults),
    /// keeping the ledger and the issued working keys.
    pub fn set_fault_plan(&self, fault_plan: Option<String>) -> Result<(), SmartPosError> {
        stats::call();
        let faults = plan(fault_plan.as_deref())?;
        let old = self
            .lock_running()
            .take()
            .ok_or_else(|| SmartPosError::config("the simulator is not started"))?;
        let (host, addr, tls) = (Arc::clone(&old.host), old.addr, old.tls);
        self.block_on(old.server.shutdown())?;
        let running = self.serve(host, addr.to_string(), tls, faults)?;
        *self.lock_running() = Some(running);
        Ok(())
    }

    /// Swallows the answers to the next `count` requests (the host still processes them).
    pub fn drop_next_answers(&self, count: u32) -> Result<(), SmartPosError> {
        stats::call();
        let r = self.lock_running();
        let r = r
            .as_ref()
            .ok_or_else(|| SmartPosError::config("the simulator is not started"))?;
        r.host.drop_next.store(count, Ordering::SeqCst);
        Ok(())
    }

    /// The address, while started.
    pub fn address(&self) -> Option<String> {
        stats::call();
        self.lock_running().as_ref().map(|r| r.addr.to_string())
    }

    /// TLS settings that trust the TEST certificate (server name `localhost`).
    pub fn tls_config(&self) -> TlsConfig {
        stats::call();
        TlsConfig {
            ca_pem: String::from_utf8_lossy(TEST_CA_PEM).into_owned(),
            server_name: "localhost".into(),
            pin_sha256_hex: None,
            client_certificate: None,
            client_key: None,
        }
    }

    /// Every financial request the host processed, in arrival order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        stats::call();
        let Some(acq) = self
            .lock_running()
            .as_ref()
            .map(|r| Arc::clone(&r.host.acquirer))
        else {
            return Vec::new();
        };
        acq.ledger()
            .transactions
            .into_iter()
            .map(|h| LedgerEntry {
                tid: h.tid,
                stan: h.stan,
                date: h.date,
                kind: h.kind,
                amount: h.amount,
                status: status_name(h.status).to_owned(),
                response_code: h.response_code,
                rrn: h.rrn,
                batch: h.batch,
                tc: h.tc,
                script_results: h.script_results,
            })
            .collect()
    }

    /// Compares `terminal`'s journal with the ledger: one line per difference (empty: nothing
    /// lost, nothing doubled). With `allow_in_doubt`, transactions still being reversed pass.
    pub fn reconcile(
        &self,
        terminal: Arc<Terminal>,
        allow_in_doubt: bool,
    ) -> Result<Vec<String>, SmartPosError> {
        stats::call();
        let acq = self
            .lock_running()
            .as_ref()
            .map(|r| Arc::clone(&r.host.acquirer))
            .ok_or_else(|| SmartPosError::config("the simulator is not started"))?;
        let records = terminal.core_records()?;
        Ok(smartpos_sim::reconcile::reconcile(
            &records,
            &acq.ledger(),
            terminal.tid(),
            allow_in_doubt,
        ))
    }

    /// Stops the server and closes its connections (the simulator can be started again).
    pub fn stop(&self) {
        stats::call();
        let Some(old) = self.lock_running().take() else {
            return;
        };
        if let Err(e) = self.block_on(old.server.shutdown()) {
            log::warn!("simulator stop: {e}");
        }
    }

    /// Stops the server and the simulator's thread; the object is unusable afterwards.
    pub fn shutdown(&self) {
        stats::call();
        self.stop();
        let rt = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rt) = rt {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(5));
            }
        }
    }
}

impl HostSimulator {
    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        // Only whole values are stored under this lock.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output, SmartPosError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SmartPosError::internal(
                "simulator called from an async Rust context",
            ));
        }
        let rt = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        let rt = rt.as_ref().ok_or(SmartPosError::Closed)?;
        Ok(rt.block_on(f))
    }

    fn serve(
        &self,
        host: Arc<SimHost>,
        listen: String,
        tls: bool,
        faults: FaultPlan,
    ) -> Result<Running, SmartPosError> {
        let client_ca_pem = (tls && self.client_certificates.load(Ordering::SeqCst))
            .then(|| smartpos_sim::net::TEST_CLIENT_CA_PEM.to_vec());
        let cfg = ServerConfig {
            listen,
            tls: tls.then(test_tls_config),
            faults,
            seed: 7,
            client_ca_pem,
            ..ServerConfig::default()
        };
        let handler: Arc<dyn FrameHandler> = host.clone();
        let server = self
            .block_on(async move { Server::bind(cfg, handler).await.map(Server::spawn) })?
            .map_err(|e| SmartPosError::config(e.to_string()))?;
        let addr = server.local_addr();
        Ok(Running {
            server,
            host,
            addr,
            tls,
        })
    }
}

impl Drop for HostSimulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// TEST ONLY: terminal 12345678's client certificate (PEM), issued by the CA a simulator with
/// `requireClientCertificates(true)` trusts.
#[uniffi::export]
pub fn test_client_certificate_pem() -> Vec<u8> {
    stats::call();
    smartpos_sim::net::TEST_CLIENT_CERT_PEM.to_vec()
}

/// TEST ONLY: the private key of [`test_client_certificate_pem`] (PKCS#8 PEM; it is public).
#[uniffi::export]
pub fn test_client_key_pem() -> Vec<u8> {
    stats::call();
    smartpos_sim::net::TEST_CLIENT_KEY_PEM.to_vec()
}

/// Loads the TEST DUKPT initial key and KSN of a DUKPT profile's scheme (TOML text) into
/// `store`, as `smartpos terminal init --profile` does: the key the simulator's TEST BDK
/// derives. The key itself stays in Rust; only the DUKPT registers reach the store. A test
/// device only: a production DUKPT key is injected into the PED.
#[uniffi::export]
pub fn load_test_dukpt_key(
    store: Arc<dyn SecureStore>,
    profile_toml: String,
) -> Result<(), SmartPosError> {
    stats::call();
    let profile = smartpos_terminal::api::Profile::from_toml(&profile_toml)
        .map_err(|e| SmartPosError::config(format!("profile: {e}")))?;
    let scheme = profile
        .keys
        .dukpt()
        .map(|d| d.scheme)
        .ok_or_else(|| SmartPosError::config("the profile has no DUKPT scheme"))?;
    let (key, ksn) = smartpos_sim::keys::test_initial_key(scheme);
    let hex = |h: &str| {
        smartpos_types::hex::decode(h)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| SmartPosError::internal(format!("TEST key: {e}")))
    };
    smartpos_terminal::api::store::load_initial_key(
        &crate::callbacks::StoreAdapter(store),
        scheme,
        &hex(key)?,
        &hex(ksn)?,
    )
    .map_err(|e| SmartPosError::config(e.to_string()))
}

/// A secure store in Rust memory holding the simulator's TEST TMK: the key never reaches
/// Kotlin. For tests and the demo only.
#[uniffi::export]
pub fn test_secure_store() -> Arc<dyn SecureStore> {
    stats::call();
    let store = MemoryStore::default();
    // A fresh in-memory store cannot fail to store.
    let _ = store.put("tmk".into(), tmk_bytes().to_vec());
    Arc::new(store)
}

/// The SDK's software security module for JVM tests, behind the `SecurityModule` interface:
/// the simulator's TEST TMK (in Rust memory only) as its master key, and a simulated PIN pad
/// whose digits the test "types" with [`SoftwareSecurityModule::type_pin`] (the interface takes
/// no digits from Kotlin, as a real PED takes none). Open a terminal with
/// `Terminal.openWithSecurityModule(config, dir, store, reader, module.asSecurityModule())`;
/// a Kotlin module can delegate to it, to test the app's side of the interface.
#[derive(uniffi::Object)]
pub struct SoftwareSecurityModule {
    module: Arc<crate::security::CoreModule>,
}

impl std::fmt::Debug for SoftwareSecurityModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSecurityModule")
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl SoftwareSecurityModule {
    /// A module holding the TEST TMK, no working keys yet (a sign-in loads them).
    #[uniffi::constructor]
    pub fn new() -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let tmk = TdesKey::new(&tmk_bytes())
            .map_err(|e| SmartPosError::internal(format!("TEST TMK: {e}")))?;
        Ok(Arc::new(SoftwareSecurityModule {
            module: Arc::new(crate::security::CoreModule {
                inner: Arc::new(smartpos_terminal::api::security::SoftwareModule::new(tmk)),
                pad: Default::default(),
            }),
        }))
    }

    /// The cardholder types `digits` at the next PIN prompt of the simulated pad. Throws
    /// `Rejected` (without echoing them) when they are not 4 to 12 digits.
    pub fn type_pin(&self, digits: String) -> Result<(), SmartPosError> {
        stats::call();
        let digits = zeroize::Zeroizing::new(digits);
        let pin = smartpos_terminal::api::security::Pin::new(&digits).map_err(|_| {
            SmartPosError::Rejected {
                reason: "a PIN is 4 to 12 digits".into(),
                diagnosis: None,
            }
        })?;
        self.module
            .pad
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(pin);
        Ok(())
    }

    /// The module, for `Terminal.openWithSecurityModule` or a Kotlin module to delegate to.
    pub fn as_security_module(&self) -> Arc<dyn crate::security::SecurityModule> {
        stats::call();
        self.module.clone()
    }
}

/// Which simulated card to tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SimCardProfile {
    /// A Visa-like qVSDC card.
    Visa,
    /// A Mastercard-like M/Chip card.
    Mastercard,
    /// A UnionPay-like qPBOC card.
    UnionPay,
    /// A Visa-like card that asks for an online PIN.
    Pin,
    /// A Visa-like card that leaves the field after `after_apdus` answers.
    PulledAway {
        /// Commands answered before it is gone.
        after_apdus: u32,
    },
}

/// A simulator card of `profile`.
fn sim_card(profile: SimCardProfile) -> Result<smartpos_sim::card::SimCard, SmartPosError> {
    use smartpos_sim::card::{CardProfile, SimCard};
    let p = match profile {
        SimCardProfile::Visa => CardProfile::Visa,
        SimCardProfile::Mastercard => CardProfile::Mastercard,
        SimCardProfile::UnionPay => CardProfile::UnionPay,
        SimCardProfile::Pin => CardProfile::PinRequired,
        SimCardProfile::PulledAway { after_apdus } => CardProfile::PulledAway {
            after_apdus: usize::try_from(after_apdus).unwrap_or(usize::MAX),
        },
    };
    SimCard::new(p).map_err(|e| SmartPosError::internal(format!("sim card: {e}")))
}

/// A virtual contactless card (the simulator's TEST cards, whose keys the in-process host
/// knows): a Kotlin `ApduTransport` delegates `transceive` to it to "tap a card".
#[derive(uniffi::Object)]
pub struct SimulatedCard {
    card: Mutex<smartpos_sim::card::SimCard>,
}

impl std::fmt::Debug for SimulatedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedCard").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl SimulatedCard {
    /// A fresh card of `profile`.
    #[uniffi::constructor]
    pub fn new(profile: SimCardProfile) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        Ok(Arc::new(SimulatedCard {
            card: Mutex::new(sim_card(profile)?),
        }))
    }

    /// Answers one command APDU; throws `CardTransportException.CardRemoved` once the card
    /// has left the field.
    pub fn transceive(
        &self,
        apdu: Vec<u8>,
    ) -> Result<Vec<u8>, crate::contactless::CardTransportError> {
        stats::call();
        let mut card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        card.transceive(&apdu)
            .map_err(|e| crate::contactless::CardTransportError::CardRemoved {
                reason: e.to_string(),
            })
    }

    /// The card's PAN masked to first 6 / last 4.
    pub fn pan_masked(&self) -> String {
        stats::call();
        let card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        card.pan().masked()
    }

    /// The card's application transaction counter (one per generated cryptogram).
    pub fn atc(&self) -> u16 {
        stats::call();
        let card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        card.atc()
    }
}

/// A simulated mPOS reader with a virtual card, running on its own thread behind an in-memory
/// Bluetooth link that can lose chunks. A Kotlin `ReaderLink` forwards its writes to
/// [`SimulatedReader::write`]; the reader's notifications go to the `ChunkSender` given.
#[derive(uniffi::Object)]
pub struct SimulatedReader {
    link: Mutex<Option<smartpos_sim::reader::ThreadLink>>,
    thread: Mutex<Option<smartpos_sim::reader::ReaderThread<smartpos_sim::card::SimCard>>>,
}

impl std::fmt::Debug for SimulatedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedReader").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl SimulatedReader {
    /// Starts a reader holding a card of `profile`, delivering to `notify`; each chunk in
    /// either direction is lost with probability `loss_percent` / 100 (seeded).
    #[uniffi::constructor]
    pub fn new(
        profile: SimCardProfile,
        notify: Arc<crate::reader::ChunkSender>,
        loss_percent: u8,
    ) -> Result<Arc<Self>, SmartPosError> {
        use smartpos_sim::reader::{ChannelFaults, LossyChannel, SimReader, spawn_reader};
        stats::call();
        let card = sim_card(profile)?;
        let faults = ChannelFaults {
            drop: f64::from(loss_percent.min(100)) / 100.0,
            ..ChannelFaults::default()
        };
        let sender = notify.core();
        let (link, thread) = spawn_reader(
            SimReader::new(Default::default(), card),
            LossyChannel::new(11, faults, 2),
            LossyChannel::new(12, faults, 2),
            Box::new(move |chunk: &[u8]| {
                sender.push(chunk);
            }),
        );
        Ok(Arc::new(SimulatedReader {
            link: Mutex::new(Some(link)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// A chunk the terminal wrote (what the reader's RX characteristic receives).
    pub fn write(&self, chunk: Vec<u8>) {
        stats::call();
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = link.as_ref() {
            smartpos_terminal::api::reader::ReaderLink::write(l, &chunk);
        }
    }

    /// Stops the reader thread (the link goes silent).
    pub fn stop(&self) {
        stats::call();
        self.link.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for SimulatedReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A simulated device kernel (the core's `SimCertifiedKernel`) holding one TEST card of the
/// in-process host's issuer: plays a smart POS's certified EMV kernel on a plain JVM. Give
/// [`SimulatedKernel::as_kernel`] to `saleWithKernel`, or wrap it in the app's own Kotlin
/// `CertifiedKernel` that delegates to it.
#[derive(uniffi::Object)]
pub struct SimulatedKernel {
    kernel: Mutex<SimCertifiedKernel>,
}

impl std::fmt::Debug for SimulatedKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedKernel").finish_non_exhaustive()
    }
}

fn sim_name<T: std::str::FromStr<Err = smartpos_sim::certified::UnknownName>>(
    name: &str,
) -> Result<T, SmartPosError> {
    name.trim()
        .parse()
        .map_err(|e: smartpos_sim::certified::UnknownName| SmartPosError::config(e.to_string()))
}

#[uniffi::export]
impl SimulatedKernel {
    /// A kernel with the `scheme`'s TEST card (`visa`, `mastercard`, `unionpay`) presented
    /// `via` `chip`, `tap` or `swipe`, behaving as `behaviours`: comma-separated `approve`,
    /// `decline` (AAC at the second GENERATE AC), `chip-error` (the chip does not answer; a
    /// swipe is then a fallback), `script-fail`, `pin` (online PIN without a PIN block: the
    /// SDK asks its `PinEntry`), `magstripe-only`. An unknown name is a `Config` error listing
    /// the known ones.
    #[uniffi::constructor(default(behaviours = "approve"))]
    pub fn new(
        scheme: String,
        via: String,
        behaviours: String,
    ) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let kernel = SimCertifiedKernel::new(
            sim_name::<SimScheme>(&scheme)?,
            sim_name::<Presentation>(&via)?,
            sim_name::<SimBehaviour>(&behaviours)?,
        )
        .map_err(|e| SmartPosError::internal(format!("simulated card: {e}")))?;
        Ok(Arc::new(SimulatedKernel {
            kernel: Mutex::new(kernel),
        }))
    }

    /// This kernel as the app's `CertifiedKernel`.
    pub fn as_kernel(self: Arc<Self>) -> Arc<dyn CertifiedKernel> {
        stats::call();
        self
    }

    /// The customer presents the card another way (`chip`, `tap`, `swipe`), e.g. swipes it
    /// after its chip could not be read; a read awaiting completion is dropped.
    pub fn present(&self, via: String) -> Result<(), SmartPosError> {
        stats::call();
        let via = sim_name::<Presentation>(&via)?;
        self.lock().present(via);
        Ok(())
    }

    /// How many times the SDK called `read`.
    pub fn reads(&self) -> u32 {
        stats::call();
        u32::try_from(self.lock().reads()).unwrap_or(u32::MAX)
    }

    /// How many times the SDK called `complete`.
    pub fn completions(&self) -> u32 {
        stats::call();
        u32::try_from(self.lock().completions()).unwrap_or(u32::MAX)
    }

    /// How many times the SDK called `abort`.
    pub fn aborts(&self) -> u32 {
        stats::call();
        u32::try_from(self.lock().aborts()).unwrap_or(u32::MAX)
    }

    /// The card's final decision at its last completion, if any.
    pub fn last_decision(&self) -> Option<CryptogramType> {
        stats::call();
        self.lock().last_decision().map(CryptogramType::from)
    }

    /// The card's PAN masked to first 6 / last 4.
    pub fn pan_masked(&self) -> String {
        stats::call();
        self.lock().pan().masked()
    }
}

impl SimulatedKernel {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimCertifiedKernel> {
        // The simulated kernel never panics while it is locked (its own guarantee).
        self.kernel.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CertifiedKernel for SimulatedKernel {
    fn read(&self, request: KernelRequest) -> Result<KernelCard, CardKernelError> {
        let request = smartpos_terminal::api::emv::KernelRequest::try_from(&request)?;
        let card = CoreKernel::read(&mut *self.lock(), &request)?;
        KernelCard::try_from(card)
    }

    fn complete(&self, answer: HostAnswer) -> Result<CardDecision, CardKernelError> {
        let answer = smartpos_terminal::api::emv::HostAnswer::from(&answer);
        Ok(CoreKernel::complete(&mut *self.lock(), &answer)?.into())
    }

    fn abort(&self) -> Result<(), CardKernelError> {
        CoreKernel::abort(&mut *self.lock());
        Ok(())
    }
}
