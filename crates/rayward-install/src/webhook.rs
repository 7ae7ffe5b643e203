//! The admission webhook: its pod (`rayward webhook serve`) and the two webhook
//! configurations of deploy/webhooks.yaml (docs/webhook.md), with the CA bundle of the
//! chosen certificate mode.

use crate::component::{Spec, CONFIG_DIR, TLS_DIR};
use crate::{meta, tls, Component, Options};
use serde_json::{json, Value};

/// The port the webhook serves HTTPS on in its pod.
pub const PORT: u16 = 8443;

pub fn spec(_opts: &Options) -> Spec {
    Spec {
        component: Component::Webhook,
        // Two replicas spread over nodes: with failurePolicy Fail on enforce namespaces,
        // the webhook being down refuses Ray objects there.
        replicas: 2,
        args: [
            "webhook",
            "serve",
            "--config",
            &format!("{CONFIG_DIR}/rayward.toml"),
            "--cert",
            &format!("{TLS_DIR}/tls.crt"),
            "--key",
            &format!("{TLS_DIR}/tls.key"),
            "--listen",
            &format!("0.0.0.0:{PORT}"),
            "--mode",
            "enforce",
            "--deny-at",
            "high",
        ]
        .map(String::from)
        .to_vec(),
        port_name: "https",
        container_port: PORT,
        service_port: 443,
        scheme: "HTTPS",
        readiness_path: "/readyz",
        liveness_path: "/healthz",
        // Namespace modes come from the configurations' namespaceSelectors, not from a
        // watch: the webhook never calls the API server.
        cluster_rules: Vec::new(),
        cluster_write_rules: Vec::new(),
        namespace_rules: Vec::new(),
        roles_in: Vec::new(),
        config_key: "rayward.toml",
        config_text: "# Rules the webhook applies (the format of .rayward.toml, docs/rules.md).\n\
                      # Changes take effect when the pods restart.\n[rules]\ndisable = []\n"
            .into(),
        secrets: Vec::new(),
        ingress: None,
        egress: Vec::new(),
        requests: json!({"cpu": "100m", "memory": "64Mi"}),
        limits: json!({"cpu": "1", "memory": "256Mi"}),
        // Node drains keep one replica: an enforce namespace never loses admission.
        disruption: json!({"minAvailable": 1}),
        admin_port: None,
        init_containers: Vec::new(),
        extra_volumes: Vec::new(),
        extra_mounts: Vec::new(),
    }
}

/// failurePolicy of each validating entry, as docs/webhook.md documents it: `Fail` where
/// the webhook enforces (a Ray object must not slip through while it is down), `Ignore`
/// where it only warns or counts. `rayward check` compares against this table.
pub const VALIDATING: &[(&str, &str, Option<&str>, &str)] = &[
    ("validate.rayward.io", "/validate", None, "Fail"),
    (
        "enforce.validate.rayward.io",
        "/validate/enforce",
        Some("enforce"),
        "Fail",
    ),
    (
        "warn.validate.rayward.io",
        "/validate/warn",
        Some("warn"),
        "Ignore",
    ),
    (
        "dry-run.validate.rayward.io",
        "/validate/dry-run",
        Some("dry-run"),
        "Ignore",
    ),
];

/// The mutating entry's name and failurePolicy (`Ignore`: a mutation is a convenience,
/// the validating entries still guard).
pub const MUTATING: (&str, &str) = ("mutate.rayward.io", "Ignore");

/// The name of both webhook configurations.
pub const CONFIGURATION: &str = "rayward";

fn ray_rules() -> Value {
    json!({
        "apiGroups": ["ray.io"],
        "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["rayclusters", "rayjobs", "rayservices", "raycronjobs"],
        "scope": "Namespaced",
    })
}

fn client_config(opts: &Options, path: &str) -> Value {
    let mut c = json!({
        "service": {
            "namespace": opts.namespace,
            "name": Component::Webhook.object_name(),
            "path": path,
            "port": 443,
        },
    });
    if let Some(bundle) = tls::ca_bundle(opts) {
        c["caBundle"] = json!(bundle);
    }
    c
}

/// The ValidatingWebhookConfiguration (one entry per namespace mode, split by the label
/// `rayward.io/mode`; `off` matches none) and the MutatingWebhookConfiguration.
pub fn configurations(opts: &Options) -> Vec<Value> {
    let mut metadata = meta::cluster(CONFIGURATION, Some(Component::Webhook));
    if let Some(a) = tls::inject_annotation(opts) {
        metadata["annotations"] = a;
    }
    let validating: Vec<Value> = VALIDATING
        .iter()
        .map(|(name, path, mode, failure)| {
            let selector = match mode {
                None => json!({"key": "rayward.io/mode", "operator": "DoesNotExist"}),
                Some(m) => json!({"key": "rayward.io/mode", "operator": "In", "values": [m]}),
            };
            json!({
                "name": name,
                "clientConfig": client_config(opts, path),
                "rules": [
                    ray_rules(),
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": ["services"], "scope": "Namespaced"},
                    {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                     "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"], "scope": "Namespaced"},
                ],
                "namespaceSelector": {"matchExpressions": [selector]},
                "failurePolicy": failure,
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            })
        })
        .collect();
    let mutating = json!({
        "name": MUTATING.0,
        "clientConfig": client_config(opts, "/mutate"),
        "rules": [ray_rules()],
        "namespaceSelector": {"matchExpressions": [
            {"key": "rayward.io/mode", "operator": "NotIn", "values": ["off", "dry-run"]},
        ]},
        "failurePolicy": MUTATING.1,
        "matchPolicy": "Equivalent",
        "reinvocationPolicy": "IfNeeded",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    });
    vec![
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": metadata,
            "webhooks": validating,
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": metadata,
            "webhooks": [mutating],
        }),
    ]
}
