//! Failed-login limiting per source address and per user name. Pure: the caller passes the
//! time, so tests run on made-up instants.
//!
//! Each key (a source address, a user name as tried) has a leaky bucket: a failure adds one, and
//! the level drains at `capacity / window` per second. `capacity` failures within the window
//! lock the key out: every attempt is refused without looking at the credential until one
//! failure has drained (`window / capacity`); then one more failure locks it again. Below capacity, a rejection is slowed
//! down by `base_delay * 2^(level - 1)`, at most `max_delay`, so guessing costs the attacker
//! time while a legitimate login (which is never delayed) does not notice.
//!
//! Memory is bounded: at most `max_tracked` keys per map; when full, drained keys are dropped
//! first, then the lowest one.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Longest user name kept as a key (longer names are cut; they are not valid user names).
const MAX_USER_KEY: usize = 64;

/// The limiter's parameters.
#[derive(Debug, Clone, Copy)]
pub struct LimiterSettings {
    /// Failures a source address may accumulate before it is locked out.
    pub per_source: u32,
    /// Failures a user name may accumulate before it is locked out.
    pub per_user: u32,
    /// The time over which a full bucket drains.
    pub window: Duration,
    /// The delay added to a rejection at level 1.
    pub base_delay: Duration,
    /// The largest delay added to a rejection.
    pub max_delay: Duration,
    /// Most keys tracked per map.
    pub max_tracked: usize,
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the credential.
    Proceed,
    /// Refuse without checking; the key drains below its capacity after `retry_after`.
    Refuse {
        /// Time until the next attempt would be looked at.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    capacity: f64,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(capacity: u32) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            map: HashMap::new(),
        }
    }

    fn rate(&self, window: Duration) -> f64 {
        self.capacity / window.as_secs_f64().max(0.001)
    }

    fn level(&self, key: &K, now: Instant, rate: f64) -> f64 {
        self.map
            .get(key)
            .map(|b| drained(b, now, rate))
            .unwrap_or(0.0)
    }

    fn add(&mut self, key: &K, now: Instant, rate: f64, max_tracked: usize) -> f64 {
        if !self.map.contains_key(key) && self.map.len() >= max_tracked {
            self.map.retain(|_, b| drained(b, now, rate) > 0.0);
            if self.map.len() >= max_tracked {
                let lowest = self
                    .map
                    .iter()
                    .min_by(|a, b| drained(a.1, now, rate).total_cmp(&drained(b.1, now, rate)))
                    .map(|(k, _)| k.clone());
                if let Some(k) = lowest {
                    self.map.remove(&k);
                }
            }
        }
        let level = self.level(key, now, rate) + 1.0;
        self.map.insert(key.clone(), Bucket { level, at: now });
        level
    }

    /// Locked: `capacity` failures in quick succession put the level just under `capacity`
    /// (it drains continuously), so the lock starts above `capacity - 1`.
    fn locked(&self, level: f64) -> bool {
        level > self.capacity - 1.0
    }

    fn remove(&mut self, key: &K, count: f64, now: Instant, rate: f64) {
        if let Some(b) = self.map.get_mut(key) {
            let level = (drained(b, now, rate) - count).max(0.0);
            *b = Bucket { level, at: now };
        }
    }

    fn retry_after(&self, level: f64, rate: f64) -> Duration {
        // Drain until one more failure would not reach the lock.
        let excess = (level - (self.capacity - 1.0)).max(0.0) + 0.001;
        Duration::from_secs_f64((excess / rate).min(86_400.0))
    }
}

fn drained(b: &Bucket, now: Instant, rate: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.level - elapsed * rate).max(0.0)
}

/// The limiter. Shared behind a mutex; every method is quick and never blocks.
#[derive(Debug)]
pub struct AuthLimiter {
    settings: LimiterSettings,
    sources: Buckets<IpAddr>,
    users: Buckets<String>,
}

impl AuthLimiter {
    /// An empty limiter.
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            settings,
            sources: Buckets::new(settings.per_source),
            users: Buckets::new(settings.per_user),
        }
    }

    /// Whether an attempt from `source` for `user` may be checked at `now`.
    pub fn admit(&self, source: IpAddr, user: &str, now: Instant) -> Admission {
        let (src_rate, user_rate) = self.rates();
        let src = self.sources.level(&source.to_canonical(), now, src_rate);
        let usr = self.users.level(&user_key(user), now, user_rate);
        let wait_src = self
            .sources
            .locked(src)
            .then(|| self.sources.retry_after(src, src_rate));
        let wait_usr = self
            .users
            .locked(usr)
            .then(|| self.users.retry_after(usr, user_rate));
        match wait_src.into_iter().chain(wait_usr).max() {
            Some(retry_after) => Admission::Refuse { retry_after },
            None => Admission::Proceed,
        }
    }

    /// Counts a failure and returns how long to hold back its rejection.
    pub fn record_failure(&mut self, source: IpAddr, user: &str, now: Instant) -> Duration {
        let (src_rate, user_rate) = self.rates();
        let max = self.settings.max_tracked.max(1);
        let src = self.sources.add(&source.to_canonical(), now, src_rate, max);
        let usr = self.users.add(&user_key(user), now, user_rate, max);
        self.delay_for(src.max(usr))
    }

    /// Takes back `count` failures of a connection that then logged in: an agent offering a
    /// few unregistered keys before the right one is not an attack, and its user should not
    /// drift towards a lock-out one login at a time.
    pub fn forgive(&mut self, source: IpAddr, user: &str, count: u32, now: Instant) {
        if count == 0 {
            return;
        }
        let (src_rate, user_rate) = self.rates();
        let n = f64::from(count);
        self.sources
            .remove(&source.to_canonical(), n, now, src_rate);
        self.users.remove(&user_key(user), n, now, user_rate);
    }

    fn rates(&self) -> (f64, f64) {
        (
            self.sources.rate(self.settings.window),
            self.users.rate(self.settings.window),
        )
    }

    fn delay_for(&self, level: f64) -> Duration {
        // level >= 1 here; 2^(level-1) grows quickly, so cap the exponent before powi.
        let exponent = (level - 1.0).clamp(0.0, 30.0) as i32;
        let delay = self.settings.base_delay.as_secs_f64() * 2f64.powi(exponent);
        Duration::from_secs_f64(delay.min(self.settings.max_delay.as_secs_f64()))
    }

    /// How many keys are tracked (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.map.len(), self.users.map.len())
    }
}

