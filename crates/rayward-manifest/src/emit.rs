//! Writing a [`Node`] tree back as YAML that `kubectl apply` reads and that loads again to
//! the same tree.
//!
//! Block style with two-space indents and sequences flush with their key, as kubectl
//! prints them. Scalars keep their form: plain ones stay plain, quoted and block ones are
//! written double-quoted, or as a literal block (`|`) when they span lines and a block
//! holds them exactly. Positions and comments are not kept: the tree has none of the
//! latter, and the former belong to the input.

use crate::edit::plain_safe;
use crate::node::{Node, Value};
use crate::yaml11::{float_text, resolve_plain, Resolved};

/// Writes one document (no `---` marker).
pub fn to_yaml(root: &Node) -> String {
    let mut out = String::new();
    write_root(&mut out, root, &mut |_| {});
    out
}

/// How much text [`write_yaml`] holds before it hands it to the writer.
const SPILL_BYTES: usize = 64 * 1024;

/// Writes one document (no `---` marker) to `w` as it goes, holding at most about
/// [`SPILL_BYTES`] of text: a hardened object can be many times its input, and its text
/// need not exist in memory beside its tree.
pub fn write_yaml(w: &mut dyn std::io::Write, root: &Node) -> std::io::Result<()> {
    let mut out = String::with_capacity(SPILL_BYTES + 1024);
    let mut result = Ok(());
    let mut spill = |out: &mut String| {
        if out.len() >= SPILL_BYTES {
            if result.is_ok() {
                result = w.write_all(out.as_bytes());
            }
            out.clear();
        }
    };
    write_root(&mut out, root, &mut spill);
    result?;
    w.write_all(out.as_bytes())
}

/// Writes documents as one stream, separated by `---`.
pub fn to_yaml_stream<'a>(docs: impl IntoIterator<Item = &'a Node>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_root(&mut out, d, &mut |_| {});
    }
    out
}

/// Called after each block entry and item: [`write_yaml`] hands full text to its writer.
type Spill<'a> = &'a mut dyn FnMut(&mut String);

fn write_root(out: &mut String, root: &Node, spill: Spill<'_>) {
    match &root.value {
        Value::Map(e) if !e.is_empty() => write_map(out, e, 0, false, spill),
        Value::Seq(i) if !i.is_empty() => write_seq(out, i, 0, false, spill),
        Value::Map(_) => out.push_str("{}\n"),
        Value::Seq(_) => out.push_str("[]\n"),
        Value::Scalar { .. } => {
            let mut line = String::new();
            write_scalar_inline(&mut line, root, 0);
            out.push_str(line.trim_start());
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A mapping at `indent`; when `inline`, its first entry continues the current line
/// (after `- `).
fn write_map(
    out: &mut String,
    entries: &[(Node, Node)],
    indent: usize,
    inline: bool,
    spill: Spill<'_>,
) {
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        write_key(out, k);
        out.push(':');
        write_value(out, v, indent, true, spill);
        spill(out);
    }
}

/// A sequence at `indent`; when `inline`, its first item continues the current line.
fn write_seq(out: &mut String, items: &[Node], indent: usize, inline: bool, spill: Spill<'_>) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        out.push('-');
        write_value(out, item, indent, false, spill);
        spill(out);
    }
}

/// What follows `key:` (`after_key`) or `-`, for a node whose parent sits at `indent`.
fn write_value(out: &mut String, v: &Node, indent: usize, after_key: bool, spill: Spill<'_>) {
    match &v.value {
        Value::Map(e) if e.is_empty() => out.push_str(" {}\n"),
        Value::Seq(i) if i.is_empty() => out.push_str(" []\n"),
        Value::Map(e) => {
            if after_key {
                out.push('\n');
                write_map(out, e, indent + 2, false, spill);
            } else {
                out.push(' ');
                write_map(out, e, indent + 2, true, spill);
            }
        }
        Value::Seq(items) => {
            if after_key {
                // Flush with the key, as kubectl writes it.
                out.push('\n');
                write_seq(out, items, indent, false, spill);
            } else {
                out.push(' ');
                write_seq(out, items, indent + 2, true, spill);
            }
        }
        Value::Scalar { .. } => {
            write_scalar_inline(out, v, indent + 2);
            out.push('\n');
        }
    }
}

/// A scalar after `key:` or `-`, with its leading space; a literal block's lines are
/// indented to `content_indent`.
fn write_scalar_inline(out: &mut String, n: &Node, content_indent: usize) {
    let Value::Scalar { text, plain } = &n.value else {
        return;
    };
    if *plain {
        if text.is_empty() {
            return;
        }
        out.push(' ');
        if plain_safe(text) {
            out.push_str(text);
        } else {
            double_quoted(out, text);
        }
        return;
    }
    out.push(' ');
    if let Some(chomp) = literal_block(text) {
        out.push('|');
        out.push_str(chomp);
        let body = text.trim_end_matches('\n');
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                pad(out, content_indent);
                out.push_str(line);
            }
        }
        // Kept trailing line breaks beyond the last line's own.
        let trailing = text.len() - body.len();
        for _ in 1..trailing {
            out.push('\n');
        }
    } else {
        double_quoted(out, text);
    }
}

