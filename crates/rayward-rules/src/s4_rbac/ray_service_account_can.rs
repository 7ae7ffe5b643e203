use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind, Node, Object};
use std::collections::BTreeMap;

declare_rule! {
    /// ## What it checks
    /// What the ServiceAccounts of Ray pods can really do, as the API server's own
    /// authorizer answers it. `rayward audit --cluster` sends a `SubjectAccessReview` as
    /// each ServiceAccount that Ray pods run as (with the groups Kubernetes gives it) for:
    /// get and list `secrets`, create `pods` and `pods/exec`, `escalate` and `bind` on
    /// `roles` and `clusterroles`, and `impersonate` `serviceaccounts`, in the account's
    /// own namespace. Every review the server allows is an input of the run, and this rule
    /// reports each account with what it was allowed, at its `ServiceAccount` object.
    ///
    /// RW402 reads the Roles and bindings it is given; this rule asks the server, so it
    /// also sees aggregated ClusterRoles, bindings to groups such as
    /// `system:serviceaccounts`, and any other authorizer the cluster runs. Reviews can be
    /// given in files too (`kubectl create -o yaml` of a SubjectAccessReview).
    ///
    /// ## Why it matters (guide §4)
    /// Code that runs in Ray runs with the pod's ServiceAccount token wherever it is
    /// mounted. An account that can read Secrets, start pods or grant itself roles turns
    /// one malicious Ray job into control of the namespace or the cluster.
    ///
    /// ## Example
    /// A ClusterRoleBinding of `edit` to the group `system:serviceaccounts:ml`: every
    /// Ray pod of namespace `ml` can read its Secrets.
    ///
    /// ## Fix
    /// Run Ray pods as a dedicated ServiceAccount (`rayward harden` creates one) bound
    /// only to what the autoscaler needs (pods and rayclusters), remove the bindings that
    /// grant more, and check again with
    /// `kubectl auth can-i --list --as system:serviceaccount:NS:NAME -n NS`.
    pub struct RayServiceAccountCan {
        id: "RW404",
        name: "ray-service-account-can",
        severity: High,
        section: "4",
        summary: "A Ray pod's ServiceAccount is allowed dangerous actions (by the API server's own answer)",
        fix: "Run Ray pods as a dedicated ServiceAccount bound only to what the autoscaler needs, and remove the bindings that grant more.",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

/// The prefix Kubernetes gives ServiceAccount user names.
const SA_USER: &str = "system:serviceaccount:";

/// `(namespace, name)` of a ServiceAccount user name.
fn service_account(user: &str) -> Option<(&str, &str)> {
    user.strip_prefix(SA_USER)?.split_once(':')
}

/// "get secrets", "create pods/exec", "bind clusterroles.rbac.authorization.k8s.io".
fn action(attrs: &Node) -> Option<String> {
    let s = |k: &str| attrs.get(k).and_then(Node::as_str).unwrap_or("");
    let verb = s("verb");
    if verb.is_empty() {
        return None;
    }
    let mut resource = s("resource").to_string();
    if !s("subresource").is_empty() {
        resource = format!("{resource}/{}", s("subresource"));
    }
    if !s("group").is_empty() {
        resource = format!("{resource}.{}", s("group"));
    }
    Some(format!("{verb} {resource}"))
}

/// Whether `o` is a SubjectAccessReview the server allowed.
fn allowed_review(o: &Object) -> bool {
    o.kind == Kind::Other
        && o.kind_name == "SubjectAccessReview"
        && o.api_version.starts_with("authorization.k8s.io/")
        && o.root.path(&["status", "allowed"]).and_then(Node::as_bool) == Some(true)
}

impl Rule for RayServiceAccountCan {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        // (namespace, account) → (first review, actions allowed), in a stable order.
        let mut by_account: BTreeMap<(&str, &str), (&Object, Vec<String>)> = BTreeMap::new();
        for review in inv.objects.iter().filter(|o| allowed_review(o)) {
            let Some(spec) = review.root.get("spec") else {
                continue;
            };
            let Some((ns, name)) = spec
                .get("user")
                .and_then(Node::as_str)
                .and_then(service_account)
            else {
                continue;
            };
            let Some(what) = spec.get("resourceAttributes").and_then(action) else {
                continue;
            };
            let entry = by_account
                .entry((ns, name))
                .or_insert_with(|| (review, Vec::new()));
            if !entry.1.contains(&what) {
                entry.1.push(what);
            }
        }
        for ((ns, name), (review, actions)) in by_account {
            let account = inv
                .of_kind(Kind::ServiceAccount)
                .map(|(_, o)| o)
                .find(|o| o.name == name && o.namespace.as_deref() == Some(ns));
            let at = account.unwrap_or(review);
            out.report(
                at,
                JsonPath::root().keys(&["metadata", "name"]),
                object_pos(at),
                format!(
                    "ServiceAccount `{ns}/{name}`, which Ray pods run as, is allowed to {} (SubjectAccessReview: the API server's own answer)",
                    actions.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::service_account;

    #[test]
    fn service_account_users() {
        assert_eq!(
            service_account("system:serviceaccount:ml:default"),
            Some(("ml", "default"))
        );
        assert_eq!(service_account("system:node:x"), None);
        assert_eq!(service_account("alice"), None);
    }
}
