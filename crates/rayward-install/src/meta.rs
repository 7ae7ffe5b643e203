//! Names and labels every object of an installation carries, so `rayward check` and
//! `--uninstall` find them and NetworkPolicies, PDBs and Services select the right pods.

use crate::Component;
use serde_json::{json, Value};

/// `app.kubernetes.io/part-of: rayward` marks every object of an installation.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const PART_OF: &str = "rayward";
/// Which component an object belongs to.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The pod selector of a component: `app.kubernetes.io/name: rayward-<component>`.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// Labels of every object of `component` (none: shared objects).
pub fn labels(component: Option<Component>) -> Value {
    let mut l = json!({
        PART_OF_LABEL: PART_OF,
        "app.kubernetes.io/managed-by": "rayward-install",
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(c) = component {
        l[NAME_LABEL] = json!(c.object_name());
        l[COMPONENT_LABEL] = json!(c.as_str());
    }
    l
}

/// The labels a component's pods are selected by (stable across versions: a selector of
/// a Deployment cannot change).
pub fn selector(component: Component) -> Value {
    json!({ NAME_LABEL: component.object_name() })
}

/// `metadata` of a namespaced object.
pub fn namespaced(name: &str, namespace: &str, component: Option<Component>) -> Value {
    json!({ "name": name, "namespace": namespace, "labels": labels(component) })
}

/// `metadata` of a cluster-scoped object.
pub fn cluster(name: &str, component: Option<Component>) -> Value {
    json!({ "name": name, "labels": labels(component) })
}
