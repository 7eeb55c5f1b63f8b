//! Envs: an overlay upper + work dir plus `env.json`, under `envs/<name>/`.
//!
//! Creating one is O(1) whatever the image size and however many envs exist: a staging dir,
//! two mkdirs, a small JSON write, an empty lock file, and one `RENAME_NOREPLACE` into
//! `envs/<name>` (two racing creators: the kernel picks exactly one winner). No directory is
//! scanned and nothing is fsynced on this path.
//!
//! Crash guarantees: after `kill -9` at any point an env either exists completely or not at
//! all (leftovers are in `tmp/` for `gc`). After a power loss a just-created env may be lost
//! or, on filesystems without rename ordering, have an empty `env.json`; it is then skipped by
//! listings. Commits and image/layer publishes are fsynced.
//!
//! Commit: the env's upper dir is renamed into a new layer (no copy; whiteouts and opaque
//! xattrs ride along), with a roll-forward record `commit.json` written first so a crash in the
//! middle is completed (by the next `lock_env` or `gc`) instead of losing the env's changes.

use std::fs::TryLockError;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{publish_file, rename_noreplace, tree_size};
use crate::layer::list_names;
use crate::meta::{
    Env, EnvConfig, EnvSource, Image, LayerId, LayerMeta, META_FORMAT, Origin, now, read_json,
    to_json,
};
use crate::name::Name;
use crate::store::{EnvPaths, Replace, Store};

/// An exclusive hold on an env (its `lock` file flocked). Released on drop.
#[derive(Debug)]
pub struct EnvLock {
    name: Name,
    paths: EnvPaths,
    _file: std::fs::File,
}

impl EnvLock {
    /// The locked env's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The locked env's paths.
    pub fn paths(&self) -> &EnvPaths {
        &self.paths
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CommitRecord {
    layer: LayerId,
    image: Name,
}

impl Store {
    /// Creates env `name`. Fails with "env 'x' already exists" if the name is taken.
    pub fn create_env(&self, name: &Name, source: EnvSource, config: EnvConfig) -> Result<Env> {
        // With a lease held gc cannot sweep, so layers that exist now still exist once the
        // env names them (an `rmi` + `gc` racing this create cannot leave it dangling).
        let _lease = match &source {
            EnvSource::Image { layers, .. } => {
                let lease = self.lease()?;
                if let Some(missing) = layers.iter().find(|l| !self.has_layer(l)) {
                    return Err(Error::NotFound {
                        kind: "layer",
                        name: missing.to_string(),
                    });
                }
                Some(lease)
            }
            EnvSource::Host => None,
        };
        let env = Env {
            format: META_FORMAT,
            name: name.clone(),
            source,
            config,
            created: now(),
        };
        // The staging dir itself becomes the env dir (its `.lock` rides along, unheld after
        // this call): one mkdir and one removal fewer than staging a subdirectory.
        let st = self.stage()?;
        let d = st.path().to_path_buf();
        for p in [d.join("upper"), d.join("work")] {
            std::fs::create_dir(&p).at(&p)?;
        }
        let json = d.join("env.json");
        std::fs::write(&json, to_json(&env)).at(&json)?;
        let lock = d.join("lock");
        std::fs::File::create(&lock).at(&lock)?;
        let dest = self.env_paths(name).dir;
        match rename_noreplace(&d, &dest) {
            Ok(()) => Ok(env),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
                kind: "env",
                name: name.to_string(),
            }),
            Err(e) => Err(Error::io(dest, e)),
        }
    }

