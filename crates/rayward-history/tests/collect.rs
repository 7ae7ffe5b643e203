//! The collector on real sockets against a real local store: logs, events and snapshots
//! arrive, hostile POSTs get clear 4xx, and a store that is down for a while loses nothing.

use crate::common::{fake_dashboard, free_addr, get, post, raw, wait_for};
use rayward_history::collect::{self, Config, Summary};
use rayward_history::index::{NodeIndex, Role};
use rayward_history::layout::{ClusterRef, Kind, NodeSession};
use rayward_history::snapshot::Dashboard;
use rayward_history::store::Store;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SESSION: &str = "session_2026-12-05_10-00-00_000000_1";
const TOKEN: &str = "t0ken-for-the-fake-dashboard";

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<Result<Summary, String>>>,
}

impl Running {
    fn stop(mut self) -> Summary {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().join().unwrap().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A Ray temp dir with `session_latest` → one session holding `logs/`.
fn ray_dir(root: &Path) -> PathBuf {
    let ray = root.join("ray");
    let logs = ray.join(SESSION).join("logs");
    std::fs::create_dir_all(logs.join("old")).unwrap();
    std::os::unix::fs::symlink(ray.join(SESSION), ray.join("session_latest")).unwrap();
    ray
}

fn start(store_dir: &Path, ray: &Path, spool: &Path, dashboard: Option<SocketAddr>) -> Running {
    let addr = free_addr();
    let store = Store::open(store_dir.to_str().unwrap(), &[]).unwrap();
    let cfg = Config {
        store,
        cluster: ClusterRef::new("team-a", Kind::RayJob, "train").unwrap(),
        node: "train-head".into(),
        role: if dashboard.is_some() {
            Role::Head
        } else {
            Role::Worker
        },
        ray_dir: ray.to_path_buf(),
        listen: addr,
        dashboard: dashboard
            .map(|d| Dashboard::new(&format!("http://{d}"), Some(TOKEN.into())).unwrap()),
        spool_dir: spool.to_path_buf(),
        spool_max: 1 << 20,
        max_event_body: 64 << 10,
        tick: Duration::from_millis(100),
        snapshot_every: Duration::from_secs(3600),
        index_every: Duration::from_millis(100),
        final_flush: Duration::from_secs(10),
        logs: rayward_history::logs::Policy {
            max_delay: Duration::from_millis(200),
            ..Default::default()
        },
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(collect::run(cfg, async {
            let _ = rx.await;
        }))
        .map_err(|e| e.to_string())
    });
    assert!(
        wait_for(10, || get(addr, "/healthz").0 == 200),
        "collector never answered /healthz"
    );
    Running {
        addr,
        stop: Some(tx),
        handle: Some(handle),
    }
}

fn ns() -> NodeSession {
    NodeSession::new(
        ClusterRef::new("team-a", Kind::RayJob, "train").unwrap(),
        SESSION,
        "train-head",
    )
    .unwrap()
}

fn read_index(store_dir: &Path) -> Option<NodeIndex> {
    let b = std::fs::read(store_dir.join(ns().index_key())).ok()?;
    Some(NodeIndex::parse(&b).unwrap())
}

/// The stored bytes of the log last seen as `name`, parts in order.
fn stored_log(store_dir: &Path, idx: &NodeIndex, name: &str) -> Vec<u8> {
    let f = idx.logs.iter().find(|f| f.name == name).unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    for p in &f.parts {
        assert_eq!(p.offset, next, "parts are contiguous");
        let b = std::fs::read(store_dir.join(&p.key)).unwrap();
        assert_eq!(b.len() as u64, p.len);
        out.extend(b);
        next += p.len;
    }
    out
}

fn event_batch(n: usize) -> Vec<u8> {
    let evs: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({"eventId": format!("e{i}"), "eventType": "TASK_LIFECYCLE_EVENT",
                "sessionName": SESSION, "taskLifecycleEvent": {"taskId": format!("t{i}")}})
        })
        .collect();
    serde_json::to_vec(&evs).unwrap()
}

