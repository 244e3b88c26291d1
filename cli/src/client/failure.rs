//! What a failed request means: the gateway's error answer, or the transport failure (TCP,
//! TLS, timeout), as a one-line [`CliError`] naming what failed and the URL.

use std::error::Error as _;

use sallyport_core::api::ErrorBody;

use crate::error::CliError;
use crate::output::clean;

/// Longest server message echoed on the error line.
const MAX_MESSAGE: usize = 500;

/// An error answer: the server's message if it sent one, else the status.
pub fn api_error(status: u16, body: &[u8]) -> CliError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = parsed.as_ref().map(|b| b.error.code.clone());
    let message = parsed
        .map(|b| b.error.message)
        .filter(|m| !m.trim().is_empty())
        .map(|m| clean(m.trim()).chars().take(MAX_MESSAGE).collect())
        .unwrap_or_else(|| match status {
            401 => "not authenticated: the gateway refused the token (HTTP 401)".to_owned(),
            403 => "forbidden: the token's user lacks the role for this (HTTP 403)".to_owned(),
            404 => "not found (HTTP 404)".to_owned(),
            other => format!("the gateway answered HTTP {other}"),
        });
    CliError::Api {
        status,
        code,
        message,
    }
}

/// A request that got no answer.
pub(super) fn transport(url: &str, err: &reqwest::Error) -> CliError {
    let tls = chain(err).any(is_tls);
    let mut cause = causes(err);
    let what = if tls {
        cause.push_str(
            " (is SALLYPORT_CA_CERT / --ca-cert the CA that signed the gateway's certificate?)",
        );
        "TLS handshake failed with"
    } else if err.is_timeout() {
        "timed out talking to"
    } else if err.is_connect() {
        "cannot connect to"
    } else {
        "request failed to"
    };
    CliError::Transport {
        what,
        url: url.to_owned(),
        cause,
    }
}

/// Whether `e` is a rustls error, possibly inside (nested) `io::Error`s as tokio-rustls and
/// hyper hand them on.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    for _ in 0..8 {
        let Some(e) = current else { return false };
        if e.is::<rustls::Error>() {
            return true;
        }
        current = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
    }
    false
}

fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn std::error::Error + 'static)| {
        (*e).source()
    })
}

/// The error's causes joined with `: `, without repeats and without reqwest's own URL.
pub(super) fn causes(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let first = err
        .source()
        .map_or_else(|| strip_url(err), |_| String::new());
    if !first.is_empty() {
        parts.push(first);
    }
    for e in chain(err).skip(1) {
        let text = clean(&e.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        parts.push(strip_url(err));
    }
    parts.join(": ")
}

fn strip_url(err: &reqwest::Error) -> String {
    let text = err.to_string();
    match err.url() {
        Some(u) => text.replace(&format!(" for url ({u})"), ""),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        let body = br#"{"error":{"code":"not_found","message":"no user \"bob\"\n\u001b[2J"}}"#;
        let e = api_error(404, body);
        assert_eq!(e.exit_code(), crate::error::EXIT_NOT_FOUND);
        let text = e.to_string();
        assert!(text.starts_with("no user \"bob\""), "{text}");
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        let CliError::Api { code, .. } = e else {
            panic!("not an API error")
        };
        assert_eq!(code.as_deref(), Some("not_found"));
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        use std::io::{Error, ErrorKind};
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let nested = Error::other(Error::new(ErrorKind::InvalidData, rustls));
        assert!(is_tls(&nested));
        assert!(!is_tls(&Error::from(ErrorKind::ConnectionRefused)));
    }

    #[test]
    fn missing_bodies_still_explain() {
        assert!(api_error(401, b"")
            .to_string()
            .contains("not authenticated"));
        assert!(api_error(403, b"<html>").to_string().contains("forbidden"));
        assert_eq!(
            api_error(502, b"").to_string(),
            "the gateway answered HTTP 502"
        );
        assert_eq!(api_error(502, b"").exit_code(), crate::error::EXIT_GATEWAY);
    }
}
