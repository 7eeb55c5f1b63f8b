//! `joot images`, `joot rmi`, `joot history`: the images in the store.

use anyhow::Result;
use joot_store::{Image, Name};
use serde_json::json;

use super::{Ctx, fmt_bytes, fmt_time};
use crate::cli;

fn image_size(store: &joot_store::Store, image: &Image) -> u64 {
    image
        .layers
        .iter()
        .filter_map(|l| store.layer(l).ok())
        .map(|m| m.size)
        .sum()
}

pub fn list(ctx: &Ctx, args: &cli::ListArgs) -> Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    if args.json {
        let v: Vec<_> = images
            .iter()
            .map(|i| {
                json!({
                    "name": i.name.as_str(),
                    "layers": i.layers.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
                    "size": image_size(store, i),
                    "created": i.created,
                    "distro": i.distro,
                    "parent": i.parent,
                    "config": i.config,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<24} {:>7} {:>10} {:<20} {:<24}",
        "NAME", "LAYERS", "SIZE", "CREATED", "DISTRO"
    );
    for i in &images {
        let distro = i
            .distro
            .as_ref()
            .map(|d| format!("{} {} {}", d.id, d.release, d.arch))
            .unwrap_or_default();
        println!(
            "{:<24} {:>7} {:>10} {:<20} {:<24}",
            i.name.as_str(),
            i.layers.len(),
            fmt_bytes(image_size(store, i)),
            fmt_time(i.created),
            distro
        );
    }
    Ok(0)
}

pub fn rmi(ctx: &Ctx, args: &cli::RmiArgs) -> Result<i32> {
    let names = args
        .names
        .iter()
        .map(|n| Name::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let store = ctx.store()?;
    for name in &names {
        store.remove_image(name, args.force)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn history(ctx: &Ctx, args: &cli::HistoryArgs) -> Result<i32> {
    let name = Name::parse(&args.image)?;
    let store = ctx.store()?;
    let image = store.image(&name)?;
    let metas = image
        .layers
        .iter()
        .map(|l| store.layer(l))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&metas)?);
        return Ok(0);
    }
    println!("{:<14} {:>10} {:<20} ORIGIN", "LAYER", "SIZE", "CREATED");
    for m in &metas {
        println!(
            "{:<14} {:>10} {:<20} {}",
            &m.id.as_str()[..12],
            fmt_bytes(m.size),
            fmt_time(m.created),
            describe_origin(&m.origin)
        );
    }
    Ok(0)
}

pub fn describe_origin(o: &joot_store::Origin) -> String {
    use joot_store::Origin::*;
    match o {
        Import { source } => format!("import {source}"),
        Bootstrap { spec } => format!("bootstrap {spec}"),
        Commit { env, command } => match command {
            Some(c) => format!("commit of env {env}: {c}"),
            None => format!("commit of env {env}"),
        },
        Recipe {
            recipe,
            step_index,
            module,
        } => format!("recipe {recipe} step {} ({module})", step_index + 1),
        Oci { reference } => format!("oci {reference}"),
        DiskImage { source } => format!("disk image {source}"),
        Other { description } => description.clone(),
    }
}
