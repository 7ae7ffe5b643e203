use crate::fix::{for_each_container, for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, effective_security, shown};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;
use rayward_manifest::{Node as TreeNode, Object};

declare_rule! {
    /// ## What it checks
    /// Containers that may run as root, judged on the effective security context (the
    /// container's own field, else the pod's `securityContext`):
    /// - `runAsUser: 0` is always a finding, reported at that field, even when
    ///   `runAsNonRoot: true` is also set (the kubelet then refuses to start the container);
    /// - otherwise `runAsNonRoot` must be `true`. A container that sets an explicit
    ///   non-zero `runAsUser` passes without it: the kubelet starts the process under that
    ///   uid whatever the image says, so it cannot run as root (Pod Security "restricted"
    ///   still wants `runAsNonRoot: true`; setting both is the best form).
    ///
    /// Every container counts: Ray head and worker containers, init containers, the
    /// autoscaler (`autoscalerOptions.securityContext`, which inherits the head pod's
    /// pod-level context), RayJob submitters and plain workloads.
    ///
    /// The official Ray images (`rayproject/ray`) run as the `ray` user, uid 1000, but
    /// nothing in the manifest enforces it: an image built `FROM` them with `USER root`, a
    /// different image, or a changed tag runs as root unless `runAsNonRoot: true` (or a
    /// non-zero `runAsUser`) is set. That is why containers using Ray's images are
    /// reported too.
    ///
    /// ## Why it matters (guide §5)
    /// Root in the container owns every file of the image and of writable volumes, can
    /// use every capability the runtime grants by default (`CHOWN`, `DAC_OVERRIDE`,
    /// `SETUID`, `NET_RAW`, ...) and is root on the node after any container-escape bug.
    /// Ray runs arbitrary code from every job it accepts; that code should not be root.
    /// Note that Ray's images also give uid 1000 passwordless `sudo`: pair this rule with
    /// RW502 (`allowPrivilegeEscalation: false`), or `sudo` undoes it.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   securityContext:
    ///     runAsUser: 0
    ///   containers:
    ///   - name: ray-worker
    ///     image: rayproject/ray:2.52.0
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// spec:
    ///   securityContext:
    ///     runAsNonRoot: true
    ///     runAsUser: 1000   # the `ray` user of rayproject/ray
    ///   containers:
    ///   - name: ray-worker
    ///     image: rayproject/ray:2.52.0
    /// ```
    pub struct RunsAsRoot {
        id: "RW503",
        name: "runs-as-root",
        severity: High,
        section: "5",
        summary: "Container may run as root (runAsNonRoot not true, or runAsUser 0)",
        fix: "Set `runAsNonRoot: true` (and `runAsUser: 1000` for Ray images) in the pod or container securityContext.",
        scope: Object,
        fixer: Some(&RunsAsRoot),
        companion: None,
    }
}

impl Rule for RunsAsRoot {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let who = || describe_container(t, &c);
            let user = effective_security(&c, "runAsUser");
            let non_root = effective_security(&c, "runAsNonRoot");
            let non_root_true = non_root
                .as_ref()
                .is_some_and(|(n, _)| n.as_bool() == Some(true));
            if let Some((n, path)) = &user {
                match n.as_i64() {
                    Some(0) => {
                        let extra = if non_root_true {
                            "; with `runAsNonRoot: true` the kubelet refuses to start it"
                        } else {
                            ""
                        };
                        out.report_fix(
                            w.obj,
                            path.clone(),
                            n.pos,
                            format!("{who} runs as root (`runAsUser: 0`){extra}", who = who()),
                            "Set `runAsUser` to a non-zero uid (1000 for Ray images) and `runAsNonRoot: true`.",
                        );
                        continue;
                    }
                    // An explicit non-root uid: the process cannot start as root.
                    Some(uid) if uid > 0 => continue,
                    _ => {}
                }
            }
            match non_root {
                _ if non_root_true => {}
                Some((n, path)) => {
                    let what = match n.as_bool() {
                        Some(false) => "sets `runAsNonRoot: false`".to_string(),
                        _ => format!("sets `runAsNonRoot` to {}, not the boolean true", shown(n)),
                    };
                    out.report(
                        w.obj,
                        path,
                        n.pos,
                        format!(
                            "{who} {what}, so it runs as root if its image says so",
                            who = who()
                        ),
                    );
                }
                None => {
                    let (path, pos) = c.security_at("runAsNonRoot");
                    out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "{who} sets neither `runAsNonRoot: true` nor a non-zero `runAsUser` \
                             (in the container or the pod), so nothing stops it running as root",
                            who = who()
                        ),
                    );
                }
            }
        }
    }
}

impl Fix for RunsAsRoot {
    fn safe(&self) -> bool {
        true
    }

    /// The pod gets `runAsNonRoot: true` and, where no uid is set, `runAsUser: 1000` (the
    /// uid of Ray's images); an explicit root uid (0) becomes 1000 and an explicit
    /// `runAsNonRoot` that is not true becomes true, in the pod and in each container.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_pod_spec(obj, |t, spec| {
            let Some(sc) = spec.map_entry("securityContext") else {
                return;
            };
            let at = t.spec_path.key("securityContext");
            if sc.get("runAsNonRoot").and_then(TreeNode::as_bool) != Some(true)
                && sc.set("runAsNonRoot", TreeNode::boolean(true))
            {
                ch.add(&at.key("runAsNonRoot"), "set `runAsNonRoot: true`");
            }
            let uid = sc
                .get("runAsUser")
                .filter(|n| !n.is_null())
                .map(TreeNode::as_i64);
            if matches!(uid, None | Some(Some(0))) && sc.set("runAsUser", TreeNode::int(1000)) {
                ch.add(
                    &at.key("runAsUser"),
                    "set `runAsUser: 1000` (Ray's image user)",
                );
            }
        });
        for_each_container(obj, false, |t, c| {
            let Some(sc) = c.get_mut("securityContext").filter(|n| n.is_map()) else {
                return;
            };
            let at = t.path.key("securityContext");
            if sc.get("runAsUser").and_then(TreeNode::as_i64) == Some(0) {
                sc.set("runAsUser", TreeNode::int(1000));
                ch.add(&at.key("runAsUser"), "replace root uid 0 with 1000");
            }
            if sc
                .get("runAsNonRoot")
                .is_some_and(|n| !n.is_null() && n.as_bool() != Some(true))
            {
                sc.set("runAsNonRoot", TreeNode::boolean(true));
                ch.add(&at.key("runAsNonRoot"), "set `runAsNonRoot: true`");
            }
        });
        ch.list
    }
}
