//! Item 5: host simulator throughput with many concurrent terminals on loopback.
//!
//! The terminals are light clients: each is the real sans-IO engine of `smartpos-txn` (request
//! building, MAC under its own MAK, response matching and MAC verification) on a real
//! [`HostLink`] (one TCP connection each), but without a journal: commits are acknowledged at
//! once. That keeps the client side cheap, so on a small machine the number says more about the
//! host than about 100 SQLite journals. Each terminal signs in once (its own TID, so the host
//! holds 100 MAKs), then runs keyed sales back to back. Host and terminals share one process
//! and the machine's cores, so the figure is a lower bound for the host alone.

use crate::BenchError;
use crate::setup::{APPROVED_AMOUNT, MID, start_host, test_tmk};
use crate::stats::{Samples, round3};
use smartpos_terminal::link::{HostLink, LinkConfig};
use smartpos_txn::engine::{CardVerdict, Event, Finished, Outcome, Output, TxnRequest};
use smartpos_txn::journal::Restored;
use smartpos_txn::model::{LocalDateTime, Now, TxnKind, TxnState};
use smartpos_txn::proto::{CardData, Identity, Profile};
use smartpos_txn::{Engine, EngineConfig};
use smartpos_types::Pan;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the throughput run.
#[derive(Debug, Clone)]
pub struct HostBench {
    /// Concurrent terminals.
    pub terminals: usize,
    /// Measured window after the warm-up, in seconds.
    pub seconds: f64,
    /// Warm-up after every terminal signed in, in seconds (sales not counted).
    pub warmup_seconds: f64,
}

impl Default for HostBench {
    fn default() -> Self {
        HostBench {
            terminals: 100,
            seconds: 5.0,
            warmup_seconds: 1.0,
        }
    }
}

