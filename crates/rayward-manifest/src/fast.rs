//! A fast path for the small, regular subset of YAML that Kubernetes manifests use.
//!
//! [`parse_fast`] reads block mappings and sequences, one-line scalars (plain, single- and
//! double-quoted), one-line flow collections, block scalars (`|`, `>`, with chomping
//! indicators), comments and document markers, and builds exactly the [`Document`]s that the
//! saphyr-based loader builds, positions included. Everything else (anchors, aliases, tags,
//! complex keys, merge keys, multi-line plain or quoted scalars, tabs in indentation,
//! directives, flow collections spanning lines, …) makes it give up with `None`, and the
//! caller falls back to saphyr, which also words the errors for malformed input.
//!
//! The rules mirror saphyr-parser 0.3.4, including its quirks (where an empty value or an
//! indentless sequence is said to start, how a block scalar at the end of the input is
//! chomped). `tests/fast_differential.rs` checks the two against each other.

use crate::limits::{Document, Limits};
use crate::node::{Node, Pos, Value};
use std::borrow::Cow;

/// Nesting beyond this gives up even when `Limits::max_depth` allows more: the fast path
/// recurses, saphyr does not.
const HARD_DEPTH: usize = 256;

/// Longest key accepted, in bytes; saphyr drops simple keys longer than 1024 characters.
const MAX_KEY: usize = 1000;

/// Parses every document of `text` if it lies in the supported subset; `None` otherwise
/// (including for any input saphyr would reject).
#[doc(hidden)]
pub fn parse_fast(text: &str, limits: &Limits) -> Option<Vec<Document>> {
    let bytes = text.as_bytes();
    let Survey { nul, cr, all_ascii } = survey(bytes);
    // NUL ends saphyr's input; tabs in JSON-looking text are rewritten by the slow path.
    if nul
        || (matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
            && bytes.contains(&b'\t'))
    {
        return None;
    }
    if !all_ascii && text.contains('\u{feff}') {
        return None;
    }
    if cr {
        // CRLF reads as LF (saphyr folds both into one break and never counts `\r` in a
        // column); a lone CR is a line break of its own, which this parser does not model.
        let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
        if crlf != bytes.iter().filter(|&&b| b == b'\r').count() {
            return None;
        }
        let lf = text.replace("\r\n", "\n");
        return Parser::new(&lf, all_ascii, limits).run();
    }
    Parser::new(text, all_ascii, limits).run()
}

struct Survey {
    nul: bool,
    cr: bool,
    all_ascii: bool,
}

/// One pass over the text, a word at a time: is there a NUL, a CR, a non-ASCII byte?
fn survey(b: &[u8]) -> Survey {
    let (mut nul, mut cr, mut high) = (0u64, 0u64, 0u64);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().unwrap());
        nul |= zero_bytes(w);
        cr |= zero_bytes(w ^ (ONES * u64::from(b'\r')));
        high |= w;
    }
    for &c in words.remainder() {
        nul |= u64::from(c == 0);
        cr |= u64::from(c == b'\r');
        high |= u64::from(c);
    }
    Survey {
        nul: nul != 0,
        cr: cr != 0,
        all_ascii: high & (ONES << 7) == 0,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Content,
    DocStart,
    DocEnd,
    Eof,
}

