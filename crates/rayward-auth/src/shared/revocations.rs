//! Revoked sessions: logout revokes the session's id until the cookie would have expired
//! anyway. Kept in this replica's memory and, when `[ratelimit] redis` is set, in Redis
//! too (`<prefix><id>`, with the cookie's remaining lifetime as TTL), so a cookie logged
//! out on one replica is refused by every replica.
//!
//! Redis down: each check falls back to this replica's memory (revocations made here
//! still hold; those made on other replicas do not until Redis answers again), counted in
//! `rayward_gateway_session_store_errors_total`. Failing closed would log every browser
//! out during an outage; the sessions of removed users and changed passwords end in any
//! case, since that check reads the htpasswd file, not Redis.

use crate::revoke::Revoked;
pub use crate::revoke::MAX_REVOKED;
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;

pub struct Revocations {
    /// This replica's revocations ([`rayward_auth::revoke`], bounded).
    mem: Revoked,
    redis: Option<super::store::Redis>,
    store_errors: Counter,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations::new()
    }
}

impl Revocations {
    /// In memory only.
    pub fn new() -> Revocations {
        Revocations {
            mem: Revoked::new(),
            redis: None,
            store_errors: Counter::default(),
        }
    }

    /// Shares revocations through Redis at `url` (connected lazily).
    pub fn with_redis(
        mut self,
        url: &str,
        prefix: &str,
        timeout: Duration,
        store_errors: Counter,
    ) -> Result<Revocations, String> {
        self.redis = Some(super::store::Redis::open(url, prefix, timeout)?);
        self.store_errors = store_errors;
        Ok(self)
    }

    /// Revokes session `id`, whose cookie expires at `expiry` (unix seconds).
    pub async fn revoke(&self, id: &str, expiry: u64, now: u64) {
        if expiry <= now {
            return;
        }
        self.mem.revoke(id, expiry, now);
        if let Some(r) = &self.redis {
            let mut conn = r.conn.clone();
            let ttl_ms = (expiry - now) * 1000;
            let mut cmd = redis::cmd("SET");
            cmd.arg(format!("{}{id}", r.prefix))
                .arg(1)
                .arg("PX")
                .arg(ttl_ms);
            let set = cmd.query_async::<()>(&mut conn);
            if !matches!(tokio::time::timeout(r.timeout, set).await, Ok(Ok(()))) {
                self.store_error();
            }
        }
    }

    /// Whether session `id` was revoked here or, with Redis, on any replica.
    pub async fn is_revoked(&self, id: &str, now: u64) -> bool {
        if self.mem.is_revoked(id, now) {
            return true;
        }
        let Some(r) = &self.redis else { return false };
        let mut conn = r.conn.clone();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(format!("{}{id}", r.prefix));
        let exists = cmd.query_async::<u64>(&mut conn);
        match tokio::time::timeout(r.timeout, exists).await {
            Ok(Ok(n)) => n > 0,
            _ => {
                self.store_error();
                false
            }
        }
    }

    fn store_error(&self) {
        self.store_errors.inc();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.mem.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoked_until_the_cookie_would_expire() {
        let r = Revocations::new();
        assert!(!r.is_revoked("a", 100).await);
        r.revoke("a", 200, 100).await;
        assert!(r.is_revoked("a", 100).await);
        assert!(r.is_revoked("a", 199).await);
        assert!(
            !r.is_revoked("a", 200).await,
            "the cookie itself has expired"
        );
        assert!(!r.is_revoked("b", 100).await);
        r.revoke("c", 100, 100).await;
        assert_eq!(r.len(), 1, "an expired cookie needs no record");
    }
}
