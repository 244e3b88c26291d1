//! `audit search` (following `next_after_seq` until the limit) and `audit verify` (one line
//! per hash chain); the other auditor tools are in `audit_tools`.
//!
//! The journal holds one hash chain per gateway instance, plus the closed shared chain of
//! records from before per-instance chains; the CLI names that one `(shared)` (no instance
//! name has parentheses) and the API the empty string.

use sallyport_core::api::{AuditPage, ChainVerifyView, VerifyView};
use sallyport_core::audit::export::chain_label;
use sallyport_core::audit::Record;
use sallyport_core::model::ModelError;
use sallyport_core::time::Timestamp;
use serde_json::Value;

use super::{audit_tools, Ctx};
use crate::args::{AuditCmd, AuditSearch};
use crate::error::CliError;
use crate::output::{clean, decode, or_dash, Format, Table};

/// Records asked for per request.
const PAGE: usize = 1000;

pub(super) async fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Search(search) => self::search(ctx, &search).await,
        AuditCmd::Tail(t) => audit_tools::tail(ctx, &t).await,
        AuditCmd::Export(e) => audit_tools::export(ctx, &e).await,
        AuditCmd::Verify { file: None } => verify(ctx).await,
        AuditCmd::Verify { file: Some(path) } => audit_tools::verify_file(ctx.out, &path),
        AuditCmd::Backlog => audit_tools::backlog(ctx).await,
    }
}

/// The query parameters of `GET /v1/audit/events`, without paging.
pub fn filters(s: &AuditSearch, now: Timestamp) -> Result<Vec<(&'static str, String)>, ModelError> {
    let since = s.since.map(|since| since.resolve(now));
    if let (Some(since), Some(until)) = (since, s.until) {
        if until <= since {
            return Err(ModelError::InvalidTimeWindow(
                "--until must be after --since",
            ));
        }
    }
    let mut q = Vec::new();
    let text = [
        ("user", &s.user),
        ("type", &s.event_type),
        ("target", &s.target),
        ("session", &s.session),
        ("chain", &s.chain),
    ];
    for (key, value) in text {
        if let Some(v) = value {
            q.push((key, v.clone()));
        }
    }
    if let Some(t) = since {
        q.push(("since", t.to_rfc3339()));
    }
    if let Some(t) = s.until {
        q.push(("until", t.to_rfc3339()));
    }
    Ok(q)
}

async fn search(ctx: &Ctx, s: &AuditSearch) -> Result<(), CliError> {
    let filters = filters(s, Timestamp::now())?;
    let mut raw: Vec<Value> = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    let mut after: Option<u64> = None;
    let mut remaining = usize::try_from(s.limit).unwrap_or(usize::MAX);
    while remaining > 0 {
        let mut query = filters.clone();
        if let Some(seq) = after {
            query.push(("after_seq", seq.to_string()));
        }
        query.push(("limit", remaining.min(PAGE).to_string()));
        let reply = ctx.api.get(&["audit", "events"], &query).await?;
        let page: AuditPage = decode(&reply.url, reply.body.clone())?;
        let taken = page.events.len().min(remaining);
        if let Some(Value::Array(events)) = reply.body.get("events") {
            raw.extend(events.iter().take(taken).cloned());
        }
        records.extend(page.events.into_iter().take(taken));
        remaining -= taken;
        match page.next_after_seq {
            Some(next) if taken > 0 && after.is_none_or(|prev| next > prev) => after = Some(next),
            Some(_) if taken > 0 => {
                return Err(CliError::BadResponse {
                    url: reply.url,
                    why: "next_after_seq does not advance".into(),
                });
            }
            _ => break,
        }
    }
    match ctx.out.format() {
        Format::Json => ctx.out.json(&Value::Array(raw)),
        Format::Table => ctx.out.text(&events_table(&records).render()),
    }
}

async fn verify(ctx: &Ctx) -> Result<(), CliError> {
    let reply = ctx.api.post(&["audit", "verify"], None::<&()>).await?;
    let view: VerifyView = decode(&reply.url, reply.body.clone())?;
    let (text, broken) = verdict(&view);
    match ctx.out.format() {
        Format::Json => ctx.out.json(&reply.body)?,
        Format::Table => ctx.out.text(&text)?,
    }
    broken.map_or(Ok(()), Err)
}

/// One line per chain, then `OK: …` when every chain verified; and the failure naming the
/// first broken chain (the others are named in their lines).
pub fn verdict(v: &VerifyView) -> (String, Option<CliError>) {
    let mut text = String::new();
    let mut broken: Vec<(String, u64, String)> = Vec::new();
    for c in &v.chains {
        let name = chain_name(c.chain.as_deref());
        text.push_str(&format!(
            "chain {name}: {} records, head seq {}, hash {}, ",
            c.count,
            c.head_seq,
            clean(&c.head_hash)
        ));
        if c.ok {
            text.push_str("ok\n");
            continue;
        }
        let (seq, problem) = chain_problem(c);
        text.push_str(&format!("BROKEN in chain {name} at seq {seq}: {problem}\n"));
        broken.push((name, seq, problem));
    }
    if v.ok && broken.is_empty() {
        text.push_str(&format!(
            "OK: {} events in {} chains\n",
            v.count,
            v.chains.len()
        ));
        return (text, None);
    }
    let mut failures = broken.into_iter();
    let error = match failures.next() {
        Some((chain, seq, mut problem)) => {
            let more = failures.len();
            if more > 0 {
                problem.push_str(&format!(
                    " (and {more} more broken chain{})",
                    if more == 1 { "" } else { "s" }
                ));
            }
            CliError::AuditBroken {
                chain,
                seq,
                problem,
            }
        }
        // `ok: false` without a broken chain: believe the verdict, not the details.
        None => CliError::AuditBroken {
            chain: "-".into(),
            seq: 0,
            problem: "the gateway reported the journal broken without naming a chain".into(),
        },
    };
    (text, Some(error))
}

