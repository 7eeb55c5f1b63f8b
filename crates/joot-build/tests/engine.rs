//! The build loop end to end on a busybox image (no network): every step kind that works on a
//! busybox root, the cache (hits, which steps re-run after a change, --no-cache), a failing
//! step that leaves images and layers as they were, --keep-failed, deletions kept in layers,
//! and SOURCE_DATE_EPOCH. Needs root (mounts and namespaces).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use joot_build::{BaseImage, BuildError, BuildOptions, Reporter, StepInfo, build, tree};
use joot_store::{Image, Name, Origin, Replace, Store};

#[derive(Default)]
struct Record {
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ran: Vec<usize>,
    cached: Vec<usize>,
    failed: Vec<usize>,
    explained: Vec<(usize, Vec<String>)>,
}

impl Reporter for Record {
    fn step_started(&mut self, s: &StepInfo) {
        self.ran.push(s.index);
    }
    fn step_cached(&mut self, s: &StepInfo, _layer: &str) {
        self.cached.push(s.index);
    }
    fn step_failed(&mut self, s: &StepInfo, _e: Duration, _tail: &str) {
        self.failed.push(s.index);
    }
    fn explain(&mut self, s: &StepInfo, reasons: &[String]) {
        self.explained.push((s.index, reasons.to_vec()));
    }
    fn output_sink(&mut self, _s: &StepInfo) -> Option<joot_build::OutputSink> {
        let out = self.output.clone();
        Some(Box::new(move |line: &str| {
            out.lock().unwrap().push(line.to_string())
        }))
    }
}

/// Builds of different tests must not overlap in one process: a sandbox forked by one test
/// would inherit (until it exits) the env lock of another and make it look busy. nextest runs
/// each test in its own process anyway; this keeps `cargo test` right too.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Fixture {
    _serial: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    store: Store,
    base: BaseImage,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        joot_test_support::unmount_under(self.dir.path());
    }
}

fn fixture(test: &str) -> Option<Fixture> {
    if !joot_test_support::require_root(test) || !joot_test_support::require_tool(test, "busybox") {
        return None;
    }
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::Builder::new()
        .prefix(&format!("joot-build-{test}-"))
        .tempdir()
        .unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let lb = store.new_layer().unwrap();
    joot_test_support::fixture::busybox_rootfs(&lb.root()).unwrap();
    let id = lb
        .publish(Origin::Other {
            description: "busybox fixture".into(),
        })
        .unwrap();
    let image = Image::new(Name::parse("bb").unwrap(), vec![id]);
    store.put_image(&image, Replace::No).unwrap();
    std::fs::create_dir_all(dir.path().join("recipe/modules")).unwrap();
    Some(Fixture {
        _serial: serial,
        store,
        base: BaseImage {
            label: "bb".into(),
            image,
        },
        dir,
    })
}

impl Fixture {
    fn recipe_dir(&self) -> PathBuf {
        self.dir.path().join("recipe")
    }

