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

mod chain;
mod event;

pub use chain::{ChainError, ChainHead, ChainSummary, Record, Verifier, GENESIS_HASH};
pub use event::{Event, EventKind, SYSTEM_ACTOR};
