//! The lab for the proxy-mode suites: a dev gateway, a target `sshd` registered with its pinned
//! host key, OpenSSH's own `ssh-agent` holding the engineer's key, and a client configuration.
//!
//! ```text
//!   ssh -F DIR/config -A root@db@gw CMD        (SSH_AUTH_SOCK = DIR/agent.sock, ssh-agent -D)
//!     └─▶ sallyportd (127.0.0.1:GW) ── agent channel back ──▶ one signature
//!           └─▶ sshd "db" (127.0.0.1:SSHD, host key pinned in the registry)
//! ```

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use rand::RngCore;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey};
use sallyport_core::api::{CreateGrant, CreateTarget};
use sallyport_core::model::{
    GrantId, GrantObject, GrantOptions, PortSpec, Protocol, Subject, UserName,
};
use sallyport_tests::sshd::{Sshd, SshdOptions};
use tokio::process::{Child, Command};

use super::ssh_common::jump::{finish, write_key};
use super::ssh_common::{admin, Lab, TestUser};

/// OpenSSH's `ssh-agent` in the foreground on a socket in a temp dir; killed on drop.
pub struct Agent {
    child: std::process::Child,
    pub sock: PathBuf,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (install openssh-client)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent made no socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, sock }
    }

    /// `ssh-add ARGS…` against this agent.
    pub fn add(&self, args: &[&str]) -> Output {
        std::process::Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway, a target "db", an agent holding alice's key, and a client configuration.
pub struct Proxy {
    pub lab: Lab,
    pub sshd: Sshd,
    pub alice: TestUser,
    pub agent: Agent,
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Proxy {
    /// alice's key in the agent and in the target's `authorized_keys` (for root); "db"
    /// registered with its host key; no grant yet.
    pub async fn start() -> Proxy {
        Self::start_with(true).await
    }

    /// As [`Proxy::start`]; `add_key`: whether alice's key goes into the agent now.
    pub async fn start_with(add_key: bool) -> Proxy {
        let lab = Lab::start().await;
        let alice = lab.user("alice").await;
        let laptop_line = alice.key.public_key().to_openssh().unwrap();
        let ca_line = lab.user_ca().public_key().to_openssh().unwrap();
        let sshd = Sshd::start(&SshdOptions {
            authorized_keys: vec![laptop_line.clone()],
            trusted_user_ca: Some(ca_line),
        })
        .unwrap();
        let dir = lab.dir.path().join("client");
        std::fs::create_dir(&dir).unwrap();
        write_key(&dir.join("alice"), &alice.key);
        std::fs::write(dir.join("alice.pub"), format!("{laptop_line}\n")).unwrap();
        let gw = lab.gw.ssh_addr();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{} {}\n", gw.port(), gw_key(&lab)),
        )
        .unwrap();
        let config = dir.join("config");
        std::fs::write(
            &config,
            format!(
                "Host gw\n  HostName 127.0.0.1\n  Port {port}\n\
                 Host *\n  IdentityFile {dir}/alice.pub\n  IdentitiesOnly yes\n\
                 UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 20\n\
                 ControlMaster no\n  ControlPath none\n  LogLevel INFO\n",
                port = gw.port(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let agent = Agent::start(&dir);
        if add_key {
            let out = agent.add(&[dir.join("alice").to_str().unwrap()]);
            assert!(out.status.success(), "ssh-add: {}", text(&out.stderr));
        }
        let p = Proxy {
            lab,
            sshd,
            alice,
            agent,
            dir,
            config,
        };
        p.register("db", &p.sshd, Some(p.sshd.host_key())).await;
        p
    }

    /// Registers `sshd` as target `name`, with `host_key` pinned (one OpenSSH line).
    pub async fn register(&self, name: &str, sshd: &Sshd, host_key: Option<&str>) {
        self.lab
            .control()
            .create_target(
                &admin(),
                CreateTarget {
                    name: name.parse().unwrap(),
                    address: format!("127.0.0.1:{}", sshd.port()).parse().unwrap(),
                    host_key: host_key.map(str::to_owned),
                },
            )
            .await
            .unwrap();
    }

    /// An `ssh-proxy` grant for `user` to target `name` on `sshd`'s port, as `login`.
    pub async fn grant(
        &self,
        user: &UserName,
        name: &str,
        sshd: &Sshd,
        login: &str,
        duration: Duration,
    ) -> GrantId {
        self.grant_with(user, name, sshd, login, duration, GrantOptions::default())
            .await
    }

    /// [`Proxy::grant`] with SSH options.
    pub async fn grant_with(
        &self,
        user: &UserName,
        name: &str,
        sshd: &Sshd,
        login: &str,
        duration: Duration,
        options: GrantOptions,
    ) -> GrantId {
        self.lab
            .control()
            .create_grant(
                &admin(),
                CreateGrant {
                    subject: Subject::User(user.clone()),
                    object: name.parse::<GrantObject>().unwrap(),
                    protocols: vec![Protocol::SshProxy],
                    ports: Some(sshd.port().to_string().parse::<PortSpec>().unwrap()),
                    logins: vec![login.parse().unwrap()],
                    options,
                    not_before: None,
                    expires_at: None,
                    duration_secs: Some(duration.as_secs()),
                    reason: "test".parse().unwrap(),
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Grants alice root on "db" for ten minutes.
    pub async fn grant_db(&self) -> GrantId {
        self.grant(
            &self.alice.name,
            "db",
            &self.sshd,
            "root",
            Duration::from_secs(600),
        )
        .await
    }

    /// `PROGRAM -F config ARGS…` with the agent's socket, stdin piped, output captured.
    pub fn run(&self, program: &str, args: &[&str]) -> Child {
        self.run_with_stdin(program, args, Stdio::piped())
    }

    /// `PROGRAM -F config ARGS…` reading its standard input from `stdin` (a file, say).
    pub fn run_with_stdin(&self, program: &str, args: &[&str], stdin: impl Into<Stdio>) -> Child {
        Command::new(program)
            .arg("-F")
            .arg(&self.config)
            .args(args)
            .env("SSH_AUTH_SOCK", &self.agent.sock)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// `ssh -F config ARGS…`.
    pub fn ssh(&self, args: &[&str]) -> Child {
        self.run("ssh", args)
    }

    /// Waits for `child` to end (at most a minute; the failure shows the journal).
    pub async fn finish(&self, child: Child) -> Output {
        match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
            Ok(out) => out.unwrap(),
            Err(_) => panic!(
                "ssh did not finish within 60 s; journal: {:#?}",
                self.lab.events_brief().await
            ),
        }
    }

    /// `ssh -A root@db@gw COMMAND`, to its end.
    pub async fn exec(&self, command: &str) -> Output {
        finish(
            self.ssh(&["-A", "root@db@gw", command]),
            Duration::from_secs(60),
        )
        .await
    }
}

/// The gateway's host key line.
pub fn gw_key(lab: &Lab) -> String {
    lab.gw
        .gateway()
        .secrets()
        .ssh_host_public_key()
        .to_openssh()
        .unwrap()
}

/// A user certificate for `subject` from `ca`, with `key_id` and `principals`, valid for an
/// hour.
pub fn certificate(
    subject: &PrivateKey,
    ca: &PrivateKey,
    key_id: &str,
    principals: &[&str],
) -> Certificate {
    let now = super::ssh_common::unix_now();
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut b = Builder::new(
        nonce,
        subject.public_key().key_data().clone(),
        now - 60,
        now + 3600,
    )
    .unwrap();
    b.serial(7).unwrap();
    b.key_id(key_id).unwrap();
    b.cert_type(CertType::User).unwrap();
    for p in principals {
        b.valid_principal(*p).unwrap();
    }
    b.extension("permit-pty", "").unwrap();
    b.sign(ca).unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
