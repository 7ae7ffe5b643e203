//! The stored log files of one session as the dashboard's log routes show them: the list
//! of a node's files by Ray's categories (`/api/v0/logs?node_id=`), and one file's bytes
//! (`/api/v0/logs/file`, `/api/v0/logs/stream`) planned part by part, so a large log is
//! streamed from the store a part at a time, a byte range reads only the parts it
//! overlaps, and the last N lines read only the parts at the end.

use crate::index::{LogFile, NodeIndex};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Ray 2.60's categories (`log_manager._categorize_log_files`), same order of tests.
pub fn category(file: &str) -> &'static str {
    let worker = file.contains("worker");
    if worker && file.ends_with(".out") {
        "worker_out"
    } else if worker && file.ends_with(".err") {
        "worker_err"
    } else if file.contains("core-worker") && file.ends_with(".log") {
        "core_worker"
    } else if file.contains("core-driver") && file.ends_with(".log") {
        "driver"
    } else if file.contains("raylet.") {
        "raylet"
    } else if file.contains("gcs_server.") {
        "gcs_server"
    } else if file.contains("log_monitor") {
        "internal"
    } else if file.contains("monitor") {
        "autoscaler"
    } else if file.contains("agent.") {
        "agent"
    } else if file.contains("dashboard.") {
        "dashboard"
    } else {
        "internal"
    }
}

/// The node whose Ray id (hex) or collector node name is `id`.
pub fn node<'a>(nodes: &'a [NodeIndex], id: &str) -> Option<&'a NodeIndex> {
    nodes
        .iter()
        .find(|n| n.ray_node_id.as_deref() == Some(id))
        .or_else(|| nodes.iter().find(|n| n.node == id))
}

/// `/api/v0/logs?node_id=…` as Ray answers it: top-level files by category, directories
/// once with a trailing `/`.
pub fn list(n: &NodeIndex) -> serde_json::Value {
    let mut cats: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &n.logs {
        let entry = match f.name.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => f.name.clone(),
        };
        if seen.insert(entry.clone()) {
            cats.entry(category(&entry)).or_default().push(entry);
        }
    }
    serde_json::json!({"result": true, "msg": "", "data": {"result": cats}})
}

/// The file named `name` on node `n` (the newest generation when a name was reused).
pub fn file<'a>(n: &'a NodeIndex, name: &str) -> Option<&'a LogFile> {
    n.logs.iter().rev().find(|f| f.name == name)
}

/// One read of a plan: `len` bytes from `skip` in object `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub key: String,
    pub skip: u64,
    pub len: u64,
}

/// The pieces that make bytes `start..end` of `f` (clamped to what was shipped).
pub fn plan(f: &LogFile, start: u64, end: u64) -> Vec<Piece> {
    let end = end.min(f.shipped);
    let mut out = Vec::new();
    for p in &f.parts {
        let (ps, pe) = (p.offset, p.offset + p.len);
        if pe <= start || ps >= end {
            continue;
        }
        let s = start.max(ps);
        let e = end.min(pe);
        out.push(Piece {
            key: p.key.clone(),
            skip: s - ps,
            len: e - s,
        });
    }
    out
}

/// Largest part read (parts are at most 8 MiB; a bound against a corrupt index).
const MAX_PART: u64 = 64 << 20;

/// Reads one piece. A part shorter than its index says (a truncated object) is an error
/// naming the object.
pub async fn read(store: &Store, p: &Piece) -> Result<Bytes, StoreError> {
    let b = store.get(&p.key, MAX_PART).await?;
    let (s, e) = (p.skip as usize, (p.skip + p.len) as usize);
    if b.len() < e {
        return Err(StoreError::Truncated {
            key: p.key.clone(),
            want: e as u64,
            got: b.len() as u64,
        });
    }
    Ok(b.slice(s..e))
}

