//! `rayward audit`: arguments → [`Engine::run_inputs`] → report, and the exit code.

use crate::cli::{AuditArgs, ColorChoice, OutputFormat};
use crate::config::Config;
use crate::exit;
use anyhow::{Context, Result};
use rayward_manifest::terminal::escape;
use rayward_manifest::Inputs;
use rayward_report::{write, Format, InputError, Report, Style};
use rayward_rules::Engine;
use std::io::{IsTerminal, Write};

pub fn run(args: AuditArgs) -> Result<u8> {
    let cfg = Config::resolve(args.no_config, args.config.as_deref())?;
    let fail_on = cfg.fail_on(args.fail_on.as_deref())?;
    let mut sel = cfg.selection()?;
    sel.disable.extend(args.disable.iter().cloned());
    if !args.only.is_empty() {
        sel.only = args.only.clone();
    }
    let engine = Engine::new(cfg.settings.clone(), &sel)?;
    let inputs = Inputs::new(&args.paths, &args.stdin_name, args.max_file_size);

    let run = engine.run_inputs(&inputs);

    let errors: Vec<InputError> = run.errors.iter().map(InputError::from).collect();
    let report = Report::new(run.findings, errors, run.inputs, run.objects);
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let format = match args.format {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
        OutputFormat::Sarif => Format::Sarif,
        OutputFormat::Junit => Format::Junit,
    };
    let style = Style {
        color,
        show_suppressed: args.show_suppressed,
    };
    match &args.output {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot write {}", p.display()))?;
            let mut w = std::io::BufWriter::new(f);
            write(&report, format, style, &mut w)
                .and_then(|_| w.flush())
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = write(&report, format, style, &mut out).and_then(|_| out.flush());
        }
    }
    if format != Format::Text && !report.errors.is_empty() {
        for e in &report.errors {
            let (file, message) = (escape(&e.file), escape(&e.message));
            eprintln!("rayward: error: {file}:{}:{}: {message}", e.line, e.column);
        }
    }
    if !report.errors.is_empty() {
        return Ok(exit::ERROR);
    }
    let failing = fail_on.is_some_and(|t| report.active().any(|f| f.severity >= t));
    Ok(if failing { exit::FINDINGS } else { exit::OK })
}
