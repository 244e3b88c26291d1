//! The SSM secret source against a real `moto_server`: `secrets init` then load round-trips,
//! init refuses to overwrite unless rotating, loading follows pagination, and a missing or
//! malformed parameter is an error that names it and never shows its value.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Once;

use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sallyport_gateway::secrets::{
    init_secrets, ssm_client, GatewaySecrets, SecretName, SecretsError, SsmPath, SsmSecretSource,
};
use sallyport_tests::moto::{aws_env, MotoServer};

/// A moto server and a client pointed at it, built through `ssm_client` (the default AWS
/// configuration chain, with credentials and region from the environment).
async fn setup() -> (MotoServer, Client) {
    static ENV: Once = Once::new();
    // Every test sets the same constant values; Rust's env functions take a lock.
    ENV.call_once(|| {
        for (k, v) in aws_env() {
            std::env::set_var(k, v);
        }
    });
    let moto = MotoServer::start().unwrap();
    let client = ssm_client(Some("us-east-1".into()), Some(moto.endpoint_url())).await;
    (moto, client)
}

fn path(p: &str) -> SsmPath {
    SsmPath::parse(p).unwrap()
}

async fn put(client: &Client, name: &str, kind: ParameterType, value: &str, overwrite: bool) {
    client
        .put_parameter()
        .name(name)
        .r#type(kind)
        .value(value)
        .overwrite(overwrite)
        .send()
        .await
        .unwrap();
}

/// The decoded value stored in SSM, read directly.
async fn stored(client: &Client, name: &str) -> (ParameterType, Vec<u8>) {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = out.parameter.unwrap();
    (
        p.r#type.unwrap(),
        STANDARD.decode(p.value.unwrap()).unwrap(),
    )
}

/// The error and its whole source chain, Display and Debug, as one string.
fn shown(err: &SecretsError) -> String {
    let mut s = format!("{err} | {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        s.push_str(&format!(" | {e}"));
        source = e.source();
    }
    s
}

fn all_names(p: &SsmPath) -> Vec<String> {
    SecretName::ALL
        .iter()
        .map(|n| p.parameter_name(*n))
        .collect()
}

#[tokio::test]
async fn init_then_load_round_trips() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/roundtrip");
    let report = init_secrets(&client, &p, None, false).await.unwrap();
    assert_eq!(report.written, all_names(&p));
    assert!(report.replaced.is_empty());

    let secrets = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap();
    for which in SecretName::ALL {
        let (kind, bytes) = stored(&client, &p.parameter_name(which)).await;
        assert_eq!(kind, ParameterType::SecureString, "{which}");
        assert_eq!(bytes.len(), 32, "{which}");
        assert!(secrets.get(which).ct_eq(&bytes), "{which} differs");
    }
    // The derived SSH keys come from the stored seeds.
    assert_eq!(
        secrets.ssh_host_public_key(),
        secrets.ssh_host_private_key().public_key().clone()
    );
    assert_ne!(secrets.ssh_host_public_key(), secrets.user_ca_public_key());
    // Debug shows names, not bytes.
    assert!(!format!("{secrets:?}").contains(", 0") && format!("{secrets:?}").contains("<secret>"));
}

#[tokio::test]
async fn load_reads_values_written_by_hand() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/byhand");
    for (i, which) in SecretName::ALL.iter().enumerate() {
        let bytes: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7) ^ (i as u8)).collect();
        put(
            &client,
            &p.parameter_name(*which),
            ParameterType::SecureString,
            &STANDARD.encode(&bytes),
            false,
        )
        .await;
    }
    let secrets = SsmSecretSource::new(client, p).load().await.unwrap();
    for (i, which) in SecretName::ALL.iter().enumerate() {
        let bytes: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7) ^ (i as u8)).collect();
        assert!(secrets.get(*which).ct_eq(&bytes), "{which}");
    }
}

