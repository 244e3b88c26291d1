//! Sessions and recordings in the store, on both backends: `ssh_sessions` rows and their
//! listing; recordings written through the real observers (recorder, exec and SFTP auditors)
//! into sealed chunks that hold no plaintext, read back whole, and refused when a chunk is
//! altered, swapped or deleted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::api::{AuditQuery, SessionQuery};
use sallyport_core::recording::cast_read::Cast;
use sallyport_core::time::Timestamp;
use sallyport_gateway::control::Control;
use sallyport_gateway::secrets::GatewaySecrets;
use sallyport_gateway::ssh::observers::SessionObservers;
use sallyport_gateway::ssh::proxy::observe::{ChannelContext, ObserverFactory};
use sallyport_gateway::ssh::recording::{read, ReadError, RecordingKey, RecordingSettings};
use sallyport_gateway::store::{SessionMode, SessionStart, Store};
use sallyport_tests::backends::Backend;
use sqlx::Row;
use uuid::Uuid;

sallyport_tests::both_backends!(
    session_rows_start_end_and_list,
    recordings_are_sealed_whole_and_tamper_evident,
    exec_and_sftp_are_journaled,
    a_full_queue_drops_counts_marks_and_journals,
    a_recording_stops_at_its_size_limit,
);

fn start(id: &str, user: &str, mode: SessionMode, at_ms: i64) -> SessionStart {
    SessionStart {
        id: id.into(),
        instance: "gw-a".into(),
        user: user.parse().unwrap(),
        source: "192.0.2.10".into(),
        mode,
        client: "SSH-2.0-OpenSSH_9.2p1".into(),
        started_at: Timestamp::from_millis(at_ms),
    }
}

async fn session_rows_start_end_and_list(b: Backend) {
    let control = b.control().await.unwrap();
    let store = control.store();
    let proxy = SessionMode::Proxy {
        target: "db-1".parse().unwrap(),
        login: "root".parse().unwrap(),
    };
    store
        .session_started(&start("s1", "alice", SessionMode::Jump, 1_000))
        .await
        .unwrap();
    store
        .session_started(&start("s2", "alice", proxy.clone(), 2_000))
        .await
        .unwrap();
    store
        .session_started(&start("s3", "bob", proxy, 3_000))
        .await
        .unwrap();
    // The same id twice is refused.
    assert!(store
        .session_started(&start("s1", "alice", SessionMode::Jump, 1_000))
        .await
        .is_err());
    store
        .session_ended("s1", Timestamp::from_millis(5_000), "client")
        .await
        .unwrap();
    // A second end changes nothing.
    store
        .session_ended("s1", Timestamp::from_millis(9_000), "revoked")
        .await
        .unwrap();
    let s1 = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!(s1.ended_at, Some(Timestamp::from_millis(5_000)));
    assert_eq!(s1.end_reason.as_deref(), Some("client"));
    assert_eq!(s1.mode, "jump");
    assert_eq!(s1.target, None);
    assert!(!s1.recorded);
    let s2 = store.get_session("s2").await.unwrap().unwrap();
    assert_eq!(s2.mode, "proxy");
    assert_eq!(s2.target.unwrap().as_str(), "db-1");
    assert_eq!(s2.login.unwrap().to_string(), "root");
    assert_eq!(s2.instance, "gw-a");
    assert!(store.get_session("nope").await.unwrap().is_none());

    let ids = |v: Vec<sallyport_core::api::SessionView>| -> Vec<String> {
        v.into_iter().map(|s| s.id).collect()
    };
    let all = store.list_sessions(&SessionQuery::default()).await.unwrap();
    assert_eq!(ids(all), vec!["s3", "s2", "s1"], "newest first");
    let live = SessionQuery {
        live: Some(true),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&live).await.unwrap()),
        vec!["s3", "s2"]
    );
    let ended = SessionQuery {
        live: Some(false),
        ..Default::default()
    };
    assert_eq!(ids(store.list_sessions(&ended).await.unwrap()), vec!["s1"]);
    let alice_since = SessionQuery {
        user: Some("alice".parse().unwrap()),
        since: Some(Timestamp::from_millis(1_500)),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&alice_since).await.unwrap()),
        vec!["s2"]
    );
    let to_db1 = SessionQuery {
        target: Some("db-1".parse().unwrap()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(store.list_sessions(&to_db1).await.unwrap()), vec!["s3"]);

    // The instance restarts after a crash: what it left live is ended.
    let n = store
        .end_orphan_sessions("gw-a", Timestamp::from_millis(10_000), "gateway-restart")
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(store.list_sessions(&live).await.unwrap().is_empty());
    assert_eq!(
        store
            .get_session("s3")
            .await
            .unwrap()
            .unwrap()
            .end_reason
            .as_deref(),
        Some("gateway-restart")
    );
}

