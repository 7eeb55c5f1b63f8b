//! `joot pull`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::PullArgs) -> Result<i32> {
    anyhow::bail!("`joot pull` is not available in this build yet")
}
