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
            | Change::GrantExpired(_) => true,
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
