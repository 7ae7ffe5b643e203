//! Kubernetes' rules for names and labels, checked where rayward takes them from a user
//! (harden's `--namespace`, `--dashboard-from key=value`) or writes them itself.

/// An RFC 1123 DNS label (a namespace's name): 1 to 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The characters and length of a label value (at most 63 of `[A-Za-z0-9._-]`).
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label key: an optional prefix (at most 253 characters) and `/`, then a non-empty name
/// with a label value's characters.
pub fn is_label_key(s: &str) -> bool {
    let name = match s.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return false;
            }
            name
        }
        None => s,
    };
    !name.is_empty() && is_label_value(name)
}

/// The namespace an object will be applied to, for matching objects with one another: an
/// object without `metadata.namespace` lands in kubectl's current namespace, which is
/// `default` unless the user says otherwise. So "not set" and `default` are the same
/// namespace here (the KubeRay samples leave it unset on the RayCluster and write
/// `namespace: default` in their RoleBinding subjects).
pub fn ns_key(ns: Option<&str>) -> &str {
    match ns {
        Some(n) if !n.is_empty() => n,
        _ => "default",
    }
}

/// Whether two objects' namespaces are the same namespace (see [`ns_key`]).
pub fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    ns_key(a) == ns_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_kubernetes_checks_them() {
        assert!(is_dns_label("ray-team-a"));
        assert!(!is_dns_label("-a") && !is_dns_label("A") && !is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_label_key("app.kubernetes.io/name") && !is_label_key("/x"));
        assert!(is_label_value("") && !is_label_value("a b"));
    }
}
