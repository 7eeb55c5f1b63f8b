//! joot-bootstrap: distribution base images, made by the distribution's own installer into a
//! store layer. Debian and Ubuntu through mmdebstrap (debootstrap when mmdebstrap is missing),
//! the RPM family through `dnf --installroot`.
//!
//! The flow is flat, in the manner of mkosi's `build_image()`: parse and validate everything
//! ([`Spec::parse`], [`Options::new`]) before touching anything; check root and tools; lock the
//! distribution's package cache; fingerprint the mirror's index and reuse an identical earlier
//! bootstrap if there is one (see [`cache`]); otherwise run the installer into a fresh
//! [`joot_store::LayerBuilder`] with the package cache wired in, apply joot's chroot
//! [`conventions`], publish the layer and then the image with its [`joot_store::Distro`]
//! record. Any error drops the builder, which removes its staging directory; a killed run
//! leaves a staging directory without mounts that `joot gc` removes (see [`tool`]).
//!
//! Public API:
//! ```text
//! Spec::parse(&str) -> Result<Spec>;  Spec::is_spec(&str) -> bool;  Spec::default_image_name()
//! Options::new(Spec, &Request, &Defaults) -> Result<Options>   // all validation, no side effects
//! bootstrap(&Store, &Options, &dyn Reporter) -> Result<Outcome>
//! ensure_image(&Store, &Spec, &Defaults, &dyn Reporter) -> Result<Image>  // for run/create --from
//! distro::list() -> Vec<DistroSummary>                          // `joot bootstrap --list`
//! conventions::{install_guards, remove_install_guards, POLICY_RC_D}
//! ```

pub mod cache;
pub mod conventions;
pub mod debian;
pub mod distro;
pub mod error;
pub mod report;
pub mod rpm;
pub mod spec;
pub mod tool;

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use joot_store::{Image, LayerId, Origin, Replace, Store};

pub use distro::{DistroSummary, Family, list};
pub use error::{Error, Result};
pub use report::{Phase, Reporter, Silent};
pub use spec::{Arch, Defaults, Installer, Options, Request, Spec};

use crate::debian::Event;

/// What a bootstrap did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub image: Image,
    pub layer: LayerId,
    /// The layer of an earlier identical bootstrap was reused.
    pub reused: bool,
    /// The installer that ran (or made the reused layer).
    pub tool: &'static str,
    /// Packages the installer configured (0 when reused).
    pub packages: u64,
    /// Bytes of packages downloaded into the cache by this run.
    pub downloaded_bytes: u64,
    /// Bytes of index files fetched to fingerprint the mirror.
    pub index_bytes: u64,
    pub elapsed: Duration,
}

fn installer_tool(o: &Options) -> Result<tool::Tool> {
    match o.spec.family() {
        Family::Rpm => {
            rpm::DNF.check()?;
            Ok(rpm::DNF)
        }
        Family::Debian => {
            // Forcing debootstrap is for testing the fallback and for users who prefer it.
            if std::env::var_os("JOOT_DEBIAN_INSTALLER").is_some_and(|v| v == "debootstrap") {
                debian::DEBOOTSTRAP.check()?;
                return Ok(debian::DEBOOTSTRAP);
            }
            if debian::MMDEBSTRAP.is_present() {
                return Ok(debian::MMDEBSTRAP);
            }
            if debian::DEBOOTSTRAP.is_present() {
                tracing::warn!("mmdebstrap not found, falling back to debootstrap");
                return Ok(debian::DEBOOTSTRAP);
            }
            debian::MMDEBSTRAP.check()?;
            unreachable!("check fails when find does")
        }
    }
}

