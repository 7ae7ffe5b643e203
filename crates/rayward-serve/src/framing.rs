//! Strict HTTP/1.1 message framing, checked on the raw bytes before hyper reads them.
//!
//! hyper resolves ambiguous framing as RFC 9112 §6.3 allows a server to: with both
//! `Transfer-Encoding: chunked` and `Content-Length` it drops `Content-Length`, and it
//! folds a repeated identical `Content-Length` into one. A service behind hyper therefore
//! never sees the ambiguity, and answers a request that a front proxy may have framed
//! differently (request smuggling). Ray's own server answers such bytes with 400; so does
//! every rayward server, through this wrapper around the connection:
//!
//! - each request head is held back until it is complete, checked, and only then handed
//!   to hyper; a refused head never reaches hyper, the connection is ended (requests
//!   before it on a keep-alive connection have been answered; one pipelined into the same
//!   packet may be dropped by hyper when the stream ends) and a `400` (or `431`) is
//!   written last;
//! - refused: both `Transfer-Encoding` and `Content-Length`; more than one
//!   `Content-Length` or `Transfer-Encoding` line; a `Content-Length` that is not plain
//!   digits; a `Transfer-Encoding` other than exactly `chunked`; `Transfer-Encoding` on
//!   HTTP/1.0; more than one `Host`; a bare LF instead of CRLF; obs-fold (a header line
//!   starting with a space or tab) and every other head `httparse` refuses; heads over the
//!   size limit or with more headers than allowed (431);
//! - bodies are followed byte by byte (a `Content-Length` count, or the chunked grammar
//!   read strictly: hex size, optional extension, CRLF, data, CRLF, trailers) so the next
//!   head on a keep-alive connection is found where hyper will look for it. Chunked bytes
//!   that break the grammar end the connection (hyper would refuse them too);
//! - after a `101 Switching Protocols` written back to an `Upgrade` request, the bytes
//!   are a WebSocket and pass unchecked.
//!
//! Memory per connection is bounded by the head limit and an 8 KiB read buffer.
//!
//! Cost per request (the gateway's hot path, docs/benchmarks.md): the read buffer is the
//! connection's, zeroed once, not once per read; a head read whole (the usual case) moves
//! to hyper by swapping buffers, without a copy; header slots are not initialised before
//! parsing; nothing is allocated for a head that is accepted.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A request refused for its framing, as the server's hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 400, or 431 for a head over the limits.
    pub status: u16,
    pub reason: &'static str,
    /// The request line's method and target, when the head parsed that far.
    pub method: Option<String>,
    pub target: Option<String>,
}

/// Called once for every refused head (audit log, metrics) with the peer's address.
#[derive(Clone)]
pub struct RefusalHook(pub Arc<RefusalFn>);

/// What a [`RefusalHook`] calls.
pub type RefusalFn = dyn Fn(SocketAddr, &Refused) + Send + Sync;

impl std::fmt::Debug for RefusalHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefusalHook")
    }
}

/// Largest chunk-size line (with its extension) and largest trailer section.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8 * 1024;
const READ_BUF: usize = 8 * 1024;
/// Header slots kept on the stack while a head is parsed.
const STACK_HEADERS: usize = 128;

enum State {
    Head,
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    /// The CRLF after a chunk's data; how many of its two bytes were seen.
    ChunkEnd(u8),
    /// Trailer lines; the bytes of the current line.
    Trailers {
        line: Vec<u8>,
        total: usize,
    },
    Tunnel,
    Refused,
}

/// The connection seen through the framing checks; see the module documentation.
pub struct Framed<S: AsyncWrite + Unpin> {
    inner: S,
    state: State,
    /// Bytes of the head being read, held back from hyper.
    head: Vec<u8>,
    /// Checked bytes hyper has not read yet.
    ready: Vec<u8>,
    /// Where the socket is read into: allocated (and zeroed) on the first read, reused
    /// for every read after it.
    scratch: Vec<u8>,
    ready_pos: usize,
    max_head: usize,
    max_headers: usize,
    /// The answer to write before the connection is shut down, and how much is written.
    refusal: Option<(Vec<u8>, usize)>,
    /// An `Upgrade` request was passed on: a `101` written back starts the tunnel.
    awaiting_101: bool,
    eof: bool,
    hook: Option<(RefusalHook, SocketAddr)>,
}

