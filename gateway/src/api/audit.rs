//! `/v1/audit`, `/v1/tokens`, `/v1/whoami`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::api::{
    AuditPage, AuditQuery, BacklogView, IssueToken, SinkBacklog, TokenView, VerifyView, WhoAmI,
};
use sallyport_core::audit::EventKind;
use sallyport_core::model::{Role, UserState};

use super::auth::{Caller, MAX_TOKEN_TTL};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::ApiState;
use crate::store::MAX_SEARCH_LIMIT;

pub async fn search(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    if let (Some(a), Some(b)) = (q.since, q.until) {
        if a >= b {
            return Err(ApiError::invalid("since must be before until"));
        }
    }
    if let Some(t) = &q.event_type {
        if t.is_empty()
            || !t.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' || c == '_'
            })
        {
            return Err(ApiError::invalid(
                "type is a dotted event name such as access.grant.create",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_SEARCH_LIMIT}"
        )));
    }
    let events = s.control.store().search_journal(&q).await?;
    let next_after_seq = if events.len() == limit as usize {
        events.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        events,
        next_after_seq,
    }))
}

pub async fn verify(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<VerifyView>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let outcome = s.control.store().verify_journal().await?;
    Ok(Json(VerifyView {
        ok: outcome.error.is_none(),
        count: outcome.summary.count,
        head_seq: outcome.summary.head.seq,
        head_hash: outcome.summary.head.hash,
        first_bad_seq: outcome.error.as_ref().map(|e| e.first_bad_seq()),
        error: outcome.error,
    }))
}

pub async fn backlog(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<BacklogView>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let store = s.control.store();
    let head_seq = store.journal_head().await?.seq;
    let now = sallyport_core::time::Timestamp::now();
    let sinks = store
        .sink_statuses()
        .await?
        .into_iter()
        .map(|st| SinkBacklog {
            oldest_age_secs: st.oldest_pending.map(|t| t.until(now).as_secs()),
            sink: st.sink,
            checkpoint_seq: st.checkpoint_seq,
            backlog_events: st.backlog_events,
            oldest_pending: st.oldest_pending,
            delivered: st.delivered,
            rejected: st.rejected,
            quarantined: st.quarantined,
            last_error: st.last_error,
            last_error_at: st.last_error_at,
            updated_at: st.updated_at,
        })
        .collect();
    Ok(Json(BacklogView { head_seq, sinks }))
}

pub async fn issue_token(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let ttl = Duration::from_secs(req.ttl_secs.unwrap_or(3600));
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(ApiError::invalid("ttl_secs must be between 1 and 86400"));
    }
    let user = s
        .control
        .store()
        .get_user(&req.user)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {:?} not found", req.user.as_str())))?;
    if user.state != UserState::Active {
        return Err(ApiError::conflict(format!(
            "user {} is disabled",
            user.name
        )));
    }
    let issued = s
        .tokens
        .issue(&user.name, ttl)
        .map_err(|e| ApiError::internal(&e))?;
    s.control
        .record(
            &caller.actor(),
            EventKind::TokenIssued {
                user: user.name.clone(),
                token_id: issued.id.clone(),
                expires_at: issued.expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenView {
            id: issued.id,
            user: user.name,
            token: issued.token,
            expires_at: issued.expires_at,
        }),
    ))
}

pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: caller.user.name,
        roles: caller.user.roles.into_iter().collect(),
        token_expires_at: caller.token_expires_at,
    })
}
