//! `rayward watch`: config → engine → rayward_watch (watch, Events, Lease, metrics server)
//! until SIGTERM.

use crate::cli::WatchArgs;
use crate::config::Config;
use crate::exit;
use anyhow::{bail, Context, Result};
use rayward_live::{Cluster, ListOptions};
use rayward_rules::{Engine, Severity};
use std::time::Duration;

pub fn run(args: WatchArgs) -> Result<u8> {
    let cfg = Config::resolve(args.no_config, args.config.as_deref())?;
    let engine = Engine::new(cfg.settings.clone(), &cfg.selection()?)?;
    let Some(floor) = Severity::parse(&args.event_severity) else {
        bail!(
            "--event-severity {}: expected info, low, medium, high or critical",
            args.event_severity
        );
    };
    if !(args.event_rate.is_finite() && args.event_rate > 0.0) {
        bail!("--event-rate must be a positive number");
    }
    if args.lease_duration_seconds < 2 {
        bail!("--lease-duration-seconds must be at least 2");
    }
    let opts = ListOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        selector: args.selector.clone(),
        ..ListOptions::default()
    };
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let cluster = Cluster::connect(opts).await?;
        eprintln!(
            "rayward watch: watching {} as {identity}; metrics on http://{}/metrics",
            cluster.context(),
            listener.local_addr()?
        );
        let watch = rayward_watch::Watch::with_events(engine, (!args.no_events).then_some(floor));
        let server = tokio::spawn(rayward_watch::serve(
            watch.clone(),
            listener,
            rayward_serve::shutdown::signal(),
        ));
        // Who may write Events: the Lease holder, or this process alone.
        let (leader_tx, leader_rx) = tokio::sync::watch::channel(!args.leader_elect);
        let lease = args
            .leader_elect
            .then(|| rayward_watch::lease::LeaseOptions {
                namespace: args
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(|| cluster.default_namespace().to_string()),
                name: args.lease_name.clone(),
                identity: identity.clone(),
                duration: Duration::from_secs(args.lease_duration_seconds),
            });
        // Without election the sender stays here, so the announcer runs until the end.
        let mut _always_leader = None;
        match &lease {
            Some(l) => {
                tokio::spawn(rayward_watch::lease::elect(
                    cluster.client(),
                    l.clone(),
                    leader_tx,
                    watch.metrics.api_errors_counter(),
                ));
            }
            None => _always_leader = Some(leader_tx),
        }
        let announcer = (!args.no_events).then(|| {
            let events = rayward_watch::EventOptions {
                min_severity: floor,
                per_second: args.event_rate,
                burst: args.event_burst.max(1),
                repeat: Duration::from_secs(args.event_repeat_minutes.max(1) * 60),
                identity: identity.clone(),
                namespaces: (!args.all_namespaces).then(|| {
                    if args.namespaces.is_empty() {
                        vec![cluster.default_namespace().to_string()]
                    } else {
                        args.namespaces.clone()
                    }
                }),
            };
            watch.clone().announce(&cluster, events, leader_rx)
        });
        let settle = rayward_watch::Options {
            settle: Duration::from_millis(args.settle_ms.max(1)),
        };
        let announce = async {
            match announcer {
                Some(a) => a.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = watch.clone().run(&cluster, settle) => r?,
            _ = announce => {}
            _ = server => {}
        }
        // Stopped (SIGTERM): hand the Lease over at once rather than after it runs out.
        if let Some(l) = &lease {
            rayward_watch::lease::release(cluster.client(), l).await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(exit::OK)
}

/// `$POD_NAME` (the Deployment sets it from the downward API), else `host-pid`.
fn default_identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME") {
        if !p.is_empty() {
            return p;
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "rayward-watch".into());
    format!("{host}-{}", std::process::id())
}
