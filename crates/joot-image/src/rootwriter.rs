//! Writes entries read from an untrusted filesystem into a fresh layer directory, safely: every
//! path is split into plain components (no `..`, no `/`, no empty names), every parent is
//! opened component by component with `O_NOFOLLOW | O_DIRECTORY` from the layer root's fd, and
//! every entry is created with the `*at` calls relative to that parent, so a symlink in the
//! image (even one planted under a duplicated name) is never followed on the host. Owners are
//! set before modes (chown clears setuid), directory times after their children.
//! Overlay control xattrs (`trusted.overlay.*`, `user.overlay.*`) are dropped: they would change
//! how the layer is merged.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// What an entry is.
pub enum Kind<'a> {
    Dir,
    File(&'a mut dyn Read),
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry (its path, as components).
    HardLink(Vec<Vec<u8>>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One entry of the tree being written.
pub struct Entry<'a> {
    /// Path components below the root (never empty, never `.`/`..`).
    pub path: Vec<Vec<u8>>,
    pub kind: Kind<'a>,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Counts of what was written and skipped.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct WriteStats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped: u64,
}

/// A writer rooted at a directory the caller just created.
pub struct RootWriter {
    root: OwnedFd,
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    pub stats: WriteStats,
}

fn io_err(what: &str, path: &[Vec<u8>], e: Errno) -> Error {
    Error::Io(std::io::Error::other(format!(
        "{what} {}: {e}",
        display(path)
    )))
}

/// `a/b/c` for messages.
pub fn display(path: &[Vec<u8>]) -> String {
    path.iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Splits a path into plain components, refusing `..`, NUL and empty results; `.` and empty
/// components are dropped.
pub fn components(path: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => continue,
            b".." => {
                return Err(Error::invalid(format!(
                    "entry {:?} has a `..` component",
                    String::from_utf8_lossy(path)
                )));
            }
            c if c.contains(&0) => {
                return Err(Error::invalid("entry name contains NUL"));
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn ts(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl RootWriter {
    /// A writer into `root` (an existing, empty directory).
    pub fn new(root: &Path) -> Result<RootWriter> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| Error::Io(std::io::Error::other(format!("{}: {e}", root.display()))))?;
        Ok(RootWriter {
            root: fd,
            dir_times: Vec::new(),
            stats: WriteStats::default(),
        })
    }

    /// Opens the directory `comps` (all components) without following symlinks.
    fn open_dir(&self, comps: &[Vec<u8>]) -> Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.root).map_err(|e| io_err("dup", comps, e))?;
        for (i, c) in comps.iter().enumerate() {
            fd = rustix::fs::openat(
                &fd,
                c.as_slice(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| io_err("opening directory", &comps[..=i], e))?;
        }
        Ok(fd)
    }

    /// Writes one entry.
    pub fn write(&mut self, mut entry: Entry<'_>) -> Result<()> {
        let Some((name, parent_path)) = entry.path.split_last() else {
            // The root itself: owner, mode and time of the layer root.
            let fd = rustix::io::dup(&self.root).map_err(|e| io_err("dup", &[], e))?;
            self.set_owner_mode_fd(&fd, &entry)?;
            self.dir_times.push((Vec::new(), entry.mtime));
            return Ok(());
        };
        let parent = self.open_dir(parent_path)?;
        let name = name.as_slice();
        let path = &entry.path.clone();
        // A later entry of the same name replaces an earlier non-directory (tar semantics).
        if !matches!(entry.kind, Kind::Dir)
            && let Ok(st) = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
        {
            let is_dir =
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
            if is_dir {
                return Err(Error::invalid(format!(
                    "entry {} replaces a directory",
                    display(path)
                )));
            }
            rustix::fs::unlinkat(&parent, name, AtFlags::empty())
                .map_err(|e| io_err("replacing", path, e))?;
        }
        let xattrs: Vec<&(String, Vec<u8>)> = entry
            .xattrs
            .iter()
            .filter(|(n, _)| !n.starts_with("trusted.overlay.") && !n.starts_with("user.overlay."))
            .collect();
        match &entry.kind {
            Kind::Dir => {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err("creating directory", path, e)),
                }
                let fd = rustix::fs::openat(
                    &parent,
                    name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|e| io_err("opening directory", path, e))?;
                self.set_xattrs(&fd, path, &xattrs)?;
                self.set_owner_mode_fd(&fd, &entry)?;
                self.dir_times.push((path.clone(), entry.mtime));
            }
            Kind::File(_) => {
                let fd = rustix::fs::openat(
                    &parent,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::CLOEXEC
                        | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err("creating", path, e))?;
                let mut file = std::fs::File::from(fd);
                let Kind::File(reader) = &mut entry.kind else {
                    unreachable!("matched a file")
                };
                let n = std::io::copy(reader, &mut file).map_err(|e| {
                    Error::Io(std::io::Error::other(format!(
                        "writing {}: {e}",
                        display(path)
                    )))
                })?;
                self.stats.bytes += n;
                self.set_xattrs(&file, path, &xattrs)?;
                self.set_owner_mode_fd(&file, &entry)?;
                rustix::fs::futimens(&file, &ts(entry.mtime))
                    .map_err(|e| io_err("setting times of", path, e))?;
            }
            Kind::Symlink(target) => {
                rustix::fs::symlinkat(target.as_slice(), &parent, name)
                    .map_err(|e| io_err("creating symlink", path, e))?;
                self.chown_at(&parent, name, path, &entry)?;
                rustix::fs::utimensat(&parent, name, &ts(entry.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("setting times of", path, e))?;
            }
            Kind::HardLink(target) => {
                let Some((tname, tparent)) = target.split_last() else {
                    return Err(Error::invalid(format!(
                        "hard link {} to the root",
                        display(path)
                    )));
                };
                let tdir = self.open_dir(tparent)?;
                rustix::fs::linkat(&tdir, tname.as_slice(), &parent, name, AtFlags::empty())
                    .map_err(|e| io_err("creating hard link", path, e))?;
            }
            Kind::Char(_, _) | Kind::Block(_, _) | Kind::Fifo => {
                let (ft, dev) = match entry.kind {
                    Kind::Char(a, b) => (
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::makedev(a, b),
                    ),
                    Kind::Block(a, b) => {
                        (rustix::fs::FileType::BlockDevice, rustix::fs::makedev(a, b))
                    }
                    _ => (rustix::fs::FileType::Fifo, 0),
                };
                match rustix::fs::mknodat(&parent, name, ft, Mode::from_raw_mode(0o600), dev) {
                    Ok(()) => {}
                    Err(Errno::PERM) => {
                        // Device nodes need CAP_MKNOD (not available rootless): skip them.
                        self.stats.skipped += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(io_err("creating node", path, e)),
                }
                self.chown_at(&parent, name, path, &entry)?;
                rustix::fs::chmodat(
                    &parent,
                    name,
                    Mode::from_raw_mode(entry.mode & 0o7777),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("setting mode of", path, e))?;
                rustix::fs::utimensat(&parent, name, &ts(entry.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("setting times of", path, e))?;
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn chown_at(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[Vec<u8>],
        e: &Entry<'_>,
    ) -> Result<()> {
        match rustix::fs::chownat(
            parent,
            name,
            Some(rustix::fs::Uid::from_raw(e.uid)),
            Some(rustix::fs::Gid::from_raw(e.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => Ok(()),
            // Rootless without a mapping for this id: keep the file, lose the owner.
            Err(Errno::PERM) | Err(Errno::INVAL) => Ok(()),
            Err(err) => Err(io_err("setting owner of", path, err)),
        }
    }

    fn set_owner_mode_fd<Fd: AsFd>(&self, fd: Fd, e: &Entry<'_>) -> Result<()> {
        match rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(e.uid)),
            Some(rustix::fs::Gid::from_raw(e.gid)),
        ) {
            Ok(()) | Err(Errno::PERM) | Err(Errno::INVAL) => {}
            Err(err) => return Err(io_err("setting owner of", &e.path, err)),
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(e.mode & 0o7777))
            .map_err(|err| io_err("setting mode of", &e.path, err))
    }

    fn set_xattrs<Fd: AsFd>(
        &self,
        fd: Fd,
        path: &[Vec<u8>],
        xattrs: &[&(String, Vec<u8>)],
    ) -> Result<()> {
        for (name, value) in xattrs {
            match rustix::fs::fsetxattr(&fd, name.as_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                // trusted.* rootless, or a namespace the store's filesystem lacks.
                Err(Errno::PERM) | Err(Errno::OPNOTSUPP) => {}
                Err(e) => return Err(io_err(&format!("setting xattr {name} on"), path, e)),
            }
        }
        Ok(())
    }

    /// Sets directory times (deepest first, after all children were written).
    pub fn finish(mut self) -> Result<WriteStats> {
        self.dir_times
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (path, mtime) in &self.dir_times {
            let fd = self.open_dir(path)?;
            rustix::fs::futimens(&fd, &ts(*mtime))
                .map_err(|e| io_err("setting times of", path, e))?;
        }
        Ok(self.stats)
    }
}
