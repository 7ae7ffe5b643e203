//! The HTML report's data: one compact JSON document the page's script reads. Findings are
//! columns of small integers (200,000 findings would otherwise be 200,000 objects with
//! repeated keys), and every string (message, JSON path, file, name) is stored once in a
//! string table and named by its index: ten thousand clusters with the same problems share
//! their messages and paths. A message that names its object is stored with U+0001 where
//! the name was (the page puts the name back), so those are shared too. `obj` and `line`
//! are stored as differences from the previous finding's (findings come in file order).

use crate::scorecard::{self, Placement, Scorecard, PRACTICES};
use crate::{InputError, Report, Summary};
use rayward_rules::{registry, ObjectRef, Severity};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// Strings stored once.
#[derive(Default)]
struct Strings {
    index: HashMap<Box<str>, u32>,
}

impl Strings {
    fn of(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.index.len() as u32;
        self.index.insert(s.into(), i);
        i
    }

    fn opt(&mut self, s: Option<&str>) -> i64 {
        s.map_or(-1, |s| i64::from(self.of(s)))
    }

    /// The table, in index order.
    fn list(&self) -> Vec<&str> {
        let mut v = vec![""; self.index.len()];
        for (s, &i) in &self.index {
            v[i as usize] = s;
        }
        v
    }
}

/// Where the page puts a message's object name back.
const NAME_MARK: char = '\u{1}';

/// A message with its object's name replaced by [`NAME_MARK`], when it names it (and does
/// not hold the mark itself, which would then be misread).
fn template<'m>(message: &'m str, name: &str) -> std::borrow::Cow<'m, str> {
    if name.len() >= 3 && message.contains(name) && !message.contains(NAME_MARK) {
        std::borrow::Cow::Owned(message.replace(name, &NAME_MARK.to_string()))
    } else {
        std::borrow::Cow::Borrowed(message)
    }
}

#[derive(Serialize)]
struct PracticeOut {
    label: &'static str,
    sections: &'static [&'static str],
    /// The rules of the practice that ran.
    rules: Vec<&'static str>,
}

#[derive(Serialize)]
struct RuleOut {
    id: &'static str,
    name: &'static str,
    section: &'static str,
    summary: &'static str,
    /// Index into `practices`; -1 for none.
    practice: i64,
    /// The default fix hint (findings with this fix carry -1).
    fix: &'static str,
    /// How `rayward harden` answers the rule, from its declaration: `object` (its fix
    /// rewrites the object), `companion` (an object harden writes beside it), `both`, or
    /// `none`.
    harden: &'static str,
    /// The object harden writes beside the input, when one answers the rule.
    companion: Option<&'static str>,
    /// The fix needs no choice (the webhook applies it too).
    safe: bool,
}

#[derive(Serialize, Default)]
struct ObjectsOut {
    kind: Vec<u32>,
    ns: Vec<i64>,
    name: Vec<u32>,
    /// Scorecard columns (Ray objects) the object's findings count in.
    cols: Vec<Vec<u32>>,
}

#[derive(Serialize, Default)]
struct FilesOut {
    name: Vec<u32>,
    /// A relative link to the file, or -1 (standard input, a live object, a file that is
    /// not there).
    href: Vec<i64>,
}

#[derive(Serialize, Default)]
struct FindingsOut {
    rule: Vec<u32>,
    /// Index into `sev` (0 info … 4 critical).
    sev: Vec<u8>,
    /// The object's index minus the previous finding's.
    obj: Vec<i64>,
    file: Vec<u32>,
    /// The line minus the previous finding's.
    line: Vec<i64>,
    col: Vec<u32>,
    path: Vec<u32>,
    msg: Vec<u32>,
    /// -1: the rule's default fix.
    fix: Vec<i64>,
    /// -1: active; else the suppression's reason.
    sup: Vec<i64>,
}

#[derive(Serialize)]
struct ColumnsOut {
    /// The Ray object of each column (index into `objects`).
    obj: Vec<u32>,
    score: Vec<u32>,
    /// Per column, per practice: -1 not applicable, 0 pass, n findings.
    cells: Vec<Vec<i64>>,
}

#[derive(Serialize)]
struct NsOut {
    /// Index into the string table; -1 for objects without a namespace.
    ns: i64,
    members: Vec<u32>,
    cells: Vec<i64>,
    score: Option<u32>,
}

