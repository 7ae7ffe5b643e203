//! `rayward harden`: the secure form of Ray objects and what must sit beside them.
//!
//! Per Ray object (RayCluster, RayJob, RayService, RayCronJob) the fixes of the rule
//! catalog run in rule order ([`rayward_rules::registry::fixable`]); each lives beside the
//! rule it answers. The companions ([`companions`]) answer the rules that ask for other
//! objects: NetworkPolicies, the dedicated ServiceAccount and its autoscaler Role, the
//! namespace's ResourceQuota and, when asked, the Namespace with Pod Security labels.
//! Then the rules run again over the result: what they still report is what harden could
//! not fix without a guess ([`Hardened::unfixed`]), at the input's `file:line` when the
//! node came from the input.
//!
//! [`harden_object`] serves the admission webhook (one object at a time);
//! [`harden_bundle`] serves the CLI (every object of a run, namespaces' companions once).

pub mod companions;
pub mod diff;
pub mod history;
pub mod options;
pub mod pod_security;
pub mod workload_identity;

pub use options::{BadSource, Options, Source};
pub use rayward_rules::{Change, Finding, FixOptions};

use rayward_manifest::par;
use rayward_manifest::{Kind, Object};
use rayward_rules::{registry, Engine, FixContext, RayPodsWithoutNetworkPolicy};
use std::collections::{BTreeMap, HashSet};

/// What harden made of one Ray object.
#[derive(Clone, Debug)]
pub struct Hardened {
    /// The object in its secure form.
    pub object: Object,
    /// Objects it needs beside it (NetworkPolicies, ServiceAccount, Role, RoleBinding).
    pub companions: Vec<Object>,
    /// Every edit, with the rule it answers.
    pub changes: Vec<Change>,
    /// What the rules still report on the result: the problems harden does not fix.
    pub unfixed: Vec<Finding>,
}

/// Every rule id that harden answers, with how: `object` (a fix on the object, whether it
/// is one of the safe ones) or the companion that answers it.
pub fn fix_map() -> Vec<(&'static str, String)> {
    let mut out: BTreeMap<&'static str, String> = BTreeMap::new();
    for (r, f) in registry::fixable() {
        let how = if f.safe() {
            "fix in the object (safe: also applied by the webhook)"
        } else {
            "fix in the object"
        };
        out.insert(r.meta().id, how.to_string());
    }
    // Rules answered by an object written beside the input declare it (`companion:`).
    for m in registry::all().into_iter().map(|r| r.meta()) {
        let (id, Some(how)) = (m.id, m.companion) else {
            continue;
        };
        out.entry(id)
            .and_modify(|s| {
                s.push_str("; ");
                s.push_str(how);
            })
            .or_insert_with(|| how.to_string());
    }
    out.into_iter().collect()
}

/// The fixes of one object and the edits they made, without companions or the re-audit
/// of what is left: what the webhook's `/mutate` needs, at the cost of one copy of the
/// object rather than the several a full [`harden_object`] takes.
pub fn fix_only(obj: &Object, opts: &Options) -> (Object, Vec<Change>) {
    fix_object(obj, opts)
}

/// Applies the fixes to one object, without companions or re-audit.
fn fix_object(obj: &Object, opts: &Options) -> (Object, Vec<Change>) {
    let mut out = obj.clone();
    let mut changes = Vec::new();
    if !obj.kind.is_ray() {
        // Other workloads only where harden labels the namespace restricted.
        changes = pod_security::fix_workload(&mut out, opts);
        return (out, changes);
    }
    let cx = FixContext {
        options: &opts.fix,
        settings: &opts.settings,
    };
    let fixable = registry::fixable();
    for (i, (_, fix)) in fixable.iter().enumerate() {
        if opts.safe_only && !fix.safe() {
            continue;
        }
        // A fix shared by several rules (TLS) runs once, and not at all when the object
        // suppresses any of them: a suppression is the user's decision to keep it as it is.
        let same = |f: &&'static dyn rayward_rules::Fix| f.fix_name() == fix.fix_name();
        if fixable[..i].iter().any(|(_, f)| same(f)) {
            continue;
        }
        if fixable
            .iter()
            .filter(|(_, f)| same(f))
            .any(|(r, _)| suppressed(obj, r.meta().id))
        {
            continue;
        }
        changes.extend(fix.fix(&mut out, &cx));
    }
    if !opts.safe_only {
        if let Some(h) = &opts.history {
            changes.extend(history::apply(&mut out, h, &opts.fix.cert_image));
        }
        changes.extend(companions::prepare(&mut out));
        if let Some(wi) = &opts.workload_identity {
            changes.extend(workload_identity::remove_keys(&mut out, wi));
        }
    }
    refresh_identity(&mut out);
    (out, changes)
}

