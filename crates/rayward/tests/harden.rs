//! `rayward harden` end to end: stdout stream, `-o DIR`, `--diff`, standard input,
//! options, exit codes, and bad input.

use rayward_testkit::cli::{repo_root as root, run, run_stdin, tmp};
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1").arg("harden").arg("--no-config");
    c
}

fn audit_json(path: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(["audit", "--no-config", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn output_dir_holds_one_file_per_input_and_the_companions() {
    let out = tmp("out");
    let (code, stdout, stderr) = run(bin()
        .arg(root().join("examples/insecure"))
        .args(["--namespace", "ray-team-a", "-o"])
        .arg(&out));
    // Plaintext keys and vulnerable versions are left to the user: exit 1.
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for f in [
        "raycluster.yaml",
        "rayjob.yaml",
        "exposure.yaml",
        "companions.yaml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing: {stderr}");
    }
    assert!(stderr.contains("RW801"), "{stderr}");
    assert!(
        stderr.contains("pod security: RayCluster/raycluster-demo in namespace ray-team-a cannot meet Pod Security restricted"),
        "{stderr}"
    );
    let companions = std::fs::read_to_string(out.join("companions.yaml")).unwrap();
    // The insecure worker group mounts a hostPath (RW505 leaves where the data comes from
    // to the user): restricted would refuse its pods, so the namespace enforces baseline,
    // keeps warn and audit at restricted, and says why (docs/harden.md#pod-security).
    for want in [
        "kind: Namespace",
        "pod-security.kubernetes.io/enforce: baseline",
        "pod-security.kubernetes.io/warn: restricted",
        "pod-security.kubernetes.io/audit: restricted",
        "rayward.io/pod-security-baseline: \"restricted would refuse: RayCluster/raycluster-demo: spec.workerGroupSpecs[0].template.spec volume `host-data` of type hostPath",
        "kind: ResourceQuota",
        "kind: NetworkPolicy",
        "kind: ServiceAccount",
    ] {
        assert!(companions.contains(want), "{want}");
    }
    // What the rules say about the output: only what harden reported as unfixed.
    let report = audit_json(&out);
    let ids: std::collections::BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    for fixed in [
        "RW101", "RW110", "RW114", "RW140", "RW201", "RW202", "RW401", "RW501", "RW701", "RW901",
    ] {
        assert!(
            !ids.contains(fixed),
            "{fixed} still reported on the output: {ids:?}"
        );
    }
    for id in &ids {
        assert!(
            stderr.contains(id.as_str()),
            "{id} not reported by harden:\n{stderr}"
        );
    }
}

#[test]
fn stdout_is_one_stream_that_reloads() {
    let (code, stdout, stderr) = run(bin()
        .arg(root().join("examples/insecure/raycluster.yaml"))
        .args(["--fail-on", "none"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("apiVersion: ray.io/v1\nkind: RayCluster\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n---\napiVersion: networking.k8s.io/v1\n"));
    // Harden again from its own output: nothing left to change.
    let (_, again, stderr2) = run_stdin(
        bin().arg("-").args(["--fail-on", "none"]),
        stdout.as_bytes(),
    );
    assert_eq!(again, stdout, "harden is idempotent through the CLI");
    assert!(stderr2.contains(" 0 change(s)"), "{stderr2}");
}

#[test]
fn diff_shows_each_change() {
    let (code, stdout, stderr) = run(bin()
        .arg(root().join("examples/insecure/rayjob.yaml"))
        .args(["--diff", "--fail-on", "none"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("--- a/"), "{stdout}");
    assert!(
        stdout.contains("-  submissionMode: HTTPMode\n+  submissionMode: K8sJobMode\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  shutdownAfterJobFinishes: true"),
        "{stdout}"
    );
    assert!(stdout.contains("--- /dev/null"), "companions are new files");
    assert!(
        !stdout.contains("\napiVersion: ray.io/v1\n"),
        "--diff prints no plain YAML"
    );
}

#[test]
fn stdin_and_options() {
    let input = b"apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: c, namespace: t}\nspec:\n  rayVersion: '2.60.0'\n  headGroupSpec:\n    rayStartParams: {}\n    template:\n      spec:\n        containers: [{name: h, image: 'rayproject/ray:2.60.0@sha256:0f4c1c3b7f0a6f7e3c3a4d1b9e2f8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a'}]\n";
    let (code, stdout, stderr) = run_stdin(
        bin().arg("-").args([
            "--dashboard-from",
            "10.0.0.0/8",
            "--ca-secret",
            "my-ca",
            "--cert-image",
            "registry.example.com/rayward@sha256:0f4c1c3b7f0a6f7e3c3a4d1b9e2f8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
            "--default-cpu",
            "500m",
            "--default-memory",
            "1Gi",
            "--egress-to",
            "10.20.0.0/16",
        ]),
        input,
    );
    assert_eq!(code, 0, "everything is fixed: {stderr}");
    for want in [
        "secretName: my-ca",
        "cidr: 10.0.0.0/8",
        "cpu: 500m",
        "memory: 1Gi",
        "registry.example.com/rayward@sha256",
    ] {
        assert!(stdout.contains(want), "{want} missing:\n{stdout}");
    }
}

#[test]
fn bad_input_is_exit_2_and_writes_nothing() {
    let dir = tmp("bad");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: x\n",
    )
    .unwrap();
    let out = dir.join("out");
    let (code, stdout, stderr) = run(bin()
        .arg(root().join("examples/insecure/raycluster.yaml"))
        .arg(&bad)
        .arg("-o")
        .arg(&out));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("bad.yaml:"),
        "names the file and line: {stderr}"
    );
    assert!(!out.exists(), "nothing written on input errors");

    let (code, _, stderr) = run(bin().arg(dir.join("missing.yaml")));
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.yaml"), "{stderr}");

    let (code, _, stderr) = run_stdin(bin().arg("-"), b"\x00\x01binary");
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn bad_options_are_exit_2() {
    let f = root().join("examples/insecure/raycluster.yaml");
    for (args, says) in [
        (vec!["--dashboard-from", "10.0.0.0/99"], "--dashboard-from"),
        (vec!["--namespace", "Not_Valid"], "--namespace"),
        (vec!["--default-cpu", "lots"], "--default-cpu"),
        (vec!["--fail-on", "sometimes"], "--fail-on"),
        (vec!["--egress-to", "team-a"], "--egress-to"),
    ] {
        let (code, stdout, stderr) = run(bin().arg(&f).args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn config_harden_section_sets_defaults_and_flags_win() {
    let dir = tmp("config");
    let cfg = dir.join("rayward.toml");
    std::fs::write(
        &cfg,
        "[harden]\nnamespace = \"from-config\"\nca-secret = \"config-ca\"\n",
    )
    .unwrap();
    let f = root().join("examples/insecure/raycluster.yaml");
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.args(["harden", "--fail-on", "none", "--config"])
        .arg(&cfg)
        .arg(&f);
    let (code, stdout, stderr) = run(&mut c);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("namespace: from-config") && stdout.contains("secretName: config-ca"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.args([
        "harden",
        "--fail-on",
        "none",
        "--namespace",
        "from-flag",
        "--config",
    ])
    .arg(&cfg)
    .arg(&f);
    let (_, stdout, _) = run(&mut c);
    assert!(stdout.contains("namespace: from-flag") && !stdout.contains("from-config"));

    std::fs::write(&cfg, "[harden]\nnamespaces = \"typo\"\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.args(["harden", "--config"]).arg(&cfg).arg(&f);
    let (code, _, stderr) = run(&mut c);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("rayward.toml:2"),
        "names the config line: {stderr}"
    );
}

#[test]
fn json_inputs_come_out_as_yaml_under_their_folder() {
    let dir = tmp("json");
    let sub = dir.join("in/team");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("c.json"),
        r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"name":"j"},"spec":{"headGroupSpec":{"rayStartParams":{},"template":{"spec":{"containers":[{"name":"h","image":"rayproject/ray:2.60.0"}]}}}}}"#,
    )
    .unwrap();
    let out = dir.join("out");
    let (code, _, stderr) = run(bin()
        .arg(dir.join("in"))
        .args(["--fail-on", "none", "-o"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(out.join("team/c.yaml")).expect("team/c.yaml");
    assert!(
        text.starts_with("apiVersion: ray.io/v1\nkind: RayCluster\n"),
        "{text}"
    );
    assert!(out.join("companions.yaml").is_file());
}

#[test]
fn workload_identity_answers_plaintext_keys_and_bad_values_exit_2() {
    let insecure = root().join("examples/insecure");
    // Without the flag RW801 is left to the user.
    let (_, _, stderr) = run(bin().arg(&insecure).args(["--namespace", "ray-team-a"]));
    assert!(stderr.contains("RW801"), "{stderr}");
    // With it, the keys go and the Ray pods' accounts carry the identity.
    let (code, stdout, stderr) = run(bin().arg(&insecure).args([
        "--namespace",
        "ray-team-a",
        "--workload-identity",
        "irsa:arn:aws:iam::123456789012:role/ray-team-a",
    ]));
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(!stderr.contains("RW801"), "{stderr}");
    for key in [
        "AWS_SECRET_ACCESS_KEY",
        "OSS_ACCESS_KEY_SECRET",
        "wJalrXUtnFEMI",
    ] {
        assert!(!stdout.contains(key), "{key}:\n{stdout}");
    }
    assert_eq!(
        stdout
            .matches("eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/ray-team-a")
            .count(),
        2,
        "the RayCluster's and the RayJob's accounts:\n{stdout}"
    );
    // The diff shows each removal.
    let (_, diff, _) = run(bin().arg(insecure.join("raycluster.yaml")).args([
        "--diff",
        "--workload-identity",
        "gke:ray@my-project.iam.gserviceaccount.com",
    ]));
    assert!(
        diff.contains("-          - name: AWS_SECRET_ACCESS_KEY"),
        "{diff}"
    );
    assert!(
        diff.contains(
            "+    iam.gke.io/gcp-service-account: ray@my-project.iam.gserviceaccount.com"
        ),
        "{diff}"
    );
    for bad in ["rrsa:", "azure:x", "irsa:arn:aws:iam::1:role/x"] {
        let (code, out, err) = run(bin()
            .arg(root().join("examples/insecure"))
            .args(["--workload-identity", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("--workload-identity"), "{bad}: {err}");
    }
}

#[test]
fn history_adds_the_collector_idempotently_and_refuses_bad_stores() {
    let input = b"apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: train, namespace: t}\nspec:\n  entrypoint: python train.py\n  rayClusterSpec:\n    rayVersion: '2.60.0'\n    headGroupSpec:\n      rayStartParams: {}\n      template:\n        spec:\n          containers: [{name: h, image: 'rayproject/ray:2.60.0@sha256:0f4c1c3b7f0a6f7e3c3a4d1b9e2f8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a'}]\n    workerGroupSpecs:\n    - groupName: w\n      replicas: 1\n      rayStartParams: {}\n      template:\n        spec:\n          containers: [{name: w, image: 'rayproject/ray:2.60.0@sha256:0f4c1c3b7f0a6f7e3c3a4d1b9e2f8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a'}]\n";
    let flags = [
        "--history",
        "s3://ray-history/prod",
        "--history-credentials-secret",
        "history-store",
        "--cert-image",
        "registry.example.com/rayward@sha256:0f4c1c3b7f0a6f7e3c3a4d1b9e2f8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
    ];
    let (code, once, stderr) = run_stdin(bin().arg("-").args(flags), input);
    assert_eq!(code, 0, "everything is fixed: {stderr}");
    assert_eq!(once.matches("name: rayward-history\n").count(), 2, "{once}");
    for want in [
        "- s3://ray-history/prod",
        "- RayJob",
        "- $(POD_NAME)",
        "- --head",
        "secretName: history-store",
        "value: http://127.0.0.1:8084/v1/events",
        "mountPath: /tmp/ray",
        "terminationGracePeriodSeconds: 40",
        "port: 443",
    ] {
        assert!(once.contains(want), "{want} missing:\n{once}");
    }
    assert_eq!(once.matches("- --head").count(), 1, "head only");
    // Hardening the output again changes nothing.
    let (code, twice, stderr) = run_stdin(bin().arg("-").args(flags), once.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(twice, once);

    for (args, want) in [
        (
            vec!["--history", "/data"],
            "a directory in a pod dies with it",
        ),
        (
            vec!["--history", "s3://AKIA:key@bucket/x"],
            "holds credentials",
        ),
        (
            vec![
                "--history",
                "s3://b",
                "--history-credentials-secret",
                "Bad_Name",
            ],
            "not a valid Secret name",
        ),
        (vec!["--history-credentials-secret", "s"], "--history"),
    ] {
        let (code, _, stderr) = run_stdin(bin().arg("-").args(&args), input);
        assert_eq!(code, 2, "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("AKIA"), "{stderr}");
    }
}
