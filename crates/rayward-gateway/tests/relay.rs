//! The relay (`src/relay/`: GET and HEAD without a body served on the raw bytes, ahead of
//! hyper) attacked through the gateway's real socket, against upstream stand-ins written
//! byte by byte on raw TCP (as in `pool.rs`): Ray's answers framed every way (length,
//! chunked, close, 1xx, none at all) and framed wrong on purpose (ambiguous heads, bytes
//! past the end, malformed chunks, stalls), clients that pipeline, drip or smuggle, and
//! what Ray gets of the client's request.
//!
//! The requests here carry no `Connection: close` (which the relay leaves to hyper). That
//! the relay, not hyper, served an answer is seen in its head: the stand-ins send
//! `X-Stand` with capitals, which the relay copies byte for byte and hyper would write
//! in lower case.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// The upstream stand-in: scripted byte by byte.

/// One request as the stand-in read it.
#[derive(Clone, Debug)]
struct Got {
    /// Which connection it came on (0 for the first accepted).
    conn: usize,
    /// Its place on that connection (1 for the first).
    nth: usize,
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn method(&self) -> &str {
        self.head.split(' ').next().unwrap_or("")
    }

    fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// Every value of header `name` (any case).
    fn all(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// What the stand-in does for one request.
enum Step {
    /// Writes these bytes (one `write_all`).
    W(Vec<u8>),
    /// Waits this many milliseconds.
    Sleep(u64),
    /// Closes the connection (without reading anything more).
    Close,
    /// Sends back every byte that comes (a WebSocket after a `101`), until EOF.
    Echo,
}

fn w(s: impl AsRef<[u8]>) -> Step {
    Step::W(s.as_ref().to_vec())
}

/// A well-framed answer with a body and the `X-Stand` marker.
fn ok(body: &str) -> Vec<Step> {
    vec![w(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Stand: relay\r\n\r\n{body}",
        body.len()
    ))]
}

/// `(request, its number among all requests the stand-in read, from 1) -> steps`.
type Script = Arc<dyn Fn(&Got, usize) -> Vec<Step> + Send + Sync>;

struct Stand {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stand {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stand {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more into `buf`; false at EOF or on an error.
async fn more(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut b = [0u8; 4096];
    match s.read(&mut b).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&b[..n]);
            true
        }
    }
}

/// One request (head and its body, by Content-Length or chunked) from `buf` and `s`.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !more(s, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            let line = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                if !more(s, buf).await {
                    return None;
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line + 2);
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let l = loop {
                        if let Some(i) = find(buf, b"\r\n") {
                            break i;
                        }
                        if !more(s, buf).await {
                            return None;
                        }
                    };
                    buf.drain(..l + 2);
                    if l == 0 {
                        break;
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                if !more(s, buf).await {
                    return None;
                }
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(n) = lower
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while buf.len() < n {
            if !more(s, buf).await {
                return None;
            }
        }
        body = buf.drain(..n).collect();
    }
    Some((head, body))
}

