use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{shown, ModelError};
use super::names::{GroupName, UserName};
use crate::time::Timestamp;

/// What a user may do through the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, keys, groups, targets and grants.
    Admin,
    /// Reaches targets through the gateway; reads their own grants.
    Engineer,
    /// Reads the audit journal and session records.
    Auditor,
}

impl Role {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Engineer => "engineer",
            Role::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "engineer" => Ok(Role::Engineer),
            "auditor" => Ok(Role::Auditor),
            other => Err(ModelError::InvalidRole(shown(other))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a user may authenticate at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserState {
    /// May authenticate; access still needs a grant.
    Active,
    /// Refused everywhere; live sessions are cut.
    Disabled,
}

impl UserState {
    /// The state's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Disabled => "disabled",
        }
    }
}

impl FromStr for UserState {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(UserState::Active),
            "disabled" => Ok(UserState::Disabled),
            other => Err(ModelError::InvalidName {
                kind: "user state",
                value: shown(other),
                rule: "expected active or disabled",
            }),
        }
    }
}

/// A person or service account known to the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique, immutable name.
    pub name: UserName,
    /// At least one role.
    pub roles: BTreeSet<Role>,
    /// Groups the user belongs to; grants to a group reach its members.
    pub groups: BTreeSet<GroupName>,
    /// Active or disabled.
    pub state: UserState,
    /// When the user was added.
    pub created_at: Timestamp,
}

impl User {
    /// Whether the user holds `role` and is active.
    pub fn may(&self, role: Role) -> bool {
        self.state == UserState::Active && self.roles.contains(&role)
    }
}
