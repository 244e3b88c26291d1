//! Grants close on time: a timer sleeps until the snapshot's next transition,
//! journals each expiry once (claimed in the store, so one gateway of several records it),
//! and announces it on the feed so data paths cut what the grant carried.

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::audit::EventKind;
use sallyport_core::feed::Change;
use sallyport_core::time::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Actor, Control, ControlError};

/// The longest the timer sleeps without looking again (grants created elsewhere, clock jumps).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs the expiry timer until `shutdown` turns true.
pub fn spawn_expiry_watcher(
    control: Arc<Control>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = control.subscribe();
        loop {
            let now = Timestamp::now();
            if let Err(e) = control.recover().await {
                tracing::error!(cause = %e, "policy reload still failing; access stays denied");
            }
            if let Err(e) = control.expire_due(now).await {
                tracing::error!(cause = %e, "recording grant expiries failed");
            }
            let wait = control
                .snapshot()
                .next_transition_after(now)
                .map_or(MAX_SLEEP, |t| now.until(t).min(MAX_SLEEP));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A new grant may end sooner than what we sleep for.
                _ = changes.recv() => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

impl Control {
    /// Journals and announces every grant whose window closed by `now` and was not recorded
    /// yet. (Windows that open need no notice: decisions look at the clock.)
    pub async fn expire_due(&self, now: Timestamp) -> Result<usize, ControlError> {
        let mut tx = self.store.write().await?;
        let due = tx.claim_due_expiries(now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let actor = Actor::system();
        for g in &due {
            tx.journal(&actor.event(EventKind::GrantExpired {
                grant: g.id,
                subject: g.subject.clone(),
            }))
            .await?;
        }
        let changes: Vec<Change> = due.iter().map(|g| Change::GrantExpired(g.id)).collect();
        tx.bump_control_version(|v| super::ChangePayload::encode(v, &changes))
            .await?;
        tx.commit().await?;
        let count = due.len();
        self.publish(changes).await?;
        Ok(count)
    }
}
