//! Model values into API views.

use sallyport_core::api::{GrantView, KeyView, TargetView, UserView};
use sallyport_core::model::{Grant, SshPublicKey, Target, User};
use sallyport_core::time::Timestamp;

use crate::store::StoredKey;

pub fn user(u: User) -> UserView {
    UserView {
        id: u.name,
        roles: u.roles.into_iter().collect(),
        groups: u.groups.into_iter().collect(),
        state: u.state,
        created_at: u.created_at,
    }
}

pub fn key(k: StoredKey) -> KeyView {
    KeyView {
        id: k.key.fingerprint().clone(),
        user: k.user,
        algorithm: k.key.algorithm(),
        comment: k.key.comment().to_owned(),
        public_key: k.key.to_openssh(),
        created_at: k.created_at,
    }
}

pub fn target(t: Target) -> TargetView {
    TargetView {
        id: t.name,
        address: t.address,
        host_key_fingerprint: t.host_key.as_ref().map(|k| k.fingerprint().clone()),
        host_key: t.host_key.as_ref().map(SshPublicKey::to_openssh),
        created_at: t.created_at,
    }
}

pub fn grant(g: Grant, now: Timestamp) -> GrantView {
    let status = g.status(now);
    let (revoked_at, revoked_by) = match g.revoked {
        Some((at, by)) => (Some(at), Some(by)),
        None => (None, None),
    };
    GrantView {
        id: g.id,
        subject: g.subject,
        object: g.object,
        protocols: g.protocols.iter().collect(),
        ports: g.ports,
        logins: g.logins.into_iter().collect(),
        options: g.options,
        not_before: g.not_before,
        expires_at: g.expires_at,
        reason: g.reason,
        granted_by: g.granted_by,
        created_at: g.created_at,
        status,
        revoked_at,
        revoked_by,
    }
}
