use crate::fix::{Changes, Fix, FixContext};
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::Object;
use rayward_manifest::{JsonPath, Node, Workload};

declare_rule! {
    /// ## What it checks
    /// Ray objects (RayCluster, RayJob, RayService, RayCronJob) whose `metadata.namespace`
    /// is `default`, or is not set.
    ///
    /// One rule, one severity (medium) for both cases, on purpose: a manifest without a
    /// namespace lands wherever kubectl points, which is `default` unless the user or a
    /// tool says otherwise, so it carries the same risk as one that says `default`. Most
    /// published samples (the KubeRay ones included) set no namespace, so expect this
    /// rule to fire on them. If your pipeline always sets the namespace (`kubectl -n`,
    /// kustomize `namespace:`, Helm `--namespace`), disable the rule in the config or
    /// lower its severity; an explicit `default` is still worth fixing then.
    ///
    /// ## Why it matters (guide §2)
    /// Namespaces are the unit of isolation the rest of the guide builds on: ResourceQuotas,
    /// NetworkPolicies and RBAC are all per namespace. In `default`, a Ray cluster shares
    /// its quota, its network and the `default` ServiceAccount with whatever else was
    /// dropped there, and per-team policies cannot tell teams apart.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: ray.io/v1
    /// kind: RayCluster
    /// metadata:
    ///   name: analytics
    ///   namespace: default
    /// ```
    ///
    /// ## Fix
    /// Give each team or project its own namespace and set it explicitly:
    /// ```yaml
    /// metadata:
    ///   name: analytics
    ///   namespace: team-analytics
    /// ```
    pub struct DefaultNamespace {
        id: "RW201",
        name: "default-namespace",
        severity: Medium,
        section: "2",
        summary: "Ray object in the `default` namespace, or with no namespace",
        fix: "Set `metadata.namespace` to the team's own namespace (not `default`).",
        scope: Object,
        fixer: Some(&DefaultNamespace),
        companion: Some("`--namespace` sets every object's namespace (and emits the Namespace)"),
    }
}

impl Rule for DefaultNamespace {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let obj = w.obj;
        if !obj.kind.is_ray() {
            return;
        }
        let path = JsonPath::root().keys(&["metadata", "namespace"]);
        let ns = obj.metadata().and_then(|m| m.get("namespace"));
        match ns.and_then(Node::as_str) {
            Some("default") => out.report(
                obj,
                path,
                ns.map_or(object_pos(obj), |n| n.pos),
                format!(
                    "{} `{}` is in the `default` namespace, shared with everything else dropped there",
                    obj.kind_name, obj.name
                ),
            ),
            Some(s) if !s.is_empty() => {}
            _ => out.report(
                obj,
                path,
                object_pos(obj),
                format!(
                    "{} `{}` sets no `metadata.namespace`: it lands wherever kubectl points, often `default`",
                    obj.kind_name, obj.name
                ),
            ),
        }
    }
}

impl Fix for DefaultNamespace {
    fn safe(&self) -> bool {
        false
    }

    /// With `--namespace`, the object moves there. Without, where it belongs is the
    /// user's choice and the finding stays.
    fn fix(&self, obj: &mut Object, cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let Some(ns) = &cx.options.namespace else {
            return ch.list;
        };
        if let Some(meta) = obj.root.map_entry("metadata") {
            if meta.set("namespace", Node::string(ns.clone())) {
                ch.add(
                    &JsonPath::root().keys(&["metadata", "namespace"]),
                    format!("move to namespace `{ns}`"),
                );
            }
            obj.namespace = Some(ns.clone());
        }
        ch.list
    }
}
