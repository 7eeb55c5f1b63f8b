//! The thin executor of a [`MountPlan`], run by the sandbox's first process inside its new
//! mount namespace before pivot_root.
//!
//! Every mount is made detached with the fd-based API (fsopen/fsconfig/fsmount or open_tree)
//! and attached with move_mount onto an `O_PATH` fd of its target, which is resolved inside the
//! new root with `openat2(RESOLVE_IN_ROOT)`: an absolute symlink in the image (`/data ->
//! /etc`) resolves to the image's /etc, never to the host's. No process of the image runs yet,
//! so the tree cannot change under us while we work.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use joot_sys::mount as m;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::plan::{Kind, MountOp, MountPlan, OverlayUpper};

/// A setup failure: what was being done, and the error.
pub(crate) type SetupResult<T> = Result<T, String>;

fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> SetupResult<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// `path` relative to the root for openat2 ("/etc/hosts" -> "etc/hosts", "/" -> ".").
fn rel(path: &str) -> &str {
    let r = path.trim_start_matches('/');
    if r.is_empty() { "." } else { r }
}

/// Opens `path` inside `root` as an `O_PATH` fd (symlinks resolved inside the root).
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        root,
        rel(path),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

fn split(path: &str) -> (&str, &str) {
    let p = path.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
        None => ("/", p),
    }
}

/// Opens `path` inside `root`, creating it (and its parents, as directories) when missing.
pub(crate) fn ensure_in_root(root: BorrowedFd<'_>, path: &str, kind: Kind) -> io::Result<OwnedFd> {
    match open_in_root(root, path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let (parent, name) = split(path);
    if name.is_empty() || name == "." || name == ".." {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let pfd = ensure_in_root(root, parent, Kind::Dir)?;
    let made = match kind {
        Kind::Dir => rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)),
        Kind::File => rustix::fs::openat(
            &pfd,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            io::Error::other("it is a dangling symlink in the image")
        } else {
            e
        }
    })
}

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .unwrap_or(false)
}

/// Reads the messages the kernel left in a filesystem context (fsopen(2): "e overlayfs: ...").
fn fs_messages(fs: BorrowedFd<'_>) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 {
            break;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(String::from_utf8_lossy(&buf[..n]).trim());
    }
    out
}

fn with_messages(e: io::Error, fs: BorrowedFd<'_>) -> io::Error {
    let msgs = fs_messages(fs);
    if msgs.is_empty() {
        e
    } else {
        io::Error::new(e.kind(), format!("{e} ({msgs})"))
    }
}

fn tmpfs(mode: u32, size: Option<&str>, attrs: m::MountAttrFlags) -> io::Result<OwnedFd> {
    let fs = m::fs_open(c"tmpfs")?;
    m::fs_set(fs.as_fd(), c"mode", &cstr(&format!("{mode:o}")))?;
    if let Some(size) = size {
        m::fs_set(fs.as_fd(), c"size", &cstr(size))?;
    }
    m::fs_mount(fs.as_fd(), attrs).map_err(|e| with_messages(e, fs.as_fd()))
}

/// A read-write overlay of the host directory `lower` with `upper` and `work` (userxattr).
fn dir_overlay(lower: &str, upper: &str, work: &str, volatile: bool) -> io::Result<OwnedFd> {
    let fs = m::fs_open(c"overlay")?;
    m::fs_set(fs.as_fd(), c"lowerdir+", &cstr(lower))
        .or_else(|_| m::fs_set(fs.as_fd(), c"lowerdir", &cstr(lower)))?;
    m::fs_set(fs.as_fd(), c"upperdir", &cstr(upper))?;
    m::fs_set(fs.as_fd(), c"workdir", &cstr(work))?;
    m::fs_flag(fs.as_fd(), c"userxattr")?;
    if volatile {
        m::fs_flag(fs.as_fd(), c"volatile")?;
    }
    m::fs_mount(fs.as_fd(), m::MountAttrFlags::empty())
}

