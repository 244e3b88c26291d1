//! The envelope every audit event travels in: id, time, actor, source and session.

use uuid::Uuid;

use super::EventKind;
use crate::time::Timestamp;

/// The actor recorded for what the gateway does by itself (expiry, start-up).
pub const SYSTEM_ACTOR: &str = "sallyportd";

/// One audit event with its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique id, so duplicates downstream are recognisable.
    pub id: Uuid,
    /// When it happened.
    pub time: Timestamp,
    /// Who did it: a user name, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// Where the actor came from (address), if known.
    pub source: Option<String>,
    /// The session it belongs to, if any.
    pub session: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// A new event happening now-ish at `time`, by `actor`.
    pub fn new(time: Timestamp, actor: impl Into<String>, kind: EventKind) -> Self {
        Self {
            id: Uuid::new_v4(),
            time,
            actor: actor.into(),
            source: None,
            session: None,
            kind,
        }
    }

    /// Sets the source address.
    pub fn with_source(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }
}
