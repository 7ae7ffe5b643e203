//! Helpers for the pod-security (§5) and resources (§7) rules: how to name a container
//! or pod in a message, capability names, and hostPath prefix matching.

use rayward_manifest::pod::POD_LEVEL_FIELDS;
use rayward_manifest::{Container, ContainerKind, JsonPath, Node, PodRole, PodTemplate, Value};

/// Like [`Container::security`], but a field written as YAML `null` counts as unset, as it
/// does for Kubernetes: `runAsNonRoot: null` in the container falls back to the pod's.
pub fn effective_security<'a>(c: &Container<'a>, field: &str) -> Option<(&'a Node, JsonPath)> {
    if let Some(n) = c
        .node
        .path(&["securityContext", field])
        .filter(|n| !n.is_null())
    {
        return Some((n, c.path.keys(&["securityContext", field])));
    }
    if POD_LEVEL_FIELDS.contains(&field) {
        if let Some(n) = c
            .pod_spec
            .path(&["securityContext", field])
            .filter(|n| !n.is_null())
        {
            return Some((n, c.pod_spec_path.keys(&["securityContext", field])));
        }
    }
    None
}

/// Names a pod template as the subject of a message: "the head pod", "worker group
/// `gpu`", "the submitter pod", "the pod".
pub fn describe_pod(t: &PodTemplate<'_>) -> String {
    match &t.role {
        PodRole::Head => "the head pod".to_string(),
        PodRole::Worker { group } => format!("worker group `{group}`"),
        PodRole::Submitter => "the submitter pod".to_string(),
        PodRole::Workload => "the pod".to_string(),
    }
}

/// Names a container for a message: "container `ray-worker` of worker group `gpu`",
/// "init container `setup` of the head pod", "the autoscaler container of the head pod".
pub fn describe_container(t: Option<&PodTemplate<'_>>, c: &Container<'_>) -> String {
    let what = match c.kind {
        ContainerKind::Main => format!("container `{}`", c.name()),
        ContainerKind::Init => format!("init container `{}`", c.name()),
        ContainerKind::Autoscaler => "the autoscaler container".to_string(),
    };
    match t.map(|t| &t.role) {
        Some(PodRole::Head) => format!("{what} of the head pod"),
        Some(PodRole::Worker { group }) => format!("{what} of worker group `{group}`"),
        Some(PodRole::Submitter) => format!("{what} of the submitter pod"),
        Some(PodRole::Workload) | None => what,
    }
}

/// A scalar as written, for messages: `"true"` (quoted) for a string, `true` for a plain
/// scalar, `a list` or `a map` otherwise.
pub fn shown(n: &Node) -> String {
    match &n.value {
        Value::Scalar { text, plain: true } => text.to_string(),
        Value::Scalar { text, plain: false } => format!("\"{text}\""),
        Value::Seq(_) => "a list".to_string(),
        Value::Map(_) => "a map".to_string(),
    }
}

/// A capability name as the kernel spells it without its prefix: `cap_sys_admin`,
/// ` SYS_ADMIN ` and `CAP_SYS_ADMIN` all give `SYS_ADMIN`. The container runtimes accept
/// every one of these spellings.
pub fn normalize_cap(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    match up.strip_prefix("CAP_") {
        Some(rest) => rest.to_string(),
        None => up,
    }
}

/// The components of an absolute path, or `None` when the path is relative or climbs
/// with `..` (which could escape any prefix). `.` and empty components are dropped.
fn components(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let mut out = Vec::new();
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether `path` lies under one of `allowed`, matching whole path components: `/data`
/// allows `/data` and `/data/x`, not `/database`. Relative paths, paths with `..` and an
/// empty `allowed` list allow nothing.
pub fn host_path_allowed(path: &str, allowed: &[String]) -> bool {
    let Some(p) = components(path) else {
        return false;
    };
    allowed.iter().any(|a| {
        components(a).is_some_and(|a| a.len() <= p.len() && a.iter().zip(&p).all(|(x, y)| x == y))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefixes_match_whole_components() {
        let a = allowed(&["/data", "/mnt/models/"]);
        assert!(host_path_allowed("/data", &a));
        assert!(host_path_allowed("/data/", &a));
        assert!(host_path_allowed("/data/x/y", &a));
        assert!(host_path_allowed("//data//x", &a));
        assert!(host_path_allowed("/mnt/models/llama", &a));
        assert!(!host_path_allowed("/database", &a));
        assert!(!host_path_allowed("/mnt/model", &a));
        assert!(!host_path_allowed("/mnt", &a));
        assert!(!host_path_allowed("/", &a));
        assert!(!host_path_allowed("/var/run/docker.sock", &a));
    }

    #[test]
    fn escapes_and_relative_paths_are_outside() {
        let a = allowed(&["/data"]);
        assert!(!host_path_allowed("/data/../etc", &a));
        assert!(!host_path_allowed("data/x", &a));
        assert!(!host_path_allowed("", &a));
        // `.` is harmless.
        assert!(host_path_allowed("/data/./x", &a));
    }

    #[test]
    fn no_prefixes_allow_nothing_and_root_allows_everything() {
        assert!(!host_path_allowed("/data", &[]));
        assert!(host_path_allowed("/anything/at/all", &allowed(&["/"])));
        // A relative or climbing prefix in the config allows nothing.
        assert!(!host_path_allowed("/data", &allowed(&["data"])));
        assert!(!host_path_allowed("/etc", &allowed(&["/data/.."])));
    }

    #[test]
    fn capability_names_normalize() {
        assert_eq!(normalize_cap("SYS_ADMIN"), "SYS_ADMIN");
        assert_eq!(normalize_cap("cap_sys_admin"), "SYS_ADMIN");
        assert_eq!(normalize_cap(" CAP_NET_RAW "), "NET_RAW");
        assert_eq!(normalize_cap("all"), "ALL");
    }
}
