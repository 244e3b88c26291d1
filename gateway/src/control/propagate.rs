//! Several gateways on one PostgreSQL: each hears the others' changes, catches up on what it
//! missed, and fails closed when it can no longer hear anything.
//!
//! ```text
//!  gateway A: commit_change ─ same tx: control_version += 1, pg_notify(sallyport_control,
//!             {"v":N,"c":[["grant.revoke","<id>"]]}) ─▶ COMMIT
//!                                              │ (delivered only on commit)
//!  gateway B: listener task (own connection, application_name sallyport-listen/<instance>)
//!               └─ notification ─▶ sync_from_store(N): rebuild unless the snapshot is at N
//!                                  already ─▶ ArcSwap ─▶ feed: the decoded change(s), plus
//!                                  Resynced if versions were skipped
//!             periodic resync (min(resync_interval, offline_grace / 2); every
//!             `degraded_resync_interval` while the listener is down): read control_version,
//!             rebuild and announce Resynced if the store moved on
//!             listener lost ─▶ reconnect with backoff ─▶ LISTEN ─▶ resync at once
//!             no contact with the store for offline_grace ─▶ deny-all snapshot + Resynced
//!             (live sessions re-check against it and end); the next successful resync
//!             rebuilds the real snapshot
//! ```
//!
//! SQLite has no listener: it is single-instance (the gateway takes an exclusive lock beside
//! the database file) and every change goes through the one process.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sallyport_core::feed::{Change, Notice};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Control, ControlError};
use crate::audit::Backoff;
use crate::store::{redact_url, StoreError, CHANGE_CHANNEL};

/// How a gateway follows the others (`[store]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationOptions {
    /// How often the snapshot's version is compared with the store's while the listener is up.
    pub resync_interval: Duration,
    /// How often while the listener is down.
    pub degraded_resync_interval: Duration,
    /// How long the gateway keeps deciding on its last snapshot without any contact with the
    /// store; after that it denies everything until the store answers again.
    pub offline_grace: Duration,
    /// How long one resync query or listener connection attempt may take.
    pub query_timeout: Duration,
    /// Where audit events are spooled while the database is out of reach (the state
    /// directory); `None`: no spool, such events are lost (logged).
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for PropagationOptions {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(30),
            degraded_resync_interval: Duration::from_secs(1),
            offline_grace: Duration::from_secs(60),
            query_timeout: Duration::from_secs(3),
            spool_dir: None,
        }
    }
}

impl PropagationOptions {
    /// The resync period while the listener is up: often enough that a healthy store is seen
    /// at least twice per grace period.
    fn healthy_period(&self) -> Duration {
        self.resync_interval.min(self.offline_grace / 2)
    }
}

/// What a gateway tells the others about a committed change: the control version it moved
/// the store to, and the changes (each as `[kind, args…]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePayload {
    /// The control version after the change.
    pub v: u64,
    /// The changes.
    pub c: Vec<Vec<String>>,
}

impl ChangePayload {
    /// The notification text for `changes` committed at control version `version`.
    pub fn encode(version: u64, changes: &[Change]) -> String {
        let payload = ChangePayload {
            v: version,
            c: changes.iter().map(wire).collect(),
        };
        serde_json::to_string(&payload).unwrap_or_else(|_| version.to_string())
    }

    /// The version and the changes in a notification. A change this gateway cannot decode
    /// (a newer gateway's, or a payload cut to the bare version) becomes [`Change::Resynced`]:
    /// re-check everything. `None` if not even the version can be read.
    pub fn decode(text: &str) -> Option<(u64, Vec<Change>)> {
        if let Ok(p) = serde_json::from_str::<ChangePayload>(text) {
            let mut changes: Vec<Change> = Vec::with_capacity(p.c.len());
            for c in &p.c {
                let change = unwire(c).unwrap_or(Change::Resynced);
                if !changes.contains(&change) {
                    changes.push(change);
                }
            }
            if changes.is_empty() {
                changes.push(Change::Resynced);
            }
            return Some((p.v, changes));
        }
        text.trim()
            .parse::<u64>()
            .ok()
            .map(|v| (v, vec![Change::Resynced]))
    }
}

