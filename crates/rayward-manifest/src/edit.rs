//! Changing a [`Node`] tree in place, for `rayward harden` and the webhook's patches.
//!
//! Edits keep what they do not touch exactly as loaded: key order, duplicate keys, the
//! plain or quoted form of every scalar and, for the emitter's sake, nothing else. Nodes
//! an edit creates carry [`Pos::GENERATED`] (line 0), so a finding on them can say
//! "generated" instead of pointing at a line of the input that never held them.

use crate::node::{JsonPath, Node, Pos, Value};

impl Pos {
    /// The position of a node that no input held: created by an edit.
    pub const GENERATED: Pos = Pos { line: 0, col: 0 };

    /// Whether the node was created by an edit rather than loaded.
    pub fn is_generated(&self) -> bool {
        self.line == 0
    }
}

/// One step of a path into a tree: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Splits a [`JsonPath`] (`spec.workerGroupSpecs[1].template`) into steps. Keys with a
/// `.` or `[` cannot be told apart from the separators; the paths of pod views never hold
/// such keys.
pub fn steps(path: &JsonPath) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.as_str().split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Step::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

/// Would this text, written plain, read back as a string in Kubernetes' YAML decoders?
/// It must be a string to go-yaml v2 ([`crate::yaml11::resolve_plain`]) and, to stay clear
/// of other readers, look like no YAML 1.1 or 1.2 number, boolean or null either.
pub fn resolves_as_string(s: &str) -> bool {
    if crate::yaml11::resolve_plain(s) != crate::yaml11::Resolved::Str {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "" | "~"
            | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return false;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let body = body.strip_prefix('.').unwrap_or(body);
    // Numbers in any notation of YAML 1.1 or 1.2 (decimal, 0x, 0o, exponent, sexagesimal,
    // underscores): quote anything that starts like a number and holds only number
    // characters. `64Mi` and `100m` stay plain.
    if body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | '_' | ':' | 'x' | 'o' | '+' | '-'))
    {
        return false;
    }
    true
}

/// Can this text be written as a plain scalar in block context and read back unchanged?
pub fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return false;
    }
    if s.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    }) {
        return false;
    }
    if matches!(
        first,
        '[' | ']'
            | '{'
            | '}'
            | ','
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') {
        let second = s[1..].chars().next();
        if second.is_none_or(char::is_whitespace) {
            return false;
        }
    }
    if s == "---" || s == "..." || s.starts_with("--- ") || s.starts_with("... ") {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.ends_with(':'))
}

impl Node {
    /// A new empty mapping.
    pub fn new_map() -> Node {
        Node {
            value: Value::Map(Vec::new()),
            pos: Pos::GENERATED,
        }
    }

    /// A new sequence.
    pub fn new_seq(items: Vec<Node>) -> Node {
        Node {
            value: Value::Seq(items),
            pos: Pos::GENERATED,
        }
    }

    /// A new string scalar: plain when it reads back as the same string, quoted otherwise
    /// (`"1"`, `"true"`, `"2.60.0"`).
    pub fn string(s: impl Into<String>) -> Node {
        let s = s.into();
        let plain = plain_safe(&s) && resolves_as_string(&s);
        Node::scalar(s, plain, Pos::GENERATED)
    }

    /// A new plain scalar of another type: `true`, `1000`.
    pub fn plain(text: impl Into<String>) -> Node {
        Node::scalar(text.into(), true, Pos::GENERATED)
    }

    pub fn boolean(b: bool) -> Node {
        Node::plain(if b { "true" } else { "false" })
    }

    pub fn int(i: i64) -> Node {
        Node::plain(i.to_string())
    }

