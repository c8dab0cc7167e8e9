//! Item 2: SDK overhead per contactless sale against the physical floor, measured in one run,
//! and a contact chip sale through the certified-kernel bridge (what the bridge adds per sale).
//!
//! The sale is the real thing: [`Terminal::transact`] through our own kernel with a simulated card that
//! answers at once, the host simulator on loopback TCP, and the SQLite journal on disk (WAL,
//! `synchronous=FULL`). The floor is what no implementation can avoid on the same machine:
//! one loopback TCP round trip with frames of the same sizes (a bare socket answering at once)
//! plus the two durable journal commits a sale needs (intent + pending reversal before sending,
//! outcome after), timed as two SQLite transactions of similar size in a separate WAL database
//! with `synchronous=FULL` in the same directory. Each iteration runs one sale and one floor
//! sample back to back, so drift and background load hit both alike; medians are reported.
//!
//! The breakdown comes from the terminal's [`Probe`] (journal commits, send/receive) and a
//! [`TimedCard`] (card-in-field window, time inside the card); what is left is the SDK's own
//! CPU work (a sale writes the journal only in the engine's two commits: the card's chip data
//! and the support trace's lines, its result line included, go with them).
//!
//! Two ratios are reported. The raw one divides the sale's wall time by the floor. The
//! simulators are not the "card that answers at once" and "host that answers at once" of the
//! issue, though: the card computes its cryptogram, and the host checks the MAC and the ARQC
//! and computes the ARPC and the answer's MAC (software DES). Both are timed from inside (time
//! in the card's `transceive`; time in the host's frame handler, [`crate::setup::HostWork`]),
//! and the second ratio takes that work out of each sale: what the sale would take with peers
//! that answer at once. Item 2's target is judged on the second ratio.

use crate::BenchError;
use crate::setup::{APPROVED_AMOUNT, Host, TimedCard, run_dir, signed_in_terminal, start_host};
use crate::stats::{Samples, round3};
use rusqlite::{Connection, params};
use smartpos_emv::certified::{
    CardDecision, CertifiedKernel, HostAnswer, KernelBridgeError, KernelCard, KernelRequest,
};
use smartpos_sim::card::{CardProfile, SimCard};
use smartpos_sim::certified::{Presentation, SimBehaviour, SimCertifiedKernel, SimScheme};
use smartpos_terminal::card::CardSource;
use smartpos_terminal::{Probe, Terminal};
use smartpos_txn::TxnIntent;
use smartpos_txn::model::TxnState;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Settings of the sale-overhead run.
#[derive(Debug, Clone)]
pub struct SaleBench {
    /// Timed sales (each with one floor sample).
    pub sales: usize,
    /// Untimed sales (and floor samples) first.
    pub warmup: usize,
    /// Directory for the journal and the floor database (default: the system temp dir). It
    /// must be on the disk whose fsync cost is of interest; it is removed afterwards.
    pub dir: Option<PathBuf>,
}