#[tokio::test]
async fn init_refuses_to_overwrite_without_rotate() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/twice");
    init_secrets(&client, &p, None, false).await.unwrap();
    let before = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap();

    let err = init_secrets(&client, &p, None, false).await.unwrap_err();
    match &err {
        SecretsError::AlreadyExist { names } => assert_eq!(names, &all_names(&p)),
        other => panic!("expected AlreadyExist, got {other:?}"),
    }
    for name in all_names(&p) {
        assert!(err.to_string().contains(&name), "{err}");
    }

    // With one deleted, the other four are named, and nothing is written (the deleted one
    // stays missing, the rest unchanged).
    let gone = p.parameter_name(SecretName::WireguardKey);
    client.delete_parameter().name(&gone).send().await.unwrap();
    let err = init_secrets(&client, &p, None, false).await.unwrap_err();
    let SecretsError::AlreadyExist { names } = &err else {
        panic!("expected AlreadyExist, got {err:?}");
    };
    assert_eq!(names.len(), 4);
    assert!(!names.contains(&gone));
    let err = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap_err();
    assert!(matches!(&err, SecretsError::Missing { names } if names == &vec![gone.clone()]));
    for which in SecretName::ALL {
        if which != SecretName::WireguardKey {
            let (_, bytes) = stored(&client, &p.parameter_name(which)).await;
            assert!(before.get(which).ct_eq(&bytes), "{which} changed");
        }
    }
}

#[tokio::test]
async fn rotate_replaces_every_value() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/rotate");
    init_secrets(&client, &p, None, false).await.unwrap();
    let source = SsmSecretSource::new(client.clone(), p.clone());
    let before = source.load().await.unwrap();

    let report = init_secrets(&client, &p, None, true).await.unwrap();
    assert_eq!(report.written, all_names(&p));
    assert_eq!(report.replaced, all_names(&p));
    let after = source.load().await.unwrap();
    for which in SecretName::ALL {
        assert!(
            !before.get(which).ct_eq(after.get(which).expose_secret()),
            "{which} not rotated"
        );
    }
    assert_ne!(before.ssh_host_public_key(), after.ssh_host_public_key());

    // Rotating where nothing exists just creates them.
    let fresh = path("/sallyport/rotate-fresh");
    let report = init_secrets(&client, &fresh, None, true).await.unwrap();
    assert_eq!(report.written, all_names(&fresh));
    assert!(report.replaced.is_empty());
    SsmSecretSource::new(client, fresh).load().await.unwrap();
}

#[tokio::test]
async fn init_passes_the_kms_key_id() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/kms");
    init_secrets(&client, &p, Some("alias/sallyport-test"), false)
        .await
        .unwrap();
    let described = client
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Path")
                .values(p.as_str())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let params = described.parameters.unwrap_or_default();
    assert_eq!(params.len(), 5);
    for meta in params {
        assert_eq!(
            meta.key_id.as_deref(),
            Some("alias/sallyport-test"),
            "{meta:?}"
        );
    }
    SsmSecretSource::new(client, p).load().await.unwrap();
}

#[tokio::test]
async fn load_follows_pagination() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/paged");
    // Unrelated parameters first (moto lists in insertion order), of every type, so the five
    // secrets are not all on the first page of ten.
    for i in 0..15 {
        let kind = match i % 3 {
            0 => ParameterType::String,
            1 => ParameterType::StringList,
            _ => ParameterType::SecureString,
        };
        put(
            &client,
            &format!("{p}/other-{i:02}"),
            kind,
            "unrelated,value",
            false,
        )
        .await;
    }
    // A deeper level, which a non-recursive read must not see.
    put(
        &client,
        &format!("{p}/deeper/x"),
        ParameterType::String,
        "x",
        false,
    )
    .await;
    init_secrets(&client, &p, None, false).await.unwrap();

    // The fixture really spans pages: the first page has a next token and lacks a secret.
    let first = client
        .get_parameters_by_path()
        .path(p.as_str())
        .recursive(false)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert!(first.next_token.is_some(), "fixture fits one page");
    let on_first: Vec<String> = first
        .parameters
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.name)
        .collect();
    assert!(
        all_names(&p).iter().any(|n| !on_first.contains(n)),
        "all secrets on the first page: {on_first:?}"
    );

    let secrets = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap();
    for which in SecretName::ALL {
        let (_, bytes) = stored(&client, &p.parameter_name(which)).await;
        assert!(secrets.get(which).ct_eq(&bytes), "{which}");
    }
}