#[derive(Serialize)]
struct OtherOut {
    ns: i64,
    /// Per practice, findings on objects of the namespace that concern no Ray object.
    cells: Vec<u32>,
}

#[derive(Serialize)]
struct Data<'a> {
    v: u32,
    tool: &'static str,
    version: &'static str,
    cluster: Option<&'a str>,
    summary: &'a Summary,
    sev: [&'static str; 5],
    practices: Vec<PracticeOut>,
    rules: Vec<RuleOut>,
    s: Vec<&'a str>,
    objects: ObjectsOut,
    files: FilesOut,
    columns: ColumnsOut,
    namespaces: Vec<NsOut>,
    other: Vec<OtherOut>,
    f: FindingsOut,
    errors: &'a [InputError],
}

fn sev_index(s: Severity) -> u8 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

/// A relative link from the page to a file named as the run named it: `./…` or `../…`,
/// every byte outside a small safe set percent-encoded (so no name can become a scheme,
/// a query or markup). `None` when there is no file to link to.
pub(crate) fn file_href(file: &str, links: Option<&crate::Links>) -> Option<String> {
    if file.contains("://") || file.is_empty() || file == "-" {
        return None;
    }
    let (cwd, out_dir) = match links {
        Some(l) => (l.cwd.clone(), l.out_dir.clone()),
        None => {
            let cwd = std::env::current_dir().ok()?;
            (cwd.clone(), cwd)
        }
    };
    let abs = normalize(&cwd.join(file));
    if !abs.is_file() {
        return None;
    }
    let rel = relative(&abs, &normalize(&out_dir))?;
    let mut href = String::new();
    if !rel.starts_with("../") {
        href.push_str("./");
    }
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            href.push(b as char);
        } else {
            href.push_str(&format!("%{b:02X}"));
        }
    }
    Some(href)
}

/// `.` and `..` resolved without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `to` relative to the directory `from`, with `/` separators; `None` when that cannot
/// be said (another drive, a name that is not UTF-8).
fn relative(to: &Path, from: &Path) -> Option<String> {
    let t: Vec<_> = to.components().collect();
    let f: Vec<_> = from.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    for c in &t[common..] {
        parts.push(c.as_os_str().to_str()?.to_string());
    }
    Some(parts.join("/"))
}