fn ctx(session: Uuid, channel: u32) -> ChannelContext {
    ChannelContext {
        session_id: session,
        channel,
        user: "alice".parse().unwrap(),
        target: "db-1".parse().unwrap(),
        login: "root".parse().unwrap(),
        grant: "00000000-0000-4000-8000-000000000001".parse().unwrap(),
        source: "192.0.2.10:50000".parse().unwrap(),
    }
}

async fn events(store: &Store, session: Uuid) -> Vec<(String, serde_json::Value)> {
    let q = AuditQuery {
        session: Some(session.to_string()),
        limit: Some(1000),
        ..Default::default()
    };
    store
        .search_journal(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event, r.data))
        .collect()
}

/// Raw SQL on the backend, to play the attacker with database access.
async fn raw(b: &Backend) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&b.url).await.unwrap()
}

async fn record_shell(control: &Arc<Control>, secrets: &GatewaySecrets, session: Uuid) -> String {
    let observers = SessionObservers::new(
        Arc::clone(control),
        secrets,
        RecordingSettings {
            input: true,
            ..Default::default()
        },
    );
    let mut obs = observers.observers(&ctx(session, 0));
    let mut expected = String::new();
    for o in &mut obs {
        o.pty("xterm-256color", 120, 40);
        o.shell();
        o.client_data(b"cat /etc/motd\r");
    }
    // More than one chunk's worth (64 KiB), in 200 pieces that split a UTF-8 character
    // (well within the queue: nothing is dropped).
    let block = "top-secret-output-ç€ line\r\n".repeat(40);
    let bytes = block.as_bytes();
    for _ in 0..100 {
        for o in &mut obs {
            o.target_data(&bytes[..21]);
            o.target_data(&bytes[21..]);
        }
        expected.push_str(&block);
    }
    for o in &mut obs {
        o.resize(100, 30);
        o.target_extended_data(1, b"stderr-part\r\n");
        o.exit_status(0);
        o.closed();
    }
    expected.push_str("stderr-part\r\n");
    drop(obs);
    observers.drain(Duration::from_secs(20)).await;
    expected
}

