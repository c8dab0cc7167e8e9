//! Crash harness: a real terminal process (`crash_child`) is SIGKILLed at every durability
//! point of each money-moving flow; after a restart, recovery and an app retry with the same
//! idempotency key, the journal and the host ledger must reconcile: 0 lost, 0 doubled.

use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, HostStatus, SettlementAnswer};
use smartpos_sim::net::{Server, ServerConfig, ServerHandle};
use smartpos_sim::reconcile::reconcile;
use smartpos_terminal::journal::{Journal, JournalKey};
use smartpos_tests::{MutableHost, TID, temp_dir, test_tmk};
use smartpos_txn::model::TxnState;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

const POINTS: [&str; 5] = [
    "before_commit",
    "after_commit",
    "before_send",
    "after_send",
    "received",
];

enum Run {
    Killed,
    Done(String),
}

fn child(journal: &Path, port: u16, crash: Option<(&str, u32)>, cmd: &[&str]) -> Run {
    child_with(journal, port, crash, &[], cmd)
}

/// [`child`] with options after `--crash-at` (`--dukpt STORE_DIR`).
fn child_with(
    journal: &Path,
    port: u16,
    crash: Option<(&str, u32)>,
    options: &[&str],
    cmd: &[&str],
) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crash_child"));
    c.arg(journal).arg(port.to_string());
    if let Some((p, n)) = crash {
        c.arg("--crash-at").arg(format!("{p}:{n}"));
    }
    c.args(options);
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
    /// Settlement against a host that answers 95: totals, batch upload, end of batch.
    Settle95,
    Recovery,
    /// A contact chip sale through the certified kernel: the card decides after the host.
    ChipSale,
    /// The same, with a card that declines after the host approved (reversed, 96).
    ChipDecline,
}

/// Every flow of the matrix and of the randomised repetitions.
const FLOWS: [Flow; 10] = [
    Flow::Sale,
    Flow::Void,
    Flow::Refund,
    Flow::PreAuth,
    Flow::Completion,
    Flow::Settle,
    Flow::Settle95,
    Flow::Recovery,
    Flow::ChipSale,
    Flow::ChipDecline,
];

/// Amounts of a scenario: the setup transaction (sale or pre-auth that the flow refers to)
/// and the flow's own amount (below the setup's, so refunds and completions are allowed).
/// Both end in `00`, which the simulator always approves.
#[derive(Clone, Copy, Debug)]
struct Amounts {
    setup: u64,
    main: u64,
}

/// The fixed amounts of the matrix.
fn fixed_amounts(flow: Flow) -> Amounts {
    let main = match flow {
        Flow::Sale => 4200,
        Flow::PreAuth => 4300,
        Flow::Refund => 2500,
        Flow::Completion => 5000,
        _ => 4200,
    };
    let setup = if matches!(flow, Flow::Completion) {
        6000
    } else {
        8000
    };
    Amounts { setup, main }
}

/// Runs one flow with a crash at the n-th hit of `point`. Returns whether the point was reached
/// (false: the flow completed before the n-th hit, so higher n need not be tried).
async fn scenario(flow: Flow, point: &'static str, n: u32) -> bool {
    scenario_with(flow, point, n, fixed_amounts(flow)).await
}

