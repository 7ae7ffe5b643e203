//! Structure-aware target: the input drives a generator that starts from a well-formed
//! Kubernetes/KubeRay skeleton (RayCluster, RayJob, RayService, RayCronJob, Pod, Service,
//! NetworkPolicy, RBAC, …) and sets fields at the places the rules read (pod specs,
//! containers, security contexts, rayStartParams, selectors, …) to generated values, with
//! keys and scalars drawn mostly from a vocabulary of field names and values the rules
//! look for. The result is printed as YAML (block or flow) or JSON, so most inputs load
//! and reach the rules instead of stopping at a syntax error.
//!
//! Extra check: when no raw (unquoted, arbitrary) text was spliced in, the printed
//! document is valid YAML within the limits, so loading it must not fail.
//!
//! `RAYWARD_FUZZ_PRINT=1` prints every generated document to stderr (to see what the
//! generator makes of an input: `cargo fuzz run load_structured FILE`);
//! `RAYWARD_FUZZ_DUMP=out.yaml` writes the last one to a file (run.sh uses it to turn a
//! crashing input into the YAML document that `cargo test` replays).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Field names the loader and the rules read, plus common Kubernetes ones.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "apiVersion", "kind", "metadata", "name", "generateName", "namespace", "labels",
    "annotations", "spec", "template", "containers", "initContainers",
    "ephemeralContainers", "image", "imagePullPolicy", "command", "args", "env", "envFrom",
    "value", "valueFrom", "secretKeyRef", "configMapKeyRef", "key", "ports",
    "containerPort", "hostPort", "port", "targetPort", "nodePort", "protocol",
    "securityContext", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
    "runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "capabilities", "add", "drop",
    "seccompProfile", "type", "localhostProfile", "appArmorProfile", "seLinuxOptions",
    "windowsOptions", "procMount", "hostNetwork", "hostPID", "hostIPC", "hostPath", "path",
    "volumes", "volumeMounts", "mountPath", "readOnly", "emptyDir", "secret", "secretName",
    "configMap", "projected", "serviceAccountName", "serviceAccount",
    "automountServiceAccountToken", "resources", "limits", "requests", "cpu", "memory",
    "nvidia.com/gpu", "ephemeral-storage", "headGroupSpec", "workerGroupSpecs", "groupName",
    "replicas", "minReplicas", "maxReplicas", "rayStartParams", "rayVersion",
    "enableInTreeAutoscaling", "autoscalerOptions", "authOptions", "mode", "serviceType",
    "headService", "rayClusterSpec", "rayClusterConfig", "submitterPodTemplate",
    "jobTemplate", "entrypoint", "runtimeEnvYAML", "serveConfigV2", "clusterSelector",
    "schedule", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished",
    "activeDeadlineSeconds", "selector", "matchLabels", "matchExpressions", "operator",
    "values", "podSelector", "namespaceSelector", "policyTypes", "ingress", "egress",
    "from", "to", "ipBlock", "cidr", "rules", "http", "paths", "backend", "service",
    "number", "tls", "hosts", "ingressClassName", "loadBalancerSourceRanges", "externalIPs",
    "clusterIP", "apiGroups", "resources", "verbs", "roleRef", "subjects", "hard", "items",
    "dashboard-host", "num-cpus", "block", "redis-password", "ray.io/cluster",
    "ray.io/node-type", "ray.io/group", "app.kubernetes.io/name", "rayward.io/ignore", "<<",
];

