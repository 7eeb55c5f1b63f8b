//! Test helpers shared by joot's integration tests: capability probes that skip visibly (and
//! fail in CI), temporary stores that clean their mounts, a busybox fixture rootfs built from the
//! host's `busybox-static`, and one Debian image bootstrapped once per test run and shared.
//!
//! Skipping rule: a test that needs root or a tool calls [`require_root`] / [`require_tool`]
//! first. With `CI=true` or `JOOT_TEST_STRICT=1` a missing capability panics (CI never skips);
//! otherwise it prints `SKIP name: reason` and the test returns early.

mod debian;
pub mod fixture;
mod store;

pub use debian::{SharedDebian, shared_debian};
pub use store::{TestStore, joot_bin, unmount_under};

use std::path::PathBuf;

/// True when missing capabilities must fail tests instead of skipping them.
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("JOOT_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Reports a missing capability: panics in strict mode, prints `SKIP` otherwise. Returns false
/// so callers can write `if !require_root("x") { return; }`.
pub fn skip(name: &str, reason: &str) -> bool {
    if strict() {
        panic!("{name}: cannot run ({reason}) and CI/JOOT_TEST_STRICT forbids skipping");
    }
    eprintln!("SKIP {name}: {reason}");
    false
}

/// True when running as root; otherwise skips (or fails in strict mode).
pub fn require_root(name: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        skip(name, "needs root")
    }
}

/// True when `tool` is on PATH; otherwise skips (or fails in strict mode).
pub fn require_tool(name: &str, tool: &str) -> bool {
    if which(tool).is_some() {
        true
    } else {
        skip(name, &format!("needs `{tool}` on PATH"))
    }
}

/// Finds an executable on PATH (plus the sbin directories, which a plain user's PATH may lack).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}

/// The cargo target directory of the running test binary (`target/`), where shared fixtures
/// are cached between tests of one run. `JOOT_TEST_CACHE` overrides the cache location.
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("JOOT_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test-binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    target.join("joot-test-cache")
}
