//! CLI integration tests: the real `joot` binary, as root, against real mounts. One test binary
//! with a module per area. Tests that need root or a tool probe first (see joot-test-support):
//! in CI (CI=true) a missing capability fails, elsewhere the test prints SKIP and returns.

mod bootstrap;
mod build;
mod core;
mod image;
mod oci;
mod rootless;

/// A loopback distribution registry shared with joot-oci's own tests.
#[path = "../../../joot-oci/tests/support/registry.rs"]
mod registry;
