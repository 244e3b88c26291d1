//! Verifying a journal of several chains: one per gateway instance, plus the shared chain from
//! before per-instance chains (`Record::chain` is `None`).
//!
//! ```text
//!  records, any interleaving ──▶ ChainSet::push ──▶ Verifier per chain (stops at its first error)
//!  recorded heads, per chain ──▶ ChainSet::finish ──▶ ChainReport per chain (ok / broken at seq)
//! ```
//!
//! Each chain is checked on its own, in its own sequence order; a broken chain does not stop
//! the others from being checked, and the report names the chain.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chain::{ChainError, ChainHead, ChainSummary, Record, Verifier};

/// What verifying one chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// The chain: a gateway instance, or `None` for the shared chain.
    pub chain: Option<String>,
    /// What verified, up to the first problem.
    pub summary: ChainSummary,
    /// The head the journal records for the chain, if any.
    pub recorded_head: Option<ChainHead>,
    /// The first problem, if any.
    pub error: Option<ChainError>,
}

/// Streams records of several chains through one [`Verifier`] per chain.
#[derive(Debug, Default)]
pub struct ChainSet {
    chains: BTreeMap<Option<String>, (Verifier, Option<ChainError>)>,
}

impl ChainSet {
    /// Verifies every chain from its first record.
    pub fn from_genesis() -> Self {
        Self::default()
    }

    /// Checks the next record of its chain (records of one chain must come in that chain's
    /// sequence order; chains may interleave). After a chain's first error its further records
    /// are not checked.
    pub fn push(&mut self, r: &Record) {
        let (verifier, error) = self
            .chains
            .entry(r.chain.clone())
            .or_insert_with(|| (Verifier::from_genesis(), None));
        if error.is_none() {
            if let Err(e) = verifier.push(r) {
                *error = Some(e);
            }
        }
    }

    /// Marks `chain` broken at a record that cannot even be read back (its stored fields no
    /// longer decode: edited by hand), unless it is broken already.
    pub fn fail(&mut self, chain: Option<String>, error: ChainError) {
        let (_, e) = self
            .chains
            .entry(chain)
            .or_insert_with(|| (Verifier::from_genesis(), None));
        if e.is_none() {
            *e = Some(error);
        }
    }

    /// Whether the chain has already been found broken (its further records need not be read).
    pub fn is_broken(&self, chain: &Option<String>) -> bool {
        self.chains.get(chain).is_some_and(|(_, e)| e.is_some())
    }

    /// One report per chain that has records or a recorded head, in chain order (the shared
    /// chain first). Each intact chain must end exactly at its recorded head: fewer records mean
    /// the newest were removed, records without a head mean a chain was inserted (or its head
    /// deleted). Records appended after the heads were read must not have been pushed.
    pub fn finish(self, heads: &BTreeMap<Option<String>, ChainHead>) -> Vec<ChainReport> {
        let mut reports: BTreeMap<Option<String>, ChainReport> = BTreeMap::new();
        for (chain, (verifier, error)) in self.chains {
            let summary = verifier.finish();
            let recorded_head = heads.get(&chain).cloned();
            let error = error.or_else(|| end_error(&summary, recorded_head.as_ref()));
            reports.insert(
                chain.clone(),
                ChainReport {
                    chain,
                    summary,
                    recorded_head,
                    error,
                },
            );
        }
        for (chain, head) in heads {
            if reports.contains_key(chain) {
                continue;
            }
            let summary = Verifier::from_genesis().finish();
            let error = end_error(&summary, Some(head));
            reports.insert(
                chain.clone(),
                ChainReport {
                    chain: chain.clone(),
                    summary,
                    recorded_head: Some(head.clone()),
                    error,
                },
            );
        }
        reports.into_values().collect()
    }
}

