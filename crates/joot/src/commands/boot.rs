//! `joot boot`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::BootArgs) -> Result<i32> {
    anyhow::bail!("`joot boot` is not available in this build yet")
}
