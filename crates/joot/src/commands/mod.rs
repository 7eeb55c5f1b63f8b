//! One module per verb. Each turns its arguments into validated library options first, so
//! bad input is refused before anything changes, then calls the library and prints results on
//! stdout. Every verb returns the process exit status.

use std::cell::OnceCell;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::reporters::Progress;

pub mod boot;
pub mod bootstrap;
pub mod build;
pub mod doctor;
pub mod envopts;
pub mod envs;
pub mod export;
pub mod from;
pub mod images;
pub mod import;
pub mod pull;
pub mod push;
pub mod rootless;
pub mod run;

/// What every verb gets: the configuration, the store (opened on first use, so verbs that need
/// none, such as `doctor` or `boot`, never create one) and the progress sink.
pub struct Ctx {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub store_root: PathBuf,
    pub progress: Progress,
    store: OnceCell<joot_store::Store>,
}

impl Ctx {
    pub fn new(cli: &Cli, config: Config, config_path: Option<PathBuf>) -> Ctx {
        let store_root = cli
            .root
            .clone()
            .or_else(|| config.root.clone())
            .unwrap_or_else(default_root);
        Ctx {
            config,
            config_path,
            store_root,
            progress: Progress::new(cli.progress, cli.quiet),
            store: OnceCell::new(),
        }
    }

    /// The store, opened (and laid out if new) on first use.
    pub fn store(&self) -> Result<&joot_store::Store> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let store = joot_store::Store::open(&self.store_root)
            .with_context(|| format!("cannot open store {}", self.store_root.display()))?;
        Ok(self.store.get_or_init(|| store))
    }

    /// The progress sink.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// `/var/lib/joot` for root; `$XDG_DATA_HOME/joot` (else `~/.local/share/joot`) for a user.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/joot");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("joot");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/joot")
}

/// Runs the verb and returns the exit status.
pub fn dispatch(cli: &Cli, ctx: &Ctx) -> Result<i32> {
    if let Some(code) = rootless::maybe_reexec(cli, ctx)? {
        return Ok(code);
    }
    match &cli.command {
        Command::Bootstrap(a) => bootstrap::run(ctx, a),
        Command::Build(a) => build::run(ctx, a),
        Command::Export(a) => export::run(ctx, a),
        Command::Boot(a) => boot::run(ctx, a),
        Command::Push(a) => push::run(ctx, a),
        Command::Pull(a) => pull::run(ctx, a),
        Command::Doctor => doctor::run(ctx),
        Command::Import(a) => import::run(ctx, a),
        Command::Images(a) => images::list(ctx, a),
        Command::Rmi(a) => images::rmi(ctx, a),
        Command::History(a) => images::history(ctx, a),
        Command::Create(a) => envs::create(ctx, a),
        Command::Ls(a) => envs::ls(ctx, a),
        Command::Inspect(a) => envs::inspect(ctx, a),
        Command::Rm(a) => envs::rm(ctx, a),
        Command::Commit(a) => envs::commit(ctx, a),
        Command::Gc => envs::gc(ctx),
        Command::Run(a) => run::run(ctx, a),
        Command::Shell(a) => run::shell(ctx, a),
        Command::Call(a) => run::call(ctx, a),
        Command::Mount(a) => run::mount(ctx, a),
        Command::Umount(a) => run::umount(ctx, a),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "joot", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man(a) => {
            fs_err::create_dir_all(&a.dir)?;
            clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &a.dir)?;
            Ok(0)
        }
    }
}

/// Human-readable byte count (1024-based).
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
pub fn fmt_time(secs: u64) -> String {
    let iso = joot_store::meta::rfc3339(secs);
    format!("{} {}", &iso[..10], &iso[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_and_times() {
        assert_eq!(fmt_bytes(12), "12 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_time(0), "1970-01-01 00:00");
        assert_eq!(fmt_time(1_795_000_000), "2026-11-18 11:06");
    }
}
