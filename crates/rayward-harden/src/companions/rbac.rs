//! The Role and RoleBinding of the in-tree autoscaler (guide §4).

use super::{metadata, object};
use rayward_manifest::{Node, Object};

/// The Role KubeRay's in-tree autoscaler needs, and nothing more: it reads and patches
/// the cluster's pods and patches the RayCluster (`workersToDelete`, replicas): the same
/// two rules as the Role KubeRay's operator builds for it (`BuildRole` in
/// `ray-operator/controllers/ray/common/rbac.go`: pods get/list/watch/patch, rayclusters
/// get/patch), checked against that source.
pub(super) fn autoscaler_rbac(obj: &Object, sa: &str, ns: Option<&str>) -> Vec<Object> {
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
