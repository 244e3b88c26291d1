use sallyport_core::model::ModelError;

use crate::store::StoreError;

/// Why an admin operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The request is malformed or breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// Something it names does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// It conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// The change was committed, but the policy could not be reloaded; all access is denied
    /// until it is.
    #[error("the change was committed, but the policy could not be reloaded ({0}); access is denied until it is")]
    PolicyReload(Box<ControlError>),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, name } => ControlError::NotFound { kind, name },
            StoreError::Conflict { kind, name } => {
                ControlError::Conflict(format!("{kind} {name:?} already exists"))
            }
            other => ControlError::Store(other),
        }
    }
}
