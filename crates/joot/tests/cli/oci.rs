//! CLI tests of OCI images and registries: `push`/`pull` against a real distribution registry on
//! loopback (Debian's `docker-registry`, started per test with storage in the test dir and
//! killed on drop), basic auth through `--creds` and `$REGISTRY_AUTH_FILE`, `run --from REF`
//! pulling on first use, `export --format oci` read by skopeo, and `import` of layouts and
//! `docker save` archives written by skopeo.

use crate::registry;
#[path = "../../../joot-oci/tests/support/tree.rs"]
mod tree;

use std::path::{Path, PathBuf};
use std::process::Command;

use joot_test_support::{TestStore, fixture, require_root, require_tool};
use registry::Registry;

fn ready(test: &str, tools: &[&str]) -> bool {
    require_root(test) && tools.iter().all(|t| require_tool(test, t))
}

/// A store with the busybox fixture imported as image `bb`.
fn store_with_bb(test: &str) -> TestStore {
    let ts = TestStore::new(test);
    let tar = ts.scratch().join("rootfs.tar");
    fixture::busybox_tarball(&tar).expect("fixture tarball");
    ts.cmd()
        .arg("import")
        .arg(&tar)
        .args(["--name", "bb"])
        .assert()
        .success();
    ts
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("run joot");
    assert!(
        out.status.success(),
        "joot failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// The layer roots of image `name` in the store at `root`, bottom to top.
fn layer_roots(root: &Path, name: &str) -> Vec<PathBuf> {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("images").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| root.join("layers").join(l.as_str().unwrap()).join("root"))
        .collect()
}

fn assert_same_image(a: &Path, an: &str, b: &Path, bn: &str) {
    let la = layer_roots(a, an);
    let lb = layer_roots(b, bn);
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        let sx = tree::snapshot(x);
        let sy = tree::snapshot(y);
        assert!(!sx.is_empty());
        assert_eq!(sx, sy, "trees differ: {} vs {}", x.display(), y.display());
    }
}

#[test]
fn push_then_pull_into_a_fresh_store_gives_the_same_tree() {
    let test = "push_then_pull_into_a_fresh_store_gives_the_same_tree";
    if !ready(test, &["docker-registry"]) {
        return;
    }
    let a = store_with_bb(test);
    let reg = Registry::start(&a.scratch().join("registry"), None);
    let reference = format!("{}/team/bb:1.0", reg.addr);
    let digest = stdout_of(a.cmd().args(["push", "bb", &reference, "--insecure"]));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let b = TestStore::new(&format!("{test}-b"));
    let name = stdout_of(b.cmd().args(["pull", &reference, "--insecure"]));
    assert_eq!(name.trim(), "bb-1.0");
    assert_same_image(&a.root(), "bb", &b.root(), "bb-1.0");
    // Pulling again under another name stores no new layer.
    let before = std::fs::read_dir(b.root().join("layers")).unwrap().count();
    stdout_of(
        b.cmd()
            .args(["pull", &reference, "--insecure", "--name", "again"]),
    );
    assert_eq!(
        std::fs::read_dir(b.root().join("layers")).unwrap().count(),
        before
    );
    // zstd layers push and pull too.
    let zref = format!("{}/team/bb:zstd", reg.addr);
    stdout_of(
        a.cmd()
            .args(["push", "bb", &zref, "--insecure", "--compression", "zstd"]),
    );
    let c = TestStore::new(&format!("{test}-c"));
    stdout_of(c.cmd().args(["pull", &zref, "--insecure", "--name", "z"]));
    assert_same_image(&a.root(), "bb", &c.root(), "z");
}

