//! `rayward probe`: targets (given or discovered) → rayward_probe::probe → audit's report.

use crate::cli::ProbeArgs;
use crate::commands::output;
use anyhow::{bail, Context, Result};
use rayward_live::{Cluster, ListOptions};
use rayward_manifest::terminal::escape;
use rayward_probe::{Options, Target};
use rayward_report::{Format, InputError, Report, Style};
use rayward_rules::{ObjectRef, Severity};
use std::time::Duration;

/// The Ray heads of the cluster as targets, and what could not be listed.
fn discover(
    args: &ProbeArgs,
    rt: &tokio::runtime::Runtime,
) -> Result<(Vec<Target>, Vec<InputError>)> {
    let opts = ListOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        ..ListOptions::default()
    };
    let (heads, unreadable, context) = rt.block_on(async {
        let cluster = Cluster::connect(opts).await?;
        let (heads, unreadable) = cluster.ray_heads().await?;
        Ok::<_, rayward_live::LiveError>((heads, unreadable, cluster.context().to_string()))
    })?;
    let mut targets = Vec::new();
    for h in heads {
        let owner = ObjectRef {
            api_version: "v1".into(),
            kind: h.kind.into(),
            namespace: Some(h.namespace.clone()),
            name: h.name.clone(),
        };
        let ports: Vec<Option<u16>> = if h.ports.is_empty() {
            vec![None]
        } else {
            h.ports.iter().copied().map(Some).collect()
        };
        for port in ports {
            targets.push(Target {
                host: h.address.clone(),
                port,
                owner: Some(owner.clone()),
            });
        }
    }
    let errors = unreadable
        .into_iter()
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
    Ok((targets, errors))
}

pub fn run(args: ProbeArgs) -> Result<u8> {
    let fail_on = if args.fail_on.eq_ignore_ascii_case("none") {
        None
    } else {
        match Severity::parse(&args.fail_on) {
            Some(s) => Some(s),
            None => bail!(
                "--fail-on `{}`: expected info, low, medium, high, critical or none",
                args.fail_on
            ),
        }
    };
    if !(args.timeout > 0.0 && args.timeout <= 300.0) {
        bail!(
            "--timeout {}: expected seconds between 0 and 300",
            args.timeout
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (targets, mut errors) = if args.cluster {
        discover(&args, &rt)?
    } else {
        let mut targets = Vec::new();
        for t in &args.targets {
            targets.push(Target::parse(t).map_err(anyhow::Error::msg)?);
        }
        (targets, Vec::new())
    };
    if args.cluster && targets.is_empty() {
        eprintln!("rayward: note: no Ray head Service or Pod found");
    }
    let opts = Options {
        timeout: Duration::from_secs_f64(args.timeout),
        concurrency: args.concurrency.max(1),
    };
    let outcome = rt.block_on(rayward_probe::probe(&targets, opts));
    for (endpoint, what) in &outcome.notes {
        eprintln!("rayward: probe: {}: {}", escape(endpoint), escape(what));
    }
    errors.extend(outcome.errors.iter().map(|(t, why)| InputError {
        file: t.clone(),
        line: 0,
        column: 0,
        message: why.clone(),
    }));
    // Files: the targets; objects: the ports that answered.
    let report = Report::new(outcome.findings, errors, targets.len(), outcome.answered);
    let format = Format::from(args.format);
    let style = Style {
        color: output::color(args.color, args.output.as_deref()),
        show_suppressed: false,
    };
    output::emit(&report, format, style, args.output.as_deref())?;
    Ok(output::finish(&report, format, fail_on, false))
}
