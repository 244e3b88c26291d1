//! The export file: a run of journal records as JSON lines between two anchors, checkable
//! offline (`sallyport audit export` writes it, `sallyport audit verify --file` checks it).
//!
//! ```text
//!  {"sallyport_export":1,"anchor":{"seq":41,"hash":"…"},"since":…,"until":…,"head":{…}}
//!  {"seq":42,"id":"…","prev_hash":"<anchor hash>","hash":"…",…}      one Record per line
//!  …
//!  {"sallyport_export_end":{"count":N,"last":{"seq":41+N,"hash":"…"}}}
//! ```
//!
//! The start anchor is the record just before the run (seq and hash), the end anchor the run's
//! last record. Between them the records must form an unbroken chain, so removing, editing,
//! reordering or appending a line is detected; comparing the anchors with another copy (a
//! previous export, CloudWatch's `seq`/`hash` fields, `audit verify` on the gateway) ties the run
//! to the journal.

use serde::{Deserialize, Serialize};

use super::chain::{ChainError, ChainHead, Record, Verifier};
use crate::time::Timestamp;

/// The format version written in the header.
pub const EXPORT_VERSION: u32 = 1;

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// [`EXPORT_VERSION`].
    pub sallyport_export: u32,
    /// The record before the first one exported (seq 0 and the genesis hash at the start).
    pub anchor: ChainHead,
    /// The window asked for.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// The window asked for (exclusive).
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// The journal's head when the export was made.
    #[serde(default)]
    pub head: Option<ChainHead>,
    /// When the export was made.
    #[serde(default)]
    pub exported_at: Option<Timestamp>,
}

/// The last line's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEnd {
    /// Records in the file.
    pub count: u64,
    /// The last record (the anchor again when the file holds none).
    pub last: ChainHead,
}

/// The last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTrailer {
    /// What the file holds.
    pub sallyport_export_end: ExportEnd,
}

/// What a verified export covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    /// Records checked.
    pub count: u64,
    /// The record before the first.
    pub anchor: ChainHead,
    /// The last record.
    pub last: ChainHead,
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
    /// The records do not form an unbroken chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The first record does not follow the start anchor.
    #[error("record {seq} does not follow the export's anchor (record {anchor})")]
    Anchor {
        /// The first record.
        seq: u64,
        /// The anchor's sequence number.
        anchor: u64,
    },
    /// The file ends without its last line: records were cut off the end.
    #[error("the export has no end line: records were removed from the end")]
    MissingEnd,
    /// The end line does not match the records.
    #[error("the end line says {expected_count} records ending at {expected_seq}, the file has {count} ending at {seq}")]
    End {
        /// Records announced.
        expected_count: u64,
        /// Last seq announced.
        expected_seq: u64,
        /// Records found.
        count: u64,
        /// Last seq found.
        seq: u64,
    },
}

impl ExportError {
    /// The first sequence number at which the export is broken, if one can be named.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            ExportError::Chain(e) => Some(e.first_bad_seq()),
            ExportError::Anchor { seq, .. } => Some(*seq),
            ExportError::End { seq, .. } => Some(seq.saturating_add(1)),
            ExportError::Malformed { .. } | ExportError::MissingEnd => None,
        }
    }
}

/// Checks an export, line by line (so a file of any size streams through).
#[derive(Debug)]
pub struct ExportVerifier {
    line: usize,
    header: Option<ExportHeader>,
    chain: Option<Verifier>,
    last: Option<ChainHead>,
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
            header: None,
            chain: Some(Verifier::from_anchor()),
            last: None,
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
        let Some(header) = &self.header else {
            let h: ExportHeader = serde_json::from_str(text)
                .map_err(|e| malformed(format!("not an export header: {e}")))?;
            if h.sallyport_export != EXPORT_VERSION {
                return Err(malformed(format!(
                    "export format {} is not supported (expected {EXPORT_VERSION})",
                    h.sallyport_export
                )));
            }
            self.header = Some(h);
            return Ok(());
        };
        if text.contains("\"sallyport_export_end\"") {
            let t: ExportTrailer = serde_json::from_str(text)
                .map_err(|e| malformed(format!("not an end line: {e}")))?;
            self.end = Some(t.sallyport_export_end);
            return Ok(());
        }
        let record: Record =
            serde_json::from_str(text).map_err(|e| malformed(format!("not a record: {e}")))?;
        let expected = self.last.as_ref().unwrap_or(&header.anchor);
        if self.last.is_none()
            && (record.seq != expected.seq.saturating_add(1) || record.prev_hash != expected.hash)
        {
            return Err(ExportError::Anchor {
                seq: record.seq,
                anchor: header.anchor.seq,
            });
        }
        if let Some(v) = self.chain.as_mut() {
            v.push(&record)?;
        }
        self.last = Some(ChainHead::from(&record));
        self.count += 1;
        Ok(())
    }

    /// After the last line: the end line must be there and match.
    pub fn finish(self) -> Result<ExportSummary, ExportError> {
        let header = self.header.ok_or(ExportError::Malformed {
            line: 1,
            why: "empty file: no export header".into(),
        })?;
        let end = self.end.ok_or(ExportError::MissingEnd)?;
        let last = self.last.unwrap_or_else(|| header.anchor.clone());
        if end.count != self.count || end.last != last {
            return Err(ExportError::End {
                expected_count: end.count,
                expected_seq: end.last.seq,
                count: self.count,
                seq: last.seq,
            });
        }
        Ok(ExportSummary {
            count: self.count,
            anchor: header.anchor,
            last,
        })
    }
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
mod tests {
    use super::*;
    use crate::audit::{Event, EventKind};

