//! What to run and in which root: the input of [`crate::run`]. Plain data, validated before
//! any process is created, so bad input (a missing bind source, an empty layer list) is an
//! error before anything starts.

use std::path::PathBuf;

use crate::idmap::IdMap;

/// The root filesystem of a run: read-only lower layers and where writes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// Lower directories, bottom -> top (the store's layer roots, or `/` for `--from host`).
    pub lowers: Vec<PathBuf>,
    pub upper: Upper,
}

/// Where the writes of a run go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upper {
    /// A persistent upper+work directory pair (an env). With `volatile`, overlay skips syncs
    /// (for throw-away staging dirs: nothing survives a crash anyway).
    Dir {
        upper: PathBuf,
        work: PathBuf,
        volatile: bool,
    },
    /// Upper and work on a tmpfs that lives only in the run's mount namespace: nothing to clean
    /// up on disk, nothing left after the run (`run --rm`).
    Tmpfs,
    /// Read-only root.
    None,
    /// `lowers` is a single, already mounted, writable tree (a `joot mount`ed env): bind it
    /// read-write as the root.
    Shared,
}

/// Network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Net {
    /// Share the host's network namespace.
    #[default]
    Host,
    /// A new network namespace with only a loopback interface, up.
    None,
}

/// Capability set of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapMode {
    /// Docker's default set; everything else dropped from the bounding set too.
    #[default]
    Default,
    /// Keep every capability (`--privileged`).
    All,
}

/// A bind mount from the host into the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path; must exist.
    pub src: PathBuf,
    /// Absolute path inside the root, resolved inside the root (symlinks in the image cannot
    /// point it at the host); created when missing.
    pub dst: String,
    pub ro: bool,
    /// Include the mounts below `src`.
    pub recursive: bool,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub rootfs: Rootfs,
    /// An empty directory (the store's `mnt/`): the run mounts its root there inside its own
    /// mount namespace, so every run can reuse it and the host never sees the mount.
    pub mount_point: PathBuf,
    /// The command; empty = an interactive shell (bash if the image has it, else sh).
    pub argv: Vec<String>,
    /// Variables added to (or overriding) the clean environment, in order.
    pub env: Vec<(String, String)>,
    /// Working directory inside the root (created if missing); default the user's home or /.
    pub cwd: Option<String>,
    /// `USER[:GROUP]`, names or numbers, resolved in the image's /etc/passwd and /etc/group.
    pub user: Option<String>,
    pub hostname: String,
    pub net: Net,
    pub binds: Vec<Bind>,
    /// Paths inside the root to hide (an empty read-only tmpfs over a directory, /dev/null
    /// over a file); e.g. the store itself in a `--from host` run.
    pub masks: Vec<String>,
    pub caps: CapMode,
    /// Set PR_SET_NO_NEW_PRIVS: setuid binaries and file capabilities grant nothing (off by
    /// default, as in docker: package managers and `su` inside need them).
    pub no_new_privs: bool,
    /// Give the command a new pseudo-terminal as its controlling terminal (interactive use).
    pub tty: bool,
    /// Copy the host's /etc/resolv.conf into the root for this run.
    pub resolv: bool,
    /// User namespace mapping. `None` runs without a user namespace (needs root); rootless
    /// callers pass [`IdMap::detect`].
    pub idmap: Option<IdMap>,
    /// Generated files bound over paths in the root for this run only (`--bind-user`'s
    /// /etc/passwd and /etc/group): absolute path inside the root, content.
    pub files: Vec<(String, Vec<u8>)>,
    /// Return as soon as the sandbox's init reports the command's status, without waiting for
    /// the kernel to tear the run's namespaces down (unmounting its tree, freeing its tmpfs)
    /// and without reaping init. Only for a caller that exits right after the run (the CLI's
    /// one-shot `run --rm`): init is then reaped by the host's init. Nothing outlives the
    /// run either way: init is already exiting, and the kernel kills what is left in its PID
    /// namespace. Ignored with `tty`.
    pub leave_teardown: bool,
}

impl RunSpec {
    /// A spec with the usual defaults: tmpfs upper over `lowers`, host network, default
    /// capabilities, resolv.conf copied, no user namespace when root, a detected mapping
    /// otherwise.
    pub fn new(lowers: Vec<PathBuf>, mount_point: PathBuf, argv: Vec<String>) -> RunSpec {
        RunSpec {
            rootfs: Rootfs {
                lowers,
                upper: Upper::Tmpfs,
            },
            mount_point,
            argv,
            env: Vec::new(),
            cwd: None,
            user: None,
            hostname: "joot".to_string(),
            net: Net::Host,
            binds: Vec::new(),
            masks: Vec::new(),
            caps: CapMode::Default,
            no_new_privs: false,
            tty: false,
            resolv: true,
            idmap: IdMap::for_current_user(),
            files: Vec::new(),
            leave_teardown: false,
        }
    }

    /// True when the run creates a user namespace.
    pub fn userns(&self) -> bool {
        self.idmap.is_some()
    }
}

/// Default PATH of the clean environment.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's environment: PATH, HOME, TERM, HOSTNAME, container=joot, then `extra` in
/// order (later entries replace earlier ones of the same name).
pub fn clean_env(
    hostname: &str,
    home: &str,
    term: Option<&str>,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into()),
        ("HOSTNAME".into(), hostname.into()),
        ("container".into(), "joot".into()),
    ];
    if let Some(t) = term {
        env.push(("TERM".into(), t.into()));
    }
    for (k, v) in extra {
        if let Some(slot) = env.iter_mut().find(|(n, _)| n == k) {
            slot.1 = v.clone();
        } else {
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_env_has_defaults_and_overrides_in_place() {
        let env = clean_env(
            "web",
            "/root",
            Some("xterm"),
            &[
                ("PATH".into(), "/bin".into()),
                ("A".into(), "1".into()),
                ("A".into(), "2".into()),
            ],
        );
        assert_eq!(
            env,
            vec![
                ("PATH".to_string(), "/bin".to_string()),
                ("HOME".into(), "/root".into()),
                ("HOSTNAME".into(), "web".into()),
                ("container".into(), "joot".into()),
                ("TERM".into(), "xterm".into()),
                ("A".into(), "2".into()),
            ]
        );
    }
}
