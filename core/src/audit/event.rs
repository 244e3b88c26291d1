use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{
    Fingerprint, GrantId, GroupName, Login, PortSpec, ProtocolSet, Role, Subject, TargetName,
    UserName,
};
use crate::time::Timestamp;

/// The actor recorded for what the gateway does by itself (expiry, start-up).
pub const SYSTEM_ACTOR: &str = "sallyportd";

/// What happened. Each variant has a stable dotted name, a stable code and a version; a change
/// to a variant's fields bumps its version. Adding a variant forces every `match` to decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
#[non_exhaustive]
pub enum EventKind {
    /// A user was added.
    #[serde(rename = "access.user.create")]
    UserCreated {
        /// The new user.
        user: UserName,
        /// Their roles.
        roles: Vec<Role>,
        /// Their groups.
        groups: Vec<GroupName>,
    },
    /// A user was disabled.
    #[serde(rename = "access.user.disable")]
    UserDisabled {
        /// The user.
        user: UserName,
    },
    /// A user was enabled.
    #[serde(rename = "access.user.enable")]
    UserEnabled {
        /// The user.
        user: UserName,
    },
    /// A user's groups were set.
    #[serde(rename = "access.user.groups")]
    UserGroupsSet {
        /// The user.
        user: UserName,
        /// Their groups now.
        groups: Vec<GroupName>,
    },
    /// An SSH public key was registered.
    #[serde(rename = "access.key.add")]
    KeyAdded {
        /// Owner.
        user: UserName,
        /// SHA-256 fingerprint.
        fingerprint: Fingerprint,
        /// Key algorithm.
        algorithm: String,
        /// The key's comment.
        comment: String,
    },
    /// An SSH public key was removed.
    #[serde(rename = "access.key.remove")]
    KeyRemoved {
        /// Owner.
        user: UserName,
        /// SHA-256 fingerprint.
        fingerprint: Fingerprint,
    },
    /// A target was registered.
    #[serde(rename = "access.target.create")]
    TargetCreated {
        /// Name.
        target: TargetName,
        /// HOST:PORT.
        address: String,
        /// Fingerprint of the pinned host key, if any.
        host_key: Option<Fingerprint>,
    },
    /// A target was removed.
    #[serde(rename = "access.target.remove")]
    TargetRemoved {
        /// Name.
        target: TargetName,
    },
    /// A grant was created.
    #[serde(rename = "access.grant.create")]
    GrantCreated {
        /// Grant id.
        grant: GrantId,
        /// User or @group.
        subject: Subject,
        /// Target or CIDR.
        object: String,
        /// Protocols.
        protocols: ProtocolSet,
        /// Ports.
        ports: PortSpec,
        /// Remote logins (proxy mode).
        logins: Vec<Login>,
        /// Start.
        not_before: Timestamp,
        /// End.
        expires_at: Timestamp,
        /// Why.
        reason: String,
    },
    /// A grant was revoked.
    #[serde(rename = "access.grant.revoke")]
    GrantRevoked {
        /// Grant id.
        grant: GrantId,
        /// User or @group it was for.
        subject: Subject,
    },
    /// A grant's window closed.
    #[serde(rename = "access.grant.expire")]
    GrantExpired {
        /// Grant id.
        grant: GrantId,
        /// User or @group it was for.
        subject: Subject,
    },
    /// An API token was issued.
    #[serde(rename = "api.token.issue")]
    TokenIssued {
        /// For whom.
        user: UserName,
        /// The token's id (`jti`), never the token.
        token_id: String,
        /// Until when.
        expires_at: Timestamp,
    },
    /// The gateway started.
    #[serde(rename = "gateway.start")]
    GatewayStarted {
        /// sallyportd's version.
        version: String,
        /// The instance name.
        instance: String,
    },
    /// The gateway stopped cleanly.
    #[serde(rename = "gateway.stop")]
    GatewayStopped {
        /// The instance name.
        instance: String,
    },
}

