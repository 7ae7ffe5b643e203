use crate::util::credentials::{credential_format, mask, not_a_secret_value, secret_name};
use crate::util::embedded::{self, Embedded};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::yaml11::Resolved;
use rayward_manifest::{JsonPath, Node, Pos, Value, Workload};

declare_rule! {
    /// ## What it checks
    /// Credentials written in plain text where Ray workloads read them:
    /// - literal `env[].value`s of every container (Ray head and worker groups, init
    ///   containers, the autoscaler, RayJob submitters, plain workloads);
    /// - `env_vars` of a RayJob's / RayCronJob's `runtimeEnvYAML`, and of a RayService's
    ///   `serveConfigV2` (`applications[].runtime_env` and
    ///   `deployments[].ray_actor_options.runtime_env`), both YAML strings that rayward
    ///   parses; the finding points at the line of the variable inside the string;
    /// - `gcsFaultToleranceOptions.redisPassword.value` and a literal `redis-password` in
    ///   `rayStartParams`;
    /// - every other string of a Ray object and of its embedded documents (annotations,
    ///   labels, a RayJob's `entrypoint`, container `command` and `args`, `pip` URLs, …),
    ///   for the high-confidence shapes only: a key format anywhere in the string, or an
    ///   assignment `NAME=value`, `--name=value`, `--name value` (also as two `args`
    ///   items) whose name says secret and whose value is a literal. Long random strings
    ///   and base64 blobs alone are not reported.
    ///
    /// A value is reported when its format is a cloud credential whatever the variable's
    /// name (Alibaba Cloud AccessKey ID `LTAI…`, AWS access key ID `AKIA…`/`ASIA…`, a
    /// GitHub token `ghp_…`, a Hugging Face token `hf_…`, a private key or a GCP
    /// service-account JSON), or when the name says secret (whole
    /// words `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`, `CREDENTIAL(S)`, `ACCESS_KEY`,
    /// `API_KEY`, `PRIVATE_KEY`, any case, camelCase split) and the value is a real one:
    /// not empty, not a reference (`$(VAR)`, `${VAR}`, `$VAR`), not a file path, not a
    /// boolean. Names ending in `PATH`, `FILE`, `NAME`, `URL`, `MODE`, `TTL`, … describe a
    /// secret rather than hold one and are skipped, as are `TOKENIZER` or `MAX_TOKENS`.
    /// `RAY_AUTH_TOKEN` in a container's env is RW116's finding.
    ///
    /// Messages show at most the first 4 characters of a value (none for values shorter
    /// than 12 characters).
    ///
    /// ## Why it matters (guide §8)
    /// A manifest is copied into Git, CI logs, Helm releases and every `kubectl get -o
    /// yaml`; KubeRay copies pod templates into the pods it makes. Cloud keys there are
    /// long-lived and usually far more powerful than the job needs. Every Ray job can
    /// also read the env of the process it runs in and print it to the dashboard's logs.
    ///
    /// ## Example
    /// ```yaml
    /// env:
    /// - name: ALIBABA_CLOUD_ACCESS_KEY_SECRET
    ///   value: "…"
    /// ```
    ///
    /// ## Fix
    /// Use workload identity so no key exists at all: RRSA on ACK, IRSA or EKS Pod
    /// Identity on EKS, GKE Workload Identity; the pod's ServiceAccount is mapped to a
    /// narrowly scoped cloud role. Where a static secret is unavoidable, keep it in a
    /// Secret and read it with `valueFrom.secretKeyRef` (runtime env vars: reference
    /// the container's env, e.g. `"${MY_TOKEN}"`). Rotate any key that was committed.
    pub struct PlaintextCloudCredentials {
        id: "RW801",
        name: "plaintext-cloud-credentials",
        severity: Critical,
        section: "8",
        summary: "Credential written in plain text in a manifest",
        fix: "Use workload identity (RRSA on ACK, IRSA on EKS, GKE Workload Identity) or a Secret read with `valueFrom.secretKeyRef`; rotate the exposed key.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// Why a name/value pair is a credential, if it is one.
fn why(name: &str, value: &str) -> Option<String> {
    if let Some(f) = credential_format(value) {
        return Some(format!("holds {f}"));
    }
    (secret_name(name) && !not_a_secret_value(value))
        .then(|| "holds a credential (by its name)".to_string())
}

impl Rule for PlaintextCloudCredentials {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let start = out.out.len();
        // Container env. Read the nodes directly and build paths only for findings: this
        // runs over every env entry of every container.
        for (_, c) in w.containers() {
            let Some(env) = c.get("env") else { continue };
            for (i, e) in env.as_seq().iter().enumerate() {
                let Some(name) = e.get("name").and_then(Node::as_str) else {
                    continue;
                };
                let Some((key, v)) = e.get_entry("value") else {
                    continue;
                };
                let Some(s) = v.as_str() else { continue };
                if name == "RAY_AUTH_TOKEN" {
                    continue;
                }
                if let Some(why) = why(name, s) {
                    out.report(
                        w.obj,
                        c.field_path("env").idx(i).key("value"),
                        key.pos,
                        format!(
                            "container `{}`: env {name} {why} in plain text (`{}`)",
                            c.name(),
                            mask(s)
                        ),
                    );
                }
            }
        }
        // Redis passwords of GCS fault tolerance.
        for cl in &w.clusters {
            let gcs_ft = ["gcsFaultToleranceOptions", "redisPassword", "value"];
            if let Some(v) = cl.node.path(&gcs_ft) {
                if let Some(s) = v.as_str().filter(|s| !not_a_secret_value(s)) {
                    out.report(
                        w.obj,
                        cl.path.keys(&gcs_ft),
                        v.pos,
                        format!("the GCS Redis password is in plain text (`{}`)", mask(s)),
                    );
                }
            }
        }
        for t in w.templates.iter() {
            let Some(v) = t.ray_start_params.and_then(|p| p.get("redis-password")) else {
                continue;
            };
            let Some(s) = v.as_str().filter(|s| !not_a_secret_value(s)) else {
                continue;
            };
            // `rayStartParams` sits beside `template`.
            let path = match t.path.as_str().strip_suffix(".template") {
                Some(group) => JsonPath::root().keys(&group.split('.').collect::<Vec<_>>()),
                None => t.path.clone(),
            };
            out.report(
                w.obj,
                path.keys(&["rayStartParams", "redis-password"]),
                v.pos,
                format!(
                    "`rayStartParams.redis-password` is in plain text (`{}`); KubeRay also copies \
                     it into REDIS_PASSWORD",
                    mask(s)
                ),
            );
        }
        // YAML strings: runtime environments. One that rayward cannot read is RW802's.
        for f in embedded::fields(w.obj) {
            let Ok(Some(inner)) = Embedded::parse(&f) else {
                continue;
            };
            match f.name {
                "runtimeEnvYAML" => {
                    if let Some(env) = inner.root.get("env_vars") {
                        report_env(&inner, w, env, &f.path, "runtimeEnvYAML", out);
                    }
                }
                _ => serve_config(&inner, w, &f.path, out),
            }
        }
        if w.obj.kind.is_ray() {
            scan_every_string(w, out, start);
        }
    }
}

/// Every other string of a Ray object (annotations, labels, a RayJob's `entrypoint`,
/// container `command` and `args`, `rayStartParams`, …) and of its embedded documents,
/// for the high-confidence shapes only: a key format ([`credential_format`]) anywhere in
/// the string, or an assignment `NAME=value` / `--name=value` / `--name value` whose name
/// says secret and whose value is a literal. Long strings or base64 blobs alone are not
/// reported. Places the checks above reported are skipped (one finding per place), and so
/// are env entries (`name` + `value`), which the container check reads with their name.
fn scan_every_string(w: &Workload<'_>, out: &mut Sink<'_>, start: usize) {
    let mut seen: std::collections::HashSet<(u32, u32)> = out.out[start..]
        .iter()
        .map(|f| (f.line, f.column))
        .collect();
    let skip_fields: Vec<JsonPath> = embedded::fields(w.obj)
        .into_iter()
        .map(|f| f.path)
        .collect();
    let mut hits = Vec::new();
    walk(&w.obj.root, JsonPath::root(), &skip_fields, &mut hits);
    for (path, pos, why, value) in hits {
        if seen.insert((pos.line, pos.col)) {
            out.report(
                w.obj,
                path.clone(),
                pos,
                format!("`{path}` {why} in plain text (`{}`)", mask(&value)),
            );
        }
    }
    for f in embedded::fields(w.obj) {
        let Ok(Some(inner)) = Embedded::parse(&f) else {
            continue;
        };
        let mut hits = Vec::new();
        walk(
            &inner.root,
            JsonPath::root(),
            &[JsonPath::root().key("env_vars")],
            &mut hits,
        );
        for (inner_path, pos, why, value) in hits {
            let pos = inner.file_pos(pos);
            if seen.insert((pos.line, pos.col)) {
                out.report(
                    w.obj,
                    f.path.clone(),
                    pos,
                    format!(
                        "{}: `{inner_path}` {why} in plain text (`{}`)",
                        f.name,
                        mask(&value)
                    ),
                );
            }
        }
    }
}

type Hit = (JsonPath, Pos, String, String);

fn walk(n: &Node, path: JsonPath, skip: &[JsonPath], hits: &mut Vec<Hit>) {
    if skip.contains(&path) {
        return;
    }
    match &n.value {
        Value::Map(entries) => {
            // An env entry: the container check reads it with its name.
            if n.get("name").is_some() && n.get("value").is_some() && entries.len() <= 3 {
                return;
            }
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                walk(v, path.key(key), skip, hits);
            }
        }
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                walk(it, path.idx(i), skip, hits);
                // `args: ["--db-password", "value"]`: a flag and its value as two items.
                let flag = it.as_str().and_then(|t| t.strip_prefix("--"));
                let next = items.get(i + 1).and_then(|n| n.as_str().map(|v| (n, v)));
                if let (Some(flag), Some((vn, value))) = (flag, next) {
                    if let Some((name, value)) = secret_assignment(&format!("--{flag} {value}")) {
                        hits.push((
                            path.idx(i + 1),
                            vn.pos,
                            format!("is the value of --{name}, a credential by its name,"),
                            value.to_string(),
                        ));
                    }
                }
            }
        }
        Value::Scalar { text, .. } => {
            if n.resolved().is_some_and(|r| r != Resolved::Str) {
                return;
            }
            if let Some(f) = credential_format(text) {
                hits.push((path, n.pos, format!("holds {f}"), text.to_string()));
            } else if let Some((name, value)) = secret_assignment(text) {
                hits.push((
                    path,
                    n.pos,
                    format!("assigns {name}, a credential by its name,"),
                    value,
                ));
            }
        }
    }
}

