//! `rayward check`: reads rayward's installation back from the API server and asks
//! [`rayward_install::check::run`] whether it is healthy, then adds what needs more than
//! the objects: the audit of rayward's own objects as the cluster holds them (the same
//! rules as `rayward audit`), and optionally a TLS connection to the webhook verified the
//! way the API server verifies it. One line per check, a fix for each failure; exit 1 on
//! any failure, 2 when the cluster cannot be asked at all.

use crate::cli::{CheckArgs, CheckFormat};
use crate::exit;
use anyhow::{bail, Context, Result};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use rayward_install::check::{self, Line};
use rayward_install::{Component, PART_OF, PART_OF_LABEL};
use serde_json::{json, Value};
use std::time::Duration;

/// A kind check reads: API group, version, kind, plural, namespaced.
type Kind = (&'static str, &'static str, &'static str, &'static str, bool);

/// The labelled kinds of an installation (Secrets are read by name only, never listed).
const LISTED: &[Kind] = &[
    ("apps", "v1", "Deployment", "deployments", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
];

/// PodDisruptionBudgets: policy/v1 from Kubernetes 1.21, policy/v1beta1 before.
const PDB: [Kind; 2] = [
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "policy",
        "v1beta1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
];

const WEBHOOK_CONFIGS: [Kind; 2] = [
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
];

fn resource(k: &Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(k.0, k.1, k.2), k.3)
}

