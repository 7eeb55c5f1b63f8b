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
    pub fn mount(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> std::io::Result<HostRoot> {
        // mount(2) takes the options as one string: `:` separates lower dirs and `,` options, so
        // neither may appear in a path (store paths are ours; refuse rather than mis-parse).
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
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        let opts = std::ffi::CString::new(opts).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(target)?;
        mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            Some(opts.as_c_str()),
        )?;
        Ok(HostRoot {
            target: target.to_path_buf(),
        })
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for HostRoot {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.target, UnmountFlags::DETACH) {
            tracing::warn!(target = %self.target.display(), error = %e, "cannot unmount build root");
        }
        let _ = std::fs::remove_dir(&self.target);
    }
}