    /// Reads env `name`.
    pub fn env(&self, name: &Name) -> Result<Env> {
        match read_json::<Env>(&self.env_paths(name).json) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound {
                    kind: "env",
                    name: name.to_string(),
                })
            }
            r => r,
        }
    }

    /// All envs, sorted by name. Unreadable ones are skipped with a warning.
    pub fn envs(&self) -> Result<Vec<Env>> {
        let mut out = Vec::new();
        for n in list_names(&self.root().join("envs"))? {
            let Ok(name) = Name::parse(&n) else { continue };
            match self.env(&name) {
                Ok(env) => out.push(env),
                Err(e) => tracing::warn!(env = %name, error = %e, "skipping unreadable env"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Bytes of file data in env `name`'s upper dir (its changes over its layers).
    pub fn env_upper_size(&self, name: &Name) -> Result<u64> {
        let upper = self.env_paths(name).upper;
        if !upper.is_dir() {
            return Err(Error::NotFound {
                kind: "env",
                name: name.to_string(),
            });
        }
        tree_size(&upper).at(&upper)
    }

    /// Locks env `name` exclusively, without blocking. Busy if another process holds the lock
    /// or the env is mounted with `joot mount`. Completes an interrupted commit first.
    pub fn lock_env(&self, name: &Name) -> Result<EnvLock> {
        let lock = self.lock_env_allow_mounted(name)?;
        if lock.paths.mounted.exists() {
            return Err(Error::EnvBusy(name.to_string()));
        }
        Ok(lock)
    }

    /// Like [`Store::lock_env`] but succeeds for an env mounted with `joot mount` (for
    /// `umount`, and `rm --force`).
    pub fn lock_env_allow_mounted(&self, name: &Name) -> Result<EnvLock> {
        let paths = self.env_paths(name);
        let file = match std::fs::OpenOptions::new().read(true).open(&paths.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    kind: "env",
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(Error::io(&paths.lock, e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::EnvBusy(name.to_string())),
            Err(TryLockError::Error(e)) => return Err(Error::io(&paths.lock, e)),
        }
        let lock = EnvLock {
            name: name.clone(),
            paths,
            _file: file,
        };
        self.recover_commit(&lock)?;
        Ok(lock)
    }

    /// Records that the locked env is mounted at `target` in the host namespace (`joot mount`).
    pub fn mark_mounted(&self, lock: &EnvLock, target: &Path) -> Result<()> {
        let st = self.stage()?;
        publish_file(
            &st.path().join("mounted"),
            &lock.paths.mounted,
            target.as_os_str().as_encoded_bytes(),
            true,
        )
    }

    /// Clears the mounted record of the locked env.
    pub fn clear_mounted(&self, lock: &EnvLock) -> Result<()> {
        match std::fs::remove_file(&lock.paths.mounted) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.at(&lock.paths.mounted),
        }
    }

    /// Where env `name` is mounted with `joot mount`, if it is.
    pub fn mounted(&self, name: &Name) -> Result<Option<PathBuf>> {
        let p = self.env_paths(name).mounted;
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(PathBuf::from(
                String::from_utf8_lossy(&b).trim_end().to_string(),
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Replaces the stored config of the locked env.
    pub fn set_env_config(&self, lock: &EnvLock, config: EnvConfig) -> Result<Env> {
        let mut env = self.env(&lock.name)?;
        env.config = config;
        self.write_env(&env)?;
        Ok(env)
    }

    fn write_env(&self, env: &Env) -> Result<()> {
        let st = self.stage()?;
        publish_file(
            &st.path().join("env.json"),
            &self.env_paths(&env.name).json,
            &to_json(env),
            true,
        )
    }

    /// Removes env `name`. Refused while it runs. A mounted env is refused unless `force`,
    /// which detaches its `run/<name>` mount first (without reading the mount table).
    pub fn remove_env(&self, name: &Name, force: bool) -> Result<()> {
        let lock = self.lock_env_allow_mounted(name)?;
        if lock.paths.mounted.exists() {
            if !force {
                return Err(Error::EnvBusy(name.to_string()));
            }
            let run = self.run_dir(name);
            match rustix::mount::unmount(&run, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(Error::io(run, e.into())),
            }
            let _ = std::fs::remove_dir(&run);
        }
        // Out of envs/ in one rename, then removed; if this process dies meanwhile the dir is
        // an unlocked leftover in tmp/ that gc removes.
        let graveyard = self
            .tmp_dir()
            .join(format!("rm-{}", crate::fsutil::unique_token()));
        std::fs::rename(&lock.paths.dir, &graveyard).at(&lock.paths.dir)?;
        drop(lock);
        if let Err(e) = crate::fsutil::remove_tree(&graveyard) {
            // The env is gone from envs/; the rest is an unlocked leftover for gc.
            tracing::warn!(path = %graveyard.display(), error = %e, "env files not fully removed; gc will");
        }
        Ok(())
    }

    /// Commits env `name` into a new layer and publishes image `new_image` = the env's layers
    /// plus that layer. Takes the env lock (busy if the env runs).
    pub fn commit_env(&self, name: &Name, new_image: &Name, origin: Origin) -> Result<Image> {
        let lock = self.lock_env(name)?;
        self.commit_locked(&lock, new_image, origin)
    }

    /// [`Store::commit_env`] for a caller that already holds the env lock.
    ///
    /// The env's upper dir is renamed into the layer (no copy); the env gets a fresh empty
    /// upper, and its layer list becomes the old one plus the new layer, so it sees the same
    /// tree as before.
    pub fn commit_locked(&self, lock: &EnvLock, new_image: &Name, origin: Origin) -> Result<Image> {
        let mut env = self.env(&lock.name)?;
        let EnvSource::Image {
            name: base_name,
            layers,
        } = env.source.clone()
        else {
            return Err(Error::CommitHostEnv(lock.name.to_string()));
        };
        if self.image_path(new_image).exists() {
            return Err(Error::AlreadyExists {
                kind: "image",
                name: new_image.to_string(),
            });
        }
        let base = self.image(&base_name).ok();
        let _lease = self.lease()?;
        let paths = &lock.paths;
        let id = LayerId::random();
        let size = tree_size(&paths.upper).at(&paths.upper)?;
        let f = std::fs::File::open(&paths.upper).at(&paths.upper)?;
        rustix::fs::syncfs(&f).at(&paths.upper)?;
        drop(f);

        let st = self.stage()?;
        let skel = st.path().join("layer");
        std::fs::create_dir(&skel).at(&skel)?;
        let meta = LayerMeta {
            format: META_FORMAT,
            id: id.clone(),
            created: now(),
            origin,
            size,
            diff_id: None,
        };
        publish_file(
            &st.path().join("layer.json.tmp"),
            &skel.join("layer.json"),
            &to_json(&meta),
            true,
        )?;
        // 1. roll-forward record, 2. layer skeleton (invisible: no root/), 3. upper -> root/.
        let record = CommitRecord {
            layer: id.clone(),
            image: new_image.clone(),
        };
        publish_file(
            &st.path().join("commit.json"),
            &paths.commit,
            &to_json(&record),
            true,
        )?;
        let layer_dir = self.layer_dir(&id);
        rename_noreplace(&skel, &layer_dir).at(&layer_dir)?;
        let layer_root = self.layer_root(&id);
        std::fs::rename(&paths.upper, &layer_root).at(&paths.upper)?;
        std::fs::create_dir(&paths.upper).at(&paths.upper)?;
        copy_dir_owner_mode(&layer_root, &paths.upper)?;

        let mut new_layers = layers;
        new_layers.push(id.clone());
        env.source = EnvSource::Image {
            name: new_image.clone(),
            layers: new_layers.clone(),
        };
        self.write_env(&env)?;

        let mut image = Image::new(new_image.clone(), new_layers);
        image.parent = Some(base_name.to_string());
        if let Some(base) = base {
            image.config = base.config;
            image.distro = base.distro;
        }
        let published = self.put_image(&image, Replace::No);
        std::fs::remove_file(&paths.commit).at(&paths.commit)?;
        published?;
        Ok(image)
    }

    /// Completes an interrupted commit of the locked env (see the module docs). Returns true
    /// when something was repaired.
    pub(crate) fn recover_commit(&self, lock: &EnvLock) -> Result<bool> {
        let paths = &lock.paths;
        let record: CommitRecord = match read_json(&paths.commit) {
            Ok(r) => r,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(false);
            }
            Err(Error::Json { .. }) => {
                // Torn record: the commit had not started moving anything yet.
                let _ = std::fs::remove_file(&paths.commit);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        if self.layer_root(&record.layer).is_dir() {
            let mut env = self.env(&lock.name)?;
            if let EnvSource::Image { name, layers } = &mut env.source
                && !layers.contains(&record.layer)
            {
                layers.push(record.layer.clone());
                *name = record.image.clone();
                self.write_env(&env)?;
            }
            if !paths.upper.exists() {
                std::fs::create_dir(&paths.upper).at(&paths.upper)?;
            }
            tracing::warn!(env = %lock.name, layer = %record.layer, image = %record.image,
                "completed an interrupted commit; the image was not published");
        }
        std::fs::remove_file(&paths.commit).at(&paths.commit)?;
        Ok(true)
    }

    /// Layer ids named by interrupted commits (kept by gc until recovered).
    pub(crate) fn pending_commit_layers(&self) -> Result<Vec<LayerId>> {
        let mut out = Vec::new();
        for n in list_names(&self.root().join("envs"))? {
            let Ok(name) = Name::parse(&n) else { continue };
            if let Ok(r) = read_json::<CommitRecord>(&self.env_paths(&name).commit) {
                out.push(r.layer);
            }
        }
        Ok(out)
    }
}

/// Gives `dst` the owner and mode of `src` (a fresh upper keeps the root dir's attributes,
/// which overlayfs shows as the env's `/`).
fn copy_dir_owner_mode(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(src).at(src)?;
    let _ = std::os::unix::fs::chown(dst, Some(md.uid()), Some(md.gid()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777)).at(dst)
}
