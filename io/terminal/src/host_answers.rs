//! What the host last answered to each request, and the sign-in it may ask for.
//!
//! A host that no longer knows this terminal's working keys (it restarted without them, or the
//! sign-in expired on its side) answers `97` (terminal not registered) or `A0` (MAC check
//! failed), and it cannot MAC that answer. The engine rightly gives an answer it cannot
//! authenticate no power over money: a pending reversal or advice stays pending, a sale is
//! reversed. But the answer still says what would help: a sign-in. So the runtime reads field
//! 39 of every frame from the host (MAC or not, through the support trace's decode), remembers
//! the last one per request (STAN and message class), and after a command that left something
//! undelivered signs in once and then:
//!
//! - runs the command again when nothing of it was sent (pending items blocked it:
//!   `PendingUndelivered`), so the pending items and then the sale go out under the new keys;
//! - otherwise delivers what is pending (the command's own reversal, a queued refund).
//!
//! One sign-in per command: if it fails, or the host still refuses, the command's first result
//! stands, and `recover` reports each item's last answer ([`Support::last_attempt`]).
//!
//! An answer that fails its MAC check in the security module (the engine's
//! `Event::ResponseMacFailed`) asks for the same sign-in as `A0` (issue 18 item 5): the keys on
//! the two sides differ, and new ones cure it. The sign-in then happens even when nothing stayed
//! pending. How it ended ([`SecurityRecovery`]) goes with the command's result: an outcome
//! carries it (`TxnOutcome::security`, its diagnosis says the keys were renewed), an error it
//! did not cure becomes [`TerminalError::Security`] (the keys still disagree, or the sign-in
//! failed and why), never "check the network".

use crate::facets::Support;
use crate::runtime::{Terminal, TerminalError, TxnOutcome, txn_outcome};
use smartpos_diagnosis::SecurityRecovery;
use smartpos_emv::certified::CertifiedKernel;
use smartpos_iso8583::Message;
use smartpos_txn::engine::{OpError, Outcome, TxnRequest};
use smartpos_txn::model::{PendingItem, TxnRecord};
use std::collections::{HashMap, HashSet};

/// Requests remembered at most (a long-running app sends many; only the last command's count).
const REMEMBERED: usize = 256;

/// Answers that ask for a sign-in: `97` terminal not registered (the host does not know the
/// terminal's keys), `A0` MAC check failed (the keys differ). Both per the UnionPay response
/// code table; a sign-in delivers fresh keys to both sides.
const SIGN_IN_CODES: [&str; 2] = ["97", "A0"];

/// What happened to a pending item's last delivery attempt in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastAttempt {
    /// The host answered with this response code (with or without a valid MAC) and the item
    /// stayed pending.
    Answered(String),
    /// The host answered with this response code, and the answer failed its MAC check in the
    /// security module (the keys on the two sides differ): not trusted.
    MacFailed(String),
    /// Sent, and no answer came back (timeout or connection failure).
    NoAnswer,
    /// Not sent in this session: items go out in order, and an earlier one is still pending
    /// (or no command has tried since the terminal was opened).
    NotTried,
}

/// The runtime's memory of requests and answers (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct HostAnswers {
    /// Response code of the last answer, or `None` while unanswered, per (STAN, message class)
    /// of each request sent.
    requests: HashMap<(u32, u16), Option<String>>,
    /// A `97` or `A0` arrived, or an answer failed its MAC check, during the current command.
    sign_in_asked: bool,
    /// Requests whose last answer failed its MAC check.
    bad_mac: HashSet<(u32, u16)>,
    /// An answer failed its MAC check during the current command.
    mac_failed: bool,
    /// The request of the last frame received (the one a MAC failure is about), and its
    /// response code.
    last_received: Option<(u32, u16)>,
    last_code: Option<String>,
    /// The sign-in the current command made by itself, and how it ended (`Err`: why).
    signed_in_again: Option<Result<(), SecurityRecovery>>,
    /// An answer failed its MAC check after that sign-in.
    mac_failed_after_sign_in: bool,
}

/// STAN and message class (the MTI's second digit: 2 financial, 4 reversal, ...) of a message.
fn request_key(m: &Message) -> Option<(u32, u16)> {
    let stan = m.text(11)?.parse().ok()?;
    Some((stan, m.mti.0 / 100 % 10))
}

impl HostAnswers {
    /// A new command starts: forget the previous command's sign-in request.
    pub(crate) fn begin_command(&mut self) {
        self.sign_in_asked = false;
        self.mac_failed = false;
        self.signed_in_again = None;
        self.mac_failed_after_sign_in = false;
        if self.requests.len() > REMEMBERED {
            self.requests.clear();
            self.bad_mac.clear();
        }
    }