/// An upstream on 127.0.0.1 that reads requests and answers each as `script` says.
async fn stand(script: impl Fn(&Got, usize) -> Vec<Step> + Send + Sync + 'static) -> Stand {
    let script: Script = Arc::new(script);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (c, g) = (conns.clone(), got.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            let conn = c.fetch_add(1, Ordering::SeqCst);
            let (g, script) = (g.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut nth = 0;
                while let Some((head, body)) = read_request(&mut s, &mut buf).await {
                    nth += 1;
                    let r = Got {
                        conn,
                        nth,
                        head,
                        body,
                    };
                    let n = {
                        let mut g = g.lock().unwrap();
                        g.push(r.clone());
                        g.len()
                    };
                    for step in script(&r, n) {
                        match step {
                            Step::W(b) => {
                                if s.write_all(&b).await.is_err() {
                                    return;
                                }
                            }
                            Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                            Step::Close => return,
                            Step::Echo => {
                                if !buf.is_empty() && s.write_all(&buf).await.is_err() {
                                    return;
                                }
                                let mut b = [0u8; 4096];
                                while let Ok(n) = s.read(&mut b).await {
                                    if n == 0 || s.write_all(&b[..n]).await.is_err() {
                                        break;
                                    }
                                }
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Stand {
        addr,
        conns,
        got,
        task,
    }
}

// ---------------------------------------------------------------------------------------
// The gateway and its clients.

const CLUSTER_TOKEN: &str = "cluster-secret-token";

struct Env {
    up: Stand,
    gw: GatewayGuard,
    dir: tempfile::TempDir,
}

impl Env {
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

async fn env(
    extra: &str,
    script: impl Fn(&Got, usize) -> Vec<Step> + Send + Sync + 'static,
) -> Env {
    let up = stand(script).await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray-token");
    std::fs::write(&tok, format!("{CLUSTER_TOKEN}\n")).unwrap();
    let text = config(dir.path(), &format!("http://{}", up.addr), &tok, extra);
    let gw = start_gateway(&text).await;
    Env { up, gw, dir }
}

fn ada() -> String {
    basic("ada", ADA_PW)
}

/// A keep-alive request (no `Connection` header: the relay's kind) as the admin.
fn req(method: &str, path: &str) -> Vec<u8> {
    req_as(method, path, Some(&ada()), "")
}

fn req_as(method: &str, path: &str, auth: Option<&str>, extra: &str) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("{method} {path} HTTP/1.1\r\nHost: gw\r\n{auth}{extra}\r\n").into_bytes()
}

/// One answer read off a client connection by its own framing.
#[derive(Debug)]
struct Ans {
    status: u16,
    head: String,
    /// The body's bytes as they came (chunk sizes and trailers included).
    wire: Vec<u8>,
    /// The body (de-chunked).
    body: Vec<u8>,
    /// Framed by the connection's end.
    close_delimited: bool,
}

impl Ans {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The relay copied the stand-in's head (hyper would have lower-cased `X-Stand`).
    fn relayed(&self) -> bool {
        self.head.contains("\r\nX-Stand: ")
    }
}

/// A client connection that reads answers by their framing, as a browser does.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    /// Every byte read, for what a failed `answer` leaves behind.
    seen: Vec<u8>,
}

const WAIT: Duration = Duration::from_secs(5);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            s: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("send");
    }

    /// Reads more within `wait`: Ok(false) at EOF (or reset), Err on a timeout.
    async fn fill(&mut self, wait: Duration) -> Result<bool, String> {
        let mut b = [0u8; 8192];
        match tokio::time::timeout(wait, self.s.read(&mut b)).await {
            Err(_) => Err(format!(
                "nothing more within {wait:?}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            )),
            Ok(Ok(0)) | Ok(Err(_)) => Ok(false),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&b[..n]);
                self.seen.extend_from_slice(&b[..n]);
                Ok(true)
            }
        }
    }

    async fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            if !self.fill(WAIT).await? {
                return Err(format!(
                    "closed inside a chunked body; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
    }

    async fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill(WAIT).await? {
                return Err(format!(
                    "closed after {} of {n} body bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next answer; `head_request`: the request was `HEAD` (no body whatever the head
    /// says). Err when the connection closes or stalls before the answer is whole.
    async fn answer(&mut self, head_request: bool) -> Result<Ans, String> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill(WAIT).await? {
                return Err(format!(
                    "closed before an answer head; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status: u16 = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP/1.1 status line: {head:?}"))?;
        let mut a = Ans {
            status,
            head,
            wire: Vec::new(),
            body: Vec::new(),
            close_delimited: false,
        };
        if head_request || status == 204 || status == 304 || status < 200 {
            return Ok(a);
        }
        let te = a.header("transfer-encoding");
        let cl = a.header("content-length");
        if te.is_some() && cl.is_some() {
            return Err(format!("both framings: {a:?}"));
        }
        if let Some(te) = te {
            if !te.eq_ignore_ascii_case("chunked") {
                return Err(format!("transfer-encoding {te:?}"));
            }
            loop {
                let l = self.line().await?;
                a.wire.extend_from_slice(&l);
                let text = String::from_utf8_lossy(&l[..l.len() - 2]).into_owned();
                let size = usize::from_str_radix(text.split(';').next().unwrap(), 16)
                    .map_err(|_| format!("bad chunk size line {text:?}; {a:?}"))?;
                if size == 0 {
                    loop {
                        let t = self.line().await?;
                        a.wire.extend_from_slice(&t);
                        if t == b"\r\n" {
                            return Ok(a);
                        }
                    }
                }
                let data = self.exact(size + 2).await?;
                if !data.ends_with(b"\r\n") {
                    return Err(format!("chunk without its CRLF: {a:?}"));
                }
                a.body.extend_from_slice(&data[..size]);
                a.wire.extend_from_slice(&data);
            }
        } else if let Some(cl) = cl {
            let n: usize = cl.parse().map_err(|_| format!("content-length {cl:?}"))?;
            a.body = self.exact(n).await?;
            a.wire = a.body.clone();
        } else {
            // RFC 9112 §6.3: read until the server closes.
            while self.fill(WAIT).await? {}
            a.body = std::mem::take(&mut self.buf);
            a.wire = a.body.clone();
            a.close_delimited = true;
        }
        Ok(a)
    }

    /// Ok when the connection ends within `wait` with no byte more.
    async fn closed(&mut self, wait: Duration) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.fill(left).await? {
                break;
            }
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "bytes after the answer: {:?}",
                String::from_utf8_lossy(&self.buf)
            ))
        }
    }

    /// Whatever arrives within `wait` (nothing, for a well-behaved server that has
    /// answered every request), and whether the connection ended.
    async fn extra(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + wait;
        let mut ended = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.fill(left).await {
                Ok(true) => {}
                Ok(false) => {
                    ended = true;
                    break;
                }
                Err(_) => break,
            }
        }
        (std::mem::take(&mut self.buf), ended)
    }
}

/// Reads everything until the connection closes (at most `WAIT`).
async fn all_until_closed(c: &mut Client) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    while let Ok(true) = c
        .fill(deadline.saturating_duration_since(Instant::now()))
        .await
    {}
    std::mem::take(&mut c.buf)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    find(hay, needle.as_bytes()).is_some()
}

const SHORT: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------
// Ray's answers, framed right.

/// Chunks with an extension and trailers, split across writes mid-size and mid-data.
const CHUNKS: [&str; 3] = [
    "4;name=\"a b\"\r\nWi",
    "ki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n1",
    "0\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
];
const CHUNKED_HEAD: &str =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Stand: relay\r\n\r\n";

#[tokio::test]
async fn chunked_answers_pass_byte_for_byte_and_both_connections_stay_usable() {
    let e = env("", |g, n| match g.target() {
        "/api/jobs/split" => vec![
            w(format!("{CHUNKED_HEAD}{}", CHUNKS[0])),
            Step::Sleep(30),
            w(CHUNKS[1]),
            Step::Sleep(30),
            w(CHUNKS[2]),
        ],
        "/api/jobs/whole" => vec![w(format!("{CHUNKED_HEAD}{}", CHUNKS.concat()))],
        _ => ok(&format!("plain {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    for (i, path) in ["/api/jobs/split", "/api/jobs/whole"].iter().enumerate() {
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.relayed(), "{a:?}");
        assert_eq!(a.header("transfer-encoding").as_deref(), Some("chunked"));
        assert_eq!(a.header("content-length"), None);
        assert_eq!(
            String::from_utf8_lossy(&a.wire),
            CHUNKS.concat(),
            "the chunked body exactly as Ray sent it"
        );
        assert_eq!(a.text(), "Wikipedia in\r\n\r\nchunks.0123456789abcdef");
        // Then a plain one on the same client connection.
        c.send(&req("GET", "/api/version")).await;
        let b = c.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("plain {}", 2 * i + 2), "{b:?}");
    }
    let (extra, ended) = c.extra(SHORT).await;
    assert!(extra.is_empty() && !ended, "{extra:?} {ended}");
    let got = e.up.got();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.iter().all(|g| g.conn == 0),
        "all four on one upstream connection: {got:?}"
    );
    assert_eq!(e.up.conns(), 1);
}

#[tokio::test]
async fn a_close_delimited_answer_ends_the_client_connection_and_is_never_reused() {
    let e = env("", |g, n| match g.target() {
        "/api/jobs/close" => vec![
            w("HTTP/1.1 200 OK\r\nX-Stand: relay\r\nContent-Type: text/plain\r\n\r\npart one, "),
            Step::Sleep(50),
            w("part two"),
            Step::Close,
        ],
        _ => ok(&format!("fresh {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    // A second request pipelined behind it: it must not be answered on this connection.
    let mut two = req("GET", "/api/jobs/close");
    two.extend_from_slice(&req("GET", "/api/version"));
    c.send(&two).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.relayed(), "{a:?}");
    assert!(a.close_delimited, "{a:?}");
    assert_eq!(a.header("connection").as_deref(), Some("close"), "{a:?}");
    assert_eq!(a.text(), "part one, part two");
    // The next clients get their own answers, on new connections to Ray.
    for n in 2..=3 {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", "/api/version")).await;
        let b = c.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("fresh {n}"), "{b:?}");
    }
    let got = e.up.got();
    assert_eq!(got.len(), 3, "the pipelined request went nowhere: {got:?}");
    assert_eq!(got[1].conn, 1, "{got:?}");
    assert_eq!(got[2].conn, 1, "{got:?}");
    assert_eq!(e.up.conns(), 2);
}

#[tokio::test]
async fn head_requests_get_no_body_and_the_connection_stays_usable() {
    let e = env("", |g, n| match (g.method(), g.target()) {
        // A HEAD answer says how long the GET's body would be, and sends none.
        ("HEAD", "/api/jobs/h") => vec![w(
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Stand: relay\r\n\r\n",
        )],
        // A HEAD answer that is chunked: no body either, not even the last chunk.
        ("HEAD", "/api/jobs/hc") => vec![w(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Stand: relay\r\n\r\n",
        )],
        // A server that sends the body anyway, with the head: the client never gets it
        // and the connection is not used again.
        ("HEAD", "/api/jobs/hb") => vec![w(
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Stand: relay\r\n\r\nhello world",
        )],
        _ => ok(&format!("after {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("HEAD", "/api/jobs/h")).await;
    let a = c.answer(true).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.relayed(), "{a:?}");
    assert_eq!(a.header("content-length").as_deref(), Some("11"));
    c.send(&req("GET", "/api/version")).await;
    let b = c.answer(false).await.unwrap();
    assert_eq!(
        b.text(),
        "after 2",
        "no byte before the GET's answer: {b:?}"
    );
    c.send(&req("HEAD", "/api/jobs/hc")).await;
    let a = c.answer(true).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("transfer-encoding"), None, "{a:?}");
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "after 4");
    let got = e.up.got();
    assert!(got.iter().all(|g| g.conn == 0), "{got:?}");

    c.send(&req("HEAD", "/api/jobs/hb")).await;
    let a = c.answer(true).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    c.send(&req("GET", "/api/version")).await;
    let b = c.answer(false).await.unwrap();
    assert_eq!(b.text(), "after 6", "{b:?}");
    assert!(!contains(&b.wire, "hello"), "{b:?}");
    let (extra, _) = c.extra(SHORT).await;
    assert!(extra.is_empty(), "{:?}", String::from_utf8_lossy(&extra));
    let got = e.up.got();
    assert_eq!(got.len(), 6);
    assert_ne!(
        got[5].conn, got[4].conn,
        "reused after a body to HEAD: {got:?}"
    );
}

#[tokio::test]
async fn informational_answers_are_skipped_and_101_is_refused() {
    let e = env("", |g, _| match g.target() {
        "/api/jobs/continue" => vec![
            w("HTTP/1.1 100 Continue\r\n\r\n"),
            Step::Sleep(30),
            w("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"),
            Step::Sleep(30),
            w("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Stand: relay\r\n\r\nok"),
        ],
        "/api/jobs/switch" => vec![w(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nTUNNEL-SECRET",
        )],
        _ => ok("plain"),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/continue")).await;
    // The very first bytes are the final answer's.
    while c.buf.len() < 12 {
        assert!(c.fill(WAIT).await.unwrap(), "closed");
    }
    assert!(
        c.buf.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&c.buf)
    );
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "ok");
    assert!(a.relayed(), "{a:?}");
    assert!(a.header("link").is_none(), "{a:?}");
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "plain");

    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/switch")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 502, "{a:?}");
    let rest = all_until_closed(&mut c).await;
    assert!(!contains(&rest, "TUNNEL") && !contains(&a.wire, "TUNNEL"));
    assert!(!a.head.to_ascii_lowercase().contains("upgrade"), "{a:?}");
}

// ---------------------------------------------------------------------------------------
// Ray's answers, framed wrong.

/// A second answer hidden after the first one's end, as a desynchronised (or hostile)
/// upstream would send it.
const SMUGGLED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Stand: relay\r\n\r\nevil";

#[tokio::test]
async fn bytes_past_the_end_of_an_answer_reach_no_one() {
    let e = env("", |g, n| match g.target() {
        // In the same write as the answer.
        "/api/jobs/length" => vec![w(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stand: relay\r\n\r\nhello{SMUGGLED}"
        ))],
        // The body split over two writes, the extra bytes with its end.
        "/api/jobs/length-split" => vec![
            w("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stand: relay\r\n\r\nhe"),
            Step::Sleep(30),
            w(format!("llo{SMUGGLED}")),
        ],
        "/api/jobs/chunked" => vec![w(format!(
            "{CHUNKED_HEAD}5\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
        ))],
        "/api/jobs/chunked-split" => vec![
            w(format!("{CHUNKED_HEAD}5\r\nhel")),
            Step::Sleep(30),
            w(format!("lo\r\n0\r\n\r\n{SMUGGLED}")),
        ],
        _ => ok(&format!("fresh {n}")),
    })
    .await;
    let cases = [
        "/api/jobs/length",
        "/api/jobs/length-split",
        "/api/jobs/chunked",
        "/api/jobs/chunked-split",
    ];
    for (i, path) in cases.iter().enumerate() {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.text(), "hello", "{path}: {a:?}");
        let (extra, _) = c.extra(SHORT).await;
        assert!(
            extra.is_empty(),
            "{path}: {:?}",
            String::from_utf8_lossy(&extra)
        );
        // The same client asks again, and so does another one: each gets its own answer.
        c.send(&req("GET", "/api/version")).await;
        let b = c.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("fresh {}", 3 * i + 2), "{path}: {b:?}");
        let mut other = Client::connect(e.gw.addr).await;
        other.send(&req("GET", "/api/version")).await;
        let b = other.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("fresh {}", 3 * i + 3), "{path}: {b:?}");
        let got = e.up.got();
        assert_ne!(
            got[3 * i + 1].conn,
            got[3 * i].conn,
            "{path}: the connection with extra bytes was used again: {got:?}"
        );
    }
}

