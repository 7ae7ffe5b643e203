//! The read-only dashboard API of one stored session, rebuilt from its indexes: the part
//! of `history serve` that answers the UI's data routes (the HTTP server, authentication,
//! authorization and the static UI around it are not written yet; docs/history.md).
//!
//! Routes answered from the head's latest snapshots, status and body as the dashboard gave
//! them: `/api/version`, `/api/jobs/`, `/nodes`, `/logical/actors`, `/api/v0/tasks`,
//! `/api/v0/tasks/summarize`, `/api/v0/tasks/timeline`, `/api/v0/placement_groups`,
//! `/api/cluster_status`, `/api/v0/cluster_metadata`, `/api/serve/applications/`,
//! `/timezone`, `/events`, `/api/v0/cluster_events`. Rebuilt: `/api/jobs/{id}` (the job's
//! entry of the stored list, by submission or job id) and `/api/jobs/{id}/logs` (its
//! shipped driver log). Anything else is `None`: the caller answers 404.

use crate::index::{NodeIndex, Role};
use crate::store::{Store, StoreError};
use bytes::Bytes;

/// One answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Largest stored object read whole for an answer (a snapshot or a driver log).
const MAX_READ: u64 = 256 << 20;

/// The snapshot endpoint that answers `path` as stored.
fn snapshot_of(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/version" => "version",
        "/api/jobs/" | "/api/jobs" => "jobs",
        "/nodes" => "nodes",
        "/logical/actors" => "actors",
        "/api/v0/tasks" => "tasks",
        "/api/v0/tasks/summarize" => "tasks_summary",
        "/api/v0/tasks/timeline" => "tasks_timeline",
        "/api/v0/placement_groups" => "placement_groups",
        "/api/cluster_status" => "cluster_status",
        "/api/v0/cluster_metadata" => "cluster_metadata",
        "/api/serve/applications/" => "serve",
        "/timezone" => "timezone",
        "/events" => "events",
        "/api/v0/cluster_events" => "cluster_events",
        _ => return None,
    })
}

fn json_or_text(body: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Answers `path` (no query) for the session whose node indexes are `nodes`.
pub async fn answer(
    store: &Store,
    nodes: &[NodeIndex],
    path: &str,
) -> Result<Option<Answer>, StoreError> {
    let Some(head) = nodes.iter().find(|n| n.role == Role::Head) else {
        return Ok(None);
    };
    if path == "/logical/actors" {
        if let Some(a) = actors(store, nodes).await? {
            return Ok(Some(a));
        }
    }
    if let Some(endpoint) = snapshot_of(path) {
        let Some(s) = head.snapshots.get(endpoint) else {
            return Ok(None);
        };
        let body = store.get(&s.key, MAX_READ).await?;
        return Ok(Some(Answer {
            status: s.status,
            content_type: json_or_text(&body),
            body,
        }));
    }
    let Some(rest) = path.strip_prefix("/api/jobs/") else {
        return Ok(None);
    };
    let (id, logs) = match rest.strip_suffix("/logs") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    if id.is_empty() || id.contains('/') {
        return Ok(None);
    }
    let Some(s) = head.snapshots.get("jobs").filter(|s| s.status == 200) else {
        return Ok(None);
    };
    let list: Vec<serde_json::Value> =
        match serde_json::from_slice(&store.get(&s.key, MAX_READ).await?) {
            Ok(l) => l,
            Err(_) => return Ok(None),
        };
    let Some(job) = list
        .into_iter()
        .find(|j| j["submission_id"].as_str() == Some(id) || j["job_id"].as_str() == Some(id))
    else {
        return Ok(None);
    };
    if !logs {
        return Ok(Some(Answer {
            status: 200,
            content_type: "application/json",
            body: Bytes::from(serde_json::to_vec(&job).expect("a Value serialises")),
        }));
    }
    let sid = job["submission_id"].as_str().unwrap_or(id);
    let name = format!("job-driver-{sid}.log");
    let mut text = Vec::new();
    if let Some(f) = head.logs.iter().find(|f| f.name == name) {
        for p in &f.parts {
            text.extend_from_slice(&store.get(&p.key, MAX_READ).await?);
        }
    }
    let body = serde_json::json!({ "logs": String::from_utf8_lossy(&text) });
    Ok(Some(Answer {
        status: 200,
        content_type: "application/json",
        body: Bytes::from(body.to_string()),
    }))
}

/// The head's stored answer of `endpoint` as JSON, when it was a 200.
async fn snapshot_json(
    store: &Store,
    nodes: &[NodeIndex],
    endpoint: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let Some(head) = nodes.iter().find(|n| n.role == Role::Head) else {
        return Ok(None);
    };
    let Some(s) = head.snapshots.get(endpoint).filter(|s| s.status == 200) else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&store.get(&s.key, MAX_READ).await?).ok())
}

