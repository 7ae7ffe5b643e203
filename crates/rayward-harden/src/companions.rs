//! The objects a Ray object needs beside it: NetworkPolicies on KubeRay's real labels and
//! ports (§1.4), the dedicated ServiceAccount and, for the in-tree autoscaler, a Role with
//! exactly what KubeRay's autoscaler uses (§4), the namespace's ResourceQuota sized from
//! the clusters' maximum replicas (§3), and the Namespace with Pod Security labels (§2, §5).

use crate::options::{Options, Source};
use crate::quantity;
use rayward_manifest::{Kind, Node, Object, PodRole, Workload};
use rayward_rules::util::rbac::head_api_need;
use rayward_rules::util::tenancy::{is_gpu_resource, ns_key};
use rayward_rules::Change;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The file name companions report in findings and are written to under `-o`.
pub const COMPANIONS_FILE: &str = "companions.yaml";

/// The label harden puts on the pod templates of a RayCronJob, and of an object named by
/// `generateName`: their clusters get generated names, so no KubeRay label names them
/// statically.
pub const OWNER_LABEL: &str = "rayward.io/ray-object";

/// Labels of the gateway's pods (`rayward gateway`'s manifests set them).
pub const GATEWAY_LABEL: (&str, &str) = ("app.kubernetes.io/name", "rayward-gateway");

/// Labels of the KubeRay operator's pods (its Helm chart sets them).
pub const OPERATOR_LABEL: (&str, &str) = ("app.kubernetes.io/name", "kuberay-operator");

/// Ray's ports on the head that clients use: dashboard + Jobs API, Ray Client.
const CLIENT_PORTS: [i64; 2] = [8265, 10001];
const DASHBOARD: i64 = 8265;
const SERVE: i64 = 8000;

/// The dedicated ServiceAccount of a Ray object's pods.
pub fn service_account_name(obj: &Object) -> String {
    rayward_rules::util::rbac::dedicated_service_account(&obj.name)
}

/// A name as a label value: at most 63 characters, ending in a letter or digit (KubeRay
/// shortens long names the same way for its labels).
pub fn label_value(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether the object's clusters carry no static KubeRay label to select them by.
fn needs_owner_label(obj: &Object) -> bool {
    obj.kind == Kind::RayCronJob || obj.root.path(&["metadata", "name"]).is_none()
}

/// The labels every pod of this object's cluster(s) carries: KubeRay's own, or
/// [`OWNER_LABEL`] where KubeRay's hold generated names.
pub fn cluster_labels(obj: &Object) -> Vec<(&'static str, String)> {
    let name = label_value(&obj.name);
    if needs_owner_label(obj) {
        return vec![(OWNER_LABEL, name)];
    }
    match obj.kind {
        Kind::RayCluster => vec![("ray.io/cluster", name)],
        Kind::RayJob => vec![
            ("ray.io/originated-from-crd", "RayJob".into()),
            ("ray.io/originated-from-cr-name", name),
        ],
        _ => vec![
            ("ray.io/originated-from-crd", "RayService".into()),
            ("ray.io/originated-from-cr-name", name),
        ],
    }
}

/// Edits the object needs for its companions to select it: the pod templates of a
/// RayCronJob or a `generateName` object get [`OWNER_LABEL`].
pub fn prepare(obj: &mut Object) -> Vec<Change> {
    let mut changes = Vec::new();
    if !needs_owner_label(obj) {
        return changes;
    }
    let name = label_value(&obj.name);
    let paths: Vec<_> = {
        let w = Workload::templates_of(obj);
        w.templates
            .iter()
            .filter(|t| t.role.is_ray_node())
            .map(|t| t.path.clone())
            .collect()
    };
    for p in paths {
        let Some(t) = obj.root.at_path_mut(&p) else {
            continue;
        };
        let Some(labels) = t.map_entry("metadata").and_then(|m| m.map_entry("labels")) else {
            continue;
        };
        if labels.set(OWNER_LABEL, Node::string(name.clone())) {
            changes.push(Change {
                rule_id: rayward_rules::RayPodsWithoutNetworkPolicy::META.id,
                json_path: p.keys(&["metadata", "labels", OWNER_LABEL]).to_string(),
                description: "label the pods so the NetworkPolicies can select them".into(),
            });
        }
    }
    changes
}

/// Kinds without a namespace that rayward has no [`Kind`] for (those it has say so
/// through [`Kind::is_namespaced`]).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ClusterQueue",
    "ResourceFlavor",
    "Queue",
    "ClusterIssuer",
];

