//! `--gateway-discovery`: one gateway for every Ray cluster of some namespaces, and the
//! history server behind it under one login. What the builders yield: the RBAC (exactly
//! the watches, the token Secrets' get and the reviews, only where needed), the
//! NetworkPolicies, the shared assertion key (a reference, mounted by both), and a gateway
//! config the gateway's own parser accepts.

use rayward_install::tls::Tls;
use rayward_install::{objects, uninstall, Component, Image, Options};
use serde_json::{json, Value};

fn opts(components: &[Component], discovery: &[&str]) -> Options {
    Options {
        components: components.to_vec(),
        namespace: "rw".into(),
        image: Image::new("registry.example.com/rayward:0.1.0", None).unwrap(),
        tls: Tls::CertManager,
        gateway_upstream: "http://ray-head.ml.svc:8265".into(),
        gateway_discovery: discovery.iter().map(|s| s.to_string()).collect(),
        history: Default::default(),
    }
}

const BOTH: &[Component] = &[Component::Gateway, Component::History];

fn find<'a>(objs: &'a [Value], kind: &str, ns: Option<&str>, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str() == ns
        })
        .unwrap_or_else(|| panic!("no {kind} {ns:?}/{name}"))
}

fn pod(objs: &[Value], c: Component) -> &Value {
    &find(objs, "Deployment", Some("rw"), &c.object_name())["spec"]["template"]["spec"]
}

fn mounts(objs: &[Value], c: Component) -> Vec<(String, String)> {
    let p = pod(objs, c);
    p["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let vol = p["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            let source = vol["secret"]["secretName"]
                .as_str()
                .or(vol["configMap"]["name"].as_str())
                .unwrap_or("")
                .to_string();
            (m["mountPath"].as_str().unwrap().to_string(), source)
        })
        .collect()
}

fn config(objs: &[Value], c: Component, key: &str) -> String {
    find(objs, "ConfigMap", Some("rw"), &c.object_name())["data"][key]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn discovery_rbac_is_the_watches_the_token_secrets_and_the_reviews_nothing_more() {
    let objs = objects(&opts(BOTH, &["team-a", "team-b"])).unwrap();
    // Cluster-wide: only the two reviews, which are cluster-scoped.
    let cr = find(&objs, "ClusterRole", None, "rayward-gateway");
    assert_eq!(
        cr["rules"],
        json!([
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        ])
    );
    let crb = find(&objs, "ClusterRoleBinding", None, "rayward-gateway");
    assert_eq!(
        crb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rayward-gateway", "namespace": "rw"}])
    );
    // In each watched namespace, and nowhere else: list/watch of the three kinds the
    // watcher follows, get (never list or watch) of Secrets.
    let want = json!([
        {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    ]);
    for ns in ["team-a", "team-b"] {
        assert_eq!(
            find(&objs, "Role", Some(ns), "rayward-gateway")["rules"],
            want
        );
        let rb = find(&objs, "RoleBinding", Some(ns), "rayward-gateway");
        assert_eq!(rb["roleRef"]["name"], "rayward-gateway");
        assert_eq!(rb["subjects"][0]["namespace"], "rw");
    }
    let roles: Vec<String> = objs
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            "-/rayward-gateway",
            "team-a/rayward-gateway",
            "team-b/rayward-gateway"
        ]
    );
    // The gateway has a token now; the history server still has none.
    assert_eq!(
        pod(&objs, Component::Gateway)["automountServiceAccountToken"],
        true
    );
    assert_eq!(
        pod(&objs, Component::History)["automountServiceAccountToken"],
        false
    );
    // Uninstall names the Roles of the watched namespaces too.
    let gone = uninstall(&opts(BOTH, &["team-a", "team-b"])).unwrap();
    assert!(gone
        .iter()
        .any(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == "team-b"));
}

