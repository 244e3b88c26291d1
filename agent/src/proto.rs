//! The ssh-agent wire protocol, without I/O: framing, requests parsed into [`Request`], replies
//! encoded from [`Reply`] (draft-miller-ssh-agent, OpenSSH's `PROTOCOL.agent`, and the two
//! sallyport extensions).
//!
//! ```text
//!   uint32 length ─┬─ byte type ─ fields…        length ≤ MAX_MESSAGE_LEN, else the
//!                  └──────── body ───────┘       connection is dropped (as OpenSSH does)
//! ```
//!
//! Every function here takes bytes and returns values; nothing panics on any input (the fuzz
//! target and the property tests in `tests/parser_props.rs` hold it to that).

use russh::keys::ssh_encoding::{Decode, Encode, Reader};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData, RsaKeypair, RsaPrivateKey};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Algorithm, Certificate, Signature};
use sallyport_core::secret::Secret;

use crate::constraints::{self, DestConstraint};
use crate::error::ParseError;

/// Largest message (after the length field) the agent reads or writes, as OpenSSH's agent.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// Message numbers (draft-miller-ssh-agent §6.1).
pub mod msg {
    pub const FAILURE: u8 = 5;
    pub const SUCCESS: u8 = 6;
    pub const REQUEST_IDENTITIES: u8 = 11;
    pub const IDENTITIES_ANSWER: u8 = 12;
    pub const SIGN_REQUEST: u8 = 13;
    pub const SIGN_RESPONSE: u8 = 14;
    pub const ADD_IDENTITY: u8 = 17;
    pub const REMOVE_IDENTITY: u8 = 18;
    pub const REMOVE_ALL_IDENTITIES: u8 = 19;
    pub const LOCK: u8 = 22;
    pub const UNLOCK: u8 = 23;
    pub const ADD_ID_CONSTRAINED: u8 = 25;
    pub const EXTENSION: u8 = 27;
}

/// Key constraint numbers (§6.4).
pub mod constraint {
    pub const LIFETIME: u8 = 1;
    pub const CONFIRM: u8 = 2;
    pub const MAXSIGN: u8 = 3;
    pub const EXTENSION: u8 = 255;
}

/// Signature flags of `SSH_AGENTC_SIGN_REQUEST` (§6.6.3).
pub mod sign_flags {
    pub const RSA_SHA2_256: u32 = 2;
    pub const RSA_SHA2_512: u32 = 4;
}

/// Extension and constraint-extension names.
pub mod ext {
    pub const SESSION_BIND: &str = "session-bind@openssh.com";
    pub const RESTRICT_DESTINATION: &str = "restrict-destination-v00@openssh.com";
    pub const GENERATE_ED25519: &str = "generate-ed25519@sallyport";
    pub const ADD_CERTIFICATE: &str = "add-certificate@sallyport";
}

/// The largest lifetime `generate-ed25519@sallyport` accepts (24 hours).
pub const MAX_GENERATED_LIFETIME_SECS: u32 = 86_400;

/// Smallest and largest RSA modulus accepted from `ssh-add`.
const RSA_MIN_BITS: u32 = 2048;
const RSA_MAX_BITS: u32 = 16384;
/// Longest key comment accepted.
const MAX_COMMENT_LEN: usize = 1024;
/// Longest session identifier in `session-bind@openssh.com` (as OpenSSH).
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Checks a frame's length field: `Ok(len)` to read `len` more bytes, or an error to drop the
/// connection (too large, or zero: no type byte).
pub fn body_len(len: u32) -> Result<usize, ParseError> {
    let len = usize::try_from(len).map_err(|_| ParseError::Invalid("message length"))?;
    if len == 0 {
        return Err(ParseError::Empty);
    }
    if len > MAX_MESSAGE_LEN {
        return Err(ParseError::Invalid("message length (over 256 KiB)"));
    }
    Ok(len)
}

/// Splits one frame off the front of `buf`: `Ok(None)` if more bytes are needed, else the body
/// and the number of bytes consumed.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ParseError> {
    let Some((head, rest)) = buf.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = body_len(u32::from_be_bytes(*head))?;
    match rest.get(..len) {
        Some(body) => Ok(Some((body, len + 4))),
        None => Ok(None),
    }
}

