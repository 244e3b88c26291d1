//! Login attempts: the limiter first, then the credential checks of [`crate::ssh::auth`], then
//! (for a success) the per-user session limit and the journal, in that order. A login is only
//! accepted once `ssh.auth.success` is in the journal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::PublicKey;
use sallyport_core::audit::EventKind;
use sallyport_core::model::Fingerprint;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{certificate_deadline, Active, Phase, SessionTask};
use crate::ssh::auth::{self, AuthRefusal, Identity};
use crate::ssh::destination::shown;
use crate::ssh::error::SessionEnd;
use crate::ssh::events::{AuthAttempt, AuthVerdict};
use crate::ssh::journal;
use crate::ssh::limiter::Admission;
use crate::ssh::proxy::{self, username::ProxyDestination};

/// Longest user name kept in audit records.
const MAX_USER_SHOWN: usize = 64;

impl SessionTask {
    /// Decides one login attempt and answers it on `reply`.
    pub(super) async fn on_auth(
        &mut self,
        user: String,
        attempt: AuthAttempt,
        reply: oneshot::Sender<AuthVerdict>,
    ) -> Option<SessionEnd> {
        let user: String = shown(&user).chars().take(MAX_USER_SHOWN).collect();
        let Phase::Login(login) = &mut self.phase else {
            // Russh does not authenticate twice; refuse anything that says otherwise.
            let _ = reply.send(AuthVerdict::REJECT);
            return None;
        };
        login.attempts += 1;
        login.last_user = Some(user.clone());
        let method = attempt.method();
        let offered = offered_fingerprint(&attempt);

        if let AuthAttempt::None = attempt {
            // OpenSSH's probe for the methods on offer: not a failure.
            let _ = reply.send(AuthVerdict::REJECT);
            return None;
        }
        if let Admission::Refuse { retry_after } = self.svc.admit(self.peer, &user) {
            self.fail(&user, method, offered, AuthRefusal::RateLimited, false)
                .await;
            let _ = reply.send(AuthVerdict::REJECT);
            return Some(SessionEnd::RateLimited(retry_after));
        }

        let snapshot = self.svc.control.snapshot();
        let proxy = proxy::username::parse(&user);
        let checked: Result<Option<Identity>, AuthRefusal> = match &proxy {
            // Proxy mode (`login@target`): the credential names the user.
            Some(dest) => dest.clone().and_then(|dest| {
                proxy::auth::check_attempt(
                    &snapshot,
                    &dest,
                    attempt,
                    &self.svc.user_ca,
                    self.peer.ip(),
                    unix_now(),
                )
            }),
            None => match attempt {
                AuthAttempt::None | AuthAttempt::Password | AuthAttempt::KeyboardInteractive => {
                    Err(AuthRefusal::Method)
                }
                AuthAttempt::KeyOffered { algorithm, .. } => auth::parse_user(&user)
                    .and_then(|u| auth::check_offer(&snapshot, &u, &algorithm))
                    .map(|()| None),
                AuthAttempt::Key { key, algorithm } => auth::parse_user(&user)
                    .and_then(|u| auth::check_key(&snapshot, &u, &key, &algorithm))
                    .map(Some),
                AuthAttempt::Certificate(cert) => auth::parse_user(&user)
                    .and_then(|u| {
                        auth::check_certificate(
                            &snapshot,
                            &u,
                            &cert,
                            &self.svc.user_ca,
                            self.peer.ip(),
                            unix_now(),
                        )
                    })
                    .map(Some),
            },
        };
        match checked {
            // An offered key may go on to sign; the real check follows the signature.
            Ok(None) => {
                let _ = reply.send(AuthVerdict::ACCEPT);
                None
            }
            Ok(Some(identity)) => {
                self.log_in(identity, proxy.and_then(Result::ok), reply)
                    .await
            }
            Err(refusal) => {
                let delay = self.fail(&user, method, offered, refusal, true).await;
                let _ = reply.send(AuthVerdict {
                    accept: false,
                    delay,
                });
                None
            }
        }
    }

    /// A credential passed: take a session slot, journal the login, become active.
    async fn log_in(
        &mut self,
        identity: Identity,
        proxy: Option<ProxyDestination>,
        reply: oneshot::Sender<AuthVerdict>,
    ) -> Option<SessionEnd> {
        let user = identity.user.clone();
        let fingerprint = Some(identity.fingerprint.clone());
        let method = identity.method();
        let Some(slot) = self.svc.take_slot(&user) else {
            let refusal = AuthRefusal::SessionLimit;
            self.fail(user.as_str(), method, fingerprint, refusal.clone(), false)
                .await;
            let _ = reply.send(AuthVerdict::REJECT);
            return Some(SessionEnd::LoginRefused(refusal));
        };
        let kind = EventKind::SshAuthSucceeded {
            user: user.clone(),
            method: method.to_owned(),
            fingerprint: identity.fingerprint.clone(),
            cert_serial: identity.certificate.as_ref().map(|c| c.serial),
            cert_key_id: identity.certificate.as_ref().map(|c| c.key_id.clone()),
        };
        if let Err(e) =
            journal::record(&self.svc.control, user.as_str(), self.peer, &self.id, kind).await
        {
            tracing::error!(cause = %e, "login refused: ssh.auth.success could not be journaled");
            let _ = reply.send(AuthVerdict::REJECT);
            return Some(SessionEnd::LoginRefused(AuthRefusal::AuditUnavailable));
        }
        if let Phase::Login(login) = &self.phase {
            // The connection logged in: the keys its agent offered first were no attack.
            self.svc.forgive(self.peer, user.as_str(), login.counted);
        }
        tracing::Span::current().record("user", user.as_str());
        tracing::info!(method, fingerprint = %identity.fingerprint, "logged in");
        let certificate_deadline = identity
            .certificate
            .as_ref()
            .map(|c| certificate_deadline(c.valid_before));
        let now = Instant::now();
        self.phase = Phase::Active(Box::new(Active {
            identity,
            started: now,
            idle_since: Some(now),
            certificate_deadline,
            _slot: slot,
            tunnels_opened: 0,
            proxy,
        }));
        let _ = reply.send(AuthVerdict::ACCEPT);
        None
    }

    /// Journals a failed login and, if `count`, counts it against the source and the user
    /// name; returns the delay for its rejection.
    pub(super) async fn fail(
        &mut self,
        user: &str,
        method: &str,
        fingerprint: Option<Fingerprint>,
        refusal: AuthRefusal,
        count: bool,
    ) -> Duration {
        tracing::info!(user, method, reason = refusal.code(), "login refused");
        if let Phase::Login(login) = &mut self.phase {
            login.failures += 1;
            login.counted += u32::from(count);
        }
        let kind = EventKind::SshAuthFailed {
            user: user.to_owned(),
            method: method.to_owned(),
            fingerprint,
            reason: refusal.code().to_owned(),
        };
        self.journal(user, kind).await;
        if count {
            self.svc.record_failure(self.peer, user)
        } else {
            Duration::ZERO
        }
    }
}

fn offered_fingerprint(attempt: &AuthAttempt) -> Option<Fingerprint> {
    let key: &PublicKey = match attempt {
        AuthAttempt::KeyOffered { key, .. } | AuthAttempt::Key { key, .. } => key,
        AuthAttempt::Certificate(cert) => {
            return Some(Fingerprint::of(&PublicKey::new(
                cert.public_key().clone(),
                "",
            )))
        }
        AuthAttempt::None | AuthAttempt::Password | AuthAttempt::KeyboardInteractive => {
            return None
        }
    };
    Some(Fingerprint::of(key))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
