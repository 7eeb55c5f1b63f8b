//! User and group ids: uid/gid maps of a user namespace (user_namespaces(7)) and switching
//! the ids of the calling thread.

use std::io;

/// Writes `/proc/PID/uid_map` and `gid_map` directly (possible for a single line mapping
/// the writer's own ids). With `deny_setgroups`, writes "deny" to `/proc/PID/setgroups` first,
/// which the kernel requires before an unprivileged gid_map write.
pub fn write_id_maps(
    pid: i32,
    uid_map: &str,
    gid_map: &str,
    deny_setgroups: bool,
) -> io::Result<()> {
    if deny_setgroups {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
    std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
    Ok(())
}

/// Switches the calling thread to `uid`/`gid` with the supplementary `groups` (None: leave
/// the supplementary groups alone, as required in a user namespace whose setgroups is
/// "deny"). Order matters: groups and gid first, while the uid may still change them.
pub fn switch_ids(uid: u32, gid: u32, groups: Option<&[u32]>) -> io::Result<()> {
    use rustix::process::{Gid, Uid};
    if let Some(groups) = groups {
        let g: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
        rustix::thread::set_thread_groups(&g)?;
    }
    let g = Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(g, g, g)?;
    let u = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(u, u, u)?;
    Ok(())
}
