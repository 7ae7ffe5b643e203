//! The request handler end to end, without sockets: reviews in, AdmissionReview responses out.

use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::Severity;
use rayward_webhook::{App, Mode, Policy};
use serde_json::{json, Value};

fn app(mode: Mode) -> App {
    let policy = Policy::new(
        Settings::default(),
        &Selection::default(),
        mode,
        Severity::High,
        Some("rayward-system".into()),
    )
    .unwrap();
    let mut app = App::new(policy);
    app.log = false;
    app
}

fn review(kind: (&str, &str), namespace: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c-uid",
            "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": "x"},
            "namespace": namespace,
            "name": object["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    }))
    .unwrap()
}

fn post(app: &App, path: &str, body: &[u8]) -> Value {
    let r = app.handle("POST", path, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "3f1c-uid");
    v["response"].clone()
}

/// A RayCluster with a public head service and a privileged worker.
fn insecure_cluster() -> Value {
    json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {
            "headGroupSpec": {
                "serviceType": "LoadBalancer",
                "rayStartParams": {"dashboard-host": "0.0.0.0"},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}
            },
            "workerGroupSpecs": [{
                "groupName": "cpu", "replicas": 1,
                "template": {"spec": {"containers": [{
                    "name": "ray-worker", "image": "rayproject/ray:2.60.0",
                    "securityContext": {"privileged": true}
                }]}}
            }]
        }
    })
}

fn lb_service(selector: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ray-public", "namespace": "team-a"},
        "spec": {"type": "LoadBalancer", "selector": selector,
                 "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265}]}
    })
}

#[test]
fn enforce_denies_with_rule_ids_paths_and_fixes() {
    let app = app(Mode::Enforce);
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "team-a", insecure_cluster()),
    );
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("rayward: RayCluster team-a/demo breaks"),
        "{msg}"
    );
    assert!(msg.contains("RW110"), "{msg}");
    assert!(msg.contains("RW501"), "{msg}");
    assert!(msg.contains("at spec.headGroupSpec.serviceType:"), "{msg}");
    assert!(
        msg.contains(
            "at spec.workerGroupSpecs[0].template.spec.containers[0].securityContext.privileged:"
        ),
        "{msg}"
    );
    assert!(msg.contains("\n    fix: "), "{msg}");
    // The first line names each rule once, though some rule breaks in head and worker.
    let first = msg.lines().next().unwrap();
    let ids: Vec<&str> = first.rsplit(": ").next().unwrap().split(", ").collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert!(ids.len() > 3, "{first}");
    assert_eq!(ids.len(), unique.len(), "ids repeat: {first}");
    let listed = msg.lines().filter(|l| l.starts_with("- RW")).count();
    assert!(listed > ids.len(), "some rule is listed twice below: {msg}");
}

#[test]
fn warn_allows_and_returns_findings_as_warnings() {
    let app = app(Mode::Enforce);
    // The mode in the path wins over the configured one (namespaceSelector split).
    let r = post(
        &app,
        "/validate/warn?timeout=10s",
        &review(("ray.io", "RayCluster"), "team-a", insecure_cluster()),
    );
    assert_eq!(r["allowed"], true);
    assert!(r.get("status").is_none());
    let w: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        w.iter().any(|w| w.starts_with(
            "rayward RW110 head-service-exposed (critical) at spec.headGroupSpec.serviceType:"
        )),
        "{w:?}"
    );
    assert!(
        w.iter().all(|w| !w.contains('\n') && w.len() <= 256),
        "{w:?}"
    );
}

#[test]
fn dry_run_allows_silently_and_counts() {
    let app = app(Mode::DryRun);
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "team-a", insecure_cluster()),
    );
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none());
    let m = String::from_utf8(app.handle("GET", "/metrics", b"").body).unwrap();
    assert!(
        m.contains(r#"rayward_webhook_reviews_total{endpoint="validate",mode="dry-run",kind="RayCluster",verdict="would-deny"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(
            r#"rayward_webhook_findings_total{rule="RW501",severity="critical",mode="dry-run"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains("rayward_webhook_review_duration_seconds_count{endpoint=\"validate\"} 1"),
        "{m}"
    );
}

