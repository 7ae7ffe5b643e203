//! `rayward audit --cluster` against a real kube-apiserver (v1.20, minimal Ray CRDs),
//! through the binary (issue 13): the KubeRay corpus and the examples are stored in the
//! API server, one namespace per file, and the live audit must give the findings the
//! file audit gives for the same objects, matched by rule, object and JSON path.

use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use rayward_testkit::cli::{self, run, tmp};
use rayward_testkit::yaml::{corpus_dir, load_dir, Manifest};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A copy of the server's kubeconfig that skips verifying its self-signed serving
/// certificate (it carries `CA:TRUE`, which rustls refuses as a server certificate; see
/// `KubeApiserver::client`). The admin token is what matters on loopback.
pub(crate) fn insecure_kubeconfig(api: &KubeApiserver, dir: &Path) -> PathBuf {
    kubeconfig(api, dir)
}

fn kubeconfig(api: &KubeApiserver, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(api.kubeconfig()).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("certificate-authority:") {
                l.replace(l.trim_start(), "insecure-skip-tls-verify: true")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.join("kubeconfig");
    std::fs::write(&p, text).unwrap();
    p
}

/// (rule, kind, namespace, name, JSON path) of every finding of an audit's JSON report.
fn keys(report: &str) -> BTreeSet<(String, String, String, String, String)> {
    let v: Value = serde_json::from_str(report).expect("a JSON report");
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&f["rule_id"]),
                s(&f["object"]["kind"]),
                s(&f["object"]["namespace"]),
                s(&f["object"]["name"]),
                s(&f["path"]),
            )
        })
        .collect()
}

fn rayward() -> std::process::Command {
    let mut c = cli::command(env!("CARGO_BIN_EXE_rayward"));
    c.args([
        "audit",
        "--no-config",
        "--format",
        "json",
        "--fail-on",
        "none",
    ]);
    c
}

