//! Sessions that do not outlive their user, and a login form other sites cannot post:
//! logout revokes the cookie, removing the user from the htpasswd file or changing the
//! password ends every session at the next request, and a login POST from another origin
//! or without the form's CSRF token sets no cookie. Everything through the real socket.

use crate::common;

use common::*;
use std::time::{Duration, Instant};

struct Env {
    gw: GatewayGuard,
    up: Upstream,
    dir: tempfile::TempDir,
}

async fn env(extra_session: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let key = dir.path().join("session.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    let up = upstream().await;
    let text = config(
        dir.path(),
        &format!("http://{}", up.addr),
        &tok,
        &format!(
            "[session]\nkey_file = \"{}\"\n{extra_session}[limits]\nfailed_login_threshold = 1000\n",
            key.display()
        ),
    );
    let gw = start_gateway(&text).await;
    Env { gw, up, dir }
}

impl Env {
    async fn with_cookie(&self, cookie: &str) -> u16 {
        raw(
            self.gw.addr,
            &get("/api/jobs/", None, &format!("Cookie: {cookie}\r\n")),
        )
        .await
        .status
    }

    fn hits(&self) -> usize {
        self.up.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the gateway has re-read the htpasswd file (it polls every second).
    async fn until_refused(&self, cookie: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.with_cookie(cookie).await != 401 {
            assert!(Instant::now() < deadline, "the session outlived its user");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn logout(cookie: &str, extra: &str) -> Vec<u8> {
    format!("POST /rayward/logout HTTP/1.1\r\nHost: gw\r\nCookie: {cookie}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_cookie_and_only_that_one() {
    let e = env("").await;
    let one = login(e.gw.addr, "vic", VIC_PW).await;
    let two = login(e.gw.addr, "vic", VIC_PW).await;
    assert_ne!(one, two);
    assert_eq!(e.with_cookie(&one).await, 200);
    // A logout posted by another site is refused and revokes nothing.
    let r = raw(e.gw.addr, &logout(&one, "Sec-Fetch-Site: cross-site\r\n")).await;
    assert_eq!(r.status, 403);
    assert_eq!(e.with_cookie(&one).await, 200);
    let r = raw(
        e.gw.addr,
        &logout(&one, "Origin: http://gw\r\nSec-Fetch-Site: same-origin\r\n"),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        e.with_cookie(&one).await,
        401,
        "the logged-out cookie replayed"
    );
    assert_eq!(
        e.with_cookie(&two).await,
        200,
        "another login's session lives on"
    );
    let hits = e.hits();
    // The browser asking for a page is sent to the form again.
    let r = raw(
        e.gw.addr,
        &get(
            "/",
            None,
            &format!("Accept: text/html\r\nCookie: {one}\r\n"),
        ),
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(e.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_user_or_changing_the_password_ends_the_session() {
    let e = env("").await;
    let vic = login(e.gw.addr, "vic", VIC_PW).await;
    let alice = login(e.gw.addr, "alice", ALICE_PW).await;
    assert_eq!(e.with_cookie(&vic).await, 200);
    assert_eq!(e.with_cookie(&alice).await, 200);
    let path = e.dir.path().join("htpasswd");
    let text = std::fs::read_to_string(&path).unwrap();

    // vic's line goes (a new mtime needs a later second on some filesystems).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let without_vic: String = text
        .lines()
        .filter(|l| !l.starts_with("vic:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, &without_vic).unwrap();
    e.until_refused(&vic).await;
    assert_eq!(e.with_cookie(&alice).await, 200, "other users keep theirs");

    // alice's password changes: her old session ends, a new login works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_hash = bcrypt::hash("New-Alice-Pass9", 4).unwrap();
    let changed: String = without_vic
        .lines()
        .map(|l| {
            if l.starts_with("alice:") {
                format!("alice:{new_hash}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, changed).unwrap();
    e.until_refused(&alice).await;
    let again = login(e.gw.addr, "alice", "New-Alice-Pass9").await;
    assert_eq!(e.with_cookie(&again).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_tokenless_logins_set_no_cookie() {
    let e = env("").await;
    let a = e.gw.addr;
    let (nonce, token) = login_form(a).await;
    let (nonce2, token2) = login_form(a).await;
    let good = Some((nonce.as_str(), token.as_str()));
    for (what, req) in [
        ("no token, no nonce", login_post("ada", ADA_PW, None, "")),
        (
            "token of another form",
            login_post("ada", ADA_PW, Some((&nonce, &token2)), ""),
        ),
        (
            "nonce of another form",
            login_post("ada", ADA_PW, Some((&nonce2, &token)), ""),
        ),
        (
            "token without its cookie",
            login_post("ada", ADA_PW, Some(("x=1", &token)), ""),
        ),
        (
            "forged token",
            login_post("ada", ADA_PW, Some((&nonce, "AAAA")), ""),
        ),
        (
            "another site's page (Sec-Fetch-Site)",
            login_post("ada", ADA_PW, good, "Sec-Fetch-Site: cross-site\r\n"),
        ),
        (
            "a sibling site (Sec-Fetch-Site)",
            login_post("ada", ADA_PW, good, "Sec-Fetch-Site: same-site\r\n"),
        ),
        (
            "another origin",
            login_post("ada", ADA_PW, good, "Origin: https://evil.example\r\n"),
        ),
        (
            "an opaque origin",
            login_post("ada", ADA_PW, good, "Origin: null\r\n"),
        ),
        (
            "the right host, the wrong scheme",
            login_post("ada", ADA_PW, good, "Origin: https://gw\r\n"),
        ),
        (
            "two origins",
            login_post(
                "ada",
                ADA_PW,
                good,
                "Origin: http://gw\r\nOrigin: http://gw\r\n",
            ),
        ),
    ] {
        let r = raw(a, &req).await;
        assert_eq!(r.status, 403, "{what}: {r:?}");
        assert!(r.header("set-cookie").is_none(), "{what}: {r:?}");
    }
    // The same form from its own origin logs in (browser headers, or none: curl).
    let r = raw(
        a,
        &login_post(
            "ada",
            ADA_PW,
            good,
            "Origin: http://gw\r\nSec-Fetch-Site: same-origin\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(r
        .header("set-cookie")
        .unwrap()
        .starts_with("rayward_session="));
    let r = raw(a, &login_post("ada", ADA_PW, good, "")).await;
    assert_eq!(r.status, 303, "{r:?}");
    // The refusals are audited, without the password.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(e.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(log.matches("CSRF token").count(), 5, "{log}");
    assert_eq!(
        log.matches("cross-site request refused").count(),
        6,
        "{log}"
    );
    assert!(!log.contains(ADA_PW));
    assert_eq!(e.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_login_origins_replace_the_host_check() {
    let e = env("login_origins = [\"https://ray.example.com\"]\n").await;
    let (nonce, token) = login_form(e.gw.addr).await;
    let good = Some((nonce.as_str(), token.as_str()));
    let r = raw(
        e.gw.addr,
        &login_post("ada", ADA_PW, good, "Origin: http://gw\r\n"),
    )
    .await;
    assert_eq!(r.status, 403, "the Host no longer counts");
    let r = raw(
        e.gw.addr,
        &login_post("ada", ADA_PW, good, "Origin: https://ray.example.com\r\n"),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
}
