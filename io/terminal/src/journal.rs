//! The SQLite journal: the terminal's memory of every transaction, pending reversal and advice.
//!
//! WAL mode with `synchronous=FULL`: a commit returns only after the write-ahead log is on disk,
//! which is what "durable before sending" and "durable before returning" rest on. Each engine
//! [`Commit`] is applied in one SQLite transaction, so a crash leaves either all of it or none.
//! A card transaction's chip data (for receipts) and the support-trace lines ride in the engine's
//! commits ([`Journal::apply_traced`]), so a contactless sale writes the journal in its two
//! commits only. Such writes that come outside a commit are committed with
//! `synchronous=NORMAL`: still atomic, made durable by the next FULL commit, and without a disk
//! sync of their own (see README, Performance).
//!
//! Two tables hold card data, both sealed with AES-256-GCM under the journal key from the app's
//! secure store, with a random nonce per row: pending messages (reversals, advices: the PAN in
//! field 2), with the row's sequence number bound as associated data, and `card_on_file`, the
//! card number and expiry a transaction keeps for its voids, refunds, completions and the batch
//! upload ([`smartpos_txn::model::CardOnFile`]), with the transaction's reference bound. A
//! sealed value cannot be swapped between rows. No other column holds more than a masked PAN.
//!
//! Every money row (transactions, pending items, the card on file, counters, settlement
//! progress) carries an HMAC-SHA256 tag over its stored values under a key derived from the
//! journal key, and `chain_head` holds a sequence number and the keyed XOR of all tags,
//! rewritten in the same SQLite transaction as each money commit (ADR 0008). Open checks every
//! row and the head; every read of a money row checks it again. A record that fails is named
//! ([`Journal::tampered`]); money commits are refused from then on.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::types::{ToSql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use smartpos_txn::journal::{
    Commit, JournalOp, Restored, SettlementProgress, SettlementStep, StateUpdate,
};
use smartpos_txn::model::{
    CardOnFile, Counters, PendingItem, PendingKind, ReversalReason, TxnKind, TxnRecord, TxnState,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use thiserror::Error;
use zeroize::Zeroizing;

/// Schema version stored in `PRAGMA user_version`. Version 2: `trace` without AUTOINCREMENT,
/// `txn_original` partial (see [`MIGRATE_1_TO_2`]). Version 3: every money row carries an
/// HMAC tag and `chain_head` authenticates the set of rows (see [`Journal::tag_all`] and
/// docs/adr/0008-tamper-evident-journal.md).
const SCHEMA_VERSION: i64 = 3;

/// The first schema version whose money rows are tagged (the journal guard refuses a file of
/// an older version once it has seen a tagged one).
pub const TAGGED_SINCE_VERSION: i64 = 3;

/// Version 1 gave `trace.id` AUTOINCREMENT, which costs every money commit that carries
/// trace lines a write to `sqlite_sequence` (one more page to sync). The ids stay increasing
/// without it: SQLite takes the largest id plus one, and pruning removes only the oldest lines,
/// never the newest. The table holds a few hundred lines, so copying it is quick.
///
/// Version 1 also indexed every transaction's `original_ref`, NULL for all but refunds, voids
/// and completions: every sale's intent commit wrote a page of that index. The partial index
/// holds only the rows that name an original, and `original_ref = ?` still uses it (SQLite
/// infers `IS NOT NULL` from the equality). Building it reads the table once.
const MIGRATE_1_TO_2: &str = "
CREATE TABLE trace_v2 (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    direction TEXT NOT NULL,
    text      TEXT NOT NULL
);
INSERT INTO trace_v2 (id, at_ms, direction, text) SELECT id, at_ms, direction, text FROM trace;
DROP TABLE trace;
ALTER TABLE trace_v2 RENAME TO trace;
DELETE FROM sqlite_sequence WHERE name = 'trace';
DROP INDEX txn_original;
CREATE INDEX txn_original ON txn(original_ref) WHERE original_ref IS NOT NULL;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS txn (
    reference       TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    stan            INTEGER NOT NULL,
    batch           INTEGER NOT NULL,
    local_time      TEXT NOT NULL,
    local_date      TEXT NOT NULL,
    rrn             TEXT,
    auth_code       TEXT,
    response_code   TEXT,
    original_ref    TEXT,
    idempotency_key TEXT UNIQUE,
    operator        TEXT,
    pan_masked      TEXT,
    entry_mode      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    tag             BLOB
);
CREATE INDEX IF NOT EXISTS txn_batch ON txn(batch);
CREATE INDEX IF NOT EXISTS txn_state ON txn(state);
CREATE INDEX IF NOT EXISTS txn_original ON txn(original_ref) WHERE original_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS txn_created ON txn(created_at_ms);
CREATE TABLE IF NOT EXISTS pending (
    seq           INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    reference     TEXT NOT NULL,
    reason        TEXT,
    message       BLOB NOT NULL,
    attempts      INTEGER NOT NULL,
    armed         INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    tag           BLOB
);
CREATE TABLE IF NOT EXISTS counters (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    stan        INTEGER NOT NULL,
    batch       INTEGER NOT NULL,
    pending_seq INTEGER NOT NULL,
    tag         BLOB
);
CREATE TABLE IF NOT EXISTS settlement (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    batch INTEGER NOT NULL,
    step  TEXT NOT NULL,
    tag   BLOB
);
CREATE TABLE IF NOT EXISTS print_job (
    reference     TEXT NOT NULL,
    copy          TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    last_status   TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (reference, copy)
);
CREATE TABLE IF NOT EXISTS card_on_file (
    reference TEXT PRIMARY KEY,
    sealed    BLOB NOT NULL,
    tag       BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chain_head (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    seq    INTEGER NOT NULL,
    digest BLOB NOT NULL,
    tag    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS card_info (
    reference   TEXT PRIMARY KEY,
    aid         TEXT NOT NULL,
    label       TEXT NOT NULL,
    tvr         TEXT NOT NULL,
    tsi         TEXT NOT NULL,
    cryptogram_type TEXT NOT NULL,
    cryptogram  TEXT NOT NULL,
    cvm         TEXT NOT NULL,
    cvm_result  TEXT NOT NULL,
    in_field_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operator (
    id     TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trace (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    direction TEXT NOT NULL,
    text      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    operator TEXT,
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL
);
";

/// Journal failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JournalError {
    /// SQLite reported an error. The message says what it means for storage (a damaged file,
    /// a read-only directory, a full disk, see [`crate::storage`]); SQLite's own wording is in
    /// the inner error, for logs.
    #[error("journal storage error: {}", crate::storage::fault_text(crate::storage::sql_fault(.0)))]
    Sql(#[from] rusqlite::Error),
    /// A stored value is not what this version writes (corruption or a newer schema).
    #[error("journal holds an unreadable value in {what}")]
    Corrupt {
        /// Which column or record.
        what: &'static str,
    },
    /// The journal was written by a newer SDK.
    #[error("journal schema version {found} is newer than this SDK supports ({supported})")]
    NewerSchema {
        /// Version found.
        found: i64,
        /// Version supported.
        supported: i64,
    },
    /// A pending message could not be sealed or opened with the journal key.
    #[error("pending message could not be decrypted with the journal key")]
    Seal,
    /// The idempotency key is already used by another transaction.
    #[error("idempotency key already used")]
    DuplicateKey,
    /// Another open journal (a second terminal object, in this process or another) holds
    /// the file: two engines on one journal would hand out the same STANs and overwrite each
    /// other's records.
    #[error("the journal is already open in another terminal instance: close that one first")]
    InUse,
    /// A new transaction's reference (batch + STAN) belongs to another stored transaction.
    #[error("transaction reference {0} already belongs to another transaction")]
    ReferenceTaken(String),
    /// The lock file beside the journal (`<journal>.lock`) cannot be opened or locked.
    #[error("cannot lock the journal ({0:?})")]
    Lock(std::io::ErrorKind),
    /// A money record does not match its authentication tag, or the set of money records does
    /// not match the chain head: changed, deleted, reordered or rolled back on disk (or, for
    /// `chain_head`, the head itself). Names the record, never card data.
    #[error(
        "journal record {0} failed its authentication check: it was changed, deleted or reordered outside the SDK"
    )]
    Tampered(TamperedRecord),
}

/// The record a failed authentication check names: its table and key (a transaction's
/// reference, a pending item's sequence number, `1` for the single-row tables, or the chain
/// head's sequence number when a record is missing or an old copy of one came back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperedRecord {
    /// Table: `txn`, `pending`, `card_on_file`, `counters`, `settlement` or `chain_head`.
    pub table: &'static str,
    /// The row's key within the table.
    pub key: String,
}

impl std::fmt::Display for TamperedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.table, self.key)
    }
}

/// The exclusive lock that makes a journal file single-user: an advisory lock (`flock`) on
/// `<journal>.lock`, held for as long as the [`Journal`] lives and released by the OS when the
/// process ends, however it ends. SQLite's own locks only serialise transactions; they do not
/// stop a second engine from working on the same file.
pub(crate) struct JournalLock {
    _file: std::fs::File,
}

/// Further attempts, 10 ms apart, at a lock found busy (see [`JournalLock::acquire`]).
const LOCK_RETRIES: u32 = 20;

impl JournalLock {
    /// Takes the lock of the journal at `path`, or fails at once with
    /// [`JournalError::InUse`] when another holder has it.
    pub(crate) fn acquire(path: &Path) -> Result<JournalLock, JournalError> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let file = crate::files::owner_only_options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(std::path::PathBuf::from(name))
            .map_err(|e| JournalError::Lock(e.kind()))?;
        // A lock that was just released can still be held for a moment by a copy of its
        // descriptor: a child process that another thread forked keeps the copy until it
        // executes its program (the descriptor is close-on-exec). So a busy lock is tried a
        // few more times over 200 ms before it counts as held by another user.
        for attempt in 0..=LOCK_RETRIES {
            match file.try_lock() {
                Ok(()) => return Ok(JournalLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if attempt < LOCK_RETRIES => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::InUse),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(JournalError::Lock(e.kind()));
                }
            }
        }
        Err(JournalError::InUse)
    }
}

/// The `meta` key of the journal's identity (hex of 16 random bytes, see `guard.rs`).
pub const JOURNAL_ID_KEY: &str = "journal_id";

/// What a journal file holds, as seen without creating or changing anything (see
/// [`Journal::inspect`]). Used by the journal guard before SQLite would create a new database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalFile {
    /// No file at the path.
    Missing,
    /// A file too short to hold a SQLite header (0 to 99 bytes), or a database without the
    /// journal's tables: SQLite would open it as a new, empty journal.
    Empty,
    /// A journal database.
    Present {
        /// Its identity, when it has one (journals created before the guard have none).
        id: Option<String>,
        /// Its counters row (absent until the first STAN is used).
        counters: Option<Counters>,
        /// Whether it holds any transaction.
        has_txns: bool,
    },
}

impl JournalFile {
    /// Whether the file holds anything a terminal wrote (an identity, counters or a transaction).
    pub fn has_data(&self) -> bool {
        matches!(self, JournalFile::Present { id, counters, has_txns } if id.is_some() || counters.is_some() || *has_txns)
    }
}

/// Chip data shown on receipts. Nothing here identifies the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// Application identifier (hex).
    pub aid: String,
    /// Application label.
    pub label: String,
    /// Terminal verification results (hex).
    pub tvr: String,
    /// Transaction status information (hex).
    pub tsi: String,
    /// Cryptogram type: `ARQC`, `TC` or `AAC`.
    pub cryptogram_type: String,
    /// Cryptogram (hex).
    pub cryptogram: String,
    /// Cardholder verification: `online_pin`, `signature`, `no_cvm` or `consumer_device`.
    pub cvm: String,
    /// CVM results, tag 9F34 (hex).
    pub cvm_result: String,
    /// Card-in-field time, milliseconds.
    pub in_field_ms: u64,
}

/// The journal key (AES-256), zeroized on drop.
pub struct JournalKey(Zeroizing<[u8; 32]>);

