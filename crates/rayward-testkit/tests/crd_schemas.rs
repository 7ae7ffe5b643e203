//! The CRD-schema validator against the real KubeRay CRDs: every Ray object of the corpus
//! validates as it is, and objects broken on purpose do not.

use rayward_testkit::crd::CrdSchemas;
use rayward_testkit::yaml::{corpus_ray_objects, Manifest};
use serde_json::json;
use std::sync::OnceLock;

fn schemas() -> &'static CrdSchemas {
    static S: OnceLock<CrdSchemas> = OnceLock::new();
    S.get_or_init(CrdSchemas::kuberay)
}

fn a_raycluster() -> Manifest {
    corpus_ray_objects()
        .into_iter()
        .find(|m| m.kind == "RayCluster" && m.file.ends_with("ray-cluster.sample.yaml"))
        .expect("the corpus has ray-cluster.sample.yaml")
}

#[test]
fn knows_the_four_ray_kinds_in_v1() {
    let kinds: Vec<_> = schemas()
        .kinds()
        .filter(|(api, _)| api == "ray.io/v1")
        .map(|(_, k)| k.as_str())
        .collect();
    assert_eq!(kinds, ["RayCluster", "RayCronJob", "RayJob", "RayService"]);
}

#[test]
fn every_corpus_ray_object_validates() {
    let objects = corpus_ray_objects();
    assert_eq!(objects.len(), 116, "the corpus's Ray objects (INDEX.md)");
    let errors: Vec<String> = objects
        .iter()
        .filter_map(|m| schemas().validate_manifest(m).err())
        .flatten()
        .collect();
    assert!(
        errors.is_empty(),
        "{} violations:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// A way to break a valid object, applied in place.
type Breakage = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn a_broken_object_does_not_validate() {
    let base = a_raycluster().value;
    assert_eq!(schemas().validate(&base), Ok(()));

    let cases: Vec<(&str, Breakage, &str)> = vec![
        (
            "misspelt field",
            Box::new(|v| v["spec"]["headGroupSpec"]["serviceTyp"] = json!("ClusterIP")),
            "serviceTyp",
        ),
        (
            "string where an integer belongs",
            Box::new(|v| v["spec"]["workerGroupSpecs"][0]["replicas"] = json!("two")),
            "/spec/workerGroupSpecs/0/replicas",
        ),
        (
            "required field missing",
            Box::new(|v| {
                v["spec"]["headGroupSpec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("template");
            }),
            "template",
        ),
        (
            "container without a name",
            Box::new(|v| {
                v["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
            "name",
        ),
        (
            "runAsNonRoot as a string",
            Box::new(|v| {
                v["spec"]["headGroupSpec"]["template"]["spec"]["securityContext"] =
                    json!({"runAsNonRoot": "true"})
            }),
            "/spec/headGroupSpec/template/spec/securityContext/runAsNonRoot",
        ),
    ];
    for (what, break_it, expect) in cases {
        let mut v = base.clone();
        break_it(&mut v);
        let errors = schemas().validate(&v).expect_err(what);
        assert!(
            errors.iter().any(|e| e.contains(expect)),
            "{what}: expected a violation mentioning {expect}: {errors:?}"
        );
    }
}

#[test]
fn unknown_kind_or_version_is_an_error() {
    let mut v = a_raycluster().value;
    v["apiVersion"] = json!("ray.io/v9");
    assert!(schemas().validate(&v).is_err());
}
