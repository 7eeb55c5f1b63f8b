//! `joot create`, `joot ls`, `joot inspect`, `joot rm`, `joot commit`, `joot gc`: environments
//! in the store.

use anyhow::{Context, Result, bail};
use joot_store::{EnvSource, Name, Origin};
use serde_json::json;

use super::{Ctx, envopts, fmt_bytes, fmt_time, from};
use crate::cli;

pub fn create(ctx: &Ctx, args: &cli::CreateArgs) -> Result<i32> {
    let name = Name::parse(&args.name)?;
    let mut config = envopts::env_config(&args.opts, &ctx.config.run)?;
    for c in &args.commands {
        let (k, v) = envopts::parse_command(c)?;
        config.commands.insert(k, v);
    }
    config.hook = args.hook.clone();
    let store = ctx.store()?;
    if store.env(&name).is_ok() {
        bail!("env '{name}' already exists");
    }
    let base = from::resolve(ctx, &args.from)?;
    store.create_env(&name, base.source(), config)?;
    println!("{name}");
    Ok(0)
}

fn source_name(s: &EnvSource) -> String {
    match s {
        EnvSource::Host => "host".into(),
        EnvSource::Image { name, .. } => name.to_string(),
    }
}

pub fn ls(ctx: &Ctx, args: &cli::ListArgs) -> Result<i32> {
    let store = ctx.store()?;
    let envs = store.envs()?;
    if args.json {
        let v: Vec<_> = envs
            .iter()
            .map(|e| {
                json!({
                    "name": e.name.as_str(),
                    "from": source_name(&e.source),
                    "layers": e.source.layers().iter().map(|l| l.as_str()).collect::<Vec<_>>(),
                    "created": e.created,
                    "mounted": store.mounted(&e.name).ok().flatten(),
                    "config": e.config,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("{:<24} {:<24} {:<20} STATE", "NAME", "FROM", "CREATED");
    for e in &envs {
        let state = match store.mounted(&e.name).ok().flatten() {
            Some(p) => format!("mounted at {}", p.display()),
            None => String::new(),
        };
        println!(
            "{:<24} {:<24} {:<20} {}",
            e.name.as_str(),
            source_name(&e.source),
            fmt_time(e.created),
            state
        );
    }
    Ok(0)
}

pub fn inspect(ctx: &Ctx, args: &cli::InspectArgs) -> Result<i32> {
    let name = Name::parse(&args.name)?;
    let store = ctx.store()?;
    let value = if let Ok(env) = store.env(&name) {
        let paths = store.env_paths(&name);
        json!({
            "kind": "env",
            "env": env,
            "upper": paths.upper,
            "upper_size": dir_size(&paths.upper),
            "mounted": store.mounted(&name).ok().flatten(),
        })
    } else if let Ok(image) = store.image(&name) {
        let layers = image
            .layers
            .iter()
            .map(|l| store.layer(l))
            .collect::<Result<Vec<_>, _>>()?;
        json!({ "kind": "image", "image": image, "layers": layers })
    } else {
        bail!("no env or image named '{name}' (see `joot ls` and `joot images`)");
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_human(&value);
    }
    Ok(0)
}

fn print_human(v: &serde_json::Value) {
    // YAML-like indentation of the JSON document: readable without another dependency.
    fn walk(v: &serde_json::Value, indent: usize, out: &mut String) {
        use serde_json::Value::*;
        match v {
            Object(map) => {
                for (k, val) in map {
                    match val {
                        Object(m) if m.is_empty() => {}
                        Array(a) if a.is_empty() => {}
                        Null => {}
                        Object(_) | Array(_) => {
                            out.push_str(&format!("{:indent$}{k}:\n", ""));
                            walk(val, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{:indent$}{k}: {}\n", "", scalar(val))),
                    }
                }
            }
            Array(items) => {
                for item in items {
                    match item {
                        Object(_) | Array(_) => {
                            out.push_str(&format!("{:indent$}-\n", ""));
                            walk(item, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{:indent$}- {}\n", "", scalar(item))),
                    }
                }
            }
            _ => out.push_str(&format!("{:indent$}{}\n", "", scalar(v))),
        }
    }
    fn scalar(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(v, 0, &mut out);
    print!("{out}");
}

fn dir_size(p: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

pub fn rm(ctx: &Ctx, args: &cli::RmArgs) -> Result<i32> {
    let names = args
        .names
        .iter()
        .map(|n| Name::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let store = ctx.store()?;
    for name in &names {
        if args.force && store.mounted(name).ok().flatten().is_some() {
            joot_sandbox::session::umount_env(store, name, false)
                .with_context(|| format!("cannot unmount env '{name}'"))?;
        }
        store.remove_env(name, args.force)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn commit(ctx: &Ctx, args: &cli::CommitArgs) -> Result<i32> {
    let env = Name::parse(&args.env)?;
    let image = Name::parse(&args.image)?;
    let store = ctx.store()?;
    let origin = Origin::Commit {
        env: env.to_string(),
        command: args.message.clone(),
    };
    let img = store.commit_env(&env, &image, origin)?;
    let top = img.layers.last().map(|l| l.to_string()).unwrap_or_default();
    let size = img
        .layers
        .last()
        .and_then(|l| store.layer(l).ok())
        .map_or(0, |m| m.size);
    ctx.progress().line(&format!(
        "committed env {env} as image {image} (new layer {}, {})",
        &top[..top.len().min(12)],
        fmt_bytes(size)
    ));
    println!("{image}");
    Ok(0)
}

pub fn gc(ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let report = store.gc()?;
    if report.is_empty() {
        println!("nothing to remove");
    } else {
        print!("{report}");
    }
    Ok(0)
}
