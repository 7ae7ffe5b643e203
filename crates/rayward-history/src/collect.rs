//! `rayward history collect`: the loop beside one Ray container.
//!
//! Every `tick`: follow the session (Ray's `session_latest`; a restarted Ray is a new
//! session and gets a new prefix), take the dashboard snapshots when due (head only), store
//! the spool's entries oldest first (consecutive event batches as one object), ship the
//! logs' new bytes, then, at most every `index_every`, write the index of every session
//! that changed. The index goes last: it names only objects already stored.
//! A failed write stops the round and waits (backoff from 0.5 s doubling to 30 s); the
//! spool holds events meanwhile, and log bytes wait in their files.
//!
//! On shutdown (SIGTERM from the kubelet; the preStop gives it the time) one last
//! snapshot, the spool and every pending log byte are flushed within `final_flush`, and
//! the index is marked finished. The event endpoint stays open until then, so Ray's last
//! batches are still taken.

use crate::index::{EventBatch, NodeIndex, Role, Snapshot};
use crate::layout::{ClusterRef, NodeSession};
use crate::logs::{self, Tracker};
use crate::metrics::Metrics;
use crate::receiver::Receiver;
use crate::snapshot::{Dashboard, ENDPOINTS};
use crate::spool::{Kind, Spool};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the collector needs.
pub struct Config {
    pub store: Store,
    pub cluster: ClusterRef,
    pub node: String,
    pub role: Role,
    /// Ray's temp dir (holding `session_latest`), or one session directory.
    pub ray_dir: PathBuf,
    pub listen: SocketAddr,
    /// The head's dashboard (head only).
    pub dashboard: Option<Dashboard>,
    pub spool_dir: PathBuf,
    pub spool_max: u64,
    pub max_event_body: usize,
    pub tick: Duration,
    pub snapshot_every: Duration,
    /// Least time between two writes of an index (the final flush writes at once).
    pub index_every: Duration,
    pub final_flush: Duration,
    pub logs: logs::Policy,
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("store {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("{0}")]
    Spool(#[from] crate::spool::SpoolError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What a run did, for the CLI's last line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub sessions: usize,
    pub flushed: bool,
}

/// Largest event object made of consecutive batches (joined in a spool file, streamed).
const MAX_EVENTS_OBJECT: usize = 4 << 20;

/// An object's bytes: in memory, a spool entry's file, or a temporary file of joined
/// event batches (removed once stored or not), each streamed to the store with its size.
enum Body {
    Mem(Vec<u8>),
    File(PathBuf, u64),
    Joined(PathBuf, u64),
}

/// The byte range inside the brackets of the JSON array in `f` (a spool file the receiver
/// checked), whitespace trimmed; `None` when it is empty or not an array.
fn array_inside(f: &mut std::fs::File) -> std::io::Result<Option<(u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    const EDGE: u64 = 4096;
    let len = f.metadata()?.len();
    let mut head = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    (&mut *f).take(EDGE.min(len)).read_to_end(&mut head)?;
    let mut tail = Vec::new();
    let tail_at = len.saturating_sub(EDGE);
    f.seek(SeekFrom::Start(tail_at))?;
    (&mut *f).take(EDGE).read_to_end(&mut tail)?;
    let Some(i) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    let Some(j) = tail.iter().rposition(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    if head[i] != b'[' || tail[j] != b']' {
        return Ok(None);
    }
    let mut start = i + 1;
    while head.get(start).is_some_and(u8::is_ascii_whitespace) {
        start += 1;
    }
    let mut end = tail_at + j as u64;
    while end > tail_at && tail[(end - tail_at - 1) as usize].is_ascii_whitespace() {
        end -= 1;
    }
    Ok((start as u64) < end).map(|ok| ok.then_some((start as u64, end)))
}

/// Writes to `out` one JSON array of the elements of the arrays in `parts` (spool files
/// with their event counts), copying each part's inside through a small buffer, so a
/// batch is never held whole. Parts gone from the spool meanwhile, or empty, are
/// skipped. Returns the bytes written and the events they hold.
fn join_files(parts: &[(PathBuf, u64)], out: &Path) -> std::io::Result<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut w = std::io::BufWriter::with_capacity(64 << 10, std::fs::File::create(out)?);
    w.write_all(b"[")?;
    let (mut n, mut count, mut first) = (1u64, 0u64, true);
    for (p, c) in parts {
        let Ok(mut f) = std::fs::File::open(p) else {
            continue;
        };
        let Some((start, end)) = array_inside(&mut f)? else {
            continue;
        };
        if !first {
            w.write_all(b",")?;
            n += 1;
        }
        f.seek(SeekFrom::Start(start))?;
        n += std::io::copy(&mut f.take(end - start), &mut w)?;
        count += c;
        first = false;
    }
    w.write_all(b"]")?;
    w.flush()?;
    Ok((n + 1, count))
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The session directory Ray uses now, if any.
pub fn current_session(ray_dir: &Path) -> Option<(String, PathBuf)> {
    let name = ray_dir.file_name()?.to_string_lossy().into_owned();
    if crate::layout::check_session(&name).is_ok() && ray_dir.is_dir() {
        return Some((name, ray_dir.to_path_buf()));
    }
    let target = std::fs::read_link(ray_dir.join("session_latest")).ok()?;
    let name = target.file_name()?.to_string_lossy().into_owned();
    crate::layout::check_session(&name).ok()?;
    let dir = ray_dir.join(&name);
    dir.is_dir().then_some((name, dir))
}

/// Ray's node id in a session directory: Ray (2.60) writes one file per port named
/// `<what>_port_<node id>` there (`dashboard_agent_listen_port_26f2…`), 56 hex digits.
pub fn ray_node_id(session_dir: &Path) -> Option<String> {
    let rd = std::fs::read_dir(session_dir).ok()?;
    for e in rd.flatten().take(1000) {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((_, id)) = name.rsplit_once("_port_") {
            if id.len() == 56 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(id.to_ascii_lowercase());
            }
        }
    }
    None
}

/// One session's index as this node writes it.
struct Sess {
    ns: NodeSession,
    index: NodeIndex,
    dirty: bool,
    /// Keys the next index write no longer names (older snapshots): deleted after it.
    superseded: Vec<String>,
}

struct Collector {
    cfg: Config,
    metrics: Metrics,
    spool: Arc<Mutex<Spool>>,
    current: Arc<Mutex<Option<String>>>,
    sessions: HashMap<String, Sess>,
    tracker: Option<(String, PathBuf, Tracker)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_snapshot: Option<Instant>,
    last_clean: Instant,
    dropped_seen: u64,
    last_index: Option<Instant>,
    /// The exported actor states ([`crate::actors`]), filled by the receiver; stored as
    /// the `actor_events` snapshot, and the generation last stored.
    actors: Arc<Mutex<crate::actors::ActorTable>>,
    actors_written: u64,
}

/// Runs until `shutdown` resolves, then flushes.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<Summary, CollectError> {
    cfg.store
        .ensure_layout()
        .await
        .map_err(|source| CollectError::Store {
            url: cfg.store.url().to_string(),
            source,
        })?;
    let spool = Arc::new(Mutex::new(Spool::open(&cfg.spool_dir, cfg.spool_max)?));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| CollectError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let metrics = Metrics::default();
    metrics.spool_max_bytes.set(cfg.spool_max as i64);
    let current = Arc::new(Mutex::new(None));
    let actors = Arc::new(Mutex::new(crate::actors::ActorTable::default()));
    let receiver = Arc::new(Receiver {
        actors: actors.clone(),
        spool: spool.clone(),
        session: current.clone(),
        metrics: metrics.clone(),
        registry: metrics.registry(),
        max_body: cfg.max_event_body,
        // One POST read at a time: Ray's aggregator retries, so a second one waits
        // rather than doubling what is held in memory.
        permits: tokio::sync::Semaphore::new(1),
    });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(rayward_serve::serve(
        listener,
        None,
        rayward_serve::ConnOptions {
            name: "rayward history collect",
            ..Default::default()
        },
        move |peer| {
            let r = receiver.clone();
            hyper::service::service_fn(move |req| {
                let r = r.clone();
                async move { Ok::<_, std::convert::Infallible>(r.handle(peer, req).await) }
            })
        },
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    let mut c = Collector {
        cfg,
        metrics,
        spool,
        current,
        sessions: HashMap::new(),
        tracker: None,
        retry_at: None,
        backoff: Duration::from_millis(500),
        last_snapshot: None,
        last_clean: Instant::now(),
        dropped_seen: 0,
        last_index: None,
        actors,
        actors_written: 0,
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(c.cfg.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => c.round(false).await,
        }
    }
    let flushed = c.flush().await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    Ok(Summary {
        sessions: c.sessions.len(),
        flushed,
    })
}

impl Collector {
    /// One round; `force` ships every pending log byte and ignores the backoff.
    async fn round(&mut self, force: bool) {
        let now = Instant::now();
        self.follow_session(now).await;
        if self.cfg.dashboard.is_some() {
            let due = self
                .last_snapshot
                .is_none_or(|t| now.duration_since(t) >= self.cfg.snapshot_every);
            if due || force {
                self.snapshot().await;
            }
        }
        if let Some((_, dir, t)) = &mut self.tracker {
            let session = self.current.lock().expect("not poisoned").clone();
            if let Some(s) = session.and_then(|s| self.sessions.get_mut(&s)) {
                let before = s.index.logs.len();
                t.scan(&mut s.index, now);
                s.dirty |= s.index.logs.len() != before;
                if s.index.ray_node_id.is_none() {
                    s.index.ray_node_id = ray_node_id(dir);
                    s.dirty |= s.index.ray_node_id.is_some();
                }
            }
        }
        if force || self.retry_at.is_none_or(|t| now >= t) {
            let ok = self.upload(force).await;
            if ok {
                self.retry_at = None;
                self.backoff = Duration::from_millis(500);
            } else {
                self.metrics.upload_errors.inc();
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
            }
        }
        self.update_gauges();
    }

    fn update_gauges(&mut self) {
        let (bytes, empty, dropped_e, dropped_b) = {
            let s = self.spool.lock().expect("not poisoned");
            (s.bytes(), s.is_empty(), s.dropped_entries, s.dropped_bytes)
        };
        self.metrics.spool_bytes.set(bytes as i64);
        if dropped_e > self.dropped_seen {
            self.metrics
                .dropped_entries
                .inc_by(dropped_e - self.dropped_seen);
            self.dropped_seen = dropped_e;
            let _ = dropped_b;
        }
        let pending = self.tracker.as_ref().map_or(0, |(_, _, t)| t.pending());
        self.metrics.log_bytes_pending.set(pending as i64);
        let dirty = self.sessions.values().any(|s| s.dirty);
        if empty && pending == 0 && !dirty {
            self.last_clean = Instant::now();
        }
        self.metrics
            .lag_seconds
            .set(self.last_clean.elapsed().as_secs_f64());
    }

    /// Switches to Ray's current session when it changed; the previous one is finished.
    async fn follow_session(&mut self, now: Instant) {
        let Some((name, dir)) = current_session(&self.cfg.ray_dir) else {
            return;
        };
        if self.tracker.as_ref().is_some_and(|(n, _, _)| *n == name) {
            return;
        }
        if let Some((old, old_dir, mut t)) = self.tracker.take() {
            // Ray restarted: the old session's files stay on disk; ship what is left.
            if let Some(s) = self.sessions.get_mut(&old) {
                t.scan(&mut s.index, now);
                s.index.finished = true;
                s.dirty = true;
            }
            self.tracker = Some((old, old_dir, t));
            self.upload(true).await;
        }
        self.load_session(&name).await;
        let s = self.sessions.get_mut(&name).expect("just loaded");
        let t = Tracker::new(&dir.join("logs"), &s.index, self.cfg.logs.clone());
        self.tracker = Some((name.clone(), dir, t));
        *self.current.lock().expect("not poisoned") = Some(name);
        self.last_snapshot = None;
    }

    /// The session's state, resumed from the store's index when a previous collector of
    /// this node wrote one.
    async fn load_session(&mut self, session: &str) -> Option<&mut Sess> {
        if !self.sessions.contains_key(session) {
            let ns = NodeSession::new(self.cfg.cluster.clone(), session, &self.cfg.node).ok()?;
            let index = match self.cfg.store.get(&ns.index_key(), 256 << 20).await {
                Ok(b) => match NodeIndex::parse(&b) {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!(
                            "rayward history collect: {}: {e}; starting a new index",
                            ns.index_key()
                        );
                        NodeIndex::new(&ns, self.cfg.role, now_ms())
                    }
                },
                Err(_) => NodeIndex::new(&ns, self.cfg.role, now_ms()),
            };
            self.sessions.insert(
                session.to_string(),
                Sess {
                    ns,
                    index,
                    dirty: true,
                    superseded: vec![],
                },
            );
        }
        self.sessions.get_mut(session)
    }

    /// Reads every endpoint into the spool.
    async fn snapshot(&mut self) {
        let Some(d) = self.cfg.dashboard.clone() else {
            return;
        };
        let Some(session) = self.current.lock().expect("not poisoned").clone() else {
            return;
        };
        self.last_snapshot = Some(Instant::now());
        for (id, path) in ENDPOINTS {
            let tmp = self.spool.lock().expect("not poisoned").temp_path();
            match d.get_into(path, &tmp).await {
                Ok((status, size)) => {
                    let kind = Kind::Snapshot {
                        endpoint: id.to_string(),
                        status,
                        taken: now_ms(),
                    };
                    let pushed = self
                        .spool
                        .lock()
                        .expect("not poisoned")
                        .adopt(&session, kind, &tmp, size);
                    if let Err(e) = pushed {
                        eprintln!("rayward history collect: snapshot {path}: {e}");
                        self.metrics.snapshots_failed.inc();
                    }
                }
                Err(e) => {
                    eprintln!("rayward history collect: snapshot {e}");
                    self.metrics.snapshots_failed.inc();
                }
            }
        }
        self.store_actors(&session);
    }

    /// Buffers the exported actor states of `session` as the `actor_events` snapshot when
    /// they changed since the last time (head only: Ray's GCS exports them there).
    fn store_actors(&mut self, session: &str) {
        if self.cfg.dashboard.is_none() {
            return;
        }
        let bytes = {
            let t = self.actors.lock().expect("not poisoned");
            if t.session != session || t.generation == self.actors_written {
                return;
            }
            self.actors_written = t.generation;
            serde_json::to_vec(&*t).expect("the table serialises")
        };
        let kind = Kind::Snapshot {
            endpoint: crate::actors::ENDPOINT.to_string(),
            status: 200,
            taken: now_ms(),
        };
        if let Err(e) = self
            .spool
            .lock()
            .expect("not poisoned")
            .push(session, kind, &bytes)
        {
            eprintln!("rayward history collect: snapshot actor events: {e}");
            self.metrics.snapshots_failed.inc();
        }
    }

    /// Stores the spool, then the logs, then the changed indexes. False at the first
    /// failed write (the rest waits for the next round).
    async fn upload(&mut self, force: bool) -> bool {
        let ok = self.upload_spool().await && self.upload_logs(force).await;
        // Indexes even after a failure (they name only what is stored), at most every
        // `index_every` unless forced.
        let due = force
            || self
                .last_index
                .is_none_or(|t| t.elapsed() >= self.cfg.index_every);
        let idx_ok = !due || self.write_indexes().await;
        ok && idx_ok
    }

    async fn upload_spool(&mut self) -> bool {
        loop {
            let next = self
                .spool
                .lock()
                .expect("not poisoned")
                .next_unstored_path();
            let Some((entry, path)) = next else {
                return true;
            };
            self.spool.lock().expect("not poisoned").stored(entry.seq);
            let mut taken = 1;
            let read = |p: &Path| std::fs::read(p).ok();
            let (kind, body) = match entry.kind.clone() {
                Kind::Events { count } => {
                    // Consecutive batches of one session become one object: Ray POSTs
                    // up to ten times a second, the store gets one object per round.
                    let mut parts = vec![(path, count)];
                    let mut size = entry.size;
                    loop {
                        let mut spool = self.spool.lock().expect("not poisoned");
                        let Some((e, p)) = spool.next_unstored_path() else {
                            break;
                        };
                        let fits = size + e.size <= MAX_EVENTS_OBJECT as u64;
                        let Kind::Events { count: c } = e.kind else {
                            break;
                        };
                        if e.session != entry.session || !fits {
                            break;
                        }
                        spool.stored(e.seq);
                        taken += 1;
                        size += e.size;
                        parts.push((p, c));
                    }
                    if parts.len() == 1 {
                        let (p, c) = parts.pop().expect("one part");
                        (Kind::Events { count: c }, Body::File(p, entry.size))
                    } else {
                        let tmp = self.spool.lock().expect("not poisoned").temp_path();
                        match join_files(&parts, &tmp) {
                            Ok((n, count)) => (Kind::Events { count }, Body::Joined(tmp, n)),
                            Err(e) => {
                                // The spool's disk: like a failed write, retried later.
                                eprintln!(
                                    "rayward history collect: joining event batches in {}: {e}",
                                    tmp.display()
                                );
                                let _ = std::fs::remove_file(&tmp);
                                self.spool
                                    .lock()
                                    .expect("not poisoned")
                                    .unstore_from(entry.seq);
                                return false;
                            }
                        }
                    }
                }
                // The job list is read for the listing's job states; other answers (a
                // task list can be tens of MB) are streamed from the spool file.
                Kind::Snapshot { ref endpoint, .. } if endpoint == "jobs" => {
                    let Some(b) = read(&path) else { continue };
                    (entry.kind.clone(), Body::Mem(b))
                }
                k => (k, Body::File(path, entry.size)),
            };
            let Some(s) = self.load_session(&entry.session).await else {
                // A session name the layout refuses: dropped, counted.
                self.metrics.dropped_entries.inc_by(taken as u64);
                continue;
            };
            s.index.seq += 1;
            let seq = s.index.seq;
            let (key, label) = match &kind {
                Kind::Events { .. } => (s.ns.events_key(seq), "events"),
                Kind::Snapshot { endpoint, .. } => (s.ns.snapshot_key(seq, endpoint), "snapshot"),
            };
            let (n, put) = match body {
                Body::Mem(b) => {
                    let b = Bytes::from(b);
                    (
                        b.len() as u64,
                        self.cfg.store.put(&key, b.clone()).await.map(|()| Some(b)),
                    )
                }
                Body::File(p, n) => (n, self.cfg.store.put_file(&key, &p).await.map(|()| None)),
                Body::Joined(p, n) => {
                    let put = self.cfg.store.put_file(&key, &p).await.map(|()| None);
                    let _ = std::fs::remove_file(&p);
                    (n, put)
                }
            };
            let body = match put {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("rayward history collect: store {key}: {e}");
                    self.spool
                        .lock()
                        .expect("not poisoned")
                        .unstore_from(entry.seq);
                    return false;
                }
            };
            self.metrics.shipped(label, n);
            let s = self.sessions.get_mut(&entry.session).expect("loaded above");
            match kind {
                Kind::Events { count } => s.index.events.push(EventBatch {
                    key,
                    count,
                    bytes: n,
                }),
                Kind::Snapshot {
                    endpoint,
                    status,
                    taken,
                } => {
                    if let (true, Some(b)) = (endpoint == "jobs" && status == 200, &body) {
                        s.index.set_jobs_from(b);
                    }
                    let new = Snapshot { key, status, taken };
                    if let Some(old) = s.index.snapshots.insert(endpoint, new) {
                        s.superseded.push(old.key);
                    }
                }
            }
            s.dirty = true;
        }
    }

    async fn upload_logs(&mut self, force: bool) -> bool {
        let Some((name, _, t)) = &mut self.tracker else {
            return true;
        };
        let Some(s) = self.sessions.get_mut(name.as_str()) else {
            return true;
        };
        let now = Instant::now();
        for chunk in t.due(now, force) {
            let Some(file) = logs::open_chunk(&chunk) else {
                continue;
            };
            let key = s.ns.log_part_key(&chunk.id, chunk.offset);
            // Streamed part by part: a 2 MiB log part is never held whole.
            let n = match self.cfg.store.put_stream(&key, file, chunk.len).await {
                Ok(0) => continue,
                Ok(n) => n,
                Err(e) => {
                    eprintln!("rayward history collect: store {key}: {e}");
                    return false;
                }
            };
            self.metrics.shipped("log", n);
            t.shipped(&mut s.index, &chunk, n, key, now);
            s.dirty = true;
        }
        true
    }

    async fn write_indexes(&mut self) -> bool {
        self.last_index = Some(Instant::now());
        let dropped = self.spool.lock().expect("not poisoned").dropped_entries;
        let mut ok = true;
        for s in self.sessions.values_mut() {
            if !s.dirty {
                continue;
            }
            s.index.updated = now_ms();
            s.index.dropped = s.index.dropped.max(dropped);
            let bytes = s.index.to_bytes();
            let n = bytes.len() as u64;
            match self
                .cfg
                .store
                .put(&s.ns.index_key(), Bytes::from(bytes))
                .await
            {
                Ok(()) => {
                    self.metrics.shipped("index", n);
                    s.dirty = false;
                    for k in std::mem::take(&mut s.superseded) {
                        let _ = self.cfg.store.delete(&k).await;
                    }
                }
                Err(e) => {
                    eprintln!("rayward history collect: store {}: {e}", s.ns.index_key());
                    ok = false;
                }
            }
        }
        if ok {
            // Every stored entry is named by a written index now.
            self.spool.lock().expect("not poisoned").commit();
        }
        ok
    }

    /// The final flush: a last snapshot, then rounds until everything is stored or the
    /// time is up. True when nothing was left behind.
    async fn flush(&mut self) -> bool {
        let deadline = Instant::now() + self.cfg.final_flush;
        let now = Instant::now();
        self.follow_session(now).await;
        self.snapshot().await;
        if let Some(name) = self.current.lock().expect("not poisoned").clone() {
            if let Some(s) = self.sessions.get_mut(&name) {
                s.index.finished = true;
                s.dirty = true;
            }
        }
        let mut wait = Duration::from_millis(200);
        loop {
            if let Some((name, _, t)) = &mut self.tracker {
                if let Some(s) = self.sessions.get_mut(name.as_str()) {
                    t.scan(&mut s.index, Instant::now());
                }
            }
            // Actor events that came during the flush: their table is stored again.
            let current = self.current.lock().expect("not poisoned").clone();
            if let Some(name) = current {
                self.store_actors(&name);
            }
            let ok = self.upload(true).await;
            let pending = self.tracker.as_ref().map_or(0, |(_, _, t)| t.pending());
            let left = !self.spool.lock().expect("not poisoned").is_empty()
                || pending > 0
                || self.sessions.values().any(|s| s.dirty);
            self.update_gauges();
            if ok && !left {
                return true;
            }
            if ok {
                // Progress without error: the next round at once (a round ships at most
                // the round budget of log bytes).
                if Instant::now() > deadline {
                    eprintln!(
                        "rayward history collect: final flush incomplete after {:?}: {pending} log bytes left",
                        self.cfg.final_flush
                    );
                    return false;
                }
                continue;
            }
            if Instant::now() + wait > deadline {
                eprintln!(
                    "rayward history collect: final flush incomplete after {:?}: {} spool entries, {pending} log bytes left",
                    self.cfg.final_flush,
                    self.spool.lock().expect("not poisoned").len()
                );
                return false;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_id_from_the_session_dir() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(super::ray_node_id(d.path()), None);
        std::fs::write(d.path().join("gcs_server_port_abc"), "").unwrap();
        assert_eq!(super::ray_node_id(d.path()), None, "not 56 hex digits");
        let id = "26f204ed8a0088130481057adccdaabacf6bbcae2bfcb7bb4a738396";
        std::fs::write(
            d.path().join(format!("dashboard_agent_listen_port_{id}")),
            "",
        )
        .unwrap();
        assert_eq!(super::ray_node_id(d.path()).as_deref(), Some(id));
    }

    #[test]
    fn arrays_joined_from_files() {
        let d = tempfile::tempdir().unwrap();
        let parts: Vec<(std::path::PathBuf, u64)> = [
            (&b"[{\"a\":1}]"[..], 1),
            (&b" [ ] "[..], 0),
            (&b"[{\"b\":2},\n{\"c\":3}]\n"[..], 2),
            (&b"not an array"[..], 5),
        ]
        .iter()
        .enumerate()
        .map(|(i, (b, c))| {
            let p = d.path().join(format!("p{i}"));
            std::fs::write(&p, b).unwrap();
            (p, *c)
        })
        .collect();
        let gone = (d.path().join("gone"), 7);
        let out = d.path().join("out");
        let all = [&parts[..], &[gone]].concat();
        let (n, count) = super::join_files(&all, &out).unwrap();
        let j = std::fs::read(&out).unwrap();
        assert_eq!(n, j.len() as u64);
        assert_eq!(
            count, 3,
            "the empty, broken and vanished parts count nothing"
        );
        let v: Vec<serde_json::Value> = serde_json::from_slice(&j).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2]["c"], 3);
        let (_, count) = super::join_files(&parts[..1], &out).unwrap();
        assert_eq!(
            (std::fs::read(&out).unwrap(), count),
            (b"[{\"a\":1}]".to_vec(), 1)
        );
        // An inside longer than the edges read at both ends is copied whole.
        let big = format!("[{}]", vec!["{\"x\":12345678}"; 2000].join(","));
        std::fs::write(&parts[0].0, &big).unwrap();
        let (n, count) = super::join_files(&[parts[0].clone(), parts[0].clone()], &out).unwrap();
        let v: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!((v.len(), count, n), (4000, 2, 2 * big.len() as u64 - 1));
    }
}
