//! The relay's connections to Ray: raw TCP streams kept alive between requests, and an
//! answer's head read and rewritten for the client.
//!
//! Per upstream a LIFO stack of idle connections (at most 64, each dropped after 30 s
//! idle), as [`crate::pool`] keeps for hyper's path. A request goes out whole in one
//! write. A reused connection that gives no byte of an answer (Ray closed it while idle)
//! is retried once on a new connection, the other idle ones dropped: the relay's requests
//! are `GET` and `HEAD`, which a server may get twice (RFC 9110 §9.2.2).

use crate::proxy::UpstreamError;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_IDLE: usize = 64;
const IDLE_FOR: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer head from Ray, and most header lines.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Header slots on the stack.
const FEW_HEADERS: usize = 24;

/// Idle raw connections to one upstream.
#[derive(Debug)]
pub struct RawPool {
    addr: String,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

/// How an answer's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a `HEAD` request's answer, `204`, `304`.
    Empty,
    Length(u64),
    Chunked,
    /// Until Ray closes the connection.
    Close,
}

/// An answer's head from Ray.
#[derive(Debug)]
pub struct Answer {
    pub conn: TcpStream,
    pub status: u16,
    pub framing: Framing,
    /// The connection may carry another request when this answer's body has been read.
    pub reuse: bool,
    /// Where the body starts in the read buffer.
    pub head_len: usize,
}

impl RawPool {
    /// `addr`: `host:port`.
    pub fn new(addr: &str) -> RawPool {
        RawPool {
            addr: addr.to_string(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The most recently used idle connection that is still clean: one Ray wrote to (or
    /// closed) while it was idle is dropped, its bytes never read as the next answer.
    /// The check reads tokio's readiness first: no system call when nothing arrived.
    fn take(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some((c, since)) = idle.pop() {
            if since.elapsed() >= IDLE_FOR {
                continue;
            }
            match c.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(c),
                // Bytes past the last answer, end of stream, or an error.
                _ => continue,
            }
        }
        None
    }

    fn drop_idle(&self) {
        self.idle.lock().expect("pool lock").clear();
    }

    /// Keeps `conn` for the next request (its last answer was read to the end).
    pub fn give(&self, conn: TcpStream) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<TcpStream, UpstreamError> {
        let c = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| {
                UpstreamError::Unreachable(format!("connect to {}: timed out", self.addr))
            })?
            .map_err(|e| UpstreamError::Unreachable(format!("connect to {}: {e}", self.addr)))?;
        let _ = c.set_nodelay(true);
        Ok(c)
    }

    /// Sends `request` (a whole head, no body) and reads the answer's head into `buf`;
    /// the head the client gets is written to `out`. `head_request`: the request was
    /// `HEAD` (its answer has no body whatever its headers say).
    pub async fn exchange(
        &self,
        request: &[u8],
        head_request: bool,
        buf: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Answer, UpstreamError> {
        let mut retried = false;
        loop {
            let (mut conn, reused) = match self.take() {
                Some(c) if !retried => (c, true),
                _ => (self.connect().await?, false),
            };
            buf.clear();
            let sent = conn.write_all(request).await;
            let got = match sent {
                Ok(()) => read_head(&mut conn, buf, head_request, out).await,
                Err(e) => Err(HeadError::Nothing(e.to_string())),
            };
            match got {
                Ok((status, framing, reuse, head_len)) => {
                    return Ok(Answer {
                        conn,
                        status,
                        framing,
                        reuse,
                        head_len,
                    })
                }
                Err(HeadError::Nothing(_)) if reused => {
                    // Closed while idle: so are its older siblings, most likely.
                    self.drop_idle();
                    retried = true;
                }
                Err(HeadError::Nothing(e)) | Err(HeadError::Bad(e)) => {
                    return Err(UpstreamError::Unreachable(e))
                }
            }
        }
    }
}

enum HeadError {
    /// Not a byte of an answer came (the connection was closed or broken).
    Nothing(String),
    /// An answer that is not HTTP/1.1 as the relay reads it.
    Bad(String),
}

/// Reads one answer's head (skipping `1xx` informational ones); see [`RawPool::exchange`].
async fn read_head(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_request: bool,
    out: &mut Vec<u8>,
) -> Result<(u16, Framing, bool, usize), HeadError> {
    let mut got_any = false;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let n = conn.read_buf(buf).await.map_err(|e| {
            if got_any {
                HeadError::Bad(e.to_string())
            } else {
                HeadError::Nothing(e.to_string())
            }
        })?;
        if n == 0 {
            return Err(if got_any {
                HeadError::Bad("upstream closed the connection inside an answer's head".into())
            } else {
                HeadError::Nothing("upstream closed the connection".into())
            });
        }
        got_any = true;
        loop {
            match rewrite_head(buf, head_request, out)? {
                Parsed::Partial if buf.len() > MAX_HEAD => {
                    return Err(HeadError::Bad("upstream answer head too large".into()))
                }
                Parsed::Partial => break,
                Parsed::Informational(len) => {
                    buf.drain(..len);
                }
                Parsed::Head(status, framing, reuse, len) => {
                    return Ok((status, framing, reuse, len))
                }
            }
        }
    }
}

enum Parsed {
    Partial,
    /// A `1xx` head of this length, to skip.
    Informational(usize),
    Head(u16, Framing, bool, usize),
}

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1, and the proxy ones), as
/// [`crate::proxy`] strips from hyper's answers, on the raw bytes in any case.
pub fn hop_by_hop(name: &[u8]) -> bool {
    let is = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        2 => is(b"te"),
        7 => is(b"trailer") || is(b"upgrade"),
        10 => is(b"connection") || is(b"keep-alive"),
        16 => is(b"proxy-connection"),
        17 => is(b"transfer-encoding"),
        18 => is(b"proxy-authenticate"),
        19 => is(b"proxy-authorization"),
        _ => false,
    }
}

