//! `--workload-identity`: one fixture per provider (tests/fixtures/workload-identity), and
//! the corpus. Each literal cloud key is removed and listed as a change, the Ray pods'
//! ServiceAccount carries the provider's annotation (RRSA: the namespace its injection
//! label), the audit of the output finds no RW801, and harden stays idempotent. Without
//! the flag RW801 stays a finding.

use rayward_harden::workload_identity::{self as wi, Provider, WorkloadIdentity};
use rayward_harden::{harden_bundle, Bundle, Options};
use rayward_manifest::emit::to_yaml_stream;
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, Object};
use rayward_rules::Engine;
use std::path::Path;

fn fixture(name: &str) -> Vec<Object> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/workload-identity")
        .join(name);
    let l = load_file(&p, &Limits::default());
    assert!(l.error.is_none(), "{:?}", l.error);
    l.objects
}

fn options(identity: Option<&str>) -> Options {
    let mut o = Options::default();
    o.fix.namespace = Some("ray-team".into());
    o.workload_identity = identity.map(|s| WorkloadIdentity::parse(s).unwrap());
    o
}

fn text(b: &Bundle) -> String {
    to_yaml_stream(b.objects().map(|o| &o.root))
}

fn reload(text: &str) -> Vec<Object> {
    let l = load_bytes("out.yaml", text.as_bytes(), &Limits::default());
    assert!(l.error.is_none(), "{:?}", l.error);
    l.objects
}

/// RW801 findings of the rules over `objects` (the audit after harden).
fn rw801(objects: &[Object]) -> Vec<String> {
    Engine::all(Default::default())
        .run(objects)
        .into_iter()
        .filter(|f| f.rule_id == "RW801")
        .map(|f| format!("{} {}", f.path, f.message))
        .collect()
}

const CASES: &[(&str, &str, &str, &[&str])] = &[
    (
        "rrsa.yaml",
        "rrsa:ray-oss-reader",
        "pod-identity.alibabacloud.com/role-name",
        &[
            "OSS_ACCESS_KEY_ID",
            "OSS_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ],
    ),
    (
        "irsa.yaml",
        "irsa:arn:aws:iam::123456789012:role/ray-s3-reader",
        "eks.amazonaws.com/role-arn",
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ],
    ),
    (
        "gke.yaml",
        "gke:ray-train@my-project.iam.gserviceaccount.com",
        "iam.gke.io/gcp-service-account",
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    ),
];

#[test]
fn each_provider_removes_the_keys_and_annotates_the_account() {
    for (file, flag, annotation, keys) in CASES {
        let input = fixture(file);
        // Without the flag: RW801 stays, once per key.
        let plain = harden_bundle(&input, &options(None));
        let left: Vec<_> = plain
            .unfixed
            .iter()
            .filter(|f| f.rule_id == "RW801")
            .collect();
        assert_eq!(left.len(), keys.len(), "{file}: {left:#?}");

        let b = harden_bundle(&input, &options(Some(flag)));
        assert!(
            b.unfixed.iter().all(|f| f.rule_id != "RW801"),
            "{file}: {:#?}",
            b.unfixed
        );
        // Every removal is a change of its own, naming the key.
        let removals: Vec<&str> = b
            .changes
            .iter()
            .filter(|(_, c)| c.rule_id == "RW801" && c.description.starts_with("removed"))
            .map(|(_, c)| c.description.as_ref())
            .collect();
        assert_eq!(removals.len(), keys.len(), "{file}: {removals:#?}");
        for k in *keys {
            assert!(
                removals
                    .iter()
                    .any(|d| d.contains(&format!("cloud key {k} "))),
                "{file}: {k} in {removals:#?}"
            );
        }
        let out = text(&b);
        for k in *keys {
            assert!(!out.contains(&format!("{k}:")), "{file}: {k}:\n{out}");
            assert!(!out.contains(&format!("name: {k}\n")), "{file}: {k}\n{out}");
        }
        // The rest of the env and of the runtime environment is kept.
        for kept in [
            "OSS_ENDPOINT: oss-cn-hangzhou",
            "OSS_BUCKET",
            "AWS_REGION",
            "secretKeyRef",
        ] {
            let before = to_yaml_stream(input.iter().map(|o| &o.root));
            if before.contains(kept) {
                assert!(out.contains(kept), "{file}: {kept} lost:\n{out}");
            }
        }
        // The account the Ray pods run as carries the provider's annotation.
        let want = WorkloadIdentity::parse(flag).unwrap();
        assert_eq!(want.annotation(), *annotation);
        let sa: Vec<&Object> = b
            .companions
            .iter()
            .filter(|c| c.kind_name == "ServiceAccount")
            .collect();
        assert_eq!(sa.len(), 1, "{file}");
        assert_eq!(
            sa[0]
                .root
                .path(&["metadata", "annotations", annotation])
                .and_then(|n| n.as_str()),
            Some(want.identity.as_str()),
            "{file}"
        );
        let ns = b
            .companions
            .iter()
            .find(|c| c.kind_name == "Namespace")
            .unwrap();
        let label = ns
            .root
            .path(&["metadata", "labels", wi::ACK_INJECTION_LABEL])
            .and_then(|n| n.as_str());
        assert_eq!(
            label,
            (want.provider == Provider::Rrsa).then_some("on"),
            "{file}"
        );
        // Audit after harden: no RW801 anywhere in the output.
        let outputs = reload(&out);
        assert_eq!(rw801(&outputs), Vec::<String>::new(), "{file}");
        // Idempotent: the whole output again (as a user re-runs harden on it), and the
        // Ray objects alone (companions generated anew).
        let again = harden_bundle(&outputs, &options(Some(flag)));
        assert_eq!(text(&again), out, "{file}: harden(output)");
        let ray: Vec<Object> = outputs.into_iter().filter(|o| o.kind.is_ray()).collect();
        let twice = harden_bundle(&ray, &options(Some(flag)));
        assert!(twice.changes.is_empty(), "{file}: {:?}", twice.changes);
        assert_eq!(text(&twice), out, "{file}: harden(harden(x))");
    }
}

