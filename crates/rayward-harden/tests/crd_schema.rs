//! Harden's output is valid KubeRay: every hardened Ray object of the corpus, reloaded
//! from the emitted YAML, has only fields the real CRD schemas in
//! `../shared/corpus/kuberay-crds/` know, with the types and enum values they declare.
//! (A full JSON-schema validation and a server-side dry run live in the e2e tests; this
//! catches a misspelt or misplaced field at unit-test speed.)

use rayward_harden::{harden_bundle, Options};
use rayward_manifest::emit::to_yaml;
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, Node, Object, Value};
use std::collections::HashMap;
use std::path::Path;

fn crd_schemas() -> HashMap<String, Node> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/kuberay-crds/ray-operator/config/crd/bases");
    assert!(dir.is_dir(), "{}", dir.display());
    let mut out = HashMap::new();
    for f in expand_paths(&[dir]).0 {
        let l = load_file(&f, &Limits::default());
        for o in l.objects {
            let kind = o
                .root
                .path(&["spec", "names", "kind"])
                .and_then(Node::as_str)
                .unwrap()
                .to_string();
            for v in o.root.path(&["spec", "versions"]).unwrap().as_seq() {
                if v.get("name").and_then(Node::as_str) == Some("v1") {
                    let s = v.path(&["schema", "openAPIV3Schema"]).unwrap().clone();
                    out.insert(kind.clone(), s);
                }
            }
        }
    }
    assert_eq!(out.len(), 4, "RayCluster, RayJob, RayService, RayCronJob");
    out
}

fn check(node: &Node, schema: &Node, path: &str, errors: &mut Vec<String>) {
    if node.is_null() {
        return;
    }
    let flag = |k: &str| schema.get(k).and_then(Node::as_bool) == Some(true);
    if flag("x-kubernetes-int-or-string") {
        if !matches!(node.value, Value::Scalar { .. }) {
            errors.push(format!("{path}: not an int or string"));
        }
        return;
    }
    let ty = schema.get("type").and_then(Node::as_str);
    match (ty, &node.value) {
        (Some("object") | None, Value::Map(entries)) => {
            let props = schema.get("properties");
            let extra = schema.get("additionalProperties").filter(|n| n.is_map());
            for (k, v) in entries {
                let Some(key) = k.as_str() else { continue };
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                match props.and_then(|ps| ps.get(key)).or(extra) {
                    Some(s) => check(v, s, &p, errors),
                    None if flag("x-kubernetes-preserve-unknown-fields") => {}
                    // `metadata`: an object the API server checks on its own.
                    None if props.is_none() => {}
                    None => errors.push(format!("{p}: unknown field")),
                }
            }
        }
        (Some("array"), Value::Seq(items)) => {
            if let Some(s) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    check(it, s, &format!("{path}[{i}]"), errors);
                }
            }
        }
        (Some("string"), Value::Scalar { .. }) => {
            if node.as_bool().is_some() || node.as_i64().is_some() {
                errors.push(format!(
                    "{path}: a string is expected, found {:?}",
                    node.scalar_text()
                ));
            }
            if let Some(en) = schema.get("enum") {
                let ok = en.as_seq().iter().any(|e| e.as_str() == node.as_str());
                if !ok {
                    errors.push(format!(
                        "{path}: {:?} is not one of the enum",
                        node.as_str()
                    ));
                }
            }
        }
        (Some("integer"), Value::Scalar { .. }) if node.as_i64().is_some() => {}
        (Some("number"), Value::Scalar { plain: true, text }) if text.parse::<f64>().is_ok() => {}
        (Some("boolean"), Value::Scalar { .. }) if node.as_bool().is_some() => {}
        (None, _) => {}
        (Some(t), _) => errors.push(format!("{path}: not of type {t}: {}", to_yaml(node).trim())),
    }
}

#[test]
fn hardened_corpus_objects_fit_the_kuberay_crds() {
    let schemas = crd_schemas();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    let mut objects: Vec<Object> = Vec::new();
    for f in expand_paths(&[corpus]).0 {
        objects.extend(
            load_file(&f, &Limits::default())
                .objects
                .into_iter()
                .filter(|o| o.kind.is_ray()),
        );
    }
    let mut opts = Options::default();
    opts.fix.namespace = Some("ray-test".into());
    // With the history collector too: its container, volumes and lifecycle fit the CRDs.
    opts.history = Some(
        rayward_harden::history::History::new("s3://ray-history/prod", Some("history-store"))
            .unwrap(),
    );
    let mut errors = Vec::new();
    let mut before = Vec::new();
    for x in &objects {
        // The input's own problems are not harden's: note them to leave them out.
        let mut e = Vec::new();
        check(&x.root, &schemas[&x.kind_name], "", &mut e);
        before.extend(e.into_iter().map(|m| format!("{}: {m}", x.id())));
    }
    let b = harden_bundle(&objects, &opts);
    for f in &b.files {
        let text = to_yaml(&f.objects[0].root);
        let back = load_bytes("out.yaml", text.as_bytes(), &Limits::default());
        let o = &back.objects[0];
        let mut e = Vec::new();
        check(&o.root, &schemas[&o.kind_name], "", &mut e);
        for m in e {
            let m = format!("{}: {m}", o.id().replace("/ray-test/", "/"));
            if !before.iter().any(|b| b.replace("/ray-test/", "/") == m) {
                errors.push(format!("{} {m}", f.file));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(b.files.iter().map(|f| f.objects.len()).sum::<usize>(), 116);
}

#[test]
fn the_schema_check_catches_wrong_fields() {
    let schemas = crd_schemas();
    let text = "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: x}\nspec:\n  authOptions: {mode: tokn}\n  enableInTreeAutoscaling: 'true'\n  headGroupSpec:\n    serviceTyp: ClusterIP\n    rayStartParams: {}\n    template:\n      spec:\n        containers:\n        - name: h\n          securityContext: {runAsUser: x}\n";
    let o = &load_bytes("t.yaml", text.as_bytes(), &Limits::default()).objects[0];
    let mut e = Vec::new();
    check(&o.root, &schemas["RayCluster"], "", &mut e);
    let joined = e.join("\n");
    for want in [
        "spec.authOptions.mode",
        "spec.enableInTreeAutoscaling",
        "spec.headGroupSpec.serviceTyp: unknown field",
        "securityContext.runAsUser",
    ] {
        assert!(joined.contains(want), "{want} not caught:\n{joined}");
    }
}
