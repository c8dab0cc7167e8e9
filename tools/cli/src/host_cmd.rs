//! `smartpos host` (the acquirer host simulator) and `smartpos host-ledger`.

use crate::tool::ToolError;
use clap::Args;
use smartpos_crypto::keys::TdesKey;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig, Ledger, SettlementAnswer, TEST_TMK_HEX};
use smartpos_sim::fault::FaultPlan;
use smartpos_sim::net::{ConnLimits, Server, ServerConfig, TlsServerConfig, test_tls_config};
use smartpos_txn::proto::Profile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `smartpos host` arguments.
#[derive(Args, Debug)]
pub struct HostArgs {
    /// Address to listen on, e.g. 127.0.0.1:5000 (port 0 picks a free port).
    #[arg(long)]
    listen: String,
    /// Message dialect: cup, iso87b or iso87a.
    #[arg(long, default_value = "cup")]
    dialect: String,
    /// Acquirer profile (TOML, docs/profiles.md); replaces --dialect.
    #[arg(long, value_name = "FILE", conflicts_with = "dialect")]
    profile: Option<PathBuf>,
    /// Terminal master key shared with the terminals (hex). Defaults to the documented TEST key
    /// 0123456789ABCDEFFEDCBA9876543210.
    #[arg(long)]
    tmk: Option<String>,
    /// Base derivation key of a DUKPT profile (hex: 16 bytes for dukpt-tdes, 16/24/32 for
    /// dukpt-aes). Defaults to the scheme's documented TEST BDK (dukpt-tdes
    /// 0123456789ABCDEFFEDCBA9876543210, dukpt-aes FEDCBA9876543210F1F1F1F1F1F1F1F1).
    #[arg(long)]
    bdk: Option<String>,
    /// Serve TLS. DIR holds server.pem (certificate chain) and server.key (PKCS#8 or RSA key);
    /// the word `test` uses the built-in TEST-ONLY identity (CA in tools/sim/testdata/tls/ca.pem).
    #[arg(long, value_name = "DIR")]
    tls: Option<String>,
    /// Write the ledger (JSON) to FILE after every change, with each terminal's working keys as
    /// its last sign-in delivered them (encrypted under the TMK): a host restarted with the same
    /// FILE still knows every terminal that signed in. An existing file is loaded.
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Inject a fault per request: drop, delay:<dur>, close, garbage, truncate, bad-mac,
    /// wrong-stan, duplicate, late, each with an optional probability (`drop:0.1`). Repeatable.
    #[arg(long = "fault", value_name = "KIND[:P]")]
    faults: Vec<String>,
    /// Seed of the fault picker (same seed and request order give the same faults).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How the host answers a settlement (0500) whose totals it does not agree with:
    /// `field48` (00, and 2 in field 48's result digit), `95` (response code 95), or
    /// `always-95` (95 to every settlement, even a balanced one). Either way the terminal
    /// uploads the batch (0320) and ends it.
    #[arg(long, value_name = "ANSWER", default_value = "field48",
          value_parser = ["field48", "95", "always-95"])]
    settlement_answer: String,
    /// Mutual TLS: require every terminal to present a client certificate issued by a CA in
    /// FILE (PEM). A connection without one (or with another CA's) is refused at the TLS
    /// handshake, before any message, a sign-in included, reaches the host. Needs --tls. The
    /// word `test` uses the TEST terminal CA (tools/sim/testdata/tls/client-ca.pem).
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_client_ca: Option<String>,
    /// Close a connection on which no message starts for SECS seconds (terminals connect again).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Close a connection whose message (or answer) is not through within SECS seconds of its
    /// first byte: a client sending one byte at a time is cut off.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    frame_timeout: u64,
    /// Serve at most N connections at once; one more is closed as soon as it is accepted.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_connections: u64,
}

/// The CA file of `--tls-client-ca` (or the TEST terminal CA).
fn client_ca(arg: &str) -> Result<Vec<u8>, ToolError> {
    if arg == "test" {
        return Ok(smartpos_sim::net::TEST_CLIENT_CA_PEM.to_vec());
    }
    std::fs::read(arg)
        .map_err(|e| ToolError(format!("--tls-client-ca: cannot read {arg}: {}", e.kind())))
}

fn tls_config(arg: &str) -> Result<TlsServerConfig, ToolError> {
    if arg == "test" {
        return Ok(test_tls_config());
    }
    let dir = PathBuf::from(arg);
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| {
            ToolError(format!(
                "cannot read {}: {}",
                dir.join(name).display(),
                e.kind()
            ))
        })
    };
    Ok(TlsServerConfig {
        cert_chain_pem: read("server.pem")?,
        key_pem: read("server.key")?,
    })
}

/// Parses a TMK argument (or the test default).
pub fn tmk_arg(tmk: Option<&str>) -> Result<TdesKey, ToolError> {
    let hex = tmk.unwrap_or(TEST_TMK_HEX);
    let bytes = smartpos_types::hex::decode(hex).map_err(|e| ToolError(format!("--tmk: {e}")))?;
    TdesKey::new(&bytes).map_err(|e| ToolError(format!("--tmk: {e}")))
}

