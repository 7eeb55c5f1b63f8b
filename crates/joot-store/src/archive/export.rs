//! Tar export of a directory tree or of a merged layer stack, made to be reproducible: entries
//! sorted by name within each directory, numeric uid/gid kept (no user names), mtimes clamped
//! to `SOURCE_DATE_EPOCH` when set (reproducible-builds.org spec), xattrs as pax
//! `SCHILY.xattr.*` records, hard links detected by (dev, ino), device nodes and fifos kept.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::error::{Error, IoContext, Result};
use crate::merge::MergedTree;

/// Options of [`write_tar`] and [`write_merged_tar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarOptions {
    /// Mtimes later than this (seconds since the epoch) are written as this.
    pub mtime_clamp: Option<u64>,
    /// Write xattrs as pax records.
    pub xattrs: bool,
}

impl Default for TarOptions {
    /// Clamps to `SOURCE_DATE_EPOCH` when that is set to a number; writes xattrs.
    fn default() -> Self {
        TarOptions {
            mtime_clamp: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            xattrs: true,
        }
    }
}

/// Writes the tree under `root` as a tar stream (the root itself as `./`), then the end
/// marker. Entries are written as they are, overlay whiteouts included (a layer's raw form).
pub fn write_tar<W: Write>(root: &Path, writer: W, opts: &TarOptions) -> Result<()> {
    let mut entries = vec![(PathBuf::new(), root.to_path_buf())];
    walk_sorted(root, Path::new(""), &mut entries)?;
    write_entries(entries, writer, opts, false)
}

/// Writes the merged view of `layer_roots` (bottom to top) as a tar stream: whiteouts and
/// opaque markers are applied, not written. Needs no mount and no privilege beyond reading.
pub fn write_merged_tar<W: Write>(
    layer_roots: &[PathBuf],
    writer: W,
    opts: &TarOptions,
) -> Result<()> {
    let entries = MergedTree::new(layer_roots)
        .entries()?
        .into_iter()
        .map(|e| (e.path, e.source))
        .collect();
    write_entries(entries, writer, opts, true)
}

fn walk_sorted(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    let mut names: Vec<OsString> = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        names.push(e.at(dir)?.file_name());
    }
    names.sort();
    for name in names {
        let src = dir.join(&name);
        let r = rel.join(&name);
        let is_dir = std::fs::symlink_metadata(&src).at(&src)?.is_dir();
        out.push((r.clone(), src.clone()));
        if is_dir {
            walk_sorted(&src, &r, out)?;
        }
    }
    Ok(())
}

fn write_entries<W: Write>(
    entries: Vec<(PathBuf, PathBuf)>,
    writer: W,
    opts: &TarOptions,
    merged: bool,
) -> Result<()> {
    let mut b = tar::Builder::new(writer);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (rel, src) in entries {
        let md = std::fs::symlink_metadata(&src).at(&src)?;
        let ft = md.file_type();
        if ft.is_socket() {
            continue;
        }
        let ctx = |e: io::Error| Error::io(&src, e);
        let mtime = clamp(md.mtime(), opts.mtime_clamp);
        let mut h = Header::new_gnu();
        h.set_uid(md.uid().into());
        h.set_gid(md.gid().into());
        h.set_mode(md.mode() & 0o7777);
        h.set_mtime(mtime);
        h.set_size(0);

        if !ft.is_dir() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                h.set_entry_type(EntryType::Link);
                b.append_link(&mut h, &rel, first).map_err(ctx)?;
                continue;
            }
            links.insert(key, rel.clone());
        }
        if opts.xattrs {
            let xattrs = read_xattrs(&src, merged).map_err(ctx)?;
            if !xattrs.is_empty() {
                append_pax(&mut b, &xattrs, mtime).map_err(ctx)?;
            }
        }
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            if rel.as_os_str().is_empty() {
                set_raw_name(&mut h, b"./");
                h.set_cksum();
                b.append(&h, io::empty()).map_err(ctx)?;
            } else {
                b.append_data(&mut h, &rel, io::empty()).map_err(ctx)?;
            }
        } else if ft.is_file() {
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            let f = crate::fsutil::open_noatime(&src).at(&src)?;
            // A file that changes size while being read would corrupt the stream: read
            // exactly the size in the header, and fail if the file got shorter.
            let mut data = Exact {
                inner: io::Read::take(f, md.len()),
                remaining: md.len(),
            };
            b.append_data(&mut h, &rel, &mut data).map_err(ctx)?;
        } else if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            let target = std::fs::read_link(&src).at(&src)?;
            b.append_link(&mut h, &rel, &target).map_err(ctx)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            });
            let rdev = md.rdev();
            h.set_device_major(rustix::fs::major(rdev)).map_err(ctx)?;
            h.set_device_minor(rustix::fs::minor(rdev)).map_err(ctx)?;
            b.append_data(&mut h, &rel, io::empty()).map_err(ctx)?;
        }
    }
    b.finish().map_err(|e| Error::io("<tar output>", e))?;
    Ok(())
}

/// Yields exactly `remaining` bytes or fails.
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: io::Read> io::Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being archived",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn clamp(mtime: i64, limit: Option<u64>) -> u64 {
    let t = mtime.max(0) as u64;
    limit.map_or(t, |l| t.min(l))
}

fn set_raw_name(h: &mut Header, name: &[u8]) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

/// The xattrs of `path` (not following symlinks), sorted by name. In a merged export the
/// overlay's own markers are not part of the tree and are left out.
fn read_xattrs(path: &Path, merged: bool) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        if merged && (name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")) {
            continue;
        }
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(len) => break Some(len),
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                // Removed meanwhile, or not readable by us.
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(len) = len {
            value.truncate(len);
            out.push((name.to_string(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Appends a pax extended header ('x') holding `SCHILY.xattr.NAME` records.
fn append_pax<W: Write>(
    b: &mut tar::Builder<W>,
    xattrs: &[(String, Vec<u8>)],
    mtime: u64,
) -> io::Result<()> {
    let mut data = Vec::new();
    for (name, value) in xattrs {
        let key = format!("SCHILY.xattr.{name}");
        // "LEN KEY=VALUE\n" where LEN counts the whole record, its own digits included.
        let base = key.len() + value.len() + 3;
        let mut len = base + base.to_string().len();
        if base + len.to_string().len() != len {
            len = base + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {key}=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    let mut h = Header::new_ustar();
    set_raw_name(&mut h, b"././@PaxHeader");
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reader_fails_on_short_input() {
        use std::io::Read;
        let mut ok = Exact {
            inner: &b"abc"[..],
            remaining: 3,
        };
        let mut out = Vec::new();
        ok.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let mut short = Exact {
            inner: &b"ab"[..],
            remaining: 3,
        };
        assert!(short.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut b = tar::Builder::new(Vec::new());
        append_pax(&mut b, &[("user.k".into(), vec![b'v'; 93])], 0).unwrap();
        let bytes = b.into_inner().unwrap();
        let body = &bytes[512..];
        let text = String::from_utf8_lossy(body);
        let (len, _) = text.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        assert_eq!(body[len - 1], b'\n');
        assert_eq!(len, "SCHILY.xattr.user.k".len() + 93 + 3 + 3);
    }
}
