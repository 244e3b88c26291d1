//! The OpenSSH side of the end-to-end suites: a dev gateway, a target `sshd`, and a client
//! configuration (`-F`) that jumps through one to the other.
//!
//! ```text
//!   ssh -F DIR/config -J gw -p SSHD root@127.0.0.1 CMD
//!     └─ ssh -W [127.0.0.1]:SSHD gw ──▶ sallyportd (127.0.0.1:GW) ──TCP──▶ sshd (127.0.0.1:SSHD)
//! ```
//!
//! Everything is on 127.0.0.1. The gateway refuses its own loopback addresses unless a grant
//! covers them explicitly, so the grants here name `127.0.0.1/32` and the target's port: the
//! explicit-grant case for a loopback destination. Each test has its own gateway, `sshd`,
//! ports, keys and temp dir, so the tests run in parallel. The client's key is written to the
//! test's temp dir (it is a test user's key, not a gateway secret).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use sallyport_tests::sshd::{Sshd, SshdOptions};
use tokio::process::{Child, Command};

use super::{Lab, TestUser};

/// A gateway, a target sshd, and an OpenSSH client configuration that jumps through one to
/// the other.
pub struct Jump {
    pub lab: Lab,
    pub sshd: Sshd,
    pub alice: TestUser,
    pub config: PathBuf,
}

impl Jump {
    /// alice with a registered key, allowed into the target's authorized_keys.
    pub async fn start() -> Jump {
        let lab = Lab::start().await;
        let alice = lab.user("alice").await;
        let laptop_line = alice.key.public_key().to_openssh().unwrap();
        let ca_line = lab.user_ca().public_key().to_openssh().unwrap();
        let sshd = Sshd::start(&SshdOptions {
            authorized_keys: vec![laptop_line],
            trusted_user_ca: Some(ca_line),
        })
        .unwrap();
        let dir = lab.dir.path().join("client");
        std::fs::create_dir(&dir).unwrap();
        write_key(&dir.join("alice"), &alice.key);
        let gw = lab.gw.ssh_addr();
        let gw_key = lab
            .gw
            .gateway()
            .secrets()
            .ssh_host_public_key()
            .to_openssh()
            .unwrap();
        std::fs::write(
            dir.join("known_hosts"),
            format!(
                "[127.0.0.1]:{} {gw_key}\n{}\n",
                gw.port(),
                sshd.known_hosts_line()
            ),
        )
        .unwrap();
        let config = dir.join("config");
        std::fs::write(
            &config,
            format!(
                "Host gw\n  HostName 127.0.0.1\n  Port {port}\n  User alice\n\
                 Host *\n  IdentityFile {dir}/alice\n  IdentitiesOnly yes\n\
                 UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 20\n\
                 KexAlgorithms curve25519-sha256\n  ControlMaster no\n  ControlPath none\n  \
                 LogLevel INFO\n",
                port = gw.port(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        Jump {
            lab,
            sshd,
            alice,
            config,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.config.parent().unwrap().to_path_buf()
    }

    /// Grants alice the target's port on 127.0.0.1 for `duration`.
    pub async fn grant_target(&self, duration: Duration) -> sallyport_core::model::GrantId {
        self.lab
            .grant(
                &self.alice.name,
                "127.0.0.1/32",
                &self.sshd.port().to_string(),
                duration,
            )
            .await
    }

    /// `ssh -F config ARGS…`, stdin piped, stdout and stderr captured.
    pub fn ssh(&self, args: &[&str]) -> Child {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// `ssh -J gw -p TARGET_PORT root@127.0.0.1 COMMAND`.
    pub fn jump(&self, command: &str) -> Child {
        let port = self.sshd.port().to_string();
        self.ssh(&["-J", "gw", "-p", &port, "root@127.0.0.1", command])
    }
}

pub fn write_key(path: &Path, key: &PrivateKey) {
    std::fs::write(path, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub async fn finish(child: Child, within: Duration) -> Output {
    tokio::time::timeout(within, child.wait_with_output())
        .await
        .expect("ssh did not finish in time")
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
