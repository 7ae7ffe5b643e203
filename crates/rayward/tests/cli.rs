//! The `rayward` binary end to end: inputs, formats, exit codes, config, suppression and
//! hostile input.

use rayward_testkit::cli::{repo_root as root, run, run_stdin, tmp};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1");
    c
}

const PRIVILEGED: &str = "apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: rc
  namespace: team-a
spec:
  headGroupSpec:
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.60.0
          securityContext:
            privileged: true
";

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn findings_of<'a>(v: &'a Value, rule: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .collect()
}

#[test]
fn stdin_json_points_at_the_line() {
    let (code, out, _) = run_stdin(
        bin().args(["audit", "-", "--format", "json", "--no-config"]),
        PRIVILEGED.as_bytes(),
    );
    assert_eq!(code, 1);
    let v = json(&out);
    let f = findings_of(&v, "RW501");
    assert_eq!(f.len(), 1, "{out}");
    assert_eq!(f[0]["file"], "<stdin>");
    assert_eq!(f[0]["line"], 14);
    assert_eq!(f[0]["column"], 25);
    assert_eq!(
        f[0]["path"],
        "spec.headGroupSpec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(f[0]["object"]["kind"], "RayCluster");
    assert_eq!(f[0]["object"]["namespace"], "team-a");
    assert_eq!(f[0]["severity"], "critical");
}

#[test]
fn exit_codes_follow_fail_on() {
    let d = tmp("failon");
    let f = d.join("rc.yaml");
    std::fs::write(&f, PRIVILEGED).unwrap();
    let only = ["--only", "RW501", "--no-config"];
    assert_eq!(run(bin().arg("audit").arg(&f).args(only)).0, 1);
    assert_eq!(
        run(bin()
            .arg("audit")
            .arg(&f)
            .args(only)
            .args(["--fail-on", "critical"]))
        .0,
        1
    );
    assert_eq!(
        run(bin()
            .arg("audit")
            .arg(&f)
            .args(only)
            .args(["--fail-on", "none"]))
        .0,
        0
    );
    // A clean input exits 0.
    let clean = d.join("clean.yaml");
    std::fs::write(
        &clean,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let (code, out, _) = run(bin().arg("audit").arg(&clean).arg("--no-config"));
    assert_eq!(code, 0, "{out}");
    // Usage errors exit 2.
    assert_eq!(
        run(bin().args(["audit", "--fail-on", "severe"]).arg(&f)).0,
        2
    );
    assert_eq!(run(bin().args(["audit", "--bogus"])).0, 2);
    assert_eq!(run(bin().args(["audit", "--only", "RW999"]).arg(&f)).0, 2);
}

#[test]
fn text_output_groups_by_file_with_location_and_fix() {
    let d = tmp("text");
    let f = d.join("rc.yaml");
    std::fs::write(&f, PRIVILEGED).unwrap();
    let (code, out, _) = run(bin()
        .arg("audit")
        .arg(&f)
        .args(["--only", "RW501", "--no-config"]));
    assert_eq!(code, 1);
    let loc = format!(
        "{}:14:25: critical RW501 privileged-container RayCluster/team-a/rc",
        f.display()
    );
    assert!(out.contains(&loc), "{out}");
    assert!(out.contains("fix: "), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when not a terminal: {out}"
    );
    assert!(
        out.trim_end()
            .ends_with("1 finding (1 critical) in 1 objects from 1 files"),
        "{out}"
    );
}

#[test]
fn sarif_has_rules_and_regions() {
    let (code, out, _) = run_stdin(
        bin().args(["audit", "-", "--format", "sarif", "--no-config"]),
        PRIVILEGED.as_bytes(),
    );
    assert_eq!(code, 1);
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let run0 = &v["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules
        .iter()
        .any(|r| r["id"] == "RW501" && r["help"]["markdown"].as_str().unwrap().contains("## Fix")));
    let res = run0["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "RW501")
        .unwrap();
    let region = &res["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 14);
    assert_eq!(region["startColumn"], 25);
    assert_eq!(res["level"], "error");
    let idx = res["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[idx]["id"], "RW501");
}

#[test]
fn junit_lists_rules_and_failures() {
    let (_, out, _) = run_stdin(
        bin().args([
            "audit",
            "-",
            "--format",
            "junit",
            "--only",
            "RW501",
            "--no-config",
        ]),
        PRIVILEGED.as_bytes(),
    );
    assert!(out.starts_with("<?xml"), "{out}");
    assert!(out.contains("<failure type=\"critical\" message=\"&lt;stdin&gt;:14:25: container `ray-head` runs privileged\""), "{out}");
}

#[test]
fn suppression_annotation_keeps_the_reason() {
    let input = PRIVILEGED.replace(
        "  namespace: team-a\n",
        "  namespace: team-a\n  annotations:\n    rayward.io/ignore: \"RW501 # approved for debugging\"\n",
    );
    let (code, out, _) = run_stdin(
        bin().args([
            "audit",
            "-",
            "--format",
            "json",
            "--only",
            "RW501",
            "--no-config",
        ]),
        input.as_bytes(),
    );
    assert_eq!(code, 0, "{out}");
    let v = json(&out);
    assert_eq!(
        findings_of(&v, "RW501")[0]["suppressed"],
        "approved for debugging"
    );
    assert_eq!(v["summary"]["suppressed"], 1);
    assert_eq!(v["summary"]["findings"], 0);
}

#[test]
fn config_file_is_found_upward_and_applied() {
    let d = tmp("config");
    let sub = d.join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("rc.yaml"), PRIVILEGED).unwrap();
    std::fs::write(
        d.join(".rayward.toml"),
        "fail-on = \"critical\"\n[rules]\nonly = [\"RW501\"]\nseverity = { RW501 = \"high\" }\n",
    )
    .unwrap();
    let (code, out, err) = run(bin()
        .current_dir(&sub)
        .args(["audit", "rc.yaml", "--format", "json"]));
    assert_eq!(code, 0, "high < critical: {out} {err}");
    let v = json(&out);
    assert_eq!(findings_of(&v, "RW501")[0]["severity"], "high");
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    // --no-config ignores it.
    let (code, _, _) =
        run(bin()
            .current_dir(&sub)
            .args(["audit", "rc.yaml", "--no-config", "--only", "RW501"]));
    assert_eq!(code, 1);
    // A broken config is an error that names the file and line.
    std::fs::write(
        d.join(".rayward.toml"),
        "[rules]\ndisable = [\"RW501\"]\nbogus = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(bin().current_dir(&sub).args(["audit", "rc.yaml"]));
    assert_eq!(code, 2);
    assert!(err.contains(".rayward.toml:3"), "{err}");
}

#[test]
fn bad_inputs_are_errors_with_places_and_other_files_still_run() {
    let d = tmp("bad");
    std::fs::write(d.join("a-good.yaml"), PRIVILEGED).unwrap();
    std::fs::write(
        d.join("b-malformed.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(d.join("c-binary.yaml"), b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
    std::fs::write(
        d.join("d-utf8.yaml"),
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: \xc3\x28\n",
    )
    .unwrap();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    std::fs::write(d.join("e-bomb.yaml"), bomb).unwrap();
    std::fs::write(
        d.join("f-deep.yaml"),
        format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000)),
    )
    .unwrap();
    std::fs::write(
        d.join("g-notk8s.yaml"),
        "name: clusterloader\nsteps: [1, 2]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("h-unknown.yaml"),
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n",
    )
    .unwrap();
    let missing = d.join("nope.yaml");
    let start = std::time::Instant::now();
    let (code, out, _) = run(bin().arg("audit").arg(&d).arg(&missing).args([
        "--format",
        "json",
        "--no-config",
        "--only",
        "RW501",
    ]));
    let took = start.elapsed();
    assert_eq!(code, 2, "{out}");
    let v = json(&out);
    let errs: Vec<(String, u64, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let file = Path::new(e["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                file,
                e["line"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let find = |name: &str| {
        errs.iter()
            .find(|(f, _, _)| f == name)
            .unwrap_or_else(|| panic!("no error for {name}: {errs:?}"))
    };
    assert!(find("b-malformed.yaml").2.contains("YAML syntax error"));
    assert!(find("b-malformed.yaml").1 >= 3);
    assert_eq!(find("c-binary.yaml").2, "not a text file (NUL byte found)");
    assert_eq!(find("c-binary.yaml").1, 1);
    assert_eq!(find("d-utf8.yaml").2, "not valid UTF-8");
    assert_eq!(find("d-utf8.yaml").1, 4);
    assert!(find("e-bomb.yaml").2.contains("alias bomb"));
    assert!(find("e-bomb.yaml").1 > 1);
    assert!(find("f-deep.yaml").1 == 1);
    assert!(find("nope.yaml").2.starts_with("cannot read"));
    assert_eq!(errs.len(), 6, "{errs:?}");
    // The good file was still audited.
    assert_eq!(findings_of(&v, "RW501").len(), 1);
    // Bounded: hostile input is refused fast (generous bound; a hang would hit it).
    assert!(took.as_secs() < 20, "took {took:?}");
}

#[test]
fn oversized_inputs_are_refused() {
    let d = tmp("big");
    let f = d.join("big.yaml");
    std::fs::write(&f, PRIVILEGED.repeat(10)).unwrap();
    let (code, out, _) = run(bin().arg("audit").arg(&f).args([
        "--max-file-size",
        "100",
        "--no-config",
        "--format",
        "json",
    ]));
    assert_eq!(code, 2);
    assert!(json(&out)["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("over the limit of 100 bytes"));
    let (code, out, _) = run_stdin(
        bin().args([
            "audit",
            "-",
            "--max-file-size",
            "100",
            "--no-config",
            "--format",
            "json",
        ]),
        PRIVILEGED.repeat(10).as_bytes(),
    );
    assert_eq!(code, 2, "{out}");
}

#[test]
fn json_lists_and_json_files_are_read() {
    let d = tmp("json");
    let f = d.join("list.json");
    std::fs::write(
        &f,
        r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "j", "namespace": "x"},
   "spec": {"headGroupSpec": {"template": {"spec": {"containers": [
      {"name": "ray-head", "image": "rayproject/ray:2.60.0", "securityContext": {"privileged": true}}]}}}}}]}"#,
    )
    .unwrap();
    let (code, out, _) = run(bin().arg("audit").arg(&d).args([
        "--format",
        "json",
        "--no-config",
        "--only",
        "RW501",
    ]));
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    let f = findings_of(&v, "RW501");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["line"], 4);
    assert_eq!(f[0]["object"]["name"], "j");
}

#[test]
fn rules_and_explain() {
    let (code, out, _) = run(bin().arg("rules"));
    assert_eq!(code, 0);
    assert!(out.contains("RW501  privileged-container"), "{out}");
    let (code, out, _) = run(bin().args(["explain", "privileged-container"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("## RW501"), "{out}");
    assert!(out.contains("### Fix"), "{out}");
    assert_eq!(run(bin().args(["explain", "RW000"])).0, 2);
}

#[test]
fn docs_rules_md_is_generated_from_the_code() {
    let (_, out, _) = run(bin().args(["rules", "--format", "markdown"]));
    let path = root().join("docs/rules.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == out,
        "docs/rules.md is stale: run `cargo run -q -p rayward -- rules --format markdown > docs/rules.md`"
    );
}

#[test]
fn bundled_examples() {
    // The secure example is the target form: nothing to report.
    let (code, out, _) = run(bin()
        .arg("audit")
        .arg(root().join("examples/secure"))
        .arg("--no-config"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("0 findings in 6 objects from 3 files"),
        "{out}"
    );
    // The insecure examples break most of the guide; each of these rules must fire there.
    let (code, out, _) = run(bin()
        .arg("audit")
        .arg(root().join("examples/insecure"))
        .args(["--no-config", "--format", "json"]));
    assert_eq!(code, 1);
    let v = json(&out);
    let ids: std::collections::BTreeSet<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    for want in [
        "RW101", "RW110", "RW112", "RW113", "RW115", "RW140", "RW141", "RW142", "RW201", "RW202",
        "RW401", "RW402", "RW501", "RW502", "RW503", "RW504", "RW505", "RW506", "RW507", "RW508",
        "RW601", "RW603", "RW701", "RW801", "RW901", "RW903",
    ] {
        assert!(
            ids.contains(want),
            "{want} missing from the insecure examples: {ids:?}"
        );
    }
}
