//! The HTTPS server: `/validate[/<mode>]`, `/mutate`, `/healthz`, `/readyz`, `/metrics`.
//!
//! [`App::handle`] is the whole request handler as a plain function of (method, path,
//! body), so it can be tested and fuzzed without sockets; the server around it only
//! terminates TLS, bounds the body and the time to send headers, and maps replies.

use crate::metrics::{EndpointLabels, FindingLabels, Metrics, ReviewLabels};
use crate::mutate::Mutation;
use crate::policy::{Mode, Policy, Verdict};
use crate::review::{self, Response, ReviewOut, Status};
use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use rayward_serve::endpoints::{Own, HEALTHY, OPENMETRICS};
use rayward_serve::{CertStore, ConnOptions, TlsError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Bounds of the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest request body. The API server caps objects at 3 MiB (etcd's limit is
    /// 1.5 MiB per value); a review wraps the object (and the old one on UPDATE) once more.
    pub max_body: usize,
    /// How often the certificate files are re-read.
    pub reload_every: Duration,
    /// Time a client has to complete the TLS handshake and send the request headers.
    pub header_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body: 8 * 1024 * 1024,
            reload_every: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// What the handler answers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into().into_bytes();
        body.push(b'\n');
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }

    fn review(out: &ReviewOut) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(out).expect("a review response serialises"),
        }
    }
}

/// The policy, the metrics, and whether each review is logged to stderr.
pub struct App {
    pub policy: Policy,
    pub metrics: Metrics,
    pub log: bool,
}

impl App {
    pub fn new(policy: Policy) -> App {
        App {
            policy,
            metrics: Metrics::default(),
            log: true,
        }
    }

    /// Answers one request. Never panics on any input (the fuzz target holds it to that).
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let (endpoint, mode) = match path {
            "/validate" => ("validate", Some(self.policy.mode)),
            "/mutate" => ("mutate", None),
            p if Own::of(p).is_some() && method != "GET" => return Reply::text(405, "use GET"),
            p if Own::of(p) == Some(Own::Health) => {
                return Reply {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body: HEALTHY.as_bytes().to_vec(),
                }
            }
            p if Own::of(p) == Some(Own::Metrics) => {
                return Reply {
                    status: 200,
                    content_type: OPENMETRICS,
                    body: self.metrics.encode().into_bytes(),
                }
            }
            p => match p.strip_prefix("/validate/").and_then(Mode::parse) {
                Some(m) => ("validate", Some(m)),
                None => return Reply::text(404, format!("no such path `{p}`")),
            },
        };
        if method != "POST" {
            return Reply::text(405, "POST an AdmissionReview");
        }
        let t0 = Instant::now();
        let reply = match review::parse(body) {
            Err(e) => {
                self.metrics
                    .bad_requests
                    .get_or_create(&EndpointLabels { endpoint })
                    .inc();
                Reply::text(400, format!("rayward webhook: {e}"))
            }
            Ok(req) => match mode {
                Some(mode) => self.validate(&req, mode),
                None => self.mutate(&req),
            },
        };
        self.metrics
            .latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(t0.elapsed().as_secs_f64());
        reply
    }

    fn validate(&self, req: &review::Request, mode: Mode) -> Reply {
        let d = self.policy.review(req, mode);
        self.metrics
            .reviews
            .get_or_create(&ReviewLabels {
                endpoint: "validate",
                mode: mode.as_str(),
                kind: crate::metrics::kind_label(&req.kind),
                verdict: d.verdict.as_str(),
            })
            .inc();
        for f in &d.findings {
            self.metrics
                .findings
                .get_or_create(&FindingLabels {
                    rule: f.rule_id,
                    severity: f.severity.as_str(),
                    mode: mode.as_str(),
                })
                .inc();
        }
        if self.log && d.verdict != Verdict::Skipped {
            let rules = crate::policy::unique_ids(&d.findings);
            // One write per line: `eprintln!` of a `serde_json::Value` makes one
            // unbuffered write(2) per token (about 40 per review), which took half of a
            // review's CPU time under load.
            let mut line = serde_json::to_vec(&serde_json::json!({
                "msg": "review",
                "uid": req.uid,
                "operation": req.operation,
                "kind": req.kind.kind,
                "namespace": req.namespace,
                "name": req.name,
                "mode": mode.as_str(),
                "verdict": d.verdict.as_str(),
                "rules": rules,
                "dry_run_request": req.dry_run.unwrap_or(false),
            }))
            .expect("a JSON value serialises");
            line.push(b'\n');
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &line);
        }
        Reply::review(&ReviewOut::new(d.response))
    }

    fn mutate(&self, req: &review::Request) -> Reply {
        let mut response = Response {
            uid: req.uid.clone(),
            allowed: true,
            ..Response::default()
        };
        let own = self.policy.own_namespace.is_some() && req.namespace == self.policy.own_namespace;
        let verdict = match req.object.as_ref().filter(|_| !own) {
            None => "skipped",
            Some(raw) => match crate::mutate::patch(raw.get().as_bytes()) {
                Ok(Mutation::Skipped) => "skipped",
                Ok(Mutation::Unchanged) => "unchanged",
                Ok(Mutation::Patched(patch)) => {
                    let bytes = serde_json::to_vec(&patch).expect("a patch serialises");
                    response.patch_type = Some("JSONPatch");
                    response.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                    "patched"
                }
                Err(e) => {
                    // Mutation is a convenience: an object that cannot be read or fixed is
                    // let through here and judged by /validate.
                    response
                        .warnings
                        .push(format!("rayward: no fixes applied: {e}"));
                    "error"
                }
            },
        };
        self.metrics
            .reviews
            .get_or_create(&ReviewLabels {
                endpoint: "mutate",
                mode: "mutate",
                kind: crate::metrics::kind_label(&req.kind),
                verdict,
            })
            .inc();
        Reply::review(&ReviewOut::new(response))
    }
}

