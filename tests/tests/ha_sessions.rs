//! Sessions across gateways: `POST /v1/sessions/{id}/kill` through gateway A ends an
//! OpenSSH `ssh -J` session running on gateway B within a second, and both the request and the
//! end are journaled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::time::{Duration, Instant};

use ha_common::{Ha, HaOptions};
use reqwest::StatusCode;
use sqlx::Row;

fn api_client(ha: &Ha) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ha.a.ca_cert_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The id of the one live session on `instance`, once its row is there.
async fn live_session(ha: &Ha, instance: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows =
            sqlx::query("SELECT id FROM ssh_sessions WHERE instance = $1 AND ended_at IS NULL")
                .bind(instance)
                .fetch_all(&ha.db)
                .await
                .unwrap();
        if let [row] = rows.as_slice() {
            return row.get("id");
        }
        assert!(
            Instant::now() < deadline,
            "expected one live session on {instance}, found {}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_through_a_ends_a_session_running_on_b_within_a_second() {
    let ha = Ha::start(HaOptions::default()).await;
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(1))
        .await;
    let (mut child, _stdin) = ha.live_cat("gwb").await;
    let id = live_session(&ha, "gw-b").await;

    let client = api_client(&ha);
    // The session list through A shows the session running on B.
    let listed: serde_json::Value = client
        .get(format!("{}/v1/sessions?live=true", ha.a.api_url()))
        .bearer_auth(ha.a.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let live = listed["sessions"].as_array().unwrap();
    assert!(
        live.iter()
            .any(|s| s["id"] == id.as_str() && s["instance"] == "gw-b"),
        "A's session list lacks B's session: {listed}"
    );
    let kill = |id: String| {
        let (client, url, token) = (
            client.clone(),
            format!("{}/v1/sessions/{id}/kill", ha.a.api_url()),
            ha.a.admin_token(),
        );
        async move { client.post(url).bearer_auth(token).send().await.unwrap() }
    };
    let asked = Instant::now();
    let reply = kill(id.clone()).await;
    assert_eq!(reply.status(), StatusCode::ACCEPTED);
    let view: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(view["instance"], "gw-b");
    assert_eq!(view["user"], "alice");

    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the session on B outlived the kill by 5 s")
        .unwrap();
    let took = asked.elapsed();
    assert!(!status.success());
    assert!(
        took < Duration::from_secs(1),
        "the session on B ended {took:?} after the kill"
    );
    eprintln!("session on B ended {took:?} after the kill request on A");

    // Journaled: the request (by admin, with the session in its envelope) and the end.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let asks = ha.events("ssh.session.kill").await;
        let ends: Vec<_> = ha
            .events("ssh.session.end")
            .await
            .into_iter()
            .filter(|r| r.session.as_deref() == Some(id.as_str()))
            .collect();
        if let ([ask], [end]) = (asks.as_slice(), ends.as_slice()) {
            assert_eq!(ask.actor, "admin");
            assert_eq!(ask.session.as_deref(), Some(id.as_str()));
            assert_eq!(ask.data["instance"], "gw-b");
            assert_eq!(end.data["reason"], "killed");
            break;
        }
        assert!(Instant::now() < deadline, "kill {asks:?}, end {ends:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reason: Option<String> = sqlx::query("SELECT end_reason FROM ssh_sessions WHERE id = $1")
        .bind(&id)
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get("end_reason");
    assert_eq!(reason.as_deref(), Some("killed"));

    // Ended: 409. Unknown: 404. Not a UUID: 400.
    assert_eq!(kill(id).await.status(), StatusCode::CONFLICT);
    assert_eq!(kill(uuid_like()).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(kill("nope".into()).await.status(), StatusCode::BAD_REQUEST);
    ha.shutdown().await;
}

fn uuid_like() -> String {
    "6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10".to_owned()
}
