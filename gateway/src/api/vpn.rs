//! `/v1/vpn/devices` (engineers enroll and refresh their own devices) and `/v1/devices`
//! (admins list and revoke; an owner may revoke their own).
//!
//! The enroll and refresh answers carry the device's preshared key, once, over TLS; the
//! gateway keeps only its epoch (the key is derived again when needed).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sallyport_core::model::{Role, UserName};
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::device::DeviceId;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::store::StoredDevice;
use crate::wireguard::{secret_base64, DeviceError, DeviceName, Enrolled, WgPublicKey};

/// `POST /v1/vpn/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollDevice {
    /// The device's WireGuard public key (base64).
    pub public_key: WgPublicKey,
    /// A name for it (default `device`).
    #[serde(default)]
    pub name: Option<DeviceName>,
}

/// A device as the API shows it.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    /// Its id.
    pub id: DeviceId,
    /// Owner.
    pub user: UserName,
    /// Name.
    pub name: DeviceName,
    /// Its public key.
    pub public_key: WgPublicKey,
    /// Its VPN address.
    pub address: String,
    /// When its preshared key stops working.
    pub psk_expires_at: Timestamp,
    /// When it was enrolled.
    pub created_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// By whom.
    pub revoked_by: Option<String>,
}

/// The answer to enroll and refresh: everything for a wg-quick file.
#[derive(Debug, Serialize)]
pub struct EnrolledView {
    /// The device.
    pub device: DeviceView,
    /// `[Interface] Address =`.
    pub address: String,
    /// `[Peer] PublicKey =`.
    pub gateway_public_key: WgPublicKey,
    /// `[Peer] Endpoint =`.
    pub endpoint: String,
    /// `[Peer] AllowedIPs =`.
    pub allowed_ips: Vec<String>,
    /// `[Peer] PresharedKey =` (base64).
    pub preshared_key: String,
    /// When the preshared key stops working (`sallyport vpn refresh` renews it).
    pub preshared_key_expires_at: Timestamp,
}

fn device_view(d: StoredDevice) -> DeviceView {
    DeviceView {
        id: d.id,
        user: d.user,
        name: d.name,
        public_key: d.public_key,
        address: d.address.to_string(),
        psk_expires_at: d.psk_expires_at,
        created_at: d.created_at,
        revoked_at: d.revoked_at,
        revoked_by: d.revoked_by,
    }
}

fn enrolled_view(e: Enrolled) -> EnrolledView {
    let preshared_key = secret_base64(&e.psk).to_string();
    EnrolledView {
        address: format!("{}/32", e.device.address),
        preshared_key_expires_at: e.device.psk_expires_at,
        device: device_view(e.device),
        gateway_public_key: e.gateway_public_key,
        endpoint: e.endpoint,
        allowed_ips: e.allowed_ips,
        preshared_key,
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Disabled => ApiError::not_found(e.to_string()),
            DeviceError::NotOwner(_) => ApiError::forbidden(e.to_string()),
            DeviceError::Revoked(_) | DeviceError::TooMany | DeviceError::Pool(_) => {
                ApiError::conflict(e.to_string())
            }
            DeviceError::Control(c) => c.into(),
        }
    }
}

pub async fn enroll(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<EnrollDevice>,
) -> Result<(StatusCode, Json<EnrolledView>), ApiError> {
    caller.require(&[Role::Engineer])?;
    let name = match req.name {
        Some(n) => n,
        None => "device"
            .parse()
            .map_err(|e: crate::wireguard::DeviceNameError| ApiError::invalid(e.to_string()))?,
    };
    let enrolled = s
        .vpn
        .enroll(&caller.actor(), &caller.user.name, name, req.public_key)
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled_view(enrolled))))
}

pub async fn refresh(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<DeviceId>,
) -> Result<Json<EnrolledView>, ApiError> {
    caller.require(&[Role::Engineer])?;
    let enrolled = s
        .vpn
        .refresh(&caller.actor(), &caller.user.name, &id)
        .await?;
    Ok(Json(enrolled_view(enrolled)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFilter {
    #[serde(default)]
    user: Option<UserName>,
}

/// Admins and auditors see every device (or one user's with `?user=`); engineers their own.
pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeviceFilter>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let privileged = caller.require(&[Role::Admin, Role::Auditor]).is_ok();
    let who = match (&q.user, privileged) {
        (u, true) => u.clone(),
        (Some(u), false) if *u != caller.user.name => {
            return Err(ApiError::forbidden("engineers see only their own devices"))
        }
        (_, false) => {
            caller.require(&[Role::Engineer])?;
            Some(caller.user.name.clone())
        }
    };
    let devices = s.vpn.list(who.as_ref()).await?;
    Ok(Json(devices.into_iter().map(device_view).collect()))
}

/// Admins revoke any device; an engineer their own.
pub async fn revoke(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<DeviceId>,
) -> Result<Json<DeviceView>, ApiError> {
    let owner = if caller.require(&[Role::Admin]).is_ok() {
        None
    } else {
        caller.require(&[Role::Engineer])?;
        Some(&caller.user.name)
    };
    let d = s.vpn.revoke(&caller.actor(), owner, &id).await?;
    Ok(Json(device_view(d)))
}
