//! The journal guard: a small record in the app's [`SecureStore`] that lets the terminal notice
//! a journal that was emptied, deleted, replaced by another terminal's copy or rolled back to
//! an older copy, instead of silently starting a new one.
//!
//! Why: SQLite opens a missing or 0-byte file as a new, empty database. Every committed
//! transaction, pending reversal and advice, the STAN and the batch number would be gone, and a
//! restarted STAN could collide with one already sent today (the host dedups by TID + STAN +
//! date, so it could answer a new sale with an old response).
//!
//! What: each journal gets a random identity (`meta.journal_id`, hex of 16 random bytes). The
//! guard (`journal_guard` in the secure store; versioned JSON, no secrets) holds that identity,
//! a STAN reservation (`stan_base`: the STAN when the reservation was written; `stan_ceiling`:
//! the highest STAN the terminal may send before it writes a new reservation), the batch
//! number and a generation counter (raised by each [`reset_journal`]).
//!
//! [`open_journal`] is the one place that decides, before SQLite may create anything:
//! - no guard and a missing or empty journal: a new terminal (identity and guard written);
//! - no guard and a journal with data (with or without identity): adopted (guard written, logged);
//! - guard and a missing or empty journal, or one with no identity and no data:
//!   [`TerminalError::JournalMissing`] (the file is left exactly as it was);
//! - guard and a journal with another identity, or with data but no identity:
//!   [`TerminalError::JournalMismatch`];
//! - guard and a journal whose STAN is behind `stan_base` (circularly, STANs wrap 999999 → 1)
//!   or whose batch is behind the guard's: [`TerminalError::JournalRolledBack`].
//!
//! Rollback detection is per reservation block, not per transaction: the guard is rewritten
//! only when a commit moves the STAN past `stan_ceiling` or changes the batch ([`GuardWriter`],
//! called by the runtime after the journal commit and before anything with that STAN is
//! sent), because a secure-store write per sale is too slow on Android Keystore. A copy taken
//! within the current block is therefore not recognised as old. A terminal opened without a
//! store (`Terminal::open` with keys directly) has no guard and keeps the old behaviour.

use crate::journal::{
    JOURNAL_ID_KEY, Journal, JournalError, JournalFile, JournalKey, TamperedRecord,
};
use crate::runtime::TerminalError;
use crate::store::SecureStore;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use smartpos_diagnosis::{Category, Diagnosis, MoneyState, Retry, Text};
use smartpos_txn::journal::{Commit, JournalOp};
use smartpos_txn::model::Counters;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The secure-store name of the guard record.
pub const GUARD_NAME: &str = "journal_guard";

/// STANs reserved per guard write (one secure-store write per this many messages).
pub const STAN_BLOCK: u32 = 1000;

/// Version of the guard record format.
const GUARD_VERSION: u32 = 1;

/// The largest STAN; the next one after it is 1.
const STAN_MAX: u32 = 999_999;

/// The guard record kept in the secure store (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalGuard {
    /// Record format version.
    pub version: u32,
    /// The identity of the journal this terminal uses (hex).
    pub journal_id: String,
    /// The STAN when this reservation was written (0: none used yet).
    pub stan_base: u32,
    /// The highest STAN the terminal may send before it writes a new reservation.
    pub stan_ceiling: u32,
    /// The open batch number when this record was written.
    pub batch: u32,
    /// Raised by each journal reset.
    pub generation: u32,
    /// The journal's money rows are tagged (schema 3, ADR 0008): a journal file of an older
    /// schema is then refused instead of migrated, since a migration would tag whatever the
    /// file holds. Absent (false) in guards written before issue 19 item 3; set on the first
    /// open by this SDK.
    #[serde(default)]
    pub authenticated: bool,
}

/// Steps of [`smartpos_txn::model::Counters::next_stan`] from `from` to `to` (STANs run
/// 1..=999999 and wrap; 0 means "none used yet" and comes before 1). `None` when `to` is 0 and
/// `from` is not (a journal without a STAN cannot be ahead of a used one).
/// The arithmetic runs in `u64` on values reduced modulo 999999, so that a value out of range
/// (from a damaged store) cannot overflow; the journal refuses such counters on open.
fn stan_steps(from: u32, to: u32) -> Option<u32> {
    let m = u64::from(STAN_MAX);
    match (from, to) {
        (0, t) => Some(t),
        (_, 0) => None,
        (f, t) => {
            let steps = (u64::from(t) % m + m - u64::from(f) % m) % m;
            u32::try_from(steps).ok()
        }
    }
}