impl Default for SaleBench {
    fn default() -> Self {
        SaleBench {
            sales: 300,
            warmup: 30,
            dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    BeforeCommit,
    AfterCommit,
    BeforeSend(usize),
    Received(usize),
}

pub(crate) type ProbeLog = Arc<Mutex<Vec<(Instant, Mark)>>>;

/// Per-sale breakdown derived from the probe log.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Breakdown {
    pub(crate) commits: u32,
    /// Frames sent.
    pub(crate) frames: u32,
    pub(crate) commit_time: Duration,
    pub(crate) host_wait: Duration,
    pub(crate) request_len: usize,
    pub(crate) response_len: usize,
}

fn breakdown(log: &[(Instant, Mark)]) -> Breakdown {
    let mut b = Breakdown::default();
    let mut commit_start = None;
    let mut send_at = None;
    for (at, mark) in log {
        match *mark {
            Mark::BeforeCommit => commit_start = Some(*at),
            Mark::AfterCommit => {
                if let Some(s) = commit_start.take() {
                    b.commits += 1;
                    b.commit_time += at.saturating_duration_since(s);
                }
            }
            Mark::BeforeSend(len) => {
                b.frames += 1;
                send_at = Some(*at);
                b.request_len = len;
            }
            Mark::Received(len) => {
                if let Some(s) = send_at.take() {
                    b.host_wait += at.saturating_duration_since(s);
                }
                b.response_len = len;
            }
        }
    }
    b
}

/// A bare loopback peer that answers every 2-byte-length-prefixed frame at once with a frame
/// of a fixed size: the network part of the floor.
struct Echo {
    stream: TcpStream,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    async fn start(response_len: usize) -> Result<Echo, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::setup("floor socket", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::setup("floor socket", e))?;
        let len = u16::try_from(response_len).map_err(|e| BenchError::setup("floor frame", e))?;
        let task = tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let _ = s.set_nodelay(true);
            let mut wire = len.to_be_bytes().to_vec();
            wire.resize(2 + usize::from(len), 0x5A);
            let mut body = vec![0u8; usize::from(u16::MAX)];
            loop {
                let mut hdr = [0u8; 2];
                if s.read_exact(&mut hdr).await.is_err() {
                    return;
                }
                let n = usize::from(u16::from_be_bytes(hdr));
                let Some(buf) = body.get_mut(..n) else { return };
                if s.read_exact(buf).await.is_err() || s.write_all(&wire).await.is_err() {
                    return;
                }
            }
        });
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::setup("floor socket", e))?;
        let _ = stream.set_nodelay(true);
        Ok(Echo { stream, task })
    }

    /// One round trip: a request of `request_len` bytes out, the answer read back in full.
    async fn round_trip(&mut self, request_len: usize) -> Result<Duration, BenchError> {
        let len = u16::try_from(request_len).map_err(|e| BenchError::run("floor frame", e))?;
        let mut wire = len.to_be_bytes().to_vec();
        wire.resize(2 + request_len, 0xA5);
        let start = Instant::now();
        self.stream
            .write_all(&wire)
            .await
            .map_err(|e| BenchError::run("floor round trip", e))?;
        let mut hdr = [0u8; 2];
        self.stream
            .read_exact(&mut hdr)
            .await
            .map_err(|e| BenchError::run("floor round trip", e))?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(hdr))];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| BenchError::run("floor round trip", e))?;
        Ok(start.elapsed())
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The durable part of the floor: two SQLite transactions shaped like the journal's intent
/// commit (transaction row + sealed pending message + counters) and outcome commit (state
/// update + pending removed), WAL with `synchronous=FULL`, with prepared statements reused
/// as the journal does (SQL parsing is not part of the floor).
pub struct FsyncFloor {
    conn: Connection,
    seq: i64,
    blob: Vec<u8>,
}

impl FsyncFloor {
    /// Creates the floor database at `path`; `message_len` sizes the pending blob like a
    /// sealed request (nonce + request + tag).
    pub fn open(path: &Path, message_len: usize) -> Result<FsyncFloor, BenchError> {
        let conn = Connection::open(path).map_err(|e| BenchError::setup("floor db", e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| {
                conn.execute_batch(
                    "CREATE TABLE t (reference TEXT PRIMARY KEY, kind TEXT, state TEXT, amount INTEGER,
                        currency TEXT, stan INTEGER, batch INTEGER, local_time TEXT, local_date TEXT,
                        rrn TEXT, auth_code TEXT, response_code TEXT, pan_masked TEXT, entry_mode TEXT,
                        created_at_ms INTEGER, updated_at_ms INTEGER);
                     CREATE INDEX t_state ON t(state);
                     CREATE INDEX t_batch ON t(batch);
                     CREATE TABLE p (seq INTEGER PRIMARY KEY, reference TEXT, message BLOB);
                     CREATE TABLE c (id INTEGER PRIMARY KEY, stan INTEGER, batch INTEGER, seq INTEGER);",
                )
            })
            .map_err(|e| BenchError::setup("floor db", e))?;
        Ok(FsyncFloor {
            conn,
            seq: 0,
            blob: vec![0x3C; message_len + 28],
        })
    }

