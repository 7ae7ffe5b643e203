//! Two `rayward history serve` replicas (the binary, real sockets) sharing a real Redis
//! (`[shared] redis`; Debian's `redis-server`, `RAYWARD_REDIS_SERVER`): a session logged
//! out on one is refused by the other, and failed logins on one lock the user out on the
//! other. The same code as the gateway's (`rayward_auth::shared`). Run by scripts/test.sh
//! (redis_e2e stage).

use crate::history_gateway::login;
use crate::history_serve::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server on 127.0.0.1 with persistence off, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis() -> Redis {
    let bin = std::env::var("RAYWARD_REDIS_SERVER")
        .expect("RAYWARD_REDIS_SERVER must name a redis-server binary (scripts/test.sh sets it)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pong = TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut s| {
                s.write_all(b"PING\r\n").ok()?;
                let mut b = [0u8; 7];
                s.read_exact(&mut b).ok()?;
                Some(b)
            });
        if pong.as_ref().map(|b| &b[..]) == Some(b"+PONG\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Redis {
        child,
        port,
        _dir: dir,
    }
}

#[test]
#[ignore = "needs redis-server; run by scripts/test.sh"]
fn redis_e2e_two_serve_replicas_share_logouts_and_failed_logins() {
    let r = redis();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let cfg = write_config(
        d.path(),
        &store,
        &format!(
            "[shared]\nredis = \"redis://127.0.0.1:{}/\"\ntimeout_ms = 500\n",
            r.port
        ),
    );
    let (a, b) = (start(&cfg), start(&cfg));
    let jobs = format!("/clusters/team-a/rayjob/train/{S1}/api/jobs/");

    // A session from A works on B (the same key) until it is logged out on A.
    let cookie = login(a.addr, "alice", "Secret-Pass1");
    assert_eq!(get(b.addr, &jobs, &cookie).0, 200);
    let (st, _, _) = raw(
        a.addr,
        &format!(
            "POST /rayward/logout HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(st, 303);
    assert_eq!(get(a.addr, &jobs, &cookie).0, 401, "revoked on A");
    assert_eq!(
        get(b.addr, &jobs, &cookie).0,
        401,
        "and on B, through Redis"
    );

    // Five failed logins for bob on A: bob is locked out on B, even with his password.
    let wrong = format!(
        "Authorization: Basic {}\r\n",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "bob:wrong-password"
        )
    );
    for _ in 0..5 {
        assert_eq!(get(a.addr, &jobs, &wrong).0, 401);
    }
    let (st, h, _) = get(b.addr, &jobs, &basic("bob"));
    assert_eq!(st, 429, "locked out on B");
    assert!(header(&h, "retry-after").is_some());
    // The store-error counter stayed at zero: Redis answered every call.
    let (_, _, m) = get(b.admin, "/metrics", "");
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("rayward_history_serve_shared_store_errors_total 0"),
        "{m}"
    );
}
