//! The store: opening (and creating) the on-disk layout, its paths, and the store-wide lease
//! that keeps `gc` from sweeping layers that are published but not yet referenced.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{publish_file, unique_token};
use crate::meta::LayerId;
use crate::name::Name;
use crate::staging::Staging;

/// Format version of the store layout (the `version` file).
pub const STORE_FORMAT: u32 = 1;

/// Which xattr namespace overlayfs uses for this store's whiteout/opaque markers: `trusted.`
/// when the store is used by real root, `user.` in a rootless store (overlay `userxattr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XattrNs {
    Trusted,
    User,
}

impl XattrNs {
    /// The opaque-directory xattr name in this namespace.
    pub fn opaque_xattr(self) -> &'static str {
        match self {
            XattrNs::Trusted => "trusted.overlay.opaque",
            XattrNs::User => "user.overlay.opaque",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoreJson {
    format: u32,
    xattr_ns: XattrNs,
}

/// Paths of one env's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPaths {
    /// `envs/<name>/`
    pub dir: PathBuf,
    /// `envs/<name>/upper/`: the overlay upperdir.
    pub upper: PathBuf,
    /// `envs/<name>/work/`: the overlay workdir.
    pub work: PathBuf,
    /// `envs/<name>/lock`: flocked while the env runs or is being changed.
    pub lock: PathBuf,
    /// `envs/<name>/env.json`
    pub json: PathBuf,
    /// `envs/<name>/mounted`: exists (holding the mount path) while `joot mount` keeps the env
    /// mounted in the host namespace.
    pub mounted: PathBuf,
    /// `envs/<name>/commit.json`: a commit in progress (roll-forward record).
    pub commit: PathBuf,
}

/// Replace an existing image of the same name or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    No,
    Yes,
}

/// A shared hold on the store that makes `gc` leave unreferenced layers alone. Hold one from
/// before publishing layers until an image (or env) references them.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

/// An opened joot store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    xattr_ns: XattrNs,
}

const SUBDIRS: &[&str] = &[
    "layers",
    "images",
    "envs",
    "tmp",
    "cache",
    "build-cache",
    "mnt",
    "run",
];

impl Store {
    /// Opens the store at `root`, creating the layout if it does not exist yet. A store written
    /// by a newer joot is refused.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = std::path::absolute(root.as_ref()).at(root.as_ref())?;
        let version = root.join("version");
        match std::fs::read_to_string(&version) {
            Ok(text) => {
                let found: u32 = text.trim().parse().map_err(|_| Error::BadVersion {
                    path: version.clone(),
                    found: text.chars().take(40).collect(),
                })?;
                if found > STORE_FORMAT {
                    return Err(Error::NewerFormat {
                        path: version,
                        found,
                        supported: STORE_FORMAT,
                    });
                }
                let xattr_ns = Self::read_store_json(&root)?;
                Ok(Store { root, xattr_ns })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(root),
            Err(e) => Err(Error::io(version, e)),
        }
    }

