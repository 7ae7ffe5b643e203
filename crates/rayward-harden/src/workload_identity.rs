//! `rayward harden --workload-identity rrsa:ROLE | irsa:ROLE_ARN | gke:GSA_EMAIL` (guide
//! §RRSA): the user's answer to RW801 for cloud keys. Without the flag RW801 stays a
//! finding; with it, for each Ray object holding literal cloud keys:
//!
//! - the key env vars are removed from its containers and from its `runtimeEnvYAML`
//!   `env_vars`, each removal a [`Change`];
//! - its dedicated ServiceAccount (harden's companion) gets the provider's annotation, and
//!   for RRSA its namespace the injection label.
//!
//! The names, checked against each provider's documentation:
//! - ACK RRSA (ack-pod-identity-webhook, alibabacloud.com): ServiceAccount annotation
//!   `pod-identity.alibabacloud.com/role-name: ROLE`, namespace label
//!   `pod-identity.alibabacloud.com/injection: "on"`;
//! - EKS IRSA (docs.aws.amazon.com): annotation `eks.amazonaws.com/role-arn: ARN`;
//! - GKE Workload Identity: annotation `iam.gke.io/gcp-service-account: EMAIL`.
//!
//! No Kubernetes API token is mounted for it: ACK's and EKS's webhooks inject a projected
//! token of their own audience into the pods of an annotated account, and GKE answers from
//! its metadata server; `automountServiceAccountToken` stays off (RW402), so the Ray
//! containers get the provider's token and never the API's.

use rayward_manifest::{JsonPath, Node, Object, Workload};
use rayward_rules::Change;
use std::borrow::Cow;

/// ACK: the RAM role of a ServiceAccount.
pub const ACK_ROLE_ANNOTATION: &str = "pod-identity.alibabacloud.com/role-name";
/// ACK: the namespace label that turns ack-pod-identity-webhook's injection on.
pub const ACK_INJECTION_LABEL: &str = "pod-identity.alibabacloud.com/injection";
/// EKS: the IAM role of a ServiceAccount.
pub const EKS_ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// GKE: the Google service account a Kubernetes ServiceAccount acts as.
pub const GKE_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// Env var names of cloud keys that workload identity replaces (AWS and S3-compatible
/// stores, Alibaba Cloud and OSS, Google's HMAC keys go through the AWS names).
const CLOUD_KEYS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALICLOUD_ACCESS_KEY",
    "ALICLOUD_SECRET_KEY",
    "ALICLOUD_ACCESS_KEY_ID",
    "ALICLOUD_ACCESS_KEY_SECRET",
    "OSS_ACCESS_KEY_ID",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SESSION_TOKEN",
];

/// Whether `name` is the env var of a cloud key that workload identity replaces.
pub fn is_cloud_key(name: &str) -> bool {
    CLOUD_KEYS.contains(&name)
}

/// The workload identity provider the user chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// ACK RAM Roles for Service Accounts.
    Rrsa,
    /// EKS IAM Roles for Service Accounts.
    Irsa,
    /// GKE Workload Identity.
    Gke,
}

/// `--workload-identity`: a provider and the identity the Ray pods take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadIdentity {
    pub provider: Provider,
    /// The RAM role name, IAM role ARN or Google service account email.
    pub identity: String,
}

/// A `--workload-identity` value that is not one of the three forms.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--workload-identity `{0}`: expected rrsa:ROLE_NAME, irsa:arn:aws:iam::ACCOUNT:role/NAME or gke:NAME@PROJECT.iam.gserviceaccount.com")]
pub struct BadIdentity(pub String);

