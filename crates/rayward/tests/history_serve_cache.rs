//! `rayward history serve`'s session cache through the binary and a real socket: a session
//! updated in the store shows its new data within the refresh period; while the store
//! holds every read of a session's indexes (a small S3 endpoint in this test, serving a
//! local directory over the S3 API the server's `object_store` client speaks, that can
//! stall index requests until told), requests are still answered from the cached indexes;
//! a session deleted from the store disappears from the server.

use super::history_serve::{basic, start_with_env, write_config};
use bytes::Bytes;
use rayward_history::index::{NodeIndex, Role, Snapshot};
use rayward_history::layout::{ClusterRef, Kind, NodeSession};
use rayward_history::store::Store;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SESSION: &str = "session_2026-12-06_02-00-00_000000_1";
const NODES: &str =
    "/clusters/team-a/rayjob/busy/session_2026-12-06_02-00-00_000000_1/nodes?view=summary";

fn head() -> NodeSession {
    NodeSession::new(
        ClusterRef::new("team-a", Kind::RayJob, "busy").unwrap(),
        SESSION,
        "busy-head",
    )
    .unwrap()
}

/// Writes the head's index (still being written) whose nodes snapshot names `marker`.
fn put_generation(store: &Path, seq: u64, marker: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(store.to_str().unwrap(), &[]).unwrap();
        s.ensure_layout().await.unwrap();
        let head = head();
        let mut hi = NodeIndex::new(&head, Role::Head, 1_796_464_801_000);
        hi.updated = 1_796_464_801_000 + seq;
        hi.seq = seq;
        let key = head.snapshot_key(seq, "nodes");
        let body = format!(r#"{{"result":true,"msg":"{marker}","data":{{"summary":[]}}}}"#);
        s.put(&key, Bytes::from(body)).await.unwrap();
        hi.snapshots.insert(
            "nodes".into(),
            Snapshot {
                key,
                status: 200,
                taken: 0,
            },
        );
        s.put(&head.index_key(), Bytes::from(hi.to_bytes()))
            .await
            .unwrap();
    });
}

/// GET as alice with a 10 s read timeout: status and body, or `None` when no answer came.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\n{}Connection: close\r\n\r\n",
        basic("alice")
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A minimal S3 endpoint (bucket `b`, path-style, unauthenticated reads) over a local
/// directory: GET object, HEAD object and ListObjectsV2 with an optional `/` delimiter.
/// While `stall` is set, every request naming a session's `index` waits (counted in
/// `stalled`).
struct S3 {
    addr: SocketAddr,
    stall: Arc<AtomicBool>,
    stalled: Arc<AtomicUsize>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(m) = p.metadata() {
            let key = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            out.push((key, m.len()));
        }
    }
}

fn s3_answer(root: &Path, method: &str, target: &str) -> (u16, Vec<u8>, &'static str) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (decode(k), decode(v))))
        .collect();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let path = decode(path);
    if path == "/b" || path == "/b/" {
        let prefix = param("prefix").unwrap_or_default();
        let delim = param("delimiter");
        let mut all = Vec::new();
        walk(root, root, &mut all);
        all.sort();
        let (mut contents, mut prefixes) = (String::new(), std::collections::BTreeSet::new());
        for (k, size) in all {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            match delim.as_deref().and_then(|d| rest.find(d).map(|i| (d, i))) {
                Some((d, i)) => {
                    prefixes.insert(format!("{prefix}{}{d}", &rest[..i]));
                }
                None => contents.push_str(&format!(
                    "<Contents><Key>{k}</Key><Size>{size}</Size><LastModified>2026-12-06T00:00:00.000Z</LastModified><ETag>\"e\"</ETag></Contents>"
                )),
            }
        }
        let prefixes: String = prefixes
            .iter()
            .map(|p| format!("<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>"))
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><Prefix>{prefix}</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}{prefixes}</ListBucketResult>"
        );
        return (200, xml.into_bytes(), "application/xml");
    }
    let Some(key) = path.strip_prefix("/b/") else {
        return (
            404,
            b"<Error><Code>NoSuchBucket</Code></Error>".to_vec(),
            "application/xml",
        );
    };
    match std::fs::read(root.join(key)) {
        Ok(_) if method == "HEAD" => (200, Vec::new(), "application/octet-stream"),
        Ok(b) => (200, b, "application/octet-stream"),
        Err(_) => (
            404,
            b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>".to_vec(),
            "application/xml",
        ),
    }
}

