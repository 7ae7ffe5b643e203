//! The webhook registered with a real kube-apiserver (shared/tools/kube-apiserver), with a
//! real caBundle from rayward's CA code, reached at https://127.0.0.1:PORT.
//! Run by scripts/test.sh (RAYWARD_KUBE_APISERVER set); fails without it.

use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::Severity;
use rayward_testkit::apiserver::KubeApiserver;
use rayward_webhook::client::{Answer, Client};
use rayward_webhook::tls::CertStore;
use rayward_webhook::{App, Mode, Policy, Server, ServerOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The webhook's HTTPS client, pinned to the API server's own certificate, as its admin.
fn client(api: &KubeApiserver) -> Client {
    Client::pinned(api.addr(), &api.serving_cert(), Some(api.admin_token())).unwrap()
}

async fn send(c: &Client, method: &str, path: &str, ct: &str, body: Vec<u8>) -> Answer {
    c.request(method, path, ct, body).await.unwrap()
}

async fn post_json(c: &Client, path: &str, v: &Value) -> Answer {
    send(
        c,
        "POST",
        path,
        "application/json",
        serde_json::to_vec(v).unwrap(),
    )
    .await
}

fn ensure(a: &Answer, what: &str) {
    assert!(
        a.status == 200 || a.status == 201 || a.status == 409,
        "{what}: {} {}",
        a.status,
        a.text()
    );
}

/// The minimal CRDs of CONTEXT §7 (v1.20 cannot take KubeRay's CEL-validated ones).
async fn install_ray_crds(c: &Client) {
    for (kind, plural) in [
        ("RayCluster", "rayclusters"),
        ("RayJob", "rayjobs"),
        ("RayService", "rayservices"),
        ("RayCronJob", "raycronjobs"),
    ] {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.ray.io")},
            "spec": {
                "group": "ray.io", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        });
        let a = post_json(
            c,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
        ensure(&a, "create CRD");
    }
    wait_until("Ray CRDs served", || async {
        send(
            c,
            "GET",
            "/apis/ray.io/v1/rayclusters",
            "application/json",
            vec![],
        )
        .await
        .status
            == 200
    })
    .await;
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn namespace(c: &Client, name: &str, mode: &str) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"rayward.io/mode": mode}}});
    ensure(
        &post_json(c, "/api/v1/namespaces", &ns).await,
        "create namespace",
    );
}

/// One webhook entry per mode, split by the namespace label, as deploy/ does it.
fn webhook_config(port: u16, ca_bundle: &str) -> Value {
    let rules = json!([
        {"apiGroups": ["ray.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
         "resources": ["rayclusters", "rayjobs", "rayservices", "raycronjobs"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["services"], "scope": "Namespaced"}
    ]);
    let entry = |mode: &str, policy: &str| {
        json!({
            "name": format!("{mode}.validate.rayward.io"),
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate/{mode}"), "caBundle": ca_bundle},
            "rules": rules,
            "namespaceSelector": {"matchLabels": {"rayward.io/mode": mode}},
            "failurePolicy": policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5
        })
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "rayward"},
        "webhooks": [entry("enforce", "Fail"), entry("warn", "Ignore")]
    })
}

/// `/mutate` for enforce and warn namespaces; Ignore: a mutation is a convenience, the
/// validating entry still guards.
fn mutating_config(port: u16, ca_bundle: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "rayward"},
        "webhooks": [{
            "name": "mutate.rayward.io",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate"), "caBundle": ca_bundle},
            "rules": [{"apiGroups": ["ray.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["rayclusters", "rayjobs", "rayservices", "raycronjobs"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchExpressions": [{"key": "rayward.io/mode", "operator": "In", "values": ["enforce", "warn"]}]},
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5
        }]
    })
}

