//! The control plane: admin changes, the policy snapshot, and the change feed.
//!
//! ```text
//!  API handler ──▶ Control::create_grant(actor, …)
//!                    │  one store transaction: the change + its journal record
//!                    ▼
//!                  commit ──▶ recompile Snapshot ──▶ ArcSwap::store ──▶ feed: Notice{version, change}
//!                                                                         │
//!                                         data paths re-check live sessions ◀┘
//! ```
//!
//! # Layout
//!
//! - `error`: [`ControlError`], with the one mapping to what API clients see.
//! - `admin`: the admin operations (users, keys, targets, grants).
//! - `expiry`: the timer that announces grant windows opening and closing.
//! - `propagate`: several gateways on one PostgreSQL: `LISTEN` for other gateways' changes,
//!   periodic resync, and failing closed when the store stays unreachable.
//! - `sessions`: ending a live SSH session on whichever gateway runs it.

mod admin;
mod error;
mod expiry;
mod propagate;
mod sessions;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sallyport_core::audit::{Event, EventKind, Record};
use sallyport_core::feed::{Change, Notice};
use sallyport_core::policy::Snapshot;
use sallyport_core::time::Timestamp;
use tokio::sync::{broadcast, Mutex, MutexGuard};

pub use error::ControlError;
pub use expiry::spawn_expiry_watcher;
pub use propagate::{listener_name, spawn_propagation, ChangePayload, PropagationOptions};

use crate::store::Store;

/// How many notices a slow subscriber may fall behind before it is told it lagged (and must
/// then re-check everything against the current snapshot).
const FEED_CAPACITY: usize = 1024;

/// Who is making a change, for the audit record.
#[derive(Clone, Debug)]
pub struct Actor {
    /// User name, or the system actor.
    pub name: String,
    /// Where the request came from.
    pub source: Option<IpAddr>,
}

impl Actor {
    /// The gateway itself.
    pub fn system() -> Self {
        Self {
            name: sallyport_core::audit::SYSTEM_ACTOR.to_owned(),
            source: None,
        }
    }

    /// The event `kind` done by this actor, now.
    pub fn event(&self, kind: EventKind) -> Event {
        Event::new(Timestamp::now(), self.name.clone(), kind)
            .with_source(self.source.map(|s| s.to_string()))
    }
}

/// The control plane. Shared as `Arc<Control>`.
#[derive(Debug)]
pub struct Control {
    store: Store,
    snapshot: ArcSwap<Snapshot>,
    feed: broadcast::Sender<Notice>,
    version: AtomicU64,
    /// Orders snapshot rebuilds so that a newer one is never replaced by an older one.
    rebuild: Mutex<()>,
    /// Set while the snapshot in place is the deny-all one put there after a failed rebuild.
    degraded: AtomicBool,
    /// The store's control version (`control_version.seq`) the snapshot in place was built
    /// from; a newer one in the store means another gateway changed something.
    loaded_version: AtomicU64,
}

impl Control {
    /// Loads the current state and compiles the first snapshot.
    pub async fn open(store: Store) -> Result<Arc<Self>, ControlError> {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let control = Arc::new(Self {
            store,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            feed,
            version: AtomicU64::new(0),
            rebuild: Mutex::new(()),
            degraded: AtomicBool::new(false),
            loaded_version: AtomicU64::new(0),
        });
        control.rebuild_snapshot().await?;
        Ok(control)
    }

    /// The current policy snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Subscribes to change notices.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.feed.subscribe()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Journals an event that is not an admin change (start-up, token issue, …).
    pub async fn record(&self, actor: &Actor, kind: EventKind) -> Result<Record, ControlError> {
        Ok(self.store.append_event(&actor.event(kind)).await?)
    }

    /// Recompiles the snapshot from the store and swaps it in; returns its version.
    async fn rebuild_snapshot(&self) -> Result<u64, ControlError> {
        let turn = self.rebuild.lock().await;
        self.rebuild_in_turn(&turn).await
    }

    /// [`Control::rebuild_snapshot`] for a caller that holds the rebuild lock. The control
    /// version is read before the state, so a change committed in between makes the snapshot
    /// look older than it is (and the next resync rebuilds again), never newer.
    async fn rebuild_in_turn(&self, _turn: &MutexGuard<'_, ()>) -> Result<u64, ControlError> {
        let store_version = self.store.control_version().await?;
        let now = Timestamp::now();
        let users = self.store.list_users().await?;
        let keys = self.store.key_owners().await?;
        let targets = self.store.list_targets().await?;
        let grants = self.store.policy_grants(now).await?;
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        let snapshot = Snapshot::compile(version, &users, &keys, &targets, &grants);
        self.snapshot.store(Arc::new(snapshot));
        self.loaded_version.store(store_version, Ordering::SeqCst);
        Ok(version)
    }

    /// After a commit: new snapshot first, then the notices, so a subscriber that re-checks
    /// on a notice sees the change.
    ///
    /// If the snapshot cannot be rebuilt, the gateway fails closed: a deny-all snapshot goes in
    /// and the notices still go out, so live sessions are cut rather than kept on stale grants,
    /// until [`Control::recover`] rebuilds it.
    async fn publish(&self, changes: Vec<Change>) -> Result<(), ControlError> {
        let (version, result) = match self.rebuild_snapshot().await {
            Ok(v) => {
                self.degraded.store(false, Ordering::SeqCst);
                (v, Ok(()))
            }
            Err(e) => {
                let v = self.deny_all();
                tracing::error!(cause = %e, version = v, "policy reload failed after a committed change: denying all access until it succeeds");
                (v, Err(ControlError::PolicyReload(Box::new(e))))
            }
        };
        for change in changes {
            tracing::debug!(version, ?change, "control-plane change");
            // No subscribers is fine: nothing live to cut.
            let _ = self.feed.send(Notice { version, change });
        }
        result
    }

    fn deny_all(&self) -> u64 {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        self.snapshot
            .store(Arc::new(Snapshot::compile(version, &[], &[], &[], &[])));
        self.degraded.store(true, Ordering::SeqCst);
        version
    }

    /// Whether the deny-all snapshot is in place after a failed reload.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    /// Rebuilds the snapshot if a reload failed earlier; the expiry timer calls this.
    pub async fn recover(&self) -> Result<(), ControlError> {
        if self.is_degraded() {
            self.rebuild_snapshot().await?;
            self.degraded.store(false, Ordering::SeqCst);
            tracing::info!("policy reloaded: access decisions resume");
        }
        Ok(())
    }
}
