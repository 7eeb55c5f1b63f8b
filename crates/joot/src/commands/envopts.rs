//! Turns env options from the command line and the config file into a validated
//! `joot_store::EnvConfig`, before anything changes: bind sources must exist, targets must be
//! absolute, variables must look like `K=V`, stored command names must be plain words.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use joot_store::{BindSpec, EnvConfig, NetMode};

use crate::cli::{EnvOptions, NetArg};
use crate::config::RunDefaults;

/// Parses `SRC:DST[:ro|:rw]`. SRC must exist on the host; DST must be absolute (it is resolved
/// inside the env's root when mounted).
pub fn parse_bind(spec: &str) -> Result<BindSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, readonly) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        [_, _, opt] => bail!("bind '{spec}': unknown option '{opt}' (use ro or rw)"),
        _ => bail!("bind '{spec}': expected SRC:DST[:ro]"),
    };
    if src.is_empty() || dst.is_empty() {
        bail!("bind '{spec}': expected SRC:DST[:ro]");
    }
    if !dst.starts_with('/') {
        bail!("bind '{spec}': target '{dst}' must be an absolute path inside the env");
    }
    let src_path = PathBuf::from(src);
    let src_abs = std::path::absolute(&src_path)
        .with_context(|| format!("bind '{spec}': cannot resolve source"))?;
    if src_abs.symlink_metadata().is_err() {
        bail!("bind source {} does not exist", src_abs.display());
    }
    Ok(BindSpec {
        src: src_abs,
        dst: PathBuf::from(dst),
        readonly,
    })
}

/// Checks a `K=V` environment entry.
pub fn check_env_var(entry: &str) -> Result<()> {
    let Some((k, _)) = entry.split_once('=') else {
        bail!("environment entry '{entry}' must look like KEY=VALUE");
    };
    let valid = !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!("environment variable name '{k}' is not valid (letters, digits and _ only)");
    }
    Ok(())
}

/// Builds the env config: config-file defaults first, then command-line options.
pub fn env_config(opts: &EnvOptions, defaults: &RunDefaults) -> Result<EnvConfig> {
    let mut cfg = EnvConfig::default();
    if let Some(net) = &defaults.net {
        cfg.net = match net.as_str() {
            "host" => NetMode::Host,
            "none" => NetMode::None,
            other => bail!("config: run.net must be 'host' or 'none', not '{other}'"),
        };
    }
    for b in defaults.binds.iter().chain(&opts.binds) {
        cfg.binds.push(parse_bind(b)?);
    }
    for e in defaults.env.iter().chain(&opts.env) {
        check_env_var(e)?;
        cfg.env.push(e.clone());
    }
    apply_overrides(&mut cfg, opts)?;
    Ok(cfg)
}

/// Applies per-run options on top of a stored config (binds and env vars add; the rest replace).
pub fn apply_overrides(cfg: &mut EnvConfig, opts: &EnvOptions) -> Result<()> {
    if let Some(net) = opts.net {
        cfg.net = match net {
            NetArg::Host => NetMode::Host,
            NetArg::None => NetMode::None,
        };
    }
    if let Some(h) = &opts.hostname {
        check_hostname(h)?;
        cfg.hostname = Some(h.clone());
    }
    if let Some(w) = &opts.workdir {
        if !w.starts_with('/') {
            bail!("workdir '{w}' must be an absolute path inside the env");
        }
        cfg.workdir = Some(w.clone());
    }
    if let Some(u) = &opts.user {
        if u.is_empty() || u.contains(char::is_whitespace) {
            bail!("user '{u}' is not valid: use NAME or UID, optionally :GROUP");
        }
        cfg.user = Some(u.clone());
    }
    cfg.privileged |= opts.privileged;
    cfg.bind_user |= opts.bind_user;
    Ok(())
}

/// Adds per-run binds and env vars (validated) to a stored config.
pub fn add_run_extras(cfg: &mut EnvConfig, opts: &EnvOptions) -> Result<()> {
    for b in &opts.binds {
        cfg.binds.push(parse_bind(b)?);
    }
    for e in &opts.env {
        check_env_var(e)?;
        cfg.env.push(e.clone());
    }
    apply_overrides(cfg, opts)
}

fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        bail!("hostname '{h}' is not valid (letters, digits, '-' and '.', at most 64)");
    }
    Ok(())
}

/// Parses `NAME=SHELL-COMMAND` stored commands.
pub fn parse_command(spec: &str) -> Result<(String, String)> {
    let Some((name, cmd)) = spec.split_once('=') else {
        bail!("command '{spec}' must look like NAME=SHELL-COMMAND");
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("command name '{name}' is not valid (letters, digits, - and _)");
    }
    if cmd.trim().is_empty() {
        bail!("command '{name}' is empty");
    }
    Ok((name.to_string(), cmd.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_parsed_and_checked() {
        let b = parse_bind("/tmp:/data:ro").unwrap();
        assert_eq!(b.src, PathBuf::from("/tmp"));
        assert_eq!(b.dst, PathBuf::from("/data"));
        assert!(b.readonly);
        assert!(!parse_bind("/tmp:/data").unwrap().readonly);
        let e = parse_bind("/nonexistent-joot-src:/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = parse_bind("/tmp:rel").unwrap_err().to_string();
        assert!(e.contains("absolute"), "{e}");
        assert!(parse_bind("/tmp:/x:rx").is_err());
        assert!(parse_bind("/tmp").is_err());
    }

    #[test]
    fn env_vars_and_commands_are_checked() {
        check_env_var("A_1=x=y").unwrap();
        assert!(check_env_var("1A=x").is_err());
        assert!(check_env_var("A-B=x").is_err());
        assert!(check_env_var("novalue").is_err());
        assert_eq!(
            parse_command("start=nginx -g 'daemon off;'").unwrap(),
            ("start".into(), "nginx -g 'daemon off;'".into())
        );
        assert!(parse_command("bad name=x").is_err());
        assert!(parse_command("stop=").is_err());
    }

    #[test]
    fn hostnames_are_checked() {
        check_hostname("web-1.local").unwrap();
        assert!(check_hostname("-x").is_err());
        assert!(check_hostname("a b").is_err());
        assert!(check_hostname(&"a".repeat(65)).is_err());
    }
}
