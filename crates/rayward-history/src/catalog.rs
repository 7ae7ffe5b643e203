//! The listing of stored clusters and sessions, read from the per-node indexes only: one
//! delimiter listing per level (namespaces, kinds, names, sessions, a session's `index/`)
//! and one small object per node, never the logs, events or snapshots. A session whose
//! index is unreadable (truncated, corrupt, another layout version) is reported by key
//! and the rest is listed. Namespaces can be restricted up front, so a caller allowed a
//! few namespaces never reads the others.

use crate::index::{JobState, NodeIndex, Role};
use crate::layout::{self, Kind, V1};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// One stored session of one cluster, merged over its nodes' indexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub session: String,
    /// Nodes with an index, the head first.
    pub nodes: Vec<String>,
    /// Unix ms: earliest start, latest update over the nodes.
    pub started: u64,
    pub updated: u64,
    /// Every node's collector finished its final flush.
    pub finished: bool,
    /// The head's job states.
    pub jobs: Vec<JobState>,
    /// Spool entries dropped on the way, over the nodes.
    pub dropped: u64,
}

/// An index that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub error: String,
}

/// The listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Catalog {
    pub sessions: Vec<SessionSummary>,
    pub problems: Vec<Problem>,
}

/// Largest index read (an index of 10,000 log files with many parts stays far below).
const MAX_INDEX: u64 = 64 << 20;

/// Sessions whose indexes are read at once: a listing of thousands of sessions is bound
/// by round trips to the store, not by bytes.
const PARALLEL_READS: usize = 16;

