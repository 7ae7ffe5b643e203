use super::RayImage;
use crate::util::version::{from_image, Version};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// Ray clusters (RayCluster, RayJob `rayClusterSpec`, RayService `rayClusterConfig`,
    /// RayCronJob `jobTemplate.rayClusterSpec`) whose `rayVersion` differs from the version
    /// in the tag of a Ray container image (the first container of the head and of each
    /// worker group, e.g. `rayproject/ray:2.52.0-py310`). Versions compare as
    /// `major.minor.patch`; a `rayVersion` of only `major.minor` (`"2.52"`) compares those
    /// two. Images without a version tag, non-Ray images and clusters without a parsable
    /// `rayVersion` are not reported.
    ///
    /// ## Why it matters (guide §6)
    /// KubeRay does not read the image: it decides from `rayVersion` which Ray features the
    /// cluster has, e.g. whether to configure token authentication (Ray ≥ 2.52). A cluster
    /// that claims 2.52 but runs 2.46 gets settings its Ray ignores (no authentication, with
    /// nothing saying so); one that claims an old version while running a new one loses
    /// protections KubeRay would have turned on. Version audits that read `rayVersion`
    /// are misled the same way.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   rayVersion: "2.52.0"
    ///   headGroupSpec:
    ///     template:
    ///       spec:
    ///         containers:
    ///         - name: ray-head
    ///           image: rayproject/ray:2.46.0
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// spec:
    ///   rayVersion: "2.56.0"
    ///   headGroupSpec:
    ///     template:
    ///       spec:
    ///         containers:
    ///         - name: ray-head
    ///           image: rayproject/ray:2.56.0
    /// ```
    pub struct RayVersionMismatch {
        id: "RW604",
        name: "ray-version-mismatch",
        severity: Low,
        section: "6",
        summary: "`rayVersion` differs from the Ray version of a Ray container image",
        fix: "Set `rayVersion` to the Ray version of the image (and use one version for every group).",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// Whether `image` runs another version than `declared` (which may omit the patch).
fn differs(declared: Version, parts: usize, image: Version) -> bool {
    if parts < 3 {
        (declared.0, declared.1) != (image.0, image.1)
    } else {
        declared != image
    }
}

impl Rule for RayVersionMismatch {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (ci, cluster) in w.clusters.iter().enumerate() {
            let Some(text) = cluster.ray_version() else {
                continue;
            };
            let Some(declared) = Version::parse(text) else {
                continue;
            };
            let parts = text
                .trim()
                .split('.')
                .take_while(|p| p.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
                .count();
            for t in w.templates.iter().filter(|t| t.cluster == Some(ci)) {
                let Some(ri) = RayImage::of(t) else { continue };
                let Some(v) = from_image(ri.image) else {
                    continue;
                };
                if !differs(declared, parts, v) {
                    continue;
                }
                out.report(
                    w.obj,
                    ri.path(),
                    ri.node.pos,
                    format!(
                        "image `{}` of {} runs Ray {v}, but `rayVersion` is {}: KubeRay configures the cluster for the version `rayVersion` names",
                        ri.image,
                        ri.who(),
                        text.trim()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_declared_parts() {
        assert!(!differs(Version(2, 52, 0), 3, Version(2, 52, 0)));
        assert!(differs(Version(2, 52, 0), 3, Version(2, 52, 1)));
        assert!(!differs(Version(2, 52, 0), 2, Version(2, 52, 1)));
        assert!(differs(Version(2, 52, 0), 2, Version(2, 46, 0)));
    }
}
