//! The fix of RW101 and RW102 (see [`TlsFix`]): one file, beside the rules it answers.

use super::{groups, operator_mtls, tls_of, Tls, CERT_VARS};
use rayward_manifest::{JsonPath, Node, PodRole, Workload};

/// Volume holding the CA Secret; mounted by the cert init container only.
pub const CA_VOLUME: &str = "rayward-ca";
/// Volume (memory-backed emptyDir) holding the node certificate, its key and `ca.crt`.
pub const TLS_VOLUME: &str = "rayward-tls";
/// The init container that issues the node certificate.
pub const CERT_INIT: &str = "rayward-certs";
const CA_DIR: &str = "/etc/ray/ca";
const TLS_DIR: &str = "/etc/ray/tls";

/// The TLS env every Ray container (and the autoscaler) gets, for the certificate
/// mounted at `dir`.
fn tls_env(dir: &str) -> [(&'static str, String); 4] {
    [
        ("RAY_USE_TLS", "1".to_string()),
        ("RAY_TLS_SERVER_CERT", format!("{dir}/tls.crt")),
        ("RAY_TLS_SERVER_KEY", format!("{dir}/tls.key")),
        ("RAY_TLS_CA_CERT", format!("{dir}/ca.crt")),
    ]
}

/// Harden's own objects are recognised by their whole shape, never by name alone: a
/// user's hostPath volume called `rayward-tls`, a volume `rayward-ca` of another Secret or
/// an init container `rayward-certs` of any image is not harden's, and harden then takes
/// a fresh name (`rayward-tls-1`, …) for its own. A name is harden's family when it is
/// `base` or `base-N`.
fn in_family(name: Option<&str>, base: &str) -> bool {
    name.is_some_and(|n| {
        n == base
            || n.strip_prefix(base)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn name_of(n: &Node) -> Option<&str> {
    n.get("name").and_then(Node::as_str)
}

/// The memory-backed emptyDir harden adds for the node certificate, and nothing else.
fn is_own_tls_volume(v: &Node) -> bool {
    in_family(name_of(v), TLS_VOLUME)
        && v.as_map().len() == 2
        && v.path(&["emptyDir", "medium"]).and_then(Node::as_str) == Some("Memory")
        && v.get("emptyDir").is_some_and(|e| e.as_map().len() == 1)
}

/// The CA Secret volume harden adds: the configured Secret, and nothing else.
fn is_own_ca_volume(v: &Node, secret: &str) -> bool {
    in_family(name_of(v), CA_VOLUME)
        && v.as_map().len() == 2
        && v.path(&["secret", "secretName"]).and_then(Node::as_str) == Some(secret)
        && v.get("secret").is_some_and(|e| e.as_map().len() == 1)
}

/// The certificate issuer harden adds: its image, its arguments, and the two volumes
/// mounted where the arguments say.
fn is_own_init(c: &Node, image: &str, ca: &str, tls: &str) -> bool {
    let args: Vec<&str> = c
        .get("args")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::as_str)
        .collect();
    let mounts = c.get("volumeMounts").map(Node::as_seq).unwrap_or(&[]);
    let mounted = |name: &str, path: &str| {
        mounts.iter().any(|m| {
            name_of(m) == Some(name) && m.get("mountPath").and_then(Node::as_str) == Some(path)
        })
    };
    in_family(name_of(c), CERT_INIT)
        && c.get("image").and_then(Node::as_str) == Some(image)
        && args == CERT_ARGS
        && c.get("command").is_none()
        && mounted(ca, CA_DIR)
        && mounted(tls, TLS_DIR)
}

/// `base`, or the first `base-N` no item of `list` is named.
fn fresh_name(list: &Node, base: &str) -> String {
    let taken = |n: &str| list.as_seq().iter().any(|x| name_of(x) == Some(n));
    std::iter::once(base.to_string())
        .chain((1..).map(|i| format!("{base}-{i}")))
        .find(|n| !taken(n))
        .expect("an unbounded sequence has a free name")
}

const CERT_ARGS: [&str; 7] = ["certs", "node", "--ca", CA_DIR, "--out", TLS_DIR, "--force"];

/// The fix of RW101 and RW102: mutual TLS between every Ray node of a cluster, with a
/// certificate per pod.
///
/// Each head and worker pod gets an init container running `rayward certs node` (its pod
/// IP from the downward API in the certificate's SANs), which alone mounts the CA Secret
/// read-only and writes `tls.crt`, `tls.key` and a copy of `ca.crt` into a memory-backed
/// emptyDir; the Ray container and the autoscaler mount that emptyDir read-only and get
/// `RAY_USE_TLS=1` and the three paths. The CA key never reaches a container that runs
/// Ray jobs. A cluster whose every group already runs TLS with its own certificates is
/// left alone (only an autoscaler without TLS gets the head's TLS env and mounts); a
/// cluster with TLS on some groups only is given this TLS everywhere, so all its nodes
/// trust one CA.
pub struct TlsFix;

struct TlsPlan {
    pod_specs: Vec<JsonPath>,
    ray_containers: Vec<JsonPath>,
    autoscalers: Vec<JsonPath>,
    /// (cluster path, head Ray container path): copy the head's own TLS to the autoscaler.
    copy_to_autoscaler: Vec<(JsonPath, JsonPath)>,
}

fn tls_plan(obj: &rayward_manifest::Object) -> TlsPlan {
    let w = Workload::of(obj);
    let mut plan = TlsPlan {
        pod_specs: Vec::new(),
        ray_containers: Vec::new(),
        autoscalers: Vec::new(),
        copy_to_autoscaler: Vec::new(),
    };
    for (ci, cluster) in w.clusters.iter().enumerate() {
        if operator_mtls(cluster.node) {
            continue;
        }
        let gs = groups(&w, ci);
        if gs.is_empty() {
            continue;
        }
        let complete = gs
            .iter()
            .all(|g| matches!(tls_of(&g.ray), Tls::On { ref missing } if missing.is_empty()));
        let autoscaler_off = w.autoscaler(ci).is_some_and(|a| tls_of(&a) == Tls::Off);
        if complete {
            if autoscaler_off {
                if let Some(h) = gs.iter().find(|g| g.template.role == PodRole::Head) {
                    plan.copy_to_autoscaler
                        .push((cluster.path.clone(), h.ray.path.clone()));
                }
            }
            continue;
        }
        for g in &gs {
            plan.pod_specs.push(g.template.spec_path());
            plan.ray_containers.push(g.ray.path.clone());
        }
        if w.autoscaler(ci).is_some() {
            plan.autoscalers.push(cluster.path.clone());
        }
    }
    plan
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

fn cert_init_container(image: &str, name: &str, ca: &str, tls: &str) -> Node {
    let strings = |xs: &[&str]| Node::new_seq(xs.iter().map(|s| Node::string(*s)).collect());
    let amounts = || {
        Node::map_of([
            ("cpu", Node::string("100m")),
            ("memory", Node::string("64Mi")),
        ])
    };
    Node::map_of([
        ("name", Node::string(name)),
        ("image", Node::string(image)),
        // Arguments only: the image's entrypoint is rayward (the project's image is the
        // static binary alone, at /rayward, with no shell and no PATH to find it by).
        ("args", strings(&CERT_ARGS)),
        (
            "env",
            Node::new_seq(vec![Node::map_of([
                ("name", Node::string("POD_IP")),
                (
                    "valueFrom",
                    Node::map_of([(
                        "fieldRef",
                        Node::map_of([("fieldPath", Node::string("status.podIP"))]),
                    )]),
                ),
            ])]),
        ),
        (
            "resources",
            Node::map_of([("requests", amounts()), ("limits", amounts())]),
        ),
        (
            "volumeMounts",
            Node::new_seq(vec![mount(ca, CA_DIR, true), mount(tls, TLS_DIR, false)]),
        ),
    ])
}

fn named<'n>(list: &'n mut Node, name: &str) -> Option<&'n mut Node> {
    list.seq_mut()
        .iter_mut()
        .find(|n| n.get("name").and_then(Node::as_str) == Some(name))
}

/// Adds the TLS env and the read-only mount of the node certificate (volume `tls`) to a
/// container. The mount goes to `/etc/ray/tls`, or the first `/etc/ray/tls-N` the
/// container does not mount anything else at (a second mount at one path is refused by
/// the API server); the env points where it went.
fn tls_container(c: &mut Node, path: &JsonPath, tls: &str, ch: &mut crate::fix::Changes) {
    let mounts = c.get("volumeMounts").map(Node::as_seq).unwrap_or(&[]);
    let path_of = |m: &Node| {
        m.get("mountPath")
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    let existing = mounts
        .iter()
        .find(|m| name_of(m) == Some(tls))
        .and_then(path_of);
    let dir = existing.clone().unwrap_or_else(|| {
        let used: Vec<String> = mounts.iter().filter_map(path_of).collect();
        std::iter::once(TLS_DIR.to_string())
            .chain((1..).map(|i| format!("{TLS_DIR}-{i}")))
            .find(|d| !used.iter().any(|u| u.trim_end_matches('/') == d))
            .expect("an unbounded sequence has a free path")
    });
    for (k, v) in tls_env(&dir) {
        let existing = c.get("env").and_then(|e| {
            e.as_seq()
                .iter()
                .rposition(|x| x.get("name").and_then(Node::as_str) == Some(k))
        });
        if crate::fix::set_env(c, k, &v) {
            match existing {
                Some(i) => ch.add(&path.key("env").idx(i), format!("set {k}={v}")),
                None => ch.add(&path.key("env"), format!("add {k}={v}")),
            }
        }
    }
    if existing.is_none() {
        if let Some(mounts) = c.seq_entry("volumeMounts") {
            mounts.push(mount(tls, &dir, true));
            ch.add(
                &path.key("volumeMounts"),
                format!("mount the node certificate read-only at {dir}"),
            );
        }
    }
}

impl crate::fix::Fix for TlsFix {
    fn safe(&self) -> bool {
        false
    }

    fn fix(
        &self,
        obj: &mut rayward_manifest::Object,
        cx: &crate::fix::FixContext<'_>,
    ) -> Vec<crate::Change> {
        let mut ch = crate::fix::Changes::new("RW101");
        let plan = tls_plan(obj);
        let secret = cx.options.ca_secret.clone();
        let image = cx.options.cert_image.clone();
        // The TLS volume's name in each pod spec, for the containers of that pod.
        let mut tls_names: Vec<(JsonPath, String)> = Vec::new();
        for sp in &plan.pod_specs {
            let target = crate::fix::PodTarget {
                role: PodRole::Head,
                spec_path: sp.clone(),
                cluster: None,
            };
            let Some(spec) = target.spec_mut(&mut obj.root) else {
                continue;
            };
            let Some(vols) = spec.seq_entry("volumes") else {
                continue;
            };
            let ca = match vols.as_seq().iter().find(|v| is_own_ca_volume(v, &secret)) {
                Some(v) => name_of(v).unwrap_or(CA_VOLUME).to_string(),
                None => {
                    let name = fresh_name(vols, CA_VOLUME);
                    vols.push(Node::map_of([
                        ("name", Node::string(name.clone())),
                        (
                            "secret",
                            Node::map_of([("secretName", Node::string(secret.clone()))]),
                        ),
                    ]));
                    ch.add(
                        &sp.key("volumes"),
                        format!("add the CA Secret `{secret}` as volume `{name}`"),
                    );
                    name
                }
            };
            let tls = match vols.as_seq().iter().find(|v| is_own_tls_volume(v)) {
                Some(v) => name_of(v).unwrap_or(TLS_VOLUME).to_string(),
                None => {
                    let name = fresh_name(vols, TLS_VOLUME);
                    vols.push(Node::map_of([
                        ("name", Node::string(name.clone())),
                        (
                            "emptyDir",
                            Node::map_of([("medium", Node::string("Memory"))]),
                        ),
                    ]));
                    ch.add(
                        &sp.key("volumes"),
                        format!("add a memory-backed volume `{name}` for the node certificate"),
                    );
                    name
                }
            };
            if let Some(inits) = spec.seq_entry("initContainers") {
                if !inits
                    .as_seq()
                    .iter()
                    .any(|c| is_own_init(c, &image, &ca, &tls))
                {
                    let name = fresh_name(inits, CERT_INIT);
                    inits.insert(0, cert_init_container(&image, &name, &ca, &tls));
                    ch.add(
                        &sp.key("initContainers").idx(0),
                        format!("add the init container `{name}` issuing this pod's certificate"),
                    );
                }
            }
            tls_names.push((sp.clone(), tls));
        }
        let tls_for = |container: &JsonPath| {
            tls_names
                .iter()
                .filter(|(sp, _)| container.as_str().starts_with(&format!("{}.", sp.as_str())))
                .max_by_key(|(sp, _)| sp.as_str().len())
                .map(|(_, n)| n.clone())
        };
        for cp in &plan.ray_containers {
            let Some(tls) = tls_for(cp) else { continue };
            if let Some(c) = obj.root.at_path_mut(cp).filter(|c| c.is_map()) {
                tls_container(c, cp, &tls, &mut ch);
            }
        }
        for cluster in &plan.autoscalers {
            // The autoscaler runs in the head pod: the head's TLS volume.
            let head = cluster.keys(&["headGroupSpec", "template", "spec", "x"]);
            let Some(tls) = tls_for(&head) else { continue };
            let path = cluster.key("autoscalerOptions");
            if let Some(a) = obj
                .root
                .at_path_mut(cluster)
                .and_then(|c| c.map_entry("autoscalerOptions"))
            {
                tls_container(a, &path, &tls, &mut ch);
            }
        }
        for (cluster, head) in &plan.copy_to_autoscaler {
            let Some(h) = obj.root.at_path_mut(head) else {
                continue;
            };
            let env: Vec<Node> = h
                .get("env")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter(|e| {
                    e.get("name")
                        .and_then(Node::as_str)
                        .is_some_and(|n| n == "RAY_USE_TLS" || CERT_VARS.contains(&n))
                })
                .cloned()
                .collect();
            let files: Vec<String> = env
                .iter()
                .filter_map(|e| e.get("value").and_then(Node::as_str).map(str::to_string))
                .collect();
            let mounts: Vec<Node> = h
                .get("volumeMounts")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter(|m| {
                    m.get("mountPath")
                        .and_then(Node::as_str)
                        .is_some_and(|p| files.iter().any(|f| f.starts_with(p)))
                })
                .cloned()
                .collect();
            let path = cluster.key("autoscalerOptions");
            let Some(a) = obj
                .root
                .at_path_mut(cluster)
                .and_then(|c| c.map_entry("autoscalerOptions"))
            else {
                continue;
            };
            for e in env {
                let name = e
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(list) = a.seq_entry("env") {
                    list.retain_items(|x| x.get("name").and_then(Node::as_str) != Some(&name));
                    list.push(e);
                }
            }
            if let Some(list) = a.seq_entry("volumeMounts") {
                for m in mounts {
                    let name = m.get("name").and_then(Node::as_str).map(str::to_string);
                    if name.is_some_and(|n| named(list, &n).is_none()) {
                        list.push(m);
                    }
                }
            }
            ch.add(
                &path,
                "give the autoscaler the head's TLS env and certificate mounts",
            );
        }
        ch.list
    }
}
