//! Operators (收银员 / 主管) as on Chinese smart-POS terminals, sans-IO.
//!
//! - Supervisor `"00"` (主管) and cashiers `"01"`..`"99"` (收银员). A fresh supervisor has the
//!   password `123456`, a new cashier `0000`; both must change it at first use
//!   ([`LoginResult::MustChangePassword`]: no [`Session`] until [`Operators::change_password`]
//!   succeeds). A supervisor reset puts a cashier back on `0000`, again with a forced change.
//! - Passwords are digits only: cashier 4..=8 digits, supervisor 6..=12 digits; a new password must
//!   differ from the old one and from the role's default, and may not be one repeated digit
//!   (`0000`) or a straight run (`1234`, `987654`). See [`check_password_rules`].
//! - Stored as PBKDF2-HMAC-SHA256 ([`OperatorConfig::iterations`], default 100 000) with the
//!   per-terminal salt (16+ bytes, passed in) followed by the operator id; verified by `ring` in
//!   constant time. Passwords in memory live in [`Password`] (zeroized on drop, masked Debug).
//! - Lockout after [`OperatorConfig::max_failed_attempts`] wrong passwords in a row (default 5).
//!   Only the supervisor unlocks or resets a cashier. A locked (or forgotten) supervisor is
//!   recovered with a service-desk unlock code, see [`unlock_challenge`].
//!
//! Every operation returns an [`Audited`] value: the result, the [`AuditEntry`] rows for the
//! journal's audit table (including failures), and the [`RecordChange`]s to persist; the runtime
//! writes both in one transaction. No clock, no RNG: time and nonces are passed in.
//!
//! [`policy`] (`policy.rs`): the refund policy checked before the card is asked for (window,
//! remainder, fee, limits, supervisor, same card) and the keyed card token.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use ring::{hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use smartpos_diagnosis::{Category, Diagnosis, MoneyState, Retry, Text};

pub mod policy;

/// The supervisor's operator id.
pub const SUPERVISOR_ID: &str = "00";
/// A new (or reset) cashier's password.
pub const DEFAULT_CASHIER_PASSWORD: &str = "0000";
/// A fresh (or service-desk reset) supervisor's password.
pub const DEFAULT_SUPERVISOR_PASSWORD: &str = "123456";
/// Shortest accepted per-terminal salt.
pub const MIN_SALT_LEN: usize = 16;
/// Digits of an unlock challenge and of an unlock code.
pub const UNLOCK_DIGITS: usize = 8;

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorConfig {
    /// PBKDF2 iterations (default 100 000; tests use fewer). Changing it invalidates stored hashes.
    pub iterations: u32,
    /// Wrong passwords in a row before the operator is locked (default 5; at least 1).
    pub max_failed_attempts: u32,
    /// How long an unlock challenge stays valid, ms (default 10 minutes).
    pub unlock_challenge_ttl_ms: i64,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            iterations: 100_000,
            max_failed_attempts: 5,
            unlock_challenge_ttl_ms: 10 * 60 * 1000,
        }
    }
}

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 主管: manages cashiers, approves refunds.
    Supervisor,
    /// 收银员.
    Cashier,
}

impl Role {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
            Role::Cashier => "cashier",
        }
    }

    /// The role's default password.
    pub fn default_password(self) -> &'static str {
        match self {
            Role::Supervisor => DEFAULT_SUPERVISOR_PASSWORD,
            Role::Cashier => DEFAULT_CASHIER_PASSWORD,
        }
    }

    /// Accepted password lengths (digits).
    pub fn password_len(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Role::Supervisor => 6..=12,
            Role::Cashier => 4..=8,
        }
    }
}

/// A password typed by an operator: zeroized on drop, never shown by Debug.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Password {
        Password(Zeroizing::new(p.into()))
    }

    /// The clear text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// One operator as the runtime persists it. Debug hides the hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    /// `"00"` (supervisor) or `"01"`..`"99"`.
    pub id: String,
    /// Role (follows from the id).
    pub role: Role,
    /// PBKDF2-HMAC-SHA256 of the password (salt: terminal salt ‖ id).
    pub hash: [u8; 32],
    /// The password must be changed before any other work.
    pub must_change: bool,
    /// Wrong passwords in a row.
    pub failed_attempts: u32,
    /// Locked after too many wrong passwords.
    pub locked: bool,
    /// Unix ms of creation.
    pub created_ms: i64,
    /// Unix ms of the last password change or reset.
    pub changed_ms: i64,
}

impl fmt::Debug for OperatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("hash", &"<redacted>")
            .field("must_change", &self.must_change)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked", &self.locked)
            .field("created_ms", &self.created_ms)
            .field("changed_ms", &self.changed_ms)
            .finish()
    }
}

/// A logged-in operator, held by the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Operator id.
    pub operator: String,
    /// Role.
    pub role: Role,
    /// Unix ms of login.
    pub since_ms: i64,
}

/// What a correct password leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in.
    LoggedIn(Session),
    /// The password is right but must be changed first: call [`Operators::change_password`],
    /// which returns the session.
    MustChangePassword {
        /// Operator id.
        operator: String,
    },
}

/// One row for the journal's audit table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix ms.
    pub at_ms: i64,
    /// The operator who acted (or tried to), e.g. `"00"` resetting a cashier.
    pub operator: String,
    /// `login`, `login_failed`, `logout`, `lock`, `unlock`, `unlock_failed`, `password_change`,
    /// `reset`, `create`, `delete`, `approve`, `approve_failed`, `denied`.
    pub action: &'static str,
    /// Words for the audit trail (target operator, reason); never a password or hash.
    pub detail: String,
}

/// A persistence change for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// Insert or replace this row.
    Upsert(OperatorRecord),
    /// Delete the row with this id.
    Delete(String),
}

/// The outcome of an operation plus what to write: audit rows and record changes (both also on
/// failure, e.g. `login_failed` and the raised failure counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited<T> {
    /// The result.
    pub result: Result<T, OperatorError>,
    /// Audit rows, in order.
    pub audit: Vec<AuditEntry>,
    /// Rows to persist.
    pub changes: Vec<RecordChange>,
}

/// Which password rule a new password breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PasswordRule {
    /// Only digits are allowed.
    DigitsOnly,
    /// Length out of the role's range.
    Length {
        /// Shortest.
        min: usize,
        /// Longest.
        max: usize,
    },
    /// The same as the old password.
    SameAsOld,
    /// The role's default password.
    IsDefault,
    /// One repeated digit or a straight run.
    TooSimple,
}

