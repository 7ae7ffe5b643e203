//! `rayward history serve` through the binary and a real socket, on a store built with the
//! collector's own layout code: the listing and every URL scoped by namespace (another
//! namespace's sessions answer exactly as absent ones), the rebuilt API and log downloads
//! with ranges, hostile paths and non-GET methods refused before anything is read, the
//! login form, a truncated object named while the rest is served, an unknown layout
//! version refused, and the audit log.

use base64::Engine;
use bytes::Bytes;
use rayward_history::index::{JobState, LogFile, NodeIndex, Part, Role, Snapshot};
use rayward_history::layout::{ClusterRef, Kind, NodeSession};
use rayward_history::store::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const S1: &str = "session_2026-12-05_10-00-00_000000_1";
pub(crate) const HEAD_ID: &str = "aa11";
const WORKER_ID: &str = "bb22";
const TRACEBACK: &str =
    "Traceback (most recent call last):\n  File \"bad.py\", line 1\nValueError: boom\n";

/// A session of `ns/rayjob/name` with a head and a worker, as a collector stores it.
pub(crate) async fn put_session(s: &Store, ns: &str, name: &str, big_log: &[u8]) {
    let cluster = ClusterRef::new(ns, Kind::RayJob, name).unwrap();
    let head = NodeSession::new(cluster.clone(), S1, &format!("{name}-head")).unwrap();
    let worker = NodeSession::new(cluster, S1, &format!("{name}-worker")).unwrap();
    let mut hi = NodeIndex::new(&head, Role::Head, 1_796_464_801_000);
    hi.updated = 1_796_465_052_000;
    hi.finished = true;
    hi.ray_node_id = Some(HEAD_ID.into());
    let snaps = [
        (
            "jobs",
            200,
            r#"[{"submission_id":"raysubmit_ok","job_id":"01000000","status":"SUCCEEDED"},{"submission_id":"raysubmit_bad","job_id":null,"status":"FAILED"}]"#.to_string(),
        ),
        (
            "nodes",
            200,
            format!(r#"{{"result":true,"msg":"","data":{{"summary":[{{"raylet":{{"nodeId":"{HEAD_ID}","state":"DEAD"}},"ip":"10.0.0.1"}},{{"raylet":{{"nodeId":"{WORKER_ID}","state":"DEAD"}},"ip":"10.0.0.2"}}]}}}}"#),
        ),
        (
            "actors",
            200,
            r#"{"result":true,"msg":"","data":{"actors":{"ac1":{"actorId":"ac1","name":"counter","state":"DEAD"}}}}"#.to_string(),
        ),
        ("serve", 501, "Serve is not installed".to_string()),
    ];
    for (i, (ep, status, body)) in snaps.iter().enumerate() {
        let key = head.snapshot_key(i as u64, ep);
        s.put(&key, Bytes::from(body.clone())).await.unwrap();
        hi.snapshots.insert(
            ep.to_string(),
            Snapshot {
                key,
                status: *status,
                taken: 0,
            },
        );
    }
    hi.jobs = vec![
        JobState {
            submission_id: "raysubmit_ok".into(),
            status: "SUCCEEDED".into(),
        },
        JobState {
            submission_id: "raysubmit_bad".into(),
            status: "FAILED".into(),
        },
    ];
    // The failed job's driver log in two parts; a big log in 4 KiB parts.
    let log = |hi: &mut NodeIndex, name: &str, id: &str, bytes: &[u8], part: usize| {
        let mut parts = Vec::new();
        for (i, chunk) in bytes.chunks(part).enumerate() {
            let off = (i * part) as u64;
            parts.push((head.log_part_key(id, off), off, chunk.to_vec()));
        }
        hi.logs.push(LogFile {
            id: id.into(),
            name: name.into(),
            dev: 1,
            ino: 1,
            shipped: bytes.len() as u64,
            parts: parts
                .iter()
                .map(|(k, o, b)| Part {
                    key: k.clone(),
                    offset: *o,
                    len: b.len() as u64,
                })
                .collect(),
        });
        parts
    };
    let mut objects = log(
        &mut hi,
        "job-driver-raysubmit_bad.log",
        "1-0",
        TRACEBACK.as_bytes(),
        40,
    );
    objects.extend(log(&mut hi, "raylet.out", "2-0", big_log, 4096));
    objects.extend(log(&mut hi, "events/event_GCS.log", "3-0", b"{}\n", 4096));
    for (k, _, b) in objects {
        s.put(&k, Bytes::from(b)).await.unwrap();
    }
    s.put(&head.index_key(), Bytes::from(hi.to_bytes()))
        .await
        .unwrap();
    let mut wi = NodeIndex::new(&worker, Role::Worker, 1_796_464_802_000);
    wi.finished = true;
    wi.ray_node_id = Some(WORKER_ID.into());
    s.put(&worker.index_key(), Bytes::from(wi.to_bytes()))
        .await
        .unwrap();
}

fn big_log() -> Vec<u8> {
    (0..3000)
        .flat_map(|i| format!("line {i:05}\n").into_bytes())
        .collect()
}

pub(crate) fn build_store(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(dir.to_str().unwrap(), &[]).unwrap();
        s.ensure_layout().await.unwrap();
        put_session(&s, "team-a", "train", &big_log()).await;
        put_session(&s, "team-b", "other", b"b\n").await;
        // A session whose only index is truncated: reported, never fatal.
        s.put(
            &format!("v1/team-a/rayjob/broken/{S1}/index/broken-head.json"),
            Bytes::from_static(b"{\"layout\":1,\"namespace\":"),
        )
        .await
        .unwrap();
    });
}

