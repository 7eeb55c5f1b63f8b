//! Building a raw disk file step by step, each step writing bytes into the file at an offset:
//! the partition table (`sfdisk` on the plain file), the root ext4 (`mkfs.ext4 -d` with
//! `-E offset=`), `/etc/fstab` (debugfs on the built filesystem, so the image itself is never
//! touched), the EFI system partition (`mkfs.vfat --offset` + mtools), GRUB for BIOS (boot.img
//! and core.img laid down as bytes) and a unified kernel image for UEFI (objcopy + the systemd
//! stub). No step needs a loop device, a mount or nbd.
//!
//! Reproducibility: the ext4 UUID and hash seed come from [`Ids`], the owner of `/` is fixed
//! with `root_owner`, and every tool that stamps times runs with the fixed `epoch`
//! (`E2FSPROGS_FAKE_TIME`, `mkfs.vfat --invariant`, mtools with `SOURCE_DATE_EPOCH`).

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::layout::{Ids, Layout, Partition, SECTOR};
use crate::tool::{self, Tool};
use crate::tree::{Kernel, Tree};

/// The label of every root filesystem joot writes (`root=LABEL=root` works too).
pub const ROOT_LABEL: &str = "root";

/// Creates (or truncates) `path` as a sparse file of `size` bytes.
pub fn create_sparse(path: &Path, size: u64) -> Result<()> {
    let f = fs_err::File::create(path)?;
    f.set_len(size)?;
    Ok(())
}

/// Runs `cmd` with `input` on its stdin.
fn run_with_input(cmd: &mut Command, input: &[u8]) -> Result<()> {
    let argv = tool::argv_string(cmd);
    tracing::debug!(%argv, "running with input");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::ToolFailed {
            argv: argv.clone(),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    tool::check_output(&argv, &out)
}

/// Writes the partition table of `layout` into the disk file.
pub fn write_table(disk: &Path, layout: &Layout) -> Result<()> {
    let Some(script) = layout.sfdisk_script() else {
        return Ok(());
    };
    let mut cmd = tool::command(&tool::SFDISK)?;
    cmd.args(["--no-reread", "--no-tell-kernel", "--wipe", "never", "-q"])
        .arg(disk);
    run_with_input(&mut cmd, script.as_bytes())
}

/// What to build a root ext4 with.
#[derive(Debug, Clone)]
pub struct Ext4Spec {
    pub uuid: String,
    pub hash_seed: String,
    pub offset: u64,
    pub size: u64,
    /// Seconds since the epoch for every time mkfs stamps.
    pub epoch: u64,
}

impl Ext4Spec {
    /// The spec for the root partition of `layout`.
    pub fn for_root(layout: &Layout, ids: &Ids, epoch: u64) -> Ext4Spec {
        let root = layout.root();
        Ext4Spec {
            uuid: ids.uuid("root-fs"),
            hash_seed: ids.uuid("root-fs-hash-seed"),
            offset: root.start,
            size: root.size,
            epoch,
        }
    }

    /// `mkfs.ext4` filling the filesystem from `src` (a directory).
    pub fn command(&self, disk: &Path, src: &Path) -> Result<Command> {
        let mut cmd = tool::MKFS_EXT4.command()?;
        cmd.env("E2FSPROGS_FAKE_TIME", self.epoch.to_string())
            // A host mke2fs.conf that differs changes the bytes, not the meaning: pin the
            // features that matter for old bootloaders and kernels by naming the type.
            .args(["-F", "-q", "-t", "ext4", "-L", ROOT_LABEL, "-U", &self.uuid])
            .arg("-E")
            .arg(format!(
                "offset={},hash_seed={},root_owner=0:0,nodiscard",
                self.offset, self.hash_seed
            ))
            .arg("-d")
            .arg(src)
            .arg(disk)
            // With a unit: a bare number would be read as 1 KiB blocks.
            .arg(format!("{}k", self.size / 1024));
        Ok(cmd)
    }
}

/// Builds the root ext4 from the merged tree straight into the disk file.
pub fn mkfs_root(disk: &Path, tree: &Tree, spec: &Ext4Spec) -> Result<()> {
    let disk = disk.to_path_buf();
    let spec2 = spec.clone();
    // Check presence up front: inside the closure an error cannot be returned.
    tool::MKFS_EXT4.check()?;
    tree.run_with_merged(&move |merged: &Path| {
        spec2
            .command(&disk, merged)
            .unwrap_or_else(|_| Command::new("mkfs.ext4"))
    })?;
    Ok(())
}

/// The smallest filesystem mkfs.xfs makes (xfsprogs 5.19 and later).
pub const XFS_MIN_SIZE: u64 = 300 << 20;

/// Builds an xfs root at `spec.offset` of `disk`: mkfs.xfs on a scratch file in `work`, the
/// merged tree copied in with `cp -a` (owners, modes, hard links, xattrs, device nodes)
/// through a loop mount inside the private mount namespace the merged tree lives in (killed,
/// the namespace and its loop mount go with it), then the file written into the partition,
/// holes kept. The filesystem is joot's own, never an untrusted one.
pub fn mkfs_root_xfs(disk: &Path, tree: &Tree, spec: &Ext4Spec, work: &Path) -> Result<()> {
    tool::MKFS_XFS.check()?;
    let fs = work.join("root.xfs");
    create_sparse(&fs, spec.size)?;
    let target = work.join("root.xfs.mnt");
    fs_err::create_dir(&target)?;
    let mkfs = tool::MKFS_XFS.command()?;
    let mkfs_prog = mkfs.get_program().to_os_string();
    let (fs2, target2, uuid) = (fs.clone(), target.clone(), spec.uuid.clone());
    tree.run_with_merged(&move |merged: &Path| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(concat!(
                r#"set -e; "$1" -q -f -L "$2" -m uuid="$3" "$4"; "#,
                r#"mount -o loop "$4" "$5" || { echo "joot: --fs xfs needs root (it loop-mounts the new filesystem); rootless exports use ext4" >&2; exit 1; }; "#,
                r#"cp -a "$6"/. "$5"/ || { umount "$5"; exit 1; }; umount "$5""#
            ))
            .arg("joot-xfs")
            .arg(&mkfs_prog)
            .arg(ROOT_LABEL)
            .arg(&uuid)
            .arg(&fs2)
            .arg(&target2)
            .arg(merged);
        cmd
    })?;
    copy_into(&fs, disk, spec.offset)?;
    Ok(())
}

