//! Garbage collection: removes what interrupted work left behind and what nothing references.
//!
//! In order: stale mounts under the store (read from `/proc/self/mountinfo` once; only
//! `joot mount` targets recorded in `envs/<name>/mounted` are kept), so no later removal can
//! descend into a mounted tree; staging dirs in `tmp/` whose `.lock` nobody holds; interrupted
//! commits (rolled forward); `run/` dirs of envs that are not mounted; and, when no lease is
//! held, layers that no image, env, pending commit or build-cache entry references (and layer
//! dirs that never finished publishing).

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::remove_tree;
use crate::layer::list_names;
use crate::meta::LayerId;
use crate::name::Name;
use crate::store::{Store, open_lock_file};

/// What `gc` removed or repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Mount points detached (deepest first).
    pub mounts: Vec<PathBuf>,
    /// Staging dirs removed from `tmp/`.
    pub staging: Vec<PathBuf>,
    /// Envs whose interrupted commit was completed.
    pub envs_repaired: Vec<Name>,
    /// Empty `run/<name>` dirs removed.
    pub run_dirs: Vec<PathBuf>,
    /// Layers removed.
    pub layers: Vec<LayerId>,
    /// Bytes of file data in the removed layers.
    pub layer_bytes: u64,
    /// True when the layer sweep was skipped because another process holds a lease.
    pub layers_skipped_busy: bool,
    /// Things that could not be removed (gc went on with the rest).
    pub errors: Vec<String>,
}

impl GcReport {
    fn removed_staging(&mut self, path: PathBuf) {
        match remove_tree(&path) {
            Ok(()) => self.staging.push(path),
            Err(e) => self.errors.push(format!("{}: {e}", path.display())),
        }
    }

    /// True when nothing was removed or repaired.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.staging.is_empty()
            && self.envs_repaired.is_empty()
            && self.run_dirs.is_empty()
            && self.layers.is_empty()
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mounts {
            writeln!(f, "unmounted {}", m.display())?;
        }
        for s in &self.staging {
            writeln!(f, "removed staging {}", s.display())?;
        }
        for e in &self.envs_repaired {
            writeln!(f, "completed interrupted commit of env {e}")?;
        }
        for r in &self.run_dirs {
            writeln!(f, "removed {}", r.display())?;
        }
        for l in &self.layers {
            writeln!(f, "removed layer {l}")?;
        }
        for e in &self.errors {
            writeln!(f, "could not remove {e}")?;
        }
        if self.layers_skipped_busy {
            writeln!(
                f,
                "layers not swept: the store is in use (run gc again later)"
            )?;
        }
        if self.is_empty() {
            writeln!(f, "nothing to remove")?;
        }
        Ok(())
    }
}

impl Store {
    /// Removes leftovers of interrupted work and unreferenced layers; reports each.
    pub fn gc(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        self.gc_mounts(&mut report)?;
        self.gc_staging(&mut report)?;
        self.gc_commits(&mut report)?;
        self.gc_run_dirs(&mut report)?;
        match self.try_exclusive()? {
            Some(_guard) => self.gc_layers(&mut report)?,
            None => report.layers_skipped_busy = true,
        }
        Ok(report)
    }

