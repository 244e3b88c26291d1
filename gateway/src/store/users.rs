use std::collections::{BTreeMap, BTreeSet};

use sallyport_core::model::{GroupName, Role, User, UserName, UserState};
use sqlx::AnyConnection;

use super::rows::{join, parse, parse_list, text, time};
use super::{Store, StoreError, WriteTx};

impl Store {
    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        list_users(&mut conn).await
    }

    /// One user.
    pub async fn get_user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        get_user(&mut conn, name).await
    }

    /// Every group with its members.
    pub async fn list_groups(&self) -> Result<Vec<(GroupName, Vec<UserName>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, user_name FROM user_groups ORDER BY group_name, user_name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut groups: BTreeMap<GroupName, Vec<UserName>> = BTreeMap::new();
        for row in rows {
            let g: GroupName = parse(
                || "user_groups.group_name".into(),
                &text(&row, "group_name")?,
            )?;
            let u: UserName = parse(|| "user_groups.user_name".into(), &text(&row, "user_name")?)?;
            groups.entry(g).or_default().push(u);
        }
        Ok(groups.into_iter().collect())
    }
}

impl WriteTx {
    /// One user, inside the transaction.
    pub async fn get_user(&mut self, name: &UserName) -> Result<Option<User>, StoreError> {
        get_user(&mut self.tx, name).await
    }

    /// Adds a user; refuses a duplicate name.
    pub async fn insert_user(&mut self, user: &User) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (name, roles, state, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user.name.to_string())
            .bind(join(&user.roles))
            .bind(user.state.as_str())
            .bind(user.created_at.as_millis())
            .execute(&mut *self.tx)
            .await
            .map_err(|e| StoreError::conflict_or(e, "user", user.name.as_str()))?;
        self.insert_groups(&user.name, &user.groups).await
    }

    /// Sets a user's state.
    pub async fn set_user_state(
        &mut self,
        name: &UserName,
        state: UserState,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET state = $1 WHERE name = $2")
            .bind(state.as_str())
            .bind(name.to_string())
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "user",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Replaces a user's groups.
    pub async fn set_user_groups(
        &mut self,
        name: &UserName,
        groups: &BTreeSet<GroupName>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_groups WHERE user_name = $1")
            .bind(name.to_string())
            .execute(&mut *self.tx)
            .await?;
        self.insert_groups(name, groups).await
    }

    async fn insert_groups(
        &mut self,
        name: &UserName,
        groups: &BTreeSet<GroupName>,
    ) -> Result<(), StoreError> {
        for g in groups {
            sqlx::query("INSERT INTO user_groups (user_name, group_name) VALUES ($1, $2)")
                .bind(name.to_string())
                .bind(g.to_string())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Whether any user is in `group`.
    pub async fn group_has_members(&mut self, group: &GroupName) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM user_groups WHERE group_name = $1")
            .bind(group.to_string())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(super::rows::int(&row, "n")? > 0)
    }
}

pub(super) async fn list_users(conn: &mut AnyConnection) -> Result<Vec<User>, StoreError> {
    let rows = sqlx::query("SELECT name, roles, state, created_at FROM users ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    let memberships = sqlx::query("SELECT user_name, group_name FROM user_groups")
        .fetch_all(&mut *conn)
        .await?;
    let mut groups: BTreeMap<String, BTreeSet<GroupName>> = BTreeMap::new();
    for m in memberships {
        let user = text(&m, "user_name")?;
        let g = parse(|| format!("group of user {user}"), &text(&m, "group_name")?)?;
        groups.entry(user).or_default().insert(g);
    }
    rows.iter()
        .map(|row| {
            let name = text(row, "name")?;
            let g = groups.remove(&name).unwrap_or_default();
            user_from_row(row, name, g)
        })
        .collect()
}

async fn get_user(conn: &mut AnyConnection, name: &UserName) -> Result<Option<User>, StoreError> {
    let Some(row) = sqlx::query("SELECT name, roles, state, created_at FROM users WHERE name = $1")
        .bind(name.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let memberships = sqlx::query("SELECT group_name FROM user_groups WHERE user_name = $1")
        .bind(name.to_string())
        .fetch_all(&mut *conn)
        .await?;
    let groups = memberships
        .iter()
        .map(|m| parse(|| format!("group of user {name}"), &text(m, "group_name")?))
        .collect::<Result<BTreeSet<GroupName>, StoreError>>()?;
    user_from_row(&row, name.to_string(), groups).map(Some)
}

fn user_from_row(
    row: &sqlx::any::AnyRow,
    name: String,
    groups: BTreeSet<GroupName>,
) -> Result<User, StoreError> {
    let roles: Vec<Role> = parse_list(|| format!("roles of user {name}"), &text(row, "roles")?)?;
    let state: UserState = parse(|| format!("state of user {name}"), &text(row, "state")?)?;
    Ok(User {
        name: parse(|| format!("user name {name:?}"), &name)?,
        roles: roles.into_iter().collect(),
        groups,
        state,
        created_at: time(row, "created_at")?,
    })
}
