//! Ray clusters as KubeRay leaves them in the API server, and the RBAC around a gateway
//! that discovers them: the setup the gateway's discovery, Kubernetes-identity, Ray and
//! browser end-to-end tests share (one place, so each test says only what differs).
//!
//! A [`Fleet`] is one namespace of a real kube-apiserver with the Ray CRDs installed, some
//! ServiceAccounts, and `docs/gateway/rbac.yaml` stored as it is (the gateway's own
//! ServiceAccount `rayward-gateway` gets exactly the documented rights). Clusters are
//! stored as [`raycluster`], [`token_secret`] and [`head_objects`] (head Service plus an
//! EndpointSlice pointing at a loopback address: a real Ray head's dashboard, or a stand-in).

use crate::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The ServiceAccount the gateway runs as in `docs/gateway/rbac.yaml`.
pub const GATEWAY_SA: &str = "rayward-gateway";

/// One namespace of a real API server, ready for a discovering gateway.
pub struct Fleet {
    pub client: Client,
    pub store: DryRun,
    pub namespace: String,
    /// `v1` where the server serves `discovery.k8s.io/v1` EndpointSlices, else `v1beta1`
    /// (kube-apiserver 1.20).
    pub slice_version: &'static str,
}

impl Fleet {
    /// Namespace `namespace`, the Ray CRDs, ServiceAccounts `service_accounts` plus
    /// [`GATEWAY_SA`], and every object of `docs/gateway/rbac.yaml` (panics naming the one
    /// the server refuses).
    pub async fn new(k: &KubeApiserver, namespace: &str, service_accounts: &[&str]) -> Fleet {
        let client = k.client().await;
        ensure_namespace(&client, namespace).await;
        install_ray_crds(&client).await;
        let store = DryRun::new(client.clone()).await;
        let slice_version = if store.serves("discovery.k8s.io/v1", "EndpointSlice") {
            "v1"
        } else {
            "v1beta1"
        };
        let sas = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
        for sa in service_accounts.iter().chain([&GATEWAY_SA]) {
            let o: ServiceAccount =
                serde_json::from_value(json!({"metadata": {"name": sa}})).expect("SA");
            sas.create(&PostParams::default(), &o)
                .await
                .unwrap_or_else(|e| panic!("ServiceAccount {sa}: {e}"));
        }
        let docs = crate::cli::repo_root().join("docs/gateway/rbac.yaml");
        for m in crate::yaml::load_manifests(&docs).expect("docs/gateway/rbac.yaml") {
            store
                .store(namespace, &m.value)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", m.id()));
        }
        Fleet {
            client,
            store,
            namespace: namespace.to_string(),
            slice_version,
        }
    }

    /// [`grant`] in this namespace.
    pub async fn grant(&self, name: &str, sa: &str, cluster: &str, verbs: &[&str]) {
        grant(&self.client, &self.namespace, name, sa, cluster, verbs).await
    }

    /// [`service_account_token`] in this namespace.
    pub async fn token(&self, sa: &str, audience: &str) -> String {
        service_account_token(&self.client, &self.namespace, sa, audience).await
    }

    /// Stores what KubeRay creates for a token-auth RayCluster `name` whose head's
    /// dashboard is at `at`: the cluster, its token Secret (named like it, KubeRay's
    /// default), head Service and EndpointSlice.
    pub async fn store_cluster(&self, name: &str, at: SocketAddr, ray_token: &str) {
        let mut objects = vec![
            token_secret(&self.namespace, name, ray_token),
            raycluster(&self.namespace, name, json!({"mode": "token"})),
        ];
        objects.extend(head_objects(&self.namespace, name, at, self.slice_version));
        self.store_all(&objects).await;
    }

    /// Stores every object (panics naming the kind the server refuses).
    pub async fn store_all(&self, objects: &[Value]) {
        for o in objects {
            self.store
                .store(&self.namespace, o)
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", o["kind"], o["metadata"]["name"]));
        }
    }
}

/// A Role `name` in `namespace` granting `verbs` on RayCluster `cluster` only
/// (`resourceNames`), bound to ServiceAccount `sa` of that namespace.
pub async fn grant(
    client: &Client,
    namespace: &str,
    name: &str,
    sa: &str,
    cluster: &str,
    verbs: &[&str],
) {
    let pp = PostParams::default();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"],
                   "resourceNames": [cluster], "verbs": verbs}]
    }))
    .expect("Role");
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&pp, &role)
        .await
        .unwrap_or_else(|e| panic!("Role {name}: {e}"));
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]
    }))
    .expect("RoleBinding");
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&pp, &binding)
        .await
        .unwrap_or_else(|e| panic!("RoleBinding {name}: {e}"));
}

/// A one-hour token of ServiceAccount `namespace/sa` for `audience` ("": the API
/// server's own), from the TokenRequest API.
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    sa: &str,
    audience: &str,
) -> String {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: if audience.is_empty() {
                Vec::new()
            } else {
                vec![audience.to_string()]
            },
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .unwrap_or_else(|e| panic!("token of {sa}: {e}"))
        .status
        .expect("TokenRequest status")
        .token
}

/// A RayCluster `name` with `spec.authOptions` `auth` (the rest as small as the CRD takes).
pub fn raycluster(namespace: &str, name: &str, auth: Value) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"authOptions": auth, "headGroupSpec": {"rayStartParams": {}}}})
}

/// A Secret `name` holding a Ray token under `auth_token`, as KubeRay writes it.
pub fn token_secret(namespace: &str, name: &str, token: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": namespace},
           "data": {"auth_token": base64::engine::general_purpose::STANDARD.encode(token)}})
}

/// The head Service KubeRay creates for `cluster`, and an EndpointSlice
/// (`discovery.k8s.io/<slice_version>`) with one ready endpoint whose port `dashboard` is
/// `at`.
pub fn head_objects(
    namespace: &str,
    cluster: &str,
    at: SocketAddr,
    slice_version: &str,
) -> Vec<Value> {
    let svc = format!("{cluster}-head-svc");
    let labels = json!({"ray.io/cluster": cluster, "ray.io/node-type": "head"});
    let mut slice_labels = labels.clone();
    slice_labels["kubernetes.io/service-name"] = json!(svc);
    vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": svc, "namespace": namespace, "labels": labels},
               "spec": {"clusterIP": "None", "ports": [
                   {"name": "gcs", "port": 6379}, {"name": "dashboard", "port": 8265}]}}),
        json!({"apiVersion": format!("discovery.k8s.io/{slice_version}"), "kind": "EndpointSlice",
               "metadata": {"name": format!("{svc}-x1"), "namespace": namespace,
                            "labels": slice_labels},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [at.ip().to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "gcs", "port": 6379, "protocol": "TCP"},
                         {"name": "dashboard", "port": at.port(), "protocol": "TCP"}]}),
    ]
}

/// A kubeconfig at `dir/gateway-kubeconfig` with bearer `token`, trusting the test server's
/// self-signed certificate (it carries CA:TRUE, which rustls refuses as a server
/// certificate; see [`crate::apiserver`]).
pub fn kubeconfig(k: &KubeApiserver, dir: &Path, token: &str) -> PathBuf {
    let p = dir.join("gateway-kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: gw\n  user:\n    token: {}\ncontexts:\n- name: t\n  context: {{cluster: t, user: gw}}\ncurrent-context: t\n",
            k.url(),
            token
        ),
    )
    .expect("write the gateway's kubeconfig");
    p
}
