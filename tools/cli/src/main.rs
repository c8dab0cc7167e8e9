//! The `smartpos` command.
//!
//! - `host_cmd.rs`: `smartpos host` (acquirer simulator over TCP/TLS) and `host-ledger`.
//! - `terminal_cmd.rs`: `smartpos terminal --data DIR ...`, one process per command;
//!   `params_cmd.rs`: its `params download|show|set` (EMV parameters in the journal).
//! - `demo.rs`: `smartpos demo`, a full session against the in-process simulator.
//! - `tool.rs`: the `smartpos tool` calculator shared error type and dispatch;
//!   `tool_crypto.rs` (kcv, DUKPT, PIN blocks, MACs, EMV ARQC), `tool_iso8583.rs`
//!   (decode/encode messages), `tool_tlv.rs` (BER-TLV trees).
//!
//! Every tool prints one JSON document on stdout (hex in upper case). Bad input prints one line on
//! stderr and exits with code 2.

mod demo;
mod host_cmd;
mod params_cmd;
mod terminal_cmd;
mod tool;
mod tool_crypto;
mod tool_iso8583;
mod tool_tlv;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// SmartPOS SDK command line.
#[derive(Parser)]
#[command(
    name = "smartpos",
    version,
    about = "SmartPOS SDK: payment tools, host simulator, terminal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Payment engineer's calculator: keys, PIN blocks, MACs, DUKPT, ARQC, ISO 8583, TLV.
    #[command(subcommand)]
    Tool(tool::ToolCmd),
    /// Acquirer host simulator (TCP or TLS), with fault injection. Prints `listening on ADDR`.
    Host(host_cmd::HostArgs),
    /// Prints a host ledger file as JSON.
    HostLedger(host_cmd::LedgerArgs),
    /// Terminal commands on a data directory (init, signin, sale, void, refund, ...).
    Terminal(terminal_cmd::TerminalArgs),
    /// A full terminal session against the in-process host simulator.
    Demo(demo::DemoArgs),
}

/// A single-threaded tokio runtime: one terminal does one thing at a time.
pub fn runtime() -> Result<tokio::runtime::Runtime, tool::ToolError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tool::ToolError(format!("cannot start the async runtime: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tool(cmd) => tool::main(cmd),
        Command::Host(args) => {
            tool::report(host_cmd::run_host(args).map(|()| serde_json::Value::Null))
        }
        Command::HostLedger(args) => tool::report(host_cmd::run_ledger(args)),
        Command::Terminal(args) => tool::report_cmd(terminal_cmd::run(args)),
        Command::Demo(args) => tool::report(demo::run(args).map(|()| serde_json::Value::Null)),
    }
}
