//! `sallyport login`: challenge-response login with a key from the engineer's SSH agent, then
//! a short-lived SSH certificate for a fresh key held by sallyport-agent.
//!
//! ```text
//!  ssh-agent: list identities ─▶ POST /v1/login/challenge {user, keys} (which are registered?)
//!  ssh-agent: sign SSHSIG(challenge) with the first accepted key (one signature)
//!  POST /v1/login ─▶ token ─▶ profile.toml (0600)
//!  sallyport-agent: generate-ed25519 ─▶ POST /v1/ssh/certificate ─▶ add-certificate
//! ```

use std::path::Path;
use std::time::Duration;

use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::{Certificate, LineEnding, PublicKey, SshSig};
use sallyport_agent::client::SallyportAgentClient;
use sallyport_core::api::{
    CertificateRequest, CertificateView, LoginChallengeRequest, LoginChallengeView, LoginRequest,
    LoginView, MAX_KEY_HINTS,
};
use sallyport_core::login;
use sallyport_core::model::{Fingerprint, UserName};
use sallyport_core::secret::Secret;
use sallyport_core::time::Timestamp;

use crate::args::{GlobalOpts, LoginArgs};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::{decode, Out};
use crate::profile::{self, Profile};

/// The longest a generated key lives in sallyport-agent (its protocol's limit).
const MAX_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Which agent key to use.
#[derive(Debug)]
enum KeyChoice {
    /// The first registered one.
    Any,
    /// This one.
    Fingerprint(Fingerprint),
}

/// `sallyport login`: needs no token.
pub async fn run(global: &GlobalOpts, args: LoginArgs, out: Out) -> Result<(), CliError> {
    let user = match args.user {
        Some(u) => u,
        None => default_user()?,
    };
    let choice = key_choice(args.key.as_deref())?;
    let profile_path = profile::path().ok_or(CliError::Config(
        "cannot tell where to save the login: set HOME, XDG_CONFIG_HOME or SALLYPORT_PROFILE",
    ))?;
    let mut api = ApiClient::connect_anonymous(global)?;
    let ca_cert = global.ca_cert.clone().or_else(|| {
        Profile::load(&profile_path)
            .ok()
            .flatten()
            .filter(|p| p.gateway == *api.base())
            .and_then(|p| p.ca_cert)
    });

    let mut agent = AgentClient::connect_env()
        .await
        .map_err(|e| CliError::Agent {
            which: "cannot reach your SSH agent (SSH_AUTH_SOCK)",
            why: e.to_string(),
        })?;
    let keys = agent_keys(&mut agent, &choice).await?;
    let hints: Vec<Fingerprint> = keys
        .iter()
        .map(Fingerprint::of)
        .take(MAX_KEY_HINTS)
        .collect();
    let reply = api
        .post(
            &["login", "challenge"],
            Some(&LoginChallengeRequest {
                user: user.clone(),
                keys: hints,
            }),
        )
        .await?;
    let challenge: LoginChallengeView = decode(&reply.url, reply.body)?;
    let key = keys
        .into_iter()
        .find(|k| challenge.accepted_keys.contains(&Fingerprint::of(k)))
        .ok_or_else(|| {
            CliError::NoLoginKey(format!(
                "no key in your SSH agent is registered to {user} on this gateway \
                 (ask an admin: sallyport key add {user} KEY.pub)"
            ))
        })?;
    let signature = sign_challenge(&mut agent, &key, &challenge.challenge).await?;
    let reply = api
        .post(
            &["login"],
            Some(&LoginRequest {
                user: user.clone(),
                challenge: challenge.challenge,
                public_key: key.to_openssh().map_err(|e| CliError::Agent {
                    which: "cannot encode the agent's key",
                    why: e.to_string(),
                })?,
                signature,
            }),
        )
        .await?;
    let login: LoginView = decode(&reply.url, reply.body)?;
    let token_expires = login.expires_at;
    Profile {
        gateway: api.base().clone(),
        ca_cert: ca_cert.map(|p| std::path::absolute(&p).unwrap_or(p)),
        user: user.clone(),
        token: Secret::new(login.token.clone()),
        expires_at: token_expires,
    }
    .save(&profile_path)?;
    api.set_token(Secret::new(login.token));

    let certificate = if args.no_certificate {
        None
    } else {
        match certificate(&api, &user, token_expires).await {
            Ok(c) => Some(c),
            Err(e) => {
                // The login itself worked: say so, then why there is no certificate.
                report(out, &user, token_expires, &profile_path, None)?;
                return Err(e);
            }
        }
    };
    report(
        out,
        &user,
        token_expires,
        &profile_path,
        certificate.as_ref(),
    )
}

