//! `joot import DISK`: a disk image's root filesystem becomes a new layer and image. Disk
//! images are hostile input:
//!
//! 1. the container is inspected with `qemu-img info -f FORMAT` and refused if it names any
//!    other file (backing file, external data file, vmdk extents), then converted to a raw
//!    temporary file with `-f` given explicitly;
//! 2. the partition table is read by joot ([`crate::parttable`]) and every partition checked to
//!    lie inside the image;
//! 3. the root filesystem is read without ever being mounted read-write: as root, the kernel
//!    mounts it read-only (`ro,noload`, a read-only loop device with `offset=`/`sizelimit=`)
//!    inside a private mount namespace that dies with the reader, and GNU tar streams it with
//!    owners, modes, hard links, device nodes and xattrs; without root, the ext4-view crate reads
//!    it in userspace (it does not expose hard links, device numbers or xattrs: those are lost
//!    and counted);
//! 4. entries are written into a fresh layer by [`RootWriter`], which never follows a path of
//!    the image on the host.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ext4_view::Ext4;

use crate::error::{Error, Result};
use crate::format::DiskFormat;
use crate::parttable::{self, FoundPartition, ReadAt, TableKind};
use crate::qemu_img;
use crate::rootwriter::{self, Entry, Kind, RootWriter, WriteStats};
use crate::tool;

/// Recognises a disk image by its content: qcow2, vmdk, vhdx, vhd (dynamic or fixed) magic
/// numbers, else raw when there is a GPT, an MBR boot signature or an ext/xfs superblock at
/// the start.
pub fn detect(path: &Path) -> Option<DiskFormat> {
    let f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut head = [0u8; 1536];
    let n = read_upto(&f, 0, &mut head);
    let head = &head[..n];
    if head.starts_with(b"QFI\xfb") {
        return Some(DiskFormat::Qcow2);
    }
    if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        return Some(DiskFormat::Vmdk);
    }
    if head.starts_with(b"vhdxfile") {
        return Some(DiskFormat::Vhdx);
    }
    if head.starts_with(b"conectix") {
        return Some(DiskFormat::Vhd);
    }
    if len >= 512 {
        let mut foot = [0u8; 8];
        if read_upto(&f, len - 512, &mut foot) == 8 && &foot == b"conectix" {
            return Some(DiskFormat::Vhd);
        }
    }
    // A tar archive (the `ustar` magic at 257) is never a raw disk, whatever its bytes.
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return None;
    }
    if head.len() >= 1082
        && (&head[512..520] == b"EFI PART"
            || (head[510] == 0x55 && head[511] == 0xAA)
            || head[1080..1082] == [0x53, 0xEF]
            || head.starts_with(b"XFSB"))
    {
        return Some(DiskFormat::Raw);
    }
    None
}

/// The disk format a file name claims (`.raw`, `.qcow2`, `.vmdk`, `.vhd`, `.vhdx`); `.img`
/// and other names claim nothing.
fn claimed_format(path: &Path) -> Option<DiskFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "raw" => DiskFormat::Raw,
        "qcow2" => DiskFormat::Qcow2,
        "vmdk" => DiskFormat::Vmdk,
        "vhd" => DiskFormat::Vhd,
        "vhdx" => DiskFormat::Vhdx,
        _ => return None,
    })
}

/// Refuses an image whose name claims one format while its content is another: a guest can
/// write a qcow2 header (naming a backing file on the host) at the start of a raw disk, and
/// a tool that trusts the content then reads host files. Neither reading is taken on faith.
fn check_extension(path: &Path, format: DiskFormat) -> Result<()> {
    match claimed_format(path) {
        Some(claimed) if claimed != format => Err(Error::Refused {
            path: path.to_path_buf(),
            reason: format!(
                "its name says {} but its content is {} (a disk written by a guest can carry \
                 another format's header); convert it with `qemu-img convert -f {}` yourself \
                 if you trust it, or rename it",
                claimed.qemu_name(),
                format.qemu_name(),
                claimed.qemu_name()
            ),
        }),
        _ => Ok(()),
    }
}

