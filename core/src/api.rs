//! Bodies of the HTTPS API (`/v1/...`), shared by the gateway and the CLI.
//!
//! Requests carry typed, validated fields: a body that does not parse is refused with a 400 and
//! a message naming the field. Responses are plain views.

mod login;

use serde::{Deserialize, Serialize};

use crate::audit::{ChainError, ChainHead, Record};
use crate::model::{
    Fingerprint, GrantId, GrantObject, GrantOptions, GrantStatus, GroupName, Login, PortSpec,
    Protocol, Reason, Role, Subject, TargetAddress, TargetName, UserName, UserState,
};
use crate::time::Timestamp;

pub use login::{
    CertificateRequest, CertificateView, LoginChallengeRequest, LoginChallengeView, LoginRequest,
    LoginView, UserCaView, MAX_KEY_HINTS,
};

/// Prefix of every API path.
pub const API_PREFIX: &str = "/v1";

/// `POST /v1/users`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Name.
    pub name: UserName,
    /// At least one role.
    pub roles: Vec<Role>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<GroupName>,
}

/// `PUT /v1/users/{name}/groups`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetGroups {
    /// The user's groups from now on.
    pub groups: Vec<GroupName>,
}

/// A user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserView {
    /// Name (also its id).
    pub id: UserName,
    /// Roles.
    pub roles: Vec<Role>,
    /// Groups.
    pub groups: Vec<GroupName>,
    /// Active or disabled.
    pub state: UserState,
    /// When added.
    pub created_at: Timestamp,
}

/// `POST /v1/users/{name}/keys`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// One OpenSSH public key line.
    pub public_key: String,
}

/// A registered SSH public key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyView {
    /// SHA-256 fingerprint (also its id).
    pub id: Fingerprint,
    /// Owner.
    pub user: UserName,
    /// Algorithm.
    pub algorithm: String,
    /// Comment.
    pub comment: String,
    /// The public key line.
    pub public_key: String,
    /// When added.
    pub created_at: Timestamp,
}

/// `POST /v1/targets`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTarget {
    /// Name.
    pub name: TargetName,
    /// HOST:PORT.
    pub address: TargetAddress,
    /// Pinned SSH host key (one OpenSSH public key line).
    #[serde(default)]
    pub host_key: Option<String>,
}

/// A target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetView {
    /// Name (also its id).
    pub id: TargetName,
    /// HOST:PORT.
    pub address: TargetAddress,
    /// Pinned host key line.
    pub host_key: Option<String>,
    /// Its fingerprint.
    pub host_key_fingerprint: Option<Fingerprint>,
    /// When added.
    pub created_at: Timestamp,
}

/// `POST /v1/grants`. The window is `not_before` (default now) to `expires_at`, or to
/// `not_before + duration_secs`; exactly one of the two ends may be given (default 8 hours).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// User or @group.
    pub subject: Subject,
    /// Target or CIDR.
    pub object: GrantObject,
    /// Protocols (default `ssh`).
    #[serde(default)]
    pub protocols: Vec<Protocol>,
    /// Ports (default: the target's port, or 22 for SSH to a CIDR).
    #[serde(default)]
    pub ports: Option<PortSpec>,
    /// Remote logins, for `ssh-proxy`.
    #[serde(default)]
    pub logins: Vec<Login>,
    /// SSH forwarding options (default: none).
    #[serde(default)]
    pub options: GrantOptions,
    /// Start.
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    /// End.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Length, from the start.
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// Why.
    pub reason: Reason,
}

/// A grant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantView {
    /// Id.
    pub id: GrantId,
    /// User or @group.
    pub subject: Subject,
    /// Target or CIDR.
    pub object: GrantObject,
    /// Protocols.
    pub protocols: Vec<Protocol>,
    /// Ports.
    pub ports: PortSpec,
    /// Remote logins.
    pub logins: Vec<Login>,
    /// SSH forwarding options.
    #[serde(default)]
    pub options: GrantOptions,
    /// Start.
    pub not_before: Timestamp,
    /// End.
    pub expires_at: Timestamp,
    /// Why.
    pub reason: Reason,
    /// By whom.
    pub granted_by: UserName,
    /// When created.
    pub created_at: Timestamp,
    /// Status now.
    pub status: GrantStatus,
    /// When revoked.
    pub revoked_at: Option<Timestamp>,
    /// By whom revoked.
    pub revoked_by: Option<UserName>,
}

