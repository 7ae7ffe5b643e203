//! `harden --history STORE_URL`: the history collector (`rayward history collect`,
//! docs/history.md) beside the Ray container of every head and worker pod of a RayCluster,
//! RayJob or RayService.
//!
//! Per pod template:
//! - a shared emptyDir for Ray's temp dir (`/tmp/ray` in the Ray container, read-only in
//!   the collector; a volume the Ray container already mounts there is reused), and one for
//!   the collector's spool;
//! - Ray's event export switched on in the Ray container (the four variables measured on
//!   Ray 2.60), pointed at the collector's loopback endpoint;
//! - the collector container: the store URL, the object's kind and name as literals, the
//!   namespace and pod name from the downward API, `--head` on the head (snapshots, with the
//!   cluster token from the same Secret the Ray container reads), restricted
//!   securityContext, requests and limits;
//! - the store's credentials only from a mounted Secret (`--history-credentials-secret`,
//!   key `credentials`: `KEY=value` lines) or the pod's workload identity, never a literal;
//! - a preStop on the Ray container (when it has none) that keeps Ray up while the
//!   collector takes its last snapshot, and a `terminationGracePeriodSeconds` above the
//!   collector's final flush.
//!
//! The NetworkPolicies harden generates get an egress rule to the store
//! ([`egress_ports`]). Everything is recognised again by name and shape, so hardening
//! twice changes nothing the second time.

use rayward_manifest::{JsonPath, Node, Object, PodRole, Workload};
use rayward_rules::fix::{set_env, Changes};
use rayward_rules::Change;

/// The rule whose finding collection answers (a RayJob or a cluster deleted after its job
/// without history collection).
pub const RULE: &str = "RW904";
/// The collector container.
pub const CONTAINER: &str = "rayward-history";
/// The emptyDir shared with the Ray container (Ray's temp dir, `/tmp/ray`).
pub const RAY_VOLUME: &str = "rayward-history-ray";
/// The collector's spool.
pub const SPOOL_VOLUME: &str = "rayward-history-spool";
/// The store credentials Secret's volume.
pub const CREDENTIALS_VOLUME: &str = "rayward-history-credentials";
/// Ray's temp dir.
pub const RAY_DIR: &str = "/tmp/ray";
const SPOOL_DIR: &str = "/var/spool/rayward-history";
const CREDENTIALS_DIR: &str = "/etc/rayward/history";
/// The key of the credentials Secret the collector reads (`KEY=value` lines).
pub const CREDENTIALS_KEY: &str = "credentials";
/// Seconds the collector's final flush may take (`--final-flush`).
pub const FINAL_FLUSH: u32 = 25;
/// Seconds the Ray container's preStop waits, so the collector's SIGTERM snapshot still
/// finds the dashboard and Ray's last events arrive.
pub const PRE_STOP: u32 = 10;
/// The pod's grace: the final flush plus a margin for the process to exit.
pub const GRACE: i64 = 40;
/// The spool's bound on disk (`--spool-mib 256`) and its emptyDir's size limit.
const SPOOL_MIB: u32 = 256;

/// Ray's event export (docs/history.md, measured on Ray 2.60).
pub const EXPORT_ENV: [(&str, &str); 4] = [
    ("RAY_enable_ray_event", "true"),
    ("RAY_enable_core_worker_ray_event_to_aggregator", "true"),
    (
        "RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR",
        "http://127.0.0.1:8084/v1/events",
    ),
    (
        "RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES",
        "ALL",
    ),
];

/// What `--history` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The store URL the collectors write to (`history collect --store`).
    pub store: String,
    /// A Secret holding the store's credentials under key `credentials`; `None`: the pod's
    /// workload identity (IRSA, RRSA, GKE, Azure) provides them.
    pub credentials_secret: Option<String>,
}

/// Why a `--history` value is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadHistory {
    #[error("--history `{0}`: {1}")]
    Store(String, &'static str),
    #[error("--history-credentials-secret `{0}`: not a valid Secret name")]
    Secret(String),
}