/// Why an operator operation failed. Never contains a password or a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The per-terminal salt is too short.
    #[error("salt of {got} bytes is shorter than {min}")]
    SaltTooShort {
        /// Minimum.
        min: usize,
        /// Given.
        got: usize,
    },
    /// The configuration is unusable.
    #[error("invalid operator configuration: {reason}")]
    InvalidConfig {
        /// Why.
        reason: &'static str,
    },
    /// The id is not `"00"`..`"99"`.
    #[error("invalid operator id")]
    InvalidId,
    /// No operator with this id.
    #[error("no operator {id}")]
    UnknownOperator {
        /// The id.
        id: String,
    },
    /// Wrong password.
    #[error("wrong password ({remaining_attempts} attempt(s) left)")]
    WrongPassword {
        /// Attempts left before the lock.
        remaining_attempts: u32,
    },
    /// The operator is locked.
    #[error("operator {id} is locked")]
    Locked {
        /// The id.
        id: String,
    },
    /// The operator must change the password first.
    #[error("operator {id} must change the password first")]
    MustChangePassword {
        /// The id.
        id: String,
    },
    /// Nobody is logged in.
    #[error("no operator logged in")]
    NotLoggedIn,
    /// Only the supervisor may do this.
    #[error("supervisor required")]
    SupervisorRequired,
    /// The session no longer matches the store (deleted, locked, role changed).
    #[error("session is no longer valid")]
    SessionInvalid,
    /// The new password breaks a rule.
    #[error("new password rejected: {rule:?}")]
    WeakPassword {
        /// The rule.
        rule: PasswordRule,
    },
    /// The operator already exists.
    #[error("operator {id} already exists")]
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// The supervisor cannot be deleted.
    #[error("the supervisor cannot be deleted")]
    CannotDeleteSupervisor,
    /// The unlock challenge is too old (or from another terminal).
    #[error("unlock challenge expired")]
    ChallengeExpired,
    /// The unlock code is wrong.
    #[error("wrong unlock code")]
    WrongUnlockCode,
}

/// Checks `session` for a command: someone must be logged in, and the supervisor when
/// `needs_supervisor`. The store check ([`Operators::require`]) adds lock/deletion checks.
pub fn require_operator(
    session: Option<&Session>,
    needs_supervisor: bool,
) -> Result<(), OperatorError> {
    let s = session.ok_or(OperatorError::NotLoggedIn)?;
    if needs_supervisor && s.role != Role::Supervisor {
        return Err(OperatorError::SupervisorRequired);
    }
    Ok(())
}

/// The role an id has, or `InvalidId`: `"00"` supervisor, `"01"`..`"99"` cashier.
pub fn role_of(id: &str) -> Result<Role, OperatorError> {
    let b = id.as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_digit) {
        return Err(OperatorError::InvalidId);
    }
    Ok(if id == SUPERVISOR_ID {
        Role::Supervisor
    } else {
        Role::Cashier
    })
}

/// Checks a new password against the role's rules (see the module doc).
pub fn check_password_rules(role: Role, old: &str, new: &str) -> Result<(), OperatorError> {
    let weak = |rule| Err(OperatorError::WeakPassword { rule });
    let b = new.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return weak(PasswordRule::DigitsOnly);
    }
    let len = role.password_len();
    if !len.contains(&b.len()) {
        return weak(PasswordRule::Length {
            min: *len.start(),
            max: *len.end(),
        });
    }
    if bool::from(new.as_bytes().ct_eq(old.as_bytes())) {
        return weak(PasswordRule::SameAsOld);
    }
    if new == role.default_password() {
        return weak(PasswordRule::IsDefault);
    }
    let steps: Vec<i16> = b
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let all = |d: i16| steps.iter().all(|s| *s == d);
    if all(0) || all(1) || all(-1) {
        return weak(PasswordRule::TooSimple);
    }
    Ok(())
}

/// An unlock challenge shown on a locked terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The terminal id (field 41), read to the service desk with the challenge.
    pub terminal_id: String,
    /// Eight decimal digits.
    pub digits: String,
    /// Unix ms when issued (challenges expire, [`OperatorConfig::unlock_challenge_ttl_ms`]).
    pub issued_ms: i64,
}

/// Issues an unlock challenge for a locked (or forgotten) supervisor.
///
/// # Supervisor unlock flow (for the README)
///
/// 1. The terminal shows the terminal id and an 8-digit challenge: `nonce mod 10^8`, where the
///    runtime draws `nonce` from its RNG (or a persisted counter; never reuse one).
/// 2. The merchant calls the acquirer's / merchant service desk, proves who they are, and reads
///    the terminal id and the challenge.
/// 3. The desk computes the code with the secret it shares with this terminal (provisioned with
///    the terminal's keys): `HMAC-SHA256(secret, terminal_id ‖ challenge)` over the ASCII bytes,
///    written as upper-case hex; the code is the first 8 decimal digits (`0`-`9`) of that hex
///    string, in order (if fewer than 8, the letters `A`-`F` that follow are read as `0`-`5`,
///    in order). See [`unlock_code`]. Python:
///    `h = hmac.new(secret, (tid + ch).encode(), hashlib.sha256).hexdigest().upper()`,
///    `"".join([c for c in h if c.isdigit()])[:8]`.
/// 4. The merchant types the code; [`Operators::unlock_supervisor`] checks it (constant time)
///    and the challenge's age, unlocks `"00"`, and resets its password to `123456` with a
///    forced change. Both success and failure are audited. Issue a fresh challenge after a few
///    wrong codes.
pub fn unlock_challenge(terminal_id: &str, nonce: u64, now_ms: i64) -> Challenge {
    Challenge {
        terminal_id: terminal_id.to_owned(),
        digits: format!("{:08}", nonce % 100_000_000),
        issued_ms: now_ms,
    }
}

/// The unlock code for `challenge_digits` on `terminal_id` (service-desk side; see
/// [`unlock_challenge`] for the definition).
pub fn unlock_code(secret: &[u8], terminal_id: &str, challenge_digits: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(terminal_id.as_bytes());
    ctx.update(challenge_digits.as_bytes());
    let hex = smartpos_types::hex::encode(ctx.sign().as_ref());
    let digits = hex.bytes().filter(u8::is_ascii_digit);
    let letters = hex
        .bytes()
        .filter(|c| !c.is_ascii_digit())
        .map(|c| c.wrapping_sub(b'A').wrapping_add(b'0'));
    digits
        .chain(letters)
        .take(UNLOCK_DIGITS)
        .map(char::from)
        .collect()
}

/// Whether `code` is the unlock code of `challenge` (constant-time comparison). Does not check
/// the challenge's age: [`Operators::unlock_supervisor`] does.
pub fn verify_unlock_code(challenge: &Challenge, code: &str, secret: &[u8]) -> bool {
    let expected = Zeroizing::new(unlock_code(
        secret,
        &challenge.terminal_id,
        &challenge.digits,
    ));
    let code = code.trim();
    code.len() == expected.len() && bool::from(code.as_bytes().ct_eq(expected.as_bytes()))
}

/// The operators of one terminal, in memory. The runtime loads the rows with
/// [`Operators::from_records`] and persists every [`Audited::changes`].
pub struct Operators {
    salt: Zeroizing<Vec<u8>>,
    iterations: NonZeroU32,
    config: OperatorConfig,
    list: BTreeMap<String, OperatorRecord>,
}

impl fmt::Debug for Operators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operators")
            .field("salt", &format_args!("<{} bytes>", self.salt.len()))
            .field("config", &self.config)
            .field("list", &self.list)
            .finish()
    }
}

