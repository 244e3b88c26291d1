//! VPN events on their way to the journal, without ever making the packet path wait.
//!
//! Events go to the group-commit [`JournalWriter`] with `try_submit`. When its queue is full,
//! they wait here (up to [`MAX_PENDING`]) and are retried on the next tick; past that, they
//! are counted as lost and the count is logged (overflow policy: the packet path never
//! blocks on the journal).

use std::collections::VecDeque;
use std::net::SocketAddr;

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;

use crate::audit::{JournalWriter, WriterError};

/// Events held while the writer's queue is full.
pub const MAX_PENDING: usize = 65_536;

/// The VPN's audit queue.
#[derive(Debug)]
pub struct AuditQueue {
    journal: JournalWriter,
    pending: VecDeque<Event>,
    lost: u64,
}

impl AuditQueue {
    /// Events go to `journal`.
    pub fn new(journal: JournalWriter) -> Self {
        Self {
            journal,
            pending: VecDeque::new(),
            lost: 0,
        }
    }

    /// Queues `kind` by `actor` (the device's owner) from `source`.
    pub fn push(&mut self, actor: &str, source: Option<SocketAddr>, kind: EventKind) {
        let event = Event::new(Timestamp::now(), actor, kind)
            .with_source(source.map(|s| s.ip().to_canonical().to_string()));
        if !self.pending.is_empty() {
            self.hold(event);
            return;
        }
        match self.journal.try_submit(event) {
            Ok(()) => {}
            Err(WriterError::Full(e)) => self.hold(*e),
            Err(e) => {
                self.lost = self.lost.saturating_add(1);
                tracing::error!(cause = %e, "VPN audit event not journaled");
            }
        }
    }

    fn hold(&mut self, event: Event) {
        if self.pending.len() >= MAX_PENDING {
            self.lost = self.lost.saturating_add(1);
        } else {
            self.pending.push_back(event);
        }
    }

    /// Retries what waits; logs what was lost since the last call.
    pub fn retry(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            match self.journal.try_submit(event) {
                Ok(()) => {}
                Err(WriterError::Full(e)) => {
                    self.pending.push_front(*e);
                    break;
                }
                Err(e) => {
                    self.lost = self.lost.saturating_add(1);
                    tracing::error!(cause = %e, "VPN audit event not journaled");
                }
            }
        }
        if self.lost > 0 {
            tracing::error!(
                lost = self.lost,
                "VPN audit events lost: the journal could not keep up"
            );
            self.lost = 0;
        }
    }

    /// Waits until everything pending is queued (shutdown).
    pub async fn drain(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            if let Err(e) = self.journal.submit(event).await {
                tracing::error!(cause = %e, "VPN audit event not journaled at shutdown");
                break;
            }
        }
    }
}
