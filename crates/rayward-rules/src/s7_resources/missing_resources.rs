use crate::fix::{for_each_container, Changes, Fix, FixContext};
use crate::util::pod_security::describe_container;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Object;
use rayward_manifest::{ContainerKind, Node, Workload};

declare_rule! {
    /// ## What it checks
    /// Every container (init containers, Ray head and worker containers, sidecars, the
    /// autoscaler, RayJob submitters, plain workloads) must set `requests.cpu`,
    /// `requests.memory`, `limits.cpu` and `limits.memory`. One finding per container lists
    /// what is missing, at its `resources` (or at the container when it has none).
    ///
    /// A request that is missing while the matching limit is set is not reported:
    /// Kubernetes copies the limit into the request. GPU (and other extended) resources are
    /// not required: they are requested through `limits` alone, and a CPU-only container
    /// has none. A GPU container still needs its CPU and memory limits; its data loaders
    /// and object store can exhaust the node's memory as well as any other pod.
    ///
    /// The autoscaler container: when `autoscalerOptions.resources` is absent KubeRay gives
    /// the container its own requests and limits (500m CPU, 512Mi memory, both requests and
    /// limits), so nothing is reported. When `autoscalerOptions.resources` is set it
    /// *replaces* those defaults as a whole, so it is checked like any other container:
    /// `resources: {limits: {memory: 1Gi}}` leaves the autoscaler without a CPU limit.
    ///
    /// A `LimitRange` in the namespace can fill in defaults at admission; a manifest audit
    /// cannot see that, so set the values in the manifest or disable the rule.
    ///
    /// ## Why it matters (guide §7)
    /// Ray clusters consume large amounts of CPU and memory, and every job is arbitrary
    /// code: a pod without limits can take all of its node's CPU and memory, starve the
    /// kubelet and get other pods evicted. Without requests the scheduler packs pods onto
    /// nodes that cannot hold them. Ray also sizes itself from the container: its CPU
    /// count and memory (the object store's included) come from the limits, so a Ray
    /// container without them advertises the whole node to Ray's scheduler.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   image: rayproject/ray:2.52.0
    ///   resources:
    ///     limits:
    ///       nvidia.com/gpu: 1
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   image: rayproject/ray:2.52.0
    ///   resources:
    ///     requests: {cpu: "8", memory: 32Gi}
    ///     limits: {cpu: "8", memory: 32Gi, nvidia.com/gpu: 1}
    /// ```
    pub struct MissingResources {
        id: "RW701",
        name: "missing-resources",
        severity: Medium,
        section: "7",
        summary: "Container lacks CPU or memory requests or limits",
        fix: "Set `resources.requests` and `resources.limits` for `cpu` and `memory`.",
        scope: Object,
        fixer: Some(&MissingResources),
        companion: None,
    }
}

/// Whether `resources.<kind>.<res>` is set to something.
fn has(resources: Option<&Node>, kind: &str, res: &str) -> bool {
    resources
        .and_then(|r| r.path(&[kind, res]))
        .is_some_and(|n| !n.is_null())
}

impl Rule for MissingResources {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let resources = c.get("resources").filter(|n| !n.is_null());
            if c.kind == ContainerKind::Autoscaler && resources.is_none() {
                // KubeRay's defaults: 500m CPU and 512Mi memory, requested and limited.
                continue;
            }
            let mut missing = Vec::new();
            for res in ["cpu", "memory"] {
                let limit = has(resources, "limits", res);
                // A missing request defaults to the limit.
                if !has(resources, "requests", res) && !limit {
                    missing.push(format!("requests.{res}"));
                }
                if !limit {
                    missing.push(format!("limits.{res}"));
                }
            }
            if missing.is_empty() {
                continue;
            }
            let who = describe_container(t, &c);
            let mut message = if resources.is_none() {
                format!("{who} sets no resources (requests and limits for cpu and memory)")
            } else {
                format!("{who} does not set {}", missing.join(", "))
            };
            if c.kind == ContainerKind::Autoscaler {
                message.push_str(
                    " (`autoscalerOptions.resources` replaces KubeRay's defaults as a whole)",
                );
            }
            out.report(
                w.obj,
                c.field_path("resources"),
                resources.map_or(c.pos, |n| n.pos),
                message,
            );
        }
    }
}

impl Fix for MissingResources {
    fn safe(&self) -> bool {
        false
    }

    /// Fills what is missing: a resource with neither request nor limit gets the
    /// defaults (`--default-cpu`, `--default-memory`) as both; a request without a limit
    /// gets a limit equal to it. Extended resources (GPUs) are not touched, nor is an
    /// autoscaler that keeps KubeRay's default resources.
    fn fix(&self, obj: &mut Object, cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_container(obj, false, |t, c| {
            if t.kind == ContainerKind::Autoscaler && c.get("resources").is_none_or(Node::is_null) {
                return;
            }
            let Some(res) = c.map_entry("resources") else {
                return;
            };
            let at = t.path.key("resources");
            for (name, default) in [
                ("cpu", &cx.options.default_cpu),
                ("memory", &cx.options.default_memory),
            ] {
                let limit = has(Some(res), "limits", name);
                let request = res
                    .get("requests")
                    .and_then(|r| r.get(name))
                    .filter(|n| !n.is_null())
                    .cloned();
                if limit {
                    continue;
                }
                let (req_value, lim_value) = match request {
                    Some(r) => (None, r),
                    None => (
                        Some(Node::string(default.clone())),
                        Node::string(default.clone()),
                    ),
                };
                if let Some(v) = req_value {
                    if let Some(reqs) = res.map_entry("requests") {
                        reqs.set(name, v);
                        ch.add(
                            &at.keys(&["requests", name]),
                            format!("request {default} {name}"),
                        );
                    }
                }
                if let Some(lims) = res.map_entry("limits") {
                    let text = lim_value.scalar_text().unwrap_or("").to_string();
                    lims.set(name, lim_value);
                    ch.add(
                        &at.keys(&["limits", name]),
                        format!("limit {name} to {text}"),
                    );
                }
            }
        });
        ch.list
    }
}