async fn recordings_are_sealed_whole_and_tamper_evident(b: Backend) {
    let control = b.control().await.unwrap();
    let store = control.store();
    let secrets = GatewaySecrets::generate().unwrap();
    let key = RecordingKey::new(secrets.recording_key());
    let session = Uuid::new_v4();
    store
        .session_started(&start(
            &session.to_string(),
            "alice",
            SessionMode::Proxy {
                target: "db-1".parse().unwrap(),
                login: "root".parse().unwrap(),
            },
            Timestamp::now().as_millis(),
        ))
        .await
        .unwrap();
    let expected = record_shell(&control, &secrets, session).await;

    // Read back whole, in order, with input, resize and output.
    let text = read::read(store, &key, session, 0).await.unwrap();
    let cast = Cast::parse(&text).unwrap();
    assert_eq!(cast.header.width, 120);
    assert_eq!(cast.header.height, 40);
    assert_eq!(cast.header.env.term.as_deref(), Some("xterm-256color"));
    assert!(cast.output_text() == expected, "output differs");
    assert!(cast
        .events
        .iter()
        .any(|e| e.code == "i" && e.data == "cat /etc/motd\r"));
    assert!(cast
        .events
        .iter()
        .any(|e| e.code == "r" && e.data == "100x30"));
    let view = store
        .get_session(&session.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(view.recorded);
    let channels = store
        .recording_channels(&session.to_string())
        .await
        .unwrap();
    assert_eq!(channels.len(), 1);
    let chunks = channels[0].chunks;
    assert!(chunks >= 2, "{chunks} chunks");
    let evs = events(store, session).await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["ssh.recording.start", "ssh.recording.end"]);
    assert_eq!(evs[0].1["kind"], "shell");
    assert_eq!(evs[0].1["input"], true);
    assert_eq!(evs[1].1["chunks"], chunks);
    assert_eq!(evs[1].1["dropped_events"], 0);

    // What the database holds: no plaintext of anything recorded.
    let pool = raw(&b).await;
    let rows =
        sqlx::query("SELECT chunk, sealed FROM recordings WHERE session_id = $1 ORDER BY chunk")
            .bind(session.to_string())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len() as u64, chunks);
    for r in &rows {
        let sealed: String = r.try_get("sealed").unwrap();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sealed).unwrap();
        for needle in [
            "top-secret",
            "cat /etc/motd",
            "stderr-part",
            "xterm",
            "version",
        ] {
            assert!(!sealed.contains(needle), "{needle} in stored text");
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in stored bytes"
            );
        }
    }
    let sealed = |i: usize| -> String { rows[i].try_get("sealed").unwrap() };

    // Swap chunks 0 and 1: refused, naming the chunk.
    let set = |chunk: i64, value: String| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE recordings SET sealed = $1 WHERE session_id = $2 AND chunk = $3")
                .bind(value)
                .bind(session.to_string())
                .bind(chunk)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let (c0, c1) = (sealed(0), sealed(1));
    set(0, c1.clone()).await;
    set(1, c0.clone()).await;
    let e = read::read(store, &key, session, 0).await.unwrap_err();
    assert!(matches!(e, ReadError::Sealed { chunk: 0, .. }), "{e}");
    set(0, c0.clone()).await;
    set(1, c1.clone()).await;
    read::read(store, &key, session, 0).await.unwrap();

    // One altered character: refused.
    let mut altered = c1.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    set(1, String::from_utf8(altered).unwrap()).await;
    let e = read::read(store, &key, session, 0).await.unwrap_err();
    assert!(matches!(e, ReadError::Sealed { chunk: 1, .. }), "{e}");
    set(1, c1).await;

    // Another gateway's key (a foreign or forged recording): refused.
    let other = RecordingKey::new(GatewaySecrets::generate().unwrap().recording_key());
    assert!(matches!(
        read::read(store, &other, session, 0).await.unwrap_err(),
        ReadError::Sealed { chunk: 0, .. }
    ));

    // A deleted chunk in the middle: refused as missing.
    sqlx::query("DELETE FROM recordings WHERE session_id = $1 AND chunk = 1")
        .bind(session.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let e = read::read(store, &key, session, 0).await.unwrap_err();
    assert!(matches!(e, ReadError::Missing { chunk: 1, .. }), "{e}");
    assert!(matches!(
        read::read(store, &key, session, 7).await.unwrap_err(),
        ReadError::NotFound { .. }
    ));
    pool.close().await;
}

