//! The Kotlin (and later Swift) face of the SmartPOS SDK: the only uniffi crate, built as a
//! `cdylib` that the JVM loads through JNA and Android packages per ABI.
//!
//! The layer is thin on purpose: each exported method locks the core terminal, calls the
//! `smartpos-terminal` API and converts the result; no payment logic lives here.
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
//! - `convert.rs`: every record and enum that crosses the FFI, and the one place where core
//!   types are converted to them.
//! - `error.rs`: [`SmartPosError`] (Kotlin: `SmartPosException`), one variant per thing an app
//!   does differently, each carrying a message without card data.
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
