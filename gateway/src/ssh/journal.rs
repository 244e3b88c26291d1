//! Where SSH audit events go: the one function every `ssh.*` event passes through.
//!
//! Today each event is appended to the hash-chained journal in a transaction of its own (what
//! `Control::record` does, plus the session id in the envelope so that `sallyport audit search
//! --session` finds it). The audit pipeline's group-commit journal writer replaces the body of
//! [`record`] and nothing else.

use std::net::SocketAddr;

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;

use crate::control::{Control, ControlError};

/// Journals `kind` for the session `session` of a client at `peer`, by `actor`.
pub async fn record(
    control: &Control,
    actor: &str,
    peer: SocketAddr,
    session: &str,
    kind: EventKind,
) -> Result<(), ControlError> {
    let mut event = Event::new(Timestamp::now(), actor, kind)
        .with_source(Some(peer.ip().to_canonical().to_string()));
    event.session = Some(session.to_owned());
    // On PostgreSQL, an unreachable database spools the event locally (`store::spool`).
    control.store().journal_or_spool(&event).await?;
    Ok(())
}
