//! `key add|list|remove`.

use sallyport_core::api::{AddKey, KeyView};
use sallyport_core::model::{Fingerprint, UserName};

use super::{read_public_key, Ctx};
use crate::args::KeyCmd;
use crate::error::CliError;
use crate::output::{clean, Table};

/// A `key` command with its key text read and checked.
#[derive(Debug)]
pub enum KeyAction {
    /// Register `public_key` for `user`.
    Add {
        /// Owner.
        user: UserName,
        /// One checked OpenSSH public key line.
        public_key: String,
    },
    /// List keys.
    List {
        /// Of this user only.
        user: Option<UserName>,
    },
    /// Remove a key.
    Remove {
        /// Its fingerprint.
        fingerprint: Fingerprint,
    },
}

pub(super) fn prepare(cmd: KeyCmd) -> Result<KeyAction, CliError> {
    Ok(match cmd {
        KeyCmd::Add {
            user,
            public_key,
            file,
        } => {
            let public_key = match (public_key, file) {
                (Some(key), _) => key,
                (None, Some(path)) => read_public_key("public key file", &path)?,
                (None, None) => {
                    return Err(CliError::Config(
                        "give the public key as an argument or with --file",
                    ))
                }
            };
            KeyAction::Add { user, public_key }
        }
        KeyCmd::List { user } => KeyAction::List { user },
        KeyCmd::Remove { fingerprint } => KeyAction::Remove { fingerprint },
    })
}

pub(super) async fn run(ctx: &Ctx, action: KeyAction) -> Result<(), CliError> {
    let reply = match action {
        KeyAction::Add { user, public_key } => {
            ctx.api
                .post(
                    &["users", user.as_str(), "keys"],
                    Some(&AddKey { public_key }),
                )
                .await?
        }
        KeyAction::List { user } => {
            let reply = match user {
                Some(u) => ctx.api.get(&["users", u.as_str(), "keys"], &[]).await?,
                None => ctx.api.get(&["keys"], &[]).await?,
            };
            return ctx.out.list(&reply.url, reply.body, keys_table);
        }
        KeyAction::Remove { fingerprint } => {
            ctx.api
                .delete(&["keys"], &[("fingerprint", fingerprint.to_string())])
                .await?
        }
    };
    ctx.out.one(&reply.url, reply.body, |k: &KeyView| {
        keys_table(std::slice::from_ref(k))
    })
}

/// FINGERPRINT USER ALGORITHM COMMENT ADDED
pub fn keys_table(keys: &[KeyView]) -> Table {
    let mut t = Table::new(&["FINGERPRINT", "USER", "ALGORITHM", "COMMENT", "ADDED"]);
    for k in keys {
        t.row([
            k.id.to_string(),
            k.user.to_string(),
            clean(&k.algorithm),
            clean(&k.comment),
            k.created_at.to_string(),
        ]);
    }
    t
}
