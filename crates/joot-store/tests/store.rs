//! Store integration tests: envs, images, locks, commit (with real overlay mounts as root).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use joot_store::{
    EnvConfig, EnvSource, Error, Image, LayerId, Name, Origin, Replace, Store, gc::GcReport,
};

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn temp(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("joot-store-{test}-"))
        .tempdir()
        .unwrap()
}

/// A published layer holding `files` (relative path -> content).
fn layer_with(store: &Store, files: &[(&str, &str)]) -> LayerId {
    let b = store.new_layer().unwrap();
    for (p, c) in files {
        let path = b.root().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    b.publish(Origin::Other {
        description: "test".into(),
    })
    .unwrap()
}

fn image_with(store: &Store, img: &str, files: &[(&str, &str)]) -> Image {
    let id = layer_with(store, files);
    let image = Image::new(name(img), vec![id]);
    store.put_image(&image, Replace::No).unwrap();
    image
}

fn tmp_entries(store: &Store) -> Vec<PathBuf> {
    std::fs::read_dir(store.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn layer_publish_and_image_round_trip() {
    let d = temp("layer_publish");
    let store = Store::open(d.path()).unwrap();
    let image = image_with(&store, "base", &[("etc/os-release", "ID=test\n")]);
    let id = &image.layers[0];
    let meta = store.layer(id).unwrap();
    assert_eq!(meta.size, 8);
    assert_eq!(
        std::fs::read_to_string(store.layer_root(id).join("etc/os-release")).unwrap(),
        "ID=test\n"
    );
    assert_eq!(store.image(&name("base")).unwrap(), image);
    assert_eq!(store.images().unwrap(), vec![image.clone()]);
    let err = store.put_image(&image, Replace::No).unwrap_err();
    assert_eq!(err.to_string(), "image 'base' already exists");
    store.put_image(&image, Replace::Yes).unwrap();
    let missing = Image::new(name("bad"), vec![LayerId::random()]);
    assert!(
        store
            .put_image(&missing, Replace::No)
            .unwrap_err()
            .to_string()
            .contains("not found")
    );
    assert!(tmp_entries(&store).is_empty(), "staging left behind");
}

#[test]
fn diff_id_lookup_finds_layer() {
    let d = temp("diff_id");
    let store = Store::open(d.path()).unwrap();
    let mut b = store.new_layer().unwrap();
    b.set_diff_id("sha256:abc");
    let id = b
        .publish(Origin::Oci {
            reference: "x".into(),
        })
        .unwrap();
    assert_eq!(store.find_layer_by_diff_id("sha256:abc").unwrap(), Some(id));
    assert_eq!(store.find_layer_by_diff_id("sha256:def").unwrap(), None);
}

#[test]
fn dropped_layer_builder_leaves_nothing() {
    let d = temp("dropped_builder");
    let store = Store::open(d.path()).unwrap();
    let b = store.new_layer().unwrap();
    std::fs::write(b.root().join("f"), "x").unwrap();
    drop(b);
    assert!(tmp_entries(&store).is_empty());
    assert!(store.layers().unwrap().is_empty());
}

#[test]
fn env_create_get_list_remove() {
    let d = temp("env_crud");
    let store = Store::open(d.path()).unwrap();
    let image = image_with(&store, "base", &[("a", "1")]);
    let env = store
        .create_env(
            &name("web"),
            EnvSource::from_image(&image),
            EnvConfig::default(),
        )
        .unwrap();
    let p = store.env_paths(&name("web"));
    assert!(p.upper.is_dir() && p.work.is_dir() && p.lock.is_file());
    assert_eq!(store.env(&name("web")).unwrap(), env);
    assert_eq!(store.envs().unwrap(), vec![env]);
    let err = store
        .create_env(&name("web"), EnvSource::Host, EnvConfig::default())
        .unwrap_err();
    assert_eq!(err.to_string(), "env 'web' already exists");
    // rmi of an image in use is refused unless forced.
    let err = store.remove_image(&name("base"), false).unwrap_err();
    assert!(matches!(err, Error::ImageInUse { .. }), "{err}");
    assert!(err.to_string().contains("web"), "{err}");
    store.remove_env(&name("web"), false).unwrap();
    assert!(!p.dir.exists());
    assert!(matches!(
        store.env(&name("web")),
        Err(Error::NotFound { .. })
    ));
    store.remove_image(&name("base"), false).unwrap();
    assert!(tmp_entries(&store).is_empty());
}

#[test]
fn create_env_refuses_missing_layers() {
    let d = temp("env_missing_layer");
    let store = Store::open(d.path()).unwrap();
    let source = EnvSource::Image {
        name: name("gone"),
        layers: vec![LayerId::random()],
    };
    let err = store
        .create_env(&name("e"), source, EnvConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { kind: "layer", .. }),
        "{err}"
    );
    assert!(store.envs().unwrap().is_empty());
}

#[test]
fn concurrent_creates_of_one_name_have_one_winner() {
    let d = temp("concurrent_create");
    let store = Store::open(d.path()).unwrap();
    for round in 0..20 {
        let n = format!("x{round}");
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let barrier = barrier.clone();
                let n = n.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store.create_env(&name(&n), EnvSource::Host, EnvConfig::default())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for r in results.into_iter().filter_map(|r| r.err()) {
            assert_eq!(r.to_string(), format!("env '{n}' already exists"));
        }
    }
    assert_eq!(store.envs().unwrap().len(), 20);
    assert!(tmp_entries(&store).is_empty());
}

#[test]
fn env_lock_is_exclusive_and_mounted_counts_as_busy() {
    let d = temp("env_lock");
    let store = Store::open(d.path()).unwrap();
    store
        .create_env(&name("e"), EnvSource::Host, EnvConfig::default())
        .unwrap();
    let lock = store.lock_env(&name("e")).unwrap();
    let err = store.lock_env(&name("e")).unwrap_err();
    assert_eq!(err.to_string(), "env 'e' is busy (running or mounted)");
    assert!(matches!(
        store.remove_env(&name("e"), true),
        Err(Error::EnvBusy(_))
    ));
    store.mark_mounted(&lock, Path::new("/x/run/e")).unwrap();
    drop(lock);
    assert_eq!(
        store.mounted(&name("e")).unwrap(),
        Some(PathBuf::from("/x/run/e"))
    );
    assert!(matches!(store.lock_env(&name("e")), Err(Error::EnvBusy(_))));
    assert!(matches!(
        store.remove_env(&name("e"), false),
        Err(Error::EnvBusy(_))
    ));
    let lock = store.lock_env_allow_mounted(&name("e")).unwrap();
    store.clear_mounted(&lock).unwrap();
    drop(lock);
    let lock = store.lock_env(&name("e")).unwrap();
    let cfg = EnvConfig {
        hostname: Some("h".into()),
        ..EnvConfig::default()
    };
    store.set_env_config(&lock, cfg.clone()).unwrap();
    drop(lock);
    assert_eq!(store.env(&name("e")).unwrap().config, cfg);
    assert!(matches!(
        store.lock_env(&name("nope")),
        Err(Error::NotFound { .. })
    ));
    store.remove_env(&name("e"), false).unwrap();
}

#[test]
fn commit_moves_upper_into_a_layer() {
    let d = temp("commit_plain");
    let store = Store::open(d.path()).unwrap();
    let image = image_with(&store, "base", &[("a", "1")]);
    store
        .create_env(
            &name("e"),
            EnvSource::from_image(&image),
            EnvConfig::default(),
        )
        .unwrap();
    let p = store.env_paths(&name("e"));
    std::fs::write(p.upper.join("new"), "hello").unwrap();
    assert_eq!(store.env_upper_size(&name("e")).unwrap(), 5);
    let img = store
        .commit_env(
            &name("e"),
            &name("next"),
            Origin::Commit {
                env: "e".into(),
                command: None,
            },
        )
        .unwrap();
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0], image.layers[0]);
    assert_eq!(store.layers_size(&img.layers), 1 + 5);
    assert_eq!(
        store.layer_roots(&img.layers),
        vec![
            store.layer_root(&img.layers[0]),
            store.layer_root(&img.layers[1])
        ]
    );
    assert_eq!(store.env_upper_size(&name("e")).unwrap(), 0);
    assert_eq!(img.parent.as_deref(), Some("base"));
    let top = &img.layers[1];
    assert_eq!(
        std::fs::read_to_string(store.layer_root(top).join("new")).unwrap(),
        "hello"
    );
    assert_eq!(std::fs::read_dir(&p.upper).unwrap().count(), 0);
    assert!(!p.commit.exists());
    let env = store.env(&name("e")).unwrap();
    assert_eq!(env.source.layers(), img.layers.as_slice());
    assert_eq!(store.image(&name("next")).unwrap(), img);
    // Committing again onto an existing name is refused before anything moves.
    std::fs::write(p.upper.join("more"), "x").unwrap();
    let err = store
        .commit_env(
            &name("e"),
            &name("next"),
            Origin::Other {
                description: String::new(),
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "image 'next' already exists");
    assert!(p.upper.join("more").exists());
    // A host env cannot be committed.
    store
        .create_env(&name("h"), EnvSource::Host, EnvConfig::default())
        .unwrap();
    assert!(matches!(
        store.commit_env(
            &name("h"),
            &name("hh"),
            Origin::Other {
                description: String::new()
            }
        ),
        Err(Error::CommitHostEnv(_))
    ));
}

#[test]
fn gc_removes_unlocked_staging_and_unreferenced_layers() {
    let d = temp("gc_basic");
    let store = Store::open(d.path()).unwrap();
    let image = image_with(&store, "base", &[("a", "1")]);
    let orphan = layer_with(&store, &[("b", "2")]);
    // A staging dir whose owner died: its .lock is not held.
    let dead = store.tmp_dir().join("dead-owner");
    std::fs::create_dir_all(dead.join("env/upper")).unwrap();
    std::fs::write(dead.join(".lock"), "").unwrap();
    // A live staging dir must survive.
    let live = store.stage().unwrap();
    // A layer dir that never finished publishing.
    let half = LayerId::random();
    std::fs::create_dir_all(store.layer_dir(&half)).unwrap();

    let report: GcReport = store.gc().unwrap();
    assert_eq!(report.staging, vec![dead.clone()]);
    assert!(!dead.exists());
    assert!(live.path().exists());
    let mut removed = report.layers.clone();
    removed.sort();
    let mut expected = vec![orphan, half];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(store.has_layer(&image.layers[0]));
    let text = report.to_string();
    assert!(text.contains("removed layer"), "{text}");

    // While a lease is held, layers are not swept.
    let orphan2 = layer_with(&store, &[("c", "3")]);
    let lease = store.lease().unwrap();
    drop(live);
    let report = store.gc().unwrap();
    assert!(report.layers_skipped_busy);
    assert!(store.has_layer(&orphan2));
    drop(lease);
    assert_eq!(store.gc().unwrap().layers, vec![orphan2]);
    assert!(store.gc().unwrap().is_empty());
}

#[test]
fn gc_keeps_layers_named_in_build_cache() {
    let d = temp("gc_build_cache");
    let store = Store::open(d.path()).unwrap();
    let id = layer_with(&store, &[("x", "1")]);
    std::fs::write(
        store.build_cache_dir().join("k.json"),
        format!(r#"{{"key":"k","layer":"{id}"}}"#),
    )
    .unwrap();
    assert!(store.gc().unwrap().layers.is_empty());
    assert!(store.has_layer(&id));
}

#[test]
fn interrupted_commit_is_rolled_forward() {
    let d = temp("commit_recovery");
    let store = Store::open(d.path()).unwrap();
    let image = image_with(&store, "base", &[("a", "1")]);
    store
        .create_env(
            &name("e"),
            EnvSource::from_image(&image),
            EnvConfig::default(),
        )
        .unwrap();
    let p = store.env_paths(&name("e"));
    std::fs::write(p.upper.join("work-in-progress"), "keep me").unwrap();
    // Simulate a commit killed right after moving the upper into the layer.
    let id = LayerId::random();
    std::fs::create_dir(store.layer_dir(&id)).unwrap();
    std::fs::write(
        store.layer_dir(&id).join("layer.json"),
        format!(
            r#"{{"format":1,"id":"{id}","created":0,"origin":{{"kind":"commit","env":"e"}},"size":7}}"#
        ),
    )
    .unwrap();
    std::fs::write(&p.commit, format!(r#"{{"layer":"{id}","image":"next"}}"#)).unwrap();
    std::fs::rename(&p.upper, store.layer_root(&id)).unwrap();

    let report = store.gc().unwrap();
    assert_eq!(report.envs_repaired, vec![name("e")]);
    assert!(report.layers.is_empty(), "{report:?}");
    let env = store.env(&name("e")).unwrap();
    assert_eq!(env.source.layers().last(), Some(&id));
    assert!(p.upper.is_dir());
    assert!(!p.commit.exists());
    assert_eq!(
        std::fs::read_to_string(store.layer_root(&id).join("work-in-progress")).unwrap(),
        "keep me"
    );
}

/// Unmounts on drop so a failing test leaks no mount.
struct MountGuard(PathBuf);
impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn mount_overlay(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, target: &Path) -> MountGuard {
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut opts = format!("lowerdir={lower}");
    if let Some((u, w)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    let copts = std::ffi::CString::new(opts.clone()).unwrap();
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(copts.as_c_str()),
    )
    .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
    MountGuard(target.to_path_buf())
}

#[test]
fn commit_keeps_whiteouts_and_opaque_dirs_through_overlay() {
    if !joot_test_support::require_root("commit_keeps_whiteouts_and_opaque_dirs_through_overlay") {
        return;
    }
    let d = temp("commit_whiteouts");
    let store = Store::open(d.path().join("store")).unwrap();
    let image = image_with(
        &store,
        "base",
        &[("gone", "x"), ("kept", "y"), ("dir/old", "z")],
    );
    store
        .create_env(
            &name("e"),
            EnvSource::from_image(&image),
            EnvConfig::default(),
        )
        .unwrap();
    let p = store.env_paths(&name("e"));
    let target = d.path().join("merged");
    std::fs::create_dir(&target).unwrap();
    {
        let lowers = vec![store.layer_root(&image.layers[0])];
        let _m = mount_overlay(&lowers, Some((&p.upper, &p.work)), &target);
        std::fs::remove_file(target.join("gone")).unwrap();
        std::fs::remove_dir_all(target.join("dir")).unwrap();
        std::fs::create_dir(target.join("dir")).unwrap(); // opaque now
        std::fs::write(target.join("dir/new"), "n").unwrap();
        std::fs::write(target.join("added"), "a").unwrap();
    }
    let img = store
        .commit_env(
            &name("e"),
            &name("next"),
            Origin::Commit {
                env: "e".into(),
                command: Some("rm gone".into()),
            },
        )
        .unwrap();
    let top = store.layer_root(&img.layers[1]);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(top.join("gone"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "whiteout kept in the new layer"
    );
    // Mount the new image read-only (top first for overlay's lowerdir order).
    let lowers: Vec<PathBuf> = img
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_root(l))
        .collect();
    let _m = mount_overlay(&lowers, None, &target);
    assert!(!target.join("gone").exists(), "deletion survived commit");
    assert_eq!(std::fs::read_to_string(target.join("kept")).unwrap(), "y");
    assert_eq!(std::fs::read_to_string(target.join("added")).unwrap(), "a");
    assert!(
        !target.join("dir/old").exists(),
        "opaque dir survived commit"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("dir/new")).unwrap(),
        "n"
    );
    drop(_m);

    // The env keeps working on top of the new stack: fresh upper, the same work dir.
    let env = store.env(&name("e")).unwrap();
    assert_eq!(env.source.layers(), img.layers.as_slice());
    let lowers: Vec<PathBuf> = env
        .source
        .layers()
        .iter()
        .rev()
        .map(|l| store.layer_root(l))
        .collect();
    let m = mount_overlay(&lowers, Some((&p.upper, &p.work)), &target);
    assert!(!target.join("gone").exists());
    assert_eq!(std::fs::read_to_string(target.join("added")).unwrap(), "a");
    std::fs::write(target.join("after"), "x").unwrap();
    drop(m);
    assert!(p.upper.join("after").is_file());
    assert!(
        !p.upper.join("added").exists(),
        "the new upper starts empty"
    );
}
