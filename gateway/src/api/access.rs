//! `/v1/targets` and `/v1/grants`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::api::{CreateGrant, CreateTarget, GrantView, TargetView};
use sallyport_core::model::{GrantId, Role, Subject, TargetName, UserName};
use sallyport_core::time::Timestamp;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{views, ApiState};

pub async fn create_target(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTarget>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let t = s.control.create_target(&caller.actor(), req).await?;
    Ok((StatusCode::CREATED, Json(views::target(t))))
}

pub async fn list_targets(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<TargetView>>, ApiError> {
    caller.require(&[Role::Admin, Role::Engineer, Role::Auditor])?;
    let targets = s.control.store().list_targets().await?;
    Ok(Json(targets.into_iter().map(views::target).collect()))
}

pub async fn remove_target(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<TargetName>,
) -> Result<Json<TargetView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let t = s.control.remove_target(&caller.actor(), &name).await?;
    Ok(Json(views::target(t)))
}

pub async fn create_grant(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateGrant>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let g = s.control.create_grant(&caller.actor(), req).await?;
    Ok((StatusCode::CREATED, Json(views::grant(g, Timestamp::now()))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    #[serde(default)]
    user: Option<UserName>,
}

/// Admins and auditors see every grant (or one user's, with `?user=`); engineers see the grants
/// that reach them, directly or through their groups.
pub async fn list_grants(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<GrantFilter>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let privileged = caller.require(&[Role::Admin, Role::Auditor]).is_ok();
    let who = match (&q.user, privileged) {
        (Some(u), true) => Some(u.clone()),
        (None, true) => None,
        (Some(u), false) if *u != caller.user.name => {
            return Err(ApiError::forbidden("engineers see only their own grants"))
        }
        (_, false) => {
            caller.require(&[Role::Engineer])?;
            Some(caller.user.name.clone())
        }
    };
    let subjects = match &who {
        Some(u) => {
            let user =
                s.control.store().get_user(u).await?.ok_or_else(|| {
                    ApiError::not_found(format!("user {:?} not found", u.as_str()))
                })?;
            let mut subjects = vec![Subject::User(user.name.clone())];
            subjects.extend(user.groups.into_iter().map(Subject::Group));
            Some(subjects)
        }
        None => None,
    };
    let grants = s.control.store().list_grants(subjects.as_deref()).await?;
    let now = Timestamp::now();
    Ok(Json(
        grants.into_iter().map(|g| views::grant(g, now)).collect(),
    ))
}

pub async fn show_grant(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<GrantId>,
) -> Result<Json<GrantView>, ApiError> {
    let g = s
        .control
        .store()
        .get_grant(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("grant {id} not found")))?;
    if caller.require(&[Role::Admin, Role::Auditor]).is_err() {
        let mine = match &g.subject {
            Subject::User(u) => *u == caller.user.name,
            Subject::Group(grp) => caller.user.groups.contains(grp),
        };
        if !mine {
            // Not yours: as if it did not exist.
            return Err(ApiError::not_found(format!("grant {id} not found")));
        }
    }
    Ok(Json(views::grant(g, Timestamp::now())))
}

pub async fn revoke_grant(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<GrantId>,
) -> Result<Json<GrantView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let g = s.control.revoke_grant(&caller.actor(), id).await?;
    Ok(Json(views::grant(g, Timestamp::now())))
}
