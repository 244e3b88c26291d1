//! The VPN data path's I/O-free core: packets in, verdicts out.
//!
//! The gateway's WireGuard driver decapsulates a device's packet and hands the inner IP packet
//! here; nothing in this module touches a socket, a TUN device or a clock (time is a
//! [`Timestamp`](crate::time::Timestamp) passed in).
//!
//! ```text
//!  outbound (device → private subnet), on EVERY packet:
//!    bytes ──packet::parse──▶ PacketInfo ── src == device address? (driver)
//!                                 │
//!                                 ▼
//!          UserFilter::check(dst, &transport) ──Err(FlowDenial)──▶ drop, reject::reject() reply,
//!                                 │                                 DenialSummarizer::record()
//!                                 ▼ Ok(grant)
//!          FlowTable::outbound(&info, grant, now) ──Started──▶ vpn.flow.start, forward to TUN
//!                                                  ──Existing/Untracked──▶ forward to TUN
//!                                                  ──TableFull/NoFlow──▶ drop
//!
//!  inbound (TUN → device):
//!    bytes ──packet::parse──▶ FlowTable::inbound(&info, now) ──Some(flow)──▶ encapsulate
//!                                                             ──None──▶ drop (unsolicited)
//!
//!  filter swap (grant revoked/expired, user disabled — a change notice, or valid_until passed):
//!    UserFilter::compile(&snapshot, &user, now) ── swap ──▶ FlowTable::retain_allowed(&new, now)
//!                                                           → EndedFlow (reason "revoked")
//!  timer (about once a second): FlowTable::expire(now), DenialSummarizer::flush(now)
//! ```
//!
//! The filter is checked on every outbound packet, not only on a flow's first one, so a revoked
//! grant drops the very next packet after the swap. The flow table decides only what may come
//! back: return traffic of flows the client started.
//!
//! # Layout
//!
//! - [`packet`]: [`packet::parse`] for IPv4/IPv6 with TCP, UDP, ICMP, ICMPv6; never panics.
//! - [`filter`]: [`filter::UserFilter`], one user's grants compiled for the packet path, and
//!   [`filter::FlowDenial`], why a packet was dropped.
//! - [`flow`]: [`flow::FlowTable`], the per-device connection tracker.
//! - [`reject`]: the ICMP "administratively prohibited" or TCP RST reply for a dropped packet.
//! - [`denials`]: [`denials::DenialSummarizer`], rate-limited `vpn.flow.denied` summaries.
//! - [`device`]: [`device::DeviceId`], an enrolled device's identifier.
//!
//! [`flow::FlowStart`], [`flow::EndedFlow`] and [`denials::DenialSummary`] each have an `event`
//! method that builds their `vpn.flow.start` / `vpn.flow.end` / `vpn.flow.denied`
//! [`crate::audit::EventKind`].
//!
//! # Checked by
//!
//! Unit tests on hand-built packets in each module; property tests comparing
//! [`filter::UserFilter`] with a literal reading of the grants (`filter/tests/reference.rs`) and
//! the parser with packets built from random fields; the fuzz target `core/fuzz`
//! (`cd core/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run packet_parse`); the benchmark
//! `core/benches/vpn_filter.rs`.
//!
//! # What the VPN can reach
//!
//! A user's grants with protocol `tcp`, `udp` or `icmp` whose object is a CIDR, or a target whose
//! host is an IP literal. Targets named by DNS are not reachable over the VPN: the client's packets
//! carry addresses, and sallyport never resolves a name on the client's say-so, so such grants
//! are left out of the filter (use SSH jump mode for them, or grant the address). Ports apply to
//! TCP and UDP; ICMP grants have none. IPv6 destinations are reachable only through IPv6 grants.
//! Broad CIDR grants do not reach the special destinations (loopback, link local and the
//! instance metadata service, multicast, broadcast, unspecified): the same rule, and the same
//! code, as [`crate::policy::decide`].

mod checksum;
pub mod denials;
pub mod device;
mod events;
pub mod filter;
pub mod flow;
pub mod packet;
pub mod reject;

#[cfg(test)]
mod testing;
