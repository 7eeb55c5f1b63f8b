//! joot-store
