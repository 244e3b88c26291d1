//! Bearer tokens: HS256 JWTs signed with the gateway's JWT key, checked strictly, and the
//! caller they name looked up on every request (a disabled user's token stops working at once).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sallyport_core::model::{Role, User, UserName, UserState};
use sallyport_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use super::ApiState;
use crate::control::Actor;

/// The `aud` of API tokens.
pub const AUDIENCE: &str = "sallyport-api";
/// The `iss` of tokens this gateway issues.
pub const ISSUER: &str = "sallyport";
/// The longest token an admin may issue.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    aud: String,
    iss: String,
}

/// Signs and checks API tokens. Holds key material: no `Debug` of the keys.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { <keys> }")
    }
}

/// A freshly issued token.
#[derive(Debug)]
pub struct IssuedToken {
    /// The `jti`.
    pub id: String,
    /// The bearer token.
    pub token: String,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl TokenIssuer {
    /// From the 32-byte JWT signing key of the secret source.
    pub fn new(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// Issues a token for `user`, valid from now for `ttl`.
    pub fn issue(
        &self,
        user: &UserName,
        ttl: Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        self.issue_window(user, Timestamp::now(), ttl)
    }

    /// Issues a token valid from `not_before` for `ttl` (tests use windows in the past).
    pub fn issue_window(
        &self,
        user: &UserName,
        not_before: Timestamp,
        ttl: Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let nbf = not_before.as_millis() / 1000;
        let exp = not_before.saturating_add(ttl).as_millis() / 1000;
        let claims = Claims {
            sub: user.to_string(),
            jti: Uuid::new_v4().to_string(),
            iat: Timestamp::now().as_millis() / 1000,
            nbf,
            exp,
            aud: AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken {
            id: claims.jti,
            token,
            expires_at: Timestamp::from_millis(exp.saturating_mul(1000)),
        })
    }

    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token has expired",
                    ErrorKind::ImmatureSignature => "token is not valid yet",
                    ErrorKind::InvalidSignature => "token signature is invalid",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "token algorithm is not allowed"
                    }
                    ErrorKind::InvalidAudience => "token audience is wrong",
                    ErrorKind::InvalidIssuer => "token issuer is wrong",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "token is malformed",
                };
                ApiError::unauthorized(why)
            })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user, as the store has them now.
    pub user: User,
    /// When the token expires.
    pub token_expires_at: Timestamp,
    /// Where the request came from.
    pub source: Option<SocketAddr>,
}

impl Caller {
    /// Refuses unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.user.roles.contains(r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs the {} role",
                names.join(" or ")
            )))
        }
    }

    /// The caller as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.user.name.to_string(),
            source: self.source.map(|s| s.ip()),
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be: Bearer TOKEN"))?;
        let claims = state.tokens.verify(token).inspect_err(|e| {
            tracing::warn!(peer = ?source, reason = ?e, "API authentication failed");
        })?;
        let name: UserName = claims
            .sub
            .parse()
            .map_err(|_| ApiError::unauthorized("token subject is not a user name"))?;
        let user = state
            .control
            .store()
            .get_user(&name)
            .await?
            .ok_or_else(|| ApiError::unauthorized("token names an unknown user"))?;
        if user.state != UserState::Active {
            return Err(ApiError::unauthorized("user is disabled"));
        }
        Ok(Caller {
            user,
            token_expires_at: Timestamp::from_millis(claims.exp.saturating_mul(1000)),
            source,
        })
    }
}
