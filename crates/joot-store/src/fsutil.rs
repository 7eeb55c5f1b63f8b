//! Atomic publish helpers: write a temp file, fsync it, rename it into place, fsync the
//! directory; `RENAME_NOREPLACE` (renameat2(2)) where a name must not be overwritten, so two
//! racing creators get exactly one winner from the kernel instead of a check-then-act race.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use rustix::fs::{CWD, RenameFlags};

use crate::error::{IoContext, Result};

/// 32 random bytes from the kernel.
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf
}

/// A short unique token for temp names: pid, nanoseconds and a process-wide counter.
pub(crate) fn unique_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists (file or directory).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(|e| {
        // ENOTEMPTY can come back for directories on some filesystems; both mean "taken".
        if e == rustix::io::Errno::EXIST || e == rustix::io::Errno::NOTEMPTY {
            io::Error::from(io::ErrorKind::AlreadyExists)
        } else {
            e.into()
        }
    })
}

/// Opens a stored file for reading without updating its access time (`O_NOATIME`, allowed to
/// the file's owner and to root; anyone else falls back to a plain open), and without
/// following a symlink in the last component. Layers are read-only: reading them for an
/// export must not change them, and `mkfs.ext4 -d` copies access times into disk images, so
/// a read that moved them would make the next export of the same image differ.
pub fn open_noatime(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let fd = match rustix::fs::open(path, flags | OFlags::NOATIME, Mode::empty()) {
        Err(rustix::io::Errno::PERM) => rustix::fs::open(path, flags, Mode::empty()),
        r => r,
    }?;
    Ok(File::from(fd))
}

/// fsyncs a directory so a rename into it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` to `tmp`, fsyncs it, then renames it to `dest` (replacing it when `replace`,
/// refusing with `AlreadyExists` otherwise) and fsyncs `dest`'s directory. `tmp` must be on the
/// same filesystem as `dest`; it is removed on failure.
pub fn publish_file(tmp: &Path, dest: &Path, data: &[u8], replace: bool) -> Result<()> {
    let result = (|| -> Result<()> {
        let mut f = File::create(tmp).at(tmp)?;
        f.write_all(data).at(tmp)?;
        f.sync_all().at(tmp)?;
        drop(f);
        if replace {
            std::fs::rename(tmp, dest).at(dest)?;
        } else {
            rename_noreplace(tmp, dest).at(dest)?;
        }
        if let Some(dir) = dest.parent() {
            fsync_dir(dir).at(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Removes a tree if it exists; does not follow symlinks. Directories without write or search
/// permission (a read-only dir in a rootless layer, overlay's `work/work` with mode 000) are
/// made accessible first when the plain removal is refused.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_accessible(path);
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        }
        r => r,
    }
}

fn make_dirs_accessible(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(md) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        return;
    }
    let mode = md.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_dirs_accessible(&e.path());
            }
        }
    }
}

/// Apparent size in bytes of the regular files and symlinks under `root` (not following
/// symlinks, each hard-linked inode counted once).
pub(crate) fn tree_size(root: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                stack.push(entry.path());
            } else if md.is_file() || md.file_type().is_symlink() {
                if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                    continue;
                }
                total += md.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_refuses_existing() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        rename_noreplace(&a, &d.path().join("c")).unwrap();
        assert!(d.path().join("c").is_dir());
    }

    #[test]
    fn publish_file_replaces_or_refuses() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x.json");
        publish_file(&d.path().join(".t1"), &dest, b"one", false).unwrap();
        assert!(publish_file(&d.path().join(".t2"), &dest, b"two", false).is_err());
        assert!(!d.path().join(".t2").exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        publish_file(&d.path().join(".t3"), &dest, b"three", true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"three");
    }

    #[test]
    fn remove_tree_handles_locked_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        std::fs::create_dir_all(t.join("ro/inner")).unwrap();
        std::fs::write(t.join("ro/inner/f"), "x").unwrap();
        std::fs::set_permissions(t.join("ro/inner"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        std::fs::set_permissions(t.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        remove_tree(&t).unwrap();
    }

    #[test]
    fn tree_size_counts_hardlinks_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("s")).unwrap();
        std::fs::write(d.path().join("s/a"), b"12345").unwrap();
        std::fs::hard_link(d.path().join("s/a"), d.path().join("b")).unwrap();
        std::fs::write(d.path().join("c"), b"123").unwrap();
        assert_eq!(tree_size(d.path()).unwrap(), 8);
    }
}
