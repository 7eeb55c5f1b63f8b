//! The build loop: for each step, cache key -> lookup -> (miss) run the step in a fresh env
//! over the layers so far -> commit the env's upper dir as a new layer -> record the cache
//! entry. The image is published once, at the end, with one rename: a failed build changes no
//! image. Layers are created under a store lease, so a concurrent `gc` cannot sweep them
//! before the image (or a cache entry) references them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use joot_recipe::module::Module;
use joot_recipe::{CACHE_FORMAT, CacheEntry, KeyInputs, Recipe, Step, digest_path};
use joot_sandbox::{Bind, Rootfs, RunSpec, Upper};
use joot_store::{EnvConfig, EnvSource, Image, LayerId, Name, Origin, Replace, Store};

use crate::cache::{self, LastBuild};
use crate::error::{BuildError, IoAt, StepFailure};
use crate::hostroot::HostRoot;
use crate::report::{OutputSink, Reporter, StepInfo};
use crate::script::{self, HELPER_DIR, PackageManager};
use crate::tree;

/// Marks the env of a running step in its stored config (`env`), so an env left behind by a
/// killed build can be told from one kept with `--keep-failed` (which loses the mark).
pub const STEP_ENV_MARK: &str = "JOOT_BUILD_STEP=1";

/// How old an unlocked, marked step env must be before a build removes it as a leftover: a
/// step env is locked right after it is created, so this only has to cover that instant.
const LEFTOVER_AGE_SECS: u64 = 60;

/// Removes step envs left by killed builds (marked, not in use, older than a minute). Returns
/// their names.
pub fn remove_leftover_envs(store: &Store) -> Vec<Name> {
    let mut removed = Vec::new();
    let Ok(dir) = std::fs::read_dir(store.root().join("envs")) else {
        return removed;
    };
    for entry in dir.flatten() {
        let fname = entry.file_name();
        let Some(n) = fname.to_str().filter(|n| n.starts_with("build-")) else {
            continue;
        };
        let Ok(name) = Name::parse(n) else { continue };
        let Ok(env) = store.env(&name) else { continue };
        let marked = env.config.env.iter().any(|e| e == STEP_ENV_MARK);
        if marked
            && now().saturating_sub(env.created) > LEFTOVER_AGE_SECS
            && store.remove_env(&name, true).is_ok()
        {
            removed.push(name);
        }
    }
    removed
}

/// A validated build request: what `joot build` turns its arguments into before anything runs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The checked recipe.
    pub recipe: Recipe,
    /// The image to publish.
    pub image: Name,
    /// Ignore cache hits (entries are still written).
    pub no_cache: bool,
    /// Keep the env of a failed step.
    pub keep_failed: bool,
    /// Report why each step was or was not cached.
    pub explain_cache: bool,
    /// Clamp timestamps of new files to this (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
}

impl BuildOptions {
    /// Loads and checks the recipe at `path` (every error with its line and column), and
    /// settles the image name: `name` (from `--name`) else the recipe's `name:`.
    pub fn new(
        path: &Path,
        name: Option<&str>,
        module_dirs: Vec<PathBuf>,
    ) -> Result<BuildOptions, BuildError> {
        let recipe = joot_recipe::load(path, &joot_recipe::ParseOptions { module_dirs })?;
        let image = match name.or(recipe.name.as_deref()) {
            Some(n) => Name::parse(n)?,
            None => {
                return Err(BuildError::NoName {
                    recipe: path.to_path_buf(),
                });
            }
        };
        let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        Ok(BuildOptions {
            recipe,
            image,
            no_cache: false,
            keep_failed: false,
            explain_cache: false,
            source_date_epoch,
        })
    }
}

/// What a build starts from, resolved by the caller (`from:` names an image, a distro spec the
/// caller bootstraps, or a tarball the caller imports).
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// What `from:` said, for messages and origins.
    pub label: String,
    /// The base's image (its layers, distro and config are inherited).
    pub image: Image,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub index: usize,
    pub module: String,
    pub cached: bool,
    pub layer: LayerId,
    pub elapsed: Duration,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The published image.
    pub image: Image,
    pub steps: Vec<StepOutcome>,
    pub elapsed: Duration,
    /// Where the build's output was written.
    pub log: PathBuf,
}

