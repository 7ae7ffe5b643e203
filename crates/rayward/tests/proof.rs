//! Issue 3's proofs that harden's output is real Kubernetes and real KubeRay:
//! - offline: every Ray object of `rayward harden` over the whole KubeRay corpus validates
//!   against the real KubeRay CRD schemas (JSON schema on `openAPIV3Schema`);
//! - `kube_e2e_*`: a real kube-apiserver (v1.20, minimal Ray CRDs) accepts, in a server-side
//!   dry run, the corpus's Ray objects as they are, `examples/secure`, and every object
//!   harden writes for the corpus (Ray objects and companions).

use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use rayward_testkit::crd::{validate_ray_objects, CrdSchemas};
use rayward_testkit::yaml::{corpus_dir, corpus_ray_objects, load_dir, Manifest};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const NS: &str = "rw-proof";

/// `rayward harden` over the whole corpus into a temp dir, once; its objects.
fn hardened_corpus() -> &'static [Manifest] {
    static H: OnceLock<Vec<Manifest>> = OnceLock::new();
    H.get_or_init(|| harden_corpus(&[]))
}

/// The same with `--history`: the collector sidecar in every Ray pod.
fn hardened_corpus_with_history() -> &'static [Manifest] {
    static H: OnceLock<Vec<Manifest>> = OnceLock::new();
    H.get_or_init(|| {
        harden_corpus(&[
            "--history",
            "s3://ray-history/prod",
            "--history-credentials-secret",
            "history-store",
        ])
    })
}