fn user_key(user: &str) -> String {
    user.chars().take(MAX_USER_KEY).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LimiterSettings {
        LimiterSettings {
            per_source: 5,
            per_user: 3,
            window: Duration::from_secs(60),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_tracked: 4,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn user_locks_out_after_its_capacity_and_drains() {
        let mut l = AuthLimiter::new(settings());
        let t0 = Instant::now();
        let d1 = l.record_failure(ip(1), "alice", t0);
        let d2 = l.record_failure(ip(2), "alice", t0);
        assert_eq!(d1, Duration::from_millis(250));
        assert_eq!(d2, Duration::from_millis(500));
        assert_eq!(l.admit(ip(3), "alice", t0), Admission::Proceed);
        l.record_failure(ip(3), "alice", t0);
        // Three failures for alice, from three addresses: alice is locked, bob is not.
        let Admission::Refuse { retry_after } = l.admit(ip(9), "alice", t0) else {
            panic!("alice should be locked out");
        };
        // 3 per 60 s drains one failure every 20 s.
        assert!(
            retry_after > Duration::from_secs(19) && retry_after <= Duration::from_secs(21),
            "{retry_after:?}"
        );
        assert_eq!(l.admit(ip(9), "bob", t0), Admission::Proceed);
        assert_eq!(
            l.admit(ip(9), "alice", t0 + Duration::from_secs(21)),
            Admission::Proceed
        );
    }

    #[test]
    fn failures_spread_inside_the_window_still_lock() {
        let mut l = AuthLimiter::new(settings());
        let t0 = Instant::now();
        for i in 0..3 {
            l.record_failure(ip(1), "carol", t0 + Duration::from_secs(i * 5));
        }
        let later = t0 + Duration::from_secs(11);
        let Admission::Refuse { retry_after } = l.admit(ip(2), "carol", later) else {
            panic!("three failures in 10 s lock carol out");
        };
        // 3 per 60 s: about 20 s minus the 10 s already drained.
        assert!(
            retry_after > Duration::from_secs(8) && retry_after < Duration::from_secs(20),
            "{retry_after:?}"
        );
        assert_eq!(
            l.admit(ip(2), "carol", later + retry_after),
            Admission::Proceed
        );
    }

    #[test]
    fn source_locks_out_across_user_names() {
        let mut l = AuthLimiter::new(settings());
        let t0 = Instant::now();
        for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            assert_eq!(l.admit(ip(1), name, t0), Admission::Proceed, "attempt {i}");
            l.record_failure(ip(1), name, t0);
        }
        assert!(matches!(
            l.admit(ip(1), "fresh", t0),
            Admission::Refuse { .. }
        ));
        assert_eq!(l.admit(ip(2), "fresh", t0), Admission::Proceed);
        // IPv4-mapped IPv6 is the same source.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(matches!(l.admit(mapped, "x", t0), Admission::Refuse { .. }));
    }

    #[test]
    fn a_login_takes_back_its_connections_failures() {
        let mut l = AuthLimiter::new(settings());
        let t0 = Instant::now();
        // Five logins, each after two keys the agent offered first.
        for i in 0..5u64 {
            let t = t0 + Duration::from_secs(i);
            l.record_failure(ip(1), "dana", t);
            l.record_failure(ip(1), "dana", t);
            assert_eq!(l.admit(ip(1), "dana", t), Admission::Proceed, "login {i}");
            l.forgive(ip(1), "dana", 2, t);
        }
        assert_eq!(
            l.admit(ip(1), "dana", t0 + Duration::from_secs(5)),
            Admission::Proceed
        );
        // Without the logins, the same failures lock the user out.
        let mut m = AuthLimiter::new(settings());
        for _ in 0..3 {
            m.record_failure(ip(1), "dana", t0);
        }
        assert!(matches!(
            m.admit(ip(1), "dana", t0),
            Admission::Refuse { .. }
        ));
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let s = LimiterSettings {
            per_user: 100,
            per_source: 100,
            ..settings()
        };
        let mut l = AuthLimiter::new(s);
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..8).map(|_| l.record_failure(ip(1), "u", t0)).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[3], Duration::from_secs(2));
        assert_eq!(delays[7], Duration::from_secs(4));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = AuthLimiter::new(settings());
        let t0 = Instant::now();
        for i in 0..50u8 {
            l.record_failure(ip(i), &format!("user{i}"), t0);
        }
        let (sources, users) = l.tracked();
        assert!(sources <= 4 && users <= 4, "{sources} {users}");
        let long = "x".repeat(10_000);
        l.record_failure(ip(1), &long, t0);
        assert!(l.users.map.keys().all(|k| k.len() <= MAX_USER_KEY));
    }
}
