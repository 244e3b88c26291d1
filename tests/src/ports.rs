//! Free TCP ports on the loopback interface.
//!
//! The kernel picks a port it considers free (bind to port 0), and a process-wide set makes sure
//! no port is handed out twice in one test process, even when tests run on parallel threads and
//! the first holder has not bound it yet. The port is released before it is returned, so another
//! *process* could in principle take it in between; callers that start a server on it (see
//! `postgres` and `moto`) retry with a new port when the server fails to bind.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Ports already handed out by this process.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A free TCP port on 127.0.0.1, never returned twice in the same process.
///
/// # Panics
///
/// If no port can be bound after many attempts (the loopback interface is unusable). This is
/// test-support code: a test that cannot get a port cannot run and must fail loudly.
#[allow(clippy::panic)] // Test support: failing the calling test is the right outcome.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(_) => continue,
        };
        // A poisoned lock only means another test panicked while holding it; the set itself
        // is still consistent (insert is the only operation).
        let mut seen = handed_out().lock().unwrap_or_else(PoisonError::into_inner);
        if seen.insert(port) {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 after 1000 attempts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..50).map(|_| free_port()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for p in h.join().unwrap() {
                assert!(all.insert(p), "port {p} handed out twice");
            }
        }
        assert_eq!(all.len(), 400);
    }

    #[test]
    fn port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
