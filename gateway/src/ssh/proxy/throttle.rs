//! Holding the client back while a proxied channel is not yet connected to its target.
//!
//! russh grants the client SSH window as data arrives, not as it is consumed, so a client that
//! pipes a large input (`cat dump.sql | ssh -A db@gw psql`) sends at full speed while the
//! gateway is still logging in to the target, and the agent's answers that the login needs
//! queue behind that data. While any channel of the connection is in that phase, the window
//! russh tops the client up to (its per-connection target, which the russh handler returns from
//! `adjust_window`) is cut to [`SETUP_WINDOW`]: the client can send what it already had (one
//! window) and then a trickle. The usual window returns when the last such channel is ready
//! (with the next data the client sends). The relay holds it the same way while a channel's
//! queues run high (`relay.rs`): that is the backpressure russh's window handling lacks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The window target while a channel is being set up.
pub const SETUP_WINDOW: u32 = 4096;

/// One connection's window target.
#[derive(Debug)]
pub struct WindowThrottle {
    normal: u32,
    setting_up: AtomicUsize,
}

impl WindowThrottle {
    /// A throttle whose usual target is `normal` (russh's configured window).
    pub fn new(normal: u32) -> Self {
        Self {
            normal,
            setting_up: AtomicUsize::new(0),
        }
    }

    /// The window target now.
    pub fn target(&self) -> u32 {
        if self.setting_up.load(Ordering::Relaxed) > 0 {
            SETUP_WINDOW.min(self.normal)
        } else {
            self.normal
        }
    }

    /// Holds the client back until the guard is dropped.
    pub fn hold(self: &Arc<Self>) -> ThrottleGuard {
        self.setting_up.fetch_add(1, Ordering::Relaxed);
        ThrottleGuard(Arc::clone(self))
    }
}

/// Held while a channel is being set up.
#[derive(Debug)]
pub struct ThrottleGuard(Arc<WindowThrottle>);

impl Drop for ThrottleGuard {
    fn drop(&mut self) {
        self.0.setting_up.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_cut_while_any_channel_sets_up() {
        let t = Arc::new(WindowThrottle::new(2 * 1024 * 1024));
        assert_eq!(t.target(), 2 * 1024 * 1024);
        let a = t.hold();
        let b = t.hold();
        assert_eq!(t.target(), SETUP_WINDOW);
        drop(a);
        assert_eq!(t.target(), SETUP_WINDOW);
        drop(b);
        assert_eq!(t.target(), 2 * 1024 * 1024);
    }
}
