//! Fixtures shared by the harnesses: the loopback host simulator, terminals on a journal file,
//! and a card wrapper that times what happens inside and between APDU exchanges.

use crate::BenchError;
use smartpos_crypto::keys::TdesKey;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, TEST_TMK_HEX};
use smartpos_sim::net::{ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle};
use smartpos_terminal::card::{ApduTransport, TransportError};
use smartpos_terminal::journal::JournalKey;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::{Terminal, TerminalConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Terminal id of the single-terminal harnesses (8 characters).
pub const TID: &str = "BENCH001";
/// Merchant id of every bench terminal (15 characters).
pub const MID: &str = "123456789012345";
/// An amount the simulated host approves (see `smartpos_sim::acquirer::decide`), below the
/// contactless CVM limit so no PIN is asked.
pub const APPROVED_AMOUNT: u64 = 1_200;

/// The simulator's published test TMK (test key only).
pub fn test_tmk() -> Result<TdesKey, BenchError> {
    let bytes =
        smartpos_types::hex::decode(TEST_TMK_HEX).map_err(|e| BenchError::setup("TMK", e))?;
    TdesKey::new(&bytes).map_err(|e| BenchError::setup("TMK", e))
}

/// The key that seals pending messages in bench journals (a fixed test value).
pub fn journal_key() -> JournalKey {
    JournalKey::new([7; 32])
}

/// The host simulator listening on a loopback port.
#[derive(Debug)]
pub struct Host {
    /// The running server; shut it down at the end of a run.
    pub server: ServerHandle,
    /// The acquirer behind it (ledger, keys).
    pub acquirer: Arc<Acquirer>,
    /// Time the acquirer spent handling requests (the host's own work, not the SDK's).
    pub work: Arc<HostWork>,
}

impl Host {
    /// The loopback address terminals connect to.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.server.local_addr().port())
    }
}

/// Total time spent inside the simulated acquirer's request handling, from a request's
/// bytes in to its answer's bytes out (parse, MAC check, ARQC check, ARPC, MAC, pack). The
/// issue's sale runs against "a loopback host that answers at once"; this is the part of the
/// sale's time that such a host would not take.
#[derive(Debug, Default)]
pub struct HostWork {
    nanos: AtomicU64,
}

impl HostWork {
    /// Time spent so far.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// The acquirer as the server's handler, timing each request.
struct TimedAcquirer {
    acquirer: Arc<Acquirer>,
    work: Arc<HostWork>,
}

impl FrameHandler for TimedAcquirer {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let start = Instant::now();
        let answers = self.acquirer.handle(conn, request);
        let took = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.work.nanos.fetch_add(took, Ordering::Relaxed);
        answers
    }
}

/// Starts the `cup` host simulator on a free loopback port, without faults or a ledger file.
pub async fn start_host() -> Result<Host, BenchError> {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk()?,
            ledger_file: None,
        })
        .map_err(|e| BenchError::setup("host", e))?,
    );
    let work = Arc::new(HostWork::default());
    let handler = Arc::new(TimedAcquirer {
        acquirer: acquirer.clone(),
        work: work.clone(),
    });
    let server = Server::bind(ServerConfig::default(), handler)
        .await
        .map_err(|e| BenchError::setup("host", e))?
        .spawn();
    Ok(Host {
        server,
        acquirer,
        work,
    })
}

/// The configuration of a bench terminal talking to `address` in the `cup` dialect.
pub fn terminal_config(tid: &str, address: &str) -> TerminalConfig {
    let mut link = LinkConfig::plain(address);
    link.response_timeout = Duration::from_secs(5);
    TerminalConfig {
        tid: tid.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: "cup".into(),
        link,
        utc_offset_minutes: 480,
    }
}

/// Opens a terminal on the journal file `path` and signs it in with `host`.
pub async fn signed_in_terminal(path: &Path, host: &Host) -> Result<Terminal, BenchError> {
    let mut t = Terminal::open(
        terminal_config(TID, &host.address()),
        path,
        test_tmk()?,
        &journal_key(),
    )
    .map_err(|e| BenchError::setup("terminal", e))?;
    t.admin()
        .sign_in("01")
        .await
        .map_err(|e| BenchError::setup("sign-in", e))?;
    Ok(t)
}

/// A fresh directory for one run under `base` (or the system temp dir), unique per process
/// and call. The caller removes it.
pub fn run_dir(base: Option<&Path>, name: &str) -> Result<PathBuf, BenchError> {
    let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!(
        "smartpos-bench-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::setup("run directory", e))?;
    Ok(dir)
}

/// What a [`TimedCard`] saw during one card session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CardTiming {
    /// APDU exchanges.
    pub apdus: u32,
    /// From the start of the first exchange to the end of the last one.
    pub in_field: Duration,
    /// Time spent inside the card's `transceive` (the card's own work, not the SDK's).
    pub in_card: Duration,
}

impl CardTiming {
    /// Card-in-field time spent in the SDK: the window minus the card's own time.
    pub fn sdk(&self) -> Duration {
        self.in_field.saturating_sub(self.in_card)
    }
}

/// Wraps a card transport and records the card-in-field window and the time spent inside the
/// card, so the SDK's share (kernel processing between APDUs) can be told apart.
#[derive(Debug)]
pub struct TimedCard<T> {
    inner: T,
    first: Option<Instant>,
    last: Option<Instant>,
    in_card: Duration,
    apdus: u32,
}

impl<T: ApduTransport> TimedCard<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> TimedCard<T> {
        TimedCard {
            inner,
            first: None,
            last: None,
            in_card: Duration::ZERO,
            apdus: 0,
        }
    }

    /// What was recorded so far.
    pub fn timing(&self) -> CardTiming {
        let in_field = match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        CardTiming {
            apdus: self.apdus,
            in_field,
            in_card: self.in_card,
        }
    }
}

impl<T: ApduTransport> ApduTransport for TimedCard<T> {
    fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let start = Instant::now();
        self.first.get_or_insert(start);
        let r = self.inner.transceive(capdu);
        let end = Instant::now();
        self.in_card += end - start;
        self.last = Some(end);
        self.apdus += 1;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl ApduTransport for Echo {
        fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            let mut r = capdu.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            Ok(r)
        }
    }

    #[test]
    fn timed_card_counts_exchanges_and_passes_answers_through() {
        let mut c = TimedCard::new(Echo);
        assert_eq!(c.timing(), CardTiming::default());
        assert_eq!(c.transceive(&[1, 2]).ok(), Some(vec![1, 2, 0x90, 0x00]));
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.transceive(&[3]).is_ok());
        let t = c.timing();
        assert_eq!(t.apdus, 2);
        assert!(t.in_field >= Duration::from_millis(2), "{t:?}");
        assert!(t.in_card <= t.in_field);
        assert!(t.sdk() >= Duration::from_millis(2));
    }

    #[test]
    fn identities_have_the_wire_lengths() {
        assert_eq!(TID.len(), 8);
        assert_eq!(MID.len(), 15);
        assert!(test_tmk().is_ok());
    }
}
