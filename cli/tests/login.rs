//! `sallyport login` end to end with the real programs: OpenSSH's `ssh-agent` holding the
//! engineer's registered key, the real `sallyport-agent`, the real `sallyport` binary, then
//! `ssh-keygen -L` on the certificate and `ssh -J gw target` to a real `sshd` that trusts the
//! gateway's user CA, authenticating with the certificate at both hops.
//!
//! `sallyport-agent` is the dev build in `target/debug` (`cargo build -p sallyport-agent`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

// Shared with e2e.rs; this suite uses part of it.
#[allow(dead_code)]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::Harness;
use sallyport_tests::sshd::{Sshd, SshdOptions};
use tokio::process::{Child, Command};

/// A child process killed when the test ends, whatever happens.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

async fn wait_for(path: &Path, what: &str) {
    for _ in 0..200 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not create {}", path.display());
}

/// `ssh-agent -D -a SOCK`.
async fn ssh_agent(sock: &Path) -> Daemon {
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(sock, "ssh-agent").await;
    Daemon(child)
}

/// `sallyport-agent --foreground --socket SOCK`.
async fn sallyport_agent(sock: &Path) -> Daemon {
    let bin = workspace_root().join("target/debug/sallyport-agent");
    assert!(
        bin.is_file(),
        "{} missing: cargo build -p sallyport-agent",
        bin.display()
    );
    let child = Command::new(bin)
        .arg("--foreground")
        .arg("--socket")
        .arg(sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(sock, "sallyport-agent").await;
    Daemon(child)
}

async fn run(cmd: &mut Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("command timed out")
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ssh-keygen -t ed25519` into `path` (the test engineer's key, in the test's temp dir).
async fn keygen(path: &Path) -> String {
    let out = run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "engineer@laptop",
            "-f",
        ])
        .arg(path))
    .await;
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `sallyport login` with only what an engineer's shell would have.
async fn login(
    h: &Harness,
    home: &Path,
    auth_sock: &Path,
    sp_sock: &Path,
    args: &[&str],
) -> common::Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sallyport"));
    cmd.env_clear()
        .env("HOME", home)
        .env("SALLYPORT_GATEWAY", &h.url)
        .env("SALLYPORT_CA_CERT", &h.ca)
        .env("SSH_AUTH_SOCK", auth_sock)
        .env("SALLYPORT_AGENT_SOCK", sp_sock)
        .arg("login")
        .args(args);
    let out = run(&mut cmd).await;
    common::Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

#[tokio::test]
async fn login_puts_a_certificate_in_sallyport_agent_that_jumps_to_a_ca_trusting_sshd() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();

    // The engineer, their key, and a target sshd that trusts only the gateway's user CA.
    let line = keygen(&d.join("id_alice")).await;
    h.admin(&["user", "add", "alice", "--role", "engineer"])
        .await
        .ok();
    h.admin(&["key", "add", "alice", &line]).await.ok();
    // `sallyport ssh-ca` prints what targets put in TrustedUserCAKeys.
    let ca_line = h.admin(&["ssh-ca"]).await.ok().stdout.trim().to_owned();
    assert!(ca_line.starts_with("ssh-ed25519 "), "{ca_line}");
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: Vec::new(),
        trusted_user_ca: Some(ca_line.clone()),
    })
    .unwrap();
    let port = sshd.port().to_string();
    h.admin(&[
        "grant",
        "alice",
        "127.0.0.1/32",
        "--proto",
        "ssh,ssh-proxy",
        "--ports",
        &port,
        "--login",
        "root",
        "--for",
        "3h",
        "--reason",
        "INC-7",
    ])
    .await
    .ok();

    let auth_sock = d.join("ssh-agent.sock");
    let sp_sock = d.join("sallyport-agent.sock");
    let _ssh_agent = ssh_agent(&auth_sock).await;
    let _sp_agent = sallyport_agent(&sp_sock).await;

    // An agent with no registered key: a clear refusal, nothing saved.
    let stranger = d.join("id_stranger");
    keygen(&stranger).await;
    let add = run(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &auth_sock)
        .arg(&stranger))
    .await;
    assert!(add.status.success(), "{add:?}");
    login(&h, &home, &auth_sock, &sp_sock, &["--user", "alice"])
        .await
        .fails(3, "no key in your SSH agent is registered to alice");
    assert!(!home.join(".config/sallyport/profile.toml").exists());

    // With the registered key too: one login, a token saved, a certificate in sallyport-agent.
    let add = run(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &auth_sock)
        .arg(d.join("id_alice")))
    .await;
    assert!(add.status.success(), "{add:?}");
    let out = login(
        &h,
        &home,
        &auth_sock,
        &sp_sock,
        &["--user", "alice", "-o", "json"],
    )
    .await
    .ok();
    let v = out.json();
    assert_eq!(v["user"], "alice");
    assert_eq!(
        v["certificate"]["principals"],
        serde_json::json!(["alice", "root"])
    );
    assert!(!out.stdout.contains(&h.admin), "token printed");
    let profile = home.join(".config/sallyport/profile.toml");
    let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Later commands use the saved login.
    let mut who = Command::new(env!("CARGO_BIN_EXE_sallyport"));
    who.env_clear()
        .env("HOME", &home)
        .args(["whoami", "-o", "json"]);
    let who = run(&mut who).await;
    assert!(who.status.success(), "{who:?}");
    assert!(text(&who.stdout).contains("\"alice\""), "{who:?}");

    // ... and only for the gateway that issued it.
    let mut other = Command::new(env!("CARGO_BIN_EXE_sallyport"));
    other
        .env_clear()
        .env("HOME", &home)
        .env("SALLYPORT_GATEWAY", "https://127.0.0.1:1")
        .arg("whoami");
    let other = run(&mut other).await;
    assert_eq!(other.status.code(), Some(3), "{other:?}");
    assert!(text(&other.stderr).contains("another gateway"), "{other:?}");

    // The certificate, as OpenSSH's tools see it in sallyport-agent.
    let listed = run(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &sp_sock)
        .arg("-L"))
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let listed = text(&listed.stdout);
    let cert_line = listed
        .lines()
        .find(|l| l.starts_with("ssh-ed25519-cert-v01@openssh.com "))
        .unwrap_or_else(|| panic!("no certificate in sallyport-agent: {listed}"));
    std::fs::write(d.join("cert.pub"), format!("{cert_line}\n")).unwrap();
    let info = run(Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(d.join("cert.pub")))
    .await;
    assert!(info.status.success(), "{info:?}");
    let info = text(&info.stdout);
    let ca_fp = run(Command::new("ssh-keygen").arg("-l").arg("-f").arg({
        std::fs::write(d.join("ca.pub"), format!("{ca_line}\n")).unwrap();
        d.join("ca.pub")
    }))
    .await;
    let ca_fp = text(&ca_fp.stdout);
    let ca_fp = ca_fp.split_whitespace().nth(1).unwrap();
    assert!(
        info.contains(&format!("Signing CA: ED25519 {ca_fp}")),
        "{info}"
    );
    assert!(info.contains("Key ID: \"sallyport:alice:"), "{info}");
    assert!(info.contains("permit-pty"), "{info}");
    // No grant allows port forwarding: the target may not forward, yet `ssh -J` below works.
    assert!(!info.contains("permit-port-forwarding"), "{info}");
    assert!(!info.contains("permit-agent-forwarding"), "{info}");
    assert!(!info.contains("permit-X11-forwarding"), "{info}");

    // ssh -J through the gateway to the target, with the certificate at both hops.
    let gw = h.gw.ssh_addr();
    let gw_key =
        h.gw.gateway()
            .secrets()
            .ssh_host_public_key()
            .to_openssh()
            .unwrap();
    std::fs::write(
        d.join("known_hosts"),
        format!(
            "[127.0.0.1]:{} {gw_key}\n{}\n",
            gw.port(),
            sshd.known_hosts_line()
        ),
    )
    .unwrap();
    let config = d.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host gw\n  HostName 127.0.0.1\n  Port {gwport}\n  User alice\n\
             Host *\n  IdentityAgent {sock}\n  IdentitiesOnly no\n\
             UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n\
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 20\n\
             ControlMaster no\n  ControlPath none\n  LogLevel ERROR\n",
            gwport = gw.port(),
            sock = sp_sock.display(),
            dir = d.display(),
        ),
    )
    .unwrap();
    let out = run(Command::new("ssh")
        .env_clear()
        .env("HOME", &home)
        .arg("-F")
        .arg(&config)
        .args([
            "-J",
            "gw",
            "-p",
            &port,
            "root@127.0.0.1",
            "echo hello-from-target",
        ])
        .stdin(Stdio::null()))
    .await;
    assert!(
        out.status.success(),
        "ssh -J failed: {}\nsshd log:\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout).trim(), "hello-from-target");
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("ID sallyport:alice:"),
        "{log}"
    );
    h.gw.shutdown().await;
}
