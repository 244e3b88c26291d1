//! Value parsers for arguments that are not plain `FromStr` core types.
//!
//! Each turns untrusted text into a typed value or an error message naming the problem; clap
//! prints it with the argument's name and exits 2 before any request is made.

use std::convert::Infallible;
use std::time::Duration;

use reqwest::Url;
use sallyport_core::model::{Fingerprint, ModelError, SshPublicKey};
use sallyport_core::secret::Secret;
use sallyport_core::time::Timestamp;

/// The gateway's base URL: `https://HOST[:PORT][/PATH]`, nothing else.
pub fn gateway_url(s: &str) -> Result<Url, String> {
    let url =
        Url::parse(s.trim()).map_err(|e| format!("not a URL ({e}); expected https://HOST:PORT"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "the gateway URL must start with https:// (got {}://); tokens are never sent in clear",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the gateway URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the gateway URL must not carry credentials; use SALLYPORT_TOKEN or --token-file"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the gateway URL must not have a query or fragment".into());
    }
    Ok(url)
}

/// A token given on the command line or in the environment. Never fails, so clap never echoes
/// the value in an error; emptiness is checked when the token is used.
pub fn token(s: &str) -> Result<Secret<String>, Infallible> {
    Ok(Secret::new(s.trim().to_owned()))
}

/// A positive humantime duration: `90s`, `15m`, `8h`, `2d`, `1h 30m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("not a duration ({e}); expected e.g. 30m, 8h, 2d"))?;
    if d.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(d)
}

/// `--since`: a duration meaning "that long ago", or an RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// That long before now.
    Ago(Duration),
    /// This instant.
    At(Timestamp),
}

impl Since {
    /// The instant meant, relative to `now`.
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            Since::Ago(d) => now.saturating_sub(d),
            Since::At(t) => t,
        }
    }
}

/// Parses `--since`.
pub fn since(s: &str) -> Result<Since, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(Since::At(t));
    }
    match humantime::parse_duration(s.trim()) {
        Ok(d) => Ok(Since::Ago(d)),
        Err(_) => Err(
            "expected a duration (e.g. 1h, 2d) or an RFC 3339 time (e.g. 2026-01-31T17:00:00Z)"
                .into(),
        ),
    }
}

/// A key fingerprint as OpenSSH prints it (`SHA256:` and 43 base64 characters).
pub fn fingerprint(s: &str) -> Result<Fingerprint, ModelError> {
    Fingerprint::try_from(s.trim().to_owned())
}

/// One OpenSSH public key line, checked locally (algorithm, size, not a private key); the line
/// is kept as given so its comment survives.
pub fn public_key(s: &str) -> Result<String, ModelError> {
    SshPublicKey::parse(s)?;
    Ok(s.trim().to_owned())
}

/// Text of a free-form audit filter: non-empty, one line, bounded.
pub fn filter(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().count() > 200 {
        return Err("at most 200 characters".into());
    }
    if t.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    Ok(t.to_owned())
}

/// An audit chain as the API names it: a gateway instance name, or `(shared)` (as the CLI
/// shows the shared chain), which the API calls the empty string.
pub fn chain(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t == sallyport_core::audit::export::SHARED_CHAIN_LABEL {
        return Ok(String::new());
    }
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(t.to_owned())
    } else {
        Err("a gateway instance name (1-64 characters of A-Z a-z 0-9 - _ .) or (shared)".into())
    }
}

/// A session id: a UUID as the gateway writes it (`6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10`).
pub fn session_id(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let shape_ok = t.len() == 36
        && t.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if shape_ok {
        Ok(t)
    } else {
        Err("expected a session id, a UUID such as 6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10 (see `sallyport session list`)".into())
    }
}

/// `--speed`: a positive factor, at most 1000.
pub fn speed(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1000.0 => Ok(x),
        _ => Err("expected a positive number up to 1000, e.g. 2 or 0.5".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        assert!(gateway_url("https://127.0.0.1:8443").is_ok());
        assert!(gateway_url("https://gw.example.com/prefix/").is_ok());
        assert!(gateway_url("http://127.0.0.1:8443")
            .unwrap_err()
            .contains("https://"));
        assert!(gateway_url("https://u:p@gw:1")
            .unwrap_err()
            .contains("credentials"));
        assert!(gateway_url("https://gw:1/?x=1").is_err());
        assert!(gateway_url("gw:8443").is_err());
        assert!(gateway_url("").is_err());
    }

    #[test]
    fn durations_and_since() {
        assert_eq!(duration("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert!(duration("0s").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(since("1h").unwrap(), Since::Ago(Duration::from_secs(3600)));
        let t: Timestamp = "2026-01-31T17:00:00Z".parse().unwrap();
        assert_eq!(since("2026-01-31T17:00:00Z").unwrap(), Since::At(t));
        assert!(since("yesterday").is_err());
        let now = Timestamp::from_millis(10_000_000);
        assert_eq!(
            Since::Ago(Duration::from_secs(1)).resolve(now).as_millis(),
            9_999_000
        );
    }

    #[test]
    fn keys_and_fingerprints() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
        assert_eq!(public_key(&format!(" {ed}\n")).unwrap(), ed);
        assert!(public_key("ssh-ed25519 AAAA")
            .unwrap_err()
            .to_string()
            .contains("invalid SSH public key"));
        assert!(fingerprint("SHA256:short").is_err());
        assert!(fingerprint("MD5:aa:bb").is_err());
    }

    #[test]
    fn filters() {
        assert_eq!(filter(" alice ").unwrap(), "alice");
        assert!(filter("").is_err());
        assert!(filter("a\u{1b}[2J").is_err());
    }
}
