//! The HTTPS API's edges: tokens, roles, malformed requests, and the OpenAPI document, against
//! an in-process dev gateway over real TLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Client, Method, StatusCode};
use sallyport_core::time::Timestamp;
use sallyport_gateway::api::{TokenIssuer, ROUTES};
use sallyport_gateway::dev::{DevGateway, DevOptions};
use serde_json::{json, Value};

struct Fixture {
    gw: DevGateway,
    http: Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let gw = DevGateway::start(DevOptions {
        state_dir: dir.path().join("state"),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.ca_cert_path()).unwrap()).unwrap();
    let http = Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Fixture {
        gw,
        http,
        _dir: dir,
    }
}

impl Fixture {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.gw.api_url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.gw.admin_token()), body)
            .await
    }
}

fn assert_error(resp: &(StatusCode, Value), status: StatusCode, code: &str, needle: &str) {
    assert_eq!(resp.0, status, "{:?}", resp.1);
    assert_eq!(resp.1["error"]["code"], code, "{:?}", resp.1);
    let msg = resp.1["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "message {msg:?} should mention {needle:?}"
    );
}

fn forge(header: Value, claims: Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn claims(sub: &str) -> Value {
    let now = Timestamp::now().as_millis() / 1000;
    json!({ "sub": sub, "jti": "x", "iat": now, "nbf": now, "exp": now + 600, "aud": "sallyport-api", "iss": "sallyport" })
}

#[tokio::test]
async fn tokens_are_checked_strictly() {
    let f = start().await;
    assert_eq!(
        f.call(Method::GET, "/v1/health", None, None).await.0,
        StatusCode::OK
    );
    assert_error(
        &f.call(Method::GET, "/v1/whoami", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing",
    );
    let who = f.admin(Method::GET, "/v1/whoami", None).await;
    assert_eq!(who.1["user"], "admin");

    let none = forge(json!({ "alg": "none", "typ": "JWT" }), claims("admin"), b"");
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&none), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "token",
    );

    let other_key = TokenIssuer::new(&[7u8; 32]);
    let forged = other_key
        .issue(&"admin".parse().unwrap(), Duration::from_secs(600))
        .unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&forged.token), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "signature",
    );

    let real = f.gw.gateway().tokens();
    let expired = real
        .issue_window(
            &"admin".parse().unwrap(),
            Timestamp::now().saturating_sub(Duration::from_secs(7200)),
            Duration::from_secs(3600),
        )
        .unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&expired.token), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "expired",
    );
    let early = real
        .issue_window(
            &"admin".parse().unwrap(),
            Timestamp::now().saturating_add(Duration::from_secs(3600)),
            Duration::from_secs(3600),
        )
        .unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&early.token), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "not valid yet",
    );

    // Right key, wrong algorithm family or audience.
    let key =
        f.gw.gateway()
            .secrets()
            .jwt_signing_key()
            .expose_secret()
            .to_vec();
    let enc = jsonwebtoken::EncodingKey::from_secret(&key);
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims("admin"),
        &enc,
    )
    .unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&hs512), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "algorithm",
    );
    let mut wrong_aud = claims("admin");
    wrong_aud["aud"] = json!("someone-else");
    let aud = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &wrong_aud, &enc).unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&aud), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "audience",
    );
    let mut no_exp = claims("admin");
    no_exp.as_object_mut().unwrap().remove("exp");
    let no_exp = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &no_exp, &enc).unwrap();
    assert_eq!(
        f.call(Method::GET, "/v1/whoami", Some(&no_exp), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let ghost = real
        .issue(&"ghost".parse().unwrap(), Duration::from_secs(60))
        .unwrap();
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&ghost.token), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unknown user",
    );
    f.gw.shutdown().await;
}

