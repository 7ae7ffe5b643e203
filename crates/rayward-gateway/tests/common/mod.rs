//! Shared helpers for the gateway's integration tests: a gateway built from a config
//! string, and a raw-TCP HTTP client that sends bytes exactly as written (so nothing
//! normalises a crafted request on its way out).

#![allow(dead_code)]

pub mod ray;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::TcpStream;

pub const ALICE_PW: &str = "Alice-Secret1";
pub const VIC_PW: &str = "Vic-Secret22";
pub const ADA_PW: &str = "myPassword";
pub const CI_TOKEN: &str = "rwt_ci_0123456789abcdef";

/// Writes an htpasswd file with alice (bcrypt $2y$), vic (bcrypt) and ada (apr1).
pub fn write_htpasswd(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("htpasswd");
    let a = bcrypt::hash(ALICE_PW, 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let v = bcrypt::hash(VIC_PW, 4).unwrap();
    std::fs::write(
        &p,
        format!("alice:{a}\nvic:{v}\nada:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"),
    )
    .unwrap();
    p
}

/// A config for a gateway on 127.0.0.1:0 in front of `upstream`, with alice submitter,
/// vic viewer, ada admin, the `ci` token user as submitter and the OIDC user
/// `olga@corp.test` as admin. `extra` is appended; its
/// lines before its first `[table]` are top-level keys and go first.
pub fn config(dir: &Path, upstream: &str, ray_token_file: &Path, extra: &str) -> String {
    let split = if extra.starts_with('[') {
        0
    } else {
        extra.find("\n[").map(|i| i + 1).unwrap_or(extra.len())
    };
    let (top, extra) = extra.split_at(split);
    let h = write_htpasswd(dir);
    let audit = dir.join("audit.jsonl");
    format!(
        r#"
{top}
listen = "127.0.0.1:0"
{admin}
upstream = "{upstream}"
ray_token = {{ file = "{tok}" }}

[auth]
htpasswd = "{h}"
cache_ttl_secs = 60
[[auth.tokens]]
user = "ci"
sha256 = "{ci}"
expires = "2099-01-01T00:00:00Z"
[[auth.tokens]]
user = "ci"
sha256 = "{old}"
expires = "2001-01-01T00:00:00Z"

[users]
alice = "submitter"
vic = "viewer"
ada = "admin"
ci = "submitter"
"oidc:olga@corp.test" = "admin"

[audit]
path = "{audit}"
{extra}
"#,
        tok = ray_token_file.display(),
        h = h.display(),
        ci = rayward_gateway::authn::token::digest_hex(CI_TOKEN),
        old = rayward_gateway::authn::token::digest_hex("rwt_expired"),
        audit = audit.display(),
        admin = if top.contains("admin_listen") {
            ""
        } else {
            "admin_listen = \"127.0.0.1:0\""
        },
    )
}

/// Aborts the gateway task when dropped.
pub struct GatewayGuard {
    pub addr: SocketAddr,
    /// The admin listener: /healthz, /readyz, /metrics.
    pub admin: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GatewayGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_gateway(config_text: &str) -> GatewayGuard {
    let cfg = rayward_gateway::Config::parse(config_text, "test.toml").expect("config");
    let server = rayward_gateway::Server::bind(&cfg).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr().unwrap();
    let task = tokio::spawn(server.serve());
    GatewayGuard { addr, admin, task }
}

pub fn basic(user: &str, pw: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// A parsed raw response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Whether [`get`] leaves the connection open, so that the gateway's relay serves it
/// instead of hyper (`RAYWARD_TEST_KEEPALIVE=1`; scripts/test.sh runs the attack suite
/// both ways: an attacker picks the path).
pub fn keepalive() -> bool {
    std::env::var_os("RAYWARD_TEST_KEEPALIVE").is_some()
}

/// Sends `request` verbatim and reads the first response (status 0 when the server
/// closed without answering). The request should carry `Connection: close`, and then
/// everything until the server closes is read; a request without it (as [`get`] writes
/// under [`keepalive`]) gets one answer read by its framing.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let closes = String::from_utf8_lossy(request)
        .to_ascii_lowercase()
        .contains("connection: close");
    if closes {
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    } else {
        let head_request = request.starts_with(b"HEAD ");
        let _ = tokio::time::timeout(
            Duration::from_secs(20),
            read_one(&mut s, &mut buf, head_request),
        )
        .await;
    }
    parse_response(&buf)
}

/// Reads one answer: its head, then `Content-Length` bytes, a chunked body to its last
/// chunk, or everything until the server closes.
async fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) {
    let mut chunk = [0u8; 16 * 1024];
    let done = |buf: &[u8]| -> bool {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let body = &buf[end + 4..];
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return true;
        }
        if let Some(n) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            return body.len() >= n;
        }
        if head
            .lines()
            .any(|l| l.starts_with("transfer-encoding: chunked"))
        {
            return body.starts_with(b"0\r\n\r\n")
                || body.windows(7).any(|w| w == b"\r\n0\r\n\r\n");
        }
        false
    };
    while !done(buf) {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub fn parse_response(buf: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(buf);
    let Some(end) = text.find("\r\n\r\n") else {
        return Raw {
            status: 0,
            head: text.into_owned(),
            body: Vec::new(),
        };
    };
    let head = text[..end].to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Raw { status, head, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < pos + 2 + size {
            break;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + size]);
        b = &b[(pos + 4 + size).min(b.len())..];
    }
    out
}

