//! Parsing throughput, fast path against saphyr, on one file:
//!
//! ```text
//! cargo run --release -p rayward-manifest --example parse_speed -- FILE [fast|saphyr|both] [SECONDS|Nx]
//! ```
//!
//! `Nx` (e.g. `200x`) runs exactly N times instead of for a time, for `perf stat` counts.
//!
//! Rates are per CPU second of this thread (from `/proc/thread-self/schedstat` on Linux, wall
//! time elsewhere), so a busy machine skews them less. `perf stat -e task-clock` around a
//! single mode gives an independent figure.

use rayward_manifest::fast::parse_fast;
use rayward_manifest::load::{parse_documents_saphyr, Limits};
use std::time::Instant;

/// CPU time of this thread in seconds, or wall time if the kernel does not say.
fn cpu_seconds(start: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| start.elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

fn measure(name: &str, text: &str, seconds: f64, runs_wanted: u32, f: &dyn Fn(&str) -> usize) {
    let docs = f(text); // warm up, and the document count
    let wall = Instant::now();
    let cpu0 = cpu_seconds(wall);
    let mut runs = 0u32;
    loop {
        std::hint::black_box(f(std::hint::black_box(text)));
        runs += 1;
        if runs == runs_wanted || (runs_wanted == 0 && wall.elapsed().as_secs_f64() >= seconds) {
            break;
        }
    }
    let cpu = cpu_seconds(wall) - cpu0;
    let wall = wall.elapsed().as_secs_f64();
    let mb = text.len() as f64 * f64::from(runs) / 1e6;
    println!(
        "{name:>7}: {docs} documents, {runs} runs, {:.1} MB/s per CPU second ({:.1} MB/s wall), {:.2} ms per run",
        mb / cpu,
        mb / wall,
        cpu * 1e3 / f64::from(runs),
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parse_speed FILE [fast|saphyr|both] [SECONDS|Nx]");
        std::process::exit(2);
    };
    let mode = args.next().unwrap_or_else(|| "both".into());
    let amount = args.next().unwrap_or_else(|| "3".into());
    let (seconds, runs): (f64, u32) = match amount.strip_suffix('x') {
        Some(n) => (0.0, n.parse().expect("Nx")),
        None => (amount.parse().expect("SECONDS"), 0),
    };
    let text = std::fs::read_to_string(&path).expect("readable UTF-8 file");
    let limits = Limits::default();
    println!(
        "{path}: {:.1} MB, {} lines",
        text.len() as f64 / 1e6,
        text.lines().count()
    );
    let fast = |t: &str| match parse_fast(t, &limits) {
        Some(d) => d.len(),
        None => {
            eprintln!("the fast path does not take this file");
            std::process::exit(1);
        }
    };
    let saphyr = |t: &str| parse_documents_saphyr("f", t, &limits).map_or(0, |d| d.len());
    if mode == "fast" || mode == "both" {
        measure("fast", &text, seconds, runs, &fast);
    }
    if mode == "saphyr" || mode == "both" {
        measure("saphyr", &text, seconds, runs, &saphyr);
    }
}
