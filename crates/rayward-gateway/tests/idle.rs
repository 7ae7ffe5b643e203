//! Idle timeouts against a real local upstream (hyper on 127.0.0.1): a log stream that
//! goes quiet, a WebSocket with no traffic and an upload that stalls are closed on both
//! sides once `stream_idle_timeout_secs` passes; a stream that keeps talking is not cut.

use crate::common;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type UBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the upstream noticed of the gateway closing its side.
#[derive(Default)]
struct Seen {
    stream_closed: AtomicBool,
    websocket_closed: AtomicBool,
    upload_broken: AtomicBool,
}

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

async fn handle(seen: Arc<Seen>, mut req: hyper::Request<Incoming>) -> hyper::Response<UBody> {
    let path = req.uri().path().to_string();
    let hang = req.uri().query() == Some("hang");
    if req.headers().contains_key("upgrade") {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = on.await {
                let mut io = TokioIo::new(io);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(n) if n > 0 => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                seen.websocket_closed.store(true, Ordering::SeqCst);
            }
        });
        return hyper::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(http_body_util::Empty::new().boxed())
            .unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    match path.as_str() {
        // One chunk, then silence until the gateway hangs up.
        "/api/v0/logs/stream" => {
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"first\n")).await;
                tx.closed().await;
                seen.stream_closed.store(true, Ordering::SeqCst);
            });
        }
        // A chunk every 300 ms for 2.4 s: longer than the idle limit, never idle.
        "/api/v0/logs/file" => {
            tokio::spawn(async move {
                for i in 0..8 {
                    if tx.send(Bytes::from(format!("line {i}\n"))).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
        }
        _ => {
            // An upload: read it all; note if it broke off; answer with its size.
            let mut body = req.into_body();
            let mut len = 0;
            while let Some(f) = body.frame().await {
                match f {
                    Ok(f) => len += f.data_ref().map_or(0, |d| d.len()),
                    Err(_) => {
                        seen.upload_broken.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
            if path.ends_with("/hang.zip") || hang {
                std::future::pending::<()>().await;
            }
            let _ = tx.try_send(Bytes::from(format!("got {len}")));
        }
    }
    hyper::Response::new(ChanBody(rx).boxed())
}

struct Env {
    gw: GatewayGuard,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn env() -> Env {
    env_with("[limits]\nstream_idle_timeout_secs = 1\n").await
}

async fn env_with(extra: &str) -> Env {
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    let (addr, task) = serve_local(move |req| handle(s2.clone(), req)).await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let text = config(dir.path(), &format!("http://{addr}"), &tok, extra);
    Env {
        gw: start_gateway(&text).await,
        seen,
        task,
        _dir: dir,
    }
}

/// Reads until the gateway closes, at most 10 s; returns the bytes and the time taken.
async fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the gateway did not close within 10 s");
    (buf, t.elapsed())
}

async fn eventually(flag: &AtomicBool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !flag.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "upstream never saw: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(addr: SocketAddr, head: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn quiet_log_stream_is_closed_on_both_sides() {
    let e = env().await;
    let mut s = connect(
        e.gw.addr,
        &String::from_utf8(get(
            "/api/v0/logs/stream",
            Some(&basic("alice", ALICE_PW)),
            "",
        ))
        .unwrap(),
    )
    .await;
    let (buf, took) = read_until_closed(&mut s).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the stream must not look complete: {text:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    eventually(&e.seen.stream_closed, "the log stream closed").await;
}

#[tokio::test]
async fn a_stream_that_keeps_talking_is_not_cut() {
    let e = env().await;
    let r = raw(
        e.gw.addr,
        &get("/api/v0/logs/file", Some(&basic("alice", ALICE_PW)), ""),
    )
    .await;
    assert_eq!(r.status, 200);
    let want: String = (0..8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.body_text(), want);
}

#[tokio::test]
async fn quiet_websocket_is_closed_on_both_sides() {
    let e = env().await;
    let head = format!(
        "GET /api/jobs/raysubmit_1/logs/tail HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        basic("vic", VIC_PW)
    );
    let mut s = connect(e.gw.addr, &head).await;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(resp.starts_with("HTTP/1.1 101"), "{resp}");
    // Traffic keeps it open past the limit …
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let msg = format!("hello {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
    }
    // … silence closes it, on the client's side and on Ray's.
    let (rest, took) = read_until_closed(&mut s).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    eventually(&e.seen.websocket_closed, "the WebSocket closed").await;
}

#[tokio::test]
async fn stalled_upload_is_refused_and_the_upstream_request_aborted() {
    let e = env().await;
    let head = format!(
        "PUT /api/packages/gcs/_ray_pkg_abc.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Length: 100000\r\n\r\n0123456789",
        basic("alice", ALICE_PW)
    );
    let mut s = connect(e.gw.addr, &head).await;
    let (buf, took) = read_until_closed(&mut s).await;
    let r = parse_response(&buf);
    assert_eq!(r.status, 408, "{}", r.head);
    assert!(took < Duration::from_secs(5), "{took:?}");
    eventually(&e.seen.upload_broken, "the upload broken off").await;
}

/// The upstream timeout (to Ray's response headers) starts once the request body is
/// sent: a long upload that keeps sending is not cut by it, and a Ray that then does not
/// answer still gets 504.
#[tokio::test]
async fn upstream_timeout_counts_from_the_end_of_the_upload() {
    let e = env_with("[limits]\nstream_idle_timeout_secs = 1\nupstream_timeout_secs = 1\n").await;
    let upload = |name: &str| {
        format!(
            "PUT /api/packages/gcs/{name} HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Length: 8000\r\nConnection: close\r\n\r\n",
            basic("alice", ALICE_PW)
        )
    };
    // 8 chunks 300 ms apart: 2.4 s of upload, never idle for 1 s.
    let send_slowly = |mut s: TcpStream| async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.write_all(&[b'x'; 1000]).await.unwrap();
        }
        s
    };
    let s = connect(e.gw.addr, &upload("_ray_pkg_slow.zip")).await;
    let mut s = send_slowly(s).await;
    let (buf, _) = read_until_closed(&mut s).await;
    let r = parse_response(&buf);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_text(), "got 8000");

    let s = connect(e.gw.addr, &upload("hang.zip")).await;
    let t = Instant::now();
    let mut s = send_slowly(s).await;
    let (buf, _) = read_until_closed(&mut s).await;
    let r = parse_response(&buf);
    assert_eq!(r.status, 504, "{}", r.head);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(3300) && took < Duration::from_secs(6),
        "{took:?}"
    );
    // Bodies hyper finishes at once (none, or a buffered job submission) start the clock
    // at once.
    let alice = basic("alice", ALICE_PW);
    let job = r#"{"entrypoint": "echo"}"#;
    for req in [
        String::from_utf8(get("/api/packages/gcs/x.zip?hang", Some(&alice), "")).unwrap(),
        format!(
            "POST /api/jobs/?hang HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{job}",
            job.len()
        ),
    ] {
        let t = Instant::now();
        let r = raw(e.gw.addr, req.as_bytes()).await;
        assert_eq!(r.status, 504, "{}: {}", req.lines().next().unwrap(), r.head);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    }
}
