//! Creating the sandbox's first process in new namespaces, and leaving a process without
//! running any user-space cleanup.
//!
//! `clone3(2)` with namespace flags creates the child directly inside its new PID namespace
//! (it is PID 1 there), so no intermediate `unshare` + second fork is needed. A raw clone
//! skips glibc's fork handlers, which is harmless in a single-threaded process but can leave
//! a malloc arena locked in the child of a threaded one (test harnesses, builders). For that
//! case [`spawn_in_namespaces`] forks first with glibc's `fork()` (which runs the handlers and
//! leaves a single-threaded copy) and that copy clones with `CLONE_PARENT`, so the sandbox is
//! still a direct child of the caller (`waitpid` and `PR_SET_PDEATHSIG` refer to the caller).

use std::io;
use std::os::fd::OwnedFd;

pub use libc::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER,
    CLONE_NEWUTS,
};

/// `struct clone_args` of `clone3(2)` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks like `fork(2)` with extra `CLONE_*` flags. Returns 0 in the child.
fn raw_clone(flags: u64) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags,
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack duplicates the process like fork;
    // `args` is a valid, initialised clone_args of the size passed. The child continues on a
    // copy-on-write copy of this stack.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret >= 0 {
        return Ok(ret as i32);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // Kernels before 5.3 have no clone3: the legacy clone with a NULL stack is fork-like.
    let legacy_flags = (flags & !(libc::CSIGNAL as u64))
        | if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        };
    // SAFETY: as above; x86_64 argument order (flags, stack, ptid, ctid, tls), all unused.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            legacy_flags as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as i32)
}

/// True when the calling process has exactly one thread (from /proc/self/stat).
pub fn is_single_threaded() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return false;
    };
    // Field 20 (num_threads); the comm field (2) may contain spaces, so split after ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return false;
    };
    rest.split_whitespace().nth(17) == Some("1")
}

/// Starts `child` in a new process created with the namespace `flags` (`CLONE_NEW*`) and
/// returns its pid (in the caller's PID namespace). The child runs `child` and exits with its
/// return value; it never returns into the caller's code.
///
/// The new process is a direct child of the caller. If the caller is multi-threaded the child
/// inherits whatever locks other threads held at the time of the fork (glibc's malloc is made
/// consistent, Rust's environment and stdio locks are not): `child` must not touch
/// `std::env` or print through std's stdout/stderr.
pub fn spawn_in_namespaces<F: FnOnce() -> i32>(flags: u64, child: F) -> io::Result<i32> {
    if is_single_threaded() {
        let pid = raw_clone(flags)?;
        if pid == 0 {
            run_child(child);
        }
        return Ok(pid);
    }
    // Threaded caller: fork with glibc (runs the atfork handlers), then clone from that
    // single-threaded copy with CLONE_PARENT and report the pid back over a pipe.
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: fork() in a threaded process: the child below only calls async-signal-safe
    // syscalls (clone3, write, _exit) before `run_child`, which runs in the grandchild.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(rd);
        let res = raw_clone(flags | libc::CLONE_PARENT as u64);
        match res {
            Ok(0) => {
                drop(wr);
                run_child(child)
            }
            Ok(grandchild) => {
                let msg = (grandchild as i64).to_ne_bytes();
                let _ = rustix::io::write(&wr, &msg);
                exit_now(0)
            }
            Err(e) => {
                let msg = (-(e.raw_os_error().unwrap_or(libc::EINVAL) as i64)).to_ne_bytes();
                let _ = rustix::io::write(&wr, &msg);
                exit_now(1)
            }
        }
    }
    drop(wr);
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match rustix::io::read(&rd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Reap the intermediate process.
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    );
    if got != 8 {
        return Err(io::Error::other(
            "namespace helper process died before cloning",
        ));
    }
    let v = i64::from_ne_bytes(buf);
    if v < 0 {
        return Err(io::Error::from_raw_os_error(-v as i32));
    }
    Ok(v as i32)
}

fn run_child<F: FnOnce() -> i32>(child: F) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(125);
    exit_now(code)
}

/// Forks a plain child (no new namespaces) from a single-threaded process. Returns 0 in the
/// child. Use only where the caller is known to be single-threaded (the sandbox's init).
pub fn fork_single_threaded() -> io::Result<i32> {
    raw_clone(0)
}

/// Starts `child` in a new process that shares this one's memory until it execs or exits
/// (`CLONE_VM | CLONE_VFORK`, what posix_spawn does), on a stack of its own; this process
/// sleeps meanwhile. Nothing of this process's address space is copied, so a large caller
/// (the joot binary) pays neither the page-table copy nor the copy-on-write faults of a fork
/// for a child that is about to exec. `child` must end in exec or [`exit_now`]; it must not
/// unwind. Returns the child's pid.
pub fn spawn_vfork<F: FnOnce() -> i32>(child: F) -> io::Result<i32> {
    const STACK: usize = 256 * 1024;
    extern "C" fn trampoline<F: FnOnce() -> i32>(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Option<F>` below, alive while the parent sleeps (CLONE_VFORK).
        let slot = unsafe { &mut *(arg as *mut Option<F>) };
        let code = slot.take().map_or(127, |f| f());
        exit_now(code)
    }
    // SAFETY: an anonymous private mapping, unmapped below once the child no longer uses it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut slot = Some(child);
    // SAFETY: the child runs `trampoline` on its own stack (the top of the mapping, growing
    // down); with CLONE_VFORK this call returns only once the child has exec'd or exited, so
    // `slot` and the stack outlive every use of them by the child.
    let pid = unsafe {
        libc::clone(
            trampoline::<F>,
            (stack as *mut u8).add(STACK) as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut slot as *mut Option<F> as *mut libc::c_void,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: the mapping made above; the child is done with it (see CLONE_VFORK above).
    unsafe { libc::munmap(stack, STACK) };
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

/// `kill(-1, SIGKILL)`: from PID 1 of a PID namespace, kills every other process in it (the
/// caller is spared).
pub fn kill_all_in_namespace() -> io::Result<()> {
    // SAFETY: kill only sends a signal; -1 targets every process the caller may signal.
    let r = unsafe { libc::kill(-1, libc::SIGKILL) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the process at once with `code`, without running atexit handlers or flushing std's
/// buffers (which belong to the parent's copy after a fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// Creates a pipe whose both ends are close-on-exec.
pub fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Duplicates raw fd `fd` onto fd number `target` (dup3), setting or clearing close-on-exec.
/// Used between fork and exec to place stdio and the error pipe at fixed numbers.
pub fn dup_onto(fd: i32, target: i32, cloexec: bool) -> io::Result<()> {
    if fd == target {
        return crate::fd::set_cloexec(target, cloexec);
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 only manipulates the fd table; an invalid fd yields EBADF.
    let r = unsafe { libc::dup3(fd, target, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `execve(path, argv, envp)`; returns only on failure, with the error.
pub fn execve(
    path: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    envp: &[std::ffi::CString],
) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: NUL-terminated strings in NULL-terminated arrays that outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_without_namespaces_runs_child_and_reports_status() {
        let pid = spawn_in_namespaces(0, || 7).expect("spawn");
        let (_, status) = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        )
        .expect("waitpid")
        .expect("status");
        assert_eq!(status.exit_status(), Some(7));
    }
}
