//! Retention: which stored sessions to delete, by age, by count per cluster and by total
//! bytes, applied by `rayward history gc` and periodically by `history serve`.
//!
//! **A session still being written is never deleted.** A node's part of a session is
//! finished when its index says `finished` (the collector's final flush, or Ray moved to a
//! new session). A session is *being written* when some node is not finished and its last
//! sign of life is within [`Policy::grace`]: the index's `updated`, or, for a node that has
//! objects but no readable index yet (a collector before its first index write), the
//! newest object's modification time. A collector writes its index at least every few
//! seconds while anything changes (`--index-interval`, 10 s; the head's snapshots change
//! every 30 s), so a grace of an hour only lets a collector that died without its final
//! flush be collected an hour after its last write.
//!
//! **Deletion order.** A session is listed by its indexes only ([`crate::catalog`]), so its
//! indexes go first, the head's last: a listed node always still has every object its
//! index names, and once the indexes are gone the session is no longer listed. Then the
//! rest of its objects. A gc killed in between leaves objects without an index: not
//! listed, no longer "being written" after the grace, and deleted by the next run.
//!
//! Memory: the store is walked once as a stream, aggregated per session and node.

use crate::index::{NodeIndex, Role};
use crate::layout::{self, Kind, V1};
use crate::store::{Store, StoreError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What to keep. `None` is no bound of that kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Sessions whose last update is older than this are deleted.
    pub max_age: Option<Duration>,
    /// Per cluster (namespace/kind/name), only the newest N sessions (by start) are kept.
    pub max_sessions_per_cluster: Option<usize>,
    /// Past this many bytes in the store, the sessions updated longest ago are deleted.
    pub max_total_bytes: Option<u64>,
    /// How long an unfinished session counts as being written after its last write.
    pub grace: Duration,
}

/// The default [`Policy::grace`]: one hour.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_age: None,
            max_sessions_per_cluster: None,
            max_total_bytes: None,
            grace: DEFAULT_GRACE,
        }
    }
}

/// Why a value of the retention settings is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{what} {value:?}: {why}")]
    Bad {
        what: String,
        value: String,
        why: &'static str,
    },
    #[error("{0}")]
    Toml(String),
}

fn bad(what: &str, value: &str, why: &'static str) -> PolicyError {
    PolicyError::Bad {
        what: what.to_string(),
        value: value.to_string(),
        why,
    }
}

/// Reads a duration: a number and a unit, `s`, `m`, `h`, `d` or `w` (`30d`, `12h`).
pub fn parse_duration(what: &str, s: &str) -> Result<Duration, PolicyError> {
    const WHY: &str = "expected a whole number and a unit: s, m, h, d or w (e.g. 30d)";
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad(what, s, WHY))?;
    let mult = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad(what, s, WHY)),
    };
    match n.checked_mul(mult) {
        Some(secs) if secs <= 100 * 365 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err(bad(what, s, "more than 100 years")),
    }
}

/// Reads a size: a number and an optional unit, `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000)
/// or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024): `50GiB`, `500MB`, `1048576`.
pub fn parse_bytes(what: &str, s: &str) -> Result<u64, PolicyError> {
    const WHY: &str = "expected a whole number and a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad(what, s, WHY))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(bad(what, s, WHY)),
    };
    n.checked_mul(mult).ok_or_else(|| bad(what, s, "too large"))
}

/// The `[retention]` section of `history serve`'s configuration, as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub max_age: Option<String>,
    pub max_sessions_per_cluster: Option<u64>,
    pub max_total_bytes: Option<String>,
    /// How often serve applies the policy (default 1h).
    pub interval: Option<String>,
    /// [`Policy::grace`] (default 1h).
    pub grace: Option<String>,
}

/// A checked `[retention]` section: the policy and how often to apply it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub policy: Policy,
    pub interval: Duration,
}

/// The default interval between two runs inside `serve`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

