//! Proxy-mode session recordings: asciicast v2 (the core's writer), sealed per chunk with the
//! gateway's recording key and stored in the database, so every gateway on it can serve them.
//!
//! ```text
//!  Recorder (observer, relay task) ──Frame──▶ writer task ──lines──▶ chunk ──seal──▶ recordings
//!                                                                                    (store)
//!  GET /v1/sessions/{id}/recording ──▶ read: chunks in order ──open──▶ asciicast text
//! ```
//!
//! # Layout
//!
//! - `seal`: [`RecordingKey`]: per-session keys (HKDF), XChaCha20-Poly1305 with the chunk's
//!   place as additional data.
//! - `handle`: the relay side: frames into a bounded queue with a byte budget, drops counted
//!   and marked as gaps, data only counted once the recording is full.
//! - `writer`: the per-channel background writer: lines, chunks, the size limit, the journal.
//! - `read`: stored chunks back to text, refusing holes and chunks out of place.
//! - `settings`: [`RecordingSettings`] (`[ssh.recording]`).

pub mod handle;
pub mod read;
pub mod seal;
mod settings;
pub mod writer;

pub use read::ReadError;
pub use seal::{ChunkId, RecordingKey, SealError};
pub use settings::RecordingSettings;
