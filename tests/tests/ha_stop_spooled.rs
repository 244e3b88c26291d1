//! A gateway stopped while its PostgreSQL is unreachable still leaves `gateway.stop` in the
//! journal: the stop is spooled (fsync'd in the state directory) and the next start drains it
//! into the gateway's own chain (docs/ha.md, "When the database is unreachable").

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ha_common::TcpCut;
use sallyport_core::api::AuditQuery;
use sallyport_gateway::control::PropagationOptions;
use sallyport_gateway::dev::{DevGateway, DevOptions, DevSshLimits, DevStore};
use sallyport_gateway::secrets::GatewaySecrets;
use sallyport_gateway::store::{Store, SPOOL_FILE};
use sallyport_tests::postgres::PgServer;

const INSTANCE: &str = "gw-stop";

async fn start(url: &str, state_dir: &Path, secrets: &Arc<GatewaySecrets>) -> DevGateway {
    DevGateway::start_with_store(
        DevOptions {
            state_dir: state_dir.to_owned(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            ssh_listen: "127.0.0.1:0".parse().unwrap(),
        },
        DevSshLimits::default(),
        Some(DevStore {
            url: url.to_owned(),
            instance: INSTANCE.to_owned(),
            propagation: PropagationOptions {
                resync_interval: Duration::from_secs(1),
                ..Default::default()
            },
            secrets: Some(Arc::clone(secrets)),
        }),
    )
    .await
    .unwrap()
}

async fn stops(store: &Store) -> Vec<sallyport_core::audit::Record> {
    store
        .search_journal(&AuditQuery {
            event_type: Some("gateway.stop".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_an_outage_is_spooled_and_journaled_at_the_next_start() {
    let server = PgServer::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let url = server.fresh_database().unwrap();
    let relay = TcpCut::start(SocketAddr::from(([127, 0, 0, 1], server.port()))).await;
    let gw_url = url.replace(
        &format!(":{}/", server.port()),
        &format!(":{}/", relay.addr().port()),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(INSTANCE);
    let secrets = Arc::new(GatewaySecrets::generate().unwrap());
    let direct = Store::connect(&url).await.unwrap();

    let gw = start(&gw_url, &state, &secrets).await;
    relay.set_cut(true);
    tokio::time::timeout(Duration::from_secs(60), gw.shutdown())
        .await
        .expect("the gateway did not stop within 60 s without its database");
    let spooled = std::fs::read_to_string(state.join(SPOOL_FILE)).unwrap_or_default();
    assert!(
        spooled.contains("gateway.stop"),
        "the stop was not spooled: {spooled:?}"
    );
    assert!(
        stops(&direct).await.is_empty(),
        "the stop reached the database during the outage"
    );

    relay.set_cut(false);
    let gw = start(&gw_url, &state, &secrets).await;
    let journaled = stops(&direct).await;
    assert_eq!(journaled.len(), 1, "{journaled:?}");
    assert_eq!(journaled[0].chain.as_deref(), Some(INSTANCE));
    assert_eq!(
        std::fs::metadata(state.join(SPOOL_FILE))
            .map(|m| m.len())
            .unwrap_or(0),
        0,
        "the spool was not emptied"
    );
    let starts = direct
        .search_journal(&AuditQuery {
            event_type: Some("gateway.start".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(starts.len(), 2);
    assert!(
        journaled[0].time < starts[1].time,
        "the stop keeps the time it happened"
    );
    let verified = direct.verify_journal().await.unwrap();
    assert_eq!(verified.error(), None, "{verified:?}");
    gw.shutdown().await;
    assert_eq!(stops(&direct).await.len(), 2);
    direct.close().await;
}
