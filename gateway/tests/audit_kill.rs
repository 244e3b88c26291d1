//! At-least-once across a crash: `sallyportd run` is killed with SIGKILL while a batch is in
//! flight (moto has stored it, the answer is held back by the fault proxy), then started again.
//! Every journal record reaches CloudWatch, and a record that arrives twice has the same id.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;
use sallyport_gateway::audit::JournalWriter;
use sallyport_gateway::store::Store;
use sallyport_tests::cloudwatch;
use sallyport_tests::fault::{Fault, FaultProxy};
use sallyport_tests::moto::{aws_env, MotoServer};
use sallyport_tests::ports::free_port;

const GROUP: &str = "/sallyport/audit";
const SINK: &str = "cloudwatch:/sallyport/audit:gw-kill";
const PRELOADED: usize = 25_000;

fn sallyportd(moto: &MotoServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sallyportd"));
    cmd.args(args)
        .envs(aws_env())
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("RUST_LOG", "info");
    cmd
}

fn start(moto: &MotoServer, config: &str) -> Child {
    sallyportd(moto, &["run", "--config", config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn checkpoint_and_head(url: &str) -> (u64, u64) {
    let store = Store::connect(url).await.unwrap();
    let at = store.sink_checkpoint(SINK).await.unwrap();
    let head = store.journal_head().await.unwrap().seq;
    store.close().await;
    (at, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_shipping_and_restarted_delivers_everything() {
    let moto = MotoServer::start().unwrap();
    let proxy = FaultProxy::start(&moto.endpoint_url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let url = format!("sqlite://{}", state.join("sallyport.db").display());

    let init = sallyportd(
        &moto,
        &[
            "secrets",
            "init",
            "--ssm-path",
            "/sallyport/kill",
            "--endpoint-url",
            &moto.endpoint_url(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let direct = cloudwatch::client(&moto.endpoint_url()).await;
    cloudwatch::create_group(&direct, GROUP).await.unwrap();

    // A journal with a backlog of several batches before the gateway first starts.
    {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let (writer, task) = JournalWriter::spawn(store.clone());
        for i in 0..PRELOADED {
            let kind = EventKind::UserEnabled {
                user: format!("user{}", i % 50).parse().unwrap(),
            };
            writer
                .submit(Event::new(Timestamp::now(), "root-admin", kind))
                .await
                .unwrap();
        }
        drop(writer);
        task.await.unwrap();
        store.close().await;
    }

    let config = dir.path().join("sallyportd.toml");
    std::fs::write(
        &config,
        format!(
            "instance = \"gw-kill\"\nstate_dir = \"{state}\"\n[secrets]\nssm_path = \"/sallyport/kill\"\n\
             region = \"us-east-1\"\nendpoint_url = \"{moto}\"\n[api]\nlisten = \"127.0.0.1:{api}\"\n\
             [ssh]\nlisten = \"127.0.0.1:{ssh}\"\n[audit.cloudwatch]\nlog_group = \"{GROUP}\"\n\
             region = \"us-east-1\"\nendpoint_url = \"{proxy}\"\n",
            state = state.display(),
            moto = moto.endpoint_url(),
            api = free_port(),
            ssh = free_port(),
            proxy = proxy.endpoint_url(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    // The first batch goes through; the second is stored by moto but its answer is held back,
    // and the gateway is killed while it waits.
    proxy.inject(
        "PutLogEvents",
        [
            Fault::Delay(Duration::ZERO),
            Fault::Delay(Duration::from_secs(30)),
        ],
    );
    let mut first = start(&moto, cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.forwarded_puts().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the gateway never shipped two batches"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "sallyportd exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let (at, head) = checkpoint_and_head(&url).await;
    assert!(
        at < head,
        "killed mid-shipping: checkpoint {at}, head {head}"
    );
    assert!(at >= 1, "the first batch was acknowledged");

    let mut second = start(&moto, cfg);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (at, head) = checkpoint_and_head(&url).await;
        if at == head && at > PRELOADED as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught up: checkpoint {at}, head {head}"
        );
        assert!(
            second.try_wait().unwrap().is_none(),
            "sallyportd exited early"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success());

    let store = Store::connect(&url).await.unwrap();
    let records = store.journal_after(0, 1_000_000).await.unwrap();
    store.close().await;
    let events = cloudwatch::events(&direct, GROUP, "gw-kill").await.unwrap();
    let by_seq = cloudwatch::by_seq(&events).unwrap();
    let ids: BTreeMap<u64, &str> = records.iter().map(|r| (r.seq, r.id.as_str())).collect();
    // Everything up to the stop record's predecessor at least; the stop itself is drained too.
    for r in &records {
        let copies = by_seq
            .get(&r.seq)
            .unwrap_or_else(|| panic!("seq {} ({}) never arrived", r.seq, r.event));
        for c in copies {
            assert_eq!(
                c["id"], ids[&r.seq],
                "a duplicate of seq {} with another id",
                r.seq
            );
        }
    }
    assert_eq!(
        by_seq.len(),
        records.len(),
        "nothing arrived that is not in the journal"
    );
    let duplicated = by_seq.values().filter(|c| c.len() > 1).count();
    assert!(
        duplicated > 0,
        "the batch in flight at the kill was sent again"
    );
    assert!(events.len() > records.len());
}
