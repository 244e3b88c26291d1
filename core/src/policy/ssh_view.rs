//! The SSH grants of one user in force at an instant, for certificate issuance
//! ([`crate::ssh_ca`]).

use super::decide::Denial;
use super::snapshot::Snapshot;
use crate::model::{GrantId, GrantOptions, Login, Protocol, UserName};
use crate::time::Timestamp;

/// One grant in force that allows SSH (jump or proxy mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshGrant {
    /// The grant.
    pub id: GrantId,
    /// It allows jump mode (`ssh`).
    pub jump: bool,
    /// The remote logins it allows in proxy mode (`ssh-proxy`); empty otherwise.
    pub logins: Vec<Login>,
    /// When it ends.
    pub expires_at: Timestamp,
    /// Its forwarding options.
    pub options: GrantOptions,
}

impl Snapshot {
    /// The grants that allow `user` SSH at `now` (started, not expired, not revoked; a group's
    /// grants included). Refuses an unknown or disabled user.
    pub fn ssh_grants(&self, user: &UserName, now: Timestamp) -> Result<Vec<SshGrant>, Denial> {
        self.check_user(user)?;
        let Some(entry) = self.users.get(user) else {
            return Err(Denial::UnknownUser);
        };
        Ok(entry
            .grants
            .iter()
            .filter(|g| g.not_before <= now && now < g.expires_at)
            .filter(|g| {
                g.protocols.contains(Protocol::Ssh) || g.protocols.contains(Protocol::SshProxy)
            })
            .map(|g| SshGrant {
                id: g.id,
                jump: g.protocols.contains(Protocol::Ssh),
                logins: if g.protocols.contains(Protocol::SshProxy) {
                    g.logins.clone()
                } else {
                    Vec::new()
                },
                expires_at: g.expires_at,
                options: g.options,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{Grant, GrantOptions, Role, Target, User, UserState};
    use crate::policy::{decide, Credential, Destination, Request};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + s * 1000)
    }

    fn grant(
        i: u64,
        object: &str,
        protocols: &str,
        logins: &[&str],
        options: GrantOptions,
    ) -> Grant {
        Grant {
            id: format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap(),
            subject: "@ops".parse().unwrap(),
            object: object.parse().unwrap(),
            protocols: protocols.parse().unwrap(),
            ports: "22".parse().unwrap(),
            logins: logins.iter().map(|l| l.parse().unwrap()).collect(),
            options,
            not_before: at(0),
            expires_at: at(3600),
            reason: "INC-1".parse().unwrap(),
            granted_by: "root".parse().unwrap(),
            created_at: at(-1),
            revoked: None,
        }
    }

    #[test]
    fn group_grants_count_and_options_reach_allowed() {
        let alice = User {
            name: "alice".parse().unwrap(),
            roles: BTreeSet::from([Role::Engineer]),
            groups: BTreeSet::from(["ops".parse().unwrap()]),
            state: UserState::Active,
            created_at: at(-10),
        };
        let target = Target {
            name: "db-1".parse().unwrap(),
            address: "10.0.0.5:22".parse().unwrap(),
            host_key: None,
            created_at: at(-10),
        };
        let fwd = GrantOptions {
            agent_forwarding: true,
            port_forwarding: false,
        };
        let grants = [
            grant(1, "db-1", "ssh-proxy", &["root"], fwd),
            grant(2, "10.0.0.0/24", "tcp", &[], GrantOptions::default()),
        ];
        let snap = Snapshot::compile(1, std::slice::from_ref(&alice), &[], &[target], &grants);
        let ssh = snap.ssh_grants(&alice.name, at(1)).unwrap();
        assert_eq!(ssh.len(), 1);
        assert!(!ssh[0].jump);
        assert_eq!(ssh[0].logins, ["root".parse::<Login>().unwrap()]);
        assert_eq!(ssh[0].options, fwd);
        assert!(snap.ssh_grants(&alice.name, at(3600)).unwrap().is_empty());
        assert_eq!(
            snap.ssh_grants(&"bob".parse().unwrap(), at(1)),
            Err(Denial::UnknownUser)
        );
        let allowed = decide(
            &Request {
                user: alice.name.clone(),
                credential: Credential::Certificate { serial: 1 },
                protocol: Protocol::SshProxy,
                destination: Destination::Target("db-1".parse().unwrap()),
                port: 22,
                login: Some("root".parse().unwrap()),
            },
            &snap,
            at(1),
        )
        .into_result()
        .unwrap();
        assert_eq!(allowed.options(), fwd);
    }
}
