//! Parsing tests: what is accepted, and that bad input fails locally with a message naming
//! the problem.

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser as _};
use sallyport_core::model::{GrantObject, Protocol, Role, Subject};

use super::*;
use crate::output::Format;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("sallyport").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Cli {
    parse(args).unwrap_or_else(|e| panic!("{args:?} should parse: {e}"))
}

/// The rendered error for `args`, which must fail.
fn fails(args: &[&str]) -> String {
    match parse(args) {
        Ok(cli) => panic!("{args:?} should fail, parsed as {cli:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
            e.to_string()
        }
    }
}

#[test]
fn grammar_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn global_flags_before_or_after_the_verb() {
    for args in [
        &["-o", "json", "user", "list"][..],
        &["user", "-o", "json", "list"],
        &["user", "list", "--output", "json"],
    ] {
        assert_eq!(ok(args).global.output, Format::Json, "{args:?}");
    }
    let cli = ok(&[
        "user",
        "list",
        "--gateway",
        "https://gw.example:8443",
        "--ca-cert",
        "/ca.pem",
    ]);
    assert_eq!(
        cli.global.gateway.unwrap().as_str(),
        "https://gw.example:8443/"
    );
    assert_eq!(cli.global.ca_cert.unwrap().to_str(), Some("/ca.pem"));
    assert_eq!(ok(&["whoami"]).global.output, Format::Table);
}

#[test]
fn plain_http_gateways_are_refused() {
    let e = fails(&["--gateway", "http://gw:8443", "whoami"]);
    assert!(e.contains("https://"), "{e}");
}

#[test]
fn user_add_takes_repeated_or_comma_separated_roles() {
    let Command::User(UserCmd::Add {
        name,
        roles,
        groups,
    }) = ok(&[
        "user",
        "add",
        "alice",
        "--role",
        "admin,auditor",
        "--role",
        "engineer",
        "--group",
        "ops",
    ])
    .command
    else {
        panic!("not user add")
    };
    assert_eq!(name.as_str(), "alice");
    assert_eq!(roles, vec![Role::Admin, Role::Auditor, Role::Engineer]);
    assert_eq!(groups.len(), 1);
    let e = fails(&["user", "add", "alice"]);
    assert!(e.contains("--role"), "{e}");
    let e = fails(&["user", "add", "alice", "--role", "root"]);
    assert!(e.contains("invalid role \"root\""), "{e}");
}

#[test]
fn bad_user_names_are_refused_locally() {
    let e = fails(&["user", "add", "Bob", "--role", "engineer"]);
    assert!(e.contains("invalid user name \"Bob\""), "{e}");
    let e = fails(&["grant", "Bob", "db-1", "--reason", "x"]);
    assert!(e.contains("invalid user name"), "{e}");
}

#[test]
fn grant_positional_form_creates() {
    let cli = ok(&[
        "grant",
        "@ops",
        "10.0.12.0/24",
        "--proto",
        "ssh,tcp",
        "--ports",
        "22,443",
        "--for",
        "8h",
        "--reason",
        "INC-42",
    ]);
    let Command::Grant(GrantCmd {
        action: None,
        create: Some(c),
    }) = cli.command
    else {
        panic!("not a grant creation")
    };
    assert_eq!(c.subject, "@ops".parse::<Subject>().unwrap());
    assert!(matches!(c.object, GrantObject::Cidr(_)));
    assert_eq!(
        c.protocols.unwrap().iter().collect::<Vec<_>>(),
        vec![Protocol::Ssh, Protocol::Tcp]
    );
    assert_eq!(c.ports.unwrap().to_string(), "22,443");
    assert_eq!(c.duration, Some(std::time::Duration::from_secs(8 * 3600)));
    assert_eq!(c.reason.as_str(), "INC-42");
    // Global flags mix in anywhere.
    let cli = ok(&["grant", "alice", "db-1", "-o", "json", "--reason", "x"]);
    assert_eq!(cli.global.output, Format::Json);
}

#[test]
fn grant_list_and_show_are_subcommands() {
    let cli = ok(&["grant", "list", "--user", "alice"]);
    let Command::Grant(GrantCmd {
        action: Some(GrantAction::List { user: Some(u) }),
        create: None,
    }) = cli.command
    else {
        panic!("not grant list")
    };
    assert_eq!(u.as_str(), "alice");
    assert!(matches!(
        ok(&["grant", "list"]).command,
        Command::Grant(GrantCmd {
            action: Some(GrantAction::List { user: None }),
            ..
        })
    ));
    let cli = ok(&["grant", "show", "6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10"]);
    assert!(matches!(
        cli.command,
        Command::Grant(GrantCmd {
            action: Some(GrantAction::Show { .. }),
            ..
        })
    ));
    let e = fails(&["grant", "show", "not-a-uuid"]);
    assert!(e.contains("expected a UUID"), "{e}");
}

#[test]
fn a_subject_named_like_a_subcommand_goes_after_double_dash() {
    let cli = ok(&["grant", "--reason", "x", "--", "list", "db-1"]);
    let Command::Grant(GrantCmd {
        action: None,
        create: Some(c),
    }) = cli.command
    else {
        panic!("not a grant creation")
    };
    assert_eq!(c.subject.to_string(), "list");
}

