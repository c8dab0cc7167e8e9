//! `smartpos tool` commands: tlv (being written).

use crate::tool::ToolResult;
use clap::Subcommand;

/// tlv tool commands.
#[derive(Subcommand)]
pub enum TlvCmd {}

/// Runs a tlv tool command.
pub fn run(cmd: TlvCmd) -> ToolResult {
    match cmd {}
}