impl BuildOutcome {
    /// True when every step came from the cache.
    pub fn all_cached(&self) -> bool {
        self.steps.iter().all(|s| s.cached)
    }
}

/// Builds `opts.recipe` on `base` and publishes `opts.image`.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    base: &BaseImage,
    reporter: &mut dyn Reporter,
) -> Result<BuildOutcome, BuildError> {
    let started = Instant::now();
    let _lease = store.lease()?;
    for name in remove_leftover_envs(store) {
        reporter.note(&format!("removed env {name}, left by an interrupted build"));
    }
    let recipe = &opts.recipe;
    let total = recipe.steps.len();
    let log_path = cache::log_path(store, opts.image.as_str());
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let mut log = File::create(&log_path).at(&log_path)?;
    let _ = writeln!(
        log,
        "joot build {} -> image {} (from {})",
        recipe.path.display(),
        opts.image,
        base.label
    );

    let previous = cache::last_build(store, opts.image.as_str());
    let mut this_build = LastBuild::default();
    let mut layers = base.image.layers.clone();
    let mut parent = match layers.last() {
        Some(top) => format!("layer:{top}"),
        None => "scratch".to_string(),
    };
    let pm = PackageManager::from_distro(
        base.image
            .distro
            .as_ref()
            .map(|d| d.package_manager.as_str()),
    );
    let recipe_json = recipe.to_json();
    let mut outcomes = Vec::new();

    for step in &recipe.steps {
        let info = StepInfo {
            index: step.index,
            total,
            module: step.module.kind().to_string(),
            summary: step.module.summary(),
        };
        let mut files = Vec::new();
        for input in step.inputs() {
            let d = digest_path(&input.path).at(&input.path)?;
            files.push((input.label, d));
        }
        let inputs = KeyInputs::new(&parent, step, files);
        let key = inputs.key();
        let hit = if opts.no_cache {
            None
        } else {
            cache::lookup(store, &key)
        };
        if opts.explain_cache {
            let reasons = explain(
                opts,
                hit.is_some(),
                &inputs,
                previous.steps.get(step.index - 1),
            );
            reporter.explain(&info, &reasons);
        }
        this_build.steps.push(inputs.clone());
        if let Some((_, layer)) = hit {
            reporter.step_cached(&info, layer.as_str());
            let _ = writeln!(
                log,
                "[{}/{}] {} (cached: layer {layer})",
                step.index, total, info.summary
            );
            layers.push(layer.clone());
            outcomes.push(StepOutcome {
                index: step.index,
                module: info.module.clone(),
                cached: true,
                layer: layer.clone(),
                elapsed: Duration::ZERO,
            });
            parent = format!("layer:{layer}");
            continue;
        }

        reporter.step_started(&info);
        let _ = writeln!(log, "[{}/{}] {}", step.index, total, info.summary);
        let t0 = Instant::now();
        let ctx = StepCtx {
            store,
            opts,
            base,
            layers: &layers,
            step,
            total,
            pm,
            recipe_json: &recipe_json,
        };
        let sink = reporter.output_sink(&info);
        match run_step(&ctx, &mut log, &log_path, sink) {
            Ok(layer) => {
                let elapsed = t0.elapsed();
                cache::record(
                    store,
                    &CacheEntry {
                        format: CACHE_FORMAT,
                        key: key.clone(),
                        layer: layer.to_string(),
                        inputs,
                        summary: info.summary.clone(),
                        created: now(),
                    },
                )?;
                reporter.step_finished(&info, elapsed, layer.as_str());
                let _ = writeln!(
                    log,
                    "[{}/{}] done in {:.1} s: layer {layer}",
                    step.index,
                    total,
                    elapsed.as_secs_f64()
                );
                layers.push(layer.clone());
                outcomes.push(StepOutcome {
                    index: step.index,
                    module: info.module.clone(),
                    cached: false,
                    layer: layer.clone(),
                    elapsed,
                });
                parent = format!("layer:{layer}");
            }
            Err(e) => {
                let elapsed = t0.elapsed();
                let tail = match &e {
                    BuildError::StepFailed(f) => f.tail.clone(),
                    other => other.to_string(),
                };
                reporter.step_failed(&info, elapsed, &tail);
                let _ = writeln!(log, "[{}/{}] failed: {e}", step.index, total);
                return Err(e);
            }
        }
    }

    let mut image = Image::new(opts.image.clone(), layers);
    image.config = base.image.config.clone();
    image.distro = base.image.distro.clone();
    image.parent = Some(base.image.name.to_string());
    store.put_image(&image, Replace::Yes)?;
    let _ = cache::save_last_build(store, opts.image.as_str(), &this_build);
    let elapsed = started.elapsed();
    let _ = writeln!(
        log,
        "image {} published ({} layers) in {:.1} s",
        opts.image,
        image.layers.len(),
        elapsed.as_secs_f64()
    );
    Ok(BuildOutcome {
        image,
        steps: outcomes,
        elapsed,
        log: log_path,
    })
}

