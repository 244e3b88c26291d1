//! The export file: runs of journal records as JSON lines between anchors, one run per chain,
//! checkable offline (`sallyport audit export` writes it, `sallyport audit verify --file`
//! checks it).
//!
//! ```text
//!  {"sallyport_export":2,"anchors":[{"chain":null,"seq":41,"hash":"…"},
//!                                   {"chain":"gw-a","seq":0,"hash":"000…"}],
//!   "since":…,"until":…,"heads":[{"chain":…,"seq":…,"hash":…},…],"exported_at":…}
//!  {"seq":42,"pos":42,"id":"…","prev_hash":"<shared anchor hash>",…}   one Record per line,
//!  {"chain":"gw-a","seq":1,"pos":57,"id":"…","prev_hash":"000…",…}     chains interleaved
//!  …
//!  {"sallyport_export_end":{"count":N,"chains":[{"chain":null,"count":n1,"last":{…}},…]}}
//! ```
//!
//! The journal holds one hash chain per gateway instance, plus the closed *shared* chain of
//! records from before per-instance chains (`Record::chain` is `None`, written `null` in the
//! header and trailer and left out of records). Each chain in the file has an anchor in the
//! header (the record just before its run: seq and hash; seq 0 and the genesis hash when the
//! run starts at the chain's first record) and an entry in the end line (its record count and
//! last record). Records are written in journal position order, so chains interleave; the
//! verifier follows each chain on its own, so it accepts any interleaving (positions are not
//! hashed and prove nothing) but within a chain the records must form an unbroken run from its
//! anchor to its end entry. Removing, editing, reordering or appending a record, moving it to
//! another chain or cutting a chain short is detected and named with the chain. Comparing the
//! anchors and ends with another copy (a previous export, CloudWatch's `chain`/`seq`/`hash`
//! fields, the gateway's `audit verify`) ties the runs to the journal.
//!
//! # Which records a window holds
//!
//! For `[since, until)`, per chain (each chain on its own, in its own order): the run starts at
//! the chain's first record whose time is at or after `since` (its first record without
//! `since`) and ends before the first record after that whose time is at or after `until`, or
//! at the chain's head when the export started. Every record between is included even when its
//! time lies outside the window: an event journaled late from a gateway's local spool (after a
//! database outage) can carry an older time than its neighbours, and a run that skipped it
//! would no longer link. A chain with no record in the window is left out of the file.
//!
//! Version 1 files (one shared chain: a single `anchor` and `head` in the header, `count` and
//! `last` in the end line) still verify.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chain::{ChainError, ChainHead, Record, Verifier};
use crate::time::Timestamp;

/// The format version written in the header.
pub const EXPORT_VERSION: u32 = 2;

/// The earlier format (a single shared chain), still verified.
pub const EXPORT_VERSION_SINGLE_CHAIN: u32 = 1;

/// How a chain is named to people: its instance, or `(shared)` for the shared chain (no
/// instance name has parentheses, so the label cannot be mistaken for one).
pub fn chain_label(chain: Option<&str>) -> &str {
    chain.unwrap_or(SHARED_CHAIN_LABEL)
}

/// [`chain_label`] of the shared chain.
pub const SHARED_CHAIN_LABEL: &str = "(shared)";

/// A chain and a place in it (an anchor, or a head).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainMark {
    /// The gateway instance; `null` for the shared chain.
    #[serde(default)]
    pub chain: Option<String>,
    /// Sequence number in the chain (0: before its first record).
    pub seq: u64,
    /// That record's hash (the genesis hash for seq 0).
    pub hash: String,
}

impl ChainMark {
    /// `head` of `chain`.
    pub fn new(chain: Option<String>, head: ChainHead) -> Self {
        Self {
            chain,
            seq: head.seq,
            hash: head.hash,
        }
    }

    /// The place without the chain's name.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// [`EXPORT_VERSION`] (or [`EXPORT_VERSION_SINGLE_CHAIN`] in older files).
    pub sallyport_export: u32,
    /// Version 1 only: the record before the first one exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<ChainHead>,
    /// Version 2: per chain in the file, the record before its first exported record.
    #[serde(default)]
    pub anchors: Vec<ChainMark>,
    /// The window asked for.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// The window asked for (exclusive).
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Version 1 only: the journal's head when the export was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<ChainHead>,
    /// Version 2: every chain's recorded head when the export was made (also chains with
    /// nothing in the window).
    #[serde(default)]
    pub heads: Vec<ChainMark>,
    /// When the export was made.
    #[serde(default)]
    pub exported_at: Option<Timestamp>,
}