/// A light terminal: engine + link, no journal.
struct LightTerminal {
    engine: Engine,
    link: HostLink,
    epoch: Instant,
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl LightTerminal {
    async fn connect(index: usize, address: &str, epoch: Instant) -> Result<Self, BenchError> {
        let profile = Profile::by_name("cup").ok_or(BenchError::Setup {
            what: "profile",
            reason: "no built-in cup profile".into(),
        })?;
        let mut cfg = EngineConfig::new(
            Identity {
                tid: format!("T{index:07}"),
                mid: MID.into(),
                currency: smartpos_types::Currency::CNY,
            },
            profile,
        );
        cfg.response_timeout_ms = 10_000;
        let module = std::sync::Arc::new(smartpos_crypto::SoftwareModule::new(test_tmk()?));
        let engine = Engine::restore(cfg, module, Restored::default());
        let link = HostLink::connect(&LinkConfig::plain(address))
            .await
            .map_err(|e| BenchError::setup("terminal link", e))?;
        Ok(LightTerminal {
            engine,
            link,
            epoch,
        })
    }

    fn now(&self) -> Now {
        let unix_ms = unix_ms();
        Now {
            mono_ms: u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
            unix_ms,
            local: LocalDateTime::from_unix_ms_utc(unix_ms + 8 * 3_600_000),
        }
    }

    /// Drives the engine until the current command finishes.
    async fn drive(&mut self) -> Result<Finished, BenchError> {
        loop {
            let mut finished = None;
            while let Some(o) = self.engine.poll() {
                match o {
                    Output::Commit(c) => self.engine.commit_done(c.id),
                    Output::Transmit(bytes) => self
                        .link
                        .send(&bytes)
                        .await
                        .map_err(|e| BenchError::run("send", e))?,
                    Output::Event(Event::Finished(f)) => finished = Some(f),
                    Output::Event(_) => {}
                    // The bench's cards are contactless: none decides after the host.
                    Output::CompleteCard(_) => {
                        let now = self.now();
                        self.engine.handle_card_decision(now, CardVerdict::Failed);
                    }
                }
            }
            if let Some(f) = finished {
                return Ok(f);
            }
            let Some(deadline) = self.engine.poll_timeout() else {
                return Err(BenchError::Run {
                    what: "engine",
                    reason: "stopped without a result".into(),
                });
            };
            let wait = Duration::from_millis(deadline.saturating_sub(self.now().mono_ms));
            match self.link.recv(wait).await {
                Ok(frame) => {
                    let now = self.now();
                    self.engine.handle_host_frame(now, &frame);
                }
                Err(e) => return Err(BenchError::run("receive", e)),
            }
        }
    }

    async fn sign_in(&mut self) -> Result<(), BenchError> {
        let now = self.now();
        self.engine.start_sign_in(now, "01");
        match self.drive().await?.result {
            Ok(Outcome::SignedIn { .. }) => Ok(()),
            other => Err(BenchError::run("sign-in", format!("{other:?}"))),
        }
    }

    async fn sale(&mut self) -> Result<(), BenchError> {
        let now = self.now();
        self.engine.start_txn(
            now,
            TxnRequest {
                kind: TxnKind::Sale,
                amount: APPROVED_AMOUNT,
                card: Some(CardData {
                    pan: Pan::new("6222021234567890128").ok(),
                    expiry: Some("3012".into()),
                    entry_mode: "012".into(),
                    ..CardData::default()
                }),
                original: None,
                original_used: 0,
                idempotency_key: None,
                operator: None,
            },
        );
        match self.drive().await?.result {
            Ok(Outcome::Txn { record, .. }) if record.state == TxnState::Approved => Ok(()),
            Ok(Outcome::Txn { record, .. }) => Err(BenchError::NotApproved {
                index: 0,
                state: record.state.to_string(),
            }),
            other => Err(BenchError::run("sale", format!("{other:?}"))),
        }
    }
}

/// Runs the throughput measurement; returns the JSON report (one object).
pub async fn run(cfg: &HostBench) -> Result<serde_json::Value, BenchError> {
    let host = start_host().await?;
    let address = host.address();
    let epoch = Instant::now();
    let mut terms = Vec::with_capacity(cfg.terminals);
    for i in 0..cfg.terminals {
        let mut t = LightTerminal::connect(i, &address, epoch).await?;
        t.sign_in().await?;
        terms.push(t);
    }
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(cfg.warmup_seconds.max(0.0));
    let until = from + Duration::from_secs_f64(cfg.seconds.max(0.0));
    let barrier = Arc::new(tokio::sync::Barrier::new(cfg.terminals));
    let mut tasks = tokio::task::JoinSet::new();
    for mut t in terms {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let mut latencies = Vec::new();
            loop {
                let began = Instant::now();
                if began >= until {
                    break;
                }
                t.sale().await?;
                let done = Instant::now();
                if began >= from && done <= until {
                    latencies.push(done - began);
                }
            }
            Ok::<_, BenchError>(latencies)
        });
    }
    let mut latency = Samples::new();
    while let Some(joined) = tasks.join_next().await {
        let lat = joined.map_err(|e| BenchError::run("terminal task", e))??;
        for d in lat {
            latency.push(d);
        }
    }
    let approved_on_host = host
        .acquirer
        .ledger()
        .transactions
        .iter()
        .filter(|e| e.status == smartpos_sim::acquirer::HostStatus::Approved)
        .count();
    host.server.shutdown().await;
    let window = cfg.seconds.max(f64::MIN_POSITIVE);
    Ok(serde_json::json!({
        "bench": "host_throughput",
        "terminals": cfg.terminals,
        "window_s": cfg.seconds,
        "sales_in_window": latency.len(),
        "sales_per_second": round3(latency.len() as f64 / window),
        "sale_latency": latency.summary(),
        "approved_on_host_total": approved_on_host,
        "client": "smartpos-txn Engine + HostLink per terminal, no journal (commits acknowledged at once)",
    }))
}