/// Scalars the rules compare against.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "v1", "ray.io/v1", "ray.io/v1alpha1", "apps/v1", "batch/v1", "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1", "RayCluster", "RayJob", "RayService", "RayCronJob",
    "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "Ingress",
    "NetworkPolicy", "ServiceAccount", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "Namespace", "ResourceQuota", "List", "ConfigMap", "Secret",
    "true", "false", "yes", "no", "null", "~", "0", "1", "-1", "65534", "0.0.0.0", "::",
    "127.0.0.1", "0.0.0.0/0", "10.0.0.0/8", "LoadBalancer", "NodePort", "ClusterIP",
    "Unconfined", "RuntimeDefault", "Localhost", "ALL", "NET_ADMIN", "SYS_ADMIN", "NET_RAW",
    "In", "NotIn", "Exists", "DoesNotExist", "Ingress", "Egress", "*", "get", "list",
    "create", "secrets", "pods/exec", "token", "disabled", "head", "worker", "headgroup",
    "rayproject/ray", "rayproject/ray:2.9.0", "rayproject/ray:latest",
    "rayproject/ray:nightly-py310-gpu", "docker.io/rayproject/ray:2.46.0",
    "registry.example.com:5000/ml/ray@sha256:aaaa", "ray", "busybox", "100m", "500m", "1.5",
    "2Gi", "2G", "1e3", "0x10", "8265", "6379", "10001", "RW101", "RW501",
    "RW501,RW401 # reason", "all", "/", "/var/run/docker.sock", "/tmp",
    "RAY_REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "hunter2", "",
];

/// Where patches land in a pod template (the node holding `metadata` and `spec`).
const POD_SPOTS: &[&[Seg]] = &[
    &[],
    &[K("metadata"), K("labels")],
    &[K("spec")],
    &[K("spec"), K("securityContext")],
    &[K("spec"), K("containers"), I(0)],
    &[K("spec"), K("containers"), I(0), K("securityContext")],
    &[
        K("spec"),
        K("containers"),
        I(0),
        K("securityContext"),
        K("capabilities"),
    ],
    &[
        K("spec"),
        K("containers"),
        I(0),
        K("resources"),
        K("limits"),
    ],
    &[K("spec"), K("containers"), I(0), K("env"), I(0)],
    &[K("spec"), K("containers"), I(0), K("ports"), I(0)],
    &[K("spec"), K("containers"), I(1)],
    &[K("spec"), K("initContainers"), I(0)],
    &[K("spec"), K("volumes"), I(0)],
];

/// Where patches land in a Ray cluster spec.
const CLUSTER_SPOTS: &[&[Seg]] = &[
    &[],
    &[K("authOptions")],
    &[K("headGroupSpec")],
    &[K("headGroupSpec"), K("rayStartParams")],
    &[K("workerGroupSpecs"), I(0)],
    &[K("workerGroupSpecs"), I(0), K("rayStartParams")],
    &[K("workerGroupSpecs"), I(1)],
];

/// Where patches land in any object.
const OBJECT_SPOTS: &[&[Seg]] = &[
    &[],
    &[K("metadata")],
    &[K("metadata"), K("labels")],
    &[K("metadata"), K("annotations")],
    &[K("spec")],
];

/// Where the skeleton of each kind keeps its Ray cluster specs and pod templates.
fn places(kind: u8) -> (Vec<Vec<Seg>>, Vec<Vec<Seg>>) {
    let cluster = |p: &[Seg]| {
        let t = |rest: &[Seg]| [p, rest].concat();
        (
            vec![p.to_vec()],
            vec![
                t(&[K("headGroupSpec"), K("template")]),
                t(&[K("workerGroupSpecs"), I(0), K("template")]),
            ],
        )
    };
    match kind {
        0 => cluster(&[K("spec")]),
        1 => {
            let (c, mut t) = cluster(&[K("spec"), K("rayClusterSpec")]);
            t.push(vec![K("spec"), K("submitterPodTemplate")]);
            (c, t)
        }
        2 => cluster(&[K("spec"), K("rayClusterConfig")]),
        3 => cluster(&[K("spec"), K("jobTemplate"), K("rayClusterSpec")]),
        4 => (vec![], vec![vec![]]),
        5 => (vec![], vec![vec![K("spec"), K("template")]]),
        _ => (vec![], vec![]),
    }
}

