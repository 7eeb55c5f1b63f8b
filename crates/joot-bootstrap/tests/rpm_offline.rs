//! The RPM path end to end, offline: a one-package repository built with rpmbuild and
//! createrepo_c, bootstrapped with dnf into a real store; then the reuse of an identical
//! bootstrap and a `fresh` one. Needs root, rpmbuild, createrepo_c and dnf (CI installs them).

use std::path::Path;
use std::process::Command;

use joot_bootstrap::{Defaults, Options, Request, Silent, Spec};
use joot_store::{Name, Store};
use joot_test_support::{require_root, require_tool};

fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.display().to_string();
    info.lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

#[test]
fn rpm_bootstrap_offline_from_a_local_repo() {
    let name = "rpm_bootstrap_offline_from_a_local_repo";
    if !require_root(name) {
        return;
    }
    for tool in ["rpmbuild", "createrepo_c", "dnf"] {
        if !require_tool(name, tool) {
            return;
        }
    }
    let t = tempfile::tempdir().unwrap();
    let repo = joot_test_support::fixture::rpm_repo(t.path());
    let store = Store::open(t.path().join("store")).unwrap();
    let req = Request {
        repos: vec![format!("file://{}", repo.display())],
        include: vec!["joot-hello".into()],
        name: Some("hello".into()),
        ..Default::default()
    };
    let spec = Spec::parse("rpm").unwrap();
    let opts = Options::new(spec.clone(), &req, &Defaults::default()).unwrap();
    let out = joot_bootstrap::bootstrap(&store, &opts, &Silent).unwrap();
    assert!(!out.reused);
    assert_eq!(out.packages, 1, "dnf installed one package");
    let root = store.layer_root(&out.layer);
    assert!(root.join("usr/bin/joot-hello").is_file());
    // The database is where Fedora and RHEL keep it, not in Debian's ~/.rpmdb.
    assert!(root.join("var/lib/rpm").is_dir());
    assert!(!root.join("root/.rpmdb").exists());
    let qa = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args(["--dbpath=/var/lib/rpm", "-qa"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&qa.stdout).contains("joot-hello-1.0-1"),
        "{qa:?}"
    );
    // Conventions, repo file for the result, nothing of dnf's host cache path inside.
    assert_eq!(std::fs::read(root.join("etc/machine-id")).unwrap(), b"");
    let repofile = std::fs::read_to_string(root.join("etc/yum.repos.d/joot.repo")).unwrap();
    assert!(repofile.contains(&repo.display().to_string()));
    let cache_inside = root.join(store.cache_dir().strip_prefix("/").unwrap());
    assert!(!cache_inside.exists(), "{}", cache_inside.display());
    let image = store.image(&Name::parse("hello").unwrap()).unwrap();
    assert_eq!(image.layers, vec![out.layer.clone()]);
    let distro = image.distro.unwrap();
    assert_eq!(
        (distro.family.as_str(), distro.package_manager.as_str()),
        ("rpm", "dnf")
    );
    assert!(mounts_under(t.path()).is_empty(), "no mounts left");
    assert_eq!(
        std::fs::read_dir(store.tmp_dir()).unwrap().count(),
        0,
        "no staging left"
    );

    // Same inputs, same repository metadata: the layer is reused.
    let again = Options::new(
        spec.clone(),
        &Request {
            name: Some("hello2".into()),
            ..req.clone()
        },
        &Defaults::default(),
    )
    .unwrap();
    let out2 = joot_bootstrap::bootstrap(&store, &again, &Silent).unwrap();
    assert!(out2.reused);
    assert_eq!(out2.layer, out.layer);
    // The name is taken now.
    let err = joot_bootstrap::bootstrap(&store, &again, &Silent).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // --fresh installs again.
    let fresh = Options::new(
        spec,
        &Request {
            name: Some("hello3".into()),
            fresh: true,
            ..req
        },
        &Defaults::default(),
    )
    .unwrap();
    let out3 = joot_bootstrap::bootstrap(&store, &fresh, &Silent).unwrap();
    assert!(!out3.reused);
    assert_ne!(out3.layer, out.layer);
}

#[test]
fn failed_install_leaves_no_image_and_no_staging() {
    let name = "failed_install_leaves_no_image_and_no_staging";
    if !require_root(name) || !require_tool(name, "dnf") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty-repo");
    std::fs::create_dir_all(&empty).unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let req = Request {
        repos: vec![format!("file://{}", empty.display())],
        include: vec!["no-such-package".into()],
        ..Default::default()
    };
    let opts = Options::new(Spec::parse("rpm").unwrap(), &req, &Defaults::default()).unwrap();
    let err = joot_bootstrap::bootstrap(&store, &opts, &Silent).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("dnf") && msg.contains("failed"), "{msg}");
    assert!(store.images().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert!(store.layers().unwrap().is_empty());
    assert!(mounts_under(t.path()).is_empty());
}
