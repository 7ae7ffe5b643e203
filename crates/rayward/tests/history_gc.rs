//! `rayward history gc` through the binary, on a store laid out with the layout and index
//! types the collector writes: sessions of several ages and sizes are cut exactly as
//! configured (age, then count per cluster, then total bytes, oldest first), a session
//! still being written survives every bound, leftovers without an index are collected
//! after the grace, and `--dry-run` deletes nothing.

use rayward_history::index::{NodeIndex, Role};
use rayward_history::layout::{ClusterRef, Kind, NodeSession};
use rayward_testkit::cli;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DAY: u64 = 86_400_000;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn session_name(i: u32) -> String {
    format!("session_2026-01-{i:02}_00-00-00_000000_{i}")
}

/// One node of one session: its index (as the collector writes it) and a log part and an
/// event batch of `bytes` bytes each. Returns the session's directory.
#[allow(clippy::too_many_arguments)]
pub fn node(
    root: &Path,
    ns: &str,
    kind: Kind,
    name: &str,
    session: &str,
    node: &str,
    role: Role,
    finished: bool,
    started: u64,
    updated: u64,
    bytes: usize,
) -> PathBuf {
    let n = NodeSession::new(ClusterRef::new(ns, kind, name).unwrap(), session, node).unwrap();
    let mut idx = NodeIndex::new(&n, role, started);
    idx.updated = updated;
    idx.finished = finished;
    for (key, body) in [
        (n.log_part_key("1a-0", 0), vec![b'l'; bytes]),
        (n.events_key(1), vec![b'e'; bytes]),
    ] {
        let p = root.join(&key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let p = root.join(n.index_key());
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, idx.to_bytes()).unwrap();
    root.join(n.session_prefix())
}

/// Bytes of every file under `dir`.
fn du(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    n
}

/// Files under `dir`, with their modification time set to `t`.
fn touch_all(dir: &Path, t: SystemTime) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.metadata().unwrap().is_dir() {
            touch_all(&e.path(), t);
        } else {
            std::fs::File::options()
                .write(true)
                .open(e.path())
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }
}

fn gc(store: &Path, extra: &[&str]) -> (i32, String, String) {
    cli::run(
        cli::command(env!("CARGO_BIN_EXE_rayward"))
            .args(["history", "gc", "--store", store.to_str().unwrap()])
            .args(extra),
    )
}

/// (session prefix → reason) of a JSON report.
fn reasons(out: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(out).unwrap();
    let mut r: Vec<(String, String)> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                format!(
                    "{}/{}/{}",
                    s["namespace"].as_str().unwrap(),
                    s["name"].as_str().unwrap(),
                    s["session"].as_str().unwrap()
                ),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    r.sort();
    r
}