/// `stan` advanced by `n` steps.
fn stan_add(stan: u32, n: u32) -> u32 {
    let m = u64::from(STAN_MAX);
    let n = u64::from(n) % m;
    if stan == 0 {
        u32::try_from(n).unwrap_or(0)
    } else {
        u32::try_from((u64::from(stan) - 1 + n) % m + 1).unwrap_or(1)
    }
}

impl JournalGuard {
    /// A reservation starting at `counters.stan` for `block` STANs.
    pub fn reserve(journal_id: &str, counters: Counters, block: u32, generation: u32) -> Self {
        JournalGuard {
            version: GUARD_VERSION,
            journal_id: journal_id.to_owned(),
            stan_base: counters.stan,
            stan_ceiling: stan_add(counters.stan, block.max(1)),
            batch: counters.batch,
            generation,
            // Written only after the journal is open, so tagged.
            authenticated: true,
        }
    }

    /// Reads the guard; `None` when the store has none.
    pub fn load(store: &dyn SecureStore) -> Result<Option<JournalGuard>, TerminalError> {
        let Some(raw) = store.get(GUARD_NAME).map_err(|e| guard_store("read", e))? else {
            return Ok(None);
        };
        let g: JournalGuard = serde_json::from_slice(&raw).map_err(|e| {
            TerminalError::Config(format!("journal guard in the secure store unreadable: {e}"))
        })?;
        if g.version != GUARD_VERSION {
            return Err(TerminalError::Config(format!(
                "journal guard version {} not supported ({GUARD_VERSION})",
                g.version
            )));
        }
        Ok(Some(g))
    }

    /// Writes the guard.
    pub fn save(&self, store: &dyn SecureStore) -> Result<(), TerminalError> {
        let json = serde_json::to_vec(self).map_err(|e| guard_store("encode", e.to_string()))?;
        store
            .put(GUARD_NAME, &json)
            .map_err(|e| guard_store("write", e))
    }

    /// Whether the journal's counters are inside this reservation (STAN not past the ceiling,
    /// same batch), so no new guard is needed.
    pub fn covers(&self, c: Counters) -> bool {
        let within = match (
            stan_steps(self.stan_base, c.stan),
            stan_steps(self.stan_base, self.stan_ceiling),
        ) {
            (Some(used), Some(reserved)) => used <= reserved,
            _ => false,
        };
        within && c.batch == self.batch
    }

    /// Whether counters read from a journal are behind this guard: the STAN before
    /// `stan_base` (within half the STAN circle) or the batch lower.
    pub fn is_ahead_of(&self, c: Counters) -> bool {
        let stan_behind = match stan_steps(self.stan_base, c.stan) {
            None => true,
            Some(ahead) => ahead > STAN_MAX / 2,
        };
        stan_behind || c.batch < self.batch
    }
}

fn guard_store(what: &str, e: String) -> TerminalError {
    TerminalError::GuardStore {
        reason: format!("cannot {what} the journal guard: {e}"),
    }
}

fn new_id() -> Result<String, TerminalError> {
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| TerminalError::Config("no randomness for the journal id".into()))?;
    Ok(smartpos_types::hex::encode(&id))
}

/// Keeps the guard current while the terminal runs: after each journal commit, writes a new
/// reservation when the commit moved the STAN past the ceiling or changed the batch.
pub struct GuardWriter {
    store: Arc<dyn SecureStore>,
    guard: JournalGuard,
    block: u32,
}

impl std::fmt::Debug for GuardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardWriter")
            .field("guard", &self.guard)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl GuardWriter {
    /// The guard as last written.
    pub fn guard(&self) -> &JournalGuard {
        &self.guard
    }

    /// Called after `commit` is durable in the journal and before the engine is told
    /// (so before anything it allows is sent). A store failure is returned: the caller fails
    /// the command as for a journal failure, and nothing with the new STAN goes out.
    pub fn after_commit(&mut self, commit: &Commit) -> Result<(), TerminalError> {
        let counters = commit.ops.iter().rev().find_map(|op| match op {
            JournalOp::PutCounters(c) => Some(*c),
            _ => None,
        });
        match counters {
            Some(c) => self.ensure(c),
            None => Ok(()),
        }
    }

    /// Writes a new reservation unless the current one covers `c`.
    pub fn ensure(&mut self, c: Counters) -> Result<(), TerminalError> {
        if self.guard.covers(c) {
            return Ok(());
        }
        let next =
            JournalGuard::reserve(&self.guard.journal_id, c, self.block, self.guard.generation);
        next.save(self.store.as_ref())?;
        log::info!(
            "journal guard: STANs reserved up to {:06}, batch {:06}",
            next.stan_ceiling,
            next.batch
        );
        self.guard = next;
        Ok(())
    }
}

