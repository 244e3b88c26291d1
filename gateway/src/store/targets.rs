use sallyport_core::model::{SshPublicKey, Target, TargetName};
use sqlx::any::AnyRow;

use super::rows::{opt_text, parse, text, time};
use super::{Store, StoreError, WriteTx};

const COLUMNS: &str = "name, address, host_key, created_at";

impl Store {
    /// Every target, by name.
    pub async fn list_targets(&self) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM targets ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(target_from_row).collect()
    }
}

impl WriteTx {
    /// One target, inside the transaction.
    pub async fn get_target(&mut self, name: &TargetName) -> Result<Option<Target>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM targets WHERE name = $1"))
            .bind(name.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(target_from_row).transpose()
    }

    /// Registers a target; refuses a duplicate name.
    pub async fn insert_target(&mut self, t: &Target) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO targets (name, address, host_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(t.name.to_string())
        .bind(t.address.to_string())
        .bind(t.host_key.as_ref().map(SshPublicKey::to_openssh))
        .bind(t.created_at.as_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "target", t.name.as_str()))?;
        Ok(())
    }

    /// Removes a target.
    pub async fn delete_target(&mut self, name: &TargetName) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM targets WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "target",
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

fn target_from_row(row: &AnyRow) -> Result<Target, StoreError> {
    let name = text(row, "name")?;
    let host_key = opt_text(row, "host_key")?
        .map(|k| {
            SshPublicKey::parse(&k).map_err(|e| StoreError::Corrupt {
                what: format!("host key of target {name}"),
                why: e.to_string(),
            })
        })
        .transpose()?;
    Ok(Target {
        name: parse(|| format!("target name {name:?}"), &name)?,
        address: parse(
            || format!("address of target {name}"),
            &text(row, "address")?,
        )?,
        host_key,
        created_at: time(row, "created_at")?,
    })
}
