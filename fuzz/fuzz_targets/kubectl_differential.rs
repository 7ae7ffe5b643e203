//! Mutated manifests read by rayward's loader and by kubectl itself: the JSON must agree,
//! and what one refuses the other must refuse (issue 10 §1). Slow by nature (one kubectl
//! process per input, ~20 execs/s): run it with the seeds of corpus/kubectl_differential
//! for minutes, not hours. `RAYWARD_KUBECTL` names the binary (default `kubectl`); inputs
//! that are not Kubernetes objects for kubectl (a document without kind) are skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rayward_manifest::emit::to_json;
use rayward_manifest::load::Limits;
use rayward_manifest::source::load_bytes;
use serde_json::Value as J;
use std::process::Command;

fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn normalize_metadata(obj: &mut J) {
    if let Some(J::Object(m)) = obj.get_mut("metadata") {
        m.retain(|_, v| match v {
            J::Null => false,
            J::String(s) => !s.is_empty(),
            J::Object(o) => !o.is_empty(),
            _ => true,
        });
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 || std::str::from_utf8(data).is_err() || data.contains(&0) {
        return;
    }
    let loaded = load_bytes("fuzz.yaml", data, &Limits::default());
    if loaded.skipped_documents > 0 || (loaded.error.is_none() && loaded.objects.is_empty()) {
        return;
    }
    let path = std::env::temp_dir().join(format!("rayward-fuzz-kubectl-{}.yaml", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let bin = std::env::var("RAYWARD_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(bin)
        .args(["patch", "--local", "--type", "merge", "-p", "{}", "-o", "json", "-f"])
        .arg(&path)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl runs");
    match (&loaded.error, out.status.success()) {
        (None, true) => {
            let mut theirs: Vec<J> = serde_json::Deserializer::from_slice(&out.stdout)
                .into_iter::<J>()
                .map(Result::unwrap)
                .collect();
            let mut ours: Vec<J> = loaded
                .objects
                .iter()
                .map(|o| serde_json::from_str(&to_json(&o.root)).unwrap())
                .collect();
            ours.iter_mut().chain(theirs.iter_mut()).for_each(normalize_metadata);
            assert!(
                ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| same(a, b)),
                "rayward reads {ours:?}\nkubectl reads {theirs:?}"
            );
        }
        (Some(e), true) => {
            // rayward's own bounds (depth, aliases, size) may refuse what kubectl reads.
            let own_bound = matches!(
                e.kind,
                rayward_manifest::LoadErrorKind::TooDeep(_)
                    | rayward_manifest::LoadErrorKind::AliasBomb(_)
                    | rayward_manifest::LoadErrorKind::TooManyNodes(_)
            );
            assert!(own_bound, "rayward refuses ({e}) what kubectl reads");
        }
        (None, false) => panic!(
            "kubectl refuses ({}) what rayward reads",
            String::from_utf8_lossy(&out.stderr)
        ),
        (Some(_), false) => {}
    }
});