    /// Records 1..=n, and an export of `from..=to` as text.
    fn export(n: u64, from: u64, to: u64) -> String {
        let mut head = ChainHead::default();
        let mut records = Vec::new();
        for i in 1..=n {
            let e = Event::new(
                Timestamp::from_millis(1_700_000_000_000 + i as i64),
                "admin",
                EventKind::UserEnabled {
                    user: format!("u{i}").parse().unwrap(),
                },
            );
            let r = head.append(&e);
            head = ChainHead::from(&r);
            records.push(r);
        }
        let anchor = match from {
            1 => ChainHead::default(),
            f => ChainHead::from(&records[(f - 2) as usize]),
        };
        let run: Vec<&Record> = records
            .iter()
            .filter(|r| r.seq >= from && r.seq <= to)
            .collect();
        let header = ExportHeader {
            sallyport_export: EXPORT_VERSION,
            anchor: anchor.clone(),
            since: None,
            until: None,
            head: Some(head),
            exported_at: None,
        };
        let mut out = serde_json::to_string(&header).unwrap() + "\n";
        for r in &run {
            out += &(serde_json::to_string(r).unwrap() + "\n");
        }
        let last = run.last().map_or(anchor, |r| ChainHead::from(*r));
        let end = ExportTrailer {
            sallyport_export_end: ExportEnd {
                count: run.len() as u64,
                last,
            },
        };
        out + &serde_json::to_string(&end).unwrap() + "\n"
    }

    #[test]
    fn an_intact_export_verifies() {
        let s = verify_export(&export(10, 4, 8)).unwrap();
        assert_eq!((s.anchor.seq, s.count, s.last.seq), (3, 5, 8));
        let s = verify_export(&export(3, 1, 3)).unwrap();
        assert_eq!((s.anchor.seq, s.count), (0, 3));
        let empty = verify_export(&export(3, 3, 2)).unwrap();
        assert_eq!(empty.count, 0);
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let text = export(10, 4, 8);
        let lines: Vec<&str> = text.lines().collect();
        // A record removed from the middle.
        let mut cut = lines.clone();
        cut.remove(3);
        let e = verify_export(&cut.join("\n")).unwrap_err();
        assert_eq!(e.first_bad_seq(), Some(6), "{e}");
        // The first record removed: it no longer follows the anchor.
        let mut first = lines.clone();
        first.remove(1);
        let e = verify_export(&first.join("\n")).unwrap_err();
        assert!(
            matches!(e, ExportError::Anchor { seq: 5, anchor: 3 }),
            "{e}"
        );
        // The end cut off.
        let e = verify_export(&lines[..lines.len() - 2].join("\n")).unwrap_err();
        assert_eq!(e, ExportError::MissingEnd);
        // The last record removed, the end line kept: the end line no longer matches.
        let mut tail = lines.clone();
        tail.remove(lines.len() - 2);
        let e = verify_export(&tail.join("\n")).unwrap_err();
        assert!(matches!(e, ExportError::End { .. }), "{e}");
        // An edit.
        let edited = text.replace("\"u6\"", "\"u9\"");
        let e = verify_export(&edited).unwrap_err();
        assert_eq!(e.first_bad_seq(), Some(6), "{e}");
        // Not an export at all.
        assert!(matches!(
            verify_export("hello\n").unwrap_err(),
            ExportError::Malformed { line: 1, .. }
        ));
        assert!(verify_export("").is_err());
    }
}
