//! Sessions: environments of the store turned into runs. This is the glue the CLI calls:
//! `run_env` (an existing env, under its lock), `run_ephemeral` (`run --rm`: nothing
//! persistent), `mount_env`/`umount_env` (`joot mount`: the only mounts that live in the
//! host's namespace) and `with_rootfs` (a host tool over a read-only merged tree, for export).
//!
//! Named commands and the hook of an env (stored in its [`EnvConfig`]):
//! `commands: {start: "...", stop: "..."}` are shell commands run inside the env with
//! `/bin/sh -c` ([`run_named`]); `umount_env` runs `stop` before unmounting. `hook` is a shell
//! command run on the HOST before entering the env (as joot's own user, with `JOOT_ENV` and
//! `JOOT_ENV_UPPER` set); a failing hook stops the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use joot_store::{Env, EnvConfig, EnvSource, LayerId, Name, NetMode, Store};

use crate::mounts::Executor;
use crate::plan::{HostFiles, MountPlan};
use crate::spec::{Bind, CapMode, Net, RunSpec, Upper};
use crate::{Error, Result};

/// What the user asked for on the command line, on top of the env's stored config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// The command; empty = the image's entrypoint/cmd, else a shell (bash if present, else sh).
    pub argv: Vec<String>,
    /// `K=V` additions (after the image's and the env's).
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `USER[:GROUP]`, resolved in the image.
    pub user: Option<String>,
    /// Give the command a terminal (interactive shell).
    pub tty: bool,
    /// Overrides the env's hostname.
    pub hostname: Option<String>,
    /// See [`RunSpec::leave_teardown`]: for a one-shot run by a process that exits next.
    pub leave_teardown: bool,
}

/// The root of an ephemeral run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Layers bottom -> top.
    Layers(Vec<LayerId>),
    /// An image: its layers, and its config for the default command, env, workdir and user.
    Image(Box<joot_store::Image>),
    /// The host's own root as the single read-only lower.
    Host,
}

