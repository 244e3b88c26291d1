//! Admin operations. Each validates, writes the change and its journal record in one
//! transaction, commits, then publishes.

use std::collections::BTreeSet;
use std::time::Duration;

use sallyport_core::api::{CreateGrant, CreateTarget, CreateUser};
use sallyport_core::audit::EventKind;
use sallyport_core::feed::Change;
use sallyport_core::model::{
    Fingerprint, Grant, GrantId, GrantObject, GroupName, ModelError, PortSpec, Protocol,
    ProtocolSet, SshPublicKey, Subject, Target, TargetName, User, UserName, UserState,
};
use sallyport_core::time::Timestamp;

use super::{Actor, Control, ControlError};
use crate::store::{StoredKey, WriteTx};

/// A grant's length when the request names neither an end nor a duration.
pub const DEFAULT_GRANT_DURATION: Duration = Duration::from_secs(8 * 3600);

impl Control {
    /// Adds a user.
    pub async fn create_user(&self, actor: &Actor, req: CreateUser) -> Result<User, ControlError> {
        if req.roles.is_empty() {
            return Err(ModelError::InvalidGrant("a user needs at least one role").into());
        }
        if req.name.as_str() == sallyport_core::audit::SYSTEM_ACTOR {
            return Err(ControlError::Conflict(format!(
                "{} is reserved: it names the gateway itself in the audit journal",
                req.name
            )));
        }
        let user = User {
            name: req.name,
            roles: req.roles.into_iter().collect(),
            groups: req.groups.into_iter().collect(),
            state: UserState::Active,
            created_at: Timestamp::now(),
        };
        let mut tx = self.store.write().await?;
        tx.insert_user(&user).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::UserCreated {
                user: user.name.clone(),
                roles: user.roles.iter().copied().collect(),
                groups: user.groups.iter().cloned().collect(),
            },
            Change::UserCreated(user.name.clone()),
        )
        .await?;
        Ok(user)
    }

    /// Disables or enables a user. Disabling cuts their live access through the feed.
    pub async fn set_user_state(
        &self,
        actor: &Actor,
        name: &UserName,
        state: UserState,
    ) -> Result<User, ControlError> {
        let mut tx = self.store.write().await?;
        let mut user = tx
            .get_user(name)
            .await?
            .ok_or_else(|| not_found("user", name))?;
        if user.state == state {
            // Nothing changes; nothing to journal.
            return Ok(user);
        }
        tx.set_user_state(name, state).await?;
        let (kind, change) = match state {
            UserState::Disabled => (
                EventKind::UserDisabled { user: name.clone() },
                Change::UserDisabled(name.clone()),
            ),
            UserState::Active => (
                EventKind::UserEnabled { user: name.clone() },
                Change::UserEnabled(name.clone()),
            ),
        };
        self.commit_change(tx, actor, kind, change).await?;
        user.state = state;
        Ok(user)
    }

    /// Replaces a user's groups.
    pub async fn set_user_groups(
        &self,
        actor: &Actor,
        name: &UserName,
        groups: BTreeSet<GroupName>,
    ) -> Result<User, ControlError> {
        let mut tx = self.store.write().await?;
        let mut user = tx
            .get_user(name)
            .await?
            .ok_or_else(|| not_found("user", name))?;
        tx.set_user_groups(name, &groups).await?;
        let list: Vec<GroupName> = groups.iter().cloned().collect();
        self.commit_change(
            tx,
            actor,
            EventKind::UserGroupsSet {
                user: name.clone(),
                groups: list.clone(),
            },
            Change::UserGroupsChanged {
                user: name.clone(),
                groups: list,
            },
        )
        .await?;
        user.groups = groups;
        Ok(user)
    }

    /// Registers an SSH public key to a user.
    pub async fn add_key(
        &self,
        actor: &Actor,
        user: &UserName,
        public_key: &str,
    ) -> Result<StoredKey, ControlError> {
        let key = SshPublicKey::parse(public_key)?;
        let stored = StoredKey {
            user: user.clone(),
            key,
            created_at: Timestamp::now(),
        };
        let mut tx = self.store.write().await?;
        tx.get_user(user)
            .await?
            .ok_or_else(|| not_found("user", user))?;
        tx.insert_key(&stored).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::KeyAdded {
                user: user.clone(),
                fingerprint: stored.key.fingerprint().clone(),
                algorithm: stored.key.algorithm(),
                comment: stored.key.comment().to_owned(),
            },
            Change::KeyAdded {
                user: user.clone(),
                fingerprint: stored.key.fingerprint().clone(),
            },
        )
        .await?;
        Ok(stored)
    }

    /// Removes a key. Sessions authenticated with it are cut through the feed.
    pub async fn remove_key(
        &self,
        actor: &Actor,
        fingerprint: &Fingerprint,
    ) -> Result<StoredKey, ControlError> {
        let mut tx = self.store.write().await?;
        let removed = tx.delete_key(fingerprint).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::KeyRemoved {
                user: removed.user.clone(),
                fingerprint: fingerprint.clone(),
            },
            Change::KeyRemoved {
                user: removed.user.clone(),
                fingerprint: fingerprint.clone(),
            },
        )
        .await?;
        Ok(removed)
    }

    /// Registers a target.
    pub async fn create_target(
        &self,
        actor: &Actor,
        req: CreateTarget,
    ) -> Result<Target, ControlError> {
        let host_key = req
            .host_key
            .as_deref()
            .map(SshPublicKey::parse)
            .transpose()?;
        let target = Target {
            name: req.name,
            address: req.address,
            host_key,
            created_at: Timestamp::now(),
        };
        let mut tx = self.store.write().await?;
        tx.insert_target(&target).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::TargetCreated {
                target: target.name.clone(),
                address: target.address.to_string(),
                host_key: target.host_key.as_ref().map(|k| k.fingerprint().clone()),
            },
            Change::TargetCreated(target.name.clone()),
        )
        .await?;
        Ok(target)
    }

    /// Removes a target that no live or pending grant refers to.
    pub async fn remove_target(
        &self,
        actor: &Actor,
        name: &TargetName,
    ) -> Result<Target, ControlError> {
        let mut tx = self.store.write().await?;
        let target = tx
            .get_target(name)
            .await?
            .ok_or_else(|| not_found("target", name))?;
        let live = tx.live_grants_to_target(name, Timestamp::now()).await?;
        if live > 0 {
            return Err(ControlError::Conflict(format!(
                "target {name} still has {live} grant(s) in force or pending; revoke them first"
            )));
        }
        tx.delete_target(name).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::TargetRemoved {
                target: name.clone(),
            },
            Change::TargetRemoved(name.clone()),
        )
        .await?;
        Ok(target)
    }

    /// Creates a grant. Defaults: protocol `ssh`; ports the target's own port (or 22 for SSH
    /// to a CIDR); window from now for 8 hours.
    pub async fn create_grant(
        &self,
        actor: &Actor,
        req: CreateGrant,
    ) -> Result<Grant, ControlError> {
        let granted_by: UserName = actor.name.parse()?;
        let now = Timestamp::now();
        let protocols = if req.protocols.is_empty() {
            ProtocolSet::new([Protocol::Ssh])?
        } else {
            ProtocolSet::new(req.protocols.iter().copied())?
        };
        let not_before = req.not_before.unwrap_or(now);
        let expires_at = match (req.expires_at, req.duration_secs) {
            (Some(_), Some(_)) => {
                return Err(
                    ModelError::InvalidTimeWindow("give an expiry or a duration, not both").into(),
                )
            }
            (Some(t), None) => t,
            (None, Some(0)) => {
                return Err(ModelError::InvalidTimeWindow("duration must be positive").into())
            }
            (None, Some(secs)) => not_before.saturating_add(Duration::from_secs(secs)),
            (None, None) => not_before.saturating_add(DEFAULT_GRANT_DURATION),
        };

        let mut tx = self.store.write().await?;
        match &req.subject {
            Subject::User(u) => {
                tx.get_user(u).await?.ok_or_else(|| not_found("user", u))?;
            }
            Subject::Group(g) => {
                if !tx.group_has_members(g).await? {
                    return Err(ControlError::NotFound {
                        kind: "group",
                        name: format!("@{g}"),
                    });
                }
            }
        }
        let ports = match (&req.object, req.ports) {
            (_, Some(p)) => p,
            (GrantObject::Target(name), None) => {
                let t = tx
                    .get_target(name)
                    .await?
                    .ok_or_else(|| not_found("target", name))?;
                PortSpec::single(t.address.port)?
            }
            (GrantObject::Cidr(_), None) => {
                let only_ssh = protocols
                    .iter()
                    .all(|p| matches!(p, Protocol::Ssh | Protocol::SshProxy | Protocol::Icmp));
                if !only_ssh {
                    return Err(ModelError::InvalidGrant(
                        "tcp and udp grants to a CIDR need explicit ports",
                    )
                    .into());
                }
                PortSpec::single(22)?
            }
        };
        if let GrantObject::Target(name) = &req.object {
            tx.get_target(name)
                .await?
                .ok_or_else(|| not_found("target", name))?;
        }
        let grant = Grant {
            id: GrantId::random(),
            subject: req.subject,
            object: req.object,
            protocols,
            ports,
            logins: req.logins.into_iter().collect(),
            options: req.options,
            not_before,
            expires_at,
            reason: req.reason,
            granted_by,
            created_at: now,
            revoked: None,
        };
        grant.check(now)?;
        tx.insert_grant(&grant).await?;
        self.commit_change(
            tx,
            actor,
            EventKind::GrantCreated {
                grant: grant.id,
                subject: grant.subject.clone(),
                object: grant.object.to_string(),
                protocols: grant.protocols,
                ports: grant.ports.clone(),
                logins: grant.logins.iter().cloned().collect(),
                options: grant.options,
                not_before: grant.not_before,
                expires_at: grant.expires_at,
                reason: grant.reason.to_string(),
            },
            Change::GrantCreated(grant.id),
        )
        .await?;
        Ok(grant)
    }

    /// Revokes a grant at once. What it carried is cut through the feed.
    pub async fn revoke_grant(&self, actor: &Actor, id: GrantId) -> Result<Grant, ControlError> {
        let by: UserName = actor.name.parse()?;
        let current = self
            .store
            .get_grant(id)
            .await?
            .ok_or_else(|| not_found("grant", &id))?;
        if current.revoked.is_some() {
            return Err(ControlError::Conflict(format!(
                "grant {id} is already revoked"
            )));
        }
        let mut tx = self.store.write().await?;
        let grant = tx
            .revoke_grant(id, Timestamp::now(), &by)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict { .. } => {
                    ControlError::Conflict(format!("grant {id} is already revoked"))
                }
                other => other.into(),
            })?;
        self.commit_change(
            tx,
            actor,
            EventKind::GrantRevoked {
                grant: id,
                subject: grant.subject.clone(),
            },
            Change::GrantRevoked(id),
        )
        .await?;
        Ok(grant)
    }
}

impl Control {
    /// Journals `kind` inside `tx`, commits the change and its record together, then publishes
    /// `change`: the one way an admin operation ends.
    async fn commit_change(
        &self,
        mut tx: WriteTx,
        actor: &Actor,
        kind: EventKind,
        change: Change,
    ) -> Result<(), ControlError> {
        tx.journal(&actor.event(kind)).await?;
        // Other gateways hear of it only if it commits (PostgreSQL NOTIFY is transactional).
        tx.bump_control_version(|v| super::ChangePayload::encode(v, std::slice::from_ref(&change)))
            .await?;
        tx.commit().await?;
        self.publish(vec![change]).await
    }
}

fn not_found(kind: &'static str, name: &impl ToString) -> ControlError {
    ControlError::NotFound {
        kind,
        name: name.to_string(),
    }
}