impl WorkloadIdentity {
    /// Parses and checks `rrsa:ROLE`, `irsa:ROLE_ARN` or `gke:GSA_EMAIL`.
    pub fn parse(s: &str) -> Result<WorkloadIdentity, BadIdentity> {
        let bad = || BadIdentity(s.to_string());
        let (p, v) = s.split_once(':').ok_or_else(bad)?;
        let provider = match p {
            "rrsa" => Provider::Rrsa,
            "irsa" => Provider::Irsa,
            "gke" => Provider::Gke,
            _ => return Err(bad()),
        };
        let ok = match provider {
            // A RAM role name: 1-64 of letters, digits, `.` and `-`.
            Provider::Rrsa => {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            }
            // arn:PARTITION:iam::ACCOUNT(12 digits):role/PATH/NAME
            Provider::Irsa => {
                let parts: Vec<&str> = v.splitn(6, ':').collect();
                parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == "iam"
                    && parts[3].is_empty()
                    && parts[4].len() == 12
                    && parts[4].bytes().all(|b| b.is_ascii_digit())
                    && parts[5].strip_prefix("role/").is_some_and(|r| {
                        !r.is_empty()
                            && r.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
                    })
            }
            Provider::Gke => v.split_once('@').is_some_and(|(name, domain)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && domain.ends_with(".iam.gserviceaccount.com")
                    && domain.len() > ".iam.gserviceaccount.com".len()
            }),
        };
        if !ok {
            return Err(bad());
        }
        Ok(WorkloadIdentity {
            provider,
            identity: v.to_string(),
        })
    }

    /// The flag's form, `rrsa:ROLE` …: the value of [`MARK_ANNOTATION`].
    pub fn spec(&self) -> String {
        let p = match self.provider {
            Provider::Rrsa => "rrsa",
            Provider::Irsa => "irsa",
            Provider::Gke => "gke",
        };
        format!("{p}:{}", self.identity)
    }

    /// The ServiceAccount annotation of the provider.
    pub fn annotation(&self) -> &'static str {
        match self.provider {
            Provider::Rrsa => ACK_ROLE_ANNOTATION,
            Provider::Irsa => EKS_ROLE_ANNOTATION,
            Provider::Gke => GKE_ANNOTATION,
        }
    }
}

/// The annotation harden leaves on a Ray object whose keys it removed: the identity it
/// took instead (so hardening the output again annotates its account the same way).
pub const MARK_ANNOTATION: &str = "rayward.io/workload-identity";

/// RW801's id: the rule this answers.
pub const RULE: &str = "RW801";

/// The ServiceAccount of the user's that some Ray pod of `obj` runs as (not harden's
/// dedicated one): workload identity then belongs on that account, which harden does not
/// write, so it leaves the keys and RW801 to the user.
pub fn own_account(obj: &Object) -> Option<String> {
    let dedicated = crate::companions::service_account_name(obj);
    Workload::templates_of(obj)
        .templates
        .iter()
        .filter_map(|t| t.field("serviceAccountName").and_then(Node::as_str))
        .find(|sa| *sa != dedicated)
        .map(str::to_string)
}

/// Whether `obj` took the identity `wi` (its [`MARK_ANNOTATION`]): a Ray object harden
/// already answered.
pub fn marked(obj: &Object, wi: &WorkloadIdentity) -> bool {
    obj.root
        .path(&["metadata", "annotations", MARK_ANNOTATION])
        .and_then(Node::as_str)
        == Some(wi.spec().as_str())
}

