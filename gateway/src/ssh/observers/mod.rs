//! What sallyport watches on each proxied session channel: the recorder, the exec auditor and
//! the SFTP auditor, made by [`SessionObservers`] (the SSH service's observer factory).
//!
//! ```text
//!  proxy relay ──ChannelObserver calls──▶ Recorder ──Frame──▶ recording writer task ─▶ store
//!   (never waits)                      ├─ ExecAudit ─┐
//!                                      └─ SftpAudit ─┴─EventKind─▶ audit task ─▶ journal
//! ```
//!
//! Every hand-over is a bounded queue with `try_send`: the relay never waits for the store or
//! the journal. What does not fit is dropped, counted, marked in the recording and journaled
//! as `ssh.observer.gap`.
//!
//! # Layout
//!
//! - `recorder`: shell and exec channels to asciicast recordings.
//! - `exec`: `ssh.exec`.
//! - `sftp`: `ssh.sftp.*` from the core's [`SftpTracker`](sallyport_core::recording::sftp::SftpTracker).
//! - `audit_queue`: the per-channel journaling task behind `exec` and `sftp`.

mod audit_queue;
mod exec;
mod recorder;
mod sftp;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use exec::ExecAudit;
pub use recorder::Recorder;
pub use sftp::{event_of as sftp_event, SftpAudit};

use super::proxy::observe::{ChannelContext, ChannelObserver, ObserverFactory};
use super::recording::{RecordingKey, RecordingSettings};
use crate::control::Control;
use crate::secrets::GatewaySecrets;

/// The background tasks observers started, so shutdown can wait for them to store and
/// journal what they hold before the store closes.
#[derive(Debug, Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Tasks {
    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Waits up to `timeout` for every task to end; returns how many did not.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut left = 0;
        for t in tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                left += 1;
            }
        }
        left
    }
}

/// What every observer shares.
#[derive(Debug, Clone)]
pub struct ObserverDeps {
    /// The store and the journal.
    pub control: Arc<Control>,
    /// Seals recordings.
    pub key: Arc<RecordingKey>,
    /// `[ssh.recording]`.
    pub settings: RecordingSettings,
    /// Their background tasks.
    pub tasks: Tasks,
}

/// The SSH service's observer factory: a recorder, an exec auditor and an SFTP auditor for
/// every proxied session channel.
#[derive(Debug)]
pub struct SessionObservers {
    deps: ObserverDeps,
}

impl SessionObservers {
    /// Observers that journal through `control` and seal recordings with the recording key
    /// from `secrets`.
    pub fn new(
        control: Arc<Control>,
        secrets: &GatewaySecrets,
        settings: RecordingSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            deps: ObserverDeps {
                control,
                key: Arc::new(RecordingKey::new(secrets.recording_key())),
                settings,
                tasks: Tasks::default(),
            },
        })
    }

    /// Waits (up to `timeout`) for recordings and audit events still queued to be stored.
    pub async fn drain(&self, timeout: Duration) {
        let left = self.deps.tasks.drain(timeout).await;
        if left > 0 {
            tracing::warn!(
                left,
                "recording and audit tasks did not finish before shutdown"
            );
        }
    }
}

impl ObserverFactory for SessionObservers {
    fn observers(&self, ctx: &ChannelContext) -> Vec<Box<dyn ChannelObserver>> {
        if tokio::runtime::Handle::try_current().is_err() {
            // Observers are made on the relay task; without a runtime nothing could be stored.
            tracing::error!("observers asked for outside the runtime: channel not observed");
            return Vec::new();
        }
        let (audit, task) = audit_queue::spawn(Arc::clone(&self.deps.control), ctx);
        self.deps.tasks.track(task);
        vec![
            Box::new(Recorder::new(self.deps.clone(), ctx.clone())),
            Box::new(ExecAudit::new(audit.clone(), ctx.clone())),
            Box::new(SftpAudit::new(audit, ctx.clone())),
        ]
    }
}
