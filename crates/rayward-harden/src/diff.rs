//! `--diff`: what harden changed, as a unified diff per object.

use rayward_manifest::emit::to_yaml;
use rayward_manifest::Object;
use similar::TextDiff;

/// A unified diff of one object before and after, with `a/` and `b/` headers naming the
/// file and the object; empty when nothing changed.
pub fn object_diff(before: Option<&Object>, after: &Object) -> String {
    let old = before.map(|o| to_yaml(&o.root)).unwrap_or_default();
    let new = to_yaml(&after.root);
    if old == new {
        return String::new();
    }
    let what = format!("{} ({})", after.file, after.id());
    let a = if before.is_some() {
        format!("a/{what}")
    } else {
        "/dev/null".to_string()
    };
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&a, &format!("b/{what}"))
        .to_string()
}
