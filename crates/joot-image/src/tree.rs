//! The tree being exported: a plain directory, or a stack of overlay layers (an image's layers,
//! or an env's layers plus its upper). Two kinds of access:
//!
//! - a few files (the kernel, the initrd) are looked up in userspace through the layers, top
//!   down, honouring overlayfs whiteouts and opaque directories, never following symlinks;
//! - whole-tree tools (`mkfs.ext4 -d`) get a merged directory that exists only inside the
//!   private mount namespace of that one tool, so nothing is mounted on the host: as root a
//!   read-only `noatime` overlay (or bind, for one layer) made with util-linux `unshare`;
//!   rootless, joot-sandbox's `with_rootfs` (user + mount namespace).

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{Error, Result};

/// A tree to export.
#[derive(Debug, Clone)]
pub enum Tree {
    /// A plain directory.
    Dir(PathBuf),
    /// Overlay layers, bottom to top (an env's upper last).
    Layers(Vec<PathBuf>),
}

/// A kernel found in the tree, with host paths of the files to copy.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The version part of `vmlinuz-<version>`.
    pub version: String,
    /// Host path of the kernel image (inside a layer).
    pub vmlinuz: PathBuf,
    /// Host path of the initrd if present.
    pub initrd: Option<PathBuf>,
    /// Path of the kernel inside the tree (`/boot/vmlinuz-V`), for boot loader configs.
    pub vmlinuz_rel: String,
    /// Path of the initrd inside the tree.
    pub initrd_rel: Option<String>,
}

impl Tree {
    fn layers(&self) -> Vec<&Path> {
        match self {
            Tree::Dir(d) => vec![d.as_path()],
            Tree::Layers(l) => l.iter().map(|p| p.as_path()).collect(),
        }
    }

    /// Estimated bytes the tree takes on ext4: allocated blocks of every entry of every layer
    /// (an over-estimate where upper layers replace lower files), plus an inode's worth each.
    pub fn content_size(&self) -> Result<u64> {
        let mut total = 0u64;
        for layer in self.layers() {
            for entry in walkdir::WalkDir::new(layer).follow_links(false) {
                let entry = entry.map_err(|e| {
                    Error::Io(std::io::Error::other(format!(
                        "walking {}: {e}",
                        layer.display()
                    )))
                })?;
                let md = entry
                    .metadata()
                    .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
                let data = if md.is_file() || md.is_dir() {
                    (md.blocks() * 512).max(md.len().div_ceil(4096) * 4096)
                } else {
                    0
                };
                total += data + 256;
            }
        }
        Ok(total)
    }

    /// The host path of `rel` as the merged tree shows it, or None when it does not exist, is
    /// whited out, or a component on the way is not a plain directory (symlinks are not
    /// followed: the image's symlinks point into the image, not into the host).
    pub fn resolve(&self, rel: &Path) -> Option<PathBuf> {
        let comps: Vec<&std::ffi::OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let layers = self.layers();
        // Layers (top first) in which the current directory is visible.
        let mut visible: Vec<&Path> = layers.iter().rev().copied().collect();
        let mut prefix = PathBuf::new();
        for (i, name) in comps.iter().enumerate() {
            prefix.push(name);
            let last = i + 1 == comps.len();
            let mut next = Vec::new();
            for layer in &visible {
                let p = layer.join(&prefix);
                let Ok(md) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if is_whiteout(&md) {
                    break;
                }
                if last {
                    return Some(p);
                }
                if !md.is_dir() {
                    break;
                }
                next.push(*layer);
                if is_opaque(&p) {
                    break;
                }
            }
            if next.is_empty() {
                return None;
            }
            visible = next;
        }
        // Empty path: the root of the top layer.
        visible.first().map(|l| l.to_path_buf())
    }

