//! `audit tail [-f]`, `audit export`, `audit verify --file` (offline) and `audit backlog`.
//!
//! The journal holds one hash chain per gateway instance (plus the closed shared chain), and on
//! PostgreSQL journal positions can commit out of order across chains; a chain's own records
//! commit in its order. So `tail -f` and `export` follow each chain on its own
//! (`GET /v1/audit/chains`, then `chain=X&after_chain_seq=N` pages) and never page on the
//! journal position.
//!
//! An export holds, per chain, the contiguous run of that chain's records from its first one at
//! or after `--since` up to the last one before its first at or after `--until` (or its head
//! when the export started), each run framed by its anchor and its end (`core::audit::export`,
//! which explains the choice), records in journal position order, so it verifies without the
//! gateway.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use sallyport_core::api::{AuditPage, BacklogView, ChainsView, SinkBacklog};
use sallyport_core::audit::export::{
    ChainMark, ExportHeader, ExportSummary, ExportTally, ExportVerifier, EXPORT_VERSION,
};
use sallyport_core::audit::{ChainHead, Record};
use sallyport_core::time::Timestamp;
use serde_json::Value;

use super::audit::{chain_name, events_table};
use super::Ctx;
use crate::args::{AuditExport, AuditTail};
use crate::error::CliError;
use crate::output::{clean, decode, or_dash, Format, Out, Table};

/// Records asked for per request.
const PAGE: u64 = 1000;
/// How often `tail -f` asks for new records.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// At most this many records of one chain per `tail -f` round (the rest come next round, at
/// once), so a burst does not pile up in memory before it is printed.
const FOLLOW_BATCH: u64 = 10 * PAGE;

/// Every chain and its recorded head.
async fn chains(ctx: &Ctx) -> Result<ChainsView, CliError> {
    let reply = ctx.api.get(&["audit", "chains"], &[]).await?;
    decode(&reply.url, reply.body)
}

/// The API's name for a chain (`""`: the shared chain).
fn wire(chain: Option<&str>) -> String {
    chain.unwrap_or_default().to_owned()
}

/// Records of `chain` after its seq `after`, at most `limit`, in the chain's order, checked to
/// follow on from `after` without a gap (a chain's records commit in order, so a gap is a
/// missing record, not a late one).
async fn chain_page(
    ctx: &Ctx,
    mut query: Vec<(&'static str, String)>,
    chain: Option<&str>,
    after: u64,
    limit: u64,
) -> Result<Vec<Record>, CliError> {
    // Without a filter the page must follow on from `after` record by record; with one
    // (`since`) records may be skipped, but never come out of order.
    let contiguous = query.is_empty();
    query.push(("chain", wire(chain)));
    query.push(("after_chain_seq", after.to_string()));
    query.push(("limit", limit.clamp(1, PAGE).to_string()));
    let reply = ctx.api.get(&["audit", "events"], &query).await?;
    let page: AuditPage = decode(&reply.url, reply.body)?;
    let mut expected = after.saturating_add(1);
    for r in &page.events {
        let why = if r.chain.as_deref() != chain {
            format!(
                "asked for chain {}, got a record of chain {}",
                chain_name(chain),
                chain_name(r.chain.as_deref())
            )
        } else if r.seq < expected || (contiguous && r.seq != expected) {
            format!(
                "chain {}: expected record {expected}, got {}: records missing or out of order",
                chain_name(chain),
                r.seq
            )
        } else {
            expected = r.seq.saturating_add(1);
            continue;
        };
        return Err(CliError::BadResponse {
            url: reply.url,
            why,
        });
    }
    Ok(page.events)
}

/// Records of `chain` from after `after` to at most its seq `upto`, at most `max` of them.
async fn chain_run(
    ctx: &Ctx,
    chain: Option<&str>,
    mut after: u64,
    upto: u64,
    max: u64,
) -> Result<Vec<Record>, CliError> {
    let mut out = Vec::new();
    while after < upto && (out.len() as u64) < max {
        let want = (upto - after).min(max - out.len() as u64);
        let page = chain_page(ctx, Vec::new(), chain, after, want).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page.into_iter().filter(|r| r.seq <= upto));
    }
    Ok(out)
}

fn print_records(out: Out, records: &[Record], header: bool) -> Result<(), CliError> {
    match out.format() {
        Format::Json => {
            let mut text = String::new();
            for r in records {
                text.push_str(&serde_json::to_string(r).map_err(|e| CliError::Output(e.into()))?);
                text.push('\n');
            }
            out.text(&text)
        }
        Format::Table => {
            let rendered = events_table(records).render();
            let body = if header {
                rendered.as_str()
            } else {
                rendered.split_once('\n').map_or("", |(_, rest)| rest)
            };
            out.text(body)
        }
    }
}

/// Oldest first: by time, then journal position.
fn by_time(records: &mut [Record]) {
    records.sort_by_key(|r| (r.time, r.pos));
}

