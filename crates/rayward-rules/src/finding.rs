//! Findings and the sink rules write them to.

use crate::meta::{RuleMeta, Severity};
use rayward_manifest::{JsonPath, Object, Pos};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// The object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The reference to an object.
    pub fn of(obj: &Object) -> ObjectRef {
        ObjectRef {
            api_version: obj.api_version.clone(),
            kind: obj.kind_name.clone(),
            namespace: obj.namespace.clone(),
            name: obj.name.clone(),
        }
    }

    /// Whether this is the reference to `obj`.
    fn names(&self, obj: &Object) -> bool {
        self.name == obj.name
            && self.kind == obj.kind_name
            && self.namespace == obj.namespace
            && self.api_version == obj.api_version
    }

    /// `kind/namespace/name` or `kind/name`.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// One reported problem.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub severity: Severity,
    /// The guide's section.
    pub section: &'static str,
    pub object: Arc<ObjectRef>,
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    /// JSON path inside the object; one shared copy per distinct path of a batch (the
    /// same few hundred paths recur across thousands of clusters).
    pub path: Arc<str>,
    pub message: String,
    /// The fix hint; most are the rule's static default, so no copy is made per finding.
    pub fix: Cow<'static, str>,
    /// Set when an annotation or the config suppressed the finding: the reason given
    /// (empty when none was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// Document index in the file, and path of the object in it (`items[3]` for lists).
    #[serde(skip)]
    pub doc: usize,
}

/// Where a rule writes its findings; it stamps each with the rule's identity.
pub struct Sink<'a> {
    pub(crate) meta: &'static RuleMeta,
    pub(crate) severity: Severity,
    pub(crate) out: &'a mut Vec<Finding>,
    /// The last object reported on: the findings of one object share one `ObjectRef`
    /// (200,000 findings would otherwise hold 800,000 small strings).
    pub(crate) last: Option<Arc<ObjectRef>>,
    /// Where the JSON paths of a batch are shared, when the engine runs the rules.
    pub(crate) paths: Option<&'a mut Paths>,
}

/// The JSON paths of a batch of findings, one copy each.
#[derive(Debug, Default)]
pub struct Paths(std::collections::HashSet<Arc<str>>);

impl Paths {
    /// The shared copy of `path`.
    pub fn get(&mut self, path: &str) -> Arc<str> {
        if let Some(p) = self.0.get(path) {
            return p.clone();
        }
        let p: Arc<str> = Arc::from(path);
        self.0.insert(p.clone());
        p
    }
}

impl<'a> Sink<'a> {
    /// A sink for tests and for callers that run one rule by hand.
    pub fn new(meta: &'static RuleMeta, out: &'a mut Vec<Finding>) -> Sink<'a> {
        Sink {
            meta,
            severity: meta.severity,
            out,
            last: None,
            paths: None,
        }
    }

    /// The shared reference to `obj`, made once per object. Matched by what it names, not
    /// by address: a rule may report on a temporary object (a decoded embedded document)
    /// whose address a later one reuses.
    fn object_ref(&mut self, obj: &Object) -> Arc<ObjectRef> {
        match &self.last {
            Some(r) if r.names(obj) => r.clone(),
            _ => {
                let r = Arc::new(ObjectRef::of(obj));
                self.last = Some(r.clone());
                r
            }
        }
    }

    /// Reports a finding with the rule's default fix hint.
    pub fn report(&mut self, obj: &Object, path: JsonPath, pos: Pos, message: impl Into<String>) {
        self.report_fix(obj, path, pos, message, self.meta.fix);
    }

    /// Reports a finding with a fix hint of its own.
    pub fn report_fix(
        &mut self,
        obj: &Object,
        path: JsonPath,
        pos: Pos,
        message: impl Into<String>,
        fix: impl Into<Cow<'static, str>>,
    ) {
        let object = self.object_ref(obj);
        // Findings are kept until the run ends (200,000 of them on a large cluster): their
        // texts are stored at their length, without the slack `format!` leaves.
        let mut message: String = message.into();
        message.shrink_to_fit();
        self.out.push(Finding {
            rule_id: self.meta.id,
            rule_name: self.meta.name,
            severity: self.severity,
            section: self.meta.section,
            object,
            file: obj.file.clone(),
            line: pos.line,
            column: pos.col,
            path: match self.paths.as_deref_mut() {
                Some(paths) => paths.get(path.as_str()),
                None => Arc::from(path.as_str()),
            },
            message,
            fix: fix.into(),
            suppressed: crate::suppress::suppression(obj, self.meta.id, self.meta.name),
            doc: obj.doc,
        });
    }
}

/// Where a finding about an object as a whole points: its `metadata.name`, else its start.
pub fn object_pos(obj: &Object) -> Pos {
    obj.root
        .path(&["metadata", "name"])
        .map_or(obj.root.pos, |n| n.pos)
}
