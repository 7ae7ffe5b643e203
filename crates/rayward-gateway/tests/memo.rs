//! The per-connection memo of the last verified `Authorization` header
//! (`rayward_gateway::memo`) answers nothing that asking again would not: on the SAME
//! keep-alive connection, the next request after a password change or a user's removal
//! is refused, a lockout and the rate limit still apply, and another credential is judged
//! on its own. Everything through the real socket, one connection held open.

use crate::common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Env {
    gw: GatewayGuard,
    up: Upstream,
    dir: tempfile::TempDir,
}

async fn env(limits: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let up = upstream().await;
    let text = config(
        dir.path(),
        &format!("http://{}", up.addr),
        &tok,
        &format!("[limits]\n{limits}"),
    );
    let gw = start_gateway(&text).await;
    Env { gw, up, dir }
}

impl Env {
    fn hits(&self) -> usize {
        self.up.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Polls with new connections until `auth` gets 401: the htpasswd file was re-read
    /// (the gateway polls it every second).
    async fn until_refused(&self, auth: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while raw(self.gw.addr, &get("/api/jobs/", Some(auth), ""))
            .await
            .status
            != 401
        {
            assert!(Instant::now() < deadline, "the file was not re-read");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Rewrites the htpasswd file line by line (a later second first: a new mtime).
    async fn edit_htpasswd(&self, f: impl Fn(&str) -> Option<String>) {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let path = self.dir.path().join("htpasswd");
        let text = std::fs::read_to_string(&path).unwrap();
        let out: String = text
            .lines()
            .filter_map(|l| f(l).map(|l| l + "\n"))
            .collect();
        std::fs::write(&path, out).unwrap();
    }
}

/// One keep-alive connection: requests one at a time, each answer read whole.
struct Conn(TcpStream);

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        Conn(TcpStream::connect(addr).await.expect("connect"))
    }

    /// `GET /api/jobs/` with `auth`; the status (0 if the connection was closed).
    async fn get(&mut self, auth: &str) -> u16 {
        let req = format!("GET /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n\r\n");
        if self.0.write_all(req.as_bytes()).await.is_err() {
            return 0;
        }
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        let read = async {
            while !buf.ends_with(b"\r\n\r\n") {
                if self.0.read(&mut byte).await.ok()? == 0 {
                    return None;
                }
                buf.push(byte[0]);
            }
            let r = parse_response(&buf);
            let len: usize = r.header("content-length")?.parse().ok()?;
            let mut body = vec![0u8; len];
            self.0.read_exact(&mut body).await.ok()?;
            Some(r.status)
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_or_removed_user_is_refused_on_the_same_connection() {
    let e = env("failed_login_threshold = 1000\n").await;
    let alice = basic("alice", ALICE_PW);
    let vic = basic("vic", VIC_PW);
    let mut a = Conn::open(e.gw.addr).await;
    let mut v = Conn::open(e.gw.addr).await;
    for _ in 0..3 {
        assert_eq!(a.get(&alice).await, 200);
        assert_eq!(v.get(&vic).await, 200);
    }
    assert_eq!(e.hits(), 6);

    // vic's line goes, alice's password changes.
    let new_hash = bcrypt::hash("New-Alice-Pass9", 4).unwrap();
    e.edit_htpasswd(|l| {
        if l.starts_with("vic:") {
            None
        } else if l.starts_with("alice:") {
            Some(format!("alice:{new_hash}"))
        } else {
            Some(l.to_string())
        }
    })
    .await;
    e.until_refused(&alice).await;
    let hits = e.hits(); // the polls above got through until the file was re-read
    assert_eq!(
        a.get(&alice).await,
        401,
        "the old password, same connection"
    );
    assert_eq!(v.get(&vic).await, 401, "the removed user, same connection");
    assert_eq!(e.hits(), hits, "nothing reached Ray");

    // The new password works on a connection, and again from its memo.
    let mut a = Conn::open(e.gw.addr).await;
    let fresh = basic("alice", "New-Alice-Pass9");
    assert_eq!(a.get(&fresh).await, 200);
    assert_eq!(a.get(&fresh).await, 200);
    assert_eq!(e.hits(), hits + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_applies_on_the_same_connection() {
    let e = env("failed_login_threshold = 2\nfailed_login_base_lock_secs = 60\n").await;
    let alice = basic("alice", ALICE_PW);
    let mut a = Conn::open(e.gw.addr).await;
    assert_eq!(a.get(&alice).await, 200);
    assert_eq!(a.get(&alice).await, 200);
    // Someone else guesses alice's password until she is locked out.
    let wrong = basic("alice", "guess");
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw(e.gw.addr, &get("/api/jobs/", Some(&wrong), ""))
        .await
        .status
        != 429
    {
        assert!(Instant::now() < deadline, "no lockout");
    }
    assert_eq!(a.get(&alice).await, 429, "locked, same connection");
    assert_eq!(e.hits(), 2, "nothing more reached Ray");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_and_other_credentials_still_apply_on_the_same_connection() {
    let e = env("failed_login_threshold = 1000\nrequests_per_second = 0.01\nburst = 3\n").await;
    let alice = basic("alice", ALICE_PW);
    let mut a = Conn::open(e.gw.addr).await;
    assert_eq!(a.get(&alice).await, 200);
    // Another credential on the connection is judged on its own, then alice's again.
    assert_eq!(a.get(&basic("alice", "wrong")).await, 401);
    let mut a = Conn::open(e.gw.addr).await; // a 401 closes the connection
    assert_eq!(a.get(&basic("vic", VIC_PW)).await, 200);
    assert_eq!(a.get(&alice).await, 200);
    assert_eq!(a.get(&alice).await, 200);
    assert_eq!(a.get(&alice).await, 429, "alice's burst of 3 is spent");
    assert_eq!(e.hits(), 4);
}
