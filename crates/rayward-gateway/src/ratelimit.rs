//! Slowing attackers: failed logins per source address and per user name with
//! exponential backoff, and a per-user request rate (token bucket). In memory, bounded;
//! `shared` puts the failed-login counters in Redis so replicas count together.

pub mod shared;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed-login counters with exponential backoff, shared with the history server.
pub use rayward_auth::backoff::{FailedLogins, MAX_KEYS};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-user token bucket.
pub struct RateLimit {
    rate: f64,
    burst: f64,
    /// foldhash: looked up on every request; randomly seeded, bounded by [`MAX_KEYS`].
    map: Mutex<HashMap<String, Bucket, foldhash::fast::RandomState>>,
}

impl RateLimit {
    /// `rate` tokens per second, up to `burst`; a rate of 0 disables the limit.
    pub fn new(rate: f64, burst: f64) -> RateLimit {
        RateLimit {
            rate,
            burst,
            map: Mutex::new(HashMap::default()),
        }
    }

    /// Takes one token; `Err(wait)` when the user is over the rate.
    pub fn check(&self, user: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut map = self.map.lock().expect("rate lock");
        // One lookup by `&str` on every request; the user's name is copied only for a new
        // bucket.
        let b = match map.get_mut(user) {
            Some(b) => b,
            None => {
                if map.len() >= MAX_KEYS {
                    map.clear();
                }
                map.entry(user.to_string()).or_insert(Bucket {
                    tokens: self.burst,
                    at: now,
                })
            }
        };
        let elapsed = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_threshold_doubles_and_caps() {
        let f = FailedLogins::new(3, Duration::from_secs(1), Duration::from_secs(5));
        let t = Instant::now();
        let k = "1.2.3.4".to_string();
        assert_eq!(f.fail(&k, t), None);
        assert_eq!(f.fail(&k, t), None);
        assert!(f.locked(&k, t).is_none());
        assert_eq!(f.fail(&k, t), Some(Duration::from_secs(1)));
        assert_eq!(f.locked(&k, t), Some(Duration::from_secs(1)));
        assert!(f.locked(&k, t + Duration::from_secs(1)).is_none());
        assert_eq!(f.fail(&k, t), Some(Duration::from_secs(2)));
        assert_eq!(f.fail(&k, t), Some(Duration::from_secs(4)));
        assert_eq!(f.fail(&k, t), Some(Duration::from_secs(5)));
        assert!(f.locked(&"other".to_string(), t).is_none());
        f.succeed(&k);
        assert!(f.locked(&k, t).is_none());
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let f = FailedLogins::new(2, Duration::from_secs(1), Duration::from_secs(5));
        let t = Instant::now();
        let k = "u".to_string();
        assert_eq!(f.fail(&k, t), None);
        assert_eq!(f.fail(&k, t + Duration::from_secs(901)), None);
    }

    #[test]
    fn token_bucket() {
        let r = RateLimit::new(2.0, 3.0);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(r.check("a", t).is_ok());
        }
        let wait = r.check("a", t).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(r.check("b", t).is_ok(), "per user");
        assert!(r.check("a", t + Duration::from_millis(500)).is_ok());
        assert!(r.check("a", t + Duration::from_millis(500)).is_err());
        let off = RateLimit::new(0.0, 1.0);
        for _ in 0..1000 {
            assert!(off.check("a", t).is_ok());
        }
    }
}
