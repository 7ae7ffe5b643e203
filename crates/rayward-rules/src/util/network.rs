//! Reading NetworkPolicies (and KubeRay's own `spec.networkPolicy`) for the §1.4 rules.

use crate::util::tenancy::ns_key;
use rayward_manifest::inventory::{policy_selector, strings};
use rayward_manifest::ray;
use rayward_manifest::{
    Inventory, JsonPath, LabelValue, Node, Object, PodRef, PodTemplate, Pos, RayClusterSpec,
    Selector,
};
use std::collections::HashMap;

/// Ray's ports that run code or hand out cluster state when reached, with what listens.
pub const SENSITIVE_PORTS: &[(i64, &str)] = &[
    (ray::GCS_PORT, "GCS"),
    (ray::DASHBOARD_PORT, "dashboard/Jobs API"),
    (ray::CLIENT_PORT, "Ray Client"),
    (ray::DASHBOARD_AGENT_PORT, "dashboard agent"),
];

/// `rayStartParams` that move one of those ports.
const PORT_PARAMS: &[(&str, &str)] = &[
    ("port", "GCS"),
    ("dashboard-port", "dashboard/Jobs API"),
    ("ray-client-server-port", "Ray Client"),
    ("dashboard-agent-listen-port", "dashboard agent"),
];

/// Port names KubeRay and its samples give Ray's ports.
const PORT_NAMES: &[(&str, i64)] = ray::CONTROL_PORT_NAMES;

pub use rayward_manifest::inventory::is_ingress_policy;

/// Whether a name or label mentions Ray: a word of it starts with `ray` (`ray-head`,
/// `raycluster-a`, `ray.io/node-type`) or is `kuberay`. Plain substrings do not count
/// (`array`, `gray`).
pub fn mentions_ray(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .any(|w| w.starts_with("ray") || w == "kuberay")
}

/// Whether a NetworkPolicy looks written for Ray pods: its name, or a key or value of its
/// `podSelector`, mentions Ray.
pub fn looks_meant_for_ray(np: &Object) -> bool {
    if mentions_ray(&np.name) {
        return true;
    }
    let Some(sel) = np.root.path(&["spec", "podSelector"]) else {
        return false;
    };
    let labels = sel.get("matchLabels").map(Node::as_map).unwrap_or(&[]);
    if labels
        .iter()
        .any(|(k, v)| k.as_str().is_some_and(mentions_ray) || v.as_str().is_some_and(mentions_ray))
    {
        return true;
    }
    sel.get("matchExpressions")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .any(|e| {
            e.get("key")
                .and_then(Node::as_str)
                .is_some_and(mentions_ray)
                || strings(e.get("values")).into_iter().any(mentions_ray)
        })
}

/// A short text of a `podSelector` for messages: `app=ray-cluster-head, tier in (a, b)`.
pub fn selector_text(sel: Option<&Node>) -> String {
    let Some(sel) = sel else {
        return "every pod (no podSelector)".to_string();
    };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .map(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| Some(format!("{}={}", k.as_str()?, v.as_str()?)))
        .collect();
    for e in sel.get("matchExpressions").map(Node::as_seq).unwrap_or(&[]) {
        let key = e.get("key").and_then(Node::as_str).unwrap_or("?");
        let op = e.get("operator").and_then(Node::as_str).unwrap_or("?");
        let vals = strings(e.get("values"));
        parts.push(if vals.is_empty() {
            format!("{key} {op}")
        } else {
            format!("{key} {op} ({})", vals.join(", "))
        });
    }
    if parts.is_empty() {
        "every pod (empty podSelector)".to_string()
    } else {
        parts.join(", ")
    }
}

/// KubeRay's own NetworkPolicy for a cluster (`spec.networkPolicy`, KubeRay ≥ 1.7), when it
/// restricts ingress: present, with `mode` `DenyAll` (the default) or `DenyAllIngress`.
/// `DenyAllEgress` leaves ingress open, so it is no ingress coverage.
pub fn kuberay_ingress_policy<'a>(c: &RayClusterSpec<'a>) -> Option<&'a Node> {
    let np = c.get("networkPolicy").filter(|n| n.is_map())?;
    match np.get("mode").and_then(Node::as_str) {
        Some("DenyAllEgress") => None,
        _ => Some(np),
    }
}

