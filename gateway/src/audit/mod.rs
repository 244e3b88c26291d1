//! Audit delivery: the group-commit journal writer, and the sinks that ship the journal to
//! CloudWatch Logs and stdout.
//!
//! ```text
//!  SSH / VPN / … ──JournalWriter::record/submit──▶ bounded queue (8,192) ──▶ writer task:
//!      up to 2,048 events per transaction (one head read, chained in memory) ──▶ journal
//!  admin changes ──WriteTx::journal (same transaction as the change)──────────▶ journal
//!                                                                                 │
//!   one Shipper per sink, per chain it follows (the store's own, and the shared chain):
//!        checkpoint ─▶ read after it ─▶ flat JSON ─▶ batch::plan ─▶ Sink
//!        ▲  (sink_checkpoints, per (sink, chain))            │ quarantined ─▶ reported
//!        └──────── advance after the sink accepts ◀──────────┘ rejected   ─▶ reported
//! ```
//!
//! The journal is the buffer: a sink that is slow or down only makes its backlog grow
//! (`GET /v1/audit/backlog`); it never blocks a writer and nothing is dropped. Delivery is
//! at-least-once: the checkpoint moves only after the sink accepted a batch, so a crash between
//! the two sends that batch again, and each event carries its `id` and `seq` to recognise it.
//!
//! # Layout
//!
//! - `writer`: [`JournalWriter`], group commit with a bounded queue.
//! - `shipper`: [`Shipper`], the per-sink loop (flush timer, retries, a checkpoint per chain).
//! - `backoff`: exponential backoff with jitter.
//! - `cloudwatch`: [`CloudWatchSink`] (`PutLogEvents`, a stream per gateway instance).
//! - `lines`: [`LinesSink`], JSON lines on stdout (or any async writer).

mod backoff;
mod cloudwatch;
mod lines;
mod shipper;
mod writer;

use std::future::Future;

use sallyport_core::audit::batch::{Limits, LogEvent};

pub use backoff::Backoff;
pub use cloudwatch::{cloudwatch_client, CloudWatchSink};
pub use lines::LinesSink;
pub use shipper::{spawn_shipper, Shipper, ShipperOptions};
pub use writer::{JournalWriter, WriterError, GROUP_MAX, QUEUE_CAPACITY};

/// Where a sink's delivery failed, and what the shipper should do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Throttling, service unavailable, 5xx, timeouts, transport errors: send the same events
    /// again after a backoff.
    #[error("{0} (will retry)")]
    Retryable(String),
    /// The service refused the request as invalid: never sent again as it is. The shipper
    /// splits the batch to find the events it refuses, and reports them.
    #[error("refused: {0}")]
    Refused(String),
    /// The destination (log stream) does not exist: prepare again, then retry.
    #[error("destination missing: {0}")]
    Missing(String),
}

/// Why the service did not take some events of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Too far ahead of the service's clock.
    TooNew,
    /// Older than the service accepts.
    TooOld,
    /// Older than the log group's retention.
    Expired,
}

impl RejectReason {
    /// `too_new`, `too_old`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TooNew => "too_new",
            RejectReason::TooOld => "too_old",
            RejectReason::Expired => "expired",
        }
    }
}

/// What the service said about an accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events of the request (by index) that it did not store, and why.
    pub rejected: Vec<(usize, RejectReason)>,
}

/// A destination for journal records. One request at a time: the shipper never calls
/// `deliver` again before the previous call returned.
pub trait Sink: Send + 'static {
    /// Stable name, the checkpoint's key (`cloudwatch:GROUP:STREAM`, `stdout`).
    fn name(&self) -> &str;

    /// The batching rules this destination enforces.
    fn limits(&self) -> Limits;

    /// Makes the destination ready (creates the log stream if missing). Called before the
    /// first delivery and after [`SinkError::Missing`].
    fn prepare(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Sends one batch: events sorted by time, within [`Sink::limits`].
    fn deliver(
        &mut self,
        events: &[LogEvent],
    ) -> impl Future<Output = Result<Delivery, SinkError>> + Send;
}
