//! Crash harness: a real terminal process (`crash_child`) is SIGKILLed at every durability
//! point of each money-moving flow; after a restart, recovery and an app retry with the same
//! idempotency key, the journal and the host ledger must reconcile: 0 lost, 0 doubled.

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, HostStatus};
use smartpos_sim::fault::FaultPlan;
use smartpos_sim::net::{ConnInfo, FrameHandler, Server, ServerConfig, ServerHandle};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::journal::{Journal, JournalKey};
use smartpos_tests::{TID, temp_dir, test_tmk};
use smartpos_txn::model::TxnState;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const POINTS: [&str; 5] = [
    "before_commit",
    "after_commit",
    "before_send",
    "after_send",
    "received",
];

struct Host {
    acquirer: Arc<Acquirer>,
    mute: AtomicBool,
}

impl FrameHandler for Host {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let a = self.acquirer.handle_request(conn.faults, request);
        if self.mute.load(Ordering::SeqCst) {
            Vec::new()
        } else {
            a.into_iter().collect()
        }
    }
}

enum Run {
    Killed,
    Done(String),
}

fn child(journal: &Path, port: u16, crash: Option<(&str, u32)>, cmd: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crash_child"));
    c.arg(journal).arg(port.to_string());
    if let Some((p, n)) = crash {
        c.arg("--crash-at").arg(format!("{p}:{n}"));
    }
    c.args(cmd).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut proc = c.spawn().expect("spawn crash_child");
    let out = proc.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with("AT ") {
            proc.kill().expect("SIGKILL");
            let _ = proc.wait();
            return Run::Killed;
        }
        if let Some(r) = line.strip_prefix("RESULT ") {
            let _ = proc.wait();
            return Run::Done(r.to_owned());
        }
    }
    let _ = proc.wait();
    Run::Done("no output".into())
}

fn reference(result: &str) -> String {
    result
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[derive(Clone, Copy, Debug)]
enum Flow {
    Sale,
    Void,
    Refund,
    PreAuth,
    Completion,
    Settle,
    Recovery,
}

/// Runs one flow with a crash at the n-th hit of `point`. Returns whether the point was reached
/// (false: the flow completed before the n-th hit, so higher n need not be tried).
async fn scenario(flow: Flow, point: &'static str, n: u32) -> bool {
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let host = Arc::new(Host {
        acquirer: acquirer.clone(),
        mute: AtomicBool::new(false),
    });
    let server: ServerHandle = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            tls: None,
            faults: FaultPlan::none(),
            seed: 1,
        },
        host.clone(),
    )
    .await
    .unwrap()
    .spawn();
    let port = server.local_addr().port();
    let dir = temp_dir("crash");
    let j = dir.join("journal.db");
    let jp = j.clone();
    let (reached, retry): (bool, Vec<String>) = tokio::task::spawn_blocking(move || {
        let run = |crash: Option<(&str, u32)>, cmd: &[&str]| child(&jp, port, crash, cmd);
        assert!(matches!(run(None, &["signin"]), Run::Done(r) if r.starts_with("signed_in")));
        let mut setup_ref = String::new();
        match flow {
            Flow::Void | Flow::Refund | Flow::Settle => {
                if let Run::Done(r) = run(None, &["sale", "8000", "setup-sale"]) {
                    setup_ref = reference(&r);
                }
            }
            Flow::Completion => {
                if let Run::Done(r) = run(None, &["preauth", "6000", "setup-pa"]) {
                    setup_ref = reference(&r);
                }
            }
            Flow::Recovery => {
                host.mute.store(true, Ordering::SeqCst);
                let _ = run(None, &["sale", "3300", "muted"]);
                host.mute.store(false, Ordering::SeqCst);
            }
            _ => {}
        }
        let cmd: Vec<String> = match flow {
            Flow::Sale => vec!["sale".into(), "4200".into(), "k-sale".into()],
            Flow::PreAuth => vec!["preauth".into(), "4300".into(), "k-pa".into()],
            Flow::Void => vec!["void".into(), setup_ref.clone(), "k-void".into()],
            Flow::Refund => vec![
                "refund".into(),
                setup_ref.clone(),
                "2500".into(),
                "k-refund".into(),
            ],
            Flow::Completion => vec![
                "complete".into(),
                setup_ref.clone(),
                "5000".into(),
                "k-comp".into(),
            ],
            Flow::Settle => vec!["settle".into()],
            Flow::Recovery => vec!["recover".into()],
        };
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reached = matches!(run(Some((point, n)), &args), Run::Killed);
        // Restart: recovery, then the app retries the same command with the same key.
        let _ = run(None, &["recover"]);
        let _ = run(None, &args);
        let _ = run(None, &["recover"]);
        (reached, cmd)
    })
    .await
    .unwrap();
    let journal = Journal::open(&j, &JournalKey::new([5; 32])).unwrap();
    let records = journal.all().unwrap();
    let ledger = acquirer.ledger();
    let diffs = reconcile(&records, &ledger, TID, false);
    assert!(
        diffs.is_empty(),
        "{flow:?} killed at {point}:{n}: {diffs:?}"
    );
    assert!(
        journal.pending().unwrap().is_empty(),
        "{flow:?} {point}:{n}: pending left after recovery"
    );
    assert!(
        records
            .iter()
            .all(|r| !matches!(r.state, TxnState::Reversing | TxnState::Sending)),
        "{flow:?} {point}:{n}: in doubt after recovery"
    );
    // Nothing doubled: at most one approval at the host per idempotent command.
    let amount: Option<u64> = match flow {
        Flow::Sale => Some(4200),
        Flow::PreAuth => Some(4300),
        Flow::Refund => Some(2500),
        Flow::Completion => Some(5000),
        _ => None,
    };
    if let Some(a) = amount {
        let approvals = ledger
            .transactions
            .iter()
            .filter(|t| t.amount == a && t.status == HostStatus::Approved)
            .count();
        assert!(
            approvals <= 1,
            "{flow:?} {point}:{n}: {approvals} approvals for {retry:?}"
        );
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
    reached
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_durability_point_reconciles() {
    let flows = [
        Flow::Sale,
        Flow::Void,
        Flow::Refund,
        Flow::PreAuth,
        Flow::Completion,
        Flow::Settle,
        Flow::Recovery,
    ];
    let mut table = Vec::new();
    for flow in flows {
        let mut row = Vec::new();
        for point in POINTS {
            let mut kills = 0;
            for n in 1..=8 {
                if scenario(flow, point, n).await {
                    kills += 1;
                } else {
                    break;
                }
            }
            row.push(kills);
        }
        table.push((flow, row));
    }
    println!("crash matrix (kills that reconciled, by flow and point):");
    println!(
        "{:<12} {}",
        "flow",
        POINTS.map(|p| format!("{p:>14}")).join("")
    );
    for (flow, row) in &table {
        println!(
            "{:<12} {}",
            format!("{flow:?}"),
            row.iter().map(|k| format!("{k:>14}")).collect::<String>()
        );
    }
    // Every flow writes, sends and receives at least once: every point must have been hit.
    for (flow, row) in &table {
        for (i, k) in row.iter().enumerate() {
            assert!(*k > 0, "{flow:?} never reached {}", POINTS[i]);
        }
    }
}
