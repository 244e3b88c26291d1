use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::envelope::Event;
use crate::time::Timestamp;

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Version of the canonical byte layout below; part of the hashed bytes. Version 1: records of
/// the single shared chain (no `chain` field). Version 2: records of a per-instance chain, whose
/// name is hashed too, so a record cannot be moved to another chain unnoticed.
const CANONICAL_VERSION: u8 = 1;
/// Canonical layout of a record that names its chain.
const CANONICAL_VERSION_CHAINED: u8 = 2;

/// One journal record: an event with its place in the chain. This is what the store keeps, what
/// sinks ship and what an export holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The chain the record belongs to: the gateway instance that journaled it. `None` for the
    /// single shared chain (records hashed before per-instance chains; canonical version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// Position in its chain, from 1, without gaps.
    pub seq: u64,
    /// Where the record sits in the journal across all chains (the store's position: search,
    /// tail and export page on it). Set on records read from or appended to a store; not hashed,
    /// so it proves nothing on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<u64>,
    /// The event's unique id.
    pub id: String,
    /// When it happened.
    pub time: Timestamp,
    /// Stable dotted name.
    pub event: String,
    /// Stable code.
    pub code: String,
    /// Version of the event's fields.
    pub version: u16,
    /// Who did it.
    pub actor: String,
    /// The user it concerns.
    pub user: Option<String>,
    /// The target it concerns.
    pub target: Option<String>,
    /// The session it belongs to.
    pub session: Option<String>,
    /// Where the actor came from.
    pub source: Option<String>,
    /// The event's fields.
    pub data: serde_json::Value,
    /// Hash of the previous record (hex SHA-256).
    pub prev_hash: String,
    /// Hash of this record's canonical bytes (hex SHA-256).
    pub hash: String,
}

/// Field order here is the canonical order; serde_json writes object keys of `data` sorted.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<&'a str>,
    seq: u64,
    id: &'a str,
    time_ms: i64,
    event: &'a str,
    code: &'a str,
    version: u16,
    actor: &'a str,
    user: Option<&'a str>,
    target: Option<&'a str>,
    session: Option<&'a str>,
    source: Option<&'a str>,
    data: &'a serde_json::Value,
    prev_hash: &'a str,
}

