//! `rayward watch` against a real kube-apiserver, through the binary (issue 13): an
//! insecure RayCluster shows in /metrics and as an Event within 2 s of its creation, its
//! series go when it is fixed, /readyz waits for the first listing, the watch recovers
//! from an API server restart, and of two replicas only the Lease holder writes Events,
//! none lost or written twice when it is killed.

use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use rayward_testkit::cli;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// GET over plain HTTP/1.0: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string()),
    )
}

/// Polls `f` every 50 ms until it is true or `limit` passes; the time it took.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn series(metrics: &str, namespace: &str, rule: &str) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("rayward_watch_findings{")
            && l.contains(&format!("namespace=\"{namespace}\""))
            && l.contains(&format!("rule=\"{rule}\""))
    })
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_watch_reports_and_clears_findings_as_objects_change() {
    let api = KubeApiserver::start();
    let dir = cli::tmp("watch");
    let kc = crate::live::insecure_kubeconfig(&api, &dir);
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "w1").await;
    });
    let (_child, addr) = start_watch(&kc, &["-n", "w1"]);
    assert_eq!(get(&addr, "/healthz").0, 200);
    until(Duration::from_secs(20), || get(&addr, "/readyz").0 == 200).expect("ready");

    let cluster = |privileged: bool| {
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "team-a", "namespace": "w1"},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.56.0",
                 "securityContext": {"privileged": privileged}}]}}}}})
    };
    let created = Instant::now();
    rayward_testkit::block_on(async {
        let dr = DryRun::new(api.client().await).await;
        dr.store("w1", &cluster(true)).await.unwrap();
    });
    let took = until(Duration::from_secs(2), || {
        series(&get(&addr, "/metrics").1, "w1", "RW501")
    })
    .unwrap_or_else(|| panic!("no RW501 series within 2 s: {}", get(&addr, "/metrics").1));
    eprintln!(
        "RW501 in /metrics {:?} after the create ({took:?} of polling)",
        created.elapsed()
    );
    // Whole-run rules too (no NetworkPolicy, no quota in w1).
    assert!(until(Duration::from_secs(2), || series(
        &get(&addr, "/metrics").1,
        "w1",
        "RW140"
    ))
    .is_some());
    // The Event on the offending object, from the same 2 s.
    let within = Duration::from_secs(2).saturating_sub(created.elapsed());
    until(within, || {
        events(&api, &["w1"])
            .iter()
            .any(|e| e.name == "team-a" && e.rule == "RW501")
    })
    .unwrap_or_else(|| {
        panic!(
            "no RW501 Event on team-a within 2 s of the create: {:?}",
            events(&api, &["w1"])
        )
    });
    let e = events(&api, &["w1"]);
    let ev = e.iter().find(|e| e.rule == "RW501").unwrap();
    assert_eq!(ev.kind, "RayCluster");
    assert!(
        !ev.uid.is_empty(),
        "the Event names the object's uid: {ev:?}"
    );
    assert!(ev.message.contains("RW501"), "{ev:?}");
    assert_eq!(ev.kind_of_event, "Warning");

    // The fix: the same cluster without the privileged container.
    rayward_testkit::block_on(async {
        let client = api.client().await;
        let ar = kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "ray.io",
            "v1",
            "RayCluster",
        ));
        let rc: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, "w1", &ar);
        rc.patch(
            "team-a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": cluster(false)["spec"]})),
        )
        .await
        .unwrap();
    });
    until(Duration::from_secs(2), || {
        !series(&get(&addr, "/metrics").1, "w1", "RW501")
    })
    .unwrap_or_else(|| {
        panic!(
            "RW501 still reported after the fix: {}",
            get(&addr, "/metrics").1
        )
    });
    let m = get(&addr, "/metrics").1;
    assert!(
        series(&m, "w1", "RW502"),
        "other findings of the cluster stay: {m}"
    );
    assert!(m.contains("rayward_watch_reaudit_seconds_count"), "{m}");
    assert!(
        m.contains("rayward_watch_last_full_audit_timestamp_seconds"),
        "{m}"
    );
    assert!(
        m.contains("rayward_watch_events_total{result=\"created\"}"),
        "{m}"
    );
    // One Event per object and rule, however many changes it went through.
    let all = events(&api, &["w1", "default"]);
    let mut keys: Vec<_> = all.iter().map(|e| (&e.name, &e.rule)).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, keys.len(), "an Event written twice: {all:?}");

    // The control plane restarts mid-watch (etcd keeps the objects): the watch comes back
    // by itself and judges what changed meanwhile.
    api.restart(Duration::from_secs(2));
    rayward_testkit::block_on(async {
        let dr = DryRun::new(api.client().await).await;
        let mut b = cluster(true);
        b["metadata"]["name"] = json!("team-b");
        dr.store("w1", &b).await.unwrap();
    });
    until(Duration::from_secs(60), || {
        series(&get(&addr, "/metrics").1, "w1", "RW501")
    })
    .unwrap_or_else(|| {
        panic!(
            "no RW501 for team-b after the API server restart: {}",
            get(&addr, "/metrics").1
        )
    });
    until(Duration::from_secs(30), || {
        events(&api, &["w1"])
            .iter()
            .any(|e| e.name == "team-b" && e.rule == "RW501")
    })
    .expect("an Event for team-b after the restart");
    let m = get(&addr, "/metrics").1;
    let errors: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("rayward_watch_api_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "the outage is counted: {m}");
    assert_eq!(get(&addr, "/readyz").0, 200);
}

