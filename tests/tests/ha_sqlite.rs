//! SQLite serves one gateway: a second gateway on the same database file refuses to start and
//! says why; once the first stops, the file can be used again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use sallyport_gateway::dev::{DevGateway, DevOptions};
use sallyport_gateway::gateway::GatewayError;
use sallyport_gateway::store::StoreError;

fn options(state_dir: &Path) -> DevOptions {
    DevOptions {
        state_dir: state_dir.to_owned(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = DevGateway::start(options(&state)).await.unwrap();

    let err = DevGateway::start(options(&state)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, GatewayError::Store(StoreError::InstanceLocked { .. })),
        "{err:?}"
    );
    assert!(text.contains("sallyport.db.instance-lock"), "{text}");
    assert!(text.contains("in use by another sallyportd"), "{text}");
    assert!(text.contains("instance dev"), "{text}");
    assert!(text.contains("PostgreSQL"), "{text}");
    // The refused gateway left the running one alone.
    assert!(first
        .gateway()
        .control()
        .store()
        .journal_head()
        .await
        .is_ok());

    first.shutdown().await;
    let again = DevGateway::start(options(&state)).await.unwrap();
    again.shutdown().await;
}