/// Where and why a chain is broken.
fn chain_problem(c: &ChainVerifyView) -> (u64, String) {
    let seq = c
        .first_bad_seq
        .or_else(|| {
            c.error
                .as_ref()
                .map(sallyport_core::audit::ChainError::first_bad_seq)
        })
        .unwrap_or_else(|| c.head_seq.saturating_add(1));
    let problem = c.error.as_ref().map_or_else(
        || "the gateway reported the chain broken without details".to_owned(),
        ToString::to_string,
    );
    (seq, clean(&problem))
}

/// A chain as the CLI names it: the instance, or `(shared)`.
pub fn chain_name(chain: Option<&str>) -> String {
    clean(chain_label(chain))
}

/// CHAIN SEQ TIME EVENT ACTOR USER TARGET SESSION (SEQ: the record's place in its chain)
pub fn events_table(records: &[Record]) -> Table {
    let mut t = Table::new(&[
        "CHAIN", "SEQ", "TIME", "EVENT", "ACTOR", "USER", "TARGET", "SESSION",
    ]);
    for r in records {
        t.row([
            chain_name(r.chain.as_deref()),
            r.seq.to_string(),
            r.time.to_string(),
            clean(&r.event),
            clean(&r.actor),
            or_dash(r.user.as_ref()),
            or_dash(r.target.as_ref()),
            or_dash(r.session.as_ref()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Since;

    fn view(json: Value) -> VerifyView {
        serde_json::from_value(json).unwrap()
    }

    fn chain(name: Option<&str>, count: u64, error: Option<Value>) -> Value {
        serde_json::json!({"chain": name, "ok": error.is_none(), "count": count,
            "head_seq": count, "head_hash": "ab", "recorded_head": {"seq": count, "hash": "ab"},
            "first_bad_seq": error.as_ref().map(|_| count + 1), "error": error})
    }

    #[test]
    fn verdicts_name_each_chain() {
        let ok = view(serde_json::json!({"ok": true, "count": 12, "chains": [
            chain(None, 4, None), chain(Some("gw-a"), 8, None)]}));
        let (text, broken) = verdict(&ok);
        assert!(broken.is_none());
        assert_eq!(
            text,
            "chain (shared): 4 records, head seq 4, hash ab, ok\n\
             chain gw-a: 8 records, head seq 8, hash ab, ok\n\
             OK: 12 events in 2 chains\n"
        );
        let altered = serde_json::json!({"Altered": {"seq": 3}});
        let gap = serde_json::json!({"Gap": {"expected": 5, "found": 6}});
        let bad = view(serde_json::json!({"ok": false, "count": 10, "chains": [
            chain(None, 4, None), chain(Some("gw-a"), 2, Some(altered)),
            chain(Some("gw-b"), 4, Some(gap))]}));
        let (text, broken) = verdict(&bad);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with(", ok"), "{text}");
        assert!(
            lines[1].starts_with("chain gw-a: 2 records")
                && lines[1].contains(", BROKEN in chain gw-a at seq 3: record 3 was altered"),
            "{text}"
        );
        assert!(
            lines[2].contains("BROKEN in chain gw-b at seq 5: expected record 5"),
            "{text}"
        );
        let e = broken.unwrap();
        assert_eq!(e.exit_code(), crate::error::EXIT_AUDIT_BROKEN);
        let e = e.to_string();
        assert!(e.starts_with("BROKEN in chain gw-a at seq 3: "), "{e}");
        assert!(e.ends_with("(and 1 more broken chain)"), "{e}");
        // A verdict of broken with no broken chain is still a failure.
        let odd = view(serde_json::json!({"ok": false, "count": 0, "chains": []}));
        assert!(verdict(&odd).1.is_some());
    }

    #[test]
    fn chain_arguments() {
        use crate::parse::chain;
        assert_eq!(
            chain("(shared)").unwrap(),
            "",
            "the API's name for the shared chain"
        );
        assert_eq!(chain("gw-a.eu_1").unwrap(), "gw-a.eu_1");
        for bad in ["", "gw a", "shared)", "x/y", &"a".repeat(65)] {
            assert!(chain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_resolve_since_and_refuse_reversed() {
        let now: Timestamp = "2026-01-31T17:00:00Z".parse().unwrap();
        let mut s = AuditSearch {
            user: Some("alice".into()),
            event_type: Some("access.grant".into()),
            target: None,
            session: None,
            chain: Some(String::new()),
            since: Some(Since::Ago(std::time::Duration::from_secs(3600))),
            until: None,
            limit: 100,
        };
        let q = filters(&s, now).unwrap();
        assert_eq!(
            q,
            vec![
                ("user", "alice".to_owned()),
                ("type", "access.grant".to_owned()),
                ("chain", String::new()),
                ("since", "2026-01-31T16:00:00Z".to_owned())
            ]
        );
        s.until = Some("2026-01-31T15:00:00Z".parse().unwrap());
        assert!(filters(&s, now).is_err());
    }
}
