//! Replays the fuzzing seeds (`fuzz/corpus/load/`) and every input the fuzzer once broke
//! on (`fuzz/artifacts-regressions/`) through the loader, the inventory and every rule, as
//! the `load` fuzz target does, so that `cargo test` keeps them fixed without nightly or
//! cargo-fuzz. Each input runs on its own thread with a deadline: a panic or a hang is
//! reported with the file's name, and errors must name the file and, where they concern a
//! place in it, a line and column.

use rayward_manifest::{load_bytes, Inventory, Limits, LoadErrorKind};
use rayward_rules::{Engine, Settings};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Generous next to the fuzzer's `-timeout=5`, for slow debug builds on busy machines.
const DEADLINE: Duration = Duration::from_secs(60);

/// The same limits as the fuzz targets (fuzz/fuzz_targets/common.rs).
fn limits() -> Limits {
    Limits {
        max_file_bytes: 1 << 20,
        max_alias_nodes: 20_000,
        max_nodes: 200_000,
        ..Limits::default()
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .canonicalize()
        .expect("fuzz/ folder next to crates/")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

/// Loads and checks one input; `Err` describes what is wrong.
fn check(name: &str, bytes: &[u8]) -> Result<String, String> {
    let loaded = load_bytes(name, bytes, &limits());
    if let Some(e) = &loaded.error {
        if e.file != name {
            return Err(format!("error names file {:?}: {e}", e.file));
        }
        let located = !matches!(
            e.kind,
            LoadErrorKind::TooLarge { .. } | LoadErrorKind::Io(_)
        );
        if located && (e.line == 0 || e.col == 0) {
            return Err(format!("error without a line and column: {e:?}"));
        }
        if !e.to_string().starts_with(name) {
            return Err(format!("message does not start with the file name: {e}"));
        }
    }
    for o in &loaded.objects {
        if &*o.file != name {
            return Err(format!("object {} names file {:?}", o.id(), o.file));
        }
    }
    let inv = Inventory::new(&loaded.objects);
    let pods = inv.pods.len();
    let findings = Engine::all(Settings::default()).run(&loaded.objects);
    if let Some(f) = findings.iter().find(|f| &*f.file != name) {
        return Err(format!("finding {} names file {:?}", f.rule_id, f.file));
    }
    Ok(format!(
        "{} objects, {pods} pods, {} findings, error: {}",
        loaded.objects.len(),
        findings.len(),
        loaded.error.map_or("none".to_string(), |e| e.to_string())
    ))
}

/// Runs [`check`] on a thread of the main thread's usual stack size, with a deadline.
fn replay(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.clone())
        .stack_size(8 << 20)
        .spawn(move || {
            let _ = tx.send(check(&name, &bytes));
        })
        .unwrap();
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("still running after {DEADLINE:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("panicked (see above)".to_string()),
    }
}

fn replay_dir(dir: &Path, at_least: usize) {
    let files = files_in(dir);
    assert!(
        files.len() >= at_least,
        "{}: expected at least {at_least} inputs, found {}",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        match replay(f) {
            Ok(summary) => eprintln!("{}: {summary}", f.display()),
            Err(why) => failures.push(format!("{}: {why}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fuzz_seeds_load_without_panic() {
    replay_dir(&fuzz_dir().join("corpus/load"), 30);
}

#[test]
fn fuzz_regressions_stay_fixed() {
    replay_dir(&fuzz_dir().join("artifacts-regressions"), 0);
}
