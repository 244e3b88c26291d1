//! Group commit for high-rate events (SSH, VPN): many events, one transaction.
//!
//! ```text
//!  record(e) / submit(e) ──▶ mpsc (QUEUE_CAPACITY) ──▶ writer task
//!                                                      take 1, then whatever is queued (≤ GROUP_MAX)
//!                                                      BEGIN; journal_many(group); COMMIT
//!                                                      answer each record() with its Record
//! ```
//!
//! Overflow policy: the queue is bounded. When it is full, [`JournalWriter::record`] and
//! [`JournalWriter::submit`] wait for room (backpressure: producers slow to the journal's commit
//! rate, and nothing is dropped); [`JournalWriter::try_submit`] returns the event to a caller
//! that must not wait (a packet path), which then keeps it (for example folds it into an
//! aggregate record) and tries again. `submit` returns once the event is queued: it is durable
//! only after the group's commit, so a crash in between loses what was queued; callers whose
//! event must be durable before they go on use `record`.
//!
//! Admin changes do not come through here: they are journaled in their own transaction with
//! the change (`WriteTx::journal`), so a change and its record commit together. Both paths take
//! the store's writer lock, so the chain stays linear.

use std::time::Duration;

use sallyport_core::audit::{Event, Record};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{Store, StoreError};

/// Events that may wait for the writer.
pub const QUEUE_CAPACITY: usize = 8_192;
/// Most events in one transaction.
pub const GROUP_MAX: usize = 2_048;
/// Commit attempts for one group before its events are reported lost.
const COMMIT_ATTEMPTS: u32 = 5;

/// Why an event was not journaled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriterError {
    /// The writer has stopped (shutdown).
    #[error("the journal writer has stopped")]
    Stopped,
    /// The queue is full (only from `try_submit`, which hands the event back).
    #[error("the journal queue is full")]
    Full(Box<Event>),
    /// The store refused the group (after retries).
    #[error("journal write failed: {0}")]
    Store(String),
}

struct Job {
    event: Event,
    done: Option<oneshot::Sender<Result<Record, String>>>,
}

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped,
/// after writing what was queued.
#[derive(Debug, Clone)]
pub struct JournalWriter {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.event.id).finish()
    }
}

impl JournalWriter {
    /// Starts the writer task on `store`.
    pub fn spawn(store: Store) -> (Self, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run(store, rx));
        (Self { queue }, task)
    }

    /// Journals `event` and waits for its commit.
    pub async fn record(&self, event: Event) -> Result<Record, WriterError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job {
                event,
                done: Some(done),
            })
            .await
            .map_err(|_| WriterError::Stopped)?;
        match answer.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(WriterError::Store(e)),
            Err(_) => Err(WriterError::Stopped),
        }
    }

    /// Queues `event`, waiting for room if the queue is full; does not wait for the commit.
    pub async fn submit(&self, event: Event) -> Result<(), WriterError> {
        self.queue
            .send(Job { event, done: None })
            .await
            .map_err(|_| WriterError::Stopped)
    }

    /// Queues `event` if there is room now; otherwise hands it back in [`WriterError::Full`].
    pub fn try_submit(&self, event: Event) -> Result<(), WriterError> {
        self.queue
            .try_send(Job { event, done: None })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(job) => WriterError::Full(Box::new(job.event)),
                mpsc::error::TrySendError::Closed(_) => WriterError::Stopped,
            })
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut group: Vec<Job> = Vec::with_capacity(GROUP_MAX);
    while rx.recv_many(&mut group, GROUP_MAX).await > 0 {
        let (events, waiting): (Vec<Event>, Vec<_>) =
            group.drain(..).map(|j| (j.event, j.done)).unzip();
        let mut result = commit(&store, &events).await;
        let mut attempt = 1;
        while result.is_err() && attempt < COMMIT_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            attempt += 1;
            result = commit(&store, &events).await;
        }
        match result {
            Ok(records) => {
                for (done, record) in waiting.into_iter().zip(records) {
                    if let Some(done) = done {
                        let _ = done.send(Ok(record));
                    }
                }
            }
            Err(e) if store.spool().is_some() && crate::store::is_unreachable(&e) => {
                // Durable in the local spool; journaled when the database is back. Callers
                // waiting for a record get none (the event is not in the journal yet).
                let spooled = store.spool_events(&events).await;
                match &spooled {
                    Ok(()) => {
                        tracing::warn!(cause = %e, events = events.len(), "database unreachable: journal group spooled locally")
                    }
                    Err(s) => {
                        tracing::error!(cause = %e, spool = %s, events = events.len(), "journal group commit failed and the spool refused it; these events are lost")
                    }
                }
                for done in waiting.into_iter().flatten() {
                    let answer = match &spooled {
                        Ok(()) => format!("spooled locally, not yet in the journal ({e})"),
                        Err(s) => format!("{e}; spool: {s}"),
                    };
                    let _ = done.send(Err(answer));
                }
            }
            Err(e) => {
                let lost = waiting.iter().filter(|d| d.is_none()).count();
                tracing::error!(cause = %e, events = events.len(), unacknowledged = lost, "journal group commit failed; these events are not in the journal");
                for done in waiting.into_iter().flatten() {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn commit(store: &Store, events: &[Event]) -> Result<Vec<Record>, StoreError> {
    let mut tx = store.write().await?;
    let records = tx.journal_many(events).await?;
    tx.commit().await?;
    Ok(records)
}
