//! Summarizer tests.

use std::time::Duration;

use super::*;
use crate::audit::EventKind;
use crate::vpn::packet::parse;
use crate::vpn::testing::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000 + s * 1000)
}

fn denied(dport: u16, reason: FlowDenial, device: DeviceId) -> DeniedPacket {
    let info = parse(&udp_packet("100.64.0.2", "10.0.12.7", 5353, dport)).unwrap();
    DeniedPacket::new("alice".parse().unwrap(), device, &info, reason)
}

#[test]
fn first_at_once_then_one_count_per_window() {
    let device = DeviceId::random();
    let mut s = DenialSummarizer::new(Duration::from_secs(60), 100);
    let d = denied(53, FlowDenial::PortNotGranted, device);
    let first = s.record(d.clone(), at(0)).unwrap();
    assert_eq!((first.count, first.window_start), (1, at(0)));
    for i in 1..=500 {
        assert_eq!(s.record(d.clone(), at(i % 60)), None);
    }
    // Another key is reported on its own.
    let other = denied(54, FlowDenial::PortNotGranted, device);
    assert_eq!(s.record(other, at(1)).map(|x| x.count), Some(1));
    assert!(s.flush(at(59)).is_empty());
    let flushed = s.flush(at(61));
    assert_eq!(flushed.len(), 1, "only the key with counted denials");
    assert_eq!(flushed[0].denied, d);
    assert_eq!(flushed[0].count, 500);
    assert_eq!(
        (flushed[0].window_start, flushed[0].window_end),
        (at(0), at(60))
    );
    assert!(s.is_empty());
    // Next time: reported at once again.
    assert_eq!(s.record(d, at(62)).map(|x| x.count), Some(1));
}

#[test]
fn a_late_denial_closes_its_window_without_a_flush() {
    let device = DeviceId::random();
    let mut s = DenialSummarizer::new(Duration::from_secs(10), 100);
    let d = denied(53, FlowDenial::NoGrantForDestination, device);
    s.record(d.clone(), at(0));
    s.record(d.clone(), at(1));
    let late = s.record(d.clone(), at(15)).unwrap();
    assert_eq!(
        (late.count, late.window_start, late.window_end),
        (2, at(0), at(15))
    );
    // A window with nothing after its first denial simply starts over.
    s.record(d.clone(), at(100));
    let again = s.record(d, at(200)).unwrap();
    assert_eq!((again.count, again.window_start), (1, at(200)));
}

#[test]
fn bounded_keys() {
    let device = DeviceId::random();
    let mut s = DenialSummarizer::new(Duration::from_secs(60), 2);
    assert!(s
        .record(denied(1, FlowDenial::PortNotGranted, device), at(0))
        .is_some());
    assert!(s
        .record(denied(2, FlowDenial::PortNotGranted, device), at(0))
        .is_some());
    assert!(s
        .record(denied(3, FlowDenial::PortNotGranted, device), at(0))
        .is_none());
    assert!(s
        .record(denied(4, FlowDenial::PortNotGranted, device), at(0))
        .is_none());
    assert_eq!(s.len(), 2);
    assert_eq!(s.take_overflow(), 2);
    assert_eq!(s.take_overflow(), 0);
}

#[test]
fn summaries_become_events() {
    let device = DeviceId::random();
    let mut s = DenialSummarizer::new(Duration::from_secs(60), 10);
    let d = denied(53, FlowDenial::SpecialDestination, device);
    s.record(d.clone(), at(0));
    s.record(d, at(1));
    let e = s.flush(at(60))[0].event();
    assert_eq!((e.name(), e.code()), ("vpn.flow.denied", "V1022W"));
    let data = e.data();
    assert_eq!(data["reason"], "special-destination");
    assert_eq!(data["protocol"], "udp");
    assert_eq!(data["port"], 53);
    assert_eq!(data["count"], 1);
    assert_eq!(data["window_ms"], 60_000);
    assert_eq!(data["device"], device.to_string());
    assert_eq!(EventKind::from_parts("vpn.flow.denied", &data), Some(e));

    let info = parse(&ipv4(
        "100.64.0.2".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
        47,
        &[0; 4],
    ))
    .unwrap();
    let gre = DeniedPacket::new(
        "bob".parse().unwrap(),
        device,
        &info,
        FlowDenial::ProtocolNotGranted,
    );
    assert_eq!((gre.protocol.as_str(), gre.port), ("ip-47", None));
}
