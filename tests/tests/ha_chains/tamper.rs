//! Tampering with one chain is reported on that chain only.

use sallyport_core::api::VerifyView;
use sallyport_core::audit::{ChainError, Event, EventKind};
use sallyport_core::time::Timestamp;
use sallyport_gateway::store::Store;
use sqlx::Row;

use super::ha_common::{Ha, HaOptions};
use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_one_chain_is_reported_on_that_chain_only() {
    let ha = Ha::start(HaOptions::default()).await;
    // The shared chain: records journaled by a store with no instance (a tool's).
    let tool = Store::connect(&ha.url).await.unwrap();
    for i in 0..3 {
        let user = unique("shared", i);
        tool.append_event(&Event::new(
            Timestamp::now(),
            "tool",
            EventKind::UserDisabled { user },
        ))
        .await
        .unwrap();
    }
    // B's chain outgrows A's, so that a record of B's can be moved into A's seq space.
    let a_len = ha.ca().store().journal_head().await.unwrap().seq;
    let mut i = 0;
    while ha.cb().store().journal_head().await.unwrap().seq < a_len + 4 {
        add_user(ha.cb(), unique("tb", i)).await;
        i += 1;
    }

    let (v, _) = quiet_verify(&ha, &ha.a).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(
        chain_names(&v),
        [None, Some("gw-a".to_owned()), Some("gw-b".to_owned())]
    );
    let b_len = chain_of(&v, Some("gw-b")).count;
    let a_len = chain_of(&v, Some("gw-a")).count;
    assert_intact(&v, None, 3);
    let intact = |v: &VerifyView| {
        assert_intact(v, None, 3);
        assert_intact(v, Some("gw-a"), a_len);
    };

    // (a) One record of B's edited.
    let k = 3;
    let actor: String =
        sqlx::query("SELECT actor FROM audit_events WHERE chain = 'gw-b' AND chain_seq = $1")
            .bind(k)
            .fetch_one(&ha.db)
            .await
            .unwrap()
            .get("actor");
    exec(
        &ha.db,
        &format!(
            "UPDATE audit_events SET actor = 'mallory' WHERE chain = 'gw-b' AND chain_seq = {k}"
        ),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(&v, Some("gw-b"), ChainError::Altered { seq: k as u64 });
        assert_eq!(chain_of(&v, Some("gw-b")).count, k as u64 - 1);
        assert_eq!(chain_of(&v, Some("gw-b")).head_seq, k as u64 - 1);
        intact(&v);
    }
    let (code, stdout, stderr) = cli_verify(&ha.a).await;
    assert_eq!(code, Some(8), "sallyport audit verify: {stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "BROKEN in chain gw-b at seq {k}: record {k} was altered"
        )),
        "{stderr}"
    );
    for line in [
        format!("BROKEN in chain gw-b at seq {k}"),
        format!("chain gw-a: {a_len} records, "),
        "chain (shared): 3 records, ".to_owned(),
    ] {
        assert!(stdout.contains(&line), "no {line:?} in {stdout}");
    }
    assert!(!stdout.contains("OK:"), "{stdout}");
    let outcome = tool.verify_journal().await.unwrap();
    let broken: Vec<_> = outcome.broken().collect();
    assert_eq!(
        broken,
        [(Some("gw-b"), &ChainError::Altered { seq: k as u64 })],
        "{outcome:?}"
    );
    sqlx::query("UPDATE audit_events SET actor = $1 WHERE chain = 'gw-b' AND chain_seq = $2")
        .bind(&actor)
        .bind(k)
        .execute(&ha.db)
        .await
        .unwrap();
    assert!(
        verify_api(&ha.a).await.ok,
        "restoring the record restores the chain"
    );

    // (b) B's newest record removed (kept aside to be put back).
    exec(&ha.db, "DROP TABLE IF EXISTS kept_aside").await;
    exec(
        &ha.db,
        &format!(
            "CREATE TABLE kept_aside AS SELECT * FROM audit_events \
             WHERE chain = 'gw-b' AND chain_seq = {b_len}"
        ),
    )
    .await;
    exec(
        &ha.db,
        &format!("DELETE FROM audit_events WHERE chain = 'gw-b' AND chain_seq = {b_len}"),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(
            &v,
            Some("gw-b"),
            ChainError::Truncated {
                head_seq: b_len,
                last_seq: b_len - 1,
            },
        );
        assert_eq!(chain_of(&v, Some("gw-b")).count, b_len - 1);
        intact(&v);
    }
    exec(&ha.db, "INSERT INTO audit_events SELECT * FROM kept_aside").await;
    exec(&ha.db, "DROP TABLE kept_aside").await;
    assert!(
        verify_api(&ha.a).await.ok,
        "putting the record back restores the chain"
    );

    // (c) A record of B's moved to A's chain (at a seq A has not reached).
    let k = a_len + 1;
    assert!(
        k < b_len,
        "B's chain ({b_len}) is not longer than A's ({a_len}) + 1"
    );
    exec(
        &ha.db,
        &format!("UPDATE audit_events SET chain = 'gw-a' WHERE chain = 'gw-b' AND chain_seq = {k}"),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(
            &v,
            Some("gw-b"),
            ChainError::Gap {
                expected: k,
                found: k + 1,
            },
        );
        assert_eq!(chain_of(&v, Some("gw-b")).count, k - 1);
        intact(&v);
    }
    exec(
        &ha.db,
        &format!("UPDATE audit_events SET chain = 'gw-b' WHERE chain = 'gw-a' AND chain_seq = {k}"),
    )
    .await;
    assert!(
        verify_api(&ha.a).await.ok,
        "moving the record back restores the chain"
    );

    // (d) B's head row removed: B's records form a chain the journal has no head for.
    let hash: String = sqlx::query("SELECT hash FROM chain_heads WHERE chain = 'gw-b'")
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get("hash");
    exec(&ha.db, "DELETE FROM chain_heads WHERE chain = 'gw-b'").await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(&v, Some("gw-b"), ChainError::Headless { last_seq: b_len });
        assert_eq!(chain_of(&v, Some("gw-b")).recorded_head, None);
        intact(&v);
    }
    sqlx::query("INSERT INTO chain_heads (chain, seq, hash) VALUES ('gw-b', $1, $2)")
        .bind(b_len as i64)
        .bind(&hash)
        .execute(&ha.db)
        .await
        .unwrap();

    assert!(
        verify_api(&ha.a).await.ok,
        "putting the head back restores the chain"
    );

    // (e) A record of B's edited so that it no longer even reads back (its data not JSON).
    let data: String =
        sqlx::query("SELECT data FROM audit_events WHERE chain = 'gw-b' AND chain_seq = 2")
            .fetch_one(&ha.db)
            .await
            .unwrap()
            .get("data");
    exec(
        &ha.db,
        "UPDATE audit_events SET data = 'not json' WHERE chain = 'gw-b' AND chain_seq = 2",
    )
    .await;
    let v = verify_api(&ha.b).await;
    assert_broken(&v, Some("gw-b"), ChainError::Altered { seq: 2 });
    intact(&v);
    sqlx::query("UPDATE audit_events SET data = $1 WHERE chain = 'gw-b' AND chain_seq = 2")
        .bind(&data)
        .execute(&ha.db)
        .await
        .unwrap();

    let (v, total) = quiet_verify(&ha, &ha.b).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(v.count, total as u64);
    tool.close().await;
    ha.shutdown().await;
}
