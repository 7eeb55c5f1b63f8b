//! Snapshots of a file tree (type, mode, owner, content digest, link target, device, xattrs,
//! file mtimes) to compare two trees exactly.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let rel = rel.join(&n);
        let p = root.join(&rel);
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            format!(
                "file {} mtime {} nlink {}",
                joot_oci::digest::Digest::of(&std::fs::read(&p).unwrap()),
                m.mtime(),
                m.nlink()
            )
        } else if ft.is_char_device() {
            format!("char {}", m.rdev())
        } else if ft.is_block_device() {
            format!("block {}", m.rdev())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mut xattrs: Vec<String> = xattr_names(&p)
            .into_iter()
            .map(|name| {
                let mut v = vec![0u8; 4096];
                let len = rustix::fs::lgetxattr(&p, name.as_str(), &mut v).unwrap_or(0);
                format!("{name}={}", String::from_utf8_lossy(&v[..len]))
            })
            .collect();
        xattrs.sort();
        out.insert(
            rel.clone(),
            format!(
                "{what} mode {:o} owner {}:{} xattrs [{}]",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                xattrs.join(",")
            ),
        );
        if ft.is_dir() {
            walk(root, &rel, out);
        }
    }
}

fn xattr_names(p: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).unwrap_or(0);
    buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
