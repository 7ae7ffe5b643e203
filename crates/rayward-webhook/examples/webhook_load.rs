//! Load generator for the webhook benchmark (`bench/webhook/run.sh`): POSTs one
//! AdmissionReview over HTTPS, on keep-alive connections opened beforehand, either at a
//! constant rate (open loop: request `i` is due at `start + i / rate` whatever the
//! previous answers did, so a slow server cannot slow the load down) or as fast as the
//! connections go (`--rate 0`, closed loop: maximum throughput).
//!
//! Prints one JSON object: requests sent, good answers (200 and a body holding
//! `--expect`), errors, achieved rate, and latency percentiles of
//! - `service_ms`: from the moment a connection starts sending until the whole answer is
//!   read;
//! - `from_due_ms` (constant rate only): from the moment the request was due, so time a
//!   request waited for a free connection counts (no coordinated omission). The
//!   scheduling thread itself wakes a little late, which this includes; `late_ms` shows
//!   by how much (due → picked up by a connection).
//!
//! Bounded: at most 120 s, 512 connections, 100,000 requests/s. Loopback only.
//!
//! ```text
//! webhook_load --addr 127.0.0.1:8443 --ca ca.crt --body review.json --rate 500 \
//!     --duration 15 --warmup 2 --conns 8 --expect '"uid":"…"'
//! ```

use rayward_webhook::client::{Client, Conn};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

struct Args {
    addr: SocketAddr,
    ca: PathBuf,
    path: String,
    body: PathBuf,
    rate: f64,
    duration: f64,
    warmup: f64,
    conns: usize,
    expect: String,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "webhook_load: {msg}\nusage: webhook_load --addr IP:PORT --ca CA.crt --body FILE \
         [--path /validate] [--rate PER_SEC|0] [--duration S] [--warmup S] [--conns N] \
         [--expect TEXT]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8443".parse().expect("literal"),
        ca: PathBuf::new(),
        path: "/validate".into(),
        body: PathBuf::new(),
        rate: 500.0,
        duration: 15.0,
        warmup: 2.0,
        conns: 8,
        expect: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{k} needs a value")));
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{k}: not a number: {v}")))
        };
        match k.as_str() {
            "--addr" => {
                a.addr = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--addr: not IP:PORT: {v}")))
            }
            "--ca" => a.ca = v.into(),
            "--path" => a.path = v,
            "--body" => a.body = v.into(),
            "--rate" => a.rate = num(&v),
            "--duration" => a.duration = num(&v),
            "--warmup" => a.warmup = num(&v),
            "--conns" => a.conns = num(&v) as usize,
            "--expect" => a.expect = v,
            _ => usage(&format!("unknown option {k}")),
        }
    }
    if !a.addr.ip().is_loopback() {
        usage("--addr must be a loopback address");
    }
    if !(0.0..=100_000.0).contains(&a.rate)
        || !(0.1..=120.0).contains(&a.duration)
        || !(0.0..=30.0).contains(&a.warmup)
        || !(1..=512).contains(&a.conns)
    {
        usage("bounds: rate 0-100000, duration 0.1-120 s, warmup 0-30 s, conns 1-512");
    }
    a
}

/// One finished request.
#[derive(Clone, Copy)]
struct Sample {
    service: Duration,
    /// From when it was due (constant rate only).
    from_due: Option<Duration>,
    late: Option<Duration>,
    ok: bool,
}

struct Shared {
    client: Client,
    path: String,
    body: Vec<u8>,
    expect: String,
}

impl Shared {
    /// Sends one review; reconnects after a failed one.
    async fn one(&self, conn: &mut Option<Conn>) -> (Duration, bool) {
        let t = Instant::now();
        let c = match conn {
            Some(c) => c,
            None => match self.client.connect().await {
                Ok(c) => conn.insert(c),
                Err(_) => return (t.elapsed(), false),
            },
        };
        match c
            .request("POST", &self.path, "application/json", self.body.clone())
            .await
        {
            Ok(a) => {
                let ok = a.status == 200 && a.text().contains(&self.expect);
                (t.elapsed(), ok)
            }
            Err(_) => {
                *conn = None;
                (t.elapsed(), false)
            }
        }
    }
}

