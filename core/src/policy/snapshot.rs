use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::decide::{Credential, Denial};
use crate::model::{
    Fingerprint, Grant, GrantId, GrantObject, GrantOptions, Login, PortSpec, ProtocolSet, Subject,
    Target, TargetName, User, UserName, UserState,
};
use crate::time::Timestamp;

/// One grant, flattened for the lookup path.
#[derive(Clone, Debug)]
pub(super) struct CompiledGrant {
    pub(super) id: GrantId,
    pub(super) object: CompiledObject,
    pub(super) protocols: ProtocolSet,
    pub(super) ports: PortSpec,
    pub(super) logins: Vec<Login>,
    pub(super) options: GrantOptions,
    pub(super) not_before: Timestamp,
    pub(super) expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub(super) enum CompiledObject {
    Target {
        name: TargetName,
        ip: Option<IpAddr>,
    },
    Cidr(IpNet),
}

#[derive(Debug, Default)]
pub(super) struct UserEntry {
    pub(super) active: bool,
    pub(super) keys: HashSet<Fingerprint>,
    pub(super) grants: Vec<CompiledGrant>,
}

/// Everything the policy needs, compiled for fast lookups. Immutable; replaced whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub(super) version: u64,
    pub(super) users: HashMap<UserName, UserEntry>,
    pub(super) targets: HashMap<TargetName, Target>,
}

impl Snapshot {
    /// Compiles the control plane's state. Revoked grants are left out; grants to a group are
    /// copied to each member; grants to unknown users or targets match nothing.
    pub fn compile(
        version: u64,
        users: &[User],
        keys: &[(UserName, Fingerprint)],
        targets: &[Target],
        grants: &[Grant],
    ) -> Self {
        let targets: HashMap<TargetName, Target> = targets
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let mut entries: HashMap<UserName, UserEntry> = users
            .iter()
            .map(|u| {
                let entry = UserEntry {
                    active: u.state == UserState::Active,
                    ..UserEntry::default()
                };
                (u.name.clone(), entry)
            })
            .collect();
        for (user, fp) in keys {
            if let Some(e) = entries.get_mut(user) {
                e.keys.insert(fp.clone());
            }
        }
        for g in grants.iter().filter(|g| g.revoked.is_none()) {
            let object = match &g.object {
                GrantObject::Target(name) => match targets.get(name) {
                    Some(t) => CompiledObject::Target {
                        name: name.clone(),
                        ip: t.address.host.ip(),
                    },
                    None => continue,
                },
                GrantObject::Cidr(net) => CompiledObject::Cidr(*net),
            };
            let compiled = CompiledGrant {
                id: g.id,
                object,
                protocols: g.protocols,
                ports: g.ports.clone(),
                logins: g.logins.iter().cloned().collect(),
                options: g.options,
                not_before: g.not_before,
                expires_at: g.expires_at,
            };
            match &g.subject {
                Subject::User(u) => {
                    if let Some(e) = entries.get_mut(u) {
                        e.grants.push(compiled);
                    }
                }
                Subject::Group(group) => {
                    for u in users.iter().filter(|u| u.groups.contains(group)) {
                        if let Some(e) = entries.get_mut(&u.name) {
                            e.grants.push(compiled.clone());
                        }
                    }
                }
            }
        }
        Self {
            version,
            users: entries,
            targets,
        }
    }

    /// The control plane's version this snapshot was compiled from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A registered target.
    pub fn target(&self, name: &TargetName) -> Option<&Target> {
        self.targets.get(name)
    }

    /// Whether `user` is known and active (what a login checks before any credential).
    pub fn check_user(&self, user: &UserName) -> Result<(), Denial> {
        match self.users.get(user) {
            None => Err(Denial::UnknownUser),
            Some(e) if !e.active => Err(Denial::UserDisabled),
            Some(_) => Ok(()),
        }
    }

    /// Whether `user` may log in with `credential` now: known, active, and for a key, the key
    /// still registered to them. The SSH layer asks at login and again on every change notice,
    /// so that disabling the user or removing the key ends their sessions.
    pub fn authenticate(&self, user: &UserName, credential: &Credential) -> Result<(), Denial> {
        self.check_user(user)?;
        match credential {
            Credential::Key(fp) => {
                let registered = self.users.get(user).is_some_and(|e| e.keys.contains(fp));
                if registered {
                    Ok(())
                } else {
                    Err(Denial::KeyNotRegistered)
                }
            }
            Credential::Certificate { .. } => Ok(()),
        }
    }

    /// The first instant after `now` at which some grant opens or closes, so that a timer can
    /// announce it on the change feed.
    pub fn next_transition_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.users
            .values()
            .flat_map(|e| e.grants.iter())
            .flat_map(|g| [g.not_before, g.expires_at])
            .filter(|t| *t > now)
            .min()
    }

    /// The user a public key is registered to (fingerprints are unique across users), for
    /// logins where the SSH user name does not name the user (SSH proxy mode).
    pub fn key_owner(&self, fingerprint: &Fingerprint) -> Option<&UserName> {
        self.users
            .iter()
            .find(|(_, e)| e.keys.contains(fingerprint))
            .map(|(name, _)| name)
    }

    /// Grants in force for `user` at `now` (for "what may I reach" listings).
    pub fn active_grants(&self, user: &UserName, now: Timestamp) -> Vec<GrantId> {
        self.users
            .get(user)
            .filter(|e| e.active)
            .map(|e| {
                e.grants
                    .iter()
                    .filter(|g| g.not_before <= now && now < g.expires_at)
                    .map(|g| g.id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod authenticate_tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::Role;

    fn user(name: &str, state: UserState) -> User {
        User {
            name: name.parse().unwrap(),
            roles: BTreeSet::from([Role::Engineer]),
            groups: BTreeSet::new(),
            state,
            created_at: Timestamp::from_millis(0),
        }
    }

    fn fp(c: char) -> Fingerprint {
        Fingerprint::try_from(format!("SHA256:{}", c.to_string().repeat(43))).unwrap()
    }

    #[test]
    fn authenticate_follows_user_state_and_keys() {
        let alice: UserName = "alice".parse().unwrap();
        let bob: UserName = "bob".parse().unwrap();
        let eve: UserName = "eve".parse().unwrap();
        let snap = Snapshot::compile(
            1,
            &[
                user("alice", UserState::Active),
                user("bob", UserState::Disabled),
            ],
            &[(alice.clone(), fp('a')), (bob.clone(), fp('b'))],
            &[],
            &[],
        );
        let key = |c| Credential::Key(fp(c));
        let cert = Credential::Certificate { serial: 7 };
        assert_eq!(snap.authenticate(&alice, &key('a')), Ok(()));
        assert_eq!(snap.authenticate(&alice, &cert), Ok(()));
        assert_eq!(
            snap.authenticate(&alice, &key('b')),
            Err(Denial::KeyNotRegistered)
        );
        assert_eq!(
            snap.authenticate(&bob, &key('b')),
            Err(Denial::UserDisabled)
        );
        assert_eq!(snap.authenticate(&bob, &cert), Err(Denial::UserDisabled));
        assert_eq!(snap.authenticate(&eve, &cert), Err(Denial::UnknownUser));
        assert_eq!(snap.check_user(&alice), Ok(()));
        assert_eq!(snap.check_user(&eve), Err(Denial::UnknownUser));
    }
}
