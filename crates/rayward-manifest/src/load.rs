//! Reading bytes into documents, bounded in size, depth and alias expansion.
//!
//! The YAML event stream (saphyr-parser, which handles JSON too) is folded into [`Node`]s
//! with an explicit stack, so deep nesting cannot overflow ours, and every alias copy is
//! counted, so a "billion laughs" document stops at a budget instead of eating memory.

use crate::error::{LoadError, LoadErrorKind};
use crate::node::{Node, Pos, Value};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Bounds applied while loading. The defaults fit any real manifest with room to spare.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes that aliases may copy in one file.
    pub max_alias_nodes: usize,
    /// Most nodes in one file, aliases included.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 * 1024 * 1024,
            max_depth: 128,
            max_alias_nodes: 100_000,
            max_nodes: 20_000_000,
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based index of the document in its file.
    pub index: usize,
    pub root: Node,
}

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
    if let Some(docs) = crate::fast::parse_fast(text, limits) {
        return Ok(docs);
    }
    parse_documents_saphyr(file, text, limits)
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
    let mut b = Builder::new(file, limits);
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((ev, span)) => b.event(ev, span)?,
            Err(e) => {
                let m = e.marker();
                return Err(LoadError {
                    file: file.to_string(),
                    line: m.line() as u32,
                    col: m.col() as u32 + 1,
                    kind: LoadErrorKind::Syntax(e.info().to_string()),
                });
            }
        }
    }
    Ok(b.docs)
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
                let core_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !core_str;
                let node = Node::scalar(text.as_ref(), plain, pos);
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
                    let mut entries = apply_merge_keys(entries);
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

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), LoadError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
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

/// Applies YAML merge keys (`<<: *base`), which Kubernetes' YAML reader honours: keys of
/// the merged maps are added where the map does not set them itself.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries
        .iter()
        .any(|(k, _)| matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<"))
    {
        return entries;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries.into_iter().partition(
        |(k, _)| matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<"),
    );
    for (_, v) in merges {
        let sources: Vec<Node> = match v.value {
            Value::Map(_) => vec![v],
            Value::Seq(items) => items,
            Value::Scalar { .. } => vec![],
        };
        for src in sources {
            if let Value::Map(src_entries) = src.value {
                for (k, val) in src_entries {
                    if !own
                        .iter()
                        .any(|(ok, _)| ok.scalar_text() == k.scalar_text())
                    {
                        own.push((k, val));
                    }
                }
            }
        }
    }
    own
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
        let docs = parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n").unwrap();
        let m = docs[0].root.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(m.get("y").unwrap().as_i64(), Some(3));
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