/// The state of a plan being applied.
pub(crate) struct Executor {
    mount_point: CString,
    scratch: OwnedFd,
    root: Option<OwnedFd>,
    files: usize,
    /// The command's terminal (pty slave) for [`MountOp::Console`].
    console: Option<i32>,
}

impl Executor {
    /// Makes the mount namespace private and mounts the scratch tmpfs on `mount_point`.
    pub(crate) fn new(mount_point: &Path) -> SetupResult<Executor> {
        ctx(m::make_rprivate(), || "make mounts private".into())?;
        let scratch = ctx(tmpfs(0o700, None, m::MountAttrFlags::empty()), || {
            "mount scratch tmpfs".into()
        })?;
        let mp = cpath(mount_point);
        ctx(m::attach_path(scratch.as_fd(), &mp), || {
            format!("mount scratch tmpfs on {}", mount_point.display())
        })?;
        Ok(Executor {
            mount_point: mp,
            scratch,
            root: None,
            files: 0,
            console: None,
        })
    }

    /// Mounts the scratch tmpfs on `target` in the CALLER's (the host's) mount namespace,
    /// without touching propagation: for `joot mount`.
    pub(crate) fn new_in_host(target: &Path) -> SetupResult<Executor> {
        let scratch = ctx(tmpfs(0o700, None, m::MountAttrFlags::empty()), || {
            "mount scratch tmpfs".into()
        })?;
        let mp = cpath(target);
        ctx(m::attach_path(scratch.as_fd(), &mp), || {
            format!("mount scratch tmpfs on {}", target.display())
        })?;
        Ok(Executor {
            mount_point: mp,
            scratch,
            root: None,
            files: 0,
            console: None,
        })
    }

    /// Sets the terminal bound on /dev/console.
    pub(crate) fn with_console(mut self, fd: Option<i32>) -> Executor {
        self.console = fd;
        self
    }

    /// Applies `plan` and returns the fd of the finished root.
    pub(crate) fn apply(mut self, plan: &MountPlan) -> SetupResult<OwnedFd> {
        for op in &plan.ops {
            self.op(op)?;
        }
        self.root
            .ok_or_else(|| "mount plan has no root".to_string())
    }

