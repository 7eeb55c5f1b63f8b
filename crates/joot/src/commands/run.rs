//! `joot run`, `joot shell`, `joot call`, `joot mount`, `joot umount`: entering environments.
//! `run` exits with the command's own status (128+N for signal N, 126 cannot execute, 127 not
//! found); joot's own errors exit 125.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use joot_sandbox::session::{self, Base as RunBase, RunRequest};
use joot_store::Name;

use super::{Ctx, envopts, from};
use crate::cli;

/// Turns a sandbox result into the process exit status: an exec failure (126/127) is reported
/// with its message and its conventional status, other errors go up as joot errors (125).
fn status(r: joot_sandbox::Result<i32>) -> Result<i32> {
    match r {
        Ok(code) => Ok(code),
        Err(e @ joot_sandbox::Error::Exec { .. }) => {
            eprintln!("joot: {e}");
            Ok(e.exit_status())
        }
        Err(e) => Err(e.into()),
    }
}

fn request(argv: &[String], opts: &cli::EnvOptions, tty: bool) -> RunRequest {
    RunRequest {
        argv: argv.to_vec(),
        tty,
        hostname: opts.hostname.clone(),
        ..RunRequest::default()
    }
}

/// A command given with no terminal gets none; with no command (a shell) a terminal on stdin
/// gives it one.
fn wants_tty(argv: &[String]) -> bool {
    argv.is_empty() && std::io::stdin().is_terminal()
}

pub fn run(ctx: &Ctx, args: &cli::RunArgs) -> Result<i32> {
    let tty = wants_tty(&args.command);
    match (&args.target, &args.from) {
        (Some(_), Some(_)) => bail!("give either an env name or --from, not both"),
        (None, None) => bail!("name an env (`joot run ENV -- CMD`) or an image with --from"),
        (Some(env), None) => {
            if args.rm || args.name.is_some() {
                bail!("--rm and --name go with --from");
            }
            let name = Name::parse(env)?;
            run_existing(ctx, &name, &args.opts, &args.command, tty)
        }
        (None, Some(from_spec)) => {
            if args.rm && args.name.is_some() {
                bail!("--rm and --name exclude each other: --rm throws the env away");
            }
            if args.rm {
                let config = envopts::env_config(&args.opts, &ctx.config.run)?;
                let base = from::resolve(ctx, from_spec)?;
                let base = match base {
                    from::Base::Host => RunBase::Host,
                    from::Base::Image(i) => RunBase::Image(i),
                };
                let req = RunRequest {
                    // The process exits right after: the kernel's teardown of the run's
                    // mounts need not delay the command's exit status.
                    leave_teardown: true,
                    ..request(&args.command, &args.opts, tty)
                };
                return status(session::run_ephemeral(ctx.store()?, &base, &config, &req));
            }
            let name = match &args.name {
                Some(n) => Name::parse(n)?,
                None => generated_name(ctx, from_spec)?,
            };
            let store = ctx.store()?;
            if store.env(&name).is_err() {
                let config = envopts::env_config(&args.opts, &ctx.config.run)?;
                let base = from::resolve(ctx, from_spec)?;
                match store.create_env(&name, base.source(), config) {
                    Ok(_) => {
                        if args.name.is_none() {
                            ctx.progress().line(&format!("created env {name}"));
                        }
                    }
                    // A concurrent `run --name` created it first: use it.
                    Err(joot_store::Error::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                let env = store.env(&name)?;
                let req = request(&args.command, &args.opts, tty);
                return status(session::run_env(store, &env, &req));
            }
            run_existing(ctx, &name, &args.opts, &args.command, tty)
        }
    }
}

/// `IMAGE-xxxxxx` from the image name (or `env`) and random hex.
fn generated_name(ctx: &Ctx, from_spec: &str) -> Result<Name> {
    let stem: String = from_spec
        .rsplit('/')
        .next()
        .unwrap_or("env")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "env" } else { stem };
    let store = ctx.store()?;
    for _ in 0..16 {
        let id = joot_store::LayerId::random();
        let n = Name::parse(&format!("{stem}-{}", &id.as_str()[..6]))?;
        if store.env(&n).is_err() {
            return Ok(n);
        }
    }
    bail!("cannot find a free env name for '{from_spec}'")
}

fn run_existing(
    ctx: &Ctx,
    name: &Name,
    opts: &cli::EnvOptions,
    argv: &[String],
    tty: bool,
) -> Result<i32> {
    let store = ctx.store()?;
    let mut env = store.env(name)?;
    envopts::add_run_extras(&mut env.config, opts)?;
    let req = request(argv, opts, tty);
    status(session::run_env(store, &env, &req))
}

pub fn shell(ctx: &Ctx, args: &cli::ShellArgs) -> Result<i32> {
    let name = Name::parse(&args.target)?;
    run_existing(ctx, &name, &args.opts, &[], std::io::stdin().is_terminal())
}

pub fn call(ctx: &Ctx, args: &cli::CallArgs) -> Result<i32> {
    let name = Name::parse(&args.env)?;
    let store = ctx.store()?;
    let env = store.env(&name)?;
    let Some(script) = env.config.commands.get(&args.command) else {
        let known: Vec<_> = env.config.commands.keys().cloned().collect();
        bail!(
            "env '{name}' has no command '{}' (it has: {})",
            args.command,
            if known.is_empty() {
                "none; add them with `joot create --command NAME=CMD`".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        script.clone(),
        args.command.clone(),
    ];
    argv.extend(args.args.iter().cloned());
    let req = RunRequest {
        argv,
        ..RunRequest::default()
    };
    status(session::run_env(store, &env, &req))
}

pub fn mount(ctx: &Ctx, args: &cli::NameArg) -> Result<i32> {
    let name = Name::parse(&args.name)?;
    let store = ctx.store()?;
    let env = store.env(&name)?;
    let root = session::mount_env(store, &env)?;
    println!("{}", root.display());
    Ok(0)
}

pub fn umount(ctx: &Ctx, args: &cli::NameArg) -> Result<i32> {
    let name = Name::parse(&args.name)?;
    let store = ctx.store()?;
    if store.mounted(&name)?.is_none() {
        store.env(&name)?;
        bail!("env '{name}' is not mounted");
    }
    session::umount_env(store, &name, true)?;
    Ok(0)
}
