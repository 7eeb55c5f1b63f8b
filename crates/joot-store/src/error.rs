//! The store's one error type. Variants carry what a caller needs to act on: the name, the path,
//! the archive entry. Messages are lowercase and say what to do next where there is something.

use std::io;
use std::path::PathBuf;

/// Result alias for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name of an image or env that does not match `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
    #[error("invalid name '{name}': {reason} (names match [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}})")]
    InvalidName { name: String, reason: &'static str },
    /// A layer id that is not 64 lowercase hex characters.
    #[error("invalid layer id '{0}': expected 64 lowercase hex characters")]
    InvalidLayerId(String),
    /// An I/O error on a path.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A metadata file that cannot be parsed.
    #[error("{}: invalid metadata: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A store or metadata file written by a newer joot.
    #[error(
        "{}: format version {found} is newer than this joot supports ({supported}): upgrade joot",
        path.display()
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A `version` file that is not a number.
    #[error("{}: not a joot store version file (found {found:?}); is --root pointing at the right directory?", path.display())]
    BadVersion { path: PathBuf, found: String },
    /// An image or env name that is already taken.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// An image, env or layer that does not exist.
    #[error("{kind} '{name}' not found")]
    NotFound { kind: &'static str, name: String },
    /// The env lock is held by another process, or the env is mounted.
    #[error("env '{0}' is busy (running or mounted)")]
    EnvBusy(String),
    /// `rmi` of an image that envs still use.
    #[error("image '{image}' is used by env(s) {}: remove them first or use --force", envs.join(", "))]
    ImageInUse { image: String, envs: Vec<String> },
    /// An env that has no image to commit onto (a `--from host` env).
    #[error("env '{0}' is based on the host root and cannot be committed into an image")]
    CommitHostEnv(String),
    /// An archive entry refused or failed.
    #[error("archive entry '{entry}': {reason}")]
    ArchiveEntry { entry: String, reason: String },
    /// The input is not a (complete) tar archive.
    #[error("not a valid tar archive: {0}")]
    NotArchive(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn entry(entry: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::ArchiveEntry {
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e.into()))
    }
}
