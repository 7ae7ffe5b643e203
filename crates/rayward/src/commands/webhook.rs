//! `rayward webhook serve|manifests`.

use crate::cli::{WebhookArgs, WebhookCommand, WebhookManifestsArgs, WebhookServeArgs};
use crate::config::Config;
use crate::exit;
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use rayward_rules::engine::Selection;
use rayward_rules::Severity;
use rayward_webhook::tls::CertStore;
use rayward_webhook::{App, Mode, Policy, Server, ServerOptions};
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: WebhookArgs) -> Result<u8> {
    match args.command {
        WebhookCommand::Serve(a) => serve(a),
        WebhookCommand::Manifests(a) => manifests(a),
    }
}

fn serve(a: WebhookServeArgs) -> Result<u8> {
    // In a pod there is no project folder to search: only the file given is read.
    let cfg = Config::resolve(a.config.is_none(), a.config.as_deref())?;
    let selection: Selection = cfg.selection()?;
    let Some(deny_at) = Severity::parse(&a.deny_at) else {
        bail!(
            "--deny-at `{}` is not one of info, low, medium, high, critical",
            a.deny_at
        );
    };
    let mode = Mode::parse(&a.mode).expect("clap checks the mode");
    let own = a
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok());
    let policy = Policy::new(cfg.settings, &selection, mode, deny_at, own)?;
    let store = CertStore::load(&a.cert, &a.key)?;
    let opts = ServerOptions {
        max_body: a.max_body_bytes,
        reload_every: Duration::from_secs(a.reload_seconds.max(1)),
        ..ServerOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let server = Server::start(listener, store, Arc::new(App::new(policy)), opts)?;
        eprintln!(
            "rayward webhook: serving on https://{} (mode {}, deny at {deny_at})",
            server.local_addr(),
            mode.as_str()
        );
        server
            .run_until(async {
                rayward_serve::shutdown::signal().await;
                eprintln!("rayward webhook: stopping");
            })
            .await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(exit::OK)
}

/// The manifests of deploy/, in apply order.
const MANIFESTS: &[(&str, &str)] = &[
    (
        "namespace.yaml",
        include_str!("../../../../deploy/namespace.yaml"),
    ),
    ("rbac.yaml", include_str!("../../../../deploy/rbac.yaml")),
    (
        "deployment.yaml",
        include_str!("../../../../deploy/deployment.yaml"),
    ),
    (
        "service.yaml",
        include_str!("../../../../deploy/service.yaml"),
    ),
    ("pdb.yaml", include_str!("../../../../deploy/pdb.yaml")),
    (
        "networkpolicy.yaml",
        include_str!("../../../../deploy/networkpolicy.yaml"),
    ),
    (
        "webhooks.yaml",
        include_str!("../../../../deploy/webhooks.yaml"),
    ),
];

/// The caBundle placeholder of deploy/webhooks.yaml.
const CA_PLACEHOLDER: &str = "CA_BUNDLE_BASE64";
const DEFAULT_NAMESPACE: &str = "rayward-system";
const DEFAULT_IMAGE: &str = "rayward:0.1.0";

fn manifests(a: WebhookManifestsArgs) -> Result<u8> {
    let pem = std::fs::read(&a.ca_bundle)
        .with_context(|| format!("cannot read {}", a.ca_bundle.display()))?;
    if !pem.starts_with(b"-----BEGIN CERTIFICATE-----") {
        bail!(
            "{}: not a PEM certificate (expected the CA's ca.crt)",
            a.ca_bundle.display()
        );
    }
    if !rayward_manifest::names::is_dns_label(&a.namespace) {
        bail!(
            "--namespace `{}` is not a valid namespace name",
            a.namespace
        );
    }
    let bundle = base64::engine::general_purpose::STANDARD.encode(&pem);
    let mut out = String::new();
    for (name, text) in MANIFESTS {
        let mut t = text
            .replace(CA_PLACEHOLDER, &bundle)
            .replace(DEFAULT_NAMESPACE, &a.namespace);
        if let Some(img) = &a.image {
            t = t.replace(&format!("image: {DEFAULT_IMAGE}"), &format!("image: {img}"));
        }
        out.push_str(&format!("---\n# deploy/{name}\n"));
        out.push_str(t.trim_start_matches("---\n"));
    }
    print!("{out}");
    Ok(exit::OK)
}
