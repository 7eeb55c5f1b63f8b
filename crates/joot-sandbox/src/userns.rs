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
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use joot_sys::{fd as jfd, process};
use rustix::process::{Pid, WaitOptions};

use crate::idmap::IdMap;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_is_recognised() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_identity_map(""));
    }
}