#[test]
fn grant_needs_subject_object_and_reason() {
    let e = fails(&["grant", "alice", "db-1"]);
    assert!(e.contains("--reason"), "{e}");
    let e = fails(&["grant", "alice"]);
    assert!(e.contains("TARGET|CIDR"), "{e}");
    let e = fails(&["grant", "alice", "db-1", "--reason", "  "]);
    assert!(e.contains("a reason is required"), "{e}");
}

#[test]
fn for_and_until_conflict() {
    let e = parse(&[
        "grant",
        "alice",
        "db-1",
        "--reason",
        "x",
        "--for",
        "8h",
        "--until",
        "2030-01-01T00:00:00Z",
    ])
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{e}");
    let e = fails(&["grant", "alice", "db-1", "--reason", "x", "--for", "soon"]);
    assert!(e.contains("not a duration"), "{e}");
    let e = fails(&[
        "grant", "alice", "db-1", "--reason", "x", "--until", "tomorrow",
    ]);
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn bad_ports_and_cidrs_are_refused_locally() {
    let e = fails(&[
        "grant", "alice", "db-1", "--reason", "x", "--ports", "70000",
    ]);
    assert!(e.contains("invalid ports \"70000\""), "{e}");
    let e = fails(&[
        "grant", "alice", "db-1", "--reason", "x", "--ports", "30-20",
    ]);
    assert!(e.contains("reversed"), "{e}");
    let e = fails(&["grant", "alice", "10.0.12.7/24", "--reason", "x"]);
    assert!(e.contains("invalid CIDR") && e.contains("host bits"), "{e}");
    let e = fails(&["grant", "alice", "10.0.300.0/24", "--reason", "x"]);
    assert!(e.contains("invalid CIDR"), "{e}");
    let e = fails(&[
        "grant", "alice", "db-1", "--reason", "x", "--proto", "telnet",
    ]);
    assert!(e.contains("invalid protocol \"telnet\""), "{e}");
    let e = fails(&[
        "grant",
        "alice",
        "db-1",
        "--reason",
        "x",
        "--login=-oProxyCommand=x",
    ]);
    assert!(e.contains("invalid login"), "{e}");
}

#[test]
fn key_add_takes_an_argument_or_a_file_not_both() {
    let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
    assert!(matches!(
        ok(&["key", "add", "alice", ed]).command,
        Command::Key(KeyCmd::Add {
            public_key: Some(_),
            ..
        })
    ));
    assert!(matches!(
        ok(&["key", "add", "alice", "--file", "/k.pub"]).command,
        Command::Key(KeyCmd::Add { file: Some(_), .. })
    ));
    fails(&["key", "add", "alice"]);
    fails(&["key", "add", "alice", ed, "--file", "/k.pub"]);
    let e = fails(&["key", "add", "alice", "ssh-ed25519 AAAA"]);
    assert!(e.contains("invalid SSH public key"), "{e}");
    let e = fails(&["key", "remove", "SHA256:nope"]);
    assert!(e.contains("fingerprint"), "{e}");
}

#[test]
fn target_add_checks_address_and_host_key() {
    ok(&["target", "add", "db-1", "--address", "10.0.12.7:22"]);
    let e = fails(&["target", "add", "db-1", "--address", "10.0.12.7"]);
    assert!(e.contains("invalid address"), "{e}");
    let e = fails(&[
        "target",
        "add",
        "db-1",
        "--address",
        "10.0.12.7:22",
        "--host-key",
        "junk",
    ]);
    assert!(e.contains("invalid SSH public key"), "{e}");
    fails(&[
        "target",
        "add",
        "db-1",
        "--address",
        "h:22",
        "--host-key",
        "k",
        "--host-key-file",
        "/f",
    ]);
    let e = fails(&["target", "add", "10.0.0.1", "--address", "10.0.0.1:22"]);
    assert!(e.contains("invalid target name"), "{e}");
}

#[test]
fn audit_search_options() {
    let cli = ok(&[
        "audit",
        "search",
        "--user",
        "alice",
        "--type",
        "access.grant",
        "--since",
        "1h",
        "--limit",
        "5",
    ]);
    let Command::Audit(AuditCmd::Search(s)) = cli.command else {
        panic!("not audit search")
    };
    assert_eq!(s.limit, 5);
    assert_eq!(
        s.since,
        Some(Since::Ago(std::time::Duration::from_secs(3600)))
    );
    let Command::Audit(AuditCmd::Search(s)) = ok(&["audit", "search"]).command else {
        panic!()
    };
    assert_eq!(s.limit, 100);
    fails(&["audit", "search", "--limit", "0"]);
    let e = fails(&["audit", "search", "--since", "last week"]);
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn help_documents_exit_codes_and_hides_the_token() {
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("8  audit verification failed"), "{help}");
    let mut cmd = Cli::command();
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_id() == "token")
        .unwrap()
        .clone();
    assert!(arg.is_hide_env_values_set());
    cmd.build();
}

#[test]
fn completions_parse() {
    assert!(matches!(
        ok(&["completions", "bash"]).command,
        Command::Completions { .. }
    ));
    fails(&["completions", "cmd.exe"]);
}
