//! The audit log: one JSON object per line for every state-changing request and every
//! denial. Lines are handed to a writer thread over a channel, so a slow disk never
//! blocks a request. Fields are an allow-list: no header, password, token or cookie
//! can reach the log because none is ever put in a record.

use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    pub time: String,
    pub user: Option<String>,
    pub role: Option<String>,
    pub source: String,
    pub method: String,
    pub path: String,
    pub class: &'static str,
    pub status: u16,
    /// Why the gateway refused, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    /// The job's submitter (`rayward.io/submitted-by`) on stop and delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The cluster (`namespace/name`) a request was routed to under `[discovery]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<Record>>,
}

impl AuditLog {
    /// No log.
    pub fn disabled() -> AuditLog {
        AuditLog { tx: None }
    }

    /// Appends to `path` ("-" is standard output).
    pub fn open(path: &str) -> std::io::Result<AuditLog> {
        let mut out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            Box::new(opts.open(Path::new(path))?)
        };
        let (tx, rx) = mpsc::channel::<Record>();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                for r in rx {
                    let mut line = serde_json::to_vec(&r).expect("record serialises");
                    line.push(b'\n');
                    if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
                        eprintln!("rayward gateway: audit log write failed: {e}");
                    }
                }
            })?;
        Ok(AuditLog { tx: Some(tx) })
    }

    pub fn log(&self, r: Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }
}

/// Pulls `entrypoint` and `submission_id` out of a job-submission body (Ray's
/// `JobSubmitRequest`); None for bodies that are not a JSON object.
pub fn job_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Submit {
        entrypoint: Option<String>,
        submission_id: Option<String>,
        job_id: Option<String>,
    }
    match serde_json::from_slice::<Submit>(body) {
        Ok(s) => (s.entrypoint, s.submission_id.or(s.job_id)),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(p.to_str().unwrap()).unwrap();
        for status in [200, 403] {
            log.log(Record {
                time: now_rfc3339(),
                user: Some("alice".into()),
                role: Some("submitter".into()),
                source: "10.0.0.1".into(),
                method: "POST".into(),
                path: "/api/jobs/".into(),
                class: "write",
                status,
                reason: None,
                entrypoint: Some("python x.py".into()),
                submission_id: Some("raysubmit_1".into()),
                owner: None,
                cluster: None,
            });
        }
        drop(log);
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&p).unwrap();
            if text.lines().count() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["user"], "alice");
        assert_eq!(lines[1]["status"], 403);
        assert_eq!(lines[0]["entrypoint"], "python x.py");
        assert!(lines[0].get("reason").is_none());
    }

    #[test]
    fn job_fields_from_body() {
        assert_eq!(
            job_fields(br#"{"entrypoint":"python s.py","submission_id":"s1","runtime_env":{}}"#),
            (Some("python s.py".into()), Some("s1".into()))
        );
        assert_eq!(
            job_fields(br#"{"entrypoint":"x"}"#),
            (Some("x".into()), None)
        );
        assert_eq!(job_fields(b"not json"), (None, None));
    }
}
