//! `grant …` (create, list, show) and `revoke`.

use std::time::Duration;

use sallyport_core::api::{CreateGrant, GrantView};
use sallyport_core::model::{GrantId, GrantOptions, ModelError, Protocol, UserName};
use sallyport_core::time::Timestamp;

use super::Ctx;
use crate::args::{GrantCmd, GrantCreate};
use crate::error::CliError;
use crate::output::{clean, decode, joined, or_dash, Format, Table};

/// A `grant` command with its cross-field rules checked.
#[derive(Debug)]
pub enum GrantAction {
    /// Create this grant.
    Create(CreateGrant),
    /// List grants.
    List {
        /// Reaching this user only.
        user: Option<UserName>,
    },
    /// Show one grant.
    Show(GrantId),
}

pub(super) fn prepare(cmd: GrantCmd) -> Result<GrantAction, CliError> {
    match (cmd.action, cmd.create) {
        (Some(crate::args::GrantAction::List { user }), _) => Ok(GrantAction::List { user }),
        (Some(crate::args::GrantAction::Show { id }), _) => Ok(GrantAction::Show(id)),
        (None, Some(create)) => Ok(GrantAction::Create(request(create, Timestamp::now())?)),
        (None, None) => Err(CliError::Config(
            "give USER|@GROUP TARGET|CIDR --reason TEXT, or `grant list`, or `grant show ID`",
        )),
    }
}

/// The request body for `grant USER TARGET …`, refusing locally what can never be valid.
pub fn request(c: GrantCreate, now: Timestamp) -> Result<CreateGrant, ModelError> {
    if let (Some(from), Some(until)) = (c.from, c.until) {
        if until <= from {
            return Err(ModelError::InvalidTimeWindow(
                "--until must be after --from",
            ));
        }
    }
    if c.from.is_none() {
        if let Some(until) = c.until {
            if until <= now {
                return Err(ModelError::InvalidTimeWindow("--until is in the past"));
            }
        }
    }
    let protocols: Vec<Protocol> = c
        .protocols
        .map(|set| set.iter().collect())
        .unwrap_or_default();
    let proxy = protocols.contains(&Protocol::SshProxy);
    if proxy && c.logins.is_empty() {
        return Err(ModelError::InvalidGrant(
            "ssh-proxy grants need at least one --login",
        ));
    }
    if !proxy && !c.logins.is_empty() {
        return Err(ModelError::InvalidGrant(
            "--login applies only to ssh-proxy grants (add --proto ssh-proxy)",
        ));
    }
    Ok(CreateGrant {
        subject: c.subject,
        object: c.object,
        protocols,
        ports: c.ports,
        logins: c.logins,
        options: GrantOptions {
            agent_forwarding: c.allow_agent_forwarding,
            port_forwarding: c.allow_port_forwarding,
        },
        not_before: c.from,
        expires_at: c.until,
        duration_secs: c.duration.map(whole_seconds),
        reason: c.reason,
    })
}

/// Seconds, rounded up so `--for 1500ms` does not become one second.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

pub(super) async fn run(ctx: &Ctx, action: GrantAction) -> Result<(), CliError> {
    match action {
        GrantAction::Create(body) => {
            let reply = ctx.api.post(&["grants"], Some(&body)).await?;
            match ctx.out.format() {
                Format::Json => ctx.out.json(&reply.body),
                Format::Table => {
                    let grant: GrantView = decode(&reply.url, reply.body)?;
                    ctx.out.text(&format!("{}\n", grant.id))
                }
            }
        }
        GrantAction::List { user } => {
            let query: Vec<(&str, String)> =
                user.map(|u| ("user", u.to_string())).into_iter().collect();
            let reply = ctx.api.get(&["grants"], &query).await?;
            ctx.out.list(&reply.url, reply.body, grants_table)
        }
        GrantAction::Show(id) => {
            let reply = ctx.api.get(&["grants", &id.to_string()], &[]).await?;
            ctx.out.one(&reply.url, reply.body, grant_details)
        }
    }
}

pub(super) async fn revoke(ctx: &Ctx, id: GrantId) -> Result<(), CliError> {
    let reply = ctx
        .api
        .post(&["grants", &id.to_string(), "revoke"], None::<&()>)
        .await?;
    ctx.out.one(&reply.url, reply.body, |g: &GrantView| {
        grants_table(std::slice::from_ref(g))
    })
}

fn status(g: &GrantView) -> String {
    serde_json::to_value(g.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// ID SUBJECT OBJECT PROTOCOLS PORTS FROM UNTIL STATUS REASON
pub fn grants_table(grants: &[GrantView]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "SUBJECT",
        "OBJECT",
        "PROTOCOLS",
        "PORTS",
        "FROM",
        "UNTIL",
        "STATUS",
        "REASON",
    ]);
    for g in grants {
        t.row([
            g.id.to_string(),
            g.subject.to_string(),
            g.object.to_string(),
            joined(&g.protocols),
            g.ports.to_string(),
            g.not_before.to_string(),
            g.expires_at.to_string(),
            status(g),
            clean(g.reason.as_str()),
        ]);
    }
    t
}

