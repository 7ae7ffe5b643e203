//! The history server's audit log: one JSON object per line for each session opened, each
//! log downloaded, each login, and each denial (a namespace the user may not read, a
//! refused method or path, a failed authentication). Write errors are said once on
//! stderr and never stop serving.

use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// `open_session`, `download_log`, `login`, `login_failed`, `denied`, `refused`.
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub source: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `namespace/kind/name/session`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// `node/file` of a downloaded log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `gateway`: the user is the one the trusted gateway's assertion names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
}

pub struct AuditLog {
    out: Option<Mutex<Box<dyn Write + Send>>>,
    failed: AtomicBool,
}

impl AuditLog {
    pub fn disabled() -> AuditLog {
        AuditLog {
            out: None,
            failed: AtomicBool::new(false),
        }
    }

    /// Appends to `path` ("-": standard output).
    pub fn open(path: &str) -> std::io::Result<AuditLog> {
        let w: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        Ok(AuditLog {
            out: Some(Mutex::new(w)),
            failed: AtomicBool::new(false),
        })
    }

    pub fn log(&self, mut r: Record) {
        let Some(out) = &self.out else { return };
        r.time_ms = crate::collect::now_ms();
        let mut line = serde_json::to_vec(&r).expect("a record serialises");
        line.push(b'\n');
        let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
        if (w.write_all(&line).and_then(|_| w.flush())).is_err()
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            eprintln!("rayward history serve: cannot write the audit log");
        }
    }
}
