//! `rayward probe` against a real Ray 2.60 inside netns-run (issue 13), through the binary:
//! without token auth the Jobs API, the agent and the Ray Client are open (critical
//! findings) and the GCS is plaintext; with token auth none of those three; with mutual
//! TLS the GCS speaks TLS. After every probe run Ray's jobs, actors and nodes are
//! unchanged. Closed ports and a non-Ray server give no finding and no hang.

use rayward_testkit::cli::{self, run};
use rayward_testkit::ray::{random_token, Ray, Tls};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const START: Duration = Duration::from_secs(180);

/// GET from the head's dashboard over plain HTTP/1.0, as a test client with `token`.
fn dashboard(path: &str, token: Option<&str>) -> Value {
    let mut s = std::net::TcpStream::connect("127.0.0.1:8265").expect("dashboard");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {raw}"))
}

/// (jobs, actors, nodes) as Ray lists them.
fn state(token: Option<&str>) -> (usize, u64, u64) {
    let jobs = dashboard("/api/jobs/", token)
        .as_array()
        .map_or(0, Vec::len);
    let total = |v: Value| v["data"]["result"]["total"].as_u64().unwrap_or(u64::MAX);
    (
        jobs,
        total(dashboard("/api/v0/actors?limit=1000", token)),
        total(dashboard("/api/v0/nodes?limit=1000", token)),
    )
}

/// `rayward probe 127.0.0.1 --format json`: (exit code, findings as (rule, port), stderr).
fn probe(extra: &[&str]) -> (i32, Vec<(String, String)>, String, Duration) {
    let t = Instant::now();
    let (code, out, err) = run(cli::command(env!("CARGO_BIN_EXE_rayward"))
        .args([
            "probe",
            "--format",
            "json",
            "--fail-on",
            "critical",
            "--timeout",
            "5",
        ])
        .args(extra));
    let took = t.elapsed();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let found = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["object"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code, found, format!("{out}\n{err}"), took)
}

/// Waits for the head's Ray Client server, which binds 10001 seconds after `ray start`
/// returns: a probe before that finds the port closed, and a test that asserts the absence
/// of a Ray Client finding would pass without the port having been asked at all.
fn ray_client_up(ray: &Ray) {
    ray.wait_listening(10001, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("the head's Ray Client server: {e}"));
}

fn has(found: &[(String, String)], rule: &str, endpoint: &str) -> bool {
    found.iter().any(|(r, e)| r == rule && e == endpoint)
}

#[test]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
fn ray_e2e_probe_finds_an_open_cluster_and_changes_nothing() {
    let ray = Ray::new();
    let o = ray.start_head(None, START);
    assert!(o.success(), "ray start --head: {o}");
    ray_client_up(&ray);
    let before = state(None);
    let (code, found, all, took) = probe(&["127.0.0.1"]);
    assert_eq!(code, 1, "critical findings fail the run: {all}");
    for (rule, endpoint) in [
        ("RW120", "127.0.0.1:8265"),
        ("RW121", "127.0.0.1:52365"),
        ("RW122", "127.0.0.1:10001"),
        ("RW123", "127.0.0.1:6379"),
        ("RW125", "127.0.0.1:8265"),
    ] {
        assert!(has(&found, rule, endpoint), "{rule} on {endpoint}: {all}");
    }
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // One port at a time, as `HOST:PORT`, says the same for that port alone.
    let (_, found, all, _) = probe(&["127.0.0.1:52365"]);
    assert_eq!(found.len(), 1, "{all}");
    assert!(has(&found, "RW121", "127.0.0.1:52365"), "{all}");
    assert_eq!(
        state(None),
        before,
        "the probe changed Ray's jobs, actors or nodes"
    );
}

#[test]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
fn ray_e2e_probe_respects_token_auth() {
    let ray = Ray::new();
    let token = random_token();
    let o = ray.start_head_with_token(&token, START);
    assert!(o.success(), "ray start --head with token: {o}");
    ray_client_up(&ray);
    let before = state(Some(&token));
    let (code, found, all, _) = probe(&["127.0.0.1"]);
    for rule in ["RW120", "RW121", "RW122"] {
        assert!(!found.iter().any(|(r, _)| r == rule), "{rule}: {all}");
    }
    // The GCS is still plaintext without RAY_USE_TLS: high, not critical.
    assert!(has(&found, "RW123", "127.0.0.1:6379"), "{all}");
    assert_eq!(code, 0, "nothing critical: {all}");
    assert_eq!(state(Some(&token)), before);
}

#[test]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
fn ray_e2e_probe_sees_gcs_tls() {
    let ray = Ray::new();
    let d = ray.dir().to_path_buf();
    let certs = |args: &[&std::ffi::OsStr]| {
        let (code, _, err) = run(cli::command(env!("CARGO_BIN_EXE_rayward"))
            .arg("certs")
            .args(args));
        assert_eq!(code, 0, "{err}");
    };
    certs(&["ca".as_ref(), "--out".as_ref(), d.join("ca").as_os_str()]);
    certs(&[
        "node".as_ref(),
        "--ca".as_ref(),
        d.join("ca").as_os_str(),
        "--ip".as_ref(),
        "127.0.0.1".as_ref(),
        "--out".as_ref(),
        d.join("n1").as_os_str(),
    ]);
    let o = ray.start_head(Some(&Tls::from_dir(&d.join("n1"))), START);
    assert!(o.success(), "head with TLS: {o}");
    ray_client_up(&ray);
    let before = state(None);
    let (_, found, all, _) = probe(&["127.0.0.1:6379", "127.0.0.1:10001"]);
    assert!(
        !found.iter().any(|(r, _)| r == "RW123"),
        "GCS with TLS: {all}"
    );
    assert!(
        !found.iter().any(|(r, _)| r == "RW122"),
        "Ray Client with TLS: {all}"
    );
    assert_eq!(state(None), before);
}

