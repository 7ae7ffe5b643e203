//! Runs the catalog over a set of objects.

use crate::finding::{Finding, ObjectRef, Paths, Sink};
use crate::registry;
use crate::rule::{Ctx, Rule, Severity};
use crate::settings::Settings;
use rayward_manifest::{Inputs, Inventory, LoadError, Loaded, Object, Workload};

pub use crate::suppress::{parse_ignore, suppression, IGNORE_ANNOTATION};

/// Which rules run and how severe their findings are.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Rule ids or names to turn off.
    pub disable: Vec<String>,
    /// If not empty, only these rules run.
    pub only: Vec<String>,
    /// Severity overrides by rule id or name.
    pub severity: Vec<(String, Severity)>,
}

/// A rule id or name that matches no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule(pub String);

impl std::fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown rule `{}` (see `rayward rules`)", self.0)
    }
}

impl std::error::Error for UnknownRule {}

/// The configured catalog, ready to run.
pub struct Engine {
    rules: Vec<(&'static dyn Rule, Severity)>,
    settings: Settings,
}

impl Engine {
    /// Every rule at its default severity.
    pub fn all(settings: Settings) -> Engine {
        Engine::new(settings, &Selection::default()).expect("empty selection names no rule")
    }

    pub fn new(settings: Settings, sel: &Selection) -> Result<Engine, UnknownRule> {
        let all = registry::all();
        let known = |t: &str| -> Result<(), UnknownRule> {
            if all.iter().any(|r| r.meta().is(t)) {
                Ok(())
            } else {
                Err(UnknownRule(t.to_string()))
            }
        };
        for t in sel.disable.iter().chain(&sel.only) {
            known(t)?;
        }
        for (t, _) in &sel.severity {
            known(t)?;
        }
        let rules = all
            .into_iter()
            .filter(|r| {
                let m = r.meta();
                (sel.only.is_empty() || sel.only.iter().any(|t| m.is(t)))
                    && !sel.disable.iter().any(|t| m.is(t))
            })
            .map(|r| {
                let sev = sel
                    .severity
                    .iter()
                    .rev()
                    .find(|(t, _)| r.meta().is(t))
                    .map_or(r.meta().severity, |(_, s)| *s);
                (r, sev)
            })
            .collect();
        Ok(Engine { rules, settings })
    }

    pub fn rules(&self) -> impl Iterator<Item = &'static dyn Rule> + '_ {
        self.rules.iter().map(|(r, _)| *r)
    }

    /// The rules that run, each with the severity it reports at (the config may change
    /// a rule's default).
    pub fn rule_severities(&self) -> impl Iterator<Item = (&'static dyn Rule, Severity)> + '_ {
        self.rules.iter().map(|(r, s)| (*r, *s))
    }

    /// Runs every rule over a set of objects in memory (the webhook's review, a test):
    /// per-object rules on the objects as given, whole-run rules on their slim copies.
    /// Findings come sorted; suppressed ones are kept, marked with their reason.
    pub fn run(&self, objects: &[Object]) -> Vec<Finding> {
        let mut findings = Vec::new();
        self.check_objects(objects, &mut findings);
        // One full copy at a time, slimmed at once: a 1 MB review is never held twice whole.
        let kept: Vec<Object> = objects
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.slim();
                o
            })
            .collect();
        self.conclude(&kept, &mut findings);
        findings
    }

    /// The run path of every command that reads inputs: the inputs are resolved and
    /// loaded on every core, each input's objects go through the per-object rules and are
    /// slimmed at once (so a run holds one full input per thread, not all of them), then
    /// the whole-run rules see every object in input order.
    pub fn run_inputs(&self, inputs: &Inputs) -> Run {
        let (list, walk_errors) = inputs.resolve();
        let mut run = self.run_sources(&list, |i| inputs.load(i));
        run.errors.splice(0..0, walk_errors);
        run
    }

    /// [`Engine::run_inputs`] over any source of objects: `load` turns one source (a
    /// file, a listing of a live cluster) into objects, on every core.
    pub fn run_sources<S: Sync>(&self, sources: &[S], load: impl Fn(&S) -> Loaded + Sync) -> Run {
        let parts = rayward_manifest::par::map(sources, |s| {
            let loaded = load(s);
            let objects = loaded.objects.len();
            (
                self.check_batch(loaded.objects),
                loaded.error,
                objects,
                loaded.skipped_documents,
            )
        });
        self.gather(parts, sources.len())
    }

