//! `rayward audit`: arguments → [`Engine::run_inputs`] → report, and the exit code.

use crate::cli::AuditArgs;
use crate::commands::output;
use crate::config::Config;
use anyhow::{Context, Result};
use rayward_live::{Cluster, ListOptions};
use rayward_manifest::terminal::escape;
use rayward_manifest::{load_bytes, Inputs, Limits};
use rayward_report::{Format, InputError, Links, Report, Style};
use rayward_rules::Engine;
use rayward_rules::{ray_service_accounts, Checked, Run};
use std::io::IsTerminal;
use std::time::Duration;

/// `--cluster`: the cluster's objects through the same engine. A kind that could not be
/// read is an input error (exit 2, like an unreadable file), naming the permission that
/// would allow it; the rest is audited.
fn live(args: &AuditArgs, engine: &Engine) -> Result<(Run, Vec<InputError>, String)> {
    let opts = ListOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        selector: args.selector.clone(),
        qps: args.qps,
        concurrency: args.concurrency,
        timeout: Duration::from_secs(args.request_timeout.max(1)),
        ..ListOptions::default()
    };
    let limits = Limits {
        max_file_bytes: args.max_file_size,
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Each page is judged as it arrives and kept only slim: the cluster is never held
    // whole as JSON.
    let mut parts = Vec::new();
    let mut count = 0;
    // Progress on stderr, and only on a terminal: a pipe or a CI log gets the report alone.
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("reading the cluster…");
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let listed = rt.block_on(async {
        let cluster = Cluster::connect(opts).await?;
        let listing = cluster
            .list_each(|page| {
                count += page.len();
                let mut objects = Vec::new();
                for o in &page {
                    let mut loaded = load_bytes(&o.name, o.json.as_bytes(), &limits);
                    objects.append(&mut loaded.objects);
                    if let Some(e) = loaded.error {
                        parts.push((Checked::default(), Some(e), 0, 0));
                    }
                }
                drop(page);
                let n = objects.len();
                parts.push((engine.check_batch(objects), None, n, 0));
                progress.set_message(format!("{count} objects read and judged"));
            })
            .await?;
        let mut listing = listing;
        // What the Ray pods' ServiceAccounts may really do: the server's own answers are
        // inputs of the run like the objects (rule RW404).
        let accounts: Vec<(String, String)> = parts
            .iter()
            .flat_map(|p| ray_service_accounts(&p.0.kept))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !accounts.is_empty() {
            progress.set_message(format!(
                "{count} objects judged; asking what {} ServiceAccount(s) may do…",
                accounts.len()
            ));
            let reviewed = cluster.review_access(&accounts).await;
            listing.requests += reviewed.requests;
            listing.unreadable.extend(reviewed.unreadable);
            count += reviewed.allowed.len();
            let mut objects = Vec::new();
            for o in &reviewed.allowed {
                objects.append(&mut load_bytes(&o.name, o.json.as_bytes(), &limits).objects);
            }
            let n = objects.len();
            parts.push((engine.check_batch(objects), None, n, 0));
        }
        Ok::<_, rayward_live::LiveError>((listing, cluster.context().to_string()))
    });
    progress.finish_and_clear();
    let (listing, context) = listed?;
    if listing.serves_no_ray_kind() {
        eprintln!(
            "rayward: note: {} serves no Ray kind (are KubeRay's CRDs installed?)",
            escape(&context)
        );
    }
    // Pages arrive in any order; the whole-run rules see them in the order of their first
    // object's name, so a run's report never depends on the network's timing.
    parts.sort_by(|a, b| {
        let first = |p: &(Checked, _, _, _)| p.0.kept.first().map(|o| o.file.clone());
        first(a).cmp(&first(b))
    });
    let run = engine.gather(parts, count);
    let errors = listing
        .unreadable
        .iter()
        .map(|u| InputError {
            file: format!("k8s://{context}: {}", u.what),
            line: 0,
            column: 0,
            message: match &u.permission {
                Some(p) => format!("cannot read: {} (needs: {p})", u.why),
                None => format!("cannot read: {}", u.why),
            },
        })
        .collect();
    Ok((run, errors, context))
}

pub fn run(args: AuditArgs) -> Result<u8> {
    let cfg = Config::resolve(args.no_config, args.config.as_deref())?;
    let fail_on = cfg.fail_on(args.fail_on.as_deref())?;
    let mut sel = cfg.selection()?;
    sel.disable.extend(args.disable.iter().cloned());
    if !args.only.is_empty() {
        sel.only = args.only.clone();
    }
    let engine = Engine::new(cfg.settings.clone(), &sel)?;
    let (run, mut errors, cluster) = if args.cluster {
        let (run, errors, context) = live(&args, &engine)?;
        (run, errors, Some(context))
    } else {
        let inputs = Inputs::new(&args.paths, &args.stdin_name, args.max_file_size);
        (engine.run_inputs(&inputs), Vec::new(), None)
    };
    errors.splice(0..0, run.errors.iter().map(InputError::from));
    let mut report = Report::new(run.findings, errors, run.inputs, run.objects);
    report.summary.cluster = cluster;
    report.ray_objects = run.ray_objects;
    report.related = run.related;
    report.rules = engine.rules().map(|r| r.meta()).collect();
    let color = output::color(args.color, args.output.as_deref());
    let format = Format::from(args.format);
    if format == Format::Html {
        // Links from the page to the files: relative to where the page is written.
        if let Ok(cwd) = std::env::current_dir() {
            let out_dir = match args.output.as_deref().and_then(|p| p.parent()) {
                Some(d) if !d.as_os_str().is_empty() => cwd.join(d),
                _ => cwd.clone(),
            };
            report.links = Some(Links { cwd, out_dir });
        }
    }
    let style = Style {
        color,
        show_suppressed: args.show_suppressed,
    };
    output::emit(&report, format, style, args.output.as_deref())?;
    Ok(output::finish(&report, format, fail_on, true))
}