impl Section {
    /// Checks every value, naming the key of a bad one (`retention.max_age "30x": …`).
    pub fn check(&self) -> Result<Retention, PolicyError> {
        let max_age = self
            .max_age
            .as_deref()
            .map(|v| parse_duration("retention.max_age", v))
            .transpose()?;
        let max_sessions_per_cluster = match self.max_sessions_per_cluster {
            Some(0) => {
                return Err(bad(
                    "retention.max_sessions_per_cluster",
                    "0",
                    "must be at least 1 (leave it out for no bound)",
                ))
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        let max_total_bytes = self
            .max_total_bytes
            .as_deref()
            .map(|v| parse_bytes("retention.max_total_bytes", v))
            .transpose()?;
        let interval = match self.interval.as_deref() {
            Some(v) => parse_duration("retention.interval", v)?,
            None => DEFAULT_INTERVAL,
        };
        if interval.is_zero() {
            return Err(bad("retention.interval", "0", "must be above 0"));
        }
        let grace = match self.grace.as_deref() {
            Some(v) => parse_duration("retention.grace", v)?,
            None => DEFAULT_GRACE,
        };
        Ok(Retention {
            policy: Policy {
                max_age,
                max_sessions_per_cluster,
                max_total_bytes,
                grace,
            },
            interval,
        })
    }
}

/// The `[retention]` section of a whole `history serve` TOML file, checked; `None` when
/// the file has none (serve then runs no retention). Other sections are not looked at.
pub fn from_toml(text: &str) -> Result<Option<Retention>, PolicyError> {
    #[derive(Deserialize)]
    struct File {
        retention: Option<toml::Value>,
    }
    let f: File = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string()))?;
    match f.retention {
        None => Ok(None),
        Some(v) => {
            let s: Section = v
                .try_into()
                .map_err(|e: toml::de::Error| PolicyError::Toml(format!("[retention]: {e}")))?;
            s.check().map(Some)
        }
    }
}

/// What retention decided for one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Kept: within every bound.
    Kept,
    /// Kept whatever the bounds: still being written.
    BeingWritten,
    /// Deleted: last updated more than `max_age` ago.
    MaxAge,
    /// Deleted: older than the newest `max_sessions_per_cluster` of its cluster.
    MaxSessionsPerCluster,
    /// Deleted: among the oldest while the store was over `max_total_bytes`.
    MaxTotalBytes,
    /// Deleted: objects without any index, past the grace (what an interrupted gc or a
    /// collector killed before its first index leaves; never listed, never readable).
    Unindexed,
}

impl Reason {
    /// Whether the session is deleted.
    pub fn deletes(self) -> bool {
        !matches!(self, Reason::Kept | Reason::BeingWritten)
    }
}

/// One stored session as retention sees it, and the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub session: String,
    pub nodes: usize,
    pub objects: u64,
    pub bytes: u64,
    /// Unix ms: first start and last update over the nodes.
    pub started: u64,
    pub updated: u64,
    pub finished: bool,
    pub reason: Reason,
}

impl Decision {
    /// `v1/<namespace>/<kind>/<name>/<session>`.
    pub fn prefix(&self) -> String {
        format!(
            "{V1}/{}/{}/{}/{}",
            self.namespace, self.kind, self.name, self.session
        )
    }
}

/// Something retention could not read or delete (the rest was done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub error: String,
}

/// The outcome of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Every session, oldest start first.
    pub sessions: Vec<Decision>,
    pub total_bytes: u64,
    pub deleted_bytes: u64,
    pub deleted_sessions: usize,
    /// `max_total_bytes` could not be reached without deleting sessions being written.
    pub over_total_bytes: bool,
    /// Indexes that could not be read (their node judged by object times) and deletes that
    /// failed.
    pub problems: Vec<Problem>,
}

