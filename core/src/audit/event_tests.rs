//! Tests of the audit event types.

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

#[test]
fn proxy_channel_observer_events_round_trip() {
    let user: UserName = "alice".parse().unwrap();
    let target: TargetName = "db-1".parse().unwrap();
    let login: Login = "root".parse().unwrap();
    let kinds = [
        EventKind::SshExec {
            user: user.clone(),
            channel: 0,
            target: target.clone(),
            login: login.clone(),
            grant: "00000000-0000-4000-8000-000000000001".parse().unwrap(),
            command: "uptime".into(),
        },
        EventKind::SshSftpWrite {
            user: user.clone(),
            channel: 2,
            target: target.clone(),
            login: login.clone(),
            path: None,
            bytes: 3,
            writes: 1,
        },
        EventKind::SshSftpChange {
            user: user.clone(),
            channel: 2,
            target: target.clone(),
            login,
            operation: "setstat".into(),
            path: Some("/x".into()),
            detail: "mode=0755".into(),
            outcome: "ok".into(),
        },
        EventKind::SshObserverGap {
            user,
            channel: 1,
            target,
            what: "audit".into(),
            events: 5,
            bytes: 0,
        },
    ];
    let mut codes = std::collections::BTreeSet::new();
    for k in kinds {
        assert!(codes.insert(k.code()), "{} reused", k.code());
        assert_eq!(serde_json::to_value(&k).unwrap()["event"], k.name());
        assert_eq!(EventKind::from_parts(k.name(), &k.data()), Some(k.clone()));
        assert_eq!(k.target().as_deref(), Some("db-1"));
        assert_eq!(k.subject_user().as_deref(), Some("alice"));
    }
    assert!(codes.contains("S1072W"));
}
