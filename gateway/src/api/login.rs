//! `sallyport login`: challenge-response login to the API, SSH user certificates from the user
//! CA, and the CA's public key. The rules live in core ([`sallyport_core::login`],
//! [`sallyport_core::ssh_ca`]); this module reads the snapshot, the store and the clock, and
//! journals.
//!
//! ```text
//!  POST /v1/login/challenge {user, keys?}  ─▶ MACed challenge (60 s) + which keys are registered
//!  POST /v1/login {user, challenge, public_key, signature}
//!        limiter ─▶ MAC, user, expiry ─▶ SSHSIG ─▶ key registered, user active (snapshot)
//!        ─▶ nonce claimed in the store (single use) ─▶ api.login.success ─▶ token
//!  POST /v1/ssh/certificate {public_key} (engineer token)
//!        ─▶ Snapshot::ssh_grants ─▶ ssh_ca::plan ─▶ ssh_ca::sign ─▶ ssh.certificate.issue ─▶ cert
//!  GET /v1/ssh/user-ca ─▶ the CA's public key (for TrustedUserCAKeys)
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use rand::rngs::OsRng;
use rand::RngCore;
use sallyport_core::api::{
    CertificateRequest, CertificateView, LoginChallengeRequest, LoginChallengeView, LoginRequest,
    LoginView, UserCaView, MAX_KEY_HINTS,
};
use sallyport_core::audit::EventKind;
use sallyport_core::login::{self, ChallengeKey, LoginProofError};
use sallyport_core::model::{Fingerprint, Role, SshPublicKey, UserName, UserState};
use sallyport_core::policy::{Credential, Denial};
use sallyport_core::ssh_ca::{self, PlanError};
use sallyport_core::time::Timestamp;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use super::ApiState;
use crate::control::Actor;
use crate::secrets::GatewaySecrets;
use crate::ssh::limiter::{Admission, AuthLimiter, LimiterSettings};

/// What the login endpoints share: the challenge key, the failure limiter, the user CA.
pub struct LoginService {
    challenges: ChallengeKey,
    limiter: Mutex<AuthLimiter>,
    secrets: Arc<GatewaySecrets>,
    token_ttl: Duration,
    cert_max_validity: Duration,
}

impl std::fmt::Debug for LoginService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginService")
            .field("token_ttl", &self.token_ttl)
            .field("cert_max_validity", &self.cert_max_validity)
            .finish_non_exhaustive()
    }
}

/// Limits and lifetimes of the login endpoints.
#[derive(Debug, Clone, Copy)]
pub struct LoginSettings {
    /// Lifetime of the API token a login hands out.
    pub token_ttl: Duration,
    /// Longest validity of a certificate.
    pub cert_max_validity: Duration,
    /// Failed logins per source address within `failure_window` before a lock-out.
    pub failures_per_source: u32,
    /// Failed logins per user name within `failure_window` before a lock-out.
    pub failures_per_user: u32,
    /// The window failures are counted over.
    pub failure_window: Duration,
}

impl LoginService {
    /// From the gateway's secrets (JWT key for the challenge MAC key, the user CA).
    pub fn new(secrets: Arc<GatewaySecrets>, settings: LoginSettings) -> Self {
        Self {
            challenges: ChallengeKey::derive(secrets.jwt_signing_key().expose_secret()),
            limiter: Mutex::new(AuthLimiter::new(LimiterSettings {
                per_source: settings.failures_per_source,
                per_user: settings.failures_per_user,
                window: settings.failure_window,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(2),
                max_tracked: 10_000,
            })),
            secrets,
            token_ttl: settings.token_ttl,
            cert_max_validity: settings.cert_max_validity,
        }
    }

    fn admit(&self, source: IpAddr, user: &str) -> Admission {
        match self.limiter.lock() {
            Ok(l) => l.admit(source, user, Instant::now()),
            Err(_) => Admission::Refuse {
                retry_after: Duration::from_secs(1),
            },
        }
    }

    fn failed(&self, source: IpAddr, user: &str) -> Duration {
        match self.limiter.lock() {
            Ok(mut l) => l.record_failure(source, user, Instant::now()),
            Err(_) => Duration::ZERO,
        }
    }
}

