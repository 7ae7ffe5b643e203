//! Ambiguous framing through a real socket: the service behind the accept loop never sees
//! a refused head, the client gets 400 (after the answers to the requests before it), and
//! the hook hears of it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use rayward_serve::{serve, ConnOptions, RefusalHook, Refused};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request the service saw: method, path, body.
type Seen = (String, String, Vec<u8>);

struct Env {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    refused: Arc<Mutex<Vec<Refused>>>,
    _server: tokio::task::JoinHandle<()>,
}

async fn start() -> Env {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r2 = refused.clone();
    let opts = ConnOptions {
        max_header_bytes: Some(16 * 1024),
        on_refused: Some(RefusalHook(Arc::new(move |_, r: &Refused| {
            r2.lock().unwrap().push(r.clone())
        }))),
        ..ConnOptions::default()
    };
    let s2 = seen.clone();
    let make = move |_peer| {
        let seen = s2.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let seen = seen.clone();
            async move {
                let (m, p) = (req.method().to_string(), req.uri().path().to_string());
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec());
                seen.lock().unwrap().push((m, p, body.unwrap_or_default()));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        })
    };
    let server = tokio::spawn(serve(listener, None, opts, make, std::future::pending()));
    Env {
        addr,
        seen,
        refused,
        _server: server,
    }
}

/// Sends `bytes` and reads until the server closes (or 5 s pass).
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cl_te_and_te_cl_smuggling_get_400_and_reach_nothing() {
    let env = start().await;
    let smuggled = "POST /api/jobs/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    let cases = [
        // CL.TE: a front proxy reading Content-Length forwards the whole; hyper would
        // read the chunked body "0" and then the hidden POST as the next request.
        format!(
            "GET /api/version HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
            5 + smuggled.len()
        ),
        // TE.CL.
        format!(
            "GET /api/version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
            smuggled.len()
        ),
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}".into(),
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n Transfer-Encoding: chunked\r\n\r\n{}".into(),
        "GET /a HTTP/1.1\nHost: x\n\n".into(),
    ];
    for (i, c) in cases.iter().enumerate() {
        let answer = exchange(env.addr, c.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "case {i}: {answer}");
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "case {i}: one answer: {answer}"
        );
        assert!(answer.contains("connection: close"), "{answer}");
        assert_eq!(
            env.refused.lock().unwrap().len(),
            i + 1,
            "case {i}: hook told"
        );
    }
    assert!(
        env.seen.lock().unwrap().is_empty(),
        "{:?}",
        env.seen.lock().unwrap()
    );
    let r = env.refused.lock().unwrap()[0].clone();
    assert_eq!(r.reason, "both Transfer-Encoding and Content-Length");
    assert_eq!(r.method.as_deref(), Some("GET"));
    assert_eq!(r.target.as_deref(), Some("/api/version"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_after_good_ones_on_a_keep_alive_connection_is_answered_last() {
    let env = start().await;
    let mut s = TcpStream::connect(env.addr).await.unwrap();
    let good = "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(good.as_bytes()).await.unwrap();
    // Both answers arrive on the open connection.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&got)
        .matches("HTTP/1.1 200")
        .count()
        < 2
    {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answers")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"GET /three HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 400 "), "{rest}");
    assert!(rest.ends_with("more than one Host\n"), "{rest}");
    let seen = env.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("POST".into(), "/one".into(), b"abc".to_vec()),
            ("GET".into(), "/two".into(), Vec::new())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_pipelined_behind_a_good_one_is_never_served() {
    let env = start().await;
    let answer = exchange(
        env.addr,
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    // hyper drops a request still buffered when the stream ends, so the good request
    // pipelined in the same packet may go unanswered; the refused one never reaches the
    // service, and the 400 is the last thing on the connection.
    assert!(
        answer.ends_with("both Transfer-Encoding and Content-Length\n"),
        "{answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1 400").count(), 1, "{answer}");
    let paths: Vec<String> = env
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1.clone())
        .collect();
    assert!(paths.iter().all(|p| p == "/one"), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_bodies_are_followed_and_oversized_heads_get_431() {
    let env = start().await;
    // A body that looks like a head is a body.
    let body = "GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n";
    let req = format!(
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = exchange(env.addr, req.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    let paths: Vec<String> = env
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1.clone())
        .collect();
    assert_eq!(paths, ["/a", "/b"]);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = exchange(env.addr, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(env.seen.lock().unwrap().len(), 2);
}
