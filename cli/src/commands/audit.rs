//! `audit search` (following `next_after_seq` until the limit) and `audit verify`; the other
//! auditor tools are in `audit_tools`.

use sallyport_core::api::{AuditPage, VerifyView};
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
    if ctx.out.format() == Format::Json {
        ctx.out.json(&reply.body)?;
    }
    verdict(&view).and_then(|line| match ctx.out.format() {
        Format::Table => ctx.out.text(&line),
        Format::Json => Ok(()),
    })
}

/// The `OK` line, or the broken-chain failure.
pub fn verdict(v: &VerifyView) -> Result<String, CliError> {
    if v.ok {
        return Ok(format!("OK: {} events, head seq {}\n", v.count, v.head_seq));
    }
    let seq = v
        .first_bad_seq
        .or_else(|| {
            v.error
                .as_ref()
                .map(sallyport_core::audit::ChainError::first_bad_seq)
        })
        .unwrap_or_else(|| v.head_seq.saturating_add(1));
    let problem = v.error.as_ref().map_or_else(
        || "the gateway reported the chain broken without details".to_owned(),
        ToString::to_string,
    );
    Err(CliError::AuditBroken { seq, problem })
}

/// SEQ TIME EVENT ACTOR USER TARGET SESSION
pub fn events_table(records: &[Record]) -> Table {
    let mut t = Table::new(&["SEQ", "TIME", "EVENT", "ACTOR", "USER", "TARGET", "SESSION"]);
    for r in records {
        t.row([
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

    #[test]
    fn verdicts() {
        let ok = view(
            serde_json::json!({"ok": true, "count": 12, "head_seq": 12, "head_hash": "ab",
                                         "error": null, "first_bad_seq": null}),
        );
        assert_eq!(verdict(&ok).unwrap(), "OK: 12 events, head seq 12\n");
        let bad = view(
            serde_json::json!({"ok": false, "count": 2, "head_seq": 2, "head_hash": "ab",
                                          "error": {"Altered": {"seq": 3}}, "first_bad_seq": 3}),
        );
        let e = verdict(&bad).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_AUDIT_BROKEN);
        let text = e.to_string();
        assert!(text.starts_with("BROKEN at seq 3: "), "{text}");
        assert!(text.contains("altered"), "{text}");
    }

    #[test]
    fn filters_resolve_since_and_refuse_reversed() {
        let now: Timestamp = "2026-01-31T17:00:00Z".parse().unwrap();
        let mut s = AuditSearch {
            user: Some("alice".into()),
            event_type: Some("access.grant".into()),
            target: None,
            session: None,
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
                ("since", "2026-01-31T16:00:00Z".to_owned())
            ]
        );
        s.until = Some("2026-01-31T15:00:00Z".parse().unwrap());
        assert!(filters(&s, now).is_err());
    }
}