    /// Runs both commits once; returns their total time.
    pub fn two_commits(&mut self) -> Result<Duration, BenchError> {
        self.seq += 1;
        let seq = self.seq;
        let reference = format!("000001{seq:06}");
        let start = Instant::now();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| BenchError::run("floor commit", e))?;
        tx.prepare_cached(
            "INSERT INTO t VALUES (?1, 'sale', 'sending', 1200, '156', ?2, 1, '120000', '0101',
                NULL, NULL, NULL, '622202******0128', '071', ?2, ?2)",
        )
        .and_then(|mut s| s.execute(params![reference, seq]))
        .and_then(|_| {
            tx.prepare_cached("INSERT INTO p VALUES (?1, ?2, ?3)")?
                .execute(params![seq, reference, self.blob])
        })
        .and_then(|_| {
            tx.prepare_cached("INSERT OR REPLACE INTO c VALUES (1, ?1, 1, ?1)")?
                .execute(params![seq])
        })
        .map_err(|e| BenchError::run("floor commit", e))?;
        tx.commit()
            .map_err(|e| BenchError::run("floor commit", e))?;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| BenchError::run("floor commit", e))?;
        tx.prepare_cached(
            "UPDATE t SET state = 'approved', rrn = '000000100001', auth_code = '123456',
                response_code = '00', updated_at_ms = ?2 WHERE reference = ?1",
        )
        .and_then(|mut s| s.execute(params![reference, seq]))
        .and_then(|_| {
            tx.prepare_cached("DELETE FROM p WHERE seq = ?1")?
                .execute(params![seq])
        })
        .map_err(|e| BenchError::run("floor commit", e))?;
        tx.commit()
            .map_err(|e| BenchError::run("floor commit", e))?;
        Ok(start.elapsed())
    }
}

/// Runs one contactless sale with a fresh card; returns its wall time and card timing.
pub(crate) async fn one_sale(
    t: &mut Terminal,
    log: &ProbeLog,
    index: usize,
) -> Result<(Duration, crate::setup::CardTiming, Breakdown), BenchError> {
    let card = SimCard::new(CardProfile::UnionPay).map_err(|e| BenchError::setup("card", e))?;
    let mut card = TimedCard::new(card);
    let source = CardSource::OwnKernel {
        transport: &mut card,
        pin: None,
    };
    let (took, b) = timed_sale(t, log, index, source, "sale").await?;
    Ok((took, card.timing(), b))
}

/// One approved sale of [`APPROVED_AMOUNT`] with the card from `source`: its wall time and
/// the breakdown of the probe log.
async fn timed_sale(
    t: &mut Terminal,
    log: &ProbeLog,
    index: usize,
    source: CardSource<'_>,
    what: &'static str,
) -> Result<(Duration, Breakdown), BenchError> {
    if let Ok(mut l) = log.lock() {
        l.clear();
    }
    let start = Instant::now();
    let out = t
        .transact(TxnIntent::sale(APPROVED_AMOUNT), source)
        .await
        .map_err(|e| BenchError::run(what, e))?;
    let took = start.elapsed();
    if out.record.state != TxnState::Approved {
        return Err(BenchError::NotApproved {
            index,
            state: out.record.state.to_string(),
        });
    }
    let b = log.lock().map(|l| breakdown(&l)).unwrap_or_default();
    Ok((took, b))
}

/// The simulated certified kernel with the time spent inside `read` and `complete`.
struct TimedKernel {
    inner: SimCertifiedKernel,
    inside: Duration,
}

impl CertifiedKernel for TimedKernel {
    fn read(&mut self, request: &KernelRequest) -> Result<KernelCard, KernelBridgeError> {
        let start = Instant::now();
        let r = self.inner.read(request);
        self.inside += start.elapsed();
        r
    }

    fn complete(&mut self, answer: &HostAnswer) -> Result<CardDecision, KernelBridgeError> {
        let start = Instant::now();
        let r = self.inner.complete(answer);
        self.inside += start.elapsed();
        r
    }

