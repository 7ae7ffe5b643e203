//! Which Ray objects a finding on another object concerns: a Service that selects a
//! cluster's pods, the NetworkPolicy over them, the Ingress in front of the head service,
//! the ServiceAccount, Role and RoleBinding its pods run with, the quota and Namespace they
//! live in. A scorecard counts such findings against those Ray objects, and puts findings
//! whose object concerns none of them in its namespace's column.
//!
//! Read from the run's (slim) objects, as KubeRay labels and names what it creates:
//! - an object labelled `ray.io/cluster` or `ray.io/originated-from-cr-name`, or owned
//!   (`ownerReferences`) by a Ray object, concerns the Ray objects of that name in its
//!   namespace;
//! - a Service (`spec.selector`) or NetworkPolicy (`spec.podSelector`) concerns the Ray
//!   objects whose pods it selects, with the labels KubeRay puts on them. A cluster whose
//!   name is generated (RayJob, RayService) is counted only when no named one is selected:
//!   `ray.io/cluster: a` means RayCluster `a`, not every RayJob beside it;
//! - an Ingress concerns what its backend Services concern (a backend named
//!   `<name>-head-svc` or `<name>-serve-svc` that the run does not hold: the Ray object
//!   `<name>`);
//! - a ServiceAccount concerns the Ray objects whose pods run as it; a RoleBinding or
//!   ClusterRoleBinding what its ServiceAccount subjects concern; a Role or ClusterRole
//!   what the bindings to it concern;
//! - a ResourceQuota, LimitRange or Namespace concerns every Ray object of its namespace.

use crate::util::rbac::effective_service_account;
use rayward_manifest::inventory::{policy_selector, service_selector};
use rayward_manifest::ray::CLUSTER_LABEL;
use rayward_manifest::selector::LabelValue;
use rayward_manifest::{Inventory, Kind, Node, Object, PodRef, Selector};
use std::collections::HashMap;

const ORIGIN_LABEL: &str = "ray.io/originated-from-cr-name";

type Ns<'a> = Option<&'a str>;

