//! The objects every component gets, from its [`Spec`]: ServiceAccount (+ RBAC when it
//! reads the API), ConfigMap, serving certificate, Deployment, PodDisruptionBudget,
//! ClusterIP Service and its NetworkPolicy.

use crate::{meta, pod, tls, Component, Options};
use serde_json::{json, Value};

/// What differs between components.
pub struct Spec {
    pub component: Component,
    pub replicas: u32,
    /// Arguments after the image's entrypoint (`/rayward`).
    pub args: Vec<String>,
    /// The one port it serves (container port; the Service maps `service_port` to it).
    pub port_name: &'static str,
    pub container_port: u16,
    pub service_port: u16,
    /// `HTTP` or `HTTPS`, for the probes.
    pub scheme: &'static str,
    pub readiness_path: &'static str,
    pub liveness_path: &'static str,
    /// ClusterRole rules; empty: the component never calls the API server, its account
    /// has no rights and no token is mounted.
    pub cluster_rules: Vec<Value>,
    /// Writes it needs everywhere, apart from the reads so that the read role stays
    /// read-only: a second ClusterRole `<name>-write` (watch: Events on the objects).
    pub cluster_write_rules: Vec<Value>,
    /// What it needs in its own namespace only: a Role `<name>` (watch: its Lease).
    pub namespace_rules: Vec<Value>,
    /// What it needs in other namespaces, and only there: a Role `<name>` and its binding
    /// in each (the discovering gateway: the Ray objects and token Secrets of the
    /// namespaces it watches, so it reads no other namespace's Secrets).
    pub roles_in: Vec<(String, Vec<Value>)>,
    /// The ConfigMap's one key and its text, mounted at [`CONFIG_DIR`].
    pub config_key: &'static str,
    pub config_text: String,
    /// Secrets the component reads besides its serving certificate (volume name, Secret
    /// name, mount path): referenced, never written by install.
    pub secrets: Vec<(&'static str, String, &'static str)>,
    /// Egress rules of its NetworkPolicy (ingress is its port, from anywhere in or out of
    /// the cluster: the API server and Prometheus have no address known in advance).
    pub egress: Vec<Value>,
    /// Ingress rules replacing "its port from anywhere" (history behind the discovering
    /// gateway: its port from the gateway's pods only).
    pub ingress: Option<Vec<Value>>,
    pub requests: Value,
    pub limits: Value,
    /// The PodDisruptionBudget's spec besides its selector.
    pub disruption: Value,
    /// A second port (name, number) serving the probes over plain HTTP (history: the
    /// admin port); `None`: the probes use the one port with `scheme`.
    pub admin_port: Option<(&'static str, u16)>,
    /// Init containers (history: the dashboard assets copied from the Ray image).
    pub init_containers: Vec<Value>,
    /// Volumes and mounts of the main container besides config, TLS and Secrets.
    pub extra_volumes: Vec<Value>,
    pub extra_mounts: Vec<Value>,
}

/// Where a component's ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/rayward/config";
/// Where its serving certificate is mounted (`tls.crt`, `tls.key`, `ca.crt`).
pub const TLS_DIR: &str = "/etc/rayward/tls";

impl Spec {
    fn api_access(&self) -> bool {
        !self.cluster_rules.is_empty() || !self.roles_in.is_empty()
    }
}

/// The objects of one component, in apply order.
pub fn objects(spec: &Spec, opts: &Options) -> Vec<Value> {
    let c = spec.component;
    let name = c.object_name();
    let ns = opts.namespace.as_str();
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta::namespaced(&name, ns, Some(c)),
        "automountServiceAccountToken": spec.api_access(),
    })];
    if !spec.cluster_rules.is_empty() {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta::cluster(&name, Some(c)),
            "rules": spec.cluster_rules,
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta::cluster(&name, Some(c)),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        }));
    }
    if !spec.cluster_write_rules.is_empty() {
        let write = format!("{name}-write");
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta::cluster(&write, Some(c)),
            "rules": spec.cluster_write_rules,
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta::cluster(&write, Some(c)),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": write},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        }));
    }
    if !spec.namespace_rules.is_empty() {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta::namespaced(&name, ns, Some(c)),
            "rules": spec.namespace_rules,
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta::namespaced(&name, ns, Some(c)),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        }));
    }
    for (other, rules) in &spec.roles_in {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta::namespaced(&name, other, Some(c)),
            "rules": rules,
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta::namespaced(&name, other, Some(c)),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        }));
    }
    out.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta::namespaced(&name, ns, Some(c)),
        "data": {spec.config_key: spec.config_text},
    }));
    out.extend(tls::component_objects(opts, c));
    out.push(deployment(spec, opts));
    out.push(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta::namespaced(&name, ns, Some(c)),
        "spec": merge(&spec.disruption, json!({"selector": {"matchLabels": meta::selector(c)}})),
    }));
    out.push(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta::namespaced(&name, ns, Some(c)),
        "spec": {
            "type": "ClusterIP",
            "selector": meta::selector(c),
            "ports": [{
                "name": spec.port_name,
                "port": spec.service_port,
                "targetPort": spec.port_name,
                "protocol": "TCP",
            }],
        },
    }));
    let mut np = json!({
        "podSelector": {"matchLabels": meta::selector(c)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": spec.ingress.clone().unwrap_or_else(
            || vec![json!({"ports": [{"port": spec.container_port, "protocol": "TCP"}]})]
        ),
    });
    if !spec.egress.is_empty() {
        np["egress"] = json!(spec.egress);
    }
    out.push(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta::namespaced(&name, ns, Some(c)),
        "spec": np,
    }));
    out
}

