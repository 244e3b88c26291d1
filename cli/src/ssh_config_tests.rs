//! `ssh-config` rendering: what is written for each kind of grant, what is left out, what a
//! hostile gateway answer cannot do, and that OpenSSH itself (`ssh -G`) reads the result.

use std::collections::BTreeMap;
use std::process::Command;

use clap::Parser as _;
use sallyport_core::api::{GatewayView, GrantView, TargetView};
use sallyport_core::model::{GrantObject, GrantStatus, Protocol, UserName};
use sallyport_core::time::Timestamp;

use super::*;
use crate::args::{Cli, Command as Verb};

const GW_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPITWS1nLghsjfxZQEojvcnbEVelkOOvZTUY4TlFYSgM host@test";
const GW_FP: &str = "SHA256:VFdP8KryP05yr1iOp8FIxgOkpkGJS8sovd6VSoKd3Us";
const WEB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl web-1 key";
const NOW: &str = "2026-01-31T09:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn gateway(address: &str) -> GatewayView {
    GatewayView {
        ssh_listen: address.to_owned(),
        ssh_host_key: GW_KEY.to_owned(),
        ssh_host_key_fingerprint: GW_FP.to_owned().try_into().unwrap(),
    }
}

fn target(name: &str, address: &str, host_key: Option<&str>) -> TargetView {
    TargetView {
        id: name.parse().unwrap(),
        address: address.parse().unwrap(),
        host_key: host_key.map(str::to_owned),
        host_key_fingerprint: None,
        created_at: ts("2026-01-01T00:00:00Z"),
    }
}

/// A grant: `n` makes the id, `object` is a target name or CIDR.
fn grant(
    n: u8,
    subject: &str,
    object: &str,
    protocols: &[Protocol],
    ports: &str,
    until: &str,
    status: GrantStatus,
) -> GrantView {
    GrantView {
        id: format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap(),
        subject: subject.parse().unwrap(),
        object: object.parse().unwrap(),
        protocols: protocols.to_vec(),
        ports: ports.parse().unwrap(),
        logins: Vec::new(),
        options: Default::default(),
        not_before: ts("2026-01-31T08:00:00Z"),
        expires_at: ts(until),
        reason: "INC-42".parse().unwrap(),
        granted_by: "admin".parse().unwrap(),
        created_at: ts("2026-01-31T08:00:00Z"),
        status,
        revoked_at: None,
        revoked_by: None,
    }
}

const SSH: &[Protocol] = &[Protocol::Ssh];
const ACTIVE: GrantStatus = GrantStatus::Active;
const UNTIL: &str = "2026-01-31T17:00:00Z";

/// A world with one of everything: two grants to one target (own and group), a target on
/// another port with a pinned key, a grant that misses the SSH port, two networks, and grants
/// that must be left out (expired, revoked, pending, not ssh, unregistered target).
fn world() -> (Vec<GrantView>, Vec<TargetView>) {
    let grants = vec![
        grant(1, "alice", "db-1", SSH, "22", UNTIL, ACTIVE),
        grant(2, "@ops", "db-1", SSH, "22", "2026-01-31T20:00:00Z", ACTIVE),
        grant(3, "alice", "web-1", SSH, "2200", UNTIL, ACTIVE),
        grant(4, "@ops", "cache-1", SSH, "6379", UNTIL, ACTIVE),
        grant(5, "alice", "10.0.12.0/24", SSH, "22", UNTIL, ACTIVE),
        grant(6, "alice", "10.1.0.0/20", SSH, "2222-2223", UNTIL, ACTIVE),
        grant(7, "alice", "old-1", SSH, "22", UNTIL, GrantStatus::Expired),
        grant(8, "alice", "rev-1", SSH, "22", UNTIL, GrantStatus::Revoked),
        grant(
            9,
            "alice",
            "later-1",
            SSH,
            "22",
            UNTIL,
            GrantStatus::Pending,
        ),
        grant(10, "alice", "vpn-1", &[Protocol::Tcp], "22", UNTIL, ACTIVE),
        grant(11, "alice", "gone-1", SSH, "22", UNTIL, ACTIVE),
        grant(
            12,
            "alice",
            "proxy-1",
            &[Protocol::SshProxy],
            "22",
            UNTIL,
            ACTIVE,
        ),
    ];
    let targets = vec![
        target("db-1", "10.0.12.7:22", None),
        target("web-1", "web-1.internal:2200", Some(WEB_KEY)),
        target("cache-1", "10.0.13.5:22", None),
        target("old-1", "10.0.13.6:22", None),
        target("rev-1", "10.0.13.7:22", None),
        target("later-1", "10.0.13.8:22", None),
        target("vpn-1", "10.0.13.9:22", None),
        target("proxy-1", "10.0.13.10:22", None),
    ];
    (grants, targets)
}

