//! `smartpos-bench`: runs one harness and prints its report as one JSON line on stdout.
//!
//! ```text
//! smartpos-bench sale    [--sales 300] [--warmup 30] [--dir PATH]
//! smartpos-bench journal [--sizes 1000,100000,1000000] [--sales 50] [--opens 5] [--dir PATH]
//! smartpos-bench host    [--terminals 100] [--seconds 5] [--warmup 1]
//! ```
//! Errors go to stderr with exit code 2.

use smartpos_bench::journal::JournalBench;
use smartpos_bench::sale::SaleBench;
use smartpos_bench::throughput::HostBench;
use std::path::PathBuf;

/// Parses `--name value` pairs after the subcommand.
fn options(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let Some(name) = name.strip_prefix("--") else {
            return Err(format!("unexpected argument {name:?}"));
        };
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.push((name.to_owned(), value.clone()));
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("--{name}: not a number: {v:?}"))
}

async fn run(args: &[String]) -> Result<serde_json::Value, String> {
    let (cmd, rest) = args
        .split_first()
        .ok_or("usage: smartpos-bench sale|journal|host [--option value]...")?;
    let opts = options(rest)?;
    match cmd.as_str() {
        "sale" => {
            let mut c = SaleBench::default();
            for (k, v) in &opts {
                match k.as_str() {
                    "sales" => c.sales = number(k, v)?,
                    "warmup" => c.warmup = number(k, v)?,
                    "dir" => c.dir = Some(PathBuf::from(v)),
                    _ => return Err(format!("sale: unknown option --{k}")),
                }
            }
            smartpos_bench::sale::run(&c)
                .await
                .map_err(|e| e.to_string())
        }
        "journal" => {
            let mut c = JournalBench::default();
            for (k, v) in &opts {
                match k.as_str() {
                    "sizes" => {
                        c.sizes = v
                            .split(',')
                            .map(|s| number(k, s.trim()))
                            .collect::<Result<_, _>>()?;
                    }
                    "sales" => c.sales = number(k, v)?,
                    "opens" => c.opens = number(k, v)?,
                    "dir" => c.dir = Some(PathBuf::from(v)),
                    _ => return Err(format!("journal: unknown option --{k}")),
                }
            }
            smartpos_bench::journal::run(&c)
                .await
                .map_err(|e| e.to_string())
        }
        "host" => {
            let mut c = HostBench::default();
            for (k, v) in &opts {
                match k.as_str() {
                    "terminals" => c.terminals = number(k, v)?,
                    "seconds" => c.seconds = number(k, v)?,
                    "warmup" => c.warmup_seconds = number(k, v)?,
                    _ => return Err(format!("host: unknown option --{k}")),
                }
            }
            smartpos_bench::throughput::run(&c)
                .await
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown harness {other:?}: sale, journal or host")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smartpos-bench: no runtime: {e}");
            std::process::exit(2);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("smartpos-bench: {e}");
            std::process::exit(2);
        }
    }
}
