//! Snapshots of the dashboard API the UI reads, taken from the head's dashboard.
//!
//! Events do not cover submission jobs, cluster status, node details, Serve, version or
//! timezone (measured, docs/history.md), and the UI reads the dashboard's own answers, so
//! the head's collector stores those answers as they are (status and body: a 501 from a
//! Ray without Serve is replayed as a 501). The cluster token goes in `Authorization`,
//! read from the same `RAY_AUTH_TOKEN` / `RAY_AUTH_TOKEN_PATH` the Ray container uses.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// The endpoints snapshotted: (id in the store, path and query).
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("version", "/api/version"),
    ("jobs", "/api/jobs/"),
    ("nodes", "/nodes?view=summary"),
    ("actors", "/logical/actors"),
    ("tasks", "/api/v0/tasks?detail=1&limit=10000"),
    (
        "tasks_summary",
        "/api/v0/tasks/summarize?summary_by=func_name",
    ),
    ("tasks_timeline", "/api/v0/tasks/timeline?download=1"),
    (
        "placement_groups",
        "/api/v0/placement_groups?detail=1&limit=10000",
    ),
    ("cluster_status", "/api/cluster_status"),
    ("cluster_metadata", "/api/v0/cluster_metadata"),
    ("serve", "/api/serve/applications/"),
    ("timezone", "/timezone"),
    ("events", "/events"),
    ("cluster_events", "/api/v0/cluster_events"),
];

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("dashboard URL {0:?}: expected http://HOST:PORT")]
    BadUrl(String),
    #[error("{path}: {why}")]
    Failed { path: String, why: String },
}

/// Where the dashboard is and how to authenticate to it.
#[derive(Clone, Debug)]
pub struct Dashboard {
    authority: String,
    token: Option<String>,
    pub timeout: Duration,
    pub max_body: usize,
}

/// The cluster token as Ray reads it: `RAY_AUTH_TOKEN`, else the file `RAY_AUTH_TOKEN_PATH`.
pub fn token_from_env() -> Result<Option<String>, std::io::Error> {
    if let Ok(t) = std::env::var("RAY_AUTH_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Some(t.trim().to_string()));
        }
    }
    match std::env::var_os("RAY_AUTH_TOKEN_PATH") {
        Some(p) => Ok(Some(std::fs::read_to_string(p)?.trim().to_string())),
        None => Ok(None),
    }
}

impl Dashboard {
    /// The dashboard at `url` (`http://127.0.0.1:8265`).
    pub fn new(url: &str, token: Option<String>) -> Result<Dashboard, SnapshotError> {
        let u = url::Url::parse(url).map_err(|_| SnapshotError::BadUrl(url.into()))?;
        if u.scheme() != "http" || u.host_str().is_none() || u.path() != "/" && !u.path().is_empty()
        {
            return Err(SnapshotError::BadUrl(url.into()));
        }
        let authority = format!(
            "{}:{}",
            u.host_str().expect("checked"),
            u.port_or_known_default().unwrap_or(80)
        );
        Ok(Dashboard {
            authority,
            token,
            timeout: Duration::from_secs(15),
            max_body: 64 << 20,
        })
    }

    /// GETs `path` into the file `out`, frame by frame (a 20 MB task list is never held
    /// whole): the status and the bytes written.
    pub async fn get_into(
        &self,
        path: &str,
        out: &std::path::Path,
    ) -> Result<(u16, u64), SnapshotError> {
        use std::io::Write;
        let fail = |why: String| SnapshotError::Failed {
            path: path.to_string(),
            why,
        };
        let work = async {
            let mut resp = self.send(path).await?;
            let status = resp.status().as_u16();
            let mut file =
                std::fs::File::create(out).map_err(|e| fail(format!("{}: {e}", out.display())))?;
            let mut n = 0u64;
            while let Some(frame) = resp.body_mut().frame().await {
                let frame = frame.map_err(|e| fail(format!("body: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    n += data.len() as u64;
                    if n > self.max_body as u64 {
                        return Err(fail(format!("body over {} bytes", self.max_body)));
                    }
                    file.write_all(&data)
                        .map_err(|e| fail(format!("{}: {e}", out.display())))?;
                }
            }
            Ok((status, n))
        };
        let r = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))
            .and_then(|r| r);
        if r.is_err() {
            let _ = std::fs::remove_file(out);
        }
        r
    }

    /// One connection, one GET of `path` (with the token): the response, body unread.
    async fn send(
        &self,
        path: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SnapshotError> {
        let fail = |why: String| SnapshotError::Failed {
            path: path.to_string(),
            why,
        };
        let tcp = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| fail(format!("connect {}: {e}", self.authority)))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let req = self.request(path).map_err(|e| fail(e.to_string()))?;
        send.send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))
    }

    fn request(&self, path: &str) -> Result<Request<Empty<Bytes>>, hyper::http::Error> {
        let mut req = Request::get(path).header("host", &self.authority);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(Empty::<Bytes>::new())
    }

    /// GETs `path`: the status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, Bytes), SnapshotError> {
        let fail = |why: String| SnapshotError::Failed {
            path: path.to_string(),
            why,
        };
        let work = async {
            let resp = self.send(path).await?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| fail(format!("body: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Dashboard::new("http://127.0.0.1:8265", None).is_ok());
        assert!(Dashboard::new("http://127.0.0.1:8265/", None).is_ok());
        for u in ["https://x:1", "127.0.0.1:8265", "http://x:1/api", "ftp://x"] {
            assert!(Dashboard::new(u, None).is_err(), "{u}");
        }
        let ids: std::collections::HashSet<_> = ENDPOINTS.iter().map(|e| e.0).collect();
        assert_eq!(ids.len(), ENDPOINTS.len());
        assert!(ids
            .iter()
            .all(|i| i.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
