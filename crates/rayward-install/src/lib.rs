//! Every object of rayward's in-cluster deployment, for `rayward install | kubectl apply -f -`
//! (issue 15), built by the same rules rayward applies to everyone else's manifests:
//! least-privilege accounts, restricted pods with requests and limits, a
//! PodDisruptionBudget, a ClusterIP Service and NetworkPolicies per component.
//!
//! - [`Options`] says what to install; [`objects`] builds the objects as JSON values in
//!   apply order, [`uninstall`] the same objects (names only) in delete order.
//! - [`tls`] holds the certificate modes; [`tls::generate`] mints a CA and serving
//!   certificates with `rayward-certs` (the CA key is thrown away: re-running install
//!   rotates, unless the caller hands back the Secrets already in the cluster).
//! - [`yaml::stream`] prints them the way `rayward harden` prints objects.
//!
//! Objects are plain JSON rather than k8s-openapi types: the output is a document, its
//! tests read it as a document (schemas, `rayward audit`, a real API server), and this crate
//! stays free of a Kubernetes client.

pub mod check;
mod component;
mod gateway;
mod history;
mod meta;
mod namespace;
mod pod;
pub mod tls;
mod watch;
mod webhook;
pub mod yaml;

pub use gateway::{HISTORY_KEY_DIR, HISTORY_KEY_SECRET};
pub use history::HistoryOptions;

/// The history server's default store (a bucket name to replace; install warns).
pub const fn history_default_store() -> &'static str {
    history::DEFAULT_STORE
}

/// The default Ray image the history server's dashboard build is copied from.
pub const fn history_default_dashboard_image() -> &'static str {
    history::DEFAULT_DASHBOARD_IMAGE
}
pub use meta::{COMPONENT_LABEL, PART_OF, PART_OF_LABEL};
use serde_json::Value;

/// Default namespace of an installation.
pub const DEFAULT_NAMESPACE: &str = "rayward-system";

/// A part of rayward that runs in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The admission webhook (`rayward webhook serve`).
    Webhook,
    /// The dashboard gateway (`rayward gateway`).
    Gateway,
    /// The live audit (`rayward watch`).
    Watch,
    /// The history server (`rayward history serve`).
    History,
}

impl Component {
    /// Every component, in install order.
    pub const ALL: [Component; 4] = [
        Component::Webhook,
        Component::Gateway,
        Component::Watch,
        Component::History,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Webhook => "webhook",
            Component::Gateway => "gateway",
            Component::Watch => "watch",
            Component::History => "history",
        }
    }

    /// The name of its Deployment, Service, ServiceAccount, ConfigMap, …
    pub fn object_name(self) -> String {
        format!("rayward-{}", self.as_str())
    }

    /// The Secret holding its serving certificate (components that serve TLS).
    pub fn tls_secret(self) -> Option<String> {
        matches!(
            self,
            Component::Webhook | Component::Gateway | Component::History
        )
        .then(|| format!("rayward-{}-tls", self.as_str()))
    }
}

/// The container image every component runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `REPOSITORY[:TAG]`.
    pub name: String,
    /// `sha256:<64 hex>`, pinned as `name@digest`.
    pub digest: Option<String>,
}

impl Image {
    /// Checks the reference: a digest must be `sha256:` and 64 lower-case hex digits.
    pub fn new(name: &str, digest: Option<&str>) -> Result<Image> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('@') {
            return Err(Error::Usage(format!(
                "--image `{name}`: expected REPOSITORY[:TAG] (give a digest with --image-digest)"
            )));
        }
        if let Some(d) = digest {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(Error::Usage(format!(
                    "--image-digest `{d}`: expected sha256: and 64 lower-case hex digits"
                )));
            }
        }
        Ok(Image {
            name: name.to_string(),
            digest: digest.map(str::to_string),
        })
    }

    /// The reference a pod pulls.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What to install.
