//! The hardened pod every component runs in: Pod Security Standards `restricted` and then
//! some (read-only root filesystem, no service links, no token unless the component calls
//! the API server).

use serde_json::{json, Value};

/// The user and group of every container (not root; the image's own user is 1000, the
/// pod's choice wins and any image runs as it).
pub const USER: u32 = 65532;

/// The pod-level security context: non-root, RuntimeDefault seccomp, secret files
/// group-readable through `fsGroup` (mounted with mode 0440).
pub fn pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": USER,
        "runAsGroup": USER,
        "fsGroup": USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The container-level security context: no privilege, no escalation, no capability,
/// nothing written to the image's filesystem.
pub fn container_security_context() -> Value {
    json!({
        "privileged": false,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": USER,
        "runAsGroup": USER,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// A Secret mounted read-only, group-readable for [`USER`] only.
pub fn secret_volume(volume: &str, secret: &str) -> Value {
    json!({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440}})
}

/// A ConfigMap mounted read-only.
pub fn config_map_volume(volume: &str, config_map: &str) -> Value {
    json!({"name": volume, "configMap": {"name": config_map, "defaultMode": 0o444}})
}
