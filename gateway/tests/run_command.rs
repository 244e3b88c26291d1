//! The operator's path, with the real binary against SSM served by `moto_server`:
//! `secrets init` (and its refusal to overwrite), `check-config`, `run`, `mint-token`, and a
//! clean stop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sallyport_tests::moto::{aws_env, MotoServer};
use sallyport_tests::ports::free_port;

fn sallyportd(moto: &MotoServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sallyportd"));
    cmd.args(args)
        .envs(aws_env())
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("RUST_LOG", "info");
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stop(mut child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "sallyportd run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status}: {err}");
    err
}

#[test]
fn operator_path_against_local_ssm() {
    let moto = MotoServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = moto.endpoint_url();

    let out = ok(sallyportd(
        &moto,
        &[
            "secrets",
            "init",
            "--ssm-path",
            "/sallyport/e2e",
            "--endpoint-url",
            &endpoint,
        ],
    )
    .output()
    .unwrap());
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("created /sallyport/e2e/"))
            .count(),
        5,
        "{out}"
    );
    let again = sallyportd(
        &moto,
        &[
            "secrets",
            "init",
            "--ssm-path",
            "/sallyport/e2e",
            "--endpoint-url",
            &endpoint,
        ],
    )
    .output()
    .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("/sallyport/e2e/jwt-signing-key") && err.contains("--rotate"),
        "{err}"
    );

    let port = free_port();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let config = dir.path().join("sallyportd.toml");
    std::fs::write(
        &config,
        format!(
            "instance = \"gw-test\"\nstate_dir = \"{}\"\n[secrets]\nssm_path = \"/sallyport/e2e\"\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh_port}\"\n",
            state.display(),
            ssh_port = free_port(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let checked = ok(sallyportd(&moto, &["check-config", "--config", cfg])
        .output()
        .unwrap());
    assert!(
        checked.contains("gw-test") && checked.contains("ssm:/sallyport/e2e"),
        "{checked}"
    );

    let child = sallyportd(&moto, &["run", "--config", cfg])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the API did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(state.join("api-ca.pem").exists());
    let token = ok(sallyportd(
        &moto,
        &[
            "mint-token",
            "--config",
            cfg,
            "--user",
            "ops",
            "--create-admin",
        ],
    )
    .output()
    .unwrap());
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    let refused = sallyportd(
        &moto,
        &[
            "mint-token",
            "--config",
            cfg,
            "--user",
            "other",
            "--create-admin",
        ],
    )
    .output()
    .unwrap();
    assert!(
        !refused.status.success(),
        "--create-admin only works on an empty store"
    );
    let log = stop(child);
    assert!(
        log.contains("sallyportd started") && log.contains("sallyportd stopped"),
        "{log}"
    );

    // Missing secrets are named.
    std::fs::write(&config, format!("state_dir = \"{}\"\n[secrets]\nssm_path = \"/sallyport/none\"\nendpoint_url = \"{endpoint}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n", state.display(), free_port())).unwrap();
    let out = sallyportd(&moto, &["run", "--config", cfg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/sallyport/none/"), "{err}");
}
