use crate::util::credentials::mask;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// `RAY_AUTH_TOKEN` set with a literal, non-empty `value` in the env of any container:
    /// Ray head and worker containers, init containers, the autoscaler
    /// (`autoscalerOptions.env`), RayJob submitters and plain workloads (a client that
    /// talks to a cluster needs the token too).
    ///
    /// ## Why it matters (guide §1.5, §8)
    /// The token is the only thing between a caller and code execution on the cluster. In
    /// a manifest it ends up in Git, in CI logs, in `kubectl get -o yaml` output readable by
    /// anyone with `get` on the object, and in KubeRay's copies of the pod template.
    ///
    /// ## Example
    /// ```yaml
    /// env:
    /// - name: RAY_AUTH_TOKEN
    ///   value: "3f9c…"
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// env:
    /// - name: RAY_AUTH_TOKEN
    ///   valueFrom:
    ///     secretKeyRef: {name: my-cluster-auth, key: auth_token}
    /// ```
    /// or let KubeRay manage it: `authOptions: {mode: token}`. Rotate a token that was
    /// ever committed.
    pub struct AuthTokenLiteral {
        id: "RW116",
        name: "auth-token-literal",
        severity: Critical,
        section: "1.5",
        summary: "RAY_AUTH_TOKEN written literally in a manifest",
        fix: "Read RAY_AUTH_TOKEN from a Secret (`valueFrom.secretKeyRef`) or use `authOptions.mode: token`; rotate the exposed token.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

impl Rule for AuthTokenLiteral {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (_, c) in w.containers() {
            let Some(env) = c.get("env") else { continue };
            for (i, e) in env.as_seq().iter().enumerate() {
                if e.get("name").and_then(Node::as_str) != Some("RAY_AUTH_TOKEN") {
                    continue;
                }
                // The key's line: a block scalar's value starts on the next one.
                let Some((key, v)) = e.get_entry("value") else {
                    continue;
                };
                let Some(s) = v.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
                    continue;
                };
                if s.starts_with('$') {
                    continue;
                }
                out.report(
                    w.obj,
                    c.field_path("env").idx(i).key("value"),
                    key.pos,
                    format!(
                        "container `{}` sets RAY_AUTH_TOKEN literally (`{}`): the cluster's \
                         only credential is in the manifest",
                        c.name(),
                        mask(s)
                    ),
                );
            }
        }
    }
}
