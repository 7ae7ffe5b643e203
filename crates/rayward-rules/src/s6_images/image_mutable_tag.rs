use super::for_each_image;
use crate::util::image::ImageRef;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// Every container image (init and main containers of Ray head and worker groups, the
    /// autoscaler's `autoscalerOptions.image`, RayJob submitters, plain workloads) that is not
    /// pinned by digest and either has no tag (which means `latest`) or has a tag that is
    /// moved from build to build:
    ///
    /// - the whole tag (any case) is one of `latest`, `stable`, `edge`, `nightly`,
    ///   `master`, `main`, `dev`, `develop`, `canary`, `snapshot`, `unstable`;
    /// - or one of its `-`-separated parts is `latest`, `nightly` or `snapshot`
    ///   (`nightly-py310-gpu`, `latest-gpu`, `py311-nightly`, `2.10.0-SNAPSHOT`).
    ///
    /// Images pinned by digest (`…@sha256:…`) are never reported, whatever their tag.
    /// Release tags such as `2.52.0-py310` or `v0.1.0` are accepted (a digest is still best).
    /// Templated values (`$IMAGE`, `{{ .Values.image }}`) are skipped.
    ///
    /// ## Why it matters (guide §6)
    /// The guide asks for scanned, securely delivered images. A mutable tag makes the scan
    /// meaningless: the image that runs tomorrow is not the one that was scanned, nodes pull
    /// different builds, and anyone who can push the tag controls what runs next to Ray's
    /// credentials. `rayproject/ray:nightly` is an unreleased build.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   image: rayproject/ray:nightly
    /// - name: log-shipper
    ///   image: fluent/fluent-bit
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   image: rayproject/ray:2.56.0-py310@sha256:<digest of the scanned image>
    /// - name: log-shipper
    ///   image: fluent/fluent-bit:3.2.2
    /// ```
    pub struct ImageMutableTag {
        id: "RW601",
        name: "image-mutable-tag",
        severity: Medium,
        section: "6",
        summary: "Container image has no tag or a mutable tag (latest, nightly, …)",
        fix: "Pin the image to a release tag (e.g. `rayproject/ray:2.56.0-py310`), best by digest (`…@sha256:<digest>`).",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// Tags that are moved to new builds, matched whole (any case).
const MUTABLE_TAGS: &[&str] = &[
    "latest", "stable", "edge", "nightly", "master", "main", "dev", "develop", "canary",
    "snapshot", "unstable",
];

/// Parts of a `-`-separated tag that make it mutable wherever they appear.
const MUTABLE_PARTS: &[&str] = &["latest", "nightly", "snapshot"];

/// Whether a tag names a moving build rather than a release.
pub(crate) fn is_mutable_tag(tag: &str) -> bool {
    MUTABLE_TAGS.iter().any(|t| tag.eq_ignore_ascii_case(t))
        || tag
            .split('-')
            .any(|part| MUTABLE_PARTS.iter().any(|p| part.eq_ignore_ascii_case(p)))
}

impl Rule for ImageMutableTag {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for_each_image(w, |u| {
            let r = ImageRef::parse(u.image);
            if r.digest.is_some() {
                return;
            }
            let problem = match r.tag {
                None | Some("") => "has no tag, so it pulls whatever `latest` is".to_string(),
                Some(t) if is_mutable_tag(t) => format!("uses the mutable tag `{t}`"),
                Some(_) => return,
            };
            out.report(
                w.obj,
                u.path(),
                u.node.pos,
                format!(
                    "image `{}` of {} {problem}: what runs is not what was scanned",
                    u.image,
                    u.who()
                ),
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::is_mutable_tag;

    #[test]
    fn mutable_tags() {
        for t in [
            "latest",
            "Latest",
            "nightly",
            "nightly-py310-gpu",
            "py311-nightly",
            "latest-gpu",
            "master",
            "2.10.0-SNAPSHOT",
        ] {
            assert!(is_mutable_tag(t), "{t}");
        }
        for t in [
            "2.52.0-py310",
            "v0.1.0",
            "3.2.2",
            "mainline-1",
            "devel-2.1",
            "tag",
        ] {
            assert!(!is_mutable_tag(t), "{t}");
        }
    }
}