    fn gc_mounts(&self, report: &mut GcReport) -> Result<()> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").at("/proc/self/mountinfo")?;
        let root = std::fs::canonicalize(self.root()).at(self.root())?;
        let run = root.join("run");
        let mut stale: Vec<PathBuf> = Vec::new();
        for point in mount_points(&info) {
            if point == root || !point.starts_with(&root) {
                continue;
            }
            if let Ok(rel) = point.strip_prefix(&run)
                && let Some(first) = rel.components().next()
                && let Some(name) = first.as_os_str().to_str()
                && let Ok(name) = Name::parse(name)
                && (self.env_paths(&name).mounted.exists() || self.env_busy(&name))
            {
                // Recorded by `joot mount`, or being mounted/unmounted right now by the holder
                // of the env lock.
                continue;
            }
            stale.push(point);
        }
        stale.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        stale.dedup();
        for p in stale {
            match rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) => report.mounts.push(p),
                // Already gone with its parent (detach takes submounts along).
                Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(crate::error::Error::io(p, e.into())),
            }
        }
        Ok(())
    }

    /// True when another process holds env `name`'s lock.
    fn env_busy(&self, name: &Name) -> bool {
        match std::fs::File::open(self.env_paths(name).lock) {
            Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    fn gc_staging(&self, report: &mut GcReport) -> Result<()> {
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).at(&tmp)? {
            let entry = entry.at(&tmp)?;
            let path = entry.path();
            let ft = entry.file_type().at(&path)?;
            if !ft.is_dir() {
                report.removed_staging(path);
                continue;
            }
            let lock = match open_lock_file(&path.join(".lock")) {
                Ok(f) => f,
                // Removed by its owner meanwhile.
                Err(crate::error::Error::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if lock.try_lock().is_ok() {
                report.removed_staging(path);
            }
        }
        Ok(())
    }

    fn gc_commits(&self, report: &mut GcReport) -> Result<()> {
        for n in list_names(&self.root().join("envs"))? {
            let Ok(name) = Name::parse(&n) else { continue };
            if !self.env_paths(&name).commit.exists() {
                continue;
            }
            // A busy env is mid-commit by its owner or will be recovered by its next lock.
            if let Ok(lock) = self.lock_env_allow_mounted(&name) {
                drop(lock);
                report.envs_repaired.push(name);
            }
        }
        Ok(())
    }

    fn gc_run_dirs(&self, report: &mut GcReport) -> Result<()> {
        let run = self.root().join("run");
        for n in list_names(&run)? {
            let mounted = Name::parse(&n)
                .map(|name| self.env_paths(&name).mounted.exists())
                .unwrap_or(false);
            let p = run.join(&n);
            // rmdir only: a non-empty dir is someone's data, and a mount point is busy.
            if !mounted && std::fs::remove_dir(&p).is_ok() {
                report.run_dirs.push(p);
            }
        }
        Ok(())
    }

    fn gc_layers(&self, report: &mut GcReport) -> Result<()> {
        let mut keep: HashSet<LayerId> = HashSet::new();
        for img in self.images()? {
            keep.extend(img.layers);
        }
        for env in self.envs()? {
            keep.extend(env.source.layers().iter().cloned());
        }
        keep.extend(self.pending_commit_layers()?);
        keep.extend(self.build_cache_layers()?);
        for id in self.layer_ids()? {
            if keep.contains(&id) && self.has_layer(&id) {
                continue;
            }
            let dir = self.layer_dir(&id);
            let bytes = self.layer(&id).map(|m| m.size).unwrap_or(0);
            // Rename out of layers/ first so a half-removed layer is never visible.
            let st = self.stage()?;
            let dead = st.path().join("layer");
            std::fs::rename(&dir, &dead).at(&dir)?;
            // Out of layers/ already; a failed removal is left to the next gc.
            if let Err(e) = remove_tree(&dead) {
                report
                    .errors
                    .push(format!("{}: {e} (left for the next gc)", dead.display()));
            }
            report.layers.push(id);
            report.layer_bytes += bytes;
        }
        Ok(())
    }

    fn build_cache_layers(&self) -> Result<Vec<LayerId>> {
        let mut out = Vec::new();
        let dir = self.build_cache_dir();
        for n in list_names(&dir)? {
            let p = dir.join(&n);
            let Ok(data) = std::fs::read(&p) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) {
                collect_layer_ids(&v, &mut out);
            }
        }
        Ok(out)
    }
}

fn collect_layer_ids(v: &serde_json::Value, out: &mut Vec<LayerId>) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(id) = LayerId::parse(s.strip_prefix("sha256:").unwrap_or(s)) {
                out.push(id);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_layer_ids(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_layer_ids(x, out)),
        _ => {}
    }
}

/// Mount points (field 5) of a mountinfo text, unescaped.
pub(crate) fn mount_points(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` (proc_pid_mountinfo(5)).
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Path::new(&std::ffi::OsString::from_vec(out)).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let info = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    40 22 0:5 / /var/lib/joot/run/a\\040b rw - overlay overlay rw\n";
        assert_eq!(
            mount_points(info),
            vec![PathBuf::from("/"), PathBuf::from("/var/lib/joot/run/a b")]
        );
    }

    #[test]
    fn finds_layer_ids_anywhere_in_json() {
        let id = LayerId::random();
        let v =
            serde_json::json!({"key": "k", "result": {"layers": [format!("sha256:{id}")]}, "n": 3});
        let mut out = Vec::new();
        collect_layer_ids(&v, &mut out);
        assert_eq!(out, vec![id]);
    }
}
