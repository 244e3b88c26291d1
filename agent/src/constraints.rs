//! OpenSSH destination constraints (`ssh-add -h`), without I/O: the
//! `restrict-destination-v00@openssh.com` key constraint, the per-connection
//! `session-bind@openssh.com` bindings, and the check that decides whether a key may be listed
//! or used on a connection — the semantics of OpenSSH's `PROTOCOL.agent` and `ssh-agent.c`
//! (`identity_permitted`, `permitted_by_dest_constraints`, `match_key_hop`).
//!
//! ```text
//!   ssh-add -h 'gw>target'  →  [ (ORIGIN) → gw ,  gw → target ]      (one DestConstraint each)
//!   connection bindings      →  [ gw (forwarding) , target (auth) ]   (session-bind, in order)
//!   a hop i is allowed when some constraint has from = binding[i-1] (or ORIGIN for i = 0)
//!   and to = binding[i]; every hop but the last must be a forwarding binding, and a
//!   signature is only made for the last one, for a userauth request naming its session id.
//! ```

use russh::keys::signature::Verifier;
use russh::keys::ssh_encoding::{Decode, Reader};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Algorithm, Certificate};
use subtle::ConstantTimeEq;

use crate::error::{KeystoreError, ParseError};
use crate::proto::{parse_key_blob, SessionBind};

/// Most destination constraints on one key (as OpenSSH).
const MAX_DEST_CONSTRAINTS: usize = 1024;
/// Most session bindings on one connection (as OpenSSH).
pub const MAX_SESSION_BINDINGS: usize = 16;
/// Longest user or host name in a constraint.
const MAX_NAME_LEN: usize = 1024;

/// A host key in a constraint hop: the key itself, or a CA whose host certificates match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKeySpec {
    pub key: KeyData,
    pub is_ca: bool,
}

/// One end of a destination constraint. `hostname == None` with no keys is the origin (the
/// machine running the agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hop {
    /// A user-name pattern (`to` only; `*` and `?` wildcards).
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub keys: Vec<HostKeySpec>,
}

/// `from > to`: the key may be used from `from` to log in to (or forward through) `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestConstraint {
    pub from: Hop,
    pub to: Hop,
}

/// A verified `session-bind@openssh.com` on one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionBinding {
    pub host_key: KeyData,
    pub session_id: Vec<u8>,
    pub forwarded: bool,
}

/// The bindings of one client connection, in the order they were made.
#[derive(Clone, Debug, Default)]
pub struct Bindings {
    list: Vec<SessionBinding>,
}

impl Bindings {
    /// The recorded bindings.
    pub fn as_slice(&self) -> &[SessionBinding] {
        &self.list
    }

    /// Verifies and records a binding, as OpenSSH's `process_ext_session_bind`: the host key's
    /// signature over the session id must verify; no binding after one made for
    /// authentication; the same session id with another key is refused; a repeat is accepted
    /// without being recorded twice; at most [`MAX_SESSION_BINDINGS`].
    pub fn bind(&mut self, bind: &SessionBind) -> Result<(), KeystoreError> {
        verify_host_signature(bind)?;
        for existing in &self.list {
            if !existing.forwarded {
                return Err(KeystoreError::SessionBind(
                    "connection already bound for authentication",
                ));
            }
            let sid_match: bool = existing.session_id.ct_eq(&bind.session_id).into();
            if sid_match && existing.host_key == bind.host_key {
                return Ok(());
            }
            if sid_match {
                return Err(KeystoreError::SessionBind(
                    "session id recorded against a different host key",
                ));
            }
        }
        if self.list.len() >= MAX_SESSION_BINDINGS {
            return Err(KeystoreError::SessionBind("too many session bindings"));
        }
        self.list.push(SessionBinding {
            host_key: bind.host_key.clone(),
            session_id: bind.session_id.clone(),
            forwarded: bind.is_forwarding,
        });
        Ok(())
    }
}

fn verify_host_signature(bind: &SessionBind) -> Result<(), KeystoreError> {
    let key = match &bind.host_key {
        KeyData::Certificate(cert) => cert.public_key(),
        other => other,
    };
    key.verify(&bind.session_id, &bind.signature)
        .map_err(|_| KeystoreError::SessionBind("host key signature does not verify"))
}

/// Parses the body of a `restrict-destination-v00@openssh.com` constraint (the contents of its
/// `string`): a sequence of `string constraint`, each `string from_hop, string to_hop,
/// string reserved`.
pub fn parse_destinations(mut r: &[u8]) -> Result<Vec<DestConstraint>, ParseError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_DEST_CONSTRAINTS {
            return Err(ParseError::Invalid("too many destination constraints"));
        }
        let inner = Vec::<u8>::decode(&mut r)?;
        out.push(parse_dest_constraint(&inner)?);
    }
    if out.is_empty() {
        return Err(ParseError::Invalid("empty destination constraint"));
    }
    Ok(out)
}

