//! Command-line interface: argument parsing and one module per command family.

/// Prints a status line (what a command did) on stderr, unless `--quiet`: stdout carries only
/// data, so it can be piped.
macro_rules! status {
    ($($t:tt)*) => {
        if !$crate::cli::quiet() {
            eprintln!($($t)*);
        }
    };
}

mod args;
mod build;
mod inspect;
mod progress;
mod query;
mod remote;
mod serve;
mod tiles;
mod write;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

pub use args::{Cli, Command};

/// Parses the command line, runs the command, prints any error and sets the exit code.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    QUIET.store(cli.quiet, Ordering::Relaxed);
    if !matches!(cli.command, Command::Serve(_)) {
        restore_sigpipe();
    }
    init_tracing(cli.verbose, cli.quiet, cli.color);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Lets a closed pipe end the command quietly (`kdsled info | head -1`), as for any Unix tool:
/// Rust ignores SIGPIPE, so the next write to stdout would fail and `println!` would panic. The
/// server keeps ignoring it, since a write to a client that went away must not end it.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default has no preconditions; it runs
    // before any other thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing(verbose: u8, quiet: bool, color: args::ColorChoice) {
    // -v is about kdsled: sled's own debug lines (its `crc` line reads like corruption) appear
    // only when RUST_LOG asks for them.
    let default = match (quiet, verbose) {
        (true, 0) => "warn",
        (_, 0) => "info",
        (_, 1) => "info,kdsled=debug",
        _ => "info,kdsled=trace",
    };
    let ansi = match color {
        args::ColorChoice::Always => true,
        args::ColorChoice::Never => false,
        args::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stderr())
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(a) => build::run(a),
        Command::Near(a) => query::near(a),
        Command::Nearest(a) => query::nearest(a),
        Command::Within(a) => query::within(a),
        Command::Stats(a) => query::stats(a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "kdsled", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Info(a) => inspect::info(a),
        Command::Verify(a) => inspect::verify(a),
        Command::Serve(a) => serve::run(a),
        Command::Insert(a) => write::insert(a),
        Command::Delete(a) => write::delete(a),
        Command::Compact(a) => write::compact(a),
        Command::Migrate(a) => inspect::migrate(a),
        Command::Tiles(a) => tiles::run(a),
        Command::PartitionBuild(a) => write::partition_build(a),
        Command::Import(a) => write::import(a),
    }
}