#[tokio::test]
async fn missing_parameters_are_named() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/missing");

    let err = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::Missing { names } if names == &all_names(&p)),
        "{err:?}"
    );

    init_secrets(&client, &p, None, false).await.unwrap();
    let gone = p.parameter_name(SecretName::JwtSigningKey);
    client.delete_parameter().name(&gone).send().await.unwrap();
    let err = SsmSecretSource::new(client.clone(), p.clone())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::Missing { names } if names == &vec![gone.clone()]),
        "{err:?}"
    );
    assert!(err.to_string().contains(&gone), "{err}");

    // Secrets one level deeper do not count: the read is not recursive.
    let deeper = path("/sallyport/missing2/deeper");
    init_secrets(&client, &deeper, None, false).await.unwrap();
    let err = SsmSecretSource::new(client, path("/sallyport/missing2"))
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::Missing { names } if names.len() == 5),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_parameters_are_named_without_their_value() {
    let (_moto, client) = setup().await;
    let p = path("/sallyport/malformed");
    init_secrets(&client, &p, None, false).await.unwrap();
    let source = SsmSecretSource::new(client.clone(), p.clone());
    let name = p.parameter_name(SecretName::RecordingKey);
    let good = STANDARD.encode([0x42u8; 32]);

    let cases: [(&str, ParameterType, String); 5] = [
        (
            "bad base64",
            ParameterType::SecureString,
            "Zm9v!!c2VjcmV0LXZhbHVlLXNob3VsZC1ub3QtbGVhaw".to_owned(),
        ),
        (
            "too short",
            ParameterType::SecureString,
            STANDARD.encode(b"sixteen-byte-key"),
        ),
        (
            "too long",
            ParameterType::SecureString,
            STANDARD.encode([0x37u8; 48]),
        ),
        ("plain String", ParameterType::String, good.clone()),
        (
            "StringList",
            ParameterType::StringList,
            format!("{good},{good}"),
        ),
    ];
    for (label, kind, value) in cases {
        // Changing the type needs a delete first.
        client.delete_parameter().name(&name).send().await.unwrap();
        put(&client, &name, kind.clone(), &value, false).await;
        let err = source.load().await.unwrap_err();
        match (&err, label) {
            (SecretsError::InvalidBase64 { name: n }, "bad base64") => assert_eq!(n, &name),
            (SecretsError::WrongLength { name: n, len: 16 }, "too short") => assert_eq!(n, &name),
            (SecretsError::WrongLength { name: n, len: 48 }, "too long") => assert_eq!(n, &name),
            (SecretsError::NotSecureString { name: n, found }, "plain String") => {
                assert_eq!((n, found.as_str()), (&name, "String"))
            }
            (SecretsError::NotSecureString { name: n, found }, "StringList") => {
                assert_eq!((n, found.as_str()), (&name, "StringList"))
            }
            _ => panic!("{label}: unexpected {err:?}"),
        }
        let text = shown(&err);
        assert!(text.contains(&name), "{label}: {text}");
        assert!(!text.contains(&value), "{label}: value leaked: {text}");
        assert!(!text.contains(&good), "{label}: value leaked: {text}");
        // Nor a fragment of it (a decode error would quote the bad symbol and its offset).
        assert!(
            !text.contains("!!") && !text.contains("Zm9v"),
            "{label}: {text}"
        );
    }

    // Put right, it loads again.
    client.delete_parameter().name(&name).send().await.unwrap();
    put(&client, &name, ParameterType::SecureString, &good, false).await;
    let secrets: GatewaySecrets = source.load().await.unwrap();
    assert!(secrets.recording_key().ct_eq(&[0x42u8; 32]));
}
