//! The ResourceQuota of each namespace that holds Ray objects and none: sized from the
//! clusters' maximum replicas, every GPU resource capped (guide §3).

use super::{metadata, object};
use rayward_manifest::names::ns_key;
use rayward_manifest::quantity;
use rayward_manifest::quantity::is_gpu_resource;
use rayward_manifest::{Kind, Node, Object, PodRole, Workload};
use std::collections::{BTreeMap, HashSet};

/// The ResourceQuotas a run needs, gathered one object at a time (harden streams its
/// output and keeps only slim copies, which have no cpu or memory to sum).
#[derive(Default)]
pub struct Quotas {
    /// Namespace key -> (namespace, totals of its Ray objects).
    totals: BTreeMap<String, (Option<String>, Totals)>,
    /// Namespaces that already hold a ResourceQuota.
    has_quota: HashSet<String>,
    /// Namespaces with a Ray object that does not suppress RW202.
    unsuppressed: HashSet<String>,
}

impl Quotas {
    /// Counts one object of the output.
    pub fn add(&mut self, o: &Object) {
        let key = ns_key(o.namespace.as_deref()).to_string();
        if o.kind == Kind::ResourceQuota {
            self.has_quota.insert(key);
            return;
        }
        if !o.kind.is_ray() {
            return;
        }
        if !crate::suppressed(o, rayward_rules::NamespaceWithoutQuota::META.id) {
            self.unsuppressed.insert(key.clone());
        }
        self.totals
            .entry(key)
            .or_insert_with(|| (o.namespace.clone(), Totals::default()))
            .1
            .add_object(o);
    }

    /// A ResourceQuota for every namespace that holds Ray objects and no quota (unless
    /// every Ray object there suppresses RW202).
    pub fn finish(self) -> Vec<Object> {
        let mut out = Vec::new();
        for (key, (ns, t)) in self.totals {
            if self.has_quota.contains(&key) || t.is_empty() || !self.unsuppressed.contains(&key) {
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
                        *e = e.saturating_add(quantity::units(res, q).unwrap_or(0));
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
                                quantity::units(res, q).unwrap_or(0),
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
                        Node::string(quantity::format_units(res, *v)),
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
                Some((k.to_string(), quantity::units(k, v.as_str()?)?))
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