#[test]
fn loadbalancer_service_selecting_a_ray_head_is_denied_alone() {
    let app = app(Mode::Enforce);
    let r = post(
        &app,
        "/validate",
        &review(
            ("", "Service"),
            "team-a",
            lb_service(json!({"ray.io/node-type": "head"})),
        ),
    );
    assert_eq!(r["allowed"], false, "{r}");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("RW112") && msg.contains("at spec.ports[0]:"),
        "{msg}"
    );
    // The assumed cluster's own findings are not the Service's.
    assert!(!msg.contains("RW5"), "{msg}");

    for sel in [
        json!({"ray.io/cluster": "demo", "ray.io/node-type": "head"}),
        json!({"ray.io/is-ray-node": "yes"}),
    ] {
        let r = post(
            &app,
            "/validate",
            &review(("", "Service"), "team-a", lb_service(sel.clone())),
        );
        assert_eq!(r["allowed"], false, "{sel}: {r}");
    }
    // Not Ray's pods, or not published outside the cluster: allowed.
    let r = post(
        &app,
        "/validate",
        &review(
            ("", "Service"),
            "team-a",
            lb_service(json!({"app": "grafana"})),
        ),
    );
    assert_eq!(r["allowed"], true, "{r}");
    let mut internal = lb_service(json!({"ray.io/node-type": "head"}));
    internal["spec"]["type"] = json!("ClusterIP");
    let r = post(
        &app,
        "/validate",
        &review(("", "Service"), "team-a", internal),
    );
    assert_eq!(r["allowed"], true, "{r}");
}

#[test]
fn exemptions_own_namespace_and_ignore_annotation() {
    let app = app(Mode::Enforce);
    let mut own = insecure_cluster();
    own["metadata"]["namespace"] = json!("rayward-system");
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "rayward-system", own),
    );
    assert_eq!(r["allowed"], true);

    let mut ignored = insecure_cluster();
    ignored["metadata"]["annotations"] = json!({"rayward.io/ignore": "all # lab cluster, no data"});
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "team-a", ignored),
    );
    assert_eq!(r["allowed"], true, "{r}");

    // Ignoring some rules leaves the others denying.
    let mut partly = insecure_cluster();
    partly["metadata"]["annotations"] = json!({"rayward.io/ignore": "RW110"});
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "team-a", partly),
    );
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(!msg.contains("RW110") && msg.contains("RW501"), "{msg}");
}

#[test]
fn whole_set_rules_do_not_judge_a_lone_object() {
    // No NetworkPolicy or quota comes with a review: RW140/RW202 must not fire here.
    let app = app(Mode::Warn);
    let r = post(
        &app,
        "/validate",
        &review(("ray.io", "RayCluster"), "team-a", insecure_cluster()),
    );
    let w = r["warnings"].to_string();
    for id in rayward_webhook::policy::whole_set_rules() {
        assert!(!w.contains(&format!("rayward {id} ")), "{id}: {w}");
    }
}

#[test]
fn bad_input_gets_400_or_a_well_formed_review() {
    let app = app(Mode::Enforce);
    for body in [
        &b""[..],
        b"{",
        b"[]",
        b"\xff\xfe",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    ] {
        let r = app.handle("POST", "/validate", body);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
    }
    assert_eq!(app.handle("GET", "/validate", b"").status, 405);
    assert_eq!(app.handle("POST", "/nope", b"").status, 404);
    assert_eq!(app.handle("POST", "/validate/lenient", b"").status, 404);
    assert_eq!(app.handle("GET", "/healthz", b"").status, 200);
    assert_eq!(app.handle("GET", "/readyz", b"").status, 200);

    // A review whose object is not a Kubernetes object: denied in enforce with the reason.
    let r = post(
        &app,
        "/validate",
        &review(
            ("ray.io", "RayCluster"),
            "team-a",
            json!({"metadata": {"name": "x"}}),
        ),
    );
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{r}"
    );
    // Deeply nested: the loader's depth bound answers, no stack overflow.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let mut obj = insecure_cluster();
    obj["spec"]["x"] = deep;
    let body = review(("ray.io", "RayCluster"), "team-a", obj);
    let r = app.handle("POST", "/validate", &body);
    assert!(r.status == 200 || r.status == 400, "{}", r.status);

    // DELETE carries no object: allowed without checks.
    let mut del: Value = serde_json::from_slice(&review(
        ("ray.io", "RayCluster"),
        "team-a",
        insecure_cluster(),
    ))
    .unwrap();
    del["request"]["operation"] = json!("DELETE");
    del["request"]["object"] = Value::Null;
    let r = post(&app, "/validate", &serde_json::to_vec(&del).unwrap());
    assert_eq!(r["allowed"], true);
}