impl Record {
    /// The bytes the hash covers: every field but `hash`, in a fixed layout (version 1 without a
    /// chain, so the shared chain's existing hashes stay valid; version 2 with it).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let c = Canonical {
            v: match self.chain {
                None => CANONICAL_VERSION,
                Some(_) => CANONICAL_VERSION_CHAINED,
            },
            chain: self.chain.as_deref(),
            seq: self.seq,
            id: &self.id,
            time_ms: self.time.as_millis(),
            event: &self.event,
            code: &self.code,
            version: self.version,
            actor: &self.actor,
            user: self.user.as_deref(),
            target: self.target.as_deref(),
            session: self.session.as_deref(),
            source: self.source.as_deref(),
            data: &self.data,
            prev_hash: &self.prev_hash,
        };
        // Serialising plain strings, integers and a JSON value cannot fail.
        serde_json::to_vec(&c).unwrap_or_default()
    }

    /// SHA-256 of the canonical bytes, hex.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// The end of the chain: what the next record links to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last sequence number (0 for an empty journal).
    pub seq: u64,
    /// The last record's hash ([`GENESIS_HASH`] for an empty journal).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainHead {
    /// Links `event` after this head of the shared chain and returns the new record; the caller
    /// stores it and moves the head to it (`ChainHead::from(&record)`).
    pub fn append(&self, event: &Event) -> Record {
        self.append_to(None, event)
    }

    /// Links `event` after this head of `chain` (`None`: the shared chain).
    pub fn append_to(&self, chain: Option<&str>, event: &Event) -> Record {
        let mut r = Record {
            chain: chain.map(str::to_owned),
            seq: self.seq + 1,
            pos: None,
            id: event.id.to_string(),
            time: event.time,
            event: event.kind.name().to_owned(),
            code: event.kind.code().to_owned(),
            version: event.kind.version(),
            actor: event.actor.clone(),
            user: event.kind.subject_user(),
            target: event.kind.target(),
            session: event.session.clone(),
            source: event.source.clone(),
            data: event.kind.data(),
            prev_hash: self.hash.clone(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }
}

impl From<&Record> for ChainHead {
    fn from(r: &Record) -> Self {
        Self {
            seq: r.seq,
            hash: r.hash.clone(),
        }
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChainError {
    /// A record's contents do not match its hash: it was edited.
    #[error("record {seq} was altered: its contents do not match its hash")]
    Altered {
        /// The first bad sequence number.
        seq: u64,
    },
    /// A record does not link to the one before it.
    #[error(
        "record {seq} does not link to record {prev}: a record was removed, inserted or replaced"
    )]
    BrokenLink {
        /// The first bad sequence number.
        seq: u64,
        /// The record it should link to.
        prev: u64,
    },
    /// A sequence number is missing or out of order.
    #[error("expected record {expected} but found {found}: records are missing or out of order")]
    Gap {
        /// The sequence number that should have come.
        expected: u64,
        /// The one that came instead.
        found: u64,
    },
    /// A record names another chain than the run it appears in.
    #[error("record {seq} belongs to another chain")]
    ForeignChain {
        /// Its sequence number.
        seq: u64,
    },
    /// The chain has records but the journal has no head for it: the chain was inserted, or its
    /// head removed.
    #[error("records up to {last_seq} form a chain the journal has no head for")]
    Headless {
        /// The last record present.
        last_seq: u64,
    },
    /// The records end before the journal's recorded head: the newest records were removed.
    #[error("the journal head is record {head_seq} but the records end at {last_seq}: records were removed from the end")]
    Truncated {
        /// The head's sequence number.
        head_seq: u64,
        /// The last record present.
        last_seq: u64,
    },
}

impl ChainError {
    /// The first sequence number at which the chain is broken.
    pub fn first_bad_seq(&self) -> u64 {
        match self {
            ChainError::Altered { seq }
            | ChainError::BrokenLink { seq, .. }
            | ChainError::ForeignChain { seq } => *seq,
            ChainError::Headless { .. } => 1,
            ChainError::Gap { expected, .. } => *expected,
            ChainError::Truncated { last_seq, .. } => last_seq + 1,
        }
    }
}

/// What a verified run of records covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// How many records were checked.
    pub count: u64,
    /// The first sequence number checked (0 if none).
    pub first_seq: u64,
    /// The head after the last record.
    pub head: ChainHead,
}

/// Checks records one at a time, in sequence order, so a journal of any size streams through.
#[derive(Debug)]
pub struct Verifier {
    chain: Option<Option<String>>,
    expected: Option<ChainHead>,
    count: u64,
    first_seq: u64,
}

impl Verifier {
    /// Verifies a whole journal from its first record.
    pub fn from_genesis() -> Self {
        Self {
            chain: None,
            expected: Some(ChainHead::default()),
            count: 0,
            first_seq: 0,
        }
    }

    /// Verifies a run that starts at an anchor: the first record's own `prev_hash` is trusted
    /// (an export's first record links to a record outside the export).
    pub fn from_anchor() -> Self {
        Self {
            chain: None,
            expected: None,
            count: 0,
            first_seq: 0,
        }
    }

    /// Checks the next record. Every record of a run must name the same chain as the first.
    pub fn push(&mut self, r: &Record) -> Result<(), ChainError> {
        match &self.chain {
            Some(chain) if *chain != r.chain => {
                return Err(ChainError::ForeignChain { seq: r.seq });
            }
            _ => {}
        }
        if let Some(prev) = &self.expected {
            if r.seq != prev.seq + 1 {
                return Err(ChainError::Gap {
                    expected: prev.seq + 1,
                    found: r.seq,
                });
            }
        }
        if r.compute_hash() != r.hash {
            return Err(ChainError::Altered { seq: r.seq });
        }
        if let Some(prev) = &self.expected {
            if r.prev_hash != prev.hash {
                return Err(ChainError::BrokenLink {
                    seq: r.seq,
                    prev: prev.seq,
                });
            }
        }
        if self.count == 0 {
            self.first_seq = r.seq;
            self.chain = Some(r.chain.clone());
        }
        self.count += 1;
        self.expected = Some(ChainHead::from(r));
        Ok(())
    }

