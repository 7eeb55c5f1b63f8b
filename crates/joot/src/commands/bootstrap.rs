//! `joot bootstrap`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::BootstrapArgs) -> Result<i32> {
    anyhow::bail!("`joot bootstrap` is not available in this build yet")
}
