//! A stored recording back to asciicast text: every chunk opened at its place, indices checked
//! to run 0, 1, 2, … without a hole.
//!
//! What this cannot see: chunks deleted from the end. `ssh.recording.end` in the journal
//! (hash-chained) says how many chunks the recording had; compare with
//! [`RecordingView::chunks`](sallyport_core::api::RecordingView).

use sallyport_core::recording::cast_read::MAX_CAST_BYTES;
use uuid::Uuid;

use super::seal::{ChunkId, RecordingKey, SealError};
use crate::store::{SealedChunk, Store, StoreError};

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No chunk is stored for that session and channel.
    #[error("no recording of channel {channel} in session {session}")]
    NotFound {
        /// The session.
        session: Uuid,
        /// The channel.
        channel: u32,
    },
    /// An index is missing: a chunk was deleted.
    #[error("recording chunk {chunk} of channel {channel} is missing (deleted from the store)")]
    Missing {
        /// The channel.
        channel: u32,
        /// The first missing index.
        chunk: u64,
    },
    /// A chunk does not open: altered, moved, or sealed with another key.
    #[error("recording chunk {chunk} of channel {channel}: {cause}")]
    Sealed {
        /// The channel.
        channel: u32,
        /// The chunk.
        chunk: u64,
        /// Why.
        cause: SealError,
    },
    /// A chunk opened but is not UTF-8 text (never written by sallyport).
    #[error("recording chunk {chunk} of channel {channel} is not text")]
    NotText {
        /// The channel.
        channel: u32,
        /// The chunk.
        chunk: u64,
    },
    /// The recording is larger than can be served at once.
    #[error("recording of channel {channel} is larger than {MAX_CAST_BYTES} bytes")]
    TooLarge {
        /// The channel.
        channel: u32,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and opens the recording of `channel` in `session`.
pub async fn read(
    store: &Store,
    key: &RecordingKey,
    session: Uuid,
    channel: u32,
) -> Result<String, ReadError> {
    let chunks = store
        .recording_chunks(&session.to_string(), channel)
        .await?;
    assemble(key, session, channel, &chunks)
}

/// Opens `chunks` (in index order) into one text.
pub fn assemble(
    key: &RecordingKey,
    session: Uuid,
    channel: u32,
    chunks: &[SealedChunk],
) -> Result<String, ReadError> {
    if chunks.is_empty() {
        return Err(ReadError::NotFound { session, channel });
    }
    let mut text = String::new();
    for (expected, c) in (0u64..).zip(chunks) {
        if c.chunk != expected {
            return Err(ReadError::Missing {
                channel,
                chunk: expected,
            });
        }
        let at = ChunkId {
            session,
            channel,
            chunk: c.chunk,
        };
        let plain = key.open(at, &c.sealed).map_err(|cause| ReadError::Sealed {
            channel,
            chunk: c.chunk,
            cause,
        })?;
        let part = String::from_utf8(plain).map_err(|_| ReadError::NotText {
            channel,
            chunk: c.chunk,
        })?;
        if text.len() + part.len() > MAX_CAST_BYTES {
            return Err(ReadError::TooLarge { channel });
        }
        text.push_str(&part);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use sallyport_core::secret::Secret;

    use super::*;

    fn sealed(key: &RecordingKey, session: Uuid, channel: u32, parts: &[&str]) -> Vec<SealedChunk> {
        parts
            .iter()
            .zip(0u64..)
            .map(|(p, chunk)| SealedChunk {
                chunk,
                sealed: key
                    .seal(
                        ChunkId {
                            session,
                            channel,
                            chunk,
                        },
                        p.as_bytes(),
                    )
                    .unwrap(),
            })
            .collect()
    }

    #[test]
    fn chunks_join_in_order_and_holes_or_swaps_are_refused() {
        let key = RecordingKey::new(&Secret::new([9; 32]));
        let s = Uuid::from_u128(1);
        let chunks = sealed(&key, s, 2, &["a", "b", "c"]);
        assert_eq!(assemble(&key, s, 2, &chunks).unwrap(), "abc");
        let holed = vec![chunks[0].clone(), chunks[2].clone()];
        assert!(matches!(
            assemble(&key, s, 2, &holed),
            Err(ReadError::Missing { chunk: 1, .. })
        ));
        // Swap the contents of chunks 0 and 1, keeping the indices.
        let mut swapped = chunks.clone();
        swapped[0].sealed = chunks[1].sealed.clone();
        swapped[1].sealed = chunks[0].sealed.clone();
        assert!(matches!(
            assemble(&key, s, 2, &swapped),
            Err(ReadError::Sealed { chunk: 0, .. })
        ));
        // Another channel's chunk in place of this one's.
        let other = sealed(&key, s, 3, &["x"]);
        let mut moved = chunks.clone();
        moved[0].sealed = other[0].sealed.clone();
        assert!(matches!(
            assemble(&key, s, 2, &moved),
            Err(ReadError::Sealed { chunk: 0, .. })
        ));
        assert!(matches!(
            assemble(&key, s, 2, &[]),
            Err(ReadError::NotFound { .. })
        ));
    }
}
