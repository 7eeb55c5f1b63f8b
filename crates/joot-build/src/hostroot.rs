//! The image root made visible on the host for steps that work from the host: custom modules
//! (which get the root's path) and ansible (whose chroot connection enters it). The step's env
//! is mounted as an overlay at `ROOT/run/<env>` (where `joot mount` puts envs, so `joot gc`
//! finds one left by a killed build) for the duration of the step only; [`HostRoot`] detaches
//! it when dropped, also on error.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

/// A mounted overlay; unmounted on drop.
pub struct HostRoot {
    target: PathBuf,
}

impl HostRoot {
    /// Mounts `lowers` (bottom to top) with `upper`/`work` at `target` (created if missing).
    /// `userxattr` for a rootless store, whose layers keep overlay xattrs in `user.overlay.*`.
    pub fn mount(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        userxattr: bool,
    ) -> std::io::Result<HostRoot> {
        std::fs::create_dir_all(target)?;
        match mount_fd_api(lowers, upper, work, target, userxattr) {
            Ok(()) => {}
            // ENOSYS: no new mount API; EINVAL: no `lowerdir+` (kernels before 6.8).
            Err(e @ (rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL)) => {
                tracing::warn!(error = %e, "fd-based overlay mount unavailable, using mount(2)");
                mount_string(lowers, upper, work, target, userxattr)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(HostRoot {
            target: target.to_path_buf(),
        })
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

/// The fd-based mount API with one `lowerdir+` per layer (overlayfs.rst, "Multiple lower
/// layers"): no limit on the number of layers from the one-page option string, and no escaping.
fn mount_fd_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
) -> rustix::io::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    // Top to bottom: the first lower dir given is the uppermost.
    for l in lowers.iter().rev() {
        fsconfig_set_string(&fs, "lowerdir+", l)?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)?;
    fsconfig_set_string(&fs, "workdir", work)?;
    if userxattr {
        fsconfig_set_flag(&fs, "userxattr")?;
    }
    fsconfig_create(&fs)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// mount(2) with the options as one string (older kernels).
fn mount_string(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
) -> std::io::Result<()> {
    // `:` separates lower dirs and `,` options: neither may appear in a path (store paths are
    // ours; refuse rather than mis-parse).
    let all: Vec<&Path> = lowers
        .iter()
        .map(PathBuf::as_path)
        .chain([upper, work])
        .collect();
    if let Some(p) = all
        .iter()
        .find(|p| p.to_string_lossy().contains([',', ':', '\\']))
    {
        return Err(std::io::Error::other(format!(
            "cannot mount a layer path containing `,`, `:` or `\\`: {}",
            p.display()
        )));
    }
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let mut opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if userxattr {
        opts.push_str(",userxattr");
    }
    let opts = std::ffi::CString::new(opts).map_err(std::io::Error::other)?;
    mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        Some(opts.as_c_str()),
    )?;
    Ok(())
}

impl Drop for HostRoot {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.target, UnmountFlags::DETACH) {
            tracing::warn!(target = %self.target.display(), error = %e, "cannot unmount build root");
        }
        let _ = std::fs::remove_dir(&self.target);
    }
}