fn entry(
    at_ms: i64,
    operator: &str,
    action: &'static str,
    detail: impl Into<String>,
) -> AuditEntry {
    AuditEntry {
        at_ms,
        operator: operator.to_owned(),
        action,
        detail: detail.into(),
    }
}

/// Builds an [`Audited`] step by step.
struct Log {
    now: i64,
    audit: Vec<AuditEntry>,
    changes: Vec<RecordChange>,
}

impl Log {
    fn new(now: i64) -> Log {
        Log {
            now,
            audit: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn audit(&mut self, operator: &str, action: &'static str, detail: impl Into<String>) {
        self.audit.push(entry(self.now, operator, action, detail));
    }

    fn done<T>(self, result: Result<T, OperatorError>) -> Audited<T> {
        Audited {
            result,
            audit: self.audit,
            changes: self.changes,
        }
    }
}

impl Operators {
    /// An empty store (no supervisor yet: call [`Operators::ensure_supervisor`]).
    pub fn new(salt: &[u8], config: OperatorConfig) -> Result<Operators, OperatorError> {
        Operators::from_records(salt, config, Vec::new())
    }

    /// A store holding persisted rows. Rows with an invalid id are dropped (logged).
    pub fn from_records(
        salt: &[u8],
        config: OperatorConfig,
        records: Vec<OperatorRecord>,
    ) -> Result<Operators, OperatorError> {
        if salt.len() < MIN_SALT_LEN {
            return Err(OperatorError::SaltTooShort {
                min: MIN_SALT_LEN,
                got: salt.len(),
            });
        }
        let iterations =
            NonZeroU32::new(config.iterations).ok_or(OperatorError::InvalidConfig {
                reason: "iterations must be at least 1",
            })?;
        if config.max_failed_attempts == 0 {
            return Err(OperatorError::InvalidConfig {
                reason: "max_failed_attempts must be at least 1",
            });
        }
        let mut list = BTreeMap::new();
        for mut r in records {
            match role_of(&r.id) {
                Ok(role) => {
                    r.role = role;
                    list.insert(r.id.clone(), r);
                }
                Err(_) => log::warn!("dropping operator row with an invalid id"),
            }
        }
        Ok(Operators {
            salt: Zeroizing::new(salt.to_vec()),
            iterations,
            config,
            list,
        })
    }

    /// The operator with `id`.
    pub fn get(&self, id: &str) -> Option<&OperatorRecord> {
        self.list.get(id)
    }

    /// All operators, by id.
    pub fn records(&self) -> impl Iterator<Item = &OperatorRecord> {
        self.list.values()
    }

    fn hash(&self, id: &str, password: &str) -> [u8; 32] {
        let mut salt = Vec::with_capacity(self.salt.len() + id.len());
        salt.extend_from_slice(&self.salt);
        salt.extend_from_slice(id.as_bytes());
        let mut out = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }

    fn verify(&self, r: &OperatorRecord, password: &str) -> bool {
        let mut salt = Vec::with_capacity(self.salt.len() + r.id.len());
        salt.extend_from_slice(&self.salt);
        salt.extend_from_slice(r.id.as_bytes());
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &salt,
            password.as_bytes(),
            &r.hash,
        )
        .is_ok()
    }

    fn new_record(&self, id: &str, role: Role, now: i64) -> OperatorRecord {
        OperatorRecord {
            id: id.to_owned(),
            role,
            hash: self.hash(id, role.default_password()),
            must_change: true,
            failed_attempts: 0,
            locked: false,
            created_ms: now,
            changed_ms: now,
        }
    }

    fn store(&mut self, log: &mut Log, r: OperatorRecord) {
        log.changes.push(RecordChange::Upsert(r.clone()));
        self.list.insert(r.id.clone(), r);
    }

    /// Creates the supervisor `"00"` with the default password (forced change) if missing;
    /// `Ok(true)` when it was created. Call on every open.
    pub fn ensure_supervisor(&mut self, now_ms: i64) -> Audited<bool> {
        let mut log = Log::new(now_ms);
        if self.list.contains_key(SUPERVISOR_ID) {
            return log.done(Ok(false));
        }
        let r = self.new_record(SUPERVISOR_ID, Role::Supervisor, now_ms);
        self.store(&mut log, r);
        log.audit(
            SUPERVISOR_ID,
            "create",
            "supervisor 00 created with the default password",
        );
        log.done(Ok(true))
    }

    /// Checks a password, counting failures and locking; audits `login_failed`/`lock` under
    /// `action_failed`. Returns the (updated) record on success.
    fn check_password(
        &mut self,
        log: &mut Log,
        id: &str,
        password: &str,
        action_failed: &'static str,
    ) -> Result<OperatorRecord, OperatorError> {
        if role_of(id).is_err() {
            log.audit(id_for_log(id), action_failed, "invalid operator id");
            return Err(OperatorError::InvalidId);
        }
        let Some(rec) = self.list.get(id).cloned() else {
            log.audit(id, action_failed, "unknown operator");
            return Err(OperatorError::UnknownOperator { id: id.to_owned() });
        };
        if rec.locked {
            log.audit(id, action_failed, "operator is locked");
            return Err(OperatorError::Locked { id: id.to_owned() });
        }
        let mut rec = rec;
        if !self.verify(&rec, password) {
            rec.failed_attempts = rec.failed_attempts.saturating_add(1);
            let max = self.config.max_failed_attempts;
            log.audit(
                id,
                action_failed,
                format!("wrong password ({}/{max})", rec.failed_attempts),
            );
            let err = if rec.failed_attempts >= max {
                rec.locked = true;
                log.audit(id, "lock", format!("locked after {max} wrong passwords"));
                OperatorError::Locked { id: id.to_owned() }
            } else {
                OperatorError::WrongPassword {
                    remaining_attempts: max - rec.failed_attempts,
                }
            };
            self.store(log, rec);
            return Err(err);
        }
        if rec.failed_attempts != 0 {
            rec.failed_attempts = 0;
            self.store(log, rec.clone());
        }
        Ok(rec)
    }

    /// Logs in. A wrong password raises the failure counter (locking at the limit); a right one
    /// resets it. With a pending forced change the result is
    /// [`LoginResult::MustChangePassword`] and no session.
    pub fn login(&mut self, id: &str, password: &Password, now_ms: i64) -> Audited<LoginResult> {
        let mut log = Log::new(now_ms);
        let result = self
            .check_password(&mut log, id, password.expose(), "login_failed")
            .map(|rec| {
                if rec.must_change {
                    log.audit(id, "login", "password change required");
                    LoginResult::MustChangePassword {
                        operator: id.to_owned(),
                    }
                } else {
                    log.audit(id, "login", rec.role.as_str());
                    LoginResult::LoggedIn(Session {
                        operator: id.to_owned(),
                        role: rec.role,
                        since_ms: now_ms,
                    })
                }
            });
        log.done(result)
    }

    /// Logs out (audit only).
    pub fn logout(&self, session: &Session, now_ms: i64) -> AuditEntry {
        entry(now_ms, &session.operator, "logout", session.role.as_str())
    }

    /// Changes a password (the forced first change, or any later one) after checking the old
    /// one (a wrong old password counts as a failed login). Returns a logged-in session.
    pub fn change_password(
        &mut self,
        id: &str,
        old: &Password,
        new: &Password,
        now_ms: i64,
    ) -> Audited<Session> {
        let mut log = Log::new(now_ms);
        let result = (|| {
            let mut rec = self.check_password(&mut log, id, old.expose(), "login_failed")?;
            if let Err(e) = check_password_rules(rec.role, old.expose(), new.expose()) {
                log.audit(
                    id,
                    "password_change",
                    "rejected: new password breaks a rule",
                );
                return Err(e);
            }
            rec.hash = self.hash(id, new.expose());
            rec.must_change = false;
            rec.changed_ms = now_ms;
            let role = rec.role;
            self.store(&mut log, rec);
            log.audit(id, "password_change", "changed");
            Ok(Session {
                operator: id.to_owned(),
                role,
                since_ms: now_ms,
            })
        })();
        log.done(result)
    }

    /// Checks a session against the store: it must exist, not be locked or pending a forced
    /// change, keep its role, and be the supervisor when `needs_supervisor`.
    pub fn require(
        &self,
        session: Option<&Session>,
        needs_supervisor: bool,
    ) -> Result<(), OperatorError> {
        require_operator(session, needs_supervisor)?;
        let s = session.ok_or(OperatorError::NotLoggedIn)?;
        let rec = self
            .list
            .get(&s.operator)
            .ok_or(OperatorError::SessionInvalid)?;
        if rec.locked {
            return Err(OperatorError::Locked { id: rec.id.clone() });
        }
        if rec.must_change {
            return Err(OperatorError::MustChangePassword { id: rec.id.clone() });
        }
        if rec.role != s.role {
            return Err(OperatorError::SessionInvalid);
        }
        Ok(())
    }

    /// Supervisor-only guard that audits a denial.
    fn supervisor_guard(&self, log: &mut Log, by: &Session, action: &str, target: &str) -> bool {
        match self.require(Some(by), true) {
            Ok(()) => true,
            Err(_) => {
                log.audit(
                    &by.operator,
                    "denied",
                    format!("{action} {target}: supervisor required"),
                );
                false
            }
        }
    }

    /// Creates cashier `id` (`"01"`..`"99"`) with the default password and a forced change.
    pub fn create_cashier(&mut self, by: &Session, id: &str, now_ms: i64) -> Audited<()> {
        let mut log = Log::new(now_ms);
        if !self.supervisor_guard(&mut log, by, "create", id_for_log(id)) {
            return log.done(Err(OperatorError::SupervisorRequired));
        }
        match role_of(id) {
            Ok(Role::Cashier) => {}
            _ => return log.done(Err(OperatorError::InvalidId)),
        }
        if self.list.contains_key(id) {
            return log.done(Err(OperatorError::AlreadyExists { id: id.to_owned() }));
        }
        let r = self.new_record(id, Role::Cashier, now_ms);
        self.store(&mut log, r);
        log.audit(&by.operator, "create", format!("cashier {id}"));
        log.done(Ok(()))
    }

    /// Deletes cashier `id` (the supervisor cannot be deleted).
    pub fn delete(&mut self, by: &Session, id: &str, now_ms: i64) -> Audited<()> {
        let mut log = Log::new(now_ms);
        if !self.supervisor_guard(&mut log, by, "delete", id_for_log(id)) {
            return log.done(Err(OperatorError::SupervisorRequired));
        }
        if id == SUPERVISOR_ID {
            return log.done(Err(OperatorError::CannotDeleteSupervisor));
        }
        if self.list.remove(id).is_none() {
            return log.done(Err(OperatorError::UnknownOperator {
                id: id_for_log(id).to_owned(),
            }));
        }
        log.changes.push(RecordChange::Delete(id.to_owned()));
        log.audit(&by.operator, "delete", format!("cashier {id}"));
        log.done(Ok(()))
    }

    fn cashier_mut(&self, id: &str) -> Result<OperatorRecord, OperatorError> {
        match role_of(id)? {
            Role::Supervisor => Err(OperatorError::SupervisorRequired),
            Role::Cashier => self
                .list
                .get(id)
                .cloned()
                .ok_or(OperatorError::UnknownOperator { id: id.to_owned() }),
        }
    }

    /// Unlocks cashier `id` (clears the lock and the failure counter; the password stays).
    /// Supervisor only; the supervisor itself is unlocked with [`Operators::unlock_supervisor`].
    pub fn unlock(&mut self, by: &Session, id: &str, now_ms: i64) -> Audited<()> {
        let mut log = Log::new(now_ms);
        if !self.supervisor_guard(&mut log, by, "unlock", id_for_log(id)) {
            return log.done(Err(OperatorError::SupervisorRequired));
        }
        let mut rec = match self.cashier_mut(id) {
            Ok(r) => r,
            Err(e) => return log.done(Err(e)),
        };
        let was = rec.locked;
        rec.locked = false;
        rec.failed_attempts = 0;
        self.store(&mut log, rec);
        let detail = if was {
            format!("cashier {id} unlocked")
        } else {
            format!("cashier {id} was not locked")
        };
        log.audit(&by.operator, "unlock", detail);
        log.done(Ok(()))
    }

    /// Resets cashier `id` to the default password with a forced change, and unlocks it.
    /// Supervisor only.
    pub fn reset_password(&mut self, by: &Session, id: &str, now_ms: i64) -> Audited<()> {
        let mut log = Log::new(now_ms);
        if !self.supervisor_guard(&mut log, by, "reset", id_for_log(id)) {
            return log.done(Err(OperatorError::SupervisorRequired));
        }
        let mut rec = match self.cashier_mut(id) {
            Ok(r) => r,
            Err(e) => return log.done(Err(e)),
        };
        let was_locked = rec.locked;
        rec.hash = self.hash(id, Role::Cashier.default_password());
        rec.must_change = true;
        rec.locked = false;
        rec.failed_attempts = 0;
        rec.changed_ms = now_ms;
        self.store(&mut log, rec);
        if was_locked {
            log.audit(
                &by.operator,
                "unlock",
                format!("cashier {id} unlocked by reset"),
            );
        }
        log.audit(
            &by.operator,
            "reset",
            format!("cashier {id} reset to the default password"),
        );
        log.done(Ok(()))
    }

    /// Supervisor approval of one action (e.g. a refund) at a cashier's till: checks the
    /// supervisor's password (failures count toward the supervisor's lock).
    pub fn approve_as_supervisor(
        &mut self,
        password: &Password,
        reason: &str,
        now_ms: i64,
    ) -> Audited<()> {
        let mut log = Log::new(now_ms);
        let result = self
            .check_password(&mut log, SUPERVISOR_ID, password.expose(), "approve_failed")
            .and_then(|rec| {
                if rec.must_change {
                    log.audit(SUPERVISOR_ID, "approve_failed", "password change required");
                    return Err(OperatorError::MustChangePassword {
                        id: SUPERVISOR_ID.to_owned(),
                    });
                }
                log.audit(
                    SUPERVISOR_ID,
                    "approve",
                    reason.chars().take(64).collect::<String>(),
                );
                Ok(())
            });
        log.done(result)
    }

    /// Unlocks the supervisor with a service-desk code (see [`unlock_challenge`]) and resets its
    /// password to the default with a forced change.
    pub fn unlock_supervisor(
        &mut self,
        challenge: &Challenge,
        code: &str,
        secret: &[u8],
        now_ms: i64,
    ) -> Audited<()> {
        let mut log = Log::new(now_ms);
        let age = now_ms.saturating_sub(challenge.issued_ms);
        if age > self.config.unlock_challenge_ttl_ms {
            log.audit(SUPERVISOR_ID, "unlock_failed", "challenge expired");
            return log.done(Err(OperatorError::ChallengeExpired));
        }
        if !verify_unlock_code(challenge, code, secret) {
            log.audit(SUPERVISOR_ID, "unlock_failed", "wrong unlock code");
            return log.done(Err(OperatorError::WrongUnlockCode));
        }
        let mut rec = match self.list.get(SUPERVISOR_ID) {
            Some(r) => r.clone(),
            None => self.new_record(SUPERVISOR_ID, Role::Supervisor, now_ms),
        };
        rec.hash = self.hash(SUPERVISOR_ID, Role::Supervisor.default_password());
        rec.locked = false;
        rec.failed_attempts = 0;
        rec.must_change = true;
        rec.changed_ms = now_ms;
        self.store(&mut log, rec);
        log.audit(
            SUPERVISOR_ID,
            "unlock",
            "supervisor unlocked with a service-desk code",
        );
        log.audit(
            SUPERVISOR_ID,
            "reset",
            "supervisor reset to the default password",
        );
        log.done(Ok(()))
    }
}

/// An id fit for the audit log: hostile keypad input is cut to a few characters.
fn id_for_log(id: &str) -> &str {
    match id.char_indices().nth(4) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnoses.

const fn t(zh: &'static str, en: &'static str) -> Text {
    Text::new(zh, en)
}

const S_SUPERVISOR_UNLOCK: Text = t(
    "收银员请找主管解锁；主管请联系收单机构客服获取解锁码",
    "Cashier: ask the supervisor to unlock you. Supervisor: call the acquirer's service desk for an unlock code",
);
const S_LOGIN: Text = t(
    "用操作员号和密码登录",
    "Log in with your operator number and password",
);
const S_SUPERVISOR: Text = t("请主管操作", "Ask the supervisor to do it");
const S_SERVICE: Text = t("联系终端服务商", "Call the terminal service provider");

use Category as C;
use MoneyState as M;
use Retry as R;

#[rustfmt::skip]
static DIAGNOSES: &[Diagnosis] = &[
    Diagnosis::new("operators.config", C::Software, M::NotCharged, R::SafeToRetry, t("操作员设置有误", "Operator settings invalid"), t("终端的操作员设置不完整。", "The terminal's operator settings are incomplete."), &[S_SERVICE]),
    Diagnosis::new("operators.invalid_id", C::Operator, M::NotCharged, R::SafeToRetry, t("操作员号无效", "Operator number not valid"), t("主管是 00，收银员是 01 到 99。", "The supervisor is 00; cashiers are 01 to 99."), &[S_LOGIN]),
    Diagnosis::new("operators.unknown", C::Operator, M::NotCharged, R::SafeToRetry, t("操作员不存在", "No such operator"), t("这个操作员号还没有建立。", "This operator number has not been set up."), &[S_SUPERVISOR]),
    Diagnosis::new("operators.wrong_password", C::Operator, M::NotCharged, R::SafeToRetry, t("密码错误", "Wrong password"), t("密码不正确；连续输错多次会被锁定。", "The password is not right; too many wrong tries lock the operator."), &[t("重新输入密码", "Enter the password again")]),
    Diagnosis::new("operators.locked", C::Operator, M::NotCharged, R::SafeToRetry, t("操作员已锁定", "Operator locked"), t("密码连续输错次数过多，已被锁定。", "Too many wrong passwords in a row; the operator is locked."), &[S_SUPERVISOR_UNLOCK]),
    Diagnosis::new("operators.must_change", C::Operator, M::NotCharged, R::SafeToRetry, t("请先修改密码", "Change the password first"), t("首次使用或密码被重置后，必须先修改密码。", "After first use or a reset, the password must be changed first."), &[t("按提示设置新密码", "Set a new password as prompted")]),
    Diagnosis::new("operators.not_logged_in", C::Operator, M::NotCharged, R::SafeToRetry, t("请先登录", "Log in first"), t("没有操作员登录。", "No operator is logged in."), &[S_LOGIN]),
    Diagnosis::new("operators.supervisor_required", C::Operator, M::NotCharged, R::SafeToRetry, t("需要主管", "Supervisor needed"), t("只有主管可以做这个操作。", "Only the supervisor can do this."), &[S_SUPERVISOR]),
    Diagnosis::new("operators.session_invalid", C::Operator, M::NotCharged, R::SafeToRetry, t("请重新登录", "Log in again"), t("登录状态已失效（操作员被删除、锁定或修改）。", "The login is no longer valid (the operator was deleted, locked or changed)."), &[S_LOGIN]),
    Diagnosis::new("operators.weak_password", C::Operator, M::NotCharged, R::SafeToRetry, t("新密码不符合要求", "New password not accepted"), t("收银员密码为4到8位数字，主管为6到12位数字；不能与旧密码或初始密码相同，不能是同一数字或连续数字。", "Cashier passwords are 4 to 8 digits, the supervisor's 6 to 12; not the old or the initial password, not one repeated digit or a straight run."), &[t("换一个新密码", "Choose another new password")]),
    Diagnosis::new("operators.exists", C::Operator, M::NotCharged, R::DoNotRetry, t("操作员已存在", "Operator already exists"), t("这个操作员号已经在用。", "This operator number is already in use."), &[t("换一个操作员号", "Use another operator number")]),
    Diagnosis::new("operators.cannot_delete_supervisor", C::Operator, M::NotCharged, R::DoNotRetry, t("不能删除主管", "Supervisor cannot be deleted"), t("主管 00 不能删除。", "The supervisor 00 cannot be deleted."), &[t("如忘记主管密码，请联系收单机构客服", "If the supervisor password is lost, call the acquirer's service desk")]),
    Diagnosis::new("operators.challenge_expired", C::Operator, M::NotCharged, R::SafeToRetry, t("解锁码已过期", "Unlock code expired"), t("解锁挑战码已过期。", "The unlock challenge has expired."), &[t("重新生成挑战码并联系客服", "Get a new challenge and call the service desk again")]),
    Diagnosis::new("operators.wrong_unlock_code", C::Operator, M::NotCharged, R::SafeToRetry, t("解锁码错误", "Wrong unlock code"), t("输入的解锁码不正确。", "The unlock code entered is not right."), &[t("核对客服提供的解锁码后重新输入", "Check the code from the service desk and enter it again")]),
];

impl OperatorError {
    /// Stable diagnosis id (`operators.*`).
    pub fn code(&self) -> &'static str {
        match self {
            OperatorError::SaltTooShort { .. } | OperatorError::InvalidConfig { .. } => {
                "operators.config"
            }
            OperatorError::InvalidId => "operators.invalid_id",
            OperatorError::UnknownOperator { .. } => "operators.unknown",
            OperatorError::WrongPassword { .. } => "operators.wrong_password",
            OperatorError::Locked { .. } => "operators.locked",
            OperatorError::MustChangePassword { .. } => "operators.must_change",
            OperatorError::NotLoggedIn => "operators.not_logged_in",
            OperatorError::SupervisorRequired => "operators.supervisor_required",
            OperatorError::SessionInvalid => "operators.session_invalid",
            OperatorError::WeakPassword { .. } => "operators.weak_password",
            OperatorError::AlreadyExists { .. } => "operators.exists",
            OperatorError::CannotDeleteSupervisor => "operators.cannot_delete_supervisor",
            OperatorError::ChallengeExpired => "operators.challenge_expired",
            OperatorError::WrongUnlockCode => "operators.wrong_unlock_code",
        }
    }

    /// What to tell the cashier.
    pub fn diagnosis(&self) -> Diagnosis {
        let code = self.code();
        DIAGNOSES
            .iter()
            .find(|d| d.code == code)
            .unwrap_or(&DIAGNOSES[0])
            .clone()
    }
}

/// Every diagnosis of this module (for documentation and tests).
pub fn catalogue() -> Vec<Diagnosis> {
    DIAGNOSES.to_vec()
}

#[cfg(test)]
mod tests {
    /// All diagnoses: the general ones, policy and operators (their ids share one namespace).
    fn crate_catalogue() -> Vec<Diagnosis> {
        let mut all = smartpos_diagnosis::catalogue();
        all.extend(crate::policy::catalogue());
        all.extend(crate::catalogue());
        all
    }