/// Removes the literal cloud-key env vars of a Ray object's containers and of its
/// `runtimeEnvYAML`, and marks the object with the identity taken instead. Empty when
/// there were none: the object then needs no identity.
pub fn remove_keys(obj: &mut Object, wi: &WorkloadIdentity) -> Vec<Change> {
    let mut changes = Vec::new();
    // The identity goes on harden's own ServiceAccount: pods that run as an account of
    // the user's keep their keys (RW801 stays) until that account is annotated.
    if own_account(obj).is_some() {
        return changes;
    }
    // Container env: entries with a literal `value` (a `valueFrom` is a Secret's).
    let mut drops: Vec<(JsonPath, Vec<usize>, Vec<String>)> = Vec::new();
    let w = Workload::of(obj);
    for (_, c) in w.containers() {
        let Some(env) = c.get("env") else { continue };
        let mut idx = Vec::new();
        let mut names = Vec::new();
        for (i, e) in env.as_seq().iter().enumerate() {
            let Some(name) = e.get("name").and_then(Node::as_str) else {
                continue;
            };
            if is_cloud_key(name) && e.get("value").is_some_and(|v| v.as_str().is_some()) {
                idx.push(i);
                names.push(name.to_string());
            }
        }
        if !idx.is_empty() {
            drops.push((c.field_path("env"), idx, names));
        }
    }
    drop(w);
    for (path, idx, names) in drops {
        let Some(env) = obj.root.at_path_mut(&path) else {
            continue;
        };
        let mut i = 0;
        env.retain_items(|_| {
            let keep = !idx.contains(&i);
            i += 1;
            keep
        });
        for n in names {
            changes.push(Change {
                rule_id: RULE,
                json_path: path.as_str().to_string(),
                description: Cow::Owned(format!(
                    "removed the literal cloud key {n} (workload identity instead)"
                )),
            });
        }
    }
    // runtimeEnvYAML: the block-style `env_vars:` mapping, edited as text so the rest of
    // the user's runtime environment keeps its form.
    for keys in [
        &["spec", "runtimeEnvYAML"][..],
        &["spec", "rayJobSpec", "runtimeEnvYAML"][..],
        &["spec", "jobTemplate", "runtimeEnvYAML"][..],
    ] {
        let Some(text) = obj.root.path(keys).and_then(Node::as_str) else {
            continue;
        };
        let (edited, removed) = drop_env_vars(text);
        if removed.is_empty() {
            continue;
        }
        let path = JsonPath::root().keys(keys);
        let Some(node) = obj.root.at_path_mut(&path) else {
            continue;
        };
        *node = literal_block(edited, node);
        for n in removed {
            changes.push(Change {
                rule_id: RULE,
                json_path: path.as_str().to_string(),
                description: Cow::Owned(format!(
                    "removed the literal cloud key {n} from runtimeEnvYAML env_vars (workload identity instead)"
                )),
            });
        }
    }
    if !changes.is_empty() {
        if let Some(a) = obj
            .root
            .map_entry("metadata")
            .and_then(|m| m.map_entry("annotations"))
        {
            a.set(MARK_ANNOTATION, Node::string(wi.spec()));
            changes.push(Change {
                rule_id: RULE,
                json_path: "metadata.annotations".into(),
                description: Cow::Owned(format!("marked {MARK_ANNOTATION}: {}", wi.spec())),
            });
        }
    }
    changes
}

/// The new string in the style of the old one (a block scalar stays a block scalar).
fn literal_block(text: String, old: &Node) -> Node {
    let mut n = Node::string(text);
    n.pos = old.pos;
    n
}

/// Removes `NAME: value` lines of cloud keys inside the top-level `env_vars:` block of a
/// runtime environment written as block YAML. Other shapes (flow mappings, multi-line
/// values) are left alone, and RW801 keeps reporting them.
fn drop_env_vars(text: &str) -> (String, Vec<String>) {
    let mut out: Vec<&str> = Vec::new();
    let mut removed = Vec::new();
    // (indent of `env_vars:`, its index in `out`, entries kept, entries removed)
    let mut block: Option<(usize, usize, usize, usize)> = None;
    // An `env_vars:` whose every entry went would read as `env_vars: null`, which Ray
    // refuses: the header goes with its last entry.
    let close = |out: &mut Vec<&str>, b: Option<(usize, usize, usize, usize)>| {
        if let Some((_, at, 0, gone)) = b {
            if gone > 0 {
                out.remove(at);
            }
        }
    };
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let content = trimmed.trim_end();
        if let Some((base, ..)) = block {
            if !content.is_empty() && indent <= base {
                close(&mut out, block.take());
            }
        }
        if block.is_none() && content == "env_vars:" {
            block = Some((indent, out.len(), 0, 0));
            out.push(line);
            continue;
        }
        if let Some((_, _, kept, gone)) = block.as_mut() {
            if let Some((k, v)) = content.split_once(':') {
                let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
                let v = v.trim();
                let single_line = !v.is_empty() && !v.starts_with('|') && !v.starts_with('>');
                if is_cloud_key(k) && single_line {
                    removed.push(k.to_string());
                    *gone += 1;
                    continue;
                }
            }
            if !content.is_empty() {
                *kept += 1;
            }
        }
        out.push(line);
    }
    close(&mut out, block);
    (out.concat(), removed)
}