/// One Event as the API server holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ev {
    kind: String,
    name: String,
    uid: String,
    rule: String,
    message: String,
    kind_of_event: String,
    count: i32,
    reporter: String,
}

/// The Events rayward wrote in `namespaces`.
fn events(api: &KubeApiserver, namespaces: &[&str]) -> Vec<Ev> {
    rayward_testkit::block_on(async {
        let client = api.client().await;
        let mut out = Vec::new();
        for ns in namespaces {
            let evs: kube::Api<k8s_openapi::api::core::v1::Event> =
                kube::Api::namespaced(client.clone(), ns);
            let lp = kube::api::ListParams::default()
                .labels("app.kubernetes.io/managed-by=rayward-watch");
            let Ok(list) = evs.list(&lp).await else {
                continue;
            };
            for e in list.items {
                let io = e.involved_object;
                out.push(Ev {
                    kind: io.kind.unwrap_or_default(),
                    name: io.name.unwrap_or_default(),
                    uid: io.uid.unwrap_or_default(),
                    rule: e.reason.unwrap_or_default(),
                    message: e.message.unwrap_or_default(),
                    kind_of_event: e.type_.unwrap_or_default(),
                    count: e.count.unwrap_or_default(),
                    reporter: e.reporting_instance.unwrap_or_default(),
                });
            }
        }
        out.sort();
        out
    })
}

/// Starts `rayward watch` with `extra` arguments; the child and its metrics address.
fn start_watch(kc: &std::path::Path, extra: &[&str]) -> (Killed, String) {
    let mut child = cli::command(env!("CARGO_BIN_EXE_rayward"));
    child
        .args([
            "watch",
            "--no-config",
            "--listen",
            "127.0.0.1:0",
            "--settle-ms",
            "100",
        ])
        .args(extra)
        .arg("--kubeconfig")
        .arg(kc)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = Killed(child.spawn().unwrap());
    let mut line = String::new();
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    // Keep reading stderr, so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            eprint!("watch: {sink}");
            sink.clear();
        }
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in: {line}"))
        .to_string();
    (child, addr)
}

fn lease_holder(api: &KubeApiserver, ns: &str) -> Option<String> {
    rayward_testkit::block_on(async {
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(api.client().await, ns);
        leases
            .get_opt("rayward-watch")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    })
}

