//! Validation of Ray objects against the real KubeRay CRD schemas
//! (`shared/corpus/kuberay-crds/`), offline, with a JSON-schema validator.
//!
//! A CRD's `openAPIV3Schema` is OpenAPI 3.0 with Kubernetes extensions, close to JSON Schema
//! draft 4. [`to_json_schema`] turns it into plain draft 4 the way the API server reads it:
//! - `nullable: true` also admits `null`;
//! - `x-kubernetes-int-or-string: true` admits an integer or a string (the generated schemas
//!   also carry the matching `anyOf`);
//! - a schema with `properties` but neither `additionalProperties` nor
//!   `x-kubernetes-preserve-unknown-fields` rejects other fields — the API server would
//!   prune them silently (and refuse them with strict field validation, kubectl's default),
//!   so a generated manifest carrying one has a misspelt or misplaced field;
//! - a property with a `default` is not `required`: the API server defaults before it
//!   validates (KubeRay's `minReplicas`/`maxReplicas` are both);
//! - `null` values are dropped before validation ([`prune_nulls`]): the API server prunes
//!   nulls of non-nullable fields before defaulting (a bare `metadata:` in YAML);
//! - `x-kubernetes-validations` (CEL) and the list/map-type hints are ignored: they need a
//!   CEL engine or an existing object. Formats (`int32`, `date-time`) are annotations only,
//!   as in the API server for the formats KubeRay uses.

use crate::yaml::{load_manifests, Manifest};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The corpus of KubeRay CRDs beside the repository (`../shared/corpus/kuberay-crds`).
pub fn corpus_crds_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/kuberay-crds/ray-operator/config/crd/bases");
    assert!(
        p.is_dir(),
        "the shared corpus must sit at ../shared beside the repository: {}",
        p.display()
    );
    p
}

/// Compiled schemas by (`apiVersion`, `kind`), e.g. (`ray.io/v1`, `RayCluster`).
pub struct CrdSchemas {
    schemas: BTreeMap<(String, String), jsonschema::Validator>,
}

impl CrdSchemas {
    /// Loads every CRD (`*.yaml`) of `dir`, every served version of each.
    pub fn load(dir: &Path) -> Result<CrdSchemas, String> {
        let mut schemas = BTreeMap::new();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            for crd in load_manifests(&f)?
                .into_iter()
                .filter(|m| m.kind == "CustomResourceDefinition")
            {
                let spec = &crd.value["spec"];
                let (Some(group), Some(kind)) =
                    (spec["group"].as_str(), spec["names"]["kind"].as_str())
                else {
                    return Err(format!("{}: no spec.group or spec.names.kind", crd.id()));
                };
                for v in spec["versions"].as_array().into_iter().flatten() {
                    let (Some(version), Some(schema)) =
                        (v["name"].as_str(), v.pointer("/schema/openAPIV3Schema"))
                    else {
                        continue;
                    };
                    let validator = jsonschema::draft4::new(&to_json_schema(schema))
                        .map_err(|e| format!("{} {version}: schema: {e}", crd.id()))?;
                    schemas.insert((format!("{group}/{version}"), kind.to_string()), validator);
                }
            }
        }
        if schemas.is_empty() {
            return Err(format!("{}: no CustomResourceDefinition", dir.display()));
        }
        Ok(CrdSchemas { schemas })
    }

    /// The KubeRay CRDs of the shared corpus.
    pub fn kuberay() -> CrdSchemas {
        CrdSchemas::load(&corpus_crds_dir()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The (`apiVersion`, `kind`) pairs known.
    pub fn kinds(&self) -> impl Iterator<Item = &(String, String)> {
        self.schemas.keys()
    }

    /// Validates one object; `Err` lists every violation as `json/pointer: message`. An
    /// object whose `apiVersion`/`kind` has no schema is an error too.
    pub fn validate(&self, obj: &Value) -> Result<(), Vec<String>> {
        let api = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let Some(v) = self.schemas.get(&(api.to_string(), kind.to_string())) else {
            return Err(vec![format!("no CRD schema for {api} {kind}")]);
        };
        let obj = prune_nulls(obj);
        let errors: Vec<String> = v
            .iter_errors(&obj)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`validate`](Self::validate) with the object's `file:line Kind/name` in each message.
    pub fn validate_manifest(&self, m: &Manifest) -> Result<(), Vec<String>> {
        self.validate(&m.value)
            .map_err(|es| es.into_iter().map(|e| format!("{}: {e}", m.id())).collect())
    }
}

/// Every violation of every Ray object (RayCluster, RayJob, RayService, RayCronJob) of
/// `manifests`; other kinds are not looked at.
pub fn validate_ray_objects(schemas: &CrdSchemas, manifests: &[Manifest]) -> Vec<String> {
    manifests
        .iter()
        .filter(|m| m.is_ray())
        .filter_map(|m| schemas.validate_manifest(m).err())
        .flatten()
        .collect()
}

/// `v` without the `null` values of its mappings, at any depth.
pub fn prune_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), prune_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(prune_nulls).collect()),
        _ => v.clone(),
    }
}

/// OpenAPI v3 structural schema (as in a CRD) → JSON Schema draft 4; see the module docs.
pub fn to_json_schema(s: &Value) -> Value {
    let Some(obj) = s.as_object() else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                let props = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(n, p)| (n.clone(), to_json_schema(p)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" if v.is_object() => {
                out.insert(k.clone(), to_json_schema(v));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(to_json_schema)
                    .collect();
                out.insert(k.clone(), Value::Array(list));
            }
            // Kubernetes extensions, `nullable` and OpenAPI-only annotations: handled below
            // or not part of validation here.
            k if k.starts_with("x-kubernetes-") => {}
            "nullable" | "example" | "externalDocs" | "discriminator" | "readOnly"
            | "writeOnly" | "xml" | "deprecated" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let flag = |name: &str| obj.get(name).and_then(Value::as_bool).unwrap_or(false);
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        out.entry("anyOf")
            .or_insert_with(|| json!([{"type": "integer"}, {"type": "string"}]));
    }
    if flag("nullable") {
        if let Some(Value::String(t)) = out.get("type") {
            let t = t.clone();
            out.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(e)) = out.get_mut("enum") {
            if !e.contains(&Value::Null) {
                e.push(Value::Null);
            }
        }
        if out.contains_key("anyOf") || out.contains_key("oneOf") || out.contains_key("allOf") {
            // A null must also get past the combinators.
            let inner = Value::Object(std::mem::take(&mut out));
            out.insert("anyOf".into(), json!([{"type": "null"}, inner]));
        }
    }
    let defaulted: Vec<String> = obj
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, s)| s.get("default").is_some())
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(req)) = out.get_mut("required") {
        req.retain(|r| !r.as_str().is_some_and(|r| defaulted.iter().any(|d| d == r)));
        if req.is_empty() {
            out.remove("required");
        }
    }
    if out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_string_and_nullable() {
        let s = to_json_schema(&json!({
            "type": "object",
            "properties": {
                "q": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "n": {"type": "string", "nullable": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}}
            }
        }));
        let v = jsonschema::draft4::new(&s).unwrap();
        assert!(v.is_valid(&json!({"q": 1, "n": null, "free": {"b": 1}})));
        assert!(v.is_valid(&json!({"q": "1Gi", "n": "x"})));
        assert!(!v.is_valid(&json!({"q": true})));
        assert!(!v.is_valid(&json!({"n": 1})));
        assert!(!v.is_valid(&json!({"unknown": 1})), "unknown field refused");
        assert!(
            !v.is_valid(&json!({"free": {"a": 1}})),
            "known fields still typed"
        );
    }
}
