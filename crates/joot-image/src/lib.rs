//! joot-image
