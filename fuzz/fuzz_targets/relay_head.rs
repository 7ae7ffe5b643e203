//! Arbitrary bytes as the start of a client connection, through the gateway relay's head
//! parser (`rayward_gateway::relay::head::parse`): never a panic, and a head it serves
//! itself (`Ready`) is exactly the kind it documents, which the framing checks of
//! `rayward_serve::framing` (what hyper's heads go through) accept as well: the relay must
//! never decide on a head the framing checks would refuse.
#![no_main]

use bytes::BytesMut;
use http::{header, Method, Version};
use libfuzzer_sys::fuzz_target;
use rayward_gateway::relay::head::{parse, Head};
use rayward_serve::framing::Framed;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The gateway's default `max_header_bytes`.
const MAX_HEAD: usize = 64 * 1024;

fn parse_bytes(data: &[u8]) -> Head {
    parse(&mut BytesMut::from(data), MAX_HEAD, 100)
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let Head::Ready { req, len } = parse(&mut buf, MAX_HEAD, 100) else {
        // Left to hyper (or not whole yet): every byte is still there for it.
        assert_eq!(&buf[..], data, "bytes lost on a head not served");
        return;
    };
    // Only the head was taken: what follows stays for the next head.
    assert_eq!(&buf[..], &data[len..]);
    assert!(len > 0 && len <= data.len(), "len {len} of {}", data.len());
    let head = &data[..len];
    assert!(head.ends_with(b"\r\n\r\n"), "{head:?}");
    assert!(
        !head
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r')),
        "bare LF in a relayed head: {head:?}"
    );
    assert!(req.method() == Method::GET || req.method() == Method::HEAD);
    assert_eq!(req.version(), Version::HTTP_11);
    assert!(req.uri().path().starts_with('/'), "{:?}", req.uri());
    assert!(req.uri().scheme().is_none() && req.uri().authority().is_none());
    let h = req.headers();
    assert_eq!(h.get_all(header::HOST).iter().count(), 1, "{h:?}");
    for framing_or_hop in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::EXPECT,
        header::TE,
    ] {
        assert!(!h.contains_key(&framing_or_hop), "{framing_or_hop}: {h:?}");
    }
    for v in h.get_all(header::CONNECTION) {
        assert!(v.as_bytes().eq_ignore_ascii_case(b"keep-alive"), "{v:?}");
    }
    // The head alone is the same head: nothing after it changed the decision.
    match parse_bytes(head) {
        Head::Ready { len: again, .. } => assert_eq!(again, len),
        other => panic!("the head alone: {other:?}"),
    }
    // A head cut short is never served (the relay reads heads a piece at a time).
    for cut in [len - 1, len - 2, len / 2] {
        assert!(
            !matches!(parse_bytes(&head[..cut]), Head::Ready { .. }),
            "served at {cut} of {len}"
        );
    }
    // The framing checks pass the head to hyper unchanged, and write no refusal.
    let (passed, refusal) = through_framing(head);
    assert!(
        refusal.is_empty() && passed == head,
        "relayed, but the framing checks refuse it: {:?} -> {:?}",
        String::from_utf8_lossy(head),
        String::from_utf8_lossy(&refusal)
    );
});

/// Reads `head` through `Framed` (no size limit that matters here, 100 headers as the
/// gateway), then shuts it down: what hyper would have read, and what was written back.
fn through_framing(head: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let out = Rc::new(RefCell::new(Vec::new()));
    let mut f = Framed::new(
        Mem {
            input: head.to_vec(),
            pos: 0,
            out: out.clone(),
        },
        head.len() + 1,
        100,
        None,
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut passed = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut f).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => break,
            Poll::Ready(Ok(())) => passed.extend_from_slice(rb.filled()),
            other => panic!("in-memory read: {other:?}"),
        }
    }
    assert!(Pin::new(&mut f).poll_shutdown(&mut cx).is_ready());
    drop(f);
    let out = out.take();
    (passed, out)
}

/// A connection in memory: `input` to read, then the end; writes go to `out`.
struct Mem {
    input: Vec<u8>,
    pos: usize,
    out: Rc<RefCell<Vec<u8>>>,
}

impl AsyncRead for Mem {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (self.input.len() - self.pos).min(buf.remaining());
        let pos = self.pos;
        buf.put_slice(&self.input[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Mem {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.out.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
