//! Resource budgets for hostile input (issue 10 §3): any input of at most 1 MB is answered
//! by `rayward audit` and `rayward harden` under 100 MB of memory, with a clear error where
//! it must be refused, and without a blow-up in time. Memory is the child's peak RSS from
//! wait4(2), so the numbers are the real process's. Time is only a guard against the
//! quadratic and exponential cases (debug build, shared machine); the 1 s budget itself is
//! measured on the release binary by `bench/audit/hostile.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MB: usize = 1024 * 1024;

/// Runs `rayward ARGS FILE`; returns (exit code, peak RSS in bytes, wall time, output).
// The child is reaped by wait4(2) below, which also gives its rusage; `Child::wait` would
// not.
#[allow(clippy::zombie_processes)]
fn measure(args: &[&str], file: &Path) -> (i32, u64, Duration, String) {
    let err = file.with_extension("stderr");
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(args)
        .arg(file)
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(file.with_extension("stdout")).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let took = start.elapsed();
    assert!(libc::WIFEXITED(status), "rayward died: status {status}");
    (
        libc::WEXITSTATUS(status),
        ru.ru_maxrss as u64 * 1024,
        took,
        // The report (stdout) lists input errors too; keep both for the checks.
        std::fs::read_to_string(err).unwrap_or_default()
            + &std::fs::read_to_string(file.with_extension("stdout")).unwrap_or_default(),
    )
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rayward-budgets-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 100 anchors nested one inside the other, each level a flow map of `width` keys, and
/// no alias at all (with `alias`, one alias to the outermost at the end).
fn nested_anchors(levels: usize, width: usize, alias: bool) -> String {
    let mut s =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec:\n  top: ");
    for l in 0..levels {
        s.push_str(&format!("&a{l} {{"));
        for k in 0..width {
            s.push_str(&format!("k{k}: {k}, "));
        }
        s.push_str("next: ");
    }
    s.push('x');
    s.push_str(&"}".repeat(levels));
    s.push('\n');
    if alias {
        s.push_str("  copy: *a0\n");
    }
    s
}

/// `n` merge keys in one mapping, each merging a one-key map, inline or by alias.
fn merge_keys(n: usize, alias: bool) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nbase: &b {x: 1}\nspec:\n",
    );
    for i in 0..n {
        if alias {
            s.push_str("  <<: *b\n");
        } else {
            s.push_str(&format!("  <<: {{k{i}: 1}}\n"));
        }
    }
    s
}

/// A RayJob whose `runtimeEnvYAML` holds `inner` (indented as a literal block).
fn in_runtime_env(inner: &str) -> String {
    let mut s = String::from(
        "apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j, namespace: t}\nspec:\n  entrypoint: python x.py\n  runtimeEnvYAML: |\n",
    );
    for line in inner.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// One measurement at a time: two rayward processes sharing the two cores of a CI machine
/// change each other's timing (the diff's deadline) and so their peaks; each budget is
/// about one process on its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn check(name: &str, text: &str, expect_error: bool) {
    let _alone = alone();
    assert!(text.len() <= MB, "{name}: {} bytes", text.len());
    let f = dir().join(format!("{name}.yaml"));
    std::fs::write(&f, text).unwrap();
    for args in [&["audit"][..], &["harden", "--diff"][..]] {
        let (code, rss, took, err) = measure(args, &f);
        eprintln!(
            "{name} ({} KB) {args:?}: exit {code}, {} MB peak, {:.2} s",
            text.len() / 1024,
            rss / MB as u64,
            took.as_secs_f64()
        );
        assert!(
            code == 0 || code == 1 || code == 2,
            "{name} {args:?}: exit {code}: {err}"
        );
        if expect_error {
            assert_eq!(code, 2, "{name} {args:?} must be refused: {err}");
            assert!(
                err.contains(&format!("{name}.yaml:")),
                "{name}: error names no file:line: {err}"
            );
        }
        assert!(
            rss < 100 * MB as u64,
            "{name} {args:?}: {} MB peak",
            rss / MB as u64
        );
        assert!(took < Duration::from_secs(20), "{name} {args:?}: {took:?}");
    }
}