    fn write(&self, rel: &str, content: &str, mode: u32) {
        let p = self.recipe_dir().join(rel);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn opts(&self, yaml: &str) -> BuildOptions {
        let path = self.recipe_dir().join("recipe.yaml");
        std::fs::write(&path, yaml).unwrap();
        BuildOptions::new(&path, None, vec![]).unwrap()
    }

    fn build(&self, opts: &BuildOptions) -> (Result<joot_build::BuildOutcome, BuildError>, Record) {
        let mut rec = Record::default();
        let r = build(&self.store, opts, &self.base, &mut rec);
        (r, rec)
    }

    fn layers_of(&self, name: &str) -> Vec<PathBuf> {
        let img = self.store.image(&Name::parse(name).unwrap()).unwrap();
        img.layers
            .iter()
            .map(|l| self.store.layer_root(l))
            .collect()
    }

    fn read(&self, image: &str, rel: &str) -> Option<String> {
        tree::lookup(&self.layers_of(image), Path::new(rel))
            .map(|p| std::fs::read_to_string(p).unwrap())
    }

    fn snapshot(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let names = |d: &str| {
            let mut v: Vec<String> = std::fs::read_dir(self.store.root().join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        (names("images"), names("layers"), names("envs"))
    }
}

const MODULE: &str = r#"#!/bin/sh
# args: NAME ROOT CONFIG.json
set -e
[ "$1" = stamp ] || exit 3
grep -q '"swappiness": 10' "$3"
grep -q '"recipe"' "$3"
mkdir -p "$2/etc/sysctl.d"
echo "vm.swappiness = 10" > "$2/etc/sysctl.d/90-stamp.conf"
"#;

fn recipe(motd: &str) -> String {
    format!(
        r#"version: 1
name: web
from: bb
steps:
  - run: echo built > /etc/built && rm /etc/os-release
  - files:
      - {{src: motd, dst: /etc/motd, mode: "0600", owner: "alice"}}
      - {{content: "{motd}", dst: /opt/app/inline.txt}}
      - {{content: "nameserver 192.0.2.53\n", dst: /etc/resolv.conf, owner: "alice"}}
  - users:
      - {{name: bob, uid: 1500, shell: /bin/sh, ssh_authorized_keys: ["ssh-ed25519 AAAA bob@x"]}}
  - hostname: webhost
  - module: stamp
    with: {{swappiness: 10}}
  - run: {{script: 'echo "$GREETING from $(id -un)" > /tmp/x; cat /tmp/x > /home/bob/hello', user: bob, env: {{GREETING: hi}}}}
"#
    )
}

#[test]
fn builds_every_module_then_caches() {
    let Some(f) = fixture("builds_every_module_then_caches") else {
        return;
    };
    f.write("motd", "hello from the recipe\n", 0o644);
    f.write("modules/stamp", MODULE, 0o755);
    let opts = f.opts(&recipe("inline v1"));
    let (r, rec) = f.build(&opts);
    let out = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rec.ran, vec![1, 2, 3, 4, 5, 6]);
    assert!(rec.cached.is_empty());
    assert_eq!(out.image.layers.len(), 7);
    assert!(!out.all_cached());

    assert_eq!(f.read("web", "etc/built").as_deref(), Some("built\n"));
    // The deletion survived the commit: a whiteout in step 1's layer hides the base's file.
    assert_eq!(f.read("web", "etc/os-release"), None);
    let motd = tree::lookup(&f.layers_of("web"), Path::new("etc/motd")).unwrap();
    let m = std::fs::metadata(&motd).unwrap();
    assert_eq!(
        std::fs::read_to_string(&motd).unwrap(),
        "hello from the recipe\n"
    );
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, 1000));
    assert_eq!(
        f.read("web", "opt/app/inline.txt").as_deref(),
        Some("inline v1")
    );
    let passwd = f.read("web", "etc/passwd").unwrap();
    assert!(passwd.contains("bob:x:1500:"), "{passwd}");
    assert_eq!(
        f.read("web", "home/bob/.ssh/authorized_keys").as_deref(),
        Some("ssh-ed25519 AAAA bob@x\n")
    );
    assert_eq!(f.read("web", "etc/hostname").as_deref(), Some("webhost\n"));
    assert!(
        f.read("web", "etc/hosts")
            .unwrap()
            .contains("127.0.1.1\twebhost")
    );
    assert_eq!(
        f.read("web", "etc/sysctl.d/90-stamp.conf").as_deref(),
        Some("vm.swappiness = 10\n")
    );
    assert_eq!(
        f.read("web", "home/bob/hello").as_deref(),
        Some("hi from bob\n")
    );
    // Nothing of the helper dir or of the run's /tmp reached a layer.
    assert_eq!(f.read("web", "tmp/x"), None);
    assert_eq!(f.read("web", "tmp/.joot-build/log"), None);
    let (_, _, envs) = f.snapshot();
    assert!(envs.is_empty(), "build envs left behind: {envs:?}");
    let log = std::fs::read_to_string(&out.log).unwrap();
    assert!(log.contains("[6/6]"), "{log}");

