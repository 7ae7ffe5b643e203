use crate::util::tenancy::{gpu_use, is_gpu_resource, ns_display, ns_key, pod_display};
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind, Object};
use std::collections::HashMap;

declare_rule! {
    /// ## What it checks
    /// Namespaces where a Ray head or worker pod uses GPUs while the inputs hold
    /// ResourceQuotas for that namespace and none of them caps those GPUs. A pod uses GPUs
    /// when a container (init containers included) requests or limits a GPU resource
    /// (`nvidia.com/gpu`, `amd.com/gpu`, `aliyun.com/gpu-mem`, `aliyun.com/gpu-count`, any
    /// `<vendor>/gpu`) above zero, or its group's `rayStartParams` say `num-gpus` > 0. A
    /// quota caps a GPU resource `R` when its `spec.hard` has `requests.R` (or `limits.R`,
    /// or `R`); Ray pods that only set `num-gpus` need some GPU cap. Reported once per
    /// namespace, at the `spec.hard` of its first quota that caps CPU or memory (else its
    /// first quota). Namespaces without any quota are RW202's. Objects without
    /// `metadata.namespace` are taken to be in `default`.
    ///
    /// ## Why it matters (guide §3)
    /// GPUs are the scarcest and dearest resource of the cluster, and Ray autoscales: one
    /// team's job, or a hijacked cluster mining coins, can take every GPU while the quota
    /// looks in place because it caps CPU and memory.
    ///
    /// ## Example
    /// ```yaml
    /// kind: ResourceQuota
    /// spec:
    ///   hard: {requests.cpu: "64", requests.memory: 256Gi}
    /// # ...while a Ray worker group asks for nvidia.com/gpu: 1
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// spec:
    ///   hard:
    ///     requests.cpu: "64"
    ///     requests.memory: 256Gi
    ///     requests.nvidia.com/gpu: "8"
    /// ```
    pub struct QuotaWithoutGpuCap {
        id: "RW203",
        name: "quota-without-gpu-cap",
        severity: Medium,
        section: "3",
        summary: "ResourceQuota caps no GPUs where Ray pods use them",
        fix: "Add `requests.<gpu resource>` (e.g. `requests.nvidia.com/gpu: \"8\"`) to the quota's `spec.hard`.",
        scope: JudgesOthers,
        fixer: None,
        companion: Some("the ResourceQuota caps every GPU resource the Ray pods use"),
    }
}

/// The resource a quota key caps: `requests.nvidia.com/gpu` → `nvidia.com/gpu`.
fn capped_resource(key: &str) -> &str {
    key.strip_prefix("requests.")
        .or_else(|| key.strip_prefix("limits."))
        .unwrap_or(key)
}

fn hard_keys(q: &Object) -> Vec<&str> {
    q.root
        .path(&["spec", "hard"])
        .map(|h| h.as_map())
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .collect()
}

#[derive(Default)]
struct NsGpu {
    /// GPU resources with the first pod using each.
    resources: Vec<(String, String)>,
    /// A pod that sets only `num-gpus`.
    num_gpus_only: Option<String>,
}

impl Rule for QuotaWithoutGpuCap {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let mut order: Vec<&str> = Vec::new();
        let mut gpus: HashMap<&str, NsGpu> = HashMap::new();
        for p in inv.ray_pods() {
            let w = &inv.workloads[p.obj];
            let t = &w.templates[p.template];
            let g = gpu_use(t);
            if !g.any() {
                continue;
            }
            let ns = ns_key(inv.pod_namespace(p));
            let e = gpus.entry(ns).or_insert_with(|| {
                order.push(ns);
                NsGpu::default()
            });
            if g.resources.is_empty() {
                e.num_gpus_only.get_or_insert_with(|| pod_display(w, t));
            }
            for r in g.resources {
                if !e.resources.iter().any(|(x, _)| *x == r) {
                    e.resources.push((r, pod_display(w, t)));
                }
            }
        }
        if order.is_empty() {
            return;
        }
        let mut quotas: HashMap<&str, Vec<&Object>> = HashMap::new();
        for (_, q) in inv.of_kind(Kind::ResourceQuota) {
            quotas
                .entry(ns_key(q.namespace.as_deref()))
                .or_default()
                .push(q);
        }
        for ns in order {
            let Some(qs) = quotas.get(ns) else { continue };
            let caps: Vec<&str> = qs
                .iter()
                .flat_map(|q| hard_keys(q))
                .map(capped_resource)
                .collect();
            let u = &gpus[ns];
            let mut missing: Vec<String> = u
                .resources
                .iter()
                .filter(|(r, _)| !caps.contains(&r.as_str()))
                .map(|(r, pod)| format!("`{r}` (used by {pod})"))
                .collect();
            if let Some(pod) = &u.num_gpus_only {
                if !caps.iter().any(|c| is_gpu_resource(c)) {
                    missing.push(format!("GPUs (`num-gpus` in the rayStartParams of {pod})"));
                }
            }
            if missing.is_empty() {
                continue;
            }
            let q = qs
                .iter()
                .find(|q| {
                    hard_keys(q)
                        .into_iter()
                        .map(capped_resource)
                        .any(|r| r == "cpu" || r == "memory")
                })
                .unwrap_or(&qs[0]);
            let (pos, path) = match q
                .root
                .path(&["spec", "hard"])
                .or_else(|| q.root.get("spec"))
            {
                Some(n) => (n.pos, JsonPath::root().keys(&["spec", "hard"])),
                None => (object_pos(q), JsonPath::root().keys(&["spec", "hard"])),
            };
            out.report(
                q,
                path,
                pos,
                format!(
                    "no ResourceQuota of namespace {} caps {}: Ray can take every GPU of the cluster",
                    ns_display(q.namespace.as_deref()),
                    missing.join(", ")
                ),
            );
        }
    }
}
