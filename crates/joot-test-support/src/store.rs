//! A temporary joot store for one test, with a command builder for the real binary and a Drop
//! guard that detaches every mount left under it (so a failing test leaks nothing).

use std::path::{Path, PathBuf};

/// Path of the `joot` binary built by cargo for this test run.
pub fn joot_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("joot")
}

/// A store in its own temporary directory.
pub struct TestStore {
    dir: tempfile::TempDir,
}

impl TestStore {
    /// A fresh empty store for the test `name`.
    pub fn new(name: &str) -> TestStore {
        let dir = tempfile::Builder::new()
            .prefix(&format!("joot-test-{name}-"))
            .tempdir()
            .expect("temp dir for test store");
        TestStore { dir }
    }

    /// The store root (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A scratch directory beside the store for the test's own files.
    pub fn scratch(&self) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    /// `joot --root ROOT` as an assert_cmd command, with a clean config.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(joot_bin());
        cmd.arg("--root").arg(self.root());
        cmd.env("JOOT_CONFIG", "/nonexistent/joot-test-config");
        cmd.env_remove("JOOT_ROOT");
        cmd
    }

    /// The same as [`TestStore::cmd`] but a std Command (for spawning and killing).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(joot_bin());
        cmd.arg("--root").arg(self.root());
        cmd.env("JOOT_CONFIG", "/nonexistent/joot-test-config");
        cmd.env_remove("JOOT_ROOT");
        cmd
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        unmount_under(self.dir.path());
    }
}

/// Detaches every mount at or below `dir` in this mount namespace, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
}

fn unescape(field: &str) -> PathBuf {
    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}