fn read_upto(f: &std::fs::File, off: u64, buf: &mut [u8]) -> usize {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) | Err(_) => break,
            Ok(r) => n += r,
        }
    }
    n
}

/// How the root filesystem is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMethod {
    /// Kernel, read-only, in a private mount namespace (root): full fidelity.
    KernelReadOnly,
    /// ext4-view in userspace (any user): no hard links, device nodes or xattrs.
    Userspace,
}

/// Validated options of a disk import.
#[derive(Debug, Clone)]
pub struct ImportDiskOptions {
    /// Name of the new image.
    pub name: joot_store::Name,
    /// Partition holding the root filesystem (1-based; default: found automatically).
    pub partition: Option<u32>,
    /// Replace an existing image of that name.
    pub replace: bool,
    /// Container format (default: detected from the content).
    pub format: Option<DiskFormat>,
    /// How to read the filesystem (default: kernel read-only as root, else userspace).
    pub method: Option<ReadMethod>,
}

impl ImportDiskOptions {
    /// Options for importing as image `name`.
    pub fn new(name: &str) -> Result<ImportDiskOptions> {
        Ok(ImportDiskOptions {
            name: joot_store::Name::parse(name)?,
            partition: None,
            replace: false,
            format: None,
            method: None,
        })
    }
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportDiskReport {
    pub image: String,
    pub layer: String,
    pub format: DiskFormat,
    /// Partition number read (0: the image is a bare filesystem).
    pub partition: u32,
    pub filesystem: String,
    pub method: ReadMethod,
    pub stats: WriteStats,
}

/// A partition bounded view of the raw disk for ext4-view.
struct PartReader {
    file: std::fs::File,
    start: u64,
    size: u64,
}

impl ext4_view::Ext4Read for PartReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let end = start_byte
            .checked_add(dst.len() as u64)
            .filter(|e| *e <= self.size)
            .ok_or("read past the end of the partition")?;
        let _ = end;
        self.file.read_bytes(self.start + start_byte, dst)?;
        Ok(())
    }
}

fn open_ext4(raw: &Path, p: &FoundPartition) -> Result<Ext4> {
    let file = std::fs::File::open(raw)?;
    Ext4::load(Box::new(PartReader {
        file,
        start: p.start,
        size: p.size,
    }))
    .map_err(|e| Error::Ext4 {
        path: raw.to_path_buf(),
        message: e.to_string(),
    })
}

