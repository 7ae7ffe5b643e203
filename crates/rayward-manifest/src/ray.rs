//! Facts about Ray and KubeRay that rules, harden and the webhook share, defined once
//! (CONTEXT §3: the ports of Ray 2.60 and what KubeRay names them).

/// GCS (Redis protocol): cluster state, and code execution for whoever reaches it.
pub const GCS_PORT: i64 = 6379;
/// The dashboard and its Jobs API: runs code by design.
pub const DASHBOARD_PORT: i64 = 8265;
/// Ray Client (`ray://`): runs the caller's code.
pub const CLIENT_PORT: i64 = 10001;
/// The dashboard agent on every node, which accepts job submissions too.
pub const DASHBOARD_AGENT_PORT: i64 = 52365;
/// Prometheus metrics of the head.
pub const METRICS_PORT: i64 = 8080;
/// Ray Serve's HTTP proxy.
pub const SERVE_PORT: i64 = 8000;

/// The ports KubeRay gives the head service when the head's Ray container lists none,
/// by the names KubeRay gives them.
pub const DEFAULT_HEAD_PORTS: [(&str, i64); 5] = [
    ("client", CLIENT_PORT),
    ("gcs-server", GCS_PORT),
    ("dashboard", DASHBOARD_PORT),
    ("metrics", METRICS_PORT),
    ("serve", SERVE_PORT),
];

/// Port names KubeRay and its samples give Ray's control-plane ports.
pub const CONTROL_PORT_NAMES: &[(&str, i64)] = &[
    ("gcs-server", GCS_PORT),
    ("gcs", GCS_PORT),
    ("redis", GCS_PORT),
    ("dashboard", DASHBOARD_PORT),
    ("client", CLIENT_PORT),
    ("dashboard-agent", DASHBOARD_AGENT_PORT),
];

/// The labels KubeRay puts on every pod of a cluster (CONTEXT §3): the cluster's name,
/// `head` or `worker`, the worker group's name, and `yes`.
pub const CLUSTER_LABEL: &str = "ray.io/cluster";
pub const NODE_TYPE_LABEL: &str = "ray.io/node-type";
pub const GROUP_LABEL: &str = "ray.io/group";
pub const IS_RAY_NODE_LABEL: &str = "ray.io/is-ray-node";
/// On the pods of a cluster a RayJob or RayService created: the kind and the name of the
/// object it came from.
pub const ORIGINATED_FROM_CRD_LABEL: &str = "ray.io/originated-from-crd";
pub const ORIGINATED_FROM_NAME_LABEL: &str = "ray.io/originated-from-cr-name";
