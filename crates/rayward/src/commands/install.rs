//! `rayward install [--webhook] [--gateway] [--watch] [--history] [--certs MODE] [--uninstall]`: the
//! objects of `rayward_install`, printed as YAML for `kubectl apply -f -`.

use crate::cli::InstallArgs;
use crate::exit;
use anyhow::{bail, Context, Result};
use rayward_install::tls::{self, Mode, ServingCert, Tls};
use rayward_install::{Component, Image, Options};
use std::collections::BTreeMap;

pub fn run(a: InstallArgs) -> Result<u8> {
    let mut components: Vec<Component> = [
        (a.webhook, Component::Webhook),
        (a.gateway, Component::Gateway),
        (a.watch, Component::Watch),
        (a.history, Component::History),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.then_some(c))
    .collect();
    if components.is_empty() {
        components = Component::ALL.to_vec();
    }
    let mode = Mode::parse(&a.certs)?;
    let image = Image::new(&a.image, a.image_digest.as_deref())?;
    if a.ca_bundle.is_some() && !matches!(mode, Mode::Secret(_)) {
        bail!("--ca-bundle goes with --certs=secret:NAME (the other modes know their CA)");
    }
    if a.reuse_from_cluster && mode != Mode::Generate {
        bail!("--reuse-from-cluster goes with --certs=generate (the default)");
    }
    let mut opts = Options {
        components,
        namespace: a.namespace.clone(),
        image,
        tls: Tls::CertManager,
        gateway_upstream: a.gateway_upstream.clone(),
        gateway_discovery: {
            let mut ns = a.gateway_discovery.clone();
            ns.sort();
            ns.dedup();
            ns
        },
        history: rayward_install::HistoryOptions {
            store: a.history_store.clone(),
            credentials_secret: a.history_credentials_secret.clone(),
            dashboard_image: a.history_dashboard_image.clone(),
        },
    };
    // Names and combinations first: nothing is minted or asked of a cluster for input
    // that is refused anyway.
    opts.validate()?;
    let uninstalling = a.uninstall;
    opts.tls = match mode {
        Mode::CertManager => Tls::CertManager,
        Mode::Secret(name) => Tls::Secret {
            name,
            ca_pem: a.ca_bundle.as_deref().map(read_ca).transpose()?,
        },
        // Deleting needs only the names of the Secrets, not certificates.
        Mode::Generate if uninstalling => Tls::Inline(
            opts.components
                .iter()
                .map(|c| {
                    (
                        *c,
                        ServingCert {
                            cert_pem: String::new(),
                            key_pem: String::new(),
                            ca_pem: String::new(),
                        },
                    )
                })
                .collect(),
        ),
        Mode::Generate if a.reuse_from_cluster => Tls::Inline(reuse(&a, &opts.components)?),
        Mode::Generate => {
            eprintln!(
                "rayward install: minted a new CA and serving certificates; applying this over \
                 an existing installation replaces them (pass --reuse-from-cluster to keep the \
                 ones in namespace {})",
                opts.namespace
            );
            Tls::Inline(tls::generate(&opts.namespace, &opts.components)?)
        }
    };
    if opts.image.digest.is_none() && !uninstalling {
        eprintln!(
            "rayward install: image {} is not pinned; pass --image-digest sha256:... so every \
             pod runs the image you checked",
            opts.image.name
        );
    }
    if opts.components.contains(&Component::History)
        && opts.history.store == rayward_install::history_default_store()
        && !uninstalling
    {
        eprintln!(
            "rayward install: the history server reads {} (the default); pass --history-store              with the bucket your collectors write to (rayward harden --history)",
            opts.history.store
        );
    }
    if !opts.gateway_discovery.is_empty() && !uninstalling {
        eprintln!(
            "rayward install: the gateway discovers the Ray clusters of {} (the namespaces must              exist: each gets the Role rayward-gateway); it reads users from the Secret              rayward-gateway-auth (keys htpasswd, session-key){}",
            opts.gateway_discovery.join(", "),
            if opts.history_behind_gateway() {
                format!(
                    ", and shares its assertion key with the history server: kubectl -n {}                      create secret generic {} --from-literal=key=\"$(openssl rand -hex 32)\"",
                    opts.namespace,
                    rayward_install::HISTORY_KEY_SECRET
                )
            } else {
                String::new()
            }
        );
    }
    let names: Vec<&str> = opts.components.iter().map(|c| c.as_str()).collect();
    let text = if uninstalling {
        rayward_install::yaml::stream(
            &rayward_install::uninstall(&opts)?,
            &format!(
                "rayward install --uninstall: {} in namespace {}\n\
                 kubectl delete --ignore-not-found -f -",
                names.join(", "),
                opts.namespace
            ),
        )
    } else {
        rayward_install::yaml::stream(
            &rayward_install::objects(&opts)?,
            &format!(
                "rayward install {}: {} in namespace {} (certificates: {})\n\
                 kubectl apply --server-side -f -; then: rayward check",
                env!("CARGO_PKG_VERSION"),
                names.join(", "),
                opts.namespace,
                a.certs
            ),
        )
    };
    print!("{text}");
    Ok(exit::OK)
}

