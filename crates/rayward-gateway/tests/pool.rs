//! The gateway's keep-alive connections to Ray (`pool`), through the gateway's socket
//! against upstreams written byte by byte on raw TCP: connections are reused across
//! clients; an upstream that closes its idle connections costs no request and gets none
//! twice; a connection whose answer a client abandoned half-read, or that the upstream
//! marked `Connection: close`, is never used again, so no leftover byte is read as the
//! next answer.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How one upstream connection behaves after answering.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Keep the connection for the next request.
    KeepAlive,
    /// Close it right after the answer, saying nothing (an idle timeout on Ray's side).
    CloseSilently,
    /// Answer with `Connection: close`, then close.
    SayClose,
}

struct Up {
    addr: SocketAddr,
    /// Connections accepted.
    conns: Arc<AtomicUsize>,
    /// Requests read.
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Up {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (these requests have no body); None at EOF.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// An upstream on raw TCP. `GET /big` answers 4 MiB in 64 KiB chunks (Content-Length);
/// anything else `ok <n>` where n counts the requests.
async fn upstream(after: After) -> Up {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (conns.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut s).await {
                    let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                    let close = if after == After::SayClose {
                        "Connection: close\r\n"
                    } else {
                        ""
                    };
                    if head.starts_with("GET /api/jobs/big ") {
                        let len = 4 << 20;
                        let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{close}\r\n");
                        if s.write_all(h.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b'x'; 64 << 10];
                        for _ in 0..64 {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    } else {
                        let body = format!("ok {n}");
                        let h = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{close}\r\n{body}",
                            body.len()
                        );
                        if s.write_all(h.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    if after != After::KeepAlive {
                        return; // dropped: closed
                    }
                }
            });
        }
    });
    Up {
        addr,
        conns,
        requests,
        task,
    }
}

async fn gateway(up: &Up) -> (GatewayGuard, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray-token");
    std::fs::write(&tok, "cluster-token\n").unwrap();
    let text = config(dir.path(), &format!("http://{}", up.addr), &tok, "");
    (start_gateway(&text).await, dir)
}

fn auth() -> String {
    basic("ada", ADA_PW)
}

#[tokio::test]
async fn connections_to_ray_are_reused_across_clients() {
    let up = upstream(After::KeepAlive).await;
    let (gw, _dir) = gateway(&up).await;
    for i in 1..=10 {
        // Each request on its own client connection (Connection: close).
        let r = raw(gw.addr, &get("/api/version", Some(&auth()), "")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body_text(), format!("ok {i}"));
    }
    assert_eq!(up.requests.load(Ordering::SeqCst), 10);
    assert_eq!(
        up.conns.load(Ordering::SeqCst),
        1,
        "ten requests one after the other need one connection to Ray"
    );
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_costs_no_request_and_gets_none_twice() {
    let up = upstream(After::CloseSilently).await;
    let (gw, _dir) = gateway(&up).await;
    for i in 1..=8 {
        let r = raw(gw.addr, &get("/api/version", Some(&auth()), "")).await;
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert_eq!(r.body_text(), format!("ok {i}"), "request {i}");
        // Half of them right away, half after the close has surely been seen.
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        8,
        "no request sent twice"
    );
    assert_eq!(up.conns.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn a_connection_saying_close_is_not_reused() {
    let up = upstream(After::SayClose).await;
    let (gw, _dir) = gateway(&up).await;
    for i in 1..=4 {
        let r = raw(gw.addr, &get("/api/version", Some(&auth()), "")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body_text(), format!("ok {i}"));
        assert!(r.header("connection").is_none_or(|c| c == "close"), "{r:?}");
    }
    assert_eq!(up.conns.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn an_answer_abandoned_half_read_leaves_nothing_for_the_next_client() {
    let up = upstream(After::KeepAlive).await;
    let (gw, _dir) = gateway(&up).await;
    // A client that reads the head and a little of 4 MiB, then goes away.
    {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(&get("/api/jobs/big", Some(&auth()), ""))
            .await
            .unwrap();
        let mut b = vec![0u8; 16 << 10];
        let mut got = 0;
        while got < 100_000 {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
                .await
                .expect("answer")
                .unwrap();
            assert!(n > 0, "closed early");
            got += n;
        }
    }
    // Every later answer is whole and its own, on a connection without leftovers.
    for i in 2..=6 {
        let r = raw(gw.addr, &get("/api/version", Some(&auth()), "")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body_text(), format!("ok {i}"));
    }
    assert!(
        up.conns.load(Ordering::SeqCst) >= 2,
        "the abandoned connection was used again"
    );
    // And a big answer read to the end is whole, and its connection reused after.
    let before = up.conns.load(Ordering::SeqCst);
    let r = raw(gw.addr, &get("/api/jobs/big", Some(&auth()), "")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 4 << 20);
    let r = raw(gw.addr, &get("/api/version", Some(&auth()), "")).await;
    assert_eq!(r.body_text(), "ok 8");
    assert_eq!(up.conns.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn an_upload_ray_answered_before_reading_it_holds_up_no_other_client() {
    let up = upstream(After::KeepAlive).await;
    let (gw, _dir) = gateway(&up).await;
    // An upload that stalls after 10 of its 1,000,000 bytes; the stand-in answers at its
    // head, without reading the body, as a server refusing an upload early does.
    let mut uploader = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "PUT /api/packages/gcs/_ray_pkg_stall.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n\
         Content-Length: 1000000\r\n\r\n0123456789",
        auth()
    );
    uploader.write_all(head.as_bytes()).await.unwrap();
    let mut b = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), uploader.read(&mut b))
        .await
        .expect("an answer to the upload")
        .unwrap();
    assert!(String::from_utf8_lossy(&b[..n]).contains("ok 1"));
    // That connection to Ray is still busy sending the upload: another client's request
    // goes elsewhere at once, rather than waiting for the upload to end or time out.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        raw(gw.addr, &get("/api/version", Some(&auth()), "")),
    )
    .await
    .expect("answered while the upload stalls");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_text(), "ok 2");
    drop(uploader);
}