/// One chain's entry in the last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEnd {
    /// The gateway instance; `null` for the shared chain.
    #[serde(default)]
    pub chain: Option<String>,
    /// Records of the chain in the file.
    pub count: u64,
    /// Its last record (the anchor again when the file holds none).
    pub last: ChainHead,
}

/// The last line's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEnd {
    /// Records in the file, all chains.
    pub count: u64,
    /// Version 1 only: the last record (the anchor again when the file holds none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ChainHead>,
    /// Version 2: one entry per anchored chain.
    #[serde(default)]
    pub chains: Vec<ChainEnd>,
}

/// The last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTrailer {
    /// What the file holds.
    pub sallyport_export_end: ExportEnd,
}

/// What a verified export covers in one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainExportSummary {
    /// The gateway instance; `None` for the shared chain.
    pub chain: Option<String>,
    /// Records checked.
    pub count: u64,
    /// The record before the first.
    pub anchor: ChainHead,
    /// The last record.
    pub last: ChainHead,
}

/// What a verified export covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    /// The file's format version.
    pub version: u32,
    /// Records checked, all chains.
    pub count: u64,
    /// Per chain, in chain order (the shared chain first).
    pub chains: Vec<ChainExportSummary>,
}

/// Why an export does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A line is not what the format says.
    #[error("line {line}: {why}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A chain's records do not form an unbroken run.
    #[error("in chain {} at seq {}: {error}", chain_label(.chain.as_deref()), .error.first_bad_seq())]
    Chain {
        /// The chain.
        chain: Option<String>,
        /// How it is broken.
        error: ChainError,
    },
    /// A chain's first record does not follow its anchor.
    #[error("in chain {} at seq {seq}: the chain's first record does not follow its anchor (record {anchor})", chain_label(.chain.as_deref()))]
    Anchor {
        /// The chain.
        chain: Option<String>,
        /// The first record.
        seq: u64,
        /// The anchor's sequence number.
        anchor: u64,
    },
    /// A record of a chain the header has no anchor for.
    #[error("in chain {} at seq {seq}: the header has no anchor for this chain", chain_label(.chain.as_deref()))]
    Unanchored {
        /// The record's chain.
        chain: Option<String>,
        /// The record.
        seq: u64,
    },
    /// The file ends without its last line: records were cut off the end.
    #[error("the export has no end line: records were removed from the end")]
    MissingEnd,
    /// A chain's entry in the end line does not match its records.
    #[error("in chain {}: the end line says {expected_count} records ending at seq {expected_seq}, the file has {count} ending at seq {seq}", chain_label(.chain.as_deref()))]
    End {
        /// The chain.
        chain: Option<String>,
        /// Records announced.
        expected_count: u64,
        /// Last seq announced.
        expected_seq: u64,
        /// Records found.
        count: u64,
        /// Last seq found.
        seq: u64,
    },
    /// The header and the end line do not name the same chains.
    #[error("in chain {}: {why}", chain_label(.chain.as_deref()))]
    Chains {
        /// The chain.
        chain: Option<String>,
        /// What is missing where.
        why: &'static str,
    },
    /// The end line's total does not match the records.
    #[error("the end line says {expected} records in all, the file has {count}")]
    Count {
        /// Records announced.
        expected: u64,
        /// Records found.
        count: u64,
    },
}

impl ExportError {
    /// The first sequence number (in [`ExportError::chain`]) at which the export is broken, if
    /// one can be named.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            ExportError::Chain { error, .. } => Some(error.first_bad_seq()),
            ExportError::Anchor { seq, .. } | ExportError::Unanchored { seq, .. } => Some(*seq),
            ExportError::End { seq, .. } => Some(seq.saturating_add(1)),
            ExportError::Malformed { .. }
            | ExportError::MissingEnd
            | ExportError::Chains { .. }
            | ExportError::Count { .. } => None,
        }
    }

    /// The chain the problem is in, if it is in one (`Some(None)`: the shared chain).
    pub fn chain(&self) -> Option<Option<&str>> {
        match self {
            ExportError::Chain { chain, .. }
            | ExportError::Anchor { chain, .. }
            | ExportError::Unanchored { chain, .. }
            | ExportError::End { chain, .. }
            | ExportError::Chains { chain, .. } => Some(chain.as_deref()),
            ExportError::Malformed { .. } | ExportError::MissingEnd | ExportError::Count { .. } => {
                None
            }
        }
    }
}

