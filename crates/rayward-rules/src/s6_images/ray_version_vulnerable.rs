use super::RayImage;
use crate::util::image::ImageRef;
use crate::util::version::{cluster_version, from_image, Version, VersionSource};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::ray::NODE_TYPE_LABEL;
use rayward_manifest::{ContainerKind, Kind, Node, PodRole, Workload};

declare_rule! {
    /// ## What it checks
    /// Every Ray cluster (RayCluster, RayJob `rayClusterSpec`, RayService
    /// `rayClusterConfig`, RayCronJob `jobTemplate.rayClusterSpec`) whose Ray version is
    /// affected by a known Ray CVE (the table below; the rule's `CVES` array). The version
    /// is the tag of the head's Ray container image (`rayproject/ray:2.46.0-py310`,
    /// `rayproject/ray-ml:…`, `…/ray-llm:…`), else `rayVersion`. Worker groups can run
    /// another image: each group whose Ray container image names a different version is
    /// checked and reported on its own.
    ///
    /// Running Ray pods (Pods labelled `ray.io/node-type`, as `rayward audit --cluster`
    /// reads them) are judged by the Ray version they actually run: the image the
    /// kubelet reports in `status.containerStatuses` for the Ray container (the first
    /// container), with its digest, else the image of the spec.
    ///
    /// | CVE | what | fixed in |
    /// |---|---|---|
    /// | CVE-2023-6019 | command injection through the dashboard's `cpu_profile` route | 2.8.1 |
    /// | CVE-2023-6020 | arbitrary file read through the dashboard | 2.8.1 |
    /// | CVE-2023-6021 | arbitrary file read through the dashboard | 2.8.1 |
    /// | CVE-2023-48023 | server-side request forgery through the dashboard | 2.8.1 |
    /// | CVE-2025-1979 | Redis password written to logs | 2.43.0 |
    /// | CVE-2025-62593 | DNS rebinding lets a browser reach the Jobs API | 2.52.0 |
    /// | CVE-2023-48022 | ShadowRay: the Jobs API runs code for anyone; Ray has no token authentication before 2.52.0, so it cannot be mitigated in Ray itself | 2.52.0 (token auth) |
    /// | CVE-2026-27482 | unauthenticated DELETE requests | 2.54.0 |
    /// | CVE-2026-41486 | an Arrow extension type leads to a cloudpickle load | 2.55.0 |
    /// | CVE-2026-57516 | pickle load of WebDataset data | 2.56.0 |
    ///
    /// One finding per cluster (and per worker group whose image differs), naming every
    /// CVE that applies and the first version that fixes them all. When `min-ray-version`
    /// is configured (e.g. `min-ray-version = "2.54.0"`), older versions are findings too,
    /// even without a CVE (an unparsable setting is ignored).
    ///
    /// The finding points at the image when the version came from it, else at `rayVersion`.
    /// A Ray image whose tag names no version (`rayproject/ray:nightly`, a commit hash) runs
    /// an unknown build: `rayVersion` is not used for it then (RW601 reports the tag). An
    /// image pinned by digest alone (`rayproject/ray@sha256:…`, what RW601 recommends) says
    /// nothing about its version, so `rayVersion` is what is checked.
    /// The autoscaler and submitter images are not checked: the CVEs are in Ray's
    /// dashboard, Jobs API and data paths, which run in the head and worker containers.
    ///
    /// ## Why it matters (guide §6)
    /// The guide asks for scanned, secure images; an image with a known Ray CVE fails that
    /// scan. Ray's dashboard and Jobs API run code by design, and these CVEs widen who can
    /// reach them (DNS rebinding from a browser, SSRF, file reads, unauthenticated deletes).
    /// Before 2.52.0 Ray cannot authenticate its Jobs API at all (ShadowRay, exploited in
    /// the wild), so only network controls stand between a caller and code execution.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   rayVersion: "2.41.0"
    ///   headGroupSpec:
    ///     template:
    ///       spec:
    ///         containers:
    ///         - name: ray-head
    ///           image: rayproject/ray:2.41.0
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
    pub struct RayVersionVulnerable {
        id: "RW603",
        name: "ray-version-vulnerable",
        severity: High,
        section: "6",
        summary: "Ray version has known CVEs (or is older than `min-ray-version`)",
        fix: "Upgrade the Ray image and `rayVersion` to a release that fixes the listed CVEs.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// A Ray vulnerability and the first release that is free of it.
#[derive(Debug)]
pub struct Cve {
    pub id: &'static str,
    pub what: &'static str,
    pub fixed: Version,
    /// True for a flaw by design that `fixed` only lets an operator close (ShadowRay).
    pub by_design: bool,
}

/// Ray CVEs by the release that fixes them (CONTEXT §10). CVE-2023-48022 (ShadowRay) is by
/// design in every version without authentication; its "fix" is 2.52.0, the first Ray with
/// token authentication (`RAY_AUTH_MODE=token`), which the operator must still turn on.
pub const CVES: &[Cve] = &[
    Cve {
        id: "CVE-2023-6019",
        what: "command injection through the dashboard's cpu_profile route",
        fixed: Version(2, 8, 1),
        by_design: false,
    },
    Cve {
        id: "CVE-2023-6020",
        what: "arbitrary file read through the dashboard",
        fixed: Version(2, 8, 1),
        by_design: false,
    },
    Cve {
        id: "CVE-2023-6021",
        what: "arbitrary file read through the dashboard",
        fixed: Version(2, 8, 1),
        by_design: false,
    },
    Cve {
        id: "CVE-2023-48023",
        what: "server-side request forgery through the dashboard",
        fixed: Version(2, 8, 1),
        by_design: false,
    },
    Cve {
        id: "CVE-2025-1979",
        what: "Redis password written to logs",
        fixed: Version(2, 43, 0),
        by_design: false,
    },
    Cve {
        id: "CVE-2025-62593",
        what: "DNS rebinding lets a browser reach the Jobs API",
        fixed: Version(2, 52, 0),
        by_design: false,
    },
    Cve {
        id: "CVE-2023-48022",
        what: "ShadowRay: the Jobs API runs code for anyone who reaches it",
        fixed: Version(2, 52, 0),
        by_design: true,
    },
    Cve {
        id: "CVE-2026-27482",
        what: "unauthenticated DELETE requests",
        fixed: Version(2, 54, 0),
        by_design: false,
    },
    Cve {
        id: "CVE-2026-41486",
        what: "an Arrow extension type leads to a cloudpickle load",
        fixed: Version(2, 55, 0),
        by_design: false,
    },
    Cve {
        id: "CVE-2026-57516",
        what: "pickle load of WebDataset data",
        fixed: Version(2, 56, 0),
        by_design: false,
    },
];

/// What is wrong with a version: the message body and the version to upgrade to.
fn assess(v: Version, min: Option<Version>) -> Option<(String, Version)> {
    let cves: Vec<&Cve> = CVES.iter().filter(|c| v < c.fixed).collect();
    let below_min = min.filter(|m| v < *m);
    if cves.is_empty() && below_min.is_none() {
        return None;
    }
    let target = cves
        .iter()
        .map(|c| c.fixed)
        .chain(below_min)
        .max()
        .unwrap_or(v);
    let mut msg = String::new();
    if !cves.is_empty() {
        msg.push_str("is affected by ");
        let list: Vec<String> = cves
            .iter()
            .map(|c| {
                if c.by_design {
                    format!(
                        "{} ({}; Ray has no token authentication before {}, so it cannot be mitigated in Ray itself)",
                        c.id, c.what, c.fixed
                    )
                } else {
                    format!("{} ({}, fixed in {})", c.id, c.what, c.fixed)
                }
            })
            .collect();
        msg.push_str(&list.join(", "));
    }
    if let Some(m) = below_min {
        if !msg.is_empty() {
            msg.push_str("; it ");
        }
        msg.push_str(&format!(
            "is older than the configured minimum Ray version {m}"
        ));
    }
    msg.push_str(&format!("; upgrade to Ray {target} or later"));
    Some((msg, target))
}

/// Whether an image is a Ray image (`…/ray`, `…/ray-ml`, `…/ray-llm`, …).
fn is_ray_image(image: &str) -> bool {
    let r = crate::util::image::ImageRef::parse(image);
    let last = r.repository.rsplit('/').next().unwrap_or("");
    last == "ray" || last.starts_with("ray-") || last.starts_with("ray_")
}

/// The Ray version a running Ray pod really runs: its Ray container's image as the
/// kubelet reports it (with the digest it resolved to), else as the spec asks.
fn check_running_pod(w: &Workload<'_>, min: Option<Version>, out: &mut Sink<'_>) {
    let obj = w.obj;
    if obj.kind != Kind::Pod || !obj.labels().iter().any(|(k, _)| *k == NODE_TYPE_LABEL) {
        return;
    }
    let Some((_, c)) = w
        .containers()
        .into_iter()
        .find(|(_, c)| c.kind == ContainerKind::Main && c.index == 0)
    else {
        return;
    };
    let name = c.get("name").and_then(Node::as_str).unwrap_or("");
    let status = obj
        .root
        .path(&["status", "containerStatuses"])
        .and_then(|s| {
            s.as_seq()
                .iter()
                .find(|cs| cs.get("name").and_then(Node::as_str) == Some(name))
        });
    let running = status.and_then(|s| s.get("image")).and_then(Node::as_str);
    let digest = status
        .and_then(|s| s.get("imageID"))
        .and_then(Node::as_str)
        .and_then(|id| id.rsplit_once('@').map(|(_, d)| d));
    let Some(image) = running.or(c.image()) else {
        return;
    };
    let Some(v) = from_image(image) else { return };
    let Some((msg, target)) = assess(v, min) else {
        return;
    };
    let how = match (running, digest) {
        (Some(_), Some(d)) => format!("runs image `{image}` ({d})"),
        (Some(_), None) => format!("runs image `{image}`"),
        _ => format!("is to run image `{image}`"),
    };
    let pos = c.get("image").map_or(c.pos, |n| n.pos);
    out.report_fix(
        obj,
        c.field_path("image"),
        pos,
        format!(
            "Ray {v}: container `{name}` of Ray pod `{}` {how}, which {msg}",
            obj.name
        ),
        format!("Upgrade the owner's Ray image to {target} or later and recreate the pod."),
    );
}

impl Rule for RayVersionVulnerable {
    fn check(&self, w: &Workload<'_>, cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let min = cx
            .settings
            .min_ray_version
            .as_deref()
            .and_then(Version::parse);
        check_running_pod(w, min, out);
        for (ci, cluster) in w.clusters.iter().enumerate() {
            let head_image = w.head_of(ci).and_then(RayImage::of);
            // A Ray image whose tag names no version runs an unknown build; rayVersion is
            // then only a claim about it. A digest alone names no build: rayVersion holds.
            let unknown_build = head_image.as_ref().is_some_and(|h| {
                is_ray_image(h.image)
                    && ImageRef::parse(h.image).tag.is_some()
                    && from_image(h.image).is_none()
            });
            let version = cluster_version(w, ci)
                .filter(|(_, src)| !(unknown_build && *src == VersionSource::RayVersion));
            if let Some((v, src)) = &version {
                if let Some((msg, target)) = assess(*v, min) {
                    let fix = format!(
                        "Upgrade the Ray image and `rayVersion` to {target} or later (e.g. `rayproject/ray:{target}`)."
                    );
                    match (src, &head_image) {
                        (VersionSource::Image(img), Some(h)) => out.report_fix(
                            w.obj,
                            h.path(),
                            h.node.pos,
                            format!("Ray {v} (image `{img}` of the head group) {msg}"),
                            fix,
                        ),
                        (VersionSource::Image(_), None) => {}
                        (VersionSource::RayVersion, _) => {
                            if let Some(n) = cluster.get("rayVersion") {
                                out.report_fix(
                                    w.obj,
                                    cluster.path.key("rayVersion"),
                                    n.pos,
                                    format!("Ray {v} (`rayVersion`) {msg}"),
                                    fix,
                                );
                            }
                        }
                    }
                }
            }
            let cluster_v = version.map(|(v, _)| v);
            for t in w.templates.iter().filter(|t| t.cluster == Some(ci)) {
                let PodRole::Worker { group } = &t.role else {
                    continue;
                };
                let Some(ri) = RayImage::of(t) else { continue };
                let Some(v) = from_image(ri.image) else {
                    continue;
                };
                if Some(v) == cluster_v {
                    continue;
                }
                if let Some((msg, target)) = assess(v, min) {
                    let differs = match cluster_v {
                        Some(cv) => format!(", unlike the cluster's {cv}"),
                        None => String::new(),
                    };
                    out.report_fix(
                        w.obj,
                        ri.path(),
                        ri.node.pos,
                        format!(
                            "Ray {v} (image `{}` of worker group `{group}`{differs}) {msg}",
                            ri.image
                        ),
                        format!("Upgrade this group's Ray image to {target} or later, the same version as the head."),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assesses_versions() {
        let (msg, t) = assess(Version(2, 8, 0), None).unwrap();
        assert!(msg.contains("CVE-2023-6019") && msg.contains("CVE-2023-48022"));
        assert_eq!(t, Version(2, 56, 0));
        let (msg, t) = assess(Version(2, 54, 0), None).unwrap();
        assert!(msg.contains("CVE-2026-57516") && !msg.contains("CVE-2026-27482"));
        assert_eq!(t, Version(2, 56, 0));
        assert!(assess(Version(2, 56, 0), None).is_none());
        let (msg, _) = assess(Version(2, 54, 1), None).unwrap();
        assert!(msg.contains("CVE-2026-41486"), "{msg}");
        assert!(!assess(Version(2, 55, 0), None)
            .unwrap()
            .0
            .contains("CVE-2026-41486"));
        let (msg, t) = assess(Version(2, 56, 0), Some(Version(2, 58, 0))).unwrap();
        assert!(msg.contains("minimum") && !msg.contains("CVE"));
        assert_eq!(t, Version(2, 58, 0));
        assert!(assess(Version(2, 58, 1), Some(Version(2, 58, 0))).is_none());
    }
}
