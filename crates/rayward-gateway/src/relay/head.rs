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
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
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
    /// A request for the relay; its head is the first `len` bytes.
    Ready { req: Request<ReqBody>, len: usize },
}

impl std::fmt::Debug for ReqBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReqBody")
    }
}

/// Parses the head at the start of `buf`; see the module documentation.
pub fn parse(buf: &[u8], max_headers: usize) -> Head {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots[..max_headers.min(MAX_HEADERS)]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Hyper,
    };
    // A bare LF ends a line for httparse but not for the framing checks.
    if buf[..len]
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || buf[i - 1] != b'\r'))
    {
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
    let mut hosts = 0;
    for h in req.headers.iter() {
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
    }
    if hosts != 1 {
        return Head::Hyper;
    }
    // One copy of the head; the URI and every value are slices of it, as in hyper.
    let bytes = Bytes::copy_from_slice(&buf[..len]);
    // httparse's slices point into `buf`: the same range of the copy.
    let copy = |s: &[u8]| {
        let at = s.as_ptr() as usize - buf.as_ptr() as usize;
        bytes.slice(at..at + s.len())
    };
    let Ok(uri) = Uri::from_maybe_shared(copy(target.as_bytes())) else {
        return Head::Hyper;
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_maybe_shared(copy(h.value)),
        ) else {
            return Head::Hyper;
        };
        headers.append(name, value);
    }
    let mut r = Request::new(ReqBody::Empty);
    *r.method_mut() = method;
    *r.uri_mut() = uri;
    *r.version_mut() = Version::HTTP_11;
    *r.headers_mut() = headers;
    Head::Ready { req: r, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(raw: &str) -> (Request<ReqBody>, usize) {
        match parse(raw.as_bytes(), MAX_HEADERS) {
            Head::Ready { req, len } => (req, len),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn hyper(raw: &str) {
        assert!(
            matches!(parse(raw.as_bytes(), MAX_HEADERS), Head::Hyper),
            "{raw:?} should go to hyper"
        );
    }

    #[test]
    fn a_plain_get_is_relayed_with_its_headers() {
        let raw = "GET /api/jobs/?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Basic YTpi\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET / HTTP/1.1\r\n";
        let (r, len) = ready(raw);
        assert_eq!(len, raw.len() - "GET / HTTP/1.1\r\n".len());
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
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\n", 100),
            Head::Partial
        ));
        assert!(matches!(parse(b"GE", 100), Head::Partial));
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
    }
}
