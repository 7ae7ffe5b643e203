//! `rayward harden`: load inputs like audit, rewrite the Ray objects, write the bundle
//! (stdout, `-o DIR`, or `--diff`), report what is left unfixed, choose the exit code.

use crate::cli::HardenArgs;
use crate::config::Config;
use anyhow::{bail, Context, Result};
use rayward_harden::companions::COMPANIONS_FILE;
use rayward_harden::diff::object_diff;
use rayward_harden::{harden_bundle, Options, Source};
use rayward_manifest::emit::to_yaml_stream;
use rayward_manifest::terminal::escape;
use rayward_manifest::{expand_paths, load_bytes, load_file, Limits, LoadError, Object};
use rayward_report::{write, Format, InputError, Report, Style};
use rayward_rules::util::quantity;
use rayward_rules::Severity;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// Options from flags, then the config's `[harden]`, then the defaults.
fn options(args: &HardenArgs, cfg: &Config) -> Result<Options> {
    let h = &cfg.harden;
    let mut o = Options {
        settings: cfg.settings.clone(),
        safe_only: args.safe_only,
        gateway: args.gateway || h.gateway.unwrap_or(false),
        ..Options::default()
    };
    let namespace = args.namespace.clone().or_else(|| h.namespace.clone());
    if let Some(ns) = &namespace {
        if !rayward_manifest::names::is_dns_label(ns) {
            bail!("--namespace `{ns}`: not a valid namespace name (lowercase letters, digits and `-`, at most 63)");
        }
    }
    o.fix.namespace = namespace;
    let sources = if args.dashboard_from.is_empty() {
        &h.dashboard_from
    } else {
        &args.dashboard_from
    };
    for s in sources {
        o.dashboard_from
            .push(Source::parse(s).map_err(|e| anyhow::anyhow!("--dashboard-from: {e}"))?);
    }
    let egress = if args.egress_to.is_empty() {
        &h.egress_to
    } else {
        &args.egress_to
    };
    for c in egress {
        o.egress_to.push(
            rayward_harden::options::parse_cidr(c)
                .map_err(|_| anyhow::anyhow!("--egress-to `{c}`: not a CIDR (10.0.0.0/8)"))?,
        );
    }
    if let Some(s) = args.ca_secret.clone().or_else(|| h.ca_secret.clone()) {
        o.fix.ca_secret = s;
    }
    if let Some(s) = args.cert_image.clone().or_else(|| h.cert_image.clone()) {
        if s.trim().is_empty() || s.contains(char::is_whitespace) {
            bail!("--cert-image `{s}`: not an image reference");
        }
        o.fix.cert_image = s;
    }
    for (flag, given, slot) in [
        (
            "--default-cpu",
            args.default_cpu.clone().or_else(|| h.default_cpu.clone()),
            &mut o.fix.default_cpu,
        ),
        (
            "--default-memory",
            args.default_memory
                .clone()
                .or_else(|| h.default_memory.clone()),
            &mut o.fix.default_memory,
        ),
    ] {
        if let Some(q) = given {
            if quantity::parse(&q).is_none_or(|v| v <= 0.0) {
                bail!("{flag} `{q}`: not a positive Kubernetes quantity (e.g. 500m, 2, 4Gi)");
            }
            *slot = q;
        }
    }
    Ok(o)
}

fn input_error(e: &LoadError) -> InputError {
    InputError {
        file: e.file.clone(),
        line: e.line,
        column: e.col,
        message: e.kind.to_string(),
    }
}

