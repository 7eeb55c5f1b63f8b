//! `joot push`.

use anyhow::{Context, Result};
use joot_store::Name;

use super::Ctx;
use super::pull::{OciReporter, registry_options};
use crate::cli;

pub fn run(ctx: &Ctx, args: &cli::PushArgs) -> Result<i32> {
    let name = Name::parse(&args.image)?;
    joot_oci::parse_reference(&args.reference)?;
    let opts = joot_oci::PushOptions {
        compression: match args.compression.as_deref() {
            Some(c) => joot_oci::Compression::parse(c)?,
            None => joot_oci::Compression::Gzip,
        },
        registry: registry_options(ctx, &args.registry)?,
    };
    let store = ctx.store()?;
    let image = store.image(&name)?;
    let reporter = OciReporter::new(ctx.progress());
    let report = joot_oci::push(store, &image, &args.reference, &opts, &reporter)
        .with_context(|| format!("cannot push {} to {}", args.image, args.reference))?;
    ctx.progress().line(&format!(
        "pushed {} layers ({} already there)",
        report.uploaded, report.skipped
    ));
    println!("{}", report.manifest_digest);
    Ok(0)
}