async fn scenario_with(flow: Flow, point: &'static str, n: u32, amounts: Amounts) -> bool {
    let setup_amount = amounts.setup.to_string();
    let main_amount = amounts.main.to_string();
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: test_tmk(),
            ledger_file: None,
        })
        .unwrap(),
    );
    let host = Arc::new(MutableHost::new(acquirer.clone()));
    let server: ServerHandle = Server::bind(ServerConfig::default(), host.clone())
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
            Flow::Void | Flow::Refund | Flow::Settle | Flow::Settle95 => {
                if let Run::Done(r) = run(None, &["sale", &setup_amount, "setup-sale"]) {
                    setup_ref = reference(&r);
                }
            }
            Flow::Completion => {
                if let Run::Done(r) = run(None, &["preauth", &setup_amount, "setup-pa"]) {
                    setup_ref = reference(&r);
                }
            }
            Flow::Recovery => {
                host.set_mute(true);
                let _ = run(None, &["sale", "3300", "muted"]);
                host.set_mute(false);
            }
            _ => {}
        }
        let cmd: Vec<String> = match flow {
            Flow::Sale => vec!["sale".into(), main_amount.clone(), "k-sale".into()],
            Flow::PreAuth => vec!["preauth".into(), main_amount.clone(), "k-pa".into()],
            Flow::Void => vec!["void".into(), setup_ref.clone(), "k-void".into()],
            Flow::Refund => vec![
                "refund".into(),
                setup_ref.clone(),
                main_amount.clone(),
                "k-refund".into(),
            ],
            Flow::Completion => vec![
                "complete".into(),
                setup_ref.clone(),
                main_amount.clone(),
                "k-comp".into(),
            ],
            Flow::Settle => vec!["settle".into()],
            Flow::Settle95 => {
                host.acquirer
                    .set_settlement_answer(SettlementAnswer::Always95);
                vec!["settle".into()]
            }
            Flow::Recovery => vec!["recover".into()],
            Flow::ChipSale => vec!["chip-sale".into(), main_amount.clone(), "k-chip".into()],
            Flow::ChipDecline => vec![
                "chip-sale".into(),
                main_amount.clone(),
                "k-chip-aac".into(),
                "decline".into(),
            ],
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
    // The chain head is written in each commit's transaction: a kill anywhere leaves rows and
    // head that agree (issue 19 item 3).
    assert_eq!(
        journal.tampered(),
        None,
        "journal check failed after a kill"
    );
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
        Flow::Sale
        | Flow::PreAuth
        | Flow::Refund
        | Flow::Completion
        | Flow::ChipSale
        | Flow::ChipDecline => Some(amounts.main),
        _ => None,
    };
    if matches!(flow, Flow::Settle95) {
        // The batch was uploaded and closed: the setup sale is among the uploaded records
        // (once: the host keeps a record sent again by a resumed settlement once).
        let uploaded = ledger
            .uploads
            .iter()
            .filter(|u| u.known && u.amount == amounts.setup)
            .count();
        assert_eq!(uploaded, 1, "{flow:?} {point}:{n}: {:?}", ledger.uploads);
    }
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
    let flows = FLOWS;
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
    print_table(
        "crash matrix (kills that reconciled, by flow and point):",
        &table,
    );
    // Every flow writes, sends and receives at least once: every point must have been hit.
    for (flow, row) in &table {
        for (i, k) in row.iter().enumerate() {
            assert!(*k > 0, "{flow:?} never reached {}", POINTS[i]);
        }
    }
}

/// Prints kills by flow (rows) and durability point (columns).
fn print_table(title: &str, table: &[(Flow, Vec<u32>)]) {
    println!("{title}");
    println!(
        "{:<12} {}",
        "flow",
        POINTS.map(|p| format!("{p:>14}")).join("")
    );
    for (flow, row) in table {
        println!(
            "{:<12} {}",
            format!("{flow:?}"),
            row.iter().map(|k| format!("{k:>14}")).collect::<String>()
        );
    }
}