/// Paths of the maps a patch may land in, for a skeleton kind.
fn spots(kind: u8) -> Vec<Vec<Seg>> {
    let (clusters, templates) = places(kind);
    let mut out: Vec<Vec<Seg>> = OBJECT_SPOTS.iter().map(|s| s.to_vec()).collect();
    for c in &clusters {
        out.extend(CLUSTER_SPOTS.iter().map(|s| [c.as_slice(), s].concat()));
    }
    for t in &templates {
        out.extend(POD_SPOTS.iter().map(|s| [t.as_slice(), s].concat()));
    }
    out
}

#[derive(Clone, Copy)]
enum Seg {
    K(&'static str),
    I(usize),
}
use Seg::{I, K};

#[derive(Clone, Debug)]
enum V {
    Null,
    Bool(bool),
    Int(i64),
    /// `true` when quoted.
    Str(String, bool),
    /// Arbitrary text printed as is: may make the document invalid.
    Raw(String),
    Seq(Vec<V>),
    Map(Vec<(String, V)>),
}

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    raw: bool,
}

impl Gen<'_, '_> {
    fn key(&mut self) -> Result<String> {
        Ok(if self.u.ratio(7, 8)? {
            self.u.choose(KEYS)?.to_string()
        } else {
            let s: String = self.u.arbitrary()?;
            s.chars().take(40).collect()
        })
    }

    fn word(&mut self) -> Result<V> {
        Ok(if self.u.ratio(6, 8)? {
            let w = self.u.choose(WORDS)?;
            V::Str(w.to_string(), self.u.arbitrary()?)
        } else if self.u.ratio(1, 8)? {
            self.raw = true;
            let s: String = self.u.arbitrary()?;
            V::Raw(s.chars().take(80).collect())
        } else {
            let s: String = self.u.arbitrary()?;
            V::Str(s.chars().take(200).collect(), true)
        })
    }

    fn value(&mut self, depth: u32) -> Result<V> {
        let max = if depth >= 6 { 4 } else { 7 };
        Ok(match self.u.int_in_range(0..=max)? {
            0 => V::Null,
            1 => V::Bool(self.u.arbitrary()?),
            2 => V::Int(self.u.arbitrary()?),
            3 | 4 => self.word()?,
            5 => {
                let n = self.u.int_in_range(0..=4)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                V::Seq(items)
            }
            _ => {
                let n = self.u.int_in_range(0..=5)?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push((self.key()?, self.value(depth + 1)?));
                }
                V::Map(entries)
            }
        })
    }
}

fn s(t: &str) -> V {
    V::Str(t.to_string(), false)
}

