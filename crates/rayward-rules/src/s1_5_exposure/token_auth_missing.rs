use super::{cluster_at, cluster_auth, Auth};
use crate::fix::{Changes, Fix, FixContext};
use crate::util::version::{cluster_version, Version, VersionSource};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{JsonPath, Node, Object, Workload};

/// The first Ray release with token authentication.
const TOKEN_AUTH_SINCE: Version = Version(2, 52, 0);

declare_rule! {
    /// ## What it checks
    /// Ray clusters (RayCluster, RayJob `rayClusterSpec`, RayService `rayClusterConfig`,
    /// RayCronJob) running Ray 2.52.0 or later — the version of the head's Ray image tag,
    /// else `rayVersion` — that have no token authentication: neither
    /// `authOptions.mode: token` (KubeRay ≥ 1.5.1; `enableK8sTokenAuth: true` counts too)
    /// nor `RAY_AUTH_MODE=token` on the head's Ray container.
    ///
    /// Not reported: clusters older than 2.52, which cannot enable token auth (RW603
    /// reports their CVEs and asks for an upgrade); clusters whose version is unknown;
    /// clusters that disable auth explicitly (RW115's finding); and clusters whose
    /// `RAY_AUTH_MODE` comes from a reference or `envFrom` rayward cannot read.
    ///
    /// ## Why it matters (guide §1.2, §1.5)
    /// Without authentication anyone who reaches the dashboard (8265), the dashboard agent
    /// (52365), the GCS (6379) or Ray Client (10001) runs code on the cluster
    /// (CVE-2023-48022, "ShadowRay", exploited in the wild). Since 2.52 Ray can require a
    /// bearer token on all of them; `ray start --head`, which KubeRay uses, only enables it
    /// when told to.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayCluster
    /// spec:
    ///   rayVersion: "2.53.0"
    ///   headGroupSpec: ...   # no authOptions
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// spec:
    ///   authOptions:
    ///     mode: token        # KubeRay creates the Secret and sets the env on every node
    /// ```
    /// or, without KubeRay's support, `RAY_AUTH_MODE=token` and `RAY_AUTH_TOKEN` from a
    /// Secret (`valueFrom.secretKeyRef`) on every Ray container. Token auth is one shared
    /// secret without per-user identity: keep the dashboard private as well.
    pub struct TokenAuthMissing {
        id: "RW114",
        name: "token-auth-missing",
        severity: High,
        section: "1.5",
        summary: "Ray ≥ 2.52 cluster without token authentication",
        fix: "Set `spec.authOptions.mode: token` (or RAY_AUTH_MODE=token with RAY_AUTH_TOKEN from a Secret on every Ray container).",
        scope: Object,
        fixer: Some(&TokenAuthMissing),
        companion: None,
    }
}

impl Rule for TokenAuthMissing {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for ci in 0..w.clusters.len() {
            let Some((version, source)) = cluster_version(w, ci) else {
                continue;
            };
            if version < TOKEN_AUTH_SINCE || cluster_auth(w, ci) != Auth::Off {
                continue;
            }
            let from = match source {
                VersionSource::Image(img) => format!("image `{img}`"),
                VersionSource::RayVersion => "`rayVersion`".to_string(),
            };
            let (path, pos) = cluster_at(w, ci);
            out.report(
                w.obj,
                path.keys(&["authOptions", "mode"]),
                pos,
                format!(
                    "Ray {version} (from {from}) supports token authentication but this cluster \
                     does not enable it: anyone reaching its dashboard, agent, GCS or client \
                     port runs code"
                ),
            );
        }
    }
}

impl Fix for TokenAuthMissing {
    fn safe(&self) -> bool {
        true
    }

    /// `authOptions.mode: token` on every cluster of Ray 2.52 or newer without auth
    /// (KubeRay then creates the token Secret and sets the env on every Ray container).
    /// Older Ray has no token auth: the finding of RW603/RW114 stays for the user.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let targets: Vec<JsonPath> = {
            let w = Workload::of(obj);
            (0..w.clusters.len())
                .filter(|&ci| {
                    cluster_version(&w, ci).is_some_and(|(v, _)| v >= TOKEN_AUTH_SINCE)
                        && cluster_auth(&w, ci) == Auth::Off
                })
                .map(|ci| w.clusters[ci].path.clone())
                .collect()
        };
        for cp in targets {
            if let Some(auth) = obj
                .root
                .at_path_mut(&cp)
                .and_then(|c| c.map_entry("authOptions"))
            {
                if auth.set("mode", Node::string("token")) {
                    ch.add(
                        &cp.keys(&["authOptions", "mode"]),
                        "turn on token authentication",
                    );
                }
            }
        }
        ch.list
    }
}