    /// The names in directory `rel` of the merged tree (whiteouts applied), sorted.
    pub fn list_dir(&self, rel: &Path) -> Vec<OsString> {
        let Some(dir) = self.resolve(rel) else {
            return Vec::new();
        };
        if !dir.is_dir() {
            return Vec::new();
        }
        let mut names = std::collections::BTreeSet::new();
        let mut hidden = std::collections::BTreeSet::new();
        for layer in self.layers().iter().rev() {
            let p = layer.join(rel);
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if !md.is_dir() {
                break;
            }
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    let name = e.file_name();
                    if hidden.contains(&name) || names.contains(&name) {
                        continue;
                    }
                    match e.metadata() {
                        Ok(m) if is_whiteout(&m) => {
                            hidden.insert(name);
                        }
                        Ok(_) => {
                            names.insert(name);
                        }
                        Err(_) => {}
                    }
                }
            }
            if is_opaque(&p) {
                break;
            }
        }
        names.into_iter().collect()
    }

    /// The newest kernel (by version), with its initrd if there is one. Looks where Debian
    /// (`/boot/vmlinuz-V`, `/boot/initrd.img-V`) and the RPM family (`/boot/initramfs-V.img`,
    /// or `/usr/lib/modules/V/vmlinuz` when kernel-install did not populate /boot) put them.
    pub fn find_kernel(&self) -> Option<Kernel> {
        let mut candidates: Vec<(String, String)> = self
            .list_dir(Path::new("boot"))
            .into_iter()
            .filter_map(|n| {
                let v = n.to_str()?.strip_prefix("vmlinuz-")?.to_string();
                (!v.contains("rescue")).then(|| (v.clone(), format!("boot/vmlinuz-{v}")))
            })
            .collect();
        for v in self.list_dir(Path::new("usr/lib/modules")) {
            if let Some(v) = v.to_str()
                && !candidates.iter().any(|(c, _)| c == v)
            {
                candidates.push((v.to_string(), format!("usr/lib/modules/{v}/vmlinuz")));
            }
        }
        candidates.sort_by(|a, b| version_cmp(&a.0, &b.0));
        while let Some((version, rel)) = candidates.pop() {
            // Regular files only: a symlink would be followed on the host, outside the image.
            let Some(vmlinuz) = self.resolve(Path::new(&rel)).filter(|p| is_regular(p)) else {
                continue;
            };
            let initrd_rel = [
                format!("boot/initrd.img-{version}"),
                format!("boot/initramfs-{version}.img"),
                format!("usr/lib/modules/{version}/initramfs.img"),
            ]
            .into_iter()
            .find(|r| self.resolve(Path::new(r)).is_some_and(|p| is_regular(&p)));
            let initrd = initrd_rel.as_ref().and_then(|r| self.resolve(Path::new(r)));
            return Some(Kernel {
                version,
                vmlinuz,
                initrd,
                vmlinuz_rel: format!("/{rel}"),
                initrd_rel: initrd_rel.map(|r| format!("/{r}")),
            });
        }
        None
    }

    /// Runs the command `make(merged)` builds, where `merged` is the whole tree as one
    /// read-only directory, and returns its output (an error if it failed).
    pub fn run_with_merged(&self, make: &dyn Fn(&Path) -> Command) -> Result<Output> {
        let layers = self.layers();
        if !joot_sandbox::userns::privileged() {
            // Rootless (also as root of a user namespace: a rootless verb re-run there, whose
            // mounts cannot change locked flags): joot-sandbox mounts the layers in a user + mount namespace.
            let lowers: Vec<PathBuf> = layers.iter().map(|p| p.to_path_buf()).collect();
            let out = joot_sandbox::with_rootfs(&lowers, |merged: &Path| make(merged))?;
            return Ok(out);
        }
        merged_via_unshare(&layers, make)
    }
}

/// Runs the tool in a private mount namespace (util-linux `unshare --mount`, root only) where
/// the layers are mounted as one read-only overlay (a single layer: a read-only bind); the mount dies with the namespace, so
/// nothing is left on the host even if joot is killed. The same contract as joot-sandbox's
/// `with_rootfs` (used rootless), plus `noatime`: mkfs copies atimes, so reading the tree must
/// not change them or a second export would differ.
fn merged_via_unshare(layers: &[&Path], make: &dyn Fn(&Path) -> Command) -> Result<Output> {
    let mnt = tempfile::Builder::new().prefix("joot-merged-").tempdir()?;
    // overlayfs lowerdir: top first, ':' separated; ':' ',' and '\\' in paths are escaped.
    let lowerdir = layers
        .iter()
        .rev()
        .map(|p| {
            p.to_string_lossy()
                .replace('\\', "\\\\")
                .replace(':', "\\:")
                .replace(',', "\\,")
        })
        .collect::<Vec<_>>()
        .join(":");
    let inner = make(mnt.path());
    let mut cmd = crate::tool::command(&crate::tool::UNSHARE)?;
    // noatime: reading the files must not change them (mkfs copies atimes, and the second
    // export of the same image must give the same bytes).
    let (script, source) = if let [single] = layers {
        (
            r#"mount --bind "$1" "$2" && mount -o remount,bind,ro,noatime "$2" && shift 2 && exec "$@""#,
            single.as_os_str().to_os_string(),
        )
    } else {
        (
            r#"mount -t overlay joot-export -o "ro,noatime,lowerdir=$1" "$2" && shift 2 && exec "$@""#,
            OsString::from(lowerdir),
        )
    };
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(script)
        .arg("sh")
        .arg(source)
        .arg(mnt.path())
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    crate::tool::run(cmd)
}

