//! Performance harnesses for the SmartPOS SDK (issue 10). These are measurements, never tests:
//! nothing here asserts a time. `scripts/bench.sh` runs the `smartpos-bench` binary and puts its
//! JSON lines into one table next to the criterion results.
//!
//! Files:
//! - `sale.rs`: item 2, SDK overhead per contactless sale (real [`smartpos_terminal::Terminal`],
//!   SQLite journal on disk, loopback host) against the physical floor measured in the same run
//!   (one loopback round trip of the same frame sizes + two `synchronous=FULL` WAL commits), and
//!   the card-in-field time the SDK adds between APDUs.
//! - `journal.rs`: item 4, journal scaling: open time and per-sale cost with 10^3..10^6 rows.
//! - `throughput.rs`: item 5, host simulator throughput with many concurrent light terminals
//!   (the `smartpos-txn` engine on a real host link, no journal).
//! - `setup.rs`: shared fixtures: the loopback host simulator, terminals, a timing card wrapper.
//! - `stats.rs`: medians and percentiles of samples.
//! - `error.rs`: [`BenchError`].
//! - `bin/smartpos-bench.rs`: the command line (`sale`, `journal`, `host`), one JSON line each.

pub mod error;
pub mod journal;
pub mod sale;
pub mod setup;
pub mod stats;
pub mod throughput;

pub use error::BenchError;
