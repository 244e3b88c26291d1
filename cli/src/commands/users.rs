//! `user …` and `group list`.

use sallyport_core::api::{CreateUser, SetGroups, UserView};
use sallyport_core::model::{GroupName, UserName};
use serde::Deserialize;

use super::Ctx;
use crate::args::UserCmd;
use crate::error::CliError;
use crate::output::{joined, Table};

/// One entry of `GET /v1/groups`.
#[derive(Debug, Deserialize)]
pub struct GroupView {
    /// The group.
    pub id: GroupName,
    /// Its members.
    pub members: Vec<UserName>,
}

pub(super) async fn run(ctx: &Ctx, cmd: UserCmd) -> Result<(), CliError> {
    let reply = match cmd {
        UserCmd::Add {
            name,
            roles,
            groups,
        } => {
            let body = CreateUser {
                name,
                roles,
                groups,
            };
            ctx.api.post(&["users"], Some(&body)).await?
        }
        UserCmd::List => {
            let reply = ctx.api.get(&["users"], &[]).await?;
            return ctx.out.list(&reply.url, reply.body, users_table);
        }
        UserCmd::Show { name } => ctx.api.get(&["users", name.as_str()], &[]).await?,
        UserCmd::Disable { name } => {
            ctx.api
                .post(&["users", name.as_str(), "disable"], None::<&()>)
                .await?
        }
        UserCmd::Enable { name } => {
            ctx.api
                .post(&["users", name.as_str(), "enable"], None::<&()>)
                .await?
        }
        UserCmd::Groups { name, groups } => {
            ctx.api
                .put(&["users", name.as_str(), "groups"], &SetGroups { groups })
                .await?
        }
    };
    ctx.out.one(&reply.url, reply.body, |u: &UserView| {
        users_table(std::slice::from_ref(u))
    })
}

pub(super) async fn groups(ctx: &Ctx) -> Result<(), CliError> {
    let reply = ctx.api.get(&["groups"], &[]).await?;
    ctx.out.list(&reply.url, reply.body, groups_table)
}

/// NAME ROLES GROUPS STATE ADDED
pub fn users_table(users: &[UserView]) -> Table {
    let mut t = Table::new(&["NAME", "ROLES", "GROUPS", "STATE", "ADDED"]);
    for u in users {
        t.row([
            u.id.to_string(),
            joined(&u.roles),
            joined(&u.groups),
            u.state.as_str().to_owned(),
            u.created_at.to_string(),
        ]);
    }
    t
}

/// GROUP MEMBERS
pub fn groups_table(groups: &[GroupView]) -> Table {
    let mut t = Table::new(&["GROUP", "MEMBERS"]);
    for g in groups {
        t.row([g.id.to_string(), joined(&g.members)]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_rows() {
        let u: UserView = serde_json::from_value(serde_json::json!({
            "id": "alice", "roles": ["admin", "auditor"], "groups": [], "state": "active",
            "created_at": "2026-01-31T17:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            users_table(&[u]).render(),
            "NAME   ROLES          GROUPS  STATE   ADDED\n\
             alice  admin,auditor  -       active  2026-01-31T17:00:00Z\n"
        );
    }

    #[test]
    fn group_rows() {
        let g: Vec<GroupView> =
            serde_json::from_value(serde_json::json!([{"id": "ops", "members": ["alice", "bob"]}]))
                .unwrap();
        assert_eq!(
            groups_table(&g).render(),
            "GROUP  MEMBERS\nops    alice,bob\n"
        );
    }
}