#[test]
fn discovery_network_policies_open_exactly_the_paths_in_use() {
    let objs = objects(&opts(BOTH, &["team-a", "team-b"])).unwrap();
    let gw = &find(&objs, "NetworkPolicy", Some("rw"), "rayward-gateway")["spec"];
    let egress = gw["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 4, "{egress:#?}");
    // The API server (watches, reviews): its ports, as for watch.
    assert_eq!(
        egress[1],
        json!({"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]})
    );
    // Ray heads' dashboards in the watched namespaces only.
    let heads: Vec<&str> = egress[2]["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["podSelector"]["matchLabels"]["ray.io/node-type"], "head");
            t["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(heads, ["team-a", "team-b"]);
    assert_eq!(
        egress[2]["ports"],
        json!([{"port": 8265, "protocol": "TCP"}])
    );
    // The history server's pods, on its port.
    assert_eq!(
        egress[3],
        json!({"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rayward-history"}}}],
               "ports": [{"port": 8443, "protocol": "TCP"}]})
    );
    // The history server admits only the gateway's pods.
    let h = &find(&objs, "NetworkPolicy", Some("rw"), "rayward-history")["spec"];
    assert_eq!(
        h["ingress"],
        json!([{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rayward-gateway"}}}],
                "ports": [{"port": 8443, "protocol": "TCP"}]}])
    );
    let svc = find(&objs, "Service", Some("rw"), "rayward-history");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["name"], "http");
}

#[test]
fn one_assertion_key_secret_mounted_by_both_named_by_both_configs() {
    let objs = objects(&opts(BOTH, &["team-a"])).unwrap();
    // A reference: install writes no such Secret.
    assert!(objs
        .iter()
        .all(|o| o["kind"] != "Secret" && o["metadata"]["name"] != "rayward-history-key"));
    let key = (
        "/etc/rayward/history-key".to_string(),
        "rayward-history-key".to_string(),
    );
    assert!(mounts(&objs, Component::Gateway).contains(&key));
    assert!(mounts(&objs, Component::History).contains(&key));
    let gw = config(&objs, Component::Gateway, "gateway.toml");
    let cfg = rayward_gateway::config::Config::parse(&gw, "gateway.toml")
        .unwrap_or_else(|e| panic!("{e}\n{gw}"));
    assert!(cfg.upstream.is_none());
    assert!(cfg.kubernetes.is_some());
    let d = cfg.discovery.as_ref().unwrap();
    assert_eq!(d.namespaces, ["team-a"]);
    assert_eq!(
        d.history_key_file.as_deref(),
        Some(std::path::Path::new("/etc/rayward/history-key/key"))
    );
    // history_upstream is the history Service's port in this namespace.
    assert_eq!(
        d.history_upstream.as_deref(),
        Some("http://rayward-history.rw.svc:80")
    );
    // Every file the gateway reads is mounted.
    let dirs: Vec<String> = mounts(&objs, Component::Gateway)
        .into_iter()
        .map(|m| m.0)
        .collect();
    for f in [
        cfg.tls.as_ref().unwrap().cert.clone(),
        cfg.auth.htpasswd.clone().unwrap(),
        cfg.session.as_ref().unwrap().key_file.clone(),
        d.history_key_file.clone().unwrap(),
    ] {
        let dir = f.parent().unwrap().to_str().unwrap().to_string();
        assert!(dirs.contains(&dir), "{} not mounted: {dirs:?}", f.display());
    }
    let h = config(&objs, Component::History, "history.toml");
    assert!(
        h.contains("[trusted_gateway]\nkey_file = \"/etc/rayward/history-key/key\"\n"),
        "{h}"
    );
    assert!(!h.contains("[tls]"), "{h}");
}

#[test]
fn discovery_without_history_and_history_without_discovery_stay_apart() {
    // The gateway alone: no history route, no key.
    let objs = objects(&opts(&[Component::Gateway], &["team-a"])).unwrap();
    let gw = config(&objs, Component::Gateway, "gateway.toml");
    let cfg = rayward_gateway::config::Config::parse(&gw, "gateway.toml").unwrap();
    assert!(cfg.discovery.as_ref().unwrap().history_upstream.is_none());
    assert!(!mounts(&objs, Component::Gateway)
        .iter()
        .any(|m| m.1 == "rayward-history-key"));
    assert_eq!(
        find(&objs, "NetworkPolicy", Some("rw"), "rayward-gateway")["spec"]["egress"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Single-upstream with history: serve keeps its own TLS and login, no key.
    let objs = objects(&opts(BOTH, &[])).unwrap();
    let h = config(&objs, Component::History, "history.toml");
    assert!(h.contains("[tls]") && !h.contains("trusted_gateway"), "{h}");
    assert!(objs.iter().all(|o| o["kind"] != "Role"));
}

#[test]
fn bad_discovery_input_is_a_clear_error() {
    let e = objects(&opts(BOTH, &["Team_A"])).unwrap_err().to_string();
    assert!(e.contains("--gateway-discovery `Team_A`"), "{e}");
    let e = objects(&opts(&[Component::History], &["team-a"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("add --gateway"), "{e}");
}
