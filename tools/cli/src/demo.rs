//! `smartpos demo`: a full terminal session against the in-process host simulator.
//!
//! The host runs on loopback with the built-in TEST TLS identity; the terminal verifies its
//! certificate against the TEST CA. Steps: sign-in, sale, void, sale + partial refund, a sale
//! whose answer the host swallows (the terminal times out and reverses it), settlement, and a
//! reconciliation of the terminal journal against the host ledger. Every message is printed as
//! a masked dump.

use crate::tool::ToolError;
use clap::Args;
use smartpos_iso8583::Dialect;
use smartpos_sim::acquirer::{Acquirer, AcquirerConfig};
use smartpos_sim::net::{
    ConnInfo, FrameHandler, Server, ServerConfig, TEST_CA_PEM, test_tls_config,
};
use smartpos_terminal::card::{ApduTransport, CardSource};
use smartpos_terminal::store::{DataDir, StoredConfig};
use smartpos_terminal::{Probe, Terminal, TxnOutcome};
use smartpos_txn::engine::{Event, Outcome};
use smartpos_txn::model::TxnKind;
use smartpos_txn::proto::CardData;
use smartpos_txn::{IdempotencyKey, OperatorId, TxnIntent};
use smartpos_types::Pan;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `smartpos demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Message dialect: cup or iso87b.
    #[arg(long, default_value = "cup")]
    dialect: String,
    /// Do not print message dumps.
    #[arg(long)]
    quiet: bool,
    /// Response timeout in seconds for the timed-out sale.
    #[arg(long, default_value_t = 3)]
    response_timeout: u64,
    /// The terminal's offset from UTC, e.g. +08:00 (default: the machine's, `date +%z`).
    #[arg(long, value_name = "+HH:MM", value_parser = smartpos_txn::model::parse_utc_offset)]
    utc_offset: Option<i32>,
}

/// The host with a switch to swallow the next answer (as the `drop` fault does: the host
/// processes the request, the answer never arrives).
struct DemoHost {
    acquirer: Arc<Acquirer>,
    drop_next: AtomicBool,
}

impl FrameHandler for DemoHost {
    fn handle(&self, conn: ConnInfo, request: &[u8]) -> Vec<Vec<u8>> {
        let answer = self.acquirer.handle_request(conn.faults, request);
        if self.drop_next.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        answer.into_iter().collect()
    }
}

fn step(n: &mut u32, text: &str) {
    *n += 1;
    println!("\n=== {n}. {text}");
}

fn show(o: &TxnOutcome) {
    let r = &o.record;
    println!(
        "    -> {} {} amount {} state {} rrn {} code {}{}",
        r.reference,
        r.kind,
        money(r.amount),
        r.state,
        r.rrn.as_deref().unwrap_or("-"),
        r.response_code.as_deref().unwrap_or("-"),
        if o.reversal_pending {
            " (reversal pending)"
        } else {
            ""
        }
    );
}

fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn card() -> Result<CardData, ToolError> {
    Ok(CardData {
        pan: Some(Pan::new("6222021234567890128").map_err(|e| ToolError(e.to_string()))?),
        expiry: Some("3012".into()),
        entry_mode: "012".into(),
        ..CardData::default()
    })
}

/// Runs the demo; returns an error if anything does not reconcile.
pub fn run(args: DemoArgs) -> Result<(), ToolError> {
    let rt = crate::runtime()?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<(), ToolError> {
    let e = |x: &dyn std::fmt::Display| ToolError(x.to_string());
    let dialect = Dialect::by_name(&args.dialect)
        .ok_or_else(|| ToolError(format!("unknown dialect {}", args.dialect)))?;
    let tmk = crate::host_cmd::tmk_arg(None)?;
    let acquirer = Arc::new(
        Acquirer::new(AcquirerConfig {
            dialect: args.dialect.clone(),
            tmk,
            ledger_file: None,
        })
        .map_err(ToolError)?,
    );
    let host = Arc::new(DemoHost {
        acquirer: acquirer.clone(),
        drop_next: AtomicBool::new(false),
    });
    let server = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            tls: Some(test_tls_config()),
            ..ServerConfig::default()
        },
        host.clone(),
    )
    .await
    .map_err(|x| e(&x))?
    .spawn();
    let addr = server.local_addr();
    println!(
        "host simulator ({}) listening on {addr} (TLS, TEST certificate)",
        args.dialect
    );

    let dir = std::env::temp_dir().join(format!("smartpos-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|x| e(&x))?;
    let ca = dir.join("test-ca.pem");
    std::fs::write(&ca, TEST_CA_PEM).map_err(|x| e(&x))?;
    let data = DataDir::new(dir.join("terminal"));
    data.init(
        &StoredConfig {
            host: format!("127.0.0.1:{}", addr.port()),
            dialect: args.dialect.clone(),
            tid: "10000001".into(),
            mid: "898100012340001".into(),
            currency: "156".into(),
            tls_ca: Some(ca),
            tls_server_name: Some("localhost".into()),
            tls_pin_sha256: None,
            tls_client_cert: None,
            connect_timeout_ms: 5_000,
            response_timeout_ms: args.response_timeout.saturating_mul(1000),
            utc_offset_minutes: args
                .utc_offset
                .or_else(crate::terminal_cmd::machine_utc_offset)
                .unwrap_or(0),
            merchant_name: Some("SmartPOS 演示商户".into()),
            profile: None,
        },
        crate::host_cmd::tmk_arg(None)?.expose(),
    )
    .map_err(|x| e(&x))?;
    let mut t: Terminal = data.open().map_err(|x| e(&x))?;
    println!(
        "terminal 10000001 journal at {}, local time UTC{}",
        data.path().join("journal.db").display(),
        smartpos_txn::model::utc_offset_text(t.config().utc_offset_minutes)
    );
    if !args.quiet {
        t.set_probe(move |p| {
            let (dir, bytes) = match p {
                Probe::BeforeSend(b) => ("terminal -> host", b),
                Probe::Received(b) => ("host -> terminal", b),
                _ => return,
            };
            match dialect.unpack(bytes) {
                Ok(m) => {
                    println!("  {dir}: {} bytes", bytes.len());
                    for line in dialect.dump(&m).lines() {
                        println!("    {line}");
                    }
                }
                Err(_) => println!("  {dir}: {} bytes (not decodable)", bytes.len()),
            }
        });
    }
    t.set_listener(|ev| {
        if let Event::ReversalSent {
            reference,
            reason,
            attempt,
        } = ev
        {
            println!(
                "  ! reversal of {reference} sent (reason {}, attempt {attempt})",
                reason.code()
            );
        }
    });

    let mut n = 0;
    step(
        &mut n,
        "sign-in: download PIK/MAK/TDK under the TMK, check values verified",
    );
    let batch = t.admin().sign_in("01").await.map_err(|x| e(&x))?;
    println!("    -> signed in, batch {batch:06}");

    step(
        &mut n,
        "contactless sale of 12.34: a simulated Visa card taps (qVSDC; the host verifies the ARQC)",
    );
    let mut visa = crate::terminal_cmd::sim_card("visa")?;
    let s1 = t
        .transact(
            intent(TxnIntent::sale(1234), "order-1001")?,
            own_kernel(&mut visa),
        )
        .await
        .map_err(|x| e(&x))?;
    show(&s1);
    if let Some(c) = &s1.card {
        println!(
            "    card: AID {} {} | {} {} | CVM {} | ARPC {} | card in field {} ms",
            c.info.aid,
            c.info.label,
            c.info.cryptogram_type,
            c.info.cryptogram,
            c.info.cvm,
            if c.arpc_received {
                "received"
            } else {
                "missing"
            },
            c.info.in_field_ms
        );
    }

    step(
        &mut n,
        "the app retries order-1001 (same idempotency key): recorded outcome, nothing sent",
    );
    let again = t
        .transact(
            intent(TxnIntent::sale(1234), "order-1001")?,
            own_kernel(&mut visa),
        )
        .await
        .map_err(|x| e(&x))?;
    show(&again);
    if !again.replayed || again.record.reference != s1.record.reference {
        return Err(ToolError("idempotent retry was not replayed".into()));
    }

    step(&mut n, "void of that sale");
    let v = t
        .void(&s1.record.reference, None, Some("01"))
        .await
        .map_err(|x| e(&x))?;
    show(&v);

    step(
        &mut n,
        "contactless sale of 100.00 (Mastercard M/Chip, GENERATE AC), then a partial refund of 30.00 (advice 0220)",
    );
    let mut mastercard = crate::terminal_cmd::sim_card("mastercard")?;
    let s2 = t
        .transact(
            intent(TxnIntent::sale(10_000), "order-1002")?,
            own_kernel(&mut mastercard),
        )
        .await
        .map_err(|x| e(&x))?;
    show(&s2);
    let r = t
        .refund_checked(
            &s2.record.reference,
            3_000,
            Some("refund-1002-1"),
            None,
            None,
        )
        .await
        .map_err(|x| e(&x))?;
    show(&r);

    step(
        &mut n,
        "contactless sale of 55.00 (UnionPay QuickPass); the host approves but the answer is lost: timeout, automatic reversal (98)",
    );
    host.drop_next.store(true, Ordering::SeqCst);
    let mut unionpay = crate::terminal_cmd::sim_card("unionpay")?;
    let s3 = t
        .transact(
            intent(TxnIntent::sale(5_500), "order-1003")?,
            own_kernel(&mut unionpay),
        )
        .await
        .map_err(|x| e(&x))?;
    show(&s3);

    step(
        &mut n,
        "keyed sale of 20.51: declined by the host (51 insufficient funds)",
    );
    let s4 = t
        .transact(
            intent(TxnIntent::sale(2_051), "order-1004")?,
            CardSource::Given(card()?),
        )
        .await
        .map_err(|x| e(&x))?;
    show(&s4);

    step(
        &mut n,
        "customer copy of the Visa sale's receipt (32 columns, from the journal; the sale was voided)",
    );
    let job = t
        .receipts()
        .receipt(
            &s1.record.reference,
            smartpos_receipt::ReceiptCopy::Customer,
            false,
        )
        .map_err(|x| e(&x))?;
    for line in &job.lines {
        println!("    | {line}");
    }

    step(&mut n, "settlement: 0500 totals");
    match t.settle().await.map_err(|x| e(&x))? {
        Outcome::Settled {
            batch,
            balanced,
            totals,
            uploaded,
        } => println!(
            "    -> batch {batch:06} settled, balanced {balanced}, uploaded {uploaded}; debits {} / {}, credits {} / {}; next batch {:06}",
            totals.debit_count,
            money(totals.debit_amount),
            totals.credit_count,
            money(totals.credit_amount),
            t.batch()
        ),
        other => println!("    -> {other:?}"),
    }

    step(
        &mut n,
        "reconcile the terminal journal with the host ledger",
    );
    let records = t.journal().all().map_err(|x| e(&x))?;
    let ledger = acquirer.ledger();
    let diffs = smartpos_sim::reconcile::reconcile(&records, &ledger, "10000001", false);
    println!("    journal:");
    for r in &records {
        println!(
            "      {} {:<8} {:>8} {:<9} stan {:06} rrn {}",
            r.reference,
            r.kind.as_str(),
            money(r.amount),
            r.state.as_str(),
            r.stan,
            r.rrn.as_deref().unwrap_or("-")
        );
    }
    println!("    host ledger:");
    for h in &ledger.transactions {
        println!(
            "      stan {:06} {:<8} {:>8} {:?}",
            h.stan,
            h.kind,
            money(h.amount),
            h.status
        );
    }
    t.disconnect().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    for d in &diffs {
        println!("    DIFFERENCE: {d}");
    }
    let counted = records
        .iter()
        .filter(|r| r.kind != TxnKind::Balance)
        .count();
    println!(
        "\nreconciled: {counted} transactions, {} differences",
        diffs.len()
    );
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(ToolError(format!(
            "{} differences between journal and ledger",
            diffs.len()
        )))
    }
}

/// The demo's intent: an idempotency key and cashier `01`.
fn intent(base: TxnIntent, key: &str) -> Result<TxnIntent, ToolError> {
    Ok(base
        .key(IdempotencyKey::new(key).map_err(|x| ToolError(x.to_string()))?)
        .operator(OperatorId::new("01").map_err(|x| ToolError(x.to_string()))?))
}

/// A simulated contactless card tapped on our own kernel.
fn own_kernel(card: &mut dyn ApduTransport) -> CardSource<'_> {
    CardSource::OwnKernel {
        transport: card,
        pin: None,
    }
}