#[tokio::test]

async fn bytes_that_come_late_after_the_end_of_an_answer_reach_no_one() {
    // The same smuggled answer, but in a later write than the first answer's end: the
    // connection looks clean when the answer ends, and is not by the time it is reused.
    let cases: [(&str, &str, &str); 5] = [
        (
            "GET",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stand: relay\r\n\r\nhello",
            "",
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Stand: relay\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "",
        ),
        // A body sent to HEAD (a server that ignores the method), late.
        (
            "HEAD",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stand: relay\r\n\r\n",
            "hello",
        ),
        (
            "GET",
            "HTTP/1.1 304 Not Modified\r\nX-Stand: relay\r\n\r\n",
            "",
        ),
        (
            "GET",
            "HTTP/1.1 204 No Content\r\nX-Stand: relay\r\n\r\n",
            "",
        ),
    ];
    let mut failed = Vec::new();
    for (method, first, late) in cases {
        let e = env("", move |g, n| match g.target() {
            "/api/jobs/first" => vec![w(first), Step::Sleep(50), w(format!("{late}{SMUGGLED}"))],
            _ => ok(&format!("fresh {n}")),
        })
        .await;
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req(method, "/api/jobs/first")).await;
        let a = c.answer(method == "HEAD").await.unwrap();
        assert!(a.relayed(), "{a:?}");
        assert!(!contains(&a.wire, "evil"), "{a:?}");
        tokio::time::sleep(SHORT).await;
        // Another client, later: its own answer, not the one Ray sent after the first.
        let mut other = Client::connect(e.gw.addr).await;
        other.send(&req("GET", "/api/version")).await;
        let b = other.answer(false).await;
        if b.as_ref().map(Ans::text) != Ok("fresh 2".to_string()) {
            failed.push(format!(
                "after {method} answered {first:?}, the next client got {b:?}; Ray got {:?}",
                e.up.got()
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn ambiguous_and_malformed_answer_heads_get_502_and_none_of_their_bytes() {
    let bad: Vec<(&str, String)> = vec![
        (
            "length and chunked",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nSECRET\r\n0\r\n\r\n".into(),
        ),
        (
            "two lengths",
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 7\r\n\r\nSECRET!".into(),
        ),
        (
            "two equal lengths",
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 6\r\n\r\nSECRET".into(),
        ),
        (
            "a list of lengths",
            "HTTP/1.1 200 OK\r\nContent-Length: 6, 6\r\n\r\nSECRET".into(),
        ),
        (
            "a signed length",
            "HTTP/1.1 200 OK\r\nContent-Length: +6\r\n\r\nSECRET".into(),
        ),
        (
            "gzip then chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n6\r\nSECRET\r\n0\r\n\r\n".into(),
        ),
        (
            "chunked twice",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nSECRET\r\n0\r\n\r\n".into(),
        ),
        (
            "identity",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nSECRET".into(),
        ),
        (
            "bare LF",
            "HTTP/1.1 200 OK\nContent-Length: 6\n\nSECRET".into(),
        ),
        (
            "bare LF in one line",
            "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 6\r\n\r\nSECRET".into(),
        ),
        (
            "obs-fold",
            "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 6\r\n\r\nSECRET".into(),
        ),
        (
            "no status line",
            "SECRET\r\n\r\n".into(),
        ),
        (
            "HTTP/2 status line",
            "HTTP/2 200 OK\r\nContent-Length: 6\r\n\r\nSECRET".into(),
        ),
        (
            "a head that never ends",
            format!("HTTP/1.1 200 OK\r\nX-SECRET: {}", "a".repeat(70_000)),
        ),
        (
            "closed inside the head",
            "HTTP/1.1 200 OK\r\nX-SECRET: 1\r\n".into(),
        ),
    ];
    let answers: Vec<String> = bad.iter().map(|(_, a)| a.clone()).collect();
    let e = env("", move |g, n| {
        match g
            .target()
            .strip_prefix("/api/jobs/bad-")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => vec![w(&answers[i]), Step::Close],
            None => ok(&format!("fresh {n}")),
        }
    })
    .await;
    for (i, (what, _)) in bad.iter().enumerate() {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", &format!("/api/jobs/bad-{i}"))).await;
        let a = c.answer(false).await;
        let rest = all_until_closed(&mut c).await;
        let a = a.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.status, 502, "{what}: {a:?}");
        assert!(!a.relayed(), "{what}: {a:?}");
        assert!(
            !contains(a.head.as_bytes(), "SECRET") && !contains(&a.body, "SECRET"),
            "{what}: {a:?}"
        );
        assert!(!contains(&rest, "SECRET"), "{what}: {rest:?}");
    }
    // Ray got each once (no retry of a request it answered, however badly), and a good
    // request after them all is answered.
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(
        c.answer(false).await.unwrap().text(),
        format!("fresh {}", bad.len() + 1)
    );
    assert_eq!(e.up.got().len(), bad.len() + 1);
}

#[tokio::test]
async fn a_malformed_chunk_ends_the_answer_without_its_bytes() {
    let e = env("", |g, n| match g.target() {
        // Broken in the bytes that come with the head: nothing of it is sent.
        "/api/jobs/at-once" => vec![
            w(format!("{CHUNKED_HEAD}6\r\nSECRET-and-more\r\n0\r\n\r\n")),
            Step::Close,
        ],
        "/api/jobs/bare-lf" => vec![
            w(format!("{CHUNKED_HEAD}6\nSECRET\r\n0\r\n\r\n")),
            Step::Close,
        ],
        "/api/jobs/no-crlf" => vec![
            w(format!(
                "{CHUNKED_HEAD}5\r\nhelloXY6\r\nSECRET\r\n0\r\n\r\n"
            )),
            Step::Close,
        ],
        "/api/jobs/bad-size" => vec![
            w(format!("{CHUNKED_HEAD}6x\r\nSECRET\r\n0\r\n\r\n")),
            Step::Close,
        ],
        // Broken after the head and a good chunk went out: the answer cannot be
        // completed; the connection ends, without the bad bytes and without a last chunk.
        "/api/jobs/later" => vec![
            w(format!("{CHUNKED_HEAD}5\r\nhello\r\n")),
            Step::Sleep(50),
            w("6\r\nSECRET!!\r\n0\r\n\r\n"),
            Step::Sleep(1000),
            Step::Close,
        ],
        "/api/jobs/later-trailer" => vec![
            w(format!("{CHUNKED_HEAD}5\r\nhello\r\n")),
            Step::Sleep(50),
            w("0\r\nX-SECRET: 1\nX: y\r\n\r\n"),
            Step::Sleep(1000),
            Step::Close,
        ],
        _ => ok(&format!("fresh {n}")),
    })
    .await;
    for path in [
        "/api/jobs/at-once",
        "/api/jobs/bare-lf",
        "/api/jobs/no-crlf",
        "/api/jobs/bad-size",
    ] {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", path)).await;
        let start = Instant::now();
        let all = all_until_closed(&mut c).await;
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{path}: not ended"
        );
        assert!(!contains(&all, "SECRET"), "{path}: {all:?}");
        // Either a 502 or nothing at all; never the head of an answer that cannot be whole.
        let r = parse_response(&all);
        assert!(
            all.is_empty() || r.status == 502,
            "{path}: {:?}",
            String::from_utf8_lossy(&all)
        );
    }
    for path in ["/api/jobs/later", "/api/jobs/later-trailer"] {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", path)).await;
        let start = Instant::now();
        let a = c.answer(false).await;
        assert!(a.is_err(), "{path}: a whole answer: {a:?}");
        let all = all_until_closed(&mut c).await;
        assert!(
            start.elapsed() < Duration::from_millis(900),
            "{path}: the client connection was not ended at the bad chunk"
        );
        assert!(all.is_empty(), "{path}: {all:?}");
        let seen = String::from_utf8_lossy(&c.seen);
        assert!(!seen.contains("SECRET"), "{path}: {seen}");
        assert!(
            seen.ends_with("\r\n\r\n5\r\nhello\r\n"),
            "{path}: the head and the good chunk, and nothing after: {seen}"
        );
    }
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "fresh 7", "{a:?}");
}