pub fn run(args: HardenArgs) -> Result<u8> {
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
    let opts = options(&args, &cfg)?;
    let limits = Limits {
        max_file_bytes: args.max_file_size,
        ..Limits::default()
    };

    // Inputs, with the name each gets under -o.
    let mut errors: Vec<InputError> = Vec::new();
    let mut objects: Vec<Object> = Vec::new();
    let mut out_names: HashMap<String, PathBuf> = HashMap::new();
    let mut skipped = 0;
    let mut file_count = 0;
    for p in &args.paths {
        if p.as_os_str() == "-" {
            let mut buf = Vec::new();
            let read = std::io::stdin()
                .lock()
                .take(limits.max_file_bytes + 1)
                .read_to_end(&mut buf);
            file_count += 1;
            let name = args.stdin_name.clone();
            match read {
                Ok(_) => {
                    let mut l = load_bytes(&name, &buf, &limits);
                    errors.extend(l.error.as_ref().map(input_error));
                    skipped += l.skipped_documents;
                    if looks_like_json(&buf) {
                        plain_strings(&mut l.objects);
                    }
                    objects.extend(l.objects);
                }
                Err(e) => errors.push(InputError {
                    file: name.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
            out_names.insert(name.clone(), PathBuf::from(&name));
            continue;
        }
        let (files, walk_errors) = expand_paths(std::slice::from_ref(p));
        errors.extend(walk_errors.iter().map(input_error));
        for f in files {
            file_count += 1;
            let mut l = load_file(&f, &limits);
            errors.extend(l.error.as_ref().map(input_error));
            skipped += l.skipped_documents;
            if f.extension().is_some_and(|e| e == "json") {
                plain_strings(&mut l.objects);
            }
            objects.extend(l.objects);
            let rel = if p.is_dir() {
                f.strip_prefix(p)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| f.clone())
            } else {
                PathBuf::from(f.file_name().unwrap_or(f.as_os_str()))
            };
            out_names.insert(f.display().to_string(), rel);
        }
    }
    if !errors.is_empty() {
        // Half a bundle applied is worse than none: nothing is written.
        for e in &errors {
            // `file: message` for an error of the whole file (line 0), as audit writes it.
            let (file, message) = (escape(&e.file), escape(&e.message));
            if e.line == 0 {
                eprintln!("rayward: error: {file}: {message}");
            } else {
                eprintln!("rayward: error: {file}:{}:{}: {message}", e.line, e.column);
            }
        }
        eprintln!("rayward: nothing written: fix the input errors above");
        return Ok(2);
    }

    let bundle = harden_bundle(&objects, &opts);

    if args.diff {
        let before: HashMap<(String, usize, String), &Object> = objects
            .iter()
            .map(|o| ((o.file.to_string(), o.doc, o.doc_path.to_string()), o))
            .collect();
        let mut text = String::new();
        for f in &bundle.files {
            for o in &f.objects {
                let key = (o.file.to_string(), o.doc, o.doc_path.to_string());
                text.push_str(&object_diff(before.get(&key).copied(), o));
            }
        }
        for c in &bundle.companions {
            text.push_str(&object_diff(None, c));
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    }
    match &args.output {
        Some(dir) => {
            // Every path is decided, and checked, before anything is written.
            let mut planned: Vec<(PathBuf, String)> = Vec::new();
            for f in &bundle.files {
                let rel = out_names
                    .get(&f.file)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(&f.file));
                // The output is YAML whatever the input was.
                let rel = if rel.extension().is_some_and(|e| e == "json") {
                    rel.with_extension("yaml")
                } else {
                    rel
                };
                planned.push((rel, to_yaml_stream(f.objects.iter().map(|o| &o.root))));
            }
            let companions = companions_name(planned.iter().map(|(r, _)| r.as_path()));
            if companions != Path::new(COMPANIONS_FILE) {
                eprintln!(
                    "rayward: an input is named {COMPANIONS_FILE}: the companion objects go to {}",
                    escape(&companions.display().to_string())
                );
            }
            if !bundle.companions.is_empty() {
                planned.push((
                    companions,
                    to_yaml_stream(bundle.companions.iter().map(|o| &o.root)),
                ));
            }
            if let Err(why) = check_outputs(dir, planned.iter().map(|(r, _)| r.as_path())) {
                eprintln!("rayward: error: {}", escape(&why));
                eprintln!("rayward: nothing written");
                return Ok(2);
            }
            for (rel, text) in &planned {
                write_file(&dir.join(rel), text)?;
            }
        }
        None if !args.diff => {
            let text = to_yaml_stream(bundle.objects().map(|o| &o.root));
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        }
        None => {}
    }

    let ray = objects.iter().filter(|o| o.kind.is_ray()).count();
    eprintln!(
        "rayward: hardened {ray} Ray object(s) of {} in {file_count} file(s): {} change(s), {} companion object(s); {} finding(s) left that harden does not fix",
        objects.len(),
        bundle.changes.len(),
        bundle.companions.len(),
        bundle.unfixed.len()
    );
    if skipped > 0 {
        eprintln!("rayward: note: {skipped} document(s) that are not Kubernetes objects (no apiVersion/kind) are not in the output");
    }
    if !bundle.unfixed.is_empty() {
        let report = Report::new(
            bundle.unfixed.clone(),
            Vec::new(),
            file_count,
            objects.len(),
        );
        let mut err = std::io::stderr().lock();
        let style = Style {
            color: false,
            show_suppressed: false,
        };
        let _ = write(&report, Format::Text, style, &mut err);
    }
    let failing = fail_on.is_some_and(|t| bundle.unfixed.iter().any(|f| f.severity >= t));
    Ok(u8::from(failing))
}

/// JSON quotes every string; written as YAML they read better plain where that keeps
/// them strings.
fn plain_strings(objects: &mut [Object]) {
    for o in objects {
        o.root.prefer_plain();
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

/// Where the companions go: `companions.yaml`, or `companions-N.yaml` when an input's own
/// output already has that name (a user's file is never overwritten).
fn companions_name<'a>(taken: impl Iterator<Item = &'a Path>) -> PathBuf {
    let taken: Vec<&Path> = taken.collect();
    let stem = COMPANIONS_FILE.trim_end_matches(".yaml");
    std::iter::once(PathBuf::from(COMPANIONS_FILE))
        .chain((1..).map(|n| PathBuf::from(format!("{stem}-{n}.yaml"))))
        .find(|c| !taken.contains(&c.as_path()))
        .expect("an unbounded sequence has a free name")
}

/// Every output must stay inside `dir`: a relative path of plain components (no `..`, no
/// root, as `--stdin-name ../x.yaml` or `/etc/x` would give), through no symbolic link
/// that already exists under `dir`, and no two outputs may share a path.
fn check_outputs<'a>(dir: &Path, rels: impl Iterator<Item = &'a Path>) -> Result<(), String> {
    use std::path::Component;
    let mut seen = std::collections::HashSet::new();
    for rel in rels {
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "output path {} would leave {} (an input name with `..`, a root or nothing): \
                 name the input differently (--stdin-name)",
                rel.display(),
                dir.display()
            ));
        }
        if !seen.insert(rel.to_path_buf()) {
            return Err(format!(
                "two inputs would be written to {}: rename one",
                dir.join(rel).display()
            ));
        }
        let mut at = dir.to_path_buf();
        for c in rel.components() {
            at.push(c);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(format!(
                    "{} is a symbolic link: harden does not write through links in -o",
                    at.display()
                ));
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
