//! Harden on odd and hostile input: the fuzzing seeds (`fuzz/corpus/load/`) and shapes no
//! real manifest has (scalars where maps belong, huge replica counts, duplicate keys).
//! Each input runs on its own thread with a deadline; harden must neither panic nor hang,
//! its output must load again, and hardening that output must change nothing.

use rayward_harden::{harden_bundle, Options};
use rayward_manifest::emit::to_yaml_stream;
use rayward_manifest::{load_bytes, Limits};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

const ODD: &[&str] = &[
    "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a}\nspec: 5\n",
    "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a}\nspec:\n  headGroupSpec: []\n  workerGroupSpecs: x\n",
    "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: 7\n        securityContext: nope\n",
    "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers:\n        - name: h\n          env: {a: b}\n          securityContext: [x]\n          resources: 3\n          volumeMounts: oops\n        initContainers: {}\n        volumes: 1\n",
    "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a}\nspec:\n  enableInTreeAutoscaling: true\n  autoscalerOptions: 9\n  workerGroupSpecs:\n  - groupName: g\n    maxReplicas: 9223372036854775807\n    numOfHosts: 9223372036854775807\n    template:\n      spec:\n        containers:\n        - name: w\n          resources: {limits: {cpu: 1e300, memory: 99999Ei, nvidia.com/gpu: 1e30}}\n",
    "apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j}\nspec:\n  submissionMode: 3\n  shutdownAfterJobFinishes: maybe\n  rayClusterSpec:\n    headGroupSpec:\n      template:\n        spec:\n          containers:\n          - {name: h, securityContext: {capabilities: {add: ALL, drop: NONE}}}\n",
    "apiVersion: ray.io/v1\nkind: RayService\nmetadata: {name: s, name: t}\nspec:\n  serveService: {spec: {type: NodePort, ports: 1}}\n  rayClusterConfig: null\n",
    "apiVersion: ray.io/v1\nkind: RayCronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    rayClusterSpec:\n      headGroupSpec:\n        template:\n          metadata: 1\n          spec: {containers: [{name: h}]}\n",
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: ray.io/v1\n  kind: RayCluster\n  metadata: {name: l}\n  spec: {}\n- 5\n",
];

fn run_one(name: String, bytes: Vec<u8>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let n = name.clone();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| {
            let l = load_bytes(&n, &bytes, &Limits::default());
            let mut opts = Options::default();
            opts.fix.namespace = Some("ns".into());
            let b = harden_bundle(&l.objects, &opts);
            let text = to_yaml_stream(b.objects().map(|o| &o.root));
            let back = load_bytes("out.yaml", text.as_bytes(), &Limits::default());
            if let Some(e) = back.error {
                return Err(format!("output does not load: {e}\n{text}"));
            }
            let again = harden_bundle(&back.objects, &opts);
            let text2 = to_yaml_stream(again.objects().map(|o| &o.root));
            if text2 != text {
                return Err(format!(
                    "not idempotent:\n{text}\n---- became ----\n{text2}"
                ));
            }
            Ok(())
        });
        let _ = tx.send(r.unwrap_or_else(|_| Err("panicked".into())));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r.map_err(|e| format!("{name}: {e}")),
        Err(_) => Err(format!("{name}: no answer within {DEADLINE:?}")),
    }
}

#[test]
fn odd_shapes_neither_panic_nor_hang() {
    let mut failures = Vec::new();
    for (i, text) in ODD.iter().enumerate() {
        if let Err(e) = run_one(format!("odd[{i}]"), text.as_bytes().to_vec()) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fuzz_seeds_neither_panic_nor_hang() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/load");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} seeds", files.len());
    let mut failures = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if let Err(e) = run_one(f.display().to_string(), bytes) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