impl History {
    /// Checks the URL the way the collector will open it (a local path is refused: in a
    /// pod it would be the pod's own disk, lost with it).
    pub fn new(store: &str, credentials_secret: Option<&str>) -> Result<History, BadHistory> {
        let bad = |why| Err(BadHistory::Store(redact(store), why));
        let Some((scheme, rest)) = store.split_once("://") else {
            return bad("expected s3://, gs:// or az:// (a directory in a pod dies with it)");
        };
        if !matches!(scheme, "s3" | "gs" | "az") {
            return bad("expected s3://, gs:// or az://");
        }
        if rest.is_empty() || rest.starts_with('/') {
            return bad("names no bucket");
        }
        if rest.contains('@') || rest.contains('?') || rest.contains('#') {
            return bad("holds credentials or a query; give credentials with --history-credentials-secret or workload identity");
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("holds whitespace");
        }
        if let Some(s) = credentials_secret {
            if s.len() > 253 || !s.split('.').all(rayward_manifest::names::is_dns_label) {
                return Err(BadHistory::Secret(s.to_string()));
            }
        }
        Ok(History {
            store: store.to_string(),
            credentials_secret: credentials_secret.map(str::to_string),
        })
    }
}

/// `url` cut before any `@`, for error messages.
fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, rest)) => format!("***@{rest}"),
        None => url.to_string(),
    }
}

/// Ports the Ray pods need to reach the store: HTTPS (S3, GCS and Azure endpoints).
pub fn egress_ports(_h: &History) -> &'static [i64] {
    &[443]
}

fn strings(xs: &[String]) -> Node {
    Node::new_seq(xs.iter().map(|s| Node::string(s.clone())).collect())
}

fn field_env(name: &str, path: &str) -> Node {
    Node::map_of([
        ("name", Node::string(name)),
        (
            "valueFrom",
            Node::map_of([(
                "fieldRef",
                Node::map_of([("fieldPath", Node::string(path))]),
            )]),
        ),
    ])
}

fn mount(name: &str, path: &str, read_only: bool) -> Node {
    let mut m = Node::map_of([
        ("name", Node::string(name)),
        ("mountPath", Node::string(path)),
    ]);
    if read_only {
        m.set("readOnly", Node::boolean(true));
    }
    m
}

fn name_of(n: &Node) -> Option<&str> {
    n.get("name").and_then(Node::as_str)
}

