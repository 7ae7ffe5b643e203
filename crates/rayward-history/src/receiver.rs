//! The collector's HTTP endpoint: `POST /v1/events` from Ray's event aggregator, and
//! `/healthz`, `/readyz`, `/metrics`.
//!
//! Ray (2.60) retries a failed POST forever, 4xx included (docs/history.md), so the
//! answer matters: a batch is answered 200 only once it is in the spool; a body that is
//! not Ray's (not a JSON array of objects with an `eventType`) gets 400 naming the line and
//! column; over `max_body` bytes gets 413 before it is read; anything but JSON gets 415;
//! a non-loopback peer gets 403 (the listener may be opened wider for `/metrics`, never
//! for events). One body is read at a time, frame by frame into a spool file, and checked
//! from there by a streaming parse, so memory stays at a frame and the events' small
//! heads, whatever `max_body` is (issue 12's 30 MB bound on the collector).

use crate::metrics::Metrics;
use crate::spool::{Kind, Spool};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use rayward_serve::endpoints::{self, Own};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The path Ray is told to POST to.
pub const EVENTS_PATH: &str = "/v1/events";

/// State the receiver shares with the collector loop.
pub struct Receiver {
    pub spool: Arc<Mutex<Spool>>,
    /// The session the collector follows (events name theirs; this is the fallback).
    pub session: Arc<Mutex<Option<String>>>,
    pub metrics: Metrics,
    pub registry: Registry,
    pub max_body: usize,
    pub permits: Semaphore,
    /// The latest exported state of each actor of the current session (crate::actors).
    pub actors: Arc<Mutex<crate::actors::ActorTable>>,
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response<Full<Bytes>> {
    let mut body = text.into();
    body.push('\n');
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static parts are valid")
}

/// Why a body could not be taken.
enum BodyError {
    TooLarge,
    Read(hyper::Error),
    Spool(std::io::Error),
}

#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct EventHead {
    #[allow(dead_code)]
    eventType: String,
    sessionName: Option<String>,
    /// Actor events are also kept in [`Receiver::actors`] (crate::actors). Taken as any
    /// JSON and read leniently after: a payload of another shape is skipped, never a
    /// reason to refuse the batch (Ray would retry it forever).
    actorLifecycleEvent: Option<serde_json::Value>,
    actorDefinitionEvent: Option<serde_json::Value>,
}

