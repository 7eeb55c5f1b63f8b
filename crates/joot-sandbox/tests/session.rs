//! Sessions over a real store: env runs keep their changes, `--rm` runs keep nothing, a busy
//! env is refused, named commands, and `joot mount`/`umount` in the host namespace.

mod common;

use std::collections::BTreeMap;

use common::assert_nothing_mounted_under;
use joot_sandbox::session::{self, Base, RunRequest};
use joot_store::{BindSpec, EnvConfig, EnvSource, Image, Name, NetMode, Origin, Replace, Store};

fn root_and_busybox(name: &str) -> bool {
    joot_test_support::require_root(name) && common::have_busybox(name)
}

struct StoreFixture {
    _dir: tempfile::TempDir,
    store: Store,
    image: Image,
    out: std::path::PathBuf,
}

fn store_fixture(name: &str) -> StoreFixture {
    let dir = tempfile::Builder::new()
        .prefix(&format!("joot-session-{name}-"))
        .tempdir()
        .unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layer = store.new_layer().unwrap();
    joot_test_support::fixture::busybox_rootfs(&layer.root()).unwrap();
    let id = layer
        .publish(Origin::Other {
            description: "busybox fixture".into(),
        })
        .unwrap();
    let image = Image::new(Name::parse("bb").unwrap(), vec![id]);
    store.put_image(&image, Replace::No).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    StoreFixture {
        _dir: dir,
        store,
        image,
        out,
    }
}

fn sh(script: &str) -> RunRequest {
    RunRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..RunRequest::default()
    }
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn env_runs_keep_changes_and_use_the_env_config() {
    if !root_and_busybox("env_runs_keep_changes_and_use_the_env_config") {
        return;
    }
    let f = store_fixture("envrun");
    let config = EnvConfig {
        binds: vec![BindSpec {
            src: f.out.clone(),
            dst: "/out".into(),
            readonly: false,
        }],
        net: NetMode::None,
        env: vec!["GREETING=hello".into()],
        workdir: Some("/root".into()),
        commands: BTreeMap::from([("start".to_string(), "echo started > /out/start".to_string())]),
        ..EnvConfig::default()
    };
    let name = Name::parse("web").unwrap();
    let env = f
        .store
        .create_env(&name, EnvSource::from_image(&f.image), config)
        .unwrap();
    let code = session::run_env(
        &f.store,
        &env,
        &sh("echo $GREETING $(hostname) $(pwd) > /out/a; echo kept > /root/state; ls /sys/class/net > /out/net"),
    )
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(read(&f.out.join("a")).trim(), "hello web /root");
    assert_eq!(read(&f.out.join("net")).trim(), "lo");
    assert_eq!(
        session::run_env(&f.store, &env, &sh("cat /root/state > /out/b")).unwrap(),
        0
    );
    assert_eq!(read(&f.out.join("b")).trim(), "kept");
    assert_eq!(session::run_named(&f.store, &env, "start").unwrap(), 0);
    assert_eq!(read(&f.out.join("start")).trim(), "started");
    let err = session::run_named(&f.store, &env, "nope").unwrap_err();
    assert!(err.to_string().contains("start"), "{err}");
    // The image's layer is untouched.
    let layer = f.store.layer_root(&f.image.layers[0]);
    assert!(!layer.join("root/state").exists());
    assert_nothing_mounted_under(f.store.root());
}

#[test]
fn busy_env_is_refused() {
    if !root_and_busybox("busy_env_is_refused") {
        return;
    }
    let f = store_fixture("busy");
    let name = Name::parse("b1").unwrap();
    let env = f
        .store
        .create_env(&name, EnvSource::from_image(&f.image), EnvConfig::default())
        .unwrap();
    let _held = f.store.lock_env(&name).unwrap();
    let err = session::run_env(&f.store, &env, &sh("true")).unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
}

