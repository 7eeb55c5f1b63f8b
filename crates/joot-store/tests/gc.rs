//! gc after kill -9, and stale mount cleanup (as root).

use std::path::{Path, PathBuf};
use std::time::Duration;

use joot_store::{EnvConfig, EnvSource, Image, Name, Origin, Replace, Store};

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

const CHILD_ENV: &str = "JOOT_STORE_CRASH_CHILD";

/// The child's work loop: every kind of store change, forever, until it is killed.
fn crash_child(root: &Path, round: &str) -> ! {
    let store = Store::open(root).unwrap();
    let mut announced = false;
    for i in 0u64.. {
        let b = store.new_layer().unwrap();
        for j in 0..20 {
            std::fs::write(b.root().join(format!("f{j}")), vec![b'x'; 4096]).unwrap();
        }
        let id = b
            .publish(Origin::Other {
                description: "crash".into(),
            })
            .unwrap();
        let img = name(&format!("r{round}img{i}"));
        store
            .put_image(&Image::new(img.clone(), vec![id]), Replace::No)
            .unwrap();
        let env = name(&format!("r{round}env{i}"));
        let image = store.image(&img).unwrap();
        store
            .create_env(&env, EnvSource::from_image(&image), EnvConfig::default())
            .unwrap();
        std::fs::write(store.env_paths(&env).upper.join("data"), "d").unwrap();
        let next = name(&format!("r{round}next{i}"));
        store
            .commit_env(
                &env,
                &next,
                Origin::Commit {
                    env: env.to_string(),
                    command: None,
                },
            )
            .unwrap();
        if i % 2 == 0 {
            store.remove_env(&env, false).unwrap();
            store.remove_image(&next, true).unwrap();
            store.remove_image(&img, true).unwrap();
        }
        if !announced {
            std::fs::write(root.with_extension("ready"), "").unwrap();
            announced = true;
        }
        // Never outlive a parent that died without killing us.
        if i > 5000 {
            std::process::exit(0);
        }
    }
    unreachable!()
}

/// SIGKILLs and reaps the child on drop, so a failing assertion leaves no process behind.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check_consistent(store: &Store) {
    for img in store.images().unwrap() {
        for l in &img.layers {
            assert!(
                store.has_layer(l),
                "image {} names missing layer {l}",
                img.name
            );
        }
    }
    for env in store.envs().unwrap() {
        let p = store.env_paths(&env.name);
        assert!(p.lock.is_file(), "env {} has no lock", env.name);
        assert!(p.work.is_dir(), "env {} has no work dir", env.name);
        for l in env.source.layers() {
            assert!(
                store.has_layer(l),
                "env {} names missing layer {l}",
                env.name
            );
        }
    }
    for l in store.layers().unwrap() {
        assert!(store.layer_root(&l.id).is_dir());
    }
}

#[test]
fn kill9_at_any_point_then_gc_leaves_a_consistent_store() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        crash_child(
            Path::new(&root),
            &std::env::var("JOOT_STORE_CRASH_ROUND").unwrap(),
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("joot-store-kill9-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("store");
    Store::open(&root).unwrap();
    let ready = root.with_extension("ready");
    for round in 0..8u64 {
        let _ = std::fs::remove_file(&ready);
        let mut child = KillOnDrop(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "kill9_at_any_point_then_gc_leaves_a_consistent_store",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &root)
                .env("JOOT_STORE_CRASH_ROUND", round.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let child = &mut child.0;
        while !ready.exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "child exited before it was ready"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Vary the kill point across rounds.
        std::thread::sleep(Duration::from_millis(5 + (round * 37) % 120));
        assert!(
            child.try_wait().unwrap().is_none(),
            "child failed before the kill"
        );
        child.kill().unwrap();
        child.wait().unwrap();

        let store = Store::open(&root).unwrap();
        check_consistent(&store);
        let report = store.gc().unwrap();
        eprintln!("round {round}: gc removed {report:?}");
        assert!(!report.layers_skipped_busy);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        check_consistent(&store);
        assert_eq!(
            std::fs::read_dir(store.tmp_dir()).unwrap().count(),
            0,
            "staging left after gc: {report:?}"
        );
        for env in store.envs().unwrap() {
            let p = store.env_paths(&env.name);
            assert!(p.upper.is_dir() && !p.commit.exists());
            drop(store.lock_env(&env.name).unwrap());
        }
        // Everything left is referenced: a second gc removes nothing.
        let again = store.gc().unwrap();
        assert!(again.is_empty(), "second gc removed {again:?}");
    }
}

/// Detaches the given mount points on drop (deepest first), so a failing test leaks nothing.
struct Mounts(Vec<PathBuf>);
impl Drop for Mounts {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn is_mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

fn tmpfs(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    rustix::mount::mount(
        "tmpfs",
        p,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", p.display()));
}

#[test]
fn gc_unmounts_stale_mounts_but_keeps_recorded_ones() {
    if !joot_test_support::require_root("gc_unmounts_stale_mounts_but_keeps_recorded_ones") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("joot-store-gc-mounts-")
        .tempdir()
        .unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap().join("store");
    let store = Store::open(&root).unwrap();
    store
        .create_env(&name("kept"), EnvSource::Host, EnvConfig::default())
        .unwrap();
    let kept = store.run_dir(&name("kept"));
    let stale = store.run_dir(&name("stale"));
    let stale_sub = stale.join("proc");
    let leaked = store.tmp_dir().join("leaked-stage").join("m");
    let mut guard = Mounts(vec![]);
    for p in [&kept, &stale, &stale_sub, &leaked] {
        tmpfs(p);
        guard.0.push(p.clone());
        if p == &stale {
            std::fs::create_dir(&stale_sub).unwrap();
        }
    }
    std::fs::write(leaked.join("precious"), "not deleted through a mount").unwrap();
    let lock = store.lock_env(&name("kept")).unwrap();
    store.mark_mounted(&lock, &kept).unwrap();
    drop(lock);

    let report = store.gc().unwrap();
    assert!(is_mounted(&kept), "recorded mount was removed");
    assert!(!is_mounted(&stale) && !is_mounted(&stale_sub) && !is_mounted(&leaked));
    assert!(report.mounts.contains(&stale_sub), "{report:?}");
    assert!(report.mounts.contains(&leaked), "{report:?}");
    assert!(!store.tmp_dir().join("leaked-stage").exists());
    assert!(report.run_dirs.contains(&stale), "{report:?}");

    // rm --force of a mounted env detaches its mount without reading the mount table.
    store.remove_env(&name("kept"), true).unwrap();
    assert!(!is_mounted(&kept));
    assert!(!kept.exists());
}
