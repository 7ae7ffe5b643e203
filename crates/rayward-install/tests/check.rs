//! `check::run` over what install makes, as if the cluster held it: healthy, then broken
//! one way at a time, each failure on its own line with a fix.

use base64::Engine as _;
use rayward_install::check::{self, Line};
use rayward_install::tls::{self, Tls};
use rayward_install::{objects, Component, Image, Options};
use serde_json::{json, Value};

const ALL: &[Component] = &[Component::Webhook, Component::Gateway, Component::Watch];

/// The objects of an installation, its Deployments reported available.
fn healthy() -> Vec<Value> {
    let opts = Options {
        components: ALL.to_vec(),
        namespace: "rw".into(),
        image: Image::new("rayward:1", None).unwrap(),
        tls: Tls::Inline(tls::generate("rw", ALL).unwrap()),
        gateway_discovery: Vec::new(),
        gateway_upstream: "http://ray:8265".into(),
        history: Default::default(),
    };
    let mut objs = objects(&opts).unwrap();
    for o in objs.iter_mut().filter(|o| o["kind"] == "Deployment") {
        o["status"] = json!({"availableReplicas": o["spec"]["replicas"]});
    }
    objs
}

fn failed(lines: &[Line]) -> Vec<&Line> {
    lines.iter().filter(|l| !l.ok).collect()
}

fn one_failure(objs: &[Value], check_starts: &str) -> Line {
    let lines = check::run("rw", objs);
    let f = failed(&lines);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].check.starts_with(check_starts), "{f:#?}");
    assert!(!f[0].fix.is_empty());
    f[0].clone()
}

#[test]
fn a_healthy_installation_passes_every_check() {
    let lines = check::run("rw", &healthy());
    assert!(failed(&lines).is_empty(), "{lines:#?}");
    // Every kind of check ran.
    for want in [
        "Deployment rayward-webhook available",
        "PodDisruptionBudget rayward-watch present",
        "Service rayward-gateway not exposed",
        "webhook caBundle matches",
        "certificate rayward-gateway-tls valid",
        "webhook failurePolicy",
        "ValidatingWebhookConfiguration rayward present",
    ] {
        assert!(
            lines.iter().any(|l| l.check.starts_with(want)),
            "{want}: {lines:#?}"
        );
    }
}

#[test]
fn a_broken_ca_bundle_is_reported() {
    let mut objs = healthy();
    let other = tls::generate("rw", &[Component::Webhook]).unwrap();
    let b = base64::engine::general_purpose::STANDARD.encode(&other[&Component::Webhook].ca_pem);
    for o in objs.iter_mut().filter(|o| {
        o["kind"]
            .as_str()
            .unwrap()
            .ends_with("WebhookConfiguration")
    }) {
        for w in o["webhooks"].as_array_mut().unwrap() {
            w["clientConfig"]["caBundle"] = b.clone().into();
        }
    }
    let f = one_failure(&objs, "webhook caBundle matches");
    assert!(f.fix.contains("--reuse-from-cluster"), "{f:?}");
}

#[test]
fn a_deleted_pdb_is_reported() {
    let mut objs = healthy();
    objs.retain(|o| {
        !(o["kind"] == "PodDisruptionBudget" && o["metadata"]["name"] == "rayward-webhook")
    });
    one_failure(&objs, "PodDisruptionBudget rayward-webhook present");
}

#[test]
fn an_expiring_certificate_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    rayward_certs::create_ca(&dir.path().join("ca"), &Default::default()).unwrap();
    rayward_certs::issue_node(
        &dir.path().join("ca"),
        &dir.path().join("n"),
        &rayward_certs::NodeOptions {
            days: 10,
            dns: tls::dns_names("rw", Component::Gateway),
            ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            ..Default::default()
        },
    )
    .unwrap();
    let enc = |f: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.path().join(f)).unwrap())
    };
    let mut objs = healthy();
    let s = objs
        .iter_mut()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "rayward-gateway-tls")
        .unwrap();
    s["data"] = json!({"tls.crt": enc("n/tls.crt"), "tls.key": enc("n/tls.key"), "ca.crt": enc("ca/ca.crt")});
    let f = one_failure(&objs, "certificate rayward-gateway-tls valid for 30 days");
    assert!(
        f.detail.starts_with("9 days left") || f.detail.starts_with("10 days left"),
        "{f:?}"
    );
}

#[test]
fn unavailable_exposed_and_misconfigured_are_reported() {
    let mut objs = healthy();
    objs.iter_mut()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "rayward-watch")
        .unwrap()["status"] = json!({});
    one_failure(&objs, "Deployment rayward-watch available");

    let mut objs = healthy();
    objs.iter_mut()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "rayward-gateway")
        .unwrap()["spec"]["type"] = "LoadBalancer".into();
    one_failure(&objs, "Service rayward-gateway not exposed");

    let mut objs = healthy();
    objs.iter_mut()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
        .unwrap()["webhooks"][1]["failurePolicy"] = "Ignore".into();
    let f = one_failure(&objs, "webhook failurePolicy");
    assert!(
        f.detail
            .contains("enforce.validate.rayward.io: failurePolicy Ignore, documented Fail"),
        "{f:?}"
    );

    let mut objs = healthy();
    objs.retain(|o| o["kind"] != "MutatingWebhookConfiguration");
    one_failure(&objs, "MutatingWebhookConfiguration rayward present");

    let lines = check::run("elsewhere", &[]);
    assert_eq!(failed(&lines).len(), 1);
    assert!(lines[0]
        .fix
        .starts_with("rayward install --namespace elsewhere"));
}
