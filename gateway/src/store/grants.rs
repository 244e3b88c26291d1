use sallyport_core::model::{Grant, GrantId, GrantOptions, Subject, TargetName, UserName};
use sallyport_core::time::Timestamp;
use sqlx::any::AnyRow;

use super::rows::{int, join, opt_text, opt_time, parse, parse_list, text, time};
use super::{Store, StoreError, WriteTx};

const COLUMNS: &str =
    "id, subject, object, protocols, ports, logins, not_before, expires_at, reason, \
                       granted_by, created_at, revoked_at, revoked_by, agent_forwarding, port_forwarding";

/// How long after expiry a grant stays in the policy snapshot, so a denial can say "expired"
/// rather than "no grant".
const EXPIRED_KEPT_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Grants, newest first: all of them, or those whose subject is one of `subjects`.
    pub async fn list_grants(
        &self,
        subjects: Option<&[Subject]>,
    ) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants ORDER BY created_at DESC, id"
        ))
        .fetch_all(self.pool())
        .await?;
        let grants = rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match subjects {
            Some(s) => grants
                .into_iter()
                .filter(|g| s.contains(&g.subject))
                .collect(),
            None => grants,
        })
    }

    /// One grant.
    pub async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM grants WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Grants the policy snapshot needs at `now`: not revoked, and not long expired.
    pub async fn policy_grants(&self, now: Timestamp) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants WHERE revoked_at IS NULL AND expires_at > $1"
        ))
        .bind(now.as_millis().saturating_sub(EXPIRED_KEPT_MS))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }
}

impl WriteTx {
    /// Stores a new grant.
    pub async fn insert_grant(&mut self, g: &Grant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grants (id, subject, object, protocols, ports, logins, not_before, expires_at, reason, \
             granted_by, created_at, agent_forwarding, port_forwarding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(g.id.to_string())
        .bind(g.subject.to_string())
        .bind(g.object.to_string())
        .bind(g.protocols.to_string())
        .bind(g.ports.to_string())
        .bind(join(&g.logins))
        .bind(g.not_before.as_millis())
        .bind(g.expires_at.as_millis())
        .bind(g.reason.to_string())
        .bind(g.granted_by.to_string())
        .bind(g.created_at.as_millis())
        .bind(i64::from(g.options.agent_forwarding))
        .bind(i64::from(g.options.port_forwarding))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "grant", &g.id.to_string()))?;
        Ok(())
    }

    /// Marks a grant revoked and returns it as it is now; refuses one revoked already.
    pub async fn revoke_grant(
        &mut self,
        id: GrantId,
        at: Timestamp,
        by: &UserName,
    ) -> Result<Grant, StoreError> {
        let done = sqlx::query("UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(at.as_millis())
            .bind(by.to_string())
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM grants WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "grant",
                name: id.to_string(),
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                kind: "revocation of grant",
                name: id.to_string(),
            });
        }
        grant_from_row(&row)
    }

    /// How many grants to `target` are still in force or pending at `now`.
    pub async fn live_grants_to_target(
        &mut self,
        target: &TargetName,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM grants WHERE object = $1 AND revoked_at IS NULL AND expires_at > $2")
            .bind(target.to_string())
            .bind(now.as_millis())
            .fetch_one(&mut *self.tx)
            .await?;
        super::rows::int(&row, "n")
    }

    /// Grants whose expiry has come by `now` and has not been journaled yet; each is claimed
    /// (marked recorded) so that only one writer journals it, also across gateways.
    pub async fn claim_due_expiries(&mut self, now: Timestamp) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants WHERE expiry_recorded = 0 AND revoked_at IS NULL AND expires_at <= $1"
        ))
        .bind(now.as_millis())
        .fetch_all(&mut *self.tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let g = grant_from_row(row)?;
            let done = sqlx::query(
                "UPDATE grants SET expiry_recorded = 1 WHERE id = $1 AND expiry_recorded = 0",
            )
            .bind(g.id.to_string())
            .execute(&mut *self.tx)
            .await?;
            if done.rows_affected() == 1 {
                claimed.push(g);
            }
        }
        Ok(claimed)
    }
}

fn grant_from_row(row: &AnyRow) -> Result<Grant, StoreError> {
    let id = text(row, "id")?;
    let what = |col: &str| format!("{col} of grant {id}");
    let revoked_by: Option<UserName> = opt_text(row, "revoked_by")?
        .map(|b| parse(|| what("revoked_by"), &b))
        .transpose()?;
    let revoked = match (opt_time(row, "revoked_at")?, revoked_by) {
        (Some(at), Some(by)) => Some((at, by)),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt {
                what: what("revocation"),
                why: "time and admin must both be set".into(),
            })
        }
    };
    Ok(Grant {
        id: parse(|| format!("grant id {id:?}"), &id)?,
        subject: parse(|| what("subject"), &text(row, "subject")?)?,
        object: parse(|| what("object"), &text(row, "object")?)?,
        protocols: parse(|| what("protocols"), &text(row, "protocols")?)?,
        ports: parse(|| what("ports"), &text(row, "ports")?)?,
        logins: parse_list(|| what("logins"), &text(row, "logins")?)?
            .into_iter()
            .collect(),
        options: GrantOptions {
            agent_forwarding: flag(row, "agent_forwarding")?,
            port_forwarding: flag(row, "port_forwarding")?,
        },
        not_before: time(row, "not_before")?,
        expires_at: time(row, "expires_at")?,
        reason: parse(|| what("reason"), &text(row, "reason")?)?,
        granted_by: parse(|| what("granted_by"), &text(row, "granted_by")?)?,
        created_at: time(row, "created_at")?,
        revoked,
    })
}

/// A 0/1 column as a bool; anything else is corruption.
fn flag(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    match int(row, col)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(StoreError::Corrupt {
            what: format!("grant column {col}"),
            why: format!("expected 0 or 1, found {n}"),
        }),
    }
}