    #[test]
    fn every_entry_is_complete_in_both_languages() {
        let all = crate_catalogue();
        assert!(all.len() > 100, "catalogue has {} entries", all.len());
        for d in &all {
            smartpos_diagnosis::tests_support::assert_complete(d);
        }
    }

    #[test]
    fn codes_are_unique_across_the_crate() {
        let mut seen = std::collections::BTreeSet::new();
        for d in crate_catalogue() {
            assert!(seen.insert(d.code), "duplicate diagnosis id {}", d.code);
        }
    }

    use super::*;
    use smartpos_types::hex;

    const SALT: &[u8] = b"terminal-salt-0123456789";
    const SECRET: &[u8] = b"service-desk-secret-0001";

    fn cfg() -> OperatorConfig {
        OperatorConfig {
            iterations: 10,
            max_failed_attempts: 5,
            ..OperatorConfig::default()
        }
    }

    fn pw(s: &str) -> Password {
        Password::new(s)
    }

    /// A store with the supervisor set up (password 246810) and cashier 01 created (still on
    /// the default password).
    fn store() -> (Operators, Session) {
        let mut ops = Operators::new(SALT, cfg()).unwrap();
        assert_eq!(ops.ensure_supervisor(1).result, Ok(true));
        let sup = ops
            .change_password("00", &pw("123456"), &pw("246810"), 2)
            .result
            .unwrap();
        assert_eq!(ops.create_cashier(&sup, "01", 3).result, Ok(()));
        (ops, sup)
    }

