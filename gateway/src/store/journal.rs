use sallyport_core::audit::{ChainError, ChainHead, ChainSummary, Event, Record, Verifier};
use sqlx::any::AnyRow;

use super::rows::{int, opt_text, text, time};
use super::{seq_to_db, Backend, Store, StoreError, WriteTx};

/// What to look for in the journal (the API's query, validated).
pub type JournalSearch = sallyport_core::api::AuditQuery;

/// The result of verifying the whole journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// What verified, up to the first problem.
    pub summary: ChainSummary,
    /// The first problem, if any.
    pub error: Option<ChainError>,
}

const COLUMNS: &str =
    "seq, id, time_ms, event, code, version, actor, user_name, target, session, source, data, prev_hash, hash";

/// Records read per round trip while verifying.
const VERIFY_PAGE: i64 = 2000;

/// Largest page a search returns.
pub const MAX_SEARCH_LIMIT: u32 = 10_000;

/// Rows per `INSERT` when journaling a group (15 binds each, well under every bind limit).
const ROWS_PER_INSERT: usize = 64;

impl WriteTx {
    /// Appends `event` to the journal inside this transaction.
    pub async fn journal(&mut self, event: &Event) -> Result<Record, StoreError> {
        let mut records = self.journal_many(std::slice::from_ref(event)).await?;
        records.pop().ok_or_else(|| StoreError::Corrupt {
            what: "journal".into(),
            why: "appending one event returned no record".into(),
        })
    }

