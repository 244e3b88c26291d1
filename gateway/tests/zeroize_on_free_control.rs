//! Control for `zeroize_on_free`: the same scenario and scan with the plain system allocator,
//! as sallyportd ran before it installed `ZeroAlloc`. boringtun 0.7 does not zeroize a `Tunn`'s
//! preshared key or session keys on drop, so they are still in the freed block; this is what
//! the zeroizing allocator removes, and it shows the scan after the drop reads the right bytes.
//!
//! If boringtun starts zeroizing these itself, this test fails: then say so in docs/vpn.md
//! ("Keys") and drop or invert this control.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod zeroize_common;

use zeroize_common::{contains, revoke_and_scan};

#[test]
fn without_the_zeroizing_allocator_the_keys_stay_in_freed_memory() {
    let scan = revoke_and_scan();
    assert!(
        contains(&scan.live, &scan.psk),
        "no preshared key in the live Tunn"
    );
    assert!(
        contains(&scan.freed, &scan.psk),
        "the preshared key is gone from the freed Tunn even without the zeroizing allocator"
    );
    let left = scan.shared_left();
    assert!(
        left * 2 > scan.shared.len(),
        "only {left} of {} secrets shared with the device are left in the freed Tunn",
        scan.shared.len()
    );
    eprintln!(
        "plain allocator: {} of {} shared windows and the preshared key left in the freed Tunn, \
         {} of {} bytes non-zero",
        left,
        scan.shared.len(),
        scan.nonzero_after_free().len(),
        scan.size
    );
}
