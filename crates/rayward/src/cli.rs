//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Secure-by-default tooling for Ray on Kubernetes.
///
/// Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
#[derive(Parser, Debug)]
#[command(name = "rayward", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Audit Kubernetes manifests (RayCluster, RayJob, RayService, RayCronJob and the
    /// objects around them) against the Ray security guide.
    Audit(AuditArgs),
    /// List the rule catalog.
    Rules(RulesArgs),
    /// Print one rule's documentation.
    Explain(ExplainArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Files or folders to audit (folders are searched for .yaml, .yml and .json);
    /// `-` reads standard input. Defaults to the current folder.
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Write the report to a file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit 1 when a finding is at or above this severity
    /// (info, low, medium, high, critical; `none` never fails on findings).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,

    /// Config file (default: .rayward.toml or rayward.toml found upward from the current folder).
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore any config file.
    #[arg(long)]
    pub no_config: bool,

    /// Turn rules off (ids or names, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub disable: Vec<String>,

    /// Run only these rules (ids or names).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub only: Vec<String>,

    /// Show suppressed findings in text output.
    #[arg(long)]
    pub show_suppressed: bool,

    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Largest input file accepted, in bytes (larger ones are input errors).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Name shown for standard input in findings.
    #[arg(long, default_value = "<stdin>", value_name = "NAME")]
    pub stdin_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    /// Output format (`markdown` generates docs/rules.md).
    #[arg(short, long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Rule id or name, e.g. RW501 or privileged-container.
    pub rule: String,
}
