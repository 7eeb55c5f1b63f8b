//! The one error type of joot-oci. Variants carry what a user needs to act: the digest that did
//! not match, the registry and its own message, the path inside a layer that was refused.

use std::io;
use std::path::PathBuf;

/// Result alias used across joot-oci.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong moving images in and out of joot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error; fs-err errors already name the path.
    #[error(transparent)]
    Io(#[from] io::Error),

    /// Data does not hash to the digest it was announced with.
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual}; the source is corrupt or was tampered with, nothing was stored"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// A blob ended before its announced size.
    #[error("blob {digest} is truncated: expected {expected} bytes, got {actual}")]
    Truncated {
        digest: String,
        expected: u64,
        actual: u64,
    },

    /// A manifest, index, config or archive that does not parse or breaks the spec.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    /// Valid input that joot does not handle (yet).
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },

    /// A layer tar that tries to write outside its root or is otherwise unsafe.
    #[error("layer {layer} refused: {reason}")]
    UnsafeLayer { layer: String, reason: String },

    /// An image reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },

    /// No manifest in an index matches the wanted platform.
    #[error(
        "no image for platform {platform} in {reference} (available: {available}); choose one with --platform"
    )]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    /// The registry answered with an error; `message` is the registry's own text.
    #[error("registry {registry}: {message}")]
    Registry {
        registry: String,
        status: Option<u16>,
        message: String,
    },

    /// Credentials could not be read.
    #[error("credentials in {path}: {reason}")]
    Auth { path: PathBuf, reason: String },

    /// Something the import does not recognise.
    #[error(
        "{path}: not a docker-save archive or OCI image layout (looked for manifest.json, oci-layout, index.json)"
    )]
    UnknownArchive { path: PathBuf },

    /// An error from the store.
    #[error("store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Invalid {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn store(e: joot_store::Error) -> Error {
        Error::Store(Box::new(e))
    }
}