    fn actions(a: &[AuditEntry]) -> Vec<&'static str> {
        a.iter().map(|e| e.action).collect()
    }

    #[test]
    fn pbkdf2_matches_an_independent_implementation() {
        // Python: hashlib.pbkdf2_hmac('sha256', b"0000", bytes(range(16)) + b"01", 10)
        let salt: Vec<u8> = (0u8..16).collect();
        let ops = Operators::new(&salt, cfg()).unwrap();
        assert_eq!(
            hex::encode(&ops.hash("01", "0000")),
            "D42425669D6B89FBE065C5FF42FC8C2D5DBE7AB969231A3D0AED5C1D91D31D94"
        );
    }

    #[test]
    fn default_passwords_and_forced_change() {
        let mut ops = Operators::new(SALT, cfg()).unwrap();
        let created = ops.ensure_supervisor(10);
        assert_eq!(actions(&created.audit), ["create"]);
        assert_eq!(created.changes.len(), 1);
        assert_eq!(ops.ensure_supervisor(11).result, Ok(false));

        let login = ops.login("00", &pw("123456"), 12);
        assert_eq!(
            login.result,
            Ok(LoginResult::MustChangePassword {
                operator: "00".into()
            })
        );
        assert_eq!(actions(&login.audit), ["login"]);
        // A session forged before the change is refused by the store.
        let forged = Session {
            operator: "00".into(),
            role: Role::Supervisor,
            since_ms: 12,
        };
        assert_eq!(
            ops.require(Some(&forged), false),
            Err(OperatorError::MustChangePassword { id: "00".into() })
        );
        // The default and the old password are refused as new ones.
        let same = ops.change_password("00", &pw("123456"), &pw("123456"), 13);
        assert_eq!(
            same.result,
            Err(OperatorError::WeakPassword {
                rule: PasswordRule::SameAsOld
            })
        );
        let sup = ops.change_password("00", &pw("123456"), &pw("246810"), 14);
        assert_eq!(actions(&sup.audit), ["password_change"]);
        let sup = sup.result.unwrap();
        assert_eq!(sup.role, Role::Supervisor);
        assert_eq!(ops.require(Some(&sup), true), Ok(()));
        assert!(!ops.get("00").unwrap().must_change);

        // New cashier: 0000 and a forced change.
        assert_eq!(ops.create_cashier(&sup, "01", 15).result, Ok(()));
        assert_eq!(
            ops.login("01", &pw("0000"), 16).result,
            Ok(LoginResult::MustChangePassword {
                operator: "01".into()
            })
        );
        let s = ops
            .change_password("01", &pw("0000"), &pw("5820"), 17)
            .result
            .unwrap();
        assert_eq!(ops.require(Some(&s), false), Ok(()));
        assert_eq!(
            ops.require(Some(&s), true),
            Err(OperatorError::SupervisorRequired)
        );
        assert!(matches!(
            ops.login("01", &pw("5820"), 18).result,
            Ok(LoginResult::LoggedIn(Session { ref operator, role: Role::Cashier, since_ms: 18 })) if operator == "01"
        ));
        assert_eq!(ops.logout(&s, 19).action, "logout");
    }

