//! Rootless store work inside a user namespace (issue 7).
//!
//! A plain user cannot `chown` a file to another uid, read another uid's `0600` files or
//! delete a directory a subordinate uid owns. Yet a rootless store holds trees whose files
//! belong to the mapped range (uid 1000 of an image is host uid `subuid_start + 999`), and
//! `import`, `pull`, `build`, `export`, `rm`, `gc`, ... must write, read and delete them with
//! their owners intact. Like buildah's `unshare` re-exec, the binary runs such a verb again
//! inside a new user + mount namespace where it is root with the same map as the sandbox's
//! runs ([`IdMap::detect`]): `chown 1000` then lands on the right subordinate uid, and every
//! crate can use its root code path. The re-run is marked with [`REEXEC_ENV`] so it never
//! re-executes again.
//!
//! Inside that namespace the process's euid is 0 but it is not privileged on the host:
//! [`privileged`] tells the two apart (loop devices, mknod of real devices and mounts in the
//! host's namespace stay impossible), and runs started from there get a nested user namespace
//! with the identity of the current maps ([`IdMap::nested`]) so overlay uses `userxattr` and
//! /dev nodes are bound, exactly as in a direct rootless run.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;

use joot_sys::{fd as jfd, process};
use rustix::process::{Pid, WaitOptions};

use crate::idmap::{IdMap, IdRange};
use crate::{Error, Result};

/// Set (to "1") in the environment of a process re-executed by [`reexec`].
pub const REEXEC_ENV: &str = "JOOT_IN_USERNS";

/// The identity line of the initial user namespace's /proc/self/uid_map.
fn is_identity_map(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first: Vec<&str> = lines
        .next()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    lines.next().is_none() && first == ["0", "0", "4294967295"]
}

/// True when the process lives in the initial user namespace (its uid_map maps every id to
/// itself).
pub fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|t| is_identity_map(&t))
        .unwrap_or(true)
}

/// True for real root: euid 0 in the initial user namespace. (A process re-executed by
/// [`reexec`] has euid 0 too, but only inside its own namespace.)
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root() && in_initial_userns()
}

/// True when running without real root, directly or inside a [`reexec`] namespace.
pub fn rootless() -> bool {
    !privileged()
}

/// True in a process re-executed by [`reexec`].
pub fn reexecuted() -> bool {
    std::env::var_os(REEXEC_ENV).is_some_and(|v| v == "1")
}

/// Kills and reaps the re-executed child if the parent leaves early.
struct Reaper(Option<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take()
            && let Some(p) = Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
        }
    }
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Invalid("NUL byte in an argument".into()))
}

/// Runs this program again, with the same arguments and environment plus `env` and
/// [`REEXEC_ENV`]=1, in a new user and mount namespace whose ids are `map` (written before
/// the child continues), and returns its exit status (128+N for signal N). Signals joot
/// receives are forwarded to the child; the child dies with its parent.
pub fn reexec(map: &IdMap, env: &[(String, String)]) -> Result<i32> {
    let exe = c"/proc/self/exe";
    let argv = std::env::args_os()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == REEXEC_ENV || env.iter().any(|(n, _)| k == n.as_str()) {
            continue;
        }
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(cstring(&kv)?);
    }
    for (k, v) in env {
        envp.push(cstring(format!("{k}={v}").as_bytes())?);
    }
    envp.push(cstring(format!("{REEXEC_ENV}=1").as_bytes())?);

    let io = |context: &'static str| {
        move |source: std::io::Error| Error::Io {
            context: context.to_string(),
            source,
        }
    };
    let (sync_rd, sync_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let (sync_fd, parent_fd) = (sync_rd.as_raw_fd(), sync_wr.as_raw_fd());
    let flags = (process::CLONE_NEWUSER | process::CLONE_NEWNS) as u64;
    tracing::debug!(uid_map = %map.uid_map_text().trim(), "re-running joot in a user namespace");
    let pid = process::spawn_in_namespaces(flags, move || {
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        jfd::close_raw(parent_fd);
        let mut b = [0u8; 1];
        if !matches!(rustix::io::read(jfd::borrow(sync_fd), &mut b), Ok(1)) {
            return 125;
        }
        jfd::close_raw(sync_fd);
        let err = process::execve(exe, &argv, &envp);
        let msg = format!("joot: error: cannot re-run joot in a user namespace: {err}\n");
        let _ = rustix::io::write(rustix::stdio::stderr(), msg.as_bytes());
        125
    })
    .map_err(Error::Spawn)?;
    let mut reaper = Reaper(Some(pid));
    drop(sync_rd);
    map.apply(pid).map_err(Error::IdMap)?;
    rustix::io::write(&sync_wr, &[1]).map_err(|e| io("start the user namespace")(e.into()))?;
    drop(sync_wr);
    let _ = joot_sys::signal::forward_to(pid);
    let status = loop {
        match rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty()) {
            Ok(Some((_, st))) => break st,
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                joot_sys::signal::stop_forwarding();
                return Err(io("wait for joot in the user namespace")(e.into()));
            }
        }
    };
    reaper.0 = None;
    joot_sys::signal::stop_forwarding();
    Ok(status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(125))
}

