//! A terminal process for the crash harness (`e2e/crash.rs`).
//!
//! Usage: `crash_child JOURNAL HOST_PORT [--crash-at POINT:N] [--dukpt STORE_DIR] COMMAND
//! ARGS...` where POINT is one of `before_commit`, `after_commit`, `before_send`, `after_send`,
//! `received`, and, with `--dukpt`, `ksn_reserved` (the DUKPT state with the advanced counter
//! is durable in the secure store, the KSN not yet handed out); N counts hits of that point
//! from 1. `--dukpt STORE_DIR` runs the terminal on `profiles/dukpt-tdes.toml` with the DUKPT
//! state kept in the development secure store STORE_DIR (loaded with the TEST initial key when
//! it has none). At the N-th hit the child prints `AT POINT N`, flushes, and
//! blocks forever, so the parent can SIGKILL it exactly there. Commands: `signin`,
//! `sale AMOUNT KEY`, `preauth AMOUNT KEY`, `void REF KEY`, `refund REF AMOUNT KEY`,
//! `complete REF AMOUNT KEY`, `settle`, `recover`, `chip-sale AMOUNT KEY [decline]` (a
//! UnionPay card inserted in the simulated certified kernel, which decides after the host; with
//! `decline` it answers AAC). On completion it prints one line
//! `RESULT <reference-or-word> <state-or-detail>`.

#![allow(clippy::panic, clippy::expect_used)]

use smartpos_crypto::dukpt::DukptScheme;
use smartpos_crypto::module::{DukptStore, SecurityModule, SoftwareModule};
use smartpos_terminal::dukpt_store::{self, SecureDukptStore};
use smartpos_terminal::journal::JournalKey;
use smartpos_terminal::link::LinkConfig;
use smartpos_terminal::store::{FileSecureStore, SecureStore};
use smartpos_terminal::{Probe, Terminal, TerminalConfig};
use smartpos_tests::TerminalCalls;
use smartpos_tests::{MID, TID, test_card, test_tmk};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

