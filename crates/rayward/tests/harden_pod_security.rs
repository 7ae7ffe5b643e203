//! `rayward harden --namespace NS` labels NS Pod Security `restricted`: every pod template
//! it writes must then be admitted there, the non-Ray workloads beside the Ray objects
//! (KubeRay's Redis Deployment, the bare Pod of the HA sample) included. Held to the
//! testkit's `restricted` check, written from the published control list independently of
//! harden's own judgement. A workload that cannot comply is reported, and its namespace
//! enforces `baseline` (warn and audit stay `restricted`) with the reason annotated.

use rayward_testkit::cli::{run, run_stdin};
use rayward_testkit::pss;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const REASON: &str = "rayward.io/pod-security-baseline";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1");
    c
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay")
}

fn objects(yaml: &str) -> Vec<Value> {
    let l = rayward_manifest::load_bytes("out.yaml", yaml.as_bytes(), &Default::default());
    assert!(l.error.is_none(), "{:?}", l.error);
    l.objects
        .iter()
        .map(|o| rayward_testkit::yaml::to_json(&o.root))
        .collect()
}

/// `rayward harden --namespace ray-test` of one input: (output objects, stderr).
fn harden(input: &Path) -> (Vec<Value>, String) {
    let (code, out, err) = run(bin()
        .args(["harden", "--no-config", "--namespace", "ray-test"])
        .arg(input));
    // 1: findings harden leaves to the user (a Ray upgrade, …); never an input error.
    assert!(code == 0 || code == 1, "{}: {code}\n{err}", input.display());
    (objects(&out), err)
}

/// Every pod template of `objs` that fails `restricted`, as (Kind/name, violations).
fn refused(objs: &[Value]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for o in objs {
        for (at, t) in pss::pod_templates(o) {
            let v = pss::restricted_violations(t);
            if !v.is_empty() {
                out.push((
                    format!(
                        "{}/{} {at}",
                        o["kind"].as_str().unwrap(),
                        o["metadata"]["name"].as_str().unwrap()
                    ),
                    v,
                ));
            }
        }
    }
    out
}

fn namespace(objs: &[Value]) -> &Value {
    objs.iter()
        .find(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == "ray-test")
        .expect("harden --namespace writes the Namespace")
}

fn corpus_files() -> Vec<PathBuf> {
    let (files, errors) = rayward_manifest::expand_paths(&[corpus()]);
    assert!(errors.is_empty(), "{errors:?}");
    files
}