/// How long a shared namespace's holder process lives (seconds): long enough for bursts of
/// runs (a script, a benchmark), short enough not to linger after the user is done.
const SHARED_TTL_SECS: u64 = 60;

/// Set (to "1") to never use the shared namespace (every run maps its own with the helpers).
pub const NO_SHARED_ENV: &str = "JOOT_NO_SHARED_USERNS";

/// The per-user directory for the holder's pid file: `$XDG_RUNTIME_DIR/joot`, else
/// `/tmp/joot-UID`; created 0700 and checked to be a real directory of the user.
fn runtime_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::geteuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("joot"),
        None => std::env::temp_dir().join(format!("joot-{uid}")),
    };
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let md = std::fs::symlink_metadata(&dir).ok()?;
    (md.is_dir() && md.uid() == uid && md.mode() & 0o077 == 0).then_some(dir)
}

/// Reads /proc/PID/uid_map (or gid_map) as ranges.
fn proc_map(pid: i32, which: &str) -> Option<Vec<IdRange>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{which}")).ok()?;
    let v: Vec<IdRange> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| IdRange {
                inside: f[0],
                outside: f[1],
                count: f[2],
            })
        })
        .collect();
    Some(v)
}

fn sorted(mut v: Vec<IdRange>) -> Vec<IdRange> {
    v.sort_by_key(|r| r.inside);
    v
}

/// Re-expresses host ids of `ranges` as ids of the namespace mapped by `shared`; `None` when
/// some id is not mapped there.
fn translate(ranges: &[IdRange], shared: &[IdRange]) -> Option<Vec<IdRange>> {
    ranges
        .iter()
        .map(|r| {
            let s = shared.iter().find(|s| {
                r.outside >= s.outside
                    && u64::from(r.outside) + u64::from(r.count)
                        <= u64::from(s.outside) + u64::from(s.count)
            })?;
            Some(IdRange {
                inside: r.inside,
                outside: s.inside + (r.outside - s.outside),
                count: r.count,
            })
        })
        .collect()
}

/// Starts a holder process in a new user namespace mapped with `base` (through the helpers),
/// detached (its parent exits at once, so init reaps it) and living [`SHARED_TTL_SECS`].
/// Returns its pid.
fn start_holder(base: &IdMap) -> std::io::Result<i32> {
    let (sync_rd, sync_wr) = process::pipe_cloexec()?;
    let (pid_rd, pid_wr) = process::pipe_cloexec()?;
    let (srd, swr, prd, pwr) = (
        sync_rd.as_raw_fd(),
        sync_wr.as_raw_fd(),
        pid_rd.as_raw_fd(),
        pid_wr.as_raw_fd(),
    );
    let child = process::spawn_in_namespaces(process::CLONE_NEWUSER as u64, move || {
        jfd::close_raw(swr);
        jfd::close_raw(prd);
        let mut b = [0u8; 1];
        if !matches!(rustix::io::read(jfd::borrow(srd), &mut b), Ok(1)) {
            return 1;
        }
        // The holder: a grandchild in the same namespace, orphaned at once.
        match process::fork_single_threaded() {
            Ok(0) => {
                let _ = rustix::process::setsid();
                let _ = rustix::thread::set_name(c"joot-userns");
                // Hold no directory (a mount could not be unmounted) and no pipe (a caller
                // reading our output would wait for the holder's exit).
                let _ = rustix::process::chdir("/");
                for fd in 0..3 {
                    jfd::close_raw(fd);
                }
                let _ = jfd::close_all_except(&[]);
                let _ = rustix::thread::nanosleep(&rustix::thread::Timespec {
                    tv_sec: SHARED_TTL_SECS as i64,
                    tv_nsec: 0,
                });
                0
            }
            Ok(pid) => {
                let _ = rustix::io::write(jfd::borrow(pwr), &pid.to_ne_bytes());
                0
            }
            Err(_) => 1,
        }
    })?;
    drop(sync_rd);
    drop(pid_wr);
    let reap = |pid| {
        let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
    };
    if let Err(e) = base.apply(child) {
        if let Some(p) = Pid::from_raw(child) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        reap(child);
        return Err(e);
    }
    let _ = rustix::io::write(&sync_wr, &[1]);
    drop(sync_wr);
    let mut buf = [0u8; 4];
    let n = rustix::io::read(&pid_rd, &mut buf).unwrap_or(0);
    reap(child);
    if n != 4 {
        return Err(std::io::Error::other("the namespace holder did not start"));
    }
    Ok(i32::from_ne_bytes(buf))
}

