//! `/mutate`: harden's safe fixes as a JSONPatch, and an annotation saying what changed.
//!
//! Only fixes that need no decision of the user are applied (securityContext hardening,
//! head service `ClusterIP`, token auth, RayJob `K8sJobMode`, …: harden's
//! `Options::safe_only()`); anything else stays a finding for `/validate` to report.

use rayward_harden::{fix_only, Options};
use rayward_manifest::emit::to_json;
use rayward_manifest::{load_bytes, Limits, Object};
use serde_json::Value;

/// The annotation listing what `/mutate` changed.
pub const CHANGED_ANNOTATION: &str = "rayward.io/mutated";

/// What `/mutate` does with one object.
#[derive(Debug)]
pub enum Mutation {
    /// `rayward.io/ignore: all` (or `*`): the object opts out of mutation too.
    Skipped,
    /// No safe fix applies.
    Unchanged,
    /// The JSONPatch (RFC 6902) to its safely fixed form, [`CHANGED_ANNOTATION`] included.
    Patched(json_patch::Patch),
}

/// The safe fixes of one object (`fix_only(.., &Options::safe_only())`): the fixed
/// object as JSON and a description of each change; `None` when the object opts out.
/// `raw` is the object as the review carries it, loaded with the audit loader as
/// `/validate` does.
pub fn safe_fixes(raw: &[u8]) -> Result<Option<(Value, Vec<String>)>, String> {
    let loaded = load_bytes("object", raw, &Limits::default());
    if let Some(e) = loaded.error {
        return Err(e.to_string());
    }
    let [obj] = <[Object; 1]>::try_from(loaded.objects)
        .map_err(|o| format!("expected one Kubernetes object, found {}", o.len()))?;
    if ignores_all(&obj) {
        return Ok(None);
    }
    // Only the fixes: what is left unfixed is /validate's answer, not /mutate's.
    let (fixed_obj, edits) = fix_only(&obj, &Options::safe_only());
    // Each tree is dropped as soon as the next form exists: a review of 1 MB makes trees of
    // tens of MB, and the webhook's memory limit is what admission availability rests on.
    drop(obj);
    let changes = edits
        .iter()
        .map(|c| format!("{} {}: {}", c.rule_id, c.json_path, c.description))
        .collect();
    let json = to_json(&fixed_obj.root);
    drop(fixed_obj);
    let fixed =
        serde_json::from_str(&json).map_err(|e| format!("harden's output is not JSON: {e}"))?;
    Ok(Some((fixed, changes)))
}

/// `/mutate` on one object. The object's trees are made one after the other (the loader's,
/// its fixed copy, then the two JSON values the patch compares), never all at once.
pub fn patch(raw: &[u8]) -> Result<Mutation, String> {
    let Some((mut fixed, changes)) = safe_fixes(raw)? else {
        return Ok(Mutation::Skipped);
    };
    if changes.is_empty() {
        return Ok(Mutation::Unchanged);
    }
    let object: Value =
        serde_json::from_slice(raw).map_err(|e| format!("cannot read the object: {e}"))?;
    if fixed == object {
        return Ok(Mutation::Unchanged);
    }
    annotate(&mut fixed, &changes.join("; "))?;
    Ok(Mutation::Patched(json_patch::diff(&object, &fixed)))
}

/// `rayward.io/ignore: all` (or `*`) opts an object out of mutation too.
fn ignores_all(obj: &Object) -> bool {
    obj.annotation(rayward_rules::engine::IGNORE_ANNOTATION)
        .is_some_and(|v| {
            rayward_rules::engine::parse_ignore(v)
                .0
                .iter()
                .any(|t| *t == "*" || t.eq_ignore_ascii_case("all"))
        })
}

/// Sets `metadata.annotations[key]`, creating the maps as needed.
fn annotate(obj: &mut Value, text: &str) -> Result<(), String> {
    let meta = obj
        .as_object_mut()
        .ok_or("the object is not a JSON object")?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let annotations = meta
        .as_object_mut()
        .ok_or("`metadata` is not an object")?
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    annotations
        .as_object_mut()
        .ok_or("`metadata.annotations` is not an object")?
        .insert(CHANGED_ANNOTATION.into(), Value::String(text.into()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotation_is_added_where_none_was() {
        let mut o = json!({"kind": "RayCluster", "metadata": {"name": "a"}});
        annotate(&mut o, "x").unwrap();
        assert_eq!(o["metadata"]["annotations"][CHANGED_ANNOTATION], "x");
        let mut bad = json!({"metadata": []});
        assert!(annotate(&mut bad, "x").is_err());
    }

    #[test]
    fn diff_applies_back_to_the_fixed_form() {
        let before = json!({"spec": {"headGroupSpec": {"serviceType": "LoadBalancer"}}});
        let mut after = before.clone();
        after["spec"]["headGroupSpec"]["serviceType"] = json!("ClusterIP");
        annotate(&mut after, "RW110: head service ClusterIP").unwrap();
        let p = json_patch::diff(&before, &after);
        let mut applied = before.clone();
        json_patch::patch(&mut applied, &p).unwrap();
        assert_eq!(applied, after);
    }
}