/// Lists every session, or only those of `namespaces` when given. The prefixes are walked
/// level by level; then the indexes of [`PARALLEL_READS`] sessions are read at a time,
/// the listing keeping the walk's order.
pub async fn list(store: &Store, namespaces: Option<&[String]>) -> Result<Catalog, StoreError> {
    use futures::{StreamExt, TryStreamExt};
    store.ensure_readable().await?;
    let all = store.list_dirs(V1).await?;
    let chosen: Vec<String> = match namespaces {
        Some(ns) => all.into_iter().filter(|n| ns.contains(n)).collect(),
        None => all,
    };
    let mut found: Vec<[String; 4]> = Vec::new();
    for ns in chosen {
        if layout::check_namespace(&ns).is_err() {
            continue;
        }
        for kind in store.list_dirs(&format!("{V1}/{ns}")).await? {
            if Kind::parse(&kind).is_err() {
                continue;
            }
            for name in store.list_dirs(&format!("{V1}/{ns}/{kind}")).await? {
                let cluster = format!("{V1}/{ns}/{kind}/{name}");
                for session in store.list_dirs(&cluster).await? {
                    if layout::check_session(&session).is_ok() {
                        found.push([ns.clone(), kind.clone(), name.clone(), session]);
                    }
                }
            }
        }
    }
    let read: Vec<_> = futures::stream::iter(found)
        .map(|[ns, kind, name, session]| async move {
            let (nodes, problems) =
                read_indexes(store, &format!("{V1}/{ns}/{kind}/{name}/{session}")).await?;
            Ok::<_, StoreError>((merge(&ns, &kind, &name, &session, nodes), problems))
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await?;
    let mut cat = Catalog::default();
    for (summary, problems) in read {
        cat.sessions.extend(summary);
        cat.problems.extend(problems);
    }
    Ok(cat)
}

/// The node indexes of the session at `prefix` (`v1/ns/kind/name/session`); an index
/// that cannot be read or parsed is a [`Problem`] naming its key.
pub async fn read_indexes(
    store: &Store,
    prefix: &str,
) -> Result<(Vec<NodeIndex>, Vec<Problem>), StoreError> {
    let (mut nodes, mut problems) = (Vec::new(), Vec::new());
    for (key, _) in store.list(&format!("{prefix}/index")).await? {
        let read = match store.get(&key, MAX_INDEX).await {
            Ok(b) => NodeIndex::parse(&b).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(i) => nodes.push(i),
            Err(error) => problems.push(Problem { key, error }),
        }
    }
    Ok((nodes, problems))
}

impl Catalog {
    /// The part of the listing in `namespaces` (sessions and problems).
    pub fn only(&self, namespaces: &[String]) -> Catalog {
        let ns_of_key = |k: &str| k.split('/').nth(1).map(str::to_string);
        Catalog {
            sessions: self
                .sessions
                .iter()
                .filter(|s| namespaces.contains(&s.namespace))
                .cloned()
                .collect(),
            problems: self
                .problems
                .iter()
                .filter(|p| ns_of_key(&p.key).is_some_and(|n| namespaces.contains(&n)))
                .cloned()
                .collect(),
        }
    }
}

fn merge(
    ns: &str,
    kind: &str,
    name: &str,
    session: &str,
    mut nodes: Vec<NodeIndex>,
) -> Option<SessionSummary> {
    if nodes.is_empty() {
        return None;
    }
    nodes.sort_by(|a, b| (a.role != Role::Head, &a.node).cmp(&(b.role != Role::Head, &b.node)));
    Some(SessionSummary {
        namespace: ns.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        session: session.to_string(),
        started: nodes.iter().map(|n| n.started).min().unwrap_or(0),
        updated: nodes.iter().map(|n| n.updated).max().unwrap_or(0),
        finished: nodes.iter().all(|n| n.finished),
        jobs: nodes
            .iter()
            .find(|n| n.role == Role::Head)
            .map(|n| n.jobs.clone())
            .unwrap_or_default(),
        dropped: nodes.iter().map(|n| n.dropped).sum(),
        nodes: nodes.into_iter().map(|n| n.node).collect(),
    })
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC; days to civil date after Howard
/// Hinnant's algorithm).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{ClusterRef, NodeSession};
    use bytes::Bytes;

    async fn put_index(
        s: &Store,
        ns: &str,
        name: &str,
        session: &str,
        node: &str,
        role: Role,
        jobs: &[(&str, &str)],
    ) {
        let n = NodeSession::new(
            ClusterRef::new(ns, Kind::RayJob, name).unwrap(),
            session,
            node,
        )
        .unwrap();
        let mut i = NodeIndex::new(&n, role, 1000);
        i.finished = role == Role::Head;
        i.jobs = jobs
            .iter()
            .map(|(id, st)| JobState {
                submission_id: id.to_string(),
                status: st.to_string(),
            })
            .collect();
        s.put(&n.index_key(), Bytes::from(i.to_bytes()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lists_from_indexes_reports_bad_ones_and_filters_namespaces() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().to_str().unwrap(), &[]).unwrap();
        s.ensure_layout().await.unwrap();
        let s1 = "session_2026-01-01_00-00-00_000000_1";
        let s2 = "session_2026-01-02_00-00-00_000000_2";
        put_index(
            &s,
            "team-a",
            "train",
            s1,
            "train-head",
            Role::Head,
            &[("raysubmit_1", "FAILED")],
        )
        .await;
        put_index(
            &s,
            "team-a",
            "train",
            s1,
            "train-worker-1",
            Role::Worker,
            &[],
        )
        .await;
        put_index(&s, "team-a", "train", s2, "train-head", Role::Head, &[]).await;
        put_index(&s, "team-b", "other", s1, "other-head", Role::Head, &[]).await;
        // A truncated index and one of another layout version: reported, not fatal.
        let bad = format!("v1/team-b/rayjob/broken/{s1}/index/broken-head.json");
        s.put(&bad, Bytes::from_static(b"{\"layout\":1,\"namespace\":"))
            .await
            .unwrap();
        let newer = format!("v1/team-b/rayjob/newer/{s1}/index/newer-head.json");
        s.put(&newer, Bytes::from_static(b"{\"layout\":2}"))
            .await
            .unwrap();
        // Objects that are not indexes are never read (a corrupt log part changes nothing).
        s.put(
            &format!("v1/team-a/rayjob/train/{s1}/logs/train-head/1-0/0000000000000000"),
            Bytes::from_static(b"\xff"),
        )
        .await
        .unwrap();

        let c = list(&s, None).await.unwrap();
        let rows: Vec<_> = c
            .sessions
            .iter()
            .map(|x| {
                (
                    x.namespace.as_str(),
                    x.name.as_str(),
                    x.session.as_str(),
                    x.nodes.clone(),
                    x.finished,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "team-a",
                    "train",
                    s1,
                    vec!["train-head".to_string(), "train-worker-1".to_string()],
                    false
                ),
                ("team-a", "train", s2, vec!["train-head".to_string()], true),
                ("team-b", "other", s1, vec!["other-head".to_string()], true),
            ]
        );
        assert_eq!(c.sessions[0].jobs[0].status, "FAILED");
        let problems: Vec<_> = c
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.error.as_str()))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, bad);
        assert!(
            problems[0].1.starts_with("index is not valid: EOF"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            (
                newer.as_str(),
                "index layout version 2 is unknown; this rayward reads version 1"
            )
        );

        let only_a = list(&s, Some(&["team-a".to_string()])).await.unwrap();
        assert_eq!(only_a.sessions.len(), 2);
        assert!(only_a.sessions.iter().all(|x| x.namespace == "team-a"));
        assert!(
            only_a.problems.is_empty(),
            "team-b's indexes are never read"
        );
    }

    #[test]
    fn utc_dates() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_796_489_854_000, "2026-12-05T16:57:34Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (4_107_542_399_000, "2100-02-28T23:59:59Z"),
        ] {
            assert_eq!(super::utc(ms), want);
        }
    }
}
