//! The session cache of `history serve`: stale-while-revalidate with a bound.
//!
//! A session's indexes are read synchronously only the first time it is asked for. After
//! that a request is always answered from memory: once an entry is older than its
//! freshness, the request that notices it is still served the entry, and asks for one
//! background re-read ([`Lookup::Stale`] with `refresh`), at most one per session at a
//! time. A session whose every node has finished its final flush does not change any more,
//! so its entry stays fresh much longer. The number of entries is bounded: past the bound
//! the least recently used one is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One cached session.
struct Entry<V> {
    value: Arc<V>,
    /// When it was read from the store (or a failed re-read was given up).
    read: Instant,
    /// When a request last used it (for eviction).
    used: Instant,
    /// Its session's index says every node finished: nothing more will be written.
    finished: bool,
    /// A background re-read is asked for or running.
    refreshing: bool,
}

/// What a lookup found.
pub enum Lookup<V> {
    /// Not cached: read it now.
    Missing,
    /// Fresh enough: serve it.
    Fresh(Arc<V>),
    /// Older than its freshness: serve it; `refresh` is true for the one caller that must
    /// ask for the background re-read (the others see one under way).
    Stale { value: Arc<V>, refresh: bool },
}

/// The bounded, stale-while-revalidate cache of sessions by id.
pub struct Cache<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
    max: usize,
    /// Freshness of a session still being written, and of a finished one.
    fresh: Duration,
    fresh_finished: Duration,
}

impl<V> Cache<V> {
    pub fn new(max: usize, fresh: Duration, fresh_finished: Duration) -> Cache<V> {
        Cache {
            entries: Mutex::new(HashMap::new()),
            max: max.max(1),
            fresh,
            fresh_finished,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks `id` up at `now`; a stale entry is marked as being refreshed for the caller
    /// that gets `refresh: true`.
    pub fn lookup(&self, id: &str, now: Instant) -> Lookup<V> {
        let mut m = self.lock();
        let Some(e) = m.get_mut(id) else {
            return Lookup::Missing;
        };
        e.used = now;
        let fresh = if e.finished {
            self.fresh_finished
        } else {
            self.fresh
        };
        if now.saturating_duration_since(e.read) < fresh {
            return Lookup::Fresh(e.value.clone());
        }
        let refresh = !e.refreshing;
        e.refreshing = true;
        Lookup::Stale {
            value: e.value.clone(),
            refresh,
        }
    }

    /// Stores a (re-)read `value` of `id`, read at `now`; past the bound the least
    /// recently used other entry is dropped.
    pub fn put(&self, id: &str, value: Arc<V>, finished: bool, now: Instant) {
        let mut m = self.lock();
        if !m.contains_key(id) && m.len() >= self.max {
            if let Some(old) = m.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) {
                m.remove(&old);
            }
        }
        let used = m.get(id).map_or(now, |e| e.used);
        m.insert(
            id.to_string(),
            Entry {
                value,
                read: now,
                used,
                finished,
                refreshing: false,
            },
        );
    }

    /// A re-read of `id` failed or could not be queued: the entry is kept and served, and
    /// the next re-read is asked for one freshness period after `now`.
    pub fn failed(&self, id: &str, now: Instant) {
        if let Some(e) = self.lock().get_mut(id) {
            e.refreshing = false;
            e.read = now;
        }
    }

    /// The cached value of `id`, whatever its age (no use recorded).
    pub fn peek(&self, id: &str) -> Option<Arc<V>> {
        self.lock().get(id).map(|e| e.value.clone())
    }

    /// Drops `id` (its session is gone from the store).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn value(l: Lookup<u32>) -> (Option<u32>, &'static str, bool) {
        match l {
            Lookup::Missing => (None, "missing", false),
            Lookup::Fresh(v) => (Some(*v), "fresh", false),
            Lookup::Stale { value, refresh } => (Some(*value), "stale", refresh),
        }
    }

    #[test]
    fn stale_entries_are_served_and_refreshed_once() {
        let c = Cache::new(8, 5 * S, 300 * S);
        let t0 = Instant::now();
        assert_eq!(value(c.lookup("a", t0)), (None, "missing", false));
        c.put("a", Arc::new(1), false, t0);
        assert_eq!(value(c.lookup("a", t0 + 4 * S)), (Some(1), "fresh", false));
        // Past the freshness: served, and only the first caller asks for the re-read.
        assert_eq!(value(c.lookup("a", t0 + 6 * S)), (Some(1), "stale", true));
        assert_eq!(value(c.lookup("a", t0 + 7 * S)), (Some(1), "stale", false));
        c.put("a", Arc::new(2), false, t0 + 8 * S);
        assert_eq!(value(c.lookup("a", t0 + 9 * S)), (Some(2), "fresh", false));
        // A failed re-read keeps the value and paces the next one.
        assert_eq!(value(c.lookup("a", t0 + 14 * S)), (Some(2), "stale", true));
        c.failed("a", t0 + 14 * S);
        assert_eq!(value(c.lookup("a", t0 + 15 * S)), (Some(2), "fresh", false));
        assert_eq!(value(c.lookup("a", t0 + 20 * S)), (Some(2), "stale", true));
    }

    #[test]
    fn finished_sessions_stay_fresh_longer() {
        let c = Cache::new(8, 5 * S, 300 * S);
        let t0 = Instant::now();
        c.put("done", Arc::new(1), true, t0);
        c.put("live", Arc::new(2), false, t0);
        assert_eq!(value(c.lookup("done", t0 + 60 * S)).1, "fresh");
        assert_eq!(value(c.lookup("live", t0 + 60 * S)).1, "stale");
        assert_eq!(value(c.lookup("done", t0 + 301 * S)).1, "stale");
    }

    #[test]
    fn bounded_by_dropping_the_least_recently_used() {
        let c = Cache::new(3, 5 * S, 300 * S);
        let t0 = Instant::now();
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(id, Arc::new(i as u32), false, t0 + S * i as u32);
        }
        // "a" is used again, so "b" is now the least recently used.
        let _ = c.lookup("a", t0 + 4 * S);
        for i in 0..100u32 {
            c.put(&format!("n{i}"), Arc::new(i), false, t0 + S * (10 + i));
            assert!(c.len() <= 3, "{} entries", c.len());
        }
        assert_eq!(c.len(), 3);
        assert_eq!(value(c.lookup("n99", t0 + 110 * S)).0, Some(99));
        assert_eq!(value(c.lookup("b", t0 + 110 * S)).1, "missing");
        // Re-reading a cached id replaces it without evicting another.
        c.put("n99", Arc::new(7), false, t0 + 111 * S);
        assert_eq!(c.len(), 3);
        assert_eq!(value(c.lookup("n98", t0 + 112 * S)).0, Some(98));
        c.remove("n98");
        assert_eq!(value(c.lookup("n98", t0 + 112 * S)).1, "missing");
        c.clear();
        assert!(c.is_empty());
    }
}
