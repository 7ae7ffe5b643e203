//! The NetworkPolicies of a Ray object's pods on KubeRay's real labels and ports (guide §1.4).

use super::{
    cluster_labels, label_value, match_labels, metadata, needs_owner_label, object, GATEWAY_LABEL,
    OPERATOR_LABEL,
};
use crate::options::{Options, Source};
use rayward_manifest::names::ns_key;
use rayward_manifest::ray;
use rayward_manifest::{Kind, Node, Object, PodRole, Workload};

/// Ray's ports on the head that clients use: dashboard + Jobs API, Ray Client.
const CLIENT_PORTS: [i64; 2] = [ray::DASHBOARD_PORT, ray::CLIENT_PORT];
const DASHBOARD: i64 = ray::DASHBOARD_PORT;
const SERVE: i64 = ray::SERVE_PORT;

fn ports(list: &[i64]) -> Node {
    Node::new_seq(
        list.iter()
            .map(|p| Node::map_of([("protocol", Node::string("TCP")), ("port", Node::int(*p))]))
            .collect(),
    )
}

fn peer_pods(labels: &[(&str, String)]) -> Node {
    Node::map_of([("podSelector", match_labels(labels))])
}

fn peers_of(sources: &[Source]) -> Vec<Node> {
    sources
        .iter()
        .map(|s| match s {
            Source::Cidr(c) => {
                Node::map_of([("ipBlock", Node::map_of([("cidr", Node::string(c.clone()))]))])
            }
            Source::Namespaces(labels) => {
                let l: Vec<(&str, String)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                Node::map_of([("namespaceSelector", match_labels(&l))])
            }
        })
        .collect()
}

fn rule(from_or_to: &str, peers: Vec<Node>, port_list: Option<&[i64]>) -> Node {
    let mut r = Node::map_of([(from_or_to, Node::new_seq(peers))]);
    if let Some(p) = port_list {
        r.set("ports", ports(p));
    }
    r
}

/// Head and worker policies: ingress and egress both denied but for what Ray needs.
pub(super) fn network_policies(obj: &Object, opts: &Options, head_needs_api: bool) -> Vec<Object> {
    let ns = obj.namespace.as_deref();
    let own = cluster_labels(obj);
    let mut sources = peers_of(&opts.dashboard_from);
    if opts.gateway {
        sources.push(peer_pods(&[(GATEWAY_LABEL.0, GATEWAY_LABEL.1.to_string())]));
    }
    let serve = obj.kind == Kind::RayService;
    let mut out = Vec::new();
    let w = Workload::templates_of(obj);
    let has_workers = w
        .templates
        .iter()
        .any(|t| matches!(t.role, PodRole::Worker { .. }));
    for node_type in ["head", "worker"] {
        if node_type == "worker" && !has_workers {
            // A policy that selects no pod protects nothing (and RW141 says so).
            continue;
        }
        let mut selector = own.clone();
        selector.push((ray::NODE_TYPE_LABEL, node_type.to_string()));
        let mut ingress = vec![rule("from", vec![peer_pods(&own)], None)];
        if node_type == "head" {
            if !sources.is_empty() {
                ingress.push(rule("from", sources.clone(), Some(&CLIENT_PORTS)));
            }
            // The operator polls RayJob status and Serve applications on the dashboard.
            if obj.kind != Kind::RayCluster {
                let operator = Node::map_of([
                    ("namespaceSelector", Node::new_map()),
                    (
                        "podSelector",
                        match_labels(&[(OPERATOR_LABEL.0, OPERATOR_LABEL.1.to_string())]),
                    ),
                ]);
                ingress.push(rule("from", vec![operator], Some(&[DASHBOARD])));
            }
            // The submitter Job's pods (K8sJobMode) send the job to the dashboard.
            match obj.kind {
                Kind::RayJob if !needs_owner_label(obj) => {
                    let submitter = peer_pods(&[("job-name", label_value(&obj.name))]);
                    ingress.push(rule("from", vec![submitter], Some(&[DASHBOARD])));
                }
                // Generated job names: any Job's pods of the namespace may submit (the
                // Jobs API still asks for the token).
                Kind::RayJob | Kind::RayCronJob => {
                    let submitter = Node::map_of([(
                        "podSelector",
                        Node::map_of([(
                            "matchExpressions",
                            Node::new_seq(vec![Node::map_of([
                                ("key", Node::string("job-name")),
                                ("operator", Node::string("Exists")),
                            ])]),
                        )]),
                    )]);
                    ingress.push(rule("from", vec![submitter], Some(&[DASHBOARD])));
                }
                _ => {}
            }
        }
        if serve && !sources.is_empty() {
            ingress.push(rule("from", sources.clone(), Some(&[SERVE])));
        }
        let any = || {
            Node::map_of([(
                "ipBlock",
                Node::map_of([("cidr", Node::string("0.0.0.0/0"))]),
            )])
        };
        let dns = Node::map_of([(
            "ports",
            Node::new_seq(vec![
                Node::map_of([("protocol", Node::string("UDP")), ("port", Node::int(53))]),
                Node::map_of([("protocol", Node::string("TCP")), ("port", Node::int(53))]),
            ]),
        )]);
        let mut egress = vec![rule("to", vec![peer_pods(&own)], None), dns];
        if !opts.egress_to.is_empty() {
            let blocks = opts
                .egress_to
                .iter()
                .map(|c| {
                    Node::map_of([("ipBlock", Node::map_of([("cidr", Node::string(c.clone()))]))])
                })
                .collect();
            egress.push(rule("to", blocks, None));
        }
        if let Some(h) = &opts.history {
            // The history collector ships to the object store (HTTPS; its address is a
            // name the policy cannot hold).
            egress.push(rule(
                "to",
                vec![any()],
                Some(crate::history::egress_ports(h)),
            ));
        }
        if node_type == "head" {
            // GCS fault tolerance: the head keeps its state in an external Redis.
            for port in redis_ports(&w) {
                let anywhere = vec![
                    Node::map_of([("namespaceSelector", Node::new_map())]),
                    any(),
                ];
                egress.push(rule("to", anywhere, Some(&[port])));
            }
        }
        if node_type == "head" && head_needs_api {
            // The Kubernetes API (its Service port and the usual endpoint port).
            egress.push(rule("to", vec![any()], Some(&[443, 6443])));
        }
        let name = format!("{}-ray-{node_type}", obj.name);
        let spec = Node::map_of([
            ("podSelector", match_labels(&selector)),
            (
                "policyTypes",
                Node::new_seq(vec![Node::string("Ingress"), Node::string("Egress")]),
            ),
            ("ingress", Node::new_seq(ingress)),
            ("egress", Node::new_seq(egress)),
        ]);
        out.push(object(Node::map_of([
            ("apiVersion", Node::string("networking.k8s.io/v1")),
            ("kind", Node::string("NetworkPolicy")),
            ("metadata", metadata(&name, ns, Vec::new())),
            ("spec", spec),
        ])));
    }
    out
}