    fn abort(&mut self) {
        self.inner.abort();
    }
}

/// One contact chip sale through the certified-kernel bridge (a UnionPay card inserted in the
/// simulated device kernel): wall time, time inside the kernel, breakdown. The previous chip
/// sale's TC upload goes out first, inside this sale, as it would at a counter.
pub(crate) async fn one_chip_sale(
    t: &mut Terminal,
    log: &ProbeLog,
    index: usize,
) -> Result<(Duration, Duration, Breakdown), BenchError> {
    let inner = SimCertifiedKernel::new(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    )
    .map_err(|e| BenchError::setup("kernel", e))?;
    let mut kernel = TimedKernel {
        inner,
        inside: Duration::ZERO,
    };
    let source = CardSource::Certified {
        kernel: &mut kernel,
        pin: None,
    };
    let (took, b) = timed_sale(t, log, index, source, "chip sale").await?;
    Ok((took, kernel.inside, b))
}

/// Registers a probe on `t` that records the time of every commit and frame.
pub(crate) fn attach_probe(t: &mut Terminal) -> ProbeLog {
    let log: ProbeLog = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    t.set_probe(move |p| {
        let mark = match p {
            Probe::BeforeCommit { .. } => Mark::BeforeCommit,
            Probe::AfterCommit { .. } => Mark::AfterCommit,
            Probe::BeforeSend(b) => Mark::BeforeSend(b.len()),
            Probe::Received(b) => Mark::Received(b.len()),
            _ => return,
        };
        if let Ok(mut l) = sink.lock() {
            l.push((Instant::now(), mark));
        }
    });
    log
}