impl Receiver {
    /// Answers one request from `peer`.
    pub async fn handle(&self, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        if let Some(own) = Own::of(&path) {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return answer(StatusCode::METHOD_NOT_ALLOWED, "only GET");
            }
            return match own {
                Own::Health => answer(StatusCode::OK, endpoints::HEALTHY.trim_end()),
                Own::Metrics => Response::builder()
                    .header("content-type", endpoints::OPENMETRICS)
                    .body(Full::new(Bytes::from(endpoints::encode(&self.registry))))
                    .expect("static parts are valid"),
            };
        }
        if path != EVENTS_PATH {
            return answer(StatusCode::NOT_FOUND, "not found");
        }
        if req.method() != Method::POST {
            self.metrics.refused("method");
            let mut r = answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST a JSON array of Ray events",
            );
            r.headers_mut()
                .insert("allow", hyper::header::HeaderValue::from_static("POST"));
            return r;
        }
        if !peer.ip().is_loopback() {
            self.metrics.refused("peer");
            return answer(StatusCode::FORBIDDEN, "events are taken from loopback only");
        }
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            self.metrics.refused("content_type");
            return answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-type {ct:?}: expected application/json"),
            );
        }
        let declared = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            self.metrics.refused("size");
            return self.too_large();
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        };
        // The body goes to a spool file frame by frame and is checked from there: a batch
        // (about 1 MB per 1,000 events) is never held whole in memory.
        let tmp = self.spool.lock().expect("not poisoned").temp_path();
        let answer_removing = |status, text: String| {
            let _ = std::fs::remove_file(&tmp);
            answer(status, text)
        };
        let size = match self.body_to(req.into_body(), &tmp).await {
            Ok(n) => n,
            Err(BodyError::TooLarge) => {
                let _ = std::fs::remove_file(&tmp);
                self.metrics.refused("size");
                return self.too_large();
            }
            Err(BodyError::Read(e)) => {
                self.metrics.refused("json");
                return answer_removing(StatusCode::BAD_REQUEST, format!("reading the body: {e}"));
            }
            Err(BodyError::Spool(e)) => {
                self.metrics.refused("spool");
                return answer_removing(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot buffer: {e}"),
                );
            }
        };
        let events: Vec<EventHead> = match std::fs::File::open(&tmp)
            .map_err(serde_json::Error::io)
            .and_then(|f| serde_json::from_reader(std::io::BufReader::new(f)))
        {
            Ok(v) => v,
            Err(e) if e.is_io() => {
                self.metrics.refused("spool");
                return answer_removing(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot buffer: {e}"),
                );
            }
            Err(e) => {
                self.metrics.refused("json");
                return answer_removing(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "body is not a JSON array of Ray events (objects with an eventType): {e}"
                    ),
                );
            }
        };
        if events.is_empty() {
            let _ = std::fs::remove_file(&tmp);
            return answer(StatusCode::OK, "0 events");
        }
        let named = events[0]
            .sessionName
            .clone()
            .filter(|s| crate::layout::check_session(s).is_ok());
        let Some(session) = named.or_else(|| self.session.lock().expect("not poisoned").clone())
        else {
            self.metrics.refused("session");
            return answer_removing(
                StatusCode::SERVICE_UNAVAILABLE,
                "no Ray session found yet".into(),
            );
        };
        let count = events.len() as u64;
        let actor_events: Vec<EventHead> = events
            .into_iter()
            .filter(|e| e.actorLifecycleEvent.is_some() || e.actorDefinitionEvent.is_some())
            .collect();
        let pushed = self.spool.lock().expect("not poisoned").adopt(
            &session,
            Kind::Events { count },
            &tmp,
            size,
        );
        match pushed {
            Ok(()) => {
                if !actor_events.is_empty() {
                    let mut t = self.actors.lock().expect("not poisoned");
                    if t.session != session {
                        *t = crate::actors::ActorTable {
                            session: session.clone(),
                            ..Default::default()
                        };
                    }
                    for e in actor_events {
                        if let Some(Ok(l)) = e.actorLifecycleEvent.map(serde_json::from_value) {
                            t.lifecycle(&l);
                        }
                        if let Some(Ok(d)) = e.actorDefinitionEvent.map(serde_json::from_value) {
                            t.definition(&d);
                        }
                    }
                }
                self.metrics.events_received.inc_by(count);
                answer(StatusCode::OK, format!("{count} events"))
            }
            Err(e) => {
                self.metrics.refused("spool");
                answer_removing(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot buffer: {e}"),
                )
            }
        }
    }

    /// Writes `body` to `out` frame by frame, at most `max_body` bytes.
    async fn body_to(&self, mut body: Incoming, out: &std::path::Path) -> Result<u64, BodyError> {
        use std::io::Write;
        let file = std::fs::File::create(out).map_err(BodyError::Spool)?;
        let mut w = std::io::BufWriter::with_capacity(64 << 10, file);
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(BodyError::Read)?;
            if let Ok(data) = frame.into_data() {
                n += data.len() as u64;
                if n > self.max_body as u64 {
                    return Err(BodyError::TooLarge);
                }
                w.write_all(&data).map_err(BodyError::Spool)?;
            }
        }
        w.flush().map_err(BodyError::Spool)?;
        Ok(n)
    }

    fn too_large(&self) -> Response<Full<Bytes>> {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body over {} bytes; lower RAY_DASHBOARD_AGGREGATOR_AGENT_MAX_EVENT_SEND_BATCH_SIZE or raise --max-event-body",
                self.max_body
            ),
        )
    }
}