fn default_user() -> Result<UserName, CliError> {
    let name = std::env::var("USER")
        .map_err(|_| CliError::Config("no user name: give --user or set SALLYPORT_USER"))?;
    Ok(name.parse()?)
}

fn key_choice(key: Option<&str>) -> Result<KeyChoice, CliError> {
    let Some(k) = key else {
        return Ok(KeyChoice::Any);
    };
    if k.starts_with("SHA256:") {
        return Ok(KeyChoice::Fingerprint(crate::parse::fingerprint(k)?));
    }
    let line = super::read_public_key("public key", Path::new(k))?;
    let parsed = sallyport_core::model::SshPublicKey::parse(&line)?;
    Ok(KeyChoice::Fingerprint(parsed.fingerprint().clone()))
}

/// The plain keys the agent holds (certificates are skipped), narrowed to `choice`.
async fn agent_keys<S>(
    agent: &mut AgentClient<S>,
    choice: &KeyChoice,
) -> Result<Vec<PublicKey>, CliError>
where
    S: russh::keys::agent::client::AgentStream + Unpin,
{
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| CliError::Agent {
            which: "cannot list your SSH agent's keys",
            why: e.to_string(),
        })?;
    let keys: Vec<PublicKey> = identities
        .into_iter()
        .filter_map(|i| match i {
            AgentIdentity::PublicKey { key, .. } => Some(key),
            AgentIdentity::Certificate { .. } => None,
        })
        .filter(|k| match choice {
            KeyChoice::Any => true,
            KeyChoice::Fingerprint(fp) => Fingerprint::of(k) == *fp,
        })
        .collect();
    if keys.is_empty() {
        return Err(CliError::NoLoginKey(match choice {
            KeyChoice::Any => {
                "your SSH agent holds no key (ssh-add one that is registered to you)".to_owned()
            }
            KeyChoice::Fingerprint(fp) => format!("your SSH agent does not hold the key {fp}"),
        }));
    }
    Ok(keys)
}

/// Has the agent sign the challenge as an SSHSIG; returns it PEM armoured.
async fn sign_challenge<S>(
    agent: &mut AgentClient<S>,
    key: &PublicKey,
    challenge: &str,
) -> Result<String, CliError>
where
    S: russh::keys::agent::client::AgentStream + Unpin,
{
    let failed = |why: String| CliError::Agent {
        which: "your SSH agent did not sign the login challenge",
        why,
    };
    let data = login::signed_data(challenge).map_err(|e| failed(e.to_string()))?;
    let raw = agent
        .sign_request_signature(key, Some(login::HASH), &data)
        .await
        .map_err(|e| failed(e.to_string()))?;
    SshSig::new(key.key_data().clone(), login::NAMESPACE, login::HASH, raw)
        .and_then(|s| s.to_pem(LineEnding::LF))
        .map_err(|e| failed(e.to_string()))
}