/// The sensitive ports of some Ray pods: the defaults, plus ports moved by `rayStartParams`,
/// plus the names the pods give their ports (so a named port in a policy resolves).
#[derive(Clone, Debug)]
pub struct PortSet {
    ports: Vec<(i64, &'static str)>,
    names: HashMap<String, i64>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            ports: SENSITIVE_PORTS.to_vec(),
            names: PORT_NAMES
                .iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect(),
        }
    }
}

impl PortSet {
    /// Adds what one Ray pod template says about its ports.
    pub fn add_template(&mut self, t: &PodTemplate<'_>) {
        if let Some(params) = t.ray_start_params {
            for (param, what) in PORT_PARAMS {
                let p = params.get(param).and_then(|n| {
                    n.as_i64()
                        .or_else(|| n.as_str().and_then(|s| s.trim().parse().ok()))
                });
                if let Some(p) = p {
                    if !self.ports.iter().any(|(q, _)| *q == p) {
                        self.ports.push((p, what));
                    }
                }
            }
        }
        for c in t.containers().into_iter().filter(|c| c.is_ray()) {
            for port in c.get("ports").map(Node::as_seq).unwrap_or(&[]) {
                let name = port.get("name").and_then(Node::as_str);
                let num = port.get("containerPort").and_then(Node::as_i64);
                if let (Some(name), Some(num)) = (name, num) {
                    self.names.insert(name.to_string(), num);
                }
            }
        }
    }

    fn resolve(&self, port: &Node) -> Option<i64> {
        if let Some(p) = port.as_i64() {
            return Some(p);
        }
        let s = port.as_str()?.trim();
        if let Ok(p) = s.parse() {
            return Some(p);
        }
        self.names.get(s).copied()
    }

