//! Mounts are data: a [`MountPlan`] is the ordered list of mounts a run makes, built by pure
//! code from a [`RunSpec`] (unit-tested without root) and applied by the thin executor in
//! `mounts.rs` inside the child's mount namespace.
//!
//! Shape of a run's tree (all inside the run's own mount namespace, so nothing is visible on
//! the host and everything vanishes with the namespace): a small "scratch" tmpfs on the
//! store's mount point holds the run's generated files (resolv.conf, hosts, hostname) and, for
//! `--rm` runs, the overlay's upper and work dirs; the root is an overlay (or a read-only bind
//! of a single lower) at `scratch/root`; then /proc, /sys, /dev, /tmp and binds inside it.
//! The list is kept short on purpose: every mount costs time on every run.

use std::path::PathBuf;

use crate::spec::{Bind, CapMode, Net, RunSpec, Upper};

/// What kind of object a bind target must be when it has to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Where the overlay's upper and work dirs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayUpper {
    /// On disk (an env).
    Dir { upper: PathBuf, work: PathBuf },
    /// `upper/` and `work/` on the run's scratch tmpfs.
    Scratch,
}

/// One mount (or filesystem object) of a run. Paths named `dst` are absolute paths inside the
/// new root and are resolved inside it (`openat2(RESOLVE_IN_ROOT)`); `src` paths are host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// The root: overlay of `lowers` (bottom -> top). Without an upper it is read-only.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Option<OverlayUpper>,
        volatile: bool,
        /// `userxattr`: overlay inside a user namespace keeps its xattrs in `user.overlay.*`.
        userxattr: bool,
    },
    /// The root: a read-only bind of one directory (a single lower without upper; overlay
    /// needs two lowers when it has no upper).
    BindRoot { src: PathBuf, ro: bool },
    /// A fresh procfs (of the run's PID namespace).
    Proc { dst: String },
    /// A read-only sysfs; where the kernel refuses (a user namespace that does not own the
    /// network namespace) a recursive read-only bind of the host's /sys.
    Sysfs { dst: String },
    Tmpfs {
        dst: String,
        mode: u32,
        /// tmpfs `size=` option ("64k", "50%").
        size: Option<String>,
        nosuid: bool,
        nodev: bool,
        noexec: bool,
        ro: bool,
    },
    /// A new devpts instance; `gid` (the tty group) only when it is mapped.
    Devpts { dst: String, gid: Option<u32> },
    /// A character device node (root without a user namespace: cheaper than a bind).
    DevNode {
        dst: String,
        major: u32,
        minor: u32,
        mode: u32,
    },
    /// A bind mount from the host.
    Bind {
        src: PathBuf,
        dst: String,
        ro: bool,
        recursive: bool,
    },
    /// The command's terminal (fd 0 of the run) bound to `dst` (/dev/console).
    Console { dst: String },
    /// A symlink `dst -> target`.
    Symlink { target: String, dst: String },
    /// A file written on the scratch tmpfs and bound onto `dst`. Skipped when `dst` is missing
    /// and cannot be created (read-only root). With `in_place` (a `--rm` run, whose upper is
    /// thrown away) the content is written into the root instead: no mount needed.
    File {
        dst: String,
        content: Vec<u8>,
        in_place: bool,
    },
    /// A directory with `mode` (created, or its mode set if it exists).
    Dir { dst: String, mode: u32 },
    /// Hide `dst`: /dev/null over a file, an empty read-only tmpfs over a directory. Skipped
    /// when `dst` does not exist.
    MaskPath { dst: String },
    /// Bind `dst` onto itself read-only. Skipped when `dst` does not exist.
    ReadOnlyPath { dst: String },
}

/// The ordered mounts of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub ops: Vec<MountOp>,
}

/// /proc entries made read-only (as runc and crun do).
pub const PROC_READONLY: [&str; 5] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
];

/// /proc entries hidden.
pub const PROC_MASKED: [&str; 6] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/acpi",
    "/proc/scsi",
];

/// Device nodes of the minimal /dev: (name, major, minor).
pub const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Inputs of the plan that are not in the spec: file contents read from the host.
#[derive(Debug, Clone, Default)]
pub struct HostFiles {
    /// The host's /etc/resolv.conf, if the run copies it and the host has one.
    pub resolv_conf: Option<Vec<u8>>,
}

