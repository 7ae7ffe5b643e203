//! Arbitrary bytes as a chunked body from Ray through the gateway relay's scanner
//! (`rayward_gateway::relay::chunked::Chunked`), which decides where an answer ends on a
//! pooled connection: never a panic, and the same decision however the bytes are split
//! across reads (a differential of the scanner against itself).
//!
//! Input: `k` (the low 4 bits of the first byte: how many cuts), `k` bytes of gaps (each
//! cut is that many bytes after the one before, zero for an empty read), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rayward_gateway::relay::chunked::Chunked;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k & 0x0f);
    if rest.len() < k {
        return;
    }
    let (gaps, body) = rest.split_at(k);

    let mut whole = Chunked::new();
    let w = whole.feed(body);
    if let Ok(n) = w {
        assert!(n <= body.len());
        if !whole.done() {
            assert_eq!(n, body.len(), "not done, yet bytes left unread");
        }
        // Nothing more belongs to a finished body.
        if whole.done() {
            assert_eq!(whole.feed(b"0\r\n\r\n"), Ok(0));
        }
    }

    // The same bytes in pieces.
    let mut split = Chunked::new();
    let mut at = 0;
    let mut total = 0;
    let mut failed = false;
    let mut ends = gaps
        .iter()
        .scan(0usize, |pos, &g| {
            *pos = (*pos + usize::from(g)).min(body.len());
            Some(*pos)
        })
        .collect::<Vec<_>>();
    ends.push(body.len());
    for end in ends {
        let piece = &body[at..end];
        at = end;
        match split.feed(piece) {
            Ok(n) => {
                assert!(n <= piece.len());
                if n < piece.len() {
                    assert!(split.done(), "stopped inside a piece without being done");
                }
                total += n;
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert_eq!(
        w.is_err(),
        failed,
        "whole: {w:?}; in pieces: failed {failed}"
    );
    if let Ok(n) = w {
        assert_eq!(n, total, "consumed whole vs in pieces");
        assert_eq!(whole.done(), split.done(), "done whole vs in pieces");
    }
});
