//! SQLite serves one gateway. A gateway on SQLite holds an exclusive `flock` on
//! `DATABASE.instance-lock` (beside the database file, in the state directory) for as long as it
//! runs; a second `sallyportd` pointed at the same file refuses to start and names the holder.
//! The kernel drops the lock when the process ends, however it ends, so a crash leaves nothing
//! to clean up. Short-lived commands (`migrate`, `mint-token`) do not take it: they may run
//! beside the gateway.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use fs4::{FileExt, TryLockError};
use sqlx::sqlite::SqliteConnectOptions;

use super::{redact_url, StoreError};

/// A held instance lock; released on drop.
#[derive(Debug)]
pub struct InstanceLock {
    path: PathBuf,
    _file: File,
}

impl InstanceLock {
    /// For a `sqlite:` URL naming a file, locks `FILE.instance-lock` for `instance`; for any
    /// other URL (PostgreSQL, an in-memory SQLite database) there is nothing to lock.
    pub fn acquire_for(url: &str, instance: &str) -> Result<Option<Self>, StoreError> {
        if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(None);
        }
        let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Connect {
            url: redact_url(url),
            cause: e.to_string(),
        })?;
        let db = options.get_filename();
        if db.as_os_str().is_empty() {
            return Ok(None);
        }
        Self::acquire(&lock_path(db), instance).map(Some)
    }

    /// Locks `path` (created if missing, mode 0600) and writes who holds it.
    pub fn acquire(path: &Path, instance: &str) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let io = |source| StoreError::Lock {
            path: shown.clone(),
            source,
        };
        let mut file = open(path).map_err(io)?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::InstanceLocked {
                    path: shown,
                    holder: if holder.is_empty() {
                        "holder unknown".to_owned()
                    } else {
                        holder.chars().take(200).collect()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let who = format!(
            "pid {} instance {instance} since {}",
            std::process::id(),
            sallyport_core::time::Timestamp::now()
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `FILE.instance-lock` for the database `FILE`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".instance-lock");
    PathBuf::from(name)
}

fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let first = InstanceLock::acquire_for(&url, "gw-a").unwrap().unwrap();
        assert!(first.path().ends_with("s.db.instance-lock"));
        let e = InstanceLock::acquire_for(&url, "gw-b").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, StoreError::InstanceLocked { .. }), "{text}");
        assert!(text.contains("instance gw-a"), "{text}");
        assert!(text.contains("PostgreSQL"), "{text}");
        drop(first);
        let again = InstanceLock::acquire_for(&format!("{url}?mode=rwc"), "gw-b").unwrap();
        assert!(again.is_some());
    }

    #[test]
    fn nothing_to_lock_for_postgres_or_memory() {
        assert!(InstanceLock::acquire_for("postgres://u@h/db", "x")
            .unwrap()
            .is_none());
        assert!(InstanceLock::acquire_for("sqlite::memory:", "x")
            .unwrap()
            .is_none());
    }
}
