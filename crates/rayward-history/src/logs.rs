//! Incremental shipping of the session's log files.
//!
//! A file is known by its device and inode, not its name: Ray's rotation renames
//! `raylet.out` to `raylet.out.1` and opens a new `raylet.out`, so the renamed file keeps
//! its id and its shipped offset, and the new one starts at 0. A file that shrinks was
//! truncated in place: its new content gets a new id (generation). Only bytes past the
//! shipped offset are read, so a file that is only appended to is never uploaded twice,
//! across collector restarts too (the offsets are in the index the collector reloads).
//!
//! Bounded: at most `max_files` files are tracked, each part is at most `max_part` bytes
//! read into memory, and one round ships at most `round_budget` bytes. Small appends wait
//! until `min_part` bytes or `max_delay` have accumulated, so a slowly growing log does not
//! become thousands of tiny objects.

use crate::index::{LogFile, NodeIndex};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When parts are cut.
#[derive(Clone, Debug)]
pub struct Policy {
    pub min_part: u64,
    pub max_part: u64,
    pub max_delay: Duration,
    pub round_budget: u64,
    pub max_files: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_part: 1 << 20,
            // Each part is read whole and uploaded: 2 MiB (not 8) keeps the collector's
            // peak under load lower (docs/benchmarks.md) for 4x the objects of a big log.
            max_part: 2 << 20,
            max_delay: Duration::from_secs(10),
            round_budget: 64 << 20,
            max_files: 10_000,
        }
    }
}

/// A file being followed.
#[derive(Debug)]
struct Live {
    id: String,
    path: PathBuf,
    shipped: u64,
    len: u64,
    /// When unshipped bytes were first seen (for `max_delay`).
    waiting_since: Option<Instant>,
    seen: bool,
}

/// A range to ship.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: String,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub len: u64,
}

/// Follows the files under one session's `logs/`.
#[derive(Debug)]
pub struct Tracker {
    root: PathBuf,
    files: HashMap<(u64, u64), Live>,
    policy: Policy,
    /// Files not followed because `max_files` was reached (reported in metrics).
    pub skipped: u64,
}

impl Tracker {
    /// A tracker of `root` (the session's `logs/`), resuming the offsets in `index`.
    pub fn new(root: &Path, index: &NodeIndex, policy: Policy) -> Tracker {
        let mut files = HashMap::new();
        for f in &index.logs {
            files.insert(
                (f.dev, f.ino),
                Live {
                    id: f.id.clone(),
                    path: root.join(&f.name),
                    shipped: f.shipped,
                    len: f.shipped,
                    waiting_since: None,
                    seen: false,
                },
            );
        }
        Tracker {
            root: root.to_path_buf(),
            files,
            policy,
            skipped: 0,
        }
    }

    /// Bytes seen but not shipped yet.
    pub fn pending(&self) -> u64 {
        self.files.values().map(|f| f.len - f.shipped).sum()
    }

    /// Walks `logs/` (three levels, regular files only, symlinks not followed) and
    /// updates what is known, adding new files and generations to `index`.
    pub fn scan(&mut self, index: &mut NodeIndex, now: Instant) {
        for f in self.files.values_mut() {
            f.seen = false;
        }
        let mut found = Vec::new();
        walk(&self.root, 0, &mut found, self.policy.max_files * 2);
        // In name order, so which files are followed past `max_files` does not depend on
        // the directory's order.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, meta) in found {
            let key = (meta.dev(), meta.ino());
            let len = meta.len();
            let name = path
                .strip_prefix(&self.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if let Some(f) = self.files.get_mut(&key) {
                f.seen = true;
                if f.path != path {
                    f.path = path.clone();
                    if let Some(e) = index.log_mut(&f.id) {
                        e.name = name.clone();
                    }
                }
                if len < f.shipped {
                    // Truncated in place: what follows is a new file's content.
                    let id = new_id(index, key.1);
                    index.logs.push(LogFile {
                        id: id.clone(),
                        name,
                        dev: key.0,
                        ino: key.1,
                        shipped: 0,
                        parts: vec![],
                    });
                    f.id = id;
                    f.shipped = 0;
                    f.waiting_since = None;
                }
                if len > f.shipped && f.waiting_since.is_none() {
                    f.waiting_since = Some(now);
                }
                f.len = len;
                continue;
            }
            if self.files.len() >= self.policy.max_files {
                self.skipped += 1;
                continue;
            }
            let id = new_id(index, key.1);
            index.logs.push(LogFile {
                id: id.clone(),
                name,
                dev: key.0,
                ino: key.1,
                shipped: 0,
                parts: vec![],
            });
            self.files.insert(
                key,
                Live {
                    id,
                    path,
                    shipped: 0,
                    len,
                    waiting_since: (len > 0).then_some(now),
                    seen: true,
                },
            );
        }
        // Deleted files (old rotations): nothing more will come from them.
        self.files.retain(|_, f| f.seen || f.len > f.shipped);
    }