fn wire(change: &Change) -> Vec<String> {
    let one = |k: &str, a: String| vec![k.to_owned(), a];
    match change {
        Change::UserCreated(u) => one("user.create", u.to_string()),
        Change::UserDisabled(u) => one("user.disable", u.to_string()),
        Change::UserEnabled(u) => one("user.enable", u.to_string()),
        Change::UserGroupsChanged { user, groups } => {
            let mut v = vec!["user.groups".to_owned(), user.to_string()];
            v.extend(groups.iter().map(ToString::to_string));
            v
        }
        Change::KeyAdded { user, fingerprint } => {
            vec!["key.add".into(), user.to_string(), fingerprint.to_string()]
        }
        Change::KeyRemoved { user, fingerprint } => {
            vec![
                "key.remove".into(),
                user.to_string(),
                fingerprint.to_string(),
            ]
        }
        Change::TargetCreated(t) => one("target.create", t.to_string()),
        Change::TargetRemoved(t) => one("target.remove", t.to_string()),
        Change::GrantCreated(g) => one("grant.create", g.to_string()),
        Change::GrantRevoked(g) => one("grant.revoke", g.to_string()),
        Change::GrantStarted(g) => one("grant.start", g.to_string()),
        Change::GrantExpired(g) => one("grant.expire", g.to_string()),
        Change::Resynced => vec!["resync".into()],
        Change::SessionKilled(id) => one("session.kill", id.clone()),
        // A change this version does not know how to name: the others re-check everything.
        _ => vec!["other".into()],
    }
}

fn unwire(c: &[String]) -> Option<Change> {
    fn p<T: FromStr>(s: Option<&String>) -> Option<T> {
        s?.parse().ok()
    }
    let (kind, args) = c.split_first()?;
    let a = args.first();
    let b = args.get(1);
    Some(match kind.as_str() {
        "user.create" => Change::UserCreated(p(a)?),
        "user.disable" => Change::UserDisabled(p(a)?),
        "user.enable" => Change::UserEnabled(p(a)?),
        "user.groups" => Change::UserGroupsChanged {
            user: p(a)?,
            groups: args
                .iter()
                .skip(1)
                .map(|g| g.parse().ok())
                .collect::<Option<Vec<_>>>()?,
        },
        "key.add" => Change::KeyAdded {
            user: p(a)?,
            fingerprint: b?.clone().try_into().ok()?,
        },
        "key.remove" => Change::KeyRemoved {
            user: p(a)?,
            fingerprint: b?.clone().try_into().ok()?,
        },
        "target.create" => Change::TargetCreated(p(a)?),
        "target.remove" => Change::TargetRemoved(p(a)?),
        "grant.create" => Change::GrantCreated(p(a)?),
        "grant.revoke" => Change::GrantRevoked(p(a)?),
        "grant.start" => Change::GrantStarted(p(a)?),
        "grant.expire" => Change::GrantExpired(p(a)?),
        "session.kill" => Change::SessionKilled(a?.clone()),
        _ => return None,
    })
}

impl Control {
    /// Catches up with the store: with `announced` (a notification's version and changes),
    /// rebuilds unless the snapshot already reflects that version; without, rebuilds if the
    /// store's control version moved past the snapshot's. A deny-all snapshot is always
    /// rebuilt. The changes go out on the feed after the new snapshot is in place, with
    /// [`Change::Resynced`] added when more moved than the notification names. Returns
    /// whether it rebuilt.
    pub async fn sync_from_store(
        &self,
        announced: Option<(u64, Vec<Change>)>,
    ) -> Result<bool, ControlError> {
        let turn = self.rebuild.lock().await;
        let before = self.loaded_version.load(Ordering::SeqCst);
        let degraded = self.is_degraded();
        let (target, mut changes) = match announced {
            Some((v, c)) => (Some(v), c),
            None => (None, Vec::new()),
        };
        if !degraded {
            let target = match target {
                Some(v) => v,
                None => self.store.control_version().await?,
            };
            if target <= before {
                return Ok(false);
            }
        }
        let version = self.rebuild_in_turn(&turn).await?;
        drop(turn);
        let after = self.loaded_version.load(Ordering::SeqCst);
        let exact = !degraded && target == Some(after) && after == before.saturating_add(1);
        if !exact && !changes.contains(&Change::Resynced) {
            changes.push(Change::Resynced);
        }
        if degraded {
            self.degraded.store(false, Ordering::SeqCst);
            tracing::info!(
                version = after,
                "policy reloaded from the store: access decisions resume"
            );
        }
        tracing::debug!(
            from = before,
            to = after,
            ?changes,
            "caught up with the store"
        );
        for change in changes {
            let _ = self.feed.send(Notice { version, change });
        }
        Ok(true)
    }