fn split_kv(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// The RunSpec of a run over `lowers` with `upper`, from the env config, the image config (if
/// known) and the request.
fn build_spec(
    store: &Store,
    lowers: Vec<PathBuf>,
    upper: Upper,
    default_hostname: &str,
    config: &EnvConfig,
    image: Option<&joot_store::ImageConfig>,
    req: &RunRequest,
) -> Result<RunSpec> {
    let mut argv = req.argv.clone();
    if argv.is_empty()
        && let Some(ic) = image
    {
        argv = ic.entrypoint.iter().chain(ic.cmd.iter()).cloned().collect();
    }
    let mut spec = RunSpec::new(lowers, store.mount_point(), argv);
    spec.rootfs.upper = upper;
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(ic) = image {
        env.extend(ic.env.iter().map(|s| split_kv(s)));
    }
    env.extend(config.env.iter().map(|s| split_kv(s)));
    env.extend(req.env.iter().cloned());
    spec.env = env;
    spec.cwd = req
        .workdir
        .clone()
        .or_else(|| config.workdir.clone())
        .or_else(|| image.and_then(|i| i.workdir.clone()));
    spec.user = req
        .user
        .clone()
        .or_else(|| config.user.clone())
        .or_else(|| image.and_then(|i| i.user.clone()))
        .filter(|u| !u.is_empty());
    spec.hostname = req
        .hostname
        .clone()
        .or_else(|| config.hostname.clone())
        .unwrap_or_else(|| default_hostname.to_string());
    spec.net = match config.net {
        NetMode::Host => Net::Host,
        NetMode::None => Net::None,
    };
    spec.caps = if config.privileged {
        CapMode::All
    } else {
        CapMode::Default
    };
    spec.tty = req.tty;
    spec.leave_teardown = req.leave_teardown;
    for b in &config.binds {
        spec.binds.push(Bind {
            src: b.src.clone(),
            dst: b.dst.to_string_lossy().into_owned(),
            ro: b.readonly,
            recursive: true,
        });
    }
    if config.bind_user {
        bind_user(&mut spec)?;
    }
    Ok(spec)
}

/// `--bind-user`: the invoking user (SUDO_UID when run through sudo) runs as themselves, with
/// their name and groups in the run's /etc/passwd and /etc/group (generated copies, see
/// [`crate::hostuser`]) and their home directory bound in.
fn bind_user(spec: &mut RunSpec) -> Result<()> {
    use crate::hostuser;
    let Some(user) = hostuser::host_user() else {
        return Err(Error::Invalid(
            "--bind-user: the invoking user has no entry in the host's /etc/passwd".into(),
        ));
    };
    let (uid, gid) = (user.entry.uid, user.entry.gid);
    if let Some(map) = &spec.idmap {
        // Rootless: the user's uid maps to itself (not to 0), the range around it.
        spec.idmap = Some(hostuser::bind_user_map(uid, gid, hostuser::sub_ranges(map)));
    }
    let mapped = |g: u32| spec.idmap.as_ref().is_none_or(|m| m.maps_gid(g));
    let mut dirs = Vec::new();
    if let Upper::Dir { upper, .. } = &spec.rootfs.upper {
        dirs.push(upper.clone());
    }
    dirs.extend(spec.rootfs.lowers.iter().rev().cloned());
    let passwd = hostuser::passwd_with(&hostuser::image_file(&dirs, "passwd"), &user.entry);
    let group = hostuser::group_with(
        &hostuser::image_file(&dirs, "group"),
        &user.entry.name,
        &user.groups,
        mapped,
    );
    spec.files.push(("/etc/passwd".into(), passwd.into_bytes()));
    spec.files.push(("/etc/group".into(), group.into_bytes()));
    spec.user = Some(format!("{uid}:{gid}"));
    let home = user.entry.home.clone();
    if hostuser::is_dir(&home) {
        spec.binds.push(Bind {
            src: home.clone().into(),
            dst: home.clone(),
            ro: false,
            recursive: true,
        });
        if spec.cwd.is_none() {
            spec.cwd = Some(home.clone());
        }
    }
    spec.env.push(("HOME".into(), home));
    spec.env.push(("USER".into(), user.entry.name.clone()));
    spec.env.push(("LOGNAME".into(), user.entry.name));
    Ok(())
}

fn lowers_of(store: &Store, layers: &[LayerId]) -> Vec<PathBuf> {
    layers.iter().map(|l| store.layer_root(l)).collect()
}

fn run_hook(env: &Env, upper: &Path) -> Result<()> {
    let Some(hook) = &env.config.hook else {
        return Ok(());
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", hook])
        .env("JOOT_ENV", env.name.as_str())
        .env("JOOT_ENV_UPPER", upper);
    tracing::debug!(hook = %hook, env = %env.name, "running host hook");
    let status = cmd.status().map_err(|source| Error::Io {
        context: format!("run the hook of env {}", env.name),
        source,
    })?;
    if !status.success() {
        return Err(Error::Invalid(format!(
            "the hook of env {} failed ({status}): fix it or remove it from the env config",
            env.name
        )));
    }
    Ok(())
}

/// Runs a command in env `env` (`joot run NAME`, `joot shell NAME`): takes the env lock (a
/// clear "busy" error if the env is running or mounted), runs its host hook, then the command
/// with the env's binds, network, variables, hostname (default: the env's name), workdir, user
/// and privileges. Returns the command's exit status.
pub fn run_env(store: &Store, env: &Env, req: &RunRequest) -> Result<i32> {
    let lock = store.lock_env(&env.name)?;
    let paths = lock.paths().clone();
    run_hook(env, &paths.upper)?;
    let (lowers, upper, image_cfg) = match &env.source {
        EnvSource::Image { name, layers } => (
            lowers_of(store, layers),
            Upper::Dir {
                upper: paths.upper.clone(),
                work: paths.work.clone(),
                volatile: false,
            },
            store.image(name).ok().map(|i| i.config),
        ),
        // Overlay refuses an upper inside its lower on the same filesystem ("overlapping
        // upperdir path"): a host-based env keeps its changes on the run's tmpfs only.
        EnvSource::Host => (vec![PathBuf::from("/")], host_upper(&paths), None),
    };
    let mut spec = build_spec(
        store,
        lowers,
        upper,
        env.name.as_str(),
        &env.config,
        image_cfg.as_ref(),
        req,
    )?;
    if env.source == EnvSource::Host {
        mask_store(store, &mut spec);
    }
    let code = crate::run(&spec);
    drop(lock);
    code
}

/// The upper of a host-based env: its own upper dir. (Overlay accepts an upper inside its
/// lower on the same filesystem here, Linux 6.18, tested; the store itself is masked inside
/// host-based runs, see [`mask_store`].)
fn host_upper(paths: &joot_store::EnvPaths) -> Upper {
    Upper::Dir {
        upper: paths.upper.clone(),
        work: paths.work.clone(),
        volatile: false,
    }
}

/// In a run over the host's root, hides the store (other envs' files, layers) behind an
/// empty read-only tmpfs.
fn mask_store(store: &Store, spec: &mut RunSpec) {
    if let Some(root) = store.root().to_str() {
        spec.masks.push(root.to_string());
    }
}

/// `joot run --rm`: runs over `base` with `config` and throws everything away. The upper and
/// work dirs live on a tmpfs inside the run's own mount namespace, so nothing is written to
/// disk and nothing is left to clean up, even after kill -9. (Measured: mounting that tmpfs
/// costs less than creating and removing a staging dir; see the crate's bench notes.)
pub fn run_ephemeral(
    store: &Store,
    base: &Base,
    config: &EnvConfig,
    req: &RunRequest,
) -> Result<i32> {
    let (lowers, image_cfg, default_host) = match base {
        Base::Layers(layers) => (lowers_of(store, layers), None, "joot".to_string()),
        Base::Image(image) => (
            lowers_of(store, &image.layers),
            Some(&image.config),
            image.name.to_string(),
        ),
        Base::Host => (vec![PathBuf::from("/")], None, "joot".to_string()),
    };
    let _lease = store.lease()?;
    let mut spec = build_spec(
        store,
        lowers,
        Upper::Tmpfs,
        &default_host,
        config,
        image_cfg,
        req,
    )?;
    if *base == Base::Host {
        mask_store(store, &mut spec);
    }
    crate::run(&spec)
}

/// Runs the env's named command `name` (from `commands:` in its config) inside it.
pub fn run_named(store: &Store, env: &Env, name: &str) -> Result<i32> {
    let script = env.config.commands.get(name).ok_or_else(|| {
        Error::Invalid(format!(
            "env {} has no command `{name}` (it has: {})",
            env.name,
            env.config
                .commands
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let req = RunRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.clone()],
        ..RunRequest::default()
    };
    run_env(store, env, &req)
}

/// `joot mount NAME`: mounts the env in the HOST's mount namespace (overlay with /proc, /sys,
/// /dev, /tmp, binds) under `store.run_dir(name)` and records it in the store. Returns the
/// root path for other tools. Needs root.
pub fn mount_env(store: &Store, env: &Env) -> Result<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Invalid(
            "joot mount needs root: mounts in the host's namespace are not possible for a plain user; use `joot run` or `joot shell`".into(),
        ));
    }
    let lock = store.lock_env(&env.name)?;
    let paths = lock.paths().clone();
    let (lowers, upper) = match &env.source {
        EnvSource::Image { layers, .. } => (
            lowers_of(store, layers),
            Upper::Dir {
                upper: paths.upper.clone(),
                work: paths.work.clone(),
                volatile: false,
            },
        ),
        EnvSource::Host => (vec![PathBuf::from("/")], host_upper(&paths)),
    };
    let mut spec = build_spec(
        store,
        lowers,
        upper,
        env.name.as_str(),
        &env.config,
        None,
        &RunRequest::default(),
    )?;
    spec.idmap = None;
    if env.source == EnvSource::Host {
        mask_store(store, &mut spec);
    }
    spec.mount_point = store.run_dir(&env.name);
    std::fs::create_dir_all(&spec.mount_point).map_err(|source| Error::Io {
        context: format!("create {}", spec.mount_point.display()),
        source,
    })?;
    crate::run::validate(&spec)?;
    let host = HostFiles {
        resolv_conf: std::fs::read("/etc/resolv.conf").ok(),
    };
    let plan = MountPlan::build(&spec, &host);
    let result = Executor::new_in_host(&spec.mount_point).and_then(|ex| ex.apply(&plan));
    if let Err(msg) = result {
        let _ = joot_sys::mount::detach(&cpath(&spec.mount_point));
        return Err(Error::Setup(msg));
    }
    let root = spec.mount_point.join("root");
    store.mark_mounted(&lock, &root)?;
    Ok(root)
}

fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// `joot umount NAME`: runs the env's `stop` command if it has one and `run_stop` is set,
/// then detaches everything `mount_env` mounted (one recursive lazy unmount of the scratch
/// mount under `run_dir`) and clears the mounted record.
pub fn umount_env(store: &Store, name: &Name, run_stop: bool) -> Result<()> {
    let env = store.env(name)?;
    if run_stop
        && let (Some(script), Some(root)) = (env.config.commands.get("stop"), store.mounted(name)?)
    {
        // The env is mounted: run `stop` over the mounted tree itself (a read-write bind),
        // so it sees the same files as the mounted env.
        let mut spec = build_spec(
            store,
            vec![root],
            Upper::None,
            name.as_str(),
            &env.config,
            None,
            &RunRequest {
                argv: vec!["/bin/sh".into(), "-c".into(), script.clone()],
                ..RunRequest::default()
            },
        )?;
        spec.binds.clear();
        spec.rootfs.upper = Upper::Shared;
        let code = crate::run(&spec)?;
        if code != 0 {
            tracing::warn!(env = %name, code, "the env's stop command failed; unmounting anyway");
        }
    }
    let lock = store.lock_env_allow_mounted(name)?;
    let dir = store.run_dir(name);
    match joot_sys::mount::detach(&cpath(&dir)) {
        Ok(()) => {}
        // Not mounted (EINVAL) or gone (ENOENT): nothing to undo.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {}
        Err(source) => {
            return Err(Error::Io {
                context: format!("unmount {}", dir.display()),
                source,
            });
        }
    }
    store.clear_mounted(&lock)?;
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

pub use crate::rootfs::with_rootfs;
