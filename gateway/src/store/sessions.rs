//! `ssh_sessions`: one row per authenticated SSH session, started and ended by the gateway
//! instance that runs it, listed by auditors.

use sallyport_core::api::{SessionQuery, SessionView};
use sallyport_core::audit::{Event, EventKind};
use sallyport_core::model::{Login, TargetName, UserName};
use sallyport_core::time::Timestamp;
use sqlx::any::AnyRow;

use super::rows::{int, opt_text, opt_time, parse, text, time};
use super::{Store, StoreError, WriteTx};

/// Most sessions one listing returns.
pub const MAX_SESSION_LIMIT: u32 = 1000;

const COLUMNS: &str = "id, instance, user_name, source, mode, target, login, client, \
                       started_at, ended_at, end_reason, recorded";

/// How a session reaches its targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionMode {
    /// `ssh -J`: tunnels to targets.
    Jump,
    /// `ssh login@target@gateway`: the gateway logs in onward.
    Proxy {
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
    },
}

/// A session as it starts.
#[derive(Clone, Debug)]
pub struct SessionStart {
    /// The session id.
    pub id: String,
    /// This gateway's instance name.
    pub instance: String,
    /// The user.
    pub user: UserName,
    /// The client's address.
    pub source: String,
    /// Jump or proxy.
    pub mode: SessionMode,
    /// The client's version string.
    pub client: String,
    /// When.
    pub started_at: Timestamp,
}

impl SessionStart {
    /// The start `event` (`ssh.session.start` of session `event.session`) records, journaled by
    /// `instance`; `None` for another event, or one from before version 2 (no mode).
    pub(crate) fn from_event(event: &Event, instance: &str) -> Option<Self> {
        let EventKind::SshSessionStarted {
            user,
            client,
            mode: Some(mode),
            target,
            login,
        } = &event.kind
        else {
            return None;
        };
        let mode = match (mode.as_str(), target, login) {
            ("jump", _, _) => SessionMode::Jump,
            ("proxy", Some(target), Some(login)) => SessionMode::Proxy {
                target: target.clone(),
                login: login.clone(),
            },
            _ => return None,
        };
        Some(Self {
            id: event.session.clone()?,
            instance: instance.to_owned(),
            user: user.clone(),
            source: event.source.clone().unwrap_or_default(),
            mode,
            client: client.clone(),
            started_at: event.time,
        })
    }
}

impl WriteTx {
    /// Inserts a session's row. With `keep_existing`, a row already there is left as it is;
    /// without, it is a conflict.
    pub(crate) async fn insert_session(
        &mut self,
        s: &SessionStart,
        keep_existing: bool,
    ) -> Result<(), StoreError> {
        let (mode, target, login) = match &s.mode {
            SessionMode::Jump => ("jump", None, None),
            SessionMode::Proxy { target, login } => {
                ("proxy", Some(target.to_string()), Some(login.to_string()))
            }
        };
        let on_conflict = if keep_existing {
            " ON CONFLICT (id) DO NOTHING"
        } else {
            ""
        };
        sqlx::query(&format!(
            "INSERT INTO ssh_sessions (id, instance, user_name, source, mode, target, login, client, started_at, recorded) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0){on_conflict}"
        ))
        .bind(s.id.clone())
        .bind(s.instance.clone())
        .bind(s.user.to_string())
        .bind(s.source.clone())
        .bind(mode)
        .bind(target)
        .bind(login)
        .bind(s.client.clone())
        .bind(s.started_at.as_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "session", &s.id))?;
        Ok(())
    }

    /// Records a session's end (once: a second end changes nothing).
    pub(crate) async fn end_session(
        &mut self,
        id: &str,
        ended_at: Timestamp,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE ssh_sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id.to_owned())
        .bind(ended_at.as_millis())
        .bind(reason.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Records a session's start.
    pub async fn session_started(&self, s: &SessionStart) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.insert_session(s, false).await?;
        tx.commit().await
    }

    /// Records a session's end (once: a second end changes nothing).
    pub async fn session_ended(
        &self,
        id: &str,
        ended_at: Timestamp,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.end_session(id, ended_at, reason).await?;
        tx.commit().await
    }

    /// Ends every session `instance` left live (it stopped without ending them: a crash or a
    /// kill); returns how many.
    pub async fn end_orphan_sessions(
        &self,
        instance: &str,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE ssh_sessions SET ended_at = $2, end_reason = $3 WHERE instance = $1 AND ended_at IS NULL",
        )
        .bind(instance.to_owned())
        .bind(at.as_millis())
        .bind(reason.to_owned())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Notes that a session has a recording.
    pub async fn mark_session_recorded(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE ssh_sessions SET recorded = 1 WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// One session.
    pub async fn get_session(&self, id: &str) -> Result<Option<SessionView>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ssh_sessions WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Sessions matching `q`, newest first (`limit` defaults to 100).
    pub async fn list_sessions(&self, q: &SessionQuery) -> Result<Vec<SessionView>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM ssh_sessions WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        match q.live {
            Some(true) => sql.push_str(" AND ended_at IS NULL"),
            Some(false) => sql.push_str(" AND ended_at IS NOT NULL"),
            None => {}
        }
        if let Some(user) = &q.user {
            binds.push(Bind::Text(user.to_string()));
            sql.push_str(&format!(" AND user_name = ${}", binds.len()));
        }
        if let Some(target) = &q.target {
            binds.push(Bind::Text(target.to_string()));
            sql.push_str(&format!(" AND target = ${}", binds.len()));
        }
        if let Some(since) = q.since {
            binds.push(Bind::Int(since.as_millis()));
            sql.push_str(&format!(" AND started_at >= ${}", binds.len()));
        }
        let limit = q.limit.unwrap_or(100).clamp(1, MAX_SESSION_LIMIT);
        binds.push(Bind::Int(i64::from(limit)));
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id LIMIT ${}",
            binds.len()
        ));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(session_from_row).collect()
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

fn session_from_row(row: &AnyRow) -> Result<SessionView, StoreError> {
    let id = text(row, "id")?;
    let user = text(row, "user_name")?;
    let target = opt_text(row, "target")?
        .map(|t| parse(|| format!("target of session {id}"), &t))
        .transpose()?;
    let login = opt_text(row, "login")?
        .map(|l| parse(|| format!("login of session {id}"), &l))
        .transpose()?;
    Ok(SessionView {
        user: parse(|| format!("user of session {id}"), &user)?,
        instance: text(row, "instance")?,
        source: text(row, "source")?,
        mode: text(row, "mode")?,
        target,
        login,
        client: text(row, "client")?,
        started_at: time(row, "started_at")?,
        ended_at: opt_time(row, "ended_at")?,
        end_reason: opt_text(row, "end_reason")?,
        recorded: int(row, "recorded")? != 0,
        recordings: Vec::new(),
        id,
    })
}