/// SplitMix64 step (Steele, Lea, Flood, OOPSLA 2014), for the randomised repetitions.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Randomised repetitions: random flows in random order, random durability points and hit
/// numbers, random amounts. `SMARTPOS_CRASH_SEED` picks the seed (printed), and
/// `SMARTPOS_CRASH_REPS` the number of repetitions (default 12, about 8 s; the full matrix
/// above already covers every point, so CI keeps this short and longer runs go through the
/// variable).
///
/// `SMARTPOS_CRASH_PER_POINT=N` replaces the random choice of cell with every flow × point
/// cell N times (random hit 1 or 2, random amounts; a repetition whose hit the flow never
/// reaches is run again at hit 1, so every repetition is a kill), prints the table and asserts
/// N kills per cell. `SMARTPOS_CRASH_PER_POINT=20` is the run quoted in docs/RELIABILITY.md
/// (35 cells, 700 kills, about 20 minutes on 2 cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_random_points_with_random_amounts_reconciles() {
    let seed: u64 = std::env::var("SMARTPOS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_C0DE);
    let reps: u32 = std::env::var("SMARTPOS_CRASH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    println!("crash repetitions: seed {seed} (SMARTPOS_CRASH_SEED), {reps} repetitions");
    let flows = FLOWS;
    let per_point: u32 = std::env::var("SMARTPOS_CRASH_PER_POINT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut rng = seed;
    let mut pick = |n: u64| usize::try_from(next(&mut rng) % n).unwrap_or(0);
    if per_point > 0 {
        println!("crash repetitions: {per_point} per flow and point");
        let mut table = Vec::new();
        for flow in flows {
            let mut row = Vec::new();
            for point in POINTS {
                let mut kills = 0u32;
                for _ in 0..per_point {
                    let setup = 100 * (60 + pick(40) as u64);
                    let main = 100 * (10 + pick(setup / 100 - 11) as u64);
                    let n = 1 + pick(2) as u32;
                    let amounts = Amounts { setup, main };
                    let reached = scenario_with(flow, point, n, amounts).await
                        || (n > 1 && scenario_with(flow, point, 1, amounts).await);
                    kills += u32::from(reached);
                }
                row.push(kills);
            }
            println!("  {flow:?}: {row:?}");
            table.push((flow, row));
        }
        print_table(
            &format!("crash repetitions per point (kills that reconciled, seed {seed}):"),
            &table,
        );
        for (flow, row) in &table {
            for (i, k) in row.iter().enumerate() {
                assert_eq!(*k, per_point, "{flow:?} at {}: {k} kills", POINTS[i]);
            }
        }
        return;
    }
    let (mut killed, mut completed) = (0u32, 0u32);
    for _ in 0..reps {
        let flow = flows[pick(flows.len() as u64)];
        let point = POINTS[pick(POINTS.len() as u64)];
        let n = 1 + pick(2) as u32;
        let setup = 100 * (60 + pick(40) as u64);
        let main = 100 * (10 + pick(setup / 100 - 11) as u64);
        let amounts = Amounts { setup, main };
        println!("  {flow:?} at {point}:{n} with {amounts:?}");
        // scenario_with asserts reconciliation whether or not the kill point was reached.
        if scenario_with(flow, point, n, amounts).await {
            killed += 1;
        } else {
            completed += 1;
        }
    }
    println!("crash repetitions: {killed} killed and reconciled, {completed} ran to completion");
    assert!(
        reps == 0 || killed > 0,
        "no repetition reached its kill point"
    );
}

/// TDES DUKPT (`profiles/dukpt-tdes.toml`): the terminal is killed right after a KSN was
/// reserved (point `ksn_reserved`: the advanced counter durable in the secure store, the KSN
/// not yet handed out) and right after a request went out; after restarts, recovery and the
/// app's retries, the host never saw a KSN twice, the KSN reserved at the first kill never
/// reached it, and journal and ledger reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dukpt_ksn_reserved_before_a_crash_is_never_reused() {
    let profile =
        smartpos_txn::proto::Profile::from_toml(include_str!("../../profiles/dukpt-tdes.toml"))
            .unwrap();
    let acquirer = Arc::new(
        Acquirer::with_profile(
            AcquirerConfig {
                dialect: "iso87b".into(),
                tmk: test_tmk(),
                ledger_file: None,
            },
            profile,
        )
        .unwrap(),
    );
    let host = Arc::new(MutableHost::new(acquirer.clone()));
    let server: ServerHandle = Server::bind(ServerConfig::default(), host.clone())
        .await
        .unwrap()
        .spawn();
    let port = server.local_addr().port();
    let dir = temp_dir("crash-dukpt");
    let j = dir.join("journal.db");
    let jp = j.clone();
    let store = dir.join("secrets").display().to_string();
    let results = tokio::task::spawn_blocking(move || {
        let opts = ["--dukpt", store.as_str()];
        let run =
            |crash: Option<(&str, u32)>, cmd: &[&str]| child_with(&jp, port, crash, &opts, cmd);
        assert!(matches!(run(None, &["signin"]), Run::Done(r) if r.starts_with("signed_in")));
        // Killed once the sale's KSN is reserved: nothing was journaled or sent.
        let first = run(Some(("ksn_reserved", 1)), &["sale", "4200", "k-dukpt-1"]);
        let retry = run(None, &["sale", "4200", "k-dukpt-1"]);
        // Killed once the request went out: recovery reverses it under a KSN of its own.
        let second = run(Some(("after_send", 1)), &["sale", "5200", "k-dukpt-2"]);
        let _ = run(None, &["recover"]);
        let again = run(None, &["sale", "5200", "k-dukpt-2"]);
        let _ = run(None, &["recover"]);
        (first, retry, second, again)
    })
    .await
    .unwrap();
    assert!(
        matches!(results.0, Run::Killed),
        "ksn_reserved was not reached"
    );
    assert!(
        matches!(&results.1, Run::Done(r) if r.ends_with("approved")),
        "retry not approved"
    );
    assert!(
        matches!(results.2, Run::Killed),
        "after_send was not reached"
    );
    let seen = acquirer.dukpt_ksns_seen();
    let counters: Vec<u32> = seen
        .iter()
        .map(|k| {
            let n = k.len();
            (u32::from(k[n - 3]) << 16 | u32::from(k[n - 2]) << 8 | u32::from(k[n - 1])) & 0x1F_FFFF
        })
        .collect();
    let mut unique = counters.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        counters.len(),
        "a KSN reached the host twice: {counters:?}"
    );
    assert!(
        !counters.contains(&1),
        "the KSN reserved at the kill went out: {counters:?}"
    );
    assert_eq!(counters.first(), Some(&2), "{counters:?}");
    assert!(
        counters.len() >= 3,
        "sale, sale, reversal at least: {counters:?}"
    );
    let journal = Journal::open(&j, &JournalKey::new([5; 32])).unwrap();
    // The chain head is written in each commit's transaction: a kill anywhere leaves rows and
    // head that agree (issue 19 item 3).
    assert_eq!(
        journal.tampered(),
        None,
        "journal check failed after a kill"
    );
    let records = journal.all().unwrap();
    let diffs = reconcile(&records, &acquirer.ledger(), TID, false);
    assert!(diffs.is_empty(), "{diffs:?}");
    assert!(
        journal.pending().unwrap().is_empty(),
        "pending left after recovery"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