impl JournalKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        JournalKey(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalKey(<redacted>)")
    }
}

/// The open journal.
pub struct Journal {
    conn: Connection,
    key: LessSafeKey,
    /// The tag key of money rows and the chain head, derived from the journal key
    /// ([`mac_key`]), never the AES key itself.
    mac: hmac::Key,
    /// The stored chain head, as last written or verified.
    head: Head,
    /// The first record found not matching its tag (on open, or on a read since): money
    /// commits are refused from then on, reads no longer fail on it (see
    /// [`Journal::tampered`]).
    tampered: Arc<OnceLock<TamperedRecord>>,
    /// The whole-journal check that runs after open on its own read-only connection (a file
    /// journal; an in-memory one is checked in `open`). [`Journal::tampered`] waits for it.
    check: Mutex<Option<JoinHandle<()>>>,
    /// Tells a running whole-journal check to stop (set when the journal is dropped).
    check_cancel: Arc<AtomicBool>,
    rng: SystemRandom,
    /// Whether the connection is known to be at `synchronous=FULL` (set only after the pragma
    /// succeeded), so a money commit pays for the pragma only after a relaxed write failed
    /// to restore it.
    sync_full: bool,
    /// The file's lock (none for an in-memory journal); released on drop, after the
    /// connection above is closed.
    _lock: Option<JournalLock>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

fn corrupt(what: &'static str) -> JournalError {
    JournalError::Corrupt { what }
}

/// A table of money rows, each authenticated by the HMAC tag in its `tag` column over the
/// row's stored values (see [`row_message`]). `columns` starts with the row's key.
struct Tagged {
    table: &'static str,
    key: &'static str,
    columns: &'static str,
}

const T_TXN: Tagged = Tagged {
    table: "txn",
    key: "reference",
    columns: TXN_COLUMNS,
};
const T_PENDING: Tagged = Tagged {
    table: "pending",
    key: "seq",
    columns: "seq, kind, reference, reason, message, attempts, armed, not_before_ms",
};
const T_CARD: Tagged = Tagged {
    table: "card_on_file",
    key: "reference",
    columns: "reference, sealed",
};
const T_COUNTERS: Tagged = Tagged {
    table: "counters",
    key: "id",
    columns: "id, stan, batch, pending_seq",
};
const T_SETTLEMENT: Tagged = Tagged {
    table: "settlement",
    key: "id",
    columns: "id, batch, step",
};

/// Every table whose rows move money or decide whether money may move: transactions (their
/// amounts and states), pending reversals, advices and notices, the sealed cards kept for voids
/// and refunds, the STAN, batch and pending counters, and settlement progress.
const TAGGED: [Tagged; 5] = [T_TXN, T_PENDING, T_CARD, T_COUNTERS, T_SETTLEMENT];

/// The tag key: HMAC-SHA256 under the journal key of a fixed label, so the AES-GCM key that
/// seals card data is never used as a MAC key too.
fn mac_key(key: &JournalKey) -> hmac::Key {
    let derive = hmac::Key::new(hmac::HMAC_SHA256, key.0.as_ref());
    let bytes = Zeroizing::new(
        hmac::sign(&derive, b"smartpos journal mac v1")
            .as_ref()
            .to_vec(),
    );
    hmac::Key::new(hmac::HMAC_SHA256, &bytes)
}

/// The chain head: a sequence number that grows with every money commit, and the XOR of the
/// tags of every money row. Its own tag covers both, so a deleted row, an old copy of a row or
/// an old head does not match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    seq: u64,
    digest: [u8; 32],
}

impl Head {
    fn message(&self) -> Vec<u8> {
        let mut m = b"smartpos journal head v1\0".to_vec();
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.digest);
        m
    }
}

fn write_head(conn: &Connection, mac: &hmac::Key, head: &Head) -> Result<(), JournalError> {
    let tag = hmac::sign(mac, &head.message());
    conn.prepare_cached(
        "INSERT OR REPLACE INTO chain_head (id, seq, digest, tag) VALUES (1, ?1, ?2, ?3)",
    )?
    .execute(params![
        i64::try_from(head.seq).map_err(|_| corrupt("chain_head.seq"))?,
        head.digest.as_slice(),
        tag.as_ref()
    ])?;
    Ok(())
}

fn xor_into(digest: &mut [u8; 32], tag: &[u8; 32]) {
    for (d, t) in digest.iter_mut().zip(tag) {
        *d ^= t;
    }
}

