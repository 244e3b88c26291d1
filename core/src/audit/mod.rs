//! Audit events and the journal's hash chain. No I/O.
//!
//! ```text
//!  Event{id, time, actor, source, kind}        EventKind::name()  "access.grant.create"
//!        │                                     EventKind::code()  "A1030I"
//!        ▼
//!  Record{seq, …, data, prev_hash} ──canonical bytes──SHA-256──▶ hash
//!        │                                                       │
//!        └──────────────── next record's prev_hash ◀─────────────┘
//! ```
//!
//! Each record carries its sequence number and the hash of the previous record, so deleting,
//! editing or reordering records breaks the chain at a place the [`Verifier`] names.
//!
//! # Layout
//!
//! - `event`: the typed, versioned [`EventKind`] enum and the [`Event`] envelope.
//! - `chain`: [`Record`], canonical bytes, [`ChainHead`] and the streaming [`Verifier`].
//! - `chains`: [`ChainSet`], one [`Verifier`] per chain (per gateway instance) with a
//!   [`ChainReport`] each.
//! - [`flat`]: the shipped form of a record, one flat JSON object (`docs/audit-events.md`).
//! - [`batch`]: cuts records into batches a log service accepts (CloudWatch's `PutLogEvents`
//!   rules), splitting oversize events and quarantining ones too old or too new.
//! - [`export`]: the offline export file (JSON lines with the chain's anchors) and its check.

pub mod batch;
mod catalog;
mod chain;
mod chains;
mod envelope;
mod event;
pub mod export;
pub mod flat;

pub use chain::{ChainError, ChainHead, ChainSummary, Record, Verifier, GENESIS_HASH};
pub use chains::{ChainReport, ChainSet};
pub use envelope::{Event, SYSTEM_ACTOR};
pub use event::{EventKind, TunnelCloseReason};
