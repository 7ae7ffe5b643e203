//! The Ray history server (`rayward history serve --config …`, docs/history.md): the
//! dashboards of terminated clusters, read from the store the collectors write to.
//!
//! - HTTPS on 8443 with the installation's serving certificate; `/healthz`, `/readyz` and
//!   `/metrics` on the admin port (9090, plain HTTP: the kubelet's probes and Prometheus);
//! - users (`htpasswd`) and the session key from a Secret the user creates
//!   (`rayward-history-auth`: keys `htpasswd`, `session-key`), the store's credentials from
//!   another (`--history-credentials-secret`, key `credentials`) or from workload identity;
//! - Ray's dashboard UI (the static build in the Ray image, `ray/dashboard/client/build`)
//!   copied by an init container running the Ray image into an emptyDir the server reads:
//!   no dashboard files in rayward's image, and the UI matches the Ray version chosen;
//! - `[retention]` applied by the server every hour (docs/history.md, Retention);
//! - behind the discovering gateway (`--gateway-discovery` with the gateway): the gateway's
//!   signed assertion is the caller (`[trusted_gateway]`, the key Secret both mount), so
//!   plain HTTP (the gateway's upstreams are) on its port, admitted from the gateway's pods
//!   only, and its Service on port 80;
//! - egress only to DNS, HTTPS (the store: an address a policy cannot name) and Ray heads'
//!   dashboard port (a running cluster shown live).

use crate::component::{Spec, CONFIG_DIR, TLS_DIR};
use crate::gateway::dns_egress;
use crate::gateway::{HISTORY_KEY_DIR as KEY_DIR, HISTORY_KEY_SECRET as KEY_SECRET};
use crate::{meta, pod, Component, Options};
use serde_json::json;

/// The port the server serves HTTPS on in its pod.
pub const PORT: u16 = 8443;
/// The admin port: `/healthz`, `/readyz`, `/metrics`.
pub const ADMIN_PORT: u16 = 9090;
/// The Secret of users and the session key (never written by install).
pub const AUTH_SECRET: &str = "rayward-history-auth";
const AUTH_DIR: &str = "/etc/rayward/auth";
/// Where the store's credentials Secret is mounted (key `credentials`).
const STORE_DIR: &str = "/etc/rayward/store";
/// Where the dashboard's static build is copied to and served from.
pub const DASHBOARD_DIR: &str = "/var/lib/rayward/dashboard";
/// The default store: a bucket name to replace (install warns when it is used).
pub const DEFAULT_STORE: &str = "s3://rayward-history";
/// The default image the dashboard build is copied from.
pub const DEFAULT_DASHBOARD_IMAGE: &str = "rayproject/ray:2.60.0";

/// The init container's script: find Ray's package without importing it (no Ray start,
/// nothing written) and copy the UI's static build.
const COPY_SCRIPT: &str = "set -eu\n\
     ray_dir=$(python -c 'import importlib.util as u; print(u.find_spec(\"ray\").submodule_search_locations[0])')\n\
     cp -R \"$ray_dir/dashboard/client/build/.\" \"$DASHBOARD_DIR/\"\n\
     test -f \"$DASHBOARD_DIR/index.html\"\n";

/// The URL the discovering gateway reaches the history server at (its Service).
pub fn upstream_url(namespace: &str) -> String {
    format!("http://rayward-history.{namespace}.svc:80")
}