/// The collector container for one pod.
fn container(
    h: &History,
    image: &str,
    kind: &str,
    name: &str,
    head: bool,
    ray_volume: &str,
    token: Option<Node>,
) -> Node {
    let mut args: Vec<String> = [
        "history",
        "collect",
        "--store",
        &h.store,
        "--namespace",
        "$(POD_NAMESPACE)",
        "--kind",
        kind,
        "--name",
        name,
        "--node",
        "$(POD_NAME)",
        "--ray-dir",
        RAY_DIR,
        "--spool-dir",
        SPOOL_DIR,
        "--spool-mib",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(SPOOL_MIB.to_string());
    args.push("--final-flush".into());
    args.push(FINAL_FLUSH.to_string());
    if h.credentials_secret.is_some() {
        args.push("--credentials-file".into());
        args.push(format!("{CREDENTIALS_DIR}/{CREDENTIALS_KEY}"));
    }
    if head {
        args.push("--head".into());
    }
    let mut env = vec![
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_NAME", "metadata.name"),
    ];
    env.extend(token);
    let mut mounts = vec![
        mount(ray_volume, RAY_DIR, true),
        mount(SPOOL_VOLUME, SPOOL_DIR, false),
    ];
    if h.credentials_secret.is_some() {
        mounts.push(mount(CREDENTIALS_VOLUME, CREDENTIALS_DIR, true));
    }
    let amounts = |cpu: &str, mem: &str| {
        Node::map_of([("cpu", Node::string(cpu)), ("memory", Node::string(mem))])
    };
    Node::map_of([
        ("name", Node::string(CONTAINER)),
        ("image", Node::string(image)),
        // Arguments only: the image's entrypoint is rayward.
        ("args", strings(&args)),
        ("env", Node::new_seq(env)),
        (
            "resources",
            Node::map_of([
                ("requests", amounts("50m", "64Mi")),
                ("limits", amounts("500m", "128Mi")),
            ]),
        ),
        (
            "securityContext",
            Node::map_of([
                ("privileged", Node::boolean(false)),
                ("allowPrivilegeEscalation", Node::boolean(false)),
                ("readOnlyRootFilesystem", Node::boolean(true)),
                ("runAsNonRoot", Node::boolean(true)),
                ("runAsUser", Node::int(65532)),
                ("runAsGroup", Node::int(65532)),
                (
                    "capabilities",
                    Node::map_of([("drop", Node::new_seq(vec![Node::string("ALL")]))]),
                ),
                (
                    "seccompProfile",
                    Node::map_of([("type", Node::string("RuntimeDefault"))]),
                ),
            ]),
        ),
        ("volumeMounts", Node::new_seq(mounts)),
    ])
}

/// The env entry that gives the collector the cluster token: the Ray container's own
/// `RAY_AUTH_TOKEN` when it declares one from a Secret, else the Secret KubeRay creates for
/// `authOptions.mode: token` (`authOptions.secretName`, or the RayCluster's name, key
/// `auth_token`). `None` when neither is known (a RayJob or RayService whose generated
/// cluster name is not known before it runs: set `authOptions.secretName`).
fn token_env(ray: &Node, cluster: Option<&Node>, obj: &Object) -> Option<Node> {
    let declared = ray
        .get("env")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .rev()
        .find(|e| name_of(e) == Some("RAY_AUTH_TOKEN"))
        .filter(|e| e.path(&["valueFrom", "secretKeyRef"]).is_some());
    if let Some(e) = declared {
        return Some(e.clone());
    }
    let auth = cluster?.get("authOptions")?;
    if auth.get("mode").and_then(Node::as_str) != Some("token") {
        return None;
    }
    let secret = match auth.get("secretName").and_then(Node::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ if obj.kind_name == "RayCluster" => obj.name.clone(),
        _ => return None,
    };
    Some(Node::map_of([
        ("name", Node::string("RAY_AUTH_TOKEN")),
        (
            "valueFrom",
            Node::map_of([(
                "secretKeyRef",
                Node::map_of([
                    ("name", Node::string(secret)),
                    ("key", Node::string("auth_token")),
                ]),
            )]),
        ),
    ]))
}

struct Pod {
    spec: JsonPath,
    ray: JsonPath,
    head: bool,
    token: Option<Node>,
}

/// Adds collection to every head and worker pod of `obj` (RayCluster, RayJob,
/// RayService; other kinds are left alone).
pub fn apply(obj: &mut Object, h: &History, image: &str) -> Vec<Change> {
    if !matches!(
        obj.kind_name.as_str(),
        "RayCluster" | "RayJob" | "RayService"
    ) {
        return Vec::new();
    }
    let mut ch = Changes::new(RULE);
    let pods: Vec<Pod> = {
        let w = Workload::of(obj);
        w.templates
            .iter()
            .filter(|t| t.role.is_ray_node())
            .filter_map(|t| {
                let ray = t.containers().into_iter().find(|c| c.is_ray())?;
                let cluster = t.cluster.and_then(|i| w.clusters.get(i)).map(|c| c.node);
                Some(Pod {
                    spec: t.spec_path(),
                    ray: ray.path.clone(),
                    head: t.role == PodRole::Head,
                    token: token_env(ray.node, cluster, obj),
                })
            })
            .collect()
    };
    let (kind, name) = (obj.kind_name.clone(), obj.name.clone());
    for p in pods {
        let ray_volume = ray_container(obj, &p.ray, &mut ch);
        let Some(spec) = pod_spec_mut(&mut obj.root, &p.spec) else {
            continue;
        };
        let Some(vols) = spec.seq_entry("volumes") else {
            continue;
        };
        let mut wanted = Vec::new();
        if ray_volume == RAY_VOLUME {
            wanted.push(Node::map_of([
                ("name", Node::string(RAY_VOLUME)),
                ("emptyDir", Node::new_map()),
            ]));
        }
        wanted.push(Node::map_of([
            ("name", Node::string(SPOOL_VOLUME)),
            (
                "emptyDir",
                Node::map_of([("sizeLimit", Node::string(format!("{}Mi", SPOOL_MIB + 64)))]),
            ),
        ]));
        if let Some(s) = &h.credentials_secret {
            wanted.push(Node::map_of([
                ("name", Node::string(CREDENTIALS_VOLUME)),
                (
                    "secret",
                    Node::map_of([
                        ("secretName", Node::string(s.clone())),
                        (
                            "items",
                            Node::new_seq(vec![Node::map_of([
                                ("key", Node::string(CREDENTIALS_KEY)),
                                ("path", Node::string(CREDENTIALS_KEY)),
                            ])]),
                        ),
                    ]),
                ),
            ]));
        }
        for v in wanted {
            let n = name_of(&v).unwrap_or_default().to_string();
            match vols
                .seq_mut()
                .iter_mut()
                .position(|x| name_of(x) == Some(n.as_str()))
            {
                Some(i) if vols.as_seq()[i].same_as(&v) => {}
                Some(i) => {
                    vols.seq_mut()[i] = v;
                    ch.add(
                        &p.spec.key("volumes").idx(i),
                        format!("set volume `{n}` for the history collector"),
                    );
                }
                None => {
                    vols.push(v);
                    ch.add(
                        &p.spec.key("volumes"),
                        format!("add volume `{n}` for the history collector"),
                    );
                }
            }
        }
        let want = container(h, image, &kind, &name, p.head, &ray_volume, p.token);
        let Some(cs) = spec.seq_entry("containers") else {
            continue;
        };
        match cs
            .as_seq()
            .iter()
            .position(|c| name_of(c) == Some(CONTAINER))
        {
            Some(i) if cs.as_seq()[i].same_as(&want) => {}
            Some(i) => {
                cs.seq_mut()[i] = want;
                ch.add(
                    &p.spec.key("containers").idx(i),
                    "set the history collector (rayward history collect)",
                );
            }
            None => {
                cs.push(want);
                ch.add(
                    &p.spec.key("containers"),
                    "add the history collector (rayward history collect)",
                );
            }
        }
        let grace = spec
            .get("terminationGracePeriodSeconds")
            .and_then(Node::as_i64);
        if grace.is_none_or(|g| g < GRACE) {
            spec.set("terminationGracePeriodSeconds", Node::int(GRACE));
            ch.add(
                &p.spec.key("terminationGracePeriodSeconds"),
                format!("{GRACE} s, above the collector's final flush ({FINAL_FLUSH} s)"),
            );
        }
    }
    ch.list
}

/// The pod spec at `path`, created when missing.
fn pod_spec_mut<'n>(root: &'n mut Node, path: &JsonPath) -> Option<&'n mut Node> {
    let target = rayward_rules::fix::PodTarget {
        role: PodRole::Head,
        spec_path: path.clone(),
        cluster: None,
    };
    target.spec_mut(root).filter(|n| n.is_map())
}

