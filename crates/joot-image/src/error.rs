//! The one error type of joot-image. Variants carry what a user needs to act: the path, the
//! tool's argv and stderr tail, the partition number; messages say what to do next.

use std::path::PathBuf;

/// Everything that can go wrong exporting, importing or booting a disk image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option that does not make sense (bad size, unknown format, conflicting flags).
    #[error("{0}")]
    Invalid(String),

    /// A required host tool is missing.
    #[error("`{tool}` not found on PATH: it is needed {reason}; install the `{package}` package")]
    ToolMissing {
        /// Program name.
        tool: String,
        /// Debian package that provides it.
        package: String,
        /// Why joot needs it.
        reason: String,
    },

    /// A host tool ran and failed.
    #[error("`{argv}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The command line, shell-quoted for copy and paste.
        argv: String,
        /// Exit status or signal name.
        status: String,
        /// The last lines of its stderr.
        stderr: String,
    },

    /// The image to export has no kernel but a bootable format was asked for.
    #[error(
        "no kernel in the image (looked for /boot/vmlinuz-* and /usr/lib/modules/*/vmlinuz): a bootable disk or `--format ec2` needs one; add a step such as `packages: [linux-image-amd64]` to the recipe (and an init such as systemd-sysv)"
    )]
    NoKernel,

    /// The content does not fit in the requested size.
    #[error(
        "the content needs about {needed} bytes but the root filesystem would only have {available}: use a larger --size or --size auto"
    )]
    TooSmall {
        /// Estimated bytes needed.
        needed: u64,
        /// Bytes available for the root filesystem.
        available: u64,
    },

    /// A disk image to import (or boot) is refused as unsafe or broken.
    #[error("refusing {path}: {reason}")]
    Refused {
        /// The image.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// A partition table that cannot be used.
    #[error("bad partition table in {path}: {reason}")]
    PartitionTable {
        /// The (raw) image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// No usable root filesystem.
    #[error("no root filesystem found in {path}: {reason}")]
    NoRootFs {
        /// The image.
        path: PathBuf,
        /// What was looked at.
        reason: String,
    },

    /// Reading an ext4 filesystem in userspace failed.
    #[error("reading the ext4 filesystem in {path}: {message}")]
    Ext4 {
        /// The image.
        path: PathBuf,
        /// ext4-view's message.
        message: String,
    },

    /// `joot boot --expect` did not see its text in time.
    #[error("timed out after {seconds} s waiting for {expect:?} on the console")]
    Timeout {
        /// The text waited for.
        expect: String,
        /// The timeout.
        seconds: u64,
    },

    /// A host tool is missing or failed (joot-sandbox's runner: argv, status, stderr tail).
    #[error(transparent)]
    Tool(#[from] joot_sandbox::ToolError),

    /// The store refused something (unknown image, busy env, bad layer).
    #[error(transparent)]
    Store(#[from] joot_store::Error),

    /// The sandbox could not run a tool over the merged tree (rootless export).
    #[error(transparent)]
    Sandbox(#[from] joot_sandbox::Error),

    /// Any other I/O error (fs-err names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
}
