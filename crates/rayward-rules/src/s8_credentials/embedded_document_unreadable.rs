use crate::util::embedded::{self, Embedded};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// The YAML documents Ray objects hold in strings — a RayJob's or RayCronJob's
    /// `runtimeEnvYAML` and a RayService's `serveConfigV2` — must be readable by rayward.
    /// One that is not (a syntax error, a value Kubernetes' reader refuses, an alias bomb
    /// or nesting past rayward's bounds for embedded documents: 1 MiB, 64 levels, 10,000
    /// alias nodes), or that is not the mapping KubeRay expects, is reported with the
    /// reason, at the line inside the string where a block scalar holds it.
    ///
    /// ## Why it matters (guide §8)
    /// These strings carry environment variables, often credentials (RW801 reads them).
    /// A document rayward cannot read is one it cannot check: a plaintext key inside it
    /// would pass the audit and the admission webhook unseen, while KubeRay, whose reader
    /// is more lenient or has no bounds, may read it fine. Nothing is skipped silently.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   runtimeEnvYAML: |
    ///     env_vars: {AWS_SECRET_ACCESS_KEY: "…"
    /// ```
    ///
    /// ## Fix
    /// Write the runtime environment as plain YAML rayward and KubeRay both read, without
    /// anchors that expand, and keep credentials out of it (reference a container env var:
    /// `"${MY_TOKEN}"`).
    pub struct EmbeddedDocumentUnreadable {
        id: "RW802",
        name: "embedded-document-unreadable",
        severity: High,
        section: "8",
        summary: "runtimeEnvYAML or serveConfigV2 that rayward cannot read (so cannot check)",
        fix: "Write the embedded document as plain YAML (no expanding anchors, within 1 MiB and 64 levels) so it can be checked; keep credentials out of it.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

impl Rule for EmbeddedDocumentUnreadable {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for f in embedded::fields(w.obj) {
            if let Err(e) = Embedded::parse(&f) {
                out.report(
                    w.obj,
                    f.path.clone(),
                    e.pos,
                    format!(
                        "`{}` cannot be read, so its content is not checked: {}",
                        f.name, e.reason
                    ),
                );
            }
        }
    }
}