/// Bootstraps `o` into the store and publishes the image `o.name`.
pub fn bootstrap(store: &Store, o: &Options, rep: &dyn Reporter) -> Result<Outcome> {
    let start = Instant::now();
    let rep = &PhaseOnce {
        inner: rep,
        last: Cell::new(None),
    };
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    if !o.replace && store.image(&o.name).is_ok() {
        return Err(Error::ImageExists(o.name.to_string()));
    }
    let tool = installer_tool(o)?;
    tool::SETPRIV.check()?;
    tool::UNSHARE.check()?;
    let cache = cache::Cache::open(store, o.spec.distro.id, &o.spec.release, || {
        rep.phase(Phase::WaitCache)
    })?;

    rep.phase(Phase::CheckIndex);
    let scratch = store.stage()?;
    let fingerprint = cache::fetch_fingerprint(&cache::index_urls(o), scratch.path());
    let index_bytes = fingerprint.as_ref().map_or(0, |(_, n)| *n);
    let key = fingerprint.map(|(d, _)| {
        let tool_id = format!(
            "{} {}",
            tool.name,
            cache::host_package_version(tool.package)
        );
        cache::result_key(o, &tool_id, &d)
    });
    if let (Some(key), false) = (&key, o.fresh) {
        let lease = store.lease()?;
        if let Some(layer) = cache::lookup(store, key) {
            rep.phase(Phase::Reuse);
            let image = publish_image(store, o, &layer)?;
            drop(lease);
            return Ok(Outcome {
                image,
                layer,
                reused: true,
                tool: tool.name,
                packages: 0,
                downloaded_bytes: 0,
                index_bytes,
                elapsed: start.elapsed(),
            });
        }
    }

    let builder = store.new_layer()?;
    let root = builder.root();
    let before = cache::package_files(cache.base());
    let mut packages = 0u64;
    let mut bytes = 0u64;
    let (mut planned_before, mut plan_now) = (0u64, 0u64);
    let (mut cur_phase, mut plan_phase) = (None, None);
    let mut on_line = |line: &str| {
        rep.output(line);
        let ev = match o.spec.family() {
            Family::Debian => debian::parse_line(line),
            Family::Rpm => rpm::parse_line(line),
        };
        match ev {
            Some(Event::Phase(p)) => {
                cur_phase = Some(p);
                rep.phase(p);
            }
            Some(Event::Package(name)) => {
                packages += 1;
                rep.package(&name, packages);
            }
            Some(Event::Bytes(n)) => {
                bytes += n;
                rep.bytes(bytes);
            }
            // apt may print the same plan twice within a step (download, then install):
            // plans add up across phases, and within one phase the largest counts.
            Some(Event::Planned(n)) => {
                if plan_phase != cur_phase {
                    planned_before += plan_now;
                    plan_now = 0;
                    plan_phase = cur_phase;
                }
                plan_now = plan_now.max(n);
                rep.planned(planned_before + plan_now);
            }
            None => {}
        }
    };
    let env = vec![
        ("LC_ALL".to_string(), "C.UTF-8".to_string()),
        (
            debian::ENV_DEBS.to_string(),
            cache.debs().display().to_string(),
        ),
        (
            debian::ENV_LISTS.to_string(),
            cache.lists().display().to_string(),
        ),
    ];
    match &o.installer {
        Installer::Debian(p) => {
            rep.phase(Phase::Update);
            let argv = if tool.name == debian::MMDEBSTRAP.name {
                debian::mmdebstrap_argv(o, p, &root)
            } else {
                debian::debootstrap_argv(o, p, &root, &cache.debs()).ok_or_else(|| {
                    error::invalid(
                        "variant",
                        o.variant.clone(),
                        "debootstrap (used because mmdebstrap is missing) knows minbase, buildd and important; install mmdebstrap",
                    )
                })?
            };
            tool::run_streaming(&tool::isolated(&argv), &env, &mut on_line)?;
            if tool.name == debian::DEBOOTSTRAP.name {
                // debootstrap leaves the packages and the lists in the tree; mmdebstrap's
                // cleanup removes them (they live in joot's cache instead).
                let r = conventions::open_root(&root)?;
                conventions::clear_dir(&r, "var/cache/apt/archives", &["lock"])?;
                conventions::clear_dir(&r, "var/lib/apt/lists", &["lock"])?;
            }
        }
        Installer::Rpm(p) => {
            let conf = scratch.path().join("dnf");
            fs_err::create_dir_all(conf.join("repos.d"))?;
            fs_err::create_dir_all(conf.join("home"))?;
            fs_err::write(conf.join("dnf.conf"), rpm::dnf_conf(p))?;
            fs_err::write(conf.join("repos.d/joot.repo"), rpm::repo_file(p, false))?;
            fs_err::write(conf.join("home/.rpmmacros"), rpm::RPMMACROS)?;
            let mut env = env;
            env.push(("HOME".into(), conf.join("home").display().to_string()));
            rep.phase(Phase::Update);
            let argv = rpm::dnf_argv(o, p, &root, &conf, &cache.dnf());
            tool::run_streaming(&tool::isolated(&argv), &env, &mut on_line)?;
            tidy_rpm_root(&root, &cache.dnf(), o, p)?;
        }
    }
    rep.phase(Phase::Finish);
    let sources = match &o.installer {
        Installer::Debian(p) => p.sources.clone(),
        Installer::Rpm(_) => Vec::new(),
    };
    conventions::apply(&root, o.spec.family(), &sources)?;
    let downloaded_bytes = cache::new_package_bytes(&before, cache.base());
    if o.spec.family() == Family::Debian {
        // Pruning is housekeeping: a tree without a readable status file only skips it.
        let r = conventions::open_root(&root)?;
        if let Ok(status) = conventions::read_file(&r, "var/lib/dpkg/status") {
            cache::prune_debs(&cache.debs(), &String::from_utf8_lossy(&status));
        }
    }

    rep.phase(Phase::Publish);
    let lease = store.lease()?;
    let layer = builder.publish(Origin::Bootstrap { spec: describe(o) })?;
    let image = publish_image(store, o, &layer)?;
    drop(lease);
    if let Some(key) = &key {
        cache::record(store, key, &layer, &o.spec.to_string())?;
    }
    Ok(Outcome {
        image,
        layer,
        reused: false,
        tool: tool.name,
        packages,
        downloaded_bytes,
        index_bytes,
        elapsed: start.elapsed(),
    })
}