fn parse_dest_constraint(mut r: &[u8]) -> Result<DestConstraint, ParseError> {
    let from = Vec::<u8>::decode(&mut r)?;
    let to = Vec::<u8>::decode(&mut r)?;
    let reserved = Vec::<u8>::decode(&mut r)?;
    if !reserved.is_empty() {
        return Err(ParseError::Invalid("destination constraint extensions"));
    }
    if !r.is_empty() {
        return Err(ParseError::TrailingBytes(r.len()));
    }
    let from = parse_hop(&from)?;
    let to = parse_hop(&to)?;
    if from.user.is_some() || from.hostname.is_none() != from.keys.is_empty() {
        return Err(ParseError::Invalid("destination constraint \"from\" hop"));
    }
    if to.hostname.is_none() || to.keys.is_empty() {
        return Err(ParseError::Invalid("destination constraint \"to\" hop"));
    }
    Ok(DestConstraint { from, to })
}

fn parse_hop(mut r: &[u8]) -> Result<Hop, ParseError> {
    let user = name(&mut r)?;
    let hostname = name(&mut r)?;
    let reserved = Vec::<u8>::decode(&mut r)?;
    if !reserved.is_empty() {
        return Err(ParseError::Invalid("destination hop extensions"));
    }
    let mut keys = Vec::new();
    while !r.is_empty() {
        let key = parse_key_blob(&mut r)?;
        let is_ca = u8::decode(&mut r)? != 0;
        keys.push(HostKeySpec { key, is_ca });
    }
    Ok(Hop {
        user,
        hostname,
        keys,
    })
}

/// A C-string field: no NUL, bounded; empty means absent.
fn name(r: &mut &[u8]) -> Result<Option<String>, ParseError> {
    let s = String::decode(r)?;
    if s.len() > MAX_NAME_LEN || s.contains('\0') {
        return Err(ParseError::Invalid("name in destination constraint"));
    }
    Ok(if s.is_empty() { None } else { Some(s) })
}

/// Whether an identity with `dests` may be seen (`user == None`: list, remove, replace) or used
/// to sign for `user` on a connection with `bindings` (OpenSSH's `identity_permitted`).
pub fn identity_permitted(
    dests: &[DestConstraint],
    bindings: &[SessionBinding],
    user: Option<&str>,
    now_unix: u64,
) -> Result<(), &'static str> {
    if dests.is_empty() || bindings.is_empty() {
        return Ok(()); // unconstrained, or local use
    }
    let mut from: Option<&KeyData> = None;
    let last = bindings.len() - 1;
    for (i, b) in bindings.iter().enumerate() {
        let mut test_user = None;
        if i == last {
            test_user = user;
            if b.forwarded && user.is_some() {
                return Err("signature requested on a forwarding hop");
            }
        } else if !b.forwarded {
            return Err("forwarding through a binding made for authentication");
        }
        if !permitted_by_dest_constraints(from, Some(&b.host_key), dests, test_user, now_unix) {
            return Err("no destination constraint allows this hop");
        }
        from = Some(&b.host_key);
    }
    // A key usable *at* the last (forwarding) host but not beyond it stays hidden there.
    if let Some(b) = bindings.last() {
        if b.forwarded
            && user.is_none()
            && !permitted_by_dest_constraints(Some(&b.host_key), None, dests, None, now_unix)
        {
            return Err("key permitted at this host but not beyond it");
        }
    }
    Ok(())
}

fn permitted_by_dest_constraints(
    from: Option<&KeyData>,
    to: Option<&KeyData>,
    dests: &[DestConstraint],
    user: Option<&str>,
    now_unix: u64,
) -> bool {
    dests.iter().any(|d| {
        let from_ok = match from {
            None => d.from.hostname.is_none() && d.from.keys.is_empty(),
            Some(key) => match_key_hop(key, &d.from, now_unix),
        };
        let to_ok = to.is_none_or(|key| match_key_hop(key, &d.to, now_unix));
        let user_ok = match (&d.to.user, user) {
            (Some(pattern), Some(user)) => match_pattern(user, pattern),
            _ => true,
        };
        from_ok && to_ok && user_ok
    })
}

fn match_key_hop(key: &KeyData, hop: &Hop, now_unix: u64) -> bool {
    hop.keys.iter().any(|spec| match key {
        KeyData::Certificate(cert) => {
            spec.is_ca
                && cert.signature_key() == &spec.key
                && host_cert_valid_for(cert, hop.hostname.as_deref(), now_unix)
        }
        plain => !spec.is_ca && plain == &spec.key,
    })
}