fn explain(
    opts: &BuildOptions,
    hit: bool,
    inputs: &KeyInputs,
    previous: Option<&KeyInputs>,
) -> Vec<String> {
    if hit {
        return vec!["cached: no input changed".into()];
    }
    if opts.no_cache {
        return vec!["--no-cache: the cache is not consulted".into()];
    }
    match previous {
        None => vec!["no earlier build of this image had this step".into()],
        Some(old) if old == inputs => {
            vec!["inputs unchanged, but the cached layer is gone (removed by gc?)".into()]
        }
        Some(old) => inputs.explain(old),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct StepCtx<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    base: &'a BaseImage,
    layers: &'a [LayerId],
    step: &'a Step,
    total: usize,
    pm: PackageManager,
    recipe_json: &'a serde_json::Value,
}

/// A step's env: removed on drop unless kept.
struct StepEnv<'a> {
    store: &'a Store,
    name: Name,
    keep: bool,
}

impl Drop for StepEnv<'_> {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = self.store.remove_env(&self.name, true)
        {
            tracing::warn!(env = %self.name, error = %e, "cannot remove build env");
        }
    }
}

fn env_name(image: &Name, index: usize) -> Result<Name, BuildError> {
    let token = hex::encode(&sha2_rand()[..4]);
    let prefix: String = image.as_str().chars().take(40).collect();
    Ok(Name::parse(&format!("build-{prefix}-{index}-{token}"))?)
}

fn sha2_rand() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    h.finalize().to_vec()
}

