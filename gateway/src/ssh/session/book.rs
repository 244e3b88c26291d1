//! The session's row in `ssh_sessions`: written next to `ssh.session.start` and
//! `ssh.session.end`, so that auditors can list live and ended sessions (`GET /v1/sessions`).
//! The journal stays the record of truth; a failure here is logged, not fatal, and while the
//! database is out of reach the row is not waited for (the session goes on; its events are
//! spooled; it is missing from the list).

use sallyport_core::time::Timestamp;

use super::{Phase, SessionTask};
use crate::store::{SessionMode, SessionStart};

impl SessionTask {
    /// Writes the row of a session that just started.
    pub(super) async fn book_start(&self, client: &str) {
        let Phase::Active(active) = &self.phase else {
            return;
        };
        let mode = match &active.proxy {
            Some(dest) => SessionMode::Proxy {
                target: dest.target.clone(),
                login: dest.login.clone(),
            },
            None => SessionMode::Jump,
        };
        let start = SessionStart {
            id: self.id.clone(),
            instance: self.svc.instance().to_owned(),
            user: active.identity.user.clone(),
            source: self.peer.ip().to_canonical().to_string(),
            mode,
            client: client.to_owned(),
            started_at: Timestamp::now(),
        };
        let store = self.svc.control.store();
        if let Err(e) = store
            .write_on_access_path(store.session_started(&start))
            .await
        {
            tracing::error!(cause = %e, "could not record the session in ssh_sessions");
        }
    }

    /// Completes the row of a session that ended, with the reason of `ssh.session.end`.
    pub(super) async fn book_end(&self, reason: &str) {
        let store = self.svc.control.store();
        if let Err(e) = store
            .write_on_access_path(store.session_ended(&self.id, Timestamp::now(), reason))
            .await
        {
            tracing::error!(cause = %e, "could not record the end of the session in ssh_sessions");
        }
    }
}