/// (kind, name, rule) of every active finding of medium or worse in `ns` (and on the
/// Namespace object itself), as `rayward audit --cluster` reports them now.
fn expected_events(
    kc: &std::path::Path,
    ns: &str,
) -> std::collections::BTreeSet<(String, String, String)> {
    let o = cli::command(env!("CARGO_BIN_EXE_rayward"))
        .args([
            "audit",
            "--no-config",
            "--cluster",
            "-n",
            ns,
            "--format",
            "json",
            "--fail-on",
            "none",
            "--kubeconfig",
        ])
        .arg(kc)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("suppressed").is_none())
        .filter(|f| matches!(f["severity"].as_str(), Some("medium" | "high" | "critical")))
        .map(|f| {
            (
                f["object"]["kind"].as_str().unwrap().to_string(),
                f["object"]["name"].as_str().unwrap().to_string(),
                f["rule_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_watch_replicas_elect_one_writer_and_fail_over_without_loss_or_duplicates() {
    let api = KubeApiserver::start();
    let dir = cli::tmp("watch-replicas");
    let kc = crate::live::insecure_kubeconfig(&api, &dir);
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "w2").await;
    });
    let args = |id: &'static str| {
        [
            "-n",
            "w2",
            "--leader-elect",
            "--lease-namespace",
            "w2",
            "--lease-duration-seconds",
            "3",
            "--identity",
            id,
        ]
    };
    let (a, a_addr) = start_watch(&kc, &args("replica-a"));
    let (b, b_addr) = start_watch(&kc, &args("replica-b"));
    let mut replicas = vec![("replica-a", a, a_addr), ("replica-b", b, b_addr)];
    for (_, _, addr) in &replicas {
        until(Duration::from_secs(20), || get(addr, "/readyz").0 == 200).expect("ready");
    }
    let holder = until(Duration::from_secs(10), || {
        lease_holder(&api, "w2").is_some()
    })
    .and_then(|_| lease_holder(&api, "w2"))
    .expect("a Lease holder");
    let store = |name: &str| {
        rayward_testkit::block_on(async {
            let dr = DryRun::new(api.client().await).await;
            dr.store(
                "w2",
                &json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                    "metadata": {"name": name, "namespace": "w2"},
                    "spec": {"headGroupSpec": {"serviceType": "LoadBalancer", "template": {"spec": {"containers": [
                        {"name": "ray-head", "image": "rayproject/ray:2.40.0",
                         "securityContext": {"privileged": true}}]}}}}}),
            )
            .await
            .unwrap();
        })
    };
    store("one");
    let now_events = || -> std::collections::BTreeSet<(String, String, String)> {
        events(&api, &["w2", "default"])
            .into_iter()
            .map(|e| (e.kind, e.name, e.rule))
            .collect()
    };
    let want = expected_events(&kc, "w2");
    assert!(
        want.iter().any(|(_, n, r)| n == "one" && r == "RW501"),
        "{want:?}"
    );
    until(Duration::from_secs(10), || now_events() == want)
        .unwrap_or_else(|| panic!("Events {:?}, findings {want:?}", now_events()));
    // Only the leader wrote them; the follower's metrics say it does not lead.
    for e in events(&api, &["w2", "default"]) {
        assert_eq!(e.reporter, holder, "{e:?}");
    }
    let (li, _) = replicas
        .iter()
        .enumerate()
        .find(|(_, (id, _, _))| *id == holder)
        .map(|(i, r)| (i, r.0))
        .unwrap();
    let follower_addr = replicas[1 - li].2.clone();
    assert!(
        get(&follower_addr, "/metrics")
            .1
            .contains("rayward_watch_leader 0"),
        "{}",
        get(&follower_addr, "/metrics").1
    );

    // Kill the leader (no chance to hand the Lease over) and break another cluster.
    let (_, mut leader, _) = replicas.remove(li);
    leader.0.kill().unwrap();
    leader.0.wait().unwrap();
    store("two");
    let want = expected_events(&kc, "w2");
    assert!(
        want.iter().any(|(_, n, r)| n == "two" && r == "RW501"),
        "{want:?}"
    );
    until(Duration::from_secs(30), || now_events() == want).unwrap_or_else(|| {
        panic!(
            "after failover: Events {:?}, findings {want:?}",
            now_events()
        )
    });
    let new_holder = lease_holder(&api, "w2").unwrap();
    assert_ne!(new_holder, holder);
    // Nothing twice: one Event per object and rule, each written once.
    let all = events(&api, &["w2", "default"]);
    let mut keys: Vec<_> = all.iter().map(|e| (&e.kind, &e.name, &e.rule)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all.len(), "{all:?}");
    assert!(all.iter().all(|e| e.count == 1), "{all:?}");
    assert!(
        all.iter()
            .filter(|e| e.name == "two")
            .all(|e| e.reporter == new_holder),
        "{all:?}"
    );
    assert!(get(&follower_addr, "/metrics")
        .1
        .contains("rayward_watch_leader 1"));
}