/// Runs one step in a fresh env and commits its upper dir as a layer.
fn run_step(
    ctx: &StepCtx<'_>,
    log: &mut File,
    log_path: &Path,
    sink: Option<OutputSink>,
) -> Result<LayerId, BuildError> {
    let store = ctx.store;
    let name = env_name(&ctx.opts.image, ctx.step.index)?;
    store.create_env(
        &name,
        EnvSource::Image {
            name: ctx.base.image.name.clone(),
            layers: ctx.layers.to_vec(),
        },
        EnvConfig {
            env: vec![STEP_ENV_MARK.to_string()],
            ..EnvConfig::default()
        },
    )?;
    let mut env = StepEnv {
        store,
        name: name.clone(),
        keep: false,
    };
    let lock = store.lock_env(&name)?;
    let paths = lock.paths().clone();
    let lowers: Vec<PathBuf> = ctx.layers.iter().map(|l| store.layer_root(l)).collect();

    // The helper dir: sources for the step and its output, bound at HELPER_DIR inside.
    let staging = store.stage()?;
    let helper = staging.path().join("helper");
    let src_dir = helper.join("src");
    std::fs::create_dir_all(&src_dir).at(&src_dir)?;
    set_mode(&helper, 0o755)?;
    set_mode(&src_dir, 0o755)?;
    let out_path = helper.join("log");
    File::create(&out_path).at(&out_path)?;
    set_mode(&out_path, 0o666)?;

    let index = ctx.step.index;
    let module = ctx.step.module.kind().to_string();
    let follower = sink.map(|sink| Follower::start(out_path.clone(), sink));
    let result: Result<StepRun, BuildError> = match &ctx.step.module {
        Module::Hostname(h) => tree::set_hostname(&paths.upper, &lowers, &h.name)
            .map(|()| StepRun::Ok)
            .map_err(|e| BuildError::Sandbox {
                index,
                module: module.clone(),
                reason: e.to_string(),
            }),
        Module::Custom(c) => {
            let cfg = staging.path().join("config.json");
            let json = serde_json::json!({ "with": c.with, "recipe": ctx.recipe_json });
            std::fs::write(&cfg, serde_json::to_vec_pretty(&json).unwrap_or_default()).at(&cfg)?;
            let root = mount_host_root(store, &name, &lowers, &paths, index, &module)?;
            let mut cmd = std::process::Command::new(&c.exe);
            cmd.arg(&c.name)
                .arg(root.path())
                .arg(&cfg)
                .current_dir(&ctx.opts.recipe.dir)
                .env("JOOT_MODULE", &c.name)
                .env("JOOT_BUILD_ROOT", root.path())
                .env("JOOT_RECIPE_DIR", &ctx.opts.recipe.dir);
            host_command(cmd, &out_path, index, &module)
        }
        Module::Ansible(a) => {
            let root = mount_host_root(store, &name, &lowers, &paths, index, &module)?;
            let home = staging.path().join("ansible");
            std::fs::create_dir_all(&home).at(&home)?;
            let mut cmd = std::process::Command::new("ansible-playbook");
            cmd.arg("-i")
                .arg(format!("{},", root.path().display()))
                .args(["-c", "community.general.chroot"]);
            if !a.extra_vars.is_empty() {
                cmd.arg("--extra-vars")
                    .arg(serde_json::to_string(&a.extra_vars).unwrap_or_default());
            }
            cmd.arg(&a.playbook_path)
                .current_dir(&ctx.opts.recipe.dir)
                .env("ANSIBLE_HOME", &home)
                .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
                .env("ANSIBLE_NOCOLOR", "1")
                .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
                .env("ANSIBLE_HOST_KEY_CHECKING", "0");
            host_command(cmd, &out_path, index, &module)
        }
        inside => {
            let (shell, script, run) = inside_script(ctx, inside, &src_dir)?;
            let mut argv = vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                format!("exec >>{HELPER_DIR}/log 2>&1 </dev/null; exec \"$@\""),
                "joot-step".to_string(),
            ];
            argv.extend([shell, "-e".into(), "-c".into(), script]);
            let mut spec = RunSpec::new(lowers.clone(), store.mount_point(), argv);
            spec.rootfs = Rootfs {
                lowers: lowers.clone(),
                upper: Upper::Dir {
                    upper: paths.upper.clone(),
                    work: paths.work.clone(),
                    volatile: false,
                },
            };
            spec.hostname = "joot-build".into();
            spec.binds.push(Bind {
                src: helper.clone(),
                dst: HELPER_DIR.into(),
                ro: false,
                recursive: false,
            });
            if let Some(r) = run {
                spec.env = r.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                spec.user = r.user.clone();
                spec.cwd = r.workdir.clone();
            }
            match joot_sandbox::run(&spec) {
                Ok(0) => Ok(StepRun::Ok),
                Ok(code) => Ok(StepRun::Failed(exit_status(code))),
                Err(e) => Err(BuildError::Sandbox {
                    index,
                    module: module.clone(),
                    reason: e.to_string(),
                }),
            }
        }
    };

    drop(follower);

    // Files the sandbox provides at run time go into the layer from here.
    let result = match (result, &ctx.step.module) {
        (Ok(StepRun::Ok), Module::Files(f)) => {
            runtime_files(&f.entries, &paths.upper, &lowers, &src_dir)
                .map(|()| StepRun::Ok)
                .map_err(|reason| BuildError::Sandbox {
                    index,
                    module: module.clone(),
                    reason,
                })
        }
        (other, _) => other,
    };

    // Copy the step's output into the build log whatever happened.
    let output = std::fs::read(&out_path).unwrap_or_default();
    let _ = log.write_all(&output);
    match result? {
        StepRun::Ok => {}
        StepRun::Failed(status) => {
            if ctx.opts.keep_failed {
                // Kept for the user: no longer a step env a later build may sweep.
                store.set_env_config(&lock, EnvConfig::default())?;
                env.keep = true;
            }
            drop(lock);
            return Err(BuildError::StepFailed(Box::new(StepFailure {
                index,
                total: ctx.total,
                module,
                status,
                tail: tail(&output, 20),
                kept_env: ctx.opts.keep_failed.then(|| name.to_string()),
                log: log_path.to_path_buf(),
            })));
        }
    }

    // Commit: the upper dir becomes the layer's root (a rename, no copy).
    let builder = store.new_layer()?;
    let root = builder.root();
    std::fs::remove_dir(&root).at(&root)?;
    std::fs::rename(&paths.upper, &root).at(&paths.upper)?;
    std::fs::create_dir(&paths.upper).at(&paths.upper)?;
    if let Some(epoch) = ctx.opts.source_date_epoch {
        tree::clamp_mtimes(&root, epoch).at(&root)?;
    }
    let id = builder.publish(Origin::Recipe {
        recipe: ctx.opts.recipe.path.display().to_string(),
        step_index: index,
        module: module.clone(),
    })?;
    drop(lock);
    drop(env);
    Ok(id)
}

