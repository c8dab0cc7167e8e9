//! The facets of [`Terminal`]: its public API grouped by subject, the way matrix-rust-sdk
//! groups `Client` (`client.encryption()`, `client.sync_service()`).
//!
//! Calls that move money or decide about it stay on `Terminal` itself (`transact`, `void`,
//! `refund`, `refund_checked`, `complete`, `cancel_preauth`, `settle`, `recover`, ...). The
//! rest is reached through a facet borrowed for one call:
//!
//! - [`Terminal::operators`] → [`Operators`]: sessions, login, cashier management, supervisor
//!   unlock, refund quotes (`safety.rs`);
//! - [`Terminal::receipts`] → [`Receipts`]: the printer, receipt layout, printing and
//!   reprinting, pending prints (`runtime.rs`);
//! - [`Terminal::support`] → [`Support`]: the support bundle, why a pending item is still
//!   pending, money in doubt (`safety.rs`, `host_answers.rs`, `runtime.rs`);
//! - [`Terminal::admin`] → [`Admin`]: sign-in, sign-off, echo, EMV parameters, operator and
//!   refund settings, the supervisor's end of a reversal the host keeps refusing
//!   (`resolve_reversal`) (`runtime.rs`, `params.rs`, `settings.rs`, `safety.rs`).
//!
//! Each facet holds `&mut Terminal` (`Support`, which only reads, holds `&Terminal`) and its
//! methods take the facet by value, so a reference it returns lives as long as the terminal's
//! borrow: `let s = terminal.operators().session();`.
//! The methods themselves are implemented next to the state they use, in the files above.

use crate::runtime::Terminal;

/// Operators and sessions: [`Terminal::operators`].
#[derive(Debug)]
pub struct Operators<'a> {
    pub(crate) t: &'a mut Terminal,
}

/// Receipts and the printer: [`Terminal::receipts`].
#[derive(Debug)]
pub struct Receipts<'a> {
    pub(crate) t: &'a mut Terminal,
}

/// What support and the help desk read: [`Terminal::support`]. Read-only, so it borrows the
/// terminal shared.
#[derive(Debug, Clone, Copy)]
pub struct Support<'a> {
    pub(crate) t: &'a Terminal,
}

/// Administration with and without the host: [`Terminal::admin`].
#[derive(Debug)]
pub struct Admin<'a> {
    pub(crate) t: &'a mut Terminal,
}

impl Terminal {
    /// Operators, sessions, cashier management, supervisor unlock and refund quotes.
    pub fn operators(&mut self) -> Operators<'_> {
        Operators { t: self }
    }

    /// The printer, the receipt layout, printing and reprinting.
    pub fn receipts(&mut self) -> Receipts<'_> {
        Receipts { t: self }
    }

    /// The support bundle and why pending items are still pending.
    pub fn support(&self) -> Support<'_> {
        Support { t: self }
    }

    /// Sign-in, sign-off, echo, EMV parameters, operator and refund settings, resolving a
    /// refused reversal.
    pub fn admin(&mut self) -> Admin<'_> {
        Admin { t: self }
    }
}
