//! The builders' contracts, without the CLI: what each mode and component yields.

use rayward_install::tls::{self, Mode, Tls};
use rayward_install::{objects, uninstall, Component, Image, Options};
use serde_json::Value;

fn opts(components: &[Component], tls: Tls) -> Options {
    Options {
        components: components.to_vec(),
        namespace: "rw".into(),
        image: Image::new("registry.example.com/rayward:0.1.0", None).unwrap(),
        tls,
        gateway_discovery: Vec::new(),
        gateway_upstream: "http://ray-head.ml.svc:8265".into(),
        history: Default::default(),
    }
}

const ALL: &[Component] = &[
    Component::Webhook,
    Component::Gateway,
    Component::Watch,
    Component::History,
];

fn generated() -> Tls {
    generated_for(ALL)
}

fn generated_for(components: &[Component]) -> Tls {
    Tls::Inline(tls::generate("rw", components).unwrap())
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

#[test]
fn every_component_gets_its_objects() {
    let objs = objects(&opts(ALL, generated())).unwrap();
    for c in ALL {
        let name = c.object_name();
        for kind in [
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "NetworkPolicy",
        ] {
            find(&objs, kind, &name);
        }
        assert_eq!(find(&objs, "Service", &name)["spec"]["type"], "ClusterIP");
    }
    // Only watch reads the API: only it has a token and ClusterRoles (reads, and apart
    // from them its writes: Events).
    for c in ALL {
        let d = find(&objs, "Deployment", &c.object_name());
        let token = d["spec"]["template"]["spec"]["automountServiceAccountToken"].as_bool();
        assert_eq!(token, Some(*c == Component::Watch), "{c:?}");
    }
    let roles: Vec<&str> = objs
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["rayward-watch", "rayward-watch-write"]);
    let write = find(&objs, "ClusterRole", "rayward-watch-write");
    assert_eq!(
        write["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "create", "patch"]}])
    );
    let lease = find(&objs, "Role", "rayward-watch");
    assert_eq!(
        lease["rules"][0]["resources"],
        serde_json::json!(["leases"])
    );
    let role = find(&objs, "ClusterRole", "rayward-watch");
    for rule in role["rules"].as_array().unwrap() {
        assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]));
        assert!(!rule["resources"]
            .as_array()
            .unwrap()
            .contains(&"secrets".into()));
    }
    // The webhook configurations come last, after the Service they call.
    let n = objs.len();
    assert_eq!(objs[n - 2]["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(objs[n - 1]["kind"], "MutatingWebhookConfiguration");
}

#[test]
fn generate_puts_the_ca_in_every_webhook_entry_and_the_certs_in_secrets() {
    let t = generated();
    let Tls::Inline(certs) = &t else {
        unreachable!()
    };
    let ca = certs[&Component::Webhook].ca_pem.clone();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let objs = objects(&opts(ALL, t.clone())).unwrap();
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD.encode(&ca);
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        for w in find(&objs, kind, "rayward")["webhooks"].as_array().unwrap() {
            assert_eq!(w["clientConfig"]["caBundle"], want.as_str(), "{kind}");
        }
    }
    let s = find(&objs, "Secret", "rayward-webhook-tls");
    assert_eq!(s["type"], "kubernetes.io/tls");
    assert!(s["data"]["tls.key"].is_string());
    assert!(
        objs.iter()
            .all(|o| o["kind"] != "Secret" || o["metadata"]["name"] != "rayward-gateway-auth"),
        "the gateway's users are a reference, never written"
    );
    // Two runs mint two CAs: what --reuse-from-cluster exists for.
    let again = tls::generate("rw", ALL).unwrap();
    assert_ne!(again[&Component::Webhook].ca_pem, ca);
}

