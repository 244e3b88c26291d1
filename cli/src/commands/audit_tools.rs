//! `audit tail [-f]`, `audit export`, `audit verify --file` (offline) and `audit backlog`.
//!
//! An export is the contiguous run of records from the first one at or after `--since` up to
//! the last one before the first at or after `--until` (or the head when the export started),
//! framed by its anchors (`core::audit::export`), so it verifies without the gateway.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use sallyport_core::api::{AuditPage, BacklogView, SinkBacklog};
use sallyport_core::audit::export::{
    ExportEnd, ExportHeader, ExportTrailer, ExportVerifier, EXPORT_VERSION,
};
use sallyport_core::audit::{ChainHead, Record};
use sallyport_core::time::Timestamp;
use serde_json::Value;

use super::audit::events_table;
use super::Ctx;
use crate::args::{AuditExport, AuditTail};
use crate::error::CliError;
use crate::output::{clean, decode, or_dash, Format, Out, Table};

/// Records asked for per request.
const PAGE: u64 = 1000;
/// How often `tail -f` asks for new records.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

async fn backlog_view(ctx: &Ctx) -> Result<BacklogView, CliError> {
    let reply = ctx.api.get(&["audit", "backlog"], &[]).await?;
    decode(&reply.url, reply.body)
}

/// Records after `after`, at most `limit`, with the raw JSON of each.
async fn page(
    ctx: &Ctx,
    mut query: Vec<(&'static str, String)>,
    after: u64,
    limit: u64,
) -> Result<Vec<Record>, CliError> {
    query.push(("after_seq", after.to_string()));
    query.push(("limit", limit.clamp(1, PAGE).to_string()));
    let reply = ctx.api.get(&["audit", "events"], &query).await?;
    let page: AuditPage = decode(&reply.url, reply.body)?;
    if page.events.iter().any(|r| r.seq <= after) {
        return Err(CliError::BadResponse {
            url: reply.url,
            why: "records at or before after_seq".into(),
        });
    }
    Ok(page.events)
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

pub(super) async fn tail(ctx: &Ctx, t: &AuditTail) -> Result<(), CliError> {
    let head = backlog_view(ctx).await?.head_seq;
    let mut after = head.saturating_sub(u64::from(t.lines));
    let first = if t.lines == 0 {
        Vec::new()
    } else {
        page(ctx, Vec::new(), after, u64::from(t.lines)).await?
    };
    print_records(ctx.out, &first, true)?;
    after = first.last().map_or(head, |r| r.seq);
    if !t.follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        loop {
            let next = page(ctx, Vec::new(), after, PAGE).await?;
            let Some(last) = next.last() else { break };
            after = last.seq;
            print_records(ctx.out, &next, false)?;
            if (next.len() as u64) < PAGE {
                break;
            }
        }
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
    let head_seq = backlog_view(ctx).await?.head_seq;
    let head = match page(ctx, Vec::new(), head_seq.saturating_sub(1), 1)
        .await?
        .first()
    {
        Some(r) if r.seq == head_seq => Some(ChainHead::from(r)),
        _ => None,
    };
    // The first record of the run.
    let first = match since {
        None => page(ctx, Vec::new(), 0, 1).await?,
        Some(t) => page(ctx, vec![("since", t.to_rfc3339())], 0, 1).await?,
    };
    let first = first.into_iter().next().filter(|r| r.seq <= head_seq);
    let anchor = match &first {
        Some(r) => ChainHead {
            seq: r.seq.saturating_sub(1),
            hash: r.prev_hash.clone(),
        },
        None => head.clone().unwrap_or_default(),
    };
    let header = ExportHeader {
        sallyport_export: EXPORT_VERSION,
        anchor: anchor.clone(),
        since,
        until: e.until,
        head,
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
    let mut last = anchor;
    let mut count = 0u64;
    let mut first_seq = None;
    if let Some(first) = first {
        let mut after = first.seq.saturating_sub(1);
        'pages: while after < head_seq {
            let records = page(ctx, Vec::new(), after, PAGE.min(head_seq - after)).await?;
            if records.is_empty() {
                break;
            }
            for r in records {
                if r.seq > head_seq || e.until.is_some_and(|u| r.time >= u) {
                    break 'pages;
                }
                after = r.seq;
                first_seq.get_or_insert(r.seq);
                last = ChainHead::from(&r);
                count += 1;
                line(&r)?;
            }
        }
    }
    let trailer = ExportTrailer {
        sallyport_export_end: ExportEnd {
            count,
            last: last.clone(),
        },
    };
    line(&trailer)?;
    sink.flush().map_err(CliError::Output)?;
    if let Some(path) = &e.out {
        let range = first_seq.map_or_else(String::new, |f| format!(" (seq {f}..{})", last.seq));
        ctx.out.text(&format!(
            "exported {count} records{range} to {}\n",
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
        v.push_line(&text).map_err(|e| broken(describe(&e)))?;
    }
    let s = v.finish().map_err(|e| broken(describe(&e)))?;
    match out.format() {
        Format::Json => out.json(&serde_json::to_value(&s).unwrap_or(Value::Null)),
        Format::Table => out.text(&format!(
            "OK: {} events, seq {}..{}; anchor seq {} hash {}; last hash {}\n",
            s.count,
            s.anchor.seq.saturating_add(1),
            s.last.seq,
            s.anchor.seq,
            s.anchor.hash,
            s.last.hash
        )),
    }
}

fn describe(e: &sallyport_core::audit::export::ExportError) -> String {
    match e.first_bad_seq() {
        Some(seq) => format!("at seq {seq}: {e}"),
        None => e.to_string(),
    }
}

pub(super) async fn backlog(ctx: &Ctx) -> Result<(), CliError> {
    let reply = ctx.api.get(&["audit", "backlog"], &[]).await?;
    if ctx.out.format() == Format::Json {
        return ctx.out.json(&reply.body);
    }
    let view: BacklogView = decode(&reply.url, reply.body)?;
    let mut text = format!("journal head seq {}\n", view.head_seq);
    text.push_str(&backlog_table(&view.sinks).render());
    ctx.out.text(&text)
}

/// SINK CHECKPOINT BACKLOG OLDEST-AGE DELIVERED REJECTED QUARANTINED LAST-ERROR
pub fn backlog_table(sinks: &[SinkBacklog]) -> Table {
    let mut t = Table::new(&[
        "SINK",
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