impl S3 {
    fn start(root: PathBuf) -> S3 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stall = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicUsize::new(0));
        let (st, sd) = (stall.clone(), stalled.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (root, st, sd) = (root.clone(), st.clone(), sd.clone());
                std::thread::spawn(move || {
                    let _ = serve_s3(conn, &root, &st, &sd);
                });
            }
        });
        S3 {
            addr,
            stall,
            stalled,
        }
    }
}

fn serve_s3(
    mut conn: TcpStream,
    root: &Path,
    stall: &AtomicBool,
    stalled: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end + 4);
        let mut first = head.lines().next().unwrap_or("").split(' ');
        let (method, target) = (
            first.next().unwrap_or("").to_string(),
            first.next().unwrap_or("").to_string(),
        );
        if decode(&target).contains("/index") && stall.load(Ordering::SeqCst) {
            stalled.fetch_add(1, Ordering::SeqCst);
            while stall.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            stalled.fetch_sub(1, Ordering::SeqCst);
        }
        let (status, body, ct) = s3_answer(root, &method, &target);
        let len = if method == "HEAD" {
            std::fs::metadata(root.join(decode(target.trim_start_matches("/b/"))))
                .map(|m| m.len() as usize)
                .unwrap_or(0)
        } else {
            body.len()
        };
        let reason = if status == 200 { "OK" } else { "Not Found" };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ct}\r\nContent-Length: {len}\r\nLast-Modified: Sun, 06 Dec 2026 00:00:00 GMT\r\nETag: \"e\"\r\n\r\n"
        );
        conn.write_all(resp.as_bytes())?;
        if method != "HEAD" {
            conn.write_all(&body)?;
        }
    }
}

#[test]
fn serve_refreshes_sessions_in_the_background_without_making_requests_wait() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    put_generation(&store, 1, "generation-1");
    let s3 = S3::start(store.clone());
    let endpoint = format!("http://{}", s3.addr);
    let cfg = write_config(d.path(), Path::new("s3://b"), "");
    let srv = start_with_env(
        &cfg,
        &[
            ("AWS_ENDPOINT", &endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );

    let (status, body) = get(srv.addr, NODES).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("generation-1"), "{body}");

    // The store changes (a new generation of the head's index) and then holds every
    // request for a session's indexes.
    put_generation(&store, 2, "generation-2");
    s3.stall.store(true, Ordering::SeqCst);

    // Past the 5 s freshness: the first request asks for the re-read, which the store
    // holds; it and the requests after it are answered from the cached indexes.
    std::thread::sleep(Duration::from_secs(6));
    for i in 0..5 {
        let (status, body) = get(srv.addr, NODES)
            .unwrap_or_else(|| panic!("request {i} during the held re-read got no answer"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("generation-1"), "request {i}: {body}");
    }
    assert!(
        s3.stalled.load(Ordering::SeqCst) > 0,
        "the server's re-read was not waiting on the store"
    );

    // The store answers again: the new generation shows within the refresh period.
    s3.stall.store(false, Ordering::SeqCst);
    assert!(
        wait_for(15, || get(srv.addr, NODES)
            .is_some_and(|(s, b)| s == 200 && b.contains("generation-2"))),
        "the new generation was not served after the re-read"
    );

    // A session deleted from the store leaves the server (after one stale answer at most).
    std::fs::remove_dir_all(store.join("v1/team-a/rayjob/busy")).unwrap();
    assert!(
        wait_for(20, || get(srv.addr, NODES).is_some_and(|(s, _)| s == 404)),
        "the deleted session is still served"
    );
}
