//! Ending a live SSH session wherever it runs.
//!
//! ```text
//!  Control::kill_session(actor, id) ─ ssh_sessions row: live? ─▶ BEGIN; journal ssh.session.kill;
//!     control_version += 1; pg_notify {"c":[["session.kill",ID]]}; COMMIT
//!     ─▶ local feed: Change::SessionKilled(ID)       ─▶ the SessionTask with that id ends
//!     ─▶ other gateways: LISTEN ─▶ their feed, same    (ssh.session.end reason `killed`)
//! ```
//!
//! The request is acknowledged once it is committed: the session ends within a second on a
//! gateway that hears the notification, or at its next resync. A session whose gateway died
//! (its row still live) is ended by that instance's next start-up, not here.

use sallyport_core::api::SessionView;
use sallyport_core::audit::EventKind;
use sallyport_core::feed::Change;

use super::{Actor, ChangePayload, Control, ControlError};

impl Control {
    /// Asks the gateway running the live session `id` to end it; returns the session as it
    /// was. Unknown: `NotFound`; already ended: `Conflict`.
    pub async fn kill_session(&self, actor: &Actor, id: &str) -> Result<SessionView, ControlError> {
        let session = self
            .store
            .get_session(id)
            .await?
            .ok_or_else(|| ControlError::NotFound {
                kind: "session",
                name: id.to_owned(),
            })?;
        if session.ended_at.is_some() {
            return Err(ControlError::Conflict(format!(
                "session {id} has already ended ({})",
                session.end_reason.as_deref().unwrap_or("reason unknown")
            )));
        }
        let mut event = actor.event(EventKind::SshSessionKillRequested {
            session_id: session.id.clone(),
            user: session.user.clone(),
            instance: session.instance.clone(),
        });
        event.session = Some(session.id.clone());
        let change = Change::SessionKilled(session.id.clone());
        let mut tx = self.store.write().await?;
        tx.journal(&event).await?;
        tx.bump_control_version(|v| ChangePayload::encode(v, std::slice::from_ref(&change)))
            .await?;
        tx.commit().await?;
        self.publish(vec![change]).await?;
        Ok(session)
    }
}