fn api(client: &kube::Client, k: &Kind, namespace: &str) -> Api<DynamicObject> {
    let ar = resource(k);
    if k.4 {
        Api::namespaced_with(client.clone(), namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    }
}

/// An object as `kubectl get -o json` shows it, its type filled in, without
/// `managedFields` and the last-applied annotation (as `audit --cluster` reads objects).
fn to_value(k: &Kind, mut o: DynamicObject) -> Value {
    o.metadata.managed_fields = None;
    if let Some(a) = o.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
    v["apiVersion"] = json!(if k.0.is_empty() {
        k.1.to_string()
    } else {
        format!("{}/{}", k.0, k.1)
    });
    v["kind"] = json!(k.2);
    v
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// What was read, and the reads that failed (each becomes a failed line).
#[derive(Default)]
struct Read {
    objects: Vec<Value>,
    failed: Vec<Line>,
}

impl Read {
    fn failure(&mut self, what: String, e: &kube::Error) {
        let fix = match e {
            kube::Error::Api(s) if s.code == 403 => {
                "grant the account running rayward check get/list on rayward's objects (or run it as a cluster admin)"
            }
            _ => "check the connection to the API server (--kubeconfig, --context)",
        };
        self.failed
            .push(Line::new(format!("read {what}"), false, e.to_string(), fix));
    }
}

async fn read(client: &kube::Client, namespace: &str, timeout: Duration) -> Result<Read> {
    let mut r = Read::default();
    let selector = format!("{PART_OF_LABEL}={PART_OF}");
    let lp = ListParams::default().labels(&selector);
    let within = |what: String| {
        move |e: tokio::time::error::Elapsed| anyhow::anyhow!("{what}: no answer within {e}")
    };
    for k in LISTED {
        match tokio::time::timeout(timeout, api(client, k, namespace).list(&lp))
            .await
            .map_err(within(format!("list {}", k.3)))?
        {
            Ok(list) => r
                .objects
                .extend(list.items.into_iter().map(|o| to_value(k, o))),
            Err(e) => r.failure(format!("{} in {namespace}", k.3), &e),
        }
    }
    for (i, k) in PDB.iter().enumerate() {
        match tokio::time::timeout(timeout, api(client, k, namespace).list(&lp))
            .await
            .map_err(within(format!("list {}", k.3)))?
        {
            Ok(list) => {
                r.objects
                    .extend(list.items.into_iter().map(|o| to_value(k, o)));
                break;
            }
            // policy/v1 is not served before Kubernetes 1.21: ask policy/v1beta1.
            Err(e) if not_found(&e) && i == 0 => continue,
            Err(e) => {
                r.failure(format!("{} in {namespace}", k.3), &e);
                break;
            }
        }
    }
    let get = |k: &Kind, name: &str, ns: &str| {
        let api = api(client, k, ns);
        let name = name.to_string();
        let k = *k;
        async move {
            let got = tokio::time::timeout(timeout, api.get_opt(&name))
                .await
                .map_err(within(format!("get {} {name}", k.2)))?;
            Ok::<_, anyhow::Error>((k, name, got))
        }
    };
    let mut gets = vec![(
        ("", "v1", "Namespace", "namespaces", false),
        namespace.to_string(),
    )];
    for k in WEBHOOK_CONFIGS {
        gets.push((k, rayward_install::check::CONFIGURATION.to_string()));
    }
    // The serving certificates the Deployments mount (read by name: check never lists
    // Secrets).
    let secret: Kind = ("", "v1", "Secret", "secrets", true);
    let mut secrets: Vec<String> = Vec::new();
    for d in r.objects.iter().filter(|o| o["kind"] == "Deployment") {
        let name = d["metadata"]["name"].as_str().unwrap_or("");
        let Some(c) = [Component::Webhook, Component::Gateway]
            .into_iter()
            .find(|c| c.object_name() == name)
        else {
            continue;
        };
        if let Some(s) = check::tls_secret_of(d).or_else(|| c.tls_secret()) {
            secrets.push(s);
        }
    }
    secrets.sort();
    secrets.dedup();
    gets.extend(secrets.into_iter().map(|s| (secret, s)));
    for (k, name) in gets {
        let (k, name, got) = get(&k, &name, namespace).await?;
        match got {
            Ok(Some(o)) => r.objects.push(to_value(&k, o)),
            Ok(None) => {}
            Err(e) => r.failure(format!("{} {name}", k.2), &e),
        }
    }
    Ok(r)
}

/// The audit of rayward's own objects as the cluster holds them: any finding, at any
/// severity, fails (install's output audits clean, so a finding means something changed).
fn audit(objects: &[Value], context: &str) -> Result<Line> {
    let engine = rayward_rules::Engine::new(
        rayward_rules::settings::Settings::default(),
        &rayward_rules::engine::Selection::default(),
    )?;
    let limits = rayward_manifest::Limits::default();
    let mut loaded = Vec::new();
    // Secrets hold keys: they are judged by the certificate checks, never loaded here.
    for o in objects.iter().filter(|o| o["kind"] != "Secret") {
        let name = rayward_live::object_name(
            context,
            o["metadata"]["namespace"].as_str(),
            o["kind"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or(""),
        );
        let json = serde_json::to_vec(o)?;
        let mut l = rayward_manifest::load_bytes(&name, &json, &limits);
        if let Some(e) = l.error {
            bail!("{name}: {e}");
        }
        loaded.append(&mut l.objects);
    }
    let n = loaded.len();
    let run = engine.gather(vec![(engine.check_batch(loaded), None, n, 0)], n);
    let open: Vec<String> = run
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .map(|f| {
            format!(
                "{} {} {}/{}: {}",
                f.rule_id,
                f.object.kind,
                f.object.namespace.as_deref().unwrap_or("-"),
                f.object.name,
                f.message
            )
        })
        .collect();
    Ok(Line::new(
        "rayward's own objects audit clean",
        open.is_empty(),
        if open.is_empty() {
            format!("{n} objects, no finding at any severity")
        } else {
            open.join("; ")
        },
        "re-apply what rayward install prints (rayward explain RULE says why each finding matters)",
    ))
}

/// A TLS connection to the webhook at `address`, trusting only the configurations'
/// caBundle and expecting the Service's DNS name, then `GET /readyz`.
async fn connect(objects: &[Value], namespace: &str, address: &str, timeout: Duration) -> Line {
    let what = format!("webhook at {address} serves a certificate the caBundle verifies");
    let server_name = check::webhook_server_name(namespace);
    let fix = format!(
        "the webhook's serving certificate must be signed by the caBundle and name {server_name}: rayward install --namespace {namespace} --reuse-from-cluster | kubectl apply --server-side -f -, then restart the webhook (kubectl -n {namespace} rollout restart deployment rayward-webhook)"
    );
    let Some(bundle) = check::webhook_ca_bundle(objects) else {
        return Line::new(
            what,
            false,
            "no caBundle in the ValidatingWebhookConfiguration",
            fix,
        );
    };
    let attempt = async {
        let addr = tokio::net::lookup_host(address)
            .await
            .map_err(|e| format!("{address}: {e}"))?
            .next()
            .ok_or_else(|| format!("{address}: no address"))?;
        let client = rayward_webhook::client::Client::new(addr, bundle.as_bytes(), None)
            .and_then(|c| c.with_server_name(&server_name))
            .map_err(|e| e.to_string())?;
        let a = client
            .request("GET", "/readyz", "text/plain", Vec::new())
            .await
            .map_err(|e| e.to_string())?;
        if a.status == 200 {
            Ok(format!("TLS verified for {server_name}; /readyz 200"))
        } else {
            Err(format!("TLS verified; /readyz answered {}", a.status))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(detail)) => Line::new(what, true, detail, ""),
        Ok(Err(e)) => Line::new(what, false, e, fix),
        Err(_) => Line::new(what, false, format!("no answer within {timeout:?}"), fix),
    }
}

pub fn run(a: CheckArgs) -> Result<u8> {
    if !rayward_manifest::names::is_dns_label(&a.namespace) {
        bail!(
            "--namespace `{}` is not a valid namespace name (a DNS label)",
            a.namespace
        );
    }
    let timeout = Duration::from_secs(a.request_timeout.max(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (context, read, connected) = rt.block_on(async {
        let cluster = rayward_live::Cluster::connect(rayward_live::ListOptions {
            kubeconfig: a.kubeconfig.clone(),
            context: a.context.clone(),
            timeout,
            ..rayward_live::ListOptions::default()
        })
        .await?;
        let read = read(&cluster.client(), &a.namespace, timeout).await?;
        let connected = match &a.webhook_address {
            Some(addr) => Some(connect(&read.objects, &a.namespace, addr, timeout).await),
            None => None,
        };
        Ok::<_, anyhow::Error>((cluster.context().to_string(), read, connected))
    })?;
    let mut lines = read.failed;
    lines.extend(check::run(&a.namespace, &read.objects));
    let installed = read.objects.iter().any(|o| o["kind"] == "Deployment");
    if installed {
        lines.push(audit(&read.objects, &context)?);
    }
    lines.extend(connected);
    let failed = lines.iter().filter(|l| !l.ok).count();
    match a.output {
        CheckFormat::Json => {
            let v = json!({
                "context": context,
                "namespace": a.namespace,
                "healthy": failed == 0,
                "checks": lines.iter().map(|l| json!({
                    "check": l.check, "ok": l.ok, "detail": l.detail, "fix": l.fix,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        CheckFormat::Text => print!("{}", text(&context, &a.namespace, &lines)),
    }
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

/// One line per check (`ok` or `FAIL`), the fix indented under each failure, a summary.
fn text(context: &str, namespace: &str, lines: &[Line]) -> String {
    use rayward_manifest::terminal::escape;
    let mut out = format!(
        "rayward check: namespace {} (context {})\n",
        escape(namespace),
        escape(context)
    );
    for l in lines {
        let mark = if l.ok { "ok  " } else { "FAIL" };
        out.push_str(&format!(
            "{mark} {}: {}\n",
            escape(&l.check),
            escape(&l.detail)
        ));
        if !l.ok && !l.fix.is_empty() {
            out.push_str(&format!("     fix: {}\n", escape(&l.fix)));
        }
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed == 0 {
        out.push_str(&format!("healthy: {} checks passed\n", lines.len()));
    } else {
        out.push_str(&format!(
            "unhealthy: {failed} of {} checks failed\n",
            lines.len()
        ));
    }
    out
}
