//! The gateway in front of a small real upstream (a hyper server on 127.0.0.1 recording
//! what it receives): credentials stripped, the cluster token injected, the normalised
//! path forwarded, bodies streamed, WebSockets spliced, 5xx bodies replaced, refusals
//! audited, and nothing refused reaching the upstream.

use crate::common;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLUSTER_TOKEN: &str = "cluster-secret-token";

#[derive(Debug, Clone)]
struct Seen {
    #[allow(dead_code)] // shown in failure messages
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body_len: u64,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[derive(Default)]
struct Upstream {
    seen: Mutex<Vec<Seen>>,
    /// Bytes of the current upload received so far.
    upload_progress: AtomicU64,
}

type UBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> UBody {
    Full::new(s.into()).boxed()
}

async fn upstream_handle(up: Arc<Upstream>, mut req: Request<Incoming>) -> Response<UBody> {
    let method = req.method().to_string();
    let target = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if req.headers().contains_key("upgrade") {
        up.seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body_len: 0,
        });
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = on.await {
                let mut io = TokioIo::new(io);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", "test")
            .body(full(""))
            .unwrap();
    }
    let mut body = req.into_body();
    let mut len = 0u64;
    up.upload_progress.store(0, Ordering::SeqCst);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(d) = frame.data_ref() {
            len += d.len() as u64;
            up.upload_progress.store(len, Ordering::SeqCst);
        }
    }
    up.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        headers,
        body_len: len,
    });
    match (method.as_str(), target.as_str()) {
        ("POST", "/api/jobs/") => Response::new(full(
            r#"{"job_id":"raysubmit_XYZ","submission_id":"raysubmit_XYZ"}"#,
        )),
        (_, "/api/cluster_status") => Response::builder()
            .status(500)
            .body(full(
                "Traceback (most recent call last):\n  File \"/home/ray/secret.py\"",
            ))
            .unwrap(),
        (_, "/api/v0/logs/stream") => {
            // Two chunks 300 ms apart: the client must see the first before the second.
            Response::new(slow_body().boxed())
        }
        _ => Response::new(full(format!("{method} {target} {len}"))),
    }
}

/// A body fed from a channel, to stream chunks with pauses between them.
struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn slow_body() -> ChanBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b"first\n")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(Bytes::from_static(b"second\n")).await;
    });
    ChanBody(rx)
}

async fn start_upstream() -> (SocketAddr, Arc<Upstream>, tokio::task::JoinHandle<()>) {
    let up = Arc::new(Upstream::default());
    let up2 = up.clone();
    let (addr, task) = serve_local(move |req| upstream_handle(up2.clone(), req)).await;
    (addr, up, task)
}

struct Env {
    gw: GatewayGuard,
    up_addr: SocketAddr,
    up: Arc<Upstream>,
    up_task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.up_task.abort();
    }
}