/// Mounts the step's root on the host for a host-side module, with an error that says why.
fn mount_host_root(
    store: &Store,
    env: &Name,
    lowers: &[PathBuf],
    paths: &joot_store::EnvPaths,
    index: usize,
    module: &str,
) -> Result<HostRoot, BuildError> {
    let target = store.run_dir(env);
    let userxattr = store.xattr_ns() == joot_store::XattrNs::User;
    HostRoot::mount(lowers, &paths.upper, &paths.work, &target, userxattr).map_err(|e| {
        let hint = if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) {
            " (custom modules and ansible steps work on the image root mounted on the host, which needs root)"
        } else {
            ""
        };
        BuildError::Sandbox {
            index,
            module: module.to_string(),
            reason: format!("cannot mount the image root at {}: {e}{hint}", target.display()),
        }
    })
}

/// Follows a step's output file from a thread and hands each new line to a sink; stops (after
/// a last read) when dropped.
struct Follower {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    fn start(path: PathBuf, mut sink: OutputSink) -> Follower {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let Ok(file) = File::open(&path) else { return };
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                let done = flag.load(Ordering::Acquire);
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            // apt's progress uses carriage returns: show the last part.
                            let text = line.trim_end().rsplit('\r').next().unwrap_or("").trim();
                            if !text.is_empty() {
                                sink(text);
                            }
                        }
                    }
                }
                if done {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Follower {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum StepRun {
    Ok,
    Failed(String),
}

fn exit_status(code: i32) -> String {
    if code > 128 {
        format!("killed by signal {}", code - 128)
    } else {
        format!("exit status {code}")
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).at(p)
}

/// The interpreter and script of a step that runs inside the env; sources it reads are copied
/// into `src_dir` (seen inside as `HELPER_DIR/src/<n>`).
fn inside_script<'m>(
    ctx: &StepCtx<'_>,
    module: &'m Module,
    src_dir: &Path,
) -> Result<(String, String, Option<&'m joot_recipe::module::Run>), BuildError> {
    let sh = "/bin/sh".to_string();
    Ok(match module {
        Module::Run(r) => (r.shell.clone().unwrap_or(sh), r.script.clone(), Some(r)),
        Module::Packages(p) => (sh, script::packages(p, ctx.pm), None),
        Module::Users(u) => (sh, script::users(&u.users), None),
        Module::Services(s) => (sh, script::services(s), None),
        Module::Files(f) => {
            for (i, e) in f.entries.iter().enumerate() {
                let dst = src_dir.join(i.to_string());
                match (&e.src_path, &e.content) {
                    (Some(src), _) => copy_tree(src, &dst)?,
                    (None, Some(content)) => std::fs::write(&dst, content).at(&dst)?,
                    (None, None) => {}
                }
            }
            (sh, script::files(&f.entries), None)
        }
        Module::Puppet(p) => {
            copy_tree(&p.manifest_path, &src_dir.join("0"))?;
            if let Some(m) = &p.modulepath_path {
                copy_tree(m, &src_dir.join("1"))?;
            }
            (sh, script::puppet(p), None)
        }
        Module::Hostname(_) | Module::Custom(_) | Module::Ansible(_) => {
            return Err(BuildError::Sandbox {
                index: ctx.step.index,
                module: module.kind().to_string(),
                reason: "this module runs on the host, not inside the env".into(),
            });
        }
    })
}

/// Writes the `files` entries whose destination the sandbox binds at run time (/etc/hosts,
/// /etc/hostname, /etc/resolv.conf) straight into the step's upper dir. Owners are resolved in
/// the image's /etc/passwd and /etc/group.
fn runtime_files(
    entries: &[joot_recipe::module::FileEntry],
    upper: &Path,
    lowers: &[PathBuf],
    src_dir: &Path,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (i, e) in entries.iter().enumerate() {
        if !script::is_runtime_file(&e.dst) {
            continue;
        }
        let src = src_dir.join(i.to_string());
        let data = std::fs::read(&src).map_err(|err| format!("{}: {err}", e.dst))?;
        let mode = match (&e.mode, &e.src_path) {
            (Some(m), _) => m.0,
            (None, Some(p)) => std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644),
            (None, None) => 0o644,
        };
        let rel = Path::new(e.dst.trim_start_matches('/'));
        tree::write_in_upper(upper, lowers, rel, &data, mode)
            .map_err(|err| format!("cannot write {}: {err}", e.dst))?;
        if let Some(owner) = &e.owner {
            let (uid, gid) = resolve_owner(owner, lowers)?;
            std::os::unix::fs::lchown(upper.join(rel), Some(uid), Some(gid))
                .map_err(|err| format!("cannot chown {}: {err}", e.dst))?;
        }
    }
    Ok(())
}

