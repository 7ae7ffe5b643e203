//! `rayward check` against a real kube-apiserver: `rayward install` applied, the webhook
//! running as a local process with the serving certificate install put in its Secret,
//! then the installation broken one way at a time (caBundle, PDB, certificate), each
//! failure reported with its fix, and healthy again once repaired.
//!
//! The API server runs no controller and no kubelet, so no Deployment can become
//! available by itself. The test writes each Deployment's status subresource as the
//! deployment controller would once its pods are ready (replicas, ready, available,
//! condition `Available`), and first proves that check fails while the status says
//! nothing is available: the status is what check reads, and the test sets it honestly
//! in both directions.

use crate::install::objects;
use rayward_testkit::cli::{run, tmp};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "rayward-system";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1").env_remove("KUBECONFIG");
    c
}

/// `rayward check -o json` against the test API server: (exit code, report).
fn check(kubeconfig: &Path, extra: &[&str]) -> (i32, Value) {
    let (code, out, err) = run(bin()
        .args(["check", "-o", "json", "--kubeconfig"])
        .arg(kubeconfig)
        .args(extra));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

fn failed(report: &Value) -> Vec<&Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ok"] == false)
        .collect()
}

/// Exactly one failed line, its check starting with `check_starts`, with a fix.
fn one_failure<'a>(report: &'a Value, check_starts: &str) -> &'a Value {
    let f = failed(report);
    assert_eq!(f.len(), 1, "{check_starts}: {f:#?}");
    assert!(
        f[0]["check"].as_str().unwrap().starts_with(check_starts),
        "{f:#?}"
    );
    assert!(!f[0]["fix"].as_str().unwrap().is_empty(), "{f:#?}");
    f[0]
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