/// Opens the journal at `path` under the guard in `store` (see the module documentation for
/// what is refused). `block` is the reservation size ([`STAN_BLOCK`]; lower in tests).
pub fn open_journal(
    path: &Path,
    key: &JournalKey,
    store: Arc<dyn SecureStore>,
    block: u32,
) -> Result<(Journal, GuardWriter), TerminalError> {
    let block = block.max(1);
    let guard = JournalGuard::load(store.as_ref())?;
    let file = Journal::inspect(path)?;
    let (journal, guard) = match guard {
        None => {
            let fresh = !file.has_data();
            let mut journal = Journal::open(path, key)?;
            let id = match journal.id()? {
                Some(id) => id,
                None => {
                    let id = new_id()?;
                    journal.set_meta(JOURNAL_ID_KEY, &id)?;
                    id
                }
            };
            let counters = journal.restore()?.counters;
            if fresh {
                log::info!("journal guard: new terminal, journal {id}");
            } else {
                log::warn!(
                    "journal guard: adopting an existing journal {id} (STAN {:06}, batch {:06}) that had no guard",
                    counters.stan,
                    counters.batch
                );
            }
            let guard = JournalGuard::reserve(&id, counters, block, 0);
            guard.save(store.as_ref())?;
            (journal, guard)
        }
        Some(guard) => {
            match &file {
                JournalFile::Present { id: Some(id), .. } if *id != guard.journal_id => {
                    return Err(TerminalError::JournalMismatch {
                        expected: guard.journal_id,
                        found: id.clone(),
                    });
                }
                JournalFile::Present { id: Some(_), .. } => {}
                JournalFile::Present { id: None, .. } if file.has_data() => {
                    return Err(TerminalError::JournalMismatch {
                        expected: guard.journal_id,
                        found: "none".into(),
                    });
                }
                _ => {
                    return Err(TerminalError::JournalMissing {
                        path: path.display().to_string(),
                        expected: guard.journal_id,
                    });
                }
            }
            // Checked on what is in the file, before `Journal::open` writes anything.
            let counters = match &file {
                JournalFile::Present {
                    counters: Some(c), ..
                } => *c,
                _ => Counters::default(),
            };
            if guard.is_ahead_of(counters) {
                return Err(TerminalError::JournalRolledBack {
                    stan: counters.stan,
                    batch: counters.batch,
                    guard_stan: guard.stan_base,
                    guard_batch: guard.batch,
                });
            }
            // A journal made to look older than its tags (tag columns and chain head dropped,
            // version set back) would be tagged again as a migration: refused.
            if guard.authenticated {
                let version = Journal::file_version(path)?;
                if version < crate::journal::TAGGED_SINCE_VERSION {
                    return Err(TerminalError::Journal(JournalError::Tampered(
                        TamperedRecord {
                            table: "chain_head",
                            key: format!("schema {version}"),
                        },
                    )));
                }
            }
            let journal = Journal::open(path, key)?;
            let mut guard = guard;
            if !guard.authenticated {
                guard.authenticated = true;
                guard.save(store.as_ref())?;
            }
            (journal, guard)
        }
    };
    let mut writer = GuardWriter {
        store,
        guard,
        block,
    };
    // A crash between a journal commit and its guard write leaves the journal ahead of the
    // reservation: catch up before anything is sent.
    let counters = journal.restore()?.counters;
    writer.ensure(counters)?;
    Ok((journal, writer))
}

