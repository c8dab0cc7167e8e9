//! EMV data handling for the SmartPOS card kernel, sans-IO (no clocks, threads or randomness).
//!
//! - `tlv.rs` ([`tlv`]): BER-TLV as EMV uses it (Book 3 Annex B): [`Tag`], [`Tlv`], parsing
//!   with depth/length limits and padding rules, minimal encoding, depth-first search and a
//!   flat iterator over primitives.
//! - `certified.rs` ([`certified`]): the bridge to a device's certified EMV kernel ([`certified::CertifiedKernel`]:
//!   read a card, complete it with the host's answer) and the SDK's acceptance rules (swipe of a
//!   chip card, fallback, keyed entry).
//! - `dol.rs` ([`dol`]): Data Object Lists (PDOL, CDOL1/2, DDOL, TDOL): parsing and building
//!   the requested data with the Book 3 §5.4 padding/truncation rules, from any [`TagSource`].
//! - `tags.rs` ([`tags`]): the tag dictionary (name, format, source, lengths, which tags hold
//!   card data that must be masked), from EMV Book 3 Annex A and Contactless Books C-2/C-3.
//! - `dump.rs` ([`dump`]): human-readable trees and value rendering with PAN/track/name masked.
//! - `kernel/` ([`kernel`]): the contactless kernel flow (PPSE, selection, GPO, records,
//!   GENERATE AC, CVM, field 55), a sans-IO state machine that emits C-APDUs and consumes
//!   R-APDUs.
//!
//! The mPOS Bluetooth reader link (a block protocol, not EMV) is its own crate,
//! `smartpos-reader`.
//!
//! Bytes from a card or reader are hostile: every parser here bounds-checks, never panics, and
//! reports "need more bytes" apart from "invalid". Tests: unit tests at the bottom of each file,
//! the `integration` test binary (`tests/integration/`, vectors in `testdata/`), and the
//! criterion benches `benches/tlv.rs` and `benches/kernel.rs`.

pub mod certified;
pub mod dol;
pub mod dump;
pub mod kernel;
pub mod tags;
pub mod tlv;

pub use dol::{DolEntry, TagSource, build_dol_data, parse_dol};
pub use tags::{Format, TagInfo};
pub use tlv::{InvalidReason, Limits, Tag, Tlv, TlvError, TlvValue, parse, parse_one};