impl EventKind {
    /// The stable dotted name.
    pub fn name(&self) -> &'static str {
        self.meta().0
    }

    /// The stable code: a letter for the area, four digits, and I(nfo)/W(arning).
    pub fn code(&self) -> &'static str {
        self.meta().1
    }

    /// The version of this variant's fields.
    pub fn version(&self) -> u16 {
        self.meta().2
    }

    fn meta(&self) -> (&'static str, &'static str, u16) {
        match self {
            EventKind::UserCreated { .. } => ("access.user.create", "A1001I", 1),
            EventKind::UserDisabled { .. } => ("access.user.disable", "A1002I", 1),
            EventKind::UserEnabled { .. } => ("access.user.enable", "A1003I", 1),
            EventKind::UserGroupsSet { .. } => ("access.user.groups", "A1004I", 1),
            EventKind::KeyAdded { .. } => ("access.key.add", "A1010I", 1),
            EventKind::KeyRemoved { .. } => ("access.key.remove", "A1011I", 1),
            EventKind::TargetCreated { .. } => ("access.target.create", "A1020I", 1),
            EventKind::TargetRemoved { .. } => ("access.target.remove", "A1021I", 1),
            EventKind::GrantCreated { .. } => ("access.grant.create", "A1030I", 1),
            EventKind::GrantRevoked { .. } => ("access.grant.revoke", "A1031I", 1),
            EventKind::GrantExpired { .. } => ("access.grant.expire", "A1032I", 1),
            EventKind::TokenIssued { .. } => ("api.token.issue", "A2001I", 1),
            EventKind::GatewayStarted { .. } => ("gateway.start", "G1001I", 1),
            EventKind::GatewayStopped { .. } => ("gateway.stop", "G1002I", 1),
        }
    }

    /// The user the event is about, for indexed search.
    pub fn subject_user(&self) -> Option<String> {
        match self {
            EventKind::UserCreated { user, .. }
            | EventKind::UserDisabled { user }
            | EventKind::UserEnabled { user }
            | EventKind::UserGroupsSet { user, .. }
            | EventKind::KeyAdded { user, .. }
            | EventKind::KeyRemoved { user, .. }
            | EventKind::TokenIssued { user, .. } => Some(user.to_string()),
            EventKind::GrantCreated { subject, .. }
            | EventKind::GrantRevoked { subject, .. }
            | EventKind::GrantExpired { subject, .. } => Some(subject.to_string()),
            EventKind::TargetCreated { .. }
            | EventKind::TargetRemoved { .. }
            | EventKind::GatewayStarted { .. }
            | EventKind::GatewayStopped { .. } => None,
        }
    }

    /// The target the event is about, for indexed search.
    pub fn target(&self) -> Option<String> {
        match self {
            EventKind::TargetCreated { target, .. } | EventKind::TargetRemoved { target } => {
                Some(target.to_string())
            }
            EventKind::GrantCreated { object, .. } => Some(object.clone()),
            _ => None,
        }
    }

    /// The event's fields as a JSON object (the `data` of a journal record).
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds a typed event from a journal record's name and data.
    pub fn from_parts(name: &str, data: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(serde_json::json!({ "event": name, "data": data })).ok()
    }
}

/// One audit event with its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique id, so duplicates downstream are recognisable.
    pub id: Uuid,
    /// When it happened.
    pub time: Timestamp,
    /// Who did it: a user name, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// Where the actor came from (address), if known.
    pub source: Option<String>,
    /// The session it belongs to, if any.
    pub session: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// A new event happening now-ish at `time`, by `actor`.
    pub fn new(time: Timestamp, actor: impl Into<String>, kind: EventKind) -> Self {
        Self {
            id: Uuid::new_v4(),
            time,
            actor: actor.into(),
            source: None,
            session: None,
            kind,
        }
    }

    /// Sets the source address.
    pub fn with_source(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_tags() {
        let k = EventKind::UserDisabled {
            user: "alice".parse().unwrap(),
        };
        let v = serde_json::to_value(&k).unwrap();
        assert_eq!(v["event"], k.name());
        assert_eq!(k.data(), serde_json::json!({ "user": "alice" }));
        assert_eq!(EventKind::from_parts(k.name(), &k.data()), Some(k));
    }
}