/// The bytes a row's tag covers: a label, the table name, then each stored column value
/// (all but the last column of `row`, which is the tag) as a type byte and its bytes,
/// length-prefixed where the length varies. The values are read back from SQLite, so the
/// encoding is that of what is stored, never of a Rust `Debug`.
fn row_message(table: &str, row: &Row<'_>) -> rusqlite::Result<Vec<u8>> {
    let n = row.as_ref().column_count().saturating_sub(1);
    let mut m = b"smartpos journal row v1\0".to_vec();
    let lp = |m: &mut Vec<u8>, bytes: &[u8]| {
        m.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.extend_from_slice(bytes);
    };
    lp(&mut m, table.as_bytes());
    m.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    for i in 0..n {
        match row.get_ref(i)? {
            ValueRef::Null => m.push(0),
            ValueRef::Integer(v) => {
                m.push(1);
                m.extend_from_slice(&v.to_be_bytes());
            }
            ValueRef::Real(v) => {
                m.push(2);
                m.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            ValueRef::Text(t) => {
                m.push(3);
                lp(&mut m, t);
            }
            ValueRef::Blob(b) => {
                m.push(4);
                lp(&mut m, b);
            }
        }
    }
    Ok(m)
}

/// The row's key (its first column) as text, for naming it.
fn row_key(row: &Row<'_>) -> String {
    match row.get_ref(0) {
        Ok(ValueRef::Integer(v)) => v.to_string(),
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        _ => "?".into(),
    }
}

/// Reads the chain head and checks its own tag (one row).
fn read_head(conn: &Connection, mac: &hmac::Key) -> Result<Head, JournalError> {
    let stored = conn
        .query_row(
            "SELECT seq, digest, tag FROM chain_head WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((seq, digest, tag)) = stored else {
        return Err(head_tampered("missing".into()));
    };
    let head = match (u64::try_from(seq), <[u8; 32]>::try_from(digest.as_slice())) {
        (Ok(seq), Ok(digest)) => Head { seq, digest },
        _ => return Err(head_tampered(seq.to_string())),
    };
    hmac::verify(mac, &head.message(), &tag).map_err(|_| head_tampered(seq.to_string()))?;
    Ok(head)
}

fn head_tampered(key: String) -> JournalError {
    JournalError::Tampered(TamperedRecord {
        table: "chain_head",
        key,
    })
}

/// Checks every money row against its tag and the set of rows against `head` (one read of
/// the money tables). Stops early, without a verdict, when `cancel` is set.
fn verify_rows(
    conn: &Connection,
    mac: &hmac::Key,
    head: &Head,
    cancel: &AtomicBool,
) -> Result<(), JournalError> {
    let mut digest = [0u8; 32];
    for t in &TAGGED {
        let mut stmt = conn.prepare(&format!("SELECT {}, tag FROM {}", t.columns, t.table))?;
        let mut rows = stmt.query([])?;
        let mut n = 0u32;
        while let Some(row) = rows.next()? {
            let tag = check_row(mac, t, row)?.map_err(JournalError::Tampered)?;
            xor_into(&mut digest, &tag);
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) && cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
    if digest != head.digest {
        return Err(head_tampered(head.seq.to_string()));
    }
    Ok(())
}

/// Starts the whole-journal check on its own read-only connection to `path`: the chain head
/// and every money row read in one read transaction, begun here (its first read fixes the
/// snapshot: the journal as it is at open, whatever the terminal or anyone else writes
/// meanwhile). A record that fails is noted in `found`; a check that cannot run (the file
/// unreadable) is logged, and rows stay checked as they are read.
fn spawn_check(
    path: &Path,
    mac: hmac::Key,
    found: Arc<OnceLock<TamperedRecord>>,
    cancel: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, JournalError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("BEGIN")?;
    let head = read_head(&conn, &mac);
    std::thread::Builder::new()
        .name("journal-check".into())
        .spawn(move || {
            let run = || -> Result<(), JournalError> {
                verify_rows(&conn, &mac, &head?, &cancel)?;
                conn.execute_batch("COMMIT")?;
                Ok(())
            };
            match run() {
                Ok(()) => {}
                Err(JournalError::Tampered(t)) => {
                    log::error!("journal: {t} failed its authentication check on open");
                    let _ = found.set(t);
                }
                Err(e) => log::error!("journal: the whole-journal check could not run: {e}"),
            }
        })
        .map_err(|_| corrupt("journal check thread"))
}

/// The row's stored tag when it matches the row, else the record it names. `row` is
/// `SELECT {columns}, tag`.
fn check_row(
    mac: &hmac::Key,
    t: &Tagged,
    row: &Row<'_>,
) -> rusqlite::Result<Result<[u8; 32], TamperedRecord>> {
    let n = row.as_ref().column_count().saturating_sub(1);
    let stored: Option<Vec<u8>> = match row.get_ref(n)? {
        ValueRef::Blob(b) => Some(b.to_vec()),
        _ => None,
    };
    let message = row_message(t.table, row)?;
    Ok(
        match stored.and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok()) {
            Some(tag) if hmac::verify(mac, &message, &tag).is_ok() => Ok(tag),
            _ => Err(TamperedRecord {
                table: t.table,
                key: row_key(row),
            }),
        },
    )
}

fn select_one(t: &Tagged) -> String {
    format!(
        "SELECT {}, tag FROM {} WHERE {} = ?1",
        t.columns, t.table, t.key
    )
}

/// Before a write of the row keyed `key`: its stored tag is checked and leaves `digest`
/// (nothing when there is no such row). A row that does not match fails the commit.
fn untag(
    conn: &Connection,
    mac: &hmac::Key,
    t: &Tagged,
    key: &dyn ToSql,
    digest: &mut [u8; 32],
) -> Result<(), JournalError> {
    let mut stmt = conn.prepare_cached(&select_one(t))?;
    let mut rows = stmt.query([key])?;
    if let Some(row) = rows.next()? {
        let tag = check_row(mac, t, row)?.map_err(JournalError::Tampered)?;
        xor_into(digest, &tag);
    }
    Ok(())
}

/// After a write of the row keyed `key`: the row as stored gets its new tag, which joins
/// `digest` (nothing when the write removed the row).
fn retag(
    conn: &Connection,
    mac: &hmac::Key,
    t: &Tagged,
    key: &dyn ToSql,
    digest: &mut [u8; 32],
) -> Result<(), JournalError> {
    let message = conn
        .prepare_cached(&select_one(t))?
        .query_row([key], |row| row_message(t.table, row))
        .optional()?;
    if let Some(message) = message {
        let tag = hmac::sign(mac, &message);
        conn.prepare_cached(&format!(
            "UPDATE {} SET tag = ?1 WHERE {} = ?2",
            t.table, t.key
        ))?
        .execute(params![tag.as_ref(), key])?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        xor_into(digest, &bytes);
    }
    Ok(())
}

/// Tags every money row as it stands and writes the chain head (a new journal, or the
/// migration of one written before tags: ADR 0008).
fn tag_all(conn: &Connection, mac: &hmac::Key) -> Result<Head, JournalError> {
    let mut digest = [0u8; 32];
    for t in &TAGGED {
        let keys: Vec<rusqlite::types::Value> = conn
            .prepare(&format!("SELECT {} FROM {}", t.key, t.table))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for key in &keys {
            retag(conn, mac, t, key, &mut digest)?;
        }
    }
    let head = Head { seq: 0, digest };
    write_head(conn, mac, &head)?;
    Ok(head)
}

/// The stored STAN (0 before the first message, else 1 to 999999) and batch (1 to 999999),
/// checked: the guard's arithmetic and the reference format assume these ranges, and a file
/// is not trusted to keep them.
fn checked_counters(stan: i64, batch: i64) -> Result<Counters, JournalError> {
    let stan = u32::try_from(stan)
        .ok()
        .filter(|s| *s <= 999_999)
        .ok_or(corrupt("counters.stan"))?;
    let batch = u32::try_from(batch)
        .ok()
        .filter(|b| (1..=999_999).contains(b))
        .ok_or(corrupt("counters.batch"))?;
    Ok(Counters {
        stan,
        batch,
        ..Counters::default()
    })
}

impl Drop for Journal {
    /// Stops a whole-journal check still running and waits for it, so no reader of the file
    /// outlives the journal's lock.
    fn drop(&mut self) {
        self.check_cancel.store(true, Ordering::Relaxed);
        let running = self
            .check
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(check) = running {
            let _ = check.join();
        }
    }
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, which stays locked for this value's
    /// lifetime: a second open of the same file fails with [`JournalError::InUse`] until this
    /// one is dropped.
    pub fn open(path: &Path, key: &JournalKey) -> Result<Journal, JournalError> {
        let lock = JournalLock::acquire(path)?;
        Self::open_locked(path, key, lock)
    }

    /// [`Journal::open`] with the lock already taken (a reset holds it while it moves the old
    /// files aside).
    pub(crate) fn open_locked(
        path: &Path,
        key: &JournalKey,
        lock: JournalLock,
    ) -> Result<Journal, JournalError> {
        // Owner-only files (issue 19): created as 0600, wider modes narrowed.
        crate::files::prepare_journal(path);
        let conn = Connection::open(path)?;
        let mut j = Self::init(conn, key, Some(path))?;
        j._lock = Some(lock);
        Ok(j)
    }

    /// Looks at the journal file at `path` without creating, migrating or writing anything:
    /// a missing or short file is reported as such instead of being opened (SQLite would take
    /// it for a new, empty database). The file is opened read-write without `CREATE`, so a
    /// WAL left behind is read (and checkpointed when this connection closes, as on any
    /// close).
    pub fn inspect(path: &Path) -> Result<JournalFile, JournalError> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalFile::Missing),
            Err(_) => return Err(corrupt("journal file metadata")),
        };
        // The SQLite header is 100 bytes (https://www.sqlite.org/fileformat2.html).
        if len < 100 {
            return Ok(JournalFile::Empty);
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let table = |name: &str| -> Result<bool, JournalError> {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![name],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        };
        if !table("meta")? || !table("counters")? || !table("txn")? {
            return Ok(JournalFile::Empty);
        }
        let id: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![JOURNAL_ID_KEY],
                |r| r.get(0),
            )
            .optional()?;
        let counters = conn
            .query_row("SELECT stan, batch FROM counters WHERE id = 1", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
            .map(|(stan, batch)| checked_counters(stan, batch))
            .transpose()?;
        let has_txns = conn
            .query_row("SELECT 1 FROM txn LIMIT 1", [], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some();
        Ok(JournalFile::Present {
            id,
            counters,
            has_txns,
        })
    }

    /// The schema version (`PRAGMA user_version`) of the journal file at `path`, read without
    /// creating or migrating anything (opened as [`Journal::inspect`] opens it: read-write
    /// without `CREATE`, so a WAL left behind is read).
    pub fn file_version(path: &Path) -> Result<i64, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// The journal's identity (`meta.journal_id`), if it has one.
    pub fn id(&self) -> Result<Option<String>, JournalError> {
        self.meta(JOURNAL_ID_KEY)
    }

    /// Opens an in-memory journal (tests).
    pub fn open_in_memory(key: &JournalKey) -> Result<Journal, JournalError> {
        Self::init(Connection::open_in_memory()?, key, None)
    }

    /// Opens the journal on `conn`: migrates, checks the chain head's own tag, and checks every
    /// money row against its tag and the head: on a thread of its own with a read-only
    /// connection for a file at `path` (open stays fast on a large journal; money commands
    /// wait for the result, see [`Journal::tampered`]), here for an in-memory journal.
    fn init(
        mut conn: Connection,
        key: &JournalKey,
        path: Option<&Path>,
    ) -> Result<Journal, JournalError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // The write statements of a sale are prepared once and reused (`prepare_cached`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(JournalError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 1 {
            // One SQLite transaction: a crash leaves version 1, and the next open migrates.
            let tx = conn.transaction()?;
            tx.execute_batch(MIGRATE_1_TO_2)?;
            tx.pragma_update(None, "user_version", 2)?;
            tx.commit()?;
            log::info!("journal: schema migrated from version 1 to 2");
        }
        let mac = mac_key(key);
        if version < SCHEMA_VERSION {
            // A new journal, or one written before rows were tagged: every money row is tagged
            // as it stands and the chain head written, in one SQLite transaction (a crash
            // leaves the old version, and the next open does it again). What happened to the
            // file before this point was not authenticated (ADR 0008).
            let tx = conn.transaction()?;
            for t in TAGGED {
                let exists: bool = tx
                    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
                    .exists(params![t.table])?;
                let tagged: bool = exists
                    && tx
                        .prepare(&format!(
                            "SELECT 1 FROM pragma_table_info('{}') WHERE name = 'tag'",
                            t.table
                        ))?
                        .exists([])?;
                if exists && !tagged {
                    tx.execute_batch(&format!("ALTER TABLE {} ADD COLUMN tag BLOB", t.table))?;
                }
            }
            tx.execute_batch(SCHEMA)?;
            let head = tag_all(&tx, &mac)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            if version > 0 {
                log::info!(
                    "journal: schema migrated from version {version} to {SCHEMA_VERSION}: money records tagged (chain head {})",
                    head.seq
                );
            }
        } else {
            conn.execute_batch(SCHEMA)?;
        }
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.0.as_ref()).map_err(|_| JournalError::Seal)?;
        let mut j = Journal {
            conn,
            sync_full: true,
            key: LessSafeKey::new(unbound),
            mac,
            head: Head::default(),
            tampered: Arc::new(OnceLock::new()),
            check: Mutex::new(None),
            check_cancel: Arc::new(AtomicBool::new(false)),
            rng: SystemRandom::new(),
            _lock: None,
        };
        let head = match read_head(&j.conn, &j.mac) {
            Ok(head) => head,
            Err(JournalError::Tampered(t)) => {
                log::error!("journal: {t} failed its authentication check on open");
                let _ = j.tampered.set(t);
                return Ok(j);
            }
            Err(e) => return Err(e),
        };
        j.head = head;
        match path {
            Some(path) => {
                let check = spawn_check(
                    path,
                    j.mac.clone(),
                    Arc::clone(&j.tampered),
                    Arc::clone(&j.check_cancel),
                )?;
                *j.check.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(check);
            }
            None => match verify_rows(&j.conn, &j.mac, &head, &j.check_cancel) {
                Ok(()) => {}
                Err(JournalError::Tampered(t)) => {
                    log::error!("journal: {t} failed its authentication check on open");
                    let _ = j.tampered.set(t);
                }
                Err(e) => return Err(e),
            },
        }
        Ok(j)
    }

    /// The first money record found not matching its tag (by the whole-journal check that
    /// open starts, or on a read), if any; waits for that check to finish first (about 4 s at
    /// 10^6 rows, README item 4; milliseconds for a usual journal). Once set,
    /// [`Journal::apply`] refuses every money commit, and reads return what is stored without
    /// failing on it, so read-only commands (status, pending items, the support bundle) still
    /// work; the terminal refuses money commands (`TerminalError::JournalTampered`).
    pub fn tampered(&self) -> Option<&TamperedRecord> {
        let running = self.check.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(check) = running
            && check.join().is_err()
        {
            log::error!("journal: the whole-journal check stopped on a panic");
        }
        self.tampered.get()
    }

    /// [`Journal::tampered`] as known now, without waiting for the whole-journal check (the
    /// recovery commit at open: it arms reversals from rows that are checked as they are read).
    pub fn tampered_so_far(&self) -> Option<&TamperedRecord> {
        self.tampered.get()
    }

    /// Whether reads check tags: until a record was found tampered (then reads return what is
    /// stored, so read-only commands work; money commits are refused).
    fn checks_reads(&self) -> bool {
        self.tampered.get().is_none()
    }

    /// Notes a failed check found on a read, and returns the error for it.
    fn note_tampered(&self, t: TamperedRecord) -> JournalError {
        log::error!("journal: {t} failed its authentication check on read");
        let _ = self.tampered.set(t.clone());
        JournalError::Tampered(t)
    }

    /// Runs `f` on each row of `SELECT {columns}, tag FROM {table} {tail}`, each checked
    /// against its tag first (see [`Journal::checks_reads`]).
    fn each_row<P: rusqlite::Params>(
        &self,
        t: &Tagged,
        tail: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let sql = format!("SELECT {}, tag FROM {} {tail}", t.columns, t.table);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            if self.checks_reads()
                && let Err(record) = check_row(&self.mac, t, row)?
            {
                // A record changed before open is what the whole-journal check open started
                // finds too: once it has (wait for it), the journal is read for what it holds,
                // as read-only commands need. Found first here (changed since): this read fails.
                if self.tampered().is_none() {
                    return Err(self.note_tampered(record));
                }
            }
            f(row)?;
        }
        Ok(())
    }

    fn seal(&self, seq: u64, plain: &[u8]) -> Result<Vec<u8>, JournalError> {
        self.seal_bound(&seq.to_be_bytes(), plain)
    }

    /// Seals `plain` with `aad` (the row's key) bound as associated data.
    fn seal_bound(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, JournalError> {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).map_err(|_| JournalError::Seal)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| JournalError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open_sealed(&self, seq: u64, sealed: &[u8]) -> Result<Vec<u8>, JournalError> {
        self.open_bound(&seq.to_be_bytes(), sealed)
    }

    /// Opens what [`Journal::seal_bound`] sealed with the same `aad`.
    fn open_bound(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, JournalError> {
        let (nonce, body) = sealed.split_at_checked(12).ok_or(JournalError::Seal)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| JournalError::Seal)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| JournalError::Seal)?;
        Ok(plain.to_vec())
    }

    /// Applies an engine commit atomically.
    pub fn apply(&mut self, commit: &Commit) -> Result<(), JournalError> {
        self.apply_traced(commit, &mut Vec::new(), None)
    }

    /// Applies an engine commit atomically, together with support-trace lines (which then
    /// cost no extra disk sync). `trace` is drained; the newest [`TRACE_KEEP`] lines are kept.
    /// `card` is the chip data of the transaction the commit creates, stored in the same
    /// SQLite transaction, so a card transaction's receipt data costs no write of its own and
    /// exists whenever the transaction does.
    pub fn apply_traced(
        &mut self,
        commit: &Commit,
        trace: &mut Vec<TraceLine>,
        card: Option<(&str, &CardInfo)>,
    ) -> Result<(), JournalError> {
        if let Some(t) = self.tampered.get() {
            return Err(JournalError::Tampered(t.clone()));
        }
        // Seal outside the SQLite transaction: it needs `&self` while the transaction borrows mutably.
        let mut sealed = Vec::new();
        let mut cards = Vec::new();
        for op in &commit.ops {
            match op {
                JournalOp::PutPending(p) => sealed.push(self.seal(p.seq, &p.message)?),
                // The card a transaction keeps: its first write stores it, later writes (the
                // outcome) carry the same card and leave the row alone (INSERT OR IGNORE).
                JournalOp::PutTxn(r) => {
                    if let Some(c) = &r.card {
                        let text = Zeroizing::new(c.to_text());
                        cards.push((
                            r.reference.clone(),
                            self.seal_bound(r.reference.as_bytes(), text.as_bytes())?,
                        ));
                    }
                }
                _ => {}
            }
        }
        // Money commits are FULL whatever a relaxed write before left behind (see `relaxed`).
        if !self.sync_full {
            set_synchronous(&self.conn, true)?;
            self.sync_full = true;
        }
        let mac = &self.mac;
        // Each money row a commit touches leaves the digest with its old (verified) tag and
        // comes back with its new one; the chain head then authenticates the new digest.
        let mut digest = self.head.digest;
        let tx = self.conn.transaction()?;
        for (reference, blob) in &cards {
            let added = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO card_on_file (reference, sealed) VALUES (?1, ?2)",
                )?
                .execute(params![reference, blob])?;
            if added == 1 {
                retag(&tx, mac, &T_CARD, reference, &mut digest)?;
            }
        }
        let mut sealed = sealed.into_iter();
        for op in &commit.ops {
            match op {
                JournalOp::PutTxn(r) => {
                    untag(&tx, mac, &T_TXN, &r.reference, &mut digest)?;
                    put_txn(&tx, r)?;
                    retag(&tx, mac, &T_TXN, &r.reference, &mut digest)?;
                }
                JournalOp::UpdateState(u) => {
                    untag(&tx, mac, &T_TXN, &u.reference, &mut digest)?;
                    update_state(&tx, u)?;
                    retag(&tx, mac, &T_TXN, &u.reference, &mut digest)?;
                }
                JournalOp::PutPending(p) => {
                    let blob = sealed.next().ok_or(JournalError::Seal)?;
                    let seq = i64::try_from(p.seq).map_err(|_| corrupt("pending.seq"))?;
                    untag(&tx, mac, &T_PENDING, &seq, &mut digest)?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO pending (seq, kind, reference, reason, message, attempts, armed, not_before_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                            seq,
                            p.kind.as_str(),
                            p.reference,
                            p.reason.map(ReversalReason::code),
                            blob,
                            p.attempts,
                            p.armed,
                            p.not_before_unix_ms
                        ])?;
                    retag(&tx, mac, &T_PENDING, &seq, &mut digest)?;
                }
                JournalOp::RemovePending { seq } => {
                    let seq = i64::try_from(*seq).map_err(|_| corrupt("pending.seq"))?;
                    untag(&tx, mac, &T_PENDING, &seq, &mut digest)?;
                    tx.prepare_cached("DELETE FROM pending WHERE seq = ?1")?
                        .execute(params![seq])?;
                }
                JournalOp::PutCounters(c) => {
                    untag(&tx, mac, &T_COUNTERS, &1, &mut digest)?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO counters (id, stan, batch, pending_seq) VALUES (1, ?1, ?2, ?3)",
                    )?
                    .execute(params![
                            c.stan,
                            c.batch,
                            i64::try_from(c.pending_seq).map_err(|_| corrupt("pending_seq"))?
                        ])?;
                    retag(&tx, mac, &T_COUNTERS, &1, &mut digest)?;
                }
                JournalOp::PutWrappedKeys { block } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('wrapped_keys', ?1)",
                    )?
                    .execute(params![smartpos_types::hex::encode(block)])?;
                }
                JournalOp::PutSettlement(p) => {
                    untag(&tx, mac, &T_SETTLEMENT, &1, &mut digest)?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO settlement (id, batch, step) VALUES (1, ?1, ?2)",
                    )?
                    .execute(params![p.batch, p.step.encode()])?;
                    retag(&tx, mac, &T_SETTLEMENT, &1, &mut digest)?;
                }
                JournalOp::ClearSettlement => {
                    untag(&tx, mac, &T_SETTLEMENT, &1, &mut digest)?;
                    tx.execute("DELETE FROM settlement", [])?;
                }
                other => {
                    log::error!("journal op not understood by this runtime: {other:?}");
                    return Err(corrupt("unknown journal op"));
                }
            }
        }
        let head = if digest == self.head.digest {
            None
        } else {
            let head = Head {
                seq: self.head.seq.saturating_add(1),
                digest,
            };
            write_head(&tx, mac, &head)?;
            Some(head)
        };
        if let Some((reference, info)) = card {
            insert_card_info(&tx, reference, info)?;
        }
        insert_trace(&tx, trace)?;
        tx.commit()?;
        if let Some(head) = head {
            self.head = head;
        }
        trace.clear();
        Ok(())
    }

    /// Writes past transactions in bulk, in one SQLite transaction, each with its tag and the
    /// chain head once at the end: for loading history (the journal-scaling benchmark fills
    /// files of a million rows with it). Cards on the records are not kept. A record whose
    /// reference or idempotency key is taken fails the whole import. Returns the rows written.
    pub fn import_txns(
        &mut self,
        records: impl IntoIterator<Item = TxnRecord>,
    ) -> Result<u64, JournalError> {
        if let Some(t) = self.tampered.get() {
            return Err(JournalError::Tampered(t.clone()));
        }
        let mac = &self.mac;
        let mut digest = self.head.digest;
        let tx = self.conn.transaction()?;
        let mut n = 0u64;
        for r in records {
            untag(&tx, mac, &T_TXN, &r.reference, &mut digest)?;
            put_txn(&tx, &r)?;
            retag(&tx, mac, &T_TXN, &r.reference, &mut digest)?;
            n += 1;
        }
        let head = Head {
            seq: self.head.seq.saturating_add(1),
            digest,
        };
        write_head(&tx, mac, &head)?;
        tx.commit()?;
        self.head = head;
        Ok(n)
    }

    /// Loads what the engine needs to resume.
    pub fn restore(&self) -> Result<Restored, JournalError> {
        let mut stored = None;
        self.each_row(&T_COUNTERS, "WHERE id = 1", [], |r| {
            stored = Some((
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ));
            Ok(())
        })?;
        let mut counters = stored
            .map(|(stan, batch, seq)| {
                let mut c = checked_counters(stan, batch)?;
                c.pending_seq = u64::try_from(seq)
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or(corrupt("counters.pending_seq"))?;
                Ok::<_, JournalError>(c)
            })
            .transpose()?
            .unwrap_or_default();
        let pending = self.pending()?;
        // A new item never takes the number of a stored one (which it would replace).
        if let Some(last) = pending.iter().map(|p| p.seq).max() {
            counters.pending_seq = counters.pending_seq.max(last.saturating_add(1));
        }
        let in_flight = self.query_txns("WHERE state = 'sending' ORDER BY created_at_ms", [])?;
        let wrapped_keys = self
            .meta("wrapped_keys")?
            .and_then(|h| smartpos_types::hex::decode(&h).ok());
        let mut stored = None;
        self.each_row(&T_SETTLEMENT, "WHERE id = 1", [], |r| {
            stored = Some((r.get::<_, u32>(1)?, r.get::<_, String>(2)?));
            Ok(())
        })?;
        let settlement = stored
            .map(|(batch, step)| {
                SettlementStep::decode(&step)
                    .map(|step| SettlementProgress { batch, step })
                    .ok_or(corrupt("settlement.step"))
            })
            .transpose()?;
        Ok(Restored {
            counters,
            pending,
            in_flight,
            wrapped_keys,
            settlement,
        })
    }

    /// Pending reversals and advices, in delivery order.
    pub fn pending(&self) -> Result<Vec<PendingItem>, JournalError> {
        let mut rows = Vec::new();
        self.each_row(&T_PENDING, "ORDER BY seq", [], |r| {
            rows.push((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, i64>(7)?,
            ));
            Ok(())
        })?;
        let mut out = Vec::new();
        for (seq, kind, reference, reason, sealed, attempts, armed, not_before) in rows {
            let seq = u64::try_from(seq).map_err(|_| corrupt("pending.seq"))?;
            let kind = match kind.as_str() {
                "reversal" => PendingKind::Reversal,
                "advice" => PendingKind::Advice,
                "notice" => PendingKind::Notice,
                _ => return Err(corrupt("pending.kind")),
            };
            let reason = match reason {
                Some(c) => Some(ReversalReason::from_code(&c).ok_or(corrupt("pending.reason"))?),
                None => None,
            };
            out.push(PendingItem {
                seq,
                kind,
                reference,
                reason,
                message: self.open_sealed(seq, &sealed)?,
                attempts,
                armed,
                not_before_unix_ms: not_before,
            });
        }
        Ok(out)
    }

    fn query_txns<P: rusqlite::Params>(
        &self,
        tail: &str,
        params: P,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        let mut out = Vec::new();
        self.each_row(&T_TXN, tail, params, |r| {
            out.push(read_txn(r)?.ok_or(corrupt("txn"))?);
            Ok(())
        })?;
        self.attach_cards(&mut out)?;
        Ok(out)
    }

    /// Fills each record's [`TxnRecord::card`] from the sealed `card_on_file` row, if any.
    ///
    /// A card that does not open (another journal key, a damaged row) is left out with a
    /// warning rather than failing the read: the record and its money state stay readable, and
    /// a void or refund of it goes without the card number, as before cards were kept (the
    /// app can present the card again). Pending messages, which money depends on, still fail.
    fn attach_cards(&self, records: &mut [TxnRecord]) -> Result<(), JournalError> {
        let mut stmt = self.conn.prepare_cached(&select_one(&T_CARD))?;
        for r in records.iter_mut() {
            let mut rows = stmt.query(params![r.reference])?;
            let Some(row) = rows.next()? else { continue };
            // A row that fails its tag is tampering (noted: money commands are refused from
            // now on) but, like a card that does not open, it only leaves the card out.
            if self.checks_reads()
                && let Err(record) = check_row(&self.mac, &T_CARD, row)?
            {
                let _ = self.note_tampered(record);
                continue;
            }
            let blob: Option<Vec<u8>> = Some(row.get(1)?);
            let Some(blob) = blob else { continue };
            let card = self
                .open_bound(r.reference.as_bytes(), &blob)
                .ok()
                .map(Zeroizing::new)
                .and_then(|plain| {
                    std::str::from_utf8(&plain)
                        .ok()
                        .and_then(CardOnFile::from_text)
                });
            if card.is_none() {
                log::warn!(
                    "journal: the card on file of {} does not open with this journal key; left out",
                    r.reference
                );
            }
            r.card = card;
        }
        Ok(())
    }

    /// One transaction by reference.
    pub fn txn(&self, reference: &str) -> Result<Option<TxnRecord>, JournalError> {
        Ok(self
            .query_txns("WHERE reference = ?1", params![reference])?
            .pop())
    }

    /// The transaction recorded under an idempotency key.
    pub fn by_idempotency_key(&self, key: &str) -> Result<Option<TxnRecord>, JournalError> {
        Ok(self
            .query_txns("WHERE idempotency_key = ?1", params![key])?
            .pop())
    }

    /// All transactions, oldest first.
    pub fn all(&self) -> Result<Vec<TxnRecord>, JournalError> {
        self.query_txns("ORDER BY created_at_ms, reference", [])
    }

    /// The most recent transactions, newest first.
    pub fn recent(&self, limit: u32) -> Result<Vec<TxnRecord>, JournalError> {
        self.query_txns(
            "ORDER BY created_at_ms DESC, reference DESC LIMIT ?1",
            params![limit],
        )
    }

    /// The transactions of one batch.
    pub fn batch(&self, batch: u32) -> Result<Vec<TxnRecord>, JournalError> {
        self.query_txns("WHERE batch = ?1 ORDER BY reference", params![batch])
    }

    /// Total refunded (queued or approved) against an original.
    pub fn refunded_total(&self, original_ref: &str) -> Result<u64, JournalError> {
        self.amount_against(
            "kind = 'refund' AND state IN ('approved', 'queued')",
            original_ref,
        )
    }

    /// How much of `original_ref` later transactions took: approved or queued refunds, and
    /// completions that are approved or still being reversed (their outcome is not settled).
    /// The engine refuses a void, a second completion or a cancel when this is not zero.
    pub fn original_used(&self, original_ref: &str) -> Result<u64, JournalError> {
        self.amount_against(
            "((kind = 'refund' AND state IN ('approved', 'queued'))
               OR (kind = 'completion' AND state IN ('approved', 'reversing')))",
            original_ref,
        )
    }

    /// The summed amount of the transactions on `original_ref` that match `filter` (a constant
    /// SQL condition; the statement is cached per filter).
    fn amount_against(&self, filter: &str, original_ref: &str) -> Result<u64, JournalError> {
        // Summed here, over rows checked against their tags, not by SQL `SUM`: a raised or
        // lowered amount is found before it decides what may still be refunded.
        let mut total = 0u64;
        self.each_row(
            &T_TXN,
            &format!("WHERE original_ref = ?1 AND {filter}"),
            params![original_ref],
            |r| {
                let amount =
                    u64::try_from(r.get::<_, i64>(3)?).map_err(|_| corrupt("amount total"))?;
                total = total.checked_add(amount).ok_or(corrupt("amount total"))?;
                Ok(())
            },
        )?;
        Ok(total)
    }

    /// Records a print attempt: the job stays `pending` until a print succeeds.
    pub fn record_print(
        &mut self,
        reference: &str,
        copy: &str,
        status: &str,
        at_ms: i64,
    ) -> Result<(), JournalError> {
        let state = if status == "ok" { "printed" } else { "pending" };
        self.conn.execute(
            "INSERT INTO print_job (reference, copy, state, attempts, last_status, updated_at_ms)
             VALUES (?1, ?2, ?3, 1, ?4, ?5)
             ON CONFLICT(reference, copy) DO UPDATE SET state = excluded.state,
               attempts = attempts + 1, last_status = excluded.last_status, updated_at_ms = excluded.updated_at_ms",
            params![reference, copy, state, status, at_ms],
        )?;
        Ok(())
    }

    /// Print jobs not yet printed: (reference, copy, attempts, last printer status).
    pub fn pending_prints(&self) -> Result<Vec<(String, String, u32, String)>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT reference, copy, attempts, last_status FROM print_job WHERE state = 'pending' ORDER BY updated_at_ms",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether a receipt of this transaction was printed before (so the next one is a reprint).
    pub fn printed_before(&self, reference: &str, copy: &str) -> Result<bool, JournalError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM print_job WHERE reference = ?1 AND copy = ?2 AND state = 'printed'",
            params![reference, copy],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Stores the chip data a receipt shows (no card data: AID, label, TVR, TSI, cryptogram).
    /// Committed without a disk sync of its own (`synchronous=NORMAL`, see the module
    /// documentation): receipt data is not money. A card transaction run by the terminal stores
    /// it with its first commit instead ([`Journal::apply_traced`]).
    pub fn put_card_info(&mut self, reference: &str, info: &CardInfo) -> Result<(), JournalError> {
        self.relaxed(|conn| insert_card_info(conn, reference, info))
    }

    /// Runs a write that moves no money with `synchronous=NORMAL`: in WAL mode it is atomic and
    /// becomes durable with the next FULL commit's sync, instead of paying a sync of its own.
    /// FULL is restored afterwards, and [`Journal::apply_traced`] sets it again anyway.
    fn relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        self.sync_full = false;
        set_synchronous(&self.conn, false)?;
        let result = f(&mut self.conn);
        set_synchronous(&self.conn, true)?;
        self.sync_full = true;
        result
    }

    /// The chip data of a transaction, if it was read from a chip.
    pub fn card_info(&self, reference: &str) -> Result<Option<CardInfo>, JournalError> {
        Ok(self
            .conn
            .query_row(
                "SELECT aid, label, tvr, tsi, cryptogram_type, cryptogram, cvm, cvm_result, in_field_ms FROM card_info WHERE reference = ?1",
                params![reference],
                |r| {
                    Ok(CardInfo {
                        aid: r.get(0)?,
                        label: r.get(1)?,
                        tvr: r.get(2)?,
                        tsi: r.get(3)?,
                        cryptogram_type: r.get(4)?,
                        cryptogram: r.get(5)?,
                        cvm: r.get(6)?,
                        cvm_result: r.get(7)?,
                        in_field_ms: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
                    })
                },
            )
            .optional()?)
    }

    /// A configuration value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, JournalError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores a configuration value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), JournalError> {
        put_meta(&self.conn, key, value)
    }

    /// Applies operator record changes and their audit rows in one transaction.
    pub fn apply_operators(
        &mut self,
        changes: &[smartpos_operators::RecordChange],
        audit: &[smartpos_operators::AuditEntry],
    ) -> Result<(), JournalError> {
        use smartpos_operators::RecordChange;
        let tx = self.conn.transaction()?;
        for c in changes {
            match c {
                RecordChange::Upsert(r) => {
                    let json = serde_json::to_string(r).map_err(|_| corrupt("operator"))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO operator (id, record) VALUES (?1, ?2)",
                        params![r.id, json],
                    )?;
                }
                RecordChange::Delete(id) => {
                    tx.execute("DELETE FROM operator WHERE id = ?1", params![id])?;
                }
            }
        }
        for a in audit {
            insert_audit(&tx, a)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a meta value and writes its audit row in one transaction: the change is never
    /// stored without its row, nor the row without the change.
    pub fn set_meta_audited(
        &mut self,
        key: &str,
        value: &str,
        audit: &smartpos_operators::AuditEntry,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        put_meta(&tx, key, value)?;
        insert_audit(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    /// The stored operators.
    pub fn operators(&self) -> Result<Vec<smartpos_operators::OperatorRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT record FROM operator ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?).map_err(|_| corrupt("operator"))?);
        }
        Ok(out)
    }

    /// The most recent audit rows, newest first: (at_ms, operator, action, detail).
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT at_ms, operator, action, detail FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Refunds (queued or approved) created in `[from_ms, to_ms)`, optionally by one operator.
    pub fn refunded_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        operator: Option<&str>,
    ) -> Result<u64, JournalError> {
        // Summed over rows checked against their tags (as [`Journal::refunded_total`]).
        let mut total = 0u64;
        self.each_row(
            &T_TXN,
            "WHERE kind = 'refund' AND state IN ('approved', 'queued')
               AND created_at_ms >= ?1 AND created_at_ms < ?2 AND (?3 IS NULL OR operator = ?3)",
            params![from_ms, to_ms, operator],
            |r| {
                let amount =
                    u64::try_from(r.get::<_, i64>(3)?).map_err(|_| corrupt("refund total"))?;
                total = total.checked_add(amount).ok_or(corrupt("refund total"))?;
                Ok(())
            },
        )?;
        Ok(total)
    }

    /// Writes buffered support-trace lines on their own (when no commit is coming to carry them),
    /// without a disk sync of their own (`synchronous=NORMAL`, see the module documentation).
    pub fn flush_trace(&mut self, trace: &mut Vec<TraceLine>) -> Result<(), JournalError> {
        if trace.is_empty() {
            return Ok(());
        }
        self.relaxed(|conn| {
            let tx = conn.transaction()?;
            insert_trace(&tx, trace)?;
            tx.commit()?;
            Ok(())
        })?;
        trace.clear();
        Ok(())
    }

    /// The support trace, the newest [`TRACE_KEEP`] lines, oldest first: (at_ms, direction, text).
    pub fn trace_lines(&self) -> Result<Vec<(i64, String, String)>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_ms, direction, text FROM
                   (SELECT id, at_ms, direction, text FROM trace ORDER BY id DESC LIMIT ?1)
                 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![TRACE_KEEP], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Caps the journal file at `pages` database pages for this open journal only (SQLite
    /// `PRAGMA max_page_count`; not stored in the file, so reopening lifts it). A write that
    /// needs a page beyond the cap fails with SQLITE_FULL, exactly as on a full disk: the
    /// bad-input tests (`tests/e2e/badinput.rs`) simulate a full disk with it. SQLite never
    /// lowers the cap below the current size; the cap in force is returned.
    pub fn set_max_page_count(&mut self, pages: u32) -> Result<u32, JournalError> {
        let cap: i64 = self
            .conn
            .pragma_update_and_check(None, "max_page_count", pages, |r| r.get(0))?;
        u32::try_from(cap).map_err(|_| corrupt("max_page_count"))
    }

    /// Makes this open journal refuse every write (SQLite `PRAGMA query_only`; not stored in the
    /// file). A write then fails with SQLITE_READONLY, as on a read-only data directory: the
    /// storage-error tests use it where `chmod` cannot make a directory read-only (as root).
    pub fn set_query_only(&mut self, on: bool) -> Result<(), JournalError> {
        self.conn.pragma_update(None, "query_only", on)?;
        Ok(())
    }

    /// Runs SQLite's `PRAGMA quick_check` (b-tree structure, record formats, free lists; it
    /// reads every page, so it costs a full read of the file). `Ok` when SQLite answers `ok`;
    /// [`JournalError::Corrupt`] when it lists problems; [`JournalError::Sql`] when a page is
    /// too damaged to walk. SQLite has no page checksums: a changed byte inside a stored value
    /// that keeps the record well-formed is not found by this check (see docs/RELIABILITY.md).
    pub fn quick_check(&self) -> Result<(), JournalError> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut problems = 0usize;
        for row in rows {
            if row? != "ok" {
                problems += 1;
            }
        }
        if problems == 0 {
            Ok(())
        } else {
            Err(corrupt("database structure (quick_check)"))
        }
    }

    /// Appends an audit entry (operator actions).
    pub fn audit(
        &mut self,
        at_ms: i64,
        operator: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(INSERT_AUDIT_SQL, params![at_ms, operator, action, detail])?;
        Ok(())
    }
}

