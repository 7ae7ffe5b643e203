//! The objects a Ray object needs beside it: NetworkPolicies on KubeRay's real labels and
//! ports (§1.4), the dedicated ServiceAccount and, for the in-tree autoscaler, a Role with
//! exactly what KubeRay's autoscaler uses (§4), the namespace's ResourceQuota sized from
//! the clusters' maximum replicas (§3), and the Namespace with Pod Security labels (§2, §5).
//! One file per kind: `network_policy`, `rbac`, `quota`, `namespace`; this one holds what
//! they share (labels, names, object skeletons) and puts them together per object and per
//! namespace.

mod namespace;
mod network_policy;
mod quota;
mod rbac;

pub use network_policy::covered_by_input_policies;
pub use quota::Quotas;

use crate::options::Options;
use rayward_manifest::{ray, Kind, Node, Object, PodRole, Workload};
use rayward_rules::head_api_need;
use rayward_rules::Change;
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

/// The dedicated ServiceAccount of a Ray object's pods.
pub fn service_account_name(obj: &Object) -> String {
    rayward_rules::dedicated_service_account(&obj.name)
}

/// A name as a label value: at most 63 characters, ending in a letter or digit (KubeRay
/// shortens long names the same way for its labels).
pub fn label_value(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether the object's clusters carry no static KubeRay label to select them by.
pub(super) fn needs_owner_label(obj: &Object) -> bool {
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
        Kind::RayCluster => vec![(ray::CLUSTER_LABEL, name)],
        Kind::RayJob => vec![
            (ray::ORIGINATED_FROM_CRD_LABEL, "RayJob".into()),
            (ray::ORIGINATED_FROM_NAME_LABEL, name),
        ],
        _ => vec![
            (ray::ORIGINATED_FROM_CRD_LABEL, "RayService".into()),
            (ray::ORIGINATED_FROM_NAME_LABEL, name),
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

pub(super) fn object(root: Node) -> Object {
    let file: Arc<str> = Arc::from(COMPANIONS_FILE);
    Object::from_document(&file, 0, root)
        .pop()
        .expect("companions have apiVersion and kind")
}

pub(super) fn metadata(name: &str, namespace: Option<&str>, labels: Vec<(&str, Node)>) -> Node {
    let mut m = Node::map_of([("name", Node::string(name))]);
    if let Some(ns) = namespace {
        m.set("namespace", Node::string(ns));
    }
    let mut all = vec![("app.kubernetes.io/managed-by", Node::string("rayward"))];
    all.extend(labels);
    m.set("labels", Node::map_of(all));
    m
}

pub(super) fn match_labels(labels: &[(&str, String)]) -> Node {
    Node::map_of([(
        "matchLabels",
        Node::map_of(labels.iter().map(|(k, v)| (*k, Node::string(v.clone())))),
    )])
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
            out.extend(rbac::autoscaler_rbac(obj, &sa, ns));
        }
    }
    if policies && ray_pods {
        out.extend(network_policy::network_policies(obj, opts, needs_api));
    }
    out
}

/// Per-namespace companions: the Namespace (with `--namespace`), and a ResourceQuota for
/// every namespace that holds Ray objects and no quota.
pub fn for_namespaces(objects: &[Object], opts: &Options) -> Vec<Object> {
    let mut quotas = Quotas::default();
    for o in objects {
        quotas.add(o);
    }
    for_namespaces_with(quotas, opts)
}

/// [`for_namespaces`] from quotas gathered while the objects streamed past.
pub fn for_namespaces_with(quotas: Quotas, opts: &Options) -> Vec<Object> {
    let mut out = Vec::new();
    if let Some(ns) = &opts.fix.namespace {
        out.push(namespace::namespace(ns));
    }
    out.extend(quotas.finish());
    out
}
