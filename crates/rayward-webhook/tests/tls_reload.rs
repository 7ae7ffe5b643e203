//! Certificate rotation without restart: the server takes a new pair when the files
//! change (as a re-mounted Secret changes them), keeps the old one when the new files are
//! broken or do not belong together, and never stops answering.

use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::Severity;
use rayward_webhook::client::Client;
use rayward_webhook::tls::CertStore;
use rayward_webhook::{App, Mode, Policy, Server, ServerOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rayward-webhook-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A CA in `dir/ca` and a node certificate for 127.0.0.1 from it in `dir/node`.
fn pki(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    rayward_certs::create_ca(&dir.join("ca"), &Default::default()).unwrap();
    rayward_certs::issue_node(
        &dir.join("ca"),
        &dir.join("node"),
        &rayward_certs::NodeOptions {
            ips: vec!["127.0.0.1".parse().unwrap()],
            ..Default::default()
        },
    )
    .unwrap();
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
    (
        read("ca/ca.crt"),
        read("node/tls.crt"),
        read("node/tls.key"),
    )
}

/// Whether a client trusting only `ca` gets an answer: a fresh client each time, so no
/// TLS session is resumed (a resumed session skips the certificate, as TLS allows).
async fn healthy(addr: std::net::SocketAddr, ca: &[u8]) -> bool {
    let client = Client::new(addr, ca, None).unwrap();
    matches!(client.request("GET", "/healthz", "text/plain", Vec::new()).await,
             Ok(a) if a.status == 200)
}

/// Polls until `client` can (or cannot, `want` false) talk to the server.
async fn wait_for(addr: std::net::SocketAddr, ca: &[u8], want: bool, what: &str) {
    let start = Instant::now();
    while healthy(addr, ca).await != want {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_changed_pair_is_served_and_a_broken_one_is_not() {
    let dir = tmp();
    let (ca_a, crt_a, key_a) = pki(&dir.join("a"));
    let (ca_b, crt_b, key_b) = pki(&dir.join("b"));
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&crt, &crt_a).unwrap();
    std::fs::write(&key, &key_a).unwrap();

    let store = CertStore::load(&crt, &key).unwrap();
    let policy = Policy::new(
        Settings::default(),
        &Selection::default(),
        Mode::Enforce,
        Severity::High,
        None,
    )
    .unwrap();
    let mut app = App::new(policy);
    app.log = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = ServerOptions {
        reload_every: Duration::from_millis(100),
        ..ServerOptions::default()
    };
    let server = Server::start(listener, store, Arc::new(app), opts).unwrap();
    let addr = server.local_addr();
    assert!(healthy(addr, &ca_a).await, "serves A at start");
    assert!(
        !healthy(addr, &ca_b).await,
        "a client trusting only B refuses A"
    );

    // Rotation: B's pair replaces A's (key first, as a careless writer might: for a
    // moment the pair does not match and must not be taken).
    std::fs::write(&key, &key_b).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        healthy(addr, &ca_a).await,
        "a mismatched pair keeps A in use"
    );
    std::fs::write(&crt, &crt_b).unwrap();
    wait_for(addr, &ca_b, true, "B is served after rotation").await;
    assert!(!healthy(addr, &ca_a).await, "A is no longer served");

    // A broken certificate file: B stays in use.
    std::fs::write(&crt, b"-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(healthy(addr, &ca_b).await, "a broken file keeps B in use");
    // A missing file, as during a Secret's symlink swap: still B.
    std::fs::remove_file(&crt).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(healthy(addr, &ca_b).await, "a missing file keeps B in use");

    // Back to A: taken again.
    std::fs::write(&crt, &crt_a).unwrap();
    std::fs::write(&key, &key_a).unwrap();
    wait_for(addr, &ca_a, true, "A is served again").await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
