//! `joot push`.

use anyhow::Result;

use super::Ctx;
use crate::cli;

pub fn run(_ctx: &Ctx, _args: &cli::PushArgs) -> Result<i32> {
    anyhow::bail!("`joot push` is not available in this build yet")
}