/// One audit row: when, which operator, the action, details.
pub type AuditRow = (i64, Option<String>, String, String);

/// Prepared statements kept per connection: the writes of a sale and the lookups around it.
const STATEMENT_CACHE: usize = 32;

/// How many support-trace lines the journal keeps (and [`Journal::trace_lines`] returns).
pub const TRACE_KEEP: u32 = 500;

/// Older trace lines are deleted once every this many new lines, not on every commit: each
/// deletion rewrites the oldest trace page, one more page for every money commit to sync. The
/// table holds at most `TRACE_KEEP + TRACE_PRUNE_EVERY - 1` lines in between.
const TRACE_PRUNE_EVERY: i64 = 64;

/// One support-trace line: when, which way (`send`, `recv`, `event`), the masked text.
pub type TraceLine = (i64, &'static str, String);

fn put_meta(conn: &Connection, key: &str, value: &str) -> Result<(), JournalError> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}

const INSERT_AUDIT_SQL: &str =
    "INSERT INTO audit (at_ms, operator, action, detail) VALUES (?1, ?2, ?3, ?4)";

fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    a: &smartpos_operators::AuditEntry,
) -> Result<(), JournalError> {
    tx.execute(
        INSERT_AUDIT_SQL,
        params![a.at_ms, a.operator, a.action, a.detail],
    )?;
    Ok(())
}

