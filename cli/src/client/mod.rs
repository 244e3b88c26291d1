//! The HTTPS client for the gateway's API, and the mapping of its failures to [`CliError`].
//!
//! Trust: exactly the CA in `--ca-cert`/`SALLYPORT_CA_CERT` is trusted; built-in roots are off
//! and this build has none (reqwest's `rustls-tls-manual-roots`), so an `https://` gateway
//! needs that file. Verification is never disabled, plain `http://` is refused (see
//! [`crate::parse::gateway_url`]), and redirects are not followed so the token goes nowhere
//! else. The token is sent as `Authorization: Bearer …` (a header reqwest marks sensitive) and
//! is never printed.

use std::time::Duration;

use reqwest::{Method, Url};
use sallyport_core::api::API_PREFIX;
use sallyport_core::secret::Secret;
use serde::Serialize;
use serde_json::Value;

use crate::args::GlobalOpts;
use crate::error::CliError;

mod failure;

use failure::{api_error, causes, transport};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An answer from the gateway: the URL asked and the JSON body (`null` if empty).
#[derive(Debug)]
pub struct Reply {
    /// The URL requested, for error messages.
    pub url: String,
    /// The body.
    pub body: Value,
}

/// A configured client for one gateway and one token.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<Secret<String>>,
}

impl ApiClient {
    /// Builds the client from the global options: gateway URL, CA certificate and token. With
    /// no token given, the login profile's is used, for the gateway it was issued by only.
    pub fn connect(opts: &GlobalOpts) -> Result<Self, CliError> {
        let explicit = opts.token_file.is_some() || opts.token.is_some();
        let profile = match explicit {
            true => None,
            false => crate::profile::Profile::load_default()?,
        };
        let base = opts
            .gateway
            .clone()
            .or_else(|| profile.as_ref().map(|p| p.gateway.clone()))
            .ok_or(CliError::Config(
                "no gateway: set SALLYPORT_GATEWAY or --gateway to https://HOST:PORT",
            ))?;
        let (token, profile_ca) = match profile {
            None => (resolve_token(opts)?, None),
            Some(p) => profile_token(p, &base)?,
        };
        let ca = opts.ca_cert.clone().or(profile_ca);
        Self::build(base, ca.as_deref(), Some(token))
    }

    /// A client without a token (for `sallyport login`): the gateway and CA from the options,
    /// else from the login profile.
    pub fn connect_anonymous(opts: &GlobalOpts) -> Result<Self, CliError> {
        let profile = crate::profile::Profile::load_default().ok().flatten();
        let base = opts
            .gateway
            .clone()
            .or_else(|| profile.as_ref().map(|p| p.gateway.clone()))
            .ok_or(CliError::Config(
                "no gateway: set SALLYPORT_GATEWAY or --gateway to https://HOST:PORT",
            ))?;
        let ca = opts.ca_cert.clone().or_else(|| {
            profile
                .filter(|p| p.gateway == base)
                .and_then(|p| p.ca_cert)
        });
        Self::build(base, ca.as_deref(), None)
    }

    /// Uses `token` from now on.
    pub fn set_token(&mut self, token: Secret<String>) {
        self.token = Some(token);
    }

    fn build(
        base: Url,
        ca_path: Option<&std::path::Path>,
        token: Option<Secret<String>>,
    ) -> Result<Self, CliError> {
        let ca_path = ca_path.map(std::path::Path::to_path_buf).ok_or(CliError::Config(
            "no CA certificate: set SALLYPORT_CA_CERT or --ca-cert to the PEM file of the CA that signed the \
             gateway's certificate (this build of sallyport does not use the system's trust store)",
        ))?;
        let ca_path = &ca_path;
        let pem = std::fs::read(ca_path).map_err(|source| CliError::ReadFile {
            what: "CA certificate",
            path: ca_path.clone(),
            source,
        })?;
        let ca_error = |why: String| CliError::CaCert {
            path: ca_path.clone(),
            why,
        };
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(causes(&e)))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("sallyport-cli/", env!("CARGO_PKG_VERSION")));
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| ca_error(causes(&e)))?;
        Ok(Self { http, base, token })
    }

    /// The gateway's base URL, as configured.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `GET /v1/<segments>?<query>`
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Reply, CliError> {
        self.send(Method::GET, segments, query, None::<&()>).await
    }

    /// `POST /v1/<segments>` with an optional JSON body.
    pub async fn post<B: Serialize>(
        &self,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<Reply, CliError> {
        self.send(Method::POST, segments, &[], body).await
    }

    /// `PUT /v1/<segments>` with a JSON body.
    pub async fn put<B: Serialize>(&self, segments: &[&str], body: &B) -> Result<Reply, CliError> {
        self.send(Method::PUT, segments, &[], Some(body)).await
    }

    /// `DELETE /v1/<segments>?<query>`
    pub async fn delete(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Reply, CliError> {
        self.send(Method::DELETE, segments, query, None::<&()>)
            .await
    }

    /// `GET /v1/<segments>?<query>` whose answer is text rather than JSON (a recording);
    /// returns the URL asked and the text. Errors are mapped as for JSON answers.
    pub async fn get_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<(String, String), CliError> {
        let url = endpoint(&self.base, segments, query);
        let shown = url.to_string();
        let mut request = self.http.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| transport(&shown, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(&shown, &e))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| CliError::BadResponse {
            url: shown.clone(),
            why: "the answer is not UTF-8 text".into(),
        })?;
        Ok((shown, text))
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Reply, CliError> {
        let url = endpoint(&self.base, segments, query);
        let shown = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(&shown, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(&shown, &e))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| CliError::BadResponse {
                url: shown.clone(),
                why: e.to_string(),
            })?
        };
        Ok(Reply { url: shown, body })
    }
}