fn alias(s: &str) -> HostAlias {
    s.parse().unwrap()
}

fn plan_with(
    gw: &GatewayView,
    grants: &[GrantView],
    targets: &[TargetView],
    login: Option<&str>,
) -> Result<Plan, PlanError> {
    let login: Option<Login> = login.map(|l| l.parse().unwrap());
    let alice: UserName = "alice".parse().unwrap();
    Plan::build(Inputs {
        alias: &alias("sallyport"),
        caller: &alice,
        gateway: gw,
        api_host: Some("gw.example.com"),
        grants,
        targets,
        login: login.as_ref(),
        identity_file: None,
    })
}

fn full_plan() -> Plan {
    let (grants, targets) = world();
    plan_with(
        &gateway("127.0.0.1:2222"),
        &grants,
        &targets,
        Some("ubuntu"),
    )
    .unwrap()
}

const API: &str = "https://127.0.0.1:8443/";

const EXPECTED: &str = "\
# sallyport ssh-config for alice from https://127.0.0.1:8443/ at 2026-01-31T09:00:00Z.
# Grants expire: run it again when yours change.
#
# Add these lines to ~/.ssh/known_hosts (host keys as the gateway's API reports them):
#   sallyport ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPITWS1nLghsjfxZQEojvcnbEVelkOOvZTUY4TlFYSgM
#   [web-1]:2200 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
# The gateway's host key fingerprint is SHA256:VFdP8KryP05yr1iOp8FIxgOkpkGJS8sovd6VSoKd3Us.
# No host key is pinned at the gateway for cache-1, db-1: check it with the host's owner.

# The gateway (jump mode): `ssh -J sallyport HOST`, or ProxyJump as below.
Host sallyport
    HostName 127.0.0.1
    Port 2222
    User alice
    HostKeyAlias sallyport
    StrictHostKeyChecking yes
    IdentitiesOnly yes
    ForwardAgent no
    ForwardX11 no

# cache-1 (10.0.13.5:22): grant 00000000-0000-4000-8000-000000000004, until 2026-01-31T17:00:00Z, covers ports 6379 but not its SSH port 22.
#   Forward one instead: ssh -N -L 6379:cache-1:6379 sallyport

# db-1 (10.0.12.7:22): grants 00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000002, until 2026-01-31T20:00:00Z.
Host db-1
    HostName db-1
    Port 22
    User ubuntu
    ProxyJump sallyport

# web-1 (web-1.internal:2200): grant 00000000-0000-4000-8000-000000000003, until 2026-01-31T17:00:00Z.
Host web-1
    HostName web-1
    Port 2200
    User ubuntu
    ProxyJump sallyport

# 10.0.12.0/24 (ports 22): grant 00000000-0000-4000-8000-000000000005, until 2026-01-31T17:00:00Z.
# Any address in it, through the gateway: ssh -J sallyport ubuntu@10.0.12.1
# or uncomment to send every address in it through the gateway:
# Host 10.0.12.*
#     ProxyJump sallyport

# 10.1.0.0/20 (ports 2222-2223): grant 00000000-0000-4000-8000-000000000006, until 2026-01-31T17:00:00Z.
# Any address in it, through the gateway: ssh -J sallyport -p 2222 ubuntu@10.1.0.1

# Granted but not registered as targets (the gateway refuses them): gone-1.
";

#[test]
fn renders_every_kind_of_grant() {
    let text = render(&full_plan(), ts(NOW), API);
    assert_eq!(text, EXPECTED, "\n{text}");
}

