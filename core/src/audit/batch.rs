//! Cuts journal records into batches a log service accepts. No I/O: entries and the time in,
//! a [`Plan`] out.
//!
//! ```text
//!  entries (seq order) ──▶ too old / too new? ──yes──▶ Plan.quarantined (reported, acknowledged)
//!                              │ no
//!                              ▼
//!                         larger than one event may be? ──▶ split into parts {part, parts, chunk}
//!                              ▼
//!                         append to the open batch; a new batch when count, bytes or span
//!                         would go over ──▶ each batch sorted by time ──▶ Plan.batches
//! ```
//!
//! CloudWatch Logs' `PutLogEvents` rules ([`Limits::CLOUDWATCH`]): at most 10,000 events and
//! 1,048,576 bytes a batch, counting each event's message bytes plus 26; one event at most
//! 256 KiB; no batch spanning more than 24 hours; events in time order; none older than 14 days
//! or more than 2 hours ahead.
//!
//! Batches cover consecutive runs of the input, so after a batch is accepted everything up to
//! its [`Batch::ack_seq`] is delivered or quarantined, and a checkpoint can move there. An
//! event split into parts counts as acknowledged once its last part is in an accepted batch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::flat::ENVELOPE_FIELDS;
use crate::time::Timestamp;

const HOUR_MS: i64 = 3_600_000;

/// The rules a batch must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most events in a batch.
    pub max_events: usize,
    /// Most bytes in a batch, counting `event_overhead` per event.
    pub max_bytes: usize,
    /// Bytes counted per event on top of its message.
    pub event_overhead: usize,
    /// Largest event, message plus `event_overhead` (at least 1,024 for splitting to work).
    pub max_event_bytes: usize,
    /// Largest distance between the oldest and the newest event of a batch, in milliseconds.
    pub max_span_ms: Option<i64>,
    /// Events older than this (ms before now) are quarantined.
    pub max_age_ms: Option<i64>,
    /// Events further ahead than this (ms after now) are quarantined.
    pub max_ahead_ms: Option<i64>,
}

impl Limits {
    /// CloudWatch Logs `PutLogEvents`.
    pub const CLOUDWATCH: Limits = Limits {
        max_events: 10_000,
        max_bytes: 1_048_576,
        event_overhead: 26,
        max_event_bytes: 256 * 1024,
        max_span_ms: Some(24 * HOUR_MS),
        max_age_ms: Some(14 * 24 * HOUR_MS),
        max_ahead_ms: Some(2 * HOUR_MS),
    };

    /// Lines on a stream (stdout): batches only bound memory; nothing is split or quarantined.
    pub const LINES: Limits = Limits {
        max_events: 1_000,
        max_bytes: 4 * 1_048_576,
        event_overhead: 1,
        max_event_bytes: usize::MAX,
        max_span_ms: None,
        max_age_ms: None,
        max_ahead_ms: None,
    };
}

/// One journal record's message, ready to ship.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Journal sequence number.
    pub seq: u64,
    /// The event's time.
    pub time: Timestamp,
    /// The flat JSON message.
    pub message: String,
}

/// Which part of a split event this is, from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// This part, from 1.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

/// One event as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// The journal record it comes from.
    pub seq: u64,
    /// Set when the record was split.
    pub part: Option<Part>,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The message.
    pub message: String,
}

/// One request's worth of events, sorted by time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The events, oldest first (ties in journal order). May be empty when the run it covers
    /// was all quarantined.
    pub events: Vec<LogEvent>,
    /// Bytes as the service counts them.
    pub bytes: usize,
    /// Once this batch is accepted, every record up to this sequence number is handled.
    pub ack_seq: u64,
}

/// Why an event was held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineReason {
    /// Older than the service accepts.
    TooOld,
    /// Further ahead of the clock than the service accepts.
    TooNew,
}

impl QuarantineReason {
    /// `too_old` / `too_new`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::TooOld => "too_old",
            QuarantineReason::TooNew => "too_new",
        }
    }
}

/// An event not shipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Journal sequence number.
    pub seq: u64,
    /// The event's time.
    pub time: Timestamp,
    /// Why.
    pub reason: QuarantineReason,
}

/// What to send and what to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Batches in the order to send them.
    pub batches: Vec<Batch>,
    /// Events held back.
    pub quarantined: Vec<Quarantined>,
    /// Sequence numbers of the records that were split into parts.
    pub split: Vec<u64>,
}

