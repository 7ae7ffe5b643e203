//! A per-connection memo of the last verified `Authorization` header. A client on a
//! keep-alive connection sends the same header on every request; checking it again costs
//! the verification cache's HMAC-SHA256 (its key), a lock and a hash-map lookup, the
//! htpasswd map's lookup and the header's base64 decoding, about a sixth of the gateway's
//! instructions per request. The memo answers instead when the header is byte-identical.
//!
//! It is exactly as strict as asking again, because it is consulted only where asking
//! again would give the same answer:
//! - only a Basic credential verified against the htpasswd file and held in the
//!   verification cache is memoised ([`rayward_auth::Authenticator::authenticate_vouched`]);
//!   bearer tokens, OIDC JWTs and Kubernetes identities (whose TokenReview cache has its
//!   own expiry) are checked on every request as before;
//! - the memo is keyed on the htpasswd file's generation: a reload (a removed user, a
//!   changed password) makes it miss on the next request;
//! - it expires with the cache entry that vouched for the credential (the cache's TTL);
//! - the failed-login lockout and the rate limit still run on every request (the memo
//!   replaces only the verification); session cookies never reach it.
//!
//! The header is held only while its connection lives (the request bytes are in the
//! connection's buffers anyway), bounded in size, and overwritten with zeros when the
//! memo is replaced or dropped.

use crate::authn::{Identity, Source};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Longest header memoised: a Basic value of the longest user (256) and password (1024)
/// the parser accepts, base64-encoded, fits.
const MAX_HEADER: usize = 2048;

/// One connection's memo. Requests on an HTTP/1 connection come one at a time, so the
/// lock is never contended; it is there because the request futures must be `Send`.
#[derive(Default)]
pub struct ConnMemo(Mutex<Option<Entry>>);

struct Entry {
    header: Vec<u8>,
    generation: u64,
    until: Instant,
    /// An htpasswd identity: its `name` is the user the credential claims (the
    /// failed-login lockout's key). Shared, not cloned, with each request it vouches for.
    identity: Arc<Identity>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // The header carries the password (base64): wipe it rather than leave it in freed
        // memory; black_box keeps the compiler from dropping the writes as dead stores.
        self.header.fill(0);
        std::hint::black_box(&mut self.header);
    }
}

impl ConnMemo {
    /// The identity of `header`, when it is byte-identical to the memoised one, the
    /// credential sources are still at `generation` and `now` is before the vouching
    /// cache entry's expiry.
    pub fn get(&self, header: &[u8], generation: u64, now: Instant) -> Option<Arc<Identity>> {
        let memo = self.0.lock().ok()?;
        let e = memo.as_ref()?;
        (e.generation == generation && now < e.until && e.header == header)
            .then(|| e.identity.clone())
    }

    /// Remembers a verification of `header` made at `generation` (read before it was
    /// made), good until `until`. Only an htpasswd identity is kept, and no header too
    /// long (either forgets the old one).
    pub fn put(&self, header: &[u8], generation: u64, until: Instant, identity: &Arc<Identity>) {
        let Ok(mut memo) = self.0.lock() else { return };
        *memo =
            (header.len() <= MAX_HEADER && identity.source == Source::Htpasswd).then(|| Entry {
                header: header.to_vec(),
                generation,
                until,
                identity: identity.clone(),
            });
    }

    /// Forgets the memo (a failed authentication on the connection).
    pub fn clear(&self) {
        if let Ok(mut memo) = self.0.lock() {
            *memo = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_only_the_same_bytes_generation_and_time() {
        let m = ConnMemo::default();
        let t0 = Instant::now();
        let id = Arc::new(Identity::new(Source::Htpasswd, "alice"));
        assert!(m.get(b"Basic a", 1, t0).is_none(), "empty");
        m.put(b"Basic a", 1, t0 + Duration::from_secs(5), &id);
        assert_eq!(m.get(b"Basic a", 1, t0), Some(id.clone()));
        assert!(m.get(b"Basic b", 1, t0).is_none(), "other bytes");
        assert!(m.get(b"Basic a ", 1, t0).is_none(), "a prefix is not equal");
        assert!(m.get(b"Basic a", 2, t0).is_none(), "credentials reloaded");
        assert!(
            m.get(b"Basic a", 1, t0 + Duration::from_secs(5)).is_none(),
            "the vouching cache entry expired"
        );
        m.clear();
        assert!(m.get(b"Basic a", 1, t0).is_none(), "cleared");
    }

    #[test]
    fn long_headers_are_not_kept() {
        let m = ConnMemo::default();
        let t0 = Instant::now();
        let id = Arc::new(Identity::new(Source::Htpasswd, "alice"));
        m.put(b"Basic a", 1, t0 + Duration::from_secs(5), &id);
        let long = vec![b'a'; MAX_HEADER + 1];
        m.put(&long, 1, t0 + Duration::from_secs(5), &id);
        assert!(m.get(&long, 1, t0).is_none());
        assert!(
            m.get(b"Basic a", 1, t0).is_none(),
            "the old one is forgotten"
        );
        // Only htpasswd identities: a token's or another source's is never kept.
        let token = Arc::new(Identity::new(Source::Token, "ci"));
        m.put(b"Bearer t", 1, t0 + Duration::from_secs(5), &token);
        assert!(m.get(b"Bearer t", 1, t0).is_none());
    }
}