/// Prefixes `body` with its length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    // A body over u32::MAX cannot be built by this crate (replies are bounded); saturate anyway.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A private key handed to the agent by `ssh-add`, optionally with its certificate.
pub struct NewKey {
    /// The key pair (ed25519 or RSA only).
    pub keypair: KeypairData,
    /// The certificate, when `ssh-add` sent a `*-cert-v01@openssh.com` key.
    pub cert: Option<Certificate>,
    /// The comment shown by `ssh-add -l`.
    pub comment: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("algorithm", &self.keypair.algorithm().ok())
            .field(
                "certificate",
                &self.cert.as_ref().map(|c| c.key_id().to_owned()),
            )
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

/// Constraints sent with `SSH_AGENTC_ADD_ID_CONSTRAINED`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyConstraints {
    /// Seconds until the agent deletes the key.
    pub lifetime_secs: Option<u32>,
    /// `restrict-destination-v00@openssh.com` hops (`ssh-add -h`).
    pub destinations: Vec<DestConstraint>,
}

/// `session-bind@openssh.com`: the client binds this connection to an SSH session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionBind {
    /// The server's host key (plain key or host certificate).
    pub host_key: KeyData,
    /// The session identifier (exchange hash of the first key exchange).
    pub session_id: Vec<u8>,
    /// The host key's signature over the session identifier.
    pub signature: Signature,
    /// Whether the binding is for forwarding the agent onward (rather than for authentication).
    pub is_forwarding: bool,
}

/// A parsed request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Request {
    /// `SSH_AGENTC_REQUEST_IDENTITIES`.
    RequestIdentities,
    /// `SSH_AGENTC_SIGN_REQUEST`.
    Sign {
        /// The public key or certificate to sign with.
        key: KeyData,
        /// What to sign.
        data: Vec<u8>,
        /// [`sign_flags`].
        flags: u32,
    },
    /// `SSH_AGENTC_ADD_IDENTITY` / `SSH_AGENTC_ADD_ID_CONSTRAINED`.
    AddIdentity {
        key: Box<NewKey>,
        constraints: KeyConstraints,
    },
    /// `SSH_AGENTC_REMOVE_IDENTITY`.
    RemoveIdentity { key: KeyData },
    /// `SSH_AGENTC_REMOVE_ALL_IDENTITIES`.
    RemoveAllIdentities,
    /// `SSH_AGENTC_LOCK`.
    Lock { passphrase: Secret<Vec<u8>> },
    /// `SSH_AGENTC_UNLOCK`.
    Unlock { passphrase: Secret<Vec<u8>> },
    /// `session-bind@openssh.com`.
    SessionBind(Box<SessionBind>),
    /// `generate-ed25519@sallyport`.
    GenerateEd25519 { comment: String, lifetime_secs: u32 },
    /// `add-certificate@sallyport`.
    AddCertificate(Box<Certificate>),
}

impl Request {
    /// A short name of the request, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestIdentities => "request-identities",
            Self::Sign { .. } => "sign",
            Self::AddIdentity { .. } => "add-identity",
            Self::RemoveIdentity { .. } => "remove-identity",
            Self::RemoveAllIdentities => "remove-all-identities",
            Self::Lock { .. } => "lock",
            Self::Unlock { .. } => "unlock",
            Self::SessionBind(_) => "session-bind",
            Self::GenerateEd25519 { .. } => "generate-ed25519",
            Self::AddCertificate(_) => "add-certificate",
        }
    }
}

/// Parses one message body (type byte and fields, without the length).
pub fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let (&kind, mut r) = body.split_first().ok_or(ParseError::Empty)?;
    let request = match kind {
        msg::REQUEST_IDENTITIES => Request::RequestIdentities,
        msg::SIGN_REQUEST => {
            let key = parse_key_blob(&mut r)?;
            let data = Vec::<u8>::decode(&mut r)?;
            let flags = u32::decode(&mut r)?;
            Request::Sign { key, data, flags }
        }
        msg::ADD_IDENTITY | msg::ADD_ID_CONSTRAINED => {
            let key = Box::new(parse_private_key(&mut r)?);
            let constraints = if kind == msg::ADD_ID_CONSTRAINED {
                parse_constraints(&mut r)?
            } else {
                KeyConstraints::default()
            };
            Request::AddIdentity { key, constraints }
        }
        msg::REMOVE_IDENTITY => Request::RemoveIdentity {
            key: parse_key_blob(&mut r)?,
        },
        msg::REMOVE_ALL_IDENTITIES => Request::RemoveAllIdentities,
        msg::LOCK => Request::Lock {
            passphrase: Secret::new(Vec::<u8>::decode(&mut r)?),
        },
        msg::UNLOCK => Request::Unlock {
            passphrase: Secret::new(Vec::<u8>::decode(&mut r)?),
        },
        msg::EXTENSION => parse_extension(&mut r)?,
        other => return Err(ParseError::UnsupportedMessage(other)),
    };
    if !r.is_empty() {
        return Err(ParseError::TrailingBytes(r.len()));
    }
    Ok(request)
}

