//! SSH user certificates from the gateway's user CA. No I/O: the grants, the time, the serial
//! and the CA key come in; a plan, then a signed OpenSSH certificate, come out.
//!
//! ```text
//!  Snapshot::ssh_grants(user, now) ─▶ plan(user, grants, now, max, session) ─▶ CertificatePlan
//!                                                                                  │
//!          subject public key, CA key, serial, nonce ─▶ sign(plan, …) ─▶ Certificate
//! ```
//!
//! # The rule
//!
//! Only grants in force at `now` that allow `ssh` or `ssh-proxy` count ([`SshGrant`]); with none,
//! no certificate is issued ([`PlanError::NoSshGrant`]).
//!
//! - **Principals**: the user's own name first (the gateway's certificate login requires it,
//!   and it is the login on a target reached in jump mode), then each remote login that an
//!   `ssh-proxy` grant allows, sorted, without duplicates.
//! - **Validity**: `valid_after` = `now` − 60 s (clock skew). `valid_before` is the earliest of
//!   `now` + the configured maximum (default 8 h) and, for each principal, the latest expiry
//!   among the grants that give it (every SSH grant gives the user's own name; a proxy login is
//!   given by the `ssh-proxy` grants that list it). So the certificate ends when the first of
//!   its principals loses its last grant; the gateway still checks every grant on every
//!   connection, so a grant revoked earlier cuts access at once.
//! - **Key id**: `sallyport:USER:SESSION` with the login session's UUID.
//! - **Extensions**: `permit-pty` always; `permit-port-forwarding` if one of the grants has the
//!   `port_forwarding` option; `permit-agent-forwarding` if one has `agent_forwarding`. Never
//!   `permit-X11-forwarding` or `permit-user-rc`. No critical options.
//! - **Serial**: random (from the caller), for the audit trail.

mod issue;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use uuid::Uuid;

use crate::model::{GrantId, GrantOptions, UserName};
use crate::policy::SshGrant;
use crate::time::Timestamp;

pub use issue::{sign, SignError};

/// Clock skew allowed for on `valid_after`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The default longest validity of a certificate.
pub const DEFAULT_MAX_VALIDITY: Duration = Duration::from_secs(8 * 3600);
/// The extension every certificate carries.
pub const PERMIT_PTY: &str = "permit-pty";
/// Granted by the `port_forwarding` option.
pub const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";
/// Granted by the `agent_forwarding` option.
pub const PERMIT_AGENT_FORWARDING: &str = "permit-agent-forwarding";
/// The prefix of the key ids this CA writes.
pub const KEY_ID_PREFIX: &str = "sallyport";

/// Why no certificate can be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No grant in force allows the user `ssh` or `ssh-proxy`.
    #[error("no grant in force allows you ssh or ssh-proxy, so a certificate would have no use")]
    NoSshGrant,
    /// The maximum validity is zero.
    #[error("the configured certificate validity is zero")]
    ZeroValidity,
}

/// What a certificate will say, decided from the grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePlan {
    /// The principals, the user's name first.
    pub principals: Vec<String>,
    /// Unix seconds, inclusive.
    pub valid_after: u64,
    /// Unix seconds, exclusive.
    pub valid_before: u64,
    /// `sallyport:USER:SESSION`.
    pub key_id: String,
    /// Forwarding allowed by the grants.
    pub options: GrantOptions,
    /// The grants the principals rest on.
    pub grants: Vec<GrantId>,
}

impl CertificatePlan {
    /// The extensions, in the order OpenSSH lists them.
    pub fn extensions(&self) -> Vec<&'static str> {
        let mut e = Vec::with_capacity(3);
        if self.options.agent_forwarding {
            e.push(PERMIT_AGENT_FORWARDING);
        }
        if self.options.port_forwarding {
            e.push(PERMIT_PORT_FORWARDING);
        }
        e.push(PERMIT_PTY);
        e
    }

    /// `valid_before` as a [`Timestamp`].
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(i64::try_from(self.valid_before).unwrap_or(i64::MAX / 1000) * 1000)
    }
}

/// Plans the certificate for `user` holding `grants` (as [`Snapshot::ssh_grants`] returns them)
/// at `now`, valid at most `max_validity`, for login session `session`.
///
/// [`Snapshot::ssh_grants`]: crate::policy::Snapshot::ssh_grants
pub fn plan(
    user: &UserName,
    grants: &[SshGrant],
    now: Timestamp,
    max_validity: Duration,
    session: Uuid,
) -> Result<CertificatePlan, PlanError> {
    if max_validity.is_zero() {
        return Err(PlanError::ZeroValidity);
    }
    let live: Vec<&SshGrant> = grants.iter().filter(|g| g.expires_at > now).collect();
    // Latest expiry among the grants giving each principal.
    let mut until: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut options = GrantOptions::default();
    for g in &live {
        let mut give = |p: String| {
            let e = until.entry(p).or_insert(g.expires_at);
            *e = (*e).max(g.expires_at);
        };
        give(user.to_string());
        for l in &g.logins {
            give(l.to_string());
        }
        options = options.union(g.options);
    }
    let own = user.to_string();
    let Some(own_until) = until.get(&own).copied() else {
        return Err(PlanError::NoSshGrant);
    };
    let cap = now.saturating_add(max_validity);
    let end = until.values().copied().min().unwrap_or(own_until).min(cap);
    let others: BTreeSet<String> = until.keys().filter(|p| **p != own).cloned().collect();
    let mut principals = Vec::with_capacity(others.len() + 1);
    principals.push(own);
    principals.extend(others);
    if unix_secs(end) <= unix_secs(now) {
        return Err(PlanError::NoSshGrant);
    }
    let mut ids: Vec<GrantId> = live.iter().map(|g| g.id).collect();
    ids.sort();
    ids.dedup();
    Ok(CertificatePlan {
        principals,
        valid_after: unix_secs(now.saturating_sub(CLOCK_SKEW)),
        valid_before: unix_secs(end),
        key_id: format!("{KEY_ID_PREFIX}:{user}:{}", session.hyphenated()),
        options,
        grants: ids,
    })
}

/// Whole Unix seconds (rounded down), 0 before the epoch.
fn unix_secs(t: Timestamp) -> u64 {
    u64::try_from(t.as_millis().div_euclid(1000)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
