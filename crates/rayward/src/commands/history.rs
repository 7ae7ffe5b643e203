//! `rayward history`: arguments → rayward_history.

use crate::cli::{
    HistoryArgs, HistoryCollectArgs, HistoryCommand, HistoryFormat, HistoryGcArgs, HistoryLsArgs,
    HistoryServeArgs,
};
use crate::exit;
use anyhow::{bail, Context, Result};
use rayward_history::collect::{self, Config};
use rayward_history::index::Role;
use rayward_history::layout::{self, ClusterRef, Kind};
use rayward_history::snapshot::{self, Dashboard};
use rayward_history::store::{self, Store};
use std::time::Duration;

pub fn run(args: HistoryArgs) -> Result<u8> {
    match args.command {
        HistoryCommand::Collect(a) => collect(*a),
        HistoryCommand::Ls(a) => ls(a),
        HistoryCommand::Serve(a) => serve(a),
        HistoryCommand::Gc(a) => gc(a),
    }
}

fn serve(a: HistoryServeArgs) -> Result<u8> {
    use rayward_history::serve::{config::ServeConfig, Server};
    // Validated before any thread starts, so a bad config fails fast with file:line.
    let cfg = ServeConfig::load(&a.config)?;
    // Store reads of a local directory run on blocking threads; a few are enough, and
    // each idle one keeps its allocator pages until it exits.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let server = Server::bind(&cfg).await.map_err(anyhow::Error::msg)?;
        eprintln!(
            "rayward history serve: admin (health, metrics) on http://{}",
            server.admin_addr()?
        );
        eprintln!(
            "rayward history serve: listening on {}{} (store {})",
            if cfg.tls.is_some() {
                "https://"
            } else {
                "http://"
            },
            server.local_addr()?,
            store::redact(&cfg.store)
        );
        server.serve_until(rayward_serve::shutdown::signal()).await;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

use rayward_history::catalog::utc;

/// The store's credentials from `--credentials-file`, none without it (workload identity).
fn credentials(file: Option<&std::path::Path>) -> Result<Vec<(String, String)>> {
    Ok(match file {
        Some(p) => store::read_credentials(p)?,
        None => vec![],
    })
}

/// The store `ls` and `gc` work on, with the one-thread runtime their single pass needs.
fn open_store(
    url: &str,
    credentials_file: Option<&std::path::Path>,
) -> Result<(Store, tokio::runtime::Runtime)> {
    let store = Store::open(url, &credentials(credentials_file)?)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((store, rt))
}

fn ls(a: HistoryLsArgs) -> Result<u8> {
    for ns in &a.namespaces {
        layout::check_namespace(ns)?;
    }
    let (store, rt) = open_store(&a.store, a.credentials_file.as_deref())?;
    let only = (!a.namespaces.is_empty()).then_some(a.namespaces.as_slice());
    let cat = rt
        .block_on(rayward_history::catalog::list(&store, only))
        .with_context(|| format!("store {}", store.url()))?;
    let mut out = String::new();
    match a.format {
        HistoryFormat::Json => {
            out = serde_json::to_string_pretty(&cat)?;
            out.push('\n');
        }
        HistoryFormat::Text => {
            use std::fmt::Write;
            for s in &cat.sessions {
                let jobs: Vec<String> = s
                    .jobs
                    .iter()
                    .map(|j| format!("{}={}", j.submission_id, j.status))
                    .collect();
                let _ = writeln!(
                    out,
                    "{}/{}/{}/{}  nodes={}  started={}  {}={}  jobs: {}",
                    s.namespace,
                    s.kind,
                    s.name,
                    s.session,
                    s.nodes.len(),
                    utc(s.started),
                    if s.finished { "ended" } else { "updated" },
                    utc(s.updated),
                    if jobs.is_empty() {
                        "-".to_string()
                    } else {
                        jobs.join(" ")
                    }
                );
            }
        }
    }
    // Job ids and states come from the dashboard's answers: escaped for the terminal.
    match a.format {
        HistoryFormat::Json => print!("{out}"),
        HistoryFormat::Text => print!("{}", rayward_manifest::terminal::escape_keep_lines(&out)),
    }
    for p in &cat.problems {
        eprintln!(
            "rayward history ls: {}: {}",
            rayward_manifest::terminal::escape_keep_lines(&p.key),
            rayward_manifest::terminal::escape_keep_lines(&p.error)
        );
    }
    Ok(if cat.problems.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}

/// `1234567` bytes as `1.2 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn gc(a: HistoryGcArgs) -> Result<u8> {
    use rayward_history::retention::{self, Section};
    let r = Section {
        max_age: a.max_age,
        max_sessions_per_cluster: a.max_sessions_per_cluster,
        max_total_bytes: a.max_total_bytes,
        interval: None,
        grace: Some(a.grace),
    }
    .check()
    .map_err(|e| match e {
        // The settings by their flag names.
        retention::PolicyError::Bad { what, value, why } => anyhow::anyhow!(
            "--{} {value:?}: {why}",
            what.trim_start_matches("retention.").replace('_', "-")
        ),
        e => e.into(),
    })?;
    let (store, rt) = open_store(&a.store, a.credentials_file.as_deref())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let report = rt
        .block_on(retention::apply(&store, &r.policy, now, a.dry_run))
        .with_context(|| format!("store {}", store.url()))?;
    let out = match a.format {
        HistoryFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
        HistoryFormat::Text => {
            use std::fmt::Write;
            let mut out = String::new();
            let verb = if a.dry_run { "would delete" } else { "deleted" };
            for d in &report.sessions {
                let what = match d.reason {
                    retention::Reason::Kept => "kept".to_string(),
                    retention::Reason::BeingWritten => "kept (being written)".to_string(),
                    r => format!(
                        "{verb} ({})",
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                };
                let _ = writeln!(
                    out,
                    "{}/{}/{}/{}  {}  updated={}  {what}",
                    d.namespace,
                    d.kind,
                    d.name,
                    d.session,
                    human(d.bytes),
                    utc(d.updated)
                );
            }
            let _ = writeln!(
                out,
                "{} of {} session(s) {verb}: {} of {}",
                report.deleted_sessions,
                report.sessions.len(),
                human(report.deleted_bytes),
                human(report.total_bytes)
            );
            if report.over_total_bytes {
                let _ = writeln!(
                    out,
                    "still over --max-total-bytes: the rest is sessions being written"
                );
            }
            out
        }
    };
    print!("{out}");
    for p in &report.problems {
        eprintln!(
            "rayward history gc: {}: {}",
            rayward_manifest::terminal::escape_keep_lines(&p.key),
            rayward_manifest::terminal::escape_keep_lines(&p.error)
        );
    }
    Ok(if report.problems.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn seconds(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        bail!("{name} {v}: expected seconds between 0 and 86400");
    }
    Ok(Duration::from_secs_f64(v))
}

fn collect(a: HistoryCollectArgs) -> Result<u8> {
    let kind = Kind::parse(&a.kind)?;
    let cluster = ClusterRef::new(&a.namespace, kind, &a.name)?;
    layout::check_node(&a.node)?;
    let store = Store::open(&a.store, &credentials(a.credentials_file.as_deref())?)?;
    let dashboard = if a.head {
        let token = snapshot::token_from_env().context("reading RAY_AUTH_TOKEN_PATH")?;
        Some(Dashboard::new(&a.dashboard, token)?)
    } else {
        None
    };
    if a.log_round_mib == 0
        || a.spool_mib == 0
        || a.max_event_body_mib == 0
        || a.max_event_body_mib > a.spool_mib
    {
        bail!(
            "--log-round-mib {}, --spool-mib {} and --max-event-body-mib {}: all above 0, the body at most the spool",
            a.log_round_mib,
            a.spool_mib,
            a.max_event_body_mib
        );
    }
    let cfg = Config {
        store,
        cluster,
        node: a.node,
        role: if a.head { Role::Head } else { Role::Worker },
        ray_dir: a.ray_dir,
        listen: a.listen,
        dashboard,
        spool_dir: a.spool_dir,
        spool_max: a.spool_mib << 20,
        max_event_body: (a.max_event_body_mib << 20) as usize,
        tick: seconds("--interval", a.interval)?,
        snapshot_every: seconds("--snapshot-interval", a.snapshot_interval)?,
        index_every: seconds("--index-interval", a.index_interval)?,
        final_flush: seconds("--final-flush", a.final_flush)?,
        logs: rayward_history::logs::Policy {
            round_budget: a.log_round_mib << 20,
            ..Default::default()
        },
    };
    // A sidecar beside every Ray pod: one thread for the loop, the receiver and the
    // uploads, and at most two for the file reads object_store runs on blocking threads.
    // Measured at 100 tasks/s (docs/benchmarks.md): peak RSS 54.3 -> 43.2 MB against a
    // multi-threaded runtime with one worker and the default blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    eprintln!(
        "rayward history collect: {} → {}; events on http://{}/v1/events",
        cfg.ray_dir.display(),
        cfg.store.url(),
        cfg.listen
    );
    let summary = rt.block_on(collect::run(cfg, rayward_serve::shutdown::signal()))?;
    eprintln!(
        "rayward history collect: stopped; {} session(s), final flush {}",
        summary.sessions,
        if summary.flushed {
            "complete"
        } else {
            "incomplete"
        }
    );
    Ok(if summary.flushed {
        exit::OK
    } else {
        exit::ERROR
    })
}
