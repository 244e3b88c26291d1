//! `POST /v1/sessions/{id}/kill` (admin): ends a live SSH session on whichever gateway runs
//! it (`Control::kill_session`). 202 with the session as it was; 404 unknown; 409 ended.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::api::SessionView;
use sallyport_core::model::Role;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiPath;
use super::ApiState;

pub async fn kill(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| {
        ApiError::invalid(format!(
            "{:?} is not a session id (a UUID, as in the session field of audit events)",
            id.chars().take(64).collect::<String>()
        ))
    })?;
    let session = s
        .control
        .kill_session(&caller.actor(), &id.to_string())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(session)))
}
