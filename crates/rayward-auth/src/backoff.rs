//! Failed logins per key (a source address, a user name) with exponential backoff: after
//! `threshold` failures the key is locked for `base`, doubling with each further failure
//! up to `max`. In memory, bounded. Shared by the gateway (which adds Redis so replicas
//! count together) and the history server.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked per map; past this, idle entries are dropped first, then the map is
/// cleared (failing open on memory pressure would be worse than forgetting counters).
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Counts failed logins for one kind of key (source address or user name).
pub struct FailedLogins<K> {
    /// Failures before the first lockout.
    pub threshold: u32,
    /// The first lockout; doubles with each further failure.
    pub base: Duration,
    /// The longest lockout.
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// foldhash rather than SipHash: looked up twice per request; still randomly seeded
    /// (the keys are attacker-chosen) and bounded by [`MAX_KEYS`].
    map: Mutex<HashMap<K, Failures, foldhash::fast::RandomState>>,
}

impl<K: Eq + Hash + Clone> FailedLogins<K> {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        FailedLogins {
            threshold,
            base,
            max,
            window: max.max(Duration::from_secs(900)),
            map: Mutex::new(HashMap::default()),
        }
    }

    /// `Some(wait)` while the key is locked out.
    /// `key` may be any borrowed form of `K` (a `&str` for `String` keys): the check runs
    /// on every request, and building an owned key just to look it up was an allocation.
    pub fn locked<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().expect("limiter lock");
        let f = map.get(key)?;
        f.locked_until
            .filter(|&until| until > now)
            .map(|until| until - now)
    }

    /// Records a failure; returns the lockout it starts, if any.
    pub fn fail(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut map = self.map.lock().expect("limiter lock");
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let window = self.window;
            map.retain(|_, f| now.duration_since(f.last) < window);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let f = map.entry(key.clone()).or_insert(Failures {
            count: 0,
            locked_until: None,
            last: now,
        });
        if now.duration_since(f.last) >= self.window {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.threshold {
            let exp = (f.count - self.threshold).min(20);
            let lock = self.base.saturating_mul(1 << exp).min(self.max);
            f.locked_until = Some(now + lock);
            Some(lock)
        } else {
            None
        }
    }

    pub fn succeed<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().expect("limiter lock").remove(key);
    }
}
