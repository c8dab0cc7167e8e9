//! `smartpos tool tlv`: BER-TLV trees and DOLs as JSON.
//!
//! - `tlv decode HEX [--unmasked]`: a JSON array with one object per top-level TLV:
//!   `{"tag","name","children":[...]}` for constructed objects and
//!   `{"tag","name","length","value"}` for primitive ones, with `"text"` for printable
//!   `an`/`ans` values and `"masked": true` when the value is hidden. Sensitive values (PAN,
//!   track data, cardholder name, ...) are masked unless `--unmasked` is given.
//! - `tlv dol HEX`: a JSON array of `{"tag","name","length"}`, one per DOL entry.
//!
//! Hex input may contain spaces (pasted from a trace); unknown tags have `"name": null`.

use crate::tool::{ToolError, ToolResult};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use smartpos_emv::dump::{Masking, render_value, text_value};
use smartpos_emv::{Tag, Tlv, TlvValue, tags};

/// tlv tool commands.
#[derive(Subcommand)]
pub enum TlvCmd {
    /// BER-TLV tools: decode trees, parse data object lists.
    #[command(subcommand)]
    Tlv(TlvSub),
}

/// `smartpos tool tlv ...` subcommands.
#[derive(Subcommand)]
pub enum TlvSub {
    /// Decodes BER-TLV hex into a JSON tree (card data masked unless --unmasked).
    Decode {
        /// The TLV bytes in hex (spaces allowed).
        hex: String,
        /// Show PAN, track data and names in clear (never use on production data).
        #[arg(long)]
        unmasked: bool,
    },
    /// Parses a DOL (PDOL 9F38, CDOL1 8C, CDOL2 8D, DDOL 9F49, TDOL 97) into its entries.
    Dol {
        /// The DOL bytes in hex (spaces allowed).
        hex: String,
    },
}

/// Runs a tlv tool command.
pub fn run(cmd: TlvCmd) -> ToolResult {
    let TlvCmd::Tlv(sub) = cmd;
    match sub {
        TlvSub::Decode { hex, unmasked } => {
            let bytes = decode_hex(&hex)?;
            let tree = smartpos_emv::parse(&bytes).map_err(|e| ToolError(format!("tlv: {e}")))?;
            let masking = if unmasked {
                Masking::Unmasked
            } else {
                Masking::Masked
            };
            Ok(Value::Array(
                tree.iter().map(|t| tlv_json(t, masking)).collect(),
            ))
        }
        TlvSub::Dol { hex } => {
            let bytes = decode_hex(&hex)?;
            let dol =
                smartpos_emv::parse_dol(&bytes).map_err(|e| ToolError(format!("dol: {e}")))?;
            Ok(Value::Array(
                dol.iter()
                    .map(
                        |e| json!({"tag": e.tag.to_string(), "name": name(e.tag), "length": e.len}),
                    )
                    .collect(),
            ))
        }
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ToolError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    smartpos_types::hex::decode(&compact).map_err(|e| ToolError(format!("hex input: {e}")))
}

fn name(tag: Tag) -> Value {
    tags::name(tag).map_or(Value::Null, |n| Value::String(n.to_owned()))
}

fn tlv_json(t: &Tlv, masking: Masking) -> Value {
    let mut obj = Map::new();
    obj.insert("tag".into(), Value::String(t.tag.to_string()));
    obj.insert("name".into(), name(t.tag));
    match &t.value {
        TlvValue::Constructed(children) => {
            let kids = children.iter().map(|c| tlv_json(c, masking)).collect();
            obj.insert("children".into(), Value::Array(kids));
        }
        TlvValue::Primitive(v) => {
            obj.insert("length".into(), json!(v.len()));
            obj.insert(
                "value".into(),
                Value::String(render_value(t.tag, v, masking)),
            );
            if masking == Masking::Masked && tags::is_sensitive(t.tag) {
                obj.insert("masked".into(), Value::Bool(true));
            }
            if let Some(text) = text_value(t.tag, v, masking) {
                obj.insert("text".into(), Value::String(text));
            }
        }
    }
    Value::Object(obj)
}
