//! The objects as one YAML stream for `kubectl apply -f -`, written by the emitter harden
//! uses (`rayward_manifest::emit`), so the output reads like any other rayward output and
//! loads back to the same JSON.

use rayward_manifest::edit::plain_safe;
use rayward_manifest::yaml11::{resolve_plain, Resolved};
use rayward_manifest::{Node, Pos, Value as NodeValue};
use serde_json::Value;

/// Keys written before the others (which keep their sorted order).
const FIRST: &[&str] = &["apiVersion", "kind", "metadata", "name", "namespace"];

/// A JSON value as a tree the emitter writes: strings that would read back as anything
/// but the same string (`"off"`, `"1"`, PEM blocks) are quoted or written as blocks.
pub fn to_node(v: &Value) -> Node {
    let value = match v {
        Value::Null => scalar("null", true),
        Value::Bool(b) => scalar(if *b { "true" } else { "false" }, true),
        Value::Number(n) => scalar(&n.to_string(), true),
        Value::String(s) => scalar(s, plain_safe(s) && resolve_plain(s) == Resolved::Str),
        Value::Array(items) => NodeValue::Seq(items.iter().map(to_node).collect()),
        Value::Object(m) => {
            // serde_json keeps keys sorted; a reader expects apiVersion, kind and
            // metadata (name, namespace) first, as kubectl prints them.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by_key(|(k, _)| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()));
            NodeValue::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (to_node(&Value::String(k.clone())), to_node(v)))
                    .collect(),
            )
        }
    };
    Node {
        value,
        pos: Pos::GENERATED,
    }
}

fn scalar(text: &str, plain: bool) -> NodeValue {
    NodeValue::Scalar {
        text: text.into(),
        plain,
    }
}

/// Every object as a document, each after `---` and a comment naming it.
pub fn stream(objects: &[Value], header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    for o in objects {
        out.push_str("---\n");
        out.push_str(&rayward_manifest::emit::to_yaml(&to_node(o)));
    }
    out
}
