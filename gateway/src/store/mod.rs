//! The control-plane store: sqlx over SQLite (embedded default) or PostgreSQL (HA, RDS).
//!
//! One SQL dialect serves both backends (TEXT and BIGINT columns, `$n` placeholders) through
//! sqlx's `Any` driver. Every admin change runs in a [`WriteTx`] that also appends its audit
//! record to the hash-chained journal, so the change and its record commit together or not at
//! all.
//!
//! # Layout
//!
//! - `error`: [`StoreError`].
//! - `users`, `keys`, `targets`, `grants`: one repository each (reads on [`Store`], writes on
//!   [`WriteTx`]).
//! - `journal`: append (one event or a group in one statement per 64 rows), read ranges,
//!   search, and the streaming chain verification.
//! - `sinks`: audit sinks' checkpoints, quarantine lists and backlog figures.
//! - `spool`: audit events kept in a local file while the database is out of reach.
//! - `lock`: the exclusive lock that keeps a second gateway off a SQLite database.
//! - `notify`: the control version every change moves, and `NOTIFY` to other gateways
//!   (PostgreSQL).
//! - `devices`: enrolled WireGuard devices (no key material).
//! - `sessions`: SSH sessions (`ssh_sessions`), started and ended by the instance running them.
//! - `recordings`: sealed chunks of session recordings.
//! - `rows`: text columns back into validated model values.

mod devices;
mod error;
mod grants;
mod journal;
mod keys;
mod lock;
mod login;
mod notify;
mod recordings;
mod rows;
mod sessions;
mod sinks;
mod spool;
mod targets;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

pub use devices::StoredDevice;
pub use error::StoreError;
pub use journal::{JournalSearch, VerifyOutcome, MAX_SEARCH_LIMIT};
pub use keys::StoredKey;
pub use lock::InstanceLock;
pub use notify::{CHANGE_CHANNEL, MAX_NOTIFY_PAYLOAD};
pub use recordings::SealedChunk;
pub use sessions::{SessionMode, SessionStart, MAX_SESSION_LIMIT};
pub use sinks::{QuarantineEntry, SinkStatus};
pub use spool::{is_unreachable, Journaled, Spool, SPOOL_FILE};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file under the state directory (WAL mode).
    Sqlite,
    /// PostgreSQL, possibly Amazon RDS over verified TLS.
    Postgres,
}

/// The embedded migrations (`migrations/` at the workspace root).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Serialises writers in this process. SQLite has one writer at a time anyway, and
    /// taking turns here avoids its lock-upgrade failures; on PostgreSQL the journal head row
    /// lock orders writers across gateways.
    writer: Arc<Mutex<()>>,
    /// The last journal seq committed through this handle (sinks wake on it; records written
    /// by another process are seen by their timers).
    head: Arc<watch::Sender<u64>>,
    /// The local audit spool (PostgreSQL gateways; see `spool`).
    spool: Arc<std::sync::OnceLock<spool::Spool>>,
    /// The gateway instance whose records this handle journals (`audit_events.instance`).
    instance: Arc<std::sync::OnceLock<String>>,
}

impl Store {
    /// Connects to `url`: `sqlite://PATH` (created if missing) or `postgres://…` (with
    /// `sslmode=verify-full&sslrootcert=CA.pem` for RDS).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        crate::tls::install_crypto_provider();
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Connect {
            url: redact_url(&url),
            cause: e.to_string(),
        })?;
        let max = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        // The journal's indexes outgrow SQLite's 2 MiB default page cache
                        // after a few hundred thousand records; appends then wait on reads.
                        sqlx::query("PRAGMA cache_size = -32768")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect {
                url: redact_url(&url),
                cause: e.to_string(),
            })?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            head: Arc::new(watch::channel(0).0),
            spool: Arc::default(),
            instance: Arc::default(),
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        if self.backend == Backend::Postgres {
            self.ensure_position_sequence().await?;
        }
        Ok(())
    }

    /// PostgreSQL hands out journal positions from a sequence, so appends to different chains
    /// never wait for each other (the one-dialect migrations cannot create it). Created once,
    /// never behind the positions already used. A gateway starting beside running ones only
    /// reads: no lock that appends could queue behind (one gateway's stuck append must not
    /// stall the others through a start-up). Creating it, gateways take turns on an advisory
    /// lock that nothing else uses.
    async fn ensure_position_sequence(&self) -> Result<(), StoreError> {
        if self.position_sequence_ready().await? {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sallyport.audit_position'))")
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE SEQUENCE IF NOT EXISTS audit_position")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "SELECT setval('audit_position', GREATEST(1, m), m > 0) FROM (SELECT GREATEST( \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_events), \
             (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit_position)) AS m) AS t",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `audit_position` exists and is not behind the journal's positions.
    async fn position_sequence_ready(&self) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT CASE WHEN to_regclass('audit_position') IS NULL THEN 0 ELSE 1 END AS present",
        )
        .fetch_one(&self.pool)
        .await?;
        if rows::int(&row, "present")? == 0 {
            return Ok(false);
        }
        let row = sqlx::query(
            "SELECT CASE WHEN (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit_position) \
             >= (SELECT COALESCE(MAX(seq), 0) FROM audit_events) THEN 1 ELSE 0 END AS ready",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(rows::int(&row, "ready")? == 1)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction.
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let guard = Arc::clone(&self.writer).lock_owned().await;
        let tx = match self.backend {
            // Take SQLite's write lock up front: a deferred transaction that reads first can
            // fail to upgrade when another process (`mint-token` beside `run`) wrote meanwhile.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            instance: self.instance.get().cloned(),
            backend: self.backend,
            last_seq: None,
            head: Arc::clone(&self.head),
            _guard: guard,
        })
    }

    /// Names the gateway instance whose audit records this store journals (set once, at
    /// start-up; later calls change nothing). Without it, records carry no instance.
    pub fn set_instance(&self, instance: &str) {
        let _ = self.instance.set(instance.to_owned());
    }

    /// The instance set with [`Store::set_instance`].
    pub fn instance(&self) -> Option<&str> {
        self.instance.get().map(String::as_str)
    }

    /// Follows the journal's head as committed through this store (in this process).
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A write transaction. Dropping it without [`WriteTx::commit`] rolls everything back,
/// journal records included.
#[derive(Debug)]
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    /// The instance its journal records name.
    instance: Option<String>,
    backend: Backend,
    /// The last record journaled in this transaction.
    last_seq: Option<u64>,
    head: Arc<watch::Sender<u64>>,
    _guard: OwnedMutexGuard<()>,
}

impl WriteTx {
    /// Commits the change and its journal records together.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if let Some(seq) = self.last_seq {
            self.head.send_if_modified(|h| {
                let newer = seq > *h;
                if newer {
                    *h = seq;
                }
                newer
            });
        }
        Ok(())
    }
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Milliseconds to the `u64` sequence space and back; the database keeps `BIGINT`.
pub(crate) fn seq_to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
