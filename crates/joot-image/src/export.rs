//! `joot export` for disk formats: a flat sequence of steps (plan the layout, write the table,
//! build the root ext4 from the merged tree, for a bootable disk add fstab, the ESP with a UKI
//! and GRUB for BIOS, then convert), all into a scratch directory beside the output that is
//! renamed into place at the end, so a failed export leaves no half-written output.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::disk::{self, Ext4Spec};
use crate::error::{Error, Result};
use crate::format::{DiskFormat, DiskSize, ExportFormat};
use crate::layout::{Ids, Layout, PartKind, PartitionTable};
use crate::qemu_img::{self, ConvertOptions};
use crate::tree::Tree;

/// Progress of a long export or import; implemented by the binary (bars, plain lines, JSON).
pub trait Reporter {
    /// A step starts ("building the root filesystem").
    fn step(&self, what: &str);
    /// Something the user should know (a fallback taken).
    fn note(&self, _what: &str) {}
}

/// A reporter that drops everything.
pub struct Quiet;

impl Reporter for Quiet {
    fn step(&self, _what: &str) {}
}

/// The fixed time stamped into exported filesystems when `SOURCE_DATE_EPOCH` is not set
/// (2024-01-01T00:00:00Z).
pub const DEFAULT_EPOCH: u64 = 1_704_067_200;

/// Validated options of one export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub output: PathBuf,
    pub format: ExportFormat,
    pub size: DiskSize,
    pub bootable: bool,
    pub table: PartitionTable,
    pub convert: ConvertOptions,
    /// Overwrite an existing output.
    pub force: bool,
    /// Time stamped into filesystems (SOURCE_DATE_EPOCH).
    pub epoch: u64,
    /// The root filesystem.
    pub fs: RootFs,
}

/// The filesystem of an exported root partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootFs {
    /// `mkfs.ext4 -d`: built from the tree with no mount, byte-reproducible.
    #[default]
    Ext4,
    /// `mkfs.xfs` then the tree copied in through a loop mount of the new (joot-made, so
    /// trusted) filesystem inside a private mount namespace: needs root, not reproducible to
    /// the byte (xfsprogs 6.1 cannot fill a filesystem from a directory).
    Xfs,
}

/// The user's export request, as strings from the command line.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub output: PathBuf,
    pub format: Option<String>,
    pub size: String,
    pub bootable: bool,
    pub fs: String,
    pub partition: Option<String>,
    pub vmdk_subformat: Option<String>,
    pub compress: bool,
    pub force: bool,
}

