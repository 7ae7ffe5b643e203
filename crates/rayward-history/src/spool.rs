//! The bounded local disk buffer: events and snapshots the collector has acknowledged but
//! not yet stored.
//!
//! An event batch is answered 200 only once it is in the spool (a file renamed into
//! place, so it survives the collector being killed); the uploader stores entries oldest
//! first ([`Spool::next_unstored`], [`Spool::stored`]) and removes them only once an index naming
//! them is written ([`Spool::commit`]): a collector killed between the two uploads them
//! again after its restart, under keys its index then names. While the store is down the spool fills;
//! past `max_bytes` the oldest entries are dropped, and every drop is counted (metrics and
//! the index). Log files need no spool: they stay in the session directory until shipped.
//!
//! File names carry the metadata: `<seq hex>.<session>.ev.<count>` or
//! `<seq hex>.<session>.snap.<endpoint>.<status>.<taken ms>`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// What an entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A batch of `count` events, as Ray POSTed it.
    Events { count: u64 },
    /// The answer of dashboard endpoint `endpoint`.
    Snapshot {
        endpoint: String,
        status: u16,
        taken: u64,
    },
}

/// One buffered entry (its bytes stay on disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub session: String,
    pub kind: Kind,
    pub size: u64,
}

/// Why an entry cannot be buffered.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{size} bytes do not fit in a buffer of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The spool directory and what it holds.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
    temps: u64,
    /// How many entries at the front are stored but not yet named by a written index.
    stored: usize,
    /// Entries and bytes dropped past the bound since start.
    pub dropped_entries: u64,
    pub dropped_bytes: u64,
}

fn name(e: &Entry) -> String {
    match &e.kind {
        Kind::Events { count } => format!("{:016x}.{}.ev.{count}", e.seq, e.session),
        Kind::Snapshot {
            endpoint,
            status,
            taken,
        } => format!(
            "{:016x}.{}.snap.{endpoint}.{status}.{taken}",
            e.seq, e.session
        ),
    }
}

fn parse(name: &str, size: u64) -> Option<Entry> {
    let parts: Vec<&str> = name.split('.').collect();
    let seq = u64::from_str_radix(parts.first()?, 16).ok()?;
    let session = parts.get(1)?.to_string();
    crate::layout::check_session(&session).ok()?;
    let kind = match (parts.get(2).copied(), parts.len()) {
        (Some("ev"), 4) => Kind::Events {
            count: parts[3].parse().ok()?,
        },
        (Some("snap"), 6) => Kind::Snapshot {
            endpoint: parts[3].to_string(),
            status: parts[4].parse().ok()?,
            taken: parts[5].parse().ok()?,
        },
        _ => return None,
    };
    Some(Entry {
        seq,
        session,
        kind,
        size,
    })
}

