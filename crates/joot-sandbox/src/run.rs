//! The parent side of a run: validate, build the plan, create the sandbox process in its
//! namespaces, write its id maps, release it, relay the terminal, and return the command's
//! exit status.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use joot_sys::process;
use rustix::process::{Pid, WaitOptions};

use crate::child::{self, ChildCtx, MSG_EXEC};
use crate::plan::{HostFiles, MountPlan};
use crate::spec::{Net, RunSpec};
use crate::{Error, Result};

/// Checks a spec before anything starts: a missing bind source or layer is a clear error.
pub fn validate(spec: &RunSpec) -> Result<()> {
    if spec.rootfs.lowers.is_empty() {
        return Err(Error::Invalid(
            "a run needs at least one lower layer".into(),
        ));
    }
    for l in &spec.rootfs.lowers {
        if !l.is_dir() {
            return Err(Error::Invalid(format!(
                "layer directory {} does not exist: the store may be damaged, try `joot gc`",
                l.display()
            )));
        }
    }
    if !spec.mount_point.is_dir() {
        return Err(Error::Invalid(format!(
            "mount point {} does not exist",
            spec.mount_point.display()
        )));
    }
    for b in &spec.binds {
        if std::fs::symlink_metadata(&b.src).is_err() {
            return Err(Error::BindSource {
                path: b.src.clone(),
            });
        }
        if !b.dst.starts_with('/') {
            return Err(Error::Invalid(format!(
                "bind target `{}` must be an absolute path",
                b.dst
            )));
        }
    }
    for s in spec.argv.iter().chain(std::iter::once(&spec.hostname)) {
        if s.contains('\0') {
            return Err(Error::Invalid(format!("NUL byte in `{s}`")));
        }
    }
    if spec.hostname.is_empty() || spec.hostname.len() > 64 {
        return Err(Error::Invalid(format!(
            "hostname `{}` must be 1 to 64 characters",
            spec.hostname
        )));
    }
    Ok(())
}

/// Kills and reaps the sandbox if the parent leaves early (an error after the fork).
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

/// Runs `spec.argv` in a new sandbox and returns its exit status (128+N for signal N).
/// A command that cannot be executed or is not found is an [`Error::Exec`] whose
/// [`Error::exit_status`] is 126 or 127.
pub fn run(spec: &RunSpec) -> Result<i32> {
    validate(spec)?;
    let shared;
    let spec = match in_shared_userns(spec) {
        Some(s) => {
            shared = s;
            &shared
        }
        None => spec,
    };
    let host = HostFiles {
        resolv_conf: if spec.resolv {
            std::fs::read("/etc/resolv.conf").ok()
        } else {
            None
        },
    };
    let plan = MountPlan::build(spec, &host);
    tracing::debug!(ops = plan.ops.len(), "mount plan built");
    let io = |context: &str| {
        let context = context.to_string();
        move |source: std::io::Error| Error::Io { context, source }
    };
    let (sync_rd, sync_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let (err_rd, err_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let early = spec.leave_teardown && !spec.tty;
    let status_pipe = if early {
        Some(process::pipe_cloexec().map_err(io("create pipe"))?)
    } else {
        None
    };
    let pty = if spec.tty {
        Some(joot_sys::tty::open_pty().map_err(io("open a pseudo-terminal"))?)
    } else {
        None
    };
    let term = if spec.tty {
        Some(std::env::var("TERM").unwrap_or_else(|_| "xterm".into()))
    } else {
        std::env::var("TERM").ok()
    };
    let ctx = ChildCtx {
        plan,
        mount_point: spec.mount_point.clone(),
        hostname: spec.hostname.clone(),
        net_none: spec.net == Net::None,
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        term,
        user: spec.user.clone(),
        cwd: spec.cwd.clone(),
        caps: spec.caps,
        no_new_privs: spec.no_new_privs,
        last_cap: joot_sys::caps::last_cap(),
        setgroups: spec.idmap.as_ref().is_none_or(|m| m.helpers),
        tty_slave: pty.as_ref().map(|(_, s)| s.as_raw_fd()),
        wait_for_parent: spec.idmap.is_some(),
        sync_rd: sync_rd.as_raw_fd(),
        err_wr: err_wr.as_raw_fd(),
        status_wr: status_pipe.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
    };
    let mut flags = (process::CLONE_NEWNS
        | process::CLONE_NEWPID
        | process::CLONE_NEWUTS
        | process::CLONE_NEWIPC
        | process::CLONE_NEWCGROUP) as u64;
    if spec.net == Net::None {
        flags |= process::CLONE_NEWNET as u64;
    }
    if spec.idmap.is_some() {
        flags |= process::CLONE_NEWUSER as u64;
    }
    let pid = process::spawn_in_namespaces(flags, || child::main(&ctx)).map_err(Error::Spawn)?;
    let mut reaper = Reaper(Some(pid));
    drop(sync_rd);
    drop(err_wr);
    let status_rd = status_pipe.map(|(r, w)| {
        drop(w);
        r
    });
    let master = pty.map(|(m, s)| {
        drop(s);
        m
    });
    if let Some(map) = &spec.idmap {
        map.apply(pid).map_err(Error::IdMap)?;
        rustix::io::write(&sync_wr, &[1]).map_err(|e| io("start the sandbox")(e.into()))?;
    }
    let _ = joot_sys::signal::forward_to(pid);

    let relay = master.as_ref().map(|m| relay_tty(m, pid));
    // With `leave_teardown`, init's status byte is the answer: it arrives before the kernel
    // unmounts the run's tree, and init is left to the host's init to reap. No byte (init
    // died in setup, or was killed) falls back to waiting for it.
    let reported = status_rd
        .as_ref()
        .and_then(|r| match read_all(r).as_slice() {
            [code] => Some(*code as i32),
            _ => None,
        });
    let status = if let Some(code) = reported {
        code
    } else {
        loop {
            match rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty()) {
                Ok(Some((_, st))) => break child::exit_code(st),
                Ok(None) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    joot_sys::signal::stop_forwarding();
                    return Err(io("wait for the sandbox")(e.into()));
                }
            }
        }
    };
    // Everything that could write the error pipe was in the sandbox's PID namespace, which
    // died with its init (or, with a reported status, init has closed its end and the
    // command has exec'd or exited): this read cannot block. (Reading it only now saves a
    // wake-up.)
    drop(sync_wr);
    let msg = read_all(&err_rd);
    reaper.0 = None;
    joot_sys::signal::stop_forwarding();
    drop(relay);
    if msg.len() >= 6 {
        let kind = msg[0];
        let text = String::from_utf8_lossy(&msg[6..]).into_owned();
        if kind == MSG_EXEC {
            return Err(Error::Exec {
                argv0: spec.argv.first().cloned().unwrap_or_default(),
                message: text,
                status: msg[1] as i32,
            });
        }
        return Err(Error::Setup(text));
    }
    Ok(status)
}

