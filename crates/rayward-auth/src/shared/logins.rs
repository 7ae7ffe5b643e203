//! Failed-login backoff for the whole server, not one replica: when Redis is configured
//! (the gateway's `[ratelimit] redis`, history serve's `[shared] redis`), the counters
//! live in Redis, so an attacker spreading guesses over replicas behind one Service is
//! slowed as if there were one server.
//!
//! Each key (`<prefix>src:<address>`, `<prefix>user:<name>`) is a hash `{count, until}`
//! updated by one Lua script: the increment, the lock deadline and the TTL (the
//! forgetting window) are applied atomically, and time is Redis's own `TIME`, so replicas
//! with skewed clocks agree.
//!
//! **Redis down: fall back, per replica.** Failing closed would turn a Redis outage into a
//! lockout of every user; failing open entirely would remove the brake on guessing. So
//! every failure is also counted in this replica's memory, and while Redis does not answer
//! (within `redis_timeout_ms`) the in-memory counters decide: guessing is still limited
//! per replica (at worst N replicas × the threshold), nobody is locked out by the outage,
//! each fallback is counted in `rayward_gateway_login_store_errors_total` and logged (at
//! most every 10 s).

use crate::backoff::FailedLogins;
use prometheus_client::metrics::counter::Counter;
use redis::Script;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records one failure on every key; returns the longest lock it starts, in ms.
const FAIL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local threshold = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local longest = 0
for _, key in ipairs(KEYS) do
  local count = redis.call('HINCRBY', key, 'count', 1)
  if count >= threshold then
    local lock = math.floor(math.min(base * 2 ^ math.min(count - threshold, 20), max))
    redis.call('HSET', key, 'until', string.format('%d', now + lock))
    if lock > longest then longest = lock end
  end
  redis.call('PEXPIRE', key, window)
end
return longest
";

/// The longest remaining lock over the keys in ms (0: none), and 1 if any key holds a
/// counter (so a success has something to clear).
const LOCKED: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
local counted = 0
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'count', 'until')
  if v[1] then counted = 1 end
  local u = tonumber(v[2] or '0')
  if u and u - now > longest then longest = u - now end
end
return {longest, counted}
";

struct RedisStore {
    /// Connection, key prefix and timeout ([`super::store::Redis`], as revocations).
    redis: super::store::Redis,
    fail: Script,
    locked: Script,
    /// threshold, base ms, max ms, window ms.
    args: [u64; 4],
    last_log: Mutex<Option<Instant>>,
}

/// What [`LoginLimiter::locked`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockState {
    /// Locked out for this long.
    pub wait: Option<Duration>,
    /// Some counter exists, so a success should clear it (saves Redis a `DEL` per
    /// request when nothing failed).
    pub counted: bool,
}

/// Failed logins per source address and per user name: in memory, and in Redis when one
/// is configured.
pub struct LoginLimiter {
    by_source: FailedLogins<IpAddr>,
    by_user: FailedLogins<String>,
    redis: Option<RedisStore>,
    store_errors: Counter,
}

impl LoginLimiter {
    /// In memory only.
    pub fn new(threshold: u32, base: Duration, max: Duration) -> LoginLimiter {
        LoginLimiter {
            by_source: FailedLogins::new(threshold, base, max),
            by_user: FailedLogins::new(threshold, base, max),
            redis: None,
            store_errors: Counter::default(),
        }
    }

    /// Shares the counters through Redis at `url`. Connects lazily: a Redis that is down
    /// at start is the same as one that goes down later.
    pub fn with_redis(
        mut self,
        url: &str,
        prefix: &str,
        timeout: Duration,
        store_errors: Counter,
    ) -> Result<LoginLimiter, String> {
        let redis = super::store::Redis::open(url, prefix, timeout)?;
        let window = self.by_source.window;
        self.redis = Some(RedisStore {
            redis,
            fail: Script::new(FAIL),
            locked: Script::new(LOCKED),
            args: [
                u64::from(self.by_source.threshold),
                self.by_source.base.as_millis() as u64,
                self.by_source.max.as_millis() as u64,
                window.as_millis() as u64,
            ],
            last_log: Mutex::new(None),
        });
        self.store_errors = store_errors;
        Ok(self)
    }

    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether the source, or the user when given, is locked out.
    pub async fn locked(&self, source: IpAddr, user: Option<&str>) -> LockState {
        if let Some(r) = &self.redis {
            let keys = r.keys(source, user);
            match r.run::<Vec<i64>>(&r.locked, &keys, false).await {
                Ok(v) if v.len() == 2 => {
                    return LockState {
                        wait: (v[0] > 0).then(|| Duration::from_millis(v[0] as u64)),
                        counted: v[1] != 0,
                    }
                }
                Ok(v) => self.fell_back(r, &format!("unexpected reply {v:?}")),
                Err(e) => self.fell_back(r, &e),
            }
        }
        let now = Instant::now();
        let a = self.by_source.locked(&source, now);
        let b = user.and_then(|u| self.by_user.locked(u, now));
        LockState {
            wait: a.max(b),
            counted: true,
        }
    }

    /// Records a failed login from `source` (for `user`, when one was named).
    pub async fn fail(&self, source: IpAddr, user: Option<&str>) {
        let now = Instant::now();
        self.by_source.fail(&source, now);
        if let Some(u) = user {
            self.by_user.fail(&u.to_string(), now);
        }
        if let Some(r) = &self.redis {
            let keys = r.keys(source, user);
            if let Err(e) = r.run::<i64>(&r.fail, &keys, true).await {
                self.fell_back(r, &e);
            }
        }
    }

    /// A successful login clears the source's and the user's counters.
    pub async fn succeed(&self, source: IpAddr, user: Option<&str>) {
        self.by_source.succeed(&source);
        if let Some(u) = user {
            self.by_user.succeed(u);
        }
        if let Some(r) = &self.redis {
            let keys = r.keys(source, user);
            let mut conn = r.redis.conn.clone();
            let del = async {
                let cmd = redis::cmd("DEL").arg(&keys).clone();
                match cmd.query_async::<()>(&mut conn).await {
                    Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                        cmd.query_async::<()>(&mut conn).await
                    }
                    other => other,
                }
                .map_err(|e| e.to_string())
            };
            let res = tokio::time::timeout(r.redis.timeout, del)
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            if let Err(e) = res {
                self.fell_back(r, &e);
            }
        }
    }

    fn fell_back(&self, r: &RedisStore, e: &str) {
        self.store_errors.inc();
        let mut last = r.last_log.lock().expect("log lock");
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            eprintln!(
                "rayward: Redis unavailable ({e}); counting failed logins in memory on this replica"
            );
        }
    }
}

impl RedisStore {
    fn keys(&self, source: IpAddr, user: Option<&str>) -> Vec<String> {
        let mut k = vec![format!("{}src:{source}", self.redis.prefix)];
        if let Some(u) = user {
            k.push(format!("{}user:{u}", self.redis.prefix));
        }
        k
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        with_args: bool,
    ) -> Result<T, String> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        if with_args {
            for a in self.args {
                inv.arg(a);
            }
        }
        // One retry: the first command after Redis restarted fails on the dead socket
        // and makes the manager reconnect; the second goes over the new connection.
        let attempt = async {
            let mut conn = self.redis.conn.clone();
            match inv.invoke_async::<T>(&mut conn).await {
                Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                    inv.invoke_async::<T>(&mut conn).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.redis.timeout, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}
