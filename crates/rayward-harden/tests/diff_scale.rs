//! `--diff` on a cluster of thousands of worker groups (issue 10 §3): it was quadratic
//! (Myers over the whole object: 1,000 groups 8 s, 3,000 groups 75 s, release build). The
//! diff must come back in bounded time and still be exact: applying its hunks to the old
//! text gives the new text. (Timings are in docs/benchmarks.md; the bound here only
//! catches a return to quadratic time.)

use rayward_harden::diff::object_diff;
use rayward_harden::{harden_object, Options};
use rayward_manifest::emit::to_yaml;
use rayward_manifest::{load_bytes, Limits};
use std::time::{Duration, Instant};

fn cluster(groups: usize) -> String {
    let mut s = String::from(
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a, namespace: t}\nspec:\n  rayVersion: \"2.60.0\"\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n  workerGroupSpecs:\n",
    );
    for i in 0..groups {
        s.push_str(&format!(
            "  - groupName: g{i}\n    replicas: 1\n    template:\n      spec:\n        containers: [{{name: ray-worker, image: rayproject/ray:2.60.0}}]\n"
        ));
    }
    s
}

/// Applies a unified diff (as `object_diff` writes it) to `old`.
fn apply(old: &str, diff: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0usize; // next line of `old` not yet copied
    for line in diff.lines() {
        if let Some(h) = line.strip_prefix("@@ -") {
            let start: usize = h.split([',', ' ']).next().unwrap().parse().unwrap();
            let start = start.saturating_sub(1);
            while at < start {
                out.push(old[at].to_string());
                at += 1;
            }
        } else if line.starts_with("---") || line.starts_with("+++") {
            continue;
        } else if let Some(l) = line.strip_prefix('+') {
            out.push(l.to_string());
        } else if let Some(l) = line.strip_prefix('-') {
            assert_eq!(old[at], l, "the diff removes a line that is not there");
            at += 1;
        } else if let Some(l) = line.strip_prefix(' ') {
            assert_eq!(old[at], l, "context does not match");
            out.push(l.to_string());
            at += 1;
        }
    }
    out.extend(old[at..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

#[test]
fn diff_of_thousands_of_worker_groups_is_fast_and_exact() {
    let text = cluster(2000);
    let loaded = load_bytes("big.yaml", text.as_bytes(), &Limits::default());
    let obj = &loaded.objects[0];
    let hardened = harden_object(obj, &Options::default());
    let t0 = Instant::now();
    let diff = object_diff(Some(obj), &hardened.object);
    let took = t0.elapsed();
    eprintln!(
        "2,000 worker groups: diff of {} lines in {took:?}",
        diff.lines().count()
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(
        apply(&to_yaml(&obj.root), &diff),
        to_yaml(&hardened.object.root)
    );
}
