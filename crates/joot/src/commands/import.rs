//! `joot import`: a rootfs tarball (tar, tar.gz, tar.xz, tar.zst, or `-` for stdin), an OCI
//! layout or `docker save` archive, or a disk image (raw, qcow2, vmdk, vhd, vhdx) becomes an
//! image. The kind is detected from the content, never from the file name. Whatever fails, the
//! store is left as it was: the layer is staged and only published once complete.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use joot_store::{Image, Name, Origin, Replace};

use super::{Ctx, fmt_bytes};
use crate::cli;

pub fn run(ctx: &Ctx, args: &cli::ImportArgs) -> Result<i32> {
    let name = Name::parse(&args.name)?;
    let store = ctx.store()?;
    if !args.replace && store.image(&name).is_ok() {
        bail!("image '{name}' already exists (use --replace to overwrite it)");
    }
    let replace = if args.replace {
        Replace::Yes
    } else {
        Replace::No
    };
    if args.source == "-" {
        let stdin = std::io::stdin().lock();
        return import_tarball(ctx, Box::new(stdin), "-", &name, replace);
    }
    let path = Path::new(&args.source);
    fs_err::metadata(path)?;
    if joot_oci::import::detect(path) {
        let reporter = super::pull::OciReporter::new(ctx.progress());
        let opts = joot_oci::import::ImportOptions {
            replace: args.replace,
            ..Default::default()
        };
        joot_oci::import::import_archive_with(store, path, &name, &opts, &reporter)
            .with_context(|| format!("cannot import {}", path.display()))?;
        println!("{name}");
        return Ok(0);
    }
    if path.is_dir() {
        bail!(
            "{} is a directory but not an OCI image layout: import takes a tarball, an OCI \
             layout or `docker save` archive, or a disk image",
            path.display()
        );
    }
    if let Some(format) = joot_image::import::detect(path) {
        let mut opts = joot_image::import::ImportDiskOptions::new(name.as_str())?;
        opts.partition = args.partition;
        opts.replace = args.replace;
        opts.format = Some(format);
        let report = joot_image::import::import_disk(store, path, &opts)
            .with_context(|| format!("cannot import {}", path.display()))?;
        ctx.progress().line(&format!(
            "imported {} ({:?}) partition {} ({}): {} entries",
            path.display(),
            report.format,
            report.partition,
            report.filesystem,
            report.stats.entries
        ));
        println!("{name}");
        return Ok(0);
    }
    if args.partition.is_some() {
        bail!(
            "--partition applies to disk images, and {} is not one",
            path.display()
        );
    }
    let file = fs_err::File::open(path)?;
    import_tarball(ctx, Box::new(file), &args.source, &name, replace)
}

fn import_tarball(
    ctx: &Ctx,
    input: Box<dyn Read + '_>,
    source: &str,
    name: &Name,
    replace: Replace,
) -> Result<i32> {
    let store = ctx.store()?;
    let reader = joot_store::compress::open_decompressed(input)
        .with_context(|| format!("cannot read {source}"))?;
    let layer = store.new_layer()?;
    let stats = joot_store::archive::import_tar(reader, &layer.root())
        .with_context(|| format!("cannot import {source}"))?;
    let id = layer.publish(Origin::Import {
        source: source.to_string(),
    })?;
    let image = Image::new(name.clone(), vec![id]);
    store.put_image(&image, replace)?;
    ctx.progress().line(&format!(
        "imported {source}: {} entries, {}",
        stats.entries,
        fmt_bytes(stats.bytes)
    ));
    println!("{name}");
    Ok(0)
}
