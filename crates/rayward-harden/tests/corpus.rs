//! Harden's properties over every Ray object of the real KubeRay manifests in
//! `../shared/corpus/kuberay` (116 objects):
//! 1. the rules report nothing on harden(x) + companions from a rule that has a fix, but
//!    for the cases the fix documents as the user's choice (each checked here by its reason);
//! 2. harden(harden(x)) == harden(x), byte for byte;
//! 3. the emitted YAML loads again, and every field of x that no recorded change touched
//!    is still there with the same value.

use rayward_harden::{fix_map, harden_bundle, Options};
use rayward_manifest::emit::to_yaml_stream;
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, Node, Object, Value};
use rayward_rules::{Change, Finding};
use std::path::Path;
use std::sync::OnceLock;

fn ray_objects() -> &'static [Object] {
    static OBJS: OnceLock<Vec<Object>> = OnceLock::new();
    OBJS.get_or_init(|| {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
        assert!(
            corpus.is_dir(),
            "the shared corpus must sit at ../shared: {}",
            corpus.display()
        );
        // The corpus, and the hostile shapes of harden's own names (tests/names.rs).
        let names = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/names");
        let (files, errors) = expand_paths(&[corpus, names]);
        assert!(errors.is_empty(), "{errors:?}");
        let mut out = Vec::new();
        for f in files {
            let l = load_file(&f, &Limits::default());
            assert!(l.error.is_none(), "{:?}", l.error);
            out.extend(l.objects.into_iter().filter(|o| o.kind.is_ray()));
        }
        out
    })
}

fn options() -> Options {
    let mut o = Options::default();
    o.fix.namespace = Some("ray-test".into());
    o
}

/// The same with `--history` (collector in every Ray pod, credentials from a Secret).
fn options_history() -> Options {
    let mut o = options();
    o.history = Some(
        rayward_harden::history::History::new("s3://ray-history/prod", Some("history-store"))
            .unwrap(),
    );
    o
}

/// Both: every property holds with and without `--history`.
fn all_options() -> [Options; 2] {
    [options(), options_history()]
}

/// Every Ray object with each of [`all_options`].
fn cases() -> impl Iterator<Item = (&'static Object, Options)> {
    all_options()
        .into_iter()
        .flat_map(|o| ray_objects().iter().map(move |x| (x, o.clone())))
}

fn emit(objects: &[&Object]) -> String {
    to_yaml_stream(objects.iter().map(|o| &o.root))
}

#[test]
fn the_corpus_has_116_ray_objects() {
    let corpus = ray_objects()
        .iter()
        .filter(|o| o.file.contains("shared/corpus"))
        .count();
    assert_eq!(corpus, 116);
    assert!(
        ray_objects().len() >= 121,
        "the name fixtures are in the set too"
    );
}

/// Why a finding of a rule with a fix may stay: the cases each fix leaves to the user.
fn allowed(f: &Finding, x: &Object) -> Option<&'static str> {
    match f.rule_id {
        // hostPath outside the allowed prefixes: where the data should come from instead
        // is the user's choice (the writable mount is fixed).
        "RW505" if f.path.ends_with("hostPath.path") => Some("hostPath outside allowed prefixes"),
        // Token auth exists from Ray 2.52 on only.
        "RW115" => {
            let version = rayward_rules::util::version::cluster_version(
                &rayward_manifest::Workload::of(x),
                0,
            );
            version
                .is_none_or(|(v, _)| v < rayward_rules::util::version::Version(2, 52, 0))
                .then_some("no token auth before Ray 2.52")
        }
        // InteractiveMode without an entrypoint: what to run is the user's choice.
        "RW901" => x
            .root
            .path(&["spec", "entrypoint"])
            .is_none()
            .then_some("no entrypoint for K8sJobMode"),
        // A deletionStrategy the user wrote is theirs to complete.
        "RW903" => x
            .root
            .path(&["spec", "deletionStrategy"])
            .is_some()
            .then_some("deletionStrategy given"),
        _ => None,
    }
}

