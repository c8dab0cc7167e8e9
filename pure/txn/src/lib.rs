//! Transaction state machines for the SmartPOS SDK, sans-IO.
//!
//! - `model.rs`: the journal model: transactions, pending reversals/advices, counters, totals.
//! - `journal.rs`: the durable writes the engine asks for ([`journal::JournalOp`], grouped in a
//!   [`journal::Commit`]) and what the runtime hands back on open ([`journal::Restored`]).
//! - `proto.rs`: the message catalogue (one template line per message type) and response checks
//!   (match on MTI, STAN, TID, MID, amount; MAC).
//! - `profile.rs`: [`profile::Profile`]: dialect + MAC + key layout + templates; the built-in
//!   profiles and acquirer profiles loaded from TOML, validated with every error's line.
//! - `intent.rs`: [`TxnIntent`], what the app asks for before a card is read, with the
//!   [`IdempotencyKey`] and [`OperatorId`] newtypes.
//! - `engine/`: the [`Engine`]: sign-in, sale, void, refund (advice), pre-auth, completion,
//!   cancel, balance, reversal, store-and-forward, settlement with batch upload; a contact
//!   chip card's final decision after the host's answer ([`engine::CardVerdict`]).
//! - `params.rs`: EMV terminal parameters (AIDs, limits, CA public keys) as UnionPay POS hosts
//!   deliver them in field 62 of 0800/0820 messages: model, TLV codec, and the sans-IO download
//!   sequence the engine runs (`engine/params_op.rs`).
//! - `track.rs`: track data encrypted under the TDK (UnionPay "磁道加密"), both ways.
//! - `balance.rs`: field 54 (additional amounts) of a balance inquiry's answer, decoded.
//!
//! What the engine does not use lives in its own crates beside this one: receipts
//! (`smartpos-receipt`), operators and refund policy (`smartpos-operators`), and the cashier's
//! diagnoses (`smartpos-diagnosis`).
//!
//! Nothing here opens a socket, reads a clock, spawns a thread or draws random bytes: time comes
//! in as [`model::Now`], frames come in as bytes, and everything the engine wants done comes out
//! through `poll`. `smartpos-terminal` drives it with tokio and SQLite.

pub mod balance;
pub mod engine;
pub mod intent;
pub mod journal;
pub mod model;
pub mod params;
pub mod profile;
pub mod proto;
pub mod track;

pub use engine::{
    Command, Engine, EngineConfig, Event, Finished, OpError, Outcome, Output, TxnRequest,
    WorkingKeys,
};
pub use intent::{IdempotencyKey, OperatorId, TxnIntent};
pub use model::{Now, TxnKind, TxnRecord, TxnState};
