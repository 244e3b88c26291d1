/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL names a backend sallyport does not support.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to {url}: {cause}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        cause: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that should exist does not.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A row with that key exists already.
    #[error("{kind} {name:?} already exists")]
    Conflict {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// Another gateway process already runs on this SQLite database (SQLite is
    /// single-instance; several gateways share PostgreSQL).
    #[error("{path} is in use by another sallyportd ({holder}): SQLite serves one gateway; run several gateways on PostgreSQL")]
    InstanceLocked {
        /// The lock file.
        path: String,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// The instance lock file could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The local audit spool could not be read or written.
    #[error("audit spool {path}: {source}")]
    Spool {
        /// The spool file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stored value no longer parses: the database was edited outside sallyport.
    #[error("stored {what} is invalid: {why}")]
    Corrupt {
        /// Which row and column.
        what: String,
        /// Why it does not parse.
        why: String,
    },
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    pub(crate) fn conflict_or(e: sqlx::Error, kind: &'static str, name: &str) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
                kind,
                name: name.to_owned(),
            },
            _ => StoreError::Database(e),
        }
    }
}
