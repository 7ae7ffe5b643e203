//! Reading bytes into documents, bounded in size, depth and alias expansion.
//!
//! The YAML event stream (saphyr-parser, which handles JSON too) is folded into [`Node`]s
//! with an explicit stack, so deep nesting cannot overflow ours, and every alias copy is
//! counted, so a "billion laughs" document stops at a budget instead of eating memory.

use crate::error::{LoadError, LoadErrorKind};
use crate::node::{Node, Pos, Value};
use crate::yaml11;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::{HashMap, HashSet};

pub use crate::limits::{Document, Limits};

/// Checks raw bytes and decodes them: NUL bytes, invalid UTF-8 and oversize inputs are
/// errors that name the line where the problem starts.
pub fn decode<'a>(file: &str, bytes: &'a [u8], limits: &Limits) -> Result<&'a str, LoadError> {
    let err = |line: u32, kind| LoadError {
        file: file.to_string(),
        line,
        col: if line > 0 { 1 } else { 0 },
        kind,
    };
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(err(
            0,
            LoadErrorKind::TooLarge {
                size: bytes.len() as u64,
                limit: limits.max_file_bytes,
            },
        ));
    }
    if let Some(at) = memchr::memchr(0, bytes) {
        return Err(err(line_of(bytes, at), LoadErrorKind::Binary));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.strip_prefix('\u{feff}').unwrap_or(s)),
        Err(e) => Err(err(line_of(bytes, e.valid_up_to()), LoadErrorKind::NotUtf8)),
    }
}

fn line_of(bytes: &[u8], offset: usize) -> u32 {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u32
}

/// Parses every document of a text. An error stops the file: YAML cannot resynchronise
/// reliably after a syntax error, and a half-read file would give half the findings.
///
/// Plain manifests take a fast path ([`crate::fast`]); anything outside its subset, and
/// every error, goes through saphyr, which gives the same tree.
pub fn parse_documents(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Document>, LoadError> {
    if let Some(mut docs) = crate::fast::parse_fast(text, limits) {
        for d in &mut docs {
            yaml11::resolve_tree(&mut d.root).map_err(|r| refused(file, r))?;
        }
        return Ok(docs);
    }
    parse_documents_saphyr(file, text, limits)
}

fn refused(file: &str, r: yaml11::Refusal) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: r.pos.line,
        col: r.pos.col,
        kind: LoadErrorKind::Refused(r.message),
    }
}

/// The anchors that some alias refers to. Only those are copied while building: an anchor
/// no alias uses costs nothing, however large or deeply nested (a first pass over the
/// events, made only when the text has an alias indicator at all).
fn referenced_anchors(text: &str) -> Option<HashSet<usize>> {
    if !text.contains('*') {
        return Some(HashSet::new());
    }
    let mut used = HashSet::new();
    for ev in Parser::new_from_str(text) {
        match ev {
            Ok((Event::Alias(id), _)) => {
                used.insert(id);
            }
            Ok(_) => {}
            // The building pass reports the error with its position.
            Err(_) => return None,
        }
    }
    Some(used)
}

/// [`parse_documents`] without the fast path (for tests and benchmarks).
#[doc(hidden)]
pub fn parse_documents_saphyr(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Document>, LoadError> {
    // JSON allows tabs between tokens where YAML's block context does not; inside JSON
    // strings a raw tab is invalid anyway, so replacing them keeps meaning and columns.
    let owned;
    let text = if looks_like_json(text) && text.contains('\t') {
        owned = text.replace('\t', " ");
        owned.as_str()
    } else {
        text
    };
    let mut owned_tabs: Option<String> = None;
    for _ in 0..=MAX_TAB_RETRIES {
        let t = owned_tabs.as_deref().unwrap_or(text);
        match parse_once(file, t, limits) {
            Ok(docs) => return Ok(docs),
            Err((e, at)) => match at.and_then(|at| tab_after_colon(t, at)) {
                // go-yaml takes a tab after `key:` as the separator it is in YAML 1.2;
                // saphyr refuses it before a letter or `-`. A space in its place reads the
                // same and keeps every column.
                Some(byte) => {
                    let mut fixed = t.to_string();
                    fixed.replace_range(byte..byte + 1, " ");
                    owned_tabs = Some(fixed);
                }
                None => return Err(e),
            },
        }
    }
    parse_once(file, owned_tabs.as_deref().unwrap_or(text), limits).map_err(|(e, _)| e)
}

/// How many separating tabs after `key:` are repaired in one file (each costs a parse).
const MAX_TAB_RETRIES: usize = 100;

/// One parse; a syntax error comes with the character index where saphyr stopped.
fn parse_once(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Document>, (LoadError, Option<usize>)> {
    let mut b = Builder::new(file, limits);
    b.referenced = referenced_anchors(text);
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((ev, span)) => b.event(ev, span).map_err(|e| (e, None))?,
            Err(e) => {
                let m = e.marker();
                let at = (e.info() == "':' must be followed by a valid YAML whitespace")
                    .then(|| m.index());
                return Err((
                    LoadError {
                        file: file.to_string(),
                        line: m.line() as u32,
                        col: m.col() as u32 + 1,
                        kind: LoadErrorKind::Syntax(e.info().to_string()),
                    },
                    at,
                ));
            }
        }
    }
    Ok(b.docs)
}