impl Env {
    fn seen(&self) -> Vec<Seen> {
        self.up.seen.lock().unwrap().clone()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        // The log is written by its own thread.
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn env(extra: &str) -> Env {
    let (addr, up, up_task) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray-token");
    std::fs::write(&tok, format!("{CLUSTER_TOKEN}\n")).unwrap();
    let text = config(dir.path(), &format!("http://{addr}"), &tok, extra);
    let gw = start_gateway(&text).await;
    Env {
        gw,
        up_addr: addr,
        up,
        up_task,
        dir,
    }
}

#[tokio::test]
async fn strips_client_credentials_and_injects_the_cluster_token() {
    let e = env("").await;
    let req = format!(
        "GET /api/%6aobs/?limit=5 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {}\r\n\
         X-Ray-Authorization: Bearer stolen\r\nCookie: a=1; ray-authentication-token=stolen\r\n\
         X-Forwarded-For: 6.6.6.6\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\r\n",
        basic("vic", VIC_PW)
    );
    let r = raw(e.gw.addr, req.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = e.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(
        s.target, "/api/jobs/?limit=5",
        "normalised path, query kept"
    );
    assert_eq!(s.all("authorization"), [format!("Bearer {CLUSTER_TOKEN}")]);
    assert!(s.all("x-ray-authorization").is_empty());
    assert_eq!(s.all("cookie"), ["a=1"]);
    assert!(s.all("x-forwarded-for").is_empty());
    assert!(s.all("x-secret").is_empty());
    assert_eq!(s.all("host"), [e.up_addr.to_string()]);
    assert_eq!(r.body_text(), "GET /api/jobs/?limit=5 0");
}

#[tokio::test]
async fn unauthenticated_and_unauthorized_requests_never_reach_ray() {
    let e = env("").await;
    let a = e.gw.addr;
    // No credentials: 401 with a Basic challenge.
    let r = raw(a, &get("/api/jobs/", None, "")).await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    // Ray's own credentials are not credentials for the gateway.
    let r = raw(
        a,
        &get(
            "/api/jobs/",
            None,
            &format!("X-Ray-Authorization: Bearer {CLUSTER_TOKEN}\r\n"),
        ),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = raw(
        a,
        &get("/api/jobs/", Some(&format!("Bearer {CLUSTER_TOKEN}")), ""),
    )
    .await;
    assert_eq!(r.status, 401);
    // Wrong password, expired token.
    assert_eq!(
        raw(a, &get("/api/jobs/", Some(&basic("vic", "nope")), ""))
            .await
            .status,
        401
    );
    assert_eq!(
        raw(a, &get("/api/jobs/", Some("Bearer rwt_expired"), ""))
            .await
            .status,
        401
    );
    // A viewer may not submit or stop; nobody may use an unknown route.
    let post = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 24\r\nConnection: close\r\n\r\n{{\"entrypoint\":\"echo hi\"}}",
        basic("vic", VIC_PW)
    );
    assert_eq!(raw(a, post.as_bytes()).await.status, 403);
    assert_eq!(
        raw(
            a,
            &get(
                "/worker/cpu_profile?pid=1",
                Some(&basic("alice", ALICE_PW)),
                ""
            )
        )
        .await
        .status,
        403,
        "profiling is admin"
    );
    assert_eq!(
        raw(
            a,
            &get("/api/job_agent/jobs/", Some(&basic("ada", ADA_PW)), "")
        )
        .await
        .status,
        403,
        "unknown route denied even to admin"
    );
    assert!(e.seen().is_empty(), "{:?}", e.seen());
    // Every refusal is in the audit log, with no secret.
    let log = e.audit();
    assert_eq!(log.len(), 8, "{log:?}");
    let all = serde_json::to_string(&log).unwrap();
    for secret in [VIC_PW, ALICE_PW, CLUSTER_TOKEN, "rwt_expired"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    let viewer_post = log.iter().find(|r| r["method"] == "POST").unwrap();
    assert_eq!(viewer_post["user"], "htpasswd:vic");
    assert_eq!(viewer_post["role"], "viewer");
    assert_eq!(viewer_post["status"], 403);
    assert_eq!(viewer_post["class"], "write");
    assert_eq!(viewer_post["entrypoint"], serde_json::Value::Null);
}

#[tokio::test]
async fn submission_is_forwarded_and_audited_with_entrypoint_and_id() {
    let e = env("").await;
    let body = r#"{"entrypoint":"python script.py","runtime_env":{}}"#;
    let post = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic("alice", ALICE_PW),
        body.len()
    );
    let r = raw(e.gw.addr, post.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body_text().contains("raysubmit_XYZ"));
    // Forwarded with the submitter stamped into its metadata, and a matching length.
    let stamped = rayward_gateway::jobs::stamp(body.as_bytes(), "htpasswd:alice", None).unwrap();
    assert_eq!(e.seen()[0].body_len, stamped.len() as u64);
    assert_eq!(
        e.seen()[0].all("content-length"),
        [stamped.len().to_string()]
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = e.audit();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["user"], "htpasswd:alice");
    assert_eq!(log[0]["role"], "submitter");
    assert_eq!(log[0]["entrypoint"], "python script.py");
    assert_eq!(log[0]["submission_id"], "raysubmit_XYZ");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["source"], "127.0.0.1");
}

/// The issue's finding: a viewer's GET with both framings, a submitter's POST hidden in
/// the body. Refused on the raw bytes with 400 (Ray's own answer), audited, and nothing of
/// it reaches Ray, whichever framing a front proxy would have believed.
#[tokio::test]
async fn ambiguous_framing_is_refused_before_anything_is_forwarded() {
    let e = env("").await;
    let vic = basic("vic", VIC_PW);
    let alice = basic("alice", ALICE_PW);
    let job = r#"{"entrypoint":"echo pwned"}"#;
    let hidden = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{job}",
        job.len()
    );
    let cases = [
        format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}", 5 + hidden.len()),
        format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()),
        format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: {n}\r\nContent-Length: {n}\r\n\r\n{job}", n = job.len()),
        format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{job}", job.len()),
    ];
    for c in &cases {
        let r = raw(e.gw.addr, c.as_bytes()).await;
        assert_eq!(r.status, 400, "{c}: {r:?}");
        assert_eq!(r.header("connection").as_deref(), Some("close"));
    }
    assert!(e.seen().is_empty(), "{:?}", e.seen());
    let log = e.audit();
    assert_eq!(log.len(), cases.len(), "{log:?}");
    assert_eq!(
        log[0]["reason"],
        "both Transfer-Encoding and Content-Length"
    );
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/api/version");
    assert_eq!(log[0]["class"], "denied");
    assert_eq!(log[0]["status"], 400);
    assert_eq!(log[2]["reason"], "more than one Content-Length");
    // A clean request on a fresh connection still works.
    assert_eq!(
        raw(e.gw.addr, &get("/api/version", Some(&vic), ""))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bearer_tokens_and_apr1_work() {
    let e = env("").await;
    let r = raw(
        e.gw.addr,
        &get("/api/version", Some(&format!("Bearer {CI_TOKEN}")), ""),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = raw(
        e.gw.addr,
        &get("/memory_profile", Some(&basic("ada", ADA_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 200, "admin may profile");
    assert_eq!(e.seen().len(), 2);
}

#[tokio::test]
async fn uploads_stream_and_oversized_ones_are_refused() {
    let e = env("[limits]\nmax_body_bytes = 3000000\n").await;
    let mut s = TcpStream::connect(e.gw.addr).await.unwrap();
    let total = 2_000_000usize;
    let head = format!(
        "PUT /api/packages/gcs/_ray_pkg_abc.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n\
         Content-Length: {total}\r\nConnection: close\r\n\r\n",
        basic("alice", ALICE_PW)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'z'; total / 2]).await.unwrap();
    // Before the second half is sent, the upstream already has (part of) the first.
    let mut waited = 0;
    while e.up.upload_progress.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
        assert!(
            waited < 500,
            "upstream saw nothing of the first half: body buffered"
        );
    }
    s.write_all(&vec![b'z'; total / 2]).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let r = parse_response(&buf);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(e.seen()[0].body_len, total as u64);

    // Declared too large: refused before anything is forwarded.
    let big = format!(
        "PUT /api/packages/gcs/_ray_pkg_big.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n\
         Content-Length: 3000001\r\nConnection: close\r\n\r\n",
        basic("alice", ALICE_PW)
    );
    assert_eq!(raw(e.gw.addr, big.as_bytes()).await.status, 413);
    // Chunked past the limit: cut off, answered 413.
    let mut s = TcpStream::connect(e.gw.addr).await.unwrap();
    let head = format!(
        "PUT /api/packages/gcs/_ray_pkg_chunked.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        basic("alice", ALICE_PW)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'y'; 1_000_000];
    let mut buf = Vec::new();
    for _ in 0..4 {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        if s.write_all(&c).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let r = parse_response(&buf);
    assert_eq!(r.status, 413, "{r:?}");
    assert!(
        e.seen().iter().all(|s| s.body_len <= 3_000_000),
        "upstream never got more than the limit"
    );
}

#[tokio::test]
async fn responses_stream() {
    let e = env("").await;
    let mut s = TcpStream::connect(e.gw.addr).await.unwrap();
    s.write_all(&get("/api/v0/logs/stream", Some(&basic("vic", VIC_PW)), ""))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("first") {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the first chunk");
        buf.extend_from_slice(&chunk[..n]);
    }
    let first_at = start.elapsed();
    assert!(
        !String::from_utf8_lossy(&buf).contains("second"),
        "the first chunk arrived alone"
    );
    s.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).contains("second"));
    assert!(first_at < Duration::from_millis(290), "{first_at:?}");
}

#[tokio::test]
async fn ray_5xx_bodies_are_replaced_unless_configured() {
    let e = env("").await;
    let r = raw(
        e.gw.addr,
        &get("/api/cluster_status", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(!r.body_text().contains("Traceback"), "{}", r.body_text());
    assert!(!r.body_text().contains("/home/ray"), "{}", r.body_text());

    let e = env("pass_upstream_errors = true\n").await;
    let r = raw(
        e.gw.addr,
        &get("/api/cluster_status", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(r.body_text().contains("Traceback"), "{}", r.body_text());
}

#[tokio::test]
async fn websocket_is_spliced_only_on_the_log_tail() {
    let e = env("").await;
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let mut s = TcpStream::connect(e.gw.addr).await.unwrap();
    let req = format!(
        "GET /api/jobs/raysubmit_1/logs/tail HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n{ws}\r\n",
        basic("vic", VIC_PW)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping-bytes").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"ping-bytes");
    let seen = e.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].all("authorization"),
        [format!("Bearer {CLUSTER_TOKEN}")]
    );
    assert_eq!(
        seen[0].all("sec-websocket-key"),
        ["dGhlIHNhbXBsZSBub25jZQ=="]
    );

    // Upgrades anywhere else are refused, even for an admin.
    for path in ["/api/jobs/", "/api/jobs/raysubmit_1/logs", "/api/version"] {
        let r = raw(
            e.gw.addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n{ws}\r\n",
                basic("ada", ADA_PW)
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
    }
    assert_eq!(e.seen().len(), 1);
}

#[tokio::test]
async fn failed_logins_back_off_per_user_and_source() {
    let e = env("[limits]\nfailed_login_threshold = 3\nfailed_login_base_lock_secs = 30\n").await;
    for _ in 0..3 {
        let r = raw(
            e.gw.addr,
            &get("/api/version", Some(&basic("vic", "wrong")), ""),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    // Locked now: even the right password is refused with 429 and Retry-After.
    let r = raw(
        e.gw.addr,
        &get("/api/version", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(e.seen().is_empty());
}

#[tokio::test]
async fn per_user_rate_limit() {
    let e = env("[limits]\nrequests_per_second = 0.001\nburst = 2\n").await;
    let auth = basic("vic", VIC_PW);
    assert_eq!(
        raw(e.gw.addr, &get("/api/version", Some(&auth), ""))
            .await
            .status,
        200
    );
    assert_eq!(
        raw(e.gw.addr, &get("/api/version", Some(&auth), ""))
            .await
            .status,
        200
    );
    assert_eq!(
        raw(e.gw.addr, &get("/api/version", Some(&auth), ""))
            .await
            .status,
        429
    );
    // Another user has their own bucket.
    let r = raw(
        e.gw.addr,
        &get("/api/version", Some(&basic("alice", ALICE_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn health_and_metrics() {
    let e = env("").await;
    let r = raw(e.gw.admin, &get("/healthz", None, "")).await;
    assert_eq!((r.status, r.body_text().as_str()), (200, "ok\n"));
    assert!(e.gw.admin.ip().is_loopback());
    raw(e.gw.addr, &get("/api/jobs/", None, "")).await;
    raw(
        e.gw.addr,
        &get("/api/jobs/", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    let m = raw(e.gw.admin, &get("/metrics", None, ""))
        .await
        .body_text();
    assert!(
        m.contains(r#"rayward_gateway_requests_total{class="read",outcome="unauthenticated"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"rayward_gateway_requests_total{class="read",outcome="forwarded"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"rayward_gateway_auth_failures_total{reason="missing"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("rayward_gateway_upstream_latency_seconds_count 1"),
        "{m}"
    );
}

#[tokio::test]
async fn network_deny_list() {
    let e = env("[network]\ndeny = [\"127.0.0.0/8\"]\n").await;
    let r = raw(
        e.gw.addr,
        &get("/api/version", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 403);
    // The public port has no /metrics or /healthz of its own any more: the filter
    // refuses them like any request; the admin listener is not filtered (loopback).
    assert_eq!(raw(e.gw.addr, &get("/metrics", None, "")).await.status, 403);
    assert_eq!(raw(e.gw.addr, &get("/healthz", None, "")).await.status, 403);
    assert_eq!(
        raw(e.gw.admin, &get("/healthz", None, "")).await.status,
        200
    );
    assert!(e.seen().is_empty());
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let e = env("").await;
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let r = raw(
        e.gw.addr,
        &get("/api/version", Some(&basic("vic", VIC_PW)), &big),
    )
    .await;
    assert_eq!(r.status, 431, "{r:?}");
    assert!(e.seen().is_empty());
}

#[tokio::test]
async fn a_rotated_ray_token_file_is_used_without_restart() {
    let e = env("").await;
    let auth = basic("vic", VIC_PW);
    assert_eq!(
        raw(e.gw.addr, &get("/api/version", Some(&auth), ""))
            .await
            .status,
        200
    );
    std::fs::write(e.dir.path().join("ray-token"), "rotated-token\n").unwrap();
    let mut seen_new = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        raw(e.gw.addr, &get("/api/version", Some(&auth), "")).await;
        let last = e.seen().last().unwrap().all("authorization");
        if last == ["Bearer rotated-token"] {
            seen_new = true;
            break;
        }
        assert_eq!(last, [format!("Bearer {CLUSTER_TOKEN}")]);
    }
    assert!(seen_new, "the new token was never sent");
    // An emptied file keeps the previous token in force.
    std::fs::write(e.dir.path().join("ray-token"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    raw(e.gw.addr, &get("/api/version", Some(&auth), "")).await;
    assert_eq!(
        e.seen().last().unwrap().all("authorization"),
        ["Bearer rotated-token"]
    );
}

#[tokio::test]
async fn browser_login_gives_a_signed_session_cookie() {
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("session.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let e = env(&format!("[session]\nkey_file = \"{}\"\n", key.display())).await;
    let a = e.gw.addr;
    // A browser without a session is sent to the form; an API client still gets 401.
    let r = raw(a, &get("/", None, "Accept: text/html,*/*\r\n")).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("/rayward/login"));
    assert_eq!(raw(a, &get("/api/jobs/", None, "")).await.status, 401);
    let page = raw(a, &get("/rayward/login", None, "")).await;
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains("<form method=post"), "{page:?}");
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let (nonce, token) = login_form(a).await;
    let login = |user: &str, pw: &str| login_post(user, pw, Some((&nonce, &token)), "");
    let bad = raw(a, &login("vic", "wrong")).await;
    assert_eq!(bad.status, 303);
    assert_eq!(
        bad.header("location").as_deref(),
        Some("/rayward/login?failed")
    );
    assert!(bad.header("set-cookie").is_none());

    let ok = raw(a, &login("vic", VIC_PW)).await;
    assert_eq!(ok.status, 303, "{ok:?}");
    assert_eq!(ok.header("location").as_deref(), Some("/"));
    let set = ok.header("set-cookie").unwrap();
    assert!(set.contains("; HttpOnly; SameSite=Strict"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("rayward_session="));

    // The session authenticates; the cookie never reaches Ray.
    let r = raw(
        a,
        &get(
            "/api/jobs/",
            None,
            &format!("Cookie: other=1; {cookie}\r\n"),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let s = e.seen().last().unwrap().clone();
    assert_eq!(s.all("cookie"), ["other=1"]);
    assert_eq!(s.all("authorization"), [format!("Bearer {CLUSTER_TOKEN}")]);
    // Still a viewer.
    let post = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nCookie: {cookie}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    assert_eq!(raw(a, post.as_bytes()).await.status, 403);
    // A forged cookie (another user, same tag) is refused.
    let mut parts: Vec<String> = cookie["rayward_session=".len()..]
        .split('.')
        .map(str::to_string)
        .collect();
    use base64::Engine;
    parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ada");
    let forged = format!("rayward_session={}", parts.join("."));
    let r = raw(
        a,
        &get("/memory_profile", None, &format!("Cookie: {forged}\r\n")),
    )
    .await;
    assert_eq!(r.status, 401);
    // Logout clears it, and revokes it: the same cookie replayed is no session.
    let out = raw(
        a,
        format!("POST /rayward/logout HTTP/1.1\r\nHost: gw\r\nCookie: {cookie}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = raw(
        a,
        &get("/api/jobs/", None, &format!("Cookie: {cookie}\r\n")),
    )
    .await;
    assert_eq!(r.status, 401, "a logged-out cookie replayed: {r:?}");
}

#[tokio::test]
async fn the_dashboard_ui_is_told_not_to_ask_for_rays_token() {
    let e = env("").await;
    let r = raw(
        e.gw.addr,
        &get("/api/authentication_mode", Some(&basic("vic", VIC_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), r#"{"authentication_mode": "disabled"}"#);
    assert!(e.seen().is_empty(), "answered by the gateway");
    let r = raw(e.gw.addr, &get("/api/authentication_mode", None, "")).await;
    assert_eq!(r.status, 401);
}
