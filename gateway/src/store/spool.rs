//! The local audit spool: where a gateway on PostgreSQL keeps audit events while the database
//! is out of reach, until they are in the journal.
//!
//! ```text
//!  Store::journal_or_spool(event)
//!    spool empty? ──▶ append to the journal ──ok──▶ Committed(record)
//!        │                 └─ database unreachable ─┐
//!        └─ not empty: drain first; still failing ──┴▶ append a JSON line to STATE_DIR/audit-spool.jsonl,
//!                                                      fsync ─▶ Spooled
//!  Store::drain_spool() (after every successful resync, and at start-up)
//!    read the lines ─▶ drop events whose id is in the journal already (a drain that committed
//!    but crashed before truncating) ─▶ journal them in order, in one transaction ─▶ COMMIT
//!    ─▶ truncate the file, fsync
//! ```
//!
//! An event is acknowledged only once it is committed or fsync'd here, so a crash loses nothing
//! acknowledged. Events keep their id, time, actor, source and session; they are chained when
//! drained, into this gateway's chain. Only whole lines count: a line
//! torn by a crash during its write was never acknowledged and is skipped with a warning.
//! The file holds what sessions did (no key material); it is mode 0600 in the state directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Notify};

use super::{SessionStart, Store, StoreError};

/// The spool file's name in the state directory.
pub const SPOOL_FILE: &str = "audit-spool.jsonl";

/// Ids looked up per query while draining.
const IDS_PER_QUERY: usize = 500;

/// How long an event waits for the database before it is spooled instead. A stopped server
/// refuses connections, and the pool retries those until its own acquire timeout (10 s): an SSH
/// handshake must not wait that long for its audit record.
pub const JOURNAL_ATTEMPT: Duration = Duration::from_secs(2);

/// What became of an event handed to [`Store::journal_or_spool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journaled {
    /// In the journal, with its record.
    Committed(Box<sallyport_core::audit::Record>),
    /// In the local spool (fsync'd); journaled when the database is back.
    Spooled,
}

/// The spool file and the number of events in it.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    pending: Mutex<usize>,
    /// Woken when events are spooled, so the resync loop drains soon (`spooled`).
    spooled: Notify,
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: uuid::Uuid,
    time_ms: i64,
    actor: String,
    source: Option<String>,
    session: Option<String>,
    kind: EventKind,
}

impl Spool {
    /// The spool at `dir/audit-spool.jsonl`; counts what an earlier run left in it.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(SPOOL_FILE);
        let pending = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text.lines().filter(|l| !l.trim().is_empty()).count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(spool_error(&path, e)),
        };
        if pending > 0 {
            tracing::warn!(path = %path.display(), events = pending, "audit events spooled by an earlier run wait for the journal");
        }
        Ok(Self {
            path,
            pending: Mutex::new(pending),
            spooled: Notify::new(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves once events have been spooled since the last call (a permit is kept if nobody
    /// waits): the resync loop then tries to reach the database and drain soon.
    pub async fn spooled(&self) {
        self.spooled.notified().await;
    }

    /// Events waiting.
    pub async fn pending(&self) -> usize {
        *self.pending.lock().await
    }

    async fn append(&self, pending: &mut usize, events: &[Event]) -> Result<(), StoreError> {
        let mut text = String::new();
        for e in events {
            let line = Line {
                id: e.id,
                time_ms: e.time.as_millis(),
                actor: e.actor.clone(),
                source: e.source.clone(),
                session: e.session.clone(),
                kind: e.kind.clone(),
            };
            let json = serde_json::to_string(&line).map_err(|e| StoreError::Corrupt {
                what: "spooled audit event".into(),
                why: e.to_string(),
            })?;
            text.push_str(&json);
            text.push('\n');
        }
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        file.write_all(text.as_bytes())
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        file.sync_data()
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        *pending += events.len();
        self.spooled.notify_one();
        Ok(())
    }

    async fn read(&self) -> Result<Vec<Event>, StoreError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(spool_error(&self.path, e)),
        };
        let mut events = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(line) {
                Ok(l) => events.push(Event {
                    id: l.id,
                    time: Timestamp::from_millis(l.time_ms),
                    actor: l.actor,
                    source: l.source,
                    session: l.session,
                    kind: l.kind,
                }),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), line = n + 1, cause = %e, "skipping an unreadable spool line (torn by a crash while it was written; never acknowledged)");
                }
            }
        }
        Ok(events)
    }

    async fn clear(&self, pending: &mut usize) -> Result<(), StoreError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        file.set_len(0)
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        file.sync_all()
            .await
            .map_err(|e| spool_error(&self.path, e))?;
        *pending = 0;
        Ok(())
    }
}

fn spool_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Spool {
        path: path.display().to_string(),
        source: e,
    }
}

/// Runs a journal operation for at most [`JOURNAL_ATTEMPT`]; running out of time is reported as
/// the pool timing out (unreachable). A transaction cut short is rolled back; one whose commit
/// was already on its way may have committed: its events are then spooled too, and the drain
/// recognises them by id.
pub(crate) async fn bounded<T>(
    op: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(JOURNAL_ATTEMPT, op)
        .await
        .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolTimedOut)))
}