    /// A new mapping from (key, value) pairs, in that order.
    pub fn map_of<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
        Node {
            value: Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Node::string(k.into()), v))
                    .collect(),
            ),
            pos: Pos::GENERATED,
        }
    }

    /// A mapping value, mutably (the last of duplicate keys, which is the one that counts).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .rev()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at a path of steps, mutably.
    pub fn at_mut(&mut self, steps: &[Step]) -> Option<&mut Node> {
        let mut n = self;
        for s in steps {
            n = match s {
                Step::Key(k) => n.get_mut(k)?,
                Step::Index(i) => match &mut n.value {
                    Value::Seq(items) => items.get_mut(*i)?,
                    _ => return None,
                },
            };
        }
        Some(n)
    }

    /// The node at a [`JsonPath`], mutably.
    pub fn at_path_mut(&mut self, path: &JsonPath) -> Option<&mut Node> {
        self.at_mut(&steps(path))
    }

    /// The value of `key`, inserted as `make()` when missing. A null value (`key:` or
    /// `key: null`) counts as missing. `None` when this node is not a mapping.
    pub fn entry_with(&mut self, key: &str, make: impl FnOnce() -> Node) -> Option<&mut Node> {
        let Value::Map(entries) = &mut self.value else {
            return None;
        };
        match entries
            .iter()
            .rposition(|(k, _)| k.scalar_text() == Some(key))
        {
            Some(i) => {
                if entries[i].1.is_null() {
                    let pos = entries[i].1.pos;
                    entries[i].1 = make();
                    entries[i].1.pos = pos;
                }
                Some(&mut entries[i].1)
            }
            None => {
                entries.push((Node::string(key), make()));
                entries.last_mut().map(|(_, v)| v)
            }
        }
    }

    /// The mapping at `key`, created empty when missing or null. `None` when this node is
    /// not a mapping, or `key` holds something else than a mapping.
    pub fn map_entry(&mut self, key: &str) -> Option<&mut Node> {
        self.entry_with(key, Node::new_map).filter(|n| n.is_map())
    }

    /// The sequence at `key`, created empty when missing or null. `None` when this node is
    /// not a mapping, or `key` holds something else than a sequence.
    pub fn seq_entry(&mut self, key: &str) -> Option<&mut Node> {
        self.entry_with(key, || Node::new_seq(Vec::new()))
            .filter(|n| n.is_seq())
    }

    /// Sets `key` to `value`, replacing the value in place (the key keeps its position in
    /// the order) or appending the entry. Returns whether anything changed: setting a
    /// scalar to the same text and type is no change. Does nothing on a non-mapping.
    pub fn set(&mut self, key: &str, value: Node) -> bool {
        let Value::Map(entries) = &mut self.value else {
            return false;
        };
        match entries
            .iter()
            .rposition(|(k, _)| k.scalar_text() == Some(key))
        {
            Some(i) => {
                if same(&entries[i].1, &value) {
                    return false;
                }
                entries[i].1 = value;
            }
            None => entries.push((Node::string(key), value)),
        }
        true
    }

    /// Sets `key` only when it is missing or null. Returns whether it did.
    pub fn set_default(&mut self, key: &str, value: Node) -> bool {
        match self.get(key) {
            Some(v) if !v.is_null() => false,
            _ => self.set(key, value),
        }
    }

    /// Removes every entry of `key`. Returns whether one was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let Value::Map(entries) = &mut self.value else {
            return false;
        };
        let before = entries.len();
        entries.retain(|(k, _)| k.scalar_text() != Some(key));
        entries.len() != before
    }

    /// Appends to a sequence. Does nothing on a non-sequence.
    pub fn push(&mut self, item: Node) {
        if let Value::Seq(items) = &mut self.value {
            items.push(item);
        }
    }

    /// Inserts into a sequence at `index` (clamped to its length). Does nothing on a
    /// non-sequence.
    pub fn insert(&mut self, index: usize, item: Node) {
        if let Value::Seq(items) = &mut self.value {
            let i = index.min(items.len());
            items.insert(i, item);
        }
    }

    /// The items of a sequence, mutably (empty for anything else).
    pub fn seq_mut(&mut self) -> &mut [Node] {
        match &mut self.value {
            Value::Seq(items) => items,
            _ => &mut [],
        }
    }

    /// Keeps the sequence items for which `keep` is true. Returns how many were removed.
    pub fn retain_items(&mut self, mut keep: impl FnMut(&Node) -> bool) -> usize {
        match &mut self.value {
            Value::Seq(items) => {
                let before = items.len();
                items.retain(|n| keep(n));
                before - items.len()
            }
            _ => 0,
        }
    }

    /// Turns quoted single-line strings into plain ones wherever the plain form reads back
    /// as the same string, keys included: what JSON input needs to come out as ordinary
    /// YAML. Types never change (`"1"` and `"true"` stay quoted).
    pub fn prefer_plain(&mut self) {
        match &mut self.value {
            Value::Scalar { text, plain } => {
                if !*plain && plain_safe(text) && resolves_as_string(text) {
                    *plain = true;
                }
            }
            Value::Seq(items) => items.iter_mut().for_each(Node::prefer_plain),
            Value::Map(entries) => {
                for (k, v) in entries {
                    k.prefer_plain();
                    v.prefer_plain();
                }
            }
        }
    }

    /// Whether this is a plain (unquoted, not block) scalar.
    pub fn is_plain(&self) -> bool {
        matches!(self.value, Value::Scalar { plain: true, .. })
    }

    /// Equality of content: same structure, texts and scalar styles, positions ignored.
    pub fn same_as(&self, other: &Node) -> bool {
        same(self, other)
    }
}

