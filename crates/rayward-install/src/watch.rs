//! The live audit (`rayward watch -A --leader-elect`, docs/watch.md): the one component
//! that calls the API server, so the one with a token. A read-only ClusterRole (`get`,
//! `list`, `watch` on the kinds `audit --cluster` reads, never Secrets); apart from it, the
//! writes: Events on the offending objects (a ClusterRole `rayward-watch-write`) and its
//! Lease in its own namespace (a Role). Two replicas elect a leader; only it writes Events.

use crate::component::{Spec, CONFIG_DIR};
use crate::gateway::dns_egress;
use crate::{Component, Options};
use serde_json::{json, Value};

/// The port of /metrics, /healthz and /readyz (plain HTTP).
pub const PORT: u16 = 9464;

/// The resources of the kinds `rayward_live::KINDS` lists, by API group. A test holds
/// the two lists together.
pub const RESOURCES: &[(&str, &[&str])] = &[
    (
        "ray.io",
        &["rayclusters", "rayjobs", "rayservices", "raycronjobs"],
    ),
    (
        "",
        &[
            "namespaces",
            "pods",
            "services",
            "serviceaccounts",
            "resourcequotas",
            "limitranges",
        ],
    ),
    (
        "apps",
        &["deployments", "statefulsets", "daemonsets", "replicasets"],
    ),
    ("batch", &["jobs", "cronjobs"]),
    ("networking.k8s.io", &["ingresses", "networkpolicies"]),
    ("gateway.networking.k8s.io", &["httproutes"]),
    (
        "rbac.authorization.k8s.io",
        &[
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        ],
    ),
];

fn rules() -> Vec<Value> {
    RESOURCES
        .iter()
        .map(|(group, resources)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]})
        })
        .collect()
}

pub fn spec(_opts: &Options) -> Spec {
    Spec {
        component: Component::Watch,
        // Two replicas: both serve the metrics, the Lease holder alone writes Events.
        replicas: 2,
        args: vec![
            "watch".into(),
            "--all-namespaces".into(),
            "--leader-elect".into(),
            "--listen".into(),
            format!("0.0.0.0:{PORT}"),
            "--config".into(),
            format!("{CONFIG_DIR}/rayward.toml"),
        ],
        port_name: "metrics",
        container_port: PORT,
        service_port: PORT,
        scheme: "HTTP",
        readiness_path: "/readyz",
        liveness_path: "/healthz",
        cluster_rules: rules(),
        cluster_write_rules: vec![
            json!({"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "create", "patch"]}),
        ],
        roles_in: Vec::new(),
        namespace_rules: vec![
            json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}),
        ],
        config_key: "rayward.toml",
        config_text:
            "# Rules the live audit applies (the format of .rayward.toml, docs/rules.md).\n\
                      # Changes take effect when the pod restarts.\n[rules]\ndisable = []\n"
                .into(),
        secrets: Vec::new(),
        ingress: None,
        // The API server: its address is not known in advance (the `kubernetes` Service's
        // endpoints), so its ports to anywhere.
        egress: vec![dns_egress(), crate::gateway::api_server_egress()],
        requests: json!({"cpu": "100m", "memory": "128Mi"}),
        limits: json!({"cpu": "1", "memory": "512Mi"}),
        // A drain keeps one replica: the metrics stay, and the Lease passes to it.
        disruption: json!({"minAvailable": 1}),
        admin_port: None,
        init_containers: Vec::new(),
        extra_volumes: Vec::new(),
        extra_mounts: Vec::new(),
    }
}
