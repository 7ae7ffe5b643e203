//! The `rayward` command line.

mod cli;
mod commands;
mod config;
mod exit;

use clap::{CommandFactory, FromArgMatches};

/// mimalloc: a large audit allocates millions of small nodes and frees each file's full
/// trees after checking; glibc's allocator fragments under that pattern. The feature
/// `system-allocator` leaves glibc's in place, for heap profilers that hook malloc
/// (heaptrack, valgrind): `bench/history/collector.sh` documents its use.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// mimalloc's options, by their index in the `mi_option_e` enum of the vendored v3 header
/// (libmimalloc-sys 0.1.49 builds v3; pinned in Cargo.lock). The test below checks each
/// index against the library's default for that option, so a version that moves them
/// fails the build's tests instead of setting another option.
mod allocator {
    #[cfg(test)]
    use libmimalloc_sys::mi_option_get;
    use libmimalloc_sys::{mi_option_set, mi_option_t};

    /// "memory purging is delayed by N milliseconds" (v3 default 1000).
    pub const PURGE_DELAY: mi_option_t = 15;
    /// "max candidate pages to consider for allocation" (default 4): not set, only a
    /// landmark between the two, for the test.
    #[cfg(test)]
    const PAGE_MAX_CANDIDATES: mi_option_t = 37;
    /// "allow transparent huge pages" (default 1).
    pub const ALLOW_THP: mi_option_t = 43;
    /// "eager commit arenas? Use 2 to enable just on overcommit systems (=2)".
    pub const ARENA_EAGER_COMMIT: mi_option_t = 4;

    extern "C" {
        /// libc's, which allocates nothing (std's `var_os` would, before the options).
        fn getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char;
    }

    /// Freed pages go back to the OS within 10 ms (not 1 s), in 4 KiB pages rather than
    /// 2 MiB huge ones: an audit frees each object's full tree after checking it, and with
    /// the defaults that memory stayed resident. Measured (docs/benchmarks.md): 10,000 live
    /// clusters 272 -> 214 MB peak; one 44 MB stream 243 -> 219 MB; 101 files 140 -> 124
    /// MB. A delay of 0 cost 60% more time on the 101 files; 10 ms costs about 0.1 s.
    ///
    /// Arenas are committed on demand, not eagerly, and all of this is set before the first
    /// allocation: the first arena is reserved by the first allocation, which comes before
    /// `main`, so on Linux this runs from `.init_array` (see [`EARLY`]; `main` calls it
    /// again for other systems). Set from `main`, the history collector's freed memory
    /// stayed resident (`bench/history/posts.sh`, docs/benchmarks.md: anonymous RSS peak
    /// 12.1 MB for a heap peak of 1.3 MB; 3.3 MB set early), which kept it over issue 12's
    /// 30 MB. `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still wins.
    pub fn configure() {
        // SAFETY: plain option setters of the allocator and a getenv of a NUL-terminated
        // literal, called before any thread starts and before any allocation.
        unsafe {
            mi_option_set(PURGE_DELAY, 10);
            mi_option_set(ALLOW_THP, 0);
            if getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
                mi_option_set(ARENA_EAGER_COMMIT, 0);
            }
        }
    }

    /// Runs [`configure`] as an ELF constructor, before the Rust runtime allocates
    /// anything (set from `main`, the options came too late for the first arena: measured).
    /// Not in the test binary, whose test reads the defaults.
    #[cfg(all(target_os = "linux", not(test)))]
    #[used]
    #[link_section = ".init_array"]
    pub static EARLY: extern "C" fn() = {
        extern "C" fn early() {
            configure();
        }
        early
    };

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn option_indexes_match_the_linked_mimalloc() {
            // SAFETY: reads of the allocator's option table.
            let got = unsafe {
                (
                    mi_option_get(ARENA_EAGER_COMMIT),
                    mi_option_get(PURGE_DELAY),
                    mi_option_get(PAGE_MAX_CANDIDATES),
                    mi_option_get(ALLOW_THP),
                )
            };
            // The test binary runs with the defaults (configure is not called here).
            assert_eq!(got, (2, 1000, 4, 1), "mi_option_e indexes moved");
        }
    }
}

/// Installed as `kubectl-rayward` on the PATH, the binary is a kubectl plugin: `kubectl
/// rayward audit --cluster -A` runs it with the arguments after `rayward`. Its usage and
/// errors then name the command as the user typed it.
fn plugin_name() -> Option<&'static str> {
    let argv0 = std::env::args_os().next()?;
    let base = std::path::Path::new(&argv0).file_name()?.to_str()?;
    (base == "kubectl-rayward").then_some("kubectl rayward")
}

fn main() -> ExitCode {
    allocator::configure();
    let mut command = cli::Cli::command();
    if let Some(name) = plugin_name() {
        command = command.name(name).bin_name(name).display_name(name);
    }
    let matches = command.get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match cli.command {
        cli::Command::Audit(args) => commands::audit::run(args),
        cli::Command::Rules(args) => commands::rules::list(args),
        cli::Command::Explain(args) => commands::rules::explain(args),
        cli::Command::Certs(args) => commands::certs::run(args),
        cli::Command::Harden(args) => commands::harden::run(args),
        cli::Command::Gateway(args) => commands::gateway::run(args),
        cli::Command::Webhook(args) => commands::webhook::run(args),
        cli::Command::Probe(args) => commands::probe::run(args),
        cli::Command::Watch(args) => commands::watch::run(args),
        cli::Command::History(args) => commands::history::run(args),
        cli::Command::Install(args) => commands::install::run(args),
        cli::Command::Check(args) => commands::check::run(args),
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