pub fn spec(opts: &Options) -> Spec {
    let h = &opts.history;
    let behind = opts.history_behind_gateway();
    let (tls, trusted) = if behind {
        (
            "# No TLS section: only the gateway's pods reach this port (NetworkPolicy), and the\n\
             # gateway's upstreams are plain HTTP inside the cluster.\n"
                .to_string(),
            format!(
                "\n\
                 # The gateway in front signs who is asking and what they may read (Secret\n\
                 # {KEY_SECRET}, key `key`, which install does not write).\n\
                 [trusted_gateway]\n\
                 key_file = \"{KEY_DIR}/key\"\n"
            ),
        )
    } else {
        (
            format!("[tls]\ncert = \"{TLS_DIR}/tls.crt\"\nkey = \"{TLS_DIR}/tls.key\"\n"),
            String::new(),
        )
    };
    // A session still being written links to its live dashboard through the gateway.
    let live = if behind { "live_base_url = \"\"\n" } else { "" };
    let credentials = match &h.credentials_secret {
        Some(_) => format!("credentials_file = \"{STORE_DIR}/credentials\"\n"),
        None => "# credentials_file: none; the pod's workload identity gives access.\n".into(),
    };
    let config = format!(
        "# rayward history serve (docs/history.md). Edit with\n\
         #   kubectl -n {ns} edit configmap rayward-history\n\
         # and restart the Deployment. Users and the session key live in the Secret\n\
         # {AUTH_SECRET} (keys htpasswd, session-key), which install does not write.\n\
         listen = \"0.0.0.0:{PORT}\"\n\
         admin_listen = \"0.0.0.0:{ADMIN_PORT}\"\n\
         store = \"{store}\"\n\
         {credentials}\
         dashboard_dir = \"{DASHBOARD_DIR}\"\n\
         {live}\
         \n\
         {tls}\
         \n\
         [auth]\n\
         htpasswd = \"{AUTH_DIR}/htpasswd\"\n\
         \n\
         [session]\n\
         key_file = \"{AUTH_DIR}/session-key\"\n\
         \n\
         # Who opened which session and downloaded which log, as JSON lines on standard\n\
         # output (the container's log).\n\
         [audit]\n\
         path = \"-\"\n\
         \n\
         [retention]\n\
         max_age = \"30d\"\n\
         max_sessions_per_cluster = 50\n\
         max_total_bytes = \"100GiB\"\n\
         interval = \"1h\"\n\
         {trusted}\
         \n\
         # user = \"ROLE\"; a role lists the namespaces it may read:\n\
         #   [roles.team-a]\n\
         #   namespaces = [\"team-a\"]\n\
         # Users without a role see nothing.\n\
         [users]\n",
        ns = opts.namespace,
        store = h.store,
    );
    let mut secrets = vec![("auth", AUTH_SECRET.to_string(), AUTH_DIR)];
    if let Some(s) = &h.credentials_secret {
        secrets.push(("store", s.clone(), STORE_DIR));
    }
    if behind {
        secrets.push(("history-key", KEY_SECRET.to_string(), KEY_DIR));
    }
    let init = json!({
        "name": "dashboard-assets",
        "image": h.dashboard_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", COPY_SCRIPT],
        "env": [{"name": "DASHBOARD_DIR", "value": DASHBOARD_DIR}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": pod::container_security_context(),
        "volumeMounts": [{"name": "dashboard", "mountPath": DASHBOARD_DIR}],
    });
    Spec {
        component: Component::History,
        replicas: 2,
        args: vec![
            "history".into(),
            "serve".into(),
            "--config".into(),
            format!("{CONFIG_DIR}/history.toml"),
        ],
        port_name: if behind { "http" } else { "https" },
        container_port: PORT,
        service_port: if behind { 80 } else { 443 },
        scheme: "HTTP",
        readiness_path: "/readyz",
        liveness_path: "/healthz",
        cluster_rules: Vec::new(),
        cluster_write_rules: Vec::new(),
        namespace_rules: Vec::new(),
        roles_in: Vec::new(),
        config_key: "history.toml",
        config_text: config,
        secrets,
        ingress: behind.then(|| {
            vec![json!({
                "from": [{"podSelector": {"matchLabels": meta::selector(Component::Gateway)}}],
                "ports": [{"port": PORT, "protocol": "TCP"}],
            })]
        }),
        egress: vec![
            dns_egress(),
            // The store: S3, GCS and Azure endpoints by name, over HTTPS.
            json!({
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "ports": [{"port": 443, "protocol": "TCP"}],
            }),
            // A running cluster shown live: the heads' dashboard port.
            json!({
                "to": [{
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"ray.io/node-type": "head"}},
                }],
                "ports": [{"port": 8265, "protocol": "TCP"}],
            }),
        ],
        requests: json!({"cpu": "100m", "memory": "128Mi"}),
        limits: json!({"cpu": "2", "memory": "1Gi"}),
        disruption: json!({"minAvailable": 1}),
        admin_port: Some(("admin", ADMIN_PORT)),
        init_containers: vec![init],
        extra_volumes: vec![json!({"name": "dashboard", "emptyDir": {"sizeLimit": "256Mi"}})],
        extra_mounts: vec![
            json!({"name": "dashboard", "mountPath": DASHBOARD_DIR, "readOnly": true}),
        ],
    }
}

/// The history part of [`Options`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryOptions {
    /// The store URL (`s3://`, `gs://`, `az://`, as for `history collect`).
    pub store: String,
    /// The Secret holding the store's credentials (key `credentials`); `None`: workload
    /// identity.
    pub credentials_secret: Option<String>,
    /// The Ray image the dashboard's static build is copied from.
    pub dashboard_image: String,
}

impl Default for HistoryOptions {
    fn default() -> HistoryOptions {
        HistoryOptions {
            store: DEFAULT_STORE.into(),
            credentials_secret: None,
            dashboard_image: DEFAULT_DASHBOARD_IMAGE.into(),
        }
    }
}

impl HistoryOptions {
    /// Checks the store URL (a remote store, no credentials in it), the Secret name and
    /// the image reference.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Usage(m));
        let s = &self.store;
        let ok_scheme = ["s3://", "gs://", "az://"].iter().any(|p| {
            s.strip_prefix(p)
                .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        });
        if !ok_scheme {
            return bad(format!(
                "--history-store `{}`: expected s3://BUCKET, gs://BUCKET or az://CONTAINER",
                cut(s)
            ));
        }
        if s.contains('@') || s.contains('?') || s.contains('#') || s.contains(char::is_whitespace)
        {
            return bad(format!(
                "--history-store `{}`: holds credentials, a query or spaces; give credentials with --history-credentials-secret or workload identity",
                cut(s)
            ));
        }
        if let Some(n) = &self.credentials_secret {
            if n.len() > 253 || !n.split('.').all(rayward_manifest::names::is_dns_label) {
                return bad(format!(
                    "--history-credentials-secret `{n}`: not a valid Secret name"
                ));
            }
        }
        let i = &self.dashboard_image;
        if i.is_empty() || i.contains(char::is_whitespace) {
            return bad(format!(
                "--history-dashboard-image `{i}`: not an image reference"
            ));
        }
        Ok(())
    }
}

/// A URL cut before any `@`, for messages.
fn cut(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, rest)) => format!("***@{rest}"),
        None => url.to_string(),
    }
}
