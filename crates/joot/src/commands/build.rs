//! `joot build`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::BuildArgs) -> Result<i32> {
    anyhow::bail!("`joot build` is not available in this build yet")
}
