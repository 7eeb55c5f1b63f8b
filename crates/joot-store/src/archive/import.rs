//! Rootfs tarball import that is safe against hostile archives and faithful to what it holds.
//!
//! The `tar` crate is used only to decode headers and data; every entry is written by this
//! module through a directory fd of the destination: parents are resolved with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (openat2(2)), so no `..`, absolute
//! symlink or symlink chain can lead a write outside the destination, even if the tree changes
//! underneath; the leaf is created with `*at` calls that never follow a final symlink
//! (`O_NOFOLLOW | O_EXCL`, `AT_SYMLINK_NOFOLLOW`). Symlinks themselves may hold any target text
//! (`var/run -> /run` is legitimate); only writes *through* a symlink that leaves the root are
//! refused. `tar::Entry::unpack_in` is not used: it checks against the host's view and rejects
//! legitimate absolute symlinks.
//!
//! Kept: owner uid/gid (when running as root), mode with setuid/setgid/sticky, mtime (also of
//! symlinks and directories: directory modes and times are applied after their children),
//! xattrs from pax `SCHILY.xattr.*` records (security.capability, user.*, trusted.*), hard links
//! (to an entry already extracted inside the root), symlinks, char/block devices and fifos.
//! Overlayfs-internal xattrs other than the opaque marker (`redirect`, `metacopy`, ...) are
//! dropped: an archive must not steer how layers merge. On any error the destination is emptied again and the error names the entry.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::remove_tree;

/// Options of [`import_tar_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Keep the archive's uid/gid (needs root). Without it files belong to the caller, device
    /// nodes are skipped and xattrs the caller may not set are skipped (all counted).
    pub same_owner: bool,
}

impl Default for ImportOptions {
    /// `same_owner` when running as root.
    fn default() -> Self {
        ImportOptions {
            same_owner: rustix::process::geteuid().is_root(),
        }
    }
}

/// What an import wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportStats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Char and block devices and fifos.
    pub devices: u64,
    pub xattrs: u64,
    /// Bytes of regular file data.
    pub bytes: u64,
    /// Device nodes not created (no privilege).
    pub skipped_devices: u64,
    /// Xattrs not set (no privilege, or overlayfs-internal ones other than `opaque`).
    pub skipped_xattrs: u64,
}

/// Imports a plain (already decompressed) tar stream into `dest` with default options. `dest`
/// must be absent or an empty directory.
pub fn import_tar<R: Read>(reader: R, dest: &Path) -> Result<ImportStats> {
    import_tar_with(reader, dest, &ImportOptions::default())
}

/// Imports a plain tar stream into `dest` (absent or empty). On error `dest` is left empty.
pub fn import_tar_with<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ImportOptions,
) -> Result<ImportStats> {
    std::fs::create_dir_all(dest).at(dest)?;
    if std::fs::read_dir(dest).at(dest)?.next().is_some() {
        return Err(Error::io(
            dest,
            io::Error::other("destination is not empty: import into an empty directory"),
        ));
    }
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(dest)?;
    let mut importer = Importer {
        root,
        opts: opts.clone(),
        stats: ImportStats::default(),
        dirs: Vec::new(),
    };
    let result = importer.run(reader);
    if result.is_err() {
        empty_dir(dest);
    }
    result.map(|()| importer.stats)
}

