//! A journal from before per-instance chains survives migration 0008.

use std::path::{Path, PathBuf};

use sallyport_core::audit::{ChainError, ChainHead, Event, EventKind, Record};
use sallyport_core::time::Timestamp;
use sallyport_gateway::dev::{DevGateway, DevOptions, DevSshLimits, DevStore};
use sallyport_gateway::store::Store;
use sallyport_tests::postgres::PgServer;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::support::*;

// ---------------------------------------------------------------------------------------------
// 4. Migration of a journal from before per-instance chains
// ---------------------------------------------------------------------------------------------

/// Records in the legacy journal.
const LEGACY: u64 = 12;

/// A copy of migrations 0001–0007 (the schema before per-instance chains).
fn migrations_before_0008() -> tempfile::TempDir {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let dir = tempfile::tempdir().unwrap();
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: u32 = match name.split('_').next().and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => continue,
        };
        if version <= 7 && name.ends_with(".sql") {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
            copied.push(version);
        }
    }
    copied.sort_unstable();
    assert_eq!(copied, (1..=7).collect::<Vec<_>>(), "migrations 0001–0007");
    dir
}

async fn any_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

/// Builds the database at `url` at migration 0007 and journals [`LEGACY`] records the way the
/// code before 0008 did: one shared chain (`ChainHead::append`, layout v1) whose head is
/// `journal_head`. Some records name an instance (0007), the first ones none.
async fn legacy_database(url: &str) -> Vec<Record> {
    let pool = any_pool(url).await;
    let dir = migrations_before_0008();
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    migrator.run(&pool).await.unwrap();

    let mut head = ChainHead::default();
    let mut records = Vec::new();
    for i in 0..LEGACY {
        let event = Event::new(
            Timestamp::from_millis(1_700_000_000_000 + i as i64 * 1000),
            "admin",
            EventKind::UserDisabled {
                user: format!("legacy{i}").parse().unwrap(),
            },
        );
        let record = head.append(&event);
        assert_eq!(record.chain, None);
        head = ChainHead::from(&record);
        let instance = (i >= LEGACY / 2).then(|| "gw-old".to_owned());
        sqlx::query(
            "INSERT INTO audit_events (seq, id, time_ms, event, code, version, actor, user_name, \
             target, session, source, data, prev_hash, hash, instance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(record.seq as i64)
        .bind(record.id.clone())
        .bind(record.time.as_millis())
        .bind(record.event.clone())
        .bind(record.code.clone())
        .bind(i64::from(record.version))
        .bind(record.actor.clone())
        .bind(record.user.clone())
        .bind(record.target.clone())
        .bind(record.session.clone())
        .bind(record.source.clone())
        .bind(record.data.to_string())
        .bind(record.prev_hash.clone())
        .bind(record.hash.clone())
        .bind(instance)
        .execute(&pool)
        .await
        .unwrap();
        records.push(record);
    }
    sqlx::query("UPDATE journal_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq as i64)
        .bind(head.hash.clone())
        .execute(&pool)
        .await
        .unwrap();
    // A sink that had shipped part of the shared chain.
    sqlx::query(
        "INSERT INTO sink_checkpoints (sink, seq, updated_at, delivered) VALUES ('stdout', 5, 0, 5)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    records
}

/// After 0008 (applied by `Store::migrate`), before any gateway appended: the shared chain holds
/// every legacy record, its head moved to `chain_heads`, `journal_head` is gone, the sink's
/// checkpoint belongs to the shared chain, and verification reports the one chain intact.
async fn check_migrated(url: &str, legacy: &[Record]) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let outcome = store.verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None, "{outcome:?}");
    assert_eq!(outcome.chains.len(), 1, "{outcome:?}");
    let shared = &outcome.chains[0];
    assert_eq!(shared.chain, None);
    assert_eq!(shared.summary.count, LEGACY);
    let last = ChainHead::from(legacy.last().unwrap());
    assert_eq!(shared.summary.head, last);
    assert_eq!(shared.recorded_head.as_ref(), Some(&last));
    assert_eq!(store.chain_head(None).await.unwrap(), Some(last.clone()));

    // The records read back are the ones written, with their place in the shared chain.
    let back = store.chain_after(None, 0, 1000).await.unwrap();
    assert_eq!(back.len(), legacy.len());
    for ((r, instance), want) in back.iter().zip(legacy) {
        assert_eq!(r.chain, None);
        assert_eq!(
            r.pos,
            Some(want.seq),
            "position of legacy record {}",
            want.seq
        );
        let mut r = r.clone();
        r.pos = None;
        assert_eq!(&r, want);
        assert_eq!(instance.is_some(), want.seq > LEGACY / 2);
    }

    let pool = any_pool(url).await;
    assert!(
        sqlx::query("SELECT seq FROM journal_head")
            .fetch_all(&pool)
            .await
            .is_err(),
        "journal_head survived migration 0008"
    );
    let row =
        sqlx::query("SELECT chain, seq, delivered FROM sink_checkpoints WHERE sink = 'stdout'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>("chain"), "");
    assert_eq!(row.get::<i64, _>("seq"), 5);
    assert_eq!(row.get::<i64, _>("delivered"), 5);
    pool.close().await;
    store.close().await;
}

/// With a gateway `instance` running on the migrated database: its records form its own chain
/// from seq 1 beside the closed shared chain, both verify through its API, and editing a legacy
/// record breaks the shared chain only.
async fn check_gateway_beside_legacy(url: &str, gw: &DevGateway, instance: &str) {
    add_user(gw.gateway().control(), unique("after", 0)).await;
    let pool = any_pool(url).await;

    let v = verify_api(gw).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(chain_names(&v), [None, Some(instance.to_owned())]);
    assert_intact(&v, None, LEGACY);
    let own = chain_of(&v, Some(instance)).count;
    assert!(own >= 3, "{v:#?}");
    assert_intact(&v, Some(instance), own);

    let rows = sqlx::query(
        "SELECT seq, chain, chain_seq, instance FROM audit_events WHERE seq > $1 ORDER BY seq",
    )
    .bind(LEGACY as i64)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut next = 1;
    for r in &rows {
        assert_eq!(
            r.get::<String, _>("chain"),
            instance,
            "a new record outside its chain"
        );
        assert_eq!(
            r.get::<Option<String>, _>("instance").as_deref(),
            Some(instance)
        );
        let seq: i64 = r.get("chain_seq");
        if seq <= own as i64 {
            assert_eq!(seq, next, "the new chain does not start at 1 or has a gap");
            next += 1;
        }
    }
    assert_eq!(next - 1, own as i64);
    let shared: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE chain = ''")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(
        shared, LEGACY as i64,
        "the shared chain grew after migration"
    );

    // A legacy record edited: the shared chain is broken there, the new one is not.
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE chain = '' AND chain_seq = 5")
        .execute(&pool)
        .await
        .unwrap();
    let v = verify_api(gw).await;
    assert_broken(&v, None, ChainError::Altered { seq: 5 });
    assert_eq!(chain_of(&v, None).count, 4);
    let c = chain_of(&v, Some(instance));
    assert!(c.ok, "{c:#?}");
    // A legacy record removed from the end: truncation of the shared chain.
    sqlx::query("UPDATE audit_events SET actor = 'admin' WHERE chain = '' AND chain_seq = 5")
        .execute(&pool)
        .await
        .unwrap();
    assert!(verify_api(gw).await.ok);
    sqlx::query("DELETE FROM audit_events WHERE chain = '' AND chain_seq = $1")
        .bind(LEGACY as i64)
        .execute(&pool)
        .await
        .unwrap();
    let v = verify_api(gw).await;
    assert_broken(
        &v,
        None,
        ChainError::Truncated {
            head_seq: LEGACY,
            last_seq: LEGACY - 1,
        },
    );
    assert!(chain_of(&v, Some(instance)).ok, "{v:#?}");
    pool.close().await;
}

fn dev_options(state_dir: &Path) -> DevOptions {
    DevOptions {
        state_dir: state_dir.to_owned(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_single_chain_survives_migration_0008_on_postgres() {
    let server = PgServer::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let url = server.fresh_database().unwrap();
    let legacy = legacy_database(&url).await;
    check_migrated(&url, &legacy).await;

    let dir = tempfile::tempdir().unwrap();
    let gw = DevGateway::start_with_store(
        dev_options(&dir.path().join("gw-new")),
        DevSshLimits::default(),
        Some(DevStore {
            url: url.clone(),
            instance: "gw-new".into(),
            propagation: Default::default(),
            secrets: None,
        }),
    )
    .await
    .unwrap();
    check_gateway_beside_legacy(&url, &gw, "gw-new").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_single_chain_survives_migration_0008_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&state)
            .unwrap();
    }
    let url = format!("sqlite://{}?mode=rwc", state.join("sallyport.db").display());
    let legacy = legacy_database(&url).await;
    check_migrated(&url, &legacy).await;

    // `sallyportd dev` on that file: instance `dev`.
    let gw = DevGateway::start(dev_options(&state)).await.unwrap();
    check_gateway_beside_legacy(&url, &gw, "dev").await;
    gw.shutdown().await;
}
