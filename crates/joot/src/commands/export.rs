//! `joot export`: an image or env becomes a disk image (raw, qcow2, vmdk, vhd, vhdx), an EC2
//! directory, a rootfs tar archive or an OCI layout. The arguments are validated into the
//! library's options first (format, size, flag combinations, existing output), then the
//! library runs; the written path goes to stdout (JSON with `--progress json` events on stderr).

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli;
use crate::reporters::Progress;

pub fn run(ctx: &Ctx, args: &cli::ExportArgs) -> Result<i32> {
    if is_oci(args) {
        return export_oci(ctx, args);
    }
    let req = joot_image::ExportRequest {
        output: args.output.clone(),
        format: args.format.clone(),
        size: args.size.clone(),
        bootable: args.bootable,
        fs: args.fs.clone(),
        partition: args.partition.clone(),
        vmdk_subformat: args.vmdk_subformat.clone(),
        compress: args.compress,
        force: args.force,
    };
    let opts = joot_image::ExportOptions::new(&req)?;
    if args.compression.is_some() {
        anyhow::bail!("--compression applies to --format oci; use --compress for qcow2");
    }
    let store = ctx.store()?;
    let rep = ImageReporter::new(ctx.progress());
    let started = std::time::Instant::now();
    let report = match opts.format {
        joot_image::ExportFormat::Tar(compression) => {
            export_tar(store, &args.source, &opts, compression)?;
            None
        }
        _ => Some(
            joot_image::export::export(store, &args.source, &opts, &rep)
                .with_context(|| format!("cannot export {}", args.source))?,
        ),
    };
    let secs = started.elapsed().as_secs_f64();
    if let Some(r) = &report {
        ctx.progress().event(
            "exported",
            serde_json::json!({
                "output": r.output,
                "disk_size": r.disk_size,
                "root_uuid": r.root_uuid,
                "kernel": r.kernel,
                "seconds": secs,
            }),
        );
    }
    ctx.progress()
        .line(&format!("exported {} in {secs:.1} s", args.source));
    println!("{}", opts.output.display());
    Ok(0)
}

fn is_oci(args: &cli::ExportArgs) -> bool {
    match &args.format {
        Some(f) => f.eq_ignore_ascii_case("oci") || f.eq_ignore_ascii_case("oci-dir"),
        None => {
            let name = args.output.to_string_lossy().to_ascii_lowercase();
            name.ends_with(".oci.tar") || name.ends_with(".oci")
        }
    }
}

fn export_oci(ctx: &Ctx, args: &cli::ExportArgs) -> Result<i32> {
    if args.bootable || args.partition.is_some() || args.compress || args.vmdk_subformat.is_some() {
        anyhow::bail!(
            "--bootable, --partition, --compress and --vmdk-subformat apply to disk images, not to --format oci"
        );
    }
    let opts = joot_oci::OciExportOptions {
        compression: match args.compression.as_deref() {
            Some(c) => joot_oci::Compression::parse(c)?,
            None => joot_oci::Compression::Gzip,
        },
        tag: None,
        directory: args
            .format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("oci-dir")),
        force: args.force,
    };
    let store = ctx.store()?;
    let image = store.image(&joot_store::Name::parse(&args.source)?)?;
    let rep = super::pull::OciReporter::new(ctx.progress());
    joot_oci::export_layout_with(store, &image, &args.output, &opts, &rep)
        .with_context(|| format!("cannot export {} as OCI", args.source))?;
    println!("{}", args.output.display());
    Ok(0)
}

fn export_tar(
    store: &joot_store::Store,
    source: &str,
    opts: &joot_image::ExportOptions,
    compression: joot_image::TarCompression,
) -> Result<()> {
    let src = joot_image::export::resolve_source(store, source)?;
    joot_image::export::export_tar(&src, opts, compression)
        .with_context(|| format!("cannot export {source} as a tar archive"))?;
    Ok(())
}

/// joot-image's progress steps as lines (or JSON events).
pub struct ImageReporter<'a> {
    progress: &'a Progress,
}

impl<'a> ImageReporter<'a> {
    pub fn new(progress: &'a Progress) -> ImageReporter<'a> {
        ImageReporter { progress }
    }
}

impl joot_image::Reporter for ImageReporter<'_> {
    fn step(&self, what: &str) {
        self.progress
            .event("step", serde_json::json!({ "message": what }));
        if self.progress.mode() != crate::reporters::Mode::Json {
            self.progress.line(what);
        }
    }

    fn note(&self, what: &str) {
        self.progress.line(what);
    }
}
