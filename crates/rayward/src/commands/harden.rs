//! `rayward harden`: load inputs like audit, rewrite the Ray objects, write the bundle
//! (stdout, `-o DIR`, or `--diff`), report what is left unfixed, choose the exit code.

use crate::cli::HardenArgs;
use crate::config::Config;
use crate::exit;
use anyhow::{bail, Context, Result};
use rayward_harden::companions::COMPANIONS_FILE;
use rayward_harden::diff::write_object_diff;
use rayward_harden::{harden_stream, Options, Source};
use rayward_manifest::emit::{to_yaml_stream, write_yaml};
use rayward_manifest::quantity;
use rayward_manifest::terminal::escape;
use rayward_manifest::{par, Input, Inputs, Node, Object};
use rayward_report::{write, Format, Report, Style};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    if let Some(w) = &args.workload_identity {
        o.workload_identity = Some(rayward_harden::workload_identity::WorkloadIdentity::parse(
            w,
        )?);
    }
    if let Some(store) = &args.history {
        o.history = Some(rayward_harden::history::History::new(
            store,
            args.history_credentials_secret.as_deref(),
        )?);
    }
    Ok(o)
}

pub fn run(args: HardenArgs) -> Result<u8> {
    let cfg = Config::resolve(args.no_config, args.config.as_deref())?;
    let fail_on = cfg.fail_on(args.fail_on.as_deref())?;
    let opts = options(&args, &cfg)?;
    let inputs = Inputs::new(&args.paths, &args.stdin_name, args.max_file_size);

    // Every input is read before anything is written.
    let (list, mut errors) = inputs.resolve();
    let loaded = par::map(&list, |i| inputs.load(i));
    let mut objects: Vec<Object> = Vec::new();
    let mut skipped = 0;
    for mut l in loaded {
        errors.extend(l.error.take());
        skipped += l.skipped_documents;
        if l.json {
            plain_strings(&mut l.objects);
        }
        objects.append(&mut l.objects);
    }
    if !errors.is_empty() {
        // Half a bundle applied is worse than none: nothing is written.
        for e in &errors {
            // `file: message` for an error of the whole file (line 0), as audit writes it.
            let message = e.kind.to_string();
            let (file, message) = (escape(&e.file), escape(&message));
            if e.line == 0 {
                eprintln!("rayward: error: {file}: {message}");
            } else {
                eprintln!("rayward: error: {file}:{}:{}: {message}", e.line, e.col);
            }
        }
        eprintln!("rayward: nothing written: fix the input errors above");
        return Ok(exit::ERROR);
    }

    // Under -o, every path is decided, and checked, before anything is written.
    let plan = match &args.output {
        Some(dir) => match Plan::new(dir, &list, &objects) {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("rayward: error: {}", escape(&why));
                eprintln!("rayward: nothing written");
                return Ok(exit::ERROR);
            }
        },
        None => None,
    };
    let stdout_yaml = args.output.is_none() && !args.diff;
    let mut out = Out {
        stdout: std::io::BufWriter::new(std::io::stdout().lock()),
        stdout_docs: 0,
        plan,
        failed: None,
    };

    let count = objects.len();
    let ray = objects.iter().filter(|o| o.kind.is_ray()).count();
    let summary = harden_stream(objects, &opts, false, |step| {
        if args.diff {
            let _ = write_object_diff(&mut out.stdout, Some(step.before), step.after);
        }
        if stdout_yaml {
            out.stdout_doc(&step.after.root);
        }
        out.file_doc(&step.before.file, &step.after.root);
    });
    for c in &summary.companions {
        if args.diff {
            let _ = write_object_diff(&mut out.stdout, None, c);
        }
        if stdout_yaml {
            out.stdout_doc(&c.root);
        }
    }
    out.companions(&summary.companions);
    out.close()?;

    eprintln!(
        "rayward: hardened {ray} Ray object(s) of {count} in {} file(s): {} change(s), {} companion object(s); {} finding(s) left that harden does not fix",
        list.len(),
        summary.changes,
        summary.companions.len(),
        summary.unfixed.len()
    );
    if let Some(wi) = opts
        .workload_identity
        .as_ref()
        .filter(|w| w.provider == rayward_harden::workload_identity::Provider::Rrsa)
    {
        let written: Vec<&str> = summary
            .companions
            .iter()
            .filter(|c| c.kind_name == "Namespace")
            .map(|c| c.name.as_str())
            .collect();
        for ns in summary
            .identity_namespaces
            .iter()
            .filter(|n| !written.contains(&n.as_str()))
        {
            eprintln!(
                "rayward: workload identity: label namespace {} for ack-pod-identity-webhook: kubectl label namespace {} {}=on (or pass --namespace so harden writes it; role {})",
                rayward_manifest::terminal::escape(ns),
                rayward_manifest::terminal::escape(ns),
                rayward_harden::workload_identity::ACK_INJECTION_LABEL,
                rayward_manifest::terminal::escape(&wi.identity)
            );
        }
    }
    for r in &summary.refusals {
        eprintln!(
            "rayward: pod security: {} in namespace {} cannot meet Pod Security restricted ({}): the namespace enforces baseline, warn and audit stay restricted (annotation {}){}",
            rayward_manifest::terminal::escape(&r.object),
            rayward_manifest::terminal::escape(r.namespace.as_deref().unwrap_or("-")),
            rayward_manifest::terminal::escape(&r.reasons.join(", ")),
            rayward_harden::pod_security::REASON_ANNOTATION,
            if r.beyond_baseline {
                "; baseline refuses it too: give it a namespace of its own"
            } else {
                ""
            }
        );
    }
    if skipped > 0 {
        eprintln!("rayward: note: {skipped} document(s) that are not Kubernetes objects (no apiVersion/kind) are not in the output");
    }
    if !summary.unfixed.is_empty() {
        let report = Report::new(summary.unfixed.clone(), Vec::new(), list.len(), count);
        let mut err = std::io::stderr().lock();
        let style = Style {
            color: false,
            show_suppressed: false,
        };
        let _ = write(&report, Format::Text, style, &mut err);
    }
    let failing = fail_on.is_some_and(|t| summary.unfixed.iter().any(|f| f.severity >= t));
    Ok(if failing { exit::FINDINGS } else { exit::OK })
}