/// Cuts `entries` (in journal order) into batches that keep `limits`, as of `now`.
pub fn plan(entries: Vec<Entry>, now: Timestamp, limits: &Limits) -> Plan {
    let mut out = Plan::default();
    let mut open = Open::default();
    for entry in entries {
        if let Some(reason) = out_of_window(entry.time, now, limits) {
            open.ack_seq = open.ack_seq.max(entry.seq);
            out.quarantined.push(Quarantined {
                seq: entry.seq,
                time: entry.time,
                reason,
            });
            continue;
        }
        let seq = entry.seq;
        let pieces = fit(entry, limits);
        if pieces.len() > 1 {
            out.split.push(seq);
        }
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let size = piece.message.len().saturating_add(limits.event_overhead);
            if !open.fits(size, piece.time_ms, limits) {
                let full = std::mem::take(&mut open);
                open.ack_seq = full.ack_seq;
                out.batches.push(full.finish());
            }
            open.push(piece, size);
            let done = if i + 1 == count {
                seq
            } else {
                seq.saturating_sub(1)
            };
            open.ack_seq = open.ack_seq.max(done);
        }
    }
    let last_ack = out.batches.last().map_or(0, |b| b.ack_seq);
    if !open.events.is_empty() || open.ack_seq > last_ack {
        out.batches.push(open.finish());
    }
    out
}

fn out_of_window(time: Timestamp, now: Timestamp, limits: &Limits) -> Option<QuarantineReason> {
    let (t, n) = (time.as_millis(), now.as_millis());
    if limits
        .max_age_ms
        .is_some_and(|age| n.saturating_sub(t) > age)
    {
        return Some(QuarantineReason::TooOld);
    }
    if limits
        .max_ahead_ms
        .is_some_and(|ahead| t.saturating_sub(n) > ahead)
    {
        return Some(QuarantineReason::TooNew);
    }
    None
}

/// The batch being filled.
#[derive(Default)]
struct Open {
    events: Vec<LogEvent>,
    bytes: usize,
    min_t: i64,
    max_t: i64,
    ack_seq: u64,
}

impl Open {
    fn fits(&self, size: usize, t: i64, limits: &Limits) -> bool {
        if self.events.is_empty() {
            return true;
        }
        let span_ok = limits
            .max_span_ms
            .is_none_or(|span| self.max_t.max(t).saturating_sub(self.min_t.min(t)) <= span);
        self.events.len() < limits.max_events
            && self.bytes.saturating_add(size) <= limits.max_bytes
            && span_ok
    }

    fn push(&mut self, e: LogEvent, size: usize) {
        if self.events.is_empty() {
            self.min_t = e.time_ms;
            self.max_t = e.time_ms;
        }
        self.min_t = self.min_t.min(e.time_ms);
        self.max_t = self.max_t.max(e.time_ms);
        self.bytes = self.bytes.saturating_add(size);
        self.events.push(e);
    }

    fn finish(mut self) -> Batch {
        self.events
            .sort_by_key(|e| (e.time_ms, e.seq, e.part.map_or(0, |p| p.index)));
        Batch {
            events: self.events,
            bytes: self.bytes,
            ack_seq: self.ack_seq,
        }
    }
}

/// The entry as one event, or split into parts that each fit.
fn fit(entry: Entry, limits: &Limits) -> Vec<LogEvent> {
    let time_ms = entry.time.as_millis();
    if entry.message.len().saturating_add(limits.event_overhead) <= limits.max_event_bytes {
        return vec![LogEvent {
            seq: entry.seq,
            part: None,
            time_ms,
            message: entry.message,
        }];
    }
    let header = part_header(&entry);
    // The header with the widest part numbers and an empty chunk.
    let mut probe = header.clone();
    probe.insert("part".into(), Value::from(u32::MAX));
    probe.insert("parts".into(), Value::from(u32::MAX));
    probe.insert("chunk".into(), Value::from(""));
    let fixed = json_len(&probe).saturating_add(limits.event_overhead);
    let budget = limits.max_event_bytes.saturating_sub(fixed);
    let chunks = chunks(&entry.message, budget);
    let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    chunks
        .into_iter()
        .zip(1u32..)
        .map(|(chunk, index)| {
            let mut m = header.clone();
            m.insert("part".into(), Value::from(index));
            m.insert("parts".into(), Value::from(count));
            m.insert("chunk".into(), Value::from(chunk));
            LogEvent {
                seq: entry.seq,
                part: Some(Part { index, count }),
                time_ms,
                message: serde_json::to_string(&m).unwrap_or_default(),
            }
        })
        .collect()
}

/// The small envelope fields of the message, so each part is still found by `event`, `id`, …
fn part_header(entry: &Entry) -> Map<String, Value> {
    let mut header = Map::new();
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&entry.message) {
        for key in ENVELOPE_FIELDS {
            if let Some(v) = m.get(*key) {
                if json_len(v) <= 512 && !matches!(*key, "part" | "parts" | "chunk") {
                    header.insert((*key).to_owned(), v.clone());
                }
            }
        }
    }
    header.insert("seq".into(), Value::from(entry.seq));
    header
}

fn json_len<T: Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// Bytes a character takes inside a JSON string as serde_json writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Splits `text` at character boundaries into pieces whose escaped length fits `budget`
/// (at least one character each, so it always ends).
fn chunks(text: &str, budget: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut used = 0usize;
    for c in text.chars() {
        let n = escaped_len(c);
        if !cur.is_empty() && used.saturating_add(n) > budget {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(c);
        used = used.saturating_add(n);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