/// The client's address, if the listener recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Source(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl Source {
    fn ip(self) -> IpAddr {
        self.0
            .map(|s| s.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// `POST /v1/login/challenge`: no token needed.
pub async fn challenge(
    State(s): State<ApiState>,
    source: Source,
    ApiJson(req): ApiJson<LoginChallengeRequest>,
) -> Result<Json<LoginChallengeView>, ApiError> {
    if req.keys.len() > MAX_KEY_HINTS {
        return Err(ApiError::invalid(format!(
            "keys: at most {MAX_KEY_HINTS} fingerprints"
        )));
    }
    if let Admission::Refuse { retry_after } = s.login.admit(source.ip(), req.user.as_str()) {
        return Err(rate_limited(retry_after));
    }
    let mut nonce = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| ApiError::internal(&e))?;
    let c = s.login.challenges.issue(&req.user, Timestamp::now(), nonce);
    let snapshot = s.control.snapshot();
    let accepted_keys = req
        .keys
        .into_iter()
        .filter(|fp| {
            snapshot
                .authenticate(&req.user, &Credential::Key(fp.clone()))
                .is_ok()
        })
        .collect();
    Ok(Json(LoginChallengeView {
        challenge: c.text,
        namespace: login::NAMESPACE.to_owned(),
        expires_at: c.expires_at,
        accepted_keys,
    }))
}

/// Why a login was refused: the audit code and the message the client sees.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<LoginProofError> for Refusal {
    fn from(e: LoginProofError) -> Self {
        Refusal::new(e.code(), e.to_string())
    }
}

impl From<Denial> for Refusal {
    fn from(d: Denial) -> Self {
        Refusal::new(d.code(), d.to_string())
    }
}

