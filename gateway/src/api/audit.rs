//! `/v1/audit`, `/v1/tokens`, `/v1/whoami`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::api::{
    AuditPage, AuditQuery, BacklogView, ChainHeadView, ChainVerifyView, ChainsView, IssueToken,
    SinkBacklog, TokenView, VerifyView, WhoAmI,
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
    if let Some(c) = &q.chain {
        // '' is the shared chain; otherwise an instance name as the config allows it.
        let ok = c.len() <= 64
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !ok {
            return Err(ApiError::invalid(
                "chain is a gateway instance name (1-64 characters of A-Z a-z 0-9 - _ .), or empty for the shared chain",
            ));
        }
    }
    if q.after_chain_seq.is_some() && q.chain.is_none() {
        return Err(ApiError::invalid("after_chain_seq needs chain"));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_SEARCH_LIMIT}"
        )));
    }
    let events = s.control.store().search_journal(&q).await?;
    let next_after_seq = if events.len() == limit as usize {
        events.last().and_then(|r| r.pos)
    } else {
        None
    };
    Ok(Json(AuditPage {
        events,
        next_after_seq,
    }))
}

/// Every chain's recorded head: the shared chain (if it has records) first, then one per
/// gateway instance.
pub async fn chains(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<ChainsView>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let chains = s
        .control
        .store()
        .chain_heads()
        .await?
        .into_iter()
        .map(|(chain, head)| ChainHeadView { chain, head })
        .collect();
    Ok(Json(ChainsView { chains }))
}

pub async fn verify(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<VerifyView>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let outcome = s.control.store().verify_journal().await?;
    let chains: Vec<ChainVerifyView> = outcome
        .chains
        .into_iter()
        .map(|c| ChainVerifyView {
            ok: c.error.is_none(),
            count: c.summary.count,
            head_seq: c.summary.head.seq,
            head_hash: c.summary.head.hash,
            first_bad_seq: c.error.as_ref().map(|e| e.first_bad_seq()),
            recorded_head: c.recorded_head,
            error: c.error,
            chain: c.chain,
        })
        .collect();
    Ok(Json(VerifyView {
        ok: chains.iter().all(|c| c.ok),
        count: chains.iter().map(|c| c.count).sum(),
        chains,
    }))
}

pub async fn backlog(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<BacklogView>, ApiError> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let store = s.control.store();
    // Per chain; `head_seq` is their sum (records in the journal, all chains).
    let chains: Vec<sallyport_core::api::ChainHeadView> = store
        .chain_heads()
        .await?
        .into_iter()
        .map(|(chain, head)| sallyport_core::api::ChainHeadView { chain, head })
        .collect();
    let head_seq = chains.iter().map(|c| c.head.seq).sum();
    let now = sallyport_core::time::Timestamp::now();
    let sinks = store
        .sink_statuses()
        .await?
        .into_iter()
        .map(|st| SinkBacklog {
            oldest_age_secs: st.oldest_pending.map(|t| t.until(now).as_secs()),
            sink: st.sink,
            chain: st.chain,
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
    Ok(Json(BacklogView {
        head_seq,
        chains,
        sinks,
    }))
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
