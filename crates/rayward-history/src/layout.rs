//! The store layout, version 1 (docs/history.md#layout).
//!
//! ```text
//! <root>/rayward-history.json                       {"layout": 1}
//! <root>/v1/<namespace>/<kind>/<name>/<session>/
//!     index/<node>.json                              one node's index (written last)
//!     logs/<node>/<file id>/<offset, 16 hex>         a part of one log file
//!     events/<node>/<sequence, 16 hex>.json          one batch POSTed by Ray, as received
//!     snapshots/<node>/<sequence, 16 hex>/<endpoint>.json   one dashboard API answer
//! ```
//!
//! Every path segment is checked here, once: the cluster's coordinates are Kubernetes
//! names, the session is Ray's `session_<date>_<time>_<pid>` and file ids are made by the
//! collector, so no segment can be `..`, empty or hold a separator.

use std::fmt;

/// The layout this build writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
/// The object at the root that names the layout version.
pub const LAYOUT_OBJECT: &str = "rayward-history.json";
/// The prefix of every object of layout version 1.
pub const V1: &str = "v1";

/// A segment that may not be used in the store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} {value:?} is not valid: {why}")]
pub struct BadName {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// The KubeRay kinds a Ray cluster comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    RayCluster,
    RayJob,
    RayService,
}

impl Kind {
    /// The path segment (lower case, as `kubectl get` takes kinds).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::RayCluster => "raycluster",
            Kind::RayJob => "rayjob",
            Kind::RayService => "rayservice",
        }
    }

    /// Reads a kind in any case (`RayJob`, `rayjob`).
    pub fn parse(s: &str) -> Result<Kind, BadName> {
        match s.to_ascii_lowercase().as_str() {
            "raycluster" => Ok(Kind::RayCluster),
            "rayjob" => Ok(Kind::RayJob),
            "rayservice" => Ok(Kind::RayService),
            _ => Err(BadName {
                what: "kind",
                value: s.to_string(),
                why: "expected RayCluster, RayJob or RayService",
            }),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())
    }
}

/// Checks a Kubernetes object name used as a segment: a DNS subdomain (at most 253 of
/// lowercase letters, digits, `-` and `.`), never `.` or `..`.
fn check_k8s_name(what: &'static str, s: &str) -> Result<(), BadName> {
    let bad = |why| {
        Err(BadName {
            what,
            value: s.to_string(),
            why,
        })
    };
    if s.is_empty() || s.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("only lowercase letters, digits, '-' and '.' are allowed");
    }
    if s.starts_with(['.', '-']) || s.ends_with(['.', '-']) || s.contains("..") {
        return bad("must start and end with a letter or digit");
    }
    Ok(())
}

/// Checks a namespace (a DNS label).
pub fn check_namespace(s: &str) -> Result<(), BadName> {
    if !rayward_manifest::names::is_dns_label(s) {
        return Err(BadName {
            what: "namespace",
            value: s.to_string(),
            why: "must be a DNS label: 1 to 63 lowercase letters, digits and '-'",
        });
    }
    Ok(())
}

/// Checks a Ray session name: `session_` then letters, digits, `_` and `-` (Ray names them
/// `session_2026-12-05_16-57-24_804614_29372`), at most 128 characters.
pub fn check_session(s: &str) -> Result<(), BadName> {
    let ok = s.len() <= 128
        && s.len() > "session_".len()
        && s.starts_with("session_")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(BadName {
            what: "session",
            value: s.to_string(),
            why: "expected Ray's session_<date>_<time>_<pid>",
        });
    }
    Ok(())
}

/// Checks a node name (the pod's name): a Kubernetes name.
pub fn check_node(s: &str) -> Result<(), BadName> {
    check_k8s_name("node", s)
}

/// One Ray cluster: where its sessions live.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterRef {
    pub namespace: String,
    pub kind: Kind,
    pub name: String,
}

impl ClusterRef {
    /// A checked cluster reference.
    pub fn new(namespace: &str, kind: Kind, name: &str) -> Result<ClusterRef, BadName> {
        check_namespace(namespace)?;
        check_k8s_name("name", name)?;
        Ok(ClusterRef {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
        })
    }

