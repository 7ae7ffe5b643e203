//! Serving certificates of the webhook and the gateway, in one of three modes
//! (`--certs=generate|cert-manager|secret:NAME`):
//!
//! - **generate**: [`generate`] mints a CA and one serving certificate per component with
//!   `rayward-certs`; each goes into a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`,
//!   `ca.crt`) and the CA into the webhook configurations' `caBundle`. The CA key is
//!   deleted with its temporary folder: renewing means minting anew, and re-running
//!   install rotates everything unless the caller passes the Secrets already in the
//!   cluster back in ([`Tls::Inline`] from `--reuse-from-cluster`).
//! - **cert-manager**: a self-signed Issuer makes a CA Certificate, a CA Issuer signs each
//!   component's Certificate, and cainjector fills the `caBundle`
//!   (`cert-manager.io/inject-ca-from`).
//! - **secret:NAME**: an existing `kubernetes.io/tls` Secret serves every component; the
//!   webhook's `caBundle` comes from a PEM file the user gives.

use crate::{meta, Component, Error, Options, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A serving certificate, its key and the CA that signed it, as PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// The `--certs` choice as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Generate,
    CertManager,
    Secret(String),
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "generate" => Ok(Mode::Generate),
            "cert-manager" => Ok(Mode::CertManager),
            _ => match s.strip_prefix("secret:") {
                Some(name) if is_dns_subdomain(name) => Ok(Mode::Secret(name.to_string())),
                _ => Err(Error::Usage(format!(
                    "--certs `{s}`: expected generate, cert-manager or secret:NAME (NAME a Secret's name)"
                ))),
            },
        }
    }
}

/// The certificates an installation uses.
#[derive(Clone, Debug)]
pub enum Tls {
    /// Secrets written by install, one per component that serves TLS (minted now, or read
    /// back from the cluster).
    Inline(BTreeMap<Component, ServingCert>),
    CertManager,
    /// An existing Secret, and the CA (PEM) that signed it for the webhook's caBundle.
    Secret {
        name: String,
        ca_pem: Option<String>,
    },
}