    // Unchanged: every step cached, same layers.
    let (r2, rec2) = f.build(&opts);
    let out2 = r2.unwrap();
    assert_eq!(rec2.cached, vec![1, 2, 3, 4, 5, 6]);
    assert!(rec2.ran.is_empty());
    assert!(out2.all_cached());
    assert_eq!(out2.image.layers, out.image.layers);

    // A changed input of step 2 re-runs steps 2 and after; --explain-cache says why.
    let mut opts3 = f.opts(&recipe("inline v2"));
    opts3.explain_cache = true;
    let (r3, rec3) = f.build(&opts3);
    r3.unwrap();
    assert_eq!(rec3.cached, vec![1]);
    assert_eq!(rec3.ran, vec![2, 3, 4, 5, 6]);
    assert_eq!(
        f.read("web", "opt/app/inline.txt").as_deref(),
        Some("inline v2")
    );
    let why2 = &rec3.explained[1].1;
    assert!(
        why2.iter().any(|w| w.contains("step definition changed")),
        "{why2:?}"
    );
    let why3 = &rec3.explained[2].1;
    assert!(
        why3.iter().any(|w| w.contains("parent changed")),
        "{why3:?}"
    );

    // A changed source file is noticed by its digest.
    f.write("motd", "changed\n", 0o644);
    let (r4, rec4) = f.build(&opts3);
    r4.unwrap();
    assert_eq!(rec4.cached, vec![1]);
    let why = &rec4.explained[1].1;
    assert!(
        why.iter()
            .any(|w| w.contains("input files[0].src motd changed")),
        "{why:?}"
    );

    // --no-cache runs everything.
    let mut opts5 = opts3.clone();
    opts5.no_cache = true;
    let (r5, rec5) = f.build(&opts5);
    r5.unwrap();
    assert_eq!(rec5.ran, vec![1, 2, 3, 4, 5, 6]);
}

