//! The harness itself: the PostgreSQL and moto servers it starts are real, reachable, configured
//! as documented, and gone when their owner is — including when the test process is killed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::types::ParameterType;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sallyport_tests::moto::{aws_env, MotoServer};
use sallyport_tests::ports::free_port;
use sallyport_tests::postgres::PgServer;
use sqlx::{Connection, PgConnection};

async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(url).await
}

/// `(current_user, current_database)` of a connection.
async fn whoami(conn: &mut PgConnection) -> (String, String) {
    sqlx::query_as("SELECT current_user::text, current_database()::text")
        .fetch_one(conn)
        .await
        .unwrap()
}

fn port_is_open(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

/// Polls `cond` until it holds or `limit` passes.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(100));
    }
    cond()
}

#[test]
fn free_ports_differ() {
    let a = free_port();
    let b = free_port();
    assert_ne!(a, b);
}

#[tokio::test]
async fn plain_server_logs_in_with_password_and_runs_queries() {
    let pg = PgServer::start().unwrap();
    let url = pg.url();
    assert!(
        url.starts_with("postgres://sallyport:"),
        "unexpected url {url}"
    );
    assert!(
        url.ends_with(&format!("@127.0.0.1:{}/sallyport", pg.port())),
        "{url}"
    );
    assert_eq!(pg.ca_cert_path(), None);

    let mut conn = connect(&url).await.unwrap();
    assert_eq!(
        whoami(&mut conn).await,
        ("sallyport".to_owned(), "sallyport".to_owned())
    );
    let sum: i64 = sqlx::query_scalar("SELECT $1::int8 + 1")
        .bind(41_i64)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(sum, 42);
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!superuser, "tests must not log in as a superuser");
    conn.close().await.unwrap();

    // The password is really checked.
    let (head, tail) = url.split_once('@').unwrap();
    let wrong = format!("{head}x@{tail}");
    let err = connect(&wrong).await.unwrap_err();
    assert!(
        err.to_string().contains("password"),
        "unexpected error: {err}"
    );
    // And the superuser cannot log in over TCP at all.
    let superuser_url = format!("postgres://postgres@{tail}");
    assert!(connect(&superuser_url).await.is_err());
}

#[tokio::test]
async fn fresh_databases_are_separate_and_owned_by_sallyport() {
    let pg = PgServer::shared().unwrap();
    let first = pg.fresh_database().unwrap();
    let second = pg.fresh_database().unwrap();
    assert_ne!(first, second);

    let mut a = connect(&first).await.unwrap();
    let mut b = connect(&second).await.unwrap();
    let (user, db_a) = whoami(&mut a).await;
    assert_eq!(user, "sallyport");
    assert_ne!(db_a, whoami(&mut b).await.1);

    // The owner can create tables in its database, and they stay in that database.
    sqlx::query("CREATE TABLE marker (id int8 PRIMARY KEY)")
        .execute(&mut a)
        .await
        .unwrap();
    let in_b: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'marker'",
    )
    .fetch_one(&mut b)
    .await
    .unwrap();
    assert_eq!(in_b, 0);
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(&mut b)
    .await
    .unwrap();
    assert_eq!(owner, "sallyport");
}

#[tokio::test]
async fn shared_server_is_started_once() {
    let a = PgServer::shared().unwrap();
    let b = PgServer::shared().unwrap();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.port(), b.port());
}

#[tokio::test]
async fn tls_server_verifies_with_its_ca() {
    let pg = PgServer::shared_tls().unwrap();
    let ca = pg.ca_cert_path().expect("a TLS server has a CA");
    assert!(ca.is_file());
    let url = pg.fresh_database().unwrap();
    assert!(url.contains("@localhost:"), "{url}");
    assert!(url.contains("sslmode=verify-full"), "{url}");
    assert!(
        url.contains(&format!("sslrootcert={}", ca.display())),
        "{url}"
    );

    let mut conn = connect(&url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ssl, "connection is not encrypted");
}

/// PEM of a CA that did not sign anything the server has.
fn unrelated_ca_pem() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "sallyport test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test]
async fn tls_server_is_rejected_with_another_ca() {
    let pg = PgServer::shared_tls().unwrap();
    let url = pg.fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, unrelated_ca_pem()).unwrap();
    let ca = pg.ca_cert_path().unwrap();
    let bad = url.replace(&ca.display().to_string(), &other.display().to_string());
    assert_ne!(bad, url);

    let err = connect(&bad).await.unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.to_lowercase().contains("cert") || text.contains("Tls"),
        "expected a certificate error, got {text}"
    );
    // The right CA still works, so the failure above was the CA's doing.
    connect(&url).await.unwrap();
}

