//! The scenario both zeroize-on-free binaries run: a gateway `Tunn` built as `Peers::upsert`
//! builds it (preshared key, shared rate limiter, boxed), a device `Tunn`, a handshake in
//! memory and one data packet each way, so both ends hold session keys; then the gateway's
//! `Box<Tunn>` is dropped, as a revoke drops its `Peer`, and its block is read back through
//! `/proc/self/mem` (positioned reads; no `unsafe`).
//!
//! The binaries differ only in their global allocator: `zeroize_on_free` installs sallyportd's
//! (`zeroizing_alloc::ZeroAlloc<System>`), `zeroize_on_free_control` keeps the plain system
//! allocator and shows what the same scan finds without it.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

pub const KEY_LEN: usize = 32;

/// What the scan saw of the gateway's `Tunn` block, live and after the drop.
pub struct Scan {
    /// The preshared key the `Tunn` was built with.
    pub psk: [u8; KEY_LEN],
    /// The gateway's static private key.
    pub gateway_private: [u8; KEY_LEN],
    /// `size_of::<Tunn>()`.
    pub size: usize,
    /// The block, read while the `Tunn` was live (after the handshake and data).
    pub live: Vec<u8>,
    /// Every 32-byte window of the live block, not all zeros, that the device's live `Tunn`
    /// also holds: the preshared key, the two session keys (one end's sending key is the other's
    /// receiving key), the static DH result, the public keys, and state that happens to be equal.
    pub shared: BTreeSet<Vec<u8>>,
    /// The same bytes read right after the drop.
    pub freed: Vec<u8>,
}

impl Scan {
    /// Offsets of the bytes of the freed block that are not zero.
    pub fn nonzero_after_free(&self) -> Vec<usize> {
        (0..self.size).filter(|&i| self.freed[i] != 0).collect()
    }

    /// How many windows of `shared` are still in the freed block.
    pub fn shared_left(&self) -> usize {
        self.shared
            .iter()
            .filter(|w| contains(&self.freed, w))
            .count()
    }
}

/// 32 distinct-looking bytes from a seed (no run of equal bytes).
pub fn pattern(seed: u8) -> [u8; KEY_LEN] {
    std::array::from_fn(|i| seed.wrapping_add((i as u8).wrapping_mul(37)) ^ 0x5a)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs the scenario (see the module doc).
pub fn revoke_and_scan() -> Scan {
    let gateway_private = pattern(0x10);
    let device_private = pattern(0x20);
    let psk = pattern(0x30);
    let gateway_public = PublicKey::from(&StaticSecret::from(gateway_private));
    let device_public = PublicKey::from(&StaticSecret::from(device_private));

    // As `Peers::upsert`: gateway key, device key, preshared key, no keepalive, a receiver
    // index, the shared rate limiter; boxed.
    let limiter = Arc::new(RateLimiter::new(&gateway_public, 1000));
    let mut gateway = Box::new(Tunn::new(
        StaticSecret::from(gateway_private),
        device_public,
        Some(psk),
        None,
        7,
        Some(limiter),
    ));
    let mut device = Box::new(Tunn::new(
        StaticSecret::from(device_private),
        gateway_public,
        Some(psk),
        None,
        9,
        None,
    ));
    handshake(&mut device, &mut gateway);
    let out = ipv4_udp([100, 64, 0, 2], [10, 0, 12, 7]);
    assert_eq!(transfer(&mut device, &mut gateway, &out), out);
    let back = ipv4_udp([10, 0, 12, 7], [100, 64, 0, 2]);
    assert_eq!(transfer(&mut gateway, &mut device, &back), back);
    // Keeps the heap's top above the gateway's block, so freeing it cannot shrink the heap
    // (the read after the drop must find the block mapped).
    let fence = vec![1u8; 64 * 1024];

    let size = std::mem::size_of::<Tunn>();
    let addr = address_of::<Tunn>(&gateway);
    let mem = File::open("/proc/self/mem").unwrap();
    let mut live = vec![0u8; size];
    read_at(&mem, addr, &mut live);
    let mut device_live = vec![0u8; size];
    read_at(&mem, address_of::<Tunn>(&device), &mut device_live);
    let shared = common_windows(&live, &device_live);

    // Nothing may allocate between the drop and the read: the buffer and the file exist.
    let mut freed = vec![0u8; size];
    drop(gateway);
    read_at(&mem, addr, &mut freed);

    drop(fence);
    drop(device);
    Scan {
        psk,
        gateway_private,
        size,
        live,
        shared,
        freed,
    }
}

/// Reads `buf.len()` bytes of this process's memory at `addr`.
fn read_at(mem: &File, addr: usize, buf: &mut [u8]) {
    mem.read_exact_at(buf, addr as u64)
        .unwrap_or_else(|e| panic!("reading {} bytes at {addr:#x}: {e}", buf.len()));
}

/// The address of `value` (a pointer turned into a number, never dereferenced).
fn address_of<T>(value: &T) -> usize {
    value as *const T as usize
}

/// Every 32-byte window of `a` that is not all zeros and also occurs in `b`.
fn common_windows(a: &[u8], b: &[u8]) -> BTreeSet<Vec<u8>> {
    a.windows(KEY_LEN)
        .filter(|w| w.iter().any(|&x| x != 0))
        .filter(|w| contains(b, w))
        .map(<[u8]>::to_vec)
        .collect()
}

fn describe(r: &TunnResult<'_>) -> String {
    match r {
        TunnResult::Done => "Done".into(),
        TunnResult::Err(e) => format!("Err({e:?})"),
        TunnResult::WriteToNetwork(_) => "WriteToNetwork".into(),
        TunnResult::WriteToTunnelV4(..) => "WriteToTunnelV4".into(),
        TunnResult::WriteToTunnelV6(..) => "WriteToTunnelV6".into(),
    }
}

/// Device initiates, gateway responds, device confirms with a keepalive.
fn handshake(device: &mut Tunn, gateway: &mut Tunn) {
    let mut buf = vec![0u8; 2048];
    let init = match device.format_handshake_initiation(&mut buf, false) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("initiation: {}", describe(&other)),
    };
    let resp = match gateway.decapsulate(None, &init, &mut buf) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("response: {}", describe(&other)),
    };
    let keepalive = match device.decapsulate(None, &resp, &mut buf) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("keepalive: {}", describe(&other)),
    };
    match gateway.decapsulate(None, &keepalive, &mut buf) {
        TunnResult::Done => {}
        other => panic!("keepalive received: {}", describe(&other)),
    }
}

/// Pushes `src` through `from` and `to`; returns what `to` writes to its tunnel.
fn transfer(from: &mut Tunn, to: &mut Tunn, src: &[u8]) -> Vec<u8> {
    let mut wire = vec![0u8; 2048];
    let datagram = match from.encapsulate(src, &mut wire) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("encapsulate: {}", describe(&other)),
    };
    let mut plain = vec![0u8; 2048];
    match to.decapsulate(None, &datagram, &mut plain) {
        TunnResult::WriteToTunnelV4(p, _) => p.to_vec(),
        other => panic!("decapsulate data: {}", describe(&other)),
    }
}

/// An IPv4/UDP packet with a 4-byte payload (boringtun checks version, length and source).
fn ipv4_udp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);
    p
}
