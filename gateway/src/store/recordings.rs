//! `recordings`: sealed chunks of session recordings (the store never sees them in clear; see
//! `ssh::recording::seal`), kept in the database so that every gateway on it can serve them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sallyport_core::api::RecordingView;
use sallyport_core::time::Timestamp;

use super::rows::{int, text, time};
use super::{Store, StoreError};

/// One stored chunk, still sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedChunk {
    /// Its index within the channel's recording.
    pub chunk: u64,
    /// The sealed bytes.
    pub sealed: Vec<u8>,
}

fn index(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Store {
    /// Stores a sealed chunk at its place; refuses to overwrite one.
    pub async fn put_recording_chunk(
        &self,
        session: &str,
        channel: u32,
        chunk: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO recordings (session_id, channel, chunk, written_at, sealed) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.to_owned())
        .bind(i64::from(channel))
        .bind(super::seq_to_db(chunk))
        .bind(Timestamp::now().as_millis())
        .bind(STANDARD.encode(sealed))
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| {
            StoreError::conflict_or(e, "recording chunk", &format!("{session}/{channel}/{chunk}"))
        })?;
        tx.commit().await
    }

    /// The recorded channels of a session, by channel number.
    pub async fn recording_channels(
        &self,
        session: &str,
    ) -> Result<Vec<RecordingView>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, COUNT(*) AS chunks, MIN(written_at) AS first_at, MAX(written_at) AS last_at \
             FROM recordings WHERE session_id = $1 GROUP BY channel ORDER BY channel",
        )
        .bind(session.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let channel = int(r, "channel")?;
                Ok(RecordingView {
                    channel: u32::try_from(channel).map_err(|_| StoreError::Corrupt {
                        what: format!("recording channel of session {session}"),
                        why: format!("{channel} is not a channel number"),
                    })?,
                    chunks: index(int(r, "chunks")?),
                    first_written_at: time(r, "first_at")?,
                    last_written_at: time(r, "last_at")?,
                })
            })
            .collect()
    }

    /// The sealed chunks of one channel's recording, in index order.
    pub async fn recording_chunks(
        &self,
        session: &str,
        channel: u32,
    ) -> Result<Vec<SealedChunk>, StoreError> {
        let rows = sqlx::query(
            "SELECT chunk, sealed FROM recordings WHERE session_id = $1 AND channel = $2 ORDER BY chunk",
        )
        .bind(session.to_owned())
        .bind(i64::from(channel))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let chunk = index(int(r, "chunk")?);
                let sealed =
                    STANDARD
                        .decode(text(r, "sealed")?)
                        .map_err(|e| StoreError::Corrupt {
                            what: format!("recording chunk {session}/{channel}/{chunk}"),
                            why: e.to_string(),
                        })?;
                Ok(SealedChunk { chunk, sealed })
            })
            .collect()
    }
}