/// One chain's run while it is being checked.
#[derive(Debug)]
struct Run {
    anchor: ChainHead,
    verifier: Verifier,
    last: Option<ChainHead>,
    count: u64,
}

impl Run {
    fn new(anchor: ChainHead) -> Self {
        Self {
            anchor,
            verifier: Verifier::from_anchor(),
            last: None,
            count: 0,
        }
    }

    fn last(&self) -> ChainHead {
        self.last.clone().unwrap_or_else(|| self.anchor.clone())
    }
}

/// Checks an export, line by line (so a file of any size streams through).
#[derive(Debug)]
pub struct ExportVerifier {
    line: usize,
    version: Option<u32>,
    runs: BTreeMap<Option<String>, Run>,
    count: u64,
    end: Option<ExportEnd>,
}

impl Default for ExportVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ExportVerifier {
    /// Ready for the header.
    pub fn new() -> Self {
        Self {
            line: 0,
            version: None,
            runs: BTreeMap::new(),
            count: 0,
            end: None,
        }
    }

    /// Checks the next line (without its newline). Blank lines are ignored.
    pub fn push_line(&mut self, text: &str) -> Result<(), ExportError> {
        self.line += 1;
        let line = self.line;
        let malformed = |why: String| ExportError::Malformed { line, why };
        if text.trim().is_empty() {
            return Ok(());
        }
        if self.end.is_some() {
            return Err(malformed("text after the end line".into()));
        }
        if self.version.is_none() {
            let h: ExportHeader = serde_json::from_str(text)
                .map_err(|e| malformed(format!("not an export header: {e}")))?;
            self.runs = header_runs(h.sallyport_export, h.anchor, h.anchors).map_err(malformed)?;
            self.version = Some(h.sallyport_export);
            return Ok(());
        }
        if text.contains("\"sallyport_export_end\"") {
            let t: ExportTrailer = serde_json::from_str(text)
                .map_err(|e| malformed(format!("not an end line: {e}")))?;
            let end = t.sallyport_export_end;
            let v1 = self.version == Some(EXPORT_VERSION_SINGLE_CHAIN);
            if v1 && (end.last.is_none() || !end.chains.is_empty()) {
                return Err(malformed(
                    "a version 1 end line has `last` and no `chains`".into(),
                ));
            }
            if !v1 && end.last.is_some() {
                return Err(malformed(
                    "a version 2 end line has `chains`, not `last`".into(),
                ));
            }
            self.end = Some(end);
            return Ok(());
        }
        let record: Record =
            serde_json::from_str(text).map_err(|e| malformed(format!("not a record: {e}")))?;
        let Some(run) = self.runs.get_mut(&record.chain) else {
            return Err(ExportError::Unanchored {
                chain: record.chain,
                seq: record.seq,
            });
        };
        if run.last.is_none()
            && (record.seq != run.anchor.seq.saturating_add(1)
                || record.prev_hash != run.anchor.hash)
        {
            return Err(ExportError::Anchor {
                seq: record.seq,
                anchor: run.anchor.seq,
                chain: record.chain,
            });
        }
        if let Err(error) = run.verifier.push(&record) {
            return Err(ExportError::Chain {
                chain: record.chain,
                error,
            });
        }
        run.last = Some(ChainHead::from(&record));
        run.count += 1;
        self.count += 1;
        Ok(())
    }