/// The first `NAME=value`, `--name=value` or `--name value` in `text` whose name says
/// secret and whose value is a literal (not empty, not `$VAR`, `${VAR}`, `$(VAR)`, not a
/// path or a boolean).
fn secret_assignment(text: &str) -> Option<(String, String)> {
    if !text.contains('=') && !text.contains("--") {
        return None;
    }
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | ','))
        .filter(|t| !t.is_empty())
        .collect();
    for (i, tok) in tokens.iter().enumerate() {
        let tok = tok.trim_matches(|c| c == '"' || c == '\'');
        let (name, value) = if let Some((n, v)) = tok.split_once('=') {
            (n, v)
        } else if let Some(flag) = tok.strip_prefix("--") {
            match tokens.get(i + 1) {
                Some(v) if !v.starts_with('-') => (flag, *v),
                _ => continue,
            }
        } else {
            continue;
        };
        let bare = name.trim_start_matches('-');
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        let well_formed = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && bare.as_bytes()[0].is_ascii_alphabetic();
        if well_formed && secret_name(bare) && !not_a_secret_value(value) {
            return Some((bare.to_string(), value.to_string()));
        }
    }
    None
}

fn serve_config(inner: &Embedded, w: &Workload<'_>, path: &JsonPath, out: &mut Sink<'_>) {
    for app in inner
        .root
        .get("applications")
        .map(Node::as_seq)
        .unwrap_or(&[])
    {
        let app_name = app.get("name").and_then(Node::as_str).unwrap_or("?");
        if let Some(env) = app.path(&["runtime_env", "env_vars"]) {
            let at = format!("serveConfigV2 application `{app_name}`");
            report_env(inner, w, env, path, &at, out);
        }
        for d in app.get("deployments").map(Node::as_seq).unwrap_or(&[]) {
            let env = d.path(&["ray_actor_options", "runtime_env", "env_vars"]);
            if let Some(env) = env {
                let dep = d.get("name").and_then(Node::as_str).unwrap_or("?");
                let at = format!("serveConfigV2 deployment `{app_name}/{dep}`");
                report_env(inner, w, env, path, &at, out);
            }
        }
    }
}

fn report_env(
    inner: &Embedded,
    w: &Workload<'_>,
    env: &Node,
    path: &JsonPath,
    at: &str,
    out: &mut Sink<'_>,
) {
    for (k, v) in env.as_map() {
        let (Some(name), Some(value)) = (k.as_str(), v.scalar_text()) else {
            continue;
        };
        if let Some(why) = why(name, value) {
            out.report(
                w.obj,
                path.clone(),
                inner.file_pos(k.pos),
                format!(
                    "{at}: env var {name} {why} in plain text (`{}`)",
                    mask(value)
                ),
            );
        }
    }
}
