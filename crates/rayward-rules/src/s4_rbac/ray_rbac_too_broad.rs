use crate::util::rbac::effective_service_account;
use crate::util::tenancy::{is_ray_template, ns_key, pod_display, same_namespace};
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::inventory::strings;
use rayward_manifest::{Inventory, JsonPath, Kind, Node, Object};
use std::collections::HashMap;

declare_rule! {
    /// ## What it checks
    /// Roles and ClusterRoles bound to a ServiceAccount that Ray pods of the inputs run as
    /// (head, worker, RayJob submitter; `default` when a pod names none; KubeRay's
    /// autoscaler account, named after the cluster, for an autoscaling head that names
    /// none), when a rule of theirs grants:
    /// - `*` in `verbs`, `resources` or `apiGroups`;
    /// - reading Secrets (`get`, `list` or `watch` on `secrets`, unless limited by
    ///   `resourceNames`);
    /// - `pods/exec` or `pods/attach` (`create` or `get`);
    /// - `impersonate`, `escalate` or `bind`.
    ///
    /// Bindings are RoleBindings and ClusterRoleBindings whose subjects name the account:
    /// a `ServiceAccount` subject (its `namespace`, or the RoleBinding's own when it has
    /// none), the group `system:serviceaccounts` or `system:serviceaccounts:<ns>`, or the
    /// user `system:serviceaccount:<ns>:<name>`. Objects without `metadata.namespace` are
    /// taken to be in `default`. Findings point at the offending `rules[i]` of the role;
    /// a binding to the built-in ClusterRoles `cluster-admin`, `admin` or `edit` is
    /// reported at the binding's `roleRef`. Bindings to accounts no Ray pod of the inputs
    /// uses are not this rule's business.
    ///
    /// ## Why it matters (guide §4)
    /// Ray runs whatever code is submitted to it, and that code can read the pod's
    /// ServiceAccount token. Whatever the account may do, every Ray job may do: read the
    /// namespace's Secrets (other clusters' Ray tokens, cloud keys), exec into other pods,
    /// impersonate users or grant itself more.
    ///
    /// ## Example
    /// ```yaml
    /// kind: Role
    /// metadata: {name: ray-reader}
    /// rules:
    /// - apiGroups: [""]
    ///   resources: ["secrets", "pods"]
    ///   verbs: ["get", "list"]
    /// ---
    /// kind: RoleBinding
    /// roleRef: {kind: Role, name: ray-reader}
    /// subjects: [{kind: ServiceAccount, name: analytics-ray}]  # used by the Ray pods
    /// ```
    ///
    /// ## Fix
    /// Grant the Ray account only what the cluster uses, by name where you can:
    /// ```yaml
    /// rules:
    /// - apiGroups: [""]
    ///   resources: ["pods"]
    ///   verbs: ["get", "list"]
    /// - apiGroups: [""]
    ///   resources: ["secrets"]
    ///   resourceNames: ["analytics-ray-token"]
    ///   verbs: ["get"]
    /// ```
    /// If another component (a history server, a CI job) needs the broad rights, give it
    /// its own account instead of sharing it with Ray.
    pub struct RayRbacTooBroad {
        id: "RW403",
        name: "ray-rbac-too-broad",
        severity: High,
        section: "4",
        summary: "Role bound to a Ray pod's ServiceAccount grants too much",
        fix: "Narrow the rule to the resources and verbs the Ray cluster needs (no `*`, no Secrets, exec, impersonate, escalate or bind), or bind it to another account.",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

const BUILTIN_BROAD: &[&str] = &["cluster-admin", "admin", "edit"];

/// Why a PolicyRule is too broad for Ray (empty when it is not).
fn too_broad(rule: &Node) -> Vec<String> {
    let verbs = strings(rule.get("verbs"));
    let resources = strings(rule.get("resources"));
    let groups = strings(rule.get("apiGroups"));
    let names = strings(rule.get("resourceNames"));
    let mut why = Vec::new();
    let wild: Vec<&str> = [
        ("verbs", &verbs),
        ("resources", &resources),
        ("apiGroups", &groups),
    ]
    .into_iter()
    .filter(|(_, l)| l.iter().any(|s| s.contains('*')))
    .map(|(k, _)| k)
    .collect();
    if !wild.is_empty() {
        why.push(format!("`*` in {}", wild.join(", ")));
    }
    let core = groups.iter().any(|g| g.is_empty() || *g == "*");
    let verb = |vs: &[&str]| verbs.iter().any(|v| *v == "*" || vs.contains(v));
    let res = |r: &str| resources.contains(&r);
    if core && res("secrets") && names.is_empty() && verb(&["get", "list", "watch"]) {
        why.push("reading Secrets".to_string());
    }
    for sub in ["pods/exec", "pods/attach"] {
        if core && res(sub) && verb(&["create", "get"]) {
            why.push(format!("`{sub}`"));
        }
    }
    for v in ["impersonate", "escalate", "bind"] {
        if verbs.contains(&v) {
            why.push(format!("`{v}`"));
        }
    }
    why
}

/// The accounts Ray pods run as, `(namespace, name)`, with the pods.
#[derive(Default)]
struct Accounts {
    list: Vec<((String, String), Vec<String>)>,
    index: HashMap<(String, String), usize>,
}

impl Accounts {
    fn add(&mut self, ns: &str, sa: String, pod: String) {
        let key = (ns.to_string(), sa);
        match self.index.get(&key) {
            Some(&i) => self.list[i].1.push(pod),
            None => {
                self.index.insert(key.clone(), self.list.len());
                self.list.push((key, vec![pod]));
            }
        }
    }

    fn lookup(&self, ns: &str, sa: &str) -> Vec<usize> {
        self.index
            .get(&(ns.to_string(), sa.to_string()))
            .map(|&i| vec![i])
            .unwrap_or_default()
    }

    /// The Ray accounts a binding subject names.
    fn named_by(&self, subject: &Node, binding: &Object) -> Vec<usize> {
        let kind = subject.get("kind").and_then(Node::as_str).unwrap_or("");
        let name = subject.get("name").and_then(Node::as_str).unwrap_or("");
        let in_ns = |gns: &str| -> Vec<usize> {
            (0..self.list.len())
                .filter(|&i| self.list[i].0 .0 == gns)
                .collect()
        };
        match kind {
            "ServiceAccount" => {
                let own = if binding.kind == Kind::RoleBinding {
                    binding.namespace.as_deref()
                } else {
                    None
                };
                let sns = subject.get("namespace").and_then(Node::as_str).or(own);
                self.lookup(ns_key(sns), name)
            }
            "Group" if name == "system:serviceaccounts" => (0..self.list.len()).collect(),
            "Group" => name
                .strip_prefix("system:serviceaccounts:")
                .map(in_ns)
                .unwrap_or_default(),
            "User" => name
                .strip_prefix("system:serviceaccount:")
                .and_then(|r| r.split_once(':'))
                .map(|(ns, sa)| self.lookup(ns, sa))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl Rule for RayRbacTooBroad {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let mut accounts = Accounts::default();
        for p in &inv.pods {
            let w = &inv.workloads[p.obj];
            let t = &w.templates[p.template];
            if !is_ray_template(w, t) {
                continue;
            }
            if let Some(sa) = effective_service_account(w, t) {
                accounts.add(ns_key(inv.pod_namespace(p)), sa, pod_display(w, t));
            }
        }
        if accounts.list.is_empty() {
            return;
        }
        let mut roles: HashMap<(Kind, &str), Vec<usize>> = HashMap::new();
        for (i, o) in inv.objects.iter().enumerate() {
            if matches!(o.kind, Kind::Role | Kind::ClusterRole) {
                roles.entry((o.kind, o.name.as_str())).or_default().push(i);
            }
        }

        // (role object index, rule index) -> (reasons, grants)
        let mut order: Vec<(usize, usize)> = Vec::new();
        let mut found: HashMap<(usize, usize), (Vec<String>, Vec<String>)> = HashMap::new();
        for (_, b) in inv
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.kind, Kind::RoleBinding | Kind::ClusterRoleBinding))
        {
            let mut hit: Vec<usize> = b
                .root
                .get("subjects")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .flat_map(|s| accounts.named_by(s, b))
                .collect();
            hit.sort_unstable();
            hit.dedup();
            if hit.is_empty() {
                continue;
            }
            let who = hit
                .iter()
                .map(|&i| {
                    let ((ns, sa), pods) = &accounts.list[i];
                    let more = if pods.len() > 2 {
                        format!(" and {} more Ray pod template(s)", pods.len() - 2)
                    } else {
                        String::new()
                    };
                    format!(
                        "ServiceAccount `{sa}` (namespace `{ns}`) of {}{more}",
                        pods.iter().take(2).cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let role_ref = b.root.get("roleRef");
            let rkind = role_ref
                .and_then(|r| r.get("kind"))
                .and_then(Node::as_str)
                .unwrap_or("");
            let rname_node = role_ref.and_then(|r| r.get("name"));
            let rname = rname_node.and_then(Node::as_str).unwrap_or("");
            if rkind == "ClusterRole" && BUILTIN_BROAD.contains(&rname) {
                out.report(
                    b,
                    JsonPath::root().keys(&["roleRef", "name"]),
                    rname_node.or(role_ref).map_or(object_pos(b), |n| n.pos),
                    format!(
                        "{} `{}` grants the built-in ClusterRole `{rname}` to {who}: every Ray job can use it",
                        b.kind_name, b.name
                    ),
                );
                continue;
            }
            let grant = format!("{} `{}` binds it to {who}", b.kind_name, b.name);
            let rk = match rkind {
                "Role" => Kind::Role,
                "ClusterRole" => Kind::ClusterRole,
                _ => continue,
            };
            for &ri in roles.get(&(rk, rname)).map(Vec::as_slice).unwrap_or(&[]) {
                let role = &inv.objects[ri];
                if rk == Kind::Role
                    && !same_namespace(role.namespace.as_deref(), b.namespace.as_deref())
                {
                    continue;
                }
                let rules = role.root.get("rules").map(Node::as_seq).unwrap_or(&[]);
                for (i, rule) in rules.iter().enumerate() {
                    let why = too_broad(rule);
                    if why.is_empty() {
                        continue;
                    }
                    let e = found.entry((ri, i)).or_insert_with(|| {
                        order.push((ri, i));
                        (why, Vec::new())
                    });
                    if !e.1.contains(&grant) {
                        e.1.push(grant.clone());
                    }
                }
            }
        }
        for key in order {
            let (ri, i) = key;
            let role = &inv.objects[ri];
            let rule = &role.root.get("rules").map(Node::as_seq).unwrap_or(&[])[i];
            let (why, grants) = &found[&key];
            out.report(
                role,
                JsonPath::root().key("rules").idx(i),
                rule.pos,
                format!(
                    "{} `{}` rule {i} grants {}, and {}: every Ray job can use it",
                    role.kind_name,
                    role.name,
                    why.join(", "),
                    grants.join("; ")
                ),
            );
        }
    }
}
