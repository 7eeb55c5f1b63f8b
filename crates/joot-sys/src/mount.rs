//! Mounts through the fd-based API (fsopen/fsconfig/fsmount/move_mount/open_tree, plus
//! `mount_setattr(2)` which rustix lacks) and the legacy `mount(2)` calls used as fallbacks.
//!
//! A mount is prepared detached (a mount fd), configured, and only then attached with
//! [`attach`] onto a target that was itself opened as an `O_PATH` fd, resolved inside the new
//! root. Nothing here resolves a path through a symlink it did not expect.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub use rustix::mount::MountAttrFlags;

/// `mount_setattr` attribute bits.
pub const ATTR_RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
pub const ATTR_NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
pub const ATTR_NODEV: u64 = libc::MOUNT_ATTR_NODEV;
pub const ATTR_NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
pub const ATTR_NOATIME: u64 = libc::MOUNT_ATTR_NOATIME;
/// The access-time mode field; clear it to set one of the atime modes.
pub const ATTR_ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets (and clears) mount attributes on the mount `fd` refers to; with `recursive`, on every
/// mount below it too (AT_RECURSIVE). `propagation` is 0 or MS_PRIVATE/MS_SLAVE/...
pub fn set_attr(
    fd: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    propagation: u64,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid fd, a NUL-terminated empty path, and an initialised mount_attr of the
    // size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a filesystem context (`fsopen`), close-on-exec.
pub fn fs_open(fstype: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::mount::fsopen(
        fstype,
        rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC,
    )?)
}

/// `fsconfig(FSCONFIG_SET_STRING)`.
pub fn fs_set(ctx: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_string(ctx, key, value)?)
}

/// `fsconfig(FSCONFIG_SET_FLAG)`.
pub fn fs_flag(ctx: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_flag(ctx, key)?)
}

/// `fsconfig(FSCONFIG_SET_FD)`.
pub fn fs_set_fd(ctx: BorrowedFd<'_>, key: &CStr, fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_fd(ctx, key, fd)?)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount` with `attrs`: a detached mount fd.
pub fn fs_mount(ctx: BorrowedFd<'_>, attrs: MountAttrFlags) -> io::Result<OwnedFd> {
    rustix::mount::fsconfig_create(ctx)?;
    Ok(rustix::mount::fsmount(
        ctx,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        attrs,
    )?)
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `path` (relative to `dir`),
/// with its submounts when `recursive`. `path` empty means `dir` itself.
pub fn clone_tree(dir: BorrowedFd<'_>, path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags as F;
    let mut flags = F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= F::AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= F::AT_EMPTY_PATH;
    }
    Ok(rustix::mount::open_tree(dir, path, flags)?)
}

/// `move_mount` of the detached (or attached) mount `from` onto the `O_PATH` fd `to`.
pub fn attach(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    Ok(rustix::mount::move_mount(
        from,
        c"",
        to,
        c"",
        F::MOVE_MOUNT_F_EMPTY_PATH | F::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}

/// `move_mount` of `from` onto `path` (absolute, or relative to the cwd).
pub fn attach_path(from: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    Ok(rustix::mount::move_mount(
        from,
        c"",
        rustix::fs::CWD,
        path,
        F::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// Makes every mount from `/` down private in the calling process's mount namespace, so that
/// nothing mounted afterwards propagates to the host (mount_namespaces(7)).
pub fn make_rprivate() -> io::Result<()> {
    use rustix::mount::MountPropagationFlags as P;
    Ok(rustix::mount::mount_change(c"/", P::PRIVATE | P::REC)?)
}

/// Legacy `mount(2)` (fallback where the fd-based API is missing).
pub fn legacy_mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: u64,
    data: Option<&CStr>,
) -> io::Result<()> {
    // SAFETY: all pointers are NUL-terminated strings (or NULL for data) valid for the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags as libc::c_ulong,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `umount2(path, MNT_DETACH)`.
pub fn detach(path: &CStr) -> io::Result<()> {
    Ok(rustix::mount::unmount(
        path,
        rustix::mount::UnmountFlags::DETACH,
    )?)
}

/// Switches the root of the calling process's mount namespace to `new_root` (an fd of a
/// mount point) and detaches the old root.
///
/// `pivot_root(".", ".")` (pivot_root(2) notes): with the cwd at the new root, the old root is
/// stacked on top of the new root at "/", so no put_old directory needs to exist in the image
/// (which may be read-only); `umount2(".", MNT_DETACH)` then removes the old root from the top
/// of the stack, leaving the new root, and the host's tree becomes unreachable.
pub fn pivot_to(new_root: impl AsFd) -> io::Result<()> {
    rustix::process::fchdir(&new_root)?;
    rustix::process::pivot_root(c".", c".")?;
    rustix::mount::unmount(c".", rustix::mount::UnmountFlags::DETACH)?;
    rustix::process::chdir(c"/")?;
    Ok(())
}