/// One grant, one field per row.
pub fn grant_details(g: &GrantView) -> Table {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let fields = [
        ("id", g.id.to_string()),
        ("subject", g.subject.to_string()),
        ("object", g.object.to_string()),
        ("protocols", joined(&g.protocols)),
        ("ports", g.ports.to_string()),
        ("logins", joined(&g.logins)),
        ("options", g.options.to_string()),
        ("from", g.not_before.to_string()),
        ("until", g.expires_at.to_string()),
        ("status", status(g)),
        ("reason", g.reason.to_string()),
        ("granted-by", g.granted_by.to_string()),
        ("created", g.created_at.to_string()),
        ("revoked", or_dash(g.revoked_at.as_ref())),
        ("revoked-by", or_dash(g.revoked_by.as_ref())),
    ];
    for (k, v) in fields {
        t.row([k.to_owned(), v]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> GrantView {
        serde_json::from_value(serde_json::json!({
            "id": "6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10", "subject": "@ops", "object": "10.0.12.0/24",
            "protocols": ["ssh"], "ports": "22", "logins": [],
            "not_before": "2026-01-31T09:00:00Z", "expires_at": "2026-01-31T17:00:00Z",
            "reason": "INC-42", "granted_by": "admin", "created_at": "2026-01-31T09:00:00Z",
            "status": "active", "revoked_at": null, "revoked_by": null
        }))
        .unwrap()
    }

    #[test]
    fn list_rows() {
        let text = grants_table(&[grant()]).render();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("ID  "));
        let row = lines.next().unwrap();
        for part in [
            "6f1c0b7e-",
            "@ops",
            "10.0.12.0/24",
            "ssh",
            "22",
            "active",
            "INC-42",
        ] {
            assert!(row.contains(part), "{part} missing from {row}");
        }
    }

    #[test]
    fn details_rows() {
        let text = grant_details(&grant()).render();
        assert!(text.contains("granted-by  admin"), "{text}");
        assert!(text.contains("revoked     -"), "{text}");
    }

    fn create(args: &[&str]) -> GrantCreate {
        use clap::Parser as _;
        let cli =
            crate::args::Cli::try_parse_from(["sallyport", "grant"].iter().chain(args)).unwrap();
        match cli.command {
            crate::args::Command::Grant(GrantCmd {
                create: Some(c), ..
            }) => c,
            other => panic!("not a grant creation: {other:?}"),
        }
    }

    #[test]
    fn requests_carry_the_window_and_defaults() {
        let now: Timestamp = "2026-01-31T09:00:00Z".parse().unwrap();
        let r = request(
            create(&["alice", "db-1", "--for", "90m", "--reason", "x"]),
            now,
        )
        .unwrap();
        assert_eq!(r.duration_secs, Some(5400));
        assert!(
            r.protocols.is_empty()
                && r.ports.is_none()
                && r.not_before.is_none()
                && r.expires_at.is_none()
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["subject"], "alice");
        assert_eq!(json["object"], "db-1");
        let r = request(
            create(&[
                "alice",
                "db-1",
                "--proto",
                "ssh-proxy",
                "--login",
                "root",
                "--until",
                "2026-01-31T17:00:00Z",
                "--reason",
                "x",
            ]),
            now,
        )
        .unwrap();
        assert_eq!(r.logins.len(), 1);
        assert_eq!(r.expires_at, Some("2026-01-31T17:00:00Z".parse().unwrap()));
        assert_eq!(r.options, GrantOptions::default());
    }

    #[test]
    fn forwarding_options_are_flags() {
        let now: Timestamp = "2026-01-31T09:00:00Z".parse().unwrap();
        let r = request(
            create(&[
                "alice",
                "db-1",
                "--allow-agent-forwarding",
                "--allow-port-forwarding",
                "--reason",
                "x",
            ]),
            now,
        )
        .unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["options"],
            serde_json::json!({"agent_forwarding": true, "port_forwarding": true})
        );
    }

    #[test]
    fn impossible_requests_are_refused_locally() {
        let now: Timestamp = "2026-01-31T09:00:00Z".parse().unwrap();
        let reversed = [
            "alice",
            "db-1",
            "--from",
            "2026-02-02T00:00:00Z",
            "--until",
            "2026-02-01T00:00:00Z",
            "--reason",
            "x",
        ];
        let e = request(create(&reversed), now).unwrap_err();
        assert!(
            e.to_string().contains("--until must be after --from"),
            "{e}"
        );
        let past = [
            "alice",
            "db-1",
            "--until",
            "2026-01-30T00:00:00Z",
            "--reason",
            "x",
        ];
        assert!(request(create(&past), now)
            .unwrap_err()
            .to_string()
            .contains("past"));
        let e = request(
            create(&["alice", "db-1", "--proto", "ssh-proxy", "--reason", "x"]),
            now,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--login"), "{e}");
        let e = request(
            create(&["alice", "db-1", "--login", "root", "--reason", "x"]),
            now,
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssh-proxy"), "{e}");
        let e = CliError::from(e);
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
    }

    #[test]
    fn durations_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3600)), 3600);
    }
}
