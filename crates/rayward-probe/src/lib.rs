//! `rayward probe`: read-only questions to running Ray endpoints, the ShadowRay question
//! (CVE-2023-48022) asked of the network rather than of a manifest. Does the Jobs API, the
//! dashboard agent or the Ray Client answer without credentials? Does the GCS speak TLS?
//! Are Serve and metrics reachable from here?
//!
//! It never changes state: HTTP GETs, a TLS handshake offer, and one read-only gRPC call
//! ([`CLIENT_CALL`]; gRPC calls are HTTP/2 POSTs by protocol, this one asks a question).
//! No job, no upload, no PUT or DELETE. Every question has a deadline, at most
//! [`Options::concurrency`] run at once, and only the given (or discovered) targets are
//! contacted. The answers are [`Finding`]s, reported in audit's formats.

pub mod checks;
pub mod net;

use checks::{AgentOpen, ClientOpen, DashboardReachable, GcsPlaintext, JobsApiOpen, PortReachable};
use net::NoAnswer;
use rayward_rules::{Finding, ObjectRef, RuleMeta};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The Ray Client call: `ClusterInfo` with an empty request, i.e. type `IS_INITIALIZED`, a
/// yes/no question. A server with token auth refuses it with `UNAUTHENTICATED` before any
/// handler runs (a method that does not exist would not tell: Ray looks methods up first).
pub const CLIENT_CALL: &str = "/ray.rpc.RayletDriver/ClusterInfo";

/// What the GCS is asked over plaintext HTTP/2, to tell gRPC from other protocols: a
/// method no Ray service has (answered `UNIMPLEMENTED` by any gRPC server).
pub const GCS_CALL: &str = "/rayward.Probe/NoSuchMethod";

/// Ray's ports and what the probe asks each.
pub const PORTS: &[(u16, Port)] = &[
    (8265, Port::Dashboard),
    (52365, Port::Agent),
    (10001, Port::Client),
    (6379, Port::Gcs),
    (8000, Port::Serve),
    (8080, Port::Metrics),
];

/// What listens on a port, by Ray's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Dashboard,
    Agent,
    Client,
    Gcs,
    Serve,
    Metrics,
}

impl Port {
    /// The role of a port number; a port Ray does not use by default is taken to be a
    /// dashboard (a port-forward, a NodePort).
    pub fn of(n: u16) -> Port {
        PORTS
            .iter()
            .find(|(p, _)| *p == n)
            .map_or(Port::Dashboard, |(_, r)| *r)
    }

    fn name(self) -> &'static str {
        match self {
            Port::Dashboard => "dashboard",
            Port::Agent => "dashboard agent",
            Port::Client => "Ray Client",
            Port::Gcs => "GCS",
            Port::Serve => "Serve",
            Port::Metrics => "metrics",
        }
    }
}

/// One place to probe: a host, and a port or every Ray port.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    /// `None`: every port of [`PORTS`].
    pub port: Option<u16>,
    /// The Kubernetes object it was discovered from (`--cluster`): findings name it.
    pub owner: Option<ObjectRef>,
}

impl Target {
    /// `HOST`, `HOST:PORT`, `[V6]:PORT` or `V6`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not HOST or HOST:PORT");
        if s.is_empty() || s.contains('/') || s.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
            match tail.strip_prefix(':') {
                Some(p) => (h.to_string(), Some(p)),
                None if tail.is_empty() => (h.to_string(), None),
                None => return Err(bad()),
            }
        } else if s.matches(':').count() > 1 {
            (s.to_string(), None)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (s.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?),
            None => None,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Target {
            host,
            port,
            owner: None,
        })
    }
}

/// Bounds of a probe run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Deadline of each question (connect included).
    pub timeout: Duration,
    /// Questions in flight at once.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(3),
            concurrency: 8,
        }
    }
}

/// What a probe run learnt.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    /// Targets that could not be probed at all (a name that does not resolve): (target,
    /// why).
    pub errors: Vec<(String, String)>,
    /// Ports that answered.
    pub answered: usize,
    /// Ports asked, and what each gave when it gave no finding (for `--verbose` notes):
    /// (`host:port`, what).
    pub notes: Vec<(String, String)>,
}

