//! Exponential backoff with jitter: the n-th wait is drawn from [d/2, d] with
//! d = min(base · 2ⁿ, cap), so many gateways retrying at once spread out.

use std::time::Duration;

use rand::Rng;

/// Backoff state for one destination.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(20))
    }
}

impl Backoff {
    /// Starts at `base`, never waits more than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let low = ms / 2;
        Duration::from_millis(rand::thread_rng().gen_range(low..=ms.max(low)))
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        for (n, w) in waits.iter().enumerate() {
            let ceiling = (100u64 << n).min(2000);
            assert!(
                *w >= Duration::from_millis(ceiling / 2) && *w <= Duration::from_millis(ceiling),
                "wait {n} = {w:?}"
            );
        }
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(100));
    }
}