fn point_name(p: &Probe<'_>) -> &'static str {
    match p {
        Probe::BeforeCommit { .. } => "before_commit",
        Probe::AfterCommit { .. } => "after_commit",
        Probe::BeforeSend(_) => "before_send",
        Probe::AfterSend(_) => "after_send",
        Probe::Received(_) => "received",
        _ => "other",
    }
}

/// The DUKPT store of the crash child: the secure store's, stopping the process at the n-th
/// reservation once it is durable (point `ksn_reserved`).
struct CrashingStore {
    inner: SecureDukptStore,
    crash_at: Option<u32>,
    hits: AtomicU32,
}

impl DukptStore for CrashingStore {
    fn save(&self, state: &[u8]) -> Result<(), String> {
        self.inner.save(state)?;
        let n = self.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_at == Some(n) {
            println!("AT ksn_reserved {n}");
            let _ = std::io::stdout().flush();
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Ok(())
    }
}

/// The TDES DUKPT profile and a software module with the DUKPT device of `dir`'s store
/// (loaded with the TEST initial key the first time).
fn dukpt_module(
    dir: &str,
    crash_at: Option<u32>,
) -> (smartpos_txn::proto::Profile, Arc<dyn SecurityModule>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/dukpt-tdes.toml");
    let text = std::fs::read_to_string(path).expect("profile");
    let profile = smartpos_txn::proto::Profile::from_toml(&text).expect("profile loads");
    let store: Arc<dyn SecureStore> = Arc::new(FileSecureStore::new(dir));
    let device = match dukpt_store::load_device(store.as_ref(), DukptScheme::Tdes).expect("state") {
        Some(d) => d,
        None => {
            let (ipek, ksn) = smartpos_sim::keys::test_initial_key(DukptScheme::Tdes);
            let hex = |h: &str| smartpos_types::hex::decode(h).expect("hex");
            dukpt_store::load_initial_key(store.as_ref(), DukptScheme::Tdes, &hex(ipek), &hex(ksn))
                .expect("load");
            dukpt_store::load_device(store.as_ref(), DukptScheme::Tdes)
                .expect("state")
                .expect("device")
        }
    };
    let saver = CrashingStore {
        inner: SecureDukptStore::new(store),
        crash_at,
        hits: AtomicU32::new(0),
    };
    let module = SoftwareModule::new(test_tmk()).with_dukpt(device, Box::new(saver));
    (profile, Arc::new(module))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: crash_child JOURNAL PORT [--crash-at POINT:N] COMMAND ARGS...");
        std::process::exit(2);
    }
    let journal = args.remove(0);
    let port = args.remove(0);
    let mut crash: Option<(String, u32)> = None;
    if args.first().map(String::as_str) == Some("--crash-at") {
        args.remove(0);
        let spec = args.remove(0);
        let (p, n) = spec.split_once(':').expect("POINT:N");
        crash = Some((p.to_owned(), n.parse().expect("N")));
    }
    let mut dukpt_dir: Option<String> = None;
    if args.first().map(String::as_str) == Some("--dukpt") {
        args.remove(0);
        dukpt_dir = Some(args.remove(0));
    }
    let mut link = LinkConfig::plain(format!("127.0.0.1:{port}"));
    link.response_timeout = Duration::from_millis(500);
    link.connect_timeout = Duration::from_secs(2);
    let cfg = TerminalConfig {
        tid: TID.into(),
        mid: MID.into(),
        currency: "156".into(),
        dialect: if dukpt_dir.is_some() { "iso87b" } else { "cup" }.into(),
        link,
        utc_offset_minutes: 0,
    };
    let mut t = match &dukpt_dir {
        None => Terminal::open(
            cfg,
            std::path::Path::new(&journal),
            test_tmk(),
            &JournalKey::new([5; 32]),
        ),
        Some(dir) => {
            let crash_at = crash
                .as_ref()
                .filter(|(p, _)| p == "ksn_reserved")
                .map(|(_, n)| *n);
            let (profile, module) = dukpt_module(dir, crash_at);
            Terminal::open_with_module(
                cfg,
                Some(profile),
                std::path::Path::new(&journal),
                module,
                &JournalKey::new([5; 32]),
            )
        }
    }
    .expect("open");
    if let Some((point, n)) = crash {
        let hits = AtomicU32::new(0);
        t.set_probe(move |p| {
            if point_name(&p) == point && hits.fetch_add(1, Ordering::SeqCst) + 1 == n {
                println!("AT {point} {n}");
                let _ = std::io::stdout().flush();
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = rt.block_on(async {
        let a = |i: usize| args.get(i).cloned().unwrap_or_default();
        let num = |i: usize| a(i).parse::<u64>().expect("amount");
        let key = |i: usize| Some(a(i)).filter(|k| !k.is_empty());
        let txn =
            |o: Result<smartpos_terminal::TxnOutcome, smartpos_terminal::TerminalError>| match o {
                Ok(o) => format!("{} {}", o.record.reference, o.record.state),
                Err(e) => format!("error {e}"),
            };
        match a(0).as_str() {
            "signin" => match t.admin().sign_in("01").await {
                Ok(b) => format!("signed_in {b}"),
                Err(e) => format!("error {e}"),
            },
            "sale" => txn(t.sale(num(1), test_card(), key(2).as_deref(), None).await),
            "preauth" => txn(t
                .preauth(num(1), test_card(), key(2).as_deref(), None)
                .await),
            "void" => txn(t.void(&a(1), key(2).as_deref(), None).await),
            "refund" => txn(t.refund(&a(1), num(2), key(3).as_deref(), None).await),
            "complete" => txn(t.complete(&a(1), num(2), key(3).as_deref(), None).await),
            "chip-sale" => {
                use smartpos_sim::certified::{
                    Presentation, SimBehaviour, SimCertifiedKernel, SimScheme,
                };
                let behaviour = SimBehaviour {
                    decline_at_second_ac: a(3) == "decline",
                    ..SimBehaviour::default()
                };
                let mut kernel =
                    SimCertifiedKernel::new(SimScheme::UnionPay, Presentation::Chip, behaviour)
                        .expect("simulated kernel");
                let intent = smartpos_tests::intent(
                    smartpos_txn::TxnIntent::sale(num(1)),
                    key(2).as_deref(),
                    None,
                )
                .expect("intent");
                let source = smartpos_terminal::card::CardSource::Certified {
                    kernel: &mut kernel,
                    pin: None,
                };
                txn(t.transact(intent, source).await)
            }
            "settle" => match t.settle().await {
                Ok(o) => format!("settled {o:?}"),
                Err(e) => format!("error {e}"),
            },
            "recover" => match t.recover().await {
                Ok((d, r)) => format!("recovered {d} {r}"),
                Err(e) => format!("error {e}"),
            },
            other => format!("error unknown command {other}"),
        }
    });
    println!("RESULT {result}");
}