/// The last `lines` lines of `f`, reading parts from the end until enough newlines are
/// seen, at most `max` bytes.
pub async fn tail(store: &Store, f: &LogFile, lines: usize, max: u64) -> Result<Bytes, StoreError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut newlines = 0usize;
    let mut total = 0u64;
    for p in f.parts.iter().rev() {
        let b = read(
            store,
            &Piece {
                key: p.key.clone(),
                skip: 0,
                len: p.len,
            },
        )
        .await?;
        newlines += b.iter().filter(|&&c| c == b'\n').count();
        total += b.len() as u64;
        chunks.push(b);
        // A final line without its newline counts as a line too.
        if newlines > lines || total >= max {
            break;
        }
    }
    let mut all = Vec::with_capacity(total as usize);
    for c in chunks.iter().rev() {
        all.extend_from_slice(c);
    }
    let body = if all.ends_with(b"\n") {
        &all[..all.len() - 1]
    } else {
        &all[..]
    };
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, &c)| c == b'\n')
        .nth(lines.saturating_sub(1))
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    Ok(Bytes::copy_from_slice(&all[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Part;

    fn lf(parts: &[(&str, u64, u64)]) -> LogFile {
        LogFile {
            id: "1-0".into(),
            name: "x.log".into(),
            dev: 0,
            ino: 1,
            shipped: parts.iter().map(|p| p.2).sum(),
            parts: parts
                .iter()
                .map(|(k, o, l)| Part {
                    key: k.to_string(),
                    offset: *o,
                    len: *l,
                })
                .collect(),
        }
    }

    #[test]
    fn plans_only_overlapping_parts() {
        let f = lf(&[("a", 0, 10), ("b", 10, 10), ("c", 20, 5)]);
        assert_eq!(
            plan(&f, 5, 12),
            [
                Piece {
                    key: "a".into(),
                    skip: 5,
                    len: 5
                },
                Piece {
                    key: "b".into(),
                    skip: 0,
                    len: 2
                }
            ]
        );
        assert_eq!(
            plan(&f, 20, 100),
            [Piece {
                key: "c".into(),
                skip: 0,
                len: 5
            }]
        );
        assert!(plan(&f, 25, 30).is_empty());
    }

    #[test]
    fn categories_as_ray() {
        for (f, c) in [
            ("worker-abc-01000000-123.out", "worker_out"),
            ("worker-abc-01000000-123.err", "worker_err"),
            ("python-core-worker-abc_123.log", "core_worker"),
            ("python-core-driver-01000000_1.log", "driver"),
            ("raylet.out", "raylet"),
            ("gcs_server.err", "gcs_server"),
            ("log_monitor.log", "internal"),
            ("monitor.log", "autoscaler"),
            ("dashboard_agent.log", "agent"),
            ("dashboard.log", "dashboard"),
            ("job-driver-raysubmit_1.log", "internal"),
            ("events/", "internal"),
        ] {
            assert_eq!(category(f), c, "{f}");
        }
    }

    #[tokio::test]
    async fn tails_and_names_truncated_parts() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().to_str().unwrap(), &[]).unwrap();
        s.put("a", Bytes::from_static(b"1\n2\n3")).await.unwrap();
        s.put("b", Bytes::from_static(b"\n4\n5\n")).await.unwrap();
        let f = lf(&[("a", 0, 5), ("b", 5, 5)]);
        assert_eq!(&tail(&s, &f, 2, 1 << 20).await.unwrap()[..], b"4\n5\n");
        assert_eq!(
            &tail(&s, &f, 4, 1 << 20).await.unwrap()[..],
            b"2\n3\n4\n5\n"
        );
        assert_eq!(
            &tail(&s, &f, 99, 1 << 20).await.unwrap()[..],
            b"1\n2\n3\n4\n5\n"
        );
        s.put("b", Bytes::from_static(b"\n4")).await.unwrap();
        let e = tail(&s, &f, 2, 1 << 20).await.unwrap_err().to_string();
        assert!(e.contains("b") && e.contains("truncated"), "{e}");
    }
}