/// Objects that live in a namespace (the ones stored per file; cluster-scoped objects
/// would collide across files).
fn namespaced(m: &Manifest) -> bool {
    !matches!(
        m.kind.as_str(),
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PriorityClass"
            | "StorageClass"
            | "PersistentVolume"
    )
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_audit_cluster_matches_file_audit_on_the_corpus() {
    let api = KubeApiserver::start();
    let dir = tmp("live-corpus");
    let kc = kubeconfig(&api, &dir);
    let files_dir = dir.join("files");
    std::fs::create_dir_all(&files_dir).unwrap();
    let root = cli::repo_root();
    let mut sources: Vec<Vec<Manifest>> = Vec::new();
    for d in [
        corpus_dir(),
        root.join("examples/insecure"),
        root.join("examples/secure"),
    ] {
        let mut by_file: std::collections::BTreeMap<String, Vec<Manifest>> = Default::default();
        for m in load_dir(&d) {
            by_file.entry(m.file.clone()).or_default().push(m);
        }
        sources.extend(by_file.into_values());
    }
    let stored = rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        let dr = DryRun::new(client.clone()).await;
        let mut stored = 0;
        for (i, objs) in sources.iter().enumerate() {
            let ns = format!("f{i}");
            ensure_namespace(&client, &ns).await;
            // What the API server holds is what the file audit reads: the same objects,
            // in the same namespace.
            let mut kept = Vec::new();
            for m in objs
                .iter()
                .filter(|m| namespaced(m) && dr.serves(&m.api_version, &m.kind))
            {
                let mut v = m.value.clone();
                v["metadata"]["namespace"] = Value::String(ns.clone());
                match dr.store(&ns, &v).await {
                    Ok(_) => {
                        kept.push(v);
                        stored += 1;
                    }
                    // Two objects of one name in one file: the second is refused by the
                    // server, and left out of the file too.
                    Err(e) if e.contains("AlreadyExists") => {}
                    Err(e) => panic!("{}: {e}", m.id()),
                }
            }
            // The namespace's `default` ServiceAccount exists in the cluster
            // (ensure_namespace), so it is in the file too: RW402 reads it.
            // So is the Namespace, with the labels it has there (none): RW509 reads it.
            kept.push(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns},
            }));
            kept.push(serde_json::json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns},
                "automountServiceAccountToken": false,
            }));
            let text: Vec<String> = kept.iter().map(|v| v.to_string()).collect();
            std::fs::write(files_dir.join(format!("{ns}.yaml")), text.join("\n---\n")).unwrap();
        }
        stored
    });
    assert!(stored > 150, "only {stored} objects stored");

    let (code, file_out, err) = run(rayward().arg(&files_dir));
    assert_eq!(code, 0, "file audit: {err}");
    // A loopback API server takes more than the default 20 requests per second: the
    // reviews of ~170 namespaces' ServiceAccounts would take a minute at that rate.
    let (code, live_out, err) = run(rayward()
        .args(["--cluster", "-A", "--qps", "200", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(code, 0, "live audit: {err}");
    let files = keys(&file_out);
    // An object created with `generateName` gets its name from the server (`x-` becomes
    // `x-d4zdw`): matched by the prefix the file gives.
    let prefixes: BTreeSet<&str> = files
        .iter()
        .map(|k| k.3.as_str())
        .filter(|n| n.ends_with('-'))
        .collect();
    let live: BTreeSet<_> = keys(&live_out)
        .into_iter()
        // RW404 judges the API server's answers to SubjectAccessReviews, which only a live
        // run has; the files hold no such answers.
        .filter(|k| k.0 != "RW404")
        .map(|(r, k, ns, name, p)| {
            let cut = name.len().saturating_sub(5);
            let name = match name.get(..cut) {
                Some(pre) if prefixes.contains(pre) => pre.to_string(),
                _ => name,
            };
            (r, k, ns, name, p)
        })
        .collect();
    assert!(files.len() > 500, "{} findings from the files", files.len());
    let only_files: Vec<_> = files.difference(&live).collect();
    let only_live: Vec<_> = live.difference(&files).collect();
    assert!(
        only_files.is_empty() && only_live.is_empty(),
        "{} findings only in the files, {} only live\nonly files: {:#?}\nonly live: {:#?}",
        only_files.len(),
        only_live.len(),
        &only_files[..only_files.len().min(30)],
        &only_live[..only_live.len().min(30)]
    );
    // Where each finding came from: the object in the cluster, and the run's context.
    let v: Value = serde_json::from_str(&live_out).unwrap();
    assert_eq!(v["summary"]["cluster"], "local", "{}", v["summary"]);
    let file_v: Value = serde_json::from_str(&file_out).unwrap();
    assert!(
        file_v["summary"].get("cluster").is_none(),
        "{}",
        file_v["summary"]
    );
    let (_, text, _) = run(cli::command(env!("CARGO_BIN_EXE_rayward"))
        .args([
            "audit",
            "--no-config",
            "--fail-on",
            "none",
            "--cluster",
            "-A",
            "--qps",
            "200",
            "--kubeconfig",
        ])
        .arg(&kc));
    assert!(
        text.contains(" objects of cluster local"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    for f in v["findings"].as_array().unwrap() {
        assert!(
            f["file"].as_str().unwrap().starts_with("k8s://local/"),
            "{f}"
        );
    }
}

/// Credentials that may list only RayClusters in one namespace (a ServiceAccount bound to
/// such a Role, acted as through the kubeconfig's `as`): the audit reads what it may,
/// names every kind it could not read with the permission that would allow it, and exits
/// 2, as an unreadable file does.
#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_audit_cluster_with_partial_rbac_reads_what_it_may() {
    let api = KubeApiserver::start();
    let dir = tmp("live-rbac");
    let kc = kubeconfig(&api, &dir);
    // The same server, acting as the limited ServiceAccount.
    let limited = dir.join("kubeconfig-limited");
    let text = std::fs::read_to_string(&kc).unwrap();
    let text = text.replacen(
        "    token:",
        "    as: system:serviceaccount:team:limited\n    token:",
        1,
    );
    assert!(text.contains("as: system:serviceaccount"), "{text}");
    std::fs::write(&limited, text).unwrap();
    let insecure =
        std::fs::read_to_string(cli::repo_root().join("examples/insecure/raycluster.yaml"))
            .unwrap();
    let cluster: Vec<Manifest> = {
        let f = dir.join("rc.yaml");
        std::fs::write(&f, &insecure).unwrap();
        rayward_testkit::yaml::load_manifests(&f).unwrap()
    };
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "team").await;
        let dr = DryRun::new(client.clone()).await;
        for m in cluster.iter().filter(|m| m.kind == "RayCluster") {
            dr.store("team", &m.value).await.unwrap();
        }
        for obj in [
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "limited", "namespace": "team"}}),
            serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "list-rayclusters", "namespace": "team"},
                "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["list"]}]}),
            serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "limited", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-rayclusters"},
                "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": "team"}]}),
        ] {
            dr.store("team", &obj).await.unwrap();
        }
    });
    let (code, out, err) = run(rayward()
        .args(["--cluster", "-n", "team", "--kubeconfig"])
        .arg(&limited));
    assert_eq!(code, 2, "a partial audit exits 2: {err}");
    // The RayCluster was read and judged.
    let v: Value = serde_json::from_str(&out).expect("a JSON report");
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["object"]["kind"] == "RayCluster"),
        "{out}"
    );
    // Every kind it could not read is named, with the permission that fixes it.
    let errors: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["file"], e["message"]))
        .collect();
    for (kind, permission) in [
        (
            "Pod (core) in namespace team",
            "list pods in namespace team",
        ),
        (
            "NetworkPolicy (networking.k8s.io) in namespace team",
            "list networkpolicies.networking.k8s.io in namespace team",
        ),
        (
            "ClusterRoleBinding (rbac.authorization.k8s.io)",
            "list clusterrolebindings.rbac.authorization.k8s.io in every namespace",
        ),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(kind) && e.contains(permission)),
            "{kind}: {errors:#?}"
        );
    }
    assert!(
        !errors.iter().any(|e| e.contains("RayCluster")),
        "RayClusters were allowed: {errors:#?}"
    );
    // And stderr says so in words, never a panic.
    assert!(!err.contains("panicked"), "{err}");
}