    /// The engine found that the answer just received failed its MAC check: the keys on the
    /// two sides differ, which a sign-in cures (asked once per command, like `A0`).
    ///
    /// A `97` or `A0` without a MAC is the host asking for a sign-in in its own words (it has no
    /// key to MAC with): that answer is remembered as the host's code, not as a MAC failure.
    pub(crate) fn mac_failed(&mut self) {
        self.sign_in_asked = true;
        if self.signed_in_again.is_some() {
            self.mac_failed_after_sign_in = true;
        }
        if self
            .last_code
            .as_deref()
            .is_some_and(|c| SIGN_IN_CODES.contains(&c))
        {
            return;
        }
        self.mac_failed = true;
        if let Some(key) = self.last_received {
            self.bad_mac.insert(key);
        }
    }

    /// How the current command's own recovery from a security failure ended: `None` when it
    /// did not sign in by itself.
    pub(crate) fn security_recovery(&self) -> Option<SecurityRecovery> {
        match self.signed_in_again? {
            Err(why) => Some(why),
            Ok(()) if self.mac_failed_after_sign_in => Some(SecurityRecovery::MacStillFailing),
            Ok(()) => Some(SecurityRecovery::KeysRenewed),
        }
    }

    /// Notes a frame sent (`send`) or received (`recv`) for terminal `tid`.
    pub(crate) fn observe(&mut self, direction: &str, m: &Message, tid: &str) {
        let Some(key) = request_key(m) else { return };
        match direction {
            "send" => {
                self.requests.insert(key, None);
                self.bad_mac.remove(&key);
            }
            "recv" if m.text(41).map(str::trim_end) == Some(tid.trim_end()) => {
                self.last_received = Some(key);
                self.last_code = m.text(39).map(str::to_owned);
                self.bad_mac.remove(&key);
                let Some(code) = m.text(39) else { return };
                if SIGN_IN_CODES.contains(&code) {
                    self.sign_in_asked = true;
                }
                if let Some(slot) = self.requests.get_mut(&key) {
                    *slot = Some(code.to_owned());
                }
            }
            _ => {}
        }
    }

    /// Whether the host asked for a sign-in during this command (asked once: cleared).
    fn take_sign_in_request(&mut self) -> bool {
        std::mem::take(&mut self.sign_in_asked)
    }
}

impl Terminal {
    /// Signs in once if the host asked for it (`97`, `A0`) during the command that just ran;
    /// whether the sign-in succeeded. The operator is the logged-in one, else `01`.
    async fn sign_in_if_asked(&mut self) -> bool {
        if !self.answers.take_sign_in_request() {
            return false;
        }
        let operator = self
            .acting_operator(None)
            .ok()
            .flatten()
            .unwrap_or_else(|| "01".to_owned());
        log::info!(
            "the host asked for a sign-in (97/A0) or its answer failed the MAC check: signing in again once"
        );
        let result = self.admin().sign_in(&operator).await;
        self.answers.signed_in_again = Some(match &result {
            Ok(_) => Ok(()),
            Err(TerminalError::Op(OpError::KeyCheck | OpError::KeyBlock { .. })) => {
                Err(SecurityRecovery::SignInKeyCheck)
            }
            Err(TerminalError::Op(OpError::SecurityModule { .. })) => {
                Err(SecurityRecovery::SignInModuleFailed)
            }
            Err(_) => Err(SecurityRecovery::SignInFailed),
        });
        match result {
            Ok(_) => true,
            Err(e) => {
                log::warn!("signing in again failed: {e}");
                false
            }
        }
    }

    /// A command's result with what its own recovery from a security failure came to: an
    /// outcome notes it; an error it did not cure (the keys still disagree, or the sign-in
    /// failed) becomes [`TerminalError::Security`], which says so instead of blaming the
    /// network.
    fn with_security<T: SecurityNoted>(
        &self,
        result: Result<T, TerminalError>,
    ) -> Result<T, TerminalError> {
        let Some(recovery) = self.answers.security_recovery() else {
            return result;
        };
        match result {
            Ok(mut o) => {
                o.note_security(recovery);
                Ok(o)
            }
            Err(TerminalError::Op(cause)) if recovery != SecurityRecovery::KeysRenewed => {
                Err(TerminalError::Security { recovery, cause })
            }
            Err(e) => Err(e),
        }
    }

    fn armed_pending(&self) -> bool {
        self.engine.pending().iter().any(|p| p.armed)
    }

    /// Delivers pending items ([`Terminal::recover`]), signing in once first if the host asked.
    pub async fn recover(&mut self) -> Result<(u32, u32), TerminalError> {
        self.answers.begin_command();
        let (delivered, remaining) = self.recover_once().await?;
        if remaining == 0 || !self.sign_in_if_asked().await {
            return Ok((delivered, remaining));
        }
        let (more, remaining) = self.recover_once().await?;
        Ok((delivered + more, remaining))
    }

