//! CI check for the Debian package (issue 7): `scripts/package-deb` builds it, and what
//! `dpkg-deb --info`, `--contents` and `-x` show is what operators need — the three binaries,
//! the committed systemd unit, the configuration as a conffile (0640), the documentation, and
//! maintainer scripts that create the `sallyport` user and its 0700 state directory without
//! starting an unconfigured daemon.
//!
//! To keep CI fast the test packages the **dev-profile binaries already in `target/debug`**
//! (`--profile dev --no-build`, no compression) instead of building a release: `cargo test`
//! holds the build lock while tests run, so a nested `cargo build` would wait for ever.
//! `scripts/test` runs `cargo build --workspace --bins` before the tests so all three exist.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BINARIES: [&str; 3] = ["sallyportd", "sallyport", "sallyport-agent"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Built {
    _dir: tempfile::TempDir,
    deb: PathBuf,
}

/// The package, built once for every test in this file.
fn package() -> &'static Path {
    static BUILT: OnceLock<Built> = OnceLock::new();
    &BUILT
        .get_or_init(|| {
            let debug = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"))
                .join("debug");
            for bin in BINARIES {
                assert!(
                    debug.join(bin).is_file(),
                    "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
                    debug.join(bin).display()
                );
            }
            let dir = tempfile::tempdir().unwrap();
            let out = run(Command::new(root().join("scripts/package-deb"))
                .args([
                    "--profile",
                    "dev",
                    "--no-build",
                    "--compression",
                    "none",
                    "--out",
                ])
                .arg(dir.path()));
            let stdout = String::from_utf8(out.stdout).unwrap();
            let deb = PathBuf::from(stdout.lines().last().unwrap().trim());
            assert!(deb.is_file(), "no .deb at {}", deb.display());
            assert!(deb.starts_with(dir.path()));
            Built { _dir: dir, deb }
        })
        .deb
}

