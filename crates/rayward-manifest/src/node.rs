//! A YAML/JSON tree that remembers where every node came from.
//!
//! Scalars keep their text: the loader stores typed values in the canonical form Kubernetes
//! reads them as (`yes` → `true`, `0x10` → `16`; see [`crate::yaml11`]) and strings as
//! written, with `plain` false when they were quoted. A rule asks for `as_str`, `as_bool` or
//! `as_i64`, which resolve the text as go-yaml v2 does.

use crate::yaml11::{resolve_plain, Resolved};
use compact_str::CompactString;
use std::fmt;
use std::sync::Arc;

/// A position in a source file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The payload of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar with its text; `plain` is false when it was quoted or a block scalar, in
    /// which case it is always a string. Short texts (most of a manifest) are stored
    /// inline, which keeps a node at 40 bytes with no allocation of its own.
    Scalar {
        text: CompactString,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn scalar(text: impl Into<CompactString>, plain: bool, pos: Pos) -> Node {
        Node {
            value: Value::Scalar {
                text: text.into(),
                plain,
            },
            pos,
        }
    }

    /// Looks up a mapping key (string keys only). `None` for non-maps.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            // Later keys win, as in Kubernetes' YAML-to-JSON conversion.
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Looks up a mapping key and returns the key node too (its position is where a
    /// finding about the entry should point).
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// Walks a dotted path of mapping keys: `node.path(&["spec", "template"])`.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The raw text of a scalar, whatever its resolved type.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A scalar as a string. YAML null resolves to `None`; numbers and booleans give
    /// their text, as Kubernetes would after a round trip through kubectl.
    pub fn as_str(&self) -> Option<&str> {
        if self.is_null() {
            return None;
        }
        self.scalar_text()
    }

    pub fn is_null(&self) -> bool {
        self.resolved() == Some(Resolved::Null)
    }

    /// What a plain scalar means to Kubernetes; `None` for quoted scalars and collections.
    pub fn resolved(&self) -> Option<Resolved> {
        match &self.value {
            Value::Scalar { text, plain: true } => Some(resolve_plain(text)),
            _ => None,
        }
    }

    /// A boolean as Kubernetes reads it (YAML 1.1: `true`, `yes`, `on`, …); quoted strings
    /// are not booleans.
    pub fn as_bool(&self) -> Option<bool> {
        match self.resolved()? {
            Resolved::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An integer as Kubernetes reads it (plain scalars only; `0x`, `0o`, leading-`0`
    /// octal, `_` separators; an integral float such as `1e3` too, which kubectl sends as
    /// an integer).
    pub fn as_i64(&self) -> Option<i64> {
        match self.resolved()? {
            Resolved::Int(i) => Some(i),
            Resolved::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_map(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.value, Value::Map(_))
    }

    pub fn is_seq(&self) -> bool {
        matches!(self.value, Value::Seq(_))
    }

    /// Number of nodes in this subtree, this one included.
    pub fn size(&self) -> usize {
        1 + match &self.value {
            Value::Scalar { .. } => 0,
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| k.size() + v.size()).sum(),
        }
    }
}

/// A JSON path inside an object, e.g. `spec.workerGroupSpecs[1].template.spec`.
/// Shared (`Arc`), so views can hand out copies of their paths without allocating.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(Arc<str>);

impl JsonPath {
    pub fn root() -> Self {
        JsonPath(Arc::from(""))
    }

    /// Appends a key (`a.b`).
    pub fn key(&self, k: &str) -> Self {
        let mut s = String::with_capacity(self.0.len() + k.len() + 1);
        s.push_str(&self.0);
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(k);
        JsonPath(Arc::from(s))
    }

    /// Appends an index (`a[3]`).
    pub fn idx(&self, i: usize) -> Self {
        JsonPath(Arc::from(format!("{}[{}]", self.0, i)))
    }

    /// Appends several keys.
    pub fn keys(&self, ks: &[&str]) -> Self {
        let mut s = String::from(&*self.0);
        for k in ks {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(k);
        }
        JsonPath(Arc::from(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_stay_small() {
        // Memory of a large audit is nodes; keep them compact.
        assert!(
            std::mem::size_of::<Node>() <= 40,
            "{}",
            std::mem::size_of::<Node>()
        );
    }

    #[test]
    fn scalars_resolve_as_kubernetes_does() {
        let p = Pos::default();
        assert_eq!(Node::scalar("true", true, p).as_bool(), Some(true));
        assert_eq!(Node::scalar("true", false, p).as_bool(), None);
        assert_eq!(Node::scalar("0x1F", true, p).as_i64(), Some(31));
        assert_eq!(Node::scalar("-12", true, p).as_i64(), Some(-12));
        assert_eq!(Node::scalar("12a", true, p).as_i64(), None);
        assert!(Node::scalar("~", true, p).is_null());
        assert!(!Node::scalar("~", false, p).is_null());
        assert_eq!(Node::scalar("null", true, p).as_str(), None);
        assert_eq!(Node::scalar("1", true, p).as_str(), Some("1"));
        // YAML 1.1, as sigs.k8s.io/yaml reads it.
        assert_eq!(Node::scalar("yes", true, p).as_bool(), Some(true));
        assert_eq!(Node::scalar("off", true, p).as_bool(), Some(false));
        assert_eq!(Node::scalar("yes", false, p).as_bool(), None);
        assert_eq!(Node::scalar("017", true, p).as_i64(), Some(15));
        assert_eq!(Node::scalar("1_000", true, p).as_i64(), Some(1000));
    }

    #[test]
    fn json_paths_compose() {
        let p = JsonPath::root()
            .key("spec")
            .key("workerGroupSpecs")
            .idx(1)
            .key("template");
        assert_eq!(p.as_str(), "spec.workerGroupSpecs[1].template");
    }
}
