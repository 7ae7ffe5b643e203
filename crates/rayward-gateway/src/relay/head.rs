//! The request heads the relay serves itself, and everything else it leaves to hyper.
//!
//! Served: a complete HTTP/1.1 `GET` or `HEAD` in origin form (`/path?query`), with
//! exactly one `Host`, no body framing at all (no `Content-Length`, no
//! `Transfer-Encoding`), no `Upgrade`, no `Expect`, no `TE`, and no `Connection` but
//! `keep-alive`, that `httparse` parses strictly and whose every line ends in CRLF. That is
//! nearly every request a dashboard, `ray job status` or a monitoring probe sends.
//! Anything else, including every head [`rayward_serve::framing`] refuses, goes to hyper
//! with the connection, where the framing checks see it from its first byte: the relay
//! never decides on a head the framing checks would refuse, and never reads a body.

use super::super::service::ReqBody;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use rayward_serve::framing::has_bare_lf;
use std::mem::MaybeUninit;

/// Header slots on the stack; a head with more goes to hyper.
pub const MAX_HEADERS: usize = 100;

/// What [`parse`] found at the start of the buffer.
// Not boxed: one lives on the stack per head, and a box is an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Head {
    /// Not all of the head has arrived.
    Partial,
    /// Not one for the relay: hyper serves it (and the rest of the connection).
    Hyper,
    /// A request for the relay; its head, `len` bytes, is split off the buffer.
    Ready { req: Request<ReqBody>, len: usize },
}

impl std::fmt::Debug for ReqBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReqBody")
    }
}

/// Parses the head at the start of `buf`; see the module documentation. A head over
/// `max_head` bytes or `max_headers` headers goes to hyper (which refuses it). A head for the
/// relay is split off `buf` (without a copy: the URI and every header value are slices of
/// it, as in hyper); anything else leaves `buf` as it was.
pub fn parse(buf: &mut BytesMut, max_head: usize, max_headers: usize) -> Head {
    // Where the target and each header's name and value are in the head, found while
    // httparse borrows `buf`; the values are cut from the head once it is split off.
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let (len, method, target, count) = {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let data: &[u8] = buf;
        let len =
            match req.parse_with_uninit_headers(data, &mut slots[..max_headers.min(MAX_HEADERS)]) {
                // Over the limit, however many reads it came in: hyper's 431.
                Ok(httparse::Status::Complete(n)) if n > max_head => return Head::Hyper,
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Head::Partial,
                Err(_) => return Head::Hyper,
            };
        // A bare LF ends a line for httparse but not for the framing checks.
        if has_bare_lf(&data[..len]) {
            return Head::Hyper;
        }
        if req.version != Some(1) {
            return Head::Hyper;
        }
        let method = match req.method {
            Some("GET") => Method::GET,
            Some("HEAD") => Method::HEAD,
            _ => return Head::Hyper,
        };
        let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
            return Head::Hyper;
        };
        let at = |s: &[u8]| (s.as_ptr() as usize - data.as_ptr() as usize) as u32;
        let mut hosts = 0;
        for (i, h) in req.headers.iter().enumerate() {
            let n = h.name.as_bytes();
            let framing_or_hop = match n.len() {
                2 => n.eq_ignore_ascii_case(b"te"),
                4 => {
                    hosts += usize::from(n.eq_ignore_ascii_case(b"host"));
                    false
                }
                6 => n.eq_ignore_ascii_case(b"expect"),
                7 => n.eq_ignore_ascii_case(b"upgrade"),
                10 => {
                    n.eq_ignore_ascii_case(b"connection")
                        && !h.value.eq_ignore_ascii_case(b"keep-alive")
                }
                14 => n.eq_ignore_ascii_case(b"content-length"),
                17 => n.eq_ignore_ascii_case(b"transfer-encoding"),
                _ => false,
            };
            if framing_or_hop {
                return Head::Hyper;
            }
            spans[i] = (at(n), n.len() as u32, at(h.value), h.value.len() as u32);
        }
        if hosts != 1 {
            return Head::Hyper;
        }
        let target = (at(target.as_bytes()) as usize, target.len());
        (len, method, target, req.headers.len())
    };
    let head = buf.split_to(len).freeze();
    match build(&head, target, &spans[..count]) {
        Some((uri, headers)) => {
            let mut r = Request::new(ReqBody::Empty);
            *r.method_mut() = method;
            *r.uri_mut() = uri;
            *r.version_mut() = Version::HTTP_11;
            *r.headers_mut() = headers;
            Head::Ready { req: r, len }
        }
        None => {
            // A target or header `http` refuses (httparse let it through): hyper gets
            // the head back, whole, and decides as it would have without the relay.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Head::Hyper
        }
    }
}

