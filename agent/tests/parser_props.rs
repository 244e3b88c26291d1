//! The parser never panics: arbitrary bytes, and valid messages mutated (flipped, cut,
//! spliced), go through framing, parsing and the whole request handler. Bounded case counts so
//! the normal test run stays fast; `agent/fuzz` runs the same entry point without bounds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use russh::keys::signature::Signer;
use russh::keys::ssh_encoding::Encode;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::Signature;
use sallyport_agent::constraints::Bindings;
use sallyport_agent::proto::{self, Reply};
use sallyport_agent::server::{handle, Agent};

fn kp(seed: u8) -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[seed; 32])
}

/// One valid message of each kind the agent parses.
fn seeds() -> Vec<Vec<u8>> {
    let key_blob = KeyData::Ed25519(kp(1).public).encode_vec().unwrap();
    let mut out = vec![vec![11u8], vec![19u8]];
    let mut sign = vec![13u8];
    key_blob.encode(&mut sign).unwrap();
    b"data".as_slice().encode(&mut sign).unwrap();
    4u32.encode(&mut sign).unwrap();
    out.push(sign);
    let mut add = vec![25u8];
    KeypairData::Ed25519(kp(2)).encode(&mut add).unwrap();
    "c".encode(&mut add).unwrap();
    add.push(1);
    30u32.encode(&mut add).unwrap();
    add.push(255);
    "restrict-destination-v00@openssh.com"
        .encode(&mut add)
        .unwrap();
    let mut hop_to = Vec::new();
    "".encode(&mut hop_to).unwrap();
    "gw".encode(&mut hop_to).unwrap();
    b"".as_slice().encode(&mut hop_to).unwrap();
    key_blob.encode(&mut hop_to).unwrap();
    0u8.encode(&mut hop_to).unwrap();
    let mut hop_from = Vec::new();
    "".encode(&mut hop_from).unwrap();
    "".encode(&mut hop_from).unwrap();
    b"".as_slice().encode(&mut hop_from).unwrap();
    let mut c = Vec::new();
    hop_from.encode(&mut c).unwrap();
    hop_to.encode(&mut c).unwrap();
    b"".as_slice().encode(&mut c).unwrap();
    let mut cs = Vec::new();
    c.encode(&mut cs).unwrap();
    cs.encode(&mut add).unwrap();
    out.push(add);
    let mut rm = vec![18u8];
    key_blob.encode(&mut rm).unwrap();
    out.push(rm);
    let mut lock = vec![22u8];
    "pw".encode(&mut lock).unwrap();
    out.push(lock.clone());
    lock[0] = 23;
    out.push(lock);
    let sid = vec![9u8; 32];
    let sig: Signature = kp(1).try_sign(&sid).unwrap();
    let mut bind = vec![27u8];
    "session-bind@openssh.com".encode(&mut bind).unwrap();
    key_blob.encode(&mut bind).unwrap();
    sid.encode(&mut bind).unwrap();
    sig.encode_vec().unwrap().encode(&mut bind).unwrap();
    bind.push(1);
    out.push(bind);
    out.push(proto::encode_generate_ed25519("g", 60).unwrap());
    out
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    SetLen(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (
            any::<usize>(),
            prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7fff_ffff), any::<u32>()]
        )
            .prop_map(|(i, v)| Mutation::SetLen(i, v)),
    ]
}

fn apply(mut msg: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = msg.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if let Some(x) = msg.get_mut(i % n) {
                    *x ^= b;
                }
            }
            Mutation::Truncate(i) => msg.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = i % (msg.len() + 1);
                msg.splice(at..at, v.iter().copied());
            }
            Mutation::SetLen(i, v) => {
                let at = i % n;
                for (k, b) in v.to_be_bytes().iter().enumerate() {
                    if let Some(x) = msg.get_mut(at + k) {
                        *x = *b;
                    }
                }
            }
        }
    }
    msg
}

fn drive(body: &[u8]) {
    sallyport_agent::fuzz_parse(body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let agent = Agent::new();
        let mut bindings = Bindings::default();
        let reply = handle(body, &agent, &mut bindings).await;
        // Whatever came in, the reply is a well-formed message.
        assert!(!reply.encode().is_empty());
        if proto::parse_request(body).is_err() {
            assert_eq!(reply, Reply::Failure);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        drive(&body);
    }

    #[test]
    fn typed_prefix_bytes_never_panic(
        kind in prop_oneof![Just(11u8), Just(13), Just(17), Just(18), Just(22), Just(23), Just(25), Just(27)],
        rest in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut body = vec![kind];
        body.extend(rest);
        drive(&body);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        which in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let seeds = seeds();
        let seed = seeds[which % seeds.len()].clone();
        drive(&apply(seed, &mutations));
    }
}

#[test]
fn seeds_are_valid() {
    for (i, s) in seeds().iter().enumerate() {
        assert!(
            proto::parse_request(s).is_ok(),
            "seed {i}: {:?}",
            proto::parse_request(s)
        );
    }
}