/// The chomping indicator when `text` can be written as a literal block exactly, else
/// `None` (single lines, leading spaces, characters a block cannot hold).
fn literal_block(text: &str) -> Option<&'static str> {
    if !text.contains('\n') || text.starts_with([' ', '\n', '\t']) {
        return None;
    }
    if text
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_special(c))
    {
        return None;
    }
    // A line of only spaces right before the end would be read as indentation.
    let body = text.trim_end_matches('\n');
    if body.ends_with([' ', '\t'])
        && body
            .rsplit('\n')
            .next()
            .is_some_and(|l| l.trim().is_empty())
    {
        return None;
    }
    match text.len() - body.len() {
        0 => Some("-"),
        1 => Some(""),
        _ => Some("+"),
    }
}

/// Characters YAML 1.1 readers treat as line breaks or byte-order marks.
fn is_special(c: char) -> bool {
    // Line separators YAML folds, the BOM, and the bidi controls that would reorder what a
    // terminal shows of harden's output: all written as `\u` escapes, which read back the same.
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn write_key(out: &mut String, k: &Node) {
    match &k.value {
        Value::Scalar { text, plain } => {
            if *plain && plain_safe(text) {
                out.push_str(text);
            } else {
                double_quoted(out, text);
            }
        }
        // A mapping or sequence as a key: written in flow style on one line.
        _ => write_flow(out, k),
    }
}

fn write_flow(out: &mut String, n: &Node) {
    match &n.value {
        Value::Scalar { text, plain } => {
            if *plain && plain_safe(text) && !text.contains([',', '[', ']', '{', '}']) {
                out.push_str(text);
            } else {
                double_quoted(out, text);
            }
        }
        Value::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_flow(out, it);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_flow(out, k);
                out.push_str(": ");
                write_flow(out, v);
            }
            out.push('}');
        }
    }
}