    /// What was verified.
    pub fn finish(self) -> ChainSummary {
        ChainSummary {
            count: self.count,
            first_seq: self.first_seq,
            head: self.expected.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;

    fn journal(n: usize) -> Vec<Record> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| {
                let user = format!("user{i}").parse().unwrap();
                let e = Event::new(
                    Timestamp::from_millis(1_700_000_000_000 + i as i64),
                    "admin",
                    EventKind::UserDisabled { user },
                );
                let r = head.append(&e);
                head = ChainHead::from(&r);
                r
            })
            .collect()
    }

    fn verify(records: &[Record]) -> Result<ChainSummary, ChainError> {
        let mut v = Verifier::from_genesis();
        for r in records {
            v.push(r)?;
        }
        Ok(v.finish())
    }

    #[test]
    fn intact_chain_verifies() {
        let j = journal(5);
        let s = verify(&j).unwrap();
        assert_eq!(s.count, 5);
        assert_eq!(s.head.seq, 5);
        assert_eq!(s.head.hash, j[4].hash);
    }

    #[test]
    fn edit_is_named() {
        let mut j = journal(5);
        j[2].actor = "mallory".into();
        assert_eq!(verify(&j).unwrap_err(), ChainError::Altered { seq: 3 });
        let mut j = journal(5);
        j[3].data = serde_json::json!({ "user": "someone-else" });
        assert_eq!(verify(&j).unwrap_err().first_bad_seq(), 4);
    }

    #[test]
    fn edit_with_rehash_breaks_the_next_link() {
        let mut j = journal(5);
        j[1].actor = "mallory".into();
        j[1].hash = j[1].compute_hash();
        assert_eq!(
            verify(&j).unwrap_err(),
            ChainError::BrokenLink { seq: 3, prev: 2 }
        );
    }

    #[test]
    fn deletion_and_reordering_are_named() {
        let mut j = journal(5);
        j.remove(2);
        assert_eq!(
            verify(&j).unwrap_err(),
            ChainError::Gap {
                expected: 3,
                found: 4
            }
        );
        let mut j = journal(5);
        j.swap(1, 2);
        assert_eq!(verify(&j).unwrap_err().first_bad_seq(), 2);
        let mut j = journal(5);
        j.remove(0);
        assert_eq!(verify(&j).unwrap_err().first_bad_seq(), 1);
    }

    #[test]
    fn the_shared_chain_keeps_layout_1_and_instance_chains_hash_their_name() {
        let j = journal(1);
        assert!(String::from_utf8(j[0].canonical_bytes())
            .unwrap()
            .starts_with(r#"{"v":1,"seq":1,"#));
        let e = Event::new(
            Timestamp::from_millis(1_700_000_000_000),
            "admin",
            EventKind::UserDisabled {
                user: "user0".parse().unwrap(),
            },
        );
        let mut r = ChainHead::default().append_to(Some("gw-1"), &e);
        assert!(String::from_utf8(r.canonical_bytes())
            .unwrap()
            .starts_with(r#"{"v":2,"chain":"gw-1","seq":1,"#));
        assert_eq!(r.compute_hash(), r.hash);
        r.chain = Some("gw-2".into());
        assert_ne!(r.compute_hash(), r.hash, "the chain name is hashed");
        r.chain = None;
        assert_ne!(r.compute_hash(), r.hash, "and cannot be dropped");
        let json = serde_json::to_value(&j[0]).unwrap();
        assert!(
            json.get("chain").is_none(),
            "shared-chain records serialise as before"
        );
    }

    #[test]
    fn a_record_of_another_chain_breaks_the_run() {
        let j = journal(3);
        let e = Event::new(
            Timestamp::from_millis(1_700_000_000_000),
            "admin",
            EventKind::UserDisabled {
                user: "user0".parse().unwrap(),
            },
        );
        let foreign = ChainHead::from(&j[1]).append_to(Some("gw-1"), &e);
        assert_eq!(
            verify(&[j[0].clone(), j[1].clone(), foreign]).unwrap_err(),
            ChainError::ForeignChain { seq: 3 }
        );
    }

    #[test]
    fn export_verifies_from_its_anchor() {
        let j = journal(6);
        let mut v = Verifier::from_anchor();
        for r in &j[3..] {
            v.push(r).unwrap();
        }
        let s = v.finish();
        assert_eq!((s.first_seq, s.count), (4, 3));
    }
}
