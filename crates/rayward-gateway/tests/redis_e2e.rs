//! Two gateway replicas (in-process) sharing a real Redis (Debian's `redis-server`, path
//! from RAYWARD_REDIS_SERVER): failed logins on one replica lock out on the other, a
//! session cookie issued by one is accepted by the other, a logout on one revokes the
//! session on the other, and a Redis outage falls back to per-replica memory instead of
//! locking everyone out. Run by scripts/test.sh.

use crate::common;

use common::*;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WINDOW_MS: i64 = 900_000;

/// A redis-server on 127.0.0.1 with persistence off, stopped on drop.
struct RedisServer {
    bin: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        let bin = std::env::var("RAYWARD_REDIS_SERVER").unwrap_or_else(|_| {
            panic!("RAYWARD_REDIS_SERVER must name a redis-server binary (scripts/test.sh sets it)")
        });
        assert!(
            std::path::Path::new(&bin).is_file(),
            "RAYWARD_REDIS_SERVER={bin}: no such file"
        );
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer {
            bin,
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query(&mut self.conn()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two replicas with one config: same users, same session key, same Redis.
struct Pair {
    a: GatewayGuard,
    b: GatewayGuard,
    _up: Upstream,
    _dir: tempfile::TempDir,
}

async fn pair(redis: &RedisServer) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let key = dir.path().join("session.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let up = upstream().await;
    let extra = format!(
        r#"[network]
trusted_proxies = ["127.0.0.1"]
[limits]
failed_login_threshold = 3
failed_login_base_lock_secs = 60
failed_login_max_lock_secs = 600
[ratelimit]
redis = "{url}"
redis_timeout_ms = 200
[session]
key_file = "{key}"
"#,
        url = redis.url(),
        key = key.display()
    );
    let text = config(dir.path(), &format!("http://{}", up.addr), &tok, &extra);
    let a = start_gateway(&text).await;
    let b = start_gateway(&text).await;
    Pair {
        a,
        b,
        _up: up,
        _dir: dir,
    }
}

/// GET /api/jobs/ as `user` from the client address `from` (via X-Forwarded-For).
async fn try_login(gw: SocketAddr, user: &str, pw: &str, from: &str) -> Raw {
    raw(
        gw,
        &get(
            "/api/jobs/",
            Some(&basic(user, pw)),
            &format!("X-Forwarded-For: {from}\r\n"),
        ),
    )
    .await
}

async fn store_errors(gw: SocketAddr) -> u64 {
    let m = raw(gw, &get("/metrics", None, "")).await.body_text();
    m.lines()
        .find_map(|l| l.strip_prefix("rayward_gateway_login_store_errors_total "))
        .unwrap_or_else(|| panic!("no store error counter in:\n{m}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; run by scripts/test.sh"]
async fn redis_e2e_failures_on_one_replica_lock_out_on_the_other() {
    let redis = RedisServer::start();
    let p = pair(&redis).await;

    // Three wrong passwords for alice from 10.0.0.1, all on replica A.
    for _ in 0..3 {
        assert_eq!(
            try_login(p.a.addr, "alice", "wrong", "10.0.0.1")
                .await
                .status,
            401
        );
    }
    // Replica B has seen none of them, yet alice is locked out there, from anywhere …
    let r = try_login(p.b.addr, "alice", ALICE_PW, "10.0.0.2").await;
    assert_eq!(r.status, 429, "{}", r.head);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // … and so is the source address, for every user.
    assert_eq!(
        try_login(p.b.addr, "vic", VIC_PW, "10.0.0.1").await.status,
        429
    );
    // Other users from other addresses are not affected.
    assert_eq!(
        try_login(p.b.addr, "vic", VIC_PW, "10.0.0.3").await.status,
        200
    );

    // The counters are Redis keys whose TTL is the forgetting window.
    for key in ["rayward:login:user:alice", "rayward:login:src:10.0.0.1"] {
        let ttl = redis.pttl(key);
        assert!(
            ttl > WINDOW_MS - 60_000 && ttl <= WINDOW_MS,
            "{key}: PTTL {ttl}"
        );
    }
    // A success clears the user's and the source's counters everywhere.
    assert_eq!(
        try_login(p.a.addr, "vic", "wrong", "10.0.0.4").await.status,
        401
    );
    assert!(redis.pttl("rayward:login:user:vic") > 0);
    assert_eq!(
        try_login(p.b.addr, "vic", VIC_PW, "10.0.0.4").await.status,
        200
    );
    assert_eq!(redis.pttl("rayward:login:user:vic"), -2, "key deleted");
    assert_eq!(redis.pttl("rayward:login:src:10.0.0.4"), -2, "key deleted");

    assert_eq!(store_errors(p.a.admin).await, 0);
    assert_eq!(store_errors(p.b.admin).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; run by scripts/test.sh"]
async fn redis_e2e_sessions_signed_by_one_replica_work_on_the_other() {
    let redis = RedisServer::start();
    let p = pair(&redis).await;
    // The form from B, posted to A: the CSRF token is signed with the shared key too.
    let (c, t) = login_form(p.b.addr).await;
    let r = raw(p.a.addr, &login_post("ada", ADA_PW, Some((&c, &t)), "")).await;
    assert_eq!(r.status, 303, "{}", r.head);
    let cookie = r.header("set-cookie").unwrap();
    let value = cookie.split(';').next().unwrap().to_string();
    assert!(value.starts_with("rayward_session="), "{cookie}");

    let with_cookie = |v: &str| get("/api/jobs/", None, &format!("Cookie: {v}\r\n"));
    let r = raw(p.b.addr, &with_cookie(&value)).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_text(), "GET /api/jobs/");
    // A cookie B did not sign (tampered user) is refused.
    let forged = value.replacen("rayward_session=", "rayward_session=Y", 1);
    assert_eq!(raw(p.b.addr, &with_cookie(&forged)).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; run by scripts/test.sh"]
async fn redis_e2e_logout_on_one_replica_revokes_the_session_on_the_other() {
    let redis = RedisServer::start();
    let p = pair(&redis).await;
    let s1 = login(p.a.addr, "ada", ADA_PW).await;
    let s2 = login(p.a.addr, "ada", ADA_PW).await;
    let with_cookie = |v: &str| get("/api/jobs/", None, &format!("Cookie: {v}\r\n"));
    for s in [&s1, &s2] {
        assert_eq!(raw(p.b.addr, &with_cookie(s)).await.status, 200);
    }
    // Logout of s1 on B (where it was not issued).
    let logout = format!(
        "POST /rayward/logout HTTP/1.1\r\nHost: gw\r\nCookie: {s1}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = raw(p.b.addr, logout.as_bytes()).await;
    assert_eq!(r.status, 303, "{}", r.head);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    // The replayed cookie is refused on both replicas; the other session lives on.
    for gw in [p.a.addr, p.b.addr] {
        assert_eq!(raw(gw, &with_cookie(&s1)).await.status, 401, "{gw}");
        assert_eq!(raw(gw, &with_cookie(&s2)).await.status, 200, "{gw}");
    }
    // The record is a Redis key that lapses with the cookie (8 h default TTL).
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("rayward:revoked:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl = redis.pttl(&keys[0]);
    assert!(
        ttl > 8 * 3600 * 1000 - 60_000 && ttl <= 8 * 3600 * 1000,
        "{ttl}"
    );
    assert_eq!(store_errors_named(p.a.admin, "session").await, 0);
    assert_eq!(store_errors_named(p.b.admin, "session").await, 0);
}

async fn store_errors_named(gw: SocketAddr, what: &str) -> u64 {
    let m = raw(gw, &get("/metrics", None, "")).await.body_text();
    let name = format!("rayward_gateway_{what}_store_errors_total ");
    m.lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; run by scripts/test.sh"]
async fn redis_e2e_outage_falls_back_to_per_replica_memory() {
    let mut redis = RedisServer::start();
    let p = pair(&redis).await;
    assert_eq!(
        try_login(p.a.addr, "vic", VIC_PW, "10.0.2.1").await.status,
        200
    );

    redis.stop();
    // Redis is down: B still limits guessing with its own counters …
    for _ in 0..3 {
        assert_eq!(
            try_login(p.b.addr, "vic", "wrong", "10.0.2.2").await.status,
            401
        );
    }
    assert_eq!(
        try_login(p.b.addr, "vic", VIC_PW, "10.0.2.3").await.status,
        429
    );
    // … while A, which saw no failure, does not lock anyone out: no global lockout.
    assert_eq!(
        try_login(p.a.addr, "vic", VIC_PW, "10.0.2.3").await.status,
        200
    );
    assert!(store_errors(p.b.admin).await >= 4);
    assert!(store_errors(p.a.admin).await >= 1);

    // Redis comes back on the same port: the replicas share counters again. (While A
    // reconnects, its memory may still decide: 401 or 429.)
    redis.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    loop {
        n += 1;
        let from = format!("10.0.3.{n}");
        let s = try_login(p.a.addr, "ada", "wrong", &from).await.status;
        assert!(s == 401 || s == 429, "{s}");
        if redis.pttl("rayward:login:user:ada") > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica A never reached Redis again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut locked_on_a = false;
    for _ in 0..5 {
        let s = try_login(p.a.addr, "ada", "wrong", "10.0.4.1").await.status;
        assert!(s == 401 || s == 429, "{s}");
        if s == 429 {
            locked_on_a = true;
            break;
        }
    }
    assert!(locked_on_a, "ada never locked on A");
    // B never saw ada fail; the lock comes from Redis.
    assert_eq!(
        try_login(p.b.addr, "ada", ADA_PW, "10.0.4.2").await.status,
        429
    );
}
