//! `/v1/users`, `/v1/groups`, `/v1/keys`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::api::{AddKey, CreateUser, KeyView, SetGroups, UserView};
use sallyport_core::model::{Fingerprint, Role, UserName, UserState};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{views, ApiState};

pub async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let user = s.control.create_user(&caller.actor(), req).await?;
    Ok((StatusCode::CREATED, Json(views::user(user))))
}

pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let users = s.control.store().list_users().await?;
    Ok(Json(users.into_iter().map(views::user).collect()))
}

pub async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
) -> Result<Json<UserView>, ApiError> {
    if caller.user.name != name {
        caller.require(&[Role::Admin])?;
    }
    let user = s
        .control
        .store()
        .get_user(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {:?} not found", name.as_str())))?;
    Ok(Json(views::user(user)))
}

pub async fn disable(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
) -> Result<Json<UserView>, ApiError> {
    caller.require(&[Role::Admin])?;
    if caller.user.name == name {
        return Err(ApiError::conflict("an admin cannot disable themselves"));
    }
    let user = s
        .control
        .set_user_state(&caller.actor(), &name, UserState::Disabled)
        .await?;
    Ok(Json(views::user(user)))
}

pub async fn enable(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
) -> Result<Json<UserView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = s
        .control
        .set_user_state(&caller.actor(), &name, UserState::Active)
        .await?;
    Ok(Json(views::user(user)))
}

pub async fn set_groups(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
    ApiJson(req): ApiJson<SetGroups>,
) -> Result<Json<UserView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = s
        .control
        .set_user_groups(&caller.actor(), &name, req.groups.into_iter().collect())
        .await?;
    Ok(Json(views::user(user)))
}

pub async fn add_key(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
    ApiJson(req): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let key = s
        .control
        .add_key(&caller.actor(), &name, &req.public_key)
        .await?;
    Ok((StatusCode::CREATED, Json(views::key(key))))
}

pub async fn user_keys(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(name): ApiPath<UserName>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    if caller.user.name != name {
        caller.require(&[Role::Admin])?;
    }
    if s.control.store().get_user(&name).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "user {:?} not found",
            name.as_str()
        )));
    }
    let keys = s.control.store().list_keys(Some(&name)).await?;
    Ok(Json(keys.into_iter().map(views::key).collect()))
}

pub async fn all_keys(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let keys = s.control.store().list_keys(None).await?;
    Ok(Json(keys.into_iter().map(views::key).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    fingerprint: Fingerprint,
}

pub async fn remove_key(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<KeyRef>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let key = s
        .control
        .remove_key(&caller.actor(), &q.fingerprint)
        .await?;
    Ok(Json(views::key(key)))
}

#[derive(Debug, Serialize)]
pub struct GroupView {
    id: String,
    members: Vec<UserName>,
}

pub async fn groups(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let groups = s.control.store().list_groups().await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|(g, members)| GroupView {
                id: g.to_string(),
                members,
            })
            .collect(),
    ))
}
