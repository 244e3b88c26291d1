//! `session list|show|play|export`: SSH sessions and their recordings (auditors and admins).
//!
//! The gateway opens a recording and sends asciicast v2 text over the API's TLS; `play` replays
//! it here with its timing (speed factor, pauses capped), `export` writes it for asciinema and
//! other players. The replayed bytes are what the target printed, escape sequences included,
//! exactly as the engineer's terminal received them.

use std::io::Write;
use std::time::Duration;

use sallyport_core::api::{SessionPage, SessionView};
use sallyport_core::recording::cast_read::{schedule, Cast, Playback};
use sallyport_core::time::Timestamp;

use super::Ctx;
use crate::args::{SessionCmd, SessionExport, SessionList, SessionPlay};
use crate::error::CliError;
use crate::output::{clean, decode, Format, Table};

pub(super) async fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<(), CliError> {
    match cmd {
        SessionCmd::List(l) => list(ctx, &l).await,
        SessionCmd::Show { id } => show(ctx, &id).await,
        SessionCmd::Play(p) => play(ctx, &p).await,
        SessionCmd::Export(e) => export(ctx, &e).await,
        SessionCmd::Kill { id } => kill(ctx, &id).await,
    }
}

/// `POST /v1/sessions/{id}/kill`: the gateway running it ends it within a second.
async fn kill(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let reply = ctx.api.post(&["sessions", id, "kill"], None::<&()>).await?;
    if ctx.out.format() == Format::Json {
        return ctx.out.json(&reply.body);
    }
    let s: SessionView = decode(&reply.url, reply.body)?;
    ctx.out.text(&format!(
        "session {} of {} on {} is being ended\n",
        clean(&s.id),
        s.user,
        clean(&s.instance)
    ))
}

/// The query parameters of `GET /v1/sessions`.
pub fn filters(l: &SessionList, now: Timestamp) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if l.live {
        q.push(("live", "true".to_owned()));
    } else if l.ended {
        q.push(("live", "false".to_owned()));
    }
    if let Some(u) = &l.user {
        q.push(("user", u.to_string()));
    }
    if let Some(t) = &l.target {
        q.push(("target", t.to_string()));
    }
    if let Some(s) = l.since {
        q.push(("since", s.resolve(now).to_rfc3339()));
    }
    q.push(("limit", l.limit.to_string()));
    q
}

async fn list(ctx: &Ctx, l: &SessionList) -> Result<(), CliError> {
    let reply = ctx
        .api
        .get(&["sessions"], &filters(l, Timestamp::now()))
        .await?;
    if ctx.out.format() == Format::Json {
        return ctx.out.json(&reply.body);
    }
    let page: SessionPage = decode(&reply.url, reply.body)?;
    ctx.out.text(&sessions_table(&page.sessions).render())
}

/// ID STARTED ENDED USER MODE DESTINATION SOURCE INSTANCE REC
pub fn sessions_table(sessions: &[SessionView]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "STARTED",
        "ENDED",
        "USER",
        "MODE",
        "DESTINATION",
        "SOURCE",
        "INSTANCE",
        "REC",
    ]);
    for s in sessions {
        let ended = match (&s.ended_at, &s.end_reason) {
            (Some(at), Some(why)) => format!("{at} ({why})"),
            (Some(at), None) => at.to_string(),
            (None, _) => "live".to_owned(),
        };
        t.row([
            s.id.clone(),
            s.started_at.to_string(),
            ended,
            s.user.to_string(),
            s.mode.clone(),
            destination(s),
            s.source.clone(),
            s.instance.clone(),
            if s.recorded { "yes" } else { "-" }.to_owned(),
        ]);
    }
    t
}

fn destination(s: &SessionView) -> String {
    match (&s.login, &s.target) {
        (Some(l), Some(t)) => format!("{l}@{t}"),
        (None, Some(t)) => t.to_string(),
        _ => "-".to_owned(),
    }
}

