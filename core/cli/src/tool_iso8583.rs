//! `smartpos tool` commands: iso8583 (being written).

use crate::tool::ToolResult;
use clap::Subcommand;

/// iso8583 tool commands.
#[derive(Subcommand)]
pub enum Iso8583Cmd {}

/// Runs a iso8583 tool command.
pub fn run(cmd: Iso8583Cmd) -> ToolResult {
    match cmd {}
}