    #[test]
    fn password_rules() {
        use PasswordRule::*;
        let rule = |role, new: &str| match check_password_rules(role, "0000", new) {
            Ok(()) => None,
            Err(OperatorError::WeakPassword { rule }) => Some(rule),
            Err(_) => Some(TooSimple),
        };
        assert_eq!(rule(Role::Cashier, "5820"), None);
        assert_eq!(rule(Role::Cashier, "58209134"), None);
        assert_eq!(rule(Role::Cashier, "582"), Some(Length { min: 4, max: 8 }));
        assert_eq!(
            rule(Role::Cashier, "582091345"),
            Some(Length { min: 4, max: 8 })
        );
        assert_eq!(rule(Role::Cashier, "58a0"), Some(DigitsOnly));
        assert_eq!(rule(Role::Cashier, "５８２０"), Some(DigitsOnly));
        assert_eq!(rule(Role::Cashier, "0000"), Some(SameAsOld));
        assert_eq!(rule(Role::Cashier, "7777"), Some(TooSimple));
        assert_eq!(rule(Role::Cashier, "1234"), Some(TooSimple));
        assert_eq!(rule(Role::Cashier, "4321"), Some(TooSimple));
        assert_eq!(
            rule(Role::Supervisor, "58209"),
            Some(Length { min: 6, max: 12 })
        );
        assert_eq!(rule(Role::Supervisor, "123456"), Some(IsDefault));
        assert_eq!(rule(Role::Supervisor, "582091345678"), None);
    }