/// A line that is neither blank nor a comment.
#[derive(Clone, Copy, Debug)]
struct Line {
    start: usize,
    /// Offset of the line's `\n` (or the end of the text).
    end: usize,
    /// Leading spaces.
    indent: usize,
    /// 1-based line number.
    no: u32,
    ascii: bool,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

struct Parser<'a> {
    t: &'a str,
    b: &'a [u8],
    all_ascii: bool,
    max_depth: usize,
    max_nodes: usize,
    nodes: usize,
    depth: usize,
    cur: Line,
    /// Items and entries of the collections being read, innermost last; each collection
    /// moves its own into a vector of the exact size when it closes.
    items: Vec<Node>,
    entries: Vec<(Node, Node)>,
    /// Line start, offset and column of the last column counted on a non-ASCII line.
    col_cache: (usize, usize, usize),
    /// Start and number of the first line not read yet.
    next: usize,
    next_no: u32,
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each zero byte of `x` is set, and possibly of bytes above a zero byte (a
/// borrow), so the lowest set bit marks exactly the lowest zero byte (little-endian).
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// The offset of the first `\n` at or after `from`, or the length of `b`.
fn find_newline(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let zero =
            zero_bytes(u64::from_le_bytes(chunk.try_into().unwrap()) ^ (ONES * u64::from(b'\n')));
        if zero != 0 {
            return i + (zero.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// The offset of the first byte other than a space in `b[from..end]`, or `end`.
fn skip_spaces_to(b: &[u8], from: usize, end: usize) -> usize {
    let mut i = from;
    while i + 8 <= end {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) ^ 0x2020_2020_2020_2020;
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < end && b[i] == b' ' {
        i += 1;
    }
    i
}

fn is_flow(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a> Parser<'a> {
    fn new(t: &'a str, all_ascii: bool, limits: &Limits) -> Self {
        Parser {
            t,
            b: t.as_bytes(),
            all_ascii,
            max_depth: limits.max_depth.min(HARD_DEPTH),
            max_nodes: limits.max_nodes,
            nodes: 0,
            depth: 0,
            cur: Line {
                start: 0,
                end: 0,
                indent: 0,
                no: 1,
                ascii: true,
                kind: Kind::Eof,
            },
            items: Vec::new(),
            entries: Vec::new(),
            col_cache: (usize::MAX, 0, 0),
            next: 0,
            next_no: 1,
        }
    }

    fn run(mut self) -> Option<Vec<Document>> {
        let mut docs = Vec::new();
        let mut index = 0;
        self.advance()?;
        loop {
            let root = match self.cur.kind {
                Kind::Eof => break,
                // `...` with no open document is skipped.
                Kind::DocEnd => {
                    self.advance()?;
                    continue;
                }
                Kind::DocStart => {
                    self.advance()?;
                    if self.cur.kind == Kind::Content {
                        Some(self.root()?)
                    } else {
                        None
                    }
                }
                Kind::Content => Some(self.root()?),
            };
            // The document ends at `---`, `...` or the end of the text.
            if self.cur.kind == Kind::DocEnd {
                self.advance()?;
            }
            if let Some(root) = root.filter(|r| !r.is_null()) {
                docs.push(Document { index, root });
            }
            index += 1;
        }
        Some(docs)
    }

    /// Moves to the next line that is neither blank nor only a comment.
    fn advance(&mut self) -> Option<()> {
        let b = self.b;
        loop {
            let start = self.next;
            let no = self.next_no;
            if start >= b.len() {
                self.cur = Line {
                    start: b.len(),
                    end: b.len(),
                    indent: 0,
                    no,
                    ascii: true,
                    kind: Kind::Eof,
                };
                return Some(());
            }
            let end = find_newline(b, start);
            self.next = end + 1;
            self.next_no = no + 1;
            let i = skip_spaces_to(b, start, end);
            if i == end || b[i] == b'#' {
                continue;
            }
            if b[i] == b'\t' {
                return None;
            }
            let indent = i - start;
            let mut kind = Kind::Content;
            if indent == 0 {
                if b[start] == b'%' {
                    return None;
                }
                if end - start >= 3
                    && (&b[start..start + 3] == b"---" || &b[start..start + 3] == b"...")
                {
                    // A marker, or a plain scalar starting with one: only clean markers pass.
                    let mut j = start + 3;
                    while j < end && b[j] == b' ' {
                        j += 1;
                    }
                    if j < end && !(b[j] == b'#' && j > start + 3) {
                        return None;
                    }
                    kind = if b[start] == b'-' {
                        Kind::DocStart
                    } else {
                        Kind::DocEnd
                    };
                }
            }
            let ascii = self.all_ascii || self.t[start..end].is_ascii();
            self.cur = Line {
                start,
                end,
                indent,
                no,
                ascii,
                kind,
            };
            return Some(());
        }
    }

    /// Column (0-based, in characters) of a byte offset on the current line. On lines with
    /// non-ASCII text, counting resumes from the last offset asked for, so a long line with
    /// many nodes stays linear.
    #[inline]
    fn col(&mut self, off: usize) -> usize {
        if self.cur.ascii {
            off - self.cur.start
        } else {
            self.col_non_ascii(off)
        }
    }

    #[cold]
    fn col_non_ascii(&mut self, off: usize) -> usize {
        let (line, mut from, mut col) = self.col_cache;
        if line != self.cur.start || off < from {
            (from, col) = (self.cur.start, 0);
        }
        col += self.t[from..off].chars().count();
        self.col_cache = (self.cur.start, off, col);
        col
    }

    #[inline]
    fn pos(&mut self, off: usize) -> Pos {
        Pos {
            line: self.cur.no,
            col: self.col(off) as u32 + 1,
        }
    }

    /// Skips spaces on the current line; a tab gives up.
    fn skip_spaces(&self, mut i: usize) -> Option<usize> {
        let b = self.b;
        while i < self.cur.end {
            match b[i] {
                b' ' => i += 1,
                b'\t' => return None,
                _ => break,
            }
        }
        Some(i)
    }

    /// Is there a block sequence entry (`-` then blank or end of line) at `off`?
    fn is_entry(&self, off: usize) -> bool {
        self.b[off] == b'-' && (off + 1 == self.cur.end || matches!(self.b[off + 1], b' ' | b'\t'))
    }

    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= self.max_nodes).then_some(())
    }

    fn open(&mut self) -> Option<()> {
        if self.depth >= self.max_depth {
            return None;
        }
        self.depth += 1;
        self.count()
    }

    fn scalar(&mut self, text: Cow<'_, str>, plain: bool, pos: Pos) -> Option<Node> {
        self.count()?;
        Some(match text {
            Cow::Borrowed(s) => Node::scalar(s, plain, pos),
            Cow::Owned(s) => Node::scalar(s, plain, pos),
        })
    }

    fn root(&mut self) -> Option<Node> {
        let l = self.cur;
        let node = self.block_item(l.start + l.indent, -1, true)?;
        // Content left over (less indented than the root) is an error or beyond us.
        (self.cur.kind != Kind::Content).then_some(node)
    }

    /// After a node that ended its line: the next line must not be indented past the
    /// enclosing block collection (it would continue a plain scalar, or be an error).
    fn after_value(&self, node: Node, ci: isize) -> Option<Node> {
        if self.cur.kind == Kind::Content && self.cur.indent as isize > ci {
            return None;
        }
        Some(node)
    }

    /// A node starting at `off` (not blank, not a comment) on the current line. `ci` is the
    /// indentation of the enclosing block collection (-1 at the root); `allow` says whether a
    /// block collection may start here (at a line's start or after `- `).
    fn block_item(&mut self, off: usize, ci: isize, allow: bool) -> Option<Node> {
        let b = self.b;
        let end = self.cur.end;
        match b[off] {
            b'-' if self.is_entry(off) => {
                if !allow {
                    return None;
                }
                self.block_seq(off - self.cur.start, off, false)
            }
            b'|' | b'>' => {
                if ci < 0 {
                    return None;
                }
                let node = self.block_scalar(off, ci as usize)?;
                self.after_value(node, ci)
            }
            b'[' | b'{' => {
                let (node, after) = self.flow(off)?;
                let j = self.skip_spaces(after)?;
                if j < end && !(b[j] == b'#' && j > after) {
                    return None;
                }
                self.advance()?;
                self.after_value(node, ci)
            }
            _ => {
                let (node, colon) = self.block_scalar_token(off)?;
                match colon {
                    Some(colon) => {
                        if !allow {
                            return None;
                        }
                        self.block_map(off - self.cur.start, node, colon)
                    }
                    None => {
                        self.advance()?;
                        self.after_value(node, ci)
                    }
                }
            }
        }
    }

    /// A plain or quoted scalar in block context, and the offset of the `:` that makes it a
    /// key, if one follows. Whatever else follows on the line must be a comment.
    fn block_scalar_token(&mut self, off: usize) -> Option<(Node, Option<usize>)> {
        let b = self.b;
        let end = self.cur.end;
        let pos = self.pos(off);
        let (node, colon) = if matches!(b[off], b'"' | b'\'') {
            let (text, after) = self.quoted(off)?;
            let j = self.skip_spaces(after)?;
            let colon = if j == end {
                None
            } else {
                match b[j] {
                    b'#' if j > after => None,
                    b':' if j + 1 == end || b[j + 1] == b' ' => Some(j),
                    _ => return None,
                }
            };
            (self.scalar(text, false, pos)?, colon)
        } else {
            let n1 = if off + 1 < end { b[off + 1] } else { b'\n' };
            if !plain_start(b[off], n1, false) {
                return None;
            }
            let (tend, colon) = self.plain_block(off)?;
            (
                self.scalar(Cow::Borrowed(&self.t[off..tend]), true, pos)?,
                colon,
            )
        };
        if let Some(c) = colon {
            if c - off > MAX_KEY {
                return None;
            }
        }
        Some((node, colon))
    }

    /// Scans a plain scalar in block context: the end of its text, and the `:` (followed by a
    /// blank or the end of the line) that ended it, if any.
    fn plain_block(&self, off: usize) -> Option<(usize, Option<usize>)> {
        let b = self.b;
        let end = self.cur.end;
        let mut i = off;
        let mut tend = off;
        loop {
            // Most bytes are plain text.
            let run = i;
            i = find_plain_stop(b, i, end);
            if i > run {
                tend = i;
            }
            if i == end {
                return Some((tend, None));
            }
            match b[i] {
                b' ' => {
                    i = skip_spaces_to(b, i + 1, end);
                    if i == end || b[i] == b'#' {
                        return Some((tend, None));
                    }
                }
                b':' => {
                    if i + 1 == end || b[i + 1] == b' ' {
                        return Some((tend, Some(i)));
                    }
                    if b[i + 1] == b'\t' {
                        return None;
                    }
                    i += 1;
                    tend = i;
                }
                _ => return None, // a tab
            }
        }
    }

    /// A single- or double-quoted scalar that closes on its line: its text and the offset
    /// after the closing quote.
    fn quoted(&self, off: usize) -> Option<(Cow<'a, str>, usize)> {
        let b = self.b;
        let t = self.t;
        let end = self.cur.end;
        let mut owned: Option<String> = None;
        let mut seg = off + 1;
        let mut i = off + 1;
        if b[off] == b'\'' {
            loop {
                let q = i + b[i..end].iter().position(|&c| c == b'\'')?;
                if q + 1 < end && b[q + 1] == b'\'' {
                    owned.get_or_insert_with(String::new).push_str(&t[seg..=q]);
                    i = q + 2;
                    seg = i;
                    continue;
                }
                let text = match owned {
                    None => Cow::Borrowed(&t[seg..q]),
                    Some(mut s) => {
                        s.push_str(&t[seg..q]);
                        Cow::Owned(s)
                    }
                };
                return Some((text, q + 1));
            }
        }
        loop {
            let q = i + b[i..end].iter().position(|&c| c == b'"' || c == b'\\')?;
            if b[q] == b'"' {
                let text = match owned {
                    None => Cow::Borrowed(&t[seg..q]),
                    Some(mut s) => {
                        s.push_str(&t[seg..q]);
                        Cow::Owned(s)
                    }
                };
                return Some((text, q + 1));
            }
            let s = owned.get_or_insert_with(String::new);
            s.push_str(&t[seg..q]);
            if q + 1 >= end {
                return None; // an escaped line break
            }
            let mut hex = 0;
            let c = match b[q + 1] {
                b'0' => '\0',
                b'a' => '\x07',
                b'b' => '\x08',
                b't' | b'\t' => '\t',
                b'n' => '\n',
                b'v' => '\x0b',
                b'f' => '\x0c',
                b'r' => '\r',
                b'e' => '\x1b',
                b' ' => ' ',
                b'"' => '"',
                b'/' => '/',
                b'\\' => '\\',
                b'N' => '\u{85}',
                b'_' => '\u{a0}',
                b'L' => '\u{2028}',
                b'P' => '\u{2029}',
                b'x' => {
                    hex = 2;
                    '\0'
                }
                b'u' => {
                    hex = 4;
                    '\0'
                }
                b'U' => {
                    hex = 8;
                    '\0'
                }
                _ => return None,
            };
            i = q + 2;
            if hex > 0 {
                if i + hex > end {
                    return None;
                }
                let digits = &b[i..i + hex];
                if !digits.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let v = u32::from_str_radix(&t[i..i + hex], 16).ok()?;
                s.push(char::from_u32(v)?);
                i += hex;
            } else {
                s.push(c);
            }
            seg = i;
        }
    }

    /// A block mapping whose first key (already scanned, its `:` at `colon`) starts at
    /// column `col` of the current line.
    fn block_map(&mut self, col: usize, first_key: Node, colon: usize) -> Option<Node> {
        self.open()?;
        let pos = first_key.pos;
        let base = self.entries.len();
        let mut key = first_key;
        let mut colon = colon;
        loop {
            if is_merge_key(&key) {
                return None;
            }
            let value = self.map_value(col as isize, colon)?;
            self.entries.push((key, value));
            let l = self.cur;
            if l.kind != Kind::Content || l.indent < col {
                break;
            }
            if l.indent > col {
                return None;
            }
            let (k, c) = self.block_scalar_token(l.start + col)?;
            key = k;
            colon = c?;
        }
        self.depth -= 1;
        Some(Node {
            value: Value::Map(self.entries.drain(base..).collect()),
            pos,
        })
    }

    /// The value after the `:` at `colon` of a block mapping indented by `ci`.
    fn map_value(&mut self, ci: isize, colon: usize) -> Option<Node> {
        let colon_pos = self.pos(colon);
        let off = self.skip_spaces(colon + 1)?;
        if off < self.cur.end && self.b[off] != b'#' {
            return self.block_item(off, ci, false);
        }
        self.advance()?;
        let l = self.cur;
        if l.kind == Kind::Content {
            let off = l.start + l.indent;
            if l.indent as isize > ci {
                return self.block_item(off, ci, true);
            }
            if l.indent as isize == ci && self.is_entry(off) {
                return self.block_seq(l.indent, off, true);
            }
        }
        // An empty value sits where its `:` is.
        self.scalar(Cow::Borrowed(""), true, colon_pos)
    }

    /// A block sequence at column `col` whose first `-` is at `off` on the current line.
    /// `indentless` for the Kubernetes style, a sequence at its key's indentation.
    fn block_seq(&mut self, col: usize, first: usize, indentless: bool) -> Option<Node> {
        self.open()?;
        let base = self.items.len();
        let mut off = first;
        let mut pos = None;
        loop {
            let p = self.skip_spaces(off + 1)?;
            let content = p < self.cur.end && self.b[p] != b'#';
            // saphyr marks an entry after the `-`, its blanks and any comment.
            let mark = self.pos(if content { p } else { self.cur.end });
            if pos.is_none() {
                pos = Some(if indentless { mark } else { self.pos(off) });
            }
            let item = if content {
                self.block_item(p, col as isize, true)?
            } else {
                self.advance()?;
                let l = self.cur;
                if l.kind == Kind::Content && l.indent > col {
                    self.block_item(l.start + l.indent, col as isize, true)?
                } else {
                    self.scalar(Cow::Borrowed(""), true, mark)?
                }
            };
            self.items.push(item);
            let l = self.cur;
            if l.kind != Kind::Content || l.indent < col {
                break;
            }
            if l.indent > col {
                return None;
            }
            off = l.start + col;
            if !self.is_entry(off) {
                if indentless {
                    break;
                }
                return None;
            }
        }
        self.depth -= 1;
        Some(Node {
            value: Value::Seq(self.items.drain(base..).collect()),
            pos: pos?,
        })
    }

    /// A literal or folded block scalar whose indicator is at `off`; `ci` is the indentation
    /// of the enclosing block collection. A port of saphyr's `scan_block_scalar`.
    fn block_scalar(&mut self, off: usize, ci: usize) -> Option<Node> {
        let b = self.b;
        let t = self.t;
        let len = b.len();
        let literal = b[off] == b'|';
        let header_pos = self.pos(off);
        let header_line = self.cur.no;
        let end = self.cur.end;
        let mut i = off + 1;
        let mut chomp = Chomp::Clip;
        if i < end && (b[i] == b'+' || b[i] == b'-') {
            chomp = if b[i] == b'+' {
                Chomp::Keep
            } else {
                Chomp::Strip
            };
            i += 1;
        }
        // Explicit indentation indicators are left to saphyr.
        let j = self.skip_spaces(i)?;
        if j < end && !(b[j] == b'#' && j > i) {
            return None;
        }
        let mut p = (end + 1).min(len);
        let mut no = header_line + 1;
        if end == len {
            no = header_line;
        }
        // The first content line decides the indentation; blank lines before it count.
        let mut max_indent = 0;
        let mut breaks = 0usize;
        let mut k;
        loop {
            k = 0;
            while p + k < len && b[p + k] == b' ' {
                k += 1;
            }
            max_indent = max_indent.max(k);
            if p + k < len && b[p + k] == b'\n' {
                breaks += 1;
                p += k + 1;
                no += 1;
                continue;
            }
            break;
        }
        let mut q = p + k;
        if q < len && b[q] == b'\t' {
            return None;
        }
        let indent = max_indent.max(ci + 1);
        let node = if q == len {
            let text = match chomp {
                Chomp::Strip | Chomp::Clip => String::new(),
                Chomp::Keep if breaks == 0 && no > header_line && k > 0 => "\n".to_string(),
                Chomp::Keep => "\n".repeat(breaks),
            };
            self.scalar(Cow::Owned(text), false, header_pos)?
        } else {
            if k < indent && k > ci {
                return None; // a wrongly indented line
            }
            let start_pos = Pos {
                line: no,
                col: k as u32 + 1,
            };
            let mut s = String::new();
            let mut leading_break = false;
            let mut leading_blank = false;
            let mut col = k;
            while col == indent && q < len && b[q] != b'\n' {
                let trailing_blank = b[q] == b' ' || b[q] == b'\t';
                if !literal && leading_break && !leading_blank && !trailing_blank {
                    if breaks == 0 {
                        s.push(' ');
                    }
                } else if leading_break {
                    s.push('\n');
                }
                for _ in 0..breaks {
                    s.push('\n');
                }
                leading_break = false;
                breaks = 0;
                leading_blank = trailing_blank;
                let line_end = b[q..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(len, |e| q + e);
                s.push_str(&t[q..line_end]);
                if line_end == len {
                    q = len;
                    p = len;
                    // The column is past the content, so at least the indentation.
                    col = indent;
                    break;
                }
                leading_break = true;
                p = line_end + 1;
                no += 1;
                loop {
                    k = 0;
                    while k < indent && p + k < len && b[p + k] == b' ' {
                        k += 1;
                    }
                    if p + k < len && b[p + k] == b'\n' {
                        breaks += 1;
                        p += k + 1;
                        no += 1;
                        continue;
                    }
                    break;
                }
                col = k;
                q = p + k;
            }
            if chomp != Chomp::Strip {
                if leading_break {
                    s.push('\n');
                }
                if q == len && col >= indent.max(1) {
                    s.push('\n');
                }
            }
            if chomp == Chomp::Keep {
                for _ in 0..breaks {
                    s.push('\n');
                }
            }
            self.scalar(Cow::Owned(s), false, start_pos)?
        };
        // Resume at the line where the scalar stopped.
        if q == len {
            p = len;
        }
        self.next = p;
        self.next_no = no;
        self.advance()?;
        Some(node)
    }

    /// A flow collection that closes on its line: the node and the offset after it.
    fn flow(&mut self, off: usize) -> Option<(Node, usize)> {
        self.open()?;
        let b = self.b;
        let end = self.cur.end;
        let pos = self.pos(off);
        let seq = b[off] == b'[';
        let close = if seq { b']' } else { b'}' };
        let base_items = self.items.len();
        let base_entries = self.entries.len();
        let mut i = self.skip_spaces(off + 1)?;
        if i < end && b[i] == close {
            i += 1;
        } else {
            loop {
                if i == end {
                    return None;
                }
                if seq {
                    let (item, j) = self.flow_node(i)?;
                    self.items.push(item);
                    i = self.skip_spaces(j)?;
                } else {
                    if matches!(b[i], b'[' | b'{') {
                        return None;
                    }
                    let (key, j) = self.flow_node(i)?;
                    if is_merge_key(&key) {
                        return None;
                    }
                    let j = self.skip_spaces(j)?;
                    if j == end || b[j] != b':' {
                        return None;
                    }
                    // Only a quoted key may have its value right after the `:`.
                    let plain = matches!(key.value, Value::Scalar { plain: true, .. });
                    if plain && (j + 1 == end || b[j + 1] != b' ') {
                        return None;
                    }
                    let v = self.skip_spaces(j + 1)?;
                    if v == end || matches!(b[v], b',' | b'}') {
                        return None;
                    }
                    let (value, k) = self.flow_node(v)?;
                    self.entries.push((key, value));
                    i = self.skip_spaces(k)?;
                }
                if i == end {
                    return None;
                }
                if b[i] == b',' {
                    i = self.skip_spaces(i + 1)?;
                    if i < end && b[i] == close {
                        i += 1;
                        break;
                    }
                    continue;
                }
                if b[i] == close {
                    i += 1;
                    break;
                }
                return None;
            }
        }
        self.depth -= 1;
        let value = if seq {
            Value::Seq(self.items.drain(base_items..).collect())
        } else {
            Value::Map(self.entries.drain(base_entries..).collect())
        };
        Some((Node { value, pos }, i))
    }

    /// A node inside a flow collection: the node and the offset after it.
    fn flow_node(&mut self, off: usize) -> Option<(Node, usize)> {
        let b = self.b;
        let end = self.cur.end;
        match b[off] {
            b'[' | b'{' => self.flow(off),
            b'"' | b'\'' => {
                let pos = self.pos(off);
                let (text, after) = self.quoted(off)?;
                Some((self.scalar(text, false, pos)?, after))
            }
            c => {
                let n1 = if off + 1 < end { b[off + 1] } else { b'\n' };
                if !plain_start(c, n1, true) {
                    return None;
                }
                let mut i = off;
                let mut tend = off;
                while i < end {
                    match b[i] {
                        b' ' => {
                            let mut j = i + 1;
                            while j < end && b[j] == b' ' {
                                j += 1;
                            }
                            if j == end || b[j] == b'#' {
                                return None;
                            }
                            if b[j] == b'-' && j + 1 < end && is_flow(b[j + 1]) {
                                return None;
                            }
                            i = j;
                        }
                        b'\t' => return None,
                        c if is_flow(c) => break,
                        b':' => {
                            if i + 1 == end || b[i + 1] == b' ' || is_flow(b[i + 1]) {
                                break;
                            }
                            if b[i + 1] == b'\t' {
                                return None;
                            }
                            i += 1;
                            tend = i;
                        }
                        _ => {
                            i += 1;
                            tend = i;
                        }
                    }
                }
                if i == end {
                    return None;
                }
                let pos = self.pos(off);
                Some((
                    self.scalar(Cow::Borrowed(&self.t[off..tend]), true, pos)?,
                    i,
                ))
            }
        }
    }
}

/// The offset of the first space, tab or `:` in `b[from..end]`, or `end`: the bytes that
/// may end a plain scalar in block context.
fn find_plain_stop(b: &[u8], from: usize, end: usize) -> usize {
    let mut i = from;
    while i + 8 <= end {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let hit = zero_bytes(w ^ (ONES * u64::from(b' ')))
            | zero_bytes(w ^ (ONES * u64::from(b':')))
            | zero_bytes(w ^ (ONES * u64::from(b'\t')));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < end && !matches!(b[i], b' ' | b':' | b'\t') {
        i += 1;
    }
    i
}

/// Can a plain scalar start with `c` followed by `n1`? Indicators and the cases that are
/// legal but rare (`?x`, `:x`) answer no, which gives up.
fn plain_start(c: u8, n1: u8, flow: bool) -> bool {
    match c {
        b'-' => !(matches!(n1, b' ' | b'\t' | b'\n') || flow && is_flow(n1)),
        b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' | b'\t' | b'\n' => false,
        _ => true,
    }
}

fn is_merge_key(key: &Node) -> bool {
    matches!(key.value, Value::Scalar { plain: true, .. }) && key.scalar_text() == Some("<<")
}