fn merge(a: &Value, b: Value) -> Value {
    let mut m = a.clone();
    if let (Some(m), Value::Object(b)) = (m.as_object_mut(), b) {
        m.extend(b);
    }
    m
}

fn deployment(spec: &Spec, opts: &Options) -> Value {
    let c = spec.component;
    let name = c.object_name();
    let mut mounts = vec![json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true})];
    let mut volumes = vec![pod::config_map_volume("config", &name)];
    if let Some(secret) = tls::secret_name(opts, c) {
        mounts.push(json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}));
        volumes.push(pod::secret_volume("tls", &secret));
    }
    for (volume, secret, path) in &spec.secrets {
        mounts.push(json!({"name": volume, "mountPath": path, "readOnly": true}));
        volumes.push(pod::secret_volume(volume, secret));
    }
    mounts.extend(spec.extra_mounts.iter().cloned());
    volumes.extend(spec.extra_volumes.iter().cloned());
    let (probe_port, probe_scheme) = match spec.admin_port {
        Some((name, _)) => (name, "HTTP"),
        None => (spec.port_name, spec.scheme),
    };
    let probe = |path: &str, period: u32| {
        json!({
            "httpGet": {"path": path, "port": probe_port, "scheme": probe_scheme},
            "periodSeconds": period,
            "timeoutSeconds": 2,
        })
    };
    let mut ports = vec![
        json!({"name": spec.port_name, "containerPort": spec.container_port, "protocol": "TCP"}),
    ];
    if let Some((name, port)) = spec.admin_port {
        ports.push(json!({"name": name, "containerPort": port, "protocol": "TCP"}));
    }
    let container = json!({
        "name": c.as_str(),
        "image": opts.image.reference(),
        "imagePullPolicy": "IfNotPresent",
        "args": spec.args,
        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": ports,
        "readinessProbe": probe(spec.readiness_path, 5),
        "livenessProbe": probe(spec.liveness_path, 10),
        "resources": {"requests": spec.requests, "limits": spec.limits},
        "securityContext": pod::container_security_context(),
        "volumeMounts": mounts,
    });
    let mut pod_spec = json!({
        "serviceAccountName": name,
        "automountServiceAccountToken": spec.api_access(),
        "enableServiceLinks": false,
        "securityContext": pod::pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    });
    if !spec.init_containers.is_empty() {
        pod_spec["initContainers"] = json!(spec.init_containers);
    }
    if spec.replicas > 1 {
        pod_spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": meta::selector(c)},
        }]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta::namespaced(&name, &opts.namespace, Some(c)),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": meta::selector(c)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": meta::labels(Some(c))},
                "spec": pod_spec,
            },
        },
    })
}