#[test]
fn history_gc_cuts_by_age_count_and_bytes_and_keeps_sessions_being_written() {
    let d = cli::tmp("history-gc");
    let root = d.join("store");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("rayward-history.json"), "{\"layout\":1}\n").unwrap();
    let now = now_ms();
    let h = Role::Head;
    let w = Role::Worker;
    let train = |i: u32, finished: bool, started: u64, updated: u64, bytes: usize| {
        let s = session_name(i);
        node(
            &root,
            "team-a",
            Kind::RayJob,
            "train",
            &s,
            "train-head",
            h,
            finished,
            started,
            updated,
            bytes,
        );
        node(
            &root,
            "team-a",
            Kind::RayJob,
            "train",
            &s,
            "train-worker-1",
            w,
            finished,
            started,
            updated,
            bytes,
        )
    };
    // team-a/train, oldest start first:
    // s1: ended 40 days ago: past --max-age 30d.
    let s1 = train(1, true, now - 41 * DAY, now - 40 * DAY, 1000);
    // s5: started 100 days ago, unfinished, last index a minute ago: being written.
    let s5 = train(5, false, now - 100 * DAY, now - 60_000, 50_000);
    // s2: ended 10 days ago: the fourth newest start, past --max-sessions-per-cluster 3.
    let s2 = train(2, true, now - 11 * DAY, now - 10 * DAY, 2000);
    // s3: ended 5 days ago: the oldest update left, cut by --max-total-bytes.
    let s3 = train(3, true, now - 6 * DAY, now - 5 * DAY, 3000);
    // s6: never finished, last index 2 days ago (its collector died): not being written.
    let s6 = train(6, false, now - 3 * DAY, now - 2 * DAY, 6000);
    // s4: ended a day ago.
    let s4 = train(4, true, now - 2 * DAY, now - DAY, 4000);
    // Another cluster, ended a day ago.
    let other = node(
        &root,
        "team-b",
        Kind::RayCluster,
        "other",
        &session_name(1),
        "other-head",
        h,
        true,
        now - 2 * DAY,
        now - DAY + 1,
        500,
    );
    // Objects without an index: fresh (a collector before its first index: being
    // written), and two days old (left by an interrupted gc: collected).
    let fresh = node(
        &root,
        "team-c",
        Kind::RayService,
        "serve",
        &session_name(1),
        "serve-head",
        h,
        false,
        now,
        now,
        700,
    );
    std::fs::remove_dir_all(fresh.join("index")).unwrap();
    let stale = node(
        &root,
        "team-c",
        Kind::RayService,
        "serve",
        &session_name(2),
        "serve-head",
        h,
        false,
        now,
        now,
        700,
    );
    std::fs::remove_dir_all(stale.join("index")).unwrap();
    touch_all(&stale, SystemTime::now() - Duration::from_secs(2 * 86_400));
    // A file that is not the layout's is never touched.
    std::fs::write(root.join("v1/README"), "mine").unwrap();

    // --max-total-bytes: everything left after age and count, less s3 exactly.
    let left = du(&s3) + du(&s4) + du(&s5) + du(&s6) + du(&other) + du(&fresh);
    let max_total = (left - du(&s3)).to_string();
    let policy = [
        "--max-age",
        "30d",
        "--max-sessions-per-cluster",
        "3",
        "--max-total-bytes",
        max_total.as_str(),
    ];
    let all = [&s1, &s2, &s3, &s4, &s5, &s6, &other, &fresh, &stale];
    let want = vec![
        (format!("team-a/train/{}", session_name(1)), "max-age"),
        (
            format!("team-a/train/{}", session_name(2)),
            "max-sessions-per-cluster",
        ),
        (
            format!("team-a/train/{}", session_name(3)),
            "max-total-bytes",
        ),
        (format!("team-a/train/{}", session_name(4)), "kept"),
        (format!("team-a/train/{}", session_name(5)), "being-written"),
        (format!("team-a/train/{}", session_name(6)), "kept"),
        (format!("team-b/other/{}", session_name(1)), "kept"),
        (format!("team-c/serve/{}", session_name(1)), "being-written"),
        (format!("team-c/serve/{}", session_name(2)), "unindexed"),
    ];
    let want: Vec<(String, String)> = want.into_iter().map(|(a, b)| (a, b.into())).collect();

    // A dry run decides and deletes nothing.
    let mut args = policy.to_vec();
    args.extend(["--dry-run", "-f", "json"]);
    let (code, out, err) = gc(&root, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(reasons(&out), want);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deleted_sessions"], 4);
    assert_eq!(
        v["deleted_bytes"].as_u64().unwrap(),
        du(&s1) + du(&s2) + du(&s3) + du(&stale)
    );
    assert_eq!(v["over_total_bytes"], false);
    assert!(all.iter().all(|p| p.exists()));

    // The real run deletes exactly those, whole, and the rest is listed as before.
    let (code, out, err) = gc(&root, &policy);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("team-a/rayjob/train/{}  ", session_name(5)))
            && out.contains("kept (being written)"),
        "{out}"
    );
    assert!(out.contains("deleted (max-sessions-per-cluster)"), "{out}");
    assert!(out.contains("4 of 9 session(s) deleted"), "{out}");
    for p in [&s1, &s2, &s3, &stale] {
        assert!(!p.exists(), "{} is deleted whole", p.display());
    }
    for p in [&s4, &s5, &s6, &other, &fresh] {
        assert!(p.join("logs").exists() && p.join("events").exists());
    }
    assert_eq!(
        std::fs::read_to_string(root.join("v1/README")).unwrap(),
        "mine"
    );
    let (code, out, err) = cli::run(cli::command(env!("CARGO_BIN_EXE_rayward")).args([
        "history",
        "ls",
        "--store",
        root.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let listed: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        listed,
        [
            format!("team-a/rayjob/train/{}", session_name(4)),
            format!("team-a/rayjob/train/{}", session_name(5)),
            format!("team-a/rayjob/train/{}", session_name(6)),
            format!("team-b/raycluster/other/{}", session_name(1)),
        ]
    );

    // The same policy again: nothing more to do.
    let (code, out, _) = gc(&root, &policy);
    assert_eq!(code, 0);
    assert!(out.contains("0 of 5 session(s) deleted"), "{out}");

    // A bound the sessions being written alone exceed: everything else goes, they stay.
    let (code, out, err) = gc(&root, &["--max-total-bytes", "1", "-f", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["over_total_bytes"], true);
    assert_eq!(v["deleted_sessions"], 3);
    for p in [&s4, &s6, &other] {
        assert!(!p.exists(), "{}", p.display());
    }
    assert!(s5.join("index").exists() && fresh.join("logs").exists());

    // Once the grace is over, the unfinished sessions are no longer being written.
    touch_all(&fresh, SystemTime::now() - Duration::from_secs(10));
    let (code, out, err) = gc(
        &root,
        &[
            "--max-sessions-per-cluster",
            "1",
            "--grace",
            "1s",
            "-f",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        reasons(&out),
        [
            (
                format!("team-a/train/{}", session_name(5)),
                "kept".to_string()
            ),
            (
                format!("team-c/serve/{}", session_name(1)),
                "unindexed".to_string()
            ),
        ]
    );
}

#[test]
fn history_gc_bad_arguments_exit_2() {
    let d = cli::tmp("history-gc-args");
    let s = d.join("s");
    for (args, want) in [
        (
            vec!["--max-age", "30x"],
            "--max-age \"30x\": expected a whole number and a unit",
        ),
        (
            vec!["--max-total-bytes", "1.5GiB"],
            "--max-total-bytes \"1.5GiB\"",
        ),
        (
            vec!["--max-sessions-per-cluster", "0"],
            "must be at least 1",
        ),
        (vec!["--grace", "soon"], "--grace \"soon\""),
    ] {
        let (code, _, err) = gc(&s, &args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("rayward-history.json"), "{\"layout\":9}").unwrap();
    let (code, _, err) = gc(&s, &["--max-age", "1d"]);
    assert_eq!(code, 2);
    assert!(err.contains("layout version 9"), "{err}");
}

/// The same cut against SeaweedFS's S3 API (objects written through the store's own
/// `object_store` client, gc and ls through the binary with the S3 options in their env
/// and the keys in a mounted-style credentials file).
#[test]
#[ignore = "needs SeaweedFS (RAYWARD_WEED) inside netns-run"]
fn ray_e2e_history_gc_on_seaweedfs_s3() {
    use crate::history_ray::{Weed, S3_ENV, S3_KEY, S3_SECRET};
    use rayward_history::store::Store;
    let d = cli::tmp("history-gc-s3");
    let _weed = Weed::new(&d.join("weed"));
    let url = "s3://history/gc";
    let mut opts: Vec<(String, String)> = S3_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    opts.push(("AWS_ACCESS_KEY_ID".into(), S3_KEY.into()));
    opts.push(("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET.into()));
    let store = Store::open(url, &opts).unwrap();
    let now = now_ms();
    // (session, finished, started, updated)
    let sessions = [
        (1, true, now - 41 * DAY, now - 40 * DAY),
        (2, true, now - 11 * DAY, now - 10 * DAY),
        (3, true, now - 2 * DAY, now - DAY),
        (4, false, now - 100 * DAY, now - 60_000),
    ];
    rayward_testkit::block_on(async {
        store.ensure_layout().await.unwrap();
        for (i, finished, started, updated) in sessions {
            let n = NodeSession::new(
                ClusterRef::new("team-a", Kind::RayJob, "train").unwrap(),
                &session_name(i),
                "train-head",
            )
            .unwrap();
            let mut idx = NodeIndex::new(&n, Role::Head, started);
            idx.updated = updated;
            idx.finished = finished;
            for key in [n.log_part_key("1a-0", 0), n.events_key(1)] {
                store.put(&key, vec![b'x'; 1000].into()).await.unwrap();
            }
            store
                .put(&n.index_key(), idx.to_bytes().into())
                .await
                .unwrap();
        }
    });
    let creds = d.join("credentials");
    std::fs::write(
        &creds,
        format!("AWS_ACCESS_KEY_ID={S3_KEY}\nAWS_SECRET_ACCESS_KEY={S3_SECRET}\n"),
    )
    .unwrap();
    let with_env = |c: &mut std::process::Command| {
        for (k, v) in S3_ENV {
            c.env(k, v);
        }
    };
    let mut c = cli::command(env!("CARGO_BIN_EXE_rayward"));
    with_env(&mut c);
    c.args(["history", "gc", "--store", url, "--credentials-file"])
        .arg(&creds)
        .args([
            "--max-age",
            "30d",
            "--max-sessions-per-cluster",
            "1",
            "-f",
            "json",
        ]);
    let (code, out, err) = cli::run(&mut c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        reasons(&out),
        [
            (
                format!("team-a/train/{}", session_name(1)),
                "max-age".to_string()
            ),
            (
                format!("team-a/train/{}", session_name(2)),
                "max-sessions-per-cluster".to_string()
            ),
            (
                format!("team-a/train/{}", session_name(3)),
                "kept".to_string()
            ),
            (
                format!("team-a/train/{}", session_name(4)),
                "being-written".to_string()
            ),
        ]
    );
    // Nothing of the deleted sessions is left in the bucket; the others are whole.
    let left: Vec<String> = rayward_testkit::block_on(async {
        store
            .list("v1")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    });
    for i in [1, 2] {
        assert!(
            !left.iter().any(|k| k.contains(&session_name(i))),
            "{left:?}"
        );
    }
    for i in [3, 4] {
        assert_eq!(
            left.iter().filter(|k| k.contains(&session_name(i))).count(),
            3,
            "{left:?}"
        );
    }
    let mut c = cli::command(env!("CARGO_BIN_EXE_rayward"));
    with_env(&mut c);
    c.args(["history", "ls", "--store", url, "--credentials-file"])
        .arg(&creds);
    let (code, out, err) = cli::run(&mut c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
}
