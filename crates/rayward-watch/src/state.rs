//! What the watch holds: every object slim, with its per-object findings, and the
//! findings of the last whole run, grouped by object.

use crate::events::{Active, Details, Target};
use crate::metrics::FindingLabels;
use crate::ActiveSet;
use rayward_manifest::Object;
use rayward_rules::{Engine, Finding, Severity};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Default)]
pub(crate) struct State {
    objects: Vec<Object>,
    index: HashMap<String, usize>,
    targets: HashMap<String, Target>,
    per_object: HashMap<String, Vec<Finding>>,
    /// The whole-run findings, by the object they name (`Finding::file`).
    whole: HashMap<Arc<str>, Vec<Finding>>,
    dirty: bool,
    /// The findings that deserve an Event, and a counter that moves when they change.
    active: ActiveSet,
    generation: u64,
}

impl State {
    pub(crate) fn apply(
        &mut self,
        name: String,
        kept: Option<Object>,
        target: Option<Target>,
        findings: Vec<Finding>,
    ) {
        match (self.index.get(&name).copied(), kept) {
            (Some(i), Some(o)) => self.objects[i] = o,
            (None, Some(o)) => {
                self.index.insert(name.clone(), self.objects.len());
                self.objects.push(o);
            }
            (Some(_), None) | (None, None) => self.remove(&name),
        }
        if let Some(t) = target {
            self.targets.insert(name.clone(), t);
        }
        self.per_object.insert(name, findings);
        self.dirty = true;
    }

    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            self.objects.swap_remove(i);
            if let Some(moved) = self.objects.get(i) {
                self.index.insert(moved.file.to_string(), i);
            }
        }
        self.per_object.remove(name);
        self.targets.remove(name);
        self.dirty = true;
    }

    /// The uid of a kept object.
    pub(crate) fn uid(&self, name: &str) -> Option<&str> {
        self.targets.get(name).map(|t| t.uid.as_str())
    }

    pub(crate) fn active(&self) -> (u64, ActiveSet) {
        (self.generation, self.active.clone())
    }

    /// What the Event of one object and rule says now (`None` once it is fixed or gone).
    pub(crate) fn details(&self, a: &Active) -> Option<Details> {
        let target = self.targets.get(&*a.object)?;
        let own = self.per_object.get(&*a.object).into_iter().flatten();
        let whole = self.whole.get(&a.object).into_iter().flatten();
        crate::details_of(target, a, &mut own.chain(whole))
    }

    /// Runs the whole-run rules over every kept object if anything changed since the last
    /// time; returns the active findings counted by namespace, rule and severity, and
    /// keeps those from `event_floor` up as the Event set.
    pub(crate) fn conclude(
        &mut self,
        engine: &Engine,
        event_floor: Option<Severity>,
    ) -> Option<BTreeMap<FindingLabels, i64>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        // The whole-run rules see the per-object findings too (a stale pod is judged by
        // what its owner's rules found); what they add is the tail. The per-object
        // findings are moved out and back, not copied: 200,000 findings are not cloned on
        // every change. (A HashMap visits its values in the same order while unchanged.)
        let mut all: Vec<Finding> = Vec::new();
        let mut lens = Vec::with_capacity(self.per_object.len());
        for v in self.per_object.values_mut() {
            lens.push(v.len());
            all.append(v);
        }
        let before = all.len();
        engine.check_inventory(&self.objects, &mut all);
        let mut whole: HashMap<Arc<str>, Vec<Finding>> = HashMap::new();
        for f in all.split_off(before) {
            whole.entry(f.file.clone()).or_default().push(f);
        }
        self.whole = whole;
        let mut rest = all.into_iter();
        for (v, n) in self.per_object.values_mut().zip(lens) {
            v.extend(rest.by_ref().take(n));
        }
        let mut counts: BTreeMap<FindingLabels, i64> = BTreeMap::new();
        let mut active = BTreeSet::new();
        for f in self
            .per_object
            .values()
            .flatten()
            .chain(self.whole.values().flatten())
            .filter(|f| f.suppressed.is_none())
        {
            let key = FindingLabels {
                namespace: f.object.namespace.clone().unwrap_or_default(),
                rule: f.rule_id.to_string(),
                severity: f.severity.to_string(),
            };
            *counts.entry(key).or_default() += 1;
            if event_floor.is_some_and(|floor| f.severity >= floor) {
                active.insert(Active {
                    severity: std::cmp::Reverse(f.severity),
                    object: f.file.clone(),
                    rule: f.rule_id,
                });
            }
        }
        if *self.active != active {
            self.active = Arc::new(active);
            self.generation += 1;
        }
        Some(counts)
    }
}
