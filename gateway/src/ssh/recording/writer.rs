//! The background task that writes one channel's recording: frames from the relay in,
//! asciicast lines batched into chunks, each sealed and stored.
//!
//! ```text
//!  relay task ──try_send(Frame)──▶ [bounded queue, byte budget] ──▶ writer task
//!     │ queue full or budget spent: drop, count (Budget)             │ CastWriter lines
//!     ▼                                                             │ gap seen: `m` marker
//!  never waits                                                      │   + ssh.observer.gap
//!                                              chunk ≥ 64 KiB or 1 s old ─▶ seal ─▶ store
//! ```
//!
//! A chunk that cannot be stored (after retries) is not skipped over: its index is used by the
//! next chunk, which starts with a marker saying how much was lost, so the stored indices stay
//! contiguous and a missing index always means a deleted row.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sallyport_core::audit::EventKind;
use sallyport_core::recording::asciicast::{CastWriter, Header};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::handle::{Budget, Frame, RecordingHandle, QUEUE_FRAMES};
use super::seal::{ChunkId, RecordingKey};
use crate::control::Control;
use crate::ssh::journal;
use crate::ssh::proxy::observe::ChannelContext;
use crate::store::StoreError;

/// A chunk is stored once it holds this much text.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// A chunk is stored at the latest this long after its first line.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A gap is journaled at most this often per channel (the rest is summed into the next one).
const GAP_JOURNAL_INTERVAL: Duration = Duration::from_secs(10);
/// Store attempts per chunk before it is given up.
const STORE_ATTEMPTS: u32 = 3;

/// What a writer needs.
#[derive(Debug, Clone)]
pub struct WriterDeps {
    /// For the store and the journal.
    pub control: Arc<Control>,
    /// Seals chunks.
    pub key: Arc<RecordingKey>,
}

/// How one recording is made.
#[derive(Debug, Clone)]
pub struct RecordingSpec {
    /// Its header.
    pub header: Header,
    /// `shell` or `exec`.
    pub kind: &'static str,
    /// Whether input is recorded.
    pub input: bool,
    /// The most asciicast text it may hold.
    pub max_bytes: u64,
}

/// Starts the writer of one channel's recording; it ends when the handle is dropped, after
/// storing what is left.
pub fn spawn(
    deps: WriterDeps,
    ctx: ChannelContext,
    spec: RecordingSpec,
) -> (RecordingHandle, tokio::task::JoinHandle<()>) {
    let header = spec.header.line();
    let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
    let budget = Arc::new(Budget::default());
    let writer = Writer {
        deps,
        ctx,
        budget: Arc::clone(&budget),
        cast: CastWriter::new(),
        text_bytes: header.len() as u64,
        max_bytes: spec.max_bytes,
        buf: header.clone(),
        header,
        first_line_at: Some(Instant::now()),
        next_chunk: 0,
        stored_bytes: 0,
        failed_chunks: 0,
        marked: (0, 0),
        gap_unjournaled: (0, 0),
        last_gap_journal: None,
        last_at: Duration::ZERO,
        marked_recorded: false,
    };
    let task = tokio::spawn(writer.run(rx, spec.kind, spec.input));
    (RecordingHandle::new(tx, budget), task)
}

