//! One Debian bookworm image, bootstrapped by the real `joot bootstrap` once per test run into a
//! shared store under the cargo target directory, and reused by every test that needs a real
//! distribution (apt installs, recipe builds, bootable exports). A file lock serialises the first
//! bootstrap; a marker file records success. Tests create uniquely named envs and images in the
//! shared store and remove them when done.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::{cache_dir, joot_bin, require_root};

/// The shared Debian store and the name of its image.
pub struct SharedDebian {
    /// Store root to pass as `--root`.
    pub store_root: PathBuf,
    /// Image name inside that store.
    pub image: String,
}

impl SharedDebian {
    /// `joot --root SHARED` as an assert_cmd command.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(joot_bin());
        cmd.arg("--root").arg(&self.store_root);
        cmd.env("JOOT_CONFIG", "/nonexistent/joot-test-config");
        cmd.env_remove("JOOT_ROOT");
        cmd
    }
}

/// The packages added to minbase: a kernel and an init so the image can also be booted.
pub const DEBIAN_INCLUDE: &str = "linux-image-amd64,systemd-sysv,udev,ca-certificates";

/// Returns the shared Debian image, bootstrapping it first if this run has not yet. Needs root
/// and the Debian mirror; returns None (after a visible SKIP) when not root outside CI.
pub fn shared_debian(test: &str) -> Option<SharedDebian> {
    if !require_root(test) {
        return None;
    }
    let dir = cache_dir().join("debian");
    fs::create_dir_all(&dir).expect("shared debian cache dir");
    let store_root = dir.join("store");
    let image = "bookworm".to_string();
    let marker = dir.join("bootstrapped");
    let lock = fs::File::create(dir.join("lock")).expect("shared debian lock file");
    lock.lock().expect("lock shared debian");
    if !marker.exists() {
        eprintln!(
            "bootstrapping the shared Debian image (once per run) into {}",
            store_root.display()
        );
        let out = Command::new(joot_bin())
            .arg("--root")
            .arg(&store_root)
            .args([
                "bootstrap",
                "debian:bookworm",
                "--name",
                &image,
                "--variant",
                "minbase",
            ])
            .args(["--include", DEBIAN_INCLUDE])
            .env("JOOT_CONFIG", "/nonexistent/joot-test-config")
            .output()
            .expect("run joot bootstrap");
        assert!(
            out.status.success(),
            "shared Debian bootstrap failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&marker, b"ok\n").expect("write marker");
    }
    lock.unlock().expect("unlock shared debian");
    Some(SharedDebian { store_root, image })
}
