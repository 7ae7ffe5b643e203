//! `rayward webhook manifests` and `serve` as a user runs them.

use rayward_testkit::cli::tmp;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1")
        .env_remove("POD_IP")
        .env_remove("POD_NAMESPACE");
    c
}

fn certs(dir: &std::path::Path) {
    let ok = bin()
        .args(["certs", "ca", "--out"])
        .arg(dir.join("ca"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = bin()
        .args(["certs", "node", "--ca"])
        .arg(dir.join("ca"))
        .arg("--out")
        .arg(dir.join("tls"))
        .args([
            "--ip",
            "127.0.0.1",
            "--dns",
            "rayward-webhook.rayward-system.svc",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn manifests_fill_the_ca_bundle_and_audit_clean() {
    let d = tmp("manifests");
    certs(&d);
    let out = bin()
        .args([
            "webhook",
            "manifests",
            "--namespace",
            "ray-guard",
            "--image",
            "registry.example/rayward:0.1.0",
            "--ca-bundle",
        ])
        .arg(d.join("ca/ca.crt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(d.join("ca/ca.crt")).unwrap());
    assert!(!text.contains("CA_BUNDLE_BASE64"));
    assert_eq!(
        text.matches(&format!("caBundle: {want}")).count(),
        5,
        "4 validating entries + 1 mutating"
    );
    assert!(!text.contains("rayward-system"));
    assert!(text.contains("namespace: ray-guard, name: rayward-webhook"));
    assert!(text.contains("image: registry.example/rayward:0.1.0"));
    // What it prints is hardened the way rayward asks: audit finds nothing.
    let file = d.join("out.yaml");
    std::fs::write(&file, &text).unwrap();
    let audit = bin()
        .args(["audit", "--no-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );

    // Not a certificate: exit 2, naming the file.
    let bad = bin()
        .args(["webhook", "manifests", "--ca-bundle"])
        .arg(d.join("ca/ca.key"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ca.key: not a PEM certificate"));
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_health_and_refuses_bad_flags() {
    let d = tmp("serve");
    certs(&d);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = bin()
        .args([
            "webhook",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert",
        ])
        .arg(d.join("tls/tls.crt"))
        .arg("--key")
        .arg(d.join("tls/tls.key"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let ca = std::fs::read(d.join("ca/ca.crt")).unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let client = rayward_webhook::client::Client::new(addr, &ca, None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let health = loop {
        match rt.block_on(client.request("GET", "/healthz", "text/plain", vec![])) {
            Ok(a) => break a,
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "never answered: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let bad = rt
        .block_on(client.request("POST", "/validate", "application/json", b"{".to_vec()))
        .unwrap();
    assert_eq!(bad.status, 400);
    let metrics = rt
        .block_on(client.request("GET", "/metrics", "text/plain", vec![]))
        .unwrap();
    assert!(
        metrics
            .text()
            .contains("rayward_webhook_bad_requests_total{endpoint=\"validate\"} 1"),
        "{}",
        metrics.text()
    );
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains(&format!("serving on https://127.0.0.1:{port}")),
        "{err}"
    );

    // A key that does not exist: exit 2 with the path.
    let out = bin()
        .args(["webhook", "serve", "--listen", "127.0.0.1:0", "--cert"])
        .arg(d.join("tls/tls.crt"))
        .arg("--key")
        .arg(d.join("missing.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.key"));
    let out = bin()
        .args(["webhook", "serve", "--deny-at", "severe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
