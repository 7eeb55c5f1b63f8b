//! Work on layer trees without mounting them: looking a path up through a stack of overlay
//! layers (whiteouts and opaque directories honoured), writing a file into a fresh upper dir
//! the way overlayfs copy-up would (parent directories recreated with their owner and mode),
//! and clamping timestamps to `SOURCE_DATE_EPOCH` before a layer is published.
//!
//! Overlay on-disk format (Documentation/filesystems/overlayfs.rst): a whiteout is a character
//! device 0/0, an opaque directory carries the xattr `trusted.overlay.opaque=y` (or
//! `user.overlay.opaque=y` in a user-namespace store).

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            matches!(rustix::fs::lgetxattr(dir, *name, &mut buf), Ok(n) if n >= 1 && buf[0] == b'y')
        })
}

/// The host path holding `rel` in the merged view of `layers` (bottom to top), or None when it
/// does not exist there (absent or deleted by a whiteout).
pub fn lookup(layers: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    let comps: Vec<Component> = rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    'layers: for layer in layers.iter().rev() {
        let mut p = layer.clone();
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue 'layers;
            };
            if is_whiteout(&m) {
                return None;
            }
            let last = i + 1 == comps.len();
            if last {
                return Some(p);
            }
            if !m.is_dir() {
                // A non-directory hides everything below it in lower layers.
                return None;
            }
            if is_opaque(&p) {
                // Lower layers do not contribute below an opaque dir: only this layer counts.
                let rest: PathBuf = comps[i + 1..].iter().collect();
                let q = p.join(rest);
                return match std::fs::symlink_metadata(&q) {
                    Ok(m) if !is_whiteout(&m) => Some(q),
                    _ => None,
                };
            }
        }
    }
    None
}

/// Writes `data` to `rel` in `upper` (an empty-or-partial overlay upper over `layers`),
/// recreating missing parent directories with the owner and mode they have in the merged view.
/// Refuses when a parent is not a directory in the image (a symlinked /etc, say).
pub fn write_in_upper(
    upper: &Path,
    layers: &[PathBuf],
    rel: &Path,
    data: &[u8],
    mode: u32,
) -> io::Result<()> {
    let mut sofar = PathBuf::new();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        let Component::Normal(c) = c else { continue };
        sofar.push(c);
        let target = upper.join(&sofar);
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "/{} is not a directory",
                    sofar.display()
                )));
            }
            Err(_) => {}
        }
        let (dmode, uid, gid) = match lookup(layers, &sofar) {
            Some(p) => {
                let m = std::fs::symlink_metadata(&p)?;
                if !m.is_dir() {
                    return Err(io::Error::other(format!(
                        "/{} is not a directory in the image",
                        sofar.display()
                    )));
                }
                (m.mode() & 0o7777, m.uid(), m.gid())
            }
            None => (0o755, 0, 0),
        };
        std::fs::create_dir(&target)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(dmode))?;
        std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
    }
    let file = upper.join(rel);
    match std::fs::symlink_metadata(&file) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&file)?,
        Ok(_) => std::fs::remove_file(&file)?,
        Err(_) => {}
    }
    std::fs::write(&file, data)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::lchown(&file, Some(0), Some(0))?;
    Ok(())
}

/// The `hostname` module: /etc/hostname, and the `127.0.1.1` line of /etc/hosts (Debian's
/// convention for the machine's own name), written into the step's upper dir.
pub fn set_hostname(upper: &Path, layers: &[PathBuf], name: &str) -> io::Result<()> {
    write_in_upper(
        upper,
        layers,
        Path::new("etc/hostname"),
        format!("{name}\n").as_bytes(),
        0o644,
    )?;
    let hosts = lookup(layers, Path::new("etc/hosts"))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| "127.0.0.1\tlocalhost\n".to_string());
    let mut out: String = hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with("127.0.1.1"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("127.0.1.1\t{name}\n"));
    write_in_upper(upper, layers, Path::new("etc/hosts"), out.as_bytes(), 0o644)
}

/// Sets every timestamp newer than `epoch` under `root` (included) to `epoch`, without
/// following symlinks: with `SOURCE_DATE_EPOCH`, the same recipe over the same inputs gives the
/// same layer content.
pub fn clamp_mtimes(root: &Path, epoch: u64) -> io::Result<u64> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let ts = Timespec {
        tv_sec: epoch as i64,
        tv_nsec: 0,
    };
    let stamps = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    let mut changed = 0;
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let m = entry.metadata().map_err(io::Error::other)?;
        if m.mtime() > epoch as i64 {
            utimensat(CWD, entry.path(), &stamps, AtFlags::SYMLINK_NOFOLLOW)?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_through_layers() {
        let t = tempfile::tempdir().unwrap();
        let l1 = t.path().join("l1");
        let l2 = t.path().join("l2");
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        std::fs::write(l1.join("etc/hosts"), "old").unwrap();
        std::fs::write(l1.join("etc/passwd"), "p").unwrap();
        std::fs::write(l2.join("etc/hosts"), "new").unwrap();
        let layers = vec![l1.clone(), l2.clone()];
        assert_eq!(
            lookup(&layers, Path::new("etc/hosts")),
            Some(l2.join("etc/hosts"))
        );
        assert_eq!(
            lookup(&layers, Path::new("etc/passwd")),
            Some(l1.join("etc/passwd"))
        );
        assert_eq!(lookup(&layers, Path::new("etc/none")), None);
        assert_eq!(lookup(&layers, Path::new("etc")), Some(l2.join("etc")));
    }

    #[test]
    fn lookup_honours_whiteouts_when_root() {
        if !joot_test_support::require_root("lookup_honours_whiteouts_when_root") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let l1 = t.path().join("l1");
        let l2 = t.path().join("l2");
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        std::fs::write(l1.join("etc/gone"), "x").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            l2.join("etc/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        assert_eq!(lookup(&[l1, l2], Path::new("etc/gone")), None);
    }

    #[test]
    fn hostname_written_into_upper() {
        let t = tempfile::tempdir().unwrap();
        let l1 = t.path().join("l1");
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::set_permissions(l1.join("etc"), std::fs::Permissions::from_mode(0o751)).unwrap();
        std::fs::write(l1.join("etc/hosts"), "127.0.0.1 localhost\n127.0.1.1 old\n").unwrap();
        let upper = t.path().join("upper");
        std::fs::create_dir(&upper).unwrap();
        if !joot_test_support::require_root("hostname_written_into_upper") {
            return;
        }
        set_hostname(&upper, &[l1], "web").unwrap();
        assert_eq!(
            std::fs::read_to_string(upper.join("etc/hostname")).unwrap(),
            "web\n"
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("etc/hosts")).unwrap(),
            "127.0.0.1 localhost\n127.0.1.1\tweb\n"
        );
        let m = std::fs::metadata(upper.join("etc")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o751);
    }

    #[test]
    fn clamp_sets_newer_times_only() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink("/nonexistent", t.path().join("d/l")).unwrap();
        let n = clamp_mtimes(t.path(), 1_000_000).unwrap();
        assert_eq!(n, 4);
        for p in ["d", "d/f"] {
            assert_eq!(
                std::fs::metadata(t.path().join(p)).unwrap().mtime(),
                1_000_000
            );
        }
        assert_eq!(
            std::fs::symlink_metadata(t.path().join("d/l"))
                .unwrap()
                .mtime(),
            1_000_000
        );
        assert_eq!(clamp_mtimes(t.path(), 2_000_000).unwrap(), 0);
    }
}
