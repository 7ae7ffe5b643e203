//! `rayward watch`: the audit of a running cluster, kept current. Each object is judged by
//! the per-object rules when it changes (one object, not the cluster); the whole-run rules
//! (NetworkPolicy coverage, quotas, RBAC, stale pods) run again over every kept object at
//! most every [`Options::settle`] after a change. Findings are served as Prometheus
//! metrics that go away when the object is fixed or deleted; `/healthz` answers while the
//! process runs, `/readyz` once every kind's first listing is in.
//!
//! Same engine, same rules as `rayward audit --cluster` (no second copy): objects arrive
//! through `rayward_live::Cluster::watch_each` as the same JSON inputs.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rayward_live::{Change, Cluster};
use rayward_manifest::{load_bytes, Limits, Object};
use rayward_rules::{Engine, Finding};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Labels of the findings gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FindingLabels {
    pub namespace: String,
    pub rule: String,
    pub severity: String,
}

/// The metrics `rayward watch` serves.
pub struct Metrics {
    pub registry: Registry,
    findings: Family<FindingLabels, Gauge>,
    last_full_audit: Gauge,
    api_errors: Counter,
    reaudit_seconds: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rayward_watch");
        let findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "findings",
            "Active findings now, by namespace, rule and severity",
            findings.clone(),
        );
        let last_full_audit = Gauge::default();
        registry.register(
            "last_full_audit_timestamp_seconds",
            "When the whole-run rules last ran over every object (Unix time)",
            last_full_audit.clone(),
        );
        let api_errors = Counter::default();
        registry.register(
            "api_errors",
            "Failed list or watch requests (the watch retries with backoff)",
            api_errors.clone(),
        );
        let reaudit_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        registry.register(
            "reaudit_seconds",
            "Time to judge one changed object with the per-object rules",
            reaudit_seconds.clone(),
        );
        Metrics {
            registry,
            findings,
            last_full_audit,
            api_errors,
            reaudit_seconds,
        }
    }
}

/// Bounds and pace.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The quiet time after a change before the whole-run rules run again.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle: Duration::from_millis(300),
        }
    }
}

/// What the watch holds: every object slim, with its per-object findings, and the
/// findings of the last whole run.
#[derive(Default)]
struct State {
    objects: Vec<Object>,
    index: HashMap<String, usize>,
    per_object: HashMap<String, Vec<Finding>>,
    whole: Vec<Finding>,
    dirty: bool,
}

impl State {
    fn apply(&mut self, name: String, kept: Option<Object>, findings: Vec<Finding>) {
        match (self.index.get(&name).copied(), kept) {
            (Some(i), Some(o)) => self.objects[i] = o,
            (None, Some(o)) => {
                self.index.insert(name.clone(), self.objects.len());
                self.objects.push(o);
            }
            (Some(_), None) | (None, None) => self.remove(&name),
        }
        self.per_object.insert(name, findings);
        self.dirty = true;
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            self.objects.swap_remove(i);
            if let Some(moved) = self.objects.get(i) {
                self.index.insert(moved.file.to_string(), i);
            }
        }
        self.per_object.remove(name);
        self.dirty = true;
    }
}

/// The watch: state, metrics, readiness.
pub struct Watch {
    engine: Engine,
    state: Mutex<State>,
    pub metrics: Metrics,
    ready: AtomicBool,
}

impl Watch {
    pub fn new(engine: Engine) -> Arc<Watch> {
        Arc::new(Watch {
            engine,
            state: Mutex::new(State::default()),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
        })
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Judges one changed object with the per-object rules.
    fn on_apply(&self, name: String, json: &str) {
        let t = Instant::now();
        let loaded = load_bytes(&name, json.as_bytes(), &Limits::default());
        let checked = self.engine.check_batch(loaded.objects);
        let kept = checked.kept.into_iter().next();
        self.state
            .lock()
            .expect("state lock")
            .apply(name, kept, checked.findings);
        self.metrics
            .reaudit_seconds
            .observe(t.elapsed().as_secs_f64());
    }

    /// Runs the whole-run rules over every kept object, then publishes every finding.
    fn conclude(&self) {
        let mut st = self.state.lock().expect("state lock");
        if !st.dirty {
            return;
        }
        st.dirty = false;
        // The whole-run rules see the per-object findings too (a stale pod is judged by
        // what its owner's rules found); what they add is the tail.
        let mut all: Vec<Finding> = st.per_object.values().flatten().cloned().collect();
        let before = all.len();
        self.engine.check_inventory(&st.objects, &mut all);
        st.whole = all.split_off(before);
        let mut counts: BTreeMap<FindingLabels, i64> = BTreeMap::new();
        for f in st
            .per_object
            .values()
            .flatten()
            .chain(&st.whole)
            .filter(|f| f.suppressed.is_none())
        {
            let key = FindingLabels {
                namespace: f.object.namespace.clone().unwrap_or_default(),
                rule: f.rule_id.to_string(),
                severity: f.severity.to_string(),
            };
            *counts.entry(key).or_default() += 1;
        }
        drop(st);
        // Series of fixed or deleted objects go away: the family is rebuilt whole.
        self.metrics.findings.clear();
        for (labels, n) in counts {
            self.metrics.findings.get_or_create(&labels).set(n);
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.metrics.last_full_audit.set(now);
    }

    /// Follows the cluster's changes until the process ends.
    pub async fn run(
        self: Arc<Self>,
        cluster: &Cluster,
        opts: Options,
    ) -> Result<(), rayward_live::LiveError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let watches = cluster.watch_each(tx).await?;
        let mut synced = 0usize;
        let mut last_change: Option<Instant> = None;
        loop {
            let wait = match last_change {
                Some(t) => opts.settle.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(change)) => {
                    match change {
                        Change::Apply(l) => self.on_apply(l.name, &l.json),
                        Change::Delete(name) => {
                            self.state.lock().expect("state lock").remove(&name)
                        }
                        Change::Synced => {
                            synced += 1;
                            if synced >= watches {
                                self.ready.store(true, Ordering::Relaxed);
                            }
                        }
                        Change::Error(_) => {
                            self.metrics.api_errors.inc();
                        }
                    }
                    last_change.get_or_insert_with(Instant::now);
                }
                Ok(None) => return Ok(()),
                Err(_) => {
                    // Quiet for `settle`: judge the whole set.
                    self.conclude();
                    last_change = None;
                }
            }
        }
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` over plain HTTP on `listener` until
/// `shutdown` completes (metrics carry no secret; put a NetworkPolicy in front).
pub async fn serve(
    watch: Arc<Watch>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use rayward_serve::endpoints::{encode, OPENMETRICS};
    let conn = rayward_serve::ConnOptions {
        name: "rayward watch",
        ..rayward_serve::ConnOptions::default()
    };
    let make = move |_peer| {
        let watch = watch.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let watch = watch.clone();
            async move {
                let (status, ctype, body) = match req.uri().path() {
                    "/metrics" => (StatusCode::OK, OPENMETRICS, encode(&watch.metrics.registry)),
                    "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
                    "/readyz" if watch.ready() => {
                        (StatusCode::OK, "text/plain", "ok\n".to_string())
                    }
                    "/readyz" => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "listing the cluster\n".to_string(),
                    ),
                    _ => (
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        "not found\n".to_string(),
                    ),
                };
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(status)
                        .header("content-type", ctype)
                        .body(Full::new(Bytes::from(body)))
                        .expect("a valid response"),
                )
            }
        })
    };
    rayward_serve::serve(listener, None, conn, make, shutdown).await;
}