#[test]
fn corpus_under_every_provider_is_idempotent_and_keeps_no_cloud_key() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    let (files, errors) = expand_paths(&[corpus]);
    assert!(errors.is_empty(), "{errors:?}");
    let mut ray = Vec::new();
    for f in files {
        let l = load_file(&f, &Limits::default());
        ray.extend(l.objects.into_iter().filter(|o| o.kind.is_ray()));
    }
    assert_eq!(ray.len(), 116);
    let mut answered = 0;
    let mut kept_for_own_account = std::collections::BTreeSet::new();
    for (_, flag, annotation, _) in CASES {
        for x in &ray {
            let once = harden_bundle(std::slice::from_ref(x), &options(Some(flag)));
            let out = text(&once);
            let objs = reload(&out);
            // What RW801 still says is about something else than a cloud key, but where
            // the pods run as the user's own account (annotating it is theirs to do).
            let ray_out = objs.iter().find(|o| o.kind.is_ray()).unwrap();
            if let Some(sa) = wi::own_account(ray_out) {
                // Nothing removed, nothing marked: the keys and RW801 stay for the user.
                assert!(
                    once.changes.iter().all(|(_, c)| c.rule_id != "RW801"),
                    "{}",
                    x.id()
                );
                assert!(!out.contains(wi::MARK_ANNOTATION), "{}", x.id());
                kept_for_own_account.insert(format!("{} ({sa})", x.id()));
                continue;
            }
            for f in rw801(&objs) {
                assert!(
                    !f.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(wi::is_cloud_key),
                    "{}: {f}",
                    x.id()
                );
            }
            if once.changes.iter().any(|(_, c)| c.rule_id == "RW801") {
                answered += 1;
                assert!(out.contains(annotation), "{}", x.id());
            }
            let again: Vec<Object> = objs.into_iter().filter(|o| o.kind.is_ray()).collect();
            let twice = harden_bundle(&again, &options(Some(flag)));
            assert!(twice.changes.is_empty(), "{}: {:?}", x.id(), twice.changes);
            assert_eq!(text(&twice), out, "{}: harden(harden(x))", x.id());
        }
    }
    // The history-server samples carry S3 keys: each provider answers them.
    assert!(answered >= 3 * 6, "{answered}");
    // Some samples run their pods as accounts of their own (Kubernetes auth, OSS
    // history server): left to the user.
    assert!(!kept_for_own_account.is_empty());
}

#[test]
fn bad_identities_are_refused() {
    for bad in ["rrsa", "irsa:role/x", "gke:me@example.com", "azure:x"] {
        let e = WorkloadIdentity::parse(bad).unwrap_err();
        assert!(e.to_string().contains(bad), "{e}");
    }
}