/// Reads and validates an acquirer profile file; the error lists every problem with its line.
pub fn load_profile(path: &Path) -> Result<Profile, ToolError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError(format!("cannot read {}: {}", path.display(), e.kind())))?;
    Profile::from_toml(&text).map_err(|e| {
        // One line on stderr: the problems joined, each with its line.
        let all = e.0.iter().map(ToString::to_string).collect::<Vec<_>>();
        ToolError(format!("profile {}: {}", path.display(), all.join("; ")))
    })
}

/// Runs the host until the process is stopped.
pub fn run_host(args: HostArgs) -> Result<(), ToolError> {
    let plan = if args.faults.is_empty() {
        FaultPlan::none()
    } else {
        FaultPlan::parse(&args.faults.join(",")).map_err(|e| ToolError(format!("--fault: {e}")))?
    };
    let cfg = AcquirerConfig {
        dialect: args.dialect.clone(),
        tmk: tmk_arg(args.tmk.as_deref())?,
        ledger_file: args.ledger.clone(),
    };
    let mut acquirer = match &args.profile {
        Some(path) => Acquirer::with_profile(cfg, load_profile(path)?),
        None => Acquirer::new(cfg),
    }
    .map_err(ToolError)?;
    if let Some(hex) = &args.bdk {
        let scheme = acquirer
            .profile()
            .keys
            .dukpt()
            .map(|d| d.scheme)
            .ok_or_else(|| ToolError("--bdk: the profile has no DUKPT scheme".into()))?;
        let bytes =
            smartpos_types::hex::decode(hex).map_err(|e| ToolError(format!("--bdk: {e}")))?;
        let bdk = smartpos_crypto::dukpt::DukptBdk::new(scheme, &bytes)
            .map_err(|e| ToolError(format!("--bdk: {e}")))?;
        acquirer = acquirer
            .with_dukpt_bdk(bdk)
            .map_err(|e| ToolError(format!("--bdk: {e}")))?;
    }
    let answer: SettlementAnswer = args.settlement_answer.parse().map_err(ToolError)?;
    acquirer.set_settlement_answer(answer);
    let tls = args.tls.as_deref().map(tls_config).transpose()?;
    let client_ca_pem = args.tls_client_ca.as_deref().map(client_ca).transpose()?;
    let limits = ConnLimits {
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        frame_timeout: std::time::Duration::from_secs(args.frame_timeout),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
    };
    let rt = crate::runtime()?;
    rt.block_on(async move {
        let server = Server::bind(
            ServerConfig {
                listen: args.listen.clone(),
                tls,
                faults: plan,
                seed: args.seed,
                limits,
                client_ca_pem,
            },
            Arc::new(acquirer),
        )
        .await
        .map_err(|e| ToolError(e.to_string()))?;
        println!("listening on {}", server.local_addr());
        server.run().await;
        Ok(())
    })
}

/// `smartpos host-ledger` arguments.
#[derive(Args, Debug)]
pub struct LedgerArgs {
    /// The ledger file written by `smartpos host --ledger FILE`.
    #[arg(long)]
    ledger: PathBuf,
}

/// Prints the ledger as `{"transactions":[{"tid","stan","date","kind","amount","status",...}]}`
/// (`date`: the terminal's local date, field 13, `MMDD`).
pub fn run_ledger(args: LedgerArgs) -> crate::tool::ToolResult {
    let text = std::fs::read_to_string(&args.ledger).map_err(|e| {
        ToolError(format!(
            "cannot read {}: {}",
            args.ledger.display(),
            e.kind()
        ))
    })?;
    let ledger: Ledger =
        serde_json::from_str(&text).map_err(|e| ToolError(format!("ledger: {e}")))?;
    Ok(ledger_json(&ledger))
}

/// The JSON form of a ledger.
pub fn ledger_json(ledger: &Ledger) -> serde_json::Value {
    let txns: Vec<serde_json::Value> = ledger
        .transactions
        .iter()
        .map(|t| {
            let mut v = serde_json::json!({
                "tid": t.tid,
                "stan": t.stan,
                "date": t.date,
                "kind": t.kind,
                "amount": t.amount,
                "status": t.status,
                "rrn": t.rrn,
                "response_code": t.response_code,
            });
            // Chip transactions: the uploaded TC and the issuer script results.
            if let Some(obj) = v.as_object_mut() {
                if let Some(tc) = &t.tc {
                    obj.insert("tc".into(), tc.clone().into());
                }
                if let Some(s) = &t.script_results {
                    obj.insert("script_results".into(), s.clone().into());
                }
                // The operator code the request carried in field 63 ("" for blanks).
                if let Some(o) = &t.operator {
                    obj.insert("operator".into(), o.clone().into());
                }
            }
            v
        })
        .collect();
    let mut v = serde_json::json!({ "transactions": txns });
    // Batch upload records (settlements the host did not agree with), PANs masked.
    if !ledger.uploads.is_empty()
        && let (Some(obj), Ok(u)) = (v.as_object_mut(), serde_json::to_value(&ledger.uploads))
    {
        obj.insert("uploads".into(), u);
    }
    v
}
