//! The loader against kubectl itself: for every document of the KubeRay corpus, the rule
//! fixtures, the examples and a generated set of scalar spellings (every YAML 1.1 boolean,
//! null and number form, quoted and tagged variants, merge orders, tabs, `!!binary`), the
//! JSON rayward's loader yields must equal what kubectl yields, and what kubectl refuses
//! rayward must refuse.
//!
//! kubectl reads manifests with sigs.k8s.io/yaml before anything reaches the API server;
//! `kubectl patch --local --type merge -p {} -o json` runs exactly that reading offline
//! (no server, no change to the object) for any kind, custom resources included.
//!
//! kubectl ships with this kind of machine (google-cloud-cli); `RAYWARD_KUBECTL` names
//! another binary. Without one the test fails: it is the proof of the loader's reading.

use rayward_manifest::emit::to_json;
use rayward_manifest::load::Limits;
use rayward_manifest::source::load_bytes;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl() -> String {
    let bin = std::env::var("RAYWARD_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let ok = Command::new(&bin)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "kubectl not found (`{bin}`): install it or set RAYWARD_KUBECTL; the differential test needs it"
    );
    bin
}

/// kubectl's reading of a file: the objects it holds (List items flattened), or its error.
fn kubectl_read(bin: &str, file: &Path) -> Result<Vec<J>, String> {
    let out = Command::new(bin)
        .args([
            "patch", "--local", "--type", "merge", "-p", "{}", "-o", "json", "-f",
        ])
        .arg(file)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("run kubectl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<J>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("kubectl printed something that is not JSON: {e}"))
}

/// What rayward reads, through the loader every command uses: `Ok(None)` when some
/// document is not a Kubernetes object (kubectl refuses the whole file then, so there is
/// nothing to compare).
fn rayward_read(name: &str, bytes: &[u8]) -> Result<Option<Vec<J>>, String> {
    let loaded = load_bytes(name, bytes, &Limits::default());
    if let Some(e) = loaded.error {
        return Err(e.to_string());
    }
    if loaded.skipped_documents > 0 {
        return Ok(None);
    }
    Ok(Some(
        loaded
            .objects
            .iter()
            .map(|o| serde_json::from_str(&to_json(&o.root)).expect("to_json writes JSON"))
            .collect(),
    ))
}

/// JSON equality with numbers compared by value (kubectl turns integral floats into
/// integers and big integers into floats; serde_json keeps the difference).
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// kubectl re-encodes `metadata` through the typed `ObjectMeta`, which leaves out empty
/// and null fields (`namespace: ""`); that is not part of reading YAML, so both sides drop them.
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

/// Compares one file; returns a description of the disagreement, if any.
fn compare_file(bin: &str, path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let ours = rayward_read(&name, &bytes);
    let theirs = kubectl_read(bin, path);
    match (ours, theirs) {
        (Ok(None), _) => Ok(false),
        (Ok(Some(mut ours)), Ok(mut theirs)) => {
            ours.iter_mut()
                .chain(theirs.iter_mut())
                .for_each(normalize_metadata);
            if ours.len() != theirs.len() || !ours.iter().zip(&theirs).all(|(a, b)| same(a, b)) {
                return Err(format!(
                    "{name}: rayward reads\n{}\nkubectl reads\n{}",
                    serde_json::to_string_pretty(&ours).unwrap(),
                    serde_json::to_string_pretty(&theirs).unwrap()
                ));
            }
            Ok(true)
        }
        (Ok(Some(_)), Err(e)) => Err(format!("{name}: kubectl refuses ({e}) what rayward reads")),
        (Err(e), Ok(_)) => Err(format!("{name}: rayward refuses ({e}) what kubectl reads")),
        (Err(_), Err(_)) => Ok(true),
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        panic!("{} is missing", dir.display())
    };
    let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
}

/// Runs `compare_file` over files on two threads; panics listing every disagreement.
fn compare_all(files: &[PathBuf]) -> (usize, usize) {
    let bin = kubectl();
    let results: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let half = files.len().div_ceil(2).max(1);
        let handles: Vec<_> = files
            .chunks(half)
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|f| compare_file(&bin, f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {} files read differently:\n{}",
        errors.len(),
        files.len(),
        errors
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let compared = results.iter().filter(|r| matches!(r, Ok(true))).count();
    (compared, files.len())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn corpus_fixtures_and_examples_read_as_kubectl_reads_them() {
    let mut files = Vec::new();
    files_under(&repo().join("../shared/corpus"), &mut files);
    let corpus = files.len();
    files_under(&repo().join("crates/rayward-rules/fixtures"), &mut files);
    files_under(&repo().join("examples"), &mut files);
    let (compared, total) = compare_all(&files);
    // Nearly every file is a set of Kubernetes objects kubectl can read; the others (a
    // values file, a document without `kind`) are not comparable, and must stay few.
    assert!(corpus > 100, "corpus not found");
    assert!(
        compared * 10 >= total * 9,
        "only {compared} of {total} files compared"
    );
}

/// The value spellings: every form go-yaml v2 gives a meaning, and near misses.
const SPELLINGS: &[&str] = &[
    // booleans, YAML 1.1 and 1.2
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "yEs",
    "oN",
    "tRUE",
    "ye",
    "nO",
    // nulls
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    "none",
    "None",
    // integers
    "0",
    "-0",
    "+0",
    "1",
    "-1",
    "+1",
    "017",
    "-017",
    "08",
    "09.5",
    "0o17",
    "0O17",
    "0o8",
    "0x1F",
    "0X1f",
    "-0x10",
    "+0x10",
    "0x",
    "0b101",
    "0B11",
    "-0b11",
    "0b2",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "0x_1",
    "00",
    "0_",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "0x7FFFFFFFFFFFFFFF",
    "0x8000000000000000",
    "0xFFFFFFFFFFFFFFFF",
    "0x10000000000000000",
    "1:20",
    "190:20:30",
    "-1:20",
    "1,000",
    "1 000",
    // floats
    "1.5",
    "-1.5",
    ".5",
    "-.5",
    "+.5",
    "1.",
    "1.0",
    "-1.0",
    "1e3",
    "1E3",
    "1e+3",
    "1e-3",
    "12e-7",
    "1e21",
    "1e22",
    "1e400",
    "1e-400",
    "0.1e1",
    "6.8523015e+5",
    "685.230_15e+03",
    "3.14159265358979",
    "0.000001",
    "0.0000001",
    "1e",
    "e3",
    ".",
    "..5",
    "1.2.3",
    "0x1p-2",
    "inf",
    "Infinity",
    "NaN",
    "nan",
    ".iNf",
    "-.NaN",
    "+.nan",
    // timestamps and look-alikes
    "2001-12-14",
    "2001-12-14T21:59:43.10-05:00",
    "2001-12-14 21:59:43.10",
    "2001-12-14t21:59:43Z",
    "2001-13-14",
    "20011-12-14",
    "1-2-3",
    // Kubernetes-shaped strings
    "64Mi",
    "100m",
    "1e3m",
    "500M",
    "2Gi",
    "0.5",
    "v1",
    "rayproject/ray:2.9.0",
    "<<",
    "=",
    "-",
];

/// Parser differences that remain (saphyr-parser against go-yaml's libyaml port), each
/// with the side that refuses. Neither lets an object through that Kubernetes would read
/// differently: the first is refused by rayward (exit 2), the second by kubectl.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // `[-]`: libyaml reads a lone `-` before `]` as a plain scalar; saphyr refuses it.
    ("flow value `-`", "rayward refuses"),
    // `-<TAB>yes`: libyaml refuses a tab after a block sequence dash; saphyr reads it.
    ("tab after sequence dash", "kubectl refuses"),
];

/// The documents of the generated set, each a one-object YAML text.
fn generated_cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let doc = |body: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n{body}");
    for s in SPELLINGS {
        let sq = s.replace('\'', "''");
        for (label, body) in [
            ("plain value", format!("spec:\n  v: {s}\n")),
            ("single-quoted value", format!("spec:\n  v: '{sq}'\n")),
            ("double-quoted value", format!("spec:\n  v: \"{s}\"\n")),
            ("flow value", format!("spec: {{v: [{s}]}}\n")),
            ("plain key", format!("spec:\n  {s}: v\n")),
            ("quoted key", format!("spec:\n  \"{s}\": v\n")),
            ("!!bool", format!("spec:\n  v: !!bool \"{s}\"\n")),
            ("!!int", format!("spec:\n  v: !!int \"{s}\"\n")),
            ("!!float", format!("spec:\n  v: !!float \"{s}\"\n")),
            ("!!null", format!("spec:\n  v: !!null \"{s}\"\n")),
            ("!!str", format!("spec:\n  v: !!str {s}\n")),
            ("! tag", format!("spec:\n  v: ! {s}\n")),
            ("local tag", format!("spec:\n  v: !local {s}\n")),
        ] {
            // A plain key or value that is empty or starts a YAML indicator is another case.
            if s.is_empty() && label.starts_with("plain key") {
                continue;
            }
            cases.push((format!("{label} `{s}`"), doc(&body)));
        }
    }
    for (label, body) in [
        ("merge: explicit key then merge", "spec:\n  base: &b {hostNetwork: true, x: 1}\n  m: {hostNetwork: false, <<: *b}\n"),
        ("merge: merge then explicit key", "spec:\n  base: &b {hostNetwork: true, x: 1}\n  m: {<<: *b, hostNetwork: false}\n"),
        ("merge: sequence, earlier wins", "spec:\n  a: &a {x: 1}\n  b: &b {x: 2, z: 3}\n  m:\n    <<: [*a, *b]\n"),
        ("merge: sequence then key", "spec:\n  a: &a {x: 1}\n  m:\n    <<: [*a, {y: 2}]\n    x: 5\n"),
        ("merge: block map", "spec:\n  m:\n    privileged: false\n    <<:\n      privileged: true\n"),
        ("merge: two merges", "spec:\n  a: &a {x: 1}\n  b: &b {x: 2}\n  m:\n    <<: *a\n    <<: *b\n"),
        ("merge: !!merge tag", "spec:\n  a: &a {x: 1}\n  m: {!!merge <<: *a}\n"),
        ("merge: quoted key is not a merge", "spec:\n  m: {\"<<\": {x: 1}}\n"),
        ("merge: nested merges", "spec:\n  a: &a {x: 1, y: 1}\n  b: &b {<<: *a, y: 2}\n  m: {<<: *b, z: 3}\n"),
        ("merge: scalar value", "spec:\n  m: {<<: 1}\n"),
        ("merge: null value", "spec:\n  m:\n    <<:\n"),
        ("merge: sequence of scalars", "spec:\n  m: {<<: [1]}\n"),
        ("duplicate keys", "spec:\n  a: 1\n  b: 2\n  a: 3\n"),
        ("duplicate keys through conversion", "spec:\n  yes: 1\n  true: 2\n"),
        ("tab after key", "spec:\n  a:\tyes\n  b: \tno\n"),
        ("tab after sequence dash", "spec:\n  a:\n  -\tyes\n"),
        ("tab in flow", "spec: {a:\t1,\tb: [\t2]}\n"),
        ("!!binary image", "spec:\n  image: !!binary cmF5cHJvamVjdC9yYXk6Mi40MC4w\n"),
        ("!!binary block", "spec:\n  v: !!binary |\n    aGVsbG8g\n    d29ybGQ=\n"),
        ("!!binary bad", "spec:\n  v: !!binary \"aGV sbG8=\"\n"),
        ("!!binary not utf-8", "spec:\n  v: !!binary \"/w==\"\n"),
        ("!!binary key", "spec:\n  !!binary aGk=: 1\n"),
        ("verbatim tag", "spec:\n  v: !<tag:yaml.org,2002:bool> yes\n"),
        ("!!timestamp", "spec:\n  v: !!timestamp 2001-12-14\n"),
        ("!!str on a sequence", "spec:\n  v: !!str [1]\n"),
        ("null key", "spec:\n  ~: 1\n"),
        ("collection key", "spec:\n  ? [1]\n  : 1\n"),
        ("anchored key used as value", "spec:\n  &k yes: 1\n  v: *k\n"),
        ("anchored value used as key", "spec:\n  v: &k 0x10\n  m: {*k : 1}\n"),
        ("float keys", "spec: {1234567.0: a, 0.00001: b, 3.14159265358979: c, 1e6: d, .inf: e, -.inf: f, .nan: g}\n"),
        ("nan in a list", "spec: [.nan]\n"),
        ("multi-line plain", "spec:\n  v: yes\n    no\n"),
        ("folded and literal", "spec:\n  a: >\n    yes\n  b: |\n    1\n"),
    ] {
        cases.push((label.to_string(), doc(body)));
    }
    // Whole documents: metadata as kubectl types it, Lists, several documents.
    for (label, text) in [
        ("metadata: boolean name", "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: off\n"),
        ("metadata: numeric namespace", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: 0x10\n"),
        ("metadata: boolean label", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {team: yes}\n"),
        ("metadata: quoted label", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {team: \"yes\"}\n"),
        ("metadata: numeric annotation", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations: {n: 1}\n"),
        ("metadata: null label", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {team: ~}\n"),
        ("List with a merge", "apiVersion: v1\nkind: List\nitems:\n- &p\n  apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {hostNetwork: no}\n- <<: *p\n  spec: {hostNetwork: yes}\n"),
        ("List with a bad item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: on}\n"),
        ("two documents", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {hostPID: on}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {hostIPC: Y}\n"),
    ] {
        cases.push((label.to_string(), text.to_string()));
    }
    cases
}

#[test]
fn generated_spellings_read_as_kubectl_reads_them() {
    let dir = std::env::temp_dir().join(format!("rayward-kubectl-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = generated_cases();
    let mut files = Vec::new();
    let mut names = std::collections::HashMap::new();
    for (i, (label, text)) in cases.iter().enumerate() {
        let f = dir.join(format!("case-{i:04}.yaml"));
        std::fs::write(&f, text).unwrap();
        names.insert(f.clone(), label.clone());
        files.push(f);
    }
    let bin = kubectl();
    let results: Vec<(PathBuf, Result<bool, String>)> = std::thread::scope(|s| {
        let half = files.len().div_ceil(2);
        let handles: Vec<_> = files
            .chunks(half)
            .map(|chunk| {
                let bin = &bin;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|f| (f.clone(), compare_file(bin, f)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut errors = Vec::new();
    for (f, r) in &results {
        let label = &names[f];
        let known = KNOWN_DIFFERENCES.iter().find(|(l, _)| l == label);
        match (r, known) {
            (Err(e), None) => errors.push(format!(
                "[{label}] {e}\n--- input\n{}",
                cases[files.iter().position(|x| x == f).unwrap()].1
            )),
            (Err(e), Some((_, side))) => {
                assert!(e.contains(side), "[{label}] differs otherwise: {e}")
            }
            (Ok(_), Some(_)) => errors.push(format!(
                "[{label}] now reads as kubectl does: remove it from KNOWN_DIFFERENCES"
            )),
            (Ok(_), None) => {}
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        errors.is_empty(),
        "{} of {} generated cases read differently:\n{}",
        errors.len(),
        cases.len(),
        errors.join("\n\n")
    );
    assert!(cases.len() > 1000, "{}", cases.len());
}