/// `/nodes/{id}`: the node's entry of the stored `/nodes?view=summary`, shaped as Ray's
/// node detail answer (`{"result": true, "msg": "Node details fetched.", "data":
/// {"detail": …}}`).
pub async fn node_detail(
    store: &Store,
    nodes: &[NodeIndex],
    id: &str,
) -> Result<Option<Bytes>, StoreError> {
    let Some(v) = snapshot_json(store, nodes, "nodes").await? else {
        return Ok(None);
    };
    let found = v["data"]["summary"].as_array().and_then(|list| {
        list.iter()
            .find(|n| n["raylet"]["nodeId"].as_str() == Some(id))
            .cloned()
    });
    Ok(found.map(|detail| {
        Bytes::from(
            serde_json::json!({"result": true, "msg": "Node details fetched.", "data": {"detail": detail}})
                .to_string(),
        )
    }))
}

/// `/logical/actors` when the head stored exported actor states ([`crate::actors`]): the
/// stored snapshot (or an empty list when there is none or it was an error) with the
/// exported states applied over it. `None` without exported states: the snapshot is
/// answered as stored.
pub async fn actors(store: &Store, nodes: &[NodeIndex]) -> Result<Option<Answer>, StoreError> {
    let Some(head) = nodes.iter().find(|n| n.role == Role::Head) else {
        return Ok(None);
    };
    let Some(ev) = head.snapshots.get(crate::actors::ENDPOINT) else {
        return Ok(None);
    };
    let Ok(table) =
        serde_json::from_slice::<crate::actors::ActorTable>(&store.get(&ev.key, MAX_READ).await?)
    else {
        return Ok(None);
    };
    let mut v = snapshot_json(store, nodes, "actors")
        .await?
        .filter(|v| v["data"]["actors"].is_object())
        .unwrap_or_else(
            || serde_json::json!({"result": true, "msg": "All actors fetched.", "data": {"actors": {}}}),
        );
    crate::actors::overlay(&mut v, &table);
    Ok(Some(Answer {
        status: 200,
        content_type: "application/json",
        body: Bytes::from(serde_json::to_vec(&v).expect("a Value serialises")),
    }))
}

/// `/logical/actors/{id}`: the actor's entry of the `/logical/actors` answer (`actors`,
/// as [`answer`] gives it), shaped as Ray's actor detail answer.
pub fn actor_detail(actors: &Answer, id: &str) -> Option<Bytes> {
    if actors.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&actors.body).ok()?;
    v["data"]["actors"].get(id).cloned().map(|detail| {
        Bytes::from(
            serde_json::json!({"result": true, "msg": "Actor fetched.", "data": {"detail": detail}})
                .to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{LogFile, Part, Snapshot};
    use crate::layout::{ClusterRef, Kind, NodeSession};

    #[tokio::test]
    async fn snapshots_job_detail_and_logs() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().to_str().unwrap(), &[]).unwrap();
        let ns = NodeSession::new(
            ClusterRef::new("a", Kind::RayJob, "b").unwrap(),
            "session_x1",
            "b-head",
        )
        .unwrap();
        let mut head = NodeIndex::new(&ns, Role::Head, 0);
        let jobs = br#"[{"submission_id":"raysubmit_1","job_id":"02000000","status":"FAILED"}]"#;
        store.put("s/jobs", Bytes::from_static(jobs)).await.unwrap();
        store
            .put("s/serve", Bytes::from_static(b"Serve is not installed"))
            .await
            .unwrap();
        store
            .put("l/0", Bytes::from_static(b"Traceback\n"))
            .await
            .unwrap();
        store
            .put("l/1", Bytes::from_static(b"ValueError: x\n"))
            .await
            .unwrap();
        let snap = |key: &str, status| Snapshot {
            key: key.into(),
            status,
            taken: 0,
        };
        head.snapshots.insert("jobs".into(), snap("s/jobs", 200));
        head.snapshots.insert("serve".into(), snap("s/serve", 501));
        head.logs.push(LogFile {
            id: "1-0".into(),
            name: "job-driver-raysubmit_1.log".into(),
            dev: 0,
            ino: 1,
            shipped: 24,
            parts: vec![
                Part {
                    key: "l/0".into(),
                    offset: 0,
                    len: 10,
                },
                Part {
                    key: "l/1".into(),
                    offset: 10,
                    len: 14,
                },
            ],
        });
        let nodes = [head];
        let a = answer(&store, &nodes, "/api/jobs/").await.unwrap().unwrap();
        assert_eq!(
            (a.status, a.content_type, &a.body[..]),
            (200, "application/json", &jobs[..])
        );
        let a = answer(&store, &nodes, "/api/serve/applications/")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.status, a.content_type),
            (501, "text/plain; charset=utf-8")
        );
        for id in ["raysubmit_1", "02000000"] {
            let a = answer(&store, &nodes, &format!("/api/jobs/{id}"))
                .await
                .unwrap()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
            assert_eq!(v["status"], "FAILED");
        }
        let a = answer(&store, &nodes, "/api/jobs/raysubmit_1/logs")
            .await
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["logs"], "Traceback\nValueError: x\n");
        for p in [
            "/api/jobs/nope",
            "/api/jobs/raysubmit_1/x/logs",
            "/api/jobs//logs",
            "/nodes/x",
            "/api/v0/delay/1",
            "/worker/traceback",
            "/api/version",
        ] {
            assert_eq!(answer(&store, &nodes, p).await.unwrap(), None, "{p}");
        }
        assert_eq!(
            answer(&store, &[], "/api/jobs/").await.unwrap(),
            None,
            "no head, nothing"
        );
    }
}