    #[test]
    fn lockout_after_n_wrong_passwords() {
        let (mut ops, _) = store();
        ops.change_password("01", &pw("0000"), &pw("5820"), 20)
            .result
            .unwrap();
        for i in 1..=4u32 {
            let r = ops.login("01", &pw("9999"), 20 + i64::from(i));
            assert_eq!(
                r.result,
                Err(OperatorError::WrongPassword {
                    remaining_attempts: 5 - i
                })
            );
            assert_eq!(actions(&r.audit), ["login_failed"]);
            assert_eq!(r.changes.len(), 1, "the failure counter is persisted");
        }
        let fifth = ops.login("01", &pw("9999"), 30);
        assert_eq!(fifth.result, Err(OperatorError::Locked { id: "01".into() }));
        assert_eq!(actions(&fifth.audit), ["login_failed", "lock"]);
        assert!(ops.get("01").unwrap().locked);
        // Locked: even the right password is refused.
        let right = ops.login("01", &pw("5820"), 31);
        assert_eq!(right.result, Err(OperatorError::Locked { id: "01".into() }));
        assert_eq!(actions(&right.audit), ["login_failed"]);
        // A right password before the limit resets the counter.
        let (mut ops, _) = store();
        ops.change_password("01", &pw("0000"), &pw("5820"), 40)
            .result
            .unwrap();
        for _ in 0..4 {
            let _ = ops.login("01", &pw("9999"), 41);
        }
        assert!(ops.login("01", &pw("5820"), 42).result.is_ok());
        assert_eq!(ops.get("01").unwrap().failed_attempts, 0);
        assert_eq!(
            ops.login("01", &pw("9999"), 43).result,
            Err(OperatorError::WrongPassword {
                remaining_attempts: 4
            })
        );
    }

    #[test]
    fn supervisor_unlocks_and_resets_a_cashier_but_a_cashier_cannot() {
        let (mut ops, sup) = store();
        let cashier = ops
            .change_password("01", &pw("0000"), &pw("5820"), 20)
            .result
            .unwrap();
        assert_eq!(ops.create_cashier(&sup, "02", 21).result, Ok(()));
        for _ in 0..5 {
            let _ = ops.login("02", &pw("9999"), 22);
        }
        assert!(ops.get("02").unwrap().locked);

        let denied = ops.unlock(&cashier, "02", 23);
        assert_eq!(denied.result, Err(OperatorError::SupervisorRequired));
        assert_eq!(actions(&denied.audit), ["denied"]);
        assert!(denied.changes.is_empty());
        assert!(ops.get("02").unwrap().locked);
        assert_eq!(
            ops.reset_password(&cashier, "02", 23).result,
            Err(OperatorError::SupervisorRequired)
        );
        assert_eq!(
            ops.create_cashier(&cashier, "03", 23).result,
            Err(OperatorError::SupervisorRequired)
        );
        assert_eq!(
            ops.delete(&cashier, "02", 23).result,
            Err(OperatorError::SupervisorRequired)
        );

        let unlocked = ops.unlock(&sup, "02", 24);
        assert_eq!(unlocked.result, Ok(()));
        assert_eq!(actions(&unlocked.audit), ["unlock"]);
        assert!(!ops.get("02").unwrap().locked);

        // Reset: back to 0000 with a forced change, unlocked.
        for _ in 0..5 {
            let _ = ops.login("01", &pw("1111"), 25);
        }
        let reset = ops.reset_password(&sup, "01", 26);
        assert_eq!(reset.result, Ok(()));
        assert_eq!(actions(&reset.audit), ["unlock", "reset"]);
        assert_eq!(
            ops.login("01", &pw("0000"), 27).result,
            Ok(LoginResult::MustChangePassword {
                operator: "01".into()
            })
        );
        // The old session of 01 is no longer good for work.
        assert_eq!(
            ops.require(Some(&cashier), false),
            Err(OperatorError::MustChangePassword { id: "01".into() })
        );
        // The supervisor is not unlocked or reset this way.
        assert_eq!(
            ops.unlock(&sup, "00", 28).result,
            Err(OperatorError::SupervisorRequired)
        );
    }

    #[test]
    fn create_and_delete() {
        let (mut ops, sup) = store();
        assert_eq!(
            ops.create_cashier(&sup, "01", 5).result,
            Err(OperatorError::AlreadyExists { id: "01".into() })
        );
        assert_eq!(
            ops.create_cashier(&sup, "00", 5).result,
            Err(OperatorError::InvalidId)
        );
        assert_eq!(
            ops.create_cashier(&sup, "100", 5).result,
            Err(OperatorError::InvalidId)
        );
        assert_eq!(
            ops.delete(&sup, "00", 5).result,
            Err(OperatorError::CannotDeleteSupervisor)
        );
        let del = ops.delete(&sup, "01", 6);
        assert_eq!(del.result, Ok(()));
        assert_eq!(actions(&del.audit), ["delete"]);
        assert_eq!(del.changes, vec![RecordChange::Delete("01".into())]);
        assert_eq!(
            ops.delete(&sup, "01", 7).result,
            Err(OperatorError::UnknownOperator { id: "01".into() })
        );
        assert_eq!(
            ops.login("01", &pw("0000"), 8).result,
            Err(OperatorError::UnknownOperator { id: "01".into() })
        );
        let bad = ops.login("０１", &pw("0000"), 8);
        assert_eq!(bad.result, Err(OperatorError::InvalidId));
        assert_eq!(actions(&bad.audit), ["login_failed"]);
    }

    #[test]
    fn unlock_code_matches_an_independent_implementation() {
        // Python: hmac.new(SECRET, b"12345678" + b"00424242", sha256).hexdigest().upper() =
        // 07DEB4E96EB16E136F797BE3B824C14120D90ABAC2D051516545845424A03C57 → digits 07496161.
        assert_eq!(unlock_code(SECRET, "12345678", "00424242"), "07496161");
        assert_eq!(unlock_code(SECRET, "12345678", "00424243"), "15043831");
        let ch = unlock_challenge("12345678", 7_700_424_242, 1_000);
        assert_eq!(ch.digits, "00424242");
        assert!(verify_unlock_code(&ch, "07496161", SECRET));
        assert!(verify_unlock_code(&ch, " 07496161 ", SECRET));
        assert!(!verify_unlock_code(&ch, "07496162", SECRET));
        assert!(!verify_unlock_code(&ch, "0749616", SECRET));
        assert!(!verify_unlock_code(&ch, "", SECRET));
        assert!(!verify_unlock_code(&ch, "07496161", b"another-secret"));
        let other_tid = Challenge {
            terminal_id: "12345679".into(),
            ..ch
        };
        assert!(!verify_unlock_code(&other_tid, "07496161", SECRET));
    }