/// The login profile's token, if it was issued by `base` and has not expired.
fn profile_token(
    p: crate::profile::Profile,
    base: &Url,
) -> Result<(Secret<String>, Option<std::path::PathBuf>), CliError> {
    if p.gateway != *base {
        return Err(CliError::NoToken(
            "no API token for this gateway: set SALLYPORT_TOKEN, use --token-file, or run `sallyport login` \
             (the saved login is for another gateway)",
        ));
    }
    if p.expires_at <= sallyport_core::time::Timestamp::now() {
        return Err(CliError::NoToken(
            "your login has expired: run `sallyport login` again",
        ));
    }
    Ok((p.token, p.ca_cert))
}

/// `base` + `/v1/` + each segment (percent-encoded) + the query.
pub fn endpoint(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.push(API_PREFIX.trim_start_matches('/'));
        path.extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    url
}

/// The token from `--token-file`, else `--token`/`SALLYPORT_TOKEN`.
fn resolve_token(opts: &GlobalOpts) -> Result<Secret<String>, CliError> {
    let token = match &opts.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
                what: "token file",
                path: path.clone(),
                source,
            })?;
            let token = Secret::new(text.trim().to_owned());
            drop(Secret::new(text));
            token
        }
        None => opts.token.clone().ok_or(CliError::NoToken(
            "no API token: set SALLYPORT_TOKEN, use --token-file, or run `sallyport login`",
        ))?,
    };
    let t = token.expose_secret();
    if t.is_empty() {
        return Err(CliError::NoToken("the API token is empty"));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CliError::NoToken(
            "the API token has characters a token cannot have (spaces or control characters)",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_built_and_encoded() {
        let base: Url = "https://gw:8443".parse().unwrap();
        assert_eq!(
            endpoint(&base, &["users", "alice", "keys"], &[]).as_str(),
            "https://gw:8443/v1/users/alice/keys"
        );
        let with_prefix: Url = "https://gw/sp/".parse().unwrap();
        assert_eq!(
            endpoint(&with_prefix, &["whoami"], &[]).as_str(),
            "https://gw/sp/v1/whoami"
        );
        let q = endpoint(
            &base,
            &["keys"],
            &[("fingerprint", "SHA256:a+b/c".to_owned())],
        );
        assert_eq!(
            q.as_str(),
            "https://gw:8443/v1/keys?fingerprint=SHA256%3Aa%2Bb%2Fc"
        );
        let odd = endpoint(&base, &["users", "a/b?c"], &[]);
        assert_eq!(odd.as_str(), "https://gw:8443/v1/users/a%2Fb%3Fc");
    }

    fn opts(gateway: Option<&str>, ca: Option<&str>, token: Option<&str>) -> GlobalOpts {
        GlobalOpts {
            output: crate::output::Format::Table,
            gateway: gateway.map(|g| g.parse().unwrap()),
            token: token.map(|t| Secret::new(t.to_owned())),
            token_file: None,
            ca_cert: ca.map(Into::into),
        }
    }

    #[test]
    fn configuration_is_required_and_named() {
        let e = ApiClient::connect(&opts(None, None, None)).unwrap_err();
        assert!(e.to_string().contains("SALLYPORT_GATEWAY"), "{e}");
        let e = ApiClient::connect(&opts(Some("https://gw:1"), None, Some("t"))).unwrap_err();
        assert!(e.to_string().contains("SALLYPORT_CA_CERT"), "{e}");
        let e = ApiClient::connect(&opts(
            Some("https://gw:1"),
            Some("/nonexistent/ca.pem"),
            None,
        ))
        .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_AUTH, "{e}");
        let e = ApiClient::connect(&opts(
            Some("https://gw:1"),
            Some("/nonexistent/ca.pem"),
            Some("a b"),
        ))
        .unwrap_err();
        assert!(!e.to_string().contains("a b"), "token echoed: {e}");
        let e = ApiClient::connect(&opts(
            Some("https://gw:1"),
            Some("/nonexistent/ca.pem"),
            Some("tok"),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = ApiClient::connect(&opts(Some("https://gw:1"), path.to_str(), Some("tok")))
            .unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
    }
}