/// Content of the run's /etc/hosts.
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

impl MountPlan {
    /// Builds the plan of `spec`. Pure: reads nothing, mounts nothing.
    pub fn build(spec: &RunSpec, host: &HostFiles) -> MountPlan {
        let userns = spec.userns();
        let mut ops = Vec::new();
        let lowers = spec.rootfs.lowers.clone();
        match &spec.rootfs.upper {
            Upper::None | Upper::Shared if lowers.len() == 1 => ops.push(MountOp::BindRoot {
                src: lowers[0].clone(),
                ro: spec.rootfs.upper == Upper::None,
            }),
            upper => {
                let (upper, volatile) = match upper {
                    Upper::Dir {
                        upper,
                        work,
                        volatile,
                    } => (
                        Some(OverlayUpper::Dir {
                            upper: upper.clone(),
                            work: work.clone(),
                        }),
                        *volatile,
                    ),
                    Upper::Tmpfs => (Some(OverlayUpper::Scratch), false),
                    Upper::None | Upper::Shared => (None, false),
                };
                ops.push(MountOp::Overlay {
                    lowers,
                    upper,
                    volatile,
                    userxattr: userns,
                });
            }
        }

        ops.push(MountOp::Proc {
            dst: "/proc".into(),
        });
        // `--privileged` (like docker's) also lifts the /proc masks and read-only paths.
        if spec.caps == CapMode::Default {
            for p in PROC_READONLY {
                ops.push(MountOp::ReadOnlyPath { dst: p.into() });
            }
            for p in PROC_MASKED {
                ops.push(MountOp::MaskPath { dst: p.into() });
            }
        }

        // sysfs can only be mounted by a user namespace that owns the network namespace.
        if userns && spec.net == Net::Host {
            ops.push(MountOp::Bind {
                src: "/sys".into(),
                dst: "/sys".into(),
                ro: true,
                recursive: true,
            });
        } else {
            ops.push(MountOp::Sysfs { dst: "/sys".into() });
        }

        ops.push(MountOp::Tmpfs {
            dst: "/dev".into(),
            mode: 0o755,
            size: None,
            nosuid: true,
            nodev: userns,
            noexec: true,
            ro: false,
        });
        for (name, major, minor) in DEVICES {
            let dst = format!("/dev/{name}");
            if userns {
                // mknod is not allowed in a user namespace: bind the host's nodes.
                ops.push(MountOp::Bind {
                    src: PathBuf::from(&dst),
                    dst,
                    ro: false,
                    recursive: false,
                });
            } else {
                ops.push(MountOp::DevNode {
                    dst,
                    major,
                    minor,
                    mode: 0o666,
                });
            }
        }
        let tty_gid = match &spec.idmap {
            Some(m) if !m.maps_gid(5) => None,
            _ => Some(5),
        };
        ops.push(MountOp::Devpts {
            dst: "/dev/pts".into(),
            gid: tty_gid,
        });
        ops.push(MountOp::Symlink {
            target: "pts/ptmx".into(),
            dst: "/dev/ptmx".into(),
        });
        // /dev/shm is a directory of the /dev tmpfs (one mount less on every run).
        ops.push(MountOp::Dir {
            dst: "/dev/shm".into(),
            mode: 0o1777,
        });
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("core", "/proc/kcore"),
        ] {
            ops.push(MountOp::Symlink {
                target: target.into(),
                dst: format!("/dev/{link}"),
            });
        }
        if spec.tty {
            ops.push(MountOp::Console {
                dst: "/dev/console".into(),
            });
        }

        ops.push(MountOp::Tmpfs {
            dst: "/tmp".into(),
            mode: 0o1777,
            size: None,
            nosuid: true,
            nodev: true,
            noexec: false,
            ro: false,
        });

        for m in &spec.masks {
            ops.push(MountOp::MaskPath { dst: m.clone() });
        }