/// Where `-o DIR` writes each input's output and the companions.
struct Plan {
    dir: PathBuf,
    /// Input name -> path under `dir`.
    rel: HashMap<String, PathBuf>,
    companions: PathBuf,
    /// The file being written: its input name, writer and path.
    open: Option<(String, std::io::BufWriter<std::fs::File>, PathBuf)>,
}

impl Plan {
    fn new(dir: &Path, list: &[Input], objects: &[Object]) -> Result<Plan, String> {
        let with_objects: std::collections::HashSet<&str> =
            objects.iter().map(|o| &*o.file).collect();
        let mut rel = HashMap::new();
        let mut order: Vec<PathBuf> = Vec::new();
        for i in list {
            // Only inputs with objects get a file; the output is YAML whatever the input was.
            if !with_objects.contains(i.name.as_str()) {
                continue;
            }
            let r = if i.rel.extension().is_some_and(|e| e == "json") {
                i.rel.with_extension("yaml")
            } else {
                i.rel.clone()
            };
            order.push(r.clone());
            rel.insert(i.name.clone(), r);
        }
        let companions = companions_name(order.iter().map(PathBuf::as_path));
        if companions != Path::new(COMPANIONS_FILE) {
            eprintln!(
                "rayward: an input is named {COMPANIONS_FILE}: the companion objects go to {}",
                escape(&companions.display().to_string())
            );
        }
        check_outputs(
            dir,
            order
                .iter()
                .map(PathBuf::as_path)
                .chain([companions.as_path()]),
        )?;
        Ok(Plan {
            dir: dir.to_path_buf(),
            rel,
            companions,
            open: None,
        })
    }
}

/// Harden's output as it streams: standard output (YAML or diff) and `-o` files. The first
/// write error stops further writes and is returned by [`Out::close`].
struct Out<'a> {
    stdout: std::io::BufWriter<std::io::StdoutLock<'a>>,
    stdout_docs: usize,
    plan: Option<Plan>,
    failed: Option<anyhow::Error>,
}

impl Out<'_> {
    fn stdout(&mut self, text: &str) {
        // A closed pipe (`| head`) is not an error worth a panic, nor a reason to stop.
        let _ = self.stdout.write_all(text.as_bytes());
    }

    fn stdout_doc(&mut self, root: &Node) {
        if self.stdout_docs > 0 {
            self.stdout("---\n");
        }
        self.stdout_docs += 1;
        let _ = write_yaml(&mut self.stdout, root);
    }

    fn file_doc(&mut self, input: &str, root: &Node) {
        if self.failed.is_some() {
            return;
        }
        let Some(plan) = &mut self.plan else { return };
        let result = (|| -> Result<()> {
            let first = plan.open.as_ref().is_none_or(|(name, _, _)| name != input);
            if first {
                if let Some((_, mut w, path)) = plan.open.take() {
                    w.flush()
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                let rel = plan
                    .rel
                    .get(input)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(input));
                let path = plan.dir.join(rel);
                plan.open = Some((input.to_string(), create(&path)?, path));
            }
            let (_, w, path) = plan.open.as_mut().expect("opened above");
            let sep = if first { "" } else { "---\n" };
            w.write_all(sep.as_bytes())
                .and_then(|_| write_yaml(w, root))
                .with_context(|| format!("cannot write {}", path.display()))
        })();
        if let Err(e) = result {
            self.failed = Some(e);
        }
    }

    fn companions(&mut self, objects: &[Object]) {
        if self.failed.is_some() || objects.is_empty() {
            return;
        }
        let Some(plan) = &self.plan else { return };
        let path = plan.dir.join(&plan.companions);
        let text = to_yaml_stream(objects.iter().map(|o| &o.root));
        if let Err(e) = create(&path).and_then(|mut w| {
            w.write_all(text.as_bytes())
                .and_then(|_| w.flush())
                .with_context(|| format!("cannot write {}", path.display()))
        }) {
            self.failed = Some(e);
        }
    }

    fn close(mut self) -> Result<()> {
        let _ = self.stdout.flush();
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some((_, mut w, path)) = self.plan.and_then(|p| p.open) {
            w.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// JSON quotes every string; written as YAML they read better plain where that keeps
/// them strings.
fn plain_strings(objects: &mut [Object]) {
    for o in objects {
        o.root.prefer_plain();
    }
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

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(std::io::BufWriter::new(f))
}