struct Writer {
    deps: WriterDeps,
    ctx: ChannelContext,
    budget: Arc<Budget>,
    cast: CastWriter,
    /// Text made so far (stored or buffered).
    text_bytes: u64,
    /// The limit on `text_bytes`.
    max_bytes: u64,
    /// Lines not stored yet.
    buf: String,
    /// The header line (chunk 0 starts with it).
    header: String,
    /// When the oldest line in `buf` was added.
    first_line_at: Option<Instant>,
    next_chunk: u64,
    stored_bytes: u64,
    failed_chunks: u64,
    /// Dropped (frames, bytes) already marked in the recording.
    marked: (u64, u64),
    /// Dropped (events, bytes) not journaled yet.
    gap_unjournaled: (u64, u64),
    last_gap_journal: Option<Instant>,
    last_at: Duration,
    marked_recorded: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Frame>, kind: &'static str, input: bool) {
        self.journal(EventKind::SshRecordingStarted {
            user: self.ctx.user.clone(),
            channel: u64::from(self.ctx.channel),
            target: self.ctx.target.clone(),
            login: self.ctx.login.clone(),
            kind: kind.to_owned(),
            input,
        })
        .await;
        loop {
            let deadline = self.first_line_at.map(|t| t + FLUSH_INTERVAL);
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(frame) => self.on_frame(frame).await,
                    None => break,
                },
                () = sleep_until(deadline) => self.flush().await,
            }
        }
        let at = self.last_at;
        self.note_final_gap(at);
        for line in self.cast.finish(at) {
            self.push(&line);
        }
        self.flush().await;
        self.journal_gap(true).await;
        let (dropped_events, _) = self.dropped();
        self.journal(EventKind::SshRecordingEnded {
            user: self.ctx.user.clone(),
            channel: u64::from(self.ctx.channel),
            target: self.ctx.target.clone(),
            chunks: self.next_chunk,
            bytes: self.stored_bytes,
            dropped_events,
            failed_chunks: self.failed_chunks,
            cut_bytes: self.budget.cut_bytes.load(Ordering::Acquire),
        })
        .await;
    }

    fn dropped(&self) -> (u64, u64) {
        (
            self.budget.dropped_events.load(Ordering::Acquire),
            self.budget.dropped_bytes.load(Ordering::Acquire),
        )
    }

    async fn on_frame(&mut self, frame: Frame) {
        self.budget
            .queued
            .fetch_sub(frame.data_len(), Ordering::AcqRel);
        if self.budget.full.load(Ordering::Acquire) {
            // Queued before the relay side saw the limit.
            self.budget
                .cut_bytes
                .fetch_add(frame.data_len() as u64, Ordering::AcqRel);
            return;
        }
        let at = frame.at();
        self.last_at = self.last_at.max(at);
        let line = match frame {
            Frame::Output(at, data) => self.cast.output(at, &data),
            Frame::Input(at, data) => self.cast.input(at, &data),
            Frame::Resize(at, cols, rows) => Some(self.cast.resize(at, cols, rows)),
            Frame::Gap(at, events, bytes) => Some(self.gap_marker(at, events, bytes)),
        };
        if let Some(line) = line {
            self.push(&line);
        }
        if self.text_bytes >= self.max_bytes {
            self.budget.full.store(true, Ordering::Release);
            let label = format!(
                "sallyport: recording stopped here at its size limit ({} bytes, [ssh.recording] max_mib); later output is not recorded",
                self.max_bytes
            );
            let line = self.cast.marker(at, &label);
            self.push(&line);
        }
        if self.buf.len() >= CHUNK_BYTES {
            self.flush().await;
        }
        self.journal_gap(false).await;
    }

    /// The marker line of a gap of `events` frames (`bytes` bytes) at `at`.
    fn gap_marker(&mut self, at: Duration, events: u64, bytes: u64) -> String {
        self.marked.0 += events;
        self.marked.1 += bytes;
        self.gap_unjournaled.0 += events;
        self.gap_unjournaled.1 += bytes;
        let label = format!(
            "sallyport: {events} output event(s), {bytes} bytes, dropped here (the recording fell behind)"
        );
        self.cast.marker(at, &label)
    }

    /// At the end: marks what was dropped after the last frame that got through.
    fn note_final_gap(&mut self, at: Duration) {
        let (events, bytes) = self.dropped();
        if events > self.marked.0 {
            let line = self.gap_marker(
                at,
                events - self.marked.0,
                bytes.saturating_sub(self.marked.1),
            );
            self.push(&line);
        }
    }

    /// Journals the dropped events not journaled yet: at most once per interval, or now when
    /// `last`.
    async fn journal_gap(&mut self, last: bool) {
        if self.gap_unjournaled.0 == 0 {
            return;
        }
        let due = self
            .last_gap_journal
            .is_none_or(|t| t.elapsed() >= GAP_JOURNAL_INTERVAL);
        if !(due || last) {
            return;
        }
        self.last_gap_journal = Some(Instant::now());
        let (events, bytes) = std::mem::take(&mut self.gap_unjournaled);
        tracing::warn!(
            channel = self.ctx.channel,
            events,
            "recording fell behind: output dropped"
        );
        self.journal(EventKind::SshObserverGap {
            user: self.ctx.user.clone(),
            channel: u64::from(self.ctx.channel),
            target: self.ctx.target.clone(),
            what: "recording".into(),
            events,
            bytes,
        })
        .await;
    }

    fn push(&mut self, line: &str) {
        if self.buf.is_empty() {
            self.first_line_at = Some(Instant::now());
        }
        self.text_bytes += line.len() as u64;
        self.buf.push_str(line);
    }

    /// Seals and stores what is buffered as the next chunk.
    async fn flush(&mut self) {
        self.first_line_at = None;
        if self.buf.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buf);
        let id = ChunkId {
            session: self.ctx.session_id,
            channel: self.ctx.channel,
            chunk: self.next_chunk,
        };
        match self.store(id, text.as_bytes()).await {
            Ok(()) => {
                self.next_chunk += 1;
                self.stored_bytes += text.len() as u64;
                if !self.marked_recorded {
                    self.marked_recorded = true;
                    let session = self.ctx.session_id.to_string();
                    if let Err(e) = self
                        .deps
                        .control
                        .store()
                        .mark_session_recorded(&session)
                        .await
                    {
                        tracing::warn!(cause = %e, "could not mark the session recorded");
                    }
                }
            }
            Err(e) => {
                tracing::error!(cause = %e, chunk = id.chunk, channel = id.channel, "recording chunk not stored");
                self.failed_chunks += 1;
                // The next chunk takes this index and starts by saying what was lost.
                if self.next_chunk == 0 {
                    let header = self.header.clone();
                    self.push(&header);
                }
                let label = format!(
                    "sallyport: {} bytes of recording lost here (the store failed)",
                    text.len()
                );
                let line = self.cast.marker(self.last_at, &label);
                self.push(&line);
            }
        }
    }

    async fn store(&self, id: ChunkId, text: &[u8]) -> Result<(), String> {
        let sealed = self.deps.key.seal(id, text).map_err(|e| e.to_string())?;
        let session = id.session.to_string();
        let mut wait = Duration::from_millis(100);
        let mut last = String::new();
        for _ in 0..STORE_ATTEMPTS {
            match self
                .deps
                .control
                .store()
                .put_recording_chunk(&session, id.channel, id.chunk, &sealed)
                .await
            {
                Ok(()) => return Ok(()),
                // An earlier attempt committed after all (its answer was lost).
                Err(StoreError::Conflict { .. }) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(wait).await;
            wait *= 4;
        }
        Err(last)
    }

    async fn journal(&self, kind: EventKind) {
        let name = kind.name();
        let session = self.ctx.session_id.to_string();
        if let Err(e) = journal::record(
            &self.deps.control,
            self.ctx.user.as_str(),
            self.ctx.source,
            &session,
            kind,
        )
        .await
        {
            tracing::error!(cause = %e, event = name, "could not journal a recording event");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