        let in_place = spec.rootfs.upper == Upper::Tmpfs;
        if let Some(resolv) = &host.resolv_conf {
            ops.push(MountOp::File {
                dst: "/etc/resolv.conf".into(),
                content: resolv.clone(),
                in_place,
            });
        }
        ops.push(MountOp::File {
            dst: "/etc/hosts".into(),
            content: hosts_file(&spec.hostname).into_bytes(),
            in_place,
        });
        ops.push(MountOp::File {
            dst: "/etc/hostname".into(),
            content: format!("{}\n", spec.hostname).into_bytes(),
            in_place,
        });
        // Bound copies, never written in place: they must not end up in an env's upper.
        for (dst, content) in &spec.files {
            ops.push(MountOp::File {
                dst: dst.clone(),
                content: content.clone(),
                in_place: false,
            });
        }

        for Bind {
            src,
            dst,
            ro,
            recursive,
        } in &spec.binds
        {
            ops.push(MountOp::Bind {
                src: src.clone(),
                dst: dst.clone(),
                ro: *ro,
                recursive: *recursive,
            });
        }
        MountPlan { ops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idmap::IdMap;
    use crate::spec::{Rootfs, RunSpec};

    fn spec() -> RunSpec {
        let mut s = RunSpec::new(
            vec!["/l/a".into(), "/l/b".into()],
            "/store/mnt".into(),
            vec!["true".into()],
        );
        s.idmap = None;
        s.hostname = "web".into();
        s
    }

    fn dsts(plan: &MountPlan) -> Vec<String> {
        plan.ops
            .iter()
            .filter_map(|op| match op {
                MountOp::Proc { dst }
                | MountOp::Sysfs { dst }
                | MountOp::Tmpfs { dst, .. }
                | MountOp::Devpts { dst, .. }
                | MountOp::DevNode { dst, .. }
                | MountOp::Bind { dst, .. }
                | MountOp::Console { dst }
                | MountOp::Symlink { dst, .. }
                | MountOp::File { dst, .. }
                | MountOp::Dir { dst, .. }
                | MountOp::MaskPath { dst }
                | MountOp::ReadOnlyPath { dst } => Some(dst.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rm_run_is_overlay_with_scratch_upper_first() {
        let plan = MountPlan::build(&spec(), &HostFiles::default());
        assert_eq!(
            plan.ops[0],
            MountOp::Overlay {
                lowers: vec!["/l/a".into(), "/l/b".into()],
                upper: Some(OverlayUpper::Scratch),
                volatile: false,
                userxattr: false,
            }
        );
    }

    #[test]
    fn env_run_uses_its_upper_and_volatile_flag() {
        let mut s = spec();
        s.rootfs.upper = Upper::Dir {
            upper: "/e/upper".into(),
            work: "/e/work".into(),
            volatile: true,
        };
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert!(matches!(
            &plan.ops[0],
            MountOp::Overlay { upper: Some(OverlayUpper::Dir { upper, .. }), volatile: true, .. }
                if upper == &PathBuf::from("/e/upper")
        ));
    }

    #[test]
    fn single_read_only_lower_is_a_bind() {
        let mut s = spec();
        s.rootfs = Rootfs {
            lowers: vec!["/".into()],
            upper: Upper::None,
        };
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert_eq!(
            plan.ops[0],
            MountOp::BindRoot {
                src: "/".into(),
                ro: true
            }
        );
        s.rootfs.lowers.push("/l/c".into());
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert!(matches!(&plan.ops[0], MountOp::Overlay { upper: None, .. }));
    }

    #[test]
    fn proc_is_mounted_before_its_masks_and_read_only_paths() {
        let plan = MountPlan::build(&spec(), &HostFiles::default());
        let d = dsts(&plan);
        let proc_at = d.iter().position(|x| x == "/proc").unwrap();
        for p in PROC_READONLY.iter().chain(PROC_MASKED.iter()) {
            let at = d
                .iter()
                .position(|x| x == p)
                .unwrap_or_else(|| panic!("{p}"));
            assert!(at > proc_at, "{p} before /proc");
        }
        assert!(plan.ops.contains(&MountOp::MaskPath {
            dst: "/proc/kcore".into()
        }));
        assert!(plan.ops.contains(&MountOp::ReadOnlyPath {
            dst: "/proc/sys".into()
        }));
    }

    #[test]
    fn privileged_runs_have_no_proc_masks() {
        let mut s = spec();
        s.caps = CapMode::All;
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert!(
            !plan
                .ops
                .iter()
                .any(|op| matches!(op, MountOp::MaskPath { .. } | MountOp::ReadOnlyPath { .. }))
        );
        assert!(plan.ops.contains(&MountOp::Proc {
            dst: "/proc".into()
        }));
    }

    #[test]
    fn dev_is_minimal_and_ordered() {
        let plan = MountPlan::build(&spec(), &HostFiles::default());
        let d = dsts(&plan);
        let dev = d.iter().position(|x| x == "/dev").unwrap();
        for name in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/ptmx",
            "/dev/shm",
            "/dev/fd",
            "/dev/stdin",
        ] {
            let at = d
                .iter()
                .position(|x| x == name)
                .unwrap_or_else(|| panic!("{name}"));
            assert!(at > dev);
        }
        assert!(plan.ops.contains(&MountOp::DevNode {
            dst: "/dev/null".into(),
            major: 1,
            minor: 3,
            mode: 0o666
        }));
        assert!(plan.ops.contains(&MountOp::Symlink {
            target: "pts/ptmx".into(),
            dst: "/dev/ptmx".into()
        }));
        assert!(!d.contains(&"/dev/console".to_string()));
    }

    #[test]
    fn rootless_binds_devices_and_host_sys_and_uses_userxattr() {
        let mut s = spec();
        s.idmap = Some(IdMap::build(1000, 1000, None));
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert!(matches!(
            &plan.ops[0],
            MountOp::Overlay {
                userxattr: true,
                ..
            }
        ));
        assert!(plan.ops.contains(&MountOp::Bind {
            src: "/dev/null".into(),
            dst: "/dev/null".into(),
            ro: false,
            recursive: false
        }));
        assert!(plan.ops.contains(&MountOp::Bind {
            src: "/sys".into(),
            dst: "/sys".into(),
            ro: true,
            recursive: true
        }));
        // gid 5 (tty) is not mapped with a single-id map.
        assert!(plan.ops.contains(&MountOp::Devpts {
            dst: "/dev/pts".into(),
            gid: None
        }));
        // With its own network namespace the user namespace may mount sysfs.
        s.net = Net::None;
        let plan = MountPlan::build(&s, &HostFiles::default());
        assert!(plan.ops.contains(&MountOp::Sysfs { dst: "/sys".into() }));
    }

    #[test]
    fn generated_files_and_user_binds_come_last() {
        let mut s = spec();
        s.tty = true;
        s.binds.push(Bind {
            src: "/srv/data".into(),
            dst: "/data".into(),
            ro: true,
            recursive: false,
        });
        let host = HostFiles {
            resolv_conf: Some(b"nameserver 10.0.0.1\n".to_vec()),
        };
        let plan = MountPlan::build(&s, &host);
        let n = plan.ops.len();
        assert_eq!(
            plan.ops[n - 1],
            MountOp::Bind {
                src: "/srv/data".into(),
                dst: "/data".into(),
                ro: true,
                recursive: false
            }
        );
        assert!(plan.ops.contains(&MountOp::File {
            dst: "/etc/resolv.conf".into(),
            content: b"nameserver 10.0.0.1\n".to_vec(),
            in_place: true,
        }));
        assert!(plan.ops.contains(&MountOp::File {
            dst: "/etc/hostname".into(),
            content: b"web\n".to_vec(),
            in_place: true,
        }));
        // An env's files are bound, never written into its upper.
        s.rootfs.upper = Upper::Dir {
            upper: "/u".into(),
            work: "/w".into(),
            volatile: false,
        };
        let plan = MountPlan::build(&s, &host);
        assert!(plan.ops.contains(&MountOp::File {
            dst: "/etc/hostname".into(),
            content: b"web\n".to_vec(),
            in_place: false,
        }));
        assert!(plan.ops.contains(&MountOp::Console {
            dst: "/dev/console".into()
        }));
        let hosts = hosts_file("web");
        assert!(hosts.contains("127.0.1.1\tweb\n") && hosts.contains("localhost"));
    }
}
