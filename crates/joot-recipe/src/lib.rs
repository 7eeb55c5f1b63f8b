//! joot recipes: the declarative YAML that `joot build` turns into an image. This crate is pure
//! (no mounts, no processes): it parses recipes into typed steps, checks them as a whole and
//! reports every problem with its line and column, and computes step cache keys. `joot-build`
//! runs what comes out of here.
//!
//! ```text
//! version: 1
//! name: web
//! from: debian:bookworm
//! steps:
//!   - packages: [nginx]
//!   - run: echo built > /etc/motd
//! ```

pub mod cache;
pub mod diag;
pub mod module;
pub mod node;
pub mod recipe;

use std::path::{Path, PathBuf};

pub use cache::{CACHE_FORMAT, CacheEntry, KeyInputs, digest_path};
pub use diag::{Diagnostic, Diagnostics};
pub use module::{BUILTIN, Input, Module};
pub use node::Loc;
pub use recipe::{Base, ParseOptions, RECIPE_VERSION, Recipe, Step, parse, valid_name};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The recipe file could not be read.
    #[error("cannot read recipe {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The recipe has problems; every one is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and checks the recipe at `path`.
pub fn load(path: &Path, opts: &ParseOptions) -> Result<Recipe, RecipeError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, opts).map_err(RecipeError::Invalid)
}