/// Passes each phase on once: the installers announce some phases more than once (essential
/// then remaining packages), and joot announces some itself.
struct PhaseOnce<'a> {
    inner: &'a dyn Reporter,
    last: Cell<Option<Phase>>,
}

impl Reporter for PhaseOnce<'_> {
    fn phase(&self, phase: Phase) {
        if self.last.replace(Some(phase)) != Some(phase) {
            self.inner.phase(phase);
        }
    }
    fn package(&self, name: &str, done: u64) {
        self.inner.package(name, done);
    }
    fn bytes(&self, downloaded: u64) {
        self.inner.bytes(downloaded);
    }
    fn planned(&self, total: u64) {
        self.inner.planned(total);
    }
    fn output(&self, line: &str) {
        self.inner.output(line);
    }
}

/// A one-line description for the layer's origin.
fn describe(o: &Options) -> String {
    let mut s = format!(
        "{} variant={} arch={}",
        o.spec,
        o.variant,
        o.arch.name(o.spec.family())
    );
    if !o.packages.is_empty() {
        s.push_str(&format!(" include={}", o.packages.join(",")));
    }
    s
}

fn publish_image(store: &Store, o: &Options, layer: &LayerId) -> Result<Image> {
    let mut image = Image::new(o.name.clone(), vec![layer.clone()]);
    image.distro = Some(o.distro());
    let replace = if o.replace { Replace::Yes } else { Replace::No };
    match store.put_image(&image, replace) {
        Err(joot_store::Error::AlreadyExists { .. }) => {
            return Err(Error::ImageExists(o.name.to_string()));
        }
        r => r?,
    }
    Ok(image)
}

/// Removes what dnf leaves in the root that does not belong to the system: the empty copy of
/// its host-side cachedir and its logs. Writes `/etc/yum.repos.d/joot.repo` when the repos are
/// not the distribution's own (whose release package ships repo files).
fn tidy_rpm_root(root: &Path, cachedir: &Path, o: &Options, p: &spec::RpmPlan) -> Result<()> {
    let r = conventions::open_root(root)?;
    if let Ok(rel) = cachedir.strip_prefix("/") {
        let inside = root.join(rel);
        if inside.starts_with(root) && inside.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            fs_err::remove_dir_all(&inside)?;
            let mut dir = inside.parent();
            while let Some(d) = dir {
                if d == root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
    }
    for log in ["dnf.log", "dnf.librepo.log", "dnf.rpm.log", "hawkey.log"] {
        conventions::remove_file(&r, &format!("var/log/{log}"))?;
    }
    let own: Vec<&str> = o.spec.distro.repos.to_vec();
    let used: Vec<&str> = p.repos.iter().map(|r| r.baseurl.as_str()).collect();
    if own != used {
        conventions::write_file(
            &r,
            "etc/yum.repos.d/joot.repo",
            rpm::repo_file(p, true).as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// Returns the image for `spec` under its default name, bootstrapping it first when the store
/// has none (what `joot run --from debian:bookworm` and `joot create` call).
pub fn ensure_image(
    store: &Store,
    spec: &Spec,
    defaults: &Defaults,
    rep: &dyn Reporter,
) -> Result<Image> {
    let o = Options::new(spec.clone(), &Request::default(), defaults)?;
    if let Ok(image) = store.image(&o.name) {
        return Ok(image);
    }
    match bootstrap(store, &o, rep) {
        Ok(out) => Ok(out.image),
        // Another process bootstrapped it meanwhile.
        Err(Error::ImageExists(_)) => Ok(store.image(&o.name)?),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Record(RefCell<Vec<Phase>>);

    impl Reporter for Record {
        fn phase(&self, phase: Phase) {
            self.0.borrow_mut().push(phase);
        }
    }

    #[test]
    fn phases_are_reported_once_in_a_row() {
        let rec = Record::default();
        let once = PhaseOnce {
            inner: &rec,
            last: Cell::new(None),
        };
        for p in [
            Phase::Update,
            Phase::Update,
            Phase::Install,
            Phase::Install,
            Phase::Finish,
        ] {
            once.phase(p);
        }
        assert_eq!(
            *rec.0.borrow(),
            [Phase::Update, Phase::Install, Phase::Finish]
        );
    }

    #[test]
    fn describes_the_origin() {
        let o = Options::new(
            Spec::parse("debian:bookworm").unwrap(),
            &Request {
                include: vec!["curl".into()],
                arch: Some("amd64".into()),
                ..Default::default()
            },
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!(
            describe(&o),
            "debian:bookworm variant=minbase arch=amd64 include=curl"
        );
    }
}
