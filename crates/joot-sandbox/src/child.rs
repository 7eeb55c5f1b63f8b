//! The inside of a run: the sandbox's first process (PID 1 of its new PID namespace) sets up
//! the mount tree, pivots into it and becomes a small init; the command runs as PID 2.
//!
//! Init forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2/SIGWINCH to the command, reaps
//! every zombie, and exits with the command's status (128+N for signal N) as soon as the
//! command ends; the kernel then kills whatever is left in the PID namespace. It dies with
//! SIGKILL when joot dies (PR_SET_PDEATHSIG), taking the namespace with it. It is
//! non-dumpable: the contained root (without CAP_SYS_PTRACE) cannot open /proc/1/exe, the
//! joot binary (runc CVE-2019-5736), and the host tree is gone after pivot_root.
//!
//! Errors travel to the parent over a close-on-exec pipe: a setup failure, or the command's
//! exec failure (126 cannot execute, 127 not found), so the parent can say what went wrong.

use std::ffi::CString;
use std::path::PathBuf;

use joot_sys::{caps, fd as jfd, ids, process, signal};
use rustix::process::WaitOptions;

use crate::mounts::Executor;
use crate::plan::MountPlan;
use crate::spec::{CapMode, clean_env};
use crate::user;

/// Everything the child needs, prepared by the parent before the fork.
pub(crate) struct ChildCtx {
    pub plan: MountPlan,
    pub mount_point: PathBuf,
    pub hostname: String,
    pub net_none: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub term: Option<String>,
    pub user: Option<String>,
    pub cwd: Option<String>,
    pub caps: CapMode,
    pub no_new_privs: bool,
    pub last_cap: u32,
    /// setgroups(2) is allowed (no user namespace, or one with full maps).
    pub setgroups: bool,
    pub tty_slave: Option<i32>,
    /// Block until the parent writes the id maps (user namespace runs).
    pub wait_for_parent: bool,
    pub sync_rd: i32,
    pub err_wr: i32,
    /// Init writes the command's exit status (one byte) here before it exits; -1 for none.
    pub status_wr: i32,
}

/// Kinds of messages on the error pipe.
pub(crate) const MSG_SETUP: u8 = b'S';
pub(crate) const MSG_EXEC: u8 = b'X';

/// Writes one message on the error pipe: kind, exit status, errno, text (one write, below
/// PIPE_BUF, so it arrives whole).
fn report(fd: i32, kind: u8, status: u8, errno: i32, msg: &str) {
    let mut buf = Vec::with_capacity(6 + msg.len());
    buf.push(kind);
    buf.push(status);
    buf.extend_from_slice(&errno.to_le_bytes());
    buf.extend_from_slice(&msg.as_bytes()[..msg.len().min(3000)]);
    let _ = rustix::io::write(jfd::borrow(fd), &buf);
}

/// Entry point of the sandbox's first process. Returns its exit status.
pub(crate) fn main(ctx: &ChildCtx) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // Drop every inherited fd but ours at once: the parent's pipe ends, and copies of
    // whatever other threads of the parent had open (a copied flock fd would keep an env
    // locked while this sandbox lives).
    let mut keep = vec![ctx.sync_rd, ctx.err_wr];
    if ctx.status_wr >= 0 {
        keep.push(ctx.status_wr);
    }
    keep.extend(ctx.tty_slave);
    let _ = jfd::close_all_except(&keep);
    // The parent holds the other end of `sync_rd` for the whole run. With a user namespace it
    // writes one byte once the id maps are written: wait for it. Without one, do not wait (a
    // scheduling round trip is a noticeable part of a run on a busy machine): just check that
    // the parent is still alive, since it may have died before PDEATHSIG was armed (EOF/HUP).
    if ctx.wait_for_parent {
        let mut b = [0u8; 1];
        loop {
            match rustix::io::read(jfd::borrow(ctx.sync_rd), &mut b) {
                Ok(1) => break,
                Err(rustix::io::Errno::INTR) => continue,
                _ => process::exit_now(1),
            }
        }
    } else {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let fd = jfd::borrow(ctx.sync_rd);
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0) {
            process::exit_now(1);
        }
    }
    jfd::close_raw(ctx.sync_rd);
    match setup_and_init(ctx) {
        Ok(code) => code,
        Err(msg) => {
            report(ctx.err_wr, MSG_SETUP, 125, 0, &msg);
            125
        }
    }
}