/// OpenSSH's `sshkey_cert_check_host` with a required principal: a host certificate, valid
/// now, naming `hostname`, signed with an allowed algorithm (not SHA-1 RSA), signature valid.
fn host_cert_valid_for(cert: &Certificate, hostname: Option<&str>, now_unix: u64) -> bool {
    let Some(hostname) = hostname else {
        return false;
    };
    cert.cert_type() == CertType::Host
        && cert.valid_after() <= now_unix
        && now_unix < cert.valid_before()
        && cert.valid_principals().iter().any(|p| p == hostname)
        && cert.signature().algorithm() != Algorithm::Rsa { hash: None }
        && cert.verify_signature().is_ok()
}

/// The parts of an SSH `publickey` userauth request that the constraint check needs.
#[derive(Debug)]
struct UserAuth {
    user: String,
    session_id: Vec<u8>,
    host_key: Option<KeyData>,
}

/// OpenSSH's `parse_userauth_request`: `data` must be exactly a publickey (or
/// `publickey-hostbound-v00@openssh.com`) userauth request for `expected`.
fn parse_userauth_request(mut r: &[u8], expected: &KeyData) -> Option<UserAuth> {
    const SSH2_MSG_USERAUTH_REQUEST: u8 = 50;
    let session_id = Vec::<u8>::decode(&mut r).ok()?;
    let kind = u8::decode(&mut r).ok()?;
    let user = String::decode(&mut r).ok()?;
    let service = String::decode(&mut r).ok()?;
    let method = String::decode(&mut r).ok()?;
    let sig_follows = u8::decode(&mut r).ok()?;
    let pkalg = String::decode(&mut r).ok()?;
    let key = parse_key_blob(&mut r).ok()?;
    if session_id.is_empty()
        || kind != SSH2_MSG_USERAUTH_REQUEST
        || sig_follows != 1
        || service != "ssh-connection"
        || &key != expected
        || !algorithm_names_key(&pkalg, expected)
    {
        return None;
    }
    let host_key = match method.as_str() {
        "publickey-hostbound-v00@openssh.com" => Some(parse_key_blob(&mut r).ok()?),
        "publickey" => None,
        _ => return None,
    };
    if !r.is_finished() {
        return None;
    }
    Some(UserAuth {
        user,
        session_id,
        host_key,
    })
}

/// Whether a userauth public-key algorithm name is one for this key's type.
fn algorithm_names_key(pkalg: &str, key: &KeyData) -> bool {
    match key {
        KeyData::Ed25519(_) => pkalg == "ssh-ed25519",
        KeyData::Rsa(_) => matches!(pkalg, "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512"),
        KeyData::Certificate(cert) => match cert.public_key() {
            KeyData::Ed25519(_) => pkalg == "ssh-ed25519-cert-v01@openssh.com",
            KeyData::Rsa(_) => matches!(
                pkalg,
                "ssh-rsa-cert-v01@openssh.com"
                    | "rsa-sha2-256-cert-v01@openssh.com"
                    | "rsa-sha2-512-cert-v01@openssh.com"
            ),
            _ => false,
        },
        _ => false,
    }
}

/// The checks OpenSSH's `process_sign_request2` makes before a destination-constrained key
/// signs: a bound connection, a userauth request for this key, a permitted path, the session
/// id of the latest binding, and (when present or needed) its host key.
pub fn check_sign(
    dests: &[DestConstraint],
    bindings: &[SessionBinding],
    key: &KeyData,
    data: &[u8],
    now_unix: u64,
) -> Result<(), &'static str> {
    if dests.is_empty() {
        return Ok(());
    }
    let Some(last) = bindings.last() else {
        return Err("destination-constrained key on an unbound connection");
    };
    let auth = parse_userauth_request(data, key)
        .ok_or("destination-constrained key asked to sign something other than a userauth")?;
    identity_permitted(dests, bindings, Some(&auth.user), now_unix)?;
    let sid_match: bool = auth.session_id.ct_eq(&last.session_id).into();
    if !sid_match {
        return Err("userauth session id is not the latest bound session");
    }
    match &auth.host_key {
        None if bindings.len() > 1 => Err("no host key in a forwarded userauth request"),
        Some(hk) if hk != &last.host_key => Err("userauth host key is not the bound host key"),
        _ => Ok(()),
    }
}

/// OpenSSH's `match_pattern`: `*` matches any run, `?` one character; the rest literally.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == s.get(si) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
#[path = "constraints_tests.rs"]
mod tests;