#[tokio::test]
async fn hop_by_hop_answer_headers_stay_behind() {
    let e = env("", |g, _| {
        // The hop-by-hop names go whether or not `Connection` lists them too.
        let connection = if g.target() == "/api/jobs/listed" {
            "Connection: keep-alive, X-Secret\r\n"
        } else {
            "Connection: X-Secret\r\n"
        };
        vec![w(format!(
            "HTTP/1.1 200 OK\r\n{connection}X-Secret: v\r\n\
             Keep-Alive: timeout=5, max=100\r\nProxy-Authenticate: Basic realm=\"ray\"\r\n\
             Upgrade: h2c\r\nTrailer: X-T\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
             Connection: x-other\r\nX-Other: w\r\nX-Kept: yes\r\nContent-Length: 2\r\n\
             X-Stand: relay\r\n\r\nok",
        ))]
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    for path in ["/api/jobs/listed", "/api/jobs/unlisted", "/api/jobs/listed"] {
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert!(a.relayed(), "{a:?}");
        assert_eq!(a.text(), "ok");
        assert_eq!(a.header("x-kept").as_deref(), Some("yes"), "{a:?}");
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "proxy-authenticate",
            "upgrade",
            "trailer",
            "proxy-connection",
            "te",
            "x-other",
        ] {
            assert_eq!(a.header(gone), None, "{gone} reached the client: {a:?}");
        }
    }
}

#[tokio::test]

async fn an_answer_whose_connection_header_names_its_length_stays_framed() {
    // `Connection: Content-Length` makes Content-Length hop-by-hop; the client must still
    // be able to tell where the body ends (hyper's path writes the length it knows).
    let e = env("", |g, n| match g.target() {
        "/api/jobs/named" => vec![w(
            "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\nX-Stand: relay\r\n\r\nhello",
        )],
        _ => ok(&format!("next {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/named")).await;
    c.send(&req("GET", "/api/version")).await;
    let a = c.answer(false).await;
    let b = c.answer(false).await;
    match (&a, &b) {
        // Framed by its length: the next answer follows.
        (Ok(a), Ok(b)) if !a.close_delimited => {
            assert_eq!(a.text(), "hello", "{a:?}");
            assert_eq!(b.text(), "next 2", "{b:?}");
        }
        // Framed by the connection's end: then it must be only the body.
        (Ok(a), _) => assert_eq!(a.text(), "hello", "{a:?}"),
        _ => panic!("no framed answer: {a:?} then {b:?}"),
    }
}

#[tokio::test]
async fn ray_5xx_bodies_are_replaced_however_framed() {
    const TRACE: &str = "Traceback (most recent call last):\n  File \"/home/ray/secret.py\"";
    let script = |g: &Got, n: usize| {
        match g.target() {
        "/api/jobs/length" => vec![w(format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nX-Stand: relay\r\n\r\n{TRACE}",
            TRACE.len()
        ))],
        "/api/jobs/chunked" => vec![w(format!(
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nX-Stand: relay\r\n\r\n{:x}\r\n{TRACE}\r\n0\r\n\r\n",
            TRACE.len()
        ))],
        "/api/jobs/close" => vec![
            w(format!("HTTP/1.1 500 Internal Server Error\r\nX-Stand: relay\r\n\r\n{TRACE}")),
            Step::Close,
        ],
        _ => ok(&format!("fresh {n}")),
    }
    };
    let e = env("", script).await;
    let mut c = Client::connect(e.gw.addr).await;
    for (i, (path, status)) in [
        ("/api/jobs/length", 500),
        ("/api/jobs/chunked", 503),
        ("/api/jobs/close", 500),
    ]
    .iter()
    .enumerate()
    {
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.status, *status, "{path}: {a:?}");
        assert_eq!(
            a.text(),
            format!("Ray answered {status}; details are in the Ray dashboard's logs\n"),
            "{path}"
        );
        assert!(!contains(&a.wire, "Traceback"), "{path}: {a:?}");
        // The client connection goes on; Ray's is not used again (its body is unread).
        c.send(&req("GET", "/api/version")).await;
        let b = c.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("fresh {}", 2 * i + 2), "{path}: {b:?}");
        let got = e.up.got();
        assert_ne!(got[2 * i + 1].conn, got[2 * i].conn, "{path}: {got:?}");
    }
    let (extra, _) = c.extra(SHORT).await;
    assert!(extra.is_empty(), "{:?}", String::from_utf8_lossy(&extra));

    let e = env("pass_upstream_errors = true\n", script).await;
    let mut c = Client::connect(e.gw.addr).await;
    for path in ["/api/jobs/length", "/api/jobs/chunked"] {
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert!(a.relayed(), "{a:?}");
        assert_eq!(a.text(), TRACE, "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// Ray's connections: closed while idle, slow, stalled.

#[tokio::test]
async fn an_upstream_closing_idle_connections_costs_no_request_and_gets_none_twice() {
    // Ray closes each connection right after its answer, saying nothing.
    let e = env("", |_, n| {
        let mut s = ok(&format!("ok {n}"));
        s.push(Step::Close);
        s
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    for i in 1..=8 {
        c.send(&req("GET", "/api/version")).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.status, 200, "request {i}: {a:?}");
        assert!(a.relayed(), "{a:?}");
        assert_eq!(a.text(), format!("ok {i}"), "request {i}");
        // Half of them right away, half after the close has surely been seen.
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        e.up.got().len(),
        8,
        "no request read twice: {:?}",
        e.up.got()
    );
    assert_eq!(e.up.conns(), 8);
}

#[tokio::test]
async fn a_reused_connection_that_reads_the_request_and_answers_nothing_is_retried_once() {
    // Ray answers the first request of each connection and closes the connection on the
    // second without a byte (it closed the idle connection as the request arrived): the
    // relay's documented retry, once, on a new connection.
    let e = env("", |g, n| {
        if g.nth == 1 {
            ok(&format!("ok {n}"))
        } else {
            vec![Step::Close]
        }
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "ok 1");
    c.send(&req("GET", "/api/jobs/again")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.text(), "ok 3");
    let got = e.up.got();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[1].conn, got[1].nth), (0, 2), "{got:?}");
    assert_eq!((got[2].conn, got[2].nth), (1, 1), "{got:?}");
    assert_eq!(got[1].head, got[2].head, "the same request, sent again");

    // A connection Ray closes without an answer when it is new: no retry, 502.
    let e = env("", |_, _| vec![Step::Close]).await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 502, "{a:?}");
    assert_eq!(e.up.got().len(), 1, "{:?}", e.up.got());
}

#[tokio::test]
async fn a_slow_upstream_gets_504_and_a_stalled_body_ends_the_connection() {
    let e = env(
        "[limits]\nupstream_timeout_secs = 1\nstream_idle_timeout_secs = 1\n",
        |g, n| match g.target() {
            "/api/jobs/slow" => {
                let mut s = vec![Step::Sleep(2500)];
                s.extend(ok("too late"));
                s
            }
            "/api/jobs/stall" => vec![
                w("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Stand: relay\r\n\r\n0123456789"),
                Step::Sleep(3000),
                w("x".repeat(90)),
            ],
            "/api/jobs/stall-chunked" => vec![
                w(format!("{CHUNKED_HEAD}a\r\n0123456789\r\n")),
                Step::Sleep(3000),
                w("0\r\n\r\n"),
            ],
            _ => ok(&format!("fresh {n}")),
        },
    )
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    let start = Instant::now();
    c.send(&req("GET", "/api/jobs/slow")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 504, "{a:?}");
    assert!(
        start.elapsed() < Duration::from_millis(2200),
        "{:?}",
        start.elapsed()
    );
    assert!(!contains(&a.wire, "too late"));
    let rest = all_until_closed(&mut c).await;
    assert!(!contains(&rest, "too late"), "{rest:?}");

    for path in ["/api/jobs/stall", "/api/jobs/stall-chunked"] {
        let mut c = Client::connect(e.gw.addr).await;
        let start = Instant::now();
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await;
        assert!(a.is_err(), "{path}: {a:?}");
        let all = all_until_closed(&mut c).await;
        let took = start.elapsed();
        assert!(
            took > Duration::from_millis(900) && took < Duration::from_millis(2500),
            "{path}: ended after {took:?}"
        );
        assert!(!contains(&all, "xxx"), "{path}: {all:?}");
        let seen = String::from_utf8_lossy(&c.seen);
        assert!(seen.contains("0123456789"), "{path}: {seen}");
        assert!(
            !seen.contains("xxx") && !seen.ends_with("0\r\n\r\n"),
            "{path}: {seen}"
        );
    }
    // Neither stalled connection is used again.
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "fresh 4");
}

// ---------------------------------------------------------------------------------------
// Clients: pipelining, slow heads, what Ray gets.

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_a_put_goes_to_hyper_with_its_body() {
    let e = env("", |g, n| {
        if g.method() == "HEAD" {
            return vec![w(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Stand: relay\r\n\r\n",
            )];
        }
        ok(&format!(
            "{n} {} {} {}",
            g.method(),
            g.target(),
            String::from_utf8_lossy(&g.body)
        ))
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    let mut all = req("GET", "/api/jobs/a");
    all.extend(req("HEAD", "/api/jobs/b"));
    all.extend(req("GET", "/api/jobs/c"));
    let body = "0123456789";
    all.extend(
        format!(
            "PUT /api/packages/gcs/_ray_pkg_x.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            ada(),
            body.len()
        )
        .into_bytes(),
    );
    all.extend(req("GET", "/api/jobs/d"));
    c.send(&all).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "1 GET /api/jobs/a ");
    assert!(a.relayed(), "{a:?}");
    let b = c.answer(true).await.unwrap();
    assert_eq!(b.status, 200);
    assert!(b.relayed(), "{b:?}");
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "3 GET /api/jobs/c ");
    assert!(a.relayed(), "{a:?}");
    let p = c.answer(false).await.unwrap();
    assert_eq!(
        p.text(),
        "4 PUT /api/packages/gcs/_ray_pkg_x.zip 0123456789"
    );
    assert!(!p.relayed(), "hyper served the PUT: {p:?}");
    assert!(p.head.contains("\r\nx-stand: "), "{p:?}");
    let d = c.answer(false).await.unwrap();
    assert_eq!(d.text(), "5 GET /api/jobs/d ");
    let got = e.up.got();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[3].body, body.as_bytes());
    assert_eq!(got[3].all("content-length"), ["10"]);
    let (extra, _) = c.extra(SHORT).await;
    assert!(extra.is_empty(), "{:?}", String::from_utf8_lossy(&extra));
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_within_the_header_timeout_is_served() {
    let e = env("[limits]\nclient_header_timeout_secs = 3\n", |_, _| {
        ok("served")
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    let r = req("GET", "/api/version");
    let start = Instant::now();
    for b in &r {
        c.send(std::slice::from_ref(b)).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "served");
    assert!(a.relayed(), "{a:?}");
    // And again on the same connection.
    for b in &r {
        c.send(std::slice::from_ref(b)).await;
    }
    assert_eq!(c.answer(false).await.unwrap().text(), "served");
    assert_eq!(e.up.got().len(), 2);
}

#[tokio::test]
async fn half_a_head_then_silence_is_disconnected_after_the_header_timeout() {
    let e = env("[limits]\nclient_header_timeout_secs = 1\n", |_, _| {
        ok("served")
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    let r = req("GET", "/api/version");
    c.send(&r[..r.len() / 2]).await;
    let start = Instant::now();
    let all = all_until_closed(&mut c).await;
    let took = start.elapsed();
    assert!(
        took > Duration::from_millis(800) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(!contains(&all, "served"), "{all:?}");
    assert!(e.up.got().is_empty());
}

#[tokio::test]

async fn a_head_dripped_slower_than_the_header_timeout_in_all_is_disconnected() {
    // Slowloris: a byte every 300 ms, each well within the 1 s header timeout, the head
    // never complete. The timeout is for the whole head (as hyper's
    // `header_read_timeout`), or a client holds a connection for ever at 3 bytes a second.
    let e = env("[limits]\nclient_header_timeout_secs = 1\n", |_, _| {
        ok("served")
    })
    .await;
    let s = TcpStream::connect(e.gw.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let start = Instant::now();
    let ended = tokio::spawn(async move {
        let mut b = [0u8; 1024];
        loop {
            match rd.read(&mut b).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    });
    let r = req("GET", "/api/version");
    let head = &r[..r.len() - 4];
    for b in head.iter().cycle().take(20) {
        if ended.is_finished() || wr.write_all(std::slice::from_ref(b)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(1), ended).await;
    let took = closed.map(|t| t.unwrap());
    assert!(
        took.as_ref()
            .is_ok_and(|t| *t < Duration::from_millis(2500)),
        "still open after {:?} of a byte every 300 ms ({took:?})",
        start.elapsed()
    );
    assert!(e.up.got().is_empty());
}

#[tokio::test]

async fn a_head_over_max_header_bytes_gets_431_however_it_arrives() {
    // The limit is 8 KiB; a 12 KiB head in one write and in two (the relay's buffer grows
    // between them).
    let e = env("[limits]\nmax_header_bytes = 8192\n", |_, _| ok("served")).await;
    let pad = format!("X-Pad: {}\r\n", "p".repeat(12_000));
    let r = req_as("GET", "/api/version", Some(&ada()), &pad);
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&r).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 431, "in one write: {a:?}");
    let mut failed = Vec::new();
    for first in [8000, 8100, 7200, 4000] {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&r[..first]).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.send(&r[first..]).await;
        let a = c.answer(false).await.unwrap();
        if a.status != 431 {
            failed.push(format!("split at {first}: {} {:?}", a.status, a.text()));
        }
    }
    assert!(
        failed.is_empty(),
        "{failed:#?}; Ray got {} request(s)",
        e.up.got().len()
    );
    assert!(e.up.got().is_empty(), "{}", e.up.got().len());
}

#[tokio::test]
async fn ray_gets_the_cluster_token_and_none_of_the_clients_credentials() {
    let e = env("", |_, _| ok("seen")).await;
    let mut c = Client::connect(e.gw.addr).await;
    let extra = "X-Ray-Authorization: Bearer stolen\r\n\
         Cookie: a=1; ray-authentication-token=stolen; rayward_session=stolen; b=2\r\n\
         Cookie: Ray-Authentication-Token=stolen2\r\n\
         X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n\
         X-Forwarded-Proto: https\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
         Keep-Alive: timeout=100\r\nProxy-Authorization: Basic c3RvbGVu\r\n\
         Proxy-Connection: keep-alive\r\nTrailer: X-T\r\nConnection: keep-alive\r\n\
         Accept: application/json\r\nX-Custom: kept\r\n";
    let r = format!(
        "GET /api/%6aobs/?limit=5 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {}\r\n{extra}\r\n",
        ada()
    );
    c.send(r.as_bytes()).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "seen");
    assert!(a.relayed(), "{a:?}");
    let got = e.up.got();
    let g = &got[0];
    assert!(
        g.head.starts_with("GET /api/jobs/?limit=5 HTTP/1.1\r\n"),
        "{}",
        g.head
    );
    assert_eq!(g.all("authorization"), [format!("Bearer {CLUSTER_TOKEN}")]);
    assert_eq!(g.all("host"), [e.up.addr.to_string()]);
    assert_eq!(g.all("cookie"), ["a=1; b=2"], "{}", g.head);
    assert_eq!(g.all("accept"), ["application/json"]);
    assert_eq!(g.all("x-custom"), ["kept"]);
    for gone in [
        "x-ray-authorization",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "forwarded",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "connection",
        "te",
        "upgrade",
        "content-length",
        "transfer-encoding",
    ] {
        assert!(g.all(gone).is_empty(), "{gone} reached Ray: {}", g.head);
    }
    for secret in ["stolen", "6.6.6.6", "evil.example", ADA_PW] {
        assert!(!g.head.contains(secret), "{secret} reached Ray: {}", g.head);
    }
    // Ray's own credential header alone (nothing else to strip) is stripped all the same.
    c.send(&req_as(
        "GET",
        "/api/version",
        Some(&ada()),
        "X-Ray-Authorization: Bearer stolen\r\n",
    ))
    .await;
    assert_eq!(c.answer(false).await.unwrap().text(), "seen");
    let got = e.up.got();
    assert_eq!(
        got[1].all("authorization"),
        [format!("Bearer {CLUSTER_TOKEN}")]
    );
    assert!(
        got[1].all("x-ray-authorization").is_empty(),
        "{}",
        got[1].head
    );
}

// ---------------------------------------------------------------------------------------
// Requests the relay must not serve, or must refuse.

#[tokio::test]
async fn request_smuggling_shapes_are_refused_by_the_framing_checks_and_reach_no_one() {
    let e = env("", |_, n| ok(&format!("ok {n}"))).await;
    let vic = basic("vic", VIC_PW);
    let alice = basic("alice", ALICE_PW);
    let job = r#"{"entrypoint":"echo pwned"}"#;
    let hidden = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{job}",
        job.len()
    );
    let cases: Vec<(String, &str)> = vec![
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}", 5 + hidden.len()),
            "both Transfer-Encoding and Content-Length",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}", hidden.len()),
            "more than one Content-Length",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{hidden}"),
            "more than one Transfer-Encoding",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{hidden}"),
            "Transfer-Encoding other than a single 'chunked'",
        ),
        (
            format!("GET /api/version HTTP/1.0\r\nHost: gw\r\nAuthorization: {vic}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"),
            "Transfer-Encoding in an HTTP/1.0 request",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"),
            "malformed request head (obs-fold, bad header name or value, bad request line)",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"),
            "bare LF in the request head",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\nAuthorization: {vic}\r\n\r\n"),
            "bare LF in the request head",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\n\n"),
            "bare LF in the request head",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nHost: other\r\nAuthorization: {vic}\r\n\r\n"),
            "more than one Host",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\nAuthorization: {vic}\r\n\r\n0\r\n\r\n"),
            "malformed request head (obs-fold, bad header name or value, bad request line)",
        ),
        (
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nX-A: a\rb\r\n\r\n"),
            "malformed request head (obs-fold, bad header name or value, bad request line)",
        ),
    ];
    for (i, (bad, reason)) in cases.iter().enumerate() {
        // Behind a good request on the same connection: the relay answers that one and
        // hands the rest to hyper, whose framing checks see it from its first byte.
        let mut c = Client::connect(e.gw.addr).await;
        let mut both = req_as("GET", "/api/version", Some(&vic), "");
        both.extend_from_slice(bad.as_bytes());
        c.send(&both).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.text(), format!("ok {}", i + 1), "{reason}: {a:?}");
        assert!(a.relayed());
        let r = c.answer(false).await.unwrap();
        assert_eq!(r.status, 400, "{reason}: {r:?}");
        assert_eq!(r.text(), format!("{reason}\n"));
        assert_eq!(r.header("connection").as_deref(), Some("close"));
        c.closed(WAIT).await.unwrap();
        // And alone, first on its connection.
        let mut c = Client::connect(e.gw.addr).await;
        c.send(bad.as_bytes()).await;
        let r = c.answer(false).await.unwrap();
        assert_eq!(r.status, 400, "{reason}: {r:?}");
        assert_eq!(r.text(), format!("{reason}\n"));
    }
    // The absolute form goes to hyper and the pipeline refuses it.
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req_as("GET", "http://evil/api/version", Some(&vic), ""))
        .await;
    let r = c.answer(false).await.unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    let got = e.up.got();
    assert_eq!(got.len(), cases.len(), "only the good requests: {got:?}");
    assert!(got.iter().all(|g| g.head.starts_with("GET /api/version ")));
    let refused = e.audit().into_iter().filter(|r| r["status"] == 400).count();
    assert_eq!(refused, 2 * cases.len() + 1);
}

