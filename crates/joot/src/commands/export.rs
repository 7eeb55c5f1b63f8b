//! `joot export`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::ExportArgs) -> Result<i32> {
    anyhow::bail!("`joot export` is not available in this build yet")
}
