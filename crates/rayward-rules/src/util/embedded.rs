//! YAML documents held in string fields of Ray objects: a RayJob's (and RayCronJob's)
//! `runtimeEnvYAML` and a RayService's `serveConfigV2`. KubeRay parses them with the same
//! reader as kubectl, so rayward reads them with its own loader, under limits of their
//! own (an embedded document is small; an alias bomb in one must cost little), and maps
//! positions inside the string back to the file.

use rayward_manifest::load::{parse_documents, Limits};
use rayward_manifest::{JsonPath, Kind, LoadErrorKind, Node, Object, Pos, Value};

/// Bounds for one embedded document, separate from the file's.
pub fn limits() -> Limits {
    Limits {
        max_file_bytes: 1024 * 1024,
        max_depth: 64,
        max_alias_nodes: 10_000,
        max_nodes: 200_000,
    }
}

/// One embedded-document field of an object.
pub struct Field<'a> {
    /// `runtimeEnvYAML` or `serveConfigV2`.
    pub name: &'static str,
    pub path: JsonPath,
    pub key: &'a Node,
    pub value: &'a Node,
}

/// The embedded-document fields an object has (none for other kinds).
pub fn fields(obj: &Object) -> Vec<Field<'_>> {
    let (name, parent): (&'static str, &[&str]) = match obj.kind {
        Kind::RayJob => ("runtimeEnvYAML", &["spec"]),
        Kind::RayCronJob => ("runtimeEnvYAML", &["spec", "jobTemplate"]),
        Kind::RayService => ("serveConfigV2", &["spec"]),
        _ => return Vec::new(),
    };
    let Some((key, value)) = obj.root.path(parent).and_then(|p| p.get_entry(name)) else {
        return Vec::new();
    };
    vec![Field {
        name,
        path: JsonPath::root().keys(parent).key(name),
        key,
        value,
    }]
}

/// A parsed embedded document.
pub struct Embedded {
    pub root: Node,
    /// Where the string's first line of content is in the file, when the string is a
    /// block scalar (`|`) whose lines are the file's lines; `None` for a one-line or
    /// quoted string, where every finding points at the field.
    block_start: Option<Pos>,
    /// Blank lines before the first line of content (they start the string's text).
    lead: u32,
    field: Pos,
}

/// Why an embedded document cannot be read, at a place in the file.
pub struct Unreadable {
    pub pos: Pos,
    pub reason: String,
}

impl Embedded {
    /// Parses the field: `Ok(None)` when it holds nothing to read (null, empty, not a
    /// string: the CRD schema refuses a non-string), `Err` when KubeRay would read a
    /// document that rayward cannot, or when the document is not the mapping KubeRay
    /// expects. Only the first document counts, as in KubeRay.
    pub fn parse(f: &Field<'_>) -> Result<Option<Embedded>, Unreadable> {
        let (key, val) = (f.key, f.value);
        let Value::Scalar { text, .. } = &val.value else {
            return Ok(None);
        };
        if val.is_null() || text.trim().is_empty() {
            return Ok(None);
        }
        let lead = text.bytes().take_while(|&b| b == b'\n').count() as u32;
        let mut e = Embedded {
            root: Node::scalar("", true, Pos::default()),
            block_start: (val.pos.line > key.pos.line).then_some(val.pos),
            lead,
            field: key.pos,
        };
        let limits = limits();
        if text.len() as u64 > limits.max_file_bytes {
            return Err(Unreadable {
                pos: key.pos,
                reason: format!(
                    "{} bytes, over the {} bytes rayward reads in an embedded document",
                    text.len(),
                    limits.max_file_bytes
                ),
            });
        }
        // An error at the end of the text (an unclosed bracket) is placed on its last line.
        let last_line = text.trim_end_matches('\n').lines().count().max(1) as u32;
        let docs = parse_documents(f.name, text, &limits).map_err(|err| {
            let inner = Pos {
                line: err.line.min(last_line),
                col: if err.line > last_line { 1 } else { err.col },
            };
            let pos = if err.line > 0 {
                e.file_pos(inner)
            } else {
                key.pos
            };
            let budget = matches!(
                err.kind,
                LoadErrorKind::AliasBomb(_)
                    | LoadErrorKind::TooDeep(_)
                    | LoadErrorKind::TooManyNodes(_)
            );
            Unreadable {
                pos,
                reason: format!(
                    "{}{}",
                    err.kind,
                    if budget {
                        " (rayward's bound for embedded documents)"
                    } else {
                        ""
                    }
                ),
            }
        })?;
        let Some(doc) = docs.into_iter().next() else {
            return Ok(None);
        };
        if !doc.root.is_map() {
            return Err(Unreadable {
                pos: e.file_pos(doc.root.pos),
                reason: "not a mapping, which KubeRay expects here".into(),
            });
        }
        e.root = doc.root;
        Ok(Some(e))
    }

    /// The file position of a position inside the string.
    pub fn file_pos(&self, inner: Pos) -> Pos {
        match self.block_start {
            Some(start) if inner.line > self.lead => Pos {
                line: start.line + inner.line - 1 - self.lead,
                col: start.col + inner.col.saturating_sub(1),
            },
            _ => self.field,
        }
    }
}