/// `tail`: the newest `-n` records over all chains; with `-f`, each chain is followed on its
/// own from where it was (a chain that appears later, from its start), and each round's new
/// records are printed oldest first.
pub(super) async fn tail(ctx: &Ctx, t: &AuditTail) -> Result<(), CliError> {
    let n = u64::from(t.lines);
    let mut after: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut newest = Vec::new();
    for c in chains(ctx).await?.chains {
        let head = c.head.seq;
        let run = if n == 0 {
            Vec::new()
        } else {
            chain_run(ctx, c.chain.as_deref(), head.saturating_sub(n), head, n).await?
        };
        after.insert(c.chain, head);
        newest.extend(run);
    }
    by_time(&mut newest);
    let skip = newest
        .len()
        .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
    print_records(ctx.out, newest.get(skip..).unwrap_or_default(), true)?;
    if !t.follow {
        return Ok(());
    }
    let mut behind = false;
    loop {
        if !behind {
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
        behind = false;
        let mut batch = Vec::new();
        for c in chains(ctx).await?.chains {
            let seen = after.entry(c.chain.clone()).or_insert(0);
            if c.head.seq <= *seen {
                continue;
            }
            let run = chain_run(ctx, c.chain.as_deref(), *seen, c.head.seq, FOLLOW_BATCH).await?;
            if let Some(last) = run.last() {
                *seen = last.seq;
            }
            if *seen < c.head.seq {
                if (run.len() as u64) < FOLLOW_BATCH {
                    // The head and its records commit together: these are gone, not late.
                    return Err(CliError::BadResponse {
                        url: "/v1/audit/events".into(),
                        why: format!(
                            "chain {} ends at record {} but its head is record {}: records are missing (see `sallyport audit verify`)",
                            chain_name(c.chain.as_deref()),
                            *seen,
                            c.head.seq
                        ),
                    });
                }
                behind = true;
            }
            batch.extend(run);
        }
        by_time(&mut batch);
        print_records(ctx.out, &batch, false)?;
    }
}

/// One chain's run in an export: its records read a page at a time.
struct Feed {
    chain: Option<String>,
    /// The last record read.
    after: u64,
    /// The chain's head when the export started: the run ends there at the latest.
    head: u64,
    buffered: VecDeque<Record>,
    done: bool,
}

impl Feed {
    /// The run's next record, reading the next page when needed.
    async fn next_pos(
        &mut self,
        ctx: &Ctx,
        until: Option<Timestamp>,
    ) -> Result<Option<u64>, CliError> {
        if self.buffered.is_empty() && !self.done {
            let page = if self.after < self.head {
                let want = PAGE.min(self.head - self.after);
                chain_page(ctx, Vec::new(), self.chain.as_deref(), self.after, want).await?
            } else {
                Vec::new()
            };
            if page.is_empty() && self.after < self.head {
                return Err(CliError::BadResponse {
                    url: "/v1/audit/events".into(),
                    why: format!(
                        "chain {} ends at record {} before its head {}",
                        chain_name(self.chain.as_deref()),
                        self.after,
                        self.head
                    ),
                });
            }
            self.done = page.is_empty();
            for r in page {
                if r.seq > self.head || until.is_some_and(|u| r.time >= u) {
                    self.done = true;
                    break;
                }
                self.after = r.seq;
                self.buffered.push_back(r);
            }
        }
        Ok(self.buffered.front().map(|r| r.pos.unwrap_or_default()))
    }
}

pub(super) async fn export(ctx: &Ctx, e: &AuditExport) -> Result<(), CliError> {
    let now = Timestamp::now();
    let since = e.since.map(|s| s.resolve(now));
    if let (Some(a), Some(b)) = (since, e.until) {
        if b <= a {
            return Err(sallyport_core::model::ModelError::InvalidTimeWindow(
                "--until must be after --since",
            )
            .into());
        }
    }
    let heads = chains(ctx).await?.chains;
    // Per chain: its first record in the window, which anchors the run.
    let mut anchors = Vec::new();
    let mut feeds = Vec::new();
    for c in &heads {
        let chain = c.chain.as_deref();
        let filter = since.map_or_else(Vec::new, |t| vec![("since", t.to_rfc3339())]);
        let first = chain_page(ctx, filter, chain, 0, 1).await?;
        let Some(first) = first.into_iter().next() else {
            continue;
        };
        if first.seq > c.head.seq || e.until.is_some_and(|u| first.time >= u) {
            continue;
        }
        let anchor = ChainHead {
            seq: first.seq - 1,
            hash: first.prev_hash.clone(),
        };
        anchors.push(ChainMark::new(c.chain.clone(), anchor));
        feeds.push(Feed {
            chain: c.chain.clone(),
            after: first.seq - 1,
            head: c.head.seq,
            buffered: VecDeque::new(),
            done: false,
        });
    }
    let header = ExportHeader {
        sallyport_export: EXPORT_VERSION,
        anchor: None,
        anchors: anchors.clone(),
        since,
        until: e.until,
        head: None,
        heads: heads
            .iter()
            .map(|c| ChainMark::new(c.chain.clone(), c.head.clone()))
            .collect(),
        exported_at: Some(now),
    };
    let mut sink: Box<dyn Write> = match &e.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(CliError::Output)?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut line = |v: &dyn erased::Line| -> Result<(), CliError> {
        let text = v.line().map_err(|e| CliError::Output(e.into()))?;
        sink.write_all(text.as_bytes())
            .and_then(|()| sink.write_all(b"\n"))
            .map_err(CliError::Output)
    };
    line(&header)?;
    let mut tally = ExportTally::new(&anchors);
    // Merge the runs in journal position order.
    loop {
        let mut next: Option<(u64, usize)> = None;
        for (i, feed) in feeds.iter_mut().enumerate() {
            if let Some(pos) = feed.next_pos(ctx, e.until).await? {
                if next.is_none_or(|(p, _)| pos < p) {
                    next = Some((pos, i));
                }
            }
        }
        let Some(r) = next.and_then(|(_, i)| feeds.get_mut(i)?.buffered.pop_front()) else {
            break;
        };
        tally.record(&r);
        line(&r)?;
    }
    line(&tally.trailer())?;
    sink.flush().map_err(CliError::Output)?;
    if let Some(path) = &e.out {
        let runs: Vec<String> = tally
            .chains()
            .map(|c| {
                let first = anchors
                    .iter()
                    .find(|a| a.chain == c.chain)
                    .map_or(0, |a| a.seq)
                    + 1;
                let chain = chain_name(c.chain.as_deref());
                format!("{chain} seq {first}..{}", c.last.seq)
            })
            .collect();
        let runs = if runs.is_empty() {
            String::new()
        } else {
            format!(" ({})", runs.join(", "))
        };
        ctx.out.text(&format!(
            "exported {} records{runs} to {}\n",
            tally.count(),
            path.display()
        ))?;
    }
    Ok(())
}

/// Serialises header, record and trailer lines the same way.
mod erased {
    pub trait Line {
        fn line(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Line for T {
        fn line(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}

/// Checks an export file offline.
pub(super) fn verify_file(out: Out, path: &Path) -> Result<(), CliError> {
    let file = std::fs::File::open(path).map_err(|source| CliError::ReadFile {
        what: "export",
        path: path.to_owned(),
        source,
    })?;
    let broken = |problem: String| CliError::ExportBroken {
        path: path.to_owned(),
        problem,
    };
    let mut v = ExportVerifier::new();
    for text in BufReader::new(file).lines() {
        let text = text.map_err(|source| CliError::ReadFile {
            what: "export",
            path: path.to_owned(),
            source,
        })?;
        v.push_line(&text).map_err(|e| broken(e.to_string()))?;
    }
    let s = v.finish().map_err(|e| broken(e.to_string()))?;
    match out.format() {
        Format::Json => out.json(&serde_json::to_value(&s).unwrap_or(Value::Null)),
        Format::Table => out.text(&export_summary(&s)),
    }
}

/// `OK: N events in K chains`, then one line per chain.
fn export_summary(s: &ExportSummary) -> String {
    let mut text = format!("OK: {} events in {} chains\n", s.count, s.chains.len());
    for c in &s.chains {
        let records = match c.count {
            0 => "no records".to_owned(),
            n => format!("seq {}..{} ({n} records)", c.anchor.seq + 1, c.last.seq),
        };
        text.push_str(&format!(
            "chain {}: {records}; anchor seq {} hash {}; last seq {} hash {}\n",
            chain_name(c.chain.as_deref()),
            c.anchor.seq,
            clean(&c.anchor.hash),
            c.last.seq,
            clean(&c.last.hash)
        ));
    }
    text
}

pub(super) async fn backlog(ctx: &Ctx) -> Result<(), CliError> {
    let reply = ctx.api.get(&["audit", "backlog"], &[]).await?;
    if ctx.out.format() == Format::Json {
        return ctx.out.json(&reply.body);
    }
    let view: BacklogView = decode(&reply.url, reply.body)?;
    // The sum over chains, then each chain's head; a sink's figures are per chain.
    let mut text = format!("journal head seq {} (all chains)\n", view.head_seq);
    for c in &view.chains {
        text.push_str(&format!(
            "  chain {} head seq {}\n",
            chain_name(c.chain.as_deref()),
            c.head.seq
        ));
    }
    text.push_str(&backlog_table(&view.sinks).render());
    ctx.out.text(&text)
}

/// SINK CHAIN CHECKPOINT BACKLOG OLDEST-AGE DELIVERED REJECTED QUARANTINED LAST-ERROR
pub fn backlog_table(sinks: &[SinkBacklog]) -> Table {
    let mut t = Table::new(&[
        "SINK",
        "CHAIN",
        "CHECKPOINT",
        "BACKLOG",
        "OLDEST-AGE",
        "DELIVERED",
        "REJECTED",
        "QUARANTINED",
        "LAST-ERROR",
    ]);
    for s in sinks {
        t.row([
            clean(&s.sink),
            chain_name(s.chain.as_deref()),
            s.checkpoint_seq.to_string(),
            s.backlog_events.to_string(),
            s.oldest_age_secs
                .map_or_else(|| "-".to_owned(), |a| format!("{a}s")),
            s.delivered.to_string(),
            s.rejected.to_string(),
            s.quarantined.to_string(),
            or_dash(s.last_error.as_ref()),
        ]);
    }
    t
}
