//! A merged view of stacked layer directories, computed in userspace the way overlayfs would
//! show them (Documentation/filesystems/overlayfs.rst): the topmost layer that has a name
//! decides; a char device 0:0 is a whiteout that hides the name in the layers below; a
//! directory with `trusted.overlay.opaque` or `user.overlay.opaque` = "y" hides everything
//! below it; a non-directory hides a directory of the same name below it. This lets a rootfs
//! be exported as a tar without mounting anything (and so without privilege).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// One entry of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEntry {
    /// Path relative to the root; empty for the root itself.
    pub path: PathBuf,
    /// The file that provides it, in the topmost layer that has it.
    pub source: PathBuf,
}

/// The union of layer directories.
#[derive(Debug, Clone)]
pub struct MergedTree {
    /// Top to bottom.
    layers: Vec<PathBuf>,
}

/// True for an overlay whiteout: a char device with device number 0:0.
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// True for an overlay opaque directory (either xattr namespace).
pub fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut buf = [0u8; 4];
            matches!(rustix::fs::lgetxattr(dir, *name, &mut buf[..]), Ok(n) if &buf[..n] == b"y")
        })
}

impl MergedTree {
    /// A merged view of `layer_roots`, given bottom to top (image order).
    pub fn new(layer_roots: &[PathBuf]) -> MergedTree {
        MergedTree {
            layers: layer_roots.iter().rev().cloned().collect(),
        }
    }

    /// Every visible entry, parents before children, names sorted within each directory.
    pub fn entries(&self) -> Result<Vec<MergedEntry>> {
        let mut out = Vec::new();
        let mut dirs = Vec::new();
        for l in &self.layers {
            let md = std::fs::symlink_metadata(l).at(l)?;
            if !md.is_dir() {
                return Err(crate::error::Error::io(
                    l,
                    io::Error::other("a layer root must be a directory"),
                ));
            }
            dirs.push(l.clone());
            if is_opaque(l) {
                break;
            }
        }
        let Some(top) = dirs.first() else {
            return Ok(out);
        };
        out.push(MergedEntry {
            path: PathBuf::new(),
            source: top.clone(),
        });
        self.walk(Path::new(""), &dirs, &mut out)?;
        Ok(out)
    }

    fn walk(&self, rel: &Path, dirs: &[PathBuf], out: &mut Vec<MergedEntry>) -> Result<()> {
        let mut names: BTreeSet<OsString> = BTreeSet::new();
        for d in dirs {
            for e in std::fs::read_dir(d).at(d)? {
                names.insert(e.at(d)?.file_name());
            }
        }
        for name in names {
            let mut chosen: Option<(PathBuf, Metadata)> = None;
            let mut below: Vec<PathBuf> = Vec::new();
            for d in dirs {
                let p = d.join(&name);
                let md = match std::fs::symlink_metadata(&p) {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(crate::error::Error::io(p, e)),
                };
                if chosen.is_none() {
                    if is_whiteout(&md) {
                        break;
                    }
                    let is_dir = md.is_dir();
                    chosen = Some((p.clone(), md));
                    if !is_dir {
                        break;
                    }
                    below.push(p.clone());
                    if is_opaque(&p) {
                        break;
                    }
                } else if md.is_dir() {
                    below.push(p.clone());
                    if is_opaque(&p) {
                        break;
                    }
                } else {
                    // A whiteout or a non-directory below a directory ends the merge.
                    break;
                }
            }
            let Some((source, md)) = chosen else { continue };
            let path = rel.join(&name);
            out.push(MergedEntry {
                path: path.clone(),
                source,
            });
            if md.is_dir() {
                self.walk(&path, &below, out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(t: &MergedTree) -> Vec<String> {
        t.entries()
            .unwrap()
            .into_iter()
            .map(|e| e.path.display().to_string())
            .collect()
    }

    #[test]
    fn upper_file_hides_lower_dir_and_files_merge() {
        let d = tempfile::tempdir().unwrap();
        let (lo, up) = (d.path().join("lo"), d.path().join("up"));
        std::fs::create_dir_all(lo.join("d/sub")).unwrap();
        std::fs::write(lo.join("d/sub/x"), "").unwrap();
        std::fs::write(lo.join("a"), "lower").unwrap();
        std::fs::create_dir_all(up.join("d")).unwrap();
        std::fs::write(up.join("d/y"), "").unwrap();
        std::fs::write(up.join("a"), "upper").unwrap();
        std::fs::write(up.join("d/sub"), "file now").unwrap();
        let t = MergedTree::new(&[lo.clone(), up.clone()]);
        assert_eq!(paths(&t), vec!["", "a", "d", "d/sub", "d/y"]);
        let a = t
            .entries()
            .unwrap()
            .into_iter()
            .find(|e| e.path == Path::new("a"))
            .unwrap();
        assert_eq!(a.source, up.join("a"));
    }
}