impl ExportOptions {
    /// Checks the request and turns it into options; every refusal happens here, before any
    /// file is written.
    pub fn new(req: &ExportRequest) -> Result<ExportOptions> {
        let format = match &req.format {
            Some(f) => ExportFormat::parse(f)?,
            None => ExportFormat::from_path(&req.output)?,
        };
        let size = DiskSize::parse(if req.size.is_empty() {
            "auto"
        } else {
            &req.size
        })?;
        let fs = match req.fs.as_str() {
            "" | "ext4" => RootFs::Ext4,
            "xfs" => RootFs::Xfs,
            other => {
                return Err(Error::invalid(format!(
                    "--fs {other}: joot writes ext4 (the default) or xfs root filesystems"
                )));
            }
        };
        if fs == RootFs::Xfs && (req.bootable || format == ExportFormat::Ec2) {
            return Err(Error::invalid(
                "--fs xfs makes plain (not bootable) disks: bootable and EC2 exports use ext4, which joot's bootloader setup and fstab writer read",
            ));
        }
        if fs == RootFs::Xfs && matches!(format, ExportFormat::Tar(_)) {
            return Err(Error::invalid(
                "--fs applies to disk images (raw, qcow2, vmdk, vhd, vhdx), not to a tar archive",
            ));
        }
        let disk_only = |flag: &str| {
            Error::invalid(format!(
                "{flag} applies to disk images (raw, qcow2, vmdk, vhd, vhdx), not to {}",
                match format {
                    ExportFormat::Tar(_) => "a tar archive",
                    _ => "--format ec2",
                }
            ))
        };
        let disk_fmt = match format {
            ExportFormat::Disk(d) => Some(d),
            _ => None,
        };
        if disk_fmt.is_none() {
            if req.bootable {
                return Err(disk_only("--bootable"));
            }
            if req.partition.is_some() {
                return Err(disk_only("--partition"));
            }
        }
        if req.compress && disk_fmt != Some(DiskFormat::Qcow2) {
            return Err(Error::invalid("--compress applies to qcow2 output only"));
        }
        let vmdk_subformat = match &req.vmdk_subformat {
            None => None,
            Some(s) => {
                if disk_fmt != Some(DiskFormat::Vmdk) {
                    return Err(Error::invalid(
                        "--vmdk-subformat applies to vmdk output only",
                    ));
                }
                match s.to_ascii_lowercase().as_str() {
                    "monolithicsparse" => Some("monolithicSparse".to_string()),
                    "streamoptimized" => Some("streamOptimized".to_string()),
                    _ => {
                        return Err(Error::invalid(format!(
                            "--vmdk-subformat {s}: use monolithicSparse or streamOptimized (single-file formats)"
                        )));
                    }
                }
            }
        };
        let table = match (&req.partition, format) {
            (_, ExportFormat::Ec2) => PartitionTable::None,
            (Some(p), _) => PartitionTable::parse(p)?,
            (None, _) => PartitionTable::Gpt,
        };
        if req.bootable && table != PartitionTable::Gpt {
            return Err(Error::invalid(
                "--bootable makes a GPT disk (BIOS and UEFI): drop --partition or use --partition gpt",
            ));
        }
        if !req.force && std::fs::symlink_metadata(&req.output).is_ok() {
            let is_empty_dir = format == ExportFormat::Ec2
                && std::fs::read_dir(&req.output).is_ok_and(|mut d| d.next().is_none());
            if !is_empty_dir {
                return Err(Error::invalid(format!(
                    "{} exists: pass --force to overwrite it",
                    req.output.display()
                )));
            }
        }
        if let Some(parent) = req.output.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::invalid(format!(
                "{} does not exist: create the directory for the output first",
                parent.display()
            )));
        }
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                Error::invalid(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
                ))
            })?,
            _ => DEFAULT_EPOCH,
        };
        Ok(ExportOptions {
            output: req.output.clone(),
            format,
            size,
            bootable: req.bootable,
            table,
            convert: ConvertOptions {
                compress: req.compress,
                vmdk_subformat,
            },
            force: req.force,
            epoch,
            fs,
        })
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// The file (or directory for EC2) written.
    pub output: PathBuf,
    /// Virtual disk size in bytes (the raw size).
    pub disk_size: u64,
    /// UUID of the root filesystem.
    pub root_uuid: String,
    /// Kernel version made bootable, if any.
    pub kernel: Option<String>,
}

/// Exports `tree` as a disk image or EC2 directory. `ids` seeds every identifier (pass the
/// image's layer ids for reproducible output). Tar formats are written by joot-store and are
/// refused here.
pub fn export_tree(
    tree: &Tree,
    ids: &Ids,
    opts: &ExportOptions,
    rep: &dyn Reporter,
) -> Result<ExportReport> {
    match opts.format {
        ExportFormat::Disk(fmt) => export_disk(tree, ids, opts, fmt, rep),
        ExportFormat::Ec2 => export_ec2(tree, ids, opts, rep),
        ExportFormat::Tar(_) => Err(Error::invalid(
            "tar archives are written from the store (joot_store::archive), not as disk images",
        )),
    }
}

fn check_tools(opts: &ExportOptions, convert: bool) -> Result<()> {
    for t in disk::tools_needed(opts.bootable, opts.table != PartitionTable::None, convert) {
        t.check()?;
    }
    Ok(())
}