/// A running server; dropping it stops accepting and closes every connection at once,
/// [`Server::stop`] lets requests in flight finish first.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Serves `app` on `listener` with the certificate of `store`, re-read every
    /// `opts.reload_every`.
    pub fn start(
        listener: TcpListener,
        store: Arc<CertStore>,
        app: Arc<App>,
        opts: ServerOptions,
    ) -> Result<Server, TlsError> {
        let addr = listener.local_addr().map_err(|e| TlsError::File {
            path: "listener".into(),
            message: e.to_string(),
        })?;
        // Fail now, not in the accept loop, when the certificate cannot serve.
        store.server_config()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let conn = ConnOptions {
            name: NAME,
            header_timeout: opts.header_timeout,
            ..ConnOptions::default()
        };
        let max = opts.max_body;
        let make = move |_peer| {
            let app = app.clone();
            service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(serve(&app, req, max).await) }
            })
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(store.clone().watch(opts.reload_every, NAME));
        tasks.spawn(async move {
            rayward_serve::serve(listener, Some(store), conn, make, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Server {
            addr,
            stop: Some(stop),
            tasks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs until the server fails (it does not on its own).
    pub async fn run(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until `signal` resolves, then stops gracefully ([`Server::stop`]).
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }

    /// Stops accepting, lets the requests in flight finish (within the drain time), and
    /// returns when the accept loop has ended.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The accept loop ends after draining; the certificate poller never does.
        while let Some(done) = self.tasks.join_next().await {
            if done.is_ok() {
                break;
            }
        }
        self.tasks.abort_all();
    }
}

/// How the webhook names itself in logs.
const NAME: &str = "rayward webhook";

async fn serve(
    app: &App,
    req: hyper::Request<Incoming>,
    max: usize,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let too_large = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64);
    let reply = if too_large {
        Reply::text(413, format!("body larger than {max} bytes"))
    } else {
        match Limited::new(req.into_body(), max).collect().await {
            Ok(b) => app.handle(&method, &path, &b.to_bytes()),
            Err(e) => {
                if e.is::<http_body_util::LengthLimitError>() {
                    Reply::text(413, format!("body larger than {max} bytes"))
                } else {
                    Reply::text(400, format!("cannot read the body: {e}"))
                }
            }
        }
    };
    if reply.status == 413 {
        app.metrics
            .bad_requests
            .get_or_create(&EndpointLabels { endpoint: "any" })
            .inc();
    }
    hyper::Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid response")
}

/// An error response as an AdmissionReview, for callers that have a uid.
pub fn error_review(uid: &str, code: u16, message: String) -> ReviewOut {
    ReviewOut::new(Response {
        uid: uid.to_string(),
        allowed: false,
        status: Some(Status { code, message }),
        ..Response::default()
    })
}
