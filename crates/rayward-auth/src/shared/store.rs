//! The one Redis handle of the shared stores ([`super::logins`], [`super::revocations`]):
//! a lazy connection, the store's key prefix and the bound on each call. Built in one
//! place so both stores connect, and time out, the same way.

use redis::aio::ConnectionManager;
use std::time::Duration;

/// A lazy connection to the `[ratelimit] redis` server, shared by the failed-login
/// counters and the session revocations: one try, bounded by `timeout`, so a Redis that
/// is down at start is the same as one that goes down later.
pub fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, String> {
    let client =
        redis::Client::open(url).map_err(|e| format!("redis: invalid URL ({:?})", e.kind()))?;
    let cfg = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, cfg).map_err(|e| format!("redis: {e}"))
}

/// A store's connection to Redis, its key prefix, and how long one call may take.
pub(crate) struct Redis {
    pub(crate) conn: ConnectionManager,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
}

impl Redis {
    /// Connects lazily to `url` ([`connect`]); keys start with `prefix`.
    pub(crate) fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Redis, String> {
        Ok(Redis {
            conn: connect(url, timeout)?,
            prefix: prefix.to_string(),
            timeout,
        })
    }
}