fn export_disk(
    tree: &Tree,
    ids: &Ids,
    opts: &ExportOptions,
    fmt: DiskFormat,
    rep: &dyn Reporter,
) -> Result<ExportReport> {
    check_tools(opts, fmt != DiskFormat::Raw)?;
    let kernel = if opts.bootable {
        Some(tree.find_kernel().ok_or(Error::NoKernel)?)
    } else {
        None
    };
    rep.step("measuring the tree");
    let content = tree.content_size()?;
    // mkfs.xfs refuses filesystems under 300 MiB.
    let content = match opts.fs {
        RootFs::Xfs => content.max(disk::XFS_MIN_SIZE),
        RootFs::Ext4 => content,
    };
    let layout = Layout::plan(opts.table, opts.bootable, opts.size, content, ids)?;
    let work = disk::work_dir(&opts.output)?;
    let raw = work.path().join("disk.raw");
    disk::create_sparse(&raw, layout.disk_size)?;
    if opts.table != PartitionTable::None {
        rep.step("writing the partition table");
        disk::write_table(&raw, &layout)?;
    }
    let spec = Ext4Spec::for_root(&layout, ids, opts.epoch);
    rep.step("building the root filesystem");
    match opts.fs {
        RootFs::Ext4 => disk::mkfs_root(&raw, tree, &spec)?,
        RootFs::Xfs => disk::mkfs_root_xfs(&raw, tree, &spec, work.path())?,
    }
    if let Some(kernel) = &kernel {
        rep.step("writing /etc/fstab");
        disk::write_fstab(
            &raw,
            spec.offset,
            &format!(
                "# written by joot export\nUUID={} / ext4 errors=remount-ro 0 1\n",
                spec.uuid
            ),
            opts.epoch,
        )?;
        let cmdline = disk::kernel_cmdline(&spec.uuid);
        rep.step("making the UEFI boot image");
        let uki = work.path().join("BOOTX64.EFI");
        disk::make_uki(&uki, kernel, &cmdline, &disk::os_release(tree))?;
        let esp = layout
            .part(PartKind::Esp)
            .expect("bootable layout has an ESP");
        rep.step("building the EFI system partition");
        disk::make_esp(
            &raw,
            esp,
            ids,
            &[("/EFI/BOOT/BOOTX64.EFI", uki.as_path())],
            opts.epoch,
        )?;
        rep.step("installing GRUB for BIOS");
        let bios = layout
            .part(PartKind::BiosBoot)
            .expect("bootable layout has a BIOS boot partition");
        disk::install_bios_grub(&raw, bios, kernel, &spec.uuid, &cmdline, work.path())?;
    }
    let produced = if fmt == DiskFormat::Raw {
        raw.clone()
    } else {
        rep.step(&format!("converting to {}", fmt.name()));
        let out = work.path().join(format!("disk.{}", fmt.name()));
        qemu_img::convert_raw(&raw, &out, fmt, &opts.convert)?;
        out
    };
    place(&produced, &opts.output, opts.force)?;
    Ok(ExportReport {
        output: opts.output.clone(),
        disk_size: layout.disk_size,
        root_uuid: spec.uuid,
        kernel: kernel.map(|k| k.version),
    })
}

fn export_ec2(
    tree: &Tree,
    ids: &Ids,
    opts: &ExportOptions,
    rep: &dyn Reporter,
) -> Result<ExportReport> {
    check_tools(opts, false)?;
    tool_path(crate::tool::DEBUGFS)?;
    let kernel = tree.find_kernel().ok_or(Error::NoKernel)?;
    rep.step("measuring the tree");
    let content = tree.content_size()?;
    let layout = Layout::plan(PartitionTable::None, false, opts.size, content, ids)?;
    fs_err::create_dir_all(&opts.output)?;
    let work = tempfile::Builder::new()
        .prefix(".joot-export-")
        .tempdir_in(&opts.output)?;
    let raw = work.path().join("root.img");
    disk::create_sparse(&raw, layout.disk_size)?;
    let spec = Ext4Spec::for_root(&layout, ids, opts.epoch);
    rep.step("building the root filesystem");
    disk::mkfs_root(&raw, tree, &spec)?;
    rep.step("writing /etc/fstab");
    disk::write_fstab(
        &raw,
        0,
        &format!(
            "# written by joot export\nLABEL={} / ext4 errors=remount-ro 0 1\n",
            disk::ROOT_LABEL
        ),
        opts.epoch,
    )?;
    rep.step("copying the kernel and initrd");
    disk::copy_noatime(&kernel.vmlinuz, &work.path().join("vmlinuz"))?;
    let mut files = vec!["root.img", "vmlinuz"];
    if let Some(initrd) = &kernel.initrd {
        disk::copy_noatime(initrd, &work.path().join("initrd.img"))?;
        files.push("initrd.img");
    }
    for f in files {
        place(&work.path().join(f), &opts.output.join(f), true)?;
    }
    Ok(ExportReport {
        output: opts.output.clone(),
        disk_size: layout.disk_size,
        root_uuid: spec.uuid,
        kernel: Some(kernel.version),
    })
}

fn tool_path(t: crate::tool::Tool) -> Result<PathBuf> {
    Ok(t.check()?)
}