#[derive(Default)]
struct NodeSeen {
    index_key: Option<String>,
    min_mtime: u64,
    max_mtime: u64,
}

#[derive(Default)]
struct SessionSeen {
    objects: u64,
    bytes: u64,
    nodes: BTreeMap<String, NodeSeen>,
}

/// Largest index read (as the catalog).
const MAX_INDEX: u64 = 64 << 20;

/// Parallel deletes per session (S3 deletes are one request each).
const DELETE_CONCURRENCY: usize = 16;

/// Splits `v1/<ns>/<kind>/<name>/<session>/<area>/<node>…` into the session's identity, the
/// area and the node; `None` for keys that are not the layout's (never touched).
fn parse_key(key: &str) -> Option<((String, String, String, String), String)> {
    let mut it = key.split('/');
    if it.next()? != V1 {
        return None;
    }
    let (ns, kind, name, session, area, node) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    layout::check_namespace(ns).ok()?;
    let kind = Kind::parse(kind).ok()?;
    layout::ClusterRef::new(ns, kind, name).ok()?;
    layout::check_session(session).ok()?;
    let node = match area {
        "index" => node.strip_suffix(".json")?,
        "logs" | "events" | "snapshots" => node,
        _ => return None,
    };
    layout::check_node(node).ok()?;
    Some((
        (
            ns.to_string(),
            kind.segment().to_string(),
            name.to_string(),
            session.to_string(),
        ),
        node.to_string(),
    ))
}

/// Applies `policy` at `now_ms` (Unix ms): decides for every session, and unless
/// `dry_run` deletes the chosen ones (indexes first, then the rest).
pub async fn apply(
    store: &Store,
    policy: &Policy,
    now_ms: u64,
    dry_run: bool,
) -> Result<Report, StoreError> {
    store.ensure_readable().await?;
    let mut seen: BTreeMap<(String, String, String, String), SessionSeen> = BTreeMap::new();
    store
        .for_each_object(V1, |key, size, mtime| {
            let Some((id, node)) = parse_key(&key) else {
                return;
            };
            let s = seen.entry(id).or_default();
            s.objects += 1;
            s.bytes += size;
            let n = s.nodes.entry(node).or_insert_with(|| NodeSeen {
                min_mtime: u64::MAX,
                ..NodeSeen::default()
            });
            n.min_mtime = n.min_mtime.min(mtime);
            n.max_mtime = n.max_mtime.max(mtime);
            if key.split('/').nth(5) == Some("index") {
                n.index_key = Some(key);
            }
        })
        .await?;

    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    let grace_ms = u64::try_from(policy.grace.as_millis()).unwrap_or(u64::MAX);
    for ((ns, kind, name, session), s) in seen {
        let (mut started, mut updated, mut finished) = (u64::MAX, 0u64, true);
        let mut head_started = None;
        for n in s.nodes.values() {
            let idx = match &n.index_key {
                Some(k) => match store.get(k, MAX_INDEX).await {
                    Ok(b) => match NodeIndex::parse(&b) {
                        Ok(i) => Some(i),
                        Err(e) => {
                            report.problems.push(Problem {
                                key: k.clone(),
                                error: e.to_string(),
                            });
                            None
                        }
                    },
                    Err(e) => {
                        report.problems.push(Problem {
                            key: k.clone(),
                            error: e.to_string(),
                        });
                        None
                    }
                },
                None => None,
            };
            match idx {
                Some(i) => {
                    started = started.min(i.started);
                    updated = updated.max(i.updated);
                    finished &= i.finished;
                    if i.role == Role::Head {
                        head_started = Some(i.started);
                    }
                }
                None => {
                    started = started.min(n.min_mtime);
                    updated = updated.max(n.max_mtime);
                    finished = false;
                }
            }
        }
        let being_written = !finished && now_ms.saturating_sub(updated) < grace_ms;
        let indexed = s.nodes.values().any(|n| n.index_key.is_some());
        report.total_bytes += s.bytes;
        report.sessions.push(Decision {
            namespace: ns,
            kind,
            name,
            session,
            nodes: s.nodes.len(),
            objects: s.objects,
            bytes: s.bytes,
            started: head_started.unwrap_or(started),
            updated,
            finished,
            reason: if being_written {
                Reason::BeingWritten
            } else if !indexed {
                Reason::Unindexed
            } else {
                Reason::Kept
            },
        });
    }
    decide(&mut report, policy, now_ms);
    report.sessions.sort_by_key(|a| (a.started, a.prefix()));
    report.deleted_sessions = report
        .sessions
        .iter()
        .filter(|d| d.reason.deletes())
        .count();
    report.deleted_bytes = report
        .sessions
        .iter()
        .filter(|d| d.reason.deletes())
        .map(|d| d.bytes)
        .sum();
    if !dry_run {
        for d in report.sessions.clone() {
            if d.reason.deletes() {
                delete_session(store, &d.prefix(), &mut report.problems).await;
            }
        }
    }
    Ok(report)
}