#[tokio::test]
async fn unauthenticated_and_unauthorized_requests_never_reach_ray() {
    let e = env("", |_, n| ok(&format!("ok {n}"))).await;
    // No credentials, with a good request pipelined behind: 401, the connection ends,
    // and the second request is not served.
    let mut c = Client::connect(e.gw.addr).await;
    let mut two = req_as("GET", "/api/jobs/", None, "");
    two.extend(req("GET", "/api/jobs/"));
    c.send(&two).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic realm=")));
    c.closed(WAIT).await.unwrap();
    // The same as HEAD: no body.
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req_as("HEAD", "/api/jobs/", None, "")).await;
    let a = c.answer(true).await.unwrap();
    assert_eq!(a.status, 401, "{a:?}");
    c.closed(WAIT).await.unwrap();
    // Ray's token is no credential for the gateway, nor a wrong password.
    for auth in [
        format!("Bearer {CLUSTER_TOKEN}"),
        basic("vic", "nope"),
        "Bearer rwt_expired".to_string(),
    ] {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req_as("GET", "/api/jobs/", Some(&auth), "")).await;
        assert_eq!(c.answer(false).await.unwrap().status, 401, "{auth}");
    }
    // On one connection: the admin may profile, the viewer after it may not (the
    // connection's memo of the admin's credential does not carry over), nor may the
    // credential-less request after that.
    let vic = basic("vic", VIC_PW);
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/worker/cpu_profile?pid=1")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    c.send(&req_as("GET", "/worker/cpu_profile?pid=1", Some(&vic), ""))
        .await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    c.closed(WAIT).await.unwrap();
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req_as("GET", "/api/version", Some(&vic), "")).await;
    assert_eq!(c.answer(false).await.unwrap().status, 200);
    c.send(&req_as("GET", "/api/actors/kill?x=1", Some(&vic), ""))
        .await;
    assert_eq!(c.answer(false).await.unwrap().status, 403);
    c.closed(WAIT).await.unwrap();
    let got = e.up.got();
    assert_eq!(
        got.len(),
        2,
        "only the admin's and the viewer's allowed GET: {got:?}"
    );
    assert!(got[0].head.starts_with("GET /worker/cpu_profile?pid=1 "));
    assert!(got[1].head.starts_with("GET /api/version "));
}