fn harden_corpus(extra: &[&str]) -> Vec<Manifest> {
    let out = std::env::temp_dir().join(format!(
        "rayward-proof-{}-{}",
        std::process::id(),
        extra.len()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(["harden", "--no-config", "--fail-on", "none", "-o"])
        .arg(&out)
        .args(extra)
        .arg(corpus_dir())
        .output()
        .expect("run rayward harden");
    assert!(
        o.status.success(),
        "rayward harden over the corpus: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let objects = load_dir(&out);
    let _ = std::fs::remove_dir_all(&out);
    objects
}

fn examples_secure() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/secure")
}

#[test]
fn hardened_corpus_validates_against_kuberay_crd_schemas() {
    for objects in [hardened_corpus(), hardened_corpus_with_history()] {
        let ray = objects.iter().filter(|m| m.is_ray()).count();
        assert_eq!(
            ray, 116,
            "every Ray object of the corpus comes out hardened"
        );
        let errors = validate_ray_objects(&CrdSchemas::kuberay(), objects);
        assert!(
            errors.is_empty(),
            "{} violations:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
}

#[test]
fn examples_secure_validates_against_kuberay_crd_schemas() {
    let objects = load_dir(&examples_secure());
    assert!(objects.iter().any(Manifest::is_ray));
    let errors = validate_ray_objects(&CrdSchemas::kuberay(), &objects);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_dry_run_accepts_corpus_and_secure_example() {
    let t0 = std::time::Instant::now();
    let k = KubeApiserver::start();
    // One runtime for the whole test: a kube client lives on the runtime that made it.
    rayward_testkit::block_on(async {
        let client = k.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, NS).await;
        let dry = DryRun::new(client).await;
        let t_up = t0.elapsed();

        // The server does refuse what is invalid (else "accepted" would prove nothing).
        let bad = dry
            .create(
                NS,
                &json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                        "metadata": {"name": "Not_A_DNS_Name"}, "spec": {}}),
            )
            .await;
        assert!(bad.is_err(), "an invalid name is refused: {bad:?}");
        let bad = dry
            .create(
                NS,
                &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
            )
            .await;
        assert!(
            bad.as_ref().is_err_and(|e| e.contains("selector")),
            "a Deployment without selector is refused: {bad:?}"
        );

        let corpus = corpus_ray_objects();
        let r = dry.create_all(NS, &corpus).await;
        assert_eq!(r.accepted, 116, "{r:#?}");
        assert!(r.refused.is_empty(), "{}", r.refused.join("\n"));

        let secure = load_dir(&examples_secure());
        let r = dry.create_all(NS, &secure).await;
        assert!(
            r.refused.is_empty() && r.not_served.is_empty(),
            "examples/secure: {r:#?}"
        );
        assert_eq!(r.accepted, secure.len());

        eprintln!(
            "timing: apiserver up + CRDs {t_up:.1?}; corpus and examples/secure dry-run; total {:.1?}",
            t0.elapsed()
        );
    });
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_dry_run_accepts_hardened_corpus() {
    let t0 = std::time::Instant::now();
    let k = KubeApiserver::start();
    rayward_testkit::block_on(async {
        let client = k.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, NS).await;
        let dry = DryRun::new(client).await;
        // Without and with --history (the collector sidecar in every Ray pod).
        for hardened in [hardened_corpus(), hardened_corpus_with_history()] {
            let r = dry.create_all(NS, hardened).await;
            assert!(r.refused.is_empty(), "{}", r.refused.join("\n"));
            // Only third-party kinds of the corpus (Volcano's Queue, …) are not served; no Ray
            // kind and no built-in kind (what harden generates) is among them.
            let unexpected: Vec<_> = hardened
                .iter()
                .filter(|m| !dry.serves(&m.api_version, &m.kind))
                .filter(|m| {
                    m.is_ray() || !m.api_version.contains('.') || m.api_version.contains("k8s.io")
                })
                .map(Manifest::id)
                .collect();
            assert!(unexpected.is_empty(), "not served: {unexpected:?}");
            eprintln!(
                "timing: hardened corpus: {} objects accepted, {} \
             not served (third-party CRDs: {:?}); total {:.1?}",
                r.accepted,
                r.not_served.len(),
                r.not_served,
                t0.elapsed()
            );
        }
    });
}

/// Issue 5's deploy/: what `rayward webhook manifests` prints (the caBundle filled in from
/// a `rayward certs` CA) is accepted by a real kube-apiserver in a dry run: the Namespace,
/// RBAC, the hardened Deployment, Service, NetworkPolicy and both webhook configurations.
/// The test server is v1.20, which predates `policy/v1` (1.21); the PodDisruptionBudget is
/// therefore also checked as `policy/v1beta1`, whose spec has the same fields.
#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_dry_run_accepts_webhook_deploy_manifests() {
    let dir = std::env::temp_dir().join(format!("rayward-proof-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |args: &[&std::ffi::OsStr]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rayward"))
            .args(args)
            .output()
            .expect("run rayward");
        assert!(
            o.status.success(),
            "rayward {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let ca = dir.join("ca");
    run(&[
        "certs".as_ref(),
        "ca".as_ref(),
        "--out".as_ref(),
        ca.as_os_str(),
    ]);
    let text = run(&[
        "webhook".as_ref(),
        "manifests".as_ref(),
        "--namespace".as_ref(),
        "rw-webhook".as_ref(),
        "--ca-bundle".as_ref(),
        ca.join("ca.crt").as_os_str(),
    ]);
    let file = dir.join("deploy.yaml");
    std::fs::write(&file, text).unwrap();
    let manifests = rayward_testkit::yaml::load_manifests(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let kinds: Vec<&str> = manifests.iter().map(|m| m.kind.as_str()).collect();
    for want in [
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(&want), "{want} missing from {kinds:?}");
    }

    let k = KubeApiserver::start();
    rayward_testkit::block_on(async {
        let client = k.client().await;
        ensure_namespace(&client, NS).await;
        let dry = DryRun::new(client).await;
        let r = dry.create_all(NS, &manifests).await;
        assert!(r.refused.is_empty(), "{}", r.refused.join("\n"));
        let not_served: Vec<&str> = r.not_served.iter().map(String::as_str).collect();
        assert!(
            not_served.len() == 1 && not_served[0].contains("PodDisruptionBudget"),
            "only policy/v1 is missing from v1.20: {not_served:?}"
        );
        assert_eq!(r.accepted, manifests.len() - 1);
        let mut pdb = manifests
            .iter()
            .find(|m| m.kind == "PodDisruptionBudget")
            .unwrap()
            .value
            .clone();
        assert_eq!(pdb["apiVersion"], "policy/v1");
        pdb["apiVersion"] = json!("policy/v1beta1");
        dry.create(NS, &pdb)
            .await
            .unwrap_or_else(|e| panic!("PodDisruptionBudget as policy/v1beta1: {e}"));
        // The server checks what it is given: a webhook that names neither a Service nor
        // a URL is refused, so "accepted" above means something.
        let mut bad = manifests
            .iter()
            .find(|m| m.kind == "ValidatingWebhookConfiguration")
            .unwrap()
            .value
            .clone();
        bad["webhooks"][0]["clientConfig"] = json!({});
        assert!(
            dry.create(NS, &bad).await.is_err(),
            "a webhook with no service or url is refused"
        );
    });
}