    #[test]
    fn supervisor_unlock_code_flow() {
        let (mut ops, _) = store();
        for _ in 0..5 {
            let _ = ops.login("00", &pw("999999"), 10);
        }
        assert!(ops.get("00").unwrap().locked);
        let ch = unlock_challenge("12345678", 424_242, 100);
        let code = unlock_code(SECRET, &ch.terminal_id, &ch.digits);

        let wrong = ops.unlock_supervisor(&ch, "00000000", SECRET, 200);
        assert_eq!(wrong.result, Err(OperatorError::WrongUnlockCode));
        assert_eq!(actions(&wrong.audit), ["unlock_failed"]);
        assert!(ops.get("00").unwrap().locked);

        let late = ops.unlock_supervisor(&ch, &code, SECRET, 100 + 10 * 60 * 1000 + 1);
        assert_eq!(late.result, Err(OperatorError::ChallengeExpired));
        assert!(ops.get("00").unwrap().locked);

        let ok = ops.unlock_supervisor(&ch, &code, SECRET, 300);
        assert_eq!(ok.result, Ok(()));
        assert_eq!(actions(&ok.audit), ["unlock", "reset"]);
        let rec = ops.get("00").unwrap();
        assert!(!rec.locked && rec.must_change);
        assert_eq!(
            ops.login("00", &pw("123456"), 400).result,
            Ok(LoginResult::MustChangePassword {
                operator: "00".into()
            })
        );
    }

    #[test]
    fn supervisor_approval_counts_failures() {
        let (mut ops, _) = store();
        let ok = ops.approve_as_supervisor(&pw("246810"), "refund 000001000007", 5);
        assert_eq!(ok.result, Ok(()));
        assert_eq!(actions(&ok.audit), ["approve"]);
        let bad = ops.approve_as_supervisor(&pw("000000"), "refund", 6);
        assert_eq!(
            bad.result,
            Err(OperatorError::WrongPassword {
                remaining_attempts: 4
            })
        );
        assert_eq!(actions(&bad.audit), ["approve_failed"]);
    }

    #[test]
    fn require_operator_without_store() {
        assert_eq!(
            require_operator(None, false),
            Err(OperatorError::NotLoggedIn)
        );
        let c = Session {
            operator: "01".into(),
            role: Role::Cashier,
            since_ms: 0,
        };
        assert_eq!(require_operator(Some(&c), false), Ok(()));
        assert_eq!(
            require_operator(Some(&c), true),
            Err(OperatorError::SupervisorRequired)
        );
        let (ops, _) = store();
        let ghost = Session {
            operator: "42".into(),
            role: Role::Cashier,
            since_ms: 0,
        };
        assert_eq!(
            ops.require(Some(&ghost), false),
            Err(OperatorError::SessionInvalid)
        );
        let fake_sup = Session {
            operator: "01".into(),
            role: Role::Supervisor,
            since_ms: 0,
        };
        assert!(ops.require(Some(&fake_sup), true).is_err());
    }

    #[test]
    fn records_round_trip_and_hide_secrets() {
        let (ops, _) = store();
        let rows: Vec<OperatorRecord> = ops.records().cloned().collect();
        assert_eq!(rows.len(), 2);
        let dbg = format!("{:?}", rows[0]);
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&format!("{:?}", rows[0].hash)));
        assert!(!dbg.contains(&hex::encode(&rows[0].hash)));
        let store_dbg = format!("{ops:?}");
        assert!(store_dbg.contains("<24 bytes>"));
        assert!(!store_dbg.contains("terminal-salt"));
        assert_eq!(format!("{:?}", pw("246810")), "Password(***)");

        let mut reopened = Operators::from_records(SALT, cfg(), rows).unwrap();
        assert!(matches!(
            reopened.login("00", &pw("246810"), 50).result,
            Ok(LoginResult::LoggedIn(_))
        ));
        // Another terminal's salt does not verify the same hashes.
        let rows: Vec<OperatorRecord> = ops.records().cloned().collect();
        let mut other = Operators::from_records(b"another-terminal-salt!", cfg(), rows).unwrap();
        assert!(other.login("00", &pw("246810"), 50).result.is_err());
    }

    #[test]
    fn errors_never_contain_passwords() {
        let (mut ops, _) = store();
        let secret = "246810";
        let all = vec![
            ops.login("00", &pw("975318"), 1),
            ops.login("00", &pw(secret), 2),
        ];
        for a in &all {
            if let Err(e) = &a.result {
                assert!(!e.to_string().contains("975318"));
                assert!(!format!("{e:?}").contains("975318"));
            }
            for entry in &a.audit {
                assert!(!entry.detail.contains(secret) && !entry.detail.contains("975318"));
            }
        }
        let w = ops.change_password("00", &pw(secret), &pw("11111111"), 3);
        let e = w.result.unwrap_err();
        assert!(!e.to_string().contains("11111111") && !format!("{e:?}").contains("11111111"));
    }

    #[test]
    fn config_and_salt_are_checked() {
        assert_eq!(
            Operators::new(b"short", cfg()).err(),
            Some(OperatorError::SaltTooShort { min: 16, got: 5 })
        );
        let zero = OperatorConfig {
            iterations: 0,
            ..cfg()
        };
        assert!(matches!(
            Operators::new(SALT, zero).err(),
            Some(OperatorError::InvalidConfig { .. })
        ));
        let no_lock = OperatorConfig {
            max_failed_attempts: 0,
            ..cfg()
        };
        assert!(matches!(
            Operators::new(SALT, no_lock).err(),
            Some(OperatorError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn every_error_has_a_complete_diagnosis() {
        let errors = [
            OperatorError::SaltTooShort { min: 16, got: 0 },
            OperatorError::InvalidConfig { reason: "x" },
            OperatorError::InvalidId,
            OperatorError::UnknownOperator { id: "05".into() },
            OperatorError::WrongPassword {
                remaining_attempts: 1,
            },
            OperatorError::Locked { id: "01".into() },
            OperatorError::MustChangePassword { id: "01".into() },
            OperatorError::NotLoggedIn,
            OperatorError::SupervisorRequired,
            OperatorError::SessionInvalid,
            OperatorError::WeakPassword {
                rule: PasswordRule::TooSimple,
            },
            OperatorError::AlreadyExists { id: "01".into() },
            OperatorError::CannotDeleteSupervisor,
            OperatorError::ChallengeExpired,
            OperatorError::WrongUnlockCode,
        ];
        for e in &errors {
            let d = e.diagnosis();
            assert_eq!(d.code, e.code());
            smartpos_diagnosis::tests_support::assert_complete(&d);
        }
        let used: std::collections::BTreeSet<_> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(
            used.len(),
            DIAGNOSES.len(),
            "every table entry is reachable"
        );
    }
}