#[tokio::test]
async fn answers_that_end_their_connection_are_not_reused() {
    // Ray says the connection ends (`Connection: close`, or HTTP/1.0) but leaves it open;
    // the relay must not send the next request on it.
    let e = env("", |g, n| match g.target() {
        "/api/jobs/says-close" => vec![w(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\nX-Stand: relay\r\n\r\nbye",
        )],
        "/api/jobs/http10" => vec![w(
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\nX-Stand: relay\r\n\r\nold",
        )],
        _ => ok(&format!("fresh {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    for (i, (path, body)) in [("/api/jobs/says-close", "bye"), ("/api/jobs/http10", "old")]
        .iter()
        .enumerate()
    {
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.text(), *body, "{a:?}");
        assert!(a.head.starts_with("HTTP/1.1 200 "), "{a:?}");
        assert_eq!(a.header("connection"), None, "{a:?}");
        // The client's connection is its own: it goes on.
        c.send(&req("GET", "/api/version")).await;
        let b = c.answer(false).await.unwrap();
        assert_eq!(b.text(), format!("fresh {}", 2 * i + 2));
        let got = e.up.got();
        assert_ne!(got[2 * i + 1].conn, got[2 * i].conn, "{path}: {got:?}");
    }
}

/// Ray's answers with a status below 100 (which hyper's client refuses: the path before
/// the relay answered 502), for `status_below_100_*`.
fn below_100(g: &Got, _: usize) -> Vec<Step> {
    match g.target() {
        "/api/jobs/099" => vec![
            w("HTTP/1.1 099 Odd\r\nContent-Length: 6\r\nX-Stand: relay\r\n\r\nSECRET"),
            Step::Close,
        ],
        "/api/jobs/000" => vec![
            w("HTTP/1.1 000 Zero\r\nContent-Length: 6\r\nX-Stand: relay\r\n\r\nSECRET"),
            Step::Close,
        ],
        _ => ok("plain"),
    }
}

/// What the client got for each status below 100 that is not a 502 without Ray's bytes.
async fn below_100_failures(e: &Env) -> Vec<String> {
    let mut failed = Vec::new();
    for path in ["/api/jobs/099", "/api/jobs/000"] {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", path)).await;
        let a = c.answer(false).await;
        let _ = c.extra(SHORT).await;
        let ok = matches!(&a, Ok(a) if a.status == 502) && !contains(&c.seen, "SECRET");
        if !ok {
            failed.push(format!("{path}: {:?}", String::from_utf8_lossy(&c.seen)));
        }
    }
    failed
}

#[tokio::test]
async fn status_codes_below_100_get_502() {
    let e = env("", below_100).await;
    let failed = below_100_failures(&e).await;
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn status_codes_below_100_get_502_even_when_ray_errors_pass() {
    // With Ray's 5xx bodies passed through, the relay (which reads a status it cannot
    // name as a server error) must not pass a status line no client can read.
    let e = env("pass_upstream_errors = true\n", below_100).await;
    let failed = below_100_failures(&e).await;
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn a_websocket_after_relayed_requests_is_spliced_by_hyper() {
    let e = env("", |g, n| match g.target() {
        "/api/jobs/raysubmit_1/logs/tail" if !g.all("upgrade").is_empty() => vec![
            w("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: test\r\n\r\n"),
            Step::Echo,
        ],
        _ => ok(&format!("ok {n}")),
    })
    .await;
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "ok 1");
    // The upgrade pipelined behind a relayed GET, bytes for the tunnel right after it.
    let mut two = req("GET", "/api/jobs/raysubmit_1/logs");
    two.extend(req_as(
        "GET",
        "/api/jobs/raysubmit_1/logs/tail",
        Some(&ada()),
        ws,
    ));
    c.send(&two).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.text(), "ok 2");
    assert!(a.relayed(), "{a:?}");
    let u = c.answer(false).await.unwrap();
    assert_eq!(u.status, 101, "{u:?}");
    c.send(b"ping-bytes").await;
    while c.buf.len() < 10 {
        assert!(c.fill(WAIT).await.unwrap(), "closed");
    }
    assert_eq!(c.buf, b"ping-bytes");
    let got = e.up.got();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[2].all("authorization"),
        [format!("Bearer {CLUSTER_TOKEN}")]
    );
}

#[tokio::test]
async fn a_big_answer_streams_whole_and_one_abandoned_half_read_is_not_reused() {
    const BIG: usize = 4 << 20;
    let e = env("", |g, n| match g.target() {
        "/api/jobs/big" => {
            let mut s = vec![w(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nX-Stand: relay\r\n\r\n"
            ))];
            for _ in 0..64 {
                s.push(Step::W(vec![b'x'; BIG / 64]));
            }
            s
        }
        _ => ok(&format!("ok {n}")),
    })
    .await;
    {
        // Reads the head and a little of 4 MiB, then goes away.
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", "/api/jobs/big")).await;
        while c.buf.len() < 100_000 {
            assert!(c.fill(WAIT).await.unwrap(), "closed early");
        }
    }
    for n in 2..=4 {
        let mut c = Client::connect(e.gw.addr).await;
        c.send(&req("GET", "/api/version")).await;
        let a = c.answer(false).await.unwrap();
        assert_eq!(a.text(), format!("ok {n}"), "{a:?}");
    }
    assert_ne!(
        e.up.got()[1].conn,
        0,
        "the abandoned connection was used again"
    );
    // Read to its end: whole, and its connection reused after.
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/big")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.body.len(), BIG);
    assert!(a.body.iter().all(|&b| b == b'x'));
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "ok 6");
    let got = e.up.got();
    assert_eq!(got[5].conn, got[4].conn, "{got:?}");
}

