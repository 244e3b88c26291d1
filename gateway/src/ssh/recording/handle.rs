//! The relay side of one recording: frames into a bounded queue, never waiting.
//!
//! Overflow policy: a frame that does not fit (1024 frames, 4 MiB of data per channel) is
//! dropped and counted, and a [`Frame::Gap`] goes ahead of the next frame that fits, so the
//! recording marks the gap where it happened. Once the writer says the recording is full (its
//! size limit), data is counted only, not even copied.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

/// Frames queued per channel at most.
pub const QUEUE_FRAMES: usize = 1024;
/// Bytes of frame data queued per channel at most.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// What the relay hands over; times are since the start of the recording.
#[derive(Debug)]
pub enum Frame {
    /// Terminal output (stdout or stderr).
    Output(Duration, Vec<u8>),
    /// Keyboard input.
    Input(Duration, Vec<u8>),
    /// The terminal's new size.
    Resize(Duration, u32, u32),
    /// Before this point, `events` frames holding `bytes` bytes were dropped.
    Gap(Duration, u64, u64),
}

impl Frame {
    /// Its time.
    pub fn at(&self) -> Duration {
        match self {
            Frame::Output(at, _)
            | Frame::Input(at, _)
            | Frame::Resize(at, _, _)
            | Frame::Gap(at, _, _) => *at,
        }
    }

    /// Bytes of data it holds.
    pub fn data_len(&self) -> usize {
        match self {
            Frame::Output(_, d) | Frame::Input(_, d) => d.len(),
            Frame::Resize(..) | Frame::Gap(..) => 0,
        }
    }
}

/// Shared between the relay side and the writer.
#[derive(Debug, Default)]
pub struct Budget {
    /// Bytes of data in the queue.
    pub queued: AtomicUsize,
    /// Frames dropped, all told.
    pub dropped_events: AtomicU64,
    /// Their bytes.
    pub dropped_bytes: AtomicU64,
    /// Set by the writer once the recording reached its size limit.
    pub full: AtomicBool,
    /// Data bytes not recorded since then.
    pub cut_bytes: AtomicU64,
}

/// The relay side of one recording.
#[derive(Debug)]
pub struct RecordingHandle {
    tx: mpsc::Sender<Frame>,
    budget: Arc<Budget>,
    /// Dropped (frames, bytes) whose gap frame is not queued yet.
    unsent_gap: (u64, u64),
}

impl RecordingHandle {
    /// A handle on `tx`, sharing `budget` with the writer.
    pub fn new(tx: mpsc::Sender<Frame>, budget: Arc<Budget>) -> Self {
        Self {
            tx,
            budget,
            unsent_gap: (0, 0),
        }
    }

    /// Output bytes at `at`.
    pub fn output(&mut self, at: Duration, data: &[u8]) {
        if self.counted_only(data) {
            return;
        }
        if self.no_room(at, data.len()) {
            self.drop_counted(data.len());
            return;
        }
        self.send(Frame::Output(at, data.to_vec()));
    }

    /// Input bytes at `at`.
    pub fn input(&mut self, at: Duration, data: &[u8]) {
        if self.counted_only(data) {
            return;
        }
        if self.no_room(at, data.len()) {
            self.drop_counted(data.len());
            return;
        }
        self.send(Frame::Input(at, data.to_vec()));
    }

    /// Whether a frame of `len` bytes at `at` would be dropped anyway (checked before its data
    /// is copied; a bulk transfer past a slow writer costs a count, not a copy).
    fn no_room(&mut self, at: Duration, len: usize) -> bool {
        self.send_gap(at);
        self.unsent_gap.0 > 0
            || self.tx.capacity() == 0
            || self
                .budget
                .queued
                .load(Ordering::Acquire)
                .saturating_add(len)
                > QUEUE_BYTES
    }

    /// Queues the gap frame owed, if there is room.
    fn send_gap(&mut self, at: Duration) {
        if self.unsent_gap.0 > 0 {
            let (events, bytes) = self.unsent_gap;
            if self.tx.try_send(Frame::Gap(at, events, bytes)).is_ok() {
                self.unsent_gap = (0, 0);
            }
        }
    }

    fn drop_counted(&mut self, len: usize) {
        self.budget.dropped_events.fetch_add(1, Ordering::AcqRel);
        self.budget
            .dropped_bytes
            .fetch_add(len as u64, Ordering::AcqRel);
        self.unsent_gap.0 += 1;
        self.unsent_gap.1 += len as u64;
    }

    /// A new terminal size at `at`.
    pub fn resize(&mut self, at: Duration, cols: u32, rows: u32) {
        if !self.budget.full.load(Ordering::Acquire) {
            self.send(Frame::Resize(at, cols, rows));
        }
    }

    /// Whether the recording is full; if so, `data` is counted as cut.
    fn counted_only(&self, data: &[u8]) -> bool {
        let full = self.budget.full.load(Ordering::Acquire);
        if full {
            self.budget
                .cut_bytes
                .fetch_add(data.len() as u64, Ordering::AcqRel);
        }
        full
    }

    /// Queues `frame`, or drops and counts it.
    fn send(&mut self, frame: Frame) {
        self.send_gap(frame.at());
        let len = frame.data_len();
        let queued = self.budget.queued.fetch_add(len, Ordering::AcqRel);
        let refused = self.unsent_gap.0 > 0
            || queued.saturating_add(len) > QUEUE_BYTES
            || self.tx.try_send(frame).is_err();
        if refused {
            self.budget.queued.fetch_sub(len, Ordering::AcqRel);
            self.drop_counted(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_and_the_gap_goes_first() {
        let (tx, mut rx) = mpsc::channel(2);
        let budget = Arc::new(Budget::default());
        let mut h = RecordingHandle::new(tx, Arc::clone(&budget));
        let at = Duration::from_secs(1);
        h.output(at, b"a");
        h.output(at, b"b");
        h.output(at, b"cc"); // the queue is full: dropped
        assert_eq!(budget.dropped_events.load(Ordering::Acquire), 1);
        assert_eq!(budget.dropped_bytes.load(Ordering::Acquire), 2);
        assert!(matches!(rx.try_recv(), Ok(Frame::Output(_, d)) if d == b"a"));
        budget.queued.fetch_sub(1, Ordering::AcqRel);
        // One slot: the gap takes it, the frame is dropped too (it must not pass the gap).
        h.output(at, b"d");
        assert!(matches!(rx.try_recv(), Ok(Frame::Output(_, d)) if d == b"b"));
        assert!(matches!(rx.try_recv(), Ok(Frame::Gap(_, 1, 2))));
        assert!(rx.try_recv().is_err());
        h.output(at, b"e");
        assert!(matches!(rx.try_recv(), Ok(Frame::Gap(_, 1, 1))));
        assert!(matches!(rx.try_recv(), Ok(Frame::Output(_, d)) if d == b"e"));
        // Full: counted, not queued.
        budget.full.store(true, Ordering::Release);
        h.output(at, b"ffff");
        h.resize(at, 1, 1);
        assert!(rx.try_recv().is_err());
        assert_eq!(budget.cut_bytes.load(Ordering::Acquire), 4);
    }
}