#[test]
fn ephemeral_runs_leave_nothing() {
    if !root_and_busybox("ephemeral_runs_leave_nothing") {
        return;
    }
    let f = store_fixture("ephemeral");
    let config = EnvConfig {
        binds: vec![BindSpec {
            src: f.out.clone(),
            dst: "/out".into(),
            readonly: false,
        }],
        ..EnvConfig::default()
    };
    let base = Base::Image(Box::new(f.image.clone()));
    let before: Vec<_> = std::fs::read_dir(f.store.root().join("tmp"))
        .map(|d| d.count())
        .into_iter()
        .collect();
    let code = session::run_ephemeral(
        &f.store,
        &base,
        &config,
        &sh("echo x > /etc/new; hostname > /out/h; exit 4"),
    )
    .unwrap();
    assert_eq!(code, 4);
    assert_eq!(read(&f.out.join("h")).trim(), "bb");
    let after: Vec<_> = std::fs::read_dir(f.store.root().join("tmp"))
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert_eq!(before, after);
    assert!(
        !f.store
            .layer_root(&f.image.layers[0])
            .join("etc/new")
            .exists()
    );
    assert_nothing_mounted_under(f.store.root());
}

#[test]
fn from_host_leaves_the_host_untouched() {
    if !root_and_busybox("from_host_leaves_the_host_untouched") {
        return;
    }
    let f = store_fixture("fromhost");
    let marker = format!("/etc/joot-from-host-test-{}", std::process::id());
    let code = session::run_ephemeral(
        &f.store,
        &Base::Host,
        &EnvConfig::default(),
        &sh(&format!(
            "echo x > {marker} && test -e {marker} && test -d /usr/bin"
        )),
    )
    .unwrap();
    assert_eq!(code, 0);
    assert!(!std::path::Path::new(&marker).exists());

    // A host-based env keeps its changes in its own upper.
    let name = Name::parse("h1").unwrap();
    let env = f
        .store
        .create_env(&name, EnvSource::Host, EnvConfig::default())
        .unwrap();
    let code = session::run_env(&f.store, &env, &sh(&format!("echo kept > {marker}"))).unwrap();
    assert_eq!(code, 0);
    assert!(!std::path::Path::new(&marker).exists());
    let code = session::run_env(&f.store, &env, &sh(&format!("grep -q kept {marker}"))).unwrap();
    assert_eq!(code, 0);
}

#[test]
fn mount_and_umount_in_the_host_namespace() {
    if !root_and_busybox("mount_and_umount_in_the_host_namespace") {
        return;
    }
    let f = store_fixture("mount");
    let name = Name::parse("m1").unwrap();
    let config = EnvConfig {
        commands: BTreeMap::from([(
            "stop".to_string(),
            "echo stopped > /stopped-marker".to_string(),
        )]),
        ..EnvConfig::default()
    };
    let env = f
        .store
        .create_env(&name, EnvSource::from_image(&f.image), config)
        .unwrap();
    struct Unmount<'a>(&'a Store, Name);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = session::umount_env(self.0, &self.1, false);
        }
    }
    let root = session::mount_env(&f.store, &env).unwrap();
    let guard = Unmount(&f.store, name.clone());
    assert!(root.join("bin/busybox").exists());
    assert!(
        root.join("proc/self").exists(),
        "no /proc in the mounted env"
    );
    assert!(root.join("dev/null").exists());
    assert_eq!(f.store.mounted(&name).unwrap(), Some(root.clone()));
    // While mounted, the env is busy for runs.
    assert!(session::run_env(&f.store, &env, &sh("true")).is_err());
    session::umount_env(&f.store, &name, true).unwrap();
    drop(guard);
    assert_eq!(f.store.mounted(&name).unwrap(), None);
    assert_nothing_mounted_under(f.store.root());
    // The stop command ran inside the env: its write is in the env's upper.
    let upper = f.store.env_paths(&name).upper;
    assert_eq!(read(&upper.join("stopped-marker")).trim(), "stopped");
}