/// Imports the root filesystem of the disk image at `path` as a new image.
pub fn import_disk(
    store: &joot_store::Store,
    path: &Path,
    opts: &ImportDiskOptions,
) -> Result<ImportDiskReport> {
    if !opts.replace && store.image(&opts.name).is_ok() {
        return Err(Error::invalid(format!(
            "image {} already exists: pass --replace to replace it",
            opts.name.as_str()
        )));
    }
    let format = match opts.format {
        Some(f) => f,
        None => detect(path).ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason:
                "not a disk image joot recognises (raw with GPT/MBR/ext4, qcow2, vmdk, vhd, vhdx)"
                    .into(),
        })?,
    };
    check_extension(path, format)?;
    let staging = store.stage()?;
    let raw: PathBuf = if format == DiskFormat::Raw {
        path.to_path_buf()
    } else {
        qemu_img::inspect_untrusted(path, format)?;
        let raw = staging.path().join("disk.raw");
        qemu_img::convert_to_raw(path, format, &raw)?;
        raw
    };
    let file = std::fs::File::open(&raw)?;
    let len = file.metadata()?.len();
    let (kind, parts) = parttable::read_table(&file, len, path)?;
    let (part, fs) = choose_root(&raw, &file, kind, &parts, opts.partition, path)?;
    let method = opts
        .method
        .unwrap_or(if joot_sandbox::userns::privileged() {
            ReadMethod::KernelReadOnly
        } else {
            ReadMethod::Userspace
        });
    if fs == "xfs" && method == ReadMethod::Userspace {
        return Err(Error::NoRootFs {
            path: path.to_path_buf(),
            reason: "the root filesystem is xfs, which joot reads only as root (kernel, read-only)"
                .into(),
        });
    }
    let layer = store.new_layer()?;
    fs_err::create_dir_all(layer.root())?;
    let mut writer = RootWriter::new(&layer.root())?;
    match method {
        ReadMethod::KernelReadOnly => read_with_kernel(&raw, &part, &fs, &mut writer)?,
        ReadMethod::Userspace => read_with_ext4_view(&raw, &part, &mut writer)?,
    }
    let stats = writer.finish()?;
    let distro = distro_of(&layer.root());
    let id = layer_publish(layer, path)?;
    let mut image = joot_store::Image::new(opts.name.clone(), vec![id.clone()]);
    image.distro = distro;
    store.put_image(
        &image,
        if opts.replace {
            joot_store::Replace::Yes
        } else {
            joot_store::Replace::No
        },
    )?;
    drop(staging);
    Ok(ImportDiskReport {
        image: opts.name.as_str().to_string(),
        layer: id.as_str().to_string(),
        format,
        partition: part.number,
        filesystem: fs,
        method,
        stats,
    })
}

/// The distribution named by the imported tree's os-release (read inside the layer, symlinks
/// not followed), so package steps know the package manager.
fn distro_of(root: &Path) -> Option<joot_store::Distro> {
    let text = crate::disk::os_release(&crate::tree::Tree::Dir(root.to_path_buf()));
    let text = String::from_utf8_lossy(&text);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    let id = field("ID")?;
    let like = field("ID_LIKE").unwrap_or_default();
    let words: Vec<&str> = std::iter::once(id.as_str())
        .chain(like.split_whitespace())
        .collect();
    let (family, pm) = if words.iter().any(|w| matches!(*w, "debian" | "ubuntu")) {
        ("debian", "apt")
    } else if words
        .iter()
        .any(|w| matches!(*w, "fedora" | "rhel" | "centos" | "rocky" | "almalinux"))
    {
        ("rpm", "dnf")
    } else {
        ("", "")
    };
    Some(joot_store::Distro {
        family: family.to_string(),
        id,
        release: field("VERSION_ID")
            .or_else(|| field("VERSION_CODENAME"))
            .unwrap_or_default(),
        arch: String::new(),
        package_manager: pm.to_string(),
    })
}

fn layer_publish(layer: joot_store::LayerBuilder, path: &Path) -> Result<joot_store::LayerId> {
    Ok(layer.publish(joot_store::Origin::DiskImage {
        source: path.display().to_string(),
    })?)
}