#[test]
fn only_active_ssh_grants_count() {
    let plan = full_plan();
    let names: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["cache-1", "db-1", "web-1"]);
    let nets: Vec<&str> = plan.networks.iter().map(|n| n.cidr.as_str()).collect();
    assert_eq!(nets, ["10.0.12.0/24", "10.1.0.0/20"]);
    assert_eq!(plan.unregistered.len(), 1);
    let cache = &plan.targets[0];
    assert!(!cache.ssh_port_granted);
    assert!(plan.targets[1].ssh_port_granted && plan.targets[2].ssh_port_granted);
}

#[test]
fn the_json_view_has_the_structure() {
    let v = serde_json::to_value(full_plan()).unwrap();
    assert_eq!(v["gateway"]["alias"], "sallyport");
    assert_eq!(v["gateway"]["host_name"], "127.0.0.1");
    assert_eq!(v["gateway"]["port"], 2222);
    assert_eq!(v["gateway"]["user"], "alice");
    assert_eq!(v["gateway"]["host_key_fingerprint"], GW_FP);
    assert_eq!(
        v["gateway"]["known_hosts"],
        "sallyport ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPITWS1nLghsjfxZQEojvcnbEVelkOOvZTUY4TlFYSgM"
    );
    let db = &v["targets"][1];
    assert_eq!(db["name"], "db-1");
    assert_eq!(db["address"], "10.0.12.7:22");
    assert_eq!(db["port"], 22);
    assert_eq!(db["user"], "ubuntu");
    assert_eq!(db["grants"].as_array().unwrap().len(), 2);
    assert_eq!(db["expires_at"], "2026-01-31T20:00:00Z");
    assert_eq!(db["known_hosts"], serde_json::Value::Null);
    assert_eq!(v["networks"][0]["host_pattern"], "10.0.12.*");
    assert_eq!(v["networks"][1]["host_pattern"], serde_json::Value::Null);
    assert_eq!(v["networks"][1]["port"], 2222);
    assert_eq!(v["unregistered"], serde_json::json!(["gone-1"]));
}

#[test]
fn no_grants_still_gives_the_gateway() {
    let plan = plan_with(&gateway("127.0.0.1:2222"), &[], &[], None).unwrap();
    let text = render(&plan, ts(NOW), API);
    assert!(text.contains("\nHost sallyport\n"), "{text}");
    assert!(text.contains("# No active ssh grant reaches you"), "{text}");
    assert!(!text.contains("    ProxyJump"), "{text}");
    assert!(!text.contains("    User ubuntu"), "{text}");
}

#[test]
fn the_gateway_address_is_taken_from_the_api_url_when_unspecified() {
    let plan = plan_with(&gateway("0.0.0.0:22"), &[], &[], None).unwrap();
    assert_eq!(plan.gateway.host_name, "gw.example.com");
    assert_eq!(plan.gateway.port, 22);
    let plan = plan_with(&gateway("[::]:2222"), &[], &[], None).unwrap();
    assert_eq!(plan.gateway.host_name, "gw.example.com");
    let plan = plan_with(&gateway("[2001:db8::7]:22"), &[], &[], None).unwrap();
    assert_eq!(plan.gateway.host_name, "2001:db8::7");
    let plan = plan_with(&gateway("SSH.Example.com:22"), &[], &[], None).unwrap();
    assert_eq!(plan.gateway.host_name, "ssh.example.com");

    assert_eq!(api_host(Some("[::1]")).unwrap(), "::1");
    assert_eq!(api_host(Some("10.0.0.1")).unwrap(), "10.0.0.1");
    assert_eq!(api_host(Some("0.0.0.0")), Err(PlanError::NoHost));
    assert_eq!(api_host(Some("bad host")), Err(PlanError::NoHost));
    assert_eq!(api_host(None), Err(PlanError::NoHost));
}