#[test]
fn every_pod_template_of_the_hardened_corpus_is_admitted_by_its_namespace() {
    let mut templates = 0;
    let mut plain = 0;
    let mut baseline_files = Vec::new();
    for f in corpus_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.contains("kind:") {
            continue;
        }
        let (objs, err) = harden(&f);
        let n: usize = objs.iter().map(|o| pss::pod_templates(o).len()).sum();
        if n == 0 {
            continue;
        }
        templates += n;
        plain += objs
            .iter()
            .filter(|o| {
                !o["apiVersion"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("ray.io/")
            })
            .map(|o| pss::pod_templates(o).len())
            .sum::<usize>();
        let bad = refused(&objs);
        let ns = namespace(&objs);
        let labels = &ns["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
        if bad.is_empty() {
            assert_eq!(
                labels["pod-security.kubernetes.io/enforce"],
                "restricted",
                "{}",
                f.display()
            );
            assert!(ns["metadata"]["annotations"][REASON].is_null());
            continue;
        }
        // Some pod cannot comply: the namespace enforces baseline, names every such
        // object, and harden said so on stderr.
        baseline_files.push(f.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(
            labels["pod-security.kubernetes.io/enforce"],
            "baseline",
            "{}: {bad:#?}",
            f.display()
        );
        let why = ns["metadata"]["annotations"][REASON].as_str().unwrap_or("");
        for (what, v) in &bad {
            let object = what.split(' ').next().unwrap();
            assert!(
                why.contains(object),
                "{}: {what} fails {v:?} but {REASON} is `{why}`",
                f.display()
            );
            assert!(
                err.contains(&format!("pod security: {object} in namespace ray-test")),
                "{}: {err}",
                f.display()
            );
            if v.iter().any(|x| x.starts_with("AppArmor")) {
                assert!(err.contains("baseline refuses it too"), "{err}");
            }
        }
    }
    assert!(templates > 200, "{templates} pod templates");
    assert!(plain >= 2, "{plain} non-Ray pod templates");
    // Only KubeRay's gVisor samples, whose pods ask for an unconfined AppArmor profile
    // (which baseline refuses too: the note says so).
    assert_eq!(
        baseline_files,
        ["ray-cluster.sandbox.yaml", "ray-job.sandbox.yaml"]
    );
}

#[test]
fn the_redis_deployment_and_the_bare_pod_are_hardened_too() {
    for (file, kind, name) in [
        (
            "ray-operator/config/samples/ray-cluster.external-redis.yaml",
            "Deployment",
            "redis",
        ),
        (
            "ray-operator/config/samples/ray-service.high-availability.yaml",
            "Pod",
            "ray-pod",
        ),
    ] {
        let input = corpus().join(file);
        let before = objects(&std::fs::read_to_string(&input).unwrap());
        let o = before
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap();
        // As KubeRay ships it, restricted refuses it.
        assert!(!refused(std::slice::from_ref(o)).is_empty(), "{file}");
        let (after, _) = harden(&input);
        let o = after
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap();
        assert_eq!(o["metadata"]["namespace"], "ray-test");
        assert!(refused(std::slice::from_ref(o)).is_empty(), "{file}: {o:#}");
        for (_, t) in pss::pod_templates(o) {
            for c in t["spec"]["containers"].as_array().unwrap() {
                for k in ["cpu", "memory"] {
                    assert!(c["resources"]["limits"][k].is_string(), "{file} {k}");
                }
            }
        }
        assert_eq!(
            namespace(&after)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
    }
}

/// A log shipper that needs the node's files and a cache that runs as root as its image
/// was pinned: neither can meet restricted, so they keep their settings, are reported,
/// and the namespace enforces baseline. The compliant Deployment beside them is hardened.
const MIXED: &str = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: log-shipper
spec:
  selector:
    matchLabels: {app: logs}
  template:
    metadata:
      labels: {app: logs}
    spec:
      containers:
      - name: shipper
        image: fluent/fluent-bit:3.0
        volumeMounts:
        - {name: varlog, mountPath: /var/log, readOnly: true}
      volumes:
      - name: varlog
        hostPath: {path: /var/log}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cache-warm
spec:
  schedule: '0 * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          securityContext:
            runAsUser: 0
          containers:
          - name: warm
            image: registry.example.com/warm@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: store
spec:
  serviceName: store
  selector:
    matchLabels: {app: store}
  template:
    metadata:
      labels: {app: store}
    spec:
      containers:
      - name: store
        image: registry.example.com/store:1
";

#[test]
fn workloads_that_cannot_comply_are_reported_and_the_namespace_enforces_baseline() {
    let (code, out, err) = run_stdin(
        bin().args(["harden", "--no-config", "--namespace", "ray-test", "-"]),
        MIXED.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let objs = objects(&out);
    let ns = namespace(&objs);
    let labels = &ns["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    let why = ns["metadata"]["annotations"][REASON].as_str().unwrap();
    assert!(
        why.contains("DaemonSet/log-shipper: volume `varlog` of type hostPath"),
        "{why}"
    );
    assert!(why.contains("CronJob/cache-warm: runAsUser: 0"), "{why}");
    assert!(!why.contains("StatefulSet/store"), "{why}");
    for o in ["DaemonSet/log-shipper", "CronJob/cache-warm"] {
        assert!(
            err.contains(&format!(
                "pod security: {o} in namespace ray-test cannot meet Pod Security restricted"
            )),
            "{err}"
        );
    }
    let get = |kind: &str| objs.iter().find(|o| o["kind"] == kind).unwrap();
    // The ones that cannot comply keep their security settings (the root uid stays, no
    // runAsNonRoot is forced on them) but get requests and limits.
    let cron = get("CronJob");
    let spec = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(spec["securityContext"]["runAsUser"], 0);
    assert!(spec["securityContext"]["runAsNonRoot"].is_null());
    assert!(spec["containers"][0]["resources"]["limits"]["memory"].is_string());
    let ds = get("DaemonSet");
    assert!(ds["spec"]["template"]["spec"]["containers"][0]["securityContext"].is_null());
    // The compliant one is hardened and passes restricted.
    let sts = get("StatefulSet");
    assert!(refused(std::slice::from_ref(sts)).is_empty(), "{sts:#}");
    assert_eq!(refused(&objs).len(), 2);

    // Idempotent: hardening the output again changes nothing.
    let (code, again, err) = run_stdin(
        bin().args(["harden", "--no-config", "--namespace", "ray-test", "-"]),
        out.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(objects(&again), objs);

    // Without --namespace harden labels no namespace, and other workloads pass unchanged.
    let (_, plain, _) = run_stdin(bin().args(["harden", "--no-config", "-"]), MIXED.as_bytes());
    assert_eq!(objects(&plain), objects(MIXED));
}
