//! Audit sinks' durable state, per (sink, chain): the checkpoint (the last seq of that chain the
//! sink acknowledged), all-time counters, the last error, the quarantine list, and the backlog
//! figures derived from them.
//!
//! A chain is named by its gateway instance; `None` is the shared chain (stored as `''`): the
//! records from before per-instance chains, and those journaled by a store without an instance.
//! A chain's records commit in its own order, so a checkpoint on the chain's seq misses nothing;
//! journal positions can commit out of order across chains on PostgreSQL and are never used
//! here.

use sallyport_core::audit::{Event, Record};
use sallyport_core::time::Timestamp;

use super::rows::{int, opt_text, opt_time, text};
use super::{seq_to_db, Store, StoreError};

/// One sink's state for one chain, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// `cloudwatch:GROUP:STREAM` or `stdout`.
    pub sink: String,
    /// The chain (a gateway instance); `None` for the shared chain.
    pub chain: Option<String>,
    /// Every record of the chain up to this seq is delivered or quarantined.
    pub checkpoint_seq: u64,
    /// When the checkpoint last moved.
    pub updated_at: Timestamp,
    /// Records of the chain after the checkpoint (its head's seq minus the checkpoint).
    pub backlog_events: u64,
    /// Time of the chain's oldest record not yet acknowledged.
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
    /// The record's seq in its chain.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The `chain` column's value for a chain name (`''`: the shared chain).
fn chain_key(chain: Option<&str>) -> String {
    chain.unwrap_or_default().to_owned()
}

impl Store {
    /// Creates the (sink, chain) row (checkpoint 0) if it has none; returns its checkpoint.
    /// `chain` `None` is the shared chain.
    pub async fn open_sink(&self, sink: &str, chain: Option<&str>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sink_checkpoints (sink, chain, seq, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (sink, chain) DO NOTHING",
        )
        .bind(sink.to_owned())
        .bind(chain_key(chain))
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        self.sink_checkpoint(sink, chain).await
    }

    /// The sink's checkpoint in `chain` (0 if it has none).
    pub async fn sink_checkpoint(
        &self,
        sink: &str,
        chain: Option<&str>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT seq FROM sink_checkpoints WHERE sink = $1 AND chain = $2")
            .bind(sink.to_owned())
            .bind(chain_key(chain))
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => count(int(&r, "seq")?),
            None => 0,
        })
    }

    /// Moves the sink's checkpoint in `chain` forward to `seq` (never back) and counts
    /// `delivered` events; clears the last error. The row must exist ([`Store::open_sink`]).
    pub async fn advance_sink(
        &self,
        sink: &str,
        chain: Option<&str>,
        seq: u64,
        delivered: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sink_checkpoints SET seq = CASE WHEN seq < $3 THEN $3 ELSE seq END, \
             delivered = delivered + $4, updated_at = $5, last_error = NULL, last_error_at = NULL \
             WHERE sink = $1 AND chain = $2",
        )
        .bind(sink.to_owned())
        .bind(chain_key(chain))
        .bind(seq_to_db(seq))
        .bind(seq_to_db(delivered))
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Notes a delivery error while shipping `chain` (shown in the backlog until the next
    /// success in that chain).
    pub async fn sink_error(
        &self,
        sink: &str,
        chain: Option<&str>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sink_checkpoints SET last_error = $3, last_error_at = $4 \
             WHERE sink = $1 AND chain = $2",
        )
        .bind(sink.to_owned())
        .bind(chain_key(chain))
        .bind(error.chars().take(500).collect::<String>())
        .bind(Timestamp::now().as_millis())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Lists `entries` (seqs of `chain`) as not delivered by `sink`, counts them as rejected
    /// (refused by the service) or quarantined (held back), and journals `report` — all in one
    /// transaction. Entries listed already are not counted again, and when none is new the
    /// report is not journaled (a shipper that crashed before moving its checkpoint records them
    /// again).
    pub async fn quarantine(
        &self,
        sink: &str,
        chain: Option<&str>,
        entries: &[QuarantineEntry],
        rejected: bool,
        report: &[Event],
    ) -> Result<Vec<Record>, StoreError> {
        let mut tx = self.write().await?;
        let now = Timestamp::now().as_millis();
        let mut added = 0u64;
        for e in entries {
            added += sqlx::query(
                "INSERT INTO sink_quarantine (sink, chain, seq, reason, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sink, chain, seq) DO NOTHING",
            )
            .bind(sink.to_owned())
            .bind(chain_key(chain))
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
            "UPDATE sink_checkpoints SET {column} = {column} + $3 WHERE sink = $1 AND chain = $2"
        ))
        .bind(sink.to_owned())
        .bind(chain_key(chain))
        .bind(seq_to_db(added))
        .execute(&mut *tx.tx)
        .await?;
        let records = tx.journal_many(report).await?;
        tx.commit().await?;
        Ok(records)
    }

    /// The quarantine list of `sink` in `chain`, oldest first, at most `limit`.
    pub async fn quarantined(
        &self,
        sink: &str,
        chain: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, reason FROM sink_quarantine WHERE sink = $1 AND chain = $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(sink.to_owned())
        .bind(chain_key(chain))
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

    /// Every (sink, chain)'s checkpoint, counters and backlog against that chain's head, by
    /// sink then chain (the shared chain first).
    pub async fn sink_statuses(&self) -> Result<Vec<SinkStatus>, StoreError> {
        let heads = self.chain_heads().await?;
        let rows = sqlx::query(
            "SELECT sink, chain, seq, updated_at, delivered, rejected, quarantined, last_error, \
             last_error_at FROM sink_checkpoints ORDER BY sink, chain",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let key = text(r, "chain")?;
            let chain = (!key.is_empty()).then_some(key);
            let checkpoint_seq = count(int(r, "seq")?);
            let head = heads.get(&chain).map_or(0, |h| h.seq);
            let backlog_events = head.saturating_sub(checkpoint_seq);
            let oldest_pending = if backlog_events == 0 {
                None
            } else {
                self.chain_after(chain.as_deref(), checkpoint_seq, 1)
                    .await?
                    .first()
                    .map(|(record, _)| record.time)
            };
            out.push(SinkStatus {
                sink: text(r, "sink")?,
                chain,
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
