//! The audit events of the VPN data path, built from this module's values.

use super::denials::DenialSummary;
use super::device::DeviceId;
use super::flow::{EndedFlow, FlowStart};
use crate::audit::EventKind;
use crate::model::UserName;

impl FlowStart {
    /// `vpn.flow.start` for this flow of `device` of `user`.
    pub fn event(&self, user: UserName, device: DeviceId) -> EventKind {
        EventKind::VpnFlowStarted {
            user,
            device,
            protocol: self.key.protocol,
            client_address: self.key.client,
            client_port: self.key.client_port,
            remote_address: self.key.remote,
            remote_port: self.key.remote_port,
            grant: self.grant,
        }
    }
}

impl EndedFlow {
    /// `vpn.flow.end` for this flow of `device` of `user`.
    pub fn event(&self, user: UserName, device: DeviceId) -> EventKind {
        EventKind::VpnFlowEnded {
            user,
            device,
            protocol: self.key.protocol,
            client_address: self.key.client,
            client_port: self.key.client_port,
            remote_address: self.key.remote,
            remote_port: self.key.remote_port,
            grant: self.grant,
            packets_out: self.counters.packets_out,
            bytes_out: self.counters.bytes_out,
            packets_in: self.counters.packets_in,
            bytes_in: self.counters.bytes_in,
            duration_ms: self.duration_ms(),
            reason: self.reason.as_str().to_owned(),
        }
    }
}

impl DenialSummary {
    /// `vpn.flow.denied` for this summary.
    pub fn event(&self) -> EventKind {
        let d = &self.denied;
        EventKind::VpnFlowDenied {
            user: d.user.clone(),
            device: d.device,
            destination: d.destination,
            protocol: d.protocol.clone(),
            port: d.port,
            reason: d.reason.code().to_owned(),
            count: self.count,
            window_start: self.window_start,
            window_ms: u64::try_from(self.window_start.until(self.window_end).as_millis())
                .unwrap_or(u64::MAX),
        }
    }
}