/// Structural equality ignoring positions.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (
            Value::Scalar {
                text: t1,
                plain: p1,
            },
            Value::Scalar {
                text: t2,
                plain: p2,
            },
        ) => t1 == t2 && p1 == p2,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_documents;

    fn load(text: &str) -> Node {
        parse_documents("t.yaml", text, &Default::default())
            .unwrap()
            .remove(0)
            .root
    }

    #[test]
    fn paths_split_into_steps() {
        let p = JsonPath::root()
            .key("spec")
            .key("workerGroupSpecs")
            .idx(1)
            .keys(&["template", "spec"]);
        assert_eq!(
            steps(&p),
            vec![
                Step::Key("spec".into()),
                Step::Key("workerGroupSpecs".into()),
                Step::Index(1),
                Step::Key("template".into()),
                Step::Key("spec".into()),
            ]
        );
        assert!(steps(&JsonPath::root()).is_empty());
    }

    #[test]
    fn set_replaces_in_place_and_reports_changes() {
        let mut n = load("a: 1\nb: x\nc: 3\n");
        assert!(n.set("b", Node::string("y")));
        assert!(!n.set("b", Node::string("y")));
        assert!(n.set("d", Node::int(4)));
        let keys: Vec<&str> = n.as_map().iter().filter_map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert!(n.get("d").unwrap().pos.is_generated());
        assert!(!n.get("a").unwrap().pos.is_generated());
    }

    #[test]
    fn entries_are_created_only_when_missing_or_null() {
        let mut n = load("spec:\nlist: [1]\nscalar: x\n");
        assert!(n.map_entry("spec").is_some());
        assert!(n.get("spec").unwrap().is_map());
        assert_eq!(n.seq_entry("list").unwrap().as_seq().len(), 1);
        assert!(n.map_entry("scalar").is_none(), "a scalar is not replaced");
        n.map_entry("new").unwrap().set("k", Node::string("v"));
        assert_eq!(n.path(&["new", "k"]).and_then(Node::as_str), Some("v"));
    }

    #[test]
    fn at_path_mut_follows_view_paths() {
        let mut n = load("spec:\n  groups:\n  - name: a\n  - name: b\n");
        let p = JsonPath::root()
            .key("spec")
            .key("groups")
            .idx(1)
            .key("name");
        assert_eq!(n.at_path_mut(&p).unwrap().as_str(), Some("b"));
        let missing = JsonPath::root().key("spec").key("groups").idx(5);
        assert!(n.at_path_mut(&missing).is_none());
    }

    #[test]
    fn generated_strings_are_quoted_when_they_would_read_as_another_type() {
        for s in [
            "1", "true", "yes", "On", "2.60.0", "1e3", "0x1F", "~", "", "null", "-1", ".5",
        ] {
            assert!(!Node::string(s).is_plain(), "{s:?} must be quoted");
        }
        for s in [
            "64Mi",
            "100m",
            "RuntimeDefault",
            "ray-head",
            "/etc/ray/tls",
            "ALL",
        ] {
            assert!(Node::string(s).is_plain(), "{s:?} can stay plain");
        }
        for s in [
            "a: b",
            "#x",
            "- x",
            "x #y",
            "trailing:",
            " lead",
            "[x]",
            "*a",
            "a\nb",
        ] {
            assert!(!Node::string(s).is_plain(), "{s:?} is not plain-safe");
        }
    }

    #[test]
    fn prefer_plain_keeps_types() {
        let mut n =
            load("{\"a\": \"x\", \"b\": \"1\", \"c\": \"true\", \"d\": \"a: b\", \"e\": 2}\n");
        n.prefer_plain();
        let plain: Vec<bool> = n.as_map().iter().map(|(_, v)| v.is_plain()).collect();
        assert_eq!(plain, [true, false, false, false, true]);
        assert!(n.as_map().iter().all(|(k, _)| k.is_plain()));
        assert_eq!(n.get("b").and_then(Node::as_str), Some("1"));
    }

    #[test]
    fn retain_and_remove() {
        let mut n = load("a: [1, 2, 3]\nb: x\nb: y\n");
        assert_eq!(
            n.get_mut("a")
                .unwrap()
                .retain_items(|i| i.as_i64() != Some(2)),
            1
        );
        assert!(n.remove("b"));
        assert!(!n.remove("b"));
        assert_eq!(n.as_map().len(), 1);
    }
}