/// Closed ports and a server that is not Ray: no finding, no error, bounded time.
#[test]
fn probe_of_closed_ports_and_a_stranger_is_quiet_and_bounded() {
    // A TCP server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    // One that answers every request with a 200 page that is not Ray's.
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web_port = web.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in web.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
            );
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let t = Instant::now();
    let (code, out, err) = run(cli::command(env!("CARGO_BIN_EXE_rayward")).args([
        "probe",
        "--format",
        "json",
        "--timeout",
        "1",
        &format!("127.0.0.1:{silent_port}"),
        &format!("127.0.0.1:{web_port}"),
        &format!("127.0.0.1:{closed_port}"),
    ]));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{out}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("no answer within"), "{err}");
    // A name that does not resolve is an input error: exit 2, named.
    let (code, out, err) = run(cli::command(env!("CARGO_BIN_EXE_rayward")).args([
        "probe",
        "--timeout",
        "2",
        "no-such-host.invalid",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(out.contains("no-such-host.invalid"), "{out}");
    let (code, _, err) =
        run(cli::command(env!("CARGO_BIN_EXE_rayward")).args(["probe", "http://x/"]));
    assert_eq!(code, 2, "{err}");
}

/// `--cluster` asks exactly the Ray heads the API server knows: a head Service (its
/// cluster IP, its declared ports) and a running head Pod (its pod IP, every Ray port);
/// not a Service or Pod of anything else. The pod's IP is set to 127.0.0.1 through the
/// status subresource, where a stand-in Serve answers, so its finding names the Pod.
#[test]
#[ignore = "needs kube-apiserver; run by scripts/test.sh"]
fn kube_e2e_probe_cluster_discovers_ray_heads() {
    use rayward_testkit::apiserver::{ensure_namespace, set_pod_status, DryRun, KubeApiserver};
    use serde_json::json;
    let api = KubeApiserver::start();
    let dir = cli::tmp("probe-cluster");
    let kc = crate::live::insecure_kubeconfig(&api, &dir);
    // A stand-in for Ray Serve on 127.0.0.1:8000, when that port is free here.
    let serve = std::net::TcpListener::bind("127.0.0.1:8000").ok();
    let serving = serve.is_some();
    if let Some(l) = serve {
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut buf = [0u8; 2048];
                let _ = c.read(&mut buf);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
    }
    let service_ip = rayward_testkit::block_on(async {
        let client = api.client().await;
        ensure_namespace(&client, "ml").await;
        let dr = DryRun::new(client.clone()).await;
        let head_labels = json!({"ray.io/cluster": "team-a", "ray.io/node-type": "head"});
        let svc = dr
            .store(
                "ml",
                &json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "team-a-head-svc", "namespace": "ml"},
                "spec": {"selector": head_labels, "ports": [
                    {"name": "dashboard", "port": 8265}, {"name": "client", "port": 10001}]}}),
            )
            .await
            .unwrap();
        dr.store(
            "ml",
            &json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ml"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
        .await
        .unwrap();
        for (name, labels) in [
            ("team-a-head-x7k2p", head_labels.clone()),
            ("web-1", json!({"app": "web"})),
        ] {
            dr.store(
                "ml",
                &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ml", "labels": labels},
                "spec": {"automountServiceAccountToken": false,
                    "containers": [{"name": "c", "image": "rayproject/ray:2.56.0"}]}}),
            )
            .await
            .unwrap();
            set_pod_status(
                &client,
                "ml",
                name,
                json!({"phase": "Running", "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}]}),
            )
            .await;
        }
        svc["spec"]["clusterIP"].as_str().unwrap().to_string()
    });
    let (code, out, err) = run(cli::command(env!("CARGO_BIN_EXE_rayward"))
        .args([
            "probe",
            "--cluster",
            "-n",
            "ml",
            "--timeout",
            "1",
            "--format",
            "json",
            "--fail-on",
            "none",
            "--kubeconfig",
        ])
        .arg(&kc));
    assert_eq!(code, 0, "{out}\n{err}");
    // Every endpoint asked shows in a note (nothing else listens) or a finding.
    let v: Value = serde_json::from_str(&out).unwrap();
    let found: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["file"]
                .as_str()
                .unwrap()
                .trim_start_matches("probe://")
                .to_string()
        })
        .collect();
    let noted: Vec<String> = err
        .lines()
        .filter_map(|l| l.strip_prefix("rayward: probe: "))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect();
    let mut asked: Vec<String> = found.iter().chain(&noted).cloned().collect();
    asked.sort();
    asked.dedup();
    let mut want: Vec<String> = [8265, 52365, 10001, 6379, 8000, 8080]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .chain([format!("{service_ip}:8265"), format!("{service_ip}:10001")])
        .collect();
    want.sort();
    assert_eq!(asked, want, "{out}\n{err}");
    if serving {
        let f = &v["findings"][0];
        assert_eq!(f["rule_id"], "RW124", "{out}");
        assert_eq!(f["object"]["kind"], "Pod", "{out}");
        assert_eq!(f["object"]["name"], "team-a-head-x7k2p", "{out}");
    }
}
