//! CI check for the hardened unit `packaging/systemd/sallyportd.service` (issue 7):
//! `systemd-analyze security --offline=yes` must parse it and rate its overall exposure at
//! 2.0 or lower, and the directives the issue names must be there with the values it names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The highest exposure accepted ("OK" in systemd's words).
const MAX_EXPOSURE: f64 = 2.0;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("packaging/systemd/sallyportd.service")
}

fn systemd_analyze() -> Option<&'static str> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd); CI has it");
    }
    found.then_some("systemd-analyze")
}

/// Runs `systemd-analyze security --offline=yes UNIT` and returns the overall exposure.
fn exposure(unit: &Path) -> Result<f64, String> {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A directive systemd does not understand is reported on stderr; it would silently weaken
    // the unit, so it fails the check.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Unknown") || l.contains("Failed to parse") || l.contains("Invalid"))
        .collect();
    if !complaints.is_empty() {
        return Err(format!(
            "systemd-analyze complains:\n{}",
            complaints.join("\n")
        ));
    }
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .ok_or_else(|| format!("no 'Overall exposure level' line:\n{stdout}\n{stderr}"))?;
    // "→ Overall exposure level for sallyportd.service: 1.8 OK 🙂"
    let value = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("cannot read {line:?}"))?;
    value
        .parse()
        .map_err(|e| format!("cannot read {value:?} in {line:?}: {e}"))
}

#[test]
fn unit_exposure_is_at_most_two() {
    if systemd_analyze().is_none() {
        return;
    }
    let level = exposure(&unit_path()).unwrap();
    println!("systemd-analyze security --offline=yes sallyportd.service: {level}");
    assert!(
        level <= MAX_EXPOSURE,
        "overall exposure {level} > {MAX_EXPOSURE}: harden packaging/systemd/sallyportd.service"
    );
}

#[test]
fn a_plain_unit_fails_the_same_check() {
    // The check can fail: the same unit without its hardening rates far above 2.0.
    if systemd_analyze().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("sallyportd.service");
    std::fs::write(
        &plain,
        "[Unit]\nDescription=plain\n[Service]\nExecStart=/usr/bin/sallyportd run --config /etc/sallyport/sallyportd.toml\n",
    )
    .unwrap();
    let level = exposure(&plain).unwrap();
    assert!(
        level > MAX_EXPOSURE,
        "a unit without hardening rated {level}"
    );
}

/// The directives the issue names, with the values it names.
#[test]
fn unit_has_the_hardening_the_issue_names() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let settings: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let values = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |key: &str| -> &str {
        let v = values(key);
        assert_eq!(v.len(), 1, "{key} set {} times", v.len());
        v[0]
    };
    assert_eq!(one("User"), "sallyport");
    assert_eq!(one("DynamicUser"), "no");
    for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        let mut caps: Vec<&str> = one(key).split_whitespace().collect();
        caps.sort_unstable();
        assert_eq!(caps, ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"], "{key}");
    }
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "/dev/net/tun rw"),
        ("MemoryDenyWriteExecute", "yes"),
        ("StateDirectory", "sallyport"),
        ("LimitCORE", "0"),
    ] {
        assert_eq!(one(key), want, "{key}");
    }
    let mut families: Vec<&str> = one("RestrictAddressFamilies").split_whitespace().collect();
    families.sort_unstable();
    assert_eq!(families, ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
    assert!(
        values("SystemCallFilter").contains(&"@system-service"),
        "SystemCallFilter=@system-service"
    );
    // The state directory is the only writable path: nothing re-opens the file system.
    for key in [
        "ReadWritePaths",
        "BindPaths",
        "LogsDirectory",
        "CacheDirectory",
    ] {
        assert!(values(key).is_empty(), "{key} adds a writable path");
    }
    assert!(one("ExecStart").starts_with("/usr/bin/sallyportd run --config /etc/sallyport/"));
}
