//! joot-sys