/// A simple request with `Connection: close` (none under [`keepalive`]) and optional
/// extra header lines.
pub fn get(path: &str, auth: Option<&str>, extra: &str) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let close = if keepalive() {
        ""
    } else {
        "Connection: close\r\n"
    };
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\n{auth}{extra}{close}\r\n").into_bytes()
}

/// An upstream that answers 200 (`METHOD TARGET`) to everything and counts what reaches it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handle` over HTTP/1.1 (upgrades allowed) on 127.0.0.1 at a free port: the real
/// upstream the gateway tests put behind the gateway. Abort the task to stop it.
pub async fn serve_local<F, Fut, B>(handle: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { break };
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, task)
}

pub async fn upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let (addr, task) = serve_local(move |req: http::Request<_>| {
        h.fetch_add(1, Ordering::SeqCst);
        let body = format!("{} {}", req.method(), req.uri());
        async move { http::Response::new(Full::new(Bytes::from(body))) }
    })
    .await;
    Upstream { addr, hits, task }
}

/// A login form as a browser gets it: `GET /rayward/login`, returning the CSRF nonce
/// cookie (`name=value`) and the form's hidden token.
pub async fn login_form(addr: SocketAddr) -> (String, String) {
    let r = raw(addr, &get("/rayward/login", None, "")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r
        .header("set-cookie")
        .expect("CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = r.body_text();
    let token = page
        .split("name=csrf value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("CSRF field")
        .to_string();
    (cookie, token)
}

/// The raw login POST; `csrf` is (cookie, token) from [`login_form`], `extra` more header lines.
pub fn login_post(user: &str, pw: &str, csrf: Option<(&str, &str)>, extra: &str) -> Vec<u8> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (cookie, field) = match csrf {
        Some((c, t)) => (format!("Cookie: {c}\r\n"), format!("&csrf={}", enc(t))),
        None => (String::new(), String::new()),
    };
    let form = format!("user={}&password={}{field}", enc(user), enc(pw));
    format!(
        "POST /rayward/login HTTP/1.1\r\nHost: gw\r\n{cookie}{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .into_bytes()
}

/// Logs in through the form; returns the session cookie (`rayward_session=…`).
pub async fn login(addr: SocketAddr, user: &str, pw: &str) -> String {
    let (c, t) = login_form(addr).await;
    let r = raw(addr, &login_post(user, pw, Some((&c, &t)), "")).await;
    assert_eq!(r.status, 303, "{r:?}");
    r.header("set-cookie")
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}
