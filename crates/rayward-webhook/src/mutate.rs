//! `/mutate`: harden's safe fixes as a JSONPatch, and an annotation saying what changed.
//!
//! Only fixes that need no decision of the user are applied (securityContext hardening,
//! head service `ClusterIP`, token auth, RayJob `K8sJobMode`, …: harden's
//! `Options::safe_only()`); anything else stays a finding for `/validate` to report.

use rayward_harden::{harden_object, Options};
use rayward_manifest::emit::to_json;
use rayward_manifest::{load_bytes, Limits, Object};
use serde_json::Value;

/// The annotation listing what `/mutate` changed.
pub const CHANGED_ANNOTATION: &str = "rayward.io/mutated";

/// The safe fixes of one object (`harden_object(.., &Options::safe_only())`): the fixed
/// object as JSON and a description of each change. `raw` is the object as the review
/// carries it, loaded with the audit loader as `/validate` does.
pub fn safe_fixes(raw: &[u8]) -> Result<(Value, Vec<String>), String> {
    let loaded = load_bytes("object", raw, &Limits::default());
    if let Some(e) = loaded.error {
        return Err(e.to_string());
    }
    let [obj] = <[Object; 1]>::try_from(loaded.objects)
        .map_err(|o| format!("expected one Kubernetes object, found {}", o.len()))?;
    let hardened = harden_object(&obj, &Options::safe_only());
    // Each tree is dropped as soon as the next form exists: a review of 1 MB makes trees of
    // tens of MB, and the webhook's memory limit is what admission availability rests on.
    drop(obj);
    let changes = hardened
        .changes
        .iter()
        .map(|c| format!("{} {}: {}", c.rule_id, c.json_path, c.description))
        .collect();
    let json = to_json(&hardened.object.root);
    drop(hardened);
    let fixed =
        serde_json::from_str(&json).map_err(|e| format!("harden's output is not JSON: {e}"))?;
    Ok((fixed, changes))
}

/// The JSONPatch (RFC 6902) turning `object` into its safely fixed form, with the
/// [`CHANGED_ANNOTATION`] added; `None` when nothing changes.
pub fn patch(raw: &[u8], object: &Value) -> Result<Option<json_patch::Patch>, String> {
    let (mut fixed, changes) = safe_fixes(raw)?;
    if changes.is_empty() || fixed == *object {
        return Ok(None);
    }
    annotate(&mut fixed, &changes.join("; "))?;
    Ok(Some(json_patch::diff(object, &fixed)))
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
