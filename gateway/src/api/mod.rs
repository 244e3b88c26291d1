//! The HTTPS API for the CLI: JWT bearer auth, roles per endpoint, JSON errors.
//!
//! ```text
//!  TLS (rustls) ─▶ body limit ─▶ router ─▶ Caller (token → user, active?) ─▶ role check
//!                                                  ─▶ handler ─▶ Control / Store ─▶ JSON view
//!                                                                     └─ ApiError {code, message}
//! ```
//!
//! # Layout
//!
//! - `auth`: tokens ([`TokenIssuer`]) and the [`auth::Caller`] extractor.
//! - `error`: [`ApiError`], the one mapping from internal errors to status and code.
//! - `extract`: body, query and path extractors whose rejections are 4xx JSON errors.
//! - `users`, `access`, `audit`, `gateway`, `vpn`, `login`: handlers (`login`: challenge-response
//!   login, SSH user certificates, the user CA's public key). `views`: model → response bodies.
//! - `sessions`: SSH sessions and their recordings, opened on the gateway (auditors, admins).
//! - `openapi.json`: the OpenAPI document served at `/v1/openapi.json`.

mod access;
mod audit;
pub mod auth;
mod error;
mod extract;
mod gateway;
pub mod login;
mod sessions;
mod sessions_kill;
mod users;
mod views;
mod vpn;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use tokio::sync::watch;

pub use auth::TokenIssuer;
pub use error::ApiError;

use crate::control::Control;
use crate::tls::ApiTls;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route, as (method, path); the OpenAPI document lists exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/whoami"),
    ("get", "/v1/gateway"),
    ("post", "/v1/users"),
    ("get", "/v1/users"),
    ("get", "/v1/users/{name}"),
    ("post", "/v1/users/{name}/disable"),
    ("post", "/v1/users/{name}/enable"),
    ("put", "/v1/users/{name}/groups"),
    ("post", "/v1/users/{name}/keys"),
    ("get", "/v1/users/{name}/keys"),
    ("get", "/v1/keys"),
    ("delete", "/v1/keys"),
    ("get", "/v1/groups"),
    ("post", "/v1/targets"),
    ("get", "/v1/targets"),
    ("delete", "/v1/targets/{name}"),
    ("post", "/v1/grants"),
    ("get", "/v1/grants"),
    ("get", "/v1/grants/{id}"),
    ("post", "/v1/grants/{id}/revoke"),
    ("get", "/v1/audit/events"),
    ("post", "/v1/audit/verify"),
    ("get", "/v1/audit/chains"),
    ("get", "/v1/audit/backlog"),
    ("post", "/v1/tokens"),
    ("get", "/v1/sessions"),
    ("get", "/v1/sessions/{id}"),
    ("get", "/v1/sessions/{id}/recording"),
    ("post", "/v1/sessions/{id}/kill"),
    ("post", "/v1/login/challenge"),
    ("post", "/v1/login"),
    ("post", "/v1/ssh/certificate"),
    ("get", "/v1/ssh/user-ca"),
    ("post", "/v1/vpn/devices"),
    ("post", "/v1/vpn/devices/{id}/refresh"),
    ("get", "/v1/devices"),
    ("post", "/v1/devices/{id}/revoke"),
];

/// What handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The control plane.
    pub control: Arc<Control>,
    /// Token signing and checking.
    pub tokens: Arc<TokenIssuer>,
    /// How engineers reach this gateway over SSH (`GET /v1/gateway`).
    pub gateway: Arc<sallyport_core::api::GatewayView>,
    /// `sallyport login`: challenges, the failure limiter, the user CA.
    pub login: Arc<login::LoginService>,
    /// WireGuard devices (enroll, refresh, list, revoke).
    pub vpn: Arc<crate::wireguard::VpnDevices>,
    /// Opens session recordings (`GET /v1/sessions/{id}/recording`).
    pub recordings: Arc<crate::ssh::recording::RecordingKey>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/v1/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/v1/openapi.json",
            get(|| async { ([(CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/whoami", get(audit::whoami))
        .route("/v1/gateway", get(gateway::show))
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/users/{name}", get(users::show))
        .route("/v1/users/{name}/disable", post(users::disable))
        .route("/v1/users/{name}/enable", post(users::enable))
        .route("/v1/users/{name}/groups", put(users::set_groups))
        .route(
            "/v1/users/{name}/keys",
            post(users::add_key).get(users::user_keys),
        )
        .route("/v1/keys", get(users::all_keys).delete(users::remove_key))
        .route("/v1/groups", get(users::groups))
        .route(
            "/v1/targets",
            post(access::create_target).get(access::list_targets),
        )
        .route(
            "/v1/targets/{name}",
            axum::routing::delete(access::remove_target),
        )
        .route(
            "/v1/grants",
            post(access::create_grant).get(access::list_grants),
        )
        .route("/v1/grants/{id}", get(access::show_grant))
        .route("/v1/grants/{id}/revoke", post(access::revoke_grant))
        .route("/v1/audit/events", get(audit::search))
        .route("/v1/audit/verify", post(audit::verify))
        .route("/v1/audit/chains", get(audit::chains))
        .route("/v1/audit/backlog", get(audit::backlog))
        .route("/v1/tokens", post(audit::issue_token))
        .route("/v1/sessions", get(sessions::list))
        .route("/v1/sessions/{id}", get(sessions::show))
        .route("/v1/sessions/{id}/recording", get(sessions::recording))
        .route("/v1/sessions/{id}/kill", post(sessions_kill::kill))
        .route("/v1/login/challenge", post(login::challenge))
        .route("/v1/login", post(login::login))
        .route("/v1/ssh/certificate", post(login::certificate))
        .route("/v1/ssh/user-ca", get(login::user_ca))
        .route("/v1/vpn/devices", post(vpn::enroll))
        .route("/v1/vpn/devices/{id}/refresh", post(vpn::refresh))
        .route("/v1/devices", get(vpn::list))
        .route("/v1/devices/{id}/revoke", post(vpn::revoke))
        .fallback(|| async { ApiError::not_found("no such API path").into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `router` over TLS on `listener` until `shutdown` turns true, then drains for up to
/// five seconds.
pub async fn serve(
    listener: TcpListener,
    tls: &ApiTls,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::clone(&tls.server_config));
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}
