//! joot-oci against a real registry on loopback (Debian's `docker-registry`) and real OCI
//! tools (skopeo): push, pull into a fresh store, exact trees after the round trip, layer
//! dedup, basic auth, an interrupted pull that resumes, layouts that skopeo reads and writes,
//! `docker save` archives, and hostile input refused with nothing stored.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use joot_oci::{Action, Outcome, PullOptions, PushOptions, RegistryOptions, Reporter};
use joot_store::{Image, ImageConfig, Name, Origin, Replace, Store};
use support::registry::Registry;
use support::tree::snapshot;

fn ready(test: &str, tools: &[&str]) -> bool {
    if !joot_test_support::require_root(test) {
        return false;
    }
    tools
        .iter()
        .all(|t| joot_test_support::require_tool(test, t))
}

#[derive(Default)]
struct Record {
    events: Mutex<Vec<(String, String)>>,
    bytes: Mutex<std::collections::HashMap<String, u64>>,
}

impl Record {
    fn count(&self, what: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, w)| w == what)
            .count()
    }
}

impl Reporter for Record {
    fn begin(&self, id: &str, action: Action, _total: Option<u64>) {
        self.events
            .lock()
            .unwrap()
            .push((id.into(), format!("{action:?}")));
    }
    fn advance(&self, id: &str, bytes: u64) {
        *self.bytes.lock().unwrap().entry(id.into()).or_default() += bytes;
    }
    fn end(&self, id: &str, outcome: Outcome) {
        self.events
            .lock()
            .unwrap()
            .push((id.into(), format!("{outcome:?}")));
    }
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

/// A two-layer image: the busybox fixture, and an "upper" with every kind of entry an overlay
/// upper dir has (whiteout, opaque dir, hard links, xattrs, setuid, fifo, long names).
fn make_image(store: &Store, image: &str) -> Image {
    let base = store.new_layer().unwrap();
    joot_test_support::fixture::busybox_rootfs(&base.root()).unwrap();
    let base = base
        .publish(Origin::Other {
            description: "fixture".into(),
        })
        .unwrap();
    let upper = store.new_layer().unwrap();
    let r = upper.root();
    std::fs::create_dir_all(r.join("etc/opaque")).unwrap();
    std::fs::write(r.join("etc/opaque/only"), b"only me").unwrap();
    rustix::fs::lsetxattr(
        r.join("etc/opaque"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("etc/hostname"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    std::fs::create_dir_all(r.join("srv/app")).unwrap();
    std::fs::write(r.join("srv/app/data"), vec![42u8; 300_000]).unwrap();
    std::fs::hard_link(r.join("srv/app/data"), r.join("srv/app/data-link")).unwrap();
    std::fs::write(r.join("srv/app/xattr"), b"x").unwrap();
    rustix::fs::lsetxattr(
        r.join("srv/app/xattr"),
        "user.joot",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(r.join("srv/app/suid"), b"#!/bin/sh\n").unwrap();
    rustix::fs::chmod(
        r.join("srv/app/suid"),
        rustix::fs::Mode::from_raw_mode(0o4755),
    )
    .unwrap();
    rustix::fs::chown(
        r.join("srv/app/xattr"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("srv/app/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::fs::write(r.join("srv/app").join("n".repeat(140)), b"long").unwrap();
    std::os::unix::fs::symlink("/srv/app/data", r.join("srv/data")).unwrap();
    let upper = upper
        .publish(Origin::Other {
            description: "upper".into(),
        })
        .unwrap();
    let mut img = Image::new(name(image), vec![base, upper]);
    img.config = ImageConfig {
        env: vec!["PATH=/usr/bin:/bin".into(), "GREETING=hello".into()],
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["echo $GREETING".into()],
        workdir: Some("/srv/app".into()),
        user: Some("1000:1000".into()),
        labels: [("org.example".to_string(), "joot".to_string())].into(),
    };
    store.put_image(&img, Replace::No).unwrap();
    img
}

fn assert_same_trees(a: &Store, ia: &Image, b: &Store, ib: &Image) {
    assert_eq!(ia.layers.len(), ib.layers.len());
    for (la, lb) in ia.layers.iter().zip(&ib.layers) {
        let sa = snapshot(&a.layer_root(la));
        let sb = snapshot(&b.layer_root(lb));
        assert_eq!(sa.len(), sb.len(), "entry count differs for layer {la}");
        for (k, v) in &sa {
            assert_eq!(sb.get(k), Some(v), "{} differs", k.display());
        }
    }
}

fn insecure() -> RegistryOptions {
    RegistryOptions {
        insecure: true,
        ..Default::default()
    }
}

#[test]
fn registry_round_trip_is_exact_and_dedups_layers() {
    if !ready(
        "registry_round_trip_is_exact_and_dedups_layers",
        &["docker-registry"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), None);
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let reference = format!("{}/team/app:1.0", reg.addr);
    let push_opts = PushOptions {
        registry: insecure(),
        ..Default::default()
    };
    let rec = Record::default();
    let report = joot_oci::push(&a, &img, &reference, &push_opts, &rec).unwrap();
    assert_eq!((report.uploaded, report.skipped), (2, 0));
    assert!(report.manifest_digest.starts_with("sha256:"));
    // Pushing again uploads nothing and compresses nothing.
    let rec = Record::default();
    let again = joot_oci::push(&a, &img, &reference, &push_opts, &rec).unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, 2));
    assert_eq!(rec.count("Compress"), 0);

    let b = Store::open(dir.path().join("b")).unwrap();
    let pull_opts = PullOptions {
        registry: insecure(),
        ..Default::default()
    };
    let rec = Record::default();
    let pulled = joot_oci::pull(&b, &reference, &pull_opts, &rec).unwrap();
    assert_eq!(pulled.name.as_str(), "app-1.0");
    // Progress: every downloaded byte of every layer was reported, per layer.
    assert_eq!(rec.count("Download"), 2);
    for layer in &img.layers {
        let blob = blob_of(&a, layer);
        let id = joot_oci::reporter::short(&blob.digest);
        assert_eq!(rec.bytes.lock().unwrap().get(&id), Some(&blob.size));
    }
    assert_eq!(pulled.config, img.config);
    assert_same_trees(&a, &img, &b, &pulled);
    // Whiteouts came back as overlay whiteouts.
    let wh =
        std::fs::symlink_metadata(b.layer_root(&pulled.layers[1]).join("etc/hostname")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));

    // A second image sharing the base layer: the base is neither downloaded nor stored again.
    let layers_before = b.layers().unwrap().len();
    let base_only = Image::new(name("base"), vec![img.layers[0].clone()]);
    a.put_image(&base_only, Replace::No).unwrap();
    let base_ref = format!("{}/team/base:1", reg.addr);
    joot_oci::push(&a, &base_only, &base_ref, &push_opts, &joot_oci::Silent).unwrap();
    let base_digest = {
        let mut v = joot_oci::layer::LayerBlob::clone(&blob_of(&a, &img.layers[0]));
        std::mem::take(&mut v.digest)
    };
    let gets_before = reg.blob_gets(&base_digest);
    let rec = Record::default();
    let pulled_base = joot_oci::pull(&b, &base_ref, &pull_opts, &rec).unwrap();
    assert_eq!(pulled_base.layers[0], pulled.layers[0]);
    assert_eq!(b.layers().unwrap().len(), layers_before);
    assert_eq!(rec.count("AlreadyPresent"), 1);
    assert_eq!(
        reg.blob_gets(&base_digest),
        gets_before,
        "shared layer fetched again"
    );
}

/// The cached blob record for a layer (what push used).
fn blob_of(store: &Store, layer: &joot_store::LayerId) -> joot_oci::layer::LayerBlob {
    let p = store
        .root()
        .join("cache/oci/layers")
        .join(format!("{layer}-gzip.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn registry_with_basic_auth_needs_credentials() {
    if !ready(
        "registry_with_basic_auth_needs_credentials",
        &["docker-registry", "htpasswd"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), Some(("alice", "wonder")));
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let reference = format!("{}/private/app:1", reg.addr);
    let err = joot_oci::push(
        &a,
        &img,
        &reference,
        &PushOptions {
            registry: insecure(),
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("401") || msg.contains("unauthorized"), "{msg}");
    let bad = RegistryOptions {
        insecure: true,
        creds: Some(joot_oci::Credentials::parse("alice:wrong").unwrap()),
        ..Default::default()
    };
    let err = joot_oci::push(
        &a,
        &img,
        &reference,
        &PushOptions {
            registry: bad,
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("401") || err.to_string().contains("unauthorized"),
        "{err}"
    );
    let good = RegistryOptions {
        insecure: true,
        creds: Some(joot_oci::Credentials::parse("alice:wonder").unwrap()),
        ..Default::default()
    };
    joot_oci::push(
        &a,
        &img,
        &reference,
        &PushOptions {
            registry: good.clone(),
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let anon = joot_oci::pull(
        &b,
        &reference,
        &PullOptions {
            registry: insecure(),
            ..Default::default()
        },
        &joot_oci::Silent,
    );
    assert!(anon.is_err());
    assert!(b.images().unwrap().is_empty());
    let pulled = joot_oci::pull(
        &b,
        &reference,
        &PullOptions {
            registry: good,
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap();
    assert_same_trees(&a, &img, &b, &pulled);
}

#[test]
fn interrupted_pull_resumes_without_refetching_finished_layers() {
    if !ready(
        "interrupted_pull_resumes_without_refetching_finished_layers",
        &["docker-registry"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), None);
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let reference = format!("{}/team/app:1", reg.addr);
    let push_opts = PushOptions {
        registry: insecure(),
        ..Default::default()
    };
    joot_oci::push(&a, &img, &reference, &push_opts, &joot_oci::Silent).unwrap();
    let base = blob_of(&a, &img.layers[0]).digest;
    let upper = blob_of(&a, &img.layers[1]).digest;
    // The upper layer's blob goes missing mid-pull (as if the connection died there).
    let data = reg.blob_data(&upper);
    let aside = dir.path().join("aside");
    std::fs::rename(&data, &aside).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let opts = PullOptions {
        registry: insecure(),
        ..Default::default()
    };
    let err = joot_oci::pull(&b, &reference, &opts, &joot_oci::Silent).unwrap_err();
    assert!(matches!(err, joot_oci::Error::Registry { .. }), "{err}");
    assert!(
        b.images().unwrap().is_empty(),
        "a failed pull stored an image"
    );
    assert!(
        b.layers().unwrap().is_empty(),
        "a failed pull stored layers"
    );
    let cached = b
        .root()
        .join("cache/blobs/sha256")
        .join(base.trim_start_matches("sha256:"));
    assert!(cached.is_file(), "finished layer not kept in the cache");
    // A half-downloaded blob resumes from where it stopped.
    let bytes = std::fs::read(&aside).unwrap();
    let partial = b
        .root()
        .join("cache/blobs/sha256")
        .join(format!("{}.partial", upper.trim_start_matches("sha256:")));
    std::fs::write(&partial, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&aside, &data).unwrap();
    let gets_base = reg.blob_gets(&base);
    assert_eq!(gets_base, 1, "the first pull fetched the base layer once");
    let pulled = joot_oci::pull(&b, &reference, &opts, &joot_oci::Silent).unwrap();
    assert_eq!(
        reg.blob_gets(&base),
        gets_base,
        "finished layer fetched again"
    );
    assert!(!partial.exists());
    let resumed = format!("/blobs/{upper} HTTP/1.1\" 206 ");
    assert!(
        reg.access_log().contains(&resumed),
        "the half-downloaded blob was not resumed with a range request"
    );
    assert_same_trees(&a, &img, &b, &pulled);
}

#[test]
fn skopeo_reads_exported_layouts_and_joot_reads_skopeo_layouts() {
    if !ready(
        "skopeo_reads_exported_layouts_and_joot_reads_skopeo_layouts",
        &["docker-registry", "skopeo"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), None);
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let archive = dir.path().join("app.oci.tar");
    joot_oci::export_layout(&a, &img, &archive, &joot_oci::OciExportOptions::default()).unwrap();
    let dest = format!("docker://{}/skopeo/app:1", reg.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}:latest", archive.display()))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // joot pulls what skopeo pushed.
    let b = Store::open(dir.path().join("b")).unwrap();
    let opts = PullOptions {
        registry: insecure(),
        name: Some(name("from-skopeo")),
        ..Default::default()
    };
    let pulled = joot_oci::pull(
        &b,
        &format!("{}/skopeo/app:1", reg.addr),
        &opts,
        &joot_oci::Silent,
    )
    .unwrap();
    assert_same_trees(&a, &img, &b, &pulled);
    assert_eq!(pulled.config, img.config);
    // skopeo writes an OCI layout dir from the registry; joot imports it.
    let layout = dir.path().join("layout");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", &dest])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(joot_oci::import::detect(&layout));
    let c = Store::open(dir.path().join("c")).unwrap();
    let imported =
        joot_oci::import::import_archive(&c, &layout, &name("imported"), &joot_oci::Silent)
            .unwrap();
    assert_same_trees(&a, &img, &c, &imported);
}

#[test]
fn zstd_layers_round_trip_through_a_layout() {
    if !joot_test_support::require_root("zstd_layers_round_trip_through_a_layout") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let out = dir.path().join("layout");
    let opts = joot_oci::OciExportOptions {
        compression: joot_oci::Compression::Zstd,
        directory: true,
        ..Default::default()
    };
    joot_oci::export_layout(&a, &img, &out, &opts).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let imported =
        joot_oci::import::import_archive(&b, &out, &name("z"), &joot_oci::Silent).unwrap();
    assert_same_trees(&a, &img, &b, &imported);
}

/// Writes a docker-save archive by hand: manifest.json, config, one layer tar per layer.
fn docker_save(path: &Path, layers: &[Vec<u8>], config: &serde_json::Value) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        add(&n, l);
        names.push(n);
    }
    add("cfg.json", &serde_json::to_vec(config).unwrap());
    let manifest =
        serde_json::json!([{"Config": "cfg.json", "RepoTags": ["app:latest"], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap();
}

fn layer_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        }
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn diff_id(t: &[u8]) -> String {
    joot_oci::digest::Digest::of(t).to_string()
}

#[test]
fn docker_save_archives_import_with_whiteouts_and_config() {
    if !joot_test_support::require_root("docker_save_archives_import_with_whiteouts_and_config") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let l0 = layer_tar(&[
        ("etc/", b""),
        ("etc/a", b"a"),
        ("etc/b", b"b"),
        ("opt/", b""),
        ("opt/x", b"x"),
    ]);
    let l1 = layer_tar(&[
        ("etc/", b""),
        ("etc/.wh.a", b""),
        ("opt/", b""),
        ("opt/.wh..wh..opq", b""),
        ("opt/y", b"y"),
    ]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["A=1"], "Cmd": ["/bin/true"], "WorkingDir": "/opt", "User": "0"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id(&l0), diff_id(&l1)]},
    });
    let archive = dir.path().join("saved.tar");
    docker_save(&archive, &[l0, l1], &config);
    assert!(joot_oci::import::detect(&archive));
    let s = Store::open(dir.path().join("s")).unwrap();
    let img =
        joot_oci::import::import_archive(&s, &archive, &name("saved"), &joot_oci::Silent).unwrap();
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.config.cmd, vec!["/bin/true".to_string()]);
    assert_eq!(img.config.workdir.as_deref(), Some("/opt"));
    let top = s.layer_root(&img.layers[1]);
    let a = std::fs::symlink_metadata(top.join("etc/a")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &a.file_type()
    ));
    assert!(!top.join("opt/.wh..wh..opq").exists());
    let mut v = [0u8; 2];
    let n = rustix::fs::lgetxattr(top.join("opt"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    let meta = s.layer(&img.layers[0]).unwrap();
    assert_eq!(
        meta.diff_id.as_deref(),
        Some(
            diff_id(&layer_tar(&[
                ("etc/", b""),
                ("etc/a", b"a"),
                ("etc/b", b"b"),
                ("opt/", b""),
                ("opt/x", b"x")
            ]))
            .as_str()
        )
    );
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_stored() {
    if !joot_test_support::require_root("hostile_archives_are_refused_and_nothing_is_stored") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s")).unwrap();
    let good = layer_tar(&[("ok", b"fine")]);
    let evil = {
        // tar::Builder refuses `..`, so write the name into the header by hand.
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.as_gnu_mut().unwrap().name[..11].copy_from_slice(b"../../evil\0");
        h.set_cksum();
        let mut v = h.as_bytes().to_vec();
        v.extend_from_slice(b"evil");
        v.resize(1024 + 512 * 2, 0);
        v
    };
    let cfg = |ids: &[String]| {
        serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids}})
    };
    let cases: Vec<(&str, Vec<Vec<u8>>, serde_json::Value)> = vec![
        (
            "traversal",
            vec![good.clone(), evil.clone()],
            cfg(&[diff_id(&good), diff_id(&evil)]),
        ),
        (
            "diff id mismatch",
            vec![good.clone()],
            cfg(&[diff_id(b"other")]),
        ),
        (
            "truncated layer",
            vec![good[..700].to_vec()],
            cfg(&[diff_id(&good)]),
        ),
        (
            "config does not parse",
            vec![good.clone()],
            serde_json::json!({"rootfs": 3}),
        ),
        (
            "layer count",
            vec![good.clone(), good.clone()],
            cfg(&[diff_id(&good)]),
        ),
    ];
    for (what, layers, config) in cases {
        let archive = dir.path().join(format!("{}.tar", what.replace(' ', "-")));
        docker_save(&archive, &layers, &config);
        let r = joot_oci::import::import_archive(&s, &archive, &name("bad"), &joot_oci::Silent);
        assert!(r.is_err(), "{what}: accepted");
        eprintln!("{what}: {}", r.unwrap_err());
        assert!(s.images().unwrap().is_empty(), "{what}: image stored");
        assert!(s.layers().unwrap().is_empty(), "{what}: layer stored");
    }
    assert!(
        !dir.path().join("evil").exists() && !dir.path().parent().unwrap().join("evil").exists()
    );
    // A layout whose blob was tampered with.
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let out = dir.path().join("layout");
    joot_oci::export_layout(
        &a,
        &img,
        &out,
        &joot_oci::OciExportOptions {
            directory: true,
            ..Default::default()
        },
    )
    .unwrap();
    let blob = blob_of(&a, &img.layers[1]).digest;
    let path = out
        .join("blobs/sha256")
        .join(blob.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let err = joot_oci::import::import_archive(&s, &out, &name("tampered"), &joot_oci::Silent)
        .unwrap_err();
    eprintln!("tampered: {err}");
    assert!(s.images().unwrap().is_empty() && s.layers().unwrap().is_empty());
}

/// Writes `bytes` as a blob of the layout at `dir` and returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let d = joot_oci::digest::Digest::of(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()})
}

/// A one-layer image for `arch` whose only file says which arch it is.
fn arch_manifest(dir: &Path, arch: &str) -> serde_json::Value {
    let content = format!("built for {arch}");
    let layer = layer_tar(&[("arch", content.as_bytes())]);
    let l = put_blob(dir, joot_oci::media::LAYER_TAR, &layer);
    let config = serde_json::json!({"architecture": arch, "os": "linux",
        "config": {"Cmd": ["/arch"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id(&layer)]}});
    let c = put_blob(
        dir,
        joot_oci::media::CONFIG,
        &serde_json::to_vec(&config).unwrap(),
    );
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": joot_oci::media::MANIFEST,
        "config": c, "layers": [l]});
    let mut d = put_blob(
        dir,
        joot_oci::media::MANIFEST,
        &serde_json::to_vec(&m).unwrap(),
    );
    d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    d
}

#[test]
fn multi_platform_layouts_pick_the_host_or_the_asked_platform() {
    if !joot_test_support::require_root(
        "multi_platform_layouts_pick_the_host_or_the_asked_platform",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let manifests = vec![
        arch_manifest(&layout, "amd64"),
        arch_manifest(&layout, "arm64"),
    ];
    // index.json -> a nested multi-arch index, as `skopeo copy --all` writes.
    let nested = serde_json::json!({"schemaVersion": 2, "mediaType": joot_oci::media::INDEX,
        "manifests": manifests});
    let n = put_blob(
        &layout,
        joot_oci::media::INDEX,
        &serde_json::to_vec(&nested).unwrap(),
    );
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [n]})).unwrap(),
    )
    .unwrap();
    let s = Store::open(dir.path().join("s")).unwrap();
    let host = joot_oci::Platform::host();
    let pick = |arch: &str, name: &str| {
        let opts = joot_oci::import::ImportOptions {
            platform: Some(joot_oci::Platform::parse(&format!("linux/{arch}")).unwrap()),
            replace: false,
        };
        let img = joot_oci::import::import_archive_with(
            &s,
            &layout,
            &crate::name(name),
            &opts,
            &joot_oci::Silent,
        )
        .unwrap();
        std::fs::read_to_string(s.layer_root(&img.layers[0]).join("arch")).unwrap()
    };
    assert_eq!(pick("arm64", "arm"), "built for arm64");
    assert_eq!(pick("amd64", "amd"), "built for amd64");
    if host.architecture == "amd64" || host.architecture == "arm64" {
        let img =
            joot_oci::import::import_archive(&s, &layout, &name("default"), &joot_oci::Silent)
                .unwrap();
        let got = std::fs::read_to_string(s.layer_root(&img.layers[0]).join("arch")).unwrap();
        assert_eq!(got, format!("built for {}", host.architecture));
    }
    let opts = joot_oci::import::ImportOptions {
        platform: Some(joot_oci::Platform::parse("linux/s390x").unwrap()),
        replace: false,
    };
    let err =
        joot_oci::import::import_archive_with(&s, &layout, &name("none"), &opts, &joot_oci::Silent)
            .unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[test]
fn server_errors_are_reported_with_the_registry_message() {
    // A registry that answers every request with 503 and a text of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let body = "registry under maintenance";
            let _ = std::io::Write::write_all(
                &mut conn,
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s")).unwrap();
    let err = joot_oci::pull(
        &s,
        &format!("{addr}/team/app:1"),
        &PullOptions {
            registry: insecure(),
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(addr);
    server.join().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("503") && msg.contains("registry under maintenance"),
        "{msg}"
    );
    assert!(s.images().unwrap().is_empty());
}

#[test]
fn a_blob_corrupted_in_the_registry_is_refused_and_not_cached() {
    if !ready(
        "a_blob_corrupted_in_the_registry_is_refused_and_not_cached",
        &["docker-registry"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), None);
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let reference = format!("{}/team/app:1", reg.addr);
    let push_opts = PushOptions {
        registry: insecure(),
        ..Default::default()
    };
    joot_oci::push(&a, &img, &reference, &push_opts, &joot_oci::Silent).unwrap();
    let upper = blob_of(&a, &img.layers[1]).digest;
    let data = reg.blob_data(&upper);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&data, &bytes).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let err = joot_oci::pull(
        &b,
        &reference,
        &PullOptions {
            registry: insecure(),
            ..Default::default()
        },
        &joot_oci::Silent,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("digest") && msg.contains(&upper[7..19]),
        "{msg}"
    );
    assert!(b.images().unwrap().is_empty() && b.layers().unwrap().is_empty());
    let cache = b.root().join("cache/blobs/sha256");
    let hex = upper.trim_start_matches("sha256:");
    assert!(!cache.join(hex).exists() && !cache.join(format!("{hex}.partial")).exists());
}

#[test]
fn concurrent_pulls_into_one_store_share_the_download() {
    if !ready(
        "concurrent_pulls_into_one_store_share_the_download",
        &["docker-registry"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("registry"), None);
    let a = Store::open(dir.path().join("a")).unwrap();
    let img = make_image(&a, "app");
    let reference = format!("{}/team/app:1", reg.addr);
    let push_opts = PushOptions {
        registry: insecure(),
        ..Default::default()
    };
    joot_oci::push(&a, &img, &reference, &push_opts, &joot_oci::Silent).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let pulled: Vec<Image> = std::thread::scope(|s| {
        let handles: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|n| {
                let (b, reference) = (&b, &reference);
                s.spawn(move || {
                    let opts = PullOptions {
                        registry: insecure(),
                        name: Some(name(n)),
                        ..Default::default()
                    };
                    joot_oci::pull(b, reference, &opts, &joot_oci::Silent).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in &pulled {
        assert_same_trees(&a, &img, &b, p);
    }
    for layer in &img.layers {
        let blob = blob_of(&a, layer).digest;
        assert_eq!(reg.blob_gets(&blob), 1, "blob {blob} downloaded twice");
    }
}
