//! `rayward audit`: load inputs, run the rules, report, and choose the exit code.

use crate::cli::{AuditArgs, ColorChoice, OutputFormat};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use rayward_manifest::terminal::escape;
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, LoadError, Loaded, Object};
use rayward_report::{write, Format, InputError, Report, Style};
use rayward_rules::{Engine, Finding, Severity};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
    let mut findings = Vec::new();
    // Objects kept (slim) for the whole-run rules, in input order.
    let mut kept: Vec<Object> = Vec::new();
    let mut object_count = 0;
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
                let mut r = check_loaded(&engine, loaded);
                object_count += r.objects;
                findings.append(&mut r.findings);
                kept.append(&mut r.kept);
                errors.extend(r.error);
            }
            Err(e) => errors.push(InputError {
                file: name.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    file_count += files.len();
    for mut r in check_files(&engine, &files, &limits) {
        object_count += r.objects;
        findings.append(&mut r.findings);
        kept.append(&mut r.kept);
        errors.extend(r.error);
    }
    engine.check_inventory(&kept, &mut findings);
    drop(kept);
    rayward_rules::engine::finish(&mut findings);

    let report = Report::new(findings, errors, file_count, object_count);
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
        return Ok(2);
    }
    let failing = fail_on.is_some_and(|t| report.active().any(|f| f.severity >= t));
    Ok(u8::from(failing))
}

/// What one input gave after the per-object rules ran.
struct Checked {
    findings: Vec<Finding>,
    kept: Vec<Object>,
    objects: usize,
    error: Option<InputError>,
}

fn check_loaded(engine: &Engine, loaded: Loaded) -> Checked {
    let mut findings = Vec::new();
    engine.check_objects(&loaded.objects, &mut findings);
    let objects = loaded.objects.len();
    let kept = loaded
        .objects
        .into_iter()
        .map(|mut o| {
            o.slim();
            o
        })
        .collect();
    Checked {
        findings,
        kept,
        objects,
        error: loaded.error.as_ref().map(input_error),
    }
}

/// Loads and checks files on every core; results come back in input order, so the
/// whole-run rules see objects in the same order whatever the thread timing.
fn check_files(engine: &Engine, files: &[PathBuf], limits: &Limits) -> Vec<Checked> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1))
        .min(16);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Checked>>> = files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let checked = check_loaded(engine, load_file(f, limits));
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(checked);
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}