/// Makes env `name` look created long ago (as one left by a build killed earlier).
fn age_env(f: &Fixture, name: &str) {
    let path = f.store.root().join("envs").join(name).join("env.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["created"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn failing_step_changes_nothing() {
    let Some(f) = fixture("failing_step_changes_nothing") else {
        return;
    };
    let ok = "version: 1\nname: app\nfrom: bb\nsteps:\n  - run: echo one > /one\n";
    f.build(&f.opts(ok)).0.unwrap();
    let before = f.snapshot();
    let bad = "version: 1\nname: app\nfrom: bb\nsteps:\n  - run: echo one > /one\n  - run: |\n      echo about to fail\n      echo on stderr >&2\n      exit 7\n  - run: echo never\n";
    let (r, rec) = f.build(&f.opts(bad));
    let err = r.unwrap_err();
    let seen = rec.output.lock().unwrap().clone();
    assert!(
        seen.contains(&"about to fail".to_string()) && seen.contains(&"on stderr".to_string()),
        "output lines followed: {seen:?}"
    );
    assert_eq!(rec.cached, vec![1]);
    assert_eq!(rec.failed, vec![2]);
    let BuildError::StepFailed(fail) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (fail.index, fail.total, fail.module.as_str()),
        (2, 3, "run")
    );
    assert_eq!(fail.status, "exit status 7");
    assert!(
        fail.tail.contains("about to fail") && fail.tail.contains("on stderr"),
        "{}",
        fail.tail
    );
    assert!(err.to_string().contains("step 2/3 (run) failed"), "{err}");
    assert_eq!(f.snapshot(), before, "images, layers and envs unchanged");
    assert_eq!(f.read("app", "one").as_deref(), Some("one\n"));

    let mut keep = f.opts(bad);
    keep.keep_failed = true;
    let err = f.build(&keep).0.unwrap_err();
    let BuildError::StepFailed(fail) = &err else {
        panic!("{err}")
    };
    let kept = fail.kept_env.clone().expect("env kept");
    assert!(
        err.to_string().contains(&format!("joot shell {kept}")),
        "{err}"
    );
    let env = f.store.env(&Name::parse(&kept).unwrap()).unwrap();
    assert_eq!(env.source.layers().len(), 2);
    // A kept env is the user's: later builds leave it alone, however old.
    age_env(&f, &kept);
    assert!(joot_build::remove_leftover_envs(&f.store).is_empty());
    f.store
        .remove_env(&Name::parse(&kept).unwrap(), true)
        .unwrap();

    // A step env left by a killed build (still marked) is removed by the next build once it
    // is old enough to not be a step of a build running right now.
    let left = Name::parse("build-app-2-deadbeef").unwrap();
    f.store
        .create_env(
            &left,
            joot_store::EnvSource::from_image(&f.base.image),
            joot_store::EnvConfig {
                env: vec![joot_build::STEP_ENV_MARK.into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        joot_build::remove_leftover_envs(&f.store).is_empty(),
        "too young"
    );
    age_env(&f, left.as_str());
    assert_eq!(joot_build::remove_leftover_envs(&f.store), vec![left]);
    assert!(f.snapshot().2.is_empty());
}

#[test]
fn packages_without_a_package_manager_fail_clearly() {
    let Some(f) = fixture("packages_without_a_package_manager_fail_clearly") else {
        return;
    };
    let opts = f.opts("version: 1\nname: pk\nfrom: bb\nsteps:\n  - packages: [curl]\n");
    let err = f.build(&opts).0.unwrap_err();
    let BuildError::StepFailed(fail) = &err else {
        panic!("{err}")
    };
    assert_eq!((fail.index, fail.module.as_str()), (1, "packages"));
    assert_eq!(fail.status, "exit status 127");
    assert!(
        fail.tail.contains("no package manager (apt-get or dnf)"),
        "{}",
        fail.tail
    );
}

#[test]
fn custom_module_over_many_layers() {
    // 60 layers of about 100-byte paths do not fit mount(2)'s one-page option string: the
    // host-side root of a custom module is mounted with one `lowerdir+` per layer.
    let Some(f) = fixture("custom_module_over_many_layers") else {
        return;
    };
    f.write("modules/stamp", MODULE, 0o755);
    let mut yaml = String::from("version: 1\nname: tall\nfrom: bb\nsteps:\n");
    for i in 0..60 {
        yaml.push_str(&format!("  - run: echo {i} > /layer-{i}\n"));
    }
    yaml.push_str("  - module: stamp\n    with: {swappiness: 10}\n");
    f.build(&f.opts(&yaml)).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.layers_of("tall").len(), 62);
    assert_eq!(f.read("tall", "layer-0").as_deref(), Some("0\n"));
    assert_eq!(
        f.read("tall", "etc/sysctl.d/90-stamp.conf").as_deref(),
        Some("vm.swappiness = 10\n")
    );
}

#[test]
fn tarball_base_is_imported_once() {
    let Some(f) = fixture("tarball_base_is_imported_once") else {
        return;
    };
    let tar = f.recipe_dir().join("rootfs.tar");
    joot_test_support::fixture::busybox_tarball(&tar).unwrap();
    let layers_before = f.snapshot().1.len();
    let first = joot_build::import_tarball(&f.store, &tar).unwrap();
    assert_eq!(first.layers.len(), 1);
    assert_eq!(f.snapshot().1.len(), layers_before + 1);
    let again = joot_build::import_tarball(&f.store, &tar).unwrap();
    assert_eq!(again.layers, first.layers, "imported twice");
    assert_eq!(f.snapshot().1.len(), layers_before + 1);
    let base = BaseImage {
        label: "rootfs.tar".into(),
        image: again,
    };
    let opts =
        f.opts("version: 1\nname: fromtar\nfrom: ./rootfs.tar\nsteps:\n  - run: echo ok > /ok\n");
    build(&f.store, &opts, &base, &mut Record::default()).unwrap();
    assert_eq!(f.read("fromtar", "ok").as_deref(), Some("ok\n"));
    assert!(tree::lookup(&f.layers_of("fromtar"), Path::new("bin/busybox")).is_some());
}

/// A stand-in for `puppet` with the interface joot uses (`puppet apply --detailed-exitcodes
/// [--modulepath DIR] MANIFEST`): records what it was given, exits 2 ("changes applied") or 4
/// ("failures") like the real one. The real puppet is exercised by examples/config-mgmt.
const FAKE_PUPPET: &str = r#"#!/bin/sh
[ "$1" = apply ] || exit 64
shift
[ "$1" = --detailed-exitcodes ] || exit 65
shift
if [ "$1" = --modulepath ]; then ls "$2" > /etc/puppet-modules; shift 2; fi
cp "$1" /etc/puppet-applied
if grep -q FAIL "$1"; then echo "Error: manifest failed" >&2; exit 4; fi
exit 2
"#;

#[test]
fn puppet_step_applies_manifest_with_exit_codes() {
    let Some(f) = fixture("puppet_step_applies_manifest_with_exit_codes") else {
        return;
    };
    f.write("fake-puppet", FAKE_PUPPET, 0o755);
    f.write("site.pp", "file { '/x': ensure => file }\n", 0o644);
    std::fs::create_dir_all(f.recipe_dir().join("pmods/mymod")).unwrap();
    let yaml = "version: 1\nname: pup\nfrom: bb\nsteps:\n  - files: [{src: fake-puppet, dst: /usr/bin/puppet, mode: \"0755\"}]\n  - puppet: {manifest: site.pp, modulepath: pmods}\n";
    f.build(&f.opts(yaml)).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        f.read("pup", "etc/puppet-applied").as_deref(),
        Some("file { '/x': ensure => file }\n")
    );
    assert_eq!(
        f.read("pup", "etc/puppet-modules").as_deref(),
        Some("mymod\n")
    );

    // Exit code 4 (resource failures) fails the step.
    f.write("site.pp", "FAIL\n", 0o644);
    let err = f.build(&f.opts(yaml)).0.unwrap_err();
    let BuildError::StepFailed(fail) = &err else {
        panic!("{err}")
    };
    assert_eq!((fail.index, fail.module.as_str()), (2, "puppet"));
    assert_eq!(fail.status, "exit status 4");
    assert!(fail.tail.contains("manifest failed"), "{}", fail.tail);
}