/// `PRAGMA synchronous`, FULL or NORMAL, through the statement cache (a relaxed write switches
/// twice; parsing the pragma each time was a measurable part of it).
fn set_synchronous(conn: &Connection, full: bool) -> Result<(), JournalError> {
    let sql = if full {
        "PRAGMA synchronous = FULL"
    } else {
        "PRAGMA synchronous = NORMAL"
    };
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn insert_card_info(
    conn: &Connection,
    reference: &str,
    info: &CardInfo,
) -> Result<(), JournalError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO card_info (reference, aid, label, tvr, tsi, cryptogram_type, cryptogram, cvm, cvm_result, in_field_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        reference,
        info.aid,
        info.label,
        info.tvr,
        info.tsi,
        info.cryptogram_type,
        info.cryptogram,
        info.cvm,
        info.cvm_result,
        i64::try_from(info.in_field_ms).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

fn insert_trace(tx: &rusqlite::Transaction<'_>, trace: &[TraceLine]) -> Result<(), JournalError> {
    if trace.is_empty() {
        return Ok(());
    }
    let mut insert =
        tx.prepare_cached("INSERT INTO trace (at_ms, direction, text) VALUES (?1, ?2, ?3)")?;
    let mut prune = false;
    for (at, dir, text) in trace {
        insert.execute(params![at, dir, text])?;
        prune |= tx.last_insert_rowid() % TRACE_PRUNE_EVERY == 0;
    }
    if prune {
        tx.prepare_cached("DELETE FROM trace WHERE id <= (SELECT MAX(id) FROM trace) - ?1")?
            .execute(params![TRACE_KEEP])?;
    }
    Ok(())
}

const TXN_COLUMNS: &str = "reference, kind, state, amount, currency, stan, batch, local_time, local_date, rrn, auth_code, response_code, original_ref, idempotency_key, operator, pan_masked, entry_mode, created_at_ms, updated_at_ms";

/// A stored value of a typed column that does not parse: the read fails naming the column
/// (`txn.local_date`), never falls back to a default. Carries nothing of the stored text.
#[derive(Debug)]
struct BadColumn {
    column: &'static str,
    why: String,
}

impl std::fmt::Display for BadColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.why)
    }
}