#[tokio::test]
async fn tls_server_refuses_unencrypted_logins() {
    let pg = PgServer::shared_tls().unwrap();
    let url = pg.url();
    let plain = format!("{}?sslmode=disable", url.split_once('?').unwrap().0);
    let err = connect(&plain).await.unwrap_err();
    assert!(
        err.to_string().contains("pg_hba.conf"),
        "unexpected error: {err}"
    );
}

#[test]
fn dropping_a_server_stops_it_and_removes_its_files() {
    let pg = PgServer::start_tls().unwrap();
    let port = pg.port();
    let dir = pg.ca_cert_path().unwrap().parent().unwrap().to_owned();
    assert!(port_is_open(port));
    assert!(dir.join("server.key").is_file());
    drop(pg);
    assert!(!port_is_open(port), "postgres still listens on {port}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

fn ssm_client(moto: &MotoServer) -> aws_sdk_ssm::Client {
    let env: std::collections::HashMap<_, _> = aws_env().into_iter().collect();
    let credentials = Credentials::new(
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        None,
        None,
        "sallyport-tests",
    );
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env["AWS_REGION"]))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(credentials)
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

#[tokio::test]
async fn moto_serves_ssm_secure_strings() {
    let moto = MotoServer::start().unwrap();
    assert_eq!(
        moto.endpoint_url(),
        format!("http://127.0.0.1:{}", moto.port())
    );
    let ssm = ssm_client(&moto);
    ssm.put_parameter()
        .name("/sallyport/test/secret")
        .value("s3cret")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_parameter()
        .name("/sallyport/test/secret")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameter().and_then(|p| p.value()), Some("s3cret"));

    let missing = ssm.get_parameter().name("/sallyport/none").send().await;
    assert!(missing.is_err(), "moto invented a parameter");
}

#[test]
fn dropping_moto_stops_it() {
    let moto = MotoServer::start().unwrap();
    let port = moto.port();
    let log = moto.log_path();
    assert!(port_is_open(port));
    drop(moto);
    assert!(!port_is_open(port), "moto_server still listens on {port}");
    assert!(!log.exists(), "{} left behind", log.display());
}

/// Set for the copy of this test binary that `servers_die_with_the_test_process` starts.
const CHILD_ENV: &str = "SALLYPORT_HARNESS_CHILD";

/// Not a test of its own: the body of the child process below. Starts the shared PostgreSQL
/// server and a moto server, reports where they are, and waits to be killed.
#[test]
#[ignore = "the child process of servers_die_with_the_test_process"]
fn child_holding_servers() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let pg = PgServer::shared_tls().unwrap();
    let moto = MotoServer::start().unwrap();
    let pg_dir = pg.ca_cert_path().unwrap().parent().unwrap().to_owned();
    println!(
        "READY {} {} {} {}",
        pg.port(),
        pg_dir.display(),
        moto.port(),
        moto.log_path().display()
    );
    sleep(Duration::from_secs(300));
}

#[test]
fn servers_die_with_the_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_holding_servers",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The test runner prints "test NAME ... " before the test's own output.
            if let Some((_, rest)) = line.split_once("READY ") {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(180));
    // SIGKILL: no destructor, no unwinding — only the kernel closing the process's pipes.
    child.kill().unwrap();
    child.wait().unwrap();
    let ready = ready.expect("the child did not report its servers");
    let fields: Vec<&str> = ready.split(' ').collect();
    let [pg_port, pg_dir, moto_port, moto_log] = fields[..] else {
        panic!("unexpected report {ready:?}");
    };
    let (pg_port, moto_port): (u16, u16) = (pg_port.parse().unwrap(), moto_port.parse().unwrap());
    let (pg_dir, moto_log) = (PathBuf::from(pg_dir), PathBuf::from(moto_log));

    assert!(
        eventually(Duration::from_secs(30), || !port_is_open(pg_port)),
        "postgres outlived its test process"
    );
    assert!(
        eventually(Duration::from_secs(30), || !pg_dir.exists()),
        "{} outlived its test process",
        pg_dir.display()
    );
    assert!(
        eventually(Duration::from_secs(30), || !port_is_open(moto_port)),
        "moto_server outlived its test process"
    );
    let moto_dir = moto_log.parent().unwrap_or(Path::new("/nonexistent"));
    assert!(
        eventually(Duration::from_secs(30), || !moto_dir.exists()),
        "{} outlived its test process",
        moto_dir.display()
    );
}