/// A fresh key in sallyport-agent, certified by the gateway, attached there.
async fn certificate(
    api: &ApiClient,
    user: &UserName,
    token_expires: Timestamp,
) -> Result<CertificateView, CliError> {
    let socket = sallyport_agent::socket_path_from_env();
    let agent_failed = |which, e: sallyport_agent::error::AgentError| CliError::Agent {
        which,
        why: format!("{e} (socket {})", socket.display()),
    };
    let mut agent = SallyportAgentClient::connect(&socket).await.map_err(|e| {
        agent_failed(
            "cannot reach sallyport-agent (start it, or set SALLYPORT_AGENT_SOCK)",
            e,
        )
    })?;
    let lifetime = Timestamp::now()
        .until(token_expires)
        .clamp(Duration::from_secs(60), MAX_KEY_LIFETIME);
    let public = agent
        .generate_ed25519(&format!("{user}@sallyport"), lifetime)
        .await
        .map_err(|e| agent_failed("sallyport-agent could not generate a key", e))?;
    let line = public.to_openssh().map_err(|e| CliError::Agent {
        which: "cannot encode the generated key",
        why: e.to_string(),
    })?;
    let reply = api
        .post(
            &["ssh", "certificate"],
            Some(&CertificateRequest { public_key: line }),
        )
        .await?;
    let view: CertificateView = decode(&reply.url, reply.body)?;
    let cert = Certificate::from_openssh(&view.certificate).map_err(|e| CliError::BadResponse {
        url: reply.url.clone(),
        why: format!("the certificate does not parse: {e}"),
    })?;
    if cert.public_key() != public.key_data() {
        return Err(CliError::BadResponse {
            url: reply.url,
            why: "the certificate is for another key than the one sent".into(),
        });
    }
    agent
        .add_certificate(&cert)
        .await
        .map_err(|e| agent_failed("sallyport-agent did not take the certificate", e))?;
    Ok(view)
}

fn report(
    out: Out,
    user: &UserName,
    token_expires: Timestamp,
    profile: &Path,
    cert: Option<&CertificateView>,
) -> Result<(), CliError> {
    match out.format() {
        crate::output::Format::Json => out.json(&serde_json::json!({
            "user": user,
            "token_expires_at": token_expires,
            "profile": profile,
            "certificate": cert,
        })),
        crate::output::Format::Table => {
            let mut text = format!(
                "logged in as {user} until {token_expires} (saved in {})\n",
                profile.display()
            );
            if let Some(c) = cert {
                text.push_str(&format!(
                    "certificate in sallyport-agent: principals {}; valid until {}; serial {}\n",
                    c.principals.join(","),
                    c.valid_before,
                    c.serial
                ));
            }
            out.text(&text)
        }
    }
}

/// `sallyport ssh-ca`: the user CA's public key line (for `TrustedUserCAKeys`).
pub(super) async fn ssh_ca(ctx: &super::Ctx) -> Result<(), CliError> {
    let reply = ctx.api.get(&["ssh", "user-ca"], &[]).await?;
    match ctx.out.format() {
        crate::output::Format::Json => ctx.out.json(&reply.body),
        crate::output::Format::Table => {
            let ca: sallyport_core::api::UserCaView = decode(&reply.url, reply.body)?;
            ctx.out.text(&format!("{}\n", ca.public_key))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    #[test]
    fn keys_are_chosen_by_fingerprint_or_public_key_file() {
        assert!(matches!(key_choice(None).unwrap(), KeyChoice::Any));
        let fp = sallyport_core::model::SshPublicKey::parse(KEY)
            .unwrap()
            .fingerprint()
            .clone();
        match key_choice(Some(fp.as_str())).unwrap() {
            KeyChoice::Fingerprint(f) => assert_eq!(f, fp),
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("id.pub");
        std::fs::write(&file, format!("{KEY}\n")).unwrap();
        match key_choice(Some(file.to_str().unwrap())).unwrap() {
            KeyChoice::Fingerprint(f) => assert_eq!(f, fp),
            other => panic!("{other:?}"),
        }
        assert!(key_choice(Some("SHA256:short")).is_err());
        assert!(key_choice(Some("/nonexistent/id.pub")).is_err());
    }
}
