//! The gateway's own HTTP/1 path for the common request, ahead of hyper.
//!
//! hyper's general machinery (its server and client state machines, header maps both
//! ways, body channels, a task per upstream connection) cost per request as much as
//! nginx's whole `proxy_pass` (docs/benchmarks.md, issue 14). On a plain connection the
//! relay reads each head itself ([`head`]): a `GET` or `HEAD` without a body goes through
//! the same pipeline as every request ([`Gateway::decide`]: network filter, shape,
//! routes, authentication, authorization, rate limit, audit), which hands it back ready
//! for Ray instead of sending it; the relay writes it to a raw pooled connection
//! ([`upstream`]), and copies Ray's answer back with only its head rewritten (hop-by-hop
//! headers removed, 5xx bodies replaced as [`crate::proxy`] does) and its body's end
//! found by its framing ([`chunked`] for chunked ones). Any other request, and TLS
//! connections, go to hyper as before ([`rayward_serve::front`]), with the bytes read.

pub mod chunked;
pub mod deadline;
pub mod head;
pub mod upstream;

use crate::memo::ConnMemo;
use crate::proxy::{Body, UpstreamError};
use crate::service::{Decided, Gateway, Ticket};
use bytes::BytesMut;
use chunked::Chunked;
use deadline::Deadline;
use head::Head;
use http::{header, Method, Response, StatusCode};
use http_body_util::BodyExt;
use rayward_serve::front::{Front, FrontFuture, Handoff};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;
use upstream::Framing;

/// Read buffers start at this size.
const BUF: usize = 8 * 1024;

/// The relay of one gateway; see the module documentation.
pub struct Relay {
    gw: Arc<Gateway>,
    /// Time to send a request head, and longest wait for the next on an idle connection.
    header_timeout: Duration,
    /// Largest head the relay reads before hyper gets it (and refuses it with 431).
    max_head: usize,
    max_headers: usize,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("header_timeout", &self.header_timeout)
            .finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(
        gw: Arc<Gateway>,
        header_timeout: Duration,
        max_head: usize,
        max_headers: usize,
    ) -> Relay {
        Relay {
            gw,
            header_timeout,
            max_head,
            max_headers,
        }
    }
}

impl Front for Relay {
    fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        stopping: watch::Receiver<bool>,
    ) -> FrontFuture {
        Box::pin(async move { self.run(tcp, peer, stopping).await })
    }
}

/// How one relayed request left the client connection.
enum After {
    KeepAlive,
    Close,
}

impl Relay {
    async fn run(
        self: Arc<Self>,
        mut tcp: TcpStream,
        peer: SocketAddr,
        mut stopping: watch::Receiver<bool>,
    ) -> Handoff {
        let memo = ConnMemo::default();
        // Heads are split off this buffer, not copied; its memory is reused once the
        // requests cut from it are gone.
        let mut buf = BytesMut::with_capacity(BUF);
        let mut up_buf: Vec<u8> = Vec::new();
        let mut out: Vec<u8> = Vec::with_capacity(BUF);
        let mut request: Vec<u8> = Vec::with_capacity(1024);
        // Each head must arrive whole within `header_timeout` of the wait for it; each
        // answer's head within the upstream's timeout of the request.
        let mut head_deadline = Deadline::new();
        let mut answer_deadline = Deadline::new();
        loop {
            let mut waiting_since = None;
            // A whole head at the start of `buf`, or hyper's turn.
            let req = loop {
                match head::parse(&mut buf, self.max_head, self.max_headers) {
                    Head::Ready { req, .. } => break req,
                    Head::Hyper => return Handoff::Rest(tcp, buf.to_vec()),
                    Head::Partial if buf.len() >= self.max_head => {
                        return Handoff::Rest(tcp, buf.to_vec())
                    }
                    Head::Partial => {}
                }
                if *stopping.borrow() && buf.is_empty() {
                    return Handoff::Done;
                }
                if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(BUF);
                }
                let since = *waiting_since.get_or_insert_with(TokioInstant::now);
                let read = tokio::select! {
                    r = head_deadline.run(since + self.header_timeout, tcp.read_buf(&mut buf)) => r,
                    _ = stopping.changed(), if buf.is_empty() => return Handoff::Done,
                };
                match read {
                    Some(Ok(n)) if n > 0 => {}
                    // Closed, broken, or too slow: as hyper, close (a partial head is
                    // answered by nobody).
                    _ => return Handoff::Done,
                }
            };
            let head_request = req.method() == Method::HEAD;
            let after = match self.gw.decide(req, peer, Some(&memo)).await {
                Decided::Answer(resp) => write_answer(&mut tcp, resp, head_request, &mut out).await,
                Decided::Relay(ticket, ctx) => {
                    request.clear();
                    encode_request(&ticket, &mut request);
                    let upstream = ticket.upstream;
                    let started = TokioInstant::now();
                    let got = answer_deadline
                        .run(
                            started + upstream.timeout(),
                            upstream
                                .raw
                                .exchange(&request, head_request, &mut up_buf, &mut out),
                        )
                        .await;
                    match got {
                        None => {
                            let r = self
                                .gw
                                .relay_failed(ctx, UpstreamError::Timeout(upstream.timeout()));
                            write_answer(&mut tcp, r, head_request, &mut out).await
                        }
                        Some(Err(e)) => {
                            let r = self.gw.relay_failed(ctx, e);
                            write_answer(&mut tcp, r, head_request, &mut out).await
                        }
                        Some(Ok(answer)) => {
                            let status = StatusCode::from_u16(answer.status)
                                .unwrap_or(StatusCode::BAD_GATEWAY);
                            self.gw.relayed(ctx, status, started.elapsed());
                            if status.is_server_error() && !upstream.pass_errors() {
                                // Ray's traceback stays behind; so does its connection.
                                drop(answer);
                                write_answer(
                                    &mut tcp,
                                    crate::proxy::upstream_error(status),
                                    head_request,
                                    &mut out,
                                )
                                .await
                            } else {
                                relay_body(&mut tcp, answer, &upstream, &mut up_buf, &mut out).await
                            }
                        }
                    }
                }
            };
            match after {
                After::KeepAlive if !*stopping.borrow() => {}
                _ => {
                    let _ = tcp.shutdown().await;
                    return Handoff::Done;
                }
            }
        }
    }
}

