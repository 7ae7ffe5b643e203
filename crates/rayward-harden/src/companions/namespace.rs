//! The Namespace harden writes with `--namespace`: Pod Security `restricted` enforced,
//! audited and warned (guide §2, §5).

use super::object;
use rayward_manifest::{Node, Object};

/// The Namespace `ns`, labelled for Pod Security `restricted`.
pub(super) fn namespace(ns: &str) -> Object {
    let labels = ["enforce", "audit", "warn"]
        .into_iter()
        .flat_map(|mode| {
            [
                (
                    format!("pod-security.kubernetes.io/{mode}"),
                    Node::string("restricted"),
                ),
                (
                    format!("pod-security.kubernetes.io/{mode}-version"),
                    Node::string("latest"),
                ),
            ]
        })
        .collect::<Vec<_>>();
    let mut meta = Node::map_of([("name", Node::string(ns.to_string()))]);
    let mut l = vec![(
        "app.kubernetes.io/managed-by".to_string(),
        Node::string("rayward"),
    )];
    l.extend(labels);
    meta.set("labels", Node::map_of(l));
    object(Node::map_of([
        ("apiVersion", Node::string("v1")),
        ("kind", Node::string("Namespace")),
        ("metadata", meta),
    ]))
}