/// The rules only a running cluster feeds, on objects created through the API: a RayCluster
/// that was fixed while its pods still run the old spec (a head that may escalate
/// privileges, one worker on a vulnerable Ray, as the kubelet reports it in the pod status), a NetworkPolicy that
/// selects a label the pods do not carry, a namespace without Pod Security enforcement and
/// an old KubeRay operator. Then the namespace is labelled and the stale head recreated:
/// those findings go.
#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_live_only_rules_judge_running_pods() {
    use serde_json::json;
    let api = KubeApiserver::start();
    let dir = tmp("live-only");
    let kc = kubeconfig(&api, &dir);
    // What the fixed template sets, and the head created before the fix did not.
    let hardened = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 1000,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    let head = |fixed: bool| {
        let sc = if fixed {
            hardened.clone()
        } else {
            json!({"allowPrivilegeEscalation": true})
        };
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "team-a-head-x7k2p", "namespace": "ml",
                "labels": {"ray.io/cluster": "team-a", "ray.io/node-type": "head", "ray.io/group": "headgroup"}},
            "spec": {"automountServiceAccountToken": false, "containers": [{"name": "ray-head", "image": "rayproject/ray:2.56.0",
                "securityContext": sc}]}})
    };
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "ml").await;
        ensure_namespace(&client, "ray-system").await;
        let dr = DryRun::new(client.clone()).await;
        for (ns, obj) in [
            (
                "ml",
                json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"name": "team-a", "namespace": "ml"},
                "spec": {
                    "headGroupSpec": {"template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.56.0", "securityContext": hardened}]}}},
                    "workerGroupSpecs": [{"groupName": "cpu", "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.56.0"}]}}}]}}),
            ),
            ("ml", head(false)),
            (
                "ml",
                json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "team-a-worker-cpu-abcde", "namespace": "ml",
                    "labels": {"ray.io/cluster": "team-a", "ray.io/node-type": "worker", "ray.io/group": "cpu"}},
                "spec": {"automountServiceAccountToken": false, "containers": [{"name": "ray-worker", "image": "rayproject/ray:2.52.0"}]}}),
            ),
            (
                "ml",
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "team-a", "namespace": "ml"},
                "spec": {"podSelector": {"matchLabels": {"app": "team-a"}}, "policyTypes": ["Ingress"]}}),
            ),
            // Every ServiceAccount of `ml` may read Secrets: RW404 must say so for the
            // one the Ray pods run as (`default`).
            (
                "ml",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "read-secrets"},
                    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
            ),
            (
                "ml",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "ml-read-secrets"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "read-secrets"},
                    "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ml", "apiGroup": "rbac.authorization.k8s.io"}]}),
            ),
            (
                "ray-system",
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "kuberay-operator", "namespace": "ray-system"},
                "spec": {"selector": {"matchLabels": {"app": "kuberay"}},
                    "template": {"metadata": {"labels": {"app": "kuberay"}},
                        "spec": {"containers": [{"name": "kuberay-operator", "image": "quay.io/kuberay/operator:v1.1.0"}]}}}}),
            ),
        ] {
            dr.store(ns, &obj)
                .await
                .unwrap_or_else(|e| panic!("{obj}: {e}"));
        }
        rayward_testkit::apiserver::set_pod_status(&client, "ml", "team-a-worker-cpu-abcde", json!({
            "phase": "Running",
            "containerStatuses": [{"name": "ray-worker", "ready": true, "restartCount": 0,
                "image": "docker.io/rayproject/ray:2.52.0",
                "imageID": "docker.io/rayproject/ray@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}]
        })).await;
    });
    let audit = || {
        let (code, out, err) = run(rayward().args(["--cluster", "-A", "--kubeconfig"]).arg(&kc));
        assert_eq!(code, 0, "live audit: {err}");
        let v: Value = serde_json::from_str(&out).expect("a JSON report");
        v["findings"].as_array().unwrap().clone()
    };
    let has = |findings: &[Value], rule: &str, kind: &str, name: &str| -> Option<String> {
        findings
            .iter()
            .find(|f| {
                f["rule_id"] == rule && f["object"]["kind"] == kind && f["object"]["name"] == name
            })
            .map(|f| f["message"].as_str().unwrap_or("").to_string())
    };
    let before = audit();
    let head_name = "team-a-head-x7k2p";
    let worker_name = "team-a-worker-cpu-abcde";
    for pod in [head_name, worker_name] {
        assert!(
            has(&before, "RW143", "Pod", pod).is_some(),
            "RW143 on {pod}: {before:#?}"
        );
    }
    let stale = has(&before, "RW510", "Pod", head_name).expect("RW510 on the head");
    for rule in ["RW502", "RW503", "RW507", "RW508"] {
        assert!(stale.contains(rule), "{rule}: {stale}");
    }
    let stale = has(&before, "RW510", "Pod", worker_name).expect("RW510 on the worker");
    assert!(stale.contains("RW603"), "{stale}");
    let running = has(&before, "RW603", "Pod", worker_name).expect("RW603 on the worker");
    assert!(
        running.contains("sha256:1111") && running.contains("2.52.0"),
        "{running}"
    );
    assert!(
        has(&before, "RW509", "Namespace", "ml").is_some(),
        "RW509: {before:#?}"
    );
    assert!(has(&before, "RW509", "Namespace", "ray-system").is_none());
    let op = has(&before, "RW605", "Deployment", "kuberay-operator").expect("RW605");
    assert!(op.contains("1.1.0"), "{op}");
    let can = has(&before, "RW404", "ServiceAccount", "default").expect("RW404");
    assert!(
        can.contains("ml/default") && can.contains("get secrets") && !can.contains("list secrets"),
        "{can}"
    );
    // The RayCluster's head passes what its pod breaks.
    assert!(
        !before.iter().any(|f| f["rule_id"] == "RW502"
            && f["object"]["kind"] == "RayCluster"
            && f["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("spec.headGroupSpec")),
        "{before:#?}"
    );

    // Recreate the head from the fixed template, and enforce Pod Security in `ml`.
    rayward_testkit::block_on(async {
        let client = api.client().await;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client.clone(), "ml");
        pods.delete(head_name, &Default::default()).await.unwrap();
        let dr = DryRun::new(client.clone()).await;
        dr.store("ml", &head(true)).await.unwrap();
        let nss: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        nss.patch(
            "ml",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})),
        )
        .await
        .unwrap();
    });
    // On a terminal (a pty from util-linux `script`) the progress shows on stderr; through
    // pipes, as above, stderr carries none of it.
    let (_, _, piped_err) = run(rayward().args(["--cluster", "-A", "--kubeconfig"]).arg(&kc));
    assert!(
        !piped_err.contains("objects read") && !piped_err.contains("reading the cluster"),
        "{piped_err}"
    );
    let cmd = format!(
        "{} audit --no-config --fail-on none --cluster -A --kubeconfig {} >/dev/null",
        env!("CARGO_BIN_EXE_rayward"),
        kc.display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let shown = String::from_utf8_lossy(&tty.stdout);
    // Draws are rate-limited (20 a second), so which messages show depends on timing;
    // some progress always does.
    assert!(
        shown.contains("reading the cluster") || shown.contains("objects read and judged"),
        "{shown}"
    );

    let after = audit();
    assert!(
        has(&after, "RW510", "Pod", head_name).is_none(),
        "{after:#?}"
    );
    assert!(has(&after, "RW510", "Pod", worker_name).is_some());
    assert!(
        has(&after, "RW509", "Namespace", "ml").is_none(),
        "{after:#?}"
    );
}