    /// The sensitive ports that an ingress rule's `ports` admit: all of them when `ports` is
    /// absent or empty, or an entry has no `port`. Entries for UDP or SCTP admit none (Ray's
    /// ports are TCP); named ports that resolve to no known port admit none.
    pub fn admitted(&self, ports: Option<&Node>) -> Vec<(i64, &'static str)> {
        let entries = ports.map(Node::as_seq).unwrap_or(&[]);
        if entries.is_empty() {
            return self.ports.clone();
        }
        let mut out: Vec<(i64, &'static str)> = Vec::new();
        for e in entries {
            let proto = e.get("protocol").and_then(Node::as_str).unwrap_or("TCP");
            if !proto.eq_ignore_ascii_case("TCP") {
                continue;
            }
            let (lo, hi) = match e.get("port").filter(|p| !p.is_null()) {
                None => (i64::MIN, i64::MAX),
                Some(p) => {
                    let Some(lo) = self.resolve(p) else { continue };
                    let hi = e.get("endPort").and_then(Node::as_i64).unwrap_or(lo);
                    (lo, hi.max(lo))
                }
            };
            for &(p, what) in &self.ports {
                if (lo..=hi).contains(&p) && !out.iter().any(|(q, _)| *q == p) {
                    out.push((p, what));
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// `8265 (dashboard/Jobs API), 10001 (Ray Client)`.
pub fn ports_text(ports: &[(i64, &str)]) -> String {
    ports
        .iter()
        .map(|(p, w)| format!("{p} ({w})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A source of an ingress rule that admits everyone (of a namespace, of the cluster, of
/// the Internet).
#[derive(Clone, Debug)]
pub struct OpenSource {
    pub path: JsonPath,
    pub pos: Pos,
    /// Who it lets in, e.g. "every pod of the policy's namespace".
    pub who: String,
}

fn present(n: Option<&Node>) -> Option<&Node> {
    n.filter(|n| !n.is_null())
}

fn selects_all(n: &Node) -> bool {
    Selector::from_label_selector(Some(n)).is_empty()
}

/// The open sources of one ingress rule (a NetworkPolicy `spec.ingress[i]` or a KubeRay
/// `ingressRules[i]`, which have the same shape): no `from` or an empty one (every
/// source), an empty peer, `namespaceSelector: {}` with no or an empty `podSelector`
/// (every pod of every namespace), `podSelector: {}` alone (every pod of the namespace),
/// `ipBlock.cidr` `0.0.0.0/0` or `::/0` (every address, `except` notwithstanding).
pub fn open_sources(rule: &Node, path: &JsonPath) -> Vec<OpenSource> {
    let from = present(rule.get("from"));
    let peers = from.map(Node::as_seq).unwrap_or(&[]);
    if peers.is_empty() {
        let (path, pos, why) = match from {
            Some(f) => (path.key("from"), f.pos, "its `from` is empty"),
            None => (path.clone(), rule.pos, "it has no `from`"),
        };
        return vec![OpenSource {
            path,
            pos,
            who: format!("every source, in and outside the cluster ({why})"),
        }];
    }
    let mut out = Vec::new();
    for (j, peer) in peers.iter().enumerate() {
        let ppath = path.key("from").idx(j);
        let ns = present(peer.get("namespaceSelector"));
        let pods = present(peer.get("podSelector"));
        let ip = present(peer.get("ipBlock"));
        let who = match (ns, pods, ip) {
            (None, None, None) => Some("every source (empty peer)".to_string()),
            (Some(ns), pods, None) if selects_all(ns) && pods.is_none_or(selects_all) => {
                Some("every pod of every namespace (`namespaceSelector: {}`)".to_string())
            }
            (None, Some(pods), None) if selects_all(pods) => {
                Some("every pod of the policy's namespace (`podSelector: {}`)".to_string())
            }
            _ => None,
        };
        if let Some(who) = who {
            out.push(OpenSource {
                path: ppath,
                pos: peer.pos,
                who,
            });
            continue;
        }
        if let Some(cidr) = ip.and_then(|b| b.get("cidr")) {
            let c = cidr.as_str().unwrap_or("").trim();
            if c == "0.0.0.0/0" || c == "::/0" {
                out.push(OpenSource {
                    path: ppath.keys(&["ipBlock", "cidr"]),
                    pos: cidr.pos,
                    who: format!("every address (`ipBlock.cidr: {c}`)"),
                });
            }
        }
    }
    out
}

/// How much of the (policy, pod) selection [`selected_pods`] must find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Every pod each policy selects.
    All,
    /// Each pod under the first policy found to select it (enough to know what is covered).
    FirstPolicyPerPod,
    /// One pod per policy at most (enough to know whether it selects anything).
    FirstPodPerPolicy,
}

/// For each NetworkPolicy of `policies` (same order), the pods of `pods` in its namespace
/// (unset counts as `default`) that its `podSelector` selects, as much as `want` asks.
///
/// Runs in about (pods × policies that could match each pod): policies are indexed by one
/// `key=value` they require, so a pod only meets those that require one of its labels
/// (all of a key's, when the pod's value is generated), plus those that require none.
pub fn selected_pods<'i>(
    inv: &Inventory<'_>,
    policies: &[&Object],
    pods: impl Iterator<Item = &'i PodRef<'i>>,
    want: Want,
) -> Vec<Vec<&'i PodRef<'i>>> {
    let sels: Vec<Selector> = policies.iter().map(|np| policy_selector(np)).collect();
    #[derive(Default)]
    struct NsIndex<'s> {
        general: Vec<usize>,
        by_label: HashMap<&'s str, HashMap<&'s str, Vec<usize>>>,
    }
    let mut index: HashMap<&str, NsIndex<'_>> = HashMap::new();
    for (i, (np, sel)) in policies.iter().zip(&sels).enumerate() {
        let ix = index.entry(ns_key(np.namespace.as_deref())).or_default();
        match sel.required_values().next() {
            Some((k, v)) => ix
                .by_label
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(i),
            None => ix.general.push(i),
        }
    }
    let mut out: Vec<Vec<&PodRef>> = vec![Vec::new(); policies.len()];
    let mut cands: Vec<usize> = Vec::new();
    for p in pods {
        let Some(ix) = index.get(ns_key(inv.pod_namespace(p))) else {
            continue;
        };
        cands.clear();
        cands.extend_from_slice(&ix.general);
        for (k, v) in &p.labels {
            let Some(values) = ix.by_label.get(k.as_ref()) else {
                continue;
            };
            match v {
                LabelValue::Known(v) => {
                    if let Some(l) = values.get(v.as_ref()) {
                        cands.extend_from_slice(l);
                    }
                }
                LabelValue::Any => values.values().for_each(|l| cands.extend_from_slice(l)),
            }
        }
        cands.sort_unstable();
        cands.dedup();
        for &i in &cands {
            if want == Want::FirstPodPerPolicy && !out[i].is_empty() {
                continue;
            }
            if sels[i].matches(&p.labels) {
                out[i].push(p);
                if want == Want::FirstPolicyPerPod {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayward_manifest::load::{parse_documents, Limits};

    fn node(s: &str) -> Node {
        parse_documents("t", s, &Limits::default())
            .unwrap()
            .remove(0)
            .root
    }

    #[test]
    fn selection_through_the_index() {
        let text = "\
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: a}
spec:
  headGroupSpec: {template: {spec: {containers: [{name: h}]}}}
  workerGroupSpecs: [{groupName: w, template: {spec: {containers: [{name: w}]}}}]
---
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: j, namespace: default}
spec:
  rayClusterSpec:
    headGroupSpec: {template: {spec: {containers: [{name: h}]}}}
---
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: a, namespace: other}
spec:
  headGroupSpec: {template: {spec: {containers: [{name: h}]}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: heads, namespace: default}
spec: {podSelector: {matchLabels: {ray.io/cluster: a, ray.io/node-type: head}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: workers}
spec:
  podSelector:
    matchExpressions: [{key: ray.io/node-type, operator: NotIn, values: [head]}]
";
        let loaded = rayward_manifest::load_bytes("t.yaml", text.as_bytes(), &Limits::default());
        let inv = Inventory::new(&loaded.objects);
        let nps: Vec<&Object> = inv
            .of_kind(rayward_manifest::Kind::NetworkPolicy)
            .map(|(_, o)| o)
            .collect();
        let names = |sel: &[&PodRef]| -> Vec<String> {
            sel.iter()
                .map(|p| format!("{}/{}", inv.objects[p.obj].name, p.template))
                .collect()
        };
        let got = selected_pods(&inv, &nps, inv.ray_pods(), Want::All);
        // `a`'s head (cluster name known) and `j`'s head (generated name: may be `a`),
        // not `a` of namespace `other`.
        assert_eq!(names(&got[0]), vec!["a/0", "j/0"]);
        assert_eq!(names(&got[1]), vec!["a/0", "a/1", "j/0"]);
        assert_eq!(names(&got[2]), vec!["a/1"]);
        let first = selected_pods(&inv, &nps, inv.ray_pods(), Want::FirstPolicyPerPod);
        assert_eq!(first.iter().map(Vec::len).sum::<usize>(), 3);
        let one = selected_pods(&inv, &nps, inv.ray_pods(), Want::FirstPodPerPolicy);
        assert!(one.iter().all(|v| v.len() == 1));
    }

    #[test]
    fn ray_words() {
        assert!(mentions_ray("ray-head-ingress"));
        assert!(mentions_ray("ray.io/node-type"));
        assert!(mentions_ray("RayCluster-a"));
        assert!(mentions_ray("allow-kuberay"));
        assert!(!mentions_ray("array-store"));
        assert!(!mentions_ray("gray"));
    }

    #[test]
    fn ports_admitted() {
        let ps = PortSet::default();
        assert_eq!(ps.admitted(None).len(), 4);
        let n = node("- {port: 8265}\n- {port: 53, protocol: UDP}\n");
        assert_eq!(ps.admitted(Some(&n)), vec![(8265, "dashboard/Jobs API")]);
        let n = node("- {port: 6000, endPort: 7000}\n- {port: client}\n");
        assert_eq!(
            ps.admitted(Some(&n)),
            vec![(6379, "GCS"), (10001, "Ray Client")]
        );
        let n = node("- {port: 6380}\n- {port: 8080}\n- {port: serve}\n");
        assert!(ps.admitted(Some(&n)).is_empty());
        let n = node("- {protocol: TCP}\n");
        assert_eq!(ps.admitted(Some(&n)).len(), 4);
    }

    #[test]
    fn open_peers() {
        let p = JsonPath::root().key("r");
        let r = node("ports: [{port: 8265}]\n");
        assert_eq!(open_sources(&r, &p).len(), 1);
        let r = node("from:\n- podSelector: {}\n- namespaceSelector: {}\n  podSelector: {}\n- ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}\n- podSelector: {matchLabels: {a: b}}\n- namespaceSelector: {}\n  podSelector: {matchLabels: {a: b}}\n- namespaceSelector: {matchLabels: {team: a}}\n  podSelector: {}\n- ipBlock: {cidr: 10.0.0.0/8}\n");
        let got: Vec<String> = open_sources(&r, &p)
            .into_iter()
            .map(|o| o.path.to_string())
            .collect();
        assert_eq!(
            got,
            vec!["r.from[0]", "r.from[1]", "r.from[2].ipBlock.cidr"]
        );
    }
}
