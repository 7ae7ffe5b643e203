//! The per-node, per-session index: what one collector has stored for one session.
//!
//! It is the only object a reader needs to list sessions and find their parts, so listing
//! thousands of sessions reads one small object per node instead of scanning every object.
//! The collector writes it only after every object it names is stored: a collector killed
//! mid-upload leaves the previous index, which names only complete objects.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Role of the node the collector runs beside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Head,
    Worker,
}

/// One part of a log file: bytes `offset .. offset + len` in object `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub key: String,
    pub offset: u64,
    pub len: u64,
}

/// One log file (one inode: a rotated file keeps its id under its new name; a file
/// truncated in place starts a new id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// The id in the object keys (`<inode hex>-<generation>`).
    pub id: String,
    /// Its path under the session's `logs/` when last seen.
    pub name: String,
    /// Device and inode, so a restarted collector resumes instead of re-uploading.
    pub dev: u64,
    pub ino: u64,
    /// Bytes stored (the sum of `parts`' lengths, which are contiguous from 0).
    pub shipped: u64,
    pub parts: Vec<Part>,
}

/// One batch of events as Ray POSTed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    pub key: String,
    pub count: u64,
    pub bytes: u64,
}

/// The latest answer of one dashboard endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub key: String,
    /// The HTTP status the dashboard answered (a 501 is kept and replayed as such).
    pub status: u16,
    /// Unix milliseconds when it was taken.
    pub taken: u64,
}

/// A submission job's final (or last seen) state, for the listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub submission_id: String,
    pub status: String,
}

/// The index of one node's part of one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIndex {
    pub layout: u32,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub session: String,
    pub node: String,
    pub role: Role,
    /// Unix milliseconds: first written, last written.
    pub started: u64,
    pub updated: u64,
    /// Set by the final flush (SIGTERM, or the session ended): nothing more will come.
    pub finished: bool,
    #[serde(default)]
    pub logs: Vec<LogFile>,
    #[serde(default)]
    pub events: Vec<EventBatch>,
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
    #[serde(default)]
    pub jobs: Vec<JobState>,
    /// Spool entries dropped past the buffer's bound (counted, never silent).
    #[serde(default)]
    pub dropped: u64,
    /// The last sequence number used in an event or snapshot key.
    #[serde(default)]
    pub seq: u64,
    /// Ray's id of this node (hex, as the dashboard API writes it), read from the session
    /// directory: how the log routes (`node_id=`) find this node's files.
    #[serde(default)]
    pub ray_node_id: Option<String>,
}

/// Why an index cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index layout version {0} is unknown; this rayward reads version {v}", v = crate::layout::LAYOUT_VERSION)]
    UnknownLayout(u32),
    #[error("index is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
}

impl NodeIndex {
    /// A new, empty index of `ns` (layout version of this build).
    pub fn new(ns: &crate::layout::NodeSession, role: Role, now_ms: u64) -> NodeIndex {
        NodeIndex {
            layout: crate::layout::LAYOUT_VERSION,
            namespace: ns.cluster.namespace.clone(),
            kind: ns.cluster.kind.segment().to_string(),
            name: ns.cluster.name.clone(),
            session: ns.session.clone(),
            node: ns.node.clone(),
            role,
            started: now_ms,
            updated: now_ms,
            finished: false,
            logs: vec![],
            events: vec![],
            snapshots: BTreeMap::new(),
            jobs: vec![],
            dropped: 0,
            seq: 0,
            ray_node_id: None,
        }
    }

    /// Reads an index, refusing other layout versions by name before anything else.
    pub fn parse(bytes: &[u8]) -> Result<NodeIndex, IndexError> {
        #[derive(Deserialize)]
        struct Head {
            layout: u32,
        }
        let head: Head = serde_json::from_slice(bytes)?;
        if head.layout != crate::layout::LAYOUT_VERSION {
            return Err(IndexError::UnknownLayout(head.layout));
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The compact JSON form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an index always serialises")
    }

    /// The log file with id `id`, if known.
    pub fn log_mut(&mut self, id: &str) -> Option<&mut LogFile> {
        self.logs.iter_mut().find(|f| f.id == id)
    }

    /// Sets the job states from a `/api/jobs/` answer (a JSON array of job details).
    pub fn set_jobs_from(&mut self, body: &[u8]) {
        #[derive(Deserialize)]
        struct J {
            submission_id: Option<String>,
            job_id: Option<String>,
            status: Option<String>,
        }
        if let Ok(jobs) = serde_json::from_slice::<Vec<J>>(body) {
            self.jobs = jobs
                .into_iter()
                .filter_map(|j| {
                    Some(JobState {
                        submission_id: j.submission_id.or(j.job_id)?,
                        status: j.status.unwrap_or_default(),
                    })
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> NodeIndex {
        NodeIndex {
            layout: 1,
            namespace: "a".into(),
            kind: "rayjob".into(),
            name: "b".into(),
            session: "session_x".into(),
            node: "n".into(),
            role: Role::Head,
            started: 1,
            updated: 2,
            finished: false,
            logs: vec![],
            events: vec![],
            snapshots: BTreeMap::new(),
            jobs: vec![],
            dropped: 0,
            seq: 0,
            ray_node_id: None,
        }
    }

    #[test]
    fn round_trip_and_unknown_layout() {
        let mut i = idx();
        i.set_jobs_from(br#"[{"submission_id":"raysubmit_1","status":"FAILED","x":1},{"job_id":"02000000","status":"SUCCEEDED"}]"#);
        assert_eq!(i.jobs.len(), 2);
        assert_eq!(i.jobs[0].status, "FAILED");
        assert_eq!(NodeIndex::parse(&i.to_bytes()).unwrap(), i);
        let mut v2 = serde_json::to_value(&i).unwrap();
        v2["layout"] = 2.into();
        let e = NodeIndex::parse(v2.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "index layout version 2 is unknown; this rayward reads version 1"
        );
        assert!(NodeIndex::parse(b"{\"layout\":1").is_err());
    }
}