/// What [`reset_journal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalReset {
    /// Where the old files went (the database first, then `-wal`/`-shm` if there were any).
    pub moved: Vec<PathBuf>,
    /// The new journal's identity.
    pub journal_id: String,
    /// The last STAN recorded in the new journal (the old reservation's ceiling): the next
    /// message uses the one after it.
    pub stan: u32,
    /// The new journal's open batch (the old guard's batch + 1).
    pub batch: u32,
    /// The new guard's generation.
    pub generation: u32,
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Support's explicit reset, after the guard refused a journal: moves the old file(s) aside
/// (`journal.db` → `journal.db.lost-<unix-seconds>`, its `-wal`/`-shm` beside it as
/// `journal.db.lost-<unix-seconds>-wal`/`-shm` so the copy still opens with SQLite), creates
/// a new journal whose STAN continues after the guard's `stan_ceiling` and whose batch is the
/// guard's batch + 1, records an audit entry, and writes a new guard (new identity,
/// generation + 1). Needs a guard. The new journal has no working keys (sign in again) and
/// default operators. `now_unix_ms` names the moved files and stamps the audit entry.
pub fn reset_journal(
    path: &Path,
    key: &JournalKey,
    store: Arc<dyn SecureStore>,
    block: u32,
    now_unix_ms: i64,
) -> Result<JournalReset, TerminalError> {
    let guard = JournalGuard::load(store.as_ref())?.ok_or_else(|| {
        TerminalError::Config(
            "no journal guard in the secure store: nothing to reset, open the terminal normally"
                .into(),
        )
    })?;
    // A journal that is open elsewhere is not moved from under its terminal.
    let lock = crate::journal::JournalLock::acquire(path)?;
    let secs = now_unix_ms.div_euclid(1000);
    let lost = sidecar(path, &format!(".lost-{secs}"));
    let mut moved = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = sidecar(path, suffix);
        if !from.exists() {
            continue;
        }
        let to = sidecar(&lost, suffix);
        if to.exists() {
            return Err(TerminalError::Config(format!(
                "{} already exists; retry in a second",
                to.display()
            )));
        }
        std::fs::rename(&from, &to).map_err(|e| {
            TerminalError::Config(format!(
                "cannot move {} aside: {}",
                from.display(),
                e.kind()
            ))
        })?;
        moved.push(to);
    }
    let mut journal = Journal::open_locked(path, key, lock)?;
    let id = new_id()?;
    journal.set_meta(JOURNAL_ID_KEY, &id)?;
    let counters = Counters {
        stan: guard.stan_ceiling,
        batch: if guard.batch >= STAN_MAX {
            1
        } else {
            guard.batch + 1
        },
        ..Counters::default()
    };
    journal.apply(&Commit {
        id: 0,
        ops: vec![JournalOp::PutCounters(counters)],
    })?;
    let detail = format!(
        "journal {} (generation {}) replaced by {id}; old files {}; STAN continues after {:06}; batch {:06}",
        guard.journal_id,
        guard.generation,
        moved
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        counters.stan,
        counters.batch
    );
    journal.audit(now_unix_ms, None, "journal_reset", &detail)?;
    let generation = guard.generation.saturating_add(1);
    JournalGuard::reserve(&id, counters, block, generation).save(store.as_ref())?;
    log::warn!("journal reset: {detail}");
    Ok(JournalReset {
        moved,
        journal_id: id,
        stan: counters.stan,
        batch: counters.batch,
        generation,
    })
}

const S_NO_RESET: Text = Text::new(
    "不要自行重置终端或清除数据：旧流水中可能有待冲正或待上送的款项",
    "Do not reset the terminal or clear its data without support: the journal holds pending money movements",
);
const S_CALL_SUPPORT: Text = Text::new(
    "联系技术支持，由支持人员确认后执行流水重置",
    "Call support; only support runs the journal reset, after checking",
);
const S_RESTORE: Text = Text::new(
    "如果流水文件是被误删或被替换，先恢复原来的文件再打开终端",
    "If the journal file was deleted or replaced by mistake, restore the original file and open the terminal again",
);

#[rustfmt::skip]
static MISSING: Diagnosis = Diagnosis::new("terminal.journal_missing", Category::Software, MoneyState::UnknownResolving, Retry::DoNotRetry, Text::new("交易流水丢失", "Transaction journal missing"), Text::new("终端的交易流水文件不见了或被清空，终端拒绝启动，以免重复交易或丢失待处理款项。", "The terminal's transaction journal is missing or empty; the terminal will not start, so no payment is doubled or lost."), &[S_NO_RESET, S_RESTORE, S_CALL_SUPPORT]);
#[rustfmt::skip]
static MISMATCH: Diagnosis = Diagnosis::new("terminal.journal_mismatch", Category::Software, MoneyState::UnknownResolving, Retry::DoNotRetry, Text::new("交易流水不属于本终端", "Journal belongs to another terminal"), Text::new("找到的交易流水不是本终端的（可能是别的终端的或恢复的副本），终端拒绝启动。", "The journal found is not this terminal's (another terminal's or a restored copy); the terminal will not start."), &[S_NO_RESET, S_RESTORE, S_CALL_SUPPORT]);
#[rustfmt::skip]
static ROLLED_BACK: Diagnosis = Diagnosis::new("terminal.journal_rolled_back", Category::Software, MoneyState::UnknownResolving, Retry::DoNotRetry, Text::new("交易流水是旧副本", "Journal is an old copy"), Text::new("交易流水比终端已发出的交易还旧（恢复了旧备份），继续使用可能造成流水号重复。", "The journal is older than what the terminal already sent (an old backup was restored); using it could repeat trace numbers."), &[S_NO_RESET, S_RESTORE, S_CALL_SUPPORT]);
#[rustfmt::skip]
static STORE_FAILED: Diagnosis = Diagnosis::new("terminal.guard_store_failed", Category::Software, MoneyState::NotCharged, Retry::RetryAfterRecovery, Text::new("安全存储写入失败", "Secure storage failed"), Text::new("终端无法写入安全存储，没有发出新的交易；重启后终端会完成进行中的操作。", "The terminal could not write to its secure storage; no new payment was sent. After a restart it finishes what was in progress."), &[Text::new("重启终端后重试", "Restart the terminal and try again"), S_CALL_SUPPORT]);

