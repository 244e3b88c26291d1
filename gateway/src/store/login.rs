//! Answered login challenges (`login_challenges_used`): a challenge is single use across every
//! gateway on the same database.

use sallyport_core::model::UserName;
use sallyport_core::time::Timestamp;

use super::{Store, StoreError};

impl Store {
    /// Records that the challenge with `nonce` was answered; `false` if it already was. Rows
    /// past their expiry (when the MAC check refuses the challenge anyway) are cleared first.
    pub async fn claim_login_challenge(
        &self,
        nonce: &str,
        user: &UserName,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM login_challenges_used WHERE expires_at < $1")
            .bind(now.as_millis())
            .execute(self.pool())
            .await?;
        let done = sqlx::query(
            "INSERT INTO login_challenges_used (nonce, user_name, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(user.to_string())
        .bind(expires_at.as_millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
