//! joot-build
