//! `--format markdown` through the CLI (issue 16): the summary of `examples/` against a
//! golden file, the length cap on the KubeRay corpus, and hostile names that must not
//! break the tables or bring HTML into a pull-request comment.

use rayward_testkit::cli::{self, run};
use std::path::Path;

fn markdown(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(cli::command(env!("CARGO_BIN_EXE_rayward"))
        .current_dir(dir)
        .args([
            "audit",
            "--no-config",
            "--format",
            "markdown",
            "--fail-on",
            "none",
        ])
        .args(args))
}

/// Regenerate with `cargo run -q -p rayward -- audit --no-config --format markdown
/// --fail-on none examples/ > crates/rayward/tests/golden/audit-examples.md` from the
/// repository's root, and read the diff.
#[test]
fn examples_summary_matches_the_golden_file() {
    let root = cli::repo_root();
    let (code, out, err) = markdown(&root, &["examples/"]);
    assert_eq!(code, 0, "{err}");
    let golden =
        std::fs::read_to_string(root.join("crates/rayward/tests/golden/audit-examples.md"))
            .unwrap();
    assert_eq!(out, golden, "the Markdown summary of examples/ changed");
    // The scorecard's cells are the JSON report's findings per practice and object.
    let (_, json, _) = run(cli::command(env!("CARGO_BIN_EXE_rayward"))
        .current_dir(&root)
        .args([
            "audit",
            "--no-config",
            "--format",
            "json",
            "--fail-on",
            "none",
            "examples/",
        ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pod_security = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["section"] == "5"
                && f["object"]["kind"] == "RayCluster"
                && f["object"]["name"] == "raycluster-demo"
        })
        .count();
    let row = out
        .lines()
        .find(|l| l.starts_with("| Pod security"))
        .unwrap();
    assert!(
        row.contains(&format!("❌ {pod_security} |")),
        "{row} vs {pod_security}"
    );
}

#[test]
fn the_corpus_summary_stays_under_the_cap() {
    let root = cli::repo_root();
    let corpus = rayward_testkit::yaml::corpus_dir();
    let (code, out, err) = markdown(&root, &[corpus.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.len() <= 60_000, "{} bytes", out.len());
    // Hundreds of findings and Ray objects: rows were left out, and the summary says so.
    assert!(
        out.contains("_Not shown:"),
        "{}",
        &out[out.len().saturating_sub(500)..]
    );
    assert!(
        out.contains("namespace "),
        "many objects are grouped by namespace"
    );
}

#[test]
fn hostile_names_stay_text() {
    let dir = cli::tmp("markdown-hostile");
    let f = dir.join("x.yaml");
    std::fs::write(
        &f,
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: \"a|b<img src=x onerror=alert(1)>\\n| injected | row |\"\n  namespace: \"t`](http://evil)\"\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: \"c|<script>\", image: rayproject/ray:2.40.0}]\n",
    )
    .unwrap();
    let (code, out, err) = markdown(&dir, &["x.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("<img") && !out.contains("<script"), "{out}");
    // No link can form: every `](` from the input is escaped (`\](`).
    assert!(
        out.match_indices("](")
            .all(|(i, _)| out[..i].ends_with('\\')),
        "{out}"
    );
    // Every table row has the columns of its header: no cell broke out.
    for table in out.split("\n\n").filter(|t| t.starts_with('|')) {
        let cols = |l: &str| l.replace("\\|", "").matches('|').count();
        let mut lines = table.lines();
        let header = cols(lines.next().unwrap());
        for l in lines {
            assert_eq!(cols(l), header, "{l}");
        }
    }
}