/// Sets a non-Ray object's namespace to `--namespace`, when given.
pub fn set_namespace(obj: &mut Object, opts: &Options) {
    let Some(ns) = &opts.fix.namespace else {
        return;
    };
    if !obj.kind.is_namespaced() || CLUSTER_SCOPED.contains(&obj.kind_name.as_str()) {
        return;
    }
    if let Some(meta) = obj.root.map_entry("metadata") {
        meta.set("namespace", Node::string(ns.clone()));
        obj.namespace = Some(ns.clone());
    }
}

fn object(root: Node) -> Object {
    let file: Arc<str> = Arc::from(COMPANIONS_FILE);
    Object::from_document(&file, 0, root)
        .pop()
        .expect("companions have apiVersion and kind")
}

fn metadata(name: &str, namespace: Option<&str>, labels: Vec<(&str, Node)>) -> Node {
    let mut m = Node::map_of([("name", Node::string(name))]);
    if let Some(ns) = namespace {
        m.set("namespace", Node::string(ns));
    }
    let mut all = vec![("app.kubernetes.io/managed-by", Node::string("rayward"))];
    all.extend(labels);
    m.set("labels", Node::map_of(all));
    m
}

fn match_labels(labels: &[(&str, String)]) -> Node {
    Node::map_of([(
        "matchLabels",
        Node::map_of(labels.iter().map(|(k, v)| (*k, Node::string(v.clone())))),
    )])
}

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

/// Companions of one hardened Ray object: ServiceAccount (+ Role and RoleBinding for the
/// autoscaler) and NetworkPolicies.
pub fn for_object(obj: &Object, opts: &Options) -> Vec<Object> {
    for_object_with(obj, opts, true)
}

/// [`for_object`], with the NetworkPolicies left out when `policies` is false (the inputs
/// already hold policies that select the object's pods: the user has chosen them).
pub fn for_object_with(obj: &Object, opts: &Options, policies: bool) -> Vec<Object> {
    let mut out = Vec::new();
    let ns = obj.namespace.as_deref();
    let w = Workload::templates_of(obj);
    // A RayJob on an existing cluster (`clusterSelector`) has no Ray pods of its own to
    // guard, but its submitter may still run as the dedicated account.
    let ray_pods = w.templates.iter().any(|t| t.role.is_ray_node());
    let sa = service_account_name(obj);
    let uses_sa = w
        .templates
        .iter()
        .any(|t| t.field("serviceAccountName").and_then(Node::as_str) == Some(sa.as_str()));
    let needs_api = w
        .templates
        .iter()
        .any(|t| t.role == PodRole::Head && head_api_need(&w, t).is_some());
    let autoscaler = w.clusters.iter().any(|c| c.autoscaler_enabled());
    if uses_sa {
        let mut root = Node::map_of([
            ("apiVersion", Node::string("v1")),
            ("kind", Node::string("ServiceAccount")),
            ("metadata", metadata(&sa, ns, Vec::new())),
        ]);
        root.set("automountServiceAccountToken", Node::boolean(false));
        out.push(object(root));
        if autoscaler {
            out.extend(autoscaler_rbac(obj, &sa, ns));
        }
    }
    if policies && ray_pods {
        out.extend(network_policies(obj, opts, needs_api));
    }
    out
}

