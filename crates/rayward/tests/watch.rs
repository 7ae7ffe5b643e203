//! `rayward watch` against a real kube-apiserver, through the binary (issue 13): an
//! insecure RayCluster shows in /metrics within 2 s of its creation, its series go when
//! it is fixed, and /readyz waits for the first listing.

use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use rayward_testkit::cli;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// GET over plain HTTP/1.0: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string()),
    )
}

/// Polls `f` every 50 ms until it is true or `limit` passes; the time it took.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn series(metrics: &str, namespace: &str, rule: &str) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("rayward_watch_findings{")
            && l.contains(&format!("namespace=\"{namespace}\""))
            && l.contains(&format!("rule=\"{rule}\""))
    })
}

#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_watch_reports_and_clears_findings_as_objects_change() {
    let api = KubeApiserver::start();
    let dir = cli::tmp("watch");
    let kc = crate::live::insecure_kubeconfig(&api, &dir);
    rayward_testkit::block_on(async {
        let client = api.client().await;
        install_ray_crds(&client).await;
        ensure_namespace(&client, "w1").await;
    });
    let mut child = cli::command(env!("CARGO_BIN_EXE_rayward"));
    child
        .args([
            "watch",
            "--no-config",
            "-n",
            "w1",
            "--listen",
            "127.0.0.1:0",
            "--settle-ms",
            "100",
            "--kubeconfig",
        ])
        .arg(&kc)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = Killed(child.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in: {line}"))
        .to_string();
    assert_eq!(get(&addr, "/healthz").0, 200);
    until(Duration::from_secs(20), || get(&addr, "/readyz").0 == 200).expect("ready");

    let cluster = |privileged: bool| {
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "team-a", "namespace": "w1"},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.56.0",
                 "securityContext": {"privileged": privileged}}]}}}}})
    };
    let created = Instant::now();
    rayward_testkit::block_on(async {
        let dr = DryRun::new(api.client().await).await;
        dr.store("w1", &cluster(true)).await.unwrap();
    });
    let took = until(Duration::from_secs(2), || {
        series(&get(&addr, "/metrics").1, "w1", "RW501")
    })
    .unwrap_or_else(|| panic!("no RW501 series within 2 s: {}", get(&addr, "/metrics").1));
    eprintln!(
        "RW501 in /metrics {:?} after the create ({took:?} of polling)",
        created.elapsed()
    );
    // Whole-run rules too (no NetworkPolicy, no quota in w1).
    assert!(until(Duration::from_secs(2), || series(
        &get(&addr, "/metrics").1,
        "w1",
        "RW140"
    ))
    .is_some());

    // The fix: the same cluster without the privileged container.
    rayward_testkit::block_on(async {
        let client = api.client().await;
        let ar = kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "ray.io",
            "v1",
            "RayCluster",
        ));
        let rc: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, "w1", &ar);
        rc.patch(
            "team-a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": cluster(false)["spec"]})),
        )
        .await
        .unwrap();
    });
    until(Duration::from_secs(2), || {
        !series(&get(&addr, "/metrics").1, "w1", "RW501")
    })
    .unwrap_or_else(|| {
        panic!(
            "RW501 still reported after the fix: {}",
            get(&addr, "/metrics").1
        )
    });
    let m = get(&addr, "/metrics").1;
    assert!(
        series(&m, "w1", "RW502"),
        "other findings of the cluster stay: {m}"
    );
    assert!(m.contains("rayward_watch_reaudit_seconds_count"), "{m}");
    assert!(
        m.contains("rayward_watch_last_full_audit_timestamp_seconds"),
        "{m}"
    );
}
