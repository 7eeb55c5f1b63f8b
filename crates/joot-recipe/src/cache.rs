//! Step cache keys. A step's result is a layer, found again by a key that is the sha256 of
//! everything that can change it:
//!
//! 1. the cache format version ([`CACHE_FORMAT`]; bumped when what a module does changes),
//! 2. the parent: the layer the step runs on (the base image's top layer for the first step,
//!    the previous step's layer after that), so changing step N re-runs N and everything after
//!    it, and a step is never stacked on a different build of its parent,
//! 3. the step's canonical JSON (keys sorted, no whitespace; host paths left out),
//! 4. the sha256 of every host file the step reads (`files` sources, puppet manifests, ansible
//!    playbooks, custom module executables), directories hashed as trees.
//!
//! The parts are kept in each cache entry, so `--explain-cache` can say which one changed.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::recipe::Step;

/// Version of the cache key scheme and of what built-in modules do.
pub const CACHE_FORMAT: u32 = 1;

/// Everything a step's cache key is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// [`CACHE_FORMAT`] when the key was made.
    pub format: u32,
    /// The layer the step runs on (`layer:<id>`, or `scratch`).
    pub parent: String,
    /// The step's canonical JSON.
    pub step: String,
    /// (label, sha256) of every host file the step reads, in step order.
    pub files: Vec<(String, String)>,
}

impl KeyInputs {
    /// The key parts of `step` on top of `parent`, with `files` digests computed by the caller
    /// (see [`digest_path`]) in the order of [`Step::inputs`].
    pub fn new(parent: &str, step: &Step, files: Vec<(String, String)>) -> KeyInputs {
        let json = serde_json::to_value(&step.module).unwrap_or(serde_json::Value::Null);
        KeyInputs {
            format: CACHE_FORMAT,
            parent: parent.to_string(),
            step: canonical_json(&json),
            files,
        }
    }