/// The Role KubeRay's in-tree autoscaler needs, and nothing more: it reads and patches
/// the cluster's pods and patches the RayCluster (`workersToDelete`, replicas): the same
/// two rules as the Role KubeRay's operator builds for it (`BuildRole` in
/// `ray-operator/controllers/ray/common/rbac.go`: pods get/list/watch/patch, rayclusters
/// get/patch), checked against that source.
fn autoscaler_rbac(obj: &Object, sa: &str, ns: Option<&str>) -> Vec<Object> {
    let name = format!("{}-ray-autoscaler", obj.name);
    let policy = |groups: &[&str], resources: &[&str], verbs: &[&str]| {
        let list = |xs: &[&str]| Node::new_seq(xs.iter().map(|s| Node::string(*s)).collect());
        Node::map_of([
            ("apiGroups", list(groups)),
            ("resources", list(resources)),
            ("verbs", list(verbs)),
        ])
    };
    let role = Node::map_of([
        ("apiVersion", Node::string("rbac.authorization.k8s.io/v1")),
        ("kind", Node::string("Role")),
        ("metadata", metadata(&name, ns, Vec::new())),
        (
            "rules",
            Node::new_seq(vec![
                policy(&[""], &["pods"], &["get", "list", "watch", "patch"]),
                policy(&["ray.io"], &["rayclusters"], &["get", "patch"]),
            ]),
        ),
    ]);
    let mut subject = Node::map_of([
        ("kind", Node::string("ServiceAccount")),
        ("name", Node::string(sa)),
    ]);
    if let Some(ns) = ns {
        subject.set("namespace", Node::string(ns));
    }
    let binding = Node::map_of([
        ("apiVersion", Node::string("rbac.authorization.k8s.io/v1")),
        ("kind", Node::string("RoleBinding")),
        ("metadata", metadata(&name, ns, Vec::new())),
        (
            "roleRef",
            Node::map_of([
                ("apiGroup", Node::string("rbac.authorization.k8s.io")),
                ("kind", Node::string("Role")),
                ("name", Node::string(name.clone())),
            ]),
        ),
        ("subjects", Node::new_seq(vec![subject])),
    ]);
    vec![object(role), object(binding)]
}