/// The run's Ray objects, indexed for the questions above.
struct Index<'i, 'a> {
    inv: &'i Inventory<'a>,
    /// Ray objects by namespace and name.
    by_name: HashMap<(Ns<'a>, String), Vec<usize>>,
    /// Ray objects by namespace.
    by_ns: HashMap<Ns<'a>, Vec<usize>>,
    /// Pods of Ray objects by namespace and the `ray.io/cluster` value they will carry
    /// (`None`: generated).
    pods: HashMap<(Ns<'a>, Option<String>), Vec<&'i PodRef<'a>>>,
    /// Pods of Ray objects by namespace.
    pods_ns: HashMap<Ns<'a>, Vec<&'i PodRef<'a>>>,
    /// Ray objects by the ServiceAccount (namespace, name) their pods run as.
    accounts: HashMap<(Ns<'a>, String), Vec<usize>>,
    /// Services by namespace and name.
    services: HashMap<(Ns<'a>, &'a str), usize>,
    /// Bindings by the role they grant: (kind, namespace of a Role, name).
    bindings: HashMap<(&'a str, Ns<'a>, &'a str), Vec<usize>>,
}

fn cluster_label<'l>(p: &'l PodRef<'_>) -> Option<&'l str> {
    p.labels
        .iter()
        .rev()
        .find(|(k, _)| k.as_ref() == CLUSTER_LABEL)
        .and_then(|(_, v)| match v {
            LabelValue::Known(v) => Some(v.as_ref()),
            LabelValue::Any => None,
        })
}

impl<'i, 'a> Index<'i, 'a> {
    fn new(inv: &'i Inventory<'a>) -> Self {
        let mut ix = Index {
            inv,
            by_name: HashMap::new(),
            by_ns: HashMap::new(),
            pods: HashMap::new(),
            pods_ns: HashMap::new(),
            accounts: HashMap::new(),
            services: HashMap::new(),
            bindings: HashMap::new(),
        };
        for (i, o) in inv.objects.iter().enumerate() {
            let ns = o.namespace.as_deref();
            if o.kind.is_ray() {
                ix.by_name.entry((ns, o.name.clone())).or_default().push(i);
                ix.by_ns.entry(ns).or_default().push(i);
                let w = &inv.workloads[i];
                for t in &w.templates {
                    if let Some(sa) = effective_service_account(w, t) {
                        let users = ix.accounts.entry((ns, sa)).or_default();
                        if users.last() != Some(&i) {
                            users.push(i);
                        }
                    }
                }
            }
            match o.kind {
                Kind::Service => {
                    ix.services.insert((ns, o.name.as_str()), i);
                }
                Kind::RoleBinding | Kind::ClusterRoleBinding => {
                    let role = o.root.get("roleRef");
                    let field = |k| role.and_then(|r| r.get(k)).and_then(Node::as_str);
                    if let (Some(kind), Some(name)) = (field("kind"), field("name")) {
                        let role_ns = if kind == "Role" { ns } else { None };
                        ix.bindings
                            .entry((kind, role_ns, name))
                            .or_default()
                            .push(i);
                    }
                }
                _ => {}
            }
        }
        for p in &inv.pods {
            if !inv.objects[p.obj].kind.is_ray() {
                continue;
            }
            let ns = inv.pod_namespace(p);
            ix.pods
                .entry((ns, cluster_label(p).map(str::to_string)))
                .or_default()
                .push(p);
            ix.pods_ns.entry(ns).or_default().push(p);
        }
        ix
    }

    fn named(&self, ns: Ns<'a>, name: &str, out: &mut Vec<usize>) {
        if let Some(list) = self.by_name.get(&(ns, name.to_string())) {
            out.extend(list.iter().copied());
        }
    }

    /// The Ray objects whose pods in `ns` the selector selects.
    fn selected(&self, ns: Ns<'a>, sel: &Selector, out: &mut Vec<usize>) {
        let wanted_cluster = sel
            .required_values()
            .find(|(k, _)| *k == CLUSTER_LABEL)
            .map(|(_, v)| v);
        let candidates: Vec<&PodRef<'a>> = match wanted_cluster {
            Some(c) => {
                let mut v: Vec<&PodRef<'a>> = Vec::new();
                for key in [(ns, Some(c.to_string())), (ns, None)] {
                    v.extend(self.pods.get(&key).into_iter().flatten().copied());
                }
                v
            }
            None => self.pods_ns.get(&ns).cloned().unwrap_or_default(),
        };
        let before = out.len();
        out.extend(
            candidates
                .iter()
                .filter(|p| sel.matches_known(&p.labels))
                .map(|p| p.obj),
        );
        if out.len() == before {
            out.extend(
                candidates
                    .iter()
                    .filter(|p| sel.matches(&p.labels))
                    .map(|p| p.obj),
            );
        }
    }

    fn by_account(&self, ns: Ns<'a>, sa: &str, out: &mut Vec<usize>) {
        if let Some(users) = self.accounts.get(&(ns, sa.to_string())) {
            out.extend(users.iter().copied());
        }
    }

    /// What a RoleBinding or ClusterRoleBinding concerns: the Ray objects running as its
    /// ServiceAccount subjects.
    fn binding(&self, b: &'a Object, out: &mut Vec<usize>) {
        let ns = b.namespace.as_deref();
        for s in b.root.get("subjects").map(Node::as_seq).unwrap_or(&[]) {
            if s.get("kind").and_then(Node::as_str) != Some("ServiceAccount") {
                continue;
            }
            let Some(name) = s.get("name").and_then(Node::as_str) else {
                continue;
            };
            let sns = s.get("namespace").and_then(Node::as_str).or(ns);
            self.by_account(sns, name, out);
            // Objects without a namespace are in the default one.
            match sns {
                Some("default") => self.by_account(None, name, out),
                None => self.by_account(Some("default"), name, out),
                Some(_) => {}
            }
        }
    }

    fn concerns(&self, i: usize) -> Vec<usize> {
        let o: &'a Object = &self.inv.objects[i];
        let ns = o.namespace.as_deref();
        let mut out = Vec::new();
        for (k, v) in o.labels() {
            if k == CLUSTER_LABEL || k == ORIGIN_LABEL {
                self.named(ns, v, &mut out);
            }
        }
        for r in o
            .metadata()
            .and_then(|m| m.get("ownerReferences"))
            .map(Node::as_seq)
            .unwrap_or(&[])
        {
            let api = r.get("apiVersion").and_then(Node::as_str).unwrap_or("");
            let kind = r.get("kind").and_then(Node::as_str).unwrap_or("");
            if Kind::of(api, kind).is_ray() {
                if let Some(name) = r.get("name").and_then(Node::as_str) {
                    self.named(ns, name, &mut out);
                }
            }
        }
        match o.kind {
            Kind::Service => {
                if let Some(sel) = service_selector(o) {
                    self.selected(ns, &sel, &mut out);
                }
            }
            Kind::NetworkPolicy => self.selected(ns, &policy_selector(o), &mut out),
            Kind::Ingress => {
                for name in ingress_backends(&o.root) {
                    match self.services.get(&(ns, name)) {
                        Some(&s) => {
                            let svc = &self.inv.objects[s];
                            if let Some(sel) = service_selector(svc) {
                                self.selected(ns, &sel, &mut out);
                            }
                            for (k, v) in svc.labels() {
                                if k == CLUSTER_LABEL || k == ORIGIN_LABEL {
                                    self.named(ns, v, &mut out);
                                }
                            }
                        }
                        None => {
                            if let Some(c) = name
                                .strip_suffix("-head-svc")
                                .or_else(|| name.strip_suffix("-serve-svc"))
                            {
                                self.named(ns, c, &mut out);
                            }
                        }
                    }
                }
            }
            Kind::ServiceAccount => self.by_account(ns, &o.name, &mut out),
            Kind::RoleBinding | Kind::ClusterRoleBinding => self.binding(o, &mut out),
            Kind::Role | Kind::ClusterRole => {
                let kind = if o.kind == Kind::Role {
                    "Role"
                } else {
                    "ClusterRole"
                };
                let role_ns = if o.kind == Kind::Role { ns } else { None };
                let bindings = self.bindings.get(&(kind, role_ns, o.name.as_str()));
                for &b in bindings.into_iter().flatten() {
                    self.binding(&self.inv.objects[b], &mut out);
                }
            }
            Kind::ResourceQuota => {
                out.extend(self.by_ns.get(&ns).into_iter().flatten().copied());
            }
            Kind::Namespace => {
                out.extend(
                    self.by_ns
                        .get(&Some(o.name.as_str()))
                        .into_iter()
                        .flatten()
                        .copied(),
                );
            }
            _ if o.kind_name == "LimitRange" => {
                out.extend(self.by_ns.get(&ns).into_iter().flatten().copied());
            }
            _ => {}
        }
        out.retain(|&r| r != i);
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The Service names an Ingress sends to (`networking.k8s.io/v1` and the older
/// `serviceName` form).
fn ingress_backends(root: &Node) -> Vec<&str> {
    fn backend<'n>(b: Option<&'n Node>, out: &mut Vec<&'n str>) {
        let Some(b) = b else { return };
        if let Some(n) = b
            .path(&["service", "name"])
            .or_else(|| b.get("serviceName"))
            .and_then(Node::as_str)
        {
            out.push(n);
        }
    }
    let mut out = Vec::new();
    let spec = root.get("spec");
    backend(spec.and_then(|s| s.get("defaultBackend")), &mut out);
    backend(spec.and_then(|s| s.get("backend")), &mut out);
    for rule in spec
        .and_then(|s| s.get("rules"))
        .map(Node::as_seq)
        .unwrap_or(&[])
    {
        for p in rule
            .path(&["http", "paths"])
            .map(Node::as_seq)
            .unwrap_or(&[])
        {
            backend(p.get("backend"), &mut out);
        }
    }
    out
}

/// For each object of `objects` that `wanted` picks, the Ray objects (indices into
/// `objects`) it concerns, in index order; objects that concern none are left out. Ray
/// objects themselves are never picked.
pub fn concerned(objects: &[Object], wanted: impl Fn(&Object) -> bool) -> Vec<(usize, Vec<usize>)> {
    let picked: Vec<usize> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.kind.is_ray() && wanted(o))
        .map(|(i, _)| i)
        .collect();
    if picked.is_empty() {
        return Vec::new();
    }
    let inv = Inventory::new(objects);
    let ix = Index::new(&inv);
    picked
        .into_iter()
        .map(|i| (i, ix.concerns(i)))
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Vec<Object> {
        let file: std::sync::Arc<str> = std::sync::Arc::from("t.yaml");
        rayward_manifest::load::parse_documents("t.yaml", text, &Default::default())
            .unwrap()
            .into_iter()
            .enumerate()
            .flat_map(|(d, doc)| Object::from_document(&file, d, doc.root))
            .collect()
    }

    fn names(objs: &[Object], rel: &[(usize, Vec<usize>)], of: &str) -> Vec<String> {
        rel.iter()
            .find(|(i, _)| objs[*i].id() == of)
            .map(|(_, r)| r.iter().map(|&j| objs[j].id()).collect())
            .unwrap_or_default()
    }

    const CLUSTERS: &str = "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a, namespace: t}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        serviceAccountName: sa-a\n        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n---\napiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: b, namespace: t}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n---\napiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j, namespace: t}\nspec:\n  rayClusterSpec:\n    headGroupSpec:\n      template:\n        spec:\n          containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n---\napiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a, namespace: other}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n";

    #[test]
    fn selectors_name_the_cluster_they_select() {
        let text = format!(
            "{CLUSTERS}---\napiVersion: v1\nkind: Service\nmetadata: {{name: dash, namespace: t}}\nspec:\n  type: LoadBalancer\n  selector: {{ray.io/cluster: a, ray.io/node-type: head}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: all-heads, namespace: t}}\nspec:\n  selector: {{ray.io/node-type: head}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: t}}\nspec:\n  podSelector: {{matchLabels: {{ray.io/cluster: zz}}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: none, namespace: t}}\nspec:\n  selector: {{app: web}}\n"
        );
        let objs = objects(&text);
        let rel = concerned(&objs, |_| true);
        // Named cluster only: not the RayJob (generated name), not `a` of namespace `other`.
        assert_eq!(names(&objs, &rel, "Service/t/dash"), ["RayCluster/t/a"]);
        assert_eq!(
            names(&objs, &rel, "Service/t/all-heads"),
            ["RayCluster/t/a", "RayCluster/t/b", "RayJob/t/j"]
        );
        // A cluster name that no named cluster has: the generated one may be it.
        assert_eq!(names(&objs, &rel, "NetworkPolicy/t/np"), ["RayJob/t/j"]);
        assert!(names(&objs, &rel, "Service/t/none").is_empty());
    }

    #[test]
    fn ingress_accounts_bindings_quota_and_labels() {
        let text = format!(
            "{CLUSTERS}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: ing, namespace: t}}\nspec:\n  rules:\n  - http:\n      paths:\n      - backend: {{service: {{name: b-head-svc, port: {{number: 8265}}}}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa-a, namespace: t}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r, namespace: t}}\nrules: []\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: rb, namespace: t}}\nroleRef: {{kind: Role, name: r}}\nsubjects: [{{kind: ServiceAccount, name: default}}]\n---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: q, namespace: other}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm, namespace: t, labels: {{ray.io/cluster: b}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: other}}\n"
        );
        let objs = objects(&text);
        let rel = concerned(&objs, |_| true);
        assert_eq!(names(&objs, &rel, "Ingress/t/ing"), ["RayCluster/t/b"]);
        assert_eq!(
            names(&objs, &rel, "ServiceAccount/t/sa-a"),
            ["RayCluster/t/a"]
        );
        // `default` is the account of b and of the RayJob.
        assert_eq!(
            names(&objs, &rel, "Role/t/r"),
            ["RayCluster/t/b", "RayJob/t/j"]
        );
        assert_eq!(
            names(&objs, &rel, "RoleBinding/t/rb"),
            ["RayCluster/t/b", "RayJob/t/j"]
        );
        assert_eq!(
            names(&objs, &rel, "ResourceQuota/other/q"),
            ["RayCluster/other/a"]
        );
        assert_eq!(
            names(&objs, &rel, "Namespace/other"),
            ["RayCluster/other/a"]
        );
        assert_eq!(names(&objs, &rel, "ConfigMap/t/cm"), ["RayCluster/t/b"]);
    }
}