    /// The store has been out of reach too long: put the deny-all snapshot in place and tell
    /// live sessions to re-check (they end). Nothing if it is in place already.
    pub async fn fail_closed(&self, why: &str) {
        let _turn = self.rebuild.lock().await;
        if self.is_degraded() {
            return;
        }
        let version = self.deny_all();
        tracing::error!(
            cause = why,
            version,
            "the store is unreachable past the offline grace period: denying all access until it answers"
        );
        let _ = self.feed.send(Notice {
            version,
            change: Change::Resynced,
        });
    }
}

/// What the listener task reports: (its generation, event).
#[derive(Debug)]
enum Heard {
    /// A notification's payload.
    Notified(String),
    /// The LISTEN connection is gone; notifications may have been missed.
    Lost(String),
}

/// Aborts the listener task when the propagation task ends or replaces it.
#[derive(Debug)]
struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows the other gateways on the PostgreSQL store at `url` until `shutdown` turns true.
/// `instance` names this gateway's LISTEN connection (`application_name` =
/// `sallyport-listen/<instance>`) for operators. Fails only if `url` cannot be parsed.
pub fn spawn_propagation(
    control: Arc<Control>,
    url: &str,
    instance: &str,
    opts: PropagationOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, StoreError> {
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Connect {
            url: redact_url(url),
            cause: e.to_string(),
        })?
        .application_name(&listener_name(instance));
    Ok(tokio::spawn(run(control, connect, opts, shutdown)))
}

/// The `application_name` of `instance`'s LISTEN connection.
pub fn listener_name(instance: &str) -> String {
    format!("sallyport-listen/{instance}")
}

async fn listen(connect: &PgConnectOptions, timeout: Duration) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(timeout)
        .connect_lazy_with(connect.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANGE_CHANNEL).await?;
    Ok(listener)
}

fn spawn_listener(
    mut listener: PgListener,
    generation: u64,
    heard: mpsc::Sender<(u64, Heard)>,
) -> ListenerTask {
    ListenerTask(tokio::spawn(async move {
        loop {
            let event = match listener.try_recv().await {
                Ok(Some(n)) => Heard::Notified(n.payload().to_owned()),
                Ok(None) => Heard::Lost("connection closed".into()),
                Err(e) => Heard::Lost(e.to_string()),
            };
            let lost = matches!(event, Heard::Lost(_));
            if heard.send((generation, event)).await.is_err() || lost {
                return;
            }
        }
    }))
}

