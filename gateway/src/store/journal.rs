use std::collections::{BTreeMap, BTreeSet};

use sallyport_core::audit::{
    ChainError, ChainHead, ChainReport, ChainSet, Event, Record, GENESIS_HASH,
};
use sqlx::any::AnyRow;

use super::rows::{int, opt_text, text, time};
use super::{seq_to_db, Backend, Store, StoreError, WriteTx};

/// What to look for in the journal (the API's query, validated).
pub type JournalSearch = sallyport_core::api::AuditQuery;

/// The result of verifying the whole journal: one report per chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// The shared chain first (if it has records), then each gateway instance's chain.
    pub chains: Vec<ChainReport>,
}

impl VerifyOutcome {
    /// The first problem of the first broken chain, if any.
    pub fn error(&self) -> Option<&ChainError> {
        self.chains.iter().find_map(|c| c.error.as_ref())
    }

    /// The broken chains: (chain, problem).
    pub fn broken(&self) -> impl Iterator<Item = (Option<&str>, &ChainError)> {
        self.chains
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| (c.chain.as_deref(), e)))
    }

    /// Records checked, all chains.
    pub fn count(&self) -> u64 {
        self.chains.iter().map(|c| c.summary.count).sum()
    }
}

/// The columns of a record; `seq` is the journal position, `chain_seq` the seq in its chain.
const COLUMNS: &str = "seq, chain, chain_seq, id, time_ms, event, code, version, actor, user_name, target, session, source, data, prev_hash, hash";

/// Binds per inserted row: [`COLUMNS`] and `instance`.
const BINDS_PER_ROW: usize = 17;

/// Records read per round trip while verifying.
const VERIFY_PAGE: i64 = 2000;

/// Largest page a search returns.
pub const MAX_SEARCH_LIMIT: u32 = 10_000;

/// Rows per `INSERT` when journaling a group (17 binds each, well under every bind limit).
const ROWS_PER_INSERT: usize = 64;

/// The `chain` column's value for a chain name (`''`: the shared chain).
fn chain_key(chain: Option<&str>) -> String {
    chain.unwrap_or_default().to_owned()
}

/// A chain name from the `chain` column.
fn chain_name(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

fn to_seq(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: what.to_owned(),
        why: "negative sequence".into(),
    })
}

impl WriteTx {
    /// Appends `event` to the journal inside this transaction.
    pub async fn journal(&mut self, event: &Event) -> Result<Record, StoreError> {
        let mut records = self.journal_many(std::slice::from_ref(event)).await?;
        records.pop().ok_or_else(|| StoreError::Corrupt {
            what: "journal".into(),
            why: "appending one event returned no record".into(),
        })
    }