#[test]
fn cert_manager_mode_uses_issuers_and_the_cainjector() {
    let objs = objects(&opts(ALL, Tls::CertManager)).unwrap();
    assert!(objs.iter().all(|o| o["kind"] != "Secret"));
    let cert = find(&objs, "Certificate", "rayward-webhook-tls");
    assert_eq!(cert["spec"]["issuerRef"]["name"], "rayward-ca");
    assert!(cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .contains(&"rayward-webhook.rw.svc".into()));
    find(&objs, "Issuer", "rayward-ca");
    let v = find(&objs, "ValidatingWebhookConfiguration", "rayward");
    assert_eq!(
        v["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "rw/rayward-webhook-tls"
    );
    assert!(v["webhooks"][0]["clientConfig"].get("caBundle").is_none());
}

#[test]
fn secret_mode_references_the_secret_and_needs_the_ca_for_the_webhook() {
    let t = Tls::Secret {
        name: "mine".into(),
        ca_pem: None,
    };
    let e = objects(&opts(ALL, t)).unwrap_err().to_string();
    assert!(e.contains("--ca-bundle"), "{e}");
    // Without the webhook there is no caBundle to fill.
    let t = Tls::Secret {
        name: "mine".into(),
        ca_pem: None,
    };
    let objs = objects(&opts(&[Component::Gateway], t)).unwrap();
    let d = find(&objs, "Deployment", "rayward-gateway");
    let vols = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| v["secret"]["secretName"] == "mine"));
    assert!(objs
        .iter()
        .all(|o| o["kind"] != "Secret" && o["kind"] != "Certificate"));
}

#[test]
fn bad_input_is_a_clear_error() {
    for (bad, want) in [
        ("secret:", "--certs"),
        ("secret:Bad_Name", "--certs"),
        ("vault", "--certs"),
    ] {
        let e = Mode::parse(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
    assert_eq!(
        Mode::parse("secret:tls-a").unwrap(),
        Mode::Secret("tls-a".into())
    );
    assert!(Image::new("r:1", Some("sha256:abc")).is_err());
    assert!(Image::new("r@sha256:00", None).is_err());
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        Image::new("r:1", Some(&d)).unwrap().reference(),
        format!("r:1@{d}")
    );
    let mut o = opts(ALL, Tls::CertManager);
    o.namespace = "Not_A_Namespace".into();
    assert!(objects(&o).unwrap_err().to_string().contains("--namespace"));
    for (store, want) in [
        ("/data", "expected s3://BUCKET"),
        ("s3://", "expected s3://BUCKET"),
        ("s3://AKIA:key@bucket", "holds credentials"),
    ] {
        let mut o = opts(&[Component::Watch, Component::History], Tls::CertManager);
        o.history.store = store.into();
        let e = objects(&o).unwrap_err().to_string();
        assert!(
            e.contains("--history-store") && e.contains(want),
            "{store}: {e}"
        );
        assert!(!e.contains("AKIA"), "{e}");
    }
    let mut o = opts(&[Component::History], Tls::CertManager);
    o.history.credentials_secret = Some("Bad_Name".into());
    assert!(objects(&o)
        .unwrap_err()
        .to_string()
        .contains("--history-credentials-secret"));
}

#[test]
fn history_server_reads_its_store_and_serves_ray_s_dashboard_build() {
    let mut o = opts(&[Component::History], generated_for(&[Component::History]));
    o.history.store = "s3://ml-history/prod".into();
    o.history.credentials_secret = Some("history-store".into());
    o.history.dashboard_image = "rayproject/ray:2.60.0@sha256:0f4c".into();
    let objs = objects(&o).unwrap();
    let d = find(&objs, "Deployment", "rayward-history");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["args"],
        serde_json::json!([
            "history",
            "serve",
            "--config",
            "/etc/rayward/config/history.toml"
        ])
    );
    // Probes on the admin port, plain HTTP; the service port is HTTPS.
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
    assert_eq!(
        c["ports"][1],
        serde_json::json!({"name": "admin", "containerPort": 9090, "protocol": "TCP"})
    );
    // The dashboard build: copied by the Ray image into an emptyDir the server reads.
    let init = &pod["initContainers"][0];
    assert_eq!(init["image"], "rayproject/ray:2.60.0@sha256:0f4c");
    assert!(init["command"][2]
        .as_str()
        .unwrap()
        .contains("dashboard/client/build"));
    assert_eq!(init["securityContext"]["readOnlyRootFilesystem"], true);
    let mounted = |c: &Value, vol: &str| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == vol)
            .map(|m| m["mountPath"].as_str().unwrap().to_string())
    };
    assert_eq!(
        mounted(init, "dashboard").as_deref(),
        Some("/var/lib/rayward/dashboard")
    );
    assert_eq!(
        mounted(c, "dashboard").as_deref(),
        Some("/var/lib/rayward/dashboard")
    );
    // Secrets are references: users and session key, the store's credentials, TLS.
    let vols = pod["volumes"].as_array().unwrap();
    for secret in [
        "rayward-history-auth",
        "history-store",
        "rayward-history-tls",
    ] {
        assert!(
            vols.iter().any(|v| v["secret"]["secretName"] == secret),
            "{secret}"
        );
    }
    assert!(objs
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .all(|o| o["metadata"]["name"] == "rayward-history-tls"));
    // The config names what is mounted, and a [retention] serve applies.
    let cm = find(&objs, "ConfigMap", "rayward-history");
    let toml = cm["data"]["history.toml"].as_str().unwrap();
    for want in [
        "store = \"s3://ml-history/prod\"",
        "credentials_file = \"/etc/rayward/store/credentials\"",
        "dashboard_dir = \"/var/lib/rayward/dashboard\"",
        "key_file = \"/etc/rayward/auth/session-key\"",
        "[retention]",
    ] {
        assert!(toml.contains(want), "{want}:\n{toml}");
    }
    // Egress: DNS, the store over HTTPS, Ray heads' dashboards; nothing else.
    let np = find(&objs, "NetworkPolicy", "rayward-history");
    let ports: Vec<i64> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(ports, [53, 53, 443, 8265]);
}