/// Builds SFTP packets (`uint32 length, byte type, body`).
fn packet(kind: u8, body: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![kind];
    for part in body {
        p.extend_from_slice(part);
    }
    let mut v = u32::try_from(p.len()).unwrap().to_be_bytes().to_vec();
    v.extend(p);
    v
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(s.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

async fn exec_and_sftp_are_journaled(b: Backend) {
    let control = b.control().await.unwrap();
    let store = control.store();
    let secrets = GatewaySecrets::generate().unwrap();
    let observers =
        SessionObservers::new(Arc::clone(&control), &secrets, RecordingSettings::default());
    let session = Uuid::new_v4();
    // Channel 1: `ssh db-1 'uptime; id'`, output recorded (no pty: 80x24, no input).
    let mut exec = observers.observers(&ctx(session, 1));
    for o in &mut exec {
        o.exec(b"uptime; id");
        o.client_data(b"typed-but-not-recorded");
        o.target_data(b" 17:00:00 up 1 day\n");
        o.exit_status(0);
        o.closed();
    }
    drop(exec);
    // Channel 2: an SFTP upload, a remove and a rename.
    let mut sftp = observers.observers(&ctx(session, 2));
    let id = |n: u32| n.to_be_bytes();
    let status = |n: u32, code: u32| {
        packet(
            101,
            &[&id(n), &code.to_be_bytes(), &string(b""), &string(b"")],
        )
    };
    // (client requests, server replies), in protocol order.
    let exchanges = [
        (
            packet(1, &[&3u32.to_be_bytes()]),
            packet(2, &[&3u32.to_be_bytes()]),
        ),
        (
            packet(
                3,
                &[
                    &id(1),
                    &string(b"/srv/up.txt"),
                    &0x1au32.to_be_bytes(),
                    &0u32.to_be_bytes(),
                ],
            ),
            packet(102, &[&id(1), &string(b"H1")]),
        ),
        (
            [
                packet(
                    6,
                    &[
                        &id(2),
                        &string(b"H1"),
                        &0u64.to_be_bytes(),
                        &string(&[b'x'; 3000]),
                    ],
                ),
                packet(
                    6,
                    &[
                        &id(3),
                        &string(b"H1"),
                        &3000u64.to_be_bytes(),
                        &string(&[b'y'; 100]),
                    ],
                ),
                packet(4, &[&id(4), &string(b"H1")]),
            ]
            .concat(),
            [status(2, 0), status(3, 0), status(4, 0)].concat(),
        ),
        (
            packet(13, &[&id(5), &string(b"/srv/old.txt")]),
            status(5, 3),
        ),
        (
            packet(18, &[&id(6), &string(b"/srv/a"), &string(b"/srv/b")]),
            status(6, 0),
        ),
    ];
    for o in &mut sftp {
        o.subsystem("sftp");
    }
    for (client, server) in &exchanges {
        for piece in client.chunks(7) {
            for o in &mut sftp {
                o.client_data(piece);
            }
        }
        for piece in server.chunks(5) {
            for o in &mut sftp {
                o.target_data(piece);
            }
        }
    }
    for o in &mut sftp {
        o.closed();
    }
    drop(sftp);
    observers.drain(Duration::from_secs(20)).await;

    let evs = events(store, session).await;
    let find = |name: &str| -> Vec<&serde_json::Value> {
        evs.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, d)| d)
            .collect()
    };
    let exec = find("ssh.exec");
    assert_eq!(exec.len(), 1, "{evs:?}");
    assert_eq!(exec[0]["command"], "uptime; id");
    assert_eq!(exec[0]["login"], "root");
    assert_eq!(exec[0]["target"], "db-1");
    assert_eq!(exec[0]["channel"], 1);
    assert_eq!(exec[0]["grant"], "00000000-0000-4000-8000-000000000001");
    let rec = find("ssh.recording.start");
    assert_eq!(rec.len(), 1, "only the exec channel is recorded: {evs:?}");
    assert_eq!(rec[0]["kind"], "exec");
    let key = RecordingKey::new(secrets.recording_key());
    let cast = Cast::parse(&read::read(store, &key, session, 1).await.unwrap()).unwrap();
    assert_eq!(cast.header.command.as_deref(), Some("uptime; id"));
    assert_eq!(cast.header.width, 80);
    assert_eq!(cast.output_text(), " 17:00:00 up 1 day\n");
    assert!(cast.events.iter().all(|e| e.code != "i"), "input is off");

    let open = find("ssh.sftp.open");
    assert_eq!(open.len(), 1, "{evs:?}");
    assert_eq!(open[0]["path"], "/srv/up.txt");
    assert_eq!(
        open[0]["flags"],
        serde_json::json!(["write", "create", "truncate"])
    );
    assert_eq!(open[0]["outcome"], "ok");
    let write = find("ssh.sftp.write");
    assert_eq!(write.len(), 1, "{evs:?}");
    assert_eq!(write[0]["path"], "/srv/up.txt");
    assert_eq!(write[0]["bytes"], 3100);
    assert_eq!(write[0]["writes"], 2);
    let remove = find("ssh.sftp.remove");
    assert_eq!(remove[0]["path"], "/srv/old.txt");
    assert_eq!(remove[0]["outcome"], "permission-denied");
    let rename = find("ssh.sftp.rename");
    assert_eq!(rename[0]["from"], "/srv/a");
    assert_eq!(rename[0]["to"], "/srv/b");
    assert_eq!(rename[0]["outcome"], "ok");
    assert!(find("ssh.observer.gap").is_empty());
    // Every one carries the session, the user and the source.
    let q = AuditQuery {
        session: Some(session.to_string()),
        ..Default::default()
    };
    for r in store.search_journal(&q).await.unwrap() {
        assert_eq!(r.actor, "alice");
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.source.as_deref(), Some("192.0.2.10"));
    }
}