fn parse_extension(r: &mut &[u8]) -> Result<Request, ParseError> {
    let name = String::decode(r)?;
    match name.as_str() {
        ext::SESSION_BIND => {
            let host_key = parse_key_blob(r)?;
            let session_id = Vec::<u8>::decode(r)?;
            if session_id.is_empty() || session_id.len() > MAX_SESSION_ID_LEN {
                return Err(ParseError::Invalid("session identifier length"));
            }
            let sig_blob = Vec::<u8>::decode(r)?;
            let signature = Signature::decode(&mut sig_blob.as_slice())?;
            let is_forwarding = decode_bool(r)?;
            Ok(Request::SessionBind(Box::new(SessionBind {
                host_key,
                session_id,
                signature,
                is_forwarding,
            })))
        }
        ext::GENERATE_ED25519 => {
            let comment = decode_comment(r)?;
            let lifetime_secs = u32::decode(r)?;
            if !(1..=MAX_GENERATED_LIFETIME_SECS).contains(&lifetime_secs) {
                return Err(ParseError::Invalid("lifetime (1..=86400 seconds)"));
            }
            Ok(Request::GenerateEd25519 {
                comment,
                lifetime_secs,
            })
        }
        ext::ADD_CERTIFICATE => {
            let blob = Vec::<u8>::decode(r)?;
            let cert = Certificate::from_bytes(&blob)?;
            Ok(Request::AddCertificate(Box::new(cert)))
        }
        _ => Err(ParseError::UnsupportedExtension(name)),
    }
}

/// A `string` holding a public key or certificate blob.
pub(crate) fn parse_key_blob(r: &mut &[u8]) -> Result<KeyData, ParseError> {
    let blob = Vec::<u8>::decode(r)?;
    Ok(KeyData::from_bytes_exact(&blob)?)
}

/// Decodes a whole public key or certificate blob (no trailing bytes).
trait FromBytesExact: Sized {
    fn from_bytes_exact(bytes: &[u8]) -> Result<Self, russh::keys::ssh_key::Error>;
}

impl FromBytesExact for KeyData {
    fn from_bytes_exact(mut bytes: &[u8]) -> Result<Self, russh::keys::ssh_key::Error> {
        let reader = &mut bytes;
        let key = KeyData::decode(reader)?;
        Ok(reader.finish(key)?)
    }
}

fn decode_bool(r: &mut &[u8]) -> Result<bool, ParseError> {
    match u8::decode(r)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ParseError::Invalid("boolean")),
    }
}

fn decode_comment(r: &mut &[u8]) -> Result<String, ParseError> {
    let comment = String::decode(r)?;
    if comment.len() > MAX_COMMENT_LEN {
        return Err(ParseError::Invalid("comment length"));
    }
    Ok(comment)
}

/// The private key fields of `SSH_AGENTC_ADD_IDENTITY` (§6.2 and §4 of
/// draft-miller-ssh-agent): `string type` then the type's fields, then `string comment`.
fn parse_private_key(r: &mut &[u8]) -> Result<NewKey, ParseError> {
    let type_name = String::decode(r)?;
    let (keypair, cert) = if let Ok(cert_alg) = Algorithm::new_certificate(&type_name) {
        let blob = Vec::<u8>::decode(r)?;
        let cert = Certificate::from_bytes(&blob)?;
        if cert.algorithm() != cert_alg {
            return Err(ParseError::Invalid("certificate type"));
        }
        let keypair = match cert.public_key() {
            KeyData::Ed25519(public) => {
                let keypair = Ed25519Keypair::decode(r)?;
                if &keypair.public != public {
                    return Err(ParseError::Invalid(
                        "private key does not match certificate",
                    ));
                }
                KeypairData::Ed25519(keypair)
            }
            KeyData::Rsa(public) => {
                let private = RsaPrivateKey::decode(r)?;
                KeypairData::Rsa(RsaKeypair::new(public.clone(), private)?)
            }
            _ => return Err(ParseError::UnsupportedKeyType(type_name)),
        };
        (keypair, Some(cert))
    } else {
        let keypair = match Algorithm::new(&type_name) {
            Ok(Algorithm::Ed25519) => KeypairData::Ed25519(Ed25519Keypair::decode(r)?),
            Ok(Algorithm::Rsa { hash: None }) => KeypairData::Rsa(RsaKeypair::decode(r)?),
            _ => return Err(ParseError::UnsupportedKeyType(type_name)),
        };
        (keypair, None)
    };
    if let KeypairData::Rsa(rsa) = &keypair {
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&rsa.key_size()) {
            return Err(ParseError::Invalid("RSA key size (2048..=16384 bits)"));
        }
    }
    let comment = decode_comment(r)?;
    Ok(NewKey {
        keypair,
        cert,
        comment,
    })
}

