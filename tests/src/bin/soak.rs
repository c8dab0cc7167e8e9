//! The fault soak as a command: `soak [N] [--seed S] [--terminals T] [--rate R]
//! [--timeout-ms MS] [--dialect D]`.
//!
//! Runs N mixed transactions (default 1000) from T terminals (default 4) against one
//! in-process host simulator that injects every fault kind at a combined rate R (default 0.2),
//! recovers every terminal against a clean server, reconciles, prints the figures, and exits
//! 1 if anything was lost, doubled or left in doubt (2 on a usage or setup error). The seed
//! comes from `--seed`, else `SMARTPOS_SOAK_SEED`, else the clock; it is printed first so a
//! failing run can be repeated.

use smartpos_tests::soak::{SoakConfig, run};
use std::time::Duration;

fn usage(msg: &str) -> ! {
    eprintln!("soak: {msg}");
    eprintln!(
        "usage: soak [N] [--seed S] [--terminals T] [--rate R] [--timeout-ms MS] [--dialect D]"
    );
    std::process::exit(2);
}

fn parse<T: std::str::FromStr>(what: &str, v: Option<String>) -> T {
    match v.as_deref().map(str::parse) {
        Some(Ok(x)) => x,
        _ => usage(&format!("bad or missing value for {what}")),
    }
}

fn main() {
    let mut cfg = SoakConfig::new(1000, 0);
    let mut seed: Option<u64> = std::env::var("SMARTPOS_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = Some(parse("--seed", args.next())),
            "--terminals" => cfg.terminals = parse("--terminals", args.next()),
            "--rate" => cfg.fault_rate = parse("--rate", args.next()),
            "--timeout-ms" => {
                cfg.response_timeout = Duration::from_millis(parse("--timeout-ms", args.next()));
            }
            "--dialect" => cfg.dialect = parse("--dialect", args.next()),
            "-h" | "--help" => usage("help"),
            n => cfg.transactions = parse("N", Some(n.to_owned())),
        }
    }
    if !(0.0..=1.0).contains(&cfg.fault_rate) {
        usage("--rate must be in [0, 1]");
    }
    cfg.seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    println!(
        "soak: {} transactions, {} terminals, fault rate {}, timeout {} ms, dialect {}, seed {} (SMARTPOS_SOAK_SEED={} to repeat)",
        cfg.transactions,
        cfg.terminals,
        cfg.fault_rate,
        cfg.response_timeout.as_millis(),
        cfg.dialect,
        cfg.seed,
        cfg.seed
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => usage(&format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(run(cfg)) {
        Ok(report) => {
            print!("{report}");
            if !report.ok() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("soak: setup failed: {e}");
            std::process::exit(2);
        }
    }
}