/// Probes every target, each port within the bounds.
pub async fn probe(targets: &[Target], opts: Options) -> Outcome {
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut out = Outcome::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = 0usize;
    for t in targets {
        let ports: Vec<u16> = match t.port {
            Some(p) => vec![p],
            None => PORTS.iter().map(|(p, _)| *p).collect(),
        };
        let first = ports[0];
        let addr = match tokio::time::timeout(
            opts.timeout,
            tokio::net::lookup_host((t.host.as_str(), first)),
        )
        .await
        {
            Ok(Ok(mut addrs)) => match addrs.next() {
                Some(a) => a.ip(),
                None => {
                    out.errors
                        .push((t.host.clone(), "resolves to no address".into()));
                    continue;
                }
            },
            Ok(Err(e)) => {
                out.errors
                    .push((t.host.clone(), format!("cannot resolve: {e}")));
                continue;
            }
            Err(_) => {
                out.errors.push((
                    t.host.clone(),
                    format!("no DNS answer within {:?}", opts.timeout),
                ));
                continue;
            }
        };
        for port in ports {
            let (slots, owner, host) = (slots.clone(), t.owner.clone(), t.host.clone());
            let at = order;
            order += 1;
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("never closed");
                let addr = SocketAddr::new(addr, port);
                let r = ask(addr, Port::of(port), opts.timeout).await;
                (at, host, port, owner, r)
            });
        }
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("a probe task does not panic"));
    }
    answers.sort_by_key(|a| a.0);
    for (_, host, port, owner, answer) in answers {
        let endpoint = display(&host, port);
        match answer {
            Answer::Nothing(why) => out.notes.push((endpoint, why)),
            Answer::Found(found) => {
                out.answered += 1;
                if found.is_empty() {
                    out.notes
                        .push((endpoint.clone(), "answered; nothing to report".into()));
                }
                let object = Arc::new(owner.unwrap_or_else(|| ObjectRef {
                    api_version: String::new(),
                    kind: "Endpoint".into(),
                    namespace: None,
                    name: endpoint.clone(),
                }));
                let file: Arc<str> = Arc::from(format!("probe://{endpoint}"));
                for (meta, path, message) in found {
                    out.findings.push(Finding {
                        rule_id: meta.id,
                        rule_name: meta.name,
                        severity: meta.severity,
                        section: meta.section,
                        object: object.clone(),
                        file: file.clone(),
                        line: 0,
                        column: 0,
                        path: path.into(),
                        message,
                        fix: Cow::Borrowed(meta.fix),
                        suppressed: None,
                        doc: 0,
                    });
                }
            }
        }
    }
    out
}