async fn a_full_queue_drops_counts_marks_and_journals(b: Backend) {
    let control = b.control().await.unwrap();
    let store = control.store();
    let secrets = GatewaySecrets::generate().unwrap();
    let observers =
        SessionObservers::new(Arc::clone(&control), &secrets, RecordingSettings::default());
    let session = Uuid::new_v4();
    let mut obs = observers.observers(&ctx(session, 5));
    for o in &mut obs {
        o.shell();
    }
    // 3000 frames with no await in between: the writer cannot run, so the relay side must
    // drop (never wait) once the 1024-frame queue is full.
    let started = std::time::Instant::now();
    for i in 0..3000 {
        for o in &mut obs {
            o.target_data(format!("{i:05}\n").as_bytes());
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the relay side waited"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for o in &mut obs {
        o.target_data(b"after\n");
        o.closed();
    }
    drop(obs);
    observers.drain(Duration::from_secs(20)).await;

    let key = RecordingKey::new(secrets.recording_key());
    let cast = Cast::parse(&read::read(store, &key, session, 5).await.unwrap()).unwrap();
    let kept: Vec<_> = cast.events.iter().filter(|e| e.code == "o").collect();
    assert_eq!(kept.len(), 1025);
    assert_eq!(kept[0].data, "00000\n");
    assert_eq!(kept[1023].data, "01023\n");
    assert_eq!(kept[1024].data, "after\n");
    let markers: Vec<_> = cast.events.iter().filter(|e| e.code == "m").collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert!(
        markers[0]
            .data
            .contains("1976 output event(s), 11856 bytes, dropped here"),
        "{}",
        markers[0].data
    );
    // The marker sits where the gap is: after 01023, before "after".
    let at = cast.events.iter().position(|e| e.code == "m").unwrap();
    assert_eq!(cast.events[at + 1].data, "after\n");

    let evs = events(store, session).await;
    let gap: Vec<_> = evs
        .iter()
        .filter(|(n, _)| n == "ssh.observer.gap")
        .collect();
    assert_eq!(gap.len(), 1, "{evs:?}");
    assert_eq!(gap[0].1["what"], "recording");
    assert_eq!(gap[0].1["events"], 1976);
    assert_eq!(gap[0].1["bytes"], 1976 * 6);
    let end: Vec<_> = evs
        .iter()
        .filter(|(n, _)| n == "ssh.recording.end")
        .collect();
    assert_eq!(end[0].1["dropped_events"], 1976);
    assert_eq!(end[0].1["failed_chunks"], 0);
}

async fn a_recording_stops_at_its_size_limit(b: Backend) {
    let control = b.control().await.unwrap();
    let store = control.store();
    let secrets = GatewaySecrets::generate().unwrap();
    let observers = SessionObservers::new(
        Arc::clone(&control),
        &secrets,
        RecordingSettings {
            input: false,
            max_mib: 1,
        },
    );
    let session = Uuid::new_v4();
    let mut obs = observers.observers(&ctx(session, 0));
    for o in &mut obs {
        o.exec(b"cat /var/backups/big.tar");
    }
    // 2 MiB of output through a recording limited to 1 MiB.
    let piece = vec![b'x'; 32 * 1024];
    for _ in 0..64 {
        for o in &mut obs {
            o.target_data(&piece);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for o in &mut obs {
        o.target_data(&piece);
        o.closed();
    }
    drop(obs);
    observers.drain(Duration::from_secs(20)).await;

    let key = RecordingKey::new(secrets.recording_key());
    let text = read::read(store, &key, session, 0).await.unwrap();
    assert!(text.len() < 1024 * 1024 + 64 * 1024, "{} bytes", text.len());
    let cast = Cast::parse(&text).unwrap();
    let marker = cast.events.iter().find(|e| e.code == "m").unwrap();
    assert!(marker.data.contains("size limit"), "{}", marker.data);
    let recorded = cast.output_text().len() as u64;
    let end = events(store, session)
        .await
        .into_iter()
        .find(|(n, _)| n == "ssh.recording.end")
        .unwrap()
        .1;
    assert_eq!(end["dropped_events"], 0);
    let cut = end["cut_bytes"].as_u64().unwrap();
    assert!(cut > 0);
    assert_eq!(
        recorded + cut,
        65 * 32 * 1024,
        "every byte is recorded or counted"
    );
}
