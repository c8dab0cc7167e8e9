//! `smartpos tool iso8583`: decode and encode ISO 8583 messages of the built-in dialects or of
//! an acquirer profile (`--profile FILE`).
//!
//! JSON shape (both directions): `{"mti": "0200", "header": "HEX" (cup only),
//! "fields": {"2": "...", "52": "HEX"}}`; text fields as text, binary (`b`) fields as upper-case
//! hex. Decode masks card data (PAN, track data, expiry, PIN block, ICC data, field 62) unless
//! `--unmasked`. Errors name fields and offsets, never values.

use crate::tool::{ToolError, ToolResult};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use smartpos_iso8583::{Dialect, Message, Mti};
use smartpos_types::hex;
use std::path::PathBuf;
use std::sync::Arc;

/// iso8583 tool commands.
#[derive(Subcommand)]
pub enum Iso8583Cmd {
    /// ISO 8583 messages: decode hex to JSON, encode JSON to hex.
    #[command(subcommand)]
    Iso8583(Iso8583Sub),
}

/// `smartpos tool iso8583 ...` subcommands.
#[derive(Subcommand)]
pub enum Iso8583Sub {
    /// Decodes a packed message (hex, no length prefix) to JSON.
    Decode {
        /// Dialect: cup, iso87b or iso87a.
        #[arg(long, required_unless_present = "profile", conflicts_with = "profile")]
        dialect: Option<String>,
        /// Acquirer profile (TOML, docs/profiles.md) instead of a built-in dialect.
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
        /// The packed message in hex.
        hex: String,
        /// Show card data in clear (PAN, track data, PIN block, ICC data...).
        #[arg(long)]
        unmasked: bool,
    },
    /// Encodes a JSON message (same shape as decode prints) to hex.
    Encode {
        /// Dialect: cup, iso87b or iso87a.
        #[arg(long, required_unless_present = "profile", conflicts_with = "profile")]
        dialect: Option<String>,
        /// Acquirer profile (TOML, docs/profiles.md) instead of a built-in dialect.
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
        /// `{"mti": "0200", "header": "HEX"?, "fields": {"3": "000000", ...}}`.
        json: String,
    },
}

/// Runs a iso8583 tool command.
pub fn run(cmd: Iso8583Cmd) -> ToolResult {
    let Iso8583Cmd::Iso8583(sub) = cmd;
    match sub {
        Iso8583Sub::Decode {
            dialect,
            profile,
            hex,
            unmasked,
        } => decode(&*resolve(dialect, profile)?, &hex, unmasked),
        Iso8583Sub::Encode {
            dialect,
            profile,
            json,
        } => encode(&*resolve(dialect, profile)?, &json),
    }
}

/// The dialect of `--profile FILE`, or the built-in `--dialect NAME`.
fn resolve(dialect: Option<String>, profile: Option<PathBuf>) -> Result<Arc<Dialect>, ToolError> {
    if let Some(path) = profile {
        return Ok(crate::host_cmd::load_profile(&path)?.dialect);
    }
    let name = dialect.unwrap_or_default();
    Dialect::by_name(&name)
        .map(|d| Arc::new(d.clone()))
        .ok_or_else(|| ToolError(format!("unknown dialect {name:?} (cup, iso87b, iso87a)")))
}

fn decode(dialect: &Dialect, text: &str, unmasked: bool) -> ToolResult {
    let bytes = hex::decode(text.trim()).map_err(|e| ToolError(format!("message hex: {e}")))?;
    let msg = dialect.unpack(&bytes)?;
    let mut fields = Map::new();
    for (n, value) in msg.fields() {
        let shown = if unmasked {
            dialect.clear_value(n, value)
        } else {
            dialect.masked_value(n, value)
        };
        fields.insert(n.to_string(), Value::String(shown));
    }
    let mut out = Map::new();
    out.insert("mti".into(), json!(msg.mti.to_string()));
    if dialect.header_len() > 0 {
        out.insert("header".into(), json!(hex::encode(&msg.header)));
    }
    out.insert("fields".into(), Value::Object(fields));
    Ok(Value::Object(out))
}

fn encode(dialect: &Dialect, text: &str) -> ToolResult {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| ToolError(format!("message JSON: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| ToolError("message JSON must be an object".into()))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "mti" | "header" | "fields"))
    {
        return Err(ToolError(format!(
            "unexpected key {key:?} (mti, header, fields)"
        )));
    }
    let mti = obj
        .get("mti")
        .and_then(Value::as_str)
        .and_then(Mti::parse)
        .ok_or_else(|| ToolError("\"mti\" must be a string of 4 digits".into()))?;
    let mut msg = Message::new(mti);
    if let Some(h) = obj.get("header") {
        let h = h
            .as_str()
            .ok_or_else(|| ToolError("\"header\" must be a hex string".into()))?;
        msg.header = hex::decode(h).map_err(|e| ToolError(format!("header hex: {e}")))?;
    }
    let empty = Map::new();
    let fields = match obj.get("fields") {
        None => &empty,
        Some(f) => f
            .as_object()
            .ok_or_else(|| ToolError("\"fields\" must be an object".into()))?,
    };
    for (key, value) in fields {
        let n: u8 = key
            .parse()
            .ok()
            .filter(|n| (2..=128).contains(n))
            .ok_or_else(|| ToolError(format!("field key {key:?} is not a field number 2-128")))?;
        let s = value
            .as_str()
            .ok_or_else(|| ToolError(format!("field {n}: value must be a string")))?;
        msg.set(n, dialect.parse_value(n, s)?);
    }
    let packed = dialect.pack(&msg)?;
    Ok(json!({ "hex": hex::encode(&packed) }))
}
