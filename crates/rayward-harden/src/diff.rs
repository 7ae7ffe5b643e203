//! `--diff`: what harden changed, as a unified diff per object.

use rayward_manifest::emit::to_yaml;
use rayward_manifest::Object;
use similar::{Algorithm, TextDiff};
use std::time::{Duration, Instant};

/// A unified diff of one object before and after, with `a/` and `b/` headers naming the
/// file and the object; empty when nothing changed.
pub fn object_diff(before: Option<&Object>, after: &Object) -> String {
    let mut out = Vec::new();
    write_object_diff(&mut out, before, after).expect("writing to memory does not fail");
    String::from_utf8(out).expect("the diff of two YAML texts is UTF-8")
}

/// [`object_diff`] written to `w` as it is made: the diff of a large object is never held
/// whole beside the object's two texts.
pub fn write_object_diff(
    w: &mut dyn std::io::Write,
    before: Option<&Object>,
    after: &Object,
) -> std::io::Result<()> {
    let old = before.map(|o| to_yaml(&o.root)).unwrap_or_default();
    let new = to_yaml(&after.root);
    if old == new {
        return Ok(());
    }
    // The header names the file and the object, both from the input: escaped for the
    // terminal (the YAML below quotes control characters itself).
    let what = rayward_manifest::terminal::escape(&format!("{} ({})", after.file, after.id()))
        .into_owned();
    let a = if before.is_some() {
        format!("a/{what}")
    } else {
        "/dev/null".to_string()
    };
    // Patience anchors on lines that occur once on both sides (a worker group's
    // `groupName`, a container's `name`), so each group diffs on its own: Myers over the
    // whole object was quadratic in worker groups (1,000 groups took 8 s, 3,000 took 75 s).
    // The deadline bounds what is left: past it the diff is still correct, only coarser.
    TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .deadline(Instant::now() + Duration::from_secs(2))
        .diff_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&a, &format!("b/{what}"))
        .to_writer(w)
}
