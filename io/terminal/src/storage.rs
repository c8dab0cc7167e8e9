//! What a journal failure means for the cashier: SQLite's errors sorted into a damaged journal,
//! a data directory that cannot be written, a full disk and other storage failures
//! ([`fault`]), each with one diagnosis ([`diagnosis`]); a record that failed its
//! authentication check has its own (`journal.tampered`).
//!
//! The sorting uses SQLite's result codes (<https://www.sqlite.org/rescode.html>), never the
//! wording of its messages: `SQLITE_CORRUPT` and `SQLITE_NOTADB` (and a stored value of the
//! wrong type, which only a damaged or edited file holds) are a damaged journal;
//! so is `SQLITE_ERROR` (the SDK's statements are fixed: an error in one means the file's schema
//! is not the one the SDK wrote, e.g. a damaged `sqlite_master` page that lost a column);
//! `SQLITE_READONLY`, `SQLITE_CANTOPEN` and `SQLITE_PERM` a directory or file that cannot be
//! written or created; `SQLITE_FULL` a full disk, as is `SQLITE_IOERR_SHMSIZE` (SQLite could not
//! grow the `-shm` file: on a device, no space). Every other code is a storage failure.

use crate::journal::JournalError;
use rusqlite::ErrorCode;
use smartpos_diagnosis::{Diagnosis, StorageFault};

/// `SQLITE_IOERR_SHMSIZE`: the WAL index (`-shm`) could not be grown.
const IOERR_SHMSIZE: i32 = 4874;

/// The storage fault behind a SQLite error.
pub fn sql_fault(e: &rusqlite::Error) -> StorageFault {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StorageFault::Damaged,
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                StorageFault::ReadOnly
            }
            ErrorCode::DiskFull => StorageFault::Full,
            ErrorCode::SystemIoFailure if f.extended_code == IOERR_SHMSIZE => StorageFault::Full,
            // SQLITE_ERROR from the SDK's own, fixed statements: the file's schema is not the
            // one the SDK wrote (a damaged `sqlite_master` page, e.g. "no such column").
            ErrorCode::Unknown => StorageFault::Damaged,
            _ => StorageFault::Failed,
        },
        rusqlite::Error::SqlInputError { .. } => StorageFault::Damaged,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StorageFault::Damaged,
        _ => StorageFault::Failed,
    }
}

/// The storage fault behind a journal error, `None` for errors that are not about storage
/// (a duplicate idempotency key, a journal in use, a tampered record, ...).
pub fn fault(e: &JournalError) -> Option<StorageFault> {
    match e {
        JournalError::Sql(e) => Some(sql_fault(e)),
        JournalError::Corrupt { .. } => Some(StorageFault::Damaged),
        _ => None,
    }
}

/// Plain words for a storage fault (the error's message; the diagnosis says more).
pub fn fault_text(f: StorageFault) -> &'static str {
    match f {
        StorageFault::Damaged => "the journal file is damaged",
        StorageFault::ReadOnly => "the data directory or journal cannot be written (read-only)",
        StorageFault::Full => "the disk is full",
        _ => "the journal storage failed",
    }
}

/// The cashier-facing diagnosis of a journal error.
pub fn diagnosis(e: &JournalError) -> Diagnosis {
    match e {
        JournalError::Tampered(_) => smartpos_diagnosis::journal_tampered(),
        _ => match fault(e) {
            Some(f) => smartpos_diagnosis::for_storage(f),
            None => smartpos_diagnosis::software_fault(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sql(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("internal words".into()))
    }

    #[test]
    fn sqlite_codes_sort_into_one_fault_each_and_the_message_has_no_sqlite_words() {
        for (code, expected) in [
            (ffi::SQLITE_CORRUPT, StorageFault::Damaged),
            (ffi::SQLITE_NOTADB, StorageFault::Damaged),
            (ffi::SQLITE_ERROR, StorageFault::Damaged),
            (ffi::SQLITE_READONLY, StorageFault::ReadOnly),
            (ffi::SQLITE_CANTOPEN, StorageFault::ReadOnly),
            (ffi::SQLITE_PERM, StorageFault::ReadOnly),
            (ffi::SQLITE_FULL, StorageFault::Full),
            (IOERR_SHMSIZE, StorageFault::Full),
            (ffi::SQLITE_IOERR, StorageFault::Failed),
            (ffi::SQLITE_IOERR_WRITE, StorageFault::Failed),
        ] {
            let e = JournalError::Sql(sql(code));
            assert_eq!(fault(&e), Some(expected), "code {code}");
            assert!(!e.to_string().contains("internal words"), "{e}");
            assert_eq!(diagnosis(&e), smartpos_diagnosis::for_storage(expected));
        }
        let conversion =
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, "x".into());
        assert_eq!(sql_fault(&conversion), StorageFault::Damaged);
        assert_eq!(
            fault(&JournalError::Corrupt { what: "txn" }),
            Some(StorageFault::Damaged)
        );
        assert_eq!(fault(&JournalError::InUse), None);
        assert_eq!(
            diagnosis(&JournalError::InUse).code,
            "terminal.software_fault"
        );
        // One diagnosis per fault, each complete in both languages.
        let codes: std::collections::HashSet<_> = [
            StorageFault::Damaged,
            StorageFault::ReadOnly,
            StorageFault::Full,
            StorageFault::Failed,
        ]
        .map(|f| {
            let d = smartpos_diagnosis::for_storage(f);
            smartpos_diagnosis::tests_support::assert_complete(&d);
            d.code
        })
        .into_iter()
        .collect();
        assert_eq!(codes.len(), 4);
    }
}