#[test]
fn sigterm_during_a_custom_module_fails_the_step_cleanly() {
    let Some(f) = fixture("sigterm_during_a_custom_module_fails_the_step_cleanly") else {
        return;
    };
    // The module signals the builder (its parent) like `kill` from another terminal would;
    // the builder passes the signal on to the module instead of dying, so the step fails and
    // its env and host mount are cleaned up. (The first sleep lets the builder install its
    // handler after spawning the module.)
    f.write(
        "modules/slow",
        "#!/bin/sh\nmkdir -p \"$2/partial\"\nsleep 1\nkill -TERM $PPID\nexec sleep 30\n",
        0o755,
    );
    let before = f.snapshot();
    let opts = f.opts("version: 1\nname: sig\nfrom: bb\nsteps:\n  - module: slow\n");
    let err = f.build(&opts).0.unwrap_err();
    let BuildError::StepFailed(fail) = &err else {
        panic!("{err}")
    };
    assert_eq!(fail.status, "killed by signal 15");
    assert_eq!(f.snapshot(), before, "store changed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(f.dir.path().to_str().unwrap()),
        "build root left mounted"
    );
}

#[test]
fn source_date_epoch_clamps_new_files() {
    let Some(f) = fixture("source_date_epoch_clamps_new_files") else {
        return;
    };
    let mut opts = f.opts("version: 1\nname: repro\nfrom: bb\nsteps:\n  - run: mkdir -p /srv/data && echo x > /srv/data/f\n");
    opts.source_date_epoch = Some(1_700_000_000);
    f.build(&opts).0.unwrap();
    let layers = f.layers_of("repro");
    for rel in ["srv", "srv/data", "srv/data/f"] {
        let p = tree::lookup(&layers, Path::new(rel)).unwrap();
        assert_eq!(
            std::fs::symlink_metadata(p).unwrap().mtime(),
            1_700_000_000,
            "{rel}"
        );
    }
}