#[test]
fn a_hostile_gateway_answer_cannot_inject_directives() {
    let nl = gateway("127.0.0.1:2222\n    ProxyCommand sh -c evil");
    assert!(matches!(
        plan_with(&nl, &[], &[], None),
        Err(PlanError::Address(_))
    ));
    let mut key = gateway("127.0.0.1:2222");
    key.ssh_host_key = format!("{GW_KEY}\nHost *\n    ProxyCommand evil");
    assert!(matches!(
        plan_with(&key, &[], &[], None),
        Err(PlanError::HostKey(_))
    ));
    // The comment is free text: it is dropped, not written.
    let mut comment = gateway("127.0.0.1:2222");
    comment.ssh_host_key = format!("{GW_KEY}\r ProxyCommand evil");
    if let Ok(plan) = plan_with(&comment, &[], &[], None) {
        let text = render(&plan, ts(NOW), API);
        assert!(!text.contains("evil") && !text.contains('\r'), "{text}");
    }
    let mut fp = gateway("127.0.0.1:2222");
    fp.ssh_host_key_fingerprint = "SHA256:T1gHBmezYSIRvjNkDEJ8GRmIha8Q+61Ejorvnqm9Ceo"
        .to_owned()
        .try_into()
        .unwrap();
    assert!(matches!(
        plan_with(&fp, &[], &[], None),
        Err(PlanError::FingerprintMismatch { .. })
    ));
    // A target's key with a hostile comment loses the comment.
    let targets = [target(
        "web-1",
        "10.0.0.9:22",
        Some(&format!("{WEB_KEY} evil")),
    )];
    let grants = [grant(1, "alice", "web-1", SSH, "22", UNTIL, ACTIVE)];
    let plan = plan_with(&gateway("127.0.0.1:2222"), &grants, &targets, None).unwrap();
    assert!(!render(&plan, ts(NOW), API).contains("evil"));
}

#[test]
fn a_target_named_like_the_alias_is_refused() {
    let targets = [target("sallyport", "10.0.0.9:22", None)];
    let grants = [grant(1, "alice", "sallyport", SSH, "22", UNTIL, ACTIVE)];
    assert_eq!(
        plan_with(&gateway("127.0.0.1:2222"), &grants, &targets, None),
        Err(PlanError::AliasCollision("sallyport".into()))
    );
}

#[test]
fn host_patterns_are_exact_or_absent() {
    let p = |net: &str| {
        let GrantObject::Cidr(net) = net.parse().unwrap() else {
            panic!("{net} is not a CIDR")
        };
        host_pattern(net.network(), net.prefix_len())
    };
    assert_eq!(p("10.0.12.0/24").as_deref(), Some("10.0.12.*"));
    assert_eq!(p("10.7.0.0/16").as_deref(), Some("10.7.*"));
    assert_eq!(p("10.0.0.0/8").as_deref(), Some("10.*"));
    assert_eq!(p("10.0.12.7/32").as_deref(), Some("10.0.12.7"));
    assert_eq!(p("10.0.12.0/25"), None);
    assert_eq!(p("0.0.0.0/0"), None);
    assert_eq!(p("2001:db8::/64"), None);
    assert_eq!(p("2001:db8::1/128").as_deref(), Some("2001:db8::1"));
}

#[test]
fn aliases_and_identity_files_are_checked() {
    for good in ["sallyport", "gw-prod.eu_1", "GW"] {
        assert!(good.parse::<HostAlias>().is_ok(), "{good}");
    }
    for bad in [
        "",
        "-gw",
        "gw prod",
        "gw*",
        "!gw",
        "gw,x",
        "gw#",
        &"a".repeat(64),
    ] {
        assert!(bad.parse::<HostAlias>().is_err(), "{bad:?}");
    }
    assert!(identity_file("~/.ssh/id_ed25519").is_ok());
    assert!(identity_file("").is_err());
    assert!(identity_file("-oProxyCommand=x").is_err());
    assert!(identity_file("a\"b").is_err());
    assert!(identity_file("a\nIdentityFile b").is_err());
    assert_eq!(quoted("/home/a b/key"), "\"/home/a b/key\"");
    assert_eq!(quoted("~/.ssh/id"), "~/.ssh/id");
}