async fn show(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let reply = ctx.api.get(&["sessions", id], &[]).await?;
    if ctx.out.format() == Format::Json {
        return ctx.out.json(&reply.body);
    }
    let s: SessionView = decode(&reply.url, reply.body)?;
    let mut text = sessions_table(std::slice::from_ref(&s)).render();
    text.push_str(&format!("client: {}\n", clean(&s.client)));
    if !s.recordings.is_empty() {
        let mut t = Table::new(&["CHANNEL", "CHUNKS", "FIRST WRITTEN", "LAST WRITTEN"]);
        for r in &s.recordings {
            t.row([
                r.channel.to_string(),
                r.chunks.to_string(),
                r.first_written_at.to_string(),
                r.last_written_at.to_string(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    ctx.out.text(&text)
}

/// Fetches a recording's asciicast text and checks that it parses.
async fn fetch(ctx: &Ctx, id: &str, channel: Option<u32>) -> Result<(String, Cast), CliError> {
    let query: Vec<(&str, String)> = channel
        .map(|c| ("channel", c.to_string()))
        .into_iter()
        .collect();
    let (url, text) = ctx
        .api
        .get_text(&["sessions", id, "recording"], &query)
        .await?;
    let cast = Cast::parse(&text).map_err(|e| CliError::BadResponse {
        url,
        why: format!("not an asciicast recording: {e}"),
    })?;
    Ok((text, cast))
}

async fn play(ctx: &Ctx, p: &SessionPlay) -> Result<(), CliError> {
    let (_, cast) = fetch(ctx, &p.id, p.channel).await?;
    let frames = schedule(
        &cast,
        Playback {
            speed: p.speed,
            idle_limit: p.idle_limit,
        },
    );
    let total: Duration = frames.iter().map(|f| f.delay).sum();
    eprintln!(
        "sallyport: replaying session {} ({}x{}, {} at {}x); Ctrl-C to stop",
        p.id,
        cast.header.width,
        cast.header.height,
        humantime::format_duration(Duration::from_secs(total.as_secs())),
        p.speed
    );
    let mut stdout = std::io::stdout().lock();
    for f in frames {
        if !f.delay.is_zero() {
            stdout.flush().map_err(CliError::Output)?;
            tokio::time::sleep(f.delay).await;
        }
        stdout
            .write_all(f.data.as_bytes())
            .map_err(CliError::Output)?;
    }
    stdout.flush().map_err(CliError::Output)?;
    eprintln!("\nsallyport: end of recording");
    Ok(())
}

async fn export(ctx: &Ctx, e: &SessionExport) -> Result<(), CliError> {
    let (text, cast) = fetch(ctx, &e.id, e.channel).await?;
    match &e.out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(CliError::Output)
        }
        Some(path) => {
            write_private(path, text.as_bytes()).map_err(|source| CliError::WriteFile {
                what: "recording",
                path: path.clone(),
                source,
            })?;
            ctx.out.text(&format!(
                "exported session {} ({} events) to {}\n",
                e.id,
                cast.events.len(),
                path.display()
            ))
        }
    }
}

/// Writes `data` to `path`, created (or truncated) readable by its owner only: a recording
/// holds whatever the session showed.
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Since;

    fn view(id: &str, proxy: bool, ended: bool) -> SessionView {
        SessionView {
            id: id.into(),
            instance: "gw-1".into(),
            user: "alice".parse().unwrap(),
            source: "10.0.0.5".into(),
            mode: if proxy { "proxy" } else { "jump" }.into(),
            target: proxy.then(|| "db-1".parse().unwrap()),
            login: proxy.then(|| "root".parse().unwrap()),
            client: "SSH-2.0-OpenSSH_9.2".into(),
            started_at: "2026-01-31T17:00:00Z".parse().unwrap(),
            ended_at: ended.then(|| "2026-01-31T17:05:00Z".parse().unwrap()),
            end_reason: ended.then(|| "client".into()),
            recorded: proxy,
            recordings: Vec::new(),
        }
    }

    #[test]
    fn table_shows_destination_state_and_recording() {
        let t = sessions_table(&[view("a", true, false), view("b", false, true)]).render();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID"), "{t}");
        assert!(lines[1].contains("root@db-1"), "{t}");
        assert!(lines[1].contains("live"), "{t}");
        assert!(lines[1].trim_end().ends_with("yes"), "{t}");
        assert!(lines[2].contains("(client)"), "{t}");
        assert!(lines[2].contains("jump"), "{t}");
    }

    #[test]
    fn filters_map_flags_to_the_query() {
        let now: Timestamp = "2026-01-31T17:00:00Z".parse().unwrap();
        let l = SessionList {
            live: false,
            ended: true,
            user: Some("alice".parse().unwrap()),
            target: None,
            since: Some(Since::Ago(Duration::from_secs(3600))),
            limit: 50,
        };
        assert_eq!(
            filters(&l, now),
            vec![
                ("live", "false".to_owned()),
                ("user", "alice".to_owned()),
                ("since", "2026-01-31T16:00:00Z".to_owned()),
                ("limit", "50".to_owned()),
            ]
        );
    }

    #[test]
    fn arguments_are_checked_locally() {
        use clap::Parser as _;

        use crate::args::{Cli, Command};
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("sallyport").chain(args.iter().copied()))
        };
        let id = "6F1C0B7E-93a4-4a43-9d3f-6c1b3f7a2e10";
        let cli = parse(&["session", "play", id, "--speed", "2.5", "-i", "2s"]).unwrap();
        let Command::Session(SessionCmd::Play(p)) = cli.command else {
            panic!("not play")
        };
        assert_eq!(p.id, id.to_ascii_lowercase());
        assert_eq!(p.speed, 2.5);
        assert_eq!(p.idle_limit, Some(Duration::from_secs(2)));
        assert_eq!(p.channel, None);
        for speed in ["0", "-1", "nan", "inf", "1001", "fast"] {
            let flag = format!("--speed={speed}");
            let e = parse(&["session", "play", id, &flag]).unwrap_err();
            assert!(e.to_string().contains("positive number"), "{speed}: {e}");
        }
        let e = parse(&["session", "play", "42"]).unwrap_err();
        assert!(e.to_string().contains("session id"), "{e}");
        assert!(parse(&["session", "list", "--live", "--ended"]).is_err());
        assert!(parse(&["session", "list", "--limit", "0"]).is_err());
        let cli = parse(&["session", "export", id, "--out", "r.cast", "-o", "json"]).unwrap();
        let Command::Session(SessionCmd::Export(e)) = cli.command else {
            panic!("not export")
        };
        assert_eq!(e.out.as_deref(), Some(std::path::Path::new("r.cast")));
    }

    #[test]
    fn exports_are_private_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