/// The decisions, in the order age, count per cluster, total bytes.
fn decide(report: &mut Report, policy: &Policy, now_ms: u64) {
    let sessions = &mut report.sessions;
    if let Some(age) = policy.max_age {
        let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        for d in sessions.iter_mut() {
            if d.reason == Reason::Kept && now_ms.saturating_sub(d.updated) > age_ms {
                d.reason = Reason::MaxAge;
            }
        }
    }
    if let Some(max) = policy.max_sessions_per_cluster {
        // Newest start first within each cluster; sessions being written count as kept.
        let mut order: Vec<usize> = (0..sessions.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&sessions[a], &sessions[b]);
            (&x.namespace, &x.kind, &x.name, std::cmp::Reverse(x.started)).cmp(&(
                &y.namespace,
                &y.kind,
                &y.name,
                std::cmp::Reverse(y.started),
            ))
        });
        let mut kept = 0;
        let mut cluster: Option<(String, String, String)> = None;
        for i in order {
            let d = &mut sessions[i];
            let c = (d.namespace.clone(), d.kind.clone(), d.name.clone());
            if cluster.as_ref() != Some(&c) {
                cluster = Some(c);
                kept = 0;
            }
            if d.reason.deletes() {
                continue;
            }
            if kept >= max && d.reason == Reason::Kept {
                d.reason = Reason::MaxSessionsPerCluster;
            } else {
                kept += 1;
            }
        }
    }
    if let Some(max) = policy.max_total_bytes {
        let mut total: u64 = sessions
            .iter()
            .filter(|d| !d.reason.deletes())
            .map(|d| d.bytes)
            .sum();
        let mut order: Vec<usize> = (0..sessions.len()).collect();
        order.sort_by_key(|&i| (sessions[i].updated, sessions[i].started));
        for i in order {
            if total <= max {
                break;
            }
            if sessions[i].reason == Reason::Kept {
                sessions[i].reason = Reason::MaxTotalBytes;
                total -= sessions[i].bytes;
            }
        }
        report.over_total_bytes = total > max;
    }
}