    /// Appends `events`, in order, to this store's chain (its instance's, or the shared chain
    /// for a store without one) inside this transaction: the chain's head row is read (and on
    /// PostgreSQL locked; no other chain's) once, the records are chained in memory, given
    /// journal positions and inserted [`ROWS_PER_INSERT`] to a statement, and the head moves
    /// once.
    pub async fn journal_many(&mut self, events: &[Event]) -> Result<Vec<Record>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let chain = self.instance.clone();
        let key = chain_key(chain.as_deref());
        // Read the chain's head and lock its row in one round trip: the row is created by the
        // chain's first append, and `DO UPDATE` (a no-op) locks it on PostgreSQL until commit
        // (SQLite has one writer anyway). No other chain's row is touched.
        let row = sqlx::query(
            "INSERT INTO chain_heads (chain, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (chain) DO UPDATE SET seq = chain_heads.seq RETURNING seq, hash",
        )
        .bind(key.clone())
        .bind(GENESIS_HASH)
        .fetch_one(&mut *self.tx)
        .await?;
        let mut head = ChainHead {
            seq: to_seq(int(&row, "seq")?, "journal head")?,
            hash: text(&row, "hash")?,
        };
        let positions = self.positions(events.len()).await?;
        let mut records = Vec::with_capacity(events.len());
        for (event, pos) in events.iter().zip(positions) {
            let mut record = head.append_to(chain.as_deref(), event);
            record.pos = Some(pos);
            head = ChainHead::from(&record);
            records.push(record);
        }
        // Numbered `$n` placeholders for PostgreSQL. SQLite gets anonymous `?` (bound in order):
        // sqlx looks up each numbered parameter's name, which SQLite finds by a linear scan, so
        // numbered parameters make a 1,088-parameter statement cost O(n²).
        let backend = self.backend;
        let placeholder = |n: usize| match backend {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite => "?".to_owned(),
        };
        for group in records.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..group.len())
                .map(|i| {
                    let cols: Vec<String> = (1..=BINDS_PER_ROW)
                        .map(|c| placeholder(i * BINDS_PER_ROW + c))
                        .collect();
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
                    .bind(seq_to_db(r.pos.unwrap_or_default()))
                    .bind(key.clone())
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
        sqlx::query("UPDATE chain_heads SET seq = $1, hash = $2 WHERE chain = $3")
            .bind(seq_to_db(head.seq))
            .bind(head.hash.clone())
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        self.last_seq = Some(head.seq);
        Ok(records)
    }

    /// `n` new journal positions, ascending. PostgreSQL: from the `audit_position` sequence
    /// (no lock; positions may commit out of order across chains). SQLite: after the largest
    /// (one writer at a time).
    async fn positions(&mut self, n: usize) -> Result<Vec<u64>, StoreError> {
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        match self.backend {
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT nextval('audit_position') AS pos FROM generate_series(1, $1)",
                )
                .bind(count)
                .fetch_all(&mut *self.tx)
                .await?;
                let mut out = rows
                    .iter()
                    .map(|r| to_seq(int(r, "pos")?, "journal position"))
                    .collect::<Result<Vec<_>, _>>()?;
                out.sort_unstable();
                Ok(out)
            }
            Backend::Sqlite => {
                let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS pos FROM audit_events")
                    .fetch_one(&mut *self.tx)
                    .await?;
                let last = to_seq(int(&row, "pos")?, "journal position")?;
                Ok((1..=n as u64).map(|i| last + i).collect())
            }
        }
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

    /// The head of the chain this store appends to (its instance's, or the shared chain).
    pub async fn journal_head(&self) -> Result<ChainHead, StoreError> {
        Ok(self.chain_head(self.instance()).await?.unwrap_or_default())
    }

    /// The recorded head of `chain` (`None`: the shared chain), if it has one.
    pub async fn chain_head(&self, chain: Option<&str>) -> Result<Option<ChainHead>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM chain_heads WHERE chain = $1")
            .bind(chain_key(chain))
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(ChainHead {
                seq: to_seq(int(&row, "seq")?, "journal head")?,
                hash: text(&row, "hash")?,
            })
        })
        .transpose()
    }

    /// Every chain's recorded head: the shared chain's if it has records, and each gateway
    /// instance's that has journaled.
    pub async fn chain_heads(&self) -> Result<BTreeMap<Option<String>, ChainHead>, StoreError> {
        let rows = sqlx::query("SELECT chain, seq, hash FROM chain_heads ORDER BY chain")
            .fetch_all(self.pool())
            .await?;
        let mut heads = BTreeMap::new();
        for row in &rows {
            let chain = chain_name(text(row, "chain")?);
            let head = ChainHead {
                seq: to_seq(int(row, "seq")?, "journal head")?,
                hash: text(row, "hash")?,
            };
            if chain.is_some() || head.seq > 0 {
                heads.insert(chain, head);
            }
        }
        Ok(heads)
    }

    /// Up to `limit` records after journal position `after_pos`, in position order, all chains.
    /// On PostgreSQL a position can commit after a larger one: follow chains with
    /// [`Store::chain_after`] to miss nothing.
    pub async fn journal_after(
        &self,
        after_pos: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq_to_db(after_pos))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Up to `limit` records of `chain` (`None`: the shared chain) after its seq `after_seq`,
    /// in the chain's order, each with the instance that journaled it (`None` for records
    /// from before migration 0007, or journaled by a store without an instance). A chain's
    /// records commit in its order, so a reader following one this way misses nothing.
    pub async fn chain_after(
        &self,
        chain: Option<&str>,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(Record, Option<String>)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, instance FROM audit_events WHERE chain = $1 AND chain_seq > $2 \
             ORDER BY chain_seq LIMIT $3"
        ))
        .bind(chain_key(chain))
        .bind(seq_to_db(after_seq))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((record_from_row(row)?, opt_text(row, "instance")?)))
            .collect()
    }

    /// Records matching `q`, in journal position order, at most `q.limit` (default 100, at
    /// most 10,000).
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
        if let Some(c) = &q.chain {
            let n = next(Bind::Text(c.clone()), &mut binds);
            sql.push_str(&format!(" AND chain = ${n}"));
            if let Some(s) = q.after_chain_seq {
                let n = next(Bind::Int(seq_to_db(s)), &mut binds);
                sql.push_str(&format!(" AND chain_seq > ${n}"));
            }
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

    /// Verifies every chain: reads the recorded heads, walks the journal in position order
    /// checking each chain up to its head, then that each ends exactly at its head. Records
    /// appended meanwhile (past a head, or of a chain begun meanwhile) are left for the next
    /// run, so busy gateways never make an intact journal look broken.
    pub async fn verify_journal(&self) -> Result<VerifyOutcome, StoreError> {
        let heads = self.chain_heads().await?;
        let mut set = ChainSet::from_genesis();
        // Chains without a head when the run began: broken (`Headless`) unless their head
        // turns up by the end (a gateway's first append, committed meanwhile).
        let mut headless = ChainSet::from_genesis();
        let mut after: i64 = 0;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT {VERIFY_PAGE}"
            ))
            .bind(after)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                after = int(row, "seq")?;
                let record = match record_from_row(row) {
                    Ok(r) => r,
                    // A row whose columns no longer decode was edited by hand.
                    Err(
                        StoreError::Corrupt { .. }
                        | StoreError::Database(sqlx::Error::ColumnDecode { .. }),
                    ) => {
                        let chain = opt_text(row, "chain").ok().flatten().and_then(chain_name);
                        let seq = int(row, "chain_seq")
                            .ok()
                            .and_then(|s| u64::try_from(s).ok());
                        set.fail(
                            chain,
                            ChainError::Altered {
                                seq: seq.unwrap_or(0),
                            },
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match heads.get(&record.chain) {
                    Some(head) if record.seq > head.seq => {}
                    Some(_) => set.push(&record),
                    None => headless.push(&record),
                }
            }
        }
        let mut chains = set.finish(&heads);
        let now = self.chain_heads().await?;
        let begun: BTreeSet<&Option<String>> = now.keys().collect();
        chains.extend(
            headless
                .finish(&BTreeMap::new())
                .into_iter()
                .filter(|r| !begun.contains(&r.chain)),
        );
        chains.sort_by(|a, b| a.chain.cmp(&b.chain));
        Ok(VerifyOutcome { chains })
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

fn record_from_row(row: &AnyRow) -> Result<Record, StoreError> {
    let pos = int(row, "seq")?;
    let corrupt = |why: &str| StoreError::Corrupt {
        what: format!("journal record at position {pos}"),
        why: why.to_owned(),
    };
    let data: serde_json::Value =
        serde_json::from_str(&text(row, "data")?).map_err(|_| corrupt("data is not JSON"))?;
    Ok(Record {
        chain: chain_name(text(row, "chain")?),
        seq: u64::try_from(int(row, "chain_seq")?).map_err(|_| corrupt("negative sequence"))?,
        pos: Some(u64::try_from(pos).map_err(|_| corrupt("negative position"))?),
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