/// Runs the sale-overhead measurement; returns the JSON report (one object).
pub async fn run(cfg: &SaleBench) -> Result<serde_json::Value, BenchError> {
    let dir = run_dir(cfg.dir.as_deref(), "sale")?;
    let result = run_in(cfg, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(cfg: &SaleBench, dir: &Path) -> Result<serde_json::Value, BenchError> {
    let host: Host = start_host().await?;
    let mut t = signed_in_terminal(&dir.join("journal.db"), &host).await?;
    let log = attach_probe(&mut t);

    // One sale first, to learn the frame sizes the floor must carry.
    let (_, _, first) = one_sale(&mut t, &log, 0).await?;
    let mut echo = Echo::start(first.response_len).await?;
    let mut fsync = FsyncFloor::open(&dir.join("floor.db"), first.request_len)?;
    for i in 0..cfg.warmup {
        one_sale(&mut t, &log, i).await?;
        echo.round_trip(first.request_len).await?;
        fsync.two_commits()?;
    }

    let mut sale = Samples::new();
    let mut in_field = Samples::new();
    let mut sdk_in_field = Samples::new();
    let mut in_card = Samples::new();
    let mut commit_time = Samples::new();
    let mut host_wait = Samples::new();
    let mut rest = Samples::new();
    let mut host_work = Samples::new();
    let mut instant_peers = Samples::new();
    let mut rtt = Samples::new();
    let mut two_fsync = Samples::new();
    let mut floor = Samples::new();
    let mut commits = 0u32;
    let mut apdus = 0u32;
    for i in 0..cfg.sales {
        let work_before = host.work.total();
        let (took, card, b) = one_sale(&mut t, &log, i).await?;
        let work = host.work.total().saturating_sub(work_before);
        let r = echo.round_trip(first.request_len).await?;
        let f = fsync.two_commits()?;
        sale.push(took);
        host_work.push(work);
        instant_peers.push(took.saturating_sub(card.in_card).saturating_sub(work));
        in_field.push(card.in_field);
        sdk_in_field.push(card.sdk());
        in_card.push(card.in_card);
        commit_time.push(b.commit_time);
        host_wait.push(b.host_wait);
        rest.push(
            took.saturating_sub(card.in_field)
                .saturating_sub(b.commit_time)
                .saturating_sub(b.host_wait),
        );
        rtt.push(r);
        two_fsync.push(f);
        floor.push(r + f);
        commits = b.commits;
        apdus = card.apdus;
    }

    // Chip sales through the certified-kernel bridge, after the contactless ones (so that
    // their TC uploads do not fall into the contactless samples). What the bridge adds per
    // sale: the chip sale minus the kernel's and the host's own work, against the contactless
    // sale minus the card's and the host's.
    let mut chip = Samples::new();
    let mut chip_kernel = Samples::new();
    let mut chip_instant_peers = Samples::new();
    let mut chip_commits = 0u32;
    let mut chip_frames = 0u32;
    for i in 0..cfg.sales + 1 {
        let work_before = host.work.total();
        let (took, inside, b) = one_chip_sale(&mut t, &log, i).await?;
        let work = host.work.total().saturating_sub(work_before);
        if i == 0 {
            // The first one has no TC upload of a previous chip sale to deliver.
            continue;
        }
        chip.push(took);
        chip_kernel.push(inside);
        chip_instant_peers.push(took.saturating_sub(inside).saturating_sub(work));
        chip_commits = b.commits;
        chip_frames = b.frames;
    }
    let bridge_adds_ms = (chip_instant_peers.median() - instant_peers.median()).max(0.0);

    // Pages each side writes to its write-ahead log: one sale, one floor sample.
    let wal_frames = serde_json::json!({
        "sale": wal_frames(&dir.join("journal.db"), || one_sale(&mut t, &log, cfg.sales)).await?,
        "floor": wal_frames(&dir.join("floor.db"), || async { fsync.two_commits() }).await?,
    });
    host.server.shutdown().await;

    let over_floor = |x: &Samples| {
        if floor.median() > 0.0 {
            x.median() / floor.median()
        } else {
            0.0
        }
    };
    let ratio = over_floor(&sale);
    let ratio_instant_peers = over_floor(&instant_peers);
    Ok(serde_json::json!({
        "bench": "sale_overhead",
        "sales": cfg.sales,
        "warmup": cfg.warmup,
        "request_bytes": first.request_len,
        "response_bytes": first.response_len,
        "sale": sale.summary(),
        "floor": floor.summary(),
        "floor_round_trip": rtt.summary(),
        "floor_two_commits": two_fsync.summary(),
        "ratio_median": round3(ratio),
        "host_work": host_work.summary(),
        "sale_instant_peers": instant_peers.summary(),
        "ratio_instant_peers_median": round3(ratio_instant_peers),
        "card_in_field": in_field.summary(),
        "card_in_field_sdk": sdk_in_field.summary(),
        "card_in_field_card": in_card.summary(),
        "apdus_per_sale": apdus,
        "engine_commits_per_sale": commits,
        "engine_commit_time": commit_time.summary(),
        "host_wait": host_wait.summary(),
        "sdk_rest": rest.summary(),
        "wal_frames": wal_frames,
        "chip_sale": chip.summary(),
        "chip_sale_kernel": chip_kernel.summary(),
        "chip_sale_instant_peers": chip_instant_peers.summary(),
        "chip_engine_commits_per_sale": chip_commits,
        "chip_frames_sent_per_sale": chip_frames,
        "bridge_adds_ms_median": round3(bridge_adds_ms),
    }))
}

/// Runs `f` once between two checkpoints of the WAL database at `path` (through a second
/// connection) and returns the number of pages (WAL frames) it wrote: the first checkpoint
/// (TRUNCATE) empties the log, the second (PASSIVE) reports its length.
async fn wal_frames<T, F, Fut>(path: &Path, f: F) -> Result<i64, BenchError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, BenchError>>,
{
    let conn = Connection::open(path).map_err(|e| BenchError::setup("WAL count", e))?;
    let checkpoint = |mode: &str| -> Result<i64, BenchError> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
            .map_err(|e| BenchError::run("WAL checkpoint", e))
    };
    checkpoint("TRUNCATE")?;
    f().await?;
    checkpoint("PASSIVE")
}