fn double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_special(c) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_in_pieces_gives_the_same_text() {
        let text: String = (0..5000)
            .map(|i| format!("- name: item-{i}\n  value: {{a: [1, \"two\"], b: \"x\\ny\"}}\n"))
            .collect();
        let doc = crate::load::parse_documents("f", &text, &Default::default())
            .unwrap()
            .remove(0);
        let whole = to_yaml(&doc.root);
        assert!(whole.len() > 3 * SPILL_BYTES);
        let mut pieces = Vec::new();
        write_yaml(&mut pieces, &doc.root).unwrap();
        assert_eq!(String::from_utf8(pieces).unwrap(), whole);
    }
    use crate::load::parse_documents;

    fn load(text: &str) -> Node {
        parse_documents("t.yaml", text, &Default::default())
            .unwrap()
            .remove(0)
            .root
    }

    fn round_trip(text: &str) -> String {
        let n = load(text);
        let out = to_yaml(&n);
        let back = load(&out);
        assert!(n.same_as(&back), "round trip changed:\n{text}\n---\n{out}");
        out
    }

    #[test]
    fn block_style_like_kubectl() {
        let out = round_trip(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: b}}\nspec:\n  containers:\n  - name: c\n    args: [\"1\", x]\n    env: []\n",
        );
        assert_eq!(
            out,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    a: b\nspec:\n  containers:\n  - name: c\n    args:\n    - \"1\"\n    - x\n    env: []\n"
        );
    }

    #[test]
    fn scalar_forms_survive() {
        round_trip("a: 'single'\nb: \"dq\"\nc: plain\nd: 1\ne: \"1\"\nf: ~\ng:\nh: 'it''s'\ni: \"tab\\there\"\n");
        round_trip("- |\n  line1\n  line2\n- >\n  folded\n  text\n- |-\n  no newline\n- |+\n  keep\n\n- x\n");
        round_trip("k: \"  leading\\nspaces\"\nq: \"a: b\"\nr: '#c'\ns: \"\\u0007\"\n");
        round_trip("nested:\n- - a\n  - b\n- {x: [1, {y: z}]}\n");
        round_trip("script: |\n  #!/bin/sh\n\n  echo \"hi\"   \n    indented\n");
    }

    #[test]
    fn literal_blocks_are_used_for_multiline_strings() {
        let out = round_trip("cmd: \"a\\nb\\n\"\n");
        assert_eq!(out, "cmd: |\n  a\n  b\n");
    }

    #[test]
    fn odd_keys_round_trip() {
        round_trip("\"a: b\": 1\n'': 2\n? |\n  x\n: 3\n\"1\": one\n");
        // A collection as a key is valid YAML that Kubernetes refuses; so does the loader.
        assert!(parse_documents("t.yaml", "? [x, y]\n: 3\n", &Default::default()).is_err());
    }

    #[test]
    fn streams_are_separated() {
        let a = load("a: 1\n");
        let b = load("b: 2\n");
        assert_eq!(to_yaml_stream([&a, &b]), "a: 1\n---\nb: 2\n");
    }
}

/// Writes a tree as JSON (one line), resolving plain scalars as Kubernetes' YAML decoder
/// does: null, booleans and numbers become JSON values, everything else a string. For
/// callers that speak JSON, such as the webhook's JSONPatch.
pub fn to_json(node: &Node) -> String {
    let mut out = String::new();
    write_json(&mut out, node);
    out
}

fn write_json(out: &mut String, n: &Node) {
    match &n.value {
        Value::Scalar { text, plain } => {
            if *plain {
                match resolve_plain(text) {
                    Resolved::Null => return out.push_str("null"),
                    Resolved::Bool(b) => return out.push_str(if b { "true" } else { "false" }),
                    Resolved::Int(i) => return out.push_str(&i.to_string()),
                    Resolved::Uint(u) => return out.push_str(&u.to_string()),
                    Resolved::Float(f) if f.is_finite() => return out.push_str(&float_text(f)),
                    Resolved::Float(_) | Resolved::Str => {}
                }
            }
            json_string(out, text);
        }
        Value::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, it);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            // Later duplicates win, as in Kubernetes: write only the last of a key. (The
            // loader already keeps one entry per key; edited trees may not.) Linear: a
            // review may carry tens of thousands of keys.
            let mut last: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::with_capacity(entries.len());
            for (i, (k, _)) in entries.iter().enumerate() {
                last.insert(k.scalar_text().unwrap_or(""), i);
            }
            let mut first = true;
            for (i, (k, v)) in entries.iter().enumerate() {
                let key = k.scalar_text().unwrap_or("");
                if last.get(key) != Some(&i) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(out, key);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod json_tests {
    use super::*;
    use crate::load::parse_documents;

    #[test]
    fn json_resolves_plain_scalars() {
        let n = parse_documents(
            "t.yaml",
            "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: x\ng: [0x1F, 'no']\nh: {k: \"q\\\"\"}\nd: last\n",
            &Default::default(),
        )
        .unwrap()
        .remove(0)
        .root;
        assert_eq!(
            to_json(&n),
            // A duplicate key keeps its first place and its last value, as one JSON key.
            r#"{"a":1,"b":"1","c":true,"d":"last","e":1.5,"f":"x","g":[31,"no"],"h":{"k":"q\""}}"#
        );
    }
}