/// `user[:group]` to numeric ids through the image's own account files.
fn resolve_owner(
    owner: &joot_recipe::module::Owner,
    lowers: &[PathBuf],
) -> Result<(u32, u32), String> {
    let read = |rel: &str| {
        tree::lookup(lowers, Path::new(rel))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let passwd = read("etc/passwd");
    let group = read("etc/group");
    let field = |text: &str, name: &str, n: usize| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(n)?.parse().ok())
    };
    let uid = owner
        .user
        .parse()
        .ok()
        .or_else(|| field(&passwd, &owner.user, 2))
        .ok_or_else(|| format!("user `{}` does not exist in the image", owner.user))?;
    let gid = match &owner.group {
        Some(g) => g
            .parse()
            .ok()
            .or_else(|| field(&group, g, 2))
            .ok_or_else(|| format!("group `{g}` does not exist in the image"))?,
        None => field(&passwd, &owner.user, 3).unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Copies a file or a directory tree (symlinks as symlinks, modes kept).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), BuildError> {
    let m = std::fs::symlink_metadata(src).at(src)?;
    if m.is_dir() {
        std::fs::create_dir_all(dst).at(dst)?;
        std::fs::set_permissions(dst, m.permissions()).at(dst)?;
        for e in std::fs::read_dir(src).at(src)? {
            let e = e.at(src)?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
    } else if m.file_type().is_symlink() {
        let t = std::fs::read_link(src).at(src)?;
        std::os::unix::fs::symlink(t, dst).at(dst)?;
    } else {
        std::fs::copy(src, dst).at(src)?;
    }
    Ok(())
}

/// Runs a host command (custom module, ansible) with its output in `out`.
fn host_command(
    mut cmd: std::process::Command,
    out: &Path,
    index: usize,
    module: &str,
) -> Result<StepRun, BuildError> {
    let f = std::fs::OpenOptions::new().append(true).open(out).at(out)?;
    let f2 = f.try_clone().at(out)?;
    cmd.stdin(std::process::Stdio::null()).stdout(f).stderr(f2);
    tracing::debug!(argv = ?cmd, "running host step");
    // While the module runs, SIGINT/SIGTERM/SIGHUP go to it instead of killing joot, so the
    // step fails normally and its mount and env are cleaned up.
    let status = cmd.spawn().and_then(|mut child| {
        let _ = joot_sys::signal::forward_to(child.id() as i32);
        let status = child.wait();
        joot_sys::signal::stop_forwarding();
        status
    });
    match status {
        Ok(s) if s.success() => Ok(StepRun::Ok),
        Ok(s) => Ok(StepRun::Failed(match s.code() {
            Some(c) => format!("exit status {c}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", s.signal().unwrap_or(0))
            }
        })),
        Err(e) => Err(BuildError::Sandbox {
            index,
            module: module.to_string(),
            reason: format!("cannot execute {:?}: {e}", cmd.get_program()),
        }),
    }
}

/// The last `n` lines of `output`.
fn tail(output: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