#[test]
fn the_verb_parses() {
    let cli = Cli::try_parse_from(["sallyport", "ssh-config"]).unwrap();
    let Verb::SshConfig(args) = cli.command else {
        panic!("{cli:?}")
    };
    assert_eq!(args.gateway_alias.as_str(), "sallyport");
    assert!(args.user.is_none() && args.identity_file.is_none());
    let cli = Cli::try_parse_from([
        "sallyport",
        "ssh-config",
        "--gateway-alias",
        "gw-prod",
        "--user",
        "ubuntu",
        "--identity-file",
        "/k/id.pub",
        "-o",
        "json",
    ])
    .unwrap();
    let Verb::SshConfig(args) = cli.command else {
        panic!("{cli:?}")
    };
    assert_eq!(args.gateway_alias.as_str(), "gw-prod");
    assert_eq!(args.user.unwrap().to_string(), "ubuntu");
    assert_eq!(args.identity_file.as_deref(), Some("/k/id.pub"));
    for bad in [
        &["ssh-config", "--gateway-alias", "a b"][..],
        &["ssh-config", "--user", "-root"],
        &["ssh-config", "--identity-file", "-x"],
    ] {
        let e = Cli::try_parse_from(std::iter::once("sallyport").chain(bad.iter().copied()))
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad:?}");
    }
}

/// `ssh -G -F FILE HOST`: OpenSSH's own reading of the configuration, as `key -> value`.
fn ssh_g(config: &std::path::Path, host: &str) -> BTreeMap<String, String> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg(host)
        .env_clear()
        .env("HOME", config.parent().unwrap())
        .output()
        .expect("ssh (Debian package openssh-client) must be installed; scripts/test installs it");
    assert!(
        out.status.success(),
        "ssh -G {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn openssh_reads_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = full_plan();
    plan.gateway.identity_file = Some("/keys/my key.pub".to_owned());
    let text = render(&plan, ts(NOW), API);
    let config = dir.path().join("config");
    std::fs::write(&config, &text).unwrap();

    let gw = ssh_g(&config, "sallyport");
    assert_eq!(gw["hostname"], "127.0.0.1");
    assert_eq!(gw["port"], "2222");
    assert_eq!(gw["user"], "alice");
    assert_eq!(gw["hostkeyalias"], "sallyport");
    assert_eq!(gw["stricthostkeychecking"], "true");
    assert_eq!(gw["identitiesonly"], "yes");
    assert_eq!(gw["identityfile"], "/keys/my key.pub");
    assert_eq!(gw["forwardagent"], "no");
    assert!(!gw.contains_key("proxyjump"), "{gw:?}");

    let db = ssh_g(&config, "db-1");
    assert_eq!(db["hostname"], "db-1");
    assert_eq!(db["port"], "22");
    assert_eq!(db["user"], "ubuntu");
    assert_eq!(db["proxyjump"], "sallyport");
    assert!(!db.contains_key("hostkeyalias"), "{db:?}");
    let web = ssh_g(&config, "web-1");
    assert_eq!(web["port"], "2200");
    assert_eq!(web["proxyjump"], "sallyport");

    // What is only a comment stays one.
    let cache = ssh_g(&config, "cache-1");
    assert!(!cache.contains_key("proxyjump"), "{cache:?}");
    let net = ssh_g(&config, "10.0.12.7");
    assert!(!net.contains_key("proxyjump"), "{net:?}");
    // Uncommented as the comment says, the pattern sends the network through the gateway.
    let enabled = text
        .replace("# Host 10.0.12.*", "Host 10.0.12.*")
        .replace("#     ProxyJump", "    ProxyJump");
    std::fs::write(&config, enabled).unwrap();
    let net = ssh_g(&config, "10.0.12.7");
    assert_eq!(net["proxyjump"], "sallyport");
    assert_eq!(net["hostname"], "10.0.12.7");

    // The known_hosts lines from the header are what ssh-keygen finds under those names.
    let known: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .filter(|l| l.contains(" ssh-"))
        .map(|l| format!("{l}\n"))
        .collect();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, known).unwrap();
    for name in ["sallyport", "[web-1]:2200"] {
        let found = Command::new("ssh-keygen")
            .arg("-F")
            .arg(name)
            .arg("-f")
            .arg(&known_hosts)
            .output()
            .unwrap();
        assert!(
            found.status.success() && !found.stdout.is_empty(),
            "{name} not in known_hosts: {}",
            String::from_utf8_lossy(&found.stderr)
        );
    }
}
