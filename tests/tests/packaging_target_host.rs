//! The target-host setup against the real OpenSSH server (issue 5 item 9, issue 7 item 2):
//! `packaging/target-host/install-user-ca` installs a user CA and principals files and its
//! `sshd_config` drop-in; a real `sshd` with that configuration then accepts a certificate from
//! that CA for a listed principal and refuses one for another principal or from another CA.
//! Bad input (a private key, garbage, an unknown account) is refused before anything is written.
//!
//! Everything lives in a temp dir (`--ssh-dir`); the host's own /etc/ssh is never touched. The
//! test keys (a throw-away CA and user key) are made here and removed with the temp dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sallyport_tests::ports::free_port;

const SSHD: &str = "/usr/sbin/sshd";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("packaging/target-host/install-user-ca")
}

fn keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_key(path: &Path, comment: &str) {
    keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        path.to_str().unwrap(),
    ]);
}

/// Signs `user.pub` with `ca` for `principal`; returns the certificate's path.
fn sign(dir: &Path, ca: &str, principal: &str, name: &str) -> PathBuf {
    let public = dir.join(format!("{name}.pub"));
    std::fs::copy(dir.join("user.pub"), &public).unwrap();
    keygen(&[
        "-q",
        "-s",
        dir.join(ca).to_str().unwrap(),
        "-I",
        &format!("sallyport:{principal}:test"),
        "-n",
        principal,
        "-V",
        "-5m:+1h",
        public.to_str().unwrap(),
    ]);
    dir.join(format!("{name}-cert.pub"))
}

fn install(ssh_dir: &Path, args: &[&str]) -> Output {
    Command::new(script())
        .args(args)
        .arg("--ssh-dir")
        .arg(ssh_dir)
        .arg("--no-reload")
        .output()
        .unwrap()
}

/// sshd in the foreground; killed and reaped on drop (also when the test panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn login(dir: &Path, port: u16, cert: &Path) -> Output {
    Command::new("ssh")
        .env_remove("SSH_AUTH_SOCK")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"])
        .arg("-i")
        .arg(dir.join("user"))
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .args([
            "-p",
            &port.to_string(),
            "root@127.0.0.1",
            "echo",
            "logged-in",
        ])
        .output()
        .unwrap()
}

#[test]
fn installed_ca_lets_sshd_accept_exactly_the_listed_principals() {
    assert!(
        Path::new(SSHD).is_file(),
        "{SSHD} not found: install openssh-server (scripts/test --deps-only does)"
    );
    std::fs::create_dir_all("/run/sshd").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ssh_dir = dir.join("ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    new_key(&dir.join("ca"), "test-user-ca");
    new_key(&dir.join("other-ca"), "another-ca");
    new_key(&dir.join("user"), "engineer");
    new_key(&dir.join("host"), "target-host");
    let port = free_port();
    std::fs::write(
        ssh_dir.join("sshd_config"),
        format!(
            "Include {ssh}/sshd_config.d/*.conf\nPort {port}\nListenAddress 127.0.0.1\n\
             HostKey {host}\nPidFile none\nStrictModes no\nUsePAM no\nAuthorizedKeysFile none\n\
             LogLevel VERBOSE\n",
            ssh = ssh_dir.display(),
            host = dir.join("host").display(),
        ),
    )
    .unwrap();

    // Refused before anything is written: a private key, garbage, an unknown account.
    for (args, why) in [
        (
            vec![
                "--from-file",
                dir.join("ca").to_str().unwrap(),
                "--login",
                "root",
            ],
            "private key",
        ),
        (
            vec!["--from-file", "/etc/hostname", "--login", "root"],
            "not a key",
        ),
        (
            vec![
                "--from-file",
                dir.join("ca.pub").to_str().unwrap(),
                "--login",
                "no-such-account-x",
            ],
            "unknown account",
        ),
        (
            vec!["--from-file", dir.join("ca.pub").to_str().unwrap()],
            "no --login",
        ),
    ] {
        let out = install(&ssh_dir, &args);
        assert!(!out.status.success(), "{why}: accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("install-user-ca: "),
            "{why}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !ssh_dir.join("sallyport_user_ca.pub").exists(),
            "{why}: wrote the CA"
        );
    }

    // Account root accepts certificates for the principal alice.
    let ca_pub = dir.join("ca.pub");
    let out = install(
        &ssh_dir,
        &[
            "--from-file",
            ca_pub.to_str().unwrap(),
            "--login",
            "root=alice",
        ],
    );
    assert!(
        out.status.success(),
        "install-user-ca failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(ssh_dir.join("sallyport_user_ca.pub")).unwrap(),
        std::fs::read_to_string(&ca_pub).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(ssh_dir.join("sallyport_principals/root")).unwrap(),
        "alice\n"
    );
    let dropin = std::fs::read_to_string(ssh_dir.join("sshd_config.d/sallyport.conf")).unwrap();
    assert!(
        dropin.contains(&format!(
            "TrustedUserCAKeys {}/sallyport_user_ca.pub",
            ssh_dir.display()
        )),
        "{dropin}"
    );

    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let _server = Server(
        Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(ssh_dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sshd_log = || std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();

    let ok = login(dir, port, &sign(dir, "ca", "alice", "alice"));
    assert!(
        ok.status.success() && String::from_utf8_lossy(&ok.stdout).contains("logged-in"),
        "a certificate for alice from the installed CA was refused: {}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        sshd_log()
    );
    let other_principal = login(dir, port, &sign(dir, "ca", "mallory", "mallory"));
    assert!(
        !other_principal.status.success(),
        "a certificate for an unlisted principal was accepted"
    );
    let other_ca = login(dir, port, &sign(dir, "other-ca", "alice", "forged"));
    assert!(
        !other_ca.status.success(),
        "a certificate from another CA was accepted"
    );
}
