//! Files and directories readable by their owner only: the journal (with its WAL, shared-memory
//! and lock files), the CLI's settings and the development secure store.
//!
//! New files are created with mode 0600 and directories with 0700; files and directories that
//! already exist with wider modes (made by an older SDK, copied, or changed by hand) are
//! narrowed when the terminal opens them. SQLite gives the journal's `-wal` and `-shm` files the
//! mode of the database file, so creating `journal.db` as 0600 before SQLite opens it covers
//! those too. On other platforms than Unix these functions only create what is missing.

use std::io;
use std::path::Path;

/// Mode of the files.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Mode of the directories.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Narrows `path` to `mode` when it exists with any other bits set; a missing path is fine.
#[cfg(unix)]
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        // A symbolic link is left alone: changing its target's mode is not this code's call.
        Ok(m) if m.file_type().is_symlink() => Ok(()),
        Ok(m) if m.permissions().mode() & 0o777 == mode => Ok(()),
        Ok(_) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
    }
}

/// Narrows an existing file to 0600 (nothing when it does not exist).
pub fn owner_only_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return narrow(path, FILE_MODE);
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Creates `path` (and its parents) as a 0700 directory, or narrows it to 0700 when it exists.
/// Parents created on the way get the same mode; existing parents are left as they are.
pub fn owner_only_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(path)?;
    #[cfg(unix)]
    narrow(path, DIR_MODE)?;
    Ok(())
}

/// Options that create a file as 0600 (`create`, `create_new`, `truncate` are the caller's).
pub fn owner_only_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Writes `bytes` to `path` as a 0600 file (created, or truncated and narrowed).
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = owner_only_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    owner_only_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The journal's companion files: SQLite's write-ahead log and shared memory, and the lock.
fn journal_companions(journal: &Path) -> [std::path::PathBuf; 3] {
    ["-wal", "-shm", ".lock"].map(|suffix| {
        let mut name = journal.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    })
}

/// Before SQLite opens the journal: creates a missing journal file empty as 0600 (SQLite
/// takes an empty file as a new database, and gives its `-wal` and `-shm` files the same mode),
/// and narrows an existing journal and its companion files to 0600.
///
/// Never fails: what cannot be created is left to SQLite, whose own error then says why the
/// journal cannot be opened (a read-only directory, a full disk); a mode that cannot be
/// narrowed (a read-only file system) is logged and the journal opens as it is.
pub fn prepare_journal(journal: &Path) {
    match owner_only_options()
        .write(true)
        .create_new(true)
        .open(journal)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            log::debug!(
                "journal file not pre-created ({}); SQLite creates it",
                e.kind()
            );
            return;
        }
    }
    for f in std::iter::once(journal.to_path_buf()).chain(journal_companions(journal)) {
        if let Err(e) = owner_only_file(&f) {
            log::warn!(
                "cannot narrow {} to its owner ({}); it stays as it is",
                f.display(),
                e.kind()
            );
        }
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("smartpos-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn directories_and_files_are_created_and_narrowed_to_the_owner() {
        let d = scratch("dirs");
        owner_only_dir(&d.join("a/b")).unwrap();
        assert_eq!(mode(&d.join("a")), 0o700);
        assert_eq!(mode(&d.join("a/b")), 0o700);
        std::fs::set_permissions(d.join("a/b"), std::fs::Permissions::from_mode(0o755)).unwrap();
        owner_only_dir(&d.join("a/b")).unwrap();
        assert_eq!(mode(&d.join("a/b")), 0o700);
        let f = d.join("a/f.json");
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_owner_only(&f, b"new").unwrap();
        assert_eq!(
            (mode(&f), std::fs::read(&f).unwrap()),
            (0o600, b"new".to_vec())
        );
        owner_only_file(&d.join("missing")).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_journal_and_its_companions_are_owner_only_before_and_after_sqlite_opens_them() {
        let d = scratch("journal");
        owner_only_dir(&d).unwrap();
        let j = d.join("journal.db");
        let key = crate::journal::JournalKey::new([7; 32]);
        drop(crate::journal::Journal::open(&j, &key).unwrap());
        assert_eq!(mode(&j), 0o600);
        // Widened by hand, with an empty WAL left beside it: narrowed on the next open.
        for p in [
            j.clone(),
            d.join("journal.db-wal"),
            d.join("journal.db.lock"),
        ] {
            if !p.exists() {
                std::fs::write(&p, b"").unwrap();
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let open = crate::journal::Journal::open(&j, &key).unwrap();
        for p in journal_companions(&j).iter().chain([&j]) {
            if p.exists() {
                assert_eq!(mode(p), 0o600, "{}", p.display());
            }
        }
        assert!(d.join("journal.db-wal").exists(), "the WAL is open");
        drop(open);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