    /// The ranges due now (all pending bytes when `force`), within the round's budget.
    pub fn due(&self, now: Instant, force: bool) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut budget = self.policy.round_budget;
        let mut keys: Vec<_> = self.files.keys().copied().collect();
        keys.sort_by(|a, b| self.files[a].path.cmp(&self.files[b].path));
        for key in keys {
            let f = &self.files[&key];
            let pending = f.len - f.shipped;
            if pending == 0 || !f.seen {
                continue;
            }
            let old = f
                .waiting_since
                .is_some_and(|t| now.duration_since(t) >= self.policy.max_delay);
            if !(force || old || pending >= self.policy.min_part) {
                continue;
            }
            let mut offset = f.shipped;
            while offset < f.len && budget > 0 {
                let len = (f.len - offset).min(self.policy.max_part).min(budget);
                out.push(Chunk {
                    id: f.id.clone(),
                    path: f.path.clone(),
                    dev: key.0,
                    ino: key.1,
                    offset,
                    len,
                });
                offset += len;
                budget -= len;
            }
            if budget == 0 {
                break;
            }
        }
        out
    }

    /// Records that `chunk` (of which `len` bytes were read) is stored as `key`.
    pub fn shipped(
        &mut self,
        index: &mut NodeIndex,
        chunk: &Chunk,
        len: u64,
        key: String,
        now: Instant,
    ) {
        if let Some(f) = self.files.get_mut(&(chunk.dev, chunk.ino)) {
            if f.id == chunk.id && f.shipped == chunk.offset {
                f.shipped += len;
                f.len = f.len.max(f.shipped);
                f.waiting_since = (f.len > f.shipped).then_some(now);
            }
        }
        if let Some(e) = index.log_mut(&chunk.id) {
            if e.shipped == chunk.offset {
                e.shipped += len;
                e.parts.push(crate::index::Part {
                    key,
                    offset: chunk.offset,
                    len,
                });
            }
        }
    }
}

/// `<inode hex>-<n>` for the first `n` no file of `index` uses yet.
fn new_id(index: &NodeIndex, ino: u64) -> String {
    let mut n = 0;
    loop {
        let id = format!("{ino:x}-{n}");
        if !index.logs.iter().any(|f| f.id == id) {
            return id;
        }
        n += 1;
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, std::fs::Metadata)>, cap: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if out.len() >= cap {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_file() {
            out.push((e.path(), meta));
        } else if meta.is_dir() && depth < 2 {
            walk(&e.path(), depth + 1, out, cap);
        }
    }
}

/// Reads `chunk` from its file, checking it is still the same inode; returns fewer bytes
/// when the file shrank, and `None` when it is gone or replaced (rescanned next round).
pub fn read_chunk(chunk: &Chunk) -> Option<Vec<u8>> {
    let f = open_chunk(chunk)?;
    let mut buf = Vec::with_capacity(chunk.len as usize);
    f.take(chunk.len).read_to_end(&mut buf).ok()?;
    (!buf.is_empty()).then_some(buf)
}

