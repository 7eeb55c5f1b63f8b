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

/// True when `--from` names something that is not in the store yet: a distro spec or registry
/// reference that `create`/`run` bootstrap or pull first (writing a tree).
fn from_fetches(ctx: &Ctx, from: Option<&str>) -> bool {
    let Some(from) = from else { return false };
    if from == "host" {
        return false;
    }
    let known = ctx.store().is_ok_and(|store| {
        joot_store::Name::parse(from).is_ok_and(|name| store.image(&name).is_ok())
    });
    !known && from.contains(['/', ':'])
}

/// For a plain user with a subordinate id range, runs the verb again inside a user namespace
/// and returns its exit status; `None` when the verb should run here.
pub fn maybe_reexec(cli: &Cli, ctx: &Ctx) -> Result<Option<i32>> {
    if rustix::process::geteuid().is_root() || joot_sandbox::userns::reexecuted() {
        return Ok(None);
    }
    let wanted = touches_trees(&cli.command)
        || match &cli.command {
            Command::Create(a) => from_fetches(ctx, Some(&a.from)),
            Command::Run(a) => {
                let fetches = from_fetches(ctx, a.from.as_deref());
                if fetches && a.opts.bind_user {
                    // The run would start inside the re-run's namespace, where the invoking
                    // user is uid 0: --bind-user could not map them to themselves.
                    anyhow::bail!(
                        "--bind-user needs the image in the store first: run `joot pull` or \
                         `joot bootstrap` for it (or `joot create --from` it), then run again"
                    );
                }
                fetches
            }
            _ => false,
        };
    if !wanted {
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
