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
    use tracing_subscriber::filter::LevelFilter;
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    // An EnvFilter compiles its directives: only pay for it when RUST_LOG asks for one, since
    // start-up time is part of every `joot run`.
    match std::env::var_os("RUST_LOG") {
        Some(_) => builder
            .with_env_filter(EnvFilter::from_default_env())
            .init(),
        None => builder.with_max_level(level).init(),
    }
}
