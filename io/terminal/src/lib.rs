//! The SmartPOS terminal runtime: everything in the SDK that does I/O on the terminal side.
//!
//! Files:
//! - `runtime.rs`: [`Terminal`], the public API: opens the journal, recovers, and drives the
//!   sans-IO engine of `smartpos-txn` with a real clock and the host link.
//! - `facets.rs`: [`Terminal`]'s API grouped in facets ([`Terminal::operators`],
//!   [`Terminal::receipts`], [`Terminal::support`], [`Terminal::admin`]); money-moving calls
//!   stay on `Terminal`.
//! - `api.rs`: [`api`], the curated surface the FFI uses (re-exports by subject).
//! - `host_answers.rs`: the host's last answer to each request, and the one sign-in a command
//!   makes by itself when the host answers `97`/`A0` (it forgot the terminal's keys); why a
//!   pending item is still pending ([`Support::last_attempt`]).
//! - `card.rs`: [`card::ApduTransport`] and [`card::PinEntry`] (implemented by the app), the
//!   contactless kernel loop, and card data for the engine (entry mode 07, field 55, PIN block).
//! - `journal.rs`: the SQLite journal (WAL, synchronous=FULL); pending messages sealed with
//!   AES-256-GCM; money rows tagged with HMAC-SHA256 under a chain head (ADR 0008).
//! - `safety.rs`: operators and sessions, refund policy and quotes, supervisor approval,
//!   diagnoses for every error, the support bundle.
//! - `settings.rs`: settings documents that change only the fields they name, checked as a
//!   whole before anything is stored ([`Admin::apply_settings`]).
//! - `guard.rs`: the journal guard: a journal identity and a STAN/batch reservation in the
//!   app's secure store, so a journal that was emptied, deleted, replaced or rolled back is
//!   refused on open instead of silently restarted; and support's explicit journal reset.
//! - `files.rs`: owner-only modes (0600 files, 0700 directories) for the journal, the CLI's
//!   settings and the development store, narrowed on open when found wider.
//! - `storage.rs`: journal failures sorted into a damaged journal, a read-only data directory,
//!   a full disk and other storage failures, each with its diagnosis.
//! - `store.rs`: [`store::SecureStore`] (implemented by the app), the development file store,
//!   and the CLI's data directory layout.
//! - `dukpt_store.rs`: the DUKPT state (the durable transaction counter) in the secure store,
//!   rewritten before each KSN goes out.
//! - `params.rs`: EMV terminal parameters (AIDs, limits, CA public keys): the download from the
//!   host and the set kept in the journal ([`Admin::download_params`],
//!   [`Admin::terminal_params`], [`Admin::set_terminal_params`]).
//! - `printing.rs`: [`printing::ReceiptPrinter`] (implemented by the app), print jobs rendered
//!   from the journal; failed prints stay pending and can be reprinted.
//! - `reader.rs`: [`reader::ReaderTransport`], the mPOS Bluetooth card reader as an
//!   `ApduTransport` (the reader link engine of `smartpos-emv` driven with a real clock over
//!   the app's `ReaderLink` writes and notification chunks), plus poll and reader commands.
//! - `link.rs`: the host link, one TCP or TLS connection to the acquirer host carrying
//!   2-byte length-prefixed frames, with connect/response timeouts, certificate pinning and
//!   a classification of each failure by whether a sent request may have reached the host.

pub mod api;
pub mod card;
pub mod dukpt_store;
pub mod facets;
pub mod files;
pub mod guard;
pub mod host_answers;
pub mod journal;
pub mod link;
pub mod params;
pub mod printing;
pub mod reader;
pub mod runtime;
pub mod safety;
pub mod settings;
pub mod storage;
pub mod store;

pub use facets::{Admin, Operators, Receipts, Support};
pub use runtime::{ConfigSettings, Probe, Terminal, TerminalConfig, TerminalError, TxnOutcome};