/// Rootless with a subordinate range: the spec for a run nested in the user's shared user
/// namespace (entered here; see [`crate::userns::enter_shared`]), so no setuid helper runs.
fn in_shared_userns(spec: &RunSpec) -> Option<RunSpec> {
    let map = spec.idmap.as_ref().filter(|m| m.helpers)?;
    if rustix::process::geteuid().is_root() {
        return None;
    }
    let base = crate::IdMap::detect();
    let nested = crate::userns::enter_shared(&base, map)?;
    let mut shared = spec.clone();
    shared.idmap = Some(nested);
    Some(shared)
}

fn read_all(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    out
}

/// Copies between the user's terminal and the pty master until the sandbox exits. The user's
/// terminal is in raw mode meanwhile (restored on return); window size changes are copied to
/// the pty, whose kernel side then sends SIGWINCH to the command.
fn relay_tty(master: &OwnedFd, pid: i32) -> Option<joot_sys::tty::RawMode> {
    use rustix::event::{PollFd, PollFlags, poll};
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let is_tty = rustix::termios::isatty(stdin);
    let raw = if is_tty {
        let _ = joot_sys::tty::copy_winsize(stdin, master);
        joot_sys::signal::winch_copies(0, master.as_raw_fd());
        joot_sys::tty::RawMode::enter(stdin).ok()
    } else {
        None
    };
    let pidfd = Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(master, PollFlags::IN)];
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let master_ready = !fds[0].revents().is_empty();
        let exited = pidfd.is_some() && !fds[1].revents().is_empty();
        let stdin_ready = stdin_open && !fds[fds.len() - 1].revents().is_empty();
        drop(fds);
        if master_ready {
            match rustix::io::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                    let _ = stdout;
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                _ => break,
            }
        }
        if stdin_ready {
            match rustix::io::read(stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = write_fully(master.as_fd(), &buf[..n]);
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                _ => {
                    // End of input: send the terminal's EOF character to the command.
                    stdin_open = false;
                    let _ = write_fully(master.as_fd(), &[4]);
                }
            }
        }
        if exited && !master_ready {
            break;
        }
    }
    joot_sys::signal::winch_copies(-1, -1);
    raw
}

fn write_fully(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
