//! At-least-once across a crash: `sallyportd run` is killed with SIGKILL while a batch is in
//! flight (moto has stored it, the answer is held back by the fault proxy), then started again.
//! Every journal record reaches CloudWatch, and a record that arrives twice has the same id.
//! The backlog is in the shared chain (journaled before the gateway had an instance name); the
//! gateway ships it and its own chain (`gw-kill`) to its stream, each from its own checkpoint.

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

/// The sink's checkpoint and the chain's head, for the shared chain and the gateway's.
async fn checkpoints_and_heads(url: &str) -> [(u64, u64); 2] {
    let store = Store::connect(url).await.unwrap();
    let mut out = [(0, 0); 2];
    for (i, chain) in [None, Some("gw-kill")].into_iter().enumerate() {
        let at = store.sink_checkpoint(SINK, chain).await.unwrap();
        let head = store.chain_head(chain).await.unwrap().map_or(0, |h| h.seq);
        out[i] = (at, head);
    }
    store.close().await;
    out
}

/// Every copy that arrived, by (chain, seq); parts of split events joined.
fn by_chain_seq(
    events: &[(i64, serde_json::Value)],
) -> BTreeMap<(Option<String>, u64), Vec<serde_json::Value>> {
    let mut out: BTreeMap<(Option<String>, u64), Vec<serde_json::Value>> = BTreeMap::new();
    for (seq, copies) in cloudwatch::by_seq(events).unwrap() {
        for c in copies {
            let chain = c.get("chain").and_then(|v| v.as_str()).map(str::to_owned);
            out.entry((chain, seq)).or_default().push(c);
        }
    }
    out
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
    let [(at, head), _] = checkpoints_and_heads(&url).await;
    assert_eq!(head, PRELOADED as u64, "the backlog is the shared chain");
    assert!(
        at < head,
        "killed mid-shipping: checkpoint {at}, head {head}"
    );
    assert!(at >= 1, "the first batch was acknowledged");

    let mut second = start(&moto, cfg);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let [(at, head), (own_at, own_head)] = checkpoints_and_heads(&url).await;
        if at == head && own_at == own_head && own_at > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught up: checkpoint {at}, head {head}; own chain {own_at} of {own_head}"
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
    let by_seq = by_chain_seq(&events);
    // Every record of both chains; the stop record (journaled at shutdown) is drained too.
    assert!(records
        .iter()
        .any(|r| r.chain.as_deref() == Some("gw-kill")));
    for r in &records {
        let copies = by_seq
            .get(&(r.chain.clone(), r.seq))
            .unwrap_or_else(|| panic!("{:?} seq {} ({}) never arrived", r.chain, r.seq, r.event));
        for c in copies {
            assert_eq!(
                c["id"], r.id,
                "a duplicate of {:?} seq {} with another id",
                r.chain, r.seq
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