impl std::error::Error for BadColumn {}

/// Column `i` (`column` in messages) read as text and parsed into its model type: the SQL edge
/// of the typed wire values ([`TxnRecord`] keeps `LocalDate`, `ResponseCode`, ...; the column
/// keeps the same text it always did, which the row tags cover).
fn typed<T>(r: &Row<'_>, i: usize, column: &'static str) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = r.get(i)?;
    parse_column(&text, i, column)
}

/// [`typed`] of a nullable column.
fn typed_opt<T>(r: &Row<'_>, i: usize, column: &'static str) -> rusqlite::Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = r.get(i)?;
    text.map(|t| parse_column(&t, i, column)).transpose()
}

fn parse_column<T>(text: &str, i: usize, column: &'static str) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::new(BadColumn {
                column,
                why: e.to_string(),
            }),
        )
    })
}

fn read_txn(r: &Row<'_>) -> rusqlite::Result<Option<TxnRecord>> {
    let kind: String = r.get(1)?;
    let state: String = r.get(2)?;
    let amount: i64 = r.get(3)?;
    // Typed at this edge: a stored currency that is not three digits is an error that names
    // the column, never a silent default.
    let currency: String = r.get(4)?;
    let currency = smartpos_types::Currency::parse(&currency).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let (Some(kind), Some(state), Ok(amount)) = (
        TxnKind::parse(&kind),
        TxnState::parse(&state),
        u64::try_from(amount),
    ) else {
        return Ok(None);
    };
    Ok(Some(TxnRecord {
        reference: r.get(0)?,
        kind,
        state,
        amount,
        currency,
        stan: r.get(5)?,
        batch: r.get(6)?,
        local_time: typed(r, 7, "txn.local_time")?,
        local_date: typed(r, 8, "txn.local_date")?,
        rrn: r.get(9)?,
        auth_code: r.get(10)?,
        response_code: typed_opt(r, 11, "txn.response_code")?,
        original_ref: r.get(12)?,
        idempotency_key: r.get(13)?,
        operator: r.get(14)?,
        pan_masked: r.get(15)?,
        entry_mode: typed_opt(r, 16, "txn.entry_mode")?,
        created_at_ms: r.get(17)?,
        updated_at_ms: r.get(18)?,
        // Attached from the sealed table by `Journal::attach_cards`.
        card: None,
    }))
}

/// A new transaction: a plain insert, which fails on a reference or idempotency key that is
/// taken. Neither an upsert nor `INSERT OR REPLACE`: both would let a second transaction with
/// the same reference (two engines on one file, a STAN that wrapped within a batch) replace
/// the first one, its reversal included.
static INSERT_TXN_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO txn ({TXN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    )
});

/// An update of a stored record that leaves its indexed columns other than `state` alone and
/// requires them unchanged. The upsert sets every column, and SQLite then rewrites the entry of
/// every index on a set column, changed or not: a sale's outcome commit wrote the pages of all
/// five indexes (counted from the WAL frames, `smartpos-bench sale` reports them). An outcome
/// changes only the state, the host's answer and the times.
const UPDATE_TXN_SAME_KEYS_SQL: &str = "UPDATE txn SET kind = ?2, state = ?3, amount = ?4,
    currency = ?5, stan = ?6, local_time = ?8, local_date = ?9, rrn = ?10, auth_code = ?11,
    response_code = ?12, operator = ?15, pan_masked = ?16, entry_mode = ?17, updated_at_ms = ?19
  WHERE reference = ?1 AND batch = ?7 AND original_ref IS ?13 AND idempotency_key IS ?14
    AND created_at_ms = ?18";

