//! `rayward audit`: load inputs, run the rules, report, and choose the exit code.

use crate::cli::{AuditArgs, ColorChoice, OutputFormat};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, LoadError, Object};
use rayward_report::{render, Format, InputError, Report, Style};
use rayward_rules::{Engine, Severity};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

fn input_error(e: &LoadError) -> InputError {
    InputError {
        file: e.file.clone(),
        line: e.line,
        column: e.col,
        message: e.kind.to_string(),
    }
}

/// The `--fail-on` threshold; `None` means never fail on findings.
fn threshold(flag: Option<&str>, cfg: Option<&str>) -> Result<Option<Severity>> {
    match flag.or(cfg) {
        None => Ok(Some(Severity::Low)),
        Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
        Some(s) => match Severity::parse(s) {
            Some(v) => Ok(Some(v)),
            None => bail!("--fail-on `{s}`: expected info, low, medium, high, critical or none"),
        },
    }
}

pub fn run(args: AuditArgs) -> Result<u8> {
    let cfg = if args.no_config {
        Config::default()
    } else if let Some(p) = &args.config {
        Config::load(p)?
    } else {
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        match Config::find(&cwd) {
            Some(p) => Config::load(&p)?,
            None => Config::default(),
        }
    };
    let fail_on = threshold(args.fail_on.as_deref(), cfg.fail_on.as_deref())?;
    let mut sel = cfg.selection()?;
    sel.disable.extend(args.disable.iter().cloned());
    if !args.only.is_empty() {
        sel.only = args.only.clone();
    }
    let engine = Engine::new(cfg.settings.clone(), &sel)?;

    let limits = Limits {
        max_file_bytes: args.max_file_size,
        ..Limits::default()
    };
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let (stdin_paths, file_paths): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.into_iter().partition(|p| p.as_os_str() == "-");
    let (files, walk_errors) = expand_paths(&file_paths);
    let mut errors: Vec<InputError> = walk_errors.iter().map(input_error).collect();
    let mut objects: Vec<Object> = Vec::new();
    let mut file_count = 0;
    if !stdin_paths.is_empty() {
        let mut buf = Vec::new();
        let name = &args.stdin_name;
        // Read one byte past the limit so an oversized stream is refused, not swallowed.
        let read = std::io::stdin()
            .lock()
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut buf);
        file_count += 1;
        match read {
            Ok(_) => {
                let loaded = load_bytes(name, &buf, &limits);
                objects.extend(loaded.objects);
                errors.extend(loaded.error.as_ref().map(input_error));
            }
            Err(e) => errors.push(InputError {
                file: name.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    for f in &files {
        file_count += 1;
        let loaded = load_file(f, &limits);
        objects.extend(loaded.objects);
        errors.extend(loaded.error.as_ref().map(input_error));
    }

    let findings = engine.run(&objects);
    let report = Report::new(findings, errors, file_count, objects.len());
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
    let text = render(
        &report,
        format,
        Style {
            color,
            show_suppressed: args.show_suppressed,
        },
    );
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        }
    }
    if format != Format::Text && !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!(
                "rayward: error: {}:{}:{}: {}",
                e.file, e.line, e.column, e.message
            );
        }
    }
    if !report.errors.is_empty() {
        return Ok(2);
    }
    let failing = fail_on.is_some_and(|t| report.active().any(|f| f.severity >= t));
    Ok(u8::from(failing))
}
