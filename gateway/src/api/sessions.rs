//! `/v1/sessions`: SSH sessions (live and ended) and their recordings, for auditors and admins.
//! A recording is opened here, on the gateway, and sent as asciicast v2 text over the API's TLS.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sallyport_core::api::{RecordingQuery, SessionPage, SessionQuery, SessionView};
use sallyport_core::audit::EventKind;
use sallyport_core::model::Role;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::ApiState;
use crate::ssh::recording::{read, ReadError};
use crate::store::MAX_SESSION_LIMIT;

/// The media type of an asciicast v2 recording.
pub const ASCIICAST_MEDIA_TYPE: &str = "application/x-asciicast";

const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> Result<Json<SessionPage>, ApiError> {
    caller.require(AUDITORS)?;
    if let Some(limit) = q.limit {
        if limit == 0 || limit > MAX_SESSION_LIMIT {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_SESSION_LIMIT}"
            )));
        }
    }
    let sessions = s.control.store().list_sessions(&q).await?;
    Ok(Json(SessionPage { sessions }))
}

pub async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionView>, ApiError> {
    caller.require(AUDITORS)?;
    let id = session_id(&id)?;
    let store = s.control.store();
    let mut view = store
        .get_session(&id.to_string())
        .await?
        .ok_or_else(|| not_found(id))?;
    view.recordings = store.recording_channels(&id.to_string()).await?;
    Ok(Json(view))
}

pub async fn recording(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecordingQuery>,
) -> Result<Response, ApiError> {
    caller.require(AUDITORS)?;
    let id = session_id(&id)?;
    let store = s.control.store();
    let session = store
        .get_session(&id.to_string())
        .await?
        .ok_or_else(|| not_found(id))?;
    let channel = match q.channel {
        Some(c) => c,
        None => store
            .recording_channels(&id.to_string())
            .await?
            .first()
            .map(|r| r.channel)
            .ok_or_else(|| ApiError::not_found(format!("session {id} has no recording")))?,
    };
    let text = read::read(store, &s.recordings, id, channel)
        .await
        .map_err(|e| match e {
            ReadError::NotFound { .. } => ApiError::not_found(e.to_string()),
            ReadError::Store(e) => e.into(),
            // Altered, moved, deleted or foreign chunks: say so; never serve a part of it.
            e => {
                tracing::warn!(session = %id, channel, cause = %e, "recording refused");
                ApiError::conflict(format!("recording cannot be trusted: {e}"))
            }
        })?;
    // Who watched whom is audited too; no record, no recording.
    s.control
        .record(
            &caller.actor(),
            EventKind::SshRecordingViewed {
                session: id.to_string(),
                channel: u64::from(channel),
                user: session.user,
                target: session.target,
            },
        )
        .await?;
    Ok((
        [
            (CONTENT_TYPE, ASCIICAST_MEDIA_TYPE),
            (CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

fn session_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::invalid(format!(
            "{:?} is not a session id (a UUID, as in the session field of audit events)",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("session {id} not found"))
}
