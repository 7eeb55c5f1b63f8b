//! `joot pull`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::PullArgs) -> Result<i32> {
    anyhow::bail!("`joot pull` is not available in this build yet")
}

/// KEEP THIS SIGNATURE: commands/from.rs (the lead's) calls it for `--from REF`.
/// Returns the image for a registry reference, pulling it first when the store has none: what
/// `--from localhost:5000/app:1.0` uses.
pub fn ensure_pulled(_ctx: &Ctx, reference: &str) -> Result<joot_store::Image> {
    anyhow::bail!("cannot pull '{reference}': pull is not available in this build yet")
}