    fn root(&self) -> SetupResult<BorrowedFd<'_>> {
        self.root
            .as_ref()
            .map(|r| r.as_fd())
            .ok_or_else(|| "mount plan does not start with the root".to_string())
    }

    fn scratch_path(&self, name: &str) -> String {
        format!("{}/{name}", self.mount_point.to_string_lossy())
    }

    fn attach_root(&mut self, mnt: OwnedFd) -> SetupResult<()> {
        ctx(
            rustix::fs::mkdirat(&self.scratch, "root", Mode::from_raw_mode(0o755))
                .map_err(Into::into),
            || "create root mount point".into(),
        )?;
        let target = ctx(
            rustix::fs::openat(
                &self.scratch,
                "root",
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(Into::into),
            || "open root mount point".into(),
        )?;
        ctx(m::attach(mnt.as_fd(), target.as_fd()), || {
            "attach root".into()
        })?;
        self.root = Some(mnt);
        Ok(())
    }

    fn overlay(
        &mut self,
        lowers: &[std::path::PathBuf],
        upper: Option<&OverlayUpper>,
        volatile: bool,
        userxattr: bool,
    ) -> SetupResult<()> {
        let what = || "mount overlay root".to_string();
        let fs = ctx(m::fs_open(c"overlay"), what)?;
        // `lowerdir+` (Linux 6.8): one layer per call, top first, no option length limit.
        let mut legacy = false;
        for lower in lowers.iter().rev() {
            match m::fs_set(fs.as_fd(), c"lowerdir+", &cpath(lower)) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !legacy => {
                    legacy = true;
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "overlay lower layer {}: {}",
                        lower.display(),
                        with_messages(e, fs.as_fd())
                    ));
                }
            }
        }
        if legacy {
            // Older kernels: one `lowerdir` string, top first, with ':' ',' '\' escaped.
            let joined = lowers
                .iter()
                .rev()
                .map(|l| {
                    l.to_string_lossy()
                        .replace('\\', "\\\\")
                        .replace(':', "\\:")
                        .replace(',', "\\,")
                })
                .collect::<Vec<_>>()
                .join(":");
            ctx(m::fs_set(fs.as_fd(), c"lowerdir", &cstr(&joined)), what)?;
        }
        if let Some(upper) = upper {
            let (u, w) = match upper {
                OverlayUpper::Dir { upper, work } => (
                    upper.to_string_lossy().into_owned(),
                    work.to_string_lossy().into_owned(),
                ),
                OverlayUpper::Scratch => {
                    for d in ["upper", "work"] {
                        ctx(
                            rustix::fs::mkdirat(&self.scratch, d, Mode::from_raw_mode(0o755))
                                .map_err(Into::into),
                            || format!("create scratch {d} dir"),
                        )?;
                    }
                    (self.scratch_path("upper"), self.scratch_path("work"))
                }
            };
            ctx(m::fs_set(fs.as_fd(), c"upperdir", &cstr(&u)), || {
                format!("overlay upperdir {u}")
            })?;
            ctx(m::fs_set(fs.as_fd(), c"workdir", &cstr(&w)), || {
                format!("overlay workdir {w}")
            })?;
            if volatile {
                ctx(m::fs_flag(fs.as_fd(), c"volatile"), || {
                    "overlay volatile".into()
                })?;
            }
        }
        if userxattr {
            ctx(m::fs_flag(fs.as_fd(), c"userxattr"), || {
                "overlay userxattr".into()
            })?;
        }
        // nodev: a device node in the image (or one made inside with CAP_MKNOD) cannot be
        // opened, so the host's disks are out of reach; /dev is a mount of its own.
        let attrs = if upper.is_none() {
            m::MountAttrFlags::MOUNT_ATTR_RDONLY | m::MountAttrFlags::MOUNT_ATTR_NODEV
        } else {
            m::MountAttrFlags::MOUNT_ATTR_NODEV
        };
        let mnt = match m::fs_mount(fs.as_fd(), attrs) {
            Ok(mnt) => mnt,
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    && userxattr
                    && upper.is_some()
                    && lowers.len() == 1
                    && lowers[0] == Path::new("/") =>
            {
                tracing::debug!(
                    "overlay over / refused in the user namespace: per-directory overlays"
                );
                return self.host_root_per_dir(upper, volatile);
            }
            Err(e) => {
                return Err(format!(
                    "mount overlay root: {}",
                    with_messages(e, fs.as_fd())
                ));
            }
        };
        self.attach_root(mnt)
    }

    /// `--from host` in a user namespace. Overlay clones its lower mount, and the kernel
    /// refuses to clone a mount with *locked* submounts (the host's /proc, /sys, /dev... are
    /// locked in a mount namespace owned by a user namespace: has_locked_children() in
    /// fs/namespace.c, "overlayfs: failed to clone lowerpath", EINVAL). So the root is a tmpfs
    /// holding one overlay per top-level directory of the host (each with its own upper and
    /// work subdirectory, so the upper keeps the same layout as a single overlay's), the
    /// host's top-level symlinks, and read-only binds of its top-level files. A directory that
    /// itself has submounts is bound read-only with them. /proc, /sys, /dev and /tmp are left
    /// empty for the plan's own mounts. New top-level entries live on the tmpfs only.
    fn host_root_per_dir(
        &mut self,
        upper: Option<&OverlayUpper>,
        volatile: bool,
    ) -> SetupResult<()> {
        let root_mnt = ctx(tmpfs(0o755, None, m::MountAttrFlags::empty()), || {
            "mount tmpfs root for the host".into()
        })?;
        self.attach_root(root_mnt)?;
        let (upper_base, work_base) = match upper {
            Some(OverlayUpper::Dir { upper, work }) => (
                upper.to_string_lossy().into_owned(),
                work.to_string_lossy().into_owned(),
            ),
            _ => {
                for d in ["upper", "work"] {
                    match rustix::fs::mkdirat(&self.scratch, d, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(format!("create scratch {d} dir: {e}")),
                    }
                }
                (self.scratch_path("upper"), self.scratch_path("work"))
            }
        };
        let entries = ctx(std::fs::read_dir("/"), || "read the host's /".into())?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(ft) = entry.file_type() else { continue };
            let root = self.root()?;
            let host = format!("/{name}");
            if ft.is_symlink() {
                let target = ctx(std::fs::read_link(&host), || format!("read link {host}"))?;
                ctx(
                    rustix::fs::symlinkat(&target, root, name).map_err(Into::into),
                    || format!("create link /{name}"),
                )?;
                continue;
            }
            let kind = if ft.is_dir() { Kind::Dir } else { Kind::File };
            let target = ctx(ensure_in_root(root, &host, kind), || {
                format!("create /{name} in the root")
            })?;
            if matches!(name, "proc" | "sys" | "dev" | "tmp") {
                continue;
            }
            let what = || format!("mount the host's /{name}");
            let mnt = if ft.is_dir() {
                let (u, w) = (
                    format!("{upper_base}/{name}"),
                    format!("{work_base}/{name}"),
                );
                for d in [&u, &w] {
                    ctx(std::fs::create_dir_all(d), || format!("create {d}"))?;
                }
                // The merged directory shows the upper root's mode: copy the host's.
                if let Ok(md) = entry.metadata() {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::Permissions::from_mode(md.permissions().mode() & 0o7777);
                    ctx(std::fs::set_permissions(&u, mode), || format!("chmod {u}"))?;
                }
                match dir_overlay(&host, &u, &w, volatile) {
                    Ok(mnt) => mnt,
                    Err(_) => {
                        let c = ctx(m::clone_tree(rustix::fs::CWD, &cstr(&host), true), what)?;
                        ctx(m::set_attr(c.as_fd(), m::ATTR_RDONLY, 0, 0, true), what)?;
                        c
                    }
                }
            } else if ft.is_file() {
                let c = ctx(m::clone_tree(rustix::fs::CWD, &cstr(&host), false), what)?;
                ctx(m::set_attr(c.as_fd(), m::ATTR_RDONLY, 0, 0, false), what)?;
                c
            } else {
                continue;
            };
            ctx(m::attach(mnt.as_fd(), target.as_fd()), what)?;
        }
        Ok(())
    }

    fn op(&mut self, op: &MountOp) -> SetupResult<()> {
        use m::MountAttrFlags as A;
        match op {
            MountOp::Overlay {
                lowers,
                upper,
                volatile,
                userxattr,
            } => self.overlay(lowers, upper.as_ref(), *volatile, *userxattr),
            MountOp::BindRoot { src, ro } => {
                let what = || format!("bind root {}", src.display());
                let mnt = ctx(m::clone_tree(rustix::fs::CWD, &cpath(src), false), what)?;
                if *ro {
                    // noatime: reads must not change a read-only layer (mkfs copies access
                    // times into exports). A user namespace cannot change the atime mode a
                    // locked mount inherited: there, read-only alone.
                    let noatime = m::ATTR_RDONLY | m::ATTR_NOATIME;
                    if m::set_attr(mnt.as_fd(), noatime, m::ATTR_ATIME_MASK, 0, false).is_err() {
                        ctx(m::set_attr(mnt.as_fd(), m::ATTR_RDONLY, 0, 0, false), what)?;
                    }
                }
                self.attach_root(mnt)
            }
            MountOp::Proc { dst } => {
                let what = || format!("mount proc on {dst}");
                let fs = ctx(m::fs_open(c"proc"), what)?;
                let mnt = ctx(
                    m::fs_mount(
                        fs.as_fd(),
                        A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV | A::MOUNT_ATTR_NOEXEC,
                    )
                    .map_err(|e| with_messages(e, fs.as_fd())),
                    what,
                )?;
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::Dir), what)?;
                ctx(m::attach(mnt.as_fd(), t.as_fd()), what)
            }
            MountOp::ReadOnlyPath { dst } => {
                let what = || format!("make {dst} read-only");
                let t = match open_in_root(self.root()?, dst) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    r => ctx(r, what)?,
                };
                let c = ctx(m::clone_tree(t.as_fd(), c"", true), what)?;
                ctx(m::set_attr(c.as_fd(), m::ATTR_RDONLY, 0, 0, true), what)?;
                ctx(m::attach(c.as_fd(), t.as_fd()), what)
            }
            MountOp::MaskPath { dst } => {
                let what = || format!("mask {dst}");
                let t = match open_in_root(self.root()?, dst) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    r => ctx(r, what)?,
                };
                let c = if is_dir(t.as_fd()) {
                    ctx(tmpfs(0o555, Some("4k"), A::MOUNT_ATTR_RDONLY), what)?
                } else {
                    ctx(m::clone_tree(rustix::fs::CWD, c"/dev/null", false), what)?
                };
                ctx(m::attach(c.as_fd(), t.as_fd()), what)
            }
            MountOp::Sysfs { dst } => {
                let what = || format!("mount sysfs on {dst}");
                let ro = A::MOUNT_ATTR_RDONLY
                    | A::MOUNT_ATTR_NOSUID
                    | A::MOUNT_ATTR_NODEV
                    | A::MOUNT_ATTR_NOEXEC;
                let mnt = match m::fs_open(c"sysfs").and_then(|fs| m::fs_mount(fs.as_fd(), ro)) {
                    Ok(mnt) => mnt,
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                        // A user namespace that does not own the network namespace.
                        let c = ctx(m::clone_tree(rustix::fs::CWD, c"/sys", true), what)?;
                        ctx(m::set_attr(c.as_fd(), m::ATTR_RDONLY, 0, 0, true), what)?;
                        c
                    }
                    Err(e) => return Err(format!("{}: {e}", what())),
                };
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::Dir), what)?;
                ctx(m::attach(mnt.as_fd(), t.as_fd()), what)
            }
            MountOp::Tmpfs {
                dst,
                mode,
                size,
                nosuid,
                nodev,
                noexec,
                ro,
            } => {
                let what = || format!("mount tmpfs on {dst}");
                let mut attrs = A::empty();
                for (on, f) in [
                    (*nosuid, A::MOUNT_ATTR_NOSUID),
                    (*nodev, A::MOUNT_ATTR_NODEV),
                    (*noexec, A::MOUNT_ATTR_NOEXEC),
                    (*ro, A::MOUNT_ATTR_RDONLY),
                ] {
                    if on {
                        attrs |= f;
                    }
                }
                let mnt = ctx(tmpfs(*mode, size.as_deref(), attrs), what)?;
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::Dir), what)?;
                ctx(m::attach(mnt.as_fd(), t.as_fd()), what)
            }
            MountOp::Devpts { dst, gid } => {
                let what = || format!("mount devpts on {dst}");
                let fs = ctx(m::fs_open(c"devpts"), what)?;
                ctx(m::fs_set(fs.as_fd(), c"ptmxmode", c"0666"), what)?;
                ctx(m::fs_set(fs.as_fd(), c"mode", c"0620"), what)?;
                if let Some(gid) = gid {
                    ctx(m::fs_set(fs.as_fd(), c"gid", &cstr(&gid.to_string())), what)?;
                }
                let mnt = ctx(
                    m::fs_mount(fs.as_fd(), A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NOEXEC)
                        .map_err(|e| with_messages(e, fs.as_fd())),
                    what,
                )?;
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::Dir), what)?;
                ctx(m::attach(mnt.as_fd(), t.as_fd()), what)
            }
            MountOp::DevNode {
                dst,
                major,
                minor,
                mode,
            } => {
                let what = || format!("create device {dst}");
                let (parent, name) = split(dst);
                let p = ctx(ensure_in_root(self.root()?, parent, Kind::Dir), what)?;
                ctx(
                    rustix::fs::mknodat(
                        &p,
                        name,
                        rustix::fs::FileType::CharacterDevice,
                        Mode::from_raw_mode(*mode),
                        rustix::fs::makedev(*major, *minor),
                    )
                    .map_err(Into::into),
                    what,
                )
            }
            MountOp::Bind {
                src,
                dst,
                ro,
                recursive,
            } => {
                let what = || format!("bind {} on {dst}", src.display());
                let c = ctx(
                    m::clone_tree(rustix::fs::CWD, &cpath(src), *recursive),
                    what,
                )?;
                if *ro {
                    ctx(
                        m::set_attr(c.as_fd(), m::ATTR_RDONLY, 0, 0, *recursive),
                        what,
                    )?;
                }
                let kind = if is_dir(c.as_fd()) {
                    Kind::Dir
                } else {
                    Kind::File
                };
                let t = ctx(ensure_in_root(self.root()?, dst, kind), what)?;
                ctx(m::attach(c.as_fd(), t.as_fd()), what)
            }
            MountOp::Console { dst } => {
                let what = || format!("bind the terminal on {dst}");
                let Some(tty) = self.console else {
                    return Ok(());
                };
                // open_tree clones only mounts of our own namespace: the fd was opened in the
                // parent's, so look the pty up again by its path here.
                let path = ctx(std::fs::read_link(format!("/proc/self/fd/{tty}")), what)?;
                let c = ctx(m::clone_tree(rustix::fs::CWD, &cpath(&path), false), what)?;
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::File), what)?;
                ctx(m::attach(c.as_fd(), t.as_fd()), what)
            }
            MountOp::Symlink { target, dst } => {
                let what = || format!("create symlink {dst}");
                let (parent, name) = split(dst);
                let p = ctx(ensure_in_root(self.root()?, parent, Kind::Dir), what)?;
                match rustix::fs::symlinkat(target.as_str(), &p, name) {
                    Ok(()) | Err(Errno::EXIST) => Ok(()),
                    Err(e) => Err(format!("{}: {e}", what())),
                }
            }
            MountOp::Dir { dst, mode } => {
                let what = || format!("create directory {dst}");
                let t = ctx(ensure_in_root(self.root()?, dst, Kind::Dir), what)?;
                ctx(
                    rustix::fs::chmodat(
                        rustix::fs::CWD,
                        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&t)).as_str(),
                        Mode::from_raw_mode(*mode),
                        rustix::fs::AtFlags::empty(),
                    )
                    .map_err(Into::into),
                    what,
                )
            }
            MountOp::File {
                dst,
                content,
                in_place,
            } => {
                if *in_place {
                    match rustix::fs::openat2(
                        self.root()?,
                        rel(dst),
                        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                    ) {
                        Ok(f) => {
                            return ctx(std::fs::File::from(f).write_all(content), || {
                                format!("write {dst}")
                            });
                        }
                        // No /etc (or a dangling symlink's missing dir), a read-only root.
                        Err(Errno::NOENT) | Err(Errno::ROFS) => return Ok(()),
                        // A file of an unmapped owner in a rootless run: bind a copy instead.
                        Err(_) => {}
                    }
                }
                let what = || format!("bind generated {dst}");
                self.files += 1;
                let name = format!("file{}", self.files);
                let f = ctx(
                    rustix::fs::openat(
                        &self.scratch,
                        name.as_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map_err(Into::into),
                    what,
                )?;
                ctx(std::fs::File::from(f).write_all(content), what)?;
                let t = match ensure_in_root(self.root()?, dst, Kind::File) {
                    Ok(t) => t,
                    // A read-only root (or, rootless, an /etc of an unmapped owner) without
                    // the file: nothing to cover.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)
                        ) =>
                    {
                        return Ok(());
                    }
                    Err(e) => return Err(format!("{}: {e}", what())),
                };
                let c = ctx(
                    m::clone_tree(self.scratch.as_fd(), &cstr(&name), false),
                    what,
                )?;
                ctx(m::attach(c.as_fd(), t.as_fd()), what)
            }
        }
    }
}