/// Removes everything inside `dir` (best effort; never follows symlinks).
fn empty_dir(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = remove_tree(&e.path());
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A directory whose final mode and times are applied after its children.
struct PendingDir {
    comps: Vec<Vec<u8>>,
    mode: u32,
    mtime: Timespec,
}

struct Importer {
    root: OwnedFd,
    opts: ImportOptions,
    stats: ImportStats,
    dirs: Vec<PendingDir>,
}

/// Splits an archive path into components, dropping `/` and `.`; `..` is refused.
fn normalize(raw: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains '..': refusing to leave the destination".into()),
            c if c.contains(&0) => return Err("path contains a NUL byte".into()),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Turns a resolution error into words.
fn resolve_reason(e: Errno, what: &str) -> String {
    match e {
        Errno::XDEV => {
            format!("{what} goes through a symlink or '..' that leads outside the destination")
        }
        Errno::LOOP => format!("{what} goes through too many levels of symbolic links"),
        Errno::NOTDIR => format!("{what} goes through something that is not a directory"),
        Errno::NOENT => format!("{what} does not exist"),
        Errno::AGAIN => format!("{what} changed while it was being resolved"),
        e => format!("{what}: {}", io::Error::from(e)),
    }
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

impl Importer {
    fn run<R: Read>(&mut self, reader: R) -> Result<()> {
        let mut archive = tar::Archive::new(CountingReader {
            inner: reader,
            count: 0,
        });
        let mut last = String::from("(start of archive)");
        {
            let entries = archive
                .entries()
                .map_err(|e| Error::NotArchive(e.to_string()))?;
            for entry in entries {
                let mut entry =
                    entry.map_err(|e| Error::NotArchive(format!("{e} (after entry '{last}')")))?;
                let raw = entry.path_bytes().into_owned();
                last = String::from_utf8_lossy(&raw).into_owned();
                self.entry(&mut entry, &raw)
                    .map_err(|reason| Error::entry(&last, reason))?;
                self.stats.entries += 1;
            }
        }
        if archive.into_inner().count == 0 {
            return Err(Error::NotArchive("the input is empty".into()));
        }
        self.finish_dirs()
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> std::result::Result<(), String> {
        use tar::EntryType as T;
        let comps = normalize(raw)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if matches!(kind, T::XGlobalHeader) {
            return Ok(());
        }
        let mode = header.mode().map_err(|e| format!("bad mode: {e}"))? & 0o7777;
        let uid = header.uid().map_err(|e| format!("bad uid: {e}"))?;
        let gid = header.gid().map_err(|e| format!("bad gid: {e}"))?;
        let (xattrs, pax_mtime, skipped_xattrs) = pax_records(entry)?;
        self.stats.skipped_xattrs += skipped_xattrs;
        let mtime = match pax_mtime {
            Some(t) => t,
            None => Timespec {
                tv_sec: header.mtime().map_err(|e| format!("bad mtime: {e}"))? as i64,
                tv_nsec: 0,
            },
        };
        let owner = Owner {
            uid: u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?,
            gid: u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?,
        };

        let Some((leaf, parents)) = comps.split_last() else {
            // The root itself ("./"): only a directory makes sense.
            if kind != T::Directory {
                return Err("the archive root must be a directory".into());
            }
            let dir = rustix::fs::openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| format!("open destination: {}", io::Error::from(e)))?;
            self.own_fd(&dir, owner)?;
            self.set_xattrs_fd(&dir, &xattrs)?;
            self.dirs.push(PendingDir { comps, mode, mtime });
            return Ok(());
        };
        let parent = self.parent(parents, true)?;
        let leaf = os(leaf);
        match kind {
            T::Directory => {
                match rustix::fs::statat(&parent, leaf, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        self.remove_existing(&parent, leaf)?;
                        mkdir(&parent, leaf)?;
                    }
                    Err(Errno::NOENT) => mkdir(&parent, leaf)?,
                    Err(e) => return Err(io::Error::from(e).to_string()),
                }
                let dir = rustix::fs::openat(
                    &parent,
                    leaf,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("open directory: {}", io::Error::from(e)))?;
                self.own_fd(&dir, owner)?;
                self.set_xattrs_fd(&dir, &xattrs)?;
                self.dirs.push(PendingDir { comps, mode, mtime });
                self.stats.dirs += 1;
            }
            T::Regular | T::Continuous => {
                self.remove_existing(&parent, leaf)?;
                let fd = rustix::fs::openat(
                    &parent,
                    leaf,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| format!("create file: {}", io::Error::from(e)))?;
                let mut file = std::fs::File::from(fd);
                let want = entry.size();
                let got = io::copy(entry, &mut file).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        "archive is truncated inside this entry's data".to_string()
                    } else {
                        format!("write data: {e}")
                    }
                })?;
                if got != want {
                    return Err(format!(
                        "archive is truncated inside this entry's data ({got} of {want} bytes)"
                    ));
                }
                self.own_fd(&file, owner)?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                    .map_err(|e| format!("chmod: {}", io::Error::from(e)))?;
                self.set_xattrs_fd(&file, &xattrs)?;
                rustix::fs::futimens(&file, &times(mtime))
                    .map_err(|e| format!("set times: {}", io::Error::from(e)))?;
                self.stats.files += 1;
                self.stats.bytes += got;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or("symlink without a target")?
                    .into_owned();
                if target.is_empty() || target.contains(&0) {
                    return Err("symlink with an empty or invalid target".into());
                }
                self.remove_existing(&parent, leaf)?;
                rustix::fs::symlinkat(os(&target), &parent, leaf)
                    .map_err(|e| format!("create symlink: {}", io::Error::from(e)))?;
                self.own_at(&parent, leaf, owner)?;
                self.set_xattrs_path(&parent, leaf, &xattrs, true)?;
                set_times_at(&parent, leaf, mtime)?;
                self.stats.symlinks += 1;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or("hard link without a target")?
                    .into_owned();
                let tcomps = normalize(&target).map_err(|r| format!("hard link target: {r}"))?;
                let Some((tleaf, tparents)) = tcomps.split_last() else {
                    return Err("hard link to the archive root".into());
                };
                let tname = String::from_utf8_lossy(&target).into_owned();
                let tparent = self.parent(tparents, false).map_err(|_| {
                    format!("hard link target '{tname}' is not an entry inside the destination")
                })?;
                match rustix::fs::statat(&tparent, os(tleaf), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(format!("hard link target '{tname}' is a directory"));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(format!(
                            "hard link target '{tname}' does not exist inside the destination (it must come earlier in the archive)"
                        ));
                    }
                }
                if tcomps == comps {
                    return Ok(());
                }
                self.remove_existing(&parent, leaf)?;
                rustix::fs::linkat(&tparent, os(tleaf), &parent, leaf, AtFlags::empty()).map_err(
                    |e| format!("create hard link to '{tname}': {}", io::Error::from(e)),
                )?;
                self.stats.hardlinks += 1;
            }
            T::Char | T::Block | T::Fifo => {
                let ftype = match kind {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let (major, minor) = if ftype == FileType::Fifo {
                    (0, 0)
                } else {
                    (
                        header
                            .device_major()
                            .map_err(|e| format!("bad device major: {e}"))?
                            .unwrap_or(0),
                        header
                            .device_minor()
                            .map_err(|e| format!("bad device minor: {e}"))?
                            .unwrap_or(0),
                    )
                };
                // Without privilege only fifos and overlay whiteouts (char 0:0, which the
                // kernel lets anyone create since Linux 5.8) can be made.
                let whiteout = ftype == FileType::CharacterDevice && major == 0 && minor == 0;
                if ftype != FileType::Fifo && !whiteout && !self.opts.same_owner {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                self.remove_existing(&parent, leaf)?;
                match rustix::fs::mknodat(
                    &parent,
                    leaf,
                    ftype,
                    Mode::from_raw_mode(mode & 0o777),
                    rustix::fs::makedev(major, minor),
                ) {
                    Ok(()) => {}
                    // Root of a user namespace (a rootless import re-run there): the kernel
                    // allows only overlay whiteouts (char 0:0) and fifos; skip other devices,
                    // as a plain user does (runs bind /dev from the host anyway).
                    Err(Errno::PERM)
                        if ftype != FileType::Fifo
                            && (major, minor) != (0, 0)
                            && !in_initial_userns() =>
                    {
                        self.stats.skipped_devices += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(format!("mknod: {}", io::Error::from(e))),
                }
                self.own_at(&parent, leaf, owner)?;
                // chmod after chown (chown clears setuid/setgid); fchmodat does not follow
                // symlinks and this is a device node, so the path form is safe.
                rustix::fs::chmodat(&parent, leaf, Mode::from_raw_mode(mode), AtFlags::empty())
                    .map_err(|e| format!("chmod: {}", io::Error::from(e)))?;
                self.set_xattrs_path(&parent, leaf, &xattrs, false)?;
                set_times_at(&parent, leaf, mtime)?;
                self.stats.devices += 1;
            }
            T::GNUSparse => return Err("sparse files are not supported".into()),
            other => return Err(format!("unsupported entry type {other:?}")),
        }
        Ok(())
    }

    /// Opens the directory `comps` (relative to the root) beneath the root, creating missing
    /// directories (mode 0755) when `create`.
    fn parent(&self, comps: &[Vec<u8>], create: bool) -> std::result::Result<OwnedFd, String> {
        let path = join(comps);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let open = |p: &[u8]| {
            let p: &[u8] = if p.is_empty() { b"." } else { p };
            rustix::fs::openat2(&self.root, os(p), flags, Mode::empty(), resolve_flags())
        };
        match open(&path) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(resolve_reason(e, "the parent directory")),
        }
        // Slow path: create missing parents one by one, each resolved beneath the root.
        let mut fd = open(b"").map_err(|e| resolve_reason(e, "the destination"))?;
        for i in 0..comps.len() {
            match open(&join(&comps[..=i])) {
                Ok(next) => fd = next,
                Err(Errno::NOENT) => {
                    mkdir(&fd, os(&comps[i]))?;
                    rustix::fs::chmodat(
                        &fd,
                        os(&comps[i]),
                        Mode::from_raw_mode(0o755),
                        AtFlags::empty(),
                    )
                    .map_err(|e| format!("chmod parent: {}", io::Error::from(e)))?;
                    fd = open(&join(&comps[..=i]))
                        .map_err(|e| resolve_reason(e, "the parent directory"))?;
                }
                Err(e) => return Err(resolve_reason(e, "the parent directory")),
            }
        }
        Ok(fd)
    }

    /// Removes whatever is at `leaf` (never following it); a non-empty directory is an error.
    fn remove_existing(&self, parent: &OwnedFd, leaf: &OsStr) -> std::result::Result<(), String> {
        match rustix::fs::statat(parent, leaf, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(format!("stat existing entry: {}", io::Error::from(e))),
            Ok(st) => {
                let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                rustix::fs::unlinkat(parent, leaf, flags)
                    .map_err(|e| format!("replace existing entry: {}", io::Error::from(e)))
            }
        }
    }

    fn own_fd<Fd: AsFd>(&self, fd: Fd, o: Owner) -> std::result::Result<(), String> {
        if !self.opts.same_owner {
            return Ok(());
        }
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(o.uid)),
            Some(rustix::fs::Gid::from_raw(o.gid)),
        )
        .map_err(|e| format!("chown {}:{}: {}", o.uid, o.gid, io::Error::from(e)))
    }

    fn own_at(&self, parent: &OwnedFd, leaf: &OsStr, o: Owner) -> std::result::Result<(), String> {
        if !self.opts.same_owner {
            return Ok(());
        }
        rustix::fs::chownat(
            parent,
            leaf,
            Some(rustix::fs::Uid::from_raw(o.uid)),
            Some(rustix::fs::Gid::from_raw(o.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("chown {}:{}: {}", o.uid, o.gid, io::Error::from(e)))
    }

    fn xattr_failed(&mut self, name: &str, e: Errno) -> std::result::Result<(), String> {
        if !self.opts.same_owner && matches!(e, Errno::PERM | Errno::ACCESS | Errno::OPNOTSUPP) {
            self.stats.skipped_xattrs += 1;
            return Ok(());
        }
        Err(format!("set xattr {name}: {}", io::Error::from(e)))
    }

    fn set_xattrs_fd<Fd: AsFd>(
        &mut self,
        fd: Fd,
        xattrs: &[(String, Vec<u8>)],
    ) -> std::result::Result<(), String> {
        for (name, value) in xattrs {
            match rustix::fs::fsetxattr(fd.as_fd(), name.as_str(), value, XattrFlags::empty()) {
                Ok(()) => self.stats.xattrs += 1,
                Err(e) => self.xattr_failed(name, e)?,
            }
        }
        Ok(())
    }

    /// Xattrs on a symlink or device node: through an `O_PATH | O_NOFOLLOW` fd and its
    /// `/proc/self/fd` link (setxattr(2) on the magic link reaches the inode itself, without
    /// opening a device). User xattrs are not allowed on symlinks (xattr(7)): skipped there.
    fn set_xattrs_path(
        &mut self,
        parent: &OwnedFd,
        leaf: &OsStr,
        xattrs: &[(String, Vec<u8>)],
        symlink: bool,
    ) -> std::result::Result<(), String> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let fd = rustix::fs::openat(
            parent,
            leaf,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("open for xattrs: {}", io::Error::from(e)))?;
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        for (name, value) in xattrs {
            if symlink && name.starts_with("user.") {
                self.stats.skipped_xattrs += 1;
                continue;
            }
            match rustix::fs::setxattr(
                proc_path.as_str(),
                name.as_str(),
                value,
                XattrFlags::empty(),
            ) {
                Ok(()) => self.stats.xattrs += 1,
                Err(e) => self.xattr_failed(name, e)?,
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        // Deepest first, so a read-only parent does not block its children's updates.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.comps.len()));
        for d in dirs {
            let name = if d.comps.is_empty() {
                ".".to_string()
            } else {
                String::from_utf8_lossy(&join(&d.comps)).into_owned()
            };
            let path = join(&d.comps);
            let path: &[u8] = if path.is_empty() { b"." } else { &path };
            let fd = match rustix::fs::openat2(
                &self.root,
                os(path),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                resolve_flags(),
            ) {
                Ok(fd) => fd,
                // Replaced by a later entry of another type.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => continue,
                Err(e) => return Err(Error::entry(name, io::Error::from(e).to_string())),
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(d.mode))
                .map_err(|e| Error::entry(&name, format!("chmod: {}", io::Error::from(e))))?;
            rustix::fs::futimens(&fd, &times(d.mtime))
                .map_err(|e| Error::entry(&name, format!("set times: {}", io::Error::from(e))))?;
        }
        Ok(())
    }
}

/// True in the initial user namespace (uid_map "0 0 4294967295").
fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|t| t.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

fn mkdir(parent: &OwnedFd, leaf: &OsStr) -> std::result::Result<(), String> {
    rustix::fs::mkdirat(parent, leaf, Mode::from_raw_mode(0o700))
        .map_err(|e| format!("create directory: {}", io::Error::from(e)))
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

fn set_times_at(
    parent: &OwnedFd,
    leaf: &OsStr,
    mtime: Timespec,
) -> std::result::Result<(), String> {
    rustix::fs::utimensat(parent, leaf, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| format!("set times: {}", io::Error::from(e)))
}

/// Overlayfs's own xattrs steer how layers merge (`redirect`, `metacopy`, `origin`, ...; see
/// Documentation/filesystems/overlayfs.rst): from an archive only the opaque-directory marker is
/// taken, the rest is dropped (and counted as skipped).
fn overlay_xattr_allowed(name: &str) -> bool {
    match name
        .strip_prefix("trusted.overlay.")
        .or_else(|| name.strip_prefix("user.overlay."))
    {
        Some(rest) => rest == "opaque",
        None => true,
    }
}

/// The entry's xattrs (`SCHILY.xattr.NAME`), pax mtime if any, and how many xattrs were dropped.
#[allow(clippy::type_complexity)]
fn pax_records<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> std::result::Result<(Vec<(String, Vec<u8>)>, Option<Timespec>, u64), String> {
    let mut xattrs = Vec::new();
    let mut mtime = None;
    let mut skipped = 0;
    let Some(exts) = entry
        .pax_extensions()
        .map_err(|e| format!("bad pax header: {e}"))?
    else {
        return Ok((xattrs, mtime, skipped));
    };
    for ext in exts {
        let ext = ext.map_err(|e| format!("bad pax record: {e}"))?;
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            if name.is_empty() || name.contains('\0') {
                return Err(format!("bad xattr name {name:?}"));
            }
            if !overlay_xattr_allowed(name) {
                skipped += 1;
                continue;
            }
            xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
        } else if key == "mtime" {
            mtime = ext.value().ok().and_then(parse_pax_time);
        }
    }
    Ok((xattrs, mtime, skipped))
}

/// Parses a pax time (`1700000000.123456789`, maybe negative).
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = sec.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec: i64 = digits.parse().ok()?;
    if tv_sec < 0 && tv_nsec > 0 {
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: 1_000_000_000 - tv_nsec,
        });
    }
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_root_and_dots_and_refuses_dotdot() {
        assert_eq!(
            normalize(b"/etc/./passwd").unwrap(),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert!(normalize(b"./").unwrap().is_empty());
        assert!(normalize(b"a/../b").is_err());
        assert!(normalize(b"../../etc/x").is_err());
    }

    #[test]
    fn only_the_opaque_overlay_xattr_is_taken() {
        assert!(overlay_xattr_allowed("trusted.overlay.opaque"));
        assert!(overlay_xattr_allowed("user.overlay.opaque"));
        assert!(overlay_xattr_allowed("security.capability"));
        assert!(overlay_xattr_allowed("user.mime_type"));
        assert!(!overlay_xattr_allowed("trusted.overlay.redirect"));
        assert!(!overlay_xattr_allowed("user.overlay.metacopy"));
    }

    #[test]
    fn pax_times_parse() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1700000000, 500_000_000));
        let t = parse_pax_time("42").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (42, 0));
        assert!(parse_pax_time("x").is_none());
    }
}