/// The Ray container's part: export on, Ray's temp dir on the shared volume, the preStop.
/// Returns the volume mounted at `/tmp/ray`.
fn ray_container(obj: &mut Object, path: &JsonPath, ch: &mut Changes) -> String {
    let Some(c) = obj.root.at_path_mut(path).filter(|c| c.is_map()) else {
        return RAY_VOLUME.to_string();
    };
    for (k, v) in EXPORT_ENV {
        if set_env(c, k, v) {
            ch.add(
                &path.key("env"),
                format!("set {k}={v} (event export to the collector)"),
            );
        }
    }
    let existing = c
        .get("volumeMounts")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .find(|m| {
            m.get("mountPath")
                .and_then(Node::as_str)
                .is_some_and(|p| p.trim_end_matches('/') == RAY_DIR)
                && m.get("subPath").is_none()
        })
        .and_then(name_of)
        .map(str::to_string);
    let volume = match existing {
        Some(v) => v,
        None => {
            if let Some(ms) = c.seq_entry("volumeMounts") {
                ms.push(mount(RAY_VOLUME, RAY_DIR, false));
                ch.add(
                    &path.key("volumeMounts"),
                    format!("mount `{RAY_VOLUME}` at {RAY_DIR}, shared with the history collector"),
                );
            }
            RAY_VOLUME.to_string()
        }
    };
    if c.path(&["lifecycle", "preStop"]).is_none() {
        if let Some(l) = c.map_entry("lifecycle") {
            l.set(
                "preStop",
                Node::map_of([(
                    "exec",
                    Node::map_of([(
                        "command",
                        strings(&["sleep".to_string(), PRE_STOP.to_string()]),
                    )]),
                )]),
            );
            ch.add(
                &path.keys(&["lifecycle", "preStop"]),
                format!("wait {PRE_STOP} s before Ray stops, for the collector's last snapshot"),
            );
        }
    }
    volume
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert!(History::new("s3://bucket/prefix", None).is_ok());
        assert!(History::new("gs://b", Some("history-creds")).is_ok());
        for (u, why) in [
            ("/data", "a directory in a pod"),
            ("file:///data", "expected s3://"),
            ("s3://", "names no bucket"),
            ("s3://AKIA:secret@bucket/x", "holds credentials"),
            ("s3://bucket/x?key=1", "holds credentials"),
        ] {
            let e = History::new(u, None).unwrap_err().to_string();
            assert!(e.contains(why), "{u}: {e}");
            assert!(!e.contains("AKIA") && !e.contains(":secret"), "{e}");
        }
        assert_eq!(
            History::new("s3://b", Some("Bad_Name")).unwrap_err(),
            BadHistory::Secret("Bad_Name".into())
        );
    }
}