/// The cashier-facing diagnosis of a guard error; `None` for other errors.
pub fn diagnosis(e: &TerminalError) -> Option<Diagnosis> {
    match e {
        TerminalError::JournalMissing { .. } => Some(MISSING.clone()),
        TerminalError::JournalMismatch { .. } => Some(MISMATCH.clone()),
        TerminalError::JournalRolledBack { .. } => Some(ROLLED_BACK.clone()),
        TerminalError::GuardStore { .. } => Some(STORE_FAILED.clone()),
        _ => None,
    }
}

/// Every guard diagnosis (for catalogues and tests).
pub fn catalogue() -> Vec<Diagnosis> {
    vec![
        MISSING.clone(),
        MISMATCH.clone(),
        ROLLED_BACK.clone(),
        STORE_FAILED.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(stan: u32, batch: u32) -> Counters {
        Counters {
            stan,
            batch,
            pending_seq: 1,
        }
    }

    #[test]
    fn stan_arithmetic_wraps_past_999999_to_1() {
        assert_eq!(stan_add(0, 5), 5);
        assert_eq!(stan_add(999_998, 1), 999_999);
        assert_eq!(stan_add(999_999, 1), 1);
        assert_eq!(stan_add(999_500, 1000), 501);
        assert_eq!(stan_steps(999_999, 1), Some(1));
        assert_eq!(stan_steps(5, 5), Some(0));
        assert_eq!(stan_steps(0, 7), Some(7));
        assert_eq!(stan_steps(3, 0), None);
        // Values out of range (a damaged store) give some answer, never an overflow.
        for (a, b) in [(u32::MAX, 1), (1, u32::MAX), (u32::MAX, u32::MAX)] {
            assert!(stan_steps(a, b).is_some_and(|n| n < STAN_MAX));
            assert!(stan_add(a, b) <= STAN_MAX);
        }
        let g = JournalGuard::reserve("id", c(u32::MAX, u32::MAX), u32::MAX, 0);
        let _ = (g.covers(c(u32::MAX, 1)), g.is_ahead_of(c(0, u32::MAX)));
    }

    #[test]
    fn reservation_covers_up_to_the_ceiling_and_the_same_batch() {
        let g = JournalGuard::reserve("AA", c(999_500, 4), 1000, 0);
        assert_eq!(g.stan_ceiling, 501);
        assert!(g.covers(c(999_500, 4)));
        assert!(g.covers(c(501, 4)));
        assert!(!g.covers(c(502, 4)));
        assert!(!g.covers(c(600, 4)));
        assert!(!g.covers(c(999_600, 5)));
    }

    #[test]
    fn journal_behind_the_base_or_the_batch_is_detected_across_the_wrap() {
        let g = JournalGuard::reserve("AA", c(10, 4), 1000, 0);
        assert!(!g.is_ahead_of(c(10, 4)));
        assert!(
            !g.is_ahead_of(c(1500, 4)),
            "ahead of the ceiling is not a rollback"
        );
        assert!(g.is_ahead_of(c(9, 4)));
        assert!(g.is_ahead_of(c(999_990, 4)), "before the wrap is behind");
        assert!(g.is_ahead_of(c(0, 4)));
        assert!(g.is_ahead_of(c(20, 3)));
        let fresh = JournalGuard::reserve("AA", c(0, 1), 1000, 0);
        assert!(!fresh.is_ahead_of(c(0, 1)));
    }

    #[test]
    fn guard_diagnoses_are_complete_in_both_languages() {
        for d in catalogue() {
            for t in std::iter::once(&d.title)
                .chain(std::iter::once(&d.explanation))
                .chain(d.next_steps.iter())
            {
                assert!(
                    !t.zh.trim().is_empty() && !t.en.trim().is_empty(),
                    "{}",
                    d.code
                );
            }
            assert!(d.code.starts_with("terminal."));
        }
    }
}
