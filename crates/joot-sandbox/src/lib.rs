//! joot-sandbox