/// Copies `src` into `dst` at `offset`, skipping holes (SEEK_DATA/SEEK_HOLE) so the disk stays
/// sparse.
fn copy_into(src: &Path, dst: &Path, offset: u64) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsFd;
    let mut from = fs_err::File::open(src)?;
    let mut to = fs_err::OpenOptions::new().write(true).open(dst)?;
    let len = from.metadata()?.len();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while pos < len {
        let data = match rustix::fs::seek(from.file().as_fd(), rustix::fs::SeekFrom::Data(pos)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(Error::Io(e.into())),
        };
        let hole = rustix::fs::seek(from.file().as_fd(), rustix::fs::SeekFrom::Hole(data))
            .map_err(|e| Error::Io(e.into()))?;
        from.seek(SeekFrom::Start(data))?;
        to.seek(SeekFrom::Start(offset + data))?;
        let mut left = hole - data;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            from.read_exact(&mut buf[..n])?;
            to.write_all(&buf[..n])?;
            left -= n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// Replaces `/etc/fstab` inside the ext4 at `offset` of `disk` with `content` (root-owned,
/// 0644, times = epoch), using debugfs on the file: the source image is never modified. Does
/// nothing when the tree has no `/etc` directory.
pub fn write_fstab(disk: &Path, offset: u64, content: &str, epoch: u64) -> Result<()> {
    let dev = format!("{}?offset={offset}", disk.display());
    let probe = debugfs(&dev, false, "stat /etc\n", epoch)?;
    if !probe.contains("Type: directory") {
        tracing::debug!("no /etc directory in the image: fstab not written");
        return Ok(());
    }
    let staged = tempfile::NamedTempFile::new()?;
    fs_err::write(staged.path(), content)?;
    let host = staged.path().display().to_string();
    if host.contains(char::is_whitespace) || host.contains('"') {
        return Err(Error::invalid(format!(
            "temporary path {host:?} cannot be passed to debugfs: set TMPDIR to a plain path"
        )));
    }
    let mut script = String::from("rm /etc/fstab\n");
    script.push_str(&format!("write {host} /etc/fstab\n"));
    for (field, value) in [
        ("mode", "0100644".to_string()),
        ("uid", "0".into()),
        ("gid", "0".into()),
        ("atime", epoch.to_string()),
        ("mtime", epoch.to_string()),
        ("ctime", epoch.to_string()),
        ("crtime", epoch.to_string()),
    ] {
        script.push_str(&format!("set_inode_field /etc/fstab {field} {value}\n"));
    }
    debugfs(&dev, true, &script, epoch)?;
    let check = debugfs(&dev, false, "cat /etc/fstab\n", epoch)?;
    if !check.contains(content.trim_end()) {
        return Err(Error::ToolFailed {
            argv: format!("debugfs -w {dev}"),
            status: "fstab not written".into(),
            stderr: check,
        });
    }
    Ok(())
}

fn debugfs(dev: &str, write: bool, script: &str, epoch: u64) -> Result<String> {
    let mut cmd = tool::command(&tool::DEBUGFS)?;
    cmd.env("E2FSPROGS_FAKE_TIME", epoch.to_string());
    if write {
        cmd.arg("-w");
    }
    cmd.args(["-f", "-"]).arg(dev);
    let argv = tool::argv_string(&cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    tool::check_output(&argv, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel command line of a bootable disk.
pub fn kernel_cmdline(root_uuid: &str) -> String {
    // console=ttyS0 last: it becomes /dev/console, so boot messages and the login prompt
    // (systemd's serial getty) appear on the serial line `joot boot` shows.
    format!("root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200n8")
}

/// Builds the FAT32 EFI system partition at `part` and copies `files` (ESP path, host path)
/// into it with mtools, without mounting.
pub fn make_esp(
    disk: &Path,
    part: &Partition,
    ids: &Ids,
    files: &[(&str, &Path)],
    epoch: u64,
) -> Result<()> {
    let mut cmd = tool::command(&tool::MKFS_VFAT)?;
    // -s 2: 1 KiB clusters; without it a 256 MiB FAT32 has too few root directory slots for
    // mtools. --invariant: no time-based or random values (volume id given with -i).
    cmd.args(["-F", "32", "-s", "2", "--invariant", "-n", "ESP"])
        .arg("-i")
        .arg(format!("{:08X}", ids.u32("esp-volume")))
        .arg(format!("--offset={}", part.start / SECTOR))
        .arg(disk)
        .arg((part.size / 1024).to_string());
    tool::run(cmd)?;
    let image = format!("{}@@{}", disk.display(), part.start);
    let mut dirs: Vec<String> = Vec::new();
    for (dest, _) in files {
        let mut acc = String::new();
        let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            acc.push('/');
            acc.push_str(c);
            if !dirs.contains(&acc) {
                dirs.push(acc.clone());
            }
        }
    }
    for d in &dirs {
        let mut cmd = tool::command(&tool::MMD)?;
        cmd.env("MTOOLS_SKIP_CHECK", "1")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .arg("-i")
            .arg(&image)
            .arg(format!("::{d}"));
        tool::run(cmd)?;
    }
    for (dest, src) in files {
        let mut cmd = tool::command(&tool::MCOPY)?;
        // Without -m mtools stamps "now", which SOURCE_DATE_EPOCH pins.
        cmd.env("MTOOLS_SKIP_CHECK", "1")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .arg("-i")
            .arg(&image)
            .arg(src)
            .arg(format!("::{dest}"));
        tool::run(cmd)?;
    }
    Ok(())
}

/// Assembles a unified kernel image: the systemd EFI stub with the kernel, initrd, command
/// line and os-release as PE sections (the layout of systemd 252's stub: .osrel at 0x20000,
/// .cmdline at 0x30000, .linux at 0x2000000, .initrd above the kernel).
pub fn make_uki(out: &Path, kernel: &Kernel, cmdline: &str, os_release: &[u8]) -> Result<()> {
    let stub = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    if !stub.is_file() {
        return Err(Error::ToolMissing {
            tool: stub.display().to_string(),
            package: "systemd-boot-efi".into(),
            reason: "to make the UEFI boot image of a bootable disk".into(),
        });
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    let cmdline_file = dir.join("uki-cmdline");
    let osrel_file = dir.join("uki-osrel");
    fs_err::write(&cmdline_file, format!("{cmdline}\0"))?;
    fs_err::write(&osrel_file, os_release)?;
    // The stub reads copies: objcopy reading the image's own files would move their access
    // times, which mkfs copies into the next export of the same image.
    let vmlinuz = dir.join("uki-vmlinuz");
    copy_noatime(&kernel.vmlinuz, &vmlinuz)?;
    let initrd = match &kernel.initrd {
        Some(i) => {
            let to = dir.join("uki-initrd");
            copy_noatime(i, &to)?;
            Some(to)
        }
        None => None,
    };
    let kernel_len = fs_err::metadata(&vmlinuz)?.len();
    let linux_vma: u64 = 0x200_0000;
    let initrd_vma = (linux_vma + kernel_len + 0x10_0000).div_ceil(0x10_0000) * 0x10_0000;
    let mut cmd = tool::command(&tool::OBJCOPY)?;
    cmd.arg("--add-section")
        .arg(format!(".osrel={}", osrel_file.display()))
        .args(["--change-section-vma", ".osrel=0x20000"])
        .arg("--add-section")
        .arg(format!(".cmdline={}", cmdline_file.display()))
        .args(["--change-section-vma", ".cmdline=0x30000"])
        .arg("--add-section")
        .arg(format!(".linux={}", vmlinuz.display()))
        .arg("--change-section-vma")
        .arg(format!(".linux={linux_vma:#x}"));
    if let Some(initrd) = &initrd {
        cmd.arg("--add-section")
            .arg(format!(".initrd={}", initrd.display()))
            .arg("--change-section-vma")
            .arg(format!(".initrd={initrd_vma:#x}"));
    }
    cmd.arg(stub).arg(out);
    tool::run(cmd)?;
    clear_pe_timestamp(out)?;
    Ok(())
}

/// Zeroes the COFF TimeDateStamp of a PE file (objcopy stamps the current time) and the
/// checksum that covered it, so the UKI is reproducible. PE/COFF spec: e_lfanew at 0x3c, then "PE\0\0", machine (2), sections (2),
/// TimeDateStamp (4).
fn clear_pe_timestamp(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut b = [0u8; 4];
    f.seek(SeekFrom::Start(0x3c))?;
    f.read_exact(&mut b)?;
    let pe = u32::from_le_bytes(b) as u64;
    f.seek(SeekFrom::Start(pe))?;
    f.read_exact(&mut b)?;
    if &b != b"PE\0\0" {
        return Err(Error::invalid(format!(
            "{} is not a PE file after objcopy",
            path.display()
        )));
    }
    f.write_all_at(&[0u8; 4], pe + 8)?;
    // The optional header's CheckSum (PE+24+64) covered the old stamp; firmware ignores it.
    f.write_all_at(&[0u8; 4], pe + 24 + 64)?;
    Ok(())
}

/// GRUB's BIOS image files.
const GRUB_I386: &str = "/usr/lib/grub/i386-pc";

/// Installs GRUB for BIOS into a GPT disk whose BIOS boot partition is `bios`: core.img (with
/// an embedded config that boots the kernel straight away) at the start of that partition, the
/// boot sector code of boot.img into sector 0 (keeping the protective MBR's partition table).
pub fn install_bios_grub(
    disk: &Path,
    bios: &Partition,
    kernel: &Kernel,
    root_uuid: &str,
    cmdline: &str,
    work: &Path,
) -> Result<()> {
    let boot_img = Path::new(GRUB_I386).join("boot.img");
    if !boot_img.is_file() {
        return Err(Error::ToolMissing {
            tool: boot_img.display().to_string(),
            package: "grub-pc-bin".into(),
            reason: "to make a disk that boots under BIOS".into(),
        });
    }
    let cfg = work.join("grub-early.cfg");
    let vmlinuz = &kernel.vmlinuz_rel;
    let initrd = match &kernel.initrd_rel {
        Some(i) => format!("initrd {i}\n"),
        None => String::new(),
    };
    fs_err::write(
        &cfg,
        format!(
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             search --no-floppy --fs-uuid --set=root {root_uuid}\n\
             linux {vmlinuz} {cmdline}\n\
             {initrd}\
             boot\n"
        ),
    )?;
    let core = work.join("core.img");
    let mut cmd = tool::command(&tool::GRUB_MKIMAGE)?;
    cmd.args(["-O", "i386-pc", "-d", GRUB_I386, "-p", "/boot/grub", "-c"])
        .arg(&cfg)
        .arg("-o")
        .arg(&core)
        .args([
            "biosdisk",
            "part_gpt",
            "part_msdos",
            "ext2",
            "search",
            "search_fs_uuid",
            "linux",
            "serial",
            "terminal",
            "boot",
            "echo",
            "gzio",
        ]);
    tool::run(cmd)?;
    let mut core_bytes = fs_err::read(&core)?;
    if core_bytes.len() as u64 > bios.size {
        return Err(Error::invalid(format!(
            "GRUB core.img is {} bytes, larger than the BIOS boot partition",
            core_bytes.len()
        )));
    }
    let start_lba = bios.start / SECTOR;
    // diskboot.img (first sector of core.img): the blocklist's first sector, u64 LE at 0x1f4,
    // is where the rest of core.img lives (grub-core/boot/i386/pc/diskboot.S).
    core_bytes[0x1f4..0x1fc].copy_from_slice(&(start_lba + 1).to_le_bytes());
    let mut boot = fs_err::read(&boot_img)?;
    if boot.len() != 512 {
        return Err(Error::invalid("GRUB boot.img is not one sector"));
    }
    // boot.img: kernel_sector, u64 LE at 0x5c, is where diskboot.img is
    // (grub-core/boot/i386/pc/boot.S, GRUB_BOOT_MACHINE_KERNEL_SECTOR).
    boot[0x5c..0x64].copy_from_slice(&start_lba.to_le_bytes());
    let f = OpenOptions::new().write(true).open(disk)?;
    // Only the code area: bytes 440.. hold the disk signature and the (protective) MBR table.
    f.write_all_at(&boot[..440], 0)?;
    f.write_all_at(&core_bytes, bios.start)?;
    f.sync_all()?;
    Ok(())
}

/// Reads `/etc/os-release` (or `/usr/lib/os-release`) from the tree, following the usual
/// relative symlink inside the tree only.
pub fn os_release(tree: &Tree) -> Vec<u8> {
    for p in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(host) = tree.resolve(Path::new(p))
            && let Ok(md) = std::fs::symlink_metadata(&host)
            && md.is_file()
            && let Ok(b) = read_noatime(&host)
        {
            return b;
        }
    }
    b"NAME=joot\n".to_vec()
}

/// Reads a whole file of the image without updating its access time (see
/// [`joot_store::fsutil::open_noatime`]: mkfs copies access times into the disk).
pub fn read_noatime(path: &Path) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    joot_store::fsutil::open_noatime(path)
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        })?
        .read_to_end(&mut b)?;
    Ok(b)
}

/// Copies a file of the image to `to` (created 0644) without updating its access time.
pub fn copy_noatime(from: &Path, to: &Path) -> Result<()> {
    let mut src = joot_store::fsutil::open_noatime(from).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", from.display()),
        ))
    })?;
    let mut dst = fs_err::File::create(to)?;
    std::io::copy(&mut src, &mut dst)?;
    Ok(())
}

/// The scratch directory for one export (UKI parts, core.img).
pub fn work_dir(near: &Path) -> Result<tempfile::TempDir> {
    let parent = near
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(tempfile::Builder::new()
        .prefix(".joot-export-")
        .tempdir_in(parent)?)
}

/// The `Tool` list an export with these settings needs, for an up-front check.
pub fn tools_needed(bootable: bool, partitioned: bool, convert: bool) -> Vec<Tool> {
    let mut t = vec![tool::MKFS_EXT4];
    if partitioned {
        t.push(tool::SFDISK);
    }
    if bootable {
        t.extend([
            tool::DEBUGFS,
            tool::MKFS_VFAT,
            tool::MMD,
            tool::MCOPY,
            tool::GRUB_MKIMAGE,
            tool::OBJCOPY,
        ]);
    }
    if convert {
        t.push(tool::QEMU_IMG);
    }
    t
}