/// Whether `e` means the database could not be reached (rather than refusing the statement).
pub fn is_unreachable(e: &StoreError) -> bool {
    match e {
        StoreError::Connect { .. } => true,
        StoreError::Database(e) => match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            // Class 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now).
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        },
        _ => false,
    }
}

impl Store {
    /// Keeps audit events in a local spool under `dir` while the database is out of reach
    /// ([`Store::journal_or_spool`]). Set once, at start-up; later calls change nothing.
    pub async fn enable_spool(&self, dir: &Path) -> Result<(), StoreError> {
        let spool = Spool::open(dir).await?;
        let _ = self.spool.set(spool);
        Ok(())
    }

    /// The spool, if enabled.
    pub fn spool(&self) -> Option<&Spool> {
        self.spool.get()
    }

    /// Runs a write that is not the journal (the `ssh_sessions` row) on the access path: at
    /// once unreachable while audit events are spooled (the database did not answer), else
    /// bounded by [`JOURNAL_ATTEMPT`] like a journal write.
    pub async fn write_on_access_path<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Some(spool) = self.spool() {
            if spool.pending().await > 0 {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
        }
        bounded(op).await
    }

    /// Journals `event`, or, if the database is out of reach and a spool is enabled, spools
    /// it durably. A database that does not answer within [`JOURNAL_ATTEMPT`] counts as out of
    /// reach. While the spool holds anything, new events go straight after it (this gateway's
    /// events keep their order, and only the first event of an outage waits); the resync loop
    /// drains it once the database answers again.
    pub async fn journal_or_spool(&self, event: &Event) -> Result<Journaled, StoreError> {
        let Some(spool) = self.spool() else {
            return self
                .append_event(event)
                .await
                .map(|r| Journaled::Committed(Box::new(r)));
        };
        let mut pending = spool.pending.lock().await;
        if *pending > 0 {
            // Behind what is spooled already, and without waiting for the database: the resync
            // loop drains the spool as soon as it reaches it.
            spool
                .append(&mut pending, std::slice::from_ref(event))
                .await?;
            return Ok(Journaled::Spooled);
        }
        match bounded(self.append_event(event)).await {
            Ok(r) => Ok(Journaled::Committed(Box::new(r))),
            Err(e) if is_unreachable(&e) => {
                tracing::warn!(cause = %e, event = %event.kind.name(), "database unreachable: audit event spooled locally");
                spool
                    .append(&mut pending, std::slice::from_ref(event))
                    .await?;
                Ok(Journaled::Spooled)
            }
            Err(e) => Err(e),
        }
    }

    /// Spools `events` (the journal writer's group that could not be committed). Fails if no
    /// spool is enabled.
    pub async fn spool_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let Some(spool) = self.spool() else {
            return Err(StoreError::Corrupt {
                what: "audit spool".into(),
                why: "no spool is enabled".into(),
            });
        };
        let mut pending = spool.pending.lock().await;
        spool.append(&mut pending, events).await
    }

    /// Moves everything spooled into the journal; returns how many events it journaled.
    pub async fn drain_spool(&self) -> Result<usize, StoreError> {
        let Some(spool) = self.spool() else {
            return Ok(0);
        };
        let mut pending = spool.pending.lock().await;
        if *pending == 0 {
            return Ok(0);
        }
        self.drain_locked(spool, &mut pending).await
    }

    async fn drain_locked(&self, spool: &Spool, pending: &mut usize) -> Result<usize, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let events: Vec<Event> = spool
            .read()
            .await?
            .into_iter()
            .filter(|e| seen.insert(e.id))
            .collect();
        let mut tx = self.write().await?;
        let mut fresh = Vec::with_capacity(events.len());
        for chunk in events.chunks(IDS_PER_QUERY) {
            let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT id FROM audit_events WHERE id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q.bind(e.id.to_string());
            }
            let present: std::collections::HashSet<String> = q
                .fetch_all(&mut *tx.tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<_, _>>()?;
            fresh.extend(
                chunk
                    .iter()
                    .filter(|e| !present.contains(&e.id.to_string()))
                    .cloned(),
            );
        }
        let count = fresh.len();
        tx.journal_many(&fresh).await?;
        // The `ssh_sessions` rows of sessions that began or ended while the database was out
        // of reach (their rows were not waited for), from the events, in the same transaction:
        // a start inserts the row unless it exists, an end completes a row not ended yet.
        let instance = self.instance().unwrap_or_default();
        for e in &fresh {
            if let Some(start) = SessionStart::from_event(e, instance) {
                tx.insert_session(&start, true).await?;
            } else if let (EventKind::SshSessionEnded { reason, .. }, Some(id)) =
                (&e.kind, &e.session)
            {
                tx.end_session(id, e.time, reason).await?;
            }
        }
        tx.commit().await?;
        spool.clear(pending).await?;
        tracing::info!(
            events = count,
            "audit events spooled while the database was out of reach are in the journal"
        );
        Ok(count)
    }
}
