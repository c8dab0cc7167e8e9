//! SmartPOS simulators, used by tests, the CLI `host` command and the JVM bindings.
//!
//! Files:
//! - `net.rs`: the simulator's TCP/TLS server: accepts many connections, splits each into
//!   2-byte length-prefixed frames, hands each request to a [`net::FrameHandler`] and writes the
//!   answers back, applying transport faults; also the built-in TEST-ONLY TLS identity.
//! - `acquirer.rs`: the acquirer host logic: working keys at sign-in, MAC checks, the ledger,
//!   void/refund/completion rules, settlement, repeat detection, the approval amount table.
//! - `emv_params.rs`: the host side of the EMV parameter download (60.3 372/370 CA keys,
//!   382/380 AIDs) and the built-in TEST parameter set (Visa test CA keys 92 and 94).
//! - `keys.rs`: the host side of a profile's key options: SM4 working keys at sign-in, DUKPT
//!   derived from a BDK (KSN, MAC and PIN checks), and the TEST BDKs and initial keys.
//! - `reconcile.rs`: terminal journal vs host ledger, the "0 lost, 0 doubled" check.
//! - `card.rs`: simulated contactless cards (Visa qVSDC, Mastercard M/Chip, UnionPay qPBOC,
//!   expired, PIN-demanding, pulled away) computing real ARQCs, and the issuer-side
//!   [`card::verify_arqc`] / [`card::arpc`] for the host.
//! - `certified.rs`: [`certified::SimCertifiedKernel`], a simulated device kernel (the
//!   `smartpos_emv::certified::CertifiedKernel` a smart POS app wraps) with the Visa,
//!   Mastercard and UnionPay test cards inserted, tapped or swiped: chip reads with the cards'
//!   ARQCs, the second GENERATE AC (TC/AAC) after the host's answer, issuer scripts, chip
//!   failure and fallback, PIN; and [`certified::verify_final_cryptogram`] for the host.
//! - `reader.rs`: the mPOS reader simulator ([`reader::SimReader`]) speaking the
//!   `smartpos_reader` link protocol around a [`reader::CardSlot`], the seeded
//!   [`reader::LossyChannel`] (drop, duplicate, corrupt, delay chunks) and
//!   [`reader::SimLink`], which runs a terminal engine against the reader on virtual time.
//! - `fault.rs`: the transport fault plan (`drop:0.1`, `delay:2s:0.5`, ...), parsed from CLI
//!   strings, and the seeded per-request fault picker.

pub mod acquirer;
pub mod card;
pub mod certified;
pub mod emv_params;
pub mod fault;
pub mod keys;
pub mod net;
pub mod reader;
pub mod reconcile;