/// The request line and headers Ray gets.
fn encode_request(t: &Ticket, out: &mut Vec<u8>) {
    out.extend_from_slice(t.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(t.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &t.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes with the upstream's idle limit: a client that stops reading is dropped. A write
/// the socket takes at once (the usual case) needs no timer.
async fn write_to(tcp: &mut TcpStream, bytes: &[u8], idle: Duration) -> bool {
    let rest = match tcp.try_write(bytes) {
        Ok(n) if n == bytes.len() => return true,
        Ok(n) => &bytes[n..],
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => bytes,
        Err(_) => return false,
    };
    matches!(
        tokio::time::timeout(idle, tcp.write_all(rest)).await,
        Ok(Ok(()))
    )
}

/// Copies Ray's answer to the client: the rewritten head in `out`, then the body as its
/// framing delimits it. The upstream connection goes back to the pool only when the
/// answer ended exactly where its framing said.
async fn relay_body(
    tcp: &mut TcpStream,
    answer: upstream::Answer,
    upstream: &crate::proxy::Upstream,
    up_buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> After {
    let idle = upstream.idle();
    let upstream::Answer {
        mut conn,
        framing,
        mut reuse,
        head_len,
        ..
    } = answer;
    let first = &up_buf[head_len..];
    let mut chunked = Chunked::new();
    // Body bytes that came with the head, and how many more are owed.
    let (take, mut left) = match framing {
        Framing::Empty => (0, 0),
        Framing::Length(n) => {
            let k = (first.len() as u64).min(n) as usize;
            (k, n - k as u64)
        }
        Framing::Chunked => match chunked.feed(first) {
            Ok(k) => (k, u64::from(!chunked.done())),
            Err(_) => return After::Close,
        },
        Framing::Close => (first.len(), 1),
    };
    if take < first.len() {
        // More than the answer: the connection's next bytes are not a clean start.
        reuse = false;
    }
    out.extend_from_slice(&first[..take]);
    if !write_to(tcp, out, idle).await {
        return After::Close;
    }
    while left > 0 {
        up_buf.clear();
        if up_buf.capacity() < BUF {
            up_buf.reserve(BUF);
        }
        let n = match tokio::time::timeout(idle, conn.read_buf(up_buf)).await {
            Ok(Ok(n)) => n,
            // Ray stalled or broke inside the body: the client's answer cannot be
            // completed; ending its connection tells it so.
            _ => return After::Close,
        };
        if n == 0 {
            return After::Close;
        }
        let take = match framing {
            Framing::Length(_) => {
                let k = (n as u64).min(left) as usize;
                left -= k as u64;
                k
            }
            Framing::Chunked => match chunked.feed(&up_buf[..n]) {
                Ok(k) => {
                    left = u64::from(!chunked.done());
                    k
                }
                Err(_) => return After::Close,
            },
            Framing::Close | Framing::Empty => n,
        };
        if take < n {
            reuse = false;
        }
        if !write_to(tcp, &up_buf[..take], idle).await {
            return After::Close;
        }
    }
    if framing == Framing::Close {
        return After::Close;
    }
    if reuse {
        upstream.raw.give(conn);
    }
    After::KeepAlive
}

/// Writes one of the gateway's own answers (refusals, the login and landing pages, ...),
/// as hyper would: its headers, a `Content-Length`, a `Date`, the body unless the request
/// was `HEAD`. An answer that says `Connection: close` closes the connection.
async fn write_answer(
    tcp: &mut TcpStream,
    resp: Response<Body>,
    head_request: bool,
    out: &mut Vec<u8>,
) -> After {
    let (parts, body) = resp.into_parts();
    // The gateway's own answers are whole bodies (`proxy::full`): no stream to bound.
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return After::Close,
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut close = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONNECTION && value.as_bytes().eq_ignore_ascii_case(b"close") {
            close = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless =
        parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED;
    if !bodiless {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    if !head_request && !bodiless {
        out.extend_from_slice(&body);
    }
    if !matches!(
        tokio::time::timeout(Duration::from_secs(30), tcp.write_all(out)).await,
        Ok(Ok(()))
    ) {
        return After::Close;
    }
    if close {
        After::Close
    } else {
        After::KeepAlive
    }
}
