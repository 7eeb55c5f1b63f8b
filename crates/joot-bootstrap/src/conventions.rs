//! What every bootstrapped tree looks like when joot hands it over, whatever installer made it:
//!
//! - `/etc/machine-id` exists and is empty, so every booted copy generates its own
//!   (machine-id(5): an empty file means "not yet initialised").
//! - `/etc/hostname` is `localhost`; the installers copy the host's. Envs get their hostname
//!   from the UTS namespace, booted images from this file or DHCP.
//! - `/etc/fstab` holds only a comment: envs are mounted by joot, and `joot export` writes the
//!   fstab of a disk image. (mmdebstrap and debootstrap leave "UNCONFIGURED" there.)
//! - `/etc/resolv.conf` is an empty regular file and `/etc/hosts` the usual loopback lines:
//!   joot binds the host's resolver configuration over the former at run time, which needs a
//!   plain file to mount on (a dangling symlink to a resolved stub would not do).
//! - Debian family: `/etc/apt/sources.list` names the chosen mirror, and
//!   `/usr/sbin/policy-rc.d` exits 101 so that package installs inside envs and builds never
//!   start services (invoke-rc.d(8), "POLICY-RC.D INTERFACE"). The file is part of the image on
//!   purpose: `joot build` runs apt in envs and needs nothing more. Systemd at boot ignores it;
//!   an exporter that wants package upgrades on a booted machine to restart services removes
//!   it with [`remove_install_guards`].
//!
//! Files are written through `openat2(RESOLVE_IN_ROOT)`: the tree came from packages, and a
//! symlink in it (`/etc/resolv.conf -> /run/...`) must never lead a write out onto the host.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::distro::Family;

/// The policy-rc.d joot puts into Debian-family images.
pub const POLICY_RC_D: &str = "#!/bin/sh\n# joot: services are not started by package installs inside environments and builds.\n# See invoke-rc.d(8). Remove this file to let maintainer scripts start services.\nexit 101\n";