/// A running `rayward history serve`, killed on drop.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(config: &Path) -> Serve {
    start_with_env(config, &[])
}

/// Starts the server on `config` (listen and admin_listen on port 0) and reads the bound
/// addresses from its stderr.
pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(["history", "serve", "--config", config.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut addr, mut admin) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let after = |tag: &str| {
            line.split(tag)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        if line.contains("admin") {
            admin = after("http://");
        } else if line.contains("listening on") {
            addr = after("http://");
            break;
        }
    }
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        addr: addr.expect("the listen address on stderr"),
        admin: admin.expect("the admin address on stderr"),
    }
}

/// One raw HTTP/1.1 exchange: status, headers (lower-case names), body.
pub fn raw(addr: SocketAddr, head: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 4 + n..];
    }
}

/// The `Authorization` header line of a test user (password `Secret-Pass1`).
pub fn basic(user: &str) -> String {
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:Secret-Pass1"))
    )
}

/// GET `path` with extra header lines.
pub fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: h\r\n{extra}Connection: close\r\n\r\n"),
    )
}

/// A response header by lower-case name.
pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) fn write_config(dir: &Path, store: &Path, extra: &str) -> std::path::PathBuf {
    let ui = dir.join("ui");
    std::fs::create_dir_all(ui.join("static/js")).unwrap();
    std::fs::write(
        ui.join("index.html"),
        "<!doctype html><title>Ray Dashboard</title>",
    )
    .unwrap();
    std::fs::write(ui.join("static/js/main.js"), "console.log(1)").unwrap();
    config_file(dir, &store.display().to_string(), &ui, extra)
}