/// How an otherwise intact chain fails to end at its recorded head.
fn end_error(summary: &ChainSummary, head: Option<&ChainHead>) -> Option<ChainError> {
    let Some(head) = head else {
        return (summary.count > 0).then_some(ChainError::Headless {
            last_seq: summary.head.seq,
        });
    };
    if summary.head.seq < head.seq {
        Some(ChainError::Truncated {
            head_seq: head.seq,
            last_seq: summary.head.seq,
        })
    } else if summary.head != *head {
        Some(ChainError::BrokenLink {
            seq: head.seq,
            prev: summary.head.seq,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Event, EventKind};
    use crate::time::Timestamp;

    fn chain(name: Option<&str>, n: usize) -> Vec<Record> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| {
                let e = Event::new(
                    Timestamp::from_millis(1_700_000_000_000 + i as i64),
                    "admin",
                    EventKind::UserDisabled {
                        user: format!("user{i}").parse().unwrap(),
                    },
                );
                let r = head.append_to(name, &e);
                head = ChainHead::from(&r);
                r
            })
            .collect()
    }

    fn heads(chains: &[&[Record]]) -> BTreeMap<Option<String>, ChainHead> {
        chains
            .iter()
            .filter_map(|c| c.last())
            .map(|r| (r.chain.clone(), ChainHead::from(r)))
            .collect()
    }

    fn verify(records: &[Record], heads: &BTreeMap<Option<String>, ChainHead>) -> Vec<ChainReport> {
        let mut set = ChainSet::from_genesis();
        for r in records {
            set.push(r);
        }
        set.finish(heads)
    }

    fn interleave(a: &[Record], b: &[Record]) -> Vec<Record> {
        let mut out = Vec::new();
        for i in 0..a.len().max(b.len()) {
            out.extend(a.get(i).cloned());
            out.extend(b.get(i).cloned());
        }
        out
    }

    #[test]
    fn interleaved_chains_verify_each() {
        let (legacy, a, b) = (
            chain(None, 3),
            chain(Some("gw-a"), 4),
            chain(Some("gw-b"), 2),
        );
        let mut all = legacy.clone();
        all.extend(interleave(&a, &b));
        let reports = verify(&all, &heads(&[&legacy, &a, &b]));
        let names: Vec<_> = reports.iter().map(|r| r.chain.as_deref()).collect();
        assert_eq!(names, [None, Some("gw-a"), Some("gw-b")]);
        assert!(reports.iter().all(|r| r.error.is_none()));
        let counts: Vec<_> = reports.iter().map(|r| r.summary.count).collect();
        assert_eq!(counts, [3, 4, 2]);
    }

    #[test]
    fn a_broken_chain_is_named_and_the_others_still_verify() {
        let (a, mut b) = (chain(Some("gw-a"), 4), chain(Some("gw-b"), 4));
        b[1].actor = "mallory".into();
        let h = heads(&[&a, &b]);
        let reports = verify(&interleave(&a, &b), &h);
        assert_eq!(reports[0].error, None);
        assert_eq!(reports[0].summary.count, 4);
        assert_eq!(reports[1].chain.as_deref(), Some("gw-b"));
        assert_eq!(reports[1].error, Some(ChainError::Altered { seq: 2 }));
    }

    #[test]
    fn moving_a_record_to_another_chain_is_detected() {
        let (a, mut b) = (chain(Some("gw-a"), 3), chain(Some("gw-b"), 3));
        let h = heads(&[&a, &b]);
        b[2].chain = Some("gw-a".into());
        let reports = verify(&interleave(&a, &b), &h);
        assert_eq!(
            reports[0].error,
            Some(ChainError::Gap {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            reports[1].error,
            Some(ChainError::Truncated {
                head_seq: 3,
                last_seq: 2
            })
        );
    }

    #[test]
    fn truncation_insertion_and_a_missing_chain_are_detected() {
        let (a, b) = (chain(Some("gw-a"), 3), chain(Some("gw-b"), 2));
        let h = heads(&[&a, &b]);
        let reports = verify(&a[..2], &h);
        assert_eq!(
            reports[0].error,
            Some(ChainError::Truncated {
                head_seq: 3,
                last_seq: 2
            })
        );
        assert_eq!(
            reports[1].error,
            Some(ChainError::Truncated {
                head_seq: 2,
                last_seq: 0
            }),
            "a chain whose records are all gone"
        );
        let forged = chain(Some("gw-x"), 2);
        let mut all = interleave(&a, &b);
        all.extend(forged);
        let reports = verify(&all, &h);
        assert_eq!(reports[2].chain.as_deref(), Some("gw-x"));
        assert_eq!(reports[2].error, Some(ChainError::Headless { last_seq: 2 }));
    }
}