impl Spool {
    /// Opens (creating) `dir`, taking over the entries a previous collector left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut entries = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            match parse(&n, size) {
                Some(entry) => entries.push(entry),
                // Half-written (killed before the rename) or foreign: not acknowledged.
                None => {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        entries.sort_by_key(|e| e.seq);
        let bytes = entries.iter().map(|e| e.size).sum();
        let next_seq = entries.last().map_or(0, |e| e.seq + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: entries.into(),
            bytes,
            next_seq,
            temps: 0,
            stored: 0,
            dropped_entries: 0,
            dropped_bytes: 0,
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the oldest entries until `size` more bytes fit.
    fn make_room(&mut self, size: u64) {
        while self.bytes + size > self.max_bytes {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            let _ = std::fs::remove_file(self.dir.join(name(&old)));
            self.bytes -= old.size;
            if self.stored > 0 {
                // Already in the store: only the local copy goes.
                self.stored -= 1;
            } else {
                self.dropped_entries += 1;
                self.dropped_bytes += old.size;
            }
        }
    }

    /// Buffers `bytes`, dropping the oldest entries if it would not fit otherwise.
    pub fn push(&mut self, session: &str, kind: Kind, bytes: &[u8]) -> Result<(), SpoolError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(SpoolError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        // Written beside the entries first, then taken in as adopt takes any file: a kill
        // before the rename leaves a temporary file that the next open removes.
        let tmp = self.temp_path();
        std::fs::write(&tmp, bytes).map_err(|source| SpoolError::Io {
            path: tmp.clone(),
            source,
        })?;
        self.adopt(session, kind, &tmp, size)
    }

    /// The oldest entry not stored yet, and its bytes. An entry whose file vanished is
    /// skipped.
    pub fn next_unstored(&mut self) -> Option<(Entry, Vec<u8>)> {
        loop {
            let e = self.entries.get(self.stored)?.clone();
            match std::fs::read(self.dir.join(name(&e))) {
                Ok(b) => return Some((e, b)),
                Err(_) => {
                    self.entries.remove(self.stored);
                    self.bytes -= e.size;
                }
            }
        }
    }

    /// The oldest entry not stored yet and the path of its bytes (for entries too large
    /// to read whole: the uploader streams them).
    pub fn next_unstored_path(&mut self) -> Option<(Entry, PathBuf)> {
        loop {
            let e = self.entries.get(self.stored)?.clone();
            let p = self.dir.join(name(&e));
            if p.is_file() {
                return Some((e, p));
            }
            self.entries.remove(self.stored);
            self.bytes -= e.size;
        }
    }

    /// A fresh temporary file in the spool for [`Spool::adopt`] (removed at the next open
    /// if never adopted).
    pub fn temp_path(&mut self) -> PathBuf {
        self.temps += 1;
        self.dir
            .join(format!(".tmp-in-{}-{}", std::process::id(), self.temps))
    }

    /// Buffers the finished file `tmp` (written by the caller outside the lock) as an
    /// entry of `size` bytes, under the same bound as [`Spool::push`].
    pub fn adopt(
        &mut self,
        session: &str,
        kind: Kind,
        tmp: &Path,
        size: u64,
    ) -> Result<(), SpoolError> {
        if size > self.max_bytes {
            let _ = std::fs::remove_file(tmp);
            return Err(SpoolError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        self.make_room(size);
        let e = Entry {
            seq: self.next_seq,
            session: session.to_string(),
            kind,
            size,
        };
        let dst = self.dir.join(name(&e));
        std::fs::rename(tmp, &dst).map_err(|source| SpoolError::Io {
            path: dst.clone(),
            source,
        })?;
        self.next_seq += 1;
        self.bytes += size;
        self.entries.push_back(e);
        Ok(())
    }

    /// Marks entry `seq` (the one [`Spool::next_unstored`] gave) as stored (or not storable).
    pub fn stored(&mut self, seq: u64) {
        if self.entries.get(self.stored).is_some_and(|e| e.seq == seq) {
            self.stored += 1;
        }
    }

    /// Takes back the marks of [`Spool::stored`] from entry `seq` on (their upload
    /// failed). Entries dropped meanwhile are simply gone.
    pub fn unstore_from(&mut self, seq: u64) {
        self.stored = self
            .entries
            .iter()
            .take(self.stored)
            .take_while(|e| e.seq < seq)
            .count();
    }

    /// Removes the stored entries: an index naming them is written.
    pub fn commit(&mut self) {
        for _ in 0..self.stored {
            let e = self.entries.pop_front().expect("stored entries exist");
            let _ = std::fs::remove_file(self.dir.join(name(&e)));
            self.bytes -= e.size;
        }
        self.stored = 0;
    }

    /// Entries not stored yet.
    pub fn unstored(&self) -> usize {
        self.entries.len() - self.stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "session_2026-12-05_16-57-24_804614_29372";

    #[test]
    fn bounded_oldest_dropped_and_counted_and_reopened() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 100).unwrap();
        s.push(S, Kind::Events { count: 1 }, &[1; 40]).unwrap();
        s.push(S, Kind::Events { count: 2 }, &[2; 40]).unwrap();
        assert_eq!((s.len(), s.bytes(), s.dropped_entries), (2, 80, 0));
        let snap = Kind::Snapshot {
            endpoint: "jobs".into(),
            status: 501,
            taken: 7,
        };
        s.push(S, snap.clone(), &[3; 40]).unwrap();
        assert_eq!((s.len(), s.bytes()), (2, 80));
        assert_eq!((s.dropped_entries, s.dropped_bytes), (1, 40));
        assert!(matches!(
            s.push(S, Kind::Events { count: 1 }, &[0; 101]),
            Err(SpoolError::TooLarge {
                size: 101,
                max: 100
            })
        ));
        // A killed collector leaves a half-written temporary file: it is not an entry.
        std::fs::write(d.path().join(".tmp-00000000000000ff"), "half").unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 100).unwrap();
        assert_eq!(s.len(), 2);
        let (e, b) = s.next_unstored().unwrap();
        assert_eq!((e.kind, b), (Kind::Events { count: 2 }, vec![2; 40]));
        s.stored(e.seq);
        // Stored but not committed: kept on disk (a kill now re-uploads it after restart).
        drop(s);
        let mut s = Spool::open(d.path(), 100).unwrap();
        assert_eq!(s.len(), 2);
        let (e, _) = s.next_unstored().unwrap();
        s.stored(e.seq);
        let (e, b) = s.next_unstored().unwrap();
        assert_eq!((e.kind, b, e.session.as_str()), (snap, vec![3; 40], S));
        s.stored(e.seq);
        assert!(s.next_unstored().is_none());
        assert_eq!((s.len(), s.unstored()), (2, 0));
        // A push past the bound drops stored entries first, uncounted.
        s.push(S, Kind::Events { count: 5 }, &[5; 60]).unwrap();
        assert_eq!(
            (s.len(), s.dropped_entries),
            (2, 0),
            "one stored entry gave way, not counted as a drop (the counter restarted at open)"
        );
        s.commit();
        assert_eq!(
            s.len(),
            1,
            "the stored one left; the new one is not stored yet"
        );
        let (e, _) = s.next_unstored().unwrap();
        assert_eq!(e.kind, Kind::Events { count: 5 });
        s.stored(e.seq);
        s.commit();
        assert!(s.is_empty() && s.bytes() == 0);
        s.push(S, Kind::Events { count: 9 }, b"x").unwrap();
        assert_eq!(
            s.next_unstored().unwrap().0.seq,
            4,
            "sequence continues after reopening"
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
