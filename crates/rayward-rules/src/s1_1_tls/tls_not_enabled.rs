use super::{env_at, groups, operator_mtls, tls_of, Tls};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// The Ray container (the first container) of every head and worker group of a Ray
    /// cluster: RayCluster, RayJob `rayClusterSpec`, RayService `rayClusterConfig`,
    /// RayCronJob `jobTemplate.rayClusterSpec`. It reports a Ray container when
    /// - its cluster runs without TLS: no Ray container of the cluster sets
    ///   `RAY_USE_TLS=1` (or `true`); one finding per group, or
    /// - it sets `RAY_USE_TLS=1` but not all of `RAY_TLS_SERVER_CERT`,
    ///   `RAY_TLS_SERVER_KEY` and `RAY_TLS_CA_CERT` (a literal value and a `valueFrom`
    ///   both count as set): Ray refuses to start such a node.
    ///
    /// Not reported: clusters with `tlsOptions.enabled: true` (KubeRay's cert-manager mTLS
    /// sets the variables itself); containers whose variables may come from a non-empty
    /// `envFrom` that rayward cannot see. A cluster where some groups use TLS and others
    /// do not is RW102's finding (`tls-inconsistent`), not this rule's.
    ///
    /// ## Why it matters (guide §1.1)
    /// Without TLS, everything Ray nodes send each other (task arguments, objects, the
    /// GCS's cluster state) crosses the pod network in clear text, and any pod that can
    /// reach a node's ports can speak Ray's gRPC to it. With `RAY_USE_TLS=1` Ray enforces
    /// mutual TLS: a peer without a certificate from the cluster's CA is refused.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   image: rayproject/ray:2.52.0
    ///   # no RAY_USE_TLS: plaintext gRPC between nodes
    /// ```
    ///
    /// ## Fix
    /// On every Ray container (and the autoscaler, if enabled), with per-pod certificates
    /// whose SANs hold the pod IP (an init container can issue them, or `rayward certs`):
    /// ```yaml
    /// env:
    /// - {name: RAY_USE_TLS, value: "1"}
    /// - {name: RAY_TLS_SERVER_CERT, value: /etc/ray/tls/tls.crt}
    /// - {name: RAY_TLS_SERVER_KEY, value: /etc/ray/tls/tls.key}
    /// - {name: RAY_TLS_CA_CERT, value: /etc/ca/tls/ca.crt}
    /// ```
    /// or, with KubeRay's cert-manager integration, `spec.tlsOptions.enabled: true`.
    pub struct TlsNotEnabled {
        id: "RW101",
        name: "tls-not-enabled",
        severity: Medium,
        section: "1.1",
        summary: "Ray nodes talk to each other without TLS",
        fix: "Set RAY_USE_TLS=1 with RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT on every Ray container (or `tlsOptions.enabled: true`).",
        scope: Object,
        // The same fix for both TLS rules.
        fixer: Some(&super::TlsFix),
        companion: None,
    }
}

impl Rule for TlsNotEnabled {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (ci, cluster) in w.clusters.iter().enumerate() {
            if operator_mtls(cluster.node) {
                continue;
            }
            let groups = groups(w, ci);
            let states: Vec<Tls> = groups.iter().map(|g| tls_of(&g.ray)).collect();
            let any_on = states.iter().any(|s| matches!(s, Tls::On { .. }));
            for (g, state) in groups.iter().zip(&states) {
                let (path, pos) = env_at(&g.ray);
                let who = format!("Ray container `{}` ({})", g.ray.name(), g.label());
                match state {
                    Tls::Off if !any_on => out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "{who} runs without TLS: RAY_USE_TLS is not set to 1, so Ray's \
                             gRPC traffic between nodes is plaintext and unauthenticated"
                        ),
                    ),
                    Tls::On { missing } if !missing.is_empty() => out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "{who} sets RAY_USE_TLS=1 but not {}: Ray cannot start TLS \
                             without its certificate, key and CA",
                            missing.join(", ")
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}
