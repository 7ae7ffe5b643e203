//! A bounded map whose entries expire: the TokenReview and SubjectAccessReview caches.
//! Full: expired entries are dropped first, then the entry that expires soonest, so the
//! memory stays bounded whatever tokens an attacker sends (only successful reviews are
//! cached in any case).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
    max: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(max: usize) -> TtlCache<K, V> {
        TtlCache {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The value, if present and not expired at `now`.
    pub fn get(&self, k: &K, now: Instant) -> Option<V> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(k) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                m.remove(k);
                None
            }
            None => None,
        }
    }

    /// Stores `v` until `until`.
    pub fn insert(&self, k: K, v: V, until: Instant, now: Instant) {
        if self.max == 0 || until <= now {
            return;
        }
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.max && !m.contains_key(&k) {
            m.retain(|_, (_, u)| *u > now);
            if m.len() >= self.max {
                if let Some(old) = m
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&old);
                }
            }
        }
        m.insert(k, (v, until));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_and_bound() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let c = TtlCache::new(2);
        c.insert("a", 1, t0 + s, t0);
        assert_eq!(c.get(&"a", t0), Some(1));
        assert_eq!(c.get(&"a", t0 + s), None, "expired");
        assert!(c.is_empty(), "expired entries are dropped when read");
        c.insert("a", 1, t0 + 5 * s, t0);
        c.insert("b", 2, t0 + 3 * s, t0);
        c.insert("c", 3, t0 + 4 * s, t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"b", t0), None, "the soonest to expire went first");
        assert_eq!((c.get(&"a", t0), c.get(&"c", t0)), (Some(1), Some(3)));
        c.insert("d", 4, t0, t0);
        assert_eq!(c.get(&"d", t0), None, "nothing already expired is stored");
    }
}