/// Runs the load for `secs` on `conns`; returns the samples and the elapsed time.
async fn phase(
    shared: &Arc<Shared>,
    conns: &mut Vec<Option<Conn>>,
    rate: f64,
    secs: f64,
) -> (Vec<Sample>, Duration) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut workers = tokio::task::JoinSet::new();
    let jobs = if rate > 0.0 {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        // A thread of its own with `std::thread::sleep` (nanosleep, tens of µs late)
        // rather than tokio's timer (1 ms wheel, up to ~2 ms late), so the schedule
        // is kept to well under the latencies measured.
        std::thread::spawn(move || {
            for i in 0u64.. {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if due >= end {
                    break;
                }
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if tx.send(due).is_err() {
                    break;
                }
            }
        });
        Some(Arc::new(Mutex::new(rx)))
    } else {
        None
    };
    for (idx, mut conn) in conns.drain(..).enumerate() {
        let shared = shared.clone();
        let jobs = jobs.clone();
        workers.spawn(async move {
            let mut out = Vec::new();
            loop {
                let due = match &jobs {
                    Some(rx) => match rx.lock().await.recv().await {
                        Some(d) => Some(d),
                        None => break,
                    },
                    None if Instant::now() >= end => break,
                    None => None,
                };
                let picked = Instant::now();
                let (service, ok) = shared.one(&mut conn).await;
                out.push(Sample {
                    service,
                    from_due: due.map(|d| picked + service - d),
                    late: due.map(|d| picked.saturating_duration_since(d)),
                    ok,
                });
            }
            (idx, conn, out)
        });
    }
    let mut samples = Vec::new();
    let mut back = Vec::new();
    while let Some(r) = workers.join_next().await {
        let (idx, conn, out) = r.expect("a worker panicked");
        back.push((idx, conn));
        samples.extend(out);
    }
    let elapsed = start.elapsed();
    back.sort_by_key(|(i, _)| *i);
    conns.extend(back.into_iter().map(|(_, c)| c));
    (samples, elapsed)
}

fn percentiles(mut v: Vec<Duration>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort();
    let at = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    };
    serde_json::json!({
        "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999),
        "max": at(1.0),
        "mean": v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / v.len() as f64,
    })
}

fn main() {
    let a = parse_args();
    let ca =
        std::fs::read(&a.ca).unwrap_or_else(|e| usage(&format!("--ca {}: {e}", a.ca.display())));
    let body = std::fs::read(&a.body)
        .unwrap_or_else(|e| usage(&format!("--body {}: {e}", a.body.display())));
    let client = Client::new(a.addr, &ca, None).unwrap_or_else(|e| usage(&e.to_string()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        let shared = Arc::new(Shared {
            client,
            path: a.path.clone(),
            body,
            expect: a.expect.clone(),
        });
        let mut conns = Vec::with_capacity(a.conns);
        for _ in 0..a.conns {
            match shared.client.connect().await {
                Ok(c) => conns.push(Some(c)),
                Err(e) => usage(&format!("cannot connect to {}: {e}", a.addr)),
            }
        }
        if a.warmup > 0.0 {
            phase(&shared, &mut conns, a.rate, a.warmup).await;
        }
        phase(&shared, &mut conns, a.rate, a.duration).await
    });
    let (samples, elapsed) = result;
    let ok = samples.iter().filter(|s| s.ok).count();
    let out = serde_json::json!({
        "mode": if a.rate > 0.0 { "constant-rate" } else { "max-throughput" },
        "target_rate": a.rate,
        "conns": a.conns,
        "duration_s": elapsed.as_secs_f64(),
        "sent": samples.len(),
        "ok": ok,
        "errors": samples.len() - ok,
        "achieved_rps": samples.len() as f64 / elapsed.as_secs_f64(),
        "service_ms": percentiles(samples.iter().map(|s| s.service).collect()),
        "from_due_ms": percentiles(samples.iter().filter_map(|s| s.from_due).collect()),
        "late_ms": percentiles(samples.iter().filter_map(|s| s.late).collect()),
    });
    println!("{out}");
    if ok != samples.len() || samples.is_empty() {
        std::process::exit(1);
    }
}
