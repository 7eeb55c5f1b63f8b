//! The crate's error type. Variants carry what the user needs to act: the known names when a
//! spec is wrong, the package to install when a tool is missing, the argv, status and stderr tail
//! when a tool fails.

use std::path::PathBuf;

/// Errors of joot-bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unknown distribution {given:?}; known distributions: {known} (see `joot bootstrap --list`)"
    )]
    UnknownDistro { given: String, known: String },

    #[error("unknown release {release:?} of {distro}; known releases: {known}")]
    UnknownRelease {
        distro: String,
        release: String,
        known: String,
    },

    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },

    #[error("keyring {} not found: install the Debian package {package} or pass --keyring", path.display())]
    MissingKeyring { path: PathBuf, package: String },

    #[error(transparent)]
    Tool(#[from] joot_sandbox::ToolError),

    #[error("`{argv}` failed ({status}); its last output:\n{tail}")]
    ToolFailed {
        argv: String,
        status: String,
        tail: String,
    },

    #[error(
        "bootstrapping needs root (the installers create device nodes and chroot); run joot as root"
    )]
    NotRoot,

    #[error("image {0} already exists: pass --replace or choose another --name")]
    ImageExists(String),

    #[error(transparent)]
    Store(#[from] joot_store::Error),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(
    what: &'static str,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> Error {
    Error::Invalid {
        what,
        value: value.into(),
        reason: reason.into(),
    }
}
