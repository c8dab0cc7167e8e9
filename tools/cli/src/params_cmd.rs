//! `smartpos terminal --data DIR params ...`: the EMV parameters (AIDs, limits, CA public keys)
//! kept in the terminal's journal: download them from the host, show them, set them from a file.

use crate::terminal_cmd::{CmdResult, err};
use crate::tool::ToolError;
use clap::Subcommand;
use smartpos_terminal::Terminal;
use smartpos_txn::params::TerminalParams;
use smartpos_types::hex;
use std::path::PathBuf;

/// `params` subcommands.
#[derive(Subcommand, Debug)]
pub enum ParamsCmd {
    /// Downloads the EMV parameters from the host (0820/0800, 60.3 372/370/371 then
    /// 382/380/381), keeps them in the journal and prints a summary.
    Download,
    /// Prints the EMV parameters kept in the journal (an empty set when none are).
    Show,
    /// Sets the EMV parameters from a JSON file in the form `show` prints (validated: lengths,
    /// algorithms, CA key checksums).
    Set {
        /// The JSON file.
        #[arg(long)]
        file: PathBuf,
    },
}

/// What `download` and `set` print: identifiers and limits, no key material.
pub fn summary_json(p: &TerminalParams) -> serde_json::Value {
    serde_json::json!({
        "aids": p.aids.iter().map(|a| serde_json::json!({
            "aid": hex::encode(&a.aid),
            "floor_limit": a.floor_limit,
            "contactless_floor_limit": a.contactless_floor_limit,
            "contactless_txn_limit": a.contactless_txn_limit,
            "contactless_cvm_limit": a.contactless_cvm_limit,
        })).collect::<Vec<_>>(),
        "ca_keys": p.ca_keys.iter().map(|k| serde_json::json!({
            "rid": hex::encode(&k.rid),
            "index": format!("{:02X}", k.index),
            "expiry": k.expiry,
            "modulus_bits": k.modulus.len() * 8,
            "checksum": k.checksum.as_deref().map(hex::encode),
        })).collect::<Vec<_>>(),
    })
}

/// Runs one `params` subcommand on an open terminal.
pub async fn run(t: &mut Terminal, cmd: ParamsCmd) -> CmdResult {
    Ok(match cmd {
        ParamsCmd::Download => summary_json(&t.admin().download_params().await.map_err(err)?),
        ParamsCmd::Show => {
            let p = t
                .admin()
                .terminal_params()
                .map_err(err)?
                .unwrap_or_default();
            serde_json::to_value(&p).map_err(|e| ToolError(e.to_string()))?
        }
        ParamsCmd::Set { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ToolError(format!("cannot read {}: {}", file.display(), e.kind())))?;
            let p: TerminalParams = serde_json::from_str(&text)
                .map_err(|e| ToolError(format!("{}: {e}", file.display())))?;
            t.admin().set_terminal_params(p.clone()).map_err(err)?;
            summary_json(&p)
        }
    })
}
