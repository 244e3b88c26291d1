//! Destination constraints end to end through the connection driver (in-memory pipes), with
//! the messages `ssh-add -h 'gw>target'` and `ssh -J`/`ssh -A` send.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use russh::keys::signature::{Signer, Verifier};
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::Signature;
use sallyport_agent::server::{serve_connection, Agent};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn kp(seed: u8) -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[seed; 32])
}

fn pk(seed: u8) -> KeyData {
    KeyData::Ed25519(kp(seed).public)
}

const USER_KEY: u8 = 7;
const GW: u8 = 1;
const TARGET: u8 = 2;
const OTHER: u8 = 3;

fn hop(hostname: &str, key: Option<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    "".encode(&mut out).unwrap();
    hostname.encode(&mut out).unwrap();
    b"".as_slice().encode(&mut out).unwrap();
    if let Some(k) = key {
        pk(k).encode_vec().unwrap().encode(&mut out).unwrap();
        0u8.encode(&mut out).unwrap();
    }
    out
}

fn constraint(from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    from.encode(&mut inner).unwrap();
    to.encode(&mut inner).unwrap();
    b"".as_slice().encode(&mut inner).unwrap();
    let mut out = Vec::new();
    inner.encode(&mut out).unwrap();
    out
}

/// `ssh-add -h gw -h 'gw>target'` for the user key.
fn add_restricted() -> Vec<u8> {
    let mut m = vec![25u8];
    KeypairData::Ed25519(kp(USER_KEY)).encode(&mut m).unwrap();
    "engineer".encode(&mut m).unwrap();
    m.push(255);
    "restrict-destination-v00@openssh.com"
        .encode(&mut m)
        .unwrap();
    let mut dests = constraint(&hop("", None), &hop("gw", Some(GW)));
    dests.extend(constraint(
        &hop("gw", Some(GW)),
        &hop("target", Some(TARGET)),
    ));
    dests.encode(&mut m).unwrap();
    m
}

fn session_bind(host: u8, sid: u8, forwarding: bool) -> Vec<u8> {
    let session_id = vec![sid; 32];
    let sig: Signature = kp(host).try_sign(&session_id).unwrap();
    let mut m = vec![27u8];
    "session-bind@openssh.com".encode(&mut m).unwrap();
    pk(host).encode_vec().unwrap().encode(&mut m).unwrap();
    session_id.encode(&mut m).unwrap();
    sig.encode_vec().unwrap().encode(&mut m).unwrap();
    u8::from(forwarding).encode(&mut m).unwrap();
    m
}

fn userauth(sid: u8, user: &str, hostkey: Option<u8>) -> Vec<u8> {
    let mut d = Vec::new();
    vec![sid; 32].encode(&mut d).unwrap();
    50u8.encode(&mut d).unwrap();
    user.encode(&mut d).unwrap();
    "ssh-connection".encode(&mut d).unwrap();
    match hostkey {
        Some(_) => "publickey-hostbound-v00@openssh.com",
        None => "publickey",
    }
    .encode(&mut d)
    .unwrap();
    1u8.encode(&mut d).unwrap();
    "ssh-ed25519".encode(&mut d).unwrap();
    pk(USER_KEY).encode_vec().unwrap().encode(&mut d).unwrap();
    if let Some(h) = hostkey {
        pk(h).encode_vec().unwrap().encode(&mut d).unwrap();
    }
    d
}

fn sign(data: &[u8]) -> Vec<u8> {
    let mut m = vec![13u8];
    pk(USER_KEY).encode_vec().unwrap().encode(&mut m).unwrap();
    data.encode(&mut m).unwrap();
    0u32.encode(&mut m).unwrap();
    m
}

/// One client connection to the shared agent over an in-memory pipe.
fn connect(agent: &std::sync::Arc<Agent>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(1 << 20);
    let agent = agent.clone();
    tokio::spawn(async move {
        let _ = serve_connection(server, &agent).await;
    });
    client
}

async fn call(conn: &mut DuplexStream, body: &[u8]) -> Vec<u8> {
    conn.write_all(&sallyport_agent::proto::frame(body))
        .await
        .unwrap();
    let len = conn.read_u32().await.unwrap();
    let mut reply = vec![0u8; len as usize];
    conn.read_exact(&mut reply).await.unwrap();
    reply
}

async fn listed(conn: &mut DuplexStream) -> u32 {
    let reply = call(conn, &[11]).await;
    assert_eq!(reply[0], 12);
    u32::from_be_bytes(reply[1..5].try_into().unwrap())
}

const SUCCESS: &[u8] = &[6];
const FAILURE: &[u8] = &[5];