#[derive(Clone, Debug)]
pub struct Options {
    /// Chosen components (sorted, no duplicates).
    pub components: Vec<Component>,
    pub namespace: String,
    pub image: Image,
    pub tls: tls::Tls,
    /// The Ray dashboard the gateway fronts (`http://HOST:PORT`), when it fronts one.
    pub gateway_upstream: String,
    /// The namespaces whose Ray clusters the gateway discovers (`--gateway-discovery`);
    /// empty: it fronts `gateway_upstream` alone (sorted, no duplicates).
    pub gateway_discovery: Vec<String>,
    /// The history server's store, credentials and dashboard image.
    pub history: HistoryOptions,
}

impl Options {
    /// Checks names and combinations: the namespace is a DNS label, the history server is
    /// store is remote and holds no credentials, `secret:NAME` names a valid Secret and brings the webhook's CA.
    pub fn validate(&self) -> Result<()> {
        if !rayward_manifest::names::is_dns_label(&self.namespace) {
            return Err(Error::Usage(format!(
                "--namespace `{}` is not a valid namespace name (a DNS label)",
                self.namespace
            )));
        }
        if self.components.is_empty() {
            return Err(Error::Usage("no component chosen".into()));
        }
        if self.components.contains(&Component::History) {
            self.history.validate()?;
        }
        if !(self.gateway_upstream.starts_with("http://")
            || self.gateway_upstream.starts_with("https://"))
        {
            return Err(Error::Usage(format!(
                "--gateway-upstream `{}`: expected http://HOST:PORT (the Ray dashboard)",
                self.gateway_upstream
            )));
        }
        for n in &self.gateway_discovery {
            if !rayward_manifest::names::is_dns_label(n) {
                return Err(Error::Usage(format!(
                    "--gateway-discovery `{n}` is not a valid namespace name (a DNS label)"
                )));
            }
        }
        if !self.gateway_discovery.is_empty() && !self.has(Component::Gateway) {
            return Err(Error::Usage(
                "--gateway-discovery configures the gateway: add --gateway".into(),
            ));
        }
        self.tls.validate(&self.components)
    }

    /// The history server sits behind the discovering gateway: one login (the gateway's
    /// signed assertion), plain HTTP from the gateway's pods only.
    pub fn history_behind_gateway(&self) -> bool {
        self.has(Component::History)
            && self.has(Component::Gateway)
            && !self.gateway_discovery.is_empty()
    }

    fn has(&self, c: Component) -> bool {
        self.components.contains(&c)
    }
}

/// An error of `rayward install`: always the user's input (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Certs(#[from] rayward_certs::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every object of the installation, in apply order: the namespace, then per component
/// its account and RBAC, config, certificates, Deployment, PDB, Service and
/// NetworkPolicies, then the webhook configurations (last, so the API server only calls
/// a webhook whose Service exists).
pub fn objects(opts: &Options) -> Result<Vec<Value>> {
    opts.validate()?;
    let mut out = vec![namespace::namespace(&opts.namespace)];
    out.push(namespace::default_deny(&opts.namespace));
    out.extend(tls::issuer_objects(opts));
    for c in &opts.components {
        let spec = match c {
            Component::Webhook => webhook::spec(opts),
            Component::Gateway => gateway::spec(opts),
            Component::Watch => watch::spec(opts),
            Component::History => history::spec(opts),
        };
        out.extend(component::objects(&spec, opts));
    }
    if opts.has(Component::Webhook) {
        out.extend(webhook::configurations(opts));
    }
    Ok(out)
}

/// What `rayward install --uninstall` prints: every object [`objects`] makes (cluster-scoped
/// ones included), as `apiVersion`, `kind` and name, in reverse apply order: the webhook
/// configurations go first, so nothing is refused while the webhook is going away.
pub fn uninstall(opts: &Options) -> Result<Vec<Value>> {
    let all = objects(opts)?;
    Ok(all
        .iter()
        .rev()
        .map(|o| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), o["metadata"]["name"].clone());
            if let Some(ns) = o["metadata"].get("namespace") {
                m.insert("namespace".into(), ns.clone());
            }
            serde_json::json!({
                "apiVersion": o["apiVersion"],
                "kind": o["kind"],
                "metadata": m,
            })
        })
        .collect())
}