/// Annotates harden's ServiceAccount companion of `obj` (named by
/// [`crate::companions::service_account_name`]) for the provider; a change per account.
pub fn annotate(companions: &mut [Object], obj: &Object, wi: &WorkloadIdentity) -> Vec<Change> {
    let sa = crate::companions::service_account_name(obj);
    let mut changes = Vec::new();
    for c in companions
        .iter_mut()
        .filter(|c| c.kind_name == "ServiceAccount" && c.name == sa)
    {
        let Some(meta) = c.root.map_entry("metadata") else {
            continue;
        };
        if let Some(a) = meta.map_entry("annotations") {
            a.set(wi.annotation(), Node::string(wi.identity.clone()));
            changes.push(Change {
                rule_id: RULE,
                json_path: format!("ServiceAccount/{sa}.metadata.annotations"),
                description: Cow::Owned(format!(
                    "ServiceAccount {sa} annotated {}: {}",
                    wi.annotation(),
                    wi.identity
                )),
            });
        }
    }
    changes
}

/// With RRSA, the namespace companion gets ack-pod-identity-webhook's injection label.
pub fn label_namespace(namespace: &mut Object, wi: &WorkloadIdentity) {
    if wi.provider != Provider::Rrsa {
        return;
    }
    if let Some(l) = namespace
        .root
        .map_entry("metadata")
        .and_then(|m| m.map_entry("labels"))
    {
        l.set(ACK_INJECTION_LABEL, Node::string("on"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse() {
        let ok = [
            ("rrsa:ray-oss-reader", Provider::Rrsa),
            ("irsa:arn:aws:iam::123456789012:role/ray-s3", Provider::Irsa),
            (
                "irsa:arn:aws-cn:iam::123456789012:role/path/ray",
                Provider::Irsa,
            ),
            (
                "gke:ray-gcs@my-project.iam.gserviceaccount.com",
                Provider::Gke,
            ),
        ];
        for (s, p) in ok {
            assert_eq!(WorkloadIdentity::parse(s).map(|w| w.provider), Ok(p), "{s}");
        }
        for bad in [
            "",
            "rrsa:",
            "rrsa:has space",
            "azure:x",
            "irsa:arn:aws:iam::12345:role/x",
            "irsa:arn:aws:s3:::bucket",
            "irsa:arn:aws:iam::123456789012:user/x",
            "gke:someone@gmail.com",
            "gke:@p.iam.gserviceaccount.com",
        ] {
            assert!(WorkloadIdentity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_vars_lose_only_cloud_keys() {
        let text = "pip:\n  - requests\nenv_vars:\n  OSS_ACCESS_KEY_ID: LTAI5tFakeKeyId1234567\n  counter: \"1\"\n  OSS_ACCESS_KEY_SECRET: notARealSecret\nworking_dir: /tmp\n";
        let (out, removed) = drop_env_vars(text);
        assert_eq!(removed, ["OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"]);
        assert_eq!(
            out,
            "pip:\n  - requests\nenv_vars:\n  counter: \"1\"\nworking_dir: /tmp\n"
        );
        // Every entry gone: so is the header (Ray refuses `env_vars: null`).
        let (out, removed) = drop_env_vars(
            "pip: [x]\nenv_vars:\n  AWS_ACCESS_KEY_ID: a\n  AWS_SECRET_ACCESS_KEY: b\n",
        );
        assert_eq!(removed.len(), 2);
        assert_eq!(out, "pip: [x]\n");
        // Outside env_vars, nothing goes.
        let (out, removed) = drop_env_vars("AWS_ACCESS_KEY_ID: x\n");
        assert!(removed.is_empty());
        assert_eq!(out, "AWS_ACCESS_KEY_ID: x\n");
    }
}