#[test]
fn nested_anchors_without_aliases_cost_nothing_extra() {
    check("anchors", &nested_anchors(100, 900, false), false);
}

#[test]
fn nested_anchors_with_an_alias_stop_at_the_budget() {
    check("anchors-alias", &nested_anchors(100, 900, true), true);
}

#[test]
fn forty_thousand_merge_keys_are_linear() {
    check("merges", &merge_keys(40_000, false), false);
    // By alias, each merge is a copy charged to the alias budget (100,000 nodes).
    check("merges-alias", &merge_keys(40_000, true), true);
}

#[test]
fn anchors_inside_runtime_env_yaml() {
    check(
        "runtime-env",
        &in_runtime_env(&nested_anchors(60, 1000, false)),
        false,
    );
}

/// 3,000 small insecure RayClusters in one file (as bench/hostile/gen.py makes them):
/// harden streams its output, so it holds slim copies, not 3,000 hardened trees.
#[test]
fn three_thousand_clusters_in_one_file() {
    let one = "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: cNUM, namespace: t}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers:\n        - name: ray-head\n          image: rayproject/ray:2.40.0\n          securityContext: {privileged: yes}\n";
    let text: Vec<String> = (0..3000)
        .map(|i| one.replace("NUM", &i.to_string()))
        .collect();
    check("clusters-3000", &text.join("---\n"), false);
}

/// One RayCluster of 3,000 worker groups: its hardened form is 16 times its input
/// (6.5 MB of YAML), written as it is made rather than held as text beside the tree.
#[test]
fn three_thousand_worker_groups_in_one_cluster() {
    let mut s = String::from("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a, namespace: t}\nspec:\n  rayVersion: \"2.60.0\"\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n  workerGroupSpecs:\n");
    for i in 0..3000 {
        s.push_str(&format!("  - groupName: g{i}\n    replicas: 1\n    template:\n      spec:\n        containers: [{{name: ray-worker, image: rayproject/ray:2.60.0}}]\n"));
    }
    check("worker-groups-3000", &s, false);
}

#[test]
fn alias_bomb_inside_runtime_env_yaml() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    check("runtime-env-bomb", &in_runtime_env(&bomb), false);
}

/// Peak RSS of a running process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// An AdmissionReview for `object`.
fn review(kind: &str, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "budget",
            "kind": {"group": "ray.io", "version": "v1", "kind": kind},
            "resource": {"group": "ray.io", "version": "v1", "resource": "rayjobs"},
            "namespace": "t",
            "name": "j",
            "operation": "CREATE",
            "userInfo": {"username": "mallory"},
            "object": object,
            "dryRun": false
        }
    }))
    .unwrap()
}