/// A regular file, not following a symlink.
fn is_regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// An overlayfs whiteout: a character device 0:0.
fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// An overlayfs opaque directory (`trusted.` as root, `user.` in a rootless store).
fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut buf = [0u8; 4];
            matches!(rustix::fs::lgetxattr(dir, *name, &mut buf), Ok(n) if n >= 1 && buf[0] == b'y')
        })
}

/// Compares kernel versions numerically where they are numbers (`6.1.0-10` < `6.1.0-9` is wrong
/// as text).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut num = String::new();
        let mut txt = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !txt.is_empty() {
                    out.push((0, std::mem::take(&mut txt)));
                }
                num.push(c);
            } else {
                if !num.is_empty() {
                    out.push((num.parse().unwrap_or(u64::MAX), String::new()));
                    num.clear();
                }
                txt.push(c);
            }
        }
        if !num.is_empty() {
            out.push((num.parse().unwrap_or(u64::MAX), String::new()));
        }
        if !txt.is_empty() {
            out.push((0, txt));
        }
        out
    }
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("6.1.0-10-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(version_cmp("6.1.0-9-amd64", "6.1.0-9-amd64"), Equal);
        assert_eq!(version_cmp("5.10.0-1", "6.1.0-1"), Less);
    }

    #[test]
    fn resolve_through_layers_with_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        fs::create_dir_all(lower.join("boot")).unwrap();
        fs::create_dir_all(upper.join("boot")).unwrap();
        fs::write(lower.join("boot/vmlinuz-6.1.0-9-amd64"), b"old").unwrap();
        fs::write(lower.join("boot/initrd.img-6.1.0-9-amd64"), b"i9").unwrap();
        fs::write(upper.join("boot/vmlinuz-6.1.0-10-amd64"), b"new").unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/gone"), b"x").unwrap();
        let tree = Tree::Layers(vec![lower.clone(), upper.clone()]);
        let k = tree.find_kernel().unwrap();
        assert_eq!(k.version, "6.1.0-10-amd64");
        assert_eq!(k.vmlinuz, upper.join("boot/vmlinuz-6.1.0-10-amd64"));
        assert!(k.initrd.is_none());
        assert_eq!(k.vmlinuz_rel, "/boot/vmlinuz-6.1.0-10-amd64");
        // RPM style: kernel under /usr/lib/modules only, initramfs in /boot.
        let rpm = t.path().join("rpm");
        fs::create_dir_all(rpm.join("usr/lib/modules/5.14.0-1.el9.x86_64")).unwrap();
        fs::create_dir_all(rpm.join("boot")).unwrap();
        fs::write(
            rpm.join("usr/lib/modules/5.14.0-1.el9.x86_64/vmlinuz"),
            b"k",
        )
        .unwrap();
        fs::write(rpm.join("boot/initramfs-5.14.0-1.el9.x86_64.img"), b"i").unwrap();
        let k = Tree::Dir(rpm.clone()).find_kernel().unwrap();
        assert_eq!(
            k.vmlinuz_rel,
            "/usr/lib/modules/5.14.0-1.el9.x86_64/vmlinuz"
        );
        assert_eq!(
            k.initrd_rel.as_deref(),
            Some("/boot/initramfs-5.14.0-1.el9.x86_64.img")
        );
        assert_eq!(
            tree.resolve(Path::new("etc/gone")),
            Some(lower.join("etc/gone"))
        );
        // A symlinked directory is not followed.
        std::os::unix::fs::symlink("/etc", upper.join("hostetc")).unwrap();
        assert!(tree.resolve(Path::new("hostetc/passwd")).is_none());
        assert_eq!(
            tree.list_dir(Path::new("boot")),
            [
                "initrd.img-6.1.0-9-amd64",
                "vmlinuz-6.1.0-10-amd64",
                "vmlinuz-6.1.0-9-amd64"
            ]
            .map(OsString::from)
        );
        // A file in an upper layer hides the lower directory.
        fs::write(upper.join("etc"), b"file").unwrap();
        assert!(tree.resolve(Path::new("etc/gone")).is_none());
    }

    #[test]
    fn content_size_counts_files() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), vec![1u8; 10000]).unwrap();
        let n = Tree::Dir(t.path().to_path_buf()).content_size().unwrap();
        assert!(n >= 10000, "{n}");
    }
}
