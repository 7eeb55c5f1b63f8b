//! Rootless verbs that write, read or delete the store's trees re-run themselves inside a user
//! namespace where the user is root over the mapped range (see `joot_sandbox::userns`): then
//! `chown 1000` during an import lands on the subordinate uid the runs map to 1000, and files
//! of the range can be read (export, push) and removed (rm, rmi, gc). Without a subordinate
//! range there is nothing to gain: the verb runs as the user, and the id map's detection warns
//! what is lost (other owners collapse onto the user).

use anyhow::Result;

use crate::cli::{Cli, Command};

use super::Ctx;

/// True for the verbs that touch file trees of the store (as opposed to its JSON records, or
/// `run`/`shell`/`call`, which make their own user namespace).
fn touches_trees(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Import(_)
            | Command::Pull(_)
            | Command::Push(_)
            | Command::Build(_)
            | Command::Export(_)
            | Command::Bootstrap(_)
            | Command::Commit(_)
            | Command::Inspect(_)
            | Command::Rm(_)
            | Command::Rmi(_)
            | Command::Gc
    )
}

/// For a plain user with a subordinate id range, runs the verb again inside a user namespace
/// and returns its exit status; `None` when the verb should run here.
pub fn maybe_reexec(cli: &Cli, ctx: &Ctx) -> Result<Option<i32>> {
    if rustix::process::geteuid().is_root()
        || joot_sandbox::userns::reexecuted()
        || !touches_trees(&cli.command)
    {
        return Ok(None);
    }
    let map = joot_sandbox::IdMap::detect();
    if !map.helpers {
        return Ok(None);
    }
    // Open (and on first use create) the store as the user: its files and its `store.json`
    // (user.* overlay xattrs) must be the user's, not decided by euid 0 inside.
    ctx.store()?;
    let root = std::path::absolute(&ctx.store_root)?;
    let env = vec![("JOOT_ROOT".to_string(), root.to_string_lossy().into_owned())];
    Ok(Some(joot_sandbox::userns::reexec(&map, &env)?))
}
