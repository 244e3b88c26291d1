//! Rate-limited `vpn.flow.denied` summaries.
//!
//! A dropped packet is recorded under its key: user, device, destination address, protocol,
//! destination port, reason. The first denial of a key is reported at once (count 1) and opens
//! a window of [`DenialSummarizer::window`]; further denials of that key inside the window are
//! only counted, and reported as one summary when the window closes ([`DenialSummarizer::flush`],
//! called about once a second, or the key's next denial after the window). So each key yields at
//! most two events per window, whatever the packet rate. At most `max_keys` keys are tracked;
//! denials of new keys beyond that are counted in [`DenialSummarizer::take_overflow`] only (the
//! driver logs that count).

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::device::DeviceId;
use super::filter::FlowDenial;
use super::packet::{PacketInfo, Transport};
use crate::model::UserName;
use crate::time::Timestamp;

/// One dropped packet, as the summarizer keys it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeniedPacket {
    /// The device's user.
    pub user: UserName,
    /// The device.
    pub device: DeviceId,
    /// Where the packet was going.
    pub destination: IpAddr,
    /// `tcp`, `udp`, `icmp`, or `ip-N` for another IP protocol number N.
    pub protocol: String,
    /// The destination port (TCP and UDP).
    pub port: Option<u16>,
    /// Why it was dropped.
    pub reason: FlowDenial,
}

impl DeniedPacket {
    /// The key of the dropped packet `info` from `device` of `user`.
    pub fn new(user: UserName, device: DeviceId, info: &PacketInfo, reason: FlowDenial) -> Self {
        let protocol = match info.transport.protocol() {
            Some(p) => p.as_str().to_owned(),
            None => format!("ip-{}", info.transport.ip_protocol(info.is_v6())),
        };
        let port = match info.transport {
            Transport::Tcp(_) | Transport::Udp(_) => info.transport.dst_port(),
            _ => None,
        };
        Self {
            user,
            device,
            destination: info.dst,
            protocol,
            port,
            reason,
        }
    }
}

/// A report for `vpn.flow.denied`: `count` denials of one key between `window_start` and
/// `window_end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialSummary {
    /// What was denied.
    pub denied: DeniedPacket,
    /// How many packets.
    pub count: u64,
    /// The first of them (or the window's start).
    pub window_start: Timestamp,
    /// The window's end.
    pub window_end: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Timestamp,
    /// Denials since the one reported when the window opened.
    count: u64,
}

/// Counts denials per key and says when to report them.
#[derive(Debug)]
pub struct DenialSummarizer {
    window: Duration,
    max_keys: usize,
    keys: HashMap<DeniedPacket, Window>,
    overflow: u64,
}

impl DenialSummarizer {
    /// A summarizer with windows of `window`, tracking at most `max_keys` keys.
    pub fn new(window: Duration, max_keys: usize) -> Self {
        Self {
            window,
            max_keys,
            keys: HashMap::new(),
            overflow: 0,
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How many keys have an open window.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Records a dropped packet at `now`; returns a summary to journal now, if one is due.
    pub fn record(&mut self, denied: DeniedPacket, now: Timestamp) -> Option<DenialSummary> {
        let window = self.window;
        let full = self.keys.len() >= self.max_keys;
        match self.keys.get_mut(&denied) {
            Some(w) if w.start.until(now) < window => {
                w.count += 1;
                None
            }
            Some(w) => {
                let summary = DenialSummary {
                    denied: denied.clone(),
                    count: w.count + 1,
                    window_start: w.start,
                    window_end: now,
                };
                if w.count == 0 {
                    *w = Window {
                        start: now,
                        count: 0,
                    };
                    return Some(DenialSummary {
                        window_start: now,
                        ..summary
                    });
                }
                self.keys.remove(&denied);
                Some(summary)
            }
            None if full => {
                self.overflow += 1;
                None
            }
            None => {
                self.keys.insert(
                    denied.clone(),
                    Window {
                        start: now,
                        count: 0,
                    },
                );
                Some(DenialSummary {
                    denied,
                    count: 1,
                    window_start: now,
                    window_end: now,
                })
            }
        }
    }

    /// Closes the windows that ended by `now` and returns the summaries of those that counted
    /// denials after their first.
    pub fn flush(&mut self, now: Timestamp) -> Vec<DenialSummary> {
        let window = self.window;
        let mut out = Vec::new();
        self.keys.retain(|denied, w| {
            if w.start.until(now) < window {
                return true;
            }
            if w.count > 0 {
                out.push(DenialSummary {
                    denied: denied.clone(),
                    count: w.count,
                    window_start: w.start,
                    window_end: w.start.saturating_add(window),
                });
            }
            false
        });
        out.sort_by_key(|s| s.window_start);
        out
    }

    /// Denials not tracked because `max_keys` keys were open, since the last call.
    pub fn take_overflow(&mut self) -> u64 {
        std::mem::take(&mut self.overflow)
    }
}
