//! The audit events of one proxied channel (`ssh.exec`, `ssh.sftp.*`), journaled in order by a
//! background task so the relay never waits for the store.
//!
//! Overflow policy: the queue holds [`QUEUE_EVENTS`]; when it is full an event is dropped and
//! counted, and the task journals the count as `ssh.observer.gap` (`what: audit`) as soon as it
//! catches up, and at the latest when the channel closes. Nothing is lost without a record.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sallyport_core::audit::EventKind;
use tokio::sync::mpsc;

use crate::control::Control;
use crate::ssh::journal;
use crate::ssh::proxy::observe::ChannelContext;

/// Events queued per channel at most.
pub const QUEUE_EVENTS: usize = 4096;

/// The relay side: never waits.
#[derive(Debug, Clone)]
pub struct AuditSender {
    tx: mpsc::Sender<EventKind>,
    dropped: Arc<AtomicU64>,
}

impl AuditSender {
    /// Queues `kind`, or drops and counts it.
    pub fn send(&self, kind: EventKind) {
        if self.tx.try_send(kind).is_err() {
            self.dropped.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Starts the journaling task of the channel `ctx`; it ends once every sender is dropped.
pub fn spawn(
    control: Arc<Control>,
    ctx: &ChannelContext,
) -> (AuditSender, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
    let dropped = Arc::new(AtomicU64::new(0));
    let task = Journaler {
        control,
        actor: ctx.user.to_string(),
        peer: ctx.source,
        session: ctx.session_id.to_string(),
        gap: EventKind::SshObserverGap {
            user: ctx.user.clone(),
            channel: u64::from(ctx.channel),
            target: ctx.target.clone(),
            what: "audit".into(),
            events: 0,
            bytes: 0,
        },
        dropped: Arc::clone(&dropped),
        reported: 0,
    };
    (AuditSender { tx, dropped }, tokio::spawn(task.run(rx)))
}

struct Journaler {
    control: Arc<Control>,
    actor: String,
    peer: SocketAddr,
    session: String,
    /// The gap event to journal, with its counts filled in.
    gap: EventKind,
    dropped: Arc<AtomicU64>,
    reported: u64,
}

impl Journaler {
    async fn run(mut self, mut rx: mpsc::Receiver<EventKind>) {
        while let Some(kind) = rx.recv().await {
            self.record(kind).await;
            if rx.is_empty() {
                self.report_gap().await;
            }
        }
        self.report_gap().await;
    }

    async fn report_gap(&mut self) {
        let dropped = self.dropped.load(Ordering::Acquire);
        if dropped <= self.reported {
            return;
        }
        let new = dropped - self.reported;
        self.reported = dropped;
        tracing::warn!(
            events = new,
            "audit events of a proxied channel dropped: the journal fell behind"
        );
        let mut gap = self.gap.clone();
        if let EventKind::SshObserverGap { events, .. } = &mut gap {
            *events = new;
        }
        self.record(gap).await;
    }

    async fn record(&self, kind: EventKind) {
        let name = kind.name();
        if let Err(e) =
            journal::record(&self.control, &self.actor, self.peer, &self.session, kind).await
        {
            tracing::error!(cause = %e, event = name, "could not journal a proxied channel event");
        }
    }
}