/// Whether the object's `rayward.io/ignore` annotation suppresses a rule.
pub fn suppressed(obj: &Object, rule_id: &str) -> bool {
    registry::find(rule_id).is_some_and(|r| {
        rayward_rules::engine::suppression(obj, r.meta().id, r.meta().name).is_some()
    })
}

/// Keeps the object's cached name and namespace in step with its edited metadata.
fn refresh_identity(obj: &mut Object) {
    if let Some(ns) = obj
        .root
        .path(&["metadata", "namespace"])
        .and_then(rayward_manifest::Node::as_str)
    {
        obj.namespace = Some(ns.to_string());
    }
}

/// Hardens one object: fixes, its companions, and what is left unfixed.
pub fn harden_object(obj: &Object, opts: &Options) -> Hardened {
    let (object, changes) = fix_object(obj, opts);
    let companions = if opts.safe_only || !object.kind.is_ray() {
        Vec::new()
    } else {
        companions::for_object_with(
            &object,
            opts,
            !suppressed(&object, RayPodsWithoutNetworkPolicy::META.id),
        )
    };
    let mut all = vec![object.clone()];
    all.extend(companions.iter().cloned());
    let unfixed = remaining(&all, opts);
    Hardened {
        object,
        companions,
        changes,
        unfixed,
    }
}

/// Hardens one object given as a tree (an AdmissionReview's object, decoded from JSON by
/// the loader). `None` when the tree is not a Kubernetes object.
pub fn harden_node(root: rayward_manifest::Node, file: &str, opts: &Options) -> Option<Hardened> {
    let file: std::sync::Arc<str> = std::sync::Arc::from(file);
    let obj = Object::from_document(&file, 0, root).pop()?;
    Some(harden_object(&obj, opts))
}

/// One input file's worth of hardened objects.
#[derive(Clone, Debug)]
pub struct HardenedFile {
    pub file: String,
    /// Every object of the file, in order: Ray objects hardened, others unchanged.
    pub objects: Vec<Object>,
}

/// The result of hardening a whole run.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    pub files: Vec<HardenedFile>,
    /// Companions of every Ray object, then the namespaces' own (Namespace, quota).
    pub companions: Vec<Object>,
    pub changes: Vec<(String, Change)>,
    /// What the rules still report over the whole output.
    pub unfixed: Vec<Finding>,
}

impl Bundle {
    /// Every object of the output, companions last.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.files
            .iter()
            .flat_map(|f| f.objects.iter())
            .chain(self.companions.iter())
    }
}

/// One object of a run as [`harden_stream`] hands it out, in input order.
pub struct Step<'a> {
    /// The input object.
    pub before: &'a Object,
    /// Its output: hardened if it is a Ray object, else as given (namespace set when
    /// `--namespace` is).
    pub after: &'a Object,
    /// Every edit, with the rule it answers (empty unless asked for: see
    /// [`harden_stream`]).
    pub changes: &'a [Change],
}

/// What is known once every object of a run has passed.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Companions of every Ray object, then the namespaces' own (Namespace, quota); none
    /// the inputs already hold.
    pub companions: Vec<Object>,
    /// How many edits were made.
    pub changes: usize,
    /// What the rules still report over the whole output, suppressed findings left out.
    pub unfixed: Vec<Finding>,
    /// Workloads that fail Pod Security `restricted` after harden (with `--namespace`):
    /// their namespace enforces `baseline` instead ([`pod_security`]).
    pub refusals: Vec<pod_security::Refusal>,
    /// Namespaces of the Ray objects that took `--workload-identity` (for RRSA, each needs
    /// ack-pod-identity-webhook's injection label; harden sets it on the Namespace it
    /// writes, and the CLI names the others).
    pub identity_namespaces: std::collections::BTreeSet<String>,
}

/// Objects hardened at once: enough to keep every core busy, few enough that a run holds
/// only a bounded number of full output trees.
const BATCH_PER_THREAD: usize = 8;