/// The byte offset of the tab that follows a `:` just before character index `at`.
fn tab_after_colon(text: &str, at: usize) -> Option<usize> {
    let end = text.char_indices().nth(at).map_or(text.len(), |(b, _)| b);
    let head = text[..end].trim_end_matches([' ', '\t']);
    let colon = head.len().checked_sub(1)?;
    (text.as_bytes().get(colon) == Some(&b':') && text.as_bytes().get(colon + 1) == Some(&b'\t'))
        .then_some(colon + 1)
}

fn looks_like_json(text: &str) -> bool {
    matches!(
        text.trim_start().as_bytes().first(),
        Some(b'{') | Some(b'[')
    )
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
    },
}

struct Builder<'l> {
    file: String,
    limits: &'l Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    /// Anchors that aliases refer to; `None` when unknown (then every anchor is kept).
    referenced: Option<HashSet<usize>>,
    alias_nodes: usize,
    nodes: usize,
    docs: Vec<Document>,
    doc_index: usize,
    root: Option<Node>,
}

impl<'l> Builder<'l> {
    fn new(file: &str, limits: &'l Limits) -> Self {
        Builder {
            file: file.to_string(),
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            referenced: None,
            alias_nodes: 0,
            nodes: 0,
            docs: Vec::new(),
            doc_index: 0,
            root: None,
        }
    }