/// Indices of the objects whose Ray pods an ingress NetworkPolicy among `objects`
/// already selects.
pub fn covered_by_input_policies(objects: &[Object]) -> std::collections::HashSet<usize> {
    let inv = rayward_manifest::Inventory::new(objects);
    let mut out = std::collections::HashSet::new();
    for (_, np) in inv.of_kind(Kind::NetworkPolicy) {
        if !rayward_manifest::inventory::is_ingress_policy(np) {
            continue;
        }
        let sel = rayward_manifest::inventory::policy_selector(np);
        let ns = np.namespace.as_deref();
        for p in inv.ray_pods() {
            if ns_key(inv.pod_namespace(p)) == ns_key(ns) && sel.matches(&p.labels) {
                out.insert(p.obj);
            }
        }
    }
    out
}

/// The ports of the external Redis a cluster's head uses for GCS fault tolerance
/// (`gcsFaultToleranceOptions.redisAddress`, or `RAY_REDIS_ADDRESS` on the head), none
/// when it has none or Redis runs in the pod (`127.0.0.1`, `localhost`).
fn redis_ports(w: &Workload<'_>) -> Vec<i64> {
    let mut addrs: Vec<&str> = Vec::new();
    for c in &w.clusters {
        if let Some(a) = c
            .node
            .path(&["gcsFaultToleranceOptions", "redisAddress"])
            .and_then(Node::as_str)
        {
            addrs.push(a);
        }
    }
    for t in w.templates.iter().filter(|t| t.role == PodRole::Head) {
        for c in t.containers() {
            if let Some(a) = c.env_value("RAY_REDIS_ADDRESS") {
                addrs.push(a);
            }
        }
    }
    let mut ports = Vec::new();
    for a in addrs {
        let hostport = a
            .trim()
            .trim_start_matches("rediss://")
            .trim_start_matches("redis://")
            .rsplit('@')
            .next()
            .unwrap_or("");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.trim_end_matches('/').parse().unwrap_or(ray::GCS_PORT)),
            None => (hostport, ray::GCS_PORT),
        };
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") || host.is_empty() {
            continue;
        }
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}