/// Moves this (single-threaded, plain-user) process into the user's shared user namespace —
/// uid 0 there is the user, 1..=65536 the subordinate range, exactly `base` — creating it when
/// there is none, and returns `map` re-expressed for a namespace nested in it. Runs then
/// create their namespace inside the shared one and write its maps directly, instead of
/// starting the setuid helpers newuidmap and newgidmap for every run (podman's pause process
/// does the same). The holder process keeps the namespace for [`SHARED_TTL_SECS`]; runs in
/// it keep it alive themselves. `None` (nothing changed) when anything does not fit: the
/// caller maps its own namespace as before.
///
/// This process stays in the namespace afterwards (as its uid 0): call it only right before
/// starting a run, in a process that does nothing as the host user afterwards.
pub fn enter_shared(base: &IdMap, map: &IdMap) -> Option<IdMap> {
    if std::env::var_os(NO_SHARED_ENV).is_some_and(|v| v == "1")
        || !base.helpers
        || rustix::process::geteuid().is_root()
        || !process::is_single_threaded()
    {
        return None;
    }
    let dir = runtime_dir()?;
    let pidfile = dir.join("userns.pid");
    let lock = std::fs::File::create(dir.join("userns.lock")).ok()?;
    lock.lock().ok()?;
    let uid = rustix::process::geteuid().as_raw();
    let matches = |pid: i32| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid)
            && proc_map(pid, "uid_map").map(sorted) == Some(sorted(base.uids.clone()))
            && proc_map(pid, "gid_map").map(sorted) == Some(sorted(base.gids.clone()))
    };
    let current = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|&pid| matches(pid));
    let pid = match current {
        Some(pid) => pid,
        None => {
            let pid = start_holder(base).ok()?;
            let _ = std::fs::write(&pidfile, format!("{pid}\n"));
            pid
        }
    };
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user")).ok()?;
    // Re-check after opening: the fd pins the namespace even if the holder exits now.
    if !matches(pid) {
        return None;
    }
    let uids = translate(&map.uids, &base.uids)?;
    let gids = translate(&map.gids, &base.gids)?;
    drop(lock);
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::User),
    )
    .ok()?;
    tracing::debug!(pid, "entered the shared user namespace");
    Some(IdMap {
        uids,
        gids,
        helpers: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_user_map_translates_into_the_shared_namespace() {
        let r = |inside, outside, count| IdRange {
            inside,
            outside,
            count,
        };
        let shared = [r(0, 1002, 1), r(1, 200000, 65536)];
        // --bind-user's map: the user to itself, the range around it.
        let map = [r(1002, 1002, 1), r(1, 200000, 1001), r(1003, 201002, 64534)];
        assert_eq!(
            translate(&map, &shared),
            Some(vec![r(1002, 0, 1), r(1, 1, 1001), r(1003, 1003, 64534)])
        );
        // The usual map becomes the identity.
        assert_eq!(
            translate(&shared, &shared),
            Some(vec![r(0, 0, 1), r(1, 1, 65536)])
        );
        // An id the shared namespace does not map.
        assert_eq!(translate(&[r(0, 5, 1)], &shared), None);
    }

    #[test]
    fn identity_map_is_recognised() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_identity_map(""));
    }
}
