//! Per-cluster roles under `[discovery]`: which clusters a role of the gateway's own users
//! (htpasswd, tokens, OIDC) reaches, as `namespace/name` patterns.
//!
//! Why patterns of whole labels only (`team-a/*`, `*/*`, `team-b/cluster-x`): a role is
//! checked on every request, so matching must be cheap and obviously right; partial globs
//! (`team-*`) make it easy to grant a namespace that is created later by someone else.
//! A pattern is validated while the TOML is parsed, so a bad one is an error at its
//! `file:line`.
//!
//! Default: under `[discovery]` a role that names no `clusters` reaches **no** cluster (a
//! gateway in front of fifty clusters should not hand a viewer all fifty by omission);
//! the server warns at start about each such role in use. In single-upstream mode
//! `clusters` cannot be set and every role holds on the one cluster, as before.

use crate::discovery::is_dns_label;
use serde::{Deserialize, Deserializer};

/// The most patterns one role may list: matching stays a short scan.
pub const MAX_PATTERNS: usize = 256;

/// One `namespace/name` pattern; each side is a DNS label or `*` (any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPattern {
    namespace: Option<String>,
    name: Option<String>,
}

impl ClusterPattern {
    /// Parses `namespace/name`, where either side may be `*`.
    pub fn parse(s: &str) -> Result<ClusterPattern, String> {
        let Some((ns, name)) = s.split_once('/') else {
            return Err(format!(
                "cluster pattern {s:?}: want namespace/name (`*` for any), e.g. \"team-a/*\""
            ));
        };
        let side = |part: &str, what: &str| -> Result<Option<String>, String> {
            if part == "*" {
                Ok(None)
            } else if is_dns_label(part) {
                Ok(Some(part.to_string()))
            } else {
                Err(format!(
                    "cluster pattern {s:?}: {what} {part:?} is neither `*` nor a lower-case DNS label"
                ))
            }
        };
        Ok(ClusterPattern {
            namespace: side(ns, "namespace")?,
            name: side(name, "name")?,
        })
    }

    /// Whether the cluster `namespace/name` is one this pattern names.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == namespace)
            && self.name.as_deref().is_none_or(|n| n == name)
    }
}

impl std::fmt::Display for ClusterPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.namespace.as_deref().unwrap_or("*"),
            self.name.as_deref().unwrap_or("*")
        )
    }
}

/// A role's `clusters`: at most [`MAX_PATTERNS`] valid patterns (a parse error otherwise,
/// which the TOML reader reports at the list's line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters(pub Vec<ClusterPattern>);

impl Clusters {
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.0.iter().any(|p| p.matches(namespace, name))
    }
}

impl<'de> Deserialize<'de> for Clusters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        if raw.len() > MAX_PATTERNS {
            return Err(serde::de::Error::custom(format!(
                "clusters: {} patterns, at most {MAX_PATTERNS}",
                raw.len()
            )));
        }
        raw.iter()
            .map(|s| ClusterPattern::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map(Clusters)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_labels() {
        let p = |s| ClusterPattern::parse(s).unwrap();
        assert!(p("team-a/*").matches("team-a", "x"));
        assert!(!p("team-a/*").matches("team-ab", "x"));
        assert!(p("*/x").matches("any", "x"));
        assert!(!p("*/x").matches("any", "xx"));
        assert!(p("*/*").matches("a", "b"));
        assert!(p("team-b/cluster-x").matches("team-b", "cluster-x"));
        assert!(!p("team-b/cluster-x").matches("team-b", "cluster-y"));
        assert_eq!(p("team-a/*").to_string(), "team-a/*");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (bad, want) in [
            ("team-a", "want namespace/name"),
            ("team-*/x", "neither `*`"),
            ("Team/x", "neither `*`"),
            ("a/b/c", "neither `*`"),
            ("/x", "neither `*`"),
            ("a/", "neither `*`"),
        ] {
            let e = ClusterPattern::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
