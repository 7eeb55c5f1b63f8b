//! Terminals: a pseudo-terminal pair for interactive runs and making it the controlling
//! terminal of the command's new session (so job control works inside).

use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Opens a new pty on the host's devpts: returns (master, slave), both close-on-exec.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, slave))
}

/// Starts a new session and makes `tty` its controlling terminal (setsid + TIOCSCTTY).
pub fn become_session_leader_of(tty: impl AsFd) -> io::Result<()> {
    rustix::process::setsid()?;
    rustix::process::ioctl_tiocsctty(tty)?;
    Ok(())
}

/// Copies the window size of `from` onto `to`.
pub fn copy_winsize(from: impl AsFd, to: impl AsFd) -> io::Result<()> {
    let ws = rustix::termios::tcgetwinsize(from)?;
    rustix::termios::tcsetwinsize(to, ws)?;
    Ok(())
}

/// The terminal state of the user's terminal, restored on drop after [`RawMode::enter`].
pub struct RawMode {
    fd: OwnedFd,
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode (no echo, no line editing, no signal keys: those
    /// bytes go to the pty, whose own line discipline handles them).
    pub fn enter(fd: impl AsFd) -> io::Result<RawMode> {
        let fd = fd.as_fd().try_clone_to_owned()?;
        let saved = rustix::termios::tcgetattr(&fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            &self.fd,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
