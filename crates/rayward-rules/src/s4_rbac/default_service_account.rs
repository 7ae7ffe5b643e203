use crate::fix::{for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::rbac::dedicated_service_account;
use crate::util::rbac::{declared_service_account, kuberay_autoscaler_account};
use crate::util::tenancy::{is_ray_template, pod_display};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node, Object};
use rayward_manifest::{PodRole, Workload};

declare_rule! {
    /// ## What it checks
    /// Ray head, worker and RayJob submitter pod templates whose `serviceAccountName` (or
    /// the deprecated `serviceAccount`) is missing or `default`. One finding per template.
    ///
    /// Not flagged: the head of a cluster with `enableInTreeAutoscaling: true` and no
    /// `serviceAccountName`. KubeRay runs that head as a ServiceAccount named after the
    /// cluster, which it creates and binds to a Role limited to what the autoscaler needs
    /// (pods and rayclusters). Flagged, on the other hand, is such a head that names
    /// `default` explicitly: KubeRay then binds its autoscaler Role to the namespace's
    /// `default` account, which hands pod-patching rights to every pod that sets no account.
    ///
    /// ## Why it matters (guide §4)
    /// Every pod without an account runs as the namespace's `default` ServiceAccount, so
    /// anything granted to it (by a chart, an operator, a colleague) is granted to Ray too,
    /// and Ray runs whatever code is submitted to it. A dedicated account per cluster keeps
    /// its rights to what it needs (usually nothing) and makes bindings auditable.
    ///
    /// ## Example
    /// ```yaml
    /// workerGroupSpecs:
    /// - groupName: cpu
    ///   template:
    ///     spec:
    ///       containers: [{name: ray-worker, image: rayproject/ray:2.52.0}]
    /// ```
    ///
    /// ## Fix
    /// Create a ServiceAccount per Ray cluster, with no token unless the pods need the
    /// Kubernetes API, and name it in every template:
    /// ```yaml
    /// apiVersion: v1
    /// kind: ServiceAccount
    /// metadata: {name: analytics-ray, namespace: team-analytics}
    /// automountServiceAccountToken: false
    /// ---
    /// # in the head, worker and submitter templates:
    ///     spec:
    ///       serviceAccountName: analytics-ray
    /// ```
    pub struct DefaultServiceAccount {
        id: "RW401",
        name: "default-service-account",
        severity: Medium,
        section: "4",
        summary: "Ray pod runs as the namespace's `default` ServiceAccount",
        fix: "Set `serviceAccountName` to a ServiceAccount dedicated to this Ray cluster.",
        scope: Object,
        fixer: Some(&DefaultServiceAccount),
        companion: Some("the ServiceAccount `<name>-ray` (token automount off)"),
    }
}

impl Rule for DefaultServiceAccount {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for t in &w.templates {
            if !is_ray_template(w, t) {
                continue;
            }
            let autoscaler = t.role == PodRole::Head
                && t.cluster
                    .and_then(|c| w.clusters.get(c))
                    .is_some_and(|c| c.autoscaler_enabled());
            match declared_service_account(t) {
                Some(("default", node, field)) => {
                    let extra = if autoscaler {
                        "; with `enableInTreeAutoscaling: true` KubeRay also binds its autoscaler Role (patch pods and rayclusters) to it, for every pod that sets no account"
                    } else {
                        ""
                    };
                    out.report(
                        w.obj,
                        t.spec_path().key(field),
                        node.pos,
                        format!(
                            "{} runs as the namespace's `default` ServiceAccount{extra}",
                            pod_display(w, t)
                        ),
                    );
                }
                Some(_) => {}
                None if kuberay_autoscaler_account(w, t) => {}
                None => out.report(
                    w.obj,
                    t.spec_path().key("serviceAccountName"),
                    t.pos(),
                    format!(
                        "{} sets no `serviceAccountName`: it runs as the namespace's `default` ServiceAccount, with whatever rights that account has",
                        pod_display(w, t)
                    ),
                ),
            }
        }
    }
}

impl Fix for DefaultServiceAccount {
    fn safe(&self) -> bool {
        false
    }

    /// Every Ray pod (head, workers, submitter) that runs as `default` or names no account
    /// gets the dedicated `<object>-ray` ServiceAccount, which harden generates beside the
    /// object with token automount off; a head that talks to the Kubernetes API (the
    /// autoscaler) gets `automountServiceAccountToken: true` on the pod, and the autoscaler
    /// Role is bound to that account.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let sa = dedicated_service_account(&obj.name);
        let api_heads: Vec<rayward_manifest::JsonPath> = {
            let w = Workload::templates_of(obj);
            w.templates
                .iter()
                .filter(|t| crate::util::rbac::head_api_need(&w, t).is_some())
                .map(|t| t.spec_path())
                .collect()
        };
        let kind = obj.kind;
        for_each_pod_spec(obj, |t, spec| {
            if !kind.is_ray() || t.role == PodRole::Workload {
                return;
            }
            let declared = ["serviceAccountName", "serviceAccount"]
                .iter()
                .find_map(|f| spec.get(f).and_then(Node::as_str).filter(|s| !s.is_empty()));
            if declared.is_some_and(|s| s != "default") {
                return;
            }
            if spec.remove("serviceAccount") {
                ch.add(
                    &t.spec_path.key("serviceAccount"),
                    "remove the deprecated `serviceAccount` (replaced by `serviceAccountName`)",
                );
            }
            spec.set("serviceAccountName", Node::string(sa.clone()));
            ch.add(
                &t.spec_path.key("serviceAccountName"),
                format!("run as the dedicated ServiceAccount `{sa}`"),
            );
            if api_heads.contains(&t.spec_path)
                && spec.set_default("automountServiceAccountToken", Node::boolean(true))
            {
                ch.add(
                    &t.spec_path.key("automountServiceAccountToken"),
                    "keep the API token: the autoscaler needs it",
                );
            }
        });
        ch.list
    }
}
