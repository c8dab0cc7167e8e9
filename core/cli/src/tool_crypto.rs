//! `smartpos tool` commands: crypto (being written).

use crate::tool::ToolResult;
use clap::Subcommand;

/// crypto tool commands.
#[derive(Subcommand)]
pub enum CryptoCmd {}

/// Runs a crypto tool command.
pub fn run(cmd: CryptoCmd) -> ToolResult {
    match cmd {}
}