/// Deletes one session: its indexes first (workers, then the head), so it leaves the
/// listing before any object it names goes; then everything else under its prefix.
async fn delete_session(store: &Store, prefix: &str, problems: &mut Vec<Problem>) {
    let index_prefix = format!("{prefix}/index");
    let mut indexes = match store.list(&index_prefix).await {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem {
                key: index_prefix,
                error: e.to_string(),
            });
            return;
        }
    };
    // The head's index last: while any index is listed, the head's (jobs, snapshots) is
    // the one a reader needs most.
    let mut head_last = Vec::with_capacity(indexes.len());
    for (k, _) in indexes.drain(..) {
        let is_head = match store.get(&k, MAX_INDEX).await {
            Ok(b) => NodeIndex::parse(&b).is_ok_and(|i| i.role == Role::Head),
            Err(_) => false,
        };
        head_last.push((is_head, k));
    }
    head_last.sort();
    for (_, k) in head_last {
        if let Err(e) = store.delete(&k).await {
            // An index left in place keeps the session listed and whole: stop here.
            problems.push(Problem {
                key: k,
                error: e.to_string(),
            });
            return;
        }
    }
    let mut rest = Vec::new();
    if let Err(e) = store.for_each_object(prefix, |k, _, _| rest.push(k)).await {
        problems.push(Problem {
            key: prefix.to_string(),
            error: e.to_string(),
        });
        return;
    }
    let results: Vec<(String, Result<(), StoreError>)> = futures::stream::iter(rest)
        .map(|k| async move {
            let r = store.delete(&k).await;
            (k, r)
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect()
        .await;
    for (key, r) in results {
        if let Err(e) = r {
            problems.push(Problem {
                key,
                error: e.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(
            parse_duration("x", "30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("x", "90m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("x", "2w").unwrap(),
            Duration::from_secs(1_209_600)
        );
        for b in ["", "d", "3", "3x", "-1d", "1.5h", "99999999999999w"] {
            assert!(parse_duration("retention.max_age", b).is_err(), "{b:?}");
        }
        assert_eq!(
            parse_duration("retention.max_age", "30x")
                .unwrap_err()
                .to_string(),
            "retention.max_age \"30x\": expected a whole number and a unit: s, m, h, d or w (e.g. 30d)"
        );
        assert_eq!(parse_bytes("x", "50GiB").unwrap(), 50 << 30);
        assert_eq!(parse_bytes("x", "500MB").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("x", "1024").unwrap(), 1024);
        for b in ["", "GiB", "1.5GiB", "1gib", "99999999999999999TiB"] {
            assert!(parse_bytes("x", b).is_err(), "{b:?}");
        }
    }

    #[test]
    fn retention_section_of_a_serve_config() {
        let r = from_toml(
            "listen = \"0.0.0.0:8443\"\n[tls]\ncert = \"c\"\n[retention]\nmax_age = \"30d\"\nmax_sessions_per_cluster = 5\nmax_total_bytes = \"50GiB\"\ninterval = \"15m\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.interval, Duration::from_secs(900));
        assert_eq!(r.policy.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(r.policy.max_sessions_per_cluster, Some(5));
        assert_eq!(r.policy.max_total_bytes, Some(50 << 30));
        assert_eq!(r.policy.grace, DEFAULT_GRACE);
        assert_eq!(from_toml("listen = \"x\"\n").unwrap(), None);
        let e = from_toml("[retention]\nmax_age = \"30 days\"\n").unwrap_err();
        assert!(
            e.to_string().starts_with("retention.max_age \"30 days\""),
            "{e}"
        );
        let e = from_toml("[retention]\nmax_ages = \"30d\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `max_ages`"), "{e}");
        let e = from_toml("[retention]\nmax_sessions_per_cluster = 0\n").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = from_toml("[retention\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn keys_outside_the_layout_are_not_sessions() {
        let s = "session_2026-01-01_00-00-00_000000_1";
        assert!(parse_key(&format!("v1/a/rayjob/b/{s}/index/h.json")).is_some());
        assert!(parse_key(&format!("v1/a/rayjob/b/{s}/logs/h/1-0/00")).is_some());
        for k in [
            "rayward-history.json".to_string(),
            format!("v1/a/rayjob/b/{s}/index"),
            format!("v1/a/pod/b/{s}/index/h.json"),
            "v1/a/rayjob/b/notasession/index/h.json".to_string(),
            format!("v1/a/rayjob/b/{s}/other/h/x"),
            format!("v2/a/rayjob/b/{s}/index/h.json"),
        ] {
            assert!(parse_key(&k).is_none(), "{k}");
        }
    }
}
