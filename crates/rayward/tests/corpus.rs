//! The audit over the real KubeRay manifests in `../shared/corpus/kuberay` (132 files, 241
//! documents): no input errors, nothing from the files that are not manifests, and
//! specific findings in specific files, each chosen for a reason given beside it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    assert!(
        p.is_dir(),
        "the shared corpus must sit at ../shared beside the repository: {}",
        p.display()
    );
    p
}

/// The JSON report of one audit over the whole corpus, run once for all tests.
fn report() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_rayward"))
            .arg("audit")
            .arg(corpus())
            .args(["--format", "json", "--no-config"])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(1),
            "findings, no input error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    })
}

fn rel(f: &Value) -> String {
    let file = f["file"].as_str().unwrap();
    file.split("corpus/kuberay/")
        .nth(1)
        .unwrap_or(file)
        .to_string()
}

/// Findings of `rule` in the file whose corpus-relative path is `file`, as (line, path).
fn found(rule: &str, file: &str) -> Vec<(u64, String)> {
    report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule && rel(f) == file)
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn message(rule: &str, file: &str, line: u64) -> String {
    report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == rule && rel(f) == file && f["line"] == line)
        .map(|f| f["message"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {rule} at {file}:{line}"))
}

#[test]
fn whole_corpus_loads_without_errors() {
    let s = &report()["summary"];
    assert_eq!(
        report()["errors"].as_array().unwrap().len(),
        0,
        "{:#}",
        report()["errors"]
    );
    assert_eq!(s["files"], 132);
    // 241 documents, of which 9 files' documents are not Kubernetes objects.
    assert_eq!(s["objects"], 232);
}

#[test]
fn files_that_are_not_manifests_give_nothing() {
    // clusterloader2 configs that mention `kind: RayCluster` in their text, and the
    // helm-unittest spec: read without crashing, and no finding invented.
    let not_manifests: Vec<String> = std::fs::read_dir(corpus().join("benchmark/perf-tests"))
        .unwrap()
        .map(|e| {
            format!(
                "benchmark/perf-tests/{}/config.yaml",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .chain(["helm-chart/ray-cluster/tests/raycluster_test.yaml".to_string()])
        .filter(|p| corpus().join(p).is_file())
        .collect();
    assert_eq!(not_manifests.len(), 9, "{not_manifests:?}");
    for f in report()["findings"].as_array().unwrap() {
        assert!(
            !not_manifests.contains(&rel(f)),
            "finding in a non-manifest: {f:#}"
        );
    }
}

#[test]
fn py_spy_sample_adds_sys_ptrace() {
    // The py-spy sample adds SYS_PTRACE so py-spy can attach to Ray workers: any code
    // running in the pod can then read other processes' memory (guide §5).
    let f = "ray-operator/config/samples/ray-cluster.py-spy.yaml";
    assert_eq!(
        found("RW506", f),
        vec![(
            30,
            "spec.headGroupSpec.template.spec.containers[0].securityContext.capabilities.add[0]"
                .to_string()
        )]
    );
    assert!(message("RW506", f, 30).contains("SYS_PTRACE"));
}

#[test]
fn nightly_images_are_mutable() {
    // The label-selector sample runs `rayproject/ray:nightly` in all four groups (§6).
    let f = "ray-operator/config/samples/ray-cluster-label-selector.yaml";
    let lines: Vec<u64> = found("RW601", f).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, vec![31, 74, 98, 121]);
}

#[test]
fn exposed_head_services() {
    // A LoadBalancer custom head service and a NodePort head service expose GCS, the
    // dashboard/Jobs API and the Ray Client outside the cluster (§1.3, §1.6).
    assert_eq!(
        found(
            "RW110",
            "ray-operator/config/samples/ray-cluster.custom-head-service.yaml"
        ),
        vec![(25, "spec.headGroupSpec.headService.spec.type".to_string())]
    );
    assert_eq!(
        found(
            "RW110",
            "ray-operator/config/samples/ray-cluster.separate-ingress.yaml"
        ),
        vec![(12, "spec.headGroupSpec.serviceType".to_string())]
    );
    assert!(message(
        "RW110",
        "ray-operator/config/samples/ray-cluster.separate-ingress.yaml",
        12
    )
    .contains("8265"));
}

#[test]
fn ingress_to_dashboard_without_auth() {
    // The corpus's only Ingress routes to the head service's dashboard port with nothing
    // but a rewrite annotation: the Jobs API is reachable unauthenticated (§1.5).
    assert_eq!(
        found(
            "RW113",
            "ray-operator/config/samples/ray-cluster.separate-ingress.yaml"
        ),
        vec![(
            60,
            "spec.rules[0].http.paths[0].backend.service.name".to_string()
        )]
    );
}

#[test]
fn rayjob_modes_and_shared_clusters() {
    // InteractiveMode waits for users to submit through the dashboard (§1.6).
    assert_eq!(
        found(
            "RW901",
            "ray-operator/config/samples/ray-job.interactive-mode.yaml"
        ),
        vec![(11, "spec.submissionMode".to_string())]
    );
    // clusterSelector runs the job on a shared, long-lived cluster (§9).
    assert_eq!(
        found(
            "RW902",
            "ray-operator/config/samples/ray-job.use-existing-raycluster.yaml"
        ),
        vec![(8, "spec.clusterSelector".to_string())]
    );
}

#[test]
fn plaintext_s3_keys_in_history_server_config() {
    // The history server's Deployment carries MinIO's S3 keys as literal env values (§8).
    let f = found("RW801", "historyserver/config/historyserver.yaml");
    assert_eq!(
        f,
        vec![
            (
                40,
                "spec.template.spec.containers[0].env[1].value".to_string()
            ),
            (
                42,
                "spec.template.spec.containers[0].env[2].value".to_string()
            ),
        ]
    );
    // The secret itself never appears in the report.
    let all = serde_json::to_string(report()).unwrap();
    assert!(
        !all.contains("minioadmin"),
        "a credential leaked into the report"
    );
}

#[test]
fn vulnerable_ray_version_in_the_main_sample() {
    // The main sample runs Ray 2.52.0: before the fixes of CVE-2026-27482 (2.54.0) and
    // CVE-2026-57516 (2.56.0) (§6, CONTEXT §10).
    let f = "ray-operator/config/samples/ray-cluster.sample.yaml";
    assert_eq!(
        found("RW603", f),
        vec![(
            33,
            "spec.headGroupSpec.template.spec.containers[0].image".to_string()
        )]
    );
    let m = message("RW603", f, 33);
    assert!(
        m.contains("CVE-2026-27482") && m.contains("CVE-2026-57516"),
        "{m}"
    );
}

#[test]
fn tls_sample_is_not_reported_for_tls() {
    // The TLS sample sets RAY_USE_TLS and the three certificate variables on every Ray
    // container; no TLS finding may appear there, while the plain sample gets one per group.
    let tls = "ray-operator/config/samples/ray-cluster.tls.yaml";
    assert!(found("RW101", tls).is_empty() && found("RW102", tls).is_empty());
    assert!(!found(
        "RW101",
        "ray-operator/config/samples/ray-cluster.sample.yaml"
    )
    .is_empty());
}

#[test]
fn secret_reader_role_bound_to_ray_pods_account() {
    // The history-server config binds a Role that reads Secrets to the `historyserver`
    // account, which the GCS-backed Ray pods also run as: any Ray job could read every
    // Secret of the namespace (§4).
    let f = "historyserver/config/service_account_auth_token_mode.yaml";
    assert_eq!(found("RW403", f), vec![(15, "rules[0]".to_string())]);
    assert!(message("RW403", f, 15).contains("historyserver"));
}

#[test]
fn missing_network_policies_are_reported_once_per_namespace() {
    // No NetworkPolicy object in the whole corpus: one finding for the namespace (every
    // Ray object leaves it unset), not one per cluster (§1.4).
    let all: Vec<&Value> = report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "RW140")
        .collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(all[0]["message"]
        .as_str()
        .unwrap()
        .contains("no NetworkPolicy"));
}
