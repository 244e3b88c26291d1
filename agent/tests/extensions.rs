//! The sallyport extensions through `SallyportAgentClient`, and raw protocol edge cases,
//! against the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{text, AgentProcess};
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{Algorithm, HashAlg, PrivateKey, PublicKey, Signature};
use sallyport_agent::client::SallyportAgentClient;
use sallyport_agent::error::AgentError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn test_ca() -> PrivateKey {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

fn user_cert(
    ca: &PrivateKey,
    key: &PublicKey,
    valid_for: u64,
) -> russh::keys::ssh_key::Certificate {
    let now = unix_now();
    let mut b = Builder::new(
        vec![1u8; 16],
        key.key_data().clone(),
        now - 60,
        now + valid_for,
    )
    .unwrap();
    b.serial(7).unwrap();
    b.key_id("alice@sallyport/login-1").unwrap();
    b.cert_type(CertType::User).unwrap();
    b.valid_principal("alice").unwrap();
    b.sign(ca).unwrap()
}

#[tokio::test]
async fn generate_then_add_certificate_shows_in_ssh_add() {
    let agent = AgentProcess::start();
    let mut client = SallyportAgentClient::connect(&agent.socket).await.unwrap();
    let key = client
        .generate_ed25519("alice@sallyport", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    assert_eq!(key.comment().as_str_lossy(), "alice@sallyport");
    let list = agent.list();
    assert!(
        list.contains(&key.fingerprint(HashAlg::Sha256).to_string()),
        "{list}"
    );

    let ca = test_ca();
    let cert = user_cert(&ca, &key, 600);
    client.add_certificate(&cert).await.unwrap();

    let out = agent.ssh_add(&["-L"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cert_b64 = cert.to_openssh().unwrap();
    let cert_b64 = cert_b64.split_whitespace().nth(1).unwrap();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ssh-ed25519-cert-v01@openssh.com ") && l.contains(cert_b64)),
        "{stdout}"
    );
    let list = agent.list();
    assert!(list.contains("(ED25519-CERT)"), "{list}");
    assert_eq!(list.lines().count(), 2, "certificate and plain key: {list}");

    // A certificate for a key the agent did not generate is refused.
    let stranger = PrivateKey::from(Ed25519Keypair::from_seed(&[3; 32]));
    let foreign = user_cert(&ca, stranger.public_key(), 600);
    assert!(matches!(
        client.add_certificate(&foreign).await,
        Err(AgentError::Refused)
    ));
    // Lifetimes outside 1 s ..= 24 h never reach the agent.
    assert!(matches!(
        client.generate_ed25519("x", Duration::ZERO).await,
        Err(AgentError::Lifetime)
    ));
    assert!(matches!(
        client
            .generate_ed25519("x", Duration::from_secs(86_401))
            .await,
        Err(AgentError::Lifetime)
    ));
}

#[tokio::test]
async fn certificate_end_removes_key_and_certificate() {
    let agent = AgentProcess::start();
    let mut client = SallyportAgentClient::connect(&agent.socket).await.unwrap();
    let key = client
        .generate_ed25519("short", Duration::from_secs(3600))
        .await
        .unwrap();
    client
        .add_certificate(&user_cert(&test_ca(), &key, 2))
        .await
        .unwrap();
    assert_eq!(agent.list().lines().count(), 2);
    let gone = common::wait_for(Duration::from_secs(6), || agent.list().is_empty());
    assert!(
        gone.is_some(),
        "key and certificate still listed after the certificate ended"
    );
}

fn sign_request(key_blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut m = vec![13u8];
    key_blob.encode(&mut m).unwrap();
    data.encode(&mut m).unwrap();
    flags.encode(&mut m).unwrap();
    m
}

#[tokio::test]
async fn rsa_signs_with_sha2_and_refuses_sha1() {
    let agent = AgentProcess::start();
    let rsa = agent.keygen("rsa", "rsa");
    assert!(agent.ssh_add(&[rsa.to_str().unwrap()]).status.success());
    let public = PublicKey::read_openssh_file(rsa.with_extension("pub")).unwrap();
    let blob = public.key_data().encode_vec().unwrap();
    let mut client = SallyportAgentClient::connect(&agent.socket).await.unwrap();

    let reply = client.request(&sign_request(&blob, b"m", 0)).await.unwrap();
    assert_eq!(reply, vec![5], "ssh-rsa (SHA-1) must be refused");

    for (flag, name) in [(2u32, "rsa-sha2-256"), (4, "rsa-sha2-512")] {
        let reply = client
            .request(&sign_request(&blob, b"m", flag))
            .await
            .unwrap();
        assert_eq!(reply.first(), Some(&14u8));
        let mut r = &reply[1..];
        let sig_blob = Vec::<u8>::decode(&mut r).unwrap();
        let sig = Signature::decode(&mut sig_blob.as_slice()).unwrap();
        assert_eq!(sig.algorithm().as_str(), name);
        use russh::keys::signature::Verifier;
        assert!(public.key_data().verify(b"m", &sig).is_ok());
    }
}

#[tokio::test]
async fn unknown_requests_fail_and_oversize_frames_close() {
    let agent = AgentProcess::start();
    let mut client = SallyportAgentClient::connect(&agent.socket).await.unwrap();
    assert_eq!(client.request(&[200]).await.unwrap(), vec![5]);
    assert_eq!(
        client.request(&[27, 0, 0, 0, 1, b'x']).await.unwrap(),
        vec![5]
    );
    // SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES (SSH1) is not supported.
    assert_eq!(client.request(&[9]).await.unwrap(), vec![5]);
    // Still serving on the same connection.
    assert_eq!(client.request(&[11]).await.unwrap(), vec![12, 0, 0, 0, 0]);

    let mut raw = tokio::net::UnixStream::connect(&agent.socket)
        .await
        .unwrap();
    raw.write_all(&(256 * 1024 + 1u32).to_be_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "oversize frame closes the connection");
    // The agent itself keeps serving.
    assert_eq!(client.request(&[11]).await.unwrap(), vec![12, 0, 0, 0, 0]);
}