    /// The end of a run from the batches of its inputs (in input order): findings and slim
    /// objects put together, the whole-run rules, [`finish`]. `run_sources` ends here, and
    /// so does a source whose batches arrive by other means (a live cluster's pages).
    pub fn gather(
        &self,
        parts: Vec<(Checked, Option<LoadError>, usize, usize)>,
        inputs: usize,
    ) -> Run {
        let mut run = Run {
            inputs,
            ..Run::default()
        };
        // The first batch's vectors are taken as they are: appending them to empty ones
        // would copy the 200,000 findings of one large input while the original is alive.
        // They then grow once, to the exact total: growing by doubling as batches are
        // appended (a live cluster comes in dozens of pages) held up to twice the findings.
        let total_findings: usize = parts.iter().map(|p| p.0.findings.len()).sum();
        let total_kept: usize = parts.iter().map(|p| p.0.kept.len()).sum();
        let mut kept = Vec::new();
        for (mut checked, error, objects, skipped) in parts {
            if run.findings.is_empty() {
                run.findings = std::mem::take(&mut checked.findings);
                run.findings
                    .reserve_exact(total_findings.saturating_sub(run.findings.len()));
            } else {
                run.findings.append(&mut checked.findings);
            }
            if kept.is_empty() {
                kept = std::mem::take(&mut checked.kept);
                kept.reserve_exact(total_kept.saturating_sub(kept.len()));
            } else {
                kept.append(&mut checked.kept);
            }
            run.errors.extend(error);
            run.objects += objects;
            run.skipped += skipped;
        }
        self.conclude(&kept, &mut run.findings);
        run.ray_objects = kept
            .iter()
            .filter(|o| o.kind.is_ray())
            .map(ObjectRef::of)
            .collect();
        run.related = related(&kept, &run.findings);
        run
    }

    /// The per-object rules over one batch of objects; the objects come back slim, for
    /// [`Engine::conclude`]. Safe to call from several threads.
    pub fn check_batch(&self, objects: Vec<Object>) -> Checked {
        let mut findings = Vec::new();
        let mut paths = Paths::default();
        // Each object is slimmed as soon as it is checked, so its full tree is freed while
        // the findings grow: one stream of 10,000 clusters never holds both whole.
        let kept = objects
            .into_iter()
            .map(|mut o| {
                self.check_objects_sharing(std::slice::from_ref(&o), &mut findings, &mut paths);
                o.slim();
                o
            })
            .collect();
        // Batches wait for the end of the run: the slack of a grown vector would wait too.
        findings.shrink_to_fit();
        Checked { findings, kept }
    }

    /// The end of every run: the whole-run rules over the slim objects of the whole run,
    /// then findings sorted and exact repeats dropped ([`finish`]).
    pub fn conclude(&self, kept: &[Object], findings: &mut Vec<Finding>) {
        self.check_inventory(kept, findings);
        finish(findings);
    }

    /// Runs the per-object rules. Safe to call from several threads on different objects.
    pub fn check_objects(&self, objects: &[Object], out: &mut Vec<Finding>) {
        self.check_objects_sharing(objects, out, &mut Paths::default());
    }

    /// [`Engine::check_objects`], the findings' JSON paths shared through `paths`.
    fn check_objects_sharing(&self, objects: &[Object], out: &mut Vec<Finding>, paths: &mut Paths) {
        let cx = Ctx {
            settings: &self.settings,
        };
        for obj in objects {
            let w = Workload::of(obj);
            // Every rule's findings on this object share one reference to it.
            let mut last = None;
            for (rule, sev) in &self.rules {
                let mut sink = Sink {
                    meta: rule.meta(),
                    severity: *sev,
                    out,
                    last: last.take(),
                    paths: Some(&mut *paths),
                };
                rule.check(&w, &cx, &mut sink);
                last = sink.last;
            }
        }
    }

    /// Runs the whole-run rules over every object of the run. The objects may be slim
    /// ([`Object::slim`]): whole-run rules must not read what slimming drops (container
    /// `image`, cpu and memory `resources`, `env` other than `SLIM_ENV_KEEP`, `securityContext`, `command`, probes, mounts; pod `volumes`, `affinity`,
    /// `tolerations`); the fixture tests run them on slim objects to hold them to that.
    pub fn check_inventory(&self, objects: &[Object], out: &mut Vec<Finding>) {
        let inv = Inventory::new(objects);
        let cx = Ctx {
            settings: &self.settings,
        };
        for (rule, sev) in &self.rules {
            let mut sink = Sink {
                meta: rule.meta(),
                severity: *sev,
                out,
                last: None,
                paths: None,
            };
            rule.check_inventory(&inv, &cx, &mut sink);
        }
        let mut derived = Vec::new();
        for (rule, sev) in &self.rules {
            let mut sink = Sink {
                meta: rule.meta(),
                severity: *sev,
                out: &mut derived,
                last: None,
                paths: None,
            };
            rule.check_findings(&inv, out, &cx, &mut sink);
        }
        out.append(&mut derived);
    }
}

/// What the per-object rules gave for one batch.
#[derive(Debug, Default)]
pub struct Checked {
    pub findings: Vec<Finding>,
    /// The batch's objects, slim ([`Object::slim`]).
    pub kept: Vec<Object>,
}

