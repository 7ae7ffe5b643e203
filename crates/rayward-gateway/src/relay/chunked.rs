//! Where a chunked answer from Ray ends, read strictly as RFC 9112 §7.1 writes it: hex
//! size, optional extension, CRLF, data, CRLF, ..., a zero size, trailer lines, CRLF. The
//! relay passes the bytes through unchanged and needs only to know which belong to the
//! answer: the next answer on the pooled connection starts after them, and the client's
//! connection must never get bytes that are not one well-framed answer. Anything outside
//! the grammar is an error: the relay then ends both connections.

/// Longest chunk-size line (with its extension) and longest trailer section.
const MAX_SIZE_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, whether a digit was seen, whether the
    /// extension began, whether CR was just seen, and the line's length.
    Size {
        size: u64,
        digits: u8,
        ext: bool,
        cr: bool,
        len: usize,
    },
    /// Data bytes left in the chunk.
    Data(u64),
    /// The CRLF after a chunk's data: how many of its bytes were seen.
    DataEnd(u8),
    /// In the trailer section: bytes of the current line, CR just seen, total so far.
    Trailer {
        line: usize,
        cr: bool,
        total: usize,
    },
    Done,
}

/// Follows one chunked body; see the module documentation.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
}

/// The bytes break the chunked grammar.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    pub fn new() -> Chunked {
        Chunked {
            state: State::Size {
                size: 0,
                digits: 0,
                ext: false,
                cr: false,
                len: 0,
            },
        }
    }

    /// Whether the body's last byte has been seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads `data`; returns how many of its bytes belong to the body (all of them unless
    /// the body ended inside `data`).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < data.len() {
            match &mut self.state {
                State::Done => return Ok(i),
                State::Data(left) => {
                    let k = (*left).min((data.len() - i) as u64);
                    *left -= k;
                    i += k as usize;
                    if *left == 0 {
                        self.state = State::DataEnd(0);
                    }
                }
                State::DataEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if data[i] != want {
                        return Err(Malformed);
                    }
                    i += 1;
                    if *seen == 0 {
                        *seen = 1;
                    } else {
                        self.state = Chunked::new().state;
                    }
                }
                State::Size {
                    size,
                    digits,
                    ext,
                    cr,
                    len,
                } => {
                    let b = data[i];
                    i += 1;
                    *len += 1;
                    if *len > MAX_SIZE_LINE {
                        return Err(Malformed);
                    }
                    if *cr {
                        if b != b'\n' || *digits == 0 {
                            return Err(Malformed);
                        }
                        self.state = if *size == 0 {
                            State::Trailer {
                                line: 0,
                                cr: false,
                                total: 0,
                            }
                        } else {
                            State::Data(*size)
                        };
                        continue;
                    }
                    match b {
                        b'\r' => *cr = true,
                        b'\n' => return Err(Malformed),
                        _ if *ext => {
                            // Extension bytes: anything visible, spaces and tabs.
                            if b < 0x20 && b != b'\t' || b == 0x7f {
                                return Err(Malformed);
                            }
                        }
                        b';' if *digits > 0 => *ext = true,
                        _ => {
                            let d = match b {
                                b'0'..=b'9' => b - b'0',
                                b'a'..=b'f' => b - b'a' + 10,
                                b'A'..=b'F' => b - b'A' + 10,
                                _ => return Err(Malformed),
                            };
                            if *digits >= 16 {
                                return Err(Malformed);
                            }
                            *digits += 1;
                            *size = (*size << 4) | u64::from(d);
                        }
                    }
                }
                State::Trailer { line, cr, total } => {
                    let b = data[i];
                    i += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err(Malformed);
                    }
                    if *cr {
                        if b != b'\n' {
                            return Err(Malformed);
                        }
                        if *line == 0 {
                            self.state = State::Done;
                        } else {
                            *line = 0;
                            *cr = false;
                        }
                        continue;
                    }
                    match b {
                        b'\r' => *cr = true,
                        b'\n' => return Err(Malformed),
                        // A trailer line: a field (name: value); no control bytes but tab.
                        _ if b < 0x20 && b != b'\t' || b == 0x7f => return Err(Malformed),
                        _ => *line += 1,
                    }
                }
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Result<usize, Malformed> {
        let mut c = Chunked::new();
        let n = c.feed(body)?;
        assert!(c.done(), "not done after {body:?}");
        Ok(n)
    }

    #[test]
    fn ends_where_the_body_ends() {
        let b = b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert_eq!(whole(b), Ok(b.len() - 17));
        let b = b"a;name=\"v\"\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n";
        assert_eq!(whole(b), Ok(b.len()));
        let b = b"0\r\n\r\n";
        assert_eq!(whole(b), Ok(5));
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let b = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nt: v\r\n\r\n";
        let mut c = Chunked::new();
        for (k, byte) in b.iter().enumerate() {
            assert!(!c.done(), "done early at {k}");
            assert_eq!(c.feed(std::slice::from_ref(byte)), Ok(1));
        }
        assert!(c.done());
        assert_eq!(c.feed(b"more"), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_the_grammar() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..], // bare LF after the size
            b"5\r\nhello\n0\r\n\r\n",      // bare LF after the data
            b"5\r\nhelloX\r\n0\r\n\r\n",   // more data than the size
            b"\r\n",                       // no size
            b";x\r\n",                     // extension without size
            b"-5\r\n",                     // sign
            b" 5\r\n",                     // space
            b"0x5\r\n",                    // prefix
            b"11111111111111111\r\n",      // 17 hex digits
            b"0\r\nx\ny\r\n\r\n",          // bare LF in a trailer
            b"0\r\nx\0y\r\n\r\n",          // NUL in a trailer
            b"1;a\x01\r\n",                // control byte in an extension
        ] {
            let mut c = Chunked::new();
            assert_eq!(
                c.feed(bad),
                Err(Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE));
        assert_eq!(Chunked::new().feed(&long), Err(Malformed));
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b'a', MAX_TRAILERS + 1));
        assert_eq!(Chunked::new().feed(&trailers), Err(Malformed));
    }

    #[test]
    fn the_largest_size_is_followed_without_overflow() {
        let mut c = Chunked::new();
        assert_eq!(c.feed(b"ffffffffffffffff\r\nab"), Ok(20));
        assert!(!c.done());
    }
}
