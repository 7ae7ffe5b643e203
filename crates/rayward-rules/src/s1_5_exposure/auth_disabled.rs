use crate::{declare_rule, Ctx, Rule, RuleMeta, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// Ray clusters that turn Ray's authentication off explicitly: `authOptions.mode:
    /// disabled` in any Ray cluster spec (RayCluster, RayJob `rayClusterSpec`, RayService
    /// `rayClusterConfig`, RayCronJob), or `RAY_AUTH_MODE=disabled` on the Ray container
    /// of any head or worker group.
    ///
    /// ## Why it matters (guide §1.2, §1.5)
    /// An explicit `disabled` survives Ray's move to authentication by default (on for
    /// `ray.init()` clusters since 2.59, planned for every cluster in 2.61) and leaves the
    /// Jobs API, the dashboard agent, the GCS and Ray Client open to whoever reaches them.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   authOptions:
    ///     mode: disabled
    /// ```
    ///
    /// ## Fix
    /// `authOptions.mode: token` (or remove `RAY_AUTH_MODE=disabled` and set it to
    /// `token` with `RAY_AUTH_TOKEN` from a Secret).
    pub struct AuthDisabled {
        id: "RW115",
        name: "auth-disabled",
        severity: High,
        section: "1.5",
        summary: "Ray authentication is explicitly disabled",
        fix: "Use `authOptions.mode: token` (or RAY_AUTH_MODE=token with RAY_AUTH_TOKEN from a Secret).",
    }
}

impl Rule for AuthDisabled {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for c in &w.clusters {
            if let Some(mode) = c.node.path(&["authOptions", "mode"]) {
                if mode
                    .as_str()
                    .is_some_and(|m| m.eq_ignore_ascii_case("disabled"))
                {
                    out.report(
                        w.obj,
                        c.path.keys(&["authOptions", "mode"]),
                        mode.pos,
                        "`authOptions.mode: disabled` turns Ray's token authentication off: \
                         the dashboard, Jobs API, GCS and Ray Client accept anyone",
                    );
                }
            }
        }
        for t in w.templates.iter().filter(|t| t.role.is_ray_node()) {
            for c in t.containers().into_iter().filter(|c| c.is_ray()) {
                let Some(e) = c.env_var("RAY_AUTH_MODE") else {
                    continue;
                };
                let Some(v) = e.value.filter(|v| {
                    v.as_str()
                        .is_some_and(|s| s.trim().eq_ignore_ascii_case("disabled"))
                }) else {
                    continue;
                };
                out.report(
                    w.obj,
                    e.path.key("value"),
                    v.pos,
                    format!(
                        "Ray container `{}` sets RAY_AUTH_MODE=disabled: Ray's authentication \
                         is off on this node",
                        c.name()
                    ),
                );
            }
        }
    }
}
