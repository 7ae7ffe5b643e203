//! The installation's namespace and its default-deny NetworkPolicy.

use crate::meta;
use serde_json::{json, Value};

/// The namespace: Pod Security Admission `restricted` enforced (every rayward pod
/// complies), and `rayward.io/mode: "off"`, which keeps every webhook entry away from it
/// (each entry's namespaceSelector), so the webhook can always be restarted.
pub fn namespace(name: &str) -> Value {
    let mut labels = meta::labels(None);
    labels["rayward.io/mode"] = json!("off");
    for mode in ["enforce", "warn", "audit"] {
        labels[format!("pod-security.kubernetes.io/{mode}")] = json!("restricted");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels},
    })
}

/// Nothing in or out of any pod of the namespace unless a component's own policy allows
/// it: a pod added to the namespace later starts closed.
pub fn default_deny(namespace: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta::namespaced("rayward-default-deny", namespace, None),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    })
}