/// Stores `r`: [`UPDATE_TXN_SAME_KEYS_SQL`] when the record exists with the same batch,
/// original, idempotency key and creation time (the engine never changes them), a new row
/// otherwise. A row with the same reference and other keys is another transaction:
/// [`JournalError::ReferenceTaken`], and the commit rolls back.
fn put_txn(tx: &rusqlite::Transaction<'_>, r: &TxnRecord) -> Result<(), JournalError> {
    let amount = i64::try_from(r.amount).map_err(|_| corrupt("txn.amount"))?;
    let values = params![
        r.reference,
        r.kind.as_str(),
        r.state.as_str(),
        amount,
        r.currency.to_string(),
        r.stan,
        r.batch,
        // The typed values as the text the columns always held (the row tags cover it).
        r.local_time.as_str(),
        r.local_date.as_str(),
        r.rrn,
        r.auth_code,
        r.response_code.as_deref(),
        r.original_ref,
        r.idempotency_key,
        r.operator,
        r.pan_masked,
        r.entry_mode.as_deref(),
        r.created_at_ms,
        r.updated_at_ms
    ];
    if tx
        .prepare_cached(UPDATE_TXN_SAME_KEYS_SQL)?
        .execute(values)?
        == 1
    {
        return Ok(());
    }
    match tx.prepare_cached(&INSERT_TXN_SQL)?.execute(values) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            // SQLite names one violated constraint; the reference is the one that matters.
            let taken = tx
                .prepare_cached("SELECT 1 FROM txn WHERE reference = ?1")?
                .exists(params![r.reference])?;
            Err(if taken {
                JournalError::ReferenceTaken(r.reference.clone())
            } else {
                JournalError::DuplicateKey
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn update_state(tx: &rusqlite::Transaction<'_>, u: &StateUpdate) -> Result<(), JournalError> {
    tx.prepare_cached(
        "UPDATE txn SET state = ?2, response_code = COALESCE(?3, response_code), rrn = COALESCE(?4, rrn),
                        auth_code = COALESCE(?5, auth_code), updated_at_ms = ?6 WHERE reference = ?1",
    )?
    .execute(params![u.reference, u.state.as_str(), u.response_code.as_deref(), u.rrn, u.auth_code, u.at_ms])
    .map(|n| {
        if n == 0 {
            log::error!(
                "state update to {} for {}: no such transaction in the journal",
                u.state.as_str(),
                u.reference
            );
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> JournalKey {
        JournalKey::new([7u8; 32])
    }

    fn record(reference: &str, state: TxnState) -> TxnRecord {
        TxnRecord {
            reference: reference.into(),
            kind: TxnKind::Sale,
            state,
            amount: 1234,
            currency: smartpos_types::Currency::CNY,
            stan: 1,
            batch: 1,
            local_time: "101010".parse().unwrap(),
            local_date: "1122".parse().unwrap(),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_ref: None,
            idempotency_key: Some(format!("key-{reference}")),
            operator: Some("01".into()),
            pan_masked: Some("622202******0123".into()),
            entry_mode: Some("012".parse().unwrap()),
            created_at_ms: 1,
            updated_at_ms: 1,
            card: None,
        }
    }

    fn pending(seq: u64) -> PendingItem {
        PendingItem {
            seq,
            kind: PendingKind::Reversal,
            reference: "000001000001".into(),
            reason: Some(ReversalReason::NoResponse),
            message: b"6222021234567890123 secret".to_vec(),
            attempts: 0,
            armed: false,
            not_before_unix_ms: 0,
        }
    }

    #[test]
    fn commit_and_restore_round_trip() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        let c = Counters {
            stan: 5,
            batch: 3,
            pending_seq: 9,
        };
        j.apply(&Commit {
            id: 1,
            ops: vec![
                JournalOp::PutCounters(c),
                JournalOp::PutTxn(record("000001000001", TxnState::Sending)),
                JournalOp::PutPending(pending(8)),
            ],
        })
        .unwrap();
        let r = j.restore().unwrap();
        assert_eq!(r.counters, c);
        assert_eq!(r.in_flight.len(), 1);
        assert_eq!(r.pending, vec![pending(8)]);
        assert_eq!(
            j.by_idempotency_key("key-000001000001")
                .unwrap()
                .unwrap()
                .reference,
            "000001000001"
        );
    }

    #[test]
    fn a_stored_currency_that_is_not_three_digits_is_an_error_not_a_default() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutTxn(record(
                "000001000001",
                TxnState::Approved,
            ))],
        })
        .unwrap();
        let stored: String = j
            .conn
            .query_row("SELECT currency FROM txn", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "156", "the column keeps the three digits");
        for bad in ["15", "CNY", "", "1560"] {
            j.conn
                .execute("UPDATE txn SET currency = ?1", [bad])
                .unwrap();
            // The full read refuses it (the row's tag catches the change first) ...
            let read = j.txn("000001000001");
            assert!(read.is_err(), "{bad:?}: {read:?}");
            // ... and the SQL edge itself refuses the value (a row whose tag matched).
            let err = j
                .conn
                .query_row(&format!("SELECT {TXN_COLUMNS} FROM txn"), [], read_txn)
                .unwrap_err();
            assert!(
                matches!(&err, rusqlite::Error::FromSqlConversionFailure(4, _, _)),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("ISO 4217"), "{err}");
        }
    }

    #[test]
    fn a_malformed_local_date_or_time_column_is_refused_naming_the_column() {
        // Moved here from the model (smartpos-txn `model.rs` and smartpos-receipt
        // `record_time_falls_back_to_text` injected "13x1" / "99" into a record): the record's
        // date and time are typed now, so a malformed value can only be stored text, and the
        // SQL edge refuses it instead of handing a receipt a date it cannot show.
        let mut j = Journal::open_in_memory(&key()).unwrap();
        let mut r = record("000001000001", TxnState::Approved);
        r.response_code = Some("0 ".parse().unwrap());
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutTxn(r.clone())],
        })
        .unwrap();
        let stored: (String, String, String, String) = j
            .conn
            .query_row(
                "SELECT local_date, local_time, response_code, entry_mode FROM txn",
                [],
                |q| Ok((q.get(0)?, q.get(1)?, q.get(2)?, q.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            ("1122".into(), "101010".into(), "0 ".into(), "012".into()),
            "the columns keep the wire text"
        );
        assert_eq!(j.txn(&r.reference).unwrap(), Some(r.clone()));
        let read = |j: &Journal| {
            j.conn
                .query_row(&format!("SELECT {TXN_COLUMNS} FROM txn"), [], read_txn)
        };
        for (column, index, bad, why) in [
            ("local_date", 8, "13x1", "MMDD"),
            ("local_date", 8, "1301", "MMDD"),
            ("local_time", 7, "99", "hhmmss"),
            ("local_time", 7, "246000", "hhmmss"),
            ("response_code", 11, "5", "2 letters"),
            ("response_code", 11, "0-", "2 letters"),
            ("entry_mode", 16, "07", "3 digits"),
            ("entry_mode", 16, "0711", "3 digits"),
        ] {
            j.conn
                .execute(&format!("UPDATE txn SET {column} = ?1"), [bad])
                .unwrap();
            // The full read refuses it (the row's tag catches the change first) ...
            let full = j.txn(&r.reference);
            assert!(full.is_err(), "{column} {bad:?}: {full:?}");
            // ... and the SQL edge itself refuses the value, naming the column.
            let err = read(&j).unwrap_err();
            assert!(
                matches!(&err, rusqlite::Error::FromSqlConversionFailure(i, _, _) if *i == index),
                "{column} {bad:?}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(&format!("txn.{column}")), "{text}");
            assert!(text.contains(why), "{text}");
            assert!(!text.contains(bad), "the stored text stays out: {text}");
            // Put the good value back before the next column.
            let good = match column {
                "local_date" => "1122",
                "local_time" => "101010",
                "response_code" => "0 ",
                _ => "012",
            };
            j.conn
                .execute(&format!("UPDATE txn SET {column} = ?1"), [good])
                .unwrap();
            assert!(read(&j).is_ok(), "{column} restored");
        }
    }

    #[test]
    fn an_outcome_updates_its_record_and_another_transaction_cannot_take_its_reference() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        let put = |j: &mut Journal, r: &TxnRecord| {
            j.apply(&Commit {
                id: 1,
                ops: vec![JournalOp::PutTxn(r.clone())],
            })
        };
        let mut r = record("000001000001", TxnState::Sending);
        put(&mut j, &r).unwrap();
        // An outcome: indexed columns other than the state unchanged.
        r.state = TxnState::Approved;
        r.rrn = Some("000000100001".into());
        r.auth_code = Some("123456".into());
        r.response_code = Some("00".parse().unwrap());
        r.updated_at_ms = 2;
        put(&mut j, &r).unwrap();
        assert_eq!(j.txn(&r.reference).unwrap(), Some(r.clone()));
        // A record with the same reference but another batch, original, idempotency key or
        // creation time is another transaction (two engines on one file, a STAN that wrapped
        // within a batch): refused, and the first one stays whole.
        let changes: [fn(&mut TxnRecord); 4] = [
            |o| o.batch = 2,
            |o| o.original_ref = Some("000001000000".into()),
            |o| o.idempotency_key = Some("another".into()),
            |o| o.created_at_ms = 5,
        ];
        for change in changes {
            let mut other = record("000001000001", TxnState::Sending);
            change(&mut other);
            let e = put(&mut j, &other);
            assert!(
                matches!(e, Err(JournalError::ReferenceTaken(ref x)) if *x == r.reference),
                "{other:?}: {e:?}"
            );
            assert_eq!(j.txn(&r.reference).unwrap(), Some(r.clone()));
            assert_eq!(j.batch(1).unwrap(), vec![r.clone()]);
        }
        // A second record may not take the first one's idempotency key.
        let mut other = record("000001000002", TxnState::Sending);
        other.idempotency_key = r.idempotency_key.clone();
        assert!(matches!(
            put(&mut j, &other),
            Err(JournalError::DuplicateKey)
        ));
        assert_eq!(j.txn(&r.reference).unwrap(), Some(r));
        assert_eq!(j.txn("000001000002").unwrap(), None);
    }

    #[test]
    fn a_journal_file_is_open_in_one_place_at_a_time() {
        let dir =
            std::env::temp_dir().join(format!("smartpos-journal-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.db");
        let first = Journal::open(&path, &key()).unwrap();
        assert!(matches!(
            Journal::open(&path, &key()),
            Err(JournalError::InUse)
        ));
        drop(first);
        let again = Journal::open(&path, &key()).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn counters_out_of_range_are_refused_and_pending_numbers_never_repeat() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        // The values are written as if by the SDK (tagged), so what is checked is the range.
        let set = |j: &mut Journal, sql: &str| {
            j.conn.execute_batch(sql).unwrap();
            j.retag_everything();
        };
        set(
            &mut j,
            "INSERT INTO counters (id, stan, batch, pending_seq) VALUES (1, 5, 1, 1)",
        );
        // A stored item numbered past the counter: the next new item comes after it.
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutPending(PendingItem {
                seq: 7,
                kind: PendingKind::Reversal,
                reference: "000001000005".into(),
                reason: None,
                message: vec![1, 2, 3],
                attempts: 0,
                armed: true,
                not_before_unix_ms: 0,
            })],
        })
        .unwrap();
        assert_eq!(j.restore().unwrap().counters.pending_seq, 8);
        for (sql, what) in [
            ("UPDATE counters SET stan = 4294967295", "counters.stan"),
            ("UPDATE counters SET stan = 1000000", "counters.stan"),
            ("UPDATE counters SET stan = 5, batch = 0", "counters.batch"),
            ("UPDATE counters SET batch = -1", "counters.batch"),
            (
                "UPDATE counters SET batch = 1, pending_seq = 0",
                "counters.pending_seq",
            ),
        ] {
            set(&mut j, sql);
            assert!(
                matches!(j.restore(), Err(JournalError::Corrupt { what: w }) if w == what),
                "{sql}"
            );
        }
    }

    #[test]
    fn refund_totals_use_the_partial_index_of_originals() {
        let j = Journal::open_in_memory(&key()).unwrap();
        let mut stmt = j
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT COALESCE(SUM(amount), 0) FROM txn WHERE original_ref = ?1 AND kind = 'refund' AND state IN ('approved', 'queued')",
            )
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(["000001000001"], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("USING INDEX txn_original")),
            "{plan:?}"
        );
    }

    #[test]
    fn pending_message_is_encrypted_at_rest() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutPending(pending(1))],
        })
        .unwrap();
        let raw: Vec<u8> = j
            .conn
            .query_row("SELECT message FROM pending", [], |r| r.get(0))
            .unwrap();
        assert!(!raw.windows(19).any(|w| w == b"6222021234567890123"));
        // Another key cannot open it.
        let other = Journal::open_in_memory(&JournalKey::new([8u8; 32])).unwrap();
        assert_eq!(
            other.open_sealed(1, &raw).unwrap_err().to_string(),
            JournalError::Seal.to_string()
        );
        // The row number is bound: a sealed message moved to another row does not open.
        assert!(j.open_sealed(2, &raw).is_err());
    }

    #[test]
    fn card_on_file_is_encrypted_at_rest_and_comes_back_with_its_record() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        let mut r = record("000001000001", TxnState::Sending);
        r.card = CardOnFile::from_text("6222021234567890128=3012");
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutTxn(r.clone())],
        })
        .unwrap();
        // The outcome's write carries the same card and leaves the sealed row alone.
        r.state = TxnState::Approved;
        j.apply(&Commit {
            id: 2,
            ops: vec![JournalOp::PutTxn(r.clone())],
        })
        .unwrap();
        let raw: Vec<u8> = j
            .conn
            .query_row("SELECT sealed FROM card_on_file", [], |r| r.get(0))
            .unwrap();
        assert!(!raw.windows(19).any(|w| w == b"6222021234567890128"));
        assert!(!raw.windows(4).any(|w| w == b"3012"));
        assert_eq!(j.txn("000001000001").unwrap(), Some(r.clone()));
        assert_eq!(j.batch(1).unwrap(), vec![r.clone()]);
        // Bound to its reference: moved to another transaction's row, it does not open, and
        // that record reads without a card (its money state stays readable).
        let mut other = record("000001000002", TxnState::Approved);
        other.idempotency_key = None;
        j.apply(&Commit {
            id: 3,
            ops: vec![JournalOp::PutTxn(other.clone())],
        })
        .unwrap();
        j.conn
            .execute(
                "INSERT INTO card_on_file (reference, sealed) VALUES ('000001000002', ?1)",
                params![raw],
            )
            .unwrap();
        assert_eq!(j.txn("000001000002").unwrap(), Some(other));
        // The moved row fails its tag: noted, and money commits are refused from now on.
        assert_eq!(
            j.tampered(),
            Some(&TamperedRecord {
                table: "card_on_file",
                key: "000001000002".into()
            })
        );
        // Nor with another journal key.
        let other_key = Journal::open_in_memory(&JournalKey::new([8u8; 32])).unwrap();
        assert!(other_key.open_bound(b"000001000001", &raw).is_err());
        // Neither the record's Debug nor its JSON shows the card.
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("6222021234567890128") && !debug.contains("3012"),
            "{debug}"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains("6222021234567890128") && !json.contains("card"),
            "{json}"
        );
    }

    #[test]
    fn failed_commit_leaves_nothing() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutTxn(record(
                "000001000001",
                TxnState::Approved,
            ))],
        })
        .unwrap();
        // Same idempotency key on a different reference violates the unique constraint.
        let mut dup = record("000001000002", TxnState::Sending);
        dup.idempotency_key = Some("key-000001000001".into());
        let err = j
            .apply(&Commit {
                id: 2,
                ops: vec![JournalOp::PutPending(pending(1)), JournalOp::PutTxn(dup)],
            })
            .unwrap_err();
        assert!(matches!(err, JournalError::DuplicateKey));
        assert!(
            j.pending().unwrap().is_empty(),
            "the pending row was rolled back"
        );
    }

    #[test]
    fn state_update_keeps_other_columns() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        j.apply(&Commit {
            id: 1,
            ops: vec![JournalOp::PutTxn(record(
                "000001000001",
                TxnState::Reversing,
            ))],
        })
        .unwrap();
        j.apply(&Commit {
            id: 2,
            ops: vec![JournalOp::UpdateState(StateUpdate {
                reference: "000001000001".into(),
                state: TxnState::Reversed,
                response_code: None,
                rrn: None,
                auth_code: None,
                at_ms: 99,
            })],
        })
        .unwrap();
        let r = j.txn("000001000001").unwrap().unwrap();
        assert_eq!(r.state, TxnState::Reversed);
        assert_eq!(r.amount, 1234);
        assert_eq!(r.updated_at_ms, 99);
    }

    impl Journal {
        /// Tags every money row as it stands and rewrites the head (tests that write values
        /// with SQL to check what the SDK does with them, not the tags).
        fn retag_everything(&mut self) {
            self.head = tag_all(&self.conn, &self.mac).unwrap();
        }
    }

    /// The one value `sql` returns.
    fn scalar<T: rusqlite::types::FromSql>(j: &Journal, sql: &str) -> T {
        j.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_version_1_journal_is_migrated_and_keeps_its_trace_in_order() {
        let dir = std::env::temp_dir().join(format!("smartpos-journal-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.db");
        {
            // A version 1 journal: today's schema with version 1's trace table and index of
            // originals, and one refund.
            let mut j = Journal::open(&path, &key()).unwrap();
            let mut refund = record("000001000002", TxnState::Approved);
            refund.kind = TxnKind::Refund;
            refund.original_ref = Some("000001000001".into());
            j.apply(&Commit {
                id: 1,
                ops: vec![JournalOp::PutTxn(refund)],
            })
            .unwrap();
            j.conn
                .execute_batch(
                    "DROP TABLE trace;
                     CREATE TABLE trace (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                         direction TEXT NOT NULL, text TEXT NOT NULL);
                     DROP INDEX txn_original;
                     CREATE INDEX txn_original ON txn(original_ref);
                     PRAGMA user_version = 1;",
                )
                .unwrap();
            let mut lines: Vec<TraceLine> = (0..(TRACE_KEEP + 20))
                .map(|i| (i64::from(i), "event", format!("line {i}")))
                .collect();
            j.flush_trace(&mut lines).unwrap();
            let seq: i64 = scalar(&j, "SELECT seq FROM sqlite_sequence WHERE name = 'trace'");
            assert_eq!(seq, i64::from(TRACE_KEEP) + 20);
        }
        let mut j = Journal::open(&path, &key()).unwrap();
        // Migrated through version 2 to the current version (3: tagged rows, ADR 0008).
        assert_eq!(scalar::<i64>(&j, "PRAGMA user_version"), 3);
        let sql: String = scalar(
            &j,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'trace'",
        );
        assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
        let index: String = scalar(
            &j,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'txn_original'",
        );
        assert!(index.ends_with("WHERE original_ref IS NOT NULL"), "{index}");
        assert_eq!(j.refunded_total("000001000001").unwrap(), 1234);
        let left: i64 = scalar(
            &j,
            "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'trace'",
        );
        assert_eq!(left, 0);
        let lines = j.trace_lines().unwrap();
        assert_eq!(lines.len(), TRACE_KEEP as usize);
        assert_eq!(lines.first().unwrap().2, "line 20");
        // New lines follow the migrated ones, and pruning still keeps the newest.
        j.flush_trace(&mut vec![(9_999, "event", "after".into())])
            .unwrap();
        let lines = j.trace_lines().unwrap();
        assert_eq!(lines.len(), TRACE_KEEP as usize);
        assert_eq!(lines.first().unwrap().2, "line 21");
        assert_eq!(lines.last().unwrap().2, "after");
        drop(j);
        // Opening again migrates nothing more.
        let j = Journal::open(&path, &key()).unwrap();
        assert_eq!(j.trace_lines().unwrap().len(), TRACE_KEEP as usize);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn receipt_and_trace_writes_leave_the_connection_fully_synced() {
        let dir =
            std::env::temp_dir().join(format!("smartpos-journal-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut j = Journal::open(&dir.join("j.db"), &key()).unwrap();
        let sync = |j: &Journal| -> i64 {
            j.conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(sync(&j), 2, "FULL after open");
        let info = CardInfo {
            aid: "A000000333010101".into(),
            label: "UnionPay".into(),
            tvr: "0000000000".into(),
            tsi: "0000".into(),
            cryptogram_type: "ARQC".into(),
            cryptogram: "0102030405060708".into(),
            cvm: "no_cvm".into(),
            cvm_result: "3F0000".into(),
            in_field_ms: 40,
        };
        j.put_card_info("000001000001", &info).unwrap();
        assert_eq!(sync(&j), 2, "FULL again after the receipt data");
        j.flush_trace(&mut vec![(1, "event", "Sale: approved".into())])
            .unwrap();
        assert_eq!(sync(&j), 2, "FULL again after the trace");
        assert_eq!(j.card_info("000001000001").unwrap(), Some(info));
        assert_eq!(j.trace_lines().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A journal file in a fresh directory with a sale, an approved refund of part of it, two
    /// pending items and counters; returns the directory and the file.
    fn tagged_journal(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "smartpos-journal-tag-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.db");
        let mut j = Journal::open(&path, &key()).unwrap();
        let mut sale = record("000001000001", TxnState::Approved);
        sale.card = CardOnFile::from_text("6222021234567890128=3012");
        let mut refund = record("000001000002", TxnState::Approved);
        refund.kind = TxnKind::Refund;
        refund.amount = 234;
        refund.original_ref = Some("000001000001".into());
        j.apply(&Commit {
            id: 1,
            ops: vec![
                JournalOp::PutCounters(Counters {
                    stan: 2,
                    batch: 1,
                    pending_seq: 3,
                }),
                JournalOp::PutTxn(sale),
                JournalOp::PutTxn(refund),
                JournalOp::PutPending(pending(1)),
                JournalOp::PutPending(pending(2)),
            ],
        })
        .unwrap();
        assert_eq!(j.tampered(), None);
        (dir, path)
    }

    /// Runs `sql` on the journal file behind the SDK's back (as someone with the file would).
    fn edit(path: &Path, sql: &str) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn tampered_on_open(path: &Path) -> Option<TamperedRecord> {
        Journal::open(path, &key()).unwrap().tampered().cloned()
    }

    fn rec(table: &'static str, key: &str) -> Option<TamperedRecord> {
        Some(TamperedRecord {
            table,
            key: key.into(),
        })
    }

    #[test]
    fn an_untouched_journal_passes_its_check_on_every_open() {
        let (dir, path) = tagged_journal("clean");
        for _ in 0..2 {
            let j = Journal::open(&path, &key()).unwrap();
            assert_eq!(j.tampered(), None);
            assert_eq!(j.refunded_total("000001000001").unwrap(), 234);
            assert_eq!(j.pending().unwrap().len(), 2);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_amount_raised_on_disk_is_found_on_open_and_refused_on_read() {
        // Issue 19: the raised amount let the terminal accept a refund larger than the sale.
        let (dir, path) = tagged_journal("amount");
        edit(
            &path,
            "UPDATE txn SET amount = 999999 WHERE reference = '000001000001'",
        );
        assert_eq!(tampered_on_open(&path), rec("txn", "000001000001"));
        // Changed while a journal is open: the read that meets it fails and names it, and no
        // money commit is taken after that.
        let (dir2, path2) = tagged_journal("amount-live");
        let mut j = Journal::open(&path2, &key()).unwrap();
        edit(
            &path2,
            "UPDATE txn SET amount = 999999 WHERE reference = '000001000001'",
        );
        let e = j.txn("000001000001").unwrap_err();
        assert!(
            matches!(&e, JournalError::Tampered(t) if t.table == "txn" && t.key == "000001000001"),
            "{e:?}"
        );
        assert!(!e.to_string().contains("6222021234567890128"));
        assert!(matches!(
            j.apply(&Commit {
                id: 9,
                ops: vec![JournalOp::RemovePending { seq: 1 }]
            }),
            Err(JournalError::Tampered(_))
        ));
        // Reads then return what is stored, for read-only commands.
        assert_eq!(j.txn("000001000001").unwrap().unwrap().amount, 999_999);
        drop(j);
        // A lowered refund hides what was refunded: found too.
        let (dir3, path3) = tagged_journal("refund-lowered");
        let j = Journal::open(&path3, &key()).unwrap();
        edit(
            &path3,
            "UPDATE txn SET amount = 1 WHERE reference = '000001000002'",
        );
        assert!(matches!(
            j.refunded_total("000001000001"),
            Err(JournalError::Tampered(t)) if t.key == "000001000002"
        ));
        for d in [dir, dir2, dir3] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn approved_turned_into_declined_on_disk_is_found() {
        let (dir, path) = tagged_journal("state");
        edit(
            &path,
            "UPDATE txn SET state = 'declined', response_code = '51' WHERE reference = '000001000001'",
        );
        assert_eq!(tampered_on_open(&path), rec("txn", "000001000001"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn deleted_changed_or_reordered_money_rows_are_found() {
        let head_seq = |path: &Path| -> String {
            Connection::open(path)
                .unwrap()
                .query_row("SELECT seq FROM chain_head", [], |r| r.get::<_, i64>(0))
                .unwrap()
                .to_string()
        };
        let cases: [(&str, &str, Option<TamperedRecord>); 7] = [
            ("delete-pending", "DELETE FROM pending WHERE seq = 1", None),
            (
                "delete-refund",
                "DELETE FROM txn WHERE reference = '000001000002'",
                None,
            ),
            ("delete-card", "DELETE FROM card_on_file", None),
            // The two pending items swap places in the delivery order.
            (
                "reorder",
                "UPDATE pending SET seq = 100 WHERE seq = 1; UPDATE pending SET seq = 1 WHERE seq = 2; UPDATE pending SET seq = 2 WHERE seq = 100;",
                rec("pending", "1"),
            ),
            (
                "counters",
                "UPDATE counters SET stan = 1",
                rec("counters", "1"),
            ),
            (
                "tag-moved",
                "UPDATE txn SET tag = (SELECT tag FROM txn WHERE reference = '000001000001') WHERE reference = '000001000002'",
                rec("txn", "000001000002"),
            ),
            (
                "untagged",
                "UPDATE pending SET tag = NULL WHERE seq = 2",
                rec("pending", "2"),
            ),
        ];
        for (name, sql, expected) in cases {
            let (dir, path) = tagged_journal(name);
            let seq = head_seq(&path);
            edit(&path, sql);
            let expected = expected.or(rec("chain_head", &seq));
            assert_eq!(tampered_on_open(&path), expected, "{name}");
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn a_rolled_back_row_or_chain_head_is_found() {
        // An old copy of a row (the sale before it was voided) with its then-valid tag.
        let (dir, path) = tagged_journal("row-rollback");
        let old: (String, Vec<u8>) = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT state, tag FROM txn WHERE reference = '000001000001'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        {
            let mut j = Journal::open(&path, &key()).unwrap();
            let mut voided = record("000001000001", TxnState::Voided);
            voided.card = None;
            j.apply(&Commit {
                id: 2,
                ops: vec![JournalOp::PutTxn(voided)],
            })
            .unwrap();
        }
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE txn SET state = ?1, tag = ?2 WHERE reference = '000001000001'",
                params![old.0, old.1],
            )
            .unwrap();
        assert_eq!(tampered_on_open(&path).map(|t| t.table), Some("chain_head"));
        let _ = std::fs::remove_dir_all(dir);

        // An old chain head (before a pending item was removed) with the item put back.
        let (dir, path) = tagged_journal("head-rollback");
        let conn = Connection::open(&path).unwrap();
        let head: (i64, Vec<u8>, Vec<u8>) = conn
            .query_row("SELECT seq, digest, tag FROM chain_head", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        drop(conn);
        {
            let mut j = Journal::open(&path, &key()).unwrap();
            j.apply(&Commit {
                id: 2,
                ops: vec![JournalOp::RemovePending { seq: 1 }],
            })
            .unwrap();
        }
        // Only the head rolled back: it no longer matches the rows.
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE chain_head SET seq = ?1, digest = ?2, tag = ?3",
                params![head.0, head.1, head.2],
            )
            .unwrap();
        assert_eq!(
            tampered_on_open(&path),
            rec("chain_head", &head.0.to_string())
        );
        // The head deleted: found as missing.
        edit(&path, "DELETE FROM chain_head");
        assert_eq!(tampered_on_open(&path), rec("chain_head", "missing"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_version_2_journal_is_tagged_on_first_open() {
        let (dir, path) = tagged_journal("v2");
        // Back to version 2: no tag columns, no chain head.
        edit(
            &path,
            "ALTER TABLE txn DROP COLUMN tag; ALTER TABLE pending DROP COLUMN tag;
             ALTER TABLE counters DROP COLUMN tag; ALTER TABLE settlement DROP COLUMN tag;
             ALTER TABLE card_on_file DROP COLUMN tag; DROP TABLE chain_head;
             PRAGMA user_version = 2;",
        );
        let j = Journal::open(&path, &key()).unwrap();
        assert_eq!(j.tampered(), None);
        assert_eq!(scalar::<i64>(&j, "PRAGMA user_version"), 3);
        assert_eq!(
            scalar::<i64>(&j, "SELECT COUNT(*) FROM txn WHERE length(tag) = 32"),
            2
        );
        assert_eq!(j.refunded_total("000001000001").unwrap(), 234);
        assert_eq!(j.pending().unwrap(), vec![pending(1), pending(2)]);
        assert!(j.txn("000001000001").unwrap().unwrap().card.is_some());
        drop(j);
        // From now on a change is found.
        edit(
            &path,
            "UPDATE txn SET amount = 5 WHERE reference = '000001000002'",
        );
        assert_eq!(tampered_on_open(&path), rec("txn", "000001000002"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_tag_key_is_derived_from_the_journal_key_and_differs_from_it() {
        let (dir, path) = tagged_journal("other-key");
        // Another journal key: every tag fails (the file is not this terminal's).
        let j = Journal::open(&path, &JournalKey::new([8u8; 32])).unwrap();
        assert!(j.tampered().is_some());
        drop(j);
        // The raw journal key as an HMAC key does not verify the tags.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(&format!("SELECT {}, tag FROM counters", T_COUNTERS.columns))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        assert!(check_row(&raw, &T_COUNTERS, row).unwrap().is_err());
        assert!(
            check_row(&mac_key(&key()), &T_COUNTERS, row)
                .unwrap()
                .is_ok()
        );
        drop(rows);
        drop(stmt);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_setting_and_its_audit_row_are_written_together_or_not_at_all() {
        let mut j = Journal::open_in_memory(&key()).unwrap();
        let entry = |detail: &str| smartpos_operators::AuditEntry {
            at_ms: 7,
            operator: "99".into(),
            action: "settings",
            detail: detail.into(),
        };
        j.set_meta_audited("safety", "{\"a\":1}", &entry("a=1"))
            .unwrap();
        assert_eq!(j.meta("safety").unwrap().as_deref(), Some("{\"a\":1}"));
        let rows = j.audit_log(10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].3, "a=1");
        // The audit row cannot be written: the setting stays as it was.
        j.conn.execute_batch("DROP TABLE audit").unwrap();
        assert!(
            j.set_meta_audited("safety", "{\"a\":2}", &entry("a=2"))
                .is_err()
        );
        assert_eq!(j.meta("safety").unwrap().as_deref(), Some("{\"a\":1}"));
    }
}