/// The constraints after the key in `SSH_AGENTC_ADD_ID_CONSTRAINED`. Unknown constraints,
/// `confirm` (no prompt here) and `maxsign` (XMSS only) are refused, as are repeats.
fn parse_constraints(r: &mut &[u8]) -> Result<KeyConstraints, ParseError> {
    let mut out = KeyConstraints::default();
    let mut have_destinations = false;
    while !r.is_empty() {
        match u8::decode(r)? {
            constraint::LIFETIME => {
                if out.lifetime_secs.is_some() {
                    return Err(ParseError::Invalid("repeated lifetime constraint"));
                }
                out.lifetime_secs = Some(u32::decode(r)?);
            }
            constraint::CONFIRM => return Err(ParseError::UnsupportedConstraint("confirm".into())),
            constraint::MAXSIGN => return Err(ParseError::UnsupportedConstraint("maxsign".into())),
            constraint::EXTENSION => {
                let name = String::decode(r)?;
                if name != ext::RESTRICT_DESTINATION {
                    return Err(ParseError::UnsupportedConstraint(name));
                }
                if have_destinations {
                    return Err(ParseError::Invalid("repeated destination constraint"));
                }
                have_destinations = true;
                let blob = Vec::<u8>::decode(r)?;
                out.destinations = constraints::parse_destinations(&blob)?;
            }
            other => return Err(ParseError::UnsupportedConstraint(other.to_string())),
        }
    }
    Ok(out)
}

/// One identity in `SSH_AGENT_IDENTITIES_ANSWER`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityEntry {
    /// Public key or certificate blob.
    pub blob: Vec<u8>,
    /// Comment.
    pub comment: String,
}

/// A reply to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// `SSH_AGENT_SUCCESS`.
    Success,
    /// `SSH_AGENT_FAILURE`.
    Failure,
    /// `SSH_AGENT_IDENTITIES_ANSWER`.
    Identities(Vec<IdentityEntry>),
    /// `SSH_AGENT_SIGN_RESPONSE` with the encoded signature (`string alg, string blob`).
    Signature(Vec<u8>),
    /// `SSH_AGENT_SUCCESS` followed by `string` (the generated public key blob).
    SuccessWithBlob(Vec<u8>),
}

impl Reply {
    /// The message body (type byte and fields).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on lengths over u32::MAX, which replies never reach;
        // fall back to FAILURE rather than send a half-built message.
        if self.encode_into(&mut out).is_err() {
            return vec![msg::FAILURE];
        }
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), russh::keys::ssh_encoding::Error> {
        match self {
            Self::Success => msg::SUCCESS.encode(out),
            Self::Failure => msg::FAILURE.encode(out),
            Self::Identities(ids) => {
                msg::IDENTITIES_ANSWER.encode(out)?;
                u32::try_from(ids.len())
                    .map_err(|_| russh::keys::ssh_encoding::Error::Overflow)?
                    .encode(out)?;
                for id in ids {
                    id.blob.encode(out)?;
                    id.comment.encode(out)?;
                }
                Ok(())
            }
            Self::Signature(sig) => {
                msg::SIGN_RESPONSE.encode(out)?;
                sig.encode(out)
            }
            Self::SuccessWithBlob(blob) => {
                msg::SUCCESS.encode(out)?;
                blob.encode(out)
            }
        }
    }
}

/// Client side: the body of a `generate-ed25519@sallyport` request.
pub fn encode_generate_ed25519(
    comment: &str,
    lifetime_secs: u32,
) -> Result<Vec<u8>, russh::keys::ssh_encoding::Error> {
    let mut out = Vec::new();
    msg::EXTENSION.encode(&mut out)?;
    ext::GENERATE_ED25519.encode(&mut out)?;
    comment.encode(&mut out)?;
    lifetime_secs.encode(&mut out)?;
    Ok(out)
}

/// Client side: the body of an `add-certificate@sallyport` request.
pub fn encode_add_certificate(cert: &Certificate) -> Result<Vec<u8>, russh::keys::ssh_key::Error> {
    let mut out = Vec::new();
    msg::EXTENSION.encode(&mut out)?;
    ext::ADD_CERTIFICATE.encode(&mut out)?;
    cert.to_bytes()?.encode(&mut out)?;
    Ok(out)
}

/// Client side: reads `SSH_AGENT_SUCCESS` + `string blob` (the generate reply).
pub fn parse_success_with_blob(body: &[u8]) -> Result<Vec<u8>, ParseError> {
    let (&kind, mut r) = body.split_first().ok_or(ParseError::Empty)?;
    if kind != msg::SUCCESS {
        return Err(ParseError::UnsupportedMessage(kind));
    }
    let blob = Vec::<u8>::decode(&mut r)?;
    if !r.is_empty() {
        return Err(ParseError::TrailingBytes(r.len()));
    }
    Ok(blob)
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
