use crate::fix::{env_entry_mut, Changes, Fix, FixContext};
use crate::util::version::{cluster_version, Version};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{JsonPath, Node, Object, Workload};

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
        scope: Object,
        fixer: Some(&AuthDisabled),
        companion: None,
    }
}

impl Rule for AuthDisabled {
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

impl Fix for AuthDisabled {
    fn safe(&self) -> bool {
        true
    }

    /// On Ray 2.52 or newer: `authOptions.mode: disabled` becomes `token`, and a Ray
    /// container's `RAY_AUTH_MODE=disabled` is removed (KubeRay sets the mode from
    /// `authOptions`). Older Ray has no token auth to turn on; the finding stays.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        type Plan = (Vec<JsonPath>, Vec<(JsonPath, JsonPath)>);
        let (clusters, containers): Plan = {
            let w = Workload::of(obj);
            let new_enough =
                |ci: usize| cluster_version(&w, ci).is_some_and(|(v, _)| v >= Version(2, 52, 0));
            let clusters = (0..w.clusters.len())
                .filter(|&ci| new_enough(ci))
                .map(|ci| w.clusters[ci].path.clone())
                .collect();
            let containers = w
                .templates
                .iter()
                .filter(|t| t.role.is_ray_node() && t.cluster.is_some_and(new_enough))
                .flat_map(|t| {
                    let cluster = w.clusters[t.cluster.unwrap_or(0)].path.clone();
                    t.containers()
                        .into_iter()
                        .filter(|c| c.is_ray())
                        .map(move |c| (cluster.clone(), c.path.clone()))
                })
                .collect();
            (clusters, containers)
        };
        for cp in clusters {
            let Some(auth) = obj
                .root
                .at_path_mut(&cp)
                .and_then(|c| c.get_mut("authOptions"))
            else {
                continue;
            };
            if auth
                .get("mode")
                .and_then(Node::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case("disabled"))
            {
                auth.set("mode", Node::string("token"));
                ch.add(
                    &cp.keys(&["authOptions", "mode"]),
                    "turn token authentication back on",
                );
            }
        }
        for (cluster, path) in containers {
            let Some(c) = obj.root.at_path_mut(&path) else {
                continue;
            };
            let disabled = env_entry_mut(c, "RAY_AUTH_MODE").is_some_and(|e| {
                e.get("value")
                    .and_then(Node::as_str)
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("disabled"))
            });
            if disabled {
                if let Some(env) = c.get_mut("env") {
                    env.retain_items(|e| {
                        e.get("name").and_then(Node::as_str) != Some("RAY_AUTH_MODE")
                    });
                    ch.add(&path.key("env"), "remove RAY_AUTH_MODE=disabled");
                }
                if c.get("env").is_some_and(|e| e.as_seq().is_empty()) {
                    c.remove("env");
                }
                // Auth off by env means no `authOptions` either: turn token auth on there.
                if let Some(auth) = obj
                    .root
                    .at_path_mut(&cluster)
                    .and_then(|c| c.map_entry("authOptions"))
                {
                    if auth.set("mode", Node::string("token")) {
                        ch.add(
                            &cluster.keys(&["authOptions", "mode"]),
                            "turn on token authentication",
                        );
                    }
                }
            }
        }
        ch.list
    }
}