/// Head and worker policies: ingress and egress both denied but for what Ray needs.
fn network_policies(obj: &Object, opts: &Options, head_needs_api: bool) -> Vec<Object> {
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
        selector.push(("ray.io/node-type", node_type.to_string()));
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
        if !rayward_rules::util::network::is_ingress_policy(np) {
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
            Some((h, p)) => (h, p.trim_end_matches('/').parse().unwrap_or(6379)),
            None => (hostport, 6379),
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

/// Per-namespace companions: the Namespace (with `--namespace`), and a ResourceQuota for
/// every namespace that holds Ray objects and no quota.
pub fn for_namespaces(objects: &[Object], opts: &Options) -> Vec<Object> {
    let mut out = Vec::new();
    if let Some(ns) = &opts.fix.namespace {
        let labels = ["enforce", "audit", "warn"]
            .into_iter()
            .flat_map(|mode| {
                [
                    (
                        format!("pod-security.kubernetes.io/{mode}"),
                        Node::string("restricted"),
                    ),
                    (
                        format!("pod-security.kubernetes.io/{mode}-version"),
                        Node::string("latest"),
                    ),
                ]
            })
            .collect::<Vec<_>>();
        let mut meta = Node::map_of([("name", Node::string(ns.clone()))]);
        let mut l = vec![(
            "app.kubernetes.io/managed-by".to_string(),
            Node::string("rayward"),
        )];
        l.extend(labels);
        meta.set("labels", Node::map_of(l));
        out.push(object(Node::map_of([
            ("apiVersion", Node::string("v1")),
            ("kind", Node::string("Namespace")),
            ("metadata", meta),
        ])));
    }
    let mut totals: BTreeMap<String, (Option<String>, Totals)> = BTreeMap::new();
    for o in objects.iter().filter(|o| o.kind.is_ray()) {
        let key = ns_key(o.namespace.as_deref()).to_string();
        let e = totals
            .entry(key)
            .or_insert_with(|| (o.namespace.clone(), Totals::default()));
        e.1.add_object(o);
    }
    for (key, (ns, t)) in totals {
        let has_quota = objects
            .iter()
            .any(|o| o.kind == Kind::ResourceQuota && ns_key(o.namespace.as_deref()) == key);
        let all_suppress = objects
            .iter()
            .filter(|o| o.kind.is_ray() && ns_key(o.namespace.as_deref()) == key)
            .all(|o| crate::suppressed(o, rayward_rules::NamespaceWithoutQuota::META.id));
        if has_quota || t.is_empty() || all_suppress {
            continue;
        }
        out.push(object(Node::map_of([
            ("apiVersion", Node::string("v1")),
            ("kind", Node::string("ResourceQuota")),
            ("metadata", metadata("ray-quota", ns.as_deref(), Vec::new())),
            ("spec", Node::map_of([("hard", t.hard())])),
        ])));
    }
    out
}

/// Requests and limits summed over every pod the Ray objects of a namespace can run at
/// once.
#[derive(Default)]
struct Totals {
    /// (requests or limits, resource) -> amount.
    sums: BTreeMap<(&'static str, String), u128>,
    gpu_without_resources: bool,
}

/// What KubeRay gives the autoscaler container when `autoscalerOptions.resources` is unset.
const AUTOSCALER_DEFAULT: [(&str, &str); 2] = [("cpu", "500m"), ("memory", "512Mi")];

/// What KubeRay gives its default submitter container (K8sJobMode without a
/// `submitterPodTemplate`).
const SUBMITTER_DEFAULT: [(&str, [(&str, &str); 2]); 2] = [
    ("requests", [("cpu", "500m"), ("memory", "200Mi")]),
    ("limits", [("cpu", "1"), ("memory", "1Gi")]),
];

impl Totals {
    fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    fn add_object(&mut self, obj: &Object) {
        let w = Workload::of(obj);
        // A RayService runs two clusters during an upgrade.
        let copies: u128 = if obj.kind == Kind::RayService { 2 } else { 1 };
        for t in &w.templates {
            let replicas: u128 = match &t.role {
                PodRole::Worker { .. } => {
                    let group = t.cluster.and_then(|ci| {
                        w.clusters[ci]
                            .workers()
                            .iter()
                            .find(|g| g.get("template").is_some_and(|n| std::ptr::eq(n, t.node)))
                    });
                    let n = |k: &str| group.and_then(|g| g.get(k)).and_then(Node::as_i64);
                    let count = n("maxReplicas").or(n("replicas")).unwrap_or(1).max(0) as u128;
                    let hosts = n("numOfHosts").unwrap_or(1).max(1) as u128;
                    count.saturating_mul(hosts)
                }
                _ => 1,
            };
            let mut pod: BTreeMap<(&'static str, String), u128> = BTreeMap::new();
            let mut init: BTreeMap<(&'static str, String), u128> = BTreeMap::new();
            for c in t.containers() {
                let target = if c.kind == rayward_manifest::ContainerKind::Init {
                    &mut init
                } else {
                    &mut pod
                };
                for (kind, res, amount) in container_amounts(c.node.get("resources")) {
                    let e = target.entry((kind, res)).or_default();
                    if c.kind == rayward_manifest::ContainerKind::Init {
                        *e = (*e).max(amount);
                    } else {
                        *e = e.saturating_add(amount);
                    }
                }
            }
            for (k, v) in init {
                let e = pod.entry(k).or_default();
                *e = (*e).max(v);
            }
            if t.role.is_ray_node()
                && t.ray_start_params
                    .and_then(|p| p.get("num-gpus"))
                    .and_then(Node::as_str)
                    .and_then(|s| s.parse::<f64>().ok())
                    .is_some_and(|g| g > 0.0)
            {
                self.gpu_without_resources = true;
            }
            for (k, v) in pod {
                let e = self.sums.entry(k).or_default();
                *e = e.saturating_add(v.saturating_mul(replicas).saturating_mul(copies));
            }
        }
        // KubeRay's default submitter Job pod, when the RayJob brings none of its own.
        let job = match obj.kind {
            Kind::RayJob => obj.root.get("spec"),
            Kind::RayCronJob => obj.root.path(&["spec", "jobTemplate"]),
            _ => None,
        };
        if let Some(job) = job {
            let mode = job.get("submissionMode").and_then(Node::as_str);
            if matches!(mode, None | Some("K8sJobMode"))
                && job.get("submitterPodTemplate").is_none()
            {
                for (kind, amounts) in SUBMITTER_DEFAULT {
                    for (res, q) in amounts {
                        let e = self.sums.entry((kind, res.to_string())).or_default();
                        *e = e.saturating_add(quantity::parse(res, q).unwrap_or(0));
                    }
                }
            }
        }
        for ci in 0..w.clusters.len() {
            if let Some(a) = w.autoscaler(ci) {
                let mut amounts = container_amounts(a.node.get("resources"));
                if amounts.is_empty() {
                    for kind in ["requests", "limits"] {
                        for (res, q) in AUTOSCALER_DEFAULT {
                            amounts.push((
                                kind,
                                res.to_string(),
                                quantity::parse(res, q).unwrap_or(0),
                            ));
                        }
                    }
                }
                for (kind, res, v) in amounts {
                    let e = self.sums.entry((kind, res)).or_default();
                    *e = e.saturating_add(v.saturating_mul(copies));
                }
            }
        }
    }

    /// `spec.hard`: cpu and memory requests and limits, and `requests.<gpu>` for every GPU
    /// resource in use (`nvidia.com/gpu` when pods only set Ray's `num-gpus`).
    fn hard(&self) -> Node {
        let mut entries: Vec<(String, Node)> = Vec::new();
        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                if let Some(v) = self.sums.get(&(kind, res.to_string())) {
                    entries.push((
                        format!("{kind}.{res}"),
                        Node::string(quantity::format(res, *v)),
                    ));
                }
            }
        }
        let mut gpus: BTreeMap<&str, u128> = BTreeMap::new();
        for ((kind, res), v) in &self.sums {
            if is_gpu_resource(res) {
                let e = gpus.entry(res.as_str()).or_default();
                // Extended resources are requested as much as limited; take the larger.
                let _ = kind;
                *e = (*e).max(*v);
            }
        }
        if gpus.is_empty() && self.gpu_without_resources {
            gpus.insert("nvidia.com/gpu", 0);
        }
        for (res, v) in gpus {
            entries.push((format!("requests.{res}"), Node::string(v.to_string())));
        }
        Node::map_of(entries)
    }
}

/// (requests|limits, resource, amount) of a container's `resources`; a request that is
/// missing counts as the limit, as Kubernetes defaults it.
fn container_amounts(resources: Option<&Node>) -> Vec<(&'static str, String, u128)> {
    let mut out = Vec::new();
    let Some(r) = resources else { return out };
    let read = |kind: &str| -> BTreeMap<String, u128> {
        r.get(kind)
            .map(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| {
                let k = k.as_str()?;
                Some((k.to_string(), quantity::parse(k, v.as_str()?)?))
            })
            .collect()
    };
    let limits = read("limits");
    let mut requests = read("requests");
    for (k, v) in &limits {
        requests.entry(k.clone()).or_insert(*v);
    }
    for (k, v) in requests {
        out.push(("requests", k, v));
    }
    for (k, v) in limits {
        out.push(("limits", k, v));
    }
    out
}
