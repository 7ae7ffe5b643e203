//! Every fix against its rule's own fixtures: after a rule's fix runs on the Ray objects of
//! `fixtures/<ID>/trigger*.yaml`, the rule reports nothing more on them (but for the cases
//! the fix leaves to the user, each named here), the fix said what it changed, and running
//! it again changes nothing.

use rayward_manifest::{load_file, Limits, Object};
use rayward_rules::{registry, Engine, Finding, FixContext, FixOptions, Selection, Settings};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn settings_for(dir: &Path) -> Settings {
    let p = dir.join("settings.toml");
    match std::fs::read_to_string(&p) {
        Ok(s) => toml::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        Err(_) => Settings::default(),
    }
}

/// Findings a fix leaves on purpose, by rule: what to do instead is the user's choice.
fn left_to_user(f: &Finding, objects: &[Object]) -> bool {
    let obj = || {
        objects
            .iter()
            .find(|o| o.doc == f.doc && o.name == f.object.name)
    };
    match f.rule_id {
        "RW505" => f.path.ends_with("hostPath.path"),
        "RW115" => obj().is_some_and(|o| {
            rayward_rules::util::version::cluster_version(&rayward_manifest::Workload::of(o), 0)
                .is_none_or(|(v, _)| v < rayward_rules::util::version::Version(2, 52, 0))
        }),
        "RW901" => obj().is_some_and(|o| {
            o.root.path(&["spec", "entrypoint"]).is_none()
                && o.root
                    .path(&["spec", "jobTemplate", "entrypoint"])
                    .is_none()
        }),
        "RW903" => f.path.ends_with("deletionStrategy"),
        _ => false,
    }
}

#[test]
fn every_fix_clears_its_rule_on_its_trigger_fixtures() {
    let options = FixOptions {
        namespace: Some("team-a".into()),
        ..FixOptions::default()
    };
    let mut failures = Vec::new();
    let mut fixed_rules = 0;
    for (rule, fix) in registry::fixable() {
        let id = rule.meta().id;
        let dir = fixture_dir().join(id);
        let settings = settings_for(&dir);
        let cx = FixContext {
            options: &options,
            settings: &settings,
        };
        let engine = Engine::new(
            settings.clone(),
            &Selection {
                only: vec![id.to_string()],
                ..Selection::default()
            },
        )
        .unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("trigger"))
            })
            .collect();
        files.sort();
        let mut any_change = false;
        for f in files {
            let loaded = load_file(&f, &Limits::default());
            let mut objects = loaded.objects;
            let before = engine
                .run(&objects)
                .iter()
                .filter(|x| x.object.kind.starts_with("Ray"))
                .count();
            let mut changes = Vec::new();
            for o in objects.iter_mut().filter(|o| o.kind.is_ray()) {
                changes.extend(fix.fix(o, &cx));
            }
            any_change |= !changes.is_empty();
            if before > 0 && changes.is_empty() {
                failures.push(format!(
                    "{id} {}: {before} findings, no change",
                    f.display()
                ));
            }
            for c in &changes {
                assert_eq!(c.rule_id.len(), 5, "{c:?}");
                assert!(!c.description.is_empty(), "{c:?}");
            }
            for left in engine
                .run(&objects)
                .iter()
                .filter(|x| x.object.kind.starts_with("Ray") && x.suppressed.is_none())
            {
                if !left_to_user(left, &objects) {
                    failures.push(format!(
                        "{id} {}:{} still reported after the fix: {} at {}",
                        f.display(),
                        left.line,
                        left.message,
                        left.path
                    ));
                }
            }
            for o in objects.iter_mut().filter(|o| o.kind.is_ray()) {
                let again = fix.fix(o, &cx);
                if !again.is_empty() {
                    failures.push(format!("{id} {}: not idempotent: {again:?}", f.display()));
                }
            }
        }
        if any_change {
            fixed_rules += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        fixed_rules >= 20,
        "only {fixed_rules} fixes changed their fixtures"
    );
}
