//! `rayward history collect` through the binary: bad arguments are exit 2 with the reason;
//! a collector SIGKILLed mid-upload leaves a store whose every index names only complete
//! objects, and a restarted collector resumes without uploading any log byte twice.

use rayward_history::index::NodeIndex;
use rayward_testkit::cli;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const SESSION: &str = "session_2026-12-05_10-00-00_000000_1";

/// GET over plain HTTP/1.0: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// POSTs a JSON body to `/v1/events`: the status.
pub fn post_events(addr: SocketAddr, body: &[u8]) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "POST /v1/events HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body);
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` every 50 ms for up to `limit`.
pub fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A port free right now on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `rayward history collect`; killed on drop.
pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Collector {
    /// Starts the binary with `args` after `history collect`, its stderr in `log`, and
    /// waits for /healthz.
    pub fn start(
        args: &[String],
        addr: SocketAddr,
        log: &Path,
        envs: &[(&str, &str)],
    ) -> Collector {
        let err = std::fs::File::create(log).unwrap();
        let mut cmd = cli::command(env!("CARGO_BIN_EXE_rayward"));
        cmd.args(["history", "collect", "--listen", &addr.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(err);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut c = Collector {
            child,
            addr,
            log: log.to_path_buf(),
        };
        let up = until(Duration::from_secs(20), || get(addr, "/healthz").0 == 200);
        assert!(up, "collector not up: {}", c.stderr());
        let _ = &mut c;
        c
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "collector still running {limit:?} after SIGTERM: {}",
            self.stderr()
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a store the way `history serve` will: through rayward_history's `Store`.
pub struct Reader {
    store: rayward_history::store::Store,
    rt: tokio::runtime::Runtime,
}

impl Reader {
    /// The store at `url` with `options` (endpoint, keys) instead of the environment.
    pub fn open(url: &str, options: &[(&str, &str)]) -> Reader {
        let opts: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Reader {
            store: rayward_history::store::Store::open(url, &opts).unwrap(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// A local directory.
    pub fn local(dir: &Path) -> Reader {
        Reader::open(dir.to_str().unwrap(), &[])
    }

    /// One object, whole.
    pub fn read(&self, key: &str) -> Vec<u8> {
        self.rt
            .block_on(self.store.get(key, 1 << 30))
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .to_vec()
    }

    /// Every key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut k: Vec<_> = self
            .rt
            .block_on(self.store.list(prefix))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        k.sort();
        k
    }

    /// What `history serve` will answer for `path` of the session with `nodes`.
    pub fn replay(&self, nodes: &[NodeIndex], path: &str) -> Option<(u16, Vec<u8>)> {
        self.rt
            .block_on(rayward_history::replay::answer(&self.store, nodes, path))
            .unwrap()
            .map(|a| (a.status, a.body.to_vec()))
    }

    /// Every index in the store, parsed.
    pub fn indexes(&self) -> Vec<(String, NodeIndex)> {
        self.keys("v1")
            .into_iter()
            .filter(|k| k.rsplit('/').nth(1) == Some("index"))
            .map(|k| {
                let i = NodeIndex::parse(&self.read(&k)).unwrap_or_else(|e| panic!("{k}: {e}"));
                (k, i)
            })
            .collect()
    }

    /// Checks every object an index names is in the store, whole; returns the stored
    /// bytes of each log by its last name.
    pub fn check_complete(&self, idx: &NodeIndex) -> Vec<(String, Vec<u8>)> {
        let mut logs = vec![];
        for f in &idx.logs {
            let mut bytes = vec![];
            for p in &f.parts {
                assert_eq!(p.offset, bytes.len() as u64, "{}: parts contiguous", f.name);
                let b = self.read(&p.key);
                assert_eq!(b.len() as u64, p.len, "{}: whole", p.key);
                bytes.extend(b);
            }
            assert_eq!(bytes.len() as u64, f.shipped);
            logs.push((f.name.clone(), bytes));
        }
        for e in &idx.events {
            let b = self.read(&e.key);
            assert_eq!(b.len() as u64, e.bytes);
            let v: Vec<serde_json::Value> = serde_json::from_slice(&b).unwrap();
            assert_eq!(v.len() as u64, e.count);
        }
        for s in idx.snapshots.values() {
            self.read(&s.key);
        }
        logs
    }
}

fn event_batch(n: usize, tag: usize) -> Vec<u8> {
    let evs: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({"eventType": "TASK_LIFECYCLE_EVENT", "sessionName": SESSION,
            "eventId": format!("b{tag}-e{i}"), "pad": "x".repeat(200)})
        })
        .collect();
    serde_json::to_vec(&evs).unwrap()
}

#[test]
fn history_collect_bad_arguments_exit_2() {
    let d = cli::tmp("history-args");
    let store = d.join("s");
    let base = |ns: &str, store: &str, kind: &str| {
        cli::run(cli::command(env!("CARGO_BIN_EXE_rayward")).args([
            "history",
            "collect",
            "--store",
            store,
            "--namespace",
            ns,
            "--kind",
            kind,
            "--name",
            "c",
            "--node",
            "n",
        ]))
    };
    let s = store.to_str().unwrap();
    let (code, _, err) = base("Team", s, "RayJob");
    assert_eq!(code, 2);
    assert!(err.contains("namespace \"Team\" is not valid"), "{err}");
    let (code, _, err) = base("team", "s3://AKIA:secret@bucket/x", "RayJob");
    assert_eq!(code, 2);
    assert!(err.contains("holds credentials"), "{err}");
    assert!(!err.contains("secret"), "the secret is not echoed: {err}");
    let (code, _, err) = base("team", s, "Pod");
    assert_eq!(code, 2);
    assert!(
        err.contains("expected RayCluster, RayJob or RayService"),
        "{err}"
    );
    let (code, _, err) = cli::run(cli::command(env!("CARGO_BIN_EXE_rayward")).args([
        "history",
        "collect",
        "--store",
        s,
        "--namespace",
        "t",
        "--name",
        "c",
        "--node",
        "n",
        "--interval",
        "0",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--interval 0"), "{err}");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("rayward-history.json"), "{\"layout\":9}").unwrap();
    let (code, _, err) = base("team", s, "RayJob");
    assert_eq!(code, 2);
    assert!(err.contains("layout version 9"), "{err}");
}

#[test]
fn history_collect_killed_mid_upload_leaves_a_readable_store_and_resumes() {
    let d = cli::tmp("history-kill");
    let (store, spool) = (d.join("store"), d.join("spool"));
    let ray = d.join("ray");
    let logs = ray.join(SESSION).join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(ray.join(SESSION), ray.join("session_latest")).unwrap();
    // 24 files of 2 MiB shipped 1 MiB per round: 48 rounds, each writing parts then the
    // index, so the kill lands while there is more to ship.
    let mut expected = vec![];
    for i in 0..24 {
        let body: Vec<u8> = (0..(2 << 20))
            .map(|j| b'a' + ((i + j) % 26) as u8)
            .collect();
        std::fs::write(logs.join(format!("worker-{i:02}.out")), &body).unwrap();
        expected.push((format!("worker-{i:02}.out"), body));
    }
    let args: Vec<String> = [
        "--store",
        store.to_str().unwrap(),
        "--spool-dir",
        spool.to_str().unwrap(),
        "--ray-dir",
        ray.to_str().unwrap(),
        "--namespace",
        "team-a",
        "--kind",
        "RayJob",
        "--name",
        "train",
        "--node",
        "train-worker-1",
        "--interval",
        "0.05",
        "--log-round-mib",
        "1",
        "--index-interval",
        "0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let addr = free_addr();
    let mut c = Collector::start(&args, addr, &d.join("c1.err"), &[]);
    let mut sent = 0;
    // Kill once the first index is written and before everything is shipped.
    let reader = Reader::local(&store);
    let seen = until(Duration::from_secs(60), || {
        if post_events(addr, &event_batch(50, sent)) == 200 {
            sent += 1;
        }
        !reader.indexes().is_empty()
    });
    assert!(seen, "no index written: {}", c.stderr());
    unsafe { libc::kill(c.child.id() as i32, libc::SIGKILL) };
    c.child.wait().unwrap();
    let after_kill = reader.indexes();
    assert_eq!(after_kill.len(), 1);
    let (_, idx) = &after_kill[0];
    assert!(!idx.finished);
    reader.check_complete(idx);
    let shipped_at_kill: u64 = idx.logs.iter().map(|f| f.shipped).sum();
    assert!(
        shipped_at_kill < 48 << 20,
        "killed after everything was shipped ({shipped_at_kill} bytes): the kill proves nothing"
    );

    // Restarted: resumes from the index and the spool; SIGTERM flushes everything.
    let addr = free_addr();
    let mut c = Collector::start(&args, addr, &d.join("c2.err"), &[]);
    assert_eq!(post_events(addr, &event_batch(5, 999)), 200);
    sent += 1;
    assert_eq!(c.terminate(Duration::from_secs(60)), 0, "{}", c.stderr());
    let all = reader.indexes();
    let (_, idx) = &all[0];
    assert!(idx.finished);
    let mut got = reader.check_complete(idx);
    got.sort();
    assert_eq!(got.len(), expected.len());
    for ((gn, gb), (en, eb)) in got.iter().zip(&expected) {
        assert_eq!(gn, en);
        assert!(gb == eb, "{gn}: stored bytes differ from the file");
    }
    // Every acknowledged batch is there, each once.
    let mut ids = std::collections::BTreeSet::new();
    for e in &idx.events {
        let v: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(store.join(&e.key)).unwrap()).unwrap();
        for ev in v {
            assert!(
                ids.insert(ev["eventId"].as_str().unwrap().to_string()),
                "duplicate {ev}"
            );
        }
    }
    assert_eq!(ids.len(), (sent - 1) * 50 + 5);
    // No log part object the index does not name (nothing uploaded twice under new keys).
    let named: std::collections::BTreeSet<_> = idx
        .logs
        .iter()
        .flat_map(|f| &f.parts)
        .map(|p| store.join(&p.key))
        .collect();
    let logs_dir = store.join(format!("v1/team-a/rayjob/train/{SESSION}/logs"));
    let mut on_disk = vec![];
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    walk(&logs_dir, &mut on_disk);
    let stray: Vec<_> = on_disk.iter().filter(|p| !named.contains(*p)).collect();
    assert!(stray.is_empty(), "{stray:?}");

    // `history ls` lists it from the index; a corrupt index elsewhere is named, exit 2,
    // and the good session is still listed.
    let ls = |extra: &[&str]| {
        cli::run(
            cli::command(env!("CARGO_BIN_EXE_rayward"))
                .args(["history", "ls", "--store", store.to_str().unwrap()])
                .args(extra),
        )
    };
    let (code, out, err) = ls(&["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(v["sessions"][0]["session"], SESSION);
    assert_eq!(
        v["sessions"][0]["nodes"],
        serde_json::json!(["train-worker-1"])
    );
    assert_eq!(v["sessions"][0]["finished"], true);
    let bad = store.join(format!("v1/team-b/rayjob/x/{SESSION}/index/x-head.json"));
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "{\"layout\":1,\"names").unwrap();
    let (code, out, err) = ls(&[]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with(&format!(
            "team-a/rayjob/train/{SESSION}  nodes=1  started=20"
        )),
        "{out}"
    );
    assert!(out.contains(" ended=20"), "{out}");
    assert!(
        err.contains(&format!(
            "v1/team-b/rayjob/x/{SESSION}/index/x-head.json: index is not valid"
        )),
        "{err}"
    );
    let (code, out, _) = ls(&["-n", "team-a"]);
    assert_eq!((code, out.lines().count()), (0, 1), "team-b is not read");
    let (code, _, err) = ls(&["-n", "Team"]);
    assert_eq!(code, 2);
    assert!(err.contains("namespace \"Team\" is not valid"), "{err}");
}