fn display(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What one port gave.
enum Answer {
    /// Nothing listens, or nothing answered: why.
    Nothing(String),
    /// It answered: the findings (check, what was asked, message with the evidence).
    Found(Vec<(&'static RuleMeta, String, String)>),
}

fn evidence(a: &net::HttpAnswer) -> String {
    let mut e = format!("HTTP {}", a.status);
    if let Some(s) = &a.server {
        e.push_str(&format!(", Server: {}", clip(s)));
    }
    if let Some(c) = &a.content_type {
        e.push_str(&format!(", Content-Type: {}", clip(c)));
    }
    e
}

/// A header value as evidence: printable and short (it comes from whatever answered).
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Whether an HTTP answer is a refusal for want of credentials.
fn asks_credentials(status: u16) -> bool {
    matches!(status, 401 | 403)
}

async fn ask(addr: SocketAddr, port: Port, t: Duration) -> Answer {
    let mut found = Vec::new();
    let nothing = |e: NoAnswer| Answer::Nothing(format!("{}: {e}", port.name()));
    match port {
        Port::Dashboard => {
            let version = match net::get(addr, "/api/version", t).await {
                Err(e) => return nothing(e),
                Ok(a) => a,
            };
            if version.status == 200 {
                let v = ray_version(&version.body).unwrap_or_else(|| "unknown".into());
                found.push((
                    &DashboardReachable::META,
                    "GET /api/version".to_string(),
                    format!("the Ray dashboard answers (Ray {v}; {})", evidence(&version)),
                ));
            }
            match net::get(addr, "/api/jobs/", t).await {
                Ok(jobs) if jobs.status == 200 => found.push((
                    &JobsApiOpen::META,
                    "GET /api/jobs/".to_string(),
                    format!(
                        "the Jobs API lists jobs to a caller with no credentials ({}): anyone who reaches it can submit a job, i.e. run code",
                        evidence(&jobs)
                    ),
                )),
                _ => {}
            }
        }
        Port::Agent => match net::get(addr, "/api/job_agent/jobs/", t).await {
            Err(e) => return nothing(e),
            Ok(a) if asks_credentials(a.status) => {}
            Ok(a) => found.push((
                &AgentOpen::META,
                "GET /api/job_agent/jobs/".to_string(),
                format!(
                    "the dashboard agent's job route answered a caller with no credentials ({}), past any authentication: its POST submits jobs the same way",
                    evidence(&a)
                ),
            )),
        },
        Port::Client => match net::speaks_tls(addr, t).await {
            Err(e) => return nothing(e),
            Ok(true) => {}
            Ok(false) => match net::grpc_status(addr, CLIENT_CALL, t).await {
                Err(e) => return nothing(e),
                // 16 UNAUTHENTICATED: a token is asked for first.
                Ok(Some(16)) => {}
                Ok(Some(status)) => found.push((
                    &ClientOpen::META,
                    format!("gRPC {CLIENT_CALL}"),
                    format!("the Ray Client port takes plaintext gRPC and answered a call with no credentials (grpc-status {status}, not 16 UNAUTHENTICATED): `ray.init(\"ray://…\")` runs code for anyone who reaches it"),
                )),
                Ok(None) => {
                    return Answer::Nothing(
                        "Ray Client: plaintext HTTP/2 without a grpc-status".to_string(),
                    )
                }
            },
        },
        Port::Gcs => match net::speaks_tls(addr, t).await {
            Err(e) => return nothing(e),
            Ok(true) => {}
            Ok(false) => {
                let h2 = net::grpc_status(addr, GCS_CALL, t).await;
                let how = match h2 {
                    Ok(s) => format!("plaintext HTTP/2 gRPC (grpc-status {})", s.map_or("none".into(), |s| s.to_string())),
                    Err(e) => format!("no TLS handshake ({e})"),
                };
                found.push((
                    &GcsPlaintext::META,
                    "TLS ClientHello".to_string(),
                    format!("the GCS port does not speak TLS: it answered the handshake offer with {how}"),
                ));
            }
        },
        Port::Serve | Port::Metrics => match net::get(addr, "/", t).await {
            Err(NoAnswer::Other(e)) => {
                // Something listens, but not HTTP.
                if net::reachable(addr, t).await.is_ok() {
                    found.push((
                        &PortReachable::META,
                        "TCP connect".to_string(),
                        format!("the {} port accepts connections ({e})", port.name()),
                    ));
                }
            }
            Err(e) => return nothing(e),
            Ok(a) => found.push((
                &PortReachable::META,
                "GET /".to_string(),
                format!("the {} port answers ({})", port.name(), evidence(&a)),
            )),
        },
    }
    Answer::Found(found)
}

/// `ray_version` of a `/api/version` answer (`{"ray_version": "2.60.0", …}`).
fn ray_version(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"ray_version\"")?;
    let rest = text[at + "\"ray_version\"".len()..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let v: String = rest.chars().take_while(|c| *c != '"').take(32).collect();
    Some(clip(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("10.0.0.5:8265").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.5", Some(8265)));
        let t = Target::parse("ray-head.ml.svc").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("ray-head.ml.svc", None));
        let t = Target::parse("[::1]:6379").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(6379)));
        let t = Target::parse("::1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", None));
        for bad in [
            "", "h:0", "h:70000", "h:x", "http://h", "a b", "[::1", ":80",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_have_roles() {
        assert_eq!(Port::of(52365), Port::Agent);
        assert_eq!(Port::of(6379), Port::Gcs);
        assert_eq!(Port::of(18265), Port::Dashboard);
    }

    #[test]
    fn versions_are_read_and_clipped() {
        assert_eq!(
            ray_version(br#"{"version": "4", "ray_version": "2.60.0", "ray_commit": "x"}"#),
            Some("2.60.0".into())
        );
        assert_eq!(ray_version(b"<html>"), None);
        assert_eq!(
            ray_version(b"{\"ray_version\": \"\x1b[2J2.6\"}").as_deref(),
            Some("[2J2.6")
        );
    }
}
