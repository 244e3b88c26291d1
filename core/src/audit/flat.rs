//! The shipped form of a journal record: one flat JSON object with stable field names, so that
//! a CloudWatch metric filter such as `{ $.event = "ssh.auth.failure" }` or a Logs Insights
//! `filter user = "alice"` works without knowing each event's layout. Documented in
//! `docs/audit-events.md`.
//!
//! ```text
//!  Record{seq, id, time, event, code, version, actor, user, target, session, source,
//!         data{grant, reason, …}, prev_hash, hash}
//!    ──▶ {"event", "code", "version", "time", "seq", "chain", "id", "actor", "user", "source",
//!         "target", "session", "instance", "hash", "prev_hash", "grant", "reason", …}
//! ```
//!
//! The envelope comes first; absent optional fields are left out. Each field of the event's
//! `data` follows at the top level under its own name. A data field whose name is an envelope
//! name is left out when it holds the same value as the envelope field (e.g. `user`), and is
//! written as `data_<name>` otherwise (e.g. `gateway.start`'s `version` is `data_version`), so
//! the envelope always means the same thing.

use serde_json::{Map, Value};

use super::chain::Record;

/// Names of the envelope fields, in the order they are written; no data field takes them.
pub const ENVELOPE_FIELDS: &[&str] = &[
    "event",
    "code",
    "version",
    "time",
    "seq",
    "chain",
    "id",
    "actor",
    "user",
    "source",
    "target",
    "session",
    "instance",
    "hash",
    "prev_hash",
    // Only in the parts of an event split for size (see `batch`).
    "part",
    "parts",
    "chunk",
];

/// The flat JSON object for `record`, shipped by the gateway named `instance`.
pub fn flat_object(record: &Record, instance: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("event".into(), Value::from(record.event.as_str()));
    m.insert("code".into(), Value::from(record.code.as_str()));
    m.insert("version".into(), Value::from(record.version));
    m.insert("time".into(), Value::from(record.time.to_rfc3339()));
    m.insert("seq".into(), Value::from(record.seq));
    // The chain the seq and hashes belong to (a gateway instance); absent for the shared chain.
    if let Some(chain) = &record.chain {
        m.insert("chain".into(), Value::from(chain.as_str()));
    }
    m.insert("id".into(), Value::from(record.id.as_str()));
    m.insert("actor".into(), Value::from(record.actor.as_str()));
    let optional = [
        ("user", &record.user),
        ("source", &record.source),
        ("target", &record.target),
        ("session", &record.session),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            m.insert(key.into(), Value::from(v.as_str()));
        }
    }
    m.insert("instance".into(), Value::from(instance));
    m.insert("hash".into(), Value::from(record.hash.as_str()));
    m.insert("prev_hash".into(), Value::from(record.prev_hash.as_str()));
    if let Value::Object(data) = &record.data {
        for (key, value) in data {
            if !ENVELOPE_FIELDS.contains(&key.as_str()) {
                m.insert(key.clone(), value.clone());
                continue;
            }
            let same = match (m.get(key), value) {
                (Some(Value::String(a)), Value::String(b)) => a == b,
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            if !same {
                m.insert(format!("data_{key}"), value.clone());
            }
        }
    }
    m
}

/// The flat JSON text for `record` (one line, no trailing newline).
pub fn flat_message(record: &Record, instance: &str) -> String {
    // A map of strings, numbers and JSON values always serialises.
    serde_json::to_string(&flat_object(record, instance)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ChainHead, Event, EventKind};
    use crate::time::Timestamp;

    fn record(kind: EventKind) -> Record {
        let mut e = Event::new(Timestamp::from_millis(1_767_225_600_123), "admin", kind);
        e.source = Some("192.0.2.7".into());
        e.session = Some("s-1".into());
        ChainHead::default().append(&e)
    }

    #[test]
    fn envelope_and_data_are_flat() {
        let r = record(EventKind::GrantRevoked {
            grant: "6f1c1c4e-3b8e-4a43-9d49-3a3f0b1b7d7c".parse().unwrap(),
            subject: "alice".parse().unwrap(),
        });
        let m = flat_object(&r, "gw-1");
        assert_eq!(m["event"], "access.grant.revoke");
        assert_eq!(m["code"], "A1031I");
        assert_eq!(m["time"], "2026-01-01T00:00:00.123Z");
        assert_eq!(m["seq"], 1);
        assert_eq!(m["id"], r.id.as_str());
        assert_eq!(m["user"], "alice");
        assert_eq!(m["source"], "192.0.2.7");
        assert_eq!(m["session"], "s-1");
        assert_eq!(m["instance"], "gw-1");
        assert_eq!(m["hash"], r.hash.as_str());
        assert_eq!(m["prev_hash"], r.prev_hash.as_str());
        assert_eq!(m["grant"], "6f1c1c4e-3b8e-4a43-9d49-3a3f0b1b7d7c");
        assert_eq!(m["subject"], "alice");
        assert!(!m.contains_key("target"), "absent fields are left out");
        let text = flat_message(&r, "gw-1");
        assert!(!text.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            Value::Object(m)
        );
    }

    #[test]
    fn data_never_overrides_the_envelope() {
        let r = record(EventKind::UserDisabled {
            user: "bob".parse().unwrap(),
        });
        let m = flat_object(&r, "gw-1");
        assert_eq!(m["user"], "bob");
        assert!(!m.contains_key("data_user"), "same value: not repeated");
        let r = record(EventKind::GatewayStarted {
            version: "0.1.0".into(),
            instance: "gw-2".into(),
        });
        let m = flat_object(&r, "gw-1");
        assert_eq!(m["version"], 1, "the event's version stays the envelope's");
        assert_eq!(m["data_version"], "0.1.0");
        assert_eq!(m["instance"], "gw-1");
        assert_eq!(m["data_instance"], "gw-2");
    }
}
