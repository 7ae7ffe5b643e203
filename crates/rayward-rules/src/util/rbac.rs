//! Which ServiceAccount a Ray pod runs as, and whether it needs the Kubernetes API, for
//! the §4 rules.

use rayward_manifest::ray::NODE_TYPE_LABEL;
use rayward_manifest::{Kind, Node, Object, PodRole, PodTemplate, Workload};
use std::collections::BTreeSet;

/// The ServiceAccount a pod template names: `serviceAccountName`, else the deprecated
/// `serviceAccount`; empty strings count as unset (as in Kubernetes). Gives the value
/// node and the field it came from.
pub fn declared_service_account<'a>(
    t: &PodTemplate<'a>,
) -> Option<(&'a str, &'a Node, &'static str)> {
    for field in ["serviceAccountName", "serviceAccount"] {
        if let Some(n) = t.field(field) {
            if let Some(s) = n.as_str().filter(|s| !s.is_empty()) {
                return Some((s, n, field));
            }
        }
    }
    None
}

/// Whether KubeRay gives this template's pods its own autoscaler ServiceAccount: the head
/// of a cluster with `enableInTreeAutoscaling: true` and no `serviceAccountName` runs as a
/// ServiceAccount named after the cluster, which the operator creates and binds to a Role
/// limited to pods and rayclusters (get/list/watch/patch).
pub fn kuberay_autoscaler_account(w: &Workload<'_>, t: &PodTemplate<'_>) -> bool {
    t.role == PodRole::Head
        && t.cluster
            .and_then(|c| w.clusters.get(c))
            .is_some_and(|c| c.autoscaler_enabled())
        && declared_service_account(t).is_none()
}

/// The ServiceAccount the pods of a template run as: the one named, else KubeRay's
/// autoscaler account (the cluster's name; `None` when the cluster's name is generated, as
/// for RayJob and RayService), else `default`.
pub fn effective_service_account(w: &Workload<'_>, t: &PodTemplate<'_>) -> Option<String> {
    if let Some((sa, _, _)) = declared_service_account(t) {
        return Some(sa.to_string());
    }
    if kuberay_autoscaler_account(w, t) {
        return t
            .cluster
            .and_then(|c| w.clusters.get(c))
            .and_then(|c| c.name.clone());
    }
    Some("default".to_string())
}

/// The ServiceAccounts Ray pods run as, as (namespace, name): those of every Ray node
/// template of the objects (see [`effective_service_account`]) and those running Ray pods
/// (Pods labelled `ray.io/node-type`) name. Objects without a namespace are in `default`.
/// `rayward audit --cluster` asks the API server what these accounts may do.
pub fn ray_service_accounts(objects: &[Object]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for obj in objects {
        let ns = obj
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let ray_pod =
            obj.kind == Kind::Pod && obj.labels().iter().any(|(k, _)| *k == NODE_TYPE_LABEL);
        if !(obj.kind.is_ray() || ray_pod) {
            continue;
        }
        let w = Workload::of(obj);
        for t in &w.templates {
            if !(ray_pod || t.role.is_ray_node()) {
                continue;
            }
            if let Some(sa) = effective_service_account(&w, t) {
                out.insert((ns.clone(), sa));
            }
        }
    }
    out
}

/// The ServiceAccount `rayward harden` gives a Ray object's pods.
pub fn dedicated_service_account(object_name: &str) -> String {
    format!("{object_name}-ray")
}

fn truthy(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1")
}

/// Why a Ray head pod needs the Kubernetes API (and so its token), if it does: the
/// autoscaler sidecar (`enableInTreeAutoscaling: true`), Kubernetes-delegated token auth
/// (`authOptions.enableK8sTokenAuth: true` or `RAY_ENABLE_K8S_TOKEN_AUTH=true`: the head
/// calls TokenReview and SubjectAccessReview), or platform-event ingestion
/// (`RAY_DASHBOARD_INGEST_PLATFORM_EVENTS=true`: the dashboard watches Kubernetes events).
pub fn head_api_need(w: &Workload<'_>, t: &PodTemplate<'_>) -> Option<&'static str> {
    if t.role != PodRole::Head {
        return None;
    }
    let c = t.cluster.and_then(|c| w.clusters.get(c))?;
    if c.autoscaler_enabled() {
        return Some("the autoscaler (`enableInTreeAutoscaling: true`)");
    }
    if c.node
        .path(&["authOptions", "enableK8sTokenAuth"])
        .and_then(Node::as_bool)
        == Some(true)
    {
        return Some("Kubernetes token auth (`authOptions.enableK8sTokenAuth: true`)");
    }
    for ctr in t.containers().into_iter().filter(|c| c.is_ray()) {
        if ctr
            .env_value("RAY_ENABLE_K8S_TOKEN_AUTH")
            .is_some_and(truthy)
        {
            return Some("Kubernetes token auth (`RAY_ENABLE_K8S_TOKEN_AUTH`)");
        }
        if ctr
            .env_value("RAY_DASHBOARD_INGEST_PLATFORM_EVENTS")
            .is_some_and(truthy)
        {
            return Some("platform-event ingestion (`RAY_DASHBOARD_INGEST_PLATFORM_EVENTS`)");
        }
    }
    None
}