    fn read_store_json(root: &Path) -> Result<XattrNs> {
        let path = root.join("store.json");
        match std::fs::read(&path) {
            Ok(data) => {
                let s: StoreJson =
                    serde_json::from_slice(&data).map_err(|source| Error::Json { path, source })?;
                Ok(s.xattr_ns)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(default_xattr_ns()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn create(root: PathBuf) -> Result<Store> {
        std::fs::create_dir_all(&root).at(&root)?;
        for sub in SUBDIRS {
            let p = root.join(sub);
            match std::fs::create_dir(&p) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(Error::io(p, e)),
                _ => {}
            }
        }
        let xattr_ns = default_xattr_ns();
        let sj = StoreJson {
            format: STORE_FORMAT,
            xattr_ns,
        };
        // Another process may be creating the same store: both write identical content, and
        // `version` goes last so a store with a version file is complete.
        let tok = unique_token();
        let store_json = root.join("store.json");
        if !store_json.exists() {
            publish_file(
                &root.join(format!(".store.json.{tok}")),
                &store_json,
                &crate::meta::to_json(&sj),
                true,
            )?;
        }
        publish_file(
            &root.join(format!(".version.{tok}")),
            &root.join("version"),
            format!("{STORE_FORMAT}\n").as_bytes(),
            true,
        )?;
        let xattr_ns = Self::read_store_json(&root)?;
        Ok(Store { root, xattr_ns })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The xattr namespace overlay markers use in this store.
    pub fn xattr_ns(&self) -> XattrNs {
        self.xattr_ns
    }

    /// `layers/<id>/`
    pub fn layer_dir(&self, id: &LayerId) -> PathBuf {
        self.root.join("layers").join(id.as_str())
    }

    /// `layers/<id>/root/`: the tree, used directly as an overlay lower dir.
    pub fn layer_root(&self, id: &LayerId) -> PathBuf {
        self.layer_dir(id).join("root")
    }

    /// `images/<name>.json`
    pub fn image_path(&self, name: &Name) -> PathBuf {
        self.root.join("images").join(format!("{name}.json"))
    }

    /// The paths of env `name` (which need not exist).
    pub fn env_paths(&self, name: &Name) -> EnvPaths {
        let dir = self.root.join("envs").join(name.as_str());
        EnvPaths {
            upper: dir.join("upper"),
            work: dir.join("work"),
            lock: dir.join("lock"),
            json: dir.join("env.json"),
            mounted: dir.join("mounted"),
            commit: dir.join("commit.json"),
            dir,
        }
    }

    /// `mnt/`: an empty directory every sandbox uses as its mount point inside its own mount
    /// namespace.
    pub fn mount_point(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// `run/<name>/`: where `joot mount` mounts env `name` in the host namespace.
    pub fn run_dir(&self, name: &Name) -> PathBuf {
        self.root.join("run").join(name.as_str())
    }

    /// `cache/`: downloads (packages, OCI blobs).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `build-cache/`: recipe step cache entries (`<key>.json`). `gc` keeps every layer id that
    /// appears as a string anywhere in these files.
    pub fn build_cache_dir(&self) -> PathBuf {
        self.root.join("build-cache")
    }

    /// `tmp/`: staging.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A new locked staging directory under `tmp/`; dropping it removes it.
    pub fn stage(&self) -> Result<Staging> {
        Staging::new(&self.tmp_dir())
    }

    /// Takes a shared lease on the store (blocks while `gc` sweeps layers).
    pub fn lease(&self) -> Result<Lease> {
        let path = self.root.join("gc.lock");
        let file = open_lock_file(&path)?;
        file.lock_shared().at(&path)?;
        Ok(Lease { _file: file })
    }

    /// Tries to take the store exclusively for a layer sweep; `None` when leases are held.
    pub(crate) fn try_exclusive(&self) -> Result<Option<File>> {
        let path = self.root.join("gc.lock");
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }
}

pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)
}

fn default_xattr_ns() -> XattrNs {
    if rustix::process::geteuid().is_root() {
        XattrNs::Trusted
    } else {
        XattrNs::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_layout_and_reopens() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("s");
        let s = Store::open(&root).unwrap();
        for sub in SUBDIRS {
            assert!(root.join(sub).is_dir(), "{sub}");
        }
        assert_eq!(
            std::fs::read_to_string(root.join("version")).unwrap(),
            "1\n"
        );
        let again = Store::open(&root).unwrap();
        assert_eq!(again.root(), s.root());
        assert_eq!(again.xattr_ns(), s.xattr_ns());
    }

    #[test]
    fn open_refuses_newer_format() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("version"), "7\n").unwrap();
        let err = Store::open(d.path()).unwrap_err().to_string();
        assert!(err.contains("format version 7 is newer"), "{err}");
        assert!(err.contains("upgrade joot"), "{err}");
        std::fs::write(d.path().join("version"), "garbage").unwrap();
        let err = Store::open(d.path()).unwrap_err().to_string();
        assert!(err.contains("not a joot store version file"), "{err}");
    }
}
