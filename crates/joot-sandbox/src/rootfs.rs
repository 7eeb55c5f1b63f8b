//! Host tools over a read-only merged tree (`with_rootfs`): for disk-image export
//! (`mkfs.ext4 -d MERGED`, `tar -C MERGED`). The tool runs in a child with a private mount
//! namespace (and a user namespace when not root) in which the layers are mounted read-only
//! at a fresh temporary directory; nothing is mounted in the host's namespace and the mount
//! vanishes when the tool exits.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use joot_sys::{fd as jfd, process};
use rustix::process::{Pid, WaitOptions};

use crate::idmap::IdMap;
use crate::mounts::Executor;
use crate::plan::{MountPlan, OverlayUpper};
use crate::spec::{Rootfs, RunSpec, Upper};
use crate::{Error, Result};

/// Removes the temporary mount point directory.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs the HOST command built by `f` over the read-only merged tree of `lowers` (bottom ->
/// top), which `f` receives as a path. Returns the captured output; a non-zero exit is a
/// [`ToolError::Failed`] with argv, status and the tail of stderr.
pub fn with_rootfs(lowers: &[PathBuf], f: impl FnOnce(&Path) -> Command) -> Result<Output> {
    static N: AtomicU32 = AtomicU32::new(0);
    if lowers.is_empty() {
        return Err(Error::Invalid(
            "with_rootfs needs at least one layer".into(),
        ));
    }
    let dir = std::env::temp_dir().join(format!(
        "joot-rootfs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|source| Error::Io {
        context: format!("create {}", dir.display()),
        source,
    })?;
    let dir = TempDir(dir);
    let merged = dir.0.join("root");
    let mut cmd = f(&merged);
    let argv = crate::tool::argv_string(&cmd);
    tracing::debug!(argv = %argv, "running tool over a merged rootfs");

    let mut spec = RunSpec::new(lowers.to_vec(), dir.0.clone(), Vec::new());
    spec.rootfs = Rootfs {
        lowers: lowers.to_vec(),
        upper: Upper::None,
    };
    let idmap = IdMap::for_current_user();
    spec.idmap = idmap.clone();
    let mut plan = MountPlan::build(&spec, &Default::default());
    plan.ops.truncate(1);
    debug_assert!(!matches!(
        plan.ops.first(),
        Some(crate::plan::MountOp::Overlay {
            upper: Some(OverlayUpper::Scratch),
            ..
        })
    ));

    let io = |context: &'static str| {
        move |source: std::io::Error| Error::Io {
            context: context.to_string(),
            source,
        }
    };
    let (sync_rd, sync_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let (out_rd, out_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let (err_rd, err_wr) = process::pipe_cloexec().map_err(io("create pipe"))?;
    let (sync_fd, out_fd, err_fd) = (sync_rd.as_raw_fd(), out_wr.as_raw_fd(), err_wr.as_raw_fd());
    let mut flags = process::CLONE_NEWNS as u64;
    if idmap.is_some() {
        flags |= process::CLONE_NEWUSER as u64;
    }
    let mount_point = dir.0.clone();
    let pid = process::spawn_in_namespaces(flags, move || {
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        let _ = jfd::close_all_except(&[sync_fd, out_fd, err_fd]);
        let mut b = [0u8; 1];
        if !matches!(rustix::io::read(jfd::borrow(sync_fd), &mut b), Ok(1)) {
            return 1;
        }
        let say = |msg: &str| {
            let _ = rustix::io::write(jfd::borrow(err_fd), msg.as_bytes());
        };
        if let Err(msg) = Executor::new(&mount_point).and_then(|ex| ex.apply(&plan)) {
            say(&format!("joot: cannot mount the rootfs: {msg}\n"));
            return 125;
        }
        if process::dup_onto(out_fd, 1, false).is_err()
            || process::dup_onto(err_fd, 2, false).is_err()
        {
            return 125;
        }
        cmd.stdin(std::process::Stdio::null());
        let e = cmd.exec();
        say(&format!("joot: cannot execute the tool: {e}\n"));
        if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    })
    .map_err(Error::Spawn)?;
    drop(sync_rd);
    drop(out_wr);
    drop(err_wr);
    if let Some(map) = &idmap
        && let Err(e) = map.apply(pid)
    {
        if let Some(p) = Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
        }
        return Err(Error::IdMap(e));
    }
    let _ = rustix::io::write(&sync_wr, &[1]);
    drop(sync_wr);
    let err_reader = std::thread::spawn(move || read_all(std::fs::File::from(err_rd)));
    let stdout = read_all(std::fs::File::from(out_rd));
    let stderr = err_reader.join().unwrap_or_default();
    let status = loop {
        match rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty()) {
            Ok(Some((_, st))) => break st,
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io("wait for the tool")(e.into())),
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(status.as_raw());
    let out = Output {
        status,
        stdout,
        stderr,
    };
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Tool(crate::tool::failure(argv, &out)))
    }
}

fn read_all(mut f: std::fs::File) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    let _ = f.read_to_end(&mut v);
    v
}
