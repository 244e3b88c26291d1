//! What can happen: [`EventKind`], one variant per event, with its fields. Its stable names,
//! codes and versions are in `catalog.rs`; the envelope every event travels in ([`Event`]) is in
//! `envelope.rs`.

use serde::{Deserialize, Serialize};

use crate::model::GrantOptions;
use crate::model::Protocol;
use crate::model::{
    Fingerprint, GrantId, GroupName, Login, PortSpec, ProtocolSet, Role, Subject, TargetName,
    UserName,
};
use crate::time::Timestamp;
use crate::vpn::device::DeviceId;
use std::net::IpAddr;

/// What happened. Each variant has a stable dotted name, a stable code and a version; a change
/// to a variant's fields bumps its version. Adding a variant forces every `match` to decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
#[non_exhaustive]
pub enum EventKind {
    /// A user was added.
    #[serde(rename = "access.user.create")]
    UserCreated {
        /// The new user.
        user: UserName,
        /// Their roles.
        roles: Vec<Role>,
        /// Their groups.
        groups: Vec<GroupName>,
    },
    /// A user was disabled.
    #[serde(rename = "access.user.disable")]
    UserDisabled {
        /// The user.
        user: UserName,
    },
    /// A user was enabled.
    #[serde(rename = "access.user.enable")]
    UserEnabled {
        /// The user.
        user: UserName,
    },
    /// A user's groups were set.
    #[serde(rename = "access.user.groups")]
    UserGroupsSet {
        /// The user.
        user: UserName,
        /// Their groups now.
        groups: Vec<GroupName>,
    },
    /// An SSH public key was registered.
    #[serde(rename = "access.key.add")]
    KeyAdded {
        /// Owner.
        user: UserName,
        /// SHA-256 fingerprint.
        fingerprint: Fingerprint,
        /// Key algorithm.
        algorithm: String,
        /// The key's comment.
        comment: String,
    },
    /// An SSH public key was removed.
    #[serde(rename = "access.key.remove")]
    KeyRemoved {
        /// Owner.
        user: UserName,
        /// SHA-256 fingerprint.
        fingerprint: Fingerprint,
    },
    /// A target was registered.
    #[serde(rename = "access.target.create")]
    TargetCreated {
        /// Name.
        target: TargetName,
        /// HOST:PORT.
        address: String,
        /// Fingerprint of the pinned host key, if any.
        host_key: Option<Fingerprint>,
    },
    /// A target was removed.
    #[serde(rename = "access.target.remove")]
    TargetRemoved {
        /// Name.
        target: TargetName,
    },
    /// A grant was created.
    #[serde(rename = "access.grant.create")]
    GrantCreated {
        /// Grant id.
        grant: GrantId,
        /// User or @group.
        subject: Subject,
        /// Target or CIDR.
        object: String,
        /// Protocols.
        protocols: ProtocolSet,
        /// Ports.
        ports: PortSpec,
        /// Remote logins (proxy mode).
        logins: Vec<Login>,
        /// SSH forwarding options (since version 2; absent means none).
        #[serde(default)]
        options: GrantOptions,
        /// Start.
        not_before: Timestamp,
        /// End.
        expires_at: Timestamp,
        /// Why.
        reason: String,
    },
    /// A grant was revoked.
    #[serde(rename = "access.grant.revoke")]
    GrantRevoked {
        /// Grant id.
        grant: GrantId,
        /// User or @group it was for.
        subject: Subject,
    },
    /// A grant's window closed.
    #[serde(rename = "access.grant.expire")]
    GrantExpired {
        /// Grant id.
        grant: GrantId,
        /// User or @group it was for.
        subject: Subject,
    },
    /// An API token was issued.
    #[serde(rename = "api.token.issue")]
    TokenIssued {
        /// For whom.
        user: UserName,
        /// The token's id (`jti`), never the token.
        token_id: String,
        /// Until when.
        expires_at: Timestamp,
    },
    /// An engineer logged in to the API by signing a gateway challenge with a registered key
    /// (`sallyport login`) and received a token.
    #[serde(rename = "api.login.success")]
    ApiLoginSucceeded {
        /// The user.
        user: UserName,
        /// The registered key that signed.
        fingerprint: Fingerprint,
        /// The token's id (`jti`), never the token.
        token_id: String,
        /// Until when the token is valid.
        expires_at: Timestamp,
    },
    /// A challenge-response login to the API was refused.
    #[serde(rename = "api.login.failure")]
    ApiLoginFailed {
        /// The user name as sent (at most 64 characters).
        user: String,
        /// The key offered, if it parsed.
        fingerprint: Option<Fingerprint>,
        /// Why, a stable code (`challenge-expired`, `challenge-replayed`, `key-not-registered`,
        /// `signature-invalid`, `user-disabled`, `rate-limited`, …).
        reason: String,
    },
    /// The gateway's user CA signed an SSH user certificate.
    #[serde(rename = "ssh.certificate.issue")]
    SshCertificateIssued {
        /// For whom.
        user: UserName,
        /// The certified (subject) key.
        fingerprint: Fingerprint,
        /// The certificate's serial.
        serial: u64,
        /// Its key id (`sallyport:USER:SESSION`).
        key_id: String,
        /// Its principals.
        principals: Vec<String>,
        /// Valid from (inclusive).
        valid_after: Timestamp,
        /// Valid until (exclusive).
        valid_before: Timestamp,
        /// Its extensions (`permit-pty`, and forwarding where granted).
        extensions: Vec<String>,
        /// The grants its principals rest on.
        grants: Vec<GrantId>,
    },
    /// The gateway started.
    #[serde(rename = "gateway.start")]
    GatewayStarted {
        /// sallyportd's version.
        version: String,
        /// The instance name.
        instance: String,
    },
    /// The gateway stopped cleanly.
    #[serde(rename = "gateway.stop")]
    GatewayStopped {
        /// The instance name.
        instance: String,
    },
    /// A log service refused events of an accepted batch (CloudWatch's
    /// `rejectedLogEventsInfo`, or an event refused on its own). They stay in the journal.
    #[serde(rename = "audit.ship.rejected")]
    ShipRejected {
        /// The sink (`cloudwatch:GROUP:STREAM`).
        sink: String,
        /// The chain the events belong to: a gateway instance, `None` for the shared chain
        /// (since version 2; absent means the shared chain).
        #[serde(default)]
        chain: Option<String>,
        /// Why: `too_new`, `too_old`, `expired` or `invalid`.
        reason: String,
        /// How many events.
        count: u64,
        /// The lowest sequence number among them, in `chain`.
        first_seq: u64,
        /// The highest sequence number among them, in `chain`.
        last_seq: u64,
    },
    /// Events were not shipped to a sink because the service would refuse them (too old or too
    /// new for CloudWatch). They stay in the journal and in the sink's quarantine list.
    #[serde(rename = "audit.ship.quarantined")]
    ShipQuarantined {
        /// The sink.
        sink: String,
        /// The chain the events belong to (since version 2; absent means the shared chain).
        #[serde(default)]
        chain: Option<String>,
        /// `too_old` or `too_new`.
        reason: String,
        /// How many events.
        count: u64,
        /// The lowest sequence number among them, in `chain`.
        first_seq: u64,
        /// The highest sequence number among them, in `chain`.
        last_seq: u64,
    },
    /// An SSH client authenticated (jump mode).
    #[serde(rename = "ssh.auth.success")]
    SshAuthSucceeded {
        /// The user.
        user: UserName,
        /// `publickey` or `certificate`.
        method: String,
        /// SHA-256 fingerprint of the key that signed (for a certificate, its subject key).
        fingerprint: Fingerprint,
        /// The certificate's serial (certificate logins only).
        cert_serial: Option<u64>,
        /// The certificate's key id (certificate logins only).
        cert_key_id: Option<String>,
    },
    /// An SSH authentication attempt was refused.
    #[serde(rename = "ssh.auth.failure")]
    SshAuthFailed {
        /// The user name as the client sent it (not necessarily a user; at most 64 characters).
        user: String,
        /// `publickey`, `certificate`, `password`, `keyboard-interactive` or `unknown`.
        method: String,
        /// Fingerprint of the key offered, if any.
        fingerprint: Option<Fingerprint>,
        /// Why, a stable code (`unknown-user`, `key-not-registered`, `rate-limited`, …).
        reason: String,
    },
    /// An authenticated SSH session began.
    #[serde(rename = "ssh.session.start")]
    SshSessionStarted {
        /// The user.
        user: UserName,
        /// The client's version string, as sent (printable ASCII, at most 128 characters).
        client: String,
        /// `jump` (`ssh -J`) or `proxy` (`login@target@gateway`); absent in version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        /// Proxy mode: the target the gateway logs in to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<TargetName>,
        /// Proxy mode: the remote login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Login>,
    },
    /// An authenticated SSH session ended.
    #[serde(rename = "ssh.session.end")]
    SshSessionEnded {
        /// The user.
        user: UserName,
        /// Why: `client`, `revoked`, `expired`, `idle`, `shutdown`, `killed` or `error`.
        reason: String,
        /// How long it lasted, in milliseconds.
        duration_ms: u64,
        /// How many tunnels it opened.
        tunnels: u64,
    },
    /// An admin asked for a live SSH session to be ended (`POST /v1/sessions/{id}/kill`); the
    /// instance running it ends it with `ssh.session.end` reason `killed`.
    #[serde(rename = "ssh.session.kill")]
    SshSessionKillRequested {
        /// The session's id.
        session_id: String,
        /// Its user.
        user: UserName,
        /// The gateway instance running it.
        instance: String,
    },
    /// A jump tunnel (`direct-tcpip`) was opened to a target.
    #[serde(rename = "ssh.tunnel.open")]
    SshTunnelOpened {
        /// The user.
        user: UserName,
        /// The tunnel's number within its session.
        tunnel: u64,
        /// The destination as asked: a target name or an IP address.
        target: String,
        /// The destination port.
        port: u16,
        /// The address connected to (`HOST:PORT`).
        address: String,
        /// The grant that allowed it.
        grant: GrantId,
    },
    /// A jump tunnel was refused.
    #[serde(rename = "ssh.tunnel.denied")]
    SshTunnelDenied {
        /// The user.
        user: UserName,
        /// The destination as asked (at most 255 characters).
        target: String,
        /// The destination port as asked.
        port: u32,
        /// Why, a stable code ([`crate::policy::Denial::code`], or `target-unreachable`, …).
        reason: String,
    },
    /// A jump tunnel closed.
    #[serde(rename = "ssh.tunnel.close")]
    SshTunnelClosed {
        /// The user.
        user: UserName,
        /// The tunnel's number within its session.
        tunnel: u64,
        /// The destination as asked.
        target: String,
        /// The destination port.
        port: u16,
        /// The grant that allowed it.
        grant: GrantId,
        /// Why it closed.
        reason: TunnelCloseReason,
        /// Bytes relayed from the client to the target.
        bytes_to_target: u64,
        /// Bytes relayed from the target to the client.
        bytes_to_client: u64,
        /// How long it was open, in milliseconds.
        duration_ms: u64,
    },
    /// Proxy mode: the gateway logged in to a target for a user, with one signature from the
    /// user's forwarded agent.
    #[serde(rename = "ssh.proxy.login.success")]
    SshProxyLoginSucceeded {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The grant that allowed it.
        grant: GrantId,
        /// The key that signed (for a certificate, its subject key).
        fingerprint: Fingerprint,
        /// The target's host key, as verified.
        host_key: Fingerprint,
    },
    /// Proxy mode: a session channel could not log in to its target (refused by policy, no
    /// forwarded agent, unreachable, host key, the target's refusal).
    #[serde(rename = "ssh.proxy.login.failure")]
    SshProxyLoginFailed {
        /// The user.
        user: UserName,
        /// The target as asked (at most 255 characters).
        target: String,
        /// The remote login as asked.
        login: String,
        /// Why, a stable code ([`crate::policy::Denial::code`], `agent-not-forwarded`, …).
        reason: String,
    },
    /// Proxy mode: a proxied session channel closed.
    #[serde(rename = "ssh.proxy.close")]
    SshProxyClosed {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The grant that allowed it.
        grant: GrantId,
        /// Why it closed.
        reason: TunnelCloseReason,
        /// The command's exit status, if the target sent one.
        exit_status: Option<u32>,
        /// Bytes relayed from the client to the target.
        bytes_to_target: u64,
        /// Bytes relayed from the target to the client.
        bytes_to_client: u64,
        /// How long it was open, in milliseconds.
        duration_ms: u64,
    },
    /// A target presented a host key other than the one pinned in the registry (or none is
    /// pinned); the connection was refused.
    #[serde(rename = "ssh.hostkey.mismatch")]
    SshHostKeyMismatch {
        /// The user the connection was for.
        user: UserName,
        /// The target.
        target: TargetName,
        /// The pinned key's fingerprint (`None`: no key is pinned).
        expected: Option<Fingerprint>,
        /// The fingerprint of the key the target presented.
        presented: Fingerprint,
    },
    /// Proxy mode: a command was run on a target (`exec`: `ssh host CMD`, `scp`'s remote end).
    #[serde(rename = "ssh.exec")]
    SshExec {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The grant that allowed it.
        grant: GrantId,
        /// The command line as sent (lossy UTF-8, at most 4096 characters, `…` if cut).
        command: String,
    },
    /// Proxy mode, SFTP: a file was opened.
    #[serde(rename = "ssh.sftp.open")]
    SshSftpOpen {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The path as sent (`…` at the end if cut).
        path: String,
        /// `read`, `write`, `append`, `create`, `truncate`, `exclusive`.
        flags: Vec<String>,
        /// The target's answer: `ok`, `permission-denied`, `no-such-file`, `failure`, …, or
        /// `unknown` (no answer seen).
        outcome: String,
    },
    /// Proxy mode, SFTP: bytes written through one open file, from its open to its close.
    #[serde(rename = "ssh.sftp.write")]
    SshSftpWrite {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The path it was opened with (`None` if its open was not seen).
        path: Option<String>,
        /// Bytes written.
        bytes: u64,
        /// Write requests.
        writes: u64,
    },
    /// Proxy mode, SFTP: a file was removed.
    #[serde(rename = "ssh.sftp.remove")]
    SshSftpRemove {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The path.
        path: String,
        /// The target's answer (as in `ssh.sftp.open`).
        outcome: String,
    },
    /// Proxy mode, SFTP: a file or directory was renamed.
    #[serde(rename = "ssh.sftp.rename")]
    SshSftpRename {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// The old path.
        from: String,
        /// The new path.
        to: String,
        /// The target's answer (as in `ssh.sftp.open`).
        outcome: String,
    },
    /// Proxy mode, SFTP: a directory was created, removed, an attribute set or a symbolic
    /// link made.
    #[serde(rename = "ssh.sftp.change")]
    SshSftpChange {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// `mkdir`, `rmdir`, `setstat` or `symlink`.
        operation: String,
        /// The path (for `symlink`, the link; `None` for a `setstat` on an unknown handle).
        path: Option<String>,
        /// `setstat`: what changed (`mode=0755 uid=0 gid=0 size=0 …`); `symlink`: the link's
        /// target; else empty.
        detail: String,
        /// The target's answer (as in `ssh.sftp.open`).
        outcome: String,
    },
    /// Proxy mode: an SFTP channel carried bytes that are not SFTP; its operations are no
    /// longer audited.
    #[serde(rename = "ssh.sftp.unparsable")]
    SshSftpUnparsable {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// `client` or `server`.
        stream: String,
        /// What was wrong.
        why: String,
    },
    /// Proxy mode: the recording of a session channel began (asciicast v2, encrypted in the
    /// store; `GET /v1/sessions/{id}/recording?channel=N`).
    #[serde(rename = "ssh.recording.start")]
    SshRecordingStarted {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// The remote login.
        login: Login,
        /// `shell` or `exec`.
        kind: String,
        /// Whether keyboard input is recorded too.
        input: bool,
    },
    /// Proxy mode: the recording of a session channel ended.
    #[serde(rename = "ssh.recording.end")]
    SshRecordingEnded {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// Chunks stored (indices 0 to chunks - 1).
        chunks: u64,
        /// Bytes of asciicast text stored (before encryption).
        bytes: u64,
        /// Events dropped because the store could not keep up (each gap is marked in the
        /// recording).
        dropped_events: u64,
        /// Chunks that could not be stored.
        failed_chunks: u64,
        /// Output bytes not recorded because the recording reached `[ssh.recording] max_mib`.
        cut_bytes: u64,
    },
    /// Proxy mode: an observer of a session channel fell behind and dropped what it could not
    /// queue (recorded output, or audit events), rather than slow the session down.
    #[serde(rename = "ssh.observer.gap")]
    SshObserverGap {
        /// The user.
        user: UserName,
        /// The channel's number within its session.
        channel: u64,
        /// The target.
        target: TargetName,
        /// `recording` or `audit`.
        what: String,
        /// How many events were dropped.
        events: u64,
        /// How many bytes they held (recording only).
        bytes: u64,
    },
    /// An auditor or admin fetched a session's recording (to play or export it).
    #[serde(rename = "ssh.recording.view")]
    SshRecordingViewed {
        /// The session whose recording it is.
        session: String,
        /// The channel.
        channel: u64,
        /// The user whose session it is.
        user: UserName,
        /// Proxy mode: the target.
        target: Option<TargetName>,
    },
    /// A VPN device was enrolled: its WireGuard public key registered and an address assigned.
    #[serde(rename = "vpn.device.enroll")]
    VpnDeviceEnrolled {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// The device's name (as given at enrollment).
        name: String,
        /// The device's VPN address.
        address: IpAddr,
        /// The device's WireGuard public key (base64; public, identifies the device).
        public_key: String,
    },
    /// A VPN device was revoked: its peer removed and its session keys zeroized.
    #[serde(rename = "vpn.device.revoke")]
    VpnDeviceRevoked {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// The device's name.
        name: String,
    },
    /// A VPN device's preshared key was renewed (`sallyport vpn refresh`): a new epoch, so a
    /// new key, valid until `psk_expires_at`.
    #[serde(rename = "vpn.device.refresh")]
    VpnDeviceRefreshed {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// The device's name.
        name: String,
        /// When the new preshared key stops working.
        psk_expires_at: Timestamp,
    },
    /// A VPN device completed a WireGuard handshake.
    #[serde(rename = "vpn.handshake")]
    VpnHandshake {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// The device's UDP endpoint (`IP:PORT`).
        source: String,
    },
    /// A VPN flow began: the device sent the first packet of a connection a grant allows.
    #[serde(rename = "vpn.flow.start")]
    VpnFlowStarted {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// `tcp`, `udp` or `icmp`.
        protocol: Protocol,
        /// The device's address.
        client_address: IpAddr,
        /// The device's port (ICMP: the echo identifier).
        client_port: u16,
        /// The destination address.
        remote_address: IpAddr,
        /// The destination port (ICMP: the echo identifier).
        remote_port: u16,
        /// The grant that allowed it.
        grant: GrantId,
    },
    /// A VPN flow ended.
    #[serde(rename = "vpn.flow.end")]
    VpnFlowEnded {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// `tcp`, `udp` or `icmp`.
        protocol: Protocol,
        /// The device's address.
        client_address: IpAddr,
        /// The device's port (ICMP: the echo identifier).
        client_port: u16,
        /// The destination address.
        remote_address: IpAddr,
        /// The destination port (ICMP: the echo identifier).
        remote_port: u16,
        /// The grant that allowed its first packet.
        grant: GrantId,
        /// Packets from the device.
        packets_out: u64,
        /// Bytes (whole IP packets) from the device.
        bytes_out: u64,
        /// Packets to the device.
        packets_in: u64,
        /// Bytes (whole IP packets) to the device.
        bytes_in: u64,
        /// From its first to its last packet (or to when it was cut), in milliseconds.
        duration_ms: u64,
        /// Why: `closed`, `idle`, `revoked` or `shutdown`.
        reason: String,
    },
    /// VPN packets were dropped (a rate-limited summary: the first drop of a kind at once, then
    /// one count per window).
    #[serde(rename = "vpn.flow.denied")]
    VpnFlowDenied {
        /// The device's owner.
        user: UserName,
        /// The device.
        device: DeviceId,
        /// The destination address.
        destination: IpAddr,
        /// `tcp`, `udp`, `icmp` or `ip-N` (another IP protocol number).
        protocol: String,
        /// The destination port (TCP and UDP).
        port: Option<u16>,
        /// Why, a stable code ([`crate::vpn::filter::FlowDenial::code`]).
        reason: String,
        /// How many packets in the window.
        count: u64,
        /// The window's start.
        window_start: Timestamp,
        /// The window's length, in milliseconds.
        window_ms: u64,
    },
}
/// Why a jump tunnel closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCloseReason {
    /// The client closed it (or its connection ended).
    Client,
    /// The target closed it, or the connection to it failed.
    Target,
    /// Access was taken away: grant revoked, user disabled, key removed.
    Revoked,
    /// The grant (or the user's certificate) expired.
    Expired,
    /// No bytes moved for the idle timeout.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
}

impl TunnelCloseReason {
    /// The reason's name in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelCloseReason::Client => "client",
            TunnelCloseReason::Target => "target",
            TunnelCloseReason::Revoked => "revoked",
            TunnelCloseReason::Expired => "expired",
            TunnelCloseReason::Idle => "idle",
            TunnelCloseReason::Shutdown => "shutdown",
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
