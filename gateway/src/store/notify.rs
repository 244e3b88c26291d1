//! Change propagation in the store: the `control_version` counter (migration 0006) and, on
//! PostgreSQL, a `NOTIFY` queued in the change's own transaction.
//!
//! ```text
//!  admin change / recorded expiry: BEGIN … journal … UPDATE control_version SET seq = seq + 1
//!                                  pg_notify(CHANGE_CHANNEL, payload)   (PostgreSQL only)
//!                                  COMMIT ─▶ PostgreSQL delivers the notification to every
//!                                            session that LISTENs (never for a rollback)
//! ```
//!
//! The counter is taken after the journal head in every transaction that moves both, so
//! gateways that change things at once lock the two rows in the same order.

use super::rows::int;
use super::{Backend, Store, StoreError, WriteTx};

/// The channel on which gateways announce control-plane changes to each other.
pub const CHANGE_CHANNEL: &str = "sallyport_control";

/// PostgreSQL refuses notification payloads of 8,000 bytes or more.
pub const MAX_NOTIFY_PAYLOAD: usize = 7_900;

impl WriteTx {
    /// Moves the control version on by one inside this transaction and returns the new value.
    /// On PostgreSQL, also queues `payload(new_version)` on [`CHANGE_CHANNEL`]; PostgreSQL
    /// delivers it when (and only if) the transaction commits. A payload too long for
    /// PostgreSQL is replaced by the bare version (receivers then re-check everything).
    pub async fn bump_control_version(
        &mut self,
        payload: impl FnOnce(u64) -> String,
    ) -> Result<u64, StoreError> {
        sqlx::query("UPDATE control_version SET seq = seq + 1 WHERE id = 1")
            .execute(&mut *self.tx)
            .await?;
        let row = sqlx::query("SELECT seq FROM control_version WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?;
        let version = version_of(int(&row, "seq")?)?;
        if self.backend == Backend::Postgres {
            let mut text = payload(version);
            if text.len() > MAX_NOTIFY_PAYLOAD {
                text = version.to_string();
            }
            // pg_notify returns `void`, which the Any driver cannot decode: select a constant
            // from it instead.
            sqlx::query("SELECT 1 AS queued FROM pg_notify($1, $2)")
                .bind(CHANGE_CHANNEL)
                .bind(text)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(version)
    }
}

impl Store {
    /// The control version as committed now.
    pub async fn control_version(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT seq FROM control_version WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        version_of(int(&row, "seq")?)
    }
}

fn version_of(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        what: "control version".into(),
        why: "negative sequence".into(),
    })
}