async fn run(
    control: Arc<Control>,
    connect: PgConnectOptions,
    opts: PropagationOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let (heard_tx, mut heard) = mpsc::channel::<(u64, Heard)>(256);
    let mut listener: Option<ListenerTask> = None;
    let mut generation = 0u64;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut next_connect = Instant::now();
    let mut next_resync = Instant::now();
    let mut last_contact = Instant::now();
    loop {
        let now = Instant::now();
        if listener.is_none() && now >= next_connect {
            match tokio::time::timeout(opts.query_timeout, listen(&connect, opts.query_timeout))
                .await
            {
                Ok(Ok(l)) => {
                    generation += 1;
                    listener = Some(spawn_listener(l, generation, heard_tx.clone()));
                    if backoff.attempts() > 0 {
                        tracing::info!("listening for other gateways' changes again");
                    }
                    backoff.reset();
                    // Whatever was announced while nobody listened: catch up now.
                    next_resync = Instant::now();
                }
                outcome => {
                    let cause = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    let wait = backoff.next_wait();
                    tracing::warn!(%cause, retry_in = ?wait, "cannot listen for other gateways' changes");
                    next_connect = Instant::now() + wait;
                }
            }
        }
        let mut attempted = false;
        if Instant::now() >= next_resync {
            attempted = true;
            let synced =
                tokio::time::timeout(opts.query_timeout, control.sync_from_store(None)).await;
            let period = if listener.is_some() {
                opts.healthy_period()
            } else {
                opts.degraded_resync_interval
            };
            match synced {
                Ok(Ok(rebuilt)) => {
                    if rebuilt {
                        tracing::info!("resync found changes this gateway had not heard of");
                    }
                    last_contact = Instant::now();
                    next_resync = last_contact + period;
                    // Bounded: events arriving meanwhile wait for the spool.
                    let drained =
                        tokio::time::timeout(opts.query_timeout, control.store().drain_spool())
                            .await;
                    match drained {
                        Ok(Ok(0)) => {}
                        Ok(Ok(n)) => tracing::info!(events = n, "spooled audit events journaled"),
                        Ok(Err(e)) => {
                            tracing::warn!(cause = %e, "draining the audit spool failed; will retry");
                            next_resync = Instant::now() + opts.degraded_resync_interval;
                        }
                        Err(_) => {
                            tracing::warn!("draining the audit spool timed out; will retry");
                            next_resync = Instant::now() + opts.degraded_resync_interval;
                        }
                    }
                }
                outcome => {
                    let cause = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%cause, "resync with the store failed");
                    next_resync = Instant::now() + opts.degraded_resync_interval;
                }
            }
        }
        // Only right after a failed attempt: a gateway whose snapshot someone else rebuilt (the
        // expiry timer's recover) must not fail closed on an old `last_contact`.
        if attempted && last_contact.elapsed() >= opts.offline_grace {
            control
                .fail_closed(&format!(
                    "no answer from the store for {:?}",
                    last_contact.elapsed()
                ))
                .await;
        }
        let mut wake = next_resync;
        if listener.is_none() {
            wake = wake.min(next_connect);
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            Some((g, event)) = heard.recv() => {
                if g != generation {
                    continue;
                }
                match event {
                    Heard::Notified(text) => {
                        last_contact = Instant::now();
                        let Some(announced) = ChangePayload::decode(&text) else {
                            tracing::warn!(payload = %text, "unreadable change notification: resyncing");
                            next_resync = Instant::now();
                            continue;
                        };
                        let synced = tokio::time::timeout(
                            opts.query_timeout,
                            control.sync_from_store(Some(announced)),
                        )
                        .await;
                        if !matches!(synced, Ok(Ok(_))) {
                            tracing::warn!("reloading after another gateway's change failed: retrying");
                            next_resync = Instant::now() + opts.degraded_resync_interval;
                        }
                    }
                    Heard::Lost(cause) => {
                        tracing::warn!(%cause, "lost the connection that listens for other gateways' changes");
                        listener = None;
                        next_connect = Instant::now();
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {}
            // Audit events were spooled (the database did not answer a journal write): try to
            // reach it, and drain, within the degraded interval rather than the healthy one.
            () = spooled(&control) => {
                next_resync = next_resync.min(Instant::now() + opts.degraded_resync_interval);
            }
        }
    }
}

/// Resolves when the store's spool took events; never if it has no spool.
async fn spooled(control: &Control) {
    match control.store().spool() {
        Some(spool) => spool.spooled().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sallyport_core::model::GrantId;

    #[test]
    fn payload_round_trips() {
        let g = GrantId::random();
        let changes = vec![
            Change::GrantRevoked(g),
            Change::UserDisabled("alice".parse().unwrap()),
            Change::UserGroupsChanged {
                user: "bob".parse().unwrap(),
                groups: vec!["ops".parse().unwrap(), "dba".parse().unwrap()],
            },
        ];
        let text = ChangePayload::encode(7, &changes);
        assert!(text.len() < 300, "{text}");
        assert_eq!(ChangePayload::decode(&text), Some((7, changes)));
    }

    #[test]
    fn unknown_or_cut_payloads_mean_recheck_everything() {
        assert_eq!(
            ChangePayload::decode("42"),
            Some((42, vec![Change::Resynced]))
        );
        assert_eq!(
            ChangePayload::decode(r#"{"v":3,"c":[["device.revoke","x"],["grant.revoke","nope"]]}"#),
            Some((3, vec![Change::Resynced]))
        );
        assert_eq!(ChangePayload::decode("garbage"), None);
    }

    #[test]
    fn healthy_period_fits_the_grace() {
        let o = PropagationOptions {
            offline_grace: Duration::from_secs(10),
            ..Default::default()
        };
        assert_eq!(o.healthy_period(), Duration::from_secs(5));
        assert_eq!(
            PropagationOptions::default().healthy_period(),
            Duration::from_secs(30)
        );
    }
}
