//! The `rayward` command line.

mod cli;
mod commands;
mod config;
mod exit;

use clap::Parser;

/// mimalloc: a large audit allocates millions of small nodes and frees each file's full
/// trees after checking; glibc's allocator fragments under that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Audit(args) => commands::audit::run(args),
        cli::Command::Rules(args) => commands::rules::list(args),
        cli::Command::Explain(args) => commands::rules::explain(args),
        cli::Command::Certs(args) => commands::certs::run(args),
        cli::Command::Harden(args) => commands::harden::run(args),
        cli::Command::Gateway(args) => commands::gateway::run(args),
        cli::Command::Webhook(args) => commands::webhook::run(args),
    };
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            // Errors quote paths and values from the command line and the input.
            let text = format!("{e:#}");
            eprintln!(
                "rayward: error: {}",
                rayward_manifest::terminal::escape_keep_lines(&text)
            );
            ExitCode::from(exit::ERROR)
        }
    }
}
