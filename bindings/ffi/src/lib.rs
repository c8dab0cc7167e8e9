//! The Kotlin (and later Swift) face of the SmartPOS SDK: the only uniffi crate, built as a
//! `cdylib` that the JVM loads through JNA and Android packages per ABI.
//!
//! The layer is thin on purpose: each exported method locks the core terminal, calls the
//! `smartpos-terminal` API and converts the result; no payment logic lives here. It names the
//! core only through `smartpos_terminal::api`, the runtime's curated API (checked by
//! `tests::ffi_imports_only_the_curated_api`).
//!
//! Files:
//! - `terminal.rs`: the [`Terminal`] object: owns a tokio runtime and an
//!   `Arc<tokio::sync::Mutex<smartpos_terminal::Terminal>>`; every command is spawned onto that
//!   runtime and awaited through its `JoinHandle`, so a cancelled Kotlin coroutine never stops a
//!   request that is already on the wire (the task finishes and journals).
//! - `card.rs`: [`CardInput`] (keyed or track-2 card data, masked, never shown to Kotlin again)
//!   and the app's [`CardReader`] foreign trait; the wait for a card is cancellable.
//! - `callbacks.rs`: the other foreign traits the app implements ([`SecureStore`],
//!   [`TerminalListener`], [`LogSink`]) and their adapters; a Kotlin exception in a callback
//!   becomes an error value, never a panic.
//! - `contactless.rs`: the app's [`ApduTransport`] (NFC / mPOS reader) and [`PinEntry`]
//!   foreign traits, [`PinInput`], and the contactless sale and pre-authorisation.
//! - `safety.rs`: operator login and management, refund quote, the policy-checked refund
//!   (denials become `RefundDenied`) and the support bundle.
//! - `certified.rs`: the app's [`CertifiedKernel`] (the device's certified EMV kernel: Sunmi
//!   `EMVOptV2`, PAX, Newland), its records ([`KernelRequest`], [`KernelCard`] with the
//!   masked [`CardNumber`] and [`PinBlock`], [`HostAnswer`], [`CardDecision`]), the one place
//!   where they are converted to and from the core's, and the sale and pre-authorisation
//!   through it.
//! - `security.rs`: the app's [`SecurityModule`] (the device's security processor, or the
//!   app's own keystore module): its records (key deliveries as ciphertext, key roles, MAC
//!   methods, PIN pad requests), the adapter to the core's trait, and the core's module behind
//!   the foreign trait (the test kit's). No clear key or PIN digit crosses.
//! - `reader.rs`: the mPOS reader: the app's [`ReaderLink`], the [`ChunkSender`] its
//!   notifications feed, and [`MposReader`] (an `ApduTransport` for contactless sales).
//! - `params.rs`: the acquirer's EMV parameters: download, read, set, and the TLV records for
//!   the device's certified kernel.
//! - `printer.rs`: the app's [`ReceiptPrinter`] and print, reprint and receipt text.
//! - `convert/`: every record and enum that crosses the FFI, and the one place where core
//!   types are converted to them, one file per subject (config, outcome, operators, receipts,
//!   settings, errors).
//! - `diagnosis.rs`: [`convert::Diagnosis`], what the cashier reads, copied out of the core's
//!   tables; carried by both the records and the errors.
//! - `error.rs`: [`SmartPosError`] (Kotlin: `SmartPosException`), one variant per thing an app
//!   does differently, each carrying a message without card data, and its payload records.
//! - `reentry.rs`: every call into the app's code marks its thread; a terminal method called
//!   from inside such a callback fails at once with `Busy` instead of waiting for a lock its
//!   own thread holds.
//! - `stats.rs`: counters of FFI crossings for the benchmark.
//! - `testkit.rs` (feature `testkit`): the in-process [`HostSimulator`], [`SimulatedCard`],
//!   [`SimulatedReader`], [`SimulatedKernel`] and [`SoftwareSecurityModule`] for JVM tests.
//! - `bin/uniffi-bindgen.rs`: the bindgen command used in library mode by `bindings/kotlin`.

uniffi::setup_scaffolding!();

pub mod callbacks;
pub mod card;
pub mod certified;
pub mod contactless;
pub mod convert;
pub mod diagnosis;
pub mod error;
pub mod params;
pub mod printer;
pub mod reader;
mod reentry;
pub mod safety;
pub mod security;
pub mod stats;
pub mod terminal;
// Also in this crate's own tests, which run terminals against the simulator.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use callbacks::{CallbackError, LogLevel, LogRecord, LogSink, SecureStore, TerminalListener};
pub use card::{CardInput, CardReader, CardReaderError};
pub use certified::{
    CardDecision, CardKernelError, CardNumber, CertifiedKernel, HostAnswer, KernelCard,
    KernelRequest, PinBlock,
};
pub use contactless::{ApduTransport, CardTransportError, PinEntry, PinInput};
pub use error::SmartPosError;
pub use printer::ReceiptPrinter;
pub use reader::{ChunkSender, MposReader, ReaderLink};
pub use security::{SecurityModule, SecurityModuleError};
pub use terminal::Terminal;
#[cfg(feature = "testkit")]
pub use testkit::{
    HostSimulator, SimulatedCard, SimulatedKernel, SimulatedReader, SoftwareSecurityModule,
};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The crates this crate's code may name: the runtime only through its curated API, the
    /// value types, the simulator (the test kit) and itself.
    fn allowed(path: &str) -> bool {
        path.starts_with("smartpos_terminal::api")
            || ["smartpos_types", "smartpos_sim", "smartpos_ffi"]
                .iter()
                .any(|c| path == *c || path.starts_with(&format!("{c}::")))
    }

    /// Every `smartpos_*` path in `code` that is not allowed (comments excluded).
    fn forbidden(code: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            let mut rest = line;
            while let Some(i) = rest.find("smartpos_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                let path = &tail[..end];
                if !allowed(path) {
                    found.push(path.to_string());
                }
                rest = &tail[end.max(1)..];
            }
        }
        found
    }

    /// The FFI reaches the core through `smartpos_terminal::api` only (docs/adr/0006): no
    /// engine, journal or guard internals. Unit tests at the bottom of a file may use test
    /// oracles (dev-dependencies), so the check stops at `#[cfg(test)]` + `mod tests`.
    #[test]
    fn ffi_imports_only_the_curated_api() {
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10, "found the sources");
        let mut bad = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read source");
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            for p in forbidden(code) {
                bad.push(format!("{}: {p}", f.display()));
            }
        }
        assert!(bad.is_empty(), "outside smartpos_terminal::api: {bad:#?}");
    }

    #[test]
    fn the_import_check_sees_internals() {
        assert_eq!(
            forbidden("use smartpos_txn::engine::Engine;\n// smartpos_txn in a comment"),
            ["smartpos_txn::engine::Engine"]
        );
        assert_eq!(
            forbidden("let g = smartpos_terminal::guard::STAN_BLOCK;"),
            ["smartpos_terminal::guard::STAN_BLOCK"]
        );
        assert!(forbidden("use smartpos_terminal::api::model::TxnRecord;").is_empty());
        assert!(forbidden("let p = smartpos_types::Pan::new(x);").is_empty());
    }
}