#[tokio::test]
async fn restricted_key_signs_only_for_its_hops() {
    let agent = Agent::new();
    let mut local = connect(&agent);
    assert_eq!(call(&mut local, &add_restricted()).await, SUCCESS);
    // Local, unbound: listed, but never signs.
    assert_eq!(listed(&mut local).await, 1);
    assert_eq!(
        call(&mut local, &sign(&userauth(9, "u", None))).await,
        FAILURE
    );

    // ssh gw: bound for authentication to gw, signs the userauth for that session.
    let mut to_gw = connect(&agent);
    assert_eq!(call(&mut to_gw, &session_bind(GW, 1, false)).await, SUCCESS);
    let reply = call(&mut to_gw, &sign(&userauth(1, "u", None))).await;
    assert_eq!(reply[0], 14, "sign response");
    let sig_blob = Vec::<u8>::decode(&mut &reply[1..]).unwrap();
    let sig = Signature::decode(&mut sig_blob.as_slice()).unwrap();
    assert!(pk(USER_KEY).verify(&userauth(1, "u", None), &sig).is_ok());
    // ... but not something that is not a userauth, nor for another session id.
    assert_eq!(call(&mut to_gw, &sign(b"SSHSIG-like blob")).await, FAILURE);
    assert_eq!(
        call(&mut to_gw, &sign(&userauth(8, "u", None))).await,
        FAILURE
    );

    // ssh -A gw, then ssh target from gw: forwarded via gw, then bound to target.
    let mut via_gw = connect(&agent);
    assert_eq!(call(&mut via_gw, &session_bind(GW, 2, true)).await, SUCCESS);
    assert_eq!(
        listed(&mut via_gw).await,
        1,
        "visible on gw: usable beyond it"
    );
    assert_eq!(
        call(&mut via_gw, &session_bind(TARGET, 3, false)).await,
        SUCCESS
    );
    let reply = call(&mut via_gw, &sign(&userauth(3, "u", Some(TARGET)))).await;
    assert_eq!(reply[0], 14, "signs for target through gw");
    // The hostbound request must name the bound host key.
    assert_eq!(
        call(&mut via_gw, &sign(&userauth(3, "u", Some(OTHER)))).await,
        FAILURE
    );

    // ssh -A gw, then ssh other from gw: refused.
    let mut elsewhere = connect(&agent);
    assert_eq!(
        call(&mut elsewhere, &session_bind(GW, 4, true)).await,
        SUCCESS
    );
    assert_eq!(
        call(&mut elsewhere, &session_bind(OTHER, 5, false)).await,
        SUCCESS
    );
    assert_eq!(
        listed(&mut elsewhere).await,
        0,
        "hidden on the way to another host"
    );
    assert_eq!(
        call(&mut elsewhere, &sign(&userauth(5, "u", Some(OTHER)))).await,
        FAILURE
    );

    // Direct to another host: refused; forwarded on to target: hidden.
    let mut direct_other = connect(&agent);
    assert_eq!(
        call(&mut direct_other, &session_bind(OTHER, 6, false)).await,
        SUCCESS
    );
    assert_eq!(
        call(&mut direct_other, &sign(&userauth(6, "u", None))).await,
        FAILURE
    );
    let mut at_target = connect(&agent);
    assert_eq!(
        call(&mut at_target, &session_bind(GW, 7, true)).await,
        SUCCESS
    );
    assert_eq!(
        call(&mut at_target, &session_bind(TARGET, 8, true)).await,
        SUCCESS
    );
    assert_eq!(listed(&mut at_target).await, 0);
    // Nor can a connection that can't see it remove it.
    let mut rm = vec![18u8];
    pk(USER_KEY).encode_vec().unwrap().encode(&mut rm).unwrap();
    assert_eq!(call(&mut at_target, &rm).await, FAILURE);
    assert_eq!(call(&mut local, &rm).await, SUCCESS);
}

#[tokio::test]
async fn session_bind_refuses_forgeries_and_rebinding() {
    let agent = Agent::new();
    let mut conn = connect(&agent);
    let mut forged = session_bind(GW, 1, false);
    // Flip a byte of the signature.
    let n = forged.len();
    forged[n - 2] ^= 1;
    assert_eq!(call(&mut conn, &forged).await, FAILURE);
    assert_eq!(call(&mut conn, &session_bind(GW, 1, false)).await, SUCCESS);
    // Nothing more after a binding for authentication.
    assert_eq!(
        call(&mut conn, &session_bind(TARGET, 2, false)).await,
        FAILURE
    );
}
