//! The real `sallyport-agent` driven by OpenSSH's `ssh-add` and `ssh-keygen`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{fingerprint, text, wait_for, AgentProcess};

fn pubpath(key: &std::path::Path) -> String {
    format!("{}.pub", key.display())
}

#[test]
fn ssh_add_adds_lists_and_removes() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    let rsa = agent.keygen("rsa", "rsa");
    let out = agent.ssh_add(&["-t", "600", ed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = agent.ssh_add(&[rsa.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let list = agent.list();
    assert!(
        list.contains(&fingerprint(&ed.with_extension("pub"))),
        "{list}"
    );
    assert!(
        list.contains(&fingerprint(&rsa.with_extension("pub"))),
        "{list}"
    );
    assert!(
        list.contains("(ED25519)") && list.contains("(RSA)"),
        "{list}"
    );

    let keys = String::from_utf8_lossy(&agent.ssh_add(&["-L"]).stdout).into_owned();
    let ed_pub = std::fs::read_to_string(pubpath(&ed)).unwrap();
    let ed_blob = ed_pub.split_whitespace().nth(1).unwrap();
    assert!(keys.contains(ed_blob), "{keys}");

    let out = agent.ssh_add(&["-d", ed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let list = agent.list();
    assert!(
        !list.contains(&fingerprint(&ed.with_extension("pub"))),
        "{list}"
    );
    assert!(list.contains("(RSA)"));

    let out = agent.ssh_add(&["-D"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.list().is_empty());
}

#[test]
fn ssh_keygen_signs_through_the_agent() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    let rsa = agent.keygen("rsa", "rsa");
    for key in [&ed, &rsa] {
        assert!(agent.ssh_add(&[key.to_str().unwrap()]).status.success());
        // Only the agent holds the private key now.
        std::fs::remove_file(key).unwrap();
    }
    let msg = agent.dir.path().join("msg");
    std::fs::write(&msg, b"signed by sallyport-agent\n").unwrap();
    for key in [&ed, &rsa] {
        let _ = std::fs::remove_file(msg.with_extension("sig"));
        let out = agent.tool(
            "ssh-keygen",
            &[
                "-Y",
                "sign",
                "-n",
                "file",
                "-f",
                &pubpath(key),
                msg.to_str().unwrap(),
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        let signers = agent.dir.path().join("allowed");
        let pubkey = std::fs::read_to_string(pubpath(key)).unwrap();
        std::fs::write(&signers, format!("me {pubkey}")).unwrap();
        let verify = std::process::Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "file", "-I", "me", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(msg.with_extension("sig"))
            .stdin(std::fs::File::open(&msg).unwrap())
            .output()
            .unwrap();
        assert!(verify.status.success(), "{}", text(&verify));
    }
}

#[test]
fn lifetime_expiry_removes_the_key() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    let out = agent.ssh_add(&["-t", "1", ed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.list().contains("(ED25519)"));
    let gone = wait_for(Duration::from_secs(5), || agent.list().is_empty());
    let gone = gone.expect("key still listed 5 s after a 1 s lifetime");
    eprintln!("key gone {gone:?} after the list that showed it");
}

#[test]
fn lock_and_unlock_with_ssh_add() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    assert!(agent.ssh_add(&[ed.to_str().unwrap()]).status.success());
    let askpass = agent.dir.path().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\nprintf '%s\\n' \"$TEST_PASS\"\n").unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let ask = |flag: &str, pass: &str| {
        agent.tool(
            "ssh-add",
            &[flag],
            &[
                ("SSH_ASKPASS", askpass.to_str().unwrap()),
                ("SSH_ASKPASS_REQUIRE", "force"),
                ("DISPLAY", ":0"),
                ("TEST_PASS", pass),
            ],
        )
    };
    let out = ask("-x", "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.list().is_empty(), "locked agent lists nothing");
    let out = ask("-X", "wrong");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(agent.list().is_empty());
    let out = ask("-X", "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.list().contains("(ED25519)"));
}

#[test]
fn destination_constraints_are_accepted_and_unbound_signing_refused() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    let gw = agent.keygen("gw_host", "ed25519");
    let target = agent.keygen("target_host", "ed25519");
    let kh = agent.dir.path().join("known_hosts");
    let line = |name: &str, key: &std::path::Path| {
        let p = std::fs::read_to_string(pubpath(key)).unwrap();
        let mut parts = p.split_whitespace();
        format!(
            "{name} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    };
    std::fs::write(&kh, line("gw", &gw) + &line("target", &target)).unwrap();
    let out = agent.ssh_add(&[
        "-H",
        kh.to_str().unwrap(),
        "-h",
        "gw",
        "-h",
        "gw>target",
        ed.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // Listed locally (no session bound) ...
    assert!(agent.list().contains("(ED25519)"));
    // ... but a restricted key never signs on an unbound connection (as OpenSSH's agent).
    std::fs::remove_file(&ed).unwrap();
    let msg = agent.dir.path().join("msg");
    std::fs::write(&msg, b"x").unwrap();
    let out = agent.tool(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-n",
            "file",
            "-f",
            &pubpath(&ed),
            msg.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn confirm_constraint_is_refused_not_ignored() {
    let agent = AgentProcess::start();
    let ed = agent.keygen("ed", "ed25519");
    let out = agent.ssh_add(&["-c", ed.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(agent.list().is_empty());
}