#[tokio::test]
async fn an_answer_written_a_byte_at_a_time_is_relayed_whole() {
    let answer = format!(
        "HTTP/1.1 100 Continue\r\n\r\n{CHUNKED_HEAD}{}",
        CHUNKS.concat()
    );
    let e = env("", move |g, n| match g.target() {
        "/api/jobs/drip" => answer
            .bytes()
            .flat_map(|b| [Step::W(vec![b]), Step::Sleep(1)])
            .collect(),
        _ => ok(&format!("ok {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/drip")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.relayed(), "{a:?}");
    assert_eq!(String::from_utf8_lossy(&a.wire), CHUNKS.concat());
    c.send(&req("GET", "/api/version")).await;
    assert_eq!(c.answer(false).await.unwrap().text(), "ok 2");
    let got = e.up.got();
    assert_eq!(got[1].conn, got[0].conn, "{got:?}");
}

#[tokio::test]
async fn answers_with_many_headers_pass_whole_and_too_many_get_502() {
    let many = |n: usize| -> String { (0..n).map(|i| format!("X-H{i}: v{i}\r\n")).collect() };
    let (sixty, too_many) = (many(60), many(120));
    let e = env("", move |g, n| match g.target() {
        "/api/jobs/sixty" => vec![w(format!(
            "HTTP/1.1 200 OK\r\n{sixty}Content-Length: 2\r\nX-Stand: relay\r\n\r\nok"
        ))],
        "/api/jobs/too-many" => vec![w(format!(
            "HTTP/1.1 200 OK\r\n{too_many}Content-Length: 6\r\n\r\nSECRET"
        ))],
        _ => ok(&format!("fresh {n}")),
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    c.send(&req("GET", "/api/jobs/sixty")).await;
    let a = c.answer(false).await.unwrap();
    assert!(a.relayed(), "{a:?}");
    assert_eq!(a.text(), "ok");
    for i in 0..60 {
        assert_eq!(a.header(&format!("x-h{i}")), Some(format!("v{i}")), "{a:?}");
    }
    c.send(&req("GET", "/api/jobs/too-many")).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 502, "{a:?}");
    assert!(
        !contains(&a.wire, "SECRET") && !a.head.contains("X-H0"),
        "{a:?}"
    );
}

#[tokio::test]
async fn a_get_with_a_body_goes_to_hyper_with_its_body() {
    // A Content-Length on a GET is framing: the relay must not read the body as the next
    // request (hyper forwards it, and the next request after it is answered).
    let e = env("", |g, n| {
        ok(&format!(
            "{n} {} {}",
            g.target(),
            String::from_utf8_lossy(&g.body)
        ))
    })
    .await;
    let mut c = Client::connect(e.gw.addr).await;
    let mut two = req_as("GET", "/api/jobs/", Some(&ada()), "Content-Length: 5\r\n");
    two.extend_from_slice(b"hello");
    two.extend(req("GET", "/api/version"));
    c.send(&two).await;
    let a = c.answer(false).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.text(), "1 /api/jobs/ hello");
    let b = c.answer(false).await.unwrap();
    assert_eq!(b.text(), "2 /api/version ", "{b:?}");
    let got = e.up.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].body, b"hello");
}