/// A config in `dir`: users alice (team-a), bob (team-b), carol (label selector
/// `dept=ml`, which team-b has), an htpasswd file, a session key and an audit log.
pub fn config_file(dir: &Path, store: &str, ui: &Path, extra: &str) -> std::path::PathBuf {
    let hash = bcrypt::hash("Secret-Pass1", 4).unwrap();
    std::fs::write(
        dir.join("htpasswd"),
        format!("alice:{hash}\nbob:{hash}\ncarol:{hash}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("session.key"), [9u8; 32]).unwrap();
    let cfg = dir.join("history.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
store = {store:?}
dashboard_dir = {ui:?}
[auth]
htpasswd = {ht:?}
[session]
key_file = {key:?}
[users]
alice = "team-a-viewer"
bob = "team-b-viewer"
carol = "ml"
[roles.team-a-viewer]
namespaces = ["team-a"]
[roles.team-b-viewer]
namespaces = ["team-b"]
[roles.ml]
namespace_selectors = ["dept=ml"]
[namespace_labels]
team-b = {{ dept = "ml" }}
[audit]
path = {audit:?}
{extra}"#,
            ui = ui.display().to_string(),
            ht = dir.join("htpasswd").display().to_string(),
            key = dir.join("session.key").display().to_string(),
            audit = dir.join("audit.jsonl").display().to_string(),
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn serve_scopes_sessions_by_namespace_and_rebuilds_the_api() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let cfg = write_config(d.path(), &store, "");
    let srv = start(&cfg);
    let a = srv.addr;
    let base = format!("/clusters/team-a/rayjob/train/{S1}");
    let other = format!("/clusters/team-b/rayjob/other/{S1}");

    // The listing: only readable namespaces, with the jobs' final states.
    let (st, _, body) = get(a, "/api/clusters", &basic("alice"));
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["train"]);
    assert_eq!(v["sessions"][0]["jobs"][1]["status"], "FAILED");
    assert_eq!(v["sessions"][0]["nodes"].as_array().unwrap().len(), 2);
    assert!(
        v["problems"][0]["key"]
            .as_str()
            .unwrap()
            .contains("broken-head.json"),
        "{v}"
    );
    let (st, _, body) = get(a, "/", &basic("alice"));
    let html = String::from_utf8(body).unwrap();
    assert_eq!(st, 200);
    assert!(html.contains(&format!("href=\"{base}/\"")), "{html}");
    assert!(html.contains("raysubmit_bad=FAILED"));
    assert!(!html.contains("team-b"), "{html}");
    // A label selector grants team-b to carol, and nothing of team-a.
    let (_, _, body) = get(a, "/api/clusters", &basic("carol"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(v["sessions"][0]["namespace"], "team-b");

    // Another namespace's session answers exactly as one that does not exist.
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
        &format!("/clusters/team-b/rayjob/nope/{S1}/api/jobs/"),
        &basic("alice"),
    ));
    assert_eq!(absent.0, 404);
    for p in [
        format!("{other}/"),
        other.clone(),
        format!("{other}/api/jobs/"),
        format!("{other}/api/jobs/raysubmit_bad/logs"),
        format!("{other}/api/v0/logs/file?node_id={HEAD_ID}&filename=raylet.out"),
        format!("{other}/static/js/main.js"),
    ] {
        assert_eq!(strip(get(a, &p, &basic("alice"))), absent, "{p}");
    }
    let (st, _, _) = get(a, &format!("{other}/api/jobs/"), &basic("bob"));
    assert_eq!(st, 200, "bob reads team-b");

    // The UI and the API under the session's prefix.
    let (st, h, _) = get(a, &base, &basic("alice"));
    assert_eq!(
        (st, header(&h, "location")),
        (308, Some(format!("{base}/").as_str()))
    );
    let (st, _, body) = get(a, &format!("{base}/"), &basic("alice"));
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("Ray Dashboard"));
    let (st, h, body) = get(a, &format!("{base}/static/js/main.js"), &basic("alice"));
    assert_eq!((st, &body[..]), (200, &b"console.log(1)"[..]));
    assert_eq!(
        header(&h, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let (st, _, body) = get(a, &format!("{base}/jobs/raysubmit_bad"), &basic("alice"));
    assert!(st == 200 && String::from_utf8_lossy(&body).contains("Ray Dashboard"));
    let (st, _, _) = get(a, &format!("{base}/static/js/none.js"), &basic("alice"));
    assert_eq!(st, 404);

    let (st, _, body) = get(a, &format!("{base}/api/jobs/"), &basic("alice"));
    let jobs: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 200);
    assert_eq!(jobs[1]["status"], "FAILED");
    let (_, _, body) = get(
        a,
        &format!("{base}/api/jobs/raysubmit_bad/logs"),
        &basic("alice"),
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["logs"], TRACEBACK);
    let (st, _, body) = get(
        a,
        &format!("{base}/api/serve/applications/"),
        &basic("alice"),
    );
    assert_eq!((st, &body[..]), (501, &b"Serve is not installed"[..]));
    let (_, _, body) = get(a, &format!("{base}/nodes?view=summary"), &basic("alice"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["summary"].as_array().unwrap().len(), 2);
    let (st, _, body) = get(a, &format!("{base}/nodes/{WORKER_ID}"), &basic("alice"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 200);
    assert_eq!(v["data"]["detail"]["ip"], "10.0.0.2");
    let (st, _, body) = get(a, &format!("{base}/api/profiling_enabled"), &basic("alice"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, &v["data"]["profilingEnabled"]),
        (200, &serde_json::json!(false))
    );
    let (_, _, body) = get(a, &format!("{base}/logical/actors/ac1"), &basic("alice"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["detail"]["name"], "counter");
    let (_, _, body) = get(
        a,
        &format!("{base}/api/v0/logs?node_id={HEAD_ID}"),
        &basic("alice"),
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["data"]["result"]["raylet"],
        serde_json::json!(["raylet.out"])
    );
    assert_eq!(
        v["data"]["result"]["internal"],
        serde_json::json!(["job-driver-raysubmit_bad.log", "events/"])
    );

    // Logs: the whole file across parts, a range, a suffix range, the last lines.
    let big = big_log();
    let file = format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=raylet.out");
    let (st, h, body) = get(a, &file, &basic("alice"));
    assert_eq!(st, 200);
    assert_eq!(body, big);
    assert_eq!(
        header(&h, "content-disposition"),
        Some("attachment; filename=\"file.txt\"")
    );
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
    let (st, h, body) = get(
        a,
        &file,
        &format!("{}Range: bytes=4090-8200\r\n", basic("alice")),
    );
    assert_eq!(st, 206);
    assert_eq!(body, &big[4090..8201]);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes 4090-8200/{}", big.len()).as_str())
    );
    let (st, _, body) = get(a, &file, &format!("{}Range: bytes=-11\r\n", basic("alice")));
    assert_eq!((st, &body[..]), (206, &b"line 02999\n"[..]));
    let (st, h, _) = get(
        a,
        &file,
        &format!("{}Range: bytes=999999-\r\n", basic("alice")),
    );
    assert_eq!(st, 416);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes */{}", big.len()).as_str())
    );
    let (_, _, body) = get(a, &format!("{file}&lines=2"), &basic("alice"));
    assert_eq!(&body[..], b"line 02998\nline 02999\n");
    let (st, _, body) = get(
        a,
        &format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=job-driver-raysubmit_bad.log"),
        &basic("alice"),
    );
    assert_eq!(
        (st, String::from_utf8(body).unwrap()),
        (200, TRACEBACK.to_string())
    );

    // Unauthenticated: 401 for clients, the login form for browsers.
    let (st, h, _) = get(a, "/api/clusters", "");
    assert_eq!(st, 401);
    assert!(header(&h, "www-authenticate").is_some());
    let (st, h, _) = get(a, "/", "Accept: text/html\r\n");
    assert_eq!((st, header(&h, "location")), (302, Some("/rayward/login")));
    let (st, _, _) = get(
        a,
        "/api/clusters",
        "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n",
    );
    assert_eq!(st, 401);

    // Health and metrics on the admin listener only.
    let (st, _, body) = get(srv.admin, "/metrics", "");
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("rayward_history_serve_requests_total"));
    let (st, _, _) = get(a, "/metrics", &basic("alice"));
    assert_eq!(st, 404);

    // The audit log: who opened which session, which log they downloaded, the denials.
    drop(srv);
    let audit = std::fs::read_to_string(d.path().join("audit.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |event: &str, user: &str, what: &str| {
        recs.iter().any(|r| {
            r["event"] == event
                && r["user"] == format!("htpasswd:{user}")
                && r.to_string().contains(what)
        })
    };
    assert!(
        has(
            "open_session",
            "alice",
            &format!("team-a/rayjob/train/{S1}")
        ),
        "{audit}"
    );
    assert!(
        has("download_log", "alice", "train-head/raylet.out"),
        "{audit}"
    );
    assert!(
        has("denied", "alice", "namespace team-b is not readable"),
        "{audit}"
    );
}

#[test]
fn serve_refuses_hostile_paths_and_writes_before_reading_anything() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let cfg = write_config(d.path(), &store, "");
    let srv = start(&cfg);
    let a = srv.addr;
    let base = format!("/clusters/team-a/rayjob/train/{S1}");
    // Every method but GET and HEAD: 405 with or without credentials, on any path.
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for p in [
            format!("{base}/api/jobs/"),
            "/".to_string(),
            "/../x".to_string(),
        ] {
            let (st, h, _) = raw(
                a,
                &format!("{m} {p} HTTP/1.1\r\nHost: h\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n", basic("alice")),
            );
            assert_eq!(st, 405, "{m} {p}");
            assert_eq!(header(&h, "allow"), Some("GET, HEAD"));
        }
    }
    let (st, _, body) = raw(
        a,
        &format!(
            "HEAD {base}/api/jobs/ HTTP/1.1\r\nHost: h\r\n{}Connection: close\r\n\r\n",
            basic("alice")
        ),
    );
    assert_eq!((st, body.len()), (200, 0));
    // Hostile targets: 4xx, authenticated or not, never a file of the store or the build.
    let long = format!("/{}", "a".repeat(3000));
    for p in [
        format!("{base}/../../../../etc/passwd"),
        format!("{base}/%2e%2e/%2e%2e/secret"),
        format!("/clusters/team-a%2frayjob/train/{S1}/"),
        format!("{base}/static%5c..%5cindex.html"),
        format!("{base}//etc/passwd"),
        format!("{base}/static/./js/main.js"),
        format!("{base}/%00"),
        long,
    ] {
        for auth in [String::new(), basic("alice")] {
            let (st, _, body) = get(a, &p, &auth);
            assert!((400..500).contains(&st), "{p}: {st}");
            assert!(!String::from_utf8_lossy(&body).contains("root:"), "{p}");
        }
    }
    let (st, _, _) = raw(
        a,
        "GET /a\0b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert!((400..500).contains(&st), "NUL: {st}");

    // Failed-login backoff (the gateway's): after 5 wrong passwords the user and the
    // address are locked, the right password included, with Retry-After.
    let wrong = format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode("bob:wrong-pass")
    );
    for i in 0..5 {
        let (st, _, _) = get(a, "/api/clusters", &wrong);
        assert_eq!(st, 401, "attempt {i}");
    }
    let (st, h, _) = get(a, "/api/clusters", &basic("bob"));
    assert_eq!(st, 429);
    assert!(header(&h, "retry-after").is_some());
}

#[test]
fn serve_logs_in_with_the_gateway_form_and_names_a_truncated_object() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    // Truncate the failed job's second log part behind the index's back.
    let idx_key = store.join(format!("v1/team-a/rayjob/train/{S1}/index/train-head.json"));
    let idx: NodeIndex = serde_json::from_slice(&std::fs::read(&idx_key).unwrap()).unwrap();
    let part = &idx.logs[0].parts[1].key;
    std::fs::write(store.join(part), b"x").unwrap();
    let cfg = write_config(d.path(), &store, "");
    let srv = start(&cfg);
    let a = srv.addr;
    let base = format!("/clusters/team-a/rayjob/train/{S1}");

    // The login form: a CSRF nonce cookie, the token in the form, a session cookie.
    let (st, h, body) = get(a, "/rayward/login", "");
    assert_eq!(st, 200);
    let nonce = header(&h, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = String::from_utf8(body).unwrap();
    let csrf = html
        .split("name=csrf value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!("user=alice&password=Secret-Pass1&csrf={csrf}");
    let (st, h, _) = raw(
        a,
        &format!(
            "POST /rayward/login HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\nCookie: {nonce}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!((st, header(&h, "location")), (303, Some("/")));
    let session = header(&h, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cookie = format!("Cookie: {session}\r\n");
    let (st, _, _) = get(a, &format!("{base}/api/jobs/"), &cookie);
    assert_eq!(st, 200);
    // Another site's page cannot post the form.
    let (st, _, _) = raw(
        a,
        &format!(
            "POST /rayward/login HTTP/1.1\r\nHost: h\r\nOrigin: http://evil\r\nCookie: {nonce}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(st, 403);

    // The truncated part is named; the rest of the session is served.
    let (st, _, body) = get(
        a,
        &format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=job-driver-raysubmit_bad.log&lines=5"),
        &cookie,
    );
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 500, "{text}");
    assert!(
        text.contains(part.as_str()) && text.contains("truncated"),
        "{text}"
    );
    let (st, _, _) = get(a, &format!("{base}/api/jobs/"), &cookie);
    assert_eq!(st, 200);
    let (st, _, body) = get(
        a,
        &format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=raylet.out&lines=1"),
        &cookie,
    );
    assert_eq!((st, &body[..]), (200, &b"line 02999\n"[..]));

    // Logout ends the session.
    let (st, _, _) = raw(
        a,
        &format!("POST /rayward/logout HTTP/1.1\r\nHost: h\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(st, 303);
    let (st, _, _) = get(a, &format!("{base}/api/jobs/"), &cookie);
    assert_eq!(st, 401);
}

#[test]
fn serve_refuses_bad_configs_and_unknown_layouts_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let run = |cfg: &Path| {
        rayward_testkit::cli::run_within(
            Command::new(env!("CARGO_BIN_EXE_rayward")).args([
                "history",
                "serve",
                "--config",
                cfg.to_str().unwrap(),
            ]),
            Duration::from_secs(30),
        )
    };
    let cfg = write_config(d.path(), &store, "retention = 3\n");
    let (code, _, err) = run(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("history.toml:") && err.contains("retention"),
        "{err}"
    );
    std::fs::write(store.join("rayward-history.json"), "{\"layout\":2}").unwrap();
    let cfg = write_config(d.path(), &store, "");
    let (code, _, err) = run(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the store holds layout version 2; this rayward reads version 1"),
        "{err}"
    );
}

/// `[retention]` in serve's config: applied at start and every `interval`; a finished
/// session past `max_age` leaves the store and the listing, a session still being
/// written (unfinished, index updated a moment ago, started long ago) stays, and the run
/// is counted on the admin listener's `/metrics`.
#[test]
fn serve_applies_its_retention_section_and_spares_sessions_being_written() {
    use crate::history_gc::{node, now_ms, session_name, DAY};
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("rayward-history.json"), "{\"layout\":1}\n").unwrap();
    let now = now_ms();
    let old = node(
        &store,
        "team-a",
        Kind::RayJob,
        "old",
        &session_name(1),
        "old-head",
        Role::Head,
        true,
        now - 12 * DAY,
        now - 10 * DAY,
        1000,
    );
    let live = node(
        &store,
        "team-a",
        Kind::RayJob,
        "live",
        &session_name(2),
        "live-head",
        Role::Head,
        false,
        now - 20 * DAY,
        now - 1000,
        1000,
    );
    let cfg = write_config(
        d.path(),
        &store,
        "[retention]\nmax_age = \"7d\"\ninterval = \"1s\"\n",
    );
    let srv = start(&cfg);
    let names = || -> Vec<String> {
        let (st, _, body) = get(srv.addr, "/api/clusters", &basic("alice"));
        assert_eq!(st, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while old.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!old.exists(), "the old session is deleted from the store");
    assert!(live.join("index").is_dir(), "a session being written stays");
    // The listing is re-read after a deletion.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = names();
    while seen.contains(&"old".to_string()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = names();
    }
    assert_eq!(seen, ["live"]);
    let (st, _, body) = get(srv.admin, "/metrics", "");
    let m = String::from_utf8(body).unwrap();
    assert_eq!(st, 200);
    assert!(
        m.contains("rayward_history_serve_retention_deleted_sessions_total 1\n"),
        "{m}"
    );
    assert!(
        m.contains("rayward_history_serve_retention_runs_total{outcome=\"ok\"}"),
        "{m}"
    );
}
