//! A tiny rootfs fixture made from the host's statically linked busybox (`busybox-static`), so
//! tests need no network and no bootstrap: a root with /bin/sh and the usual applets, a passwd
//! with `root` and `alice` (uid 1000), and an os-release naming it.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

fn busybox() -> io::Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "busybox not found: apt-get install busybox-static",
    ))
}

/// Writes a busybox rootfs into `dest` (created if missing).
pub fn busybox_rootfs(dest: &Path) -> io::Result<()> {
    let bb = busybox()?;
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "var/tmp",
        "run",
        "home/alice",
    ] {
        fs::create_dir_all(dest.join(d))?;
    }
    fs::set_permissions(dest.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(&bb, dest.join("bin/busybox"))?;
    fs::set_permissions(dest.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    let out = Command::new(&bb).arg("--list-full").output()?;
    if !out.status.success() {
        return Err(io::Error::other("busybox --list-full failed"));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = dest.join(applet);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        symlink("/bin/busybox", &link)?;
    }
    fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(
        dest.join("etc/group"),
        "root:x:0:\nusers:x:100:alice\nalice:x:1000:\nnogroup:x:65534:\n",
    )?;
    fs::write(
        dest.join("etc/os-release"),
        "ID=joot-fixture\nNAME=\"joot busybox fixture\"\nPRETTY_NAME=\"joot busybox fixture\"\n",
    )?;
    fs::write(dest.join("etc/hostname"), "fixture\n")?;
    Ok(())
}

/// Writes the busybox rootfs as an uncompressed tarball at `path` (owners root:root, alice's
/// home owned by 1000).
pub fn busybox_tarball(path: &Path) -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    busybox_rootfs(tmp.path())?;
    let file = fs::File::create(path)?;
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    let mut entries: Vec<PathBuf> = Vec::new();
    collect(tmp.path(), tmp.path(), &mut entries)?;
    entries.sort();
    for rel in entries {
        let full = tmp.path().join(&rel);
        let meta = fs::symlink_metadata(&full)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        let owner = if rel.starts_with("home/alice") {
            1000
        } else {
            0
        };
        header.set_uid(owner);
        header.set_gid(owner);
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full)?;
            builder.append_link(&mut header, &rel, target)?;
        } else if meta.is_dir() {
            builder.append_data(&mut header, &rel, io::empty())?;
        } else {
            builder.append_data(&mut header, &rel, fs::File::open(&full)?)?;
        }
    }
    builder.into_inner()?.sync_all()?;
    Ok(())
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        out.push(path.strip_prefix(base).expect("under base").to_path_buf());
        if entry.file_type()?.is_dir() {
            collect(base, &path, out)?;
        }
    }
    Ok(())
}

/// Builds the `joot-hello` RPM (the host's static busybox as /usr/bin/busybox, /bin/sh pointing
/// at it, and a `joot-hello` script that prints "hello from rpm") with rpmbuild, and a
/// createrepo_c repository of it under `dir`. Returns the repository path. Panics on failure
/// (callers check for rpmbuild, createrepo_c and busybox first).
pub fn rpm_repo(dir: &Path) -> PathBuf {
    let top = dir.join("rpmbuild");
    fs::create_dir_all(top.join("SOURCES")).expect("rpmbuild SOURCES");
    fs::create_dir_all(top.join("SPECS")).expect("rpmbuild SPECS");
    let bb = busybox().expect("busybox-static");
    fs::copy(bb, top.join("SOURCES/busybox")).expect("copy busybox");
    let spec = "Name: joot-hello\nVersion: 1.0\nRelease: 1\nSummary: joot test package\n\
License: MIT\nAutoReqProv: no\n%description\njoot test package\n\
%install\nmkdir -p %{buildroot}/usr/bin %{buildroot}/bin\n\
cp %{_sourcedir}/busybox %{buildroot}/usr/bin/busybox\n\
ln -s ../usr/bin/busybox %{buildroot}/bin/sh\n\
printf '#!/bin/sh\\necho hello from rpm\\n' > %{buildroot}/usr/bin/joot-hello\n\
chmod 755 %{buildroot}/usr/bin/joot-hello\n\
%files\n/usr/bin/busybox\n/usr/bin/joot-hello\n/bin/sh\n";
    fs::write(top.join("SPECS/joot-hello.spec"), spec).expect("write spec");
    let out = Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args([
            "--define",
            "debug_package %{nil}",
            "--define",
            "__strip /bin/true",
        ])
        .arg(top.join("SPECS/joot-hello.spec"))
        .output()
        .expect("run rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = dir.join("repo");
    fs::create_dir_all(&repo).expect("repo dir");
    for arch in fs::read_dir(top.join("RPMS")).expect("RPMS") {
        for rpm in fs::read_dir(arch.expect("RPMS entry").path()).expect("arch dir") {
            let rpm = rpm.expect("rpm entry").path();
            fs::copy(&rpm, repo.join(rpm.file_name().expect("rpm name"))).expect("copy rpm");
        }
    }
    let st = Command::new("createrepo_c")
        .arg("-q")
        .arg(&repo)
        .status()
        .expect("run createrepo_c");
    assert!(st.success(), "createrepo_c failed");
    repo
}
