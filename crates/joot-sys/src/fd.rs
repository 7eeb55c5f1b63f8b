//! File descriptor hygiene between fork and exec: nothing of joot's or of its caller may leak
//! into a sandbox beyond stdin, stdout and stderr (the class of runc CVE-2024-21626).

use std::io;

/// `close_range(first, u32::MAX, flags)`: closes (or, with `cloexec`, marks close-on-exec)
/// every descriptor from `first` up. Falls back to a loop over /proc/self/fd on ENOSYS.
pub fn close_from(first: u32, cloexec: bool) -> io::Result<()> {
    let flags: libc::c_uint = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: close_range only manipulates this process's fd table.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(n) = entry?.file_name().to_string_lossy().parse::<i32>()
            && n >= first as i32
        {
            fds.push(n);
        }
    }
    for fd in fds {
        if cloexec {
            let _ = set_cloexec(fd, true);
        } else {
            // SAFETY: closing a raw number; the caller gave up every fd >= first.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// Closes one raw descriptor number (for fds inherited across fork whose owner lives in the
/// parent's copy of memory).
pub fn close_raw(fd: i32) {
    // SAFETY: closing a raw descriptor number; errors (EBADF) are irrelevant here.
    unsafe { libc::close(fd) };
}

/// Sets or clears FD_CLOEXEC on a raw descriptor.
pub fn set_cloexec(fd: i32, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD on a descriptor number has no memory effects.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Borrows a raw descriptor number for the rest of the process's life. For the sandbox's
/// child processes, which hold inherited fds by number until they exec or exit.
pub fn borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the caller owns `fd` and never closes it while the borrow is used (the child
    // processes keep these fds until exec/exit). An fd of -1 is rejected below by the kernel
    // with EBADF rather than being UB, since BorrowedFd requires != -1.
    let fd = if fd < 0 { i32::MAX } else { fd };
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Closes every descriptor from 3 up except those in `keep` (close_range over the gaps). The
/// first thing a freshly cloned sandbox process does: it inherited copies of every fd of its
/// parent, and a copy of another thread's flocked file would keep that lock held.
pub fn close_all_except(keep: &[i32]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = 3u32;
    for k in keep {
        if k > next {
            close_span(next, k - 1)?;
        }
        next = k + 1;
    }
    close_span(next, u32::MAX)
}

fn close_span(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range only manipulates this process's fd table.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(n) = entry?.file_name().to_string_lossy().parse::<u32>()
            && n >= first
            && n <= last
        {
            close_raw(n as i32);
        }
    }
    Ok(())
}
