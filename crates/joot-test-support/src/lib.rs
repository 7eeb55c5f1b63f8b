//! joot-test-support
