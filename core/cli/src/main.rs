//! The `smartpos` command.
//!
//! - `tool.rs`: the `smartpos tool` calculator shared error type and dispatch;
//!   `tool_crypto.rs` (kcv, DUKPT, PIN blocks, MACs, EMV ARQC), `tool_iso8583.rs`
//!   (decode/encode messages), `tool_tlv.rs` (BER-TLV trees).
//!
//! Every tool prints one JSON document on stdout (hex in upper case). Bad input prints one line on
//! stderr and exits with code 2.

mod tool;
mod tool_crypto;
mod tool_iso8583;
mod tool_tlv;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// SmartPOS SDK command line.
#[derive(Parser)]
#[command(name = "smartpos", version, about = "SmartPOS SDK: payment tools, host simulator, terminal")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Payment engineer's calculator: keys, PIN blocks, MACs, DUKPT, ARQC, ISO 8583, TLV.
    #[command(subcommand)]
    Tool(tool::ToolCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tool(cmd) => tool::main(cmd),
    }
}
