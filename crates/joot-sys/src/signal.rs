//! Signal forwarding for joot's parent process and the sandbox's init.
//!
//! A handler forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH to one pid
//! (the sandbox's init from joot, the command from init). Signals the kernel generated for a
//! terminal (`si_code == SI_KERNEL`, e.g. Ctrl-C) are not forwarded: the terminal already sent
//! them to every process of the foreground group, the command included, and forwarding would
//! deliver them twice. `kill(2)` is async-signal-safe, so the handler does the work itself.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals joot forwards into a sandbox.
pub const FORWARDED: [i32; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

static TARGET: AtomicI32 = AtomicI32::new(0);
static WINCH_FROM: AtomicI32 = AtomicI32::new(-1);
static WINCH_TO: AtomicI32 = AtomicI32::new(-1);

const SI_KERNEL: i32 = 0x80;

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if sig == libc::SIGWINCH {
        let from = WINCH_FROM.load(Ordering::Relaxed);
        let to = WINCH_TO.load(Ordering::Relaxed);
        if from >= 0 && to >= 0 {
            // SAFETY: ioctl on plain integers and a stack winsize: async-signal-safe.
            unsafe {
                let mut ws: libc::winsize = std::mem::zeroed();
                if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
                    libc::ioctl(to, libc::TIOCSWINSZ, &ws);
                }
            }
            return;
        }
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code == SI_KERNEL {
        return;
    }
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Installs the forwarding handler for [`FORWARDED`], sending to `pid`.
pub fn forward_to(pid: i32) -> io::Result<()> {
    TARGET.store(pid, Ordering::SeqCst);
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a valid handler address and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Makes the SIGWINCH handler copy the window size of `from` (the user's terminal) to `to`
/// (the pty master), instead of forwarding; the kernel then signals the pty's foreground
/// group itself. Pass -1 to stop.
pub fn winch_copies(from: i32, to: i32) {
    WINCH_FROM.store(from, Ordering::SeqCst);
    WINCH_TO.store(to, Ordering::SeqCst);
}

/// Restores the default disposition of [`FORWARDED`] and stops forwarding.
pub fn stop_forwarding() {
    TARGET.store(0, Ordering::SeqCst);
    winch_copies(-1, -1);
    for sig in FORWARDED {
        set_default(sig);
    }
}

/// Sets `sig` to SIG_DFL.
pub fn set_default(sig: i32) {
    // SAFETY: installing SIG_DFL has no memory effects.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Gives a process the signal state a fresh program expects: every signal default (Rust's
/// runtime ignores SIGPIPE, and an ignored signal stays ignored across exec) and an empty
/// signal mask.
pub fn reset_all() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        set_default(sig);
    }
    // SAFETY: an empty, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Name of a signal for messages ("SIGKILL"), or "signal N".
pub fn name(sig: i32) -> String {
    let n = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    n.to_string()
}