/// Files that keep package installs from starting services, per family (path in the root,
/// content, mode).
pub fn install_guards(family: Family) -> &'static [(&'static str, &'static str, u32)] {
    match family {
        Family::Debian => &[("usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)],
        Family::Rpm => &[],
    }
}

const FSTAB: &str = "# joot: filesystems of environments are mounted by joot; disk images made by\n# `joot export` get their own fstab.\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n";

/// Applies the conventions of the module docs to the tree at `root`. `apt_sources` are the
/// one-line sources for the Debian family.
pub fn apply(root: &Path, family: Family, apt_sources: &[String]) -> io::Result<()> {
    let r = open_root(root)?;
    write_file(&r, "etc/machine-id", b"", 0o444)?;
    write_file(&r, "etc/hostname", b"localhost\n", 0o644)?;
    write_file(&r, "etc/fstab", FSTAB.as_bytes(), 0o644)?;
    write_file(&r, "etc/resolv.conf", b"", 0o644)?;
    write_file(&r, "etc/hosts", HOSTS.as_bytes(), 0o644)?;
    if family == Family::Debian {
        let mut list = String::from("# joot bootstrap: the mirror this image was installed from\n");
        for s in apt_sources {
            list.push_str(s);
            list.push('\n');
        }
        write_file(&r, "etc/apt/sources.list", list.as_bytes(), 0o644)?;
    }
    for (path, content, mode) in install_guards(family) {
        write_file(&r, path, content.as_bytes(), *mode)?;
    }
    Ok(())
}

/// Removes the [`install_guards`] from a tree (for exporters of bootable images).
pub fn remove_install_guards(root: &Path, family: Family) -> io::Result<()> {
    let r = open_root(root)?;
    for (path, _, _) in install_guards(family) {
        remove_file(&r, path)?;
    }
    Ok(())
}

pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens (creating as needed, mode 0755) the directory `rel` inside the root.
fn dir_in_root(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur = rustix::fs::openat2(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?;
    let mut so_far = std::path::PathBuf::new();
    for comp in rel.components() {
        so_far.push(comp);
        let open = || {
            rustix::fs::openat2(
                root,
                &so_far,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                IN_ROOT,
            )
        };
        cur = match open() {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                let name = comp.as_os_str();
                match rustix::fs::mkdirat(cur.as_fd(), name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open()?
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(cur)
}

fn split(rel: &str) -> (&Path, &str) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (Path::new(dir), name),
        None => (Path::new(""), rel),
    }
}

/// Replaces whatever is at `rel` (file or symlink) by a regular file with `data` and `mode`.
pub(crate) fn write_file(root: &OwnedFd, rel: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = split(rel);
    let d = dir_in_root(root, dir)?;
    match rustix::fs::unlinkat(d.as_fd(), name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(
        d.as_fd(),
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    Ok(())
}

/// Removes the files and symlinks directly in the directory `rel` (not subdirectories), except
/// the names in `keep`. A missing directory is fine.
pub(crate) fn clear_dir(root: &OwnedFd, rel: &str, keep: &[&str]) -> io::Result<()> {
    let d = match rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    ) {
        Ok(d) => d,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&d)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(
            entry.file_type(),
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Symlink
        ) && !keep.contains(&name.as_str())
        {
            names.push(entry.file_name().to_owned());
        }
    }
    for name in names {
        match rustix::fs::unlinkat(d.as_fd(), name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads the file at `rel` inside the root.
pub(crate) fn read_file(root: &OwnedFd, rel: &str) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?;
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut data)?;
    Ok(data)
}

/// Removes the file or symlink at `rel` if it exists.
pub(crate) fn remove_file(root: &OwnedFd, rel: &str) -> io::Result<()> {
    let (dir, name) = split(rel);
    let d = match rustix::fs::openat2(
        root,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    ) {
        Ok(d) => d,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match rustix::fs::unlinkat(d.as_fd(), name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn writes_conventions_without_following_symlinks_out() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // A hostile tree: resolv.conf points out of the root, etc/apt is an absolute symlink
        // that resolves inside the root.
        symlink(outside.join("resolv.conf"), root.join("etc/resolv.conf")).unwrap();
        std::fs::create_dir_all(root.join("srv/apt")).unwrap();
        symlink("/srv/apt", root.join("etc/apt")).unwrap();
        std::fs::write(root.join("etc/fstab"), "UNCONFIGURED FSTAB").unwrap();
        std::fs::write(root.join("etc/machine-id"), "0123456789abcdef\n").unwrap();
        let sources = ["deb http://m/debian bookworm main".to_string()];
        apply(&root, Family::Debian, &sources).unwrap();
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
        assert_eq!(std::fs::read(root.join("etc/machine-id")).unwrap(), b"");
        let hostname = std::fs::read_to_string(root.join("etc/hostname")).unwrap();
        assert_eq!(hostname, "localhost\n");
        let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
        assert!(!fstab.contains("UNCONFIGURED"));
        let rc = std::fs::symlink_metadata(root.join("etc/resolv.conf")).unwrap();
        assert!(rc.is_file() && rc.len() == 0);
        let list = std::fs::read_to_string(root.join("srv/apt/sources.list")).unwrap();
        assert!(list.contains("bookworm main"));
        // A directory symlink pointing out of the root is resolved inside it, where it does
        // not exist: an error, and still nothing written on the host.
        std::fs::remove_file(root.join("etc/apt")).unwrap();
        symlink(&outside, root.join("etc/apt")).unwrap();
        assert!(apply(&root, Family::Debian, &sources).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let p = root.join("usr/sbin/policy-rc.d");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(std::fs::read_to_string(&p).unwrap().contains("exit 101"));
        remove_install_guards(&root, Family::Debian).unwrap();
        assert!(!p.exists());
        remove_install_guards(&root, Family::Debian).unwrap();
    }

    #[test]
    fn clears_package_files_but_keeps_named_ones() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("var/cache/apt/archives");
        std::fs::create_dir_all(dir.join("partial")).unwrap();
        std::fs::write(dir.join("a.deb"), "").unwrap();
        std::fs::write(dir.join("lock"), "").unwrap();
        let r = open_root(t.path()).unwrap();
        clear_dir(&r, "var/cache/apt/archives", &["lock"]).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["lock", "partial"]);
        clear_dir(&r, "no/such/dir", &[]).unwrap();
    }

    #[test]
    fn rpm_trees_get_no_apt_files() {
        let t = tempfile::tempdir().unwrap();
        apply(t.path(), Family::Rpm, &[]).unwrap();
        assert!(t.path().join("etc/hosts").is_file());
        assert!(!t.path().join("etc/apt").exists());
        assert!(!t.path().join("usr/sbin/policy-rc.d").exists());
    }
}
