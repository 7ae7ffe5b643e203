//! The judgements of `rayward check` (issue 15, part 2) over objects already read from the
//! cluster: one [`Line`] per check, each failure with its fix. Reading the objects (and
//! the audit of rayward's own objects, which needs the rules engine) belongs to the CLI;
//! this module decides, so it is tested without a cluster.

use crate::{tls, webhook, Component};
use serde_json::Value;

/// The name of both webhook configurations install writes.
pub use crate::webhook::CONFIGURATION;

/// Certificates closer than this to their end fail the expiry check.
pub const MIN_DAYS_LEFT: i64 = 30;

/// One line of `rayward check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub check: String,
    pub ok: bool,
    /// What was found (on failure, what is wrong).
    pub detail: String,
    /// What to do about a failure (empty when ok).
    pub fix: String,
}

impl Line {
    /// A line; the fix is kept only on failure. The CLI adds its own lines (reading the
    /// cluster, the audit, a connection to the webhook) with it.
    pub fn new(
        check: impl Into<String>,
        ok: bool,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Line {
        Line {
            check: check.into(),
            ok,
            detail: detail.into(),
            fix: if ok { String::new() } else { fix.into() },
        }
    }
}

fn line(
    check: impl Into<String>,
    ok: bool,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Line {
    Line::new(check, ok, detail, fix)
}

/// The DNS name the API server expects on the webhook's certificate when it calls the
/// webhook through its Service.
pub fn webhook_server_name(namespace: &str) -> String {
    tls::dns_names(namespace, Component::Webhook)[2].clone()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn secret_text(secret: &Value, key: &str) -> Option<String> {
    use base64::Engine as _;
    let b = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    String::from_utf8(bytes).ok()
}

/// Every check over `objs`: the namespace's Deployments, PodDisruptionBudgets, Services,
/// Secrets, and the cluster's webhook configurations, as the API server returns them.
pub fn run(namespace: &str, objs: &[Value]) -> Vec<Line> {
    let reinstall = format!(
        "rayward install --namespace {namespace} --reuse-from-cluster | kubectl apply --server-side -f -"
    );
    let mut out = Vec::new();
    let components: Vec<Component> = [Component::Webhook, Component::Gateway, Component::Watch]
        .into_iter()
        .filter(|c| find(objs, "Deployment", &c.object_name()).is_some())
        .collect();
    if components.is_empty() {
        out.push(line(
            "rayward installed",
            false,
            format!("no rayward Deployment in namespace {namespace}"),
            format!("rayward install --namespace {namespace} | kubectl apply --server-side -f -"),
        ));
        return out;
    }
    for c in &components {
        let name = c.object_name();
        let d = find(objs, "Deployment", &name).expect("filtered above");
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let have = d["status"]["availableReplicas"].as_i64().unwrap_or(0);
        out.push(line(
            format!("Deployment {name} available"),
            have >= want,
            format!("{have} of {want} replicas available"),
            format!("kubectl -n {namespace} describe deployment {name}; kubectl -n {namespace} logs deployment/{name}"),
        ));
        let pdb = find(objs, "PodDisruptionBudget", &name).is_some();
        out.push(line(
            format!("PodDisruptionBudget {name} present"),
            pdb,
            if pdb {
                "present"
            } else {
                "missing: a node drain may take every replica"
            },
            reinstall.clone(),
        ));
    }
    for c in [Component::Gateway, Component::History] {
        let name = c.object_name();
        let Some(s) = find(objs, "Service", &name) else {
            continue;
        };
        let t = s["spec"]["type"].as_str().unwrap_or("ClusterIP");
        let external = s["spec"]["externalIPs"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        let ok = t == "ClusterIP" && !external;
        out.push(line(
            format!("Service {name} not exposed"),
            ok,
            if ok { "ClusterIP".to_string() } else { format!("type {t}{}", if external { " with externalIPs" } else { "" }) },
            format!("kubectl -n {namespace} patch service {name} --type merge -p '{{\"spec\":{{\"type\":\"ClusterIP\",\"externalIPs\":null}}}}'"),
        ));
    }
    for c in components.iter().filter(|c| c.tls_secret().is_some()) {
        let d = find(objs, "Deployment", &c.object_name()).expect("filtered above");
        let secret_name = tls_secret_of(d)
            .or_else(|| c.tls_secret())
            .expect("filtered");
        let Some(secret) = find(objs, "Secret", &secret_name) else {
            out.push(line(
                format!("certificate {secret_name}"),
                false,
                "Secret missing",
                reinstall.clone(),
            ));
            continue;
        };
        let ca_bundle = (*c == Component::Webhook)
            .then(|| webhook_ca_bundle(objs))
            .flatten();
        out.extend(cert_lines(
            namespace,
            *c,
            secret,
            ca_bundle.as_deref(),
            &reinstall,
        ));
    }
    if components.contains(&Component::Webhook) {
        out.extend(webhook_lines(objs, &reinstall));
    }
    out
}

/// The Secret a Deployment mounts as its serving certificate (the volume `tls`): the
/// one install wrote, or the user's under `--certs=secret:NAME`.
pub fn tls_secret_of(deployment: &Value) -> Option<String> {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == "tls")?["secret"]["secretName"]
        .as_str()
        .map(str::to_string)
}

/// The caBundle of the validating configuration's first entry (PEM), if any.
pub fn webhook_ca_bundle(objs: &[Value]) -> Option<String> {
    use base64::Engine as _;
    let v = find(
        objs,
        "ValidatingWebhookConfiguration",
        webhook::CONFIGURATION,
    )?;
    let b = v["webhooks"][0]["clientConfig"]["caBundle"].as_str()?;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).ok()?).ok()
}

fn webhook_lines(objs: &[Value], reinstall: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let v = find(
        objs,
        "ValidatingWebhookConfiguration",
        webhook::CONFIGURATION,
    );
    let m = find(objs, "MutatingWebhookConfiguration", webhook::CONFIGURATION);
    for (kind, o) in [
        ("ValidatingWebhookConfiguration", v),
        ("MutatingWebhookConfiguration", m),
    ] {
        out.push(line(
            format!("{kind} {} present", webhook::CONFIGURATION),
            o.is_some(),
            if o.is_some() {
                "present"
            } else {
                "missing: Ray objects are not checked on admission"
            },
            reinstall,
        ));
    }
    let mut want: Vec<(&str, &str)> = webhook::VALIDATING
        .iter()
        .map(|(n, _, _, f)| (*n, *f))
        .collect();
    want.push(webhook::MUTATING);
    let entries: Vec<&Value> = [v, m]
        .into_iter()
        .flatten()
        .flat_map(|o| o["webhooks"].as_array().into_iter().flatten())
        .collect();
    let mut wrong = Vec::new();
    let mut bundles = std::collections::BTreeSet::new();
    for (name, policy) in &want {
        match entries.iter().find(|e| e["name"] == *name) {
            None if v.is_some() && m.is_some() => wrong.push(format!("{name}: missing")),
            None => {}
            Some(e) => {
                let got = e["failurePolicy"].as_str().unwrap_or("Fail");
                if got != *policy {
                    wrong.push(format!("{name}: failurePolicy {got}, documented {policy}"));
                }
                bundles.insert(
                    e["clientConfig"]["caBundle"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
    }
    out.push(line(
        "webhook failurePolicy as documented (docs/webhook.md)",
        wrong.is_empty(),
        if wrong.is_empty() {
            "Fail where enforcing, Ignore where warning".to_string()
        } else {
            wrong.join("; ")
        },
        reinstall,
    ));
    if bundles.len() > 1 {
        out.push(line(
            "webhook entries share one caBundle",
            false,
            format!("{} different caBundles", bundles.len()),
            reinstall,
        ));
    }
    out
}

/// Checks a serving certificate with rayward-certs: signed by `ca_bundle` (the webhook's)
/// or its own `ca.crt`, naming the Service, and not expiring within [`MIN_DAYS_LEFT`].
fn cert_lines(
    namespace: &str,
    c: Component,
    secret: &Value,
    ca_bundle: Option<&str>,
    reinstall: &str,
) -> Vec<Line> {
    let name = secret["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .or_else(|| c.tls_secret())
        .unwrap_or_default();
    // A Secret of the user's (`--certs=secret:NAME`) may carry no ca.crt: the webhook's
    // caBundle is then the CA to verify against.
    let parts = (
        secret_text(secret, "tls.crt"),
        secret_text(secret, "tls.key"),
        secret_text(secret, "ca.crt").or_else(|| ca_bundle.map(str::to_string)),
    );
    let (Some(crt), Some(key), Some(ca)) = parts else {
        return vec![line(
            format!("certificate {name}"),
            false,
            "tls.crt, tls.key or ca.crt missing or not PEM",
            reinstall,
        )];
    };
    let dir = match tempfile::Builder::new().prefix("rayward-check-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return vec![line(
                format!("certificate {name}"),
                false,
                format!("cannot create a temporary folder: {e}"),
                "",
            )]
        }
    };
    let written = [
        (rayward_certs::NODE_CERT, crt.as_str()),
        (rayward_certs::NODE_KEY, key.as_str()),
        (rayward_certs::CA_CERT, ca.as_str()),
        ("bundle.crt", ca_bundle.unwrap_or(ca.as_str())),
    ]
    .iter()
    .try_for_each(|(f, text)| std::fs::write(dir.path().join(f), text));
    if let Err(e) = written {
        return vec![line(
            format!("certificate {name}"),
            false,
            format!("cannot write a temporary file: {e}"),
            "",
        )];
    }
    let opts = rayward_certs::CheckOptions {
        ca: Some(dir.path().join("bundle.crt")),
        ip: None,
    };
    let report = match rayward_certs::check(dir.path(), &opts) {
        Ok(r) => r,
        Err(e) => {
            return vec![line(
                format!("certificate {name}"),
                false,
                e.to_string(),
                reinstall,
            )]
        }
    };
    let mut out = Vec::new();
    if ca_bundle.is_some() {
        out.push(line(
            "webhook caBundle matches the serving certificate",
            report.chain_verifies,
            if report.chain_verifies { format!("{name} is signed by the caBundle") } else { format!("{name} is not signed by the caBundle: the API server refuses the webhook's TLS") },
            reinstall,
        ));
    }
    let svc = tls::dns_names(namespace, c)[2].clone();
    let names = report.sans.iter().any(|s| *s == format!("DNS:{svc}"));
    out.push(line(
        format!("certificate {name} names {svc}"),
        names,
        report.sans.join(", "),
        reinstall,
    ));
    out.push(line(
        format!("certificate {name} valid for {MIN_DAYS_LEFT} days"),
        report.days_left >= MIN_DAYS_LEFT,
        format!("{} days left (until {})", report.days_left, report.not_after),
        format!(
            "renew: rayward install --namespace {namespace} | kubectl apply --server-side -f - (a new CA and certificates), or let cert-manager renew it"
        ),
    ));
    out
}