fn setup_and_init(ctx: &ChildCtx) -> Result<i32, String> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("set non-dumpable: {e}"))?;
    rustix::process::umask(rustix::fs::Mode::empty());
    if ctx.net_none {
        joot_sys::net::loopback_up().map_err(|e| format!("bring loopback up: {e}"))?;
    }
    rustix::system::sethostname(ctx.hostname.as_bytes())
        .map_err(|e| format!("set hostname {}: {e}", ctx.hostname))?;

    let root = Executor::new(&ctx.mount_point)?
        .with_console(ctx.tty_slave)
        .apply(&ctx.plan)?;
    joot_sys::mount::pivot_to(&root).map_err(|e| format!("pivot_root: {e}"))?;
    drop(root);

    // From here "/" is the image: its /etc/passwd cannot lead back to the host.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let id = user::resolve(ctx.user.as_deref(), &passwd, &group)?;
    let argv: Vec<String> = if ctx.argv.is_empty() {
        let shell = if std::path::Path::new("/bin/bash").exists() {
            "/bin/bash"
        } else {
            "/bin/sh"
        };
        vec![shell.to_string()]
    } else {
        ctx.argv.clone()
    };
    let env = clean_env(&ctx.hostname, &id.home, ctx.term.as_deref(), &ctx.env);
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let cwd = ctx.cwd.clone().unwrap_or_else(|| "/".to_string());
    if !std::path::Path::new(&cwd).is_dir() {
        std::fs::create_dir_all(&cwd).map_err(|e| format!("create workdir {cwd}: {e}"))?;
    }
    let to_c = |s: &str| CString::new(s).map_err(|_| format!("NUL byte in `{s}`"));
    let c_argv: Vec<CString> = argv.iter().map(|a| to_c(a)).collect::<Result<_, _>>()?;
    let c_env: Vec<CString> = env
        .iter()
        .map(|(k, v)| to_c(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let candidates: Vec<CString> = if argv[0].contains('/') {
        vec![to_c(&argv[0])?]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .filter_map(|d| CString::new(format!("{d}/{}", argv[0])).ok())
            .collect()
    };
    let c_cwd = to_c(&cwd)?;

    // The command shares init's memory until its exec (vfork): init is a copy of the joot
    // binary, whose page tables a fork would copy only for the command to throw them away.
    let pid =
        process::spawn_vfork(|| command(ctx, &id, &c_argv, &c_env, &candidates, &c_cwd, &argv[0]))
            .map_err(|e| format!("start command: {e}"))?;
    if let Some(slave) = ctx.tty_slave {
        jfd::close_raw(slave);
    }
    jfd::close_raw(ctx.err_wr);
    if ctx.status_wr < 0 {
        let _ = jfd::close_from(3, false);
        return Ok(init(pid));
    }
    // Keep only the status pipe, moved to fd 3.
    if ctx.status_wr != 3 {
        process::dup_onto(ctx.status_wr, 3, true).map_err(|e| format!("status pipe: {e}"))?;
    }
    let _ = jfd::close_from(4, false);
    let code = init(pid);
    // Kill and reap everything left in the namespace BEFORE reporting: once joot (the
    // parent) has exited and this init's memory is gone, nothing holds the joot binary
    // busy (ETXTBSY), and no process of the image may be alive then to write it through a
    // /proc/PID/exe it opened (runc CVE-2019-5736).
    let _ = joot_sys::process::kill_all_in_namespace();
    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::empty()) {}
    let _ = rustix::io::write(jfd::borrow(3), &[code.clamp(0, 255) as u8]);
    Ok(code)
}

/// PID 1: forward signals to the command, reap zombies, exit with the command's status.
fn init(command: i32) -> i32 {
    let _ = signal::forward_to(command);
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == command => {
                return exit_code(status);
            }
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 125,
        }
    }
}

/// The shell convention: exit status, or 128+N for signal N.
pub(crate) fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        125
    }
}

/// PID 2: drop privileges, clean fds, exec. Never returns.
fn command(
    ctx: &ChildCtx,
    id: &user::Identity,
    argv: &[CString],
    env: &[CString],
    candidates: &[CString],
    cwd: &CString,
    name: &str,
) -> ! {
    let fail = |status: u8, errno: i32, msg: String| -> ! {
        report(
            ctx.err_wr,
            if status == 125 { MSG_SETUP } else { MSG_EXEC },
            status,
            errno,
            &msg,
        );
        process::exit_now(status as i32)
    };
    signal::reset_all();
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    if let Some(slave) = ctx.tty_slave {
        if let Err(e) = joot_sys::tty::become_session_leader_of(jfd::borrow(slave)) {
            fail(125, 0, format!("make the terminal controlling: {e}"));
        }
        for n in 0..3 {
            if let Err(e) = process::dup_onto(slave, n, false) {
                fail(125, 0, format!("set up terminal: {e}"));
            }
        }
    }
    if ctx.caps == CapMode::Default {
        let keep = caps::docker_default();
        if let Err(e) = caps::drop_bounding_except(keep, ctx.last_cap) {
            fail(125, 0, format!("drop capabilities: {e}"));
        }
        let permitted = caps::permitted().unwrap_or(0);
        if let Err(e) = caps::set_all(keep & permitted) {
            fail(125, 0, format!("set capabilities: {e}"));
        }
    }
    let groups = ctx.setgroups.then_some(id.groups.as_slice());
    if let Err(e) = ids::switch_ids(id.uid, id.gid, groups) {
        fail(
            125,
            0,
            format!("switch to uid {} gid {}: {e}", id.uid, id.gid),
        );
    }
    if ctx.no_new_privs
        && let Err(e) = rustix::thread::set_no_new_privs(true)
    {
        fail(125, 0, format!("set no_new_privs: {e}"));
    }
    if let Err(e) = rustix::process::chdir(cwd.as_c_str()) {
        fail(
            125,
            0,
            format!("change to workdir {}: {e}", cwd.to_string_lossy()),
        );
    }
    // Only 0, 1, 2 and the (close-on-exec) error pipe survive; the pipe closes at exec.
    let err_fd = 3;
    if process::dup_onto(ctx.err_wr, err_fd, true).is_err() {
        process::exit_now(125);
    }
    let ctx_err = err_fd;
    let _ = jfd::close_from(4, false);
    let mut last = libc::ENOENT;
    for path in candidates {
        let e = joot_sys::process::execve(path, argv, env);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(n) => last = n,
            None => {}
        }
    }
    let (status, msg) = if last == libc::ENOENT {
        (127, format!("command not found: `{name}`"))
    } else {
        (
            126,
            format!(
                "cannot execute `{name}`: {}",
                std::io::Error::from_raw_os_error(last)
            ),
        )
    };
    report(ctx_err, MSG_EXEC, status, last, &msg);
    process::exit_now(status as i32)
}
