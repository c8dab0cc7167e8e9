//! `smartpos tool`: dispatch and the shared error type.

use clap::Subcommand;
use std::process::ExitCode;

/// A bad-input error of a tool command: printed as one line on stderr, exit code 2.
#[derive(Debug)]
pub struct ToolError(pub String);

impl<E: std::fmt::Display> From<E> for ToolError {
    fn from(e: E) -> Self {
        ToolError(e.to_string())
    }
}

/// What a tool command returns: a JSON document for stdout.
pub type ToolResult = Result<serde_json::Value, ToolError>;

/// How a terminal command fails: bad input (one line on stderr, exit 2), or a failure with a
/// diagnosis (`{"error": {...}}` on stdout, the message on stderr, exit 1).
#[derive(Debug)]
pub enum CmdError {
    /// Bad input.
    Input(ToolError),
    /// The command ran and failed.
    Failed {
        /// One line for stderr.
        message: String,
        /// The `{"error": ...}` document for stdout.
        error: serde_json::Value,
    },
}

impl From<ToolError> for CmdError {
    fn from(e: ToolError) -> Self {
        CmdError::Input(e)
    }
}

/// Prints a terminal command's result; see [`CmdError`].
pub fn report_cmd(result: Result<serde_json::Value, CmdError>) -> ExitCode {
    match result {
        Ok(v) => report(Ok(v)),
        Err(CmdError::Input(e)) => report(Err(e)),
        Err(CmdError::Failed { message, error }) => {
            println!("{}", serde_json::json!({ "error": error }));
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

/// All `smartpos tool` subcommands.
#[derive(Subcommand)]
pub enum ToolCmd {
    #[command(flatten)]
    Crypto(crate::tool_crypto::CryptoCmd),
    #[command(flatten)]
    Iso8583(crate::tool_iso8583::Iso8583Cmd),
    #[command(flatten)]
    Tlv(crate::tool_tlv::TlvCmd),
}

/// Runs one tool command, prints its JSON or its error, and returns the exit code.
pub fn main(cmd: ToolCmd) -> ExitCode {
    let result = match cmd {
        ToolCmd::Crypto(c) => crate::tool_crypto::run(c),
        ToolCmd::Iso8583(c) => crate::tool_iso8583::run(c),
        ToolCmd::Tlv(c) => crate::tool_tlv::run(c),
    };
    report(result)
}

/// Prints a command's JSON (nothing for `null`) or its one-line error; returns the exit code.
pub fn report(result: ToolResult) -> ExitCode {
    match result {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(ToolError(msg)) => {
            // One line, always: a newline inside a message would break scripts that read stderr.
            eprintln!("error: {}", msg.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
