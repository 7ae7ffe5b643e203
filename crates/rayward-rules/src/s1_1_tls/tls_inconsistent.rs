use super::{env_at, groups, operator_mtls, tls_of, Tls};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// Ray clusters (RayCluster, RayJob `rayClusterSpec`, RayService `rayClusterConfig`,
    /// RayCronJob) where some groups' Ray containers set `RAY_USE_TLS=1` and others do
    /// not. One finding per group without TLS, at its Ray container; when the autoscaler
    /// is enabled (`enableInTreeAutoscaling: true`) and the cluster uses TLS, the
    /// autoscaler container (`autoscalerOptions.env`, which KubeRay does not copy from the
    /// head) must set it too.
    ///
    /// A cluster without TLS anywhere is RW101's finding, not this rule's. Clusters with
    /// `tlsOptions.enabled: true` are skipped (the operator configures every pod), and so
    /// are containers whose `RAY_USE_TLS` may come from a non-empty `envFrom`.
    ///
    /// ## Why it matters (guide §1.1)
    /// Ray's TLS is mutual and all-or-nothing: a TLS node refuses plaintext peers and a
    /// plaintext node cannot talk to a TLS one. A half-configured cluster never forms
    /// (workers crash-loop against the head), and the usual "fix" under pressure is to
    /// turn TLS off everywhere.
    ///
    /// ## Example
    /// ```yaml
    /// headGroupSpec:
    ///   template:
    ///     spec:
    ///       containers:
    ///       - name: ray-head
    ///         env: [{name: RAY_USE_TLS, value: "1"}, ...]
    /// workerGroupSpecs:
    /// - groupName: gpu
    ///   template:
    ///     spec:
    ///       containers:
    ///       - name: ray-worker     # no RAY_USE_TLS: cannot join the head
    /// ```
    ///
    /// ## Fix
    /// Give every group (and the autoscaler) the same `RAY_USE_TLS=1`,
    /// `RAY_TLS_SERVER_CERT`, `RAY_TLS_SERVER_KEY`, `RAY_TLS_CA_CERT` env and the volumes
    /// holding per-pod certificates signed by the same CA.
    pub struct TlsInconsistent {
        id: "RW102",
        name: "tls-inconsistent",
        severity: High,
        section: "1.1",
        summary: "TLS is enabled on some Ray groups of a cluster but not on others",
        fix: "Set the same RAY_USE_TLS=1 and TLS cert/key/CA env on every group of the cluster, and on the autoscaler.",
        scope: Object,
        // The same fix for both TLS rules.
        fixer: Some(&super::TlsFix),
        companion: None,
    }
}

impl Rule for TlsInconsistent {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (ci, cluster) in w.clusters.iter().enumerate() {
            if operator_mtls(cluster.node) {
                continue;
            }
            let groups = groups(w, ci);
            let states: Vec<Tls> = groups.iter().map(|g| tls_of(&g.ray)).collect();
            let Some(with_tls) = groups
                .iter()
                .zip(&states)
                .find(|(_, s)| matches!(s, Tls::On { .. }))
                .map(|(g, _)| g.label())
            else {
                continue;
            };
            for (g, state) in groups.iter().zip(&states) {
                if *state == Tls::Off {
                    let (path, pos) = env_at(&g.ray);
                    out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "Ray container `{}` ({}) has no RAY_USE_TLS=1 while the {with_tls} \
                             uses TLS: its nodes cannot join the cluster (mutual TLS refuses \
                             plaintext peers)",
                            g.ray.name(),
                            g.label()
                        ),
                    );
                }
            }
            if let Some(a) = w.autoscaler(ci) {
                if tls_of(&a) == Tls::Off {
                    let (path, pos) = env_at(&a);
                    out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "the autoscaler has no RAY_USE_TLS=1 while the {with_tls} uses \
                             TLS: it cannot reach the GCS (set the TLS env and volume mounts \
                             in `autoscalerOptions`)"
                        ),
                    );
                }
            }
        }
    }
}