#[test]
#[ignore = "needs a real kube-apiserver (scripts/test.sh, kube_e2e stage)"]
fn kube_e2e_check_reports_health_then_each_breakage_with_its_fix() {
    use rayward_testkit::apiserver::{DryRun, KubeApiserver};
    let k = KubeApiserver::start();
    let dir = tmp("check-e2e");
    let kubeconfig = crate::live::insecure_kubeconfig(&k, &dir);

    // Nothing installed yet: one failed line saying how to install.
    let (code, report) = check(&kubeconfig, &[]);
    assert_eq!(code, 1, "{report:#}");
    let f = one_failure(&report, "rayward installed");
    assert!(
        f["fix"].as_str().unwrap().contains("rayward install"),
        "{f}"
    );

    let (code, yaml, err) = run(bin().arg("install"));
    assert_eq!(code, 0, "{err}");
    let installed = objects(&yaml);
    rayward_testkit::block_on(async {
        let client = k.client().await;
        let dry = DryRun::new(client.clone()).await;
        for o in &installed {
            if o["kind"] == "PodDisruptionBudget" {
                // policy/v1 is served from 1.21; this API server is 1.20: the same
                // fields as policy/v1beta1, stored for real so check finds them.
                let mut b = o.clone();
                b["apiVersion"] = "policy/v1beta1".into();
                dry.store(NS, &b)
                    .await
                    .unwrap_or_else(|e| panic!("PDB {}: {e}", b["metadata"]["name"]));
                continue;
            }
            dry.apply("rayward-test", o)
                .await
                .unwrap_or_else(|e| panic!("apply {} {}: {e}", o["kind"], o["metadata"]["name"]));
        }
    });

    // Applied, but no pod runs: every Deployment is reported unavailable, and nothing else.
    let (code, report) = check(&kubeconfig, &[]);
    assert_eq!(code, 1, "{report:#}");
    let f = failed(&report);
    assert_eq!(f.len(), 3, "{f:#?}");
    for l in &f {
        let c = l["check"].as_str().unwrap();
        assert!(
            c.starts_with("Deployment rayward-") && c.ends_with(" available"),
            "{l}"
        );
        assert!(l["detail"].as_str().unwrap().starts_with("0 of "), "{l}");
        assert!(l["fix"].as_str().unwrap().contains("kubectl"), "{l}");
    }

    // The deployment controller's part, written as it would write it.
    rayward_testkit::block_on(async {
        use k8s_openapi::api::apps::v1::Deployment;
        use kube::api::{Api, Patch, PatchParams};
        let api: Api<Deployment> = Api::namespaced(k.client().await, NS);
        for o in installed.iter().filter(|o| o["kind"] == "Deployment") {
            let name = o["metadata"]["name"].as_str().unwrap();
            let n = o["spec"]["replicas"].as_i64().unwrap();
            let stored = api.get(name).await.unwrap();
            let status = json!({"status": {
                "observedGeneration": stored.metadata.generation,
                "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                "conditions": [{"type": "Available", "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability."}]
            }});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap_or_else(|e| panic!("status of {name}: {e}"));
        }
    });

    // The webhook as a local process, serving the certificate of its Secret.
    let secret_of = |name: &str| {
        installed
            .iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == name)
            .unwrap()
            .clone()
    };
    let webhook_tls = secret_of("rayward-webhook-tls");
    let tls = dir.join("webhook-tls");
    std::fs::create_dir_all(&tls).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let text = webhook_tls["stringData"][f]
            .as_str()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_else(|| unb64(&webhook_tls["data"][f]));
        std::fs::write(tls.join(f), text).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _webhook = Kill(
        bin()
            .args(["webhook", "serve", "--namespace", NS, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert")
            .arg(tls.join("tls.crt"))
            .arg("--key")
            .arg(tls.join("tls.key"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("127.0.0.1:{port}");
    let with_webhook = ["--webhook-address", address.as_str()];
    let t0 = Instant::now();
    let report = loop {
        let (code, report) = check(&kubeconfig, &with_webhook);
        if code == 0 {
            break report;
        }
        let f = failed(&report);
        // Only the webhook process may still be starting.
        assert!(
            f.len() == 1 && f[0]["check"].as_str().unwrap().starts_with("webhook at "),
            "{f:#?}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "webhook never answered: {f:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(report["healthy"], true);
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["check"].as_str().unwrap())
        .collect();
    for want in [
        "Deployment rayward-webhook available",
        "Deployment rayward-gateway available",
        "Deployment rayward-watch available",
        "PodDisruptionBudget rayward-webhook present",
        "Service rayward-gateway not exposed",
        "webhook caBundle matches the serving certificate",
        "certificate rayward-webhook-tls valid for 30 days",
        "certificate rayward-gateway-tls valid for 30 days",
        "ValidatingWebhookConfiguration rayward present",
        "MutatingWebhookConfiguration rayward present",
        "webhook failurePolicy as documented (docs/webhook.md)",
        "rayward's own objects audit clean",
    ] {
        assert!(checks.contains(&want), "{want}: {checks:#?}");
    }
    let audit = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["check"] == "rayward's own objects audit clean")
        .unwrap();
    // Every object install applied (but the Secrets, which check never audits) was read back.
    let audited = installed.iter().filter(|o| o["kind"] != "Secret").count();
    assert_eq!(
        audit["detail"],
        format!("{audited} objects, no finding at any severity")
    );
    // The text form says the same, exit 0.
    let (code, out, err) = run(bin()
        .arg("check")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(with_webhook));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("ok   Deployment rayward-webhook available: 2 of 2 replicas available"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("checks passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");

    let store = |o: Value| {
        let k = &k;
        rayward_testkit::block_on(async move {
            let dry = DryRun::new(k.client().await).await;
            dry.apply("rayward-test", &o)
                .await
                .unwrap_or_else(|e| panic!("apply {}: {e}", o["metadata"]["name"]));
        })
    };

    // 1. A broken caBundle (another CA's certificate) in the validating configuration.
    let other_ca = dir.join("other-ca");
    rayward_certs::create_ca(
        &other_ca,
        &rayward_certs::CaOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    let other_pem = std::fs::read(other_ca.join(rayward_certs::CA_CERT)).unwrap();
    let validating = installed
        .iter()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
        .unwrap()
        .clone();
    let mut broken = validating.clone();
    for e in broken["webhooks"].as_array_mut().unwrap() {
        e["clientConfig"]["caBundle"] = json!(b64(&other_pem));
    }
    store(broken);
    let (code, report) = check(&kubeconfig, &with_webhook);
    assert_eq!(code, 1, "{report:#}");
    let f = failed(&report);
    let names: Vec<&str> = f.iter().map(|l| l["check"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "webhook caBundle matches the serving certificate",
            "webhook entries share one caBundle",
            &format!("webhook at {address} serves a certificate the caBundle verifies"),
        ],
        "{f:#?}"
    );
    assert!(f[0]["detail"]
        .as_str()
        .unwrap()
        .contains("the API server refuses the webhook's TLS"));
    for l in &f {
        assert!(
            l["fix"].as_str().unwrap().contains("rayward install"),
            "{l}"
        );
    }
    store(validating);
    assert_eq!(check(&kubeconfig, &with_webhook).0, 0);

    // 2. A deleted PodDisruptionBudget.
    let pdb = installed
        .iter()
        .find(|o| o["kind"] == "PodDisruptionBudget" && o["metadata"]["name"] == "rayward-gateway")
        .unwrap();
    let mut pdb = pdb.clone();
    pdb["apiVersion"] = "policy/v1beta1".into();
    rayward_testkit::block_on(async {
        let dry = DryRun::new(k.client().await).await;
        dry.delete(&pdb).await.unwrap();
    });
    let (code, report) = check(&kubeconfig, &with_webhook);
    assert_eq!(code, 1, "{report:#}");
    let f = one_failure(&report, "PodDisruptionBudget rayward-gateway present");
    assert!(f["detail"].as_str().unwrap().contains("missing"), "{f}");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("rayward install --namespace rayward-system --reuse-from-cluster"),
        "{f}"
    );
    rayward_testkit::block_on(async {
        let dry = DryRun::new(k.client().await).await;
        dry.store(NS, &pdb).await.unwrap();
    });
    assert_eq!(check(&kubeconfig, &with_webhook).0, 0);

    // 3. The gateway's certificate replaced by one from rayward-certs that expires in 10
    //    days (its own CA, the right names): only the expiry is reported.
    let short = dir.join("short");
    rayward_certs::create_ca(
        &short.join("ca"),
        &rayward_certs::CaOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    rayward_certs::issue_node(
        &short.join("ca"),
        &short.join("gateway"),
        &rayward_certs::NodeOptions {
            days: 10,
            dns: rayward_install::tls::dns_names(NS, rayward_install::Component::Gateway),
            ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let gateway_tls = secret_of("rayward-gateway-tls");
    let mut expiring = gateway_tls.clone();
    expiring.as_object_mut().unwrap().remove("data");
    expiring["stringData"] = json!({
        "tls.crt": read(&short.join("gateway").join(rayward_certs::NODE_CERT)),
        "tls.key": read(&short.join("gateway").join(rayward_certs::NODE_KEY)),
        "ca.crt": read(&short.join("ca").join(rayward_certs::CA_CERT)),
    });
    store(expiring);
    let (code, report) = check(&kubeconfig, &with_webhook);
    assert_eq!(code, 1, "{report:#}");
    let f = one_failure(&report, "certificate rayward-gateway-tls valid for 30 days");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("9 days left") || detail.starts_with("10 days left"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().starts_with("renew:"), "{f}");
    store(gateway_tls);
    assert_eq!(check(&kubeconfig, &with_webhook).0, 0);
}

#[test]
fn check_refuses_bad_input_with_exit_2() {
    let dir = tmp("check-input");
    for (args, want) in [
        (vec!["--namespace", "Not_A_Label"], "--namespace"),
        (vec!["--kubeconfig", "/no/such/kubeconfig"], "kubeconfig"),
    ] {
        let (code, out, err) = run(bin().arg("check").args(&args));
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A kubeconfig that is not one names the file.
    let bad = dir.join("kubeconfig");
    std::fs::write(&bad, "{not yaml: [").unwrap();
    let (code, _, err) = run(bin().arg("check").arg("--kubeconfig").arg(&bad));
    assert_eq!(code, 2, "{err}");
}
