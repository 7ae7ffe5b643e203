//! Cache of successful password verifications, so bcrypt's ~100 ms is paid once per
//! credential rather than on every request. Entries are keyed by HMAC-SHA256 under a
//! random per-process key of (user, password, stored hash): a memory dump reveals no
//! password and cannot be tested offline, and changing the stored hash (a new password)
//! misses the cache at once. Bounded in entries and time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A lookup on every authenticated request is the hot path: the HMAC's keyed state is
/// computed once (a clone per lookup instead of two more SHA-256 blocks), and hits take
/// a shared lock (writers only insert and expire).
pub struct VerifyCache {
    /// `Hmac<Sha256>` already keyed: its inner and outer pads are hashed once.
    keyed: Hmac<Sha256>,
    ttl: Duration,
    max: usize,
    entries: RwLock<HashMap<[u8; 32], Instant>>,
}

impl VerifyCache {
    pub fn new(ttl: Duration, max: usize) -> VerifyCache {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("OS random source");
        VerifyCache {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length"),
            ttl,
            max,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn key_of(&self, user: &str, password: &str, stored: &str) -> [u8; 32] {
        let mut m = self.keyed.clone();
        for part in [user, password, stored] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        m.finalize().into_bytes().into()
    }

    pub fn hit(&self, user: &str, password: &str, stored: &str, now: Instant) -> bool {
        self.hit_until(user, password, stored, now).is_some()
    }

    /// [`VerifyCache::hit`], with the instant the entry expires: until then the cache
    /// vouches for the credential, and a memo of it must not outlive that.
    pub fn hit_until(
        &self,
        user: &str,
        password: &str,
        stored: &str,
        now: Instant,
    ) -> Option<Instant> {
        if self.max == 0 {
            return None;
        }
        let k = self.key_of(user, password, stored);
        let expiry = self.entries.read().expect("cache lock").get(&k).copied();
        match expiry {
            Some(exp) if now < exp => Some(exp),
            Some(_) => {
                let mut map = self.entries.write().expect("cache lock");
                // Removed only if still expired: a concurrent insert may have renewed it.
                if map.get(&k).is_some_and(|e| now >= *e) {
                    map.remove(&k);
                }
                None
            }
            None => None,
        }
    }

    /// Remembers a verified credential; returns the entry's expiry (None when caching is
    /// off: `max == 0`).
    pub fn insert(
        &self,
        user: &str,
        password: &str,
        stored: &str,
        now: Instant,
    ) -> Option<Instant> {
        if self.max == 0 {
            return None;
        }
        let k = self.key_of(user, password, stored);
        let mut map = self.entries.write().expect("cache lock");
        if map.len() >= self.max && !map.contains_key(&k) {
            map.retain(|_, exp| now < *exp);
            if map.len() >= self.max {
                // Still full of live entries: drop the one closest to expiry.
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let until = now + self.ttl;
        map.insert(k, until);
        Some(until)
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_credential_until_expiry() {
        let c = VerifyCache::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        c.insert("alice", "pw", "$2y$h1", t0);
        assert!(c.hit("alice", "pw", "$2y$h1", t0));
        assert_eq!(
            c.hit_until("alice", "pw", "$2y$h1", t0),
            Some(t0 + Duration::from_secs(10))
        );
        assert!(!c.hit("alice", "pw2", "$2y$h1", t0));
        assert!(!c.hit("bob", "pw", "$2y$h1", t0));
        assert!(
            !c.hit("alice", "pw", "$2y$h2", t0),
            "new stored hash misses"
        );
        // Length-prefixing: moving a byte between fields is a different key.
        assert!(!c.hit("alicep", "w", "$2y$h1", t0));
        assert!(!c.hit("alice", "pw", "$2y$h1", t0 + Duration::from_secs(10)));
        assert!(c.is_empty(), "expired entry removed on lookup");
    }

    #[test]
    fn bounded() {
        let c = VerifyCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        for i in 0..10 {
            c.insert(&format!("u{i}"), "pw", "h", t0 + Duration::from_millis(i));
        }
        assert_eq!(c.len(), 3);
        assert!(c.hit("u9", "pw", "h", t0), "newest kept");
        assert!(!c.hit("u0", "pw", "h", t0), "oldest evicted");
    }

    #[test]
    fn keys_differ_between_processes() {
        let a = VerifyCache::new(Duration::from_secs(1), 1);
        let b = VerifyCache::new(Duration::from_secs(1), 1);
        assert_ne!(a.key_of("u", "p", "h"), b.key_of("u", "p", "h"));
    }

    #[test]
    fn stores_no_plaintext() {
        let c = VerifyCache::new(Duration::from_secs(10), 10);
        c.insert("alice", "hunter2-secret", "h", Instant::now());
        let dump = format!("{:?}", c.entries.read().unwrap());
        assert!(!dump.contains("hunter2"));
        assert!(!dump.contains("alice"));
    }
}
