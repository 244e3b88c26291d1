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
    /// A log service refused events of an accepted batch (CloudWatch's
    /// `rejectedLogEventsInfo`, or an event refused on its own). They stay in the journal.
    #[serde(rename = "audit.ship.rejected")]
    ShipRejected {
        /// The sink (`cloudwatch:GROUP:STREAM`).
        sink: String,
        /// Why: `too_new`, `too_old`, `expired` or `invalid`.
        reason: String,
        /// How many events.
        count: u64,
        /// The lowest journal sequence number among them.
        first_seq: u64,
        /// The highest journal sequence number among them.
        last_seq: u64,
    },
    /// Events were not shipped to a sink because the service would refuse them (too old or too
    /// new for CloudWatch). They stay in the journal and in the sink's quarantine list.
    #[serde(rename = "audit.ship.quarantined")]
    ShipQuarantined {
        /// The sink.
        sink: String,
        /// `too_old` or `too_new`.
        reason: String,
        /// How many events.
        count: u64,
        /// The lowest journal sequence number among them.
        first_seq: u64,
        /// The highest journal sequence number among them.
        last_seq: u64,
    },
    /// An SSH client authenticated (jump mode).
    #[serde(rename = "ssh.auth.success")]
    SshAuthSucceeded {
        /// The user.
        user: UserName,
        /// `publickey` or `certificate`.
        method: String,
        /// SHA-256 fingerprint of the key that signed (for a certificate, its subject key).
        fingerprint: Fingerprint,
        /// The certificate's serial (certificate logins only).
        cert_serial: Option<u64>,
        /// The certificate's key id (certificate logins only).
        cert_key_id: Option<String>,
    },
    /// An SSH authentication attempt was refused.
    #[serde(rename = "ssh.auth.failure")]
    SshAuthFailed {
        /// The user name as the client sent it (not necessarily a user; at most 64 characters).
        user: String,
        /// `publickey`, `certificate`, `password`, `keyboard-interactive` or `unknown`.
        method: String,
        /// Fingerprint of the key offered, if any.
        fingerprint: Option<Fingerprint>,
        /// Why, a stable code (`unknown-user`, `key-not-registered`, `rate-limited`, …).
        reason: String,
    },
    /// An authenticated SSH session began.
    #[serde(rename = "ssh.session.start")]
    SshSessionStarted {
        /// The user.
        user: UserName,
        /// The client's version string, as sent (printable ASCII, at most 128 characters).
        client: String,
    },
    /// An authenticated SSH session ended.
    #[serde(rename = "ssh.session.end")]
    SshSessionEnded {
        /// The user.
        user: UserName,
        /// Why: `client`, `revoked`, `expired`, `idle`, `shutdown` or `error`.
        reason: String,
        /// How long it lasted, in milliseconds.
        duration_ms: u64,
        /// How many tunnels it opened.
        tunnels: u64,
    },
    /// A jump tunnel (`direct-tcpip`) was opened to a target.
    #[serde(rename = "ssh.tunnel.open")]
    SshTunnelOpened {
        /// The user.
        user: UserName,
        /// The tunnel's number within its session.
        tunnel: u64,
        /// The destination as asked: a target name or an IP address.
        target: String,
        /// The destination port.
        port: u16,
        /// The address connected to (`HOST:PORT`).
        address: String,
        /// The grant that allowed it.
        grant: GrantId,
    },
    /// A jump tunnel was refused.
    #[serde(rename = "ssh.tunnel.denied")]
    SshTunnelDenied {
        /// The user.
        user: UserName,
        /// The destination as asked (at most 255 characters).
        target: String,
        /// The destination port as asked.
        port: u32,
        /// Why, a stable code ([`crate::policy::Denial::code`], or `target-unreachable`, …).
        reason: String,
    },
    /// A jump tunnel closed.
    #[serde(rename = "ssh.tunnel.close")]
    SshTunnelClosed {
        /// The user.
        user: UserName,
        /// The tunnel's number within its session.
        tunnel: u64,
        /// The destination as asked.
        target: String,
        /// The destination port.
        port: u16,
        /// The grant that allowed it.
        grant: GrantId,
        /// Why it closed.
        reason: TunnelCloseReason,
        /// Bytes relayed from the client to the target.
        bytes_to_target: u64,
        /// Bytes relayed from the target to the client.
        bytes_to_client: u64,
        /// How long it was open, in milliseconds.
        duration_ms: u64,
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
            EventKind::ShipRejected { .. } => ("audit.ship.rejected", "L1001W", 1),
            EventKind::ShipQuarantined { .. } => ("audit.ship.quarantined", "L1002W", 1),
            EventKind::SshAuthSucceeded { .. } => ("ssh.auth.success", "S1001I", 1),
            EventKind::SshAuthFailed { .. } => ("ssh.auth.failure", "S1002W", 1),
            EventKind::SshSessionStarted { .. } => ("ssh.session.start", "S1010I", 1),
            EventKind::SshSessionEnded { .. } => ("ssh.session.end", "S1011I", 1),
            EventKind::SshTunnelOpened { .. } => ("ssh.tunnel.open", "S1020I", 1),
            EventKind::SshTunnelDenied { .. } => ("ssh.tunnel.denied", "S1021W", 1),
            EventKind::SshTunnelClosed { .. } => ("ssh.tunnel.close", "S1022I", 1),
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
            | EventKind::TokenIssued { user, .. }
            | EventKind::SshAuthSucceeded { user, .. }
            | EventKind::SshSessionStarted { user, .. }
            | EventKind::SshSessionEnded { user, .. }
            | EventKind::SshTunnelOpened { user, .. }
            | EventKind::SshTunnelDenied { user, .. }
            | EventKind::SshTunnelClosed { user, .. } => Some(user.to_string()),
            EventKind::SshAuthFailed { user, .. } => Some(user.clone()),
            EventKind::GrantCreated { subject, .. }
            | EventKind::GrantRevoked { subject, .. }
            | EventKind::GrantExpired { subject, .. } => Some(subject.to_string()),
            EventKind::TargetCreated { .. }
            | EventKind::TargetRemoved { .. }
            | EventKind::GatewayStarted { .. }
            | EventKind::GatewayStopped { .. }
            | EventKind::ShipRejected { .. }
            | EventKind::ShipQuarantined { .. } => None,
        }
    }

    /// The target the event is about, for indexed search.
    pub fn target(&self) -> Option<String> {
        match self {
            EventKind::TargetCreated { target, .. } | EventKind::TargetRemoved { target } => {
                Some(target.to_string())
            }
            EventKind::GrantCreated { object, .. } => Some(object.clone()),
            EventKind::SshTunnelOpened { target, .. }
            | EventKind::SshTunnelDenied { target, .. }
            | EventKind::SshTunnelClosed { target, .. } => Some(target.clone()),
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

/// Why a jump tunnel closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCloseReason {
    /// The client closed it (or its connection ended).
    Client,
    /// The target closed it, or the connection to it failed.
    Target,
    /// Access was taken away: grant revoked, user disabled, key removed.
    Revoked,
    /// The grant (or the user's certificate) expired.
    Expired,
    /// No bytes moved for the idle timeout.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
}

impl TunnelCloseReason {
    /// The reason's name in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelCloseReason::Client => "client",
            TunnelCloseReason::Target => "target",
            TunnelCloseReason::Revoked => "revoked",
            TunnelCloseReason::Expired => "expired",
            TunnelCloseReason::Idle => "idle",
            TunnelCloseReason::Shutdown => "shutdown",
        }
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

    #[test]
    fn ssh_events_round_trip_with_their_names() {
        let grant: GrantId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
        let user: UserName = "alice".parse().unwrap();
        let kinds = [
            EventKind::SshAuthFailed {
                user: "mallory".into(),
                method: "publickey".into(),
                fingerprint: None,
                reason: "unknown-user".into(),
            },
            EventKind::SshTunnelClosed {
                user: user.clone(),
                tunnel: 1,
                target: "db-1".into(),
                port: 22,
                grant,
                reason: TunnelCloseReason::Revoked,
                bytes_to_target: 10,
                bytes_to_client: 20,
                duration_ms: 30,
            },
        ];
        for k in kinds {
            let v = serde_json::to_value(&k).unwrap();
            assert_eq!(v["event"], k.name());
            assert!(k.code().starts_with('S'), "{}", k.code());
            assert_eq!(EventKind::from_parts(k.name(), &k.data()), Some(k.clone()));
        }
        let closed = EventKind::SshTunnelClosed {
            user,
            tunnel: 1,
            target: "db-1".into(),
            port: 22,
            grant,
            reason: TunnelCloseReason::Expired,
            bytes_to_target: 0,
            bytes_to_client: 0,
            duration_ms: 0,
        };
        assert_eq!(closed.data()["reason"], "expired");
        assert_eq!(closed.target().as_deref(), Some("db-1"));
        assert_eq!(closed.subject_user().as_deref(), Some("alice"));
    }
}