/// Hardens every object of a run, handing each output to `each` as soon as it is made,
/// so a run holds its input, one batch of outputs and slim copies of the rest, never the
/// whole output. Objects keep their order; non-Ray objects pass through unchanged (their
/// namespace is set when `--namespace` is given, so what a cluster references moves with
/// it). The companions and what is left unfixed come at the end.
///
/// The edits are handed out only with `keep_changes`: a cluster of thousands of worker
/// groups makes tens of thousands, and a caller that prints their count need not hold them.
pub fn harden_stream(
    objects: Vec<Object>,
    opts: &Options,
    keep_changes: bool,
    mut each: impl FnMut(Step<'_>),
) -> Summary {
    let covered = companions::covered_by_input_policies(&objects);
    let engine = Engine::all(opts.settings.clone());
    let batch = par::threads(objects.len()) * BATCH_PER_THREAD;
    let mut quotas = companions::Quotas::default();
    let mut seen: HashSet<(String, Option<String>, String)> = HashSet::new();
    let mut summary = Summary::default();
    let mut found = Vec::new();
    let mut kept = Vec::new();
    let mut rest = objects.into_iter().enumerate();
    loop {
        let chunk: Vec<(usize, Object)> = rest.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        let done = par::map(&chunk, |(i, obj)| {
            let (mut out, mut changes) = fix_object(obj, opts);
            // The Ray object lost literal cloud keys: its account takes the identity.
            // (or did on an earlier run: its mark says so, and its account, generated
            // anew, is annotated again without counting as a change).
            let removed_now = changes.iter().any(|c| c.rule_id == workload_identity::RULE);
            let identity = opts
                .workload_identity
                .as_ref()
                .filter(|wi| removed_now || workload_identity::marked(&out, wi));
            if !out.kind.is_ray() && !opts.safe_only {
                companions::set_namespace(&mut out, opts);
            }
            let mut comps = if out.kind.is_ray() && !opts.safe_only {
                let policies =
                    !covered.contains(i) && !suppressed(&out, RayPodsWithoutNetworkPolicy::META.id);
                companions::for_object_with(&out, opts, policies)
            } else {
                Vec::new()
            };
            if let Some(wi) = identity {
                let annotated = workload_identity::annotate(&mut comps, &out, wi);
                if removed_now {
                    changes.extend(annotated);
                }
            }
            let count = changes.len();
            if !keep_changes {
                changes = Vec::new();
            }
            let identity_ns = identity.and(out.namespace.clone());
            let mut findings = Vec::new();
            engine.check_objects(std::slice::from_ref(&out), &mut findings);
            let refusal = pod_security::judge(&out, opts);
            (out, changes, count, comps, findings, refusal, identity_ns)
        });
        for ((_, before), (mut out, changes, count, comps, findings, refusal, identity_ns)) in
            chunk.into_iter().zip(done)
        {
            summary.refusals.extend(refusal);
            summary.identity_namespaces.extend(identity_ns);
            each(Step {
                before: &before,
                after: &out,
                changes: &changes,
            });
            summary.changes += count;
            quotas.add(&out);
            seen.insert(identity(&out));
            summary.companions.extend(comps);
            found.extend(findings);
            out.slim();
            kept.push(out);
        }
    }
    if !opts.safe_only {
        summary
            .companions
            .extend(companions::for_namespaces_with(quotas, opts));
        for ns in summary
            .companions
            .iter_mut()
            .filter(|c| c.kind_name == "Namespace")
        {
            pod_security::relabel_namespace(ns, &summary.refusals);
            if let Some(wi) = &opts.workload_identity {
                if summary.identity_namespaces.contains(&ns.name) {
                    workload_identity::label_namespace(ns, wi);
                }
            }
        }
    }
    // A companion the inputs already hold (harden's own earlier output, or the user's
    // object of that name) is not generated again: the input's passes through.
    summary.companions.retain(|c| seen.insert(identity(c)));
    let mut checked = engine.check_batch(summary.companions.clone());
    found.append(&mut checked.findings);
    kept.append(&mut checked.kept);
    engine.conclude(&kept, &mut found);
    summary.unfixed = found
        .into_iter()
        .filter(|f| f.suppressed.is_none())
        .filter(|f| !Kind::of(&f.object.api_version, &f.object.kind).is_plain_workload())
        .collect();
    summary
}

/// Hardens every object of a run and keeps the whole output ([`harden_stream`], collected):
/// for tests and callers whose runs are small.
pub fn harden_bundle(objects: &[Object], opts: &Options) -> Bundle {
    let mut files: Vec<HardenedFile> = Vec::new();
    let mut changes = Vec::new();
    let summary = harden_stream(objects.to_vec(), opts, true, |step| {
        changes.extend(step.changes.iter().map(|c| (step.after.id(), c.clone())));
        let out = step.after.clone();
        match files.last_mut() {
            Some(f) if f.file == *step.before.file => f.objects.push(out),
            _ => files.push(HardenedFile {
                file: step.before.file.to_string(),
                objects: vec![out],
            }),
        }
    });
    Bundle {
        files,
        companions: summary.companions,
        changes,
        unfixed: summary.unfixed,
    }
}

/// What makes two objects the same object to the API server.
fn identity(o: &Object) -> (String, Option<String>, String) {
    let ns = if o.kind.is_namespaced() {
        o.namespace.clone()
    } else {
        None
    };
    (o.kind_name.clone(), ns, o.name.clone())
}

/// The findings the rules still report over a few objects in memory (one object and its
/// companions, for the webhook), suppressed ones left out.
fn remaining(objects: &[Object], opts: &Options) -> Vec<Finding> {
    Engine::all(opts.settings.clone())
        .run(objects)
        .into_iter()
        .filter(|f| f.suppressed.is_none())
        .filter(|f| !Kind::of(&f.object.api_version, &f.object.kind).is_plain_workload())
        .collect()
}