    /// The key: sha256 hex over the length-prefixed parts.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        let mut part = |s: &[u8]| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s);
        };
        part(b"joot-build-cache");
        part(self.format.to_string().as_bytes());
        part(self.parent.as_bytes());
        part(self.step.as_bytes());
        for (label, digest) in &self.files {
            part(label.as_bytes());
            part(digest.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Why a step with these inputs did not hit the entry made from `old`: one reason per part
    /// that differs.
    pub fn explain(&self, old: &KeyInputs) -> Vec<String> {
        let mut why = Vec::new();
        if self.format != old.format {
            why.push(format!(
                "the cache format changed ({} -> {})",
                old.format, self.format
            ));
        }
        if self.parent != old.parent {
            why.push(format!(
                "its parent changed ({} -> {}): an earlier step or the base changed",
                short(&old.parent),
                short(&self.parent)
            ));
        }
        if self.step != old.step {
            why.push(format!(
                "the step definition changed: {} -> {}",
                old.step, self.step
            ));
        }
        for (label, digest) in &self.files {
            match old.files.iter().find(|(l, _)| l == label) {
                Some((_, d)) if d != digest => why.push(format!(
                    "input {label} changed (sha256 {} -> {})",
                    short(d),
                    short(digest)
                )),
                None => why.push(format!("new input {label}")),
                _ => {}
            }
        }
        for (label, _) in &old.files {
            if !self.files.iter().any(|(l, _)| l == label) {
                why.push(format!("input {label} is no longer read"));
            }
        }
        why
    }
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// A step cache entry, stored as `ROOT/build-cache/<key>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// The key (the file name).
    pub key: String,
    /// The layer the step produced.
    pub layer: String,
    /// What the key was made of.
    pub inputs: KeyInputs,
    /// The step's one-line summary, for humans.
    pub summary: String,
    /// Seconds since the epoch.
    pub created: u64,
}

/// JSON with object keys sorted and no whitespace: the same value always gives the same text.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        J::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&J::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// sha256 of a host file (content and permission bits) or of a directory tree (sorted relative
/// paths with type, mode and content; symlinks by target). Owners and times are left out: they
/// differ between checkouts of the same files.
pub fn digest_path(path: &Path) -> io::Result<String> {
    let meta = std::fs::symlink_metadata(path)?;
    let mut h = Sha256::new();
    if meta.is_dir() {
        let mut entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(path)
            .follow_links(false)
            .min_depth(1)
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(io::Error::other)?;
        entries.sort_by(|a, b| a.path().cmp(b.path()));
        for e in entries {
            let rel = e.path().strip_prefix(path).map_err(io::Error::other)?;
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update([0]);
            hash_entry(e.path(), &mut h)?;
        }
    } else {
        hash_entry(path, &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_entry(path: &Path, h: &mut Sha256) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    let ft = meta.file_type();
    let mut line = String::new();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        let _ = write!(line, "l {}", target.display());
    } else if ft.is_dir() {
        let _ = write!(line, "d {mode:o}");
    } else if ft.is_file() {
        let _ = write!(line, "f {mode:o} {}", meta.size());
        h.update(line.as_bytes());
        h.update([0]);
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        return Ok(());
    } else {
        let _ = write!(line, "o {mode:o} {}", meta.rdev());
    }
    h.update(line.as_bytes());
    h.update([0]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{ParseOptions, parse};

    fn steps(yaml: &str, dir: &Path) -> Vec<Step> {
        parse(yaml, &dir.join("r.yaml"), &ParseOptions::default())
            .unwrap()
            .steps
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "q"}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[1,{"y":"q","z":0}]},"b":1}"#
        );
    }

    #[test]
    fn key_is_stable_and_sensitive_to_each_part() {
        let dir = tempfile::tempdir().unwrap();
        let s = steps(
            "version: 1\nfrom: base\nsteps:\n  - run: echo a\n  - run: echo b\n",
            dir.path(),
        );
        let a = KeyInputs::new("parent", &s[0], vec![]);
        assert_eq!(a.key(), KeyInputs::new("parent", &s[0], vec![]).key());
        assert_eq!(a.key().len(), 64);
        let other_parent = KeyInputs::new("parent2", &s[0], vec![]);
        assert_ne!(a.key(), other_parent.key());
        assert_ne!(a.key(), KeyInputs::new("parent", &s[1], vec![]).key());
        let with_file = KeyInputs::new("parent", &s[0], vec![("f".into(), "d1".into())]);
        let with_file2 = KeyInputs::new("parent", &s[0], vec![("f".into(), "d2".into())]);
        assert_ne!(with_file.key(), with_file2.key());
        assert_ne!(a.key(), with_file.key());
        // The field order in the YAML does not matter.
        let x = steps(
            "version: 1\nfrom: base\nsteps:\n  - run: {script: x, shell: /bin/bash}\n",
            dir.path(),
        );
        let y = steps(
            "version: 1\nfrom: base\nsteps:\n  - run: {shell: /bin/bash, script: x}\n",
            dir.path(),
        );
        assert_eq!(
            KeyInputs::new("p", &x[0], vec![]).key(),
            KeyInputs::new("p", &y[0], vec![]).key()
        );
    }

    #[test]
    fn explain_names_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let s = steps(
            "version: 1\nfrom: base\nsteps:\n  - run: echo a\n  - run: echo b\n",
            dir.path(),
        );
        let old = KeyInputs::new("p1", &s[0], vec![("files[0].src a".into(), "aaa".into())]);
        let new = KeyInputs::new("p1", &s[0], vec![("files[0].src a".into(), "bbb".into())]);
        let why = new.explain(&old);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("input files[0].src a changed"), "{why:?}");
        let new = KeyInputs::new("p2", &s[1], vec![]);
        let why = new.explain(&old);
        assert!(why.iter().any(|w| w.contains("parent changed")), "{why:?}");
        assert!(
            why.iter().any(|w| w.contains("definition changed")),
            "{why:?}"
        );
        assert!(why.iter().any(|w| w.contains("no longer read")), "{why:?}");
        assert!(new.explain(&new).is_empty());
    }

    #[test]
    fn digest_of_files_and_trees() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "one").unwrap();
        let d1 = digest_path(&f).unwrap();
        std::fs::write(&f, "two").unwrap();
        let d2 = digest_path(&f).unwrap();
        assert_ne!(d1, d2);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(d2, digest_path(&f).unwrap());

        let t = dir.path().join("tree");
        std::fs::create_dir_all(t.join("sub")).unwrap();
        std::fs::write(t.join("sub/x"), "x").unwrap();
        let t1 = digest_path(&t).unwrap();
        assert_eq!(t1, digest_path(&t).unwrap());
        std::fs::write(t.join("sub/y"), "").unwrap();
        let t2 = digest_path(&t).unwrap();
        assert_ne!(t1, t2);
        std::fs::rename(t.join("sub/y"), t.join("sub/z")).unwrap();
        assert_ne!(t2, digest_path(&t).unwrap());
    }
}
