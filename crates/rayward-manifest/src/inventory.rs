//! Everything a run read, indexed for the rules that need the whole picture: which pods
//! each object will create, with the labels KubeRay will put on them, by namespace.

use crate::node::Node;
use crate::object::{Kind, Object};
use crate::pod::{PodRole, Workload};
use crate::selector::{LabelValue, Labels, Selector};
use std::borrow::Cow;

/// A pod that a template will create, with its effective labels.
#[derive(Clone, Debug)]
pub struct PodRef<'a> {
    /// Index into [`Inventory::objects`] / [`Inventory::workloads`].
    pub obj: usize,
    /// Index into that workload's templates.
    pub template: usize,
    pub labels: Labels<'a>,
}

/// All objects of a run, their workloads, and the pods they create.
pub struct Inventory<'a> {
    pub objects: &'a [Object],
    pub workloads: Vec<Workload<'a>>,
    pub pods: Vec<PodRef<'a>>,
}

impl<'a> Inventory<'a> {
    pub fn new(objects: &'a [Object]) -> Inventory<'a> {
        let workloads: Vec<Workload<'a>> = objects.iter().map(Workload::templates_of).collect();
        let mut pods = Vec::new();
        for (oi, w) in workloads.iter().enumerate() {
            for ti in 0..w.templates.len() {
                pods.push(PodRef {
                    obj: oi,
                    template: ti,
                    labels: pod_labels(w, ti),
                });
            }
        }
        Inventory {
            objects,
            workloads,
            pods,
        }
    }

    /// Objects of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (usize, &'a Object)> + '_ {
        self.objects
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.kind == kind)
    }

    /// The distinct namespaces of the objects, `None` standing for "not set".
    pub fn namespaces(&self) -> Vec<Option<&'a str>> {
        let mut out: Vec<Option<&str>> = Vec::new();
        for o in self.objects {
            if !o.kind.is_namespaced() {
                continue;
            }
            let ns = o.namespace.as_deref();
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        out
    }

    /// Ray head and worker pods.
    pub fn ray_pods(&self) -> impl Iterator<Item = &PodRef<'a>> {
        self.pods.iter().filter(|p| {
            self.workloads[p.obj].templates[p.template]
                .role
                .is_ray_node()
        })
    }

    /// The namespace of the object that creates a pod.
    pub fn pod_namespace(&self, p: &PodRef<'_>) -> Option<&'a str> {
        self.objects[p.obj].namespace.as_deref()
    }

    /// Pods in `namespace` that `selector` selects.
    pub fn select<'s>(
        &'s self,
        namespace: Option<&'s str>,
        selector: &'s Selector,
    ) -> impl Iterator<Item = &'s PodRef<'a>> + 's {
        self.pods
            .iter()
            .filter(move |p| self.pod_namespace(p) == namespace && selector.matches(&p.labels))
    }
}

/// The labels a pod of template `ti` will carry: the template's own, plus those KubeRay
/// adds to head and worker pods.
pub fn pod_labels<'a>(w: &Workload<'a>, ti: usize) -> Labels<'a> {
    let t = &w.templates[ti];
    let mut labels: Labels<'a> = Vec::with_capacity(12);
    let known = |s: &'static str| LabelValue::Known(Cow::Borrowed(s));
    if t.role.is_ray_node() {
        let obj: &'a Object = w.obj;
        // Only a RayCluster's own name is known; RayJob and RayService clusters get
        // generated ones.
        let cluster = match t.cluster.map(|c| w.clusters[c].name.is_some()) {
            Some(true) => LabelValue::Known(Cow::Borrowed(obj.name.as_str())),
            _ => LabelValue::Any,
        };
        let (node_type, group) = match &t.role {
            PodRole::Head => ("head", Cow::Borrowed("headgroup")),
            PodRole::Worker { group } => ("worker", Cow::Owned(group.clone())),
            _ => unreachable!("ray node roles only"),
        };
        let identifier = match &cluster {
            LabelValue::Known(c) => LabelValue::Known(Cow::Owned(format!("{c}-{node_type}"))),
            LabelValue::Any => LabelValue::Any,
        };
        labels.push((Cow::Borrowed(crate::ray::CLUSTER_LABEL), cluster));
        labels.push((Cow::Borrowed(crate::ray::NODE_TYPE_LABEL), known(node_type)));
        labels.push((
            Cow::Borrowed(crate::ray::GROUP_LABEL),
            LabelValue::Known(group),
        ));
        labels.push((Cow::Borrowed(crate::ray::IS_RAY_NODE_LABEL), known("yes")));
        labels.push((Cow::Borrowed("ray.io/identifier"), identifier));
        labels.push((
            Cow::Borrowed("app.kubernetes.io/created-by"),
            known("kuberay-operator"),
        ));
        labels.push((Cow::Borrowed("app.kubernetes.io/name"), known("kuberay")));
        if matches!(obj.kind, Kind::RayJob | Kind::RayService | Kind::RayCronJob) {
            let crd = match obj.kind {
                Kind::RayService => "RayService",
                _ => "RayJob",
            };
            labels.push((
                Cow::Borrowed(crate::ray::ORIGINATED_FROM_CRD_LABEL),
                known(crd),
            ));
            labels.push((
                Cow::Borrowed(crate::ray::ORIGINATED_FROM_NAME_LABEL),
                LabelValue::Known(Cow::Borrowed(obj.name.as_str())),
            ));
        }
    }
    for (k, v) in t.labels() {
        labels.push((Cow::Borrowed(k), LabelValue::Known(Cow::Borrowed(v))));
    }
    labels
}

/// A NetworkPolicy's pod selector.
pub fn policy_selector(np: &Object) -> Selector {
    Selector::from_label_selector(np.root.path(&["spec", "podSelector"]))
}

/// A Service's selector; `None` when it has none (it then selects no pod).
pub fn service_selector(svc: &Object) -> Option<Selector> {
    svc.root
        .path(&["spec", "selector"])
        .filter(|n| n.is_map() && !n.as_map().is_empty())
        .map(Selector::from_map)
}

/// Reads a node as a string list (`[a, b]`), ignoring non-strings.
pub fn strings(node: Option<&Node>) -> Vec<&str> {
    node.map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::as_str)
        .collect()
}

/// Whether a NetworkPolicy restricts ingress: `policyTypes` lists `Ingress`, or is absent
/// (Kubernetes then always implies `Ingress`).
pub fn is_ingress_policy(np: &Object) -> bool {
    let types = strings(np.root.path(&["spec", "policyTypes"]));
    types.is_empty() || types.contains(&"Ingress")
}
