//! What `audit` and `probe` share once their findings are in: the report format, colour,
//! writing the report to a file or standard output, input errors on stderr when the
//! format is for machines, and the exit code.

use crate::cli::{ColorChoice, OutputFormat};
use crate::exit;
use anyhow::{Context, Result};
use rayward_manifest::terminal::escape;
use rayward_report::{write, Format, Report, Style};
use rayward_rules::Severity;
use std::io::{IsTerminal, Write};
use std::path::Path;

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
            OutputFormat::Sarif => Format::Sarif,
            OutputFormat::Junit => Format::Junit,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Html => Format::Html,
        }
    }
}

/// Colour for the text report: when asked, or on a terminal without `NO_COLOR`.
pub fn color(choice: ColorChoice, output: Option<&Path>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Writes the report to `output`, or to standard output (where a closed pipe, `| head`,
/// is not an error).
pub fn emit(report: &Report, format: Format, style: Style, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot write {}", p.display()))?;
            let mut w = std::io::BufWriter::new(f);
            write(report, format, style, &mut w)
                .and_then(|_| w.flush())
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let _ = write(report, format, style, &mut out).and_then(|_| out.flush());
        }
    }
    Ok(())
}

/// Says the input errors on stderr when the report's format does not (every format but
/// text), with `file:line:column` when `positions`; then the exit code: 2 for input
/// errors, 1 for a finding at `fail_on` or worse, 0 otherwise.
pub fn finish(report: &Report, format: Format, fail_on: Option<Severity>, positions: bool) -> u8 {
    if format != Format::Text {
        for e in &report.errors {
            let (file, message) = (escape(&e.file), escape(&e.message));
            if positions {
                eprintln!("rayward: error: {file}:{}:{}: {message}", e.line, e.column);
            } else {
                eprintln!("rayward: error: {file}: {message}");
            }
        }
    }
    if !report.errors.is_empty() {
        return exit::ERROR;
    }
    let failing = fail_on.is_some_and(|t| report.active().any(|f| f.severity >= t));
    if failing {
        exit::FINDINGS
    } else {
        exit::OK
    }
}