impl Tls {
    pub(crate) fn validate(&self, components: &[Component]) -> Result<()> {
        match self {
            Tls::Inline(certs) => {
                for c in components.iter().filter(|c| c.tls_secret().is_some()) {
                    if !certs.contains_key(c) {
                        return Err(Error::Usage(format!(
                            "no serving certificate for the {}",
                            c.as_str()
                        )));
                    }
                }
                Ok(())
            }
            Tls::CertManager => Ok(()),
            Tls::Secret { ca_pem, .. } => {
                if components.contains(&Component::Webhook) && ca_pem.is_none() {
                    return Err(Error::Usage(
                        "--certs=secret:NAME with the webhook needs --ca-bundle FILE (the CA \
                         that signed the Secret's certificate, for the webhook configurations)"
                            .into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Kubernetes' rule for most object names (RFC 1123 subdomain).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(rayward_manifest::names::is_dns_label)
}

/// The names a component's Service answers to, as its serving certificate's SANs.
pub fn dns_names(namespace: &str, c: Component) -> Vec<String> {
    let svc = c.object_name();
    vec![
        svc.clone(),
        format!("{svc}.{namespace}"),
        format!("{svc}.{namespace}.svc"),
        format!("{svc}.{namespace}.svc.cluster.local"),
    ]
}

/// Mints one CA and a serving certificate for each of `components` that serves TLS, with
/// `rayward-certs` in a private temporary folder that is deleted on return (with the CA
/// key: nothing can sign with this CA afterwards).
pub fn generate(
    namespace: &str,
    components: &[Component],
) -> Result<BTreeMap<Component, ServingCert>> {
    let dir = tempfile::Builder::new()
        .prefix("rayward-install-")
        .tempdir()
        .map_err(|e| Error::Usage(format!("cannot create a temporary folder: {e}")))?;
    let ca_dir = dir.path().join("ca");
    rayward_certs::create_ca(
        &ca_dir,
        &rayward_certs::CaOptions {
            common_name: format!("rayward {namespace} CA"),
            ..Default::default()
        },
    )?;
    let ca_pem = read(&ca_dir.join(rayward_certs::CA_CERT))?;
    let mut out = BTreeMap::new();
    for &c in components.iter().filter(|c| c.tls_secret().is_some()) {
        let node = dir.path().join(c.as_str());
        rayward_certs::issue_node(
            &ca_dir,
            &node,
            &rayward_certs::NodeOptions {
                dns: dns_names(namespace, c),
                // rayward-certs wants an address; a Service is reached by name, and
                // loopback lets a port-forward or a local test verify the name too.
                ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                ..Default::default()
            },
        )?;
        out.insert(
            c,
            ServingCert {
                cert_pem: read(&node.join(rayward_certs::NODE_CERT))?,
                key_pem: read(&node.join(rayward_certs::NODE_KEY))?,
                ca_pem: ca_pem.clone(),
            },
        );
    }
    Ok(out)
}

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        Error::Certs(rayward_certs::Error::Io {
            path: path.to_owned(),
            err,
        })
    })
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The Secret a component mounts its serving certificate from.
pub fn secret_name(opts: &Options, c: Component) -> Option<String> {
    let own = c.tls_secret()?;
    Some(match &opts.tls {
        Tls::Secret { name, .. } => name.clone(),
        Tls::Inline(_) | Tls::CertManager => own,
    })
}

/// The base64 `caBundle` of the webhook configurations (none with cert-manager: its
/// cainjector writes it).
pub fn ca_bundle(opts: &Options) -> Option<String> {
    match &opts.tls {
        Tls::Inline(certs) => certs.get(&Component::Webhook).map(|s| b64(&s.ca_pem)),
        Tls::Secret { ca_pem, .. } => ca_pem.as_deref().map(b64),
        Tls::CertManager => None,
    }
}

/// The cainjector annotation of the webhook configurations, with cert-manager.
pub fn inject_annotation(opts: &Options) -> Option<Value> {
    matches!(opts.tls, Tls::CertManager).then(|| {
        json!({"cert-manager.io/inject-ca-from": format!(
            "{}/{}",
            opts.namespace,
            Component::Webhook.tls_secret().expect("the webhook serves TLS")
        )})
    })
}

const SELF_SIGNED: &str = "rayward-selfsigned";
const CA: &str = "rayward-ca";

/// With cert-manager: the self-signed Issuer, the CA Certificate it signs, and the CA
/// Issuer that signs each component's certificate. Nothing otherwise.
pub fn issuer_objects(opts: &Options) -> Vec<Value> {
    if !matches!(opts.tls, Tls::CertManager)
        || !opts.components.iter().any(|c| c.tls_secret().is_some())
    {
        return Vec::new();
    }
    let ns = opts.namespace.as_str();
    vec![
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": meta::namespaced(SELF_SIGNED, ns, None),
            "spec": {"selfSigned": {}},
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta::namespaced(CA, ns, None),
            "spec": {
                "isCA": true,
                "commonName": format!("rayward {ns} CA"),
                "secretName": CA,
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": SELF_SIGNED, "kind": "Issuer", "group": "cert-manager.io"},
            },
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": meta::namespaced(CA, ns, None),
            "spec": {"ca": {"secretName": CA}},
        }),
    ]
}

/// A component's own certificate objects: its Secret (inline certificates) or its
/// Certificate (cert-manager, renewed 30 days before it expires); none for `secret:NAME`.
pub fn component_objects(opts: &Options, c: Component) -> Vec<Value> {
    let Some(name) = c.tls_secret() else {
        return Vec::new();
    };
    let ns = opts.namespace.as_str();
    match &opts.tls {
        Tls::Inline(certs) => certs
            .get(&c)
            .map(|s| {
                json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": meta::namespaced(&name, ns, Some(c)),
                    "type": "kubernetes.io/tls",
                    "data": {
                        "tls.crt": b64(&s.cert_pem),
                        "tls.key": b64(&s.key_pem),
                        "ca.crt": b64(&s.ca_pem),
                    },
                })
            })
            .into_iter()
            .collect(),
        Tls::CertManager => vec![json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta::namespaced(&name, ns, Some(c)),
            "spec": {
                "secretName": name,
                "dnsNames": dns_names(ns, c),
                "duration": "2160h",
                "renewBefore": "720h",
                "usages": ["server auth", "digital signature"],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": CA, "kind": "Issuer", "group": "cert-manager.io"},
            },
        })],
        Tls::Secret { .. } => Vec::new(),
    }
}
