//! Control-plane change notices.
//!
//! Every change that can widen or narrow access is announced, after it is committed and the new
//! [`crate::policy::Snapshot`] is in place, so that data paths can re-check live sessions
//! ([`crate::policy::Snapshot::recheck`]) and cut what is no longer allowed at once.

use crate::model::{Fingerprint, GrantId, GroupName, TargetName, UserName};

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A user was added.
    UserCreated(UserName),
    /// A user was disabled: cut everything they have.
    UserDisabled(UserName),
    /// A user was enabled again.
    UserEnabled(UserName),
    /// A user's groups changed: group grants may have come or gone.
    UserGroupsChanged {
        /// The user.
        user: UserName,
        /// Their groups now.
        groups: Vec<GroupName>,
    },
    /// A key was registered.
    KeyAdded {
        /// Owner.
        user: UserName,
        /// The key.
        fingerprint: Fingerprint,
    },
    /// A key was removed: cut sessions authenticated with it.
    KeyRemoved {
        /// Owner.
        user: UserName,
        /// The key.
        fingerprint: Fingerprint,
    },
    /// A target was added.
    TargetCreated(TargetName),
    /// A target was removed: grants to it match nothing now.
    TargetRemoved(TargetName),
    /// A grant was created.
    GrantCreated(GrantId),
    /// A grant was revoked: cut what it carried.
    GrantRevoked(GrantId),
    /// A grant's window opened.
    GrantStarted(GrantId),
    /// A grant's window closed: cut what it carried.
    GrantExpired(GrantId),
    /// The snapshot was reloaded from the store without knowing exactly what changed (another
    /// gateway's change that could not be decoded, a periodic resync that found the snapshot
    /// stale, or the store unreachable past the grace period): re-check everything.
    Resynced,
    /// An admin asked for this SSH session (its id) to end, wherever it runs.
    SessionKilled(String),
}

impl Change {
    /// Whether the change can take access away, so live sessions must be re-checked.
    pub fn may_cut_access(&self) -> bool {
        match self {
            Change::UserDisabled(_)
            | Change::UserGroupsChanged { .. }
            | Change::KeyRemoved { .. }
            | Change::TargetRemoved(_)
            | Change::GrantRevoked(_)
            | Change::GrantExpired(_)
            | Change::Resynced => true,
            // Only the session it names ends; nothing else needs a re-check.
            Change::SessionKilled(_) => false,
            Change::UserCreated(_)
            | Change::UserEnabled(_)
            | Change::KeyAdded { .. }
            | Change::TargetCreated(_)
            | Change::GrantCreated(_)
            | Change::GrantStarted(_) => false,
        }
    }
}

/// A change, stamped with the snapshot version that already reflects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The snapshot version after the change.
    pub version: u64,
    /// The change.
    pub change: Change,
}
