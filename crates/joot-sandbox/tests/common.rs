//! Shared helpers of the sandbox integration tests: a busybox root, a mount point, and an
//! output directory bound into the sandbox at /out.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use joot_sandbox::{Bind, RunSpec};

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A fresh fixture for test `name`. Needs the host's busybox (package busybox-static):
    /// without it the test is skipped (failed in strict mode) by the caller's probe.
    pub fn new(name: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(&format!("joot-sandbox-{name}-"))
            .tempdir()
            .expect("tempdir");
        joot_test_support::fixture::busybox_rootfs(&dir.path().join("rootfs")).expect("fixture");
        for d in ["mnt", "out"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    /// A spec running `sh -c script` with /out bound to the output dir.
    pub fn sh(&self, script: &str) -> RunSpec {
        let mut spec = RunSpec::new(
            vec![self.rootfs()],
            self.path().join("mnt"),
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        spec.binds.push(Bind {
            src: self.out(),
            dst: "/out".into(),
            ro: false,
            recursive: false,
        });
        spec
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name))
            .unwrap_or_else(|e| panic!("read /out/{name}: {e}"))
    }
}

/// Probes what the fixture needs: busybox on the host.
pub fn have_busybox(test: &str) -> bool {
    if std::path::Path::new("/bin/busybox").exists()
        || std::path::Path::new("/usr/bin/busybox").exists()
    {
        true
    } else {
        joot_test_support::skip(test, "needs busybox (apt-get install busybox-static)")
    }
}

/// Asserts that nothing under `dir` is mounted in this (the host's) mount namespace.
pub fn assert_nothing_mounted_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy();
    for line in mounts.lines() {
        let mp = line.split(' ').nth(4).unwrap_or("");
        assert!(!mp.starts_with(&*d), "left mounted on the host: {line}");
    }
}
