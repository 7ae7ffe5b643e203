//! `rayward watch`: config → engine → rayward_watch (watch + metrics server) until SIGTERM.

use crate::cli::WatchArgs;
use crate::config::Config;
use crate::exit;
use anyhow::{Context, Result};
use rayward_live::{Cluster, ListOptions};
use rayward_rules::Engine;
use std::time::Duration;

pub fn run(args: WatchArgs) -> Result<u8> {
    let cfg = Config::resolve(args.no_config, args.config.as_deref())?;
    let engine = Engine::new(cfg.settings.clone(), &cfg.selection()?)?;
    let opts = ListOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        selector: args.selector.clone(),
        ..ListOptions::default()
    };
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
            "rayward watch: watching {} ; metrics on http://{}/metrics",
            cluster.context(),
            listener.local_addr()?
        );
        let watch = rayward_watch::Watch::new(engine);
        let server = tokio::spawn(rayward_watch::serve(
            watch.clone(),
            listener,
            rayward_serve::shutdown::signal(),
        ));
        let settle = rayward_watch::Options {
            settle: Duration::from_millis(args.settle_ms.max(1)),
        };
        tokio::select! {
            r = watch.run(&cluster, settle) => r?,
            _ = server => {}
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(exit::OK)
}
