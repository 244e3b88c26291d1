//! The stable name, code and version of every [`EventKind`] variant, and the round trip
//! between a typed event and a journal record's name and data.

use super::EventKind;

impl EventKind {
    /// The stable dotted name.
    pub fn name(&self) -> &'static str {
        self.meta().0
    }

    /// The stable code: a letter for the area, four digits, and I(nfo)/W(arning).
    pub fn code(&self) -> &'static str {
        self.meta().1
    }

    /// The version of this variant's fields.
    pub fn version(&self) -> u16 {
        self.meta().2
    }

    fn meta(&self) -> (&'static str, &'static str, u16) {
        match self {
            EventKind::UserCreated { .. } => ("access.user.create", "A1001I", 1),
            EventKind::UserDisabled { .. } => ("access.user.disable", "A1002I", 1),
            EventKind::UserEnabled { .. } => ("access.user.enable", "A1003I", 1),
            EventKind::UserGroupsSet { .. } => ("access.user.groups", "A1004I", 1),
            EventKind::KeyAdded { .. } => ("access.key.add", "A1010I", 1),
            EventKind::KeyRemoved { .. } => ("access.key.remove", "A1011I", 1),
            EventKind::TargetCreated { .. } => ("access.target.create", "A1020I", 1),
            EventKind::TargetRemoved { .. } => ("access.target.remove", "A1021I", 1),
            EventKind::GrantCreated { .. } => ("access.grant.create", "A1030I", 2),
            EventKind::GrantRevoked { .. } => ("access.grant.revoke", "A1031I", 1),
            EventKind::GrantExpired { .. } => ("access.grant.expire", "A1032I", 1),
            EventKind::TokenIssued { .. } => ("api.token.issue", "A2001I", 1),
            EventKind::ApiLoginSucceeded { .. } => ("api.login.success", "A2010I", 1),
            EventKind::ApiLoginFailed { .. } => ("api.login.failure", "A2011W", 1),
            EventKind::SshCertificateIssued { .. } => ("ssh.certificate.issue", "S1080I", 1),
            EventKind::GatewayStarted { .. } => ("gateway.start", "G1001I", 1),
            EventKind::GatewayStopped { .. } => ("gateway.stop", "G1002I", 1),
            EventKind::ShipRejected { .. } => ("audit.ship.rejected", "L1001W", 2),
            EventKind::ShipQuarantined { .. } => ("audit.ship.quarantined", "L1002W", 2),
            EventKind::SshAuthSucceeded { .. } => ("ssh.auth.success", "S1001I", 1),
            EventKind::SshAuthFailed { .. } => ("ssh.auth.failure", "S1002W", 1),
            EventKind::SshSessionStarted { .. } => ("ssh.session.start", "S1010I", 2),
            EventKind::SshSessionEnded { .. } => ("ssh.session.end", "S1011I", 1),
            EventKind::SshSessionKillRequested { .. } => ("ssh.session.kill", "S1012I", 1),
            EventKind::SshTunnelOpened { .. } => ("ssh.tunnel.open", "S1020I", 1),
            EventKind::SshTunnelDenied { .. } => ("ssh.tunnel.denied", "S1021W", 1),
            EventKind::SshTunnelClosed { .. } => ("ssh.tunnel.close", "S1022I", 1),
            EventKind::VpnDeviceEnrolled { .. } => ("vpn.device.enroll", "V1001I", 1),
            EventKind::VpnDeviceRevoked { .. } => ("vpn.device.revoke", "V1002I", 1),
            EventKind::VpnDeviceRefreshed { .. } => ("vpn.device.refresh", "V1003I", 1),
            EventKind::VpnHandshake { .. } => ("vpn.handshake", "V1010I", 1),
            EventKind::VpnFlowStarted { .. } => ("vpn.flow.start", "V1020I", 1),
            EventKind::VpnFlowEnded { .. } => ("vpn.flow.end", "V1021I", 1),
            EventKind::VpnFlowDenied { .. } => ("vpn.flow.denied", "V1022W", 1),
            EventKind::SshProxyLoginSucceeded { .. } => ("ssh.proxy.login.success", "S1030I", 1),
            EventKind::SshProxyLoginFailed { .. } => ("ssh.proxy.login.failure", "S1031W", 1),
            EventKind::SshProxyClosed { .. } => ("ssh.proxy.close", "S1032I", 1),
            EventKind::SshHostKeyMismatch { .. } => ("ssh.hostkey.mismatch", "S1040W", 1),
            EventKind::SshExec { .. } => ("ssh.exec", "S1050I", 1),
            EventKind::SshSftpOpen { .. } => ("ssh.sftp.open", "S1060I", 1),
            EventKind::SshSftpWrite { .. } => ("ssh.sftp.write", "S1061I", 1),
            EventKind::SshSftpRemove { .. } => ("ssh.sftp.remove", "S1062I", 1),
            EventKind::SshSftpRename { .. } => ("ssh.sftp.rename", "S1063I", 1),
            EventKind::SshSftpChange { .. } => ("ssh.sftp.change", "S1064I", 1),
            EventKind::SshSftpUnparsable { .. } => ("ssh.sftp.unparsable", "S1065W", 1),
            EventKind::SshRecordingStarted { .. } => ("ssh.recording.start", "S1070I", 1),
            EventKind::SshRecordingEnded { .. } => ("ssh.recording.end", "S1071I", 1),
            EventKind::SshObserverGap { .. } => ("ssh.observer.gap", "S1072W", 1),
            EventKind::SshRecordingViewed { .. } => ("ssh.recording.view", "S1073I", 1),
        }
    }

    /// The user the event is about, for indexed search.
    pub fn subject_user(&self) -> Option<String> {
        match self {
            EventKind::UserCreated { user, .. }
            | EventKind::UserDisabled { user }
            | EventKind::UserEnabled { user }
            | EventKind::UserGroupsSet { user, .. }
            | EventKind::KeyAdded { user, .. }
            | EventKind::KeyRemoved { user, .. }
            | EventKind::TokenIssued { user, .. }
            | EventKind::ApiLoginSucceeded { user, .. }
            | EventKind::SshCertificateIssued { user, .. }
            | EventKind::SshAuthSucceeded { user, .. }
            | EventKind::SshSessionStarted { user, .. }
            | EventKind::SshSessionEnded { user, .. }
            | EventKind::SshSessionKillRequested { user, .. }
            | EventKind::SshTunnelOpened { user, .. }
            | EventKind::SshTunnelDenied { user, .. }
            | EventKind::SshTunnelClosed { user, .. }
            | EventKind::VpnDeviceEnrolled { user, .. }
            | EventKind::VpnDeviceRevoked { user, .. }
            | EventKind::VpnDeviceRefreshed { user, .. }
            | EventKind::VpnHandshake { user, .. }
            | EventKind::VpnFlowStarted { user, .. }
            | EventKind::VpnFlowEnded { user, .. }
            | EventKind::VpnFlowDenied { user, .. }
            | EventKind::SshProxyLoginSucceeded { user, .. }
            | EventKind::SshProxyLoginFailed { user, .. }
            | EventKind::SshProxyClosed { user, .. }
            | EventKind::SshHostKeyMismatch { user, .. }
            | EventKind::SshExec { user, .. }
            | EventKind::SshSftpOpen { user, .. }
            | EventKind::SshSftpWrite { user, .. }
            | EventKind::SshSftpRemove { user, .. }
            | EventKind::SshSftpRename { user, .. }
            | EventKind::SshSftpChange { user, .. }
            | EventKind::SshSftpUnparsable { user, .. }
            | EventKind::SshRecordingStarted { user, .. }
            | EventKind::SshRecordingEnded { user, .. }
            | EventKind::SshObserverGap { user, .. }
            | EventKind::SshRecordingViewed { user, .. } => Some(user.to_string()),
            EventKind::SshAuthFailed { user, .. } | EventKind::ApiLoginFailed { user, .. } => {
                Some(user.clone())
            }
            EventKind::GrantCreated { subject, .. }
            | EventKind::GrantRevoked { subject, .. }
            | EventKind::GrantExpired { subject, .. } => Some(subject.to_string()),
            EventKind::TargetCreated { .. }
            | EventKind::TargetRemoved { .. }
            | EventKind::GatewayStarted { .. }
            | EventKind::GatewayStopped { .. }
            | EventKind::ShipRejected { .. }
            | EventKind::ShipQuarantined { .. } => None,
        }
    }

    /// The target the event is about, for indexed search.
    pub fn target(&self) -> Option<String> {
        match self {
            EventKind::TargetCreated { target, .. } | EventKind::TargetRemoved { target } => {
                Some(target.to_string())
            }
            EventKind::GrantCreated { object, .. } => Some(object.clone()),
            EventKind::VpnFlowStarted { remote_address, .. }
            | EventKind::VpnFlowEnded { remote_address, .. } => Some(remote_address.to_string()),
            EventKind::VpnFlowDenied { destination, .. } => Some(destination.to_string()),
            EventKind::SshTunnelOpened { target, .. }
            | EventKind::SshTunnelDenied { target, .. }
            | EventKind::SshTunnelClosed { target, .. }
            | EventKind::SshProxyLoginFailed { target, .. } => Some(target.clone()),
            EventKind::SshProxyLoginSucceeded { target, .. }
            | EventKind::SshProxyClosed { target, .. }
            | EventKind::SshHostKeyMismatch { target, .. }
            | EventKind::SshExec { target, .. }
            | EventKind::SshSftpOpen { target, .. }
            | EventKind::SshSftpWrite { target, .. }
            | EventKind::SshSftpRemove { target, .. }
            | EventKind::SshSftpRename { target, .. }
            | EventKind::SshSftpChange { target, .. }
            | EventKind::SshSftpUnparsable { target, .. }
            | EventKind::SshRecordingStarted { target, .. }
            | EventKind::SshRecordingEnded { target, .. }
            | EventKind::SshObserverGap { target, .. } => Some(target.to_string()),
            EventKind::SshRecordingViewed { target, .. }
            | EventKind::SshSessionStarted { target, .. } => target.as_ref().map(|t| t.to_string()),
            _ => None,
        }
    }

    /// The event's fields as a JSON object (the `data` of a journal record).
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds a typed event from a journal record's name and data.
    pub fn from_parts(name: &str, data: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(serde_json::json!({ "event": name, "data": data })).ok()
    }
}
