//! Logged-out sessions, in this process's memory: logout revokes the session's id until
//! the cookie would have expired anyway. Bounded: past [`MAX_REVOKED`] the revocation that
//! lapses soonest is forgotten first. The gateway adds Redis on top (shared by replicas);
//! the history server uses this alone.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most revocations kept in memory.
pub const MAX_REVOKED: usize = 100_000;

#[derive(Default)]
pub struct Revoked {
    /// session id → the cookie's expiry (unix seconds).
    mem: Mutex<HashMap<String, u64>>,
}

impl Revoked {
    pub fn new() -> Revoked {
        Revoked::default()
    }

    /// Revokes session `id`, whose cookie expires at `expiry` (unix seconds).
    pub fn revoke(&self, id: &str, expiry: u64, now: u64) {
        if expiry <= now {
            return;
        }
        let mut m = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_REVOKED {
            m.retain(|_, exp| *exp > now);
        }
        if m.len() >= MAX_REVOKED {
            if let Some(k) = m.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) {
                m.remove(&k);
            }
        }
        m.insert(id.to_string(), expiry);
    }

    /// Whether session `id` was revoked here (and its cookie has not expired since).
    pub fn is_revoked(&self, id: &str, now: u64) -> bool {
        self.mem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|exp| *exp > now)
    }

    pub fn len(&self) -> usize {
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_until_the_cookie_would_expire() {
        let r = Revoked::new();
        assert!(!r.is_revoked("a", 100));
        r.revoke("a", 200, 100);
        assert!(r.is_revoked("a", 100));
        assert!(r.is_revoked("a", 199));
        assert!(!r.is_revoked("a", 200), "the cookie itself has expired");
        assert!(!r.is_revoked("b", 100));
        r.revoke("c", 100, 100);
        assert_eq!(r.len(), 1, "an expired cookie needs no record");
    }

    #[test]
    fn memory_is_bounded() {
        let r = Revoked::new();
        for i in 0..MAX_REVOKED as u64 {
            r.mem.lock().unwrap().insert(format!("s{i}"), 1000 + i);
        }
        r.revoke("new", 5000, 10);
        assert_eq!(r.len(), MAX_REVOKED);
        assert!(r.is_revoked("new", 10));
        assert!(!r.is_revoked("s0", 10), "the soonest to lapse went first");
        assert!(r.is_revoked("s1", 10));
    }
}