#[tokio::test]
async fn roles_are_enforced_per_endpoint() {
    let f = start().await;
    let (s, _) = f
        .admin(
            Method::POST,
            "/v1/users",
            Some(json!({ "name": "eve", "roles": ["engineer"], "groups": ["ops"] })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    f.admin(
        Method::POST,
        "/v1/users",
        Some(json!({ "name": "bob", "roles": ["engineer"] })),
    )
    .await;
    f.admin(
        Method::POST,
        "/v1/users",
        Some(json!({ "name": "audrey", "roles": ["auditor"] })),
    )
    .await;
    let (s, mine) = f
        .admin(
            Method::POST,
            "/v1/grants",
            Some(json!({ "subject": "@ops", "object": "10.0.0.0/24", "reason": "on call" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    f.admin(
        Method::POST,
        "/v1/grants",
        Some(json!({ "subject": "bob", "object": "10.9.0.0/24", "reason": "other" })),
    )
    .await;
    let token = |user: &str| {
        let body = json!({ "user": user, "ttl_secs": 600 });
        let f = &f;
        async move {
            f.admin(Method::POST, "/v1/tokens", Some(body)).await.1["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let eve = token("eve").await;
    let audrey = token("audrey").await;

    let create = json!({ "name": "mallory", "roles": ["admin"] });
    assert_error(
        &f.call(Method::POST, "/v1/users", Some(&eve), Some(create.clone()))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    assert_error(
        &f.call(Method::POST, "/v1/users", Some(&audrey), Some(create))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    assert_error(
        &f.call(Method::GET, "/v1/audit/events", Some(&eve), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "auditor",
    );
    let (s, page) = f
        .call(
            Method::GET,
            "/v1/audit/events?type=access.grant",
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let (s, grants) = f.call(Method::GET, "/v1/grants", Some(&eve), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        grants.as_array().unwrap().len(),
        1,
        "engineers see only grants that reach them: {grants}"
    );
    assert_eq!(grants[0]["id"], mine["id"]);
    assert_error(
        &f.call(Method::GET, "/v1/grants?user=bob", Some(&eve), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "own",
    );
    assert_error(
        &f.call(
            Method::POST,
            &format!("/v1/grants/{}/revoke", mine["id"].as_str().unwrap()),
            Some(&eve),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );

    // Disabling a user ends their token's use at once.
    f.admin(Method::POST, "/v1/users/eve/disable", None).await;
    assert_error(
        &f.call(Method::GET, "/v1/whoami", Some(&eve), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "disabled",
    );
    assert_error(
        &f.admin(Method::POST, "/v1/users/admin/disable", None).await,
        StatusCode::CONFLICT,
        "conflict",
        "themselves",
    );
    f.gw.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_are_4xx_with_a_reason() {
    let f = start().await;
    let big = json!({ "name": "x".repeat(100_000), "roles": ["engineer"] });
    assert_error(
        &f.admin(Method::POST, "/v1/users", Some(big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "too large",
    );
    let resp = f
        .http
        .post(format!("{}/v1/users", f.gw.api_url()))
        .bearer_auth(f.gw.admin_token())
        .body("{\"name\":\"x\",\"roles\":[\"engineer\"]}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = f
        .http
        .post(format!("{}/v1/users", f.gw.api_url()))
        .bearer_auth(f.gw.admin_token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let cases = [
        (
            json!({ "name": "Alice", "roles": ["engineer"] }),
            "user name",
        ),
        (json!({ "name": "alice", "roles": ["root"] }), "role"),
        (json!({ "name": "alice", "roles": [] }), "role"),
        (
            json!({ "name": "alice", "roles": ["engineer"], "shell": "/bin/sh" }),
            "unknown field",
        ),
    ];
    for (body, needle) in cases {
        assert_error(
            &f.admin(Method::POST, "/v1/users", Some(body)).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            needle,
        );
    }
    f.admin(
        Method::POST,
        "/v1/users",
        Some(json!({ "name": "alice", "roles": ["engineer"] })),
    )
    .await;
    let grants = [
        (
            json!({ "subject": "alice", "object": "10.0.0.1/24", "reason": "r" }),
            "host bits",
        ),
        (
            json!({ "subject": "alice", "object": "10.0.0.0/8", "ports": "70000", "reason": "r" }),
            "ports",
        ),
        (
            json!({ "subject": "alice", "object": "10.0.0.0/8", "reason": "" }),
            "reason",
        ),
        (
            json!({ "subject": "alice", "object": "10.0.0.0/8", "reason": "r", "not_before": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z" }),
            "after the start",
        ),
        (
            json!({ "subject": "alice", "object": "10.0.0.0/8", "reason": "r", "expires_at": "yesterday" }),
            "RFC 3339",
        ),
        (
            json!({ "subject": "alice", "object": "10.0.0.0/8", "reason": "r", "protocols": ["telnet"] }),
            "protocol",
        ),
    ];
    for (body, needle) in grants {
        assert_error(
            &f.admin(Method::POST, "/v1/grants", Some(body)).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            needle,
        );
    }
    assert_error(
        &f.admin(
            Method::POST,
            "/v1/grants",
            Some(json!({ "subject": "zed", "object": "db-1", "reason": "r" })),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "zed",
    );
    assert_error(
        &f.admin(
            Method::POST,
            "/v1/users/alice/keys",
            Some(json!({ "public_key": "ssh-rsa AAAAB3NzaC1yc2E" })),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "SSH public key",
    );
    assert_error(
        &f.admin(Method::GET, "/v1/users/NOT_OK", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "user name",
    );
    assert_error(
        &f.admin(Method::GET, "/v1/grants/not-a-uuid", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "UUID",
    );
    assert_error(
        &f.admin(Method::GET, "/v1/audit/events?limit=0", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "limit",
    );
    assert_error(
        &f.admin(Method::GET, "/v1/audit/events?since=soon", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "since",
    );
    assert_error(
        &f.admin(Method::GET, "/v1/nowhere", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "path",
    );
    assert_error(
        &f.admin(Method::PATCH, "/v1/users", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method",
    );
    assert_error(
        &f.admin(Method::DELETE, "/v1/keys?fingerprint=SHA256:short", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "fingerprint",
    );

    // Nothing was half-written: only the bootstrap admin and alice exist, no grants.
    let (_, users) = f.admin(Method::GET, "/v1/users", None).await;
    assert_eq!(users.as_array().unwrap().len(), 2);
    let (_, grants) = f.admin(Method::GET, "/v1/grants", None).await;
    assert!(grants.as_array().unwrap().is_empty());
    f.gw.shutdown().await;
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_served() {
    let f = start().await;
    let (s, doc) = f.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "every documented operation is served and vice versa"
    );
    for (method, path) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not documented"
        );
        let concrete = path
            .replace("{name}", "alice")
            .replace("{id}", "6f1c1c4e-3b8e-4a43-9d49-3a3f0b1b7d7c");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = f.call(m, &concrete, None, None).await;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} is not routed: {body}"
        );
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not routed"
        );
    }
    f.gw.shutdown().await;
}

#[tokio::test]
async fn gateway_info_is_for_any_signed_in_role() {
    let f = start().await;
    assert_error(
        &f.call(Method::GET, "/v1/gateway", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "",
    );
    for (name, role) in [("erin", "engineer"), ("otto", "auditor")] {
        let (s, _) = f
            .admin(
                Method::POST,
                "/v1/users",
                Some(json!({ "name": name, "roles": [role] })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, issued) = f
            .admin(
                Method::POST,
                "/v1/tokens",
                Some(json!({ "user": name, "ttl_secs": 600 })),
            )
            .await;
        let token = issued["token"].as_str().unwrap().to_owned();
        let (s, view) = f.call(Method::GET, "/v1/gateway", Some(&token), None).await;
        assert_eq!(s, StatusCode::OK, "{role}: {view}");
        assert_eq!(view["ssh_listen"], f.gw.ssh_addr().to_string());
        let key = f.gw.gateway().secrets().ssh_host_public_key();
        assert_eq!(view["ssh_host_key"], key.to_openssh().unwrap());
        assert_eq!(
            view["ssh_host_key_fingerprint"],
            sallyport_core::model::Fingerprint::of(&key).to_string()
        );
        let parsed: sallyport_core::api::GatewayView = serde_json::from_value(view).unwrap();
        assert!(parsed.ssh_host_key.starts_with("ssh-ed25519 "));
    }
    f.gw.shutdown().await;
}