/// `dpkg-deb --contents`: path (without the leading `.`) → (mode string, owner/group).
fn contents() -> BTreeMap<String, (String, String)> {
    let out = run(Command::new("dpkg-deb").arg("--contents").arg(package()));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let path = f[5]
                .trim_start_matches('.')
                .trim_end_matches('/')
                .to_owned();
            (path, (f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

fn control_field(field: &str) -> String {
    let out = run(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(package())
        .arg(field));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn control_names_the_package_and_its_dependencies() {
    assert_eq!(control_field("Package"), "sallyport");
    assert_eq!(control_field("Architecture"), {
        let out = run(Command::new("dpkg").arg("--print-architecture"));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    });
    let depends: Vec<String> = control_field("Depends")
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap().to_owned())
        .collect();
    for dep in ["nftables", "iproute2", "adduser", "libc6"] {
        assert!(
            depends.contains(&dep.to_owned()),
            "Depends lacks {dep}: {depends:?}"
        );
    }
    let info = run(Command::new("dpkg-deb").arg("--info").arg(package()));
    let info = String::from_utf8(info.stdout).unwrap();
    for script in ["conffiles", "control", "postinst", "prerm", "postrm"] {
        assert!(
            info.contains(script),
            "control archive lacks {script}:\n{info}"
        );
    }
}

#[test]
fn contents_have_every_file_with_its_mode() {
    let contents = contents();
    let expect = |path: &str, mode: &str| {
        let (m, owner) = contents
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the package: {:#?}", contents.keys()));
        assert_eq!(m, mode, "{path} mode");
        assert_eq!(owner, "root/root", "{path} owner");
    };
    for bin in BINARIES {
        expect(&format!("/usr/bin/{bin}"), "-rwxr-xr-x");
    }
    expect("/lib/systemd/system/sallyportd.service", "-rw-r--r--");
    // May hold the database password: not world-readable (postinst gives it group sallyport).
    expect("/etc/sallyport/sallyportd.toml", "-rw-r-----");
    for doc in [
        "copyright",
        "README.md",
        "SECURITY.md",
        "operations.md",
        "audit-events.md",
    ] {
        expect(&format!("/usr/share/doc/sallyport/{doc}"), "-rw-r--r--");
    }
    expect(
        "/usr/share/doc/sallyport/examples/target-host/install-user-ca",
        "-rwxr-xr-x",
    );
    expect(
        "/usr/share/doc/sallyport/examples/cloudformation/sallyport.yaml",
        "-rw-r--r--",
    );
    // Nothing but directories and the files above; nothing set-uid, nothing world-writable.
    for (path, (mode, _)) in &contents {
        assert!(
            !mode.contains('s') && !mode.contains('S'),
            "{path} is set-id: {mode}"
        );
        assert_ne!(
            mode.chars().nth(8),
            Some('w'),
            "{path} is world-writable: {mode}"
        );
        assert!(
            path.is_empty() || ["/usr", "/lib", "/etc"].iter().any(|p| path.starts_with(p)),
            "unexpected path {path}"
        );
    }
}

#[test]
fn extracted_files_are_the_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(package())
        .arg(dir.path()));
    let x = dir.path();
    let same = |inside: &str, committed: &str| {
        assert_eq!(
            std::fs::read(x.join(inside)).unwrap(),
            std::fs::read(root().join(committed)).unwrap(),
            "{inside} differs from {committed}"
        );
    };
    same(
        "lib/systemd/system/sallyportd.service",
        "packaging/systemd/sallyportd.service",
    );
    same(
        "etc/sallyport/sallyportd.toml",
        "packaging/sallyportd.example.toml",
    );
    same(
        "usr/share/doc/sallyport/operations.md",
        "docs/operations.md",
    );
    // The binaries run (they are whatever target/debug held; another build may have replaced
    // the files there since, so compare behaviour, not bytes).
    for bin in BINARIES {
        let out = run(Command::new(x.join("usr/bin").join(bin)).arg("--help"));
        assert!(!out.stdout.is_empty(), "{bin} --help printed nothing");
    }
    let out = run(Command::new(x.join("usr/bin/sallyportd")).arg("--version"));
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(version.contains(&control_field("Version")), "{version}");
}

#[test]
fn maintainer_scripts_create_the_user_and_do_not_start_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(package())
        .arg(dir.path()));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("conffiles").trim(), "/etc/sallyport/sallyportd.toml");
    for script in ["postinst", "prerm", "postrm"] {
        let text = read(script);
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        run(Command::new("sh").arg("-n").arg(dir.path().join(script)));
        if which("shellcheck") {
            run(Command::new("shellcheck")
                .args(["-s", "sh"])
                .arg(dir.path().join(script)));
        }
    }
    let postinst = read("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(
        postinst.contains("install -d -m 0700 -o sallyport -g sallyport /var/lib/sallyport"),
        "{postinst}"
    );
    assert!(postinst.contains("dpkg-statoverride --update --add root sallyport 0640"));
    assert!(postinst.contains("daemon-reload"));
    // Not enabled or started on a fresh install: only restarted on upgrade if it was running.
    let systemctl: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("systemctl"))
        .collect();
    assert!(
        systemctl
            .iter()
            .all(|l| !l.contains(" enable") && !l.contains(" start ")),
        "{systemctl:?}"
    );
    assert!(postinst.contains("try-restart"));
    assert!(read("prerm").contains("systemctl stop sallyportd.service"));
    // Purge keeps the journal.
    assert!(!read("postrm").contains("rm -rf /var/lib/sallyport"));
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The packaging scripts themselves parse (and pass shellcheck where it is installed).
#[test]
fn packaging_scripts_parse() {
    for script in [
        "scripts/package-deb",
        "packaging/target-host/install-user-ca",
    ] {
        let path = root().join(script);
        run(Command::new("bash").arg("-n").arg(&path));
        if which("shellcheck") {
            run(Command::new("shellcheck").arg(&path));
        }
    }
}