/// The RBAC `rayward install --watch` gives is enough, and no more is asked: the watch
/// runs as its ServiceAccount (impersonated), with the Deployment's own arguments, against
/// a real API server holding those roles, and reads, elects and writes Events without one
/// refused request. The other objects pass a server-side dry run.
#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_watch_runs_with_the_rbac_rayward_install_gives_it() {
    let api = KubeApiserver::start();
    let dir = cli::tmp("watch-rbac");
    let kc = crate::live::insecure_kubeconfig(&api, &dir);
    let sa = dir.join("kubeconfig-sa");
    let text = std::fs::read_to_string(&kc).unwrap().replacen(
        "    token:",
        "    as: system:serviceaccount:rayward-system:rayward-watch\n    token:",
        1,
    );
    std::fs::write(&sa, text).unwrap();
    let out = cli::command(env!("CARGO_BIN_EXE_rayward"))
        .args(["install", "--watch", "--namespace", "rayward-system"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("install.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let manifests = rayward_testkit::yaml::load_manifests(&file).unwrap();
    let args: Vec<String> = manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .map(|m| {
            m.value["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap();
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "w3").await;
        let dr = DryRun::new(client.clone()).await;
        for m in &manifests {
            let ns = m.value["metadata"]["namespace"]
                .as_str()
                .unwrap_or("rayward-system");
            match m.kind.as_str() {
                "Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role"
                | "RoleBinding" => {
                    dr.store(ns, &m.value).await.unwrap();
                }
                "PodDisruptionBudget" => {
                    // v1.20 predates policy/v1; the same spec as policy/v1beta1.
                    let mut pdb = m.value.clone();
                    pdb["apiVersion"] = json!("policy/v1beta1");
                    dr.create(ns, &pdb)
                        .await
                        .unwrap_or_else(|e| panic!("PDB: {e}"));
                }
                _ => {
                    dr.create(ns, &m.value)
                        .await
                        .unwrap_or_else(|e| panic!("{} dry run: {e}", m.kind));
                }
            }
        }
        dr.store(
            "w3",
            &json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"name": "exposed", "namespace": "w3"},
                "spec": {"headGroupSpec": {"template": {"spec": {"containers": [
                    {"name": "ray-head", "image": "rayproject/ray:2.56.0",
                     "securityContext": {"privileged": true}}]}}}}}),
        )
        .await
        .unwrap();
    });
    // The Deployment's arguments, but metrics on loopback, no config file (the ConfigMap's
    // is mounted in the pod) and the Lease in rayward's namespace (in a pod, the default
    // namespace is already its own).
    let mut run: Vec<&str> = Vec::new();
    let mut it = args[1..].iter().map(String::as_str);
    while let Some(a) = it.next() {
        match a {
            "--listen" | "--config" => {
                it.next();
            }
            a => run.push(a),
        }
    }
    assert!(run.contains(&"--leader-elect"), "{args:?}");
    // (start_watch adds --no-config.)
    run.extend(["--lease-namespace", "rayward-system", "--identity", "pod-1"]);
    assert_eq!(args[0], "watch");
    let (_w, addr) = start_watch(&sa, &run);
    until(Duration::from_secs(20), || get(&addr, "/readyz").0 == 200).expect("ready");
    until(Duration::from_secs(10), || {
        events(&api, &["w3"])
            .iter()
            .any(|e| e.name == "exposed" && e.rule == "RW501")
    })
    .unwrap_or_else(|| {
        panic!(
            "no Event as the ServiceAccount: {}",
            get(&addr, "/metrics").1
        )
    });
    assert_eq!(
        lease_holder(&api, "rayward-system").as_deref(),
        Some("pod-1")
    );
    let m = get(&addr, "/metrics").1;
    assert!(
        m.contains("rayward_watch_api_errors_total 0"),
        "a request was refused: {m}"
    );
    assert!(!m.contains("result=\"failed\""), "{m}");
}