    /// After the last line: the end line must be there and match every chain.
    pub fn finish(self) -> Result<ExportSummary, ExportError> {
        let version = self.version.ok_or(ExportError::Malformed {
            line: 1,
            why: "empty file: no export header".into(),
        })?;
        let end = self.end.ok_or(ExportError::MissingEnd)?;
        let mut announced: BTreeMap<Option<String>, ChainEnd> = BTreeMap::new();
        match end.last {
            Some(last) => {
                announced.insert(
                    None,
                    ChainEnd {
                        chain: None,
                        count: end.count,
                        last,
                    },
                );
            }
            None => {
                for c in end.chains {
                    let chain = c.chain.clone();
                    if announced.insert(chain.clone(), c).is_some() {
                        return Err(ExportError::Chains {
                            chain,
                            why: "the end line names the chain twice",
                        });
                    }
                }
            }
        }
        let mut chains = Vec::with_capacity(self.runs.len());
        for (chain, run) in self.runs {
            let last = run.last();
            let Some(said) = announced.remove(&chain) else {
                return Err(ExportError::Chains {
                    chain,
                    why: "the chain has an anchor but no entry in the end line: the end line was altered",
                });
            };
            if said.count != run.count || said.last != last {
                return Err(ExportError::End {
                    chain,
                    expected_count: said.count,
                    expected_seq: said.last.seq,
                    count: run.count,
                    seq: last.seq,
                });
            }
            chains.push(ChainExportSummary {
                chain,
                count: run.count,
                anchor: run.anchor,
                last,
            });
        }
        if let Some((chain, _)) = announced.into_iter().next() {
            return Err(ExportError::Chains {
                chain,
                why: "the end line names a chain the header has no anchor for",
            });
        }
        if end.count != self.count {
            return Err(ExportError::Count {
                expected: end.count,
                count: self.count,
            });
        }
        Ok(ExportSummary {
            version,
            count: self.count,
            chains,
        })
    }
}

/// The writer's half: tallies the records written, per chain, for the end line.
#[derive(Clone, Debug, Default)]
pub struct ExportTally {
    chains: BTreeMap<Option<String>, ChainEnd>,
    count: u64,
}

impl ExportTally {
    /// For a file with these anchors (each chain starts at its anchor, with no records).
    pub fn new(anchors: &[ChainMark]) -> Self {
        let chains = anchors
            .iter()
            .map(|a| {
                let end = ChainEnd {
                    chain: a.chain.clone(),
                    count: 0,
                    last: a.head(),
                };
                (a.chain.clone(), end)
            })
            .collect();
        Self { chains, count: 0 }
    }

    /// Counts `r`, written after the records counted so far.
    pub fn record(&mut self, r: &Record) {
        let end = self
            .chains
            .entry(r.chain.clone())
            .or_insert_with(|| ChainEnd {
                chain: r.chain.clone(),
                count: 0,
                last: ChainHead::default(),
            });
        end.count += 1;
        end.last = ChainHead::from(r);
        self.count += 1;
    }

    /// Records counted, all chains.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Per chain: records counted and the last one.
    pub fn chains(&self) -> impl Iterator<Item = &ChainEnd> {
        self.chains.values()
    }

    /// The end line.
    pub fn trailer(&self) -> ExportTrailer {
        ExportTrailer {
            sallyport_export_end: ExportEnd {
                count: self.count,
                last: None,
                chains: self.chains.values().cloned().collect(),
            },
        }
    }
}

/// The runs a header announces.
fn header_runs(
    version: u32,
    anchor: Option<ChainHead>,
    anchors: Vec<ChainMark>,
) -> Result<BTreeMap<Option<String>, Run>, String> {
    let mut runs = BTreeMap::new();
    match version {
        EXPORT_VERSION_SINGLE_CHAIN => {
            let (Some(anchor), true) = (anchor, anchors.is_empty()) else {
                return Err("a version 1 header has one `anchor` and no `anchors`".into());
            };
            runs.insert(None, Run::new(anchor));
        }
        EXPORT_VERSION => {
            if anchor.is_some() {
                return Err("a version 2 header has `anchors`, not `anchor`".into());
            }
            for mark in anchors {
                if mark.chain.as_deref() == Some("") {
                    return Err("the shared chain's anchor names it null, not \"\"".into());
                }
                let head = mark.head();
                let label = chain_label(mark.chain.as_deref()).to_owned();
                if runs.insert(mark.chain, Run::new(head)).is_some() {
                    return Err(format!("chain {label} is anchored twice"));
                }
            }
        }
        other => {
            return Err(format!(
                "export format {other} is not supported (expected {EXPORT_VERSION_SINGLE_CHAIN} or {EXPORT_VERSION})"
            ));
        }
    }
    Ok(runs)
}

/// Verifies a whole export held in memory.
pub fn verify_export(text: &str) -> Result<ExportSummary, ExportError> {
    let mut v = ExportVerifier::new();
    for line in text.lines() {
        v.push_line(line)?;
    }
    v.finish()
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
