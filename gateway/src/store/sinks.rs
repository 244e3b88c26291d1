//! Audit sinks' durable state: the checkpoint (last journal seq acknowledged), all-time counters,
//! the last error, the quarantine list, and the backlog figures derived from them.

use sallyport_core::audit::{Event, Record};
use sallyport_core::time::Timestamp;

use super::rows::{int, opt_text, opt_time, text};
use super::{seq_to_db, Store, StoreError};

/// One sink as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// `cloudwatch:GROUP:STREAM` or `stdout`.
    pub sink: String,
    /// Every record up to here is delivered or quarantined.
    pub checkpoint_seq: u64,
    /// When the checkpoint last moved.
    pub updated_at: Timestamp,
    /// Records after the checkpoint.
    pub backlog_events: u64,
    /// Time of the oldest record not yet acknowledged.
    pub oldest_pending: Option<Timestamp>,
    /// Events accepted by the service, all time.
    pub delivered: u64,
    /// Events refused by the service, all time.
    pub rejected: u64,
    /// Events held back before sending, all time.
    pub quarantined: u64,
    /// The last delivery error since the last success.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<Timestamp>,
}

/// An event a sink did not deliver, and why (`too_old`, `too_new`, `expired`, `invalid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Journal sequence number.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Creates the sink's row (checkpoint 0) if it has none; returns its checkpoint.
    pub async fn open_sink(&self, sink: &str) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sink_checkpoints (sink, seq, updated_at) VALUES ($1, 0, $2) ON CONFLICT (sink) DO NOTHING",
        )
        .bind(sink.to_owned())
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        self.sink_checkpoint(sink).await
    }

    /// The sink's checkpoint (0 if it has none).
    pub async fn sink_checkpoint(&self, sink: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT seq FROM sink_checkpoints WHERE sink = $1")
            .bind(sink.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => count(int(&r, "seq")?),
            None => 0,
        })
    }

    /// Moves the checkpoint forward to `seq` (never back) and counts `delivered` events;
    /// clears the last error.
    pub async fn advance_sink(
        &self,
        sink: &str,
        seq: u64,
        delivered: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sink_checkpoints SET seq = CASE WHEN seq < $2 THEN $2 ELSE seq END, \
             delivered = delivered + $3, updated_at = $4, last_error = NULL, last_error_at = NULL \
             WHERE sink = $1",
        )
        .bind(sink.to_owned())
        .bind(seq_to_db(seq))
        .bind(seq_to_db(delivered))
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Notes a delivery error (shown in the backlog until the next success).
    pub async fn sink_error(&self, sink: &str, error: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sink_checkpoints SET last_error = $2, last_error_at = $3 WHERE sink = $1",
        )
        .bind(sink.to_owned())
        .bind(error.chars().take(500).collect::<String>())
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Lists `entries` as not delivered by `sink`, counts them as rejected (refused by the
    /// service) or quarantined (held back), and journals `report` — all in one transaction.
    /// Entries listed already are not counted again, and when none is new the report is not
    /// journaled (a shipper that crashed before moving its checkpoint records them again).
    pub async fn quarantine(
        &self,
        sink: &str,
        entries: &[QuarantineEntry],
        rejected: bool,
        report: &[Event],
    ) -> Result<Vec<Record>, StoreError> {
        let mut tx = self.write().await?;
        let now = Timestamp::now().as_millis();
        let mut added = 0u64;
        for e in entries {
            added += sqlx::query(
                "INSERT INTO sink_quarantine (sink, seq, reason, recorded_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sink, seq) DO NOTHING",
            )
            .bind(sink.to_owned())
            .bind(seq_to_db(e.seq))
            .bind(e.reason.clone())
            .bind(now)
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
        }
        if added == 0 {
            return Ok(Vec::new());
        }
        let column = if rejected { "rejected" } else { "quarantined" };
        sqlx::query(&format!(
            "UPDATE sink_checkpoints SET {column} = {column} + $2 WHERE sink = $1"
        ))
        .bind(sink.to_owned())
        .bind(seq_to_db(added))
        .execute(&mut *tx.tx)
        .await?;
        let records = tx.journal_many(report).await?;
        tx.commit().await?;
        Ok(records)
    }

    /// The quarantine list of `sink`, oldest first, at most `limit`.
    pub async fn quarantined(
        &self,
        sink: &str,
        limit: u32,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, reason FROM sink_quarantine WHERE sink = $1 ORDER BY seq LIMIT $2",
        )
        .bind(sink.to_owned())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QuarantineEntry {
                    seq: count(int(r, "seq")?),
                    reason: text(r, "reason")?,
                })
            })
            .collect()
    }

    /// Every sink's checkpoint, counters and backlog against the journal's head.
    pub async fn sink_statuses(&self) -> Result<Vec<SinkStatus>, StoreError> {
        let head = self.journal_head().await?.seq;
        let rows = sqlx::query(
            "SELECT sink, seq, updated_at, delivered, rejected, quarantined, last_error, last_error_at \
             FROM sink_checkpoints ORDER BY sink",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let checkpoint_seq = count(int(r, "seq")?);
            let backlog_events = head.saturating_sub(checkpoint_seq);
            let oldest_pending = if backlog_events == 0 {
                None
            } else {
                sqlx::query("SELECT time_ms FROM audit_events WHERE seq = $1")
                    .bind(seq_to_db(checkpoint_seq.saturating_add(1)))
                    .fetch_optional(self.pool())
                    .await?
                    .map(|row| int(&row, "time_ms").map(Timestamp::from_millis))
                    .transpose()?
            };
            out.push(SinkStatus {
                sink: text(r, "sink")?,
                checkpoint_seq,
                updated_at: Timestamp::from_millis(int(r, "updated_at")?),
                backlog_events,
                oldest_pending,
                delivered: count(int(r, "delivered")?),
                rejected: count(int(r, "rejected")?),
                quarantined: count(int(r, "quarantined")?),
                last_error: opt_text(r, "last_error")?,
                last_error_at: opt_time(r, "last_error_at")?,
            });
        }
        Ok(out)
    }
}