/// What a run gave: its findings (sorted, suppressed ones kept and marked), the inputs
/// that could not be read, and counts for the summary.
#[derive(Debug, Default)]
pub struct Run {
    pub findings: Vec<Finding>,
    pub errors: Vec<LoadError>,
    /// Inputs read (files, standard input, listings).
    pub inputs: usize,
    pub objects: usize,
    /// Documents that were not Kubernetes objects.
    pub skipped: usize,
    /// The Ray objects of the run (RayCluster, RayJob, RayService, RayCronJob), in input
    /// order, clean ones included: the columns of a scorecard.
    pub ray_objects: Vec<ObjectRef>,
    /// The other objects with findings that concern some of those Ray objects (a Service
    /// selecting a cluster's pods, the RoleBinding of its ServiceAccount, …).
    pub related: Vec<Related>,
}

/// The Ray objects each object with findings concerns ([`crate::relate`]), as indices
/// into the run's `ray_objects` (the Ray objects of `kept`, in order).
fn related(kept: &[Object], findings: &[Finding]) -> Vec<Related> {
    use std::collections::{HashMap, HashSet};
    let with_findings: HashSet<(&str, &str, Option<&str>, &str)> = findings
        .iter()
        .map(|f| {
            let o = &f.object;
            (
                o.api_version.as_str(),
                o.kind.as_str(),
                o.namespace.as_deref(),
                o.name.as_str(),
            )
        })
        .collect();
    let of = |o: &Object| -> bool {
        with_findings.contains(&(
            o.api_version.as_str(),
            o.kind_name.as_str(),
            o.namespace.as_deref(),
            o.name.as_str(),
        ))
    };
    let mut ray_pos = vec![u32::MAX; kept.len()];
    let mut n = 0;
    for (i, o) in kept.iter().enumerate() {
        if o.kind.is_ray() {
            ray_pos[i] = n;
            n += 1;
        }
    }
    let mut out: Vec<Related> = Vec::new();
    let mut seen: HashMap<ObjectRef, usize> = HashMap::new();
    for (i, concerns) in crate::relate::concerned(kept, of) {
        let object = ObjectRef::of(&kept[i]);
        let mut ray: Vec<u32> = concerns.iter().map(|&j| ray_pos[j]).collect();
        // The same object read twice (two files) concerns what both readings concern.
        match seen.get(&object) {
            Some(&at) => out[at].ray_objects.append(&mut ray),
            None => {
                seen.insert(object.clone(), out.len());
                out.push(Related {
                    object,
                    ray_objects: ray,
                });
            }
        }
    }
    for r in &mut out {
        r.ray_objects.sort_unstable();
        r.ray_objects.dedup();
    }
    out
}

/// An object that is not a Ray object, and the Ray objects its findings concern.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Related {
    pub object: ObjectRef,
    /// Indices into [`Run::ray_objects`].
    pub ray_objects: Vec<u32>,
}

/// Sorts findings by file, document, line, column and rule, and drops exact repeats
/// (same rule, place, object and message). Two problems at one place, say two keys in one
/// runtime-env string, stay two findings.
pub fn finish(out: &mut Vec<Finding>) {
    // Unstable (in place): a stable sort's buffer of half the findings was the peak of a
    // large run. The key orders everything a report shows, so equal keys are equal
    // findings and the order stays the same from run to run.
    out.sort_unstable_by(|a, b| {
        (
            &a.file, a.doc, a.line, a.column, a.rule_id, &a.path, &a.message,
        )
            .cmp(&(
                &b.file, b.doc, b.line, b.column, b.rule_id, &b.path, &b.message,
            ))
            .then_with(|| {
                let (x, y) = (&a.object, &b.object);
                (&x.kind, &x.namespace, &x.name, &x.api_version).cmp(&(
                    &y.kind,
                    &y.namespace,
                    &y.name,
                    &y.api_version,
                ))
            })
            .then_with(|| (&a.fix, &a.suppressed).cmp(&(&b.fix, &b.suppressed)))
    });
    out.dedup_by(|a, b| {
        a.rule_id == b.rule_id
            && a.file == b.file
            && a.doc == b.doc
            && a.line == b.line
            && a.column == b.column
            && a.path == b.path
            && a.object == b.object
            && a.message == b.message
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_repeats_are_dropped() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        let file: std::sync::Arc<str> = std::sync::Arc::from("f.yaml");
        let doc = rayward_manifest::load::parse_documents("f.yaml", text, &Default::default())
            .unwrap()
            .remove(0);
        let obj = Object::from_document(&file, 0, doc.root).remove(0);
        let meta = registry::all()[0].meta();
        let mut out = Vec::new();
        let mut sink = Sink::new(meta, &mut out);
        let p = rayward_manifest::JsonPath::root().key("spec");
        let pos = rayward_manifest::Pos { line: 3, col: 1 };
        sink.report(&obj, p.clone(), pos, "first key");
        sink.report(&obj, p.clone(), pos, "second key");
        sink.report(&obj, p, pos, "first key");
        finish(&mut out);
        let msgs: Vec<&str> = out.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs, vec!["first key", "second key"]);
    }

    #[test]
    fn unknown_rules_are_refused() {
        let sel = Selection {
            disable: vec!["RW999".into()],
            ..Selection::default()
        };
        assert_eq!(
            Engine::new(Settings::default(), &sel).err(),
            Some(UnknownRule("RW999".into()))
        );
    }
}
