//! `rayward history`: arguments → rayward_history.

use crate::cli::{HistoryArgs, HistoryCollectArgs, HistoryCommand};
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
        HistoryCommand::Collect(a) => collect(a),
    }
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
    let creds = match &a.credentials_file {
        Some(p) => store::read_credentials(p)?,
        None => vec![],
    };
    let store = Store::open(&a.store, &creds)?;
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
        final_flush: seconds("--final-flush", a.final_flush)?,
        logs: rayward_history::logs::Policy {
            round_budget: a.log_round_mib << 20,
            ..Default::default()
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
