//! `joot bootstrap`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::BootstrapArgs) -> Result<i32> {
    anyhow::bail!("`joot bootstrap` is not available in this build yet")
}

/// KEEP THIS SIGNATURE: commands/from.rs (the lead's) calls it for `--from SPEC`.
/// Returns the image for a distro spec (`debian:bookworm`), bootstrapping it first when the
/// store has none: what `--from debian:bookworm` and recipes' `from:` use.
pub fn ensure_image(_ctx: &Ctx, spec: &str) -> Result<joot_store::Image> {
    anyhow::bail!("cannot bootstrap '{spec}': bootstrap is not available in this build yet")
}
