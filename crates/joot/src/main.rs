//! The `joot` binary: parse the command line, set up logging, load the config, run one verb.
//! Errors are printed once as `joot: error: ...` and exit 125; `run` exits with the command's
//! own status; a closed stdout (`joot ls | head`) is not an error.

mod cli;
mod commands;
mod config;
mod reporters;

use std::io::ErrorKind;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Exit status for joot's own errors (the podman/docker convention).
const EXIT_ERROR: i32 = 125;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors are joot errors (125).
            let code = if err.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let code = match config::Config::load() {
        Ok((config, path)) => {
            let ctx = commands::Ctx::new(&cli, config, path);
            match commands::dispatch(&cli, &ctx) {
                Ok(code) => code,
                Err(err) => report(&err),
            }
        }
        Err(err) => report(&err),
    };
    std::process::exit(code);
}

fn report(err: &anyhow::Error) -> i32 {
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    eprintln!("joot: error: {err:#}");
    EXIT_ERROR
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
