use crate::util::rbac::{declared_service_account, kuberay_autoscaler_account};
use crate::util::tenancy::{is_ray_template, pod_display};
use crate::{declare_rule, Ctx, Rule, RuleMeta, Sink};
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
    }
}

impl Rule for DefaultServiceAccount {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

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
