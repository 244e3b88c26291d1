use sallyport_core::model::{Fingerprint, SshPublicKey, UserName};
use sallyport_core::time::Timestamp;
use sqlx::any::AnyRow;

use super::rows::{parse, text, time};
use super::{Store, StoreError, WriteTx};

/// A registered SSH public key and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// Owner.
    pub user: UserName,
    /// The key.
    pub key: SshPublicKey,
    /// When it was registered.
    pub created_at: Timestamp,
}

const COLUMNS: &str = "fingerprint, user_name, public_key, created_at";

impl Store {
    /// Keys of one user, or of everyone.
    pub async fn list_keys(&self, user: Option<&UserName>) -> Result<Vec<StoredKey>, StoreError> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM ssh_keys WHERE user_name = $1 ORDER BY created_at, fingerprint"))
                    .bind(u.to_string())
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM ssh_keys ORDER BY user_name, created_at, fingerprint"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// Owner and fingerprint of every key (for the policy snapshot).
    pub async fn key_owners(&self) -> Result<Vec<(UserName, Fingerprint)>, StoreError> {
        let rows = sqlx::query("SELECT user_name, fingerprint FROM ssh_keys")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let fp = text(r, "fingerprint")?;
                Ok((
                    parse(|| format!("owner of key {fp}"), &text(r, "user_name")?)?,
                    Fingerprint::try_from(fp.clone()).map_err(|e| StoreError::Corrupt {
                        what: format!("key {fp}"),
                        why: e.to_string(),
                    })?,
                ))
            })
            .collect()
    }
}

impl WriteTx {
    /// Registers a key; refuses one registered already (to anyone).
    pub async fn insert_key(&mut self, key: &StoredKey) -> Result<(), StoreError> {
        let fp = key.key.fingerprint().to_string();
        sqlx::query(
            "INSERT INTO ssh_keys (fingerprint, user_name, public_key, algorithm, comment, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(fp.clone())
        .bind(key.user.to_string())
        .bind(key.key.to_openssh())
        .bind(key.key.algorithm())
        .bind(key.key.comment().to_owned())
        .bind(key.created_at.as_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "key", &fp))?;
        Ok(())
    }

    /// Removes a key and returns what was removed.
    pub async fn delete_key(&mut self, fingerprint: &Fingerprint) -> Result<StoredKey, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ssh_keys WHERE fingerprint = $1"
        ))
        .bind(fingerprint.to_string())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "key",
            name: fingerprint.to_string(),
        })?;
        let key = key_from_row(&row)?;
        sqlx::query("DELETE FROM ssh_keys WHERE fingerprint = $1")
            .bind(fingerprint.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(key)
    }
}

fn key_from_row(row: &AnyRow) -> Result<StoredKey, StoreError> {
    let fp = text(row, "fingerprint")?;
    let key = SshPublicKey::parse(&text(row, "public_key")?).map_err(|e| StoreError::Corrupt {
        what: format!("key {fp}"),
        why: e.to_string(),
    })?;
    if key.fingerprint().as_str() != fp {
        return Err(StoreError::Corrupt {
            what: format!("key {fp}"),
            why: "fingerprint does not match the key".into(),
        });
    }
    Ok(StoredKey {
        user: parse(|| format!("owner of key {fp}"), &text(row, "user_name")?)?,
        key,
        created_at: time(row, "created_at")?,
    })
}