/// Writes the data document (JSON) to `out`.
pub(crate) fn write(
    r: &Report,
    card: &Scorecard,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut s = Strings::default();
    let all = registry::all();
    let mut rule_index: HashMap<&str, u32> = all
        .iter()
        .enumerate()
        .map(|(i, x)| (x.meta().id, i as u32))
        .collect();
    let mut rules: Vec<RuleOut> = all
        .iter()
        .map(|x| {
            let m = x.meta();
            let fixer = x.fixer();
            RuleOut {
                id: m.id,
                name: m.name,
                section: m.section,
                summary: m.summary,
                practice: scorecard::practice_of(m.section).map_or(-1, |p| p as i64),
                fix: m.fix,
                harden: match (fixer.is_some(), m.companion.is_some()) {
                    (true, true) => "both",
                    (true, false) => "object",
                    (false, true) => "companion",
                    (false, false) => "none",
                },
                companion: m.companion,
                safe: fixer.is_some_and(|f| f.safe()),
            }
        })
        .collect();
    // Findings of checks outside the catalog (`rayward probe`'s) name their own rule.
    for x in &r.findings {
        if !rule_index.contains_key(x.rule_id) {
            rule_index.insert(x.rule_id, rules.len() as u32);
            rules.push(RuleOut {
                id: x.rule_id,
                name: x.rule_name,
                section: x.section,
                summary: "",
                practice: scorecard::practice_of(x.section).map_or(-1, |p| p as i64),
                fix: "",
                harden: "none",
                companion: None,
                safe: false,
            });
        }
    }
    let practices = PRACTICES
        .iter()
        .zip(&card.rules)
        .map(|(p, rules)| PracticeOut {
            label: p.label,
            sections: p.sections,
            rules: rules.clone(),
        })
        .collect();

    // Objects: the Ray objects first, in column order, then those of the findings.
    let place = Placement::new(r);
    let mut objects = ObjectsOut::default();
    let mut obj_index: HashMap<&ObjectRef, u32> = HashMap::new();
    for o in &r.ray_objects {
        if obj_index.contains_key(o) {
            continue;
        }
        let i = objects.kind.len() as u32;
        objects.kind.push(s.of(&o.kind));
        objects.ns.push(s.opt(o.namespace.as_deref()));
        objects.name.push(s.of(&o.name));
        objects.cols.push(place.columns(o).to_vec());
        obj_index.insert(o, i);
    }
    let mut f = FindingsOut::default();
    let mut files = FilesOut::default();
    let mut file_names: Vec<&str> = Vec::new();
    let mut file_index: HashMap<&str, u32> = HashMap::new();
    let mut last_obj: Option<(*const ObjectRef, u32)> = None;
    let (mut prev_obj, mut prev_line) = (0i64, 0i64);
    for x in &r.findings {
        let ptr: *const ObjectRef = &*x.object;
        let oi = match last_obj {
            Some((p, i)) if p == ptr => i,
            _ => {
                let o: &ObjectRef = &x.object;
                let i = match obj_index.get(o) {
                    Some(&i) => i,
                    None => {
                        let i = objects.kind.len() as u32;
                        objects.kind.push(s.of(&o.kind));
                        objects.ns.push(s.opt(o.namespace.as_deref()));
                        objects.name.push(s.of(&o.name));
                        objects.cols.push(place.columns(o).to_vec());
                        obj_index.insert(o, i);
                        i
                    }
                };
                last_obj = Some((ptr, i));
                i
            }
        };
        let fi = match file_index.get(&*x.file) {
            Some(&i) => i,
            None => {
                let i = files.name.len() as u32;
                files.name.push(s.of(&x.file));
                file_names.push(&x.file);
                files.href.push(-1);
                file_index.insert(&x.file, i);
                i
            }
        };
        let ri = rule_index.get(x.rule_id).copied().unwrap_or(0);
        f.rule.push(ri);
        f.sev.push(sev_index(x.severity));
        f.obj.push(i64::from(oi) - prev_obj);
        prev_obj = i64::from(oi);
        f.file.push(fi);
        f.line.push(i64::from(x.line) - prev_line);
        prev_line = i64::from(x.line);
        f.col.push(x.column);
        f.path.push(s.of(&x.path));
        f.msg.push(s.of(&template(&x.message, &x.object.name)));
        f.fix.push(if *x.fix == *rules[ri as usize].fix {
            -1
        } else {
            i64::from(s.of(&x.fix))
        });
        f.sup.push(s.opt(x.suppressed.as_deref()));
    }
    // Links, once per file (the hrefs are owned strings, kept apart from the table).
    let hrefs: Vec<Option<String>> = file_names
        .iter()
        .map(|name| file_href(name, r.links.as_ref()))
        .collect();
    let columns = ColumnsOut {
        obj: r.ray_objects.iter().map(|o| obj_index[o]).collect(),
        score: card.scores.clone(),
        cells: card
            .columns
            .iter()
            .map(|c| c.iter().map(|x| x.code()).collect())
            .collect(),
    };
    let namespaces = card
        .namespaces
        .iter()
        .map(|n| NsOut {
            ns: s.opt(n.namespace.as_deref()),
            members: n.members.clone(),
            cells: n.cells.iter().map(|x| x.code()).collect(),
            score: n.score,
        })
        .collect();
    let other = card
        .other
        .iter()
        .map(|(ns, cells)| OtherOut {
            ns: s.opt(ns.as_deref()),
            cells: cells.clone(),
        })
        .collect();
    let mut list: Vec<&str> = s.list();
    for (i, h) in hrefs.iter().enumerate() {
        if let Some(h) = h {
            files.href[i] = list.len() as i64;
            list.push(h.as_str());
        }
    }
    let data = Data {
        v: 1,
        tool: r.tool,
        version: r.version,
        cluster: r.summary.cluster.as_deref(),
        summary: &r.summary,
        sev: Severity::ALL.map(Severity::as_str),
        practices,
        rules,
        s: list,
        objects,
        files,
        columns,
        namespaces,
        other,
        f,
        errors: &r.errors,
    };
    serde_json::to_writer(out, &data).map_err(std::io::Error::other)
}