fn read_ca(path: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !text.starts_with("-----BEGIN CERTIFICATE-----") {
        bail!(
            "{}: not a PEM certificate (expected the CA's ca.crt)",
            path.display()
        );
    }
    Ok(text)
}

/// The serving certificates of an existing installation (the Secrets install wrote), and
/// for a component that has none yet, new ones from one new CA.
fn reuse(a: &InstallArgs, components: &[Component]) -> Result<BTreeMap<Component, ServingCert>> {
    let found = read_secrets(a, components)?;
    let missing: Vec<Component> = components
        .iter()
        .copied()
        .filter(|c| c.tls_secret().is_some() && !found.contains_key(c))
        .collect();
    let mut certs = found;
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
        eprintln!(
            "rayward install: no serving certificate in namespace {} for the {}: minted a new CA for them",
            a.namespace,
            names.join(", ")
        );
        certs.extend(tls::generate(&a.namespace, &missing)?);
    }
    Ok(certs)
}

fn read_secrets(
    a: &InstallArgs,
    components: &[Component],
) -> Result<BTreeMap<Component, ServingCert>> {
    use k8s_openapi::api::core::v1::Secret;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let cluster = rayward_live::Cluster::connect(rayward_live::ListOptions {
            kubeconfig: a.kubeconfig.clone(),
            context: a.context.clone(),
            ..rayward_live::ListOptions::default()
        })
        .await?;
        let api: kube::Api<Secret> = kube::Api::namespaced(cluster.client(), &a.namespace);
        let mut out = BTreeMap::new();
        for c in components {
            let Some(name) = c.tls_secret() else { continue };
            let secret = api
                .get_opt(&name)
                .await
                .with_context(|| format!("--reuse-from-cluster: cannot read Secret {}/{name}", a.namespace))?;
            let Some(secret) = secret else { continue };
            let data = secret.data.unwrap_or_default();
            let key = |k: &str| -> Result<String> {
                let v = data.get(k).with_context(|| {
                    format!("Secret {}/{name} has no `{k}`: not one rayward install wrote; delete it or use --certs=secret:{name}", a.namespace)
                })?;
                String::from_utf8(v.0.clone())
                    .with_context(|| format!("Secret {}/{name}: `{k}` is not PEM text", a.namespace))
            };
            out.insert(
                *c,
                ServingCert {
                    cert_pem: key("tls.crt")?,
                    key_pem: key("tls.key")?,
                    ca_pem: key("ca.crt")?,
                },
            );
            eprintln!("rayward install: kept the serving certificate of Secret {}/{name}", a.namespace);
        }
        Ok(out)
    })
}