/// `POST /v1/login`: no token needed; answers a challenge and returns one.
pub async fn login(
    State(s): State<ApiState>,
    source: Source,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(StatusCode, Json<LoginView>), ApiError> {
    let actor = Actor {
        name: req.user.to_string(),
        source: source.0.map(|a| a.ip()),
    };
    if let Admission::Refuse { retry_after } = s.login.admit(source.ip(), req.user.as_str()) {
        journal_failure(&s, &actor, &req.user, None, "rate-limited").await?;
        return Err(rate_limited(retry_after));
    }
    let key = SshPublicKey::parse(&req.public_key).ok();
    let fingerprint = key.as_ref().map(|k| k.fingerprint().clone());
    match check_login(&s, &req, key.as_ref()).await {
        Ok(user) => {
            let roles: Vec<Role> = user.roles.iter().copied().collect();
            let issued = s
                .tokens
                .issue(&req.user, s.login.token_ttl)
                .map_err(|e| ApiError::internal(&e))?;
            let fingerprint = fingerprint.ok_or_else(|| ApiError::internal(&"key vanished"))?;
            s.control
                .record(
                    &actor,
                    EventKind::ApiLoginSucceeded {
                        user: req.user.clone(),
                        fingerprint,
                        token_id: issued.id.clone(),
                        expires_at: issued.expires_at,
                    },
                )
                .await?;
            Ok((
                StatusCode::CREATED,
                Json(LoginView {
                    user: req.user,
                    roles,
                    token: issued.token,
                    token_id: issued.id,
                    expires_at: issued.expires_at,
                }),
            ))
        }
        Err(r) => {
            let delay = s.login.failed(source.ip(), req.user.as_str());
            journal_failure(&s, &actor, &req.user, fingerprint, r.code).await?;
            tokio::time::sleep(delay).await;
            Err(ApiError::unauthorized(format!(
                "login refused: {}",
                r.message
            )))
        }
    }
}

/// Every check of a login, cheapest first; the nonce is claimed last, so that only a valid
/// answer uses up a challenge.
async fn check_login(
    s: &ApiState,
    req: &LoginRequest,
    key: Option<&SshPublicKey>,
) -> Result<sallyport_core::model::User, Refusal> {
    let now = Timestamp::now();
    let key = key.ok_or_else(|| {
        Refusal::new(
            "key-invalid",
            "public_key is not an allowed OpenSSH public key line",
        )
    })?;
    let challenge = s.login.challenges.check(&req.challenge, &req.user, now)?;
    login::verify_proof(&challenge.text, key.key(), &req.signature)?;
    s.control
        .snapshot()
        .authenticate(&req.user, &Credential::Key(key.fingerprint().clone()))?;
    let user = s
        .control
        .store()
        .get_user(&req.user)
        .await
        .map_err(|e| {
            tracing::error!(cause = %e, "login: reading the user failed");
            Refusal::new("store-unavailable", "the gateway could not read the user")
        })?
        .ok_or_else(|| Refusal::from(Denial::UnknownUser))?;
    if user.state != UserState::Active {
        return Err(Denial::UserDisabled.into());
    }
    let fresh = s
        .control
        .store()
        .claim_login_challenge(&challenge.nonce, &req.user, challenge.expires_at, now)
        .await
        .map_err(|e| {
            tracing::error!(cause = %e, "login: recording the challenge failed");
            Refusal::new(
                "store-unavailable",
                "the gateway could not record the challenge",
            )
        })?;
    if !fresh {
        return Err(Refusal::new(
            "challenge-replayed",
            "this challenge was already used; ask for a new one",
        ));
    }
    Ok(user)
}

async fn journal_failure(
    s: &ApiState,
    actor: &Actor,
    user: &UserName,
    fingerprint: Option<Fingerprint>,
    reason: &str,
) -> Result<(), ApiError> {
    s.control
        .record(
            actor,
            EventKind::ApiLoginFailed {
                user: user.as_str().chars().take(64).collect(),
                fingerprint,
                reason: reason.to_owned(),
            },
        )
        .await?;
    Ok(())
}

fn rate_limited(retry_after: Duration) -> ApiError {
    ApiError::too_many_requests(format!(
        "too many failed logins; try again in {} s",
        retry_after.as_secs().max(1)
    ))
}

/// `POST /v1/ssh/certificate`: an engineer's key certified for the logins their grants allow.
pub async fn certificate(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(req): ApiJson<CertificateRequest>,
) -> Result<(StatusCode, Json<CertificateView>), ApiError> {
    caller.require(&[Role::Engineer])?;
    let subject = SshPublicKey::parse(&req.public_key)
        .map_err(|e| ApiError::invalid(format!("public_key: {e}")))?;
    let now = Timestamp::now();
    let user = caller.user.name.clone();
    let grants = s
        .control
        .snapshot()
        .ssh_grants(&user, now)
        .map_err(|d| ApiError::forbidden(d.to_string()))?;
    let plan = ssh_ca::plan(
        &user,
        &grants,
        now,
        s.login.cert_max_validity,
        Uuid::new_v4(),
    )
    .map_err(|e| match e {
        PlanError::NoSshGrant => ApiError::forbidden(e.to_string()),
        other => ApiError::internal(&other),
    })?;
    let mut nonce = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| ApiError::internal(&e))?;
    let serial = OsRng.next_u64();
    let ca = s.login.secrets.user_ca_private_key();
    let cert = ssh_ca::sign(&plan, subject.key(), &ca, serial, nonce)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let line = cert.to_openssh().map_err(|e| ApiError::internal(&e))?;
    let extensions: Vec<String> = plan.extensions().into_iter().map(str::to_owned).collect();
    let valid_after = unix_to_timestamp(plan.valid_after);
    let valid_before = unix_to_timestamp(plan.valid_before);
    s.control
        .record(
            &caller.actor(),
            EventKind::SshCertificateIssued {
                user: user.clone(),
                fingerprint: subject.fingerprint().clone(),
                serial,
                key_id: plan.key_id.clone(),
                principals: plan.principals.clone(),
                valid_after,
                valid_before,
                extensions: extensions.clone(),
                grants: plan.grants.clone(),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CertificateView {
            certificate: line.trim().to_owned(),
            serial,
            key_id: plan.key_id,
            principals: plan.principals,
            valid_after,
            valid_before,
            extensions,
            grants: plan.grants,
        }),
    ))
}

fn unix_to_timestamp(secs: u64) -> Timestamp {
    Timestamp::from_millis(
        i64::try_from(secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
    )
}

/// `GET /v1/ssh/user-ca`: any signed-in caller (targets' `TrustedUserCAKeys`).
pub async fn user_ca(
    _caller: Caller,
    State(s): State<ApiState>,
) -> Result<Json<UserCaView>, ApiError> {
    let key = s.login.secrets.user_ca_public_key();
    let line = key.to_openssh().map_err(|e| ApiError::internal(&e))?;
    Ok(Json(UserCaView {
        public_key: line.trim().to_owned(),
        fingerprint: Fingerprint::of(&key),
    }))
}