/// `GET /v1/audit/events` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events by or about this user.
    #[serde(default)]
    pub user: Option<String>,
    /// Events of this type (`access.grant.create`) or prefix (`access.grant`).
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// Events about this target.
    #[serde(default)]
    pub target: Option<String>,
    /// Events of this session.
    #[serde(default)]
    pub session: Option<String>,
    /// From (inclusive).
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Until (exclusive).
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Only records after this journal position (`Record::pos`; pages follow each other this
    /// way).
    #[serde(default)]
    pub after_seq: Option<u64>,
    /// Only records of this chain: a gateway instance, or the empty string for the shared chain
    /// (records from before per-instance chains).
    #[serde(default)]
    pub chain: Option<String>,
    /// With `chain`: only records after this seq of that chain, in the chain's order (a
    /// chain's records commit in that order, so following a chain this way misses nothing).
    #[serde(default)]
    pub after_chain_seq: Option<u64>,
    /// At most this many (default 100, at most 10,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /v1/audit/events` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditPage {
    /// Matching records, oldest first.
    pub events: Vec<Record>,
    /// Pass as `after_seq` for the next page; absent on the last page. (With `chain` and
    /// `after_chain_seq`, page on the last record's `seq` instead.)
    pub next_after_seq: Option<u64>,
}

/// `GET /v1/audit/chains` answer: every chain the journal records a head for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainsView {
    /// The shared chain (if it has records) first, then one per gateway instance.
    pub chains: Vec<ChainHeadView>,
}

/// One chain's recorded head.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainHeadView {
    /// The gateway instance; `None` for the shared chain.
    pub chain: Option<String>,
    /// Its last record.
    pub head: ChainHead,
}

/// One chain in a `POST /v1/audit/verify` answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainVerifyView {
    /// The gateway instance; `None` for the shared chain.
    pub chain: Option<String>,
    /// Whether this chain verified.
    pub ok: bool,
    /// Records checked.
    pub count: u64,
    /// The last good sequence number of the chain.
    pub head_seq: u64,
    /// The last good hash.
    pub head_hash: String,
    /// The head the journal records for the chain.
    pub recorded_head: Option<ChainHead>,
    /// What is broken, if anything.
    pub error: Option<ChainError>,
    /// The first broken sequence number of the chain, if any.
    pub first_bad_seq: Option<u64>,
}

/// `POST /v1/audit/verify` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyView {
    /// Whether every chain verified.
    pub ok: bool,
    /// Records checked, all chains.
    pub count: u64,
    /// One entry per chain: the shared chain first, then each gateway instance's.
    pub chains: Vec<ChainVerifyView>,
}

/// `GET /v1/audit/backlog` answer: how far each audit sink is behind the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BacklogView {
    /// Records in the journal, all chains: the sum of every chain's head seq (each chain counts
    /// from 1 without gaps). Per chain: `chains`.
    pub head_seq: u64,
    /// Every chain's head: the shared chain (if it has records) first, then one per gateway
    /// instance.
    #[serde(default)]
    pub chains: Vec<ChainHeadView>,
    /// One entry per (sink, chain) that has ever shipped from this journal: a gateway's sink
    /// ships its own chain, and the shared chain's remaining records.
    pub sinks: Vec<SinkBacklog>,
}