    /// Appends `events`, in order, inside this transaction: the head is read (and on
    /// PostgreSQL locked) once, the records are chained in memory and inserted
    /// [`ROWS_PER_INSERT`] to a statement, and the head moves once.
    pub async fn journal_many(&mut self, events: &[Event]) -> Result<Vec<Record>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT seq, hash FROM journal_head WHERE id = 1{lock}"
        ))
        .fetch_one(&mut *self.tx)
        .await?;
        let mut head = ChainHead {
            seq: u64::try_from(int(&row, "seq")?).map_err(|_| StoreError::Corrupt {
                what: "journal head".into(),
                why: "negative sequence".into(),
            })?,
            hash: text(&row, "hash")?,
        };
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let record = head.append(event);
            head = ChainHead::from(&record);
            records.push(record);
        }
        // Numbered `$n` placeholders for PostgreSQL. SQLite gets anonymous `?` (bound in order):
        // sqlx looks up each numbered parameter's name, which SQLite finds by a linear scan, so
        // numbered parameters make a 896-parameter statement cost O(n²).
        let backend = self.backend;
        let placeholder = |n: usize| match backend {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite => "?".to_owned(),
        };
        for group in records.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..group.len())
                .map(|i| {
                    let cols: Vec<String> = (1..=15).map(|c| placeholder(i * 15 + c)).collect();
                    format!("({})", cols.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO audit_events ({COLUMNS}, instance) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for r in group {
                query = query
                    .bind(seq_to_db(r.seq))
                    .bind(r.id.clone())
                    .bind(r.time.as_millis())
                    .bind(r.event.clone())
                    .bind(r.code.clone())
                    .bind(i64::from(r.version))
                    .bind(r.actor.clone())
                    .bind(r.user.clone())
                    .bind(r.target.clone())
                    .bind(r.session.clone())
                    .bind(r.source.clone())
                    .bind(r.data.to_string())
                    .bind(r.prev_hash.clone())
                    .bind(r.hash.clone())
                    .bind(self.instance.clone());
            }
            query.execute(&mut *self.tx).await?;
        }
        sqlx::query("UPDATE journal_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq_to_db(head.seq))
            .bind(head.hash.clone())
            .execute(&mut *self.tx)
            .await?;
        self.last_seq = Some(head.seq);
        Ok(records)
    }
}

impl Store {
    /// Appends one event in its own transaction.
    pub async fn append_event(&self, event: &Event) -> Result<Record, StoreError> {
        let mut tx = self.write().await?;
        let r = tx.journal(event).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// The journal's head as recorded.
    pub async fn journal_head(&self) -> Result<ChainHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM journal_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(ChainHead {
            seq: u64::try_from(int(&row, "seq")?).unwrap_or(0),
            hash: text(&row, "hash")?,
        })
    }

    /// Up to `limit` records after `after_seq`, in sequence order (what sinks ship next).
    pub async fn journal_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq_to_db(after_seq))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Like [`Store::journal_after`], with the instance that journaled each record (`None` for
    /// records from before migration 0007, or journaled by a store without an instance).
    pub async fn journal_after_with_origin(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(Record, Option<String>)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, instance FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq_to_db(after_seq))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((record_from_row(row)?, opt_text(row, "instance")?)))
            .collect()
    }

    /// Records matching `q`, oldest first, at most `q.limit` (default 100, at most 10,000).
    pub async fn search_journal(&self, q: &JournalSearch) -> Result<Vec<Record>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let next = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            binds.len()
        };
        if let Some(u) = &q.user {
            let n = next(Bind::Text(u.clone()), &mut binds);
            sql.push_str(&format!(" AND (user_name = ${n} OR actor = ${n})"));
        }
        if let Some(t) = &q.event_type {
            let exact = next(Bind::Text(t.clone()), &mut binds);
            let prefix = format!("{t}.");
            let len = prefix.chars().count();
            let p = next(Bind::Text(prefix), &mut binds);
            sql.push_str(&format!(
                " AND (event = ${exact} OR substr(event, 1, {len}) = ${p})"
            ));
        }
        if let Some(t) = &q.target {
            let n = next(Bind::Text(t.clone()), &mut binds);
            sql.push_str(&format!(" AND target = ${n}"));
        }
        if let Some(s) = &q.session {
            let n = next(Bind::Text(s.clone()), &mut binds);
            sql.push_str(&format!(" AND session = ${n}"));
        }
        if let Some(t) = q.since {
            let n = next(Bind::Int(t.as_millis()), &mut binds);
            sql.push_str(&format!(" AND time_ms >= ${n}"));
        }
        if let Some(t) = q.until {
            let n = next(Bind::Int(t.as_millis()), &mut binds);
            sql.push_str(&format!(" AND time_ms < ${n}"));
        }
        if let Some(s) = q.after_seq {
            let n = next(Bind::Int(seq_to_db(s)), &mut binds);
            sql.push_str(&format!(" AND seq > ${n}"));
        }
        let limit = q.limit.unwrap_or(100).clamp(1, MAX_SEARCH_LIMIT);
        sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Walks the journal in sequence order up to the head read at the start, checks the chain,
    /// then that it ends exactly at that head. Records appended meanwhile are left for the next
    /// run, so a busy gateway never makes an intact journal look broken.
    pub async fn verify_journal(&self) -> Result<VerifyOutcome, StoreError> {
        let head = self.journal_head().await?;
        let mut verifier = Verifier::from_genesis();
        let mut after: i64 = 0;
        let last = seq_to_db(head.seq);
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT {VERIFY_PAGE}"
            ))
            .bind(after)
            .bind(last)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq = int(row, "seq")?;
                let record = match record_from_row(row) {
                    Ok(r) => r,
                    // A row whose columns no longer decode was edited by hand.
                    Err(
                        StoreError::Corrupt { .. }
                        | StoreError::Database(sqlx::Error::ColumnDecode { .. }),
                    ) => {
                        let seq = u64::try_from(seq).unwrap_or(0);
                        return Ok(VerifyOutcome {
                            summary: verifier.finish(),
                            error: Some(ChainError::Altered { seq }),
                        });
                    }
                    Err(e) => return Err(e),
                };
                after = seq;
                if let Err(e) = verifier.push(&record) {
                    return Ok(VerifyOutcome {
                        summary: verifier.finish(),
                        error: Some(e),
                    });
                }
            }
        }
        let summary = verifier.finish();
        let error = if summary.head.seq < head.seq {
            Some(ChainError::Truncated {
                head_seq: head.seq,
                last_seq: summary.head.seq,
            })
        } else if summary.head != head {
            Some(ChainError::BrokenLink {
                seq: head.seq,
                prev: summary.head.seq,
            })
        } else {
            None
        };
        Ok(VerifyOutcome { summary, error })
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

fn record_from_row(row: &AnyRow) -> Result<Record, StoreError> {
    let seq = int(row, "seq")?;
    let corrupt = |why: &str| StoreError::Corrupt {
        what: format!("journal record {seq}"),
        why: why.to_owned(),
    };
    let data: serde_json::Value =
        serde_json::from_str(&text(row, "data")?).map_err(|_| corrupt("data is not JSON"))?;
    Ok(Record {
        chain: None,
        seq: u64::try_from(seq).map_err(|_| corrupt("negative sequence"))?,
        id: text(row, "id")?,
        time: time(row, "time_ms")?,
        event: text(row, "event")?,
        code: text(row, "code")?,
        version: u16::try_from(int(row, "version")?)
            .map_err(|_| corrupt("version out of range"))?,
        actor: text(row, "actor")?,
        user: opt_text(row, "user_name")?,
        target: opt_text(row, "target")?,
        session: opt_text(row, "session")?,
        source: opt_text(row, "source")?,
        data,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}