/// The URI and header map of a split-off head, every value a slice of it.
fn build(
    head: &Bytes,
    target: (usize, usize),
    spans: &[(u32, u32, u32, u32)],
) -> Option<(Uri, HeaderMap)> {
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1)).ok()?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(n, nl, v, vl) in spans {
        let name = HeaderName::from_bytes(&head[n as usize..(n + nl) as usize]).ok()?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(v as usize..(v + vl) as usize)).ok()?;
        headers.append(name, value);
    }
    Some((uri, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(raw: &str) -> (Request<ReqBody>, usize) {
        let mut buf = BytesMut::from(raw.as_bytes());
        match parse(&mut buf, 64 * 1024, MAX_HEADERS) {
            Head::Ready { req, len } => (req, len),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn hyper(raw: &str) {
        let mut buf = BytesMut::from(raw.as_bytes());
        assert!(
            matches!(parse(&mut buf, 64 * 1024, MAX_HEADERS), Head::Hyper),
            "{raw:?} should go to hyper"
        );
        assert_eq!(&buf[..], raw.as_bytes(), "hyper must get every byte");
    }

    #[test]
    fn a_plain_get_is_relayed_with_its_headers() {
        let raw = "GET /api/jobs/?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Basic YTpi\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET / HTTP/1.1\r\n";
        let mut buf = BytesMut::from(raw.as_bytes());
        let Head::Ready { req: r, len } = parse(&mut buf, 64 * 1024, MAX_HEADERS) else {
            panic!("not ready")
        };
        assert_eq!(len, raw.len() - "GET / HTTP/1.1\r\n".len());
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n", "the next head stays");
        assert_eq!(r.method(), Method::GET);
        assert_eq!(r.uri().path(), "/api/jobs/");
        assert_eq!(r.uri().query(), Some("x=1"));
        assert_eq!(r.headers()["host"], "h");
        assert_eq!(r.headers().get_all("x-a").iter().count(), 2);
        let (r, _) = ready("HEAD / HTTP/1.1\r\nhost: h\r\nConnection: Keep-Alive\r\n\r\n");
        assert_eq!(r.method(), Method::HEAD);
    }

    #[test]
    fn partial_heads_wait() {
        for raw in [&b"GET / HTTP/1.1\r\nHost: h\r\n"[..], b"GE"] {
            let mut buf = BytesMut::from(raw);
            assert!(matches!(parse(&mut buf, 64 * 1024, 100), Head::Partial));
            assert_eq!(&buf[..], raw);
        }
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        hyper("POST /api/jobs/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        hyper("DELETE /api/jobs/x HTTP/1.1\r\nHost: h\r\n\r\n");
        hyper("get / HTTP/1.1\r\nHost: h\r\n\r\n");
        hyper("GET / HTTP/1.0\r\nHost: h\r\n\r\n");
        hyper("GET http://other/ HTTP/1.1\r\nHost: h\r\n\r\n");
        hyper("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
        hyper("GET / HTTP/1.1\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        hyper(
            "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        hyper("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\ntransfer-encoding : chunked\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, x-secret\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n");
        hyper("GET / HTTP/1.1\nHost: h\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nHost: h\r\nBad\0Name: v\r\n\r\n");
        hyper("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n");
        let many: String = (0..MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        hyper(&format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n"));
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(100)
        );
        let mut buf = BytesMut::from(raw.as_bytes());
        assert!(
            matches!(parse(&mut buf, 100, 100), Head::Hyper),
            "over max_head"
        );
        assert_eq!(&buf[..], raw.as_bytes());
    }
}