/// One sink's delivery state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkBacklog {
    /// `cloudwatch:GROUP:STREAM` or `stdout`.
    pub sink: String,
    /// The chain these figures are about: a gateway instance; `None` for the shared chain.
    #[serde(default)]
    pub chain: Option<String>,
    /// Every record of the chain up to this seq is delivered (or quarantined and reported).
    pub checkpoint_seq: u64,
    /// Records of the chain not yet delivered (its head seq minus the checkpoint).
    pub backlog_events: u64,
    /// Time of the chain's oldest record not yet delivered.
    pub oldest_pending: Option<Timestamp>,
    /// Its age in seconds, for alarms.
    pub oldest_age_secs: Option<u64>,
    /// Events accepted by the service, all time.
    pub delivered: u64,
    /// Events the service refused, all time (each also an `audit.ship.rejected` record).
    pub rejected: u64,
    /// Events held back as too old or too new, all time (`audit.ship.quarantined`).
    pub quarantined: u64,
    /// The last delivery error since the last success.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<Timestamp>,
    /// When the checkpoint last moved.
    pub updated_at: Timestamp,
}

/// `POST /v1/tokens`: an admin issues an API token for a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// For whom.
    pub user: UserName,
    /// Lifetime in seconds (default 1 hour, at most 24 hours).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// An issued API token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenView {
    /// The token's id (`jti`).
    pub id: String,
    /// For whom.
    pub user: UserName,
    /// The bearer token. Shown once.
    pub token: String,
    /// Until when.
    pub expires_at: Timestamp,
}

/// `GET /v1/whoami`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller.
    pub user: UserName,
    /// Their roles.
    pub roles: Vec<Role>,
    /// When their token expires.
    pub token_expires_at: Timestamp,
}

/// `GET /v1/gateway`: how engineers reach this gateway over SSH (what `sallyport ssh-config`
/// writes into `~/.ssh/config` and `known_hosts`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GatewayView {
    /// The SSH listener's address (`HOST:PORT`; the bound address, so `0.0.0.0` when it
    /// listens on every interface).
    pub ssh_listen: String,
    /// The SSH host public key, one OpenSSH line (`ssh-ed25519 AAAA…`), for `known_hosts`.
    pub ssh_host_key: String,
    /// Its SHA-256 fingerprint (`SHA256:…`).
    pub ssh_host_key_fingerprint: Fingerprint,
}

/// Every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code and a readable message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`invalid_request`, `not_found`, `conflict`, `unauthorized`,
    /// `forbidden`, `payload_too_large`, `internal`, …).
    pub code: String,
    /// For people.
    pub message: String,
}

/// `GET /v1/sessions` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// `true`: live sessions only; `false`: ended ones only; absent: both.
    #[serde(default)]
    pub live: Option<bool>,
    /// Sessions of this user.
    #[serde(default)]
    pub user: Option<UserName>,
    /// Proxy sessions to this target.
    #[serde(default)]
    pub target: Option<TargetName>,
    /// Sessions started at or after this time.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// At most this many, newest first (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// An SSH session (`GET /v1/sessions`, `GET /v1/sessions/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The session id (as in the `session` field of its audit events).
    pub id: String,
    /// The gateway instance that runs (or ran) it.
    pub instance: String,
    /// The user.
    pub user: UserName,
    /// The client's address.
    pub source: String,
    /// `jump` or `proxy`.
    pub mode: String,
    /// Proxy mode: the target.
    pub target: Option<TargetName>,
    /// Proxy mode: the remote login.
    pub login: Option<Login>,
    /// The client's SSH version string.
    pub client: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended (`None` while live).
    pub ended_at: Option<Timestamp>,
    /// Why it ended (as in `ssh.session.end`).
    pub end_reason: Option<String>,
    /// Whether any channel of it was recorded.
    pub recorded: bool,
    /// The recorded channels (in `GET /v1/sessions/{id}` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<RecordingView>,
}

/// One recorded channel of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingView {
    /// The channel number (`GET /v1/sessions/{id}/recording?channel=N`).
    pub channel: u32,
    /// Stored chunks.
    pub chunks: u64,
    /// When the first chunk was stored.
    pub first_written_at: Timestamp,
    /// When the last chunk was stored.
    pub last_written_at: Timestamp,
}

/// `GET /v1/sessions` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionPage {
    /// Matching sessions, newest first.
    pub sessions: Vec<SessionView>,
}

/// `GET /v1/sessions/{id}/recording` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// The channel (default: the session's first recorded channel).
    #[serde(default)]
    pub channel: Option<u32>,
}
