//! `GET /v1/gateway`: the SSH listener's address and host key, for any signed-in caller (what
//! `sallyport ssh-config` turns into `~/.ssh/config` and `known_hosts` lines).

use axum::extract::State;
use axum::Json;
use sallyport_core::api::GatewayView;

use super::auth::Caller;
use super::ApiState;

/// Any role: every engineer needs it to reach the gateway.
pub async fn show(_caller: Caller, State(state): State<ApiState>) -> Json<GatewayView> {
    Json(GatewayView::clone(&state.gateway))
}