fn map(entries: Vec<(&str, V)>) -> V {
    V::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn container(name: &str) -> V {
    map(vec![
        ("name", s(name)),
        ("image", s("rayproject/ray:2.9.0")),
    ])
}

fn pod_template(c: &str) -> V {
    map(vec![(
        "spec",
        map(vec![("containers", V::Seq(vec![container(c)]))]),
    )])
}

fn ray_cluster_spec() -> V {
    map(vec![
        ("rayVersion", s("2.9.0")),
        (
            "headGroupSpec",
            map(vec![
                ("rayStartParams", map(vec![])),
                ("template", pod_template("ray-head")),
            ]),
        ),
        (
            "workerGroupSpecs",
            V::Seq(vec![map(vec![
                ("groupName", s("workers")),
                ("rayStartParams", map(vec![])),
                ("template", pod_template("ray-worker")),
            ])]),
        ),
    ])
}

/// Number of skeleton kinds.
const SKELETONS: u8 = 12;

fn skeleton(which: u8) -> V {
    let obj = |api: &str, kind: &str, spec: V| {
        map(vec![
            ("apiVersion", s(api)),
            ("kind", s(kind)),
            (
                "metadata",
                map(vec![("name", s("x")), ("namespace", s("ns"))]),
            ),
            ("spec", spec),
        ])
    };
    match which {
        0 => obj("ray.io/v1", "RayCluster", ray_cluster_spec()),
        1 => obj(
            "ray.io/v1",
            "RayJob",
            map(vec![
                ("entrypoint", s("python")),
                ("rayClusterSpec", ray_cluster_spec()),
                ("submitterPodTemplate", pod_template("submitter")),
            ]),
        ),
        2 => obj(
            "ray.io/v1",
            "RayService",
            map(vec![("rayClusterConfig", ray_cluster_spec())]),
        ),
        3 => obj(
            "ray.io/v1",
            "RayCronJob",
            map(vec![
                ("schedule", s("@hourly")),
                (
                    "jobTemplate",
                    map(vec![("rayClusterSpec", ray_cluster_spec())]),
                ),
            ]),
        ),
        4 => obj(
            "v1",
            "Pod",
            map(vec![("containers", V::Seq(vec![container("c")]))]),
        ),
        5 => obj(
            "apps/v1",
            "Deployment",
            map(vec![("template", pod_template("c"))]),
        ),
        6 => obj(
            "v1",
            "Service",
            map(vec![
                ("type", s("LoadBalancer")),
                ("selector", map(vec![("ray.io/cluster", s("x"))])),
            ]),
        ),
        7 => obj(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            map(vec![
                (
                    "podSelector",
                    map(vec![("matchLabels", map(vec![("ray.io/cluster", s("x"))]))]),
                ),
                ("ingress", V::Seq(vec![map(vec![("from", V::Seq(vec![]))])])),
            ]),
        ),
        8 => obj("rbac.authorization.k8s.io/v1", "ClusterRole", map(vec![])),
        9 => obj("rbac.authorization.k8s.io/v1", "RoleBinding", map(vec![])),
        10 => obj("v1", "ResourceQuota", map(vec![("hard", map(vec![]))])),
        _ => obj("networking.k8s.io/v1", "Ingress", map(vec![])),
    }
}

/// Sets `key: value` (or removes `key` when `value` is `None`) in the map at `spot`,
/// creating the way there.
fn patch(root: &mut V, spot: &[Seg], key: String, value: Option<V>) {
    let mut cur = root;
    for seg in spot {
        cur = match *seg {
            K(k) => {
                if !matches!(cur, V::Map(_)) {
                    *cur = V::Map(Vec::new());
                }
                let V::Map(entries) = cur else { unreachable!() };
                let i = match entries.iter().position(|(ek, _)| ek == k) {
                    Some(i) => i,
                    None => {
                        entries.push((k.to_string(), V::Map(Vec::new())));
                        entries.len() - 1
                    }
                };
                &mut entries[i].1
            }
            I(i) => {
                if !matches!(cur, V::Seq(_)) {
                    *cur = V::Seq(Vec::new());
                }
                let V::Seq(items) = cur else { unreachable!() };
                while items.len() <= i {
                    items.push(V::Map(Vec::new()));
                }
                &mut items[i]
            }
        };
    }
    if !matches!(cur, V::Map(_)) {
        *cur = V::Map(Vec::new());
    }
    let V::Map(entries) = cur else { unreachable!() };
    match (entries.iter().position(|(k, _)| *k == key), value) {
        (Some(i), Some(v)) => entries[i].1 = v,
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, Some(v)) => entries.push((key, v)),
        (None, None) => {}
    }
}

fn quote(t: &str, out: &mut String) {
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Outside YAML's printable set, or line breaks and BOM: escape.
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{a0}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Words from the vocabulary that are safe unquoted in flow and block context (the others,
/// and all keys outside the vocabulary, are quoted).
fn plain_ok(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-<".contains(c))
        && !t.starts_with('-')
        && t != "<<"
}

fn flow(v: &V, json: bool, out: &mut String) {
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Int(i) => out.push_str(&i.to_string()),
        V::Str(t, quoted) => {
            if !json && !quoted && plain_ok(t) {
                out.push_str(t)
            } else {
                quote(t, out)
            }
        }
        V::Raw(t) => out.push_str(t),
        V::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(it, json, out);
            }
            out.push(']');
        }
        V::Map(entries) => {
            out.push('{');
            for (i, (k, it)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                key(k, json, out);
                out.push_str(": ");
                flow(it, json, out);
            }
            out.push('}');
        }
    }
}