/// Moves the finished file into place (same filesystem: a rename).
fn place(src: &Path, dst: &Path, force: bool) -> Result<()> {
    if !force && std::fs::symlink_metadata(dst).is_ok() {
        return Err(Error::invalid(format!(
            "{} exists: pass --force to overwrite it",
            dst.display()
        )));
    }
    fs_err::rename(src, dst)?;
    Ok(())
}

/// The image or env an export reads, resolved in the store.
#[derive(Debug)]
pub struct ExportSource {
    /// The merged tree.
    pub tree: Tree,
    /// Identifiers seeded by the layer ids.
    pub ids: Ids,
    /// `image NAME` or `env NAME`, for messages.
    pub what: String,
    /// Keeps `gc` from removing the layers while they are read.
    _lease: joot_store::Lease,
}

/// Resolves `name` as an image, else as an env (its current state: layers plus upper).
pub fn resolve_source(store: &joot_store::Store, name: &str) -> Result<ExportSource> {
    let parsed = joot_store::Name::parse(name)?;
    let lease = store.lease()?;
    match store.image(&parsed) {
        Ok(image) => {
            let layers = image.layers.iter().map(|l| store.layer_root(l)).collect();
            let ids = Ids::from_seed(&image.layers.iter().map(|l| l.as_str()).collect::<Vec<_>>());
            return Ok(ExportSource {
                tree: Tree::Layers(layers),
                ids,
                what: format!("image {name}"),
                _lease: lease,
            });
        }
        Err(joot_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let env = match store.env(&parsed) {
        Ok(env) => env,
        Err(joot_store::Error::NotFound { .. }) => {
            return Err(Error::invalid(format!(
                "no image or env named {name:?}: see `joot images` and `joot ls`"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if matches!(env.source, joot_store::EnvSource::Host) {
        return Err(Error::invalid(format!(
            "env {name} is based on the host's root and cannot be exported: export an image-based env"
        )));
    }
    let mut layers: Vec<PathBuf> = env
        .source
        .layers()
        .iter()
        .map(|l| store.layer_root(l))
        .collect();
    layers.push(store.env_paths(&parsed).upper);
    let mut seed: Vec<String> = env
        .source
        .layers()
        .iter()
        .map(|l| l.as_str().to_string())
        .collect();
    seed.push(format!("env:{name}"));
    Ok(ExportSource {
        tree: Tree::Layers(layers),
        ids: Ids::from_seed(&seed),
        what: format!("env {name}"),
        _lease: lease,
    })
}

/// Exports the image or env `name` of `store` as a disk image or EC2 directory.
pub fn export(
    store: &joot_store::Store,
    name: &str,
    opts: &ExportOptions,
    rep: &dyn Reporter,
) -> Result<ExportReport> {
    let src = resolve_source(store, name)?;
    export_tree(&src.tree, &src.ids, opts, rep)
}

/// Writes the merged tree of `src` as a rootfs tar archive (plain, gzip or zstd) with
/// joot-store's userspace merge (whiteouts applied, names sorted, numeric owners, xattrs, mtimes
/// clamped to `SOURCE_DATE_EPOCH` when set): no mount, no privilege. Written beside the output
/// and renamed into place.
pub fn export_tar(
    src: &ExportSource,
    opts: &ExportOptions,
    compression: crate::format::TarCompression,
) -> Result<()> {
    use crate::format::TarCompression;
    let layers: Vec<PathBuf> = match &src.tree {
        Tree::Dir(d) => vec![d.clone()],
        Tree::Layers(l) => l.clone(),
    };
    let work = disk::work_dir(&opts.output)?;
    let out = work.path().join("rootfs.tar");
    let mut file = std::io::BufWriter::new(fs_err::File::create(&out)?);
    let tar_opts = joot_store::archive::TarOptions::default();
    match compression {
        TarCompression::None => {
            joot_store::archive::write_merged_tar(&layers, &mut file, &tar_opts)?;
            file.flush()?;
        }
        TarCompression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            joot_store::archive::write_merged_tar(&layers, &mut enc, &tar_opts)?;
            enc.finish()?.flush()?;
        }
        TarCompression::Zstd => {
            let mut enc = zstd::Encoder::new(file, 3)?;
            joot_store::archive::write_merged_tar(&layers, &mut enc, &tar_opts)?;
            enc.finish()?.flush()?;
        }
    }
    fs_err::File::open(&out)?.sync_all()?;
    place(&out, &opts.output, opts.force)
}