/// `chunk`'s file positioned at its offset, if it is still the same inode; the collector
/// streams the part from it to the store rather than reading it whole.
pub fn open_chunk(chunk: &Chunk) -> Option<std::fs::File> {
    let mut f = std::fs::File::open(&chunk.path).ok()?;
    let meta = f.metadata().ok()?;
    if meta.dev() != chunk.dev || meta.ino() != chunk.ino {
        return None;
    }
    f.seek(SeekFrom::Start(chunk.offset)).ok()?;
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Role;
    use std::io::Write;

    fn index() -> NodeIndex {
        NodeIndex::parse(
            br#"{"layout":1,"namespace":"a","kind":"rayjob","name":"b","session":"session_x","node":"n","role":"head","started":0,"updated":0,"finished":false}"#,
        )
        .unwrap()
    }

    fn ship_all(t: &mut Tracker, idx: &mut NodeIndex, now: Instant) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![];
        for c in t.due(now, true) {
            let b = read_chunk(&c).unwrap();
            t.shipped(
                idx,
                &c,
                b.len() as u64,
                format!("{}@{}", c.id, c.offset),
                now,
            );
            out.push((c.id.clone(), b));
        }
        out
    }

    #[test]
    fn appends_shipped_once_rotation_and_truncation_followed() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path();
        let mut idx = index();
        assert_eq!(idx.role, Role::Head);
        let policy = Policy {
            min_part: 10,
            max_part: 4,
            ..Policy::default()
        };
        let mut t = Tracker::new(logs, &idx, policy.clone());
        let now = Instant::now();
        std::fs::write(logs.join("raylet.out"), "abcdefghij").unwrap();
        t.scan(&mut idx, now);
        let got = ship_all(&mut t, &mut idx, now);
        assert_eq!(got.len(), 3, "10 bytes in parts of at most 4");
        let cat: Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(cat, b"abcdefghij");
        // Nothing new: nothing shipped.
        t.scan(&mut idx, now);
        assert!(t.due(now, true).is_empty());
        // Appended: only the new bytes.
        std::fs::OpenOptions::new()
            .append(true)
            .open(logs.join("raylet.out"))
            .unwrap()
            .write_all(b"KL")
            .unwrap();
        t.scan(&mut idx, now);
        assert!(
            t.due(now, false).is_empty(),
            "2 bytes wait for min_part or max_delay"
        );
        assert_eq!(
            ship_all(&mut t, &mut idx, now),
            vec![(got[0].0.clone(), b"KL".to_vec())]
        );
        // Rotated: the renamed file keeps its id; the new file is new.
        std::fs::rename(logs.join("raylet.out"), logs.join("raylet.out.1")).unwrap();
        std::fs::write(logs.join("raylet.out"), "new").unwrap();
        t.scan(&mut idx, now);
        let got2 = ship_all(&mut t, &mut idx, now);
        assert_eq!(got2.len(), 1);
        assert_eq!(got2[0].1, b"new");
        assert_ne!(got2[0].0, got[0].0);
        assert_eq!(idx.logs[0].name, "raylet.out.1");
        assert_eq!(idx.logs[0].shipped, 12);
        // Truncated in place: a new generation from 0.
        std::fs::write(logs.join("raylet.out"), "x").unwrap();
        t.scan(&mut idx, now);
        let got3 = ship_all(&mut t, &mut idx, now);
        assert_eq!(got3[0].1, b"x");
        assert_eq!(idx.logs.len(), 3);
        // A restarted collector resumes from the index: nothing is shipped twice.
        let mut t2 = Tracker::new(logs, &idx, policy);
        t2.scan(&mut idx, now);
        assert!(t2.due(now, true).is_empty());
        let parts: u64 = idx.logs.iter().flat_map(|f| &f.parts).map(|p| p.len).sum();
        assert_eq!(parts, 12 + 3 + 1);
    }

    #[test]
    fn max_delay_ships_small_appends_and_budget_bounds_a_round() {
        let d = tempfile::tempdir().unwrap();
        let mut idx = index();
        let policy = Policy {
            min_part: 1 << 20,
            max_part: 100,
            max_delay: Duration::from_secs(5),
            round_budget: 250,
            max_files: 2,
        };
        let mut t = Tracker::new(d.path(), &idx, policy);
        let now = Instant::now();
        std::fs::write(d.path().join("a.log"), vec![b'a'; 1000]).unwrap();
        std::fs::write(d.path().join("b.log"), "b").unwrap();
        std::fs::write(d.path().join("c.log"), "c").unwrap();
        t.scan(&mut idx, now);
        assert_eq!(t.skipped, 1, "max_files = 2");
        assert!(t.due(now, false).is_empty());
        let later = now + Duration::from_secs(6);
        let due = t.due(later, false);
        let lens: Vec<_> = due
            .iter()
            .map(|c| (c.path.file_name().unwrap().to_owned(), c.len))
            .collect();
        assert_eq!(
            lens,
            [
                ("a.log".into(), 100),
                ("a.log".into(), 100),
                ("a.log".into(), 50)
            ]
        );
    }
}
