//! Feeds arbitrary bytes to the VPN packet parser, and whatever parses to the filter's
//! neighbours that read the same bytes: the reject-reply builder (which must itself build a
//! packet the parser accepts) and a flow table. None of them may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sallyport_core::model::GrantId;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::flow::{FlowConfig, FlowTable};
use sallyport_core::vpn::packet::parse;
use sallyport_core::vpn::reject::reject;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = parse(data) else {
        return;
    };
    assert!(info.len <= data.len());
    assert!(info.transport_offset <= info.len);
    if let Some(reply) = reject(data, &info) {
        let back = parse(&reply).expect("a reject reply parses");
        assert_eq!((back.src, back.dst), (info.dst, info.src));
    }
    let mut table = FlowTable::new(FlowConfig::default());
    let now = Timestamp::from_millis(0);
    table.outbound(&info, GrantId::random(), now);
    table.inbound(&info, now);
    table.expire(Timestamp::from_millis(1 << 40));
});
