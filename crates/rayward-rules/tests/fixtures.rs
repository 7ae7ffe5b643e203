//! Every rule's fixtures: `fixtures/<ID>/trigger*.yaml` must give findings of that rule
//! exactly on the lines marked `# <ID>` (nowhere else), and `fixtures/<ID>/pass*.yaml`
//! must give none. Every rule must have at least one of each.

use rayward_manifest::{load_file, Limits};
use rayward_rules::{registry, Engine, Settings};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Settings the fixtures are written against (a fixture that needs other settings says so
/// in a `settings.toml` beside it).
fn settings_for(dir: &Path) -> Settings {
    let p = dir.join("settings.toml");
    match std::fs::read_to_string(&p) {
        Ok(s) => toml::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        Err(_) => Settings::default(),
    }
}

fn marked_lines(text: &str, id: &str) -> BTreeSet<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split('#').skip(1).any(|c| {
                c.split(|ch: char| ch == ',' || ch.is_whitespace())
                    .any(|t| t == id)
            })
        })
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

#[test]
fn every_rule_has_fixtures_that_hold() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for rule in registry::all() {
        let id = rule.meta().id;
        let dir = fixture_dir().join(id);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("rule {id} has no fixtures folder {}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let name = |p: &Path| p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            files.iter().any(|p| name(p).starts_with("trigger")),
            "{id}: no trigger*.yaml fixture"
        );
        assert!(
            files.iter().any(|p| name(p).starts_with("pass")),
            "{id}: no pass*.yaml fixture"
        );
        let engine = Engine::all(settings_for(&dir));
        for f in files {
            let loaded = load_file(&f, &Limits::default());
            assert!(
                loaded.error.is_none(),
                "{}: {:?}",
                f.display(),
                loaded.error
            );
            let text = std::fs::read_to_string(&f).unwrap();
            let want = marked_lines(&text, id);
            let found = engine.run(&loaded.objects);
            // A rule reports on no Ray kind outside those it declares (`ray_kinds`, which
            // decides where a scorecard says "not applicable").
            for x in found.iter().filter(|x| x.rule_id == id) {
                let k = rayward_manifest::Kind::of(&x.object.api_version, &x.object.kind);
                if k.is_ray() && !rule.meta().ray_kinds.contains(&x.object.kind.as_str()) {
                    failures.push(format!(
                        "{}: {id} reports on a {} but declares ray_kinds {:?}",
                        f.display(),
                        x.object.kind,
                        rule.meta().ray_kinds
                    ));
                }
            }
            let got: BTreeSet<u32> = found
                .iter()
                .filter(|x| x.rule_id == id && x.suppressed.is_none())
                .map(|x| x.line)
                .collect();
            if name(&f).starts_with("trigger") && want.is_empty() {
                failures.push(format!(
                    "{}: trigger fixture marks no line with `# {id}`",
                    f.display()
                ));
            }
            if name(&f).starts_with("pass") && !want.is_empty() {
                failures.push(format!("{}: pass fixture marks lines", f.display()));
            }
            if want != got {
                failures.push(format!(
                    "{}: {id} expected on lines {want:?}, reported on {got:?}",
                    f.display()
                ));
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "fixture failures:\n{}",
        failures.join("\n")
    );
}