fn corpus(rel: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The sample as the API server hands it on: `metadata.namespace` filled in.
fn with_namespace(yaml: &[u8], ns: &str) -> Vec<u8> {
    let text = String::from_utf8(yaml.to_vec()).unwrap();
    let out = text.replacen("metadata:\n", &format!("metadata:\n  namespace: {ns}\n"), 1);
    assert_ne!(out, text);
    out.into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_webhook_enforce_warn_and_failure_policy() {
    let tmp = tempdir();
    let api = KubeApiserver::start();
    let kube = client(&api);

    // The webhook's serving certificate from rayward's own CA code: a real caBundle.
    let ca_dir = tmp.join("ca");
    let tls_dir = tmp.join("tls");
    rayward_certs::create_ca(&ca_dir, &Default::default()).unwrap();
    rayward_certs::issue_node(
        &ca_dir,
        &tls_dir,
        &rayward_certs::NodeOptions {
            ips: vec!["127.0.0.1".parse().unwrap()],
            ..Default::default()
        },
    )
    .unwrap();
    let store = CertStore::load(&tls_dir.join("tls.crt"), &tls_dir.join("tls.key")).unwrap();
    let policy = Policy::new(
        Settings::default(),
        &Selection::default(),
        Mode::Enforce,
        Severity::High,
        Some("rayward-system".into()),
    )
    .unwrap();
    let mut app = App::new(policy);
    app.log = false;
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(listener, store, app.clone(), ServerOptions::default()).unwrap();
    let port = server.local_addr().port();

    install_ray_crds(&kube).await;
    namespace(&kube, "team-a", "enforce").await;
    namespace(&kube, "team-w", "warn").await;
    let ca_pem = std::fs::read(ca_dir.join("ca.crt")).unwrap();
    let cfg = webhook_config(port, &b64(&ca_pem));
    ensure(
        &post_json(
            &kube,
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &cfg,
        )
        .await,
        "register webhook",
    );

    let sample = corpus("ray-operator/config/samples/ray-cluster.sample.yaml");
    let create = |ns: &'static str, body: Vec<u8>| {
        let kube = kube.clone();
        async move {
            send(
                &kube,
                "POST",
                &format!("/apis/ray.io/v1/namespaces/{ns}/rayclusters"),
                "application/yaml",
                body,
            )
            .await
        }
    };
    // The configuration reaches the API server's admission chain within a second or so.
    wait_until("webhook registered", || async {
        create("team-a", sample.clone()).await.status == 403
    })
    .await;

    // 1. Enforce: the insecure corpus RayCluster is denied, every high+ rule id named.
    let denied = create("team-a", sample.clone()).await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    let status: Value = serde_json::from_slice(&denied.body).unwrap();
    let msg = status["message"].as_str().unwrap();
    assert!(msg.contains("admission webhook \"enforce.validate.rayward.io\" denied the request: rayward: RayCluster team-a/"), "{msg}");
    let (_, expected, _, _) = app
        .policy
        .check(&with_namespace(&sample, "team-a"), Some("team-a"))
        .unwrap();
    let high: Vec<&str> = expected
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .map(|f| f.rule_id)
        .collect();
    assert!(!high.is_empty());
    for id in &high {
        assert!(
            msg.contains(&format!("- {id} ")),
            "{id} missing from: {msg}"
        );
    }

    // 2. Warn: admitted, and the warnings reach the client as Warning headers. The
    //    object the API server sends names its namespace, so compute what to expect so.
    let (_, expected, _, _) = app
        .policy
        .check(&with_namespace(&sample, "team-w"), Some("team-w"))
        .unwrap();
    assert!(expected.iter().any(|f| f.rule_id == "RW603"));
    let warned = create("team-w", sample.clone()).await;
    assert_eq!(warned.status, 201, "{}", warned.text());
    for f in &expected {
        assert!(
            warned
                .warnings
                .iter()
                .any(|w| w.starts_with(&format!("rayward {} ", f.rule_id))),
            "{} missing from {:?}",
            f.rule_id,
            warned.warnings
        );
    }

    // 3. A LoadBalancer Service selecting a Ray head: denied (RW112), the cluster unseen.
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ray-dashboard-public"},
        "spec": {"type": "LoadBalancer", "selector": {"ray.io/node-type": "head"},
                 "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265}]}});
    let a = post_json(&kube, "/api/v1/namespaces/team-a/services", &svc).await;
    assert_eq!(a.status, 403, "{}", a.text());
    assert!(a.text().contains("RW112"), "{}", a.text());
    // The same Service as ClusterIP is admitted.
    let mut internal = svc.clone();
    internal["spec"]["type"] = json!("ClusterIP");
    let a = post_json(&kube, "/api/v1/namespaces/team-a/services", &internal).await;
    assert_eq!(a.status, 201, "{}", a.text());

    // 4. /mutate: the stored object carries harden's safe fixes and says so.
    ensure(
        &post_json(
            &kube,
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            &mutating_config(port, &b64(&ca_pem)),
        )
        .await,
        "register mutating webhook",
    );
    // The configuration takes a moment to reach the admission chain: retry with new names.
    let t0 = Instant::now();
    let mut n = 0;
    let stored: Value = loop {
        n += 1;
        let body = String::from_utf8(sample.clone()).unwrap().replacen(
            "name: raycluster-kuberay",
            &format!("name: mutated-{n}"),
            1,
        );
        let a = create("team-w", body.into_bytes()).await;
        assert_eq!(a.status, 201, "{}", a.text());
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        if v["metadata"]["annotations"]["rayward.io/mutated"].is_string() {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "mutating webhook never applied"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (fixed, changes) = rayward_webhook::mutate::safe_fixes(&with_namespace(&sample, "team-w"))
        .unwrap()
        .expect("the sample does not opt out");
    assert!(!changes.is_empty());
    assert_eq!(
        stored["spec"], fixed["spec"],
        "stored spec differs from harden's safe fixes"
    );
    let note = stored["metadata"]["annotations"]["rayward.io/mutated"]
        .as_str()
        .unwrap();
    for c in &changes {
        assert!(note.contains(c.as_str()), "{c} missing from {note}");
    }

    // 5. The hardened form (`rayward harden`) is admitted in the enforce namespace. Harden
    //    leaves the Ray upgrade (RW603, a user's decision) to the user: made here as its
    //    fix says, on the sample before hardening.
    let upgraded = String::from_utf8(with_namespace(&sample, "team-a"))
        .unwrap()
        .replace("rayproject/ray:2.52.0", "rayproject/ray:2.60.0")
        .replace("rayVersion: \"2.52.0\"", "rayVersion: \"2.60.0\"")
        .replacen("name: raycluster-kuberay", "name: hardened", 1);
    assert!(upgraded.contains("rayVersion: \"2.60.0\""));
    let obj = rayward_manifest::load_bytes("sample", upgraded.as_bytes(), &Default::default())
        .objects
        .remove(0);
    let hardened = rayward_harden::harden_object(&obj, &rayward_harden::Options::default());
    let yaml = rayward_manifest::emit::to_yaml(&hardened.object.root);
    let a = create("team-a", yaml.into_bytes()).await;
    assert_eq!(a.status, 201, "hardened form refused: {}", a.text());

    // 6. Webhook stopped: failurePolicy Fail refuses Ray objects in enforce namespaces;
    //    the warn entry (Ignore) lets them through.
    drop(server);
    let mut other = String::from_utf8(sample.clone()).unwrap();
    other = other.replacen("name: raycluster-kuberay", "name: raycluster-while-down", 1);
    let refused = create("team-a", other.clone().into_bytes()).await;
    assert_eq!(refused.status, 500, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("failed calling webhook \\\"enforce.validate.rayward.io\\\""),
        "{}",
        refused.text()
    );
    let passed = create("team-w", other.into_bytes()).await;
    assert_eq!(passed.status, 201, "{}", passed.text());
}

/// A fresh folder under the target dir (left there for inspection when a test fails).
fn tempdir() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join(format!("webhook-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
