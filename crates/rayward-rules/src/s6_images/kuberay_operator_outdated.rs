use super::for_each_image;
use crate::util::image::ImageRef;
use crate::util::version::Version;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// The KubeRay operator's own workload (a container whose image is
    /// `…/kuberay/operator` or `…/kuberay-operator`, as KubeRay's Helm chart and
    /// kustomize base deploy it) running a release older than the first one that
    /// manages the security features the rest of rayward relies on. Read from the
    /// operator's Deployment, which `rayward audit --cluster` lists in every namespace.
    ///
    /// Known gaps by release (the table `GAPS` in this file; add a row when a KubeRay
    /// release fixes a security gap):
    /// - before **1.5.1**: no `spec.authOptions`, so the operator neither creates the Ray
    ///   token Secret nor sets the token env on the Ray containers; a RayCluster asking
    ///   for token auth runs without it (its CRD prunes the field);
    /// - before **1.7.0**: no `spec.networkPolicy` and no History Server (§1.5.2); a
    ///   cluster relying on KubeRay's own NetworkPolicy is open (a Low-weight gap, listed
    ///   with the others when present).
    ///
    /// A tag that is not a version (`latest`, a commit) cannot be judged and is left to
    /// RW601.
    ///
    /// ## Why it matters (guide §6, §1.5)
    /// The token auth, the NetworkPolicy and the clean-up the manifests ask for are
    /// carried out by the operator. An operator that predates them accepts the manifests
    /// and silently leaves the cluster open: the manifest audits clean and the cluster
    /// does not match it.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: apps/v1
    /// kind: Deployment
    /// metadata: {name: kuberay-operator, namespace: ray-system}
    /// spec:
    ///   template:
    ///     spec:
    ///       containers:
    ///       - name: kuberay-operator
    ///         image: quay.io/kuberay/operator:v1.1.0
    /// ```
    ///
    /// ## Fix
    /// Upgrade the operator (and its CRDs, which Helm does not upgrade on its own) to a
    /// current release, at least 1.5.1 (1.7.0 for `spec.networkPolicy`):
    /// ```sh
    /// helm upgrade kuberay-operator kuberay/kuberay-operator --version 1.5.1
    /// kubectl apply --server-side -k "github.com/ray-project/kuberay/ray-operator/config/crd?ref=v1.5.1"
    /// ```
    pub struct KuberayOperatorOutdated {
        id: "RW605",
        name: "kuberay-operator-outdated",
        severity: High,
        section: "6",
        summary: "KubeRay operator too old to carry out the cluster's security settings",
        fix: "Upgrade the KubeRay operator and its CRDs to 1.5.1 or later.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// (first release without the gap, what is missing before it), oldest gap first.
pub(crate) const GAPS: &[(Version, &str)] = &[
    (
        Version(1, 5, 1),
        "it predates `spec.authOptions`: Ray token authentication asked for in a RayCluster is not set up",
    ),
    (
        Version(1, 7, 0),
        "it predates `spec.networkPolicy` and the History Server, so a cluster relying on KubeRay's own NetworkPolicy gets none",
    ),
];

/// Whether the repository is the KubeRay operator's image.
fn is_operator(repository: &str) -> bool {
    repository.ends_with("kuberay/operator") || repository.ends_with("kuberay-operator")
}

impl Rule for KuberayOperatorOutdated {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for_each_image(w, |u| {
            let r = ImageRef::parse(u.image);
            if !is_operator(r.repository) {
                return;
            }
            let Some(v) = r.tag.and_then(Version::parse) else {
                return;
            };
            let gaps: Vec<&str> = GAPS
                .iter()
                .filter(|(fixed, _)| v < *fixed)
                .map(|(_, what)| *what)
                .collect();
            if gaps.is_empty() {
                return;
            }
            out.report(
                w.obj,
                u.path(),
                u.node.pos,
                format!(
                    "KubeRay operator {v} in {}: {}",
                    u.who(),
                    gaps.join("; and ")
                ),
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::is_operator;

    #[test]
    fn operator_repositories() {
        assert!(is_operator("quay.io/kuberay/operator"));
        assert!(is_operator("kuberay/operator"));
        assert!(is_operator("registry.example.com/mirror/kuberay-operator"));
        assert!(!is_operator("rayproject/ray"));
        assert!(!is_operator("kuberay/apiserver"));
    }
}