#[test]
fn registry_errors_carry_the_registry_message() {
    let test = "registry_errors_carry_the_registry_message";
    if !ready(test, &["docker-registry"]) {
        return;
    }
    let a = store_with_bb(test);
    let reg = Registry::start(&a.scratch().join("registry"), None);
    let out = a
        .cmd()
        .args([
            "pull",
            &format!("{}/team/missing:1", reg.addr),
            "--insecure",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest unknown") || err.contains("ManifestUnknown"),
        "{err}"
    );
    // Without --insecure the https attempt against an http registry fails with a hint.
    let out = a
        .cmd()
        .args(["push", "bb", &format!("{}/team/bb:1", reg.addr)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure"));
    // Bad arguments are refused before any network or store work.
    a.cmd()
        .args(["push", "bb", "Not A Reference"])
        .assert()
        .code(125);
    a.cmd()
        .args(["pull", &format!("{}/x:1", reg.addr), "--platform", "linux"])
        .assert()
        .code(125);
}

#[test]
fn basic_auth_with_creds_and_auth_file() {
    let test = "basic_auth_with_creds_and_auth_file";
    if !ready(test, &["docker-registry", "htpasswd"]) {
        return;
    }
    let a = store_with_bb(test);
    let reg = Registry::start(&a.scratch().join("registry"), Some(("bob", "builder")));
    let reference = format!("{}/private/bb:1", reg.addr);
    let out = a
        .cmd()
        .args(["push", "bb", &reference, "--insecure"])
        .env("REGISTRY_AUTH_FILE", a.scratch().join("none.json"))
        .env("HOME", a.scratch())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    stdout_of(
        a.cmd()
            .args([
                "push",
                "bb",
                &reference,
                "--insecure",
                "--creds",
                "bob:builder",
            ])
            .env("HOME", a.scratch()),
    );
    let auth = a.scratch().join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"Ym9iOmJ1aWxkZXI="}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let b = TestStore::new(&format!("{test}-b"));
    stdout_of(
        b.cmd()
            .args(["pull", &reference, "--insecure", "--name", "p"])
            .env("REGISTRY_AUTH_FILE", &auth),
    );
    assert_same_image(&a.root(), "bb", &b.root(), "p");
}

#[test]
fn run_from_a_registry_reference_pulls_on_first_use_only() {
    let test = "run_from_a_registry_reference_pulls_on_first_use_only";
    if !ready(test, &["docker-registry"]) {
        return;
    }
    let a = store_with_bb(test);
    let reg = Registry::start(&a.scratch().join("registry"), None);
    let reference = format!("{}/team/bb:run", reg.addr);
    stdout_of(a.cmd().args(["push", "bb", &reference, "--insecure"]));
    let b = TestStore::new(&format!("{test}-b"));
    let config = b.scratch().join("joot.toml");
    std::fs::write(
        &config,
        format!("[registry]\ninsecure = [\"{}\"]\n", reg.addr),
    )
    .unwrap();
    let out = stdout_of(b.cmd().env("JOOT_CONFIG", &config).args([
        "run",
        "--rm",
        "--from",
        &reference,
        "--",
        "/bin/cat",
        "/etc/os-release",
    ]));
    assert!(out.contains("joot-fixture"), "{out}");
    // The registry goes away; the pulled image is reused without it.
    drop(reg);
    let out = stdout_of(b.cmd().env("JOOT_CONFIG", &config).args([
        "run",
        "--rm",
        "--from",
        &reference,
        "--",
        "/bin/echo",
        "again",
    ]));
    assert_eq!(out.trim(), "again");
}

#[test]
fn exported_oci_archive_is_read_by_skopeo_and_imports_back() {
    let test = "exported_oci_archive_is_read_by_skopeo_and_imports_back";
    if !ready(test, &["skopeo"]) {
        return;
    }
    let a = store_with_bb(test);
    let archive = a.scratch().join("bb.oci.tar");
    a.cmd()
        .args(["export", "bb", "--format", "oci", "-o"])
        .arg(&archive)
        .assert()
        .success();
    let st = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // skopeo rewrites it as a docker-save archive; joot imports both archives. (OCI layout
    // directories are covered by joot-oci's own tests: `joot import` takes files.)
    let docker = a.scratch().join("bb.docker.tar");
    let dest = format!("docker-archive:{}:bb:latest", docker.display());
    let st = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{dest}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let b = TestStore::new(&format!("{test}-b"));
    for (src, name) in [(&archive, "from-oci-tar"), (&docker, "from-docker")] {
        b.cmd()
            .arg("import")
            .arg(src)
            .args(["--name", name])
            .assert()
            .success();
        assert_same_image(&a.root(), "bb", &b.root(), name);
    }
}

#[test]
fn exported_oci_archive_loads_and_runs_under_podman() {
    let test = "exported_oci_archive_loads_and_runs_under_podman";
    if !ready(test, &["podman", "runc"]) {
        return;
    }
    let a = store_with_bb(test);
    let archive = a.scratch().join("bb.oci.tar");
    a.cmd()
        .args(["export", "bb", "--format", "oci", "-o"])
        .arg(&archive)
        .assert()
        .success();
    // podman with its own storage in the test dir (vfs: no mounts left behind); its runroot
    // must be shorter than 50 characters.
    let pod = a.scratch().join("podman");
    let runroot = tempfile::Builder::new()
        .prefix("jp")
        .tempdir_in("/tmp")
        .unwrap();
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(pod.join("root"))
            .arg("--runroot")
            .arg(runroot.path())
            .args(["--storage-driver", "vfs", "--runtime", "runc"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let loaded = podman(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("localhost/bb:latest"), "{loaded}");
    let out = podman(&[
        "run",
        "--rm",
        "--network=host",
        "--ulimit",
        "nofile=1024:4096",
        "--ulimit",
        "nproc=1024:4096",
        "localhost/bb:latest",
        "/bin/cat",
        "/etc/os-release",
    ]);
    assert!(out.contains("joot-fixture"), "{out}");
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn image_config_of_a_docker_archive_drives_run() {
    let test = "image_config_of_a_docker_archive_drives_run";
    if !ready(test, &["tar"]) {
        return;
    }
    let ts = TestStore::new(test);
    let dir = ts.scratch().join("saved");
    std::fs::create_dir_all(dir.join("l")).unwrap();
    let layer = dir.join("l/layer.tar");
    fixture::busybox_tarball(&layer).expect("fixture tarball");
    let diff_id = joot_oci::digest::Digest::of(&std::fs::read(&layer).unwrap()).to_string();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "GREETING=from-config"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING in $(pwd)"],
            "WorkingDir": "/tmp"
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    });
    std::fs::write(dir.join("cfg.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": ["app:1"], "Layers": ["l/layer.tar"]}]);
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let archive = ts.scratch().join("saved.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&archive)
        .args(["l", "cfg.json", "manifest.json"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        stdout_of(ts.cmd().arg("import").arg(&archive).args(["--name", "cfg"])).trim(),
        "cfg"
    );
    let out = stdout_of(ts.cmd().args(["run", "--rm", "--from", "cfg"]));
    assert_eq!(out.trim(), "from-config in /tmp");
    // A command on the command line is run instead, in the image's working dir and env.
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "cfg",
        "--",
        "/bin/sh",
        "-c",
        "echo $GREETING $(pwd)",
    ]));
    assert_eq!(out.trim(), "from-config /tmp");
}