#[test]
fn audit_of_the_hardened_output_reports_nothing_fixable() {
    let fixable: Vec<&str> = fix_map().into_iter().map(|(id, _)| id).collect();
    for must in [
        "RW101", "RW110", "RW140", "RW202", "RW401", "RW501", "RW701", "RW903",
    ] {
        assert!(fixable.contains(&must), "{must} has a fix");
    }
    let mut problems = Vec::new();
    let mut allowed_count = 0;
    for (x, opts) in cases() {
        let b = harden_bundle(std::slice::from_ref(x), &opts);
        for f in &b.unfixed {
            if !fixable.contains(&f.rule_id) {
                continue;
            }
            match allowed(f, x) {
                // Counted once: the same excuses come back in the --history pass.
                Some(_) => allowed_count += usize::from(opts.history.is_none()),
                None => problems.push(format!(
                    "{}:{} {} {} at {}: {}",
                    x.file,
                    f.line,
                    f.rule_id,
                    x.id(),
                    f.path,
                    f.message
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} fixable findings remain:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The exceptions are real but rare (3 InteractiveMode jobs in the corpus).
    assert!(allowed_count <= 10, "{allowed_count} findings excused");
}

#[test]
fn whole_corpus_bundle_audits_clean_of_fixable_findings() {
    let fixable: Vec<&str> = fix_map().into_iter().map(|(id, _)| id).collect();
    let objs: Vec<Object> = ray_objects().to_vec();
    for opts in all_options() {
        let b = harden_bundle(&objs, &opts);
        let left: Vec<String> = b
            .unfixed
            .iter()
            .filter(|f| fixable.contains(&f.rule_id))
            .filter(|f| {
                let x = objs
                    .iter()
                    .find(|o| *o.file == *f.file && o.doc == f.doc)
                    .expect("findings of fixable rules are on input objects");
                allowed(f, x).is_none()
            })
            .map(|f| format!("{}:{} {} {}", f.file, f.line, f.rule_id, f.message))
            .collect();
        assert!(left.is_empty(), "{}", left.join("\n"));
    }
}

#[test]
fn harden_is_idempotent() {
    for (x, opts) in cases() {
        let once = harden_bundle(std::slice::from_ref(x), &opts);
        let text1 = emit(&once.objects().collect::<Vec<_>>());
        let reloaded = load_bytes("once.yaml", text1.as_bytes(), &Limits::default());
        assert!(reloaded.error.is_none(), "{}: {:?}", x.id(), reloaded.error);
        // Harden the object again (its companions are generated again, not read).
        let again: Vec<Object> = reloaded
            .objects
            .into_iter()
            .filter(|o| o.kind.is_ray())
            .collect();
        let twice = harden_bundle(&again, &opts);
        assert!(
            twice.changes.is_empty(),
            "{}: second pass changed {:?}",
            x.id(),
            twice.changes
        );
        let text2 = emit(&twice.objects().collect::<Vec<_>>());
        assert_eq!(text1, text2, "{}: harden(harden(x)) != harden(x)", x.id());
    }
}

/// Whether a change covers `path`: made at it, or at a node above it.
fn covered(changes: &[Change], path: &str) -> bool {
    changes.iter().any(|c| {
        let p = c.json_path.as_str();
        p == path
            || (path.starts_with(p) && matches!(path.as_bytes().get(p.len()), Some(b'.' | b'[')))
    })
}

/// Whether a change covers a node strictly above `path`.
fn covered_above(changes: &[Change], path: &str) -> bool {
    changes.iter().any(|c| {
        let p = c.json_path.as_str();
        p != path
            && path.starts_with(p)
            && matches!(path.as_bytes().get(p.len()), Some(b'.' | b'['))
    })
}

/// Differences between `old` and `new` not covered by a change. `path` is where `new`
/// sits (changes are recorded at the new tree's paths).
///
/// A change recorded at a sequence covers items added to or removed from it, not edits
/// inside the items that stay; anywhere else a change covers the subtree it names.
fn lost(old: &Node, new: &Node, path: &str, changes: &[Change], out: &mut Vec<String>) {
    let at_seq = old.is_seq() && new.is_seq();
    let exact = changes.iter().any(|c| c.json_path == path);
    if covered(changes, path) && !(at_seq && exact && !covered_above(changes, path)) {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (&old.value, &new.value) {
        (Value::Map(o), Value::Map(_)) => {
            for (k, v) in o {
                let Some(key) = k.scalar_text() else { continue };
                match new.get(key) {
                    Some(nv) => lost(v, nv, &join(key), changes, out),
                    None if v.is_null() || covered(changes, &join(key)) => {}
                    None => out.push(format!("{} dropped", join(key))),
                }
            }
        }
        (Value::Seq(o), Value::Seq(n)) => {
            // Items keep their order; new ones may come in between (an init container
            // first, env appended). Named items are matched by name.
            let ident = |i: &Node| {
                ["name", "groupName"]
                    .iter()
                    .find_map(|k| i.get(k).and_then(Node::as_str).map(|v| (*k, v.to_string())))
            };
            let positional = o.len() == n.len();
            let mut j = 0;
            for (i, item) in o.iter().enumerate() {
                let id = ident(item);
                let found = if positional {
                    Some(i)
                } else {
                    (j..n.len()).find(|&k| match &id {
                        Some(id) => ident(&n[k]).as_ref() == Some(id),
                        None => n[k].same_as(item),
                    })
                };
                match found {
                    Some(k) => {
                        lost(item, &n[k], &format!("{path}[{k}]"), changes, out);
                        j = k + 1;
                    }
                    None => out.push(format!(
                        "{path}: item {} dropped",
                        rayward_manifest::emit::to_yaml(item).trim()
                    )),
                }
            }
        }
        _ => {
            if !old.same_as(new) {
                out.push(format!(
                    "{path}: {:?} became {:?}",
                    old.scalar_text(),
                    new.scalar_text()
                ));
            }
        }
    }
}

#[test]
fn nothing_is_dropped() {
    for (x, opts) in cases() {
        let b = harden_bundle(std::slice::from_ref(x), &opts);
        let text = emit(&b.files[0].objects.iter().collect::<Vec<_>>());
        let reloaded = load_bytes("out.yaml", text.as_bytes(), &Limits::default());
        assert!(reloaded.error.is_none(), "{}: {:?}", x.id(), reloaded.error);
        let back = &reloaded.objects[0].root;
        assert!(
            back.same_as(&b.files[0].objects[0].root),
            "{}: reload differs",
            x.id()
        );
        let changes: Vec<Change> = b.changes.iter().map(|(_, c)| c.clone()).collect();
        let mut out = Vec::new();
        lost(&x.root, back, "", &changes, &mut out);
        assert!(
            out.is_empty(),
            "{} ({}): {}",
            x.id(),
            x.file,
            out.join("\n")
        );
    }
}

#[test]
fn every_ray_pod_is_covered_by_generated_network_policies() {
    // RW140 is answered by companions; make sure each object got its two policies.
    for (x, opts) in cases() {
        let b = harden_bundle(std::slice::from_ref(x), &opts);
        let w = rayward_manifest::Workload::of(x);
        let heads = w
            .templates
            .iter()
            .any(|t| t.role == rayward_manifest::PodRole::Head);
        let workers = w
            .templates
            .iter()
            .any(|t| matches!(t.role, rayward_manifest::PodRole::Worker { .. }));
        let policies = b
            .companions
            .iter()
            .filter(|c| c.kind == rayward_manifest::Kind::NetworkPolicy)
            .count();
        let want = usize::from(heads || workers) + usize::from(workers);
        assert_eq!(policies, want, "{}", x.id());
        assert!(
            b.unfixed.iter().all(|f| f.rule_id != "RW141"),
            "{}: a generated policy selects nothing",
            x.id()
        );
    }
}

#[test]
fn the_drop_check_notices_an_unrecorded_drop() {
    // The check above must be able to fail: drop one env entry behind harden's back.
    let x = ray_objects()
        .iter()
        .find(|o| {
            o.root
                .path(&["spec", "headGroupSpec", "template", "spec", "containers"])
                .is_some()
        })
        .unwrap();
    let b = harden_bundle(std::slice::from_ref(x), &options());
    let changes: Vec<Change> = b.changes.iter().map(|(_, c)| c.clone()).collect();
    let mut tampered = b.files[0].objects[0].root.clone();
    let c = tampered
        .at_path_mut(&rayward_manifest::JsonPath::root().keys(&[
            "spec",
            "headGroupSpec",
            "template",
            "spec",
        ]))
        .unwrap();
    c.remove("containers");
    let mut out = Vec::new();
    lost(&x.root, &tampered, "", &changes, &mut out);
    assert!(
        out.iter().any(|l| l.contains("containers dropped")),
        "{out:?}"
    );
}

#[test]
fn every_account_the_output_names_exists() {
    // A pod naming a ServiceAccount that is not there is never created.
    for (x, opts) in cases() {
        let b = harden_bundle(std::slice::from_ref(x), &opts);
        let o = &b.files[0].objects[0];
        let w = rayward_manifest::Workload::of(o);
        for t in &w.templates {
            let Some(sa) = t.field("serviceAccountName").and_then(Node::as_str) else {
                continue;
            };
            let declared_in_input = x.root.path(&["spec"]).is_some_and(|_| {
                rayward_manifest::emit::to_yaml(&x.root)
                    .contains(&format!("serviceAccountName: {sa}"))
            });
            let generated = b
                .companions
                .iter()
                .any(|c| c.kind == rayward_manifest::Kind::ServiceAccount && c.name == sa);
            assert!(
                declared_in_input || generated,
                "{}: {} runs as `{sa}`, which neither the input named nor harden generated",
                x.id(),
                t.path
            );
        }
    }
}

#[test]
fn generated_labels_and_selectors_are_valid_label_values() {
    let valid = |v: &str| {
        v.len() <= 63
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))))
    };
    for (x, opts) in cases() {
        let b = harden_bundle(std::slice::from_ref(x), &opts);
        for c in b.companions.iter().chain(&b.files[0].objects) {
            let text = rayward_manifest::emit::to_yaml(&c.root);
            for line in text.lines() {
                let l = line.trim_start_matches([' ', '-']);
                for key in [
                    "ray.io/cluster: ",
                    "ray.io/originated-from-cr-name: ",
                    "rayward.io/ray-object: ",
                    "job-name: ",
                ] {
                    if let Some(v) = l.strip_prefix(key) {
                        assert!(
                            valid(v.trim_matches('"')),
                            "{}: `{l}` in {}",
                            x.id(),
                            c.id()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn history_puts_a_collector_in_every_ray_pod() {
    // What the properties above hold with --history is really there: the collector in
    // every head and worker pod, export on in the Ray container, the grace, the egress.
    let mut pods = 0;
    for x in ray_objects() {
        if !matches!(x.kind_name.as_str(), "RayCluster" | "RayJob" | "RayService") {
            continue;
        }
        let b = harden_bundle(std::slice::from_ref(x), &options_history());
        let out = &b.files[0].objects[0];
        let w = rayward_manifest::Workload::of(out);
        for t in w.templates.iter().filter(|t| t.role.is_ray_node()) {
            let spec = t.node.get("spec").expect("a pod spec");
            let containers = spec.get("containers").map(Node::as_seq).unwrap_or(&[]);
            let c = containers
                .iter()
                .find(|c| c.get("name").and_then(Node::as_str) == Some("rayward-history"))
                .unwrap_or_else(|| panic!("{}: no collector in {:?}", x.id(), t.role));
            let args: Vec<&str> = c
                .get("args")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::as_str)
                .collect();
            let after = |flag: &str| {
                args.iter()
                    .position(|a| *a == flag)
                    .and_then(|i| args.get(i + 1))
                    .copied()
            };
            assert_eq!(args[..2], ["history", "collect"], "{}", x.id());
            assert_eq!(after("--store"), Some("s3://ray-history/prod"));
            assert_eq!(after("--kind"), Some(x.kind_name.as_str()));
            assert_eq!(after("--name"), Some(x.name.as_str()));
            assert_eq!(after("--node"), Some("$(POD_NAME)"));
            assert_eq!(
                after("--credentials-file"),
                Some("/etc/rayward/history/credentials")
            );
            assert_eq!(
                args.contains(&"--head"),
                t.role == rayward_manifest::PodRole::Head,
                "{}",
                x.id()
            );
            let ray = &containers[0];
            let env_has = |n: &str| {
                ray.get("env")
                    .map(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .any(|e| e.get("name").and_then(Node::as_str) == Some(n))
            };
            assert!(env_has("RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR"));
            assert!(env_has("RAY_enable_ray_event"));
            assert!(ray
                .get("volumeMounts")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .any(|m| m.get("mountPath").and_then(Node::as_str) == Some("/tmp/ray")));
            assert!(ray.path(&["lifecycle", "preStop"]).is_some());
            let grace = spec
                .get("terminationGracePeriodSeconds")
                .and_then(Node::as_i64)
                .unwrap_or(0);
            assert!(grace >= 40, "{}: grace {grace}", x.id());
            pods += 1;
        }
        for p in b
            .companions
            .iter()
            .filter(|c| c.kind == rayward_manifest::Kind::NetworkPolicy)
        {
            let egress = p
                .root
                .path(&["spec", "egress"])
                .map(Node::as_seq)
                .unwrap_or(&[]);
            assert!(
                egress.iter().any(|r| {
                    r.get("ports")
                        .map(Node::as_seq)
                        .unwrap_or(&[])
                        .iter()
                        .any(|port| port.get("port").and_then(Node::as_i64) == Some(443))
                        && r.path(&["to"]).is_some()
                }),
                "{}: no egress to the store in {}",
                x.id(),
                p.name
            );
        }
    }
    assert!(pods > 150, "{pods} Ray pod templates");
}