/// Picks the root filesystem: `--partition N`, else the largest ext4 (or xfs) partition that
/// has an `/etc` directory.
fn choose_root(
    raw: &Path,
    file: &std::fs::File,
    kind: TableKind,
    parts: &[FoundPartition],
    wanted: Option<u32>,
    shown: &Path,
) -> Result<(FoundPartition, String)> {
    let fs_of = |p: &FoundPartition| -> Option<&'static str> {
        if parttable::has_ext_magic(file as &dyn ReadAt, p.start) {
            Some("ext4")
        } else if parttable::has_xfs_magic(file as &dyn ReadAt, p.start) {
            Some("xfs")
        } else {
            None
        }
    };
    let none = |reason: String| Error::NoRootFs {
        path: shown.to_path_buf(),
        reason,
    };
    if let Some(n) = wanted {
        let p = parts
            .iter()
            .find(|p| p.number == n || (kind == TableKind::None && n <= 1))
            .ok_or_else(|| {
                none(format!(
                    "there is no partition {n} (found: {})",
                    parts
                        .iter()
                        .map(|p| p.number.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let fs = fs_of(p).ok_or_else(|| {
            none(format!(
                "partition {n} holds no ext4 or xfs filesystem (unknown filesystem)"
            ))
        })?;
        return Ok((p.clone(), fs.to_string()));
    }
    let mut best: Option<(FoundPartition, &'static str)> = None;
    let mut seen = Vec::new();
    for p in parts {
        let Some(fs) = fs_of(p) else {
            seen.push(format!("{}: unknown filesystem", p.number));
            continue;
        };
        let has_etc = match fs {
            "ext4" => open_ext4(raw, p)
                .ok()
                .and_then(|e| e.metadata("/etc").ok())
                .is_some_and(|m| m.is_dir()),
            // xfs is checked when read; accept it as a candidate.
            _ => true,
        };
        seen.push(format!(
            "{}: {fs}{}",
            p.number,
            if has_etc { "" } else { " without /etc" }
        ));
        if has_etc && best.as_ref().is_none_or(|(b, _)| p.size > b.size) {
            best = Some((p.clone(), fs));
        }
    }
    best.map(|(p, fs)| (p, fs.to_string())).ok_or_else(|| {
        none(format!(
            "no ext4 or xfs partition with /etc ({}); pass --partition N",
            if seen.is_empty() {
                "no partitions".to_string()
            } else {
                seen.join(", ")
            }
        ))
    })
}

/// Root: mounts the filesystem read-only in a private mount namespace and reads GNU tar's
/// stream of it.
fn read_with_kernel(
    raw: &Path,
    part: &FoundPartition,
    fs: &str,
    writer: &mut RootWriter,
) -> Result<()> {
    let mnt = tempfile::Builder::new().prefix("joot-import-").tempdir()?;
    tool::TAR.check()?;
    // noload/norecovery: never replay a journal (that would write); nosuid,nodev,noexec: the
    // mount only feeds tar.
    let opts = match fs {
        "xfs" => "ro,norecovery,nosuid,nodev,noexec",
        _ => "ro,noload,nosuid,nodev,noexec",
    };
    let mut cmd = tool::command(&tool::UNSHARE)?;
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"mount -t "$5" -o "$6,loop,offset=$3,sizelimit=$4" "$1" "$2" || exit 99
exec tar -C "$2" --numeric-owner --xattrs --xattrs-include='*' --exclude=./lost+found -cf - ."#,
        )
        .arg("sh")
        .arg(raw)
        .arg(mnt.path())
        .arg(part.start.to_string())
        .arg(part.size.to_string())
        .arg(fs)
        .arg(opts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let argv = tool::argv_string(&cmd);
    tracing::debug!(%argv, "reading the filesystem through a read-only kernel mount");
    let mut child = cmd.spawn().map_err(|e| Error::ToolFailed {
        argv: argv.clone(),
        status: "could not start".into(),
        stderr: e.to_string(),
    })?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let result = write_tar_stream(stdout, writer);
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::ToolFailed {
            argv,
            status: tool::status_string(&status),
            stderr: tool::tail(&stderr),
        });
    }
    result
}

fn write_tar_stream(stream: impl Read, writer: &mut RootWriter) -> Result<()> {
    let mut archive = tar::Archive::new(stream);
    let tar_err = |e: std::io::Error| {
        Error::Io(std::io::Error::other(format!(
            "reading the filesystem stream: {e}"
        )))
    };
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let path = rootwriter::components(&entry.path_bytes())?;
        let header = entry.header().clone();
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(tar_err)? {
            for ext in exts {
                let ext = ext.map_err(tar_err)?;
                if let Ok(key) = ext.key()
                    && let Some(name) = key.strip_prefix("SCHILY.xattr.")
                {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let mode = header.mode().map_err(tar_err)?;
        let uid = header.uid().map_err(tar_err)? as u32;
        let gid = header.gid().map_err(tar_err)? as u32;
        let mtime = header.mtime().map_err(tar_err)? as i64;
        let dev = || -> Result<(u32, u32)> {
            Ok((
                header.device_major().map_err(tar_err)?.unwrap_or(0),
                header.device_minor().map_err(tar_err)?.unwrap_or(0),
            ))
        };
        let link = || -> Result<Vec<u8>> {
            Ok(entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default())
        };
        let ty = header.entry_type();
        let kind_owned;
        let kind = match ty {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(link()?),
            tar::EntryType::Link => {
                kind_owned = rootwriter::components(&link()?)?;
                Kind::HardLink(kind_owned)
            }
            tar::EntryType::Char => {
                let (a, b) = dev()?;
                Kind::Char(a, b)
            }
            tar::EntryType::Block => {
                let (a, b) = dev()?;
                Kind::Block(a, b)
            }
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let e = Entry {
                    path,
                    kind: Kind::File(&mut entry),
                    mode,
                    uid,
                    gid,
                    mtime,
                    xattrs,
                };
                writer.write(e)?;
                continue;
            }
            _ => continue,
        };
        writer.write(Entry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })?;
    }
    Ok(())
}

/// Any user: walks the ext4 filesystem with ext4-view.
fn read_with_ext4_view(raw: &Path, part: &FoundPartition, writer: &mut RootWriter) -> Result<()> {
    let fs = open_ext4(raw, part)?;
    let err = |e: ext4_view::Ext4Error| Error::Ext4 {
        path: raw.to_path_buf(),
        message: e.to_string(),
    };
    let root_md = fs.metadata("/").map_err(err)?;
    writer.write(Entry {
        path: Vec::new(),
        kind: Kind::Dir,
        mode: root_md.mode() as u32,
        uid: root_md.uid(),
        gid: root_md.gid(),
        mtime: root_md.modified().seconds(),
        xattrs: Vec::new(),
    })?;
    let mut stack: Vec<ext4_view::PathBuf> = vec![ext4_view::PathBuf::new("/")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<ext4_view::DirEntry> = Vec::new();
        for e in fs.read_dir(&dir).map_err(err)? {
            entries.push(e.map_err(err)?);
        }
        entries.sort_by(|a, b| a.file_name().as_ref().cmp(b.file_name().as_ref()));
        for e in entries {
            let name = e.file_name();
            let name_bytes: &[u8] = name.as_ref();
            if name_bytes == b"." || name_bytes == b".." {
                continue;
            }
            let epath = e.path();
            let comps = rootwriter::components(epath.as_ref())?;
            if comps.len() == 1 && comps[0] == b"lost+found" {
                continue;
            }
            let md = e.metadata().map_err(err)?;
            let ft = md.file_type();
            let mode = md.mode() as u32 & 0o7777;
            let base = |kind| Entry {
                path: comps.clone(),
                kind,
                mode,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.modified().seconds(),
                xattrs: Vec::new(),
            };
            if ft.is_dir() {
                writer.write(base(Kind::Dir))?;
                stack.push(epath);
            } else if ft.is_symlink() {
                let target = fs.read_link(&epath).map_err(err)?;
                writer.write(base(Kind::Symlink(target.as_ref().to_vec())))?;
            } else if ft.is_regular_file() {
                let mut f = fs.open(&epath).map_err(err)?;
                let mut entry = base(Kind::Dir);
                entry.kind = Kind::File(&mut f);
                writer.write(entry)?;
            } else if ft.is_fifo() {
                writer.write(base(Kind::Fifo))?;
            } else {
                // Device nodes (no device numbers in ext4-view) and sockets.
                writer.stats.skipped += 1;
            }
        }
    }
    Ok(())
}

/// Imports the image at `path` if it is a disk image (the CLI's content detection).
pub fn is_disk_image(path: &Path) -> bool {
    detect(path).is_some()
}