/// Parses the answer head at the start of `buf` and writes the client's version of it to
/// `out`: Ray's status, reason and end-to-end headers, without the hop-by-hop ones and
/// those `Connection` names, and the relay's own framing header.
fn rewrite_head(buf: &[u8], head_request: bool, out: &mut Vec<u8>) -> Result<Parsed, HeadError> {
    // httparse's answers take initialised slots: a few on the stack (Ray sends ~6),
    // all of them on the heap only for a head with more.
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let mut many = Vec::new();
    let mut resp = httparse::Response::new(&mut few);
    let len = match resp.parse(buf) {
        Err(httparse::Error::TooManyHeaders) => {
            many.resize(MAX_HEADERS, httparse::EMPTY_HEADER);
            resp = httparse::Response::new(&mut many);
            resp.parse(buf)
        }
        r => r,
    };
    let len = match len {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => {
            return Err(HeadError::Bad(format!(
                "malformed upstream answer head: {e}"
            )))
        }
    };
    if rayward_serve::framing::has_bare_lf(&buf[..len]) {
        return Err(HeadError::Bad("bare LF in the upstream answer head".into()));
    }
    let status = resp.code.unwrap_or(0);
    if status < 100 {
        // httparse reads any three digits; HTTP has no status below 100 (hyper's client
        // refuses one too).
        return Err(HeadError::Bad(format!(
            "upstream status {status:03} is not HTTP"
        )));
    }
    if status == 101 {
        return Err(HeadError::Bad("upstream switched protocols unasked".into()));
    }
    if (100..200).contains(&status) {
        return Ok(Parsed::Informational(len));
    }
    let mut reuse = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let (mut lengths, mut encodings, mut chunked) = (0, 0, false);
    // Whether a header line must go (hop-by-hop); the names `Connection` lists go too,
    // kept as slices (no allocation).
    let mut drop_any = false;
    let mut named: [&[u8]; 16] = [b""; 16];
    let mut n_named = 0;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                lengths += 1;
                let v = h.value;
                if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                    return Err(HeadError::Bad(
                        "bad Content-Length in the upstream answer".into(),
                    ));
                }
                length = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                encodings += 1;
                chunked = h.value.eq_ignore_ascii_case(b"chunked");
                drop_any = true;
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                drop_any = true;
                for token in h.value.split(|&b| b == b',') {
                    let t = token.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        reuse = false;
                    } else if !t.is_empty() {
                        if n_named == named.len() {
                            return Err(HeadError::Bad("too many names in Connection".into()));
                        }
                        named[n_named] = t;
                        n_named += 1;
                    }
                }
            }
            _ => drop_any |= hop_by_hop(name),
        }
    }
    let bodiless = head_request || status == 204 || status == 304;
    let framing = match (lengths, encodings) {
        _ if bodiless => Framing::Empty,
        (0, 0) => Framing::Close,
        (1, 0) => {
            Framing::Length(length.ok_or_else(|| HeadError::Bad("bad Content-Length".into()))?)
        }
        (0, 1) if chunked => Framing::Chunked,
        _ => {
            return Err(HeadError::Bad(
                "ambiguous or unsupported framing in the upstream answer".into(),
            ))
        }
    };
    if framing == Framing::Close {
        reuse = false;
    }
    // The status line with the relay's version; then Ray's header lines as they came
    // (httparse checked every byte, and no line is folded: none spans a CRLF), copied
    // in runs between the lines that go.
    let at = |p: &[u8]| p.as_ptr() as usize - buf.as_ptr() as usize;
    let first_end = memchr::memchr(b'\n', &buf[..len]).map_or(len, |i| i + 1);
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&buf["HTTP/1.1 ".len()..first_end]);
    let lines_end = len - 2;
    if !drop_any {
        out.extend_from_slice(&buf[first_end..lines_end]);
    } else {
        let mut run = first_end;
        let headers = &resp.headers;
        for (i, h) in headers.iter().enumerate() {
            let name = h.name.as_bytes();
            // `Content-Length` stays whatever `Connection` lists: the relay frames the
            // client's answer by it (a `Transfer-Encoding` is written anew).
            if hop_by_hop(name)
                || (named[..n_named]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(name))
                    && !name.eq_ignore_ascii_case(b"content-length"))
            {
                let start = at(name);
                let end = headers
                    .get(i + 1)
                    .map_or(lines_end, |n| at(n.name.as_bytes()));
                out.extend_from_slice(&buf[run..start]);
                run = end;
            }
        }
        out.extend_from_slice(&buf[run..lines_end]);
    }
    match framing {
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Close => out.extend_from_slice(b"connection: close\r\n"),
        Framing::Empty | Framing::Length(_) => {}
    }
    out.extend_from_slice(b"\r\n");
    Ok(Parsed::Head(status, framing, reuse, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(
        raw: &str,
        head_request: bool,
    ) -> Result<(String, u16, Framing, bool, usize), String> {
        let mut out = Vec::new();
        match rewrite_head(raw.as_bytes(), head_request, &mut out) {
            Ok(Parsed::Head(s, f, r, l)) => Ok((String::from_utf8(out).unwrap(), s, f, r, l)),
            Ok(Parsed::Partial) => Err("partial".into()),
            Ok(Parsed::Informational(_)) => Err("informational".into()),
            Err(HeadError::Bad(e)) | Err(HeadError::Nothing(e)) => Err(e),
        }
    }

    #[test]
    fn hop_by_hop_headers_go_and_framing_is_the_relays() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: secret\r\nContent-Length: 2\r\nProxy-Authenticate: x\r\nServer: s\r\n\r\n{}";
        let (head, status, framing, reuse, len) = rewrite(raw, false).unwrap();
        assert_eq!(status, 200);
        assert_eq!(framing, Framing::Length(2));
        assert!(reuse);
        assert_eq!(len, raw.len() - 2);
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nServer: s\r\n\r\n"
        );
        let (head, _, framing, _, _) = rewrite(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(framing, Framing::Chunked);
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let (head, _, framing, reuse, _) =
            rewrite("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", false).unwrap();
        assert_eq!((framing, reuse), (Framing::Close, false));
        assert_eq!(head, "HTTP/1.1 200 OK\r\nX: y\r\nconnection: close\r\n\r\n");
        let (_, _, framing, reuse, _) = rewrite(
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!((framing, reuse), (Framing::Empty, false));
        let (_, _, framing, _, _) = rewrite("HTTP/1.1 304 Not Modified\r\n\r\n", false).unwrap();
        assert_eq!(framing, Framing::Empty);
        let (_, _, _, reuse, _) =
            rewrite("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap();
        assert!(!reuse);
    }

    #[test]
    fn kept_lines_are_copied_whole_around_the_dropped_ones() {
        let raw = "HTTP/1.0 404 Not  Found\r\nA: 1 \r\nConnection: x\r\nX: 2\r\nB: 3\r\nKeep-Alive: t\r\n\r\nbody";
        let (head, status, framing, reuse, len) = rewrite(raw, false).unwrap();
        assert_eq!((status, framing, reuse), (404, Framing::Close, false));
        assert_eq!(len, raw.len() - 4);
        assert_eq!(
            head,
            "HTTP/1.1 404 Not  Found\r\nA: 1 \r\nB: 3\r\nconnection: close\r\n\r\n"
        );
        let (head, ..) = rewrite("HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert_eq!(head, "HTTP/1.1 204 No Content\r\n\r\n");
        let (head, ..) = rewrite(
            "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(head, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn ambiguous_answers_are_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(rewrite(raw, false).is_err(), "{raw:?}");
        }
        assert_eq!(
            rewrite("HTTP/1.1 100 Continue\r\n\r\n", false).unwrap_err(),
            "informational"
        );
    }
}