fn ray_job(runtime_env: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "j", "namespace": "t"},
        "spec": {"entrypoint": "python x.py", "runtimeEnvYAML": runtime_env,
                 "rayClusterSpec": {"headGroupSpec": {"template": {"spec": {"containers": [
                     {"name": "ray-head", "image": "rayproject/ray:2.53.0"}]}}}}}
    })
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rayward webhook serve` on a free loopback port; returns it with a client.
fn webhook(d: &Path) -> (Server, rayward_webhook::client::Client) {
    let p = |s: &str| d.join(s).display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_rayward"))
            .args(["webhook", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--cert", &p("tls/tls.crt"), "--key", &p("tls/tls.key")])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ca = std::fs::read(d.join("ca/ca.crt")).unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let client = rayward_webhook::client::Client::new(addr, &ca, None).unwrap();
    (server, client)
}

/// The webhook, over HTTPS as the API server calls it: reviews of about 1 MB with the
/// hostile shapes inside `runtimeEnvYAML` (the one place a review can carry YAML) and a
/// wide object each keep a fresh server's peak memory under 100 MB, far under the 256Mi
/// limit of deploy/.
#[test]
fn webhook_reviews_of_one_megabyte_stay_in_budget() {
    let _alone = alone();
    let d = dir().join("webhook");
    std::fs::create_dir_all(&d).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rayward"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let p = |s: &str| d.join(s).display().to_string();
    run(&["certs", "ca", "--out", &p("ca"), "--force"]);
    run(&[
        "certs",
        "node",
        "--ca",
        &p("ca"),
        "--out",
        &p("tls"),
        "--ip",
        "127.0.0.1",
        "--force",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut wide = ray_job("");
    let labels: serde_json::Map<String, serde_json::Value> = (0..80_000)
        .map(|i| (format!("k{i}"), serde_json::json!("v")))
        .collect();
    wide["metadata"]["annotations"] = serde_json::Value::Object(labels);
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let cases = [
        ("nested anchors", ray_job(&nested_anchors(100, 900, false))),
        (
            "nested anchors + alias",
            ray_job(&nested_anchors(100, 900, true)),
        ),
        ("merge keys", ray_job(&merge_keys(40_000, false))),
        ("alias bomb", ray_job(&bomb)),
        ("wide object", wide),
    ];
    for (name, obj) in cases {
        let body = review("RayJob", obj);
        assert!(body.len() <= 1_100_000, "{name}: {} bytes", body.len());
        for path in ["/validate", "/mutate"] {
            let (server, client) = webhook(&d);
            let pid = server.0.id();
            let t0 = Instant::now();
            while rt
                .block_on(client.request("GET", "/healthz", "text/plain", vec![]))
                .is_err()
            {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "webhook never answered"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let idle = peak_rss(pid);
            let t = Instant::now();
            let r = rt
                .block_on(client.request("POST", path, "application/json", body.clone()))
                .unwrap();
            let took = t.elapsed();
            let peak = peak_rss(pid);
            eprintln!(
                "webhook {name} {path}: {} KB, HTTP {}, {:.2} s, peak {} MB (idle {} MB)",
                body.len() / 1024,
                r.status,
                took.as_secs_f64(),
                peak / MB as u64,
                idle / MB as u64
            );
            assert_eq!(r.status, 200, "{name} {path}: {}", r.text());
            assert!(took < Duration::from_secs(20), "{name} {path}: {took:?}");
            assert!(
                peak < 100 * MB as u64,
                "{name} {path}: peak {} MB",
                peak / MB as u64
            );
        }
    }
}

/// Issue 10 §3: `request.kind.kind` from a direct caller used to become a label value, so
/// 300 reviews of random kinds grew `/metrics` to 20 MB. Over the real socket: the kind
/// label takes only kinds rayward knows, the rest count as `other`.
#[test]
fn webhook_metrics_stay_bounded_whatever_kinds_callers_send() {
    let _alone = alone();
    let d = dir().join("metrics");
    std::fs::create_dir_all(&d).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rayward"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let p = |s: &str| d.join(s).display().to_string();
    run(&["certs", "ca", "--out", &p("ca"), "--force"]);
    run(&[
        "certs",
        "node",
        "--ca",
        &p("ca"),
        "--out",
        &p("tls"),
        "--ip",
        "127.0.0.1",
        "--force",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_server, client) = webhook(&d);
    let t0 = Instant::now();
    while rt
        .block_on(client.request("GET", "/healthz", "text/plain", vec![]))
        .is_err()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "webhook never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..300 {
        let kind = format!("Kind{i}x{}", "y".repeat(200));
        let mut body: serde_json::Value =
            serde_json::from_slice(&review("RayJob", ray_job(""))).unwrap();
        body["request"]["kind"]["kind"] = serde_json::json!(kind);
        body["request"]["kind"]["group"] = serde_json::json!(format!("evil{i}.example"));
        for path in ["/validate", "/mutate"] {
            let r = rt
                .block_on(client.request(
                    "POST",
                    path,
                    "application/json",
                    serde_json::to_vec(&body).unwrap(),
                ))
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let m = rt
        .block_on(client.request("GET", "/metrics", "text/plain", vec![]))
        .unwrap()
        .text();
    assert!(!m.contains("Kind1x"), "a caller's kind became a label");
    assert!(m.contains("kind=\"other\""), "{m}");
    assert!(m.len() < 64 * 1024, "/metrics is {} bytes", m.len());
}
