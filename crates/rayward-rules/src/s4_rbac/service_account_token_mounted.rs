use crate::fix::{for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::rbac::{effective_service_account, head_api_need};
use crate::util::tenancy::{is_ray_template, ns_key, pod_display};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, Kind, Node};
use rayward_manifest::{Object, PodRole, Workload};
use std::collections::HashMap;

declare_rule! {
    /// ## What it checks
    /// Ray head, worker and RayJob submitter pod templates that get the Kubernetes API
    /// token of their ServiceAccount mounted: the pod does not set
    /// `automountServiceAccountToken: false`, and, unless the pod sets it to `true`, no
    /// ServiceAccount of that name in the inputs (same namespace; unset counts as
    /// `default`) sets it to `false` either.
    ///
    /// Not flagged: a head pod that needs the API, namely with the autoscaler
    /// (`enableInTreeAutoscaling: true`), Kubernetes token auth
    /// (`authOptions.enableK8sTokenAuth: true` or `RAY_ENABLE_K8S_TOKEN_AUTH=true`) or
    /// platform-event ingestion (`RAY_DASHBOARD_INGEST_PLATFORM_EVENTS=true`). Turning the
    /// token off there breaks the cluster; the fix is a dedicated ServiceAccount bound to a
    /// minimal Role (RW401 reports a head on `default`, RW403 a Role that grants too
    /// much), not `automountServiceAccountToken: false`. Workers and submitters never need
    /// the automounted token (with token auth KubeRay mounts a projected one itself).
    ///
    /// ## Why it matters (guide §4)
    /// Every Ray job can read `/var/run/secrets/kubernetes.io/serviceaccount/token` and call
    /// the Kubernetes API as the pod's ServiceAccount. Ray jobs are not expected to call
    /// the API, so the token is only a gift to whoever gets code into Ray.
    ///
    /// ## Example
    /// ```yaml
    /// workerGroupSpecs:
    /// - groupName: cpu
    ///   template:
    ///     spec:
    ///       serviceAccountName: analytics-ray
    ///       containers: [{name: ray-worker, image: rayproject/ray:2.52.0}]
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    ///     spec:
    ///       serviceAccountName: analytics-ray
    ///       automountServiceAccountToken: false
    /// ```
    /// or set `automountServiceAccountToken: false` on the ServiceAccount itself.
    pub struct ServiceAccountTokenMounted {
        id: "RW402",
        name: "service-account-token-mounted",
        severity: Medium,
        section: "4",
        summary: "Ray pod mounts a Kubernetes API token it does not need",
        fix: "Set `automountServiceAccountToken: false` on the pod template (or on its ServiceAccount).",
        scope: JudgesOthers,
        fixer: Some(&ServiceAccountTokenMounted),
        companion: Some("the ServiceAccount `<name>-ray` sets `automountServiceAccountToken: false`"),
    }
}

impl Rule for ServiceAccountTokenMounted {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        // (namespace, name) -> the ServiceAccount's automountServiceAccountToken.
        let mut accounts: HashMap<(&str, &str), Option<bool>> = HashMap::new();
        for (_, sa) in inv.of_kind(Kind::ServiceAccount) {
            let am = sa
                .root
                .get("automountServiceAccountToken")
                .and_then(Node::as_bool);
            accounts.insert((ns_key(sa.namespace.as_deref()), sa.name.as_str()), am);
        }
        for p in &inv.pods {
            let w = &inv.workloads[p.obj];
            let t = &w.templates[p.template];
            if !is_ray_template(w, t) || head_api_need(w, t).is_some() {
                continue;
            }
            let field = t.field("automountServiceAccountToken");
            let sa = effective_service_account(w, t).unwrap_or_default();
            match field.and_then(Node::as_bool) {
                Some(false) => continue,
                Some(true) => {
                    out.report(
                        w.obj,
                        t.spec_path().key("automountServiceAccountToken"),
                        field.map_or(t.pos(), |n| n.pos),
                        format!(
                            "{} sets `automountServiceAccountToken: true`: every Ray job can use the API token of ServiceAccount `{sa}`",
                            pod_display(w, t)
                        ),
                    );
                    continue;
                }
                None => {}
            }
            let ns = ns_key(inv.pod_namespace(p));
            let why = match accounts.get(&(ns, sa.as_str())) {
                Some(Some(false)) => continue,
                Some(Some(true)) => format!(
                    "ServiceAccount `{sa}` sets `automountServiceAccountToken: true` and the pod does not override it"
                ),
                Some(None) => format!(
                    "neither the pod nor ServiceAccount `{sa}` sets `automountServiceAccountToken: false`"
                ),
                None => format!(
                    "the pod does not set `automountServiceAccountToken: false` (ServiceAccount `{sa}` is not in the inputs)"
                ),
            };
            out.report(
                w.obj,
                t.spec_path().key("automountServiceAccountToken"),
                t.pos(),
                format!(
                    "{} gets the Kubernetes API token of ServiceAccount `{sa}` mounted, which every Ray job can read: {why}",
                    pod_display(w, t)
                ),
            );
        }
    }
}

impl Fix for ServiceAccountTokenMounted {
    fn safe(&self) -> bool {
        true
    }

    /// Every Ray pod that does not talk to the Kubernetes API gets
    /// `automountServiceAccountToken: false`.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let keep: Vec<rayward_manifest::JsonPath> = {
            let w = Workload::templates_of(obj);
            w.templates
                .iter()
                .filter(|t| !is_ray_template(&w, t) || head_api_need(&w, t).is_some())
                .map(|t| t.spec_path())
                .collect()
        };
        for_each_pod_spec(obj, |t, spec| {
            if keep.contains(&t.spec_path) || t.role == PodRole::Workload {
                return;
            }
            if spec
                .get("automountServiceAccountToken")
                .and_then(Node::as_bool)
                != Some(false)
            {
                spec.set("automountServiceAccountToken", Node::boolean(false));
                ch.add(
                    &t.spec_path.key("automountServiceAccountToken"),
                    "do not mount the Kubernetes API token",
                );
            }
        });
        ch.list
    }
}
