//! Staging directories: every change is built under `ROOT/tmp/<token>/` and then renamed into
//! place, so nothing under `layers/`, `images/` or `envs/` is ever half-made. Each staging dir
//! holds a `.lock` file flocked by its owner for its whole life; `gc` removes only staging dirs
//! whose lock it can take, so a live operation is never swept and a killed one always is.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_tree, unique_token};

/// A locked temporary directory under `ROOT/tmp/`. Dropping it removes it with its content.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    _lock: File,
}

impl Staging {
    pub(crate) fn new(tmp_dir: &Path) -> Result<Staging> {
        let mut last_err = None;
        for _ in 0..64 {
            let path = tmp_dir.join(unique_token());
            match std::fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
            // gc may have raced us between mkdir and lock: it opens `.lock` with O_CREAT,
            // locks it, then removes the dir. Take the lock non-blocking and make sure the file
            // is still linked; otherwise try another name.
            let lock_path = path.join(".lock");
            let lock = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(lock_path, e)),
            };
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    last_err = Some(io::Error::from(io::ErrorKind::WouldBlock));
                    continue;
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(lock_path, e)),
            }
            if lock.metadata().at(&lock_path)?.nlink() == 0 {
                continue;
            }
            return Ok(Staging { path, _lock: lock });
        }
        Err(Error::io(
            tmp_dir,
            last_err.unwrap_or_else(|| io::Error::other("cannot create a staging directory")),
        ))
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "staging dir not removed; gc will");
        }
    }
}