    fn err(&self, pos: Pos, kind: LoadErrorKind) -> LoadError {
        LoadError {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            kind,
        }
    }

    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), LoadError> {
        let pos = Pos {
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        };
        match ev {
            Event::DocumentStart(_) => {
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                if let Some(root) = self.root.take().filter(|r| !r.is_null()) {
                    self.docs.push(Document {
                        index: self.doc_index,
                        root,
                    });
                }
                self.doc_index += 1;
            }
            Event::Scalar(text, style, anchor, tag) => {
                // Tags are applied here (go-yaml v2's rules); plain scalars are resolved
                // where they land (`complete`), since a key keeps its text for `finish_map`.
                let node = match tag {
                    Some(t) => {
                        let full = format!("{}{}", t.handle, t.suffix);
                        let (text, plain) = yaml11::resolve_tagged(&full, &text, pos)
                            .map_err(|r| refused(&self.file, r))?;
                        Node::scalar(text, plain, pos)
                    }
                    None => Node::scalar(text.as_ref(), style == ScalarStyle::Plain, pos),
                };
                self.count(1, pos)?;
                self.complete(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    pos,
                    anchor,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    mut items,
                    pos,
                    anchor,
                }) = self.stack.pop()
                {
                    // Exact capacity: a large run keeps many trees alive.
                    items.shrink_to_fit();
                    self.complete(
                        Node {
                            value: Value::Seq(items),
                            pos,
                        },
                        anchor,
                    )?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    entries,
                    pos,
                    anchor,
                    ..
                }) = self.stack.pop()
                {
                    let mut entries =
                        yaml11::finish_map(entries).map_err(|r| refused(&self.file, r))?;
                    entries.shrink_to_fit();
                    self.complete(
                        Node {
                            value: Value::Map(entries),
                            pos,
                        },
                        anchor,
                    )?;
                }
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(self.err(pos, LoadErrorKind::UnknownAlias));
                };
                let size = target.size();
                self.alias_nodes = self.alias_nodes.saturating_add(size);
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(
                        self.err(pos, LoadErrorKind::AliasBomb(self.limits.max_alias_nodes))
                    );
                }
                let mut copy = target.clone();
                copy.pos = pos;
                self.count(size, pos)?;
                self.complete(copy, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(self.err(pos, LoadErrorKind::TooManyNodes(self.limits.max_nodes)));
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos) -> Result<(), LoadError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.err(pos, LoadErrorKind::TooDeep(self.limits.max_depth)));
        }
        self.count(1, pos)
    }

    fn complete(&mut self, mut node: Node, anchor: usize) -> Result<(), LoadError> {
        let used = |r: &Option<HashSet<usize>>| r.as_ref().is_none_or(|r| r.contains(&anchor));
        if anchor != 0 && used(&self.referenced) {
            // The copy an alias will take is charged now, so nested anchors cannot multiply
            // memory without paying for it.
            let size = node.size();
            self.alias_nodes = self.alias_nodes.saturating_add(size);
            if self.alias_nodes > self.limits.max_alias_nodes {
                return Err(self.err(
                    node.pos,
                    LoadErrorKind::AliasBomb(self.limits.max_alias_nodes),
                ));
            }
            self.anchors.insert(anchor, node.clone());
        }
        let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        if !is_key {
            if let Value::Scalar { text, plain: true } = &mut node.value {
                if let Some(t) =
                    yaml11::canonical_plain(text, node.pos).map_err(|r| refused(&self.file, r))?
                {
                    *text = t;
                }
            }
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Document>, LoadError> {
        parse_documents("t.yaml", s, &Limits::default())
    }

    #[test]
    fn multi_document_with_positions() {
        let docs = parse("a: 1\n---\nkind: Pod\nspec:\n  x: [1, 2]\n").unwrap();
        assert_eq!(docs.len(), 2);
        let spec = docs[1].root.get("spec").unwrap();
        assert_eq!(spec.pos, Pos { line: 5, col: 3 });
        assert_eq!(
            spec.get("x").unwrap().as_seq()[1].pos,
            Pos { line: 5, col: 10 }
        );
    }

    #[test]
    fn empty_documents_are_skipped() {
        assert_eq!(parse("---\n---\n# only a comment\n").unwrap().len(), 0);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let docs = parse("base: &b {x: 1, z: 2}\nm:\n  <<: *b\n  z: 3\n").unwrap();
        let m = docs[0].root.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(m.get("z").unwrap().as_i64(), Some(3));
        // Merges apply where they stand: a merge after a key overwrites it (go-yaml v2).
        let docs = parse("a: &a {p: true}\nm: {p: false, <<: *a}\n").unwrap();
        assert_eq!(
            docs[0].root.path(&["m", "p"]).unwrap().as_bool(),
            Some(true)
        );
        // `y` is a YAML 1.1 boolean, so kubectl reads the key `y:` as "true".
        let docs = parse("m: {y: 1}\n").unwrap();
        assert!(docs[0].root.path(&["m", "true"]).is_some());
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&s).unwrap_err();
        assert!(matches!(e.kind, LoadErrorKind::AliasBomb(_)), "{e}");
        assert!(e.line >= 5, "{e}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let s = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse(&s).unwrap_err();
        assert!(matches!(e.kind, LoadErrorKind::TooDeep(128)), "{e}");
        // Far deeper input is stopped by the parser's own limit, still as an error.
        let s = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&s).is_err());
        let s = (0..500)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>();
        assert!(matches!(
            parse(&s).unwrap_err().kind,
            LoadErrorKind::TooDeep(_)
        ));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(matches!(e.kind, LoadErrorKind::Syntax(_)));
        assert!(e.line >= 2, "{e}");
    }

    #[test]
    fn decode_rejects_binary_and_bad_utf8() {
        let l = Limits::default();
        let e = decode("f", b"a: 1\nb: \x00\n", &l).unwrap_err();
        assert_eq!((e.kind.clone(), e.line), (LoadErrorKind::Binary, 2));
        let e = decode("f", b"a: 1\n\nb: \xff\n", &l).unwrap_err();
        assert_eq!((e.kind.clone(), e.line), (LoadErrorKind::NotUtf8, 3));
        let small = Limits {
            max_file_bytes: 3,
            ..Limits::default()
        };
        assert!(matches!(
            decode("f", b"abcd", &small).unwrap_err().kind,
            LoadErrorKind::TooLarge { .. }
        ));
    }

    #[test]
    fn json_with_tabs() {
        let docs = parse("{\n\t\"kind\": \"Pod\",\n\t\"spec\": {}\n}\n").unwrap();
        assert_eq!(docs[0].root.get("kind").unwrap().as_str(), Some("Pod"));
    }

    #[test]
    fn quoted_and_tagged_scalars_are_strings() {
        let docs = parse("a: \"true\"\nb: !!str 12\nc: true\n").unwrap();
        let r = &docs[0].root;
        assert_eq!(r.get("a").unwrap().as_bool(), None);
        assert_eq!(r.get("b").unwrap().as_i64(), None);
        assert_eq!(r.get("c").unwrap().as_bool(), Some(true));
    }
}