#[test]
fn logs_events_and_snapshots_reach_a_local_store() {
    let d = tempfile::tempdir().unwrap();
    let (store_dir, spool) = (d.path().join("store"), d.path().join("spool"));
    let ray = ray_dir(d.path());
    let logs = ray.join(SESSION).join("logs");
    std::fs::write(logs.join("raylet.out"), "line 1\n").unwrap();
    std::fs::write(logs.join("old/worker.err"), "old\n").unwrap();
    let dash = fake_dashboard(TOKEN);
    let c = start(&store_dir, &ray, &spool, Some(dash));

    assert_eq!(post(c.addr, "application/json", &event_batch(3)).0, 200);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("raylet.out"))
        .unwrap();
    f.write_all(b"line 2\n").unwrap();
    drop(f);
    let tb = "Traceback (most recent call last):\nValueError: boom\n";
    std::fs::write(logs.join("job-driver-raysubmit_bad.log"), tb).unwrap();
    let total = (14 + 4 + tb.len()) as u64;
    assert!(
        wait_for(20, || read_index(&store_dir).is_some_and(|i| {
            i.events.len() == 1 && i.logs.iter().map(|f| f.shipped).sum::<u64>() == total
        })),
        "{:?}",
        read_index(&store_dir)
    );
    let (status, metrics) = get(c.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("rayward_history_events_received_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "rayward_history_shipped_bytes_total{{kind=\"log\"}} {total}\n"
        )),
        "{metrics}"
    );

    let summary = c.stop();
    assert!(summary.flushed);
    let idx = read_index(&store_dir).unwrap();
    assert!(idx.finished, "the final flush marks the index finished");
    assert_eq!(idx.role, Role::Head);
    assert_eq!(
        stored_log(&store_dir, &idx, "raylet.out"),
        b"line 1\nline 2\n"
    );
    assert_eq!(stored_log(&store_dir, &idx, "old/worker.err"), b"old\n");
    assert!(
        String::from_utf8(stored_log(&store_dir, &idx, "job-driver-raysubmit_bad.log"))
            .unwrap()
            .contains("ValueError: boom")
    );
    // The events as Ray POSTed them.
    let ev = std::fs::read(store_dir.join(&idx.events[0].key)).unwrap();
    assert_eq!(ev, event_batch(3));
    assert_eq!(idx.events[0].count, 3);
    // Every endpoint snapshotted with the token; the 501 kept; job states for the listing.
    assert_eq!(
        idx.snapshots.len(),
        rayward_history::snapshot::ENDPOINTS.len()
    );
    assert_eq!(idx.snapshots["serve"].status, 501);
    assert_eq!(idx.snapshots["version"].status, 200);
    let v = std::fs::read_to_string(store_dir.join(&idx.snapshots["version"].key)).unwrap();
    assert_eq!(v, "{\"path\":\"/api/version\"}");
    let states: Vec<_> = idx
        .jobs
        .iter()
        .map(|j| (j.submission_id.as_str(), j.status.as_str()))
        .collect();
    assert_eq!(
        states,
        [("raysubmit_ok", "SUCCEEDED"), ("raysubmit_bad", "FAILED")]
    );
    // Two snapshot rounds (start and final flush): only the latest is kept.
    let snaps = walk(&store_dir.join(ns().session_prefix()).join("snapshots"));
    assert_eq!(
        snaps.len(),
        rayward_history::snapshot::ENDPOINTS.len(),
        "{snaps:?}"
    );
    assert_eq!(
        std::fs::read(store_dir.join("rayward-history.json")).unwrap(),
        b"{\"layout\":1}\n"
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool emptied"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn hostile_event_posts_get_clear_4xx() {
    let d = tempfile::tempdir().unwrap();
    let ray = ray_dir(d.path());
    let c = start(&d.path().join("store"), &ray, &d.path().join("spool"), None);
    let a = c.addr;
    // Over the 64 KiB limit, declared: refused before the body is read.
    let (s, b) = raw(a, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n[");
    assert_eq!(s, 413, "{b}");
    assert!(b.contains("body over 65536 bytes"), "{b}");
    // Over the limit, chunked (no length declared): cut off while reading.
    let mut req = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..40 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(a, &req).0, 413);
    // Not Ray's events.
    let (s, b) = post(
        a,
        "application/json",
        b"[{\"eventType\": \"X\"},\n {\"no\": 1}]",
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("missing field `eventType` at line 2"), "{b}");
    let (s, b) = post(a, "application/json", b"{\"eventType\":\"X\"}");
    assert_eq!(s, 400, "{b}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(post(a, "application/json", deep.as_bytes()).0, 400);
    let (s, b) = post(a, "text/plain", b"[]");
    assert_eq!(s, 415, "{b}");
    assert_eq!(get(a, "/v1/events").0, 405);
    assert_eq!(get(a, "/v1/events/../metrics").0, 404);
    assert_eq!(get(a, "/v1%2fevents").0, 404);
    assert_eq!(
        raw(
            a,
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .0,
        405
    );
    // Actor payloads of another shape than Ray 2.60's are taken (the batch is Ray's; the
    // actor table skips them): refusing would make Ray retry the batch forever.
    let odd = br#"[{"eventType":"ACTOR_LIFECYCLE_EVENT","actorLifecycleEvent":{"actorId":7,"stateTransitions":"x"}},{"eventType":"ACTOR_DEFINITION_EVENT","actorDefinitionEvent":[]}]"#;
    let (s, b) = post(a, "application/json", odd);
    assert_eq!(s, 200, "{b}");
    // Still serving, and the refusals counted by reason.
    assert_eq!(post(a, "application/json", &event_batch(1)).0, 200);
    let m = get(a, "/metrics").1;
    for reason in ["size\"} 2", "json\"} 3", "content_type\"} 1", "method\"} 1"] {
        assert!(
            m.contains(&format!(
                "rayward_history_event_posts_refused_total{{reason=\"{reason}"
            )),
            "{reason}: {m}"
        );
    }
    assert!(c.stop().flushed);
}

#[test]
fn a_store_down_for_a_while_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store_dir = d.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    // `v1` as a file: every write under it fails (ENOTDIR), as a store that is down.
    std::fs::write(store_dir.join("v1"), "blocked").unwrap();
    let ray = ray_dir(d.path());
    std::fs::write(
        ray.join(SESSION).join("logs/raylet.out"),
        "during the outage\n",
    )
    .unwrap();
    let c = start(&store_dir, &ray, &d.path().join("spool"), None);
    for _ in 0..3 {
        assert_eq!(post(c.addr, "application/json", &event_batch(2)).0, 200);
    }
    // Errors counted, and the spool holds the three batches while the store is down.
    assert!(wait_for(10, || {
        let m = get(c.addr, "/metrics").1;
        !m.contains("rayward_history_upload_errors_total 0\n")
            && !m.contains("rayward_history_spool_bytes 0\n")
    }));
    assert!(read_index(&store_dir).is_none());
    std::fs::remove_file(store_dir.join("v1")).unwrap();
    assert!(
        wait_for(40, || read_index(&store_dir).is_some_and(|i| i
            .events
            .iter()
            .map(|e| e.count)
            .sum::<u64>()
            == 6
            && i.logs.iter().any(|f| f.shipped == 18))),
        "{:?}",
        read_index(&store_dir)
    );
    assert!(c.stop().flushed);
    let idx = read_index(&store_dir).unwrap();
    assert_eq!(idx.events.iter().map(|e| e.count).sum::<u64>(), 6);
    assert_eq!(idx.dropped, 0);
    // The three batches buffered during the outage are stored as one object.
    assert_eq!(idx.events.len(), 1);
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(store_dir.join(&idx.events[0].key)).unwrap())
            .unwrap();
    assert_eq!(v.len(), 6);
}

#[test]
fn a_restarted_ray_gets_a_new_session_prefix() {
    let d = tempfile::tempdir().unwrap();
    let store_dir = d.path().join("store");
    let ray = ray_dir(d.path());
    std::fs::write(ray.join(SESSION).join("logs/raylet.out"), "first run\n").unwrap();
    let c = start(&store_dir, &ray, &d.path().join("spool"), None);
    assert!(wait_for(20, || read_index(&store_dir)
        .is_some_and(|i| i.logs.iter().any(|f| f.shipped == 10))));
    // Ray restarts: a new session directory, session_latest moved to it (as Ray does).
    let second = "session_2026-12-05_11-00-00_000000_2";
    std::fs::create_dir_all(ray.join(second).join("logs")).unwrap();
    std::fs::write(ray.join(second).join("logs/raylet.out"), "second run\n").unwrap();
    // The first run's last line, written before the restart was noticed.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ray.join(SESSION).join("logs/raylet.out"))
        .unwrap();
    f.write_all(b"last\n").unwrap();
    drop(f);
    std::fs::remove_file(ray.join("session_latest")).unwrap();
    std::os::unix::fs::symlink(ray.join(second), ray.join("session_latest")).unwrap();
    let ns2 = NodeSession::new(
        ClusterRef::new("team-a", Kind::RayJob, "train").unwrap(),
        second,
        "train-head",
    )
    .unwrap();
    let idx2 = || {
        std::fs::read(store_dir.join(ns2.index_key()))
            .ok()
            .map(|b| NodeIndex::parse(&b).unwrap())
    };
    assert!(wait_for(20, || idx2()
        .is_some_and(|i| i.logs.iter().any(|f| f.shipped == 11))));
    // The first session is finished, with its last line.
    let first = read_index(&store_dir).unwrap();
    assert!(first.finished);
    assert_eq!(
        stored_log(&store_dir, &first, "raylet.out"),
        b"first run\nlast\n"
    );
    assert!(c.stop().flushed);
    let second_idx = idx2().unwrap();
    assert!(second_idx.finished);
    assert_eq!(
        stored_log(&store_dir, &second_idx, "raylet.out"),
        b"second run\n"
    );
}