#[test]
fn mutate_patches_safe_fixes_and_skips_ignored_objects() {
    use base64::Engine as _;
    let app = app(Mode::Enforce);
    let before = insecure_cluster();
    let r = post(
        &app,
        "/mutate",
        &review(("ray.io", "RayCluster"), "team-a", before.clone()),
    );
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch", "{r}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut after = before.clone();
    json_patch::patch(&mut after, &patch).unwrap();
    let note = after["metadata"]["annotations"]["rayward.io/mutated"]
        .as_str()
        .unwrap();
    assert!(note.contains("RW110"), "{note}");
    // The patched object no longer breaks what was fixed, and what needs a decision stays.
    let ids = |v: &Value| -> Vec<&'static str> {
        let (_, f, _, _) = app
            .policy
            .check(&serde_json::to_vec(v).unwrap(), Some("team-a"))
            .unwrap();
        f.iter().map(|f| f.rule_id).collect()
    };
    let (b, a) = (ids(&before), ids(&after));
    assert!(
        b.contains(&"RW110") && !a.contains(&"RW110"),
        "{b:?} -> {a:?}"
    );
    assert!(b.contains(&"RW501"), "{b:?}");
    assert!(a.len() < b.len(), "{b:?} -> {a:?}");
    // Mutating the result again changes nothing.
    let r = post(
        &app,
        "/mutate",
        &review(("ray.io", "RayCluster"), "team-a", after),
    );
    assert!(r.get("patch").is_none(), "{r}");

    let mut ignored = insecure_cluster();
    ignored["metadata"]["annotations"] = json!({"rayward.io/ignore": "all"});
    let r = post(
        &app,
        "/mutate",
        &review(("ray.io", "RayCluster"), "team-a", ignored),
    );
    assert!(r.get("patch").is_none());
    // Kinds harden does not rewrite pass unpatched.
    let r = post(
        &app,
        "/mutate",
        &review(("", "Service"), "team-a", lb_service(json!({"app": "x"}))),
    );
    assert!(r.get("patch").is_none(), "{r}");
}

#[test]
fn fuzz_seeds_get_an_answer_on_every_endpoint() {
    // The seeds of fuzz/corpus/webhook_review, held to the fuzz target's checks.
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/webhook_review");
    let app = app(Mode::Enforce);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        for path in [
            "/validate",
            "/validate/warn",
            "/validate/dry-run",
            "/mutate",
        ] {
            let r = app.handle("POST", path, &data);
            match r.status {
                200 => {
                    let v: Value = serde_json::from_slice(&r.body).unwrap();
                    assert_eq!(v["response"]["uid"], "u-1");
                    assert!(v["response"]["allowed"].is_boolean());
                }
                400 => {}
                s => panic!("status {s}"),
            }
        }
        n += 1;
    }
    assert!(n >= 8, "{n} seeds");
}

/// Issue 10 §2: a runtimeEnvYAML rayward cannot read hides what is inside it (a key in an
/// unclosed flow map, an alias bomb); enforce denies it as RW802, warn mode warns.
#[test]
fn unreadable_runtime_env_is_denied_not_skipped() {
    let job = |env: &str| {
        json!({
            "apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": "j", "namespace": "team-a"},
            "spec": {"entrypoint": "python x.py", "runtimeEnvYAML": env,
                     "shutdownAfterJobFinishes": true, "submissionMode": "K8sJobMode"}
        })
    };
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("env_vars: {AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY}\n");
    for env in [
        "env_vars: {AWS_SECRET_ACCESS_KEY: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\""
            .to_string(),
        bomb,
    ] {
        let r = post(
            &app(Mode::Enforce),
            "/validate",
            &review(("ray.io", "RayJob"), "team-a", job(&env)),
        );
        assert_eq!(r["allowed"], false, "{r}");
        let msg = r["status"]["message"].as_str().unwrap();
        assert!(msg.contains("RW802"), "{msg}");
        let r = post(
            &app(Mode::Warn),
            "/validate",
            &review(("ray.io", "RayJob"), "team-a", job(&env)),
        );
        assert_eq!(r["allowed"], true, "{r}");
        assert!(r["warnings"].to_string().contains("RW802"), "{r}");
    }
}

/// Issue 10 §5: kubectl prints the deny message and warnings in the user's terminal; a
/// name chosen by whoever creates the object must not drive it.
#[test]
fn deny_messages_and_warnings_escape_terminal_sequences() {
    let mut obj = insecure_cluster();
    obj["metadata"]["name"] = json!("x\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{202e}y");
    obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["name"] =
        json!("w\u{1b}[8m");
    for mode in [Mode::Enforce, Mode::Warn] {
        let r = post(
            &app(mode),
            "/validate",
            &review(("ray.io", "RayCluster"), "team-a", obj.clone()),
        );
        let mut texts: Vec<String> = r["warnings"]
            .as_array()
            .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if let Some(m) = r["status"]["message"].as_str() {
            texts.push(m.to_string());
        }
        assert!(!texts.is_empty(), "{r}");
        for t in texts {
            assert!(
                !t.chars()
                    .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
                "{mode:?}: raw control in {t:?}"
            );
        }
    }
}