    /// Runs a transaction request (the caller checked its idempotency key and operator), with
    /// the certified kernel of a contact chip card if any. When the host asked for a sign-in
    /// and something stayed undelivered, signs in once, then runs the request again if it
    /// never left, or delivers what it left pending.
    pub(crate) async fn drive_txn(
        &mut self,
        req: TxnRequest,
        mut kernel: Option<&mut (dyn CertifiedKernel + '_)>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.answers.begin_command();
        let again = req.clone();
        let now = self.now();
        self.engine.start_txn(now, req);
        let first = self.drive_txn_started(kernel.as_deref_mut()).await;
        let never_sent = matches!(
            first,
            Err(TerminalError::Op(OpError::PendingUndelivered { .. }))
        );
        // A MAC failure signs in again even when nothing stayed pending: the keys differ.
        let mac_failed = self.answers.mac_failed;
        if !(never_sent || self.armed_pending() || mac_failed) || !self.sign_in_if_asked().await {
            return self.with_security(first);
        }
        if never_sent {
            let now = self.now();
            self.engine.start_txn(now, again);
            let second = self.drive_txn_started(kernel).await;
            return self.with_security(second);
        }
        if !self.armed_pending() {
            return self.with_security(first);
        }
        // The request went out and left its reversal (or a queued refund) pending: deliver it
        // now that the keys are fresh, and report the record as it then stands.
        let mut outcome = first?;
        if let Err(e) = self.recover_once().await {
            log::warn!("delivery after signing in again failed: {e}");
        }
        if let Some(record) = self.journal.txn(&outcome.record.reference)? {
            outcome.reversal_pending = self
                .engine
                .pending()
                .iter()
                .any(|p| p.reference == record.reference && p.armed);
            outcome.record = record;
        }
        self.with_security(Ok(outcome))
    }

    async fn drive_txn_started(
        &mut self,
        kernel: Option<&mut (dyn CertifiedKernel + '_)>,
    ) -> Result<TxnOutcome, TerminalError> {
        self.clear_tls_refusal();
        match self.drive_card(kernel).await {
            Ok((_, r)) => self.tls_refused(r).and_then(txn_outcome),
            Err(e) => Err(e),
        }
    }

    /// Runs a settlement of `records`; when pending items blocked it and the host asked for a
    /// sign-in, signs in once and settles again.
    pub(crate) async fn drive_settle(
        &mut self,
        records: Vec<TxnRecord>,
        operator: Option<String>,
    ) -> Result<Outcome, TerminalError> {
        self.answers.begin_command();
        let now = self.now();
        self.engine.start_settle_by(now, records, operator.clone());
        let first = self.run_admin().await;
        let never_sent = matches!(
            first,
            Err(TerminalError::Op(OpError::PendingUndelivered { .. }))
        );
        if !never_sent || !self.sign_in_if_asked().await {
            return self.with_security(first);
        }
        // The open batch again (a sign-in may move it forward to the host's).
        let records = self.journal.batch(self.engine.counters().batch)?;
        let now = self.now();
        self.engine.start_settle_by(now, records, operator);
        let second = self.run_admin().await;
        self.with_security(second)
    }
}

/// A command's successful result that can carry what its security recovery came to.
trait SecurityNoted {
    fn note_security(&mut self, recovery: SecurityRecovery);
}

impl SecurityNoted for TxnOutcome {
    fn note_security(&mut self, recovery: SecurityRecovery) {
        self.security = Some(recovery);
    }
}

impl SecurityNoted for Outcome {
    // A settlement that went through after a sign-in needs no note.
    fn note_security(&mut self, _recovery: SecurityRecovery) {}
}

impl<'a> Support<'a> {
    /// What became of `item`'s last delivery attempt in this session (why it is still
    /// pending): the host's answer, no answer, or not tried.
    pub fn last_attempt(self, item: &PendingItem) -> LastAttempt {
        let key = self
            .t
            .engine
            .config()
            .profile
            .dialect
            .unpack(&item.message)
            .ok()
            .as_ref()
            .and_then(request_key);
        let mac_failed = key.is_some_and(|k| self.t.answers.bad_mac.contains(&k));
        match key.and_then(|k| self.t.answers.requests.get(&k)) {
            Some(Some(code)) if mac_failed => LastAttempt::MacFailed(code.clone()),
            Some(Some(code)) => LastAttempt::Answered(code.clone()),
            Some(None) => LastAttempt::NoAnswer,
            None => LastAttempt::NotTried,
        }
    }

    /// The host's last response code to `item` in this session, if it answered.
    pub fn last_host_answer(self, item: &PendingItem) -> Option<String> {
        match self.t.support().last_attempt(item) {
            LastAttempt::Answered(code) | LastAttempt::MacFailed(code) => Some(code),
            _ => None,
        }
    }

    /// How the last command's own recovery from a security failure ended (a response that
    /// failed its MAC check, or the host's `A0` / `97`): `None` when it did not need to sign
    /// in again.
    pub fn last_security_recovery(self) -> Option<SecurityRecovery> {
        self.t.answers.security_recovery()
    }
}
