//! Progress reporting. The library never prints: it calls a [`Reporter`] that the binary
//! implements (terminal bars, plain lines, JSON lines). Every method has a no-op default so an
//! implementation picks what it shows.

use std::fmt;

/// The steps of a bootstrap, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for another bootstrap of the same release to release the package cache.
    WaitCache,
    /// Looking for an identical earlier bootstrap (one index file per suite or repository).
    CheckIndex,
    /// Reusing an earlier identical bootstrap.
    Reuse,
    /// Downloading package lists.
    Update,
    /// Downloading packages.
    Download,
    /// Unpacking packages.
    Extract,
    /// Installing and configuring packages.
    Install,
    /// Writing joot's conventions into the tree and caching downloads.
    Finish,
    /// Publishing the layer and the image.
    Publish,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::WaitCache => "waiting for another bootstrap of this release",
            Phase::CheckIndex => "checking the package index",
            Phase::Reuse => "reusing an identical bootstrap",
            Phase::Update => "updating package lists",
            Phase::Download => "downloading packages",
            Phase::Extract => "extracting packages",
            Phase::Install => "installing packages",
            Phase::Finish => "finishing the tree",
            Phase::Publish => "publishing",
        })
    }
}

/// Receives progress from a bootstrap.
pub trait Reporter {
    /// A new phase started.
    fn phase(&self, _phase: Phase) {}
    /// A package was set up (`done` counts them from 1).
    fn package(&self, _name: &str, _done: u64) {}
    /// Packages the installer has planned so far (it may plan in steps: the essential set,
    /// then the rest).
    fn planned(&self, _total: u64) {}
    /// Bytes downloaded so far (indexes and packages), as the installer reports them.
    fn bytes(&self, _downloaded: u64) {}
    /// One line of the installer's output (for verbose logs).
    fn output(&self, _line: &str) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {}