fn key(k: &str, json: bool, out: &mut String) {
    if !json && (plain_ok(k) || k == "<<") {
        out.push_str(k)
    } else {
        quote(k, out)
    }
}

/// Block style down to `flow_at` levels, flow style below.
fn block(v: &V, indent: usize, flow_at: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        V::Map(entries) if !entries.is_empty() && flow_at > 0 => {
            for (k, it) in entries {
                out.push_str(&pad);
                key(k, false, out);
                out.push(':');
                nested(it, indent, flow_at, out);
            }
        }
        V::Seq(items) if !items.is_empty() && flow_at > 0 => {
            for it in items {
                out.push_str(&pad);
                out.push('-');
                nested(it, indent, flow_at, out);
            }
        }
        _ => {
            out.push_str(&pad);
            flow(v, false, out);
            out.push('\n');
        }
    }
}

fn nested(v: &V, indent: usize, flow_at: usize, out: &mut String) {
    match v {
        V::Map(e) if !e.is_empty() && flow_at > 1 => {
            out.push('\n');
            block(v, indent + 2, flow_at - 1, out);
        }
        V::Seq(e) if !e.is_empty() && flow_at > 1 => {
            out.push('\n');
            block(v, indent + 2, flow_at - 1, out);
        }
        _ => {
            out.push(' ');
            flow(v, false, out);
            out.push('\n');
        }
    }
}

fn generate(u: &mut Unstructured<'_>) -> Result<(String, bool)> {
    let mut g = Gen { u, raw: false };
    let ndocs = g.u.int_in_range(1..=3)?;
    let mut text = String::new();
    for d in 0..ndocs {
        let kind = g.u.int_in_range(0..=SKELETONS - 1)?;
        let mut root = skeleton(kind);
        let spots = spots(kind);
        let npatches = g.u.int_in_range(0..=8)?;
        for _ in 0..npatches {
            let spot = g.u.choose(&spots)?.clone();
            let k = g.key()?;
            let v = if g.u.ratio(1, 8)? {
                None
            } else {
                Some(g.value(0)?)
            };
            patch(&mut root, &spot, k, v);
        }
        let style = g.u.int_in_range(0..=3)?;
        if d > 0 {
            text.push_str("---\n");
        }
        match style {
            0 => {
                flow(&root, true, &mut text);
                text.push('\n');
            }
            1 => {
                flow(&root, false, &mut text);
                text.push('\n');
            }
            _ => {
                let flow_at = g.u.int_in_range(1..=12)?;
                block(&root, 0, flow_at, &mut text);
            }
        }
    }
    Ok((text, g.raw))
}

/// `RAYWARD_FUZZ_PRINT` and `RAYWARD_FUZZ_DUMP`, read once.
fn debug_env() -> &'static (bool, Option<std::path::PathBuf>) {
    static ENV: std::sync::OnceLock<(bool, Option<std::path::PathBuf>)> =
        std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        (
            std::env::var_os("RAYWARD_FUZZ_PRINT").is_some(),
            std::env::var_os("RAYWARD_FUZZ_DUMP").map(Into::into),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((text, raw)) = generate(&mut u) else {
        return;
    };
    let (print, dump) = debug_env();
    if *print {
        eprintln!(
            "--- generated ({} bytes, raw: {raw}) ---\n{text}",
            text.len()
        );
    }
    if let Some(path) = dump {
        std::fs::write(path, &text).expect("RAYWARD_FUZZ_DUMP");
    }
    let loaded = common::check(text.as_bytes());
    if !raw {
        if let Some(e) = loaded.error {
            panic!("generated valid YAML failed to load: {e}\n--- input ---\n{text}");
        }
    }
});