    /// `v1/<namespace>/<kind>/<name>`.
    pub fn prefix(&self) -> String {
        format!("{V1}/{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// One session of one cluster, as seen by one node: the keys it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSession {
    pub cluster: ClusterRef,
    pub session: String,
    pub node: String,
}

impl NodeSession {
    /// A checked session of `cluster` on `node`.
    pub fn new(cluster: ClusterRef, session: &str, node: &str) -> Result<NodeSession, BadName> {
        check_session(session)?;
        check_node(node)?;
        Ok(NodeSession {
            cluster,
            session: session.to_string(),
            node: node.to_string(),
        })
    }

    /// `v1/<namespace>/<kind>/<name>/<session>`.
    pub fn session_prefix(&self) -> String {
        format!("{}/{}", self.cluster.prefix(), self.session)
    }

    /// This node's index.
    pub fn index_key(&self) -> String {
        format!("{}/index/{}.json", self.session_prefix(), self.node)
    }

    /// The part of log file `file_id` that starts at `offset`.
    pub fn log_part_key(&self, file_id: &str, offset: u64) -> String {
        format!(
            "{}/logs/{}/{file_id}/{offset:016x}",
            self.session_prefix(),
            self.node
        )
    }

    /// Event batch number `seq`.
    pub fn events_key(&self, seq: u64) -> String {
        format!(
            "{}/events/{}/{seq:016x}.json",
            self.session_prefix(),
            self.node
        )
    }

    /// Snapshot number `seq` of `endpoint` (an id from [`crate::snapshot::ENDPOINTS`]).
    pub fn snapshot_key(&self, seq: u64, endpoint: &str) -> String {
        format!(
            "{}/snapshots/{}/{seq:016x}/{endpoint}.json",
            self.session_prefix(),
            self.node
        )
    }
}

/// The body of [`LAYOUT_OBJECT`].
pub fn layout_object() -> String {
    format!("{{\"layout\":{LAYOUT_VERSION}}}\n")
}

/// The layout version named by a [`LAYOUT_OBJECT`] body.
pub fn parse_layout_object(bytes: &[u8]) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct L {
        layout: u32,
    }
    serde_json::from_slice::<L>(bytes).ok().map(|l| l.layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> NodeSession {
        let c = ClusterRef::new("team-a", Kind::RayJob, "train-1").unwrap();
        NodeSession::new(
            c,
            "session_2026-12-05_16-57-24_804614_29372",
            "train-1-head-x7",
        )
        .unwrap()
    }

    #[test]
    fn keys() {
        let s = ns();
        assert_eq!(
            s.index_key(),
            "v1/team-a/rayjob/train-1/session_2026-12-05_16-57-24_804614_29372/index/train-1-head-x7.json"
        );
        assert!(s
            .log_part_key("f1", 255)
            .ends_with("/logs/train-1-head-x7/f1/00000000000000ff"));
        assert!(s
            .events_key(3)
            .ends_with("/events/train-1-head-x7/0000000000000003.json"));
        assert!(s
            .snapshot_key(1, "jobs")
            .ends_with("/snapshots/train-1-head-x7/0000000000000001/jobs.json"));
    }

    #[test]
    fn hostile_segments_refused() {
        for n in ["", "..", ".", "a/b", "A", "a..b", "-a", "a%2fb", "a\\b"] {
            assert!(ClusterRef::new("ns", Kind::RayCluster, n).is_err(), "{n:?}");
            assert!(check_node(n).is_err(), "{n:?}");
        }
        for s in [
            "session_",
            "session_../x",
            "sess",
            "session_a/b",
            "session_a b",
        ] {
            assert!(check_session(s).is_err(), "{s:?}");
        }
        assert!(check_namespace("Team").is_err());
        assert!(check_namespace("a.b").is_err());
        assert_eq!(Kind::parse("RayService"), Ok(Kind::RayService));
        assert!(Kind::parse("Pod").is_err());
    }

    #[test]
    fn layout_object_round_trip() {
        assert_eq!(parse_layout_object(layout_object().as_bytes()), Some(1));
        assert_eq!(parse_layout_object(b"{\"layout\":7}"), Some(7));
        assert_eq!(parse_layout_object(b"junk"), None);
    }
}