#[test]
fn uninstall_names_everything_install_makes_in_reverse_order() {
    let o = opts(ALL, Tls::CertManager);
    let made = objects(&o).unwrap();
    let gone = uninstall(&o).unwrap();
    assert_eq!(made.len(), gone.len());
    for (m, g) in made.iter().rev().zip(&gone) {
        assert_eq!(m["kind"], g["kind"]);
        assert_eq!(m["apiVersion"], g["apiVersion"]);
        assert_eq!(m["metadata"]["name"], g["metadata"]["name"]);
        assert_eq!(
            m["metadata"].get("namespace"),
            g["metadata"].get("namespace")
        );
    }
    assert_eq!(gone[0]["kind"], "MutatingWebhookConfiguration");
    assert_eq!(gone.last().unwrap()["kind"], "Namespace");
}

#[test]
fn the_gateway_config_map_is_a_config_the_gateway_accepts() {
    let objs = objects(&opts(ALL, Tls::CertManager)).unwrap();
    let text = find(&objs, "ConfigMap", "rayward-gateway")["data"]["gateway.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = rayward_gateway::config::Config::parse(&text, "gateway.toml")
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.upstream.as_deref(), Some("http://ray-head.ml.svc:8265"));
    assert_eq!(cfg.listen.port(), 8443);
    // Its mounts hold the files the config names.
    let d = find(&objs, "Deployment", "rayward-gateway");
    let mounts: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for file in [
        cfg.tls.as_ref().unwrap().cert.clone(),
        cfg.auth.htpasswd.clone().unwrap(),
        cfg.ray_token.file.clone().unwrap(),
    ] {
        let dir = file.parent().unwrap().to_str().unwrap().to_string();
        assert!(
            mounts.contains(&dir.as_str()),
            "{} not mounted: {mounts:?}",
            file.display()
        );
    }
}

#[test]
fn the_yaml_stream_loads_back_to_the_same_objects() {
    let objs = objects(&opts(ALL, generated())).unwrap();
    let text = rayward_install::yaml::stream(&objs, "rayward install\n\nline two");
    assert!(text.starts_with("# rayward install\n#\n# line two\n---\n"));
    let loaded = rayward_manifest::load_bytes(
        "install.yaml",
        text.as_bytes(),
        &rayward_manifest::Limits::default(),
    );
    assert!(loaded.error.is_none(), "{:?}", loaded.error);
    let docs: Vec<Value> = loaded
        .objects
        .iter()
        .map(|o| serde_json::from_str(&rayward_manifest::emit::to_json(&o.root)).unwrap())
        .collect();
    assert_eq!(docs, objs);
}
