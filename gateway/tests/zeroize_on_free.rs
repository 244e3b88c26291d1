//! A revoked device's WireGuard keys do not outlive its `Tunn` in the heap.
//!
//! sallyportd installs `zeroizing_alloc::ZeroAlloc` as its global allocator
//! (gateway/src/main.rs): every heap block is overwritten with zeros when it is freed. The
//! endpoint keeps one boringtun `Tunn` per device as a `Box<Tunn>` (`wireguard/peers.rs`), and
//! boringtun keeps the preshared key, the handshake state and both session keys (`ring`
//! `LessSafeKey`s) inline in that block without zeroizing them on drop.
//!
//! This binary installs the same allocator and runs `zeroize_common::revoke_and_scan`. The
//! control that the scan looks in the right place is in two parts: here, the live block holds
//! the preshared key and the secrets both ends share; in `zeroize_on_free_control` (the plain
//! system allocator), the same scan finds them in the freed block.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod zeroize_common;

use std::alloc::System;

use zeroize_common::{contains, revoke_and_scan, KEY_LEN};
use zeroizing_alloc::ZeroAlloc;

#[global_allocator]
static ALLOCATOR: ZeroAlloc<System> = ZeroAlloc(System);

/// glibc writes its free-list links (forward and back, then the large-bin pair) into the first
/// 32 bytes of a freed block, and may write the block's size as a footer in its last 8.
const ALLOCATOR_HEAD: usize = 32;
const ALLOCATOR_FOOT: usize = 8;

#[test]
fn a_dropped_tunn_leaves_no_key_material() {
    let scan = revoke_and_scan();

    // Control: the scan sees the key material in the live block.
    assert!(
        contains(&scan.live, &scan.psk),
        "the scan does not find the preshared key in the live Tunn ({} bytes)",
        scan.size
    );
    let live_nonzero = scan.live.iter().filter(|&&b| b != 0).count();
    assert!(
        scan.shared.len() >= 4,
        "the live gateway and device Tunns share only {} 32-byte windows; expected the \
         preshared key, both session keys and the public keys",
        scan.shared.len()
    );

    // After the drop: no key, and nothing at all but the allocator's own links.
    assert!(
        !contains(&scan.freed, &scan.psk),
        "the preshared key is still in the freed Tunn"
    );
    assert!(
        !contains(&scan.freed, &scan.gateway_private),
        "the gateway's private key is still in the freed Tunn"
    );
    assert_eq!(
        scan.shared_left(),
        0,
        "of {} secrets shared with the device, some are still in the freed Tunn",
        scan.shared.len()
    );
    let stray: Vec<usize> = scan
        .nonzero_after_free()
        .into_iter()
        .filter(|&i| i >= ALLOCATOR_HEAD && i < scan.size - ALLOCATOR_FOOT)
        .collect();
    assert!(
        stray.is_empty(),
        "{} bytes of the freed Tunn were not overwritten (first at offset {:?})",
        stray.len(),
        stray.first()
    );
    assert!(scan.size > ALLOCATOR_HEAD + ALLOCATOR_FOOT + KEY_LEN);
    eprintln!(
        "Tunn: {} bytes, {live_nonzero} non-zero while live, {} 32-byte windows shared with \
         the device; after the drop {} non-zero (allocator links), no key left",
        scan.size,
        scan.shared.len(),
        scan.nonzero_after_free().len()
    );
}

/// The allocator this binary tests is the one sallyportd runs with.
#[test]
fn sallyportd_installs_the_zeroizing_allocator() {
    const MAIN_RS: &str = include_str!("../src/main.rs");
    let installed = MAIN_RS
        .split("#[global_allocator]")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or("");
    assert!(
        installed.contains("zeroizing_alloc::ZeroAlloc(std::alloc::System)"),
        "gateway/src/main.rs does not install ZeroAlloc<System> as #[global_allocator]: {installed:?}"
    );
}