impl<S: AsyncWrite + Unpin> Framed<S> {
    /// Wraps a connection; heads over `max_head` bytes or `max_headers` headers get 431.
    pub fn new(
        inner: S,
        max_head: usize,
        max_headers: usize,
        hook: Option<(RefusalHook, SocketAddr)>,
    ) -> Framed<S> {
        Framed {
            inner,
            state: State::Head,
            head: Vec::new(),
            ready: Vec::new(),
            scratch: Vec::new(),
            ready_pos: 0,
            max_head,
            max_headers,
            refusal: None,
            awaiting_101: false,
            eof: false,
            hook,
        }
    }

    /// Runs newly read bytes through the state machine: checked bytes go to `ready`.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Refused => return,
                State::Tunnel => {
                    self.ready.extend_from_slice(data);
                    return;
                }
                State::Head => {
                    let start = self.head.len();
                    let take = data.len().min(self.max_head + 1 - start);
                    self.head.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    match self.check_head(start) {
                        HeadStep::Partial if self.head.len() > self.max_head => {
                            self.refuse(431, "request head too large", None, None);
                            return;
                        }
                        HeadStep::Partial => {}
                        HeadStep::Refuse(status, reason, method, target) => {
                            self.refuse(status, reason, method, target);
                            return;
                        }
                        HeadStep::Complete(len, next) if len == self.head.len() => {
                            // The usual case: the bytes read end with the head. Handed
                            // over by a swap when hyper has read everything before.
                            if self.ready.is_empty() {
                                std::mem::swap(&mut self.ready, &mut self.head);
                            } else {
                                self.ready.append(&mut self.head);
                            }
                            self.state = next;
                        }
                        HeadStep::Complete(len, next) => {
                            let rest = self.head.split_off(len);
                            self.ready.append(&mut self.head);
                            self.state = next;
                            // Bytes after the head belong to its body or the next head.
                            let mut pending = rest;
                            pending.extend_from_slice(data);
                            self.feed(&pending);
                            return;
                        }
                    }
                }
                State::Body(n) => {
                    let k = (*n).min(data.len() as u64) as usize;
                    self.ready.extend_from_slice(&data[..k]);
                    *n -= k as u64;
                    data = &data[k..];
                    if *n == 0 {
                        self.state = State::Head;
                    }
                }
                State::ChunkData(n) => {
                    let k = (*n).min(data.len() as u64) as usize;
                    self.ready.extend_from_slice(&data[..k]);
                    *n -= k as u64;
                    data = &data[k..];
                    if *n == 0 {
                        self.state = State::ChunkEnd(0);
                    }
                }
                State::ChunkEnd(seen) => {
                    let b = data[0];
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if b != want {
                        self.cut();
                        return;
                    }
                    self.ready.push(b);
                    data = &data[1..];
                    if *seen == 0 {
                        *seen = 1;
                    } else {
                        self.state = State::ChunkSize(Vec::new());
                    }
                }
                State::ChunkSize(line) => {
                    let b = data[0];
                    data = &data[1..];
                    line.push(b);
                    if line.len() > MAX_CHUNK_LINE {
                        self.cut();
                        return;
                    }
                    if b != b'\n' {
                        continue;
                    }
                    let Some(size) = chunk_size(line) else {
                        self.cut();
                        return;
                    };
                    self.ready.append(line);
                    self.state = if size == 0 {
                        State::Trailers {
                            line: Vec::new(),
                            total: 0,
                        }
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::Trailers { line, total } => {
                    let b = data[0];
                    data = &data[1..];
                    line.push(b);
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        self.cut();
                        return;
                    }
                    if b != b'\n' {
                        continue;
                    }
                    if !line.ends_with(b"\r\n") {
                        self.cut();
                        return;
                    }
                    let last = line.len() == 2;
                    self.ready.append(line);
                    if last {
                        self.state = State::Head;
                    }
                }
            }
        }
    }

    /// Looks at the head read so far (`from`: where the new bytes start).
    fn check_head(&mut self, from: usize) -> HeadStep {
        let head = &self.head;
        if !head[from..].contains(&b'\n') {
            return HeadStep::Partial;
        }
        // On the stack for the usual limit (100): no allocation per request, and left
        // uninitialised (httparse writes the slots it uses): zeroing 4 KiB of slots on
        // every head cost more than parsing it.
        let mut stack =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap = Vec::new();
        let headers: &mut [std::mem::MaybeUninit<httparse::Header<'_>>] =
            if self.max_headers <= STACK_HEADERS {
                &mut stack[..self.max_headers]
            } else {
                heap.resize_with(self.max_headers, std::mem::MaybeUninit::uninit);
                &mut heap
            };
        let mut req = httparse::Request::new(&mut []);
        let parsed = req.parse_with_uninit_headers(head, headers);
        // A bare LF ends a line for httparse but not for a strict front proxy. Only the
        // head's own bytes are looked at (what follows it is a body or the next head).
        let end = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            _ => head.len(),
        };
        if has_bare_lf(&head[..end]) {
            return HeadStep::Refuse(400, "bare LF in the request head", None, None);
        }
        let len =
            match parsed {
                Ok(httparse::Status::Partial) => return HeadStep::Partial,
                Ok(httparse::Status::Complete(n)) => n,
                Err(httparse::Error::TooManyHeaders) => {
                    return HeadStep::Refuse(431, "too many request headers", None, None)
                }
                Err(_) => return HeadStep::Refuse(
                    400,
                    "malformed request head (obs-fold, bad header name or value, bad request line)",
                    req.method.map(str::to_string),
                    req.path.map(str::to_string),
                ),
            };
        let (method, target) = (req.method, req.path);
        let (mut cl, mut te, mut host, mut upgrade) = (Vec::new(), Vec::new(), 0, false);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                cl.push(h.value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te.push(h.value);
            } else if h.name.eq_ignore_ascii_case("host") {
                host += 1;
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        // Owned only when refused: an accepted head allocates nothing.
        let refuse = |reason| {
            HeadStep::Refuse(
                400,
                reason,
                method.map(str::to_string),
                target.map(str::to_string),
            )
        };
        if !te.is_empty() && !cl.is_empty() {
            return refuse("both Transfer-Encoding and Content-Length");
        }
        if cl.len() > 1 {
            return refuse("more than one Content-Length");
        }
        if te.len() > 1 {
            return refuse("more than one Transfer-Encoding");
        }
        if host > 1 {
            return refuse("more than one Host");
        }
        let next = if let Some(v) = te.first() {
            if req.version != Some(1) {
                return refuse("Transfer-Encoding in an HTTP/1.0 request");
            }
            if !v.eq_ignore_ascii_case(b"chunked") {
                return refuse("Transfer-Encoding other than a single 'chunked'");
            }
            State::ChunkSize(Vec::new())
        } else if let Some(v) = cl.first() {
            let n = (!v.is_empty() && v.len() <= 18 && v.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .flatten();
            match n {
                Some(0) => State::Head,
                Some(n) => State::Body(n),
                None => return refuse("malformed Content-Length"),
            }
        } else {
            State::Head
        };
        self.awaiting_101 = upgrade;
        HeadStep::Complete(len, next)
    }

    /// Refuses the head being read: hyper reads the end of the stream once it has what
    /// came before, and the answer is written when it shuts the connection down.
    fn refuse(
        &mut self,
        status: u16,
        reason: &'static str,
        method: Option<String>,
        target: Option<String>,
    ) {
        self.state = State::Refused;
        self.head = Vec::new();
        let title = if status == 431 {
            "Request Header Fields Too Large"
        } else {
            "Bad Request"
        };
        let body = format!("{reason}\n");
        let resp = format!(
            "HTTP/1.1 {status} {title}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        self.refusal = Some((resp.into_bytes(), 0));
        if let Some((hook, peer)) = &self.hook {
            (hook.0)(
                *peer,
                &Refused {
                    status,
                    reason,
                    method,
                    target,
                },
            );
        }
    }

    /// Ends the connection without an answer: a body broke the chunked grammar after
    /// hyper may already have started answering its request.
    fn cut(&mut self) {
        self.state = State::Refused;
    }
}

enum HeadStep {
    Partial,
    Complete(usize, State),
    Refuse(u16, &'static str, Option<String>, Option<String>),
}

/// Whether a line of `head` ends in LF without CR before it (the framing checks and the
/// gateway's relay, on requests and on Ray's answers). Eight bytes at a time: a
/// head has a dozen lines, and a search per line (memchr) cost more than the parse.
pub fn has_bare_lf(head: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `w` equal to `b`, exactly (no carry between bytes).
    let eq = |w: u64, b: u8| {
        let x = w ^ (0x0101_0101_0101_0101 * u64::from(b));
        !(((x & !HIGH) + !HIGH) | x) & HIGH
    };
    let mut prev_cr = false;
    let mut words = head.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        let lf = eq(w, b'\n');
        if lf != 0 {
            // Each byte's CR flag moved onto the byte after it (little endian: up 8 bits).
            let cr_before = (eq(w, b'\r') << 8) | if prev_cr { 0x80 } else { 0 };
            if lf & !cr_before != 0 {
                return true;
            }
        }
        prev_cr = c[7] == b'\r';
    }
    for &b in words.remainder() {
        if b == b'\n' && !prev_cr {
            return true;
        }
        prev_cr = b == b'\r';
    }
    false
}

/// The size of a chunk-size line `HEX[;ext]CRLF`, read strictly: hex digits only (no
/// sign, no space, at most 15 of them), an extension of visible characters, CRLF.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let (hex, ext) = match line.iter().position(|&b| b == b';') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if hex.is_empty() || hex.len() > 15 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    if let Some(ext) = ext {
        if !ext
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return None;
        }
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Framed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_pos < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_pos);
                buf.put_slice(&this.ready[this.ready_pos..this.ready_pos + n]);
                this.ready_pos += n;
                if this.ready_pos == this.ready.len() {
                    this.ready.clear();
                    this.ready_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || matches!(this.state, State::Refused) {
                return Poll::Ready(Ok(()));
            }
            if this.scratch.is_empty() {
                this.scratch = vec![0u8; READ_BUF];
            }
            let mut scratch = std::mem::take(&mut this.scratch);
            let mut rb = ReadBuf::new(&mut scratch);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            match polled {
                Poll::Pending => {
                    this.scratch = scratch;
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    this.scratch = scratch;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => {
                    if n == 0 {
                        this.eof = true;
                    } else {
                        this.feed(&scratch[..n]);
                    }
                    this.scratch = scratch;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Framed<S> {
    fn saw_write(&mut self, first: &[u8]) {
        if self.awaiting_101 && !first.is_empty() {
            self.awaiting_101 = false;
            if first.starts_with(b"HTTP/1.1 101 ") {
                self.state = State::Tunnel;
                self.ready.append(&mut self.head);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Framed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.saw_write(buf);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.saw_write(first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while let Some((resp, written)) = &mut this.refusal {
            if *written == resp.len() {
                this.refusal = None;
                break;
            }
            match Pin::new(&mut this.inner).poll_write(cx, &resp[*written..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) | Poll::Ready(Ok(0)) => {
                    this.refusal = None;
                    break;
                }
                Poll::Ready(Ok(n)) => *written += n,
            }
        }
        if Pin::new(&mut this.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Should hyper end the connection without shutting it down (it does when the end of the
/// stream comes while pipelined requests are still buffered), the refusal is still
/// written: once, without waiting (it fits a socket buffer).
impl<S: AsyncWrite + Unpin> Drop for Framed<S> {
    fn drop(&mut self) {
        let Some((resp, written)) = self.refusal.take() else {
            return;
        };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut inner = Pin::new(&mut self.inner);
        if let Poll::Ready(Ok(_)) = inner.as_mut().poll_write(&mut cx, &resp[written..]) {
            let _ = inner.as_mut().poll_flush(&mut cx);
            let _ = inner.poll_shutdown(&mut cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Option<(u16, &'static str)>) {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let s2 = seen.clone();
        let hook = RefusalHook(Arc::new(move |_, r: &Refused| {
            *s2.lock().unwrap() = Some((r.status, r.reason));
        }));
        let mut f = Framed::new(
            tokio::io::sink(),
            4096,
            100,
            Some((hook, "127.0.0.1:1".parse().unwrap())),
        );
        // Byte by byte, then all at once: the split must not matter.
        for b in input {
            f.feed(std::slice::from_ref(b));
        }
        let one = (f.ready.clone(), *seen.lock().unwrap());
        *seen.lock().unwrap() = None;
        let mut g = Framed::new(
            tokio::io::sink(),
            4096,
            100,
            Some((
                RefusalHook(Arc::new({
                    let s = seen.clone();
                    move |_, r: &Refused| *s.lock().unwrap() = Some((r.status, r.reason))
                })),
                "127.0.0.1:1".parse().unwrap(),
            )),
        );
        g.feed(input);
        assert_eq!(one, (g.ready.clone(), *seen.lock().unwrap()), "split");
        one
    }

    #[test]
    fn good_requests_pass_whole() {
        let reqs: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        ];
        let all: Vec<u8> = reqs.concat();
        let (out, refused) = run(&all);
        assert_eq!(refused, None);
        assert_eq!(out, all);
    }

    #[test]
    fn ambiguous_heads_are_refused_and_never_passed() {
        let first = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        for (bad, reason) in [
            (&b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"[..], "both Transfer-Encoding and Content-Length"),
            (b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding and Content-Length"),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "more than one Content-Length"),
            (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", "malformed Content-Length"),
            (b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", "malformed Content-Length"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "more than one Transfer-Encoding"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding other than a single 'chunked'"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", "Transfer-Encoding other than a single 'chunked'"),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
            (b"GET / HTTP/1.1\nHost: a\n\n", "bare LF in the request head"),
        ] {
            let input = [&first[..], bad].concat();
            let (out, refused) = run(&input);
            assert_eq!(out, first, "{}", String::from_utf8_lossy(bad));
            assert_eq!(refused, Some((400, reason)), "{}", String::from_utf8_lossy(bad));
        }
        // obs-fold and a space before the colon: httparse's own refusals.
        for bad in [
            &b"GET / HTTP/1.1\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
        ] {
            let (out, refused) = run(bad);
            assert!(out.is_empty());
            assert_eq!(
                refused.map(|r| r.0),
                Some(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_head_hidden_in_a_body_is_body_and_the_next_head_is_checked() {
        // The body is exactly the bytes of a request: not a head.
        let inner = b"POST /api/jobs/ HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n";
        let outer = format!(
            "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            inner.len()
        );
        let input = [outer.as_bytes(), inner].concat();
        let (out, refused) = run(&input);
        assert_eq!((out, refused), (input.clone(), None));
        // After a chunked body, the next head is found and checked.
        let chunked =
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let bad = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        let (out, refused) = run(&[&chunked[..], bad].concat());
        assert_eq!(out, chunked.to_vec());
        assert_eq!(refused, Some((400, "more than one Content-Length")));
    }

    #[test]
    fn broken_chunks_end_the_stream() {
        for bad in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        ] {
            let mut f = Framed::new(tokio::io::sink(), 4096, 100, None);
            f.feed(bad);
            assert!(
                matches!(f.state, State::Refused),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(f.refusal.is_none(), "no answer after a body began");
        }
    }

    #[test]
    fn limits() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(5000));
        assert_eq!(run(big.as_bytes()).1, Some((431, "request head too large")));
        let many: String = (0..101).map(|i| format!("X{i}: 1\r\n")).collect();
        let r = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(run(r.as_bytes()).1, Some((431, "too many request headers")));
    }

    #[test]
    fn bare_lf_is_found_anywhere() {
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(has_bare_lf(b"\nGET"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\r\nHost: h\n\r\n"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\r\nHost: h\r\n\n"));
        assert!(!has_bare_lf(b""));
        // Against the plain definition, on every string of up to 11 bytes over a, CR, LF
        // (word boundaries at every offset).
        let naive = |h: &[u8]| {
            h.iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || h[i - 1] != b'\r'))
        };
        for len in 0..=11u32 {
            for code in 0..3u32.pow(len) {
                let mut c = code;
                let h: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = [b'a', b'\r', b'\n'][(c % 3) as usize];
                        c /= 3;
                        b
                    })
                    .collect();
                assert_eq!(has_bare_lf(&h), naive(&h), "{h:?}");
            }
        }
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(chunk_size(b"0;name=\"v\"\r\n"), Some(0));
        for bad in [
            &b"\r\n"[..],
            b"+1\r\n",
            b"1 \r\n",
            b"0x1\r\n",
            b"1\n",
            b"1111111111111111\r\n",
        ] {
            assert_eq!(chunk_size(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
