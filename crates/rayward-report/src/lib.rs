//! Renders the result of an audit for people (text, a self-contained HTML page, a Markdown
//! summary) and machines (JSON, SARIF 2.1.0, JUnit XML). Every format carries the same
//! findings and input errors.

mod html;
mod junit;
mod markdown;
mod sarif;
pub mod scorecard;
mod text;

use rayward_rules::{Finding, ObjectRef, Related, RuleMeta, Severity};
use serde::Serialize;
use std::path::PathBuf;

/// An input that could not be read (the file is named; the line when known).
#[derive(Clone, Debug, Serialize)]
pub struct InputError {
    pub file: String,
    /// 0 when the error concerns the whole file.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl From<&rayward_manifest::LoadError> for InputError {
    fn from(e: &rayward_manifest::LoadError) -> Self {
        InputError {
            file: e.file.clone(),
            line: e.line,
            column: e.col,
            message: e.kind.to_string(),
        }
    }
}

/// Counts for the summary line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Inputs read: files, standard input, or (live) objects of the cluster.
    pub files: usize,
    /// The cluster's context when the objects came from a running cluster
    /// (`audit --cluster`); absent for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub objects: usize,
    pub findings: usize,
    pub suppressed: usize,
    pub errors: usize,
    pub by_severity: std::collections::BTreeMap<Severity, usize>,
}

/// Everything one audit produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    /// Findings in file order, suppressed ones included (they carry `suppressed`).
    pub findings: Vec<Finding>,
    pub errors: Vec<InputError>,
    pub summary: Summary,
    /// The Ray objects of the run, clean ones included (the scorecard's columns); set by
    /// the caller when it knows them.
    pub ray_objects: Vec<ObjectRef>,
    /// The other objects with findings that concern some of the Ray objects, with the
    /// indices of those in `ray_objects` (a Service selecting a cluster's pods, …).
    pub related: Vec<Related>,
    /// The rules that ran (decides where a practice is not applicable); empty: all.
    #[serde(skip)]
    pub rules: Vec<&'static RuleMeta>,
    /// For links from an HTML report to the files: the directory the findings' relative
    /// file names start from and the directory the page is written to (both absolute).
    /// `None`: links are relative to the current directory, as if the page sat there.
    #[serde(skip)]
    pub links: Option<Links>,
}

/// Where file names start from and where the HTML report goes (see [`Report::links`]).
#[derive(Clone, Debug)]
pub struct Links {
    pub cwd: PathBuf,
    pub out_dir: PathBuf,
}

impl Report {
    pub fn new(
        findings: Vec<Finding>,
        errors: Vec<InputError>,
        files: usize,
        objects: usize,
    ) -> Report {
        let mut summary = Summary {
            files,
            objects,
            errors: errors.len(),
            ..Summary::default()
        };
        for f in &findings {
            if f.suppressed.is_some() {
                summary.suppressed += 1;
            } else {
                summary.findings += 1;
                *summary.by_severity.entry(f.severity).or_default() += 1;
            }
        }
        Report {
            tool: "rayward",
            version: env!("CARGO_PKG_VERSION"),
            findings,
            errors,
            summary,
            ray_objects: Vec::new(),
            related: Vec::new(),
            rules: Vec::new(),
            links: None,
        }
    }

    /// Findings that count (not suppressed).
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.suppressed.is_none())
    }
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    /// A short summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// One self-contained HTML page: the scorecard, charts, and the findings to filter.
    Html,
}

/// Options for rendering.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours (text only).
    pub color: bool,
    /// Show suppressed findings too (text only; the other formats always carry them).
    pub show_suppressed: bool,
}

/// Renders a report to a string.
pub fn render(report: &Report, format: Format, style: Style) -> String {
    let mut out = Vec::new();
    write(report, format, style, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("reports are UTF-8")
}

/// Writes a report. JSON is streamed: a large audit's report is never held whole in memory.
pub fn write(
    report: &Report,
    format: Format,
    style: Style,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Text => text::render_to(report, style, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Markdown => out.write_all(markdown::render(report, markdown::MAX_CHARS).as_bytes()),
        Format::Html => html::write(report, out),
    }
}
